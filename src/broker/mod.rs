//! A Kafka broker: it hosts partition logs on its disk and serves `ApiVersions`, `Metadata`,
//! `Produce`, `Fetch` and `ListOffsets` over Kafka's wire protocol.
//!
//! In KRaft mode (KIP-500, KIP-631) the broker registers with the active controller and
//! heartbeats (`lifecycle`), replicates the metadata log as an observer of the quorum and replays
//! it (`metadata_loader`), and acts on each new image (`publisher`): it opens the partitions
//! assigned to it, leads or follows them, and drops those taken away.
//!
//! The broker is a plain async program over the world's interfaces (disk, clock, recorder,
//! `tokio::net`), so the same code runs under madsim and under real tokio.

mod group_coordinator;
mod handlers;
mod isr;
mod lifecycle;
pub mod log_manager;
mod metadata_loader;
mod partition;
mod producer_ids;
mod publisher;
mod replica_fetcher;
mod txn_coordinator;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::metadata::MetadataImage;
use crate::protocol::controller_channel::ControllerChannel;
use crate::protocol::frame::{read_frame, write_frame};
use crate::protocol::{decode_request, encode_response};
use crate::scenario::TopicPartition;
use crate::storage::cleaner::CleanerConfig;
use crate::storage::log::LogConfig;
use crate::storage::retention::RetentionConfig;
use crate::world::buggify::Point;
use crate::world::{Clock, Disk, SharedRecorder};

pub use group_coordinator::{GroupConfig, OFFSETS_TOPIC};
pub use log_manager::LogManagerConfig;
pub use partition::Partition;
pub use txn_coordinator::{TxnConfig, TRANSACTION_STATE_TOPIC};

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
    /// A follower takes the leader's high watermark before it truncates its diverging log.
    HwBeforeTruncation,
    /// `min.insync.replicas` is held against every assigned replica, in the ISR or not, so
    /// `acks=all` is acknowledged by replicas that do not hold the write.
    AcksCountOutsideIsr,
    /// A `read_committed` fetch reads up to the high watermark, past the last stable offset.
    FetchPastLastStableOffset,
    /// A new leader starts with no producer state: it neither rebuilds it from its log nor
    /// keeps what it had as a follower, so a retried batch is appended again.
    ForgetProducerStateOnFailover,
    /// The transaction coordinator hands out the current epoch again instead of bumping it, so
    /// an older instance of a transactional id is never fenced.
    NoEpochFence,
    /// A leader never proposes a caught-up follower back into the ISR (a liveness bug: after a
    /// partition heals, a partition whose ISR fell below `min.insync.replicas` stays there).
    NeverRejoinIsr,
}

