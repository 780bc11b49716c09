//! TxnOffsetCommit: offsets pending per producer until the transaction's marker, OffsetFetch's
//! `require_stable`, the KIP-447 generation checks, and loading a log with transactions.

use super::support::*;
use crate::coordinator::group::*;

const PID: i64 = 4_000;
const EPOCH: i16 = 2;

/// A TxnOffsetCommit of producer `producer_id` for one partition.
fn txn_commit_of(
    producer_id: i64,
    member_id: &str,
    generation_id: i32,
    topic: &str,
    partition: i32,
    offset: i64,
) -> GroupRequest {
    let GroupRequest::OffsetCommit(c) = commit(member_id, generation_id, topic, partition, offset)
    else {
        unreachable!()
    };
    GroupRequest::TxnOffsetCommit(TxnOffsetCommitRequest {
        transactional_id: "tx-1".to_owned(),
        group_id: c.group_id,
        producer_id,
        producer_epoch: EPOCH,
        generation_id: c.generation_id,
        member_id: c.member_id,
        group_instance_id: c.group_instance_id,
        topics: c.topics,
    })
}

fn txn_commit(
    member_id: &str,
    generation_id: i32,
    topic: &str,
    partition: i32,
    offset: i64,
) -> GroupRequest {
    txn_commit_of(PID, member_id, generation_id, topic, partition, offset)
}

fn txn_commit_response(topic: &str, partition: i32, error: i16) -> GroupResponse {
    GroupResponse::TxnOffsetCommit(OffsetCommitResponse {
        topics: vec![(topic.to_owned(), vec![(partition, error)])],
    })
}

fn fetch(topics: Option<Vec<(&str, Vec<i32>)>>, require_stable: bool) -> GroupRequest {
    GroupRequest::OffsetFetch(OffsetFetchRequest {
        group_id: GROUP.to_owned(),
        topics: topics.map(|ts| ts.into_iter().map(|(t, ps)| (t.to_owned(), ps)).collect()),
        require_stable,
    })
}

/// A fetched partition: committed (`leader epoch` 3 and metadata "m", as `commit` sends them)
/// or not (-1).
fn fetched(partition: i32, offset: i64, error: i16) -> OffsetFetchPartition {
    let known = offset >= 0 && error == error_code::NONE;
    OffsetFetchPartition {
        partition_index: partition,
        committed_offset: offset,
        committed_leader_epoch: if known { 3 } else { -1 },
        metadata: Some(if known { "m" } else { "" }.to_owned()),
        error_code: error,
    }
}

fn fetch_response(topics: Vec<(&str, Vec<OffsetFetchPartition>)>) -> GroupResponse {
    GroupResponse::OffsetFetch(OffsetFetchResponse {
        error_code: error_code::NONE,
        topics: topics
            .into_iter()
            .map(|(t, ps)| (t.to_owned(), ps))
            .collect(),
    })
}

fn committed(
    group_id: &str,
    topic: &str,
    partition: i32,
    committed_offset: i64,
) -> MaterializedOffset {
    MaterializedOffset {
        group_id: group_id.to_owned(),
        topic: topic.to_owned(),
        partition,
        committed_offset,
    }
}

#[test]
fn a_transactional_commit_is_pending_until_its_commit_marker() {
    let mut h = Harness::new();
    let ids = h.stable_group(&["c1"]);
    h.at(9_000);
    let (id, out) = h.send(txn_commit(&ids[0], 1, "orders", 0, 42));
    assert_eq!(
        out,
        CoordinatorOutput {
            records: vec![],
            transactional: Some(TransactionalBatch {
                producer_id: PID,
                producer_epoch: EPOCH,
                records: vec![commit_record("orders", 0, 42, 9_000)],
            }),
            responses: vec![(id, txn_commit_response("orders", 0, error_code::NONE))],
        }
    );
    let orders_0 = Some(vec![("orders", vec![0])]);
    assert_eq!(
        h.answer(fetch(orders_0.clone(), false)),
        fetch_response(vec![("orders", vec![fetched(0, -1, error_code::NONE)])]),
        "not visible before the marker"
    );
    assert_eq!(
        h.c.pending_transactional_offset(PID, GROUP, "orders", 0)
            .map(|o| o.committed_offset),
        Some(42)
    );

    assert_eq!(h.marker(PID, true), vec![committed(GROUP, "orders", 0, 42)]);
    assert_eq!(
        h.answer(fetch(orders_0, true)),
        fetch_response(vec![("orders", vec![fetched(0, 42, error_code::NONE)])])
    );
    assert_eq!(
        h.c.pending_transactional_offset(PID, GROUP, "orders", 0),
        None
    );
    // A second marker of the producer finds nothing pending.
    assert_eq!(h.marker(PID, true), vec![]);
}

