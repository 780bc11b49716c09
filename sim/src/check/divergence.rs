//! `divergence`: two replicas hold different records below the high watermark.
//!
//! Kafka's replication keeps the replicas' logs identical below the high watermark: a record is
//! committed once every in-sync replica has it, at the same offset (Kafka documentation,
//! *Design*, "Replication"), and a follower truncates only what the leader does not hold.
//! KIP-101 ("Alter Replication Protocol to use Leader Epoch rather than High Watermark for
//! Truncation") tells the two ways replicas came apart when followers truncated to their high
//! watermark on restart (lost committed records, and logs that diverge at one offset) and
//! replaced that truncation with the leader epoch's end offset; KIP-279 closed the cases
//! KIP-101 left. Raft calls the same property log matching (Ongaro and Ousterhout, §5.3).
//!
//! Two sources:
//!
//! - **The trace.** A `truncate` event whose `to` is below the replica's own high watermark
//!   (`hw`, as it was just before) and its log end (`from`): the replica dropped records it
//!   held as committed, so they were not the leader's, whatever the `reason`. Kafka's
//!   `ReplicaFetcherThread` (`AbstractFetcherThread.truncate`) warns on exactly this:
//!   "Truncating … to offset … below high watermark …". One violation per event. Truncating to
//!   exactly the high watermark drops nothing committed and is fine. So is a truncation below a
//!   high watermark the replica set itself as the partition's leader (its last `hw` event for
//!   the partition has role `leader`): it committed those records, and a later leader does not
//!   hold them because they were lost (a crash took them from the one in-sync copy, or an
//!   unclean election passed them by). Giving them up is how KIP-101's fix brings the replicas
//!   back into agreement after such a loss, which `lost-write` reports; what this rule finds is
//!   a follower whose high watermark, learned from its leader, covered records of its own.
//! - **The final state.** For each partition, each replica's final log is held up against the
//!   final leader's committed log (`committed`) at every offset below both that replica's own
//!   high watermark and the partition's, where both hold a record: a different record (value,
//!   or a null record against a value) at one offset is a divergence. Offsets one of them does
//!   not hold (deleted by retention, removed by compaction, not fetched yet) are not compared,
//!   nor are records above a replica's high watermark, which its next fetch may still truncate.
//!   One violation per replica per partition, naming the first differing offset and both
//!   records, at the time of the run's last trace event (the end of the run).

use std::collections::BTreeMap;

use super::{FinalRecord, FinalReplica, FinalState, Violation};
use crate::history::TraceEvent;

const CHECK: &str = "divergence";

pub fn check(trace: &[TraceEvent], state: &FinalState) -> Vec<Violation> {
    let mut found: Vec<Violation> = Vec::new();
    // The role in which each replica last set its high watermark, by (node, partition).
    let mut hw_role: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for event in trace {
        let partition = event.detail["partition"].as_str().unwrap_or("?");
        let key = (event.node.as_str(), partition);
        match event.kind.as_str() {
            "hw" => {
                let role = event.detail["role"].as_str().unwrap_or("?");
                hw_role.insert(key, role);
            }
            "truncate" if hw_role.get(&key) != Some(&"leader") => {
                found.extend(truncated_below_hw(event));
            }
            _ => {}
        }
    }
    let end_ms = trace.last().map_or(0, |e| e.at_ms);
    for (name, replicas) in &state.replicas {
        let Some(partition) = state.partitions.get(name) else {
            continue;
        };
        let committed: BTreeMap<i64, &Option<String>> = partition
            .committed
            .iter()
            .map(|r| (r.offset, &r.value))
            .collect();
        for (broker, replica) in replicas {
            let below = replica.high_watermark.min(partition.high_watermark);
            if let Some(detail) = first_difference(replica, below, &committed) {
                found.push(Violation {
                    check: CHECK.to_string(),
                    at_ms: end_ms,
                    detail: format!(
                        "broker-{broker}'s replica of {name} {detail} (below its high watermark \
                         {} and the partition's {})",
                        replica.high_watermark, partition.high_watermark
                    ),
                    partition: Some(name.clone()),
                });
            }
        }
    }
    found
}

