//! Stories told of small planted runs: KIP-101's first scenario in a dozen events.

use serde_json::json;

use super::*;
use crate::history::{OpType, TraceEvent};
use crate::val::Val;

fn ev(at_ms: u64, node: &str, kind: &str, detail: serde_json::Value) -> TraceEvent {
    TraceEvent {
        at_ms,
        node: node.to_string(),
        kind: kind.to_string(),
        detail: Val::from(detail),
    }
}

fn op(process: &str, kind: OpType, at_ms: u64, value: serde_json::Value) -> Op {
    Op {
        process: process.to_string(),
        kind,
        f: "send".to_string(),
        value: Val::from(value),
        at_ms,
    }
}

fn state(at_ms: u64, leader: i64, epoch: i64, isr: &[i64]) -> TraceEvent {
    ev(
        at_ms,
        "controller-1",
        "partition-state",
        json!({"partition": "orders-0", "leader": leader, "leader_epoch": epoch, "isr": isr}),
    )
}

fn role(at_ms: u64, broker: i64, role: &str, epoch: i64) -> TraceEvent {
    ev(
        at_ms,
        &format!("broker-{broker}"),
        "partition-role",
        json!({"partition": "orders-0", "broker": broker, "role": role, "leader_epoch": epoch}),
    )
}

/// Broker 1 leads; 2 and 3 fetch offset 5; broker 3's high watermark lags; broker 1 stops,
/// broker 2 is elected, broker 3 truncates to its high watermark (5), broker 2 dies, broker 3 is
/// elected without offset 5 and writes another record there.
fn planted() -> (Vec<Op>, Vec<TraceEvent>) {
    let history = vec![
        op(
            "p1",
            OpType::Invoke,
            100,
            json!({"value": "p1-5", "key": "k5", "partition": null}),
        ),
        op(
            "p1",
            OpType::Ok,
            130,
            json!({"value": "p1-5", "partition": "orders-0", "offset": 5}),
        ),
        op(
            "p1",
            OpType::Invoke,
            900,
            json!({"value": "p1-9", "key": "k9", "partition": null}),
        ),
        op(
            "p1",
            OpType::Ok,
            910,
            json!({"value": "p1-9", "partition": "orders-0", "offset": 5}),
        ),
    ];
    let trace = vec![
        state(10, 1, 0, &[1, 2, 3]),
        role(11, 1, "leader", 0),
        ev(
            101,
            "broker-1",
            "append",
            json!({"partition": "orders-0", "broker": 1, "first": 5, "last": 5, "leo": 6, "hw": 5}),
        ),
        ev(
            110,
            "broker-2",
            "replica-append",
            json!({"partition": "orders-0", "broker": 2, "first": 5, "last": 5, "leo": 6, "hw": 5}),
        ),
        ev(
            111,
            "broker-3",
            "replica-append",
            json!({"partition": "orders-0", "broker": 3, "first": 5, "last": 5, "leo": 6, "hw": 5}),
        ),
        ev(
            120,
            "broker-1",
            "hw",
            json!({"partition": "orders-0", "broker": 1, "hw": 6, "leo": 6, "role": "leader", "leader_epoch": 0}),
        ),
        ev(
            200,
            "world",
            "controlled-shutdown",
            json!({"node": "broker-1"}),
        ),
        state(300, 2, 1, &[2, 3]),
        ev(301, "world", "kill", json!({"node": "broker-2"})),
        ev(
            305,
            "broker-3",
            "truncate",
            json!({"partition": "orders-0", "broker": 3, "from": 6, "to": 5, "hw": 5, "leader_epoch": 1, "reason": "high-watermark"}),
        ),
        state(800, 3, 2, &[3]),
        role(801, 3, "leader", 2),
        ev(
            905,
            "broker-3",
            "append",
            json!({"partition": "orders-0", "broker": 3, "first": 5, "last": 5, "leo": 6, "hw": 5}),
        ),
    ];
    (history, trace)
}

