//! The transaction coordinator of one `__transaction_state` partition: dispatch, the results of
//! its appends, the timers (timed-out transactions, expired transactional ids), replay, loading
//! and unloading.

use std::collections::BTreeMap;

use super::end_txn::EndWaiter;
use super::markers::Completion;
use super::metadata::{TransactionMetadata, TransactionState, TxnTransitMetadata};
use super::records::TxnRecord;
use super::{
    error_code, partition_for, AddPartitionsToTxnRequest, AddPartitionsToTxnResult,
    InitProducerIdResponse, ProducerIdSource, RequestId, TransactionCoordinatorConfig, TxnMarker,
    TxnRequest, TxnResponse, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

/// The identity of one append, so that the driver can report its outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppendId(pub u64);

/// A record to append to the coordinator's `__transaction_state` partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnAppend {
    pub id: AppendId,
    pub record: TxnRecord,
}

/// A transition that took effect (its record is committed), for the driver's `txn-state` trace:
/// the producer id and epoch are the ones after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnEvent {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub from: TransactionState,
    pub to: TransactionState,
}

/// What one input asks of the driver.
///
/// The driver appends `appends` to the partition, in order, and reports each committed
/// ([`TransactionCoordinator::append_committed`]) or failed
/// ([`TransactionCoordinator::append_failed`]); it writes `markers` and reports their outcomes
/// ([`TransactionCoordinator::marker_result`]); it sends `responses` at once: a response that
/// waits for a record comes out of the call that reports the record committed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnOutput {
    pub appends: Vec<TxnAppend>,
    pub markers: Vec<TxnMarker>,
    /// Each response with the id the driver gave its request.
    pub responses: Vec<(RequestId, TxnResponse)>,
    pub events: Vec<TxnEvent>,
}

impl TxnOutput {
    pub(super) fn respond(&mut self, id: RequestId, response: TxnResponse) {
        self.responses.push((id, response));
    }

    /// Appends `other`'s actions after this one's.
    pub fn extend(&mut self, other: TxnOutput) {
        self.appends.extend(other.appends);
        self.markers.extend(other.markers);
        self.responses.extend(other.responses);
        self.events.extend(other.events);
    }
}

/// What to do once a record is committed (or fails).
#[derive(Clone, Debug)]
pub(super) enum AfterAppend {
    InitProducerId(RequestId),
    AddPartitions(RequestId, AddPartitionsToTxnRequest),
    AddOffsets(RequestId),
    /// A PrepareCommit or PrepareAbort: answer, then write the markers.
    EndTxn {
        waiter: EndWaiter,
        committed: bool,
        epoch_fence: bool,
    },
    /// CompleteCommit or CompleteAbort: the transaction is over.
    Complete,
    /// A tombstone: the transactional id expired.
    Dead,
}

#[derive(Clone, Debug)]
pub(super) struct PendingAppend {
    pub transactional_id: String,
    pub transit: TxnTransitMetadata,
    pub then: AfterAppend,
}

/// Whether this broker coordinates the partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    NotCoordinator,
    Loading,
    Active,
}

/// The transaction coordinator's state machine for one `__transaction_state` partition.
#[derive(Clone, Debug)]
pub struct TransactionCoordinator {
    pub(super) config: TransactionCoordinatorConfig,
    /// The `__transaction_state` partition this shard serves.
    partition: i32,
    status: Status,
    /// The partition's leader epoch at loading, carried by the markers.
    pub(super) coordinator_epoch: i32,
    pub(super) transactions: BTreeMap<String, TransactionMetadata>,
    pending_appends: BTreeMap<AppendId, PendingAppend>,
    /// Never reset, so that a result for an append of an earlier load is recognized as stale.
    next_append_id: u64,
    /// Transactions whose markers are being written.
    pub(super) completing: BTreeMap<String, Completion>,
    pub(super) next_abort_scan_ms: Option<u64>,
    pub(super) next_expiration_scan_ms: Option<u64>,
}

