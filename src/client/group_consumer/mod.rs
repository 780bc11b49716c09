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

mod commit;
mod heartbeat;
mod pipeline;
mod poll;
mod protocol;

pub(crate) use protocol::decode_assignment;
mod rebalance;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, BrokerId, ConsumerProtocolAssignment, ConsumerProtocolSubscription,
    FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    OffsetCommitRequest, OffsetFetchRequest, RequestKind, ResponseKind, SyncGroupRequest,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use samsa_sim::history::OpType;
use samsa_sim::val;
use samsa_sim::val::Val;

use super::assignor::{AssignorKind, MemberSubscription, RebalanceProtocol};
use super::cluster::ClusterView;
use super::consumer::{ConsumerSpec, OffsetReset};
use super::{sleep_until_ms, ClientContext, RETRY_BACKOFF_MS};
use crate::protocol::versions::client_version;
use crate::protocol::{ClientError, Connection};
use crate::scenario::TopicPartition;

/// When the application commits, relative to processing a poll's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitMode {
    /// Process, then `commitSync` (at least once).
    AfterProcessing,
    /// Process, then `commitAsync`: not waited for, not retried.
    AfterProcessingAsync,
    /// `commitSync`, then process (at most once).
    BeforeProcessing,
    /// `enable.auto.commit`: each poll first commits what earlier polls returned, every
    /// `auto.commit.interval.ms`, and so does a rebalance.
    Auto,
    /// A consume-transform-produce pipeline: each poll's outputs and its offsets commit in one
    /// transaction (`sendOffsetsToTransaction`), or neither does.
    Transactional,
}

/// What a pipeline member writes: each input record's value, prefixed, to `output`, through a
/// transactional producer.
#[derive(Clone, Debug)]
pub struct PipelineSpec {
    pub output: String,
    pub prefix: String,
    /// `transactional.id` is set (one per member, kept across its restarts).
    pub producer: crate::client::producer::ProducerConfig,
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
    /// From `.0` (run time line) processing stalls until `.0 + .1`.
    pub stall: Option<(u64, u64)>,
    /// `metadata.max.age.ms`: the metadata is refreshed at least this often, so the group's
    /// leader sees a subscribed topic grow and asks for a rebalance.
    pub metadata_max_age_ms: u64,
    /// A pipeline member's output (with `CommitMode::Transactional`).
    pub pipeline: Option<PipelineSpec>,
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
    tokio::spawn(heartbeat::heartbeat(
        ctx.clone(),
        spec.clone(),
        shared.clone(),
    ));
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
        epochs: BTreeMap::new(),
        last_metadata_ms: 0,
        assigned_counts: None,
        validated: BTreeMap::new(),
        next_auto_commit_ms: 0,
        worker,
        producer: None,
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
    buffer: VecDeque<(TopicPartition, i64, Option<String>, i32)>,
    /// The leader epoch of the last record returned per partition (the position's epoch).
    epochs: BTreeMap<TopicPartition, i32>,
    /// When this member last refreshed its metadata (run time line).
    last_metadata_ms: u64,
    /// As the group's leader: the partition counts its assignment was made with
    /// (`assignmentSnapshot`), to rejoin when a subscribed topic changes.
    assigned_counts: Option<BTreeMap<String, u32>>,
    /// The leader epoch each position was last validated in (KIP-320).
    validated: BTreeMap<TopicPartition, i32>,
    next_auto_commit_ms: u64,
    worker: Option<tokio::sync::mpsc::UnboundedSender<Polled>>,
    /// A pipeline member's transactional producer, once initialized.
    producer: Option<crate::client::producer::KafkaProducer>,
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

impl Member {
    pub(super) fn now(&self) -> u64 {
        self.ctx.clock.elapsed_ms()
    }

    pub(super) fn op(&self, kind: OpType, f: &str, value: Val) {
        self.ctx.recorder.op_val(&self.ctx.id, kind, f, value);
    }

    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, Membership> {
        self.shared.lock().expect("membership lock")
    }

    pub(super) fn group(&self) -> &str {
        &self.spec.group
    }

    /// One turn of the application's loop. False when it made no progress.
    pub(super) async fn round(&mut self) -> bool {
        let aged = self.now() >= self.last_metadata_ms + self.spec.metadata_max_age_ms;
        if aged
            || self.view.is_stale()
            || self
                .view
                .partition_count(&self.spec.consumer.topics[0])
                .is_none()
        {
            let topics = self.spec.consumer.topics.clone();
            self.last_metadata_ms = self.now();
            if self.view.refresh(&topics).await.is_err() {
                return false;
            }
            self.rejoin_if_topics_changed();
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

    /// The leader's check after each metadata refresh: a subscribed topic whose partition count
    /// differs from the one its assignment used makes the group rebalance.
    fn rejoin_if_topics_changed(&mut self) {
        let Some(counts) = &self.assigned_counts else {
            return;
        };
        let changed = counts
            .iter()
            .any(|(topic, &count)| self.view.partition_count(topic).is_some_and(|c| c != count));
        if changed {
            self.assigned_counts = None;
            self.state().rejoin_needed = true;
        }
    }

    /// The coordinator, found with `FindCoordinator` when unknown.
    pub(super) async fn coordinator(&mut self) -> Option<i32> {
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

    pub(super) fn coordinator_lost(&mut self, coordinator: i32) {
        let mut s = self.state();
        if s.coordinator == Some(coordinator) {
            s.coordinator = None;
        }
    }

    pub(super) async fn send(
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
