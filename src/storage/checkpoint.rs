//! Kafka's checkpoint files (`CheckpointFile`): small text files, a version line, a count line,
//! then one entry a line.
//!
//! ```text
//! 0
//! 2
//! orders 0 1234
//! orders 1 987
//! ```
//!
//! `OffsetCheckpointFile` entries are `<topic> <partition> <offset>`. Three of them sit at the
//! root of a log directory: `recovery-point-offset-checkpoint` (each log's recovery point: below
//! it, everything is fsynced and recovery trusts the segments), `replication-offset-checkpoint`
//! (each partition's high watermark) and `log-start-offset-checkpoint`. The partition's
//! `leader-epoch-checkpoint` has the same frame with `<epoch> <startOffset>` entries (see
//! `leader_epoch`).
//!
//! Writes are atomic as Kafka's: the whole file goes to a temporary file, which is fsynced and
//! renamed over the old one (`Utils.atomicMoveWithFallback`), so a crash leaves the old or the
//! new content, never a mix.

use std::collections::BTreeMap;
use std::fmt;
use std::io;

use crate::world::Disk;

pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// The only version Kafka writes for these files.
pub const VERSION: i32 = 0;

/// A checkpoint file that cannot be read (Kafka throws an `IOException` "Malformed line in
/// checkpoint file" or "Expected N entries").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointError(pub String);

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unreadable checkpoint: {}", self.0)
    }
}

impl std::error::Error for CheckpointError {}

/// The entry lines of a checkpoint, after checking its version and count. An empty file has
/// no entries, as Kafka reads it.
pub fn parse_entries(text: &str) -> Result<Vec<&str>, CheckpointError> {
    let mut lines = text.lines();
    let Some(version) = lines.next() else {
        return Ok(Vec::new());
    };
    if version.trim().parse::<i32>() != Ok(VERSION) {
        return Err(CheckpointError(format!("unrecognised version {version:?}")));
    }
    let Some(count) = lines.next() else {
        return Ok(Vec::new());
    };
    let count: usize = count
        .trim()
        .parse()
        .map_err(|_| CheckpointError(format!("malformed count line {count:?}")))?;
    let entries: Vec<&str> = lines.collect();
    if entries.len() != count {
        return Err(CheckpointError(format!(
            "expected {count} entries, found {}",
            entries.len()
        )));
    }
    Ok(entries)
}

/// A checkpoint's text: version, count, entries, each line ending in a newline.
pub fn format_entries(entries: &[String]) -> String {
    let mut text = format!("{VERSION}\n{}\n", entries.len());
    for entry in entries {
        text.push_str(entry);
        text.push('\n');
    }
    text
}

/// The space-separated fields of an entry line, exactly `n` of them.
pub fn fields(line: &str, n: usize) -> Result<Vec<&str>, CheckpointError> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() != n {
        return Err(CheckpointError(format!("malformed line {line:?}")));
    }
    Ok(fields)
}

fn number<T: std::str::FromStr>(field: &str, line: &str) -> Result<T, CheckpointError> {
    field
        .parse()
        .map_err(|_| CheckpointError(format!("malformed line {line:?}")))
}

/// Kafka's `OffsetCheckpointFile`: an offset per topic partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetCheckpoint {
    entries: BTreeMap<(String, i32), i64>,
}

