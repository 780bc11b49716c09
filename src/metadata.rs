//! The cluster's metadata as a broker serves it to clients: live brokers and their addresses,
//! topics, and each partition's replicas, leader, leader epoch and ISR. A broker derives it from
//! the KRaft metadata image it replays (`from_controller_image`), as Kafka's `MetadataCache` is
//! fed by the broker's `MetadataPublisher`s.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::scenario::{Scenario, TopicPartition};

/// Kafka's port.
pub const BROKER_PORT: u16 = 9092;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionMeta {
    pub replicas: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
}

#[derive(Clone, Debug, Default)]
pub struct MetadataImage {
    /// Broker id → its listener.
    pub brokers: BTreeMap<i32, SocketAddr>,
    /// Topic → its partitions, by index.
    pub topics: BTreeMap<String, Vec<PartitionMeta>>,
}

impl MetadataImage {
    /// The image a scenario starts with. Replicas come from the topic's `assignment`, or are placed
    /// round-robin (partition p on brokers p+1, p+2, … wrapping), which spreads leaders evenly.
    pub fn from_scenario(scenario: &Scenario, broker_addr: impl Fn(u32) -> SocketAddr) -> Self {
        let brokers = (1..=scenario.cluster.brokers)
            .map(|id| (id as i32, broker_addr(id)))
            .collect();
        let n = scenario.cluster.brokers;
        let topics = scenario
            .topics
            .iter()
            .map(|topic| {
                let partitions = (0..topic.partitions)
                    .map(|p| {
                        let replicas: Vec<i32> = match &topic.assignment {
                            Some(assignment) => {
                                assignment[p as usize].iter().map(|&b| b as i32).collect()
                            }
                            None => (0..topic.replication_factor)
                                .map(|r| ((p + r) % n + 1) as i32)
                                .collect(),
                        };
                        PartitionMeta {
                            leader: replicas[0],
                            leader_epoch: 0,
                            isr: vec![replicas[0]],
                            replicas,
                        }
                    })
                    .collect();
                (topic.name.clone(), partitions)
            })
            .collect();
        MetadataImage { brokers, topics }
    }

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
                        replicas: p.replicas.clone(),
                        leader: p.leader,
                        leader_epoch: p.leader_epoch,
                        isr: p.isr.clone(),
                    })
                    .collect();
                (topic.name.clone(), partitions)
            })
            .collect();
        MetadataImage { brokers, topics }
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
