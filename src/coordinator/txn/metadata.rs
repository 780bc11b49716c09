//! `TransactionMetadata`: one transactional id's state and Kafka's rules for changing it.
//!
//! Every change is two steps, as in Kafka: a `prepare_*` computes the new state (a
//! [`TxnTransitMetadata`], the value of the record to write) and marks the transition pending;
//! once the record is committed, [`TransactionMetadata::complete_transition`] applies it. While a
//! transition is pending, other requests are answered CONCURRENT_TRANSACTIONS.

use std::collections::BTreeSet;

pub use super::state::TransactionState;

use super::records::TransactionLogValue;
use super::{NO_PRODUCER_EPOCH, NO_PRODUCER_ID};

/// A partition of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.to_owned(),
            partition,
        }
    }
}

/// `TxnTransitMetadata`: the state a pending transition leads to, and the value of its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnTransitMetadata {
    pub producer_id: i64,
    /// The producer id before this transition.
    pub prev_producer_id: i64,
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    pub last_producer_epoch: i16,
    pub txn_timeout_ms: i32,
    pub txn_state: TransactionState,
    pub topic_partitions: BTreeSet<TopicPartition>,
    pub txn_start_timestamp_ms: i64,
    pub txn_last_update_timestamp_ms: i64,
    pub client_transaction_version: i16,
}

impl TxnTransitMetadata {
    /// The record's value (`TransactionLog.valueToBytes`): no partitions (null) when Empty.
    pub fn to_log_value(&self) -> TransactionLogValue {
        let transaction_partitions = (self.txn_state != TransactionState::Empty).then(|| {
            let mut topics: Vec<(String, Vec<i32>)> = Vec::new();
            for tp in &self.topic_partitions {
                match topics.last_mut() {
                    Some((topic, partitions)) if *topic == tp.topic => {
                        partitions.push(tp.partition)
                    }
                    _ => topics.push((tp.topic.clone(), vec![tp.partition])),
                }
            }
            topics
        });
        TransactionLogValue {
            producer_id: self.producer_id,
            previous_producer_id: self.prev_producer_id,
            next_producer_id: self.next_producer_id,
            producer_epoch: self.producer_epoch,
            next_producer_epoch: NO_PRODUCER_EPOCH,
            transaction_timeout_ms: self.txn_timeout_ms,
            transaction_status: self.txn_state,
            transaction_partitions,
            transaction_last_update_timestamp_ms: self.txn_last_update_timestamp_ms,
            transaction_start_timestamp_ms: self.txn_start_timestamp_ms,
            client_transaction_version: self.client_transaction_version,
        }
    }
}

/// `TransactionMetadata`: what the coordinator knows of one transactional id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id of the last committed transition (`previousProducerId`).
    pub prev_producer_id: i64,
    /// KIP-890: the producer id to move to once the epoch is exhausted, else -1.
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump (KIP-360 retries), -1 when unknown (after loading).
    pub last_producer_epoch: i16,
    pub txn_timeout_ms: i32,
    pub state: TransactionState,
    pub topic_partitions: BTreeSet<TopicPartition>,
    /// When the first partition was added; -1 when no transaction is open.
    pub txn_start_timestamp_ms: i64,
    pub txn_last_update_timestamp_ms: i64,
    /// The `transaction.version` feature level the client used: 0 (before KIP-890 part 2) or 2.
    pub client_transaction_version: i16,
    /// The state a transition written but not yet committed leads to.
    pub pending_state: Option<TransactionState>,
    /// An epoch fence whose record failed to be written: the next fence does not bump again.
    pub has_failed_epoch_fence: bool,
}

/// An epoch of `Short.MaxValue - 1` or more is exhausted: the coordinator keeps the last one for
/// fencing.
pub fn is_epoch_exhausted(producer_epoch: i16) -> bool {
    producer_epoch >= i16::MAX - 1
}

/// Whether a client transaction version bumps the epoch at every EndTxn (KIP-890 part 2).
pub fn supports_epoch_bump(client_transaction_version: i16) -> bool {
    client_transaction_version >= 2
}

impl TransactionMetadata {
    /// A new transactional id: a producer id, no epoch yet, Empty (not yet written).
    pub fn new(transactional_id: &str, producer_id: i64, txn_timeout_ms: i32, now_ms: u64) -> Self {
        TransactionMetadata {
            transactional_id: transactional_id.to_owned(),
            producer_id,
            prev_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            txn_timeout_ms,
            state: TransactionState::Empty,
            topic_partitions: BTreeSet::new(),
            txn_start_timestamp_ms: -1,
            txn_last_update_timestamp_ms: ms(now_ms),
            client_transaction_version: 0,
            pending_state: None,
            has_failed_epoch_fence: false,
        }
    }

