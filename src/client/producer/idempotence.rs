//! The idempotent producer's bookkeeping: the part of Kafka's `TransactionManager` that every
//! idempotent producer has (KIP-98, KIP-360).
//!
//! - The producer id and epoch come from `InitProducerId` before the first batch is sent.
//! - Each partition has a next sequence number. A batch takes its base sequence the first time
//!   it is drained and keeps it through every retry, so a leader that already appended it
//!   answers a retry with the original offsets instead of writing it twice.
//! - Order holds with up to five requests in flight: a batch being retried goes back into its
//!   queue in sequence order, and a retry is sent only when it is the partition's first
//!   incomplete sequence. Later batches that the leader refused as out of order, because an
//!   earlier one failed, wait behind it.
//! - A batch whose sequence fails for good (it expired, or the leader knows nothing before it)
//!   leaves a gap no later batch can fill. Once nothing is on the wire, the producer bumps its
//!   epoch itself and starts every partition at sequence 0 again (KIP-360: a leader accepts
//!   sequence 0 of a new epoch). At `Short.MAX_VALUE` it asks for a new producer id instead.
//!   Queued batches take new sequences under the new epoch.

use std::collections::{BTreeMap, BTreeSet};

use crate::scenario::TopicPartition;

/// A producer id and the epoch it writes with (Kafka's `ProducerIdAndEpoch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerIdAndEpoch {
    pub producer_id: i64,
    pub epoch: i16,
}

/// The producer fields a batch is sent with: id, epoch and base sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSequence {
    pub producer: ProducerIdAndEpoch,
    pub base_sequence: i32,
    /// Written in a transaction (the batch's `isTransactional` attribute).
    pub transactional: bool,
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap at `Integer.MAX_VALUE`.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

#[derive(Debug, Default)]
pub struct Idempotence {
    producer: Option<ProducerIdAndEpoch>,
    next_sequence: BTreeMap<TopicPartition, i32>,
    /// Base sequences of the current epoch's batches sent and not yet completed (on the wire or
    /// waiting to be retried), per partition, with the broker each was last sent to.
    incomplete: BTreeMap<TopicPartition, BTreeMap<i32, i32>>,
    /// Partitions with a batch of this epoch written: their leader knows the producer. Until
    /// then a leader takes any sequence (it has no state to check it against), so a later batch
    /// overtaking a first one that failed would be written first: one batch at a time.
    acknowledged: BTreeSet<TopicPartition>,
    /// Batches on the wire now.
    on_the_wire: usize,
    /// A sequence failed for good: bump the epoch once nothing is on the wire.
    bump_needed: bool,
    /// A transactional producer's: only partitions the coordinator added to the transaction
    /// may be drained, and its batches are transactional.
    transactional: bool,
    allowed: BTreeSet<TopicPartition>,
}

impl Idempotence {
    pub fn transactional() -> Self {
        Idempotence {
            transactional: true,
            ..Idempotence::default()
        }
    }

    /// The coordinator added `tp` to the transaction.
    pub fn allow(&mut self, tp: &TopicPartition) {
        self.allowed.insert(tp.clone());
    }

    /// A new transaction: no partition is in it yet.
    pub fn clear_allowed(&mut self) {
        self.allowed.clear();
    }

    pub fn bump_needed(&self) -> bool {
        self.bump_needed
    }

    pub fn producer(&self) -> Option<ProducerIdAndEpoch> {
        self.producer
    }

    /// `InitProducerId` answered: a fresh id, every partition at sequence 0.
    pub fn set_producer(&mut self, producer: ProducerIdAndEpoch) {
        self.producer = Some(producer);
        self.next_sequence.clear();
        self.incomplete.clear();
        self.acknowledged.clear();
        self.bump_needed = false;
    }

    /// Whether `batch` of `tp` may be drained now, to `node`: the producer id is known, no bump
    /// is due, a retry goes only as its partition's first incomplete sequence, and a new batch
    /// goes only where every incomplete one of its partition went. (A leader that knows nothing
    /// of the producer accepts any sequence: a new batch sent to a new leader while an earlier
    /// one is still out to the old would be written before it.)
    pub fn may_drain(&self, tp: &TopicPartition, batch: Option<BatchSequence>, node: i32) -> bool {
        let Some(producer) = self.producer else {
            return false;
        };
        if self.bump_needed || (self.transactional && !self.allowed.contains(tp)) {
            return false;
        }
        let incomplete = self.incomplete.get(tp);
        match batch {
            Some(s) if s.producer == producer => incomplete
                .and_then(|m| m.keys().next())
                .is_none_or(|&first| first == s.base_sequence),
            _ => incomplete.is_none_or(|m| {
                self.acknowledged.contains(tp) && m.values().all(|&sent_to| sent_to == node)
            }),
        }
    }

    /// A batch of `records` records of `tp` is drained: it keeps its sequence if it has one of
    /// this epoch, else takes the partition's next. Returns the sequence to send it with.
    pub fn on_drain(
        &mut self,
        tp: &TopicPartition,
        batch: Option<BatchSequence>,
        records: i32,
        node: i32,
    ) -> BatchSequence {
        let producer = self.producer.expect("may_drain checked the producer id");
        self.on_the_wire += 1;
        if let Some(s) = batch.filter(|s| s.producer == producer) {
            self.incomplete
                .entry(tp.clone())
                .or_default()
                .insert(s.base_sequence, node);
            return s;
        }
        let next = self.next_sequence.entry(tp.clone()).or_insert(0);
        let base_sequence = *next;
        *next = increment_sequence(base_sequence, records);
        self.incomplete
            .entry(tp.clone())
            .or_default()
            .insert(base_sequence, node);
        BatchSequence {
            producer,
            base_sequence,
            transactional: self.transactional,
        }
    }

