//! Kafka's producer, as the Java client behaves: `send` runs the interceptors, waits for the
//! topic's metadata (`max.block.ms`), picks the partition, and appends the record to the
//! accumulator (waiting for `buffer.memory` if it is full); a sender task drains ready batches
//! into one `Produce` request per leader (`max.in.flight.requests.per.connection`), retries what
//! failed retriably after `retry.backoff.ms` (exponential up to `retry.backoff.max.ms`,
//! KIP-580) until `delivery.timeout.ms`, and completes each record's callback with its offset
//! or its error.
//!
//! Not built yet: idempotence and transactions (producer ids and sequence numbers come with
//! the exactly-once issue; until then `enable.idempotence` is read but batches carry no
//! producer id, so a retry may duplicate or, with more than one request in flight, reorder,
//! as a non-idempotent Kafka producer does), and expiring batches already in flight when their
//! delivery timeout passes (they complete when their request does, at most
//! `request.timeout.ms` later).

pub mod accumulator;
pub mod idempotence;
pub mod in_transaction;
mod sender;
pub mod transactions;
pub mod workload;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use self::accumulator::{record_size, PendingRecord, RecordAccumulator};
use super::cluster::ClusterView;
use super::partitioner::{PartitionChooser, PartitionerKind};
use super::serde::Serializer;
use super::ClientContext;
use crate::scenario::TopicPartition;
use crate::storage::batch::Compression;

pub use workload::{run, ProducerSpec};

/// The producer's configs, by their Kafka names (`ProducerConfig`), with Kafka's defaults.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    /// `acks`: -1 (all), 0 or 1.
    pub acks: i16,
    pub linger_ms: u64,
    pub batch_size: usize,
    pub buffer_memory: usize,
    pub max_block: Duration,
    pub max_in_flight: usize,
    pub max_request_size: usize,
    pub request_timeout: Duration,
    pub delivery_timeout: Duration,
    pub retries: u32,
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
    pub compression: Compression,
    pub partitioner: PartitionerKind,
    pub partitioner_ignore_keys: bool,
    pub enable_idempotence: bool,
    /// `transactional.id`: a transactional producer (idempotence is then on).
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms` (60000).
    pub transaction_timeout_ms: i32,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: -1,
            linger_ms: 5,
            batch_size: 16_384,
            buffer_memory: 33_554_432,
            max_block: Duration::from_millis(60_000),
            max_in_flight: 5,
            max_request_size: 1_048_576,
            request_timeout: Duration::from_millis(30_000),
            delivery_timeout: Duration::from_millis(120_000),
            retries: i32::MAX as u32,
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 1_000,
            compression: Compression::None,
            partitioner: PartitionerKind::BuiltIn,
            partitioner_ignore_keys: false,
            enable_idempotence: true,
            transactional_id: None,
            transaction_timeout_ms: 60_000,
        }
    }
}

/// A record to send (`ProducerRecord`), its key and value already serialized.
#[derive(Clone, Debug, Default)]
pub struct ProducerRecord {
    pub topic: String,
    /// An explicit partition; `None` lets the partitioner choose.
    pub partition: Option<u32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// CreateTime; `None` is the producer's clock at `send`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record from typed key and value through serializers (`KafkaProducer` with a key and a
    /// value serializer).
    pub fn serialized<K: ?Sized, V: ?Sized>(
        topic: &str,
        key: Option<(&dyn Serializer<K>, &K)>,
        value: Option<(&dyn Serializer<V>, &V)>,
    ) -> Result<Self, SendError> {
        let serialize_error = |e: super::serde::SerdeError| SendError {
            error: format!("SerializationException: {e}"),
            maybe_written: false,
        };
        Ok(ProducerRecord {
            topic: topic.to_string(),
            key: key
                .map(|(s, k)| s.serialize(k))
                .transpose()
                .map_err(serialize_error)?,
            value: value
                .map(|(s, v)| s.serialize(v))
                .transpose()
                .map_err(serialize_error)?,
            ..ProducerRecord::default()
        })
    }
}

/// What a successful send returns (`RecordMetadata`); offset -1 with `acks=0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordMetadata {
    pub tp: TopicPartition,
    pub offset: i64,
    pub timestamp: i64,
}

/// Why a send failed: Kafka's exception or error name, and whether the record may have been
/// written anyway (some attempt timed out or lost its connection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendError {
    pub error: String,
    pub maybe_written: bool,
}

/// Kafka's `Callback.onCompletion`, called once per record, in send order per partition.
pub type Callback = Box<dyn FnOnce(Result<RecordMetadata, SendError>) + Send>;

