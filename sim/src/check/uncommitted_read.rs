//! `uncommitted-read`: a `read_committed` consumer read past the last stable offset.
//!
//! The guarantee is KIP-98's ("Transactional Guarantees", "Last Stable Offset"; Kafka
//! documentation, consumer config `isolation.level`): a `read_committed` consumer reads only up
//! to the last stable offset (LSO), "the offset of the first open transaction", and no further
//! than the high watermark. A transaction stops holding the LSO back once its control marker is
//! below the high watermark (Kafka's `ProducerStateManager` completes a transaction when the
//! high watermark passes its marker). So every record a `read_committed` poll returns, at
//! offset `o`, was stable when the poll completed: every transaction of the partition that
//! starts at or below `o` had its marker below some replica's high watermark by then. Reading a
//! record of a transaction not yet decided is the read of uncommitted data that
//! `read_committed` exists to prevent (Jepsen's Bufstream analysis, Kingsbury 2024,
//! <https://jepsen.io/analyses/bufstream-0.1.0>, defines the LSO the same way: "the highest
//! offset below which every transaction has completed"); reading a plain record past an
//! undecided transaction is the same broken LSO.
//!
//! What counts: every record a `poll` returned `ok` to a `read_committed` consumer, placed in
//! the partition's final log as `aborted-read` places it (records the final log does not hold
//! are `inconsistent-read`'s; records of aborted transactions are `aborted-read`'s and skipped
//! here). The transactions of a partition are read off its final log: from the first record of
//! a producer id after its previous marker, to its next marker (none: still open at the end of
//! the run). A transaction was decided at the first `hw` event of the trace, on any broker,
//! whose high watermark is above its marker's offset; an open one never was. A read at `o` is
//! past the LSO if some transaction starting at or below `o` was decided only after the poll
//! completed, or never; that covers a record of a transaction still open, one whose commit
//! marker the high watermark had not passed yet, and a plain record above an undecided
//! transaction.
//!
//! One violation per poll and partition with such reads, at the poll's completion, naming the
//! reads and the transaction that held the LSO below the first of them. `read_uncommitted`
//! consumers are not checked.

use std::collections::BTreeMap;

use super::txn_view::{places_by_value, read_committed_polls, record_read, shown_reads};
use super::{FinalPartition, FinalState, TxnStatus, Violation};
use crate::history::{Op, TraceEvent};
use crate::val::Val;

const CHECK: &str = "uncommitted-read";

/// One transaction of a partition's final log.
#[derive(Clone, Copy, Debug)]
struct Txn {
    producer_id: i64,
    first: i64,
    /// Its marker's offset and whether it commits; `None`: still open.
    marker: Option<(i64, bool)>,
    /// When its marker first went below a high watermark; `None`: never.
    decided_ms: Option<u64>,
}

impl Txn {
    /// Whether it still held the LSO back at `at_ms`.
    fn undecided_at(&self, at_ms: u64) -> bool {
        self.decided_ms.is_none_or(|decided| decided > at_ms)
    }

    fn describe(&self) -> String {
        let what = format!(
            "producer {}'s transaction from offset {}",
            self.producer_id, self.first
        );
        match (self.marker, self.decided_ms) {
            (None, _) => format!("{what} has no marker in the final log (still open)"),
            (Some((m, commit)), decided) => {
                let kind = if commit { "commit" } else { "abort" };
                match decided {
                    Some(ms) => format!(
                        "{what} had its {kind} marker at offset {m} below a high watermark only \
                         at {ms} ms"
                    ),
                    None => format!(
                        "{what} has its {kind} marker at offset {m}, which no high watermark \
                         ever passed"
                    ),
                }
            }
        }
    }
}

/// A partition's transactions in order of their first offset, with, for each prefix of them,
/// the one decided last (the one that held the LSO back longest).
struct Txns {
    txns: Vec<Txn>,
    latest_decided: Vec<usize>,
}

impl Txns {
    fn new(log: &FinalPartition, high_watermarks: &[(u64, i64)]) -> Self {
        let mut txns = transactions(log);
        for txn in &mut txns {
            txn.decided_ms = txn.marker.and_then(|(m, _)| decided_ms(high_watermarks, m));
        }
        let mut latest_decided: Vec<usize> = Vec::with_capacity(txns.len());
        for (i, txn) in txns.iter().enumerate() {
            let latest = match latest_decided.last() {
                Some(&j) if later(txns[j].decided_ms, txn.decided_ms) => j,
                _ => i,
            };
            latest_decided.push(latest);
        }
        Txns {
            txns,
            latest_decided,
        }
    }

