//! A deterministic cluster of KRaft cores under random faults (delays, drops, partitions,
//! crashes and restarts from what was persisted), checking after every step the invariants of
//! Kafka's own raft simulation test: one leader per epoch, and a committed entry never changes
//! or disappears (from any log's committed prefix, nor from any later leader's log). Observers
//! (non-voters, KIP-595) may join; as in Kafka's `RaftEventSimulationTest`, their committed prefix
//! must be the voters'. Their traffic and faults draw from a stream of their own, so adding
//! observers leaves the voters' run unchanged.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

struct Persisted {
    state: QuorumStateRecord,
    log: Vec<Entry>,
}

struct Node {
    core: Option<RaftCore>,
    disk: Persisted,
    down_until_ms: u64,
}

/// A broker following the log; it keeps nothing across a crash and restarts from an empty log.
pub(super) struct Observer {
    pub(super) core: Option<ObserverCore>,
    down_until_ms: u64,
}

/// The first observer's id; observers are numbered on from it, apart from the voters.
pub(super) const FIRST_OBSERVER: NodeId = 101;

pub(super) struct Cluster {
    nodes: BTreeMap<NodeId, Node>,
    pub(super) observers: BTreeMap<NodeId, Observer>,
    config: RaftConfig,
    rng: ChaCha8Rng,
    /// The observers' own stream: their messages' drops and delays, their sides, their crashes.
    observer_rng: ChaCha8Rng,
    now_ms: u64,
    /// (deliver at, sequence) → (from, to, message); no message: the observer `to` learns that
    /// its fetch to `from` failed.
    in_flight: BTreeMap<(u64, u64), (NodeId, NodeId, Option<Message>)>,
    seq: u64,
    /// Node → its side of the current partition (nodes on different sides cannot talk).
    side: BTreeMap<NodeId, u8>,
    pub(super) leaders: BTreeMap<Epoch, NodeId>,
    pub(super) committed: Vec<Entry>,
    pub(super) violations: Vec<String>,
    proposals: u64,
    pub(super) faults_on: bool,
    pub(super) proposing: bool,
    /// Every observer truncation: (observer, end offset, its high watermark then).
    pub(super) observer_truncations: Vec<(NodeId, i64, i64)>,
}

impl Cluster {
    pub(super) fn new(voters: usize, seed: u64, bugs: RaftBugs) -> Self {
        let ids: Vec<NodeId> = (1..=voters as NodeId).collect();
        let mut config = RaftConfig::new(0, ids.clone());
        config.bugs = bugs;
        let mut observer_rng = ChaCha8Rng::seed_from_u64(seed);
        observer_rng.set_stream(1);
        let mut cluster = Cluster {
            nodes: BTreeMap::new(),
            observers: BTreeMap::new(),
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            observer_rng,
            now_ms: 0,
            in_flight: BTreeMap::new(),
            seq: 0,
            side: BTreeMap::new(),
            leaders: BTreeMap::new(),
            committed: Vec::new(),
            violations: Vec::new(),
            proposals: 0,
            faults_on: true,
            proposing: true,
            observer_truncations: Vec::new(),
        };
        for id in ids {
            let disk = Persisted {
                state: QuorumStateRecord::default(),
                log: Vec::new(),
            };
            cluster.nodes.insert(
                id,
                Node {
                    core: None,
                    disk,
                    down_until_ms: 0,
                },
            );
            cluster.start(id);
        }
        cluster
    }

    /// Adds `count` observers, fetching from now on.
    pub(super) fn with_observers(mut self, count: usize) -> Self {
        let first = FIRST_OBSERVER + self.observers.len() as NodeId;
        for id in first..first + count as NodeId {
            self.observers.insert(
                id,
                Observer {
                    core: None,
                    down_until_ms: 0,
                },
            );
            self.start_observer(id);
        }
        self
    }

    fn start_observer(&mut self, id: NodeId) {
        let seed = self.observer_rng.gen();
        let core = ObserverCore::new(id, self.config.voters.clone(), seed);
        self.observers.get_mut(&id).unwrap().core = Some(core);
    }

