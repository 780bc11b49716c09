//! The `QuorumController` as a state machine: each test drives it with requests and ticks and
//! compares the records (and responses) it returns whole. `Cluster` keeps the metadata log the
//! records would form and a follower's image replayed from it: every batch must replay without
//! error onto the replay of all earlier ones and leave the same image as the controller's.

use std::collections::BTreeMap;

use crate::controller::election::NO_LEADER;
use crate::controller::image::*;
use crate::controller::quorum::*;
use crate::controller::records::*;
use crate::controller::uuid::Uuid;

pub(super) const T0: u64 = 1_000;

pub(super) struct Cluster {
    pub(super) controller: QuorumController,
    pub(super) log: Vec<MetadataRecord>,
    pub(super) follower: MetadataImage,
    pub(super) now_ms: u64,
}

pub(super) fn incarnation(broker: i32) -> Uuid {
    Uuid::from_parts(0x1ac, broker as u64)
}

pub(super) fn log_dir(broker: i32) -> Uuid {
    Uuid::from_parts(0xd1, broker as u64)
}

pub(super) fn register_request(broker: i32, incarnation_id: Uuid) -> ControllerRequest {
    ControllerRequest::RegisterBroker {
        broker_id: broker,
        incarnation_id,
        host: format!("broker-{broker}"),
        port: 9092,
        log_dir: log_dir(broker),
    }
}

pub(super) fn heartbeat_request(broker: i32, epoch: i64, offset: i64) -> ControllerRequest {
    ControllerRequest::BrokerHeartbeat {
        broker_id: broker,
        broker_epoch: epoch,
        current_metadata_offset: offset,
        want_fence: false,
        want_shutdown: false,
    }
}

pub(super) fn heartbeat_response(
    is_caught_up: bool,
    is_fenced: bool,
    should_shut_down: bool,
) -> ControllerResponse {
    ControllerResponse::BrokerHeartbeat {
        error_code: error_code::NONE,
        is_caught_up,
        is_fenced,
        should_shut_down,
    }
}

pub(super) fn new_topic(name: &str, num_partitions: i32, replication_factor: i16) -> NewTopic {
    NewTopic {
        name: name.to_owned(),
        num_partitions,
        replication_factor,
        assignment: None,
        configs: BTreeMap::new(),
    }
}

pub(super) fn assigned_topic(name: &str, assignment: &[&[i32]]) -> NewTopic {
    NewTopic {
        assignment: Some(
            (0..)
                .zip(assignment)
                .map(|(p, replicas)| (p, replicas.to_vec()))
                .collect(),
        ),
        ..new_topic(name, -1, -1)
    }
}

pub(super) fn unclean(topic: NewTopic) -> NewTopic {
    let mut topic = topic;
    topic
        .configs
        .insert(UNCLEAN_LEADER_ELECTION_ENABLE.to_owned(), "true".to_owned());
    topic
}

pub(super) fn create(topics: Vec<NewTopic>) -> ControllerRequest {
    ControllerRequest::CreateTopics {
        topics,
        validate_only: false,
    }
}

pub(super) fn change(topic_id: Uuid, partition_id: i32) -> PartitionChangeRecord {
    PartitionChangeRecord {
        partition_id,
        topic_id,
        ..PartitionChangeRecord::default()
    }
}

pub(super) fn fence_record(broker: i32, epoch: i64) -> MetadataRecord {
    registration_change(broker, epoch, 1, 0)
}

pub(super) fn unfence_record(broker: i32, epoch: i64) -> MetadataRecord {
    registration_change(broker, epoch, -1, 0)
}

pub(super) fn registration_change(
    broker: i32,
    epoch: i64,
    fenced: i8,
    shutdown: i8,
) -> MetadataRecord {
    MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
        broker_id: broker,
        broker_epoch: epoch,
        fenced,
        in_controlled_shutdown: shutdown,
        log_dirs: vec![],
    })
}

pub(super) fn pc(record: PartitionChangeRecord) -> MetadataRecord {
    MetadataRecord::PartitionChange(record)
}

