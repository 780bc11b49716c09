//! InitProducerId with a transactional id (`handleInitProducerId`): a producer id and a fresh
//! epoch for a new producer session, fencing the sessions before it.

use super::coordinator::{init_error, AfterAppend, TransactionCoordinator, TxnOutput};
use super::end_txn::EndWaiter;
use super::metadata::{
    is_epoch_exhausted, TransactionMetadata, TransactionState, TxnTransitMetadata,
};
use super::{
    error_code, InitProducerIdRequest, ProducerIdSource, RequestId, TxnResponse, NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
};

/// What InitProducerId does to an existing transactional id.
enum InitTransit {
    /// A new epoch (or producer id) to write, then to answer.
    Write(TxnTransitMetadata),
    /// An open transaction is aborted first, with this fenced epoch; the client retries.
    Fence(TxnTransitMetadata),
}

impl TransactionCoordinator {
    pub(super) fn init_producer_id(
        &mut self,
        now_ms: u64,
        id: RequestId,
        r: &InitProducerIdRequest,
        ids: &mut dyn ProducerIdSource,
        out: &mut TxnOutput,
    ) {
        match self.try_init_producer_id(now_ms, r, ids) {
            Err(error) => out.respond(id, TxnResponse::InitProducerId(init_error(error))),
            Ok(InitTransit::Write(transit)) => {
                let then = AfterAppend::InitProducerId(id);
                self.append(&r.transactional_id, transit, then, out);
            }
            Ok(InitTransit::Fence(fence)) => {
                // Abort the open transaction with the bumped epoch, then answer
                // CONCURRENT_TRANSACTIONS so that the client retries and bumps once more.
                self.end_transaction(
                    now_ms,
                    &r.transactional_id,
                    (fence.producer_id, fence.producer_epoch),
                    false,
                    false,
                    EndWaiter::InitProducerId(id),
                    ids,
                    out,
                );
            }
        }
    }

    fn try_init_producer_id(
        &mut self,
        now_ms: u64,
        r: &InitProducerIdRequest,
        ids: &mut dyn ProducerIdSource,
    ) -> Result<InitTransit, i16> {
        if r.transactional_id.is_empty() {
            return Err(error_code::INVALID_REQUEST);
        }
        let timeout_ms = r.transaction_timeout_ms;
        if timeout_ms <= 0 || timeout_ms > self.config.transaction_max_timeout_ms {
            return Err(error_code::INVALID_TRANSACTION_TIMEOUT);
        }
        self.check_coordinator(&r.transactional_id)?;
        // KIP-360: a producer that knows its id and epoch gives both.
        let expected = match (r.producer_id, r.producer_epoch) {
            (NO_PRODUCER_ID, NO_PRODUCER_EPOCH) => None,
            (NO_PRODUCER_ID, _) | (_, NO_PRODUCER_EPOCH) => {
                return Err(error_code::INVALID_REQUEST)
            }
            (producer_id, epoch) => Some((producer_id, epoch)),
        };
        if !self.transactions.contains_key(&r.transactional_id) {
            let producer_id = ids.generate_producer_id()?;
            let m = TransactionMetadata::new(&r.transactional_id, producer_id, timeout_ms, now_ms);
            self.transactions.insert(r.transactional_id.clone(), m);
        }
        let m = self
            .transactions
            .get_mut(&r.transactional_id)
            .expect("present or just created");
        if self.config.planted_no_epoch_fence && m.producer_epoch >= 0 {
            return unfenced_init_transit(m, timeout_ms, now_ms);
        }
        prepare_init_transit(m, timeout_ms, expected, now_ms, ids)
    }
}

/// A planted bug: InitProducerId hands the current epoch out again and leaves an open
/// transaction open, so an older instance of the transactional id is never fenced.
fn unfenced_init_transit(
    m: &mut TransactionMetadata,
    timeout_ms: i32,
    now_ms: u64,
) -> Result<InitTransit, i16> {
    if m.pending_transition_in_progress()
        || matches!(
            m.state,
            TransactionState::PrepareAbort | TransactionState::PrepareCommit
        )
    {
        return Err(error_code::CONCURRENT_TRANSACTIONS);
    }
    let state = m.state;
    let epoch = m.producer_epoch;
    let mut t = m.prepare_increment_producer_epoch(timeout_ms, None, now_ms)?;
    t.producer_epoch = epoch;
    if state == TransactionState::Ongoing {
        t.txn_state = TransactionState::Ongoing;
    }
    Ok(InitTransit::Write(t))
}

/// `prepareInitProducerIdTransit`.
fn prepare_init_transit(
    m: &mut TransactionMetadata,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    now_ms: u64,
    ids: &mut dyn ProducerIdSource,
) -> Result<InitTransit, i16> {
    // A given producer id must be the current one, unless the metadata was just created (a
    // producer recovering from UNKNOWN_PRODUCER_ID) or it is the previous one with an exhausted
    // epoch (a retry of a rotation whose answer was lost).
    let valid_producer_id = |(producer_id, epoch): (i64, i16)| {
        m.producer_epoch == NO_PRODUCER_EPOCH
            || producer_id == m.producer_id
            || (producer_id == m.prev_producer_id && is_epoch_exhausted(epoch))
    };
    if m.pending_transition_in_progress() {
        return Err(error_code::CONCURRENT_TRANSACTIONS);
    }
    if !expected.is_none_or(valid_producer_id) {
        return Err(error_code::PRODUCER_FENCED);
    }
    match m.state {
        TransactionState::PrepareAbort | TransactionState::PrepareCommit => {
            Err(error_code::CONCURRENT_TRANSACTIONS)
        }
        TransactionState::CompleteAbort
        | TransactionState::CompleteCommit
        | TransactionState::Empty => {
            let epoch_matches = expected.is_none_or(|(_, e)| e == m.producer_epoch);
            if m.is_producer_epoch_exhausted() && epoch_matches {
                let producer_id = ids.generate_producer_id()?;
                let transit = m.prepare_producer_id_rotation(
                    producer_id,
                    timeout_ms,
                    now_ms,
                    expected.is_some(),
                );
                return Ok(InitTransit::Write(transit));
            }
            let expected_epoch = expected.map(|(_, e)| e);
            m.prepare_increment_producer_epoch(timeout_ms, expected_epoch, now_ms)
                .map(InitTransit::Write)
        }
        TransactionState::Ongoing => Ok(InitTransit::Fence(m.prepare_fence_producer_epoch())),
        TransactionState::Dead | TransactionState::PrepareEpochFence => panic!(
            "{}: InitProducerId found the state {}, which is never current",
            m.transactional_id, m.state
        ),
    }
}
