//! The KRaft quorum as processes: three controllers on madsim nodes, each with a simulated disk
//! that loses what was not fsynced when its machine crashes, talking Kafka's wire protocol to
//! each other, and a proposer that appends a record every 50 ms through whoever leads.
//!
//! Every run is checked, over its whole trace and the logs read off the disks at the end, for
//! the two guarantees of Raft that Kafka's own raft simulation test (`RaftEventSimulationTest`)
//! checks: one leader per epoch (`split-brain`; Raft §5.2's election safety) and no committed
//! entry ever lost or changed (`metadata-lost`; §5.4's leader completeness and state machine
//! safety).
#![cfg(madsim)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use madsim::net::NetSim;
use madsim::runtime::{Handle, Runtime};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use samsa::raft::driver::{self, ControllerContext, METADATA_LOG_DIR};
use samsa::raft::quorum_state::{self, QUORUM_STATE_FILE};
use samsa::raft::{Entry, Epoch, NodeId, RaftConfig};
use samsa::storage::batch;
use samsa::world::sim_disk::SimDiskBackend;
use samsa::world::{derive_seed, Clock, Disk, Recorder, SharedRecorder};
use samsa_sim::disk::{DiskConfig, SimDisk};
use samsa_sim::history::OpType;
use serde_json::Value;
use tokio::sync::mpsc;

const VOTERS: [NodeId; 3] = [1, 2, 3];
const CONTROLLER_PORT: u16 = 9093;
const PROPOSE_EVERY_MS: u64 = 50;
const SEEDS: std::ops::RangeInclusive<u64> = 1..=10;

// ---- the world -----------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
struct Event {
    at_ms: u64,
    node: String,
    kind: String,
    detail: Value,
}

/// The trace, in memory, stamped with simulated time.
struct MemRecorder {
    clock: Clock,
    events: Mutex<Vec<Event>>,
}

impl Recorder for MemRecorder {
    fn event(&self, node: &str, kind: &str, detail: Value) {
        let event = Event {
            at_ms: self.clock.elapsed_ms(),
            node: node.to_string(),
            kind: kind.to_string(),
            detail,
        };
        self.events.lock().unwrap().push(event);
    }

    fn op(&self, _process: &str, _kind: OpType, _f: &str, _value: Value) {}
}

fn controller_ip(id: NodeId) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, id as u8))
}

fn name(id: NodeId) -> String {
    format!("controller-{id}")
}

fn id_of(node: &str) -> Option<NodeId> {
    node.strip_prefix("controller-")?.parse().ok()
}

/// Three controllers on nodes of their own, with their disks and proposal channels.
struct Quorum {
    handle: Handle,
    clock: Clock,
    recorder: Arc<MemRecorder>,
    nodes: BTreeMap<NodeId, madsim::task::NodeId>,
    disks: BTreeMap<NodeId, Arc<Mutex<SimDisk>>>,
    /// Each running controller's proposal channel, replaced when it restarts.
    proposals: Arc<Mutex<BTreeMap<NodeId, mpsc::Sender<Bytes>>>>,
    /// The faults' own random stream (how a crash tears).
    rng: ChaCha8Rng,
}

impl Quorum {
    fn start(seed: u64, configure: Configure) -> Quorum {
        let handle = Handle::current();
        let clock = Clock::starting_at(samsa::world::clock::SIM_EPOCH_MS);
        let recorder = Arc::new(MemRecorder {
            clock: clock.clone(),
            events: Mutex::new(Vec::new()),
        });
        let voters: BTreeMap<NodeId, SocketAddr> = VOTERS
            .iter()
            .map(|&id| (id, SocketAddr::new(controller_ip(id), CONTROLLER_PORT)))
            .collect();
        let mut quorum = Quorum {
            handle: handle.clone(),
            clock: clock.clone(),
            recorder: recorder.clone(),
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            proposals: Arc::new(Mutex::new(BTreeMap::new())),
            rng: ChaCha8Rng::seed_from_u64(derive_seed(seed, "faults")),
        };
        for &id in &VOTERS {
            let sim_disk = Arc::new(Mutex::new(SimDisk::new(DiskConfig::default())));
            let disk_clock = clock.clone();
            let backend = SimDiskBackend::new(
                sim_disk.clone(),
                derive_seed(seed, &format!("disk/{}", name(id))),
                Arc::new(move || disk_clock.elapsed_ms()),
            );
            let mut raft = RaftConfig::new(id, VOTERS);
            configure(&mut raft);
            let shared: SharedRecorder = recorder.clone();
            let ctx = Arc::new(ControllerContext {
                id,
                name: name(id),
                voters: voters.clone(),
                listen: voters[&id],
                disk: Disk::new(Arc::new(backend)),
                clock: clock.for_node(),
                recorder: shared,
                raft,
                seed: derive_seed(seed, &format!("raft/{}", name(id))),
                noop_interval_ms: None,
                metadata_log: Default::default(),
            });
            let proposals = quorum.proposals.clone();
            let node = handle
                .create_node()
                .name(name(id))
                .ip(controller_ip(id))
                .init(move || {
                    let (tx, rx) = mpsc::channel(64);
                    proposals.lock().unwrap().insert(id, tx);
                    driver::run(ctx.clone(), Some(rx), None)
                })
                .build();
            quorum.nodes.insert(id, node.id());
            quorum.disks.insert(id, sim_disk);
        }
        quorum
    }

