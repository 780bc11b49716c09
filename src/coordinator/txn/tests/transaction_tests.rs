//! Transactions from InitProducerId to CompleteCommit, by the exact output of every step; the
//! epochs of transaction versions 1 and 2, and retried EndTxns.

use super::support::*;
use crate::coordinator::txn::error_code::*;
use crate::coordinator::txn::TransactionState::*;
use crate::coordinator::txn::*;

const ORDERS: &[(&str, i32)] = &[("orders", 0), ("orders", 1)];

#[test]
fn a_transaction_of_two_partitions_and_offsets_commits() {
    let mut h = Harness::new(2);

    // InitProducerId: a producer id from the source, epoch 0, written before it is answered.
    let (init_id, out) = h.send(init(-1, -1));
    let mut empty = value(Empty, 0);
    empty.client_transaction_version = 0;
    assert_eq!(
        out,
        TxnOutput {
            appends: vec![TxnAppend {
                id: AppendId(0),
                record: record(empty),
            }],
            ..TxnOutput::default()
        }
    );
    assert_eq!(h.c.transaction(TXN).unwrap().pending_state, Some(Empty));
    assert_eq!(
        h.commit(&out),
        TxnOutput {
            responses: vec![(init_id, init_response(NONE, PID, 0))],
            events: vec![event(Empty, Empty, 0)],
            ..TxnOutput::default()
        }
    );

    // Two partitions, then the group's offsets partition: Ongoing since 1000.
    h.now_ms = 1_000;
    let (add_id, out) = h.send(add(PID, 0, ORDERS));
    let mut ongoing = value(Ongoing, 0);
    ongoing.transaction_partitions = Some(vec![("orders".to_owned(), vec![0, 1])]);
    ongoing.transaction_start_timestamp_ms = 1_000;
    ongoing.transaction_last_update_timestamp_ms = 1_000;
    assert_eq!(records(&out), vec![record(ongoing.clone())]);
    assert_eq!(
        h.commit(&out),
        TxnOutput {
            responses: vec![(add_id, added(NONE, ORDERS))],
            events: vec![event(Empty, Ongoing, 0)],
            ..TxnOutput::default()
        }
    );
    let (offsets_id, out) = h.send(add_offsets(PID, 0));
    let partitions = vec![
        (OFFSETS_TOPIC.to_owned(), vec![GROUP_PARTITION]),
        ("orders".to_owned(), vec![0, 1]),
    ];
    ongoing.transaction_partitions = Some(partitions.clone());
    assert_eq!(records(&out), vec![record(ongoing)]);
    let done = h.commit(&out);
    assert_eq!(
        done.responses,
        vec![(offsets_id, TxnResponse::AddOffsetsToTxn(NONE))]
    );
    // Partitions already in the transaction are answered at once.
    assert_eq!(
        h.answer(add(PID, 0, &[("orders", 1)])),
        added(NONE, &[("orders", 1)])
    );

    // EndTxn(commit): PrepareCommit with the epoch bumped (transaction version 2); answered
    // once written, with the new epoch; then a marker to every partition.
    h.now_ms = 2_000;
    let (end_id, out) = h.send(end(PID, 0, true));
    let mut prepare = value(PrepareCommit, 1);
    prepare.transaction_partitions = Some(partitions);
    prepare.transaction_start_timestamp_ms = 1_000;
    prepare.transaction_last_update_timestamp_ms = 2_000;
    assert_eq!(
        out,
        TxnOutput {
            appends: vec![TxnAppend {
                id: AppendId(3),
                record: record(prepare.clone()),
            }],
            ..TxnOutput::default()
        }
    );
    let marker = TxnMarker {
        transactional_id: TXN.to_owned(),
        producer_id: PID,
        producer_epoch: 1,
        committed: true,
        coordinator_epoch: EPOCH,
        transaction_version: 2,
        partitions: vec![
            tp(OFFSETS_TOPIC, GROUP_PARTITION),
            tp("orders", 0),
            tp("orders", 1),
        ],
    };
    let out = h.commit(&out);
    assert_eq!(
        out,
        TxnOutput {
            markers: vec![marker.clone()],
            responses: vec![(end_id, end_response(NONE, PID, 1))],
            events: vec![event(Ongoing, PrepareCommit, 1)],
            ..TxnOutput::default()
        }
    );
    // While the markers are written, the transaction is busy.
    assert_eq!(
        h.answer(end(PID, 1, true)),
        end_response(PRODUCER_FENCED, -1, -1),
        "epoch 1 is the next transaction's: not a retry while PrepareCommit"
    );
    assert_eq!(
        h.answer(add(PID, 1, &[("orders", 0)])),
        added(CONCURRENT_TRANSACTIONS, &[("orders", 0)])
    );

    // Each written marker takes its partition out; the last one completes the transaction.
    let written = |tp: &TopicPartition| MarkerResult::of(&marker, tp, MarkerOutcome::Written);
    assert_eq!(
        h.c.marker_result(2_000, &written(&marker.partitions[0])),
        TxnOutput::default()
    );
    assert_eq!(
        h.c.marker_result(2_000, &written(&marker.partitions[1])),
        TxnOutput::default()
    );
    assert_eq!(h.c.pending_markers(TXN), Some(vec![tp("orders", 1)]));
    let out = h.c.marker_result(2_000, &written(&marker.partitions[2]));
    let mut complete = prepare;
    complete.transaction_status = CompleteCommit;
    complete.transaction_partitions = Some(vec![]);
    assert_eq!(
        out,
        TxnOutput {
            appends: vec![TxnAppend {
                id: AppendId(4),
                record: record(complete),
            }],
            ..TxnOutput::default()
        }
    );
    assert_eq!(
        h.commit(&out),
        TxnOutput {
            events: vec![event(PrepareCommit, CompleteCommit, 1)],
            ..TxnOutput::default()
        }
    );
    assert_eq!(h.state(), CompleteCommit);
    // A duplicate marker result changes nothing.
    assert_eq!(
        h.c.marker_result(2_000, &written(&marker.partitions[0])),
        TxnOutput::default()
    );
}

