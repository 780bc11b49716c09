//! Acting on a new metadata image (Kafka's `BrokerMetadataPublisher` and `ReplicaManager.applyDelta`):
//! the broker opens (and recovers) each partition newly assigned to it, takes up the role the
//! image gives it in each (leader or follower, in which leader epoch), drops and deletes the
//! partitions no longer assigned to it (a deleted topic, a finished reassignment), and serves
//! clients the new view.
//!
//! A partition's directory holds `partition.metadata` with its topic's id (KIP-516): a replica
//! left on disk by a topic deleted while this broker was away is told apart from the replica of
//! a topic created again under the same name, and deleted; so are the directories the first
//! image after a start assigns to nobody here (Kafka's stray logs, KAFKA-14616).
//!
//! Trace events (node `broker-<id>`): `recovered` (a partition opened), `partition-role`
//! `{partition, broker, role, leader_epoch}` on every change of role or epoch, `partition-removed`
//! `{partition, broker, stray}`.

use std::io;
use std::sync::Arc;

use serde_json::json;

use super::partition::Partition;
use super::{replica_fetcher, Broker};
use crate::controller::MetadataImage as ControllerImage;
use crate::metadata::MetadataImage;
use crate::storage::checkpoint::{self, REPLICATION_OFFSET_CHECKPOINT};

pub(super) async fn publish(broker: &Arc<Broker>, image: &ControllerImage) -> io::Result<()> {
    let ctx = &broker.ctx;
    let view = Arc::new(MetadataImage::from_controller_image(image));
    // The clients' view first: a new leader's followers find its address in it.
    *broker.metadata.lock().expect("metadata lock") = view.clone();
    let mut followed = std::collections::BTreeMap::new();
    for (tp, meta) in view.partitions() {
        if !meta.replicas.contains(&ctx.id) {
            continue;
        }
        if meta.leader != ctx.id && meta.leader >= 0 {
            followed.insert(tp.clone(), meta.leader);
        }
        let handle = match broker.partition(&tp) {
            Some(handle) => handle,
            None => {
                claim_directory(broker, &tp.to_string(), &meta.topic_id).await?;
                let config = ctx.topic_config.get(&tp.topic).unwrap_or(&ctx.config);
                let checkpointed_hw = checkpoint::read_offset(
                    &ctx.disk,
                    REPLICATION_OFFSET_CHECKPOINT,
                    &tp.topic,
                    tp.partition as i32,
                )
                .await
                .unwrap_or(None);
                let (mut partition, report) = Partition::open(
                    ctx,
                    tp.clone(),
                    &meta.topic_id,
                    config,
                    checkpointed_hw,
                    broker.progress.clone(),
                )
                .await?;
                broker.event(
                    "recovered",
                    json!({
                        "partition": tp.to_string(),
                        "broker": ctx.id,
                        "leo": report.log_end_offset,
                        "hw": partition.high_watermark(),
                        "truncated_bytes": report.truncated_bytes,
                        "reason": report.reason,
                    }),
                );
                partition.apply(meta).await?;
                trace_role(broker, &partition);
                let handle = Arc::new(tokio::sync::Mutex::new(partition));
                broker
                    .partitions
                    .lock()
                    .expect("partitions lock")
                    .insert(tp.clone(), handle);
                continue;
            }
        };
        let mut partition = handle.lock().await;
        if partition.apply(meta).await? {
            trace_role(broker, &partition);
        }
    }
    *broker.followed.lock().expect("followed lock") = followed;
    super::group_coordinator::on_image(broker, &view);
    super::txn_coordinator::on_image(broker, &view);
    remove_unassigned(broker, &view).await?;
    if !broker
        .published
        .swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        remove_strays(broker, &view).await?;
    }
    let names: Vec<String> = view.topics.keys().cloned().collect();
    broker
        .auto_creating
        .lock()
        .expect("auto-creating lock")
        .retain(|t| !names.contains(t));
    broker.image_version.wake();
    replica_fetcher::ensure_running(broker);
    Ok(())
}

