//! Replay: the effect of each record on the image, and the records Kafka's replay refuses.

use crate::controller::image::*;
use crate::controller::records::*;
use crate::controller::uuid::Uuid;

const TOPIC: Uuid = Uuid::from_parts(0xaaaa, 0x1);
const OTHER_TOPIC: Uuid = Uuid::from_parts(0xbbbb, 0x2);

pub(super) fn register(broker_id: i32, epoch: i64) -> MetadataRecord {
    MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id,
        is_migrating_zk_broker: false,
        incarnation_id: Uuid::from_parts(0x1ac, broker_id as u64),
        broker_epoch: epoch,
        endpoints: vec![BrokerEndpoint {
            name: "PLAINTEXT".to_owned(),
            host: format!("broker-{broker_id}"),
            port: 9092,
            security_protocol: 0,
        }],
        features: vec![],
        rack: None,
        fenced: true,
        in_controlled_shutdown: false,
        log_dirs: vec![],
    })
}

fn topic(name: &str, topic_id: Uuid) -> MetadataRecord {
    MetadataRecord::Topic(TopicRecord {
        name: name.to_owned(),
        topic_id,
    })
}

pub(super) fn partition_record(partition_id: i32, replicas: &[i32]) -> PartitionRecord {
    PartitionRecord {
        partition_id,
        topic_id: TOPIC,
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
        removing_replicas: vec![],
        adding_replicas: vec![],
        leader: replicas[0],
        leader_recovery_state: 0,
        leader_epoch: 0,
        partition_epoch: 0,
        directories: vec![],
        eligible_leader_replicas: None,
        last_known_elr: None,
    }
}

fn change(partition_id: i32) -> PartitionChangeRecord {
    PartitionChangeRecord {
        partition_id,
        topic_id: TOPIC,
        ..PartitionChangeRecord::default()
    }
}

fn replay_all(records: &[MetadataRecord]) -> MetadataImage {
    let mut image = MetadataImage::default();
    for record in records {
        image
            .replay(record)
            .unwrap_or_else(|e| panic!("{record:?}: {e}"));
    }
    image
}

/// Three brokers, topic "t" with partition 0 on [1, 2, 3].
fn cluster() -> MetadataImage {
    replay_all(&[
        register(1, 10),
        register(2, 20),
        register(3, 30),
        topic("t", TOPIC),
        MetadataRecord::Partition(partition_record(0, &[1, 2, 3])),
    ])
}

#[test]
fn register_broker_records_the_registration_fenced() {
    let image = replay_all(&[register(1, 10)]);
    let broker = &image.brokers[&1];
    assert_eq!((broker.epoch, broker.fenced), (10, true));
    assert_eq!(broker.endpoints[0].host, "broker-1");
    assert!(
        image.usable_brokers().is_empty(),
        "fenced brokers hold no new replicas"
    );
    // A re-registration replaces the old one, whatever its epoch.
    let image = replay_all(&[register(1, 10), register(1, 42)]);
    assert_eq!(image.brokers[&1].epoch, 42);
}

#[test]
fn fence_and_unfence_need_the_registered_epoch() {
    let mut image = replay_all(&[register(1, 10), register(2, 20)]);
    let unfence = |id, epoch| MetadataRecord::UnfenceBroker(UnfenceBrokerRecord { id, epoch });
    image.replay(&unfence(1, 10)).unwrap();
    assert!(!image.brokers[&1].fenced);
    assert_eq!(image.usable_brokers(), vec![1]);
    let stale = image.replay(&unfence(2, 19));
    assert_eq!(
        stale,
        Err(ReplayError::StaleBrokerEpoch {
            broker_id: 2,
            registered: 20,
            record: 19
        })
    );
    assert!(image.brokers[&2].fenced, "a refused record changes nothing");
    assert_eq!(
        image.replay(&unfence(9, 1)),
        Err(ReplayError::UnknownBroker { broker_id: 9 })
    );
    image
        .replay(&MetadataRecord::FenceBroker(FenceBrokerRecord {
            id: 1,
            epoch: 10,
        }))
        .unwrap();
    assert!(image.brokers[&1].fenced);
}

#[test]
fn broker_registration_change_fences_unfences_and_shuts_down() {
    let mut image = replay_all(&[register(1, 10)]);
    let change = |fenced, in_controlled_shutdown| {
        MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            broker_id: 1,
            broker_epoch: 10,
            fenced,
            in_controlled_shutdown,
            log_dirs: vec![],
        })
    };
    image.replay(&change(-1, 0)).unwrap();
    assert!(!image.brokers[&1].fenced);
    image.replay(&change(0, 1)).unwrap();
    let broker = &image.brokers[&1];
    assert!(!broker.fenced && broker.in_controlled_shutdown);
    assert!(
        image.usable_brokers().is_empty(),
        "shutting down: no new replicas"
    );
    image.replay(&change(1, 0)).unwrap();
    assert!(image.brokers[&1].fenced);
    assert_eq!(
        image.replay(&change(2, 0)),
        Err(ReplayError::UnknownFencingChange(2))
    );
    assert_eq!(
        image.replay(&change(0, -1)),
        Err(ReplayError::UnknownControlledShutdownChange(-1))
    );
}

