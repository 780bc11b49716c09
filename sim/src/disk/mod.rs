//! A deterministic model of one node's disk, with Linux page-cache semantics.
//!
//! madsim's file system never loses unsynced data, so Samsa owns its disk fault model (as
//! TigerBeetle's `src/testing/storage.zig` and turmoil's fs do). Each file has two contents:
//!
//! - the *visible* content, what the process reads: every write lands there at once;
//! - the *durable* content, what survives a machine crash: it changes on `fsync`, or when the
//!   kernel writes back dirty data older than `writeback_ms` (Linux's `vm.dirty_expire_centisecs`,
//!   30 s by default).
//!
//! The writes in between are kept as an ordered list of pending changes, so that a crash can
//! keep exactly those already written back and may *tear* the oldest lost one at a sector
//! boundary. Metadata (create, remove, rename) is durable at once, as on a journaling file
//! system; a renamed file keeps its pending writes (ext4's zero-length-file-after-rename).
//!
//! The model is pure and synchronous: no clock, no simulator. Callers pass `now_ms` and a
//! random stream, so the same calls give the same disk on every run.
//!
//! `file` holds one file's two contents and the pending changes between them, `faults` what
//! the fault schedule does to a disk (crash, wipe, corrupt, full, slow).

mod faults;
mod file;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use file::{to_usize, Change, File};

/// How the disk behaves. `Default` is a datacenter SSD under Linux's default writeback.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskConfig {
    /// Inclusive range of one device operation's latency, in microseconds.
    pub latency_us: (u64, u64),
    /// Age after which the kernel writes dirty data back on its own (`vm.dirty_expire_centisecs`).
    pub writeback_ms: u64,
    /// The unit the device writes atomically: a torn write keeps whole sectors only.
    pub sector_bytes: u64,
}

impl Default for DiskConfig {
    fn default() -> Self {
        DiskConfig {
            latency_us: (50, 500),
            writeback_ms: 30_000,
            sector_bytes: 512,
        }
    }
}

/// The kinds of operation the disk prices (the `samsa` crate maps its `DiskOp` onto these).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiskOpKind {
    Read,
    Write,
    Fsync,
    Metadata,
}

/// An fsync costs this many device operations: it cannot return before the device has written
/// every dirty page and flushed its own cache, where a write only copies into the page cache
/// (and pays for the device when the cache pushes back).
pub const FSYNC_LATENCY_FACTOR: u64 = 4;

/// What a crash did to the disk, for the trace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashReport {
    /// The files that lost something, sorted by path.
    pub files: Vec<FileLoss>,
}

impl CrashReport {
    pub fn lost_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.lost_bytes).sum()
    }
}

/// What one file lost in a crash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLoss {
    pub path: String,
    /// Pending changes dropped (writes and shrinking truncates, a torn write included).
    pub lost_ops: u64,
    /// Bytes of written data that did not reach the device (a lost truncate loses none).
    pub lost_bytes: u64,
    pub len_before: u64,
    pub len_after: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn: Option<TornWrite>,
}

/// The oldest lost write, of which a sector-aligned prefix reached the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TornWrite {
    /// Where the write started in the file (a write past the end starts at the old end: the
    /// zeros of the gap are part of it).
    pub offset: u64,
    pub len: u64,
    /// `offset + kept_bytes` is a multiple of the sector size.
    pub kept_bytes: u64,
}

/// Media corruption done by `corrupt`: `file[offset] ^= xor_mask`, visible and durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Corruption {
    pub path: String,
    pub offset: u64,
    pub xor_mask: u8,
}

fn not_found(path: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{path}: No such file or directory"),
    )
}

fn storage_full(path: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::StorageFull,
        format!("{path}: No space left on device"),
    )
}

/// Checks a path has the shape every backend accepts: relative, `/`-separated, with no empty,
/// `.` or `..` component. The real disk relies on this to stay below its root.
pub fn validate_path(path: &str) -> io::Result<()> {
    let bad = path.is_empty()
        || path.contains('\0')
        || path.contains('\\')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{path:?}: not a relative path of the form `dir/file`"),
        ));
    }
    Ok(())
}