#[test]
fn an_abort_marker_drops_the_pending_offsets() {
    let mut h = Harness::new();
    let ids = h.stable_group(&["c1"]);
    h.send(commit(&ids[0], 1, "orders", 0, 10));
    h.send(txn_commit(&ids[0], 1, "orders", 0, 42));
    // Another producer's transaction is not touched by this one's marker.
    h.send(txn_commit_of(PID + 1, &ids[0], 1, "orders", 1, 5));
    assert_eq!(h.marker(PID, false), vec![]);
    assert_eq!(
        h.answer(fetch(Some(vec![("orders", vec![0, 1])]), true)),
        fetch_response(vec![(
            "orders",
            vec![
                fetched(0, 10, error_code::NONE),
                fetched(1, -1, error_code::UNSTABLE_OFFSET_COMMIT),
            ]
        )])
    );
    assert_eq!(
        h.c.pending_transactional_offset(PID, GROUP, "orders", 0),
        None
    );
}

#[test]
fn require_stable_answers_unstable_offset_commit_while_a_transaction_is_open() {
    let mut h = Harness::new();
    let ids = h.stable_group(&["c1"]);
    h.send(commit(&ids[0], 1, "orders", 0, 10));
    h.send(txn_commit(&ids[0], 1, "orders", 0, 42));
    h.send(txn_commit(&ids[0], 1, "orders", 1, 7));
    let three = Some(vec![("orders", vec![0, 1, 2])]);
    assert_eq!(
        h.answer(fetch(three.clone(), true)),
        fetch_response(vec![(
            "orders",
            vec![
                fetched(0, -1, error_code::UNSTABLE_OFFSET_COMMIT),
                fetched(1, -1, error_code::UNSTABLE_OFFSET_COMMIT),
                fetched(2, -1, error_code::NONE),
            ]
        )])
    );
    // Without require_stable, the last committed offsets.
    assert_eq!(
        h.answer(fetch(three.clone(), false)),
        fetch_response(vec![(
            "orders",
            vec![
                fetched(0, 10, error_code::NONE),
                fetched(1, -1, error_code::NONE),
                fetched(2, -1, error_code::NONE),
            ]
        )])
    );
    // All the group's offsets are its committed ones: orders-1 has none yet.
    assert_eq!(
        h.answer(fetch(None, true)),
        fetch_response(vec![(
            "orders",
            vec![fetched(0, -1, error_code::UNSTABLE_OFFSET_COMMIT)]
        )])
    );
    h.marker(PID, true);
    assert_eq!(
        h.answer(fetch(three, true)),
        fetch_response(vec![(
            "orders",
            vec![
                fetched(0, 42, error_code::NONE),
                fetched(1, 7, error_code::NONE),
                fetched(2, -1, error_code::NONE),
            ]
        )])
    );
}

#[test]
fn at_the_commit_marker_the_later_of_a_plain_and_a_transactional_commit_wins() {
    let mut h = Harness::new();
    let ids = h.stable_group(&["c1"]);
    // Transactional, then plain: the plain commit is the later record and stays.
    h.send(txn_commit(&ids[0], 1, "orders", 0, 42));
    h.send(commit(&ids[0], 1, "orders", 0, 50));
    assert_eq!(h.marker(PID, true), vec![]);
    // Plain, then transactional: the transaction's offset replaces it, even though lower.
    h.send(commit(&ids[0], 1, "orders", 1, 50));
    h.send(txn_commit(&ids[0], 1, "orders", 1, 42));
    assert_eq!(h.marker(PID, true), vec![committed(GROUP, "orders", 1, 42)]);
    assert_eq!(
        h.answer(fetch(Some(vec![("orders", vec![0, 1])]), true)),
        fetch_response(vec![(
            "orders",
            vec![
                fetched(0, 50, error_code::NONE),
                fetched(1, 42, error_code::NONE)
            ]
        )])
    );
}

