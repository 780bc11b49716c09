//! Builders for the checkers' tests: history operations (sends, polls), trace events and final
//! states.

use serde_json::{json, Value};

use super::{
    FinalMarker, FinalPartition, FinalRecord, FinalReplica, FinalState, TxnStatus, Violation,
};
use crate::history::{Op, OpType, TraceEvent};

pub(crate) fn op(process: &str, kind: OpType, f: &str, value: Value, at_ms: u64) -> Op {
    Op {
        process: process.to_string(),
        kind,
        f: f.to_string(),
        value: value.into(),
        at_ms,
    }
}

/// The invoke of a `send` of `value` with `key` by `process` at `at_ms` (partition unchosen).
pub(crate) fn sent(process: &str, value: &str, key: Option<&str>, at_ms: u64) -> Op {
    op(
        process,
        OpType::Invoke,
        "send",
        json!({"value": value, "key": key, "partition": null}),
        at_ms,
    )
}

/// A `send` of `value` by `process` invoked at `at`, completed `done` one ms later.
pub(crate) fn send(
    process: &str,
    value: &str,
    key: Option<&str>,
    done: (OpType, Value),
    at: u64,
) -> [Op; 2] {
    [
        sent(process, value, key, at),
        op(process, done.0, "send", done.1, at + 1),
    ]
}

/// The completion of a `send` acknowledged at `offset` of `partition`.
pub(crate) fn acked(value: &str, partition: &str, offset: i64) -> (OpType, Value) {
    (
        OpType::Ok,
        json!({"value": value, "partition": partition, "offset": offset}),
    )
}

/// A poll by `process` at `at_ms` that returned `records` (partition, offset, value).
pub(crate) fn poll(process: &str, at_ms: u64, records: &[(&str, i64, Option<&str>)]) -> [Op; 2] {
    let records: Vec<Value> = records
        .iter()
        .map(|(p, o, v)| json!({"partition": p, "offset": o, "value": v}))
        .collect();
    [
        op(process, OpType::Invoke, "poll", json!({}), at_ms - 1),
        op(
            process,
            OpType::Ok,
            "poll",
            json!({ "records": records }),
            at_ms,
        ),
    ]
}

/// A trace event of `kind` on `node`.
pub(crate) fn event(at_ms: u64, node: &str, kind: &str, detail: Value) -> TraceEvent {
    TraceEvent {
        at_ms,
        node: node.to_string(),
        kind: kind.to_string(),
        detail: detail.into(),
    }
}

/// A `hw` event: `broker`'s high watermark of `partition` became `hw`, in its `role` (`leader`,
/// `follower`) in `leader_epoch`, whose leader started it at offset `epoch_start`.
pub(crate) fn hw(
    at_ms: u64,
    broker: i32,
    partition: &str,
    role: &str,
    hw: i64,
    leader_epoch: i64,
    epoch_start: i64,
) -> TraceEvent {
    event(
        at_ms,
        &format!("broker-{broker}"),
        "hw",
        json!({
            "partition": partition,
            "broker": broker,
            "hw": hw,
            "leo": hw,
            "role": role,
            "leader_epoch": leader_epoch,
            "epoch_start": epoch_start,
        }),
    )
}

/// A `truncate` event: `broker` cut its log of `partition` from `from` to `to`, its high
/// watermark `hw` just before.
pub(crate) fn truncate(
    at_ms: u64,
    broker: i32,
    partition: &str,
    (from, to): (i64, i64),
    hw: i64,
    reason: &str,
) -> TraceEvent {
    event(
        at_ms,
        &format!("broker-{broker}"),
        "truncate",
        json!({
            "partition": partition,
            "broker": broker,
            "from": from,
            "to": to,
            "hw": hw,
            "reason": reason,
            "leader_epoch": 3,
        }),
    )
}

/// A final replica holding `records` (offset, value), none of them null, its log ending after
/// the last.
pub(crate) fn replica(high_watermark: i64, records: &[(i64, &str)]) -> FinalReplica {
    FinalReplica {
        high_watermark,
        log_end_offset: records.last().map_or(0, |&(offset, _)| offset + 1),
        records: records_of(records),
        markers: Vec::new(),
    }
}

/// Final records (offset, value), none of them null.
fn records_of(records: &[(i64, &str)]) -> Vec<FinalRecord> {
    records
        .iter()
        .map(|&(offset, value)| FinalRecord {
            offset,
            value: Some(value.to_string()),
            ..FinalRecord::default()
        })
        .collect()
}

/// A final partition holding `records` (offset, value), none of them null.
pub(crate) fn partition(
    log_start_offset: i64,
    high_watermark: i64,
    records: &[(i64, &str)],
) -> FinalPartition {
    FinalPartition {
        log_start_offset,
        high_watermark,
        committed: records_of(records),
        markers: Vec::new(),
    }
}