pub(super) fn alter(
    leader: i32,
    leader_epoch_of_broker: i64,
    topic_id: Uuid,
    data: AlterPartitionData,
) -> ControllerRequest {
    ControllerRequest::AlterPartition {
        broker_id: leader,
        broker_epoch: leader_epoch_of_broker,
        topics: vec![AlterPartitionTopic {
            topic_id,
            partitions: vec![data],
        }],
    }
}

/// The controller as before KIP-966, which the tests written before it describe: no ELR, and
/// the last ISR member stays in the ISR.
pub(super) fn without_elr() -> QuorumControllerConfig {
    QuorumControllerConfig {
        eligible_leader_replicas: false,
        ..QuorumControllerConfig::default()
    }
}

/// The controller with KIP-966's eligible leader replicas and `min.insync.replicas` as given.
pub(super) fn with_elr(min_insync_replicas: i32) -> QuorumControllerConfig {
    QuorumControllerConfig {
        eligible_leader_replicas: true,
        min_insync_replicas,
        ..QuorumControllerConfig::default()
    }
}

impl Cluster {
    /// A controller without ELR (`without_elr`).
    pub(super) fn new() -> Cluster {
        Cluster::with_config(without_elr())
    }

    /// Brokers `brokers` registered and unfenced, then `topic` created.
    pub(super) fn with_topic(brokers: &[i32], topic: NewTopic) -> (Cluster, Uuid) {
        let mut c = Cluster::new();
        c.start(brokers);
        let t = c.create(topic);
        (c, t)
    }

    pub(super) fn with_config(config: QuorumControllerConfig) -> Cluster {
        let mut controller = QuorumController::new(config, 7);
        controller.activate(T0, MetadataImage::default());
        Cluster {
            controller,
            log: Vec::new(),
            follower: MetadataImage::default(),
            now_ms: T0,
        }
    }

    pub(super) fn next_offset(&self) -> i64 {
        self.log.len() as i64
    }

    pub(super) fn handle(
        &mut self,
        request: ControllerRequest,
    ) -> (Vec<MetadataRecord>, ControllerResponse) {
        let next_offset = self.next_offset();
        let (records, response) = self.controller.handle(self.now_ms, next_offset, request);
        self.commit(&records);
        (records, response)
    }

    pub(super) fn tick(&mut self) -> Vec<MetadataRecord> {
        let next_offset = self.next_offset();
        let records = self.controller.tick(self.now_ms, next_offset);
        self.commit(&records);
        records
    }

    pub(super) fn advance(&mut self, ms: u64) -> Vec<MetadataRecord> {
        self.now_ms += ms;
        self.tick()
    }

    /// Appends the batch to the log, replaying each record onto the follower's image of all
    /// the earlier ones; a leader the batch elects must be unfenced when elected.
    pub(super) fn commit(&mut self, records: &[MetadataRecord]) {
        for record in records {
            check_new_leader_is_unfenced(&self.follower, record);
            if let Err(e) = self.follower.replay(record) {
                panic!(
                    "record {} ({record:?}) does not replay: {e}",
                    self.log.len()
                );
            }
            self.log.push(record.clone());
        }
        assert_eq!(
            &self.follower,
            self.controller.image(),
            "the controller's image is the replay of its records"
        );
    }

    pub(super) fn epoch(&self, broker: i32) -> i64 {
        self.controller.image().brokers[&broker].epoch
    }

    pub(super) fn register(&mut self, broker: i32) -> i64 {
        let (_, response) = self.handle(register_request(broker, incarnation(broker)));
        match response {
            ControllerResponse::RegisterBroker {
                error_code: 0,
                broker_epoch,
            } => broker_epoch,
            other => panic!("registration refused: {other:?}"),
        }
    }

    /// A heartbeat from a broker that has replayed the whole log.
    pub(super) fn heartbeat(&mut self, broker: i32) -> (Vec<MetadataRecord>, ControllerResponse) {
        self.heartbeat_wanting(broker, false, false)
    }

    pub(super) fn heartbeat_wanting(
        &mut self,
        broker: i32,
        want_fence: bool,
        want_shutdown: bool,
    ) -> (Vec<MetadataRecord>, ControllerResponse) {
        self.handle(ControllerRequest::BrokerHeartbeat {
            broker_id: broker,
            broker_epoch: self.epoch(broker),
            current_metadata_offset: self.next_offset(),
            want_fence,
            want_shutdown,
        })
    }

