//! Partition leader election as Kafka's controller does it (`PartitionChangeBuilder.electLeader`):
//! given a partition's target replicas, target ISR, eligible leaders and which brokers may lead,
//! the new leader (or -1) and whether the election was unclean. `partition_change` builds the
//! record around it.
//!
//! By election type (`PartitionChangeBuilder.Election`):
//! - `Online` (the default, and unclean election disabled): keep the current leader if it is
//!   still valid; else the first valid replica in assignment order; else the last known leader
//!   (below); else no leader (-1, the partition goes offline).
//! - `Unclean` (`unclean.leader.election.enable`): as `Online`, then, if still none, the first
//!   acceptable replica even outside the ISR. Such a leader may lack committed records: the
//!   record sets the ISR to that leader alone and marks the partition `RECOVERING` (KIP-704).
//! - `Preferred` (`ElectLeaders` with PREFERRED, the auto leader rebalance): the first replica
//!   if it is valid; else the current leader if still valid; else the first other valid
//!   replica; else the last known leader; else no leader. Kafka answers
//!   `PREFERRED_LEADER_NOT_AVAILABLE` when no record results; see `preferred_leader_available`.
//!
//! "Valid" (`isValidNewLeader`) is: in the target ISR, or, when the target ISR is empty, in the
//! eligible leader replicas (KIP-966); and acceptable. "Acceptable" is the caller's predicate;
//! Kafka's controller passes "registered, unfenced and not in controlled shutdown"
//! (`ClusterControlManager.isActive`), minus any broker being removed.
//!
//! The last known leader (KIP-966 with `useLastKnownLeaderInBalancedRecovery`, on in Kafka's
//! controller): with the target ISR and ELR both empty, the broker that led when the ISR last
//! emptied, if acceptable again, is elected before any unclean candidate, even when unclean
//! election is disabled, and counts as unclean (`canElectLastKnownLeader`, with KAFKA-19522's
//! fix in Kafka 4.1: only an acceptable one; 4.0 elected it even while fenced).

use super::image::PartitionRegistration;
pub use super::partition_change::PartitionChangeBuilder;

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

/// What KIP-966 adds to an election: the target ELR, whose members are valid leaders while the
/// target ISR is empty, and the last known leader (`lastKnownElr[0]` when the last known ELR
/// holds exactly one broker and ELR is on). `default()` is an election without ELR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EligibleLeaders<'a> {
    pub elr: &'a [i32],
    pub last_known_leader: Option<i32>,
}

/// `electLeader` over a partition's target replicas and ISR, without ELR.
pub fn elect_leader(
    target_replicas: &[i32],
    target_isr: &[i32],
    current_leader: i32,
    election: Election,
    is_acceptable_leader: impl Fn(i32) -> bool,
) -> ElectionResult {
    elect_leader_with_elr(
        target_replicas,
        target_isr,
        EligibleLeaders::default(),
        current_leader,
        election,
        is_acceptable_leader,
    )
}

/// `electLeader` over a partition's target replicas, ISR and eligible leaders
/// (`electPreferredLeader`, `electAnyLeader`).
pub fn elect_leader_with_elr(
    target_replicas: &[i32],
    target_isr: &[i32],
    eligible: EligibleLeaders<'_>,
    current_leader: i32,
    election: Election,
    is_acceptable_leader: impl Fn(i32) -> bool,
) -> ElectionResult {
    let is_valid = |replica: i32| {
        let eligible_member = target_isr.contains(&replica)
            || (target_isr.is_empty() && eligible.elr.contains(&replica));
        eligible_member && is_acceptable_leader(replica)
    };
    let clean = |leader: i32| ElectionResult {
        leader,
        unclean: false,
    };
    // `canElectLastKnownLeader`: nobody is left in the ISR or the ELR, and the last leader is
    // back. Kafka counts it unclean: it may have lost what it had (it left the ELR by an
    // unclean shutdown, or never was in it).
    let last_known_leader = eligible
        .last_known_leader
        .filter(|_| target_isr.is_empty() && eligible.elr.is_empty())
        .filter(|&leader| is_acceptable_leader(leader))
        .map(|leader| ElectionResult {
            leader,
            unclean: true,
        });
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
            .map(clean)
            .or(last_known_leader)
            .unwrap_or(clean(NO_LEADER));
    }
    if is_valid(current_leader) {
        return clean(current_leader);
    }
    if let Some(leader) = target_replicas.iter().copied().find(|&r| is_valid(r)) {
        return clean(leader);
    }
    if let Some(result) = last_known_leader {
        return result;
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
