//! What the exactly-once checkers (`duplicate`, `reorder`, `aborted-read`, `uncommitted-read`,
//! `eos-violation`, `zombie-write`) share: the final logs indexed by value with each record's
//! transaction status, the sends of the history in each process's order, and the polls of
//! `read_committed` consumers.
//!
//! A record's status is the final state's (`FinalRecord::txn`): the next control marker of its
//! producer id in the log decides it (KIP-98), and a record that no marker follows is `open`.
//! What a `read_committed` consumer may read, and what counts as the committed log here, is a
//! record written outside a transaction or of a committed one (`FinalRecord::is_committed_data`).

use std::collections::BTreeMap;

use super::{FinalRecord, FinalState};
use crate::history::{Op, OpType};
use crate::val::Val;

/// The topic of a partition name (`orders-0` → `orders`).
pub(crate) fn topic_of(partition: &str) -> &str {
    partition
        .rsplit_once('-')
        .map_or(partition, |(topic, _)| topic)
}

/// Where a value is in the final logs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Place<'a> {
    pub partition: &'a str,
    pub record: &'a FinalRecord,
}

/// Every record of the final logs (the last leaders' whole logs), by value, in partition then
/// offset order.
pub(crate) fn places_by_value(state: &FinalState) -> BTreeMap<&str, Vec<Place<'_>>> {
    let mut places: BTreeMap<&str, Vec<Place>> = BTreeMap::new();
    for (partition, log) in &state.partitions {
        for record in &log.committed {
            if let Some(value) = record.value.as_deref() {
                places
                    .entry(value)
                    .or_default()
                    .push(Place { partition, record });
            }
        }
    }
    places
}

/// A `send` of the history: who sent it, its place in that process's sending order, and when
/// it was invoked and completed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sent<'a> {
    pub process: &'a str,
    /// Its position among the sends `process` invoked, from 0.
    pub seq: usize,
    pub invoked_ms: u64,
    /// When it completed (`ok`, `fail` or `info`), if it did.
    pub done_ms: Option<u64>,
}

impl Sent<'_> {
    /// When the sender last heard of it.
    pub(crate) fn last_ms(&self) -> u64 {
        self.done_ms.unwrap_or(self.invoked_ms)
    }
}

/// Every `send` of the history by the value it wrote (values are unique per write; a value
/// sent more than once keeps every send, in history order).
pub(crate) fn sends(history: &[Op]) -> BTreeMap<&str, Vec<Sent<'_>>> {
    let mut sent: BTreeMap<&str, Vec<Sent>> = BTreeMap::new();
    let mut seq: BTreeMap<&str, usize> = BTreeMap::new();
    // Each process's pending send, by value.
    let mut pending: BTreeMap<&str, &str> = BTreeMap::new();
    for op in history.iter().filter(|op| op.f == "send") {
        let process = op.process.as_str();
        if op.kind == OpType::Invoke {
            let Some(value) = op.value.get("value").and_then(Val::as_str) else {
                continue;
            };
            let next = seq.entry(process).or_default();
            sent.entry(value).or_default().push(Sent {
                process,
                seq: *next,
                invoked_ms: op.at_ms,
                done_ms: None,
            });
            *next += 1;
            pending.insert(process, value);
        } else if let Some(value) = pending.remove(process) {
            let done = sent
                .get_mut(value)
                .and_then(|s| s.iter_mut().rev().find(|s| s.process == process));
            if let Some(done) = done {
                done.done_ms = Some(op.at_ms);
            }
        }
    }
    sent
}

/// One record a poll returned.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Read<'a> {
    pub partition: &'a str,
    pub offset: i64,
    pub value: Option<&'a str>,
}

/// The `poll`s that completed `ok` for a `read_committed` consumer (`"isolation":
/// "read_committed"` in the completion or in its invoke), each with the records it returned.
pub(crate) fn read_committed_polls(history: &[Op]) -> Vec<(&Op, Vec<Read<'_>>)> {
    let mut invoked: BTreeMap<&str, bool> = BTreeMap::new();
    let mut polls = Vec::new();
    for op in history.iter().filter(|op| op.f == "poll") {
        let committed = is_read_committed(op);
        match op.kind {
            OpType::Invoke => {
                invoked.insert(op.process.as_str(), committed);
            }
            OpType::Ok => {
                let by_invoke = invoked.remove(op.process.as_str()).unwrap_or(false);
                if committed || by_invoke {
                    polls.push((op, reads(op)));
                }
            }
            OpType::Fail | OpType::Info => {
                invoked.remove(op.process.as_str());
            }
        }
    }
    polls
}

fn is_read_committed(op: &Op) -> bool {
    op.value.get("isolation").and_then(Val::as_str) == Some("read_committed")
}

/// The records a poll's completion returned, in the order returned.
fn reads(op: &Op) -> Vec<Read<'_>> {
    let records = op.value.get("records").and_then(Val::as_array);
    records
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some(Read {
                partition: r.get("partition")?.as_str()?,
                offset: r.get("offset")?.as_i64()?,
                value: r.get("value").and_then(Val::as_str),
            })
        })
        .collect()
}

/// The final log's record a read returned: the record at its offset if it holds the value read;
/// otherwise (the log moved) the value's record elsewhere in the partition, a committed one
/// first; `None` if the partition's final log does not hold the value (`inconsistent-read`'s
/// business).
pub(crate) fn record_read<'a>(
    state: &'a FinalState,
    places: &BTreeMap<&str, Vec<Place<'a>>>,
    read: &Read,
) -> Option<&'a FinalRecord> {
    let log = state.partitions.get(read.partition)?;
    let at = log
        .committed
        .binary_search_by_key(&read.offset, |r| r.offset)
        .ok()
        .map(|i| &log.committed[i]);
    if let Some(record) = at.filter(|r| r.value.as_deref() == read.value) {
        return Some(record);
    }
    let elsewhere: Vec<&FinalRecord> = places
        .get(read.value?)?
        .iter()
        .filter(|p| p.partition == read.partition)
        .map(|p| p.record)
        .collect();
    elsewhere
        .iter()
        .find(|r| r.is_committed_data())
        .or(elsewhere.first())
        .copied()
}

/// The offsets and values of reads, for a violation's detail: `4 (p1-3), 5 (p1-4)`, the first
/// few then `…`.
pub(crate) fn shown_reads(reads: &[(i64, &str)]) -> String {
    /// The reads listed before abbreviating.
    const SHOWN: usize = 5;
    let mut shown: Vec<String> = reads
        .iter()
        .take(SHOWN)
        .map(|(offset, value)| format!("{offset} ({value})"))
        .collect();
    if reads.len() > SHOWN {
        shown.push("…".to_string());
    }
    shown.join(", ")
}
