//! Kafka's `FileRecords`: a segment's `.log` file seen as batches, walked header by header.
//! These are the scans behind a segment's lookups (`searchForOffsetWithSize`,
//! `searchForTimestamp`, `largestTimestampAfter`) and its reads (`slice`); the segment decides
//! where they start, from its indexes.
//!
//! Every walk checks what it reads against what the segment knows (its base offset, its end,
//! offsets increasing from batch to batch, with gaps only where the log cleaner removed
//! batches): a position that does not start a batch is reported, not followed.

use std::io;

use bytes::Bytes;

use crate::storage::batch::{self, BatchError, BatchHeader, BATCH_HEADER_LEN};
use crate::storage::log::LogError;
use crate::storage::offset_index::OffsetPosition;
use crate::storage::segment::TimestampAndOffset;
use crate::storage::time_index::TimestampOffset;
use crate::world::Disk;

/// What a walk found that does not fit the segment, or an I/O error.
pub(crate) enum ScanError {
    Io(io::Error),
    Inconsistent(String),
}

impl From<io::Error> for ScanError {
    fn from(e: io::Error) -> Self {
        ScanError::Io(e)
    }
}

impl ScanError {
    pub(crate) fn into_log_error(self, path: &str) -> LogError {
        match self {
            ScanError::Io(e) => LogError::Io(e),
            ScanError::Inconsistent(why) => corrupt(format!("{path}: {why}")),
        }
    }
}

pub(crate) fn corrupt(why: String) -> LogError {
    LogError::Corrupt(BatchError::Corrupt(why))
}

/// How much of a segment a walk reads at once: an offset index entry every
/// `index.interval.bytes` (4096 by default) puts most targets within one read.
const READ_AHEAD_BYTES: usize = 8192;

/// What a walk has read of the file: `bytes` from position `start`.
#[derive(Default)]
struct ReadAhead {
    start: u64,
    bytes: Vec<u8>,
}

/// The batches of one segment file: `[base_offset, next_offset)` in `size_bytes` bytes.
pub(crate) struct FileRecords<'a> {
    pub disk: &'a Disk,
    pub path: &'a str,
    pub base_offset: i64,
    pub next_offset: i64,
    pub size_bytes: u64,
}

impl FileRecords<'_> {
    /// The header of the batch at `position`, which must end within the file.
    pub async fn header_at(&self, position: u64) -> Result<BatchHeader, ScanError> {
        let bytes = self
            .disk
            .read_at(self.path, position, BATCH_HEADER_LEN)
            .await?;
        self.parse_header_at(position, &bytes)
    }

    /// `header_at` from what a walk has read ahead, reading on (a chunk at a time) when the
    /// header is not all there. A read from the page cache costs no simulated time and draws
    /// nothing from the disk's latency stream, so one read per chunk instead of one per header
    /// changes only the simulator's own work.
    async fn header_read_ahead(
        &self,
        ahead: &mut ReadAhead,
        position: u64,
    ) -> Result<BatchHeader, ScanError> {
        let end = position + BATCH_HEADER_LEN as u64;
        let held_end = ahead.start + ahead.bytes.len() as u64;
        if position < ahead.start || end > held_end {
            ahead.bytes = self
                .disk
                .read_at(self.path, position, READ_AHEAD_BYTES)
                .await?;
            ahead.start = position;
        }
        let from = (position - ahead.start) as usize;
        let to = (from + BATCH_HEADER_LEN).min(ahead.bytes.len());
        self.parse_header_at(position, &ahead.bytes[from.min(to)..to])
    }

    fn parse_header_at(&self, position: u64, bytes: &[u8]) -> Result<BatchHeader, ScanError> {
        let header = batch::parse_header(bytes)
            .map_err(|e| ScanError::Inconsistent(format!("at byte {position}: {e}")))?;
        if position + header.size_in_bytes() as u64 > self.size_bytes {
            return Err(ScanError::Inconsistent(format!(
                "batch at byte {position} runs past the segment's end"
            )));
        }
        Ok(header)
    }

    /// Walks batch headers from `start` (an index entry, or the file's start) to the first batch
    /// whose last offset is at or above `target` (Kafka's `searchForOffsetWithSize`).
    pub async fn search_for_offset(
        &self,
        start: OffsetPosition,
        target: i64,
    ) -> Result<(u64, BatchHeader), ScanError> {
        let mut position = start.position;
        let mut expected = (start.position == 0).then_some(self.base_offset);
        let mut ahead = ReadAhead::default();
        while position < self.size_bytes {
            let header = self.header_read_ahead(&mut ahead, position).await?;
            let fits = match expected {
                Some(next) => header.base_offset >= next,
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

    /// Whole batches from `position` (where `first` is), CRC-checked, as many as fit in
    /// `max_bytes` but at least one, stopping before any invalid one (Kafka's `slice`, minus the
    /// partial last batch).
    pub async fn read_batches(
        &self,
        position: u64,
        first: &BatchHeader,
        max_bytes: usize,
    ) -> Result<Bytes, LogError> {
        let want = (max_bytes as u64)
            .max(first.size_in_bytes() as u64)
            .min(self.size_bytes - position);
        let bytes = self.read_exact(position, want).await?;
        let mut end = 0;
        let mut expected = first.base_offset;
        let mut iter = batch::batches(&bytes);
        for (at, header) in iter.by_ref() {
            let changed = at == 0 && header.base_offset != first.base_offset;
            if changed || header.base_offset < expected {
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

    /// From `position`, the first record at or after `starting_offset` whose timestamp is at or
    /// above `target` (Kafka's `searchForTimestamp`): headers first, records only of a batch
    /// whose maxTimestamp reaches the target.
    pub async fn search_for_timestamp(
        &self,
        mut position: u64,
        target: i64,
        starting_offset: i64,
    ) -> Result<Option<TimestampAndOffset>, LogError> {
        while position < self.size_bytes {
            let header = self
                .header_at(position)
                .await
                .map_err(|e| e.into_log_error(self.path))?;
            let size = header.size_in_bytes();
            if header.max_timestamp >= target && header.last_offset() >= starting_offset {
                let bytes = self.read_exact(position, size as u64).await?;
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

    /// `max`, or a larger batch maxTimestamp found from `position` on (Kafka's
    /// `largestTimestampAfter`), with the batch's last offset.
    pub async fn largest_timestamp_after(
        &self,
        mut position: u64,
        mut max: TimestampOffset,
    ) -> Result<TimestampOffset, LogError> {
        while position < self.size_bytes {
            let header = self
                .header_at(position)
                .await
                .map_err(|e| e.into_log_error(self.path))?;
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

    /// Exactly `len` bytes from `position`.
    pub async fn read_exact(&self, position: u64, len: u64) -> io::Result<Vec<u8>> {
        let bytes = self.disk.read_at(self.path, position, len as usize).await?;
        if bytes.len() as u64 != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: read {} bytes at {position}, expected {len}",
                    self.path,
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }
}