    /// The request holding the batch came back (whatever its outcome).
    pub fn off_the_wire(&mut self) {
        self.on_the_wire = self.on_the_wire.saturating_sub(1);
    }

    /// Whether `sequence` is the first incomplete one of its partition: an out-of-order answer
    /// to it means the leader lost what came before, not that an earlier batch is being
    /// retried.
    pub fn is_first_incomplete(&self, tp: &TopicPartition, sequence: BatchSequence) -> bool {
        Some(sequence.producer) == self.producer
            && self.incomplete.get(tp).and_then(|m| m.keys().next())
                == Some(&sequence.base_sequence)
    }

    /// The batch completed: written, or failed for good. A failure leaves a gap in the
    /// sequence, so the epoch must be bumped.
    pub fn complete(&mut self, tp: &TopicPartition, sequence: BatchSequence, written: bool) {
        if Some(sequence.producer) != self.producer {
            return; // of an epoch already left behind
        }
        if let Some(m) = self.incomplete.get_mut(tp) {
            m.remove(&sequence.base_sequence);
            if m.is_empty() {
                self.incomplete.remove(tp);
            }
        }
        if written {
            self.acknowledged.insert(tp.clone());
        } else {
            self.bump_needed = true;
        }
    }

    /// The producer fenced (`INVALID_PRODUCER_EPOCH`, `UNKNOWN_PRODUCER_ID`): bump as for a gap.
    pub fn request_bump(&mut self) {
        self.bump_needed = true;
    }

    /// Bumps the epoch if one is due and nothing is on the wire (Kafka's
    /// `bumpIdempotentEpochAndResetIdIfNeeded`). Returns the new id and epoch, or `None` if
    /// nothing changed; after `Short.MAX_VALUE - 1` the id is dropped, for a new
    /// `InitProducerId`.
    pub fn maybe_bump(&mut self) -> Option<ProducerIdAndEpoch> {
        if !self.bump_needed || self.on_the_wire > 0 {
            return None;
        }
        let current = self.producer?;
        self.next_sequence.clear();
        self.incomplete.clear();
        self.acknowledged.clear();
        self.bump_needed = false;
        if current.epoch >= i16::MAX - 1 {
            self.producer = None;
            return None;
        }
        let bumped = ProducerIdAndEpoch {
            producer_id: current.producer_id,
            epoch: current.epoch + 1,
        };
        self.producer = Some(bumped);
        Some(bumped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicPartition {
        TopicPartition {
            topic: "t".into(),
            partition: 0,
        }
    }

    const P: ProducerIdAndEpoch = ProducerIdAndEpoch {
        producer_id: 7,
        epoch: 0,
    };

    #[test]
    fn sequences_advance_per_partition_and_a_retry_keeps_its_own() {
        let mut idem = Idempotence::default();
        assert!(!idem.may_drain(&tp(), None, 1), "no producer id yet");
        idem.set_producer(P);
        let first = idem.on_drain(&tp(), None, 1, 1);
        assert!(
            !idem.may_drain(&tp(), None, 1),
            "one at a time until the leader knows the producer"
        );
        idem.off_the_wire();
        idem.complete(&tp(), first, true);
        let a = idem.on_drain(&tp(), None, 3, 1);
        assert!(idem.may_drain(&tp(), None, 1));
        let b = idem.on_drain(&tp(), None, 2, 1);
        assert_eq!((a.base_sequence, b.base_sequence), (1, 4));
        // The leader moved: nothing new goes to broker 2 while a and b are out to broker 1.
        assert!(!idem.may_drain(&tp(), None, 2));
        // Both fail retriably: b may not go before a.
        idem.off_the_wire();
        idem.off_the_wire();
        assert!(!idem.may_drain(&tp(), Some(b), 2));
        assert!(idem.may_drain(&tp(), Some(a), 2));
        assert_eq!(idem.on_drain(&tp(), Some(a), 3, 2), a);
        idem.off_the_wire();
        idem.complete(&tp(), a, true);
        assert!(idem.may_drain(&tp(), Some(b), 2));
        assert!(idem.is_first_incomplete(&tp(), b));
        assert_eq!(idem.on_drain(&tp(), Some(b), 2, 2), b);
        assert_eq!(idem.on_drain(&tp(), None, 1, 2).base_sequence, 6);
    }

    #[test]
    fn a_failed_sequence_bumps_the_epoch_once_nothing_is_on_the_wire() {
        let mut idem = Idempotence::default();
        idem.set_producer(P);
        let first = idem.on_drain(&tp(), None, 1, 1);
        idem.off_the_wire();
        idem.complete(&tp(), first, true);
        let a = idem.on_drain(&tp(), None, 1, 1);
        let b = idem.on_drain(&tp(), None, 1, 1);
        idem.off_the_wire();
        idem.complete(&tp(), a, false);
        assert!(
            !idem.may_drain(&tp(), None, 1),
            "no new batch before the bump"
        );
        assert_eq!(idem.maybe_bump(), None, "b is still on the wire");
        idem.off_the_wire();
        let bumped = idem.maybe_bump().expect("bumped");
        assert_eq!(bumped.epoch, 1);
        // b, retried, takes a new sequence under the new epoch.
        assert!(idem.may_drain(&tp(), Some(b), 1));
        assert_eq!(idem.on_drain(&tp(), Some(b), 1, 1).base_sequence, 0);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    }
}
