//! `unavailable`: once every fault is over and the world has healed (the runner's `healed`
//! event, at H, with the scenario's `recovery` R), the cluster must serve again within R.
//!
//! - **Writes.** A producer that tried to write in [H, H + R] (invoked a send) must have one
//!   acknowledged in that window. (A send left over from the faults that fails after H is the
//!   faults' doing; a producer that keeps trying is owed an answer.)
//! - **Reads.** A reader (a consumer process, or a whole group) that read a partition must, by
//!   max(t, H) + R, have read every record of it that became readable to it at t: acknowledged
//!   (t is the acknowledgement), and for a `read_committed` reader a record of a transaction
//!   from the moment its commit was acknowledged. Only records the final log holds are owed,
//!   from the first offset the reader read there; what came later than the run's end minus R
//!   is not judged. A transaction left hanging (its records never decided, KIP-890's motivating
//!   bug) holds the last stable offset back, and the committed records behind it are never read.
//!
//! Safety checks say nothing bad happened; this one says something good did. Without a
//! `healed` event (the scenario sets no `recovery`) it judges nothing.

use std::collections::BTreeMap;

use super::txn_view::places_by_value;
use super::{FinalState, Violation};
use crate::history::{Op, OpType, TraceEvent};
use crate::val::Val;

const CHECK: &str = "unavailable";

/// The runner's `healed` event: when, and what it asks.
#[derive(Clone, Copy, Debug)]
struct Healed {
    at_ms: u64,
    recovery_ms: u64,
    end_ms: u64,
}

impl Healed {
    fn of(trace: &[TraceEvent]) -> Option<Healed> {
        let event = trace.iter().find(|e| e.kind == "healed")?;
        Some(Healed {
            at_ms: event.at_ms,
            recovery_ms: event.detail.get("recovery_ms")?.as_u64()?,
            end_ms: event.detail.get("end_ms")?.as_u64()?,
        })
    }

    /// The moment something that became possible at `t` must have happened by.
    fn deadline(&self, t: u64) -> u64 {
        t.max(self.at_ms) + self.recovery_ms
    }
}

pub fn check(history: &[Op], trace: &[TraceEvent], state: &FinalState) -> Vec<Violation> {
    let Some(healed) = Healed::of(trace) else {
        return Vec::new();
    };
    let mut found = writes(history, healed);
    found.extend(reads(history, state, healed));
    found
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

/// Producers that wanted to write after the heal and had nothing acknowledged in time.
fn writes(history: &[Op], healed: Healed) -> Vec<Violation> {
    let deadline = healed.deadline(healed.at_ms);
    if deadline > healed.end_ms {
        return Vec::new();
    }
    // Per process: whether it tried to write in the window, and its first ack from H on.
    let mut wanted: BTreeMap<&str, bool> = BTreeMap::new();
    let mut first_ack: BTreeMap<&str, u64> = BTreeMap::new();
    for op in history.iter().filter(|op| op.f == "send") {
        let process = op.process.as_str();
        match op.kind {
            OpType::Invoke if (healed.at_ms..=deadline).contains(&op.at_ms) => {
                wanted.insert(process, true);
            }
            OpType::Ok if op.at_ms >= healed.at_ms => {
                first_ack.entry(process).or_insert(op.at_ms);
            }
            _ => {}
        }
    }
    wanted
        .keys()
        .filter_map(|&process| {
            let first = first_ack.get(process).copied();
            if first.is_some_and(|at| at <= deadline) {
                return None;
            }
            let then = first.map_or(
                "none was acknowledged before the run ended".to_string(),
                |at| format!("the first was acknowledged at {}", seconds(at)),
            );
            Some(Violation {
                check: CHECK.to_string(),
                at_ms: deadline,
                detail: format!(
                    "{process} tried to write after every fault was healed at {}, but no write was acknowledged within the recovery time ({}): {then}",
                    seconds(healed.at_ms),
                    seconds(healed.recovery_ms)
                ),
                partition: None,
            })
        })
        .collect()
}

/// When each value became readable: acknowledged, and (for a `read_committed` reader) its
/// transaction's commit acknowledged.
struct Readable<'a> {
    acked: BTreeMap<&'a str, u64>,
    committed: BTreeMap<&'a str, u64>,
}

impl<'a> Readable<'a> {
    fn of(history: &'a [Op]) -> Self {
        let mut acked = BTreeMap::new();
        let mut committed = BTreeMap::new();
        for op in history.iter().filter(|op| op.kind == OpType::Ok) {
            match op.f.as_str() {
                "send" => {
                    if let Some(value) = op.value.get("value").and_then(Val::as_str) {
                        acked.entry(value).or_insert(op.at_ms);
                    }
                }
                "txn" => {
                    let values = op.value.get("values").and_then(Val::as_array);
                    for value in values.into_iter().flatten().filter_map(Val::as_str) {
                        committed.entry(value).or_insert(op.at_ms);
                    }
                }
                _ => {}
            }
        }
        Readable { acked, committed }
    }