#[test]
fn transaction_version_2_bumps_the_epoch_at_every_end_and_recognizes_a_retry() {
    let mut h = Harness::new(2);
    let (pid, epoch) = h.init_producer();
    assert_eq!((pid, epoch), (PID, 0));
    h.settled(add(pid, 0, ORDERS));
    let (end_id, out) = h.send(end(pid, 0, true));
    let markers = h.commit(&out);
    assert_eq!(
        markers.responses,
        vec![(end_id, end_response(NONE, pid, 1))]
    );

    // The answer was lost: the retry, with epoch 0, waits while the markers are written...
    assert_eq!(
        h.answer(end(pid, 0, true)),
        end_response(CONCURRENT_TRANSACTIONS, -1, -1)
    );
    h.settle(markers);
    assert_eq!(h.state(), CompleteCommit);
    // ... and is answered the same once they are, with the epoch to go on with.
    assert_eq!(h.answer(end(pid, 0, true)), end_response(NONE, pid, 1));
    assert_eq!(
        h.answer(end(pid, 0, false)),
        end_response(INVALID_TXN_STATE, -1, -1),
        "a retried abort of a committed transaction"
    );
    assert_eq!(
        h.answer(end(pid, 1, true)),
        end_response(INVALID_TXN_STATE, -1, -1),
        "a commit with nothing open"
    );
    // A late EndTxn of an older transaction cannot end this one.
    h.settled(add(pid, 1, &[("orders", 0)]));
    assert_eq!(
        h.answer(end(pid, 0, true)),
        end_response(PRODUCER_FENCED, -1, -1)
    );
    assert_eq!(h.settled(end(pid, 1, false)), end_response(NONE, pid, 2));
    assert_eq!(h.state(), CompleteAbort);
    // KIP-890: an abort with nothing open is allowed (a client unsure of the state), and bumps.
    let (_, out) = h.send(end(pid, 2, false));
    let mut abort = value(PrepareAbort, 3);
    abort.transaction_start_timestamp_ms = 0;
    assert_eq!(records(&out), vec![record(abort)]);
    let out = h.commit(&out);
    assert!(out.markers.is_empty(), "no partition, no marker: {out:?}");
    assert_eq!(records(&out).len(), 1, "CompleteAbort at once");
    h.settle(out);
    assert_eq!(h.state(), CompleteAbort);
    assert_eq!(h.c.transaction(TXN).unwrap().producer_epoch, 3);
}

#[test]
fn transaction_version_1_keeps_the_epoch_and_answers_after_the_prepare_record() {
    let mut h = Harness::new(1);
    let (pid, epoch) = h.init_producer();
    h.settled(add(pid, epoch, ORDERS));
    let (end_id, out) = h.send(end(pid, epoch, true));
    let prepared = records(&out);
    assert_eq!(prepared[0].value.as_ref().unwrap().producer_epoch, 0);
    assert_eq!(
        prepared[0]
            .value
            .as_ref()
            .unwrap()
            .client_transaction_version,
        0
    );
    let markers = h.commit(&out);
    assert_eq!(
        markers.responses,
        vec![(end_id, end_response(NONE, -1, -1))]
    );
    assert_eq!(markers.markers[0].producer_epoch, 0);
    h.settle(markers);
    // A retry is recognized by the state: the same epoch commits nothing new.
    assert_eq!(h.answer(end(pid, 0, true)), end_response(NONE, -1, -1));
    assert_eq!(
        h.answer(end(pid, 0, false)),
        end_response(INVALID_TXN_STATE, -1, -1)
    );
    // The next transaction runs at the same epoch: a late EndTxn(commit) of the last one would
    // commit it (the anomaly KIP-890 removes).
    h.settled(add(pid, 0, &[("orders", 0)]));
    assert_eq!(h.settled(end(pid, 0, true)), end_response(NONE, -1, -1));
    assert_eq!(h.c.transaction(TXN).unwrap().producer_epoch, 0);
}

