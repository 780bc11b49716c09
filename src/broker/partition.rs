//! One partition replica on this broker: its log, its role (leader or follower, in which leader
//! epoch), its high watermark, and as leader what it knows of each follower. Kafka's `Partition`
//! class holds the same; the rules below are Kafka's, named after its methods.
//!
//! **Leader.** The high watermark is the smallest log end offset among the leader and the
//! followers of the (maximal) ISR, and of followers caught up enough to be about to join it
//! (`maybeIncrementLeaderHW`). A follower's log end offset is the offset its last fetch asked
//! for. With strict min ISR (KIP-966, the contract's `eligible-leader-replicas = true`) the high
//! watermark stands still while the ISR is smaller than `min.insync.replicas`. A follower that
//! has not caught up to the leader's log end within `replica.lag.time.max.ms` leaves the ISR; one
//! that reaches the high watermark (and the start of this leader's epoch) joins it. Both are
//! proposals to the controller (`AlterPartition`) that count once committed; until then the
//! proposal is pending and the high watermark waits for the larger ISR of the two.
//!
//! **Follower.** It fetches from the log end offset and takes the leader's high watermark,
//! capped at its own log end. How it truncates is the contract's `[protocol] truncation`:
//! `leader-epoch` (KIP-101, KIP-279) — each fetch carries the epoch of its last batch, and the
//! leader answers a divergence with where that epoch ended on its side; `high-watermark` (before
//! KIP-101) — a replica that becomes a follower truncates to its own high watermark.
//!
//! Trace events (node `broker-<id>`): `append` (a leader's), `replica-append` (a follower's),
//! `hw` {partition, broker, hw, leo, role, leader_epoch, epoch_start} on every change of a high
//! watermark, `truncate` {partition, broker, from, to, hw, reason, leader_epoch}.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use samsa_sim::val;
use serde_json::json;

use super::{BrokerConfig, BrokerContext, PlantedBug, ReplicationConfig};
use crate::metadata::PartitionMeta;
use crate::scenario::{TopicPartition, Truncation};
use crate::storage::batch;
use crate::storage::cleaner::CleanerConfig;
use crate::storage::log::{AppendInfo, Log, LogError, RecoveryReport};
use crate::storage::producer_state::AppendOrigin;
use crate::storage::producer_state::{ProducerError, ProducerStateEntry};
use crate::storage::retention::RetentionConfig;
use crate::storage::segment::{RollReason, TimestampAndOffset};
use crate::storage::txn_index::AbortedTxn;
use crate::world::{Clock, SharedRecorder};

/// Kafka's `UnknownOffset`: a follower whose position this leader has not learned yet.
const UNKNOWN_OFFSET: i64 = -1;

/// What the leader knows of one follower (Kafka's `ReplicaState`).
#[derive(Clone, Copy, Debug)]
struct FollowerState {
    /// The follower's log end offset: the offset its last fetch asked for.
    leo: i64,
    last_fetch_ms: i64,
    /// The leader's log end offset when the follower last fetched.
    last_fetch_leader_leo: i64,
    /// The last time the follower had everything the leader had (Kafka's `lastCaughtUpTimeMs`).
    last_caught_up_ms: i64,
    /// The broker epoch its last fetch carried (KIP-903); -1 when unknown.
    broker_epoch: i64,
}

impl FollowerState {
    /// A new leader's view of a follower (`resetReplicaState`): position unknown, and caught up
    /// now if it is in the ISR (so it is not shrunk out before it had a chance to fetch).
    fn reset(now_ms: i64, in_isr: bool) -> Self {
        FollowerState {
            leo: UNKNOWN_OFFSET,
            last_fetch_ms: 0,
            last_fetch_leader_leo: UNKNOWN_OFFSET,
            last_caught_up_ms: if in_isr { now_ms } else { 0 },
            broker_epoch: -1,
        }
    }

    /// Kafka's `isCaughtUp`: at the leader's end, or caught up within the lag time.
    fn is_caught_up(&self, leader_leo: i64, now_ms: i64, lag_time_max_ms: i64) -> bool {
        self.leo == leader_leo || now_ms - self.last_caught_up_ms <= lag_time_max_ms
    }
}

/// An ISR change this leader asks the controller for (`AlterPartition`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrProposal {
    pub tp: TopicPartition,
    pub topic_id: String,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// The proposed ISR, each member with the broker epoch its fetches carried (KIP-903).
    pub isr: Vec<(i32, i64)>,
}

