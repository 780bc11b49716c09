//! A planted run: two partitions, a truncation on one, one violation.

use serde_json::json;

use super::html;
use crate::check::{FinalPartition, FinalRecord, FinalState, Violation};
use crate::history::{Op, OpType, TraceEvent};
use crate::report::ReportInput;

fn event(at_ms: u64, node: &str, kind: &str, detail: serde_json::Value) -> TraceEvent {
    TraceEvent {
        at_ms,
        node: node.to_string(),
        kind: kind.to_string(),
        detail: serde_json::from_value(detail).expect("a detail"),
    }
}

fn planted_trace() -> Vec<TraceEvent> {
    let state = |p: &str, leader: i64, epoch: i64, isr: &[i64]| json!({"partition": p, "leader": leader, "leader_epoch": epoch, "isr": isr, "replicas": [1, 2]});
    let at = |p: &str, broker: i64, leo: i64, hw: i64| json!({"partition": p, "broker": broker, "leo": leo, "hw": hw});
    vec![
        event(
            10,
            "controller-1",
            "raft-role",
            json!({"role": "leader", "epoch": 1, "leader": 3001}),
        ),
        event(
            20,
            "controller-1",
            "partition-state",
            state("t-0", 1, 0, &[1, 2]),
        ),
        event(
            20,
            "controller-1",
            "partition-state",
            state("t-1", 2, 0, &[1, 2]),
        ),
        event(100, "broker-1", "append", at("t-0", 1, 10, 0)),
        event(110, "broker-2", "replica-append", at("t-0", 2, 10, 0)),
        event(120, "broker-1", "hw", at("t-0", 1, 10, 10)),
        event(130, "broker-2", "append", at("t-1", 2, 5, 5)),
        event(200, "world", "crash", json!({"node": "broker-1"})),
        event(
            210,
            "controller-1",
            "partition-state",
            state("t-0", 2, 1, &[2]),
        ),
        event(
            220,
            "broker-2",
            "truncate",
            json!({"partition": "t-0", "broker": 2, "from": 10, "to": 4, "leo": 4, "hw": 4, "reason": "high-watermark"}),
        ),
        event(300, "world", "restart", json!({"node": "broker-1"})),
    ]
}

fn planted_history() -> Vec<Op> {
    let op = |kind, at_ms, value: serde_json::Value| Op {
        process: "p1".to_string(),
        kind,
        f: "send".to_string(),
        value: serde_json::from_value(value).expect("a value"),
        at_ms,
    };
    vec![
        op(OpType::Invoke, 90, json!({"value": "v7"})),
        op(
            OpType::Ok,
            125,
            json!({"partition": "t-0", "offset": 7, "value": "v7"}),
        ),
        op(OpType::Invoke, 95, json!({"value": "<script>"})),
        op(OpType::Fail, 150, json!({})),
    ]
}

fn render(trace: &[TraceEvent], history: &[Op], violations: &[Violation], sim_ms: u64) -> String {
    let mut final_state = FinalState::default();
    final_state.partitions.insert(
        "t-0".to_string(),
        FinalPartition {
            high_watermark: 4,
            committed: vec![FinalRecord {
                offset: 0,
                value: Some("v0".into()),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    html(&ReportInput {
        scenario: "planted",
        summary: "A planted run <with> \"odd\" text & more.",
        seed: 1,
        outcome: "pass",
        digest: 0,
        sim_ms,
        reproduce: "samsa run planted.toml",
        expected: &["lost-write".to_string()],
        allowed: &[],
        violations,
        history,
        trace,
        final_state: &final_state,
    })
}

fn count(page: &str, needle: &str) -> usize {
    page.matches(needle).count()
}

#[test]
fn a_planted_run_draws_two_timelines_and_one_highlighted_violation() {
    let violation = Violation {
        check: "lost-write".to_string(),
        at_ms: 400,
        detail: "p1's v7 at offset 7 of t-0 is gone".to_string(),
        partition: Some("t-0".to_string()),
    };
    let page = render(&planted_trace(), &planted_history(), &[violation], 500);
    assert_eq!(count(&page, r#"<svg class="timeline""#), 2, "{page}");
    assert_eq!(count(&page, r#"data-partition="t-0""#), 1);
    assert_eq!(count(&page, r#"data-partition="t-1""#), 1);
    assert_eq!(count(&page, r#"<article class="violation""#), 1);
    assert_eq!(count(&page, r#"<g class="violation-mark">"#), 1);
    // The acknowledged offset 7 is not in the final log: drawn as lost.
    assert_eq!(count(&page, r#"<circle class="lost""#), 1);
    assert!(page.contains("crash broker-1"), "the crash is labelled");
    assert!(
        page.contains("cut its log of t-0 from offset 10 to 4"),
        "the chain names the truncation"
    );
    assert!(
        !page.contains("<script"),
        "text is escaped and the page runs no script"
    );
}

#[test]
fn the_page_is_self_contained() {
    let page = render(&planted_trace(), &planted_history(), &[], 500);
    for reference in [
        "http://", "https://", "src=", "<link", "@import", "url(http",
    ] {
        assert!(!page.contains(reference), "{reference} in the page");
    }
}

#[test]
fn odd_input_renders_without_panicking() {
    let empty = render(&[], &[], &[], 0);
    assert!(empty.contains("</html>"));
    // Only the final state names t-0: it still gets its (empty) timeline.
    assert_eq!(count(&empty, r#"<svg class="timeline""#), 1);
    let odd = vec![
        event(
            5,
            "broker-9",
            "hw",
            json!({"partition": "x-0", "hw": "not a number"}),
        ),
        event(5, "world", "kill", json!({})),
        event(
            u64::MAX / 2,
            "world",
            "restart",
            json!({"node": "broker-9"}),
        ),
        event(
            6,
            "controller-1",
            "partition-state",
            json!({"partition": "x-0", "isr": "?"}),
        ),
    ];
    let page = render(&odd, &[], &[], 1);
    assert!(page.contains(r#"data-partition="x-0""#));
}

/// A run as busy as the ten-minute benchmark, times eight partitions: every replica's LEO and
/// HW moving every few milliseconds. The page stays under 5 MB.
#[test]
fn a_long_busy_run_stays_under_five_megabytes() {
    use crate::val::Val;
    const PARTITIONS: i64 = 48;
    const STEPS: i64 = 4_000;
    let mut trace = Vec::new();
    for step in 0..STEPS {
        for p in 0..PARTITIONS {
            for broker in 1..=3 {
                let detail = Val::object_static([
                    ("partition", Val::Str(format!("t-{p}").into())),
                    ("broker", Val::Int(broker)),
                    ("leo", Val::Int(step * 10 + broker)),
                    ("hw", Val::Int(step * 10)),
                ]);
                trace.push(TraceEvent {
                    at_ms: step as u64 * 150,
                    node: format!("broker-{broker}"),
                    kind: "hw".to_string(),
                    detail,
                });
            }
        }
    }
    let page = render(&trace, &[], &[], STEPS as u64 * 150);
    assert_eq!(
        count(&page, r#"<svg class="timeline""#),
        PARTITIONS as usize
    );
    assert!(page.len() < 5_000_000, "{} bytes", page.len());
}
