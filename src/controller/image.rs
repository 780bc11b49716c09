//! The cluster's metadata as the replay of the metadata log builds it: what Kafka's controller
//! keeps in `ClusterControlManager` (broker registrations), `ReplicationControlManager` (topics
//! and `PartitionRegistration`s) and `ConfigurationControlManager` (configs), and what a broker's
//! `MetadataImage` holds.
//!
//! `replay` applies one record with Kafka's semantics, and refuses (without changing anything)
//! the records Kafka's replay throws on: a change to an unregistered broker or one of another
//! epoch, a partition of an unknown topic id, a change to an unknown partition, a second
//! `TopicRecord` for a name, an unknown fencing or leader-recovery value. A refused record in a
//! committed log is a controller bug, found.

use std::collections::BTreeMap;
use std::fmt;

use super::records::{
    BrokerEndpoint, BrokerFeature, BrokerRegistrationChangeRecord, ConfigRecord, MetadataRecord,
    PartitionChangeRecord, PartitionRecord, RegisterBrokerRecord, TopicRecord,
};
use super::uuid::Uuid;

/// `ConfigResource.Type.TOPIC.id()`.
pub const CONFIG_RESOURCE_TOPIC: i8 = 2;
/// `ConfigResource.Type.BROKER.id()`.
pub const CONFIG_RESOURCE_BROKER: i8 = 4;

/// `DirectoryId.MIGRATING`: the directory of a replica whose record predates directory
/// assignment (KIP-858).
pub const DIRECTORY_MIGRATING: Uuid = Uuid::from_parts(0, 0);
/// `DirectoryId.UNASSIGNED`: a new replica not yet placed in a directory.
pub const DIRECTORY_UNASSIGNED: Uuid = Uuid::from_parts(0, 1);

/// `BrokerRegistration`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub id: i32,
    pub epoch: i64,
    pub incarnation_id: Uuid,
    pub endpoints: Vec<BrokerEndpoint>,
    pub features: Vec<BrokerFeature>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
    pub directories: Vec<Uuid>,
}

/// `LeaderRecoveryState` (KIP-704).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaderRecoveryState {
    Recovered = 0,
    /// The leader was elected uncleanly and has not yet recovered.
    Recovering = 1,
}

impl LeaderRecoveryState {
    /// `LeaderRecoveryState.of`: any other value is an error.
    pub fn of(value: i8) -> Option<LeaderRecoveryState> {
        match value {
            0 => Some(LeaderRecoveryState::Recovered),
            1 => Some(LeaderRecoveryState::Recovering),
            _ => None,
        }
    }
}

/// `PartitionRegistration`: one partition's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionRegistration {
    pub replicas: Vec<i32>,
    pub directories: Vec<Uuid>,
    pub isr: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    /// -1 when offline.
    pub leader: i32,
    pub leader_recovery_state: LeaderRecoveryState,
    pub leader_epoch: i32,
    /// Bumped by every `PartitionChangeRecord` (KIP-704's partition epoch, which `AlterPartition`
    /// must quote).
    pub partition_epoch: i32,
    pub elr: Vec<i32>,
    pub last_known_elr: Vec<i32>,
}

impl PartitionRegistration {
    /// `PartitionRegistration.preferredReplica`: the first replica, or -1.
    pub fn preferred_replica(&self) -> i32 {
        self.replicas.first().copied().unwrap_or(-1)
    }