pub struct Partition {
    pub tp: TopicPartition,
    /// The topic's id (KIP-516) this replica belongs to.
    pub topic_id: String,
    log: Log,
    /// The leader and its epoch as the last image gave them (-1: none yet).
    leader: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    replicas: Vec<i32>,
    /// The ISR as committed by the controller.
    isr: Vec<i32>,
    /// An ISR this leader proposed that is not committed yet (Kafka's `PendingExpandIsr` and
    /// `PendingShrinkIsr`).
    pending_isr: Option<Vec<i32>>,
    high_watermark: i64,
    /// As leader: the log end offset when this epoch began (`leaderEpochStartOffsetOpt`).
    epoch_start_offset: i64,
    followers: BTreeMap<i32, FollowerState>,
    min_insync_replicas: i64,
    retention: RetentionConfig,
    cleaner: CleanerConfig,
    planted_bug: Option<PlantedBug>,
    replication: ReplicationConfig,
    node: String,
    broker_id: i32,
    recorder: SharedRecorder,
    clock: Clock,
    /// Woken on every append and high-watermark change of this broker's partitions.
    progress: Arc<super::Signal>,
    /// Woken on every change of this partition (append, high watermark, role, truncation, and
    /// when it closes): the fetches and `acks=all` produces waiting on it look again, as
    /// Kafka's purgatories key delayed operations by partition (`TopicPartitionOperationKey`).
    changed: super::Signal,
}

impl Drop for Partition {
    fn drop(&mut self) {
        // Whoever waits on a partition this broker no longer hosts finds out at once.
        self.changed.wake();
    }
}

/// What a consumer's read of a partition finds.
pub enum Committed {
    Records(Bytes),
    OffsetOutOfRange,
}

/// Why a produce to this partition was refused.
#[derive(Debug)]
pub enum AppendError {
    NotLeader,
    NotEnoughReplicas,
    Corrupt(String),
    /// Kafka's RECORD_LIST_TOO_LARGE: a batch larger than `segment.bytes`.
    RecordListTooLarge,
    Storage(std::io::Error),
    /// Kafka's INVALID_RECORD: a control batch from a client, a producer id without a sequence.
    InvalidRecord(String),
    /// The producer state refused the batch or marker: INVALID_PRODUCER_EPOCH,
    /// OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_TXN_STATE or TRANSACTION_COORDINATOR_FENCED.
    Producer(ProducerError),
}

impl AppendError {
    /// The Kafka error code to answer with.
    pub fn code(&self) -> i16 {
        match self {
            AppendError::NotLeader => 6,          // NOT_LEADER_OR_FOLLOWER
            AppendError::NotEnoughReplicas => 19, // NOT_ENOUGH_REPLICAS
            AppendError::Corrupt(_) => 2,         // CORRUPT_MESSAGE
            AppendError::RecordListTooLarge => 18,
            AppendError::Storage(_) => 56, // KAFKA_STORAGE_ERROR
            AppendError::InvalidRecord(_) => 87,
            AppendError::Producer(e) => e.code(),
        }
    }
}

impl From<LogError> for AppendError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::Io(e) => AppendError::Storage(e),
            LogError::RecordBatchTooLarge { .. } => AppendError::RecordListTooLarge,
            LogError::InvalidRecord(why) => AppendError::InvalidRecord(why),
            LogError::Producer(e) => AppendError::Producer(e),
            other => AppendError::Corrupt(other.to_string()),
        }
    }
}

/// Why a follower's fetch was refused by this leader.
#[derive(Debug, PartialEq, Eq)]
pub enum FetchError {
    NotLeader,
    /// The fetcher's leader epoch is older than ours (`FENCED_LEADER_EPOCH`).
    FencedLeaderEpoch,
    /// The fetcher's leader epoch is newer than ours (`UNKNOWN_LEADER_EPOCH`).
    UnknownLeaderEpoch,
    OffsetOutOfRange,
    Storage,
}

/// A leader's answer to one follower fetch of this partition.
pub struct ReplicaRead {
    pub records: Bytes,
    /// Where the follower's last fetched epoch ended here, if the follower's log diverges.
    pub diverging: Option<(i32, i64)>,
    /// An ISR expansion this fetch made due.
    pub proposal: Option<IsrProposal>,
}

/// One partition of a follower's fetch, as the leader sees it.
#[derive(Clone, Copy, Debug)]
pub struct FollowerFetch {
    pub replica: i32,
    /// Its registration's epoch if it is unfenced in our image (`None`: it may not join the ISR).
    pub broker_epoch: Option<i64>,
    pub fetch_offset: i64,
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
}

/// Where a follower fetches from (the fields of a `FetchPartition`).
pub struct FetchPosition {
    pub fetch_offset: i64,
    /// -1 in the `high-watermark` variant: no divergence check (before KIP-101).
    pub last_fetched_epoch: i32,
    pub current_leader_epoch: i32,
    pub log_start_offset: i64,
}

