//! EndTxn (`handleEndTransaction`), and the aborts the coordinator starts itself: the fence of
//! an InitProducerId that finds a transaction open, and the timeout.
//!
//! Transaction version 1 keeps the epoch: a retried EndTxn is recognized by the state alone
//! (CompleteCommit answers a commit at once). Transaction version 2 (KIP-890 part 2) bumps the
//! epoch at every EndTxn and returns it, so a retry is recognized by its epoch being the one
//! before: with the same epoch, a request is the next transaction's, and any other is fenced.
//!
//! | state (TV2)    | abort, retry | abort, current | commit, retry | commit, current |
//! |----------------|--------------|----------------|---------------|-----------------|
//! | Empty          | FENCED       | bump           | FENCED        | INVALID_TXN_STATE |
//! | CompleteAbort  | NONE         | bump           | INVALID_TXN_STATE | INVALID_TXN_STATE |
//! | CompleteCommit | INVALID_TXN_STATE | bump      | NONE          | INVALID_TXN_STATE |

use super::coordinator::{init_error, AfterAppend, TransactionCoordinator, TxnOutput};
use super::metadata::{TransactionMetadata, TransactionState, TxnTransitMetadata};
use super::{
    error_code, EndTxnRequest, EndTxnResponse, ProducerIdSource, RequestId, TxnResponse,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

/// Who waits for the end of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EndWaiter {
    /// A client's EndTxn.
    Client(RequestId),
    /// An InitProducerId that fenced an open transaction: answered CONCURRENT_TRANSACTIONS (or
    /// the error), so that it retries once the abort is complete.
    InitProducerId(RequestId),
    /// The transaction timed out: nobody.
    Timeout,
}

impl EndWaiter {
    /// Answers the waiter: `error` with the producer id and epoch to continue with.
    pub(super) fn answer(
        self,
        error: i16,
        producer_id: i64,
        producer_epoch: i16,
        out: &mut TxnOutput,
    ) {
        match self {
            EndWaiter::Client(id) => {
                let response = EndTxnResponse {
                    error_code: error,
                    producer_id,
                    producer_epoch,
                };
                out.respond(id, TxnResponse::EndTxn(response));
            }
            EndWaiter::InitProducerId(id) => {
                let error = if error == error_code::NONE {
                    error_code::CONCURRENT_TRANSACTIONS
                } else {
                    error
                };
                out.respond(id, TxnResponse::InitProducerId(init_error(error)));
            }
            EndWaiter::Timeout => {}
        }
    }
}

/// What an EndTxn comes to before anything is written.
enum EndDecision {
    /// Answered at once without error (a retry of a completed transaction), with the producer
    /// id and epoch to continue with.
    Done(i64, i16),
    /// A PrepareCommit or PrepareAbort to write; whether it fences the epoch.
    Write(TxnTransitMetadata, bool),
}

impl TransactionCoordinator {
    pub(super) fn end_txn(
        &mut self,
        now_ms: u64,
        id: RequestId,
        r: &EndTxnRequest,
        ids: &mut dyn ProducerIdSource,
        out: &mut TxnOutput,
    ) {
        let waiter = EndWaiter::Client(id);
        if r.transactional_id.is_empty() {
            return waiter.answer(
                error_code::INVALID_REQUEST,
                NO_PRODUCER_ID,
                NO_PRODUCER_EPOCH,
                out,
            );
        }
        if let Err(error) = self.check_coordinator(&r.transactional_id) {
            return waiter.answer(error, NO_PRODUCER_ID, NO_PRODUCER_EPOCH, out);
        }
        let producer = (r.producer_id, r.producer_epoch);
        self.end_transaction(
            now_ms,
            &r.transactional_id,
            producer,
            r.committed,
            true,
            waiter,
            ids,
            out,
        );
    }

