//! `samsa dump-log`: prints a broker's files as Kafka's `kafka-dump-log.sh` does (the tool is
//! `DumpLogSegments`, once Scala in `kafka.tools`, now Java in `org.apache.kafka.tools`):
//! segments (`*.log`), offset indexes (`*.index`), time indexes (`*.timeindex`), and the
//! checkpoint files Kafka's tool does not read (`leader-epoch-checkpoint`, `*-checkpoint`).
//!
//! Line formats are Kafka's, field by field, so that a reader who knows the real tool's output
//! (or a script written for it) can read ours. Where Samsa differs, it says so next to the code:
//!
//! - Everything goes to one writer in order. Kafka prints its findings ("Mismatches in :",
//!   "Non-consecutive offsets in") to stderr after the last file; we print them right after the
//!   file they concern.
//! - A segment whose batch header is impossible (a record size below the minimum, a magic other
//!   than 2) stops the dump with an error, as Kafka's `CorruptRecordException` does; a torn tail
//!   is "Found N invalid bytes at the end of …" and a batch whose CRC fails is printed with
//!   `isvalid: false`, both as in Kafka, with success.
//! - An index whose size is not a whole number of entries is an error (Kafka's tool silently
//!   ignores the partial entry; only its sanity check refuses it).
//! - `--index-sanity-check` runs Kafka's sanity check *and* checks every entry against the
//!   segment; Kafka's flag runs the sanity check alone.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::storage::batch::{
    decode_records, parse_header, validate, BatchError, BatchHeader, TimestampType,
    BATCH_HEADER_LEN, LOG_OVERHEAD, MAGIC, NO_SEQUENCE,
};

/// What to print besides the batches and entries: Kafka's `--print-data-log` and
/// `--index-sanity-check`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpOptions {
    /// Print every record of every batch, with its key and payload as UTF-8 (implies Kafka's
    /// `--deep-iteration`).
    pub print_data_log: bool,
    /// For indexes, print no entries: run Kafka's sanity check and check each entry against the
    /// segment, then say "passed sanity check." or what failed.
    pub index_sanity_check: bool,
}

/// Why a dump stopped. Findings about a file's content (CRC failures, torn tails, index
/// mismatches) are not errors: they are printed, and the dump goes on.
#[derive(Debug)]
pub enum DumpError {
    /// The input cannot be read as what its name says: the path, and what is wrong.
    Input { path: PathBuf, what: String },
    /// Writing the dump failed (a closed pipe, a full disk).
    Output(io::Error),
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DumpError::Input { path, what } => write!(f, "{}: {what}", path.display()),
            DumpError::Output(e) => write!(f, "cannot write the dump: {e}"),
        }
    }
}

impl std::error::Error for DumpError {}

/// `?` on a write to `out`: the only `io::Error`s that reach it are the output's own.
impl From<io::Error> for DumpError {
    fn from(e: io::Error) -> Self {
        DumpError::Output(e)
    }
}

fn input_error(path: &Path, what: impl Into<String>) -> DumpError {
    DumpError::Input {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Kafka's `Records.HEADER_SIZE_UP_TO_MAGIC`: fewer bytes than this cannot even be framed.
const HEADER_SIZE_UP_TO_MAGIC: usize = 17;
/// batchLength of a v2 batch with no records: the smallest a batch header can declare.
const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
/// Kafka's `OffsetIndex` entry: relative offset i32, position i32.
const OFFSET_INDEX_ENTRY_LEN: usize = 8;
/// Kafka's `TimeIndex` entry: timestamp i64, relative offset i32.
const TIME_INDEX_ENTRY_LEN: usize = 12;
/// Kafka's `LeaderEpochCheckpointFile` and `OffsetCheckpointFile` are both version 0.
const CHECKPOINT_VERSION: i32 = 0;
/// Directories nest `disks/<node>/<partition>/`; anything far deeper is a link loop.
const MAX_DIRECTORY_DEPTH: usize = 32;

/// Dumps `path`: one file by the type its name says, or every file under a directory in name
/// order. An error names the file and what is wrong; nothing in any file makes this panic.
pub fn dump_path(path: &Path, opts: &DumpOptions, out: &mut impl Write) -> Result<(), DumpError> {
    let metadata = std::fs::metadata(path).map_err(|e| input_error(path, cannot_read(&e)))?;
    if metadata.is_dir() {
        dump_directory(path, opts, out, 0)
    } else {
        dump_file(path, opts, out, false)
    }
}

fn cannot_read(e: &io::Error) -> String {
    format!("cannot read: {e}")
}

fn dump_directory(
    dir: &Path,
    opts: &DumpOptions,
    out: &mut impl Write,
    depth: usize,
) -> Result<(), DumpError> {
    if depth > MAX_DIRECTORY_DEPTH {
        return Err(input_error(
            dir,
            format!("nested more than {MAX_DIRECTORY_DEPTH} directories deep"),
        ));
    }
    let mut entries = std::fs::read_dir(dir)
        .and_then(|entries| entries.collect::<io::Result<Vec<_>>>())
        .map_err(|e| input_error(dir, cannot_read(&e)))?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        // `DirEntry::file_type` does not follow links, so a link to a directory is not walked.
        let is_dir = entry
            .file_type()
            .map_err(|e| input_error(&path, cannot_read(&e)))?
            .is_dir();
        if is_dir {
            dump_directory(&path, opts, out, depth + 1)?;
        } else {
            dump_file(&path, opts, out, true)?;
        }
    }
    Ok(())
}

/// What a file's name says it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    Segment,
    OffsetIndex,
    TimeIndex,
    LeaderEpochCheckpoint,
    OffsetCheckpoint,
    /// A KRaft snapshot, `<end offset>-<epoch>.checkpoint` (KIP-630): record batches.
    Snapshot,
}

