//! A Kafka broker: it hosts partition logs on its disk and serves `ApiVersions`, `Metadata`,
//! `Produce`, `Fetch` and `ListOffsets` over Kafka's wire protocol.
//!
//! The broker is a plain async program over the world's interfaces (disk, clock, recorder,
//! `tokio::net`), so the same code runs under madsim and under real tokio.

mod handlers;
pub mod log_manager;
mod partition;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::metadata::MetadataImage;
use crate::protocol::frame::{read_frame, write_frame};
use crate::protocol::{decode_request, encode_response};
use crate::scenario::TopicPartition;
use crate::storage::cleaner::CleanerConfig;
use crate::storage::log::LogConfig;
use crate::storage::retention::RetentionConfig;
use crate::world::{Clock, Disk, SharedRecorder};

pub use log_manager::LogManagerConfig;
pub use partition::Partition;

/// The configs a partition runs with: its topic's, each resolved as Kafka resolves it (the
/// topic's own value, else the broker's synonym, else Kafka's default; see
/// `runner::config::topic_config`). The broker's own is that of a topic with no overrides.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// `min.insync.replicas` (default 1).
    pub min_insync_replicas: i64,
    /// The log's configs: segments, indexes, flushes (`segment.bytes`, `flush.messages`, ...).
    pub log: LogConfig,
    /// `retention.ms`, `retention.bytes`, `cleanup.policy`.
    pub retention: RetentionConfig,
    /// `delete.retention.ms`, `min.cleanable.dirty.ratio`, `min.compaction.lag.ms`.
    pub cleaner: CleanerConfig,
    /// A bug planted on purpose, so a test can show that the checks find it. Never set from a
    /// scenario file.
    pub planted_bug: Option<PlantedBug>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            min_insync_replicas: 1,
            log: LogConfig::default(),
            retention: RetentionConfig::default(),
            cleaner: CleanerConfig::default(),
            planted_bug: None,
        }
    }
}

/// Bugs a test can plant in the broker to prove a check fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// Panic when appending the record at this offset (proves panics are caught and reported).
    PanicAtOffset(i64),
}

pub struct BrokerContext {
    pub id: i32,
    pub name: String,
    pub listen: SocketAddr,
    pub config: BrokerConfig,
    /// Each topic's configs, resolved (a topic missing here runs with `config`).
    pub topic_config: BTreeMap<String, BrokerConfig>,
    /// The intervals of the log manager's background tasks (broker-level configs).
    pub log_manager: LogManagerConfig,
    pub disk: Disk,
    pub clock: Clock,
    pub recorder: SharedRecorder,
    pub metadata: Arc<MetadataImage>,
}

pub struct Broker {
    ctx: Arc<BrokerContext>,
    partitions: BTreeMap<TopicPartition, Arc<tokio::sync::Mutex<Partition>>>,
}

impl Broker {
    /// Opens (and recovers) every partition this broker hosts.
    pub async fn start(ctx: Arc<BrokerContext>) -> std::io::Result<Broker> {
        let mut partitions = BTreeMap::new();
        for (tp, meta) in ctx.metadata.partitions() {
            if !meta.replicas.contains(&ctx.id) {
                continue;
            }
            let config = ctx
                .topic_config
                .get(&tp.topic)
                .unwrap_or(&ctx.config)
                .clone();
            let (partition, report) = Partition::open(&ctx, tp.clone(), meta, &config).await?;
            ctx.recorder.event(
                &ctx.name,
                "recovered",
                json!({
                    "partition": tp.to_string(),
                    "leo": report.log_end_offset,
                    "hw": partition.high_watermark(),
                    "truncated_bytes": report.truncated_bytes,
                    "reason": report.reason,
                }),
            );
            partitions.insert(tp, Arc::new(tokio::sync::Mutex::new(partition)));
        }
        Ok(Broker { ctx, partitions })
    }

    /// Serves connections until the node dies.
    pub async fn serve(self: Arc<Self>) -> std::io::Result<()> {
        let listener = TcpListener::bind(self.ctx.listen).await?;
        self.ctx.recorder.event(
            &self.ctx.name,
            "listening",
            json!({ "addr": self.ctx.listen.to_string() }),
        );
        loop {
            let (stream, _peer) = listener.accept().await?;
            let broker = self.clone();
            tokio::spawn(async move { broker.serve_connection(stream).await });
        }
    }

    /// One connection: requests are answered in order, as Kafka's network layer guarantees per
    /// connection. A malformed frame closes the connection.
    async fn serve_connection(self: Arc<Self>, stream: TcpStream) {
        let (mut reader, mut writer) = tokio::io::split(stream);
        loop {
            let frame = match read_frame(&mut reader).await {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(e) => {
                    self.protocol_error(&format!("bad frame: {e}"));
                    return;
                }
            };
            let (header, request) = match decode_request(frame) {
                Ok(decoded) => decoded,
                Err(e) => {
                    self.protocol_error(&e.0);
                    return;
                }
            };
            let api =
                ApiKey::try_from(header.request_api_key).expect("decode_request checked the key");
            let version = header.request_api_version;
            let Some(response) = self.handle(api, request).await else {
                continue; // acks=0: no response
            };
            let body: Bytes = match encode_response(api, version, header.correlation_id, &response)
            {
                Ok(body) => body,
                Err(e) => {
                    self.protocol_error(&e.0);
                    return;
                }
            };
            if write_frame(&mut writer, &body).await.is_err() {
                return;
            }
        }
    }

    fn protocol_error(&self, what: &str) {
        self.ctx
            .recorder
            .event(&self.ctx.name, "protocol-error", json!({ "error": what }));
    }

    fn partition(&self, tp: &TopicPartition) -> Option<&Arc<tokio::sync::Mutex<Partition>>> {
        self.partitions.get(tp)
    }
}

/// Starts a broker and serves until the node dies. A broker that cannot open its logs (a full
/// or broken disk) stops, as Kafka's does when its only log directory fails.
pub async fn run(ctx: Arc<BrokerContext>) {
    let name = ctx.name.clone();
    let recorder = ctx.recorder.clone();
    let result = match Broker::start(ctx).await {
        Ok(broker) => {
            let broker = Arc::new(broker);
            // Spawned on this node: they die with it.
            log_manager::spawn(&broker);
            broker.serve().await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        recorder.event(&name, "stopped", json!({ "error": e.to_string() }));
    }
}
