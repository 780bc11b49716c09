//! The parser's tests: the contract's example and every feature read into the model (here),
//! refusals with their line and message (`refusals`, `fault_refusals`), the script's admin steps
//! and the topics they make known (`admin`), and random inputs that must never make it panic
//! (`fuzz`).

use std::path::Path;

use super::values::{parse_duration_us, parse_range_us, parse_rate};
use super::*;
use crate::scenario::model::*;

mod admin;
mod fault_refusals;
mod fuzz;
mod refusals;

/// The example of `CONTRACT.md`, "Scenario files".
const EXAMPLE: &str = r#"name = "leader-failover"
summary = "The leader of orders-0 crashes under acks=all load; no acknowledged write is lost."
duration = "60s"                      # simulated time
seed = 1                              # default seed; --seed overrides

[cluster]
brokers = 3
controllers = 3                       # KRaft quorum voters, on nodes of their own

[cluster.config]                      # broker configs, by their Kafka names
"min.insync.replicas" = 2
"unclean.leader.election.enable" = false
"replica.lag.time.max.ms" = 10000

[protocol]                            # historical variants, for teaching; the default is today's Kafka
truncation = "leader-epoch"           # or "high-watermark": the follower truncates to its HW on restart (before KIP-101)

[network]
latency = "1ms..5ms"
loss = 0.0

[disk]
latency = "100us..2ms"
writeback = "30s"                     # the OS writes dirty pages back after this long (Linux's dirty_expire)

[[topic]]
name = "orders"
partitions = 3
replication-factor = 3
config = { "retention.ms" = 604800000 }
# assignment = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]   # optional: replicas per partition, preferred leader first

[[client]]
type = "producer"                     # producer | consumer | transactional | pipeline
id = "p1"
topic = "orders"
rate = "200/s"
keys = "random"                       # random | none | sequential
config = { "acks" = "all", "enable.idempotence" = true }

[[client]]
type = "consumer"
id = "c"
group = "g1"
members = 2
topics = ["orders"]
config = { "isolation.level" = "read_committed", "enable.auto.commit" = false }

[[fault]]
at = "10s"
action = "crash"
target = "leader(orders-0)"

[[fault]]
at = "25s"
action = "partition"
groups = [["broker-1"], ["broker-2", "broker-3", "controller-*"]]
for = "10s"

[expect]
violations = []                       # e.g. ["lost-write"]: each of these must be found
allow = []                            # these may be found; anything found outside both lists fails the run
"#;

/// A small valid scenario that the bad inputs below extend.
const BASE: &str = r#"name = "base"
duration = "60s"

[cluster]
brokers = 3
controllers = 1

[[topic]]
name = "my-orders"
partitions = 2
replication-factor = 3

[[client]]
type = "producer"
id = "p1"
topic = "my-orders"
rate = "100/s"

[[client]]
type = "consumer"
id = "c1"
group = "g1"
topics = ["my-orders"]
"#;

fn tp(topic: &str, partition: u32) -> TopicPartition {
    TopicPartition {
        topic: topic.into(),
        partition,
    }
}

/// 1-based line of the first line of `text` that holds `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not in text"))
        + 1
}

/// Parses `text`, expects an error on the line holding `needle`, whose message holds every phrase.
fn refused(text: &str, needle: &str, phrases: &[&str]) -> ScenarioError {
    let e = match parse_str("bad.toml", text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    };
    assert_eq!(e.line, Some(line_of(text, needle)), "line of {e}");
    for phrase in phrases {
        assert!(e.message.contains(phrase), "{phrase:?} not in {e}");
    }
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("bad.toml:{}: ", line_of(text, needle))),
        "{shown}"
    );
    assert!(!shown.contains('\n'), "{shown}");
    e
}

fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

