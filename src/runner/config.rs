//! From the scenario's Kafka configs to the typed configs of brokers and clients.

use std::time::Duration;

use crate::broker::{BrokerConfig, PlantedBug};
use crate::client::consumer::{ConsumerSpec, OffsetReset};
use crate::client::producer::ProducerSpec;
use crate::scenario::{ClientSpec, ConfigValue, Configs, Scenario};

fn int(configs: &Configs, name: &str) -> Option<i64> {
    match configs.get(name)? {
        ConfigValue::Int(v) => Some(*v),
        ConfigValue::Str(s) => s.parse().ok(),
        _ => None,
    }
}

fn string(configs: &Configs, name: &str) -> Option<String> {
    configs.get(name).map(|v| v.to_string())
}

pub fn broker_config(scenario: &Scenario, planted_bug: Option<PlantedBug>) -> BrokerConfig {
    let c = &scenario.cluster.config;
    let default = BrokerConfig::default();
    BrokerConfig {
        min_insync_replicas: int(c, "min.insync.replicas").unwrap_or(default.min_insync_replicas),
        log_flush_interval_messages: int(c, "log.flush.interval.messages")
            .map(|v| v.max(1) as u64)
            .unwrap_or(default.log_flush_interval_messages),
        planted_bug,
    }
}

/// A topic's config: the broker's, overridden by the topic's own (`min.insync.replicas`,
/// `flush.messages`).
pub fn topic_config(broker: &BrokerConfig, topic: &Configs) -> BrokerConfig {
    BrokerConfig {
        min_insync_replicas: int(topic, "min.insync.replicas")
            .unwrap_or(broker.min_insync_replicas),
        log_flush_interval_messages: int(topic, "flush.messages")
            .map(|v| v.max(1) as u64)
            .unwrap_or(broker.log_flush_interval_messages),
        planted_bug: broker.planted_bug,
    }
}

fn request_timeout(c: &Configs) -> Duration {
    Duration::from_millis(int(c, "request.timeout.ms").unwrap_or(30_000).max(1) as u64)
}

pub fn producer_spec(client: &ClientSpec) -> ProducerSpec {
    let c = &client.config;
    // Kafka's default since 3.0 is acks=all.
    let acks = match string(c, "acks").as_deref() {
        Some("0") => 0,
        Some("1") => 1,
        _ => -1,
    };
    ProducerSpec {
        topic: client
            .topic
            .clone()
            .expect("the parser requires a producer's topic"),
        rate_per_s: client.rate_per_s,
        count: client.count,
        keys: client.keys,
        acks,
        request_timeout: request_timeout(c),
        start_ms: client.start_ms,
    }
}

pub fn consumer_spec(client: &ClientSpec) -> ConsumerSpec {
    let c = &client.config;
    let auto_offset_reset = match string(c, "auto.offset.reset").as_deref() {
        Some("earliest") => OffsetReset::Earliest,
        Some("none") => OffsetReset::None,
        _ => OffsetReset::Latest,
    };
    ConsumerSpec {
        topics: client.topics.clone(),
        auto_offset_reset,
        fetch_max_wait_ms: int(c, "fetch.max.wait.ms").unwrap_or(500) as i32,
        fetch_min_bytes: int(c, "fetch.min.bytes").unwrap_or(1) as i32,
        max_partition_fetch_bytes: int(c, "max.partition.fetch.bytes").unwrap_or(1_048_576) as i32,
        request_timeout: request_timeout(c),
        start_ms: client.start_ms,
    }
}
