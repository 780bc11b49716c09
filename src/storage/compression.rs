//! Kafka's `CompressionType`: the codec of a v2 batch's records section (attributes bits 0-2),
//! and the broker's and topic's `compression.type` (`BrokerCompressionType`).
//!
//! In a v2 batch only the records, after the 61-byte header, are compressed, as one stream; the
//! header stays plain so that offsets and the leader epoch can be assigned without touching the
//! records (their offsets are deltas), and the CRC covers the records as stored, compressed.
//!
//! The codecs are kafka-protocol's, which write and read Kafka's framings: gzip (RFC 1952),
//! snappy in xerial-snappy's framing (`SnappyOutputStream`: a 16-byte magic header, then
//! length-prefixed blocks of at most 32 KiB; raw snappy is read too, as `SnappyInputStream`
//! does), LZ4 in the LZ4 frame format (`Lz4BlockOutputStream`, independent blocks) and zstd
//! frames. Levels are fixed, and nothing runs on a thread of its own, so the same records give
//! the same bytes on every run: gzip 6 (Java's `Deflater` default, Kafka's `compression.gzip.level`
//! default), zstd 3 (Kafka's default), LZ4 4 (kafka-protocol's; Kafka's default is 9, KIP-390).
//! Kafka's `compression.*.level` configs are not read.

use bytes::{Buf, BufMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};

/// Kafka's `CompressionType`: its ids are the codec bits of a batch's attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    pub fn from_id(id: i16) -> Option<Compression> {
        Compression::ALL.into_iter().find(|c| c.id() == id)
    }

    /// The codec id, attributes bits 0-2.
    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Kafka's `CompressionType.name`: the producer's `compression.type` values, and what
    /// `kafka-dump-log.sh` prints as `compresscodec`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Kafka's `CompressionType.forName`.
    pub fn from_name(name: &str) -> Option<Compression> {
        Compression::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// A topic's `compression.type` (and the broker's default for it), Kafka's
/// `BrokerCompressionType`: `producer` keeps each batch as the producer compressed it; a codec
/// (`uncompressed` for none) makes the leader recompress every batch stored with another one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BrokerCompression {
    #[default]
    Producer,
    Codec(Compression),
}

impl BrokerCompression {
    /// Kafka's `BrokerCompressionType.forName`: `producer`, `uncompressed` or a codec's name.
    pub fn from_name(name: &str) -> Option<BrokerCompression> {
        match name {
            "producer" => Some(BrokerCompression::Producer),
            "uncompressed" => Some(BrokerCompression::Codec(Compression::None)),
            "none" => None, // the producer's name for it, not the broker's
            other => Compression::from_name(other).map(BrokerCompression::Codec),
        }
    }

    /// Kafka's `BrokerCompressionType.targetCompression`: the codec a batch the producer wrote
    /// with `source` is stored with.
    pub fn target(self, source: Compression) -> Compression {
        match self {
            BrokerCompression::Producer => source,
            BrokerCompression::Codec(codec) => codec,
        }
    }
}

/// The records section as `codec` stores it. Compressing into memory cannot fail.
pub fn compress(codec: Compression, records: &[u8]) -> Vec<u8> {
    match codec {
        Compression::None => records.to_vec(),
        Compression::Gzip => compress_with::<Gzip>(records),
        Compression::Snappy => compress_with::<Snappy>(records),
        Compression::Lz4 => compress_with::<Lz4>(records),
        Compression::Zstd => compress_with::<Zstd>(records),
    }
}

fn compress_with<C: Compressor<Vec<u8>>>(records: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() / 2 + 32);
    C::compress(&mut out, |buf| {
        buf.put_slice(records);
        Ok(())
    })
    .unwrap_or_else(|e| {
        panic!(
            "compressing {} bytes in memory failed: {e:#}",
            records.len()
        )
    });
    out
}

/// The records section `section`, stored with `codec`, decompressed; the error says why the
/// bytes are not a valid stream of that codec.
pub fn decompress(codec: Compression, section: &[u8]) -> Result<Vec<u8>, String> {
    match codec {
        Compression::None => Ok(section.to_vec()),
        Compression::Gzip => decompress_with::<Gzip>(section),
        Compression::Snappy => decompress_with::<Snappy>(section),
        Compression::Lz4 => decompress_with::<Lz4>(section),
        Compression::Zstd => decompress_with::<Zstd>(section),
    }
    .map_err(|why| format!("{} records do not decompress: {why}", codec.name()))
}

fn decompress_with<'a, D: Decompressor<&'a [u8]>>(section: &'a [u8]) -> Result<Vec<u8>, String> {
    let mut input = section;
    D::decompress(&mut input, |buf| {
        let mut out = vec![0; buf.remaining()];
        buf.copy_to_slice(&mut out);
        Ok(out)
    })
    .map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
#[path = "compression_tests.rs"]
mod tests;
