//! Partition state changes in the active controller: Kafka's `ReplicationControlManager`
//! `alterPartition` (a leader's ISR change, KIP-497 and KIP-903), `electLeaders` (KIP-460),
//! `alterPartitionReassignments` (KIP-455), and the periodic preferred-leader rebalance and
//! unclean elections. Every change goes through `PartitionChangeBuilder`, which also completes
//! an ongoing reassignment once the ISR holds every target replica.

use super::election::{preferred_leader_available, Election};
use super::image::{LeaderRecoveryState, PartitionRegistration};
use super::quorum::{
    error_code, is_acceptable_leader, AlterPartitionData, AlterPartitionResult,
    AlterPartitionTopic, AlterPartitionTopicResult, ApiError, ControllerResponse,
    PartitionReassignment, PartitionResult, QuorumController,
};
use super::records::{MetadataRecord, PartitionChangeRecord};
use super::uuid::Uuid;

impl AlterPartitionResult {
    fn error(partition_index: i32, code: i16) -> AlterPartitionResult {
        AlterPartitionResult {
            partition_index,
            error_code: code,
            leader_id: -1,
            leader_epoch: 0,
            isr: Vec::new(),
            partition_epoch: 0,
            leader_recovery_state: 0,
        }
    }

    fn state(partition_index: i32, p: &PartitionRegistration) -> AlterPartitionResult {
        AlterPartitionResult {
            partition_index,
            error_code: error_code::NONE,
            leader_id: p.leader,
            leader_epoch: p.leader_epoch,
            isr: p.isr.clone(),
            partition_epoch: p.partition_epoch,
            leader_recovery_state: p.leader_recovery_state as i8,
        }
    }
}

impl QuorumController {
    /// `alterPartition`: the requester's broker epoch must be its registration's (else the
    /// whole request is refused with `STALE_BROKER_EPOCH`); then each partition on its own.
    pub(super) fn alter_partition(
        &mut self,
        broker_id: i32,
        broker_epoch: i64,
        topics: &[AlterPartitionTopic],
        records: &mut Vec<MetadataRecord>,
    ) -> ControllerResponse {
        let registered = self.image.brokers.get(&broker_id).map(|b| b.epoch);
        if registered != Some(broker_epoch) {
            return ControllerResponse::AlterPartition {
                error_code: error_code::STALE_BROKER_EPOCH,
                topics: Vec::new(),
            };
        }
        let mut results = Vec::with_capacity(topics.len());
        for topic in topics {
            let partitions = topic
                .partitions
                .iter()
                .map(|data| self.alter_one_partition(broker_id, topic.topic_id, data, records))
                .collect();
            results.push(AlterPartitionTopicResult {
                topic_id: topic.topic_id,
                partitions,
            });
        }
        ControllerResponse::AlterPartition {
            error_code: error_code::NONE,
            topics: results,
        }
    }

    fn alter_one_partition(
        &mut self,
        broker_id: i32,
        topic_id: Uuid,
        data: &AlterPartitionData,
        records: &mut Vec<MetadataRecord>,
    ) -> AlterPartitionResult {
        let partition_id = data.partition_index;
        let Some(topic) = self.image.topics.get(&topic_id) else {
            return AlterPartitionResult::error(partition_id, error_code::UNKNOWN_TOPIC_ID);
        };
        let Some(partition) = topic.partitions.get(&partition_id) else {
            return AlterPartitionResult::error(
                partition_id,
                error_code::UNKNOWN_TOPIC_OR_PARTITION,
            );
        };
        let target_state = match self.validate_alter_partition(broker_id, partition, data) {
            Ok(state) => state,
            Err(code) => return AlterPartitionResult::error(partition_id, code),
        };
        let election = self.topic_election(topic_id);
        let target_isr = data.new_isr.iter().map(|&(id, _)| id).collect();
        let change = self
            .partition_change(partition, topic_id, partition_id, |r| {
                is_acceptable_leader(&self.image, r)
            })
            .set_election(election)
            .set_target_isr(target_isr)
            .set_target_leader_recovery_state(target_state)
            .build();
        if let Some(change) = change {
            // Only completing a reassignment can move the leadership here: the record is
            // written, and the requester learns it no longer leads.
            let moved = change.leader.is_some_and(|leader| leader != broker_id);
            self.append(records, MetadataRecord::PartitionChange(change));
            if moved {
                return AlterPartitionResult::error(partition_id, error_code::NEW_LEADER_ELECTED);
            }
        }
        let partition = self
            .image
            .partition(topic_id, partition_id)
            .expect("still there");
        AlterPartitionResult::state(partition_id, partition)
    }