/// Why a segment rolled, by the config that made it roll.
fn roll_reason(reason: RollReason) -> &'static str {
    match reason {
        RollReason::SegmentBytes => "segment.bytes",
        RollReason::SegmentMs => "segment.ms",
        RollReason::IndexFull => "segment.index.bytes",
        RollReason::OffsetOverflow => "offset-overflow",
    }
}

fn storage_error(e: LogError) -> std::io::Error {
    match e {
        LogError::Io(e) => e,
        other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
    }
}

impl Partition {
    /// Opens (and recovers) the replica's log with no role yet; `apply` gives it one. The high
    /// watermark starts at the checkpointed one, within the log (Kafka's `initialHighWatermark`).
    pub async fn open(
        ctx: &BrokerContext,
        tp: TopicPartition,
        topic_id: &str,
        config: &BrokerConfig,
        checkpointed_hw: Option<i64>,
        progress: Arc<super::Signal>,
    ) -> std::io::Result<(Partition, RecoveryReport)> {
        let now_ms = ctx.clock.now_ms();
        let (mut log, report) =
            Log::open(ctx.disk.clone(), &tp.to_string(), config.log, now_ms).await?;
        let high_watermark = checkpointed_hw
            .unwrap_or(0)
            .clamp(log.log_start_offset(), log.log_end_offset());
        // Transactions the rebuild found decided below it are stable.
        log.on_high_watermark_updated(high_watermark);
        let partition = Partition {
            tp,
            topic_id: topic_id.to_string(),
            log,
            leader: -1,
            leader_epoch: -1,
            partition_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
            pending_isr: None,
            high_watermark,
            epoch_start_offset: UNKNOWN_OFFSET,
            followers: BTreeMap::new(),
            min_insync_replicas: config.min_insync_replicas,
            retention: config.retention,
            cleaner: config.cleaner,
            planted_bug: config.planted_bug,
            replication: ctx.replication.clone(),
            node: ctx.name.clone(),
            broker_id: ctx.id,
            recorder: ctx.recorder.clone(),
            clock: ctx.clock.clone(),
            progress,
            changed: super::Signal::default(),
        };
        Ok((partition, report))
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    pub fn leader(&self) -> i32 {
        self.leader
    }

    pub fn is_leader(&self) -> bool {
        self.leader == self.broker_id
    }

    pub fn retention_config(&self) -> &RetentionConfig {
        &self.retention
    }

    pub fn cleaner_config(&self) -> &CleanerConfig {
        &self.cleaner
    }

    /// The last stable offset (Kafka's `UnifiedLog.lastStableOffset`): the first offset of an
    /// open transaction, or of a decided one whose marker is not below the high watermark yet,
    /// if that is below the high watermark; else the high watermark.
    pub fn last_stable_offset(&self) -> i64 {
        self.log
            .first_unstable_offset()
            .map_or(self.high_watermark, |first| first.min(self.high_watermark))
    }

    /// The aborted transactions overlapping `[start_offset, upper_bound_offset)`, for a
    /// `read_committed` fetch (Kafka's `collectAbortedTransactions`).
    pub fn aborted_transactions(
        &self,
        start_offset: i64,
        upper_bound_offset: i64,
    ) -> Vec<AbortedTxn> {
        self.log
            .collect_aborted_transactions(start_offset, upper_bound_offset)
    }

    /// What this replica's log knows of a producer.
    pub fn producer_state(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.log.producer_state(producer_id)
    }

    /// Whether a new leader knows the committed offset yet: its high watermark has reached the
    /// start of its epoch (before that, Kafka answers `ListOffsets` with `OFFSET_NOT_AVAILABLE`,
    /// KIP-207).
    pub fn high_watermark_established(&self) -> bool {
        self.high_watermark >= self.epoch_start_offset
    }

    /// The log, for the log manager's retention, cleaning and flushes (under this partition's
    /// lock, as Kafka's `UnifiedLog` takes its own).
    pub(super) fn log_mut(&mut self) -> &mut Log {
        &mut self.log
    }

    pub(super) fn log(&self) -> &Log {
        &self.log
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn wake(&self) {
        self.progress.wake();
        self.changed.wake();
    }

    /// A wake-up at this partition's next change, registered now (see `Signal::listen`).
    pub(crate) fn listen(&self) -> super::Listener {
        self.changed.listen_owned()
    }

    fn role_name(&self) -> &'static str {
        if self.is_leader() {
            "leader"
        } else {
            "follower"
        }
    }

    fn set_high_watermark(&mut self, hw: i64) {
        if hw == self.high_watermark {
            return;
        }
        self.high_watermark = hw;
        self.log.on_high_watermark_updated(hw);
        self.trace_high_watermark();
        self.wake();
    }

    fn trace_high_watermark(&self) {
        let epoch_start = if self.is_leader() {
            self.epoch_start_offset
        } else {
            UNKNOWN_OFFSET
        };
        self.recorder.event_val(
            &self.node,
            "hw",
            val!({
                "partition": self.tp.to_string(),
                "broker": self.broker_id,
                "hw": self.high_watermark,
                "leo": self.log.log_end_offset(),
                "role": self.role_name(),
                "leader_epoch": self.leader_epoch,
                "epoch_start": epoch_start,
            }),
        );
    }

    /// A new image's view of this partition (Kafka's `makeLeader` / `makeFollower`). Returns
    /// whether the role or the leader epoch changed.
    pub async fn apply(&mut self, meta: &PartitionMeta) -> std::io::Result<bool> {
        let now_ms = self.now_ms();
        let was_leader = self.is_leader();
        let previous_leader = self.leader;
        let new_epoch = meta.leader != self.leader || meta.leader_epoch != self.leader_epoch;
        if meta.partition_epoch != self.partition_epoch {
            // A committed change: whatever this leader proposed is decided (Kafka replaces its
            // pending state with the committed one).
            self.pending_isr = None;
        }
        self.replicas = meta.replicas.clone();
        self.isr = meta.isr.clone();
        self.partition_epoch = meta.partition_epoch;
        self.leader = meta.leader;
        self.leader_epoch = meta.leader_epoch;
        if self.is_leader() {
            if new_epoch {
                self.become_leader(now_ms).await?;
            } else {
                self.followers.retain(|id, _| meta.replicas.contains(id));
                for &id in &meta.replicas {
                    if id != self.broker_id {
                        self.followers
                            .entry(id)
                            .or_insert_with(|| FollowerState::reset(now_ms, false));
                    }
                }
            }
            self.maybe_increment_high_watermark(now_ms);
        } else if new_epoch {
            self.followers.clear();
            self.epoch_start_offset = UNKNOWN_OFFSET;
            let leader_changed = was_leader || previous_leader != meta.leader;
            if self.replication.truncation == Truncation::HighWatermark && leader_changed {
                // Before KIP-101: what is above our own high watermark may not be the new
                // leader's, so it goes.
                self.truncate_to(self.high_watermark, "high-watermark")
                    .await?;
            }
        }
        self.wake();
        Ok(new_epoch)
    }

    /// `makeLeader`: this epoch starts at our log end offset; the followers' positions are
    /// unknown until they fetch.
    async fn become_leader(&mut self, now_ms: i64) -> std::io::Result<()> {
        if self.planted_bug == Some(PlantedBug::ForgetProducerStateOnFailover) {
            self.log.producer_state.forget_producers();
        }
        let leo = self.log.log_end_offset();
        self.epoch_start_offset = leo;
        self.log.assign_epoch_start(self.leader_epoch, leo).await?;
        self.followers = self
            .replicas
            .iter()
            .filter(|&&id| id != self.broker_id)
            .map(|&id| (id, FollowerState::reset(now_ms, self.isr.contains(&id))))
            .collect();
        // What clients are served from now on: its own high watermark, in the new epoch.
        self.trace_high_watermark();
        Ok(())
    }

    /// The ISR the high watermark waits for: the committed one and any pending proposal.
    fn maximal_isr(&self) -> Vec<i32> {
        let mut isr = self.isr.clone();
        for &id in self.pending_isr.iter().flatten() {
            if !isr.contains(&id) {
                isr.push(id);
            }
        }
        isr
    }

    /// How many replicas `min.insync.replicas` is held against: the committed ISR.
    fn insync_count(&self) -> i64 {
        if self.planted_bug == Some(PlantedBug::AcksCountOutsideIsr) {
            return self.replicas.len() as i64;
        }
        self.isr.len() as i64
    }

    /// `maybeIncrementLeaderHW`: returns whether the high watermark moved.
    fn maybe_increment_high_watermark(&mut self, now_ms: i64) -> bool {
        if !self.is_leader() {
            return false;
        }
        if self.replication.strict_min_isr && self.insync_count() < self.min_insync_replicas {
            return false;
        }
        let leo = self.log.log_end_offset();
        let lag = self.replication.lag_time_max_ms;
        let isr = self.maximal_isr();
        let mut new_hw = leo;
        for (id, f) in &self.followers {
            if isr.contains(id) || f.is_caught_up(leo, now_ms, lag) {
                new_hw = new_hw.min(f.leo);
            }
        }
        if new_hw > self.high_watermark {
            self.set_high_watermark(new_hw);
            return true;
        }
        false
    }

    /// Appends a producer's batch as leader. `acks=-1` needs at least `min.insync.replicas` in
    /// the ISR before the append (Kafka's `NOT_ENOUGH_REPLICAS`). `client` is the request's
    /// client id, traced with an idempotent or transactional batch's producer id and epoch.
    pub async fn append_as_leader(
        &mut self,
        batch: &mut Vec<u8>,
        acks: i16,
        client: &str,
    ) -> Result<AppendInfo, AppendError> {
        self.append_as_leader_from(batch, acks, client, AppendOrigin::Client)
            .await
    }

    /// `append_as_leader` of a coordinator's own batch (`AppendOrigin::Coordinator`).
    pub async fn append_as_leader_from(
        &mut self,
        batch: &mut Vec<u8>,
        acks: i16,
        client: &str,
        origin: AppendOrigin,
    ) -> Result<AppendInfo, AppendError> {
        if !self.is_leader() {
            return Err(AppendError::NotLeader);
        }
        if acks == -1 && self.insync_count() < self.min_insync_replicas {
            return Err(AppendError::NotEnoughReplicas);
        }
        if let Some(PlantedBug::PanicAtOffset(offset)) = self.planted_bug {
            assert!(
                self.log.log_end_offset() != offset,
                "planted bug: {} panics appending offset {offset} of {}",
                self.node,
                self.tp
            );
        }
        let now_ms = self.now_ms();
        let info = self
            .log
            .append_from(batch, self.leader_epoch, now_ms, origin)
            .await?;
        if info.duplicate {
            // Nothing written: the original append's offsets, which `acks=all` waits for too.
            return Ok(info);
        }
        self.trace_roll(&info);
        let mut event = val!({
            "partition": self.tp.to_string(),
            "broker": self.broker_id,
            "first": info.first_offset,
            "last": info.last_offset,
            "leo": self.log.log_end_offset(),
            "hw": self.high_watermark,
        });
        if let Ok(header) = batch::parse_header(batch) {
            if header.producer_id >= 0 {
                event = event
                    .with("pid", header.producer_id.into())
                    .with("epoch", i64::from(header.producer_epoch).into())
                    .with("client", client.into());
                if header.is_transactional() {
                    event = event.with("txn", true.into());
                }
            }
        }
        self.recorder.event_val(&self.node, "append", event);
        if !self.maybe_increment_high_watermark(now_ms) {
            self.wake();
        }
        Ok(info)
    }

    /// Writes a transaction marker as leader (`WriteTxnMarkers`, which Kafka appends with
    /// `acks=all`: at least `min.insync.replicas` in the ISR first; the caller then waits with
    /// `acks_all_done` for `last_offset`).
    pub async fn append_control_as_leader(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
    ) -> Result<AppendInfo, AppendError> {
        if !self.is_leader() {
            return Err(AppendError::NotLeader);
        }
        if self.insync_count() < self.min_insync_replicas {
            return Err(AppendError::NotEnoughReplicas);
        }
        let now_ms = self.now_ms();
        let info = self
            .log
            .append_control_as_leader(
                producer_id,
                producer_epoch,
                coordinator_epoch,
                commit,
                self.leader_epoch,
                now_ms,
            )
            .await?;
        self.trace_roll(&info);
        self.recorder.event_val(
            &self.node,
            "txn-marker",
            val!({
                "partition": self.tp.to_string(),
                "broker": self.broker_id,
                "offset": info.last_offset,
                "pid": producer_id,
                "epoch": i64::from(producer_epoch),
                "commit": commit,
                "leo": self.log.log_end_offset(),
                "hw": self.high_watermark,
            }),
        );
        if !self.maybe_increment_high_watermark(now_ms) {
            self.wake();
        }
        Ok(info)
    }

    fn trace_roll(&self, info: &AppendInfo) {
        if let Some(reason) = info.rolled {
            self.recorder.event(
                &self.node,
                "roll",
                json!({
                    "partition": self.tp.to_string(),
                    "broker": self.broker_id,
                    "base": info.first_offset,
                    "reason": roll_reason(reason),
                }),
            );
        }
    }

    /// Whether an `acks=all` produce whose last offset is `last_offset` is done
    /// (`checkEnoughReplicasReachOffset`): `None` while the high watermark is below it;
    /// `Some(Err(NotLeader))` once this replica no longer leads; after the high watermark passed
    /// it, `NotEnoughReplicas` (sent as `NOT_ENOUGH_REPLICAS_AFTER_APPEND`) if the ISR shrank
    /// below `min.insync.replicas` meanwhile.
    pub fn acks_all_done(&self, last_offset: i64, epoch: i32) -> Option<Result<(), AppendError>> {
        if !self.is_leader() || self.leader_epoch != epoch {
            return Some(Err(AppendError::NotLeader));
        }
        if self.high_watermark <= last_offset {
            return None;
        }
        if self.insync_count() < self.min_insync_replicas {
            return Some(Err(AppendError::NotEnoughReplicas));
        }
        Some(Ok(()))
    }

    /// A follower's fetch, as leader (`fetchRecords` with `updateFollowerFetchState`): checks its
    /// leader epoch and, with `last_fetched_epoch`, whether its log diverges from ours; records
    /// its position; and reads from `fetch_offset` up to our log end offset. `broker_epoch` is
    /// the follower's registration in our image if it is unfenced there (`None`: it may not
    /// join the ISR now).
    pub async fn read_for_follower(
        &mut self,
        fetch: &FollowerFetch,
        max_bytes: usize,
        record_position: bool,
    ) -> Result<ReplicaRead, FetchError> {
        let FollowerFetch {
            replica,
            broker_epoch,
            fetch_offset,
            current_leader_epoch,
            last_fetched_epoch,
        } = *fetch;
        if !self.is_leader() || !self.followers.contains_key(&replica) {
            return Err(FetchError::NotLeader);
        }
        if current_leader_epoch >= 0 && current_leader_epoch < self.leader_epoch {
            return Err(FetchError::FencedLeaderEpoch);
        }
        if current_leader_epoch > self.leader_epoch {
            return Err(FetchError::UnknownLeaderEpoch);
        }
        let leo = self.log.log_end_offset();
        if last_fetched_epoch >= 0 {
            let (epoch, end_offset) = self.log.end_offset_for_epoch(last_fetched_epoch);
            if epoch < last_fetched_epoch || end_offset < fetch_offset {
                return Ok(ReplicaRead {
                    records: Bytes::new(),
                    diverging: Some((epoch, end_offset)),
                    proposal: None,
                });
            }
        }
        if fetch_offset > leo || fetch_offset < self.log.log_start_offset() {
            return Err(FetchError::OffsetOutOfRange);
        }
        let now_ms = self.now_ms();
        let mut proposal = None;
        if record_position {
            proposal = self.update_follower(replica, broker_epoch, fetch_offset, now_ms);
        }
        let records = match self.log.read(fetch_offset, max_bytes).await {
            Ok(read) => read.records,
            Err(LogError::OffsetOutOfRange { .. }) => return Err(FetchError::OffsetOutOfRange),
            Err(_) => return Err(FetchError::Storage),
        };
        Ok(ReplicaRead {
            records,
            diverging: None,
            proposal,
        })
    }

    /// `updateFollowerFetchState`: the follower's position and catch-up time, then the ISR
    /// expansion and high watermark they may make due.
    fn update_follower(
        &mut self,
        replica: i32,
        broker_epoch: Option<i64>,
        fetch_offset: i64,
        now_ms: i64,
    ) -> Option<IsrProposal> {
        let leo = self.log.log_end_offset();
        let f = self.followers.get_mut(&replica)?;
        if fetch_offset >= leo {
            f.last_caught_up_ms = now_ms;
        } else if fetch_offset >= f.last_fetch_leader_leo {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.leo = fetch_offset;
        f.last_fetch_leader_leo = leo;
        f.last_fetch_ms = now_ms;
        f.broker_epoch = broker_epoch.unwrap_or(-1);
        // Kafka's `isReplicaIsrEligible`: a fenced (or unknown) broker is not proposed.
        let proposal = broker_epoch.and_then(|_| self.maybe_expand_isr(replica));
        self.maybe_increment_high_watermark(now_ms);
        proposal
    }

    /// `maybeExpandIsr`: a follower outside the ISR that reached our high watermark and the
    /// start of this epoch is proposed for it.
    fn maybe_expand_isr(&mut self, replica: i32) -> Option<IsrProposal> {
        if self.pending_isr.is_some() || self.isr.contains(&replica) {
            return None;
        }
        if self.planted_bug == Some(PlantedBug::NeverRejoinIsr) {
            return None;
        }
        let f = self.followers.get(&replica)?;
        if f.leo < self.high_watermark || f.leo < self.epoch_start_offset {
            return None;
        }
        let mut isr = self.isr.clone();
        isr.push(replica);
        Some(self.propose(isr, "expand"))
    }

    /// `maybeShrinkIsr`: the followers of the ISR that have not caught up within
    /// `replica.lag.time.max.ms` are proposed out of it.
    pub fn maybe_shrink_isr(&mut self) -> Option<IsrProposal> {
        if !self.is_leader() || self.pending_isr.is_some() {
            return None;
        }
        let (leo, now_ms) = (self.log.log_end_offset(), self.now_ms());
        let lag = self.replication.lag_time_max_ms;
        let out: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|id| *id != self.broker_id)
            .filter(|id| {
                self.followers
                    .get(id)
                    .is_none_or(|f| !f.is_caught_up(leo, now_ms, lag))
            })
            .collect();
        if out.is_empty() {
            return None;
        }
        let isr: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|id| !out.contains(id))
            .collect();
        Some(self.propose(isr, "shrink"))
    }

