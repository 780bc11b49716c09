//! Kafka's `LogSegment`: one `<base>.log` file of record batches and its two indexes,
//! `<base>.index` (`OffsetIndex`) and `<base>.timeindex` (`TimeIndex`), all named by the
//! segment's base offset in 20 digits.
//!
//! Indexes are kept whole in memory (Kafka maps them) and written through: each append adds its
//! index entries to the files, truncation truncates them, recovery rewrites them. Entries are
//! added per batch, as Kafka's `recover` does: an offset index entry (the batch's last offset,
//! its position) for a batch that starts more than `index.interval.bytes` after the previous
//! entry, with a time index entry beside it when the segment's largest timestamp has grown. So
//! the indexes an append builds are the ones recovery rebuilds from the same bytes.
//!
//! Reading never trusts an index blindly: a lookup gives a position, batch headers are walked
//! forward from it, and if what they say does not fit (a corrupt index of a segment recovery did
//! not re-validate) the segment is scanned from its first byte instead; returned batches are
//! CRC-checked, so a corrupt batch is never served.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::storage::batch::BatchHeader;
use crate::storage::file_records::{corrupt, FileRecords, ScanError};
use crate::storage::log::{LogConfig, LogError};
use crate::storage::offset_index::{OffsetIndex, OffsetPosition};
use crate::storage::time_index::{TimeIndex, TimestampOffset, NO_TIMESTAMP};
use crate::storage::txn_index::TransactionIndex;
use crate::world::Disk;

pub use crate::storage::segment_recovery::SegmentRecovery;

pub fn log_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

pub fn index_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.index")
}

pub fn time_index_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.timeindex")
}

/// Why the active segment was rolled (Kafka's `LogSegment.shouldRoll`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RollReason {
    /// `segment.bytes`: the batches would not fit.
    SegmentBytes,
    /// `segment.ms` since the first batch's timestamp (or the segment's creation).
    SegmentMs,
    /// `segment.index.bytes`: an index is full.
    IndexFull,
    /// An offset would not fit the indexes' 4-byte relative offsets.
    OffsetOverflow,
}

/// What is about to be appended, for the roll decision (Kafka's `RollParams`).
#[derive(Clone, Copy, Debug)]
pub struct RollParams {
    pub messages_bytes: u64,
    pub max_timestamp_in_messages: i64,
    pub max_offset_in_messages: i64,
    pub now_ms: i64,
}

/// A segment as retention and the cleaner see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    pub base_offset: i64,
    /// One past the last offset held; the log end offset for the active segment.
    pub next_offset: i64,
    pub size_bytes: u64,
    /// Kafka's `largestTimestamp`: the largest batch maxTimestamp, else `last_modified_ms`.
    pub largest_timestamp_ms: i64,
    /// The largest batch maxTimestamp, -1 if none.
    pub max_timestamp_ms: i64,
    /// The time of the last append since the log was opened, or the open (the `Disk` seam has
    /// no file times).
    pub last_modified_ms: i64,
    pub is_active: bool,
}

/// A record found by time (Kafka's `TimestampAndOffset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampAndOffset {
    pub timestamp: i64,
    pub offset: i64,
    pub leader_epoch: Option<i32>,
}

#[derive(Debug)]
pub struct LogSegment {
    pub(crate) base_offset: i64,
    pub(crate) log_path: String,
    pub(crate) index_path: String,
    pub(crate) time_index_path: String,
    pub(crate) size_bytes: u64,
    pub(crate) next_offset: i64,
    pub(crate) offset_index: OffsetIndex,
    pub(crate) time_index: TimeIndex,
    pub(crate) index_interval_bytes: u64,
    /// Bytes from the last offset index entry's batch (or the file start) to the end.
    pub(crate) bytes_since_last_index_entry: u64,
    /// The largest batch maxTimestamp and the last offset of its batch (NO_TIMESTAMP if none).
    pub(crate) max_timestamp: TimestampOffset,
    /// The first batch's maxTimestamp, which `segment.ms` counts from.
    pub(crate) rolling_based_timestamp: Option<i64>,
    pub(crate) created_ms: i64,
    pub(crate) last_modified_ms: i64,
    /// Lookups whose index position did not fit the log, answered by a scan instead.
    pub(crate) index_misses: AtomicU64,
    /// Which of the log, offset index and time index were written since their last fsync.
    pub(crate) dirty: [bool; 3],
    /// `<base>.txnindex`: the transactions aborted by a marker in this segment.
    pub(crate) txn_index: TransactionIndex,
}

