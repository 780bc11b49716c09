//! One partition replica on this broker: its log, its leader epoch and its high watermark.
//! Kafka's `Partition` class holds the same.

use serde_json::json;

use super::{BrokerConfig, BrokerContext};
use crate::metadata::PartitionMeta;
use crate::scenario::TopicPartition;
use bytes::Bytes;

use crate::storage::batch;
use crate::storage::cleaner::CleanerConfig;
use crate::storage::log::{AppendInfo, Log, LogError, RecoveryReport};
use crate::storage::retention::RetentionConfig;
use crate::storage::segment::{RollReason, TimestampAndOffset};
use crate::world::{Clock, SharedRecorder};

pub struct Partition {
    pub tp: TopicPartition,
    /// The topic's id (KIP-516) this replica belongs to.
    pub topic_id: String,
    log: Log,
    leader_epoch: i32,
    high_watermark: i64,
    is_leader: bool,
    isr_size: usize,
    min_insync_replicas: i64,
    retention: RetentionConfig,
    cleaner: CleanerConfig,
    planted_bug: Option<super::PlantedBug>,
    node: String,
    broker_id: i32,
    recorder: SharedRecorder,
    clock: Clock,
}

/// What a consumer's read of a partition finds.
pub enum Committed {
    Records(Bytes),
    OffsetOutOfRange,
}

/// Why a produce to this partition was refused.
#[derive(Debug)]
pub enum AppendError {
    NotLeader,
    NotEnoughReplicas,
    Corrupt(String),
    /// Kafka's RECORD_LIST_TOO_LARGE: a batch larger than `segment.bytes`.
    RecordListTooLarge,
    Storage(std::io::Error),
}

/// Why a segment rolled, by the config that made it roll.
fn roll_reason(reason: RollReason) -> &'static str {
    match reason {
        RollReason::SegmentBytes => "segment.bytes",
        RollReason::SegmentMs => "segment.ms",
        RollReason::IndexFull => "segment.index.bytes",
        RollReason::OffsetOverflow => "offset-overflow",
    }
}

