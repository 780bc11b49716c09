//! A bounded explore per protocol area: random fault schedules (with the cluster's fault points
//! among the swarm's switches) layered onto a scenario whose guarantees hold under them, and
//! nothing may be found. Each area's fault kinds are the ones its guarantee is meant to survive:
//! with acks=all and min.insync.replicas=2, a killed or paused process, a split network, a slow
//! or full disk or a skewed clock lose nothing. A crashed machine is left out: without fsync
//! (Kafka's default), two replicas crashing together lose what only their page caches held, in
//! the real Kafka too.
//!
//! `SAMSA_EXPLORE_CASES` cases per area (4 by default, the slice CI runs), from master seed
//! `SAMSA_EXPLORE_SEED` (1). A failure prints the minimal scenario explore wrote, and the
//! command that reproduces it.

use std::path::Path;

mod common;
use common::{samsa, seeds};

/// Area, scenario, and the fault kinds (and switches) its guarantee survives.
const AREAS: &[(&str, &str, &str)] = &[
    (
        "replication",
        "scenarios/leader-failover.toml",
        "kill,pause,partition,clog,loss,slow-disk,disk-full,clock-skew,buggify",
    ),
    (
        "liveness",
        "scenarios/isr-rejoin-liveness.toml",
        "kill,pause,partition,clog,slow-disk,buggify",
    ),
    (
        "kraft",
        "scenarios/kraft-snapshots.toml",
        "kill,pause,partition,clog,clock-skew,buggify",
    ),
    (
        "groups",
        "scenarios/consumer-rebalance.toml",
        "kill,pause,partition,clog,buggify",
    ),
    (
        "transactions",
        "scenarios/eos-pipeline-chaos.toml",
        "kill,pause,partition,clog,buggify",
    ),
];

#[test]
fn a_bounded_explore_of_each_protocol_area_finds_nothing() {
    let cases = seeds("SAMSA_EXPLORE_CASES", 4).to_string();
    let master = seeds("SAMSA_EXPLORE_SEED", 1).to_string();
    let mut found = Vec::new();
    for (area, file, faults) in AREAS {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("explore-area-{area}"));
        let _ = std::fs::remove_dir_all(&out);
        let out_arg = out.display().to_string();
        let output = samsa(&[
            "explore",
            file,
            "--cases",
            &cases,
            "--seed",
            &master,
            "--faults",
            faults,
            "--max-shrink-iters",
            "40",
            "--out",
            &out_arg,
        ]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        match output.status.code() {
            Some(0) => assert!(
                stdout.contains(&format!("no failure in {cases} cases")),
                "{area}: {stdout}"
            ),
            _ => found.push(format!(
                "{area} ({file}, --faults {faults}): exit {:?}\n{}\n{}",
                output.status.code(),
                stdout
                    .lines()
                    .filter(|l| l.starts_with("case ")
                        || l.starts_with("minimal")
                        || l.starts_with("reproduce")
                        || l.starts_with("  "))
                    .collect::<Vec<_>>()
                    .join("\n"),
                String::from_utf8_lossy(&output.stderr)
            )),
        }
    }
    assert!(found.is_empty(), "explore found:\n{}", found.join("\n\n"));
}
