//! The real file system behind the `DiskBackend` seam, below one root directory (a node's log
//! directory). Metadata changes fsync their directory, so that, as in the simulated disk, a
//! create, remove or rename is durable when it returns.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use samsa_sim::disk::validate_path;

use super::disk::{DiskBackend, DiskOp};

/// Files kept open at most, so a log's segments and indexes are not reopened on every write.
const MAX_OPEN_FILES: usize = 1024;

#[derive(Clone, Debug)]
pub struct RealDisk {
    root: PathBuf,
    /// Open handles by relative path; every read and write is positioned (pread/pwrite).
    open_files: Arc<Mutex<BTreeMap<String, Arc<OpenFile>>>>,
}

/// A file kept open, with its length: only this disk writes below its root, so the length
/// can be kept here instead of asked of the OS on every append.
#[derive(Debug)]
struct OpenFile {
    file: File,
    len: Mutex<u64>,
}

/// Names the path in an error, as the simulated disk does (the OS's message does not).
fn named(path: &str) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{path}: {e}"))
}

impl RealDisk {
    /// A disk below `root`, which is created on the first write if it does not exist.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RealDisk {
            root: root.into(),
            open_files: Arc::default(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The full path of `path`, which `validate_path` keeps below the root.
    fn full(&self, path: &str) -> io::Result<PathBuf> {
        validate_path(path)?;
        Ok(self.root.join(path))
    }

    /// The open handle of an existing file, opened (read and write) on first use.
    fn open(&self, path: &str) -> io::Result<Arc<OpenFile>> {
        let mut open_files = self.open_files.lock().expect("open files lock");
        if let Some(file) = open_files.get(path) {
            return Ok(file.clone());
        }
        let full = self.full(path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(full)
            .map_err(named(path))?;
        let len = file.metadata().map_err(named(path))?.len();
        let file = Arc::new(OpenFile {
            file,
            len: Mutex::new(len),
        });
        if open_files.len() >= MAX_OPEN_FILES {
            open_files.pop_first();
        }
        open_files.insert(path.to_string(), file.clone());
        Ok(file)
    }

    /// Forgets a handle before its file is removed or renamed.
    fn forget(&self, path: &str) {
        self.open_files
            .lock()
            .expect("open files lock")
            .remove(path);
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
        let file = self.open(path)?;
        let mut out = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match file
                .file
                .read_at(&mut out[filled..], offset + filled as u64)
            {
                Ok(0) => break, // the end of the file: a short read
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(named(path)(e)),
            }
        }
        out.truncate(filled);
        Ok(out)
    }

    fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        let file = self.open(path)?;
        if data.is_empty() {
            return Ok(()); // pwrite of nothing does not extend the file
        }
        let mut len = file.len.lock().expect("file length lock");
        file.file.write_all_at(data, offset).map_err(named(path))?;
        *len = (*len).max(offset + data.len() as u64);
        Ok(())
    }

    fn append(&self, path: &str, data: &[u8]) -> io::Result<u64> {
        let file = self.open(path)?;
        let mut len = file.len.lock().expect("file length lock");
        let position = *len;
        file.file
            .write_all_at(data, position)
            .map_err(named(path))?;
        *len = position + data.len() as u64;
        Ok(position)
    }

    fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
        let file = self.open(path)?;
        let mut current = file.len.lock().expect("file length lock");
        file.file.set_len(len).map_err(named(path))?;
        *current = len;
        Ok(())
    }

    fn fsync(&self, path: &str) -> io::Result<()> {
        self.open(path)?.file.sync_all().map_err(named(path))
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        let full = self.full(path)?;
        self.forget(path);
        fs::remove_file(&full).map_err(named(path))?;
        Self::sync_parent(&full).map_err(named(path))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (full_from, full_to) = (self.full(from)?, self.full(to)?);
        self.forget(from);
        self.forget(to);
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
