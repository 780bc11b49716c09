//! Consumer groups end to end: the shipped group scenarios on `SAMSA_SEEDS` seeds each (3 by
//! default, the slice CI runs; 200 for the issue's sweep), and a group chaos sweep on
//! `SAMSA_GROUP_CHAOS_SEEDS` seeds (6 by default; 500 for the issue's sweep):
//!
//! ```text
//! SAMSA_SEEDS=200 SAMSA_GROUP_CHAOS_SEEDS=500 cargo test --release --test groups -- --nocapture
//! ```

mod common;

use common::{events, scenario, seeds};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use samsa::output::judge;
use samsa::runner::{self, RunOutput};
use samsa::scenario::{parse_str, Scenario};
use samsa_sim::check::group_skip;
use samsa_sim::history::OpType;

fn reproduce(name: &str, seed: u64) -> String {
    format!("reproduce: cargo run --release -- run scenarios/{name}.toml --seed {seed}")
}

/// The records of `topic` below the final high watermark that no member of `group` processed,
/// by partition (empty: the group processed everything committed).
fn unprocessed_below_hw(output: &RunOutput, group: &str, topic: &str) -> Vec<(String, usize)> {
    let prefix = format!("{topic}-");
    let below = output
        .final_state
        .partitions
        .iter()
        .filter(|(name, _)| name.starts_with(&prefix))
        .map(|(name, p)| (name.as_str(), p.high_watermark));
    group_skip::unprocessed(&output.journal.history, &output.final_state, group, below)
        .into_iter()
        .map(|(partition, offsets)| (partition, offsets.len()))
        .collect()
}

/// The commits the coordinator refused a member, with Kafka's error names.
fn refused_commits<'a>(output: &'a RunOutput, process: &str) -> Vec<&'a str> {
    output
        .journal
        .history
        .iter()
        .filter(|op| op.process == process && op.f == "commit" && op.kind == OpType::Fail)
        .filter_map(|op| op.value["error"].as_str())
        .collect()
}

#[test]
fn the_shipped_group_scenarios_give_their_expected_outcome_on_every_seed() {
    let n = seeds("SAMSA_SEEDS", 3);
    for name in [
        "consumer-rebalance",
        "coordinator-failover",
        "auto-commit-skip",
        "zombie-commit",
        "zombie-commit-unfenced",
    ] {
        let s = scenario(name);
        for seed in 1..=n {
            let output = runner::run(&s, seed);
            let problems = judge(&output.violations, &s.expect.violations, &s.expect.allow);
            assert!(
                problems.is_empty(),
                "{name} seed {seed}: {problems:?}\n{}",
                reproduce(name, seed)
            );
            let at = || format!("{name} seed {seed}\n{}", reproduce(name, seed));
            match name {
                // At least once: everything committed to orders was processed by the group.
                "consumer-rebalance" | "coordinator-failover" => {
                    let missing = unprocessed_below_hw(&output, "g1", "orders");
                    assert!(missing.is_empty(), "{}: unprocessed {missing:?}", at());
                }
                "zombie-commit" => {
                    let refused = refused_commits(&output, "c-1");
                    assert!(
                        refused
                            .iter()
                            .any(|e| matches!(*e, "UnknownMemberId" | "IllegalGeneration")),
                        "{}: the zombie's commit was not refused by the coordinator: {refused:?}",
                        at()
                    );
                }
                _ => {}
            }
            if name == "coordinator-failover" {
                // The group's state was loaded from the log by a later coordinator.
                let reloaded = events(&output, "group-coordinator-loaded").any(|e| {
                    e.detail["epoch"].as_i64() > Some(0) && e.detail["groups"].as_i64() > Some(0)
                });
                assert!(reloaded, "{}: no coordinator reloaded the group", at());
            }
        }
    }
}

