//! The consumer's partition assignors (`partition.assignment.strategy`), run by the group leader
//! on the subscriptions every member sent in its `JoinGroup` (Kafka's `ConsumerPartitionAssignor`):
//!
//! - `range` (`RangeAssignor`): per topic, the members subscribed to it, in order, each take a
//!   contiguous range; the first `partitions % members` take one more.
//! - `roundrobin` (`RoundRobinAssignor`): every subscribed partition, sorted, dealt to the
//!   members in turn, skipping a member not subscribed to its topic.
//! - `sticky` (`StickyAssignor`, KIP-54): balanced, and keeps as many of each member's owned
//!   partitions as balance allows.
//! - `cooperative-sticky` (`CooperativeStickyAssignor`, KIP-429): the sticky assignment, less the
//!   partitions changing owner: their old owner revokes them first, and the rebalance that
//!   follows hands them out.
//!
//! Members are ordered as Kafka's `MemberInfo` orders them: static members (KIP-345) by their
//! `group.instance.id`, before dynamic members by member id.

mod range;
mod round_robin;
mod sticky;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::scenario::TopicPartition;

/// What one member sent in its `JoinGroup` (Kafka's `ConsumerProtocolSubscription`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberSubscription {
    pub member_id: String,
    /// `group.instance.id` (static membership, KIP-345).
    pub group_instance_id: Option<String>,
    pub topics: BTreeSet<String>,
    /// The partitions the member owns now (KIP-429), as of `generation`.
    pub owned: Vec<TopicPartition>,
    /// The generation the member last joined; -1 when it never did.
    pub generation: i32,
}

impl MemberSubscription {
    pub fn new(member_id: &str, topics: &[&str]) -> Self {
        MemberSubscription {
            member_id: member_id.to_string(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            generation: -1,
            ..Default::default()
        }
    }

    /// Kafka's `MemberInfo.compareTo`.
    fn order(&self, other: &Self) -> Ordering {
        match (&self.group_instance_id, &other.group_instance_id) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => self.member_id.cmp(&other.member_id),
        }
    }
}

/// Member id → the partitions assigned to it, sorted. Every member has an entry.
pub type Assignment = BTreeMap<String, Vec<TopicPartition>>;

/// How members give up partitions in a rebalance (`RebalanceProtocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebalanceProtocol {
    /// Every member revokes everything before it joins.
    Eager,
    /// Members keep their partitions and revoke only what moves (KIP-429).
    Cooperative,
}

/// The assignors Kafka ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AssignorKind {
    Range,
    RoundRobin,
    Sticky,
    CooperativeSticky,
}

impl AssignorKind {
    pub const ALL: [AssignorKind; 4] = [
        AssignorKind::Range,
        AssignorKind::RoundRobin,
        AssignorKind::Sticky,
        AssignorKind::CooperativeSticky,
    ];

    /// The protocol name members announce in `JoinGroup`.
    pub fn name(self) -> &'static str {
        match self {
            AssignorKind::Range => "range",
            AssignorKind::RoundRobin => "roundrobin",
            AssignorKind::Sticky => "sticky",
            AssignorKind::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// The class a `partition.assignment.strategy` names, or its protocol name.
    pub fn from_config(text: &str) -> Option<Self> {
        let short = text.rsplit('.').next().unwrap_or(text);
        AssignorKind::ALL.into_iter().find(|kind| {
            kind.name() == text
                || short
                    == match kind {
                        AssignorKind::Range => "RangeAssignor",
                        AssignorKind::RoundRobin => "RoundRobinAssignor",
                        AssignorKind::Sticky => "StickyAssignor",
                        AssignorKind::CooperativeSticky => "CooperativeStickyAssignor",
                    }
        })
    }

    pub fn from_name(name: &str) -> Option<Self> {
        AssignorKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
    }

    pub fn protocol(self) -> RebalanceProtocol {
        match self {
            AssignorKind::CooperativeSticky => RebalanceProtocol::Cooperative,
            _ => RebalanceProtocol::Eager,
        }
    }

    /// The assignment of `partitions` (topic → partition count) to `members`. Topics a member
    /// subscribes to that do not exist are skipped, as Kafka's assignors skip topics missing
    /// from the metadata.
    pub fn assign(
        self,
        partitions: &BTreeMap<String, u32>,
        members: &[MemberSubscription],
    ) -> Assignment {
        let mut members: Vec<&MemberSubscription> = members.iter().collect();
        members.sort_by(|a, b| a.order(b));
        let assignment = match self {
            AssignorKind::Range => range::assign(partitions, &members),
            AssignorKind::RoundRobin => round_robin::assign(partitions, &members),
            AssignorKind::Sticky => sticky::assign(partitions, &members),
            AssignorKind::CooperativeSticky => {
                let mut assignment = sticky::assign(partitions, &members);
                withhold_transfers(&mut assignment, &members);
                assignment
            }
        };
        debug_assert!(members
            .iter()
            .all(|m| assignment.contains_key(&m.member_id)));
        assignment
    }
}

/// KIP-429's two-phase move: a partition assigned to one member and still owned by another is
/// left out this round; its owner revokes it, rejoins, and the next assignment gives it out
/// (Kafka's `CooperativeStickyAssignor.adjustAssignment`).
fn withhold_transfers(assignment: &mut Assignment, members: &[&MemberSubscription]) {
    let mut owner: BTreeMap<&TopicPartition, &str> = BTreeMap::new();
    for member in members {
        for tp in &member.owned {
            owner.insert(tp, &member.member_id);
        }
    }
    for (member, partitions) in assignment.iter_mut() {
        partitions.retain(|tp| owner.get(tp).is_none_or(|o| o == member));
    }
}

/// The partitions of `topic`, or none when it does not exist.
fn topic_partitions(partitions: &BTreeMap<String, u32>, topic: &str) -> Vec<TopicPartition> {
    let count = partitions.get(topic).copied().unwrap_or(0);
    (0..count)
        .map(|partition| TopicPartition {
            topic: topic.to_string(),
            partition,
        })
        .collect()
}

/// An empty entry for every member.
fn empty_assignment(members: &[&MemberSubscription]) -> Assignment {
    members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect()
}
