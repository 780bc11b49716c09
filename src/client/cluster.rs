//! A client's view of the cluster, as Kafka's `Metadata` and `NetworkClient` keep it: brokers,
//! partition leaders, and one connection per broker, refreshed after errors.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::ClientContext;
use crate::protocol::versions::client_version;
use crate::protocol::{ClientError, Connection};
use crate::scenario::TopicPartition;

/// Kafka's `request.timeout.ms` default.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(30_000);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderInfo {
    pub broker: i32,
    pub epoch: i32,
}

pub struct ClusterView {
    ctx: ClientContext,
    brokers: BTreeMap<i32, SocketAddr>,
    leaders: BTreeMap<TopicPartition, LeaderInfo>,
    partition_counts: BTreeMap<String, u32>,
    connections: BTreeMap<i32, Arc<Connection>>,
    /// The connection the last metadata answer came on, and its broker's address.
    bootstrap_connection: Option<(SocketAddr, Arc<Connection>)>,
    /// Metadata requests made: each starts with the next broker in turn, so that one broker
    /// with a stale view (cut off from the quorum, shutting down) cannot pin the client to it
    /// (Kafka's `leastLoadedNode` spreads them likewise).
    refreshes: usize,
    pub request_timeout: Duration,
    /// Set after an error that suggests the metadata is out of date.
    stale: bool,
    /// When the metadata was last asked for (run time line, ms).
    last_refresh_ms: Option<u64>,
}

impl ClusterView {
    pub fn new(ctx: ClientContext) -> Self {
        ClusterView {
            ctx,
            brokers: BTreeMap::new(),
            leaders: BTreeMap::new(),
            partition_counts: BTreeMap::new(),
            connections: BTreeMap::new(),
            bootstrap_connection: None,
            refreshes: 0,
            request_timeout: REQUEST_TIMEOUT,
            stale: true,
            last_refresh_ms: None,
        }
    }

    /// Marks the metadata out of date (after `NOT_LEADER_OR_FOLLOWER` or a lost connection) and
    /// drops the broker's connection; the next `maybe_refresh` asks again.
    pub fn invalidate(&mut self, broker: i32) {
        self.stale = true;
        self.disconnect(broker);
    }