fn file_kind(path: &Path) -> Option<FileKind> {
    let name = path.file_name()?.to_str()?;
    if name == "leader-epoch-checkpoint" {
        return Some(FileKind::LeaderEpochCheckpoint);
    }
    if name.ends_with("-checkpoint") {
        return Some(FileKind::OffsetCheckpoint);
    }
    // As Kafka, the suffix after the last dot: `….log.deleted` is not a segment.
    match path.extension()?.to_str()? {
        "log" => Some(FileKind::Segment),
        "index" => Some(FileKind::OffsetIndex),
        "timeindex" => Some(FileKind::TimeIndex),
        "checkpoint" => Some(FileKind::Snapshot),
        _ => None,
    }
}

/// Dumps one file. Inside a directory an unknown file is skipped with Kafka's "Ignoring unknown
/// file"; named on its own, it is an error.
fn dump_file(
    path: &Path,
    opts: &DumpOptions,
    out: &mut impl Write,
    in_directory: bool,
) -> Result<(), DumpError> {
    let Some(kind) = file_kind(path) else {
        if in_directory {
            writeln!(out, "Dumping {}", path.display())?;
            writeln!(out, "Ignoring unknown file {}", path.display())?;
            return Ok(());
        }
        return Err(input_error(
            path,
            "unknown file type: expected a segment (*.log), an offset index (*.index), a time \
             index (*.timeindex), a leader-epoch-checkpoint, an offset checkpoint (*-checkpoint) \
             or a KRaft snapshot (*.checkpoint)",
        ));
    };
    let base_offset = match kind {
        FileKind::Segment | FileKind::OffsetIndex | FileKind::TimeIndex => base_offset_of(path)?,
        FileKind::LeaderEpochCheckpoint | FileKind::OffsetCheckpoint => 0,
        FileKind::Snapshot => {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if crate::raft::snapshot::parse_file_name(name).is_none() {
                return Err(input_error(
                    path,
                    "a snapshot is named <end offset, 20 digits>-<epoch, 10 digits>.checkpoint",
                ));
            }
            0
        }
    };
    let bytes = std::fs::read(path).map_err(|e| input_error(path, cannot_read(&e)))?;
    writeln!(out, "Dumping {}", path.display())?;
    match kind {
        FileKind::Segment => dump_segment(path, base_offset, &bytes, opts, out),
        FileKind::OffsetIndex => dump_offset_index(path, base_offset, &bytes, opts, out),
        FileKind::TimeIndex => dump_time_index(path, base_offset, &bytes, opts, out),
        FileKind::LeaderEpochCheckpoint => dump_leader_epochs(path, &bytes, out),
        FileKind::OffsetCheckpoint => dump_offsets(path, &bytes, out),
        FileKind::Snapshot => dump_snapshot(path, &bytes, opts, out),
    }
}

/// A KRaft snapshot, as Kafka's `dumpLog` prints one: its id from the name (no "Log starting
/// offset" line), then its batches (offsets count from 0 within the file; the header and footer
/// are control records).
fn dump_snapshot(
    path: &Path,
    bytes: &[u8],
    opts: &DumpOptions,
    out: &mut impl Write,
) -> Result<(), DumpError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let (id, _) = crate::raft::snapshot::parse_file_name(name).expect("checked by dump_file");
    writeln!(
        out,
        "Snapshot end offset: {}, epoch: {}",
        id.end_offset, id.epoch
    )?;
    dump_batches(path, 0, bytes, opts, out)
}

/// A segment and its indexes are named by the segment's base offset (Kafka's
/// `LogFileUtils.offsetFromFileName`: the name up to the first dot).
fn base_offset_of(path: &Path) -> Result<i64, DumpError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = name.split('.').next().unwrap_or("");
    match stem.parse::<i64>() {
        Ok(offset) if offset >= 0 && stem.bytes().all(|b| b.is_ascii_digit()) => Ok(offset),
        _ => Err(input_error(
            path,
            format!(
                "the file name does not start with a base offset ({stem:?}; Kafka names \
                 segment files by 20 digits, as 00000000000000000000.log)"
            ),
        )),
    }
}

