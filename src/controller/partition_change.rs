//! Kafka's `PartitionChangeBuilder`: the target state of one partition (ISR, replicas,
//! reassignment, recovery state, eligible leaders) and `build`, the `PartitionChangeRecord` that
//! moves the partition there, or none when nothing changes. The leader comes from
//! `election::elect_leader_with_elr`.
//!
//! Eligible leader replicas (KIP-966 part 1, `eligible.leader.replicas.version=1`, as Kafka
//! 4.1's builder; off unless `set_eligible_leader_replicas`, which is Kafka before 4.0: no ELR,
//! and the ISR is never set empty, its last member staying, leaderless):
//! - `maybePopulateTargetElr`: a target ISR of at least `min.insync.replicas` clears the ELR;
//!   a smaller one makes the ELR (old ELR ∪ old ISR) − target ISR − the replicas that shut down
//!   uncleanly. The brokers' HW does not advance while the ISR is below min ISR (KIP-966's
//!   strict min ISR), so a replica that leaves the ISR then still holds every committed record
//!   and may lead cleanly.
//! - `tryElection`: an ELR member elected (only ever while the target ISR is empty) becomes the
//!   ISR alone and leaves the ELR; the election is clean. `maybeUpdateRecordElr`: an unclean
//!   election clears the ELR, the new leader's log being no longer known to hold what was
//!   committed.
//! - The ISR may become empty, the partition leaderless.
//! - `maybeUpdateLastKnownLeader` (`useLastKnownLeaderInBalancedRecovery`, on in Kafka's
//!   controller): the last known ELR holds the leader the partition had when its ISR emptied,
//!   and is cleared once the partition has a leader again. The multi-member last known ELR of
//!   the other mode (`maybePopulateTargetElr`'s second half) is not kept: with the flag on Kafka
//!   computes it and never writes it.
//!
//! Reassignment (KIP-455 in KRaft): the target replicas, removing and adding default to the
//! partition's, and `build` completes an ongoing reassignment once the target ISR holds every
//! replica that stays (`completeReassignmentIfNeeded`): the removing replicas leave the replica
//! list and the ISR, and a removed leader is replaced. A change that drops replicas bumps the
//! leader epoch even when the leader stays
//! (`triggerLeaderEpochBumpForReplicaReassignmentIfNeeded`).
//!
//! Not built (yet): directory assignment (replay derives the directories of a new replica
//! list), the leader-epoch bump on ISR shrink that only metadata versions before 3.6 need, and
//! clearing the ELRs when `min.insync.replicas` changes (the controller serves no
//! `IncrementalAlterConfigs` yet).

use std::collections::BTreeSet;