#[test]
fn topic_and_partition_records_create_the_topic() {
    let image = cluster();
    let t = image.topic_by_name("t").expect("topic t");
    assert_eq!(t.id, TOPIC);
    let p = &t.partitions[&0];
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 0, 0));
    assert_eq!(p.isr, vec![1, 2, 3]);
    assert_eq!(
        p.directories,
        vec![DIRECTORY_MIGRATING; 3],
        "no directories: MIGRATING"
    );
    assert_eq!(p.leader_recovery_state, LeaderRecoveryState::Recovered);
}

#[test]
fn a_second_topic_record_for_a_name_or_an_id_is_refused() {
    let mut image = cluster();
    assert_eq!(
        image.replay(&topic("t", OTHER_TOPIC)),
        Err(ReplayError::DuplicateTopic {
            name: "t".to_owned(),
            existing: TOPIC,
            new: OTHER_TOPIC
        })
    );
    assert_eq!(
        image.replay(&topic("u", TOPIC)),
        Err(ReplayError::DuplicateTopicId { topic_id: TOPIC })
    );
    assert_eq!(image, cluster());
}

#[test]
fn a_partition_of_an_unknown_topic_is_an_error() {
    let mut image = cluster();
    let mut record = partition_record(1, &[1]);
    record.topic_id = OTHER_TOPIC;
    assert_eq!(
        image.replay(&MetadataRecord::Partition(record)),
        Err(ReplayError::UnknownTopicId {
            topic_id: OTHER_TOPIC
        })
    );
    let mut bad_state = partition_record(1, &[1]);
    bad_state.leader_recovery_state = 7;
    assert_eq!(
        image.replay(&MetadataRecord::Partition(bad_state)),
        Err(ReplayError::UnknownLeaderRecoveryState(7))
    );
    let mut bad_dirs = partition_record(1, &[1, 2]);
    bad_dirs.directories = vec![Uuid::from_parts(5, 5)];
    assert_eq!(
        image.replay(&MetadataRecord::Partition(bad_dirs)),
        Err(ReplayError::InvalidDirectories {
            replicas: 2,
            directories: 1
        })
    );
    assert_eq!(image, cluster());
}

#[test]
fn an_isr_change_bumps_the_partition_epoch_only() {
    let mut image = cluster();
    let shrink = PartitionChangeRecord {
        isr: Some(vec![1, 2]),
        ..change(0)
    };
    image
        .replay(&MetadataRecord::PartitionChange(shrink))
        .unwrap();
    let p = image.partition(TOPIC, 0).unwrap();
    assert_eq!(p.isr, vec![1, 2]);
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 0, 1));
}

#[test]
fn a_leader_change_bumps_both_epochs_even_to_the_same_leader() {
    let mut image = cluster();
    let new_leader = PartitionChangeRecord {
        leader: Some(2),
        isr: Some(vec![2, 3]),
        ..change(0)
    };
    image
        .replay(&MetadataRecord::PartitionChange(new_leader))
        .unwrap();
    let p = image.partition(TOPIC, 0).unwrap();
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 1, 1));
    // Kafka bumps the leader epoch by writing the current leader again (reassignment).
    let same = PartitionChangeRecord {
        leader: Some(2),
        ..change(0)
    };
    image
        .replay(&MetadataRecord::PartitionChange(same))
        .unwrap();
    let p = image.partition(TOPIC, 0).unwrap();
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 2, 2));
    let offline = PartitionChangeRecord {
        leader: Some(-1),
        ..change(0)
    };
    image
        .replay(&MetadataRecord::PartitionChange(offline))
        .unwrap();
    let p = image.partition(TOPIC, 0).unwrap();
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (-1, 3, 3));
    assert!(!p.has_leader());
}

#[test]
fn an_unclean_change_marks_the_partition_recovering() {
    let mut image = cluster();
    let unclean = PartitionChangeRecord {
        leader: Some(3),
        isr: Some(vec![3]),
        leader_recovery_state: Some(1),
        ..change(0)
    };
    image
        .replay(&MetadataRecord::PartitionChange(unclean))
        .unwrap();
    let p = image.partition(TOPIC, 0).unwrap();
    assert_eq!(p.leader_recovery_state, LeaderRecoveryState::Recovering);
    let recovered = PartitionChangeRecord {
        leader_recovery_state: Some(0),
        ..change(0)
    };
    image
        .replay(&MetadataRecord::PartitionChange(recovered))
        .unwrap();
    let p = image.partition(TOPIC, 0).unwrap();
    assert_eq!(p.leader_recovery_state, LeaderRecoveryState::Recovered);
    assert_eq!((p.leader_epoch, p.partition_epoch), (1, 2));
}

