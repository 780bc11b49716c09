//! Exactly-once, end to end: the idempotent producer, transactions, `read_committed` and the
//! consume-transform-produce pipeline, under faults; and the planted bugs the exactly-once
//! checks must catch.
//!
//! `SAMSA_SEEDS` seeds of each shipped scenario (3 by default; the acceptance sweep runs 200).

use samsa::broker::PlantedBug;
use samsa::output::judge;
use samsa::runner::{self, RunOutput};
use samsa::scenario::Scenario;
use samsa_sim::history::{Op, OpType};

mod common;
use common::{scenario, seeds};

fn checks(output: &RunOutput) -> Vec<&str> {
    let mut names: Vec<&str> = output.violations.iter().map(|v| v.check.as_str()).collect();
    names.sort();
    names.dedup();
    names
}

fn ops<'a>(output: &'a RunOutput, process: &'a str, f: &'a str) -> impl Iterator<Item = &'a Op> {
    output
        .journal
        .history
        .iter()
        .filter(move |op| op.process == process && op.f == f)
}

/// Runs `name` on `seeds` seeds, asserting its expectation and `more` of each run.
fn sweep(name: &str, default_seeds: u64, more: impl Fn(u64, &RunOutput)) {
    let s = scenario(name);
    for seed in 1..=seeds("SAMSA_SEEDS", default_seeds) {
        let output = runner::run(&s, seed);
        let problems = judge(&output.violations, &s.expect.violations, &s.expect.allow);
        assert!(
            problems.is_empty(),
            "{name} seed {seed}: {problems:?}\n{:?}",
            output.violations.iter().take(5).collect::<Vec<_>>()
        );
        more(seed, &output);
    }
}

#[test]
fn idempotent_retries_are_deduplicated_and_non_idempotent_ones_are_not() {
    sweep("idempotent-retries", 3, |seed, output| {
        let duplicates: Vec<&str> = output
            .violations
            .iter()
            .filter(|v| v.check == "duplicate")
            .map(|v| v.detail.as_str())
            .collect();
        assert!(
            duplicates.iter().all(|d| !d.starts_with("p1-")),
            "seed {seed}: the idempotent producer duplicated: {duplicates:?}"
        );
        assert!(
            duplicates.iter().any(|d| d.starts_with("p2-")),
            "seed {seed}: no retry of p2 was duplicated: the scenario forced no retries"
        );
        assert!(
            !checks(output).contains(&"reorder"),
            "seed {seed}: {:?}",
            output.violations
        );
    });
}

