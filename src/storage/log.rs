//! The partition log, walking skeleton: one partition directory (`<topic>-<partition>/`) holding
//! one segment file named by its base offset (`00000000000000000000.log`), in exactly Kafka's
//! on-disk format: record batches v2, concatenated, nothing else.
//!
//! The shape is Kafka's `UnifiedLog` over a single `LogSegment`: appends assign offsets and
//! stamp the leader epoch, reads return whole batches from an in-memory map of batch positions
//! (what the offset index will replace), and opening an existing segment recovers it as Kafka's
//! `LogLoader` does: validate batch by batch, truncate at the first invalid or torn one.

use std::fmt;
use std::io;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::storage::batch::{self, BatchError, BatchHeader, DecodedRecord};
use crate::world::Disk;

/// The log's Kafka configs (topic-level names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `flush.messages` / `log.flush.interval.messages`: fsync once this many messages are
    /// unflushed. Kafka's default is `Long.MAX_VALUE`: never, durability comes from replication.
    pub flush_interval_messages: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            flush_interval_messages: i64::MAX as u64,
        }
    }
}

/// Kafka's partition directory name (`LocalLog.logDirName`).
pub fn partition_dir(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// Kafka's segment file name: the base offset as 20 zero-padded digits (`LogFileUtils.logFile`).
pub fn segment_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

/// What `Log::open` found and did; part of a run's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryReport {
    /// Bytes cut from the end of the segment (0 if it was whole).
    pub truncated_bytes: u64,
    /// Why, and at which byte, the segment was cut.
    pub reason: Option<String>,
    pub log_end_offset: i64,
    /// Valid batches kept.
    pub batches: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    pub log_end_offset: i64,
}

/// Whole batches, as a fetch returns them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadResult {
    /// Concatenated batches, starting with the one containing the requested offset; empty when
    /// reading at the log end offset.
    pub records: Bytes,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

#[derive(Debug)]
pub enum LogError {
    Io(io::Error),
    /// A batch that is not valid: offered to `append` (Kafka answers CORRUPT_MESSAGE for CRC and
    /// framing errors, INVALID_RECORD for inconsistent counts) or found on disk by a read.
    Corrupt(BatchError),
    /// Kafka's `OffsetOutOfRangeException` (OFFSET_OUT_OF_RANGE).
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// A follower's batches do not start at the log end (Kafka's
    /// `UnexpectedAppendOffsetException`).
    UnexpectedAppendOffset {
        first_offset: i64,
        log_end_offset: i64,
    },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Io(e) => write!(f, "I/O error: {e}"),
            LogError::Corrupt(e) => write!(f, "{e}"),
            LogError::OffsetOutOfRange {
                offset,
                log_start_offset,
                log_end_offset,
            } => write!(
                f,
                "offset {offset} is out of range [{log_start_offset}, {log_end_offset}]"
            ),
            LogError::UnexpectedAppendOffset {
                first_offset,
                log_end_offset,
            } => write!(
                f,
                "batches start at offset {first_offset}, log end offset is {log_end_offset}"
            ),
        }
    }
}

impl std::error::Error for LogError {}

impl From<io::Error> for LogError {
    fn from(e: io::Error) -> Self {
        LogError::Io(e)
    }
}

impl From<BatchError> for LogError {
    fn from(e: BatchError) -> Self {
        LogError::Corrupt(e)
    }
}

