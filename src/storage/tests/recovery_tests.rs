//! Opening a log: what recovery keeps, rebuilds, truncates and deletes. Whatever the damage, a
//! corrupt batch is never served.

use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use samsa_sim::disk::{DiskConfig, SimDisk};

use crate::storage::log::{Log, LogConfig, LogError, RecoveryReport};
use crate::storage::tests::*;
use crate::world::sim_disk::SimDiskBackend;
use crate::world::Disk;

fn segment_path(base: i64, suffix: &str) -> String {
    format!("{DIR}/{base:020}.{suffix}")
}

/// 30 batches of 2 records (85 bytes) in segments of at most 1000 bytes (three: 22, 22 and 16
/// offsets),
/// epochs 0, 1, 2 by ten batches, flushed: every segment below the active one is trusted.
async fn three_segments(disk: &Disk) -> (Log, Vec<i64>) {
    let (mut log, _) = open_with(disk, small_config()).await;
    for i in 0..30 {
        let mut bytes = producer_batch(&format!("v{i:02}"), 2);
        log.append(&mut bytes, i / 10, 0).await.unwrap();
    }
    log.flush().await.unwrap();
    let bases: Vec<i64> = log.segments().iter().map(|s| s.base_offset).collect();
    assert_eq!(bases, vec![0, 22, 44]);
    (log, bases)
}

/// Every record, read one offset at a time with small reads, as (offset, value).
async fn read_each(log: &Log) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1).await.unwrap();
        let (_, records) = crate::storage::batch::decode_records(&read.records).unwrap();
        let mut vals = values(&records);
        vals.retain(|(o, _)| *o >= offset);
        offset = vals.last().unwrap().0 + 1;
        out.extend(vals);
    }
    out
}

#[test]
fn recovery_truncates_a_torn_tail_to_the_last_whole_batch() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        append_n(&mut log, 3, 2).await;
        let whole = mem.bytes(SEGMENT);
        let torn = stored_batch("d", 2, 6);
        mem.with_file(SEGMENT, |f| f.extend_from_slice(&torn[..torn.len() / 2]))
            .unwrap();
        drop(log);

        let (mut log, report) = open(&disk, u64::MAX).await;
        assert_eq!(report.truncated_bytes, (torn.len() / 2) as u64);
        assert_eq!((report.log_end_offset, report.batches), (6, 3));
        let reason = report.reason.unwrap();
        assert!(
            reason.contains(&format!("at byte {}", whole.len())),
            "{reason}"
        );
        assert!(reason.contains("truncated batch"), "{reason}");
        assert!(reason.starts_with(SEGMENT), "{reason}");
        assert_eq!(mem.bytes(SEGMENT), whole);

        // No recovery-point checkpoint: what was recovered is not known durable.
        assert_eq!(log.unflushed_messages(), 6);
        let info = log.append(&mut producer_batch("d", 2), 6, 0).await.unwrap();
        assert_eq!((info.first_offset, info.log_end_offset), (6, 8));
    })
}

#[test]
fn recovery_truncates_at_garbage_a_corrupt_batch_or_an_offset_gap() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        let written = append_n(&mut log, 3, 2).await;
        drop(log);
        let first = written[0].len();

        // Garbage after the last batch.
        mem.with_file(SEGMENT, |f| f.extend_from_slice(&[0xAB; 100]))
            .unwrap();
        let (_, report) = open(&disk, u64::MAX).await;
        assert_eq!((report.truncated_bytes, report.log_end_offset), (100, 6));

        // A valid batch whose offsets go back. (One that skips ahead is kept: the log cleaner
        // leaves such gaps, and Kafka's recovery accepts them.)
        mem.with_file(SEGMENT, |f| f.extend_from_slice(&stored_batch("z", 1, 3)))
            .unwrap();
        let (_, report) = open(&disk, u64::MAX).await;
        assert_eq!(report.log_end_offset, 6);
        assert!(report
            .reason
            .unwrap()
            .contains("base offset 3, expected at least 6"));

        // A flipped byte in the second batch: it and everything after it go.
        mem.with_file(SEGMENT, |f| f[first + 40] ^= 0x10).unwrap();
        let (log, report) = open(&disk, u64::MAX).await;
        assert_eq!(
            report.truncated_bytes,
            (written[1].len() + written[2].len()) as u64
        );
        assert_eq!((report.log_end_offset, report.batches), (2, 1));
        assert!(report.reason.as_ref().unwrap().contains("CRC-32C mismatch"));
        assert_eq!(log.size_in_bytes(), first as u64);
        // The epoch cache follows the log.
        assert_eq!(mem.text(EPOCHS), "0\n1\n5 0\n");

        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(
            serde_json::from_str::<RecoveryReport>(&json).unwrap(),
            report
        );
    })
}

