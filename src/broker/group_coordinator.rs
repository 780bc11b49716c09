//! The broker's side of the group coordinator (Kafka's `GroupCoordinatorService` with its
//! `CoordinatorRuntime`): one shard of [`GroupCoordinator`] per `__consumer_offsets` partition
//! this broker leads.
//!
//! - Becoming the leader of a partition (seen in a published image) makes a shard that loads
//!   the partition's whole log into a new coordinator; until it is loaded, requests for its
//!   groups are answered `COORDINATOR_LOAD_IN_PROGRESS`. Losing the leadership (or the epoch
//!   changing) drops the shard: what waits is answered `NOT_COORDINATOR`, and the client looks
//!   for the new coordinator.
//! - A request runs under the shard's lock; the records it returns are appended to the
//!   partition as leader with `acks=all`'s rules, and its responses are sent once the high
//!   watermark passes everything the shard has written (Kafka's runtime holds a write's
//!   response until it is committed). An append that fails throws the in-memory state away and
//!   loads it again from the log, as the runtime reverts to its last committed snapshot.
//! - A task per shard ticks the coordinator's timers (sessions, join and sync phases) at their
//!   deadlines and sends the responses that became committed.
//! - Transactions (KIP-98): a TxnOffsetCommit's records are appended as a transactional batch
//!   of the producer's id and epoch; the broker, once it has appended a transaction's marker to
//!   a partition it leads, hands the marker to the shard (`on_transaction_marker`), which
//!   commits or drops the pending offsets. Loading replays each record with its batch's
//!   producer id and each marker, so the loaded state is the same.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use samsa_sim::val;
use tokio::sync::oneshot;

use super::partition::AppendError;
use super::{Broker, PartitionHandle, Signal};
use crate::coordinator::group::{
    error_code, CoordinatorOutput, CoordinatorRecord, DescribedGroup, GroupCoordinator,
    GroupCoordinatorConfig, GroupRequest, GroupResponse, JoinGroupResponse, LeaveGroupResponse,
    LogEntry, MaterializedOffset, OffsetCommitResponse, OffsetFetchResponse, RequestId,
    SyncGroupResponse, TransactionalBatch,
};
use crate::storage::batch::{self, BatchSpec, Record};
use crate::storage::log::{AppendInfo, Log, LogError};
use crate::storage::producer_state::AppendOrigin;

/// The internal topic the group coordinators keep their state in.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// `COORDINATOR_LOAD_IN_PROGRESS`.
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;

/// The group coordinator's broker configs.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    pub coordinator: GroupCoordinatorConfig,
    /// `offsets.topic.num.partitions` (50).
    pub offsets_topic_partitions: i32,
    /// `offsets.topic.replication.factor` (3).
    pub offsets_topic_replication_factor: i16,
    /// `offsets.topic.segment.bytes` (100 MiB).
    pub offsets_topic_segment_bytes: i64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            coordinator: GroupCoordinatorConfig::default(),
            offsets_topic_partitions: crate::coordinator::group::OFFSETS_TOPIC_NUM_PARTITIONS,
            offsets_topic_replication_factor: 3,
            offsets_topic_segment_bytes: 104_857_600,
        }
    }
}

/// The shards this broker runs, by `__consumer_offsets` partition.
#[derive(Default)]
pub(super) struct Coordinators {
    shards: Mutex<BTreeMap<i32, Arc<Shard>>>,
    next_request: std::sync::atomic::AtomicU64,
}