#[test]
fn a_zombie_of_an_old_generation_is_fenced_and_a_rebalance_does_not_hold_a_commit_back() {
    let mut h = Harness::new();
    let ids = h.stable_group(&["c1", "c2"]);
    // c3 joins: generation 2 is formed, waiting for the leader's assignment.
    let m3 = h.member_id_for("c3");
    h.send(join(GROUP, &m3, "c3"));
    h.send(join(GROUP, &ids[0], "c1"));
    h.send(join(GROUP, &ids[1], "c2"));
    assert_eq!(
        h.c.group(GROUP).unwrap().state(),
        ClassicGroupState::CompletingRebalance
    );
    let refused = |h: &mut Harness, request, error| {
        let (id, out) = h.send(request);
        let expected = CoordinatorOutput {
            responses: vec![(id, txn_commit_response("t", 0, error))],
            ..CoordinatorOutput::default()
        };
        assert_eq!(out, expected);
    };
    refused(
        &mut h,
        txn_commit(&ids[1], 1, "t", 0, 5),
        error_code::ILLEGAL_GENERATION,
    );
    refused(
        &mut h,
        txn_commit("ghost", 2, "t", 0, 5),
        error_code::UNKNOWN_MEMBER_ID,
    );
    // An OffsetCommit would be told REBALANCE_IN_PROGRESS here; a transactional one is not.
    assert_eq!(
        h.answer(commit(&ids[1], 2, "t", 0, 5)),
        commit_response("t", 0, error_code::REBALANCE_IN_PROGRESS)
    );
    assert_eq!(
        h.answer(txn_commit(&ids[1], 2, "t", 0, 5)),
        txn_commit_response("t", 0, error_code::NONE)
    );
    // A v0-2 request has no generation nor member: accepted although the group has members.
    assert_eq!(
        h.answer(txn_commit("", -1, "t", 1, 6)),
        txn_commit_response("t", 1, error_code::NONE)
    );
    assert_eq!(
        h.answer(commit("", -1, "t", 1, 6)),
        commit_response("t", 1, error_code::UNKNOWN_MEMBER_ID)
    );
}

#[test]
fn a_static_member_replaced_by_a_restart_is_fenced() {
    let mut h = Harness::new();
    h.join_waits(join_static("", "i1", "c1"));
    h.at(6_000);
    let old =
        h.c.group(GROUP)
            .unwrap()
            .static_member_id("i1")
            .unwrap()
            .to_owned();
    h.send(sync_static(&old, Some("i1"), 1, &[(&old, b"a")]));
    h.send(join_static("", "i1", "c1"));
    let new =
        h.c.group(GROUP)
            .unwrap()
            .static_member_id("i1")
            .unwrap()
            .to_owned();
    assert_ne!(old, new);
    let with_instance = |member: &str| {
        let GroupRequest::TxnOffsetCommit(mut r) = txn_commit(member, 1, "t", 0, 1) else {
            unreachable!()
        };
        r.group_instance_id = Some("i1".to_owned());
        GroupRequest::TxnOffsetCommit(r)
    };
    assert_eq!(
        h.answer(with_instance(&old)),
        txn_commit_response("t", 0, error_code::FENCED_INSTANCE_ID)
    );
    assert_eq!(
        h.answer(with_instance(&new)),
        txn_commit_response("t", 0, error_code::NONE)
    );
}

#[test]
fn a_group_not_known_takes_a_commit_without_generation_only() {
    let mut h = Harness::new();
    assert_eq!(
        h.answer(txn_commit("", 3, "t", 0, 1)),
        txn_commit_response("t", 0, error_code::ILLEGAL_GENERATION)
    );
    assert!(h.c.group(GROUP).is_none());
    assert_eq!(
        h.answer(txn_commit("", -1, "t", 0, 1)),
        txn_commit_response("t", 0, error_code::NONE)
    );
    let group = h.c.group(GROUP).unwrap();
    assert_eq!(
        (group.state(), group.protocol_type()),
        (ClassicGroupState::Empty, None)
    );
    let GroupRequest::TxnOffsetCommit(mut nameless) = txn_commit("", -1, "t", 0, 1) else {
        unreachable!()
    };
    nameless.group_id = String::new();
    assert_eq!(
        h.answer(GroupRequest::TxnOffsetCommit(nameless)),
        txn_commit_response("t", 0, error_code::INVALID_GROUP_ID)
    );
}