    pub fn has_leader(&self) -> bool {
        self.leader != -1
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: BTreeMap<i32, PartitionRegistration>,
}

/// A configuration resource: (`ConfigResource.Type` id, name).
pub type ConfigResource = (i8, String);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataImage {
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    pub topics: BTreeMap<Uuid, TopicImage>,
    pub topics_by_name: BTreeMap<String, Uuid>,
    /// Only resources with at least one key (Kafka drops a resource's map when it empties).
    pub configs: BTreeMap<ConfigResource, BTreeMap<String, String>>,
    /// The first producer id not yet handed out (`ProducerIdsImage.nextProducerId`; 0 before the
    /// first block).
    pub next_producer_id: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// "Unable to replay ...: no broker registration found for that id".
    UnknownBroker {
        broker_id: i32,
    },
    /// "Unable to replay ...: no broker registration with that epoch found".
    StaleBrokerEpoch {
        broker_id: i32,
        registered: i64,
        record: i64,
    },
    UnknownFencingChange(i8),
    UnknownControlledShutdownChange(i8),
    /// "Found duplicate TopicRecord for <name>".
    DuplicateTopic {
        name: String,
        existing: Uuid,
        new: Uuid,
    },
    /// A `TopicRecord` reusing the id of a live topic (Kafka would silently orphan the old name).
    DuplicateTopicId {
        topic_id: Uuid,
    },
    /// Kafka's `UnknownTopicIdException`.
    UnknownTopicId {
        topic_id: Uuid,
    },
    UnknownPartition {
        topic_id: Uuid,
        partition_id: i32,
    },
    UnknownLeaderRecoveryState(i8),
    /// `InvalidReplicaDirectoriesException`: directories not one per replica.
    InvalidDirectories {
        replicas: usize,
        directories: usize,
    },
    /// Kafka's `ProducerIdControlManager.replay`: the next producer id may only grow.
    ProducerIdsBackwards {
        current: i64,
        record: i64,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::UnknownBroker { broker_id } => {
                write!(f, "no broker registration found for id {broker_id}")
            }
            ReplayError::StaleBrokerEpoch { broker_id, registered, record } => write!(
                f,
                "broker {broker_id} is registered with epoch {registered}, the record names {record}"
            ),
            ReplayError::UnknownFencingChange(v) => write!(f, "unknown value for fenced: {v}"),
            ReplayError::UnknownControlledShutdownChange(v) => {
                write!(f, "unknown value for inControlledShutdown: {v}")
            }
            ReplayError::DuplicateTopic { name, existing, new } => write!(
                f,
                "found duplicate TopicRecord for {name}: existing id {existing}, new id {new}"
            ),
            ReplayError::DuplicateTopicId { topic_id } => {
                write!(f, "a TopicRecord reuses the id {topic_id} of a live topic")
            }
            ReplayError::UnknownTopicId { topic_id } => write!(f, "no topic with id {topic_id}"),
            ReplayError::UnknownPartition { topic_id, partition_id } => {
                write!(f, "no partition {partition_id} in topic {topic_id}")
            }
            ReplayError::UnknownLeaderRecoveryState(v) => {
                write!(f, "unknown leader recovery state {v}")
            }
            ReplayError::InvalidDirectories { replicas, directories } => write!(
                f,
                "{directories} directories for {replicas} replicas"
            ),
            ReplayError::ProducerIdsBackwards { current, record } => write!(
                f,
                "next producer id {record} is not above the current {current}"
            ),
        }
    }
}

impl std::error::Error for ReplayError {}

impl MetadataImage {
    /// Applies one record; on error the image is unchanged.
    pub fn replay(&mut self, record: &MetadataRecord) -> Result<(), ReplayError> {
        match record {
            MetadataRecord::RegisterBroker(r) => {
                self.replay_register_broker(r);
                Ok(())
            }
            MetadataRecord::FenceBroker(r) => self.change_broker(r.id, r.epoch, Some(true), None),
            MetadataRecord::UnfenceBroker(r) => {
                self.change_broker(r.id, r.epoch, Some(false), None)
            }
            MetadataRecord::BrokerRegistrationChange(r) => self.replay_registration_change(r),
            MetadataRecord::Topic(r) => self.replay_topic(r),
            MetadataRecord::Partition(r) => self.replay_partition(r),
            MetadataRecord::PartitionChange(r) => self.replay_partition_change(r),
            MetadataRecord::RemoveTopic(r) => self.replay_remove_topic(r.topic_id),
            MetadataRecord::Config(r) => {
                self.replay_config(r);
                Ok(())
            }
            MetadataRecord::ProducerIds(r) => {
                if r.next_producer_id <= self.next_producer_id {
                    return Err(ReplayError::ProducerIdsBackwards {
                        current: self.next_producer_id,
                        record: r.next_producer_id,
                    });
                }
                self.next_producer_id = r.next_producer_id;
                Ok(())
            }
            MetadataRecord::NoOp => Ok(()),
        }
    }

    pub fn topic_by_name(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(self.topics_by_name.get(name)?)
    }

    pub fn partition(&self, topic_id: Uuid, partition_id: i32) -> Option<&PartitionRegistration> {
        self.topics.get(&topic_id)?.partitions.get(&partition_id)
    }

    /// The brokers new replicas may be placed on, ascending: registered, unfenced and not in
    /// controlled shutdown (Kafka's `BrokerHeartbeatManager.usableBrokers` skips the brokers
    /// shutting down; placement avoids the fenced ones).
    pub fn usable_brokers(&self) -> Vec<i32> {
        self.brokers
            .values()
            .filter(|b| !b.fenced && !b.in_controlled_shutdown)
            .map(|b| b.id)
            .collect()
    }

