//! The narrow interfaces through which the cluster reaches the world: the disk, the clock,
//! connections. Each has a simulated implementation and a real one.

pub mod disk;
pub mod real_disk;
pub mod sim_disk;

pub use disk::{Disk, DiskBackend, DiskOp};
