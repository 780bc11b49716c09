//! Builders for the checkers' tests: history operations (sends, polls) and final states.

use serde_json::{json, Value};

use super::{FinalPartition, FinalRecord, FinalState, Violation};
use crate::history::{Op, OpType};

pub(crate) fn op(process: &str, kind: OpType, f: &str, value: Value, at_ms: u64) -> Op {
    Op {
        process: process.to_string(),
        kind,
        f: f.to_string(),
        value,
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

/// A final partition holding `records` (offset, value), none of them null.
pub(crate) fn partition(
    log_start_offset: i64,
    high_watermark: i64,
    records: &[(i64, &str)],
) -> FinalPartition {
    FinalPartition {
        log_start_offset,
        high_watermark,
        committed: records
            .iter()
            .map(|&(offset, value)| FinalRecord {
                offset,
                value: Some(value.to_string()),
            })
            .collect(),
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
