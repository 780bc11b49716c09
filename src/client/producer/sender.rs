//! Kafka's `Sender`: the producer's I/O task. Each round it fails batches past
//! `delivery.timeout.ms`, asks for metadata when a partition's leader is unknown, and sends each
//! ready leader one `Produce` request holding the first batch of each of its partitions, while
//! that leader has fewer than `max.in.flight.requests.per.connection` requests outstanding.
//! Each request runs in a task of its own that completes, retries or fails its batches.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, ProduceRequest, ProduceResponse, RequestKind, ResponseKind,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use samsa_sim::history::OpType;
use samsa_sim::val;

use super::accumulator::ProducerBatch;
use super::idempotence::ProducerIdAndEpoch;
use super::{error, SendError, Shared};
use crate::client::cluster::ClusterView;
use crate::protocol::versions::client_version;
use crate::protocol::{ClientError, Connection};

/// Kafka's `reconnect.backoff.ms` default: how soon to try a leader that could not be reached.
const RECONNECT_BACKOFF_MS: u64 = 50;

pub(super) async fn run(shared: Arc<Shared>) {
    loop {
        let now_ms = shared.ctx.clock.elapsed_ms();
        fail_expired(&shared, now_ms);
        let next_ms = send_ready(&shared, now_ms).await;
        if shared.closed.load(Ordering::Relaxed) && shared.incomplete.load(Ordering::Relaxed) == 0 {
            return;
        }
        let now_ms = shared.ctx.clock.elapsed_ms();
        let wait = next_ms.map(|t| t.saturating_sub(now_ms));
        match wait {
            Some(0) => tokio::task::yield_now().await,
            Some(ms) => {
                tokio::select! {
                    biased;
                    _ = shared.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                }
            }
            None => shared.wake.notified().await,
        }
    }
}

/// Fails the queued batches whose delivery timeout has passed (`expiredBatches`).
fn fail_expired(shared: &Shared, now_ms: u64) {
    let timeout_ms = shared.config.delivery_timeout.as_millis() as u64;
    let Some(deadline) = now_ms.checked_sub(timeout_ms) else {
        return;
    };
    let expired = shared
        .accumulator
        .lock()
        .expect("accumulator")
        .expire(deadline);
    for batch in expired {
        let text = format!(
            "TimeoutException: Expiring {} record(s) for {}: {timeout_ms} ms has passed since batch creation",
            batch.records.len(),
            batch.tp
        );
        let maybe_written = batch.maybe_written;
        finish(shared, batch, Err(error(&text, maybe_written)));
    }
}

/// One round of `sendProducerData`; returns when the sender should look again.
async fn send_ready(shared: &Arc<Shared>, now_ms: u64) -> Option<u64> {
    let mut view = shared.view.lock().await;
    let readiness = shared
        .accumulator
        .lock()
        .expect("accumulator")
        .ready(now_ms, |tp| view.leader(tp).map(|l| l.broker));
    let mut next_ms = readiness.next_ready_ms;
    let mut soon = |ms: u64| next_ms = Some(next_ms.map_or(ms, |t: u64| t.min(ms)));
    // A leader not known, or an error that blamed the metadata (NOT_LEADER_OR_FOLLOWER, a lost
    // connection): ask again (`Metadata.requestUpdate`), throttled by `maybe_refresh`.
    if shared.metadata_stale.swap(false, Ordering::Relaxed) {
        view.mark_stale();
    }
    if shared.txn.is_some() {
        // A transactional producer's id comes from `init_transactions`, its partitions are
        // added to the transaction before their batches go.
        drop(view);
        if !super::transactions::add_pending_partitions(shared).await {
            soon(now_ms + super::transactions::ADD_PARTITIONS_RETRY_BACKOFF_MS);
        }
        view = shared.view.lock().await;
    } else if shared.config.enable_idempotence && !producer_id_ready(shared, &mut view).await {
        soon(now_ms + shared.config.retry_backoff_ms);
        return next_ms;
    }
    if readiness.unknown_leader || view.is_stale() {
        // Every topic the producer has used, as Kafka's `ProducerMetadata` keeps them, not only
        // those with batches queued: with acks=0 nothing stays queued, and a request for no
        // topics would never learn a new leader.
        let mut topics: Vec<String> = view.known_topics();
        for topic in shared.accumulator.lock().expect("accumulator").topics() {
            if !topics.contains(&topic) {
                topics.push(topic);
            }
        }
        view.mark_stale();
        view.maybe_refresh(&topics).await;
        soon(now_ms + shared.config.retry_backoff_ms);
    }
    for node in readiness.ready_nodes {
        let in_flight = shared
            .in_flight
            .lock()
            .expect("in flight")
            .get(&node)
            .copied()
            .unwrap_or(0);
        if in_flight >= shared.config.max_in_flight {
            continue; // a response will wake the sender
        }
        let conn = match view.connection(node).await {
            Ok(conn) => conn,
            Err(_) => {
                view.invalidate(node);
                soon(now_ms + RECONNECT_BACKOFF_MS);
                continue;
            }
        };
        let batches = {
            let mut accumulator = shared.accumulator.lock().expect("accumulator");
            let mut idempotence = shared.idempotence.lock().expect("idempotence");
            let batches = accumulator.drain(
                node,
                shared.config.max_request_size,
                now_ms,
                |tp| view.leader(tp).map(|l| l.broker),
                shared
                    .config
                    .enable_idempotence
                    .then_some(&mut *idempotence),
            );
            if shared.config.max_in_flight == 1 {
                // `guaranteeMessageOrder`: nothing more for these partitions until this returns.
                for batch in &batches {
                    accumulator.mute(&batch.tp);
                }
            }
            batches
        };
        if batches.is_empty() {
            continue;
        }
        *shared
            .in_flight
            .lock()
            .expect("in flight")
            .entry(node)
            .or_insert(0) += 1;
        let mut batches = batches;
        for batch in &mut batches {
            batch.attempts += 1;
        }
        // Sent here, in drain order, so that requests to one node reach it in the order their
        // sequences were given (Kafka's sender thread sends them one after another).
        let request = request(shared, &batches);
        let version = client_version(ApiKey::Produce);
        let sent = if shared.config.acks == 0 {
            conn.send_oneway(ApiKey::Produce, version, &request)
                .await
                .map(|()| None)
        } else {
            conn.start(ApiKey::Produce, version, &request).map(Some)
        };
        tokio::spawn(produce(shared.clone(), node, conn, batches, sent));
    }
    next_ms
}

