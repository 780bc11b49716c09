//! Kafka configs by their real names: which names a scenario may set, of what type, in what range,
//! and Kafka's default for each.
//!
//! The tables follow Apache Kafka's own `ConfigDef`s (`ProducerConfig`, `ConsumerConfig`,
//! `LogConfig`, `ServerLogConfigs`, `ReplicationConfigs`, `KRaftConfigs`, ...) as of Kafka 4.x:
//! same names, same types, same validators, same defaults. Where Kafka has no validator for a
//! time or a count that cannot be negative, the table says "at least 0" so that a scenario cannot
//! hand the simulation a negative timeout; such rows are marked `// no Kafka validator`.
//!
//! Reading a config:
//!
//! ```ignore
//! use samsa::scenario::configs::{self, Scope};
//! let min_isr = configs::get_i64(&topic.config, "min.insync.replicas", Scope::Topic); // Some(1)
//! let retention = configs::topic_config(&topic.config, &cluster.config, "retention.ms");
//! ```

use super::model::{ConfigValue, Configs};

/// Which kind of Kafka config: where a scenario writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// `[cluster.config]`: `server.properties`.
    Broker,
    /// A `[[topic]]`'s `config`: `kafka-configs --entity-type topics`.
    Topic,
    /// A producer's (or a transactional client's) `config`.
    Producer,
    /// A consumer's `config`.
    Consumer,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::Broker,
        Scope::Topic,
        Scope::Producer,
        Scope::Consumer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Broker => "broker",
            Scope::Topic => "topic",
            Scope::Producer => "producer",
            Scope::Consumer => "consumer",
        }
    }
}

/// Kafka's `ConfigDef.Type` together with its validator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConfigType {
    /// `INT` (or `SHORT`): an integer in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    /// `LONG`: an integer in `min..=max`.
    Long {
        min: i64,
        max: i64,
    },
    /// `DOUBLE`: a number in `min..=max`.
    Double {
        min: f64,
        max: f64,
    },
    Boolean,
    /// `STRING` with no fixed set of values (Kafka's `NonEmptyString`).
    Str,
    /// `STRING` or `CLASS` with `ValidString.in(...)`: one of these.
    OneOf(&'static [&'static str]),
    /// `LIST` with `ValidList.in(...)`: a comma-separated, duplicate-free subset of these.
    ListOf(&'static [&'static str]),
}

/// Kafka's default for a config; `Null` where Kafka's is `null` (the config is then derived from
/// another one, or absent).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DefaultValue {
    Int(i64),
    Double(f64),
    Bool(bool),
    Str(&'static str),
    Null,
}

impl DefaultValue {
    pub fn value(self) -> Option<ConfigValue> {
        match self {
            DefaultValue::Int(v) => Some(ConfigValue::Int(v)),
            DefaultValue::Double(v) => Some(ConfigValue::Float(v)),
            DefaultValue::Bool(v) => Some(ConfigValue::Bool(v)),
            DefaultValue::Str(v) => Some(ConfigValue::Str(v.to_string())),
            DefaultValue::Null => None,
        }
    }
}

/// One known config.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConfigDef {
    pub name: &'static str,
    pub ty: ConfigType,
    pub default: DefaultValue,
}

const I32: i64 = i32::MAX as i64;
const I16: i64 = i16::MAX as i64;
const I64: i64 = i64::MAX;

