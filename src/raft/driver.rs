//! The KRaft driver: a controller process that runs one `RaftCore` against the world. It
//! performs the core's commands in order (the `quorum-state` file and the metadata log on the
//! disk, requests and responses on Kafka's wire), so the core stays free of I/O (etcd-io/raft's
//! `Ready`, openraft's `Runtime`).
//!
//! - The core sees one input at a time: inbound requests, responses to its own requests, ticks
//!   (every `TICK_MS`) and proposals all pass through one loop, which performs an input's
//!   commands to the end before taking the next.
//! - Persisting commands are finished before the next command: `PersistQuorumState` writes the
//!   file atomically and durably, `AppendLog` appends and fsyncs, `TruncateLog` truncates (and
//!   fsyncs the cut segment, so the log on disk never runs ahead of what the core believes). A
//!   vote or a fetch is thus answered only once what it promises is on disk (KIP-595, as
//!   Kafka's `KafkaRaftClient` flushes before it answers).
//! - The core's reply to a request (a `VoteResponse`, a `FetchResponse`) becomes that request's
//!   wire response; `BeginQuorumEpoch` and `EndQuorumEpoch` are acknowledged.
//! - Requests to the other voters go out on one `Connection` per voter (reconnected when it
//!   fails, after `RECONNECT_BACKOFF_MS`), each request in a task of its own, and their
//!   responses come back through the loop's queue.
//! - A disk that fails (full, broken) stops the controller, as Kafka's raft I/O thread exits on
//!   a log write error.
//!
//! - Snapshots (KIP-630, `snapshots`): the state machine's image is written as a snapshot once
//!   enough was committed since the last one, the log below an older snapshot is deleted by
//!   retention, a restart loads the latest snapshot and then the log after it, a follower
//!   behind the leader's log start fetches the leader's snapshot (`FetchSnapshot`).
//!
//! Trace events (node `ControllerContext::name`): `raft-snapshot` `{end_offset, epoch, source, records}`
//! (`generated`, `loaded` at a restart, `fetched` from the leader), `raft-log-start`
//! `{log_start, deleted_segments}`, `raft-snapshot-invalid`, `raft-restored`, `raft-role` `{epoch, role, leader}`,
//! `raft-hw` `{hw, last_epoch}` (on change; `last_epoch` is the epoch of the entry at `hw - 1`),
//! `raft-truncate` `{to}`, `raft-propose-dropped`, `raft-unrouted`, `listening`,
//! `listener-failed`, `protocol-error`, `stopped`.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestKind, ResponseKind};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::core::{Command, RaftConfig, RaftCore, RoleName};
use super::messages::{Entry, Epoch, Message, NodeId};
use super::snapshot::MetadataLogConfig;
use super::{quorum_state, wire};
use crate::protocol::codec::{decode_request_with, encode_response};
use crate::protocol::frame::{read_frame, write_frame};
use crate::protocol::versions::CONTROLLER_SUPPORTED;
use crate::protocol::{ClientError, Connection};
use crate::storage::log::{Log, LogConfig};
use crate::world::{derive_seed, Clock, Disk, SharedRecorder};

/// The metadata log's directory, which also holds `quorum-state` (Kafka's
/// `<metadata.log.dir>/__cluster_metadata-0`).
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";
/// How often the core's timers are checked.
pub const TICK_MS: u64 = 10;
/// `controller.quorum.request.timeout.ms` (2000).
pub const REQUEST_TIMEOUT_MS: u64 = 2000;
/// `reconnect.backoff.ms` (50): the least time between two connection attempts to one voter.
pub const RECONNECT_BACKOFF_MS: u64 = 50;
/// Inputs waiting for the loop; a connection that finds it full waits (back-pressure).
const INBOX_CAPACITY: usize = 1024;
/// Requests in flight to one voter; beyond, a request is dropped as a lossy network would (the
/// core sends again on its timers).
const MAX_IN_FLIGHT_PER_VOTER: usize = 64;
/// Bytes read from the log per step when restoring it.
const RESTORE_READ_BYTES: usize = 1 << 20;