impl Partition {
    pub async fn open(
        ctx: &BrokerContext,
        tp: TopicPartition,
        meta: &PartitionMeta,
        config: &BrokerConfig,
    ) -> std::io::Result<(Partition, RecoveryReport)> {
        let now_ms = ctx.clock.now_ms();
        let (log, report) =
            Log::open(ctx.disk.clone(), &tp.to_string(), config.log, now_ms).await?;
        let is_leader = meta.leader == ctx.id;
        // With the leader alone in the ISR, everything the leader holds is committed.
        let high_watermark = log.log_end_offset();
        let partition = Partition {
            tp,
            topic_id: meta.topic_id.clone(),
            log,
            leader_epoch: meta.leader_epoch,
            high_watermark,
            is_leader,
            isr_size: meta.isr.len(),
            min_insync_replicas: config.min_insync_replicas,
            retention: config.retention,
            cleaner: config.cleaner,
            planted_bug: config.planted_bug,
            node: ctx.name.clone(),
            broker_id: ctx.id,
            recorder: ctx.recorder.clone(),
            clock: ctx.clock.clone(),
        };
        Ok((partition, report))
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// A new image's view of this partition (Kafka's `Partition.makeLeader` / `makeFollower`):
    /// whether this broker leads, in which epoch, with how large an ISR. Returns whether the
    /// role or the epoch changed.
    pub fn apply(&mut self, meta: &PartitionMeta) -> bool {
        let is_leader = meta.leader == self.broker_id;
        let changed = is_leader != self.is_leader || meta.leader_epoch != self.leader_epoch;
        self.is_leader = is_leader;
        self.leader_epoch = meta.leader_epoch;
        self.isr_size = meta.isr.len();
        if changed && is_leader {
            // Followers do not fetch yet (replication is issue 6): a new leader commits what it
            // holds, as the leader alone.
            self.high_watermark = self.log.log_end_offset();
        }
        changed
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    pub fn is_leader(&self) -> bool {
        self.is_leader
    }

    pub fn retention_config(&self) -> &RetentionConfig {
        &self.retention
    }

    pub fn cleaner_config(&self) -> &CleanerConfig {
        &self.cleaner
    }

    /// The last stable offset: the HW while Samsa has no transactions.
    pub fn last_stable_offset(&self) -> i64 {
        self.high_watermark
    }

    /// The log, for the log manager's retention, cleaning and flushes (under this partition's
    /// lock, as Kafka's `UnifiedLog` takes its own).
    pub(super) fn log_mut(&mut self) -> &mut Log {
        &mut self.log
    }

    pub(super) fn log(&self) -> &Log {
        &self.log
    }

    /// Appends a producer's batch as leader. `acks=-1` needs at least `min.insync.replicas` in
    /// the ISR before the append (Kafka's `NOT_ENOUGH_REPLICAS`).
    pub async fn append_as_leader(
        &mut self,
        batch: &mut [u8],
        acks: i16,
    ) -> Result<AppendInfo, AppendError> {
        if !self.is_leader {
            return Err(AppendError::NotLeader);
        }
        if acks == -1 && (self.isr_size as i64) < self.min_insync_replicas {
            return Err(AppendError::NotEnoughReplicas);
        }
        if let Some(super::PlantedBug::PanicAtOffset(offset)) = self.planted_bug {
            assert!(
                self.log.log_end_offset() != offset,
                "planted bug: {} panics appending offset {offset} of {}",
                self.node,
                self.tp
            );
        }
        let info = self
            .log
            .append(batch, self.leader_epoch, self.clock.now_ms())
            .await
            .map_err(|e| match e {
                LogError::Io(e) => AppendError::Storage(e),
                LogError::RecordBatchTooLarge { .. } => AppendError::RecordListTooLarge,
                other => AppendError::Corrupt(other.to_string()),
            })?;
        if let Some(reason) = info.rolled {
            self.recorder.event(
                &self.node,
                "roll",
                json!({
                    "partition": self.tp.to_string(),
                    "broker": self.broker_id,
                    // A leader appends one batch: the new segment starts with it.
                    "base": info.first_offset,
                    "reason": roll_reason(reason),
                }),
            );
        }
        // The ISR is the leader alone (see `metadata`), so the HW follows the LEO at once.
        self.high_watermark = self.log.log_end_offset();
        self.recorder.event(
            &self.node,
            "append",
            json!({
                "partition": self.tp.to_string(),
                "broker": self.broker_id,
                "first": info.first_offset,
                "last": info.last_offset,
                "leo": self.log.log_end_offset(),
                "hw": self.high_watermark,
            }),
        );
        Ok(info)
    }

    /// Reads committed batches (wholly below the HW) from `offset`. Reading at the HW returns
    /// nothing; past it (or below the log start) is out of range, as Kafka answers consumers.
    pub async fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Committed, std::io::Error> {
        if offset > self.high_watermark {
            return Ok(Committed::OffsetOutOfRange);
        }
        let read = match self.log.read(offset, max_bytes).await {
            Ok(read) => read,
            Err(LogError::OffsetOutOfRange { .. }) => return Ok(Committed::OffsetOutOfRange),
            Err(LogError::Io(e)) => return Err(e),
            Err(other) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    other.to_string(),
                ))
            }
        };
        let mut end = 0;
        for (position, header) in batch::batches(&read.records) {
            if header.last_offset() >= self.high_watermark {
                break;
            }
            end = position + header.size_in_bytes();
        }
        Ok(Committed::Records(read.records.slice(..end)))
    }

    /// `ListOffsets` by time: the first offset whose record's timestamp is at or above
    /// `timestamp_ms`, if it is below the high watermark (Kafka's `fetchOffsetForTimestamp`
    /// hides what consumers cannot read yet).
    pub async fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> Result<Option<TimestampAndOffset>, std::io::Error> {
        let found = self.log.fetch_offset_by_timestamp(timestamp_ms).await?;
        Ok(found.filter(|f| f.offset < self.high_watermark))
    }
}
