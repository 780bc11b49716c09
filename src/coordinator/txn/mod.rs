//! Kafka's transaction coordinator (KIP-98, with KIP-360, KIP-588 and KIP-890), as a pure state
//! machine.
//!
//! One [`TransactionCoordinator`] is the coordinator of one `__transaction_state` partition: the
//! transactional ids that hash to it (Kafka's `TransactionCoordinator` with its
//! `TransactionStateManager` and `TransactionMarkerChannelManager`, for one partition). Requests,
//! append results, marker results and ticks go in; records to append to that partition, markers
//! to write and responses come out ([`TxnOutput`]). `replay` applies records, which is how a new
//! coordinator loads a partition it now leads. No I/O, no clock of its own (every call carries
//! `now_ms`), no randomness; producer ids come from the driver's [`ProducerIdSource`].
//!
//! Every change of a transactional id follows Kafka's prepare/complete pattern: the coordinator
//! returns the record and marks the transition pending; it applies the transition only when the
//! driver reports the record committed, and answers the request then. Meanwhile other requests
//! for that id get CONCURRENT_TRANSACTIONS.
//!
//! How a broker drives it:
//! - FindCoordinator(TRANSACTION): the id's partition is [`partition_for`]`(transactional_id,
//!   transaction.state.log.num.partitions)`; its leader is the coordinator;
//! - becoming that partition's leader at leader epoch E: [`TransactionCoordinator::new`], then
//!   [`TransactionCoordinator::load`] with E and every record of the partition (decoded with
//!   [`TxnRecord::decode`]), and perform its output: transactions left in PrepareCommit or
//!   PrepareAbort have their markers written again. (Or `begin_load`, `replay` per record,
//!   `complete_load`: requests meanwhile get COORDINATOR_LOAD_IN_PROGRESS.) Losing it:
//!   [`TransactionCoordinator::unload`], whose output answers the waiting requests
//!   NOT_COORDINATOR;
//! - each request: [`wire::from_request`] (a batched AddPartitionsToTxn v4+ gives one request per
//!   transaction), [`TransactionCoordinator::handle`] with a [`RequestId`] and the producer id
//!   source (the broker's async block of ids: fetch one ahead and pass a [`SpareProducerId`]),
//!   then perform the output;
//! - performing an output: append each of `appends` to the partition (acks=all; key
//!   `encode_key`, value `encode_value`), and call
//!   [`TransactionCoordinator::append_committed`] once the high watermark passes it, or
//!   [`TransactionCoordinator::append_failed`] with the produce error; send each of `markers`
//!   with [`wire::write_txn_markers_request`] to the leaders of its partitions (a partition with
//!   no leader known: retry later; a deleted one: report [`MarkerOutcome::PartitionDeleted`]),
//!   and report every partition's outcome with [`TransactionCoordinator::marker_result`]
//!   ([`wire::marker_results`] reads a response); a marker that comes out again (a retriable
//!   failure) is sent again after the driver's backoff; send `responses` through
//!   [`wire::to_response`] at once (they are answered only when their records are committed);
//!   trace `events` (`txn-state`);
//! - the clock: [`TransactionCoordinator::tick`] at
//!   [`TransactionCoordinator::next_deadline_ms`] (or regularly): it aborts timed-out
//!   transactions and expires old transactional ids, its output performed as a request's.
//!
//! The parts, by concern:
//! - `state`: `TransactionState` and its legal transitions;
//! - `metadata`: `TransactionMetadata` and its prepare/complete transitions;
//! - `coordinator`: the shard: dispatch, append results, loading and unloading;
//! - `timers`: the abort of timed-out transactions, the expiration of transactional ids;
//! - `init`: InitProducerId; `add`: AddPartitionsToTxn and AddOffsetsToTxn; `end_txn`: EndTxn,
//!   for transaction versions 1 and 2, also the aborts of fences and timeouts;
//! - `markers`: writing the markers and completing the transaction;
//! - `records`: the `__transaction_state` record format and its codec;
//! - `requests`: the request, response and marker types, with Kafka's field names;
//! - `wire`: the mapping from and to `kafka-protocol`'s messages.

mod add;
mod coordinator;
mod end_txn;
mod init;
mod markers;
mod metadata;
pub mod records;
mod requests;
mod state;
mod timers;
pub mod wire;

#[cfg(test)]
mod tests;

pub use crate::coordinator::group::RequestId;
pub use coordinator::{AppendId, TransactionCoordinator, TxnAppend, TxnEvent, TxnOutput};
pub use metadata::{
    is_epoch_exhausted, TopicPartition, TransactionMetadata, TransactionState, TxnTransitMetadata,
};
pub use records::{TransactionLogValue, TxnRecord};
pub use requests::*;