    pub(super) fn voter(&self, id: NodeId) -> Option<&RaftCore> {
        self.nodes[&id].core.as_ref()
    }

    pub(super) fn observer(&self, id: NodeId) -> &ObserverCore {
        self.observers[&id]
            .core
            .as_ref()
            .expect("the observer is up")
    }

    /// The live leader of the highest epoch, if any.
    pub(super) fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter_map(|(&id, n)| n.core.as_ref().map(|c| (id, c)))
            .filter(|(_, c)| c.role() == RoleName::Leader)
            .max_by_key(|(_, c)| c.epoch())
            .map(|(id, _)| id)
    }

    /// Stops a voter for good (until `restart`).
    pub(super) fn kill(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).unwrap();
        node.core = None;
        node.down_until_ms = 0;
    }

    /// Cuts the nodes into the given groups; nodes in none are cut off from everyone.
    pub(super) fn partition(&mut self, groups: &[&[NodeId]]) {
        let all = self.nodes.keys().chain(self.observers.keys()).copied();
        self.side = all.map(|id| (id, u8::MAX)).collect();
        for (side, group) in groups.iter().enumerate() {
            for &id in group.iter() {
                self.side.insert(id, side as u8);
            }
        }
    }

    pub(super) fn heal(&mut self) {
        self.side.clear();
    }

    fn start(&mut self, id: NodeId) {
        let mut config = self.config.clone();
        config.id = id;
        let seed = self.rng.gen();
        let node = self.nodes.get_mut(&id).unwrap();
        node.core = Some(RaftCore::restore(
            config,
            node.disk.state,
            node.disk.log.clone(),
            self.now_ms,
            seed,
        ));
    }

    fn step(&mut self, id: NodeId, f: impl FnOnce(&mut RaftCore, u64) -> Vec<Command>) {
        let now = self.now_ms;
        let Some(core) = self.nodes.get_mut(&id).unwrap().core.as_mut() else {
            return;
        };
        match catch_unwind(AssertUnwindSafe(|| f(core, now))) {
            Ok(commands) => self.perform(id, commands),
            Err(e) => {
                self.violations
                    .push(format!("panic at {now} ms: {}", panic_message(&*e)));
                self.nodes.get_mut(&id).unwrap().core = None;
            }
        }
    }

    /// Runs `f` on a live observer; a panic is a violation and stops the observer.
    fn step_observer<R>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut ObserverCore, u64) -> R,
    ) -> Option<R> {
        let now = self.now_ms;
        let core = self.observers.get_mut(&id)?.core.as_mut()?;
        match catch_unwind(AssertUnwindSafe(|| f(core, now))) {
            Ok(out) => Some(out),
            Err(e) => {
                self.violations.push(format!(
                    "panic in observer {id} at {now} ms: {}",
                    panic_message(&*e)
                ));
                self.observers.get_mut(&id).unwrap().core = None;
                None
            }
        }
    }

    fn poll_observer(&mut self, id: NodeId) {
        if let Some(Some((to, request))) = self.step_observer(id, |o, now| o.poll(now)) {
            self.send(id, to, request);
        }
    }

    fn answer_observer(&mut self, id: NodeId, from: NodeId, response: Option<Message>) {
        let Some(events) = self.step_observer(id, |o, now| o.on_response(now, from, response))
        else {
            return;
        };
        for event in events {
            match event {
                ObserverEvent::Appended { .. } => {}
                ObserverEvent::Truncated { end_offset } => {
                    let hw = self.observer(id).high_watermark();
                    self.observer_truncations.push((id, end_offset, hw));
                }
                ObserverEvent::HighWatermark(hw) => self.on_observer_commit(id, hw),
                ObserverEvent::SnapshotLoaded { .. } => {
                    unreachable!("no snapshots in the core harness")
                }
            }
        }
    }

    /// An observer's committed prefix is the voters': it commits nothing they did not.
    fn on_observer_commit(&mut self, id: NodeId, hw: i64) {
        let log = self.observer(id).log();
        let hw = hw as usize;
        if hw > self.committed.len() || log.len() < hw || log[..hw] != self.committed[..hw] {
            self.violations.push(format!(
                "metadata-lost: observer {id} committed up to {hw} a log that differs from the \
                 {} entries the voters committed",
                self.committed.len()
            ));
        }
    }

    /// Checks every live observer's committed prefix against the voters'.
    pub(super) fn check_observers(&mut self) {
        let ids: Vec<NodeId> = self.observers.keys().copied().collect();
        for id in ids {
            if let Some(core) = &self.observers[&id].core {
                let hw = core.high_watermark();
                self.on_observer_commit(id, hw);
            }
        }
    }

    /// A message reaches `to`: a voter's core, or an observer. An observer's request to a voter
    /// that is down fails at once, as a refused connection does.
    fn deliver(&mut self, from: NodeId, to: NodeId, message: Option<Message>) {
        if self.observers.contains_key(&to) {
            return self.answer_observer(to, from, message);
        }
        if self.observers.contains_key(&from) && self.nodes[&to].core.is_none() {
            return self.answer_observer(from, to, None);
        }
        let message = message.expect("only an observer hears of a failed request");
        self.step(to, |core, now| core.receive(now, from, message));
    }

    fn perform(&mut self, id: NodeId, commands: Vec<Command>) {
        for command in commands {
            match command {
                Command::PersistQuorumState(state) => {
                    self.nodes.get_mut(&id).unwrap().disk.state = state
                }
                Command::TruncateLog { end_offset } => self
                    .nodes
                    .get_mut(&id)
                    .unwrap()
                    .disk
                    .log
                    .truncate(end_offset as usize),
                Command::AppendLog {
                    from_offset,
                    entries,
                } => {
                    let log = &mut self.nodes.get_mut(&id).unwrap().disk.log;
                    assert_eq!(log.len() as i64, from_offset, "appends continue the log");
                    log.extend(entries);
                }
                Command::Send { to, message } => self.send(id, to, message),
                Command::HighWatermark(hw) => self.on_commit(id, hw),
                Command::RoleChanged { role, epoch, .. } => {
                    if role == RoleName::Leader {
                        self.on_leader(id, epoch);
                    }
                }
                // No node of this harness takes a snapshot (the driver's tests do), so none is
                // ever served, written or installed.
                Command::ServeSnapshot { .. }
                | Command::WriteSnapshotChunk { .. }
                | Command::InstallSnapshot(_) => {
                    unreachable!("no snapshots in the core harness: {command:?}")
                }
            }
        }
    }

    /// Across a partition nothing arrives; otherwise 5% of messages are lost. An observer talks
    /// to the quorum over a connection, so a lost message of its fetch fails the fetch (as a
    /// broken connection does in Kafka's `NetworkClient`) rather than leaving it to time out.
    fn send(&mut self, from: NodeId, to: NodeId, message: Message) {
        if self.side.get(&from) != self.side.get(&to) {
            return;
        }
        let observer = [from, to]
            .into_iter()
            .find(|id| self.observers.contains_key(id));
        let Some(observer) = observer else {
            if self.rng.gen_bool(0.05) {
                return;
            }
            let at = self.now_ms + self.rng.gen_range(1..20);
            return self.enqueue(at, from, to, Some(message));
        };
        let lost = self.observer_rng.gen_bool(0.05);
        let at = self.now_ms + self.observer_rng.gen_range(1..20);
        if lost {
            let voter = if observer == from { to } else { from };
            self.enqueue(at, voter, observer, None);
        } else {
            self.enqueue(at, from, to, Some(message));
        }
    }

    fn enqueue(&mut self, at: u64, from: NodeId, to: NodeId, message: Option<Message>) {
        self.seq += 1;
        self.in_flight.insert((at, self.seq), (from, to, message));
    }

    fn on_leader(&mut self, id: NodeId, epoch: Epoch) {
        if let Some(&other) = self.leaders.get(&epoch) {
            if other != id {
                self.violations.push(format!(
                    "split-brain: {other} and {id} both lead epoch {epoch}"
                ));
            }
        }
        self.leaders.insert(epoch, id);
        let log = &self.nodes[&id].disk.log;
        if log.len() < self.committed.len() || log[..self.committed.len()] != self.committed[..] {
            self.violations.push(format!(
                "metadata-lost: {id} leads epoch {epoch} without the {} committed entries",
                self.committed.len()
            ));
        }
    }

    fn on_commit(&mut self, id: NodeId, hw: i64) {
        let log = &self.nodes[&id].disk.log;
        let hw = hw as usize;
        let common = hw.min(self.committed.len());
        if log.len() < hw || log[..common] != self.committed[..common] {
            self.violations.push(format!("metadata-lost: {id} committed up to {hw} a log that differs from what was committed"));
            return;
        }
        if hw > self.committed.len() {
            self.committed = log[..hw].to_vec();
        }
    }

    fn faults(&mut self) {
        if !self.faults_on {
            return;
        }
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        // A crash every 10 s or so; the node comes back from its disk a while later.
        if self.rng.gen_bool(0.0001) {
            let id = ids[self.rng.gen_range(0..ids.len())];
            let node = self.nodes.get_mut(&id).unwrap();
            if node.core.is_some() {
                node.core = None;
                node.down_until_ms = self.now_ms + self.rng.gen_range(100..5000);
            }
        }
        for id in ids.iter().copied() {
            let node = &self.nodes[&id];
            if node.core.is_none() && self.now_ms >= node.down_until_ms && node.down_until_ms > 0 {
                self.nodes.get_mut(&id).unwrap().down_until_ms = 0;
                self.start(id);
            }
        }
        // Partitions come and go.
        // A partition every 10 s or so, lasting 2 s on average.
        if self.rng.gen_bool(0.0001) {
            self.side = ids
                .iter()
                .map(|&id| (id, self.rng.gen_range(0..2u8)))
                .collect();
            for &id in self.observers.keys() {
                self.side.insert(id, self.observer_rng.gen_range(0..2u8));
            }
        } else if !self.side.is_empty() && self.rng.gen_bool(0.0005) {
            self.side.clear();
        }
        self.observer_faults();
    }

    /// An observer crashes as often as a voter, and comes back with an empty log.
    fn observer_faults(&mut self) {
        if self.observers.is_empty() {
            return;
        }
        let ids: Vec<NodeId> = self.observers.keys().copied().collect();
        if self.observer_rng.gen_bool(0.0001) {
            let id = ids[self.observer_rng.gen_range(0..ids.len())];
            let until = self.now_ms + self.observer_rng.gen_range(100..5000);
            let observer = self.observers.get_mut(&id).unwrap();
            if observer.core.is_some() {
                observer.core = None;
                observer.down_until_ms = until;
            }
        }
        for id in ids {
            let observer = &self.observers[&id];
            let due = observer.down_until_ms > 0 && self.now_ms >= observer.down_until_ms;
            if observer.core.is_none() && due {
                self.observers.get_mut(&id).unwrap().down_until_ms = 0;
                self.start_observer(id);
            }
        }
    }

    /// Runs until `duration_ms` since the start (not from now), or the first violation.
    pub(super) fn run(&mut self, duration_ms: u64) {
        while self.now_ms < duration_ms && self.violations.is_empty() {
            self.now_ms += 1;
            self.faults();
            while let Some((&(at, seq), _)) = self.in_flight.first_key_value() {
                if at > self.now_ms {
                    break;
                }
                let (from, to, message) = self.in_flight.remove(&(at, seq)).unwrap();
                self.deliver(from, to, message);
            }
            if self.now_ms.is_multiple_of(5) {
                let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
                for id in ids {
                    self.step(id, |core, now| core.tick(now));
                }
                let ids: Vec<NodeId> = self.observers.keys().copied().collect();
                for id in ids {
                    self.poll_observer(id);
                }
            }
            if self.proposing && self.now_ms.is_multiple_of(20) {
                self.propose();
            }
        }
    }

    fn propose(&mut self) {
        let leaders: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| {
                n.core
                    .as_ref()
                    .is_some_and(|c| c.role() == RoleName::Leader)
            })
            .map(|(&id, _)| id)
            .collect();
        for id in leaders {
            self.proposals += 1;
            let data = Bytes::from(format!("record-{}", self.proposals));
            let now = self.now_ms;
            let Some(core) = self.nodes.get_mut(&id).unwrap().core.as_mut() else {
                continue;
            };
            if let Ok((_, commands)) = core.propose(now, data) {
                self.perform(id, commands);
            }
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

fn first_violation(
    seeds: std::ops::Range<u64>,
    voters: usize,
    bugs: RaftBugs,
    duration_ms: u64,
) -> Option<(u64, String)> {
    for seed in seeds {
        let mut cluster = Cluster::new(voters, seed, bugs);
        cluster.run(duration_ms);
        if let Some(v) = cluster.violations.first() {
            return Some((seed, v.clone()));
        }
    }
    None
}

#[test]
fn a_single_voter_leads_and_commits_alone() {
    let mut cluster = Cluster::new(1, 1, RaftBugs::default());
    cluster.run(5_000);
    assert!(cluster.violations.is_empty(), "{:?}", cluster.violations);
    assert!(
        cluster.committed.len() > 100,
        "committed {}",
        cluster.committed.len()
    );
}

#[test]
fn three_voters_elect_one_leader_and_commit() {
    let mut cluster = Cluster::new(3, 7, RaftBugs::default());
    cluster.faults_on = false;
    cluster.run(10_000);
    assert!(cluster.violations.is_empty(), "{:?}", cluster.violations);
    assert!(
        cluster.committed.len() > 50,
        "committed {}",
        cluster.committed.len()
    );
    assert!(!cluster.leaders.is_empty());
}

#[test]
fn no_safety_violation_under_random_faults() {
    for (voters, duration_ms) in [(3, 30_000), (5, 20_000)] {
        let (mut epochs, mut committed) = (0, 0);
        let (mut observed, mut truncations) = (0, 0);
        for seed in 0..40 {
            let mut cluster = Cluster::new(voters, seed, RaftBugs::default()).with_observers(2);
            cluster.run(duration_ms);
            cluster.check_observers();
            assert_eq!(
                cluster.violations,
                Vec::<String>::new(),
                "{voters} voters, 2 observers, seed {seed}"
            );
            epochs += cluster.leaders.len();
            committed += cluster.committed.len();
            observed += cluster
                .observers
                .values()
                .filter_map(|o| o.core.as_ref())
                .map(|o| o.high_watermark() as usize)
                .sum::<usize>();
            truncations += cluster.observer_truncations.len();
        }
        eprintln!(
            "{voters} voters: {epochs} epochs, {committed} committed, observers at {observed}, \
             {truncations} observer truncations"
        );
        // The observers followed the quorum through the faults (each restarts empty after a
        // crash), truncating uncommitted entries on the way.
        assert!(
            observed > committed,
            "{voters} voters: 2 observers' high watermarks sum to {observed}, of {committed}"
        );
        assert!(
            truncations > 0,
            "{voters} voters: no observer ever truncated"
        );
        // The faults did force new elections, and the quorum kept committing through them.
        assert!(
            epochs > 40,
            "{voters} voters: only {epochs} leader epochs over 40 seeds"
        );
        assert!(
            committed > 40 * 200,
            "{voters} voters: only {committed} entries committed over 40 seeds"
        );
    }
}

#[test]
fn planted_bug_vote_without_log_check_is_found() {
    let bugs = RaftBugs {
        vote_without_log_check: true,
        ..RaftBugs::default()
    };
    let found = first_violation(0..200, 3, bugs, 30_000);
    eprintln!("found: {found:?}");
    assert!(
        found.is_some(),
        "granting votes without comparing logs went unnoticed for 200 seeds"
    );
}

#[test]
fn planted_bug_leader_counting_itself_twice_is_found() {
    let bugs = RaftBugs {
        leader_counts_itself_twice: true,
        ..RaftBugs::default()
    };
    let found = first_violation(0..200, 3, bugs, 30_000);
    eprintln!("found: {found:?}");
    assert!(
        found.is_some(),
        "a leader counting itself twice went unnoticed for 200 seeds"
    );
}