    /// `endTransaction`: from a client, or (`from_client` false) the abort of a fence or a
    /// timeout, whose epoch is the fenced one (pending PrepareEpochFence).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn end_transaction(
        &mut self,
        now_ms: u64,
        transactional_id: &str,
        (producer_id, producer_epoch): (i64, i16),
        committed: bool,
        from_client: bool,
        waiter: EndWaiter,
        ids: &mut dyn ProducerIdSource,
        out: &mut TxnOutput,
    ) {
        let v2 = self.config.transaction_version >= 2;
        let client_tv = self.config.client_transaction_version();
        let decision = match self.transactions.get_mut(transactional_id) {
            None => Err(error_code::INVALID_PRODUCER_ID_MAPPING),
            Some(m) if v2 => decide_v2(
                m,
                now_ms,
                (producer_id, producer_epoch),
                committed,
                from_client,
                client_tv,
                ids,
            ),
            Some(m) => decide_v1(
                m,
                now_ms,
                (producer_id, producer_epoch),
                committed,
                from_client,
            ),
        };
        match decision {
            Ok(EndDecision::Write(transit, epoch_fence)) => {
                let then = AfterAppend::EndTxn {
                    waiter,
                    committed,
                    epoch_fence,
                };
                self.append(transactional_id, transit, then, out);
            }
            Ok(EndDecision::Done(producer_id, producer_epoch)) => {
                waiter.answer(error_code::NONE, producer_id, producer_epoch, out)
            }
            Err(error) => {
                // A fence that cannot go on must not leave its pending state behind.
                if let Some(m) = self.transactions.get_mut(transactional_id) {
                    if m.pending_state == Some(TransactionState::PrepareEpochFence) {
                        m.pending_state = None;
                    }
                }
                waiter.answer(error, NO_PRODUCER_ID, NO_PRODUCER_EPOCH, out)
            }
        }
    }

    /// The Prepare record of an EndTxn is committed: answer its waiter. Version 1 answers no
    /// producer id; version 2 the id and the bumped epoch for the next transaction (the next
    /// producer id and epoch 0 when the epoch is exhausted).
    pub(super) fn answer_prepared(
        &self,
        transactional_id: &str,
        waiter: EndWaiter,
        out: &mut TxnOutput,
    ) {
        let m = &self.transactions[transactional_id];
        let (producer_id, producer_epoch) = if self.config.transaction_version < 2 {
            (NO_PRODUCER_ID, NO_PRODUCER_EPOCH)
        } else if m.next_producer_id != NO_PRODUCER_ID {
            (m.next_producer_id, 0)
        } else {
            (m.producer_id, m.producer_epoch)
        };
        waiter.answer(error_code::NONE, producer_id, producer_epoch, out);
    }
}

fn invalid_state() -> Result<EndDecision, i16> {
    Err(error_code::INVALID_TXN_STATE)
}

fn never_current(m: &TransactionMetadata) -> ! {
    panic!(
        "{}: EndTxn found the state {}, which is never current",
        m.transactional_id, m.state
    )
}

/// `endTransactionWithTV1`.
fn decide_v1(
    m: &mut TransactionMetadata,
    now_ms: u64,
    (producer_id, producer_epoch): (i64, i16),
    committed: bool,
    from_client: bool,
) -> Result<EndDecision, i16> {
    use TransactionState::*;
    if m.producer_id != producer_id {
        return Err(error_code::INVALID_PRODUCER_ID_MAPPING);
    }
    // A client's epoch must be the current one; a fence's may be higher.
    if (from_client && producer_epoch != m.producer_epoch) || producer_epoch < m.producer_epoch {
        return Err(error_code::PRODUCER_FENCED);
    }
    if m.pending_transition_in_progress() && m.pending_state != Some(PrepareEpochFence) {
        return Err(error_code::CONCURRENT_TRANSACTIONS);
    }
    let done = Ok(EndDecision::Done(NO_PRODUCER_ID, NO_PRODUCER_EPOCH));
    match (m.state, committed) {
        (Ongoing, _) => {
            let next = if committed {
                PrepareCommit
            } else {
                PrepareAbort
            };
            let epoch_fence = take_fence(m, next, producer_epoch);
            let transit = m.prepare_abort_or_commit(next, 0, NO_PRODUCER_ID, now_ms, false);
            Ok(EndDecision::Write(transit, epoch_fence))
        }
        (CompleteCommit, true) | (CompleteAbort, false) => done,
        (PrepareCommit, true) | (PrepareAbort, false) => Err(error_code::CONCURRENT_TRANSACTIONS),
        (CompleteCommit | CompleteAbort | PrepareCommit | PrepareAbort | Empty, _) => {
            invalid_state()
        }
        (Dead | PrepareEpochFence, _) => never_current(m),
    }
}

