//! The partition log, Kafka's `UnifiedLog` over its `LocalLog`: a partition directory
//! (`<topic>-<partition>/`) of segments (`LogSegment`, by base offset), the partition's
//! `leader-epoch-checkpoint`, and its entries in the log directory's `recovery-point-offset-
//! checkpoint` and `log-start-offset-checkpoint`. Everything on disk is in Kafka's formats, so
//! Kafka's tools read it.
//!
//! - Appends assign offsets (as leader) or keep the leader's (as follower), stamp the leader
//!   epoch, record new epochs in the leader epoch cache, and roll to a new segment first when
//!   the batches would not fit (`segment.bytes`), the segment is old (`segment.ms`) or an index
//!   is full (`segment.index.bytes`).
//! - Rolling flushes everything below the new segment, as Kafka's `roll` schedules at once; so
//!   every segment but the active one is durable.
//! - Flushing (every `flush.messages` messages, every `flush.ms`, at a roll, or when asked)
//!   fsyncs the segments and advances the recovery point. Kafka's `LogManager` checkpoints
//!   recovery points every `log.flush.offset.checkpoint.interval.ms`; here the flush that finds
//!   the last checkpoint that old writes it. A stale checkpoint only makes recovery re-validate
//!   more: it is never ahead of what was fsynced, because a truncation below it (and an open
//!   that finds the log shorter) rewrites it at once.
//! - Opening recovers the log (see `log_loader`).

use std::collections::BTreeMap;
use std::io;

use bytes::Bytes;

use crate::storage::batch::{self, BatchError, BatchHeader, DecodedRecord, TimestampType};
use crate::storage::checkpoint::{self, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT};
use crate::storage::leader_epoch::{EpochEntry, LeaderEpochFileCache, LEADER_EPOCH_CHECKPOINT};
pub use crate::storage::log_config::LogConfig;
pub use crate::storage::log_error::LogError;
use crate::storage::log_loader;
pub use crate::storage::log_loader::RecoveryReport;
use crate::storage::log_txn::ClientBatch;
use crate::storage::producer_state::{AppendOrigin, ProducerStateManager};
use crate::storage::segment::{
    LogSegment, RollParams, RollReason, SegmentInfo, TimestampAndOffset,
};
use crate::world::Disk;

/// Kafka's partition directory name (`LocalLog.logDirName`).
pub fn partition_dir(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// The topic and partition of a partition directory (`<root>/<topic>-<partition>`), as Kafka's
/// `LocalLog.parseTopicPartitionName` splits at the last dash.
pub fn parse_partition_dir(dir: &str) -> Option<(String, i32)> {
    let name = dir.rsplit('/').next()?;
    let (topic, partition) = name.rsplit_once('-')?;
    let partition: i32 = partition.parse().ok()?;
    (!topic.is_empty() && partition >= 0).then(|| (topic.to_owned(), partition))
}

/// Kafka's segment file name: the base offset as 20 zero-padded digits (`LogFileUtils.logFile`).
pub fn segment_file_name(base_offset: i64) -> String {
    crate::storage::segment::log_file_name(base_offset)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    pub log_end_offset: i64,
    /// The broker's time stamped on the batch with LogAppendTime, else -1.
    pub log_append_time_ms: i64,
    /// Whether a new segment was rolled first, and why.
    pub rolled: Option<RollReason>,
    /// The batch repeats one of the producer's last five: nothing was written, and the offsets
    /// are the original append's (Kafka answers a retried produce so).
    pub duplicate: bool,
}

/// Whole batches, as a fetch returns them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadResult {
    /// Concatenated batches of one segment, starting with the one containing the requested
    /// offset; empty when reading at the log end offset.
    pub records: Bytes,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// Checks a producer's batch as Kafka's `LogValidator` does before assigning offsets: exactly
/// one valid batch (produce v3+), recordsCount = lastOffsetDelta + 1 > 0, records well framed.
fn validate_for_append(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = batch::validate(buf)?;
    if header.size_in_bytes() != buf.len() {
        return Err(BatchError::Corrupt(format!(
            "expected exactly one batch of {} bytes, got {} bytes",
            header.size_in_bytes(),
            buf.len()
        )));
    }
    if header.records_count <= 0 || header.records_count - 1 != header.last_offset_delta {
        return Err(BatchError::Corrupt(format!(
            "inconsistent batch offset range: lastOffsetDelta {}, recordsCount {}",
            header.last_offset_delta, header.records_count
        )));
    }
    batch::validate_records(buf)?;
    Ok(header)
}

/// A partition's log on a `Disk`. After an I/O error the in-memory state may no longer match
/// the files: reopen the log (recovery reconciles them), as Kafka takes the log dir offline.
#[derive(Debug)]
pub struct Log {
    pub(crate) disk: Disk,
    pub(crate) dir: String,
    /// The log directory holding the shared checkpoint files (`""` or `"<root>/"`).
    pub(crate) root: String,
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) config: LogConfig,
    pub(crate) segments: BTreeMap<i64, LogSegment>,
    pub(crate) log_start_offset: i64,
    /// Kafka's recovery point: every offset below it has been fsynced by this log.
    pub(crate) recovery_point: i64,
    pub(crate) epochs: LeaderEpochFileCache,
    /// The latest time the log was given (appends, `flush_if_due`, open).
    pub(crate) clock_ms: i64,
    pub(crate) last_flush_ms: i64,
    pub(crate) last_checkpoint_ms: i64,
    /// Kafka's `ProducerStateManager`: producers' epochs and sequences, open transactions.
    pub(crate) producer_state: ProducerStateManager,
}