const fn int(name: &'static str, min: i64, max: i64, default: DefaultValue) -> ConfigDef {
    ConfigDef {
        name,
        ty: ConfigType::Int { min, max },
        default,
    }
}
const fn long(name: &'static str, min: i64, default: DefaultValue) -> ConfigDef {
    ConfigDef {
        name,
        ty: ConfigType::Long { min, max: I64 },
        default,
    }
}
const fn double(name: &'static str, min: f64, max: f64, default: f64) -> ConfigDef {
    ConfigDef {
        name,
        ty: ConfigType::Double { min, max },
        default: DefaultValue::Double(default),
    }
}
const fn boolean(name: &'static str, default: bool) -> ConfigDef {
    ConfigDef {
        name,
        ty: ConfigType::Boolean,
        default: DefaultValue::Bool(default),
    }
}
const fn string(name: &'static str, default: DefaultValue) -> ConfigDef {
    ConfigDef {
        name,
        ty: ConfigType::Str,
        default,
    }
}
const fn one_of(
    name: &'static str,
    values: &'static [&'static str],
    default: DefaultValue,
) -> ConfigDef {
    ConfigDef {
        name,
        ty: ConfigType::OneOf(values),
        default,
    }
}
const fn list_of(
    name: &'static str,
    values: &'static [&'static str],
    default: &'static str,
) -> ConfigDef {
    ConfigDef {
        name,
        ty: ConfigType::ListOf(values),
        default: DefaultValue::Str(default),
    }
}

use DefaultValue::{Int as D, Null};

const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];
/// `BrokerCompressionType`: the broker and topic `compression.type`.
const BROKER_COMPRESSION: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
/// `CompressionType`: the producer's `compression.type`.
const PRODUCER_COMPRESSION: &[&str] = &["none", "gzip", "snappy", "lz4", "zstd"];
const ASSIGNORS: &[&str] = &[
    "org.apache.kafka.clients.consumer.RangeAssignor",
    "org.apache.kafka.clients.consumer.RoundRobinAssignor",
    "org.apache.kafka.clients.consumer.StickyAssignor",
    "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
];
/// The partitioners Kafka ships; `null` (the default) is the built-in sticky / key-hash one.
const PARTITIONERS: &[&str] = &["org.apache.kafka.clients.producer.RoundRobinPartitioner"];