/// Kafka's `ProducerInterceptor`: sees (and may change) every record before it is sent, and
/// every outcome before the callback.
pub trait ProducerInterceptor: Send + Sync {
    fn on_send(&self, record: ProducerRecord) -> ProducerRecord {
        record
    }
    fn on_acknowledgement(&self, _outcome: &Result<RecordMetadata, SendError>) {}
}

/// What the application and the sender task share.
struct Shared {
    ctx: ClientContext,
    config: ProducerConfig,
    accumulator: Mutex<RecordAccumulator>,
    view: tokio::sync::Mutex<ClusterView>,
    chooser: Mutex<PartitionChooser>,
    interceptors: Vec<Arc<dyn ProducerInterceptor>>,
    /// Wakes the sender: a batch to send, a response back, a flush or a close.
    wake: Notify,
    /// Wakes `send`s waiting for memory and `flush`: a batch completed.
    completed: Notify,
    /// Requests in flight, per leader.
    in_flight: Mutex<BTreeMap<i32, usize>>,
    /// Records appended and not yet completed.
    incomplete: AtomicUsize,
    closed: AtomicBool,
    /// Set by request tasks after an error that blames the metadata, so that they never wait
    /// for the view (which the sender holds while it connects and asks for metadata); the
    /// sender refreshes.
    metadata_stale: AtomicBool,
    /// The idempotent producer's id, epoch and sequences (`enable.idempotence`).
    idempotence: Mutex<idempotence::Idempotence>,
    /// `InitProducerId` attempts so far (each goes to the next known broker).
    init_attempts: AtomicUsize,
    /// A transactional producer's transaction state.
    txn: Option<Mutex<transactions::TxnManager>>,
}

/// The producer handle (`KafkaProducer`), cheap to clone; the sender task runs until `close`.
#[derive(Clone)]
pub struct KafkaProducer {
    shared: Arc<Shared>,
}

impl KafkaProducer {
    pub fn new(ctx: ClientContext, config: ProducerConfig) -> Self {
        Self::with_interceptors(ctx, config, Vec::new())
    }

    pub fn with_interceptors(
        ctx: ClientContext,
        config: ProducerConfig,
        interceptors: Vec<Arc<dyn ProducerInterceptor>>,
    ) -> Self {
        let mut view = ClusterView::new(ctx.clone());
        view.request_timeout = config.request_timeout;
        let chooser = PartitionChooser::new(
            config.partitioner,
            config.partitioner_ignore_keys,
            config.batch_size,
            crate::world::derive_seed(ctx.seed, "partitioner"),
        );
        let shared = Arc::new(Shared {
            accumulator: Mutex::new(RecordAccumulator::new(
                config.batch_size,
                config.linger_ms,
                config.compression,
            )),
            view: tokio::sync::Mutex::new(view),
            chooser: Mutex::new(chooser),
            interceptors,
            wake: Notify::new(),
            completed: Notify::new(),
            in_flight: Mutex::new(BTreeMap::new()),
            incomplete: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            metadata_stale: AtomicBool::new(false),
            idempotence: Mutex::new(if config.transactional_id.is_some() {
                idempotence::Idempotence::transactional()
            } else {
                idempotence::Idempotence::default()
            }),
            init_attempts: AtomicUsize::new(0),
            txn: config.transactional_id.as_ref().map(|id| {
                Mutex::new(transactions::TxnManager::new(
                    id.clone(),
                    config.transaction_timeout_ms,
                ))
            }),
            ctx,
            config,
        });
        tokio::spawn(sender::run(shared.clone()));
        KafkaProducer { shared }
    }

