//! The narrow interfaces through which the cluster reaches the world: the disk, the clock, the
//! recorder and connections (`tokio::net`, which is madsim's simulated TCP under `--cfg madsim`).
//! Each has a simulated implementation and a real one.

pub mod buggify;
pub mod clock;
pub mod conformance;
pub mod disk;
pub mod real_disk;
pub mod recorder;
pub mod sim_disk;

pub use clock::Clock;
pub use disk::{Disk, DiskBackend, DiskOp};
pub use recorder::{NullRecorder, Recorder, SharedRecorder};

/// A seed for one independent concern (`"disk/broker-1"`, `"workload/p1"`), derived from the run's
/// seed so that adding a fault does not reshuffle the workload (TigerBeetle's VOPR does the same).
pub fn derive_seed(seed: u64, label: &str) -> u64 {
    let mut digest = samsa_sim::digest::Digest::default();
    digest.write(&seed.to_le_bytes());
    digest.write(label.as_bytes());
    splitmix64(digest.finish())
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