/// The violation a `truncate` event is, if it cut records below the replica's high watermark.
fn truncated_below_hw(event: &TraceEvent) -> Option<Violation> {
    if event.kind != "truncate" {
        return None;
    }
    let detail = &event.detail;
    let (to, hw) = (detail["to"].as_i64()?, detail["hw"].as_i64()?);
    let from = detail["from"].as_i64().unwrap_or(i64::MAX);
    let cut_until = hw.min(from);
    if to >= cut_until {
        return None;
    }
    let partition = detail["partition"].as_str().unwrap_or("?");
    Some(Violation {
        check: CHECK.to_string(),
        at_ms: event.at_ms,
        detail: format!(
            "{} truncated its log of {partition} from {from} to {to} ({}, leader epoch {}), \
             below its high watermark {hw}: the records at offsets {to}..{cut_until} it held \
             as committed were not the leader's",
            event.node,
            detail["reason"].as_str().unwrap_or("no reason given"),
            detail["leader_epoch"],
        ),
        partition: detail["partition"].as_str().map(str::to_string),
    })
}

/// Where `replica` first holds, below `below`, another record than the committed log.
fn first_difference(
    replica: &FinalReplica,
    below: i64,
    committed: &BTreeMap<i64, &Option<String>>,
) -> Option<String> {
    replica
        .records
        .iter()
        .take_while(|r| r.offset < below)
        .find_map(|FinalRecord { offset, value, .. }| {
            let leader = committed.get(offset)?;
            (*leader != value).then(|| {
                format!(
                    "holds {} at offset {offset}, where the final leader's committed log holds {}",
                    shown(value),
                    shown(leader)
                )
            })
        })
}

