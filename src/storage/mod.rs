//! The partition log: Kafka's record batches (format v2) in segment files on a `Disk`.

pub mod batch;
pub mod cleaner;
pub mod log;
pub mod retention;
