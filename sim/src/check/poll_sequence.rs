//! The reads one consumer made of one partition, one after the other, placed in the final log:
//! what `poll-skip` and `nonmonotonic-poll` judge (Jepsen's Kafka workload, Kingsbury 2022,
//! <https://jepsen.io/analyses/redpanda-21.10.1>: with assigned partitions, a consumer's
//! successive reads of a partition must advance one record at a time).
//!
//! Each record a `poll` returned `ok` is placed at its index in the partition's final committed
//! log (an index, not an offset, so that offsets compaction removed are no gap). A step is two
//! successive placed reads by one process of one partition, within one poll or across two.
//!
//! A sequence is cut, and starts over, where the consumer was entitled to move: an `ok`
//! operation of that process named `reset` (`auto.offset.reset`), `seek`, `assign`, `revoke` or
//! `rebalance`, for the partitions it names (`partition`, or the list `partitions`; every
//! partition when it names none), and at a read the final log cannot place (another value at
//! that offset, or none: `inconsistent-read` reports it, and the position after it is unknown).

use std::collections::BTreeMap;

use crate::history::{Op, OpType};
use crate::val::Val;

use super::{FinalState, Violation};

/// A read placed in the final log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placed {
    pub offset: i64,
    /// Its position among the final log's committed records.
    pub index: usize,
    pub at_ms: u64,
}

/// Two successive reads of `partition` by `process`.
#[derive(Clone, Debug)]
pub(crate) struct Step<'a> {
    pub process: &'a str,
    pub partition: &'a str,
    pub prev: Placed,
    pub next: Placed,
    /// The later read was a `read_committed` poll's: records of aborted or still open
    /// transactions are not its to return.
    pub read_committed: bool,
}

impl Step<'_> {
    /// The violation of `check` this step is, reported at the later read.
    pub(crate) fn violation(&self, check: &str, detail: String) -> Violation {
        Violation {
            check: check.to_string(),
            at_ms: self.next.at_ms,
            detail,
            partition: Some(self.partition.to_string()),
        }
    }
}

/// The operations after which a consumer's position may move anywhere.
const MOVES: [&str; 5] = ["reset", "seek", "assign", "revoke", "rebalance"];

/// Every step of every consumer, in history order.
pub(crate) fn steps<'a>(history: &'a [Op], state: &'a FinalState) -> Vec<Step<'a>> {
    let mut last: BTreeMap<(&str, &str), Placed> = BTreeMap::new();
    let mut found = Vec::new();
    for op in history.iter().filter(|op| op.kind == OpType::Ok) {
        let process = op.process.as_str();
        if MOVES.contains(&op.f.as_str()) {
            cut(&mut last, process, &op.value);
            continue;
        }
        if op.f != "poll" {
            continue;
        }
        let records = op.value.get("records").and_then(Val::as_array);
        let read_committed =
            op.value.get("isolation").and_then(Val::as_str) == Some("read_committed");
        for record in records.into_iter().flatten() {
            let Some((partition, offset)) = partition_offset(record) else {
                continue;
            };
            let key = (process, partition);
            let Some(index) = place(state, partition, offset, record.get("value")) else {
                last.remove(&key);
                continue;
            };
            let next = Placed {
                offset,
                index,
                at_ms: op.at_ms,
            };
            if let Some(prev) = last.insert(key, next) {
                found.push(Step {
                    process,
                    partition,
                    prev,
                    next,
                    read_committed,
                });
            }
        }
    }
    found
}

/// Forgets `process`'s positions in the partitions `value` names (all when it names none).
fn cut(last: &mut BTreeMap<(&str, &str), Placed>, process: &str, value: &Val) {
    let mut named: Vec<&str> = value
        .get("partitions")
        .and_then(Val::as_array)
        .map(|a| a.iter().filter_map(Val::as_str).collect())
        .unwrap_or_default();
    named.extend(value.get("partition").and_then(Val::as_str));
    last.retain(|(p, partition), _| {
        *p != process || (!named.is_empty() && !named.contains(partition))
    });
}

fn partition_offset(record: &Val) -> Option<(&str, i64)> {
    Some((
        record.get("partition")?.as_str()?,
        record.get("offset")?.as_i64()?,
    ))
}

/// The index of `offset` among the final committed records, if the final log holds the value
/// read there.
fn place(state: &FinalState, partition: &str, offset: i64, value: Option<&Val>) -> Option<usize> {
    let log = state.partitions.get(partition)?;
    let index = log
        .committed
        .binary_search_by_key(&offset, |r| r.offset)
        .ok()?;
    let read = match value {
        None => None,
        Some(v) if v.is_null() => None,
        Some(v) => Some(v.as_str()?),
    };
    (log.committed[index].value.as_deref() == read).then_some(index)
}

/// The offsets of the final log's committed records strictly between two indexes of `partition`
/// that a consumer could have returned: for a `read_committed` one, none of an aborted or open
/// transaction (KIP-98: such a consumer never sees them).
pub(crate) fn offsets_between(
    state: &FinalState,
    partition: &str,
    from: usize,
    to: usize,
    read_committed: bool,
) -> Vec<i64> {
    state.partitions[partition].committed[from + 1..to]
        .iter()
        .filter(|r| {
            !read_committed
                || !matches!(
                    r.txn,
                    Some(super::TxnStatus::Aborted | super::TxnStatus::Open)
                )
        })
        .map(|r| r.offset)
        .collect()
}
