//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup: the happy path, static members, leaving.

use bytes::Bytes;

use super::support::*;
use crate::coordinator::group::*;

#[test]
fn a_first_join_gets_a_member_id_and_writes_the_new_group() {
    let mut h = Harness::new();
    let (id, out) = h.send(join(GROUP, "", "c1"));
    let member_id = match &out.responses[..] {
        [(rid, GroupResponse::JoinGroup(r))] if *rid == id => r.member_id.clone(),
        other => panic!("{other:?}"),
    };
    // `<client.id>-<UUID v4>`, from the seeded stream.
    let uuid = member_id.strip_prefix("c1-").expect("client id prefix");
    assert_eq!(uuid.len(), 36);
    assert_eq!(uuid.as_bytes()[14], b'4', "version 4: {uuid}");
    assert!(
        b"89ab".contains(&uuid.as_bytes()[19]),
        "IETF variant: {uuid}"
    );
    assert_eq!(
        out,
        CoordinatorOutput {
            records: vec![CoordinatorRecord::GroupMetadata {
                group: GROUP.to_owned(),
                value: Some(GroupMetadataValue {
                    protocol_type: String::new(),
                    generation: 0,
                    protocol: None,
                    leader: None,
                    current_state_timestamp_ms: 0,
                    members: vec![],
                }),
            }],
            transactional: None,
            responses: vec![(id, join_error(error_code::MEMBER_ID_REQUIRED, &member_id))],
        }
    );
    // The same seed hands out the same id.
    let mut again = Harness::new();
    assert_eq!(again.member_id_for("c1"), member_id);
}

#[test]
fn three_members_join_sync_and_heartbeat() {
    let mut h = Harness::new();
    let m1 = h.member_id_for("c1");
    let m2 = h.member_id_for("c2");
    let m3 = h.member_id_for("c3");
    let j1 = h.join_waits(join(GROUP, &m1, "c1"));
    h.at(1_000);
    let j2 = h.join_waits(join(GROUP, &m2, "c2"));
    let j3 = h.join_waits(join(GROUP, &m3, "c3"));
    let group = h.c.group(GROUP).unwrap();
    assert_eq!(group.state(), ClassicGroupState::PreparingRebalance);

    // The initial delay (3 s) ends with new members having arrived: it is extended once more.
    assert_eq!(h.at(3_000), CoordinatorOutput::default());
    let out = h.at(6_000);
    assert_eq!(out.records, vec![]);
    let all = member_list(&[(&m1, "c1"), (&m2, "c2"), (&m3, "c3")]);
    assert_eq!(
        by_request(&out),
        vec![
            (j1, joined(&m1, 1, &m1, all)),
            (j2, joined(&m2, 1, &m1, vec![])),
            (j3, joined(&m3, 1, &m1, vec![])),
        ]
    );
    assert_eq!(
        h.c.group(GROUP).unwrap().state(),
        ClassicGroupState::CompletingRebalance
    );

    // Followers wait for the leader's assignment; a heartbeat meanwhile is fine.
    let (s2, out) = h.send(sync(&m2, 1, &[]));
    assert_eq!(out, CoordinatorOutput::default());
    assert_eq!(h.heartbeat(&m3, 1), error_code::NONE);
    let (s3, _) = h.send(sync(&m3, 1, &[]));
    let (s1, out) = h.send(sync(&m1, 1, &[(&m1, b"p0"), (&m2, b"p1"), (&m3, b"p2")]));
    let member = |id: &str, client: &str, assignment: &'static [u8]| MemberMetadata {
        member_id: id.to_owned(),
        group_instance_id: None,
        client_id: client.to_owned(),
        client_host: HOST.to_owned(),
        rebalance_timeout_ms: REBALANCE_MS,
        session_timeout_ms: SESSION_MS,
        subscription: subscription(client),
        assignment: Bytes::from_static(assignment),
    };
    let mut members = vec![
        member(&m1, "c1", b"p0"),
        member(&m2, "c2", b"p1"),
        member(&m3, "c3", b"p2"),
    ];
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    assert_eq!(
        out.records,
        vec![CoordinatorRecord::GroupMetadata {
            group: GROUP.to_owned(),
            value: Some(GroupMetadataValue {
                protocol_type: "consumer".to_owned(),
                generation: 1,
                protocol: Some("range".to_owned()),
                leader: Some(m1.clone()),
                current_state_timestamp_ms: 6_000,
                members,
            }),
        }]
    );
    assert_eq!(
        by_request(&out),
        vec![
            (s2, synced(b"p1")),
            (s3, synced(b"p2")),
            (s1, synced(b"p0"))
        ]
    );
    assert_eq!(h.c.group(GROUP).unwrap().state(), ClassicGroupState::Stable);
    for id in [&m1, &m2, &m3] {
        assert_eq!(h.heartbeat(id, 1), error_code::NONE);
    }
    // A late SyncGroup of a Stable group gets the assignment at once.
    assert_eq!(h.answer(sync(&m2, 1, &[])), synced(b"p1"));
}

