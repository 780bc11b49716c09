//! `nonmonotonic-poll`: a consumer's successive reads of a partition it kept assigned went
//! backwards or repeated a record (Jepsen's `nonmonotonic-poll`; `poll_sequence` says what
//! counts as successive). Kafka's consumer advances its position past every record it returns;
//! reading one again without a seek, a reset or a reassignment means the position moved back
//! under the application, so it processes records twice, out of order.
//!
//! One violation per step that does not advance, at the time of the later read.

use super::poll_sequence::steps;
use super::{FinalState, Violation};
use crate::history::Op;

const CHECK: &str = "nonmonotonic-poll";

pub fn check(history: &[Op], state: &FinalState) -> Vec<Violation> {
    steps(history, state)
        .into_iter()
        .filter(|s| s.next.index <= s.prev.index)
        .map(|s| {
            let how = if s.next.index == s.prev.index {
                "again"
            } else {
                "after it"
            };
            let detail = format!(
                "{} read offset {} of {} {how}, having read offset {}",
                s.process, s.next.offset, s.partition, s.prev.offset
            );
            s.violation(CHECK, detail)
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
        final_state(vec![(
            "orders-0",
            partition(0, 3, &[(0, "a-0"), (1, "a-1"), (2, "a-2")]),
        )])
    }

    #[test]
    fn reading_in_order_is_monotonic() {
        let mut history = Vec::new();
        history.extend(poll(
            "c",
            10,
            &[("orders-0", 0, Some("a-0")), ("orders-0", 1, Some("a-1"))],
        ));
        history.extend(poll("c", 20, &[("orders-0", 2, Some("a-2"))]));
        assert_eq!(check(&history, &state()), vec![]);
    }

    #[test]
    fn a_repeat_or_a_step_back_is_nonmonotonic_unless_the_consumer_seeked() {
        let mut history = Vec::new();
        history.extend(poll(
            "c",
            10,
            &[("orders-0", 0, Some("a-0")), ("orders-0", 1, Some("a-1"))],
        ));
        history.extend(poll("c", 20, &[("orders-0", 1, Some("a-1"))]));
        history.extend(poll("c", 30, &[("orders-0", 0, Some("a-0"))]));
        history.push(op(
            "c",
            OpType::Ok,
            "seek",
            json!({"partition": "orders-0", "to": 0}),
            35,
        ));
        history.extend(poll("c", 40, &[("orders-0", 0, Some("a-0"))]));
        let found = check(&history, &state());
        assert_eq!(
            found.iter().map(|v| v.detail.as_str()).collect::<Vec<_>>(),
            vec![
                "c read offset 1 of orders-0 again, having read offset 1",
                "c read offset 0 of orders-0 after it, having read offset 1",
            ]
        );
        assert_eq!(found[1].at_ms, 30);
    }
}