    fn propose(&mut self, isr: Vec<i32>, reason: &str) -> IsrProposal {
        self.pending_isr = Some(isr.clone());
        self.recorder.event(
            &self.node,
            "isr-proposed",
            json!({
                "partition": self.tp.to_string(),
                "broker": self.broker_id,
                "isr": isr,
                "from": self.isr,
                "reason": reason,
                "leader_epoch": self.leader_epoch,
                "partition_epoch": self.partition_epoch,
            }),
        );
        let epochs = isr
            .iter()
            .map(|&id| {
                let epoch = self.followers.get(&id).map_or(-1, |f| f.broker_epoch);
                (id, epoch)
            })
            .collect();
        IsrProposal {
            tp: self.tp.clone(),
            topic_id: self.topic_id.clone(),
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            isr: epochs,
        }
    }

    /// The controller's answer to `proposal`: committed (`Ok` with the new ISR and partition
    /// epoch) or refused. Either way the proposal is no longer pending.
    pub fn on_isr_answer(&mut self, proposal: &IsrProposal, answer: Result<(Vec<i32>, i32), i16>) {
        if self.partition_epoch != proposal.partition_epoch
            || self.leader_epoch != proposal.leader_epoch
        {
            return; // the image moved on meanwhile; it decides
        }
        self.pending_isr = None;
        match answer {
            Ok((isr, partition_epoch)) => {
                self.isr = isr;
                self.partition_epoch = partition_epoch;
            }
            Err(code) => self.recorder.event(
                &self.node,
                "isr-refused",
                json!({
                    "partition": self.tp.to_string(),
                    "broker": self.broker_id,
                    "error": code,
                }),
            ),
        }
        self.maybe_increment_high_watermark(self.now_ms());
        self.wake();
    }

