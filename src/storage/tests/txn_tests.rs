//! The log's producer state and transactions: idempotent appends, markers, the transaction
//! index, the first unstable offset, and their survival through reopen, crash and truncation.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rand::SeedableRng;
use samsa_sim::disk::{DiskConfig, SimDisk};

use crate::storage::batch::{encode_batch, BatchSpec, Record};
use crate::storage::log::{Log, LogConfig, LogError};
use crate::storage::producer_state::ProducerError;
use crate::storage::tests::*;
use crate::storage::txn_index::AbortedTxn;
use crate::world::sim_disk::SimDiskBackend;
use crate::world::Disk;

const PID: i64 = 1000;
const OTHER: i64 = 2000;

/// A producer's batch of `count` records from sequence `seq`.
fn idempotent(pid: i64, epoch: i16, seq: i32, count: i32, transactional: bool) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            offset_delta: i,
            timestamp_delta: 0,
            key: None,
            value: Some(Bytes::from(format!("p{pid}-s{}", seq + i))),
            headers: vec![],
        })
        .collect();
    let spec = BatchSpec {
        base_timestamp: 1_000,
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        transactional,
        ..BatchSpec::default()
    };
    encode_batch(&spec, &records).to_vec()
}

async fn produce(
    log: &mut Log,
    pid: i64,
    seq: i32,
    count: i32,
    txn: bool,
) -> Result<(i64, i64, bool), LogError> {
    let mut bytes = idempotent(pid, 0, seq, count, txn);
    let info = log.append(&mut bytes, 1, 10).await?;
    Ok((info.first_offset, info.last_offset, info.duplicate))
}

async fn end_txn(log: &mut Log, pid: i64, commit: bool) -> i64 {
    let info = log
        .append_control_as_leader(pid, 0, 0, commit, 1, 20)
        .await
        .unwrap();
    assert_eq!(info.first_offset, info.last_offset);
    info.first_offset
}

fn snapshot_path(offset: i64) -> String {
    format!("{DIR}/{offset:020}.snapshot")
}

#[test]
fn a_retried_batch_is_answered_with_its_original_offsets_and_not_written() {
    run(async {
        let (_, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        assert_eq!(
            produce(&mut log, PID, 0, 3, false).await.unwrap(),
            (0, 2, false)
        );
        assert_eq!(
            produce(&mut log, PID, 3, 2, false).await.unwrap(),
            (3, 4, false)
        );
        assert_eq!(
            produce(&mut log, PID, 0, 3, false).await.unwrap(),
            (0, 2, true)
        );
        assert_eq!(log.log_end_offset(), 5);
        let err = produce(&mut log, PID, 7, 1, false).await.unwrap_err();
        assert!(matches!(
            err,
            LogError::Producer(ProducerError::OutOfOrderSequence { .. })
        ));
        assert_eq!(err.error_code(), 45);
        assert_eq!(log.log_end_offset(), 5, "a refused batch is not written");
        let entry = log.producer_state(PID).unwrap();
        assert_eq!(
            (
                entry.producer_epoch,
                entry.last_seq(),
                entry.last_data_offset()
            ),
            (0, 4, 4)
        );
    })
}

#[test]
fn an_older_epoch_and_client_control_batches_are_refused() {
    run(async {
        let (_, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        let mut bytes = idempotent(PID, 3, 0, 1, false);
        log.append(&mut bytes, 1, 0).await.unwrap();
        let mut zombie = idempotent(PID, 2, 1, 1, false);
        let err = log.append(&mut zombie, 1, 0).await.unwrap_err();
        assert_eq!(err.error_code(), 47);
        let mut control = crate::storage::control_record::encode_marker_batch(
            PID,
            3,
            crate::storage::control_record::EndTxnMarker {
                commit: true,
                coordinator_epoch: 0,
            },
            -1,
            0,
        );
        assert_eq!(
            log.append(&mut control, 1, 0)
                .await
                .unwrap_err()
                .error_code(),
            87
        );
        let mut no_sequence = idempotent(PID, 3, -1, 1, false);
        assert_eq!(
            log.append(&mut no_sequence, 1, 0)
                .await
                .unwrap_err()
                .error_code(),
            87
        );
        assert_eq!(log.log_end_offset(), 1);
    })
}

#[test]
fn dedup_survives_a_reopen() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        produce(&mut log, PID, 0, 2, false).await.unwrap();
        produce(&mut log, PID, 2, 2, false).await.unwrap();
        drop(log);
        let (mut log, report) = open(&disk, u64::MAX).await;
        assert!(report.problems.is_empty(), "{report:?}");
        // The rebuild snapshotted the state at the log end.
        assert!(mem.names().contains(&snapshot_path(4)), "{:?}", mem.names());
        assert_eq!(
            produce(&mut log, PID, 2, 2, false).await.unwrap(),
            (2, 3, true)
        );
        assert_eq!(
            produce(&mut log, PID, 0, 2, false).await.unwrap(),
            (0, 1, true)
        );
        drop(log);
        // From the snapshot alone only the last batch is known, as in Kafka.
        let (mut log, _) = open(&disk, u64::MAX).await;
        assert_eq!(
            produce(&mut log, PID, 2, 2, false).await.unwrap(),
            (2, 3, true)
        );
        assert_eq!(
            produce(&mut log, PID, 4, 1, false).await.unwrap(),
            (4, 4, false)
        );
    })
}

