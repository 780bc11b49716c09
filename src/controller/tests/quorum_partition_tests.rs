//! The `QuorumController`'s partitions: AlterPartition, leader elections and reassignment.

use super::quorum_support::*;
use crate::controller::election::Election;
use crate::controller::image::*;
use crate::controller::quorum::*;
use crate::controller::records::*;
use crate::controller::uuid::Uuid;

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
    let AlterSetup { mut c, t } = alter_setup(without_elr());
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
    let AlterSetup { mut c, t } = alter_setup(without_elr());
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
        ..without_elr()
    };
    let (records, result) = rejoin_quoting_an_old_epoch(config);
    assert_eq!(records.len(), 1);
    assert_eq!(result.isr, vec![1, 3, 2]);

    // With the check, the same request is refused.
    let (records, result) = rejoin_quoting_an_old_epoch(without_elr());
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
