//! Partition leader election as Kafka's controller does it (`PartitionChangeBuilder`): given a
//! partition's registration, a target ISR and which brokers may lead, the
//! `PartitionChangeRecord` to write, or none when nothing changes.
//!
//! `electLeader`, without eligible leader replicas (KIP-966's feature off,
//! `eligible.leader.replicas.version=0`), by election type (`PartitionChangeBuilder.Election`):
//! - `Online` (the default, and unclean election disabled): keep the current leader if it is
//!   still in the target ISR and acceptable; else the first replica, in assignment order, that
//!   is in the target ISR and acceptable; else no leader (-1, the partition goes offline).
//! - `Unclean` (`unclean.leader.election.enable`): as `Online`, then, if still none, the first
//!   acceptable replica even outside the ISR. Such a leader may lack committed records: the
//!   record sets the ISR to that leader alone and marks the partition `RECOVERING` (KIP-704).
//! - `Preferred` (`ElectLeaders` with PREFERRED, the auto leader rebalance): the first replica
//!   if it is in the ISR and acceptable; else the current leader if still valid; else the first
//!   other valid replica; else no leader. Kafka answers `PREFERRED_LEADER_NOT_AVAILABLE` when no
//!   record results; see `preferred_leader_available`.
//!
//! "Acceptable" is the caller's predicate; Kafka's controller passes "registered, unfenced and
//! not in controlled shutdown" (`ClusterControlManager.isActive`), minus any broker being
//! removed.
//!
//! Reassignment (KIP-455 in KRaft): the builder's target replicas, removing and adding default
//! to the partition's, and `build` completes an ongoing reassignment once the target ISR holds
//! every replica that stays (`completeReassignmentIfNeeded`): the removing replicas leave the
//! replica list and the ISR, and a removed leader is replaced. A change that drops replicas
//! bumps the leader epoch even when the leader stays
//! (`triggerLeaderEpochBumpForReplicaReassignmentIfNeeded`).
//!
//! Not built (yet): ELR, directory assignment (replay derives the directories of a new replica
//! list), and the leader-epoch bump on ISR shrink that only metadata versions before 3.6 need.

use super::image::{LeaderRecoveryState, PartitionRegistration};
use super::records::PartitionChangeRecord;
use super::uuid::Uuid;

/// `LeaderConstants.NO_LEADER`.
pub const NO_LEADER: i32 = -1;

/// `PartitionChangeBuilder.Election`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Election {
    Preferred,
    Online,
    Unclean,
}

/// `PartitionChangeBuilder.ElectionResult`: the leader (or -1) and whether it was chosen from
/// outside the ISR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElectionResult {
    pub leader: i32,
    pub unclean: bool,
}

/// `electLeader` over a partition's target replicas and ISR.
pub fn elect_leader(
    target_replicas: &[i32],
    target_isr: &[i32],
    current_leader: i32,
    election: Election,
    is_acceptable_leader: impl Fn(i32) -> bool,
) -> ElectionResult {
    let is_valid = |replica: i32| target_isr.contains(&replica) && is_acceptable_leader(replica);
    let clean = |leader: i32| ElectionResult {
        leader,
        unclean: false,
    };
    if election == Election::Preferred {
        if let Some(&preferred) = target_replicas.first() {
            if is_valid(preferred) {
                return clean(preferred);
            }
        }
        if is_valid(current_leader) {
            return clean(current_leader);
        }
        return target_replicas
            .iter()
            .skip(1)
            .copied()
            .find(|&r| is_valid(r))
            .map_or(clean(NO_LEADER), clean);
    }
    if is_valid(current_leader) {
        return clean(current_leader);
    }
    if let Some(leader) = target_replicas.iter().copied().find(|&r| is_valid(r)) {
        return clean(leader);
    }
    if election == Election::Unclean {
        if let Some(leader) = target_replicas
            .iter()
            .copied()
            .find(|&r| is_acceptable_leader(r))
        {
            return ElectionResult {
                leader,
                unclean: true,
            };
        }
    }
    clean(NO_LEADER)
}

/// Whether a preferred election would make the first replica the leader: it is in the ISR and
/// acceptable. (When it already leads, Kafka answers `ELECTION_NOT_NEEDED` instead.)
pub fn preferred_leader_available(
    partition: &PartitionRegistration,
    is_acceptable_leader: impl Fn(i32) -> bool,
) -> bool {
    let preferred = partition.preferred_replica();
    preferred != NO_LEADER && partition.isr.contains(&preferred) && is_acceptable_leader(preferred)
}

/// `PartitionChangeBuilder`: the target state of one partition, and `build` to get the record
/// that moves it there.
pub struct PartitionChangeBuilder<'a, F: Fn(i32) -> bool> {
    partition: &'a PartitionRegistration,
    topic_id: Uuid,
    partition_id: i32,
    is_acceptable_leader: F,
    election: Election,
    target_isr: Vec<i32>,
    target_leader_recovery_state: LeaderRecoveryState,
    target_replicas: Vec<i32>,
    target_removing: Vec<i32>,
    target_adding: Vec<i32>,
}

