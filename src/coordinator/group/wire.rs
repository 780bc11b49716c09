//! The group coordinator's requests and responses on Kafka's wire: `kafka-protocol`'s messages
//! to the coordinator's own types and back. What a body does not carry (the API version, the
//! header's client id, the client's host) comes in a [`RequestContext`].

use kafka_protocol::messages::describe_groups_response::{
    DescribedGroup as WireDescribedGroup, DescribedGroupMember as WireDescribedGroupMember,
};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember as WireJoinMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup as WireListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{self as wire, GroupId, RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{
    error_code, GroupRequest, GroupResponse, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    ListGroupsRequest, MemberIdentity, OffsetCommitPartition, OffsetCommitRequest,
    OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest, TxnOffsetCommitRequest,
};

/// What the coordinator needs of a request besides its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestContext {
    pub api_version: i16,
    /// The request header's client id.
    pub client_id: String,
    /// The client's address, as Kafka reports it (`/10.0.0.1`).
    pub client_host: String,
}

fn string(s: &StrBytes) -> String {
    s.as_str().to_owned()
}

fn opt_string(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(string)
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn opt_str_bytes(s: &Option<String>) -> Option<StrBytes> {
    s.as_deref().map(str_bytes)
}

/// The coordinator's requests for one wire request (an OffsetFetch v8+ asks for several
/// groups: one request each); `None` for an API the coordinator does not serve.
pub fn from_request(cx: &RequestContext, request: &RequestKind) -> Option<Vec<GroupRequest>> {
    Some(match request {
        RequestKind::JoinGroup(r) => vec![GroupRequest::JoinGroup(join_group(cx, r))],
        RequestKind::SyncGroup(r) => vec![GroupRequest::SyncGroup(sync_group(r))],
        RequestKind::Heartbeat(r) => vec![GroupRequest::Heartbeat(HeartbeatRequest {
            group_id: string(&r.group_id),
            generation_id: r.generation_id,
            member_id: string(&r.member_id),
            group_instance_id: opt_string(&r.group_instance_id),
        })],
        RequestKind::LeaveGroup(r) => vec![GroupRequest::LeaveGroup(leave_group(cx, r))],
        RequestKind::OffsetCommit(r) => vec![GroupRequest::OffsetCommit(offset_commit(r))],
        RequestKind::TxnOffsetCommit(r) => {
            vec![GroupRequest::TxnOffsetCommit(txn_offset_commit(cx, r))]
        }
        RequestKind::OffsetFetch(r) => offset_fetch(cx, r),
        RequestKind::DescribeGroups(r) => {
            vec![GroupRequest::DescribeGroups(
                r.groups.iter().map(|g| string(g)).collect(),
            )]
        }
        RequestKind::ListGroups(r) => vec![GroupRequest::ListGroups(ListGroupsRequest {
            states_filter: r.states_filter.iter().map(string).collect(),
            types_filter: r.types_filter.iter().map(string).collect(),
        })],
        _ => return None,
    })
}

fn join_group(cx: &RequestContext, r: &wire::JoinGroupRequest) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: string(&r.group_id),
        session_timeout_ms: r.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if cx.api_version == 0 {
            r.session_timeout_ms
        } else {
            r.rebalance_timeout_ms
        },
        member_id: string(&r.member_id),
        group_instance_id: opt_string(&r.group_instance_id),
        protocol_type: string(&r.protocol_type),
        protocols: r
            .protocols
            .iter()
            .map(|p| (string(&p.name), p.metadata.clone()))
            .collect(),
        client_id: cx.client_id.clone(),
        client_host: cx.client_host.clone(),
        // KIP-394: from v4.
        require_known_member_id: cx.api_version >= 4,
        supports_skip_assignment: cx.api_version >= 9,
    }
}

fn sync_group(r: &wire::SyncGroupRequest) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: string(&r.group_id),
        generation_id: r.generation_id,
        member_id: string(&r.member_id),
        group_instance_id: opt_string(&r.group_instance_id),
        protocol_type: opt_string(&r.protocol_type),
        protocol_name: opt_string(&r.protocol_name),
        assignments: r
            .assignments
            .iter()
            .map(|a| (string(&a.member_id), a.assignment.clone()))
            .collect(),
    }
}