/// The broker's replication configs (Kafka's `replica.*`), and the contract's protocol variants
/// that change replication.
#[derive(Clone, Debug)]
pub struct ReplicationConfig {
    /// `replica.lag.time.max.ms` (30000).
    pub lag_time_max_ms: i64,
    /// `replica.fetch.wait.max.ms` (500).
    pub fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes` (1).
    pub fetch_min_bytes: i32,
    /// `replica.fetch.max.bytes` (1 MiB), per partition.
    pub fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes` (10 MiB).
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.backoff.ms` (1000).
    pub fetch_backoff_ms: u64,
    /// `replica.socket.timeout.ms` (30000).
    pub socket_timeout_ms: u64,
    /// `replica.high.watermark.checkpoint.interval.ms` (5000).
    pub hw_checkpoint_interval_ms: u64,
    /// `[protocol] truncation`.
    pub truncation: crate::scenario::Truncation,
    /// KIP-966's strict min ISR (`[protocol] eligible-leader-replicas`): the high watermark does
    /// not advance while the ISR is smaller than `min.insync.replicas`.
    pub strict_min_isr: bool,
    /// KIP-903 (`[protocol] broker-epoch-check`): ISR changes quote each member's broker epoch.
    pub broker_epoch_check: bool,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            lag_time_max_ms: 30_000,
            fetch_wait_max_ms: 500,
            fetch_min_bytes: 1,
            fetch_max_bytes: 1_048_576,
            fetch_response_max_bytes: 10_485_760,
            fetch_backoff_ms: 1_000,
            socket_timeout_ms: 30_000,
            hw_checkpoint_interval_ms: 5_000,
            truncation: crate::scenario::Truncation::LeaderEpoch,
            strict_min_isr: true,
            broker_epoch_check: true,
        }
    }
}

#[derive(Clone)]
pub struct BrokerContext {
    pub id: i32,
    pub name: String,
    pub listen: SocketAddr,
    pub config: BrokerConfig,
    /// Each topic's configs, resolved (a topic missing here runs with `config`).
    pub topic_config: BTreeMap<String, BrokerConfig>,
    /// The intervals of the log manager's background tasks (broker-level configs).
    pub log_manager: LogManagerConfig,
    pub replication: ReplicationConfig,
    pub disk: Disk,
    pub clock: Clock,
    pub recorder: SharedRecorder,
    /// The controllers' listeners by node id (`controller.quorum.voters`).
    pub controllers: BTreeMap<i32, SocketAddr>,
    /// `broker.heartbeat.interval.ms` (2000).
    pub heartbeat_interval_ms: u64,
    /// `auto.create.topics.enable` (true): a `Metadata` request for an unknown topic creates it.
    pub auto_create_topics: bool,
    /// The group coordinator's configs (`offsets.topic.*`, `group.*`).
    pub groups: GroupConfig,
    /// The transaction coordinator's configs (`transaction.*`, `[protocol]
    /// transaction-version`).
    pub txn: TxnConfig,
    /// The seed of this broker's own randomness (its incarnation id, drawn anew per start).
    pub seed: u64,
    /// Requests held on their way out (the `delay` fault); empty outside one.
    pub delays: crate::protocol::RequestDelays,
    /// The broker's fault points (`buggify = true`); off outside the simulator.
    pub buggify: crate::world::buggify::Buggify,
    /// Set from outside (the operator, the simulation's script) to shut the broker down cleanly.
    pub shutdown: Arc<ShutdownSignal>,
}

/// A request for a controlled shutdown, as `SIGTERM` is to Kafka's broker.
#[derive(Default)]
pub struct ShutdownSignal {
    requested: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
    /// The process ended by itself (a controlled shutdown, a failed log directory); the node
    /// stays up with nothing running until it is restarted.
    exited: std::sync::atomic::AtomicBool,
}

