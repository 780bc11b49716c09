//! Tests of the record batch codec (`batch.rs`).

use super::*;
use kafka_protocol::records::{RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};
use proptest::prelude::*;

/// CRC-32C bit by bit (reflected, polynomial 0x82F63B78), independent of the crc32c crate.
fn bitwise_crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn bitwise_crc32c_matches_the_standard_check_value() {
    // The catalogue check value of CRC-32C (iSCSI) for "123456789".
    assert_eq!(bitwise_crc32c(b"123456789"), 0xE306_9283);
}

const BASE_TIMESTAMP: i64 = 1_700_000_000_000; // 0x0000_018B_CFE5_6800

fn fixture_spec() -> BatchSpec {
    BatchSpec {
        base_offset: 100,
        partition_leader_epoch: 7,
        base_timestamp: BASE_TIMESTAMP,
        producer_id: 4242,
        producer_epoch: 3,
        base_sequence: 17,
        transactional: false,
        control: false,
        compression: Compression::None,
    }
}

fn fixture_records() -> Vec<Record> {
    vec![
        Record {
            offset_delta: 0,
            timestamp_delta: 0,
            key: Some(Bytes::from_static(b"k0")),
            value: Some(Bytes::from_static(b"hello")),
            headers: vec![("h".to_owned(), Some(Bytes::from_static(b"v")))],
        },
        Record {
            offset_delta: 1,
            timestamp_delta: 300,
            key: None,
            value: Some(Bytes::from_static(b"world")),
            headers: vec![],
        },
    ]
}

