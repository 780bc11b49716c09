//! Both disk backends pass one conformance suite (`samsa::world::conformance`), so the simulated
//! disk is held to what the real file system does.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use samsa::world::conformance::run_conformance;
use samsa::world::real_disk::RealDisk;
use samsa::world::sim_disk::SimDiskBackend;
use samsa::world::DiskBackend;
use samsa_sim::disk::{DiskConfig, SimDisk};

#[test]
fn sim_disk_conforms() {
    let disk = Arc::new(Mutex::new(SimDisk::new(DiskConfig::default())));
    let backend = SimDiskBackend::new(disk.clone(), 7, Arc::new(|| 0));
    run_conformance(&backend);
    assert_eq!(
        disk.lock().unwrap().files().count(),
        0,
        "the suite cleans up"
    );
}

#[test]
fn sim_disk_conforms_when_slow_and_written_back() {
    // The clock moves past the write-back delay between calls: the page cache must not show.
    let now_ms = Arc::new(AtomicU64::new(0));
    let clock = now_ms.clone();
    let disk = Arc::new(Mutex::new(SimDisk::new(DiskConfig::default())));
    disk.lock().unwrap().set_slow(10.0);
    let backend = SimDiskBackend::new(
        disk,
        8,
        Arc::new(move || clock.fetch_add(7_919, Ordering::Relaxed)),
    );
    run_conformance(&backend);
    assert!(now_ms.load(Ordering::Relaxed) > 0, "the clock was read");
}

#[test]
fn sim_disk_latency_is_seeded() {
    let draws = |seed| {
        let disk = Arc::new(Mutex::new(SimDisk::new(DiskConfig::default())));
        let backend = SimDiskBackend::new(disk, seed, Arc::new(|| 0));
        let ops = [
            samsa::world::DiskOp::Write,
            samsa::world::DiskOp::Fsync,
            samsa::world::DiskOp::Read,
            samsa::world::DiskOp::Metadata,
        ];
        ops.iter()
            .cycle()
            .take(16)
            .map(|op| backend.latency(*op))
            .collect::<Vec<_>>()
    };
    assert_eq!(draws(1), draws(1), "one seed, one latency stream");
    assert_ne!(draws(1), draws(2), "another seed, another stream");
    assert!(
        draws(1).iter().step_by(4).all(|d| !d.is_zero()),
        "writes cost"
    );
    assert!(
        draws(1).iter().skip(2).step_by(4).all(|d| d.is_zero()),
        "cached reads are free"
    );
}

/// A fresh directory below the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("samsa-{label}-{}-{n}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("remove a stale directory");
        }
        std::fs::create_dir_all(&dir).expect("create the temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn real_disk_conforms() {
    let dir = TempDir::new("disk-conformance");
    let backend = RealDisk::new(&dir.0);
    run_conformance(&backend);
    assert!(backend.latency(samsa::world::DiskOp::Fsync).is_zero());
}

#[test]
fn real_disk_creates_its_root_on_first_write() {
    let dir = TempDir::new("disk-root");
    let backend = RealDisk::new(dir.0.join("not/yet"));
    assert!(backend.list("").is_empty(), "a missing root lists nothing");
    backend.create("t-0/file").unwrap();
    assert!(dir.0.join("not/yet/t-0/file").is_file());
}
