//! The consumer workload, in `assign` mode (no group): it owns every partition of its topics,
//! finds a starting position with `auto.offset.reset`, and polls with `Fetch`. Each fetch is one
//! `poll` operation in the history, listing the records it returned.
//!
//! Group membership, commits and position validation by leader epoch (KIP-320) come with the
//! clients issue.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, ListOffsetsRequest, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use samsa_sim::history::OpType;
use samsa_sim::val;
use samsa_sim::val::Val;
use serde_json::{json, Value};

use super::cluster::ClusterView;
use super::{sleep_until_ms, ClientContext, RETRY_BACKOFF_MS};
use crate::protocol::versions::client_version;
use crate::protocol::ClientError;
use crate::scenario::TopicPartition;
use crate::storage::batch;

/// `auto.offset.reset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    /// Kafka's `none`: no position is an error for the application.
    None,
}

#[derive(Clone, Debug)]
pub struct ConsumerSpec {
    pub topics: Vec<String>,
    pub auto_offset_reset: OffsetReset,
    /// `fetch.max.wait.ms` (500), `fetch.min.bytes` (1), `max.partition.fetch.bytes` (1 MiB).
    pub fetch_max_wait_ms: i32,
    pub fetch_min_bytes: i32,
    pub max_partition_fetch_bytes: i32,
    pub request_timeout: Duration,
    pub start_ms: u64,
    /// `isolation.level = read_committed`: fetch up to the last stable offset and drop the
    /// records of aborted transactions.
    pub read_committed: bool,
}

struct Consumer {
    ctx: ClientContext,
    spec: ConsumerSpec,
    view: ClusterView,
    /// Next offset to read, per assigned partition; `None` until reset.
    positions: BTreeMap<TopicPartition, Option<i64>>,
}

pub async fn run(ctx: ClientContext, spec: ConsumerSpec) {
    sleep_until_ms(&ctx.clock, spec.start_ms).await;
    let mut view = ClusterView::new(ctx.clone());
    view.request_timeout = spec.request_timeout;
    let mut consumer = Consumer {
        ctx,
        spec,
        view,
        positions: BTreeMap::new(),
    };
    loop {
        if !consumer.poll_round().await {
            tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
        }
    }
}

impl Consumer {
    fn op(&self, kind: OpType, f: &str, value: Value) {
        self.ctx.recorder.op(&self.ctx.id, kind, f, value);
    }

    fn op_val(&self, kind: OpType, f: &str, value: Val) {
        self.ctx.recorder.op_val(&self.ctx.id, kind, f, value);
    }

