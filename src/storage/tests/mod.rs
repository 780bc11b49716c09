//! Tests of the segmented log on a disk: `Log`, `LogSegment`, recovery. Disk calls sleep through
//! madsim's clock, so the async tests run inside a madsim runtime (`--cfg madsim`, the default
//! build of this workspace).
#![cfg(madsim)]

mod log_tests;
mod recovery_tests;
mod segment_tests;
mod txn_tests;

use bytes::Bytes;

use crate::storage::batch::{self, encode_batch, BatchSpec, Record};

/// A batch of `count` records with values `"{tag}-{i}"`, timestamps `base_timestamp + i`,
/// offsets from 0 (the log reassigns).
pub(crate) fn batch_at(tag: &str, count: i32, base_timestamp: i64) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            offset_delta: i,
            timestamp_delta: i64::from(i),
            key: None,
            value: Some(Bytes::from(format!("{tag}-{i}"))),
            headers: vec![],
        })
        .collect();
    let spec = BatchSpec {
        base_timestamp,
        ..BatchSpec::default()
    };
    encode_batch(&spec, &records).to_vec()
}

/// `batch_at` with timestamps from 1000.
pub(crate) fn producer_batch(tag: &str, count: i32) -> Vec<u8> {
    batch_at(tag, count, 1_000)
}

/// The same batch with offsets (and an epoch) already assigned, as a segment holds it.
pub(crate) fn stored_batch(tag: &str, count: i32, base_offset: i64) -> Vec<u8> {
    let mut bytes = producer_batch(tag, count);
    batch::set_base_offset(&mut bytes, base_offset);
    bytes
}

pub(crate) use on_disk::*;

mod on_disk {
    use std::collections::BTreeMap;
    use std::io;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use crate::storage::batch::DecodedRecord;
    use crate::storage::log::{Log, LogConfig, RecoveryReport};
    use crate::world::{Disk, DiskBackend, DiskOp};

    pub(crate) const DIR: &str = "orders-0";
    pub(crate) const SEGMENT: &str = "orders-0/00000000000000000000.log";
    pub(crate) const INDEX: &str = "orders-0/00000000000000000000.index";
    pub(crate) const TIME_INDEX: &str = "orders-0/00000000000000000000.timeindex";
    pub(crate) const EPOCHS: &str = "orders-0/leader-epoch-checkpoint";
    pub(crate) const RECOVERY_POINTS: &str = "recovery-point-offset-checkpoint";

    /// Files in a map; counts fsyncs per path. No latency, no faults.
    #[derive(Default)]
    pub(crate) struct MemDisk {
        pub files: Mutex<BTreeMap<String, Vec<u8>>>,
        fsyncs: Mutex<BTreeMap<String, usize>>,
    }

    fn not_found(path: &str) -> io::Error {
        io::Error::new(io::ErrorKind::NotFound, path.to_owned())
    }

    impl MemDisk {
        pub fn with_file<T>(&self, path: &str, f: impl FnOnce(&mut Vec<u8>) -> T) -> io::Result<T> {
            let mut files = self.files.lock().unwrap();
            files.get_mut(path).map(f).ok_or_else(|| not_found(path))
        }

        pub fn bytes(&self, path: &str) -> Vec<u8> {
            self.with_file(path, |f| f.clone())
                .unwrap_or_else(|e| panic!("{e}"))
        }

        pub fn text(&self, path: &str) -> String {
            String::from_utf8(self.bytes(path)).unwrap()
        }

        pub fn names(&self) -> Vec<String> {
            self.files.lock().unwrap().keys().cloned().collect()
        }

        pub fn fsyncs(&self, path: &str) -> usize {
            self.fsyncs.lock().unwrap().get(path).copied().unwrap_or(0)
        }

        pub fn put(&self, path: &str, bytes: &[u8]) {
            self.files
                .lock()
                .unwrap()
                .insert(path.to_owned(), bytes.to_vec());
        }

        pub fn delete(&self, path: &str) {
            self.files.lock().unwrap().remove(path).unwrap();
        }
    }

