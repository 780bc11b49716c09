//! Tests of the codecs (`compression.rs`) through the batch codec: every codec round-trips,
//! writes its own framing, and reads streams framed as Kafka's Java client frames them.

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::*;
use crate::storage::batch::{
    self, decode_records, encode_batch, BatchError, BatchSpec, DecodedRecord, Record,
    BATCH_HEADER_LEN,
};

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn spec(compression: Compression) -> BatchSpec {
    BatchSpec {
        base_offset: 100,
        partition_leader_epoch: 7,
        base_timestamp: 1_700_000_000_000,
        producer_id: 4242,
        producer_epoch: 3,
        base_sequence: 17,
        compression,
        ..BatchSpec::default()
    }
}

/// Records that compress: repeated keys and values, a null key, a header.
fn records(count: i32) -> Vec<Record> {
    (0..count)
        .map(|i| Record {
            offset_delta: i,
            timestamp_delta: i64::from(i) * 3,
            key: (i % 5 != 0).then(|| Bytes::from(format!("key-{}", i % 7))),
            value: Some(Bytes::from(format!(
                "value {i} of a record that repeats itself"
            ))),
            headers: vec![("trace".to_owned(), Some(Bytes::from_static(b"abc")))],
        })
        .collect()
}

/// kafka-protocol's reading of a batch (a second implementation of Kafka's format and codecs).
fn decode_with_kafka_protocol(bytes: &[u8]) -> Vec<DecodedRecord> {
    let mut buf = Bytes::copy_from_slice(bytes);
    let set = RecordBatchDecoder::decode(&mut buf).expect("kafka-protocol decodes our batch");
    assert!(buf.is_empty());
    set.records
        .into_iter()
        .map(|r| DecodedRecord {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| (k.as_str().to_owned(), v))
                .collect(),
        })
        .collect()
}

/// CRC-32C bit by bit, independent of the crc32c crate.
fn bitwise_crc32c(data: &[u8]) -> u32 {
    bitwise_crc(data, 0x82F6_3B78)
}

/// CRC-32 (IEEE, gzip's trailer) bit by bit.
fn bitwise_crc32(data: &[u8]) -> u32 {
    bitwise_crc(data, 0xEDB8_8320)
}

fn bitwise_crc(data: &[u8], reflected_polynomial: u32) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (reflected_polynomial & mask);
        }
    }
    !crc
}

#[test]
fn names_and_ids_are_kafkas() {
    let named: Vec<_> = Compression::ALL
        .iter()
        .map(|c| (c.id(), c.name()))
        .collect();
    assert_eq!(
        named,
        [
            (0, "none"),
            (1, "gzip"),
            (2, "snappy"),
            (3, "lz4"),
            (4, "zstd")
        ]
    );
    for codec in Compression::ALL {
        assert_eq!(Compression::from_id(codec.id()), Some(codec));
        assert_eq!(Compression::from_name(codec.name()), Some(codec));
    }
    assert_eq!(Compression::from_id(5), None);
    use BrokerCompression::{Codec, Producer};
    assert_eq!(BrokerCompression::from_name("producer"), Some(Producer));
    assert_eq!(
        BrokerCompression::from_name("uncompressed"),
        Some(Codec(Compression::None))
    );
    assert_eq!(BrokerCompression::from_name("none"), None);
    assert_eq!(
        BrokerCompression::from_name("zstd"),
        Some(Codec(Compression::Zstd))
    );
    assert_eq!(Producer.target(Compression::Lz4), Compression::Lz4);
    assert_eq!(
        Codec(Compression::Gzip).target(Compression::Lz4),
        Compression::Gzip
    );
}

#[test]
fn every_codec_round_trips_through_encode_batch_and_decode_records() {
    let records = records(40);
    let plain = encode_batch(&spec(Compression::None), &records);
    let (_, expected) = decode_records(&plain).unwrap();
    for codec in CODECS {
        let bytes = encode_batch(&spec(codec), &records);
        let header = batch::validate(&bytes).unwrap();
        assert_eq!(header.compression(), Ok(codec));
        assert_eq!(header.attributes & 0x07, codec.id());
        // The CRC covers the records as stored: compressed.
        assert_eq!(header.crc, bitwise_crc32c(&bytes[21..]));
        assert_eq!(header.size_in_bytes(), bytes.len());
        assert!(
            bytes.len() < plain.len(),
            "{codec:?}: {} bytes, uncompressed {}",
            bytes.len(),
            plain.len()
        );
        // Everything before the records is the uncompressed batch's, but the codec bits,
        // batchLength and the CRC.
        assert_eq!(bytes[..8], plain[..8]);
        assert_eq!(bytes[12..17], plain[12..17]);
        assert_eq!(bytes[23..BATCH_HEADER_LEN], plain[23..BATCH_HEADER_LEN]);
        let (decoded_header, decoded) = decode_records(&bytes).unwrap();
        assert_eq!(decoded_header, header);
        assert_eq!(decoded, expected, "{codec:?}");
        assert_eq!(decode_with_kafka_protocol(&bytes), expected, "{codec:?}");
        // Deterministic: the same records give the same bytes.
        assert_eq!(encode_batch(&spec(codec), &records), bytes);
    }
}

