//! The KRaft replica as a pure state machine (KIP-595): it takes an input (a tick, a message, a
//! proposal) at a time and returns the commands its driver must carry out, in order. Commands
//! that persist (`PersistQuorumState`, `TruncateLog`, `AppendLog`) come before the messages that
//! depend on them, and the driver finishes (fsyncs) each before the next, as KRaft does before
//! granting a vote or acknowledging a fetch. No I/O, no clock, no randomness but its seeded own.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::messages::{
    Entry, Epoch, FetchBody, LogPosition, Message, NodeId, SnapshotBody, SnapshotId,
};

/// Bugs a test can plant to show the safety checks find them (issue: "planted bugs").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaftBugs {
    /// A voter grants its vote without comparing logs (Raft §5.4.1's election restriction gone).
    pub vote_without_log_check: bool,
    /// The leader counts its own log twice toward the majority that commits an entry.
    pub leader_counts_itself_twice: bool,
}

#[derive(Clone, Debug)]
pub struct RaftConfig {
    pub id: NodeId,
    /// The voters, `controller.quorum.voters`.
    pub voters: BTreeSet<NodeId>,
    /// `controller.quorum.election.timeout.ms` (1000): the base of the randomized timeout.
    pub election_timeout_ms: u64,
    /// `controller.quorum.fetch.timeout.ms` (2000): a follower that hears nothing from its leader
    /// this long starts an election; a leader checks its quorum over 1.5 times this.
    pub fetch_timeout_ms: u64,
    /// `controller.quorum.election.backoff.max.ms` (1000).
    pub election_backoff_max_ms: u64,
    /// Check-quorum: a leader that hears from no majority resigns (KAFKA-15489 when off).
    pub check_quorum: bool,
    pub bugs: RaftBugs,
}

impl RaftConfig {
    pub fn new(id: NodeId, voters: impl IntoIterator<Item = NodeId>) -> Self {
        RaftConfig {
            id,
            voters: voters.into_iter().collect(),
            election_timeout_ms: 1000,
            fetch_timeout_ms: 2000,
            election_backoff_max_ms: 1000,
            check_quorum: true,
            bugs: RaftBugs::default(),
        }
    }

