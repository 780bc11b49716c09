//! The group coordinator's requests and responses: one variant per API, with the field names of
//! Kafka's messages (`JoinGroupRequest.json`, …), free of the wire (`wire` maps `kafka-protocol`'s
//! messages onto them and back). What a request's body does not carry but the coordinator needs
//! (the client id of the header, the client's host, the API version) is here too.

use bytes::Bytes;

/// `JoinGroupRequest` (v0-9) with the header's client id and the connection's host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinGroupRequest {
    pub group_id: String,
    pub session_timeout_ms: i32,
    /// v0 has none: the session timeout stands in, as Kafka does.
    pub rebalance_timeout_ms: i32,
    /// Empty for a member without one yet.
    pub member_id: String,
    /// KIP-345 static membership (v5+).
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    /// (assignor name, subscription metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub client_id: String,
    pub client_host: String,
    /// KIP-394: v4+ clients must first get a member id (`MEMBER_ID_REQUIRED`) and join with it.
    pub require_known_member_id: bool,
    /// KIP-814: v9+ clients understand `skip_assignment`, so a static leader that rejoins
    /// without a rebalance is told it leads (and must not assign).
    pub supports_skip_assignment: bool,
}

/// `JoinGroupResponse`'s `JoinGroupResponseMember`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinGroupResponseMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// `JoinGroupResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinGroupResponse {
    pub error_code: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// Empty when there is none.
    pub leader: String,
    /// KIP-814: a static leader that rejoined without a rebalance must not assign again.
    pub skip_assignment: bool,
    pub member_id: String,
    /// Every member's subscription, for the leader only.
    pub members: Vec<JoinGroupResponseMember>,
}

impl JoinGroupResponse {
    /// An error, with the defaults of `JoinGroupResponseData`.
    pub fn error(error_code: i16, member_id: &str) -> JoinGroupResponse {
        JoinGroupResponse {
            error_code,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members: Vec::new(),
        }
    }
}

/// `SyncGroupRequest` (v0-5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v5+: checked against the group's when given.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// (member id, assignment): the leader's, empty for the others.
    pub assignments: Vec<(String, Bytes)>,
}

/// `SyncGroupResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncGroupResponse {
    pub error_code: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncGroupResponse {
    pub fn error(error_code: i16) -> SyncGroupResponse {
        SyncGroupResponse {
            error_code,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// `HeartbeatRequest` (v0-4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// `LeaveGroupRequest`'s `MemberIdentity` (v3+; a v0-2 request is one member without instance id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberIdentity {
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// `LeaveGroupRequest` (v0-5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveGroupRequest {
    pub group_id: String,
    pub members: Vec<MemberIdentity>,
}

/// `LeaveGroupResponse`'s `MemberResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveGroupMemberResponse {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error_code: i16,
}

/// `LeaveGroupResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveGroupResponse {
    pub error_code: i16,
    pub members: Vec<LeaveGroupMemberResponse>,
}

/// `OffsetCommitRequestPartition`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitPartition {
    pub partition_index: i32,
    pub committed_offset: i64,
    /// -1 when not known.
    pub committed_leader_epoch: i32,
    pub committed_metadata: Option<String>,
}

/// `OffsetCommitRequest` (v2-9; `retention_time_ms` of v2-4 is not modelled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    /// -1 for a consumer outside group management (or an admin client).
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// (topic, partitions).
    pub topics: Vec<(String, Vec<OffsetCommitPartition>)>,
}

/// `OffsetCommitResponse`: (topic, [(partition, error code)]), in the request's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitResponse {
    pub topics: Vec<(String, Vec<(i32, i16)>)>,
}

/// `TxnOffsetCommitRequest` (v0-5): a transactional producer commits its consumer's offsets
/// within its transaction (KIP-98). v3+ carry the consumer's generation, member id and instance
/// id so that the coordinator fences a zombie of an older generation (KIP-447); before v3 they
/// are -1, empty and none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnOffsetCommitRequest {
    pub transactional_id: String,
    pub group_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// -1 when not known (before v3, or a consumer outside group management).
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// (topic, partitions).
    pub topics: Vec<(String, Vec<OffsetCommitPartition>)>,
}

/// `TxnOffsetCommitResponse` has the shape of an OffsetCommit's: (topic, [(partition, error
/// code)]), in the request's order.
pub type TxnOffsetCommitResponse = OffsetCommitResponse;

/// `OffsetFetchRequest` for one group (v0-7's only group, or one of v8+'s `groups`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetFetchRequest {
    pub group_id: String,
    /// (topic, partitions); `None` for every committed offset of the group.
    pub topics: Option<Vec<(String, Vec<i32>)>>,
    /// v7+ (KIP-447): a partition with a pending transactional offset answers
    /// UNSTABLE_OFFSET_COMMIT rather than its last committed offset, so that a consumer does not
    /// start from an offset its group's transaction is about to move.
    pub require_stable: bool,
}

/// `OffsetFetchResponsePartition(s)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetFetchPartition {
    pub partition_index: i32,
    /// -1 when the group has no committed offset for it.
    pub committed_offset: i64,
    pub committed_leader_epoch: i32,
    pub metadata: Option<String>,
    pub error_code: i16,
}

/// `OffsetFetchResponse` for one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetFetchResponse {
    pub error_code: i16,
    /// (topic, partitions), by topic and partition.
    pub topics: Vec<(String, Vec<OffsetFetchPartition>)>,
}

/// `DescribeGroupsResponse`'s `DescribedGroupMember`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedGroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_metadata: Bytes,
    pub member_assignment: Bytes,
}

/// `DescribeGroupsResponse`'s `DescribedGroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedGroup {
    pub error_code: i16,
    pub group_id: String,
    pub group_state: String,
    pub protocol_type: String,
    /// The chosen protocol, only when the group is Stable.
    pub protocol_data: String,
    pub members: Vec<DescribedGroupMember>,
}

/// `ListGroupsRequest` (v0-5): filters, empty for all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListGroupsRequest {
    pub states_filter: Vec<String>,
    pub types_filter: Vec<String>,
}

/// `ListGroupsResponse`'s `ListedGroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub group_state: String,
    pub group_type: String,
}

/// One request to the group coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupRequest {
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    TxnOffsetCommit(TxnOffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    DescribeGroups(Vec<String>),
    ListGroups(ListGroupsRequest),
}

/// One response of the group coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupResponse {
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    /// The error code.
    Heartbeat(i16),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    TxnOffsetCommit(TxnOffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    DescribeGroups(Vec<DescribedGroup>),
    /// (error code, groups).
    ListGroups(i16, Vec<ListedGroup>),
}
