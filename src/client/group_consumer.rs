//! A member of a consumer group (Kafka's `KafkaConsumer` with the classic protocol's
//! `ConsumerCoordinator`): it finds its group's coordinator, joins, syncs (computing the
//! assignment when it leads), heartbeats from a task of its own (the heartbeat thread), and runs
//! the application's loop: poll (at most `max.poll.records`), process, commit, in the order its
//! workload says.
//!
//! What it records, as the member's process (`c-1`), for the group checks:
//! - `assign` ok `{group, generation, member, partitions}` after every SyncGroup;
//! - `revoke` ok `{group, generation, partitions}` when it gives partitions up;
//! - `poll` ok `{group, records}`; `process` ok `{group, ranges}` once a poll's records are
//!   processed (ranges of offsets, inclusive, per partition);
//! - `commit` invoke/ok/fail/info `{group, generation, offsets}`.
//!
//! Rebalancing: an eager assignor revokes everything before joining; `cooperative-sticky`
//! (KIP-429) keeps its partitions, revokes only those the new assignment takes away, and joins
//! again at once when it revoked some, so the follow-up rebalance hands them out.
//! Not modelled: position validation by leader epoch (KIP-320) and `OffsetsForLeaderEpoch`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, BrokerId, ConsumerProtocolAssignment, ConsumerProtocolSubscription, FetchRequest,
    FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest, RequestKind, ResponseKind,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use samsa_sim::history::OpType;
use samsa_sim::val;
use samsa_sim::val::Val;

use super::assignor::{AssignorKind, MemberSubscription, RebalanceProtocol};
use super::cluster::ClusterView;
use super::consumer::{decode_fetched, ConsumerSpec, OffsetReset};
use super::{sleep_until_ms, ClientContext, RETRY_BACKOFF_MS};
use crate::protocol::versions::client_version;
use crate::protocol::{ClientError, Connection};
use crate::scenario::TopicPartition;

/// When the application commits, relative to processing a poll's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitMode {
    /// Process, then `commitSync` (at least once).
    AfterProcessing,
    /// `commitSync`, then process (at most once).
    BeforeProcessing,
    /// `enable.auto.commit`: each poll first commits what earlier polls returned, every
    /// `auto.commit.interval.ms`, and so does a rebalance.
    Auto,
}

#[derive(Clone, Debug)]
pub struct GroupConsumerSpec {
    pub consumer: ConsumerSpec,
    pub group: String,
    /// `group.instance.id` (static membership, KIP-345).
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: u64,
    pub max_poll_interval_ms: i32,
    pub max_poll_records: usize,
    /// `partition.assignment.strategy`, in order of preference.
    pub assignors: Vec<AssignorKind>,
    pub commit: CommitMode,
    pub auto_commit_interval_ms: u64,
    /// How long the application takes to process one poll's records.
    pub processing_ms: u64,
    /// The application hands each poll's records to a worker and polls again at once (the
    /// worker processes them one poll after another): with auto-commit, records can be
    /// committed before they are processed.
    pub handoff: bool,
}

/// `COORDINATOR_LOAD_IN_PROGRESS`, `NOT_COORDINATOR`, `COORDINATOR_NOT_AVAILABLE`.
const COORDINATOR_ERRORS: [i16; 3] = [14, 15, 16];
const REBALANCE_IN_PROGRESS: i16 = 27;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_INSTANCE_ID: i16 = 82;

/// What the poll loop and the heartbeat task share (the `AbstractCoordinator`'s state).
#[derive(Debug)]
struct Membership {
    coordinator: Option<i32>,
    member_id: String,
    generation: i32,
    /// A generation is joined and synced.
    stable: bool,
    rejoin_needed: bool,
    /// When the application last called poll (run time line).
    last_poll_ms: u64,
    /// When the coordinator last answered a heartbeat (or the member joined).
    last_heartbeat_ms: u64,
}

type Shared = Arc<Mutex<Membership>>;

/// A batch of polled records waiting for the worker (handoff).
type Polled = Vec<(TopicPartition, i64, Option<String>)>;

pub async fn run(ctx: ClientContext, spec: GroupConsumerSpec) {
    sleep_until_ms(&ctx.clock, spec.consumer.start_ms).await;
    let shared = Arc::new(Mutex::new(Membership {
        coordinator: None,
        member_id: String::new(),
        generation: -1,
        stable: false,
        rejoin_needed: true,
        last_poll_ms: ctx.clock.elapsed_ms(),
        last_heartbeat_ms: ctx.clock.elapsed_ms(),
    }));
    let worker = spec.handoff.then(|| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Polled>();
        tokio::spawn(process_worker(ctx.clone(), spec.clone(), rx));
        tx
    });
    tokio::spawn(heartbeat(ctx.clone(), spec.clone(), shared.clone()));
    let mut view = ClusterView::new(ctx.clone());
    view.request_timeout = spec.consumer.request_timeout;
    let mut member = Member {
        ctx,
        spec,
        view,
        shared,
        assigned: BTreeSet::new(),
        positions: BTreeMap::new(),
        buffer: VecDeque::new(),
        next_auto_commit_ms: 0,
        worker,
    };
    member.next_auto_commit_ms = member.now() + member.spec.auto_commit_interval_ms;
    loop {
        if !member.round().await {
            tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
        }
    }
}