    fn majority(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

/// What KRaft keeps in its `quorum-state` file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuorumStateRecord {
    pub epoch: Epoch,
    pub voted_for: Option<NodeId>,
    pub leader: Option<NodeId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleName {
    Unattached,
    Voted,
    Candidate,
    Leader,
    Follower,
    Resigned,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    PersistQuorumState(QuorumStateRecord),
    /// Remove every entry at or above `end_offset`.
    TruncateLog {
        end_offset: i64,
    },
    AppendLog {
        from_offset: i64,
        entries: Vec<Entry>,
    },
    Send {
        to: NodeId,
        message: Message,
    },
    /// The high watermark moved: entries below it are committed.
    HighWatermark(i64),
    /// Answer the `FetchSnapshot` request being handled, from `to`, with the bytes of this
    /// node's `snapshot` from `position` (the driver reads them off its disk).
    ServeSnapshot {
        to: NodeId,
        snapshot: SnapshotId,
        position: i64,
    },
    /// Write fetched bytes at `position` of the snapshot being fetched (position 0 starts it).
    WriteSnapshotChunk {
        snapshot: SnapshotId,
        position: i64,
        bytes: bytes::Bytes,
    },
    /// The fetched snapshot is whole: make it durable, start the log empty at its end offset
    /// (Kafka's `truncateToLatestSnapshot`), drop older snapshots and load it into the state.
    InstallSnapshot(SnapshotId),
    RoleChanged {
        role: RoleName,
        epoch: Epoch,
        leader: Option<NodeId>,
    },
}

#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    end_offset: i64,
    last_fetch_ms: Option<u64>,
}

#[derive(Clone, Debug)]
enum Role {
    Unattached,
    Voted,
    Candidate {
        granted: BTreeSet<NodeId>,
    },
    Leader {
        progress: BTreeMap<NodeId, Progress>,
        since_ms: u64,
    },
    Follower {
        fetch_sent_ms: Option<u64>,
        next_fetch_ms: u64,
    },
    Resigned,
}

/// The largest epoch ≤ `epoch` in a log of `log` from `log_start` (below which `start_snapshot`
/// holds the state) and the offset after its last entry (Kafka's `endOffsetForEpoch`); the
/// snapshot's epoch and end when the log holds no such entry but the snapshot's epoch is not
/// newer; `(0, 0)` otherwise. Voters and observers truncate by it.
pub(crate) fn end_offset_for_epoch(
    log_start: i64,
    start_snapshot: Option<SnapshotId>,
    log: &[Entry],
    epoch: Epoch,
) -> (Epoch, i64) {
    match log.iter().rposition(|e| e.epoch <= epoch) {
        Some(i) => (log[i].epoch, log_start + i as i64 + 1),
        None => match start_snapshot {
            Some(s) if s.epoch <= epoch && s.end_offset == log_start => (s.epoch, log_start),
            _ => (0, 0),
        },
    }
}

/// Kafka's `validateOffsetAndEpoch` on the leader, for the snapshot case only: a fetch whose
/// offset is below the log start, or at it in another epoch than the snapshot there, or whose
/// epoch is older than the earliest snapshot, is sent the latest snapshot (KIP-630).
pub(crate) fn snapshot_for_fetch(
    log_start: i64,
    snapshots: &std::collections::BTreeSet<SnapshotId>,
    fetch_offset: i64,
    last_fetched_epoch: Epoch,
) -> Option<SnapshotId> {
    if log_start == 0 && fetch_offset == 0 {
        return None;
    }
    let earliest = snapshots.first()?;
    let behind = fetch_offset < log_start
        || (fetch_offset == log_start && last_fetched_epoch != earliest.epoch)
        || last_fetched_epoch < earliest.epoch;
    behind.then(|| *snapshots.last().expect("a first implies a last"))
}

/// Entries fetched at most per response, a stand-in for `max.bytes`.
const MAX_ENTRIES_PER_FETCH: usize = 512;
/// Bytes asked for per `FetchSnapshot` request (its `MaxBytes`).
pub const FETCH_SNAPSHOT_MAX_BYTES: usize = 32 * 1024;
/// How long a follower's fetch may go unanswered before it is sent again (`fetch.max.wait.ms`).
const FETCH_RETRY_MS: u64 = 500;
/// How long a caught-up follower waits between fetches (the leader's long-poll, simplified).
const FETCH_IDLE_MS: u64 = 50;

pub struct RaftCore {
    config: RaftConfig,
    state: QuorumStateRecord,
    role: Role,
    /// The offset of `log[0]`; the state below it is in the snapshot that ends there.
    log_start: i64,
    log: Vec<Entry>,
    /// The snapshots on this node's disk, oldest first (Kafka's `snapshotIds`).
    snapshots: BTreeSet<SnapshotId>,
    /// The snapshot a follower is fetching, and how many of its bytes it has.
    fetching_snapshot: Option<(SnapshotId, i64)>,
    high_watermark: i64,
    /// When the current timer (election, fetch or check-quorum) fires.
    deadline_ms: u64,
    rng: ChaCha8Rng,
    out: Vec<Command>,
}

impl RaftCore {
    /// A replica starting from what it had persisted. A former leader does not resume: it has
    /// resigned and waits for an election, as a restarted KRaft leader does.
    pub fn restore(
        config: RaftConfig,
        state: QuorumStateRecord,
        log: Vec<Entry>,
        now_ms: u64,
        seed: u64,
    ) -> Self {
        Self::restore_from(config, state, 0, BTreeSet::new(), log, now_ms, seed)
    }

    /// A replica restarting from its snapshots and its log from `log_start` (the latest snapshot
    /// was loaded into the state, so the high watermark starts at its end: it was committed).
    pub fn restore_from(
        config: RaftConfig,
        state: QuorumStateRecord,
        log_start: i64,
        snapshots: BTreeSet<SnapshotId>,
        log: Vec<Entry>,
        now_ms: u64,
        seed: u64,
    ) -> Self {
        let latest = snapshots.last().copied();
        assert!(
            log_start == 0 || snapshots.first().is_some_and(|s| s.end_offset <= log_start),
            "node {}: a log starting at {log_start} needs a snapshot at or below its start",
            config.id
        );
        let mut core = RaftCore {
            config,
            state,
            role: Role::Unattached,
            log_start,
            log,
            snapshots,
            fetching_snapshot: None,
            high_watermark: latest.map_or(0, |s| s.end_offset),
            deadline_ms: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            out: Vec::new(),
        };
        core.role = match state.leader {
            Some(leader) if leader == core.config.id => Role::Resigned,
            Some(_) => Role::Follower {
                fetch_sent_ms: None,
                next_fetch_ms: now_ms,
            },
            None if state.voted_for.is_some() => Role::Voted,
            None => Role::Unattached,
        };
        core.deadline_ms = match core.role {
            Role::Follower { .. } => now_ms + core.config.fetch_timeout_ms,
            _ => now_ms + core.random_election_timeout(),
        };
        core
    }

