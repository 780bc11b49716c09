//! The broker's log manager: the background work Kafka's `LogManager` and `LogCleaner` do over
//! every partition log of a broker.
//!
//! - **Retention** (`LogManager.cleanupLogs`), every `log.retention.check.interval.ms`: for each
//!   partition, the segments `retention::segments_to_delete` picks (log start offset breach,
//!   `retention.bytes`, `retention.ms`, bounded by the high watermark) are deleted, the active
//!   one too once it has rolled (`UnifiedLog.deleteSegments`: "we must always have at least one
//!   segment"), and the log start offset moves to the first segment left.
//! - **The cleaner** (`LogCleaner.CleanerThread`), for partitions whose `cleanup.policy` has
//!   `compact`: it cleans the filthiest log whose dirty ratio exceeds
//!   `min.cleanable.dirty.ratio`, then looks again at once; when none is dirty enough it backs
//!   off `log.cleaner.backoff.ms`. One round is the `storage::cleaner` core's recipe: the
//!   cleanable range (up to the last stable offset, the HW while Samsa has no transactions), an
//!   offset map over the dirty section, every segment below the round's end cleaned against it
//!   and swapped in (`Log::replace_with_cleaned`). Where each log's last round ended is kept in
//!   memory and in Kafka's `cleaner-offset-checkpoint` at the log directory's root.
//! - **Flushes** (`LogManager.flushDirtyLogs`): every `log.flush.scheduler.interval.ms`, each log
//!   whose last flush is older than its `flush.ms` is flushed.
//!
//! Each task holds a partition's lock for the whole of its work on that partition, so appends
//! and fetches wait meanwhile, and retention and cleaning of one log never overlap (Kafka pauses
//! cleaning during retention; its cleaner copies without the log's lock and takes it to swap).
//! The tasks run on the broker's node: a kill or a crash ends them, a restart starts them over,
//! retention and flushes after Kafka's `InitialTaskDelayMs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{Broker, BrokerConfig, Partition};
use crate::scenario::TopicPartition;
use crate::storage::checkpoint;
use crate::storage::cleaner::{self, CleanerConfig, CleaningRound};
use crate::storage::log::{Log, LogError};
use crate::storage::retention::{self, Reason, RetentionConfig, SegmentInfo};

/// Kafka's `LogCleaner` checkpoint file, at the root of the log directory.
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";

/// Kafka's `LogManager.InitialTaskDelayMs`: the first retention check and flush wait this long
/// after the broker starts.
pub const INITIAL_TASK_DELAY_MS: u64 = 30_000;

/// The broker-level configs of the log manager's tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogManagerConfig {
    /// `log.retention.check.interval.ms` (default 300000).
    pub retention_check_interval_ms: u64,
    /// `log.cleaner.enable` (default true): without it, compacted topics are never cleaned.
    pub cleaner_enable: bool,
    /// `log.cleaner.backoff.ms` (default 15000), at least 1 so that an idle cleaner sleeps.
    pub cleaner_backoff_ms: u64,
    /// How often `flush.ms` is checked (`log.flush.scheduler.interval.ms`, Kafka's default
    /// `Long.MAX_VALUE`: `None`, never; see `runner::config::log_manager_config`).
    pub flush_check_interval_ms: Option<u64>,
}

impl Default for LogManagerConfig {
    fn default() -> Self {
        LogManagerConfig {
            retention_check_interval_ms: 300_000,
            cleaner_enable: true,
            cleaner_backoff_ms: 15_000,
            flush_check_interval_ms: None,
        }
    }
}

/// Starts the broker's background tasks on the current node.
pub(super) fn spawn(broker: &Arc<Broker>) {
    let config = broker.ctx.log_manager;
    tokio::spawn(retention_task(
        broker.clone(),
        config.retention_check_interval_ms,
    ));
    // Partitions come and go with the metadata; the cleaner runs if any topic may compact.
    let compacted = std::iter::once(&broker.ctx.config)
        .chain(broker.ctx.topic_config.values())
        .any(|config| config.retention.cleanup_policy.compact);
    if config.cleaner_enable && compacted {
        tokio::spawn(cleaner_task(broker.clone(), config.cleaner_backoff_ms));
    }
    if let Some(interval_ms) = config.flush_check_interval_ms {
        tokio::spawn(flush_task(broker.clone(), interval_ms));
    }
}

