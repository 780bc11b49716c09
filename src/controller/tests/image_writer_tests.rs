//! Image → records → snapshot bytes → records → image: a snapshot gives back the image it was
//! taken of (KIP-630: loading a snapshot must rebuild the state the log built).

use bytes::Bytes;

use super::image_tests::{partition_record, register};
use crate::controller::image::*;
use crate::controller::records::*;
use crate::controller::uuid::Uuid;
use crate::raft::snapshot;
use crate::raft::SnapshotId;

const TOPIC: Uuid = Uuid::from_parts(0xaaaa, 0x1);
const GONE: Uuid = Uuid::from_parts(0xcccc, 0x3);

fn replay_all(records: &[MetadataRecord]) -> MetadataImage {
    let mut image = MetadataImage::default();
    for r in records {
        image.replay(r).unwrap_or_else(|e| panic!("{r:?}: {e}"));
    }
    image
}

/// An image that has seen every kind of record: brokers fenced, unfenced, shutting down and
/// re-registered; partitions changed (ISR, ELR, an unclean leader recovering, a reassignment);
/// topic and broker configs, one deleted; a topic created and removed.
fn busy_log() -> Vec<MetadataRecord> {
    let change = |partition_id: i32| PartitionChangeRecord {
        partition_id,
        topic_id: TOPIC,
        ..PartitionChangeRecord::default()
    };
    let config = |resource_type, resource_name: &str, name: &str, value: Option<&str>| {
        MetadataRecord::Config(ConfigRecord {
            resource_type,
            resource_name: resource_name.into(),
            name: name.into(),
            value: value.map(str::to_owned),
        })
    };
    vec![
        register(1, 10),
        register(2, 11),
        register(3, 12),
        MetadataRecord::UnfenceBroker(UnfenceBrokerRecord { id: 1, epoch: 10 }),
        MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            broker_id: 2,
            broker_epoch: 11,
            fenced: -1,
            in_controlled_shutdown: 1,
            log_dirs: vec![],
        }),
        register(3, 20),
        MetadataRecord::Topic(TopicRecord {
            name: "orders".into(),
            topic_id: TOPIC,
        }),
        MetadataRecord::Partition(partition_record(0, &[1, 2, 3])),
        MetadataRecord::Partition(partition_record(1, &[2, 3, 1])),
        MetadataRecord::PartitionChange(PartitionChangeRecord {
            isr: Some(vec![1]),
            eligible_leader_replicas: Some(vec![2]),
            last_known_elr: Some(vec![3]),
            ..change(0)
        }),
        MetadataRecord::PartitionChange(PartitionChangeRecord {
            leader: Some(3),
            isr: Some(vec![3]),
            leader_recovery_state: Some(1),
            replicas: Some(vec![2, 3, 1, 4]),
            adding_replicas: Some(vec![4]),
            ..change(1)
        }),
        MetadataRecord::Topic(TopicRecord {
            name: "gone".into(),
            topic_id: GONE,
        }),
        config(CONFIG_RESOURCE_TOPIC, "gone", "retention.ms", Some("1")),
        MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id: GONE }),
        config(
            CONFIG_RESOURCE_TOPIC,
            "orders",
            "min.insync.replicas",
            Some("2"),
        ),
        config(
            CONFIG_RESOURCE_TOPIC,
            "orders",
            "retention.ms",
            Some("1000"),
        ),
        config(CONFIG_RESOURCE_TOPIC, "orders", "retention.ms", None),
        config(
            CONFIG_RESOURCE_BROKER,
            "",
            "unclean.leader.election.enable",
            Some("true"),
        ),
        MetadataRecord::NoOp,
    ]
}

#[test]
fn an_image_written_as_records_replays_to_itself() {
    let image = replay_all(&busy_log());
    assert_eq!(image.brokers.len(), 3);
    assert!(image.topic_by_name("gone").is_none());
    assert_eq!(replay_all(&image.records()), image);
}

#[test]
fn an_image_survives_a_snapshot_file() {
    let image = replay_all(&busy_log());
    let values: Vec<Bytes> = image.records().iter().map(MetadataRecord::encode).collect();
    let id = SnapshotId {
        end_offset: 42,
        epoch: 3,
    };
    let bytes = snapshot::encode(id, 1_000, &values);
    let decoded = snapshot::decode(&bytes).unwrap();
    let records: Vec<MetadataRecord> = decoded
        .records
        .iter()
        .map(|v| MetadataRecord::decode(v).unwrap())
        .collect();
    assert_eq!(replay_all(&records), image);
}

#[test]
fn an_empty_image_writes_no_records() {
    assert_eq!(MetadataImage::default().records(), vec![]);
}