use super::election::{elect_leader_with_elr, Election, EligibleLeaders, NO_LEADER};
use super::image::{LeaderRecoveryState, PartitionRegistration};
use super::records::PartitionChangeRecord;
use super::uuid::Uuid;

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
    /// KIP-966 on (`eligibleLeaderReplicasEnabled`; off unless set, as in Kafka's builder).
    elr_enabled: bool,
    /// The topic's effective `min.insync.replicas` (only read with ELR on).
    min_isr: usize,
    target_elr: Vec<i32>,
    /// Replicas whose broker restarted without a clean shutdown: never (again) in the ELR.
    unclean_shutdown_replicas: Vec<i32>,
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
            elr_enabled: false,
            min_isr: 1,
            target_elr: partition.elr.clone(),
            unclean_shutdown_replicas: Vec::new(),
        }
    }

    /// KIP-966's eligible leader replicas, with the topic's effective `min.insync.replicas`
    /// (`ReplicationControlManager.getTopicEffectiveMinIsr`).
    pub fn set_eligible_leader_replicas(mut self, enabled: bool, min_isr: usize) -> Self {
        self.elr_enabled = enabled;
        self.min_isr = min_isr;
        self
    }

    /// `setUncleanShutdownReplicas`: brokers that registered again without proof of a clean
    /// shutdown; they leave the ELR as well as the ISR.
    pub fn set_unclean_shutdown_replicas(mut self, replicas: Vec<i32>) -> Self {
        self.unclean_shutdown_replicas = replicas;
        self
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

    /// `maybePopulateTargetElr`: with ELR on, a target ISR of at least min ISR clears the ELR;
    /// a smaller one makes it (old ELR ∪ old ISR) − target ISR − unclean shutdowns, ascending
    /// (the order of Kafka's `HashSet` of small integers).
    fn maybe_populate_target_elr(&mut self) {
        if !self.elr_enabled {
            return;
        }
        if self.target_isr.len() >= self.min_isr {
            self.target_elr.clear();
            return;
        }
        let candidates: BTreeSet<i32> = self
            .target_elr
            .iter()
            .chain(&self.partition.isr)
            .copied()
            .collect();
        self.target_elr = candidates
            .into_iter()
            .filter(|r| !self.target_isr.contains(r))
            .filter(|r| !self.unclean_shutdown_replicas.contains(r))
            .collect();
    }

    /// `tryElection`: a new leader (or -1) goes in the record. One from the ELR becomes the ISR
    /// alone and leaves the ELR; an unclean one forcibly becomes the ISR alone.
    fn try_election(&mut self, record: &mut PartitionChangeRecord) {
        let partition = self.partition;
        let last_known_leader = match partition.last_known_elr.as_slice() {
            [leader] if self.elr_enabled => Some(*leader),
            _ => None,
        };
        let eligible = EligibleLeaders {
            elr: &self.target_elr,
            last_known_leader,
        };
        let result = elect_leader_with_elr(
            &self.target_replicas,
            &self.target_isr,
            eligible,
            partition.leader,
            self.election,
            &self.is_acceptable_leader,
        );
        if result.leader == partition.leader {
            return;
        }
        if self.target_elr.contains(&result.leader) {
            self.target_isr = vec![result.leader];
            self.target_elr.retain(|&r| r != result.leader);
        }
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

    /// `maybeUpdateRecordElr`: an unclean election (the only one that has set the ISR by now)
    /// or ELR off leaves no ELR; the record carries the ELR when it changes.
    fn maybe_update_record_elr(&mut self, record: &mut PartitionChangeRecord) {
        let clean_election = record.isr.is_none();
        if !clean_election || !self.elr_enabled {
            self.target_elr.clear();
        }
        if self.target_elr != self.partition.elr {
            record.eligible_leader_replicas = Some(self.target_elr.clone());
        }
    }

    /// `maybeUpdateLastKnownLeader`: the ISR becoming empty records the leader the partition
    /// had (once); a partition that has, or keeps, a leader forgets it.
    fn maybe_update_last_known_leader(&self, record: &mut PartitionChangeRecord) {
        if !self.elr_enabled {
            return;
        }
        let partition = self.partition;
        let isr_emptied = record.isr.as_ref().is_some_and(|isr| isr.is_empty());
        let has_leader = record.leader.is_some_and(|leader| leader >= 0)
            || (partition.leader != NO_LEADER && record.leader != Some(NO_LEADER));
        if isr_emptied && partition.last_known_elr != [partition.leader] {
            record.last_known_elr = Some(vec![partition.leader]);
        } else if has_leader && !partition.last_known_elr.is_empty() {
            record.last_known_elr = Some(Vec::new());
        }
    }

    /// `build()`: complete a reassignment if it can be, work out the ELR, elect over the target
    /// replicas (`tryElection`), bump the leader epoch if replicas leave, set the ELR and then
    /// the ISR if they change (and the election did not already set the ISR), the last known
    /// leader, the replica lists that change, then the recovery state; `None` when the record
    /// would change nothing.
    pub fn build(mut self) -> Option<PartitionChangeRecord> {
        self.complete_reassignment_if_needed();
        self.maybe_populate_target_elr();
        let partition = self.partition;
        let mut record = PartitionChangeRecord {
            partition_id: self.partition_id,
            topic_id: self.topic_id,
            ..PartitionChangeRecord::default()
        };
        self.try_election(&mut record);
        // A replica leaving the assignment must not keep following under the same leader epoch.
        if record.leader.is_none()
            && partition
                .replicas
                .iter()
                .any(|r| !self.target_replicas.contains(r))
        {
            record.leader = Some(partition.leader);
        }
        self.maybe_update_record_elr(&mut record);
        // Without ELR the ISR is never set empty: the last member stays, leaderless. With it,
        // the ISR may be empty and the ELR says who may still lead.
        let isr_may_be_set = !self.target_isr.is_empty() || self.elr_enabled;
        if record.isr.is_none() && isr_may_be_set && self.target_isr != partition.isr {
            record.isr = Some(self.target_isr.clone());
        }
        self.maybe_update_last_known_leader(&mut record);
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
