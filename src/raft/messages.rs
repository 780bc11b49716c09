//! KRaft's messages (KIP-595), as the core sees them. The driver maps them onto Kafka's wire
//! messages (`Vote`, `BeginQuorumEpoch`, `EndQuorumEpoch`, `Fetch`) of the `kafka-protocol` crate.

use bytes::Bytes;

pub type NodeId = i32;
pub type Epoch = i32;

/// One record of the metadata log, with the epoch of the leader that appended it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub epoch: Epoch,
    pub data: Bytes,
}

/// A snapshot's id (Kafka's `OffsetAndEpoch` for snapshots, KIP-630): it holds the state of the
/// log below `end_offset`, whose last entry has `epoch`. Ordered by offset, then epoch, as Kafka
/// orders them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotId {
    pub end_offset: i64,
    pub epoch: Epoch,
}

/// A position in the log: the epoch of the last entry and the offset after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogPosition {
    pub last_epoch: Epoch,
    pub end_offset: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A candidate asks for a vote in `epoch`, showing how far its log goes.
    VoteRequest { epoch: Epoch, last: LogPosition },
    /// A voter's answer; `leader` is the leader it knows in `epoch`, if any, so a stale
    /// candidate (a restarted former leader) learns where the quorum is instead of disrupting it.
    VoteResponse {
        epoch: Epoch,
        granted: bool,
        leader: Option<NodeId>,
    },
    /// The new leader announces itself; voters stop their election timers.
    BeginQuorumEpoch { epoch: Epoch },
    /// A resigning leader asks voters to elect a successor now, in the given order.
    EndQuorumEpoch {
        epoch: Epoch,
        successors: Vec<NodeId>,
    },
    /// A follower pulls from `fetch_offset`, whose previous entry has `last_fetched_epoch`.
    FetchRequest {
        epoch: Epoch,
        fetch_offset: i64,
        last_fetched_epoch: Epoch,
    },
    FetchResponse {
        epoch: Epoch,
        leader: Option<NodeId>,
        body: FetchBody,
    },
    /// KIP-630: a follower whose fetch offset is below the leader's log start pulls the
    /// leader's snapshot, `position` bytes into it.
    FetchSnapshotRequest {
        epoch: Epoch,
        snapshot: SnapshotId,
        position: i64,
    },
    FetchSnapshotResponse {
        epoch: Epoch,
        leader: Option<NodeId>,
        body: SnapshotBody,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotBody {
    /// The snapshot's bytes from `position`; it is `size` bytes long (`UnalignedRecords`).
    Chunk {
        snapshot: SnapshotId,
        size: i64,
        position: i64,
        bytes: Bytes,
    },
    /// `SNAPSHOT_NOT_FOUND`: the leader no longer has (or never had) that snapshot.
    NotFound,
    /// `FENCED_LEADER_EPOCH`, or this node is not the leader.
    Fenced,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchBody {
    /// Entries from `from_offset`, and the leader's high watermark.
    Records {
        from_offset: i64,
        entries: Vec<Entry>,
        high_watermark: i64,
    },
    /// The follower's log diverges: the leader's log ends `epoch` at `end_offset`
    /// (KIP-595's `DivergingEpoch`); truncate there and fetch again.
    Diverging { epoch: Epoch, end_offset: i64 },
    /// The request's epoch is stale (`FENCED_LEADER_EPOCH`) or this node is not the leader.
    Fenced,
    /// The fetch offset is below the leader's log start (or its epoch older than the snapshot
    /// there): fetch this snapshot first (KIP-630's `SnapshotId` in the Fetch response).
    Snapshot { snapshot: SnapshotId },
}

/// The data of the entry a new leader appends at the start of its epoch (KIP-595's
/// `LeaderChangeMessage`, which Kafka writes as a control record): `leader-change:<id>`.
pub const LEADER_CHANGE_PREFIX: &[u8] = b"leader-change:";

impl Entry {
    /// Whether this is a leader's start-of-epoch entry rather than a record of the state
    /// machine (Kafka's control records, which the metadata layer skips).
    pub fn is_control(&self) -> bool {
        self.data.starts_with(LEADER_CHANGE_PREFIX)
    }
}
