//! OffsetCommit fencing, OffsetFetch, and the expiration of an empty group's offsets.

use super::support::*;
use crate::coordinator::group::*;

/// A group that went from generation 1 (c1, c2) to 2 (c1, c2, c3): c2 still holds generation 1,
/// as a member that missed the rebalance (a zombie) would.
fn group_in_generation_2(h: &mut Harness) -> Vec<String> {
    let mut ids = h.stable_group(&["c1", "c2"]);
    let m3 = h.member_id_for("c3");
    h.send(join(GROUP, &m3, "c3"));
    h.send(join(GROUP, &ids[0], "c1"));
    h.send(join(GROUP, &ids[1], "c2"));
    ids.push(m3);
    for id in &ids[1..] {
        h.send(sync(id, 2, &[]));
    }
    h.send(sync(&ids[0], 2, &[]));
    assert_eq!(h.c.group(GROUP).unwrap().generation_id(), 2);
    ids
}

#[test]
fn a_zombie_commit_of_an_old_generation_is_refused() {
    let mut h = Harness::new();
    let ids = group_in_generation_2(&mut h);
    h.at(9_000);
    let (_, out) = h.send(commit(&ids[1], 1, "orders", 0, 42));
    assert_eq!(
        out,
        CoordinatorOutput {
            records: vec![],
            transactional: None,
            responses: vec![(
                out.responses[0].0,
                commit_response("orders", 0, error_code::ILLEGAL_GENERATION)
            )],
        }
    );
    let (id, out) = h.send(commit(&ids[1], 2, "orders", 0, 42));
    assert_eq!(
        out,
        CoordinatorOutput {
            records: vec![commit_record("orders", 0, 42, 9_000)],
            transactional: None,
            responses: vec![(id, commit_response("orders", 0, error_code::NONE))],
        }
    );
    assert_eq!(
        h.answer(commit("ghost", 2, "orders", 0, 1)),
        commit_response("orders", 0, error_code::UNKNOWN_MEMBER_ID)
    );
}

#[test]
fn without_offset_commit_fencing_the_zombie_commit_is_accepted() {
    let config = GroupCoordinatorConfig {
        offset_commit_fencing: false,
        ..GroupCoordinatorConfig::default()
    };
    let mut h = Harness::with_config(config);
    let ids = group_in_generation_2(&mut h);
    h.at(9_000);
    let (id, out) = h.send(commit(&ids[1], 1, "orders", 0, 7));
    assert_eq!(
        out,
        CoordinatorOutput {
            records: vec![commit_record("orders", 0, 7, 9_000)],
            transactional: None,
            responses: vec![(id, commit_response("orders", 0, error_code::NONE))],
        }
    );
    assert_eq!(
        h.c.committed_offset(GROUP, "orders", 0)
            .unwrap()
            .committed_offset,
        7
    );
}

#[test]
fn a_consumer_without_a_group_commits_only_while_the_group_is_empty() {
    let mut h = Harness::new();
    // Generation -1, no member id: a consumer that assigns itself partitions (`assign`).
    assert_eq!(
        h.answer(commit("", -1, "t", 1, 5)),
        commit_response("t", 1, error_code::NONE)
    );
    let group = h.c.group(GROUP).unwrap();
    assert_eq!(
        (group.state(), group.protocol_type()),
        (ClassicGroupState::Empty, None)
    );
    assert_eq!(
        h.log,
        vec![commit_record("t", 1, 5, 0)],
        "no GroupMetadata record for it"
    );
    // Once the group has members, such a commit is refused.
    h.stable_group(&["c1"]);
    assert_eq!(
        h.answer(commit("", -1, "t", 1, 6)),
        commit_response("t", 1, error_code::UNKNOWN_MEMBER_ID)
    );
    // A commit with a generation to a group that does not exist.
    let GroupRequest::OffsetCommit(mut other) = commit("", 3, "t", 0, 1) else {
        unreachable!()
    };
    other.group_id = "nope".to_owned();
    assert_eq!(
        h.answer(GroupRequest::OffsetCommit(other)),
        commit_response("t", 0, error_code::ILLEGAL_GENERATION)
    );
}

#[test]
fn a_commit_between_join_and_sync_is_told_to_wait() {
    let mut h = Harness::new();
    let m1 = h.member_id_for("c1");
    h.send(join(GROUP, &m1, "c1"));
    h.at(3_000);
    assert_eq!(
        h.answer(commit(&m1, 1, "t", 0, 1)),
        commit_response("t", 0, error_code::REBALANCE_IN_PROGRESS)
    );
}

