//! The KRaft quorum driving a whole cluster: brokers register and heartbeat; the active
//! controller fences the silent ones, takes them out of every ISR and moves their leaderships,
//! and their leaders add them back (AlterPartition) once they are unfenced and caught up; a
//! partition whose last ISR member is fenced goes offline, that member kept as an eligible
//! leader replica (KIP-966), unless an unclean election revives it; topics are created, grown
//! and deleted, partitions reassigned and leaders elected through the admin API; and the
//! quorum's metadata survives its controllers dying.
//!
//! The shipped scenarios run on `SAMSA_SEEDS` seeds each (4 by default, the slice CI runs; the
//! issue's figure is 200), and a chaos scenario of random crashes, kills, pauses and partitions
//! of controllers and brokers on `SAMSA_CHAOS_SEEDS` seeds (12 by default; 500 for the issue's
//! sweep), each checked for `split-brain`, `metadata-lost` and `panic`:
//!
//! ```sh
//! SAMSA_SEEDS=200 SAMSA_CHAOS_SEEDS=500 cargo test --release --test kraft_cluster
//! ```
#![cfg(madsim)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use samsa::output::judge;
use samsa::runner::{self, RunOutput};
use samsa::scenario::{parse_str, Scenario};
use samsa_sim::history::{OpType, TraceEvent};
use samsa_sim::val::Val;

mod common;
use common::{events, scenario, seeds};

/// The committed states of one partition, in commit order.
fn partition_states<'a>(output: &'a RunOutput, name: &'a str) -> Vec<&'a TraceEvent> {
    events(output, "partition-state")
        .filter(|e| e.detail["partition"] == name)
        .collect()
}

fn ints(value: &Val) -> Vec<i64> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Val::as_i64).collect())
        .unwrap_or_default()
}

/// Whether `broker` is in the ISR of a `partition-state`.
fn in_isr(state: &TraceEvent, broker: i64) -> bool {
    ints(&state.detail["isr"]).contains(&broker)
}

/// Runs a scenario written inline in a test.
fn run_text(file: &str, text: &str, seed: u64) -> RunOutput {
    let s = parse_str(file, text).unwrap_or_else(|e| panic!("{e}"));
    runner::run(&s, seed)
}

/// How the cluster answered the admin client's steps, in order: (step, ok or fail, Kafka's
/// error name).
fn admin_answers(output: &RunOutput) -> Vec<(&str, OpType, Option<&str>)> {
    output
        .journal
        .history
        .iter()
        .filter(|op| op.process == "cluster-admin" && op.kind != OpType::Invoke)
        .map(|op| (op.f.as_str(), op.kind, op.value["error"].as_str()))
        .collect()
}

fn reproduce(name: &str, seed: u64) -> String {
    format!("reproduce: cargo run --release -- run scenarios/{name}.toml --seed {seed}")
}

#[test]
fn the_shipped_kraft_scenarios_pass_on_every_seed() {
    let n = seeds("SAMSA_SEEDS", 4);
    for name in [
        "quorum-partition",
        "controller-failover",
        "broker-fencing",
        "topic-admin",
        "reassignment",
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
            if name == "reassignment" {
                let incomplete = reassignments_incomplete(&output);
                assert!(
                    incomplete.is_empty(),
                    "{name} seed {seed}: {incomplete:?}\n{}",
                    reproduce(name, seed)
                );
            }
        }
    }
}

/// What `reassignment.toml` leaves undone: each partition of `orders` must end on its target
/// replicas with nothing adding or removing, led by one of them with every target in the ISR,
/// and broker-1 (moved off every partition) must have deleted its replicas. Empty when all is
/// done, as `kafka-reassign-partitions.sh --verify` would say.
fn reassignments_incomplete(output: &RunOutput) -> Vec<String> {
    let targets = [
        ("orders-0", [4, 2, 3]),
        ("orders-1", [2, 3, 4]),
        ("orders-2", [3, 4, 2]),
    ];
    let mut incomplete = Vec::new();
    for (partition, target) in targets {
        let Some(last) = partition_states(output, partition).pop() else {
            incomplete.push(format!("{partition}: no partition state"));
            continue;
        };
        let d = &last.detail;
        let mut isr = ints(&d["isr"]);
        isr.sort();
        let mut sorted = target.to_vec();
        sorted.sort();
        let done = ints(&d["replicas"]) == target
            && ints(&d["adding"]).is_empty()
            && ints(&d["removing"]).is_empty()
            && target.contains(&d["leader"].as_i64().unwrap_or(-1))
            && isr == sorted;
        if !done {
            incomplete.push(format!("{partition}: {d}"));
        }
        let removed = events(output, "partition-removed")
            .any(|e| e.node == "broker-1" && e.detail["partition"] == partition);
        if !removed {
            incomplete.push(format!("{partition}: broker-1 kept its replica"));
        }
    }
    incomplete
}

