//! Acting on a new metadata image (Kafka's `BrokerMetadataPublisher` and `ReplicaManager.applyDelta`):
//! the broker opens (and recovers) each partition newly assigned to it, takes up the role the
//! image gives it in each (leader or follower, in which leader epoch), drops and deletes the
//! partitions no longer assigned to it (a deleted topic, a finished reassignment), and serves
//! clients the new view.
//!
//! Trace events (node `broker-<id>`): `recovered` (a partition opened), `partition-role`
//! `{partition, broker, role, leader_epoch}` on every change of role or epoch, `partition-removed`.

use std::io;
use std::sync::Arc;

use serde_json::json;

use super::partition::Partition;
use super::Broker;
use crate::controller::MetadataImage as ControllerImage;
use crate::metadata::MetadataImage;

pub(super) async fn publish(broker: &Broker, image: &ControllerImage) -> io::Result<()> {
    let ctx = &broker.ctx;
    let view = Arc::new(MetadataImage::from_controller_image(image));
    for (tp, meta) in view.partitions() {
        if !meta.replicas.contains(&ctx.id) {
            continue;
        }
        let handle = match broker.partition(&tp) {
            Some(handle) => handle,
            None => {
                let config = ctx.topic_config.get(&tp.topic).unwrap_or(&ctx.config);
                let (partition, report) = Partition::open(ctx, tp.clone(), meta, config).await?;
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
        if partition.apply(meta) {
            trace_role(broker, &partition);
        }
    }
    remove_unassigned(broker, &view).await?;
    let names: Vec<String> = view.topics.keys().cloned().collect();
    broker
        .auto_creating
        .lock()
        .expect("auto-creating lock")
        .retain(|t| !names.contains(t));
    *broker.metadata.lock().expect("metadata lock") = view;
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

/// Drops the partitions the image no longer assigns here, and deletes their logs.
async fn remove_unassigned(broker: &Broker, view: &MetadataImage) -> io::Result<()> {
    let id = broker.ctx.id;
    let gone: Vec<_> = broker
        .partitions()
        .into_iter()
        .filter(|(tp, _)| view.partition(tp).is_none_or(|m| !m.replicas.contains(&id)))
        .collect();
    for (tp, handle) in gone {
        broker
            .partitions
            .lock()
            .expect("partitions lock")
            .remove(&tp);
        // Wait for whoever holds the partition to finish, then delete its files.
        let _partition = handle.lock().await;
        let disk = &broker.ctx.disk;
        for path in disk.list(&format!("{tp}/")) {
            disk.remove(&path).await?;
        }
        broker.event(
            "partition-removed",
            json!({ "partition": tp.to_string(), "broker": id }),
        );
    }
    Ok(())
}
