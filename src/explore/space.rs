//! What a scenario offers `samsa explore`: the fault kinds it may draw, the nodes, partitions and
//! clients a fault may target, and the window in which every fault fires and is undone.

use crate::scenario::{ClientKind, Scenario, Target, TopicPartition};

/// The kinds of fault explore draws (`--faults`). Each is an action the runner implements and,
/// except `corrupt`, undoes after its `for`; `delay` is left out (the runner refuses it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// The machine dies (unsynced writes lost), and restarts after `for`.
    Crash,
    /// The process dies (the page cache survives), and restarts after `for`.
    Kill,
    /// A stop-the-world pause, resumed after `for`.
    Pause,
    /// A node isolated, or the nodes split in two, healed after `for`.
    Partition,
    /// One direction of one link dropped, healed after `for`.
    Clog,
    /// A packet-loss rate, back to the scenario's after `for`.
    Loss,
    SlowDisk,
    DiskFull,
    /// Bytes flipped in a segment file; not undone (nothing can unflip them).
    Corrupt,
    ClockSkew,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Crash,
        Kind::Kill,
        Kind::Pause,
        Kind::Partition,
        Kind::Clog,
        Kind::Loss,
        Kind::SlowDisk,
        Kind::DiskFull,
        Kind::Corrupt,
        Kind::ClockSkew,
    ];

    /// What `--faults` means when it is not given: every kind but `corrupt`, the one fault that
    /// is not undone. Flipped bytes in a replica's segment lose what they held in any Kafka (the
    /// log is cut at the first bad batch on recovery), so with it drawn, explore mostly finds
    /// that; ask for it by name to explore corruption.
    pub const DEFAULT: [Kind; 9] = [
        Kind::Crash,
        Kind::Kill,
        Kind::Pause,
        Kind::Partition,
        Kind::Clog,
        Kind::Loss,
        Kind::SlowDisk,
        Kind::DiskFull,
        Kind::ClockSkew,
    ];

    /// How much more often than an environmental fault (a slow disk, a skewed clock, lossy
    /// packets) a case draws this kind, before the swarm's own weight: a node failing and coming
    /// back is what replication protocols get wrong most (KIP-101, KIP-279, KIP-966 all begin
    /// with a broker restarting), and a network split next.
    pub fn base_weight(self) -> u32 {
        match self {
            Kind::Crash | Kind::Kill | Kind::Pause => 3,
            Kind::Partition | Kind::Clog => 2,
            Kind::Loss | Kind::SlowDisk | Kind::DiskFull | Kind::Corrupt | Kind::ClockSkew => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Crash => "crash",
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Partition => "partition",
            Kind::Clog => "clog",
            Kind::Loss => "loss",
            Kind::SlowDisk => "slow-disk",
            Kind::DiskFull => "disk-full",
            Kind::Corrupt => "corrupt",
            Kind::ClockSkew => "clock-skew",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The name of the swarm switch that turns the cluster's fault points on (`buggify = true`).
pub const BUGGIFY: &str = "buggify";

/// `--faults crash,pause,…`: the kinds, each once, in the order of `Kind::ALL`, and whether
/// `buggify` was among them.
pub fn parse_kinds(text: &str) -> Result<(Vec<Kind>, bool), String> {
    let mut kinds = Vec::new();
    let mut buggify = false;
    for name in text.split(',').map(str::trim) {
        if name == BUGGIFY {
            buggify = true;
            continue;
        }
        let Some(kind) = Kind::from_name(name) else {
            let all: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            return Err(format!(
                "--faults {text}: unknown fault kind {name:?} (kinds: {}, and {BUGGIFY})",
                all.join(", ")
            ));
        };
        kinds.push(kind);
    }
    if kinds.is_empty() {
        return Err(format!("--faults {text}: no fault kind given"));
    }
    kinds.sort();
    kinds.dedup();
    Ok((kinds, buggify))
}

/// Times are drawn in steps of this much: a schedule reads `at = "12.3s"`, not `"12347ms"`.
pub const STEP_MS: u64 = 100;
/// At most this many generated faults in one case.
pub const MAX_FAULTS: usize = 16;
/// A fault is undone at most this long after it fired.
pub const MAX_FOR_MS: u64 = 20_000;
/// The shortest fault window worth exploring.
const MIN_WINDOW_MS: u64 = 2_000;
/// The fault-free end of a run is at least this long: after a crashed controller comes back it
/// needs an election, then `broker.session.timeout.ms` (9 s) before it fences a broker that
/// restarted meanwhile and moves its leaderships. A run that ends sooner is checked mid-repair.
const MIN_QUIET_MS: u64 = 15_000;

/// What a scenario offers the generator.
#[derive(Clone, Debug)]
pub struct Space {
    pub kinds: Vec<Kind>,
    pub brokers: u32,
    pub controllers: u32,
    /// The scenario's partitions (`leader(T-P)` targets); `followed` those with followers.
    pub partitions: Vec<TopicPartition>,
    pub followed: Vec<TopicPartition>,
    /// The clients' node names (a group consumer's members are `<id>-N`).
    pub clients: Vec<String>,
    /// Every generated fault fires and is undone before this time: the rest of the run (its
    /// last quarter, at least 15 s, at least the scenario's `recovery`) is fault-free, so the
    /// cluster heals before the final state is checked.
    pub window_ms: u64,
    pub max_for_ms: u64,
    /// A swarm may switch the cluster's fault points on (BUGGIFY: slow fsyncs and handlers,
    /// spurious retriable errors, dropped responses); the scenario's own `buggify = true`
    /// keeps them on in every case anyway.
    pub buggify: bool,
}

impl Space {
    pub fn of(scenario: &Scenario, kinds: &[Kind]) -> Result<Space, String> {
        if kinds.is_empty() {
            return Err("--faults: no fault kind given".into());
        }
        let quiet_ms = (scenario.duration_ms / 4)
            .max(MIN_QUIET_MS)
            .max(scenario.recovery_ms.unwrap_or(0));
        let window_ms = scenario.duration_ms.saturating_sub(quiet_ms) / STEP_MS * STEP_MS;
        if window_ms < MIN_WINDOW_MS {
            return Err(format!(
                "the scenario lasts {} ms: too short to explore (its last {quiet_ms} ms are kept \
                 free of faults for the cluster to heal, and at least {MIN_WINDOW_MS} ms must be \
                 left before them)",
                scenario.duration_ms
            ));
        }
        let mut partitions = Vec::new();
        let mut followed = Vec::new();
        for topic in &scenario.topics {
            for partition in 0..topic.partitions {
                let tp = TopicPartition {
                    topic: topic.name.clone(),
                    partition,
                };
                if topic.replication_factor >= 2 {
                    followed.push(tp.clone());
                }
                partitions.push(tp);
            }
        }
        let space = Space {
            kinds: kinds.to_vec(),
            brokers: scenario.cluster.brokers,
            controllers: scenario.cluster.controllers,
            partitions,
            followed,
            clients: client_nodes(scenario),
            window_ms,
            max_for_ms: MAX_FOR_MS.min(window_ms),
            buggify: false,
        };
        let nodes = space.brokers + space.controllers;
        for kind in kinds {
            if matches!(kind, Kind::Partition | Kind::Clog) && nodes < 2 {
                return Err(format!(
                    "--faults {}: the cluster has one node, so no link to cut",
                    kind.name()
                ));
            }
        }
        Ok(space)
    }

    /// `leader(T-P)` and `follower(T-P)`: brokers chosen by their role, when the fault fires.
    pub fn role_targets(&self) -> Vec<Target> {
        let mut targets: Vec<Target> = self
            .partitions
            .iter()
            .cloned()
            .map(Target::Leader)
            .collect();
        targets.extend(self.followed.iter().cloned().map(Target::Follower));
        targets
    }

    /// `broker-N`.
    pub fn brokers(&self) -> Vec<Target> {
        (1..=self.brokers).map(Target::Broker).collect()
    }

    /// `broker-N` and `controller-N`: the nodes by name.
    pub fn static_nodes(&self) -> Vec<Target> {
        let mut nodes = self.brokers();
        nodes.extend((1..=self.controllers).map(Target::Controller));
        nodes
    }

    /// Every node by name, and the clients: what may pause or have its clock skewed.
    pub fn processes(&self) -> Vec<Target> {
        let mut targets = self.static_nodes();
        targets.extend(self.clients.iter().cloned().map(Target::Client));
        targets
    }
}

/// The clients' node names, as the runner names them.
fn client_nodes(scenario: &Scenario) -> Vec<String> {
    let mut names = Vec::new();
    for client in &scenario.clients {
        match (client.kind, &client.group) {
            (ClientKind::Consumer | ClientKind::Pipeline, Some(_)) => {
                names.extend((1..=client.members).map(|m| format!("{}-{m}", client.id)));
            }
            _ => names.push(client.id.clone()),
        }
    }
    names
}
