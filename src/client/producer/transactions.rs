//! The transactional producer: the rest of Kafka's `TransactionManager` (KIP-98), on top of
//! idempotence.
//!
//! - `init_transactions` finds the transaction coordinator of `transactional.id`
//!   (`FindCoordinator` with key type 1) and gets the producer id and epoch from it
//!   (`InitProducerId`), which fences every older instance with the same id.
//! - In a transaction, a partition is sent to only once the coordinator has added it
//!   (`AddPartitionsToTxn`, the client's v3). The sender does this before draining, and drains
//!   only added partitions.
//! - `send_offsets_to_transaction` adds the group's offsets partition (`AddOffsetsToTxn`) and
//!   commits the consumer's positions to the group coordinator inside the transaction
//!   (`TxnOffsetCommit`, KIP-447's generation and member id).
//! - `commit_transaction` flushes and ends the transaction (`EndTxn`). If a batch of the
//!   transaction failed, it refuses: the transaction must be aborted.
//!   `abort_transaction` fails what was never sent, waits for what is on the wire, and ends it.
//!   Under transaction version 2 (KIP-890) `EndTxn` answers a new epoch, and the producer
//!   writes the next transaction with it.
//! - `PRODUCER_FENCED` and `INVALID_PRODUCER_EPOCH` are fatal: a newer instance took over, and
//!   this one can only be closed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiKey, EndTxnRequest,
    FindCoordinatorRequest, GroupId, InitProducerIdRequest, RequestKind, ResponseKind, TopicName,
    TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;
use samsa_sim::history::OpType;
use samsa_sim::val;

use super::idempotence::ProducerIdAndEpoch;
use super::{KafkaProducer, Shared};
use crate::client::cluster::ClusterView;
use crate::protocol::versions::client_version;
use crate::scenario::TopicPartition;

/// The client's `AddPartitionsToTxn` version: v4 and up are for brokers (KIP-890).
const ADD_PARTITIONS_CLIENT_VERSION: i16 = 3;

/// Kafka's `TransactionManager` retries an `AddPartitionsToTxn` refused with
/// CONCURRENT_TRANSACTIONS (the previous transaction's markers are being written) after 20 ms,
/// not `retry.backoff.ms`: the wait is expected to be short.
pub(super) const ADD_PARTITIONS_RETRY_BACKOFF_MS: u64 = 20;

/// Kafka's `TransactionManager.State`, as far as the application sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnState {
    Uninitialized,
    Ready,
    InTransaction,
    /// A batch or a request of the transaction failed: only an abort can follow.
    AbortableError(String),
    /// Fenced, or an error the producer cannot recover from: only `close`.
    Fatal(String),
}

/// How a transactional call failed, as the Java client's exceptions sort it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnError {
    /// `ProducerFencedException` and other fatal errors: close the producer.
    Fatal(String),
    /// `KafkaException` with an abortable cause: abort the transaction.
    Abortable(String),
    /// `TimeoutException`: the outcome is unknown; the call may be retried.
    Timeout(String),
    /// `IllegalStateException`: the call makes no sense in this state.
    IllegalState(String),
}

impl std::fmt::Display for TxnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxnError::Fatal(m) => write!(f, "fatal: {m}"),
            TxnError::Abortable(m) => write!(f, "abortable: {m}"),
            TxnError::Timeout(m) => write!(f, "TimeoutException: {m}"),
            TxnError::IllegalState(m) => write!(f, "IllegalStateException: {m}"),
        }
    }
}

/// What `send_offsets_to_transaction` needs of the consumer (`ConsumerGroupMetadata`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// The transactional part of the producer's state.
#[derive(Debug)]
pub(super) struct TxnManager {
    pub transactional_id: String,
    pub timeout_ms: i32,
    pub state: TxnState,
    coordinator: Option<i32>,
    /// Partitions sent to in this transaction that the coordinator has not added yet.
    pending: BTreeSet<TopicPartition>,
    /// Partitions the coordinator has added to this transaction.
    added: BTreeSet<TopicPartition>,
    /// The coordinator knows of this transaction (a partition or the offsets were added): it
    /// must be ended with `EndTxn`. Otherwise it ends here (`transactionStarted`).
    started: bool,
}