    pub fn epoch(&self) -> Epoch {
        self.state.epoch
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.state.leader
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// The entries from `log_start()`.
    pub fn log(&self) -> &[Entry] {
        &self.log
    }

    /// The offset of the first entry of `log()`.
    pub fn log_start(&self) -> i64 {
        self.log_start
    }

    /// The offset the next entry gets.
    pub fn log_end(&self) -> i64 {
        self.log_start + self.log.len() as i64
    }

    /// The entry at `offset`, if the log holds it.
    pub fn entry(&self, offset: i64) -> Option<&Entry> {
        usize::try_from(offset - self.log_start)
            .ok()
            .and_then(|i| self.log.get(i))
    }

    /// The epoch of the entry at `offset`: from the log, or from the snapshot ending right after.
    pub fn epoch_at(&self, offset: i64) -> Option<Epoch> {
        self.entry(offset).map(|e| e.epoch).or_else(|| {
            self.snapshots
                .iter()
                .find(|s| s.end_offset == offset + 1)
                .map(|s| s.epoch)
        })
    }

    pub fn snapshots(&self) -> &BTreeSet<SnapshotId> {
        &self.snapshots
    }

    pub fn latest_snapshot(&self) -> Option<SnapshotId> {
        self.snapshots.last().copied()
    }

    /// This node wrote a snapshot of its committed state (Kafka's `onSnapshotFrozen`).
    pub fn snapshot_written(&mut self, id: SnapshotId) {
        assert!(
            id.end_offset <= self.high_watermark
                && self.epoch_at(id.end_offset - 1) == Some(id.epoch),
            "node {}: snapshot {id:?} is not of the committed log (high watermark {}, log from {})",
            self.config.id,
            self.high_watermark,
            self.log_start
        );
        self.snapshots.insert(id);
    }

    /// Kafka's `deleteBeforeSnapshot`: the log starts at `id`'s end offset from now on, and the
    /// older snapshots go. Returns whether it moved (the driver then deletes the same on disk).
    pub fn delete_before_snapshot(&mut self, id: SnapshotId) -> bool {
        let moved = self.snapshots.contains(&id)
            && self.log_start < id.end_offset
            && id.end_offset <= self.log_end();
        if moved {
            self.log.drain(..(id.end_offset - self.log_start) as usize);
            self.log_start = id.end_offset;
            self.snapshots = self.snapshots.split_off(&id);
        }
        moved
    }

    pub fn role(&self) -> RoleName {
        match self.role {
            Role::Unattached => RoleName::Unattached,
            Role::Voted => RoleName::Voted,
            Role::Candidate { .. } => RoleName::Candidate,
            Role::Leader { .. } => RoleName::Leader,
            Role::Follower { .. } => RoleName::Follower,
            Role::Resigned => RoleName::Resigned,
        }
    }

    /// The epoch of the last entry, or of the snapshot the log starts at.
    fn last_epoch(&self) -> Epoch {
        match self.log.last() {
            Some(e) => e.epoch,
            None => self.epoch_at(self.log_start - 1).unwrap_or(0),
        }
    }

    fn last_position(&self) -> LogPosition {
        LogPosition {
            last_epoch: self.last_epoch(),
            end_offset: self.log_end(),
        }
    }

    fn start_snapshot(&self) -> Option<SnapshotId> {
        self.snapshots
            .iter()
            .find(|s| s.end_offset == self.log_start)
            .copied()
    }

    fn random_election_timeout(&mut self) -> u64 {
        let base = self.config.election_timeout_ms;
        base + self.rng.gen_range(0..base.max(1))
    }

    fn epoch_end(&self, epoch: Epoch) -> (Epoch, i64) {
        end_offset_for_epoch(self.log_start, self.start_snapshot(), &self.log, epoch)
    }

    fn take(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.out)
    }

    fn send(&mut self, to: NodeId, message: Message) {
        self.out.push(Command::Send { to, message });
    }

    fn others(&self) -> Vec<NodeId> {
        self.config
            .voters
            .iter()
            .copied()
            .filter(|&v| v != self.config.id)
            .collect()
    }

    fn persist(&mut self) {
        self.out.push(Command::PersistQuorumState(self.state));
    }

