//! Kafka's active KRaft controller (`QuorumController`) as a pure state machine: a request (or a
//! tick of the clock) in, the metadata records to append and the response out. No I/O, no clock
//! of its own, no randomness but its seeded stream; the async driver appends the records through
//! the metadata quorum and sends the response.
//!
//! The controller keeps the ACTIVE view: the replay of its whole log, its own uncommitted records
//! included, as Kafka's active controller applies its records as it writes them (its timeline
//! data structures). Every record `handle` and `tick` return is already replayed into
//! [`QuorumController::image`]; a record the image refuses is a controller bug and panics.
//!
//! The parts of Kafka's controller it plays, split by concern:
//! - here: `error_code`, the configuration, activation, the dispatch and the timers;
//! - `quorum_api`: the request and response types (re-exported here);
//! - `quorum_brokers`: `ClusterControlManager` registration and `BrokerHeartbeatManager`'s
//!   sessions (fencing on expiry, unfencing once caught up, controlled shutdown);
//! - `quorum_topics`: `ReplicationControlManager`'s `createTopics`, `deleteTopics`,
//!   `createPartitions`;
//! - `quorum_partitions`: `alterPartition`, `electLeaders`, `alterPartitionReassignments`, the
//!   auto leader rebalance and the periodic unclean elections.
//!
//! Every partition change is built by `partition_change` (`PartitionChangeBuilder` with the
//! topic's effective `min.insync.replicas` and KIP-966's eligible leader replicas when
//! `eligible_leader_replicas` is on, as Kafka 4.1 with `eligible.leader.replicas.version=1`).
//!
//! Volatile state, lost on failover as in Kafka: the broker sessions (last contact, reported
//! metadata offset, controlled-shutdown offset) and the rebalance timer. `activate` starts every
//! registered broker's session afresh.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::election::{Election, PartitionChangeBuilder, NO_LEADER};
use super::image::{
    MetadataImage, PartitionRegistration, CONFIG_RESOURCE_BROKER, CONFIG_RESOURCE_TOPIC,
};
use super::records::MetadataRecord;
use super::uuid::Uuid;

pub use super::quorum_api::{
    error_response, AlterPartitionData, AlterPartitionResult, AlterPartitionTopic,
    AlterPartitionTopicResult, ControllerRequest, ControllerResponse, CreatableTopicResult,
    CreatePartitionsTopic, CreatePartitionsTopicResult, DeletableTopicResult, NewTopic,
    PartitionReassignment, PartitionResult,
};
pub(super) use super::quorum_api::{heartbeat_error, ApiError};
pub use super::quorum_topics::validate_topic_name;

/// Kafka's error codes (`org.apache.kafka.common.protocol.Errors`) the controller answers with.
pub mod error_code {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const NOT_CONTROLLER: i16 = 41;
    pub const INVALID_REQUEST: i16 = 42;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const STALE_BROKER_EPOCH: i16 = 77;
    pub const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
    pub const ELIGIBLE_LEADERS_NOT_AVAILABLE: i16 = 83;
    pub const ELECTION_NOT_NEEDED: i16 = 84;
    pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
    pub const INVALID_UPDATE_VERSION: i16 = 95;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
    pub const DUPLICATE_BROKER_REGISTRATION: i16 = 101;
    pub const BROKER_ID_NOT_REGISTERED: i16 = 102;
    pub const INELIGIBLE_REPLICA: i16 = 107;
    /// `AlterPartition` (v2+) whose change completed a reassignment and moved the leadership
    /// away from the requester: the record is written AND this error returned.
    pub const NEW_LEADER_ELECTED: i16 = 108;
}

/// The topic config (and cluster default) that allows unclean leader election.
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";
/// The topic config (and cluster default) below which an ISR shrink fills the ELR (KIP-966).
pub const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";