    /// When `value`, of a transaction or not (`transactional`), became readable.
    fn at(&self, value: &str, transactional: bool, read_committed: bool) -> Option<u64> {
        let acked = *self.acked.get(value)?;
        if transactional && read_committed {
            return self.committed.get(value).map(|&c| c.max(acked));
        }
        Some(acked)
    }
}

/// What one reader read of one partition: the first offset, and when it first read each.
#[derive(Default)]
struct ReaderLog {
    read_committed: bool,
    first_offset: i64,
    read_at: BTreeMap<i64, u64>,
}

fn reads(history: &[Op], state: &FinalState, healed: Healed) -> Vec<Violation> {
    let mut logs: BTreeMap<(&str, &str), ReaderLog> = BTreeMap::new();
    for op in history
        .iter()
        .filter(|op| op.f == "poll" && op.kind == OpType::Ok)
    {
        let reader = op
            .value
            .get("group")
            .and_then(Val::as_str)
            .unwrap_or(op.process.as_str());
        let read_committed =
            op.value.get("isolation").and_then(Val::as_str) == Some("read_committed");
        let records = op.value.get("records").and_then(Val::as_array);
        for record in records.into_iter().flatten() {
            let (Some(partition), Some(offset)) = (
                record.get("partition").and_then(Val::as_str),
                record.get("offset").and_then(Val::as_i64),
            ) else {
                continue;
            };
            let log = logs
                .entry((reader, partition))
                .or_insert_with(|| ReaderLog {
                    read_committed,
                    first_offset: offset,
                    ..ReaderLog::default()
                });
            log.first_offset = log.first_offset.min(offset);
            log.read_at.entry(offset).or_insert(op.at_ms);
        }
    }
    let readable = Readable::of(history);
    let places = places_by_value(state);
    let mut found = Vec::new();
    for ((reader, partition), log) in &logs {
        let Some(final_log) = state.partitions.get(*partition) else {
            continue;
        };
        // The records owed, with when each was due: (deadline, offset).
        let mut late: Vec<(u64, i64)> = Vec::new();
        for record in &final_log.committed {
            if record.offset < log.first_offset {
                continue;
            }
            if log.read_committed && !record.is_committed_data() {
                continue;
            }
            let Some(value) = record.value.as_deref() else {
                continue;
            };
            // A value written twice is owed where it first is.
            let first_place = places
                .get(value)
                .and_then(|p| p.first())
                .is_some_and(|p| p.partition == *partition && p.record.offset == record.offset);
            if !first_place {
                continue;
            }
            let Some(at) = readable.at(value, record.txn.is_some(), log.read_committed) else {
                continue;
            };
            let deadline = healed.deadline(at);
            if deadline > healed.end_ms {
                continue;
            }
            if log
                .read_at
                .get(&record.offset)
                .is_some_and(|&r| r <= deadline)
            {
                continue;
            }
            late.push((deadline, record.offset));
        }
        let Some(&(deadline, offset)) = late.iter().min() else {
            continue;
        };
        let isolation = if log.read_committed {
            "read_committed"
        } else {
            "read_uncommitted"
        };
        found.push(Violation {
            check: CHECK.to_string(),
            at_ms: deadline,
            detail: format!(
                "{reader} ({isolation}) had not read offset {offset} of {partition} by {}, the recovery time ({}) after it became readable or the world healed at {}; {} record(s) were read late or never",
                seconds(deadline),
                seconds(healed.recovery_ms),
                seconds(healed.at_ms),
                late.len()
            ),
            partition: Some(partition.to_string()),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::check::fixtures::{
        acked, event, marker, op, partition, poll, record_of, send, state,
    };
    use crate::check::TxnStatus;

    fn healed(at_ms: u64, recovery_ms: u64, end_ms: u64) -> Vec<TraceEvent> {
        vec![event(
            at_ms,
            "world",
            "healed",
            json!({ "recovery_ms": recovery_ms, "end_ms": end_ms }),
        )]
    }

    fn orders(records: &[(i64, &str)]) -> FinalState {
        state(vec![(
            "orders-0",
            partition(0, records.len() as i64, records),
        )])
    }

    #[test]
    fn writes_that_resume_within_the_recovery_time_pass() {
        let history = [
            send("p1", "a", None, acked("a", "orders-0", 0), 10_000),
            send("p1", "b", None, acked("b", "orders-0", 1), 21_000),
        ]
        .concat();
        assert!(writes(
            &history,
            Healed::of(&healed(20_000, 5_000, 60_000)).unwrap()
        )
        .is_empty());
    }

    #[test]
    fn a_producer_that_never_gets_an_ack_after_the_heal_is_unavailable() {
        let mut history = send("p1", "a", None, acked("a", "orders-0", 0), 10_000).to_vec();
        // Invoked after the heal, failed; then one acknowledged too late.
        history.extend(send(
            "p1",
            "b",
            None,
            (OpType::Fail, json!({ "value": "b", "error": "timeout" })),
            22_000,
        ));
        history.extend(send("p1", "c", None, acked("c", "orders-0", 1), 40_000));
        let found = check(
            &history,
            &healed(20_000, 5_000, 60_000),
            &orders(&[(0, "a"), (1, "c")]),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].check, "unavailable");
        assert_eq!(found[0].at_ms, 25_000);
        assert!(found[0].detail.contains("40.001 s"), "{}", found[0].detail);
    }

    #[test]
    fn a_producer_done_before_the_heal_owes_nothing() {
        let history = send("p1", "a", None, acked("a", "orders-0", 0), 10_000);
        assert!(check(
            &history,
            &healed(20_000, 5_000, 60_000),
            &orders(&[(0, "a")])
        )
        .is_empty());
    }

    #[test]
    fn without_a_healed_event_nothing_is_judged() {
        let history = send("p1", "a", None, acked("a", "orders-0", 0), 10_000);
        assert!(check(&history, &[], &orders(&[(0, "a"), (1, "b")])).is_empty());
    }

    #[test]
    fn a_reader_must_catch_up_within_the_recovery_time() {
        let mut history = [
            send("p1", "a", None, acked("a", "orders-0", 0), 10_000),
            send("p1", "b", None, acked("b", "orders-0", 1), 30_000),
            send("p1", "c", None, acked("c", "orders-0", 2), 50_000),
        ]
        .concat();
        history.extend(poll("c1", 11_000, &[("orders-0", 0, Some("a"))]));
        // b is read in time (due at 35 s); c (due 55 s) only at 58 s.
        history.extend(poll("c1", 33_000, &[("orders-0", 1, Some("b"))]));
        history.extend(poll("c1", 58_000, &[("orders-0", 2, Some("c"))]));
        let found = check(
            &history,
            &healed(20_000, 5_000, 60_000),
            &orders(&[(0, "a"), (1, "b"), (2, "c")]),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].detail.contains("offset 2 of orders-0"),
            "{}",
            found[0].detail
        );
        // Read at 54 s, it passes.
        history.pop();
        history.extend(poll("c1", 54_000, &[("orders-0", 2, Some("c"))]));
        let found = check(
            &history,
            &healed(20_000, 5_000, 60_000),
            &orders(&[(0, "a"), (1, "b"), (2, "c")]),
        );
        assert!(found.is_empty(), "{found:?}");
    }

    /// A hanging transaction: an open transaction of producer 7 at offset 1 holds the last
    /// stable offset, so producer 8's committed records behind it never reach a
    /// `read_committed` reader.
    #[test]
    fn a_hanging_transaction_starves_read_committed_readers() {
        let mut history = [
            send("t2", "x", None, acked("x", "orders-0", 0), 10_000),
            send("t2", "y", None, acked("y", "orders-0", 2), 30_000),
        ]
        .concat();
        for (value, at) in [("x", 10_500), ("y", 30_500)] {
            history.push(op(
                "t2",
                OpType::Ok,
                "txn",
                json!({ "values": [value] }),
                at,
            ));
        }
        let read = |ops: [Op; 2]| {
            ops.map(|mut op| {
                op.value = op.value.with("isolation", "read_committed".into());
                op
            })
        };
        history.extend(read(poll("c1", 11_000, &[("orders-0", 0, Some("x"))])));
        let log = crate::check::FinalPartition {
            log_start_offset: 0,
            high_watermark: 5,
            committed: vec![
                record_of(0, "x", (8, 0), Some(TxnStatus::Committed)),
                record_of(1, "late", (7, 0), Some(TxnStatus::Open)),
                record_of(2, "y", (8, 0), Some(TxnStatus::Committed)),
            ],
            markers: vec![marker(3, (8, 0), true)],
        };
        let state = state(vec![("orders-0", log)]);
        let found = check(&history, &healed(20_000, 5_000, 60_000), &state);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].detail.contains("read_committed"),
            "{}",
            found[0].detail
        );
        assert!(found[0].detail.contains("offset 2"), "{}", found[0].detail);
        assert_eq!(found[0].at_ms, 35_500);
    }
}