impl OffsetCheckpoint {
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let mut checkpoint = OffsetCheckpoint::default();
        for line in parse_entries(text)? {
            let f = fields(line, 3)?;
            let (partition, offset) = (number(f[1], line)?, number(f[2], line)?);
            checkpoint
                .entries
                .insert((f[0].to_owned(), partition), offset);
        }
        Ok(checkpoint)
    }

    pub fn to_text(&self) -> String {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|((topic, partition), offset)| format!("{topic} {partition} {offset}"))
            .collect();
        format_entries(&lines)
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.entries.get(&(topic.to_owned(), partition)).copied()
    }

    pub fn insert(&mut self, topic: &str, partition: i32, offset: i64) {
        self.entries.insert((topic.to_owned(), partition), offset);
    }

    pub fn remove(&mut self, topic: &str, partition: i32) {
        self.entries.remove(&(topic.to_owned(), partition));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The file's text, `None` if there is no such file.
pub async fn read(disk: &Disk, path: &str) -> io::Result<Option<String>> {
    if !disk.exists(path) {
        return Ok(None);
    }
    let bytes = disk.read_all(path).await?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: not UTF-8")))
}

/// Replaces `path` with `text` atomically: write `tmp_path`, fsync it, rename it over `path`.
pub async fn write_atomically(
    disk: &Disk,
    path: &str,
    tmp_path: &str,
    text: &str,
) -> io::Result<()> {
    if disk.exists(tmp_path) {
        disk.remove(tmp_path).await?;
    }
    disk.create(tmp_path).await?;
    disk.append(tmp_path, text.as_bytes()).await?;
    disk.fsync(tmp_path).await?;
    disk.rename(tmp_path, path).await
}

/// Sets one partition's entry in an offset checkpoint shared by the log directory, keeping the
/// other partitions' entries. An unreadable file is replaced (its partitions then recover from
/// the start, as Kafka's `LogManager` resets recovery points it cannot read).
///
/// Kafka's `LogManager` writes these files for all its logs at once, under a lock. Here each log
/// writes its own entry, through a temporary file of its own, so two logs writing at once cannot
/// mix their bytes; the later rename may drop the other log's newest entry, which leaves that
/// log an older entry, as a crash before Kafka's next periodic checkpoint would.
pub async fn update_offset(
    disk: &Disk,
    path: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> io::Result<()> {
    let mut checkpoint = match read(disk, path).await {
        Ok(Some(text)) => OffsetCheckpoint::parse(&text).unwrap_or_default(),
        Ok(None) | Err(_) => OffsetCheckpoint::default(),
    };
    if checkpoint.get(topic, partition) == Some(offset) {
        return Ok(());
    }
    checkpoint.insert(topic, partition, offset);
    let tmp_path = format!("{path}.{topic}-{partition}.tmp");
    write_atomically(disk, path, &tmp_path, &checkpoint.to_text()).await
}

/// One partition's entry of an offset checkpoint: `Ok(None)` if the file or the entry is
/// missing, `Err` if the file cannot be read.
pub async fn read_offset(
    disk: &Disk,
    path: &str,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>, String> {
    match read(disk, path).await {
        Ok(None) => Ok(None),
        Ok(Some(text)) => OffsetCheckpoint::parse(&text)
            .map(|c| c.get(topic, partition))
            .map_err(|e| format!("{path}: {e}")),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_text_exactly() {
        let mut checkpoint = OffsetCheckpoint::default();
        checkpoint.insert("orders", 1, 987);
        checkpoint.insert("orders", 0, 1234);
        checkpoint.insert("my-topic", 10, 0);
        let text = checkpoint.to_text();
        assert_eq!(text, "0\n3\nmy-topic 10 0\norders 0 1234\norders 1 987\n");
        assert_eq!(OffsetCheckpoint::parse(&text).unwrap(), checkpoint);
        assert_eq!(checkpoint.get("orders", 0), Some(1234));
        assert_eq!(checkpoint.get("orders", 2), None);
        assert_eq!(format_entries(&[]), "0\n0\n");
    }

    #[test]
    fn empty_files_have_no_entries() {
        assert!(OffsetCheckpoint::parse("").unwrap().is_empty());
        assert!(OffsetCheckpoint::parse("0\n").unwrap().is_empty());
        assert!(OffsetCheckpoint::parse("0\n0\n").unwrap().is_empty());
    }

    #[test]
    fn malformed_files_are_errors() {
        for (text, why) in [
            ("1\n0\n", "version"),
            ("x\n", "version"),
            ("0\ntwo\n", "count"),
            ("0\n2\norders 0 5\n", "expected 2 entries, found 1"),
            (
                "0\n1\norders 0 5\nextra 0 1\n",
                "expected 1 entries, found 2",
            ),
            ("0\n1\norders 0\n", "malformed line"),
            ("0\n1\norders zero 5\n", "malformed line"),
            ("0\n1\norders 0 5 6\n", "malformed line"),
        ] {
            let e = OffsetCheckpoint::parse(text).unwrap_err();
            assert!(e.to_string().contains(why), "{text:?}: {e}");
        }
    }
}