    /// `validateAlterPartitionData`, in Kafka's order: epochs ahead of ours mean a newer
    /// controller (`NOT_CONTROLLER`), then a stale leader epoch, a requester that does not
    /// lead, a stale partition epoch, an ISR that is not a set of replicas holding the leader,
    /// an impossible recovery state, and ineligible members (KIP-903).
    fn validate_alter_partition(
        &self,
        broker_id: i32,
        partition: &PartitionRegistration,
        data: &AlterPartitionData,
    ) -> Result<LeaderRecoveryState, i16> {
        if data.leader_epoch > partition.leader_epoch
            || data.partition_epoch > partition.partition_epoch
        {
            return Err(error_code::NOT_CONTROLLER);
        }
        if data.leader_epoch < partition.leader_epoch {
            return Err(error_code::FENCED_LEADER_EPOCH);
        }
        if broker_id != partition.leader {
            // "Rejecting AlterPartition request from node {} ... because the current leader
            // is {}."
            return Err(error_code::INVALID_REQUEST);
        }
        if data.partition_epoch < partition.partition_epoch {
            return Err(error_code::INVALID_UPDATE_VERSION);
        }
        let new_isr: Vec<i32> = data.new_isr.iter().map(|&(id, _)| id).collect();
        let distinct = new_isr
            .iter()
            .enumerate()
            .all(|(i, r)| !new_isr[..i].contains(r));
        if !distinct
            || !new_isr.iter().all(|r| partition.replicas.contains(r))
            || !new_isr.contains(&partition.leader)
        {
            return Err(error_code::INVALID_REQUEST);
        }
        let state = LeaderRecoveryState::of(data.leader_recovery_state)
            .ok_or(error_code::INVALID_REQUEST)?;
        if state == LeaderRecoveryState::Recovering
            && (new_isr.len() > 1
                || partition.leader_recovery_state == LeaderRecoveryState::Recovered)
        {
            return Err(error_code::INVALID_REQUEST);
        }
        if data
            .new_isr
            .iter()
            .any(|&(id, epoch)| !self.eligible_for_isr(id, epoch, partition.leader))
        {
            return Err(error_code::INELIGIBLE_REPLICA);
        }
        Ok(state)
    }

    /// `ineligibleReplicasForIsr`: registered, unfenced, not shutting down (the leader itself
    /// excepted) and, with the KIP-903 check, of the quoted broker epoch unless that is -1.
    fn eligible_for_isr(&self, broker_id: i32, quoted_epoch: i64, leader: i32) -> bool {
        let Some(registration) = self.image.brokers.get(&broker_id) else {
            return false;
        };
        let epoch_ok = !self.config.broker_epoch_check
            || quoted_epoch == -1
            || quoted_epoch == registration.epoch;
        !registration.fenced
            && (!registration.in_controlled_shutdown || broker_id == leader)
            && epoch_ok
    }

    /// `electLeaders`. `partitions: None` tries every partition and leaves out those whose
    /// election was not needed.
    pub(super) fn elect_leaders(
        &mut self,
        election: Election,
        partitions: Option<&[(String, i32)]>,
        records: &mut Vec<MetadataRecord>,
    ) -> ControllerResponse {
        if election == Election::Online {
            // Kafka's `ElectionType` has only PREFERRED and UNCLEAN.
            return ControllerResponse::ElectLeaders {
                error_code: error_code::INVALID_REQUEST,
                results: Vec::new(),
            };
        }
        let mut results = Vec::new();
        match partitions {
            Some(partitions) => {
                for (topic, partition) in partitions {
                    let error = self.elect_leader(topic, *partition, election, records);
                    results.push(PartitionResult::new(topic, *partition, error));
                }
            }
            None => {
                let all: Vec<(String, i32)> = self
                    .image
                    .topics_by_name
                    .iter()
                    .flat_map(|(name, id)| {
                        self.image.topics[id]
                            .partitions
                            .keys()
                            .map(move |&p| (name.clone(), p))
                    })
                    .collect();
                for (topic, partition) in all {
                    let error = self.elect_leader(&topic, partition, election, records);
                    if error.code != error_code::ELECTION_NOT_NEEDED {
                        results.push(PartitionResult::new(&topic, partition, error));
                    }
                }
            }
        }
        ControllerResponse::ElectLeaders {
            error_code: error_code::NONE,
            results,
        }
    }