struct Member {
    ctx: ClientContext,
    spec: GroupConsumerSpec,
    view: ClusterView,
    shared: Shared,
    assigned: BTreeSet<TopicPartition>,
    /// Next offset to read per assigned partition; `None` until found.
    positions: BTreeMap<TopicPartition, Option<i64>>,
    /// Fetched, not yet returned by poll.
    buffer: VecDeque<(TopicPartition, i64, Option<String>)>,
    next_auto_commit_ms: u64,
    worker: Option<tokio::sync::mpsc::UnboundedSender<Polled>>,
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

impl Member {
    fn now(&self) -> u64 {
        self.ctx.clock.elapsed_ms()
    }

    fn op(&self, kind: OpType, f: &str, value: Val) {
        self.ctx.recorder.op_val(&self.ctx.id, kind, f, value);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Membership> {
        self.shared.lock().expect("membership lock")
    }

    fn group(&self) -> &str {
        &self.spec.group
    }

    /// One turn of the application's loop. False when it made no progress.
    async fn round(&mut self) -> bool {
        if self.view.is_stale()
            || self
                .view
                .partition_count(&self.spec.consumer.topics[0])
                .is_none()
        {
            let topics = self.spec.consumer.topics.clone();
            if self.view.refresh(&topics).await.is_err() {
                return false;
            }
        }
        let coordinator = match self.coordinator().await {
            Some(c) => c,
            None => return false,
        };
        let (stable, rejoin) = {
            let s = self.state();
            (s.stable, s.rejoin_needed)
        };
        if !stable || rejoin {
            return self.join(coordinator).await;
        }
        if self.positions.values().any(Option::is_none) && !self.find_positions(coordinator).await {
            return false;
        }
        self.poll(coordinator).await
    }

    /// The coordinator, found with `FindCoordinator` when unknown.
    async fn coordinator(&mut self) -> Option<i32> {
        if let Some(c) = self.state().coordinator {
            return Some(c);
        }
        let request = RequestKind::FindCoordinator(
            FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_coordinator_keys(vec![str_bytes(self.group())]),
        );
        let brokers: Vec<i32> = self.view.brokers();
        let start = (self.now() / RETRY_BACKOFF_MS) as usize;
        for i in 0..brokers.len() {
            let broker = brokers[(start + i) % brokers.len()];
            let Ok(response) = self.send(broker, ApiKey::FindCoordinator, &request).await else {
                continue;
            };
            let ResponseKind::FindCoordinator(r) = response else {
                continue;
            };
            let Some(found) = r.coordinators.first() else {
                continue;
            };
            if found.error_code != 0 {
                return None;
            }
            let id = found.node_id.0;
            if !brokers.contains(&id) {
                self.view.mark_stale();
                return None;
            }
            self.state().coordinator = Some(id);
            return Some(id);
        }
        None
    }

    fn coordinator_lost(&mut self, coordinator: i32) {
        let mut s = self.state();
        if s.coordinator == Some(coordinator) {
            s.coordinator = None;
        }
    }

    async fn send(
        &mut self,
        broker: i32,
        api: ApiKey,
        request: &RequestKind,
    ) -> Result<ResponseKind, ClientError> {
        let conn: Arc<Connection> = self.view.connection(broker).await?;
        let result = conn
            .send(
                api,
                client_version(api),
                request,
                self.spec.consumer.request_timeout,
            )
            .await;
        if result.is_err() {
            self.view.disconnect(broker);
        }
        result
    }

    /// `onJoinPrepare`, JoinGroup, SyncGroup and `onJoinComplete`.
    async fn join(&mut self, coordinator: i32) -> bool {
        let protocol = self.protocol();
        if protocol == RebalanceProtocol::Eager && !self.assigned.is_empty() {
            if self.spec.commit == CommitMode::Auto {
                self.commit(coordinator, None).await;
            }
            let all: Vec<TopicPartition> = self.assigned.iter().cloned().collect();
            self.revoke(&all);
        }
        let (member_id, generation) = {
            let s = self.state();
            (s.member_id.clone(), s.generation)
        };
        let owned: Vec<TopicPartition> = self.assigned.iter().cloned().collect();
        let subscription = encode_subscription(&self.spec.consumer.topics, &owned, generation);
        let request = RequestKind::JoinGroup(
            JoinGroupRequest::default()
                .with_group_id(GroupId(str_bytes(self.group())))
                .with_session_timeout_ms(self.spec.session_timeout_ms)
                .with_rebalance_timeout_ms(self.spec.max_poll_interval_ms)
                .with_member_id(str_bytes(&member_id))
                .with_group_instance_id(self.spec.group_instance_id.as_deref().map(str_bytes))
                .with_protocol_type(str_bytes("consumer"))
                .with_protocols(
                    self.spec
                        .assignors
                        .iter()
                        .map(|a| {
                            JoinGroupRequestProtocol::default()
                                .with_name(str_bytes(a.name()))
                                .with_metadata(subscription.clone())
                        })
                        .collect(),
                ),
        );
        // A JoinGroup waits for the whole group: up to the rebalance timeout, and a little more.
        let timeout = Duration::from_millis(self.spec.max_poll_interval_ms as u64 + 5_000);
        let joined = match self.view.connection(coordinator).await {
            Ok(conn) => {
                conn.send(
                    ApiKey::JoinGroup,
                    client_version(ApiKey::JoinGroup),
                    &request,
                    timeout,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let joined = match joined {
            Ok(ResponseKind::JoinGroup(r)) => r,
            _ => {
                self.view.disconnect(coordinator);
                self.coordinator_lost(coordinator);
                return false;
            }
        };
        match joined.error_code {
            0 => {}
            MEMBER_ID_REQUIRED => {
                self.state().member_id = joined.member_id.to_string();
                return true;
            }
            UNKNOWN_MEMBER_ID | FENCED_INSTANCE_ID => {
                let mut s = self.state();
                s.member_id.clear();
                s.generation = -1;
                return false;
            }
            code if COORDINATOR_ERRORS.contains(&code) => {
                self.coordinator_lost(coordinator);
                return false;
            }
            _ => return false,
        }
        let member_id = joined.member_id.to_string();
        let generation = joined.generation_id;
        let protocol_name = joined.protocol_name.as_ref().map(|p| p.to_string());
        {
            let mut s = self.state();
            s.member_id = member_id.clone();
            s.generation = generation;
        }
        let assignments = if joined.leader == joined.member_id && !joined.skip_assignment {
            let kind = protocol_name
                .as_deref()
                .and_then(AssignorKind::from_name)
                .unwrap_or(AssignorKind::Range);
            self.assign_as_leader(kind, &joined.members)
        } else {
            Vec::new()
        };
        let request = RequestKind::SyncGroup(
            SyncGroupRequest::default()
                .with_group_id(GroupId(str_bytes(self.group())))
                .with_generation_id(generation)
                .with_member_id(str_bytes(&member_id))
                .with_group_instance_id(self.spec.group_instance_id.as_deref().map(str_bytes))
                .with_protocol_type(Some(str_bytes("consumer")))
                .with_protocol_name(protocol_name.as_deref().map(str_bytes))
                .with_assignments(assignments),
        );
        let synced = match self.send(coordinator, ApiKey::SyncGroup, &request).await {
            Ok(ResponseKind::SyncGroup(r)) => r,
            _ => {
                self.coordinator_lost(coordinator);
                return false;
            }
        };
        match synced.error_code {
            0 => {}
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => return true,
            UNKNOWN_MEMBER_ID | FENCED_INSTANCE_ID => {
                let mut s = self.state();
                s.member_id.clear();
                s.generation = -1;
                return false;
            }
            code if COORDINATOR_ERRORS.contains(&code) => {
                self.coordinator_lost(coordinator);
                return false;
            }
            _ => return false,
        }
        let assigned: BTreeSet<TopicPartition> =
            decode_assignment(&synced.assignment).into_iter().collect();
        // Cooperative: give up what moved, keep the rest; join again if anything moved.
        let revoked: Vec<TopicPartition> = self.assigned.difference(&assigned).cloned().collect();
        if !revoked.is_empty() {
            if self.spec.commit == CommitMode::Auto {
                self.commit(coordinator, None).await;
            }
            self.revoke(&revoked);
        }
        let added: Vec<TopicPartition> = assigned.difference(&self.assigned).cloned().collect();
        for tp in &added {
            self.positions.insert(tp.clone(), None);
        }
        self.assigned = assigned;
        let partitions: Vec<Val> = self
            .assigned
            .iter()
            .map(|tp| Val::from(tp.to_string()))
            .collect();
        self.op(
            OpType::Ok,
            "assign",
            val!({
                "group": self.group(),
                "generation": generation,
                "member": member_id.as_str(),
                "partitions": Val::array(partitions),
            }),
        );
        let mut s = self.state();
        s.stable = true;
        s.rejoin_needed = !revoked.is_empty() && protocol == RebalanceProtocol::Cooperative;
        s.last_poll_ms = self.ctx.clock.elapsed_ms();
        s.last_heartbeat_ms = s.last_poll_ms;
        true
    }

    /// The rebalance protocol of the first assignor: what the whole group will agree on when
    /// its members are configured alike.
    fn protocol(&self) -> RebalanceProtocol {
        self.spec
            .assignors
            .first()
            .map_or(RebalanceProtocol::Eager, |a| a.protocol())
    }

    /// Gives partitions up: positions and fetched records of them are dropped.
    fn revoke(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.assigned.remove(tp);
            self.positions.remove(tp);
        }
        self.buffer.retain(|(tp, _, _)| !partitions.contains(tp));
        let generation = self.state().generation;
        let names: Vec<Val> = partitions
            .iter()
            .map(|tp| Val::from(tp.to_string()))
            .collect();
        self.op(
            OpType::Ok,
            "revoke",
            val!({ "group": self.group(), "generation": generation, "partitions": Val::array(names) }),
        );
    }

    /// The group leader's assignment, as the chosen assignor makes it.
    fn assign_as_leader(
        &self,
        kind: AssignorKind,
        members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
    ) -> Vec<SyncGroupRequestAssignment> {
        let subscriptions: Vec<MemberSubscription> = members
            .iter()
            .map(|m| decode_subscription(&m.member_id, m.group_instance_id.as_ref(), &m.metadata))
            .collect();
        let mut partitions = BTreeMap::new();
        for s in &subscriptions {
            for topic in &s.topics {
                if let Some(count) = self.view.partition_count(topic) {
                    partitions.insert(topic.clone(), count);
                }
            }
        }
        kind.assign(&partitions, &subscriptions)
            .into_iter()
            .map(|(member, tps)| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(str_bytes(&member))
                    .with_assignment(encode_assignment(&tps))
            })
            .collect()
    }

    /// Positions of newly assigned partitions: the group's committed offset, else
    /// `auto.offset.reset`.
    async fn find_positions(&mut self, coordinator: i32) -> bool {
        let unknown: Vec<TopicPartition> = self
            .positions
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in &unknown {
            by_topic
                .entry(&tp.topic)
                .or_default()
                .push(tp.partition as i32);
        }
        let request = RequestKind::OffsetFetch(
            OffsetFetchRequest::default()
                .with_require_stable(true)
                .with_groups(vec![OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(str_bytes(self.group())))
                    .with_topics(Some(
                        by_topic
                            .into_iter()
                            .map(|(t, ps)| {
                                OffsetFetchRequestTopics::default()
                                    .with_name(topic_name(t))
                                    .with_partition_indexes(ps)
                            })
                            .collect(),
                    ))]),
        );
        let response = match self.send(coordinator, ApiKey::OffsetFetch, &request).await {
            Ok(ResponseKind::OffsetFetch(r)) => r,
            _ => {
                self.coordinator_lost(coordinator);
                return false;
            }
        };
        let Some(group) = response.groups.first() else {
            return false;
        };
        if group.error_code != 0 {
            if COORDINATOR_ERRORS.contains(&group.error_code) {
                self.coordinator_lost(coordinator);
            }
            return false;
        }
        for topic in &group.topics {
            for p in &topic.partitions {
                let tp = TopicPartition {
                    topic: topic.name.0.to_string(),
                    partition: p.partition_index as u32,
                };
                if p.error_code == 0 && p.committed_offset >= 0 && self.positions.contains_key(&tp)
                {
                    self.positions.insert(tp.clone(), Some(p.committed_offset));
                    self.op(
                        OpType::Ok,
                        "reset",
                        val!({ "partition": tp.to_string(), "to": p.committed_offset, "committed": true }),
                    );
                }
            }
        }
        let still: Vec<TopicPartition> = self
            .positions
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in still {
            if !self.reset(&tp).await {
                return false;
            }
        }
        true
    }

    /// `auto.offset.reset` with `ListOffsets`.
    async fn reset(&mut self, tp: &TopicPartition) -> bool {
        let timestamp = match self.spec.consumer.auto_offset_reset {
            OffsetReset::Earliest => -2,
            OffsetReset::Latest => -1,
            OffsetReset::None => {
                self.op(
                    OpType::Fail,
                    "reset",
                    val!({ "partition": tp.to_string(), "error": "NoOffsetForPartition" }),
                );
                return false;
            }
        };
        let Some(leader) = self.view.leader(tp) else {
            self.view.mark_stale();
            return false;
        };
        let request = RequestKind::ListOffsets(
            ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic_name(&tp.topic))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(tp.partition as i32)
                        .with_current_leader_epoch(-1)
                        .with_timestamp(timestamp)])]),
        );
        let offset = match self
            .send(leader.broker, ApiKey::ListOffsets, &request)
            .await
        {
            Ok(ResponseKind::ListOffsets(r)) => r
                .topics
                .first()
                .and_then(|t| t.partitions.first())
                .filter(|p| p.error_code == 0)
                .map(|p| p.offset),
            _ => None,
        };
        match offset {
            Some(offset) => {
                self.positions.insert(tp.clone(), Some(offset));
                self.op(
                    OpType::Ok,
                    "reset",
                    val!({ "partition": tp.to_string(), "to": offset }),
                );
                true
            }
            None => {
                self.view.mark_stale();
                false
            }
        }
    }

    /// `poll`: auto-commit when due, return up to `max.poll.records` (fetching when nothing is
    /// buffered), then process and commit as the workload says.
    async fn poll(&mut self, coordinator: i32) -> bool {
        self.state().last_poll_ms = self.now();
        if self.spec.commit == CommitMode::Auto && self.now() >= self.next_auto_commit_ms {
            self.next_auto_commit_ms = self.now() + self.spec.auto_commit_interval_ms;
            self.commit(coordinator, None).await;
        }
        if self.buffer.is_empty() && !self.fetch().await {
            return false;
        }
        let n = self.spec.max_poll_records.min(self.buffer.len());
        if n == 0 {
            return true;
        }
        let polled: Polled = self.buffer.drain(..n).collect();
        for (tp, offset, _) in &polled {
            self.positions.insert(tp.clone(), Some(offset + 1));
        }
        let records: Vec<Val> = polled
            .iter()
            .map(|(tp, offset, value)| {
                val!({ "partition": tp.to_string(), "offset": *offset, "value": value.clone() })
            })
            .collect();
        self.op(OpType::Invoke, "poll", val!({ "group": self.group() }));
        self.op(
            OpType::Ok,
            "poll",
            val!({ "group": self.group(), "records": Val::array(records) }),
        );
        let offsets: BTreeMap<TopicPartition, i64> = polled
            .iter()
            .map(|(tp, offset, _)| (tp.clone(), offset + 1))
            .collect();
        match self.spec.commit {
            CommitMode::AfterProcessing => {
                self.process(&polled).await;
                self.commit(coordinator, Some(offsets)).await;
            }
            CommitMode::BeforeProcessing => {
                self.commit(coordinator, Some(offsets)).await;
                self.process(&polled).await;
            }
            CommitMode::Auto => match &self.worker {
                Some(worker) => {
                    let _ = worker.send(polled);
                }
                None => self.process(&polled).await,
            },
        }
        true
    }

    async fn process(&self, polled: &Polled) {
        process_records(&self.ctx, &self.spec, polled).await;
    }

    /// `commitSync` of `offsets` (or of every position, for auto-commit), retried on the
    /// coordinator's retriable errors a few times. Returns whether it was committed.
    async fn commit(
        &mut self,
        coordinator: i32,
        offsets: Option<BTreeMap<TopicPartition, i64>>,
    ) -> bool {
        let offsets: BTreeMap<TopicPartition, i64> = match offsets {
            Some(offsets) => offsets,
            None => self
                .positions
                .iter()
                .filter_map(|(tp, p)| p.map(|p| (tp.clone(), p)))
                .collect(),
        };
        if offsets.is_empty() {
            return true;
        }
        let (member_id, generation, stable) = {
            let s = self.state();
            (s.member_id.clone(), s.generation, s.stable)
        };
        if !stable {
            // `CommitFailedException` before anything is sent: the member is not in a stable
            // generation (it left, or learned it was dropped), so it has no right to commit.
            self.op(
                OpType::Fail,
                "commit",
                val!({ "group": self.group(), "generation": generation, "error": "CommitFailedException: not part of an active group" }),
            );
            self.state().rejoin_needed = true;
            return false;
        }
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        let mut shown = Vec::new();
        for (tp, offset) in &offsets {
            by_topic.entry(&tp.topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition as i32)
                    .with_committed_offset(*offset)
                    .with_committed_leader_epoch(-1),
            );
            shown.push((tp.to_string(), Val::from(*offset)));
        }
        let request = RequestKind::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(GroupId(str_bytes(self.group())))
                .with_generation_id_or_member_epoch(generation)
                .with_member_id(str_bytes(&member_id))
                .with_group_instance_id(self.spec.group_instance_id.as_deref().map(str_bytes))
                .with_retention_time_ms(-1)
                .with_topics(
                    by_topic
                        .into_iter()
                        .map(|(t, ps)| {
                            OffsetCommitRequestTopic::default()
                                .with_name(topic_name(t))
                                .with_partitions(ps)
                        })
                        .collect(),
                ),
        );
        let group = self.spec.group.clone();
        let value_with = |error: Option<&str>| {
            let offsets = Val::object(shown.iter().map(|(k, v)| (k.as_str(), v.clone())));
            match error {
                None => {
                    val!({ "group": group.as_str(), "generation": generation, "offsets": offsets })
                }
                Some(e) => {
                    val!({ "group": group.as_str(), "generation": generation, "offsets": offsets, "error": e })
                }
            }
        };
        let value = value_with(None);
        self.op(OpType::Invoke, "commit", value.clone());
        let mut coordinator = coordinator;
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
                match self.coordinator().await {
                    Some(c) => coordinator = c,
                    None => continue,
                }
            }
            let response = match self.send(coordinator, ApiKey::OffsetCommit, &request).await {
                Ok(ResponseKind::OffsetCommit(r)) => r,
                Ok(_) | Err(ClientError::NotSent(_)) => {
                    self.coordinator_lost(coordinator);
                    continue;
                }
                Err(_) => {
                    // Sent, unanswered: it may have landed.
                    self.coordinator_lost(coordinator);
                    self.op(OpType::Info, "commit", value);
                    return false;
                }
            };
            let code = response
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| p.error_code)
                .find(|&c| c != 0)
                .unwrap_or(0);
            match code {
                0 => {
                    self.op(OpType::Ok, "commit", value);
                    return true;
                }
                c if COORDINATOR_ERRORS.contains(&c) => {
                    self.coordinator_lost(coordinator);
                    continue;
                }
                c => {
                    let error =
                        ResponseError::try_from_code(c).map_or(c.to_string(), |e| format!("{e:?}"));
                    self.op(OpType::Fail, "commit", value_with(Some(&error)));
                    let mut s = self.state();
                    s.rejoin_needed = true;
                    if c == UNKNOWN_MEMBER_ID || c == FENCED_INSTANCE_ID {
                        s.member_id.clear();
                        s.generation = -1;
                    }
                    return false;
                }
            }
        }
        self.op(
            OpType::Fail,
            "commit",
            value_with(Some("coordinator not available")),
        );
        false
    }

    /// Fetches every assigned partition with a position from its leader into the buffer.
    async fn fetch(&mut self) -> bool {
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, i64, i32)>> = BTreeMap::new();
        for (tp, position) in &self.positions {
            let Some(position) = position else { continue };
            match self.view.leader(tp) {
                Some(leader) => by_leader.entry(leader.broker).or_default().push((
                    tp.clone(),
                    *position,
                    leader.epoch,
                )),
                None => {
                    self.view.mark_stale();
                    return false;
                }
            }
        }
        if by_leader.is_empty() {
            // Nothing assigned: an idle member still polls (and heartbeats).
            tokio::time::sleep(Duration::from_millis(
                self.spec.consumer.fetch_max_wait_ms as u64,
            ))
            .await;
            return true;
        }
        let mut ok = true;
        for (broker, partitions) in by_leader {
            ok &= self.fetch_from(broker, &partitions).await;
        }
        ok
    }

    async fn fetch_from(&mut self, broker: i32, partitions: &[(TopicPartition, i64, i32)]) -> bool {
        let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
        for (tp, position, epoch) in partitions {
            topics.entry(&tp.topic).or_default().push(
                FetchPartition::default()
                    .with_partition(tp.partition as i32)
                    .with_current_leader_epoch(*epoch)
                    .with_last_fetched_epoch(-1)
                    .with_fetch_offset(*position)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(self.spec.consumer.max_partition_fetch_bytes),
            );
        }
        let request = RequestKind::Fetch(
            FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(self.spec.consumer.fetch_max_wait_ms)
                .with_min_bytes(self.spec.consumer.fetch_min_bytes)
                .with_max_bytes(52_428_800)
                .with_isolation_level(0)
                .with_session_epoch(-1)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(topic, parts)| {
                            FetchTopic::default()
                                .with_topic(topic_name(topic))
                                .with_partitions(parts)
                        })
                        .collect(),
                ),
        );
        let response = match self.send(broker, ApiKey::Fetch, &request).await {
            Ok(ResponseKind::Fetch(r)) => r,
            _ => {
                self.view.mark_stale();
                return false;
            }
        };
        for topic in response.responses {
            for p in topic.partitions {
                let tp = TopicPartition {
                    topic: topic.topic.0.to_string(),
                    partition: p.partition_index as u32,
                };
                let Some(Some(position)) = self.positions.get(&tp).copied() else {
                    continue;
                };
                if p.error_code != 0 {
                    if ResponseError::try_from_code(p.error_code)
                        == Some(ResponseError::OffsetOutOfRange)
                    {
                        self.positions.insert(tp, None);
                    } else {
                        self.view.mark_stale();
                    }
                    continue;
                }
                let (records, _) = decode_fetched(position, p.records.as_deref().unwrap_or(&[]));
                for (offset, value) in records {
                    self.buffer.push_back((tp.clone(), offset, value));
                }
            }
        }
        true
    }
}

