//! The `QuorumController` under random request sequences: every batch must keep each
//! partition's invariants.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::quorum_support::*;
use crate::controller::election::{Election, NO_LEADER};
use crate::controller::image::*;
use crate::controller::quorum::*;
use crate::controller::uuid::Uuid;

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

/// KIP-966's shape, with `elr` as configured: without it there is never an ELR nor an empty
/// ISR; with it an empty ISR has no leader, and no replica is in both the ISR and the ELR.
fn check_elr_invariants(image: &MetadataImage, elr: bool) {
    for topic in image.topics.values() {
        for p in topic.partitions.values() {
            if !elr {
                assert!(!p.isr.is_empty(), "empty ISR without ELR: {p:?}");
                assert!(
                    p.elr.is_empty() && p.last_known_elr.is_empty(),
                    "an ELR without ELR: {p:?}"
                );
                continue;
            }
            assert!(
                !p.isr.is_empty() || p.leader == NO_LEADER,
                "a leader with an empty ISR: {p:?}"
            );
            assert!(
                p.elr.iter().all(|r| !p.isr.contains(r)),
                "ISR ∩ ELR ≠ ∅: {p:?}"
            );
            assert!(
                p.last_known_elr.len() <= 1,
                "more than one last known leader: {p:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_requests_keep_the_elr_invariants(
        ops in prop::collection::vec(op(), 1..120),
        elr in any::<bool>(),
        min_isr in 1..4i32,
    ) {
        let config = if elr { with_elr(min_isr) } else { without_elr() };
        let mut c = Cluster::with_config(config);
        c.start(&[1, 2, 3]);
        let mut epochs = BTreeMap::new();
        for op in &ops {
            c.apply(op);
            check_invariants(c.controller.image(), &mut epochs);
            check_elr_invariants(c.controller.image(), elr);
        }
    }

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
