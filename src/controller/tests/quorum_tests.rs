//! The `QuorumController` as a state machine: each test drives it with requests and ticks and
//! compares the records (and responses) it returns whole. `Cluster` keeps the metadata log the
//! records would form and a follower's image replayed from it: every batch must replay without
//! error onto the replay of all earlier ones and leave the same image as the controller's.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::controller::election::Election;
use crate::controller::image::*;
use crate::controller::quorum::*;
use crate::controller::records::*;
use crate::controller::uuid::Uuid;

const T0: u64 = 1_000;

struct Cluster {
    controller: QuorumController,
    log: Vec<MetadataRecord>,
    follower: MetadataImage,
    now_ms: u64,
}

fn incarnation(broker: i32) -> Uuid {
    Uuid::from_parts(0x1ac, broker as u64)
}

fn log_dir(broker: i32) -> Uuid {
    Uuid::from_parts(0xd1, broker as u64)
}

fn register_request(broker: i32, incarnation_id: Uuid) -> ControllerRequest {
    ControllerRequest::RegisterBroker {
        broker_id: broker,
        incarnation_id,
        host: format!("broker-{broker}"),
        port: 9092,
        log_dir: log_dir(broker),
    }
}

fn heartbeat_request(broker: i32, epoch: i64, offset: i64) -> ControllerRequest {
    ControllerRequest::BrokerHeartbeat {
        broker_id: broker,
        broker_epoch: epoch,
        current_metadata_offset: offset,
        want_fence: false,
        want_shutdown: false,
    }
}

fn heartbeat_response(
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

fn new_topic(name: &str, num_partitions: i32, replication_factor: i16) -> NewTopic {
    NewTopic {
        name: name.to_owned(),
        num_partitions,
        replication_factor,
        assignment: None,
        configs: BTreeMap::new(),
    }
}

fn assigned_topic(name: &str, assignment: &[&[i32]]) -> NewTopic {
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

fn unclean(topic: NewTopic) -> NewTopic {
    let mut topic = topic;
    topic
        .configs
        .insert(UNCLEAN_LEADER_ELECTION_ENABLE.to_owned(), "true".to_owned());
    topic
}

fn create(topics: Vec<NewTopic>) -> ControllerRequest {
    ControllerRequest::CreateTopics {
        topics,
        validate_only: false,
    }
}

fn change(topic_id: Uuid, partition_id: i32) -> PartitionChangeRecord {
    PartitionChangeRecord {
        partition_id,
        topic_id,
        ..PartitionChangeRecord::default()
    }
}

fn fence_record(broker: i32, epoch: i64) -> MetadataRecord {
    registration_change(broker, epoch, 1, 0)
}

fn unfence_record(broker: i32, epoch: i64) -> MetadataRecord {
    registration_change(broker, epoch, -1, 0)
}

fn registration_change(broker: i32, epoch: i64, fenced: i8, shutdown: i8) -> MetadataRecord {
    MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
        broker_id: broker,
        broker_epoch: epoch,
        fenced,
        in_controlled_shutdown: shutdown,
        log_dirs: vec![],
    })
}

fn pc(record: PartitionChangeRecord) -> MetadataRecord {
    MetadataRecord::PartitionChange(record)
}