/// The controller's configuration, with Kafka's names and defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumControllerConfig {
    /// `broker.session.timeout.ms`.
    pub session_timeout_ms: u64,
    /// `num.partitions`: `CreateTopics` with -1 partitions.
    pub num_partitions: i32,
    /// `default.replication.factor`: `CreateTopics` with replication factor -1.
    pub default_replication_factor: i16,
    /// `unclean.leader.election.enable`, the cluster default; a topic's `ConfigRecord` of that
    /// name (and a cluster-wide dynamic broker config) overrides it.
    pub unclean_leader_election: bool,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance: bool,
    /// `leader.imbalance.check.interval.seconds`, in ms.
    pub leader_imbalance_check_interval_ms: u64,
    /// KIP-903: `AlterPartition` refuses an ISR member whose quoted broker epoch is not its
    /// registration's (a broker that restarted since). Off is the pre-KIP-903 behaviour.
    pub broker_epoch_check: bool,
    /// KIP-966 part 1 (`eligible.leader.replicas.version=1`): eligible leader replicas, an ISR
    /// that may be empty, the last known leader. Off is Kafka before 4.0: no ELR, and the last
    /// ISR member stays in the ISR, leaderless.
    pub eligible_leader_replicas: bool,
    /// `min.insync.replicas`, the cluster default; a topic's `ConfigRecord` of that name (and a
    /// cluster-wide dynamic broker config) overrides it. Read only with ELR on.
    pub min_insync_replicas: i32,
}

impl Default for QuorumControllerConfig {
    fn default() -> Self {
        QuorumControllerConfig {
            session_timeout_ms: 9_000,
            num_partitions: 1,
            default_replication_factor: 1,
            unclean_leader_election: false,
            auto_leader_rebalance: true,
            leader_imbalance_check_interval_ms: 300_000,
            broker_epoch_check: true,
            eligible_leader_replicas: true,
            min_insync_replicas: 1,
        }
    }
}

/// `BrokerHeartbeatManager`'s per-broker soft state: volatile, started afresh on activation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct BrokerSession {
    pub(super) last_contact_ms: u64,
    /// The metadata offset the broker last reported; -1 before its first heartbeat.
    pub(super) metadata_offset: i64,
    /// Set when the broker enters controlled shutdown: the end offset of the records that moved
    /// its leaderships away.
    pub(super) controlled_shutdown_offset: Option<i64>,
}

impl BrokerSession {
    pub(super) fn new(now_ms: u64) -> BrokerSession {
        BrokerSession {
            last_contact_ms: now_ms,
            metadata_offset: -1,
            controlled_shutdown_offset: None,
        }
    }
}

/// The active controller's state machine.
#[derive(Clone, Debug)]
pub struct QuorumController {
    pub(super) config: QuorumControllerConfig,
    /// The active view, own uncommitted records included.
    pub(super) image: MetadataImage,
    pub(super) active: bool,
    pub(super) sessions: BTreeMap<i32, BrokerSession>,
    /// Placement and topic ids.
    pub(super) rng: ChaCha8Rng,
    pub(super) next_rebalance_ms: u64,
}

impl QuorumController {
    pub fn new(config: QuorumControllerConfig, seed: u64) -> Self {
        QuorumController {
            config,
            image: MetadataImage::default(),
            active: false,
            sessions: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            next_rebalance_ms: 0,
        }
    }

    /// Becoming the active controller: `image` is the replay of this controller's whole log.
    /// Every registered broker's session starts afresh at `now_ms` (Kafka rebuilds the
    /// heartbeat manager on failover), and so does the rebalance timer.
    pub fn activate(&mut self, now_ms: u64, image: MetadataImage) {
        self.sessions = image
            .brokers
            .keys()
            .map(|&id| (id, BrokerSession::new(now_ms)))
            .collect();
        self.image = image;
        self.active = true;
        self.next_rebalance_ms =
            now_ms.saturating_add(self.config.leader_imbalance_check_interval_ms);
    }