/// `server.properties`: `ServerLogConfigs`, `ReplicationConfigs`, `KRaftConfigs`, `QuorumConfig`,
/// `GroupCoordinatorConfig`, `TransactionLogConfig`, `TransactionStateManagerConfig`, `CleanerConfig`.
pub const BROKER: &[ConfigDef] = &[
    int("min.insync.replicas", 1, I32, D(1)),
    boolean("unclean.leader.election.enable", false),
    long("replica.lag.time.max.ms", 0, D(30_000)), // no Kafka validator
    int("replica.fetch.wait.max.ms", 0, I32, D(500)), // no Kafka validator
    int("replica.fetch.min.bytes", 0, I32, D(1)),  // no Kafka validator
    int("replica.fetch.max.bytes", 0, I32, D(1_048_576)),
    int("replica.fetch.response.max.bytes", 0, I32, D(10_485_760)),
    int("replica.fetch.backoff.ms", 0, I32, D(1_000)),
    int("replica.socket.timeout.ms", 0, I32, D(30_000)), // no Kafka validator
    long("replica.high.watermark.checkpoint.interval.ms", 0, D(5_000)), // no Kafka validator
    int("num.replica.fetchers", 1, I32, D(1)),
    long("log.flush.interval.messages", 1, D(I64)),
    long("log.flush.interval.ms", 0, Null), // no Kafka validator; null: log.flush.scheduler.interval.ms
    long("log.flush.scheduler.interval.ms", 0, D(I64)), // no Kafka validator
    int("log.flush.offset.checkpoint.interval.ms", 0, I32, D(60_000)),
    int("log.segment.bytes", 1_048_576, I32, D(1_073_741_824)),
    long("log.roll.ms", 1, Null), // no Kafka validator; null: log.roll.hours
    int("log.roll.hours", 1, I32, D(168)),
    long("log.retention.ms", -1, Null), // -1: unlimited; null: log.retention.minutes
    int("log.retention.minutes", -1, I32, Null), // null: log.retention.hours
    int("log.retention.hours", -1, I32, D(168)),
    long("log.retention.bytes", -1, D(-1)), // -1: unlimited
    long("log.retention.check.interval.ms", 1, D(300_000)),
    int("log.index.interval.bytes", 0, I32, D(4_096)),
    int("log.index.size.max.bytes", 4, I32, D(10_485_760)),
    list_of("log.cleanup.policy", CLEANUP_POLICIES, "delete"),
    one_of(
        "log.message.timestamp.type",
        TIMESTAMP_TYPES,
        DefaultValue::Str("CreateTime"),
    ),
    boolean("log.cleaner.enable", true),
    double("log.cleaner.min.cleanable.ratio", 0.0, 1.0, 0.5),
    long("log.cleaner.delete.retention.ms", 0, D(86_400_000)),
    long("log.cleaner.backoff.ms", 0, D(15_000)),
    int("message.max.bytes", 0, I32, D(1_048_588)),
    one_of(
        "compression.type",
        BROKER_COMPRESSION,
        DefaultValue::Str("producer"),
    ),
    int("num.partitions", 1, I32, D(1)),
    int("default.replication.factor", 1, I32, D(1)), // no Kafka validator
    boolean("auto.create.topics.enable", true),
    boolean("auto.leader.rebalance.enable", true),
    long("leader.imbalance.check.interval.seconds", 1, D(300)),
    int("leader.imbalance.per.broker.percentage", 0, I32, D(10)), // no Kafka validator
    int("offsets.topic.replication.factor", 1, I16, D(3)),
    int("offsets.topic.num.partitions", 1, I32, D(50)),
    int("offsets.topic.segment.bytes", 1, I32, D(104_857_600)),
    int("offsets.retention.minutes", 1, I32, D(10_080)),
    int("offsets.commit.timeout.ms", 1, I32, D(5_000)),
    int("group.initial.rebalance.delay.ms", 0, I32, D(3_000)), // no Kafka validator
    int("group.min.session.timeout.ms", 0, I32, D(6_000)),     // no Kafka validator
    int("group.max.session.timeout.ms", 0, I32, D(1_800_000)), // no Kafka validator
    int("transaction.state.log.replication.factor", 1, I16, D(3)),
    int("transaction.state.log.min.isr", 1, I32, D(2)),
    int("transaction.state.log.num.partitions", 1, I32, D(50)),
    int("transaction.max.timeout.ms", 1, I32, D(900_000)),
    int("transactional.id.expiration.ms", 1, I32, D(604_800_000)),
    int(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        1,
        I32,
        D(10_000),
    ),
    int("broker.session.timeout.ms", 1, I32, D(9_000)), // no Kafka validator
    int("broker.heartbeat.interval.ms", 1, I32, D(2_000)), // no Kafka validator
    int("controller.quorum.election.timeout.ms", 1, I32, D(1_000)), // no Kafka validator
    int("controller.quorum.fetch.timeout.ms", 1, I32, D(2_000)), // no Kafka validator
    int(
        "controller.quorum.election.backoff.max.ms",
        1,
        I32,
        D(1_000),
    ), // no Kafka validator
    // KRaft's metadata log and its snapshots (`MetadataLogConfig`, KIP-630).
    long(
        "metadata.log.max.record.bytes.between.snapshots",
        1,
        D(20 * 1024 * 1024),
    ),
    long("metadata.log.max.snapshot.interval.ms", 0, D(3_600_000)),
    long("metadata.max.retention.bytes", -1, D(100 * 1024 * 1024)), // no Kafka validator
    long("metadata.max.retention.ms", -1, D(604_800_000)),          // no Kafka validator
    int(
        "metadata.log.segment.bytes",
        8 * 1024 * 1024,
        I32,
        D(1_073_741_824),
    ),
    // Kafka's internal override of metadata.log.segment.bytes, for tests that want small segments.
    int("internal.metadata.log.segment.bytes", 14, I32, Null),
];