    fn now_ms(&self) -> u64 {
        self.clock.elapsed_ms()
    }

    fn trace(&self) -> Vec<Event> {
        self.recorder.events.lock().unwrap().clone()
    }

    fn world(&self, kind: &str, detail: Value) {
        self.recorder.event("world", kind, detail);
    }

    async fn sleep_ms(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// Proposes `record-<n>` every 50 ms to every controller whose last role in the trace is
    /// leader (a cut-off leader that does not know it was replaced gets them too); one that is
    /// down or no longer leads drops it.
    fn spawn_proposer(&self) {
        let recorder = self.recorder.clone();
        let proposals = self.proposals.clone();
        tokio::spawn(async move {
            for n in 0u64.. {
                tokio::time::sleep(Duration::from_millis(PROPOSE_EVERY_MS)).await;
                let trace = recorder.events.lock().unwrap().clone();
                let leaders = last_roles(&trace)
                    .into_iter()
                    .filter(|(_, (role, ..))| role == "leader");
                for (id, _) in leaders {
                    let sender = proposals.lock().unwrap().get(&id).cloned();
                    if let Some(sender) = sender {
                        let _ = sender.try_send(Bytes::from(format!("record-{n}")));
                    }
                }
            }
        });
    }

    fn kill(&mut self, id: NodeId) {
        self.handle.kill(self.nodes[&id]);
        self.world("kill", serde_json::json!({ "node": name(id) }));
    }

    /// The machine dies: the process, and whatever its disk had not made durable.
    fn crash(&mut self, id: NodeId) {
        self.handle.kill(self.nodes[&id]);
        let now_ms = self.now_ms();
        let report = self.disks[&id].lock().unwrap().crash(now_ms, &mut self.rng);
        let detail = serde_json::json!({ "node": name(id), "lost_bytes": report.lost_bytes() });
        self.world("crash", detail);
    }

    fn restart(&mut self, id: NodeId) {
        self.handle.restart(self.nodes[&id]);
        self.world("restart", serde_json::json!({ "node": name(id) }));
    }

    fn isolate(&mut self, id: NodeId) {
        NetSim::current().clog_node(self.nodes[&id]);
        self.world("isolate", serde_json::json!({ "node": name(id) }));
    }

    fn heal(&mut self, id: NodeId) {
        NetSim::current().unclog_node(self.nodes[&id]);
        self.world("heal", serde_json::json!({ "node": name(id) }));
    }

    /// Each controller's files: path → bytes.
    fn files(&self) -> BTreeMap<NodeId, BTreeMap<String, Vec<u8>>> {
        self.disks
            .iter()
            .map(|(&id, disk)| {
                let disk = disk.lock().unwrap();
                let files = disk.files().map(|(p, b)| (p.to_string(), b.to_vec()));
                (id, files.collect())
            })
            .collect()
    }

    /// Each controller's metadata log, read off its disk (what survives is what is there).
    fn final_logs(&self) -> BTreeMap<NodeId, Vec<Entry>> {
        self.disks
            .iter()
            .map(|(&id, disk)| (id, read_log(&disk.lock().unwrap())))
            .collect()
    }

    async fn wait_for_leader(&self, deadline_ms: u64) -> (NodeId, Epoch) {
        while self.now_ms() < deadline_ms {
            if let Some(leader) = latest_leader(&self.trace()) {
                return leader;
            }
            self.sleep_ms(10).await;
        }
        panic!("no leader by {deadline_ms} ms");
    }
}

/// Changes to Kafka's defaults of every controller's `RaftConfig`.
type Configure = fn(&mut RaftConfig);

const KAFKA_DEFAULTS: Configure = |_| {};

/// Runs `scenario` in a fresh simulation of `seed`, returning what it returns.
fn simulate<T, Fut>(seed: u64, configure: Configure, scenario: impl FnOnce(Quorum) -> Fut) -> T
where
    Fut: Future<Output = T>,
{
    let runtime = Runtime::with_seed_and_config(seed, madsim::Config::default());
    runtime.block_on(async move { scenario(Quorum::start(seed, configure)).await })
}

// ---- reading the trace and the disks -------------------------------------------------------

fn roles(trace: &[Event]) -> impl Iterator<Item = (usize, &Event, NodeId, &str, Epoch)> {
    trace.iter().enumerate().filter_map(|(i, e)| {
        let id = id_of(&e.node)?;
        let role = e.detail["role"].as_str()?;
        let epoch = e.detail["epoch"].as_i64()? as Epoch;
        (e.kind == "raft-role").then_some((i, e, id, role, epoch))
    })
}

/// The leader of the highest epoch any controller has led, as the trace has it so far.
fn latest_leader(trace: &[Event]) -> Option<(NodeId, Epoch)> {
    roles(trace)
        .filter(|(_, _, _, role, _)| *role == "leader")
        .map(|(_, _, id, _, epoch)| (id, epoch))
        .max_by_key(|&(_, epoch)| epoch)
}

/// Each controller's last role.
fn last_roles(trace: &[Event]) -> BTreeMap<NodeId, (String, Epoch, u64)> {
    roles(trace)
        .map(|(_, e, id, role, epoch)| (id, (role.to_string(), epoch, e.at_ms)))
        .collect()
}

/// `(index in trace, at_ms, node, hw)` of every `raft-hw`.
fn hws(trace: &[Event]) -> Vec<(usize, u64, NodeId, i64)> {
    trace
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == "raft-hw")
        .filter_map(|(i, e)| Some((i, e.at_ms, id_of(&e.node)?, e.detail["hw"].as_i64()?)))
        .collect()
}

