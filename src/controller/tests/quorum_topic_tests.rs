//! The `QuorumController`'s topics: CreateTopics (default and manual assignments),
//! DeleteTopics and CreatePartitions.

use std::collections::BTreeMap;

use super::quorum_support::*;
use crate::controller::image::*;
use crate::controller::quorum::*;
use crate::controller::records::*;
use crate::controller::uuid::Uuid;

// ---- topics ----

#[test]
fn create_topics_with_the_defaults() {
    let mut c = Cluster::new();
    c.start(&[1]);
    let (records, response) = c.handle(create(vec![new_topic("t", -1, -1)]));
    let ControllerResponse::CreateTopics { topics } = response else {
        panic!("{response:?}")
    };
    let id = topics[0].topic_id;
    assert_eq!(
        topics,
        vec![CreatableTopicResult {
            name: "t".to_owned(),
            error_code: 0,
            error_message: None,
            topic_id: id,
            num_partitions: 1,
            replication_factor: 1,
        }]
    );
    assert_eq!(
        records,
        vec![
            MetadataRecord::Topic(TopicRecord {
                name: "t".to_owned(),
                topic_id: id
            }),
            new_partition(id, 0, vec![1], vec![1]),
        ]
    );
}

/// The record of a created partition: led by its first ISR member, epochs 0, directories
/// unassigned.
fn new_partition(
    topic_id: Uuid,
    partition_id: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        partition_id,
        topic_id,
        directories: vec![DIRECTORY_UNASSIGNED; replicas.len()],
        replicas,
        leader: isr[0],
        isr,
        removing_replicas: vec![],
        adding_replicas: vec![],
        leader_recovery_state: 0,
        leader_epoch: 0,
        partition_epoch: 0,
        eligible_leader_replicas: None,
        last_known_elr: None,
    })
}

fn create_errors(c: &mut Cluster, topics: Vec<NewTopic>) -> Vec<(String, i16)> {
    let (records, response) = c.handle(create(topics));
    let ControllerResponse::CreateTopics { topics } = response else {
        panic!("{response:?}")
    };
    let errors: Vec<(String, i16)> = topics
        .iter()
        .map(|t| (t.name.clone(), t.error_code))
        .collect();
    if errors.iter().all(|(_, code)| *code != 0) {
        assert_eq!(records, vec![], "refused topics write nothing");
    }
    errors
}

#[test]
fn create_topics_refusals_are_per_topic() {
    let mut c = Cluster::new();
    c.start(&[1, 2, 3]);
    c.register(4); // fenced: not usable
    c.create(new_topic("exists", 1, 1));
    let long = "x".repeat(250);
    let errors = create_errors(
        &mut c,
        vec![
            new_topic("exists", 1, 1),
            new_topic("ok", 2, 3),
            new_topic("too-many-replicas", 1, 4),
            new_topic("zero-rf", 1, 0),
            new_topic("zero-partitions", 0, 1),
            new_topic("", 1, 1),
            new_topic(".", 1, 1),
            new_topic("..", 1, 1),
            new_topic(&long, 1, 1),
            new_topic("a b", 1, 1),
            new_topic("exist_s", 1, 1),
            new_topic("dup", 1, 1),
            new_topic("dup", 1, 1),
        ],
    );
    use error_code::*;
    let expected: Vec<(String, i16)> = [
        ("exists", TOPIC_ALREADY_EXISTS),
        ("ok", NONE),
        ("too-many-replicas", INVALID_REPLICATION_FACTOR),
        ("zero-rf", INVALID_REPLICATION_FACTOR),
        ("zero-partitions", INVALID_PARTITIONS),
        ("", INVALID_TOPIC_EXCEPTION),
        (".", INVALID_TOPIC_EXCEPTION),
        ("..", INVALID_TOPIC_EXCEPTION),
        (long.as_str(), INVALID_TOPIC_EXCEPTION),
        ("a b", INVALID_TOPIC_EXCEPTION),
        ("exist_s", NONE),
        ("dup", INVALID_REQUEST),
        ("dup", INVALID_REQUEST),
    ]
    .iter()
    .map(|(n, code)| (n.to_string(), *code))
    .collect();
    assert_eq!(errors, expected);
    assert!(c.controller.image().topic_by_name("ok").is_some());
    // '.' and '_' collide.
    let errors = create_errors(&mut c, vec![new_topic("exist.s", 1, 1)]);
    assert_eq!(
        errors,
        vec![("exist.s".to_owned(), INVALID_TOPIC_EXCEPTION)]
    );
    assert!(validate_topic_name(&"y".repeat(249)).is_ok());
}

