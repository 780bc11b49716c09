//! Kafka's `RangeAssignor` (without racks): topic by topic, the members subscribed to it, in
//! `MemberInfo` order, take contiguous ranges of its partitions; with `n` partitions and `m`
//! members, each takes `n / m` and the first `n % m` one more.

use std::collections::BTreeMap;

use super::{empty_assignment, topic_partitions, Assignment, MemberSubscription};

pub(super) fn assign(
    partitions: &BTreeMap<String, u32>,
    members: &[&MemberSubscription],
) -> Assignment {
    let mut assignment = empty_assignment(members);
    for topic in partitions.keys() {
        let subscribed: Vec<&MemberSubscription> = members
            .iter()
            .copied()
            .filter(|m| m.topics.contains(topic))
            .collect();
        if subscribed.is_empty() {
            continue;
        }
        let all = topic_partitions(partitions, topic);
        let per_member = all.len() / subscribed.len();
        let extra = all.len() % subscribed.len();
        for (i, member) in subscribed.iter().enumerate() {
            let start = per_member * i + i.min(extra);
            let length = per_member + usize::from(i < extra);
            let mine = assignment
                .get_mut(&member.member_id)
                .expect("every member has an entry");
            mine.extend_from_slice(&all[start..start + length]);
        }
    }
    for partitions in assignment.values_mut() {
        partitions.sort();
    }
    assignment
}
