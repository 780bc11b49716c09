//! Log compaction as a pure core: Kafka's log cleaner (`LogCleanerManager`, `Cleaner.doClean`,
//! `cleanInto`, `MemoryRecords.filterTo`) over segment bytes held in memory. No I/O: the caller
//! reads the segments, and swaps the cleaned bytes in.
//!
//! One cleaning round of one partition, as the broker's cleaner task runs it:
//!
//! 1. `cleanable_range` gives the dirty section `[first_dirty_offset, first_uncleanable_offset)`
//!    and the byte counts; `should_clean` applies `min.cleanable.dirty.ratio` (Kafka then cleans
//!    the filthiest log first).
//! 2. `build_offset_map` over the bytes of the segments in the dirty section: the latest offset
//!    of every key.
//! 3. `clean_segment` for *every* segment below `first_uncleanable_offset`, clean ones included
//!    (Kafka recopies the whole log below the round's end: `logSegments(0, endOffset)`), with one
//!    `CleaningRound` (one clock reading) for all of them. Each result replaces its segment.
//! 4. `first_uncleanable_offset` becomes the next round's checkpoint (Kafka's
//!    `cleaner-offset-checkpoint`).
//!
//! Not reproduced yet, and why it does not matter today:
//! - Transactions: Kafka drops aborted transactional data and, once its transaction is empty and
//!   the horizon passed, the marker (`CleanedTransactionMetadata`). Samsa has no transactions:
//!   control batches are kept verbatim and transactional data is cleaned as committed.
//! - The offset map is unbounded (Kafka's is `log.cleaner.dedupe.buffer.size` and may cover only
//!   part of the dirty section, which then ends the round early).
//! - Segment grouping (`groupSegmentsBySize`): the caller may concatenate adjacent segments'
//!   bytes and clean them as one.
//! - `max.compaction.lag.ms`.
//!
//! Compressed batches are cleaned as Kafka's `filterTo` cleans them: decompressed to judge each
//! record, kept as they are when every record stays, else the kept records are compressed again
//! with the batch's own codec; a batch left empty is written as a bare, uncompressed header.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::storage::batch::{
    self, BatchError, BatchHeader, BatchSpec, DecodedRecord, Record, TimestampType,
    BATCH_HEADER_LEN, LOG_OVERHEAD, NO_PRODUCER_ID,
};
use crate::storage::retention::SegmentInfo;

/// The topic configs the cleaner reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CleanerConfig {
    /// `delete.retention.ms`: how long a tombstone outlives the cleaning that first kept it.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: clean once dirty bytes exceed this share of the log.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: a segment with a record younger than this is not cleaned.
    pub min_compaction_lag_ms: i64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
        }
    }
}

/// The dirty bytes' share of the cleanable log (Kafka's `LogToClean.cleanableRatio`); 0 for an
/// empty log. `dirty_bytes` counts only the cleanable dirty segments
/// (`CleanableRange::cleanable_bytes`), not the active segment.
pub fn dirty_ratio(clean_bytes: u64, dirty_bytes: u64) -> f64 {
    let total = clean_bytes + dirty_bytes;
    if total == 0 {
        return 0.0;
    }
    dirty_bytes as f64 / total as f64
}

/// Kafka's `grabFilthiestCompactedLog` filter: a non-empty log whose dirty ratio is strictly
/// above `min.cleanable.dirty.ratio`.
pub fn should_clean(clean_bytes: u64, dirty_bytes: u64, config: &CleanerConfig) -> bool {
    clean_bytes + dirty_bytes > 0
        && dirty_ratio(clean_bytes, dirty_bytes) > config.min_cleanable_dirty_ratio
}

/// What one round may clean (Kafka's `OffsetsToClean` and `LogToClean`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanableRange {
    pub first_dirty_offset: i64,
    /// The base offset of the first segment the round must not clean: the round's end.
    pub first_uncleanable_offset: i64,
    /// Bytes of the segments below `first_dirty_offset`.
    pub clean_bytes: u64,
    /// Bytes of the segments in `[first_dirty_offset, first_uncleanable_offset)`.
    pub cleanable_bytes: u64,
}