#[test]
fn the_contract_example_round_trips() {
    let s = parse_str("leader-failover.toml", EXAMPLE).unwrap();
    assert_eq!(s.name, "leader-failover");
    assert!(s.summary.starts_with("The leader of orders-0 crashes"));
    assert_eq!((s.duration_ms, s.seed, s.recovery_ms), (60_000, 1, None));
    assert_eq!((s.cluster.brokers, s.cluster.controllers), (3, 3));
    let cfg = &s.cluster.config;
    assert_eq!(cfg.len(), 3);
    assert_eq!(cfg["min.insync.replicas"], ConfigValue::Int(2));
    assert_eq!(
        cfg["unclean.leader.election.enable"],
        ConfigValue::Bool(false)
    );
    assert_eq!(cfg["replica.lag.time.max.ms"], ConfigValue::Int(10_000));
    assert_eq!(s.protocol.truncation, Truncation::LeaderEpoch);
    assert!(s.protocol.eligible_leader_replicas && s.protocol.check_quorum);
    assert_eq!(
        s.network.latency_us,
        RangeUs {
            lo: 1_000,
            hi: 5_000
        }
    );
    assert_eq!(s.network.loss, 0.0);
    assert_eq!(s.disk.latency_us, RangeUs { lo: 100, hi: 2_000 });
    assert_eq!(s.disk.writeback_ms, 30_000);

    assert_eq!(s.topics.len(), 1);
    let t = &s.topics[0];
    assert_eq!(
        (t.name.as_str(), t.partitions, t.replication_factor),
        ("orders", 3, 3)
    );
    assert_eq!(t.config["retention.ms"], ConfigValue::Int(604_800_000));
    assert_eq!(t.assignment, None);

    assert_eq!(s.clients.len(), 2);
    let p = &s.clients[0];
    assert_eq!(
        (p.kind, p.id.as_str(), p.topic.as_deref()),
        (ClientKind::Producer, "p1", Some("orders"))
    );
    assert_eq!(
        (p.rate_per_s, p.count, p.keys, p.start_ms),
        (Some(200.0), None, Keys::Random, 0)
    );
    assert_eq!(p.config["acks"], ConfigValue::Str("all".into()));
    assert_eq!(p.config["enable.idempotence"], ConfigValue::Bool(true));
    assert_eq!(p.line, line_of(EXAMPLE, "id = \"p1\"") - 2);
    let c = &s.clients[1];
    assert_eq!(
        (c.kind, c.id.as_str(), c.group.as_deref(), c.members),
        (ClientKind::Consumer, "c", Some("g1"), 2)
    );
    assert_eq!(c.topics, vec!["orders".to_string()]);
    assert_eq!(
        c.config["isolation.level"],
        ConfigValue::Str("read_committed".into())
    );
    assert_eq!(c.config["enable.auto.commit"], ConfigValue::Bool(false));

    assert_eq!(s.faults.len(), 2);
    let crash = &s.faults[0];
    assert_eq!(
        (crash.trigger.clone(), crash.action, crash.after_ms),
        (Trigger::At(10_000), Action::Crash, 0)
    );
    assert_eq!(crash.target, Some(Target::Leader(tp("orders", 0))));
    assert_eq!(crash.line, line_of(EXAMPLE, "at = \"10s\"") - 1);
    let split = &s.faults[1];
    assert_eq!(
        (split.trigger.clone(), split.action, split.for_ms),
        (Trigger::At(25_000), Action::Partition, Some(10_000))
    );
    assert_eq!(
        split.groups,
        vec![
            vec![Target::Broker(1)],
            vec![Target::Broker(2), Target::Broker(3), Target::AllControllers]
        ]
    );
    assert!(s.expect.violations.is_empty() && s.expect.allow.is_empty());
}

#[test]
fn defaults_fill_what_is_left_out() {
    let s = parse_str("t.toml", "name = \"tiny\"\nduration = \"1s\"\n").unwrap();
    assert_eq!(
        (s.seed, s.cluster.brokers, s.cluster.controllers),
        (1, 1, 1)
    );
    assert_eq!(
        s.network.latency_us,
        RangeUs {
            lo: 1_000,
            hi: 5_000
        }
    );
    assert_eq!(s.disk.latency_us, RangeUs { lo: 100, hi: 2_000 });
    assert_eq!(s.disk.writeback_ms, 30_000);
    assert_eq!(
        s.protocol.transaction_version,
        ProtocolSpec::default().transaction_version
    );
    assert!(s.topics.is_empty() && s.clients.is_empty() && s.faults.is_empty());
}

