//! The partition log: Kafka's record batches (format v2) in segment files on a `Disk`.

pub mod batch;
pub mod checkpoint;
pub mod cleaner;
pub mod compression;
pub mod control_record;
mod file_records;
mod index_file;
pub mod leader_epoch;
pub mod log;
pub mod log_config;
mod log_error;
mod log_loader;
mod log_truncate;
mod log_txn;
pub mod offset_index;
pub mod producer_state;
pub mod retention;
pub mod segment;
mod segment_recovery;
pub mod time_index;
pub mod txn_index;

#[cfg(test)]
pub(crate) mod tests;