/// As Kafka's `File.getAbsolutePath`, for the finding headers that print it.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

// ---------------------------------------------------------------------------------------------
// Segments.

/// What the bytes at a position of a segment are, framed as Kafka's `FileLogInputStream`
/// frames them: only the size and magic are read before deciding.
enum Frame {
    End,
    /// Fewer bytes remain than the header up to the magic, or than the batch declares: a torn
    /// write (Kafka's iterator ends there, and recovery truncates there).
    Torn,
    /// A header no writer produces; Kafka throws `CorruptRecordException` here.
    Impossible(String),
    Batch(BatchHeader),
}

fn frame_at(bytes: &[u8], position: usize) -> Frame {
    let rest = &bytes[position..];
    if rest.is_empty() {
        return Frame::End;
    }
    if rest.len() < HEADER_SIZE_UP_TO_MAGIC {
        return Frame::Torn;
    }
    let size = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
    if size < MIN_BATCH_LENGTH {
        return Frame::Impossible(format!(
            "found record size {size} smaller than minimum record overhead ({MIN_BATCH_LENGTH}) \
             in the batch at position {position}"
        ));
    }
    if rest.len() < LOG_OVERHEAD + size as usize {
        return Frame::Torn;
    }
    let magic = rest[16] as i8;
    if magic != MAGIC {
        return Frame::Impossible(format!(
            "invalid magic {magic} in the batch at position {position} (Samsa reads only \
             magic {MAGIC}, record batch format v2)"
        ));
    }
    match parse_header(rest) {
        Ok(header) => Frame::Batch(header),
        Err(e) => Frame::Impossible(format!("the batch at position {position}: {e}")),
    }
}

/// The walk over a segment's whole batches, shared by the segment dump and the index checks.
fn framed_batches(bytes: &[u8]) -> Vec<(usize, BatchHeader)> {
    let mut found = Vec::new();
    let mut position = 0;
    while let Frame::Batch(header) = frame_at(bytes, position) {
        found.push((position, header));
        position += header.size_in_bytes();
    }
    found
}

/// Record offsets seen so far, for Kafka's "Non-consecutive offsets" finding.
struct OffsetGaps {
    last_offset: i64,
    gaps: Vec<(i64, i64)>,
}

impl OffsetGaps {
    fn see(&mut self, offset: i64) {
        if offset != self.last_offset.wrapping_add(1) {
            self.gaps.push((self.last_offset, offset));
        }
        self.last_offset = offset;
    }
}

fn dump_segment(
    path: &Path,
    base_offset: i64,
    bytes: &[u8],
    opts: &DumpOptions,
    out: &mut impl Write,
) -> Result<(), DumpError> {
    writeln!(out, "Log starting offset: {base_offset}")?;
    dump_batches(path, base_offset, bytes, opts, out)
}

/// The batches of a segment or a snapshot, as Kafka's `dumpLog` prints them.
fn dump_batches(
    path: &Path,
    base_offset: i64,
    bytes: &[u8],
    opts: &DumpOptions,
    out: &mut impl Write,
) -> Result<(), DumpError> {
    // Kafka starts from -1, so every segment but the first reports "-1 is followed by <base>";
    // we start from the segment's own base offset.
    let mut gaps = OffsetGaps {
        last_offset: base_offset.wrapping_sub(1),
        gaps: Vec::new(),
    };
    let mut position = 0;
    loop {
        match frame_at(bytes, position) {
            Frame::End => break,
            Frame::Torn => {
                let invalid = bytes.len() - position;
                let name = file_name(path);
                writeln!(out, "Found {invalid} invalid bytes at the end of {name}")?;
                break;
            }
            Frame::Impossible(what) => return Err(input_error(path, what)),
            Frame::Batch(header) => {
                let batch = &bytes[position..position + header.size_in_bytes()];
                let check = validate(batch);
                print_batch(out, &header, position, check.is_ok())?;
                if opts.print_data_log {
                    print_records(out, batch, &header, check.err(), &mut gaps)?;
                }
                position += batch.len();
            }
        }
    }
    if !gaps.gaps.is_empty() {
        writeln!(
            out,
            "Non-consecutive offsets in {}",
            absolute(path).display()
        )?;
        for (before, after) in &gaps.gaps {
            writeln!(out, "  {before} is followed by {after}")?;
        }
    }
    Ok(())
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap from i32::MAX to 0. Java's int
/// arithmetic wraps, so ours does too, whatever the header says.
fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX.wrapping_sub(increment) {
        increment
            .wrapping_sub(i32::MAX.wrapping_sub(sequence))
            .wrapping_sub(1)
    } else {
        sequence.wrapping_add(increment)
    }
}

