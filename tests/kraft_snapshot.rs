//! KRaft snapshots (KIP-630) in a whole cluster: `scenarios/kraft-snapshots.toml` sets
//! `metadata.log.max.record.bytes.between.snapshots` small, so the controllers snapshot their
//! image every few seconds and retention deletes the log below; a crashed controller, a wiped
//! one and a restarted broker come back behind the leader's log start and catch up through
//! `FetchSnapshot`. Checked: the snapshots happen and the log start moves; each of the three
//! loads a fetched snapshot; every controller's image, rebuilt from its final disk (its latest
//! snapshot, then its log), equals the others'; the restarted broker is unfenced again with its
//! metadata; and `split-brain`, `metadata-lost` and every other check hold.
#![cfg(madsim)]

use std::collections::BTreeMap;

use samsa::controller::{MetadataImage, MetadataRecord};
use samsa::output::judge;
use samsa::raft::driver::METADATA_LOG_DIR;
use samsa::raft::{snapshot, wire, SnapshotId};
use samsa::runner::{self, RunOutput};
use samsa_sim::history::TraceEvent;

mod common;
use common::{events, scenario, seeds};

fn reproduce(seed: u64) -> String {
    format!("reproduce: cargo run --release -- run scenarios/kraft-snapshots.toml --seed {seed}")
}

/// The `raft-snapshot` events of one node with this source, in order.
fn snapshots<'a>(output: &'a RunOutput, node: &str, source: &str) -> Vec<&'a TraceEvent> {
    events(output, "raft-snapshot")
        .filter(|e| e.node == node && e.detail["source"] == source)
        .collect()
}

/// The first event of a kind for a node (`wipe`, `restart`, …), by the world.
fn world_event_ms(output: &RunOutput, kind: &str, node: &str) -> u64 {
    events(output, kind)
        .find(|e| e.detail["node"] == node)
        .unwrap_or_else(|| panic!("no {kind} of {node}"))
        .at_ms
}

/// A controller's image as its final disk holds it up to `end_offset`: its latest snapshot, then
/// its log's entries after it. `None` when the disk does not reach `end_offset`.
fn image_on_disk(files: &BTreeMap<String, Vec<u8>>, end_offset: i64) -> Option<MetadataImage> {
    let prefix = format!("{METADATA_LOG_DIR}/");
    let name_of = |path: &str| path.strip_prefix(&prefix).map(str::to_owned);
    let latest: Option<SnapshotId> = files
        .keys()
        .filter_map(|p| name_of(p))
        .filter_map(|n| snapshot::parse_file_name(&n))
        .filter(|(_, partial)| !partial)
        .map(|(id, _)| id)
        .filter(|id| id.end_offset <= end_offset)
        .max();
    let mut image = MetadataImage::default();
    let mut next = 0;
    if let Some(id) = latest {
        let decoded = snapshot::decode(&files[&snapshot::path(METADATA_LOG_DIR, id)]).ok()?;
        for value in &decoded.records {
            image
                .replay(&MetadataRecord::decode(value).unwrap())
                .unwrap();
        }
        next = id.end_offset;
    }
    for (path, bytes) in files.range(prefix.clone()..) {
        if !path.starts_with(&prefix) {
            break;
        }
        if !path.ends_with(".log") {
            continue;
        }
        let Some((from, entries)) = wire::decode_entries(bytes) else {
            continue;
        };
        for (i, entry) in entries.iter().enumerate() {
            let offset = from + i as i64;
            if offset != next || offset >= end_offset {
                continue;
            }
            if !entry.is_control() {
                image
                    .replay(&MetadataRecord::decode(&entry.data).unwrap())
                    .unwrap();
            }
            next += 1;
        }
    }
    (next == end_offset).then_some(image)
}

