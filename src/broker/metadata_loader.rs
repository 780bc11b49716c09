//! The broker's copy of the metadata: it fetches `__cluster_metadata` from the quorum's leader as
//! an observer (KIP-595; `crate::raft::observer`), replays every committed record into its
//! `MetadataImage` (Kafka's `MetadataLoader`), and publishes the image when a record changed it.
//!
//! The broker keeps the log in memory: a restarted broker fetches it again from offset 0, and
//! when the leader's log no longer starts there it is sent the leader's latest snapshot
//! (KIP-630), which it loads as a whole new image before replaying the log after it, as Kafka's
//! `MetadataLoader` loads the latest snapshot first. (Kafka's broker keeps the log and its own
//! snapshots on disk; Samsa's broker keeps neither.)
//!
//! Trace events (node `broker-N`): `raft-snapshot` `{end_offset, epoch, source: "fetched"}`.
//!
//! A committed record that does not decode or replay is a controller bug: the broker panics,
//! and the run reports the panic with its seed.

use std::collections::BTreeSet;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::controller::{MetadataImage, MetadataRecord};
use crate::raft::observer::{ObserverCore, ObserverEvent};
use crate::raft::{snapshot, wire, SnapshotId};
use crate::world::derive_seed;

use super::{publisher, Broker};

/// How often the loader looks for a fetch to send when none is due.
const POLL_MS: u64 = 10;

pub(super) async fn run(broker: Arc<Broker>) -> io::Result<()> {
    let ctx = &broker.ctx;
    let voters: BTreeSet<i32> = ctx.controllers.keys().copied().collect();
    let start_ms = ctx.clock.elapsed_ms();
    let seed = derive_seed(ctx.seed, &format!("observer/{start_ms}"));
    let mut observer = ObserverCore::new(ctx.id, voters, seed);
    let mut image = MetadataImage::default();
    let mut applied = 0i64;
    let mut changed = false;
    loop {
        let Some((to, fetch)) = observer.poll(ctx.clock.elapsed_ms()) else {
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
            continue;
        };
        let (_, version, request) = wire::to_request(ctx.id, &fetch)
            .expect("an observer sends fetches, which are requests");
        let response = broker
            .controllers
            .send_at(to, version, request)
            .await
            .ok()
            .and_then(|r| wire::from_response(&r));
        let events = observer.on_response(ctx.clock.elapsed_ms(), to, response);
        for event in events {
            if let ObserverEvent::SnapshotLoaded { snapshot, bytes } = event {
                image = load_snapshot(&broker, snapshot, &bytes);
                applied = snapshot.end_offset;
                changed = true;
            }
        }
        if let Some(leader) = observer.leader() {
            // The quorum's leader is the active controller: the lifecycle's requests go there.
            broker.controllers.set_active(leader);
        }
        // What is committed and here; the rest of the committed log comes with later fetches.
        let hw = observer.high_watermark();
        let end = hw.min(observer.log_end()).max(applied);
        let start = observer.log_start();
        let fresh = observer
            .log()
            .get((applied - start) as usize..(end - start) as usize)
            .unwrap_or(&[]);
        for (offset, entry) in fresh.iter().enumerate() {
            let offset = applied + offset as i64;
            if entry.is_control() {
                continue; // a leader's start-of-epoch entry, a control record in Kafka
            }
            let record = MetadataRecord::decode(&entry.data).unwrap_or_else(|e| {
                panic!(
                    "{}: committed metadata record {offset} does not decode: {e}",
                    ctx.name
                )
            });
            image.replay(&record).unwrap_or_else(|e| {
                panic!(
                    "{}: committed metadata record {offset} ({record:?}) does not replay: {e}",
                    ctx.name
                )
            });
            changed |= record != MetadataRecord::NoOp;
        }
        applied = end;
        // Publish only caught up with the committed log (Kafka's loader catches up before it
        // publishes): a restarted broker must not act on the image of an hour ago.
        if changed && applied >= hw && registered_in(&broker, &image) {
            publisher::publish(&broker, &image).await?;
            changed = false;
        }
        if !changed || !registered_in(&broker, &image) {
            // What the broker acts on: the controller unfences it (and lets others shut down)
            // on this, as Kafka's broker reports its last published offset.
            broker.lifecycle.replayed(applied - 1);
        }
    }
}

/// The image a fetched snapshot holds. A snapshot that does not decode or replay came whole from
/// the leader: a controller bug, found.
fn load_snapshot(broker: &Broker, id: SnapshotId, bytes: &[u8]) -> MetadataImage {
    let name = &broker.ctx.name;
    let decoded = snapshot::decode(bytes).unwrap_or_else(|e| {
        panic!(
            "{name}: the snapshot at {} does not decode: {e}",
            id.end_offset
        )
    });
    let mut image = MetadataImage::default();
    for value in &decoded.records {
        let record = MetadataRecord::decode(value)
            .unwrap_or_else(|e| panic!("{name}: a record of snapshot {id:?} does not decode: {e}"));
        image.replay(&record).unwrap_or_else(|e| {
            panic!("{name}: record {record:?} of snapshot {id:?} does not replay: {e}")
        });
    }
    let detail = json!({ "end_offset": id.end_offset, "epoch": id.epoch, "source": "fetched" });
    broker.ctx.recorder.event(name, "raft-snapshot", detail);
    image
}

/// Whether `image` holds this broker's current registration. Until it does, the broker acts on
/// nothing (Kafka's broker installs its publishers only once registered and caught up): a
/// process restarted while its previous registration is still alive must not lead partitions
/// in that registration's name with a log that lost its tail.
fn registered_in(broker: &Broker, image: &MetadataImage) -> bool {
    let Some(epoch) = broker.lifecycle.broker_epoch() else {
        return false;
    };
    image
        .brokers
        .get(&broker.ctx.id)
        .is_some_and(|b| b.epoch == epoch)
}