    /// No longer active: sessions are dropped; the image stays as it was (with records that may
    /// never commit) until the next `activate` replaces it.
    pub fn deactivate(&mut self) {
        self.active = false;
        self.sessions.clear();
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    pub fn image(&self) -> &MetadataImage {
        &self.image
    }

    pub fn config(&self) -> &QuorumControllerConfig {
        &self.config
    }

    /// One request. `next_offset` is the metadata-log offset the first returned record will get
    /// (the rest follow consecutively); a broker's epoch is the offset of its
    /// `RegisterBrokerRecord`. The records are already replayed into `image()`. An inactive
    /// controller answers `NOT_CONTROLLER` and writes nothing.
    pub fn handle(
        &mut self,
        now_ms: u64,
        next_offset: i64,
        request: ControllerRequest,
    ) -> (Vec<MetadataRecord>, ControllerResponse) {
        if !self.active {
            return (
                Vec::new(),
                error_response(&request, error_code::NOT_CONTROLLER),
            );
        }
        let mut records = Vec::new();
        let response = match request {
            ControllerRequest::RegisterBroker {
                broker_id,
                incarnation_id,
                host,
                port,
                log_dir,
            } => self.register_broker(
                now_ms,
                next_offset,
                (broker_id, incarnation_id, host, port, log_dir),
                &mut records,
            ),
            ControllerRequest::BrokerHeartbeat {
                broker_id,
                broker_epoch,
                current_metadata_offset,
                want_fence,
                want_shutdown,
            } => self.broker_heartbeat(
                now_ms,
                next_offset,
                (broker_id, broker_epoch, current_metadata_offset),
                (want_fence, want_shutdown),
                &mut records,
            ),
            ControllerRequest::CreateTopics {
                topics,
                validate_only,
            } => self.create_topics(&topics, validate_only, &mut records),
            ControllerRequest::DeleteTopics { names } => self.delete_topics(&names, &mut records),
            ControllerRequest::CreatePartitions {
                topics,
                validate_only,
            } => self.create_partitions(&topics, validate_only, &mut records),
            ControllerRequest::AlterPartition {
                broker_id,
                broker_epoch,
                topics,
            } => self.alter_partition(broker_id, broker_epoch, &topics, &mut records),
            ControllerRequest::ElectLeaders {
                election,
                partitions,
            } => self.elect_leaders(election, partitions.as_deref(), &mut records),
            ControllerRequest::AlterPartitionReassignments { reassignments } => {
                self.alter_partition_reassignments(&reassignments, &mut records)
            }
            ControllerRequest::AllocateProducerIds {
                broker_id,
                broker_epoch,
            } => self.allocate_producer_ids(broker_id, broker_epoch, &mut records),
        };
        (records, response)
    }

    /// The timers, in Kafka's order of concern: fence the brokers whose session expired
    /// (`maybeFenceStaleBroker`), elect unclean leaders for leaderless partitions of topics that
    /// allow it (`maybeElectUncleanLeaders`, here every tick), and when due the auto leader
    /// rebalance (`maybeBalancePartitionLeaders`). Records already replayed. No records and no
    /// timer changes when inactive.
    pub fn tick(&mut self, now_ms: u64, _next_offset: i64) -> Vec<MetadataRecord> {
        let mut records = Vec::new();
        if !self.active {
            return records;
        }
        self.fence_stale_brokers(now_ms, &mut records);
        self.elect_unclean_leaders(&mut records);
        if self.config.auto_leader_rebalance && now_ms >= self.next_rebalance_ms {
            self.balance_partition_leaders(&mut records);
            self.next_rebalance_ms =
                now_ms.saturating_add(self.config.leader_imbalance_check_interval_ms);
        }
        records
    }

    /// Replays `record` into the active image and adds it to the batch. A refusal is a
    /// controller bug: the record was built from this very image.
    pub(super) fn append(&mut self, records: &mut Vec<MetadataRecord>, record: MetadataRecord) {
        if let Err(error) = self.image.replay(&record) {
            panic!("the controller wrote a record its own image refuses ({error}): {record:?}");
        }
        if let MetadataRecord::PartitionChange(change) = &record {
            let partition = self
                .image
                .partition(change.topic_id, change.partition_id)
                .expect("a replayed change has its partition");
            assert_partition_invariants(partition, &record, self.config.eligible_leader_replicas);
        }
        records.push(record);
    }

    /// A topic config as Kafka's `ConfigurationControlManager.getTopicConfig` finds it: the
    /// topic's own, else the cluster-wide dynamic default; `None` means the static one.
    fn topic_config(&self, topic_name: &str, key: &str) -> Option<&str> {
        let lookup = |resource: (i8, String)| {
            self.image
                .configs
                .get(&resource)
                .and_then(|configs| configs.get(key))
                .map(String::as_str)
        };
        lookup((CONFIG_RESOURCE_TOPIC, topic_name.to_owned()))
            .or_else(|| lookup((CONFIG_RESOURCE_BROKER, String::new())))
    }

    /// `ConfigurationControlManager.uncleanLeaderElectionEnabledForTopic`: the topic's config,
    /// else the cluster-wide dynamic default, else the static one.
    pub(super) fn unclean_enabled(&self, topic_name: &str) -> bool {
        self.topic_config(topic_name, UNCLEAN_LEADER_ELECTION_ENABLE)
            .map(|value| value.trim().eq_ignore_ascii_case("true"))
            .unwrap_or(self.config.unclean_leader_election)
    }

    /// `ReplicationControlManager.getTopicEffectiveMinIsr`: the topic's `min.insync.replicas`
    /// (or the default), but no more than its replication factor (partition 0's replicas), so
    /// that a fully replicated ISR always clears the ELR.
    pub(super) fn effective_min_isr(&self, topic_id: Uuid) -> usize {
        let Some(topic) = self.image.topics.get(&topic_id) else {
            return 1;
        };
        let configured = self
            .topic_config(&topic.name, MIN_INSYNC_REPLICAS)
            .and_then(|value| value.trim().parse::<i32>().ok())
            .unwrap_or(self.config.min_insync_replicas);
        let replication_factor = topic.partitions.get(&0).map_or(0, |p| p.replicas.len());
        usize::try_from(configured)
            .unwrap_or(0)
            .min(replication_factor)
    }

    /// A `PartitionChangeBuilder` for one of this controller's partitions, with KIP-966 as
    /// configured and the topic's effective min ISR; `is_acceptable_leader` is the caller's.
    pub(super) fn partition_change<'a, F: Fn(i32) -> bool>(
        &self,
        partition: &'a PartitionRegistration,
        topic_id: Uuid,
        partition_id: i32,
        is_acceptable_leader: F,
    ) -> PartitionChangeBuilder<'a, F> {
        let min_isr = self.effective_min_isr(topic_id);
        PartitionChangeBuilder::new(partition, topic_id, partition_id, is_acceptable_leader)
            .set_eligible_leader_replicas(self.config.eligible_leader_replicas, min_isr)
    }

    /// The election a partition change of this topic runs: unclean when the topic allows it.
    pub(super) fn topic_election(&self, topic_id: Uuid) -> Election {
        let unclean = self
            .image
            .topics
            .get(&topic_id)
            .is_some_and(|topic| self.unclean_enabled(&topic.name));
        if unclean {
            Election::Unclean
        } else {
            Election::Online
        }
    }

    /// Every (topic id, partition id) whose registration matches, in id order.
    pub(super) fn partitions_where(
        &self,
        matches: impl Fn(&PartitionRegistration) -> bool,
    ) -> Vec<(Uuid, i32)> {
        self.image
            .topics
            .values()
            .flat_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .filter(|(_, p)| matches(p))
                    .map(move |(&id, _)| (topic.id, id))
            })
            .collect()
    }
}

