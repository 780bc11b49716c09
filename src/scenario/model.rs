//! The scenario file, parsed and validated: what `../shared/CONTRACT.md` calls the scenario
//! format. Every field here has already been checked by `parse`; the runner trusts it.

use std::collections::BTreeMap;
use std::fmt;

/// A value of a Kafka config, as written in the scenario (`"acks" = "all"`, `"min.insync.replicas" = 2`).
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Int(v) => write!(f, "{v}"),
            ConfigValue::Float(v) => write!(f, "{v}"),
            ConfigValue::Bool(v) => write!(f, "{v}"),
            ConfigValue::Str(v) => write!(f, "{v}"),
        }
    }
}

impl ConfigValue {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            ConfigValue::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// A number: a float, or an integer widened.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ConfigValue::Float(v) => Some(*v),
            ConfigValue::Int(v) => Some(*v as f64),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            ConfigValue::Bool(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            ConfigValue::Str(v) => Some(v),
            _ => None,
        }
    }
}

/// Configs by their Kafka names, in name order.
pub type Configs = BTreeMap<String, ConfigValue>;

#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub summary: String,
    pub duration_ms: u64,
    pub seed: u64,
    /// After the last fault is healed, writes must resume within this long (the `unavailable` check).
    pub recovery_ms: Option<u64>,
    /// The brokers' fault points (FoundationDB's BUGGIFY), each switched on per run from the
    /// seed (`crate::world::buggify`).
    pub buggify: bool,
    pub cluster: ClusterSpec,
    pub protocol: ProtocolSpec,
    pub network: NetworkSpec,
    pub disk: DiskSpec,
    pub topics: Vec<TopicSpec>,
    pub clients: Vec<ClientSpec>,
    pub faults: Vec<FaultSpec>,
    pub expect: Expect,
}

#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub brokers: u32,
    pub controllers: u32,
    pub config: Configs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Truncation {
    /// Today's Kafka: the follower asks the leader where its epoch ended (KIP-101, KIP-279).
    LeaderEpoch,
    /// Before KIP-101: the follower truncates to its own high watermark.
    HighWatermark,
}

#[derive(Clone, Debug)]
pub struct ProtocolSpec {
    pub truncation: Truncation,
    pub eligible_leader_replicas: bool,
    pub broker_epoch_check: bool,
    pub transaction_version: u8,
    pub check_quorum: bool,
    pub offset_commit_fencing: bool,
}

impl Default for ProtocolSpec {
    fn default() -> Self {
        ProtocolSpec {
            truncation: Truncation::LeaderEpoch,
            eligible_leader_replicas: true,
            broker_epoch_check: true,
            transaction_version: 2,
            check_quorum: true,
            offset_commit_fencing: true,
        }
    }
}

/// A closed range of durations in microseconds, `"1ms..5ms"`; a single value gives `lo == hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeUs {
    pub lo: u64,
    pub hi: u64,
}

#[derive(Clone, Debug)]
pub struct NetworkSpec {
    pub latency_us: RangeUs,
    /// Probability in [0, 1) that a packet is lost (TCP retransmits it later).
    pub loss: f64,
}

#[derive(Clone, Debug)]
pub struct DiskSpec {
    pub latency_us: RangeUs,
    /// Linux's dirty_expire: dirty pages older than this are written back by the OS.
    pub writeback_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[derive(Clone, Debug)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u32,
    pub config: Configs,
    /// Replicas (broker ids) per partition, preferred leader first.
    pub assignment: Option<Vec<Vec<u32>>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    Producer,
    Consumer,
    Transactional,
    Pipeline,
}

/// When a group consumer commits, relative to processing what it polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitOrder {
    /// `commit = "after-processing"`: process, then `commitSync` (at least once).
    AfterProcessing,
    /// `commit = "after-processing-async"`: process, then `commitAsync`.
    AfterProcessingAsync,
    /// `commit = "before-processing"`: `commitSync`, then process (at most once).
    BeforeProcessing,
    /// `commit = "auto"`: `enable.auto.commit`.
    Auto,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    Random,
    None,
    Sequential,
}

