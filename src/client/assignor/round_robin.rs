//! Kafka's `RoundRobinAssignor`: every partition of every subscribed topic, sorted by topic and
//! partition, dealt to the members in `MemberInfo` order, round after round; a member not
//! subscribed to a partition's topic is passed over for it.

use std::collections::BTreeMap;

use super::{empty_assignment, topic_partitions, Assignment, MemberSubscription};

pub(super) fn assign(
    partitions: &BTreeMap<String, u32>,
    members: &[&MemberSubscription],
) -> Assignment {
    let mut assignment = empty_assignment(members);
    if members.is_empty() {
        return assignment;
    }
    let mut next = 0usize;
    for topic in partitions.keys() {
        if !members.iter().any(|m| m.topics.contains(topic)) {
            continue;
        }
        for tp in topic_partitions(partitions, topic) {
            // Some member takes this topic, so the search ends within one round.
            while !members[next % members.len()].topics.contains(topic) {
                next += 1;
            }
            let member = &members[next % members.len()].member_id;
            assignment
                .get_mut(member)
                .expect("every member has an entry")
                .push(tp);
            next += 1;
        }
    }
    assignment
}