/// A member crashing, a member stalling past its session, the coordinator failing over and
/// brokers crashing, at random, under a process-then-commit group.
fn group_chaos(seed: u64) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut text = String::from(
        r#"
name = "group-chaos"
duration = "75s"
[cluster]
brokers = 3
controllers = 1
[cluster.config]
"min.insync.replicas" = 2
"offsets.topic.num.partitions" = 5
"group.initial.rebalance.delay.ms" = 1000
# Every message fsynced: a machine crash then loses no acknowledged write, so what this sweep
# judges is the group, not Kafka's page-cache durability.
"log.flush.interval.messages" = 1
[[topic]]
name = "orders"
partitions = 4
replication-factor = 3
[[client]]
type = "producer"
id = "p1"
topic = "orders"
rate = "150/s"
count = 6000
config = { "acks" = "all" }
[[client]]
type = "consumer"
id = "c"
group = "g1"
members = 3
topics = ["orders"]
commit = "after-processing"
processing = "20ms"
config = { "enable.auto.commit" = false, "auto.offset.reset" = "earliest", "session.timeout.ms" = 6000, "heartbeat.interval.ms" = 1000, "max.poll.records" = 100 }
"#,
    );
    let mut at_ms = 4_000;
    for _ in 0..6 {
        at_ms += rng.gen_range(1_000..7_000);
        let member = format!("c-{}", rng.gen_range(1..=3));
        let broker = format!("broker-{}", rng.gen_range(1..=3));
        let for_ms = rng.gen_range(500..9_000);
        let fault = match rng.gen_range(0..6) {
            0 => format!("action = \"crash\"\ntarget = \"{member}\"\nfor = \"{for_ms}ms\""),
            1 => format!("action = \"kill\"\ntarget = \"{member}\"\nfor = \"{for_ms}ms\""),
            // A stall: past the session timeout when long enough.
            2 => format!("action = \"pause\"\ntarget = \"{member}\"\nfor = \"{for_ms}ms\""),
            3 => format!("action = \"crash\"\ntarget = \"coordinator(g1)\"\nfor = \"{for_ms}ms\""),
            4 => format!("action = \"crash\"\ntarget = \"{broker}\"\nfor = \"{for_ms}ms\""),
            _ => format!("action = \"kill\"\ntarget = \"{broker}\"\nfor = \"{for_ms}ms\""),
        };
        text.push_str(&format!("[[fault]]\nat = \"{at_ms}ms\"\n{fault}\n"));
    }
    parse_str("group-chaos.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn random_member_coordinator_and_broker_failures_never_break_a_process_then_commit_group() {
    let n = seeds("SAMSA_GROUP_CHAOS_SEEDS", 6);
    let mut rebalances = 0;
    for seed in 1..=n {
        let s = group_chaos(seed);
        let output = runner::run(&s, seed);
        assert!(
            output.violations.is_empty(),
            "group chaos seed {seed}: {:?}\n(rebuild the scenario with group_chaos({seed}))",
            output.violations
        );
        let missing = unprocessed_below_hw(&output, "g1", "orders");
        assert!(
            missing.is_empty(),
            "group chaos seed {seed}: records below the final HW never processed: {missing:?}"
        );
        rebalances += output
            .journal
            .history
            .iter()
            .filter(|op| op.f == "assign" && op.kind == OpType::Ok)
            .count();
    }
    // The faults did move partitions: more than the first generation's three assignments.
    assert!(
        rebalances as u64 > 3 * n,
        "{rebalances} assignments over {n} runs"
    );
}