fn shown(value: &Option<String>) -> String {
    value
        .as_deref()
        .map_or_else(|| "a null record".to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixtures::{event, hw, partition, replica, state, summary, truncate};
    use crate::check::FinalState;

    fn with_replicas(
        mut final_state: FinalState,
        partition: &str,
        replicas: Vec<(i32, FinalReplica)>,
    ) -> FinalState {
        final_state
            .replicas
            .insert(partition.to_string(), replicas.into_iter().collect());
        final_state
    }

    #[test]
    fn a_truncation_below_the_high_watermark_fires() {
        let trace = [
            truncate(10, 2, "orders-0", (9, 4), 6, "diverging-epoch"),
            truncate(20, 3, "orders-1", (5, 0), 5, "offset-out-of-range"),
        ];
        let found = check(&trace, &FinalState::default());
        assert_eq!(
            summary(&found),
            vec![(10, Some("orders-0")), (20, Some("orders-1"))]
        );
        assert!(found.iter().all(|v| v.check == "divergence"));
        assert_eq!(
            found[0].detail,
            "broker-2 truncated its log of orders-0 from 9 to 4 (diverging-epoch, leader epoch \
             3), below its high watermark 6: the records at offsets 4..6 it held as committed \
             were not the leader's"
        );
    }

    #[test]
    fn a_former_leader_giving_up_what_it_committed_is_a_loss_not_a_divergence() {
        let cut = truncate(30, 2, "orders-0", (9, 4), 6, "diverging-epoch");
        // Its high watermark was its own, as leader: the next leader lacks what it committed.
        let as_leader = [hw(10, 2, "orders-0", "leader", 6, 1, 0), cut.clone()];
        assert_eq!(check(&as_leader, &FinalState::default()), vec![]);
        // Learned from a leader, as a follower, afterwards: the rule applies again.
        let then_follower = [
            hw(10, 2, "orders-0", "leader", 6, 1, 0),
            hw(20, 2, "orders-0", "follower", 6, 2, 4),
            cut.clone(),
        ];
        assert_eq!(
            summary(&check(&then_follower, &FinalState::default())),
            vec![(30, Some("orders-0"))]
        );
        // Another partition's, or another broker's, leadership changes nothing.
        let elsewhere = [
            hw(10, 2, "orders-1", "leader", 6, 1, 0),
            hw(10, 3, "orders-0", "leader", 6, 1, 0),
            cut,
        ];
        assert_eq!(check(&elsewhere, &FinalState::default()).len(), 1);
    }

    #[test]
    fn a_truncation_to_or_above_the_high_watermark_does_not() {
        let trace = [
            // To exactly the high watermark (what pre-KIP-101 followers did on restart).
            truncate(10, 2, "orders-0", (9, 6), 6, "high-watermark"),
            // Above it.
            truncate(20, 2, "orders-0", (9, 7), 6, "diverging-epoch"),
            // Its high watermark is past its log end (the tail was lost in a crash): nothing
            // below the log end was cut.
            truncate(30, 3, "orders-0", (4, 4), 6, "leader-end-offset"),
            // Other events with a `to` are not truncations of a partition.
            event(
                40,
                "controller-1",
                "raft-truncate",
                serde_json::json!({"to": 0, "hw": 5}),
            ),
        ];
        assert_eq!(check(&trace, &FinalState::default()), vec![]);
    }

    #[test]
    fn a_replica_differing_from_the_leader_below_both_high_watermarks_fires_once() {
        let leader = [(0, "a"), (1, "b"), (2, "c"), (3, "d")];
        let final_state = with_replicas(
            state(vec![("orders-0", partition(0, 4, &leader))]),
            "orders-0",
            vec![
                (1, replica(4, &leader)),
                // Differs at 1 and 2, both below its high watermark 3: one violation, at 1.
                (2, replica(3, &[(0, "a"), (1, "x"), (2, "y"), (3, "d")])),
            ],
        );
        let trace = [event(500, "world", "heal", serde_json::Value::Null)];
        let found = check(&trace, &final_state);
        assert_eq!(summary(&found), vec![(500, Some("orders-0"))]);
        assert_eq!(
            found[0].detail,
            "broker-2's replica of orders-0 holds x at offset 1, where the final leader's \
             committed log holds b (below its high watermark 3 and the partition's 4)"
        );
    }

    #[test]
    fn differences_above_a_high_watermark_or_where_one_holds_nothing_do_not() {
        // The leader deleted offset 0 by retention and compacted offset 2 away.
        let final_state = with_replicas(
            state(vec![("orders-0", partition(1, 4, &[(1, "b"), (3, "d")]))]),
            "orders-0",
            vec![
                // Differs at 2 and 3, above its own high watermark 2: its next fetch truncates.
                (2, replica(2, &[(0, "a"), (1, "b"), (2, "x"), (3, "y")])),
                // Differs at 4, above the partition's high watermark 4 (its own is 5).
                (3, replica(5, &[(0, "a"), (1, "b"), (3, "d"), (4, "z")])),
                // Holds 0 and 2, which the leader does not; holds nothing at 1.
                (4, replica(4, &[(0, "old"), (2, "k"), (3, "d")])),
            ],
        );
        assert_eq!(check(&[], &final_state), vec![]);
        // The same replica with a different record at 3 fires (the near miss is a miss).
        let diverged = with_replicas(
            final_state,
            "orders-0",
            vec![(4, replica(4, &[(0, "old"), (2, "k"), (3, "q")]))],
        );
        assert_eq!(summary(&check(&[], &diverged)), vec![(0, Some("orders-0"))]);
    }

    #[test]
    fn a_null_record_against_a_value_is_a_difference() {
        let mut follower = replica(1, &[(0, "a")]);
        follower.records[0].value = None;
        let final_state = with_replicas(
            state(vec![("orders-0", partition(0, 1, &[(0, "a")]))]),
            "orders-0",
            vec![(2, follower)],
        );
        let found = check(&[], &final_state);
        assert_eq!(found.len(), 1);
        assert!(found[0].detail.contains("holds a null record at offset 0"));
    }
}