#[path = "driver_snapshots.rs"]
mod snapshots;

/// What a controller process is given.
pub struct ControllerContext {
    pub id: NodeId,
    /// The node's name in the trace (`controller-1`).
    pub name: String,
    /// Every voter's controller listener, this one's included (`controller.quorum.voters`).
    pub voters: BTreeMap<NodeId, SocketAddr>,
    pub listen: SocketAddr,
    pub disk: Disk,
    pub clock: Clock,
    pub recorder: SharedRecorder,
    pub raft: RaftConfig,
    /// The seed of this controller's own randomness (its election timeouts).
    pub seed: u64,
    /// `metadata.max.idle.interval.ms` (KIP-835, default 500): the active controller appends a
    /// `NoOpRecord` this often, so the high watermark keeps moving with nothing else to write.
    /// `None` writes nothing of its own (the raft tests propose their own records).
    pub noop_interval_ms: Option<u64>,
    /// The metadata log's segment size, snapshot and retention configs.
    pub metadata_log: MetadataLogConfig,
}

/// Kafka's `NoOpRecord` (apiKey 20, version 0, no fields) in the metadata record framing:
/// frame version 1, record type 20, record version 0, then zero tagged fields.
pub const NOOP_RECORD: &[u8] = &[0x01, 0x14, 0x00, 0x00];

impl ControllerContext {
    /// The node's name in the trace.
    pub fn name(&self) -> String {
        self.name.clone()
    }

    fn event(&self, kind: &str, detail: serde_json::Value) {
        self.recorder.event(&self.name(), kind, detail);
    }
}

/// What runs on top of the log: Kafka's `RaftClient.Listener` (commits and leader changes), plus
/// the requests and timers of the active controller. The driver calls it from its one loop, so
/// it sees the log's commits, its own leadership and the requests in one order.
pub trait StateMachine: Send + 'static {
    /// The entry at `offset` is committed (called in offset order, once per entry per start).
    fn handle_commit(&mut self, now_ms: u64, offset: i64, entry: &Entry);
    /// This node starts leading `epoch` (`leading`), or stops. A new leader's log below its
    /// end will all be committed under it: `uncommitted` is that part above the committed
    /// prefix, from `first_offset`.
    fn handle_leader_change(
        &mut self,
        now_ms: u64,
        leading: bool,
        epoch: Epoch,
        first_offset: i64,
        uncommitted: &[Entry],
    );
    /// A request that is not the quorum's own. Returns the records to append (from
    /// `next_offset`; only while leading) and the response, sent once they are committed;
    /// `None` for a request it cannot serve (its connection is closed).
    fn handle_request(
        &mut self,
        now_ms: u64,
        next_offset: i64,
        request: RequestKind,
    ) -> Option<(Vec<Bytes>, ResponseKind)>;
    /// Timers; only called while leading. Returns records to append from `next_offset`.
    fn tick(&mut self, now_ms: u64, next_offset: i64) -> Vec<Bytes>;
    /// The records of the committed state as of the last entry `handle_commit` was given: a
    /// snapshot's content (Kafka's image written by its `SnapshotGenerator`). `None` for a
    /// machine that cannot be snapshotted (no snapshots are then taken).
    fn snapshot(&self) -> Option<Vec<Bytes>>;
    /// Replaces the committed state with a snapshot's `records`, the state of the log below
    /// `end_offset` (Kafka's `handleLoadSnapshot`).
    fn load_snapshot(&mut self, now_ms: u64, end_offset: i64, records: &[Bytes]);
}

/// Runs a controller until its node dies or its disk fails. `proposals` are appended to the
/// metadata log while this controller leads; one that arrives while it does not is dropped.
/// `machine`, when given, is told every commit and leader change, and answers the requests
/// that are not the quorum's own (`controller_apis`).
pub async fn run(
    ctx: Arc<ControllerContext>,
    proposals: Option<mpsc::Receiver<Bytes>>,
    machine: Option<Box<dyn StateMachine>>,
) {
    let (inbox_tx, inbox) = mpsc::channel(INBOX_CAPACITY);
    let result = match Controller::start(ctx.clone(), inbox_tx, machine).await {
        Ok(controller) => controller.serve(inbox, proposals).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        ctx.event("stopped", json!({ "error": e.to_string() }));
    }
}