    /// Whether `proposal` is still this leader's pending one.
    pub fn is_pending(&self, proposal: &IsrProposal) -> bool {
        self.is_leader()
            && self.partition_epoch == proposal.partition_epoch
            && self.leader_epoch == proposal.leader_epoch
            && self.pending_isr.is_some()
    }

    /// Where this follower fetches from next.
    pub fn fetch_position(&self) -> FetchPosition {
        let last_fetched_epoch = match self.replication.truncation {
            Truncation::LeaderEpoch => self.log.latest_epoch().unwrap_or(-1),
            Truncation::HighWatermark => -1,
        };
        FetchPosition {
            fetch_offset: self.log.log_end_offset(),
            last_fetched_epoch,
            current_leader_epoch: self.leader_epoch,
            log_start_offset: self.log.log_start_offset(),
        }
    }

    /// Appends what the leader sent, then takes its high watermark (capped at our log end) and
    /// its log start offset. Records that do not continue our log are dropped (a response to a
    /// fetch from before a truncation); the next fetch asks again.
    pub async fn append_as_follower(
        &mut self,
        records: &[u8],
        leader_hw: i64,
        leader_log_start: i64,
    ) -> std::io::Result<()> {
        if self.planted_bug == Some(PlantedBug::HwBeforeTruncation) {
            // The planted bug: the leader's high watermark taken before the log is made to agree.
            self.set_high_watermark(leader_hw.max(self.high_watermark));
        }
        let starts_here = batch::batches(records)
            .next()
            .is_some_and(|(_, h)| h.base_offset == self.log.log_end_offset());
        if starts_here {
            let now_ms = self.now_ms();
            match self.log.append_as_follower(records, now_ms).await {
                Ok(info) if info.last_offset >= info.first_offset => {
                    self.trace_roll(&info);
                    self.recorder.event_val(
                        &self.node,
                        "replica-append",
                        val!({
                            "partition": self.tp.to_string(),
                            "broker": self.broker_id,
                            "first": info.first_offset,
                            "last": info.last_offset,
                            "leo": self.log.log_end_offset(),
                            "hw": self.high_watermark,
                        }),
                    );
                }
                Ok(_) => {}
                Err(LogError::Io(e)) => return Err(e),
                Err(_) => {} // torn or out of place: fetched again
            }
        }
        if leader_log_start > self.log.log_start_offset()
            && leader_log_start <= self.log.log_end_offset()
        {
            self.log
                .advance_log_start_offset(leader_log_start)
                .await
                .map_err(storage_error)?;
        }
        let hw = leader_hw.min(self.log.log_end_offset());
        if self.planted_bug != Some(PlantedBug::HwBeforeTruncation) || hw > self.high_watermark {
            self.set_high_watermark(hw);
        }
        self.wake();
        Ok(())
    }