fn trace_role(broker: &Broker, partition: &Partition) {
    let role = if partition.is_leader() {
        "leader"
    } else {
        "follower"
    };
    broker.event(
        "partition-role",
        json!({
            "partition": partition.tp.to_string(),
            "broker": broker.ctx.id,
            "role": role,
            "leader_epoch": partition.leader_epoch(),
        }),
    );
}

/// KIP-516's `partition.metadata`: the topic id of the log in a partition's directory.
const PARTITION_METADATA: &str = "partition.metadata";

fn partition_metadata(topic_id: &str) -> String {
    format!("version: 0\ntopic_id: {topic_id}\n")
}

/// Makes `dir` the directory of topic `topic_id`: a log left there by another topic of that
/// name is deleted first; the topic id is written (durably) for the next start.
async fn claim_directory(broker: &Broker, dir: &str, topic_id: &str) -> io::Result<()> {
    let disk = &broker.ctx.disk;
    let path = format!("{dir}/{PARTITION_METADATA}");
    let wanted = partition_metadata(topic_id);
    let found = if disk.exists(&path) {
        Some(disk.read_all(&path).await?)
    } else {
        None
    };
    if found.as_deref() == Some(wanted.as_bytes()) {
        return Ok(());
    }
    let stale = disk.list(&format!("{dir}/"));
    if !stale.is_empty() {
        for file in stale {
            disk.remove(&file).await?;
        }
        broker.event(
            "partition-removed",
            json!({ "partition": dir, "broker": broker.ctx.id, "stray": true }),
        );
    }
    disk.create(&path).await?;
    disk.write_at(&path, 0, wanted.as_bytes()).await?;
    disk.fsync(&path).await
}

/// Drops the partitions the image no longer assigns here (or assigns to another topic of the
/// same name), and deletes their logs.
async fn remove_unassigned(broker: &Broker, view: &MetadataImage) -> io::Result<()> {
    let id = broker.ctx.id;
    let mut gone = Vec::new();
    for (tp, handle) in broker.partitions() {
        let assigned = match view.partition(&tp) {
            Some(meta) if meta.replicas.contains(&id) => {
                handle.lock().await.topic_id == meta.topic_id
            }
            _ => false,
        };
        if !assigned {
            gone.push((tp, handle));
        }
    }
    for (tp, handle) in gone {
        broker
            .partitions
            .lock()
            .expect("partitions lock")
            .remove(&tp);
        // Wait for whoever holds the partition to finish, then delete its files.
        let _partition = handle.lock().await;
        delete_directory(broker, &tp.to_string(), false).await?;
    }
    Ok(())
}

/// After a start: the partition directories on disk that the image assigns to nobody here.
async fn remove_strays(broker: &Broker, view: &MetadataImage) -> io::Result<()> {
    let id = broker.ctx.id;
    let dirs: std::collections::BTreeSet<String> = broker
        .ctx
        .disk
        .list("")
        .into_iter()
        .filter_map(|path| Some(path.split_once('/')?.0.to_string()))
        .collect();
    for dir in dirs {
        let Some((topic, index)) = dir.rsplit_once('-') else {
            continue;
        };
        let Ok(partition) = index.parse::<u32>() else {
            continue;
        };
        let tp = crate::scenario::TopicPartition {
            topic: topic.to_string(),
            partition,
        };
        let assigned = view
            .partition(&tp)
            .is_some_and(|m| m.replicas.contains(&id));
        if !assigned {
            delete_directory(broker, &dir, true).await?;
        }
    }
    Ok(())
}

async fn delete_directory(broker: &Broker, dir: &str, stray: bool) -> io::Result<()> {
    let disk = &broker.ctx.disk;
    for path in disk.list(&format!("{dir}/")) {
        disk.remove(&path).await?;
    }
    broker.event(
        "partition-removed",
        json!({ "partition": dir, "broker": broker.ctx.id, "stray": stray }),
    );
    Ok(())
}