    fn announce(&mut self) {
        self.out.push(Command::RoleChanged {
            role: self.role(),
            epoch: self.state.epoch,
            leader: self.state.leader,
        });
    }

    // ---- inputs ----------------------------------------------------------------------------

    /// Time passed: fire whichever timer is due.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Command> {
        match &self.role {
            Role::Leader { .. } => {
                self.check_quorum(now_ms);
                self.remind_voters(now_ms);
            }
            Role::Follower {
                fetch_sent_ms,
                next_fetch_ms,
            } => {
                if now_ms >= self.deadline_ms {
                    self.become_candidate(now_ms);
                } else {
                    let resend = fetch_sent_ms.is_some_and(|sent| now_ms >= sent + FETCH_RETRY_MS);
                    if resend || (fetch_sent_ms.is_none() && now_ms >= *next_fetch_ms) {
                        self.fetch(now_ms);
                    }
                }
            }
            _ => {
                if now_ms >= self.deadline_ms {
                    self.become_candidate(now_ms);
                }
            }
        }
        self.take()
    }

    /// A proposal from the controller: appended if this replica leads, else refused.
    pub fn propose(
        &mut self,
        now_ms: u64,
        data: Bytes,
    ) -> Result<(i64, Vec<Command>), Option<NodeId>> {
        if !matches!(self.role, Role::Leader { .. }) {
            return Err(self.state.leader.filter(|&l| l != self.config.id));
        }
        let offset = self.append(vec![Entry {
            epoch: self.state.epoch,
            data,
        }]);
        self.update_high_watermark(now_ms);
        Ok((offset, self.take()))
    }

    pub fn receive(&mut self, now_ms: u64, from: NodeId, message: Message) -> Vec<Command> {
        // Only voters take part in elections and lead (Kafka refuses the others' requests).
        // Non-voters may fetch: they are observers (KIP-595), brokers following the log.
        let from_voter = self.config.voters.contains(&from);
        let voter_only = matches!(
            message,
            Message::VoteRequest { .. }
                | Message::VoteResponse { .. }
                | Message::BeginQuorumEpoch { .. }
                | Message::EndQuorumEpoch { .. }
        );
        if voter_only && !from_voter {
            return Vec::new();
        }
        match message {
            Message::VoteRequest { epoch, last } => self.on_vote_request(now_ms, from, epoch, last),
            Message::VoteResponse {
                epoch,
                granted,
                leader,
            } => self.on_vote_response(now_ms, from, epoch, granted, leader),
            Message::BeginQuorumEpoch { epoch } => self.on_begin_quorum_epoch(now_ms, from, epoch),
            Message::EndQuorumEpoch { epoch, successors } => {
                self.on_end_quorum_epoch(now_ms, from, epoch, &successors)
            }
            Message::FetchRequest {
                epoch,
                fetch_offset,
                last_fetched_epoch,
            } => self.on_fetch_request(now_ms, from, epoch, fetch_offset, last_fetched_epoch),
            Message::FetchResponse {
                epoch,
                leader,
                body,
            } => self.on_fetch_response(now_ms, from, epoch, leader, body),
            Message::FetchSnapshotRequest {
                epoch,
                snapshot,
                position,
            } => self.on_fetch_snapshot_request(now_ms, from, epoch, snapshot, position),
            Message::FetchSnapshotResponse {
                epoch,
                leader,
                body,
            } => self.on_fetch_snapshot_response(now_ms, from, epoch, leader, body),
        }
        self.take()
    }

    // ---- transitions -------------------------------------------------------------------------

    fn become_unattached(&mut self, now_ms: u64, epoch: Epoch) {
        self.fetching_snapshot = None;
        self.state = QuorumStateRecord {
            epoch,
            voted_for: None,
            leader: None,
        };
        self.role = Role::Unattached;
        self.deadline_ms = now_ms + self.random_election_timeout();
        self.persist();
        self.announce();
    }

    fn become_candidate(&mut self, now_ms: u64) {
        self.fetching_snapshot = None;
        self.state = QuorumStateRecord {
            epoch: self.state.epoch + 1,
            voted_for: Some(self.config.id),
            leader: None,
        };
        self.role = Role::Candidate {
            granted: BTreeSet::from([self.config.id]),
        };
        self.deadline_ms = now_ms + self.random_election_timeout();
        self.persist();
        self.announce();
        if self.config.majority() == 1 {
            return self.become_leader(now_ms);
        }
        let last = self.last_position();
        for voter in self.others() {
            self.send(
                voter,
                Message::VoteRequest {
                    epoch: self.state.epoch,
                    last,
                },
            );
        }
    }

