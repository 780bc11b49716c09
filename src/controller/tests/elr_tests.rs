//! KIP-966's eligible leader replicas: the ELR an ISR shrink below `min.insync.replicas` leaves,
//! the clean election from it once the ISR is empty, unclean restarts leaving it, the last known
//! leader, and the controller without it (the flag off), where none of this happens.

use super::image_tests::partition_record;
use super::quorum_support::*;
use crate::controller::election::*;
use crate::controller::image::*;
use crate::controller::quorum::*;
use crate::controller::records::*;
use crate::controller::uuid::Uuid;

const TOPIC: Uuid = Uuid::from_parts(0xaaaa, 0x1);

fn alive(brokers: &'static [i32]) -> impl Fn(i32) -> bool {
    move |b| brokers.contains(&b)
}

fn clean(leader: i32) -> ElectionResult {
    ElectionResult {
        leader,
        unclean: false,
    }
}

/// A registration as replay leaves it: leader epoch 4, partition epoch 9.
fn partition(isr: &[i32], elr: &[i32], leader: i32, last_known: &[i32]) -> PartitionRegistration {
    let mut record = partition_record(0, &[1, 2, 3]);
    record.isr = isr.to_vec();
    record.leader = leader;
    record.leader_epoch = 4;
    record.partition_epoch = 9;
    record.eligible_leader_replicas = Some(elr.to_vec());
    record.last_known_elr = Some(last_known.to_vec());
    PartitionRegistration::from_record(&record).unwrap()
}

fn topic_change() -> PartitionChangeRecord {
    PartitionChangeRecord {
        partition_id: 0,
        topic_id: TOPIC,
        ..PartitionChangeRecord::default()
    }
}

// ---- the election ----

#[test]
fn an_elr_member_is_a_valid_leader_only_while_the_isr_is_empty() {
    let elr = EligibleLeaders {
        elr: &[2],
        last_known_leader: None,
    };
    let elect = |isr: &[i32], election| {
        elect_leader_with_elr(&[1, 2, 3], isr, elr, NO_LEADER, election, alive(&[2, 3]))
    };
    // ELR never pre-empts an ISR member, even a dead one: the partition stays offline.
    assert_eq!(elect(&[1], Election::Online), clean(NO_LEADER));
    // With the ISR empty it is a clean leader.
    assert_eq!(elect(&[], Election::Online), clean(2));
    assert_eq!(elect(&[], Election::Preferred), clean(2));
    // An unclean election with a dead ISR takes the first acceptable replica.
    assert_eq!(
        elect(&[1], Election::Unclean),
        ElectionResult {
            leader: 2,
            unclean: true
        }
    );
}

#[test]
fn the_last_known_leader_is_elected_uncleanly_once_isr_and_elr_are_empty() {
    let with = |elr: &'static [i32]| EligibleLeaders {
        elr,
        last_known_leader: Some(3),
    };
    let unclean = |leader| ElectionResult {
        leader,
        unclean: true,
    };
    let elect = |isr: &[i32], elr, election, acceptable: &'static [i32]| {
        elect_leader_with_elr(&[1, 2, 3], isr, elr, NO_LEADER, election, alive(acceptable))
    };
    // Before any unclean candidate, even with unclean election disabled.
    assert_eq!(elect(&[], with(&[]), Election::Online, &[2, 3]), unclean(3));
    assert_eq!(
        elect(&[], with(&[]), Election::Unclean, &[2, 3]),
        unclean(3)
    );
    assert_eq!(
        elect(&[], with(&[]), Election::Preferred, &[1, 3]),
        unclean(3)
    );
    // Only while acceptable (Kafka 4.1's KAFKA-19522 fix).
    assert_eq!(
        elect(&[], with(&[]), Election::Online, &[1, 2]),
        clean(NO_LEADER)
    );
    // Not while anyone is left in the ISR or the ELR.
    assert_eq!(
        elect(&[], with(&[1]), Election::Online, &[2, 3]),
        clean(NO_LEADER)
    );
    assert_eq!(
        elect(&[1], with(&[]), Election::Online, &[2, 3]),
        clean(NO_LEADER)
    );
}