#[test]
fn requests_of_unknown_members_and_generations_are_refused() {
    let mut h = Harness::new();
    let ids = h.stable_group(&["c1", "c2"]);
    assert_eq!(h.heartbeat("nobody", 1), error_code::UNKNOWN_MEMBER_ID);
    assert_eq!(h.heartbeat(&ids[1], 0), error_code::ILLEGAL_GENERATION);
    assert_eq!(
        h.answer(sync(&ids[1], 2, &[])),
        sync_error(error_code::ILLEGAL_GENERATION)
    );
    assert_eq!(
        h.answer(sync("nobody", 1, &[])),
        sync_error(error_code::UNKNOWN_MEMBER_ID)
    );
    assert_eq!(
        h.answer(join(GROUP, "nobody", "c9")),
        join_error(error_code::UNKNOWN_MEMBER_ID, "nobody")
    );
    assert_eq!(
        h.answer(join("other", "nobody", "c9")),
        join_error(error_code::UNKNOWN_MEMBER_ID, "nobody"),
        "a known member id in a group that does not exist"
    );
    let GroupRequest::JoinGroup(mut bad) = join(GROUP, "", "c9") else {
        unreachable!()
    };
    bad.session_timeout_ms = 5_999;
    assert_eq!(
        h.answer(GroupRequest::JoinGroup(bad.clone())),
        join_error(error_code::INVALID_SESSION_TIMEOUT, "")
    );
    bad.session_timeout_ms = SESSION_MS;
    bad.protocols = vec![("roundrobin".to_owned(), subscription("c9"))];
    assert_eq!(
        h.answer(GroupRequest::JoinGroup(bad)),
        join_error(error_code::INCONSISTENT_GROUP_PROTOCOL, ""),
        "no protocol in common with the members"
    );
    assert_eq!(h.heartbeat(&ids[0], 1), error_code::NONE, "nothing changed");
}

#[test]
fn a_follower_rejoining_unchanged_gets_the_current_generation_without_a_rebalance() {
    let mut h = Harness::new();
    let ids = h.stable_group(&["c1", "c2"]);
    assert_eq!(
        h.answer(join(GROUP, &ids[1], "c2")),
        joined(&ids[1], 1, &ids[0], vec![])
    );
    assert_eq!(h.c.group(GROUP).unwrap().state(), ClassicGroupState::Stable);
}

