//! Loading: a new coordinator replays the partition's log and serves the same offsets and
//! groups, fencing the same members.

use super::support::*;
use crate::coordinator::group::*;

#[test]
fn a_coordinator_loaded_from_the_log_answers_as_the_one_that_wrote_it() {
    let mut a = Harness::new();
    let ids = a.stable_group(&["c1", "c2"]);
    let m3 = a.member_id_for("c3");
    a.send(join(GROUP, &m3, "c3"));
    a.send(join(GROUP, &ids[0], "c1"));
    a.send(join(GROUP, &ids[1], "c2"));
    a.send(sync(&ids[1], 2, &[]));
    a.send(sync(&m3, 2, &[]));
    a.send(sync(
        &ids[0],
        2,
        &[(&ids[0], b"x"), (&ids[1], b"y"), (&m3, b"z")],
    ));
    a.at(7_000);
    a.send(commit(&ids[0], 2, "orders", 0, 11));
    a.send(commit(&ids[1], 2, "orders", 1, 22));
    // A consumer outside group management, in a group of its own.
    let GroupRequest::OffsetCommit(mut solo) = commit("", -1, "solo", 0, 5) else {
        unreachable!()
    };
    solo.group_id = "solo-group".to_owned();
    a.send(GroupRequest::OffsetCommit(solo));

    // The log goes through its bytes, as it would through `__consumer_offsets`.
    let log: Vec<CoordinatorRecord> = a
        .log
        .iter()
        .map(|r| {
            let value = r.encode_value();
            CoordinatorRecord::decode(&r.encode_key(), value.as_deref()).unwrap()
        })
        .collect();
    assert_eq!(log, a.log);
    let mut b = Harness::loaded(&log, 8_000);

    let fetch = GroupRequest::OffsetFetch(OffsetFetchRequest {
        group_id: GROUP.to_owned(),
        topics: None,
        require_stable: false,
    });
    let describe = GroupRequest::DescribeGroups(vec![GROUP.to_owned(), "unknown".to_owned()]);
    let list = GroupRequest::ListGroups(ListGroupsRequest::default());
    for request in [fetch, describe, list] {
        assert_eq!(a.answer(request.clone()), b.answer(request));
    }
    let GroupResponse::DescribeGroups(described) =
        b.answer(GroupRequest::DescribeGroups(vec![GROUP.to_owned()]))
    else {
        unreachable!()
    };
    assert_eq!(described[0].group_state, "Stable");
    assert_eq!(described[0].members.len(), 3);

    // Generation 2's members are accepted, generation 1 is fenced, on both alike.
    for h in [&mut a, &mut b] {
        h.at(9_000);
        assert_eq!(
            h.answer(commit(&ids[1], 1, "orders", 1, 23)),
            commit_response("orders", 1, error_code::ILLEGAL_GENERATION)
        );
        assert_eq!(
            h.answer(commit(&ids[1], 2, "orders", 1, 23)),
            commit_response("orders", 1, error_code::NONE)
        );
        assert_eq!(h.heartbeat(&m3, 2), error_code::NONE);
        assert_eq!(h.answer(sync(&m3, 2, &[])), synced(b"z"));
    }
}

#[test]
fn loaded_members_sessions_start_at_the_load() {
    let mut a = Harness::new();
    let ids = a.stable_group(&["c1", "c2"]);
    let mut b = Harness::loaded(&a.log, 50_000);
    b.at(55_000);
    assert_eq!(b.heartbeat(&ids[0], 1), error_code::NONE);
    // c2 never heartbeats to the new coordinator: gone one session after the load.
    b.at(60_000);
    let group = b.c.group(GROUP).unwrap();
    assert!(group.member(&ids[1]).is_none());
    assert_eq!(group.state(), ClassicGroupState::PreparingRebalance);
}

#[test]
fn unloading_answers_waiting_requests_not_coordinator() {
    let mut a = Harness::new();
    let m1 = a.member_id_for("c1");
    let j1 = a.join_waits(join(GROUP, &m1, "c1"));
    let out = a.c.unload();
    assert_eq!(
        out.responses,
        vec![(j1, join_error(error_code::NOT_COORDINATOR, &m1))]
    );
    assert!(a.c.group(GROUP).is_none());
}

#[test]
fn partition_for_is_javas_string_hash_code_modulo_the_partitions() {
    // `"".hashCode()` is 0, `"a"` 97, `"ab"` 97 * 31 + 98.
    assert_eq!(java_string_hash(""), 0);
    assert_eq!(java_string_hash("a"), 97);
    assert_eq!(java_string_hash("ab"), 3_105);
    // Longer strings overflow int32 and wrap, as Java's does.
    assert_eq!(
        java_string_hash("my-very-long-consumer-group-name-that-overflows"),
        244_525_571
    );
    assert_eq!(java_string_hash("group-overflow-example"), -1_870_298_067);
    // UTF-16 code units, not bytes: 'é' is 0xe9, '€' 0x20ac.
    assert_eq!(java_string_hash("é€"), 0xe9 * 31 + 0x20ac);
    // `Utils.abs(Integer.MIN_VALUE)` is 0.
    assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    let cases = [
        ("", 0),
        ("a", 47),
        ("ab", 5),
        ("console-consumer-group", 48),
        ("group-overflow-example", 17),
        ("spark-kafka-source", 12),
        ("polygenelubricants", 0),
    ];
    for (group, partition) in cases {
        assert_eq!(
            partition_for(group, OFFSETS_TOPIC_NUM_PARTITIONS),
            partition,
            "{group}"
        );
    }
}