struct Shard {
    partition: i32,
    /// The leader epoch this shard leads in.
    epoch: i32,
    handle: PartitionHandle,
    state: tokio::sync::Mutex<ShardState>,
    /// Wakes the shard's task: a deadline may have moved, a response may be ready.
    changed: Signal,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

/// What a request waiting for its response left behind.
struct Waiter {
    reply: oneshot::Sender<GroupResponse>,
    /// An OffsetCommit's request, traced once committed.
    commit: Option<crate::coordinator::group::OffsetCommitRequest>,
    /// A TxnOffsetCommit's producer id, generation and member, remembered for the trace of
    /// the offsets its transaction's commit marker makes committed.
    txn_commit: Option<(i64, TxnCommitter)>,
}

/// Who committed a transaction's offsets: (generation, member id).
type TxnCommitter = (i32, String);

/// What a commit marker made committed, traced once the high watermark reaches `end`.
struct CommittedByMarker {
    end: i64,
    producer_id: i64,
    committer: Option<TxnCommitter>,
    offsets: Vec<MaterializedOffset>,
}

/// A transaction marker the broker appended: its offset, producer id and whether it commits.
#[derive(Clone, Copy, Debug)]
struct Marker {
    offset: i64,
    producer_id: i64,
    commit: bool,
}

#[derive(Default)]
struct ShardState {
    /// `None` while loading.
    coordinator: Option<GroupCoordinator>,
    closed: bool,
    /// The end of what the shard has written (or found on loading): responses wait for the
    /// high watermark to reach it.
    written_end: i64,
    /// Responses in the order they were made, each with the offset the HW must reach.
    ready: VecDeque<(i64, Vec<(RequestId, GroupResponse)>)>,
    waiters: BTreeMap<RequestId, Waiter>,
    /// Loads so far, for the seed of each load's member ids.
    loads: u64,
    /// The log end offset the coordinator was loaded up to: a marker below it was replayed by
    /// the load.
    loaded_end: i64,
    /// Markers handed over while the shard was loading, applied once it is loaded.
    markers_while_loading: Vec<Marker>,
    /// The offsets committed by a marker, traced once the high watermark passes the marker.
    committed_txn_offsets: VecDeque<CommittedByMarker>,
    /// The last TxnOffsetCommit's committer per producer id whose transaction is open here,
    /// for those traces (gone at the transaction's marker, so bounded by open transactions).
    txn_committers: BTreeMap<i64, TxnCommitter>,
}

impl Broker {
    /// Serves one group request: routed to the shard of its group, answered once committed.
    pub(super) async fn group_call(self: &Arc<Self>, request: GroupRequest) -> GroupResponse {
        let group = group_id(&request).to_string();
        let partitions = self.ctx.groups.offsets_topic_partitions;
        let partition = crate::coordinator::group::partition_for(&group, partitions);
        let shard = self
            .coordinators
            .shards
            .lock()
            .expect("coordinators lock")
            .get(&partition)
            .cloned();
        match shard {
            Some(shard) => self.shard_call(&shard, request).await,
            None => request_error(&request, error_code::NOT_COORDINATOR),
        }
    }

    /// ListGroups: every group of every loaded shard here (Kafka asks each of its shards).
    pub(super) async fn list_groups(
        self: &Arc<Self>,
        request: crate::coordinator::group::ListGroupsRequest,
    ) -> GroupResponse {
        let shards: Vec<Arc<Shard>> = self
            .coordinators
            .shards
            .lock()
            .expect("coordinators lock")
            .values()
            .cloned()
            .collect();
        let mut groups = Vec::new();
        let mut error = error_code::NONE;
        for shard in shards {
            match self
                .shard_call(&shard, GroupRequest::ListGroups(request.clone()))
                .await
            {
                GroupResponse::ListGroups(error_code::NONE, listed) => groups.extend(listed),
                GroupResponse::ListGroups(code, _) => error = code,
                _ => {}
            }
        }
        GroupResponse::ListGroups(error, groups)
    }

    /// One request to one shard, answered once what it wrote is committed.
    async fn shard_call(
        self: &Arc<Self>,
        shard: &Arc<Shard>,
        request: GroupRequest,
    ) -> GroupResponse {
        let (reply, answer) = oneshot::channel();
        {
            let mut state = shard.state.lock().await;
            if state.closed {
                return request_error(&request, error_code::NOT_COORDINATOR);
            }
            if state.coordinator.is_none() {
                return request_error(&request, COORDINATOR_LOAD_IN_PROGRESS);
            }
            let id = RequestId(
                self.coordinators
                    .next_request
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            );
            let commit = match &request {
                GroupRequest::OffsetCommit(r) => Some(r.clone()),
                _ => None,
            };
            let txn_commit = match &request {
                GroupRequest::TxnOffsetCommit(r) => {
                    Some((r.producer_id, (r.generation_id, r.member_id.clone())))
                }
                _ => None,
            };
            let waiter = Waiter {
                reply,
                commit,
                txn_commit,
            };
            state.waiters.insert(id, waiter);
            let now = self.ctx.clock.elapsed_ms();
            let coordinator = state.coordinator.as_mut().expect("loaded");
            let out = coordinator.handle(now, id, request.clone());
            self.apply_output(shard, &mut state, out).await;
        }
        shard.changed.wake();
        match answer.await {
            Ok(response) => response,
            // The shard was dropped: another broker coordinates the group now.
            Err(_) => request_error(&request, error_code::NOT_COORDINATOR),
        }
    }