fn max_hw(trace: &[Event], node: Option<NodeId>) -> i64 {
    hws(trace)
        .into_iter()
        .filter(|&(_, _, id, _)| node.is_none_or(|n| n == id))
        .map(|(_, _, _, hw)| hw)
        .max()
        .unwrap_or(0)
}

/// The metadata log on a disk: its segments' batches in order, to the first that does not
/// validate (a torn tail), one entry per record with its batch's leader epoch.
fn read_log(disk: &SimDisk) -> Vec<Entry> {
    let prefix = format!("{METADATA_LOG_DIR}/");
    let mut entries = Vec::new();
    for (path, bytes) in disk.files() {
        if !path.starts_with(&prefix) || !path.ends_with(".log") {
            continue;
        }
        for (position, header) in batch::batches(bytes) {
            let end = position + header.size_in_bytes();
            let Ok((_, records)) = batch::decode_records(&bytes[position..end]) else {
                return entries;
            };
            for record in records {
                if record.offset != entries.len() as i64 {
                    return entries;
                }
                let data = record.value.unwrap_or_default();
                entries.push(Entry {
                    epoch: header.partition_leader_epoch,
                    data,
                });
            }
        }
    }
    entries
}

// ---- the invariants ------------------------------------------------------------------------

/// `split-brain`: two controllers leading in one epoch.
fn split_brain(trace: &[Event]) -> Vec<String> {
    let mut leaders: BTreeMap<Epoch, BTreeSet<NodeId>> = BTreeMap::new();
    for (_, _, id, role, epoch) in roles(trace) {
        if role == "leader" {
            leaders.entry(epoch).or_default().insert(id);
        }
    }
    leaders
        .into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(epoch, ids)| format!("split-brain: epoch {epoch} had leaders {ids:?}"))
        .collect()
}

/// A commit a controller reported: its HW moved to `hw`, the entry below it of `last_epoch`.
/// By Raft's log matching property (§5.3) the pair names the whole prefix.
struct Commit {
    index: usize,
    at_ms: u64,
    node: NodeId,
    hw: i64,
    last_epoch: Epoch,
}

fn commits(trace: &[Event]) -> Vec<Commit> {
    trace
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == "raft-hw")
        .filter_map(|(index, e)| {
            Some(Commit {
                index,
                at_ms: e.at_ms,
                node: id_of(&e.node)?,
                hw: e.detail["hw"].as_i64().filter(|&hw| hw > 0)?,
                last_epoch: e.detail["last_epoch"].as_i64()? as Epoch,
            })
        })
        .collect()
}

fn holds(log: &[Entry], commit: &Commit) -> bool {
    log.get(commit.hw as usize - 1).map(|e| e.epoch) == Some(commit.last_epoch)
}

