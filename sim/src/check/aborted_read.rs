//! `aborted-read`: a `read_committed` consumer read a record of an aborted transaction.
//!
//! The guarantee is KIP-98's ("Transactional Guarantees"; Kafka documentation, consumer config
//! `isolation.level`: with `read_committed`, `consumer.poll()` "will only return transactional
//! messages which have been committed"): the leader keeps an index of aborted transactions
//! (`TransactionIndex`) and returns it with each fetch, and the consumer drops the records of
//! those transactions. Adya's *G1a* (aborted read) is the name Jepsen gives the anomaly in its
//! Kafka analyses (Kingsbury 2022, <https://jepsen.io/analyses/redpanda-21.10.1>; Bufstream
//! 0.1.0, 2024, <https://jepsen.io/analyses/bufstream-0.1.0>, where a delayed commit or abort
//! message, landing in a later transaction, lets Kafka itself commit what the client saw
//! aborted, which KIP-890's epoch bump per transaction closes).
//!
//! What counts: every record a `poll` returned `ok` to a `read_committed` consumer (`"isolation":
//! "read_committed"` in the poll's completion or its invoke), placed in the partition's final
//! log (the last leader's whole log): the record at its offset if that holds the value read,
//! otherwise the value's record elsewhere in the partition (a committed copy first). Its
//! transaction's status is the final log's: the next control marker of its producer id. A
//! record whose status is `aborted` is an aborted read. A read the final log does not hold at
//! all is `inconsistent-read`'s business; a record of a transaction still `open` is
//! `uncommitted-read`'s.
//!
//! One violation per poll and partition that read aborted records, at the poll's completion,
//! naming their offsets and values. `read_uncommitted` consumers read aborted records by design
//! and are not checked.

use std::collections::BTreeMap;

use super::txn_view::{places_by_value, read_committed_polls, record_read, shown_reads};
use super::{FinalState, TxnStatus, Violation};
use crate::history::Op;

const CHECK: &str = "aborted-read";

pub fn check(history: &[Op], state: &FinalState) -> Vec<Violation> {
    let polls = read_committed_polls(history);
    if polls.is_empty() {
        return Vec::new();
    }
    let places = places_by_value(state);
    let mut found = Vec::new();
    for (poll, reads) in polls {
        let mut aborted: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
        for read in &reads {
            let Some(record) = record_read(state, &places, read) else {
                continue;
            };
            if record.txn == Some(TxnStatus::Aborted) {
                aborted
                    .entry(read.partition)
                    .or_default()
                    .push((read.offset, read.value.unwrap_or("null")));
            }
        }
        for (partition, records) in aborted {
            found.push(Violation {
                check: CHECK.to_string(),
                at_ms: poll.at_ms,
                detail: format!(
                    "{} (read_committed) read {} record(s) of aborted transactions from \
                     {partition}, at {}",
                    poll.process,
                    records.len(),
                    shown_reads(&records)
                ),
                partition: Some(partition.to_string()),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixtures::{
        committed_poll, marker, plain, poll, record_of, state, summary, txn_partition,
    };
    use crate::check::TxnStatus::{Aborted, Committed, Open};

    fn final_state() -> FinalState {
        let (t1, t2) = ((7, 0), (8, 0));
        state(vec![(
            "orders-0",
            txn_partition(
                vec![
                    record_of(0, "t1-0", t1, Some(Aborted)),
                    record_of(1, "t2-0", t2, Some(Committed)),
                    record_of(2, "t1-1", t1, Some(Aborted)),
                    plain(5, "p-0"),
                    record_of(6, "t1-2", t1, Some(Open)),
                ],
                vec![marker(3, t1, false), marker(4, t2, true)],
            ),
        )])
    }

    #[test]
    fn a_read_committed_poll_of_an_aborted_record_fires() {
        let history: Vec<Op> = [
            committed_poll(
                "c",
                10,
                &[
                    ("orders-0", 0, "t1-0"),
                    ("orders-0", 1, "t2-0"),
                    ("orders-0", 2, "t1-1"),
                ],
            ),
            // Read at an offset the final log moved it from: its value is still aborted.
            committed_poll("d", 20, &[("orders-0", 9, "t1-1")]),
        ]
        .concat();
        let found = check(&history, &final_state());
        assert_eq!(
            summary(&found),
            vec![(10, Some("orders-0")), (20, Some("orders-0"))]
        );
        assert!(found.iter().all(|v| v.check == "aborted-read"));
        assert_eq!(
            found[0].detail,
            "c (read_committed) read 2 record(s) of aborted transactions from orders-0, at \
             0 (t1-0), 2 (t1-1)"
        );
    }

    #[test]
    fn committed_open_plain_unknown_or_read_uncommitted_reads_are_quiet() {
        let history: Vec<Op> = [
            committed_poll(
                "c",
                10,
                &[
                    ("orders-0", 1, "t2-0"),
                    ("orders-0", 5, "p-0"),
                    // Open: uncommitted-read's business.
                    ("orders-0", 6, "t1-2"),
                    // Not in the final log: inconsistent-read's business.
                    ("orders-0", 7, "ghost"),
                    ("orders-1", 0, "t1-0"),
                ],
            ),
            // A read_uncommitted consumer reads aborted records by design.
            poll("u", 20, &[("orders-0", 0, Some("t1-0"))]),
        ]
        .concat();
        assert_eq!(check(&history, &final_state()), vec![]);
    }
}