    /// The metadata a record describes, as loading reads it: the last epoch is not in the log.
    pub fn from_log_value(transactional_id: &str, v: &TransactionLogValue) -> Self {
        let topic_partitions = if v.transaction_status == TransactionState::Empty {
            BTreeSet::new()
        } else {
            v.transaction_partitions
                .iter()
                .flatten()
                .flat_map(|(topic, ps)| ps.iter().map(|p| TopicPartition::new(topic, *p)))
                .collect()
        };
        TransactionMetadata {
            transactional_id: transactional_id.to_owned(),
            producer_id: v.producer_id,
            prev_producer_id: v.previous_producer_id,
            next_producer_id: v.next_producer_id,
            producer_epoch: v.producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            txn_timeout_ms: v.transaction_timeout_ms,
            state: v.transaction_status,
            topic_partitions,
            txn_start_timestamp_ms: v.transaction_start_timestamp_ms,
            txn_last_update_timestamp_ms: v.transaction_last_update_timestamp_ms,
            client_transaction_version: v.client_transaction_version,
            pending_state: None,
            has_failed_epoch_fence: false,
        }
    }

    pub fn pending_transition_in_progress(&self) -> bool {
        self.pending_state.is_some()
    }

    pub fn is_producer_epoch_exhausted(&self) -> bool {
        is_epoch_exhausted(self.producer_epoch)
    }

    /// The current state as a transit to `state`, for a `prepare_*` to modify.
    fn transit_to(&self, state: TransactionState) -> TxnTransitMetadata {
        TxnTransitMetadata {
            producer_id: self.producer_id,
            prev_producer_id: self.producer_id,
            next_producer_id: self.next_producer_id,
            producer_epoch: self.producer_epoch,
            last_producer_epoch: self.last_producer_epoch,
            txn_timeout_ms: self.txn_timeout_ms,
            txn_state: state,
            topic_partitions: self.topic_partitions.clone(),
            txn_start_timestamp_ms: self.txn_start_timestamp_ms,
            txn_last_update_timestamp_ms: self.txn_last_update_timestamp_ms,
            client_transaction_version: self.client_transaction_version,
        }
    }

    /// `prepareTransitionTo`: checks the transition is legal and marks it pending.
    fn prepare(&mut self, mut t: TxnTransitMetadata) -> TxnTransitMetadata {
        assert!(
            self.pending_state.is_none(),
            "{}: preparing a transition to {} while {:?} is pending",
            self.transactional_id,
            t.txn_state,
            self.pending_state
        );
        assert!(t.producer_id >= 0, "illegal producer id {}", t.producer_id);
        assert!(
            t.txn_state == TransactionState::Dead || t.producer_epoch >= 0,
            "illegal producer epoch {}",
            t.producer_epoch
        );
        assert!(
            t.txn_state.valid_previous_states().contains(&self.state),
            "{}: {} is not a legal transition from {}",
            self.transactional_id,
            t.txn_state,
            self.state
        );
        t.prev_producer_id = self.producer_id;
        self.pending_state = Some(t.txn_state);
        t
    }

    /// Fences the producer of an open transaction: the epoch goes up by one (unless a fence
    /// already failed to be written, or the epoch is at its maximum). Pending PrepareEpochFence.
    pub fn prepare_fence_producer_epoch(&mut self) -> TxnTransitMetadata {
        let mut t = self.transit_to(TransactionState::PrepareEpochFence);
        if !self.has_failed_epoch_fence && self.producer_epoch != i16::MAX {
            t.producer_epoch = self.producer_epoch + 1;
        }
        self.prepare(t)
    }