impl Log {
    /// Opens the log in `dir` (`[<root>/]<topic>-<partition>`), creating it if it does not
    /// exist, else recovering it (see `log_loader`).
    pub async fn open(
        disk: Disk,
        dir: &str,
        config: LogConfig,
        now_ms: i64,
    ) -> io::Result<(Log, RecoveryReport)> {
        log_loader::load(disk, dir, config, now_ms).await
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// Kafka's `unflushedMessages`: log end offset minus recovery point.
    pub fn unflushed_messages(&self) -> u64 {
        (self.log_end_offset() - self.recovery_point).max(0) as u64
    }

    pub fn size_in_bytes(&self) -> u64 {
        self.segments.values().map(LogSegment::size_bytes).sum()
    }

    /// Every segment, oldest first; the last is the active one.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let active = self.active().base_offset();
        self.segments
            .values()
            .map(|s| s.info(s.base_offset() == active))
            .collect()
    }

    pub fn segment(&self, base_offset: i64) -> Option<&LogSegment> {
        self.segments.get(&base_offset)
    }

    /// Lookups whose offset index position did not fit the log and were answered by a scan.
    pub fn index_misses(&self) -> u64 {
        self.segments.values().map(LogSegment::index_misses).sum()
    }

    pub fn leader_epochs(&self) -> &[EpochEntry] {
        self.epochs.entries()
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// Records that `epoch` starts at `start_offset` before any batch of it is written (a new
    /// leader's `maybeAssignEpochStartOffset`), and writes the cache if it changed.
    pub async fn assign_epoch_start(&mut self, epoch: i32, start_offset: i64) -> io::Result<()> {
        if self.epochs.assign(epoch, start_offset) {
            self.write_epochs().await?;
        }
        Ok(())
    }

    /// Where `epoch` ended in this log (KIP-101's `OffsetsForLeaderEpoch` answer).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    pub(crate) fn active(&self) -> &LogSegment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub(crate) fn active_mut(&mut self) -> &mut LogSegment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub(crate) fn tick(&mut self, now_ms: i64) {
        self.clock_ms = self.clock_ms.max(now_ms);
    }

    /// Appends a producer's batch as the leader: validates it (CRC, framing, counts, every
    /// record, decompressed if need be), recompresses it if the topic's `compression.type`
    /// names another codec, assigns its offsets from the log end offset, stamps `leader_epoch`
    /// (and, with LogAppendTime, `now_ms`) in place, and writes it. `batch` holds exactly one
    /// batch; on return it holds the bytes as written.
    pub async fn append(
        &mut self,
        batch: &mut Vec<u8>,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_from(batch, leader_epoch, now_ms, AppendOrigin::Client)
            .await
    }

