use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::{Assignment, AssignorKind, MemberSubscription};
use crate::scenario::TopicPartition;

fn tp(topic: &str, partition: u32) -> TopicPartition {
    TopicPartition {
        topic: topic.to_string(),
        partition,
    }
}

fn counts(topics: &[(&str, u32)]) -> BTreeMap<String, u32> {
    topics.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

fn get<'a>(assignment: &'a Assignment, member: &str) -> &'a [TopicPartition] {
    &assignment[member]
}

#[test]
fn range_matches_kafkas_documented_example() {
    // RangeAssignor's javadoc: C0 and C1 subscribe to t0 and t1, three partitions each.
    let members = [
        MemberSubscription::new("C0", &["t0", "t1"]),
        MemberSubscription::new("C1", &["t0", "t1"]),
    ];
    let a = AssignorKind::Range.assign(&counts(&[("t0", 3), ("t1", 3)]), &members);
    assert_eq!(
        get(&a, "C0"),
        [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]
    );
    assert_eq!(get(&a, "C1"), [tp("t0", 2), tp("t1", 2)]);
}

#[test]
fn roundrobin_matches_kafkas_documented_examples() {
    // RoundRobinAssignor's javadoc, same subscriptions...
    let members = [
        MemberSubscription::new("C0", &["t0", "t1"]),
        MemberSubscription::new("C1", &["t0", "t1"]),
    ];
    let a = AssignorKind::RoundRobin.assign(&counts(&[("t0", 3), ("t1", 3)]), &members);
    assert_eq!(get(&a, "C0"), [tp("t0", 0), tp("t0", 2), tp("t1", 1)]);
    assert_eq!(get(&a, "C1"), [tp("t0", 1), tp("t1", 0), tp("t1", 2)]);
    // ...and different ones: C0 takes t0, C1 t0 and t1, C2 all three.
    let members = [
        MemberSubscription::new("C0", &["t0"]),
        MemberSubscription::new("C1", &["t0", "t1"]),
        MemberSubscription::new("C2", &["t0", "t1", "t2"]),
    ];
    let a = AssignorKind::RoundRobin.assign(&counts(&[("t0", 1), ("t1", 2), ("t2", 3)]), &members);
    assert_eq!(get(&a, "C0"), [tp("t0", 0)]);
    assert_eq!(get(&a, "C1"), [tp("t1", 0)]);
    assert_eq!(
        get(&a, "C2"),
        [tp("t1", 1), tp("t2", 0), tp("t2", 1), tp("t2", 2)]
    );
}

#[test]
fn sticky_keeps_what_the_remaining_members_owned_in_kafkas_example() {
    // StickyAssignor's javadoc: three members, four topics of two partitions; C1 leaves.
    let topics = counts(&[("t0", 2), ("t1", 2), ("t2", 2), ("t3", 2)]);
    let all = ["t0", "t1", "t2", "t3"];
    let first = AssignorKind::Sticky.assign(
        &topics,
        &[
            MemberSubscription::new("C0", &all),
            MemberSubscription::new("C1", &all),
            MemberSubscription::new("C2", &all),
        ],
    );
    let owning = |id: &str| MemberSubscription {
        owned: first[id].clone(),
        generation: 1,
        ..MemberSubscription::new(id, &all)
    };
    let second = AssignorKind::Sticky.assign(&topics, &[owning("C0"), owning("C2")]);
    for id in ["C0", "C2"] {
        assert_eq!(second[id].len(), 4);
        assert!(
            first[id].iter().all(|p| second[id].contains(p)),
            "{id}: {second:?}"
        );
    }
}

#[test]
fn static_members_come_first_in_instance_id_order() {
    let member = |id: &str, instance: Option<&str>| MemberSubscription {
        group_instance_id: instance.map(str::to_string),
        ..MemberSubscription::new(id, &["t"])
    };
    let members = [
        member("a", None),
        member("z", Some("i2")),
        member("m", Some("i1")),
    ];
    let a = AssignorKind::Range.assign(&counts(&[("t", 3)]), &members);
    assert_eq!(get(&a, "m"), [tp("t", 0)]);
    assert_eq!(get(&a, "z"), [tp("t", 1)]);
    assert_eq!(get(&a, "a"), [tp("t", 2)]);
}

#[test]
fn a_contested_partition_goes_to_the_claim_of_the_later_generation() {
    let member = |id: &str, generation: i32| MemberSubscription {
        owned: vec![tp("t", 0)],
        generation,
        ..MemberSubscription::new(id, &["t"])
    };
    let a = AssignorKind::Sticky.assign(&counts(&[("t", 2)]), &[member("a", 3), member("b", 4)]);
    assert_eq!(get(&a, "b"), [tp("t", 0)]);
    assert_eq!(get(&a, "a"), [tp("t", 1)]);
}

