//! `LogSegment`: the indexes an append builds are the ones recovery rebuilds, and lookups
//! through them agree with a scan of the file.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::storage::batch;
use crate::storage::log::{Log, LogConfig};
use crate::storage::segment::LogSegment;
use crate::storage::tests::*;
use crate::world::Disk;

/// A one-segment log of batches of random sizes and timestamps (not monotonic).
async fn random_log(disk: &Disk, seed: u64) -> (Log, LogConfig) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let config = LogConfig {
        index_interval_bytes: rng.gen_range(0..400),
        ..LogConfig::default()
    };
    let (mut log, _) = open_with(disk, config).await;
    for i in 0..rng.gen_range(1..60) {
        let count = rng.gen_range(1..5);
        let ts = rng.gen_range(0..10_000);
        let tag = "x".repeat(rng.gen_range(1..120));
        log.append(&mut batch_at(&tag, count, ts), i / 7, 0)
            .await
            .unwrap();
    }
    (log, config)
}

/// (position, first offset, last offset) of every batch, from the file.
fn batches_of(bytes: &[u8]) -> Vec<(u64, i64, i64)> {
    batch::batches(bytes)
        .map(|(p, h)| (p as u64, h.base_offset, h.last_offset()))
        .collect()
}

#[test]
fn recovery_rebuilds_the_indexes_an_append_built() {
    for seed in 0..20 {
        run(async {
            let (mem, disk) = disk();
            let (log, config) = random_log(&disk, seed).await;
            let (index, time_index) = (mem.bytes(INDEX), mem.bytes(TIME_INDEX));
            let max = log.segment(0).unwrap().max_timestamp();
            drop(log);
            mem.delete(INDEX);
            mem.delete(TIME_INDEX);
            let (log, report) = open_with(&disk, config).await;
            assert!(report.segments[0].indexes_rebuilt);
            assert_eq!(mem.bytes(INDEX), index, "seed {seed}");
            // Recovery adds the largest timestamp as a final entry, as Kafka's does.
            let rebuilt = mem.bytes(TIME_INDEX);
            assert_eq!(rebuilt[..time_index.len()], time_index[..], "seed {seed}");
            assert!(rebuilt.len() - time_index.len() <= 12, "seed {seed}");
            assert_eq!(
                log.segment(0).unwrap().time_index().last_entry(),
                max,
                "seed {seed}"
            );
        })
    }
}

#[test]
fn offset_lookups_agree_with_a_scan() {
    for seed in 0..20 {
        run(async {
            let (mem, disk) = disk();
            let (log, _) = random_log(&disk, seed).await;
            let segment: &LogSegment = log.segment(0).unwrap();
            let batches = batches_of(&mem.bytes(SEGMENT));
            for offset in 0..log.log_end_offset() {
                let expected = batches.iter().find(|b| b.2 >= offset).unwrap();
                let (position, header) = segment
                    .translate_offset(&disk, offset)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    (position, header.base_offset),
                    (expected.0, expected.1),
                    "seed {seed}"
                );
                // The index entry used is the largest at or below the offset.
                let entry = segment.offset_index().lookup(offset);
                assert!(entry.offset <= offset || entry.position == 0);
                assert!(entry.position <= position);
            }
            assert!(segment
                .translate_offset(&disk, log.log_end_offset())
                .await
                .unwrap()
                .is_none());
            assert_eq!(log.index_misses(), 0);
        })
    }
}

#[test]
fn time_lookups_agree_with_a_scan() {
    for seed in 0..20 {
        run(async {
            let (_, disk) = disk();
            let (log, _) = random_log(&disk, seed).await;
            let records = log.read_all_records().await.unwrap();
            for target in (-1..10_100).step_by(37) {
                let expected = records.iter().find(|r| r.timestamp >= target);
                let found = log.fetch_offset_by_timestamp(target).await.unwrap();
                assert_eq!(
                    found.map(|f| (f.offset, f.timestamp)),
                    expected.map(|r| (r.offset, r.timestamp)),
                    "seed {seed}, target {target}"
                );
            }
        })
    }
}
