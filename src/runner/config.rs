//! From the scenario's Kafka configs to the typed configs of brokers and clients.

use std::time::Duration;

use crate::broker::{BrokerConfig, LogManagerConfig, PlantedBug};
use crate::client::consumer::{ConsumerSpec, OffsetReset};
use crate::client::partitioner::PartitionerKind;
use crate::client::producer::{ProducerConfig, ProducerSpec};
use crate::scenario::configs::{self, Scope};
use crate::scenario::{ClientSpec, ConfigValue, Configs, Scenario};
use crate::storage::batch::Compression;
use crate::storage::batch::TimestampType;
use crate::storage::cleaner::CleanerConfig;
use crate::storage::compression::BrokerCompression;
use crate::storage::log::LogConfig;
use crate::storage::retention::{CleanupPolicy, RetentionConfig};

fn int(configs: &Configs, name: &str) -> Option<i64> {
    match configs.get(name)? {
        ConfigValue::Int(v) => Some(*v),
        ConfigValue::Str(s) => s.parse().ok(),
        _ => None,
    }
}

/// The broker's own configs: those of a topic with no overrides.
pub fn broker_config(scenario: &Scenario, planted_bug: Option<PlantedBug>) -> BrokerConfig {
    resolve(&Configs::new(), &scenario.cluster.config, planted_bug)
}

/// A topic's configs: each the topic's own value, else the broker's synonym (`broker_configs`,
/// the scenario's `[cluster.config]`), else Kafka's default.
pub fn topic_config(
    broker: &BrokerConfig,
    broker_configs: &Configs,
    topic: &Configs,
) -> BrokerConfig {
    resolve(topic, broker_configs, broker.planted_bug)
}

fn resolve(topic: &Configs, broker: &Configs, planted_bug: Option<PlantedBug>) -> BrokerConfig {
    let min_isr =
        configs::topic_config(topic, broker, "min.insync.replicas").and_then(|v| v.as_i64());
    BrokerConfig {
        min_insync_replicas: min_isr.unwrap_or(BrokerConfig::default().min_insync_replicas),
        log: log_config(topic, broker),
        retention: retention_config(topic, broker),
        cleaner: cleaner_config(topic, broker),
        planted_bug,
    }
}