impl ShutdownSignal {
    pub fn request(&self) {
        self.requested
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    /// A new process starts: it runs until asked again.
    pub fn clear(&self) {
        self.requested
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.exited
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn has_exited(&self) -> bool {
        self.exited.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until a shutdown is requested (at once if it already is).
    pub async fn requested(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_requested() {
                return;
            }
            notified.await;
        }
    }
}

type PartitionHandle = Arc<tokio::sync::Mutex<Partition>>;

/// A broadcast wake-up that keeps the simulation deterministic: waiters are woken in the order
/// they began to wait. (tokio's `watch` spreads its waiters over several notifiers picked by a
/// thread-local random number outside the run's seed, so the order of wake-ups, and with it the
/// run, would change from one run to the next; `tokio::select!` likewise needs `biased`.)
#[derive(Default)]
pub struct Signal {
    notify: Arc<tokio::sync::Notify>,
}

/// A wake-up registered with `Signal::listen_owned`, which outlives the borrow of its signal.
pub(crate) type Listener = std::pin::Pin<Box<tokio::sync::futures::OwnedNotified>>;

/// Resolves at the first of `listeners` to be woken (none: never).
pub(crate) async fn any_woken(listeners: &mut [Listener]) {
    use std::future::Future;
    std::future::poll_fn(|cx| {
        for listener in listeners.iter_mut() {
            if listener.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

impl Signal {
    /// `listen` that holds the signal itself, so it can be kept past a lock on its owner.
    pub(crate) fn listen_owned(&self) -> Listener {
        let mut notified = Box::pin(self.notify.clone().notified_owned());
        notified.as_mut().enable();
        notified
    }

    pub(crate) fn wake(&self) {
        self.notify.notify_waiters();
    }

    /// A wake-up to wait for, registered now: one sent after this call is not missed, even if
    /// the caller looks at the state it guards before awaiting it.
    pub(crate) fn listen(&self) -> std::pin::Pin<Box<tokio::sync::futures::Notified<'_>>> {
        let mut notified = Box::pin(self.notify.notified());
        notified.as_mut().enable();
        notified
    }
}

pub struct Broker {
    ctx: Arc<BrokerContext>,
    /// The partitions this broker hosts now, as the last published image assigns them.
    partitions: Mutex<BTreeMap<TopicPartition, PartitionHandle>>,
    /// The metadata clients are served (Kafka's `MetadataCache`).
    metadata: Mutex<Arc<MetadataImage>>,
    controllers: Arc<ControllerChannel>,
    lifecycle: lifecycle::Lifecycle,
    /// Topics whose auto-creation this broker has asked for and not yet seen.
    auto_creating: Arc<Mutex<BTreeSet<String>>>,
    /// Whether an image has been published since this start (the first removes stray logs).
    published: std::sync::atomic::AtomicBool,
    /// Bumped on every append and high-watermark change here: long-polling fetches and
    /// `acks=all` produces wait on it.
    progress: Arc<Signal>,
    /// Bumped on every published image: idle replica fetchers wait on it.
    image_version: Signal,
    /// The partitions this broker follows, with their leader, as the last image says.
    followed: Mutex<BTreeMap<TopicPartition, i32>>,
    /// The leaders a replica fetcher runs for (Kafka's `ReplicaFetcherManager`: one fetcher
    /// per source broker, `num.replica.fetchers = 1`).
    fetchers: Mutex<BTreeSet<i32>>,
    /// The group coordinator's shards, one per `__consumer_offsets` partition led here.
    coordinators: group_coordinator::Coordinators,
    /// The transaction coordinator's shards, one per `__transaction_state` partition led here.
    txn_coordinators: txn_coordinator::TxnCoordinators,
    /// The producer ids this broker may hand out (`InitProducerId`).
    producer_ids: tokio::sync::Mutex<producer_ids::ProducerIdBlock>,
}

impl Broker {
    /// A broker with nothing open yet: partitions open as the metadata assigns them.
    pub fn new(ctx: Arc<BrokerContext>) -> Broker {
        let controllers = Arc::new(
            ControllerChannel::new(&ctx.controllers, &ctx.name).with_delays(ctx.delays.clone()),
        );
        Broker {
            controllers,
            lifecycle: lifecycle::Lifecycle::new(),
            partitions: Mutex::new(BTreeMap::new()),
            metadata: Mutex::new(Arc::new(MetadataImage::default())),
            auto_creating: Arc::new(Mutex::new(BTreeSet::new())),
            published: std::sync::atomic::AtomicBool::new(false),
            progress: Arc::new(Signal::default()),
            image_version: Signal::default(),
            followed: Mutex::new(BTreeMap::new()),
            fetchers: Mutex::new(BTreeSet::new()),
            coordinators: group_coordinator::Coordinators::default(),
            txn_coordinators: txn_coordinator::TxnCoordinators::default(),
            producer_ids: tokio::sync::Mutex::new(producer_ids::ProducerIdBlock::default()),
            ctx,
        }
    }

    /// The partitions hosted now, in order.
    pub(crate) fn partitions(&self) -> Vec<(TopicPartition, PartitionHandle)> {
        let partitions = self.partitions.lock().expect("partitions lock");
        partitions
            .iter()
            .map(|(tp, p)| (tp.clone(), p.clone()))
            .collect()
    }

    /// The metadata clients are served now.
    pub(crate) fn metadata(&self) -> Arc<MetadataImage> {
        self.metadata.lock().expect("metadata lock").clone()
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
            let client_id = header.client_id.as_ref().map_or("", |c| c.as_str());
            if let Some(ms) = self.ctx.buggify.fires(Point::SlowHandler, 10, 300) {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let response = match self.handle(api, version, client_id, request).await {
                handlers::Reply::Send(response) => *response,
                handlers::Reply::Nothing => continue, // acks=0
                handlers::Reply::Close => return,
            };
            let body: Bytes = match encode_response(api, version, header.correlation_id, &response)
            {
                Ok(body) => body,
                Err(e) => {
                    self.protocol_error(&e.0);
                    return;
                }
            };
            if self
                .ctx
                .buggify
                .fires(Point::DroppedResponse, 0, 0)
                .is_some()
            {
                // Half the frame reaches the client, then the connection is gone.
                let mut frame = (body.len() as i32).to_be_bytes().to_vec();
                frame.extend_from_slice(&body[..body.len() / 2]);
                let _ = tokio::io::AsyncWriteExt::write_all(&mut writer, &frame).await;
                return;
            }
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

    fn partition(&self, tp: &TopicPartition) -> Option<PartitionHandle> {
        self.partitions
            .lock()
            .expect("partitions lock")
            .get(tp)
            .cloned()
    }

    /// A clean shutdown's last act: every log flushed (Kafka then writes its clean-shutdown
    /// marker, so the next start skips recovery).
    async fn flush_all(&self) {
        for (_, partition) in self.partitions() {
            let mut partition = partition.lock().await;
            let _ = partition.log_mut().flush().await;
        }
    }

    fn event(&self, kind: &str, detail: serde_json::Value) {
        self.ctx.recorder.event(&self.ctx.name, kind, detail);
    }
}

/// Starts a broker and serves until the node dies: it registers and heartbeats, follows the
/// metadata log, and serves clients. A broker whose disk fails (full, broken) stops, as Kafka's
/// halts when its only log directory fails (`LogManager.handleLogDirFailure`).
pub async fn run(ctx: Arc<BrokerContext>) {
    let (disk, dir_failure) = ctx.disk.watched();
    let ctx = Arc::new(BrokerContext {
        disk,
        ..(*ctx).clone()
    });
    let name = ctx.name.clone();
    let shutdown = ctx.shutdown.clone();
    let recorder = ctx.recorder.clone();
    let broker = Arc::new(Broker::new(ctx));
    // Spawned on this node: they die with it.
    log_manager::spawn(&broker);
    isr::spawn(&broker);
    let lifecycle = tokio::spawn(lifecycle::run(broker.clone()));
    let loader = tokio::spawn(metadata_loader::run(broker.clone()));
    let serve = tokio::spawn(broker.clone().serve());
    let aborts = [
        lifecycle.abort_handle(),
        loader.abort_handle(),
        serve.abort_handle(),
    ];
    let result = tokio::select! {
        biased;
        reason = dir_failure.wait() => Err(std::io::Error::other(format!(
            "the log directory failed ({reason}); Kafka halts a broker whose only log \
             directory fails"
        ))),
        result = loader => result.unwrap_or(Ok(())),
        result = serve => result.unwrap_or(Ok(())),
        // The controller let it go: the leaderships moved, the logs are flushed.
        done = lifecycle => {
            if done.is_ok() {
                broker.flush_all().await;
                recorder.event(&name, "shut-down", json!({ "clean": true }));
            }
            Ok(())
        }
    };
    // The process exits: no more heartbeats (the controller fences it), no partitions.
    for task in aborts {
        task.abort();
    }
    broker.partitions.lock().expect("partitions lock").clear();
    broker.followed.lock().expect("followed lock").clear();
    if let Err(e) = result {
        recorder.event(&name, "stopped", json!({ "error": e.to_string() }));
    }
    shutdown
        .exited
        .store(true, std::sync::atomic::Ordering::Relaxed);
}
