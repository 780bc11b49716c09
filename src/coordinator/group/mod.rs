//! Kafka's group coordinator for the classic consumer-group protocol, as a pure state machine.
//!
//! One [`GroupCoordinator`] is one shard of Kafka's new group coordinator (`GroupCoordinatorShard`
//! with its `GroupMetadataManager` and `OffsetMetadataManager`): the groups and offsets of one
//! `__consumer_offsets` partition. A request or a tick goes in; records to append to that
//! partition and responses come out ([`CoordinatorOutput`]), and `replay` applies records, which is
//! how a new coordinator loads a partition it now leads. No I/O, no clock of its own (every call
//! carries `now_ms`), no randomness but the seeded stream it was given (member ids).
//!
//! How a broker drives it (`crate::broker::group_coordinator`):
//! - FindCoordinator: the group's partition is [`partition_for`]`(group, offsets.topic.num.partitions)`;
//!   its leader is the coordinator;
//! - becoming that partition's leader: [`GroupCoordinator::new`] with a seeded stream, then
//!   [`GroupCoordinator::load`] with every record of the partition (decoded with
//!   [`CoordinatorRecord::decode`]); losing it: [`GroupCoordinator::unload`];
//! - each request: [`wire::from_request`], [`GroupCoordinator::handle`] with a [`RequestId`],
//!   append the output's records (`encode_key`, `encode_value`), then its transactional batch
//!   if any (a TxnOffsetCommit's: a transactional batch of the producer's id and epoch), and
//!   once they are committed send its responses through [`wire::to_response`];
//! - a transaction marker the broker appended to the partition (WriteTxnMarkers):
//!   [`GroupCoordinator::replay_end_transaction_marker`]; on loading, a log with transactional
//!   batches and markers is given as [`LogEntry`]s to [`GroupCoordinator::load_log`];
//! - the clock: [`GroupCoordinator::tick`] at [`GroupCoordinator::next_deadline_ms`] (or
//!   regularly), its output handled as a request's.
//!
//! The parts, by concern:
//! - `classic_group`: `ClassicGroup` and `ClassicGroupMember`, the per-group state and its rules;
//! - `coordinator`: the shard: dispatch, the timers, replay, loading and unloading;
//! - `join`: JoinGroup (new, static and known members);
//! - `rebalance`: the join and sync phases and their timers;
//! - `sync`: SyncGroup, Heartbeat and LeaveGroup;
//! - `offsets`: OffsetCommit, OffsetFetch and offset expiration;
//! - `txn_offsets`: TxnOffsetCommit, the pending transactional offsets and the transaction
//!   markers that commit or abort them;
//! - `describe`: DescribeGroups and ListGroups;
//! - `records`: the `__consumer_offsets` record formats (keys and values) and their codec;
//! - `requests`: the request and response types, with Kafka's field names;
//! - `wire`: the mapping from and to `kafka-protocol`'s messages.

mod classic_group;
mod coordinator;
mod describe;
mod join;
mod offsets;
mod rebalance;
pub mod records;
mod requests;
mod sync;
mod txn_offsets;
pub mod wire;

#[cfg(test)]
mod tests;

pub use classic_group::{ClassicGroup, ClassicGroupMember, ClassicGroupState};
pub use coordinator::{
    CoordinatorOutput, GroupCoordinator, LogEntry, OffsetAndMetadata, TransactionalBatch,
};
pub use records::{CoordinatorRecord, GroupMetadataValue, MemberMetadata, OffsetCommitValue};
pub use requests::*;
pub use txn_offsets::MaterializedOffset;

/// Kafka's error codes (`org.apache.kafka.common.protocol.Errors`) the group coordinator answers.
pub mod error_code {
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const NONE: i16 = 0;
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
}

/// The member id of a member that has none yet (`JoinGroupRequest.UNKNOWN_MEMBER_ID`).
pub const UNKNOWN_MEMBER_ID: &str = "";

/// The group coordinator's configuration, with Kafka's names and defaults
/// (`GroupCoordinatorConfig`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupCoordinatorConfig {
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group waits
    /// for more members, extended while members keep arriving, up to the rebalance timeout.
    pub initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// How long a new member's JoinGroup may wait in a rebalance before the member is dropped
    /// (`classicGroupNewMemberJoinTimeoutMs`, 5 minutes, not configurable in Kafka).
    pub new_member_join_timeout_ms: u64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// `offsets.retention.minutes`, in ms: an empty group's offsets expire this long after it
    /// became empty (after the commit, for a group without a protocol type).
    pub offsets_retention_ms: u64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: u64,
    /// The contract's `offset-commit-fencing` protocol variant. Off, an OffsetCommit is not
    /// checked against the group's generation and members, so a zombie member can commit.
    pub offset_commit_fencing: bool,
}

impl Default for GroupCoordinatorConfig {
    fn default() -> Self {
        GroupCoordinatorConfig {
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            new_member_join_timeout_ms: 300_000,
            offset_metadata_max_bytes: 4_096,
            offsets_retention_ms: 10_080 * 60 * 1_000,
            offsets_retention_check_interval_ms: 600_000,
            offset_commit_fencing: true,
        }
    }
}

/// `offsets.topic.num.partitions`' default.
pub const OFFSETS_TOPIC_NUM_PARTITIONS: i32 = 50;

/// The `__consumer_offsets` partition of a group: `Utils.abs(groupId.hashCode()) %
/// offsets.topic.num.partitions` (`GroupCoordinatorService.partitionFor`), with Java's
/// `String.hashCode` over UTF-16 code units and `Utils.abs` mapping `Integer.MIN_VALUE` to 0.
pub fn partition_for(group_id: &str, num_partitions: i32) -> i32 {
    assert!(
        num_partitions > 0,
        "offsets.topic.num.partitions must be positive"
    );
    let hash = java_string_hash(group_id);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % num_partitions
}

/// Java's `String.hashCode`: `s[0]*31^(n-1) + … + s[n-1]` in wrapping 32-bit arithmetic.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// A request's identity, supplied by the driver, so that a response the coordinator gives later
/// (a JoinGroup answered when the rebalance completes, a SyncGroup when the leader's assignment
/// is written) finds its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);