/// One input to the core.
enum Input {
    /// A request from another voter; `reply` takes its wire response.
    Request {
        from: NodeId,
        api: ApiKey,
        message: Message,
        reply: oneshot::Sender<ResponseKind>,
    },
    /// The response to one of our requests.
    Response { from: NodeId, message: Message },
    /// A request for the state machine (`BrokerRegistration`, `CreateTopics`, …).
    Machine {
        request: Box<RequestKind>,
        reply: oneshot::Sender<ResponseKind>,
    },
}

/// The state machine's requests whose records are not committed yet, answered once the high
/// watermark passes `end_offset`.
struct Waiting {
    end_offset: i64,
    reply: oneshot::Sender<ResponseKind>,
    response: ResponseKind,
}

/// The request being handled, whose answer the core has not given yet.
struct PendingReply {
    from: NodeId,
    api: ApiKey,
    reply: oneshot::Sender<ResponseKind>,
}

/// Aborts the tasks a controller spawned when it stops (under madsim they die with the node).
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

struct Controller {
    ctx: Arc<ControllerContext>,
    core: RaftCore,
    log: Log,
    high_watermark: i64,
    inbox: mpsc::Sender<Input>,
    peers: BTreeMap<NodeId, Arc<Peer>>,
    /// When the next KIP-835 `NoOpRecord` is due, while leading.
    next_noop_ms: u64,
    machine: Option<Box<dyn StateMachine>>,
    /// The log below this offset has been given to the state machine as committed.
    applied: i64,
    waiting: Vec<Waiting>,
    snapshots: snapshots::SnapshotState,
}