/// The application's processing of one poll's records: it takes `processing_ms`, then the
/// `process` operation lists what was done.
async fn process_records(ctx: &ClientContext, spec: &GroupConsumerSpec, polled: &Polled) {
    if spec.processing_ms > 0 {
        tokio::time::sleep(Duration::from_millis(spec.processing_ms)).await;
    }
    let mut ranges: BTreeMap<&TopicPartition, (i64, i64)> = BTreeMap::new();
    for (tp, offset, _) in polled {
        let range = ranges.entry(tp).or_insert((*offset, *offset));
        range.0 = range.0.min(*offset);
        range.1 = range.1.max(*offset);
    }
    let ranges: Vec<Val> = ranges
        .into_iter()
        .map(|(tp, (lo, hi))| {
            Val::array(vec![
                Val::from(tp.to_string()),
                Val::from(lo),
                Val::from(hi),
            ])
        })
        .collect();
    ctx.recorder.op_val(
        &ctx.id,
        OpType::Ok,
        "process",
        val!({ "group": spec.group.as_str(), "ranges": Val::array(ranges) }),
    );
}

/// The worker of a handoff application: processes the polled records in the order they came.
async fn process_worker(
    ctx: ClientContext,
    spec: GroupConsumerSpec,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Polled>,
) {
    // Each cycle takes everything queued so far and processes it together.
    while let Some(mut polled) = rx.recv().await {
        while let Ok(more) = rx.try_recv() {
            polled.extend(more);
        }
        process_records(&ctx, &spec, &polled).await;
    }
}

