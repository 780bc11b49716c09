//! `split-brain`: two controllers leading the same epoch. Raft's election safety (Ongaro and
//! Ousterhout, §5.2: "at most one leader can be elected in a given term"), which KRaft keeps
//! per epoch (KIP-595). Read from the trace: every `raft-role` event with role `leader`.

use std::collections::BTreeMap;

use super::Violation;
use crate::history::TraceEvent;

pub fn check(trace: &[TraceEvent]) -> Vec<Violation> {
    let mut leaders: BTreeMap<i64, (&str, u64)> = BTreeMap::new();
    let mut found = Vec::new();
    for event in trace.iter().filter(|e| e.kind == "raft-role") {
        if event.detail["role"].as_str() != Some("leader") {
            continue;
        }
        let Some(epoch) = event.detail["epoch"].as_i64() else {
            continue;
        };
        match leaders.get(&epoch) {
            Some(&(first, at_ms)) if first != event.node => found.push(Violation {
                check: "split-brain".into(),
                at_ms: event.at_ms,
                detail: format!(
                    "{} became leader of epoch {epoch}, which {first} had led since {} ms",
                    event.node, at_ms
                ),
                partition: None,
            }),
            Some(_) => {}
            None => {
                leaders.insert(epoch, (&event.node, event.at_ms));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn role(at_ms: u64, node: &str, role: &str, epoch: i64) -> TraceEvent {
        TraceEvent {
            at_ms,
            node: node.into(),
            kind: "raft-role".into(),
            detail: json!({ "role": role, "epoch": epoch }).into(),
        }
    }

    #[test]
    fn two_leaders_in_one_epoch_fire() {
        let trace = [
            role(10, "controller-1", "leader", 1),
            role(20, "controller-2", "candidate", 2),
            role(30, "controller-2", "leader", 1),
        ];
        let found = check(&trace);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].at_ms, 30);
        assert!(found[0]
            .detail
            .contains("controller-2 became leader of epoch 1"));
    }

    #[test]
    fn one_leader_per_epoch_and_repeats_do_not() {
        let trace = [
            role(10, "controller-1", "leader", 1),
            role(15, "controller-1", "leader", 1),
            role(30, "controller-2", "leader", 2),
            role(40, "controller-3", "follower", 2),
        ];
        assert_eq!(check(&trace), vec![]);
    }
}