impl TransactionCoordinator {
    /// The coordinator of `__transaction_state` partition `partition`, nothing loaded yet:
    /// requests are answered NOT_COORDINATOR until it is.
    pub fn new(config: TransactionCoordinatorConfig, partition: i32) -> Self {
        assert!(
            (0..config.transaction_state_num_partitions).contains(&partition),
            "partition {partition} of {}",
            config.transaction_state_num_partitions
        );
        TransactionCoordinator {
            config,
            partition,
            status: Status::NotCoordinator,
            coordinator_epoch: -1,
            transactions: BTreeMap::new(),
            pending_appends: BTreeMap::new(),
            next_append_id: 0,
            completing: BTreeMap::new(),
            next_abort_scan_ms: None,
            next_expiration_scan_ms: None,
        }
    }

    pub fn config(&self) -> &TransactionCoordinatorConfig {
        &self.config
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn coordinator_epoch(&self) -> i32 {
        self.coordinator_epoch
    }

    /// Whether the partition is loaded and served.
    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }

    pub fn transaction(&self, transactional_id: &str) -> Option<&TransactionMetadata> {
        self.transactions.get(transactional_id)
    }

    pub fn transactions(&self) -> &BTreeMap<String, TransactionMetadata> {
        &self.transactions
    }

    /// Loads the partition at leader epoch `coordinator_epoch`: `records` is its whole log,
    /// replayed in order; see [`TransactionCoordinator::complete_load`] for what follows.
    pub fn load<'a>(
        &mut self,
        now_ms: u64,
        coordinator_epoch: i32,
        records: impl IntoIterator<Item = &'a TxnRecord>,
    ) -> TxnOutput {
        let mut out = self.begin_load(coordinator_epoch);
        for record in records {
            self.replay(record);
        }
        out.extend(self.complete_load(now_ms));
        out
    }

    /// Starts loading at leader epoch `coordinator_epoch`: what was loaded before is unloaded
    /// (its waiting requests answered NOT_COORDINATOR); requests now get
    /// COORDINATOR_LOAD_IN_PROGRESS.
    pub fn begin_load(&mut self, coordinator_epoch: i32) -> TxnOutput {
        let out = self.unload();
        self.status = Status::Loading;
        self.coordinator_epoch = coordinator_epoch;
        out
    }

    /// Applies one record of the partition, as loading does (`TransactionLog.readTxnRecordValue`):
    /// a value replaces the transactional id's metadata, a tombstone removes it.
    pub fn replay(&mut self, record: &TxnRecord) {
        assert_eq!(self.status, Status::Loading, "replay outside loading");
        match &record.value {
            Some(value) => {
                let metadata = TransactionMetadata::from_log_value(&record.transactional_id, value);
                self.transactions
                    .insert(record.transactional_id.clone(), metadata);
            }
            None => {
                self.transactions.remove(&record.transactional_id);
            }
        }
    }

    /// The partition is loaded: transactions left in PrepareCommit or PrepareAbort have their
    /// markers written again (`loadTransactionsForTxnTopicPartition`); Ongoing ones stay open
    /// until they end or time out. The timers start.
    pub fn complete_load(&mut self, now_ms: u64) -> TxnOutput {
        assert_eq!(
            self.status,
            Status::Loading,
            "complete_load outside loading"
        );
        self.status = Status::Active;
        self.next_abort_scan_ms =
            Some(now_ms + self.config.abort_timed_out_transactions_interval_ms);
        if self.config.transactional_id_expiration_ms.is_some() {
            self.next_expiration_scan_ms =
                Some(now_ms + self.config.remove_expired_transactional_ids_interval_ms);
        }
        let mut out = TxnOutput::default();
        let preparing: Vec<(String, bool)> = self
            .transactions
            .iter()
            .filter_map(|(id, m)| match m.state {
                TransactionState::PrepareCommit => Some((id.clone(), true)),
                TransactionState::PrepareAbort => Some((id.clone(), false)),
                _ => None,
            })
            .collect();
        for (transactional_id, committed) in preparing {
            self.begin_completion(now_ms, &transactional_id, committed, &mut out);
        }
        out
    }

    /// Another broker coordinates the partition now (`removeTransactionsForTxnTopicPartition`):
    /// every request waiting for a record is answered NOT_COORDINATOR, so that its client finds
    /// the new coordinator; everything is forgotten, and markers still being written are no
    /// longer followed.
    pub fn unload(&mut self) -> TxnOutput {
        let mut out = TxnOutput::default();
        let pending = std::mem::take(&mut self.pending_appends);
        for p in pending.into_values() {
            answer_failed(p.then, error_code::NOT_COORDINATOR, &mut out);
        }
        self.transactions.clear();
        self.completing.clear();
        self.status = Status::NotCoordinator;
        self.next_abort_scan_ms = None;
        self.next_expiration_scan_ms = None;
        out
    }

    /// One request, tagged with the driver's `id`; `ids` hands out producer ids. Timers due by
    /// `now_ms` fire first, as they would have in Kafka before the request arrived.
    pub fn handle(
        &mut self,
        now_ms: u64,
        id: RequestId,
        request: TxnRequest,
        ids: &mut dyn ProducerIdSource,
    ) -> TxnOutput {
        let mut out = self.tick(now_ms);
        match request {
            TxnRequest::InitProducerId(r) => self.init_producer_id(now_ms, id, &r, ids, &mut out),
            TxnRequest::AddPartitionsToTxn(r) => self.add_partitions(now_ms, id, r, &mut out),
            TxnRequest::AddOffsetsToTxn(r) => self.add_offsets(now_ms, id, &r, &mut out),
            TxnRequest::EndTxn(r) => self.end_txn(now_ms, id, &r, ids, &mut out),
        }
        out
    }

    /// Whether this shard serves `transactional_id` now (`getTransactionState`'s errors).
    pub(super) fn check_coordinator(&self, transactional_id: &str) -> Result<(), i16> {
        match self.status {
            Status::NotCoordinator => Err(error_code::NOT_COORDINATOR),
            Status::Loading => Err(error_code::COORDINATOR_LOAD_IN_PROGRESS),
            Status::Active => {
                let n = self.config.transaction_state_num_partitions;
                if partition_for(transactional_id, n) == self.partition {
                    Ok(())
                } else {
                    Err(error_code::NOT_COORDINATOR)
                }
            }
        }
    }

    /// Writes a pending transition's record.
    pub(super) fn append(
        &mut self,
        transactional_id: &str,
        transit: TxnTransitMetadata,
        then: AfterAppend,
        out: &mut TxnOutput,
    ) {
        let id = AppendId(self.next_append_id);
        self.next_append_id += 1;
        let value = (transit.txn_state != TransactionState::Dead).then(|| transit.to_log_value());
        out.appends.push(TxnAppend {
            id,
            record: TxnRecord {
                transactional_id: transactional_id.to_owned(),
                value,
            },
        });
        let pending = PendingAppend {
            transactional_id: transactional_id.to_owned(),
            transit,
            then,
        };
        self.pending_appends.insert(id, pending);
    }

    /// The record of append `id` is committed: its transition takes effect, and what waited for
    /// it goes on (a response, the markers). A stale id (of an unloaded epoch) is ignored.
    pub fn append_committed(&mut self, now_ms: u64, id: AppendId) -> TxnOutput {
        let mut out = self.tick(now_ms);
        let Some(p) = self.pending_appends.remove(&id) else {
            return out;
        };
        let m = self
            .transactions
            .get_mut(&p.transactional_id)
            .expect("a pending append of a known transactional id");
        let from = m.state;
        let event = TxnEvent {
            transactional_id: p.transactional_id.clone(),
            producer_id: p.transit.producer_id,
            producer_epoch: p.transit.producer_epoch,
            from,
            to: p.transit.txn_state,
        };
        if p.transit.txn_state == TransactionState::Dead {
            assert_eq!(m.pending_state, Some(TransactionState::Dead));
            self.transactions.remove(&p.transactional_id);
            out.events.push(event);
            return out;
        }
        m.complete_transition(&p.transit);
        out.events.push(event);
        match p.then {
            AfterAppend::InitProducerId(r) => {
                let response = InitProducerIdResponse {
                    error_code: error_code::NONE,
                    producer_id: p.transit.producer_id,
                    producer_epoch: p.transit.producer_epoch,
                };
                out.respond(r, TxnResponse::InitProducerId(response));
            }
            AfterAppend::AddPartitions(r, request) => {
                let result = AddPartitionsToTxnResult::all(&request, error_code::NONE);
                out.respond(r, TxnResponse::AddPartitionsToTxn(result));
            }
            AfterAppend::AddOffsets(r) => {
                out.respond(r, TxnResponse::AddOffsetsToTxn(error_code::NONE));
            }
            AfterAppend::EndTxn {
                waiter, committed, ..
            } => {
                self.answer_prepared(&p.transactional_id, waiter, &mut out);
                self.begin_completion(now_ms, &p.transactional_id, committed, &mut out);
            }
            AfterAppend::Complete | AfterAppend::Dead => {}
        }
        out
    }

    /// The append `id` failed with a produce error: the transition is dropped and what waited
    /// for it gets the error, as Kafka maps it (`appendTransactionToLog`). A completion that met
    /// COORDINATOR_NOT_AVAILABLE is appended again.
    pub fn append_failed(&mut self, now_ms: u64, id: AppendId, error: i16) -> TxnOutput {
        let mut out = self.tick(now_ms);
        let Some(p) = self.pending_appends.remove(&id) else {
            return out;
        };
        let error = coordinator_error(error);
        let m = self
            .transactions
            .get_mut(&p.transactional_id)
            .expect("a pending append of a known transactional id");
        if matches!(p.then, AfterAppend::Complete) && error == error_code::COORDINATOR_NOT_AVAILABLE
        {
            self.append(&p.transactional_id, p.transit, p.then, &mut out);
            return out;
        }
        m.pending_state = None;
        if let AfterAppend::EndTxn {
            epoch_fence: true, ..
        } = p.then
        {
            // The bumped epoch was never returned: the next fence does not bump again.
            m.has_failed_epoch_fence = true;
        }
        answer_failed(p.then, error, &mut out);
        out
    }
}