    /// Whether an error since the last refresh suggested the metadata is out of date.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Marks the metadata out of date without blaming a broker (a topic or leader not known).
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }

    /// Refreshes stale metadata, at most once per `retry.backoff.ms` (as Kafka's `Metadata`
    /// throttles its updates), without ever sleeping: callers that hold the view stay brief.
    pub async fn maybe_refresh(&mut self, topics: &[String]) {
        let now = self.ctx.clock.elapsed_ms();
        let due = self
            .last_refresh_ms
            .is_none_or(|last| now >= last + super::RETRY_BACKOFF_MS);
        if self.stale && due {
            let _ = self.refresh(topics).await;
        }
    }

    pub fn leader(&self, tp: &TopicPartition) -> Option<LeaderInfo> {
        self.leaders.get(tp).copied()
    }

    /// The partitions of `topic` whose leader is known, in order.
    pub fn partitions_with_leader(&self, topic: &str) -> Vec<u32> {
        self.leaders
            .keys()
            .filter(|tp| tp.topic == topic)
            .map(|tp| tp.partition)
            .collect()
    }

    /// The brokers the metadata lists, by id.
    pub fn brokers(&self) -> Vec<i32> {
        self.brokers.keys().copied().collect()
    }

    /// The topics whose metadata this view holds.
    pub fn known_topics(&self) -> Vec<String> {
        self.partition_counts.keys().cloned().collect()
    }

    pub fn partition_count(&self, topic: &str) -> Option<u32> {
        self.partition_counts.get(topic).copied()
    }

    /// A live connection to `broker`, opened if needed.
    pub async fn connection(&mut self, broker: i32) -> Result<Arc<Connection>, ClientError> {
        if let Some(conn) = self.connections.get(&broker) {
            if !conn.is_closed() {
                return Ok(conn.clone());
            }
            // A lost connection may mean a broker that moved on: ask for metadata again, as
            // Kafka's `NetworkClient` does after a disconnect.
            self.stale = true;
        }
        let addr = *self
            .brokers
            .get(&broker)
            .ok_or_else(|| ClientError::NotSent(format!("unknown broker {broker}")))?;
        let conn =
            Arc::new(Connection::connect_with(addr, &self.ctx.id, self.ctx.delays.clone()).await?);
        self.connections.insert(broker, conn.clone());
        Ok(conn)
    }

    /// Asks any broker (known ones first, then the bootstrap list) for the topics' metadata.
    pub async fn refresh(&mut self, topics: &[String]) -> Result<(), ClientError> {
        self.last_refresh_ms = Some(self.ctx.clock.elapsed_ms());
        let request = RequestKind::Metadata(
            MetadataRequest::default().with_topics(Some(
                topics
                    .iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
                    })
                    .collect(),
            )),
        );
        let mut candidates: Vec<SocketAddr> = self.brokers.values().copied().collect();
        for addr in &self.ctx.bootstrap {
            if !candidates.contains(addr) {
                candidates.push(*addr);
            }
        }
        if !candidates.is_empty() {
            let first = self.refreshes % candidates.len();
            candidates.rotate_left(first);
        }
        self.refreshes += 1;
        let mut last_error = ClientError::NotSent("no broker to ask".into());
        for addr in candidates {
            let conn = match self.bootstrap_connection.take() {
                Some((at, conn)) if at == addr && !conn.is_closed() => conn,
                _ => match Connection::connect_with(addr, &self.ctx.id, self.ctx.delays.clone())
                    .await
                {
                    Ok(conn) => Arc::new(conn),
                    Err(e) => {
                        last_error = e;
                        continue;
                    }
                },
            };
            let version = client_version(ApiKey::Metadata);
            match conn
                .send(ApiKey::Metadata, version, &request, self.request_timeout)
                .await
            {
                Ok(ResponseKind::Metadata(response)) => {
                    self.bootstrap_connection = Some((addr, conn));
                    self.apply(response);
                    self.stale = false;
                    return Ok(());
                }
                Ok(other) => {
                    last_error = ClientError::Protocol(format!("unexpected response {other:?}"))
                }
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    fn apply(&mut self, response: kafka_protocol::messages::MetadataResponse) {
        for broker in response.brokers {
            if let Ok(ip) = broker.host.parse::<std::net::IpAddr>() {
                self.brokers
                    .insert(broker.node_id.0, SocketAddr::new(ip, broker.port as u16));
            }
        }
        for topic in response.topics {
            let Some(name) = topic.name else { continue };
            if topic.error_code != 0 {
                continue;
            }
            let name = name.0.to_string();
            self.partition_counts
                .insert(name.clone(), topic.partitions.len() as u32);
            for p in topic.partitions {
                let tp = TopicPartition {
                    topic: name.clone(),
                    partition: p.partition_index as u32,
                };
                let known = self.leaders.get(&tp).map(|l| l.epoch);
                if known.is_some_and(|epoch| p.leader_epoch >= 0 && p.leader_epoch < epoch) {
                    continue; // an older view than ours (KIP-320): keep what we know
                }
                if p.leader_id.0 >= 0 {
                    self.leaders.insert(
                        tp,
                        LeaderInfo {
                            broker: p.leader_id.0,
                            epoch: p.leader_epoch,
                        },
                    );
                } else {
                    self.leaders.remove(&tp);
                }
            }
        }
    }

    /// Forgets a broker's connection after an error, so the next request reconnects.
    pub fn disconnect(&mut self, broker: i32) {
        if let Some(conn) = self.connections.remove(&broker) {
            conn.close();
        }
    }
}
