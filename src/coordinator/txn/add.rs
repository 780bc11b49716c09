//! AddPartitionsToTxn and AddOffsetsToTxn (`handleAddPartitionsToTransaction`), and the
//! verify-only form partition leaders send (KIP-890 part 1, `handleVerifyPartitionsInTransaction`).

use std::collections::BTreeSet;

use super::coordinator::{AfterAppend, TransactionCoordinator, TxnOutput};
use super::metadata::{TopicPartition, TransactionState, TxnTransitMetadata};
use super::{
    error_code, partition_for, AddOffsetsToTxnRequest, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResult, RequestId, TxnResponse, OFFSETS_TOPIC,
};

impl TransactionCoordinator {
    pub(super) fn add_partitions(
        &mut self,
        now_ms: u64,
        id: RequestId,
        r: AddPartitionsToTxnRequest,
        out: &mut TxnOutput,
    ) {
        let answer = |result| TxnResponse::AddPartitionsToTxn(result);
        if r.transactional_id.is_empty() {
            let result = AddPartitionsToTxnResult::all(&r, error_code::INVALID_REQUEST);
            return out.respond(id, answer(result));
        }
        if let Err(error) = self.check_coordinator(&r.transactional_id) {
            return out.respond(id, answer(AddPartitionsToTxnResult::all(&r, error)));
        }
        if r.verify_only {
            return out.respond(id, answer(self.verify_partitions(&r)));
        }
        let partitions: BTreeSet<TopicPartition> = r.partitions().collect();
        let prepared = self.prepare_add(
            now_ms,
            &r.transactional_id,
            r.producer_id,
            r.producer_epoch,
            &partitions,
        );
        match prepared {
            Ok(Some(transit)) => {
                let txn_id = r.transactional_id.clone();
                self.append(&txn_id, transit, AfterAppend::AddPartitions(id, r), out);
            }
            Ok(None) => {
                let result = AddPartitionsToTxnResult::all(&r, error_code::NONE);
                out.respond(id, answer(result));
            }
            Err(error) => out.respond(id, answer(AddPartitionsToTxnResult::all(&r, error))),
        }
    }

    /// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction, so
    /// that its offset commit gets a marker too.
    pub(super) fn add_offsets(
        &mut self,
        now_ms: u64,
        id: RequestId,
        r: &AddOffsetsToTxnRequest,
        out: &mut TxnOutput,
    ) {
        let answer = TxnResponse::AddOffsetsToTxn;
        if r.transactional_id.is_empty() {
            return out.respond(id, answer(error_code::INVALID_REQUEST));
        }
        if let Err(error) = self.check_coordinator(&r.transactional_id) {
            return out.respond(id, answer(error));
        }
        let offsets_partition =
            partition_for(&r.group_id, self.config.offsets_topic_num_partitions);
        let partitions = BTreeSet::from([TopicPartition::new(OFFSETS_TOPIC, offsets_partition)]);
        let prepared = self.prepare_add(
            now_ms,
            &r.transactional_id,
            r.producer_id,
            r.producer_epoch,
            &partitions,
        );
        match prepared {
            Ok(Some(transit)) => self.append(
                &r.transactional_id,
                transit,
                AfterAppend::AddOffsets(id),
                out,
            ),
            Ok(None) => out.respond(id, answer(error_code::NONE)),
            Err(error) => out.respond(id, answer(error)),
        }
    }

    /// The checks of an add, then the transition: `None` when the partitions are already in the
    /// ongoing transaction (answered at once).
    fn prepare_add(
        &mut self,
        now_ms: u64,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TopicPartition>,
    ) -> Result<Option<TxnTransitMetadata>, i16> {
        let client_transaction_version = self.config.client_transaction_version();
        let Some(m) = self.transactions.get_mut(transactional_id) else {
            return Err(error_code::INVALID_PRODUCER_ID_MAPPING);
        };
        if m.producer_id != producer_id {
            return Err(error_code::INVALID_PRODUCER_ID_MAPPING);
        }
        if m.producer_epoch != producer_epoch {
            return Err(error_code::PRODUCER_FENCED);
        }
        if m.pending_transition_in_progress()
            || matches!(
                m.state,
                TransactionState::PrepareCommit | TransactionState::PrepareAbort
            )
        {
            return Err(error_code::CONCURRENT_TRANSACTIONS);
        }
        if m.state == TransactionState::Ongoing && partitions.is_subset(&m.topic_partitions) {
            return Ok(None);
        }
        Ok(Some(m.prepare_add_partitions(
            partitions,
            now_ms,
            client_transaction_version,
        )))
    }

    /// Whether each partition is in the ongoing transaction of this producer id and epoch; one
    /// that is not gets TRANSACTION_ABORTABLE (the leader refuses the produce). A pending
    /// transition is not looked at: partitions join when their add is committed and leave when
    /// their marker is written.
    fn verify_partitions(&self, r: &AddPartitionsToTxnRequest) -> AddPartitionsToTxnResult {
        let Some(m) = self.transactions.get(&r.transactional_id) else {
            return AddPartitionsToTxnResult::all(r, error_code::INVALID_PRODUCER_ID_MAPPING);
        };
        let error = if m.producer_id != r.producer_id {
            error_code::INVALID_PRODUCER_ID_MAPPING
        } else if m.producer_epoch != r.producer_epoch {
            error_code::PRODUCER_FENCED
        } else if matches!(
            m.state,
            TransactionState::PrepareCommit | TransactionState::PrepareAbort
        ) {
            error_code::CONCURRENT_TRANSACTIONS
        } else {
            return AddPartitionsToTxnResult::each(r, |tp| {
                if m.topic_partitions.contains(tp) {
                    error_code::NONE
                } else {
                    error_code::TRANSACTION_ABORTABLE
                }
            });
        };
        AddPartitionsToTxnResult::all(r, error)
    }
}
