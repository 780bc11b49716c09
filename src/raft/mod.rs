//! KRaft: the Raft quorum of controllers that keeps the cluster's metadata log
//! (`__cluster_metadata`), as KIP-595 specifies it — pull-based replication (followers fetch),
//! leader epochs, randomized election timeouts, check-quorum.
//!
//! `core` is the replica as a pure state machine; `driver` is the controller process that performs
//! its commands against the disk (`quorum_state`, the metadata log) and the network.
//! `observer` is a broker's side: a non-voter that fetches the log as KIP-595's observers do.

pub mod core;
pub mod driver;
pub mod messages;
pub mod observer;
pub mod quorum_state;
pub mod snapshot;
pub mod wire;

#[cfg(test)]
mod observer_tests;
#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod snapshot_core_tests;

pub use self::core::{Command, QuorumStateRecord, RaftBugs, RaftConfig, RaftCore, RoleName};
pub use messages::{
    Entry, Epoch, FetchBody, LogPosition, Message, NodeId, SnapshotBody, SnapshotId,
};
pub use observer::{ObserverCore, ObserverEvent};