    /// A transaction starting at or below `offset` still undecided at `at_ms`, if any.
    fn holding(&self, offset: i64, at_ms: u64) -> Option<&Txn> {
        let below = self.txns.partition_point(|t| t.first <= offset);
        let latest = &self.txns[*self.latest_decided.get(below.checked_sub(1)?)?];
        latest.undecided_at(at_ms).then_some(latest)
    }
}

/// Whether `a` is decided later than `b` (never is latest of all).
fn later(a: Option<u64>, b: Option<u64>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a >= b,
    }
}

/// The transactions of a final log, in order of their first offset.
fn transactions(log: &FinalPartition) -> Vec<Txn> {
    // Transactional records and markers, merged in offset order: (offset, pid, marker).
    let mut steps: Vec<(i64, i64, Option<bool>)> = log
        .committed
        .iter()
        .filter(|r| r.txn.is_some())
        .filter_map(|r| Some((r.offset, r.producer_id?, None)))
        .chain(
            log.markers
                .iter()
                .map(|m| (m.offset, m.producer_id, Some(m.commit))),
        )
        .collect();
    steps.sort_by_key(|&(offset, _, _)| offset);
    let mut open: BTreeMap<i64, usize> = BTreeMap::new();
    let mut txns: Vec<Txn> = Vec::new();
    for (offset, producer_id, marker) in steps {
        match marker {
            None => {
                open.entry(producer_id).or_insert_with(|| {
                    txns.push(Txn {
                        producer_id,
                        first: offset,
                        marker: None,
                        decided_ms: None,
                    });
                    txns.len() - 1
                });
            }
            Some(commit) => {
                if let Some(i) = open.remove(&producer_id) {
                    txns[i].marker = Some((offset, commit));
                }
            }
        }
    }
    txns
}

/// Every partition's high watermark over time: (at_ms, the highest any broker had reported so
/// far), in trace order.
fn high_watermarks(trace: &[TraceEvent]) -> BTreeMap<&str, Vec<(u64, i64)>> {
    let mut by_partition: BTreeMap<&str, Vec<(u64, i64)>> = BTreeMap::new();
    for event in trace.iter().filter(|e| e.kind == "hw") {
        let (Some(partition), Some(hw)) = (
            event.detail.get("partition").and_then(Val::as_str),
            event.detail.get("hw").and_then(Val::as_i64),
        ) else {
            continue;
        };
        let series = by_partition.entry(partition).or_default();
        let highest = series.last().map_or(hw, |&(_, h)| h.max(hw));
        series.push((event.at_ms, highest));
    }
    by_partition
}

/// When a high watermark first went above `offset`.
fn decided_ms(high_watermarks: &[(u64, i64)], offset: i64) -> Option<u64> {
    let i = high_watermarks.partition_point(|&(_, hw)| hw <= offset);
    high_watermarks.get(i).map(|&(at_ms, _)| at_ms)
}

/// One poll's reads of a partition past the LSO, and the transaction that held it below the
/// first of them.
type Unstable<'a> = (Vec<(i64, &'a str)>, &'a Txn);