#[test]
fn a_roll_snapshots_the_state_at_the_new_segment_and_old_snapshots_go() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open_with(&disk, small_config()).await;
        for i in 0..40 {
            produce(&mut log, PID, i * 2, 2, false).await.unwrap();
        }
        let bases: Vec<i64> = log.segments().iter().map(|s| s.base_offset).collect();
        assert!(bases.len() >= 4, "{bases:?}");
        let snapshots: Vec<String> = mem
            .names()
            .into_iter()
            .filter(|n| n.ends_with(".snapshot"))
            .collect();
        // Kept: those at or above the second-to-last segment when the recovery point was last
        // checkpointed (the roll's flush), and the roll's own.
        let n = bases.len();
        let kept: Vec<String> = bases[n - 3..].iter().map(|&b| snapshot_path(b)).collect();
        assert_eq!(snapshots, kept);
        let decoded = crate::storage::producer_state::decode_snapshot(
            &mem.bytes(&snapshot_path(bases[n - 1])),
        )
        .unwrap();
        assert_eq!(decoded.len(), 1);
        assert_eq!(decoded[0].last_data_offset(), bases[n - 1] - 1);
        // Retention deleting a segment deletes its snapshot.
        log.delete_segments_below(bases[n - 1]).await.unwrap();
        assert!(!mem.names().contains(&snapshot_path(bases[n - 2])));
    })
}

#[test]
fn aborts_are_indexed_in_the_segment_of_their_marker() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        produce(&mut log, PID, 0, 2, true).await.unwrap(); // 0..=1
        produce(&mut log, OTHER, 0, 1, true).await.unwrap(); // 2
        assert_eq!(log.first_unstable_offset(), Some(0));
        assert_eq!(end_txn(&mut log, PID, false).await, 3);
        assert_eq!(
            log.first_unstable_offset(),
            Some(0),
            "the abort is not below the HW yet"
        );
        log.on_high_watermark_updated(4);
        assert_eq!(log.first_unstable_offset(), Some(2));
        assert_eq!(end_txn(&mut log, OTHER, true).await, 4);
        log.on_high_watermark_updated(5);
        assert_eq!(log.first_unstable_offset(), None);

        let expected = AbortedTxn {
            producer_id: PID,
            first_offset: 0,
            last_offset: 3,
            last_stable_offset: 2,
        };
        let mut file = Vec::new();
        file.extend_from_slice(&0i16.to_be_bytes());
        for v in [PID, 0, 3, 2] {
            file.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(
            mem.bytes(&format!("{DIR}/00000000000000000000.txnindex")),
            file
        );
        assert_eq!(log.collect_aborted_transactions(0, 5), vec![expected]);
        assert_eq!(log.collect_aborted_transactions(3, 5), vec![expected]);
        assert_eq!(log.collect_aborted_transactions(4, 5), vec![]);
        assert_eq!(log.collect_aborted_transactions(0, 0), vec![]);
        // The marker is a control batch of the producer's id and epoch.
        let read = log.read(3, 1).await.unwrap();
        let (header, records) = crate::storage::batch::decode_records(&read.records).unwrap();
        assert!(header.is_control() && header.is_transactional());
        assert_eq!((header.producer_id, header.base_sequence), (PID, -1));
        assert_eq!(records[0].key.as_deref(), Some(&[0u8, 0, 0, 0][..]));
        assert_eq!(records[0].value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 0][..]));
    })
}