    /// One round: assign, reset positions, then one fetch per leader. False when it made no progress.
    async fn poll_round(&mut self) -> bool {
        if self.positions.is_empty() && !self.assign().await {
            return false;
        }
        let unknown: Vec<TopicPartition> = self
            .positions
            .iter()
            .filter(|(_, pos)| pos.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in unknown {
            if self.reset(&tp).await.is_err() {
                return false;
            }
        }
        let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        for tp in self.positions.keys() {
            match self.view.leader(tp) {
                Some(leader) => by_leader.entry(leader.broker).or_default().push(tp.clone()),
                None => {
                    self.view.refresh(&self.spec.topics).await.ok();
                    return false;
                }
            }
        }
        let mut ok = true;
        for (broker, partitions) in by_leader {
            ok &= self.fetch(broker, &partitions).await;
        }
        ok
    }

    async fn assign(&mut self) -> bool {
        if self.view.refresh(&self.spec.topics).await.is_err() {
            return false;
        }
        // Every topic or none: a partial assignment would never be completed (`poll_round`
        // assigns only while it has no partition at all).
        let mut counts = Vec::with_capacity(self.spec.topics.len());
        for topic in &self.spec.topics {
            let Some(count) = self.view.partition_count(topic) else {
                return false;
            };
            counts.push((topic.clone(), count));
        }
        for (topic, count) in counts {
            for partition in 0..count {
                self.positions.insert(
                    TopicPartition {
                        topic: topic.clone(),
                        partition,
                    },
                    None,
                );
            }
        }
        true
    }

    /// Finds a position with `ListOffsets` (earliest or latest), as `auto.offset.reset` says.
    async fn reset(&mut self, tp: &TopicPartition) -> Result<(), ClientError> {
        let timestamp = match self.spec.auto_offset_reset {
            OffsetReset::Earliest => -2,
            OffsetReset::Latest => -1,
            OffsetReset::None => {
                self.op(
                    OpType::Fail,
                    "reset",
                    json!({ "partition": tp.to_string(), "error": "NoOffsetForPartition" }),
                );
                return Err(ClientError::NotSent("auto.offset.reset=none".into()));
            }
        };
        let leader = self
            .view
            .leader(tp)
            .ok_or_else(|| ClientError::NotSent("no leader".into()))?;
        let conn = self.view.connection(leader.broker).await?;
        let request = list_offsets_request(tp, timestamp);
        let version = client_version(ApiKey::ListOffsets);
        let response = conn
            .send(
                ApiKey::ListOffsets,
                version,
                &request,
                self.spec.request_timeout,
            )
            .await;
        let offset = match response {
            Ok(response) => listed_offset(&response),
            Err(_) => None,
        };
        match offset {
            Some(offset) => {
                let from = self.positions.insert(tp.clone(), Some(offset)).flatten();
                self.op(
                    OpType::Ok,
                    "reset",
                    json!({ "partition": tp.to_string(), "from": from, "to": offset }),
                );
                Ok(())
            }
            None => {
                self.view.disconnect(leader.broker);
                self.view.refresh(&self.spec.topics).await.ok();
                Err(ClientError::NotSent("ListOffsets failed".into()))
            }
        }
    }

    async fn fetch(&mut self, broker: i32, partitions: &[TopicPartition]) -> bool {
        let conn = match self.view.connection(broker).await {
            Ok(conn) => conn,
            Err(_) => {
                self.view.refresh(&self.spec.topics).await.ok();
                return false;
            }
        };
        let wanted: Vec<(TopicPartition, i64, i32)> = partitions
            .iter()
            .filter_map(|tp| match self.positions.get(tp) {
                Some(Some(position)) => Some((tp.clone(), *position, -1)),
                _ => None,
            })
            .collect();
        let request = fetch_request(&self.spec, &wanted);
        self.op_val(OpType::Invoke, "poll", isolation(&self.spec, val!({})));
        let version = client_version(ApiKey::Fetch);
        let response = conn
            .send(ApiKey::Fetch, version, &request, self.spec.request_timeout)
            .await;
        let response = match response {
            Ok(ResponseKind::Fetch(response)) => response,
            Ok(other) => {
                self.op(
                    OpType::Fail,
                    "poll",
                    json!({ "error": format!("unexpected response {other:?}") }),
                );
                return false;
            }
            Err(e) => {
                // A poll only reads: whatever happened, it changed nothing.
                self.op(OpType::Fail, "poll", json!({ "error": e.to_string() }));
                self.view.disconnect(broker);
                self.view.refresh(&self.spec.topics).await.ok();
                return false;
            }
        };
        let mut records = Vec::new();
        let mut errors = Vec::new();
        for topic in response.responses {
            for p in topic.partitions {
                let tp = TopicPartition {
                    topic: topic.topic.0.to_string(),
                    partition: p.partition_index as u32,
                };
                if p.error_code != 0 {
                    let error = ResponseError::try_from_code(p.error_code);
                    errors
                        .push(val!({ "partition": tp.to_string(), "error": format!("{error:?}") }));
                    if error == Some(ResponseError::OffsetOutOfRange) {
                        self.positions.insert(tp, None);
                    } else {
                        self.view.refresh(&self.spec.topics).await.ok();
                    }
                    continue;
                }
                let Some(Some(position)) = self.positions.get(&tp).copied() else {
                    continue;
                };
                let aborted = aborted_of(self.spec.read_committed, &p);
                let next = self.take_records(
                    &tp,
                    position,
                    p.records.as_deref().unwrap_or(&[]),
                    aborted.as_deref(),
                    &mut records,
                );
                self.positions.insert(tp, Some(next));
            }
        }
        let polled = val!({ "records": Val::array(records), "errors": Val::array(errors) });
        self.op_val(OpType::Ok, "poll", isolation(&self.spec, polled));
        true
    }

    /// Decodes the fetched batches and returns the new position. Records below the position
    /// (the rest of the first batch) are skipped.
    fn take_records(
        &self,
        tp: &TopicPartition,
        position: i64,
        bytes: &[u8],
        aborted: Option<&[(i64, i64)]>,
        out: &mut Vec<Val>,
    ) -> i64 {
        let partition = tp.to_string();
        let (records, next) = decode_fetched(position, bytes, aborted);
        for (offset, value, _) in records {
            out.push(val!({ "partition": partition.as_str(), "offset": offset, "value": value }));
        }
        next
    }
}

/// A consumer's `Fetch` of `partitions`, each (partition, position, current leader epoch; -1
/// for none), with the consumer's `fetch.*` configs and `isolation.level`.
pub(crate) fn fetch_request(
    spec: &ConsumerSpec,
    partitions: &[(TopicPartition, i64, i32)],
) -> RequestKind {
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for (tp, position, epoch) in partitions {
        topics.entry(&tp.topic).or_default().push(
            FetchPartition::default()
                .with_partition(tp.partition as i32)
                .with_current_leader_epoch(*epoch)
                .with_last_fetched_epoch(-1)
                .with_fetch_offset(*position)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(spec.max_partition_fetch_bytes),
        );
    }
    RequestKind::Fetch(
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(spec.fetch_max_wait_ms)
            .with_min_bytes(spec.fetch_min_bytes)
            .with_max_bytes(52_428_800)
            .with_isolation_level(i8::from(spec.read_committed))
            .with_session_epoch(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(topic, parts)| {
                        FetchTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                            .with_partitions(parts)
                    })
                    .collect(),
            ),
    )
}

