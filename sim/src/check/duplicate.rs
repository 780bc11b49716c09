//! `duplicate`: a record written once appears twice in the final committed logs.
//!
//! The guarantee is the idempotent producer's (KIP-98, "Idempotent Producer Guarantees"; Kafka
//! documentation, *Design*, "Message Delivery Semantics": since 0.11 "the Kafka producer also
//! supports an idempotent delivery option which guarantees that resending will not result in
//! duplicate entries in the log"): the broker keeps each producer id's last sequence numbers
//! and drops a batch it has already appended. Without idempotence a producer that retries a
//! request whose answer it lost writes the record again, and a scenario that runs it expects
//! or allows `duplicate`. Jepsen's Kafka workload (Kingsbury 2022,
//! <https://jepsen.io/analyses/redpanda-21.10.1>; Bufstream 0.1.0, 2024,
//! <https://jepsen.io/analyses/bufstream-0.1.0>) calls the anomaly a *duplicate*: one write
//! found at more than one offset.
//!
//! What counts: every record of the final logs (each partition's last leader's whole log) that
//! a `read_committed` consumer would read: written outside a transaction or in a committed one.
//! A copy in an aborted transaction was never delivered, and one in a transaction still open
//! may yet be aborted: neither is a duplicate. Values are unique per write, so a value found at
//! more offsets than the history's `send`s of it is a duplicate, whatever the producer's
//! settings. A pipeline's output (a value that starts with the `prefix` of a `pipeline`
//! operation) counts as sent once if the history has no `send` of it. A value sent twice on
//! purpose (a pipeline that processes an input again writes its output again) is
//! `eos-violation`'s business, not this one's. Values the history did not write (the records
//! of `__consumer_offsets` and other internal topics) are not judged.
//!
//! One violation per value, at the time its (last) send completed, naming every place it is
//! found; the partition is the first place's.

use std::collections::BTreeMap;

use super::txn_view::{places_by_value, sends, Place};
use super::{FinalState, Violation};
use crate::history::{Op, OpType};
use crate::val::Val;

const CHECK: &str = "duplicate";

pub fn check(history: &[Op], state: &FinalState) -> Vec<Violation> {
    let sent = sends(history);
    let prefixes = pipeline_prefixes(history);
    let mut found = Vec::new();
    for (value, places) in places_by_value(state) {
        let sends_of = sent.get(value).map_or(0, Vec::len);
        if sends_of == 0 && !prefixes.iter().any(|p| value.starts_with(p)) {
            continue;
        }
        let committed: Vec<Place> = places
            .into_iter()
            .filter(|p| p.record.is_committed_data())
            .collect();
        if committed.len() <= sends_of.max(1) {
            continue;
        }
        found.push(violation(value, &committed, &sent, sends_of));
    }
    found
}

/// The output prefixes of the history's `pipeline` operations.
fn pipeline_prefixes(history: &[Op]) -> Vec<&str> {
    history
        .iter()
        .filter(|op| op.f == "pipeline" && op.kind == OpType::Ok)
        .filter_map(|op| op.value.get("prefix").and_then(Val::as_str))
        .filter(|prefix| !prefix.is_empty())
        .collect()
}