/// `metadata-lost`: what a controller reported committed (below its HW) is one log, never
/// leaves a log that held it, and is in the log of every controller elected leader after it
/// was reported (Raft §5.4, leader completeness). The final logs are read off the disks.
fn metadata_lost(trace: &[Event], logs: &BTreeMap<NodeId, Vec<Entry>>) -> Vec<String> {
    let commits = commits(trace);
    let mut violations = Vec::new();
    let mut named: BTreeMap<i64, &Commit> = BTreeMap::new();
    for commit in &commits {
        let first = *named.entry(commit.hw - 1).or_insert(commit);
        if first.last_epoch != commit.last_epoch {
            violations.push(format!(
                "metadata-lost: offset {} was committed in epoch {} by controller-{} and in \
                 epoch {} by controller-{}",
                commit.hw - 1,
                first.last_epoch,
                first.node,
                commit.last_epoch,
                commit.node
            ));
        }
    }
    let mut lost_on = BTreeSet::new();
    for commit in &commits {
        if !holds(&logs[&commit.node], commit) && lost_on.insert(commit.node) {
            violations.push(format!(
                "metadata-lost: controller-{} reported offset {} (epoch {}) committed at {} ms; \
                 its final log holds {:?}",
                commit.node,
                commit.hw - 1,
                commit.last_epoch,
                commit.at_ms,
                logs[&commit.node].get(commit.hw as usize - 1)
            ));
        }
    }
    for (index, event, id, role, epoch) in roles(trace) {
        let before = commits.iter().filter(|c| c.index < index);
        let Some(commit) = before.max_by_key(|c| c.hw) else {
            continue;
        };
        if role == "leader" && !holds(&logs[&id], commit) {
            violations.push(format!(
                "metadata-lost: controller-{id}, leader of epoch {epoch} from {} ms, does not \
                 hold offset {} (epoch {}), reported committed by controller-{} at {} ms",
                event.at_ms,
                commit.hw - 1,
                commit.last_epoch,
                commit.node,
                commit.at_ms
            ));
        }
    }
    violations.extend(committed_bytes_differ(trace, logs));
    violations
}

/// The committed prefix holds the same bytes on every controller, up to the HW it reported.
fn committed_bytes_differ(trace: &[Event], logs: &BTreeMap<NodeId, Vec<Entry>>) -> Vec<String> {
    let mut violations = Vec::new();
    let mut committed: BTreeMap<usize, (NodeId, &Entry)> = BTreeMap::new();
    for (&id, log) in logs {
        let hw = max_hw(trace, Some(id)).max(0) as usize;
        for (offset, entry) in log.iter().take(hw).enumerate() {
            let (first, other) = *committed.entry(offset).or_insert((id, entry));
            if other != entry {
                violations.push(format!(
                    "metadata-lost: committed offset {offset} is {other:?} on controller-{first} \
                     and {entry:?} on controller-{id}"
                ));
                break;
            }
        }
    }
    violations
}

fn assert_safe(seed: u64, trace: &[Event], logs: &BTreeMap<NodeId, Vec<Entry>>) {
    let mut violations = split_brain(trace);
    violations.extend(metadata_lost(trace, logs));
    assert!(
        violations.is_empty(),
        "seed {seed}: {violations:#?}\nREPRODUCE WITH: cargo test --test kraft"
    );
}

fn first_leader_after(
    trace: &[Event],
    after_ms: u64,
    above: Epoch,
) -> Option<(u64, NodeId, Epoch)> {
    roles(trace)
        .find(|&(_, e, _, role, epoch)| role == "leader" && e.at_ms >= after_ms && epoch > above)
        .map(|(_, e, id, _, epoch)| (e.at_ms, id, epoch))
}

/// Every controller's `quorum-state` holds the epoch and leader it last announced, in Kafka's
/// format, and nothing is left of the temporary file it is written through.
fn assert_quorum_state_files(
    seed: u64,
    trace: &[Event],
    files: &BTreeMap<NodeId, BTreeMap<String, Vec<u8>>>,
) {
    let path = format!("{METADATA_LOG_DIR}/{QUORUM_STATE_FILE}");
    for (id, (role, epoch, _)) in last_roles(trace) {
        let text = std::str::from_utf8(&files[&id][&path]).unwrap();
        let file = quorum_state::decode(text).unwrap();
        assert_eq!(
            file.state.epoch, epoch,
            "seed {seed}: controller-{id}: {text}"
        );
        if role == "leader" || role == "follower" {
            assert!(
                file.state.leader.is_some(),
                "seed {seed}: controller-{id}: {text}"
            );
        }
        assert_eq!(
            file.voters,
            Some(VOTERS.into_iter().collect()),
            "seed {seed}"
        );
        assert!(
            !files[&id].contains_key(&format!("{path}.tmp")),
            "seed {seed}"
        );
        if seed == 1 {
            let names: Vec<&String> = files[&id].keys().collect();
            println!("controller-{id}'s disk: {names:?}\n  {path}: {text}");
        }
    }
}

