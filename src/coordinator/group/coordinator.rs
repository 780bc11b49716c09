//! The group coordinator of one `__consumer_offsets` partition (Kafka's `GroupCoordinatorShard`):
//! dispatch, the timers, replay, loading and unloading.

use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;

use super::classic_group::{ClassicGroup, ClassicGroupState, JoinTimer};
use super::rebalance::{
    complete_join, expire_heartbeat, expire_pending_sync, timeout_ms,
    try_complete_initial_rebalance, Ctx,
};
use super::records::CoordinatorRecord;
use super::{
    error_code, GroupCoordinatorConfig, GroupRequest, GroupResponse, JoinGroupResponse, RequestId,
    SyncGroupResponse,
};

/// What one request or tick asks of the driver.
///
/// The driver appends `records` to the coordinator's `__consumer_offsets` partition, in order,
/// and sends each response only once every record returned so far (by this call and the ones
/// before) is committed: Kafka's `CoordinatorRuntime` holds a write operation's response until
/// the high watermark passes the coordinator's last written offset. The coordinator's state
/// already reflects the records; if an append fails, the driver unloads the coordinator
/// (answering what waits with NOT_COORDINATOR) and loads it again from the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoordinatorOutput {
    pub records: Vec<CoordinatorRecord>,
    /// A TxnOffsetCommit's records, appended after `records` as one batch of its own.
    pub transactional: Option<TransactionalBatch>,
    /// Each response with the id the driver gave its request.
    pub responses: Vec<(RequestId, GroupResponse)>,
}

/// Records the coordinator writes on behalf of a transactional producer (a TxnOffsetCommit's
/// offsets): the driver appends them as one transactional batch with the producer's id and
/// epoch (Kafka's `CoordinatorRuntime` builds it with base sequence 0), so that the
/// transaction's marker, written to this partition too, commits or aborts them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionalBatch {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub records: Vec<CoordinatorRecord>,
}

/// One entry of the partition's log, as loading replays it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEntry {
    /// A record of a data batch; `producer_id` is the batch's when the batch is transactional.
    Record {
        producer_id: Option<i64>,
        record: CoordinatorRecord,
    },
    /// A control batch's end-transaction marker (key: version, type 0 abort or 1 commit).
    Marker { producer_id: i64, commit: bool },
}

impl CoordinatorOutput {
    pub(super) fn respond(&mut self, id: RequestId, response: GroupResponse) {
        self.responses.push((id, response));
    }
}

/// `OffsetAndMetadata`: a committed offset as the coordinator keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    pub committed_offset: i64,
    /// -1 when not known.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Where its record stands among those this coordinator replayed, in log order: Kafka
    /// keeps the record's offset to tell which of a transactional and a plain commit of one
    /// partition is the later one (only their order is compared).
    pub record_position: u64,
}

/// One group's offsets by (topic, partition).
pub(super) type GroupOffsets = BTreeMap<(String, i32), OffsetAndMetadata>;

/// A timer of the coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Timer {
    Join(String),
    Sync(String),
    /// A member's session (or a pending member id's) in a group.
    Heartbeat(String, String),
    OffsetExpiration,
}

/// A due timer as compared: (deadline, kind, group id, member id).
type TimerCandidate<'a> = (u64, u8, &'a str, &'a str);

fn keep_earliest<'a>(next: &mut Option<TimerCandidate<'a>>, candidate: TimerCandidate<'a>) {
    if next.is_none_or(|n| candidate < n) {
        *next = Some(candidate);
    }
}

/// Timers fire in deadline order; no tick fires more than this many (each firing removes its
/// timer or moves it later, so this bound is only reached by a bug).
const MAX_TIMERS_PER_TICK: usize = 1_000_000;