#[test]
fn a_lost_write_names_the_record_and_the_truncation_that_lost_it() {
    let (history, trace) = planted();
    let v = Violation {
        check: "lost-write".to_string(),
        at_ms: 130,
        detail: "write p1-5 to orders-0 was acknowledged at offset 5, but the final log holds \
                 p1-9 at offset 5"
            .to_string(),
        partition: Some("orders-0".to_string()),
    };
    let story = chain(&v, &history, &trace);
    assert_eq!(
        story.subject,
        Subject {
            partition: Some("orders-0".to_string()),
            offset: Some(5),
            value: Some("p1-5".to_string()),
            key: Some("k5".to_string()),
            process: Some("p1".to_string()),
        }
    );
    let texts: Vec<&str> = story.steps.iter().map(|s| s.text.as_str()).collect();
    let cause = story.cause_step().expect("a cause");
    assert_eq!(cause.source, Source::Trace(9), "{texts:#?}");
    assert_eq!(cause.at_ms, 305);
    assert!(cause
        .text
        .starts_with("broker-3 truncated its log of orders-0 from 6 to 5"));
    assert!(
        cause.text.contains("its high watermark was 5"),
        "{}",
        cause.text
    );
    let expected = [
        "p1 sent p1-5 (key k5)",
        "broker-1, leader of orders-0 in epoch 0, appended p1-5 at offset 5",
        "broker-2 fetched it",
        "broker-3 fetched it",
        "broker-1's high watermark passed offset 5 (now 6): the record is committed",
        "p1 saw p1-5 acknowledged at offset 5 of orders-0",
        "broker-1 stops cleanly",
        "the controller made broker-2 leader of orders-0 in epoch 1 (ISR [2,3]): broker-2 holds the record",
        "broker-2 was killed",
        "broker-3 truncated",
        "the controller made broker-3 leader of orders-0 in epoch 2 (ISR [3]): broker-3 does NOT hold the record",
        "broker-3, leader in epoch 2, wrote another record (p1-9) at offset 5",
        "At the end of the run, the final log holds p1-9 at offset 5",
    ];
    assert_eq!(texts.len(), expected.len(), "{texts:#?}");
    for (text, start) in texts.iter().zip(expected) {
        assert!(
            text.starts_with(start),
            "{text:?} does not start with {start:?}"
        );
    }
    let times: Vec<u64> = story.steps.iter().map(|s| s.at_ms).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn a_duplicate_names_both_appends() {
    let history = vec![
        op(
            "p1",
            OpType::Invoke,
            100,
            json!({"value": "p1-7", "partition": null}),
        ),
        op(
            "p1",
            OpType::Ok,
            400,
            json!({"value": "p1-7", "partition": "orders-0", "offset": 9}),
        ),
    ];
    let trace = vec![
        ev(
            110,
            "broker-1",
            "append",
            json!({"partition": "orders-0", "broker": 1, "first": 3, "last": 4, "leo": 5, "hw": 3}),
        ),
        ev(150, "world", "loss", json!({"rate": 0.5})),
        ev(
            390,
            "broker-1",
            "append",
            json!({"partition": "orders-0", "broker": 1, "first": 8, "last": 9, "leo": 10, "hw": 8}),
        ),
    ];
    let v = Violation {
        check: "duplicate".to_string(),
        at_ms: 400,
        detail: "p1-7, sent once, is in the final committed log 2 times: at orders-0@4, orders-0@9"
            .to_string(),
        partition: Some("orders-0".to_string()),
    };
    let story = chain(&v, &history, &trace);
    let cause = story.cause_step().expect("a cause");
    assert_eq!(cause.source, Source::Trace(2));
    assert!(
        cause.text.contains("appended p1-7 at offset 9"),
        "{}",
        cause.text
    );
    assert!(cause.text.contains("idempotence off"), "{}", cause.text);
    assert!(story.steps.iter().any(|s| s.source == Source::Trace(0)));
    assert_eq!(story.subject.value.as_deref(), Some("p1-7"));
}

#[test]
fn odd_input_falls_back_without_panicking() {
    let (history, trace) = planted();
    for (check, detail) in [
        ("lost-write", "write without the usual words"),
        ("divergence", ""),
        (
            "duplicate",
            "x, is in the final committed log 2 times: at @, @x",
        ),
        ("hw-regression", "broker-1 served"),
        ("offset-regression", "group g went back"),
        ("group-skip", "group"),
        ("unavailable", "(x"),
        ("aborted-read", "c read at"),
        ("no-such-check", "whatever"),
    ] {
        let v = Violation {
            check: check.to_string(),
            at_ms: 10_000,
            detail: detail.to_string(),
            partition: Some("orders-0".to_string()),
        };
        let story = chain(&v, &history, &trace);
        assert_eq!(story.check, check);
        assert!(!story.steps.is_empty());
        let empty = chain(&v, &[], &[]);
        assert_eq!(empty.steps.len(), 1, "{empty:?}");
    }
}
