//! The wire mapping: requests of `kafka-protocol` to the coordinator's, and its responses back,
//! encodable at the oldest and newest version the crate supports.

use bytes::BytesMut;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity as WireMemberIdentity;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    self as wire, GroupId, ProducerId, RequestKind, ResponseKind, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::support::*;
use crate::coordinator::group::wire::{from_request, to_response, RequestContext};
use crate::coordinator::group::*;

fn cx(api_version: i16) -> RequestContext {
    RequestContext {
        api_version,
        client_id: "c1".to_owned(),
        client_host: HOST.to_owned(),
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Encodes a group response at `version`, as the broker would send it.
fn encode(response: &ResponseKind, version: i16) -> Result<usize, String> {
    let mut buf = BytesMut::new();
    let result = match response {
        ResponseKind::JoinGroup(r) => r.encode(&mut buf, version),
        ResponseKind::SyncGroup(r) => r.encode(&mut buf, version),
        ResponseKind::Heartbeat(r) => r.encode(&mut buf, version),
        ResponseKind::LeaveGroup(r) => r.encode(&mut buf, version),
        ResponseKind::OffsetCommit(r) => r.encode(&mut buf, version),
        ResponseKind::TxnOffsetCommit(r) => r.encode(&mut buf, version),
        ResponseKind::OffsetFetch(r) => r.encode(&mut buf, version),
        ResponseKind::DescribeGroups(r) => r.encode(&mut buf, version),
        ResponseKind::ListGroups(r) => r.encode(&mut buf, version),
        other => panic!("not a group response: {other:?}"),
    };
    result.map(|()| buf.len()).map_err(|e| e.to_string())
}

#[test]
fn a_join_group_request_maps_with_its_context() {
    let request = wire::JoinGroupRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_session_timeout_ms(SESSION_MS)
        .with_rebalance_timeout_ms(REBALANCE_MS)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(subscription("c1"))]);
    let mapped = from_request(&cx(9), &RequestKind::JoinGroup(request.clone()));
    assert_eq!(mapped, Some(vec![join(GROUP, "", "c1")]));
    // v0-3 clients need no member id first (KIP-394); v0 has no rebalance timeout.
    let mapped = from_request(&cx(0), &RequestKind::JoinGroup(request)).unwrap();
    let [GroupRequest::JoinGroup(v0)] = &mapped[..] else {
        panic!("{mapped:?}")
    };
    assert!(!v0.require_known_member_id);
    assert_eq!(v0.rebalance_timeout_ms, SESSION_MS);
}

#[test]
fn leave_group_and_offset_fetch_batches_map_by_version() {
    let leave_v1 = wire::LeaveGroupRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_member_id(s("m1"));
    assert_eq!(
        from_request(&cx(1), &RequestKind::LeaveGroup(leave_v1)),
        Some(vec![leave(&[("m1", None)])])
    );
    let leave_v5 = wire::LeaveGroupRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_members(vec![
            WireMemberIdentity::default().with_member_id(s("m1")),
            WireMemberIdentity::default().with_group_instance_id(Some(s("i2"))),
        ]);
    assert_eq!(
        from_request(&cx(5), &RequestKind::LeaveGroup(leave_v5)),
        Some(vec![leave(&[("m1", None), ("", Some("i2"))])])
    );
    let fetch_v8 = wire::OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s("a")))
            .with_topics(None),
        OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s("b")))
            .with_topics(None),
    ]);
    let fetch = |group: &str| {
        GroupRequest::OffsetFetch(OffsetFetchRequest {
            group_id: group.to_owned(),
            topics: None,
            require_stable: false,
        })
    };
    assert_eq!(
        from_request(&cx(8), &RequestKind::OffsetFetch(fetch_v8)),
        Some(vec![fetch("a"), fetch("b")])
    );
    let metadata = RequestKind::Metadata(wire::MetadataRequest::default());
    assert_eq!(from_request(&cx(9), &metadata), None, "not a group API");
}

#[test]
fn every_response_encodes_at_the_oldest_and_newest_versions() {
    let mut h = Harness::new();
    let ids = h.stable_group(&["c1", "c2"]);
    h.send(commit(&ids[0], 1, "t", 0, 9));
    let fetch = GroupRequest::OffsetFetch(OffsetFetchRequest {
        group_id: GROUP.to_owned(),
        topics: None,
        require_stable: false,
    });
    let cases: Vec<(GroupRequest, i16, i16)> = vec![
        (join(GROUP, "", "c3"), 0, 9),
        (join(GROUP, &ids[1], "c2"), 0, 9),
        (sync(&ids[1], 1, &[]), 0, 5),
        (heartbeat(&ids[0], 1), 0, 4),
        (commit(&ids[0], 1, "t", 0, 10), 2, 9),
        (fetch, 1, 9),
        (GroupRequest::DescribeGroups(vec![GROUP.to_owned()]), 0, 6),
        (GroupRequest::ListGroups(ListGroupsRequest::default()), 0, 5),
        (leave(&[(&ids[1], None)]), 0, 5),
    ];
    for (request, oldest, newest) in cases {
        let response = h.answer(request.clone());
        for version in [oldest, newest] {
            let kind = to_response(version, vec![(GROUP.to_owned(), response.clone())]).unwrap();
            let size =
                encode(&kind, version).unwrap_or_else(|e| panic!("{request:?} v{version}: {e}"));
            assert!(size > 0);
        }
    }
}

