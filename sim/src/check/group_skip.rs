//! `group-skip`: a record the group's committed offset claims as done that no member of the
//! group ever processed. The group-level counterpart of Jepsen's `poll-skip` (Kingsbury 2022,
//! <https://jepsen.io/analyses/redpanda-21.10.1>): `poll-skip` follows one consumer's reads of a
//! partition it kept; this follows the group as a whole, across rebalances, crashes and
//! coordinator moves, where a partition changes hands and the new owner starts from the
//! committed offset.
//!
//! A consumer that processes its records and then commits its position gets at-least-once
//! processing (Kafka documentation, *Design*, "Message Delivery Semantics"): the committed
//! offset is the group's claim that every record below it is done, and no owner will read below
//! it again. A record below it that no member processed is lost to the application for good. A
//! commit ahead of processing leads there, and so do a position moved past records (a
//! truncation that KIP-320's validation should catch, an unwarranted reset) and a new owner
//! resuming from a wrong committed offset.
//!
//! Read from the trace and the history. Per (group, partition), the group's final committed
//! offset is that of its last `offset-commit` event (`offset_commit`). Every record of the
//! partition's final committed log below it must lie in a range of a `process` operation that
//! completed `ok` for that group, by any member: the ranges name offsets, and a range covers the
//! records of the poll before it (whether those are the final log's is `inconsistent-read`'s
//! business). The group starts from the earliest offset (`auto.offset.reset=earliest` in our
//! scenarios), so every record below the committed offset counts, except those below the
//! partition's log start offset (retention or `DeleteRecords` removed them). A group that
//! committed a partition it never processed has processed none of it.
//!
//! One violation per (group, partition) with records unprocessed, at the time of the last
//! commit, with how many, the first few offsets and the first one's value.
//!
//! `unprocessed` answers the same question for bounds of the caller's choosing: a test of a
//! whole run asks it whether the group processed everything below the final high watermark.

use std::collections::BTreeMap;

use super::offset_commit::{commits, Commit};
use super::{abbreviated, FinalPartition, FinalRecord, FinalState, Violation};
use crate::history::{Op, OpType, TraceEvent};
use crate::val::Val;

const CHECK: &str = "group-skip";

pub fn check(history: &[Op], trace: &[TraceEvent], state: &FinalState) -> Vec<Violation> {
    let mut last: BTreeMap<(&str, &str), Commit> = BTreeMap::new();
    for commit in commits(trace) {
        last.insert((commit.group, commit.partition), commit);
    }
    if last.is_empty() {
        return Vec::new(); // no group committed: nothing to read the history for
    }
    let processed = Processed::from_history(history, None);
    let mut found = Vec::new();
    for ((group, partition), commit) in last {
        let Some(log) = state.partitions.get(partition) else {
            continue;
        };
        let missing = processed.missing(group, partition, log, commit.offset);
        let Some(first) = missing.first() else {
            continue;
        };
        let offsets: Vec<i64> = missing.iter().map(|r| r.offset).collect();
        found.push(Violation {
            check: CHECK.to_string(),
            at_ms: commit.at_ms,
            detail: format!(
                "group {group} committed offset {} of {partition} ({}), but no member processed \
                 {} committed record(s) below it, at {} (the first is {})",
                commit.offset,
                commit.by(),
                offsets.len(),
                abbreviated(&offsets),
                first.value.as_deref().unwrap_or("null")
            ),
            partition: Some(partition.to_string()),
        });
    }
    found
}

/// The offsets of the final committed log that no member of `group` processed, by partition.
///
/// For each `(partition, bound)` of `below`: the offsets of the records of `state`'s final
/// committed log of `partition`, at or above its log start offset and below `bound`, that no
/// `process` operation of `group` (completed `ok`, by any process) covered. Partitions where
/// every such record was processed are left out, as are those the final state does not hold, so
/// an empty map means the group processed everything asked about; a partition named twice is
/// judged against its last bound.
///
/// `group-skip` asks it with the group's final committed offset of each partition. A test of a
/// whole run asks it with the final high watermark of each partition the group consumes, to
/// assert that the group processed every committed record at least once:
///
/// ```
/// use samsa_sim::check::{group_skip, FinalPartition, FinalRecord, FinalState};
///
/// let record = |offset| FinalRecord {
///     offset,
///     value: Some(format!("v-{offset}")),
///     ..FinalRecord::default()
/// };
/// let orders_0 = FinalPartition {
///     log_start_offset: 0,
///     high_watermark: 2,
///     committed: vec![record(0), record(1)],
///     ..FinalPartition::default()
/// };
/// let mut state = FinalState::default();
/// state.partitions.insert("orders-0".to_string(), orders_0);
/// let history = []; // a group that processed nothing
/// let below = state.partitions.iter().map(|(name, p)| (name.as_str(), p.high_watermark));
/// let missing = group_skip::unprocessed(&history, &state, "g1", below);
/// assert_eq!(missing["orders-0"], vec![0, 1]);
/// ```
pub fn unprocessed<'b>(
    history: &[Op],
    state: &FinalState,
    group: &str,
    below: impl IntoIterator<Item = (&'b str, i64)>,
) -> BTreeMap<String, Vec<i64>> {
    let bounds: BTreeMap<&str, i64> = below.into_iter().collect();
    let processed = Processed::from_history(history, Some(group));
    let mut found = BTreeMap::new();
    for (partition, bound) in bounds {
        let Some(log) = state.partitions.get(partition) else {
            continue;
        };
        let missing = processed.missing(group, partition, log, bound);
        if !missing.is_empty() {
            let offsets = missing.iter().map(|r| r.offset).collect();
            found.insert(partition.to_string(), offsets);
        }
    }
    found
}