#[test]
fn every_feature_reads_into_the_model() {
    let text = with(
        r#"
[protocol]
truncation = "high-watermark"
eligible-leader-replicas = false
transaction-version = 1

[[topic]]
name = "out"
replication-factor = 2
assignment = [[1, 2]]
config = { cleanup.policy = ["compact", "delete"], min.insync.replicas = 2 }

[[client]]
type = "pipeline"
id = "pipe"
group = "g2"
topics = ["my-orders"]
topic = "out"
config = { "isolation.level" = "read_committed", "transactional.id" = "pipe-tx" }

[[client]]
type = "transactional"
id = "tx"
topic = "out"
count = 50
keys = "sequential"
at = "2.5s"

[[fault]]
when = "hw(my-orders-1, broker-2) >= 10"
after = "100ms"
action = "clock-skew"
target = "broker-2"
by = "-5s"

[[fault]]
when = " committed( g1 , my-orders-0 )!=-1"
action = "delay"
target = "pipe"
api = "EndTxn"
by = "2s"
for = "1m"

[[fault]]
at = "1.5s"
action = "clog-link"
from = "controller-leader"
to = "coordinator(g2)"

[[fault]]
at = "2s"
action = "slow-disk"
target = "follower(out-0)"
factor = 10

[[fault]]
at = "3s"
action = "loss"
rate = 0.2
for = "500ms"

[[fault]]
at = "4s"
action = "heal"

[[fault]]
when = "acked(tx) > 3"
action = "corrupt"
target = "broker-*"
file = "out-0/*.log"

[expect]
violations = ["lost-write"]
allow = ["duplicate", "unavailable"]
"#,
    );
    let s = parse_str("t.toml", &text).unwrap();
    assert_eq!(s.protocol.truncation, Truncation::HighWatermark);
    assert!(!s.protocol.eligible_leader_replicas);
    assert_eq!(s.protocol.transaction_version, 1);
    let out = &s.topics[1];
    assert_eq!((out.partitions, out.replication_factor), (1, 2));
    assert_eq!(out.assignment, Some(vec![vec![1, 2]]));
    assert_eq!(
        out.config["cleanup.policy"],
        ConfigValue::Str("compact,delete".into())
    );
    assert_eq!(out.config["min.insync.replicas"], ConfigValue::Int(2));
    let pipe = &s.clients[2];
    assert_eq!(
        (pipe.kind, pipe.topic.as_deref(), pipe.group.as_deref()),
        (ClientKind::Pipeline, Some("out"), Some("g2"))
    );
    let tx = &s.clients[3];
    assert_eq!(
        (tx.count, tx.keys, tx.start_ms, tx.rate_per_s),
        (Some(50), Keys::Sequential, 2_500, None)
    );

    let f = &s.faults;
    let Trigger::When(c) = &f[0].trigger else {
        panic!("{:?}", f[0].trigger)
    };
    assert_eq!(
        (c.figure.clone(), c.cmp, c.value),
        (Figure::Hw(tp("my-orders", 1), Some(2)), Cmp::Ge, 10)
    );
    assert_eq!(
        (f[0].after_ms, f[0].by_ms, f[0].target.clone()),
        (100, Some(-5_000), Some(Target::Broker(2)))
    );
    let Trigger::When(c) = &f[1].trigger else {
        panic!()
    };
    assert_eq!(
        (c.figure.clone(), c.cmp, c.value),
        (
            Figure::Committed("g1".into(), tp("my-orders", 0)),
            Cmp::Ne,
            -1
        )
    );
    assert_eq!(c.text, "committed( g1 , my-orders-0 )!=-1");
    assert_eq!(
        (f[1].api.as_deref(), f[1].by_ms, f[1].for_ms),
        (Some("EndTxn"), Some(2_000), Some(60_000))
    );
    assert_eq!(f[1].target, Some(Target::Client("pipe".into())));
    assert_eq!(
        (f[2].from.clone(), f[2].to.clone()),
        (
            Some(Target::ControllerLeader),
            Some(Target::Coordinator("g2".into()))
        )
    );
    assert_eq!(
        (f[3].target.clone(), f[3].factor),
        (Some(Target::Follower(tp("out", 0))), Some(10.0))
    );
    assert_eq!((f[4].rate, f[4].for_ms), (Some(0.2), Some(500)));
    assert_eq!(f[5].action, Action::Heal);
    let Trigger::When(c) = &f[6].trigger else {
        panic!()
    };
    assert_eq!(c.figure, Figure::Acked("tx".into()));
    assert_eq!(
        (f[6].target.clone(), f[6].file.as_deref()),
        (Some(Target::AllBrokers), Some("out-0/*.log"))
    );
    assert_eq!(s.expect.violations, vec!["lost-write".to_string()]);
    assert_eq!(
        s.expect.allow,
        vec!["duplicate".to_string(), "unavailable".to_string()]
    );
}

