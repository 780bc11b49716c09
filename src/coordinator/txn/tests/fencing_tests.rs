//! Fencing: a new producer session aborts the open transaction of the old one; a transaction
//! open past its timeout is aborted; the old producer is fenced either way. Markers that fail.

use super::support::*;
use crate::coordinator::txn::error_code::*;
use crate::coordinator::txn::TransactionState::*;
use crate::coordinator::txn::*;

const ORDERS: &[(&str, i32)] = &[("orders", 0), ("orders", 1)];

/// An Ongoing transaction of `ORDERS` since 1000, producer `PID` at epoch 0.
fn ongoing(transaction_version: u8) -> Harness {
    let mut h = Harness::new(transaction_version);
    assert_eq!(h.init_producer(), (PID, 0));
    h.now_ms = 1_000;
    assert_eq!(h.settled(add(PID, 0, ORDERS)), added(NONE, ORDERS));
    h
}

#[test]
fn init_producer_id_fences_an_open_transaction_and_the_old_producer() {
    let mut h = ongoing(2);
    h.now_ms = 5_000;
    // The new session's InitProducerId: the open transaction is aborted with the epoch fenced
    // (0 → 1) and bumped for the abort (→ 2, transaction version 2).
    let (init_id, out) = h.send(init(-1, -1));
    let mut abort = value(PrepareAbort, 2);
    abort.transaction_partitions = Some(vec![("orders".to_owned(), vec![0, 1])]);
    abort.transaction_start_timestamp_ms = 1_000;
    abort.transaction_last_update_timestamp_ms = 5_000;
    assert_eq!(records(&out), vec![record(abort)]);
    assert!(
        out.responses.is_empty(),
        "answered once the abort is written"
    );
    // The old producer is fenced from now on.
    assert_eq!(
        h.answer(add(PID, 0, &[("orders", 2)])),
        added(PRODUCER_FENCED, &[("orders", 2)])
    );

    let out = h.commit(&out);
    assert_eq!(
        out,
        TxnOutput {
            markers: vec![TxnMarker {
                transactional_id: TXN.to_owned(),
                producer_id: PID,
                producer_epoch: 2,
                committed: false,
                coordinator_epoch: EPOCH,
                transaction_version: 2,
                partitions: vec![tp("orders", 0), tp("orders", 1)],
            }],
            responses: vec![(init_id, init_response(CONCURRENT_TRANSACTIONS, -1, -1))],
            events: vec![event(Ongoing, PrepareAbort, 2)],
            ..TxnOutput::default()
        }
    );
    assert_eq!(
        h.answer(end(PID, 0, true)),
        end_response(PRODUCER_FENCED, -1, -1)
    );
    assert_eq!(
        h.answer(init(-1, -1)),
        init_response(CONCURRENT_TRANSACTIONS, -1, -1),
        "the retry waits for the markers"
    );
    h.settle(out);
    assert_eq!(h.state(), CompleteAbort);
    // The retry gets a new epoch; the old producer stays fenced.
    assert_eq!(h.settled(init(-1, -1)), init_response(NONE, PID, 3));
    assert_eq!(
        h.answer(end(PID, 0, true)),
        end_response(PRODUCER_FENCED, -1, -1)
    );
    assert_eq!(
        h.answer(add(PID, 0, &[("orders", 0)])),
        added(PRODUCER_FENCED, &[("orders", 0)])
    );
}

#[test]
fn under_transaction_version_1_the_fence_bumps_the_epoch_once() {
    let mut h = ongoing(1);
    let (init_id, out) = h.send(init(-1, -1));
    assert_eq!(records(&out)[0].value.as_ref().unwrap().producer_epoch, 1);
    let out = h.commit(&out);
    assert_eq!(
        out.responses,
        vec![(init_id, init_response(CONCURRENT_TRANSACTIONS, -1, -1))]
    );
    assert_eq!(out.markers[0].producer_epoch, 1);
    assert_eq!(
        h.answer(end(PID, 0, true)),
        end_response(PRODUCER_FENCED, -1, -1)
    );
    h.settle(out);
    assert_eq!(h.settled(init(-1, -1)), init_response(NONE, PID, 2));
}