/// The offsets each group processed, by (group, partition): inclusive ranges, sorted, disjoint
/// and not adjacent.
struct Processed<'a>(BTreeMap<(&'a str, &'a str), Vec<(i64, i64)>>);

impl<'a> Processed<'a> {
    /// From the `process` operations that completed `ok`: of group `only`, or of every group.
    fn from_history(history: &'a [Op], only: Option<&str>) -> Self {
        let mut ranges: BTreeMap<(&str, &str), Vec<(i64, i64)>> = BTreeMap::new();
        for op in history
            .iter()
            .filter(|op| op.kind == OpType::Ok && op.f == "process")
        {
            let Some(group) = op.value.get("group").and_then(Val::as_str) else {
                continue;
            };
            if only.is_some_and(|only| only != group) {
                continue;
            }
            let listed = op.value.get("ranges").and_then(Val::as_array);
            for range in listed.into_iter().flatten() {
                let (Some(partition), Some(first), Some(last)) =
                    (range[0].as_str(), range[1].as_i64(), range[2].as_i64())
                else {
                    continue;
                };
                if first <= last {
                    ranges
                        .entry((group, partition))
                        .or_default()
                        .push((first, last));
                }
            }
        }
        for list in ranges.values_mut() {
            merge(list);
        }
        Processed(ranges)
    }

    /// The records of `log` at or above its log start offset and below `below` that lie in no
    /// range `group` processed of `partition`, in offset order.
    fn missing<'s>(
        &self,
        group: &str,
        partition: &str,
        log: &'s FinalPartition,
        below: i64,
    ) -> Vec<&'s FinalRecord> {
        let ranges = self
            .0
            .get(&(group, partition))
            .map_or(&[][..], Vec::as_slice);
        let from = log
            .committed
            .partition_point(|r| r.offset < log.log_start_offset);
        let to = log.committed.partition_point(|r| r.offset < below);
        let mut ranges = ranges.iter().peekable();
        let mut found = Vec::new();
        for record in &log.committed[from..to.max(from)] {
            // Both in offset order: one pass over each.
            while ranges.next_if(|&&(_, last)| last < record.offset).is_some() {}
            // The first range not below the record holds it, or none does.
            if ranges
                .peek()
                .is_none_or(|&&(first, _)| first > record.offset)
            {
                found.push(record);
            }
        }
        found
    }
}