fn sequence_at(base_sequence: i32, delta: i32) -> i32 {
    if base_sequence == NO_SEQUENCE {
        NO_SEQUENCE
    } else {
        increment_sequence(base_sequence, delta)
    }
}

/// Kafka's `TimestampType.name`.
fn timestamp_type_name(header: &BatchHeader) -> &'static str {
    match header.timestamp_type() {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    }
}

/// Kafka's `CompressionType.name`; Kafka's tool throws on an unknown codec id, we print it.
fn compression_name(header: &BatchHeader) -> String {
    match header.compression() {
        Ok(codec) => codec.name().to_string(),
        Err(_) => format!("unknown({})", header.attributes & 0x07),
    }
}

/// Kafka's batch line (`printBatchLevel`). `deleteHorizonMs` is printed as Java prints an
/// `OptionalLong`. `isvalid` is Samsa's `validate` (the CRC-32C and the v2 sanity checks);
/// Kafka's is the CRC alone, and the two agree on every batch a writer produces.
fn print_batch(
    out: &mut impl Write,
    header: &BatchHeader,
    position: usize,
    valid: bool,
) -> io::Result<()> {
    let last_offset = header
        .base_offset
        .wrapping_add(i64::from(header.last_offset_delta));
    let delete_horizon = if header.has_delete_horizon() {
        format!("OptionalLong[{}]", header.base_timestamp)
    } else {
        "OptionalLong.empty".to_string()
    };
    writeln!(
        out,
        "baseOffset: {} lastOffset: {last_offset} count: {} baseSequence: {} lastSequence: {} \
         producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} \
         isControl: {} deleteHorizonMs: {delete_horizon} position: {position} {}: {} size: {} \
         magic: {} compresscodec: {} crc: {} isvalid: {valid}",
        header.base_offset,
        header.records_count,
        header.base_sequence,
        sequence_at(header.base_sequence, header.last_offset_delta),
        header.producer_id,
        header.producer_epoch,
        header.partition_leader_epoch,
        header.is_transactional(),
        header.is_control(),
        timestamp_type_name(header),
        header.max_timestamp,
        header.size_in_bytes(),
        header.magic,
        compression_name(header),
        header.crc,
    )
}

/// Whether `base_offset + delta` fits an i64 for every i32 delta. The base offset is not
/// covered by the CRC, so a corrupt one must not reach offset arithmetic that assumes it sane.
fn base_offset_in_range(base_offset: i64) -> bool {
    base_offset.checked_add(i64::from(i32::MAX)).is_some()
        && base_offset.checked_add(i64::from(i32::MIN)).is_some()
}