/// The values of every transaction of `process` that ended `kind`.
fn txn_values(output: &RunOutput, process: &str, kind: OpType) -> Vec<String> {
    ops(output, process, "txn")
        .filter(|op| op.kind == kind)
        .flat_map(|op| {
            op.value
                .get("values")
                .and_then(|v| v.as_array())
                .unwrap_or(&[])
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn polled_values(output: &RunOutput, process: &str) -> Vec<String> {
    ops(output, process, "poll")
        .filter(|op| op.kind == OpType::Ok)
        .flat_map(|op| {
            op.value
                .get("records")
                .and_then(|v| v.as_array())
                .unwrap_or(&[])
                .iter()
                .filter_map(|r| r.get("value")?.as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn aborted_transactions_are_visible_only_to_read_uncommitted() {
    sweep("txn-abort-visibility", 3, |seed, output| {
        let aborted = txn_values(output, "t1", OpType::Fail);
        let committed = txn_values(output, "t1", OpType::Ok);
        assert!(
            aborted.len() > 50 && committed.len() > 200,
            "seed {seed}: {} aborted, {} committed",
            aborted.len(),
            committed.len()
        );
        let uncommitted = polled_values(output, "uncommitted");
        assert!(
            aborted.iter().any(|v| uncommitted.contains(v)),
            "seed {seed}: read_uncommitted saw no aborted record"
        );
        let read = polled_values(output, "committed");
        assert!(
            committed.iter().filter(|v| read.contains(v)).count() > 200,
            "seed {seed}: read_committed read too little"
        );
    });
}

#[test]
fn a_fenced_zombie_gets_nothing_more_committed() {
    sweep("zombie-fencing", 3, |seed, output| {
        let last = ops(output, "old", "txn")
            .filter(|op| op.kind != OpType::Invoke)
            .last()
            .expect("the old instance ended a transaction");
        assert!(
            last.at_ms >= 35_000 && last.kind != OpType::Ok,
            "seed {seed}: the zombie's last transaction: {last:?}"
        );
        assert!(
            !txn_values(output, "new", OpType::Ok).is_empty(),
            "seed {seed}: the new instance committed nothing"
        );
    });
}

fn with_transaction_version(mut s: Scenario, version: u8) -> Scenario {
    s.protocol.transaction_version = version;
    s
}

#[test]
fn planted_bug_a_leader_forgetting_producer_state_duplicates_retries() {
    let s = samsa::scenario::parse_str(
        "forgetful-leader.toml",
        r#"
name = "forgetful-leader"
duration = "40s"
[cluster]
brokers = 3
controllers = 3
[cluster.config]
"min.insync.replicas" = 2
[[topic]]
name = "orders"
partitions = 1
replication-factor = 3
[[client]]
type = "producer"
id = "p1"
topic = "orders"
rate = "200/s"
config = { "acks" = "all", "request.timeout.ms" = 1000 }
# The leader's answers stall: the producer gives up and retries, and the leader dies, so the
# retries go to a new leader.
[[fault]]
at = "10s"
action = "clog-link"
from = "leader(orders-0)"
to = "p1"
for = "3s"
[[fault]]
at = "11500ms"
action = "kill"
target = "leader(orders-0)"
for = "5s"
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let clean = runner::run(&s, 1);
    assert!(
        !checks(&clean).contains(&"duplicate"),
        "{:?}",
        clean.violations
    );
    let planted = runner::run_planted(&s, 1, Some(PlantedBug::ForgetProducerStateOnFailover));
    assert!(
        checks(&planted).contains(&"duplicate"),
        "{:?}",
        planted.violations
    );
}

#[test]
fn planted_bug_a_coordinator_that_does_not_fence_lets_the_zombie_write() {
    let mut s = with_transaction_version(scenario("zombie-fencing"), 1);
    for client in &mut s.clients {
        client.config.insert(
            "transaction.timeout.ms".into(),
            samsa::scenario::ConfigValue::Int(60_000),
        );
    }
    let clean = runner::run(&s, 1);
    assert!(
        !checks(&clean).contains(&"zombie-write"),
        "{:?}",
        clean.violations
    );
    let planted = runner::run_planted(&s, 1, Some(PlantedBug::NoEpochFence));
    assert!(
        checks(&planted).contains(&"zombie-write"),
        "{:?}",
        planted.violations
    );
}

#[test]
fn planted_bug_a_fetch_past_the_last_stable_offset_is_an_uncommitted_read() {
    let s = scenario("txn-abort-visibility");
    let planted = runner::run_planted(&s, 1, Some(PlantedBug::FetchPastLastStableOffset));
    let found = checks(&planted);
    assert!(
        found.contains(&"uncommitted-read") && found.contains(&"aborted-read"),
        "{:?}",
        planted.violations
    );
}

#[test]
fn the_pipeline_copies_every_input_exactly_once_through_crashes() {
    sweep("eos-pipeline-chaos", 2, |seed, output| {
        let committed: usize = (1..=2)
            .map(|m| txn_values(output, &format!("pipe-{m}"), OpType::Ok).len())
            .sum();
        assert!(
            committed >= 6000,
            "seed {seed}: only {committed} outputs committed"
        );
        let read = polled_values(output, "reader");
        let distinct: std::collections::BTreeSet<&String> = read.iter().collect();
        assert_eq!(
            distinct.len(),
            6000,
            "seed {seed}: the read_committed reader saw {} distinct outputs",
            distinct.len()
        );
    });
}

/// When the `late` producer's transaction failed (its held Produce timed out), and the appends
/// of its batches the partition leaders made after that.
fn appended_after_the_abort(output: &RunOutput) -> usize {
    let aborted_at = ops(output, "late", "txn")
        .find(|op| op.kind == OpType::Fail)
        .map(|op| op.at_ms)
        .expect("the late producer's held transaction failed");
    output
        .journal
        .trace
        .iter()
        .filter(|e| e.kind == "append" && e.at_ms > aborted_at)
        .filter(|e| e.detail.get("client").and_then(|c| c.as_str()) == Some("late"))
        .count()
}

#[test]
fn a_produce_held_past_its_abort_hangs_under_version_1_and_is_refused_under_version_2() {
    sweep("hanging-transaction", 3, |seed, output| {
        assert!(
            appended_after_the_abort(output) > 0,
            "seed {seed}: the held Produce was not appended after the abort"
        );
        let starved = output.violations.iter().find(|v| v.check == "unavailable");
        assert!(
            starved.is_some_and(|v| v.detail.starts_with("reader (read_committed)")),
            "seed {seed}: {starved:?}"
        );
    });
    sweep("hanging-transaction-fixed", 3, |seed, output| {
        assert_eq!(
            appended_after_the_abort(output),
            0,
            "seed {seed}: a Produce of a fenced epoch was appended"
        );
    });
}

/// The delay fault is what makes the transaction hang: without it, version 1 passes too.
#[test]
fn without_the_held_produce_version_1_does_not_hang() {
    let mut s = scenario("hanging-transaction");
    s.faults.clear();
    s.expect.violations.clear();
    let output = runner::run(&s, 1);
    assert!(output.violations.is_empty(), "{:?}", output.violations);
}