fn check_run(seed: u64) {
    let s = scenario("kraft-snapshots");
    let output = runner::run(&s, seed);
    let repro = reproduce(seed);
    let problems = judge(&output.violations, &s.expect.violations, &s.expect.allow);
    assert!(problems.is_empty(), "seed {seed}: {problems:?}\n{repro}");

    // Snapshots are written, and the log start moves past the log's beginning.
    let generated = events(&output, "raft-snapshot")
        .filter(|e| e.detail["source"] == "generated")
        .count();
    assert!(
        generated >= 6,
        "seed {seed}: only {generated} snapshots\n{repro}"
    );
    let moved = events(&output, "raft-log-start").count();
    assert!(
        moved >= 3,
        "seed {seed}: the log start moved {moved} times\n{repro}"
    );
    assert!(
        events(&output, "raft-log-start").any(|e| e.detail["deleted_segments"]
            .as_array()
            .is_some_and(|d| !d.is_empty())),
        "seed {seed}: no segment was ever deleted\n{repro}"
    );

    // The wiped controller has nothing: it catches up through the leader's snapshot.
    let wiped_ms = world_event_ms(&output, "wipe", "controller-2");
    assert!(
        snapshots(&output, "controller-2", "fetched")
            .iter()
            .any(|e| e.at_ms > wiped_ms),
        "seed {seed}: the wiped controller fetched no snapshot\n{repro}"
    );
    // The crashed one loads its own latest snapshot, and fetches the leader's newer one.
    let back_ms = world_event_ms(&output, "restart", "controller-1");
    let loaded = snapshots(&output, "controller-1", "loaded");
    assert!(
        loaded.iter().any(|e| e.at_ms >= back_ms),
        "seed {seed}: controller-1 loaded no snapshot at its restart\n{repro}"
    );
    assert!(
        snapshots(&output, "controller-1", "fetched")
            .iter()
            .any(|e| e.at_ms >= back_ms),
        "seed {seed}: controller-1 fetched no snapshot after its restart\n{repro}"
    );
    // The restarted broker loads the leader's snapshot and is unfenced again.
    let broker_back_ms = world_event_ms(&output, "restart", "broker-2");
    let fetched = snapshots(&output, "broker-2", "fetched");
    let loaded_ms = fetched
        .iter()
        .map(|e| e.at_ms)
        .find(|&t| t >= broker_back_ms)
        .unwrap_or_else(|| panic!("seed {seed}: broker-2 fetched no snapshot\n{repro}"));
    assert!(
        events(&output, "broker-unfenced").any(|e| e.detail["broker"] == 2 && e.at_ms > loaded_ms),
        "seed {seed}: broker-2 was not unfenced after loading the snapshot\n{repro}"
    );

    // Every controller's disk rebuilds one image at a common committed offset.
    let controllers: Vec<_> = output
        .disks
        .iter()
        .filter(|(node, _)| node.starts_with("controller-"))
        .collect();
    assert_eq!(controllers.len(), 3);
    let end = output
        .final_state
        .metadata_logs
        .iter()
        .map(|(node, epochs)| {
            let start = output
                .final_state
                .metadata_log_starts
                .get(node)
                .map_or(0, |s| s.log_start);
            start + epochs.len() as i64
        })
        .min()
        .unwrap();
    let images: Vec<(&String, MetadataImage)> = controllers
        .iter()
        .map(|(node, files)| {
            let image = image_on_disk(files, end).unwrap_or_else(|| {
                panic!("seed {seed}: {node}'s disk does not reach {end}\n{repro}")
            });
            (*node, image)
        })
        .collect();
    assert!(!images[0].1.topics.is_empty() && images[0].1.brokers.len() == 3);
    for (node, image) in &images[1..] {
        assert!(
            *image == images[0].1,
            "seed {seed}: {node}'s image at {end} differs from {}'s\n{repro}",
            images[0].0
        );
    }
}

#[test]
fn snapshots_move_the_log_start_and_laggards_catch_up_through_fetch_snapshot() {
    for seed in 1..=seeds("SAMSA_SEEDS", 2) {
        check_run(seed);
    }
}

/// Random crashes, kills, pauses, isolations and partitions of controllers and brokers, with a
/// snapshot every kilobyte and the log below it deleted at once: whoever comes back behind the
/// log start goes through `FetchSnapshot`, at any moment of the quorum's life.
fn chaos_scenario(seed: u64) -> samsa::scenario::Scenario {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut text = String::from(
        r#"
name = "kraft-snapshot-chaos"
duration = "60s"
[cluster]
brokers = 3
controllers = 3
[cluster.config]
"metadata.log.max.record.bytes.between.snapshots" = 1024
"metadata.max.retention.bytes" = 0
"internal.metadata.log.segment.bytes" = 2048
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
        let for_ms = rng.gen_range(500..12_000);
        let action = ["crash", "kill", "pause", "isolate"][rng.gen_range(0..4)];
        text.push_str(&format!(
            "[[fault]]\nat = \"{at_ms}ms\"\naction = \"{action}\"\ntarget = \"{target}\"\nfor = \"{for_ms}ms\"\n"
        ));
    }
    samsa::scenario::parse_str("kraft-snapshot-chaos.toml", &text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn random_faults_with_frequent_snapshots_never_split_the_brain_or_lose_metadata() {
    let n = seeds("SAMSA_CHAOS_SEEDS", 8);
    let mut fetched = 0;
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
        fetched += events(&output, "raft-snapshot")
            .filter(|e| e.detail["source"] == "fetched")
            .count();
    }
    assert!(fetched > 0, "no snapshot was fetched over {n} runs");
}
