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

use crate::storage::batch::{self, BatchError, BatchHeader, BATCH_HEADER_LEN};
use crate::storage::leader_epoch::LeaderEpochFileCache;
use crate::storage::log::{LogConfig, LogError};
use crate::storage::offset_index::{OffsetIndex, OffsetPosition};
use crate::storage::time_index::{TimeIndex, TimestampOffset, NO_TIMESTAMP};
use crate::world::Disk;

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

/// What recovery did to one segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecovery {
    pub base_offset: i64,
    /// Re-validated batch by batch (at or above the recovery point, or its indexes not trusted).
    pub validated: bool,
    pub indexes_rebuilt: bool,
    /// Why the indexes were not trusted (missing, failed the sanity check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_problem: Option<String>,
    /// Valid batches found (when validated).
    pub batches: usize,
    pub truncated_bytes: u64,
    /// Why, and at which byte, the segment was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Reading headers found something that does not fit the segment.
enum ScanError {
    Io(io::Error),
    Inconsistent(String),
}

impl From<io::Error> for ScanError {
    fn from(e: io::Error) -> Self {
        ScanError::Io(e)
    }
}

fn corrupt(why: String) -> LogError {
    LogError::Corrupt(BatchError::Corrupt(why))
}

#[derive(Debug)]
pub struct LogSegment {
    base_offset: i64,
    log_path: String,
    index_path: String,
    time_index_path: String,
    size_bytes: u64,
    next_offset: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    index_interval_bytes: u64,
    /// Bytes from the last offset index entry's batch (or the file start) to the end.
    bytes_since_last_index_entry: u64,
    /// The largest batch maxTimestamp and the last offset of its batch (NO_TIMESTAMP if none).
    max_timestamp: TimestampOffset,
    /// The first batch's maxTimestamp, which `segment.ms` counts from.
    rolling_based_timestamp: Option<i64>,
    created_ms: i64,
    last_modified_ms: i64,
    /// Lookups whose index position did not fit the log, answered by a scan instead.
    index_misses: AtomicU64,
    /// Which of the log, offset index and time index were written since their last fsync.
    dirty: [bool; 3],
}