#[derive(Clone, Debug)]
pub struct ClientSpec {
    pub kind: ClientKind,
    pub id: String,
    /// A producer's topic.
    pub topic: Option<String>,
    /// A consumer's topics.
    pub topics: Vec<String>,
    pub group: Option<String>,
    pub members: u32,
    /// Records per second (producers).
    pub rate_per_s: Option<f64>,
    /// A producer stops after this many records.
    pub count: Option<u64>,
    pub keys: Keys,
    /// A group consumer's workload: when it commits (`commit`; `None` follows
    /// `enable.auto.commit`), how long it processes one poll's records (`processing`), and
    /// whether it hands them to a worker and polls on (`handoff`).
    pub commit: Option<CommitOrder>,
    pub processing_ms: u64,
    pub handoff: bool,
    /// A group consumer's processing stalls from `stall-at` for `stall-for` (a slow database, a
    /// stuck call) while its heartbeat thread goes on: past `max.poll.interval.ms` it leaves.
    pub stall: Option<(u64, u64)>,
    /// A transactional producer's records per transaction (`per-transaction`, 10) and the
    /// share of its transactions it aborts on purpose (`abort`, 0).
    pub per_transaction: u64,
    pub abort_ratio: f64,
    pub start_ms: u64,
    pub config: Configs,
    /// Line of the `[[client]]` header in the file, for messages.
    pub line: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
    Ne,
}

impl Cmp {
    pub fn holds(self, left: i64, right: i64) -> bool {
        match self {
            Cmp::Ge => left >= right,
            Cmp::Gt => left > right,
            Cmp::Le => left <= right,
            Cmp::Lt => left < right,
            Cmp::Eq => left == right,
            Cmp::Ne => left != right,
        }
    }
}

/// One figure of the cluster that a `when` condition reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Figure {
    /// Writes acknowledged to a producer.
    Acked(String),
    /// High watermark: the leader's, or one broker's view.
    Hw(TopicPartition, Option<u32>),
    /// Log end offset: the leader's, or one broker's.
    Leo(TopicPartition, Option<u32>),
    Epoch(TopicPartition),
    IsrSize(TopicPartition),
    /// Broker id of the leader; -1 for none.
    Leader(TopicPartition),
    Committed(String, TopicPartition),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub figure: Figure,
    pub cmp: Cmp,
    pub value: i64,
    /// The condition as written, for reports.
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    At(u64),
    When(Condition),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Broker(u32),
    Controller(u32),
    AllBrokers,
    AllControllers,
    Leader(TopicPartition),
    Follower(TopicPartition),
    ControllerLeader,
    Coordinator(String),
    Client(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Kill,
    Crash,
    Restart,
    Wipe,
    Pause,
    Resume,
    Partition,
    Heal,
    Isolate,
    ClogLink,
    Loss,
    SlowDisk,
    DiskFull,
    Corrupt,
    ClockSkew,
    Delay,
    /// Admin steps: what `kafka-topics`, `kafka-reassign-partitions` and `kafka-leader-election`
    /// ask of the cluster, through its Admin API.
    CreateTopic,
    DeleteTopic,
    CreatePartitions,
    Reassign,
    ElectLeaders,
    /// `kafka-consumer-groups.sh --describe`: the group's members, assignments and lag, recorded
    /// as an operation of the admin client.
    DescribeGroup,
    /// The broker shuts down cleanly (KIP-631's controlled shutdown): like `kill`, but announced,
    /// so the controller moves its leaderships first.
    ControlledShutdown,
}

impl Action {
    pub const ALL: [Action; 23] = [
        Action::Kill,
        Action::Crash,
        Action::Restart,
        Action::Wipe,
        Action::Pause,
        Action::Resume,
        Action::Partition,
        Action::Heal,
        Action::Isolate,
        Action::ClogLink,
        Action::Loss,
        Action::SlowDisk,
        Action::DiskFull,
        Action::Corrupt,
        Action::ClockSkew,
        Action::Delay,
        Action::CreateTopic,
        Action::DeleteTopic,
        Action::CreatePartitions,
        Action::Reassign,
        Action::ElectLeaders,
        Action::DescribeGroup,
        Action::ControlledShutdown,
    ];

    /// The action's name in a scenario file (`CONTRACT.md`'s table of actions).
    pub fn name(self) -> &'static str {
        match self {
            Action::Kill => "kill",
            Action::Crash => "crash",
            Action::Restart => "restart",
            Action::Wipe => "wipe",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Partition => "partition",
            Action::Heal => "heal",
            Action::Isolate => "isolate",
            Action::ClogLink => "clog-link",
            Action::Loss => "loss",
            Action::SlowDisk => "slow-disk",
            Action::DiskFull => "disk-full",
            Action::Corrupt => "corrupt",
            Action::ClockSkew => "clock-skew",
            Action::Delay => "delay",
            Action::CreateTopic => "create-topic",
            Action::DeleteTopic => "delete-topic",
            Action::CreatePartitions => "create-partitions",
            Action::Reassign => "reassign",
            Action::ElectLeaders => "elect-leaders",
            Action::DescribeGroup => "describe-group",
            Action::ControlledShutdown => "controlled-shutdown",
        }
    }

    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// `elect-leaders`: which replicas may become leader (Kafka's `ElectionType`, KIP-460).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Election {
    /// The first live replica of the assignment that is in the ISR.
    Preferred,
    /// Any live replica, even one outside the ISR: acknowledged writes may be lost.
    Unclean,
}