/// Kafka's `LogCleanerManager.cleanableOffsets` and `calculateCleanableBytes`. `segments`: every
/// segment, oldest first, the last active; `checkpoint`: where the last round ended, if any.
/// The round never passes the last stable offset (the HW while Samsa has no transactions), the
/// active segment, or the first dirty segment with a record younger than
/// `min.compaction.lag.ms`; it ends at a segment boundary.
pub fn cleanable_range(
    segments: &[SegmentInfo],
    checkpoint: Option<i64>,
    log_start_offset: i64,
    last_stable_offset: i64,
    now_ms: i64,
    config: &CleanerConfig,
) -> CleanableRange {
    let active = segments.last().expect("a log always has an active segment");
    assert!(active.is_active, "the last segment is the active one");
    // A checkpoint outside the log (truncation, DeleteRecords) restarts from the log start.
    let first_dirty_offset = checkpoint
        .filter(|&offset| (log_start_offset..=active.next_offset).contains(&offset))
        .unwrap_or(log_start_offset);
    let mut uncleanable = last_stable_offset.min(active.base_offset);
    if config.min_compaction_lag_ms > 0 {
        let lag_start_ms = now_ms.saturating_sub(config.min_compaction_lag_ms);
        if let Some(young) = non_active_from(segments, first_dirty_offset)
            .iter()
            .find(|s| s.largest_timestamp_ms > lag_start_ms)
        {
            uncleanable = uncleanable.min(young.base_offset);
        }
    }
    let uncleanable = uncleanable.max(first_dirty_offset);
    let first_uncleanable_offset = non_active_from(segments, uncleanable)
        .first()
        .unwrap_or(active)
        .base_offset;
    let bytes = |s: &[SegmentInfo]| s.iter().map(|s| s.size_bytes).sum::<u64>();
    let dirty_from = first_dirty_offset.min(first_uncleanable_offset);
    CleanableRange {
        first_dirty_offset,
        first_uncleanable_offset,
        clean_bytes: bytes(
            &segments[..segments.partition_point(|s| s.base_offset < first_dirty_offset)],
        ),
        cleanable_bytes: bytes(segments_between(
            segments,
            dirty_from,
            first_uncleanable_offset,
        )),
    }
}

/// Kafka's `LogSegments.values(from, to)`: from the segment holding `from` (or the first) to
/// the last segment starting below `to`.
fn segments_between(segments: &[SegmentInfo], from: i64, to: i64) -> &[SegmentInfo] {
    if from == to {
        return &[];
    }
    let start = segments
        .partition_point(|s| s.base_offset <= from)
        .saturating_sub(1);
    let end = segments.partition_point(|s| s.base_offset < to);
    &segments[start..end.max(start)]
}

/// Kafka's `nonActiveLogSegmentsFrom`.
fn non_active_from(segments: &[SegmentInfo], from: i64) -> &[SegmentInfo] {
    let active = segments.last().expect("an active segment");
    segments_between(segments, from, active.base_offset)
}

/// Kafka's `Cleaner.buildOffsetMap`: key → offset of its latest record (tombstones included)
/// over the dirty segments, oldest first. Control batches are not mapped. Pass the bytes of
/// every segment in `[first_dirty_offset, first_uncleanable_offset)`: the map then covers the
/// whole round, so Kafka's escape for records past a full map (`pastLatestOffset`) never applies.
pub fn build_offset_map(dirty_segments: &[&[u8]]) -> Result<BTreeMap<Bytes, i64>, BatchError> {
    let mut map = BTreeMap::new();
    let mut next_offset = i64::MIN;
    for segment in dirty_segments {
        let mut iter = batch::batches(segment);
        for (position, header) in iter.by_ref() {
            // baseOffset is outside the CRC: a flipped bit there is corruption, not a bug.
            if header.base_offset < next_offset {
                return Err(BatchError::Corrupt(format!(
                    "dirty segments out of offset order at {}",
                    header.base_offset
                )));
            }
            next_offset = header.next_offset();
            if header.is_control() {
                continue;
            }
            let (_, records) = batch::decode_records(&segment[position..])?;
            for record in records {
                if let Some(key) = record.key {
                    map.insert(key, record.offset);
                }
            }
        }
        if let Some((_, error)) = iter.stopped_at() {
            return Err(error);
        }
    }
    Ok(map)
}