impl LogSegment {
    pub(crate) fn empty(dir: &str, base_offset: i64, config: &LogConfig, now_ms: i64) -> Self {
        LogSegment {
            base_offset,
            log_path: format!("{dir}/{}", log_file_name(base_offset)),
            index_path: format!("{dir}/{}", index_file_name(base_offset)),
            time_index_path: format!("{dir}/{}", time_index_file_name(base_offset)),
            size_bytes: 0,
            next_offset: base_offset,
            offset_index: OffsetIndex::new(base_offset, config.segment_index_bytes),
            time_index: TimeIndex::new(base_offset, config.segment_index_bytes),
            index_interval_bytes: config.index_interval_bytes,
            bytes_since_last_index_entry: 0,
            max_timestamp: TimestampOffset {
                timestamp: NO_TIMESTAMP,
                offset: base_offset,
            },
            rolling_based_timestamp: None,
            created_ms: now_ms,
            last_modified_ms: now_ms,
            index_misses: AtomicU64::new(0),
            dirty: [true; 3],
            txn_index: TransactionIndex::new(dir, base_offset),
        }
    }

    /// A new, empty segment: its three files, empty.
    pub async fn create(
        disk: &Disk,
        dir: &str,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> io::Result<Self> {
        let segment = LogSegment::empty(dir, base_offset, config, now_ms);
        for path in segment.paths() {
            write_file(disk, path, &[]).await?;
        }
        Ok(segment)
    }

    fn paths(&self) -> [&str; 3] {
        [&self.log_path, &self.index_path, &self.time_index_path]
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub fn log_path(&self) -> &str {
        &self.log_path
    }

    pub fn offset_index(&self) -> &OffsetIndex {
        &self.offset_index
    }

    pub fn time_index(&self) -> &TimeIndex {
        &self.time_index
    }

    pub fn txn_index(&self) -> &TransactionIndex {
        &self.txn_index
    }

    pub fn max_timestamp(&self) -> TimestampOffset {
        self.max_timestamp
    }

    pub fn index_misses(&self) -> u64 {
        self.index_misses.load(Ordering::Relaxed)
    }

    pub fn info(&self, is_active: bool) -> SegmentInfo {
        let max = self.max_timestamp.timestamp;
        SegmentInfo {
            base_offset: self.base_offset,
            next_offset: self.next_offset,
            size_bytes: self.size_bytes,
            largest_timestamp_ms: if max >= 0 { max } else { self.last_modified_ms },
            max_timestamp_ms: max,
            last_modified_ms: self.last_modified_ms,
            is_active,
        }
    }

    /// Accounts for one batch written at `position` (Kafka's `append` and `recover`): the
    /// largest timestamp, and the index entries due, returned as file bytes.
    pub(crate) fn index_batch(
        &mut self,
        header: &BatchHeader,
        position: u64,
    ) -> (Option<[u8; 8]>, Option<[u8; 12]>) {
        // Offsets only increase; a cleaned segment has gaps where compaction removed batches
        // (the append path asserts contiguity itself).
        assert!(
            header.base_offset >= self.next_offset,
            "{}: batch at offset {} below the segment's end {}",
            self.log_path,
            header.base_offset,
            self.next_offset
        );
        assert_eq!(
            position, self.size_bytes,
            "{}: batches must be contiguous",
            self.log_path
        );
        if position == 0 {
            self.rolling_based_timestamp = Some(header.max_timestamp);
        }
        if header.max_timestamp > self.max_timestamp.timestamp {
            self.max_timestamp = TimestampOffset {
                timestamp: header.max_timestamp,
                offset: header.last_offset(),
            };
        }
        let mut entries = (None, None);
        if self.bytes_since_last_index_entry > self.index_interval_bytes {
            if !self.offset_index.is_full() {
                entries.0 = Some(self.offset_index.append(header.last_offset(), position));
            }
            let max = self.max_timestamp;
            entries.1 = self
                .time_index
                .maybe_append(max.timestamp, max.offset, false);
            self.bytes_since_last_index_entry = 0;
        }
        let size = header.size_in_bytes() as u64;
        self.bytes_since_last_index_entry += size;
        self.size_bytes += size;
        self.next_offset = header.next_offset();
        entries
    }

    /// Kafka's `shouldRoll`, without `segment.jitter.ms`. An empty segment never rolls.
    pub fn should_roll(&self, config: &LogConfig, p: &RollParams) -> Option<RollReason> {
        if self.size_bytes == 0 {
            return None;
        }
        let max_bytes = config.segment_bytes.min(i32::MAX as u64);
        let waited_ms = match self.rolling_based_timestamp {
            Some(ts) if ts >= 0 => p.max_timestamp_in_messages.saturating_sub(ts),
            _ => p.now_ms.saturating_sub(self.created_ms),
        };
        if self.size_bytes + p.messages_bytes > max_bytes {
            Some(RollReason::SegmentBytes)
        } else if waited_ms > config.segment_ms {
            Some(RollReason::SegmentMs)
        } else if self.offset_index.is_full() || self.time_index.is_full() {
            Some(RollReason::IndexFull)
        } else if !self.offset_index.can_represent(p.max_offset_in_messages) {
            Some(RollReason::OffsetOverflow)
        } else {
            None
        }
    }

    /// Appends validated batches, offsets assigned, continuing the segment exactly.
    pub async fn append(
        &mut self,
        disk: &Disk,
        bytes: &[u8],
        headers: &[BatchHeader],
        now_ms: i64,
    ) -> io::Result<()> {
        let total: usize = headers.iter().map(BatchHeader::size_in_bytes).sum();
        assert_eq!(total, bytes.len(), "headers describe the bytes");
        assert!(
            headers
                .iter()
                .scan(self.next_offset, |next, h| {
                    let fits = h.base_offset == *next;
                    *next = h.next_offset();
                    Some(fits)
                })
                .all(|fits| fits),
            "{}: appended offsets must continue the segment from {}",
            self.log_path,
            self.next_offset
        );
        let position = disk.append(&self.log_path, bytes).await?;
        assert_eq!(
            position, self.size_bytes,
            "{}: appended at byte {position}, the segment ends at {}",
            self.log_path, self.size_bytes
        );
        let (mut offsets, mut times) = (Vec::new(), Vec::new());
        for header in headers {
            let (offset_entry, time_entry) = self.index_batch(header, self.size_bytes);
            offsets.extend(offset_entry.into_iter().flatten());
            times.extend(time_entry.into_iter().flatten());
        }
        self.last_modified_ms = now_ms;
        self.dirty[0] = true;
        self.dirty[1] |= !offsets.is_empty();
        self.dirty[2] |= !times.is_empty();
        append_entries(
            disk,
            &self.index_path,
            &offsets,
            self.offset_index.size_bytes(),
        )
        .await?;
        append_entries(
            disk,
            &self.time_index_path,
            &times,
            self.time_index.size_bytes(),
        )
        .await
    }

    /// The segment stops being active: its largest timestamp goes into the time index (Kafka's
    /// `onBecomeInactiveSegment`; nothing to trim, nothing was preallocated).
    pub async fn on_become_inactive(&mut self, disk: &Disk) -> io::Result<()> {
        let max = self.max_timestamp;
        if let Some(entry) = self
            .time_index
            .maybe_append(max.timestamp, max.offset, true)
        {
            self.dirty[2] = true;
            append_entries(
                disk,
                &self.time_index_path,
                &entry,
                self.time_index.size_bytes(),
            )
            .await?;
        }
        Ok(())
    }

    /// fsyncs the log and both indexes (Kafka's `LogSegment.flush`); files not written since
    /// their last fsync are skipped.
    pub async fn flush(&mut self, disk: &Disk) -> io::Result<()> {
        let paths = [&self.log_path, &self.index_path, &self.time_index_path];
        for (path, dirty) in paths.into_iter().zip(self.dirty.iter_mut()) {
            if *dirty {
                disk.fsync(path).await?;
                *dirty = false;
            }
        }
        self.txn_index.flush(disk).await
    }

    /// Removes the segment's files, the log first: an index left by a crash in between is an
    /// orphan, which the next open deletes.
    pub async fn delete(self, disk: &Disk) -> io::Result<()> {
        for path in self.paths() {
            if disk.exists(path) {
                disk.remove(path).await?;
            }
        }
        self.txn_index.delete(disk).await
    }

    /// The segment's file as batches.
    fn records<'a>(&'a self, disk: &'a Disk) -> FileRecords<'a> {
        FileRecords {
            disk,
            path: &self.log_path,
            base_offset: self.base_offset,
            next_offset: self.next_offset,
            size_bytes: self.size_bytes,
        }
    }

    /// The position and header of the batch holding `offset` (the first batch whose last offset
    /// is at or above it; Kafka's `translateOffset`), `None` at or past the segment's end. The
    /// offset index gives where to start; if the headers found there do not fit, the whole
    /// segment is scanned instead.
    pub async fn translate_offset(
        &self,
        disk: &Disk,
        offset: i64,
    ) -> Result<Option<(u64, BatchHeader)>, LogError> {
        if offset >= self.next_offset {
            return Ok(None);
        }
        let entry = self.offset_index.lookup(offset);
        let why = match self.records(disk).search_for_offset(entry, offset).await {
            Ok(found) => return Ok(Some(found)),
            Err(ScanError::Io(e)) => return Err(e.into()),
            Err(ScanError::Inconsistent(why)) => why,
        };
        if entry.position == 0 {
            return Err(corrupt(format!("{}: {why}", self.log_path)));
        }
        self.index_misses.fetch_add(1, Ordering::Relaxed);
        self.scan_from_start(disk, offset).await.map(Some)
    }

    async fn scan_from_start(
        &self,
        disk: &Disk,
        offset: i64,
    ) -> Result<(u64, BatchHeader), LogError> {
        let start = OffsetPosition {
            offset: self.base_offset,
            position: 0,
        };
        let records = self.records(disk);
        records
            .search_for_offset(start, offset)
            .await
            .map_err(|e| e.into_log_error(&self.log_path))
    }

    /// Whole, CRC-checked batches from the one holding `from_offset`, as many as fit in
    /// `max_bytes` but at least one; `None` if the segment holds nothing at or above it.
    pub async fn read(
        &self,
        disk: &Disk,
        from_offset: i64,
        max_bytes: usize,
    ) -> Result<Option<Bytes>, LogError> {
        let Some((position, first)) = self.translate_offset(disk, from_offset).await? else {
            return Ok(None);
        };
        let records = self.records(disk);
        match records.read_batches(position, &first, max_bytes).await {
            Err(LogError::Corrupt(e)) if position > 0 => {
                // The index may have pointed into a batch: find the batch by a scan and retry.
                let (scanned, header) = self.scan_from_start(disk, from_offset).await?;
                if scanned == position {
                    return Err(LogError::Corrupt(e));
                }
                self.index_misses.fetch_add(1, Ordering::Relaxed);
                records
                    .read_batches(scanned, &header, max_bytes)
                    .await
                    .map(Some)
            }
            other => other.map(Some),
        }
    }

    /// The first record at or after `starting_offset` whose timestamp is at or above `target`
    /// (Kafka's `findOffsetByTimestamp`): the time index says where every record is older, the
    /// offset index where that is in the file, and a scan does the rest.
    pub async fn find_offset_by_timestamp(
        &self,
        disk: &Disk,
        target: i64,
        starting_offset: i64,
    ) -> Result<Option<TimestampAndOffset>, LogError> {
        if self.max_timestamp.timestamp < target {
            return Ok(None);
        }
        let below = self.time_index.lookup_below(target);
        let from = below.offset.max(starting_offset);
        let Some((position, _)) = self.translate_offset(disk, from).await? else {
            return Ok(None);
        };
        let records = self.records(disk);
        records
            .search_for_timestamp(position, target, starting_offset)
            .await
    }

    /// Removes the batch holding `offset` and every later one, and their index entries (Kafka's
    /// `LogSegment.truncateTo`; whole batches, so the segment may end below `offset`). Returns
    /// the bytes removed.
    pub async fn truncate_to(
        &mut self,
        disk: &Disk,
        offset: i64,
        now_ms: i64,
    ) -> Result<u64, LogError> {
        let Some((position, header)) = self.translate_offset(disk, offset).await? else {
            return Ok(0);
        };
        let next_offset = header.base_offset;
        let before = (self.offset_index.size_bytes(), self.time_index.size_bytes());
        self.offset_index.truncate_to(next_offset);
        let offsets_len = self.offset_index.truncate_to_position(position);
        let times_len = self.time_index.truncate_to(next_offset);
        if offsets_len != before.0 {
            disk.truncate(&self.index_path, offsets_len).await?;
        }
        if times_len != before.1 {
            disk.truncate(&self.time_index_path, times_len).await?;
        }
        disk.truncate(&self.log_path, position).await?;
        self.txn_index.truncate_to(disk, next_offset).await?;
        self.dirty = [true; 3];
        let truncated = self.size_bytes - position;
        self.size_bytes = position;
        self.next_offset = next_offset;
        if position == 0 {
            self.created_ms = now_ms;
            self.rolling_based_timestamp = None;
        }
        self.last_modified_ms = now_ms;
        // As recovery would count it, so later appends index as a rebuild would.
        let last_entry = self.offset_index.last_entry().position;
        self.bytes_since_last_index_entry = position.saturating_sub(last_entry);
        self.max_timestamp = self.read_largest_timestamp(disk).await?;
        Ok(truncated)
    }

    /// The largest timestamp: the time index's last entry, or a later batch's (Kafka's
    /// `readLargestTimestamp`).
    async fn read_largest_timestamp(&self, disk: &Disk) -> Result<TimestampOffset, LogError> {
        let last = self.time_index.last_entry();
        let position = self.offset_index.lookup(last.offset).position;
        let records = self.records(disk);
        records.largest_timestamp_after(position, last).await
    }

    /// The whole file.
    pub async fn read_all(&self, disk: &Disk) -> io::Result<Vec<u8>> {
        self.records(disk).read_exact(0, self.size_bytes).await
    }
}

/// Kafka's `LogFileUtils.CLEANED_FILE_SUFFIX`: a cleaned segment being written.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Kafka's `LogFileUtils.SWAP_FILE_SUFFIX`: a cleaned segment, complete and fsynced, about to
/// replace the segments its offsets cover.
pub const SWAP_SUFFIX: &str = ".swap";

impl LogSegment {
    /// The segment that `bytes` (the cleaned copy of a run of segments starting with `first` and
    /// ending below `end_offset`) make, with the indexes `recover` would build from the same
    /// bytes, in memory only. Offsets must increase from batch to batch, with gaps where the
    /// cleaner removed batches. The copy keeps its sources' times (`last_modified_ms`, their
    /// latest), as Kafka's cleaner keeps `lastModified` so that time-based retention does not
    /// see the copy as new.
    pub(crate) fn from_cleaned(
        first: &LogSegment,
        end_offset: i64,
        last_modified_ms: i64,
        bytes: &[u8],
        config: &LogConfig,
    ) -> Result<Self, LogError> {
        let dir = first.log_path.rsplit_once('/').map_or("", |(dir, _)| dir);
        let mut segment = LogSegment::empty(dir, first.base_offset, config, first.created_ms);
        debug_assert_eq!(segment.log_path, first.log_path);
        let mut iter = crate::storage::batch::batches(bytes);
        for (position, header) in iter.by_ref() {
            if header.base_offset < segment.next_offset
                || header.next_offset() > end_offset
                || !segment.offset_index.can_represent(header.last_offset())
            {
                return Err(corrupt(format!(
                    "{}: cleaned batch at byte {position} has offsets {}..={}, outside \
                     [{}, {end_offset})",
                    first.log_path,
                    header.base_offset,
                    header.last_offset(),
                    segment.next_offset,
                )));
            }
            segment.index_batch(&header, position as u64);
        }
        if let Some((_, error)) = iter.stopped_at() {
            return Err(LogError::Corrupt(error));
        }
        let max = segment.max_timestamp;
        segment
            .time_index
            .maybe_append(max.timestamp, max.offset, true);
        segment.last_modified_ms = last_modified_ms;
        Ok(segment)
    }

    /// Writes this (cleaned, in-memory) segment's three files under the `.cleaned` suffix and
    /// fsyncs them: nothing is replaced yet, and a crash leaves files the next open deletes.
    pub(crate) async fn write_cleaned(&mut self, disk: &Disk, bytes: &[u8]) -> io::Result<()> {
        assert_eq!(
            bytes.len() as u64,
            self.size_bytes,
            "the bytes the segment was built from"
        );
        let files = [
            (&self.log_path, bytes.to_vec()),
            (&self.index_path, self.offset_index.to_bytes()),
            (&self.time_index_path, self.time_index.to_bytes()),
        ];
        for (path, content) in files {
            let cleaned = format!("{path}{CLEANED_SUFFIX}");
            write_file(disk, &cleaned, &content).await?;
            disk.fsync(&cleaned).await?;
        }
        self.dirty = [false; 3];
        Ok(())
    }

    /// The commit point of a swap: the cleaned log becomes `.swap`. From here on a crash
    /// completes the swap (the next open puts it in place of the segments it covers).
    pub(crate) async fn commit_cleaned(&self, disk: &Disk) -> io::Result<()> {
        let swap = format!("{}{SWAP_SUFFIX}", self.log_path);
        disk.rename(&format!("{}{CLEANED_SUFFIX}", self.log_path), &swap)
            .await
    }

    /// Ends a swap: the cleaned indexes replace the old segment's of the same base offset, then
    /// the `.swap` replaces its log. Each rename is atomic and durable.
    pub(crate) async fn finish_swap(&self, disk: &Disk) -> io::Result<()> {
        for path in [&self.index_path, &self.time_index_path] {
            disk.rename(&format!("{path}{CLEANED_SUFFIX}"), path)
                .await?;
        }
        disk.rename(&format!("{}{SWAP_SUFFIX}", self.log_path), &self.log_path)
            .await
    }

    /// Removes what `write_cleaned` left after a failure, best effort.
    pub(crate) async fn remove_cleaned(&self, disk: &Disk) {
        for path in self.paths() {
            let cleaned = format!("{path}{CLEANED_SUFFIX}");
            if disk.exists(&cleaned) {
                let _ = disk.remove(&cleaned).await;
            }
        }
    }
}

/// Replaces a file's content (creating it if needed).
pub(crate) async fn write_file(disk: &Disk, path: &str, bytes: &[u8]) -> io::Result<()> {
    if disk.exists(path) {
        if disk.len(path)? > 0 {
            disk.truncate(path, 0).await?;
        }
    } else {
        disk.create(path).await?;
    }
    if !bytes.is_empty() {
        disk.append(path, bytes).await?;
    }
    Ok(())
}

/// Appends index entries; the file must then be exactly `expected_len` long.
async fn append_entries(
    disk: &Disk,
    path: &str,
    bytes: &[u8],
    expected_len: u64,
) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let position = disk.append(path, bytes).await?;
    assert_eq!(
        position + bytes.len() as u64,
        expected_len,
        "{path}: the index file and its entries disagree"
    );
    Ok(())
}