impl Election {
    /// The election's name in a scenario file.
    pub fn name(self) -> &'static str {
        match self {
            Election::Preferred => "preferred",
            Election::Unclean => "unclean",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A target as a scenario file writes it: `broker-2`, `leader(orders-0)`, `p1`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Broker(n) => write!(f, "broker-{n}"),
            Target::Controller(n) => write!(f, "controller-{n}"),
            Target::AllBrokers => f.write_str("broker-*"),
            Target::AllControllers => f.write_str("controller-*"),
            Target::Leader(tp) => write!(f, "leader({tp})"),
            Target::Follower(tp) => write!(f, "follower({tp})"),
            Target::ControllerLeader => f.write_str("controller-leader"),
            Target::Coordinator(group) => write!(f, "coordinator({group})"),
            Target::Client(id) => f.write_str(id),
        }
    }
}

#[derive(Clone, Debug)]
pub struct FaultSpec {
    pub trigger: Trigger,
    /// `after = "…"`: wait this long once the trigger holds.
    pub after_ms: u64,
    pub action: Action,
    pub target: Option<Target>,
    /// `partition`: the sides, each a list of node targets.
    pub groups: Vec<Vec<Target>>,
    /// `clog-link`: one direction.
    pub from: Option<Target>,
    pub to: Option<Target>,
    /// Undo after this long.
    pub for_ms: Option<u64>,
    /// `loss`: packet-loss rate.
    pub rate: Option<f64>,
    /// `clock-skew` (signed, ms) and `delay` (ms).
    pub by_ms: Option<i64>,
    /// `slow-disk`: latency multiplier.
    pub factor: Option<f64>,
    /// `delay`: the API whose requests are held (`"Produce"`, `"EndTxn"`, …).
    pub api: Option<String>,
    /// `corrupt`: which file of the target's disk (a path or a glob like `orders-0/*.log`).
    pub file: Option<String>,
    /// `create-topic`, `delete-topic`, `create-partitions`: the topic.
    pub topic: Option<String>,
    /// `create-topic`: as written (`None`: the assignment's count, else the broker's
    /// `num.partitions`); `create-partitions`: the new total.
    pub partitions: Option<u32>,
    /// `create-topic`: as written (`None`: the assignment's, else `default.replication.factor`).
    /// Not checked against the broker count: more than the brokers is Kafka's
    /// INVALID_REPLICATION_FACTOR, which a scenario may want to show.
    pub replication_factor: Option<u32>,
    /// `create-topic`: replicas (broker ids) per partition, preferred leader first; consistent
    /// with `partitions` and `replication_factor` when those are also written.
    pub assignment: Option<Vec<Vec<u32>>>,
    /// `create-topic`: topic configs, checked like a `[[topic]]`'s.
    pub config: Configs,
    /// `reassign`: the partition moved; `elect-leaders`: the partition (`None`: every partition).
    pub partition: Option<TopicPartition>,
    /// `reassign`: the new replicas (broker ids, distinct, at least one), preferred leader first.
    pub replicas: Vec<u32>,
    /// `elect-leaders`: which kind of election.
    pub election: Option<Election>,
    /// `describe-group`: the group described.
    pub group: Option<String>,
    /// Line of the `[[fault]]` header, for messages.
    pub line: usize,
}

/// The check names of `CONTRACT.md`.
pub const CHECK_NAMES: &[&str] = &[
    "lost-write",
    "duplicate",
    "reorder",
    "divergence",
    "inconsistent-read",
    "hw-regression",
    "aborted-read",
    "uncommitted-read",
    "eos-violation",
    "group-overlap",
    "offset-regression",
    "group-skip",
    "zombie-write",
    "unavailable",
    "poll-skip",
    "nonmonotonic-poll",
    "split-brain",
    "metadata-lost",
    "panic",
];

#[derive(Clone, Debug, Default)]
pub struct Expect {
    /// Each of these must be found.
    pub violations: Vec<String>,
    /// These may be found.
    pub allow: Vec<String>,
}