impl Controller {
    /// Restores the quorum state and the metadata log, and the core from them.
    async fn start(
        ctx: Arc<ControllerContext>,
        inbox: mpsc::Sender<Input>,
        machine: Option<Box<dyn StateMachine>>,
    ) -> io::Result<Self> {
        let voters: BTreeSet<NodeId> = ctx.voters.keys().copied().collect();
        assert_eq!(ctx.raft.id, ctx.id, "the core's id is the controller's");
        assert_eq!(
            ctx.raft.voters, voters,
            "the core's voters are the listeners'"
        );
        let disk = &ctx.disk;
        let state = match quorum_state::read(disk, METADATA_LOG_DIR).await? {
            Some(file) => {
                if file.voters.as_ref().is_some_and(|v| *v != voters) {
                    // Kafka's QuorumState refuses a state written for another voter set.
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "quorum-state was written for voters {:?}, configured {voters:?}",
                            file.voters
                        ),
                    ));
                }
                file.state
            }
            None => Default::default(),
        };
        let log_config = LogConfig {
            segment_bytes: ctx.metadata_log.segment_bytes,
            ..LogConfig::default()
        };
        let (mut log, report) = Log::open(
            disk.clone(),
            METADATA_LOG_DIR,
            log_config,
            ctx.clock.now_ms(),
        )
        .await?;
        let entries = read_entries(&log).await?;
        let recovered = snapshots::recover(&ctx, &mut log, entries).await?;
        let now_ms = ctx.clock.elapsed_ms();
        // A fresh stream per start, so a restarted voter does not replay its old timeouts.
        let seed = derive_seed(ctx.seed, &format!("raft/{}/start/{now_ms}", ctx.id));
        let core = RaftCore::restore_from(
            ctx.raft.clone(),
            state,
            log.log_start_offset(),
            recovered.ids.clone(),
            recovered.entries,
            now_ms,
            seed,
        );
        ctx.event(
            "raft-restored",
            json!({
                "epoch": state.epoch,
                "voted_for": state.voted_for,
                "leader": state.leader,
                "log_start": core.log_start(),
                "leo": core.log_end(),
                "last_epoch": core.epoch_at(core.log_end() - 1).unwrap_or(0),
                "truncated_bytes": report.truncated_bytes,
                "reason": report.reason,
            }),
        );
        ctx.event(
            "raft-role",
            role_detail(core.role(), core.epoch(), core.leader()),
        );
        let peers = ctx
            .voters
            .iter()
            .filter(|(&id, _)| id != ctx.id)
            .map(|(&id, &addr)| (id, Arc::new(Peer::new(addr, &ctx))))
            .collect();
        let mut controller = Controller {
            ctx,
            high_watermark: core.high_watermark(),
            core,
            log,
            inbox,
            peers,
            next_noop_ms: now_ms,
            machine,
            applied: 0,
            waiting: Vec::new(),
            snapshots: snapshots::SnapshotState::new(now_ms, recovered.times),
        };
        if let Some((id, records)) = recovered.latest {
            controller.load_snapshot(id, &records, "loaded");
        }
        Ok(controller)
    }

    fn now_ms(&self) -> u64 {
        self.ctx.clock.elapsed_ms()
    }

    /// The loop: one input at a time, its commands performed to the end.
    async fn serve(
        mut self,
        mut inbox: mpsc::Receiver<Input>,
        mut proposals: Option<mpsc::Receiver<Bytes>>,
    ) -> io::Result<()> {
        let listener = TcpListener::bind(self.ctx.listen).await?;
        self.ctx
            .event("listening", json!({ "addr": self.ctx.listen.to_string() }));
        let _tasks = Tasks(vec![tokio::spawn(accept(
            listener,
            self.ctx.clone(),
            self.inbox.clone(),
        ))]);
        let mut ticker = tokio::time::interval(Duration::from_millis(TICK_MS));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Ticks first: their work is bounded, and a busy inbox must not starve the timers.
            tokio::select! {
                biased;
                _ = ticker.tick() => {
                    let commands = self.core.tick(self.now_ms());
                    self.perform(commands, None).await?;
                    self.maybe_append_noop().await?;
                    self.tick_machine().await?;
                    self.maybe_snapshot().await?;
                }
                Some(input) = inbox.recv() => self.on_input(input).await?,
                Some(data) = next_proposal(&mut proposals) => self.on_proposal(data).await?,
            }
        }
    }

    async fn on_input(&mut self, input: Input) -> io::Result<()> {
        let now_ms = self.now_ms();
        match input {
            Input::Request {
                from,
                api,
                message,
                reply,
            } => {
                let commands = self.core.receive(now_ms, from, message);
                let pending = PendingReply { from, api, reply };
                self.perform(commands, Some(pending)).await
            }
            Input::Response { from, message } => {
                let commands = self.core.receive(now_ms, from, message);
                self.perform(commands, None).await
            }
            Input::Machine { request, reply } => self.on_machine_request(*request, reply).await,
        }
    }

    /// A state-machine request: answered now when this node does not lead (`NOT_CONTROLLER`,
    /// by the machine's own answer when inactive) or writes nothing, else once its records
    /// commit.
    async fn on_machine_request(
        &mut self,
        request: RequestKind,
        reply: oneshot::Sender<ResponseKind>,
    ) -> io::Result<()> {
        let now_ms = self.now_ms();
        let next_offset = self.core.log_end();
        let Some(machine) = self.machine.as_mut() else {
            return Ok(()); // dropping `reply` closes the connection: nothing here answers it
        };
        let Some((records, response)) = machine.handle_request(now_ms, next_offset, request) else {
            return Ok(()); // dropping `reply` closes the connection
        };
        if records.is_empty() {
            // An answer that writes nothing may still rest on records of this leader not yet
            // committed (a topic it created, a broker it unfenced): it waits for them, as
            // Kafka's controller holds such a result until its last written offset commits.
            let end_offset = self.core.log_end();
            if self.core.role() == RoleName::Leader && end_offset > self.high_watermark {
                self.waiting.push(Waiting {
                    end_offset,
                    reply,
                    response,
                });
            } else {
                let _ = reply.send(response);
            }
            return Ok(());
        }
        let end_offset = self.propose_all(records).await?;
        match end_offset {
            Some(end_offset) if end_offset <= self.high_watermark => {
                let _ = reply.send(response);
            }
            Some(end_offset) => self.waiting.push(Waiting {
                end_offset,
                reply,
                response,
            }),
            None => {} // not leading after all: dropped, the connection closes
        }
        Ok(())
    }

    /// The state machine's timers, while leading.
    async fn tick_machine(&mut self) -> io::Result<()> {
        if self.core.role() != RoleName::Leader {
            return Ok(());
        }
        let now_ms = self.now_ms();
        let next_offset = self.core.log_end();
        let Some(machine) = self.machine.as_mut() else {
            return Ok(());
        };
        let records = machine.tick(now_ms, next_offset);
        if !records.is_empty() {
            self.propose_all(records).await?;
        }
        Ok(())
    }

    /// Appends records as leader, in order; the offset after the last, or `None` when this
    /// node turned out not to lead.
    async fn propose_all(&mut self, records: Vec<Bytes>) -> io::Result<Option<i64>> {
        let mut end_offset = None;
        for data in records {
            let expected = self.core.log_end();
            match self.core.propose(self.now_ms(), data) {
                Ok((offset, commands)) => {
                    assert_eq!(
                        offset,
                        expected,
                        "{}: a proposal lands at the log's end",
                        self.ctx.name()
                    );
                    end_offset = Some(offset + 1);
                    self.perform(commands, None).await?;
                }
                Err(leader) => {
                    let detail = json!({ "epoch": self.core.epoch(), "leader": leader });
                    self.ctx.event("raft-propose-dropped", detail);
                    return Ok(None);
                }
            }
        }
        Ok(end_offset)
    }

    /// KIP-835: while leading, a `NoOpRecord` every `metadata.max.idle.interval.ms`.
    async fn maybe_append_noop(&mut self) -> io::Result<()> {
        let (Some(interval), now_ms) = (self.ctx.noop_interval_ms, self.now_ms()) else {
            return Ok(());
        };
        if self.core.role() != RoleName::Leader || now_ms < self.next_noop_ms {
            return Ok(());
        }
        self.next_noop_ms = now_ms + interval;
        match self.core.propose(now_ms, Bytes::from_static(NOOP_RECORD)) {
            Ok((_offset, commands)) => self.perform(commands, None).await,
            Err(_) => Ok(()),
        }
    }

    async fn on_proposal(&mut self, data: Bytes) -> io::Result<()> {
        match self.core.propose(self.now_ms(), data) {
            Ok((_offset, commands)) => self.perform(commands, None).await,
            Err(leader) => {
                let detail = json!({ "epoch": self.core.epoch(), "leader": leader });
                self.ctx.event("raft-propose-dropped", detail);
                Ok(())
            }
        }
    }

    /// Carries out the core's commands in order, each persisting one durable before the next.
    async fn perform(
        &mut self,
        commands: Vec<Command>,
        mut pending: Option<PendingReply>,
    ) -> io::Result<()> {
        for command in commands {
            match command {
                Command::PersistQuorumState(state) => {
                    quorum_state::write(
                        &self.ctx.disk,
                        METADATA_LOG_DIR,
                        &state,
                        &self.ctx.raft.voters,
                    )
                    .await?
                }
                Command::TruncateLog { end_offset } => self.truncate(end_offset).await?,
                Command::AppendLog {
                    from_offset,
                    entries,
                } => self.append(from_offset, &entries).await?,
                Command::Send { to, message } => self.send(to, message, &mut pending),
                Command::HighWatermark(hw) => self.on_high_watermark(hw),
                Command::ServeSnapshot {
                    to,
                    snapshot,
                    position,
                } => {
                    let message = self.serve_snapshot(snapshot, position).await;
                    self.send(to, message, &mut pending);
                }
                Command::WriteSnapshotChunk {
                    snapshot,
                    position,
                    bytes,
                } => {
                    self.write_snapshot_chunk(snapshot, position, &bytes)
                        .await?
                }
                Command::InstallSnapshot(snapshot) => self.install_snapshot(snapshot).await?,
                Command::RoleChanged {
                    role,
                    epoch,
                    leader,
                } => {
                    self.ctx
                        .event("raft-role", role_detail(role, epoch, leader));
                    self.on_role_changed(role, epoch);
                }
            }
        }
        if let Some(PendingReply { api, reply, .. }) = pending {
            // BeginQuorumEpoch and EndQuorumEpoch are acknowledged as they are.
            let _ = reply.send(wire::to_response(api, None));
        }
        Ok(())
    }

    /// Traces the HW when it moves, with the epoch of the entry below it: by Raft's log
    /// matching property (§5.3) the pair names the whole committed prefix, so a checker can
    /// tell whether a later log still holds it.
    fn on_high_watermark(&mut self, hw: i64) {
        if hw == self.high_watermark {
            return;
        }
        self.high_watermark = hw;
        let last_epoch = self.core.epoch_at(hw - 1);
        self.ctx
            .event("raft-hw", json!({ "hw": hw, "last_epoch": last_epoch }));
        self.apply_committed();
        // Answer the requests whose records are now committed, in the order they came.
        let (done, still): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| w.end_offset <= hw);
        self.waiting = still;
        for w in done {
            let _ = w.reply.send(w.response);
        }
    }

    /// Gives the state machine every entry newly below the high watermark.
    fn apply_committed(&mut self) {
        let now_ms = self.now_ms();
        let Some(machine) = self.machine.as_mut() else {
            return;
        };
        let hw = self.high_watermark.min(self.core.log_end());
        let wall_ms = self.ctx.clock.now_ms();
        while self.applied < hw {
            let entry = self
                .core
                .entry(self.applied)
                .expect("the log holds what is committed and not yet applied");
            machine.handle_commit(now_ms, self.applied, entry);
            self.snapshots.applied(wall_ms, entry);
            self.applied += 1;
        }
    }

    /// Tells the state machine it leads or stops leading; requests still waiting for their
    /// records are dropped with the leadership (their connections close, and the brokers
    /// retry with the new leader, as Kafka's answer `NOT_CONTROLLER` makes them).
    fn on_role_changed(&mut self, role: RoleName, epoch: Epoch) {
        let now_ms = self.now_ms();
        let leading = role == RoleName::Leader;
        if !leading {
            self.waiting.clear();
        }
        let applied = self.applied;
        let Some(machine) = self.machine.as_mut() else {
            return;
        };
        let from = (applied - self.core.log_start()).clamp(0, self.core.log().len() as i64);
        let uncommitted = &self.core.log()[from as usize..];
        machine.handle_leader_change(now_ms, leading, epoch, applied, uncommitted);
    }

    async fn append(&mut self, from_offset: i64, entries: &[Entry]) -> io::Result<()> {
        assert_eq!(
            from_offset,
            self.log.log_end_offset(),
            "{}: the core appends at the metadata log's end",
            self.ctx.name()
        );
        let batches = wire::encode_entries(from_offset, entries);
        let now_ms = self.ctx.clock.now_ms();
        self.log.append_as_follower(&batches, now_ms).await?;
        self.log.flush().await
    }

    async fn truncate(&mut self, end_offset: i64) -> io::Result<()> {
        self.log.truncate_to(end_offset).await?;
        assert_eq!(
            self.log.log_end_offset(),
            end_offset,
            "{}: one-entry batches truncate exactly",
            self.ctx.name()
        );
        self.log.flush().await?;
        self.ctx.event("raft-truncate", json!({ "to": end_offset }));
        Ok(())
    }

    /// A request-shaped message goes out to its voter; a response-shaped one answers the
    /// request being handled.
    fn send(&self, to: NodeId, message: Message, pending: &mut Option<PendingReply>) {
        if let Some((api, version, request)) = wire::to_request(self.ctx.id, &message) {
            return self.send_request(to, api, version, request);
        }
        match pending.take() {
            Some(p) if p.from == to => {
                let _ = p.reply.send(wire::to_response(p.api, Some(&message)));
            }
            other => {
                *pending = other;
                let detail = json!({ "to": to, "message": format!("{message:?}") });
                self.ctx.event("raft-unrouted", detail);
            }
        }
    }

    fn send_request(&self, to: NodeId, api: ApiKey, version: i16, request: RequestKind) {
        let Some(peer) = self.peers.get(&to).cloned() else {
            let detail = json!({ "to": to, "api": format!("{api:?}") });
            return self.ctx.event("raft-unrouted", detail);
        };
        let Some(slot) = InFlight::take(&peer) else {
            return; // too many in flight: dropped, the core's timers send again
        };
        let inbox = self.inbox.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let response = peer.send(api, version, &request).await;
            if let Some(message) = response.ok().as_ref().and_then(wire::from_response) {
                let _ = inbox.send(Input::Response { from: to, message }).await;
            }
        });
    }
}

