//! The producer workload of a scenario: an application that sends uniquely valued records at a
//! rate through a `KafkaProducer`, and records each send in the history as an invoke followed by
//! ok (acknowledged, with its partition and offset), fail (certainly not written) or info
//! (unknown: a timeout, a lost connection, `acks=0`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use samsa_sim::history::OpType;
use samsa_sim::val;
use samsa_sim::val::Val;

use super::{KafkaProducer, ProducerConfig, ProducerRecord};
use crate::client::{sleep_until_ms, ClientContext};
use crate::scenario::Keys;

#[derive(Clone, Debug)]
pub struct ProducerSpec {
    pub topic: String,
    /// Records per second; `None` sends each record once the previous one completed.
    pub rate_per_s: Option<f64>,
    pub count: Option<u64>,
    pub keys: Keys,
    pub config: ProducerConfig,
    pub start_ms: u64,
    /// The number of the next record, shared by every incarnation of the producer's process, so
    /// that a restarted producer never writes a value twice (values identify writes).
    pub next_record: Arc<AtomicU64>,
}

pub async fn run(ctx: ClientContext, spec: ProducerSpec) {
    sleep_until_ms(&ctx.clock, spec.start_ms).await;
    let producer = KafkaProducer::new(ctx.clone(), spec.config.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
    let started_ms = ctx.clock.elapsed_ms();
    let first = spec.next_record.load(Ordering::Relaxed);
    let acks_zero = spec.config.acks == 0;
    for n in first.. {
        if spec.count.is_some_and(|count| n >= count) {
            break;
        }
        let key = match spec.keys {
            Keys::None => None,
            Keys::Random => Some(format!("k{}", rng.gen_range(0..1000))),
            Keys::Sequential => Some(format!("k{n}")),
        };
        let value = format!("{}-{n}", ctx.id);
        if let Some(rate) = spec.rate_per_s {
            let due_ms = started_ms + (((n - first) as f64) * 1000.0 / rate) as u64;
            sleep_until_ms(&ctx.clock, due_ms).await;
        }
        spec.next_record.store(n + 1, Ordering::Relaxed);
        let recorder = ctx.recorder.clone();
        recorder.op_val(
            &ctx.id,
            OpType::Invoke,
            "send",
            val!({ "value": value.as_str(), "key": key.as_deref(), "partition": Val::Null }),
        );
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let id = ctx.id.clone();
        let record = ProducerRecord {
            topic: spec.topic.clone(),
            key: key.map(Bytes::from),
            value: Some(Bytes::from(value.clone())),
            ..ProducerRecord::default()
        };
        let callback = Box::new(
            move |outcome: Result<super::RecordMetadata, super::SendError>| {
                let (kind, detail) = match outcome {
                    Ok(meta) if acks_zero => (
                        OpType::Info,
                        val!({ "value": value, "partition": meta.tp.to_string(), "error": "acks=0: sent, never acknowledged" }),
                    ),
                    Ok(meta) => (
                        OpType::Ok,
                        val!({ "value": value, "partition": meta.tp.to_string(), "offset": meta.offset }),
                    ),
                    Err(e) => (
                        if e.maybe_written {
                            OpType::Info
                        } else {
                            OpType::Fail
                        },
                        val!({ "value": value, "partition": Val::Null, "error": e.error }),
                    ),
                };
                recorder.op_val(&id, kind, "send", detail);
                let _ = done_tx.send(());
            },
        );
        producer.send(record, callback).await;
        if spec.rate_per_s.is_none() {
            producer.flush().await;
            let _ = done_rx.await;
        }
    }
    producer.flush().await;
}
