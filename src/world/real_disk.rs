//! The real file system behind the `DiskBackend` seam, below one root directory (a node's log
//! directory). Metadata changes fsync their directory, so that, as in the simulated disk, a
//! create, remove or rename is durable when it returns.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use samsa_sim::disk::validate_path;

use super::disk::{DiskBackend, DiskOp};

#[derive(Clone, Debug)]
pub struct RealDisk {
    root: PathBuf,
}

/// Names the path in an error, as the simulated disk does (the OS's message does not).
fn named(path: &str) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{path}: {e}"))
}

impl RealDisk {
    /// A disk below `root`, which is created on the first write if it does not exist.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RealDisk { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The full path of `path`, which `validate_path` keeps below the root.
    fn full(&self, path: &str) -> io::Result<PathBuf> {
        validate_path(path)?;
        Ok(self.root.join(path))
    }

    fn open(&self, path: &str, write: bool) -> io::Result<File> {
        let full = self.full(path)?;
        OpenOptions::new()
            .read(true)
            .write(write)
            .open(full)
            .map_err(named(path))
    }

    /// Makes a change to the directory holding `full` durable (create, remove, rename).
    fn sync_parent(full: &Path) -> io::Result<()> {
        #[cfg(unix)]
        if let Some(dir) = full.parent() {
            File::open(dir)?.sync_all()?;
        }
        #[cfg(not(unix))]
        let _ = full;
        Ok(())
    }

    fn create_parents(full: &Path) -> io::Result<()> {
        match full.parent() {
            Some(dir) => fs::create_dir_all(dir),
            None => Ok(()),
        }
    }

    fn walk(&self, dir: &Path, relative: &str, out: &mut Vec<String>) {
        // A missing or unreadable directory lists nothing, as an empty one does.
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = if relative.is_empty() {
                name
            } else {
                format!("{relative}/{name}")
            };
            match entry.file_type() {
                Ok(t) if t.is_dir() => self.walk(&entry.path(), &path, out),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
}

impl DiskBackend for RealDisk {
    fn latency(&self, _op: DiskOp) -> Duration {
        Duration::ZERO
    }

    fn create(&self, path: &str) -> io::Result<()> {
        let full = self.full(path)?;
        Self::create_parents(&full).map_err(named(path))?;
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&full)
            .map_err(named(path))?;
        Self::sync_parent(&full).map_err(named(path))
    }

    fn exists(&self, path: &str) -> bool {
        self.full(path).is_ok_and(|full| full.is_file())
    }

    fn list(&self, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(&self.root, "", &mut out);
        out.retain(|p| p.starts_with(prefix));
        out.sort();
        out
    }

    fn len(&self, path: &str) -> io::Result<u64> {
        let meta = fs::metadata(self.full(path)?).map_err(named(path))?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{path}: Is a directory"),
            ));
        }
        Ok(meta.len())
    }

    fn read_at(&self, path: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut file = self.open(path, false)?;
        file.seek(SeekFrom::Start(offset)).map_err(named(path))?;
        let mut out = Vec::new();
        file.take(len as u64)
            .read_to_end(&mut out)
            .map_err(named(path))?;
        Ok(out)
    }

    fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut file = self.open(path, true)?;
        if data.is_empty() {
            return Ok(()); // pwrite of nothing does not extend the file
        }
        file.seek(SeekFrom::Start(offset)).map_err(named(path))?;
        file.write_all(data).map_err(named(path))
    }

    fn append(&self, path: &str, data: &[u8]) -> io::Result<u64> {
        let mut file = self.open(path, true)?;
        let position = file.seek(SeekFrom::End(0)).map_err(named(path))?;
        file.write_all(data).map_err(named(path))?;
        Ok(position)
    }

    fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
        self.open(path, true)?.set_len(len).map_err(named(path))
    }

    fn fsync(&self, path: &str) -> io::Result<()> {
        self.open(path, true)?.sync_all().map_err(named(path))
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        let full = self.full(path)?;
        fs::remove_file(&full).map_err(named(path))?;
        Self::sync_parent(&full).map_err(named(path))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (full_from, full_to) = (self.full(from)?, self.full(to)?);
        if !full_from.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{from}: No such file or directory"),
            ));
        }
        Self::create_parents(&full_to).map_err(named(to))?;
        fs::rename(&full_from, &full_to).map_err(named(from))?;
        Self::sync_parent(&full_to).map_err(named(to))?;
        Self::sync_parent(&full_from).map_err(named(from))
    }
}