fn role_name(role: RoleName) -> &'static str {
    match role {
        RoleName::Unattached => "unattached",
        RoleName::Voted => "voted",
        RoleName::Candidate => "candidate",
        RoleName::Leader => "leader",
        RoleName::Follower => "follower",
        RoleName::Resigned => "resigned",
    }
}

fn role_detail(role: RoleName, epoch: i32, leader: Option<NodeId>) -> serde_json::Value {
    json!({ "epoch": epoch, "role": role_name(role), "leader": leader })
}

/// The next proposal; never, without a channel or once its senders are gone.
async fn next_proposal(proposals: &mut Option<mpsc::Receiver<Bytes>>) -> Option<Bytes> {
    match proposals {
        Some(rx) => match rx.recv().await {
            Some(data) => Some(data),
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Every entry of the metadata log, from its log start offset.
async fn read_entries(log: &Log) -> io::Result<Vec<Entry>> {
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let start = log.log_start_offset();
    let end = log.log_end_offset();
    let mut entries = Vec::new();
    while start + (entries.len() as i64) < end {
        let offset = start + entries.len() as i64;
        let read = log.read(offset, RESTORE_READ_BYTES).await?;
        let decoded = wire::decode_entries(&read.records).filter(|(from, batch)| {
            *from == offset && !batch.is_empty() && offset + batch.len() as i64 <= end
        });
        let Some((_, batch)) = decoded else {
            return Err(invalid(format!(
                "{}: the batches at offset {offset} are not one-record metadata entries",
                log.dir()
            )));
        };
        entries.extend(batch);
    }
    Ok(entries)
}

// ---- the network ---------------------------------------------------------------------------

/// Accepts connections from the other voters, one task each.
async fn accept(listener: TcpListener, ctx: Arc<ControllerContext>, inbox: mpsc::Sender<Input>) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                tokio::spawn(serve_connection(stream, ctx.clone(), inbox.clone()));
            }
            Err(e) => {
                // The loop goes on without inbound requests; the quorum sees a voter that is
                // down, and the trace says why.
                return ctx.event("listener-failed", json!({ "error": e.to_string() }));
            }
        }
    }
}