fn topic_config<'a>(broker: &'a Broker, tp: &TopicPartition) -> &'a BrokerConfig {
    broker
        .ctx
        .topic_config
        .get(&tp.topic)
        .unwrap_or(&broker.ctx.config)
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn trace(broker: &Broker, kind: &str, detail: Value) {
    broker.ctx.recorder.event(&broker.ctx.name, kind, detail);
}

/// The log's segments as retention and the cleaner see them, oldest first.
fn segment_view(log: &Log) -> Vec<SegmentInfo> {
    log.segments()
        .into_iter()
        .map(|s| SegmentInfo {
            base_offset: s.base_offset,
            next_offset: s.next_offset,
            size_bytes: s.size_bytes,
            largest_timestamp_ms: s.largest_timestamp_ms,
            is_active: s.is_active,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Retention

async fn retention_task(broker: Arc<Broker>, interval_ms: u64) {
    sleep_ms(INITIAL_TASK_DELAY_MS).await;
    loop {
        for (tp, partition) in broker.partitions() {
            let mut partition = partition.lock().await;
            retain(&broker, &tp, &mut partition).await;
        }
        sleep_ms(interval_ms).await;
    }
}

/// What one retention check deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    /// The deleted segments, oldest first, each with the rule that took it.
    pub deleted: Vec<(SegmentInfo, Reason)>,
    /// The base offset of the segment rolled because the active one was due for deletion.
    pub rolled: Option<i64>,
    pub log_start_offset: i64,
    /// The log's size afterwards.
    pub bytes_left: u64,
}

impl Deletion {
    fn to_json(&self, tp: &TopicPartition, broker: i32) -> Value {
        let deleted: Vec<Value> = self
            .deleted
            .iter()
            .map(|(segment, reason)| {
                json!({
                    "base": segment.base_offset,
                    "next": segment.next_offset,
                    "bytes": segment.size_bytes,
                    "largest_timestamp": segment.largest_timestamp_ms,
                    "reason": reason_name(*reason),
                })
            })
            .collect();
        json!({
            "partition": tp.to_string(),
            "broker": broker,
            "deleted": deleted,
            "rolled": self.rolled,
            "log_start_offset": self.log_start_offset,
            "bytes_left": self.bytes_left,
        })
    }
}

async fn retain(broker: &Broker, tp: &TopicPartition, partition: &mut Partition) {
    let now_ms = broker.ctx.clock.now_ms();
    let config = *partition.retention_config();
    let high_watermark = partition.high_watermark();
    match delete_old_segments(partition.log_mut(), &config, high_watermark, now_ms).await {
        Ok(None) => {}
        Ok(Some(deletion)) => trace(broker, "retention", deletion.to_json(tp, broker.ctx.id)),
        Err(e) => trace(
            broker,
            "retention-error",
            json!({ "partition": tp.to_string(), "broker": broker.ctx.id, "error": e.to_string() }),
        ),
    }
}

/// Kafka's `SegmentDeletionReason`, by the config that was breached.
fn reason_name(reason: Reason) -> &'static str {
    match reason {
        Reason::LogStartOffsetBreach => "log-start-offset",
        Reason::RetentionSizeBreach => "retention.bytes",
        Reason::RetentionMsBreach => "retention.ms",
    }
}

/// Kafka's `UnifiedLog.deleteOldSegments`: deletes what `retention::segments_to_delete` picks,
/// oldest first, rolling first if that includes the active segment, and moves the log start
/// offset (checkpointed) to the first segment left. A crash midway leaves a shorter prefix
/// deleted, which the next open accepts (the log start offset is at least the first segment's
/// base).
pub async fn delete_old_segments(
    log: &mut Log,
    config: &RetentionConfig,
    high_watermark: i64,
    now_ms: i64,
) -> Result<Option<Deletion>, LogError> {
    let segments = segment_view(log);
    let log_start_offset = log.log_start_offset();
    let doomed =
        retention::segments_to_delete(&segments, config, now_ms, high_watermark, log_start_offset);
    if doomed.is_empty() {
        return Ok(None);
    }
    let new_log_start_offset =
        retention::new_log_start_offset(&segments, &doomed, log_start_offset);
    let mut rolled = None;
    if doomed.len() == segments.len() {
        rolled = log.roll(now_ms).await?;
        assert!(
            rolled.is_some(),
            "{}: retention picked an empty active segment",
            log.dir()
        );
    }
    let mut deleted = Vec::with_capacity(doomed.len());
    for (segment, &(base, reason)) in segments.iter().zip(&doomed) {
        debug_assert_eq!(segment.base_offset, base);
        log.delete_segment(base).await?;
        deleted.push((*segment, reason));
    }
    log.advance_log_start_offset(new_log_start_offset).await?;
    log.write_log_start_offset().await?;
    assert_eq!(
        log.log_start_offset(),
        new_log_start_offset,
        "{}: the log start offset is the first segment left",
        log.dir()
    );
    Ok(Some(Deletion {
        deleted,
        rolled,
        log_start_offset: new_log_start_offset,
        bytes_left: log.size_in_bytes(),
    }))
}

// ---------------------------------------------------------------------------------------------
// The cleaner

async fn cleaner_task(broker: Arc<Broker>, backoff_ms: u64) {
    let mut checkpoints = read_cleaner_checkpoints(&broker).await;
    loop {
        // Clean the filthiest log, then the next, each at most once before backing off (Kafka
        // backs off only when nothing is dirty enough; a cleaned log is not, until it rolls).
        let mut cleaned = BTreeSet::new();
        while let Some(tp) = clean_filthiest(&broker, &mut checkpoints, &cleaned).await {
            cleaned.insert(tp);
        }
        sleep_ms(backoff_ms.max(1)).await;
    }
}

fn compacted(
    broker: &Broker,
) -> impl Iterator<Item = (TopicPartition, Arc<tokio::sync::Mutex<Partition>>)> + '_ {
    broker
        .partitions()
        .into_iter()
        .filter(|(tp, _)| topic_config(broker, tp).retention.cleanup_policy.compact)
}