/// One node's disk.
#[derive(Clone, Debug)]
pub struct SimDisk {
    config: DiskConfig,
    files: BTreeMap<String, File>,
    full: bool,
    slow_factor: f64,
}

impl SimDisk {
    pub fn new(config: DiskConfig) -> Self {
        assert!(config.latency_us.0 <= config.latency_us.1, "latency range");
        assert!(config.sector_bytes > 0, "sector size");
        SimDisk {
            config,
            files: BTreeMap::new(),
            full: false,
            slow_factor: 1.0,
        }
    }

    pub fn config(&self) -> &DiskConfig {
        &self.config
    }

    /// How long `op` takes. A read is served by the page cache (the model never evicts) and
    /// costs nothing; a write or metadata change costs one device operation; an fsync
    /// `FSYNC_LATENCY_FACTOR` of them. Draws from `rng` only for operations that cost.
    pub fn latency<R: Rng + ?Sized>(&self, op: DiskOpKind, rng: &mut R) -> Duration {
        let device_ops = match op {
            DiskOpKind::Read => return Duration::ZERO,
            DiskOpKind::Write | DiskOpKind::Metadata => 1,
            DiskOpKind::Fsync => FSYNC_LATENCY_FACTOR,
        };
        let (lo, hi) = self.config.latency_us;
        let us = rng.gen_range(lo..=hi) * device_ops;
        Duration::from_micros((us as f64 * self.slow_factor).round() as u64)
    }

    // ---- metadata (durable at once) --------------------------------------------------------

    /// Creates an empty file unless it exists.
    pub fn create(&mut self, path: &str) -> io::Result<()> {
        validate_path(path)?;
        if self.files.contains_key(path) {
            return Ok(());
        }
        self.check_free_name(path)?;
        if self.full {
            return Err(storage_full(path));
        }
        self.files.insert(path.to_string(), File::default());
        Ok(())
    }

    pub fn remove(&mut self, path: &str) -> io::Result<()> {
        self.files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    /// Atomically replaces `to` (if it exists) by `from`, which keeps its pending writes.
    pub fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        validate_path(to)?;
        if !self.files.contains_key(from) {
            return Err(not_found(from));
        }
        if from == to {
            return Ok(());
        }
        if !self.files.contains_key(to) {
            self.check_free_name(to)?;
        }
        let file = self.files.remove(from).expect("checked above");
        self.files.insert(to.to_string(), file);
        Ok(())
    }

