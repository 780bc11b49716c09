//! The coordinator's timers (`TransactionCoordinator.startup`'s scheduled tasks): the abort of
//! transactions open past their timeout, and the expiration of unused transactional ids.

use super::coordinator::{AfterAppend, TransactionCoordinator, TxnOutput};
use super::end_txn::EndWaiter;
use super::metadata::{ms, TransactionState};
use super::{error_code, ProducerIdSource};

/// Timers fire in deadline order; no tick fires more than this many (each firing moves its timer
/// later, so this bound is only reached by a bug).
const MAX_TIMERS_PER_TICK: usize = 1_000_000;

/// Hands out no producer id: for aborts that need none (fences and timeouts).
struct NoProducerIds;

impl ProducerIdSource for NoProducerIds {
    fn generate_producer_id(&mut self) -> Result<i64, i16> {
        Err(error_code::COORDINATOR_NOT_AVAILABLE)
    }
}

impl TransactionCoordinator {
    /// Fires every timer due by `now_ms`, in deadline order, each as of its own deadline: the
    /// abort of timed-out transactions and the expiration of transactional ids.
    pub fn tick(&mut self, now_ms: u64) -> TxnOutput {
        let mut out = TxnOutput::default();
        for _ in 0..MAX_TIMERS_PER_TICK {
            let Some(deadline_ms) = self.next_deadline_ms().filter(|d| *d <= now_ms) else {
                return out;
            };
            if self.next_abort_scan_ms == Some(deadline_ms) {
                self.abort_timed_out_transactions(deadline_ms, &mut out);
                self.next_abort_scan_ms =
                    Some(deadline_ms + self.config.abort_timed_out_transactions_interval_ms);
            } else {
                self.expire_transactional_ids(deadline_ms, &mut out);
                self.next_expiration_scan_ms =
                    Some(deadline_ms + self.config.remove_expired_transactional_ids_interval_ms);
            }
        }
        panic!("more than {MAX_TIMERS_PER_TICK} timers due at {now_ms}");
    }

    /// When the next timer is due, for the driver to tick then.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        match (self.next_abort_scan_ms, self.next_expiration_scan_ms) {
            (Some(a), Some(e)) => Some(a.min(e)),
            (a, e) => a.or(e),
        }
    }

    /// `abortTimedOutTransactions`: every transaction open longer than its timeout, with no
    /// transition pending, is aborted with a bumped epoch, so that its producer is fenced.
    fn abort_timed_out_transactions(&mut self, now_ms: u64, out: &mut TxnOutput) {
        let timed_out: Vec<String> = self
            .transactions
            .iter()
            .filter(|(_, m)| {
                m.state == TransactionState::Ongoing
                    && !m.pending_transition_in_progress()
                    && m.txn_start_timestamp_ms + i64::from(m.txn_timeout_ms) < ms(now_ms)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for transactional_id in timed_out {
            let m = self
                .transactions
                .get_mut(&transactional_id)
                .expect("listed");
            let fence = m.prepare_fence_producer_epoch();
            self.end_transaction(
                now_ms,
                &transactional_id,
                (fence.producer_id, fence.producer_epoch),
                false,
                false,
                EndWaiter::Timeout,
                &mut NoProducerIds,
                out,
            );
        }
    }

    /// `removeExpiredTransactionalIds`: a transactional id with no open transaction, unused for
    /// `transactional.id.expiration.ms`, is removed with a tombstone.
    fn expire_transactional_ids(&mut self, now_ms: u64, out: &mut TxnOutput) {
        let Some(expiration_ms) = self.config.transactional_id_expiration_ms else {
            return;
        };
        let cutoff_ms = ms(now_ms) - i64::try_from(expiration_ms).unwrap_or(i64::MAX);
        let expired: Vec<String> = self
            .transactions
            .iter()
            .filter(|(_, m)| {
                m.state.is_expiration_allowed()
                    && !m.pending_transition_in_progress()
                    && m.txn_last_update_timestamp_ms <= cutoff_ms
            })
            .map(|(id, _)| id.clone())
            .collect();
        for transactional_id in expired {
            let m = self
                .transactions
                .get_mut(&transactional_id)
                .expect("listed");
            let transit = m.prepare_dead();
            self.append(&transactional_id, transit, AfterAppend::Dead, out);
        }
    }
}