/// One inbound connection: each request is handed to the loop and answered, in order, as
/// Kafka's network layer answers a connection's requests. A malformed request closes it.
async fn serve_connection(
    stream: TcpStream,
    ctx: Arc<ControllerContext>,
    inbox: mpsc::Sender<Input>,
) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let protocol_error = |what: String| ctx.event("protocol-error", json!({ "error": what }));
    loop {
        let frame = match read_frame(&mut reader).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(e) => return protocol_error(format!("bad frame: {e}")),
        };
        let (header, request) = match decode_request_with(frame, CONTROLLER_SUPPORTED) {
            Ok(decoded) => decoded,
            Err(e) => return protocol_error(e.0),
        };
        let api = ApiKey::try_from(header.request_api_key).expect("decode_request checked the key");
        let response = if let RequestKind::ApiVersions(_) = request {
            ResponseKind::ApiVersions(api_versions())
        } else {
            let (reply, answer) = oneshot::channel();
            let input = match wire::from_request(&request) {
                Some((from, message)) => Input::Request {
                    from,
                    api,
                    message,
                    reply,
                },
                None if is_machine_api(api) => Input::Machine {
                    request: Box::new(request),
                    reply,
                },
                None => {
                    let what = format!("{api:?} is not a request for {METADATA_LOG_DIR}");
                    return protocol_error(what);
                }
            };
            if inbox.send(input).await.is_err() {
                return;
            }
            match answer.await {
                Ok(response) => response,
                Err(_) => return, // the controller stopped
            }
        };
        let version = header.request_api_version;
        let body = match encode_response(api, version, header.correlation_id, &response) {
            Ok(body) => body,
            Err(e) => return protocol_error(e.0),
        };
        if write_frame(&mut writer, &body).await.is_err() {
            return;
        }
    }
}