    impl DiskBackend for MemDisk {
        fn latency(&self, _op: DiskOp) -> Duration {
            Duration::ZERO
        }
        fn create(&self, path: &str) -> io::Result<()> {
            self.files
                .lock()
                .unwrap()
                .entry(path.to_owned())
                .or_default();
            Ok(())
        }
        fn exists(&self, path: &str) -> bool {
            self.files.lock().unwrap().contains_key(path)
        }
        fn list(&self, prefix: &str) -> Vec<String> {
            let files = self.files.lock().unwrap();
            files
                .keys()
                .filter(|p| p.starts_with(prefix))
                .cloned()
                .collect()
        }
        fn len(&self, path: &str) -> io::Result<u64> {
            self.with_file(path, |f| f.len() as u64)
        }
        fn read_at(&self, path: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
            self.with_file(path, |f| {
                let start = (offset as usize).min(f.len());
                f[start..(start + len).min(f.len())].to_vec()
            })
        }
        fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> io::Result<()> {
            self.with_file(path, |f| {
                let end = offset as usize + data.len();
                if f.len() < end {
                    f.resize(end, 0);
                }
                f[offset as usize..end].copy_from_slice(data);
            })
        }
        fn append(&self, path: &str, data: &[u8]) -> io::Result<u64> {
            self.with_file(path, |f| {
                let position = f.len() as u64;
                f.extend_from_slice(data);
                position
            })
        }
        fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
            self.with_file(path, |f| f.resize(len as usize, 0))
        }
        fn fsync(&self, path: &str) -> io::Result<()> {
            self.with_file(path, |_| ())?;
            *self
                .fsyncs
                .lock()
                .unwrap()
                .entry(path.to_owned())
                .or_default() += 1;
            Ok(())
        }
        fn remove(&self, path: &str) -> io::Result<()> {
            self.files
                .lock()
                .unwrap()
                .remove(path)
                .map(|_| ())
                .ok_or_else(|| not_found(path))
        }
        fn rename(&self, from: &str, to: &str) -> io::Result<()> {
            let mut files = self.files.lock().unwrap();
            let data = files.remove(from).ok_or_else(|| not_found(from))?;
            files.insert(to.to_owned(), data);
            Ok(())
        }
    }

    pub(crate) fn run<F: std::future::Future>(f: F) -> F::Output {
        madsim::runtime::Runtime::new().block_on(f)
    }

    pub(crate) fn disk() -> (Arc<MemDisk>, Disk) {
        let mem = Arc::new(MemDisk::default());
        (mem.clone(), Disk::new(mem))
    }

    /// Small segments and dense indexes, so that a few batches exercise rolling and lookups.
    pub(crate) fn small_config() -> LogConfig {
        LogConfig {
            segment_bytes: 1_000,
            index_interval_bytes: 150,
            recovery_point_checkpoint_interval_ms: 0,
            ..LogConfig::default()
        }
    }

    pub(crate) async fn open_with(disk: &Disk, config: LogConfig) -> (Log, RecoveryReport) {
        Log::open(disk.clone(), DIR, config, 0).await.unwrap()
    }

    pub(crate) async fn open(disk: &Disk, flush_interval_messages: u64) -> (Log, RecoveryReport) {
        let config = LogConfig {
            flush_interval_messages,
            recovery_point_checkpoint_interval_ms: 0,
            ..LogConfig::default()
        };
        open_with(disk, config).await
    }

    pub(crate) fn values(records: &[DecodedRecord]) -> Vec<(i64, String)> {
        let value = |r: &DecodedRecord| String::from_utf8(r.value.clone().unwrap().to_vec());
        records
            .iter()
            .map(|r| (r.offset, value(r).unwrap()))
            .collect()
    }

    /// Appends batches of `count` records tagged `tag0`, `tag1`, …, epoch 5, time 0.
    pub(crate) async fn append_n(log: &mut Log, batches: usize, count: i32) -> Vec<Vec<u8>> {
        let mut written = Vec::new();
        for i in 0..batches {
            let mut bytes = crate::storage::tests::producer_batch(&format!("b{i}"), count);
            log.append(&mut bytes, 5, 0).await.unwrap();
            written.push(bytes);
        }
        written
    }
}