/// What became of one `Produce` request to `node`, written as `sent` says (`None` for
/// `acks=0`, which gets no answer), and what its answer does to each batch.
async fn produce(
    shared: Arc<Shared>,
    node: i32,
    conn: Arc<Connection>,
    batches: Vec<ProducerBatch>,
    sent: Result<Option<crate::protocol::connection::Sent>, ClientError>,
) {
    // Muted while this request is out (`max.in.flight.requests.per.connection = 1`); unmuted
    // when it is done, whatever became of its batches (Kafka's `Sender.completeBatch`).
    let partitions: Vec<_> = batches.iter().map(|b| b.tp.clone()).collect();
    let on_the_wire = batches.iter().filter(|b| b.sequence.is_some()).count();
    if shared.config.acks == 0 {
        let sent = sent.map(|_| ());
        for batch in batches {
            match &sent {
                Ok(()) => finish(&shared, batch, Ok(-1)),
                Err(e) => failed(&shared, batch, e.to_string(), false).await,
            }
        }
        if sent.is_err() {
            conn.close();
            shared.metadata_stale.store(true, Ordering::Relaxed);
        }
    } else {
        let timeout = shared.config.request_timeout;
        let sent = match sent {
            Ok(Some(sent)) => conn.wait(sent, timeout).await,
            Ok(None) => Err(ClientError::NotSent(
                "written as a request without answer".into(),
            )),
            Err(e) => Err(e),
        };
        {
            let mut idempotence = shared.idempotence.lock().expect("idempotence");
            for _ in 0..on_the_wire {
                idempotence.off_the_wire();
            }
        }
        match sent {
            Ok(ResponseKind::Produce(response)) => answered(&shared, batches, response).await,
            Ok(other) => {
                let text = format!("unexpected response {other:?}");
                for batch in batches {
                    failed(&shared, batch, text.clone(), true).await;
                }
            }
            Err(e) => {
                // This connection is done for (a later one to the node is the sender's).
                conn.close();
                shared.metadata_stale.store(true, Ordering::Relaxed);
                let unknown = e.outcome_unknown();
                let text = match e {
                    ClientError::Timeout => "NetworkException: request timed out".to_string(),
                    ClientError::Disconnected => "NetworkException: disconnected".to_string(),
                    other => format!("NetworkException: {other}"),
                };
                for batch in batches {
                    failed(&shared, batch, text.clone(), unknown).await;
                }
            }
        }
    }
    {
        let mut accumulator = shared.accumulator.lock().expect("accumulator");
        for tp in &partitions {
            accumulator.unmute(tp);
        }
    }
    if let Some(n) = shared.in_flight.lock().expect("in flight").get_mut(&node) {
        *n = n.saturating_sub(1);
    }
    shared.wake.notify_one();
}