/// A produce error as the coordinator answers it (`appendTransactionToLog`'s mapping).
fn coordinator_error(error: i16) -> i16 {
    use error_code::*;
    match error {
        UNKNOWN_TOPIC_OR_PARTITION
        | NOT_ENOUGH_REPLICAS
        | NOT_ENOUGH_REPLICAS_AFTER_APPEND
        | REQUEST_TIMED_OUT => COORDINATOR_NOT_AVAILABLE,
        NOT_LEADER_OR_FOLLOWER | KAFKA_STORAGE_ERROR => NOT_COORDINATOR,
        MESSAGE_TOO_LARGE | RECORD_LIST_TOO_LARGE => UNKNOWN_SERVER_ERROR,
        other => other,
    }
}

/// Answers what waited for a record that will not be committed.
fn answer_failed(then: AfterAppend, error: i16, out: &mut TxnOutput) {
    match then {
        AfterAppend::InitProducerId(r) => {
            out.respond(r, TxnResponse::InitProducerId(init_error(error)));
        }
        AfterAppend::AddPartitions(r, request) => {
            let result = AddPartitionsToTxnResult::all(&request, error);
            out.respond(r, TxnResponse::AddPartitionsToTxn(result));
        }
        AfterAppend::AddOffsets(r) => out.respond(r, TxnResponse::AddOffsetsToTxn(error)),
        AfterAppend::EndTxn { waiter, .. } => {
            waiter.answer(error, NO_PRODUCER_ID, NO_PRODUCER_EPOCH, out)
        }
        AfterAppend::Complete | AfterAppend::Dead => {}
    }
}

/// An InitProducerId error: no producer id, no epoch.
pub(super) fn init_error(error: i16) -> InitProducerIdResponse {
    InitProducerIdResponse {
        error_code: error,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
    }
}
