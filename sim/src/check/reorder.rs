//! `reorder`: records of one producer to one partition are in the final committed log out of
//! the order it sent them.
//!
//! The guarantee is the idempotent producer's (KIP-98, "Idempotent Producer Guarantees": the
//! broker accepts a producer id's batches to a partition only in sequence-number order, so
//! with up to five requests in flight a retry cannot overtake a later batch; Kafka
//! documentation, producer config `max.in.flight.requests.per.connection`: without idempotence,
//! more than one in flight "will risk message reordering" on a retry). Jepsen's Kafka analyses
//! (Kingsbury 2022, <https://jepsen.io/analyses/redpanda-21.10.1>; Bufstream 0.1.0, 2024,
//! <https://jepsen.io/analyses/bufstream-0.1.0>) check the same: one producer's sends to a
//! partition must be found in the log in the order they were sent.
//!
//! What counts: per partition, the records of its final committed log (the last leader's whole
//! log) that a `read_committed` consumer would read (outside a transaction or in a committed
//! one: an aborted or open copy was never delivered), each value at its first offset only (a
//! second copy is `duplicate`'s business). Each value's first `send` in the history names its
//! process and its place in that process's sending order (sends invoked by one process are in
//! its sending order). A value the history never sent (a pipeline's output) is skipped.
//!
//! Only what the broker could order is judged: records written with a producer id (an
//! idempotent or transactional producer's batches), each against the records of the same
//! producer id. Without idempotence (and more than one request in flight) Kafka allows
//! reordering, and a producer that starts over with a new producer id starts a new sequence.
//!
//! Per (partition, process, producer id), walking the log in offset order, a record sent before
//! the latest one so far is out of order with it: one violation per such pair, at the time the
//! later of the two sends completed, the first few per (partition, process), then one more that
//! counts the rest.

use std::collections::{BTreeMap, BTreeSet};

use super::txn_view::{sends, Sent};
use super::{FinalPartition, FinalState, Violation};
use crate::history::Op;

const CHECK: &str = "reorder";

/// The out-of-order pairs reported one by one per (partition, process) before the rest are
/// counted.
const SHOWN_PAIRS: usize = 5;

/// A record of the log, with the send that wrote it.
#[derive(Clone, Copy, Debug)]
struct Written<'a> {
    offset: i64,
    value: &'a str,
    sent: Sent<'a>,
}

pub fn check(history: &[Op], state: &FinalState) -> Vec<Violation> {
    let sent = sends(history);
    let mut found = Vec::new();
    for (partition, log) in &state.partitions {
        for (process, pairs) in out_of_order(log, &sent) {
            found.extend(violations(partition, process, &pairs));
        }
    }
    found
}

/// Every out-of-order pair (the record sent later but found first, the one sent earlier found
/// after it) of each process in one log.
fn out_of_order<'a>(
    log: &'a FinalPartition,
    sent: &BTreeMap<&str, Vec<Sent<'a>>>,
) -> BTreeMap<&'a str, Vec<(Written<'a>, Written<'a>)>> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut latest: BTreeMap<(&str, i64), Written> = BTreeMap::new();
    let mut pairs: BTreeMap<&str, Vec<(Written, Written)>> = BTreeMap::new();
    for record in log.committed.iter().filter(|r| r.is_committed_data()) {
        let (Some(value), Some(producer_id)) = (record.value.as_deref(), record.producer_id) else {
            continue;
        };
        if !seen.insert(value) {
            continue;
        }
        let Some(&first) = sent.get(value).and_then(|s| s.first()) else {
            continue;
        };
        let this = Written {
            offset: record.offset,
            value,
            sent: first,
        };
        match latest.get(&(first.process, producer_id)) {
            Some(before) if before.sent.seq > first.seq => {
                pairs
                    .entry(first.process)
                    .or_default()
                    .push((*before, this));
            }
            _ => {
                latest.insert((first.process, producer_id), this);
            }
        }
    }
    pairs
}