/// A topic's configs: `LogConfig`.
pub const TOPIC: &[ConfigDef] = &[
    list_of("cleanup.policy", CLEANUP_POLICIES, "delete"),
    long("retention.ms", -1, D(604_800_000)),
    long("retention.bytes", -1, D(-1)), // Kafka: any negative means unlimited
    int("segment.bytes", 1_048_576, I32, D(1_073_741_824)),
    // Kafka's internal override of segment.bytes (no validator), for tests that want small segments.
    int("internal.segment.bytes", 14, I32, Null),
    long("segment.ms", 1, D(604_800_000)),
    long("segment.jitter.ms", 0, D(0)),
    int("segment.index.bytes", 4, I32, D(10_485_760)),
    int("min.insync.replicas", 1, I32, D(1)),
    boolean("unclean.leader.election.enable", false),
    long("delete.retention.ms", 0, D(86_400_000)),
    long("min.compaction.lag.ms", 0, D(0)),
    long("max.compaction.lag.ms", 1, D(I64)),
    double("min.cleanable.dirty.ratio", 0.0, 1.0, 0.5),
    long("flush.messages", 1, D(I64)),
    long("flush.ms", 0, D(I64)),
    one_of(
        "message.timestamp.type",
        TIMESTAMP_TYPES,
        DefaultValue::Str("CreateTime"),
    ),
    int("index.interval.bytes", 0, I32, D(4_096)),
    int("max.message.bytes", 0, I32, D(1_048_588)),
    one_of(
        "compression.type",
        BROKER_COMPRESSION,
        DefaultValue::Str("producer"),
    ),
    boolean("preallocate", false),
];

/// `ProducerConfig`.
pub const PRODUCER: &[ConfigDef] = &[
    one_of("acks", &["all", "-1", "0", "1"], DefaultValue::Str("all")),
    boolean("enable.idempotence", true),
    int("retries", 0, I32, D(I32)),
    long("linger.ms", 0, D(5)),
    int("batch.size", 0, I32, D(16_384)),
    long("buffer.memory", 0, D(33_554_432)),
    long("max.block.ms", 0, D(60_000)),
    int("max.in.flight.requests.per.connection", 1, I32, D(5)),
    int("max.request.size", 0, I32, D(1_048_576)),
    int("request.timeout.ms", 0, I32, D(30_000)),
    int("delivery.timeout.ms", 0, I32, D(120_000)),
    long("retry.backoff.ms", 0, D(100)),
    long("retry.backoff.max.ms", 0, D(1_000)),
    one_of(
        "compression.type",
        PRODUCER_COMPRESSION,
        DefaultValue::Str("none"),
    ),
    string("transactional.id", Null),
    int("transaction.timeout.ms", 1, I32, D(60_000)), // no Kafka validator
    one_of("partitioner.class", PARTITIONERS, Null),
    boolean("partitioner.ignore.keys", false),
    string("client.id", Null),
];

/// `ConsumerConfig`.
pub const CONSUMER: &[ConfigDef] = &[
    string("group.id", Null),
    string("group.instance.id", Null),
    one_of("group.protocol", &["classic", "consumer"], DefaultValue::Str("classic")),
    one_of("isolation.level", &["read_committed", "read_uncommitted"], DefaultValue::Str("read_uncommitted")),
    boolean("enable.auto.commit", true),
    int("auto.commit.interval.ms", 0, I32, D(5_000)),
    one_of("auto.offset.reset", &["latest", "earliest", "none"], DefaultValue::Str("latest")),
    int("max.poll.records", 1, I32, D(500)),
    long("metadata.max.age.ms", 0, D(300_000)),
    int("max.poll.interval.ms", 1, I32, D(300_000)),
    int("fetch.min.bytes", 0, I32, D(1)),
    int("fetch.max.bytes", 0, I32, D(52_428_800)),
    int("fetch.max.wait.ms", 0, I32, D(500)),
    int("max.partition.fetch.bytes", 0, I32, D(1_048_576)),
    int("session.timeout.ms", 1, I32, D(45_000)), // no Kafka validator
    int("heartbeat.interval.ms", 1, I32, D(3_000)), // no Kafka validator
    list_of(
        "partition.assignment.strategy",
        ASSIGNORS,
        "org.apache.kafka.clients.consumer.RangeAssignor,org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
    ),
    int("request.timeout.ms", 0, I32, D(30_000)),
    int("default.api.timeout.ms", 0, I32, D(60_000)),
    long("retry.backoff.ms", 0, D(100)),
    boolean("check.crcs", true),
    boolean("allow.auto.create.topics", true),
    string("client.id", Null),
];