impl From<LogError> for io::Error {
    fn from(e: LogError) -> Self {
        match e {
            LogError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// Where one batch sits in the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BatchPosition {
    base_offset: i64,
    last_offset: i64,
    position: u64,
    size: u64,
}

/// The segment's batches in offset order: contiguous offsets, contiguous bytes. Pure state, no
/// I/O; the sparse map that Kafka's `OffsetIndex` will take over.
#[derive(Clone, Debug, PartialEq, Eq)]
struct BatchIndex {
    base_offset: i64,
    entries: Vec<BatchPosition>,
    size_bytes: u64,
}

impl BatchIndex {
    fn new(base_offset: i64) -> Self {
        BatchIndex {
            base_offset,
            entries: Vec::new(),
            size_bytes: 0,
        }
    }

    fn next_offset(&self) -> i64 {
        self.entries
            .last()
            .map_or(self.base_offset, |e| e.last_offset + 1)
    }

    /// Records a batch written at the end of the segment.
    fn push(&mut self, header: &BatchHeader, position: u64) {
        assert_eq!(
            header.base_offset,
            self.next_offset(),
            "offsets must be contiguous"
        );
        assert_eq!(
            position, self.size_bytes,
            "batches must be contiguous in the file"
        );
        let size = header.size_in_bytes() as u64;
        self.entries.push(BatchPosition {
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            position,
            size,
        });
        self.size_bytes += size;
    }

    /// The first batch whose last offset is at or above `offset`: the one containing it.
    fn first_at_or_above(&self, offset: i64) -> usize {
        self.entries.partition_point(|e| e.last_offset < offset)
    }

    /// The byte range of whole batches to return for a read from `offset` (below the log end):
    /// the containing batch, then as many following ones as fit in `max_bytes`.
    fn read_range(&self, offset: i64, max_bytes: usize) -> (u64, u64) {
        let first = self.first_at_or_above(offset);
        let start = self.entries[first].position;
        let mut len = self.entries[first].size;
        for entry in &self.entries[first + 1..] {
            if len + entry.size > max_bytes as u64 {
                break;
            }
            len += entry.size;
        }
        (start, len)
    }

    /// Drops every batch containing an offset at or above `offset`; returns the new file length.
    fn truncate_to(&mut self, offset: i64) -> u64 {
        let keep = self.first_at_or_above(offset);
        self.entries.truncate(keep);
        self.size_bytes = self.entries.last().map_or(0, |e| e.position + e.size);
        self.size_bytes
    }
}

/// Rebuilds the index of a segment from its bytes: batches must be valid and their offsets
/// contiguous from the segment's base offset. Returns where and why the valid prefix ends.
fn recover_segment(base_offset: i64, bytes: &[u8]) -> (BatchIndex, Option<(usize, String)>) {
    let mut index = BatchIndex::new(base_offset);
    let mut iter = batch::batches(bytes);
    for (position, header) in iter.by_ref() {
        if header.base_offset != index.next_offset() {
            let why = format!(
                "batch at byte {position} has base offset {}, expected {}",
                header.base_offset,
                index.next_offset()
            );
            return (index, Some((position, why)));
        }
        index.push(&header, position as u64);
    }
    let stop = iter
        .stopped_at()
        .map(|(position, error)| (position, format!("at byte {position}: {error}")));
    (index, stop)
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
    batch::decode_records(buf)?;
    Ok(header)
}

/// A partition's log on a `Disk`. After an I/O error the in-memory state may no longer match
/// the file: reopen the log (recovery reconciles them), as Kafka takes the log dir offline.
#[derive(Debug)]
pub struct Log {
    disk: Disk,
    dir: String,
    segment_path: String,
    config: LogConfig,
    index: BatchIndex,
    /// Kafka's recovery point: every offset below it has been fsynced by this log.
    recovery_point: i64,
}

impl Log {
    /// Opens the log in `dir`, creating its segment if there is none, else recovering it.
    ///
    /// Recovery truncates the segment at the first invalid, torn or out-of-sequence batch. As
    /// in Kafka, nothing is fsynced here, and without a recovery-point checkpoint (yet) every
    /// recovered message counts as unflushed.
    pub async fn open(
        disk: Disk,
        dir: &str,
        config: LogConfig,
    ) -> io::Result<(Log, RecoveryReport)> {
        let base_offset = find_segment(&disk, dir)?;
        let segment_path = format!("{dir}/{}", segment_file_name(base_offset.unwrap_or(0)));
        let (index, truncated_bytes, reason) = match base_offset {
            None => {
                disk.create(&segment_path).await?;
                (BatchIndex::new(0), 0, None)
            }
            Some(base_offset) => recover(&disk, &segment_path, base_offset).await?,
        };
        let report = RecoveryReport {
            truncated_bytes,
            reason,
            log_end_offset: index.next_offset(),
            batches: index.entries.len(),
        };
        let log = Log {
            disk,
            dir: dir.to_owned(),
            segment_path,
            config,
            recovery_point: index.base_offset,
            index,
        };
        Ok((log, report))
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }

    pub fn log_start_offset(&self) -> i64 {
        self.index.base_offset
    }

    /// The offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.index.next_offset()
    }

    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// Kafka's `unflushedMessages`: log end offset minus recovery point.
    pub fn unflushed_messages(&self) -> u64 {
        (self.log_end_offset() - self.recovery_point) as u64
    }

    pub fn size_in_bytes(&self) -> u64 {
        self.index.size_bytes
    }

    /// Appends a producer's batch as the leader: validates it (CRC, framing, counts), assigns
    /// its offsets from the log end offset and stamps `leader_epoch` in place, writes it, and
    /// fsyncs once `flush_interval_messages` messages are unflushed. `batch` holds exactly one
    /// batch; on return it holds the bytes as written.
    pub async fn append(
        &mut self,
        batch: &mut [u8],
        leader_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        let mut header = validate_for_append(batch)?;
        header.base_offset = self.log_end_offset();
        header.partition_leader_epoch = leader_epoch;
        batch::set_base_offset(batch, header.base_offset);
        batch::set_partition_leader_epoch(batch, leader_epoch);
        self.write(batch, &[header]).await?;
        Ok(self.append_info(header.base_offset, header.last_offset()))
    }

    /// Appends a leader's batches as a follower: offsets and epochs are kept, and must continue
    /// the log exactly. Every batch is validated (CRC); a torn or invalid one fails the append
    /// and nothing is written.
    pub async fn append_as_follower(&mut self, records: &[u8]) -> Result<AppendInfo, LogError> {
        let mut iter = batch::batches(records);
        let headers: Vec<BatchHeader> = iter.by_ref().map(|(_, header)| header).collect();
        if let Some((_, error)) = iter.stopped_at() {
            return Err(LogError::Corrupt(error));
        }
        let (Some(first), Some(last)) = (headers.first(), headers.last()) else {
            // An empty fetch: nothing to append, reported as an empty range (last < first).
            let log_end_offset = self.log_end_offset();
            return Ok(self.append_info(log_end_offset, log_end_offset - 1));
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
        self.write(records, &headers).await?;
        Ok(self.append_info(first_offset, last_offset))
    }

    fn append_info(&self, first_offset: i64, last_offset: i64) -> AppendInfo {
        AppendInfo {
            first_offset,
            last_offset,
            log_end_offset: self.log_end_offset(),
        }
    }

    /// Writes validated, offset-assigned batches at the end of the segment, then flushes if the
    /// unflushed count reached the interval (Kafka's `UnifiedLog.append`).
    async fn write(&mut self, bytes: &[u8], headers: &[BatchHeader]) -> io::Result<()> {
        let position = self.disk.append(&self.segment_path, bytes).await?;
        assert_eq!(
            position, self.index.size_bytes,
            "{}: appended at byte {position}, the log ends at {}",
            self.segment_path, self.index.size_bytes
        );
        let mut batch_position = position;
        for header in headers {
            self.index.push(header, batch_position);
            batch_position += header.size_in_bytes() as u64;
        }
        if self.unflushed_messages() >= self.config.flush_interval_messages {
            self.flush().await?;
        }
        Ok(())
    }

    /// fsyncs the segment: everything appended so far is durable.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.disk.fsync(&self.segment_path).await?;
        self.recovery_point = self.log_end_offset();
        Ok(())
    }

    /// Reads whole batches from the one containing `from_offset`, adding following batches while
    /// the total stays within `max_bytes`; the first batch is returned even if it alone exceeds
    /// `max_bytes` (Kafka's `minOneMessage`, KIP-74). Unlike Kafka, which may cut the last batch
    /// at `max_bytes`, only whole batches are returned. Reading at the log end offset returns no
    /// records; below the log start offset or above the log end offset is `OffsetOutOfRange`.
    pub async fn read(&self, from_offset: i64, max_bytes: usize) -> Result<ReadResult, LogError> {
        let (log_start_offset, log_end_offset) = (self.log_start_offset(), self.log_end_offset());
        if from_offset < log_start_offset || from_offset > log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset: from_offset,
                log_start_offset,
                log_end_offset,
            });
        }
        let records = if from_offset == log_end_offset {
            Bytes::new()
        } else {
            let (position, len) = self.index.read_range(from_offset, max_bytes);
            Bytes::from(self.read_exact(position, len).await?)
        };
        Ok(ReadResult {
            records,
            log_start_offset,
            log_end_offset,
        })
    }

    async fn read_exact(&self, position: u64, len: u64) -> io::Result<Vec<u8>> {
        let bytes = self
            .disk
            .read_at(&self.segment_path, position, len as usize)
            .await?;
        if bytes.len() as u64 != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: read {} bytes at {position}, the log holds {len} there",
                    self.segment_path,
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    /// Removes every batch containing an offset at or above `offset`, as Kafka's
    /// `LogSegment.truncateTo` does: truncation is at a batch boundary, so if `offset` falls
    /// inside a batch that whole batch goes and the log end offset ends up below `offset`. A
    /// no-op at or above the log end offset. Not fsynced (nor in Kafka): a crash may bring the
    /// truncated batches back, and recovery keeps them if they are valid.
    pub async fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        if offset < self.log_start_offset() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "truncation to {offset}, below the log start offset {}, needs segments",
                    self.log_start_offset()
                ),
            ));
        }
        let len = self.index.truncate_to(offset);
        self.disk.truncate(&self.segment_path, len).await?;
        self.recovery_point = self.recovery_point.min(self.log_end_offset());
        Ok(())
    }

    /// Every record in the log, in offset order (the final state of a run).
    pub async fn read_all_records(&self) -> Result<Vec<DecodedRecord>, LogError> {
        let bytes = self.read_exact(0, self.index.size_bytes).await?;
        let mut records = Vec::new();
        for entry in &self.index.entries {
            let start = entry.position as usize;
            let (_, batch_records) =
                batch::decode_records(&bytes[start..start + entry.size as usize])?;
            records.extend(batch_records);
        }
        Ok(records)
    }
}