/// v0-2 name one member in the body; v3+ a batch.
fn leave_group(cx: &RequestContext, r: &wire::LeaveGroupRequest) -> LeaveGroupRequest {
    let members = if cx.api_version < 3 {
        vec![MemberIdentity {
            member_id: string(&r.member_id),
            group_instance_id: None,
        }]
    } else {
        r.members
            .iter()
            .map(|m| MemberIdentity {
                member_id: string(&m.member_id),
                group_instance_id: opt_string(&m.group_instance_id),
            })
            .collect()
    };
    LeaveGroupRequest {
        group_id: string(&r.group_id),
        members,
    }
}

fn offset_commit(r: &wire::OffsetCommitRequest) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: string(&r.group_id),
        generation_id: r.generation_id_or_member_epoch,
        member_id: string(&r.member_id),
        group_instance_id: opt_string(&r.group_instance_id),
        topics: r
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| OffsetCommitPartition {
                        partition_index: p.partition_index,
                        committed_offset: p.committed_offset,
                        committed_leader_epoch: p.committed_leader_epoch,
                        committed_metadata: opt_string(&p.committed_metadata),
                    })
                    .collect();
                (string(&t.name), partitions)
            })
            .collect(),
    }
}

/// v0-2 have no generation, member or instance id (KIP-447 added them in v3).
fn txn_offset_commit(
    cx: &RequestContext,
    r: &wire::TxnOffsetCommitRequest,
) -> TxnOffsetCommitRequest {
    let v3 = cx.api_version >= 3;
    TxnOffsetCommitRequest {
        transactional_id: string(&r.transactional_id),
        group_id: string(&r.group_id),
        producer_id: r.producer_id.0,
        producer_epoch: r.producer_epoch,
        generation_id: if v3 { r.generation_id } else { -1 },
        member_id: if v3 {
            string(&r.member_id)
        } else {
            String::new()
        },
        group_instance_id: if v3 {
            opt_string(&r.group_instance_id)
        } else {
            None
        },
        topics: r
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| OffsetCommitPartition {
                        partition_index: p.partition_index,
                        committed_offset: p.committed_offset,
                        committed_leader_epoch: p.committed_leader_epoch,
                        committed_metadata: opt_string(&p.committed_metadata),
                    })
                    .collect();
                (string(&t.name), partitions)
            })
            .collect(),
    }
}

/// v0-7 ask for one group; v8+ for a batch of groups. `require_stable` is v7+'s.
fn offset_fetch(cx: &RequestContext, r: &wire::OffsetFetchRequest) -> Vec<GroupRequest> {
    if cx.api_version < 8 {
        let topics = r.topics.as_ref().map(|topics| {
            topics
                .iter()
                .map(|t| (string(&t.name), t.partition_indexes.clone()))
                .collect()
        });
        return vec![GroupRequest::OffsetFetch(OffsetFetchRequest {
            group_id: string(&r.group_id),
            topics,
            require_stable: cx.api_version >= 7 && r.require_stable,
        })];
    }
    r.groups
        .iter()
        .map(|g| {
            let topics = g.topics.as_ref().map(|topics| {
                topics
                    .iter()
                    .map(|t| (string(&t.name), t.partition_indexes.clone()))
                    .collect()
            });
            GroupRequest::OffsetFetch(OffsetFetchRequest {
                group_id: string(&g.group_id),
                topics,
                require_stable: r.require_stable,
            })
        })
        .collect()
}

