//! A deterministic cluster of KRaft cores under random faults (delays, drops, partitions,
//! crashes and restarts from what was persisted), checking after every step the invariants of
//! Kafka's own raft simulation test: one leader per epoch, and a committed entry never changes
//! or disappears (from any log's committed prefix, nor from any later leader's log).

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

struct Cluster {
    nodes: BTreeMap<NodeId, Node>,
    config: RaftConfig,
    rng: ChaCha8Rng,
    now_ms: u64,
    /// (deliver at, sequence) → (from, to, message)
    in_flight: BTreeMap<(u64, u64), (NodeId, NodeId, Message)>,
    seq: u64,
    /// Node → its side of the current partition (nodes on different sides cannot talk).
    side: BTreeMap<NodeId, u8>,
    leaders: BTreeMap<Epoch, NodeId>,
    committed: Vec<Entry>,
    violations: Vec<String>,
    proposals: u64,
    faults_on: bool,
}

impl Cluster {
    fn new(voters: usize, seed: u64, bugs: RaftBugs) -> Self {
        let ids: Vec<NodeId> = (1..=voters as NodeId).collect();
        let mut config = RaftConfig::new(0, ids.clone());
        config.bugs = bugs;
        let mut cluster = Cluster {
            nodes: BTreeMap::new(),
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now_ms: 0,
            in_flight: BTreeMap::new(),
            seq: 0,
            side: BTreeMap::new(),
            leaders: BTreeMap::new(),
            committed: Vec::new(),
            violations: Vec::new(),
            proposals: 0,
            faults_on: true,
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
                let message = e
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "panic".into());
                self.violations
                    .push(format!("panic at {now} ms: {message}"));
                self.nodes.get_mut(&id).unwrap().core = None;
            }
        }
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
            }
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, message: Message) {
        if self.side.get(&from) != self.side.get(&to) || self.rng.gen_bool(0.05) {
            return;
        }
        let at = self.now_ms + self.rng.gen_range(1..20);
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
        } else if !self.side.is_empty() && self.rng.gen_bool(0.0005) {
            self.side.clear();
        }
    }

    fn run(&mut self, duration_ms: u64) {
        while self.now_ms < duration_ms && self.violations.is_empty() {
            self.now_ms += 1;
            self.faults();
            while let Some((&(at, seq), _)) = self.in_flight.first_key_value() {
                if at > self.now_ms {
                    break;
                }
                let (from, to, message) = self.in_flight.remove(&(at, seq)).unwrap();
                self.step(to, |core, now| core.receive(now, from, message));
            }
            if self.now_ms.is_multiple_of(5) {
                let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
                for id in ids {
                    self.step(id, |core, now| core.tick(now));
                }
            }
            if self.now_ms.is_multiple_of(20) {
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
        for seed in 0..40 {
            let mut cluster = Cluster::new(voters, seed, RaftBugs::default());
            cluster.run(duration_ms);
            assert_eq!(
                cluster.violations,
                Vec::<String>::new(),
                "{voters} voters, seed {seed}"
            );
            epochs += cluster.leaders.len();
            committed += cluster.committed.len();
        }
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