/// The fixture batch, written field by field from the format description.
fn fixture_bytes() -> Vec<u8> {
    let mut b: Vec<u8> = Vec::new();
    b.extend([0, 0, 0, 0, 0, 0, 0, 100]); // baseOffset 100
    b.extend([0, 0, 0, 80]); // batchLength: 49 header bytes after it + 18 + 13 of records
    b.extend([0, 0, 0, 7]); // partitionLeaderEpoch 7
    b.push(2); // magic
    b.extend([0, 0, 0, 0]); // crc, computed below
    b.extend([0, 0]); // attributes: no compression, CreateTime, not transactional
    b.extend([0, 0, 0, 1]); // lastOffsetDelta 1
    b.extend([0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x00]); // baseTimestamp
    b.extend([0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x69, 0x2C]); // maxTimestamp = base + 300
    b.extend([0, 0, 0, 0, 0, 0, 0x10, 0x92]); // producerId 4242
    b.extend([0, 3]); // producerEpoch 3
    b.extend([0, 0, 0, 17]); // baseSequence 17
    b.extend([0, 0, 0, 2]); // recordsCount 2
    assert_eq!(b.len(), 61);
    // Record 0, 18 bytes.
    b.push(0x22); // length 17, zigzag 34
    b.push(0x00); // attributes
    b.push(0x00); // timestampDelta 0
    b.push(0x00); // offsetDelta 0
    b.push(0x04); // keyLength 2, zigzag 4
    b.extend(b"k0");
    b.push(0x0A); // valueLength 5, zigzag 10
    b.extend(b"hello");
    b.push(0x02); // headersCount 1
    b.push(0x02); // header keyLength 1
    b.extend(b"h");
    b.push(0x02); // header valueLength 1
    b.extend(b"v");
    // Record 1, 13 bytes.
    b.push(0x18); // length 12, zigzag 24
    b.push(0x00); // attributes
    b.extend([0xD8, 0x04]); // timestampDelta 300: zigzag 600 = 0b100_1011000 -> 0xD8 0x04
    b.push(0x02); // offsetDelta 1
    b.push(0x01); // keyLength -1 (null), zigzag 1
    b.push(0x0A); // valueLength 5
    b.extend(b"world");
    b.push(0x00); // headersCount 0
    assert_eq!(b.len(), 92);
    let crc = bitwise_crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn encode_batch_matches_the_hand_written_fixture() {
    let encoded = encode_batch(&fixture_spec(), &fixture_records());
    assert_eq!(&encoded[..], &fixture_bytes()[..]);
}

#[test]
fn fixture_header_parses_field_by_field() {
    let bytes = fixture_bytes();
    let h = validate(&bytes).unwrap();
    assert_eq!(h.base_offset, 100);
    assert_eq!(h.batch_length, 80);
    assert_eq!(h.partition_leader_epoch, 7);
    assert_eq!(h.magic, 2);
    assert_eq!(h.crc, bitwise_crc32c(&bytes[21..]));
    assert_eq!(h.attributes, 0);
    assert_eq!(h.last_offset_delta, 1);
    assert_eq!(h.base_timestamp, BASE_TIMESTAMP);
    assert_eq!(h.max_timestamp, BASE_TIMESTAMP + 300);
    assert_eq!(h.producer_id, 4242);
    assert_eq!(h.producer_epoch, 3);
    assert_eq!(h.base_sequence, 17);
    assert_eq!(h.records_count, 2);
    assert_eq!((h.last_offset(), h.next_offset()), (101, 102));
    assert_eq!(h.size_in_bytes(), 92);
    assert_eq!(h.compression(), Ok(Compression::None));
    assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
    assert!(!h.is_transactional() && !h.is_control() && !h.has_delete_horizon());
}

#[test]
fn fixture_round_trips_through_our_decoder() {
    let (header, records) = decode_records(&fixture_bytes()).unwrap();
    assert_eq!(header.records_count, 2);
    assert_eq!(
        records,
        vec![
            DecodedRecord {
                offset: 100,
                timestamp: BASE_TIMESTAMP,
                key: Some(Bytes::from_static(b"k0")),
                value: Some(Bytes::from_static(b"hello")),
                headers: vec![("h".to_owned(), Some(Bytes::from_static(b"v")))],
            },
            DecodedRecord {
                offset: 101,
                timestamp: BASE_TIMESTAMP + 300,
                key: None,
                value: Some(Bytes::from_static(b"world")),
                headers: vec![],
            },
        ]
    );
}

/// kafka-protocol's view of a batch, in our record type.
fn decode_with_kafka_protocol(bytes: &[u8]) -> Vec<DecodedRecord> {
    let mut buf = Bytes::copy_from_slice(bytes);
    let set = RecordBatchDecoder::decode(&mut buf).expect("kafka-protocol decodes our batch");
    assert_eq!(set.version, 2);
    assert!(buf.is_empty(), "kafka-protocol left bytes unread");
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

#[test]
fn kafka_protocol_reads_the_fixture() {
    let bytes = fixture_bytes();
    let (_, ours) = decode_records(&bytes).unwrap();
    assert_eq!(decode_with_kafka_protocol(&bytes), ours);
    let mut buf = Bytes::copy_from_slice(&bytes);
    let info = RecordBatchDecoder::decode_batch_info(&mut buf).unwrap();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].partition_leader_epoch, 7);
    assert_eq!(info[0].producer_id, 4242);
    assert_eq!(info[0].producer_epoch, 3);
    assert_eq!(info[0].base_sequence, 17);
    assert_eq!(info[0].record_count, 2);
}