    /// The leader says our log diverges: its log has epoch `epoch` ending at `end_offset`
    /// (`truncateOnFetchResponse`, KIP-279). We truncate to where our logs agree, or, if we do
    /// not know that epoch, to where our own closest epoch ends, and the next fetch asks again.
    pub async fn truncate_diverging(
        &mut self,
        leader_hw: i64,
        epoch: i32,
        end_offset: i64,
    ) -> std::io::Result<()> {
        if self.planted_bug == Some(PlantedBug::HwBeforeTruncation) {
            self.set_high_watermark(leader_hw.max(self.high_watermark));
        }
        let leo = self.log.log_end_offset();
        let to = if end_offset < 0 {
            self.high_watermark
        } else {
            let (own_epoch, own_end) = self.log.end_offset_for_epoch(epoch);
            if own_end < 0 {
                self.high_watermark
            } else if own_epoch != epoch {
                own_end.min(leo)
            } else {
                end_offset.min(own_end).min(leo)
            }
        };
        self.truncate_to(to, "diverging-epoch").await
    }

    /// Our fetch offset is outside the leader's log: above its end (we hold more than the new
    /// leader, before KIP-101 or after an unclean election) we truncate to its end; below its
    /// start we start over at its start (`handleOutOfRangeError`).
    pub async fn reset_out_of_range(
        &mut self,
        leader_start: i64,
        leader_end: i64,
    ) -> std::io::Result<()> {
        let leo = self.log.log_end_offset();
        if leader_end < leo {
            return self.truncate_to(leader_end, "leader-end-offset").await;
        }
        if leo < leader_start {
            let now_ms = self.now_ms();
            self.log
                .truncate_fully_and_start_at(leader_start, now_ms)
                .await?;
            self.trace_truncate(leo, leader_start, "offset-out-of-range");
            self.set_high_watermark(leader_start);
        }
        Ok(())
    }