#[test]
fn durations_ranges_and_rates() {
    assert_eq!(parse_duration_us("60s", false), Ok(60_000_000));
    assert_eq!(parse_duration_us("100us", false), Ok(100));
    assert_eq!(parse_duration_us("2ms", false), Ok(2_000));
    assert_eq!(parse_duration_us("1.5s", false), Ok(1_500_000));
    assert_eq!(parse_duration_us("10m", false), Ok(600_000_000));
    assert_eq!(parse_duration_us("1h", false), Ok(3_600_000_000));
    assert_eq!(parse_duration_us("-5s", true), Ok(-5_000_000));
    assert!(parse_duration_us("-5s", false)
        .unwrap_err()
        .contains("negative"));
    assert!(parse_duration_us("60", false)
        .unwrap_err()
        .contains("needs a unit"));
    assert!(parse_duration_us("5 parsecs", false)
        .unwrap_err()
        .contains("unknown unit"));
    assert!(parse_duration_us("1.0000001ms", false)
        .unwrap_err()
        .contains("finer"));
    assert!(parse_duration_us("99999999999999999999h", false)
        .unwrap_err()
        .contains("too large"));
    assert!(parse_duration_us("1..2s", false).is_err());
    assert_eq!(
        parse_range_us("1ms..5ms"),
        Ok(RangeUs {
            lo: 1_000,
            hi: 5_000
        })
    );
    assert_eq!(
        parse_range_us("3ms"),
        Ok(RangeUs {
            lo: 3_000,
            hi: 3_000
        })
    );
    assert!(parse_range_us("5ms..1ms")
        .unwrap_err()
        .contains("downwards"));
    assert_eq!(parse_rate("200/s"), Ok(200.0));
    assert_eq!(parse_rate("2/ms"), Ok(2_000.0));
    assert_eq!(parse_rate("30/m"), Ok(0.5));
    assert!(parse_rate("0/s").unwrap_err().contains("positive"));
    assert!(parse_rate("-3/s").unwrap_err().contains("positive"));
    assert!(parse_rate("NaN/s").is_err());
    assert!(parse_rate("200").is_err());
}

#[test]
fn the_scenario_library_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.retain(|p| p.extension().is_some_and(|x| x == "toml"));
    files.sort();
    for file in files {
        parse_file(&file).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn a_group_consumers_workload_keys_are_read_and_checked() {
    let text = with(
        r#"[[client]]
type = "consumer"
id = "g"
group = "g2"
members = 2
topics = ["my-orders"]
commit = "before-processing"
processing = "250ms"
handoff = true
stall-at = "20s"
stall-for = "30s"

[[fault]]
at = "5s"
action = "kill"
target = "g-2"

[[fault]]
at = "9s"
action = "describe-group"
group = "g2"
"#,
    );
    let s = parse_str("ok.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let g = s.clients.iter().find(|c| c.id == "g").expect("client g");
    assert_eq!(g.commit, Some(CommitOrder::BeforeProcessing));
    assert_eq!(
        (g.processing_ms, g.handoff, g.stall),
        (250, true, Some((20_000, 30_000)))
    );
    assert_eq!(s.faults[0].target, Some(Target::Client("g-2".into())));
    assert_eq!(s.faults[1].group.as_deref(), Some("g2"));

    let bad = with("[[client]]\ntype = \"consumer\"\nid = \"g\"\ngroup = \"g2\"\ntopics = [\"my-orders\"]\ncommit = \"sometimes\"\n");
    refused(&bad, "sometimes", &["commit", "after-processing"]);
    let bad = with("[[client]]\ntype = \"consumer\"\nid = \"g\"\ngroup = \"g2\"\ntopics = [\"my-orders\"]\nstall-at = \"5s\"\n");
    refused(&bad, "stall-at", &["needs `stall-for`"]);
    let bad = with("[[client]]\ntype = \"consumer\"\nid = \"solo\"\ntopics = [\"my-orders\"]\nprocessing = \"5ms\"\n");
    refused(&bad, "processing", &["needs a `group`"]);
    let bad = with("[[fault]]\nat = \"1s\"\naction = \"kill\"\ntarget = \"c-3\"\n");
    refused(&bad, "c-3", &["unknown target"]);
    let bad = with("[[fault]]\nat = \"1s\"\naction = \"describe-group\"\ngroup = \"nobody\"\n");
    refused(
        &bad,
        "nobody",
        &["no consumer of this scenario is in group"],
    );
}