/// The known configs of a scope, in the order above.
pub fn table(scope: Scope) -> &'static [ConfigDef] {
    match scope {
        Scope::Broker => BROKER,
        Scope::Topic => TOPIC,
        Scope::Producer => PRODUCER,
        Scope::Consumer => CONSUMER,
    }
}

/// The definition of a config, if `name` is a known config of `scope`.
pub fn lookup(scope: Scope, name: &str) -> Option<&'static ConfigDef> {
    table(scope).iter().find(|def| def.name == name)
}

/// Kafka's default for a config; `None` if the name is unknown or Kafka's default is `null`.
pub fn default_value(scope: Scope, name: &str) -> Option<ConfigValue> {
    lookup(scope, name).and_then(|def| def.default.value())
}

pub fn broker_default(name: &str) -> Option<ConfigValue> {
    default_value(Scope::Broker, name)
}

pub fn topic_default(name: &str) -> Option<ConfigValue> {
    default_value(Scope::Topic, name)
}

pub fn producer_default(name: &str) -> Option<ConfigValue> {
    default_value(Scope::Producer, name)
}

pub fn consumer_default(name: &str) -> Option<ConfigValue> {
    default_value(Scope::Consumer, name)
}

/// The value a scenario gave, or else Kafka's default (`None` for a `null` default). The name
/// must be one of `scope`'s: asking for an unknown one is a bug in the caller.
pub fn get(configs: &Configs, name: &str, scope: Scope) -> Option<ConfigValue> {
    debug_assert!(
        lookup(scope, name).is_some(),
        "{name} is not a known {} config",
        scope.name()
    );
    configs
        .get(name)
        .cloned()
        .or_else(|| default_value(scope, name))
}

pub fn get_i64(configs: &Configs, name: &str, scope: Scope) -> Option<i64> {
    get(configs, name, scope).and_then(|v| v.as_i64())
}

pub fn get_f64(configs: &Configs, name: &str, scope: Scope) -> Option<f64> {
    get(configs, name, scope).and_then(|v| v.as_f64())
}

pub fn get_bool(configs: &Configs, name: &str, scope: Scope) -> Option<bool> {
    get(configs, name, scope).and_then(|v| v.as_bool())
}

pub fn get_str(configs: &Configs, name: &str, scope: Scope) -> Option<String> {
    get(configs, name, scope).and_then(|v| v.as_str().map(str::to_string))
}