/// The base offset of the segment in `dir`, if it has one.
fn find_segment(disk: &Disk, dir: &str) -> io::Result<Option<i64>> {
    let prefix = format!("{dir}/");
    let mut base_offsets = Vec::new();
    for path in disk.list(&prefix) {
        let name = &path[prefix.len()..];
        let Some(stem) = name.strip_suffix(".log") else {
            continue;
        };
        match stem.parse::<i64>() {
            Ok(offset) if stem.len() == 20 && offset >= 0 => base_offsets.push(offset),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{path}: not a segment file name"),
                ))
            }
        }
    }
    match base_offsets.as_slice() {
        [] => Ok(None),
        [base_offset] => Ok(Some(*base_offset)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{dir}: {} segments, the walking-skeleton log has one",
                base_offsets.len()
            ),
        )),
    }
}

/// Reads and validates the segment, truncating it after its valid prefix.
async fn recover(
    disk: &Disk,
    segment_path: &str,
    base_offset: i64,
) -> io::Result<(BatchIndex, u64, Option<String>)> {
    let bytes = disk.read_all(segment_path).await?;
    let (index, stop) = recover_segment(base_offset, &bytes);
    let Some((position, why)) = stop else {
        return Ok((index, 0, None));
    };
    debug_assert_eq!(position as u64, index.size_bytes);
    disk.truncate(segment_path, position as u64).await?;
    Ok((index, (bytes.len() - position) as u64, Some(why)))
}