/// Kafka's record lines (`dumpBatchRecords`), or one line saying why they cannot be shown:
/// Kafka iterates a batch whose CRC failed anyway, printing whatever it decodes or throwing.
fn print_records(
    out: &mut impl Write,
    batch: &[u8],
    header: &BatchHeader,
    invalid: Option<BatchError>,
    gaps: &mut OffsetGaps,
) -> io::Result<()> {
    let decoded = match invalid {
        Some(e) => Err(e.to_string()),
        None if !base_offset_in_range(header.base_offset) => {
            Err(format!("base offset {} out of range", header.base_offset))
        }
        None => decode_records(batch).map_err(|e| e.to_string()),
    };
    let records = match decoded {
        Ok((_, records)) => records,
        Err(why) => return writeln!(out, "| records not decoded: {why}"),
    };
    for record in &records {
        gaps.see(record.offset);
        // In range: the record's offset is base_offset plus its i32 delta.
        let delta = (record.offset - header.base_offset) as i32;
        let header_keys: Vec<&str> = record.headers.iter().map(|(k, _)| k.as_str()).collect();
        write!(
            out,
            "| offset: {} {}: {} keySize: {} valueSize: {} sequence: {} headerKeys: [{}]",
            record.offset,
            timestamp_type_name(header),
            record.timestamp,
            record.key.as_ref().map_or(-1, |k| k.len() as i64),
            record.value.as_ref().map_or(-1, |v| v.len() as i64),
            sequence_at(header.base_sequence, delta),
            header_keys.join(","),
        )?;
        if header.is_control() {
            write!(
                out,
                " {}",
                describe_control(record.key.as_deref(), record.value.as_deref())
            )?;
        } else {
            // Kafka's default `StringDecoder`: UTF-8, malformed bytes replaced.
            if let Some(key) = &record.key {
                write!(out, " key: {}", String::from_utf8_lossy(key))?;
            }
            if let Some(value) = &record.value {
                write!(out, " payload: {}", String::from_utf8_lossy(value))?;
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Kafka's `ControlRecordType` ids, in the control record's key (version i16, type i16).
fn control_type_name(id: i16) -> &'static str {
    match id {
        0 => "ABORT",
        1 => "COMMIT",
        2 => "LEADER_CHANGE",
        3 => "SNAPSHOT_HEADER",
        4 => "SNAPSHOT_FOOTER",
        5 => "KRAFT_VERSION",
        6 => "KRAFT_VOTERS",
        _ => "UNKNOWN",
    }
}

/// A transaction marker as Kafka prints it (`endTxnMarker: COMMIT coordinatorEpoch: 3`; the
/// value is version i16, coordinatorEpoch i32), a snapshot's header and footer as Kafka's JSON;
/// other control records by type only, where Kafka prints the KRaft records as JSON.
fn describe_control(key: Option<&[u8]>, value: Option<&[u8]>) -> String {
    let id = match key {
        Some(k) if k.len() >= 4 => i16::from_be_bytes([k[2], k[3]]),
        _ => -1,
    };
    let name = control_type_name(id);
    match value {
        Some(v) if (id == 0 || id == 1) && v.len() >= 6 => {
            let epoch = i32::from_be_bytes([v[2], v[3], v[4], v[5]]);
            format!("endTxnMarker: {name} coordinatorEpoch: {epoch}")
        }
        // SnapshotHeaderRecord: Version int16, LastContainedLogTimestamp int64.
        Some(v) if id == 3 && v.len() >= 10 => {
            let version = i16::from_be_bytes([v[0], v[1]]);
            let ms = i64::from_be_bytes(v[2..10].try_into().expect("8 bytes"));
            format!("SnapshotHeader {{\"version\":{version},\"lastContainedLogTimestamp\":{ms}}}")
        }
        // SnapshotFooterRecord: Version int16.
        Some(v) if id == 4 && v.len() >= 2 => {
            let version = i16::from_be_bytes([v[0], v[1]]);
            format!("SnapshotFooter {{\"version\":{version}}}")
        }
        _ => format!("controlType: {name}({id})"),
    }
}

// ---------------------------------------------------------------------------------------------
// Offset and time indexes.

/// The segment an index belongs to: its sibling with the same base offset.
fn sibling_segment(path: &Path, base_offset: i64) -> PathBuf {
    path.with_file_name(format!("{base_offset:020}.log"))
}

/// The sibling segment's bytes, if it can be read. Kafka's tool fails without it; we check
/// against it when it is there and, for `--index-sanity-check`, require it.
fn read_sibling(
    path: &Path,
    base_offset: i64,
    opts: &DumpOptions,
) -> Result<Option<Vec<u8>>, DumpError> {
    let log = sibling_segment(path, base_offset);
    match std::fs::read(&log) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(_) if !opts.index_sanity_check => Ok(None),
        Err(e) => Err(input_error(
            path,
            format!(
                "cannot check the index against its segment {}: {e}",
                log.display()
            ),
        )),
    }
}

/// Index files are whole entries; Kafka's sanity check words the refusal this way.
fn check_whole_entries(path: &Path, bytes: &[u8], entry_len: usize) -> Result<(), DumpError> {
    if bytes.len().is_multiple_of(entry_len) {
        return Ok(());
    }
    Err(input_error(
        path,
        format!(
            "found {} bytes which is neither positive nor a multiple of {entry_len} (a truncated \
             index entry)",
            bytes.len()
        ),
    ))
}

/// Kafka's tool stops at the first entry after the first whose offset is the base offset: the
/// zeros of a preallocated index file that a crash left behind.
fn live_prefix<T>(entries: &[T], relative_offset: impl Fn(&T) -> i32) -> &[T] {
    let end = entries
        .iter()
        .enumerate()
        .position(|(i, e)| i > 0 && relative_offset(e) == 0)
        .unwrap_or(entries.len());
    &entries[..end]
}

/// One offset index entry, with the absolute offset.
struct IndexEntry {
    relative_offset: i32,
    offset: i64,
    position: i32,
}

fn dump_offset_index(
    path: &Path,
    base_offset: i64,
    bytes: &[u8],
    opts: &DumpOptions,
    out: &mut impl Write,
) -> Result<(), DumpError> {
    check_whole_entries(path, bytes, OFFSET_INDEX_ENTRY_LEN)?;
    let entries: Vec<IndexEntry> = bytes
        .chunks_exact(OFFSET_INDEX_ENTRY_LEN)
        .map(|e| {
            let relative_offset = i32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            IndexEntry {
                relative_offset,
                offset: base_offset.wrapping_add(i64::from(relative_offset)),
                position: i32::from_be_bytes([e[4], e[5], e[6], e[7]]),
            }
        })
        .collect();
    if entries.is_empty() {
        writeln!(out, "{} is empty.", path.display())?;
        return Ok(());
    }
    let entries = live_prefix(&entries, |e| e.relative_offset);
    let log = read_sibling(path, base_offset, opts)?;
    let mismatches = log.as_deref().map(|log| index_mismatches(entries, log));
    if opts.index_sanity_check {
        let mut failures = offset_index_sanity(path, base_offset, entries);
        failures.extend(mismatch_lines(path, &mismatches.unwrap_or_default()));
        return print_sanity(out, path, &failures);
    }
    for entry in entries {
        writeln!(out, "offset: {} position: {}", entry.offset, entry.position)?;
    }
    for line in mismatch_lines(path, &mismatches.unwrap_or_default()) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Each entry must point at the start of a batch that holds its offset. Kafka's index entry
/// holds the batch's last offset and Kafka's tool compares with that alone; we accept any offset
/// of the batch, and report (as Kafka) the batch's last offset, or -1 where no batch starts.
fn index_mismatches(entries: &[IndexEntry], log: &[u8]) -> BTreeMap<i64, i64> {
    let batches: BTreeMap<usize, (i64, i64)> = framed_batches(log)
        .into_iter()
        .map(|(position, h)| {
            let last = h.base_offset.wrapping_add(i64::from(h.last_offset_delta));
            (position, (h.base_offset, last))
        })
        .collect();
    let mut mismatches = BTreeMap::new();
    for entry in entries {
        let batch = usize::try_from(entry.position)
            .ok()
            .and_then(|p| batches.get(&p));
        match batch {
            Some(&(base, last)) if (base..=last).contains(&entry.offset) => {}
            Some(&(_, last)) => {
                mismatches.insert(entry.offset, last);
            }
            None => {
                mismatches.insert(entry.offset, -1);
            }
        }
    }
    mismatches
}

/// Kafka's "Mismatches in :" block, largest index offset first as Kafka orders it.
fn mismatch_lines(path: &Path, mismatches: &BTreeMap<i64, i64>) -> Vec<String> {
    if mismatches.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![format!("Mismatches in :{}", absolute(path).display())];
    for (index_offset, log_offset) in mismatches.iter().rev() {
        lines.push(format!(
            "  Index offset: {index_offset}, log offset: {log_offset}"
        ));
    }
    lines
}

/// Kafka's `OffsetIndex.sanityCheck` (the last offset not below the base offset), plus what
/// `OffsetIndex.append` enforces on the write side: offsets and positions strictly increase.
fn offset_index_sanity(path: &Path, base_offset: i64, entries: &[IndexEntry]) -> Vec<String> {
    let file = absolute(path);
    let mut failures = Vec::new();
    if let Some(last) = entries.last() {
        if last.offset < base_offset {
            failures.push(format!(
                "Corrupt index found, index file ({}) has non-zero size but the last offset is \
                 {} which is less than the base offset {base_offset}.",
                file.display(),
                last.offset
            ));
        }
    }
    for (i, pair) in entries.windows(2).enumerate() {
        let (before, after) = (&pair[0], &pair[1]);
        if after.offset <= before.offset || after.position <= before.position {
            failures.push(format!(
                "Corrupt index found, index file ({}) has entry {} (offset: {} position: {}) \
                 not above entry {i} (offset: {} position: {}).",
                file.display(),
                i + 1,
                after.offset,
                after.position,
                before.offset,
                before.position
            ));
        }
    }
    failures
}

fn print_sanity(out: &mut impl Write, path: &Path, failures: &[String]) -> Result<(), DumpError> {
    if failures.is_empty() {
        writeln!(out, "{} passed sanity check.", path.display())?;
    }
    for line in failures {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// One time index entry, with the absolute offset.
struct TimeEntry {
    timestamp: i64,
    relative_offset: i32,
    offset: i64,
}

fn dump_time_index(
    path: &Path,
    base_offset: i64,
    bytes: &[u8],
    opts: &DumpOptions,
    out: &mut impl Write,
) -> Result<(), DumpError> {
    check_whole_entries(path, bytes, TIME_INDEX_ENTRY_LEN)?;
    let entries: Vec<TimeEntry> = bytes
        .chunks_exact(TIME_INDEX_ENTRY_LEN)
        .map(|e| {
            let timestamp = i64::from_be_bytes(e[..8].try_into().expect("8 of 12 bytes"));
            let relative_offset = i32::from_be_bytes([e[8], e[9], e[10], e[11]]);
            TimeEntry {
                timestamp,
                relative_offset,
                offset: base_offset.wrapping_add(i64::from(relative_offset)),
            }
        })
        .collect();
    if entries.is_empty() {
        writeln!(out, "{} is empty.", path.display())?;
        return Ok(());
    }
    let entries = live_prefix(&entries, |e| e.relative_offset);
    let log = read_sibling(path, base_offset, opts)?;
    let findings = log
        .as_deref()
        .map(|log| time_index_findings(path, entries, log))
        .unwrap_or_default();
    if opts.index_sanity_check {
        let mut failures = time_index_sanity(path, base_offset, entries);
        failures.extend(findings);
        return print_sanity(out, path, &failures);
    }
    for entry in entries {
        writeln!(
            out,
            "timestamp: {} offset: {}",
            entry.timestamp, entry.offset
        )?;
    }
    for line in findings {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Kafka's `TimeIndex.sanityCheck`, plus `TimeIndex.maybeAppend`'s refusal of an offset below
/// the previous entry's.
fn time_index_sanity(path: &Path, base_offset: i64, entries: &[TimeEntry]) -> Vec<String> {
    let file = absolute(path);
    let mut failures = Vec::new();
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return failures;
    };
    if last.timestamp < first.timestamp {
        failures.push(format!(
            "Corrupt time index found, time index file ({}) has non-zero size but the last \
             timestamp is {} which is less than the first timestamp {}",
            file.display(),
            last.timestamp,
            first.timestamp
        ));
    }
    if last.offset < base_offset {
        failures.push(format!(
            "Corrupt time index found, time index file ({}) has non-zero size but the last \
             offset is {} which is less than the first offset {base_offset}",
            file.display(),
            last.offset
        ));
    }
    for (i, pair) in entries.windows(2).enumerate() {
        if pair[1].offset < pair[0].offset {
            failures.push(format!(
                "Corrupt time index found, time index file ({}) has entry {} (offset: {}) \
                 below entry {i} (offset: {}).",
                file.display(),
                i + 1,
                pair[1].offset,
                pair[0].offset
            ));
        }
    }
    failures
}

/// Kafka's three time index findings against the segment: each entry's offset must be in a
/// batch (Kafka: be a batch's last offset), its timestamp that batch's max timestamp, and the
/// timestamps must increase. Kafka takes the max over the batch's records; we take the header's
/// maxTimestamp, which is that maximum in every batch a writer produces.
fn time_index_findings(path: &Path, entries: &[TimeEntry], log: &[u8]) -> Vec<String> {
    let batches = framed_batches(log);
    let (mut mismatched, mut out_of_order, mut not_found) = (Vec::new(), Vec::new(), Vec::new());
    let mut previous_timestamp = -1; // Kafka's RecordBatch.NO_TIMESTAMP
    for entry in entries {
        let batch = batches
            .iter()
            .map(|(_, h)| h)
            .find(|h| h.base_offset.wrapping_add(i64::from(h.last_offset_delta)) >= entry.offset);
        match batch {
            None => not_found.push((entry.offset, -1)),
            Some(h) if h.base_offset > entry.offset => not_found.push((
                entry.offset,
                h.base_offset.wrapping_add(i64::from(h.last_offset_delta)),
            )),
            Some(h) => {
                if h.max_timestamp != entry.timestamp {
                    mismatched.push((entry.timestamp, h.max_timestamp));
                }
                if previous_timestamp >= entry.timestamp {
                    out_of_order.push((entry.timestamp, previous_timestamp));
                }
            }
        }
        previous_timestamp = entry.timestamp;
    }
    time_index_finding_lines(path, &mismatched, &out_of_order, &not_found)
}

fn time_index_finding_lines(
    path: &Path,
    mismatched: &[(i64, i64)],
    out_of_order: &[(i64, i64)],
    not_found: &[(i64, i64)],
) -> Vec<String> {
    let file = absolute(path);
    let mut lines = Vec::new();
    if !mismatched.is_empty() {
        lines.push(format!("Found timestamp mismatch in :{}", file.display()));
        for (index, log) in mismatched {
            lines.push(format!("  Index timestamp: {index}, log timestamp: {log}"));
        }
    }
    if !out_of_order.is_empty() {
        lines.push(format!(
            "Found out of order timestamp in :{}",
            file.display()
        ));
        for (index, previous) in out_of_order {
            lines.push(format!(
                "  Index timestamp: {index}, Previously indexed timestamp: {previous}"
            ));
        }
    }
    if !not_found.is_empty() {
        lines.push("The following indexed offsets are not found in the log.".to_string());
        for (index, log) in not_found {
            lines.push(format!("Indexed offset: {index}, found log offset: {log}"));
        }
    }
    lines
}

// ---------------------------------------------------------------------------------------------
// Checkpoint files: Kafka's `CheckpointFile` text format, read as its `CheckpointReadBuffer`
// reads it. Kafka's tool does not dump these; the lines are ours, in the tool's `name: value`
// style.

/// A checkpoint file's entry lines, numbered from 1 as in the file.
struct Checkpoint<'a> {
    version: i32,
    entries: Vec<(usize, &'a str)>,
}

/// Checks the version and the count of a checkpoint; `None` for an empty file (Kafka reads it as
/// no entries).
fn checkpoint_lines<'a>(path: &Path, bytes: &'a [u8]) -> Result<Option<Checkpoint<'a>>, DumpError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| input_error(path, format!("not a checkpoint file: not UTF-8 text ({e})")))?;
    let mut lines = text.lines().enumerate().map(|(i, line)| (i + 1, line));
    let Some((n, version_line)) = lines.next() else {
        return Ok(None);
    };
    let version: i32 = version_line
        .parse()
        .map_err(|_| malformed(path, n, version_line))?;
    if version != CHECKPOINT_VERSION {
        return Err(input_error(
            path,
            format!(
                "unrecognized version {version} of the checkpoint file (expected \
                 {CHECKPOINT_VERSION})"
            ),
        ));
    }
    let Some((n, count_line)) = lines.next() else {
        return Ok(None);
    };
    let expected: usize = count_line
        .parse()
        .map_err(|_| malformed(path, n, count_line))?;
    let entries: Vec<(usize, &str)> = lines.collect();
    if entries.len() != expected {
        return Err(input_error(
            path,
            format!(
                "expected {expected} entries in the checkpoint file, but found {}",
                entries.len()
            ),
        ));
    }
    Ok(Some(Checkpoint { version, entries }))
}

/// Kafka's "Malformed line in checkpoint file", with the line number.
fn malformed(path: &Path, line_number: usize, line: &str) -> DumpError {
    input_error(
        path,
        format!("malformed line {line_number} in checkpoint file: '{line}'"),
    )
}

/// Prints a checkpoint whose entries `describe` turns into lines, or refuses the first entry it
/// cannot read. Fields are separated by whitespace, as Kafka's formatters split them.
fn dump_checkpoint(
    path: &Path,
    bytes: &[u8],
    out: &mut impl Write,
    describe: impl Fn(&[&str]) -> Option<String>,
) -> Result<(), DumpError> {
    let Some(checkpoint) = checkpoint_lines(path, bytes)? else {
        writeln!(out, "{} is empty.", path.display())?;
        return Ok(());
    };
    let mut described = Vec::with_capacity(checkpoint.entries.len());
    for (n, line) in &checkpoint.entries {
        let fields: Vec<&str> = line.split_whitespace().collect();
        described.push(describe(&fields).ok_or_else(|| malformed(path, *n, line))?);
    }
    writeln!(
        out,
        "version: {} entries: {}",
        checkpoint.version,
        described.len()
    )?;
    for line in described {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Kafka's `LeaderEpochCheckpointFile`: `epoch startOffset` per line.
fn dump_leader_epochs(path: &Path, bytes: &[u8], out: &mut impl Write) -> Result<(), DumpError> {
    dump_checkpoint(path, bytes, out, |fields| match fields {
        [epoch, start_offset] => {
            let epoch: i32 = epoch.parse().ok()?;
            let start_offset: i64 = start_offset.parse().ok()?;
            Some(format!("epoch: {epoch} startOffset: {start_offset}"))
        }
        _ => None,
    })
}

/// Kafka's `OffsetCheckpointFile` (replication-offset, recovery-point-offset,
/// log-start-offset, cleaner-offset): `topic partition offset` per line.
fn dump_offsets(path: &Path, bytes: &[u8], out: &mut impl Write) -> Result<(), DumpError> {
    dump_checkpoint(path, bytes, out, |fields| match fields {
        [topic, partition, offset] => {
            let partition: i32 = partition.parse().ok()?;
            let offset: i64 = offset.parse().ok()?;
            Some(format!(
                "topic: {topic} partition: {partition} offset: {offset}"
            ))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_wrap_as_kafka_increment_sequence() {
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(sequence_at(NO_SEQUENCE, 7), NO_SEQUENCE);
        // A garbage delta wraps, never overflows.
        let _ = increment_sequence(i32::MIN, i32::MIN);
        let _ = increment_sequence(i32::MAX, i32::MAX);
    }

    #[test]
    fn file_kinds_by_name() {
        let kind = |name: &str| file_kind(Path::new(name));
        assert_eq!(kind("00000000000000000000.log"), Some(FileKind::Segment));
        assert_eq!(
            kind("00000000000000000007.index"),
            Some(FileKind::OffsetIndex)
        );
        assert_eq!(
            kind("00000000000000000007.timeindex"),
            Some(FileKind::TimeIndex)
        );
        assert_eq!(
            kind("leader-epoch-checkpoint"),
            Some(FileKind::LeaderEpochCheckpoint)
        );
        assert_eq!(
            kind("replication-offset-checkpoint"),
            Some(FileKind::OffsetCheckpoint)
        );
        assert_eq!(kind("00000000000000000000.log.deleted"), None);
        assert_eq!(kind("partition.metadata"), None);
    }

    #[test]
    fn control_records_are_described_as_kafka() {
        let commit_key = [0u8, 0, 0, 1];
        let value = [0u8, 0, 0, 0, 0, 3];
        assert_eq!(
            describe_control(Some(&commit_key), Some(&value)),
            "endTxnMarker: COMMIT coordinatorEpoch: 3"
        );
        assert_eq!(
            describe_control(Some(&[0, 0, 0, 2]), None),
            "controlType: LEADER_CHANGE(2)"
        );
        assert_eq!(describe_control(None, None), "controlType: UNKNOWN(-1)");
    }
}