#[test]
fn segments_below_the_recovery_point_keep_their_indexes() {
    run(async {
        let (mem, disk) = disk();
        let (log, bases) = three_segments(&disk).await;
        let expected = read_each(&log).await;
        let index = mem.bytes(&segment_path(0, "index"));
        assert!(index.len() >= 16, "the test needs index entries");
        drop(log);

        let (log, report) = open_with(&disk, small_config()).await;
        assert_eq!(report.recovery_point_checkpoint, 60);
        let kept: Vec<(i64, bool, bool)> = report
            .segments
            .iter()
            .map(|s| (s.base_offset, s.validated, s.indexes_rebuilt))
            .collect();
        assert_eq!(
            kept,
            vec![
                (bases[0], false, false),
                (bases[1], false, false),
                (bases[2], true, true)
            ]
        );
        assert_eq!(
            report.batches, 8,
            "only the active segment was re-validated"
        );
        assert_eq!(mem.bytes(&segment_path(0, "index")), index);
        assert_eq!(read_each(&log).await, expected);
        assert_eq!(log.index_misses(), 0);
        assert_eq!(log.end_offset_for_epoch(1), (1, 40));
        let segments = log.segments();
        assert_eq!(segments[0].max_timestamp_ms, 1_001);
        assert_eq!(segments[1].next_offset, 44);
    })
}

#[test]
fn a_missing_or_corrupt_index_is_rebuilt_never_trusted() {
    type Damage = fn(&MemDisk);
    let damages: [(&str, Damage); 6] = [
        ("missing", |m| m.delete(&segment_path(0, "index"))),
        ("missing time index", |m| {
            m.delete(&segment_path(0, "timeindex"))
        }),
        ("torn entry", |m| {
            m.with_file(&segment_path(0, "index"), |f| f.truncate(f.len() - 3))
                .unwrap()
        }),
        ("entries out of order", |m| {
            m.with_file(&segment_path(0, "index"), |f| f.rotate_left(8))
                .unwrap()
        }),
        ("past the segment", |m| {
            m.with_file(&segment_path(0, "index"), |f| {
                let n = f.len();
                f[n - 8..n - 4].copy_from_slice(&500u32.to_be_bytes());
            })
            .unwrap()
        }),
        ("time index past the segment", |m| {
            m.with_file(&segment_path(0, "timeindex"), |f| {
                let n = f.len();
                f[n - 4..].copy_from_slice(&400u32.to_be_bytes());
            })
            .unwrap()
        }),
    ];
    for (what, damage) in damages {
        run(async {
            let (mem, disk) = disk();
            let (log, _) = three_segments(&disk).await;
            let expected = read_each(&log).await;
            let (index, time_index) = (
                mem.bytes(&segment_path(0, "index")),
                mem.bytes(&segment_path(0, "timeindex")),
            );
            drop(log);
            damage(&mem);
            let (log, report) = open_with(&disk, small_config()).await;
            let first = &report.segments[0];
            assert!(
                first.validated && first.indexes_rebuilt,
                "{what}: {first:?}"
            );
            assert!(first.index_problem.is_some(), "{what}");
            assert!(
                !report.segments[1].validated,
                "{what}: the next one is still trusted"
            );
            assert_eq!(mem.bytes(&segment_path(0, "index")), index, "{what}");
            assert_eq!(
                mem.bytes(&segment_path(0, "timeindex")),
                time_index,
                "{what}"
            );
            assert_eq!(read_each(&log).await, expected, "{what}");
            assert_eq!(log.log_end_offset(), 60, "{what}");
            assert_eq!(
                log.end_offset_for_epoch(0),
                (0, 20),
                "{what}: epochs untouched"
            );
        })
    }
}

#[test]
fn a_wrong_index_entry_that_passes_the_sanity_check_is_never_followed() {
    run(async {
        let (mem, disk) = disk();
        let (log, _) = three_segments(&disk).await;
        let expected = read_each(&log).await;
        drop(log);
        // Move the first entry's position 10 bytes back: still increasing, now inside a batch.
        mem.with_file(&segment_path(0, "index"), |f| {
            let position = u32::from_be_bytes(f[4..8].try_into().unwrap()) - 10;
            f[4..8].copy_from_slice(&position.to_be_bytes());
        })
        .unwrap();
        let (log, report) = open_with(&disk, small_config()).await;
        assert!(
            !report.segments[0].indexes_rebuilt,
            "the sanity check cannot see it"
        );
        assert_eq!(read_each(&log).await, expected);
        assert!(log.index_misses() > 0);
    })
}