// ---- the builder ----

#[test]
fn the_last_isr_member_leaving_empties_the_isr_only_with_elr() {
    let p = partition(&[1], &[], 1, &[]);
    let without = PartitionChangeBuilder::new(&p, TOPIC, 0, alive(&[2, 3]))
        .set_target_isr(vec![])
        .build();
    assert_eq!(
        without,
        Some(PartitionChangeRecord {
            leader: Some(NO_LEADER),
            ..topic_change()
        }),
        "without ELR the last member stays in the ISR"
    );
    let with = PartitionChangeBuilder::new(&p, TOPIC, 0, alive(&[2, 3]))
        .set_eligible_leader_replicas(true, 2)
        .set_target_isr(vec![])
        .build();
    assert_eq!(
        with,
        Some(PartitionChangeRecord {
            isr: Some(vec![]),
            leader: Some(NO_LEADER),
            eligible_leader_replicas: Some(vec![1]),
            last_known_elr: Some(vec![1]),
            ..topic_change()
        })
    );
}

#[test]
fn an_unclean_shutdown_replica_never_enters_the_elr() {
    let p = partition(&[1, 2], &[3], 1, &[]);
    let shrink = |unclean_shutdown: Vec<i32>| {
        PartitionChangeBuilder::new(&p, TOPIC, 0, alive(&[1, 3]))
            .set_eligible_leader_replicas(true, 3)
            .set_target_isr(vec![1])
            .set_unclean_shutdown_replicas(unclean_shutdown)
            .build()
    };
    // Fenced: 2 joins 3 in the ELR.
    assert_eq!(
        shrink(vec![]),
        Some(PartitionChangeRecord {
            isr: Some(vec![1]),
            eligible_leader_replicas: Some(vec![2, 3]),
            ..topic_change()
        })
    );
    // Restarted without a clean shutdown: it may have lost records, and stays out.
    assert_eq!(
        shrink(vec![2]),
        Some(PartitionChangeRecord {
            isr: Some(vec![1]),
            ..topic_change()
        })
    );
}

#[test]
fn an_unclean_election_clears_the_elr() {
    // Broker 1, the ISR, is gone; 2 is in the ELR but the ISR is not empty, so only an unclean
    // election brings the partition back.
    let p = partition(&[1], &[2], NO_LEADER, &[]);
    let record = PartitionChangeBuilder::new(&p, TOPIC, 0, alive(&[2, 3]))
        .set_eligible_leader_replicas(true, 2)
        .set_election(Election::Unclean)
        .build();
    assert_eq!(
        record,
        Some(PartitionChangeRecord {
            isr: Some(vec![2]),
            leader: Some(2),
            leader_recovery_state: Some(LeaderRecoveryState::Recovering as i8),
            eligible_leader_replicas: Some(vec![]),
            ..topic_change()
        })
    );
}

// ---- the controller ----

#[test]
fn an_isr_shrink_below_min_isr_puts_the_replicas_then_in_sync_in_the_elr() {
    let mut c = Cluster::with_config(with_elr(2));
    c.start(&[1, 2, 3]);
    let t = c.create(assigned_topic("t", &[&[1, 2, 3]]));
    let (records, _) = c.alter_isr(t, 0, &[1, 2]);
    assert_eq!(
        records,
        vec![pc(PartitionChangeRecord {
            isr: Some(vec![1, 2]),
            ..change(t, 0)
        })],
        "at min ISR: no ELR"
    );
    // 3 left while the ISR was still at min ISR: it may lack committed records, and stays out.
    let (records, result) = c.alter_isr(t, 0, &[1]);
    assert_eq!(
        records,
        vec![pc(PartitionChangeRecord {
            isr: Some(vec![1]),
            eligible_leader_replicas: Some(vec![2]),
            ..change(t, 0)
        })]
    );
    assert_eq!((result.error_code, result.leader_id), (0, 1));
    // Back at min ISR, the ELR is cleared.
    let (records, _) = c.alter_isr(t, 0, &[1, 3]);
    assert_eq!(
        records,
        vec![pc(PartitionChangeRecord {
            isr: Some(vec![1, 3]),
            eligible_leader_replicas: Some(vec![]),
            ..change(t, 0)
        })]
    );
}

