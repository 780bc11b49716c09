//! Each fault does what the contract says, at the moment its trigger says.
#![cfg(madsim)]

use samsa::runner::{self, RunOutput};
use samsa::scenario::parse_str;
use samsa_sim::history::{Op, OpType, TraceEvent};

const BASE: &str = r#"name = "fault-test"
summary = "one broker, one producer"
duration = "25s"                      # a killed broker re-registers once its old session (9 s) is over

[cluster]
brokers = 1

[[topic]]
name = "orders"
partitions = 1
replication-factor = 1

[[client]]
type = "producer"
id = "p1"
topic = "orders"
rate = "100/s"
# No retries: each failed request fails its records at once, and a record that cannot be sent
# (its leader unreachable) expires after 1.5 s. Kafka's defaults retry and hold records for
# delivery.timeout.ms, two minutes, past the end of these runs.
config = { "acks" = "1", "request.timeout.ms" = 1000, "retries" = 0, "delivery.timeout.ms" = 1500 }
"#;

fn run(faults: &str, seed: u64) -> RunOutput {
    let text = format!("{BASE}\n{faults}");
    let scenario = parse_str("faults.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    runner::run(&scenario, seed)
}

fn events<'a>(output: &'a RunOutput, kind: &str) -> Vec<&'a TraceEvent> {
    output
        .journal
        .trace
        .iter()
        .filter(|e| e.kind == kind)
        .collect()
}

fn sends(output: &RunOutput, kind: OpType) -> Vec<&Op> {
    output
        .journal
        .history
        .iter()
        .filter(|op| op.f == "send" && op.kind == kind)
        .collect()
}

#[test]
fn when_fires_the_moment_its_condition_first_holds() {
    for seed in 1..=3 {
        let output = run(
            "[[fault]]\nwhen = \"acked(p1) >= 250\"\naction = \"kill\"\ntarget = \"broker-1\"\n",
            seed,
        );
        let kill = events(&output, "kill");
        assert_eq!(kill.len(), 1, "seed {seed}");
        let acked = sends(&output, OpType::Ok);
        let the_250th = acked[249];
        assert_eq!(
            kill[0].at_ms, the_250th.at_ms,
            "seed {seed}: fired at another moment than the 250th ack"
        );
        // Nothing acknowledged after the kill: the broker is gone for good.
        assert!(
            acked.iter().all(|op| op.at_ms <= kill[0].at_ms),
            "seed {seed}"
        );
    }
}

#[test]
fn after_delays_a_fault_and_for_undoes_it() {
    let output = run(
        "[[fault]]\nwhen = \"acked(p1) >= 100\"\nafter = \"500ms\"\naction = \"kill\"\ntarget = \"broker-1\"\nfor = \"3s\"\n",
        1,
    );
    let acked = sends(&output, OpType::Ok);
    let kill = events(&output, "kill")[0].at_ms;
    let restart = events(&output, "restart")[0].at_ms;
    assert_eq!(kill, acked[99].at_ms + 500);
    assert_eq!(restart, kill + 3000);
    // Writes fail while the broker is down and are acknowledged again after it is back.
    let failed = sends(&output, OpType::Fail);
    assert!(failed
        .iter()
        .any(|op| op.at_ms > kill && op.at_ms < restart));
    assert!(acked.iter().any(|op| op.at_ms > restart + 500));
}

#[test]
fn a_partition_stops_writes_until_it_heals() {
    let output = run(
        "[[fault]]\nat = \"3s\"\naction = \"partition\"\ngroups = [[\"broker-1\"], [\"p1\"]]\nfor = \"4s\"\n",
        2,
    );
    let acked = sends(&output, OpType::Ok);
    // Requests out when the partition began cannot be answered before it heals (madsim's TCP
    // holds them): the producer's 1 s request timeout makes them unknown, never failed. Records
    // that could not be sent at all expire (delivery.timeout.ms) as failed.
    assert!(
        !acked.iter().any(|op| op.at_ms > 3_100 && op.at_ms < 7_000),
        "a write was acknowledged across the partition"
    );
    assert!(sends(&output, OpType::Info)
        .iter()
        .any(|op| op.at_ms > 3_000 && op.at_ms < 7_500));
    assert!(
        acked.iter().any(|op| op.at_ms > 8_000),
        "writes did not resume after the heal"
    );
    assert_eq!(events(&output, "heal").len(), 1);
    assert_eq!(output.violations, vec![]);
}