#[test]
fn kafka_protocol_encodes_the_fixture_identically() {
    let spec = fixture_spec();
    let records: Vec<_> = fixture_records()
        .into_iter()
        .map(|r| kafka_protocol::records::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: spec.partition_leader_epoch,
            producer_id: spec.producer_id,
            producer_epoch: spec.producer_epoch,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: spec.base_offset + i64::from(r.offset_delta),
            sequence: spec.base_sequence + r.offset_delta,
            timestamp: spec.base_timestamp + r.timestamp_delta,
            key: r.key,
            value: r.value,
            headers: r.headers.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: kafka_protocol::records::Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    assert_eq!(&buf[..], &fixture_bytes()[..]);
}

#[test]
fn every_byte_flip_in_the_protected_region_is_detected() {
    let bytes = fixture_bytes();
    // From the magic on: the magic is checked, the CRC covers everything after itself.
    for position in MAGIC_OFFSET..bytes.len() {
        for bit in 0..8 {
            let mut flipped = bytes.clone();
            flipped[position] ^= 1 << bit;
            let result = validate(&flipped);
            assert!(
                result.is_err(),
                "flip of bit {bit} at {position} undetected"
            );
            if position == MAGIC_OFFSET {
                assert!(matches!(result, Err(BatchError::BadMagic(_))));
            } else {
                assert!(matches!(result, Err(BatchError::CrcMismatch { .. })));
            }
        }
    }
}

#[test]
fn unprotected_fields_can_be_rewritten_without_breaking_the_crc() {
    let mut bytes = fixture_bytes();
    set_base_offset(&mut bytes, 9_000);
    set_partition_leader_epoch(&mut bytes, 12);
    let header = validate(&bytes).unwrap();
    assert_eq!(
        (header.base_offset, header.partition_leader_epoch),
        (9_000, 12)
    );
    let (_, records) = decode_records(&bytes).unwrap();
    assert_eq!(records[1].offset, 9_001);
    // A flipped length byte shifts the batch end: also refused, if not by the CRC alone.
    for position in LENGTH_OFFSET..LENGTH_OFFSET + 4 {
        let mut flipped = fixture_bytes();
        flipped[position] ^= 0x01;
        assert!(validate(&flipped).is_err(), "length flip at {position}");
    }
}

#[test]
fn every_proper_prefix_is_truncated() {
    let bytes = fixture_bytes();
    for len in 0..bytes.len() {
        let needed = if len < BATCH_HEADER_LEN { 61 } else { 92 };
        assert_eq!(
            validate(&bytes[..len]),
            Err(BatchError::Truncated { needed, have: len }),
            "prefix of {len} bytes"
        );
    }
}

#[test]
fn header_sanity_checks() {
    let mut bytes = fixture_bytes();
    bytes[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&48i32.to_be_bytes());
    assert_eq!(parse_header(&bytes), Err(BatchError::BadLength(48)));
    bytes[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&(-1i32).to_be_bytes());
    assert_eq!(parse_header(&bytes), Err(BatchError::BadLength(-1)));
    let mut bytes = fixture_bytes();
    bytes[MAGIC_OFFSET] = 1;
    assert_eq!(parse_header(&bytes), Err(BatchError::BadMagic(1)));
}

/// Rewrites a CRC-covered field and re-seals the batch, to reach the checks after the CRC.
fn reseal(bytes: &mut [u8]) {
    let crc = bitwise_crc32c(&bytes[ATTRIBUTES_OFFSET..]);
    bytes[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn inconsistent_counts_and_codecs_are_refused_after_the_crc() {
    let mut bytes = fixture_bytes();
    bytes[RECORDS_COUNT_OFFSET + 3] = 3; // three records but lastOffsetDelta 1
    reseal(&mut bytes);
    assert!(matches!(validate(&bytes), Err(BatchError::Corrupt(_))));

    let mut bytes = fixture_bytes();
    bytes[ATTRIBUTES_OFFSET + 1] = 5; // codec 5 does not exist
    reseal(&mut bytes);
    assert!(matches!(validate(&bytes), Err(BatchError::Corrupt(_))));

    let mut bytes = fixture_bytes();
    bytes[ATTRIBUTES_OFFSET + 1] = 4; // zstd: a valid header, but the records are no zstd frame
    reseal(&mut bytes);
    assert!(validate(&bytes).is_ok());
    assert!(matches!(
        decode_records(&bytes),
        Err(BatchError::Corrupt(why)) if why.contains("zstd records do not decompress")
    ));
}

#[test]
fn record_framing_errors_are_refused() {
    // recordsCount 1 with lastOffsetDelta 1: valid header, but a record's bytes remain.
    let mut bytes = fixture_bytes();
    bytes[RECORDS_COUNT_OFFSET + 3] = 1;
    reseal(&mut bytes);
    assert!(validate(&bytes).is_ok());
    assert!(matches!(
        decode_records(&bytes),
        Err(BatchError::Corrupt(_))
    ));

    // Record 1's offset delta equal to record 0's.
    let mut bytes = fixture_bytes();
    bytes[61 + 18 + 4] = 0x00;
    reseal(&mut bytes);
    assert!(matches!(
        decode_records(&bytes),
        Err(BatchError::Corrupt(_))
    ));

    // Record 0's length one short: its last byte is read as record 1's length.
    let mut bytes = fixture_bytes();
    bytes[61] = 0x20;
    reseal(&mut bytes);
    assert!(matches!(
        decode_records(&bytes),
        Err(BatchError::Corrupt(_))
    ));
}

#[test]
fn log_append_time_sets_max_timestamp_for_every_record() {
    let mut bytes = fixture_bytes();
    set_max_timestamp_log_append_time(&mut bytes, 1_800_000_000_000);
    let header = validate(&bytes).unwrap();
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(header.max_timestamp, 1_800_000_000_000);
    assert_eq!(header.base_timestamp, BASE_TIMESTAMP); // as Kafka: left alone
    let (_, records) = decode_records(&bytes).unwrap();
    assert!(records.iter().all(|r| r.timestamp == 1_800_000_000_000));
    assert_eq!(header.crc, bitwise_crc32c(&bytes[ATTRIBUTES_OFFSET..]));
}

#[test]
fn transactional_and_control_flags() {
    let spec = BatchSpec {
        transactional: true,
        control: true,
        ..fixture_spec()
    };
    let bytes = encode_batch(&spec, &fixture_records());
    let header = validate(&bytes).unwrap();
    assert_eq!(header.attributes, 0x30);
    assert!(header.is_transactional() && header.is_control());
    let mut buf = bytes.clone();
    let info = RecordBatchDecoder::decode_batch_info(&mut buf).unwrap();
    assert!(info[0].transactional && info[0].control);
}

#[test]
fn batches_walks_concatenated_batches_and_stops_at_a_torn_tail() {
    let mut log = Vec::new();
    for base in [0i64, 2, 4] {
        let spec = BatchSpec {
            base_offset: base,
            ..fixture_spec()
        };
        log.extend_from_slice(&encode_batch(&spec, &fixture_records()));
    }
    let mut iter = batches(&log);
    let found: Vec<_> = iter.by_ref().map(|(pos, h)| (pos, h.base_offset)).collect();
    assert_eq!(found, vec![(0, 0), (92, 2), (184, 4)]);
    assert_eq!(iter.stopped_at(), None);

    log.extend_from_slice(&fixture_bytes()[..50]);
    let mut iter = batches(&log);
    assert_eq!(iter.by_ref().count(), 3);
    assert_eq!(
        iter.stopped_at(),
        Some((
            276,
            BatchError::Truncated {
                needed: 61,
                have: 50
            }
        ))
    );
    assert_eq!(iter.position(), 276);
    assert_eq!(iter.next(), None);

    log[92 + 30] ^= 0xFF; // corrupt the second batch's timestamp: iteration stops before it
    let mut iter = batches(&log);
    assert_eq!(iter.by_ref().count(), 1);
    assert!(matches!(
        iter.stopped_at(),
        Some((92, BatchError::CrcMismatch { .. }))
    ));
}

#[test]
fn varints_round_trip_at_the_extremes() {
    for value in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
        let mut buf = Vec::new();
        put_varint(&mut buf, value);
        let mut cursor = Cursor { buf: &buf, pos: 0 };
        assert_eq!(cursor.varint(), Ok(value));
        assert_eq!(cursor.remaining(), 0);
    }
    for value in [0, -1, i64::MAX, i64::MIN, 1 << 40] {
        let mut buf = Vec::new();
        put_varlong(&mut buf, value);
        let mut cursor = Cursor { buf: &buf, pos: 0 };
        assert_eq!(cursor.varlong(), Ok(value));
    }
    let too_long = [0x80u8, 0x80, 0x80, 0x80, 0x80, 0x01];
    assert!(Cursor {
        buf: &too_long,
        pos: 0
    }
    .varint()
    .is_err());
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Option<Bytes>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from))
}