#[test]
fn cooperative_sticky_withholds_a_moving_partition_until_its_owner_revoked_it() {
    let topics = counts(&[("t", 2)]);
    let a = MemberSubscription {
        owned: vec![tp("t", 0), tp("t", 1)],
        generation: 1,
        ..MemberSubscription::new("a", &["t"])
    };
    let b = MemberSubscription::new("b", &["t"]);
    let first = AssignorKind::CooperativeSticky.assign(&topics, &[a.clone(), b.clone()]);
    assert_eq!(first["a"].len(), 1);
    assert_eq!(first["b"], []);
    let a = MemberSubscription {
        owned: first["a"].clone(),
        generation: 2,
        ..a
    };
    let second = AssignorKind::CooperativeSticky.assign(&topics, &[a, b]);
    assert_eq!(second["a"], first["a"]);
    assert_eq!(second["b"].len(), 1);
}

#[test]
fn assignors_are_named_as_kafka_names_them() {
    for kind in AssignorKind::ALL {
        assert_eq!(AssignorKind::from_name(kind.name()), Some(kind));
    }
    assert_eq!(
        AssignorKind::from_config("org.apache.kafka.clients.consumer.CooperativeStickyAssignor"),
        Some(AssignorKind::CooperativeSticky)
    );
    assert_eq!(
        AssignorKind::from_config("range"),
        Some(AssignorKind::Range)
    );
    assert_eq!(AssignorKind::from_config("org.example.Mine"), None);
}

// ---- properties -------------------------------------------------------------------------------

const TOPICS: [&str; 4] = ["a", "b", "c", "d"];

/// Topic partition counts (some topics may have none) and members with their subscriptions.
fn group() -> impl Strategy<Value = (BTreeMap<String, u32>, Vec<MemberSubscription>)> {
    let topics = proptest::collection::vec(0u32..9, TOPICS.len());
    let members = proptest::collection::vec((1u8..16, proptest::option::of(0u8..4)), 1..7);
    (topics, members).prop_map(|(counts, members)| {
        let topics = TOPICS
            .iter()
            .zip(counts)
            .map(|(t, n)| (t.to_string(), n))
            .collect();
        let members = members
            .into_iter()
            .enumerate()
            .map(|(i, (mask, instance))| MemberSubscription {
                member_id: format!("m{i}"),
                group_instance_id: instance.map(|n| format!("static-{i}-{n}")),
                topics: TOPICS
                    .iter()
                    .enumerate()
                    .filter(|(bit, _)| mask & (1 << bit) != 0)
                    .map(|(_, t)| t.to_string())
                    .collect(),
                owned: Vec::new(),
                generation: -1,
            })
            .collect();
        (topics, members)
    })
}

/// Every member subscribes to the same topics.
fn uniform_group() -> impl Strategy<Value = (BTreeMap<String, u32>, Vec<MemberSubscription>)> {
    group().prop_map(|(topics, mut members)| {
        let shared = members[0].topics.clone();
        for m in &mut members {
            m.topics = shared.clone();
        }
        (topics, members)
    })
}

/// Partitions assigned more than once, and subscribed partitions not assigned.
fn coverage_faults(
    topics: &BTreeMap<String, u32>,
    members: &[MemberSubscription],
    assignment: &Assignment,
) -> Vec<String> {
    let mut faults = Vec::new();
    let mut seen = BTreeSet::new();
    for m in members {
        for p in &assignment[&m.member_id] {
            if !m.topics.contains(&p.topic) {
                faults.push(format!("{} got {p} outside its subscription", m.member_id));
            }
            if !seen.insert(p.clone()) {
                faults.push(format!("{p} assigned twice"));
            }
        }
    }
    for m in members {
        for t in &m.topics {
            for p in 0..topics[t] {
                if !seen.contains(&tp(t, p)) {
                    faults.push(format!("{t}-{p} unassigned"));
                }
            }
        }
    }
    faults.sort();
    faults.dedup();
    faults
}

fn spread(assignment: &Assignment) -> usize {
    let sizes = assignment.values().map(Vec::len);
    sizes.clone().max().unwrap_or(0) - sizes.min().unwrap_or(0)
}