/// The APIs a controller serves beyond the quorum's own, for its state machine.
fn is_machine_api(api: ApiKey) -> bool {
    !matches!(
        api,
        ApiKey::Vote
            | ApiKey::BeginQuorumEpoch
            | ApiKey::EndQuorumEpoch
            | ApiKey::Fetch
            | ApiKey::FetchSnapshot
            | ApiKey::ApiVersions
    )
}

fn api_versions() -> ApiVersionsResponse {
    crate::protocol::versions::api_versions_response(CONTROLLER_SUPPORTED)
}

/// The connection to one other voter, shared by the requests in flight to it.
struct Peer {
    addr: SocketAddr,
    client_id: String,
    connection: tokio::sync::Mutex<Option<Arc<Connection>>>,
    /// When the last connection attempt failed (`u64::MAX`: none failed yet).
    failed_at_ms: AtomicU64,
    in_flight: AtomicUsize,
    clock: Clock,
}

impl Peer {
    fn new(addr: SocketAddr, ctx: &ControllerContext) -> Self {
        Peer {
            addr,
            client_id: ctx.name(),
            connection: tokio::sync::Mutex::new(None),
            failed_at_ms: AtomicU64::new(u64::MAX),
            in_flight: AtomicUsize::new(0),
            clock: ctx.clock.clone(),
        }
    }