impl<'a, F: Fn(i32) -> bool> PartitionChangeBuilder<'a, F> {
    pub fn new(
        partition: &'a PartitionRegistration,
        topic_id: Uuid,
        partition_id: i32,
        is_acceptable_leader: F,
    ) -> Self {
        PartitionChangeBuilder {
            partition,
            topic_id,
            partition_id,
            is_acceptable_leader,
            election: Election::Online,
            target_isr: partition.isr.clone(),
            target_leader_recovery_state: partition.leader_recovery_state,
            target_replicas: partition.replicas.clone(),
            target_removing: partition.removing_replicas.clone(),
            target_adding: partition.adding_replicas.clone(),
        }
    }

    /// The replica list to move to (a reassignment: the target followed by the replicas being
    /// removed).
    pub fn set_target_replicas(mut self, replicas: Vec<i32>) -> Self {
        self.target_replicas = replicas;
        self
    }

    pub fn set_target_removing(mut self, removing: Vec<i32>) -> Self {
        self.target_removing = removing;
        self
    }

    pub fn set_target_adding(mut self, adding: Vec<i32>) -> Self {
        self.target_adding = adding;
        self
    }

    pub fn set_election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    /// The ISR the change should leave (`AlterPartition`'s new ISR, or the old one minus a
    /// fenced broker).
    pub fn set_target_isr(mut self, target_isr: Vec<i32>) -> Self {
        self.target_isr = target_isr;
        self
    }

    /// `AlterPartition` from a leader that has recovered sets `RECOVERED`.
    pub fn set_target_leader_recovery_state(mut self, state: LeaderRecoveryState) -> Self {
        self.target_leader_recovery_state = state;
        self
    }

    /// `completeReassignmentIfNeeded` (`PartitionReassignmentReplicas.maybeCompleteReassignment`):
    /// once the target ISR, less the replicas being removed, is not empty and holds every
    /// remaining replica, the reassignment is done: the removing replicas leave the replica list
    /// and the ISR, and removing and adding are cleared.
    fn complete_reassignment_if_needed(&mut self) {
        if self.target_removing.is_empty() && self.target_adding.is_empty() {
            return;
        }
        let removing = &self.target_removing;
        let isr: Vec<i32> = self
            .target_isr
            .iter()
            .copied()
            .filter(|r| !removing.contains(r))
            .collect();
        let replicas: Vec<i32> = self
            .target_replicas
            .iter()
            .copied()
            .filter(|r| !removing.contains(r))
            .collect();
        if isr.is_empty() || replicas.is_empty() || !replicas.iter().all(|r| isr.contains(r)) {
            return;
        }
        self.target_isr = isr;
        self.target_replicas = replicas;
        self.target_removing.clear();
        self.target_adding.clear();
    }

    /// `build()`: complete a reassignment if it can be, elect over the target replicas
    /// (`tryElection`), bump the leader epoch if replicas leave, set the ISR if it changes and
    /// the election did not already set it, the replica lists that change, then the recovery
    /// state; `None` when the record would change nothing.
    pub fn build(mut self) -> Option<PartitionChangeRecord> {
        self.complete_reassignment_if_needed();
        let partition = self.partition;
        let mut record = PartitionChangeRecord {
            partition_id: self.partition_id,
            topic_id: self.topic_id,
            ..PartitionChangeRecord::default()
        };
        let result = elect_leader(
            &self.target_replicas,
            &self.target_isr,
            partition.leader,
            self.election,
            &self.is_acceptable_leader,
        );
        if result.leader != partition.leader {
            record.leader = Some(result.leader);
            if result.unclean {
                // "If the election was unclean, we have to forcibly set the ISR to just the new
                // leader. This can result in data loss!"
                record.isr = Some(vec![result.leader]);
                if partition.leader_recovery_state != LeaderRecoveryState::Recovering {
                    record.leader_recovery_state = Some(LeaderRecoveryState::Recovering as i8);
                }
            }
        }
        // A replica leaving the assignment must not keep following under the same leader epoch.
        if record.leader.is_none()
            && partition
                .replicas
                .iter()
                .any(|r| !self.target_replicas.contains(r))
        {
            record.leader = Some(partition.leader);
        }
        // Without ELR the ISR is never set empty: the last member stays, leaderless.
        if record.isr.is_none() && !self.target_isr.is_empty() && self.target_isr != partition.isr {
            record.isr = Some(self.target_isr.clone());
        }
        // `setAssignmentChanges`.
        if !self.target_replicas.is_empty() && self.target_replicas != partition.replicas {
            record.replicas = Some(self.target_replicas.clone());
        }
        if self.target_removing != partition.removing_replicas {
            record.removing_replicas = Some(self.target_removing.clone());
        }
        if self.target_adding != partition.adding_replicas {
            record.adding_replicas = Some(self.target_adding.clone());
        }
        if self.target_leader_recovery_state != partition.leader_recovery_state {
            record.leader_recovery_state = Some(self.target_leader_recovery_state as i8);
        }
        let no_op = record
            == PartitionChangeRecord {
                partition_id: self.partition_id,
                topic_id: self.topic_id,
                ..PartitionChangeRecord::default()
            };
        (!no_op).then_some(record)
    }
}
