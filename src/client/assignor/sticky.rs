//! Kafka's sticky assignment (`AbstractStickyAssignor`, KIP-54, KIP-341): as balanced as the
//! subscriptions allow, and keeping each member's owned partitions where balance allows.
//!
//! Ownership first: a partition claimed by several members belongs to the claim of the highest
//! generation; claims tied at that generation are all dropped (Kafka logs them as invalid), as
//! are partitions of topics the member no longer subscribes to or that are gone.
//!
//! - Every member subscribes to the same topics (Kafka's `constrainedAssign`): with `n`
//!   partitions and `m` members, each member ends with `n / m` partitions, and `n % m` of them one
//!   more. Members keep their owned partitions up to that quota (in member order, the first to
//!   own more than `n / m` keep one more while such places remain); the rest, and partitions no
//!   one owns, fill the members below their quota. Nothing moves that balance does not need.
//! - Subscriptions differ (`generalAssign`): every member keeps its owned partitions, the
//!   unowned go, those with the fewest candidates first, to the least loaded member subscribed
//!   to them, and then partitions move one at a time from a member to one subscribed to them
//!   with at least two fewer, until no such move is left. (Kafka's general case searches
//!   further for balance; this one stops at the first state no single move improves.)

use std::collections::{BTreeMap, BTreeSet};

use super::{empty_assignment, topic_partitions, Assignment, MemberSubscription};
use crate::scenario::TopicPartition;

pub(super) fn assign(
    partitions: &BTreeMap<String, u32>,
    members: &[&MemberSubscription],
) -> Assignment {
    let mut assignment = empty_assignment(members);
    if members.is_empty() {
        return assignment;
    }
    let owned = owned_partitions(partitions, members);
    let same_topics = members.iter().all(|m| m.topics == members[0].topics);
    if same_topics {
        constrained(partitions, members, &owned, &mut assignment);
    } else {
        general(partitions, members, &owned, &mut assignment);
    }
    for partitions in assignment.values_mut() {
        partitions.sort();
    }
    assignment
}

/// Each member's valid claims, sorted: the partition exists, the member subscribes to its topic,
/// and no claim of a later generation, nor a tie, contests it.
fn owned_partitions<'a>(
    partitions: &BTreeMap<String, u32>,
    members: &[&'a MemberSubscription],
) -> BTreeMap<&'a str, Vec<TopicPartition>> {
    let mut claims: BTreeMap<&TopicPartition, Vec<(&str, i32)>> = BTreeMap::new();
    for member in members {
        for tp in &member.owned {
            let exists = partitions.get(&tp.topic).is_some_and(|&n| tp.partition < n);
            if exists && member.topics.contains(&tp.topic) {
                claims
                    .entry(tp)
                    .or_default()
                    .push((&member.member_id, member.generation));
            }
        }
    }
    let mut owned: BTreeMap<&str, Vec<TopicPartition>> = members
        .iter()
        .map(|m| (m.member_id.as_str(), Vec::new()))
        .collect();
    for (tp, claimants) in claims {
        let top = claimants.iter().map(|&(_, g)| g).max().expect("a claim");
        let mut at_top = claimants.iter().filter(|&&(_, g)| g == top);
        if let (Some(&(member, _)), None) = (at_top.next(), at_top.next()) {
            owned.get_mut(member).expect("a member").push(tp.clone());
        }
    }
    owned
}