#[cfg(test)]
// `madsim` is a --cfg set by .cargo/config.toml, unknown to Cargo's check-cfg.
#[allow(unexpected_cfgs)]
mod tests {
    use super::*;
    use crate::storage::batch::{encode_batch, BatchSpec, Record};

    /// A batch of `count` records with values `"{tag}-{i}"`, offsets from 0 (the log reassigns).
    fn producer_batch(tag: &str, count: i32) -> Vec<u8> {
        let records: Vec<Record> = (0..count)
            .map(|i| Record {
                offset_delta: i,
                timestamp_delta: i64::from(i),
                key: None,
                value: Some(Bytes::from(format!("{tag}-{i}"))),
                headers: vec![],
            })
            .collect();
        let spec = BatchSpec {
            base_timestamp: 1_000,
            ..BatchSpec::default()
        };
        encode_batch(&spec, &records).to_vec()
    }

    /// The same batch with offsets already assigned, as a segment holds it.
    fn stored_batch(tag: &str, count: i32, base_offset: i64) -> Vec<u8> {
        let mut bytes = producer_batch(tag, count);
        batch::set_base_offset(&mut bytes, base_offset);
        bytes
    }

    #[test]
    fn recover_segment_keeps_the_valid_contiguous_prefix() {
        let mut segment = stored_batch("a", 2, 0);
        segment.extend(stored_batch("b", 3, 2));
        let (index, stop) = recover_segment(0, &segment);
        assert_eq!(stop, None);
        assert_eq!((index.next_offset(), index.entries.len()), (5, 2));
        assert_eq!(index.size_bytes, segment.len() as u64);

        let whole = segment.len();
        segment.extend(stored_batch("gap", 1, 9)); // valid, but offsets 5..=8 are missing
        let (index, stop) = recover_segment(0, &segment);
        let (position, why) = stop.unwrap();
        assert_eq!((position, index.next_offset()), (whole, 5));
        assert!(why.contains("base offset 9, expected 5"), "{why}");
    }

    #[test]
    fn batch_index_locates_reads_and_truncates() {
        let mut index = BatchIndex::new(0);
        let mut position = 0;
        for (base, count) in [(0, 2), (2, 2), (4, 2)] {
            let bytes = stored_batch("x", count, base);
            index.push(&batch::validate(&bytes).unwrap(), position);
            position += bytes.len() as u64;
        }
        let size = index.entries[0].size;
        assert_eq!(index.read_range(3, 0), (size, size)); // at least one batch
        assert_eq!(index.read_range(3, 2 * size as usize), (size, 2 * size));
        assert_eq!(index.read_range(0, usize::MAX), (0, 3 * size));
        assert_eq!(index.truncate_to(3), size); // offset 3 is inside batch 2..=3
        assert_eq!(index.next_offset(), 2);
    }

    // Disk calls sleep through madsim's clock, so these run inside a madsim runtime.
    #[cfg(madsim)]
    mod on_disk {
        use super::*;
        use crate::world::{DiskBackend, DiskOp};
        use std::collections::BTreeMap;
        use std::sync::{Arc, Mutex};
        use std::time::Duration;

