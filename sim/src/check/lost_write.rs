//! `lost-write`: a write the producer saw acknowledged is not in the final committed log.
//!
//! The guarantee is Kafka's documented one for acknowledged writes (Kafka documentation,
//! *Design*, "Replication"): a message is committed once every in-sync replica has it, a
//! committed message is not lost as long as one in-sync replica stays alive, and a producer with
//! `acks=all` is acknowledged only once its record is committed, at the offset the
//! acknowledgement names. Jepsen's analysis of the Kafka-compatible Redpanda 21.10.1 (Kingsbury,
//! 2022, <https://jepsen.io/analyses/redpanda-21.10.1>) calls the anomaly a *lost write*: a
//! write acknowledged as successful that the log no longer holds.
//!
//! What this checker decides, for every `send` that completed `ok` with a partition and an
//! offset (the offset the broker acknowledged):
//!
//! - the final committed log of that partition holds the written value at the acknowledged
//!   offset: fine;
//! - the acknowledged offset is below the partition's final `log_start_offset`: the record may
//!   have been deleted by retention (or `DeleteRecords`), which Kafka allows: skipped;
//! - the partition's topic was deleted (`DeleteTopics`) after the acknowledgement: its records
//!   went with it, as asked: skipped (a write acknowledged after the deletion is checked
//!   against the final log like any other, e.g. that of a topic re-created under the name);
//! - the final log has a gap at that offset (below the high watermark) and a later committed
//!   record was written with the same key: log compaction removed it, which Kafka allows for a
//!   compacted topic: skipped;
//! - otherwise it is lost: one violation per write, at the time of the acknowledgement, naming
//!   what the final log holds at that offset (another value, a null record, a gap, or nothing
//!   because the log ends at the high watermark below it).
//!
//! **A write that moved.** If the value is in the final log, but only at offsets other than the
//! acknowledged one, it is reported as a `lost-write` whose detail says where it moved to. Kafka
//! promises the acknowledged offset (`RecordMetadata.offset()`): the record at that offset is the
//! acknowledged write, and a consumer that seeks to it (or a pipeline that committed it) finds
//! something else there. A second copy of the same value at another offset besides the
//! acknowledged one is not a lost write: that is `duplicate`'s business.
//!
//! Never lost: a `send` that completed `fail` (it certainly did not happen) or `info` (unknown,
//! e.g. a timeout: it may or may not have happened), and an `ok` without a partition or a
//! non-negative offset (`acks=0` acknowledges with offset -1, which promises nothing). Operations
//! other than `send` are ignored. Values are unique per write, so a value identifies its write.
//! The checker does not know the producer's `acks`: with `acks=1` Kafka promises less (the leader
//! alone acknowledges), and a scenario that runs it expects or allows `lost-write`.

use std::collections::BTreeMap;

use crate::val::Val;

use super::final_log::{FinalLog, SentKeys};
use super::{FinalState, Violation};
use crate::history::{Op, OpType};

const CHECK: &str = "lost-write";

pub fn check(history: &[Op], state: &FinalState) -> Vec<Violation> {
    // The key each value was sent with (for compaction).
    let keys = SentKeys::from_history(history);
    let logs = FinalLog::by_partition(state, &keys);
    check_with(history, state, &keys, &logs)
}

/// `check` against final logs already indexed (`check_all` indexes them once for two checkers).
pub(crate) fn check_with<'a>(
    history: &'a [Op],
    state: &FinalState,
    keys: &SentKeys<'a>,
    logs: &BTreeMap<&str, FinalLog<'a>>,
) -> Vec<Violation> {
    // Each process's pending `send`.
    let mut pending: BTreeMap<&str, &Op> = BTreeMap::new();
    let mut found = Vec::new();
    for op in history {
        if op.f != "send" {
            continue;
        }
        match op.kind {
            OpType::Invoke => {
                pending.insert(op.process.as_str(), op);
            }
            OpType::Fail | OpType::Info => {
                pending.remove(op.process.as_str());
            }
            OpType::Ok => {
                let invoke = pending.remove(op.process.as_str());
                // The ack names value and partition; the invoke is a fallback for either.
                let field = |name: &str| {
                    op.value
                        .get(name)
                        .and_then(Val::as_str)
                        .or_else(|| invoke.and_then(|i| i.value.get(name)?.as_str()))
                };
                let (Some(value), Some(partition)) = (field("value"), field("partition")) else {
                    continue;
                };
                let Some(offset) = op.value.get("offset").and_then(Val::as_i64) else {
                    continue;
                };
                if offset < 0 {
                    continue;
                }
                let deleted_later = state
                    .deleted
                    .get(partition)
                    .is_some_and(|&deleted_ms| op.at_ms <= deleted_ms);
                if deleted_later {
                    continue;
                }
                let key = keys.key_of(value);
                if let Some(detail) = lost(value, key, partition, offset, logs.get(partition)) {
                    found.push(Violation {
                        check: CHECK.to_string(),
                        at_ms: op.at_ms,
                        detail,
                        partition: Some(partition.to_string()),
                    });
                }
            }
        }
    }
    found
}

