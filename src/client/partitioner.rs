//! Where a record goes (Kafka's `Partitioner`s).
//!
//! - An explicit partition in the record wins.
//! - A keyed record: `toPositive(murmur2(key)) % numPartitions`
//!   (`org.apache.kafka.common.utils.Utils.murmur2`), bit for bit, unless
//!   `partitioner.ignore.keys`.
//! - No key: the built-in sticky partitioner (KIP-480, reworked by KIP-794): one partition takes
//!   every keyless record until `batch.size` bytes went to it, then another is drawn at random
//!   from those with a leader, so batches fill instead of scattering one record each.
//! - `partitioner.class = RoundRobinPartitioner`: every record to the next partition in turn.

/// Kafka's murmur2 (seed 0x9747b28c), over the key's bytes.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows on `i32::MIN`).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition of a keyed record.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    assert!(partitions > 0, "a topic has at least one partition");
    (to_positive(murmur2(key)) as u32) % partitions
}

/// `partitioner.class`: Kafka's built-in choice or the one class Kafka still ships.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PartitionerKind {
    /// No class configured: keys hash, keyless records stick (`BuiltInPartitioner`).
    #[default]
    BuiltIn,
    /// `org.apache.kafka.clients.producer.RoundRobinPartitioner`.
    RoundRobin,
}

/// A custom partitioner, as an application plugs one in with `partitioner.class`: given the
/// topic, the serialized key and the partition count, the partition.
pub trait Partitioner: Send + Sync {
    fn partition(&self, topic: &str, key: Option<&[u8]>, partitions: u32) -> u32;
}

/// The producer's partitioning state: the sticky partition of each topic (with the bytes it has
/// taken), the round-robin counters, and the seeded stream the sticky choice draws from.
pub struct PartitionChooser {
    kind: PartitionerKind,
    custom: Option<Box<dyn Partitioner>>,
    ignore_keys: bool,
    /// `batch.size`: how many bytes a sticky partition takes before the next is drawn.
    sticky_batch_bytes: usize,
    sticky: std::collections::BTreeMap<String, (u32, usize)>,
    round_robin: std::collections::BTreeMap<String, u32>,
    rng: rand_chacha::ChaCha8Rng,
}

impl PartitionChooser {
    pub fn new(
        kind: PartitionerKind,
        ignore_keys: bool,
        sticky_batch_bytes: usize,
        seed: u64,
    ) -> Self {
        use rand::SeedableRng;
        PartitionChooser {
            kind,
            custom: None,
            ignore_keys,
            sticky_batch_bytes: sticky_batch_bytes.max(1),
            sticky: Default::default(),
            round_robin: Default::default(),
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Replaces the built-in choice by an application's partitioner.
    pub fn with_custom(mut self, partitioner: Box<dyn Partitioner>) -> Self {
        self.custom = Some(partitioner);
        self
    }

    /// The partition of a record with no explicit partition. `available` lists the partitions
    /// that have a leader (the sticky choice prefers them, as Kafka's does).
    pub fn choose(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        count: u32,
        available: &[u32],
    ) -> u32 {
        assert!(count > 0, "a topic has at least one partition");
        if let Some(custom) = &self.custom {
            return custom.partition(topic, key, count) % count;
        }
        if self.kind == PartitionerKind::RoundRobin {
            let next = self.round_robin.entry(topic.to_string()).or_insert(0);
            let partition = *next % count;
            *next = next.wrapping_add(1);
            return partition;
        }
        match key {
            Some(key) if !self.ignore_keys => partition_for_key(key, count),
            _ => self.sticky_partition(topic, count, available),
        }
    }

    /// After a keyless record of `bytes` went to `partition` by the sticky choice: once the
    /// partition has taken `batch.size` bytes, the next record draws a new one
    /// (`BuiltInPartitioner.updatePartitionInfo`).
    pub fn record_appended(&mut self, topic: &str, partition: u32, bytes: usize) {
        if let Some((sticky, produced)) = self.sticky.get_mut(topic) {
            if *sticky == partition {
                *produced += bytes;
                if *produced >= self.sticky_batch_bytes {
                    self.sticky.remove(topic);
                }
            }
        }
    }

    fn sticky_partition(&mut self, topic: &str, count: u32, available: &[u32]) -> u32 {
        use rand::Rng;
        if let Some((partition, _)) = self.sticky.get(topic) {
            if *partition < count {
                return *partition;
            }
        }
        let available: Vec<u32> = available.iter().copied().filter(|&p| p < count).collect();
        let partition = if available.is_empty() {
            self.rng.gen_range(0..count)
        } else {
            available[self.rng.gen_range(0..available.len())]
        };
        self.sticky.insert(topic.to_string(), (partition, 0));
        partition
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected values of Kafka's own `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_kafka() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (data, expected) in cases {
            assert_eq!(
                murmur2(data),
                *expected,
                "murmur2({:?})",
                String::from_utf8_lossy(data)
            );
        }
    }

    #[test]
    fn to_positive_clears_sign_bit() {
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(5), 5);
    }

    #[test]
    fn keyless_records_stick_until_batch_size_then_move() {
        let mut chooser = PartitionChooser::new(PartitionerKind::BuiltIn, false, 100, 7);
        let first = chooser.choose("t", None, 6, &[0, 1, 2, 3, 4, 5]);
        for _ in 0..4 {
            assert_eq!(chooser.choose("t", None, 6, &[0, 1, 2, 3, 4, 5]), first);
            chooser.record_appended("t", first, 20);
        }
        chooser.record_appended("t", first, 20);
        // 100 bytes taken: the next keyless record draws again; keyed records never stick.
        let draws: std::collections::BTreeSet<u32> = (0..40)
            .map(|_| {
                let p = chooser.choose("t", None, 6, &[0, 1, 2, 3, 4, 5]);
                chooser.record_appended("t", p, 100);
                p
            })
            .collect();
        assert!(draws.len() > 1, "the sticky partition moves: {draws:?}");
        assert_eq!(
            chooser.choose("t", Some(b"foobar"), 6, &[]),
            partition_for_key(b"foobar", 6)
        );
    }

    #[test]
    fn sticky_choice_prefers_partitions_with_a_leader() {
        let mut chooser = PartitionChooser::new(PartitionerKind::BuiltIn, true, 1, 3);
        for _ in 0..50 {
            let p = chooser.choose("t", Some(b"ignored"), 6, &[2, 4]);
            assert!(p == 2 || p == 4, "{p}");
            chooser.record_appended("t", p, 1);
        }
    }

    #[test]
    fn round_robin_and_custom_partitioners() {
        let mut chooser = PartitionChooser::new(PartitionerKind::RoundRobin, false, 1, 0);
        let got: Vec<u32> = (0..5)
            .map(|_| chooser.choose("t", Some(b"k"), 3, &[]))
            .collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1]);
        struct Last;
        impl Partitioner for Last {
            fn partition(&self, _: &str, _: Option<&[u8]>, partitions: u32) -> u32 {
                partitions - 1
            }
        }
        let mut chooser = PartitionChooser::new(PartitionerKind::BuiltIn, false, 1, 0)
            .with_custom(Box::new(Last));
        assert_eq!(chooser.choose("t", None, 4, &[0]), 3);
    }
}
