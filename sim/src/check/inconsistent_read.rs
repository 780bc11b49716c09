//! `inconsistent-read`: a consumer read a record at an offset where the final log holds another
//! record, or none.
//!
//! Kafka promises that an offset names one record for good: a partition is "an ordered, immutable
//! sequence of records", each record "assigned a sequential id number called the offset that
//! uniquely identifies each record within the partition" (Kafka documentation, *Introduction*),
//! and consumers only read committed records, below the high watermark, which are never
//! truncated (*Design*, "Replication"). Jepsen's analysis of the Kafka-compatible Redpanda
//! 21.10.1 (Kingsbury, 2022, <https://jepsen.io/analyses/redpanda-21.10.1>) calls a breach of it
//! *inconsistent offsets*: one offset observed holding different values.
//!
//! What this checker decides, for every record a `poll` returned `ok` (partition, offset, value):
//!
//! - the final committed log holds the same value at that offset: fine;
//! - it holds another value (or a null record, or the partition is gone): inconsistent;
//! - the offset is at or past the final high watermark: the consumer read a record that was
//!   later truncated away (it was never committed, or the commit was lost): inconsistent;
//! - the offset is below the final `log_start_offset` (deleted by retention, which Kafka allows),
//!   or falls in a gap that compaction explains (a later committed record was sent with the same
//!   key as the value read): the final log cannot judge, so the reads are judged against each
//!   other: the first value read there is the reference, and every other value read at that
//!   (partition, offset) is inconsistent (two reads of one offset returned different values);
//! - a gap below the high watermark that compaction does not explain: inconsistent.
//!
//! Where the final log can judge, a read that agrees with it is fine even if another read
//! disagreed: that other read is the one reported, so one anomaly is reported once.
//!
//! One violation per distinct inconsistent (partition, offset, value read), at the time of the
//! first poll that returned it; the detail names that poll's process and how many reads returned
//! it. Polls that completed `fail` or `info`, and operations other than `poll`, are ignored.

use std::collections::BTreeMap;

use crate::val::Val;

use super::final_log::{FinalLog, SentKeys};
use super::{FinalState, Violation};
use crate::history::{Op, OpType};

const CHECK: &str = "inconsistent-read";

/// A distinct (partition, offset, value) that polls returned, and who read it first.
struct Read<'a> {
    partition: &'a str,
    offset: i64,
    value: Option<String>,
    process: &'a str,
    at_ms: u64,
    count: usize,
}

pub fn check(history: &[Op], state: &FinalState) -> Vec<Violation> {
    // The key each value was sent with, to tell a compacted offset from a lost one.
    let keys = SentKeys::from_history(history);
    let logs = FinalLog::by_partition(state, &keys);
    check_with(history, &keys, &logs)
}

/// `check` against final logs already indexed (`check_all` indexes them once for two checkers).
pub(crate) fn check_with<'a>(
    history: &'a [Op],
    keys: &SentKeys<'a>,
    logs: &BTreeMap<&str, FinalLog<'a>>,
) -> Vec<Violation> {
    let mut reads: Vec<Read> = Vec::new();
    let mut seen: BTreeMap<(&str, i64, Option<String>), usize> = BTreeMap::new();
    for op in history {
        if op.f != "poll" || op.kind != OpType::Ok {
            continue;
        }
        let Some(records) = op.value.get("records").and_then(Val::as_array) else {
            continue;
        };
        for record in records {
            let partition = record.get("partition").and_then(Val::as_str);
            let offset = record.get("offset").and_then(Val::as_i64);
            let (Some(partition), Some(offset)) = (partition, offset) else {
                continue;
            };
            let value = match record.get("value") {
                None | Some(Val::Null) => None,
                Some(Val::Str(s)) => Some(s.to_string()),
                Some(other) => Some(other.to_string()),
            };
            let index = *seen
                .entry((partition, offset, value.clone()))
                .or_insert_with(|| {
                    reads.push(Read {
                        partition,
                        offset,
                        value,
                        process: &op.process,
                        at_ms: op.at_ms,
                        count: 0,
                    });
                    reads.len() - 1
                });
            reads[index].count += 1;
        }
    }

    // For offsets the final log cannot judge: the first value read there.
    let mut reference: BTreeMap<(&str, i64), &Read> = BTreeMap::new();
    let mut found = Vec::new();
    for read in &reads {
        let key = read.value.as_deref().and_then(|v| keys.key_of(v));
        let why = match judge(read, key, logs.get(read.partition)) {
            Judged::Fine => None,
            Judged::Wrong(why) => Some(why),
            Judged::Unknown => match reference.get(&(read.partition, read.offset)) {
                None => {
                    reference.insert((read.partition, read.offset), read);
                    None
                }
                Some(first) => Some(format!(
                    "but {} read {} there first (at {} ms)",
                    first.process,
                    show(first.value.as_deref()),
                    first.at_ms
                )),
            },
        };
        if let Some(why) = why {
            let times = if read.count > 1 {
                format!(" ({} reads returned it)", read.count)
            } else {
                String::new()
            };
            found.push(Violation {
                check: CHECK.to_string(),
                at_ms: read.at_ms,
                detail: format!(
                    "{} read {} at offset {} of {}, {why}{times}",
                    read.process,
                    show(read.value.as_deref()),
                    read.offset,
                    read.partition
                ),
                partition: Some(read.partition.to_string()),
            });
        }
    }
    found
}