/// Why the acknowledged write of `value` at `offset` is lost, or `None` if it is not.
fn lost(
    value: &str,
    key: Option<&str>,
    partition: &str,
    offset: i64,
    log: Option<&FinalLog>,
) -> Option<String> {
    let acked = format!("write {value} to {partition} was acknowledged at offset {offset}");
    let Some(log) = log else {
        return Some(format!(
            "{acked}, but the final state has no partition {partition}"
        ));
    };
    if offset < log.log_start_offset {
        return None; // deleted by retention: allowed
    }
    let at_offset = log.at(offset);
    if at_offset == Some(Some(value)) {
        return None;
    }
    if log.compacted(offset, key) {
        return None; // a later record with the same key: compaction removed it
    }
    let there = match at_offset {
        Some(Some(other)) => format!("holds {other} at offset {offset}"),
        Some(None) => format!("holds a null record at offset {offset}"),
        None if offset < log.high_watermark => format!(
            "has no record at offset {offset}, a gap below high watermark {} that compaction \
             does not explain",
            log.high_watermark
        ),
        None => format!(
            "holds nothing at offset {offset}: the log ends at high watermark {}",
            log.high_watermark
        ),
    };
    match log.offsets_of(value) {
        Some(moved) => {
            let offsets: Vec<String> = moved.iter().map(i64::to_string).collect();
            let plural = if moved.len() == 1 { "" } else { "s" };
            Some(format!(
                "{acked}, but it moved: the final log holds it only at offset{plural} {} and {there}",
                offsets.join(", ")
            ))
        }
        None => Some(format!("{acked}, but the final log {there}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::check::fixtures::{acked, op, partition, send, state, summary};
    use crate::check::FinalRecord;

    #[test]
    fn finds_every_lost_write() {
        let history: Vec<Op> = [
            send("p1", "p1-0", Some("k1"), acked("p1-0", "orders-0", 0), 10),
            // Overwritten: another value at its offset.
            send("p1", "p1-1", Some("k1"), acked("p1-1", "orders-0", 1), 20),
            // Truncated: acknowledged past the final high watermark.
            send("p2", "p2-0", None, acked("p2-0", "orders-0", 4), 30),
            // Moved: in the log, but not at the acknowledged offset.
            send("p2", "p2-1", None, acked("p2-1", "orders-0", 2), 40),
            // A gap that compaction does not explain (no key).
            send("p3", "p3-0", None, acked("p3-0", "orders-1", 0), 50),
            // The partition is gone altogether.
            send("p3", "p3-1", None, acked("p3-1", "orders-2", 0), 60),
        ]
        .concat();
        let state = state(vec![
            (
                "orders-0",
                partition(0, 4, &[(0, "p1-0"), (1, "p9-9"), (2, "p8-8"), (3, "p2-1")]),
            ),
            ("orders-1", partition(0, 2, &[(1, "p3-5")])),
        ]);
        let found = check(&history, &state);
        assert_eq!(
            summary(&found),
            vec![
                (21, Some("orders-0")),
                (31, Some("orders-0")),
                (41, Some("orders-0")),
                (51, Some("orders-1")),
                (61, Some("orders-2")),
            ]
        );
        assert!(found.iter().all(|v| v.check == "lost-write"));
        assert_eq!(
            found[0].detail,
            "write p1-1 to orders-0 was acknowledged at offset 1, but the final log holds p9-9 \
             at offset 1"
        );
        assert_eq!(
            found[1].detail,
            "write p2-0 to orders-0 was acknowledged at offset 4, but the final log holds \
             nothing at offset 4: the log ends at high watermark 4"
        );
        assert_eq!(
            found[2].detail,
            "write p2-1 to orders-0 was acknowledged at offset 2, but it moved: the final log \
             holds it only at offset 3 and holds p8-8 at offset 2"
        );
        assert_eq!(
            found[3].detail,
            "write p3-0 to orders-1 was acknowledged at offset 0, but the final log has no \
             record at offset 0, a gap below high watermark 2 that compaction does not explain"
        );
        assert_eq!(
            found[4].detail,
            "write p3-1 to orders-2 was acknowledged at offset 0, but the final state has no \
             partition orders-2"
        );
    }

    #[test]
    fn a_deleted_topic_took_its_earlier_writes_but_not_the_later_ones() {
        let history: Vec<Op> = [
            // Acknowledged, then its topic was deleted at 100: gone as asked.
            send("p1", "p1-0", None, acked("p1-0", "events-0", 0), 10),
            // Acknowledged after the deletion, by a re-created topic that lost it: lost.
            send("p1", "p1-1", None, acked("p1-1", "events-0", 0), 200),
        ]
        .concat();
        let mut final_state = state(vec![("events-0", partition(0, 0, &[]))]);
        final_state.deleted.insert("events-0".to_string(), 100);
        let found = check(&history, &final_state);
        assert_eq!(summary(&found), vec![(201, Some("events-0"))]);
        // And without the deletion, both are lost (the planted bug: a check that skipped every
        // write to a once-deleted partition would miss the second).
        final_state.deleted.clear();
        assert_eq!(check(&history, &final_state).len(), 2);
    }

    #[test]
    fn a_null_record_at_the_acknowledged_offset_is_a_loss() {
        let history = send("p1", "p1-0", None, acked("p1-0", "orders-0", 0), 5);
        let mut final_state = state(vec![("orders-0", partition(0, 1, &[]))]);
        final_state
            .partitions
            .get_mut("orders-0")
            .unwrap()
            .committed = vec![FinalRecord {
            offset: 0,
            value: None,
            ..FinalRecord::default()
        }];
        let found = check(&history, &final_state);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].at_ms, 6);
        assert!(found[0].detail.ends_with("holds a null record at offset 0"));
    }

    #[test]
    fn keeps_what_kafka_allows() {
        let history: Vec<Op> = [
            // Present at its acknowledged offset.
            send("p1", "p1-0", Some("k1"), acked("p1-0", "orders-0", 5), 10),
            // Acknowledged, then deleted by retention (log start moved past it).
            send("p1", "p1-1", Some("k2"), acked("p1-1", "orders-0", 2), 20),
            // Compacted away: a later record with the same key is in the log.
            send("p1", "p1-2", Some("k3"), acked("p1-2", "orders-0", 6), 30),
            send("p1", "p1-3", Some("k3"), acked("p1-3", "orders-0", 7), 40),
            // Timed out (unknown) and missing: not lost.
            send(
                "p2",
                "p2-0",
                None,
                (
                    OpType::Info,
                    json!({"value": "p2-0", "partition": null, "error": "timeout"}),
                ),
                50,
            ),
            // Failed and missing: not lost.
            send(
                "p2",
                "p2-1",
                None,
                (
                    OpType::Fail,
                    json!({"value": "p2-1", "partition": "orders-0", "error": "NOT_ENOUGH_REPLICAS"}),
                ),
                60,
            ),
            // acks=0: acknowledged with offset -1, which promises nothing.
            send(
                "p3",
                "p3-0",
                None,
                (
                    OpType::Ok,
                    json!({"value": "p3-0", "partition": "orders-0", "offset": -1}),
                ),
                70,
            ),
            // A duplicate (also at another offset) is not a lost write.
            send("p3", "p3-1", None, acked("p3-1", "orders-0", 8), 80),
        ]
        .concat();
        let mut history = history;
        // Operations this checker does not know are ignored.
        history.push(op("c1", OpType::Invoke, "poll", json!({}), 90));
        history.push(op(
            "c1",
            OpType::Ok,
            "poll",
            json!({"records": [{"partition": "orders-0", "offset": 9, "value": "p3-1"}]}),
            91,
        ));
        history.push(op("p4", OpType::Ok, "commit", json!({"offset": 3}), 92));
        let state = state(vec![(
            "orders-0",
            partition(
                4,
                10,
                &[
                    (4, "p0-4"),
                    (5, "p1-0"),
                    (7, "p1-3"),
                    (8, "p3-1"),
                    (9, "p3-1"),
                ],
            ),
        )]);
        assert_eq!(check(&history, &state), Vec::new());
    }

    #[test]
    fn an_ack_without_value_or_partition_falls_back_on_its_invoke() {
        let history = vec![
            op(
                "p1",
                OpType::Invoke,
                "send",
                json!({"value": "p1-0", "key": null, "partition": "orders-0"}),
                1,
            ),
            op("p1", OpType::Ok, "send", json!({"offset": 0}), 2),
        ];
        let found = check(&history, &state(vec![("orders-0", partition(0, 0, &[]))]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].partition.as_deref(), Some("orders-0"));
        assert!(found[0].detail.starts_with("write p1-0 to orders-0"));
    }

    #[test]
    fn is_deterministic() {
        let history: Vec<Op> = (0..20)
            .flat_map(|i| {
                let value = format!("p1-{i}");
                send(
                    "p1",
                    &value,
                    None,
                    acked(&value, "orders-0", i),
                    i as u64 * 10,
                )
            })
            .collect();
        let state = state(vec![(
            "orders-0",
            partition(0, 5, &[(0, "p1-0"), (1, "x")]),
        )]);
        let first = check(&history, &state);
        assert_eq!(first.len(), 19);
        assert_eq!(first, check(&history, &state));
    }
}