/// The heartbeat thread: every `heartbeat.interval.ms` while the member is in a stable
/// generation it heartbeats; it leaves the group when the application has not polled within
/// `max.poll.interval.ms`, and flags a rejoin when the coordinator says so.
async fn heartbeat(ctx: ClientContext, spec: GroupConsumerSpec, shared: Shared) {
    let mut view = ClusterView::new(ctx.clone());
    view.request_timeout = Duration::from_millis(spec.session_timeout_ms.max(1) as u64);
    loop {
        tokio::time::sleep(Duration::from_millis(spec.heartbeat_interval_ms)).await;
        let (coordinator, member_id, generation, stable, last_poll) = {
            let s = shared.lock().expect("membership lock");
            (
                s.coordinator,
                s.member_id.clone(),
                s.generation,
                s.stable,
                s.last_poll_ms,
            )
        };
        let (Some(coordinator), true) = (coordinator, stable) else {
            continue;
        };
        if view.partition_count(&spec.consumer.topics[0]).is_none() || view.is_stale() {
            let _ = view.refresh(&spec.consumer.topics).await;
        }
        let group = GroupId(str_bytes(&spec.group));
        let expired = ctx.clock.elapsed_ms() > last_poll + spec.max_poll_interval_ms as u64;
        let Ok(conn) = view.connection(coordinator).await else {
            view.mark_stale();
            continue;
        };
        if expired {
            // "consumer poll timeout has expired": leave, so the group rebalances without us.
            let request = RequestKind::LeaveGroup(
                LeaveGroupRequest::default()
                    .with_group_id(group)
                    .with_members(vec![MemberIdentity::default()
                        .with_member_id(str_bytes(&member_id))
                        .with_group_instance_id(
                            spec.group_instance_id.as_deref().map(str_bytes),
                        )]),
            );
            ctx.recorder.op_val(
                &ctx.id,
                OpType::Info,
                "leave",
                val!({ "group": spec.group.as_str(), "generation": generation, "reason": "max.poll.interval.ms expired" }),
            );
            let _ = conn
                .send(
                    ApiKey::LeaveGroup,
                    client_version(ApiKey::LeaveGroup),
                    &request,
                    view.request_timeout,
                )
                .await;
            let mut s = shared.lock().expect("membership lock");
            if spec.group_instance_id.is_none() {
                s.member_id.clear();
            }
            s.generation = -1;
            s.stable = false;
            s.rejoin_needed = true;
            continue;
        }
        let request = RequestKind::Heartbeat(
            HeartbeatRequest::default()
                .with_group_id(group)
                .with_generation_id(generation)
                .with_member_id(str_bytes(&member_id))
                .with_group_instance_id(spec.group_instance_id.as_deref().map(str_bytes)),
        );
        let code = match conn
            .send(
                ApiKey::Heartbeat,
                client_version(ApiKey::Heartbeat),
                &request,
                view.request_timeout,
            )
            .await
        {
            Ok(ResponseKind::Heartbeat(r)) => r.error_code,
            _ => {
                view.disconnect(coordinator);
                16
            }
        };
        let mut s = shared.lock().expect("membership lock");
        if s.generation != generation || s.member_id != member_id {
            continue; // the loop moved on meanwhile
        }
        if !COORDINATOR_ERRORS.contains(&code) {
            s.last_heartbeat_ms = ctx.clock.elapsed_ms();
        }
        match code {
            0 => {}
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => s.rejoin_needed = true,
            UNKNOWN_MEMBER_ID | FENCED_INSTANCE_ID => {
                s.member_id.clear();
                s.generation = -1;
                s.stable = false;
                s.rejoin_needed = true;
            }
            c if COORDINATOR_ERRORS.contains(&c) => {
                if s.coordinator == Some(coordinator) {
                    s.coordinator = None;
                }
            }
            _ => {}
        }
    }
}

