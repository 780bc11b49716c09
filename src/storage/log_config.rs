//! A partition log's Kafka configs, by their topic-level names (`LogConfig` in Kafka); the
//! broker's `log.*` synonyms give their defaults (see `runner::config::log_config`).

use crate::storage::batch::TimestampType;
use crate::storage::compression::BrokerCompression;

/// The log's Kafka configs (topic-level names; the broker's `log.*` synonyms give defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: a segment rolls before it would exceed this (default 1 GiB).
    pub segment_bytes: u64,
    /// `segment.ms`: a segment rolls once its first batch is this old (default 7 days).
    /// `segment.jitter.ms` is not applied.
    pub segment_ms: i64,
    /// `segment.index.bytes`: the size at which an index is full (default 10 MiB).
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`: bytes between offset index entries (default 4096).
    pub index_interval_bytes: u64,
    /// `flush.messages`: fsync once this many messages are unflushed. Kafka's default is
    /// `Long.MAX_VALUE`: never, durability comes from replication.
    pub flush_interval_messages: u64,
    /// `flush.ms`: fsync once the last flush is this old (default `Long.MAX_VALUE`: never).
    pub flush_interval_ms: i64,
    /// `message.timestamp.type`: CreateTime keeps the producer's timestamps, LogAppendTime
    /// stamps the broker's clock.
    pub message_timestamp_type: TimestampType,
    /// The broker's `log.flush.offset.checkpoint.interval.ms` (default 60 s): the least time
    /// between two writes of the recovery-point checkpoint.
    pub recovery_point_checkpoint_interval_ms: i64,
    /// `compression.type` (default `producer`): a codec makes the leader recompress batches
    /// the producer compressed otherwise (Kafka's `LogValidator`).
    pub compression_type: BrokerCompression,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: 10 << 20,
            index_interval_bytes: 4096,
            flush_interval_messages: i64::MAX as u64,
            flush_interval_ms: i64::MAX,
            message_timestamp_type: TimestampType::CreateTime,
            recovery_point_checkpoint_interval_ms: 60_000,
            compression_type: BrokerCompression::Producer,
        }
    }
}
