//! Loading and unloading: a new coordinator replays the partition's log, finishes the
//! transactions left in PrepareCommit or PrepareAbort and keeps the open ones; the old one
//! answers what waited NOT_COORDINATOR.

use super::support::*;
use crate::coordinator::txn::error_code::*;
use crate::coordinator::txn::TransactionState::*;
use crate::coordinator::txn::*;

/// The log as it would come back from `__transaction_state`: through its bytes.
fn through_bytes(log: &[TxnRecord]) -> Vec<TxnRecord> {
    log.iter()
        .map(|r| {
            let value = r.encode_value();
            TxnRecord::decode(&r.encode_key(), value.as_deref()).unwrap()
        })
        .collect()
}

#[test]
fn a_new_coordinator_resends_the_markers_of_a_prepared_commit() {
    let mut a = Harness::new(2);
    let (pid, epoch) = a.init_producer();
    a.settled(add(pid, epoch, &[("orders", 0), ("orders", 1)]));
    a.settled(add_offsets(pid, epoch));
    let (_, out) = a.send(end(pid, epoch, true));
    let out = a.commit(&out);
    let old_marker = out.markers[0].clone();
    let written = MarkerResult::of(&old_marker, &tp("orders", 0), MarkerOutcome::Written);
    assert_eq!(a.c.marker_result(0, &written), TxnOutput::default());

    // A fails over to B at the next leader epoch: B finds PrepareCommit and writes every marker
    // of it again (a partition that has its marker gets a duplicate, which its leader ignores).
    let log = through_bytes(&a.log);
    let (mut b, out) = Harness::loaded(2, &log, EPOCH + 1, 10_000);
    let marker = TxnMarker {
        coordinator_epoch: EPOCH + 1,
        ..old_marker.clone()
    };
    assert_eq!(
        out,
        TxnOutput {
            markers: vec![marker.clone()],
            ..TxnOutput::default()
        }
    );
    assert_eq!(
        marker.partitions,
        vec![
            tp(OFFSETS_TOPIC, GROUP_PARTITION),
            tp("orders", 0),
            tp("orders", 1)
        ]
    );
    assert_eq!(b.state(), PrepareCommit);
    // A's results are of an older coordinator epoch: ignored.
    let stale = MarkerResult::of(&old_marker, &tp("orders", 1), MarkerOutcome::Written);
    assert_eq!(b.c.marker_result(10_000, &stale), TxnOutput::default());
    // The producer's retried EndTxn waits, then is answered as before the failover.
    assert_eq!(
        b.answer(end(pid, epoch, true)),
        end_response(CONCURRENT_TRANSACTIONS, -1, -1)
    );
    let all = b.settle(out);
    assert_eq!(all.events, vec![event(PrepareCommit, CompleteCommit, 1)]);
    assert_eq!(b.answer(end(pid, epoch, true)), end_response(NONE, pid, 1));

    // A learns it is no longer the coordinator.
    assert_eq!(a.c.unload(), TxnOutput::default());
    assert_eq!(
        a.answer(end(pid, epoch, true)),
        end_response(NOT_COORDINATOR, -1, -1)
    );
}

#[test]
fn an_open_transaction_survives_the_load_until_its_timeout() {
    let mut a = Harness::new(2);
    let (pid, epoch) = a.init_producer();
    a.settled(add(pid, epoch, &[("orders", 0)]));
    let (mut b, out) = Harness::loaded(2, &through_bytes(&a.log), EPOCH + 1, 30_000);
    assert_eq!(out, TxnOutput::default());
    assert_eq!(
        b.c.transaction(TXN),
        a.c.transaction(TXN),
        "the same metadata"
    );
    assert_eq!(b.state(), Ongoing);
    // The producer goes on with it.
    b.now_ms = 30_000;
    assert_eq!(b.settled(end(pid, epoch, true)), end_response(NONE, pid, 1));
    assert_eq!(b.state(), CompleteCommit);
}

#[test]
fn unloading_answers_what_waits_and_loading_refuses_requests() {
    let mut h = Harness::new(2);
    let (pid, epoch) = h.init_producer();
    let (add_id, pending) = h.send(add(pid, epoch, &[("orders", 0)]));
    let out = h.c.unload();
    assert_eq!(
        out.responses,
        vec![(add_id, added(NOT_COORDINATOR, &[("orders", 0)]))]
    );
    assert!(!h.c.is_active());
    // The append's outcome comes late: it belongs to the old epoch.
    assert_eq!(
        h.c.append_committed(0, pending.appends[0].id),
        TxnOutput::default()
    );
    assert_eq!(
        h.answer(init(-1, -1)),
        init_response(NOT_COORDINATOR, -1, -1)
    );
    h.c.begin_load(EPOCH + 1);
    assert_eq!(
        h.answer(end(pid, epoch, true)),
        end_response(COORDINATOR_LOAD_IN_PROGRESS, -1, -1)
    );
    for record in &h.log.clone() {
        h.c.replay(record);
    }
    assert_eq!(h.c.complete_load(0), TxnOutput::default());
    assert_eq!(h.state(), Empty);
    assert_eq!(
        h.settled(add(pid, epoch, &[("orders", 0)])),
        added(NONE, &[("orders", 0)])
    );
}

#[test]
fn an_unused_transactional_id_expires_with_a_tombstone() {
    let mut h = Harness::new(2);
    h.init_producer();
    let week_ms = 604_800_000;
    assert_eq!(h.c.tick(week_ms - 1), TxnOutput::default());
    h.now_ms = week_ms;
    let out = h.c.tick(week_ms);
    assert_eq!(
        records(&out),
        vec![TxnRecord {
            transactional_id: TXN.to_owned(),
            value: None
        }]
    );
    assert_eq!(
        h.commit(&out).events,
        vec![TxnEvent {
            transactional_id: TXN.to_owned(),
            producer_id: PID,
            producer_epoch: 0,
            from: Empty,
            to: Dead,
        }]
    );
    assert_eq!(h.c.transaction(TXN), None);
    // Loading the log with its tombstone finds nothing either.
    let (b, _) = Harness::loaded(2, &through_bytes(&h.log), EPOCH + 1, week_ms);
    assert_eq!(b.c.transaction(TXN), None);
}