/// What every segment of one round is cleaned against.
#[derive(Clone, Copy, Debug)]
pub struct CleaningRound<'a> {
    /// One clock reading for the whole round (Kafka's `currentTime`).
    pub now_ms: i64,
    /// `CleanableRange::first_uncleanable_offset` (Kafka's `upperBoundOffsetOfCleaningRound`).
    pub end_offset: i64,
    /// `build_offset_map` over the round's dirty segments.
    pub offset_map: &'a BTreeMap<Bytes, i64>,
    /// Kafka's `lastRecordsOfActiveProducers`: producer id → offset of its last data record.
    /// From the log's producer state (`Log::last_records_of_active_producers`).
    pub active_producers: &'a BTreeMap<i64, i64>,
    pub config: &'a CleanerConfig,
}

/// A segment's cleaned contents, and what the cleaning did (Kafka's `CleanerStats`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanedSegment {
    /// Whole, valid batches, offsets preserved: the replacement segment file.
    pub bytes: Vec<u8>,
    pub kept_records: u64,
    pub removed_records: u64,
    /// Of `removed_records`, those without a key (Kafka's `invalidMessage`).
    pub keyless_records: u64,
    /// Batches left out entirely.
    pub removed_batches: u64,
    /// The largest maxTimestamp kept, -1 if none: the new segment's largest timestamp.
    pub largest_timestamp_ms: i64,
}

/// Cleans one non-active segment below the round's end, batch by batch, as Kafka's
/// `cleanInto` filters it. A record stays iff it has a key, it is its key's latest record, and
/// it has a value or its batch's delete horizon (KIP-534) has not passed. Fails on bytes that
/// are not whole valid batches (a compressed section that does not decompress included).
pub fn clean_segment(
    segment: &SegmentInfo,
    bytes: &[u8],
    round: &CleaningRound<'_>,
) -> Result<CleanedSegment, BatchError> {
    assert!(
        !segment.is_active,
        "the cleaner never touches the active segment"
    );
    assert!(
        segment.next_offset <= round.end_offset,
        "segment {segment:?} reaches past the round's end {}",
        round.end_offset
    );
    let mut out = CleanedSegment {
        bytes: Vec::with_capacity(bytes.len()),
        kept_records: 0,
        removed_records: 0,
        keyless_records: 0,
        removed_batches: 0,
        largest_timestamp_ms: -1,
    };
    let mut next_offset = segment.base_offset;
    let mut iter = batch::batches(bytes);
    for (position, header) in iter.by_ref() {
        if header.base_offset < next_offset || header.next_offset() > segment.next_offset {
            return Err(BatchError::Corrupt(format!(
                "batch at {} lies outside segment {} ({}..{}) or out of order",
                header.base_offset, segment.base_offset, segment.base_offset, segment.next_offset
            )));
        }
        next_offset = header.next_offset();
        let batch = &bytes[position..position + header.size_in_bytes()];
        clean_batch(batch, &header, round, &mut out)?;
    }
    match iter.stopped_at() {
        Some((_, error)) => Err(error),
        None => Ok(out),
    }
}

enum Verdict {
    Keep,
    Superseded,
    Keyless,
}