/// Kafka's error codes (`org.apache.kafka.common.protocol.Errors`) the transaction coordinator
/// answers or reads.
pub mod error_code {
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const RECORD_LIST_TOO_LARGE: i16 = 18;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const INVALID_REQUEST: i16 = 42;
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub const TRANSACTION_COORDINATOR_FENCED: i16 = 52;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
    pub const PRODUCER_FENCED: i16 = 90;
    pub const TRANSACTION_ABORTABLE: i16 = 120;
}

/// `RecordBatch.NO_PRODUCER_ID`.
pub const NO_PRODUCER_ID: i64 = -1;
/// `RecordBatch.NO_PRODUCER_EPOCH`.
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// The topic the group coordinator's offsets live in; AddOffsetsToTxn adds one of its
/// partitions to the transaction.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Where producer ids come from: Kafka's `ProducerIdManager`, which the driver backs with a
/// block of ids from the controller (AllocateProducerIds). An error is the code to answer
/// (COORDINATOR_LOAD_IN_PROGRESS while no block is at hand, as Kafka's `RPCProducerIdManager`).
pub trait ProducerIdSource {
    fn generate_producer_id(&mut self) -> Result<i64, i16>;
}

/// A producer id fetched ahead, for a driver whose source of ids is asynchronous (the broker's
/// block of ids from the controller): a request needs at most one, so the driver fetches one
/// before an InitProducerId or EndTxn, passes it here, and keeps it if it was not taken. With
/// none, the request is answered COORDINATOR_LOAD_IN_PROGRESS, as Kafka's `RPCProducerIdManager`
/// does while it has no block.
pub struct SpareProducerId<'a>(pub &'a mut Option<i64>);

impl ProducerIdSource for SpareProducerId<'_> {
    fn generate_producer_id(&mut self) -> Result<i64, i16> {
        self.0
            .take()
            .ok_or(error_code::COORDINATOR_LOAD_IN_PROGRESS)
    }
}

/// The transaction coordinator's configuration, with Kafka's names and defaults
/// (`TransactionConfig`, `TransactionStateManagerConfig`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionCoordinatorConfig {
    /// `transaction.max.timeout.ms`: a longer `transaction.timeout.ms` is refused
    /// (INVALID_TRANSACTION_TIMEOUT).
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: a transactional id with no transaction that has not been
    /// used this long is removed (a tombstone). `None`: never.
    pub transactional_id_expiration_ms: Option<u64>,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often transactions
    /// open longer than their timeout are looked for and aborted.
    pub abort_timed_out_transactions_interval_ms: u64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_transactional_ids_interval_ms: u64,
    /// `transaction.state.log.num.partitions`.
    pub transaction_state_num_partitions: i32,
    /// `offsets.topic.num.partitions`, for the partition AddOffsetsToTxn adds.
    pub offsets_topic_num_partitions: i32,
    /// The contract's `[protocol] transaction-version` (the `transaction.version` feature):
    /// 2 bumps the producer epoch at every EndTxn (KIP-890 part 2); 1 keeps one epoch across the
    /// transactions of a producer session, so a late EndTxn or Produce can land in a later
    /// transaction.
    pub transaction_version: u8,
    /// A planted bug, for the test that shows `zombie-write` catches it: InitProducerId does
    /// not fence the older instance (the epoch is not bumped). Never set from a scenario.
    pub planted_no_epoch_fence: bool,
}

impl Default for TransactionCoordinatorConfig {
    fn default() -> Self {
        TransactionCoordinatorConfig {
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: Some(604_800_000),
            abort_timed_out_transactions_interval_ms: 10_000,
            remove_expired_transactional_ids_interval_ms: 3_600_000,
            transaction_state_num_partitions: 50,
            offsets_topic_num_partitions: 50,
            transaction_version: 2,
            planted_no_epoch_fence: false,
        }
    }
}

impl TransactionCoordinatorConfig {
    /// The `ClientTransactionVersion` this coordinator records: Kafka records feature level 2
    /// for KIP-890 part 2 clients and 0 for older ones.
    pub fn client_transaction_version(&self) -> i16 {
        if self.transaction_version >= 2 {
            2
        } else {
            0
        }
    }
}

/// The `__transaction_state` partition of a transactional id: `Utils.abs(transactionalId
/// .hashCode()) % transaction.state.log.num.partitions` (`TransactionStateManager.partitionFor`),
/// with Java's `String.hashCode` over UTF-16 and `Utils.abs` mapping `Integer.MIN_VALUE` to 0 —
/// the same function as the group coordinator's.
pub fn partition_for(transactional_id: &str, num_partitions: i32) -> i32 {
    crate::coordinator::group::partition_for(transactional_id, num_partitions)
}