/// KIP-320: the group's consumer read records that an unclean election then truncated away;
/// when the new leader's epoch shows up it validates its position with OffsetForLeaderEpoch,
/// finds the log truncated below it, and moves back to where the old epoch ended on the new
/// leader, so it reads what the new leader wrote there instead of skipping it. (Without the
/// validation it fetches at its old position, out of range on the new leader, until the new
/// leader's log grows past it: the records written meanwhile below it are never read.)
#[test]
fn a_consumer_detects_truncation_below_its_position_and_reads_what_replaced_it() {
    let text = std::fs::read_to_string(format!(
        "{}/scenarios/catalogue/unclean-election.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("unclean-election.toml");
    let consumer = r#"
[[client]]
type = "consumer"
id = "c"
group = "g1"
members = 1
topics = ["orders"]
commit = "after-processing"
config = { "enable.auto.commit" = false, "auto.offset.reset" = "earliest", "session.timeout.ms" = 10000, "heartbeat.interval.ms" = 1000 }

[cluster.config]"#;
    let text = text
        .replacen("[cluster.config]", consumer, 1)
        .replace("\"min.insync.replicas\" = 1", "\"min.insync.replicas\" = 1\n\"offsets.topic.replication.factor\" = 3\n\"offsets.topic.num.partitions\" = 3");
    // The consumer's reads of records the election then lost are inconsistent reads, and the
    // group's committed offset goes back with its position: both are the truncation seen.
    let text = text.replace(
        "allow = [\"hw-regression\", \"divergence\"]",
        "allow = [\"hw-regression\", \"divergence\", \"inconsistent-read\", \"offset-regression\"]",
    );
    let s = parse_str("unclean-election-group.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let mut detected = 0;
    for seed in 1..=seeds("SAMSA_SEEDS", 3) {
        let output = runner::run(&s, seed);
        let problems = judge(&output.violations, &s.expect.violations, &s.expect.allow);
        assert!(problems.is_empty(), "seed {seed}: {problems:?}");
        // Every committed record of the final log up to the member's last read (the producer
        // writes to the end) was read by it, with its final value.
        let read: std::collections::BTreeSet<(i64, String)> = output
            .journal
            .history
            .iter()
            .filter(|op| op.process == "c-1" && op.f == "poll" && op.kind == OpType::Ok)
            .flat_map(|op| op.value["records"].as_array().unwrap_or(&[]).iter())
            .filter_map(|r| Some((r["offset"].as_i64()?, r["value"].as_str()?.to_string())))
            .collect();
        let last = read.iter().map(|(offset, _)| *offset).max().unwrap_or(-1);
        let unread: Vec<i64> = output.final_state.partitions["orders-0"]
            .committed
            .iter()
            .filter(|r| r.offset <= last)
            .filter(|r| {
                let value = r.value.clone().unwrap_or_default();
                !read.contains(&(r.offset, value))
            })
            .map(|r| r.offset)
            .collect();
        assert!(
            unread.is_empty(),
            "seed {seed}: never read {} records: {:?}…",
            unread.len(),
            &unread[..unread.len().min(5)]
        );
        detected += output
            .journal
            .history
            .iter()
            .filter(|op| op.process == "c-1" && op.f == "reset" && op.kind == OpType::Ok)
            .filter(|op| {
                op.value["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("truncation"))
            })
            .count();
    }
    assert!(detected > 0, "no truncation was detected on any seed");
}

/// `commitAsync`: the member polls again without waiting for its commit, so commits overlap; the
/// group still processes everything at least once through a coordinator failover.
#[test]
fn async_commits_overlap_and_the_group_still_processes_everything() {
    let text = std::fs::read_to_string(format!(
        "{}/scenarios/coordinator-failover.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("coordinator-failover.toml")
    .replace(
        "commit = \"after-processing\"",
        "commit = \"after-processing-async\"",
    );
    let s = parse_str("async-commits.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let output = runner::run(&s, 1);
    assert!(output.violations.is_empty(), "{:?}", output.violations);
    let missing = unprocessed_below_hw(&output, "g1", "orders");
    assert!(missing.is_empty(), "unprocessed {missing:?}");
    // Some member sent a commit while its previous one was unanswered.
    let mut overlapped = 0;
    for member in ["c-1", "c-2", "c-3"] {
        let mut in_flight = 0;
        for op in output
            .journal
            .history
            .iter()
            .filter(|op| op.process == member && op.f == "commit")
        {
            if op.kind == OpType::Invoke {
                in_flight += 1;
                if in_flight > 1 {
                    overlapped += 1;
                }
            } else {
                in_flight -= 1;
            }
        }
    }
    assert!(
        overlapped > 0,
        "no commit was sent while another was in flight"
    );
}