impl TxnManager {
    pub fn new(transactional_id: String, timeout_ms: i32) -> Self {
        TxnManager {
            transactional_id,
            timeout_ms,
            state: TxnState::Uninitialized,
            coordinator: None,
            pending: BTreeSet::new(),
            added: BTreeSet::new(),
            started: false,
        }
    }

    /// `send` to `tp` in the transaction: the partition must be added before its batch goes.
    pub fn on_send(&mut self, tp: &TopicPartition) -> Result<(), String> {
        match &self.state {
            TxnState::InTransaction => {
                if !self.added.contains(tp) {
                    self.pending.insert(tp.clone());
                }
                Ok(())
            }
            TxnState::AbortableError(e) => Err(format!(
                "KafkaException: cannot send in a transaction that must abort ({e})"
            )),
            TxnState::Fatal(e) => Err(format!("KafkaException: the producer is fenced ({e})")),
            _ => Err("IllegalStateException: cannot send outside a transaction".into()),
        }
    }

    /// A batch of the transaction failed: it can no longer commit.
    pub fn on_batch_failed(&mut self, error: &str) {
        if self.state == TxnState::InTransaction {
            self.state = if is_fatal_text(error) {
                TxnState::Fatal(error.to_string())
            } else {
                TxnState::AbortableError(error.to_string())
            };
        }
    }
}

fn is_fatal_text(error: &str) -> bool {
    error.contains("ProducerFenced") || error.contains("InvalidProducerEpoch")
}

fn error_name(code: i16) -> String {
    ResponseError::try_from_code(code).map_or_else(|| format!("error {code}"), |e| format!("{e:?}"))
}

/// How a coordinator's error code is handled: retried (after finding the coordinator again, if
/// `rediscover`), fatal, or abortable.
enum Verdict {
    Retry { rediscover: bool },
    Fatal,
    Abortable,
}