/// For each topic config, the broker configs that give its default, in Kafka's order of
/// precedence, with the factor that turns the broker's unit into the topic's
/// (`ServerTopicConfigSynonyms`: `retention.ms` falls back to `log.retention.ms`, then
/// `log.retention.minutes`, then `log.retention.hours`).
pub const TOPIC_SYNONYMS: &[(&str, &[(&str, i64)])] = &[
    ("cleanup.policy", &[("log.cleanup.policy", 1)]),
    (
        "retention.ms",
        &[
            ("log.retention.ms", 1),
            ("log.retention.minutes", 60_000),
            ("log.retention.hours", 3_600_000),
        ],
    ),
    ("retention.bytes", &[("log.retention.bytes", 1)]),
    ("segment.bytes", &[("log.segment.bytes", 1)]),
    (
        "segment.ms",
        &[("log.roll.ms", 1), ("log.roll.hours", 3_600_000)],
    ),
    ("segment.index.bytes", &[("log.index.size.max.bytes", 1)]),
    ("min.insync.replicas", &[("min.insync.replicas", 1)]),
    (
        "unclean.leader.election.enable",
        &[("unclean.leader.election.enable", 1)],
    ),
    (
        "delete.retention.ms",
        &[("log.cleaner.delete.retention.ms", 1)],
    ),
    (
        "min.cleanable.dirty.ratio",
        &[("log.cleaner.min.cleanable.ratio", 1)],
    ),
    ("flush.messages", &[("log.flush.interval.messages", 1)]),
    (
        "flush.ms",
        &[
            ("log.flush.interval.ms", 1),
            ("log.flush.scheduler.interval.ms", 1),
        ],
    ),
    (
        "message.timestamp.type",
        &[("log.message.timestamp.type", 1)],
    ),
    ("index.interval.bytes", &[("log.index.interval.bytes", 1)]),
    ("max.message.bytes", &[("message.max.bytes", 1)]),
    ("compression.type", &[("compression.type", 1)]),
];

fn synonyms(topic_name: &str) -> &'static [(&'static str, i64)] {
    TOPIC_SYNONYMS
        .iter()
        .find(|(name, _)| *name == topic_name)
        .map_or(&[], |(_, s)| s)
}

/// A topic's effective config, as Kafka resolves it: the topic's own value, else the first broker
/// synonym the scenario set, else the first synonym with a non-null default, else the topic
/// config's own default. A retention scaled from minutes or hours that is negative is `-1`
/// (unlimited), as in `KafkaConfig.logRetentionTimeMillis`.
pub fn topic_config(topic: &Configs, broker: &Configs, name: &str) -> Option<ConfigValue> {
    debug_assert!(
        lookup(Scope::Topic, name).is_some(),
        "{name} is not a known topic config"
    );
    if let Some(v) = topic.get(name) {
        return Some(v.clone());
    }
    let chain = synonyms(name);
    let set = chain
        .iter()
        .find_map(|&(b, f)| broker.get(b).map(|v| (v.clone(), f)));
    let defaulted = || {
        chain
            .iter()
            .find_map(|&(b, f)| broker_default(b).map(|v| (v, f)))
    };
    match set.or_else(defaulted) {
        Some((ConfigValue::Int(v), factor)) if factor != 1 => Some(ConfigValue::Int(if v < 0 {
            -1
        } else {
            v.saturating_mul(factor)
        })),
        Some((v, _)) => Some(v),
        None => topic_default(name),
    }
}

/// Checks a value against a config's type and range, and returns it normalized: a `DOUBLE` given
/// as an integer becomes a float, an enum given as an integer (`acks = -1`) becomes its string,
/// a list is written `a,b` without spaces.
pub fn check(def: &ConfigDef, value: ConfigValue) -> Result<ConfigValue, String> {
    match (def.ty, value) {
        (ConfigType::Int { min, max } | ConfigType::Long { min, max }, ConfigValue::Int(v)) => {
            in_range(v, min, max)?;
            Ok(ConfigValue::Int(v))
        }
        (ConfigType::Double { min, max }, ConfigValue::Int(v)) => check_double(v as f64, min, max),
        (ConfigType::Double { min, max }, ConfigValue::Float(v)) => check_double(v, min, max),
        (ConfigType::Boolean, ConfigValue::Bool(v)) => Ok(ConfigValue::Bool(v)),
        (ConfigType::Str, ConfigValue::Str(s)) if s.is_empty() => Err("must not be empty".into()),
        (ConfigType::Str, ConfigValue::Str(s)) => Ok(ConfigValue::Str(s)),
        (ConfigType::OneOf(values), ConfigValue::Str(s)) => one_of_values(values, s),
        (ConfigType::OneOf(values), ConfigValue::Int(v))
            if values.contains(&v.to_string().as_str()) =>
        {
            Ok(ConfigValue::Str(v.to_string()))
        }
        (ConfigType::ListOf(values), ConfigValue::Str(s)) => list_values(values, &s),
        (ty, other) => Err(format!(
            "expected {}, found {}",
            type_phrase(ty),
            describe(&other)
        )),
    }
}