/// `ListOffsets` of one partition at `timestamp` (-2 the earliest offset, -1 the latest), as a
/// consumer asks it (no replica, no leader epoch).
pub(crate) fn list_offsets_request(tp: &TopicPartition, timestamp: i64) -> RequestKind {
    RequestKind::ListOffsets(
        ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(tp.topic.clone())))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(tp.partition as i32)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(timestamp)])]),
    )
}

/// The offset a one-partition `ListOffsets` answer gives, unless it is an error.
pub(crate) fn listed_offset(response: &ResponseKind) -> Option<i64> {
    match response {
        ResponseKind::ListOffsets(r) => r
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .filter(|p| p.error_code == 0)
            .map(|p| p.offset),
        _ => None,
    }
}

/// A poll's value, marked when the consumer reads committed records only (so the checks know
/// which polls promise not to see aborted or open transactions).
pub(crate) fn isolation(spec: &ConsumerSpec, value: Val) -> Val {
    if spec.read_committed {
        value.with("isolation", Val::from("read_committed"))
    } else {
        value
    }
}

/// The aborted transactions a `read_committed` fetch of one partition answered: (producer id,
/// first offset), or `None` when reading uncommitted.
pub(crate) fn aborted_of(
    read_committed: bool,
    partition: &kafka_protocol::messages::fetch_response::PartitionData,
) -> Option<Vec<(i64, i64)>> {
    read_committed.then(|| {
        let mut aborted: Vec<(i64, i64)> = partition
            .aborted_transactions
            .iter()
            .flatten()
            .map(|t| (t.producer_id.0, t.first_offset))
            .collect();
        aborted.sort_by_key(|&(_, first)| first);
        aborted
    })
}

/// The records of fetched batches at or after `position` (checking each batch's CRC, as
/// `check.crcs` does), with their values as text and their batch's leader epoch, and the
/// position after them (past a batch's end even when its last records were compacted away or it
/// holds only control records). Control batches (transaction markers) are never records.
///
/// With `aborted` (a `read_committed` fetch: the aborted transactions the broker listed, by
/// first offset), the batches of aborted transactions are dropped as Kafka's `CompletedFetch`
/// drops them: a producer is aborted from the first offset of an aborted transaction of its
/// until its abort marker.
pub(crate) fn decode_fetched(
    position: i64,
    bytes: &[u8],
    aborted: Option<&[(i64, i64)]>,
) -> (Vec<(i64, Option<String>, i32)>, i64) {
    let mut next = position;
    let mut rest = bytes;
    let mut out = Vec::new();
    let mut upcoming = aborted.unwrap_or(&[]).iter().peekable();
    let mut aborted_producers = std::collections::BTreeSet::new();
    while !rest.is_empty() {
        let Ok(header) = batch::validate(rest) else {
            break;
        };
        let size = header.size_in_bytes();
        let mut skip = header.is_control();
        if aborted.is_some() && header.producer_id >= 0 {
            while let Some(&(producer_id, _)) =
                upcoming.next_if(|(_, first)| *first <= header.last_offset())
            {
                aborted_producers.insert(producer_id);
            }
            if header.is_control() {
                if is_abort_marker(&rest[..size]) {
                    aborted_producers.remove(&header.producer_id);
                }
            } else if header.is_transactional() && aborted_producers.contains(&header.producer_id) {
                skip = true;
            }
        }
        if !skip {
            if let Ok((_, decoded)) = batch::decode_records(&rest[..size]) {
                for record in decoded {
                    if record.offset < next {
                        continue;
                    }
                    let value = record
                        .value
                        .as_deref()
                        .map(|v| String::from_utf8_lossy(v).into_owned());
                    out.push((record.offset, value, header.partition_leader_epoch));
                    next = record.offset + 1;
                }
            }
        }
        next = next.max(header.next_offset());
        rest = &rest[size..];
    }
    (out, next)
}

/// Whether a control batch is an abort marker: its record's key is a version (i16) and a type
/// (i16: 0 abort, 1 commit), Kafka's `ControlRecordType`.
fn is_abort_marker(control_batch: &[u8]) -> bool {
    batch::decode_records(control_batch)
        .ok()
        .and_then(|(_, records)| records.into_iter().next())
        .and_then(|r| r.key)
        .is_some_and(|key| key.len() >= 4 && i16::from_be_bytes([key[2], key[3]]) == 0)
}
