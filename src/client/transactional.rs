//! The `transactional` workload: an application that writes its records in transactions of
//! `per-transaction` records each, spread over the topic's partitions by key, and aborts a
//! share of them (`abort`) on purpose, the way an application gives up on a unit of work.
//!
//! History: each record is a `send` (invoke, then the acknowledgement of its append, which says
//! nothing yet of the transaction's fate), and each transaction a `txn` op. It is invoked with
//! the transactional id, producer id and epoch, and completes `ok` when committed, `fail` when
//! aborted (on purpose, or after an error that left an abort possible) and `info` when its
//! outcome is unknown (the commit timed out). The completion lists the values sent in it.
//!
//! A fenced producer (a newer instance took over its `transactional.id`) stops: Kafka gives it
//! nothing else to do but close. After its `count`, the producer is closed and the process
//! stays up, as an application's would, with whatever it still has on its way out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use samsa_sim::history::OpType;
use samsa_sim::val;
use samsa_sim::val::Val;

use super::producer::in_transaction::InTransactionError;
use super::producer::transactions::TxnError;
use super::producer::{KafkaProducer, ProducerConfig, ProducerRecord, RecordMetadata, SendError};
use super::{sleep_until_ms, ClientContext};
use crate::scenario::Keys;

#[derive(Clone, Debug)]
pub struct TransactionalSpec {
    pub topic: String,
    /// Records per second; `None` writes one transaction after the other.
    pub rate_per_s: Option<f64>,
    pub count: Option<u64>,
    pub keys: Keys,
    /// Records per transaction.
    pub per_transaction: u64,
    /// The share of transactions aborted on purpose, drawn from the client's stream.
    pub abort_ratio: f64,
    /// `transactional.id` is set.
    pub config: ProducerConfig,
    pub start_ms: u64,
    /// Shared by every incarnation of the process, so no value is written twice.
    pub next_record: Arc<AtomicU64>,
}

pub async fn run(ctx: ClientContext, spec: TransactionalSpec) {
    sleep_until_ms(&ctx.clock, spec.start_ms).await;
    let producer = KafkaProducer::new(ctx.clone(), spec.config.clone());
    let transactional_id = spec.config.transactional_id.clone().unwrap_or_default();
    let op = |kind, f: &str, value: Val| ctx.recorder.op_val(&ctx.id, kind, f, value);
    op(
        OpType::Invoke,
        "init-transactions",
        val!({ "transactional_id": transactional_id.as_str() }),
    );
    if let Err(e) = producer.init_transactions().await {
        op(
            OpType::Fail,
            "init-transactions",
            val!({ "transactional_id": transactional_id.as_str(), "error": e.to_string() }),
        );
        return;
    }
    op(
        OpType::Ok,
        "init-transactions",
        val!({ "transactional_id": transactional_id.as_str() }),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
    let started_ms = ctx.clock.elapsed_ms();
    let first = spec.next_record.load(Ordering::Relaxed);
    let mut n = first;
    loop {
        if spec.count.is_some_and(|count| n >= count) {
            break;
        }
        let producer_id = producer.producer_id_and_epoch();
        let header = val!({
            "transactional_id": transactional_id.as_str(),
            "producer_id": producer_id.map_or(-1, |p| p.producer_id),
            "epoch": producer_id.map_or(-1, |p| p.epoch as i64),
        });
        op(OpType::Invoke, "txn", header.clone());
        let abort = rng.gen_bool(spec.abort_ratio.clamp(0.0, 1.0));
        let mut values = Vec::new();
        let outcome = producer
            .execute_in_transaction(|producer| {
                let (n, rng, values) = (&mut n, &mut rng, &mut values);
                let (ctx, spec) = (&ctx, &spec);
                async move {
                    for _ in 0..spec.per_transaction {
                        if spec.count.is_some_and(|count| *n >= count) {
                            break;
                        }
                        if let Some(rate) = spec.rate_per_s {
                            let due_ms =
                                started_ms + (((*n - first) as f64) * 1000.0 / rate) as u64;
                            sleep_until_ms(&ctx.clock, due_ms).await;
                        }
                        let key = match spec.keys {
                            Keys::None => None,
                            Keys::Random => Some(format!("k{}", rng.gen_range(0..1000))),
                            Keys::Sequential => Some(format!("k{n}")),
                        };
                        let value = format!("{}-{n}", ctx.id);
                        *n += 1;
                        spec.next_record.store(*n, Ordering::Relaxed);
                        send(ctx, &producer, &spec.topic, key, value.clone()).await;
                        values.push(Val::from(value));
                    }
                    if abort {
                        // The application waits for its sends, then gives up on the unit of
                        // work: the aborted records are in the log, for read_uncommitted
                        // consumers to see.
                        producer.flush().await;
                        return Err("aborted on purpose");
                    }
                    Ok(())
                }
            })
            .await;
        let done = header.with("values", Val::array(values));
        match outcome {
            Ok(()) => op(OpType::Ok, "txn", done),
            Err(InTransactionError::Work { error, abort }) => {
                let kind = if abort.is_ok() {
                    OpType::Fail
                } else {
                    OpType::Info
                };
                op(kind, "txn", done.with("reason", error.into()));
                if abort.is_err() {
                    return;
                }
            }
            Err(InTransactionError::Txn {
                error: TxnError::Abortable(e),
                abort: Some(abort),
            }) => {
                let kind = if abort.is_ok() {
                    OpType::Fail
                } else {
                    OpType::Info
                };
                op(kind, "txn", done.with("reason", e.into()));
                if let Err(TxnError::Fatal(_)) = abort {
                    return;
                }
            }
            Err(InTransactionError::Txn {
                error: e @ TxnError::IllegalState(_),
                abort: None,
            }) => {
                // It could not begin: nothing of it happened.
                op(
                    OpType::Fail,
                    "txn",
                    done.with("reason", e.to_string().into()),
                );
                return;
            }
            Err(InTransactionError::Txn { error, .. }) => {
                // Fenced (fatal), or the commit's outcome is unknown (a timeout: Kafka lets
                // the application retry the call, but this workload gives the producer up).
                op(
                    OpType::Info,
                    "txn",
                    done.with("reason", error.to_string().into()),
                );
                return;
            }
        }
    }
    producer.close().await;
    std::future::pending::<()>().await;
}

/// One record of the transaction, recorded as a `send`; waits until it is in the accumulator.
async fn send(
    ctx: &ClientContext,
    producer: &KafkaProducer,
    topic: &str,
    key: Option<String>,
    value: String,
) {
    let recorder = ctx.recorder.clone();
    let id = ctx.id.clone();
    recorder.op_val(
        &id,
        OpType::Invoke,
        "send",
        val!({ "value": value.as_str(), "key": key.as_deref(), "partition": Val::Null }),
    );
    let record = ProducerRecord {
        topic: topic.to_string(),
        key: key.map(Bytes::from),
        value: Some(Bytes::from(value.clone())),
        ..ProducerRecord::default()
    };
    let value = Mutex::new(Some(value));
    let callback = Box::new(move |outcome: Result<RecordMetadata, SendError>| {
        let value = value.lock().expect("value").take().unwrap_or_default();
        let (kind, detail) = match outcome {
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
    });
    producer.send(record, callback).await;
}