fn cleaner_checkpoint_path(log: &Log) -> String {
    format!("{}{CLEANER_OFFSET_CHECKPOINT}", log.root)
}

/// Each compacted log's checkpoint from the file; a missing or unreadable one is absent (the
/// log is then cleaned from its start, as Kafka does).
async fn read_cleaner_checkpoints(broker: &Broker) -> BTreeMap<TopicPartition, i64> {
    let mut checkpoints = BTreeMap::new();
    for (tp, partition) in compacted(broker) {
        let partition = partition.lock().await;
        let log = partition.log();
        let path = cleaner_checkpoint_path(log);
        let found = checkpoint::read_offset(&log.disk, &path, &log.topic, log.partition).await;
        if let Ok(Some(offset)) = found {
            checkpoints.insert(tp.clone(), offset);
        }
    }
    checkpoints
}

/// What the log's next round would clean, if it is dirty enough: its dirty ratio.
fn dirty_ratio(partition: &Partition, checkpoint: Option<i64>, now_ms: i64) -> Option<f64> {
    let config = partition.cleaner_config();
    let log = partition.log();
    let range = cleaner::cleanable_range(
        &segment_view(log),
        checkpoint,
        log.log_start_offset(),
        partition.last_stable_offset(),
        now_ms,
        config,
    );
    cleaner::should_clean(range.clean_bytes, range.cleanable_bytes, config)
        .then(|| cleaner::dirty_ratio(range.clean_bytes, range.cleanable_bytes))
}