fn request(shared: &Shared, batches: &[ProducerBatch]) -> RequestKind {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for batch in batches {
        let records = batch.encoded().clone();
        let data = PartitionProduceData::default()
            .with_index(batch.tp.partition as i32)
            .with_records(Some(records));
        match topics
            .iter_mut()
            .find(|t| t.name.0.as_str() == batch.tp.topic)
        {
            Some(topic) => topic.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(batch.tp.topic.clone())))
                    .with_partition_data(vec![data]),
            ),
        }
    }
    let transactional_id = shared
        .config
        .transactional_id
        .as_ref()
        .map(|id| kafka_protocol::messages::TransactionalId(StrBytes::from_string(id.clone())));
    RequestKind::Produce(
        ProduceRequest::default()
            .with_transactional_id(transactional_id)
            .with_acks(shared.config.acks)
            .with_timeout_ms(shared.config.request_timeout.as_millis() as i32)
            .with_topic_data(topics),
    )
}

async fn answered(shared: &Shared, batches: Vec<ProducerBatch>, response: ProduceResponse) {
    for batch in batches {
        let answer = response
            .responses
            .iter()
            .filter(|t| t.name.0.as_str() == batch.tp.topic)
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == batch.tp.partition as i32)
            .map(|p| (p.error_code, p.base_offset));
        match answer {
            Some((0, base_offset)) => finish(shared, batch, Ok(base_offset)),
            Some((code, _)) => {
                let error = ResponseError::try_from_code(code);
                if let (Some(ResponseError::OutOfOrderSequenceNumber), Some(sequence)) =
                    (error, batch.sequence)
                {
                    // An earlier batch of the partition failed and is being retried: this one
                    // waits behind it. Only the first incomplete sequence is really out of
                    // order (the leader lost what came before it).
                    let first = shared
                        .idempotence
                        .lock()
                        .expect("idempotence")
                        .is_first_incomplete(&batch.tp, sequence);
                    if !first {
                        failed(shared, batch, "OutOfOrderSequenceNumber".into(), false).await;
                        continue;
                    }
                    // The leader lost what came before: the batch fails (Kafka's
                    // OutOfOrderSequenceException), and the epoch is bumped before anything
                    // else is sent, so order holds.
                    let text = "OutOfOrderSequenceException".to_string();
                    let maybe_written = batch.maybe_written;
                    finish(shared, batch, Err(error_of(text, maybe_written)));
                    continue;
                }
                if error.is_some_and(|e| {
                    matches!(
                        e,
                        ResponseError::NotLeaderOrFollower
                            | ResponseError::UnknownTopicOrPartition
                            | ResponseError::LeaderNotAvailable
                            | ResponseError::KafkaStorageError
                    )
                }) {
                    // Only the metadata is blamed: the connection still serves the partitions
                    // this broker leads (`Metadata.requestUpdate`).
                    shared.metadata_stale.store(true, Ordering::Relaxed);
                }
                let name = error.map_or_else(|| format!("error {code}"), |e| format!("{e:?}"));
                // The leader may have appended before it could tell: with acks=all, an
                // `acks=all` wait ends in NOT_LEADER_OR_FOLLOWER when the leadership moves, and
                // the new leader may hold what the old one appended.
                let maybe_written = error.is_some_and(|e| {
                    matches!(
                        e,
                        ResponseError::NotEnoughReplicasAfterAppend
                            | ResponseError::RequestTimedOut
                    ) || (shared.config.acks == -1 && e == ResponseError::NotLeaderOrFollower)
                });
                let retriable = error.is_some_and(|e| e.is_retriable());
                if retriable {
                    failed(shared, batch, name, maybe_written).await;
                } else {
                    let maybe_written = batch.maybe_written || maybe_written;
                    finish(shared, batch, Err(error_of(name, maybe_written)));
                }
            }
            None => failed(shared, batch, "no answer for the partition".into(), true).await,
        }
    }
}

fn error_of(text: String, maybe_written: bool) -> SendError {
    SendError {
        error: text,
        maybe_written,
    }
}

/// A retriable failure (`canRetry`): back into the accumulator after the backoff, unless the
/// retries or the delivery timeout are spent.
async fn failed(shared: &Shared, mut batch: ProducerBatch, text: String, maybe_written: bool) {
    batch.maybe_written |= maybe_written;
    let now_ms = shared.ctx.clock.elapsed_ms();
    let delivery_deadline = batch.created_ms + shared.config.delivery_timeout.as_millis() as u64;
    let retries_left = batch.attempts <= shared.config.retries;
    if !retries_left || now_ms >= delivery_deadline {
        let maybe_written = batch.maybe_written;
        return finish(shared, batch, Err(error_of(text, maybe_written)));
    }
    batch.retry_at_ms = now_ms + backoff_ms(shared, batch.attempts);
    shared
        .accumulator
        .lock()
        .expect("accumulator")
        .reenqueue(batch);
}

