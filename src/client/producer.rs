//! The producer workload: sends uniquely valued records at a rate and records each send as an
//! invoke followed by ok (acknowledged, with its offset), fail (certainly not written) or info
//! (unknown: a timeout, a lost connection, `acks=0`).
//!
//! This is the walking skeleton's producer: one record per batch, no retries and no
//! idempotence yet (Kafka's accumulator, retries and sequence numbers come with the clients and
//! exactly-once issues).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use samsa_sim::history::OpType;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::cluster::ClusterView;
use super::{partitioner, sleep_until_ms, ClientContext};
use crate::protocol::versions::client_version;
use crate::scenario::{Keys, TopicPartition};
use crate::storage::batch::{encode_batch, BatchSpec, Record};

#[derive(Clone, Debug)]
pub struct ProducerSpec {
    pub topic: String,
    /// Records per second; `None` sends each record once the previous one completed.
    pub rate_per_s: Option<f64>,
    pub count: Option<u64>,
    pub keys: Keys,
    /// `acks`: -1 (all), 0 or 1.
    pub acks: i16,
    pub request_timeout: Duration,
    /// `max.block.ms`: how long `send` waits for the topic's metadata before failing.
    pub max_block: Duration,
    pub start_ms: u64,
    /// The number of the next record, shared by every incarnation of the producer's process, so
    /// that a restarted producer never writes a value twice (values identify writes).
    pub next_record: Arc<std::sync::atomic::AtomicU64>,
}

/// Errors after which the record was certainly not appended.
fn definitely_not_written(error: ResponseError) -> bool {
    matches!(
        error,
        ResponseError::NotLeaderOrFollower
            | ResponseError::NotEnoughReplicas
            | ResponseError::CorruptMessage
            | ResponseError::UnknownTopicOrPartition
            | ResponseError::InvalidRequiredAcks
            | ResponseError::MessageTooLarge
            | ResponseError::RecordListTooLarge
            | ResponseError::InvalidRecord
    )
}

struct Producer {
    ctx: ClientContext,
    spec: ProducerSpec,
    view: Mutex<ClusterView>,
}

