//! The broker's side of the transaction coordinator (Kafka's `TransactionCoordinator` with its
//! `TransactionStateManager` and `TransactionMarkerChannelManager`): one shard of
//! [`TransactionCoordinator`] per `__transaction_state` partition this broker leads.
//!
//! - Becoming the leader of a partition (seen in a published image) makes a shard that loads
//!   the partition's whole log. Until then, requests for its transactional ids are answered
//!   `COORDINATOR_LOAD_IN_PROGRESS`. Losing the leadership, or the epoch changing, drops the
//!   shard; what waits is answered `NOT_COORDINATOR`.
//! - A request runs under the shard's lock. The records it returns are appended as leader with
//!   `acks=all`'s rules. The shard's task reports each append committed once the high watermark
//!   passes it. The coordinator answers a request only when its record is committed; a failed
//!   append is reported as such.
//! - Markers go to the leaders of their partitions as `WriteTxnMarkers`, grouped by leader. A
//!   partition whose leader is unknown, or whose write failed, is reported failed; the
//!   coordinator hands the marker out again, and it is resent after a backoff.
//! - The task ticks the coordinator's timers: transaction timeouts, id expiration.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{RequestKind, ResponseKind};
use samsa_sim::val;
use tokio::sync::oneshot;

use super::partition::AppendError;
use super::{Broker, PartitionHandle, Signal};
use crate::coordinator::txn::{
    self, wire, AppendId, MarkerOutcome, MarkerResult, RequestId, TransactionCoordinator,
    TransactionCoordinatorConfig, TxnMarker, TxnOutput, TxnRecord, TxnRequest, TxnResponse,
};
use crate::protocol::Connection;
use crate::storage::batch::{self, BatchSpec, Record};

/// The internal topic the transaction coordinators keep their state in.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

const NOT_COORDINATOR: i16 = 16;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const REQUEST_TIMED_OUT: i16 = 7;
/// `TransactionMarkerChannelManager`'s retry backoff, near enough (`retry.backoff.ms`).
const MARKER_RETRY_BACKOFF_MS: u64 = 100;

/// The transaction coordinator's broker configs.
#[derive(Clone, Debug)]
pub struct TxnConfig {
    pub coordinator: TransactionCoordinatorConfig,
    /// `transaction.state.log.replication.factor` (3).
    pub replication_factor: i16,
    /// `transaction.state.log.min.isr` (2).
    pub min_isr: i32,
    /// `transaction.state.log.segment.bytes` (100 MiB).
    pub segment_bytes: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            coordinator: TransactionCoordinatorConfig::default(),
            replication_factor: 3,
            min_isr: 2,
            segment_bytes: 104_857_600,
        }
    }
}

/// The shards this broker runs, by `__transaction_state` partition.
#[derive(Default)]
pub(super) struct TxnCoordinators {
    shards: Mutex<BTreeMap<i32, Arc<Shard>>>,
    next_request: std::sync::atomic::AtomicU64,
}

struct Shard {
    partition: i32,
    epoch: i32,
    handle: PartitionHandle,
    state: tokio::sync::Mutex<ShardState>,
    changed: Signal,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

#[derive(Default)]
struct ShardState {
    /// `None` while loading.
    coordinator: Option<TransactionCoordinator>,
    closed: bool,
    /// Appends waiting for the high watermark: (the offset it must pass, the append).
    appended: VecDeque<(i64, AppendId)>,
    waiters: BTreeMap<RequestId, oneshot::Sender<TxnResponse>>,
    /// A producer id fetched ahead for `InitProducerId` (the broker's ids come from the
    /// controller, asynchronously; the coordinator takes them synchronously).
    spare_producer_id: Option<i64>,
}

impl Broker {
    /// Serves one transaction coordinator request: routed to the shard of its transactional
    /// id, answered once what it wrote is committed.
    pub(super) async fn txn_call(self: &Arc<Self>, request: TxnRequest) -> TxnResponse {
        let id = transactional_id(&request).to_string();
        let partitions = self.ctx.txn.coordinator.transaction_state_num_partitions;
        let partition = txn::partition_for(&id, partitions);
        let shard = self
            .txn_coordinators
            .shards
            .lock()
            .expect("txn coordinators lock")
            .get(&partition)
            .cloned();
        let Some(shard) = shard else {
            return request_error(&request, NOT_COORDINATOR);
        };
        let needs_id = matches!(request, TxnRequest::InitProducerId(_));
        if needs_id && shard.state.lock().await.spare_producer_id.is_none() {
            if let Ok(id) = self.next_producer_id().await {
                let mut state = shard.state.lock().await;
                if state.spare_producer_id.is_none() {
                    state.spare_producer_id = Some(id);
                }
            }
        }
        let (reply, answer) = oneshot::channel();
        {
            let mut state = shard.state.lock().await;
            if state.closed {
                return request_error(&request, NOT_COORDINATOR);
            }
            if state.coordinator.is_none() {
                return request_error(&request, COORDINATOR_LOAD_IN_PROGRESS);
            }
            let id = RequestId(
                self.txn_coordinators
                    .next_request
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            );
            state.waiters.insert(id, reply);
            let now = self.ctx.clock.elapsed_ms();
            let ShardState {
                coordinator,
                spare_producer_id,
                ..
            } = &mut *state;
            let coordinator = coordinator.as_mut().expect("loaded");
            let mut ids = txn::SpareProducerId(spare_producer_id);
            let out = coordinator.handle(now, id, request.clone(), &mut ids);
            self.apply_txn_output(&shard, &mut state, out, false).await;
        }
        shard.changed.wake();
        match answer.await {
            Ok(response) => response,
            Err(_) => request_error(&request, NOT_COORDINATOR),
        }
    }