// ---- the tests -----------------------------------------------------------------------------

#[test]
fn a_leader_is_elected_within_a_few_seconds_and_commits() {
    for seed in SEEDS {
        let (trace, logs, files) = simulate(seed, KAFKA_DEFAULTS, |quorum| async move {
            quorum.spawn_proposer();
            quorum.sleep_ms(10_000).await;
            (quorum.trace(), quorum.final_logs(), quorum.files())
        });
        let (elected_ms, leader, epoch) =
            first_leader_after(&trace, 0, 0).unwrap_or_else(|| panic!("seed {seed}: no leader"));
        let hw = max_hw(&trace, None);
        println!(
            "seed {seed}: controller-{leader} leads epoch {epoch} after {elected_ms} ms; \
             HW {hw} at 10 s"
        );
        assert!(
            elected_ms < 4_000,
            "seed {seed}: elected after {elected_ms} ms"
        );
        // 20 proposals a second from the election on, less the last moments' in flight.
        let expected = ((10_000 - elected_ms) / PROPOSE_EVERY_MS) as i64 * 8 / 10;
        assert!(hw >= expected, "seed {seed}: HW {hw} < {expected}");
        for (id, log) in &logs {
            assert!(
                log.len() as i64 >= hw - 5,
                "seed {seed}: controller-{id} lags: {}",
                log.len()
            );
        }
        assert_quorum_state_files(seed, &trace, &files);
        assert_safe(seed, &trace, &logs);
    }
}

/// A run where the leader is killed 3 s into its reign and restarted 10 s later.
struct Failover {
    trace: Vec<Event>,
    logs: BTreeMap<NodeId, Vec<Entry>>,
    killed_at_ms: u64,
    restarted_at_ms: u64,
    old: (NodeId, Epoch),
}

fn kill_the_leader(seed: u64, configure: Configure) -> Failover {
    simulate(seed, configure, |mut quorum| async move {
        quorum.spawn_proposer();
        let old = quorum.wait_for_leader(5_000).await;
        quorum.sleep_ms(3_000).await;
        let killed_at_ms = quorum.now_ms();
        quorum.kill(old.0);
        quorum.sleep_ms(10_000).await;
        let restarted_at_ms = quorum.now_ms();
        quorum.restart(old.0);
        quorum.sleep_ms(10_000).await;
        Failover {
            trace: quorum.trace(),
            logs: quorum.final_logs(),
            killed_at_ms,
            restarted_at_ms,
            old,
        }
    })
}

#[test]
fn a_new_leader_takes_over_when_the_leader_is_killed() {
    for seed in SEEDS {
        let Failover {
            trace,
            logs,
            killed_at_ms,
            restarted_at_ms,
            old,
        } = kill_the_leader(seed, KAFKA_DEFAULTS);
        let (old_leader, old_epoch) = old;
        let hw_at_kill = hws(&trace)
            .into_iter()
            .filter(|&(_, at, ..)| at <= killed_at_ms)
            .map(|(.., hw)| hw)
            .max()
            .unwrap_or(0);
        let (elected_ms, leader, epoch) = first_leader_after(&trace, killed_at_ms, old_epoch)
            .unwrap_or_else(|| panic!("seed {seed}: no leader after the kill"));
        let new_hw = max_hw(&trace, Some(leader));
        println!(
            "seed {seed}: killed controller-{old_leader} (epoch {old_epoch}, HW {hw_at_kill}); \
             controller-{leader} leads epoch {epoch} {} ms later; its HW reaches {new_hw}",
            elected_ms - killed_at_ms
        );
        assert_ne!(leader, old_leader, "seed {seed}");
        assert!(
            elected_ms - killed_at_ms < 6_000,
            "seed {seed}: failover took {} ms",
            elected_ms - killed_at_ms
        );
        assert!(
            new_hw > hw_at_kill + 100,
            "seed {seed}: commits did not continue: {hw_at_kill} -> {new_hw}"
        );
        // The old leader came back as a follower and caught up. Without pre-vote (KIP-996) it
        // may first disrupt the quorum with elections it cannot win.
        let epoch_at_restart = roles(&trace)
            .filter(|&(_, e, ..)| e.at_ms <= restarted_at_ms)
            .map(|(.., epoch)| epoch)
            .max()
            .unwrap_or(0);
        let (rejoined_ms, final_epoch) = roles(&trace)
            .find(|&(_, e, id, role, _)| {
                id == old_leader && role == "follower" && e.at_ms >= restarted_at_ms
            })
            .map(|(_, e, _, _, epoch)| (e.at_ms - restarted_at_ms, epoch))
            .unwrap_or_else(|| panic!("seed {seed}: the restarted controller never follows"));
        println!(
            "  the restarted controller-{old_leader} follows {rejoined_ms} ms after its restart, \
             in epoch {final_epoch} (the quorum was in epoch {epoch_at_restart})"
        );
        let back = &logs[&old_leader];
        assert!(
            back.len() as i64 >= new_hw - 10,
            "seed {seed}: the restarted controller holds {} of {new_hw}",
            back.len()
        );
        assert_safe(seed, &trace, &logs);
    }
}