    /// `electLeader` for one partition.
    fn elect_leader(
        &mut self,
        topic: &str,
        partition_id: i32,
        election: Election,
        records: &mut Vec<MetadataRecord>,
    ) -> ApiError {
        let Some((topic_id, partition)) = self.partition_by_name(topic, partition_id) else {
            return ApiError::new(
                error_code::UNKNOWN_TOPIC_OR_PARTITION,
                format!("No such partition as {topic}-{partition_id}"),
            );
        };
        let not_needed = match election {
            Election::Preferred => partition.leader == partition.preferred_replica(),
            _ => partition.has_leader(),
        };
        if not_needed {
            return ApiError::code(error_code::ELECTION_NOT_NEEDED);
        }
        let change = self
            .partition_change(partition, topic_id, partition_id, |r| {
                is_acceptable_leader(&self.image, r)
            })
            .set_election(election)
            .build();
        match change {
            Some(change) => {
                self.append(records, MetadataRecord::PartitionChange(change));
                ApiError::code(error_code::NONE)
            }
            None if election == Election::Preferred => {
                ApiError::code(error_code::PREFERRED_LEADER_NOT_AVAILABLE)
            }
            None => ApiError::code(error_code::ELIGIBLE_LEADERS_NOT_AVAILABLE),
        }
    }

    /// `alterPartitionReassignments`: each partition on its own.
    pub(super) fn alter_partition_reassignments(
        &mut self,
        reassignments: &[PartitionReassignment],
        records: &mut Vec<MetadataRecord>,
    ) -> ControllerResponse {
        let results = reassignments
            .iter()
            .map(|r| {
                let error = self
                    .alter_partition_reassignment(r, records)
                    .err()
                    .unwrap_or(ApiError::code(error_code::NONE));
                PartitionResult::new(&r.topic, r.partition, error)
            })
            .collect();
        ControllerResponse::AlterPartitionReassignments {
            error_code: error_code::NONE,
            results,
        }
    }

    fn alter_partition_reassignment(
        &mut self,
        reassignment: &PartitionReassignment,
        records: &mut Vec<MetadataRecord>,
    ) -> Result<(), ApiError> {
        let (topic, partition_id) = (&reassignment.topic, reassignment.partition);
        let (topic_id, partition) =
            self.partition_by_name(topic, partition_id).ok_or_else(|| {
                ApiError::new(
                    error_code::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("Unable to find partition {topic}:{partition_id}."),
                )
            })?;
        let change = match &reassignment.replicas {
            Some(target) => {
                self.validate_manual_assignment(target, None)?;
                self.change_reassignment(topic_id, partition_id, partition, target)
            }
            None => self.cancel_reassignment(topic, topic_id, partition_id, partition)?,
        };
        if let Some(change) = change {
            self.append(records, MetadataRecord::PartitionChange(change));
        }
        Ok(())
    }

    /// `changePartitionReassignment`: replicas = target then the replicas being removed
    /// (ascending), adding = target − current, removing = current − target. The builder
    /// completes it at once when nothing is to be added and the ISR holds the target.
    fn change_reassignment(
        &self,
        topic_id: Uuid,
        partition_id: i32,
        partition: &PartitionRegistration,
        target: &[i32],
    ) -> Option<PartitionChangeRecord> {
        let mut removing: Vec<i32> = partition
            .replicas
            .iter()
            .copied()
            .filter(|r| !target.contains(r))
            .collect();
        removing.sort_unstable();
        let mut adding: Vec<i32> = target
            .iter()
            .copied()
            .filter(|r| !partition.replicas.contains(r))
            .collect();
        adding.sort_unstable();
        let replicas = target
            .iter()
            .copied()
            .chain(removing.iter().copied())
            .collect();
        self.partition_change(partition, topic_id, partition_id, |r| {
            is_acceptable_leader(&self.image, r)
        })
        .set_target_replicas(replicas)
        .set_target_removing(removing)
        .set_target_adding(adding)
        .build()
    }