fn arb_record() -> impl Strategy<Value = (i32, i64, Record)> {
    let headers = proptest::collection::btree_map("[a-zé]{0,6}", arb_bytes(8), 0..4);
    (
        1..4i32,
        -(1i64 << 40)..(1i64 << 40),
        arb_bytes(20),
        arb_bytes(300),
        headers,
    )
        .prop_map(|(gap, timestamp_delta, key, value, headers)| {
            let record = Record {
                offset_delta: 0,
                timestamp_delta,
                key,
                value,
                headers: headers.into_iter().collect(),
            };
            (gap, timestamp_delta, record)
        })
}

fn arb_batch() -> impl Strategy<Value = (BatchSpec, Vec<Record>)> {
    let records = proptest::collection::vec(arb_record(), 1..12).prop_map(|generated| {
        let mut offset_delta = -1;
        generated
            .into_iter()
            .map(|(gap, _, mut record)| {
                offset_delta += gap;
                record.offset_delta = offset_delta;
                record
            })
            .collect::<Vec<_>>()
    });
    let spec = (
        0i64..1 << 40,
        -1i32..100,
        0i64..1 << 42,
        -1i64..10_000,
        any::<bool>(),
        proptest::sample::select(Compression::ALL.to_vec()),
    )
        .prop_map(
            |(base_offset, epoch, base_timestamp, producer_id, transactional, compression)| {
                BatchSpec {
                    base_offset,
                    partition_leader_epoch: epoch,
                    base_timestamp,
                    producer_id,
                    producer_epoch: if producer_id < 0 { -1 } else { 0 },
                    base_sequence: if producer_id < 0 { -1 } else { 0 },
                    transactional,
                    control: false,
                    compression,
                }
            },
        );
    (spec, records)
}