#[test]
fn offset_fetch_answers_committed_offsets_and_minus_one_for_the_rest() {
    let mut h = Harness::new();
    h.send(commit("", -1, "b", 0, 10));
    h.send(commit("", -1, "a", 2, 20));
    let partition = |p, offset, epoch, metadata: &str| OffsetFetchPartition {
        partition_index: p,
        committed_offset: offset,
        committed_leader_epoch: epoch,
        metadata: Some(metadata.to_owned()),
        error_code: error_code::NONE,
    };
    let fetch = |topics| {
        GroupRequest::OffsetFetch(OffsetFetchRequest {
            group_id: GROUP.to_owned(),
            topics,
            require_stable: false,
        })
    };
    assert_eq!(
        h.answer(fetch(Some(vec![("b".to_owned(), vec![1, 0])]))),
        GroupResponse::OffsetFetch(OffsetFetchResponse {
            error_code: error_code::NONE,
            topics: vec![(
                "b".to_owned(),
                vec![partition(1, -1, -1, ""), partition(0, 10, 3, "m")]
            )],
        })
    );
    assert_eq!(
        h.answer(fetch(None)),
        GroupResponse::OffsetFetch(OffsetFetchResponse {
            error_code: error_code::NONE,
            topics: vec![
                ("a".to_owned(), vec![partition(2, 20, 3, "m")]),
                ("b".to_owned(), vec![partition(0, 10, 3, "m")]),
            ],
        })
    );
}

#[test]
fn metadata_over_offset_metadata_max_bytes_is_refused_per_partition() {
    let mut h = Harness::new();
    let GroupRequest::OffsetCommit(mut r) = commit("", -1, "t", 0, 1) else {
        unreachable!()
    };
    r.topics[0].1[0].committed_metadata = Some("x".repeat(4_097));
    assert_eq!(
        h.answer(GroupRequest::OffsetCommit(r)),
        commit_response("t", 0, error_code::OFFSET_METADATA_TOO_LARGE)
    );
    assert!(h.log.is_empty());
}

#[test]
fn an_empty_groups_offsets_expire_after_the_retention_and_the_group_is_deleted() {
    let mut h = Harness::new();
    let ids = h.stable_group(&["c1"]);
    h.send(commit(&ids[0], 1, "t", 0, 100));
    h.at(20_000);
    h.send(leave(&[(&ids[0], None)]));
    assert_eq!(h.c.group(GROUP).unwrap().state(), ClassicGroupState::Empty);
    let week_ms = 7 * 24 * 3_600 * 1_000;
    // Checked every 10 minutes; due 7 days after the group became empty (at 20 s).
    let check_ms = 600_000;
    let before = (20_000 + week_ms) / check_ms * check_ms;
    assert_eq!(h.at(before).records, vec![]);
    let out = h.at(before + check_ms);
    assert_eq!(
        out.records,
        vec![
            CoordinatorRecord::OffsetCommit {
                group: GROUP.to_owned(),
                topic: "t".to_owned(),
                partition: 0,
                value: None,
            },
            CoordinatorRecord::GroupMetadata {
                group: GROUP.to_owned(),
                value: None
            },
        ]
    );
    assert!(h.c.group(GROUP).is_none());
    assert!(h.c.committed_offset(GROUP, "t", 0).is_none());
}

#[test]
fn a_simple_groups_offsets_expire_a_retention_after_their_commit() {
    let mut h = Harness::new();
    h.at(1_000);
    h.send(commit("", -1, "t", 0, 1));
    h.at(700_000);
    h.send(commit("", -1, "t", 1, 2));
    let week_ms: u64 = 7 * 24 * 3_600 * 1_000;
    // Checks run every 10 minutes from the load (at 0): the first commit is due at the first
    // check after 1 s + 7 days, the second at the first after 700 s + 7 days.
    let first = (1_000 + week_ms).div_ceil(600_000) * 600_000;
    let tombstone = |partition| CoordinatorRecord::OffsetCommit {
        group: GROUP.to_owned(),
        topic: "t".to_owned(),
        partition,
        value: None,
    };
    assert_eq!(h.at(first).records, vec![tombstone(0)]);
    let second = (700_000 + week_ms).div_ceil(600_000) * 600_000;
    assert_eq!(
        h.at(second).records,
        vec![
            tombstone(1),
            CoordinatorRecord::GroupMetadata {
                group: GROUP.to_owned(),
                value: None
            },
        ]
    );
}