    /// `cancelPartitionReassignment` (`PartitionReassignmentRevert`): back to the replicas
    /// before it (without those being added), the ISR without them; if that leaves the ISR
    /// empty, the first original replica alone, which is an unclean election.
    fn cancel_reassignment(
        &self,
        topic: &str,
        topic_id: Uuid,
        partition_id: i32,
        partition: &PartitionRegistration,
    ) -> Result<Option<PartitionChangeRecord>, ApiError> {
        if partition.adding_replicas.is_empty() && partition.removing_replicas.is_empty() {
            return Err(ApiError::code(error_code::NO_REASSIGNMENT_IN_PROGRESS));
        }
        let adding = &partition.adding_replicas;
        let replicas: Vec<i32> = partition
            .replicas
            .iter()
            .copied()
            .filter(|r| !adding.contains(r))
            .collect();
        let mut isr: Vec<i32> = partition
            .isr
            .iter()
            .copied()
            .filter(|r| !adding.contains(r))
            .collect();
        if isr.is_empty() {
            if !self.unclean_enabled(topic) {
                return Err(ApiError::new(
                    error_code::INVALID_REPLICA_ASSIGNMENT,
                    format!(
                        "Unable to revert partition assignment for {topic}:{partition_id} \
                         because it would require an unclean leader election."
                    ),
                ));
            }
            isr.push(replicas[0]);
        }
        Ok(self
            .partition_change(partition, topic_id, partition_id, |r| {
                is_acceptable_leader(&self.image, r)
            })
            .set_election(self.topic_election(topic_id))
            .set_target_isr(isr)
            .set_target_replicas(replicas)
            .set_target_removing(Vec::new())
            .set_target_adding(Vec::new())
            .build())
    }

    /// `maybeBalancePartitionLeaders`: a preferred election for every partition led by another
    /// than its preferred replica while that one could lead.
    pub(super) fn balance_partition_leaders(&mut self, records: &mut Vec<MetadataRecord>) {
        let image = &self.image;
        let imbalanced = self.partitions_where(|p| {
            p.leader != p.preferred_replica()
                && preferred_leader_available(p, |r| is_acceptable_leader(image, r))
        });
        for (topic_id, partition_id) in imbalanced {
            self.elect_by(topic_id, partition_id, Election::Preferred, records);
        }
    }

    /// `maybeElectUncleanLeaders`: an unclean election for every leaderless partition of a
    /// topic that allows it.
    pub(super) fn elect_unclean_leaders(&mut self, records: &mut Vec<MetadataRecord>) {
        let leaderless = self.partitions_where(|p| !p.has_leader());
        for (topic_id, partition_id) in leaderless {
            if self.topic_election(topic_id) == Election::Unclean {
                self.elect_by(topic_id, partition_id, Election::Unclean, records);
            }
        }
    }

    /// An election of `election`'s kind for one partition: a `PartitionChangeRecord` if it
    /// changes anything.
    pub(super) fn elect_by(
        &mut self,
        topic_id: Uuid,
        partition_id: i32,
        election: Election,
        records: &mut Vec<MetadataRecord>,
    ) {
        let partition = self
            .image
            .partition(topic_id, partition_id)
            .expect("listed by the caller");
        let change = self
            .partition_change(partition, topic_id, partition_id, |r| {
                is_acceptable_leader(&self.image, r)
            })
            .set_election(election)
            .build();
        if let Some(change) = change {
            self.append(records, MetadataRecord::PartitionChange(change));
        }
    }

    fn partition_by_name(
        &self,
        topic: &str,
        partition_id: i32,
    ) -> Option<(Uuid, &PartitionRegistration)> {
        let topic = self.image.topic_by_name(topic)?;
        Some((topic.id, topic.partitions.get(&partition_id)?))
    }
}
