//! `offset-regression`: a group's committed offset for a partition went backwards.
//!
//! A group's committed offset is where the next owner of the partition resumes (Kafka
//! documentation, *Design*, "Consumer Position": the position "can be periodically
//! checkpointed"; *Implementation*, "Distribution": the coordinator appends each commit to
//! `__consumer_offsets` and answers once the offsets topic's replicas have it).
//! Our consumers commit the position they have processed up to, which only advances, and an
//! owner that takes a partition over starts from the committed offset; so a committed offset
//! that moves back is the cluster's doing: a commit from a member of an old generation that the
//! coordinator accepted (the generation and member id an `OffsetCommit` carries are there to
//! fence it with `ILLEGAL_GENERATION` and `UNKNOWN_MEMBER_ID`; the protocol variant
//! `offset-commit-fencing` puts the unfenced behaviour back), or committed offsets lost with a
//! coordinator or a `__consumer_offsets` replica. The next owner then processes again what the
//! group had already done.
//!
//! Read from the trace: the `offset-commit` events (`offset_commit`), in trace order. Per
//! (group, partition), an offset below the previous committed one is a violation, at that
//! event's time, naming both offsets and who committed each. The same offset again is fine. A
//! group whose offsets are deleted (`DeleteGroups`, offset expiry) would start over; our runs
//! delete none, so nothing here forgets.

use std::collections::BTreeMap;

use super::offset_commit::{commits, Commit};
use super::Violation;
use crate::history::TraceEvent;

const CHECK: &str = "offset-regression";

pub fn check(trace: &[TraceEvent]) -> Vec<Violation> {
    let mut last: BTreeMap<(&str, &str), Commit> = BTreeMap::new();
    let mut found = Vec::new();
    for commit in commits(trace) {
        let Some(prev) = last.insert((commit.group, commit.partition), commit) else {
            continue;
        };
        if commit.offset >= prev.offset {
            continue;
        }
        found.push(Violation {
            check: CHECK.to_string(),
            at_ms: commit.at_ms,
            detail: format!(
                "group {}'s committed offset of {} went back from {} ({}, at {} ms) to {} ({}), \
                 committed by {}",
                commit.group,
                commit.partition,
                prev.offset,
                prev.by(),
                prev.at_ms,
                commit.offset,
                commit.by(),
                commit.node
            ),
            partition: Some(commit.partition.to_string()),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixtures::{offset_commit, summary};

    #[test]
    fn a_committed_offset_below_the_previous_one_fires() {
        let trace = [
            offset_commit(10, "g1", ("orders-0", 5), Some(("c-1", 3))),
            offset_commit(20, "g1", ("orders-0", 10), Some(("c-1", 3))),
            // A zombie of generation 2 commits where it was.
            offset_commit(30, "g1", ("orders-0", 7), Some(("c-2", 2))),
            // Up again from there: fine; then back again, without member or generation.
            offset_commit(40, "g1", ("orders-0", 8), Some(("c-1", 3))),
            offset_commit(50, "g1", ("orders-0", 6), None),
        ];
        let found = check(&trace);
        assert_eq!(
            summary(&found),
            vec![(30, Some("orders-0")), (50, Some("orders-0"))]
        );
        assert!(found.iter().all(|v| v.check == "offset-regression"));
        assert_eq!(
            found[0].detail,
            "group g1's committed offset of orders-0 went back from 10 (member c-1-uuid, \
             generation 3, at 20 ms) to 7 (member c-2-uuid, generation 2), committed by broker-1"
        );
        assert!(
            found[1]
                .detail
                .ends_with("to 6 (no member, generation -1), committed by broker-1"),
            "{found:?}"
        );
    }

    #[test]
    fn offsets_that_advance_or_stay_do_not_fire_per_group_and_partition() {
        let trace = [
            offset_commit(10, "g1", ("orders-0", 5), Some(("c-1", 3))),
            offset_commit(20, "g1", ("orders-0", 5), Some(("c-1", 3))),
            // Another partition, and another group, are judged on their own.
            offset_commit(25, "g1", ("orders-1", 2), Some(("c-2", 3))),
            offset_commit(30, "g2", ("orders-0", 1), Some(("d-1", 1))),
            offset_commit(40, "g1", ("orders-0", 9), Some(("c-2", 4))),
            offset_commit(50, "g2", ("orders-0", 3), None),
        ];
        assert_eq!(check(&trace), vec![]);
    }
}