enum Judged {
    Fine,
    Wrong(String),
    /// The final log cannot tell: deleted by retention, or compacted.
    Unknown,
}

/// What the final log says of a read whose value was sent with `key`.
fn judge(read: &Read, key: Option<&str>, log: Option<&FinalLog>) -> Judged {
    let Some(log) = log else {
        return Judged::Wrong(format!(
            "but the final state has no partition {}",
            read.partition
        ));
    };
    let offset = read.offset;
    if offset < log.log_start_offset {
        return Judged::Unknown;
    }
    match log.at(offset) {
        Some(held) if held == read.value.as_deref() => Judged::Fine,
        Some(Some(other)) => Judged::Wrong(format!("but the final log holds {other} there")),
        Some(None) => Judged::Wrong("but the final log holds a null record there".to_string()),
        None if offset >= log.high_watermark => Judged::Wrong(format!(
            "but the final log holds nothing there: it ends at high watermark {}",
            log.high_watermark
        )),
        None if log.compacted(offset, key) => Judged::Unknown,
        None => Judged::Wrong(format!(
            "but the final log has no record there, a gap below high watermark {} that \
             compaction does not explain",
            log.high_watermark
        )),
    }
}

fn show(value: Option<&str>) -> &str {
    value.unwrap_or("null")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::check::fixtures::{op, partition, poll, sent, state, summary};

    #[test]
    fn finds_every_inconsistent_read() {
        let history: Vec<Op> = [
            // Fine, then another value at offset 1, then a read past the high watermark.
            poll(
                "c1",
                10,
                &[
                    ("orders-0", 0, Some("p1-0")),
                    ("orders-0", 1, Some("p1-1")),
                    ("orders-0", 3, Some("p1-3")),
                ],
            ),
            // The same wrong read again (one violation, two reads), and one below log start.
            poll(
                "c2",
                20,
                &[("orders-0", 1, Some("p1-1")), ("orders-1", 0, Some("p2-0"))],
            ),
            // Below log start: a different value than c2 read there: inconsistent.
            poll("c1", 30, &[("orders-1", 0, Some("p2-9"))]),
            // A null read where the log holds a value; a partition that is gone.
            poll(
                "c3",
                40,
                &[("orders-0", 2, None), ("orders-9", 0, Some("p3-0"))],
            ),
            // A gap with no key to explain it.
            poll("c3", 50, &[("orders-1", 6, Some("p2-6"))]),
        ]
        .concat();
        let state = state(vec![
            (
                "orders-0",
                partition(0, 3, &[(0, "p1-0"), (1, "p9-1"), (2, "p1-2")]),
            ),
            ("orders-1", partition(5, 8, &[(5, "p2-5"), (7, "p2-7")])),
        ]);
        let found = check(&history, &state);
        assert_eq!(
            summary(&found),
            vec![
                (10, Some("orders-0")),
                (10, Some("orders-0")),
                (30, Some("orders-1")),
                (40, Some("orders-0")),
                (40, Some("orders-9")),
                (50, Some("orders-1")),
            ]
        );
        assert!(found.iter().all(|v| v.check == "inconsistent-read"));
        let details: Vec<&str> = found.iter().map(|v| v.detail.as_str()).collect();
        assert_eq!(
            details,
            vec![
                "c1 read p1-1 at offset 1 of orders-0, but the final log holds p9-1 there \
                 (2 reads returned it)",
                "c1 read p1-3 at offset 3 of orders-0, but the final log holds nothing there: \
                 it ends at high watermark 3",
                "c1 read p2-9 at offset 0 of orders-1, but c2 read p2-0 there first (at 20 ms)",
                "c3 read null at offset 2 of orders-0, but the final log holds p1-2 there",
                "c3 read p3-0 at offset 0 of orders-9, but the final state has no partition \
                 orders-9",
                "c3 read p2-6 at offset 6 of orders-1, but the final log has no record there, a \
                 gap below high watermark 8 that compaction does not explain",
            ]
        );
    }

    #[test]
    fn a_compacted_offset_is_judged_by_the_reads() {
        let mut history = vec![
            sent("p1", "p1-0", Some("k1"), 1),
            sent("p1", "p1-1", Some("k2"), 2),
            sent("p1", "p1-2", Some("k1"), 3),
            sent("p1", "p1-3", Some("k2"), 4),
        ];
        // Offset 0 is compacted (k1 is at 2): p1-0 read there is fine, p1-1 read there is not.
        history.extend(poll("c1", 10, &[("orders-0", 0, Some("p1-0"))]));
        history.extend(poll("c2", 20, &[("orders-0", 0, Some("p1-1"))]));
        let state = state(vec![(
            "orders-0",
            partition(0, 4, &[(2, "p1-2"), (3, "p1-3")]),
        )]);
        let found = check(&history, &state);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].at_ms, 20);
        assert_eq!(
            found[0].detail,
            "c2 read p1-1 at offset 0 of orders-0, but c1 read p1-0 there first (at 10 ms)"
        );
    }

    #[test]
    fn keeps_what_kafka_allows() {
        let mut history = vec![
            sent("p1", "p1-0", Some("k1"), 1),
            sent("p1", "p1-5", Some("k1"), 2),
        ];
        history.extend(
            [
                // Correct values at their offsets, read by several consumers, several times.
                poll(
                    "c1",
                    10,
                    &[("orders-0", 5, Some("p1-5")), ("orders-0", 6, Some("p1-6"))],
                ),
                poll("c2", 20, &[("orders-0", 5, Some("p1-5"))]),
                // Below the log start (retention), the same value twice: fine.
                poll("c1", 30, &[("orders-0", 1, Some("p0-1"))]),
                poll("c2", 40, &[("orders-0", 1, Some("p0-1"))]),
                // Compacted away (k1 is at 5) and within the log start: fine.
                poll("c3", 50, &[("orders-0", 4, Some("p1-0"))]),
                // Empty polls.
                poll("c3", 60, &[]),
            ]
            .concat(),
        );
        // Failed and unknown polls, and operations this checker does not know, are ignored.
        history.push(op(
            "c1",
            OpType::Fail,
            "poll",
            json!({"error": "timeout"}),
            70,
        ));
        history.push(op(
            "c1",
            OpType::Info,
            "poll",
            json!({"records": [{"partition": "orders-0", "offset": 9, "value": "x"}]}),
            80,
        ));
        history.push(op(
            "c1",
            OpType::Ok,
            "commit",
            json!({"records": [{"partition": "orders-0", "offset": 9, "value": "x"}]}),
            90,
        ));
        let state = state(vec![(
            "orders-0",
            partition(3, 7, &[(3, "p0-3"), (5, "p1-5"), (6, "p1-6")]),
        )]);
        assert_eq!(check(&history, &state), Vec::new());
    }

    #[test]
    fn is_deterministic() {
        let history: Vec<Op> = (1..30)
            .flat_map(|i| {
                poll(
                    &format!("c{}", i % 3),
                    i * 10,
                    &[("orders-0", i as i64 % 7, Some("v"))],
                )
            })
            .collect();
        let state = state(vec![(
            "orders-0",
            partition(0, 3, &[(0, "v"), (1, "w"), (2, "v")]),
        )]);
        let first = check(&history, &state);
        assert_eq!(first.len(), 5); // offsets 1 (another value), 3..=6 (past the HW)
        assert_eq!(first, check(&history, &state));
    }
}
