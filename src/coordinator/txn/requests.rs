//! The transaction coordinator's requests and responses, with the field names of Kafka's
//! messages (`InitProducerIdRequest.json`, …), free of the wire (`wire` maps `kafka-protocol`'s
//! messages onto them and back); and the transaction markers it asks the driver to write.

use super::TopicPartition;

/// `InitProducerIdRequest` with a transactional id (a producer without one is given a producer
/// id by the broker, not by the coordinator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitProducerIdRequest {
    pub transactional_id: String,
    pub transaction_timeout_ms: i32,
    /// KIP-360 (v3+): the producer's current id and epoch, -1 when it has none.
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// `InitProducerIdResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitProducerIdResponse {
    pub error_code: i16,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// One transaction of an `AddPartitionsToTxnRequest`: the whole request of a client (v0-3), or
/// one of the batch a partition leader sends (v4+).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddPartitionsToTxnRequest {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// KIP-890 part 1: a partition leader only asks whether the partitions are in the ongoing
    /// transaction of this producer id and epoch; nothing is added.
    pub verify_only: bool,
    /// (topic, partitions).
    pub topics: Vec<(String, Vec<i32>)>,
}

impl AddPartitionsToTxnRequest {
    pub fn partitions(&self) -> impl Iterator<Item = TopicPartition> + '_ {
        self.topics
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| TopicPartition::new(t, *p)))
    }
}

/// `AddPartitionsToTxnResult`: one transaction's answer, an error per partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddPartitionsToTxnResult {
    pub transactional_id: String,
    /// (topic, [(partition, error code)]), in the request's order.
    pub topic_results: Vec<(String, Vec<(i32, i16)>)>,
}

impl AddPartitionsToTxnResult {
    /// The same error for every partition of `request`.
    pub fn all(request: &AddPartitionsToTxnRequest, error_code: i16) -> Self {
        Self::each(request, |_| error_code)
    }

    pub fn each(
        request: &AddPartitionsToTxnRequest,
        error: impl Fn(&TopicPartition) -> i16,
    ) -> Self {
        AddPartitionsToTxnResult {
            transactional_id: request.transactional_id.clone(),
            topic_results: request
                .topics
                .iter()
                .map(|(topic, ps)| {
                    let results = ps
                        .iter()
                        .map(|p| (*p, error(&TopicPartition::new(topic, *p))))
                        .collect();
                    (topic.clone(), results)
                })
                .collect(),
        }
    }
}

/// `AddOffsetsToTxnRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddOffsetsToTxnRequest {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub group_id: String,
}

/// `EndTxnRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndTxnRequest {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// True to commit, false to abort.
    pub committed: bool,
}

/// `EndTxnResponse`: KIP-890 part 2 (v5+) returns the producer id and the bumped epoch for the
/// next transaction; -1 otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndTxnResponse {
    pub error_code: i16,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// One request to the transaction coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnRequest {
    InitProducerId(InitProducerIdRequest),
    AddPartitionsToTxn(AddPartitionsToTxnRequest),
    AddOffsetsToTxn(AddOffsetsToTxnRequest),
    EndTxn(EndTxnRequest),
}

/// One response of the transaction coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnResponse {
    InitProducerId(InitProducerIdResponse),
    AddPartitionsToTxn(AddPartitionsToTxnResult),
    /// The error code.
    AddOffsetsToTxn(i16),
    EndTxn(EndTxnResponse),
}

/// A transaction marker to write (one `WritableTxnMarker` of `WriteTxnMarkersRequest`): the
/// driver sends it to the leader of each partition, grouping by leader as Kafka's
/// `TransactionMarkerChannelManager` does, and reports each partition's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnMarker {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// `TransactionResult`: true for COMMIT, false for ABORT.
    pub committed: bool,
    /// The leader epoch of the coordinator's `__transaction_state` partition: a partition
    /// leader refuses a marker of an older coordinator (TRANSACTION_COORDINATOR_FENCED).
    pub coordinator_epoch: i32,
    /// The client's `transaction.version` level (WriteTxnMarkers v2's `TransactionVersion`):
    /// with 2, a marker's epoch is above the transaction's data (KIP-890 part 2).
    pub transaction_version: i16,
    pub partitions: Vec<TopicPartition>,
}

/// What became of a marker on one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkerOutcome {
    /// The leader wrote it.
    Written,
    /// WriteTxnMarkers answered this error for the partition, or the request failed (NOT_LEADER
    /// and the like, REQUEST_TIMED_OUT for a lost request).
    Failed(i16),
    /// The partition no longer exists (its topic was deleted): no marker is needed.
    PartitionDeleted,
}

/// The outcome of a marker on one partition, as the driver reports it: the marker's identity
/// as sent, the partition, what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkerResult {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub partition: TopicPartition,
    pub outcome: MarkerOutcome,
}

impl MarkerResult {
    /// The result of `marker` on `partition`.
    pub fn of(marker: &TxnMarker, partition: &TopicPartition, outcome: MarkerOutcome) -> Self {
        MarkerResult {
            transactional_id: marker.transactional_id.clone(),
            producer_id: marker.producer_id,
            producer_epoch: marker.producer_epoch,
            coordinator_epoch: marker.coordinator_epoch,
            partition: partition.clone(),
            outcome,
        }
    }
}