/// A fence's abort takes over from its pending PrepareEpochFence, with the fenced epoch.
fn take_fence(m: &mut TransactionMetadata, next: TransactionState, producer_epoch: i16) -> bool {
    if next == TransactionState::PrepareAbort
        && m.pending_state == Some(TransactionState::PrepareEpochFence)
    {
        m.pending_state = None;
        m.producer_epoch = producer_epoch;
        m.last_producer_epoch = NO_PRODUCER_EPOCH;
        return true;
    }
    false
}

/// `endTransaction` for transaction version 2.
fn decide_v2(
    m: &mut TransactionMetadata,
    now_ms: u64,
    (producer_id, producer_epoch): (i64, i16),
    committed: bool,
    from_client: bool,
    client_tv: i16,
    ids: &mut dyn ProducerIdSource,
) -> Result<EndDecision, i16> {
    use TransactionState::*;
    let is_epoch_fence = m.pending_state == Some(PrepareEpochFence);
    // A retry of an EndTxn whose epoch bump rotated the producer id.
    let retry_on_overflow = !is_epoch_fence
        && m.prev_producer_id == producer_id
        && producer_epoch == i16::MAX - 1
        && m.producer_epoch == 0;
    // A retry of an EndTxn whose bumped epoch is current now.
    let retry_on_epoch_bump =
        !is_epoch_fence && i32::from(m.producer_epoch) == i32::from(producer_epoch) + 1;
    let valid_epoch = if is_epoch_fence {
        (!from_client || producer_epoch == m.producer_epoch) && producer_epoch >= m.producer_epoch
    } else {
        match m.state {
            Ongoing | Empty | Dead | PrepareEpochFence => producer_epoch == m.producer_epoch,
            PrepareCommit | PrepareAbort => retry_on_epoch_bump,
            CompleteCommit | CompleteAbort => {
                retry_on_epoch_bump || retry_on_overflow || producer_epoch == m.producer_epoch
            }
        }
    };
    let is_retry = retry_on_epoch_bump || retry_on_overflow;
    if m.producer_id != producer_id && !retry_on_overflow {
        return Err(error_code::INVALID_PRODUCER_ID_MAPPING);
    }
    if !valid_epoch {
        return Err(error_code::PRODUCER_FENCED);
    }
    if m.pending_transition_in_progress() && !is_epoch_fence {
        return Err(error_code::CONCURRENT_TRANSACTIONS);
    }
    let mut prepare = |m: &mut TransactionMetadata, next, no_partition_added| {
        // The epoch is bumped: past its last value, the next one is on a new producer id.
        let next_producer_id = if !is_epoch_fence && m.is_producer_epoch_exhausted() {
            ids.generate_producer_id()?
        } else {
            NO_PRODUCER_ID
        };
        let epoch_fence = take_fence(m, next, producer_epoch);
        let transit = m.prepare_abort_or_commit(
            next,
            client_tv,
            next_producer_id,
            now_ms,
            no_partition_added,
        );
        Ok(EndDecision::Write(transit, epoch_fence))
    };
    let current = Ok(EndDecision::Done(m.producer_id, m.producer_epoch));
    match (m.state, committed) {
        (Ongoing, true) => prepare(m, PrepareCommit, false),
        (Ongoing, false) => prepare(m, PrepareAbort, false),
        (CompleteCommit, true) | (CompleteAbort, false) if is_retry => current,
        (CompleteCommit, true) | (CompleteAbort, true) => invalid_state(),
        (CompleteCommit, false) if is_retry => invalid_state(),
        // KIP-890: a client unsure whether its transaction is open may always abort.
        (CompleteCommit | CompleteAbort | Empty, false) => prepare(m, PrepareAbort, true),
        (Empty, true) => invalid_state(),
        (PrepareCommit, true) | (PrepareAbort, false) => Err(error_code::CONCURRENT_TRANSACTIONS),
        (PrepareCommit | PrepareAbort, _) => invalid_state(),
        (Dead | PrepareEpochFence, _) => never_current(m),
    }
}