fn violations(partition: &str, process: &str, pairs: &[(Written, Written)]) -> Vec<Violation> {
    let at = |(a, b): &(Written, Written)| a.sent.last_ms().max(b.sent.last_ms());
    let violation = |at_ms, detail| Violation {
        check: CHECK.to_string(),
        at_ms,
        detail,
        partition: Some(partition.to_string()),
    };
    let mut found: Vec<Violation> = pairs
        .iter()
        .take(SHOWN_PAIRS)
        .map(|pair| {
            let (later, earlier) = pair;
            let detail =
                format!(
                "{process} sent {} before {}, but {partition} holds {} at offset {} before {} at \
                 offset {}",
                earlier.value, later.value, later.value, later.offset, earlier.value, earlier.offset
            );
            violation(at(pair), detail)
        })
        .collect();
    if pairs.len() > SHOWN_PAIRS {
        let last = &pairs[pairs.len() - 1];
        let detail = format!(
            "… and {} more records of {process} out of order in {partition} ({} in all)",
            pairs.len() - SHOWN_PAIRS,
            pairs.len()
        );
        found.push(violation(at(last), detail));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixtures::{
        acked, marker, plain, record_of, send, state, summary, txn_partition,
    };
    use crate::check::{
        FinalRecord,
        TxnStatus::{Aborted, Committed},
    };

    /// A record of idempotent producer 1 (epoch 0), outside a transaction.
    fn idem(offset: i64, value: &str) -> FinalRecord {
        record_of(offset, value, (1, 0), None)
    }

    /// `process` sent `values` in that order, one every 10 ms.
    fn sent_in_order(process: &str, values: &[&str]) -> Vec<Op> {
        (0..)
            .zip(values)
            .flat_map(|(i, v)| {
                send(
                    process,
                    v,
                    None,
                    acked(v, "orders-0", i),
                    10 * (i as u64 + 1),
                )
            })
            .collect()
    }

    #[test]
    fn records_found_in_the_order_sent_are_quiet() {
        let mut history = sent_in_order("p1", &["a", "b", "c"]);
        history.extend(sent_in_order("p2", &["x", "y"]));
        // Two processes interleaved, one value duplicated (not a reorder), an aborted copy of
        // a later value first (never delivered), a value no one sent; p2 without idempotence
        // (no producer id: Kafka does not order it).
        let (pid, epoch) = (1, 0);
        let log = txn_partition(
            vec![
                record_of(0, "c", (pid, epoch), Some(Aborted)),
                idem(2, "a"),
                plain(3, "y"),
                idem(4, "a"),
                idem(5, "b"),
                idem(6, "unsent"),
                plain(7, "x"),
                record_of(8, "c", (pid, epoch), Some(Committed)),
            ],
            vec![
                marker(1, (pid, epoch), false),
                marker(9, (pid, epoch), true),
            ],
        );
        assert_eq!(check(&history, &state(vec![("orders-0", log)])), vec![]);
    }

    #[test]
    fn a_record_found_after_a_later_one_of_its_producer_fires() {
        let history = sent_in_order("p1", &["a", "b", "c", "d"]);
        // The planted bug: a retried batch (a) landed after later ones.
        let log = txn_partition(
            vec![idem(0, "b"), idem(1, "c"), idem(2, "a"), idem(3, "d")],
            vec![],
        );
        let found = check(&history, &state(vec![("orders-0", log.clone())]));
        assert_eq!(summary(&found), vec![(31, Some("orders-0"))]);
        assert_eq!(found[0].check, "reorder");
        assert_eq!(
            found[0].detail,
            "p1 sent a before c, but orders-0 holds c at offset 1 before a at offset 2"
        );
        // Without a producer id, or across two producer ids, Kafka promises no order.
        let mut plain_log = log.clone();
        for record in &mut plain_log.committed {
            record.producer_id = None;
        }
        assert_eq!(
            check(&history, &state(vec![("orders-0", plain_log)])),
            vec![]
        );
        let mut two_ids = log;
        two_ids.committed[2].producer_id = Some(2);
        assert_eq!(check(&history, &state(vec![("orders-0", two_ids)])), vec![]);
    }

    #[test]
    fn many_pairs_are_reported_a_few_then_counted() {
        let values: Vec<String> = (0..10).map(|i| format!("p1-{i}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let history = sent_in_order("p1", &refs);
        // The last one sent first, then all the others: nine pairs.
        let mut records = vec![idem(0, "p1-9")];
        records.extend((0..9).map(|i| idem(i + 1, refs[i as usize])));
        let found = check(
            &history,
            &state(vec![("orders-0", txn_partition(records, vec![]))]),
        );
        assert_eq!(found.len(), SHOWN_PAIRS + 1, "{found:?}");
        assert_eq!(
            found[SHOWN_PAIRS].detail,
            "… and 4 more records of p1 out of order in orders-0 (9 in all)"
        );
    }
}