impl LogSegment {
    fn empty(dir: &str, base_offset: i64, config: &LogConfig, now_ms: i64) -> Self {
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

    /// Loads a segment below the recovery point with the indexes on disk, after Kafka's sanity
    /// check and a walk of the batch headers after the last index entry (Kafka's
    /// `readNextOffset`), which must end exactly at the file's end and at `successor_base`.
    /// `Ok(Err(why))`: the indexes are not to be trusted, the segment must be recovered.
    pub async fn load_trusted(
        disk: &Disk,
        dir: &str,
        base_offset: i64,
        successor_base: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> io::Result<Result<Self, String>> {
        let mut segment = LogSegment::empty(dir, base_offset, config, now_ms);
        for path in [&segment.index_path, &segment.time_index_path] {
            if !disk.exists(path) {
                return Ok(Err(format!("{path} is missing")));
            }
        }
        segment.size_bytes = disk.len(&segment.log_path)?;
        let max_bytes = config.segment_index_bytes;
        let offsets = disk.read_all(&segment.index_path).await?;
        let times = disk.read_all(&segment.time_index_path).await?;
        segment.offset_index = match OffsetIndex::parse(base_offset, max_bytes, &offsets) {
            Ok(index) => index,
            Err(e) => return Ok(Err(format!("{}: {e}", segment.index_path))),
        };
        segment.time_index = match TimeIndex::parse(base_offset, max_bytes, &times) {
            Ok(index) => index,
            Err(e) => return Ok(Err(format!("{}: {e}", segment.time_index_path))),
        };
        if let Err(why) = segment.check_indexes_fit(successor_base) {
            return Ok(Err(why));
        }
        Ok(segment.load_tail(disk, successor_base).await?)
    }

    fn check_indexes_fit(&self, successor_base: i64) -> Result<(), String> {
        let last = self.offset_index.last_entry();
        if last.offset >= successor_base || (last.position > 0 && last.position >= self.size_bytes)
        {
            return Err(format!(
                "{}: last entry (offset {}, position {}) is outside the segment (next segment at \
                 {successor_base}, {} bytes)",
                self.index_path, last.offset, last.position, self.size_bytes
            ));
        }
        let last = self.time_index.last_entry();
        if last.offset >= successor_base {
            return Err(format!(
                "{}: last entry (offset {}) is at or past the next segment's base {successor_base}",
                self.time_index_path, last.offset
            ));
        }
        Ok(())
    }

    /// Walks the batches after the last offset index entry: the segment's end, its largest
    /// timestamp (Kafka's `readLargestTimestamp`) and the first batch's timestamp.
    async fn load_tail(
        mut self,
        disk: &Disk,
        successor_base: i64,
    ) -> io::Result<Result<Self, String>> {
        let entry = self.offset_index.last_entry();
        let tail = disk
            .read_at(&self.log_path, entry.position, (self.size_bytes - entry.position) as usize)
            .await?;
        let mut iter = batch::batches(&tail);
        let mut next = None;
        self.max_timestamp = self.time_index.last_entry();
        for (_, header) in iter.by_ref() {
            let fits = match next {
                None => header.base_offset >= self.base_offset && header.base_offset <= entry.offset,
                Some(next) => header.base_offset == next,
            };
            if !fits {
                return Ok(Err(format!(
                    "{}: batch at offset {} does not follow the index",
                    self.log_path, header.base_offset
                )));
            }
            if header.max_timestamp > self.max_timestamp.timestamp {
                self.max_timestamp = TimestampOffset {
                    timestamp: header.max_timestamp,
                    offset: header.last_offset(),
                };
            }
            next = Some(header.next_offset());
        }
        if let Some((position, e)) = iter.stopped_at() {
            let at = entry.position + position as u64;
            return Ok(Err(format!("{} at byte {at}: {e}", self.log_path)));
        }
        self.next_offset = next.unwrap_or(self.base_offset);
        if self.next_offset != successor_base {
            return Ok(Err(format!(
                "{} ends at offset {}, the next segment starts at {successor_base}",
                self.log_path, self.next_offset
            )));
        }
        self.bytes_since_last_index_entry = self.size_bytes - entry.position;
        if self.size_bytes > 0 {
            let first = disk.read_at(&self.log_path, 0, BATCH_HEADER_LEN).await?;
            self.rolling_based_timestamp = batch::parse_header(&first).ok().map(|h| h.max_timestamp);
        }
        Ok(Ok(self))
    }

    /// Kafka's `LogSegment.recover`: validates every batch (CRC-32C, framing, offsets contiguous
    /// from the base offset), truncates the file after the valid prefix, rebuilds both indexes
    /// and assigns the batches' leader epochs to `epochs`.
    pub async fn recover(
        disk: &Disk,
        dir: &str,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
        epochs: &mut LeaderEpochFileCache,
    ) -> io::Result<(Self, SegmentRecovery)> {
        let mut segment = LogSegment::empty(dir, base_offset, config, now_ms);
        let bytes = disk.read_all(&segment.log_path).await?;
        let mut iter = batch::batches(&bytes);
        let mut stop = None;
        let mut batches = 0;
        for (position, header) in iter.by_ref() {
            if header.base_offset != segment.next_offset {
                let why = format!(
                    "batch at byte {position} has base offset {}, expected {}",
                    header.base_offset, segment.next_offset
                );
                stop = Some((position, why));
                break;
            }
            if !segment.offset_index.can_represent(header.last_offset()) {
                let why = format!("batch at byte {position} overflows the segment's offsets");
                stop = Some((position, why));
                break;
            }
            segment.index_batch(&header, position as u64);
            epochs.assign(header.partition_leader_epoch, header.base_offset);
            batches += 1;
        }
        let stop = stop.or_else(|| {
            iter.stopped_at()
                .map(|(position, error)| (position, format!("at byte {position}: {error}")))
        });
        let truncated_bytes = bytes.len() as u64 - segment.size_bytes;
        if let Some((position, _)) = &stop {
            assert_eq!(*position as u64, segment.size_bytes, "recovery stops after the valid prefix");
            disk.truncate(&segment.log_path, segment.size_bytes).await?;
        }
        // As Kafka's recover: the largest timestamp goes into the time index.
        let max = segment.max_timestamp;
        segment.time_index.maybe_append(max.timestamp, max.offset, true);
        write_file(disk, &segment.index_path, &segment.offset_index.to_bytes()).await?;
        write_file(disk, &segment.time_index_path, &segment.time_index.to_bytes()).await?;
        let report = SegmentRecovery {
            base_offset,
            validated: true,
            indexes_rebuilt: true,
            index_problem: None,
            batches,
            truncated_bytes,
            reason: stop.map(|(_, why)| why),
        };
        Ok((segment, report))
    }

    /// Accounts for one batch written at `position` (Kafka's `append` and `recover`): the
    /// largest timestamp, and the index entries due, returned as file bytes.
    fn index_batch(&mut self, header: &BatchHeader, position: u64) -> (Option<[u8; 8]>, Option<[u8; 12]>) {
        assert_eq!(header.base_offset, self.next_offset, "{}: offsets must be contiguous", self.log_path);
        assert_eq!(position, self.size_bytes, "{}: batches must be contiguous", self.log_path);
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
            entries.1 = self.time_index.maybe_append(max.timestamp, max.offset, false);
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
        append_entries(disk, &self.index_path, &offsets, self.offset_index.size_bytes()).await?;
        append_entries(disk, &self.time_index_path, &times, self.time_index.size_bytes()).await
    }

    /// The segment stops being active: its largest timestamp goes into the time index (Kafka's
    /// `onBecomeInactiveSegment`; nothing to trim, nothing was preallocated).
    pub async fn on_become_inactive(&mut self, disk: &Disk) -> io::Result<()> {
        let max = self.max_timestamp;
        if let Some(entry) = self.time_index.maybe_append(max.timestamp, max.offset, true) {
            self.dirty[2] = true;
            append_entries(disk, &self.time_index_path, &entry, self.time_index.size_bytes()).await?;
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
        Ok(())
    }

    /// Removes the segment's files, the log first: an index left by a crash in between is an
    /// orphan, which the next open deletes.
    pub async fn delete(self, disk: &Disk) -> io::Result<()> {
        for path in self.paths() {
            if disk.exists(path) {
                disk.remove(path).await?;
            }
        }
        Ok(())
    }

    async fn header_at(&self, disk: &Disk, position: u64) -> Result<BatchHeader, ScanError> {
        let bytes = disk.read_at(&self.log_path, position, BATCH_HEADER_LEN).await?;
        let header = batch::parse_header(&bytes)
            .map_err(|e| ScanError::Inconsistent(format!("at byte {position}: {e}")))?;
        if position + header.size_in_bytes() as u64 > self.size_bytes {
            return Err(ScanError::Inconsistent(format!(
                "batch at byte {position} runs past the segment's end"
            )));
        }
        Ok(header)
    }

    /// Walks batch headers from `start` to the batch holding `target`.
    async fn scan(
        &self,
        disk: &Disk,
        start: OffsetPosition,
        target: i64,
    ) -> Result<(u64, BatchHeader), ScanError> {
        let mut position = start.position;
        let mut expected = (start.position == 0).then_some(self.base_offset);
        while position < self.size_bytes {
            let header = self.header_at(disk, position).await?;
            let fits = match expected {
                Some(next) => header.base_offset == next,
                None => (self.base_offset..=start.offset.max(target)).contains(&header.base_offset),
            };
            if !fits || header.next_offset() > self.next_offset {
                return Err(ScanError::Inconsistent(format!(
                    "batch at byte {position} has offsets {}..={}, which do not fit",
                    header.base_offset,
                    header.last_offset()
                )));
            }
            if header.last_offset() >= target {
                return Ok((position, header));
            }
            expected = Some(header.next_offset());
            position += header.size_in_bytes() as u64;
        }
        Err(ScanError::Inconsistent(format!(
            "no batch holds offset {target} below {}",
            self.next_offset
        )))
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
        let why = match self.scan(disk, entry, offset).await {
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

    async fn scan_from_start(&self, disk: &Disk, offset: i64) -> Result<(u64, BatchHeader), LogError> {
        let start = OffsetPosition {
            offset: self.base_offset,
            position: 0,
        };
        match self.scan(disk, start, offset).await {
            Ok(found) => Ok(found),
            Err(ScanError::Io(e)) => Err(e.into()),
            Err(ScanError::Inconsistent(why)) => Err(corrupt(format!("{}: {why}", self.log_path))),
        }
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
        match self.read_batches(disk, position, &first, max_bytes).await {
            Err(LogError::Corrupt(e)) if position > 0 => {
                // The index may have pointed into a batch: find the batch by a scan and retry.
                let (scanned, header) = self.scan_from_start(disk, from_offset).await?;
                if scanned == position {
                    return Err(LogError::Corrupt(e));
                }
                self.index_misses.fetch_add(1, Ordering::Relaxed);
                self.read_batches(disk, scanned, &header, max_bytes).await.map(Some)
            }
            other => other.map(Some),
        }
    }

    async fn read_batches(
        &self,
        disk: &Disk,
        position: u64,
        first: &BatchHeader,
        max_bytes: usize,
    ) -> Result<Bytes, LogError> {
        let want = (max_bytes as u64)
            .max(first.size_in_bytes() as u64)
            .min(self.size_bytes - position);
        let bytes = disk.read_at(&self.log_path, position, want as usize).await?;
        if bytes.len() as u64 != want {
            return Err(LogError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: read {} bytes at {position}, expected {want}", self.log_path, bytes.len()),
            )));
        }
        let mut end = 0;
        let mut expected = first.base_offset;
        let mut iter = batch::batches(&bytes);
        for (at, header) in iter.by_ref() {
            if header.base_offset != expected {
                break;
            }
            expected = header.next_offset();
            end = at + header.size_in_bytes();
        }
        if end == 0 {
            let error = iter
                .stopped_at()
                .map(|(_, e)| e)
                .unwrap_or_else(|| BatchError::Corrupt("the batch's offsets changed".into()));
            return Err(LogError::Corrupt(error));
        }
        Ok(Bytes::from(bytes).slice(..end))
    }

    /// The first record at or after `starting_offset` whose timestamp is at or above `target`
    /// (Kafka's `findOffsetByTimestamp`), via the time index then a scan.
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
        let Some((mut position, _)) = self.translate_offset(disk, from).await? else {
            return Ok(None);
        };
        while position < self.size_bytes {
            let header = match self.header_at(disk, position).await {
                Ok(header) => header,
                Err(ScanError::Io(e)) => return Err(e.into()),
                Err(ScanError::Inconsistent(why)) => return Err(corrupt(why)),
            };
            let size = header.size_in_bytes();
            if header.max_timestamp >= target && header.last_offset() >= starting_offset {
                let bytes = disk.read_at(&self.log_path, position, size).await?;
                let (_, records) = batch::decode_records(&bytes)?;
                let found = records
                    .iter()
                    .find(|r| r.timestamp >= target && r.offset >= starting_offset);
                if let Some(record) = found {
                    let epoch = header.partition_leader_epoch;
                    return Ok(Some(TimestampAndOffset {
                        timestamp: record.timestamp,
                        offset: record.offset,
                        leader_epoch: (epoch >= 0).then_some(epoch),
                    }));
                }
            }
            position += size as u64;
        }
        Ok(None)
    }

    /// Removes the batch holding `offset` and every later one, and their index entries (Kafka's
    /// `LogSegment.truncateTo`; whole batches, so the segment may end below `offset`). Returns
    /// the bytes removed.
    pub async fn truncate_to(&mut self, disk: &Disk, offset: i64, now_ms: i64) -> Result<u64, LogError> {
        let Some((position, header)) = self.translate_offset(disk, offset).await? else {
            return Ok(0);
        };
        let next_offset = header.base_offset;
        let before = (self.offset_index.size_bytes(), self.time_index.size_bytes());
        let offsets_len = self.offset_index.truncate_to(next_offset);
        let times_len = self.time_index.truncate_to(next_offset);
        if offsets_len != before.0 {
            disk.truncate(&self.index_path, offsets_len).await?;
        }
        if times_len != before.1 {
            disk.truncate(&self.time_index_path, times_len).await?;
        }
        disk.truncate(&self.log_path, position).await?;
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
        self.bytes_since_last_index_entry = position - self.offset_index.last_entry().position;
        self.max_timestamp = self.read_largest_timestamp(disk).await?;
        Ok(truncated)
    }

    /// The largest timestamp: the time index's last entry, or a later batch's (Kafka's
    /// `readLargestTimestamp`).
    async fn read_largest_timestamp(&self, disk: &Disk) -> Result<TimestampOffset, LogError> {
        let mut max = self.time_index.last_entry();
        let mut position = self.offset_index.lookup(max.offset).position;
        while position < self.size_bytes {
            let header = match self.header_at(disk, position).await {
                Ok(header) => header,
                Err(ScanError::Io(e)) => return Err(e.into()),
                Err(ScanError::Inconsistent(why)) => return Err(corrupt(why)),
            };
            if header.max_timestamp > max.timestamp {
                max = TimestampOffset {
                    timestamp: header.max_timestamp,
                    offset: header.last_offset(),
                };
            }
            position += header.size_in_bytes() as u64;
        }
        Ok(max)
    }

    /// The whole file.
    pub async fn read_all(&self, disk: &Disk) -> io::Result<Vec<u8>> {
        let bytes = disk.read_at(&self.log_path, 0, self.size_bytes as usize).await?;
        if bytes.len() as u64 != self.size_bytes {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: {} bytes, expected {}", self.log_path, bytes.len(), self.size_bytes),
            ));
        }
        Ok(bytes)
    }
}

/// Replaces a file's content (creating it if needed).
async fn write_file(disk: &Disk, path: &str, bytes: &[u8]) -> io::Result<()> {
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
async fn append_entries(disk: &Disk, path: &str, bytes: &[u8], expected_len: u64) -> io::Result<()> {
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