#[test]
fn offset_fetch_responses_are_one_group_before_v8_and_a_list_after() {
    let response = |offset| OffsetFetchResponse {
        error_code: error_code::NONE,
        topics: vec![(
            "t".to_owned(),
            vec![OffsetFetchPartition {
                partition_index: 0,
                committed_offset: offset,
                committed_leader_epoch: -1,
                metadata: Some(String::new()),
                error_code: error_code::NONE,
            }],
        )],
    };
    let both = vec![
        ("a".to_owned(), GroupResponse::OffsetFetch(response(1))),
        ("b".to_owned(), GroupResponse::OffsetFetch(response(2))),
    ];
    let Some(ResponseKind::OffsetFetch(v8)) = to_response(8, both) else {
        panic!()
    };
    assert_eq!(v8.groups.len(), 2);
    assert_eq!(v8.groups[1].topics[0].partitions[0].committed_offset, 2);
    let one = vec![("a".to_owned(), GroupResponse::OffsetFetch(response(1)))];
    let Some(ResponseKind::OffsetFetch(v7)) = to_response(7, one) else {
        panic!()
    };
    assert_eq!(v7.topics[0].partitions[0].committed_offset, 1);
    assert!(v7.groups.is_empty());
}

#[test]
fn an_unknown_group_is_described_dead_before_v6_and_not_found_after() {
    let mut h = Harness::new();
    let response = h.answer(GroupRequest::DescribeGroups(vec!["nope".to_owned()]));
    for (version, expected) in [(5, error_code::NONE), (6, error_code::GROUP_ID_NOT_FOUND)] {
        let Some(ResponseKind::DescribeGroups(r)) =
            to_response(version, vec![(String::new(), response.clone())])
        else {
            panic!()
        };
        assert_eq!(r.groups[0].error_code, expected, "v{version}");
        assert_eq!(r.groups[0].group_state.as_str(), "Dead");
    }
}

#[test]
fn a_txn_offset_commit_has_a_generation_and_member_from_v3() {
    let partition = TxnOffsetCommitRequestPartition::default()
        .with_partition_index(2)
        .with_committed_offset(42)
        .with_committed_leader_epoch(3)
        .with_committed_metadata(Some(s("m")));
    let request = wire::TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(s("tx")))
        .with_group_id(GroupId(s(GROUP)))
        .with_producer_id(ProducerId(7))
        .with_producer_epoch(1)
        .with_generation_id(4)
        .with_member_id(s("m1"))
        .with_group_instance_id(Some(s("i1")))
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![partition])]);
    let expected = |generation_id, member_id: &str, instance: Option<&str>| {
        Some(vec![GroupRequest::TxnOffsetCommit(
            TxnOffsetCommitRequest {
                transactional_id: "tx".to_owned(),
                group_id: GROUP.to_owned(),
                producer_id: 7,
                producer_epoch: 1,
                generation_id,
                member_id: member_id.to_owned(),
                group_instance_id: instance.map(str::to_owned),
                topics: vec![(
                    "t".to_owned(),
                    vec![OffsetCommitPartition {
                        partition_index: 2,
                        committed_offset: 42,
                        committed_leader_epoch: 3,
                        committed_metadata: Some("m".to_owned()),
                    }],
                )],
            },
        )])
    };
    let kind = RequestKind::TxnOffsetCommit(request);
    assert_eq!(from_request(&cx(3), &kind), expected(4, "m1", Some("i1")));
    assert_eq!(from_request(&cx(2), &kind), expected(-1, "", None));
}

#[test]
fn require_stable_is_read_from_v7() {
    let request = wire::OffsetFetchRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_topics(None)
        .with_require_stable(true);
    let kind = RequestKind::OffsetFetch(request);
    let stable = |version| match from_request(&cx(version), &kind).unwrap().as_slice() {
        [GroupRequest::OffsetFetch(r)] => r.require_stable,
        other => panic!("{other:?}"),
    };
    assert!(!stable(6));
    assert!(stable(7));
}

#[test]
fn a_txn_offset_commit_response_encodes_at_every_version() {
    let mut h = Harness::new();
    let request = GroupRequest::TxnOffsetCommit(TxnOffsetCommitRequest {
        transactional_id: "tx".to_owned(),
        group_id: GROUP.to_owned(),
        producer_id: 7,
        producer_epoch: 1,
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        topics: vec![(
            "t".to_owned(),
            vec![OffsetCommitPartition {
                partition_index: 0,
                committed_offset: 1,
                committed_leader_epoch: -1,
                committed_metadata: None,
            }],
        )],
    });
    let response = h.answer(request);
    for version in 0..=5 {
        let kind = to_response(version, vec![(GROUP.to_owned(), response.clone())]).unwrap();
        let Some(ResponseKind::TxnOffsetCommit(r)) = Some(&kind) else {
            panic!("{kind:?}")
        };
        assert_eq!(r.topics[0].partitions[0].error_code, error_code::NONE);
        assert!(encode(&kind, version).unwrap() > 0);
    }
}