pub async fn run(ctx: ClientContext, spec: ProducerSpec) {
    sleep_until_ms(&ctx.clock, spec.start_ms).await;
    let mut view = ClusterView::new(ctx.clone());
    view.request_timeout = spec.request_timeout;
    let producer = Arc::new(Producer {
        ctx: ctx.clone(),
        spec: spec.clone(),
        view: Mutex::new(view),
    });
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
    let mut round_robin = 0u32;
    let started_ms = ctx.clock.elapsed_ms();
    let first = spec.next_record.load(std::sync::atomic::Ordering::Relaxed);
    let mut n = first;
    loop {
        if spec.count.is_some_and(|count| n >= count) {
            return;
        }
        let key = match spec.keys {
            Keys::None => None,
            Keys::Random => Some(format!("k{}", rng.gen_range(0..1000))),
            Keys::Sequential => Some(format!("k{n}")),
        };
        let value = format!("{}-{n}", ctx.id);
        match spec.rate_per_s {
            Some(rate) => {
                let due_ms = started_ms + (((n - first) as f64) * 1000.0 / rate) as u64;
                sleep_until_ms(&ctx.clock, due_ms).await;
                let producer = producer.clone();
                let rr = round_robin;
                tokio::spawn(async move { producer.send(key, value, rr).await });
            }
            None => producer.send(key, value, round_robin).await,
        }
        round_robin = round_robin.wrapping_add(1);
        n += 1;
        spec.next_record
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Producer {
    fn op(&self, kind: OpType, value: Value) {
        self.ctx.recorder.op(&self.ctx.id, kind, "send", value);
    }

    async fn send(&self, key: Option<String>, value: String, round_robin: u32) {
        let topic = &self.spec.topic;
        let partition = self.choose_partition(key.as_deref(), round_robin).await;
        let tp_name = partition.as_ref().map(|tp| tp.to_string());
        self.op(
            OpType::Invoke,
            json!({ "value": value, "key": key, "partition": tp_name }),
        );
        let fail = |kind: OpType, error: String| {
            self.op(
                kind,
                json!({ "value": value, "partition": tp_name, "error": error }),
            );
        };
        let Some(tp) = partition else {
            return fail(OpType::Fail, format!("no metadata for topic {topic}"));
        };
        let (conn, leader) = {
            let mut view = self.view.lock().await;
            let Some(leader) = view.leader(&tp) else {
                view.mark_stale();
                return fail(OpType::Fail, "LEADER_NOT_AVAILABLE".into());
            };
            match view.connection(leader.broker).await {
                Ok(conn) => (conn, leader.broker),
                Err(e) => {
                    view.invalidate(leader.broker);
                    return fail(OpType::Fail, e.to_string());
                }
            }
        };
        let request = self.request(&tp, key, &value);
        let version = client_version(ApiKey::Produce);
        if self.spec.acks == 0 {
            return match conn.send_oneway(ApiKey::Produce, version, &request).await {
                Ok(()) => fail(OpType::Info, "acks=0: sent, never acknowledged".into()),
                Err(e) => fail(OpType::Fail, e.to_string()),
            };
        }
        match conn
            .send(
                ApiKey::Produce,
                version,
                &request,
                self.spec.request_timeout,
            )
            .await
        {
            Ok(ResponseKind::Produce(response)) => {
                let result = response
                    .responses
                    .first()
                    .and_then(|t| t.partition_responses.first())
                    .map(|p| (p.error_code, p.base_offset));
                match result {
                    Some((0, offset)) => self.op(
                        OpType::Ok,
                        json!({ "value": value, "partition": tp_name, "offset": offset }),
                    ),
                    Some((code, _)) => {
                        let error = ResponseError::try_from_code(code);
                        let name =
                            error.map_or_else(|| format!("error {code}"), |e| format!("{e:?}"));
                        if error.is_some_and(|e| e == ResponseError::NotLeaderOrFollower) {
                            self.stale(leader).await;
                        }
                        let kind = if error.is_some_and(definitely_not_written) {
                            OpType::Fail
                        } else {
                            OpType::Info
                        };
                        fail(kind, name)
                    }
                    None => fail(OpType::Info, "empty produce response".into()),
                }
            }
            Ok(other) => fail(OpType::Info, format!("unexpected response {other:?}")),
            Err(e) => {
                self.stale(leader).await;
                let kind = if e.outcome_unknown() {
                    OpType::Info
                } else {
                    OpType::Fail
                };
                fail(kind, e.to_string())
            }
        }
    }

    /// After an error: reconnect, and refresh the metadata before the next send.
    async fn stale(&self, broker: i32) {
        self.view.lock().await.invalidate(broker);
    }

    async fn choose_partition(
        &self,
        key: Option<&str>,
        round_robin: u32,
    ) -> Option<TopicPartition> {
        let count = self.wait_on_metadata().await?;
        let partition = match key {
            Some(key) => partitioner::partition_for_key(key.as_bytes(), count),
            None => round_robin % count,
        };
        Some(TopicPartition {
            topic: self.spec.topic.clone(),
            partition,
        })
    }

    /// Kafka's `waitOnMetadata`: the topic's partition count, asking for metadata every
    /// `retry.backoff.ms` until it is known or `max.block.ms` has passed.
    async fn wait_on_metadata(&self) -> Option<u32> {
        let topics = std::slice::from_ref(&self.spec.topic);
        let deadline_ms = self.ctx.clock.elapsed_ms() + self.spec.max_block.as_millis() as u64;
        loop {
            {
                let mut view = self.view.lock().await;
                view.maybe_refresh(topics).await;
                if let Some(count) = view.partition_count(&self.spec.topic) {
                    return Some(count);
                }
                view.mark_stale();
            }
            if self.ctx.clock.elapsed_ms() >= deadline_ms {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(super::RETRY_BACKOFF_MS)).await;
        }
    }

    fn request(&self, tp: &TopicPartition, key: Option<String>, value: &str) -> RequestKind {
        let spec = BatchSpec {
            base_timestamp: self.ctx.clock.now_ms(),
            ..BatchSpec::default()
        };
        let record = Record {
            offset_delta: 0,
            timestamp_delta: 0,
            key: key.map(Bytes::from),
            value: Some(Bytes::from(value.to_string())),
            headers: Vec::new(),
        };
        let batch = encode_batch(&spec, &[record]);
        RequestKind::Produce(
            ProduceRequest::default()
                .with_acks(self.spec.acks)
                .with_timeout_ms(self.spec.request_timeout.as_millis() as i32)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(tp.topic.clone())))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(tp.partition as i32)
                        .with_records(Some(batch))])]),
        )
    }
}