/// `ConsumerProtocolSubscription` v2 (topics, owned partitions, generation), with its version
/// in front as the consumer protocol writes it.
fn encode_subscription(topics: &[String], owned: &[TopicPartition], generation: i32) -> Bytes {
    const VERSION: i16 = 2;
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in owned {
        by_topic
            .entry(&tp.topic)
            .or_default()
            .push(tp.partition as i32);
    }
    let subscription = ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| str_bytes(t)).collect())
        .with_owned_partitions(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    OwnedTopic::default()
                        .with_topic(topic_name(t))
                        .with_partitions(ps)
                })
                .collect(),
        )
        .with_generation_id(generation);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&VERSION.to_be_bytes());
    subscription
        .encode(&mut buf, VERSION)
        .expect("a subscription encodes");
    buf.freeze()
}

fn decode_subscription(
    member_id: &StrBytes,
    instance: Option<&StrBytes>,
    metadata: &Bytes,
) -> MemberSubscription {
    let mut subscription = MemberSubscription::new(member_id.as_str(), &[]);
    subscription.group_instance_id = instance.map(|s| s.to_string());
    let mut buf = metadata.clone();
    if buf.len() < 2 {
        return subscription;
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]).clamp(0, 3);
    let _ = bytes::Buf::get_i16(&mut buf);
    if let Ok(decoded) = ConsumerProtocolSubscription::decode(&mut buf, version) {
        subscription.topics = decoded.topics.iter().map(|t| t.to_string()).collect();
        subscription.owned = decoded
            .owned_partitions
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| TopicPartition {
                    topic: t.topic.0.to_string(),
                    partition: *p as u32,
                })
            })
            .collect();
        subscription.generation = decoded.generation_id;
    }
    subscription
}