/// The wire response for the coordinator's responses to one wire request (several only for an
/// OffsetFetch v8+, in its groups' order, each with its group id). `None` if they do not make
/// one response.
pub fn to_response(
    api_version: i16,
    responses: Vec<(String, GroupResponse)>,
) -> Option<ResponseKind> {
    if responses
        .iter()
        .all(|(_, r)| matches!(r, GroupResponse::OffsetFetch(_)))
        && !responses.is_empty()
    {
        let groups = responses
            .into_iter()
            .map(|(group, r)| match r {
                GroupResponse::OffsetFetch(r) => (group, r),
                _ => unreachable!("all OffsetFetch"),
            })
            .collect();
        return Some(ResponseKind::OffsetFetch(offset_fetch_response(
            api_version,
            groups,
        )));
    }
    let [(_, response)] = <[_; 1]>::try_from(responses).ok()?;
    Some(match response {
        GroupResponse::JoinGroup(r) => ResponseKind::JoinGroup(join_group_response(api_version, r)),
        GroupResponse::SyncGroup(r) => ResponseKind::SyncGroup(
            wire::SyncGroupResponse::default()
                .with_error_code(r.error_code)
                .with_protocol_type(opt_str_bytes(&r.protocol_type))
                .with_protocol_name(opt_str_bytes(&r.protocol_name))
                .with_assignment(r.assignment),
        ),
        GroupResponse::Heartbeat(error) => {
            ResponseKind::Heartbeat(wire::HeartbeatResponse::default().with_error_code(error))
        }
        GroupResponse::LeaveGroup(r) => {
            ResponseKind::LeaveGroup(leave_group_response(api_version, r))
        }
        GroupResponse::OffsetCommit(r) => ResponseKind::OffsetCommit(offset_commit_response(r)),
        GroupResponse::TxnOffsetCommit(r) => {
            ResponseKind::TxnOffsetCommit(txn_offset_commit_response(r))
        }
        GroupResponse::OffsetFetch(_) => unreachable!("handled above"),
        GroupResponse::DescribeGroups(groups) => ResponseKind::DescribeGroups(
            wire::DescribeGroupsResponse::default().with_groups(
                groups
                    .into_iter()
                    .map(|g| described_group(api_version, g))
                    .collect(),
            ),
        ),
        GroupResponse::ListGroups(error, groups) => ResponseKind::ListGroups(
            wire::ListGroupsResponse::default()
                .with_error_code(error)
                .with_groups(groups.into_iter().map(listed_group).collect()),
        ),
    })
}

fn join_group_response(api_version: i16, r: super::JoinGroupResponse) -> wire::JoinGroupResponse {
    let members = r
        .members
        .iter()
        .map(|m| {
            WireJoinMember::default()
                .with_member_id(str_bytes(&m.member_id))
                .with_group_instance_id(opt_str_bytes(&m.group_instance_id))
                .with_metadata(m.metadata.clone())
        })
        .collect();
    // The protocol name is not nullable before v7.
    let protocol_name = if api_version < 7 {
        Some(str_bytes(r.protocol_name.as_deref().unwrap_or_default()))
    } else {
        opt_str_bytes(&r.protocol_name)
    };
    wire::JoinGroupResponse::default()
        .with_error_code(r.error_code)
        .with_generation_id(r.generation_id)
        .with_protocol_type(opt_str_bytes(&r.protocol_type))
        .with_protocol_name(protocol_name)
        .with_leader(str_bytes(&r.leader))
        .with_skip_assignment(r.skip_assignment)
        .with_member_id(str_bytes(&r.member_id))
        .with_members(members)
}

fn offset_commit_response(r: super::OffsetCommitResponse) -> wire::OffsetCommitResponse {
    let topic = |(topic, partitions): (String, Vec<(i32, i16)>)| {
        let partitions = partitions
            .into_iter()
            .map(|(p, e)| {
                OffsetCommitResponsePartition::default()
                    .with_partition_index(p)
                    .with_error_code(e)
            })
            .collect();
        OffsetCommitResponseTopic::default()
            .with_name(TopicName(str_bytes(&topic)))
            .with_partitions(partitions)
    };
    wire::OffsetCommitResponse::default().with_topics(r.topics.into_iter().map(topic).collect())
}

fn txn_offset_commit_response(r: super::TxnOffsetCommitResponse) -> wire::TxnOffsetCommitResponse {
    let topic = |(topic, partitions): (String, Vec<(i32, i16)>)| {
        let partitions = partitions
            .into_iter()
            .map(|(p, e)| {
                TxnOffsetCommitResponsePartition::default()
                    .with_partition_index(p)
                    .with_error_code(e)
            })
            .collect();
        TxnOffsetCommitResponseTopic::default()
            .with_name(TopicName(str_bytes(&topic)))
            .with_partitions(partitions)
    };
    wire::TxnOffsetCommitResponse::default().with_topics(r.topics.into_iter().map(topic).collect())
}