#[test]
fn truncating_a_segment_whose_index_is_wrong_drops_the_wrong_entries() {
    run(async {
        let (mem, disk) = disk();
        let (log, _) = three_segments(&disk).await;
        let batch_3 = log.position_of(6).await.unwrap().unwrap().1;
        drop(log);
        // Entry 0 (offset 5, batch 2) now points past batch 3: still increasing, still sane.
        mem.with_file(&segment_path(0, "index"), |f| {
            f[4..8].copy_from_slice(&(batch_3 as u32 + 75).to_be_bytes())
        })
        .unwrap();
        let (mut log, _) = open_with(&disk, small_config()).await;
        log.truncate_to(6).await.unwrap();
        let index = log.segment(0).unwrap().offset_index();
        assert!(index.entries().all(|e| e.position < batch_3), "{index:?}");
        assert_eq!(mem.bytes(&segment_path(0, "index")), index.to_bytes());
        append_n(&mut log, 5, 2).await;
        assert_eq!(read_each(&log).await.len(), 16);
    })
}

#[test]
fn a_corrupt_byte_below_the_recovery_point_is_never_served() {
    run(async {
        let (mem, disk) = disk();
        let (log, _) = three_segments(&disk).await;
        let bytes = mem.bytes(SEGMENT);
        let third = log.position_of(4).await.unwrap().unwrap().1 as usize;
        drop(log);
        mem.with_file(SEGMENT, |f| f[third + 70] ^= 0x01).unwrap(); // in batch 4..=5's records
        assert_ne!(mem.bytes(SEGMENT), bytes);

        let (log, report) = open_with(&disk, small_config()).await;
        assert!(
            !report.segments[0].validated,
            "below the recovery point: not re-read"
        );
        let error = log.read(4, 1_000).await.unwrap_err();
        assert!(matches!(error, LogError::Corrupt(_)), "{error}");
        assert!(matches!(log.read(5, 1).await, Err(LogError::Corrupt(_))));
        // A read from before it stops before it; reads after it are whole.
        let read = log.read(0, 10_000).await.unwrap();
        assert_eq!(read.records.len(), third);
        assert!(log.read(6, 1).await.is_ok());
        assert!(log.read_all_records().await.is_err());
    })
}

#[test]
fn a_corrupt_byte_above_the_recovery_point_cuts_the_log_there() {
    run(async {
        let (mem, disk) = disk();
        let (log, bases) = three_segments(&disk).await;
        let at = log.position_of(30).await.unwrap().unwrap();
        assert_eq!(at.0, bases[1]);
        drop(log);
        mem.delete(RECOVERY_POINTS); // no checkpoint: everything is re-validated
        mem.with_file(&segment_path(bases[1], "log"), |f| {
            f[at.1 as usize + 30] ^= 0x80
        })
        .unwrap();

        let (log, report) = open_with(&disk, small_config()).await;
        assert_eq!(report.recovery_point_checkpoint, 0);
        assert!(report.segments.iter().all(|s| s.validated));
        assert_eq!(report.segments_deleted, vec![bases[2]]);
        assert!(report.reason.as_ref().unwrap().contains("CRC-32C mismatch"));
        assert_eq!(log.log_end_offset(), 30);
        assert!(!mem.names().contains(&segment_path(bases[2], "log")));
        assert!(!mem.names().contains(&segment_path(bases[2], "index")));
        assert_eq!(log.latest_epoch(), Some(1));
        assert_eq!(read_each(&log).await.len(), 30);
    })
}

#[test]
fn stray_files_are_removed() {
    run(async {
        let (mem, disk) = disk();
        let (log, _) = open(&disk, u64::MAX).await;
        drop(log);
        let orphans = [
            segment_path(77, "index"),
            segment_path(77, "timeindex"),
            format!("{EPOCHS}.tmp"),
        ];
        for orphan in &orphans {
            mem.put(orphan, b"junk");
        }
        let (_, report) = open(&disk, u64::MAX).await;
        let mut deleted = report.files_deleted.clone();
        deleted.sort();
        let mut expected = orphans.to_vec();
        expected.sort();
        assert_eq!(deleted, expected);
        assert!(orphans.iter().all(|o| !mem.names().contains(o)));
        mem.put(&format!("{DIR}/x.log"), b"");
        assert!(Log::open(disk.clone(), DIR, LogConfig::default(), 0)
            .await
            .is_err());
    })
}

