//! `compression.type` end to end (`scenarios/compression.toml`): a zstd producer whose batches
//! the brokers store as sent, an lz4 producer to a topic with `compression.type = "gzip"` whose
//! batches the leader recompresses, a leader crash in between, and a consumer that must read
//! every acknowledged record back, on `SAMSA_SEEDS` seeds (2 by default).
#![cfg(madsim)]

use std::collections::BTreeSet;

use samsa::output::judge;
use samsa::runner::{self, RunOutput};
use samsa::storage::batch::{self, Compression};
use samsa_sim::history::OpType;

mod common;
use common::{scenario, seeds};

/// The values of the records `process` sent and saw acknowledged.
fn acked(output: &RunOutput, process: &str) -> BTreeSet<String> {
    output
        .journal
        .history
        .iter()
        .filter(|op| op.process == process && op.f == "send" && op.kind == OpType::Ok)
        .map(|op| op.value["value"].as_str().unwrap().to_string())
        .collect()
}

fn consumed(output: &RunOutput) -> BTreeSet<String> {
    let mut values = BTreeSet::new();
    for op in &output.journal.history {
        if op.f != "poll" || op.kind != OpType::Ok {
            continue;
        }
        for record in op.value["records"].as_array().unwrap() {
            values.insert(record["value"].as_str().unwrap().to_string());
        }
    }
    values
}

/// The codec of every batch of a topic's segment files on every broker's final disk.
fn codecs_on_disk(output: &RunOutput, topic: &str) -> BTreeSet<Compression> {
    let mut codecs = BTreeSet::new();
    let mut batches = 0;
    for (node, files) in &output.disks {
        for (path, bytes) in files {
            let in_topic = path
                .rsplit('/')
                .nth(1)
                .is_some_and(|dir| dir.rsplit_once('-').is_some_and(|(t, _)| t == topic));
            if !in_topic || !path.ends_with(".log") {
                continue;
            }
            let mut iter = batch::batches(bytes);
            for (position, header) in iter.by_ref() {
                let end = position + header.size_in_bytes();
                batch::decode_records(&bytes[position..end])
                    .unwrap_or_else(|e| panic!("{node} {path} at {position}: {e}"));
                codecs.insert(header.compression().unwrap());
                batches += 1;
            }
        }
    }
    assert!(batches > 0, "no batch of {topic} on any disk");
    codecs
}

#[test]
fn compressed_batches_are_replicated_recompressed_and_read_back_on_every_seed() {
    let s = scenario("compression");
    for seed in 1..=seeds("SAMSA_SEEDS", 2) {
        let output = runner::run(&s, seed);
        let reproduce = format!(
            "reproduce: cargo run --release -- run scenarios/compression.toml --seed {seed}"
        );
        assert_eq!(
            judge(&output.violations, &s.expect.violations, &s.expect.allow),
            Vec::<String>::new(),
            "seed {seed}: {:?}\n{reproduce}",
            output.violations
        );
        let (orders, events) = (acked(&output, "p1"), acked(&output, "p2"));
        assert!(
            orders.len() > 4000 && events.len() > 1500,
            "seed {seed}: {} and {} acknowledged\n{reproduce}",
            orders.len(),
            events.len()
        );
        let read = consumed(&output);
        let unread: Vec<_> = orders
            .union(&events)
            .filter(|v| !read.contains(*v))
            .collect();
        assert!(
            unread.is_empty(),
            "seed {seed}: {} acknowledged records never read, e.g. {:?}\n{reproduce}",
            unread.len(),
            &unread[..unread.len().min(5)]
        );
        // `producer`: the brokers keep the producer's zstd; `gzip`: the leader recompressed lz4.
        assert_eq!(
            codecs_on_disk(&output, "orders"),
            BTreeSet::from([Compression::Zstd])
        );
        assert_eq!(
            codecs_on_disk(&output, "events"),
            BTreeSet::from([Compression::Gzip])
        );
    }
}

#[test]
fn a_compressed_run_is_deterministic() {
    let s = scenario("compression");
    let first = runner::run(&s, 5).journal.digest();
    let digests = runner::check_determinism(&s, 5).expect("madsim found nondeterminism");
    assert_eq!(digests, vec![first, first]);
}