fn listed_group(g: super::ListedGroup) -> WireListedGroup {
    WireListedGroup::default()
        .with_group_id(GroupId(str_bytes(&g.group_id)))
        .with_protocol_type(str_bytes(&g.protocol_type))
        .with_group_state(str_bytes(&g.group_state))
        .with_group_type(str_bytes(&g.group_type))
}

/// v0-2 answer the one member's error at the top level.
fn leave_group_response(
    api_version: i16,
    r: super::LeaveGroupResponse,
) -> wire::LeaveGroupResponse {
    if api_version < 3 {
        let error = r.members.first().map_or(r.error_code, |m| m.error_code);
        let error = if r.error_code != 0 {
            r.error_code
        } else {
            error
        };
        return wire::LeaveGroupResponse::default().with_error_code(error);
    }
    wire::LeaveGroupResponse::default()
        .with_error_code(r.error_code)
        .with_members(
            r.members
                .into_iter()
                .map(|m| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(&m.member_id))
                        .with_group_instance_id(opt_str_bytes(&m.group_instance_id))
                        .with_error_code(m.error_code)
                })
                .collect(),
        )
}

/// From v6 an unknown group is GROUP_ID_NOT_FOUND rather than a Dead group without error.
fn described_group(api_version: i16, g: super::DescribedGroup) -> WireDescribedGroup {
    let unknown = g.error_code == error_code::NONE && g.group_state == "Dead";
    let error = if api_version >= 6 && unknown {
        error_code::GROUP_ID_NOT_FOUND
    } else {
        g.error_code
    };
    WireDescribedGroup::default()
        .with_error_code(error)
        .with_group_id(GroupId(str_bytes(&g.group_id)))
        .with_group_state(str_bytes(&g.group_state))
        .with_protocol_type(str_bytes(&g.protocol_type))
        .with_protocol_data(str_bytes(&g.protocol_data))
        .with_members(
            g.members
                .into_iter()
                .map(|m| {
                    WireDescribedGroupMember::default()
                        .with_member_id(str_bytes(&m.member_id))
                        .with_group_instance_id(opt_str_bytes(&m.group_instance_id))
                        .with_client_id(str_bytes(&m.client_id))
                        .with_client_host(str_bytes(&m.client_host))
                        .with_member_metadata(m.member_metadata)
                        .with_member_assignment(m.member_assignment)
                })
                .collect(),
        )
}

/// v0-7: one group's topics and error at the top level; v8+: a list of groups.
fn offset_fetch_response(
    api_version: i16,
    groups: Vec<(String, OffsetFetchResponse)>,
) -> wire::OffsetFetchResponse {
    if api_version < 8 {
        let Some((_, r)) = groups.into_iter().next() else {
            return wire::OffsetFetchResponse::default();
        };
        let topics = r
            .topics
            .into_iter()
            .map(|(topic, partitions)| {
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(str_bytes(&topic)))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|p| {
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_committed_offset(p.committed_offset)
                                    .with_committed_leader_epoch(p.committed_leader_epoch)
                                    .with_metadata(opt_str_bytes(&p.metadata))
                                    .with_error_code(p.error_code)
                            })
                            .collect(),
                    )
            })
            .collect();
        return wire::OffsetFetchResponse::default()
            .with_error_code(r.error_code)
            .with_topics(topics);
    }
    let groups = groups
        .into_iter()
        .map(|(group_id, r)| {
            let topics = r
                .topics
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetFetchResponseTopics::default()
                        .with_name(TopicName(str_bytes(&topic)))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|p| {
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(p.partition_index)
                                        .with_committed_offset(p.committed_offset)
                                        .with_committed_leader_epoch(p.committed_leader_epoch)
                                        .with_metadata(opt_str_bytes(&p.metadata))
                                        .with_error_code(p.error_code)
                                })
                                .collect(),
                        )
                })
                .collect();
            OffsetFetchResponseGroup::default()
                .with_group_id(GroupId(str_bytes(&group_id)))
                .with_error_code(r.error_code)
                .with_topics(topics)
        })
        .collect();
    wire::OffsetFetchResponse::default().with_groups(groups)
}
