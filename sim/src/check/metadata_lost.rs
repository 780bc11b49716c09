//! `metadata-lost`: a committed record of the metadata log (`__cluster_metadata`) changed or
//! disappeared. Raft's leader completeness and state machine safety (§5.4): once an entry is
//! committed it stays, the same, in the log of every later leader. Kafka's own raft simulation
//! test checks the same over its nodes' logs.
//!
//! Every `raft-hw` event (a controller saw the high watermark reach `hw`, the entry below it of
//! epoch `last_epoch`) fixes that entry for good; by Raft's log matching property an entry is
//! identified by its offset and epoch. In the final state every controller's log that reaches
//! that offset must hold that epoch there, and a majority of the controllers must still hold the
//! whole committed prefix.

use super::{FinalState, Violation};
use crate::history::TraceEvent;

pub fn check(trace: &[TraceEvent], state: &FinalState) -> Vec<Violation> {
    let logs = &state.metadata_logs;
    if logs.is_empty() {
        return Vec::new();
    }
    let mut found = Vec::new();
    let mut committed: Option<(i64, u64, &str)> = None;
    for event in trace.iter().filter(|e| e.kind == "raft-hw") {
        let (Some(hw), Some(epoch)) = (
            event.detail["hw"].as_i64(),
            event.detail["last_epoch"].as_i64(),
        ) else {
            continue;
        };
        if hw <= 0 {
            continue;
        }
        for (controller, epochs) in logs {
            match epochs.get(hw as usize - 1) {
                Some(&held) if i64::from(held) != epoch => found.push(Violation {
                    check: "metadata-lost".into(),
                    at_ms: event.at_ms,
                    detail: format!(
                        "offset {} was committed in epoch {epoch} ({} saw the high watermark reach {hw}), \
                         but {controller}'s final log holds epoch {held} there",
                        hw - 1,
                        event.node
                    ),
                    partition: Some("__cluster_metadata-0".into()),
                }),
                _ => {}
            }
        }
        if committed.is_none_or(|(c, _, _)| hw > c) {
            committed = Some((hw, event.at_ms, &event.node));
        }
    }
    if let Some((hw, at_ms, node)) = committed {
        let holding = logs
            .values()
            .filter(|epochs| epochs.len() as i64 >= hw)
            .count();
        if holding * 2 <= logs.len() {
            found.push(Violation {
                check: "metadata-lost".into(),
                at_ms,
                detail: format!(
                    "{node} saw {hw} records committed, but only {holding} of {} controllers still hold them all",
                    logs.len()
                ),
                partition: Some("__cluster_metadata-0".into()),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn hw(at_ms: u64, node: &str, hw: i64, last_epoch: i64) -> TraceEvent {
        TraceEvent {
            at_ms,
            node: node.into(),
            kind: "raft-hw".into(),
            detail: json!({ "hw": hw, "last_epoch": last_epoch }).into(),
        }
    }

    fn state(logs: &[(&str, &[i32])]) -> FinalState {
        FinalState {
            metadata_logs: logs
                .iter()
                .map(|(n, e)| (n.to_string(), e.to_vec()))
                .collect::<BTreeMap<_, _>>(),
            ..FinalState::default()
        }
    }

    #[test]
    fn a_committed_entry_overwritten_in_a_later_epoch_fires() {
        // Offset 2 committed in epoch 1, later replaced by an epoch-2 entry on controller-2.
        let trace = [hw(100, "controller-1", 3, 1)];
        let found = check(
            &trace,
            &state(&[
                ("controller-1", &[1, 1, 1]),
                ("controller-2", &[1, 1, 2]),
                ("controller-3", &[1, 1, 1]),
            ]),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0]
            .detail
            .contains("controller-2's final log holds epoch 2"));
    }

    #[test]
    fn a_committed_prefix_gone_from_the_majority_fires() {
        let trace = [hw(100, "controller-1", 4, 1)];
        let found = check(
            &trace,
            &state(&[
                ("controller-1", &[1, 1, 1, 1]),
                ("controller-2", &[1]),
                ("controller-3", &[]),
            ]),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].detail.contains("only 1 of 3"));
    }

    #[test]
    fn committed_entries_held_by_a_majority_and_uncommitted_divergence_do_not_fire() {
        // Offsets 0..3 committed; controller-3 lags, and its uncommitted tail at 4 differs.
        let trace = [hw(50, "controller-2", 2, 1), hw(100, "controller-1", 3, 2)];
        let logs = state(&[
            ("controller-1", &[1, 1, 2, 2]),
            ("controller-2", &[1, 1, 2]),
            ("controller-3", &[1, 1, 2, 2, 3]),
        ]);
        assert_eq!(check(&trace, &logs), vec![]);
    }
}