    /// InitProducerId on a completed transactional id: the epoch goes up by one. KIP-360: a
    /// producer that gives its epoch may bump it if it is the current one, and gets the current
    /// one back if it gives the previous (a retry); any other epoch is PRODUCER_FENCED.
    pub fn prepare_increment_producer_epoch(
        &mut self,
        txn_timeout_ms: i32,
        expected_producer_epoch: Option<i16>,
        now_ms: u64,
    ) -> Result<TxnTransitMetadata, i16> {
        let mut t = self.transit_to(TransactionState::Empty);
        // An exhausted epoch is never bumped: InitProducerId rotates the producer id instead,
        // unless the request is a retry or fenced (below).
        let bumped = if self.is_producer_epoch_exhausted() {
            -1
        } else {
            self.producer_epoch + 1
        };
        match expected_producer_epoch {
            None => {
                t.producer_epoch = bumped;
                t.last_producer_epoch = NO_PRODUCER_EPOCH;
            }
            Some(e) if self.producer_epoch == NO_PRODUCER_EPOCH || e == self.producer_epoch => {
                t.producer_epoch = bumped;
                t.last_producer_epoch = self.producer_epoch;
            }
            Some(e) if e == self.last_producer_epoch => {}
            Some(_) => return Err(super::error_code::PRODUCER_FENCED),
        }
        assert!(
            t.producer_epoch >= 0,
            "no epoch left for producer id {}",
            self.producer_id
        );
        t.txn_timeout_ms = txn_timeout_ms;
        t.topic_partitions.clear();
        t.txn_start_timestamp_ms = -1;
        t.txn_last_update_timestamp_ms = ms(now_ms);
        Ok(self.prepare(t))
    }