/// The group coordinator's state machine for one `__consumer_offsets` partition.
#[derive(Clone, Debug)]
pub struct GroupCoordinator {
    pub(super) config: GroupCoordinatorConfig,
    /// Member ids.
    pub(super) rng: ChaCha8Rng,
    pub(super) groups: BTreeMap<String, ClassicGroup>,
    /// Group → (topic, partition) → its committed offset.
    pub(super) offsets: BTreeMap<String, GroupOffsets>,
    /// Producer id → group → (topic, partition) → an offset its open transaction committed,
    /// waiting for the transaction's marker (`pendingTransactionalOffsets`).
    pub(super) pending_txn_offsets: BTreeMap<i64, BTreeMap<String, GroupOffsets>>,
    /// How many records this coordinator has replayed: the next one's `record_position`.
    pub(super) records_replayed: u64,
    /// The next `offsets.retention.check.interval.ms` run; none before `on_loaded`.
    pub(super) next_offset_expiration_ms: Option<u64>,
}

impl GroupCoordinator {
    /// A coordinator with nothing loaded; `rng` is the seeded stream member ids come from.
    pub fn new(config: GroupCoordinatorConfig, rng: ChaCha8Rng) -> Self {
        GroupCoordinator {
            config,
            rng,
            groups: BTreeMap::new(),
            offsets: BTreeMap::new(),
            pending_txn_offsets: BTreeMap::new(),
            records_replayed: 0,
            next_offset_expiration_ms: None,
        }
    }

    pub fn config(&self) -> &GroupCoordinatorConfig {
        &self.config
    }

    pub fn group(&self, group_id: &str) -> Option<&ClassicGroup> {
        self.groups.get(group_id)
    }

    pub fn groups(&self) -> &BTreeMap<String, ClassicGroup> {
        &self.groups
    }

    /// The committed offset of `group_id` for a partition.
    pub fn committed_offset(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
    ) -> Option<&OffsetAndMetadata> {
        self.offsets
            .get(group_id)?
            .get(&(topic.to_owned(), partition))
    }