fn in_range(v: i64, min: i64, max: i64) -> Result<(), String> {
    let unbounded_above = max == I32 || max == I64;
    if v < min && unbounded_above {
        Err(format!("must be at least {min}, found {v}"))
    } else if v < min {
        Err(format!("must be between {min} and {max}, found {v}"))
    } else if v > max {
        Err(format!("must be at most {max}, found {v}"))
    } else {
        Ok(())
    }
}

fn check_double(v: f64, min: f64, max: f64) -> Result<ConfigValue, String> {
    if !v.is_finite() || v < min || v > max {
        Err(format!("must be between {min} and {max}, found {v}"))
    } else {
        Ok(ConfigValue::Float(v))
    }
}

fn one_of_values(values: &[&str], s: String) -> Result<ConfigValue, String> {
    if values.contains(&s.as_str()) {
        Ok(ConfigValue::Str(s))
    } else {
        Err(format!(
            "must be one of {}, found \"{s}\"",
            quoted_list(values)
        ))
    }
}

fn list_values(values: &[&str], s: &str) -> Result<ConfigValue, String> {
    let items: Vec<&str> = s.split(',').map(str::trim).collect();
    for (i, item) in items.iter().enumerate() {
        if !values.contains(item) {
            return Err(format!("\"{item}\" is not one of {}", quoted_list(values)));
        }
        if items[..i].contains(item) {
            return Err(format!("\"{item}\" is listed twice"));
        }
    }
    Ok(ConfigValue::Str(items.join(",")))
}