/// A final state of `partitions`, by name, with no panics.
pub(crate) fn state(partitions: Vec<(&str, FinalPartition)>) -> FinalState {
    FinalState {
        partitions: partitions
            .into_iter()
            .map(|(name, p)| (name.to_string(), p))
            .collect(),
        ..FinalState::default()
    }
}

/// When and where each violation was found, in the order found.
pub(crate) fn summary(found: &[Violation]) -> Vec<(u64, Option<&str>)> {
    found
        .iter()
        .map(|v| (v.at_ms, v.partition.as_deref()))
        .collect()
}

/// The member id the group fixtures give `process` (Kafka's are `client.id-<uuid>`).
pub(crate) fn member(process: &str) -> String {
    format!("{process}-uuid")
}

/// An `assign` by `process` at `at_ms`: its assignment of `partitions` in `generation` of `group`.
pub(crate) fn assign(
    process: &str,
    at_ms: u64,
    (group, generation): (&str, i64),
    partitions: &[&str],
) -> Op {
    op(
        process,
        OpType::Ok,
        "assign",
        json!({
            "group": group,
            "generation": generation,
            "member": member(process),
            "partitions": partitions,
        }),
        at_ms,
    )
}

/// A `process` by `process` at `at_ms`, a member of `group`: it processed the records of
/// `ranges` (partition, first offset, last offset, inclusive).
pub(crate) fn processed(process: &str, at_ms: u64, group: &str, ranges: &[(&str, i64, i64)]) -> Op {
    let ranges: Vec<Value> = ranges.iter().map(|(p, a, b)| json!([p, a, b])).collect();
    op(
        process,
        OpType::Ok,
        "process",
        json!({"group": group, "ranges": ranges}),
        at_ms,
    )
}

/// An `offset-commit` event of broker-1, the coordinator: `group` committed `offset` of
/// `partition`, sent by `process`'s member in `generation` (`None`: without member or
/// generation).
pub(crate) fn offset_commit(
    at_ms: u64,
    group: &str,
    (partition, offset): (&str, i64),
    by: Option<(&str, i64)>,
) -> TraceEvent {
    let (member, generation) = by.map_or((String::new(), -1), |(p, g)| (member(p), g));
    event(
        at_ms,
        "broker-1",
        "offset-commit",
        json!({
            "group": group,
            "partition": partition,
            "offset": offset,
            "generation": generation,
            "member": member,
        }),
    )
}

/// A final record at `offset` holding `value`, of producer `pid` in `epoch`; `txn`: the status
/// of its transaction (`None`: written outside one).
pub(crate) fn record_of(
    offset: i64,
    value: &str,
    (pid, epoch): (i64, i16),
    txn: Option<TxnStatus>,
) -> FinalRecord {
    FinalRecord {
        offset,
        value: Some(value.to_string()),
        producer_id: Some(pid),
        epoch: Some(epoch),
        txn,
    }
}

/// A final record at `offset` holding `value`, written without a producer id.
pub(crate) fn plain(offset: i64, value: &str) -> FinalRecord {
    FinalRecord {
        offset,
        value: Some(value.to_string()),
        ..FinalRecord::default()
    }
}

/// Producer `pid`'s COMMIT (or ABORT) marker at `offset`, in `epoch`.
pub(crate) fn marker(offset: i64, (pid, epoch): (i64, i16), commit: bool) -> FinalMarker {
    FinalMarker {
        offset,
        producer_id: pid,
        epoch,
        commit,
    }
}

/// A final partition of `records` and `markers`, its log starting at 0 and its high watermark
/// past both.
pub(crate) fn txn_partition(
    records: Vec<FinalRecord>,
    markers: Vec<FinalMarker>,
) -> FinalPartition {
    let end = records
        .iter()
        .map(|r| r.offset + 1)
        .chain(markers.iter().map(|m| m.offset + 1))
        .max()
        .unwrap_or(0);
    FinalPartition {
        log_start_offset: 0,
        high_watermark: end,
        committed: records,
        markers,
    }
}

/// A `read_committed` poll by `process` at `at_ms` that returned `records` (partition, offset,
/// value).
pub(crate) fn committed_poll(process: &str, at_ms: u64, records: &[(&str, i64, &str)]) -> [Op; 2] {
    let records: Vec<Value> = records
        .iter()
        .map(|(p, o, v)| json!({"partition": p, "offset": o, "value": v}))
        .collect();
    [
        op(
            process,
            OpType::Invoke,
            "poll",
            json!({"isolation": "read_committed"}),
            at_ms - 1,
        ),
        op(
            process,
            OpType::Ok,
            "poll",
            json!({"isolation": "read_committed", "records": records}),
            at_ms,
        ),
    ]
}