    fn become_leader(&mut self, now_ms: u64) {
        self.fetching_snapshot = None;
        self.state.leader = Some(self.config.id);
        let progress = self
            .others()
            .into_iter()
            .map(|v| (v, Progress::default()))
            .collect();
        self.role = Role::Leader {
            progress,
            since_ms: now_ms,
        };
        self.deadline_ms = now_ms + FETCH_RETRY_MS;
        self.persist();
        self.announce();
        // KRaft's LeaderChangeMessage: an entry of the new epoch, so the leader can commit it
        // and everything before it (Raft §5.4.2: only current-epoch entries commit by counting).
        self.append(vec![Entry {
            epoch: self.state.epoch,
            data: Bytes::from(format!("leader-change:{}", self.config.id)),
        }]);
        for voter in self.others() {
            self.send(
                voter,
                Message::BeginQuorumEpoch {
                    epoch: self.state.epoch,
                },
            );
        }
        self.update_high_watermark(now_ms);
    }

    fn become_follower(&mut self, now_ms: u64, epoch: Epoch, leader: NodeId) {
        self.fetching_snapshot = None;
        if epoch > self.state.epoch {
            self.state.voted_for = None;
        }
        self.state.epoch = epoch;
        self.state.leader = Some(leader);
        self.role = Role::Follower {
            fetch_sent_ms: None,
            next_fetch_ms: now_ms,
        };
        self.deadline_ms = now_ms + self.config.fetch_timeout_ms;
        self.persist();
        self.announce();
        self.fetch(now_ms);
    }

    fn check_quorum_window(&self) -> u64 {
        self.config.fetch_timeout_ms * 3 / 2
    }

    /// Check-quorum: a leader that has not been fetched from by a majority within 1.5 fetch
    /// timeouts resigns, so a leader cut off from the quorum stops acting as one.
    fn check_quorum(&mut self, now_ms: u64) {
        if !self.config.check_quorum {
            return;
        }
        let window = self.check_quorum_window();
        let Role::Leader { progress, since_ms } = &self.role else {
            return;
        };
        let heard = progress
            .values()
            .filter(|p| p.last_fetch_ms.is_some_and(|t| t + window >= now_ms))
            .count()
            + 1;
        if heard >= self.config.majority() || now_ms < since_ms + window {
            return;
        }
        self.role = Role::Resigned;
        self.deadline_ms = now_ms + self.random_election_timeout();
        self.announce();
        let successors = self.others();
        for voter in successors.clone() {
            self.send(
                voter,
                Message::EndQuorumEpoch {
                    epoch: self.state.epoch,
                    successors: successors.clone(),
                },
            );
        }
    }

    /// Kafka's leader keeps sending `BeginQuorumEpoch` to voters that have not fetched from it
    /// yet (one may have missed the first, or restarted), every `FETCH_RETRY_MS`.
    fn remind_voters(&mut self, now_ms: u64) {
        if now_ms < self.deadline_ms {
            return;
        }
        self.deadline_ms = now_ms + FETCH_RETRY_MS;
        let Role::Leader { progress, .. } = &self.role else {
            return;
        };
        let silent: Vec<NodeId> = progress
            .iter()
            .filter(|(_, p)| p.last_fetch_ms.is_none())
            .map(|(&v, _)| v)
            .collect();
        for voter in silent {
            self.send(
                voter,
                Message::BeginQuorumEpoch {
                    epoch: self.state.epoch,
                },
            );
        }
    }

    // ---- handlers ----------------------------------------------------------------------------

    fn on_vote_request(&mut self, now_ms: u64, candidate: NodeId, epoch: Epoch, last: LogPosition) {
        if epoch > self.state.epoch {
            self.become_unattached(now_ms, epoch);
        }
        let up_to_date = self.config.bugs.vote_without_log_check || last >= self.last_position();
        let free =
            self.state.voted_for.is_none_or(|v| v == candidate) && self.state.leader.is_none();
        let granted = epoch == self.state.epoch && free && up_to_date;
        if granted && self.state.voted_for.is_none() {
            self.state.voted_for = Some(candidate);
            self.role = Role::Voted;
            self.deadline_ms = now_ms + self.random_election_timeout();
            self.persist();
        }
        self.send(
            candidate,
            Message::VoteResponse {
                epoch: self.state.epoch,
                granted,
                leader: self.state.leader,
            },
        );
    }