#[test]
fn a_paused_broker_answers_nothing_until_resumed() {
    let output = run(
        "[[fault]]\nat = \"2s\"\naction = \"pause\"\ntarget = \"broker-1\"\nfor = \"3s\"\n",
        3,
    );
    let acked = sends(&output, OpType::Ok);
    assert!(!acked.iter().any(|op| op.at_ms > 2_050 && op.at_ms < 5_000));
    assert!(acked.iter().any(|op| op.at_ms > 5_500));
    assert_eq!(output.violations, vec![], "a pause loses nothing");
}

#[test]
fn corruption_is_found_by_recovery_which_cuts_the_log_there() {
    let output = run(
        "[[fault]]\nat = \"5s\"\naction = \"corrupt\"\ntarget = \"broker-1\"\n\n[[fault]]\nat = \"5s\"\naction = \"kill\"\ntarget = \"broker-1\"\nfor = \"1s\"\n",
        4,
    );
    assert_eq!(events(&output, "corrupt").len(), 1);
    let recovered: Vec<_> = events(&output, "recovered")
        .into_iter()
        .filter(|e| e.at_ms > 5_000)
        .collect();
    assert_eq!(recovered.len(), 1);
    let cut = recovered[0].detail["truncated_bytes"].as_u64().unwrap();
    assert!(cut > 0, "recovery kept a corrupt batch: {:?}", recovered[0]);
    // Recovery cut at the corrupt batch: the writes from there on are lost, and say so; the
    // lone replica's high watermark went back with its log.
    assert!(output
        .violations
        .iter()
        .all(|v| matches!(v.check.as_str(), "lost-write" | "hw-regression")));
    assert!(output.violations.iter().any(|v| v.check == "lost-write"));
}

/// Kafka halts a broker whose only log directory fails (`LogManager.handleLogDirFailure`): the
/// write that met the full disk is answered with an error and the broker stops. When the fault
/// ends, space is freed and the broker is started again; it recovers its log and serves.
#[test]
fn a_full_disk_halts_the_broker_and_nothing_it_refused_is_acknowledged() {
    let output = run(
        "[[fault]]\nat = \"2s\"\naction = \"disk-full\"\ntarget = \"broker-1\"\nfor = \"2s\"\n",
        5,
    );
    let stopped = events(&output, "stopped");
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert!((2_000..2_100).contains(&stopped[0].at_ms), "{stopped:?}");
    let error = stopped[0].detail["error"].as_str().unwrap();
    assert!(error.contains("No space left on device"), "{error}");
    let restarts = events(&output, "restart");
    assert_eq!(restarts.len(), 1, "{restarts:?}");
    assert_eq!(restarts[0].at_ms, 4_000);
    let acked = sends(&output, OpType::Ok);
    assert!(!acked.iter().any(|op| op.at_ms > 2_020 && op.at_ms < 4_000));
    assert!(acked.iter().any(|op| op.at_ms > 4_500), "it serves again");
    assert_eq!(output.violations, vec![]);
}

#[test]
fn a_panic_inside_the_cluster_is_a_found_bug_not_a_crash_of_samsa() {
    let text = format!("{BASE}\n");
    let scenario = parse_str("faults.toml", &text).unwrap();
    let output = runner::run_planted(
        &scenario,
        9,
        Some(samsa::broker::PlantedBug::PanicAtOffset(300)),
    );
    let panics: Vec<_> = output
        .violations
        .iter()
        .filter(|v| v.check == "panic")
        .collect();
    assert_eq!(panics.len(), 1, "{:?}", output.violations);
    assert!(
        panics[0].detail.contains("panics appending offset 300"),
        "{}",
        panics[0].detail
    );
    // The run stopped there, and what happened before is still recorded and checked.
    assert_eq!(sends(&output, OpType::Ok).len(), 300);
    // Clients start once the cluster has created the topic; 300 sends at 100/s take 3 s (the
    // first ones wait a little for the new topic's metadata, Kafka's `max.block.ms`).
    let first_send = sends(&output, OpType::Invoke)[0].at_ms;
    let after = panics[0].at_ms - first_send;
    assert!(
        (2_800..3_200).contains(&after),
        "{after} ms after the first send"
    );
}
