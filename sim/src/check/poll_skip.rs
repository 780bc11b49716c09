//! `poll-skip`: a consumer, between two successive reads of a partition it kept assigned, passed
//! over records the final log holds (Jepsen's `poll-skip`; `poll_sequence` says what counts as
//! successive). Kafka's consumer reads a partition in order from its position: a record it never
//! returned, with no seek, reset or reassignment in between, is one the application never saw.
//! Lost from the consumer's view is how Kafka's loss of an acknowledged write, or a position
//! moved past a truncation (what KIP-320's validation prevents), reaches an application.
//!
//! One violation per step that skips, at the time of the later read.

use super::poll_sequence::{offsets_between, steps};
use super::{abbreviated, FinalState, Violation};
use crate::history::Op;

const CHECK: &str = "poll-skip";

pub fn check(history: &[Op], state: &FinalState) -> Vec<Violation> {
    steps(history, state)
        .into_iter()
        .filter(|s| s.next.index > s.prev.index + 1)
        .filter_map(|s| {
            let skipped = offsets_between(
                state,
                s.partition,
                s.prev.index,
                s.next.index,
                s.read_committed,
            );
            if skipped.is_empty() {
                return None; // only aborted or open transactions in between
            }
            let detail = format!(
                "{} read offset {} of {} then offset {}, skipping {} committed record(s) at {}",
                s.process,
                s.prev.offset,
                s.partition,
                s.next.offset,
                skipped.len(),
                abbreviated(&skipped)
            );
            Some(s.violation(CHECK, detail))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::check::fixtures::{op, partition, poll, state as final_state};
    use crate::history::OpType;

    fn state() -> FinalState {
        // orders-0 holds a-0..a-5 at offsets 0..5, with offset 3 compacted away.
        final_state(vec![(
            "orders-0",
            partition(
                0,
                6,
                &[(0, "a-0"), (1, "a-1"), (2, "a-2"), (4, "a-4"), (5, "a-5")],
            ),
        )])
    }

    #[test]
    fn a_consumer_reading_on_from_its_position_skips_nothing() {
        let mut history = Vec::new();
        history.extend(poll(
            "c",
            10,
            &[("orders-0", 0, Some("a-0")), ("orders-0", 1, Some("a-1"))],
        ));
        // Offset 3 is gone by compaction: reading 2 then 4 is no skip.
        history.extend(poll(
            "c",
            20,
            &[("orders-0", 2, Some("a-2")), ("orders-0", 4, Some("a-4"))],
        ));
        history.extend(poll("c", 30, &[("orders-0", 5, Some("a-5"))]));
        assert_eq!(check(&history, &state()), vec![]);
    }

    #[test]
    fn a_gap_between_two_polls_or_inside_one_is_a_skip() {
        let mut history = Vec::new();
        history.extend(poll("c", 10, &[("orders-0", 0, Some("a-0"))]));
        history.extend(poll(
            "c",
            20,
            &[("orders-0", 2, Some("a-2")), ("orders-0", 5, Some("a-5"))],
        ));
        let found = check(&history, &state());
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].at_ms, 20);
        assert_eq!(
            found[0].detail,
            "c read offset 0 of orders-0 then offset 2, skipping 1 committed record(s) at 1"
        );
        assert!(
            found[1]
                .detail
                .ends_with("skipping 1 committed record(s) at 4"),
            "{found:?}"
        );
    }

    #[test]
    fn a_reset_a_seek_or_a_reassignment_entitles_the_consumer_to_move() {
        let mut history = Vec::new();
        history.extend(poll("c", 10, &[("orders-0", 0, Some("a-0"))]));
        history.push(op(
            "c",
            OpType::Ok,
            "reset",
            json!({"partition": "orders-0", "from": 1, "to": 4}),
            15,
        ));
        history.extend(poll("c", 20, &[("orders-0", 4, Some("a-4"))]));
        history.push(op(
            "c",
            OpType::Ok,
            "assign",
            json!({"partitions": ["orders-0"]}),
            25,
        ));
        history.extend(poll("c", 30, &[("orders-0", 0, Some("a-0"))]));
        // A reset of another partition, or by another consumer, changes nothing for c.
        history.push(op("d", OpType::Ok, "seek", json!({}), 35));
        history.push(op(
            "c",
            OpType::Ok,
            "reset",
            json!({"partition": "orders-1"}),
            36,
        ));
        history.extend(poll("c", 40, &[("orders-0", 2, Some("a-2"))]));
        let found = check(&history, &state());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].at_ms, 40);
    }

    #[test]
    fn another_consumer_or_a_read_the_final_log_disowns_starts_a_new_sequence() {
        let mut history = Vec::new();
        history.extend(poll("c", 10, &[("orders-0", 0, Some("a-0"))]));
        history.extend(poll("d", 20, &[("orders-0", 4, Some("a-4"))]));
        // "x" at offset 1 is not what the final log holds: inconsistent-read's to report.
        history.extend(poll(
            "c",
            30,
            &[("orders-0", 1, Some("x")), ("orders-0", 5, Some("a-5"))],
        ));
        assert_eq!(check(&history, &state()), vec![]);
    }
}
