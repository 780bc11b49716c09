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
//! Not built (yet): reassignment completion (`completeReassignmentIfNeeded`), ELR, directory
//! assignment, and the leader-epoch bump on ISR shrink that only metadata versions before 3.6
//! need.

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
        }
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

    /// `build()`: elect (`tryElection`), then set the ISR if it changes and the election did
    /// not already set it, then the recovery state; `None` when the record would change nothing.
    pub fn build(self) -> Option<PartitionChangeRecord> {
        let partition = self.partition;
        let mut record = PartitionChangeRecord {
            partition_id: self.partition_id,
            topic_id: self.topic_id,
            ..PartitionChangeRecord::default()
        };
        let result = elect_leader(
            &partition.replicas,
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
        // Without ELR the ISR is never set empty: the last member stays, leaderless.
        if record.isr.is_none() && !self.target_isr.is_empty() && self.target_isr != partition.isr {
            record.isr = Some(self.target_isr.clone());
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