#[test]
fn a_broker_that_stops_heartbeating_is_fenced_and_its_leadership_moves() {
    let s = scenario("broker-fencing");
    for seed in 1..=2 {
        let output = runner::run(&s, seed);
        let cut_ms = 10_000;
        let fenced: Vec<_> = events(&output, "broker-fenced")
            .filter(|e| e.detail["broker"] == 2)
            .collect();
        assert_eq!(fenced.len(), 1, "seed {seed}: {fenced:?}");
        // Its last heartbeat came at most one interval (2 s) before the cut; the session
        // (9 s) runs from there.
        let fenced_ms = fenced[0].at_ms;
        assert!(
            (cut_ms + 9_000 - 2_100..=cut_ms + 9_000 + 100).contains(&fenced_ms),
            "seed {seed}: fenced at {fenced_ms}"
        );
        // events-0 was led by broker 2: the next replica in the ISR, in assignment order,
        // leads it now, one leader epoch later.
        let states = partition_states(&output, "events-0");
        let moved = states
            .iter()
            .find(|e| e.detail["leader"] != 2)
            .expect("events-0 changed leader");
        assert_eq!(moved.detail["leader"], 1, "seed {seed}");
        assert_eq!(moved.detail["leader_epoch"], 1, "seed {seed}");
        assert_eq!(moved.detail["unclean"], false, "seed {seed}");
        assert!(moved.at_ms >= fenced_ms - 10 && moved.at_ms <= fenced_ms + 10);
        // Healed at 30 s, it replays what it missed and is unfenced.
        let unfenced: Vec<_> = events(&output, "broker-unfenced")
            .filter(|e| e.detail["broker"] == 2 && e.at_ms > 30_000)
            .collect();
        assert_eq!(unfenced.len(), 1, "seed {seed}");
        let unfenced_ms = unfenced[0].at_ms;
        // The controller took broker 2 out of every ISR as it fenced it, and no leader took it
        // back while it stayed fenced (KIP-841), though it could still fetch from them. Once
        // unfenced and caught up, every leader added it again (AlterPartition).
        for name in ["orders-0", "orders-1", "events-0"] {
            let states = partition_states(&output, name);
            let while_fenced: Vec<_> = states
                .iter()
                .filter(|e| (fenced_ms - 10..unfenced_ms).contains(&e.at_ms))
                .collect();
            assert!(
                !while_fenced.is_empty() && while_fenced.iter().all(|e| !in_isr(e, 2)),
                "seed {seed}: {name} {while_fenced:?}"
            );
            let rejoined = states
                .iter()
                .find(|e| e.at_ms >= fenced_ms - 10 && in_isr(e, 2))
                .unwrap_or_else(|| panic!("seed {seed}: broker 2 never rejoined {name}"));
            assert!(
                rejoined.at_ms < unfenced_ms + 2_000,
                "seed {seed}: {name} rejoined at {}, unfenced at {unfenced_ms}",
                rejoined.at_ms
            );
            let last = states.last().unwrap();
            assert!(in_isr(last, 2), "seed {seed}: {name} {:?}", last.detail);
        }
        // Back in the ISR of events-0, broker 2, its preferred replica, leads it again: the
        // auto leader rebalance (every 5 s here) moves the leadership back, cleanly.
        let back = states.last().unwrap();
        let events_rejoined_ms = states
            .iter()
            .find(|e| e.at_ms > fenced_ms && in_isr(e, 2))
            .expect("broker 2 rejoined events-0")
            .at_ms;
        assert_eq!(back.detail["leader"], 2, "seed {seed}: {:?}", back.detail);
        assert_eq!(back.detail["leader_epoch"], 2, "seed {seed}");
        assert_eq!(back.detail["unclean"], false, "seed {seed}");
        assert!(
            back.at_ms > events_rejoined_ms && back.at_ms <= events_rejoined_ms + 5_100,
            "seed {seed}: led by broker 2 again at {}, back in its ISR at {events_rejoined_ms}",
            back.at_ms
        );
        assert_eq!(output.violations, vec![], "seed {seed}");
    }
}