    /// `append` of a batch from `origin`: a client's (epochs, sequences and duplicates
    /// checked) or a coordinator's own (Kafka's `AppendOrigin.COORDINATOR`: the group
    /// coordinator writes transactional offset commits in the producer's name; only the epoch
    /// is checked).
    pub async fn append_from(
        &mut self,
        batch: &mut Vec<u8>,
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<AppendInfo, LogError> {
        self.tick(now_ms);
        let header = validate_for_append(batch)?;
        let producer = match self.check_client_batch(&header, origin)? {
            ClientBatch::Duplicate(info) => return Ok(info),
            ClientBatch::Append(producer) => producer,
        };
        let target = self.config.compression_type.target(header.compression()?);
        if target != header.compression()? {
            *batch = batch::recompress(batch, target)?;
            debug_assert_eq!(
                batch::validate_records(batch).map(|h| h.records_count),
                Ok(header.records_count),
                "recompression changed the records"
            );
        }
        batch::set_base_offset(batch, self.log_end_offset());
        batch::set_partition_leader_epoch(batch, leader_epoch);
        let log_append_time_ms = match self.config.message_timestamp_type {
            TimestampType::LogAppendTime => {
                batch::set_max_timestamp_log_append_time(batch, now_ms);
                now_ms
            }
            TimestampType::CreateTime => -1,
        };
        let header = batch::parse_header(batch)?;
        let rolled = self.append_batches(batch, &[header], now_ms, false).await?;
        self.on_leader_appended(producer, None, header.next_offset())
            .await?;
        Ok(self.append_info(
            header.base_offset,
            header.last_offset(),
            log_append_time_ms,
            rolled,
        ))
    }

    /// Appends a leader's batches as a follower: offsets, epochs and timestamps are kept, and
    /// must continue the log exactly. Every batch is validated (CRC); a torn or invalid one fails
    /// the append and nothing is written.
    pub async fn append_as_follower(
        &mut self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.tick(now_ms);
        let mut iter = batch::batches(records);
        let headers: Vec<BatchHeader> = iter.by_ref().map(|(_, header)| header).collect();
        if let Some((_, error)) = iter.stopped_at() {
            return Err(LogError::Corrupt(error));
        }
        let (Some(first), Some(last)) = (headers.first(), headers.last()) else {
            // An empty fetch: nothing to append, reported as an empty range (last < first).
            let log_end_offset = self.log_end_offset();
            return Ok(self.append_info(log_end_offset, log_end_offset - 1, -1, None));
        };
        let mut expected = self.log_end_offset();
        for header in &headers {
            if header.base_offset != expected {
                return Err(LogError::UnexpectedAppendOffset {
                    first_offset: header.base_offset,
                    log_end_offset: expected,
                });
            }
            expected = header.next_offset();
        }
        let (first_offset, last_offset) = (first.base_offset, last.last_offset());
        self.check_replicated_markers(records, &headers)?;
        let rolled = self.append_batches(records, &headers, now_ms, true).await?;
        Ok(self.append_info(first_offset, last_offset, -1, rolled))
    }

    pub(crate) fn append_info(
        &self,
        first_offset: i64,
        last_offset: i64,
        log_append_time_ms: i64,
        rolled: Option<RollReason>,
    ) -> AppendInfo {
        AppendInfo {
            first_offset,
            last_offset,
            log_end_offset: self.log_end_offset(),
            log_append_time_ms,
            rolled,
            duplicate: false,
        }
    }

    /// Writes validated, offset-assigned batches at the log end, in runs that each fit a segment
    /// (rolling before a run when due), then flushes if due (Kafka's `UnifiedLog.append`).
    /// `replicated` batches (a follower's) update the producer state run by run, so that a roll
    /// between two runs snapshots the state of the batches below it; a leader's caller updates
    /// it after.
    pub(crate) async fn append_batches(
        &mut self,
        bytes: &[u8],
        headers: &[BatchHeader],
        now_ms: i64,
        replicated: bool,
    ) -> Result<Option<RollReason>, LogError> {
        let segment_bytes = self.config.segment_bytes;
        if let Some(h) = headers
            .iter()
            .find(|h| h.size_in_bytes() as u64 > segment_bytes)
        {
            return Err(LogError::RecordBatchTooLarge {
                size: h.size_in_bytes(),
                segment_bytes,
            });
        }
        let mut rolled = None;
        let (mut start, mut position) = (0, 0);
        while start < headers.len() {
            let mut end = start;
            let mut run_bytes = 0;
            while end < headers.len()
                && run_bytes + headers[end].size_in_bytes() as u64 <= segment_bytes
            {
                run_bytes += headers[end].size_in_bytes() as u64;
                end += 1;
            }
            let run = &headers[start..end];
            let params = RollParams {
                messages_bytes: run_bytes,
                max_timestamp_in_messages: run.iter().map(|h| h.max_timestamp).max().unwrap_or(-1),
                max_offset_in_messages: run[run.len() - 1].last_offset(),
                now_ms,
            };
            if let Some(reason) = self.active().should_roll(&self.config, &params) {
                self.roll(now_ms).await?;
                rolled = Some(reason);
            }
            self.assign_epochs(run).await?;
            let run_end = position + run_bytes as usize;
            let disk = self.disk.clone();
            self.active_mut()
                .append(&disk, &bytes[position..run_end], run, now_ms)
                .await?;
            if replicated {
                self.replay_batches(&bytes[position..run_end], run, true)
                    .await?;
            }
            (start, position) = (end, run_end);
        }
        if self.unflushed_messages() >= self.config.flush_interval_messages {
            self.flush().await?;
        } else {
            self.flush_if_due(now_ms).await?;
        }
        Ok(rolled)
    }

    /// Records the batches' new epochs, and writes the cache before the batches (Kafka's
    /// `assign`, synchronous: the file never misses an epoch the log holds).
    async fn assign_epochs(&mut self, headers: &[BatchHeader]) -> io::Result<()> {
        let mut changed = false;
        for header in headers {
            changed |= self
                .epochs
                .assign(header.partition_leader_epoch, header.base_offset);
        }
        if changed {
            self.write_epochs().await?;
        }
        Ok(())
    }

    pub(crate) async fn write_epochs(&self) -> io::Result<()> {
        let path = format!("{}/{LEADER_EPOCH_CHECKPOINT}", self.dir);
        let tmp = format!("{path}.tmp");
        checkpoint::write_atomically(&self.disk, &path, &tmp, &self.epochs.to_text()).await
    }

    /// Starts a new active segment at the log end offset (Kafka's `roll`): the old one records
    /// its largest timestamp, and everything below the new segment is flushed. Does nothing if
    /// the active segment is empty. Returns the new segment's base offset.
    pub async fn roll(&mut self, now_ms: i64) -> io::Result<Option<i64>> {
        self.tick(now_ms);
        if self.active().size_bytes() == 0 {
            return Ok(None);
        }
        let disk = self.disk.clone();
        self.active_mut().on_become_inactive(&disk).await?;
        self.flush().await?;
        let base_offset = self.log_end_offset();
        let segment =
            LogSegment::create(&disk, &self.dir, base_offset, &self.config, now_ms).await?;
        self.segments.insert(base_offset, segment);
        // Kafka's `roll`: a snapshot at the new segment's base, so that recovering it starts
        // from that snapshot and this segment's batches.
        self.producer_state.update_map_end_offset(base_offset);
        self.producer_state.take_snapshot(&disk, &self.dir).await?;
        Ok(Some(base_offset))
    }

    /// fsyncs every segment holding offsets at or above the recovery point (the files written
    /// since their last fsync), which then moves to the log end offset; the recovery-point
    /// checkpoint is written if the last write is older than
    /// `recovery_point_checkpoint_interval_ms`. A truncated segment is fsynced even with nothing
    /// new below the log end: a roll must not leave it able to grow back over its successor.
    pub async fn flush(&mut self) -> io::Result<()> {
        let log_end_offset = self.log_end_offset();
        self.last_flush_ms = self.clock_ms;
        let from = self
            .segments
            .range(..=self.recovery_point)
            .next_back()
            .map_or(i64::MIN, |(&base, _)| base);
        let disk = self.disk.clone();
        for segment in self.segments.range_mut(from..).map(|(_, s)| s) {
            segment.flush(&disk).await?;
        }
        if self.recovery_point >= log_end_offset {
            return Ok(());
        }
        self.recovery_point = log_end_offset;
        let since = self.clock_ms.saturating_sub(self.last_checkpoint_ms);
        if since >= self.config.recovery_point_checkpoint_interval_ms {
            self.write_recovery_point().await?;
            self.delete_snapshots_after_recovery_point_checkpoint()
                .await?;
        }
        Ok(())
    }

    /// Flushes if `flush.ms` has passed since the last flush and messages are unflushed (Kafka's
    /// `LogManager.flushDirtyLogs`). The broker calls it on appends and may call it on a timer.
    pub async fn flush_if_due(&mut self, now_ms: i64) -> io::Result<bool> {
        self.tick(now_ms);
        let due = now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_interval_ms;
        if due && self.unflushed_messages() > 0 {
            self.flush().await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Writes this log's recovery point into the log directory's checkpoint.
    pub async fn write_recovery_point(&mut self) -> io::Result<()> {
        let path = format!("{}{RECOVERY_POINT_CHECKPOINT}", self.root);
        checkpoint::update_offset(
            &self.disk,
            &path,
            &self.topic,
            self.partition,
            self.recovery_point,
        )
        .await?;
        self.last_checkpoint_ms = self.clock_ms;
        Ok(())
    }

    pub(crate) async fn write_log_start_offset(&self) -> io::Result<()> {
        let path = format!("{}{LOG_START_OFFSET_CHECKPOINT}", self.root);
        checkpoint::update_offset(
            &self.disk,
            &path,
            &self.topic,
            self.partition,
            self.log_start_offset,
        )
        .await
    }

    /// Reads whole batches of one segment from the one containing `from_offset`, adding
    /// following batches while the total stays within `max_bytes`; the first batch is returned
    /// even if it alone exceeds `max_bytes` (Kafka's `minOneMessage`, KIP-74). Unlike Kafka,
    /// which may cut the last batch at `max_bytes`, only whole batches are returned, each
    /// CRC-checked. Reading at the log end offset returns no records; below the log start offset
    /// or above the log end offset is `OffsetOutOfRange`.
    pub async fn read(&self, from_offset: i64, max_bytes: usize) -> Result<ReadResult, LogError> {
        let (log_start_offset, log_end_offset) = (self.log_start_offset, self.log_end_offset());
        if from_offset < log_start_offset || from_offset > log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset: from_offset,
                log_start_offset,
                log_end_offset,
            });
        }
        let mut records = Bytes::new();
        let floor = self
            .segments
            .range(..=from_offset)
            .next_back()
            .map_or(i64::MIN, |(&base, _)| base);
        for segment in self.segments.range(floor..).map(|(_, s)| s) {
            if let Some(bytes) = segment.read(&self.disk, from_offset, max_bytes).await? {
                records = bytes;
                break;
            }
        }
        Ok(ReadResult {
            records,
            log_start_offset,
            log_end_offset,
        })
    }

