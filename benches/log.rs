//! The partition log on a real file system, measured against what the disk can do.
//!
//! - `append`: 1 KiB records in 16 KiB batches appended by `Log` (validation, CRC-32C, offset
//!   assignment, indexes, the segment write), beside the same bytes written with plain
//!   sequential writes to a file: the log should reach at least 70% of the plain throughput.
//! - `lookup`: reading the batch that holds a random offset, in logs of 10^3 and 10^7 records:
//!   O(log n) in the index plus a short scan, so 10^7 should cost within 3x of 10^3.
//!
//! Run with `cargo bench --bench log`. Files go under the system temp directory.
#![cfg(madsim)]

use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use samsa::storage::batch::{encode_batch, BatchSpec, Record};
use samsa::storage::log::{Log, LogConfig};
use samsa::world::real_disk::RealDisk;
use samsa::world::Disk;

const RECORD_BYTES: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;
/// Batches per measured append run: 64 MiB of records.
const BATCHES: usize = 4096;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("samsa-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn batch(records: usize, value_bytes: usize, rng: &mut ChaCha8Rng) -> Bytes {
    let records: Vec<Record> = (0..records)
        .map(|i| {
            let mut value = vec![0u8; value_bytes];
            rng.fill(&mut value[..]);
            Record {
                offset_delta: i as i32,
                timestamp_delta: 0,
                key: None,
                value: Some(Bytes::from(value)),
                headers: Vec::new(),
            }
        })
        .collect();
    encode_batch(&BatchSpec::default(), &records)
}

fn open_log(rt: &madsim::runtime::Runtime, dir: &std::path::Path) -> Log {
    let disk = Disk::new(Arc::new(RealDisk::new(dir)));
    rt.block_on(Log::open(disk, "bench-0", LogConfig::default(), 0))
        .unwrap()
        .0
}

fn append(c: &mut Criterion) {
    let rt = madsim::runtime::Runtime::new();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let batches: Vec<Bytes> = (0..BATCHES)
        .map(|_| batch(RECORDS_PER_BATCH, RECORD_BYTES, &mut rng))
        .collect();
    let total: u64 = batches.iter().map(|b| b.len() as u64).sum();
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Bytes(total));
    group.sample_size(10);
    group.bench_function("log", |b| {
        b.iter_batched(
            // The log rewrites offsets in place, so it gets its own copy, made outside the timing.
            || {
                (
                    scratch("log"),
                    batches.iter().map(|b| b.to_vec()).collect::<Vec<_>>(),
                )
            },
            |(dir, batches)| {
                let mut log = open_log(&rt, &dir);
                rt.block_on(async {
                    for mut bytes in batches {
                        log.append(&mut bytes, 0, 0).await.unwrap();
                    }
                });
                black_box(log.log_end_offset());
                drop(log);
                std::fs::remove_dir_all(&dir).unwrap();
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.bench_function("plain-write", |b| {
        b.iter_batched(
            || (scratch("plain"), batches.clone()),
            |(dir, batches)| {
                let mut file = std::fs::File::create(dir.join("plain.log")).unwrap();
                for batch in batches {
                    file.write_all(&batch).unwrap();
                }
                drop(file);
                std::fs::remove_dir_all(&dir).unwrap();
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let rt = madsim::runtime::Runtime::new();
    let mut group = c.benchmark_group("lookup");
    for records in [1_000i64, 10_000_000] {
        // Small records, 100 to a batch: the count of records (and index entries) is what grows.
        let dir = scratch(&format!("lookup-{records}"));
        let mut log = open_log(&rt, &dir);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let template = batch(100, 8, &mut rng);
        rt.block_on(async {
            for _ in 0..records / 100 {
                let mut bytes = template.to_vec();
                log.append(&mut bytes, 0, 0).await.unwrap();
            }
        });
        assert_eq!(log.log_end_offset(), records);
        group.bench_with_input(
            BenchmarkId::from_parameter(records),
            &records,
            |b, &records| {
                let mut rng = ChaCha8Rng::seed_from_u64(3);
                b.iter(|| {
                    let offset = rng.gen_range(0..records);
                    let read = rt.block_on(log.read(offset, 1)).unwrap();
                    black_box(read.records.len())
                })
            },
        );
        drop(log);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    group.finish();
}

criterion_group!(benches, append, lookup);
criterion_main!(benches);