/// Kafka's `Cleaner.shouldRetainRecord`. Keyless records cannot be compacted: Kafka refuses
/// them on append to a compacted topic, and drops any it meets here (a topic turned compacted).
fn verdict(
    record: &DecodedRecord,
    offset_map: &BTreeMap<Bytes, i64>,
    keep_tombstones: bool,
) -> Verdict {
    let Some(key) = &record.key else {
        return Verdict::Keyless;
    };
    let latest = offset_map
        .get(key)
        .is_none_or(|&offset| record.offset >= offset);
    if latest && (record.value.is_some() || keep_tombstones) {
        Verdict::Keep
    } else {
        Verdict::Superseded
    }
}

/// Kafka's `checkBatchRetention` and `filterTo` for one batch.
fn clean_batch(
    batch: &[u8],
    header: &BatchHeader,
    round: &CleaningRound<'_>,
    out: &mut CleanedSegment,
) -> Result<(), BatchError> {
    if header.is_control() {
        // Transaction markers: kept until Samsa tracks transactions (see the module comment).
        out.kept_records += header.records_count as u64;
        push(out, batch, header);
        return Ok(());
    }
    let (_, records) = batch::decode_records(batch)?;
    let record_count = records.len();
    let delete_horizon_ms = header.has_delete_horizon().then_some(header.base_timestamp);
    let keep_tombstones = delete_horizon_ms.is_none_or(|horizon| round.now_ms < horizon);
    let mut kept = Vec::with_capacity(record_count);
    for record in records {
        match verdict(&record, round.offset_map, keep_tombstones) {
            Verdict::Keep => kept.push(record),
            Verdict::Superseded => out.removed_records += 1,
            Verdict::Keyless => {
                out.removed_records += 1;
                out.keyless_records += 1;
            }
        }
    }
    out.kept_records += kept.len() as u64;
    if kept.is_empty() {
        if retains_empty(header, round) {
            push(out, &empty_batch(batch, header), header);
        } else {
            out.removed_batches += 1;
        }
        return Ok(());
    }
    // KIP-534: the first cleaning that keeps a tombstone stamps the batch's delete horizon.
    let set_horizon = delete_horizon_ms.is_none() && kept.iter().any(|r| r.value.is_none());
    if kept.len() == record_count && !set_horizon {
        push(out, batch, header);
    } else {
        let horizon = if set_horizon {
            Some(
                round
                    .now_ms
                    .saturating_add(round.config.delete_retention_ms),
            )
        } else {
            delete_horizon_ms
        };
        push(out, &rewrite_batch(header, kept, horizon), header);
    }
    Ok(())
}

/// Kafka's `BatchRetention.RETAIN_EMPTY`: an emptied batch stays as a bare header when it holds
/// an active producer's last sequence, or ends the round (so the last offset is not lost).
fn retains_empty(header: &BatchHeader, round: &CleaningRound<'_>) -> bool {
    let last_of_producer = header.producer_id > NO_PRODUCER_ID
        && round.active_producers.get(&header.producer_id) == Some(&header.last_offset());
    last_of_producer || header.next_offset() == round.end_offset
}

/// Appends an output batch, checking what must survive cleaning (the pair of the read side's
/// `validate`): a valid batch covering exactly the original's offsets.
fn push(out: &mut CleanedSegment, bytes: &[u8], original: &BatchHeader) {
    let written = batch::validate(bytes).expect("the cleaner writes valid batches");
    assert_eq!(written.size_in_bytes(), bytes.len());
    assert_eq!(
        (written.base_offset, written.last_offset_delta),
        (original.base_offset, original.last_offset_delta),
        "cleaning moved a batch's offsets"
    );
    out.largest_timestamp_ms = out.largest_timestamp_ms.max(written.max_timestamp);
    out.bytes.extend_from_slice(bytes);
}