        /// Files in a map; counts fsyncs per path. No latency, no faults.
        #[derive(Default)]
        struct MemDisk {
            files: Mutex<BTreeMap<String, Vec<u8>>>,
            fsyncs: Mutex<BTreeMap<String, usize>>,
        }

        fn not_found(path: &str) -> io::Error {
            io::Error::new(io::ErrorKind::NotFound, path.to_owned())
        }

        impl MemDisk {
            fn with_file<T>(&self, path: &str, f: impl FnOnce(&mut Vec<u8>) -> T) -> io::Result<T> {
                let mut files = self.files.lock().unwrap();
                files.get_mut(path).map(f).ok_or_else(|| not_found(path))
            }

            fn bytes(&self, path: &str) -> Vec<u8> {
                self.with_file(path, |f| f.clone()).unwrap()
            }

            fn fsyncs(&self, path: &str) -> usize {
                self.fsyncs.lock().unwrap().get(path).copied().unwrap_or(0)
            }
        }

        impl DiskBackend for MemDisk {
            fn latency(&self, _op: DiskOp) -> Duration {
                Duration::ZERO
            }
            fn create(&self, path: &str) -> io::Result<()> {
                self.files
                    .lock()
                    .unwrap()
                    .entry(path.to_owned())
                    .or_default();
                Ok(())
            }
            fn exists(&self, path: &str) -> bool {
                self.files.lock().unwrap().contains_key(path)
            }
            fn list(&self, prefix: &str) -> Vec<String> {
                let files = self.files.lock().unwrap();
                files
                    .keys()
                    .filter(|p| p.starts_with(prefix))
                    .cloned()
                    .collect()
            }
            fn len(&self, path: &str) -> io::Result<u64> {
                self.with_file(path, |f| f.len() as u64)
            }
            fn read_at(&self, path: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
                self.with_file(path, |f| {
                    let start = (offset as usize).min(f.len());
                    f[start..(start + len).min(f.len())].to_vec()
                })
            }
            fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> io::Result<()> {
                self.with_file(path, |f| {
                    let end = offset as usize + data.len();
                    if f.len() < end {
                        f.resize(end, 0);
                    }
                    f[offset as usize..end].copy_from_slice(data);
                })
            }
            fn append(&self, path: &str, data: &[u8]) -> io::Result<u64> {
                self.with_file(path, |f| {
                    let position = f.len() as u64;
                    f.extend_from_slice(data);
                    position
                })
            }
            fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
                self.with_file(path, |f| f.truncate(len as usize))
            }
            fn fsync(&self, path: &str) -> io::Result<()> {
                self.with_file(path, |_| ())?;
                *self
                    .fsyncs
                    .lock()
                    .unwrap()
                    .entry(path.to_owned())
                    .or_default() += 1;
                Ok(())
            }
            fn remove(&self, path: &str) -> io::Result<()> {
                self.files
                    .lock()
                    .unwrap()
                    .remove(path)
                    .map(|_| ())
                    .ok_or_else(|| not_found(path))
            }
            fn rename(&self, from: &str, to: &str) -> io::Result<()> {
                let mut files = self.files.lock().unwrap();
                let data = files.remove(from).ok_or_else(|| not_found(from))?;
                files.insert(to.to_owned(), data);
                Ok(())
            }
        }

        const DIR: &str = "orders-0";
        const SEGMENT: &str = "orders-0/00000000000000000000.log";

        fn run<F: std::future::Future>(f: F) -> F::Output {
            madsim::runtime::Runtime::new().block_on(f)
        }

        fn disk() -> (Arc<MemDisk>, Disk) {
            let mem = Arc::new(MemDisk::default());
            (mem.clone(), Disk::new(mem))
        }

        async fn open(disk: &Disk, flush_interval_messages: u64) -> (Log, RecoveryReport) {
            let config = LogConfig {
                flush_interval_messages,
            };
            Log::open(disk.clone(), DIR, config).await.unwrap()
        }

        /// Appends batches of 2 records: offsets 0-1, 2-3, 4-5.
        async fn three_batches(log: &mut Log) -> Vec<Vec<u8>> {
            let mut written = Vec::new();
            for tag in ["a", "b", "c"] {
                let mut bytes = producer_batch(tag, 2);
                log.append(&mut bytes, 5).await.unwrap();
                written.push(bytes);
            }
            written
        }

        fn values(records: &[DecodedRecord]) -> Vec<(i64, String)> {
            let value = |r: &DecodedRecord| String::from_utf8(r.value.clone().unwrap().to_vec());
            records
                .iter()
                .map(|r| (r.offset, value(r).unwrap()))
                .collect()
        }