#[test]
fn validate_only_answers_without_writing() {
    let mut c = Cluster::new();
    c.start(&[1, 2]);
    let (records, response) = c.handle(ControllerRequest::CreateTopics {
        topics: vec![new_topic("t", 3, 2), new_topic("bad", 1, 3)],
        validate_only: true,
    });
    assert_eq!(records, vec![]);
    let ControllerResponse::CreateTopics { topics } = response else {
        panic!()
    };
    assert_eq!(
        topics
            .iter()
            .map(|t| (t.error_code, t.num_partitions, t.replication_factor))
            .collect::<Vec<_>>(),
        vec![(0, 3, 2), (error_code::INVALID_REPLICATION_FACTOR, -1, -1)]
    );
    assert!(c.controller.image().topics.is_empty());
    // Nor for CreatePartitions.
    c.create(new_topic("t", 1, 1));
    let (records, response) = c.handle(ControllerRequest::CreatePartitions {
        topics: vec![CreatePartitionsTopic {
            name: "t".to_owned(),
            count: 3,
            assignment: None,
        }],
        validate_only: true,
    });
    assert_eq!(records, vec![]);
    assert!(
        matches!(response, ControllerResponse::CreatePartitions { topics } if topics[0].error_code == 0)
    );
    assert_eq!(
        c.controller
            .image()
            .topic_by_name("t")
            .unwrap()
            .partitions
            .len(),
        1
    );
}

#[test]
fn a_manual_assignment_is_taken_as_given_with_fenced_replicas_out_of_the_isr() {
    let mut c = Cluster::new();
    c.start(&[1, 2, 3]);
    c.register(4);
    let mut topic = assigned_topic("t", &[&[4, 2], &[3, 4]]);
    topic
        .configs
        .insert("retention.ms".to_owned(), "1000".to_owned());
    let (records, response) = c.handle(create(vec![topic]));
    let ControllerResponse::CreateTopics { topics } = response else {
        panic!()
    };
    let id = topics[0].topic_id;
    assert_eq!(
        (topics[0].num_partitions, topics[0].replication_factor),
        (2, 2)
    );
    assert_eq!(
        records,
        vec![
            MetadataRecord::Topic(TopicRecord {
                name: "t".to_owned(),
                topic_id: id
            }),
            MetadataRecord::Config(ConfigRecord {
                resource_type: CONFIG_RESOURCE_TOPIC,
                resource_name: "t".to_owned(),
                name: "retention.ms".to_owned(),
                value: Some("1000".to_owned()),
            }),
            new_partition(id, 0, vec![4, 2], vec![2]),
            new_partition(id, 1, vec![3, 4], vec![3]),
        ]
    );
}

#[test]
fn manual_assignment_refusals() {
    let mut c = Cluster::new();
    c.start(&[1, 2]);
    c.register(3);
    use error_code::*;
    let with_counts = NewTopic {
        num_partitions: 1,
        ..assigned_topic("counts", &[&[1]])
    };
    let gap = NewTopic {
        assignment: Some(BTreeMap::from([(0, vec![1]), (2, vec![2])])),
        ..new_topic("gap", -1, -1)
    };
    let errors = create_errors(
        &mut c,
        vec![
            with_counts,
            assigned_topic("unknown", &[&[1, 9]]),
            assigned_topic("twice", &[&[1, 1]]),
            assigned_topic("uneven", &[&[1, 2], &[1]]),
            assigned_topic("empty", &[&[]]),
            assigned_topic("all-fenced", &[&[3]]),
            gap,
        ],
    );
    assert_eq!(
        errors.iter().map(|(_, code)| *code).collect::<Vec<_>>(),
        vec![
            INVALID_REQUEST,
            INVALID_REPLICA_ASSIGNMENT,
            INVALID_REPLICA_ASSIGNMENT,
            INVALID_REPLICA_ASSIGNMENT,
            INVALID_REPLICA_ASSIGNMENT,
            INVALID_REPLICA_ASSIGNMENT,
            INVALID_REPLICA_ASSIGNMENT,
        ]
    );
}