    /// Performs `out`: appends its records, sends its responses, sends its markers (after the
    /// backoff when they are `retries`), traces its transitions. An append that fails is
    /// reported back, and so on until nothing is left.
    async fn apply_txn_output(
        self: &Arc<Self>,
        shard: &Arc<Shard>,
        state: &mut ShardState,
        out: TxnOutput,
        retries: bool,
    ) {
        let mut pending = VecDeque::from([out]);
        while let Some(out) = pending.pop_front() {
            let TxnOutput {
                appends,
                markers,
                responses,
                events,
            } = out;
            for event in events {
                self.ctx.recorder.event_val(
                    &self.ctx.name,
                    "txn-state",
                    val!({
                        "transactional_id": event.transactional_id.as_str(),
                        "pid": event.producer_id,
                        "epoch": event.producer_epoch as i64,
                        "from": format!("{:?}", event.from),
                        "to": format!("{:?}", event.to),
                    }),
                );
            }
            for (id, response) in responses {
                if let Some(waiter) = state.waiters.remove(&id) {
                    let _ = waiter.send(response);
                }
            }
            for append in appends {
                match self.append_txn_record(shard, &append.record).await {
                    Ok(last_offset) => state.appended.push_back((last_offset + 1, append.id)),
                    Err(code) => {
                        let now = self.ctx.clock.elapsed_ms();
                        if let Some(c) = state.coordinator.as_mut() {
                            pending.push_back(c.append_failed(now, append.id, code));
                        }
                    }
                }
            }
            for marker in markers {
                spawn_marker(self.clone(), shard.clone(), marker, retries);
            }
        }
    }

    async fn append_txn_record(&self, shard: &Shard, record: &TxnRecord) -> Result<i64, i16> {
        let mut partition = shard.handle.lock().await;
        if partition.leader_epoch() != shard.epoch {
            return Err(NOT_COORDINATOR);
        }
        let mut bytes = encode(record, self.ctx.clock.now_ms()).to_vec();
        match partition.append_as_leader(&mut bytes, -1, "").await {
            Ok(info) => Ok(info.last_offset),
            Err(AppendError::NotLeader) => Err(NOT_COORDINATOR),
            Err(AppendError::NotEnoughReplicas) => Err(19),
            Err(_) => Err(kafka_protocol::error::ResponseError::KafkaStorageError.code()),
        }
    }

    /// Reports the appends the high watermark `hw` has passed.
    async fn txn_committed(self: &Arc<Self>, shard: &Arc<Shard>, state: &mut ShardState, hw: i64) {
        while state.appended.front().is_some_and(|(end, _)| *end <= hw) {
            let (_, id) = state.appended.pop_front().expect("front");
            let now = self.ctx.clock.elapsed_ms();
            let Some(c) = state.coordinator.as_mut() else {
                return;
            };
            let out = c.append_committed(now, id);
            self.apply_txn_output(shard, state, out, false).await;
        }
    }