pub fn check(history: &[Op], trace: &[TraceEvent], state: &FinalState) -> Vec<Violation> {
    let polls = read_committed_polls(history);
    if polls.is_empty() {
        return Vec::new();
    }
    let places = places_by_value(state);
    let hws = high_watermarks(trace);
    let txns: BTreeMap<&str, Txns> = state
        .partitions
        .iter()
        .filter(|(_, log)| !log.markers.is_empty() || log.committed.iter().any(|r| r.txn.is_some()))
        .map(|(name, log)| {
            let series = hws.get(name.as_str()).map_or(&[][..], Vec::as_slice);
            (name.as_str(), Txns::new(log, series))
        })
        .collect();
    let mut found = Vec::new();
    for (poll, reads) in polls {
        let mut unstable: BTreeMap<&str, Unstable> = BTreeMap::new();
        for read in &reads {
            let Some(txns) = txns.get(read.partition) else {
                continue;
            };
            let Some(record) = record_read(state, &places, read) else {
                continue;
            };
            if record.txn == Some(TxnStatus::Aborted) {
                continue;
            }
            if let Some(txn) = txns.holding(record.offset, poll.at_ms) {
                let entry = unstable
                    .entry(read.partition)
                    .or_insert_with(|| (Vec::new(), txn));
                entry.0.push((read.offset, read.value.unwrap_or("null")));
            }
        }
        for (partition, (records, txn)) in unstable {
            found.push(Violation {
                check: CHECK.to_string(),
                at_ms: poll.at_ms,
                detail: format!(
                    "{} (read_committed) read {} record(s) of {partition} past the last stable \
                     offset, at {}: {}",
                    poll.process,
                    records.len(),
                    shown_reads(&records),
                    txn.describe()
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
        committed_poll, hw, marker, plain, poll, record_of, state, summary, txn_partition,
    };
    use crate::check::TxnStatus::{Aborted, Committed, Open};

    const T1: (i64, i16) = (7, 0);
    const T2: (i64, i16) = (8, 0);

    /// orders-0: t1's committed transaction at 0..1 (marker 2), a plain record at 3, t2's
    /// aborted one at 4 (marker 5), a plain record at 6, t1's open one at 7.
    fn final_state() -> FinalState {
        state(vec![(
            "orders-0",
            txn_partition(
                vec![
                    record_of(0, "t1-0", T1, Some(Committed)),
                    record_of(1, "t1-1", T1, Some(Committed)),
                    plain(3, "p-0"),
                    record_of(4, "t2-0", T2, Some(Aborted)),
                    plain(6, "p-1"),
                    record_of(7, "t1-2", T1, Some(Open)),
                ],
                vec![marker(2, T1, true), marker(5, T2, false)],
            ),
        )])
    }

    /// The high watermark passes t1's commit marker (2) at 100 ms and t2's abort marker (5) at
    /// 200 ms; a follower lags behind.
    fn trace() -> Vec<TraceEvent> {
        vec![
            hw(50, 1, "orders-0", "leader", 2, 0, 0),
            hw(60, 2, "orders-0", "follower", 1, 0, 0),
            hw(100, 1, "orders-0", "leader", 3, 0, 0),
            hw(150, 2, "orders-0", "follower", 3, 0, 0),
            hw(200, 1, "orders-0", "leader", 7, 0, 0),
            hw(210, 3, "orders-1", "leader", 50, 0, 0),
        ]
    }

    #[test]
    fn reads_of_stable_records_are_quiet() {
        let history: Vec<Op> = [
            committed_poll(
                "c",
                100,
                &[("orders-0", 0, "t1-0"), ("orders-0", 1, "t1-1")],
            ),
            committed_poll("c", 120, &[("orders-0", 3, "p-0")]),
            committed_poll("c", 200, &[("orders-0", 6, "p-1")]),
            // Aborted: aborted-read's business. Unknown value: inconsistent-read's.
            committed_poll("d", 90, &[("orders-0", 4, "t2-0"), ("orders-0", 3, "x")]),
            // read_uncommitted reads whatever it likes.
            poll("u", 30, &[("orders-0", 7, Some("t1-2"))]),
        ]
        .concat();
        assert_eq!(check(&history, &trace(), &final_state()), vec![]);
    }

    #[test]
    fn a_read_before_the_marker_was_committed_or_of_an_open_transaction_fires() {
        let history: Vec<Op> = [
            // Before the high watermark passed t1's commit marker.
            committed_poll("c", 99, &[("orders-0", 1, "t1-1")]),
            // A plain record above t2's transaction, before its abort marker was committed.
            committed_poll("c", 150, &[("orders-0", 6, "p-1")]),
            // A record of a transaction that never got a marker.
            committed_poll("d", 300, &[("orders-0", 7, "t1-2")]),
        ]
        .concat();
        let found = check(&history, &trace(), &final_state());
        assert_eq!(
            summary(&found),
            vec![
                (99, Some("orders-0")),
                (150, Some("orders-0")),
                (300, Some("orders-0"))
            ]
        );
        assert!(found.iter().all(|v| v.check == "uncommitted-read"));
        assert_eq!(
            found[0].detail,
            "c (read_committed) read 1 record(s) of orders-0 past the last stable offset, at \
             1 (t1-1): producer 7's transaction from offset 0 had its commit marker at offset 2 \
             below a high watermark only at 100 ms"
        );
        assert!(
            found[1]
                .detail
                .ends_with("producer 8's transaction from offset 4 had its abort marker at offset 5 below a high watermark only at 200 ms"),
            "{found:?}"
        );
        assert!(
            found[2]
                .detail
                .ends_with("producer 7's transaction from offset 7 has no marker in the final log (still open)"),
            "{found:?}"
        );
    }

    #[test]
    fn a_marker_no_high_watermark_passed_holds_the_lso_for_good() {
        let history = committed_poll("c", 500, &[("orders-0", 6, "p-1")]);
        let early = vec![hw(100, 1, "orders-0", "leader", 3, 0, 0)];
        let found = check(&history, &early, &final_state());
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .detail
                .ends_with("has its abort marker at offset 5, which no high watermark ever passed"),
            "{found:?}"
        );
    }
}