/// The configs of `__consumer_offsets`, as the broker creates it: compacted, with
/// `offsets.topic.segment.bytes` segments, and `compression.type=producer` whatever the
/// broker's default (Kafka's `GroupCoordinator.groupMetadataTopicConfigs`).
pub fn offsets_topic_config(broker: &BrokerConfig, broker_configs: &Configs) -> BrokerConfig {
    use crate::scenario::ConfigValue;
    let groups = group_config_from(broker_configs, true);
    let topic: Configs = [
        ("cleanup.policy", ConfigValue::Str("compact".into())),
        ("compression.type", ConfigValue::Str("producer".into())),
        (
            "segment.bytes",
            ConfigValue::Int(groups.offsets_topic_segment_bytes),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    topic_config(broker, broker_configs, &topic)
}

/// The group coordinator's broker configs, and the `offset-commit-fencing` variant.
pub fn group_config(scenario: &Scenario) -> crate::broker::GroupConfig {
    group_config_from(
        &scenario.cluster.config,
        scenario.protocol.offset_commit_fencing,
    )
}

fn group_config_from(c: &Configs, offset_commit_fencing: bool) -> crate::broker::GroupConfig {
    let default = crate::broker::GroupConfig::default();
    let long = |name: &str| configs::get_i64(c, name, Scope::Broker);
    let d = &default.coordinator;
    crate::broker::GroupConfig {
        coordinator: crate::coordinator::group::GroupCoordinatorConfig {
            initial_rebalance_delay_ms: long("group.initial.rebalance.delay.ms")
                .map_or(d.initial_rebalance_delay_ms, |v| v as u64),
            min_session_timeout_ms: long("group.min.session.timeout.ms")
                .map_or(d.min_session_timeout_ms, |v| v as i32),
            max_session_timeout_ms: long("group.max.session.timeout.ms")
                .map_or(d.max_session_timeout_ms, |v| v as i32),
            offsets_retention_ms: long("offsets.retention.minutes")
                .map_or(d.offsets_retention_ms, |v| v as u64 * 60_000),
            offset_commit_fencing,
            ..d.clone()
        },
        offsets_topic_partitions: long("offsets.topic.num.partitions")
            .map_or(default.offsets_topic_partitions, |v| v as i32),
        offsets_topic_replication_factor: long("offsets.topic.replication.factor")
            .map_or(default.offsets_topic_replication_factor, |v| v as i16),
        offsets_topic_segment_bytes: long("offsets.topic.segment.bytes")
            .unwrap_or(default.offsets_topic_segment_bytes),
    }
}

/// The transaction coordinator's broker configs, and the `transaction-version` variant.
pub fn txn_config(scenario: &Scenario) -> crate::broker::TxnConfig {
    let c = &scenario.cluster.config;
    let default = crate::broker::TxnConfig::default();
    let long = |name: &str| configs::get_i64(c, name, Scope::Broker);
    let d = &default.coordinator;
    crate::broker::TxnConfig {
        coordinator: crate::coordinator::txn::TransactionCoordinatorConfig {
            transaction_max_timeout_ms: long("transaction.max.timeout.ms")
                .map_or(d.transaction_max_timeout_ms, |v| v as i32),
            transactional_id_expiration_ms: long("transactional.id.expiration.ms")
                .map(|v| v as u64)
                .or(d.transactional_id_expiration_ms),
            abort_timed_out_transactions_interval_ms: long(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            )
            .map_or(d.abort_timed_out_transactions_interval_ms, |v| v as u64),
            transaction_state_num_partitions: long("transaction.state.log.num.partitions")
                .map_or(d.transaction_state_num_partitions, |v| v as i32),
            offsets_topic_num_partitions: long("offsets.topic.num.partitions")
                .map_or(d.offsets_topic_num_partitions, |v| v as i32),
            transaction_version: scenario.protocol.transaction_version,
            ..d.clone()
        },
        replication_factor: long("transaction.state.log.replication.factor")
            .map_or(default.replication_factor, |v| v as i16),
        min_isr: long("transaction.state.log.min.isr").map_or(default.min_isr, |v| v as i32),
        segment_bytes: default.segment_bytes,
    }
}

/// `retention.ms` (from `log.retention.ms`, else `.minutes`, else `.hours`), `retention.bytes`
/// and `cleanup.policy`, resolved as Kafka does.
pub fn retention_config(topic: &Configs, broker: &Configs) -> RetentionConfig {
    let default = RetentionConfig::default();
    let long = |name: &str| configs::topic_config(topic, broker, name).and_then(|v| v.as_i64());
    let cleanup_policy = match configs::topic_config(topic, broker, "cleanup.policy") {
        Some(ConfigValue::Str(list)) => {
            let has = |p: &str| list.split(',').any(|item| item.trim() == p);
            CleanupPolicy {
                delete: has("delete"),
                compact: has("compact"),
            }
        }
        _ => default.cleanup_policy,
    };
    RetentionConfig {
        retention_ms: long("retention.ms").unwrap_or(default.retention_ms),
        retention_bytes: long("retention.bytes").unwrap_or(default.retention_bytes),
        cleanup_policy,
    }
}

/// `delete.retention.ms`, `min.cleanable.dirty.ratio` and `min.compaction.lag.ms`, resolved as
/// Kafka does.
pub fn cleaner_config(topic: &Configs, broker: &Configs) -> CleanerConfig {
    let default = CleanerConfig::default();
    let resolved = |name: &str| configs::topic_config(topic, broker, name);
    CleanerConfig {
        delete_retention_ms: resolved("delete.retention.ms")
            .and_then(|v| v.as_i64())
            .unwrap_or(default.delete_retention_ms),
        min_cleanable_dirty_ratio: resolved("min.cleanable.dirty.ratio")
            .and_then(|v| v.as_f64())
            .unwrap_or(default.min_cleanable_dirty_ratio),
        min_compaction_lag_ms: resolved("min.compaction.lag.ms")
            .and_then(|v| v.as_i64())
            .unwrap_or(default.min_compaction_lag_ms),
    }
}

/// The log manager's intervals, from the broker's configs. Kafka checks `flush.ms` every
/// `log.flush.scheduler.interval.ms` (default `Long.MAX_VALUE`: never); when the scenario leaves
/// that unset but some topic (or the broker) sets `flush.ms`, it is checked every second, so
/// that the setting does what its name says. `broker`: the scenario's `[cluster.config]`;
/// `topics`: the resolved topic configs.
pub fn log_manager_config<'a>(
    broker: &Configs,
    topics: impl IntoIterator<Item = &'a BrokerConfig>,
) -> LogManagerConfig {
    let c = broker;
    let long = |name: &str| configs::get_i64(c, name, Scope::Broker);
    let default = LogManagerConfig::default();
    let interval = |name: &str, default: u64| long(name).map_or(default, |v| v.max(1) as u64);
    let flush_ms_set = topics
        .into_iter()
        .any(|t| t.log.flush_interval_ms < i64::MAX);
    let flush_check_interval_ms = match int(c, "log.flush.scheduler.interval.ms") {
        Some(ms) if ms < i64::MAX => Some(ms.max(1) as u64),
        Some(_) => None,
        None => flush_ms_set.then_some(1_000),
    };
    LogManagerConfig {
        retention_check_interval_ms: interval(
            "log.retention.check.interval.ms",
            default.retention_check_interval_ms,
        ),
        cleaner_enable: configs::get_bool(c, "log.cleaner.enable", Scope::Broker)
            .unwrap_or(default.cleaner_enable),
        cleaner_backoff_ms: interval("log.cleaner.backoff.ms", default.cleaner_backoff_ms),
        flush_check_interval_ms,
    }
}

/// A topic's log configs as Kafka resolves them: the topic's own value, else the broker's
/// synonym (`segment.ms` from `log.roll.ms` or `log.roll.hours`, `flush.ms` from
/// `log.flush.interval.ms` or `log.flush.scheduler.interval.ms`, ...), else Kafka's default.
/// Kafka's internal `internal.segment.bytes` overrides `segment.bytes` (small segments in tests).
pub fn log_config(topic: &Configs, broker: &Configs) -> LogConfig {
    let default = LogConfig::default();
    let resolved = |name: &str| configs::topic_config(topic, broker, name);
    let long = |name: &str| resolved(name).and_then(|v| v.as_i64());
    let bytes = |name: &str, default: u64| long(name).map_or(default, |v| v.max(0) as u64);
    let segment_bytes = int(topic, "internal.segment.bytes")
        .map(|v| v.max(1) as u64)
        .unwrap_or_else(|| bytes("segment.bytes", default.segment_bytes));
    let message_timestamp_type = match resolved("message.timestamp.type") {
        Some(ConfigValue::Str(s)) if s == "LogAppendTime" => TimestampType::LogAppendTime,
        _ => TimestampType::CreateTime,
    };
    // The config table admits only `BrokerCompressionType`'s names.
    let compression_type = match resolved("compression.type") {
        Some(ConfigValue::Str(s)) => BrokerCompression::from_name(&s),
        _ => None,
    }
    .unwrap_or(default.compression_type);
    LogConfig {
        segment_bytes,
        segment_ms: long("segment.ms").unwrap_or(default.segment_ms),
        segment_index_bytes: bytes("segment.index.bytes", default.segment_index_bytes),
        index_interval_bytes: bytes("index.interval.bytes", default.index_interval_bytes),
        flush_interval_messages: long("flush.messages")
            .map_or(default.flush_interval_messages, |v| v.max(1) as u64),
        flush_interval_ms: long("flush.ms").unwrap_or(default.flush_interval_ms),
        message_timestamp_type,
        recovery_point_checkpoint_interval_ms: configs::get_i64(
            broker,
            "log.flush.offset.checkpoint.interval.ms",
            Scope::Broker,
        )
        .unwrap_or(default.recovery_point_checkpoint_interval_ms),
        compression_type,
    }
}

/// A client config's value, or Kafka's default from the config table.
fn client_int(c: &Configs, name: &str, scope: Scope) -> i64 {
    configs::get_i64(c, name, scope).expect("the config table gives every client config a default")
}

fn request_timeout(c: &Configs, scope: Scope) -> Duration {
    Duration::from_millis(client_int(c, "request.timeout.ms", scope).max(1) as u64)
}

pub fn producer_spec(client: &ClientSpec) -> ProducerSpec {
    ProducerSpec {
        topic: client
            .topic
            .clone()
            .expect("the parser requires a producer's topic"),
        rate_per_s: client.rate_per_s,
        count: client.count,
        keys: client.keys,
        config: producer_config(&client.config),
        start_ms: client.start_ms,
        next_record: Default::default(),
    }
}

/// A pipeline member: a group consumer reading committed records (as Kafka Streams with
/// `exactly_once_v2` sets it), committing through the transactions of its own producer, whose
/// `transactional.id` is the member's name (or the configured id with the member's number).
pub fn pipeline_spec(
    client: &ClientSpec,
    member: u32,
) -> crate::client::group_consumer::GroupConsumerSpec {
    use crate::client::group_consumer::{CommitMode, PipelineSpec};
    let mut spec = group_consumer_spec(client, member);
    spec.commit = CommitMode::Transactional;
    spec.consumer.read_committed = true;
    let mut producer = producer_config(&client.config);
    let base = producer
        .transactional_id
        .clone()
        .unwrap_or_else(|| client.id.clone());
    producer.transactional_id = Some(format!("{base}-{member}"));
    producer.enable_idempotence = true;
    spec.pipeline = Some(PipelineSpec {
        output: client
            .topic
            .clone()
            .expect("the parser requires a pipeline's output topic"),
        prefix: pipeline_prefix(client),
        producer,
    });
    spec
}

/// What a pipeline puts before each input value to make its output value.
pub fn pipeline_prefix(client: &ClientSpec) -> String {
    format!("{}:", client.id)
}

/// A transactional producer: `transactional.id` defaults to the client's id.
pub fn transactional_spec(client: &ClientSpec) -> crate::client::transactional::TransactionalSpec {
    let mut config = producer_config(&client.config);
    if config.transactional_id.is_none() {
        config.transactional_id = Some(client.id.clone());
    }
    config.enable_idempotence = true;
    crate::client::transactional::TransactionalSpec {
        topic: client
            .topic
            .clone()
            .expect("the parser requires a producer's topic"),
        rate_per_s: client.rate_per_s,
        count: client.count,
        keys: client.keys,
        per_transaction: client.per_transaction,
        abort_ratio: client.abort_ratio,
        config,
        start_ms: client.start_ms,
        next_record: Default::default(),
    }
}

/// A producer's `config` table, with Kafka's defaults for what it leaves out.
pub fn producer_config(c: &Configs) -> ProducerConfig {
    let scope = Scope::Producer;
    let int = |name: &str| client_int(c, name, scope).max(0) as u64;
    let ms = |name: &str| Duration::from_millis(int(name));
    // Kafka's default since 3.0 is acks=all.
    let acks = match configs::get_str(c, "acks", scope).as_deref() {
        Some("0") => 0,
        Some("1") => 1,
        _ => -1,
    };
    let compression = configs::get_str(c, "compression.type", scope)
        .and_then(|name| Compression::from_name(&name))
        .unwrap_or(Compression::None);
    let partitioner = match configs::get_str(c, "partitioner.class", scope) {
        Some(_) => PartitionerKind::RoundRobin, // the only class the table accepts
        None => PartitionerKind::BuiltIn,
    };
    let max_in_flight = int("max.in.flight.requests.per.connection").max(1) as usize;
    let retries = int("retries").min(u32::MAX as u64) as u32;
    // Kafka 3.2+: idempotence is on by default, and quietly off when left unset with configs
    // it cannot keep its promise under (`postProcessAndValidateIdempotenceConfigs`); set
    // explicitly with them, the scenario is refused when parsed.
    let enable_idempotence = c
        .get("enable.idempotence")
        .and_then(|v| v.as_bool())
        .unwrap_or(acks == -1 && max_in_flight <= 5 && retries > 0);
    ProducerConfig {
        acks,
        linger_ms: int("linger.ms"),
        batch_size: int("batch.size") as usize,
        buffer_memory: int("buffer.memory") as usize,
        max_block: ms("max.block.ms"),
        max_in_flight,
        max_request_size: int("max.request.size") as usize,
        request_timeout: request_timeout(c, scope),
        delivery_timeout: ms("delivery.timeout.ms"),
        retries,
        retry_backoff_ms: int("retry.backoff.ms"),
        retry_backoff_max_ms: int("retry.backoff.max.ms"),
        compression,
        partitioner,
        partitioner_ignore_keys: configs::get_bool(c, "partitioner.ignore.keys", scope)
            .unwrap_or(false),
        enable_idempotence: enable_idempotence
            || configs::get_str(c, "transactional.id", scope).is_some(),
        transactional_id: configs::get_str(c, "transactional.id", scope),
        transaction_timeout_ms: client_int(c, "transaction.timeout.ms", scope) as i32,
    }
}

pub fn consumer_spec(client: &ClientSpec) -> ConsumerSpec {
    let c = &client.config;
    let auto_offset_reset =
        match configs::get_str(c, "auto.offset.reset", Scope::Consumer).as_deref() {
            Some("earliest") => OffsetReset::Earliest,
            Some("none") => OffsetReset::None,
            _ => OffsetReset::Latest,
        };
    ConsumerSpec {
        topics: client.topics.clone(),
        auto_offset_reset,
        fetch_max_wait_ms: client_int(c, "fetch.max.wait.ms", Scope::Consumer) as i32,
        fetch_min_bytes: client_int(c, "fetch.min.bytes", Scope::Consumer) as i32,
        max_partition_fetch_bytes: client_int(c, "max.partition.fetch.bytes", Scope::Consumer)
            as i32,
        request_timeout: request_timeout(c, Scope::Consumer),
        read_committed: configs::get_str(c, "isolation.level", Scope::Consumer).as_deref()
            == Some("read_committed"),
        start_ms: client.start_ms,
    }
}

/// A member of a group consumer: its consumer configs, group configs and workload.
pub fn group_consumer_spec(
    client: &ClientSpec,
    member: u32,
) -> crate::client::group_consumer::GroupConsumerSpec {
    use crate::client::assignor::AssignorKind;
    use crate::client::group_consumer::{CommitMode, GroupConsumerSpec};
    use crate::scenario::CommitOrder;
    let c = &client.config;
    let auto_commit = configs::get_bool(c, "enable.auto.commit", Scope::Consumer).unwrap_or(true);
    let commit = match client.commit {
        Some(CommitOrder::AfterProcessing) => CommitMode::AfterProcessing,
        Some(CommitOrder::AfterProcessingAsync) => CommitMode::AfterProcessingAsync,
        Some(CommitOrder::BeforeProcessing) => CommitMode::BeforeProcessing,
        Some(CommitOrder::Auto) => CommitMode::Auto,
        None if auto_commit => CommitMode::Auto,
        None => CommitMode::AfterProcessing,
    };
    let assignors = configs::get_str(c, "partition.assignment.strategy", Scope::Consumer)
        .unwrap_or_default()
        .split(',')
        .filter_map(|name| AssignorKind::from_config(name.trim()))
        .collect();
    let instance = configs::get_str(c, "group.instance.id", Scope::Consumer)
        .map(|id| format!("{id}-{member}"));
    GroupConsumerSpec {
        consumer: consumer_spec(client),
        group: client.group.clone().expect("a group consumer has a group"),
        group_instance_id: instance,
        session_timeout_ms: client_int(c, "session.timeout.ms", Scope::Consumer) as i32,
        heartbeat_interval_ms: client_int(c, "heartbeat.interval.ms", Scope::Consumer).max(1)
            as u64,
        max_poll_interval_ms: client_int(c, "max.poll.interval.ms", Scope::Consumer) as i32,
        max_poll_records: client_int(c, "max.poll.records", Scope::Consumer).max(1) as usize,
        assignors,
        commit,
        auto_commit_interval_ms: client_int(c, "auto.commit.interval.ms", Scope::Consumer).max(1)
            as u64,
        processing_ms: client.processing_ms,
        handoff: client.handoff,
        stall: client.stall,
        metadata_max_age_ms: client_int(c, "metadata.max.age.ms", Scope::Consumer).max(0) as u64,
        pipeline: None,
    }
}

/// The brokers' replication configs from `[cluster.config]` (`replica.*`), and the protocol
/// variants that change replication.
pub fn replication_config(scenario: &Scenario) -> crate::broker::ReplicationConfig {
    let c = &scenario.cluster.config;
    let default = crate::broker::ReplicationConfig::default();
    let long = |name: &str| configs::get_i64(c, name, Scope::Broker);
    crate::broker::ReplicationConfig {
        lag_time_max_ms: long("replica.lag.time.max.ms").unwrap_or(default.lag_time_max_ms),
        fetch_wait_max_ms: long("replica.fetch.wait.max.ms")
            .map_or(default.fetch_wait_max_ms, |v| v as i32),
        fetch_min_bytes: long("replica.fetch.min.bytes")
            .map_or(default.fetch_min_bytes, |v| v as i32),
        fetch_max_bytes: long("replica.fetch.max.bytes")
            .map_or(default.fetch_max_bytes, |v| v as i32),
        fetch_response_max_bytes: long("replica.fetch.response.max.bytes")
            .map_or(default.fetch_response_max_bytes, |v| v as i32),
        fetch_backoff_ms: long("replica.fetch.backoff.ms")
            .map_or(default.fetch_backoff_ms, |v| v as u64),
        socket_timeout_ms: long("replica.socket.timeout.ms")
            .map_or(default.socket_timeout_ms, |v| v as u64),
        hw_checkpoint_interval_ms: long("replica.high.watermark.checkpoint.interval.ms")
            .map_or(default.hw_checkpoint_interval_ms, |v| v as u64),
        truncation: scenario.protocol.truncation,
        strict_min_isr: scenario.protocol.eligible_leader_replicas,
        broker_epoch_check: scenario.protocol.broker_epoch_check,
    }
}

/// The controller's configs from `[cluster.config]` (KRaft controllers read the same
/// `server.properties` keys), and the `broker-epoch-check` and `eligible-leader-replicas`
/// protocol variants.
pub fn quorum_controller_config(
    scenario: &Scenario,
) -> crate::controller::quorum::QuorumControllerConfig {
    let cluster = &scenario.cluster.config;
    let default = crate::controller::quorum::QuorumControllerConfig::default();
    let long = |name: &str| configs::get_i64(cluster, name, Scope::Broker);
    let flag = |name: &str| configs::get_bool(cluster, name, Scope::Broker);
    crate::controller::quorum::QuorumControllerConfig {
        session_timeout_ms: long("broker.session.timeout.ms")
            .map_or(default.session_timeout_ms, |v| v as u64),
        num_partitions: long("num.partitions").map_or(default.num_partitions, |v| v as i32),
        default_replication_factor: long("default.replication.factor")
            .map_or(default.default_replication_factor, |v| v as i16),
        unclean_leader_election: flag("unclean.leader.election.enable")
            .unwrap_or(default.unclean_leader_election),
        auto_leader_rebalance: flag("auto.leader.rebalance.enable")
            .unwrap_or(default.auto_leader_rebalance),
        leader_imbalance_check_interval_ms: long("leader.imbalance.check.interval.seconds")
            .map_or(default.leader_imbalance_check_interval_ms, |s| {
                s as u64 * 1000
            }),
        broker_epoch_check: scenario.protocol.broker_epoch_check,
        eligible_leader_replicas: scenario.protocol.eligible_leader_replicas,
        min_insync_replicas: long("min.insync.replicas")
            .map_or(default.min_insync_replicas, |v| v as i32),
    }
}

/// The metadata log's configs, from `[cluster.config]` (Kafka's `MetadataLogConfig`).
pub fn metadata_log_config(scenario: &Scenario) -> crate::raft::snapshot::MetadataLogConfig {
    let cluster = &scenario.cluster.config;
    let default = crate::raft::snapshot::MetadataLogConfig::default();
    let long = |name: &str| configs::get_i64(cluster, name, Scope::Broker);
    crate::raft::snapshot::MetadataLogConfig {
        max_bytes_between_snapshots: long("metadata.log.max.record.bytes.between.snapshots")
            .map_or(default.max_bytes_between_snapshots, |v| v as u64),
        max_snapshot_interval_ms: long("metadata.log.max.snapshot.interval.ms")
            .map_or(default.max_snapshot_interval_ms, |v| v as u64),
        max_retention_bytes: long("metadata.max.retention.bytes")
            .unwrap_or(default.max_retention_bytes),
        max_retention_ms: long("metadata.max.retention.ms").unwrap_or(default.max_retention_ms),
        segment_bytes: long("internal.metadata.log.segment.bytes")
            .or_else(|| long("metadata.log.segment.bytes"))
            .map_or(default.segment_bytes, |v| v as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(pairs: &[(&str, ConfigValue)]) -> Configs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn log_config_defaults_are_kafkas() {
        assert_eq!(
            log_config(&Configs::new(), &Configs::new()),
            LogConfig::default()
        );
    }

    #[test]
    fn log_config_resolves_topic_then_broker_synonyms() {
        use ConfigValue::{Int, Str};
        let broker = configs(&[
            ("log.segment.bytes", Int(2_000_000)),
            ("log.roll.hours", Int(2)),
            ("log.index.interval.bytes", Int(100)),
            ("log.index.size.max.bytes", Int(4096)),
            ("log.flush.interval.messages", Int(10)),
            ("log.flush.scheduler.interval.ms", Int(500)),
            ("log.message.timestamp.type", Str("LogAppendTime".into())),
            ("log.flush.offset.checkpoint.interval.ms", Int(0)),
        ]);
        let c = log_config(&Configs::new(), &broker);
        assert_eq!(c.segment_bytes, 2_000_000);
        assert_eq!(c.segment_ms, 7_200_000);
        assert_eq!((c.index_interval_bytes, c.segment_index_bytes), (100, 4096));
        assert_eq!((c.flush_interval_messages, c.flush_interval_ms), (10, 500));
        assert_eq!(c.message_timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(c.recovery_point_checkpoint_interval_ms, 0);

        let topic = configs(&[
            ("segment.bytes", Int(3_000_000)),
            ("segment.ms", Int(60_000)),
            ("flush.ms", Int(7)),
            ("message.timestamp.type", Str("CreateTime".into())),
        ]);
        let c = log_config(&topic, &broker);
        assert_eq!(
            (c.segment_bytes, c.segment_ms, c.flush_interval_ms),
            (3_000_000, 60_000, 7)
        );
        assert_eq!(c.message_timestamp_type, TimestampType::CreateTime);
        let topic = configs(&[("internal.segment.bytes", Int(500))]);
        assert_eq!(log_config(&topic, &broker).segment_bytes, 500);
    }

    #[test]
    fn retention_and_cleaner_configs_resolve_topic_then_broker_synonyms() {
        use ConfigValue::{Float, Int, Str};
        let defaults = retention_config(&Configs::new(), &Configs::new());
        assert_eq!(defaults, RetentionConfig::default());
        assert_eq!(
            cleaner_config(&Configs::new(), &Configs::new()),
            CleanerConfig::default()
        );
        // retention.ms from log.retention.ms, else .minutes, else .hours.
        let broker = configs(&[
            ("log.retention.hours", Int(2)),
            ("log.retention.minutes", Int(3)),
            ("log.retention.bytes", Int(1000)),
            ("log.cleanup.policy", Str("compact,delete".into())),
            ("log.cleaner.delete.retention.ms", Int(5)),
            ("log.cleaner.min.cleanable.ratio", Float(0.25)),
        ]);
        let c = retention_config(&Configs::new(), &broker);
        assert_eq!((c.retention_ms, c.retention_bytes), (180_000, 1000));
        let both = CleanupPolicy {
            delete: true,
            compact: true,
        };
        assert_eq!(c.cleanup_policy, both);
        let c = cleaner_config(&Configs::new(), &broker);
        assert_eq!(
            (c.delete_retention_ms, c.min_cleanable_dirty_ratio),
            (5, 0.25)
        );
        let topic = configs(&[
            ("retention.ms", Int(-1)),
            ("cleanup.policy", Str("compact".into())),
            ("min.compaction.lag.ms", Int(7)),
            ("min.cleanable.dirty.ratio", Float(0.1)),
        ]);
        let c = retention_config(&topic, &broker);
        assert_eq!(
            (c.retention_ms, c.cleanup_policy),
            (-1, CleanupPolicy::COMPACT)
        );
        let c = cleaner_config(&topic, &broker);
        assert_eq!(
            (c.min_compaction_lag_ms, c.min_cleanable_dirty_ratio),
            (7, 0.1)
        );
    }

    #[test]
    fn compression_types_resolve_for_producers_topics_and_the_offsets_topic() {
        use ConfigValue::Str;
        let codec = |name: &str| configs(&[("compression.type", Str(name.into()))]);
        assert_eq!(
            producer_config(&Configs::new()).compression,
            Compression::None
        );
        assert_eq!(
            producer_config(&codec("zstd")).compression,
            Compression::Zstd
        );
        assert_eq!(
            producer_config(&codec("snappy")).compression,
            Compression::Snappy
        );
        let none = Configs::new();
        assert_eq!(
            log_config(&none, &none).compression_type,
            BrokerCompression::Producer
        );
        // The topic's own value, else the broker's.
        let broker = codec("lz4");
        assert_eq!(
            log_config(&none, &broker).compression_type,
            BrokerCompression::Codec(Compression::Lz4)
        );
        assert_eq!(
            log_config(&codec("uncompressed"), &broker).compression_type,
            BrokerCompression::Codec(Compression::None)
        );
        // `__consumer_offsets` keeps what the coordinator writes, whatever the broker's default.
        let base = resolve(&Configs::new(), &broker, None);
        let offsets = offsets_topic_config(&base, &broker);
        assert_eq!(offsets.log.compression_type, BrokerCompression::Producer);
    }

    #[test]
    fn a_topic_runs_with_its_own_log_retention_and_cleaner_configs() {
        let broker = configs(&[("min.insync.replicas", ConfigValue::Int(2))]);
        let topic = configs(&[
            ("segment.ms", ConfigValue::Int(20_000)),
            ("retention.bytes", ConfigValue::Int(4096)),
        ]);
        let base = resolve(&Configs::new(), &broker, None);
        assert_eq!(base.min_insync_replicas, 2);
        let t = topic_config(&base, &broker, &topic);
        assert_eq!(t.min_insync_replicas, 2);
        assert_eq!(t.log, log_config(&topic, &broker));
        assert_eq!(t.log.segment_ms, 20_000);
        assert_eq!(t.retention.retention_bytes, 4096);
        assert_eq!(t.cleaner, CleanerConfig::default());
    }

    #[test]
    fn log_manager_intervals_are_the_brokers_and_flush_ms_is_checked_when_set() {
        use ConfigValue::{Bool, Int};
        let plain = BrokerConfig::default();
        let c = log_manager_config(&Configs::new(), [&plain]);
        assert_eq!(c, LogManagerConfig::default());
        assert_eq!(c.flush_check_interval_ms, None);
        let broker = configs(&[
            ("log.retention.check.interval.ms", Int(10_000)),
            ("log.cleaner.backoff.ms", Int(0)),
            ("log.cleaner.enable", Bool(false)),
        ]);
        let c = log_manager_config(&broker, [&plain]);
        assert_eq!(c.retention_check_interval_ms, 10_000);
        assert_eq!(c.cleaner_backoff_ms, 1, "an idle cleaner must sleep");
        assert!(!c.cleaner_enable);
        // A topic with flush.ms: checked every second unless the scheduler interval is set.
        let flushing = topic_config(&plain, &broker, &configs(&[("flush.ms", Int(100))]));
        let c = log_manager_config(&broker, [&plain, &flushing]);
        assert_eq!(c.flush_check_interval_ms, Some(1_000));
        let broker = configs(&[("log.flush.scheduler.interval.ms", Int(250))]);
        assert_eq!(
            log_manager_config(&broker, [&plain]).flush_check_interval_ms,
            Some(250)
        );
    }
}
