//! The simulated disk behind the `DiskBackend` seam: `samsa-sim`'s page-cache model of one node's
//! disk, shared with the fault injector (which crashes, corrupts, fills or slows it), a seeded
//! latency stream of its own, and the simulated clock that dates each write for the kernel's
//! write-back. No simulator type appears here, so it builds with or without madsim.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use samsa_sim::disk::{DiskOpKind, SimDisk};

use super::disk::{DiskBackend, DiskOp};

/// Milliseconds since the start of the run, unskewed (`Clock::elapsed_ms`): the kernel's
/// write-back runs on monotonic time, which a wall-clock skew does not move.
pub type ClockMs = Arc<dyn Fn() -> u64 + Send + Sync>;

pub struct SimDiskBackend {
    /// Shared with the fault injector. Never held across an await: every call is synchronous.
    disk: Arc<Mutex<SimDisk>>,
    /// The node's own latency stream, so that the workload's randomness does not move with the
    /// number of disk operations.
    rng: Mutex<ChaCha8Rng>,
    clock: ClockMs,
    /// The node's fault points (`slow-fsync`).
    buggify: super::buggify::Buggify,
}

impl SimDiskBackend {
    pub fn new(disk: Arc<Mutex<SimDisk>>, rng_seed: u64, clock: ClockMs) -> Self {
        SimDiskBackend {
            disk,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(rng_seed)),
            clock,
            buggify: super::buggify::Buggify::off(),
        }
    }

    /// With the node's fault points: an fsync may take far longer than usual.
    pub fn with_buggify(mut self, buggify: super::buggify::Buggify) -> Self {
        self.buggify = buggify;
        self
    }

    fn disk(&self) -> MutexGuard<'_, SimDisk> {
        // A panic while holding the lock already fails the run; its message is the one to read.
        self.disk
            .lock()
            .expect("the simulated disk's lock is poisoned")
    }

    fn now_ms(&self) -> u64 {
        (self.clock)()
    }
}

impl std::fmt::Debug for SimDiskBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimDiskBackend")
    }
}

fn kind(op: DiskOp) -> DiskOpKind {
    match op {
        DiskOp::Read => DiskOpKind::Read,
        DiskOp::Write => DiskOpKind::Write,
        DiskOp::Fsync => DiskOpKind::Fsync,
        DiskOp::Metadata => DiskOpKind::Metadata,
    }
}

impl DiskBackend for SimDiskBackend {
    fn latency(&self, op: DiskOp) -> Duration {
        let mut rng = self
            .rng
            .lock()
            .expect("the latency stream's lock is poisoned");
        let latency = self.disk().latency(kind(op), &mut *rng);
        let slow = match op {
            DiskOp::Fsync => self
                .buggify
                .fires(super::buggify::Point::SlowFsync, 20, 500),
            _ => None,
        };
        latency + Duration::from_millis(slow.unwrap_or(0))
    }

    fn create(&self, path: &str) -> io::Result<()> {
        self.disk().create(path)
    }

    fn exists(&self, path: &str) -> bool {
        self.disk().exists(path)
    }

    fn list(&self, prefix: &str) -> Vec<String> {
        self.disk().list(prefix)
    }

    fn len(&self, path: &str) -> io::Result<u64> {
        self.disk().len(path)
    }

    fn read_at(&self, path: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.disk().read_at(path, offset, len)
    }

    fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        let now_ms = self.now_ms();
        self.disk().write_at(path, offset, data, now_ms)
    }

    fn append(&self, path: &str, data: &[u8]) -> io::Result<u64> {
        let now_ms = self.now_ms();
        self.disk().append(path, data, now_ms)
    }

    fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
        let now_ms = self.now_ms();
        self.disk().truncate(path, len, now_ms)
    }

    fn fsync(&self, path: &str) -> io::Result<()> {
        self.disk().fsync(path)
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        self.disk().remove(path)
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.disk().rename(from, to)
    }
}
