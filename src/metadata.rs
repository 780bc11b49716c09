//! The cluster's metadata as a broker serves it to clients: live brokers and their addresses,
//! topics, and each partition's replicas, leader, leader epoch and ISR. A broker derives it from
//! the KRaft metadata image it replays (`from_controller_image`), as Kafka's `MetadataCache` is
//! fed by the broker's `MetadataPublisher`s.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::scenario::TopicPartition;

/// Kafka's port.
pub const BROKER_PORT: u16 = 9092;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionMeta {
    /// The topic's id (KIP-516), as Kafka's `Uuid` prints it: a name deleted and created
    /// again is another topic.
    pub topic_id: String,
    pub replicas: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    /// Bumped by every change of the partition (Kafka's `partitionEpoch`); `AlterPartition`
    /// quotes it.
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
}

#[derive(Clone, Debug, Default)]
pub struct MetadataImage {
    /// Broker id → its listener.
    pub brokers: BTreeMap<i32, SocketAddr>,
    /// Topic → its partitions, by index.
    pub topics: BTreeMap<String, Vec<PartitionMeta>>,
    /// Topic → its id (KIP-516), as the wire carries it (`AlterPartition` names topics by id).
    pub topic_ids: BTreeMap<String, uuid::Uuid>,
    /// Every registered broker's epoch, fenced or not (a leader quotes its followers' in
    /// `AlterPartition`, KIP-903).
    pub broker_epochs: BTreeMap<i32, i64>,
    /// Brokers in a controlled shutdown: not to be added to an ISR.
    pub shutting_down: std::collections::BTreeSet<i32>,
}

impl MetadataImage {
    /// The view of a replayed metadata image: unfenced brokers (Kafka's `Metadata` answer lists
    /// only those), and every topic's partitions by index.
    pub fn from_controller_image(image: &crate::controller::MetadataImage) -> Self {
        let brokers = image
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .filter_map(|b| {
                let endpoint = b.endpoints.first()?;
                let ip = endpoint.host.parse().ok()?;
                Some((b.id, SocketAddr::new(ip, endpoint.port)))
            })
            .collect();
        let topics = image
            .topics
            .values()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .values()
                    .map(|p| PartitionMeta {
                        topic_id: topic.id.to_string(),
                        replicas: p.replicas.clone(),
                        leader: p.leader,
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                        isr: p.isr.clone(),
                    })
                    .collect();
                (topic.name.clone(), partitions)
            })
            .collect();
        let topic_ids = image
            .topics
            .values()
            .map(|topic| (topic.name.clone(), topic.id.into()))
            .collect();
        let broker_epochs = image.brokers.values().map(|b| (b.id, b.epoch)).collect();
        let shutting_down = image
            .brokers
            .values()
            .filter(|b| b.in_controlled_shutdown)
            .map(|b| b.id)
            .collect();
        MetadataImage {
            brokers,
            topics,
            topic_ids,
            broker_epochs,
            shutting_down,
        }
    }

    /// A follower's broker epoch if it may join an ISR now (Kafka's `isReplicaIsrEligible`:
    /// registered, unfenced, not shutting down).
    pub fn isr_eligible_epoch(&self, broker: i32) -> Option<i64> {
        if !self.brokers.contains_key(&broker) || self.shutting_down.contains(&broker) {
            return None;
        }
        self.broker_epochs.get(&broker).copied()
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<&PartitionMeta> {
        self.topics.get(&tp.topic)?.get(tp.partition as usize)
    }

    pub fn partitions(&self) -> impl Iterator<Item = (TopicPartition, &PartitionMeta)> {
        self.topics.iter().flat_map(|(topic, parts)| {
            parts.iter().enumerate().map(move |(p, meta)| {
                (
                    TopicPartition {
                        topic: topic.clone(),
                        partition: p as u32,
                    },
                    meta,
                )
            })
        })
    }
}