#[test]
fn a_log_ending_below_its_checkpointed_start_starts_over_there() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        append_n(&mut log, 3, 2).await;
        drop(log);
        mem.put("log-start-offset-checkpoint", b"0\n1\norders 0 100\n");
        let (log, report) = open(&disk, u64::MAX).await;
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 100));
        assert_eq!(report.segments_deleted, vec![0]);
        assert!(log.leader_epochs().is_empty());
        assert!(mem.names().contains(&segment_path(100, "log")));
    })
}

#[test]
fn the_leader_epoch_cache_is_rebuilt_or_cut_to_the_log() {
    run(async {
        let (mem, disk) = disk();
        let (log, _) = three_segments(&disk).await;
        let text = mem.text(EPOCHS);
        assert_eq!(text, "0\n3\n0 0\n1 20\n2 40\n");
        drop(log);

        mem.delete(EPOCHS);
        let (log, report) = open_with(&disk, small_config()).await;
        assert!(report.leader_epochs_rebuilt);
        assert!(
            report.segments.iter().all(|s| s.validated),
            "rebuilt from every batch"
        );
        assert_eq!(mem.text(EPOCHS), text);
        drop(log);

        mem.put(EPOCHS, b"0\n2\n0 0\n1 x\n");
        let (_, report) = open_with(&disk, small_config()).await;
        assert!(report.leader_epochs_rebuilt && !report.problems.is_empty());
        assert_eq!(mem.text(EPOCHS), text);

        // Entries for offsets a crash lost are cut.
        mem.put(EPOCHS, b"0\n4\n0 0\n1 20\n2 40\n7 60\n");
        let (log, report) = open_with(&disk, small_config()).await;
        assert!(!report.leader_epochs_rebuilt);
        assert_eq!(mem.text(EPOCHS), text);
        assert_eq!(log.end_offset_for_epoch(1), (1, 40));
    })
}

#[test]
fn an_unreadable_recovery_point_checkpoint_means_full_recovery() {
    run(async {
        let (mem, disk) = disk();
        let (log, _) = three_segments(&disk).await;
        drop(log);
        mem.put(RECOVERY_POINTS, b"0\n2\norders 0 60\n");
        let (log, report) = open_with(&disk, small_config()).await;
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(report.segments.iter().all(|s| s.validated));
        assert_eq!(log.log_end_offset(), 60);
    })
}

/// A run of the log on `samsa-sim`'s page-cache disk, crashed after `flushed` of the `total`
/// appends were fsynced; returns the log end offset before and the report after.
fn crash_after(seed: u64, total: usize, flushed: usize) -> (Vec<u8>, i64, RecoveryReport) {
    let sim = Arc::new(Mutex::new(SimDisk::new(DiskConfig::default())));
    let disk = Disk::new(Arc::new(SimDiskBackend::new(
        sim.clone(),
        seed,
        Arc::new(|| 0),
    )));
    run(async {
        let (mut log, _) = open(&disk, u64::MAX).await;
        for i in 0..total {
            // 2 records of 300 bytes: batches straddle the 512-byte sectors a crash tears.
            let mut bytes = producer_batch(&"v".repeat(300), 2);
            log.append(&mut bytes, 1, 0).await.unwrap();
            if i + 1 == flushed {
                log.flush().await.unwrap();
            }
        }
        let written = sim.lock().unwrap().read_at(SEGMENT, 0, usize::MAX).unwrap();
        let before = log.log_end_offset();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        sim.lock().unwrap().crash(0, &mut rng);
        let (_, report) = open(&disk, u64::MAX).await;
        (written, before, report)
    })
}

#[test]
fn a_machine_crash_loses_at_most_the_unflushed_batches() {
    let mut torn_seen = false;
    for seed in 0..40 {
        let (written, before, report) = crash_after(seed, 5, 3);
        assert_eq!(before, 10);
        // Whatever was fsynced survives; the rest is lost whole or cut at a batch.
        assert!(report.log_end_offset >= 6, "seed {seed}: {report:?}");
        assert_eq!(report.log_end_offset % 2, 0, "seed {seed}: {report:?}");
        torn_seen |= report.truncated_bytes > 0;
        let batch_len = (written.len() / 5) as u64;
        assert!(
            report.truncated_bytes < batch_len,
            "seed {seed}: {report:?}"
        );

        let (_, before, report) = crash_after(seed, 5, 5);
        assert_eq!((report.log_end_offset, report.truncated_bytes), (before, 0));
    }
    assert!(
        torn_seen,
        "no seed tore a batch: the test no longer tests recovery"
    );
}