    /// Appends `out`'s records, then its transactional batch, and queues its responses behind
    /// them.
    async fn apply_output(
        self: &Arc<Self>,
        shard: &Arc<Shard>,
        state: &mut ShardState,
        out: CoordinatorOutput,
    ) {
        let CoordinatorOutput {
            records,
            transactional,
            responses,
        } = out;
        let now_ms = self.ctx.clock.now_ms();
        let mut batches = Vec::with_capacity(2);
        if !records.is_empty() {
            let spec = BatchSpec {
                base_timestamp: now_ms,
                ..BatchSpec::default()
            };
            batches.push(encode(&spec, &records));
        }
        if let Some(txn) = &transactional {
            batches.push(encode(&transactional_spec(txn, now_ms), &txn.records));
        }
        for batch in batches {
            match self.append(shard, batch).await {
                Ok(info) => state.written_end = info.last_offset + 1,
                Err(e) => {
                    self.write_failed(shard, state, responses, e);
                    return;
                }
            }
        }
        if responses.is_empty() {
            return;
        }
        state.ready.push_back((state.written_end, responses));
        let hw = shard.handle.lock().await.high_watermark();
        self.send_committed(state, hw);
    }

    /// Appends one of the shard's batches to its partition as leader, with `acks=all`'s rules.
    async fn append(&self, shard: &Shard, batch: Bytes) -> Result<AppendInfo, AppendError> {
        let mut partition = shard.handle.lock().await;
        if partition.leader_epoch() != shard.epoch {
            return Err(AppendError::NotLeader);
        }
        let mut batch = batch.to_vec();
        partition
            .append_as_leader_from(&mut batch, -1, "", AppendOrigin::Coordinator)
            .await
    }

    /// A write failed: its responses fail, and the coordinator goes back to what the log holds
    /// (unloaded, loaded again).
    fn write_failed(
        self: &Arc<Self>,
        shard: &Arc<Shard>,
        state: &mut ShardState,
        responses: Vec<(RequestId, GroupResponse)>,
        e: AppendError,
    ) {
        let code = match e {
            AppendError::NotLeader => error_code::NOT_COORDINATOR,
            _ => error_code::COORDINATOR_NOT_AVAILABLE,
        };
        self.event(
            "group-coordinator-write-failed",
            serde_json::json!({
                "partition": shard.partition,
                "error": format!("{e:?}"),
            }),
        );
        let failed: Vec<_> = responses
            .into_iter()
            .map(|(id, r)| (id, response_error(&r, code)))
            .collect();
        self.send_responses(state, failed);
        if let Some(mut coordinator) = state.coordinator.take() {
            let unloaded = coordinator.unload();
            self.send_responses(state, unloaded.responses);
        }
        spawn_load(self.clone(), shard.clone());
    }

    /// Sends every queued response whose records the high watermark `hw` has passed.
    fn send_committed(&self, state: &mut ShardState, hw: i64) {
        while state.ready.front().is_some_and(|(end, _)| *end <= hw) {
            let (_, responses) = state.ready.pop_front().expect("front");
            self.send_responses(state, responses);
        }
        while state
            .committed_txn_offsets
            .front()
            .is_some_and(|c| c.end <= hw)
        {
            let committed = state.committed_txn_offsets.pop_front().expect("front");
            self.trace_txn_commits(&committed);
        }
    }

    fn send_responses(&self, state: &mut ShardState, responses: Vec<(RequestId, GroupResponse)>) {
        for (id, response) in responses {
            let Some(waiter) = state.waiters.remove(&id) else {
                continue;
            };
            if let (Some(request), GroupResponse::OffsetCommit(answer)) =
                (&waiter.commit, &response)
            {
                self.trace_commits(request, answer);
            }
            if let (Some((producer_id, committer)), GroupResponse::TxnOffsetCommit(answer)) =
                (waiter.txn_commit, &response)
            {
                let accepted = answer.topics.iter().flat_map(|(_, ps)| ps);
                if accepted.clone().any(|(_, code)| *code == error_code::NONE) {
                    state.txn_committers.insert(producer_id, committer);
                }
            }
            let _ = waiter.reply.send(response);
        }
    }

