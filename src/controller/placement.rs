//! Replica placement without racks, as Kafka's `AdminUtils.assignReplicasToBrokers` (the
//! rack-unaware branch, `assignReplicasToBrokersRackUnaware`) does it:
//!
//! 1. the first replica of each partition goes round-robin over the broker list, starting at a
//!    random index;
//! 2. the other replicas follow it at an increasing shift: replica `j` of a partition whose first
//!    replica is at index `f` is at `(f + 1 + (shift + j) mod (n - 1)) mod n`, where `shift`
//!    starts random and grows by one each time the partition id wraps the broker list
//!    (`nextReplicaShift`), so that partition `n` does not repeat partition 0's followers.
//!
//! What it guarantees, and the tests check:
//! - the replicas of a partition are distinct brokers (the follower offsets `1 + (shift + j) mod
//!   (n - 1)` for `j < RF - 1 <= n - 1` are distinct and never 0);
//! - the leaders (first replicas) of consecutive partition ids differ in count by at most one
//!   across brokers, for any partition count;
//! - for each block of `n` consecutive partition ids starting at a multiple of `n`, every broker
//!   holds replica `j` of exactly one partition of the block, for every `j`; so when the
//!   partition count is a multiple of `n` (from id 0) every broker holds exactly `P * RF / n`
//!   replicas. Otherwise replica counts can differ by more than one.
//!
//! The randomness (the start index, then the initial shift: two draws, in Kafka's order) comes
//! from the caller's seeded stream.

use std::collections::BTreeMap;
use std::fmt;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlacementError {
    /// `INVALID_PARTITIONS`: "Number of partitions must be larger than 0."
    InvalidPartitions { partitions: i32 },
    /// `INVALID_REPLICATION_FACTOR`: "Replication factor must be larger than 0." or
    /// "Replication factor: RF larger than available brokers: N."
    InvalidReplicationFactor {
        replication_factor: i32,
        available_brokers: usize,
    },
}

impl PlacementError {
    /// The Kafka error code a `CreateTopics` response carries.
    pub fn error_code(&self) -> i16 {
        use kafka_protocol::error::ResponseError;
        match self {
            PlacementError::InvalidPartitions { .. } => ResponseError::InvalidPartitions.code(),
            PlacementError::InvalidReplicationFactor { .. } => {
                ResponseError::InvalidReplicationFactor.code()
            }
        }
    }
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlacementError::InvalidPartitions { .. } => {
                write!(f, "Number of partitions must be larger than 0.")
            }
            PlacementError::InvalidReplicationFactor {
                replication_factor,
                available_brokers,
            } if *replication_factor > 0 => write!(
                f,
                "Replication factor: {replication_factor} larger than available brokers: \
                 {available_brokers}."
            ),
            PlacementError::InvalidReplicationFactor { .. } => {
                write!(f, "Replication factor must be larger than 0.")
            }
        }
    }
}

impl std::error::Error for PlacementError {}

/// Places `partitions` new partitions (ids 0..) of `replication_factor` replicas over `brokers`
/// (sorted and deduplicated here, as Kafka sorts the broker metadata by id): partition id →
/// replicas, the first being the preferred leader.
pub fn assign_replicas_to_brokers(
    brokers: &[i32],
    partitions: i32,
    replication_factor: i32,
    rng: &mut ChaCha8Rng,
) -> Result<BTreeMap<i32, Vec<i32>>, PlacementError> {
    assign_replicas_to_brokers_from(brokers, partitions, replication_factor, None, 0, rng)
}

/// The full form: `fixed_start_index` replaces both random draws (Kafka's `fixedStartIndex`,
/// used by its tests and by reassignment tools), and `start_partition_id` numbers the new
/// partitions from there (`CreatePartitions` adds partitions after the existing ones).
pub fn assign_replicas_to_brokers_from(
    brokers: &[i32],
    partitions: i32,
    replication_factor: i32,
    fixed_start_index: Option<usize>,
    start_partition_id: i32,
    rng: &mut ChaCha8Rng,
) -> Result<BTreeMap<i32, Vec<i32>>, PlacementError> {
    let mut brokers = brokers.to_vec();
    brokers.sort_unstable();
    brokers.dedup();
    let first_partition = start_partition_id.max(0);
    // Past i32::MAX Java would wrap to negative ids: there are no such partitions.
    if partitions <= 0 || first_partition.checked_add(partitions - 1).is_none() {
        return Err(PlacementError::InvalidPartitions { partitions });
    }
    let invalid_rf = PlacementError::InvalidReplicationFactor {
        replication_factor,
        available_brokers: brokers.len(),
    };
    let rf = usize::try_from(replication_factor).map_err(|_| invalid_rf.clone())?;
    if rf == 0 || rf > brokers.len() {
        return Err(invalid_rf);
    }
    let n = brokers.len();
    let start_index = fixed_start_index.unwrap_or_else(|| rng.gen_range(0..n));
    let mut next_replica_shift = fixed_start_index.unwrap_or_else(|| rng.gen_range(0..n));
    let mut assignment = BTreeMap::new();
    for partition in (0..partitions).map(|i| first_partition + i) {
        let p = partition as usize;
        if p > 0 && p.is_multiple_of(n) {
            next_replica_shift += 1;
        }
        let first_replica_index = (p + start_index) % n;
        let replicas: Vec<i32> = std::iter::once(brokers[first_replica_index])
            .chain(
                (0..rf - 1)
                    .map(|j| brokers[replica_index(first_replica_index, next_replica_shift, j, n)]),
            )
            .collect();
        debug_assert_eq!(replicas.len(), rf);
        assignment.insert(partition, replicas);
    }
    Ok(assignment)
}

/// `AdminUtils.replicaIndex`: the broker index of follower `replica_index` (0 for the second
/// replica) of a partition whose first replica is at `first_replica_index`.
pub fn replica_index(
    first_replica_index: usize,
    second_replica_shift: usize,
    replica_index: usize,
    n_brokers: usize,
) -> usize {
    assert!(n_brokers > 1, "followers need a second broker");
    let shift = 1 + (second_replica_shift + replica_index) % (n_brokers - 1);
    (first_replica_index + shift) % n_brokers
}