/// Kafka's `grabFilthiestCompactedLog` and `cleanLog`: cleans the dirtiest log not in `skip`,
/// and returns it; `None` when no log is dirty enough.
async fn clean_filthiest(
    broker: &Broker,
    checkpoints: &mut BTreeMap<TopicPartition, i64>,
    skip: &BTreeSet<TopicPartition>,
) -> Option<TopicPartition> {
    let mut filthiest: Option<(f64, TopicPartition, Arc<tokio::sync::Mutex<Partition>>)> = None;
    for (tp, handle) in compacted(broker).filter(|(tp, _)| !skip.contains(tp)) {
        let partition = handle.lock().await;
        let now_ms = broker.ctx.clock.now_ms();
        if let Some(ratio) = dirty_ratio(&partition, checkpoints.get(&tp).copied(), now_ms) {
            if filthiest.as_ref().is_none_or(|(most, _, _)| ratio > *most) {
                filthiest = Some((ratio, tp.clone(), handle.clone()));
            }
        }
    }
    let (_, tp, handle) = filthiest?;
    let tp = &tp;
    let mut partition = handle.lock().await;
    let now_ms = broker.ctx.clock.now_ms();
    let checkpoint = checkpoints.get(tp).copied();
    let lso = partition.last_stable_offset();
    let config = *partition.cleaner_config();
    let log = partition.log_mut();
    match clean_log(log, checkpoint, lso, &config, now_ms).await {
        Ok(None) => {}
        Ok(Some(cleaning)) => {
            checkpoints.insert(tp.clone(), cleaning.end_offset);
            let path = cleaner_checkpoint_path(log);
            let written = checkpoint::update_offset(
                &log.disk,
                &path,
                &log.topic,
                log.partition,
                cleaning.end_offset,
            )
            .await;
            trace(broker, "cleaned", cleaning.to_json(tp, broker.ctx.id));
            if let Err(e) = written {
                trace(
                    broker,
                    "cleaner-error",
                    error_json(tp, broker, &e.to_string()),
                );
            }
        }
        Err(e) => trace(
            broker,
            "cleaner-error",
            error_json(tp, broker, &e.to_string()),
        ),
    }
    Some(tp.clone())
}

fn error_json(tp: &TopicPartition, broker: &Broker, error: &str) -> Value {
    json!({ "partition": tp.to_string(), "broker": broker.ctx.id, "error": error })
}

/// What one cleaning round did (Kafka's `CleanerStats`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cleaning {
    pub first_dirty_offset: i64,
    /// The round's end, the next round's checkpoint.
    pub end_offset: i64,
    pub kept_records: u64,
    pub removed_records: u64,
    /// Segments below the end, and the cleaned segments that replaced them (one per group).
    pub segments: usize,
    pub segments_replaced: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

impl Cleaning {
    fn to_json(&self, tp: &TopicPartition, broker: i32) -> Value {
        json!({
            "partition": tp.to_string(),
            "broker": broker,
            "from": self.first_dirty_offset,
            "to": self.end_offset,
            "kept": self.kept_records,
            "removed": self.removed_records,
            "segments": self.segments,
            "replaced": self.segments_replaced,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
        })
    }
}

/// One cleaning round of one log (Kafka's `Cleaner.clean`), as `storage::cleaner` prescribes:
/// `None` if the log is not dirty enough. `last_stable_offset` bounds the round.
pub async fn clean_log(
    log: &mut Log,
    checkpoint: Option<i64>,
    last_stable_offset: i64,
    config: &CleanerConfig,
    now_ms: i64,
) -> Result<Option<Cleaning>, LogError> {
    let segments = segment_view(log);
    let range = cleaner::cleanable_range(
        &segments,
        checkpoint,
        log.log_start_offset(),
        last_stable_offset,
        now_ms,
        config,
    );
    if !cleaner::should_clean(range.clean_bytes, range.cleanable_bytes, config) {
        return Ok(None);
    }
    let end_offset = range.first_uncleanable_offset;
    let below: Vec<SegmentInfo> = segments
        .into_iter()
        .filter(|s| s.base_offset < end_offset)
        .collect();
    let mut contents = Vec::with_capacity(below.len());
    for info in &below {
        let segment = log.segment(info.base_offset).expect("listed by segments()");
        contents.push(segment.read_all(&log.disk).await?);
    }
    let mut cleaning = Cleaning {
        first_dirty_offset: range.first_dirty_offset,
        end_offset,
        kept_records: 0,
        removed_records: 0,
        segments: below.len(),
        segments_replaced: 0,
        bytes_before: 0,
        bytes_after: 0,
    };
    // Kafka's `lastRecordsOfActiveProducers`: each producer's last batch is kept, so that its
    // state survives a reload.
    let active_producers = log.last_records_of_active_producers();
    let cleaned_bytes = clean_segments(
        &below,
        &contents,
        now_ms,
        config,
        &active_producers,
        &mut cleaning,
    )?;
    for group in group_segments(log, &below, end_offset) {
        let unchanged = group.len() == 1 && cleaned_bytes[group.start] == contents[group.start];
        if unchanged {
            continue;
        }
        let bases: Vec<i64> = below[group.clone()].iter().map(|s| s.base_offset).collect();
        log.replace_with_cleaned(&bases, &cleaned_bytes[group.clone()].concat())
            .await?;
        cleaning.segments_replaced += 1;
    }
    Ok(Some(cleaning))
}