    fn on_vote_response(
        &mut self,
        now_ms: u64,
        voter: NodeId,
        epoch: Epoch,
        granted: bool,
        leader: Option<NodeId>,
    ) {
        let leader = leader.filter(|&l| l != self.config.id);
        let knows_newer_leader =
            epoch > self.state.epoch || (epoch == self.state.epoch && self.state.leader.is_none());
        if let (Some(leader), true) = (leader, knows_newer_leader) {
            return self.become_follower(now_ms, epoch, leader);
        }
        if epoch > self.state.epoch {
            return self.become_unattached(now_ms, epoch);
        }
        let majority = self.config.majority();
        let Role::Candidate { granted: votes } = &mut self.role else {
            return;
        };
        if epoch != self.state.epoch || !granted {
            return;
        }
        votes.insert(voter);
        if votes.len() >= majority {
            self.become_leader(now_ms);
        }
    }

    fn on_begin_quorum_epoch(&mut self, now_ms: u64, leader: NodeId, epoch: Epoch) {
        if epoch < self.state.epoch {
            return;
        }
        if epoch == self.state.epoch {
            match self.state.leader {
                Some(known) if known == leader => {
                    self.deadline_ms = now_ms + self.config.fetch_timeout_ms;
                    return;
                }
                // Two leaders in one epoch cannot happen; refuse rather than follow either.
                Some(_) => return,
                None => {}
            }
        }
        self.become_follower(now_ms, epoch, leader);
    }

    fn on_end_quorum_epoch(
        &mut self,
        now_ms: u64,
        leader: NodeId,
        epoch: Epoch,
        successors: &[NodeId],
    ) {
        if epoch != self.state.epoch || self.state.leader != Some(leader) {
            return;
        }
        if let Role::Follower { .. } = self.role {
            // The first preferred successor runs at once; the others back off by their rank.
            let rank = successors
                .iter()
                .position(|&s| s == self.config.id)
                .unwrap_or(successors.len()) as u64;
            let jitter = self
                .rng
                .gen_range(0..self.config.election_backoff_max_ms.max(1) / 4 + 1);
            self.deadline_ms = now_ms + rank * self.config.election_backoff_max_ms / 4 + jitter;
        }
    }

    fn on_fetch_request(
        &mut self,
        now_ms: u64,
        follower: NodeId,
        epoch: Epoch,
        fetch_offset: i64,
        last_fetched_epoch: Epoch,
    ) {
        // Anyone but the leader of `epoch` refuses, naming the epoch and leader it knows, so a
        // stale voter or an observer asking a random voter finds the leader.
        let leading = matches!(self.role, Role::Leader { .. }) && epoch == self.state.epoch;
        if !leading {
            let response = Message::FetchResponse {
                epoch: self.state.epoch,
                leader: self.state.leader,
                body: FetchBody::Fenced,
            };
            return self.send(follower, response);
        }
        let snapshot = snapshot_for_fetch(
            self.log_start,
            &self.snapshots,
            fetch_offset,
            last_fetched_epoch,
        );
        if let Some(snapshot) = snapshot {
            self.heard_from(now_ms, follower);
            let response = Message::FetchResponse {
                epoch: self.state.epoch,
                leader: self.state.leader,
                body: FetchBody::Snapshot { snapshot },
            };
            return self.send(follower, response);
        }
        if fetch_offset > 0 || last_fetched_epoch > 0 {
            let (end_epoch, end_offset) = self.epoch_end(last_fetched_epoch);
            if end_epoch != last_fetched_epoch || end_offset < fetch_offset {
                let body = FetchBody::Diverging {
                    epoch: end_epoch,
                    end_offset,
                };
                let response = Message::FetchResponse {
                    epoch: self.state.epoch,
                    leader: self.state.leader,
                    body,
                };
                return self.send(follower, response);
            }
        }
        // An observer is served like a voter, but its position counts neither toward the high
        // watermark nor toward check-quorum: Kafka's `LeaderState` keeps observers apart from
        // its voter states for exactly that.
        if self.config.voters.contains(&follower) {
            if let Role::Leader { progress, .. } = &mut self.role {
                progress.insert(
                    follower,
                    Progress {
                        end_offset: fetch_offset,
                        last_fetch_ms: Some(now_ms),
                    },
                );
            }
            self.update_high_watermark(now_ms);
        }
        let from = (fetch_offset.clamp(self.log_start, self.log_end()) - self.log_start) as usize;
        let to = (from + MAX_ENTRIES_PER_FETCH).min(self.log.len());
        let body = FetchBody::Records {
            from_offset: self.log_start + from as i64,
            entries: self.log[from..to].to_vec(),
            high_watermark: self.high_watermark,
        };
        let response = Message::FetchResponse {
            epoch: self.state.epoch,
            leader: self.state.leader,
            body,
        };
        self.send(follower, response);
    }