/// `ConsumerProtocolAssignment` v2, versioned.
fn encode_assignment(partitions: &[TopicPartition]) -> Bytes {
    const VERSION: i16 = 2;
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic
            .entry(&tp.topic)
            .or_default()
            .push(tp.partition as i32);
    }
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        by_topic
            .into_iter()
            .map(|(t, ps)| {
                AssignedTopic::default()
                    .with_topic(topic_name(t))
                    .with_partitions(ps)
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&VERSION.to_be_bytes());
    assignment
        .encode(&mut buf, VERSION)
        .expect("an assignment encodes");
    buf.freeze()
}

fn decode_assignment(bytes: &Bytes) -> Vec<TopicPartition> {
    let mut buf = bytes.clone();
    if buf.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]).clamp(0, 3);
    let _ = bytes::Buf::get_i16(&mut buf);
    let Ok(decoded) = ConsumerProtocolAssignment::decode(&mut buf, version) else {
        return Vec::new();
    };
    decoded
        .assigned_partitions
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| TopicPartition {
                topic: t.topic.0.to_string(),
                partition: *p as u32,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, partition: u32) -> TopicPartition {
        TopicPartition {
            topic: topic.to_string(),
            partition,
        }
    }

    #[test]
    fn subscriptions_and_assignments_round_trip_through_the_consumer_protocol() {
        let owned = vec![tp("orders", 0), tp("orders", 2)];
        let bytes = encode_subscription(&["orders".to_string()], &owned, 7);
        assert_eq!(&bytes[..2], &2i16.to_be_bytes());
        let decoded = decode_subscription(&str_bytes("m-1"), None, &bytes);
        assert_eq!(decoded.member_id, "m-1");
        assert_eq!(decoded.topics.iter().collect::<Vec<_>>(), vec!["orders"]);
        assert_eq!(decoded.owned, owned);
        assert_eq!(decoded.generation, 7);
        let assigned = vec![tp("a", 1), tp("b", 0), tp("b", 3)];
        assert_eq!(decode_assignment(&encode_assignment(&assigned)), assigned);
        assert!(decode_assignment(&Bytes::from_static(&[0])).is_empty());
    }
}