#[test]
fn a_crashed_follower_restarts_from_its_disk_and_catches_up() {
    for seed in SEEDS {
        let (trace, logs, follower, crashed_at_ms, restarted_at_ms) =
            simulate(seed, KAFKA_DEFAULTS, |mut quorum| async move {
                quorum.spawn_proposer();
                let (leader, _) = quorum.wait_for_leader(5_000).await;
                quorum.sleep_ms(3_000).await;
                let follower = *VOTERS.iter().find(|&&v| v != leader).unwrap();
                let crashed_at_ms = quorum.now_ms();
                quorum.crash(follower);
                quorum.sleep_ms(3_000).await;
                let restarted_at_ms = quorum.now_ms();
                quorum.restart(follower);
                quorum.sleep_ms(7_000).await;
                let out = (quorum.trace(), quorum.final_logs());
                (out.0, out.1, follower, crashed_at_ms, restarted_at_ms)
            });
        let hw_before_crash = hws(&trace)
            .into_iter()
            .filter(|&(_, at, id, _)| id == follower && at <= crashed_at_ms)
            .map(|(.., hw)| hw)
            .max()
            .unwrap_or(0);
        let restored = trace
            .iter()
            .find(|e| {
                e.kind == "raft-restored" && e.node == name(follower) && e.at_ms >= restarted_at_ms
            })
            .unwrap_or_else(|| panic!("seed {seed}: controller-{follower} did not restart"));
        let restored_leo = restored.detail["leo"].as_i64().unwrap();
        let quorum_hw_at_restart = hws(&trace)
            .into_iter()
            .filter(|&(_, at, ..)| at <= restarted_at_ms)
            .map(|(.., hw)| hw)
            .max()
            .unwrap_or(0);
        let leader_hw = max_hw(&trace, None);
        let caught_up_ms = hws(&trace)
            .into_iter()
            .find(|&(_, at, id, hw)| {
                id == follower && at >= restarted_at_ms && hw >= quorum_hw_at_restart
            })
            .map(|(_, at, ..)| at - restarted_at_ms);
        let lost_bytes = trace
            .iter()
            .find(|e| e.kind == "crash")
            .and_then(|e| e.detail["lost_bytes"].as_u64())
            .unwrap_or(0);
        println!(
            "seed {seed}: crashed controller-{follower} at its HW {hw_before_crash} (the disk \
             lost {lost_bytes} unsynced bytes), down {} ms; it restored {restored_leo} entries from its disk and reached the quorum's \
             HW at its restart ({quorum_hw_at_restart}) {caught_up_ms:?} ms later; final log {} \
             (quorum HW {leader_hw})",
            restarted_at_ms - crashed_at_ms,
            logs[&follower].len()
        );
        // What it acknowledged was fsynced: the crash cannot have taken it.
        assert!(
            restored_leo >= hw_before_crash,
            "seed {seed}: {restored_leo} < {hw_before_crash}"
        );
        assert!(
            caught_up_ms.is_some_and(|ms| ms < 1_000),
            "seed {seed}: {caught_up_ms:?}"
        );
        assert!(
            logs[&follower].len() as i64 >= leader_hw - 10,
            "seed {seed}"
        );
        assert_safe(seed, &trace, &logs);
    }
}