    fn on_fetch_response(
        &mut self,
        now_ms: u64,
        from: NodeId,
        epoch: Epoch,
        leader: Option<NodeId>,
        body: FetchBody,
    ) {
        if epoch > self.state.epoch {
            return match leader {
                Some(leader) => self.become_follower(now_ms, epoch, leader),
                None => self.become_unattached(now_ms, epoch),
            };
        }
        if epoch < self.state.epoch || self.state.leader != Some(from) {
            return;
        }
        let Role::Follower { fetch_sent_ms, .. } = &mut self.role else {
            return;
        };
        *fetch_sent_ms = None;
        match body {
            FetchBody::Fenced => {}
            FetchBody::Diverging { epoch, end_offset } => {
                // KIP-595 / KIP-279: truncate to where both logs agree on that epoch's end.
                let (_, own_end) = self.epoch_end(epoch);
                self.truncate(end_offset.min(own_end));
                self.deadline_ms = now_ms + self.config.fetch_timeout_ms;
                self.fetch(now_ms);
            }
            FetchBody::Snapshot { snapshot } => {
                self.deadline_ms = now_ms + self.config.fetch_timeout_ms;
                // KIP-630: the leader's log starts past ours; fetch its snapshot first. One
                // that ends below what we know committed is stale: fetch again.
                if snapshot.end_offset >= self.high_watermark && snapshot.end_offset > 0 {
                    self.fetching_snapshot = Some((snapshot, 0));
                }
                self.fetch(now_ms);
            }
            FetchBody::Records {
                from_offset,
                entries,
                high_watermark,
            } => {
                self.deadline_ms = now_ms + self.config.fetch_timeout_ms;
                if from_offset != self.log_end() {
                    return self.fetch(now_ms);
                }
                let got = !entries.is_empty();
                if got {
                    self.append(entries);
                }
                let hw = high_watermark.min(self.log_end());
                if hw > self.high_watermark {
                    self.high_watermark = hw;
                    self.out.push(Command::HighWatermark(hw));
                }
                if got {
                    self.fetch(now_ms);
                } else if let Role::Follower { next_fetch_ms, .. } = &mut self.role {
                    *next_fetch_ms = now_ms + FETCH_IDLE_MS;
                }
            }
        }
    }

    // ---- the log -----------------------------------------------------------------------------

    /// Fetches from the leader: the snapshot being fetched, else the log from its end.
    fn fetch(&mut self, now_ms: u64) {
        let Some(leader) = self.state.leader else {
            return;
        };
        if let Role::Follower { fetch_sent_ms, .. } = &mut self.role {
            *fetch_sent_ms = Some(now_ms);
        }
        let message = match self.fetching_snapshot {
            Some((snapshot, position)) => Message::FetchSnapshotRequest {
                epoch: self.state.epoch,
                snapshot,
                position,
            },
            None => Message::FetchRequest {
                epoch: self.state.epoch,
                fetch_offset: self.log_end(),
                last_fetched_epoch: self.last_epoch(),
            },
        };
        self.send(leader, message);
    }

    /// A voter's fetch counts for check-quorum even when it is answered with a snapshot id or
    /// a snapshot's bytes (Kafka's `updateCheckQuorumForFollowingVoter`).
    fn heard_from(&mut self, now_ms: u64, voter: NodeId) {
        if let Role::Leader { progress, .. } = &mut self.role {
            if let Some(p) = progress.get_mut(&voter) {
                p.last_fetch_ms = Some(now_ms);
            }
        }
    }

    fn on_fetch_snapshot_request(
        &mut self,
        now_ms: u64,
        follower: NodeId,
        epoch: Epoch,
        snapshot: SnapshotId,
        position: i64,
    ) {
        let leading = matches!(self.role, Role::Leader { .. }) && epoch == self.state.epoch;
        let body = if !leading {
            SnapshotBody::Fenced
        } else if !self.snapshots.contains(&snapshot) || position < 0 {
            SnapshotBody::NotFound
        } else {
            self.heard_from(now_ms, follower);
            return self.out.push(Command::ServeSnapshot {
                to: follower,
                snapshot,
                position,
            });
        };
        let response = Message::FetchSnapshotResponse {
            epoch: self.state.epoch,
            leader: self.state.leader,
            body,
        };
        self.send(follower, response);
    }