#[test]
fn a_static_member_restarting_replaces_its_old_id_and_keeps_its_assignment() {
    let mut h = Harness::new();
    // Static members join without MEMBER_ID_REQUIRED (KIP-345).
    let j1 = h.join_waits(join_static("", "i1", "c1"));
    let j2 = h.join_waits(join_static("", "i2", "c2"));
    let out = h.at(6_000);
    let ids: Vec<(RequestId, String)> = by_request(&out)
        .into_iter()
        .map(|(r, resp)| match resp {
            GroupResponse::JoinGroup(j) => (r, j.member_id),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ids.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        vec![j1, j2]
    );
    let (old1, m2) = (ids[0].1.clone(), ids[1].1.clone());
    assert!(
        old1.starts_with("i1-"),
        "`<group.instance.id>-<uuid>`: {old1}"
    );
    h.send(sync_static(&m2, Some("i2"), 1, &[]));
    h.send(sync_static(
        &old1,
        Some("i1"),
        1,
        &[(&old1, b"a1"), (&m2, b"a2")],
    ));

    // i1 restarts: a new member id in place of the old, same generation, no rebalance. It led,
    // so it gets the members, but must not assign again (KIP-814).
    h.at(7_000);
    let (rejoin, out) = h.send(join_static("", "i1", "c1"));
    let group = h.c.group(GROUP).unwrap();
    assert_eq!(group.state(), ClassicGroupState::Stable);
    assert_eq!(group.generation_id(), 1);
    let new1 = group.static_member_id("i1").unwrap().to_owned();
    assert_ne!(new1, old1);
    assert_eq!(group.leader_id(), Some(new1.as_str()));
    let mut members = vec![
        JoinGroupResponseMember {
            member_id: new1.clone(),
            group_instance_id: Some("i1".to_owned()),
            metadata: subscription("c1"),
        },
        JoinGroupResponseMember {
            member_id: m2.clone(),
            group_instance_id: Some("i2".to_owned()),
            metadata: subscription("c2"),
        },
    ];
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let GroupResponse::JoinGroup(mut expected) = joined(&new1, 1, &new1, members) else {
        unreachable!()
    };
    expected.skip_assignment = true;
    assert_eq!(
        out.responses,
        vec![(rejoin, GroupResponse::JoinGroup(expected))]
    );
    // The replacement is written: the new id with the old assignment.
    let [CoordinatorRecord::GroupMetadata {
        value: Some(value), ..
    }] = &out.records[..]
    else {
        panic!("{out:?}")
    };
    let written: Vec<(&str, &[u8])> = value
        .members
        .iter()
        .map(|m| (m.member_id.as_str(), m.assignment.as_ref()))
        .collect();
    let mut expected_written = vec![(new1.as_str(), &b"a1"[..]), (m2.as_str(), &b"a2"[..])];
    expected_written.sort();
    assert_eq!(written, expected_written);

    // The old incarnation is fenced; the new one syncs to its old assignment.
    let hb = HeartbeatRequest {
        group_id: GROUP.to_owned(),
        generation_id: 1,
        member_id: old1.clone(),
        group_instance_id: Some("i1".to_owned()),
    };
    assert_eq!(
        h.answer(GroupRequest::Heartbeat(hb)),
        GroupResponse::Heartbeat(error_code::FENCED_INSTANCE_ID)
    );
    assert_eq!(
        h.answer(sync_static(&new1, Some("i1"), 1, &[])),
        synced(b"a1")
    );
    assert_eq!(
        h.heartbeat(&m2, 1),
        error_code::NONE,
        "the other member never noticed"
    );
}

#[test]
fn leave_group_removes_a_batch_and_rebalances_the_rest() {
    let mut h = Harness::new();
    let ids = h.stable_group(&["c1", "c2", "c3"]);
    h.at(10_000);
    let response = h.answer(leave(&[(&ids[1], None), ("ghost", None)]));
    assert_eq!(
        response,
        GroupResponse::LeaveGroup(LeaveGroupResponse {
            error_code: error_code::NONE,
            members: vec![
                LeaveGroupMemberResponse {
                    member_id: ids[1].clone(),
                    group_instance_id: None,
                    error_code: error_code::NONE,
                },
                LeaveGroupMemberResponse {
                    member_id: "ghost".to_owned(),
                    group_instance_id: None,
                    error_code: error_code::UNKNOWN_MEMBER_ID,
                },
            ],
        })
    );
    assert_eq!(
        h.c.group(GROUP).unwrap().state(),
        ClassicGroupState::PreparingRebalance
    );
    assert_eq!(h.heartbeat(&ids[0], 1), error_code::REBALANCE_IN_PROGRESS);
    let j1 = h.join_waits(join(GROUP, &ids[0], "c1"));
    let (j3, out) = h.send(join(GROUP, &ids[2], "c3"));
    let all = member_list(&[(&ids[0], "c1"), (&ids[2], "c3")]);
    assert_eq!(
        by_request(&out),
        vec![
            (j1, joined(&ids[0], 2, &ids[0], all)),
            (j3, joined(&ids[2], 2, &ids[0], vec![]))
        ]
    );

    // The last members leave: the group is Empty, in a new generation, written to the log.
    h.send(sync(&ids[0], 2, &[]));
    let (_, out) = h.send(leave(&[(&ids[0], None), (&ids[2], None)]));
    assert_eq!(
        out.records,
        vec![CoordinatorRecord::GroupMetadata {
            group: GROUP.to_owned(),
            value: Some(GroupMetadataValue {
                protocol_type: "consumer".to_owned(),
                generation: 3,
                protocol: None,
                leader: None,
                current_state_timestamp_ms: 10_000,
                members: vec![],
            }),
        }]
    );
    let group = h.c.group(GROUP).unwrap();
    assert_eq!(
        (group.state(), group.generation_id()),
        (ClassicGroupState::Empty, 3)
    );
}

#[test]
fn an_admin_removes_a_static_member_by_its_instance_id_alone() {
    let mut h = Harness::new();
    h.join_waits(join_static("", "i1", "c1"));
    h.join_waits(join_static("", "i2", "c2"));
    h.at(6_000);
    let i2 =
        h.c.group(GROUP)
            .unwrap()
            .static_member_id("i2")
            .unwrap()
            .to_owned();
    let response = h.answer(leave(&[("", Some("i2")), ("", Some("i9"))]));
    assert_eq!(
        response,
        GroupResponse::LeaveGroup(LeaveGroupResponse {
            error_code: error_code::NONE,
            members: vec![
                LeaveGroupMemberResponse {
                    member_id: String::new(),
                    group_instance_id: Some("i2".to_owned()),
                    error_code: error_code::NONE,
                },
                LeaveGroupMemberResponse {
                    member_id: String::new(),
                    group_instance_id: Some("i9".to_owned()),
                    error_code: error_code::UNKNOWN_MEMBER_ID,
                },
            ],
        })
    );
    let group = h.c.group(GROUP).unwrap();
    assert!(group.member(&i2).is_none());
    assert_eq!(group.static_member_id("i2"), None);
    assert_eq!(group.state(), ClassicGroupState::PreparingRebalance);
}

#[test]
fn before_kip_814_a_static_leader_rejoining_learns_the_old_leader_and_no_members() {
    let mut h = Harness::new();
    h.join_waits(join_static("", "i1", "c1"));
    h.at(3_000);
    let old1 =
        h.c.group(GROUP)
            .unwrap()
            .static_member_id("i1")
            .unwrap()
            .to_owned();
    h.send(sync_static(&old1, Some("i1"), 1, &[(&old1, b"a1")]));
    let GroupRequest::JoinGroup(mut rejoin) = join_static("", "i1", "c1") else {
        unreachable!()
    };
    rejoin.supports_skip_assignment = false; // JoinGroup v5-8
    let (id, out) = h.send(GroupRequest::JoinGroup(rejoin));
    let new1 =
        h.c.group(GROUP)
            .unwrap()
            .static_member_id("i1")
            .unwrap()
            .to_owned();
    assert_eq!(out.responses, vec![(id, joined(&new1, 1, &old1, vec![]))]);
    assert_eq!(h.c.group(GROUP).unwrap().leader_id(), Some(new1.as_str()));
}