/// The checks find a planted bug: a leader that counts its own log twice commits alone. Cut
/// off from the others, it reports entries committed that no one else holds; the others elect
/// a leader without them, and when the old leader comes back (killed, so its HW starts at 0
/// again and no assertion of its own stops it) it truncates them: `metadata-lost`. Where a
/// follower that learned the false HW is told to truncate below it, the core's own assertion
/// stops the run first.
#[test]
fn planted_bug_leader_counting_itself_twice_is_found() {
    let (mut caught, mut missed) = (0, Vec::new());
    for seed in SEEDS {
        let run = std::panic::catch_unwind(|| {
            simulate(
                seed,
                |c| c.bugs.leader_counts_itself_twice = true,
                |mut quorum| async move {
                    quorum.spawn_proposer();
                    let (leader, _) = quorum.wait_for_leader(5_000).await;
                    quorum.sleep_ms(1_000).await;
                    quorum.isolate(leader);
                    quorum.sleep_ms(2_000).await;
                    quorum.kill(leader);
                    quorum.heal(leader);
                    quorum.sleep_ms(3_000).await;
                    quorum.restart(leader);
                    quorum.sleep_ms(8_000).await;
                    (quorum.trace(), quorum.final_logs())
                },
            )
        });
        let violations = match run {
            Ok((trace, logs)) => metadata_lost(&trace, &logs),
            Err(panic) => vec![format!("panic: {}", panic_message(&*panic))],
        };
        println!(
            "seed {seed}: {} found, the first: {:?}",
            violations.len(),
            violations.first()
        );
        // Or the core's own pair assertion stopped a follower told to truncate below its HW
        // first (the runner reports a panic as the `panic` check).
        let found = |v: &String| {
            v.starts_with("metadata-lost") || v.contains("would truncate committed entries")
        };
        if violations.iter().any(found) {
            caught += 1;
        } else {
            missed.push(seed);
        }
    }
    // The bug shows only where the isolated leader's lone commits meet a new leader's before it
    // is killed; with the run's task schedule drawn from the seed, a seed may not line that up.
    assert!(
        caught * 10 >= SEEDS.count() * 8,
        "the planted bug went unnoticed on seeds {missed:?}"
    );
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (
        payload.downcast_ref::<String>(),
        payload.downcast_ref::<&str>(),
    ) {
        (Some(s), _) => s.clone(),
        (_, Some(s)) => s.to_string(),
        _ => "a panic".to_string(),
    }
}

/// What happened to a leader cut off from the other voters for 10 s, and after the heal.
struct Isolation {
    old: (NodeId, Epoch),
    /// When it resigned, after the isolation.
    resigned_after_ms: Option<u64>,
    /// Its last role (and epoch) before the heal, and at the end.
    role_before_heal: (String, Epoch),
    role_at_end: (String, Epoch),
    /// The first leader the others elected.
    successor: Option<(u64, NodeId, Epoch)>,
    /// Proposals it appended while cut off: its log's entries of its epoch that the final
    /// quorum does not hold (never committed).
    stale_entries: usize,
    /// Where it truncated its log after the heal.
    truncated_to: Vec<i64>,
}

fn isolate_the_leader(seed: u64, check_quorum: bool) -> Isolation {
    let configure: Configure = if check_quorum {
        KAFKA_DEFAULTS
    } else {
        |c| c.check_quorum = false
    };
    let (trace, logs, isolated_at_ms, healed_at_ms, old) =
        simulate(seed, configure, |mut quorum| async move {
            quorum.spawn_proposer();
            let old = quorum.wait_for_leader(5_000).await;
            quorum.sleep_ms(2_000).await;
            let isolated_at_ms = quorum.now_ms();
            quorum.isolate(old.0);
            quorum.sleep_ms(10_000).await;
            let healed_at_ms = quorum.now_ms();
            quorum.heal(old.0);
            quorum.sleep_ms(10_000).await;
            let (trace, logs) = (quorum.trace(), quorum.final_logs());
            (trace, logs, isolated_at_ms, healed_at_ms, old)
        });
    // The invariants hold over the whole run, the healing included.
    assert_safe(seed, &trace, &logs);
    let before_heal: Vec<Event> = trace
        .iter()
        .filter(|e| e.at_ms < healed_at_ms)
        .cloned()
        .collect();
    let role_of = |trace: &[Event]| {
        let (role, epoch, _) = last_roles(trace)[&old.0].clone();
        (role, epoch)
    };
    let successor = first_leader_after(&trace, isolated_at_ms, old.1);
    let quorum_log = &logs[&successor.map_or(old.0, |(_, id, _)| id)];
    let stale_entries = logs[&old.0]
        .iter()
        .enumerate()
        .filter(|&(offset, entry)| entry.epoch == old.1 && quorum_log.get(offset) != Some(entry))
        .count();
    let resigned_after_ms = roles(&trace)
        .find(|&(_, e, id, role, _)| id == old.0 && role == "resigned" && e.at_ms >= isolated_at_ms)
        .map(|(_, e, ..)| e.at_ms - isolated_at_ms);
    Isolation {
        old,
        resigned_after_ms,
        role_before_heal: role_of(&before_heal),
        role_at_end: role_of(&trace),
        successor,
        stale_entries,
        truncated_to: trace
            .iter()
            .filter(|e| e.kind == "raft-truncate" && e.node == name(old.0))
            .filter_map(|e| e.detail["to"].as_i64())
            .collect(),
    }
}