    /// The first record at or after the log start offset whose timestamp is at or above
    /// `timestamp_ms` (`ListOffsets` by time; Kafka's `fetchOffsetByTimestamp`), `None` if every
    /// record is older. Kafka searches only the first segment whose largest timestamp reaches
    /// the target; if the log start offset hides that segment's match, the next ones are
    /// searched here too.
    pub async fn fetch_offset_by_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> Result<Option<TimestampAndOffset>, LogError> {
        for segment in self.segments.values() {
            if segment.next_offset() <= self.log_start_offset
                || segment.max_timestamp().timestamp < timestamp_ms
            {
                continue;
            }
            let found = segment
                .find_offset_by_timestamp(&self.disk, timestamp_ms, self.log_start_offset)
                .await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The position of the batch holding `offset`: its segment's base offset and the byte in
    /// that segment (Kafka's `LogOffsetMetadata`), `None` outside the log.
    pub async fn position_of(&self, offset: i64) -> Result<Option<(i64, u64)>, LogError> {
        if offset < self.log_start_offset || offset >= self.log_end_offset() {
            return Ok(None);
        }
        let Some((&base, segment)) = self.segments.range(..=offset).next_back() else {
            return Ok(None);
        };
        let found = segment.translate_offset(&self.disk, offset).await?;
        Ok(found.map(|(position, _)| (base, position)))
    }

    /// Replaces a run of consecutive non-active segments (`bases`, oldest first) with one
    /// segment holding `cleaned`, the log cleaner's copy of them (Kafka's `replaceSegments`):
    /// whole batches, offsets preserved, gaps where records were removed, starting at the first
    /// segment's base offset. The copy is written as `<base>.log.cleaned` with its indexes and
    /// fsynced, renamed to `.swap` (the commit point), the other segments of the run are
    /// deleted, and the copy put in place of the first. A crash before the commit leaves the old
    /// segments (the next open deletes `.cleaned` files), after it the new one (the next open
    /// completes the `.swap` as Kafka's `LogLoader` does). Reads see the old segments until
    /// this returns, the new one after.
    pub async fn replace_with_cleaned(
        &mut self,
        bases: &[i64],
        cleaned: &[u8],
    ) -> Result<(), LogError> {
        let active = self.active().base_offset();
        let run: Vec<&LogSegment> = bases
            .first()
            .map(|&first| self.segments.range(first..).map(|(_, s)| s))
            .into_iter()
            .flatten()
            .take(bases.len())
            .collect();
        let listed = run
            .iter()
            .map(|s| s.base_offset())
            .eq(bases.iter().copied());
        if bases.is_empty() || !listed || bases.contains(&active) {
            return Err(crate::storage::log_error::invalid_input(format!(
                "{}: {bases:?} are not consecutive inactive segments",
                self.dir
            )));
        }
        let end_offset = run[run.len() - 1].next_offset();
        // The cleaner keeps control batches, so the run's aborted transactions stay indexed.
        let aborted: Vec<_> = run
            .iter()
            .flat_map(|s| s.txn_index.entries().iter().copied())
            .collect();
        let last_modified_ms = run.iter().map(|s| s.last_modified_ms).max().unwrap_or(0);
        let mut segment =
            LogSegment::from_cleaned(run[0], end_offset, last_modified_ms, cleaned, &self.config)?;
        let disk = self.disk.clone();
        if let Err(e) = segment.write_cleaned(&disk, cleaned).await {
            segment.remove_cleaned(&disk).await;
            return Err(e.into());
        }
        segment.commit_cleaned(&disk).await?;
        for base in &bases[1..] {
            let old = self.segments.remove(base).expect("listed");
            old.delete(&disk).await?;
        }
        segment.finish_swap(&disk).await?;
        segment.txn_index.reset(&disk).await?;
        for txn in aborted {
            segment.txn_index.append(&disk, txn).await?;
        }
        segment.txn_index.flush(&disk).await?;
        self.segments.insert(bases[0], segment);
        Ok(())
    }

    /// Every record from the log start offset, in offset order (the final state of a run).
    pub async fn read_all_records(&self) -> Result<Vec<DecodedRecord>, LogError> {
        let mut records = Vec::new();
        for segment in self.segments.values() {
            let bytes = segment.read_all(&self.disk).await?;
            let mut iter = batch::batches(&bytes);
            for (position, header) in iter.by_ref() {
                let end = position + header.size_in_bytes();
                let (_, batch_records) = batch::decode_records(&bytes[position..end])?;
                records.extend(
                    batch_records
                        .into_iter()
                        .filter(|r| r.offset >= self.log_start_offset),
                );
            }
            if let Some((_, error)) = iter.stopped_at() {
                return Err(LogError::Corrupt(error));
            }
        }
        Ok(records)
    }
}