#[test]
fn a_replica_change_keeps_directories_of_kept_replicas() {
    let d = |n| Uuid::from_parts(0xd1, n);
    let mut record = partition_record(0, &[1, 2]);
    record.directories = vec![d(1), d(2)];
    let mut image = replay_all(&[topic("t", TOPIC), MetadataRecord::Partition(record)]);
    let reassign = PartitionChangeRecord {
        replicas: Some(vec![2, 3]),
        ..change(0)
    };
    image
        .replay(&MetadataRecord::PartitionChange(reassign))
        .unwrap();
    let p = image.partition(TOPIC, 0).unwrap();
    assert_eq!(p.replicas, vec![2, 3]);
    assert_eq!(p.directories, vec![d(2), DIRECTORY_UNASSIGNED]);
}

#[test]
fn a_change_to_an_unknown_partition_or_topic_is_an_error() {
    let mut image = cluster();
    assert_eq!(
        image.replay(&MetadataRecord::PartitionChange(change(5))),
        Err(ReplayError::UnknownPartition {
            topic_id: TOPIC,
            partition_id: 5
        })
    );
    let mut unknown_topic = change(0);
    unknown_topic.topic_id = OTHER_TOPIC;
    assert_eq!(
        image.replay(&MetadataRecord::PartitionChange(unknown_topic)),
        Err(ReplayError::UnknownTopicId {
            topic_id: OTHER_TOPIC
        })
    );
    let bad_state = PartitionChangeRecord {
        leader_recovery_state: Some(3),
        ..change(0)
    };
    assert_eq!(
        image.replay(&MetadataRecord::PartitionChange(bad_state)),
        Err(ReplayError::UnknownLeaderRecoveryState(3))
    );
    assert_eq!(image, cluster());
}

fn config(resource_type: i8, resource: &str, name: &str, value: Option<&str>) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource_type,
        resource_name: resource.to_owned(),
        name: name.to_owned(),
        value: value.map(str::to_owned),
    })
}

#[test]
fn config_records_set_and_delete_keys() {
    let mut image = cluster();
    image
        .replay(&config(
            CONFIG_RESOURCE_TOPIC,
            "t",
            "retention.ms",
            Some("1000"),
        ))
        .unwrap();
    image
        .replay(&config(
            CONFIG_RESOURCE_BROKER,
            "1",
            "log.retention.ms",
            Some("5"),
        ))
        .unwrap();
    let topic_key = (CONFIG_RESOURCE_TOPIC, "t".to_owned());
    assert_eq!(image.configs[&topic_key]["retention.ms"], "1000");
    image
        .replay(&config(CONFIG_RESOURCE_TOPIC, "t", "retention.ms", None))
        .unwrap();
    assert!(
        !image.configs.contains_key(&topic_key),
        "an emptied resource is dropped"
    );
    assert_eq!(image.configs.len(), 1);
}

#[test]
fn remove_topic_removes_its_partitions_and_configs() {
    let mut image = cluster();
    image
        .replay(&config(
            CONFIG_RESOURCE_TOPIC,
            "t",
            "cleanup.policy",
            Some("compact"),
        ))
        .unwrap();
    let remove = MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id: TOPIC });
    image.replay(&remove).unwrap();
    assert!(image.topics.is_empty() && image.topics_by_name.is_empty());
    assert!(image.configs.is_empty());
    assert_eq!(image.partition(TOPIC, 0), None);
    assert_eq!(
        image.replay(&remove),
        Err(ReplayError::UnknownTopicId { topic_id: TOPIC })
    );
    // The name is free again, for a new id.
    image.replay(&topic("t", OTHER_TOPIC)).unwrap();
    assert_eq!(image.topic_by_name("t").unwrap().id, OTHER_TOPIC);
}

#[test]
fn replaying_decoded_bytes_gives_the_same_image() {
    let records = [
        register(1, 10),
        topic("t", TOPIC),
        MetadataRecord::Partition(partition_record(0, &[1])),
        MetadataRecord::PartitionChange(PartitionChangeRecord {
            leader: Some(-1),
            ..change(0)
        }),
    ];
    let decoded: Vec<MetadataRecord> = records
        .iter()
        .map(|r| MetadataRecord::decode(&r.encode()).unwrap())
        .collect();
    assert_eq!(replay_all(&decoded), replay_all(&records));
}