#[test]
fn without_heartbeats_a_lone_replica_goes_offline_and_unclean_election_revives_it() {
    // Broker 2 is kept from fetching while it is out of the ISR, so that when the leader is cut
    // off it is the last ISR member: broker 2 cannot have caught up and rejoined in between.
    let base = r#"
name = "offline"
duration = "40s"
[cluster]
brokers = 2
controllers = 1
[cluster.config]
"unclean.leader.election.enable" = UNCLEAN
[[topic]]
name = "t"
partitions = 1
replication-factor = 2
assignment = [[1, 2]]
[[fault]]                 # broker 2 is cut off from everyone: fenced, it leaves the ISR
at = "5s"
action = "partition"
groups = [["broker-2"], ["broker-1", "controller-1"]]
[[fault]]                 # then, at once, broker 2 is back and the leader, the last ISR member, is cut off
at = "22s"
action = "heal"
[[fault]]
at = "22s"
action = "partition"
groups = [["broker-1"], ["broker-2", "controller-1"]]
[protocol]
eligible-leader-replicas = ELIGIBLE
"#;
    for (elr, unclean) in [(false, false), (true, false), (true, true)] {
        let text = base
            .replace("UNCLEAN", &unclean.to_string())
            .replace("ELIGIBLE", &elr.to_string());
        let output = run_text("offline.toml", &text, 3);
        let states = partition_states(&output, "t-0");
        // Broker 2 left the ISR when it was fenced, and had not come back when the leader went.
        assert!(
            states
                .iter()
                .rfind(|e| e.at_ms < 22_000)
                .is_some_and(|e| ints(&e.detail["isr"]) == vec![1]),
            "{states:?}"
        );
        let last = states.last().copied().unwrap();
        assert!(last.at_ms > 22_000, "{:?}", last.detail);
        if unclean {
            // Broker 2, outside the ISR and the ELR, is elected: the election is marked unclean,
            // the ISR is reset to it alone (KIP-704's RECOVERING) and the ELR cleared (KIP-966:
            // what was committed may be gone).
            assert_eq!(last.detail["leader"], 2, "{:?}", last.detail);
            assert_eq!(last.detail["unclean"], true);
            assert_eq!(ints(&last.detail["isr"]), vec![2]);
            assert_eq!(last.detail["recovering"], true);
            assert_eq!(ints(&last.detail["elr"]), Vec::<i64>::new());
        } else if elr {
            // No one in the ISR is alive: the partition is offline. KIP-966 empties the ISR and
            // keeps broker 1, below min ISR when it was fenced and so holding every committed
            // record, as an eligible leader replica, and as the last known leader.
            assert_eq!(last.detail["leader"], -1, "{:?}", last.detail);
            assert_eq!(ints(&last.detail["isr"]), Vec::<i64>::new());
            assert_eq!(ints(&last.detail["elr"]), vec![1]);
            assert_eq!(ints(&last.detail["last_known_elr"]), vec![1]);
        } else {
            // Before KIP-966 the ISR keeps its last member, leaderless, and there is no ELR.
            assert_eq!(last.detail["leader"], -1, "{:?}", last.detail);
            assert_eq!(ints(&last.detail["isr"]), vec![1]);
            assert_eq!(ints(&last.detail["elr"]), Vec::<i64>::new());
        }
    }
}

