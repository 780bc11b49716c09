//! The image as records (Kafka's `MetadataImage.write` through an `ImageWriter`): what a KRaft
//! snapshot holds. Replaying the records into an empty image gives the image back; the
//! controller writes them into its snapshots (`raft::snapshot`) and a loading controller or
//! broker replays them (KIP-630, KIP-631).
//!
//! Order, as Kafka's image writes its parts: the cluster (a `RegisterBrokerRecord` per broker,
//! with its fencing and controlled-shutdown state), the topics (each `TopicRecord` followed by
//! its partitions' `PartitionRecord`s), then the configs (`ConfigRecord`s), then the producer
//! ids handed out (a `ProducerIdsRecord`, once there are any).

use super::image::{MetadataImage, PartitionRegistration};
use super::records::{
    ConfigRecord, MetadataRecord, PartitionRecord, ProducerIdsRecord, RegisterBrokerRecord,
    TopicRecord,
};
use super::uuid::Uuid;

impl MetadataImage {
    /// The records that rebuild this image from an empty one.
    pub fn records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        for b in self.brokers.values() {
            out.push(MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                broker_id: b.id,
                is_migrating_zk_broker: false,
                incarnation_id: b.incarnation_id,
                broker_epoch: b.epoch,
                endpoints: b.endpoints.clone(),
                features: b.features.clone(),
                rack: b.rack.clone(),
                fenced: b.fenced,
                in_controlled_shutdown: b.in_controlled_shutdown,
                log_dirs: b.directories.clone(),
            }));
        }
        for topic in self.topics.values() {
            out.push(MetadataRecord::Topic(TopicRecord {
                name: topic.name.clone(),
                topic_id: topic.id,
            }));
            for (&partition_id, p) in &topic.partitions {
                out.push(MetadataRecord::Partition(partition_record(
                    topic.id,
                    partition_id,
                    p,
                )));
            }
        }
        for ((resource_type, resource_name), configs) in &self.configs {
            for (name, value) in configs {
                out.push(MetadataRecord::Config(ConfigRecord {
                    resource_type: *resource_type,
                    resource_name: resource_name.clone(),
                    name: name.clone(),
                    value: Some(value.clone()),
                }));
            }
        }
        if self.next_producer_id > 0 {
            out.push(MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id: -1,
                broker_epoch: -1,
                next_producer_id: self.next_producer_id,
            }));
        }
        out
    }
}

/// `PartitionRegistration.toRecord`: the ELR fields only when not empty (their schema default
/// is null).
fn partition_record(
    topic_id: Uuid,
    partition_id: i32,
    p: &PartitionRegistration,
) -> PartitionRecord {
    let non_empty = |v: &Vec<i32>| (!v.is_empty()).then(|| v.clone());
    PartitionRecord {
        partition_id,
        topic_id,
        replicas: p.replicas.clone(),
        isr: p.isr.clone(),
        removing_replicas: p.removing_replicas.clone(),
        adding_replicas: p.adding_replicas.clone(),
        leader: p.leader,
        leader_recovery_state: p.leader_recovery_state as i8,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        directories: p.directories.clone(),
        eligible_leader_replicas: non_empty(&p.elr),
        last_known_elr: non_empty(&p.last_known_elr),
    }
}