/// KIP-580: `retry.backoff.ms` doubling per attempt up to `retry.backoff.max.ms`, with 20%
/// jitter drawn from the client's seed.
fn backoff_ms(shared: &Shared, attempts: u32) -> u64 {
    let base = shared.config.retry_backoff_ms as f64;
    let max = shared
        .config
        .retry_backoff_max_ms
        .max(shared.config.retry_backoff_ms) as f64;
    let exp = (base * 2f64.powi(attempts.saturating_sub(1).min(30) as i32)).min(max);
    let seed = crate::world::derive_seed(
        shared.ctx.seed,
        &format!(
            "backoff/{attempts}/{}",
            shared.incomplete.load(Ordering::Relaxed)
        ),
    );
    let jitter = 0.8 + (seed % 4001) as f64 / 10_000.0;
    (exp * jitter).max(1.0) as u64
}

/// A batch leaves the producer: its memory returns, its records' callbacks run. An idempotent
/// batch that failed leaves a gap in its partition's sequence: the epoch will be bumped. A
/// transactional one that failed dooms its transaction.
pub(super) fn finish(shared: &Shared, batch: ProducerBatch, result: Result<i64, SendError>) {
    if let (Some(txn), Err(e)) = (&shared.txn, &result) {
        txn.lock().expect("txn").on_batch_failed(&e.error);
    }
    let n = batch.records.len();
    {
        let mut accumulator = shared.accumulator.lock().expect("accumulator");
        accumulator.release(&batch);
        if let Some(sequence) = batch.sequence {
            let mut idempotence = shared.idempotence.lock().expect("idempotence");
            idempotence.complete(&batch.tp, sequence, result.is_ok());
        }
    }
    batch.complete(result);
    shared.incomplete.fetch_sub(n, Ordering::Relaxed);
    shared.completed.notify_waiters();
}

/// An idempotent producer's id and epoch, before anything is drained: a bump that is due (and
/// possible) happens now; with no id yet, one `InitProducerId` to some broker. Whether the
/// producer may send.
async fn producer_id_ready(shared: &Shared, view: &mut ClusterView) -> bool {
    let bumped = shared.idempotence.lock().expect("idempotence").maybe_bump();
    if let Some(bumped) = bumped {
        record_producer_id(shared, bumped, true);
    }
    if shared
        .idempotence
        .lock()
        .expect("idempotence")
        .producer()
        .is_some()
    {
        return true;
    }
    let brokers = view.brokers();
    if brokers.is_empty() {
        return false;
    }
    let attempt = shared.init_attempts.fetch_add(1, Ordering::Relaxed);
    let broker = brokers[attempt % brokers.len()];
    let Ok(conn) = view.connection(broker).await else {
        view.invalidate(broker);
        return false;
    };
    let request = RequestKind::InitProducerId(
        InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(i32::MAX)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1),
    );
    let version = client_version(ApiKey::InitProducerId);
    let timeout = shared.config.request_timeout;
    let id = &shared.ctx.id;
    shared
        .ctx
        .recorder
        .op_val(id, OpType::Invoke, "init-producer-id", val!({}));
    match conn
        .send(ApiKey::InitProducerId, version, &request, timeout)
        .await
    {
        Ok(ResponseKind::InitProducerId(r)) if r.error_code == 0 => {
            let producer = ProducerIdAndEpoch {
                producer_id: r.producer_id.0,
                epoch: r.producer_epoch,
            };
            shared
                .idempotence
                .lock()
                .expect("idempotence")
                .set_producer(producer);
            record_producer_id(shared, producer, false);
            true
        }
        other => {
            let error = match other {
                Ok(ResponseKind::InitProducerId(r)) => ResponseError::try_from_code(r.error_code)
                    .map_or_else(|| format!("error {}", r.error_code), |e| format!("{e:?}")),
                Ok(other) => format!("unexpected response {other:?}"),
                Err(e) => {
                    conn.close();
                    view.invalidate(broker);
                    format!("NetworkException: {e}")
                }
            };
            shared.ctx.recorder.op_val(
                id,
                OpType::Fail,
                "init-producer-id",
                val!({ "error": error }),
            );
            false
        }
    }
}

/// The producer id and epoch the producer writes with from now on, in the history.
fn record_producer_id(shared: &Shared, producer: ProducerIdAndEpoch, bumped: bool) {
    let id = &shared.ctx.id;
    if bumped {
        shared.ctx.recorder.op_val(
            id,
            OpType::Invoke,
            "init-producer-id",
            val!({ "bump": true }),
        );
    }
    shared.ctx.recorder.op_val(
        id,
        OpType::Ok,
        "init-producer-id",
        val!({ "producer_id": producer.producer_id, "epoch": producer.epoch as i64 }),
    );
}
