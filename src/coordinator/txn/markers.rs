//! The second phase of a transaction (`TransactionMarkerChannelManager` and its completion
//! handler): once PrepareCommit or PrepareAbort is committed, a marker goes to every partition
//! of the transaction; each written marker takes its partition out of the transaction; when none
//! is left, CompleteCommit or CompleteAbort is written.

use super::coordinator::{AfterAppend, TransactionCoordinator, TxnOutput};
use super::metadata::{TransactionState, TxnTransitMetadata};
use super::{error_code, MarkerOutcome, MarkerResult, TopicPartition, TxnMarker};

/// A transaction whose markers are being written, and the Complete record that ends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Completion {
    pub committed: bool,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub transit: TxnTransitMetadata,
}

impl TransactionCoordinator {
    /// A Prepare record is committed (or was found at loading): the Complete transition is
    /// prepared (pending from now on) and the markers go out. A transaction with no partition
    /// (an abort with none added, under transaction version 2) is completed at once.
    pub(super) fn begin_completion(
        &mut self,
        now_ms: u64,
        transactional_id: &str,
        committed: bool,
        out: &mut TxnOutput,
    ) {
        let coordinator_epoch = self.coordinator_epoch;
        let m = self
            .transactions
            .get_mut(transactional_id)
            .expect("a prepared transaction");
        debug_assert_eq!(
            m.state,
            if committed {
                TransactionState::PrepareCommit
            } else {
                TransactionState::PrepareAbort
            }
        );
        let transit = m.prepare_complete(now_ms);
        let marker = TxnMarker {
            transactional_id: transactional_id.to_owned(),
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            committed,
            coordinator_epoch,
            transaction_version: m.client_transaction_version,
            partitions: m.topic_partitions.iter().cloned().collect(),
        };
        let completion = Completion {
            committed,
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            transit,
        };
        self.completing
            .insert(transactional_id.to_owned(), completion);
        if marker.partitions.is_empty() {
            self.write_completion(transactional_id, out);
        } else {
            out.markers.push(marker);
        }
    }

    /// Every marker is written: the Complete record.
    fn write_completion(&mut self, transactional_id: &str, out: &mut TxnOutput) {
        let completion = self
            .completing
            .remove(transactional_id)
            .expect("a transaction being completed");
        self.append(
            transactional_id,
            completion.transit,
            AfterAppend::Complete,
            out,
        );
    }

    /// What became of a marker on one partition. A result of another coordinator epoch, of a
    /// transaction no longer being completed, or for a partition already done is stale and
    /// ignored. A retriable failure sends the marker for that partition again (the driver holds
    /// it for its retry backoff); a fenced one (INVALID_PRODUCER_EPOCH,
    /// TRANSACTION_COORDINATOR_FENCED) stops the markers of the transaction: a newer producer or
    /// coordinator has taken over.
    pub fn marker_result(&mut self, now_ms: u64, r: &MarkerResult) -> TxnOutput {
        let mut out = self.tick(now_ms);
        if !self.is_active() || r.coordinator_epoch != self.coordinator_epoch {
            return out;
        }
        let Some(c) = self.completing.get(&r.transactional_id) else {
            return out;
        };
        if c.producer_id != r.producer_id || c.producer_epoch != r.producer_epoch {
            return out;
        }
        let committed = c.committed;
        let m = self
            .transactions
            .get_mut(&r.transactional_id)
            .expect("a transaction being completed");
        if !m.topic_partitions.contains(&r.partition) {
            return out;
        }
        match marker_action(r.outcome) {
            MarkerAction::Done => {
                m.topic_partitions.remove(&r.partition);
            }
            MarkerAction::Retry => {
                let marker = TxnMarker {
                    transactional_id: r.transactional_id.clone(),
                    producer_id: r.producer_id,
                    producer_epoch: r.producer_epoch,
                    committed,
                    coordinator_epoch: self.coordinator_epoch,
                    transaction_version: m.client_transaction_version,
                    partitions: vec![r.partition.clone()],
                };
                out.markers.push(marker);
                return out;
            }
            MarkerAction::StopSending => {
                self.completing.remove(&r.transactional_id);
                return out;
            }
        }
        if m.topic_partitions.is_empty() {
            self.write_completion(&r.transactional_id, &mut out);
        }
        out
    }

    /// The partitions of a transaction whose markers are still to be written.
    pub fn pending_markers(&self, transactional_id: &str) -> Option<Vec<TopicPartition>> {
        self.completing.get(transactional_id)?;
        let m = self.transactions.get(transactional_id)?;
        Some(m.topic_partitions.iter().cloned().collect())
    }
}

enum MarkerAction {
    /// The partition needs no more marker.
    Done,
    Retry,
    StopSending,
}

/// `TransactionMarkerRequestCompletionHandler`'s handling of a partition's error. Kafka treats
/// an unexpected error as fatal; here it is retried.
fn marker_action(outcome: MarkerOutcome) -> MarkerAction {
    use error_code::*;
    match outcome {
        MarkerOutcome::Written | MarkerOutcome::PartitionDeleted => MarkerAction::Done,
        MarkerOutcome::Failed(NONE) => MarkerAction::Done,
        // The producer could not have written to such a partition.
        MarkerOutcome::Failed(UNSUPPORTED_FOR_MESSAGE_FORMAT | UNSUPPORTED_VERSION) => {
            MarkerAction::Done
        }
        MarkerOutcome::Failed(INVALID_PRODUCER_EPOCH | TRANSACTION_COORDINATOR_FENCED) => {
            MarkerAction::StopSending
        }
        MarkerOutcome::Failed(_) => MarkerAction::Retry,
    }
}
