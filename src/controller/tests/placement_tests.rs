//! Placement: Kafka's own example, its errors, and the guarantees the algorithm gives.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::controller::placement::*;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// The table in `AdminUtils.assignReplicasToBrokers`' Javadoc (and `AdminUtilsTest`): five
/// brokers 0-4, ten partitions, three replicas, start index 0.
#[test]
fn kafkas_documented_example() {
    let assignment =
        assign_replicas_to_brokers_from(&[0, 1, 2, 3, 4], 10, 3, Some(0), 0, &mut rng(0)).unwrap();
    let expected: BTreeMap<i32, Vec<i32>> = [
        (0, vec![0, 1, 2]),
        (1, vec![1, 2, 3]),
        (2, vec![2, 3, 4]),
        (3, vec![3, 4, 0]),
        (4, vec![4, 0, 1]),
        // Partition 5 wraps the broker list: the follower shift grows to 1.
        (5, vec![0, 2, 3]),
        (6, vec![1, 3, 4]),
        (7, vec![2, 4, 0]),
        (8, vec![3, 0, 1]),
        (9, vec![4, 1, 2]),
    ]
    .into_iter()
    .collect();
    assert_eq!(assignment, expected);
}

#[test]
fn replica_index_is_kafkas() {
    // 1 + (shift + j) % (n - 1) past the first replica, modulo n.
    assert_eq!(replica_index(0, 0, 0, 5), 1);
    assert_eq!(replica_index(4, 1, 1, 5), 2);
    // shift 1 + (7 + 0) % 2 = 2, (2 + 2) % 3 = 1.
    assert_eq!(replica_index(2, 7, 0, 3), 1);
}

#[test]
fn new_partitions_continue_the_numbering() {
    let added =
        assign_replicas_to_brokers_from(&[0, 1, 2, 3, 4], 2, 3, Some(0), 5, &mut rng(0)).unwrap();
    let whole =
        assign_replicas_to_brokers_from(&[0, 1, 2, 3, 4], 7, 3, Some(0), 0, &mut rng(0)).unwrap();
    assert_eq!(added[&5], whole[&5]);
    assert_eq!(added[&6], whole[&6]);
    assert_eq!(added.len(), 2);
}

#[test]
fn errors_are_kafkas() {
    let invalid_rf = |rf| PlacementError::InvalidReplicationFactor {
        replication_factor: rf,
        available_brokers: 3,
    };
    assert_eq!(
        assign_replicas_to_brokers(&[1, 2, 3], 1, 4, &mut rng(1)),
        Err(invalid_rf(4))
    );
    assert_eq!(
        assign_replicas_to_brokers(&[1, 2, 3], 1, 0, &mut rng(1)),
        Err(invalid_rf(0))
    );
    assert_eq!(
        assign_replicas_to_brokers(&[1, 2, 3], 1, -1, &mut rng(1)),
        Err(invalid_rf(-1))
    );
    assert_eq!(
        assign_replicas_to_brokers(&[1, 2, 3], 0, 1, &mut rng(1)),
        Err(PlacementError::InvalidPartitions { partitions: 0 })
    );
    assert_eq!(invalid_rf(4).error_code(), 38); // INVALID_REPLICATION_FACTOR
    assert_eq!(
        PlacementError::InvalidPartitions { partitions: 0 }.error_code(),
        37
    );
    assert_eq!(
        invalid_rf(4).to_string(),
        "Replication factor: 4 larger than available brokers: 3."
    );
    assert_eq!(
        assign_replicas_to_brokers(&[], 1, 1, &mut rng(1)),
        Err(PlacementError::InvalidReplicationFactor {
            replication_factor: 1,
            available_brokers: 0
        })
    );
}

#[test]
fn the_broker_list_is_sorted_first() {
    let sorted = assign_replicas_to_brokers(&[1, 2, 3, 4], 8, 2, &mut rng(3)).unwrap();
    let shuffled = assign_replicas_to_brokers(&[3, 1, 4, 2, 3], 8, 2, &mut rng(3)).unwrap();
    assert_eq!(sorted, shuffled);
}

fn counts(values: impl Iterator<Item = i32>) -> BTreeMap<i32, usize> {
    let mut counts = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_insert(0) += 1;
    }
    counts
}

/// Brokers (distinct ids, 1 to 12 of them), a replication factor they allow, a partition count.
fn cluster() -> impl Strategy<Value = (Vec<i32>, i32, i32)> {
    proptest::collection::btree_set(0..100i32, 1..12).prop_flat_map(|brokers| {
        let n = brokers.len() as i32;
        (
            Just(brokers.into_iter().collect::<Vec<_>>()),
            1..=n,
            1..60i32,
        )
    })
}

proptest! {
    #[test]
    fn every_partition_gets_rf_distinct_known_brokers(
        (brokers, rf, partitions) in cluster(),
        seed in any::<u64>(),
    ) {
        let assignment = assign_replicas_to_brokers(&brokers, partitions, rf, &mut rng(seed)).unwrap();
        prop_assert_eq!(assignment.keys().copied().collect::<Vec<_>>(), (0..partitions).collect::<Vec<_>>());
        for replicas in assignment.values() {
            prop_assert_eq!(replicas.len(), rf as usize);
            let distinct: BTreeSet<i32> = replicas.iter().copied().collect();
            prop_assert_eq!(distinct.len(), rf as usize, "a broker holds two replicas: {:?}", replicas);
            prop_assert!(replicas.iter().all(|b| brokers.contains(b)));
        }
    }

    #[test]
    fn leaders_differ_by_at_most_one_across_brokers(
        (brokers, rf, partitions) in cluster(),
        seed in any::<u64>(),
    ) {
        let assignment = assign_replicas_to_brokers(&brokers, partitions, rf, &mut rng(seed)).unwrap();
        let leaders = counts(assignment.values().map(|r| r[0]));
        let most = leaders.values().copied().max().unwrap_or(0);
        // Brokers that lead nothing count as 0.
        let least = if leaders.len() < brokers.len() { 0 } else { leaders.values().copied().min().unwrap() };
        prop_assert!(most - least <= 1, "leaders per broker {:?}", leaders);
    }

    #[test]
    fn whole_rounds_spread_every_replica_position_evenly(
        (brokers, rf, _) in cluster(),
        rounds in 1..5i32,
        seed in any::<u64>(),
    ) {
        let n = brokers.len() as i32;
        let assignment = assign_replicas_to_brokers(&brokers, rounds * n, rf, &mut rng(seed)).unwrap();
        for position in 0..rf as usize {
            let held = counts(assignment.values().map(|r| r[position]));
            prop_assert_eq!(held.len(), brokers.len());
            prop_assert!(held.values().all(|&c| c == rounds as usize), "position {}: {:?}", position, held);
        }
    }

    #[test]
    fn one_seed_one_assignment((brokers, rf, partitions) in cluster(), seed in any::<u64>()) {
        let a = assign_replicas_to_brokers(&brokers, partitions, rf, &mut rng(seed));
        let b = assign_replicas_to_brokers(&brokers, partitions, rf, &mut rng(seed));
        prop_assert_eq!(a, b);
    }
}