// Header fields the cleaner rewrites, at their positions in the layout documented in `batch.rs`.
const LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const RECORDS_COUNT_AT: usize = 57;
const TIMESTAMP_TYPE_FLAG: i16 = 0x08;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;
const DELETE_HORIZON_FLAG: i16 = 0x40;
/// Kafka's `RecordBatch.NO_TIMESTAMP`.
const NO_TIMESTAMP: i64 = -1;

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Recomputes the CRC-32C after a rewrite of CRC-covered fields.
fn reseal(buf: &mut [u8]) {
    let crc = crc32c::crc32c(&buf[ATTRIBUTES_AT..]);
    put(buf, CRC_AT, &crc.to_be_bytes());
}

/// Kafka's `buildRetainedRecordsInto`: the kept records re-encoded under the original header
/// (base offset, leader epoch, producer id/epoch/sequence, flags) and compressed again with the
/// original codec, offset deltas unchanged, and lastOffsetDelta kept so the producer's last
/// sequence survives. With a delete horizon, baseTimestamp holds it and the record deltas are
/// taken from it (KIP-534).
fn rewrite_batch(
    original: &BatchHeader,
    kept: Vec<DecodedRecord>,
    delete_horizon_ms: Option<i64>,
) -> Vec<u8> {
    let base_timestamp = delete_horizon_ms.unwrap_or(kept[0].timestamp);
    let spec = BatchSpec {
        base_offset: original.base_offset,
        partition_leader_epoch: original.partition_leader_epoch,
        base_timestamp,
        producer_id: original.producer_id,
        producer_epoch: original.producer_epoch,
        base_sequence: original.base_sequence,
        transactional: original.is_transactional(),
        control: false,
        compression: original
            .compression()
            .expect("a batch that decoded has a known codec"),
    };
    let records: Vec<Record> = kept
        .into_iter()
        .map(|r| Record {
            offset_delta: i32::try_from(r.offset - original.base_offset).expect("within its batch"),
            timestamp_delta: r.timestamp.wrapping_sub(base_timestamp),
            key: r.key,
            value: r.value,
            headers: r.headers,
        })
        .collect();
    let mut bytes = batch::encode_batch(&spec, &records).to_vec();
    put(
        &mut bytes,
        LAST_OFFSET_DELTA_AT,
        &original.last_offset_delta.to_be_bytes(),
    );
    if delete_horizon_ms.is_some() {
        let attributes = i16::from_be_bytes([bytes[ATTRIBUTES_AT], bytes[ATTRIBUTES_AT + 1]]);
        put(
            &mut bytes,
            ATTRIBUTES_AT,
            &(attributes | DELETE_HORIZON_FLAG).to_be_bytes(),
        );
    }
    reseal(&mut bytes);
    if original.timestamp_type() == TimestampType::LogAppendTime {
        batch::set_max_timestamp_log_append_time(&mut bytes, original.max_timestamp);
    }
    bytes
}

/// Kafka's `DefaultRecordBatch.writeEmptyHeader`: the original header with no records,
/// uncompressed, no delete horizon, baseTimestamp `NO_TIMESTAMP`; offsets, producer fields,
/// maxTimestamp, timestamp type and flags kept.
fn empty_batch(original: &[u8], header: &BatchHeader) -> Vec<u8> {
    let mut bytes = original[..BATCH_HEADER_LEN].to_vec();
    put(
        &mut bytes,
        LENGTH_AT,
        &((BATCH_HEADER_LEN - LOG_OVERHEAD) as i32).to_be_bytes(),
    );
    let attributes = header.attributes & (TIMESTAMP_TYPE_FLAG | TRANSACTIONAL_FLAG | CONTROL_FLAG);
    put(&mut bytes, ATTRIBUTES_AT, &attributes.to_be_bytes());
    put(&mut bytes, BASE_TIMESTAMP_AT, &NO_TIMESTAMP.to_be_bytes());
    put(&mut bytes, RECORDS_COUNT_AT, &0i32.to_be_bytes());
    reseal(&mut bytes);
    bytes
}

#[cfg(test)]
#[path = "cleaner_tests.rs"]
mod tests;