#[test]
fn a_marker_from_a_fenced_coordinator_or_producer_epoch_is_refused() {
    run(async {
        let (_, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        let mut bytes = idempotent(PID, 2, 0, 1, true);
        log.append(&mut bytes, 1, 0).await.unwrap();
        log.append_control_as_leader(PID, 2, 5, false, 1, 0)
            .await
            .unwrap();
        let err = log
            .append_control_as_leader(PID, 2, 4, true, 1, 0)
            .await
            .unwrap_err();
        assert_eq!(err.error_code(), 52);
        let err = log
            .append_control_as_leader(PID, 1, 5, true, 1, 0)
            .await
            .unwrap_err();
        assert_eq!(err.error_code(), 47);
        assert_eq!(log.log_end_offset(), 2);
    })
}

#[test]
fn truncating_below_a_marker_opens_the_transaction_again() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        produce(&mut log, PID, 0, 2, true).await.unwrap();
        assert_eq!(end_txn(&mut log, PID, false).await, 2);
        produce(&mut log, OTHER, 0, 1, false).await.unwrap();
        log.on_high_watermark_updated(4);
        assert_eq!(log.first_unstable_offset(), None);
        log.truncate_to(2).await.unwrap();
        assert_eq!(log.first_unstable_offset(), Some(0));
        assert_eq!(
            log.producer_state(PID).unwrap().current_txn_first_offset,
            Some(0)
        );
        assert_eq!(log.producer_state(OTHER), None);
        assert_eq!(log.collect_aborted_transactions(0, 10), vec![]);
        assert_eq!(
            mem.bytes(&format!("{DIR}/00000000000000000000.txnindex")),
            Vec::<u8>::new()
        );
        // A snapshot above the new end is gone.
        assert!(mem
            .names()
            .iter()
            .all(|n| !n.ends_with(".snapshot") || n <= &snapshot_path(2)));
        // The transaction goes on.
        assert_eq!(
            produce(&mut log, PID, 2, 1, true).await.unwrap(),
            (2, 2, false)
        );
        assert_eq!(end_txn(&mut log, PID, true).await, 3);
        log.on_high_watermark_updated(4);
        assert_eq!(log.first_unstable_offset(), None);
    })
}

#[test]
fn reopening_rebuilds_open_transactions_and_lost_transaction_indexes() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        produce(&mut log, PID, 0, 2, true).await.unwrap();
        produce(&mut log, OTHER, 0, 1, true).await.unwrap();
        end_txn(&mut log, PID, false).await;
        let index = format!("{DIR}/00000000000000000000.txnindex");
        let before = mem.bytes(&index);
        drop(log);
        // No recovery point: the segment is re-validated and its index rebuilt from the batches.
        mem.put(&index, b"garbage");
        for name in mem.names() {
            if name.ends_with(".snapshot") {
                mem.delete(&name);
            }
        }
        let (log, report) = open(&disk, u64::MAX).await;
        assert!(report.segments[0].validated);
        assert_eq!(mem.bytes(&index), before);
        assert_eq!(
            log.first_unstable_offset(),
            Some(0),
            "aborted, but not below a HW yet"
        );
        assert_eq!(
            log.producer_state(OTHER).unwrap().current_txn_first_offset,
            Some(2)
        );
        let mut log = log;
        log.on_high_watermark_updated(4);
        assert_eq!(log.first_unstable_offset(), Some(2));
    })
}

#[test]
fn a_follower_builds_the_same_state_and_index_as_its_leader() {
    run(async {
        let (_, leader_disk) = disk();
        let (mut leader, _) = open(&leader_disk, u64::MAX).await;
        produce(&mut leader, PID, 0, 2, true).await.unwrap();
        produce(&mut leader, OTHER, 0, 1, false).await.unwrap();
        end_txn(&mut leader, PID, false).await;
        let records = leader.read(0, usize::MAX).await.unwrap().records;
        let (_, follower_disk) = disk();
        let (mut follower, _) = open(&follower_disk, u64::MAX).await;
        follower.append_as_follower(&records, 0).await.unwrap();
        assert_eq!(
            follower.collect_aborted_transactions(0, 10),
            leader.collect_aborted_transactions(0, 10)
        );
        for pid in [PID, OTHER] {
            assert_eq!(follower.producer_state(pid), leader.producer_state(pid));
        }
        assert_eq!(follower.first_unstable_offset(), Some(0));
    })
}