fn alter(
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

impl Cluster {
    fn new() -> Cluster {
        Cluster::with_config(QuorumControllerConfig::default())
    }

    /// Brokers `brokers` registered and unfenced, then `topic` created.
    fn with_topic(brokers: &[i32], topic: NewTopic) -> (Cluster, Uuid) {
        let mut c = Cluster::new();
        c.start(brokers);
        let t = c.create(topic);
        (c, t)
    }

    fn with_config(config: QuorumControllerConfig) -> Cluster {
        let mut controller = QuorumController::new(config, 7);
        controller.activate(T0, MetadataImage::default());
        Cluster {
            controller,
            log: Vec::new(),
            follower: MetadataImage::default(),
            now_ms: T0,
        }
    }

    fn next_offset(&self) -> i64 {
        self.log.len() as i64
    }

    fn handle(&mut self, request: ControllerRequest) -> (Vec<MetadataRecord>, ControllerResponse) {
        let next_offset = self.next_offset();
        let (records, response) = self.controller.handle(self.now_ms, next_offset, request);
        self.commit(&records);
        (records, response)
    }

    fn tick(&mut self) -> Vec<MetadataRecord> {
        let next_offset = self.next_offset();
        let records = self.controller.tick(self.now_ms, next_offset);
        self.commit(&records);
        records
    }

    fn advance(&mut self, ms: u64) -> Vec<MetadataRecord> {
        self.now_ms += ms;
        self.tick()
    }

    /// Appends the batch to the log, replaying each record onto the follower's image of all
    /// the earlier ones; a leader the batch elects must be unfenced when elected.
    fn commit(&mut self, records: &[MetadataRecord]) {
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

    fn epoch(&self, broker: i32) -> i64 {
        self.controller.image().brokers[&broker].epoch
    }

    fn register(&mut self, broker: i32) -> i64 {
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
    fn heartbeat(&mut self, broker: i32) -> (Vec<MetadataRecord>, ControllerResponse) {
        self.heartbeat_wanting(broker, false, false)
    }

    fn heartbeat_wanting(
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
    fn start(&mut self, brokers: &[i32]) {
        for &broker in brokers {
            self.register(broker);
            self.heartbeat(broker);
            assert!(!self.controller.image().brokers[&broker].fenced);
        }
    }

    fn create(&mut self, topic: NewTopic) -> Uuid {
        let (_, response) = self.handle(create(vec![topic]));
        match response {
            ControllerResponse::CreateTopics { topics } if topics[0].error_code == 0 => {
                topics[0].topic_id
            }
            other => panic!("topic not created: {other:?}"),
        }
    }

    fn partition(&self, topic_id: Uuid, partition_id: i32) -> PartitionRegistration {
        self.controller
            .image()
            .partition(topic_id, partition_id)
            .expect("partition exists")
            .clone()
    }

    /// Lets `ms` pass with heartbeats from `alive` only, in steps shorter than a session.
    fn pass_with(&mut self, alive: &[i32], ms: u64) -> Vec<MetadataRecord> {
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

    fn alter_isr(
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
fn last_isr_member_fenced(topic: NewTopic) -> (Cluster, Uuid, Vec<MetadataRecord>) {
    let (mut c, t) = Cluster::with_topic(&[1, 2], topic);
    c.alter_isr(t, 0, &[1]);
    let records = c.pass_with(&[2], 10_000);
    (c, t, records)
}

fn alter_result(response: ControllerResponse) -> AlterPartitionResult {
    match response {
        ControllerResponse::AlterPartition {
            error_code: 0,
            mut topics,
        } => topics.remove(0).partitions.remove(0),
        other => panic!("not a per-partition AlterPartition answer: {other:?}"),
    }
}

fn check_new_leader_is_unfenced(before: &MetadataImage, record: &MetadataRecord) {
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

use crate::controller::election::NO_LEADER;

// ---- brokers ----

#[test]
fn registration_gives_the_records_offset_as_epoch_and_a_fenced_broker() {
    let mut c = Cluster::new();
    c.log.extend([MetadataRecord::NoOp, MetadataRecord::NoOp]);
    let (records, response) = c.handle(register_request(1, incarnation(1)));
    assert_eq!(
        records,
        vec![MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: 1,
            is_migrating_zk_broker: false,
            incarnation_id: incarnation(1),
            broker_epoch: 2,
            endpoints: vec![BrokerEndpoint {
                name: "PLAINTEXT".to_owned(),
                host: "broker-1".to_owned(),
                port: 9092,
                security_protocol: 0,
            }],
            features: vec![],
            rack: None,
            fenced: true,
            in_controlled_shutdown: false,
            log_dirs: vec![log_dir(1)],
        })]
    );
    assert_eq!(
        response,
        ControllerResponse::RegisterBroker {
            error_code: 0,
            broker_epoch: 2
        }
    );
    assert!(c.controller.image().brokers[&1].fenced);
    assert!(c.controller.image().usable_brokers().is_empty());
}

#[test]
fn a_heartbeat_unfences_once_the_broker_has_replayed_its_registration() {
    let mut c = Cluster::new();
    let epoch = c.register(1);
    let (records, response) = c.handle(heartbeat_request(1, epoch, epoch - 1));
    assert_eq!(records, vec![]);
    assert_eq!(response, heartbeat_response(false, true, false));

    let (records, response) = c.handle(heartbeat_request(1, epoch, epoch));
    assert_eq!(records, vec![unfence_record(1, epoch)]);
    assert_eq!(response, heartbeat_response(true, false, false));

    let (records, response) = c.heartbeat(1);
    assert_eq!(records, vec![], "already unfenced");
    assert_eq!(response, heartbeat_response(true, false, false));
}

#[test]
fn heartbeats_of_unknown_brokers_and_stale_epochs_are_refused() {
    let mut c = Cluster::new();
    let epoch = c.register(1);
    let refused = |code| ControllerResponse::BrokerHeartbeat {
        error_code: code,
        is_caught_up: false,
        is_fenced: true,
        should_shut_down: false,
    };
    let (records, response) = c.handle(heartbeat_request(2, epoch, 10));
    assert_eq!(
        (records, response),
        (vec![], refused(error_code::BROKER_ID_NOT_REGISTERED))
    );
    let (records, response) = c.handle(heartbeat_request(1, epoch + 1, 10));
    assert_eq!(
        (records, response),
        (vec![], refused(error_code::STALE_BROKER_EPOCH))
    );
}

#[test]
fn another_incarnation_cannot_register_while_the_session_lives() {
    let mut c = Cluster::new();
    c.start(&[1]);
    let (records, response) = c.handle(register_request(1, Uuid::from_parts(9, 9)));
    assert_eq!(records, vec![]);
    assert_eq!(
        response,
        ControllerResponse::RegisterBroker {
            error_code: error_code::DUPLICATE_BROKER_REGISTRATION,
            broker_epoch: -1
        }
    );
    // The same incarnation may register again (a retried request).
    let (_, response) = c.handle(register_request(1, incarnation(1)));
    assert!(matches!(
        response,
        ControllerResponse::RegisterBroker { error_code: 0, .. }
    ));
    // Once the session expires, another incarnation may take the id.
    c.now_ms += 9_001;
    let (_, response) = c.handle(register_request(1, Uuid::from_parts(9, 9)));
    assert!(matches!(
        response,
        ControllerResponse::RegisterBroker { error_code: 0, .. }
    ));
}

#[test]
fn session_expiry_fences_and_moves_leadership_to_the_next_isr_replica() {
    let (mut c, t) = Cluster::with_topic(&[1, 2, 3], assigned_topic("t", &[&[1, 3, 2]]));
    let epoch1 = c.epoch(1);
    // 9 s without a heartbeat is still a session; fencing needs more than the timeout.
    let records = c.pass_with(&[2, 3], 9_000);
    assert_eq!(records, vec![]);
    let records = c.pass_with(&[2, 3], 1);
    assert_eq!(
        records,
        vec![
            pc(PartitionChangeRecord {
                isr: Some(vec![3, 2]),
                leader: Some(3),
                ..change(t, 0)
            }),
            fence_record(1, epoch1),
        ]
    );
    let p = c.partition(t, 0);
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (3, 1, 1));
    // A fenced broker whose session lapses again changes nothing.
    assert_eq!(c.pass_with(&[2, 3], 20_000), vec![]);
}

#[test]
fn the_last_isr_member_fenced_leaves_the_partition_leaderless_with_it_in_the_isr() {
    let (c, t, records) = last_isr_member_fenced(assigned_topic("t", &[&[1, 2]]));
    assert_eq!(
        records,
        vec![
            pc(PartitionChangeRecord {
                leader: Some(-1),
                ..change(t, 0)
            }),
            fence_record(1, c.epoch(1)),
        ]
    );
    let p = c.partition(t, 0);
    assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (-1, vec![1], 1));
}

#[test]
fn an_unclean_topic_elects_a_live_replica_outside_the_isr_and_marks_it_recovering() {
    let (c, t, records) = last_isr_member_fenced(unclean(assigned_topic("t", &[&[1, 2]])));
    assert_eq!(
        records,
        vec![
            pc(PartitionChangeRecord {
                isr: Some(vec![2]),
                leader: Some(2),
                leader_recovery_state: Some(1),
                ..change(t, 0)
            }),
            fence_record(1, c.epoch(1)),
        ]
    );
    assert_eq!(
        c.partition(t, 0).leader_recovery_state,
        LeaderRecoveryState::Recovering
    );
}

#[test]
fn the_cluster_default_allows_unclean_election_unless_the_topic_says_false() {
    let config = QuorumControllerConfig {
        unclean_leader_election: true,
        ..QuorumControllerConfig::default()
    };
    let mut c = Cluster::with_config(config);
    c.start(&[1, 2]);
    let mut clean = assigned_topic("clean", &[&[1, 2]]);
    clean.configs.insert(
        UNCLEAN_LEADER_ELECTION_ENABLE.to_owned(),
        "false".to_owned(),
    );
    let clean = c.create(clean);
    let dirty = c.create(assigned_topic("dirty", &[&[1, 2]]));
    c.alter_isr(clean, 0, &[1]);
    c.alter_isr(dirty, 0, &[1]);
    c.pass_with(&[2], 10_000);
    assert_eq!(c.partition(clean, 0).leader, -1);
    assert_eq!(c.partition(dirty, 0).leader, 2);
}

#[test]
fn a_tick_elects_unclean_leaders_once_a_topic_allows_it() {
    let (mut c, t, _) = last_isr_member_fenced(assigned_topic("t", &[&[1, 2]]));
    assert_eq!(c.partition(t, 0).leader, -1);
    let config = MetadataRecord::Config(ConfigRecord {
        resource_type: CONFIG_RESOURCE_TOPIC,
        resource_name: "t".to_owned(),
        name: UNCLEAN_LEADER_ELECTION_ENABLE.to_owned(),
        value: Some("true".to_owned()),
    });
    // A config written by someone else (the driver's log, replayed on activation).
    let mut image = c.controller.image().clone();
    image.replay(&config).unwrap();
    c.follower.replay(&config).unwrap();
    c.log.push(config);
    c.controller.activate(c.now_ms, image);
    let records = c.pass_with(&[2], 1);
    assert_eq!(
        records,
        vec![pc(PartitionChangeRecord {
            isr: Some(vec![2]),
            leader: Some(2),
            leader_recovery_state: Some(1),
            ..change(t, 0)
        })]
    );
}

#[test]
fn unfencing_a_broker_brings_back_its_leaderless_partitions() {
    let (mut c, t, _) = last_isr_member_fenced(assigned_topic("t", &[&[1, 2]]));
    assert!(c.controller.image().brokers[&1].fenced);
    let epoch1 = c.epoch(1);
    let (records, response) = c.heartbeat(1);
    assert_eq!(
        records,
        vec![
            unfence_record(1, epoch1),
            pc(PartitionChangeRecord {
                leader: Some(1),
                ..change(t, 0)
            }),
        ]
    );
    assert_eq!(response, heartbeat_response(true, false, false));
    assert_eq!(c.partition(t, 0).leader_epoch, 2);
}

#[test]
fn a_broker_registering_again_leaves_its_isrs_after_its_registration() {
    let (mut c, t) = Cluster::with_topic(&[1, 2], assigned_topic("t", &[&[1, 2]]));
    let epoch = c.next_offset();
    let (records, _) = c.handle(register_request(1, incarnation(1)));
    assert!(matches!(&records[0], MetadataRecord::RegisterBroker(r) if r.broker_epoch == epoch));
    assert_eq!(
        records[1..],
        [pc(PartitionChangeRecord {
            isr: Some(vec![2]),
            leader: Some(2),
            ..change(t, 0)
        })]
    );
}

#[test]
fn want_fence_fences_an_unfenced_broker() {
    let (mut c, t) = Cluster::with_topic(&[1, 2], assigned_topic("t", &[&[1, 2]]));
    let (records, response) = c.heartbeat_wanting(1, true, false);
    assert_eq!(
        records,
        vec![
            pc(PartitionChangeRecord {
                isr: Some(vec![2]),
                leader: Some(2),
                ..change(t, 0)
            }),
            fence_record(1, c.epoch(1)),
        ]
    );
    assert_eq!(response, heartbeat_response(true, true, false));
}

#[test]
fn controlled_shutdown_moves_leadership_then_lets_the_broker_go() {
    let (mut c, t) = Cluster::with_topic(&[1, 2], assigned_topic("t", &[&[1, 2]]));
    let epoch1 = c.epoch(1);
    let (records, response) = c.heartbeat_wanting(1, false, true);
    assert_eq!(
        records,
        vec![
            registration_change(1, epoch1, 0, 1),
            pc(PartitionChangeRecord {
                isr: Some(vec![2]),
                leader: Some(2),
                ..change(t, 0)
            }),
        ]
    );
    assert_eq!(response, heartbeat_response(true, false, false));
    // Not before broker 2 has replayed the move.
    let stale = heartbeat_request(2, c.epoch(2), 0);
    c.handle(stale);
    let (records, response) = c.heartbeat_wanting(1, false, true);
    assert_eq!(
        (records, response),
        (vec![], heartbeat_response(true, false, false))
    );
    c.heartbeat(2);
    let (records, response) = c.heartbeat_wanting(1, false, true);
    assert_eq!(records, vec![fence_record(1, epoch1)]);
    assert_eq!(response, heartbeat_response(true, true, true));
}

#[test]
fn a_broker_leading_nothing_shuts_down_at_once() {
    let mut c = Cluster::new();
    c.start(&[1, 2]);
    let (records, response) = c.heartbeat_wanting(1, false, true);
    assert_eq!(records, vec![fence_record(1, c.epoch(1))]);
    assert_eq!(response, heartbeat_response(true, true, true));
}

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

fn create_partitions(
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

// ---- AlterPartition ----

struct AlterSetup {
    c: Cluster,
    t: Uuid,
}

/// Replicas [1, 2, 3], all in sync, led by 1, after one ISR change: leader epoch 0,
/// partition epoch 1.
fn alter_setup(config: QuorumControllerConfig) -> AlterSetup {
    let mut c = Cluster::with_config(config);
    c.start(&[1, 2, 3]);
    let t = c.create(assigned_topic("t", &[&[1, 2, 3]]));
    c.alter_isr(t, 0, &[1, 2]);
    c.alter_isr(t, 0, &[1, 2, 3]);
    let p = c.partition(t, 0);
    assert_eq!((p.leader_epoch, p.partition_epoch), (0, 2));
    AlterSetup { c, t }
}

fn data(leader_epoch: i32, partition_epoch: i32, new_isr: &[(i32, i64)]) -> AlterPartitionData {
    AlterPartitionData {
        partition_index: 0,
        leader_epoch,
        new_isr: new_isr.to_vec(),
        leader_recovery_state: 0,
        partition_epoch,
    }
}

#[test]
fn alter_partition_shrinks_the_isr_and_bumps_the_partition_epoch() {
    let AlterSetup { mut c, t } = alter_setup(QuorumControllerConfig::default());
    let (e1, e3) = (c.epoch(1), c.epoch(3));
    let (records, response) = c.handle(alter(1, e1, t, data(0, 2, &[(1, e1), (3, e3)])));
    assert_eq!(
        records,
        vec![pc(PartitionChangeRecord {
            isr: Some(vec![1, 3]),
            ..change(t, 0)
        })]
    );
    assert_eq!(
        alter_result(response),
        AlterPartitionResult {
            partition_index: 0,
            error_code: 0,
            leader_id: 1,
            leader_epoch: 0,
            isr: vec![1, 3],
            partition_epoch: 3,
            leader_recovery_state: 0,
        }
    );
}

#[test]
fn alter_partition_refusals() {
    let AlterSetup { mut c, t } = alter_setup(QuorumControllerConfig::default());
    let (e1, e2, e3) = (c.epoch(1), c.epoch(2), c.epoch(3));
    use error_code::*;
    let (records, response) = c.handle(alter(1, e1 + 1, t, data(0, 2, &[(1, e1)])));
    assert_eq!(records, vec![]);
    assert_eq!(
        response,
        ControllerResponse::AlterPartition {
            error_code: STALE_BROKER_EPOCH,
            topics: vec![]
        }
    );
    let cases: Vec<(i32, i64, Uuid, AlterPartitionData, i16)> = vec![
        (
            1,
            e1,
            Uuid::from_parts(1, 1),
            data(0, 2, &[(1, e1)]),
            UNKNOWN_TOPIC_ID,
        ),
        (
            1,
            e1,
            t,
            AlterPartitionData {
                partition_index: 5,
                ..data(0, 2, &[(1, e1)])
            },
            UNKNOWN_TOPIC_OR_PARTITION,
        ),
        (2, e2, t, data(0, 2, &[(1, e1), (2, e2)]), INVALID_REQUEST),
        (1, e1, t, data(1, 2, &[(1, e1)]), NOT_CONTROLLER),
        (1, e1, t, data(0, 3, &[(1, e1)]), NOT_CONTROLLER),
        (1, e1, t, data(0, 1, &[(1, e1)]), INVALID_UPDATE_VERSION),
        (1, e1, t, data(0, 2, &[(1, e1), (4, -1)]), INVALID_REQUEST),
        (1, e1, t, data(0, 2, &[(1, e1), (1, e1)]), INVALID_REQUEST),
        (1, e1, t, data(0, 2, &[(2, e2), (3, e3)]), INVALID_REQUEST),
        (
            1,
            e1,
            t,
            AlterPartitionData {
                leader_recovery_state: 1,
                ..data(0, 2, &[(1, e1), (2, e2)])
            },
            INVALID_REQUEST,
        ),
        (
            1,
            e1,
            t,
            AlterPartitionData {
                leader_recovery_state: 1,
                ..data(0, 2, &[(1, e1)])
            },
            INVALID_REQUEST,
        ),
        (
            1,
            e1,
            t,
            data(0, 2, &[(1, e1), (2, e2 - 1)]),
            INELIGIBLE_REPLICA,
        ),
    ];
    for (broker, epoch, topic_id, d, expected) in cases {
        let (records, response) = c.handle(alter(broker, epoch, topic_id, d.clone()));
        assert_eq!(records, vec![], "{d:?}");
        assert_eq!(alter_result(response).error_code, expected, "{d:?}");
    }
    // A fenced member is ineligible.
    c.heartbeat_wanting(3, true, false);
    let p = c.partition(t, 0);
    let d = data(
        p.leader_epoch,
        p.partition_epoch,
        &[(1, e1), (2, e2), (3, e3)],
    );
    let (records, response) = c.handle(alter(1, e1, t, d));
    assert_eq!(
        (records, alter_result(response).error_code),
        (vec![], INELIGIBLE_REPLICA)
    );
    // An older leader epoch is fenced.
    let mut d = data(p.leader_epoch, p.partition_epoch, &[(1, e1)]);
    c.pass_with(&[2, 3], 10_000); // 1 fenced, 2 leads at leader epoch 1
    let p = c.partition(t, 0);
    assert_eq!(p.leader, 2);
    d.partition_epoch = p.partition_epoch;
    let d = AlterPartitionData {
        new_isr: vec![(2, e2)],
        ..d
    };
    let (records, response) = c.handle(alter(2, e2, t, d));
    assert_eq!(
        (records, alter_result(response).error_code),
        (vec![], FENCED_LEADER_EPOCH)
    );
}

#[test]
fn without_the_kip_903_check_a_stale_member_epoch_is_accepted() {
    let config = QuorumControllerConfig {
        broker_epoch_check: false,
        ..QuorumControllerConfig::default()
    };
    let (records, result) = rejoin_quoting_an_old_epoch(config);
    assert_eq!(records.len(), 1);
    assert_eq!(result.isr, vec![1, 3, 2]);

    // With the check, the same request is refused.
    let (records, result) = rejoin_quoting_an_old_epoch(QuorumControllerConfig::default());
    assert_eq!(
        (records, result.error_code),
        (vec![], error_code::INELIGIBLE_REPLICA)
    );
}

/// Broker 2 restarts; the leader asks for it back in the ISR, still quoting its old epoch.
fn rejoin_quoting_an_old_epoch(
    config: QuorumControllerConfig,
) -> (Vec<MetadataRecord>, AlterPartitionResult) {
    let AlterSetup { mut c, t } = alter_setup(config);
    let e1 = c.epoch(1);
    let old_e2 = c.epoch(2);
    c.handle(register_request(2, incarnation(2)));
    c.heartbeat(2);
    let p = c.partition(t, 0);
    assert_eq!(p.isr, vec![1, 3], "re-registration took 2 out of the ISR");
    let d = data(
        p.leader_epoch,
        p.partition_epoch,
        &[(1, e1), (3, c.epoch(3)), (2, old_e2)],
    );
    let (records, response) = c.handle(alter(1, e1, t, d));
    (records, alter_result(response))
}

#[test]
fn a_recovered_leader_clears_recovering() {
    let (mut c, t, _) = last_isr_member_fenced(unclean(assigned_topic("t", &[&[1, 2]])));
    let p = c.partition(t, 0);
    assert_eq!(
        (p.leader, p.leader_recovery_state),
        (2, LeaderRecoveryState::Recovering)
    );
    let e2 = c.epoch(2);
    let d = AlterPartitionData {
        leader_recovery_state: 0,
        ..data(p.leader_epoch, p.partition_epoch, &[(2, e2)])
    };
    let (records, _) = c.handle(alter(2, e2, t, d));
    assert_eq!(
        records,
        vec![pc(PartitionChangeRecord {
            leader_recovery_state: Some(0),
            ..change(t, 0)
        })]
    );
}

// ---- elections ----

fn elect(
    c: &mut Cluster,
    election: Election,
    partitions: Option<Vec<(String, i32)>>,
) -> (Vec<MetadataRecord>, Vec<(String, i32, i16)>) {
    let (records, response) = c.handle(ControllerRequest::ElectLeaders {
        election,
        partitions,
    });
    let ControllerResponse::ElectLeaders {
        error_code: 0,
        results,
    } = response
    else {
        panic!("{response:?}")
    };
    (
        records,
        results
            .into_iter()
            .map(|r| (r.topic, r.partition, r.error_code))
            .collect(),
    )
}

fn tp(topic: &str, partition: i32) -> (String, i32) {
    (topic.to_owned(), partition)
}

#[test]
fn preferred_election() {
    let (mut c, t) = Cluster::with_topic(&[1, 2], assigned_topic("t", &[&[1, 2], &[2, 1]]));
    // Broker 1 bounces: partition 0 moves to 2, without 1 in its ISR.
    c.heartbeat_wanting(1, true, false);
    c.heartbeat(1);
    use error_code::*;
    // Partition 1 is led by its preferred replica: left out of an election of all.
    let (records, results) = elect(&mut c, Election::Preferred, None);
    assert_eq!(records, vec![]);
    assert_eq!(
        results,
        vec![("t".to_owned(), 0, PREFERRED_LEADER_NOT_AVAILABLE)]
    );
    // 1 back in the ISR.
    let (_, r) = c.alter_isr(t, 0, &[2, 1]);
    assert_eq!(r.leader_id, 2);
    let (records, results) = elect(
        &mut c,
        Election::Preferred,
        Some(vec![tp("t", 0), tp("t", 1), tp("t", 2), tp("u", 0)]),
    );
    assert_eq!(
        records,
        vec![pc(PartitionChangeRecord {
            leader: Some(1),
            ..change(t, 0)
        })]
    );
    assert_eq!(
        results,
        vec![
            ("t".to_owned(), 0, NONE),
            ("t".to_owned(), 1, ELECTION_NOT_NEEDED),
            ("t".to_owned(), 2, UNKNOWN_TOPIC_OR_PARTITION),
            ("u".to_owned(), 0, UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    assert_eq!(c.partition(t, 0).leader_epoch, 2);
}

#[test]
fn unclean_election() {
    let (mut c, t) = Cluster::with_topic(&[1, 2], assigned_topic("t", &[&[1, 2]]));
    c.alter_isr(t, 0, &[1]);
    use error_code::*;
    let (records, results) = elect(&mut c, Election::Unclean, Some(vec![tp("t", 0)]));
    assert_eq!(
        (records, results),
        (vec![], vec![("t".to_owned(), 0, ELECTION_NOT_NEEDED)])
    );
    c.heartbeat_wanting(1, true, false);
    assert_eq!(c.partition(t, 0).leader, -1);
    let (records, results) = elect(&mut c, Election::Unclean, Some(vec![tp("t", 0)]));
    assert_eq!(
        records,
        vec![pc(PartitionChangeRecord {
            isr: Some(vec![2]),
            leader: Some(2),
            leader_recovery_state: Some(1),
            ..change(t, 0)
        })]
    );
    assert_eq!(results, vec![("t".to_owned(), 0, NONE)]);
    // Nobody to elect.
    c.heartbeat_wanting(2, true, false);
    let (records, results) = elect(&mut c, Election::Unclean, Some(vec![tp("t", 0)]));
    assert_eq!(
        (records, results),
        (
            vec![],
            vec![("t".to_owned(), 0, ELIGIBLE_LEADERS_NOT_AVAILABLE)]
        )
    );
}

#[test]
fn the_auto_rebalance_runs_each_check_interval() {
    let (mut c, t) = Cluster::with_topic(&[1, 2], assigned_topic("t", &[&[1, 2]]));
    c.heartbeat_wanting(1, true, false);
    c.heartbeat(1);
    c.alter_isr(t, 0, &[2, 1]);
    assert_eq!(c.partition(t, 0).leader, 2);
    // The timer started at activation (T0): due at T0 + 300 s.
    let before = T0 + 300_000 - c.now_ms - 1;
    assert_eq!(c.pass_with(&[1, 2], before), vec![]);
    let records = c.pass_with(&[1, 2], 1);
    assert_eq!(
        records,
        vec![pc(PartitionChangeRecord {
            leader: Some(1),
            ..change(t, 0)
        })]
    );
}

// ---- reassignment ----

fn reassign(
    c: &mut Cluster,
    topic: &str,
    partition: i32,
    replicas: Option<Vec<i32>>,
) -> (Vec<MetadataRecord>, i16) {
    let (records, response) = c.handle(ControllerRequest::AlterPartitionReassignments {
        reassignments: vec![PartitionReassignment {
            topic: topic.to_owned(),
            partition,
            replicas,
        }],
    });
    let ControllerResponse::AlterPartitionReassignments {
        error_code: 0,
        results,
    } = response
    else {
        panic!("{response:?}")
    };
    (records, results[0].error_code)
}

#[test]
fn a_reassignment_adds_replicas_then_completes_when_they_join_the_isr() {
    let (mut c, t) = Cluster::with_topic(&[1, 2, 3], assigned_topic("t", &[&[1, 2]]));
    let (records, code) = reassign(&mut c, "t", 0, Some(vec![2, 3]));
    assert_eq!(code, 0);
    assert_eq!(
        records,
        vec![pc(PartitionChangeRecord {
            replicas: Some(vec![2, 3, 1]),
            removing_replicas: Some(vec![1]),
            adding_replicas: Some(vec![3]),
            ..change(t, 0)
        })]
    );
    let p = c.partition(t, 0);
    assert_eq!((p.leader, p.leader_epoch), (1, 0));
    // The leader adds 3 to the ISR: the reassignment completes and 1, removed, stops leading.
    let (e1, e2, e3) = (c.epoch(1), c.epoch(2), c.epoch(3));
    let d = data(
        p.leader_epoch,
        p.partition_epoch,
        &[(1, e1), (2, e2), (3, e3)],
    );
    let (records, response) = c.handle(alter(1, e1, t, d));
    assert_eq!(
        records,
        vec![pc(PartitionChangeRecord {
            isr: Some(vec![2, 3]),
            leader: Some(2),
            replicas: Some(vec![2, 3]),
            removing_replicas: Some(vec![]),
            adding_replicas: Some(vec![]),
            ..change(t, 0)
        })]
    );
    assert_eq!(
        alter_result(response).error_code,
        error_code::NEW_LEADER_ELECTED
    );
    let p = c.partition(t, 0);
    assert_eq!(
        (p.replicas.clone(), p.leader, p.leader_epoch),
        (vec![2, 3], 2, 1)
    );
}

#[test]
fn a_reassignment_within_the_isr_completes_at_once() {
    let (mut c, t) = Cluster::with_topic(&[1, 2, 3], assigned_topic("t", &[&[1, 2, 3]]));
    let (records, _) = reassign(&mut c, "t", 0, Some(vec![3, 2, 1]));
    assert_eq!(
        records,
        vec![pc(PartitionChangeRecord {
            replicas: Some(vec![3, 2, 1]),
            ..change(t, 0)
        })]
    );
    // Dropping a replica bumps the leader epoch even though the leader stays.
    let (records, _) = reassign(&mut c, "t", 0, Some(vec![1, 3]));
    assert_eq!(
        records,
        vec![pc(PartitionChangeRecord {
            isr: Some(vec![1, 3]),
            leader: Some(1),
            replicas: Some(vec![1, 3]),
            ..change(t, 0)
        })]
    );
    let (records, code) = reassign(&mut c, "t", 0, Some(vec![1, 3]));
    assert_eq!((records, code), (vec![], 0), "nothing to change");
}

#[test]
fn reassignment_cancel_and_refusals() {
    let (mut c, t) = Cluster::with_topic(&[1, 2, 3], assigned_topic("t", &[&[1, 2]]));
    use error_code::*;
    assert_eq!(
        reassign(&mut c, "t", 0, None),
        (vec![], NO_REASSIGNMENT_IN_PROGRESS)
    );
    assert_eq!(
        reassign(&mut c, "t", 0, Some(vec![1, 9])),
        (vec![], INVALID_REPLICA_ASSIGNMENT)
    );
    assert_eq!(
        reassign(&mut c, "t", 0, Some(vec![1, 1])),
        (vec![], INVALID_REPLICA_ASSIGNMENT)
    );
    assert_eq!(
        reassign(&mut c, "t", 1, Some(vec![1])),
        (vec![], UNKNOWN_TOPIC_OR_PARTITION)
    );
    assert_eq!(
        reassign(&mut c, "u", 0, Some(vec![1])),
        (vec![], UNKNOWN_TOPIC_OR_PARTITION)
    );
    reassign(&mut c, "t", 0, Some(vec![3, 2]));
    assert_eq!(c.partition(t, 0).replicas, vec![3, 2, 1]);
    // Back to the replicas less those being added (Kafka keeps the reassignment's order).
    let (records, code) = reassign(&mut c, "t", 0, None);
    assert_eq!(code, NONE);
    assert_eq!(
        records,
        vec![pc(PartitionChangeRecord {
            leader: Some(1),
            replicas: Some(vec![2, 1]),
            removing_replicas: Some(vec![]),
            adding_replicas: Some(vec![]),
            ..change(t, 0)
        })]
    );
    let p = c.partition(t, 0);
    assert_eq!(
        (p.replicas.clone(), p.isr.clone(), p.leader),
        (vec![2, 1], vec![1, 2], 1)
    );
}

#[test]
fn an_inactive_controller_answers_not_controller_and_writes_nothing() {
    let mut c = Cluster::new();
    c.start(&[1]);
    c.controller.deactivate();
    assert!(!c.controller.is_active());
    let (records, response) = c.handle(register_request(2, incarnation(2)));
    assert_eq!(records, vec![]);
    assert_eq!(
        response,
        ControllerResponse::RegisterBroker {
            error_code: error_code::NOT_CONTROLLER,
            broker_epoch: -1
        }
    );
    let (_, response) = c.handle(create(vec![new_topic("t", 1, 1)]));
    assert!(
        matches!(response, ControllerResponse::CreateTopics { topics } if topics[0].error_code == error_code::NOT_CONTROLLER)
    );
    let (_, response) = c.handle(ControllerRequest::ElectLeaders {
        election: Election::Preferred,
        partitions: None,
    });
    assert!(matches!(
        response,
        ControllerResponse::ElectLeaders {
            error_code: error_code::NOT_CONTROLLER,
            ..
        }
    ));
    c.now_ms += 100_000;
    assert_eq!(c.tick(), vec![]);
    // Failover: sessions start afresh, so nobody is fenced at once.
    let image = c.controller.image().clone();
    c.controller.activate(c.now_ms, image);
    assert_eq!(c.advance(9_000), vec![]);
    assert_eq!(
        c.advance(1).len(),
        1,
        "broker 1 fenced once its new session expires"
    );
}

// ---- random request sequences ----

#[derive(Clone, Debug)]
enum Op {
    Register {
        broker: i32,
        new_incarnation: bool,
    },
    Heartbeat {
        broker: i32,
        caught_up: bool,
        want_fence: bool,
        want_shutdown: bool,
        stale: bool,
    },
    Advance {
        ms: u64,
    },
    Create {
        topic: usize,
        partitions: i32,
        rf: i16,
        unclean: bool,
    },
    Delete {
        topic: usize,
    },
    AddPartitions {
        topic: usize,
        more: i32,
    },
    AlterIsr {
        pick: usize,
        members: u8,
        stale_epoch: bool,
    },
    Elect {
        unclean: bool,
    },
    Reassign {
        pick: usize,
        replicas: Vec<i32>,
    },
    Cancel {
        pick: usize,
    },
}

const BROKERS: i32 = 4;
const TOPICS: [&str; 3] = ["a", "b", "c"];

fn op() -> impl Strategy<Value = Op> {
    let broker = 1..=BROKERS;
    prop_oneof![
        1 => (broker.clone(), any::<bool>()).prop_map(|(broker, new_incarnation)| Op::Register { broker, new_incarnation }),
        3 => (broker.clone(), prop::bool::weighted(0.8), prop::bool::weighted(0.05), prop::bool::weighted(0.05), prop::bool::weighted(0.05))
            .prop_map(|(broker, caught_up, want_fence, want_shutdown, stale)| Op::Heartbeat { broker, caught_up, want_fence, want_shutdown, stale }),
        1 => (0u64..6_000).prop_map(|ms| Op::Advance { ms }),
        1 => (0..TOPICS.len(), 1i32..4, 1i16..4, any::<bool>()).prop_map(|(topic, partitions, rf, unclean)| Op::Create { topic, partitions, rf, unclean }),
        1 => (0..TOPICS.len()).prop_map(|topic| Op::Delete { topic }),
        1 => (0..TOPICS.len(), 1i32..3).prop_map(|(topic, more)| Op::AddPartitions { topic, more }),
        3 => (any::<usize>(), any::<u8>(), prop::bool::weighted(0.1)).prop_map(|(pick, members, stale_epoch)| Op::AlterIsr { pick, members, stale_epoch }),
        1 => any::<bool>().prop_map(|unclean| Op::Elect { unclean }),
        1 => (any::<usize>(), prop::collection::vec(broker.clone(), 1..4)).prop_map(|(pick, replicas)| Op::Reassign { pick, replicas }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
    ]
}

impl Cluster {
    fn all_partitions(&self) -> Vec<(Uuid, i32)> {
        self.controller
            .image()
            .topics
            .values()
            .flat_map(|t| t.partitions.keys().map(move |&p| (t.id, p)))
            .collect()
    }

    fn pick(&self, pick: usize) -> Option<(Uuid, i32)> {
        let all = self.all_partitions();
        (!all.is_empty()).then(|| all[pick % all.len()])
    }

    fn topic_of(&self, topic_id: Uuid) -> String {
        self.controller.image().topics[&topic_id].name.clone()
    }

    fn apply(&mut self, op: &Op) {
        let image = self.controller.image();
        match op.clone() {
            Op::Register {
                broker,
                new_incarnation,
            } => {
                let id = if new_incarnation {
                    Uuid::from_parts(self.now_ms, broker as u64)
                } else {
                    incarnation(broker)
                };
                self.handle(register_request(broker, id));
            }
            Op::Heartbeat {
                broker,
                caught_up,
                want_fence,
                want_shutdown,
                stale,
            } => {
                let Some(registration) = image.brokers.get(&broker) else {
                    return;
                };
                let epoch = if stale {
                    registration.epoch - 1
                } else {
                    registration.epoch
                };
                let offset = if caught_up {
                    self.next_offset()
                } else {
                    registration.epoch - 1
                };
                self.handle(ControllerRequest::BrokerHeartbeat {
                    broker_id: broker,
                    broker_epoch: epoch,
                    current_metadata_offset: offset,
                    want_fence,
                    want_shutdown,
                });
            }
            Op::Advance { ms } => {
                self.advance(ms);
            }
            Op::Create {
                topic,
                partitions,
                rf,
                unclean: u,
            } => {
                let t = new_topic(TOPICS[topic], partitions, rf);
                self.handle(create(vec![if u { unclean(t) } else { t }]));
            }
            Op::Delete { topic } => {
                self.handle(ControllerRequest::DeleteTopics {
                    names: vec![TOPICS[topic].to_owned()],
                });
            }
            Op::AddPartitions { topic, more } => {
                let Some(t) = image.topic_by_name(TOPICS[topic]) else {
                    return;
                };
                let count = t.partitions.len() as i32 + more;
                create_partitions(self, TOPICS[topic], count, None);
            }
            Op::AlterIsr {
                pick,
                members,
                stale_epoch,
            } => {
                let Some((topic_id, partition_id)) = self.pick(pick) else {
                    return;
                };
                let p = self.partition(topic_id, partition_id);
                if p.leader == NO_LEADER {
                    return;
                }
                let new_isr: Vec<(i32, i64)> = p
                    .replicas
                    .iter()
                    .enumerate()
                    .filter(|&(i, &r)| r == p.leader || members & (1 << i) != 0)
                    .map(|(_, &r)| {
                        let epoch = image.brokers.get(&r).map_or(-1, |b| b.epoch);
                        (r, if stale_epoch { epoch - 1 } else { epoch })
                    })
                    .collect();
                let leader_epoch = image.brokers.get(&p.leader).map_or(-1, |b| b.epoch);
                let d = AlterPartitionData {
                    partition_index: partition_id,
                    leader_epoch: p.leader_epoch,
                    new_isr,
                    leader_recovery_state: 0,
                    partition_epoch: p.partition_epoch,
                };
                self.handle(alter(p.leader, leader_epoch, topic_id, d));
            }
            Op::Elect { unclean } => {
                let election = if unclean {
                    Election::Unclean
                } else {
                    Election::Preferred
                };
                self.handle(ControllerRequest::ElectLeaders {
                    election,
                    partitions: None,
                });
            }
            Op::Reassign { pick, replicas } => self.reassign_pick(pick, Some(replicas)),
            Op::Cancel { pick } => self.reassign_pick(pick, None),
        }
    }

    /// Reassigns (or with `None` cancels the reassignment of) the picked partition, if any.
    fn reassign_pick(&mut self, pick: usize, replicas: Option<Vec<i32>>) {
        let Some((topic_id, partition)) = self.pick(pick) else {
            return;
        };
        let topic = self.topic_of(topic_id);
        self.handle(ControllerRequest::AlterPartitionReassignments {
            reassignments: vec![PartitionReassignment {
                topic,
                partition,
                replicas,
            }],
        });
    }
}

/// What must hold of every partition after every batch.
fn check_invariants(image: &MetadataImage, epochs: &mut BTreeMap<(Uuid, i32), (i32, i32)>) {
    for topic in image.topics.values() {
        for (&id, p) in &topic.partitions {
            let mut distinct = p.replicas.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(
                distinct.len(),
                p.replicas.len(),
                "duplicate replicas: {p:?}"
            );
            assert!(
                p.isr.iter().all(|r| p.replicas.contains(r)),
                "ISR ⊄ replicas: {p:?}"
            );
            assert!(
                p.leader == NO_LEADER || p.isr.contains(&p.leader),
                "leader ∉ ISR: {p:?}"
            );
            if p.leader != NO_LEADER {
                assert!(
                    image.brokers.get(&p.leader).is_some_and(|b| !b.fenced),
                    "leader {} is not an unfenced broker: {p:?}",
                    p.leader
                );
            }
            let key = (topic.id, id);
            if let Some(&(leader_epoch, partition_epoch)) = epochs.get(&key) {
                assert!(
                    p.leader_epoch >= leader_epoch,
                    "leader epoch went down: {p:?}"
                );
                assert!(
                    p.partition_epoch >= partition_epoch,
                    "partition epoch went down: {p:?}"
                );
            }
            epochs.insert(key, (p.leader_epoch, p.partition_epoch));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_requests_keep_the_partition_invariants(ops in prop::collection::vec(op(), 1..120)) {
        let mut c = Cluster::new();
        c.start(&[1, 2, 3]);
        let mut epochs = BTreeMap::new();
        for op in &ops {
            c.apply(op);
            check_invariants(c.controller.image(), &mut epochs);
        }
    }
}

#[test]
fn error_codes_are_kafkas() {
    use error_code::*;
    use kafka_protocol::error::ResponseError as E;
    let pairs = [
        (UNKNOWN_TOPIC_OR_PARTITION, E::UnknownTopicOrPartition),
        (NOT_LEADER_OR_FOLLOWER, E::NotLeaderOrFollower),
        (INVALID_TOPIC_EXCEPTION, E::InvalidTopicException),
        (TOPIC_ALREADY_EXISTS, E::TopicAlreadyExists),
        (INVALID_PARTITIONS, E::InvalidPartitions),
        (INVALID_REPLICATION_FACTOR, E::InvalidReplicationFactor),
        (INVALID_REPLICA_ASSIGNMENT, E::InvalidReplicaAssignment),
        (NOT_CONTROLLER, E::NotController),
        (INVALID_REQUEST, E::InvalidRequest),
        (FENCED_LEADER_EPOCH, E::FencedLeaderEpoch),
        (STALE_BROKER_EPOCH, E::StaleBrokerEpoch),
        (
            PREFERRED_LEADER_NOT_AVAILABLE,
            E::PreferredLeaderNotAvailable,
        ),
        (
            ELIGIBLE_LEADERS_NOT_AVAILABLE,
            E::EligibleLeadersNotAvailable,
        ),
        (ELECTION_NOT_NEEDED, E::ElectionNotNeeded),
        (NO_REASSIGNMENT_IN_PROGRESS, E::NoReassignmentInProgress),
        (INVALID_UPDATE_VERSION, E::InvalidUpdateVersion),
        (UNKNOWN_TOPIC_ID, E::UnknownTopicId),
        (
            DUPLICATE_BROKER_REGISTRATION,
            E::DuplicateBrokerRegistration,
        ),
        (BROKER_ID_NOT_REGISTERED, E::BrokerIdNotRegistered),
        (INELIGIBLE_REPLICA, E::IneligibleReplica),
        (NEW_LEADER_ELECTED, E::NewLeaderElected),
    ];
    for (ours, kafkas) in pairs {
        assert_eq!(ours, kafkas.code(), "{kafkas:?}");
    }
}