    /// InitProducerId with the epoch exhausted: a new producer id, epoch 0.
    pub fn prepare_producer_id_rotation(
        &mut self,
        new_producer_id: i64,
        txn_timeout_ms: i32,
        now_ms: u64,
        record_last_epoch: bool,
    ) -> TxnTransitMetadata {
        assert!(
            !matches!(
                self.state,
                TransactionState::Ongoing
                    | TransactionState::PrepareAbort
                    | TransactionState::PrepareCommit
            ),
            "rotating producer ids while a transaction is pending"
        );
        let mut t = self.transit_to(TransactionState::Empty);
        t.producer_id = new_producer_id;
        t.producer_epoch = 0;
        t.last_producer_epoch = if record_last_epoch {
            self.producer_epoch
        } else {
            NO_PRODUCER_EPOCH
        };
        t.txn_timeout_ms = txn_timeout_ms;
        t.topic_partitions.clear();
        t.txn_start_timestamp_ms = -1;
        t.txn_last_update_timestamp_ms = ms(now_ms);
        self.prepare(t)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: Ongoing with more partitions; the transaction starts
    /// now if none was open.
    pub fn prepare_add_partitions(
        &mut self,
        added: &BTreeSet<TopicPartition>,
        now_ms: u64,
        client_transaction_version: i16,
    ) -> TxnTransitMetadata {
        let mut t = self.transit_to(TransactionState::Ongoing);
        if matches!(
            self.state,
            TransactionState::Empty
                | TransactionState::CompleteAbort
                | TransactionState::CompleteCommit
        ) {
            t.txn_start_timestamp_ms = ms(now_ms);
        }
        t.topic_partitions.extend(added.iter().cloned());
        t.txn_last_update_timestamp_ms = ms(now_ms);
        t.client_transaction_version = client_transaction_version;
        self.prepare(t)
    }

    /// EndTxn: PrepareCommit or PrepareAbort. KIP-890 part 2 (transaction version 2): the epoch
    /// goes up by one at every EndTxn, and `next_producer_id` is the id to move to once it is
    /// exhausted.
    pub fn prepare_abort_or_commit(
        &mut self,
        new_state: TransactionState,
        client_transaction_version: i16,
        next_producer_id: i64,
        now_ms: u64,
        no_partition_added: bool,
    ) -> TxnTransitMetadata {
        let mut t = self.transit_to(new_state);
        if supports_epoch_bump(client_transaction_version) {
            // A broken epoch at its maximum may still abort, without overflowing.
            if !(self.producer_epoch == i16::MAX && new_state == TransactionState::PrepareAbort) {
                t.producer_epoch = self.producer_epoch.saturating_add(1);
            }
            t.last_producer_epoch = self.producer_epoch;
        }
        // Transaction version 2 may abort with no partition added: it starts now.
        if no_partition_added {
            t.txn_start_timestamp_ms = ms(now_ms);
        }
        t.next_producer_id = next_producer_id;
        t.txn_last_update_timestamp_ms = ms(now_ms);
        t.client_transaction_version = client_transaction_version;
        self.prepare(t)
    }

    /// Every marker is written: CompleteCommit or CompleteAbort, on the next producer id (epoch
    /// 0) if the epoch was exhausted under transaction version 2.
    pub fn prepare_complete(&mut self, now_ms: u64) -> TxnTransitMetadata {
        self.has_failed_epoch_fence = false;
        let state = if self.state == TransactionState::PrepareCommit {
            TransactionState::CompleteCommit
        } else {
            TransactionState::CompleteAbort
        };
        let mut t = self.transit_to(state);
        if supports_epoch_bump(self.client_transaction_version)
            && self.next_producer_id != NO_PRODUCER_ID
        {
            t.producer_id = self.next_producer_id;
            t.producer_epoch = 0;
        }
        t.next_producer_id = NO_PRODUCER_ID;
        t.topic_partitions.clear();
        t.txn_last_update_timestamp_ms = ms(now_ms);
        self.prepare(t)
    }

    /// The transactional id expired: a tombstone.
    pub fn prepare_dead(&mut self) -> TxnTransitMetadata {
        let mut t = self.transit_to(TransactionState::Dead);
        t.topic_partitions.clear();
        self.prepare(t)
    }

    /// `completeTransitionTo`: the record of the pending transition is committed. What must hold
    /// of it is asserted: a failure is a coordinator bug.
    pub fn complete_transition(&mut self, t: &TxnTransitMetadata) {
        let to = self.pending_state.unwrap_or_else(|| {
            panic!(
                "{}: completing a transition to {} with none pending",
                self.transactional_id, t.txn_state
            )
        });
        assert_eq!(to, t.txn_state, "{}: pending state", self.transactional_id);
        let ok = match to {
            TransactionState::Empty => {
                (self.producer_epoch == t.producer_epoch || self.valid_producer_epoch_bump(t))
                    && t.topic_partitions.is_empty()
                    && t.txn_start_timestamp_ms == -1
            }
            TransactionState::Ongoing => {
                self.valid_producer_epoch(t)
                    && t.topic_partitions.is_superset(&self.topic_partitions)
                    && self.txn_timeout_ms == t.txn_timeout_ms
            }
            TransactionState::PrepareAbort | TransactionState::PrepareCommit => {
                let allowed_empty_abort = to == TransactionState::PrepareAbort
                    && supports_epoch_bump(t.client_transaction_version)
                    && self.state.is_expiration_allowed();
                self.valid_producer_epoch(t)
                    && self.topic_partitions == t.topic_partitions
                    && self.txn_timeout_ms == t.txn_timeout_ms
                    && (self.txn_start_timestamp_ms == t.txn_start_timestamp_ms
                        || allowed_empty_abort)
            }
            TransactionState::CompleteAbort | TransactionState::CompleteCommit => {
                self.valid_producer_epoch(t)
                    && self.txn_timeout_ms == t.txn_timeout_ms
                    && t.txn_start_timestamp_ms != -1
            }
            TransactionState::PrepareEpochFence | TransactionState::Dead => false,
        };
        assert!(
            ok,
            "{}: illegal transition from {self:?} to {t:?}",
            self.transactional_id
        );
        self.producer_id = t.producer_id;
        self.prev_producer_id = t.prev_producer_id;
        self.next_producer_id = t.next_producer_id;
        self.producer_epoch = t.producer_epoch;
        self.last_producer_epoch = t.last_producer_epoch;
        self.txn_timeout_ms = t.txn_timeout_ms;
        self.topic_partitions = t.topic_partitions.clone();
        self.txn_start_timestamp_ms = t.txn_start_timestamp_ms;
        self.txn_last_update_timestamp_ms = t.txn_last_update_timestamp_ms;
        self.client_transaction_version = t.client_transaction_version;
        self.pending_state = None;
        self.state = to;
    }

    /// The producer id and epoch a transition may carry: the same, except that under transaction
    /// version 2 a Prepare bumps the epoch and a Complete may move to the next producer id.
    fn valid_producer_epoch(&self, t: &TxnTransitMetadata) -> bool {
        let v2 = supports_epoch_bump(t.client_transaction_version);
        let complete = matches!(
            t.txn_state,
            TransactionState::CompleteCommit | TransactionState::CompleteAbort
        );
        let prepare = matches!(
            t.txn_state,
            TransactionState::PrepareCommit | TransactionState::PrepareAbort
        );
        if v2 && complete && t.producer_epoch == 0 {
            return t.last_producer_epoch == self.last_producer_epoch
                && t.prev_producer_id == self.producer_id;
        }
        if v2 && prepare {
            return t.last_producer_epoch == self.producer_epoch
                && t.producer_id == self.producer_id;
        }
        t.producer_epoch == self.producer_epoch && t.producer_id == self.producer_id
    }

    fn valid_producer_epoch_bump(&self, t: &TxnTransitMetadata) -> bool {
        t.producer_epoch == self.producer_epoch.wrapping_add(1)
            || (t.producer_epoch == 0 && t.producer_id != self.producer_id)
    }
}

/// A simulated clock reading as Kafka's int64 milliseconds.
pub(super) fn ms(now_ms: u64) -> i64 {
    i64::try_from(now_ms).expect("a time before the year 292 million")
}
