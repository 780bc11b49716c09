//! The leader's side of ISR changes and the high-watermark checkpoint (Kafka's
//! `ReplicaManager` schedules `isr-expiration` every `replica.lag.time.max.ms / 2` and
//! `highwatermark-checkpoint` every `replica.high.watermark.checkpoint.interval.ms`).
//!
//! A proposal (`Partition::maybe_shrink_isr`, or an expansion made due by a follower's fetch)
//! goes to the active controller as `AlterPartition` (Kafka's `AlterPartitionManager`): with the
//! partition epoch it was based on, and each member's broker epoch (KIP-903; -1 for every member
//! in the `broker-epoch-check = false` variant, as `AlterPartition` v2 sent none). A transport
//! failure or `NOT_CONTROLLER` is retried while the proposal is still pending; the answer,
//! committed or refused, ends it.
//!
//! The checkpoint `replication-offset-checkpoint` holds every hosted partition's high
//! watermark; a restarted replica starts from it (and, in the `high-watermark` truncation
//! variant, truncates to it).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
use kafka_protocol::messages::{AlterPartitionRequest, BrokerId, RequestKind, ResponseKind};

use super::partition::IsrProposal;
use super::{Broker, PartitionHandle};
use crate::storage::checkpoint::{self, OffsetCheckpoint, REPLICATION_OFFSET_CHECKPOINT};

/// `NOT_CONTROLLER`.
const NOT_CONTROLLER: i16 = 41;
/// Kafka's `AlterPartitionManager` retry backoff.
const RETRY_BACKOFF_MS: u64 = 100;

pub(super) fn spawn(broker: &Arc<Broker>) {
    tokio::spawn(expire_isr(broker.clone()));
    tokio::spawn(checkpoint_high_watermarks(broker.clone()));
}

/// Every `replica.lag.time.max.ms / 2`: each led partition drops its lagging followers.
async fn expire_isr(broker: Arc<Broker>) {
    let interval = (broker.ctx.replication.lag_time_max_ms / 2).max(1) as u64;
    loop {
        tokio::time::sleep(Duration::from_millis(interval)).await;
        for (_, handle) in broker.partitions() {
            let proposal = handle.lock().await.maybe_shrink_isr();
            if let Some(proposal) = proposal {
                send_proposal(&broker, handle, proposal);
            }
        }
    }
}

/// Sends `proposal` to the controller in the background and gives `handle` the answer.
pub(super) fn send_proposal(broker: &Arc<Broker>, handle: PartitionHandle, proposal: IsrProposal) {
    tokio::spawn(alter_partition(broker.clone(), handle, proposal));
}

async fn alter_partition(broker: Arc<Broker>, handle: PartitionHandle, proposal: IsrProposal) {
    loop {
        let image = broker.metadata();
        let Some(&topic_id) = image.topic_ids.get(&proposal.tp.topic) else {
            handle.lock().await.on_isr_answer(&proposal, Err(-1));
            return;
        };
        let check = broker.ctx.replication.broker_epoch_check;
        let own_epoch = broker.lifecycle.broker_epoch().unwrap_or(-1);
        let members = proposal
            .isr
            .iter()
            .map(|&(id, quoted)| {
                let epoch = match (check, id == broker.ctx.id) {
                    (false, _) => -1,
                    (true, true) => own_epoch,
                    (true, false) => quoted,
                };
                BrokerState::default()
                    .with_broker_id(BrokerId(id))
                    .with_broker_epoch(epoch)
            })
            .collect();
        let request = AlterPartitionRequest::default()
            .with_broker_id(BrokerId(broker.ctx.id))
            .with_broker_epoch(own_epoch)
            .with_topics(vec![TopicData::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![PartitionData::default()
                    .with_partition_index(proposal.tp.partition as i32)
                    .with_leader_epoch(proposal.leader_epoch)
                    .with_new_isr_with_epochs(members)
                    .with_partition_epoch(proposal.partition_epoch)])]);
        let answer = match broker
            .controllers
            .send(RequestKind::AlterPartition(request))
            .await
        {
            Ok(ResponseKind::AlterPartition(r)) if r.error_code == NOT_CONTROLLER => {
                broker.controllers.rotate_from(broker.controllers.active());
                None
            }
            Ok(ResponseKind::AlterPartition(r)) if r.error_code != 0 => Some(Err(r.error_code)),
            Ok(ResponseKind::AlterPartition(r)) => {
                let found = r.topics.first().and_then(|t| t.partitions.first());
                Some(match found {
                    Some(p) if p.error_code == 0 => Ok((
                        p.isr.iter().map(|b| b.0).collect::<Vec<i32>>(),
                        p.partition_epoch,
                    )),
                    Some(p) => Err(p.error_code),
                    None => Err(-1),
                })
            }
            _ => None,
        };
        let mut partition = handle.lock().await;
        match answer {
            Some(answer) => {
                partition.on_isr_answer(&proposal, answer);
                return;
            }
            None if !partition.is_pending(&proposal) => return,
            None => {}
        }
        drop(partition);
        tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
    }
}

/// Every `replica.high.watermark.checkpoint.interval.ms`: every hosted partition's high
/// watermark, in one file written atomically.
async fn checkpoint_high_watermarks(broker: Arc<Broker>) {
    let interval = broker.ctx.replication.hw_checkpoint_interval_ms.max(1);
    loop {
        tokio::time::sleep(Duration::from_millis(interval)).await;
        let mut file = OffsetCheckpoint::default();
        for (tp, handle) in broker.partitions() {
            let hw = handle.lock().await.high_watermark();
            file.insert(&tp.topic, tp.partition as i32, hw);
        }
        let tmp = format!("{REPLICATION_OFFSET_CHECKPOINT}.tmp");
        let _ = checkpoint::write_atomically(
            &broker.ctx.disk,
            REPLICATION_OFFSET_CHECKPOINT,
            &tmp,
            &file.to_text(),
        )
        .await;
    }
}