fn constrained(
    partitions: &BTreeMap<String, u32>,
    members: &[&MemberSubscription],
    owned: &BTreeMap<&str, Vec<TopicPartition>>,
    assignment: &mut Assignment,
) {
    let all: Vec<TopicPartition> = members[0]
        .topics
        .iter()
        .flat_map(|topic| topic_partitions(partitions, topic))
        .collect();
    let min_quota = all.len() / members.len();
    let mut places_over_min = all.len() % members.len();
    let mut kept = BTreeSet::new();
    for member in members {
        let mine = &owned[member.member_id.as_str()];
        let keep = if mine.len() > min_quota && places_over_min > 0 {
            places_over_min -= 1;
            min_quota + 1
        } else {
            mine.len().min(min_quota)
        };
        let target = assignment.get_mut(&member.member_id).expect("an entry");
        target.extend_from_slice(&mine[..keep]);
        kept.extend(mine[..keep].iter().cloned());
    }
    let mut unassigned = all.into_iter().filter(|tp| !kept.contains(tp));
    // First every member up to the minimum quota, then one more for as many as may have it.
    for member in members {
        let target = assignment.get_mut(&member.member_id).expect("an entry");
        while target.len() < min_quota {
            target.push(unassigned.next().expect("enough partitions for the quotas"));
        }
    }
    for member in members {
        if places_over_min == 0 {
            break;
        }
        let target = assignment.get_mut(&member.member_id).expect("an entry");
        if target.len() == min_quota {
            target.push(
                unassigned
                    .next()
                    .expect("a partition for each place over the minimum"),
            );
            places_over_min -= 1;
        }
    }
    debug_assert!(unassigned.next().is_none(), "every partition is assigned");
}

fn general(
    partitions: &BTreeMap<String, u32>,
    members: &[&MemberSubscription],
    owned: &BTreeMap<&str, Vec<TopicPartition>>,
    assignment: &mut Assignment,
) {
    let candidates = |topic: &str| -> Vec<&str> {
        members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.member_id.as_str())
            .collect()
    };
    let mut kept = BTreeSet::new();
    for (member, mine) in owned {
        assignment
            .get_mut(*member)
            .expect("an entry")
            .extend_from_slice(mine);
        kept.extend(mine.iter().cloned());
    }
    let topics: BTreeSet<&String> = members.iter().flat_map(|m| &m.topics).collect();
    let mut unassigned: Vec<(usize, TopicPartition)> = topics
        .into_iter()
        .flat_map(|topic| topic_partitions(partitions, topic))
        .filter(|tp| !kept.contains(tp))
        .map(|tp| (candidates(&tp.topic).len(), tp))
        .collect();
    unassigned.sort();
    for (_, tp) in unassigned {
        let to = least_loaded(assignment, &candidates(&tp.topic));
        assignment.get_mut(to.as_str()).expect("an entry").push(tp);
    }
    // Each move lowers the sum of squared loads, so the loop ends; the bound is a backstop.
    let total: usize = assignment.values().map(Vec::len).sum();
    for _ in 0..total * members.len() + 1 {
        let Some((from, tp, to)) = improving_move(assignment, &candidates) else {
            return;
        };
        let source = assignment.get_mut(&from).expect("an entry");
        source.retain(|p| *p != tp);
        assignment.get_mut(&to).expect("an entry").push(tp);
    }
    panic!("sticky assignor: balancing did not settle");
}

/// The candidate with the fewest partitions (the first in member order among equals).
fn least_loaded(assignment: &Assignment, candidates: &[&str]) -> String {
    candidates
        .iter()
        .min_by_key(|m| assignment[**m].len())
        .expect("a subscribed member")
        .to_string()
}

/// A partition of the most loaded member possible that some member subscribed to it holds at
/// least two fewer than its holder.
fn improving_move<'a>(
    assignment: &Assignment,
    candidates: &impl Fn(&str) -> Vec<&'a str>,
) -> Option<(String, TopicPartition, String)> {
    let mut by_load: Vec<(&String, &Vec<TopicPartition>)> = assignment.iter().collect();
    by_load.sort_by_key(|(member, parts)| (std::cmp::Reverse(parts.len()), *member));
    for (member, parts) in by_load {
        for tp in parts {
            let to = least_loaded(assignment, &candidates(&tp.topic));
            if assignment[&to].len() + 1 < parts.len() {
                return Some((member.clone(), tp.clone(), to));
            }
        }
    }
    None
}