    /// One `offset-commit` event per partition whose commit is committed.
    fn trace_commits(
        &self,
        request: &crate::coordinator::group::OffsetCommitRequest,
        answer: &OffsetCommitResponse,
    ) {
        for ((topic, partitions), (_, codes)) in request.topics.iter().zip(&answer.topics) {
            for (p, (_, code)) in partitions.iter().zip(codes) {
                if *code != error_code::NONE {
                    continue;
                }
                self.ctx.recorder.event_val(
                    &self.ctx.name,
                    "offset-commit",
                    val!({
                        "group": request.group_id.as_str(),
                        "partition": format!("{topic}-{}", p.partition_index),
                        "offset": p.committed_offset,
                        "generation": request.generation_id,
                        "member": request.member_id.as_str(),
                    }),
                );
            }
        }
    }
}

impl Broker {
    /// The broker appended a transaction's end marker at `marker_offset` of
    /// `__consumer_offsets` partition `partition`, which it leads (WriteTxnMarkers): the
    /// shard commits (`commit`) or drops producer `producer_id`'s pending offsets. Once the high
    /// watermark passes the marker, each offset it made committed is traced as an
    /// `offset-commit` event with `"txn": true`, and the shard's later answers wait for it too.
    /// A marker of a partition without a shard here does nothing; one that arrives while the
    /// shard loads is applied after, unless the load read it from the log. To be called without
    /// the partition's lock held (the shard takes it for the high watermark).
    // Called by the WriteTxnMarkers handler once it is wired.
    pub(crate) async fn on_transaction_marker(
        &self,
        partition: i32,
        producer_id: i64,
        commit: bool,
        marker_offset: i64,
    ) {
        let shard = self
            .coordinators
            .shards
            .lock()
            .expect("coordinators lock")
            .get(&partition)
            .cloned();
        let Some(shard) = shard else {
            return;
        };
        let marker = Marker {
            offset: marker_offset,
            producer_id,
            commit,
        };
        {
            let mut state = shard.state.lock().await;
            if state.closed {
                return;
            }
            if state.coordinator.is_none() {
                state.markers_while_loading.push(marker);
                return;
            }
            apply_marker(&mut state, marker);
            let hw = shard.handle.lock().await.high_watermark();
            self.send_committed(&mut state, hw);
        }
        shard.changed.wake();
    }