/// Runs `kind` as a group does over rebalances: the members' owned partitions and generation
/// carried over; cooperatively, a second round once the withheld partitions were revoked.
fn rebalance(
    kind: AssignorKind,
    topics: &BTreeMap<String, u32>,
    members: &[MemberSubscription],
) -> Assignment {
    let first = kind.assign(topics, members);
    if kind != AssignorKind::CooperativeSticky {
        return first;
    }
    let revoked: Vec<MemberSubscription> = members
        .iter()
        .map(|m| MemberSubscription {
            owned: first[&m.member_id].clone(),
            generation: m.generation + 1,
            ..m.clone()
        })
        .collect();
    kind.assign(topics, &revoked)
}

/// `members` after a rebalance gave them `assignment`, in the next generation.
fn owning(
    members: &[MemberSubscription],
    assignment: &Assignment,
    generation: i32,
) -> Vec<MemberSubscription> {
    members
        .iter()
        .map(|m| MemberSubscription {
            owned: assignment[&m.member_id].clone(),
            generation,
            ..m.clone()
        })
        .collect()
}

/// Moved only what it had to: each member either kept everything it owned, or holds only
/// partitions it owned.
fn stickiness_faults(before: &[MemberSubscription], after: &Assignment) -> Vec<String> {
    before
        .iter()
        .filter(|m| after.contains_key(&m.member_id))
        .filter_map(|m| {
            let now = &after[&m.member_id];
            let kept = m.owned.iter().filter(|p| now.contains(p)).count();
            (kept < m.owned.len().min(now.len())).then(|| {
                format!(
                    "{} kept {kept} of {:?}, now {:?}",
                    m.member_id, m.owned, now
                )
            })
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_subscribed_partition_goes_to_exactly_one_subscribed_member((topics, members) in group()) {
        for kind in AssignorKind::ALL {
            let assignment = rebalance(kind, &topics, &members);
            let faults = coverage_faults(&topics, &members, &assignment);
            prop_assert!(faults.is_empty(), "{}: {:?}", kind.name(), faults);
        }
    }

    #[test]
    fn the_balanced_assignors_differ_by_at_most_one_partition((topics, members) in uniform_group()) {
        for kind in [AssignorKind::RoundRobin, AssignorKind::Sticky, AssignorKind::CooperativeSticky] {
            let assignment = rebalance(kind, &topics, &members);
            prop_assert!(spread(&assignment) <= 1, "{}: {:?}", kind.name(), assignment);
        }
    }

    #[test]
    fn sticky_moves_only_what_a_join_or_a_leave_requires(
        (topics, members) in uniform_group(),
        leaver in any::<prop::sample::Index>(),
    ) {
        for kind in [AssignorKind::Sticky, AssignorKind::CooperativeSticky] {
            let settled = rebalance(kind, &topics, &members);
            let settled_members = owning(&members, &settled, 1);
            // A member joins with nothing.
            let mut joined = settled_members.clone();
            joined.push(MemberSubscription {
                topics: members[0].topics.clone(),
                ..MemberSubscription::new("new", &[])
            });
            let after_join = rebalance(kind, &topics, &joined);
            let faults = stickiness_faults(&joined, &after_join);
            prop_assert!(faults.is_empty(), "{} join: {:?}", kind.name(), faults);
            prop_assert!(spread(&after_join) <= 1);
            // A member leaves.
            if settled_members.len() > 1 {
                let mut left = settled_members.clone();
                left.remove(leaver.index(left.len()));
                let after_leave = rebalance(kind, &topics, &left);
                let faults = stickiness_faults(&left, &after_leave);
                prop_assert!(faults.is_empty(), "{} leave: {:?}", kind.name(), faults);
                prop_assert!(coverage_faults(&topics, &left, &after_leave).is_empty());
            }
        }
    }

    #[test]
    fn cooperative_sticky_never_hands_out_a_partition_another_member_still_owns(
        (topics, members) in uniform_group(),
        shift in 1usize..6,
    ) {
        // Ownership that is valid but unbalanced: each member owns what the range assignor
        // would give the member `shift` places later.
        let range = AssignorKind::Range.assign(&topics, &members);
        let ids: Vec<&String> = range.keys().collect();
        let shifted: Assignment = ids
            .iter()
            .enumerate()
            .map(|(i, id)| ((*id).clone(), range[ids[(i + shift) % ids.len()]].clone()))
            .collect();
        let owned = owning(&members, &shifted, 1);
        let assignment = AssignorKind::CooperativeSticky.assign(&topics, &owned);
        for m in &owned {
            for p in &assignment[&m.member_id] {
                let other = owned.iter().find(|o| o.member_id != m.member_id && o.owned.contains(p));
                prop_assert!(other.is_none(), "{p} given to {} while {:?} owns it", m.member_id, other.map(|o| &o.member_id));
            }
        }
    }
}