#[test]
fn each_codec_writes_its_kafka_framing() {
    let records = records(3);
    let section = |codec| encode_batch(&spec(codec), &records)[BATCH_HEADER_LEN..].to_vec();
    // RFC 1952: ID1 ID2, CM = 8 (deflate).
    assert_eq!(section(Compression::Gzip)[..3], [0x1f, 0x8b, 0x08]);
    // xerial-snappy's `SnappyOutputStream` header: magic, version 1, compatible version 1.
    assert_eq!(
        section(Compression::Snappy)[..16],
        *b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01"
    );
    // LZ4 frame magic 0x184D2204, little-endian; FLG version 01 with independent blocks.
    let lz4 = section(Compression::Lz4);
    assert_eq!(lz4[..4], [0x04, 0x22, 0x4d, 0x18]);
    assert_eq!(lz4[4] & 0xe0, 0x60);
    // zstd frame magic 0xFD2FB528, little-endian.
    assert_eq!(section(Compression::Zstd)[..4], [0x28, 0xb5, 0x2f, 0xfd]);
}

/// The records section of a one-record batch (offset and timestamp delta 0, null key, value
/// "sdfdsf", no headers), and a batch holding `section` in its place, compressed with `codec`.
fn sdfdsf() -> (Vec<u8>, impl Fn(Compression, &[u8]) -> Vec<u8>) {
    let record = Record {
        offset_delta: 0,
        timestamp_delta: 0,
        key: None,
        value: Some(Bytes::from_static(b"sdfdsf")),
        headers: vec![],
    };
    let plain = encode_batch(&BatchSpec::default(), &[record]).to_vec();
    let raw = plain[BATCH_HEADER_LEN..].to_vec();
    assert_eq!(raw, b"\x18\x00\x00\x00\x01\x0csdfdsf\x00");
    let with_section = move |codec: Compression, section: &[u8]| {
        let mut bytes = plain[..BATCH_HEADER_LEN].to_vec();
        bytes[22] = codec.id() as u8;
        bytes.extend_from_slice(section);
        let length = (bytes.len() - 12) as i32;
        bytes[8..12].copy_from_slice(&length.to_be_bytes());
        let crc = bitwise_crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        bytes
    };
    (raw, with_section)
}

fn only_value(bytes: &[u8]) -> Bytes {
    let (_, records) = decode_records(bytes).unwrap();
    assert_eq!(records.len(), 1);
    records[0].value.clone().unwrap()
}

#[test]
fn a_snappy_section_as_kafkas_producer_writes_it() {
    // The snappy records of a batch written by Apache Kafka's Java producer (the fixture of
    // kafka-protocol's snappy tests): xerial's header (magic, version 1, compatible version 1),
    // one block of 15 bytes: raw snappy (length 13, one literal of 13 bytes).
    let kafka = [
        &b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01"[..],
        b"\x00\x00\x00\x0f",
        b"\x0d\x30\x18\x00\x00\x00\x01\x0csdfdsf\x00",
    ]
    .concat();
    let (raw, with_section) = sdfdsf();
    assert_eq!(compress(Compression::Snappy, &raw), kafka, "byte for byte");
    assert_eq!(
        only_value(&with_section(Compression::Snappy, &kafka)),
        "sdfdsf"
    );
    // Raw snappy without xerial's framing, which Java's `SnappyInputStream` also reads.
    let unframed = &kafka[20..];
    assert_eq!(
        only_value(&with_section(Compression::Snappy, unframed)),
        "sdfdsf"
    );
}

#[test]
fn an_lz4_section_as_kafkas_lz4_block_output_stream_writes_it() {
    // Kafka's `Lz4BlockOutputStream` (FLG: version 1, independent blocks, no checksums; BD:
    // 64 KiB blocks; HC = (xxh32(FLG BD) >> 8) & 0xff), one block stored uncompressed (size
    // with the high bit set) since 13 bytes do not compress, then the end mark.
    let (raw, with_section) = sdfdsf();
    let mut section = vec![0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82];
    section.extend_from_slice(&(0x8000_0000u32 | raw.len() as u32).to_le_bytes());
    section.extend_from_slice(&raw);
    section.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(
        only_value(&with_section(Compression::Lz4, &section)),
        "sdfdsf"
    );
}