    /// `send(record, callback)`: returns once the record is in the accumulator (or has failed:
    /// the callback then already ran with the error).
    pub async fn send(&self, record: ProducerRecord, callback: Callback) {
        let shared = &self.shared;
        let interceptors = shared.interceptors.clone();
        let callback: Callback = if interceptors.is_empty() {
            callback
        } else {
            Box::new(move |outcome| {
                for interceptor in &interceptors {
                    interceptor.on_acknowledgement(&outcome);
                }
                callback(outcome)
            })
        };
        let record = shared
            .interceptors
            .iter()
            .fold(record, |record, i| i.on_send(record));
        if shared.closed.load(Ordering::Relaxed) {
            return callback(Err(error("KafkaException: producer closed", false)));
        }
        let deadline_ms =
            shared.ctx.clock.elapsed_ms() + shared.config.max_block.as_millis() as u64;
        let Some((count, available)) = self.wait_on_metadata(&record.topic, deadline_ms).await
        else {
            let ms = shared.config.max_block.as_millis();
            return callback(Err(error(
                &format!(
                    "TimeoutException: topic {} not present in metadata after {ms} ms",
                    record.topic
                ),
                false,
            )));
        };
        let size = record_size(record.key.as_ref(), record.value.as_ref(), &record.headers);
        if size > shared.config.max_request_size || size > shared.config.buffer_memory {
            return callback(Err(error("RecordTooLargeException", false)));
        }
        let partition = match record.partition {
            Some(p) if p < count => p,
            Some(p) => {
                return callback(Err(error(
                    &format!("InvalidPartitionsException: partition {p} of {count}"),
                    false,
                )))
            }
            None => shared.chooser.lock().expect("chooser").choose(
                &record.topic,
                record.key.as_deref(),
                count,
                &available,
            ),
        };
        if !self.wait_for_memory(size, deadline_ms).await {
            return callback(Err(error(
                "TimeoutException: failed to allocate memory within max.block.ms",
                false,
            )));
        }
        let tp = TopicPartition {
            topic: record.topic.clone(),
            partition,
        };
        if let Some(txn) = &shared.txn {
            if let Err(e) = txn.lock().expect("txn").on_send(&tp) {
                return callback(Err(error(&e, false)));
            }
        }
        let now_ms = shared.ctx.clock.elapsed_ms();
        // The sticky partitioner places keyless records, and keyed ones when keys are ignored.
        let sticky = record.partition.is_none()
            && (record.key.is_none() || shared.config.partitioner_ignore_keys);
        let pending = PendingRecord {
            key: record.key,
            value: record.value,
            headers: record.headers,
            timestamp: record
                .timestamp
                .unwrap_or_else(|| shared.ctx.clock.now_ms()),
            callback,
        };
        shared.incomplete.fetch_add(1, Ordering::Relaxed);
        let appended = shared
            .accumulator
            .lock()
            .expect("accumulator")
            .append(&tp, pending, now_ms);
        if sticky {
            shared
                .chooser
                .lock()
                .expect("chooser")
                .record_appended(&tp.topic, partition, size);
        }
        if appended.batch_full || appended.new_batch {
            shared.wake.notify_one();
        }
    }

    /// `flush`: every record sent so far is completed when this returns.
    pub async fn flush(&self) {
        let shared = &self.shared;
        shared.accumulator.lock().expect("accumulator").flushing = true;
        shared.wake.notify_one();
        loop {
            let completed = shared.completed.notified();
            tokio::pin!(completed);
            completed.as_mut().enable();
            if shared.incomplete.load(Ordering::Relaxed) == 0 {
                break;
            }
            completed.await;
        }
        shared.accumulator.lock().expect("accumulator").flushing = false;
    }

    /// `close`: flushes, then stops the sender.
    pub async fn close(&self) {
        self.flush().await;
        self.shared.closed.store(true, Ordering::Relaxed);
        self.shared.wake.notify_one();
    }

    /// Kafka's `waitOnMetadata`: the topic's partition count and the partitions with a leader,
    /// asking for metadata every `retry.backoff.ms` until known or the deadline has passed.
    async fn wait_on_metadata(&self, topic: &str, deadline_ms: u64) -> Option<(u32, Vec<u32>)> {
        let shared = &self.shared;
        let topics = [topic.to_string()];
        loop {
            {
                let mut view = shared.view.lock().await;
                if view.partition_count(topic).is_none() {
                    view.mark_stale();
                    view.maybe_refresh(&topics).await;
                }
                if let Some(count) = view.partition_count(topic) {
                    return Some((count, view.partitions_with_leader(topic)));
                }
            }
            if shared.ctx.clock.elapsed_ms() >= deadline_ms {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(shared.config.retry_backoff_ms)).await;
        }
    }

    /// Waits until `buffer.memory` has room for `size` more bytes, up to the deadline.
    async fn wait_for_memory(&self, size: usize, deadline_ms: u64) -> bool {
        let shared = &self.shared;
        loop {
            let completed = shared.completed.notified();
            tokio::pin!(completed);
            completed.as_mut().enable();
            let used = shared
                .accumulator
                .lock()
                .expect("accumulator")
                .buffered_bytes;
            if used + size <= shared.config.buffer_memory {
                return true;
            }
            let now = shared.ctx.clock.elapsed_ms();
            if now >= deadline_ms {
                return false;
            }
            tokio::select! {
                biased;
                _ = completed => {}
                _ = tokio::time::sleep(Duration::from_millis(deadline_ms - now)) => {}
            }
        }
    }
}

fn error(text: &str, maybe_written: bool) -> SendError {
    SendError {
        error: text.to_string(),
        maybe_written,
    }
}