        #[test]
        fn a_new_log_is_one_empty_segment_named_by_kafka() {
            run(async {
                assert_eq!(partition_dir("orders", 0), DIR);
                let (mem, disk) = disk();
                let (log, report) = open(&disk, u64::MAX).await;
                assert_eq!(
                    mem.files.lock().unwrap().keys().collect::<Vec<_>>(),
                    vec![SEGMENT]
                );
                assert_eq!(report.truncated_bytes, 0);
                assert_eq!((report.log_end_offset, report.batches), (0, 0));
                assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
            })
        }

        #[test]
        fn append_assigns_offsets_and_the_file_is_the_batches() {
            run(async {
                let (mem, disk) = disk();
                let (mut log, _) = open(&disk, u64::MAX).await;
                let mut first = producer_batch("a", 3);
                batch::set_base_offset(&mut first, 999); // whatever the producer sent
                let info = log.append(&mut first, 5).await.unwrap();
                assert_eq!(
                    (info.first_offset, info.last_offset, info.log_end_offset),
                    (0, 2, 3)
                );
                let mut second = producer_batch("b", 2);
                let info = log.append(&mut second, 6).await.unwrap();
                assert_eq!(
                    (info.first_offset, info.last_offset, info.log_end_offset),
                    (3, 4, 5)
                );

                // Kafka's format exactly: the segment is the rewritten batches, back to back.
                assert_eq!(mem.bytes(SEGMENT), [first.clone(), second.clone()].concat());
                let header = batch::validate(&second).unwrap();
                assert_eq!((header.base_offset, header.partition_leader_epoch), (3, 6));

                let read = log.read(0, usize::MAX).await.unwrap();
                assert_eq!(read.records.to_vec(), [first, second].concat());
                assert_eq!((read.log_start_offset, read.log_end_offset), (0, 5));
                let all = log.read_all_records().await.unwrap();
                let expected = ["a-0", "a-1", "a-2", "b-0", "b-1"];
                let expected: Vec<_> = expected
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i as i64, v.to_string()))
                    .collect();
                assert_eq!(values(&all), expected);
            })
        }

        #[test]
        fn read_returns_whole_batches_from_the_containing_one() {
            run(async {
                let (_, disk) = disk();
                let (mut log, _) = open(&disk, u64::MAX).await;
                let written = three_batches(&mut log).await;
                let read = log.read(3, 1).await.unwrap(); // inside batch 2-3, max_bytes too small
                assert_eq!(read.records.to_vec(), written[1]);
                let read = log
                    .read(3, written[1].len() + written[2].len())
                    .await
                    .unwrap();
                assert_eq!(
                    read.records.to_vec(),
                    [written[1].clone(), written[2].clone()].concat()
                );
                let read = log
                    .read(3, written[1].len() + written[2].len() - 1)
                    .await
                    .unwrap();
                assert_eq!(read.records.to_vec(), written[1]);
                assert!(log.read(6, 1000).await.unwrap().records.is_empty()); // at the log end
            })
        }

        #[test]
        fn reads_outside_the_log_are_offset_out_of_range() {
            run(async {
                let (_, disk) = disk();
                let (mut log, _) = open(&disk, u64::MAX).await;
                three_batches(&mut log).await;
                for offset in [-1, 7, i64::MAX] {
                    let error = log.read(offset, 1000).await.unwrap_err();
                    assert!(
                        matches!(
                            error,
                            LogError::OffsetOutOfRange { offset: o, log_start_offset: 0, log_end_offset: 6 }
                                if o == offset
                        ),
                        "{error}"
                    );
                }
            })
        }

        #[test]
        fn invalid_batches_are_refused_and_leave_the_log_alone() {
            run(async {
                let (mem, disk) = disk();
                let (mut log, _) = open(&disk, u64::MAX).await;
                three_batches(&mut log).await;
                let before = mem.bytes(SEGMENT);

                let mut flipped = producer_batch("x", 2);
                let last = flipped.len() - 1;
                flipped[last] ^= 1;
                let error = log.append(&mut flipped, 5).await.unwrap_err();
                assert!(matches!(
                    error,
                    LogError::Corrupt(BatchError::CrcMismatch { .. })
                ));

                let mut two = [producer_batch("x", 1), producer_batch("y", 1)].concat();
                assert!(matches!(
                    log.append(&mut two, 5).await,
                    Err(LogError::Corrupt(_))
                ));

                let mut torn = producer_batch("x", 2);
                torn.truncate(70);
                let error = log.append(&mut torn, 5).await.unwrap_err();
                assert!(matches!(
                    error,
                    LogError::Corrupt(BatchError::Truncated { .. })
                ));

                // Offset deltas 0 and 2: two records claiming three offsets.
                let gappy: Vec<Record> = [0, 2]
                    .into_iter()
                    .map(|d| Record {
                        offset_delta: d,
                        timestamp_delta: 0,
                        key: None,
                        value: None,
                        headers: vec![],
                    })
                    .collect();
                let mut gappy = encode_batch(&BatchSpec::default(), &gappy).to_vec();
                assert!(matches!(
                    log.append(&mut gappy, 5).await,
                    Err(LogError::Corrupt(_))
                ));

                assert_eq!(mem.bytes(SEGMENT), before);
                assert_eq!(log.log_end_offset(), 6);
            })
        }

        #[test]
        fn recovery_truncates_a_torn_tail_to_the_last_whole_batch() {
            run(async {
                let (mem, disk) = disk();
                let (mut log, _) = open(&disk, u64::MAX).await;
                three_batches(&mut log).await;
                let whole = mem.bytes(SEGMENT);
                let torn = stored_batch("d", 2, 6);
                mem.append(SEGMENT, &torn[..torn.len() / 2]).unwrap();
                drop(log);

                let (mut log, report) = open(&disk, u64::MAX).await;
                assert_eq!(report.truncated_bytes, (torn.len() / 2) as u64);
                assert_eq!((report.log_end_offset, report.batches), (6, 3));
                let reason = report.reason.unwrap();
                assert!(
                    reason.contains(&format!("at byte {}", whole.len())),
                    "{reason}"
                );
                assert!(reason.contains("truncated batch"), "{reason}");
                assert_eq!(mem.bytes(SEGMENT), whole);

                // No recovery-point checkpoint yet: what was recovered is not known durable.
                assert_eq!(log.unflushed_messages(), 6);
                let info = log.append(&mut producer_batch("d", 2), 6).await.unwrap();
                assert_eq!((info.first_offset, info.log_end_offset), (6, 8));
            })
        }

        #[test]
        fn recovery_truncates_at_garbage_a_corrupt_batch_or_an_offset_gap() {
            run(async {
                let (mem, disk) = disk();
                let (mut log, _) = open(&disk, u64::MAX).await;
                let written = three_batches(&mut log).await;
                drop(log);
                let first = written[0].len();

                // Garbage after the last batch.
                mem.append(SEGMENT, &[0xAB; 100]).unwrap();
                let (_, report) = open(&disk, u64::MAX).await;
                assert_eq!((report.truncated_bytes, report.log_end_offset), (100, 6));

                // A valid batch whose offsets do not follow.
                mem.append(SEGMENT, &stored_batch("z", 1, 42)).unwrap();
                let (_, report) = open(&disk, u64::MAX).await;
                assert_eq!(report.log_end_offset, 6);
                assert!(report
                    .reason
                    .unwrap()
                    .contains("base offset 42, expected 6"));

                // A flipped byte in the second batch: it and everything after it go.
                mem.with_file(SEGMENT, |f| f[first + 40] ^= 0x10).unwrap();
                let (log, report) = open(&disk, u64::MAX).await;
                assert_eq!(
                    report.truncated_bytes,
                    (written[1].len() + written[2].len()) as u64
                );
                assert_eq!((report.log_end_offset, report.batches), (2, 1));
                assert!(report.reason.as_ref().unwrap().contains("CRC-32C mismatch"));
                assert_eq!(log.size_in_bytes(), first as u64);

                let json = serde_json::to_string(&report).unwrap();
                assert_eq!(
                    serde_json::from_str::<RecoveryReport>(&json).unwrap(),
                    report
                );
            })
        }

        #[test]
        fn truncate_to_drops_whole_batches_at_and_above_the_offset() {
            run(async {
                let (mem, disk) = disk();
                let (mut log, _) = open(&disk, u64::MAX).await;
                let written = three_batches(&mut log).await;
                log.truncate_to(10).await.unwrap(); // above the log end: nothing to do
                assert_eq!(log.log_end_offset(), 6);
                log.truncate_to(3).await.unwrap(); // inside batch 2-3: it goes whole
                assert_eq!(log.log_end_offset(), 2);
                assert_eq!(mem.bytes(SEGMENT), written[0]);
                assert_eq!(values(&log.read_all_records().await.unwrap()).len(), 2);
                assert!(log.truncate_to(-1).await.is_err());

                let info = log.append(&mut producer_batch("e", 1), 7).await.unwrap();
                assert_eq!((info.first_offset, info.log_end_offset), (2, 3));
                let (_, report) = open(&disk, u64::MAX).await;
                assert_eq!((report.truncated_bytes, report.log_end_offset), (0, 3));
            })
        }

        #[test]
        fn flush_interval_counts_unflushed_messages() {
            run(async {
                let (mem, disk) = disk();
                let (mut log, _) = open(&disk, 1).await;
                three_batches(&mut log).await;
                assert_eq!(mem.fsyncs(SEGMENT), 3);
                assert_eq!((log.recovery_point(), log.unflushed_messages()), (6, 0));

                // 2 records a batch, interval 3: 4 unflushed after the 2nd and the 4th append.
                let (mem, disk) = self::disk();
                let (mut log, _) = open(&disk, 3).await;
                let mut fsyncs = Vec::new();
                for _ in 0..4 {
                    log.append(&mut producer_batch("f", 2), 1).await.unwrap();
                    fsyncs.push(mem.fsyncs(SEGMENT));
                }
                assert_eq!(fsyncs, vec![0, 1, 1, 2]);

                let (mem, disk) = self::disk();
                let (mut log, _) = open(&disk, LogConfig::default().flush_interval_messages).await;
                three_batches(&mut log).await;
                assert_eq!((mem.fsyncs(SEGMENT), log.unflushed_messages()), (0, 6));
                log.flush().await.unwrap();
                assert_eq!((mem.fsyncs(SEGMENT), log.unflushed_messages()), (1, 0));
            })
        }

        /// A run of the log on `samsa-sim`'s page-cache disk, crashed after `flushed` of the
        /// `total` appends were fsynced; returns the log end offset before and the report after.
        fn crash_after(seed: u64, total: usize, flushed: usize) -> (Vec<u8>, i64, RecoveryReport) {
            use crate::world::sim_disk::SimDiskBackend;
            use rand::SeedableRng;
            use samsa_sim::disk::{DiskConfig, SimDisk};

            let sim = Arc::new(Mutex::new(SimDisk::new(DiskConfig::default())));
            let disk = Disk::new(Arc::new(SimDiskBackend::new(
                sim.clone(),
                seed,
                Arc::new(|| 0),
            )));
            run(async {
                let (mut log, _) = open(&disk, u64::MAX).await;
                for i in 0..total {
                    // 2 records of 300 bytes: batches straddle the 512-byte sectors a crash tears.
                    let mut bytes = producer_batch(&"v".repeat(300), 2);
                    log.append(&mut bytes, 1).await.unwrap();
                    if i + 1 == flushed {
                        log.flush().await.unwrap();
                    }
                }
                let written = sim.lock().unwrap().read_at(SEGMENT, 0, usize::MAX).unwrap();
                let before = log.log_end_offset();
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                sim.lock().unwrap().crash(0, &mut rng);
                let (_, report) = open(&disk, u64::MAX).await;
                (written, before, report)
            })
        }

        #[test]
        fn a_machine_crash_loses_at_most_the_unflushed_batches() {
            let mut torn_seen = false;
            for seed in 0..40 {
                let (written, before, report) = crash_after(seed, 5, 3);
                assert_eq!(before, 10);
                // Whatever was fsynced survives; the rest is lost whole or cut at a batch.
                assert!(report.log_end_offset >= 6, "seed {seed}: {report:?}");
                assert_eq!(report.log_end_offset % 2, 0, "seed {seed}: {report:?}");
                torn_seen |= report.truncated_bytes > 0;
                let batch_len = (written.len() / 5) as u64;
                assert!(
                    report.truncated_bytes < batch_len,
                    "seed {seed}: {report:?}"
                );

                let (_, before, report) = crash_after(seed, 5, 5);
                assert_eq!((report.log_end_offset, report.truncated_bytes), (before, 0));
            }
            assert!(
                torn_seen,
                "no seed tore a batch: the test no longer tests recovery"
            );
        }

        #[test]
        fn a_follower_appends_the_leaders_batches_as_they_are() {
            run(async {
                let (_, leader_disk) = disk();
                let (mut leader, _) = open(&leader_disk, u64::MAX).await;
                three_batches(&mut leader).await;
                let fetched = leader.read(0, usize::MAX).await.unwrap().records;

                let (mem, disk) = disk();
                let (mut follower, _) = open(&disk, u64::MAX).await;
                let info = follower.append_as_follower(&fetched).await.unwrap();
                assert_eq!(
                    (info.first_offset, info.last_offset, info.log_end_offset),
                    (0, 5, 6)
                );
                assert_eq!(mem.bytes(SEGMENT), fetched.to_vec());

                let error = follower.append_as_follower(&fetched).await.unwrap_err();
                assert!(matches!(
                    error,
                    LogError::UnexpectedAppendOffset {
                        first_offset: 0,
                        log_end_offset: 6
                    }
                ));
                let info = follower.append_as_follower(&[]).await.unwrap();
                assert_eq!((info.first_offset, info.last_offset), (6, 5));
                let torn = &fetched[..fetched.len() - 1];
                follower.truncate_to(0).await.unwrap();
                assert!(matches!(
                    follower.append_as_follower(torn).await,
                    Err(LogError::Corrupt(_))
                ));
                assert_eq!(follower.log_end_offset(), 0);
            })
        }
    }
}