    fn on_fetch_snapshot_response(
        &mut self,
        now_ms: u64,
        from: NodeId,
        epoch: Epoch,
        leader: Option<NodeId>,
        body: SnapshotBody,
    ) {
        if epoch > self.state.epoch {
            return match leader {
                Some(leader) => self.become_follower(now_ms, epoch, leader),
                None => self.become_unattached(now_ms, epoch),
            };
        }
        if epoch < self.state.epoch || self.state.leader != Some(from) {
            return;
        }
        let Role::Follower { fetch_sent_ms, .. } = &mut self.role else {
            return;
        };
        *fetch_sent_ms = None;
        self.deadline_ms = now_ms + self.config.fetch_timeout_ms;
        match body {
            SnapshotBody::Fenced => {}
            SnapshotBody::NotFound => {
                // The leader moved on (a newer snapshot): ask for the log again, which names it.
                self.fetching_snapshot = None;
                self.fetch(now_ms);
            }
            SnapshotBody::Chunk {
                snapshot,
                size,
                position,
                bytes,
            } => self.on_snapshot_chunk(now_ms, snapshot, size, position, bytes),
        }
    }

    fn on_snapshot_chunk(
        &mut self,
        now_ms: u64,
        snapshot: SnapshotId,
        size: i64,
        position: i64,
        bytes: Bytes,
    ) {
        let Some((fetching, have)) = self.fetching_snapshot else {
            return;
        };
        if fetching != snapshot || position != have || (bytes.is_empty() && have < size) {
            return self.fetch(now_ms); // stale or useless: ask again from where we are
        }
        let have = have + bytes.len() as i64;
        self.out.push(Command::WriteSnapshotChunk {
            snapshot,
            position,
            bytes,
        });
        if have < size {
            self.fetching_snapshot = Some((snapshot, have));
            return self.fetch(now_ms);
        }
        self.fetching_snapshot = None;
        self.install_snapshot(snapshot);
        self.fetch(now_ms);
    }

    /// The fetched snapshot replaces the log: it starts, empty, at the snapshot's end offset,
    /// which is committed (a leader snapshots only its committed state).
    fn install_snapshot(&mut self, snapshot: SnapshotId) {
        self.out.push(Command::InstallSnapshot(snapshot));
        self.log.clear();
        self.log_start = snapshot.end_offset;
        self.snapshots = BTreeSet::from([snapshot]);
        if snapshot.end_offset > self.high_watermark {
            self.high_watermark = snapshot.end_offset;
            self.out.push(Command::HighWatermark(snapshot.end_offset));
        }
    }

    /// Appends and returns the offset of the first entry.
    fn append(&mut self, entries: Vec<Entry>) -> i64 {
        let from_offset = self.log_end();
        self.log.extend(entries.iter().cloned());
        self.out.push(Command::AppendLog {
            from_offset,
            entries,
        });
        from_offset
    }

    fn truncate(&mut self, end_offset: i64) {
        if end_offset >= self.log_end() {
            return;
        }
        assert!(
            end_offset >= self.high_watermark,
            "node {} would truncate committed entries: to {end_offset} below its high watermark {}",
            self.config.id,
            self.high_watermark
        );
        assert!(
            end_offset >= self.log_start,
            "node {} would truncate below its log start {}",
            self.config.id,
            self.log_start
        );
        self.log.truncate((end_offset - self.log_start) as usize);
        self.out.push(Command::TruncateLog { end_offset });
    }

    /// The HW is the largest offset a majority of voters hold, once an entry of the current
    /// epoch is among them.
    fn update_high_watermark(&mut self, _now_ms: u64) {
        let Role::Leader { progress, .. } = &self.role else {
            return;
        };
        let mut ends: Vec<i64> = progress.values().map(|p| p.end_offset).collect();
        ends.push(self.log_end());
        if self.config.bugs.leader_counts_itself_twice {
            ends.push(self.log_end());
        }
        ends.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = ends[self.config.majority() - 1];
        let current_epoch = self
            .entry(candidate - 1)
            .is_some_and(|e| e.epoch == self.state.epoch);
        if candidate > self.high_watermark && current_epoch {
            self.high_watermark = candidate;
            self.out.push(Command::HighWatermark(candidate));
        }
    }
}
