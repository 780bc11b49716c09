//! `group-overlap`: two members of one consumer group owned the same partition in the same
//! generation.
//!
//! A consumer group divides the partitions of its topics among its members so that each
//! partition is read by exactly one member (Kafka documentation, *Introduction*: that one reader
//! per partition is how a group gives both order and load balancing). The assignment is made per
//! generation: every JoinGroup round
//! starts a new one, its leader assigns, and SyncGroup hands each member its share; a partition
//! changes hands only across generations, revoked from its old owner first (eagerly before the
//! join, or, with KIP-429's cooperative rebalancing, in one generation and assigned in the
//! next). Two owners in one generation means two members fetch and commit the same partition
//! at once: records processed twice, and commits that overwrite each other.
//!
//! Read from the history: the `assign` operations that completed `ok`, each the assignment
//! (`partitions`) a member (`process`) got from SyncGroup in one `generation` of one `group`. An
//! `assign` without a group or a generation (a consumer's manual `assign()`) is not a group's.
//! Owners are processes, not member ids: a process that rejoins under a new member id (after a
//! restart, or as a static member, KIP-345, given its assignment back) is still one owner.
//!
//! One violation per (group, generation, partition) that a second process was assigned, at the
//! time of that later `assign`, naming both.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use super::Violation;
use crate::history::{Op, OpType};
use crate::val::Val;

const CHECK: &str = "group-overlap";

/// The first process assigned a partition in a generation.
struct Owner<'a> {
    process: &'a str,
    member: &'a str,
    at_ms: u64,
    /// Whether a second owner was reported already.
    reported: bool,
}

pub fn check(history: &[Op]) -> Vec<Violation> {
    let mut owners: BTreeMap<(&str, i64, &str), Owner> = BTreeMap::new();
    let mut found = Vec::new();
    for op in history
        .iter()
        .filter(|op| op.kind == OpType::Ok && op.f == "assign")
    {
        let value = &op.value;
        let (Some(group), Some(generation)) = (
            value.get("group").and_then(Val::as_str),
            value.get("generation").and_then(Val::as_i64),
        ) else {
            continue;
        };
        let member = value.get("member").and_then(Val::as_str).unwrap_or("");
        let partitions = value.get("partitions").and_then(Val::as_array);
        for partition in partitions.into_iter().flatten().filter_map(Val::as_str) {
            let first = match owners.entry((group, generation, partition)) {
                Entry::Vacant(entry) => {
                    entry.insert(Owner {
                        process: &op.process,
                        member,
                        at_ms: op.at_ms,
                        reported: false,
                    });
                    continue;
                }
                Entry::Occupied(entry) => entry.into_mut(),
            };
            if first.process == op.process || first.reported {
                continue;
            }
            first.reported = true;
            found.push(Violation {
                check: CHECK.to_string(),
                at_ms: op.at_ms,
                detail: format!(
                    "{} (member {member}) was assigned {partition} in generation {generation} of \
                     group {group}, which {} (member {}) was assigned at {} ms",
                    op.process, first.process, first.member, first.at_ms
                ),
                partition: Some(partition.to_string()),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::check::fixtures::{assign, op, summary};

    #[test]
    fn two_processes_assigned_one_partition_in_one_generation_fire_once() {
        let history = [
            assign("c-1", 10, ("g1", 3), &["orders-0", "orders-1"]),
            assign("c-2", 20, ("g1", 3), &["orders-1", "orders-2"]),
            // A third owner of orders-1 is the same violation; orders-0 is a new one.
            assign("c-3", 30, ("g1", 3), &["orders-1", "orders-0"]),
        ];
        let found = check(&history);
        assert_eq!(
            summary(&found),
            vec![(20, Some("orders-1")), (30, Some("orders-0"))]
        );
        assert!(found.iter().all(|v| v.check == "group-overlap"));
        assert_eq!(
            found[0].detail,
            "c-2 (member c-2-uuid) was assigned orders-1 in generation 3 of group g1, which c-1 \
             (member c-1-uuid) was assigned at 10 ms"
        );
    }

    #[test]
    fn a_partition_that_changes_hands_across_generations_or_groups_does_not_fire() {
        let history = [
            assign("c-1", 10, ("g1", 3), &["orders-0", "orders-1"]),
            // The same assignment again after another SyncGroup of generation 3.
            assign("c-1", 15, ("g1", 3), &["orders-0", "orders-1"]),
            // Generation 4 moves orders-1 to c-2.
            assign("c-1", 20, ("g1", 4), &["orders-0"]),
            assign("c-2", 21, ("g1", 4), &["orders-1"]),
            assign("c-3", 22, ("g1", 4), &[]),
            // Another group reads the same partitions on its own.
            assign("d-1", 30, ("g2", 3), &["orders-0", "orders-1"]),
            // A manual assign() is no group's, and an assign that did not complete owns nothing.
            op(
                "e",
                OpType::Ok,
                "assign",
                json!({"partitions": ["orders-0"]}),
                40,
            ),
            op(
                "c-2",
                OpType::Fail,
                "assign",
                json!({"group": "g1", "generation": 4, "partitions": ["orders-0"]}),
                50,
            ),
        ];
        assert_eq!(check(&history), vec![]);
    }
}