#[test]
fn a_pending_transactional_offset_holds_back_the_expiration_of_its_partition_and_group() {
    let mut h = Harness::new();
    // A consumer without group management: its offsets expire by their commit time.
    h.send(commit("", -1, "t", 0, 5));
    h.send(commit("", -1, "t", 1, 5));
    h.send(txn_commit("", -1, "t", 0, 9));
    let retention_ms = GroupCoordinatorConfig::default().offsets_retention_ms;
    let tombstone = |partition| CoordinatorRecord::OffsetCommit {
        group: GROUP.to_owned(),
        topic: "t".to_owned(),
        partition,
        value: None,
    };
    let out = h.at(retention_ms + 600_000);
    assert_eq!(out.records, vec![tombstone(1)]);
    assert!(h.c.group(GROUP).is_some());
    h.marker(PID, false);
    let out = h.at(retention_ms + 1_200_000);
    let group_tombstone = CoordinatorRecord::GroupMetadata {
        group: GROUP.to_owned(),
        value: None,
    };
    assert_eq!(out.records, vec![tombstone(0), group_tombstone]);
    assert!(h.c.group(GROUP).is_none());
}

#[test]
fn a_coordinator_loaded_from_a_log_with_transactions_answers_as_the_one_that_wrote_it() {
    let mut a = Harness::new();
    let ids = a.stable_group(&["c1"]);
    a.send(commit(&ids[0], 1, "orders", 0, 10));
    a.send(txn_commit_of(1, &ids[0], 1, "orders", 0, 20));
    a.send(txn_commit_of(2, &ids[0], 1, "orders", 1, 30));
    a.marker(1, true);
    a.send(commit(&ids[0], 1, "orders", 2, 40));
    a.send(txn_commit_of(2, &ids[0], 1, "orders", 2, 35));
    a.send(txn_commit_of(3, &ids[0], 1, "orders", 3, 50));
    a.marker(2, false);
    // Producer 3's transaction is still open at the load.

    // The log goes through its bytes, as it would through `__consumer_offsets`.
    let entries: Vec<LogEntry> = a
        .entries
        .iter()
        .map(|e| match e {
            LogEntry::Record {
                producer_id,
                record,
            } => {
                let value = record.encode_value();
                let decoded = CoordinatorRecord::decode(&record.encode_key(), value.as_deref());
                LogEntry::Record {
                    producer_id: *producer_id,
                    record: decoded.unwrap(),
                }
            }
            marker => marker.clone(),
        })
        .collect();
    assert_eq!(entries, a.entries);
    let mut b = Harness::loaded_log(&entries, 9_000);

    let four = Some(vec![("orders", vec![0, 1, 2, 3])]);
    let expected = fetch_response(vec![(
        "orders",
        vec![
            fetched(0, 20, error_code::NONE),
            fetched(1, -1, error_code::NONE),
            fetched(2, 40, error_code::NONE),
            fetched(3, -1, error_code::UNSTABLE_OFFSET_COMMIT),
        ],
    )]);
    for h in [&mut a, &mut b] {
        assert_eq!(h.answer(fetch(four.clone(), true)), expected);
        assert_eq!(
            h.c.pending_transactional_offset(3, GROUP, "orders", 3)
                .map(|o| o.committed_offset),
            Some(50)
        );
        assert_eq!(h.marker(3, true), vec![committed(GROUP, "orders", 3, 50)]);
        assert_eq!(
            h.answer(fetch(None, true)),
            fetch_response(vec![(
                "orders",
                vec![
                    fetched(0, 20, error_code::NONE),
                    fetched(2, 40, error_code::NONE),
                    fetched(3, 50, error_code::NONE),
                ]
            )])
        );
    }
}