/// Idempotent appends on `samsa-sim`'s page-cache disk, flushed after `flushed` of `total`
/// batches, then a machine crash.
fn crash_after(seed: u64, total: i32, flushed: i32) -> (i64, Vec<(i64, i64, bool)>) {
    // Returns the log end after the crash, and the answers to retrying the last surviving batch
    // and every lost one.
    let sim = Arc::new(Mutex::new(SimDisk::new(DiskConfig::default())));
    let disk = Disk::new(Arc::new(SimDiskBackend::new(
        sim.clone(),
        seed,
        Arc::new(|| 0),
    )));
    let config = LogConfig {
        recovery_point_checkpoint_interval_ms: 0,
        ..small_config()
    };
    run(async {
        let (mut log, _) = open_with(&disk, config).await;
        for i in 0..total {
            produce(&mut log, PID, i * 2, 2, false).await.unwrap();
            if i + 1 == flushed {
                log.flush().await.unwrap();
            }
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        sim.lock().unwrap().crash(0, &mut rng);
        let (mut log, _) = open_with(&disk, config).await;
        let end = log.log_end_offset();
        let mut retries = Vec::new();
        for i in (end / 2 - 1) as i32..total {
            match produce(&mut log, PID, i * 2, 2, false).await {
                Ok(r) => retries.push(r),
                Err(e) => panic!("seed {seed}: retry of batch {i}: {e}"),
            }
        }
        (end, retries)
    })
}

#[test]
fn after_a_crash_the_state_matches_what_survived() {
    let mut lost_seen = false;
    for seed in 0..20 {
        let (end, retries) = crash_after(seed, 30, 20);
        lost_seen |= end < 60;
        assert!(end >= 40 && end % 2 == 0, "seed {seed}: {end}");
        // The last surviving batch is a duplicate; the lost ones are appended again, in order.
        let survived = end / 2;
        for (i, (first, last, duplicate)) in (survived - 1..).zip(retries) {
            assert_eq!(
                (first, last, duplicate),
                (i * 2, i * 2 + 1, i < survived),
                "seed {seed}"
            );
        }
    }
    assert!(
        lost_seen,
        "no seed lost a batch: the test no longer tests a crash"
    );
}

/// Transactions of `PID` in segments of 1000 bytes, every other one aborted, flushed: the
/// segments below the active one are trusted on the next open.
async fn aborted_transactions_in_segments(disk: &Disk) -> Log {
    let (mut log, _) = open_with(disk, small_config()).await;
    for i in 0..12 {
        produce(&mut log, PID, i * 2, 2, true).await.unwrap();
        end_txn(&mut log, PID, i % 2 == 1).await;
    }
    log.flush().await.unwrap();
    assert!(log.segments().len() >= 3, "{:?}", log.segments());
    log
}

#[test]
fn a_trusted_transaction_index_that_fails_its_sanity_check_is_rebuilt() {
    run(async {
        let (mem, disk) = disk();
        let log = aborted_transactions_in_segments(&disk).await;
        let aborted = log.collect_aborted_transactions(0, log.log_end_offset());
        assert_eq!(aborted.len(), 6);
        drop(log);
        let index = format!("{DIR}/00000000000000000000.txnindex");
        let before = mem.bytes(&index);
        assert!(!before.is_empty());
        mem.with_file(&index, |f| f.extend_from_slice(b"xyz"))
            .unwrap();
        let (log, report) = open_with(&disk, small_config()).await;
        assert!(!report.segments[0].validated, "{report:?}");
        assert!(
            report.problems.iter().any(|p| p.contains("txnindex")),
            "{report:?}"
        );
        assert_eq!(mem.bytes(&index), before);
        assert_eq!(
            log.collect_aborted_transactions(0, log.log_end_offset()),
            aborted
        );
    })
}

#[test]
fn a_corrupt_snapshot_is_skipped_for_an_older_one_or_the_batches() {
    run(async {
        let (mem, disk) = disk();
        let log = aborted_transactions_in_segments(&disk).await;
        let expected = log.producer_state(PID).cloned();
        let active = log.segments().last().unwrap().base_offset;
        drop(log);
        let (log, _) = open_with(&disk, small_config()).await;
        let summary = |e: &crate::storage::producer_state::ProducerStateEntry| {
            (
                e.producer_epoch,
                e.last_seq(),
                e.last_data_offset(),
                e.current_txn_first_offset,
            )
        };
        let expected = summary(&expected.unwrap());
        // A snapshot keeps only the last batch of the producer, as Kafka's does.
        assert_eq!(log.producer_state(PID).map(summary), Some(expected));
        drop(log);
        // The snapshot recovery starts from (the active segment's, which is re-validated) is
        // corrupt: an older one and the batches after it do.
        mem.with_file(&snapshot_path(active), |f| f[12] ^= 0xff)
            .unwrap();
        let (log, report) = open_with(&disk, small_config()).await;
        assert!(
            report.problems.iter().any(|p| p.contains("CRC")),
            "{report:?}"
        );
        assert_eq!(log.producer_state(PID).map(summary), Some(expected));
        // The replayed markers wait for the high watermark, as after any open.
        let mut log = log;
        let end = log.log_end_offset();
        log.on_high_watermark_updated(end);
        assert_eq!(log.first_unstable_offset(), None);
    })
}