    /// `ClusterControlManager.replay(RegisterBrokerRecord)`: the registration replaces any
    /// previous one of that id, whatever its epoch.
    fn replay_register_broker(&mut self, r: &RegisterBrokerRecord) {
        let registration = BrokerRegistration {
            id: r.broker_id,
            epoch: r.broker_epoch,
            incarnation_id: r.incarnation_id,
            endpoints: r.endpoints.clone(),
            features: r.features.clone(),
            rack: r.rack.clone(),
            fenced: r.fenced,
            in_controlled_shutdown: r.in_controlled_shutdown,
            directories: r.log_dirs.clone(),
        };
        self.brokers.insert(r.broker_id, registration);
    }

    /// `BrokerRegistrationFencingChange` (-1 unfence, 0 none, 1 fence) and
    /// `BrokerRegistrationInControlledShutdownChange` (0 none, 1 in controlled shutdown).
    fn replay_registration_change(
        &mut self,
        r: &BrokerRegistrationChangeRecord,
    ) -> Result<(), ReplayError> {
        let fenced = match r.fenced {
            -1 => Some(false),
            0 => None,
            1 => Some(true),
            other => return Err(ReplayError::UnknownFencingChange(other)),
        };
        let in_controlled_shutdown = match r.in_controlled_shutdown {
            0 => None,
            1 => Some(true),
            other => return Err(ReplayError::UnknownControlledShutdownChange(other)),
        };
        self.change_broker(r.broker_id, r.broker_epoch, fenced, in_controlled_shutdown)
    }

    /// `ClusterControlManager.replayRegistrationChange`: the broker must be registered with
    /// exactly this epoch.
    fn change_broker(
        &mut self,
        broker_id: i32,
        epoch: i64,
        fenced: Option<bool>,
        in_controlled_shutdown: Option<bool>,
    ) -> Result<(), ReplayError> {
        let broker = self
            .brokers
            .get_mut(&broker_id)
            .ok_or(ReplayError::UnknownBroker { broker_id })?;
        if broker.epoch != epoch {
            return Err(ReplayError::StaleBrokerEpoch {
                broker_id,
                registered: broker.epoch,
                record: epoch,
            });
        }
        if let Some(fenced) = fenced {
            broker.fenced = fenced;
        }
        if let Some(in_controlled_shutdown) = in_controlled_shutdown {
            broker.in_controlled_shutdown = in_controlled_shutdown;
        }
        Ok(())
    }

    fn replay_topic(&mut self, r: &TopicRecord) -> Result<(), ReplayError> {
        if let Some(&existing) = self.topics_by_name.get(&r.name) {
            return Err(ReplayError::DuplicateTopic {
                name: r.name.clone(),
                existing,
                new: r.topic_id,
            });
        }
        if self.topics.contains_key(&r.topic_id) {
            return Err(ReplayError::DuplicateTopicId {
                topic_id: r.topic_id,
            });
        }
        self.topics_by_name.insert(r.name.clone(), r.topic_id);
        let topic = TopicImage {
            name: r.name.clone(),
            id: r.topic_id,
            partitions: BTreeMap::new(),
        };
        self.topics.insert(r.topic_id, topic);
        Ok(())
    }

    /// `ReplicationControlManager.replay(PartitionRecord)`: creates the partition, or replaces
    /// it whole.
    fn replay_partition(&mut self, r: &PartitionRecord) -> Result<(), ReplayError> {
        let registration = PartitionRegistration::from_record(r)?;
        let topic = self
            .topics
            .get_mut(&r.topic_id)
            .ok_or(ReplayError::UnknownTopicId {
                topic_id: r.topic_id,
            })?;
        topic.partitions.insert(r.partition_id, registration);
        Ok(())
    }

    fn replay_partition_change(&mut self, r: &PartitionChangeRecord) -> Result<(), ReplayError> {
        let topic_id = r.topic_id;
        let topic = self
            .topics
            .get_mut(&topic_id)
            .ok_or(ReplayError::UnknownTopicId { topic_id })?;
        let partition =
            topic
                .partitions
                .get_mut(&r.partition_id)
                .ok_or(ReplayError::UnknownPartition {
                    topic_id,
                    partition_id: r.partition_id,
                })?;
        *partition = partition.merge(r)?;
        Ok(())
    }

    /// `ReplicationControlManager.replay(RemoveTopicRecord)`: the topic, its partitions, and its
    /// configs (`configurationControl.deleteTopicConfigs`).
    fn replay_remove_topic(&mut self, topic_id: Uuid) -> Result<(), ReplayError> {
        let topic = self
            .topics
            .remove(&topic_id)
            .ok_or(ReplayError::UnknownTopicId { topic_id })?;
        self.topics_by_name.remove(&topic.name);
        self.configs.remove(&(CONFIG_RESOURCE_TOPIC, topic.name));
        Ok(())
    }