    /// Directories are implicit, but a path cannot be both a file and a directory.
    fn check_free_name(&self, path: &str) -> io::Result<()> {
        let dir = format!("{path}/");
        if self
            .files
            .range(dir.clone()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(&dir))
        {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{path}: Is a directory"),
            ));
        }
        let mut ancestor = path;
        while let Some((parent, _)) = ancestor.rsplit_once('/') {
            if self.files.contains_key(parent) {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{path}: {parent} is not a directory"),
                ));
            }
            ancestor = parent;
        }
        Ok(())
    }

    // ---- data (page cache first) -----------------------------------------------------------

    /// Writes `data` at `offset`; past the end, the gap reads as zeros.
    pub fn write_at(
        &mut self,
        path: &str,
        offset: u64,
        data: &[u8],
        now_ms: u64,
    ) -> io::Result<()> {
        let writeback_ms = self.config.writeback_ms;
        let file = self.files.get_mut(path).ok_or_else(|| not_found(path))?;
        if self.full {
            return Err(storage_full(path));
        }
        if data.is_empty() {
            return Ok(());
        }
        let len = file.visible.len() as u64;
        let change = if offset <= len {
            Change::Write {
                offset,
                data: data.to_vec(),
            }
        } else {
            let mut with_gap = vec![0; to_usize(offset - len)];
            with_gap.extend_from_slice(data);
            Change::Write {
                offset: len,
                data: with_gap,
            }
        };
        file.record(change, now_ms, writeback_ms);
        Ok(())
    }

    /// Appends `data` and returns the position it was written at.
    pub fn append(&mut self, path: &str, data: &[u8], now_ms: u64) -> io::Result<u64> {
        let position = self.len(path)?;
        self.write_at(path, position, data, now_ms)?;
        Ok(position)
    }

    /// Sets the length of `path`: a shrink drops the tail, an extension adds zeros.
    pub fn truncate(&mut self, path: &str, len: u64, now_ms: u64) -> io::Result<()> {
        let current = self.len(path)?;
        if len > current {
            return self.write_at(path, len - 1, &[0], now_ms);
        }
        if len < current {
            let writeback_ms = self.config.writeback_ms;
            let file = self.files.get_mut(path).expect("len found it");
            file.record(Change::Shrink { len }, now_ms, writeback_ms);
        }
        Ok(())
    }

    /// Makes every write to `path` so far durable.
    pub fn fsync(&mut self, path: &str) -> io::Result<()> {
        self.files
            .get_mut(path)
            .ok_or_else(|| not_found(path))?
            .fsync();
        Ok(())
    }

    /// Makes durable everything the kernel has written back by `now_ms`. Every write does this
    /// for its own file; call it from a periodic tick to bound the memory of idle files.
    pub fn write_back(&mut self, now_ms: u64) {
        let writeback_ms = self.config.writeback_ms;
        for file in self.files.values_mut() {
            file.write_back(now_ms, writeback_ms);
        }
    }

    // ---- reads -----------------------------------------------------------------------------

    pub fn exists(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    pub fn len(&self, path: &str) -> io::Result<u64> {
        Ok(self.visible(path)?.len() as u64)
    }

    /// Up to `len` bytes from `offset`: fewer at the end of the file, none past it.
    pub fn read_at(&self, path: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let content = self.visible(path)?;
        let start = to_usize(offset.min(content.len() as u64));
        let end = start.saturating_add(len).min(content.len());
        Ok(content[start..end].to_vec())
    }

    /// Every file whose path starts with `prefix`, sorted.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        self.files
            .range(prefix.to_string()..)
            .take_while(|(p, _)| p.starts_with(prefix))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Every file with its visible content, sorted by path (to dump a node's disk).
    pub fn files(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.files
            .iter()
            .map(|(p, f)| (p.as_str(), f.visible.as_slice()))
    }

    fn visible(&self, path: &str) -> io::Result<&[u8]> {
        self.files
            .get(path)
            .map(|f| f.visible.as_slice())
            .ok_or_else(|| not_found(path))
    }

    /// What a crash at `now_ms` would leave of `path`, torn writes aside (for tests).
    pub fn durable(&self, path: &str, now_ms: u64) -> Option<Vec<u8>> {
        let file = self.files.get(path)?;
        Some(file.durable_at(now_ms, self.config.writeback_ms))
    }

    /// Bytes written but neither fsynced nor written back by `now_ms`.
    pub fn dirty_bytes(&self, now_ms: u64) -> u64 {
        let writeback_ms = self.config.writeback_ms;
        self.files
            .values()
            .map(|f| {
                let expired = f.expired(now_ms, writeback_ms).count();
                f.pending
                    .iter()
                    .skip(expired)
                    .map(|p| p.change.data_len())
                    .sum::<u64>()
            })
            .sum()
    }
}

#[cfg(test)]
impl SimDisk {
    /// The pair assertion of the page cache: replaying each file's pending changes on its
    /// durable content gives its visible content.
    fn assert_consistent(&self) {
        for (path, file) in &self.files {
            let mut replayed = file.durable.clone();
            for p in &file.pending {
                p.change.apply(&mut replayed);
            }
            assert_eq!(
                replayed, file.visible,
                "{path}: durable + pending = visible"
            );
        }
    }
}
