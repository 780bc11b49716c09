//! The cluster's one way to the disk. A `Disk` is a cheap handle over a backend: the simulated
//! disk of `samsa-sim` (page cache, fsync, crash, tear, corruption) or the real file system.
//! Paths are relative, `/`-separated, below the node's log directory (`orders-0/00000000000000000000.log`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

/// The kinds of disk operation, so a backend can price them differently (a read from the page
/// cache is free; an fsync is the slowest thing a broker does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskOp {
    Read,
    Write,
    Fsync,
    Metadata,
}

/// A synchronous file store. Each call is atomic; latency is paid by `Disk` before the call.
pub trait DiskBackend: Send + Sync {
    /// How long the operation takes, drawn from the backend's own seeded stream.
    fn latency(&self, op: DiskOp) -> Duration;
    /// Creates an empty file if it does not exist (parent directories are implicit).
    fn create(&self, path: &str) -> io::Result<()>;
    fn exists(&self, path: &str) -> bool;
    /// Every file whose path starts with `prefix`, sorted.
    fn list(&self, prefix: &str) -> Vec<String>;
    fn len(&self, path: &str) -> io::Result<u64>;
    /// Up to `len` bytes from `offset` (fewer at the end of the file).
    fn read_at(&self, path: &str, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Appends and returns the position the data was written at.
    fn append(&self, path: &str, data: &[u8]) -> io::Result<u64>;
    fn truncate(&self, path: &str, len: u64) -> io::Result<()>;
    fn fsync(&self, path: &str) -> io::Result<()>;
    fn remove(&self, path: &str) -> io::Result<()>;
    /// Atomic replace, as Kafka's checkpoint files use it (write a temporary file, fsync, rename).
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
}

#[derive(Clone)]
pub struct Disk {
    backend: Arc<dyn DiskBackend>,
    /// Set for one process's handle: its first write error takes the whole directory offline.
    failure: Option<Arc<DirFailure>>,
}

/// Kafka's `LogDirFailureChannel`: the first I/O error a write meets takes the log directory
/// offline. Every later operation through the handle fails at once, so no in-memory state (an
/// index ahead of its file, a log end past what was written) is ever built on a write that
/// half happened; the broker stops, as Kafka's halts when its only log directory fails
/// (`LogManager.handleLogDirFailure`).
#[derive(Default)]
pub struct DirFailure {
    reason: std::sync::Mutex<Option<String>>,
    notify: tokio::sync::Notify,
}

impl DirFailure {
    /// Why the directory went offline, once it has.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().expect("dir failure lock").clone()
    }

    /// Waits until the directory goes offline, and says why.
    pub async fn wait(&self) -> String {
        loop {
            let notified = self.notify.notified();
            if let Some(reason) = self.reason() {
                return reason;
            }
            notified.await;
        }
    }

    fn fail(&self, path: &str, error: &io::Error) {
        let mut reason = self.reason.lock().expect("dir failure lock");
        if reason.is_none() {
            let error = error.to_string();
            *reason = Some(if error.contains(path) {
                error
            } else {
                format!("{path}: {error}")
            });
            self.notify.notify_waiters();
        }
    }
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Disk")
    }
}

impl Disk {
    pub fn new(backend: Arc<dyn DiskBackend>) -> Self {
        Disk {
            backend,
            failure: None,
        }
    }

    /// A handle for one process whose first write error takes the directory offline (see
    /// `DirFailure`); the latch is new, so a restarted process starts with its directory online.
    pub fn watched(&self) -> (Disk, Arc<DirFailure>) {
        let failure = Arc::new(DirFailure::default());
        let disk = Disk {
            backend: self.backend.clone(),
            failure: Some(failure.clone()),
        };
        (disk, failure)
    }

    /// Pays the operation's latency, then refuses it if the directory is offline.
    async fn pay(&self, op: DiskOp) -> io::Result<()> {
        let latency = self.backend.latency(op);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        self.online()
    }

    fn online(&self) -> io::Result<()> {
        match self.failure.as_ref().and_then(|f| f.reason()) {
            None => Ok(()),
            Some(reason) => Err(io::Error::other(format!(
                "the log directory is offline ({reason})"
            ))),
        }
    }

    /// A failed write takes the directory offline. A missing file is an answer, not a failure.
    fn written<T>(&self, path: &str, result: io::Result<T>) -> io::Result<T> {
        if let (Err(e), Some(failure)) = (&result, &self.failure) {
            if e.kind() != io::ErrorKind::NotFound {
                failure.fail(path, e);
            }
        }
        result
    }

    pub async fn create(&self, path: &str) -> io::Result<()> {
        self.pay(DiskOp::Metadata).await?;
        self.written(path, self.backend.create(path))
    }

    pub fn exists(&self, path: &str) -> bool {
        self.backend.exists(path)
    }

    pub fn list(&self, prefix: &str) -> Vec<String> {
        self.backend.list(prefix)
    }

    pub fn len(&self, path: &str) -> io::Result<u64> {
        self.online()?;
        self.backend.len(path)
    }

    pub async fn read_at(&self, path: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.pay(DiskOp::Read).await?;
        self.backend.read_at(path, offset, len)
    }

    pub async fn read_all(&self, path: &str) -> io::Result<Vec<u8>> {
        let len = self.len(path)?;
        self.read_at(path, 0, len as usize).await
    }

    pub async fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        self.pay(DiskOp::Write).await?;
        self.written(path, self.backend.write_at(path, offset, data))
    }

    pub async fn append(&self, path: &str, data: &[u8]) -> io::Result<u64> {
        self.pay(DiskOp::Write).await?;
        self.written(path, self.backend.append(path, data))
    }

    pub async fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
        self.pay(DiskOp::Write).await?;
        self.written(path, self.backend.truncate(path, len))
    }

    pub async fn fsync(&self, path: &str) -> io::Result<()> {
        self.pay(DiskOp::Fsync).await?;
        self.written(path, self.backend.fsync(path))
    }

    pub async fn remove(&self, path: &str) -> io::Result<()> {
        self.pay(DiskOp::Metadata).await?;
        self.written(path, self.backend.remove(path))
    }

    pub async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.pay(DiskOp::Metadata).await?;
        self.written(to, self.backend.rename(from, to))
    }
}