#[test]
fn a_concurrent_request_waits_for_the_pending_transition() {
    let mut h = Harness::new(2);
    let (pid, epoch) = h.init_producer();
    let (add_id, out) = h.send(add(pid, epoch, &[("orders", 0)]));
    assert_eq!(
        h.answer(add(pid, epoch, &[("orders", 1)])),
        added(CONCURRENT_TRANSACTIONS, &[("orders", 1)])
    );
    assert_eq!(
        h.answer(end(pid, epoch, true)),
        end_response(CONCURRENT_TRANSACTIONS, -1, -1)
    );
    assert_eq!(
        h.answer(init(-1, -1)),
        init_response(CONCURRENT_TRANSACTIONS, -1, -1)
    );
    // The append fails: the transition is dropped, the request gets the coordinator's error.
    let out =
        h.c.append_failed(h.now_ms, out.appends[0].id, NOT_LEADER_OR_FOLLOWER);
    assert_eq!(
        out.responses,
        vec![(add_id, added(NOT_COORDINATOR, &[("orders", 0)]))]
    );
    assert_eq!(h.state(), Empty);
    assert_eq!(h.c.transaction(TXN).unwrap().pending_state, None);
}

#[test]
fn requests_are_checked_before_anything_is_written() {
    let mut h = Harness::new(2);
    let (pid, epoch) = h.init_producer();
    assert_eq!(
        h.answer(add(pid + 1, epoch, &[("orders", 0)])),
        added(INVALID_PRODUCER_ID_MAPPING, &[("orders", 0)])
    );
    assert_eq!(
        h.answer(add(pid, epoch + 1, &[("orders", 0)])),
        added(PRODUCER_FENCED, &[("orders", 0)])
    );
    assert_eq!(
        h.answer(end(pid, epoch, true)),
        end_response(INVALID_TXN_STATE, -1, -1),
        "nothing to commit"
    );
    let mut long = init(-1, -1);
    let TxnRequest::InitProducerId(r) = &mut long else {
        unreachable!()
    };
    r.transaction_timeout_ms = 900_001;
    assert_eq!(
        h.answer(long),
        init_response(INVALID_TRANSACTION_TIMEOUT, -1, -1)
    );
    // An id of another partition of `__transaction_state`.
    let mut other = end(pid, epoch, true);
    let TxnRequest::EndTxn(r) = &mut other else {
        unreachable!()
    };
    r.transactional_id = "t2".to_owned();
    assert_eq!(h.answer(other), end_response(NOT_COORDINATOR, -1, -1));
    // A transactional id never initialized.
    let mut unknown = add(pid, epoch, &[("orders", 0)]);
    let TxnRequest::AddPartitionsToTxn(r) = &mut unknown else {
        unreachable!()
    };
    r.transactional_id = "tc".to_owned();
    assert_eq!(partition_for("tc", 50), TXN_PARTITION);
    let TxnResponse::AddPartitionsToTxn(result) = h.answer(unknown) else {
        panic!()
    };
    assert_eq!(
        result.topic_results[0].1,
        vec![(0, INVALID_PRODUCER_ID_MAPPING)]
    );
}

#[test]
fn kip_360_init_producer_id_with_the_current_or_previous_epoch() {
    let mut h = Harness::new(2);
    let (pid, epoch) = h.init_producer();
    // The producer gives its epoch: bumped.
    assert_eq!(h.settled(init(pid, epoch)), init_response(NONE, pid, 1));
    // A retry of that call (its answer lost) gives the previous epoch: the current one back.
    assert_eq!(h.settled(init(pid, 0)), init_response(NONE, pid, 1));
    // Any other epoch was fenced.
    assert_eq!(
        h.answer(init(pid, 7)),
        init_response(PRODUCER_FENCED, -1, -1)
    );
    assert_eq!(
        h.answer(init(pid + 5, 1)),
        init_response(PRODUCER_FENCED, -1, -1)
    );
    // Without an epoch, a new session: bumped, and the previous epoch forgotten.
    assert_eq!(h.settled(init(-1, -1)), init_response(NONE, pid, 2));
    assert_eq!(
        h.answer(init(pid, 1)),
        init_response(PRODUCER_FENCED, -1, -1)
    );
}