    /// One `offset-commit` event per offset a transaction's commit marker made committed.
    fn trace_txn_commits(&self, committed: &CommittedByMarker) {
        let (generation, member) = committed
            .committer
            .as_ref()
            .map_or((-1, ""), |(g, m)| (*g, m.as_str()));
        let producer_id = committed.producer_id;
        for o in &committed.offsets {
            self.ctx.recorder.event_val(
                &self.ctx.name,
                "offset-commit",
                val!({
                    "group": o.group_id.as_str(),
                    "partition": format!("{}-{}", o.topic, o.partition),
                    "offset": o.committed_offset,
                    "generation": generation,
                    "member": member,
                    "txn": true,
                    "producer_id": producer_id,
                }),
            );
        }
    }
}

/// Applies a marker to the loaded coordinator, unless the load already replayed it; what it
/// committed waits for the high watermark to pass it.
fn apply_marker(state: &mut ShardState, marker: Marker) {
    if marker.offset < state.loaded_end {
        return;
    }
    let coordinator = state.coordinator.as_mut().expect("loaded");
    let offsets = coordinator.replay_end_transaction_marker(marker.producer_id, marker.commit);
    let end = marker.offset + 1;
    state.written_end = state.written_end.max(end);
    let committer = state.txn_committers.remove(&marker.producer_id);
    if !offsets.is_empty() {
        state.committed_txn_offsets.push_back(CommittedByMarker {
            end,
            producer_id: marker.producer_id,
            committer,
            offsets,
        });
    }
}

/// Makes and drops shards as a newly published image says who leads `__consumer_offsets`.
pub(super) fn on_image(broker: &Arc<Broker>, view: &crate::metadata::MetadataImage) {
    let me = broker.ctx.id;
    let mut leading: BTreeMap<i32, (i32, PartitionHandle)> = BTreeMap::new();
    if let Some(partitions) = view.topics.get(OFFSETS_TOPIC) {
        for (index, meta) in partitions.iter().enumerate() {
            let tp = crate::scenario::TopicPartition {
                topic: OFFSETS_TOPIC.to_string(),
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
        .coordinators
        .shards
        .lock()
        .expect("coordinators lock");
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
        tokio::spawn(async move { broker.close_shard(shard).await });
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

impl Broker {
    /// Drops a shard whose leadership is gone: waiting requests are told NOT_COORDINATOR.
    async fn close_shard(&self, shard: Arc<Shard>) {
        if let Some(task) = shard.task.lock().expect("task lock").take() {
            task.abort();
        }
        let mut state = shard.state.lock().await;
        state.closed = true;
        if let Some(mut coordinator) = state.coordinator.take() {
            let out = coordinator.unload();
            self.send_responses(&mut state, out.responses);
        }
        // Dropping the rest answers them NOT_COORDINATOR (see `group_call`).
        state.waiters.clear();
        state.ready.clear();
        state.committed_txn_offsets.clear();
        state.markers_while_loading.clear();
        self.event(
            "group-coordinator-unloaded",
            serde_json::json!({ "partition": shard.partition, "epoch": shard.epoch }),
        );
    }
}

/// Loads the shard's partition into a new coordinator, unless the shard is gone meanwhile.
fn spawn_load(broker: Arc<Broker>, shard: Arc<Shard>) {
    tokio::spawn(async move {
        let (entries, end) = {
            let partition = shard.handle.lock().await;
            if !partition.is_leader() || partition.leader_epoch() != shard.epoch {
                return;
            }
            let read = read_log(partition.log()).await;
            (read, partition.log_end_offset())
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => {
                broker.event(
                    "group-coordinator-load-failed",
                    serde_json::json!({ "partition": shard.partition, "error": e.to_string() }),
                );
                return;
            }
        };
        let mut state = shard.state.lock().await;
        if state.closed {
            return;
        }
        let seed = crate::world::derive_seed(
            broker.ctx.seed,
            &format!(
                "group-coordinator/{}/{}/{}",
                shard.partition, shard.epoch, state.loads
            ),
        );
        state.loads += 1;
        let mut coordinator = GroupCoordinator::new(
            broker.ctx.groups.coordinator.clone(),
            ChaCha8Rng::seed_from_u64(seed),
        );
        coordinator.load_log(broker.ctx.clock.elapsed_ms(), &entries);
        let records = entries
            .iter()
            .filter(|e| matches!(e, LogEntry::Record { .. }))
            .count();
        broker.event(
            "group-coordinator-loaded",
            serde_json::json!({
                "partition": shard.partition,
                "epoch": shard.epoch,
                "records": records,
                "groups": coordinator.groups().len(),
            }),
        );
        state.coordinator = Some(coordinator);
        state.written_end = state.written_end.max(end);
        state.loaded_end = end;
        for marker in std::mem::take(&mut state.markers_while_loading) {
            apply_marker(&mut state, marker);
        }
        drop(state);
        shard.changed.wake();
    });
}

/// How much of the log one read brings while loading.
const LOAD_READ_BYTES: usize = 1 << 20;

/// The whole log of a `__consumer_offsets` partition as the coordinator replays it: each
/// record with its batch's producer id if the batch is transactional, each end-transaction
/// marker (a control batch whose record key is version int16, type int16: 0 abort, 1 commit).
/// Records that are not the coordinator's are skipped, as Kafka's loader skips what it cannot
/// read.
async fn read_log(log: &Log) -> Result<Vec<LogEntry>, LogError> {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    let mut entries = Vec::new();
    let mut offset = start;
    while offset < end {
        let from = offset;
        let read = log.read(from, LOAD_READ_BYTES).await?;
        let bytes = &read.records;
        if bytes.is_empty() {
            break;
        }
        let mut iter = batch::batches(bytes);
        for (position, header) in iter.by_ref() {
            let (_, records) =
                batch::decode_records(&bytes[position..position + header.size_in_bytes()])?;
            let records = records.iter().filter(|r| r.offset >= start);
            if header.is_control() {
                entries.extend(records.filter_map(|r| marker(header.producer_id, r)));
            } else {
                let producer_id = header.is_transactional().then_some(header.producer_id);
                entries.extend(records.filter_map(|r| {
                    let record = CoordinatorRecord::decode(r.key.as_deref()?, r.value.as_deref());
                    let record = record.ok()?;
                    Some(LogEntry::Record {
                        producer_id,
                        record,
                    })
                }));
            }
            offset = offset.max(header.next_offset());
        }
        if let Some((_, error)) = iter.stopped_at() {
            return Err(LogError::Corrupt(error));
        }
        if offset == from {
            let why = format!("a read at {from} brought no batch past it");
            return Err(LogError::Corrupt(batch::BatchError::Corrupt(why)));
        }
    }
    Ok(entries)
}

/// An end-transaction marker of a control record; `None` for other control records.
fn marker(producer_id: i64, record: &batch::DecodedRecord) -> Option<LogEntry> {
    let key = record.key.as_deref()?;
    let kind = i16::from_be_bytes(key.get(2..4)?.try_into().ok()?);
    let commit = match kind {
        0 => false,
        1 => true,
        _ => return None,
    };
    Some(LogEntry::Marker {
        producer_id,
        commit,
    })
}

/// The shard's clock and mailman: ticks the coordinator's timers when due, and sends the
/// responses the high watermark has passed.
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
            broker.send_committed(&mut state, hw);
            let now = broker.ctx.clock.elapsed_ms();
            let next = state
                .coordinator
                .as_ref()
                .and_then(|c| c.next_deadline_ms());
            if next.is_some_and(|d| d <= now) {
                let out = state.coordinator.as_mut().expect("loaded").tick(now);
                broker.apply_output(&shard, &mut state, out).await;
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

/// A TxnOffsetCommit's batch: transactional, of the producer's id and epoch, base sequence 0
/// as Kafka's `CoordinatorRuntime` builds it (the partition takes it as the coordinator's, not
/// checked against the producer's sequences).
fn transactional_spec(txn: &TransactionalBatch, now_ms: i64) -> BatchSpec {
    BatchSpec {
        base_timestamp: now_ms,
        producer_id: txn.producer_id,
        producer_epoch: txn.producer_epoch,
        base_sequence: 0,
        transactional: true,
        ..BatchSpec::default()
    }
}

/// One batch of the coordinator's records, as Kafka's runtime writes them (uncompressed here).
fn encode(spec: &BatchSpec, records: &[CoordinatorRecord]) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            offset_delta: i as i32,
            timestamp_delta: 0,
            key: Some(r.encode_key()),
            value: r.encode_value(),
            headers: Vec::new(),
        })
        .collect();
    batch::encode_batch(spec, &records)
}

pub(super) fn group_id(request: &GroupRequest) -> &str {
    match request {
        GroupRequest::JoinGroup(r) => &r.group_id,
        GroupRequest::SyncGroup(r) => &r.group_id,
        GroupRequest::Heartbeat(r) => &r.group_id,
        GroupRequest::LeaveGroup(r) => &r.group_id,
        GroupRequest::OffsetCommit(r) => &r.group_id,
        GroupRequest::TxnOffsetCommit(r) => &r.group_id,
        GroupRequest::OffsetFetch(r) => &r.group_id,
        GroupRequest::DescribeGroups(groups) => groups.first().map_or("", String::as_str),
        GroupRequest::ListGroups(_) => "",
    }
}

/// The answer to a request the coordinator did not take, all of it failed with `code`.
pub(super) fn request_error(request: &GroupRequest, code: i16) -> GroupResponse {
    match request {
        GroupRequest::JoinGroup(r) => {
            GroupResponse::JoinGroup(JoinGroupResponse::error(code, &r.member_id))
        }
        GroupRequest::SyncGroup(_) => GroupResponse::SyncGroup(SyncGroupResponse::error(code)),
        GroupRequest::Heartbeat(_) => GroupResponse::Heartbeat(code),
        GroupRequest::LeaveGroup(_) => GroupResponse::LeaveGroup(LeaveGroupResponse {
            error_code: code,
            members: Vec::new(),
        }),
        GroupRequest::OffsetCommit(r) => GroupResponse::OffsetCommit(all_failed(&r.topics, code)),
        GroupRequest::TxnOffsetCommit(r) => {
            GroupResponse::TxnOffsetCommit(all_failed(&r.topics, code))
        }
        GroupRequest::OffsetFetch(_) => GroupResponse::OffsetFetch(OffsetFetchResponse {
            error_code: code,
            topics: Vec::new(),
        }),
        GroupRequest::DescribeGroups(groups) => GroupResponse::DescribeGroups(
            groups
                .iter()
                .map(|g| DescribedGroup {
                    error_code: code,
                    group_id: g.clone(),
                    group_state: String::new(),
                    protocol_type: String::new(),
                    protocol_data: String::new(),
                    members: Vec::new(),
                })
                .collect(),
        ),
        GroupRequest::ListGroups(_) => GroupResponse::ListGroups(code, Vec::new()),
    }
}

/// Every partition of a commit failed with `code`.
fn all_failed(
    topics: &[(
        String,
        Vec<crate::coordinator::group::OffsetCommitPartition>,
    )],
    code: i16,
) -> OffsetCommitResponse {
    OffsetCommitResponse {
        topics: topics
            .iter()
            .map(|(t, ps)| {
                (
                    t.clone(),
                    ps.iter().map(|p| (p.partition_index, code)).collect(),
                )
            })
            .collect(),
    }
}

/// Every partition of a commit's answer failed with `code`.
fn answer_failed(r: &OffsetCommitResponse, code: i16) -> OffsetCommitResponse {
    OffsetCommitResponse {
        topics: r
            .topics
            .iter()
            .map(|(t, ps)| (t.clone(), ps.iter().map(|(p, _)| (*p, code)).collect()))
            .collect(),
    }
}

/// A response whose records could not be written, failed with `code` (reads stand).
fn response_error(response: &GroupResponse, code: i16) -> GroupResponse {
    match response {
        GroupResponse::JoinGroup(r) => {
            GroupResponse::JoinGroup(JoinGroupResponse::error(code, &r.member_id))
        }
        GroupResponse::SyncGroup(_) => GroupResponse::SyncGroup(SyncGroupResponse::error(code)),
        GroupResponse::Heartbeat(_) => GroupResponse::Heartbeat(code),
        GroupResponse::LeaveGroup(_) => GroupResponse::LeaveGroup(LeaveGroupResponse {
            error_code: code,
            members: Vec::new(),
        }),
        GroupResponse::OffsetCommit(r) => GroupResponse::OffsetCommit(answer_failed(r, code)),
        GroupResponse::TxnOffsetCommit(r) => GroupResponse::TxnOffsetCommit(answer_failed(r, code)),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::group::OffsetCommitValue;
    use crate::storage::tests::{disk, open_with, run, small_config};

    fn offset_record(partition: i32, offset: i64) -> CoordinatorRecord {
        CoordinatorRecord::OffsetCommit {
            group: "g1".to_owned(),
            topic: "orders".to_owned(),
            partition,
            value: Some(OffsetCommitValue {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 0,
            }),
        }
    }

    /// The log as the loading coordinator reads it: plain records, a transactional batch's with
    /// its producer id, and the markers, across segments (small ones) and in order.
    #[test]
    fn the_load_reads_batches_with_their_producer_ids_and_markers() {
        run(async {
            let (_, disk) = disk();
            let (mut log, _) = open_with(&disk, small_config()).await;
            let txn = TransactionalBatch {
                producer_id: 7,
                producer_epoch: 2,
                records: vec![offset_record(0, 20), offset_record(1, 21)],
            };
            let plain = BatchSpec::default();
            let mut batches = Vec::new();
            for i in 0..6 {
                batches.push(encode(&plain, &[offset_record(2, i)]));
            }
            batches.push(encode(&transactional_spec(&txn, 0), &txn.records));
            for batch in batches {
                log.append(&mut batch.to_vec(), 0, 0).await.unwrap();
            }
            log.append_control_as_leader(7, 2, 0, true, 0, 0)
                .await
                .unwrap();
            log.append_control_as_leader(8, 0, 0, false, 0, 0)
                .await
                .unwrap();
            let last = encode(&plain, &[offset_record(2, 99)]);
            log.append(&mut last.to_vec(), 0, 0).await.unwrap();
            assert!(log.segments().len() > 1, "spans segments");

            let mut expected: Vec<LogEntry> = (0..6)
                .map(|i| LogEntry::Record {
                    producer_id: None,
                    record: offset_record(2, i),
                })
                .collect();
            expected.extend(txn.records.iter().map(|r| LogEntry::Record {
                producer_id: Some(7),
                record: r.clone(),
            }));
            expected.push(LogEntry::Marker {
                producer_id: 7,
                commit: true,
            });
            expected.push(LogEntry::Marker {
                producer_id: 8,
                commit: false,
            });
            expected.push(LogEntry::Record {
                producer_id: None,
                record: offset_record(2, 99),
            });
            assert_eq!(read_log(&log).await.unwrap(), expected);
        })
    }
}