/// Sorts inclusive ranges and merges those that overlap or touch.
fn merge(ranges: &mut Vec<(i64, i64)>) {
    ranges.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
    for &(first, last) in ranges.iter() {
        match merged.last_mut() {
            Some(prev) if first <= prev.1.saturating_add(1) => prev.1 = prev.1.max(last),
            _ => merged.push((first, last)),
        }
    }
    *ranges = merged;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::check::fixtures::{
        offset_commit, op, partition, processed, state as final_state, summary,
    };

    /// orders-0 holds a-0..a-9 at offsets 0..9, offset 3 compacted away; orders-1 holds b-0..b-8
    /// at offsets 0..8, of which b-0 and b-1 are below its log start offset 2.
    fn state() -> FinalState {
        final_state(vec![
            (
                "orders-0",
                partition(
                    0,
                    10,
                    &[
                        (0, "a-0"),
                        (1, "a-1"),
                        (2, "a-2"),
                        (4, "a-4"),
                        (5, "a-5"),
                        (6, "a-6"),
                        (7, "a-7"),
                        (8, "a-8"),
                        (9, "a-9"),
                    ],
                ),
            ),
            (
                "orders-1",
                partition(
                    2,
                    9,
                    &[
                        (0, "b-0"),
                        (1, "b-1"),
                        (2, "b-2"),
                        (3, "b-3"),
                        (4, "b-4"),
                        (5, "b-5"),
                        (6, "b-6"),
                        (7, "b-7"),
                        (8, "b-8"),
                    ],
                ),
            ),
        ])
    }

    #[test]
    fn records_below_the_last_commit_that_no_member_processed_fire() {
        let history = [
            processed("c-1", 10, "g1", &[("orders-0", 0, 2)]),
            // Offset 3 is compacted away: 2 then 4 leaves nothing out.
            processed("c-2", 20, "g1", &[("orders-0", 4, 5)]),
            // Another group's processing, or processing that did not complete, is not g1's.
            processed("d-1", 30, "g2", &[("orders-0", 6, 8)]),
            op(
                "c-2",
                OpType::Fail,
                "process",
                json!({"group": "g1", "ranges": [["orders-0", 6, 7]]}),
                35,
            ),
        ];
        let trace = [
            offset_commit(40, "g1", ("orders-0", 4), Some(("c-1", 3))),
            offset_commit(50, "g1", ("orders-0", 9), Some(("c-2", 4))),
            // g1 committed orders-1 without processing any of it.
            offset_commit(60, "g1", ("orders-1", 9), None),
        ];
        let found = check(&history, &trace, &state());
        assert_eq!(
            summary(&found),
            vec![(50, Some("orders-0")), (60, Some("orders-1"))]
        );
        assert!(found.iter().all(|v| v.check == "group-skip"));
        assert_eq!(
            found[0].detail,
            "group g1 committed offset 9 of orders-0 (member c-2-uuid, generation 4), but no \
             member processed 3 committed record(s) below it, at 6, 7, 8 (the first is a-6)"
        );
        assert_eq!(
            found[1].detail,
            "group g1 committed offset 9 of orders-1 (no member, generation -1), but no member \
             processed 7 committed record(s) below it, at 2, 3, 4, 5, 6, … (the first is b-2)"
        );
    }

    #[test]
    fn a_group_that_processed_everything_below_its_last_commit_does_not_fire() {
        let history = [
            // Out of order, overlapping and touching ranges, by several members, in one op or
            // in several: together they cover 0..=6 of orders-0.
            processed("c-1", 10, "g1", &[("orders-0", 4, 6), ("orders-1", 2, 4)]),
            processed("c-2", 20, "g1", &[("orders-0", 0, 1)]),
            processed("c-1", 30, "g1", &[("orders-0", 1, 2)]),
            // Processed again after a rebalance: fine.
            processed("c-2", 40, "g1", &[("orders-0", 0, 5)]),
        ];
        let trace = [
            // Only the last commit counts: 7 (what went back is offset-regression's business).
            offset_commit(50, "g1", ("orders-0", 9), Some(("c-1", 3))),
            offset_commit(60, "g1", ("orders-0", 7), Some(("c-2", 2))),
            offset_commit(61, "g1", ("orders-1", 5), Some(("c-1", 3))),
            // Below the log start offset nothing is left to process.
            offset_commit(70, "g2", ("orders-1", 2), Some(("d-1", 1))),
            // A partition the final state does not hold (its topic deleted).
            offset_commit(80, "g1", ("events-0", 4), Some(("c-1", 3))),
        ];
        assert_eq!(check(&history, &trace, &state()), vec![]);
    }

    #[test]
    fn unprocessed_lists_by_partition_what_no_member_processed_below_each_bound() {
        let history = [
            processed("c-1", 10, "g1", &[("orders-0", 0, 6), ("orders-1", 2, 8)]),
            processed("d-1", 20, "g2", &[("orders-0", 7, 9)]),
        ];
        let state = state();
        let high_watermarks = state
            .partitions
            .iter()
            .map(|(name, p)| (name.as_str(), p.high_watermark));
        let missing = unprocessed(&history, &state, "g1", high_watermarks);
        // orders-1 is whole: left out.
        assert_eq!(
            missing,
            BTreeMap::from([("orders-0".to_string(), vec![7, 8, 9])])
        );
        let missing = unprocessed(&history, &state, "g2", [("orders-0", 9), ("orders-9", 5)]);
        assert_eq!(
            missing,
            BTreeMap::from([("orders-0".to_string(), vec![0, 1, 2, 4, 5, 6])])
        );
        assert_eq!(
            unprocessed(&history, &state, "g1", [("orders-0", 7)]),
            BTreeMap::new()
        );
    }
}