#[test]
fn the_leaders_of_a_created_topic_spread_evenly() {
    for partitions in [3, 7, 10] {
        let (c, t) = Cluster::with_topic(&[1, 2, 3], new_topic("t", partitions, 2));
        let mut leaders = BTreeMap::<i32, i32>::new();
        for p in c.controller.image().topics[&t].partitions.values() {
            *leaders.entry(p.leader).or_default() += 1;
            assert_eq!(p.replicas.len(), 2);
            assert_eq!(p.isr, p.replicas);
        }
        let (min, max) = (
            leaders.values().min().unwrap(),
            leaders.values().max().unwrap(),
        );
        assert!(
            max - min <= 1,
            "{partitions} partitions: leaders {leaders:?}"
        );
        assert_eq!(leaders.len(), 3);
    }
}

#[test]
fn delete_topics_writes_a_remove_topic_record_per_known_topic() {
    let mut c = Cluster::new();
    c.start(&[1]);
    let mut topic = new_topic("t", 2, 1);
    topic
        .configs
        .insert("retention.ms".to_owned(), "1".to_owned());
    let t = c.create(topic);
    let (records, response) = c.handle(ControllerRequest::DeleteTopics {
        names: vec!["t".to_owned(), "missing".to_owned()],
    });
    assert_eq!(
        records,
        vec![MetadataRecord::RemoveTopic(RemoveTopicRecord {
            topic_id: t
        })]
    );
    assert_eq!(
        response,
        ControllerResponse::DeleteTopics {
            topics: vec![
                DeletableTopicResult {
                    name: "t".to_owned(),
                    topic_id: t,
                    error_code: 0
                },
                DeletableTopicResult {
                    name: "missing".to_owned(),
                    topic_id: Uuid::ZERO,
                    error_code: error_code::UNKNOWN_TOPIC_OR_PARTITION
                },
            ]
        }
    );
    assert!(c.controller.image().topics.is_empty());
    assert!(c.controller.image().configs.is_empty());
}

#[test]
fn create_partitions_adds_partitions_after_the_existing_ones() {
    let (mut c, t) = Cluster::with_topic(&[1, 2, 3], new_topic("t", 2, 2));
    let (records, code) = create_partitions(&mut c, "t", 4, None);
    assert_eq!(code, 0);
    let ids: Vec<(i32, usize)> = records
        .iter()
        .map(|r| match r {
            MetadataRecord::Partition(p) => (p.partition_id, p.replicas.len()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, vec![(2, 2), (3, 2)]);
    let (records, code) = create_partitions(&mut c, "t", 5, Some(vec![vec![3, 1]]));
    assert_eq!(code, 0);
    assert!(
        matches!(&records[..], [MetadataRecord::Partition(p)] if p.partition_id == 4 && p.replicas == vec![3, 1] && p.leader == 3)
    );
    assert_eq!(c.controller.image().topics[&t].partitions.len(), 5);

    use error_code::*;
    assert_eq!(
        create_partitions(&mut c, "t", 5, None),
        (vec![], INVALID_PARTITIONS)
    );
    assert_eq!(
        create_partitions(&mut c, "t", 2, None),
        (vec![], INVALID_PARTITIONS)
    );
    assert_eq!(
        create_partitions(&mut c, "nope", 9, None),
        (vec![], UNKNOWN_TOPIC_OR_PARTITION)
    );
    assert_eq!(
        create_partitions(&mut c, "t", 7, Some(vec![vec![1, 2]])),
        (vec![], INVALID_REPLICA_ASSIGNMENT)
    );
    assert_eq!(
        create_partitions(&mut c, "t", 6, Some(vec![vec![1]])),
        (vec![], INVALID_REPLICA_ASSIGNMENT),
        "the topic's replication factor is 2"
    );
}