#[test]
fn topics_are_created_grown_deleted_and_auto_created_as_kafka_does() {
    let s = scenario("topic-admin");
    let output = runner::run(&s, 1);
    assert_eq!(
        admin_answers(&output),
        vec![
            ("create-topic", OpType::Ok, None),
            ("create-partitions", OpType::Ok, None),
            (
                "create-topic",
                OpType::Fail,
                Some("InvalidReplicationFactor")
            ),
            ("delete-topic", OpType::Ok, None),
            ("create-topic", OpType::Ok, None),
        ]
    );
    let created: Vec<(String, String)> = events(&output, "topic-created")
        .map(|e| {
            let detail = &e.detail;
            (
                detail["topic"].as_str().unwrap().to_string(),
                detail["topic_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // `clicks` was created by producing to it, with `num.partitions` (2) and
    // `default.replication.factor` (3).
    let clicks = |p: u32| partition_states(&output, if p == 0 { "clicks-0" } else { "clicks-1" });
    assert_eq!(ints(&clicks(0)[0].detail["replicas"]).len(), 3);
    assert_eq!(clicks(1).len(), 1);
    assert!(partition_states(&output, "clicks-2").is_empty());
    let clicks_acked = output
        .journal
        .history
        .iter()
        .filter(|op| op.process == "p2" && op.kind == OpType::Ok)
        .count();
    assert!(clicks_acked > 300, "{clicks_acked} writes to clicks");
    // `events` grew from 3 to 6 partitions, was deleted (every broker dropped its replicas),
    // and its name was reused by a new topic, with a new id.
    assert_eq!(partition_states(&output, "events-5").len(), 1);
    let events_ids: Vec<_> = created.iter().filter(|(t, _)| t == "events").collect();
    assert_eq!(events_ids.len(), 2);
    assert_ne!(events_ids[0].1, events_ids[1].1);
    let removed = events(&output, "partition-removed").count();
    assert_eq!(removed, 12, "6 partitions × 2 replicas");
    assert_eq!(output.violations, vec![]);
}

#[test]
fn the_active_controller_dies_and_the_brokers_follow_its_successor_unfenced() {
    let s = scenario("controller-failover");
    for seed in 1..=2 {
        let output = runner::run(&s, seed);
        // A successor leads within a few seconds of each death (fetch timeout 2 s, then an
        // election timeout of 1-2 s).
        for death_ms in [10_000, 25_000, 40_000] {
            let next = output
                .journal
                .trace
                .iter()
                .find(|e| {
                    e.kind == "raft-role" && e.detail["role"] == "leader" && e.at_ms > death_ms
                })
                .unwrap_or_else(|| panic!("seed {seed}: no leader after {death_ms}"));
            assert!(
                next.at_ms < death_ms + 6_000,
                "seed {seed}: leader at {}",
                next.at_ms
            );
        }
        // Sessions restart on failover: no broker is fenced for the controller's death.
        assert_eq!(events(&output, "broker-fenced").count(), 0, "seed {seed}");
        assert_eq!(output.violations, vec![], "seed {seed}");
    }
}

/// A scenario of random faults on controllers and brokers, drawn from `seed`.
fn chaos_scenario(seed: u64) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut text = String::from(
        r#"
name = "kraft-chaos"
duration = "60s"
[cluster]
brokers = 3
controllers = 3
[[topic]]
name = "orders"
partitions = 3
replication-factor = 3
[[client]]
type = "producer"
id = "p1"
topic = "orders"
rate = "50/s"
config = { "acks" = "1" }
"#,
    );
    let targets = [
        "controller-1",
        "controller-2",
        "controller-3",
        "controller-leader",
        "broker-1",
        "broker-2",
        "broker-3",
    ];
    let mut at_ms = 3_000;
    for _ in 0..8 {
        at_ms += rng.gen_range(500..6_000);
        let target = targets[rng.gen_range(0..targets.len())];
        let for_ms = rng.gen_range(500..8_000);
        let fault = match rng.gen_range(0..5) {
            0 => format!("action = \"crash\"\ntarget = \"{target}\"\nfor = \"{for_ms}ms\""),
            1 => format!("action = \"kill\"\ntarget = \"{target}\"\nfor = \"{for_ms}ms\""),
            2 => format!("action = \"pause\"\ntarget = \"{target}\"\nfor = \"{for_ms}ms\""),
            3 => format!("action = \"isolate\"\ntarget = \"{target}\"\nfor = \"{for_ms}ms\""),
            _ => {
                // One controller alone, against everyone else.
                let n = rng.gen_range(1..=3);
                let others: Vec<String> = (1..=3)
                    .filter(|&m| m != n)
                    .map(|m| format!("\"controller-{m}\""))
                    .collect();
                format!(
                    "action = \"partition\"\ngroups = [[\"controller-{n}\"], [{}, \"broker-*\"]]\nfor = \"{for_ms}ms\"",
                    others.join(", ")
                )
            }
        };
        text.push_str(&format!("[[fault]]\nat = \"{at_ms}ms\"\n{fault}\n"));
    }
    parse_str("kraft-chaos.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn random_crashes_pauses_and_partitions_never_split_the_brain_or_lose_metadata() {
    let n = seeds("SAMSA_CHAOS_SEEDS", 12);
    let mut leaders = 0;
    for seed in 1..=n {
        let s = chaos_scenario(seed);
        let output = runner::run(&s, seed);
        let safety: Vec<_> = output
            .violations
            .iter()
            .filter(|v| matches!(v.check.as_str(), "split-brain" | "metadata-lost" | "panic"))
            .collect();
        assert!(
            safety.is_empty(),
            "chaos seed {seed}: {safety:?}\n(rebuild the scenario with chaos_scenario({seed}))"
        );
        leaders += events(&output, "raft-role")
            .filter(|e| e.detail["role"] == "leader")
            .count();
    }
    // The faults did move the quorum: more than one election per run on average.
    assert!(leaders as u64 > n, "{leaders} elections over {n} runs");
}

#[test]
fn a_controlled_shutdown_moves_the_leaderships_before_the_broker_stops() {
    let text = r#"
name = "controlled-shutdown"
duration = "30s"
[cluster]
brokers = 3
controllers = 1
[[topic]]
name = "t"
partitions = 2
replication-factor = 3
assignment = [[1, 2, 3], [2, 1, 3]]
[[fault]]
at = "10s"
action = "controlled-shutdown"
target = "broker-1"
for = "8s"
"#;
    let output = run_text("controlled-shutdown.toml", text, 5);
    let stopped = events(&output, "shut-down")
        .find(|e| e.node == "broker-1")
        .expect("broker-1 shut down")
        .at_ms;
    // t-0 was led by broker 1: the controller gave it to broker 2, the next in the ISR,
    // before it let broker 1 go; and broker 1 left every ISR.
    let moved = partition_states(&output, "t-0")
        .into_iter()
        .find(|e| e.detail["leader"] != 1)
        .expect("t-0 changed leader");
    assert_eq!(moved.detail["leader"], 2);
    assert!(
        moved.at_ms >= 10_000 && moved.at_ms < stopped,
        "{} {stopped}",
        moved.at_ms
    );
    assert!(!in_isr(moved, 1));
    // A few heartbeats: the controller lets it go once the other brokers have replayed the
    // moves (Kafka's controlled shutdown waits for them), well within a session timeout.
    assert!(stopped < 16_000, "{stopped}");
    // Not a crash: the controller saw it go (fenced at once, no session timeout), and it came
    // back at 18 s, registered anew and was unfenced.
    let fenced = events(&output, "broker-fenced")
        .find(|e| e.detail["broker"] == 1)
        .expect("broker 1 fenced")
        .at_ms;
    assert!(
        fenced <= stopped + 100,
        "fenced at {fenced}, stopped at {stopped}"
    );
    assert!(events(&output, "broker-unfenced").any(|e| e.detail["broker"] == 1 && e.at_ms > 18_000));
    assert_eq!(output.violations, vec![]);
}

#[test]
fn a_topic_created_by_the_script_runs_with_its_own_configs() {
    let text = r#"
name = "script-topic-config"
duration = "12s"
[cluster]
brokers = 1
[[client]]
type = "producer"
id = "p1"
topic = "small"
rate = "100/s"
at = "3s"
[[fault]]
at = "2s"
action = "create-topic"
topic = "small"
partitions = 1
replication-factor = 1
config = { "segment.ms" = 1000 }
"#;
    let output = run_text("script-topic-config.toml", text, 1);
    let rolls = events(&output, "roll")
        .filter(|e| e.detail["partition"] == "small-0" && e.detail["reason"] == "segment.ms")
        .count();
    // Writes for about 9 s into segments that roll after 1 s (Kafka's default is 7 days).
    assert!((6..=10).contains(&rolls), "{rolls} rolls");
    assert_eq!(output.violations, vec![]);
}

#[test]
fn a_replica_of_a_deleted_topic_is_not_revived_by_a_new_topic_of_that_name() {
    let text = r#"
name = "stale-replica"
duration = "25s"
[cluster]
brokers = 2
[cluster.config]
"log.flush.interval.messages" = 1
[[topic]]
name = "t"
partitions = 1
replication-factor = 1
assignment = [[1]]
[[client]]
type = "producer"
id = "p1"
topic = "t"
rate = "50/s"
count = 100
[[fault]]                     # broker 1 is away while t is deleted and created again
at = "6s"
action = "kill"
target = "broker-1"
for = "10s"
[[fault]]
at = "8s"
action = "delete-topic"
topic = "t"
[[fault]]
at = "10s"
action = "create-topic"
topic = "t"
assignment = [[2, 1]]
"#;
    let output = run_text("stale-replica.toml", text, 2);
    // Back at 16 s, broker 1 finds the old topic's log under the new topic's name: it deletes
    // it (KIP-516's topic id in partition.metadata) and opens an empty replica.
    let removed = events(&output, "partition-removed")
        .find(|e| e.node == "broker-1" && e.at_ms > 16_000)
        .expect("the stale replica was deleted");
    assert_eq!(removed.detail["stray"], true);
    let reopened = events(&output, "recovered")
        .filter(|e| e.node == "broker-1" && e.at_ms > 16_000)
        .last()
        .expect("broker 1 opened t-0 again");
    assert_eq!(reopened.detail["leo"], 0, "{:?}", reopened.detail);
    assert!(removed.at_ms <= reopened.at_ms);
}

#[test]
fn an_operator_elects_leaders_through_the_admin_api() {
    let text = r#"
name = "elect-leaders"
duration = "45s"
[cluster]
brokers = 2
controllers = 1
[[topic]]
name = "t"
partitions = 1
replication-factor = 2
assignment = [[1, 2]]
[[fault]]                 # broker 2 is cut off from everyone: fenced, it leaves the ISR
at = "4s"
action = "partition"
groups = [["broker-2"], ["broker-1", "controller-1"]]
[[fault]]                 # then, at once, broker 2 is back and the leader, the last ISR member, is cut off
at = "18s"
action = "heal"
[[fault]]
at = "18s"
action = "partition"
groups = [["broker-1"], ["broker-2", "controller-1"]]
[[fault]]                 # no leader to prefer: Kafka says so
at = "30s"
action = "elect-leaders"
election = "preferred"
partition = "t-0"
[[fault]]                 # the operator accepts the risk: broker 2, outside the ISR, leads
at = "32s"
action = "elect-leaders"
election = "unclean"
partition = "t-0"
[[fault]]                 # broker 1 is back: it follows broker 2 and rejoins the ISR
at = "34s"
action = "heal"
[[fault]]                 # the preferred replica may lead again
at = "40s"
action = "elect-leaders"
election = "preferred"
partition = "t-0"
"#;
    let output = run_text("elect-leaders.toml", text, 4);
    assert_eq!(
        admin_answers(&output),
        vec![
            (
                "elect-leaders",
                OpType::Fail,
                Some("PreferredLeaderNotAvailable")
            ),
            ("elect-leaders", OpType::Ok, None),
            ("elect-leaders", OpType::Ok, None)
        ]
    );
    let states = partition_states(&output, "t-0");
    // Offline: broker 1 stays eligible (KIP-966's ELR) but is fenced, so no one leads.
    let offline = states
        .iter()
        .find(|e| e.detail["leader"] == -1)
        .expect("t-0 went offline");
    assert!(offline.at_ms > 18_000 && offline.at_ms < 30_000);
    assert_eq!(
        ints(&offline.detail["elr"]),
        vec![1],
        "{:?}",
        offline.detail
    );
    // The unclean election: broker 2 alone in the ISR, recovering, the ELR cleared.
    let unclean = states
        .iter()
        .find(|e| e.detail["leader"] == 2)
        .expect("broker 2 led t-0");
    assert!(unclean.at_ms >= 32_000 && unclean.at_ms < 34_000);
    assert_eq!(unclean.detail["unclean"], true, "{:?}", unclean.detail);
    assert_eq!(unclean.detail["recovering"], true);
    assert_eq!(ints(&unclean.detail["isr"]), vec![2]);
    assert_eq!(ints(&unclean.detail["elr"]), Vec::<i64>::new());
    // Healed, broker 1 catches up from broker 2 and its leader adds it to the ISR, the
    // recovery done; the preferred election at 40 s then makes it the leader again, cleanly.
    let rejoined = states
        .iter()
        .find(|e| e.at_ms > unclean.at_ms && in_isr(e, 1))
        .expect("broker 1 rejoined the ISR");
    assert!(rejoined.at_ms >= 34_000 && rejoined.at_ms < 40_000);
    assert_eq!(rejoined.detail["leader"], 2);
    assert_eq!(rejoined.detail["recovering"], false);
    let last = states.last().unwrap();
    assert!(last.at_ms >= 40_000, "{:?}", last.detail);
    assert_eq!(last.detail["leader"], 1);
    assert_eq!(last.detail["unclean"], false);
    assert_eq!(
        last.detail["leader_epoch"].as_i64(),
        unclean.detail["leader_epoch"]
            .as_i64()
            .map(|epoch| epoch + 1)
    );
}

#[test]
fn a_reassignment_that_removes_replicas_completes_and_one_that_adds_waits_for_the_isr() {
    let text = r#"
name = "reassign"
duration = "20s"
[cluster]
brokers = 3
controllers = 1
[[topic]]
name = "t"
partitions = 2
replication-factor = 2
assignment = [[1, 2], [2, 1]]
[[client]]
type = "producer"
id = "p1"
topic = "t"
rate = "50/s"
config = { "acks" = "all" }
[[fault]]                 # drop broker 1 from t-0, which it leads
at = "4s"
action = "reassign"
partition = "t-0"
replicas = [2]
[[fault]]                 # broker 3 cannot fetch from t-1's leader until 12 s
at = "5s"
action = "partition"
groups = [["broker-3"], ["broker-2"]]
for = "7s"
[[fault]]                 # add broker 3 to t-1: it must catch up and join the ISR first
at = "6s"
action = "reassign"
partition = "t-1"
replicas = [2, 1, 3]
"#;
    let output = run_text("reassign.toml", text, 6);
    assert_eq!(
        admin_answers(&output),
        vec![
            ("reassign", OpType::Ok, None),
            ("reassign", OpType::Ok, None)
        ]
    );
    // Nothing to add: it completes at once; the leader, removed, hands over to broker 2, and
    // broker 1 deletes its replica.
    let t0 = partition_states(&output, "t-0");
    let last = t0.last().unwrap();
    assert_eq!(ints(&last.detail["replicas"]), vec![2]);
    assert_eq!(ints(&last.detail["isr"]), vec![2]);
    assert_eq!(last.detail["leader"], 2);
    assert!(last.at_ms < 5_000, "{:?}", last.detail);
    assert!(events(&output, "partition-removed")
        .any(|e| e.node == "broker-1" && e.detail["partition"] == "t-0"));
    // Broker 3 is added and opens its replica, but while it cannot fetch it stays out of the
    // ISR and the reassignment in progress (KIP-455: adding replicas must join the ISR first).
    let t1 = partition_states(&output, "t-1");
    let started = t1
        .iter()
        .find(|e| !ints(&e.detail["adding"]).is_empty())
        .expect("the reassignment of t-1 started");
    assert_eq!(ints(&started.detail["replicas"]), vec![2, 1, 3]);
    assert_eq!(ints(&started.detail["adding"]), vec![3]);
    assert!(!in_isr(started, 3));
    assert!(events(&output, "recovered")
        .any(|e| e.node == "broker-3" && e.detail["partition"] == "t-1" && e.at_ms < 12_000));
    // Healed at 12 s, it fetches what t-1 holds from the start, its leader adds it to the ISR,
    // and that completes the reassignment.
    let done = t1
        .iter()
        .find(|e| in_isr(e, 3))
        .expect("broker 3 joined the ISR of t-1");
    assert!(done.at_ms > 12_000, "{:?}", done.detail);
    assert_eq!(ints(&done.detail["adding"]), Vec::<i64>::new());
    assert_eq!(ints(&done.detail["replicas"]), vec![2, 1, 3]);
    assert_eq!(done.detail["leader"], 2);
    let fetched = events(&output, "replica-append")
        .find(|e| e.node == "broker-3" && e.detail["partition"] == "t-1")
        .expect("broker 3 fetched t-1");
    assert_eq!(fetched.detail["first"], 0, "{:?}", fetched.detail);
    assert!(fetched.at_ms > 12_000 && fetched.at_ms <= done.at_ms);
    assert_eq!(t1.last().unwrap().detail, done.detail);
    assert_eq!(output.violations, vec![]);
}