fn verdict(code: i16) -> Verdict {
    match ResponseError::try_from_code(code) {
        Some(ResponseError::NotCoordinator | ResponseError::CoordinatorNotAvailable) => {
            Verdict::Retry { rediscover: true }
        }
        Some(
            ResponseError::CoordinatorLoadInProgress
            | ResponseError::ConcurrentTransactions
            | ResponseError::RequestTimedOut
            | ResponseError::UnknownTopicOrPartition,
        ) => Verdict::Retry { rediscover: false },
        Some(
            ResponseError::ProducerFenced
            | ResponseError::InvalidProducerEpoch
            | ResponseError::TransactionalIdAuthorizationFailed
            | ResponseError::InvalidProducerIdMapping
            | ResponseError::InvalidTxnState
            | ResponseError::UnsupportedVersion,
        ) => Verdict::Fatal,
        _ => Verdict::Abortable,
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

impl Shared {
    fn txn(&self) -> std::sync::MutexGuard<'_, TxnManager> {
        self.txn
            .as_ref()
            .expect("a transactional producer")
            .lock()
            .expect("txn")
    }

    /// The coordinator of `key` (`key_type` 0 group, 1 transaction), asked of each known broker
    /// in turn.
    async fn find_coordinator(&self, key_type: i8, key: &str) -> Result<i32, String> {
        let mut view = self.view.lock().await;
        if view.brokers().is_empty() {
            view.mark_stale();
            view.maybe_refresh(&[]).await;
        }
        let request = RequestKind::FindCoordinator(
            FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_coordinator_keys(vec![str_bytes(key)]),
        );
        let mut last = "no broker known".to_string();
        for broker in view.brokers() {
            match send(&mut view, self, broker, ApiKey::FindCoordinator, &request).await {
                Ok(ResponseKind::FindCoordinator(r)) => match r.coordinators.first() {
                    Some(c) if c.error_code == 0 => return Ok(c.node_id.0),
                    Some(c) => last = error_name(c.error_code),
                    None => last = "no coordinator in the answer".into(),
                },
                Ok(_) => last = "unexpected answer".into(),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Sends `request` to the transaction coordinator (found first if unknown).
    async fn to_txn_coordinator(
        &self,
        api: ApiKey,
        version: i16,
        request: &RequestKind,
    ) -> Result<ResponseKind, String> {
        let known = self.txn().coordinator;
        let coordinator = match known {
            Some(c) => c,
            None => {
                let id = self.txn().transactional_id.clone();
                let c = self.find_coordinator(1, &id).await?;
                self.txn().coordinator = Some(c);
                c
            }
        };
        let mut view = self.view.lock().await;
        let result = send_at(&mut view, self, coordinator, api, version, request).await;
        if result.is_err() {
            self.txn().coordinator = None;
        }
        result
    }

    /// Calls the transaction coordinator until it answers something other than a retriable
    /// error or `max.block.ms` has passed. `code` reads the error out of the answer.
    async fn txn_call(
        &self,
        api: ApiKey,
        version: i16,
        request: &RequestKind,
        code: impl Fn(&ResponseKind) -> Option<i16>,
    ) -> Result<ResponseKind, TxnError> {
        let deadline = self.ctx.clock.elapsed_ms() + self.config.max_block.as_millis() as u64;
        let mut last: String;
        loop {
            match self.to_txn_coordinator(api, version, request).await {
                Ok(response) => match code(&response) {
                    Some(0) => return Ok(response),
                    Some(c) => {
                        last = error_name(c);
                        match verdict(c) {
                            Verdict::Retry { rediscover } => {
                                if rediscover {
                                    self.txn().coordinator = None;
                                }
                            }
                            Verdict::Fatal => return Err(TxnError::Fatal(last)),
                            Verdict::Abortable => return Err(TxnError::Abortable(last)),
                        }
                    }
                    None => last = format!("unexpected answer to {api:?}"),
                },
                Err(e) => last = e,
            }
            if self.ctx.clock.elapsed_ms() >= deadline {
                return Err(TxnError::Timeout(format!("{api:?}: {last}")));
            }
            tokio::time::sleep(Duration::from_millis(self.config.retry_backoff_ms)).await;
        }
    }

    fn producer(&self) -> Option<ProducerIdAndEpoch> {
        self.idempotence.lock().expect("idempotence").producer()
    }

    /// The error a transactional call fails with in a state that refuses it.
    fn refuse_unless(&self, allowed: impl Fn(&TxnState) -> bool) -> Result<(), TxnError> {
        let state = self.txn().state.clone();
        match state {
            TxnState::Fatal(e) => Err(TxnError::Fatal(e)),
            s if allowed(&s) => Ok(()),
            TxnState::AbortableError(e) => Err(TxnError::Abortable(e)),
            s => Err(TxnError::IllegalState(format!(
                "not allowed in state {s:?}"
            ))),
        }
    }

    fn fail(&self, error: TxnError) -> TxnError {
        let mut txn = self.txn();
        match &error {
            TxnError::Fatal(e) => txn.state = TxnState::Fatal(e.clone()),
            TxnError::Abortable(e) if txn.state == TxnState::InTransaction => {
                txn.state = TxnState::AbortableError(e.clone())
            }
            _ => {}
        }
        error
    }
}

async fn send(
    view: &mut ClusterView,
    shared: &Shared,
    broker: i32,
    api: ApiKey,
    request: &RequestKind,
) -> Result<ResponseKind, String> {
    send_at(view, shared, broker, api, client_version(api), request).await
}

async fn send_at(
    view: &mut ClusterView,
    shared: &Shared,
    broker: i32,
    api: ApiKey,
    version: i16,
    request: &RequestKind,
) -> Result<ResponseKind, String> {
    let conn = view.connection(broker).await.map_err(|e| {
        view.invalidate(broker);
        format!("NetworkException: {e}")
    })?;
    conn.send(api, version, request, shared.config.request_timeout)
        .await
        .map_err(|e| {
            conn.close();
            view.invalidate(broker);
            format!("NetworkException: {e}")
        })
}

/// The sender's part: adds the partitions sent to since the last call to the transaction
/// (`AddPartitionsToTxn`), and lets the accumulator drain them. Returns false if some are
/// still waiting (try again after the backoff).
pub(super) async fn add_pending_partitions(shared: &Shared) -> bool {
    let (pending, id) = {
        let txn = shared.txn();
        if txn.pending.is_empty() || txn.state != TxnState::InTransaction {
            return true;
        }
        (txn.pending.clone(), txn.transactional_id.clone())
    };
    let Some(producer) = shared.producer() else {
        return false;
    };
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in &pending {
        topics
            .entry(tp.topic.as_str())
            .or_default()
            .push(tp.partition as i32);
    }
    let request = RequestKind::AddPartitionsToTxn(
        AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(str_bytes(&id)))
            .with_v3_and_below_producer_id(producer.producer_id.into())
            .with_v3_and_below_producer_epoch(producer.epoch)
            .with_v3_and_below_topics(
                topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        AddPartitionsToTxnTopic::default()
                            .with_name(TopicName(str_bytes(topic)))
                            .with_partitions(partitions)
                    })
                    .collect(),
            ),
    );
    let answer = shared
        .to_txn_coordinator(
            ApiKey::AddPartitionsToTxn,
            ADD_PARTITIONS_CLIENT_VERSION,
            &request,
        )
        .await;
    let Ok(ResponseKind::AddPartitionsToTxn(r)) = answer else {
        return false;
    };
    let codes: Vec<i16> = r
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect();
    let worst = codes
        .iter()
        .copied()
        .find(|&c| c != 0 && c != ResponseError::OperationNotAttempted.code());
    match worst.map(verdict) {
        None if codes.is_empty() => false,
        None => {
            let mut txn = shared.txn();
            let mut idempotence = shared.idempotence.lock().expect("idempotence");
            for tp in pending {
                txn.pending.remove(&tp);
                idempotence.allow(&tp);
                txn.added.insert(tp);
            }
            txn.started = true;
            true
        }
        Some(Verdict::Retry { rediscover }) => {
            if rediscover {
                shared.txn().coordinator = None;
            }
            false
        }
        Some(Verdict::Fatal) => {
            shared.fail(TxnError::Fatal(error_name(worst.unwrap_or(-1))));
            fail_queued(
                shared,
                "ProducerFencedException: fenced by a newer instance",
            );
            false
        }
        Some(Verdict::Abortable) => {
            shared.fail(TxnError::Abortable(error_name(worst.unwrap_or(-1))));
            fail_queued(
                shared,
                "KafkaException: could not add the partition to the transaction",
            );
            false
        }
    }
}

/// Fails every batch still queued (never to be sent in this transaction).
fn fail_queued(shared: &Shared, error: &str) {
    let batches = shared.accumulator.lock().expect("accumulator").take_all();
    for batch in batches {
        super::sender::finish(shared, batch, Err(super::error(error, false)));
    }
}

impl KafkaProducer {
    /// `initTransactions`: the producer id and epoch for `transactional.id`, fencing older
    /// instances; the coordinator aborts or completes what they left open first.
    pub async fn init_transactions(&self) -> Result<(), TxnError> {
        let shared = &self.shared;
        shared.refuse_unless(|s| *s == TxnState::Uninitialized)?;
        let (id, timeout_ms) = {
            let txn = shared.txn();
            (txn.transactional_id.clone(), txn.timeout_ms)
        };
        let producer = self.init_producer_id(&id, timeout_ms, None).await?;
        shared.txn().state = TxnState::Ready;
        self.use_producer(producer, false);
        Ok(())
    }

    async fn init_producer_id(
        &self,
        id: &str,
        timeout_ms: i32,
        current: Option<ProducerIdAndEpoch>,
    ) -> Result<ProducerIdAndEpoch, TxnError> {
        let shared = &self.shared;
        let request = RequestKind::InitProducerId(
            InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(str_bytes(id))))
                .with_transaction_timeout_ms(timeout_ms)
                .with_producer_id(current.map_or(-1, |p| p.producer_id).into())
                .with_producer_epoch(current.map_or(-1, |p| p.epoch)),
        );
        let version = client_version(ApiKey::InitProducerId);
        let response = shared
            .txn_call(ApiKey::InitProducerId, version, &request, |r| match r {
                ResponseKind::InitProducerId(r) => Some(r.error_code),
                _ => None,
            })
            .await
            .map_err(|e| shared.fail(e))?;
        let ResponseKind::InitProducerId(r) = response else {
            unreachable!("txn_call checked the answer")
        };
        Ok(ProducerIdAndEpoch {
            producer_id: r.producer_id.0,
            epoch: r.producer_epoch,
        })
    }

    /// Writes with `producer` from now on (sequences from 0), and says so in the history.
    fn use_producer(&self, producer: ProducerIdAndEpoch, bump: bool) {
        let shared = &self.shared;
        shared
            .idempotence
            .lock()
            .expect("idempotence")
            .set_producer(producer);
        let id = shared.txn().transactional_id.clone();
        let mut value = val!({
            "producer_id": producer.producer_id,
            "epoch": producer.epoch as i64,
            "transactional_id": id.as_str(),
        });
        if bump {
            value = val!({
                "producer_id": producer.producer_id,
                "epoch": producer.epoch as i64,
                "transactional_id": id.as_str(),
                "bump": true,
            });
        }
        shared
            .ctx
            .recorder
            .op_val(&shared.ctx.id, OpType::Ok, "init-producer-id", value);
    }

    /// `beginTransaction`: local only; the coordinator hears of the transaction with its first
    /// partition.
    pub fn begin_transaction(&self) -> Result<(), TxnError> {
        let shared = &self.shared;
        shared.refuse_unless(|s| *s == TxnState::Ready)?;
        let mut txn = shared.txn();
        txn.state = TxnState::InTransaction;
        txn.added.clear();
        txn.pending.clear();
        txn.started = false;
        drop(txn);
        shared
            .idempotence
            .lock()
            .expect("idempotence")
            .clear_allowed();
        Ok(())
    }

    /// The producer id and epoch the transaction writes with.
    pub fn producer_id_and_epoch(&self) -> Option<ProducerIdAndEpoch> {
        self.shared.producer()
    }

    /// `sendOffsetsToTransaction`: `offsets` (the next offset to read, per partition) are
    /// committed for the group if and only if the transaction commits.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &BTreeMap<TopicPartition, i64>,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), TxnError> {
        let shared = &self.shared;
        shared.refuse_unless(|s| *s == TxnState::InTransaction)?;
        let producer = shared
            .producer()
            .ok_or_else(|| TxnError::IllegalState("no producer id".into()))?;
        let id = shared.txn().transactional_id.clone();
        let add = RequestKind::AddOffsetsToTxn(
            AddOffsetsToTxnRequest::default()
                .with_transactional_id(TransactionalId(str_bytes(&id)))
                .with_producer_id(producer.producer_id.into())
                .with_producer_epoch(producer.epoch)
                .with_group_id(GroupId(str_bytes(&group.group_id))),
        );
        let version = client_version(ApiKey::AddOffsetsToTxn);
        shared
            .txn_call(ApiKey::AddOffsetsToTxn, version, &add, |r| match r {
                ResponseKind::AddOffsetsToTxn(r) => Some(r.error_code),
                _ => None,
            })
            .await
            .map_err(|e| shared.fail(e))?;
        shared.txn().started = true;
        self.txn_offset_commit(&id, producer, offsets, group)
            .await
            .map_err(|e| shared.fail(e))
    }

    async fn txn_offset_commit(
        &self,
        id: &str,
        producer: ProducerIdAndEpoch,
        offsets: &BTreeMap<TopicPartition, i64>,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), TxnError> {
        let shared = &self.shared;
        let mut topics: BTreeMap<&str, Vec<TxnOffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, &offset) in offsets {
            topics.entry(tp.topic.as_str()).or_default().push(
                TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition as i32)
                    .with_committed_offset(offset)
                    .with_committed_leader_epoch(-1),
            );
        }
        let request = RequestKind::TxnOffsetCommit(
            TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(str_bytes(id)))
                .with_group_id(GroupId(str_bytes(&group.group_id)))
                .with_producer_id(producer.producer_id.into())
                .with_producer_epoch(producer.epoch)
                .with_generation_id(group.generation_id)
                .with_member_id(str_bytes(&group.member_id))
                .with_group_instance_id(group.group_instance_id.as_deref().map(str_bytes))
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(name, partitions)| {
                            TxnOffsetCommitRequestTopic::default()
                                .with_name(TopicName(str_bytes(name)))
                                .with_partitions(partitions)
                        })
                        .collect(),
                ),
        );
        let deadline = shared.ctx.clock.elapsed_ms() + shared.config.max_block.as_millis() as u64;
        let mut last: String;
        loop {
            let answer = match shared.find_coordinator(0, &group.group_id).await {
                Ok(coordinator) => {
                    let mut view = shared.view.lock().await;
                    send(
                        &mut view,
                        shared,
                        coordinator,
                        ApiKey::TxnOffsetCommit,
                        &request,
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match answer {
                Ok(ResponseKind::TxnOffsetCommit(r)) => {
                    let code = r
                        .topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                        .find(|&c| c != 0)
                        .unwrap_or(0);
                    if code == 0 {
                        return Ok(());
                    }
                    last = error_name(code);
                    match ResponseError::try_from_code(code) {
                        Some(
                            ResponseError::NotCoordinator
                            | ResponseError::CoordinatorNotAvailable
                            | ResponseError::CoordinatorLoadInProgress
                            | ResponseError::RequestTimedOut
                            | ResponseError::UnknownTopicOrPartition
                            | ResponseError::ConcurrentTransactions,
                        ) => {}
                        Some(
                            ResponseError::ProducerFenced | ResponseError::InvalidProducerEpoch,
                        ) => return Err(TxnError::Fatal(last)),
                        // A rebalance took the partitions away (KIP-447): this transaction's
                        // offsets would overwrite the new owner's.
                        _ => return Err(TxnError::Abortable(last)),
                    }
                }
                Ok(_) => last = "unexpected answer to TxnOffsetCommit".into(),
                Err(e) => last = e,
            }
            if shared.ctx.clock.elapsed_ms() >= deadline {
                return Err(TxnError::Timeout(format!("TxnOffsetCommit: {last}")));
            }
            tokio::time::sleep(Duration::from_millis(shared.config.retry_backoff_ms)).await;
        }
    }

    /// `commitTransaction`: flushes, then commits. A batch that failed makes it abortable.
    pub async fn commit_transaction(&self) -> Result<(), TxnError> {
        self.shared
            .refuse_unless(|s| *s == TxnState::InTransaction)?;
        self.flush().await;
        self.shared
            .refuse_unless(|s| *s == TxnState::InTransaction)?;
        self.end_transaction(true).await
    }

    /// `abortTransaction`: what was never sent fails, what is on the wire completes, and the
    /// coordinator writes the abort markers.
    pub async fn abort_transaction(&self) -> Result<(), TxnError> {
        let shared = &self.shared;
        shared.refuse_unless(|s| {
            matches!(s, TxnState::InTransaction | TxnState::AbortableError(_))
        })?;
        fail_queued(shared, "TransactionAbortedException");
        self.flush().await;
        self.end_transaction(false).await
    }

    async fn end_transaction(&self, commit: bool) -> Result<(), TxnError> {
        let shared = &self.shared;
        let producer = shared
            .producer()
            .ok_or_else(|| TxnError::IllegalState("no producer id".into()))?;
        let (id, timeout_ms, started) = {
            let txn = shared.txn();
            (txn.transactional_id.clone(), txn.timeout_ms, txn.started)
        };
        if !started {
            // Nothing of it reached the coordinator: it ends here, as Kafka's client ends an
            // empty transaction without EndTxn.
            let mut txn = shared.txn();
            txn.state = TxnState::Ready;
            txn.pending.clear();
            return Ok(());
        }
        let request = RequestKind::EndTxn(
            EndTxnRequest::default()
                .with_transactional_id(TransactionalId(str_bytes(&id)))
                .with_producer_id(producer.producer_id.into())
                .with_producer_epoch(producer.epoch)
                .with_committed(commit),
        );
        let version = client_version(ApiKey::EndTxn);
        let response = shared
            .txn_call(ApiKey::EndTxn, version, &request, |r| match r {
                ResponseKind::EndTxn(r) => Some(r.error_code),
                _ => None,
            })
            .await
            .map_err(|e| shared.fail(e))?;
        {
            let mut txn = shared.txn();
            txn.state = TxnState::Ready;
            txn.added.clear();
            txn.pending.clear();
            txn.started = false;
        }
        let ResponseKind::EndTxn(r) = response else {
            unreachable!("txn_call checked the answer")
        };
        // Transaction version 2 (KIP-890): the coordinator bumped the epoch.
        let next = ProducerIdAndEpoch {
            producer_id: r.producer_id.0,
            epoch: r.producer_epoch,
        };
        if next.producer_id >= 0 && next.epoch >= 0 && next != producer {
            self.use_producer(next, true);
        } else if shared
            .idempotence
            .lock()
            .expect("idempotence")
            .bump_needed()
        {
            // A sequence failed in the aborted transaction (KIP-360): bump through the
            // coordinator, quoting the current id and epoch.
            let bumped = self
                .init_producer_id(&id, timeout_ms, Some(producer))
                .await?;
            self.use_producer(bumped, true);
        }
        Ok(())
    }
}