    async fn close_txn_shard(&self, shard: Arc<Shard>) {
        if let Some(task) = shard.task.lock().expect("task lock").take() {
            task.abort();
        }
        let mut state = shard.state.lock().await;
        state.closed = true;
        if let Some(mut coordinator) = state.coordinator.take() {
            let out = coordinator.unload();
            for (id, response) in out.responses {
                if let Some(waiter) = state.waiters.remove(&id) {
                    let _ = waiter.send(response);
                }
            }
        }
        state.waiters.clear();
        state.appended.clear();
        self.event(
            "txn-coordinator-unloaded",
            serde_json::json!({ "partition": shard.partition, "epoch": shard.epoch }),
        );
    }
}

/// Makes and drops shards as a newly published image says who leads `__transaction_state`.
pub(super) fn on_image(broker: &Arc<Broker>, view: &crate::metadata::MetadataImage) {
    let me = broker.ctx.id;
    let mut leading: BTreeMap<i32, (i32, PartitionHandle)> = BTreeMap::new();
    if let Some(partitions) = view.topics.get(TRANSACTION_STATE_TOPIC) {
        for (index, meta) in partitions.iter().enumerate() {
            let tp = crate::scenario::TopicPartition {
                topic: TRANSACTION_STATE_TOPIC.to_string(),
                partition: index as u32,
            };
            if meta.leader == me {
                if let Some(handle) = broker.partition(&tp) {
                    leading.insert(index as i32, (meta.leader_epoch, handle));
                }
            }
        }
    }
    let mut shards = broker
        .txn_coordinators
        .shards
        .lock()
        .expect("txn coordinators lock");
    let stale: Vec<i32> = shards
        .iter()
        .filter(|(p, shard)| {
            leading
                .get(p)
                .is_none_or(|(epoch, _)| *epoch != shard.epoch)
        })
        .map(|(p, _)| *p)
        .collect();
    for p in stale {
        let shard = shards.remove(&p).expect("listed");
        let broker = broker.clone();
        tokio::spawn(async move { broker.close_txn_shard(shard).await });
    }
    for (p, (epoch, handle)) in leading {
        if shards.contains_key(&p) {
            continue;
        }
        let shard = Arc::new(Shard {
            partition: p,
            epoch,
            handle,
            state: tokio::sync::Mutex::new(ShardState::default()),
            changed: Signal::default(),
            task: Mutex::new(None),
        });
        shards.insert(p, shard.clone());
        spawn_load(broker.clone(), shard.clone());
        let task = tokio::spawn(run_shard(broker.clone(), shard.clone()));
        *shard.task.lock().expect("task lock") = Some(task.abort_handle());
    }
}

/// Loads the shard's partition into a new coordinator, unless the shard is gone meanwhile.
fn spawn_load(broker: Arc<Broker>, shard: Arc<Shard>) {
    tokio::spawn(async move {
        let (records, end) = {
            let partition = shard.handle.lock().await;
            if !partition.is_leader() || partition.leader_epoch() != shard.epoch {
                return;
            }
            let read = partition.log().read_all_records().await;
            (read, partition.log_end_offset())
        };
        let records = match records {
            Ok(records) => records,
            Err(e) => {
                broker.event(
                    "txn-coordinator-load-failed",
                    serde_json::json!({ "partition": shard.partition, "error": e.to_string() }),
                );
                return;
            }
        };
        let decoded: Vec<TxnRecord> = records
            .iter()
            .filter_map(|r| TxnRecord::decode(r.key.as_deref()?, r.value.as_deref()).ok())
            .collect();
        let mut state = shard.state.lock().await;
        if state.closed {
            return;
        }
        let mut coordinator =
            TransactionCoordinator::new(broker.ctx.txn.coordinator.clone(), shard.partition);
        let now = broker.ctx.clock.elapsed_ms();
        let out = coordinator.load(now, shard.epoch, decoded.iter());
        broker.event(
            "txn-coordinator-loaded",
            serde_json::json!({
                "partition": shard.partition,
                "epoch": shard.epoch,
                "records": decoded.len(),
                "log_end": end,
            }),
        );
        state.coordinator = Some(coordinator);
        broker
            .apply_txn_output(&shard, &mut state, out, false)
            .await;
        drop(state);
        shard.changed.wake();
    });
}

/// The shard's clock: reports committed appends, ticks the timers when due.
async fn run_shard(broker: Arc<Broker>, shard: Arc<Shard>) {
    loop {
        let mut listeners = Vec::with_capacity(2);
        let hw = {
            let partition = shard.handle.lock().await;
            listeners.push(partition.listen());
            partition.high_watermark()
        };
        listeners.push(shard.changed.listen_owned());
        let deadline = {
            let mut state = shard.state.lock().await;
            if state.closed {
                return;
            }
            broker.txn_committed(&shard, &mut state, hw).await;
            let now = broker.ctx.clock.elapsed_ms();
            let next = state
                .coordinator
                .as_ref()
                .and_then(TransactionCoordinator::next_deadline_ms);
            if next.is_some_and(|d| d <= now) {
                let out = state.coordinator.as_mut().expect("loaded").tick(now);
                broker
                    .apply_txn_output(&shard, &mut state, out, false)
                    .await;
                continue;
            }
            next
        };
        let sleep = match deadline {
            Some(d) => Duration::from_millis(d.saturating_sub(broker.ctx.clock.elapsed_ms())),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            biased;
            _ = super::any_woken(&mut listeners) => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

/// Sends one marker to the leaders of its partitions (a retry after the backoff) and reports
/// every partition's outcome to the shard. What the coordinator hands out in answer to those
/// outcomes are retries.
fn spawn_marker(broker: Arc<Broker>, shard: Arc<Shard>, marker: TxnMarker, retry: bool) {
    tokio::spawn(async move {
        if retry {
            tokio::time::sleep(Duration::from_millis(MARKER_RETRY_BACKOFF_MS)).await;
        }
        let results = broker.write_marker(&marker).await;
        let mut state = shard.state.lock().await;
        if state.closed {
            return;
        }
        for result in results {
            let now = broker.ctx.clock.elapsed_ms();
            let Some(c) = state.coordinator.as_mut() else {
                return;
            };
            let out = c.marker_result(now, &result);
            broker.apply_txn_output(&shard, &mut state, out, true).await;
        }
    });
}

impl Broker {
    /// Writes `marker` on each of its partitions through their leaders (`WriteTxnMarkers`,
    /// grouped by leader), and says what became of each.
    async fn write_marker(self: &Arc<Self>, marker: &TxnMarker) -> Vec<MarkerResult> {
        let image = self.metadata();
        let mut by_leader: BTreeMap<i32, Vec<txn::TopicPartition>> = BTreeMap::new();
        let mut results = Vec::new();
        for tp in &marker.partitions {
            let Some(partitions) = image.topics.get(&tp.topic) else {
                results.push(MarkerResult::of(
                    marker,
                    tp,
                    MarkerOutcome::PartitionDeleted,
                ));
                continue;
            };
            match partitions.get(tp.partition as usize).map(|p| p.leader) {
                Some(leader) if leader >= 0 => {
                    by_leader.entry(leader).or_default().push(tp.clone())
                }
                Some(_) => results.push(MarkerResult::of(
                    marker,
                    tp,
                    MarkerOutcome::Failed(NOT_LEADER_OR_FOLLOWER),
                )),
                None => results.push(MarkerResult::of(
                    marker,
                    tp,
                    MarkerOutcome::PartitionDeleted,
                )),
            }
        }
        for (leader, partitions) in by_leader {
            let one = TxnMarker {
                partitions: partitions.clone(),
                ..marker.clone()
            };
            let request = wire::write_txn_markers_request(std::slice::from_ref(&one));
            let answer = if leader == self.ctx.id {
                Some(self.write_txn_markers(request).await)
            } else {
                match image.brokers.get(&leader) {
                    Some(&addr) => self.send_markers(addr, request).await,
                    None => None,
                }
            };
            match answer {
                Some(response) => {
                    results.extend(wire::marker_results(std::slice::from_ref(&one), &response))
                }
                None => results.extend(partitions.iter().map(|tp| {
                    MarkerResult::of(&one, tp, MarkerOutcome::Failed(REQUEST_TIMED_OUT))
                })),
            }
        }
        results
    }

    async fn send_markers(
        &self,
        addr: std::net::SocketAddr,
        request: kafka_protocol::messages::WriteTxnMarkersRequest,
    ) -> Option<kafka_protocol::messages::WriteTxnMarkersResponse> {
        use kafka_protocol::messages::ApiKey;
        let conn = Connection::connect_with(addr, &self.ctx.name, self.ctx.delays.clone())
            .await
            .ok()?;
        let version = crate::protocol::versions::client_version(ApiKey::WriteTxnMarkers);
        let sent = conn
            .send(
                ApiKey::WriteTxnMarkers,
                version,
                &RequestKind::WriteTxnMarkers(request),
                Duration::from_millis(self.ctx.replication.socket_timeout_ms),
            )
            .await;
        conn.close();
        match sent {
            Ok(ResponseKind::WriteTxnMarkers(r)) => Some(r),
            _ => None,
        }
    }
}

/// One record of the coordinator, as one batch.
fn encode(record: &TxnRecord, now_ms: i64) -> Bytes {
    batch::encode_batch(
        &BatchSpec {
            base_timestamp: now_ms,
            ..BatchSpec::default()
        },
        &[Record {
            offset_delta: 0,
            timestamp_delta: 0,
            key: Some(record.encode_key()),
            value: record.encode_value(),
            headers: Vec::new(),
        }],
    )
}

pub(super) fn transactional_id(request: &TxnRequest) -> &str {
    match request {
        TxnRequest::InitProducerId(r) => &r.transactional_id,
        TxnRequest::AddPartitionsToTxn(r) => &r.transactional_id,
        TxnRequest::AddOffsetsToTxn(r) => &r.transactional_id,
        TxnRequest::EndTxn(r) => &r.transactional_id,
    }
}

/// The answer to a request the coordinator did not take.
pub(super) fn request_error(request: &TxnRequest, code: i16) -> TxnResponse {
    match request {
        TxnRequest::InitProducerId(_) => TxnResponse::InitProducerId(txn::InitProducerIdResponse {
            error_code: code,
            producer_id: -1,
            producer_epoch: -1,
        }),
        TxnRequest::AddPartitionsToTxn(r) => {
            TxnResponse::AddPartitionsToTxn(txn::AddPartitionsToTxnResult::all(r, code))
        }
        TxnRequest::AddOffsetsToTxn(_) => TxnResponse::AddOffsetsToTxn(code),
        TxnRequest::EndTxn(_) => TxnResponse::EndTxn(txn::EndTxnResponse {
            error_code: code,
            producer_id: -1,
            producer_epoch: -1,
        }),
    }
}

impl Broker {
    /// `WriteTxnMarkers`, as a partition leader: each marker is appended to each of its
    /// partitions led here and answered once committed (Kafka appends markers with
    /// `acks=all`). A marker of a fenced coordinator or an older producer epoch is refused by
    /// the producer state.
    pub(super) async fn write_txn_markers(
        self: &Arc<Self>,
        req: kafka_protocol::messages::WriteTxnMarkersRequest,
    ) -> kafka_protocol::messages::WriteTxnMarkersResponse {
        use kafka_protocol::messages::write_txn_markers_response::{
            WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
        };
        let mut results = Vec::with_capacity(req.markers.len());
        for marker in &req.markers {
            let mut topics = Vec::with_capacity(marker.topics.len());
            for topic in &marker.topics {
                let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
                for &index in &topic.partition_indexes {
                    let code = self.write_one_marker(marker, &topic.name.0, index).await;
                    partitions.push(
                        WritableTxnMarkerPartitionResult::default()
                            .with_partition_index(index)
                            .with_error_code(code),
                    );
                }
                topics.push(
                    WritableTxnMarkerTopicResult::default()
                        .with_name(topic.name.clone())
                        .with_partitions(partitions),
                );
            }
            results.push(
                WritableTxnMarkerResult::default()
                    .with_producer_id(marker.producer_id)
                    .with_topics(topics),
            );
        }
        kafka_protocol::messages::WriteTxnMarkersResponse::default().with_markers(results)
    }

    async fn write_one_marker(
        self: &Arc<Self>,
        marker: &kafka_protocol::messages::write_txn_markers_request::WritableTxnMarker,
        topic: &str,
        index: i32,
    ) -> i16 {
        let Ok(partition_index) = u32::try_from(index) else {
            return UNKNOWN_TOPIC_OR_PARTITION;
        };
        let tp = crate::scenario::TopicPartition {
            topic: topic.to_string(),
            partition: partition_index,
        };
        let Some(handle) = self.partition(&tp) else {
            return if self.metadata().partition(&tp).is_some() {
                NOT_LEADER_OR_FOLLOWER
            } else {
                UNKNOWN_TOPIC_OR_PARTITION
            };
        };
        let producer_id = marker.producer_id.0;
        let commit = marker.transaction_result;
        let (last_offset, epoch) = {
            let mut partition = handle.lock().await;
            let appended = partition
                .append_control_as_leader(
                    producer_id,
                    marker.producer_epoch,
                    marker.coordinator_epoch,
                    commit,
                )
                .await;
            match appended {
                Ok(info) => (info.last_offset, partition.leader_epoch()),
                Err(e) => return e.code(),
            }
        };
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(self.ctx.replication.socket_timeout_ms);
        loop {
            let (progress, done) = {
                let partition = handle.lock().await;
                (
                    partition.listen(),
                    partition.acks_all_done(last_offset, epoch),
                )
            };
            match done {
                Some(Ok(())) => break,
                Some(Err(e)) => return e.code(),
                None => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return REQUEST_TIMED_OUT;
            }
            tokio::select! {
                biased;
                _ = progress => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
        if tp.topic == super::OFFSETS_TOPIC {
            // The group coordinator makes the transaction's offsets visible, or drops them.
            self.on_transaction_marker(index, producer_id, commit, last_offset)
                .await;
        }
        0
    }
}