    /// A `truncate` event: the log end moved from `from` to `to`; `hw` is the high watermark
    /// held until then (the `divergence` check reads a truncation below it).
    fn trace_truncate(&self, from: i64, to: i64, reason: &str) {
        self.recorder.event(
            &self.node,
            "truncate",
            json!({
                "partition": self.tp.to_string(),
                "broker": self.broker_id,
                "from": from,
                "to": to,
                "leo": to,
                "hw": self.high_watermark,
                "reason": reason,
                "leader_epoch": self.leader_epoch,
            }),
        );
    }

    /// Removes everything at and above `offset`; the high watermark follows down if it was
    /// above.
    async fn truncate_to(&mut self, offset: i64, reason: &str) -> std::io::Result<()> {
        let from = self.log.log_end_offset();
        if offset >= from {
            return Ok(());
        }
        self.log.truncate_to(offset).await.map_err(storage_error)?;
        let to = self.log.log_end_offset();
        self.trace_truncate(from, to, reason);
        if self.high_watermark > to {
            self.set_high_watermark(to);
        }
        self.wake();
        Ok(())
    }

    /// Reads committed batches (wholly below the HW) from `offset`, for a consumer. Between the
    /// HW and the log end there is nothing to read yet; past the log end (or below the log
    /// start) is out of range, as Kafka answers consumers. A `read_committed` consumer reads
    /// only below the last stable offset (KIP-98), so no open transaction reaches it.
    pub async fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
        read_committed: bool,
    ) -> Result<Committed, std::io::Error> {
        let fetch_past_lso = self.planted_bug == Some(PlantedBug::FetchPastLastStableOffset);
        let upper = if read_committed && !fetch_past_lso {
            self.last_stable_offset()
        } else {
            self.high_watermark
        };
        if offset > self.log.log_end_offset() {
            return Ok(Committed::OffsetOutOfRange);
        }
        if offset >= upper {
            return Ok(Committed::Records(Bytes::new()));
        }
        let read = match self.log.read(offset, max_bytes).await {
            Ok(read) => read,
            Err(LogError::OffsetOutOfRange { .. }) => return Ok(Committed::OffsetOutOfRange),
            Err(LogError::Io(e)) => return Err(e),
            Err(other) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    other.to_string(),
                ))
            }
        };
        let mut end = 0;
        for (position, header) in batch::batches(&read.records) {
            if header.last_offset() >= upper {
                break;
            }
            end = position + header.size_in_bytes();
        }
        Ok(Committed::Records(read.records.slice(..end)))
    }

    /// `ListOffsets` by time: the first offset whose record's timestamp is at or above
    /// `timestamp_ms`, if it is below the high watermark (Kafka's `fetchOffsetForTimestamp`
    /// hides what consumers cannot read yet).
    pub async fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> Result<Option<TimestampAndOffset>, std::io::Error> {
        let found = self.log.fetch_offset_by_timestamp(timestamp_ms).await?;
        Ok(found.filter(|f| f.offset < self.high_watermark))
    }

    /// Where `epoch` ended in this log (`OffsetForLeaderEpoch`, KIP-101).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.log.end_offset_for_epoch(epoch)
    }
}