    /// The open connection, or a new one unless the last attempt failed too recently.
    async fn connection(&self) -> Result<Arc<Connection>, ClientError> {
        let mut slot = self.connection.lock().await;
        let now_ms = self.clock.elapsed_ms();
        if let Some(open) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(open.clone());
        }
        let failed_at_ms = self.failed_at_ms.load(Ordering::Relaxed);
        if failed_at_ms != u64::MAX && now_ms < failed_at_ms + RECONNECT_BACKOFF_MS {
            return Err(ClientError::NotSent("reconnect backoff".into()));
        }
        match Connection::connect(self.addr, &self.client_id).await {
            Ok(connection) => {
                let connection = Arc::new(connection);
                *slot = Some(connection.clone());
                self.failed_at_ms.store(u64::MAX, Ordering::Relaxed);
                Ok(connection)
            }
            Err(e) => {
                *slot = None;
                self.failed_at_ms.store(now_ms, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    async fn send(
        &self,
        api: ApiKey,
        version: i16,
        request: &RequestKind,
    ) -> Result<ResponseKind, ClientError> {
        let connection = self.connection().await?;
        let timeout = Duration::from_millis(REQUEST_TIMEOUT_MS);
        connection.send(api, version, request, timeout).await
    }
}

/// A place among a voter's requests in flight, given back when dropped.
struct InFlight(Arc<Peer>);

impl InFlight {
    fn take(peer: &Arc<Peer>) -> Option<InFlight> {
        let taken = peer.in_flight.fetch_add(1, Ordering::Relaxed);
        if taken >= MAX_IN_FLIGHT_PER_VOTER {
            peer.in_flight.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(InFlight(peer.clone()))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