fn quoted_list(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How messages name what a config type accepts: "an integer", "one of \"all\", ...".
pub fn type_phrase(ty: ConfigType) -> String {
    match ty {
        ConfigType::Int { .. } | ConfigType::Long { .. } => "an integer".into(),
        ConfigType::Double { .. } => "a number".into(),
        ConfigType::Boolean => "true or false".into(),
        ConfigType::Str => "a string".into(),
        ConfigType::OneOf(values) => format!("one of {}", quoted_list(values)),
        ConfigType::ListOf(values) => format!("a comma-separated list of {}", quoted_list(values)),
    }
}

/// A value as a message names it: `the string "x"`.
pub fn describe(value: &ConfigValue) -> String {
    match value {
        ConfigValue::Int(v) => format!("the integer {v}"),
        ConfigValue::Float(v) => format!("the number {v}"),
        ConfigValue::Bool(v) => format!("the boolean {v}"),
        ConfigValue::Str(v) => format!("the string \"{v}\""),
    }
}

/// The known name closest to `name` (by edit distance, at most a third of its length), for
/// "did you mean" hints.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// A hint for a name unknown in `scope`: the closest known name, or the scope it belongs to.
pub fn unknown_hint(scope: Scope, name: &str) -> String {
    if scope == Scope::Broker {
        if let Some((_, chain)) = TOPIC_SYNONYMS.iter().find(|(t, _)| *t == name) {
            return format!(
                " (\"{name}\" is a topic config: set it in a [[topic]]'s config, or use the broker's \"{}\")",
                chain[0].0
            );
        }
    }
    if let Some(near) = closest(name, table(scope).iter().map(|d| d.name)) {
        return format!(" (did you mean \"{near}\"?)");
    }
    match Scope::ALL
        .iter()
        .find(|&&s| s != scope && lookup(s, name).is_some())
    {
        Some(other) => format!(" (\"{name}\" is a {} config)", other.name()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_unique_names_and_defaults_that_pass_their_own_check() {
        for scope in Scope::ALL {
            for (i, def) in table(scope).iter().enumerate() {
                assert!(
                    table(scope)[..i].iter().all(|d| d.name != def.name),
                    "{} listed twice in {}",
                    def.name,
                    scope.name()
                );
                if let Some(v) = def.default.value() {
                    assert_eq!(check(def, v.clone()), Ok(v), "default of {}", def.name);
                }
            }
        }
        for (topic, chain) in TOPIC_SYNONYMS {
            assert!(lookup(Scope::Topic, topic).is_some(), "{topic}");
            for (broker, _) in *chain {
                assert!(lookup(Scope::Broker, broker).is_some(), "{broker}");
            }
        }
    }

    #[test]
    fn defaults_are_kafkas() {
        assert_eq!(
            broker_default("min.insync.replicas"),
            Some(ConfigValue::Int(1))
        );
        assert_eq!(
            broker_default("replica.lag.time.max.ms"),
            Some(ConfigValue::Int(30_000))
        );
        assert_eq!(broker_default("log.retention.ms"), None);
        assert_eq!(
            producer_default("acks"),
            Some(ConfigValue::Str("all".into()))
        );
        assert_eq!(producer_default("linger.ms"), Some(ConfigValue::Int(5)));
        assert_eq!(
            consumer_default("session.timeout.ms"),
            Some(ConfigValue::Int(45_000))
        );
        assert_eq!(topic_default("nope"), None);
    }

    #[test]
    fn topic_configs_fall_back_to_broker_synonyms() {
        let mut broker = Configs::new();
        let topic = Configs::new();
        let retention = |b: &Configs| topic_config(&topic, b, "retention.ms");
        assert_eq!(retention(&broker), Some(ConfigValue::Int(604_800_000)));
        broker.insert("log.retention.hours".into(), ConfigValue::Int(1));
        assert_eq!(retention(&broker), Some(ConfigValue::Int(3_600_000)));
        broker.insert("log.retention.minutes".into(), ConfigValue::Int(2));
        assert_eq!(retention(&broker), Some(ConfigValue::Int(120_000)));
        broker.insert("log.retention.ms".into(), ConfigValue::Int(-1));
        assert_eq!(retention(&broker), Some(ConfigValue::Int(-1)));
        assert_eq!(
            topic_config(&topic, &broker, "flush.ms"),
            Some(ConfigValue::Int(i64::MAX))
        );
        assert_eq!(
            get_i64(&topic, "min.insync.replicas", Scope::Topic),
            Some(1)
        );
    }

    #[test]
    fn check_normalizes_and_rejects() {
        let acks = lookup(Scope::Producer, "acks").unwrap();
        assert_eq!(
            check(acks, ConfigValue::Int(-1)),
            Ok(ConfigValue::Str("-1".into()))
        );
        assert!(check(acks, ConfigValue::Str("2".into())).is_err());
        let policy = lookup(Scope::Topic, "cleanup.policy").unwrap();
        assert_eq!(
            check(policy, ConfigValue::Str("compact, delete".into())),
            Ok(ConfigValue::Str("compact,delete".into()))
        );
        let isr = lookup(Scope::Broker, "min.insync.replicas").unwrap();
        assert_eq!(
            check(isr, ConfigValue::Int(0)),
            Err("must be at least 1, found 0".into())
        );
        assert!(check(isr, ConfigValue::Str("2".into()))
            .unwrap_err()
            .contains("expected an integer"));
        let ratio = lookup(Scope::Topic, "min.cleanable.dirty.ratio").unwrap();
        assert_eq!(
            check(ratio, ConfigValue::Int(1)),
            Ok(ConfigValue::Float(1.0))
        );
        assert_eq!(
            closest("min.insync.replica", BROKER.iter().map(|d| d.name)),
            Some("min.insync.replicas")
        );
        assert!(unknown_hint(Scope::Broker, "retention.ms").contains("log.retention.ms"));
    }
}