fn violation(
    value: &str,
    places: &[Place],
    sent: &BTreeMap<&str, Vec<super::txn_view::Sent>>,
    sends_of: usize,
) -> Violation {
    let at_ms = sent
        .get(value)
        .and_then(|s| s.iter().map(|s| s.last_ms()).max())
        .unwrap_or(0);
    let shown: Vec<String> = places
        .iter()
        .map(|p| format!("{}@{}", p.partition, p.record.offset))
        .collect();
    let written = match sends_of {
        0 => "a pipeline's output (counted as written once)".to_string(),
        1 => "sent once".to_string(),
        n => format!("sent {n} times"),
    };
    Violation {
        check: CHECK.to_string(),
        at_ms,
        detail: format!(
            "{value}, {written}, is in the final committed log {} times: at {}",
            places.len(),
            shown.join(", ")
        ),
        partition: Some(places[0].partition.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::check::fixtures::{
        acked, marker, op, plain, record_of, send, state, summary, txn_partition,
    };
    use crate::check::TxnStatus::{Aborted, Committed, Open};

    #[test]
    fn a_value_written_once_and_found_twice_fires_once() {
        let history: Vec<Op> = [
            send("p1", "p1-0", None, acked("p1-0", "orders-0", 0), 10),
            send("p1", "p1-1", None, acked("p1-1", "orders-0", 1), 20),
        ]
        .concat();
        // The planted bug: a retried batch appended again (p1-1 at 1 and 2), and p1-0 three
        // times across two partitions.
        let final_state = state(vec![
            (
                "orders-0",
                txn_partition(
                    vec![
                        plain(0, "p1-0"),
                        plain(1, "p1-1"),
                        plain(2, "p1-1"),
                        plain(3, "p1-0"),
                    ],
                    vec![],
                ),
            ),
            ("orders-1", txn_partition(vec![plain(0, "p1-0")], vec![])),
        ]);
        let found = check(&history, &final_state);
        assert_eq!(
            summary(&found),
            vec![(11, Some("orders-0")), (21, Some("orders-0"))]
        );
        assert!(found.iter().all(|v| v.check == "duplicate"));
        assert_eq!(
            found[0].detail,
            "p1-0, sent once, is in the final committed log 3 times: at orders-0@0, orders-0@3, \
             orders-1@0"
        );
        assert_eq!(
            found[1].detail,
            "p1-1, sent once, is in the final committed log 2 times: at orders-0@1, orders-0@2"
        );
    }

    #[test]
    fn copies_in_aborted_or_open_transactions_are_not_duplicates() {
        let history = send("t1", "t1-0", None, acked("t1-0", "orders-0", 0), 10);
        let (pid, epoch) = (7, 0);
        let log = txn_partition(
            vec![
                // Written in a transaction that aborted, then again in one that committed,
                // then in one still open at the end of the run.
                record_of(0, "t1-0", (pid, epoch), Some(Aborted)),
                record_of(2, "t1-0", (pid, epoch), Some(Committed)),
                record_of(4, "t1-0", (pid, epoch), Some(Open)),
            ],
            vec![
                marker(1, (pid, epoch), false),
                marker(3, (pid, epoch), true),
            ],
        );
        let mut final_state = state(vec![("orders-0", log)]);
        assert_eq!(check(&history, &final_state), vec![]);
        // Had the open one committed, the value would be there twice.
        let log = final_state.partitions.get_mut("orders-0").unwrap();
        log.committed[2].txn = Some(Committed);
        assert_eq!(check(&history, &final_state).len(), 1);
    }

    #[test]
    fn a_value_sent_twice_may_be_there_twice_and_an_output_once() {
        let mut history: Vec<Op> = [
            send("p1", "v", None, acked("v", "orders-0", 0), 10),
            send("p1", "v", None, acked("v", "orders-0", 1), 20),
        ]
        .concat();
        history.push(op(
            "pipe",
            OpType::Ok,
            "pipeline",
            json!({"group": "g", "input": ["orders"], "output": "out", "prefix": "pipe:"}),
            0,
        ));
        let final_state = state(vec![
            (
                "orders-0",
                txn_partition(vec![plain(0, "v"), plain(1, "v")], vec![]),
            ),
            (
                "out-0",
                txn_partition(vec![plain(0, "pipe:v"), plain(1, "pipe:w")], vec![]),
            ),
            // What the history did not write is not judged (an internal topic's records).
            (
                "__consumer_offsets-0",
                txn_partition(vec![plain(0, "commit"), plain(1, "commit")], vec![]),
            ),
        ]);
        assert_eq!(check(&history, &final_state), vec![]);
        // An output the history never sent, found twice: once too many.
        let mut doubled = final_state.clone();
        doubled
            .partitions
            .get_mut("out-0")
            .unwrap()
            .committed
            .push(plain(2, "pipe:v"));
        let found = check(&history, &doubled);
        assert_eq!(summary(&found), vec![(0, Some("out-0"))]);
        assert!(found[0].detail.contains("a pipeline's output"), "{found:?}");
    }
}