#[test]
fn an_exhausted_epoch_moves_to_a_new_producer_id() {
    let mut h = Harness::new(1);
    let (pid, _) = h.init_producer();
    let m = h.c.transactions.get_mut(TXN).unwrap();
    (m.producer_epoch, m.last_producer_epoch) = (i16::MAX - 1, i16::MAX - 2);
    // KIP-360: a retry of the bump that reached the last epoch gets it back; another epoch is
    // fenced; the current one moves to a new producer id.
    let retry = init_response(NONE, pid, i16::MAX - 1);
    assert_eq!(h.settled(init(pid, i16::MAX - 2)), retry);
    assert_eq!(
        h.answer(init(pid, 3)),
        init_response(PRODUCER_FENCED, -1, -1)
    );
    assert_eq!(h.settled(init(-1, -1)), init_response(NONE, pid + 1, 0));
    let m = h.c.transaction(TXN).unwrap();
    assert_eq!((m.producer_id, m.prev_producer_id), (pid + 1, pid));
}

#[test]
fn a_partition_leader_verifies_that_a_partition_is_in_the_transaction() {
    let mut h = Harness::new(2);
    let (pid, epoch) = h.init_producer();
    h.settled(add(pid, epoch, &[("orders", 0)]));
    let mut verify = add_request(pid, epoch, &[("orders", 0), ("orders", 1)]);
    verify.verify_only = true;
    let response = h.answer(TxnRequest::AddPartitionsToTxn(verify.clone()));
    let TxnResponse::AddPartitionsToTxn(result) = response else {
        panic!()
    };
    assert_eq!(
        result.topic_results,
        vec![(
            "orders".to_owned(),
            vec![(0, NONE), (1, TRANSACTION_ABORTABLE)]
        )]
    );
    assert_eq!(h.state(), Ongoing, "verifying adds nothing");
    verify.producer_epoch = epoch + 1;
    let TxnResponse::AddPartitionsToTxn(result) = h.answer(TxnRequest::AddPartitionsToTxn(verify))
    else {
        panic!()
    };
    assert_eq!(
        result.topic_results[0].1,
        vec![(0, PRODUCER_FENCED), (1, PRODUCER_FENCED)]
    );
}

#[test]
fn transaction_version_2_moves_to_the_next_producer_id_when_the_epoch_is_exhausted() {
    let mut h = Harness::new(2);
    let (pid, _) = h.init_producer();
    let last = i16::MAX - 1;
    h.c.transactions.get_mut(TXN).unwrap().producer_epoch = last;
    h.settled(add(pid, last, &[("orders", 0)]));
    let (end_id, out) = h.send(end(pid, last, true));
    let prepare = records(&out)[0].value.clone().unwrap();
    assert_eq!(
        (prepare.producer_epoch, prepare.next_producer_id),
        (i16::MAX, pid + 1),
        "the last epoch, and the id to go on with"
    );
    let out = h.commit(&out);
    // The client sees MAX - 1 followed by epoch 0 of the next producer id.
    assert_eq!(
        out.responses,
        vec![(end_id, end_response(NONE, pid + 1, 0))]
    );
    h.settle(out);
    let m = h.c.transaction(TXN).unwrap();
    assert_eq!(
        (m.state, m.producer_id, m.producer_epoch, m.prev_producer_id),
        (CompleteCommit, pid + 1, 0, pid)
    );
    // A retry with the old id and epoch is recognized.
    assert_eq!(
        h.answer(end(pid, last, true)),
        end_response(NONE, pid + 1, 0)
    );
    assert_eq!(
        h.settled(add(pid + 1, 0, &[("orders", 0)])),
        added(NONE, &[("orders", 0)])
    );
}

#[test]
fn a_driver_passes_a_producer_id_fetched_ahead() {
    let mut h = Harness::new(2);
    let mut spare = None;
    let out = h.c.handle(
        0,
        RequestId(1),
        init(-1, -1),
        &mut SpareProducerId(&mut spare),
    );
    assert_eq!(
        out.responses,
        vec![(
            RequestId(1),
            init_response(COORDINATOR_LOAD_IN_PROGRESS, -1, -1)
        )]
    );
    assert_eq!(h.c.transaction(TXN), None, "nothing created without an id");
    let mut spare = Some(77);
    let out = h.c.handle(
        0,
        RequestId(2),
        init(-1, -1),
        &mut SpareProducerId(&mut spare),
    );
    assert_eq!(spare, None, "taken");
    let out = h.commit(&out);
    assert_eq!(
        out.responses,
        vec![(RequestId(2), init_response(NONE, 77, 0))]
    );
    // A bump needs none: the spare stays with the driver.
    let mut spare = Some(78);
    let out = h.c.handle(
        0,
        RequestId(3),
        init(77, 0),
        &mut SpareProducerId(&mut spare),
    );
    assert_eq!(spare, Some(78));
    assert_eq!(
        h.commit(&out).responses,
        vec![(RequestId(3), init_response(NONE, 77, 1))]
    );
}