#[test]
fn a_topics_min_isr_is_its_config_capped_by_its_replication_factor() {
    let mut c = Cluster::with_config(with_elr(1));
    c.start(&[1, 2]);
    let mut strict = assigned_topic("strict", &[&[1, 2]]);
    strict
        .configs
        .insert(MIN_INSYNC_REPLICAS.to_owned(), "3".to_owned());
    let strict = c.create(strict);
    let lax = c.create(assigned_topic("lax", &[&[1, 2]]));
    assert_eq!(c.controller.effective_min_isr(strict), 2);
    assert_eq!(c.controller.effective_min_isr(lax), 1);
    c.alter_isr(strict, 0, &[1]);
    c.alter_isr(lax, 0, &[1]);
    assert_eq!(c.partition(strict, 0).elr, vec![2]);
    assert_eq!(c.partition(lax, 0).elr, Vec::<i32>::new());
}

/// Brokers 1 and 2, a topic on [1, 2], min ISR 2 (with `config`'s flag): broker 2's session
/// lapses, it comes back (a clean return: same epoch, its log intact), then broker 1's lapses.
/// The records of each fencing.
fn follower_then_leader_fenced(
    config: QuorumControllerConfig,
) -> (Cluster, Uuid, Vec<MetadataRecord>, Vec<MetadataRecord>) {
    let mut c = Cluster::with_config(config);
    c.start(&[1, 2]);
    let t = c.create(assigned_topic("t", &[&[1, 2]]));
    let follower_fenced = c.pass_with(&[1], 10_000);
    c.heartbeat(2);
    assert!(!c.controller.image().brokers[&2].fenced);
    let leader_fenced = c.pass_with(&[2], 10_000);
    (c, t, follower_fenced, leader_fenced)
}

#[test]
fn the_fenced_leader_of_an_emptied_isr_is_replaced_cleanly_from_the_elr() {
    let (c, t, follower_fenced, leader_fenced) = follower_then_leader_fenced(with_elr(2));
    assert_eq!(
        follower_fenced,
        vec![
            pc(PartitionChangeRecord {
                isr: Some(vec![1]),
                eligible_leader_replicas: Some(vec![2]),
                ..change(t, 0)
            }),
            fence_record(2, c.epoch(2)),
        ]
    );
    // The target ISR is empty, the ELR [1, 2]; 2 leads, alone in the ISR, and 1 waits in the
    // ELR. No `RECOVERING`: the election is clean.
    assert_eq!(
        leader_fenced,
        vec![
            pc(PartitionChangeRecord {
                isr: Some(vec![2]),
                leader: Some(2),
                eligible_leader_replicas: Some(vec![1]),
                ..change(t, 0)
            }),
            fence_record(1, c.epoch(1)),
        ]
    );
    let p = c.partition(t, 0);
    assert_eq!(
        (p.leader, p.isr.clone(), p.elr.clone()),
        (2, vec![2], vec![1])
    );
    assert_eq!(p.leader_recovery_state, LeaderRecoveryState::Recovered);
    assert_eq!(p.last_known_elr, Vec::<i32>::new());
}

