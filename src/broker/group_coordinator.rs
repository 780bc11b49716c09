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
    OffsetCommitResponse, OffsetFetchResponse, RequestId, SyncGroupResponse,
};
use crate::storage::batch::{self, BatchSpec, Record};

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
            state.waiters.insert(id, Waiter { reply, commit });
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

    /// Appends `out`'s records and queues its responses behind them.
    async fn apply_output(
        self: &Arc<Self>,
        shard: &Arc<Shard>,
        state: &mut ShardState,
        out: CoordinatorOutput,
    ) {
        let CoordinatorOutput { records, responses } = out;
        if !records.is_empty() {
            let mut partition = shard.handle.lock().await;
            let appended = if partition.leader_epoch() != shard.epoch {
                Err(AppendError::NotLeader)
            } else {
                let mut batch = encode(&records, self.ctx.clock.now_ms()).to_vec();
                partition.append_as_leader(&mut batch, -1, "").await
            };
            match appended {
                Ok(info) => state.written_end = info.last_offset + 1,
                Err(e) => {
                    drop(partition);
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
                    // Back to what the log holds: unload and load again.
                    if let Some(mut coordinator) = state.coordinator.take() {
                        let unloaded = coordinator.unload();
                        self.send_responses(state, unloaded.responses);
                    }
                    spawn_load(self.clone(), shard.clone());
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

    /// Sends every queued response whose records the high watermark `hw` has passed.
    fn send_committed(&self, state: &mut ShardState, hw: i64) {
        while state.ready.front().is_some_and(|(end, _)| *end <= hw) {
            let (_, responses) = state.ready.pop_front().expect("front");
            self.send_responses(state, responses);
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
        self.event(
            "group-coordinator-unloaded",
            serde_json::json!({ "partition": shard.partition, "epoch": shard.epoch }),
        );
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
                    "group-coordinator-load-failed",
                    serde_json::json!({ "partition": shard.partition, "error": e.to_string() }),
                );
                return;
            }
        };
        let mut decoded = Vec::with_capacity(records.len());
        for record in &records {
            let Some(key) = record.key.as_deref() else {
                continue;
            };
            if let Ok(record) = CoordinatorRecord::decode(key, record.value.as_deref()) {
                decoded.push(record);
            }
        }
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
        coordinator.load(broker.ctx.clock.elapsed_ms(), &decoded);
        broker.event(
            "group-coordinator-loaded",
            serde_json::json!({
                "partition": shard.partition,
                "epoch": shard.epoch,
                "records": decoded.len(),
                "groups": coordinator.groups().len(),
            }),
        );
        state.coordinator = Some(coordinator);
        state.written_end = state.written_end.max(end);
        drop(state);
        shard.changed.wake();
    });
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

/// One batch of the coordinator's records, as Kafka's runtime writes them (uncompressed here).
fn encode(records: &[CoordinatorRecord], now_ms: i64) -> Bytes {
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
    batch::encode_batch(
        &BatchSpec {
            base_timestamp: now_ms,
            ..BatchSpec::default()
        },
        &records,
    )
}

pub(super) fn group_id(request: &GroupRequest) -> &str {
    match request {
        GroupRequest::JoinGroup(r) => &r.group_id,
        GroupRequest::SyncGroup(r) => &r.group_id,
        GroupRequest::Heartbeat(r) => &r.group_id,
        GroupRequest::LeaveGroup(r) => &r.group_id,
        GroupRequest::OffsetCommit(r) => &r.group_id,
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
        GroupRequest::OffsetCommit(r) => GroupResponse::OffsetCommit(OffsetCommitResponse {
            topics: r
                .topics
                .iter()
                .map(|(t, ps)| {
                    (
                        t.clone(),
                        ps.iter().map(|p| (p.partition_index, code)).collect(),
                    )
                })
                .collect(),
        }),
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
        GroupResponse::OffsetCommit(r) => GroupResponse::OffsetCommit(OffsetCommitResponse {
            topics: r
                .topics
                .iter()
                .map(|(t, ps)| (t.clone(), ps.iter().map(|(p, _)| (*p, code)).collect()))
                .collect(),
        }),
        other => other.clone(),
    }
}