proptest! {
    #[test]
    fn random_batches_round_trip_through_both_decoders((spec, records) in arb_batch()) {
        let bytes = encode_batch(&spec, &records);
        let (header, decoded) = decode_records(&bytes).unwrap();
        prop_assert_eq!(header.size_in_bytes(), bytes.len());
        prop_assert_eq!(header.records_count as usize, records.len());
        prop_assert_eq!(header.last_offset_delta, records.last().unwrap().offset_delta);
        let max_delta = records.iter().map(|r| r.timestamp_delta).max().unwrap();
        prop_assert_eq!(header.max_timestamp, spec.base_timestamp + max_delta);
        let expected: Vec<_> = records
            .iter()
            .map(|r| DecodedRecord {
                offset: spec.base_offset + i64::from(r.offset_delta),
                timestamp: spec.base_timestamp + r.timestamp_delta,
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r.headers.clone(),
            })
            .collect();
        prop_assert_eq!(&decoded, &expected);
        prop_assert_eq!(&decode_with_kafka_protocol(&bytes), &expected);
    }

    #[test]
    fn any_single_byte_corruption_is_detected(
        (spec, records) in arb_batch(),
        position in any::<proptest::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let mut bytes = encode_batch(&spec, &records).to_vec();
        let position = MAGIC_OFFSET + position.index(bytes.len() - MAGIC_OFFSET);
        bytes[position] ^= xor;
        prop_assert!(validate(&bytes).is_err());
    }
}

mod offset_range_tests {
    use super::super::*;

    /// A corrupt base offset (outside the CRC) near the ends of i64 is refused, never overflowed.
    #[test]
    fn corrupt_base_offsets_are_refused_not_overflowed() {
        let record = Record {
            offset_delta: 0,
            timestamp_delta: 0,
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: Vec::new(),
        };
        let mut bytes = encode_batch(&BatchSpec::default(), &[record]).to_vec();
        for base in [i64::MAX, MAX_BASE_OFFSET + 1, -1, i64::MIN] {
            set_base_offset(&mut bytes, base);
            assert!(
                matches!(parse_header(&bytes), Err(BatchError::Corrupt(_))),
                "base {base}"
            );
            assert!(validate(&bytes).is_err());
            assert!(batches(&bytes).next().is_none());
        }
        set_base_offset(&mut bytes, 41);
        assert_eq!(validate(&bytes).unwrap().next_offset(), 42);
        set_base_offset(&mut bytes, MAX_BASE_OFFSET);
        assert!(validate(&bytes).is_ok());
    }
}