/// `ClusterControlManager.isActive`, the leader acceptor's test: registered, unfenced and not in
/// controlled shutdown.
pub fn is_acceptable_leader(image: &MetadataImage, broker_id: i32) -> bool {
    image
        .brokers
        .get(&broker_id)
        .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
}

/// Whether Kafka's `Topic.validate` accepts `name` (see `validate_topic_name` for the reason).
pub fn is_valid_topic_name(name: &str) -> bool {
    validate_topic_name(name).is_ok()
}

/// The write-side check of what every partition change must keep: the leader (if any) is in
/// the ISR, the ISR is a subset of the replicas, no replica twice; without ELR the ISR is never
/// empty and there is no ELR; with it, an empty ISR has no leader and no replica is both in the
/// ISR and the ELR (Kafka logs "has overlapping ISR and ELR" as an error).
fn assert_partition_invariants(p: &PartitionRegistration, record: &MetadataRecord, elr: bool) {
    let mut replicas = p.replicas.clone();
    replicas.sort_unstable();
    replicas.dedup();
    assert_eq!(
        replicas.len(),
        p.replicas.len(),
        "duplicate replicas after {record:?}: {p:?}"
    );
    if elr {
        assert!(
            !p.isr.is_empty() || p.leader == NO_LEADER,
            "a leader with an empty ISR after {record:?}: {p:?}"
        );
        assert!(
            p.elr.iter().all(|r| !p.isr.contains(r)),
            "overlapping ISR and ELR after {record:?}: {p:?}"
        );
    } else {
        assert!(!p.isr.is_empty(), "empty ISR after {record:?}: {p:?}");
        assert!(
            p.elr.is_empty(),
            "an ELR without ELR after {record:?}: {p:?}"
        );
    }
    assert!(
        p.isr.iter().all(|r| p.replicas.contains(r)),
        "ISR not within the replicas after {record:?}: {p:?}"
    );
    assert!(
        p.leader == NO_LEADER || p.isr.contains(&p.leader),
        "leader outside the ISR after {record:?}: {p:?}"
    );
}