#[test]
fn a_gzip_section_framed_as_javas_gzip_output_stream_frames_it() {
    // RFC 1952 with the header Java's `GZIPOutputStream` writes (no flags, mtime 0, OS 0), the
    // records in one stored deflate block, then CRC-32 and size, little-endian.
    let (raw, with_section) = sdfdsf();
    let mut section = vec![0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0];
    section.push(0x01); // BFINAL, BTYPE 00: stored
    let len = raw.len() as u16;
    section.extend_from_slice(&len.to_le_bytes());
    section.extend_from_slice(&(!len).to_le_bytes());
    section.extend_from_slice(&raw);
    section.extend_from_slice(&bitwise_crc32(&raw).to_le_bytes());
    section.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    assert_eq!(
        only_value(&with_section(Compression::Gzip, &section)),
        "sdfdsf"
    );
}

#[test]
fn a_zstd_section_with_a_raw_block() {
    // RFC 8878: magic, a single-segment frame header with a 1-byte content size, one raw
    // block marked last (header: last 1, type 0, size 13 << 3), no checksum.
    let (raw, with_section) = sdfdsf();
    let mut section = vec![0x28, 0xb5, 0x2f, 0xfd, 0x20, raw.len() as u8];
    let block_header = 1 | ((raw.len() as u32) << 3);
    section.extend_from_slice(&block_header.to_le_bytes()[..3]);
    section.extend_from_slice(&raw);
    assert_eq!(
        only_value(&with_section(Compression::Zstd, &section)),
        "sdfdsf"
    );
}

#[test]
fn a_section_that_does_not_decompress_is_corrupt() {
    let (raw, with_section) = sdfdsf();
    for codec in CODECS {
        // Valid CRC, broken stream: its second half cut off. (The lz4 crate ends a truncated
        // frame quietly; the records' framing then finds them short.)
        let mut section = compress(codec, &raw);
        section.truncate(section.len() / 2);
        let bytes = with_section(codec, &section);
        assert!(batch::validate(&bytes).is_ok());
        let result = decode_records(&bytes);
        assert!(
            matches!(&result, Err(BatchError::Corrupt(_))),
            "{codec:?}: {result:?}"
        );
        // Garbage in the place of the stream.
        let bytes = with_section(codec, b"\x00\x01\x02 no such stream");
        match decode_records(&bytes) {
            Err(BatchError::Corrupt(why)) => {
                assert!(why.contains(codec.name()), "{codec:?}: {why}")
            }
            other => panic!("{codec:?}: {other:?}"),
        }
    }
    // A well-formed stream holding one byte more than the records is refused by the framing.
    let mut longer = raw.clone();
    longer.push(0);
    let bytes = with_section(Compression::Zstd, &compress(Compression::Zstd, &longer));
    assert!(matches!(
        decode_records(&bytes),
        Err(BatchError::Corrupt(_))
    ));
}

#[test]
fn recompress_keeps_every_header_field_but_the_codec() {
    let records = records(25);
    for source in Compression::ALL {
        let original = encode_batch(&spec(source), &records);
        let (original_header, expected) = decode_records(&original).unwrap();
        for target in Compression::ALL {
            let bytes = batch::recompress(&original, target).unwrap();
            let (header, decoded) = decode_records(&bytes).unwrap();
            assert_eq!(decoded, expected, "{source:?} -> {target:?}");
            assert_eq!(header.compression(), Ok(target));
            assert_eq!(
                (
                    header.attributes & !0x07,
                    header.last_offset_delta,
                    header.max_timestamp
                ),
                (
                    original_header.attributes & !0x07,
                    original_header.last_offset_delta,
                    original_header.max_timestamp
                )
            );
            assert_eq!(
                bytes,
                encode_batch(&spec(target), &records),
                "{source:?} -> {target:?}"
            );
        }
    }
}

#[test]
fn a_compressed_batch_of_no_records_is_not_decompressed() {
    // As Kafka's `DefaultRecordBatch.iterator`: a count of 0 reads nothing.
    let (_, with_section) = sdfdsf();
    let mut bytes = with_section(Compression::Gzip, &[]);
    bytes[57..61].copy_from_slice(&0i32.to_be_bytes());
    let crc = bitwise_crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    let (header, records) = decode_records(&bytes).unwrap();
    assert_eq!((header.records_count, records.len()), (0, 0));
}