/// KAFKA-15489: without check-quorum, a leader cut off from the majority keeps acting as the
/// leader of its old epoch for as long as the partition lasts, taking writes it can never
/// commit, while the others elect another. Only when the partition heals does it hear of its
/// successor (a `BeginQuorumEpoch` the new leader keeps sending) and throw those writes away.
#[test]
fn without_check_quorum_an_isolated_leader_keeps_believing_it_leads() {
    for seed in SEEDS {
        let run = isolate_the_leader(seed, false);
        let (old_leader, old_epoch) = run.old;
        println!(
            "seed {seed}: check-quorum off: controller-{old_leader} (epoch {old_epoch}), cut off \
             for 10 s, is still {:?}; successor {:?}; after the heal it truncated to {:?} and is {:?}",
            run.role_before_heal, run.successor, run.truncated_to, run.role_at_end
        );
        assert_eq!(run.resigned_after_ms, None, "seed {seed}");
        let leading = ("leader".to_string(), old_epoch);
        assert_eq!(run.role_before_heal, leading, "seed {seed}");
        let (_, successor, epoch) = run.successor.expect("the majority elects a leader");
        assert_ne!(successor, old_leader, "seed {seed}");
        assert!(epoch > old_epoch, "seed {seed}");
        // After the heal: it follows, and cut the writes it took alone.
        assert_eq!(run.role_at_end.0, "follower", "seed {seed}");
        assert!(
            !run.truncated_to.is_empty(),
            "seed {seed}: it kept its uncommitted writes"
        );
    }
}

/// With check-quorum (KIP-595's `fetch.timeout` on the leader side), the isolated leader
/// resigns once it has heard from no majority for 1.5 fetch timeouts; after the heal it
/// truncates what it took alone and follows.
#[test]
fn with_check_quorum_an_isolated_leader_resigns() {
    for seed in SEEDS {
        let run = isolate_the_leader(seed, true);
        let (old_leader, old_epoch) = run.old;
        println!(
            "seed {seed}: check-quorum on: controller-{old_leader} (epoch {old_epoch}) resigned \
             {:?} ms after it was cut off; successor {:?}; after the heal it truncated to {:?} \
             and is {:?}",
            run.resigned_after_ms, run.successor, run.truncated_to, run.role_at_end
        );
        let resigned = run
            .resigned_after_ms
            .unwrap_or_else(|| panic!("seed {seed}: the isolated leader did not resign"));
        // 1.5 × controller.quorum.fetch.timeout.ms after the majority's last fetch, as Kafka;
        // the core looks again every half fetch timeout, so up to 2 × fetch timeout, plus a
        // tick.
        assert!(
            resigned <= 4_000 + 100,
            "seed {seed}: resigned after {resigned} ms"
        );
        assert_ne!(run.role_before_heal.0, "leader", "seed {seed}");
        let (_, successor, _) = run.successor.expect("the majority elects a leader");
        assert_ne!(successor, old_leader, "seed {seed}");
        // Back in the quorum: what it appended alone is gone.
        assert_eq!(run.stale_entries, 0, "seed {seed}");
        assert!(!run.truncated_to.is_empty(), "seed {seed}");
        assert!(
            ["leader", "follower"].contains(&run.role_at_end.0.as_str()),
            "seed {seed}: {:?}",
            run.role_at_end
        );
    }
}

#[test]
fn one_seed_gives_one_trace() {
    let run = |seed| {
        simulate(seed, KAFKA_DEFAULTS, |mut quorum| async move {
            quorum.spawn_proposer();
            let (leader, _) = quorum.wait_for_leader(5_000).await;
            quorum.sleep_ms(1_000).await;
            quorum.crash(leader);
            quorum.sleep_ms(3_000).await;
            quorum.restart(leader);
            quorum.sleep_ms(3_000).await;
            (quorum.trace(), quorum.final_logs())
        })
    };
    let (first, second) = (run(7), run(7));
    assert_safe(7, &first.0, &first.1);
    assert_eq!(first.0.len(), second.0.len());
    assert!(first == second, "seed 7 gave two different runs");
}

/// madsim's own check: a second run replays the first one's every random draw and stops at the
/// first difference (an unseeded entropy source: `select!` without `biased;`, a `HashMap`).
#[test]
fn madsim_finds_no_nondeterminism() {
    Runtime::check_determinism(11, madsim::Config::default(), || async {
        let mut quorum = Quorum::start(11, KAFKA_DEFAULTS);
        quorum.spawn_proposer();
        let (leader, _) = quorum.wait_for_leader(5_000).await;
        quorum.sleep_ms(1_000).await;
        quorum.kill(leader);
        quorum.sleep_ms(5_000).await;
    });
}