    /// Loads the partition: `records` is its whole log, replayed in order, then the members'
    /// sessions start at `now_ms` (`GroupCoordinatorShard.onLoaded`). A coordinator of an
    /// empty partition loads no records.
    pub fn load<'a>(
        &mut self,
        now_ms: u64,
        records: impl IntoIterator<Item = &'a CoordinatorRecord>,
    ) {
        for record in records {
            self.replay(record);
        }
        self.on_loaded(now_ms);
    }

    /// Loads a partition whose log has transactional batches or markers: `entries` is its whole
    /// log, in order (Kafka's `CoordinatorLoaderImpl` replays each record with its batch's
    /// producer id, and each end-transaction marker), then as [`GroupCoordinator::load`].
    pub fn load_log<'a>(&mut self, now_ms: u64, entries: impl IntoIterator<Item = &'a LogEntry>) {
        for entry in entries {
            match entry {
                LogEntry::Record {
                    producer_id,
                    record,
                } => self.replay_record(*producer_id, record),
                LogEntry::Marker {
                    producer_id,
                    commit,
                } => {
                    self.replay_end_transaction_marker(*producer_id, *commit);
                }
            }
        }
        self.on_loaded(now_ms);
    }

    /// `onLoaded`: every loaded member's session starts now; offset expiration is scheduled.
    pub fn on_loaded(&mut self, now_ms: u64) {
        for group in self.groups.values_mut() {
            for member in group.members.values_mut() {
                member.heartbeat_deadline_ms = Some(now_ms + timeout_ms(member.session_timeout_ms));
            }
        }
        self.next_offset_expiration_ms =
            Some(now_ms + self.config.offsets_retention_check_interval_ms);
    }

    /// `onUnloaded`: another broker coordinates the partition now. Every waiting JoinGroup and
    /// SyncGroup is answered NOT_COORDINATOR, so that its client finds the new coordinator;
    /// everything is forgotten.
    pub fn unload(&mut self) -> CoordinatorOutput {
        let mut out = CoordinatorOutput::default();
        for group in self.groups.values_mut() {
            group.transition_to(ClassicGroupState::Dead, 0);
            for member in group.members.values_mut() {
                if let Some(id) = member.awaiting_join.take() {
                    let response =
                        JoinGroupResponse::error(error_code::NOT_COORDINATOR, &member.member_id);
                    out.respond(id, GroupResponse::JoinGroup(response));
                }
                if let Some(id) = member.awaiting_sync.take() {
                    let response = SyncGroupResponse::error(error_code::NOT_COORDINATOR);
                    out.respond(id, GroupResponse::SyncGroup(response));
                }
            }
        }
        self.groups.clear();
        self.offsets.clear();
        self.pending_txn_offsets.clear();
        self.next_offset_expiration_ms = None;
        out
    }

    /// One request, tagged with the driver's `id`. Timers due by `now_ms` fire first, as they
    /// would have in Kafka before the request arrived.
    pub fn handle(
        &mut self,
        now_ms: u64,
        id: RequestId,
        request: GroupRequest,
    ) -> CoordinatorOutput {
        let mut out = self.tick(now_ms);
        match request {
            GroupRequest::JoinGroup(r) => self.join_group(now_ms, id, r, &mut out),
            GroupRequest::SyncGroup(r) => self.sync_group(now_ms, id, r, &mut out),
            GroupRequest::Heartbeat(r) => {
                let error = self.heartbeat(now_ms, &r);
                out.respond(id, GroupResponse::Heartbeat(error));
            }
            GroupRequest::LeaveGroup(r) => self.leave_group(now_ms, id, r, &mut out),
            GroupRequest::OffsetCommit(r) => self.commit_offsets(now_ms, id, r, &mut out),
            GroupRequest::TxnOffsetCommit(r) => {
                self.commit_transactional_offsets(now_ms, id, r, &mut out)
            }
            GroupRequest::OffsetFetch(r) => {
                let response = self.fetch_offsets(&r);
                out.respond(id, GroupResponse::OffsetFetch(response));
            }
            GroupRequest::DescribeGroups(group_ids) => {
                let groups = self.describe_groups(&group_ids);
                out.respond(id, GroupResponse::DescribeGroups(groups));
            }
            GroupRequest::ListGroups(r) => {
                let groups = self.list_groups(&r);
                out.respond(id, GroupResponse::ListGroups(error_code::NONE, groups));
            }
        }
        out
    }

    /// Fires every timer due by `now_ms`, in deadline order, each as of its own deadline (so the
    /// outcome does not depend on how often the driver ticks): session expirations, the join
    /// phase's delays and timeouts, the sync phase's timeout, offset expiration.
    pub fn tick(&mut self, now_ms: u64) -> CoordinatorOutput {
        let mut out = CoordinatorOutput::default();
        for _ in 0..MAX_TIMERS_PER_TICK {
            let Some((deadline_ms, timer)) = self.next_timer().filter(|(d, _)| *d <= now_ms) else {
                return out;
            };
            self.fire(deadline_ms, timer, &mut out);
        }
        panic!(
            "more than {MAX_TIMERS_PER_TICK} timers due at {now_ms}: a timer that never settles"
        );
    }

    /// When the next timer is due, for the driver to tick then.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.next_timer().map(|(deadline_ms, _)| deadline_ms)
    }

    /// The earliest due timer; at equal deadlines, in `Timer`'s order (join, sync, sessions,
    /// offset expiration; by group id, then member id). Compared borrowed, built once.
    fn next_timer(&self) -> Option<(u64, Timer)> {
        const JOIN: u8 = 0;
        const SYNC: u8 = 1;
        const HEARTBEAT: u8 = 2;
        const OFFSETS: u8 = 3;
        let mut next: Option<TimerCandidate<'_>> = None;
        let mut consider = |candidate| keep_earliest(&mut next, candidate);
        for (group_id, g) in &self.groups {
            if let Some(join) = g.join_timer {
                consider((join.deadline_ms(), JOIN, group_id, ""));
            }
            if let Some((deadline_ms, _)) = g.sync_timer {
                consider((deadline_ms, SYNC, group_id, ""));
            }
            for m in g.members.values() {
                if let Some(deadline_ms) = m.heartbeat_deadline_ms {
                    consider((deadline_ms, HEARTBEAT, group_id, &m.member_id));
                }
            }
            for (member_id, &deadline_ms) in &g.pending_join_members {
                consider((deadline_ms, HEARTBEAT, group_id, member_id));
            }
        }
        if let Some(deadline_ms) = self.next_offset_expiration_ms {
            consider((deadline_ms, OFFSETS, "", ""));
        }
        next.map(|(deadline_ms, kind, group_id, member_id)| {
            let timer = match kind {
                JOIN => Timer::Join(group_id.to_owned()),
                SYNC => Timer::Sync(group_id.to_owned()),
                HEARTBEAT => Timer::Heartbeat(group_id.to_owned(), member_id.to_owned()),
                _ => Timer::OffsetExpiration,
            };
            (deadline_ms, timer)
        })
    }

    fn fire(&mut self, now_ms: u64, timer: Timer, out: &mut CoordinatorOutput) {
        if timer == Timer::OffsetExpiration {
            self.expire_offsets(now_ms, out);
            self.next_offset_expiration_ms =
                Some(now_ms + self.config.offsets_retention_check_interval_ms);
            return;
        }
        let (Timer::Join(group_id) | Timer::Sync(group_id) | Timer::Heartbeat(group_id, _)) =
            &timer
        else {
            unreachable!("offset expiration fired above");
        };
        let g = self
            .groups
            .get_mut(group_id)
            .expect("a timer of a present group");
        let mut cx = Ctx {
            config: &self.config,
            now_ms,
            out,
        };
        match timer {
            Timer::Join(_) => match g.join_timer.take().expect("a due join timer") {
                JoinTimer::InitialDelay {
                    delay_ms,
                    remaining_ms,
                    ..
                } => try_complete_initial_rebalance(g, delay_ms, remaining_ms, &mut cx),
                JoinTimer::Rebalance { .. } => complete_join(g, &mut cx),
            },
            Timer::Sync(_) => {
                let (_, generation_id) = g.sync_timer.take().expect("a due sync timer");
                expire_pending_sync(g, generation_id, &mut cx);
            }
            Timer::Heartbeat(_, member_id) => expire_heartbeat(g, &member_id, &mut cx),
            Timer::OffsetExpiration => unreachable!("handled above"),
        }
    }

    /// Applies one record of the partition, of a batch that is not transactional.
    pub fn replay(&mut self, record: &CoordinatorRecord) {
        self.replay_record(None, record);
    }

    /// Applies one record of the partition, as loading does (`GroupCoordinatorShard.replay`);
    /// `producer_id` is its batch's if the batch is transactional.
    /// A GroupMetadata record replaces the group (Kafka does not replay them while it is the
    /// coordinator: its groups are already up to date); an offset commit of an unknown group
    /// creates it, empty (a "simple" group of a consumer without group management); an offset
    /// commit of a transactional batch is pending until its transaction's marker.
    pub fn replay_record(&mut self, producer_id: Option<i64>, record: &CoordinatorRecord) {
        self.records_replayed += 1;
        match record {
            CoordinatorRecord::GroupMetadata {
                group,
                value: Some(value),
            } => {
                self.groups
                    .insert(group.clone(), ClassicGroup::from_record(group, value));
            }
            CoordinatorRecord::GroupMetadata { group, value: None } => {
                self.groups.remove(group);
            }
            CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                value,
            } => {
                let key = (topic.clone(), *partition);
                match (producer_id, value) {
                    (Some(producer_id), Some(value)) => {
                        self.replay_transactional_offset_commit(producer_id, group, key, value)
                    }
                    _ => self.replay_offset_commit(group, key, value.as_ref()),
                }
            }
        }
    }
}