    /// Registered and unfenced.
    pub(super) fn start(&mut self, brokers: &[i32]) {
        for &broker in brokers {
            self.register(broker);
            self.heartbeat(broker);
            assert!(!self.controller.image().brokers[&broker].fenced);
        }
    }

    pub(super) fn create(&mut self, topic: NewTopic) -> Uuid {
        let (_, response) = self.handle(create(vec![topic]));
        match response {
            ControllerResponse::CreateTopics { topics } if topics[0].error_code == 0 => {
                topics[0].topic_id
            }
            other => panic!("topic not created: {other:?}"),
        }
    }

    pub(super) fn partition(&self, topic_id: Uuid, partition_id: i32) -> PartitionRegistration {
        self.controller
            .image()
            .partition(topic_id, partition_id)
            .expect("partition exists")
            .clone()
    }

    /// Lets `ms` pass with heartbeats from `alive` only, in steps shorter than a session.
    pub(super) fn pass_with(&mut self, alive: &[i32], ms: u64) -> Vec<MetadataRecord> {
        let mut records = Vec::new();
        let mut left = ms;
        while left > 0 {
            let step = left.min(2_000);
            left -= step;
            for &broker in alive {
                records.extend(self.heartbeat(broker).0);
            }
            records.extend(self.advance(step));
        }
        records
    }

    pub(super) fn alter_isr(
        &mut self,
        topic_id: Uuid,
        partition_id: i32,
        new_isr: &[i32],
    ) -> (Vec<MetadataRecord>, AlterPartitionResult) {
        let p = self.partition(topic_id, partition_id);
        let data = AlterPartitionData {
            partition_index: partition_id,
            leader_epoch: p.leader_epoch,
            new_isr: new_isr.iter().map(|&b| (b, self.epoch(b))).collect(),
            leader_recovery_state: 0,
            partition_epoch: p.partition_epoch,
        };
        let request = alter(p.leader, self.epoch(p.leader), topic_id, data);
        let (records, response) = self.handle(request);
        (records, alter_result(response))
    }
}

/// Brokers 1 and 2, `topic` on [1, 2] with its ISR shrunk to [1], then broker 1's session
/// lapses; with the records that wrote.
pub(super) fn last_isr_member_fenced(topic: NewTopic) -> (Cluster, Uuid, Vec<MetadataRecord>) {
    let (mut c, t) = Cluster::with_topic(&[1, 2], topic);
    c.alter_isr(t, 0, &[1]);
    let records = c.pass_with(&[2], 10_000);
    (c, t, records)
}

pub(super) fn alter_result(response: ControllerResponse) -> AlterPartitionResult {
    match response {
        ControllerResponse::AlterPartition {
            error_code: 0,
            mut topics,
        } => topics.remove(0).partitions.remove(0),
        other => panic!("not a per-partition AlterPartition answer: {other:?}"),
    }
}

pub(super) fn check_new_leader_is_unfenced(before: &MetadataImage, record: &MetadataRecord) {
    let (topic_id, partition_id, leader) = match record {
        MetadataRecord::Partition(r) => (r.topic_id, r.partition_id, Some(r.leader)),
        MetadataRecord::PartitionChange(r) => (r.topic_id, r.partition_id, r.leader),
        _ => return,
    };
    let previous = before.partition(topic_id, partition_id).map(|p| p.leader);
    if let Some(leader) = leader.filter(|&l| l != NO_LEADER && Some(l) != previous) {
        assert!(
            before.brokers.get(&leader).is_some_and(|b| !b.fenced),
            "{record:?} elects broker {leader}, not an unfenced broker"
        );
    }
}

pub(super) fn create_partitions(
    c: &mut Cluster,
    name: &str,
    count: i32,
    assignment: Option<Vec<Vec<i32>>>,
) -> (Vec<MetadataRecord>, i16) {
    let (records, response) = c.handle(ControllerRequest::CreatePartitions {
        topics: vec![CreatePartitionsTopic {
            name: name.to_owned(),
            count,
            assignment,
        }],
        validate_only: false,
    });
    let ControllerResponse::CreatePartitions { topics } = response else {
        panic!()
    };
    (records, topics[0].error_code)
}