    /// `ConfigurationControlManager.replay(ConfigRecord)`: a null value deletes the key; a
    /// resource left with no keys is dropped.
    fn replay_config(&mut self, r: &ConfigRecord) {
        let resource = (r.resource_type, r.resource_name.clone());
        let configs = self.configs.entry(resource.clone()).or_default();
        match &r.value {
            Some(value) => {
                configs.insert(r.name.clone(), value.clone());
            }
            None => {
                configs.remove(&r.name);
            }
        }
        if configs.is_empty() {
            self.configs.remove(&resource);
        }
    }
}

impl PartitionRegistration {
    /// `new PartitionRegistration(PartitionRecord)`: directories default to `MIGRATING` when the
    /// record has none.
    pub fn from_record(r: &PartitionRecord) -> Result<Self, ReplayError> {
        let leader_recovery_state = LeaderRecoveryState::of(r.leader_recovery_state).ok_or(
            ReplayError::UnknownLeaderRecoveryState(r.leader_recovery_state),
        )?;
        let directories = if r.directories.is_empty() {
            vec![DIRECTORY_MIGRATING; r.replicas.len()]
        } else if r.directories.len() != r.replicas.len() {
            return Err(ReplayError::InvalidDirectories {
                replicas: r.replicas.len(),
                directories: r.directories.len(),
            });
        } else {
            r.directories.clone()
        };
        Ok(PartitionRegistration {
            replicas: r.replicas.clone(),
            directories,
            isr: r.isr.clone(),
            removing_replicas: r.removing_replicas.clone(),
            adding_replicas: r.adding_replicas.clone(),
            leader: r.leader,
            leader_recovery_state,
            leader_epoch: r.leader_epoch,
            partition_epoch: r.partition_epoch,
            elr: r.eligible_leader_replicas.clone().unwrap_or_default(),
            last_known_elr: r.last_known_elr.clone().unwrap_or_default(),
        })
    }

    /// `PartitionRegistration.merge(PartitionChangeRecord)`: each present field replaces the old
    /// value; a present `Leader` (even the same broker) bumps the leader epoch; the partition
    /// epoch is bumped by every change.
    pub fn merge(&self, r: &PartitionChangeRecord) -> Result<Self, ReplayError> {
        let replicas = r.replicas.clone().unwrap_or_else(|| self.replicas.clone());
        let directories = match (&r.directories, &r.replicas) {
            (Some(dirs), _) if !dirs.is_empty() => dirs.clone(),
            // `DirectoryId.createDirectoriesFrom`: a replica keeps its directory; a new one is
            // unassigned.
            (_, Some(new_replicas)) => new_replicas
                .iter()
                .map(|replica| {
                    self.replicas
                        .iter()
                        .position(|r| r == replica)
                        .and_then(|i| self.directories.get(i).copied())
                        .unwrap_or(DIRECTORY_UNASSIGNED)
                })
                .collect(),
            _ => self.directories.clone(),
        };
        // `defaultToMigrating(newDirectories, replicas.length)`, with the old replica count.
        let directories = if directories.is_empty() {
            vec![DIRECTORY_MIGRATING; self.replicas.len()]
        } else {
            directories
        };
        if !directories.is_empty() && directories.len() != replicas.len() {
            return Err(ReplayError::InvalidDirectories {
                replicas: replicas.len(),
                directories: directories.len(),
            });
        }
        let (leader, leader_epoch) = match r.leader {
            None => (self.leader, self.leader_epoch),
            Some(leader) => (leader, self.leader_epoch.wrapping_add(1)),
        };
        let leader_recovery_state = match r.leader_recovery_state {
            None => self.leader_recovery_state,
            Some(v) => {
                LeaderRecoveryState::of(v).ok_or(ReplayError::UnknownLeaderRecoveryState(v))?
            }
        };
        let or_old = |new: &Option<Vec<i32>>, old: &Vec<i32>| new.clone().unwrap_or(old.clone());
        Ok(PartitionRegistration {
            directories,
            isr: or_old(&r.isr, &self.isr),
            removing_replicas: or_old(&r.removing_replicas, &self.removing_replicas),
            adding_replicas: or_old(&r.adding_replicas, &self.adding_replicas),
            leader,
            leader_recovery_state,
            leader_epoch,
            partition_epoch: self.partition_epoch.wrapping_add(1),
            elr: or_old(&r.eligible_leader_replicas, &self.elr),
            last_known_elr: or_old(&r.last_known_elr, &self.last_known_elr),
            replicas,
        })
    }
}