/// The planted counter-example: the same story without ELR. Broker 2 holds every committed
/// record (with strict min ISR), is alive, and is never elected; the partition stays offline
/// with the fenced broker 1 as its ISR, and no record ever carries an ELR.
#[test]
fn without_elr_the_replica_that_would_be_eligible_is_never_elected() {
    let (mut c, t, follower_fenced, leader_fenced) = follower_then_leader_fenced(without_elr());
    assert_eq!(
        follower_fenced,
        vec![
            pc(PartitionChangeRecord {
                isr: Some(vec![1]),
                ..change(t, 0)
            }),
            fence_record(2, c.epoch(2)),
        ]
    );
    assert_eq!(
        leader_fenced,
        vec![
            pc(PartitionChangeRecord {
                leader: Some(NO_LEADER),
                ..change(t, 0)
            }),
            fence_record(1, c.epoch(1)),
        ]
    );
    // Time passes, broker 2 keeps heartbeating: still nobody leads.
    let later = c.pass_with(&[2], 30_000);
    assert_eq!(later, vec![]);
    let p = c.partition(t, 0);
    assert_eq!((p.leader, p.isr.clone()), (NO_LEADER, vec![1]));
    assert!(p.elr.is_empty() && p.last_known_elr.is_empty());
    let carries_elr = |r: &MetadataRecord| match r {
        MetadataRecord::PartitionChange(r) => {
            r.eligible_leader_replicas.is_some() || r.last_known_elr.is_some()
        }
        MetadataRecord::Partition(r) => {
            r.eligible_leader_replicas.is_some() || r.last_known_elr.is_some()
        }
        _ => false,
    };
    assert!(!c.log.iter().any(carries_elr), "{:?}", c.log);
}

#[test]
fn unclean_restarts_empty_the_elr_and_the_last_known_leader_returns_uncleanly() {
    let mut c = Cluster::with_config(with_elr(2));
    c.start(&[1, 2]);
    let t = c.create(assigned_topic("t", &[&[1, 2]]));
    c.pass_with(&[1], 10_000);
    let records = c.pass_with(&[], 10_000);
    assert_eq!(
        records,
        vec![
            pc(PartitionChangeRecord {
                isr: Some(vec![]),
                leader: Some(NO_LEADER),
                eligible_leader_replicas: Some(vec![1, 2]),
                last_known_elr: Some(vec![1]),
                ..change(t, 0)
            }),
            fence_record(1, c.epoch(1)),
        ],
        "both gone: an empty ISR, both in the ELR, 1 the last known leader"
    );

    // Broker 2 restarts (no proof of a clean shutdown): it leaves the ELR, and is not elected
    // once unfenced though it is the only live replica.
    let (records, _) = c.handle(register_request(2, incarnation(2)));
    assert_eq!(
        records[1..],
        [pc(PartitionChangeRecord {
            eligible_leader_replicas: Some(vec![1]),
            ..change(t, 0)
        })]
    );
    let (records, _) = c.heartbeat(2);
    assert_eq!(records, vec![unfence_record(2, c.epoch(2))]);
    assert_eq!(c.partition(t, 0).leader, NO_LEADER);

    // Broker 1 restarts too: the ELR is empty; once 1 is back it leads, as an unclean leader.
    let (records, _) = c.handle(register_request(1, incarnation(1)));
    assert_eq!(
        records[1..],
        [pc(PartitionChangeRecord {
            eligible_leader_replicas: Some(vec![]),
            ..change(t, 0)
        })]
    );
    let (records, _) = c.heartbeat(1);
    assert_eq!(
        records,
        vec![
            unfence_record(1, c.epoch(1)),
            pc(PartitionChangeRecord {
                isr: Some(vec![1]),
                leader: Some(1),
                leader_recovery_state: Some(LeaderRecoveryState::Recovering as i8),
                last_known_elr: Some(vec![]),
                ..change(t, 0)
            }),
        ]
    );
}

#[test]
fn a_clean_elr_leader_keeps_the_elr_and_a_full_isr_clears_it() {
    let (mut c, t, _, _) = follower_then_leader_fenced(with_elr(2));
    // Broker 1 returns cleanly (its session lapsed, its log is intact) and the leader 2 takes it
    // back: at min ISR again, nobody is left in the ELR.
    c.heartbeat(1);
    let (records, result) = c.alter_isr(t, 0, &[2, 1]);
    assert_eq!(
        records,
        vec![pc(PartitionChangeRecord {
            isr: Some(vec![2, 1]),
            eligible_leader_replicas: Some(vec![]),
            ..change(t, 0)
        })]
    );
    assert_eq!(result.isr, vec![2, 1]);
}
