//! The `QuorumController`'s brokers: registration, heartbeats and sessions, fencing and
//! controlled shutdown; and a controller that is not active.

use super::quorum_support::*;
use crate::controller::election::Election;
use crate::controller::image::*;
use crate::controller::quorum::*;
use crate::controller::records::*;
use crate::controller::uuid::Uuid;

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
        ..without_elr()
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

// ---- an inactive controller ----

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

// ---- error codes ----

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