/// Cleans every segment below the round's end (`below`, whose bytes are `contents`) against
/// an offset map of the dirty section; returns each one's cleaned bytes.
fn clean_segments(
    below: &[SegmentInfo],
    contents: &[Vec<u8>],
    now_ms: i64,
    config: &CleanerConfig,
    active_producers: &BTreeMap<i64, i64>,
    cleaning: &mut Cleaning,
) -> Result<Vec<Vec<u8>>, LogError> {
    // The dirty section: from the segment holding the first dirty offset to the round's end.
    let first_dirty = below
        .partition_point(|s| s.base_offset <= cleaning.first_dirty_offset)
        .saturating_sub(1);
    let dirty: Vec<&[u8]> = contents[first_dirty..].iter().map(Vec::as_slice).collect();
    let offset_map = cleaner::build_offset_map(&dirty)?;
    let round = CleaningRound {
        now_ms,
        end_offset: cleaning.end_offset,
        offset_map: &offset_map,
        active_producers,
        config,
    };
    let mut cleaned_bytes = Vec::with_capacity(below.len());
    for (info, bytes) in below.iter().zip(contents) {
        let cleaned = cleaner::clean_segment(info, bytes, &round)?;
        cleaning.kept_records += cleaned.kept_records;
        cleaning.removed_records += cleaned.removed_records;
        cleaning.bytes_before += bytes.len() as u64;
        cleaning.bytes_after += cleaned.bytes.len() as u64;
        cleaned_bytes.push(cleaned.bytes);
    }
    Ok(cleaned_bytes)
}

/// Kafka's `Cleaner.groupSegmentsBySize`: runs of consecutive segments (indexes into `below`)
/// each cleaned into one, so that cleaning does not leave ever more small segments. A run
/// stays within `segment.bytes` and `segment.index.bytes` (counting the segments as they are
/// before cleaning) and within the offsets one segment can index.
fn group_segments(
    log: &Log,
    below: &[SegmentInfo],
    end_offset: i64,
) -> Vec<std::ops::Range<usize>> {
    let config = log.config();
    let index_bytes = |s: &SegmentInfo| {
        let segment = log.segment(s.base_offset).expect("listed by segments()");
        (
            segment.offset_index().size_bytes(),
            segment.time_index().size_bytes(),
        )
    };
    // The last offset a segment may hold: below the next segment's base (or the round's end).
    let last_offset = |i: usize| below.get(i + 1).map_or(end_offset, |s| s.base_offset) - 1;
    let mut groups = Vec::new();
    let mut start = 0;
    while start < below.len() {
        let (mut offsets, mut times) = index_bytes(&below[start]);
        let mut size = below[start].size_bytes;
        let mut end = start + 1;
        while let Some(next) = below.get(end) {
            let (next_offsets, next_times) = index_bytes(next);
            let fits = size + next.size_bytes <= config.segment_bytes
                && offsets + next_offsets <= config.segment_index_bytes
                && times + next_times <= config.segment_index_bytes
                && (next.size_bytes == 0
                    || last_offset(end) - below[start].base_offset <= i64::from(i32::MAX));
            if !fits {
                break;
            }
            (size, offsets, times) = (
                size + next.size_bytes,
                offsets + next_offsets,
                times + next_times,
            );
            end += 1;
        }
        groups.push(start..end);
        start = end;
    }
    groups
}

// ---------------------------------------------------------------------------------------------
// Flushes

async fn flush_task(broker: Arc<Broker>, interval_ms: u64) {
    sleep_ms(INITIAL_TASK_DELAY_MS).await;
    loop {
        for (tp, partition) in broker.partitions() {
            let mut partition = partition.lock().await;
            let now_ms = broker.ctx.clock.now_ms();
            if let Err(e) = partition.log_mut().flush_if_due(now_ms).await {
                trace(
                    broker.as_ref(),
                    "flush-error",
                    error_json(&tp, &broker, &e.to_string()),
                );
            }
        }
        sleep_ms(interval_ms).await;
    }
}
