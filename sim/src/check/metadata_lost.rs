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
//!
//! With snapshots (KIP-630) a final log may start past 0: the state below its start is in the
//! latest snapshot, whose id (end offset, epoch) names the entry below its end. A committed
//! entry at a snapshot's end must have the snapshot's epoch; one inside a snapshot cannot be of a
//! newer epoch than the snapshot's; a snapshot may not end past what was seen committed; and a
//! controller holds the committed prefix if its snapshot and log together reach it.

use super::{FinalState, MetadataLogStart, SnapshotPoint, Violation};
use crate::history::TraceEvent;

/// One controller's final log: its entries' epochs from `start.log_start`, and the snapshot that
/// holds the state below (KIP-630).
struct FinalLog<'a> {
    start: MetadataLogStart,
    epochs: &'a [i32],
}

impl FinalLog<'_> {
    /// The epoch of the entry at `offset`, if the log holds it.
    fn epoch_at(&self, offset: i64) -> Option<i32> {
        usize::try_from(offset - self.start.log_start)
            .ok()
            .and_then(|i| self.epochs.get(i).copied())
    }

    /// The offset below which this controller holds the whole committed state: its snapshot and
    /// the log after it, or its log from 0. A log that starts past 0 with no snapshot at or
    /// beyond its start holds nothing whole.
    fn held_end(&self) -> i64 {
        let log_end = self.start.log_start + self.epochs.len() as i64;
        match self.start.snapshot {
            Some(s) if s.end_offset >= self.start.log_start => s.end_offset.max(log_end),
            Some(s) => s.end_offset,
            None if self.start.log_start == 0 => log_end,
            None => 0,
        }
    }
}

pub fn check(trace: &[TraceEvent], state: &FinalState) -> Vec<Violation> {
    let logs: Vec<(&String, FinalLog)> = state
        .metadata_logs
        .iter()
        .map(|(node, epochs)| {
            let start = state
                .metadata_log_starts
                .get(node)
                .copied()
                .unwrap_or_default();
            (node, FinalLog { start, epochs })
        })
        .collect();
    if logs.is_empty() {
        return Vec::new();
    }
    let violation = |at_ms: u64, detail: String| Violation {
        check: "metadata-lost".into(),
        at_ms,
        detail,
        partition: Some("__cluster_metadata-0".into()),
    };
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
        for (controller, log) in &logs {
            let why = match (log.epoch_at(hw - 1), log.start.snapshot) {
                (Some(held), _) if i64::from(held) != epoch => {
                    Some(format!("{controller}'s final log holds epoch {held} there"))
                }
                // The snapshot ends right there: by log matching its id names the entry.
                (
                    _,
                    Some(SnapshotPoint {
                        end_offset,
                        epoch: held,
                    }),
                ) if end_offset == hw && i64::from(held) != epoch => Some(format!(
                    "{controller}'s snapshot ending there is of epoch {held}"
                )),
                // Below its log, inside its snapshot: epochs never decrease along a log.
                (
                    None,
                    Some(SnapshotPoint {
                        end_offset,
                        epoch: held,
                    }),
                ) if end_offset > hw && i64::from(held) < epoch => Some(format!(
                    "{controller}'s snapshot ending at {end_offset} is of epoch {held}, older"
                )),
                _ => None,
            };
            if let Some(why) = why {
                let detail = format!(
                    "offset {} was committed in epoch {epoch} ({} saw the high watermark reach {hw}), \
                     but {why}",
                    hw - 1,
                    event.node
                );
                found.push(violation(event.at_ms, detail));
            }
        }
        if committed.is_none_or(|(c, _, _)| hw > c) {
            committed = Some((hw, event.at_ms, &event.node));
        }
    }
    let committed_hw = committed.map_or(0, |(hw, _, _)| hw);
    for (controller, log) in &logs {
        // A snapshot holds only what was committed (KIP-630: the state at a committed offset).
        if let Some(s) = log.start.snapshot.filter(|s| s.end_offset > committed_hw) {
            let detail = format!(
                "{controller}'s snapshot ends at {} (epoch {}), past everything seen committed ({committed_hw})",
                s.end_offset, s.epoch
            );
            found.push(violation(0, detail));
        }
    }
    if let Some((hw, at_ms, node)) = committed {
        let holding = logs.iter().filter(|(_, log)| log.held_end() >= hw).count();
        if holding * 2 <= logs.len() {
            let detail = format!(
                "{node} saw {hw} records committed, but only {holding} of {} controllers still hold them all",
                logs.len()
            );
            found.push(violation(at_ms, detail));
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

    /// A controller, its log start, and its snapshot's (end offset, epoch).
    type Start<'a> = (&'a str, i64, Option<(i64, i32)>);

    fn state_with_starts(logs: &[(&str, &[i32])], starts: &[Start]) -> FinalState {
        let mut state = state(logs);
        for &(node, log_start, snapshot) in starts {
            let snapshot = snapshot.map(|(end_offset, epoch)| SnapshotPoint { end_offset, epoch });
            state.metadata_log_starts.insert(
                node.into(),
                MetadataLogStart {
                    log_start,
                    snapshot,
                },
            );
        }
        state
    }

    #[test]
    fn a_log_starting_at_its_snapshot_holds_the_committed_prefix() {
        // Offsets 0..6 committed; controller-1 snapshotted at 4 (epoch 1), its log from 4.
        let trace = [hw(50, "controller-2", 4, 1), hw(100, "controller-1", 6, 2)];
        let logs = state_with_starts(
            &[
                ("controller-1", &[2, 2]),
                ("controller-2", &[1, 1, 1, 1, 2, 2]),
                ("controller-3", &[2, 2]),
            ],
            &[
                ("controller-1", 4, Some((4, 1))),
                ("controller-3", 4, Some((4, 1))),
            ],
        );
        assert_eq!(check(&trace, &logs), vec![]);
    }

    #[test]
    fn a_snapshot_of_another_epoch_at_a_committed_offset_fires() {
        let trace = [hw(50, "controller-2", 4, 1)];
        let logs = state_with_starts(
            &[
                ("controller-1", &[]),
                ("controller-2", &[1, 1, 1, 1]),
                ("controller-3", &[1, 1, 1, 1]),
            ],
            &[("controller-1", 4, Some((4, 2)))],
        );
        let found = check(&trace, &logs);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0]
            .detail
            .contains("snapshot ending there is of epoch 2"));
    }

    #[test]
    fn a_snapshot_past_the_committed_log_fires() {
        let trace = [hw(50, "controller-2", 4, 1)];
        let logs = state_with_starts(
            &[
                ("controller-1", &[1]),
                ("controller-2", &[1, 1, 1, 1, 1]),
                ("controller-3", &[1, 1, 1, 1, 1]),
            ],
            &[("controller-1", 5, Some((5, 1)))],
        );
        let found = check(&trace, &logs);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].detail.contains("past everything seen committed"));
    }

    #[test]
    fn a_log_start_without_a_snapshot_holds_nothing() {
        // controller-2 and -3 lost the state below 4: only one of three holds the prefix.
        let trace = [hw(50, "controller-1", 6, 1)];
        let logs = state_with_starts(
            &[
                ("controller-1", &[1, 1, 1, 1, 1, 1]),
                ("controller-2", &[1, 1]),
                ("controller-3", &[1, 1]),
            ],
            &[("controller-2", 4, None), ("controller-3", 4, None)],
        );
        let found = check(&trace, &logs);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].detail.contains("only 1 of 3"));
    }
}
