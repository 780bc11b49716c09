//! `panic`: a simulated node panicked.
//!
//! A broker or controller that panics has reached a state its own code declares impossible (an
//! `unreachable!`, a failed assertion, an index out of range). Whatever the history shows, that
//! is a bug found: deterministic simulation treats any crash of the system under test as a
//! failure of the run, the way FoundationDB's simulator and TigerBeetle's VOPR do. A `crash` the
//! scenario injects as a fault is not a panic and is not listed in `panics`.
//!
//! One violation per entry of the final state's `panics`, at the time of the panic, naming the
//! node and its message; ordered by time, then node, then message, so the output does not depend
//! on the order the panics were collected in. The history is not read.

use super::{FinalState, Violation};
use crate::history::Op;

const CHECK: &str = "panic";

pub fn check(_history: &[Op], state: &FinalState) -> Vec<Violation> {
    let mut panics: Vec<&(String, u64, String)> = state.panics.iter().collect();
    panics.sort_by(|a, b| (a.1, &a.0, &a.2).cmp(&(b.1, &b.0, &b.2)));
    panics
        .into_iter()
        .map(|(node, at_ms, message)| Violation {
            check: CHECK.to_string(),
            at_ms: *at_ms,
            detail: format!("{node} panicked: {message}"),
            partition: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixtures::{op, state};
    use crate::history::OpType;

    fn panicked(panics: &[(&str, u64, &str)]) -> FinalState {
        FinalState {
            panics: panics
                .iter()
                .map(|&(node, at_ms, message)| (node.to_string(), at_ms, message.to_string()))
                .collect(),
            ..state(Vec::new())
        }
    }

    #[test]
    fn reports_each_panic_in_time_order() {
        let state = panicked(&[
            ("broker-2", 900, "assertion failed: hw <= leo"),
            (
                "controller-1",
                150,
                "index out of bounds: the len is 3 but the index is 3",
            ),
            ("broker-1", 900, "unreachable: fetch from a fenced epoch"),
        ]);
        let found = check(&[], &state);
        assert_eq!(
            found,
            vec![
                Violation {
                    check: "panic".to_string(),
                    at_ms: 150,
                    detail: "controller-1 panicked: index out of bounds: the len is 3 but the \
                             index is 3"
                        .to_string(),
                    partition: None,
                },
                Violation {
                    check: "panic".to_string(),
                    at_ms: 900,
                    detail: "broker-1 panicked: unreachable: fetch from a fenced epoch".to_string(),
                    partition: None,
                },
                Violation {
                    check: "panic".to_string(),
                    at_ms: 900,
                    detail: "broker-2 panicked: assertion failed: hw <= leo".to_string(),
                    partition: None,
                },
            ]
        );
    }

    #[test]
    fn no_panic_no_violation() {
        // Even a history full of failures says nothing about panics.
        let history = vec![op(
            "p1",
            OpType::Info,
            "send",
            serde_json::json!({"value": "p1-0", "partition": null, "error": "timeout"}),
            5,
        )];
        assert_eq!(check(&history, &panicked(&[])), Vec::new());
    }
}