#[test]
fn a_failed_fence_does_not_bump_the_epoch_again() {
    let mut h = ongoing(1);
    let (init_id, out) = h.send(init(-1, -1));
    let failed =
        h.c.append_failed(h.now_ms, out.appends[0].id, NOT_ENOUGH_REPLICAS);
    assert_eq!(
        failed.responses,
        vec![(init_id, init_response(COORDINATOR_NOT_AVAILABLE, -1, -1))]
    );
    let m = h.c.transaction(TXN).unwrap();
    assert_eq!(
        (m.state, m.producer_epoch, m.has_failed_epoch_fence),
        (Ongoing, 1, true)
    );
    let (_, out) = h.send(init(-1, -1));
    assert_eq!(records(&out)[0].value.as_ref().unwrap().producer_epoch, 1);
}

#[test]
fn a_transaction_open_past_its_timeout_is_aborted_with_a_fenced_epoch() {
    let mut h = ongoing(2);
    // The abort scan runs every 10 s from the load; the transaction (since 1000, 60 s) is
    // overdue at the scan of 70 s.
    assert_eq!(h.c.next_deadline_ms(), Some(10_000));
    assert_eq!(h.c.tick(60_000), TxnOutput::default());
    assert_eq!(h.c.next_deadline_ms(), Some(70_000));
    h.now_ms = 75_000;
    let out = h.c.tick(h.now_ms);
    let mut abort = value(PrepareAbort, 2);
    abort.transaction_partitions = Some(vec![("orders".to_owned(), vec![0, 1])]);
    abort.transaction_start_timestamp_ms = 1_000;
    abort.transaction_last_update_timestamp_ms = 70_000;
    assert_eq!(records(&out), vec![record(abort)]);
    assert!(out.responses.is_empty() && out.markers.is_empty());
    let all = h.settle(out);
    assert!(all.responses.is_empty(), "nobody waits for a timeout");
    assert_eq!(
        all.events,
        vec![
            event(Ongoing, PrepareAbort, 2),
            event(PrepareAbort, CompleteAbort, 2)
        ]
    );
    // The producer learns of it when it tries to go on.
    assert_eq!(
        h.answer(end(PID, 0, true)),
        end_response(PRODUCER_FENCED, -1, -1)
    );
    assert_eq!(
        h.answer(add(PID, 0, &[("orders", 0)])),
        added(PRODUCER_FENCED, &[("orders", 0)])
    );
}

#[test]
fn failed_markers_are_sent_again_and_a_deleted_partition_is_dropped() {
    let mut h = ongoing(2);
    let (_, out) = h.send(end(PID, 0, true));
    let out = h.commit(&out);
    let marker = out.markers[0].clone();
    let result = |i: usize, outcome| MarkerResult::of(&marker, &marker.partitions[i], outcome);
    let retry = h.c.marker_result(
        h.now_ms,
        &result(0, MarkerOutcome::Failed(NOT_LEADER_OR_FOLLOWER)),
    );
    assert_eq!(
        retry.markers,
        vec![TxnMarker {
            partitions: vec![tp("orders", 0)],
            ..marker.clone()
        }]
    );
    let out =
        h.c.marker_result(h.now_ms, &result(1, MarkerOutcome::PartitionDeleted));
    assert_eq!(out, TxnOutput::default());
    let out =
        h.c.marker_result(h.now_ms, &result(0, MarkerOutcome::Written));
    assert_eq!(records(&out).len(), 1, "CompleteCommit");
    h.settle(out);
    assert_eq!(h.state(), CompleteCommit);
}

#[test]
fn a_fenced_marker_stops_the_markers_of_its_transaction() {
    let mut h = ongoing(2);
    let (_, out) = h.send(end(PID, 0, false));
    let out = h.commit(&out);
    let marker = out.markers[0].clone();
    let fenced = MarkerResult::of(
        &marker,
        &marker.partitions[0],
        MarkerOutcome::Failed(TRANSACTION_COORDINATOR_FENCED),
    );
    assert_eq!(h.c.marker_result(h.now_ms, &fenced), TxnOutput::default());
    assert_eq!(h.c.pending_markers(TXN), None);
    let written = MarkerResult::of(&marker, &marker.partitions[1], MarkerOutcome::Written);
    assert_eq!(h.c.marker_result(h.now_ms, &written), TxnOutput::default());
    assert_eq!(h.state(), PrepareAbort, "left to the newer coordinator");
}
