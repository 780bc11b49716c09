//! The checkers: one file per guarantee, each reading only the history and the final state of
//! the cluster, using no randomness. A checker returns the violations it found.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::history::{Op, TraceEvent};

pub mod aborted_read;
pub mod divergence;
pub mod duplicate;
pub mod eos_violation;
mod final_log;
#[cfg(test)]
mod fixtures;
pub mod group_overlap;
pub mod group_skip;
pub mod hw_regression;
pub mod inconsistent_read;
pub mod lost_write;
pub mod metadata_lost;
pub mod nonmonotonic_poll;
mod offset_commit;
pub mod offset_regression;
pub mod panic;
mod poll_sequence;
pub mod poll_skip;
pub mod reorder;
pub mod split_brain;
mod txn_view;
pub mod unavailable;
pub mod uncommitted_read;
pub mod zombie_write;

/// One violation, as `summary.json` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub check: String,
    pub at_ms: u64,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
}

/// One record of a final log. Control records (transaction markers) are not records here: they
/// are `FinalMarker`s.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalRecord {
    pub offset: i64,
    /// The record's value as UTF-8 (workload values are strings like `p1-17`); `None` for null.
    pub value: Option<String>,
    /// The producer id of its batch, for a batch that has one (an idempotent or transactional
    /// producer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer_id: Option<i64>,
    /// The producer epoch of its batch, with `producer_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i16>,
    /// For a record of a transactional batch: what the next control marker of its producer id
    /// in this log decided (none yet: `open`). `None` for a record written outside a transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<TxnStatus>,
}

impl FinalRecord {
    /// Whether a `read_committed` consumer may read it (KIP-98): it was written outside a
    /// transaction, or its transaction committed.
    pub fn is_committed_data(&self) -> bool {
        matches!(self.txn, None | Some(TxnStatus::Committed))
    }
}

/// What became of a transactional record, as the log shows it: the control marker of its
/// producer id that follows it (KIP-98, "Transaction markers").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxnStatus {
    Committed,
    Aborted,
    /// No marker of its producer id follows it in the log (yet).
    Open,
}

/// A control batch's marker: the end of a transaction of `producer_id` in one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalMarker {
    pub offset: i64,
    pub producer_id: i64,
    pub epoch: i16,
    /// `true` for a COMMIT marker, `false` for an ABORT marker.
    pub commit: bool,
}

/// The final state of one partition: what its leader holds below the high watermark.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalPartition {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// Records below the high watermark, in offset order (offsets may have gaps after compaction).
    pub committed: Vec<FinalRecord>,
    /// The transaction markers of the same log, in offset order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub markers: Vec<FinalMarker>,
}

/// The final state of one replica of a partition: its whole log, as recovery would read it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalReplica {
    /// The high watermark the replica last reported, at most its log end offset.
    pub high_watermark: i64,
    pub log_end_offset: i64,
    /// Every record of its log, at any offset, in offset order.
    pub records: Vec<FinalRecord>,
    /// The transaction markers of its log, in offset order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub markers: Vec<FinalMarker>,
}

/// The start of a controller's final metadata log: the offset of its first entry, and the id of
/// the latest whole snapshot (the state of the log below `end_offset`, whose last entry is of
/// `epoch`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataLogStart {
    pub log_start: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotPoint>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPoint {
    pub end_offset: i64,
    pub epoch: i32,
}

/// The final state of the cluster, by partition name (`orders-0`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalState {
    pub partitions: BTreeMap<String, FinalPartition>,
    /// Nodes that panicked: (node, at_ms, message).
    pub panics: Vec<(String, u64, String)>,
    /// Each controller's final metadata log (`__cluster_metadata-0`), as the epoch of each
    /// entry by offset from its start (`metadata_log_starts`; 0 when absent).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata_logs: BTreeMap<String, Vec<i32>>,
    /// Where each controller's final metadata log starts and the latest snapshot it would load
    /// (KIP-630), for the controllers whose log does not simply start at 0 without one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata_log_starts: BTreeMap<String, MetadataLogStart>,
    /// Partitions whose topic was deleted (`DeleteTopics`), by name, with when the last broker
    /// dropped its replica: what was acknowledged before is gone by the user's will.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deleted: BTreeMap<String, u64>,
    /// Every replica of each partition, by partition name, then broker id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replicas: BTreeMap<String, BTreeMap<i32, FinalReplica>>,
}

/// The offsets a violation's detail lists: the first few, then `…` if there are more.
pub(crate) fn abbreviated(offsets: &[i64]) -> String {
    /// The offsets listed before abbreviating.
    const SHOWN: usize = 5;
    let mut shown: Vec<String> = offsets.iter().take(SHOWN).map(i64::to_string).collect();
    if offsets.len() > SHOWN {
        shown.push("…".to_string());
    }
    shown.join(", ")
}

/// Runs every checker over a history, the cluster's trace and its final state.
pub fn check_all(history: &[Op], trace: &[TraceEvent], state: &FinalState) -> Vec<Violation> {
    let mut found = Vec::new();
    found.extend(split_brain::check(trace));
    found.extend(metadata_lost::check(trace, state));
    found.extend(hw_regression::check(trace));
    found.extend(divergence::check(trace, state));
    let keys = final_log::SentKeys::from_history(history);
    let logs = final_log::FinalLog::by_partition(state, &keys);
    found.extend(lost_write::check_with(history, state, &keys, &logs));
    found.extend(inconsistent_read::check_with(history, &keys, &logs));
    found.extend(poll_skip::check(history, state));
    found.extend(nonmonotonic_poll::check(history, state));
    found.extend(group_overlap::check(history));
    found.extend(offset_regression::check(trace));
    found.extend(group_skip::check(history, trace, state));
    found.extend(panic::check(history, state));
    found.extend(duplicate::check(history, state));
    found.extend(reorder::check(history, state));
    found.extend(aborted_read::check(history, state));
    found.extend(uncommitted_read::check(history, trace, state));
    found.extend(eos_violation::check(history, trace, state));
    found.extend(zombie_write::check(history, trace, state));
    found.extend(unavailable::check(history, trace, state));
    found.sort_by(|a, b| (a.at_ms, &a.check, &a.detail).cmp(&(b.at_ms, &b.check, &b.detail)));
    found
}

#[cfg(test)]
mod tests {
    use super::fixtures::{acked, committed_poll, marker, plain, record_of, send, state};
    use super::*;

    #[test]
    fn check_all_runs_the_exactly_once_checks() {
        let (t1, t2) = ((7, 0), (7, 1));
        let mut history: Vec<Op> = [
            send("p1", "p1-0", None, acked("p1-0", "orders-0", 0), 10),
            send("p1", "p1-1", None, acked("p1-1", "orders-0", 1), 20),
        ]
        .concat();
        history.extend(committed_poll("c", 40, &[("orders-0", 3, "t-0")]));
        let log = FinalPartition {
            log_start_offset: 0,
            high_watermark: 7,
            committed: vec![
                plain(0, "p1-0"),
                plain(1, "p1-1"),
                plain(2, "p1-1"),
                record_of(3, "t-0", t2, Some(TxnStatus::Aborted)),
                record_of(5, "t-1", t1, Some(TxnStatus::Open)),
            ],
            markers: vec![marker(4, t2, false)],
        };
        let found = check_all(&history, &[], &state(vec![("orders-0", log)]));
        let mut names: Vec<&str> = found.iter().map(|v| v.check.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            vec!["aborted-read", "duplicate", "zombie-write"],
            "{found:?}"
        );
    }
}
