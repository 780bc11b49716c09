//! Leader election: clean, offline, unclean, preferred, and the records `PartitionChangeBuilder`
//! makes, replayed.

use super::image_tests::{partition_record, register};
use crate::controller::election::*;
use crate::controller::image::*;
use crate::controller::records::*;
use crate::controller::uuid::Uuid;

const TOPIC: Uuid = Uuid::from_parts(0xaaaa, 0x1);

fn alive(brokers: &'static [i32]) -> impl Fn(i32) -> bool {
    move |b| brokers.contains(&b)
}

fn partition(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionRegistration {
    let mut record = partition_record(0, replicas);
    record.isr = isr.to_vec();
    record.leader = leader;
    record.leader_epoch = 4;
    record.partition_epoch = 9;
    PartitionRegistration::from_record(&record).unwrap()
}

fn clean(leader: i32) -> ElectionResult {
    ElectionResult {
        leader,
        unclean: false,
    }
}

#[test]
fn the_current_leader_stays_while_it_is_valid() {
    let result = elect_leader(
        &[1, 2, 3],
        &[1, 2, 3],
        3,
        Election::Online,
        alive(&[1, 2, 3]),
    );
    assert_eq!(
        result,
        clean(3),
        "not the first replica: Kafka does not move a valid leader"
    );
}

#[test]
fn the_first_alive_isr_member_in_assignment_order_takes_over() {
    // Leader 1 is fenced; the ISR lists 3 before 2 but the assignment order decides.
    let result = elect_leader(&[1, 2, 3], &[1, 3, 2], 1, Election::Online, alive(&[2, 3]));
    assert_eq!(result, clean(2));
    // A replica outside the ISR is never a clean leader.
    let result = elect_leader(&[1, 2, 3], &[1, 3], 1, Election::Online, alive(&[2, 3]));
    assert_eq!(result, clean(3));
}

#[test]
fn no_alive_isr_member_means_offline_without_unclean_election() {
    let result = elect_leader(&[1, 2, 3], &[1], 1, Election::Online, alive(&[2, 3]));
    assert_eq!(result, clean(NO_LEADER));
}

#[test]
fn unclean_election_takes_the_first_alive_replica_outside_the_isr() {
    let result = elect_leader(&[1, 2, 3], &[1], 1, Election::Unclean, alive(&[3, 2]));
    assert_eq!(
        result,
        ElectionResult {
            leader: 2,
            unclean: true
        }
    );
    // Still clean when an ISR member is alive.
    let result = elect_leader(&[1, 2, 3], &[1, 3], 1, Election::Unclean, alive(&[2, 3]));
    assert_eq!(result, clean(3));
    // And offline when nobody is alive.
    let result = elect_leader(&[1, 2, 3], &[1], 1, Election::Unclean, alive(&[]));
    assert_eq!(result, clean(NO_LEADER));
}

#[test]
fn preferred_election() {
    // The preferred replica, alive and in the ISR, takes over from a valid leader.
    let result = elect_leader(
        &[1, 2, 3],
        &[1, 2, 3],
        2,
        Election::Preferred,
        alive(&[1, 2, 3]),
    );
    assert_eq!(result, clean(1));
    // Not in the ISR: the current leader stays.
    let result = elect_leader(
        &[1, 2, 3],
        &[2, 3],
        2,
        Election::Preferred,
        alive(&[1, 2, 3]),
    );
    assert_eq!(result, clean(2));
    // Neither: the next valid replica.
    let result = elect_leader(&[1, 2, 3], &[2, 3], 2, Election::Preferred, alive(&[1, 3]));
    assert_eq!(result, clean(3));
    let p = partition(&[1, 2, 3], &[2, 3], 2);
    assert!(!preferred_leader_available(&p, alive(&[1, 2, 3])));
    let p = partition(&[1, 2, 3], &[1, 2, 3], 2);
    assert!(preferred_leader_available(&p, alive(&[1, 2, 3])));
    assert!(!preferred_leader_available(&p, alive(&[2, 3])));
}

#[test]
fn nothing_to_change_builds_no_record() {
    let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
    let builder = PartitionChangeBuilder::new(&p, TOPIC, 0, alive(&[1, 2, 3]));
    assert_eq!(builder.build(), None);
}

#[test]
fn fencing_the_leader_moves_leadership_and_shrinks_the_isr() {
    let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
    let record = PartitionChangeBuilder::new(&p, TOPIC, 0, alive(&[2, 3]))
        .set_target_isr(vec![2, 3])
        .build()
        .expect("a change");
    let expected = PartitionChangeRecord {
        partition_id: 0,
        topic_id: TOPIC,
        isr: Some(vec![2, 3]),
        leader: Some(2),
        ..PartitionChangeRecord::default()
    };
    assert_eq!(record, expected);
    let next = p.merge(&record).unwrap();
    assert_eq!(
        (next.leader, next.leader_epoch, next.partition_epoch),
        (2, 5, 10)
    );
}

#[test]
fn an_isr_shrink_that_keeps_the_leader_changes_only_the_isr() {
    let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
    let record = PartitionChangeBuilder::new(&p, TOPIC, 0, alive(&[1, 2, 3]))
        .set_target_isr(vec![1, 2])
        .build()
        .expect("a change");
    assert_eq!((record.isr, record.leader), (Some(vec![1, 2]), None));
}

#[test]
fn losing_the_last_isr_member_leaves_it_in_the_isr_leaderless() {
    // Kafka without ELR never writes an empty ISR: the target [] is dropped, the leader goes.
    let p = partition(&[1, 2], &[1], 1);
    let record = PartitionChangeBuilder::new(&p, TOPIC, 0, alive(&[2]))
        .set_target_isr(vec![])
        .build()
        .expect("a change");
    assert_eq!((record.leader, record.isr.clone()), (Some(NO_LEADER), None));
    let next = p.merge(&record).unwrap();
    assert_eq!((next.leader, next.isr), (NO_LEADER, vec![1]));
}

#[test]
fn an_unclean_election_resets_the_isr_and_marks_recovering() {
    let p = partition(&[1, 2, 3], &[1], NO_LEADER);
    let record = PartitionChangeBuilder::new(&p, TOPIC, 0, alive(&[3]))
        .set_election(Election::Unclean)
        .build()
        .expect("a change");
    let expected = PartitionChangeRecord {
        partition_id: 0,
        topic_id: TOPIC,
        isr: Some(vec![3]),
        leader: Some(3),
        leader_recovery_state: Some(LeaderRecoveryState::Recovering as i8),
        ..PartitionChangeRecord::default()
    };
    assert_eq!(record, expected);
    let recovering = p.merge(&record).unwrap();
    assert_eq!(
        recovering.leader_recovery_state,
        LeaderRecoveryState::Recovering
    );
    // The recovered leader's AlterPartition sets RECOVERED back.
    let record = PartitionChangeBuilder::new(&recovering, TOPIC, 0, alive(&[3]))
        .set_target_leader_recovery_state(LeaderRecoveryState::Recovered)
        .build()
        .expect("a change");
    assert_eq!(
        (record.leader, record.leader_recovery_state),
        (None, Some(0))
    );
}

#[test]
fn the_same_partition_offline_without_unclean_election() {
    let p = partition(&[1, 2, 3], &[1], NO_LEADER);
    let builder = PartitionChangeBuilder::new(&p, TOPIC, 0, alive(&[3]));
    assert_eq!(
        builder.build(),
        None,
        "already leaderless: nothing to write"
    );
}

#[test]
fn a_story_fence_elect_recover_through_replay() {
    let mut image = MetadataImage::default();
    let unfence = |id: i32, epoch: i64| {
        MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            broker_id: id,
            broker_epoch: epoch,
            fenced: -1,
            in_controlled_shutdown: 0,
            log_dirs: vec![],
        })
    };
    for record in [
        register(1, 10),
        register(2, 20),
        unfence(1, 10),
        unfence(2, 20),
        MetadataRecord::Topic(TopicRecord {
            name: "t".to_owned(),
            topic_id: TOPIC,
        }),
        MetadataRecord::Partition(partition_record(0, &[1, 2])),
    ] {
        image.replay(&record).unwrap();
    }
    // Broker 1 is fenced: the controller removes it from the ISR and re-elects.
    let fence = MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
        fenced: 1,
        ..match unfence(1, 10) {
            MetadataRecord::BrokerRegistrationChange(r) => r,
            _ => unreachable!(),
        }
    });
    image.replay(&fence).unwrap();
    let is_active = |b: i32| image.brokers.get(&b).is_some_and(|r| !r.fenced);
    let p = image.partition(TOPIC, 0).unwrap();
    let change = PartitionChangeBuilder::new(p, TOPIC, 0, is_active)
        .set_target_isr(p.isr.iter().copied().filter(|&b| b != 1).collect())
        .build()
        .expect("a change");
    image
        .replay(&MetadataRecord::PartitionChange(change))
        .unwrap();
    let p = image.partition(TOPIC, 0).unwrap();
    assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (2, vec![2], 1));
}
