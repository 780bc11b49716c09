//! Kafka's `RecordAccumulator`: one queue of batches per partition. `send` appends a record to
//! the last batch of its partition (or opens a new one); the sender drains the first batch of
//! each partition once it is full, has lingered `linger.ms`, or a flush asks for it.
//!
//! With `compression.type` set, a batch is judged full on its estimated compressed size, as
//! Kafka's `MemoryRecordsBuilder` judges it: the header plus the uncompressed records times the
//! topic's estimated compression ratio times 1.05. The ratio starts at 1 and learns from every
//! batch closed (`CompressionRatioEstimator`: up at once to a worse ratio, down by 0.005 a batch
//! towards a better one). Kafka keeps it per topic and codec for the whole JVM; here each
//! producer keeps its own, per topic. A batch is closed (encoded, compressed) when it is
//! drained, once: a retry sends the same bytes.
//!
//! No I/O and no clock of its own: every call takes `now_ms`, so the whole of it is tested by
//! exact results.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use super::idempotence::{BatchSequence, Idempotence};
use super::{Callback, RecordMetadata, SendError};
use crate::scenario::TopicPartition;
use crate::storage::batch::{encode_batch, BatchSpec, Compression, Record};

/// A record batch's fixed overhead (the v2 header, `DefaultRecordBatch.RECORD_BATCH_OVERHEAD`).
pub const BATCH_OVERHEAD_BYTES: usize = 61;

/// Kafka's `MemoryRecordsBuilder.COMPRESSION_RATE_ESTIMATION_FACTOR`: room for a ratio that is
/// a little worse than estimated.
const COMPRESSION_RATE_ESTIMATION_FACTOR: f32 = 1.05;
/// Kafka's `CompressionRatioEstimator` steps.
const COMPRESSION_RATIO_IMPROVING_STEP: f32 = 0.005;
const COMPRESSION_RATIO_DETERIORATE_STEP: f32 = 0.05;

/// A record's size in a v2 batch, near enough (`DefaultRecord.sizeInBytes` counts the varints
/// exactly; an upper bound of five bytes per varint serves the accounting).
pub fn record_size(
    key: Option<&Bytes>,
    value: Option<&Bytes>,
    headers: &[(String, Option<Bytes>)],
) -> usize {
    let headers_bytes: usize = headers
        .iter()
        .map(|(k, v)| 10 + k.len() + v.as_ref().map_or(0, Bytes::len))
        .sum();
    21 + key.map_or(0, Bytes::len) + value.map_or(0, Bytes::len) + headers_bytes
}

/// One record waiting in a batch, with what its callback needs.
pub struct PendingRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub timestamp: i64,
    pub callback: Callback,
}

/// Kafka's `ProducerBatch`: records for one partition, sent and retried together.
pub struct ProducerBatch {
    pub tp: TopicPartition,
    pub records: Vec<PendingRecord>,
    /// The header and the records uncompressed, near enough: what the batch holds of
    /// `buffer.memory`.
    pub size_bytes: usize,
    pub compression: Compression,
    /// The topic's estimated compression ratio when the batch was opened.
    pub estimated_ratio: f32,
    /// The batch as sent, once closed (`close`).
    encoded: Option<Bytes>,
    pub created_ms: u64,
    /// Attempts made so far (0 before the first send).
    pub attempts: u32,
    /// Not to be sent again before this (retry backoff).
    pub retry_at_ms: u64,
    /// Some attempt's outcome is unknown (a timeout, a lost connection): a later failure cannot
    /// say the records were not written.
    pub maybe_written: bool,
    /// An idempotent producer's id, epoch and base sequence for the batch, from its first drain
    /// on (a new epoch gives it a new one).
    pub sequence: Option<BatchSequence>,
}

impl ProducerBatch {
    fn new(
        tp: TopicPartition,
        compression: Compression,
        estimated_ratio: f32,
        now_ms: u64,
    ) -> Self {
        ProducerBatch {
            tp,
            records: Vec::new(),
            size_bytes: BATCH_OVERHEAD_BYTES,
            compression,
            estimated_ratio,
            encoded: None,
            created_ms: now_ms,
            attempts: 0,
            retry_at_ms: 0,
            maybe_written: false,
            sequence: None,
        }
    }

    /// Kafka's `MemoryRecordsBuilder.estimatedSizeInBytes`: uncompressed, the size; compressed,
    /// the records scaled by the estimated ratio (and 5% more) until the batch is closed, then
    /// its size as sent.
    pub fn estimated_size_bytes(&self) -> usize {
        match (&self.encoded, self.compression) {
            (_, Compression::None) => self.size_bytes,
            (Some(encoded), _) => encoded.len(),
            (None, _) => {
                let records = (self.size_bytes - BATCH_OVERHEAD_BYTES) as f32;
                let factor = self.estimated_ratio * COMPRESSION_RATE_ESTIMATION_FACTOR;
                BATCH_OVERHEAD_BYTES + (records * factor) as usize
            }
        }
    }

    /// Kafka's `ProducerBatch.close`: encodes the batch once (a retry sends the same bytes) and
    /// returns the compression ratio it achieved (compressed over uncompressed records).
    pub fn close(&mut self) -> f32 {
        if self.encoded.is_none() {
            let mut spec = BatchSpec {
                compression: self.compression,
                ..BatchSpec::default()
            };
            if let Some(s) = self.sequence {
                spec.producer_id = s.producer.producer_id;
                spec.producer_epoch = s.producer.epoch;
                spec.base_sequence = s.base_sequence;
                spec.transactional = s.transactional;
            }
            self.encoded = Some(self.encode(spec));
        }
        let records = (self.size_bytes - BATCH_OVERHEAD_BYTES).max(1) as f32;
        (self.encoded().len() - BATCH_OVERHEAD_BYTES) as f32 / records
    }

    /// The batch as sent; `close` first.
    pub fn encoded(&self) -> &Bytes {
        self.encoded
            .as_ref()
            .expect("a batch is closed before it is sent")
    }

    /// The batch on the wire: offsets 0.. relative, timestamps relative to the first record's.
    fn encode(&self, spec: BatchSpec) -> Bytes {
        let base_timestamp = self.records[0].timestamp;
        let records: Vec<Record> = self
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| Record {
                offset_delta: i as i32,
                timestamp_delta: r.timestamp - base_timestamp,
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r.headers.clone(),
            })
            .collect();
        encode_batch(
            &BatchSpec {
                base_timestamp,
                ..spec
            },
            &records,
        )
    }

    /// Completes every record: offsets from `base_offset` on, or the error for all.
    pub fn complete(self, result: Result<i64, SendError>) {
        for (i, record) in self.records.into_iter().enumerate() {
            let outcome = match &result {
                Ok(base_offset) => Ok(RecordMetadata {
                    tp: self.tp.clone(),
                    offset: if *base_offset >= 0 {
                        base_offset + i as i64
                    } else {
                        -1
                    },
                    timestamp: record.timestamp,
                }),
                Err(e) => Err(e.clone()),
            };
            (record.callback)(outcome);
        }
    }
}

/// What `append` did, for the caller (the sticky partitioner and the sender's wake-up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// The partition's last batch is full, or a new one was opened behind a full one: the
    /// sender has something to send now.
    pub batch_full: bool,
    pub new_batch: bool,
}

/// Why the sender may send a partition's first batch now, or when it will be able to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Leaders with at least one sendable batch.
    pub ready_nodes: BTreeSet<i32>,
    /// The earliest time a waiting batch becomes sendable (linger or backoff), if any.
    pub next_ready_ms: Option<u64>,
    /// Some partition with batches has no known leader: ask for metadata.
    pub unknown_leader: bool,
}

/// Kafka's `CompressionRatioEstimator`, for one producer and codec: per topic, the ratio
/// (compressed over uncompressed records) to expect of its next batch.
#[derive(Debug, Default)]
pub struct CompressionRatioEstimator {
    ratios: BTreeMap<String, f32>,
}

impl CompressionRatioEstimator {
    pub fn estimation(&self, topic: &str) -> f32 {
        self.ratios.get(topic).copied().unwrap_or(1.0)
    }

    /// `updateEstimation`: a worse ratio is taken at once (at least one step up), a better one
    /// approached one small step a batch.
    pub fn update(&mut self, topic: &str, observed: f32) -> f32 {
        let current = self.estimation(topic);
        let updated = if observed > current {
            observed.max(current + COMPRESSION_RATIO_DETERIORATE_STEP)
        } else if observed < current {
            observed.max(current - COMPRESSION_RATIO_IMPROVING_STEP)
        } else {
            current
        };
        self.ratios.insert(topic.to_string(), updated);
        updated
    }
}

pub struct RecordAccumulator {
    batch_size: usize,
    linger_ms: u64,
    compression: Compression,
    ratios: CompressionRatioEstimator,
    queues: BTreeMap<TopicPartition, VecDeque<ProducerBatch>>,
    /// Partitions with a batch in flight, when order must be kept (`max.in.flight = 1`).
    muted: BTreeSet<TopicPartition>,
    /// Where the next drain of a node starts, so no partition starves (`drainIndex`).
    drain_start: BTreeMap<i32, usize>,
    /// Bytes held by queued batches (the `buffer.memory` pool).
    pub buffered_bytes: usize,
    /// A flush is in progress: every batch is sendable at once.
    pub flushing: bool,
}

impl RecordAccumulator {
    pub fn new(batch_size: usize, linger_ms: u64, compression: Compression) -> Self {
        RecordAccumulator {
            batch_size: batch_size.max(1),
            linger_ms,
            compression,
            ratios: CompressionRatioEstimator::default(),
            queues: BTreeMap::new(),
            muted: BTreeSet::new(),
            drain_start: BTreeMap::new(),
            buffered_bytes: 0,
            flushing: false,
        }
    }

    pub fn append(
        &mut self,
        tp: &TopicPartition,
        record: PendingRecord,
        now_ms: u64,
    ) -> AppendResult {
        let size = record_size(record.key.as_ref(), record.value.as_ref(), &record.headers);
        let queue = self.queues.entry(tp.clone()).or_default();
        // `hasRoomFor`: the new record counted uncompressed, to be safe.
        let fits = queue.back().is_some_and(|last| {
            last.attempts == 0
                && last.encoded.is_none()
                && last.estimated_size_bytes() + size <= self.batch_size
        });
        let new_batch = !fits;
        if new_batch {
            let ratio = self.ratios.estimation(&tp.topic);
            queue.push_back(ProducerBatch::new(
                tp.clone(),
                self.compression,
                ratio,
                now_ms,
            ));
        }
        let last = queue.back_mut().expect("a batch was just ensured");
        last.records.push(record);
        last.size_bytes += size;
        let last_full = last.estimated_size_bytes() >= self.batch_size;
        self.buffered_bytes += size;
        AppendResult {
            batch_full: queue.len() > 1 || last_full,
            new_batch,
        }
    }

    /// `ready`: the leaders that have a batch to send now. `leader_of` gives a partition's
    /// leader, `None` when unknown.
    pub fn ready(
        &self,
        now_ms: u64,
        leader_of: impl Fn(&TopicPartition) -> Option<i32>,
    ) -> Readiness {
        let mut readiness = Readiness::default();
        for (tp, queue) in &self.queues {
            let Some(first) = queue.front() else { continue };
            let Some(leader) = leader_of(tp) else {
                readiness.unknown_leader = true;
                continue;
            };
            if self.muted.contains(tp) {
                continue;
            }
            let backing_off = first.attempts > 0 && now_ms < first.retry_at_ms;
            let full = queue.len() > 1 || first.estimated_size_bytes() >= self.batch_size;
            let due_ms = if first.attempts > 0 {
                first.retry_at_ms
            } else if full || self.flushing {
                now_ms
            } else {
                first.created_ms + self.linger_ms
            };
            if !backing_off && due_ms <= now_ms {
                readiness.ready_nodes.insert(leader);
            } else {
                readiness.next_ready_ms =
                    Some(readiness.next_ready_ms.map_or(due_ms, |t| t.min(due_ms)));
            }
        }
        readiness
    }

    /// `drain`: for one node, the first sendable batch of each of its partitions, up to
    /// `max_request_bytes` in all (at least one batch), starting where the last drain of this
    /// node stopped. An idempotent producer's batches take their sequences here, and a retry
    /// waits for the earlier sequences of its partition (`shouldStopDrainBatchesForPartition`).
    pub fn drain(
        &mut self,
        node: i32,
        max_request_bytes: usize,
        now_ms: u64,
        leader_of: impl Fn(&TopicPartition) -> Option<i32>,
        mut idempotence: Option<&mut Idempotence>,
    ) -> Vec<ProducerBatch> {
        let partitions: Vec<TopicPartition> = self
            .queues
            .iter()
            .filter(|(tp, queue)| !queue.is_empty() && leader_of(tp) == Some(node))
            .map(|(tp, _)| tp.clone())
            .collect();
        if partitions.is_empty() {
            return Vec::new();
        }
        let start = self.drain_start.get(&node).copied().unwrap_or(0) % partitions.len();
        let mut drained = Vec::new();
        let mut bytes = 0;
        for i in 0..partitions.len() {
            let tp = &partitions[(start + i) % partitions.len()];
            if self.muted.contains(tp) {
                continue;
            }
            let queue = self.queues.get_mut(tp).expect("listed above");
            let first = queue.front().expect("listed non-empty");
            if first.attempts > 0 && now_ms < first.retry_at_ms {
                continue;
            }
            if let Some(idem) = idempotence.as_deref() {
                if !idem.may_drain(tp, first.sequence, node) {
                    continue;
                }
            }
            if !drained.is_empty() && bytes + first.estimated_size_bytes() > max_request_bytes {
                self.drain_start
                    .insert(node, (start + i) % partitions.len());
                return drained;
            }
            let mut batch = queue.pop_front().expect("checked");
            if let Some(idem) = idempotence.as_deref_mut() {
                let records = batch.records.len() as i32;
                let sequence = idem.on_drain(tp, batch.sequence, records, node);
                if batch.sequence != Some(sequence) {
                    batch.sequence = Some(sequence);
                    batch.encoded = None;
                }
            }
            let first_close = batch.encoded.is_none();
            let ratio = batch.close();
            if first_close && batch.compression != Compression::None {
                self.ratios.update(&batch.tp.topic, ratio);
            }
            bytes += batch.estimated_size_bytes();
            drained.push(batch);
        }
        self.drain_start.insert(node, start + 1);
        drained
    }

    /// Puts a batch back at the head of its queue to be retried (`reenqueue`); an idempotent
    /// producer's in sequence order among the other retries (`insertInSequenceOrder`).
    pub fn reenqueue(&mut self, batch: ProducerBatch) {
        let queue = self.queues.entry(batch.tp.clone()).or_default();
        let Some(sequence) = batch.sequence else {
            return queue.push_front(batch);
        };
        let at = queue
            .iter()
            .position(|b| {
                b.sequence.is_none_or(|s| {
                    s.producer != sequence.producer || s.base_sequence > sequence.base_sequence
                })
            })
            .unwrap_or(queue.len());
        queue.insert(at, batch);
    }

    /// A batch left the producer for good (completed or failed): its bytes return to the pool.
    pub fn release(&mut self, batch: &ProducerBatch) {
        let bytes = batch.size_bytes - BATCH_OVERHEAD_BYTES;
        self.buffered_bytes = self.buffered_bytes.saturating_sub(bytes);
    }

    pub fn mute(&mut self, tp: &TopicPartition) {
        self.muted.insert(tp.clone());
    }

    pub fn unmute(&mut self, tp: &TopicPartition) {
        self.muted.remove(tp);
    }

    /// Removes the queued batches created at or before `deadline_created_ms` (their delivery
    /// timeout has passed), for the sender to fail.
    pub fn expire(&mut self, deadline_created_ms: u64) -> Vec<ProducerBatch> {
        let mut expired = Vec::new();
        for queue in self.queues.values_mut() {
            while queue
                .front()
                .is_some_and(|b| b.created_ms <= deadline_created_ms)
            {
                expired.push(queue.pop_front().expect("checked"));
            }
        }
        expired
    }

    /// Every queued batch, for a producer that closes without waiting.
    pub fn take_all(&mut self) -> Vec<ProducerBatch> {
        let mut all = Vec::new();
        for queue in self.queues.values_mut() {
            all.extend(queue.drain(..));
        }
        all
    }

    pub fn is_empty(&self) -> bool {
        self.queues.values().all(VecDeque::is_empty)
    }

    /// The partitions that have batches waiting (for the metadata the sender must know).
    pub fn topics(&self) -> BTreeSet<String> {
        self.queues
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(tp, _)| tp.topic.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn tp(partition: u32) -> TopicPartition {
        TopicPartition {
            topic: "t".into(),
            partition,
        }
    }

    fn record(value: &str, done: &Arc<Mutex<Vec<String>>>) -> PendingRecord {
        let done = done.clone();
        let name = value.to_string();
        PendingRecord {
            key: None,
            value: Some(Bytes::from(value.to_string())),
            headers: Vec::new(),
            timestamp: 1000,
            callback: Box::new(move |r| {
                done.lock()
                    .unwrap()
                    .push(format!("{name}:{}", r.map_or(-9, |m| m.offset)))
            }),
        }
    }

    #[test]
    fn a_batch_waits_for_linger_unless_full() {
        let done = Arc::new(Mutex::new(Vec::new()));
        let mut acc = RecordAccumulator::new(200, 5, Compression::None);
        let r = acc.append(&tp(0), record("a", &done), 100);
        assert_eq!(
            r,
            AppendResult {
                batch_full: false,
                new_batch: true
            }
        );
        let leader = |_: &TopicPartition| Some(1);
        let waiting = acc.ready(102, leader);
        assert!(waiting.ready_nodes.is_empty());
        assert_eq!(waiting.next_ready_ms, Some(105));
        assert_eq!(acc.ready(105, leader).ready_nodes, BTreeSet::from([1]));
        // Enough records to fill 200 bytes: ready at once, and the next opens a new batch.
        for i in 0..10 {
            acc.append(&tp(0), record(&format!("record-{i:03}"), &done), 101);
        }
        assert_eq!(acc.ready(101, leader).ready_nodes, BTreeSet::from([1]));
        let drained = acc.drain(1, 1 << 20, 101, leader, None);
        assert_eq!(drained.len(), 1, "one batch per partition per request");
        let first = drained.into_iter().next().unwrap();
        assert!(first.size_bytes <= 200);
        let n = first.records.len();
        first.complete(Ok(40));
        assert_eq!(done.lock().unwrap()[0], "a:40");
        assert_eq!(
            done.lock().unwrap()[n - 1],
            format!("record-{:03}:{}", n - 2, 40 + n as i64 - 1)
        );
    }

    #[test]
    fn unknown_leaders_muted_partitions_and_backoff_hold_batches() {
        let done = Arc::new(Mutex::new(Vec::new()));
        let mut acc = RecordAccumulator::new(10, 0, Compression::None);
        acc.append(&tp(0), record("a", &done), 0);
        acc.append(&tp(1), record("b", &done), 0);
        let leader = |tp: &TopicPartition| (tp.partition == 0).then_some(2);
        let r = acc.ready(0, leader);
        assert!(r.unknown_leader);
        assert_eq!(r.ready_nodes, BTreeSet::from([2]));
        acc.mute(&tp(0));
        assert!(acc.ready(0, leader).ready_nodes.is_empty());
        acc.unmute(&tp(0));
        let mut batch = acc.drain(2, 100, 0, leader, None).pop().unwrap();
        batch.attempts = 1;
        batch.retry_at_ms = 50;
        acc.reenqueue(batch);
        let r = acc.ready(10, leader);
        assert!(r.ready_nodes.is_empty());
        assert_eq!(r.next_ready_ms, Some(50));
        assert_eq!(acc.drain(2, 100, 10, leader, None).len(), 0);
        assert_eq!(acc.drain(2, 100, 50, leader, None).len(), 1);
    }

    #[test]
    fn drain_respects_the_request_size_and_rotates() {
        let done = Arc::new(Mutex::new(Vec::new()));
        let mut acc = RecordAccumulator::new(10, 0, Compression::None);
        for p in 0..3 {
            acc.append(&tp(p), record("x", &done), 0);
            acc.append(&tp(p), record("y", &done), 0);
        }
        let leader = |_: &TopicPartition| Some(1);
        let one = acc.drain(1, 1, 0, leader, None);
        assert_eq!(one.len(), 1, "at least one batch, even past the size");
        let next = acc.drain(1, 1, 0, leader, None);
        assert_ne!(
            one[0].tp, next[0].tp,
            "the next drain starts at another partition"
        );
        let expired = acc.expire(0);
        assert_eq!(expired.len(), 4);
        assert!(acc.is_empty());
    }

    #[test]
    fn the_ratio_estimator_moves_as_kafkas() {
        let mut ratios = CompressionRatioEstimator::default();
        assert_eq!(ratios.estimation("t"), 1.0);
        assert_eq!(ratios.update("t", 0.3), 0.995, "better: one small step");
        assert_eq!(ratios.update("t", 1.2), 1.2, "worse: at once");
        assert_eq!(ratios.update("t", 1.21), 1.25, "worse: at least one step");
        assert_eq!(ratios.update("t", 1.25), 1.25);
        assert_eq!(ratios.estimation("other"), 1.0);
    }

    fn compressible(i: usize, done: &Arc<Mutex<Vec<String>>>) -> PendingRecord {
        record(
            &format!("record {i:04} with a value that repeats and repeats"),
            done,
        )
    }

    /// Records per batch, filling `batches` batches of partition 0 and draining each.
    fn records_per_batch(acc: &mut RecordAccumulator, batches: usize) -> Vec<usize> {
        let done = Arc::new(Mutex::new(Vec::new()));
        let leader = |_: &TopicPartition| Some(1);
        let mut counts = Vec::new();
        let mut i = 0;
        while counts.len() < batches {
            acc.append(&tp(0), compressible(i, &done), 0);
            i += 1;
            if acc.queues[&tp(0)].len() > 1 {
                let batch = acc.drain(1, 1 << 20, 0, leader, None).pop().unwrap();
                counts.push(batch.records.len());
                let header = crate::storage::batch::validate(batch.encoded()).unwrap();
                assert_eq!(header.records_count as usize, batch.records.len());
                // The estimate may be a little optimistic: Kafka lets a batch exceed batch.size.
                assert!(batch.encoded().len() <= 1100, "{}", batch.encoded().len());
            }
        }
        counts
    }

    #[test]
    fn a_compressed_batch_is_full_by_its_estimated_size() {
        let mut plain = RecordAccumulator::new(1000, 0, Compression::None);
        let plain_counts = records_per_batch(&mut plain, 3);
        assert!(plain_counts.iter().all(|&n| n == plain_counts[0]));
        let mut zstd = RecordAccumulator::new(1000, 0, Compression::Zstd);
        let counts = records_per_batch(&mut zstd, 400);
        // At first the ratio is 1 and Kafka's 5% margin makes the batch smaller than a plain one;
        // each closed batch teaches the estimator a better ratio, so later batches hold more.
        assert!(
            counts[0] < plain_counts[0],
            "{counts:?} vs {plain_counts:?}"
        );
        assert!(counts[..50].windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        assert!(counts[399] > 2 * plain_counts[0], "{counts:?}");
        assert!(zstd.ratios.estimation("t") < 0.5);
    }

    #[test]
    fn a_batch_is_closed_once_and_a_retry_sends_the_same_bytes() {
        let done = Arc::new(Mutex::new(Vec::new()));
        let mut acc = RecordAccumulator::new(1 << 14, 0, Compression::Gzip);
        for i in 0..20 {
            acc.append(&tp(0), compressible(i, &done), 0);
        }
        let leader = |_: &TopicPartition| Some(1);
        let mut batch = acc.drain(1, 1 << 20, 0, leader, None).pop().unwrap();
        let sent = batch.encoded().clone();
        let ratio = acc.ratios.estimation("t");
        assert!(ratio < 1.0);
        let (header, records) = crate::storage::batch::decode_records(&sent).unwrap();
        assert_eq!(header.compression(), Ok(Compression::Gzip));
        assert_eq!(records.len(), 20);
        assert_eq!(batch.estimated_size_bytes(), sent.len());
        batch.attempts = 1;
        acc.reenqueue(batch);
        acc.append(&tp(0), compressible(99, &done), 0); // opens a new batch behind the retry
        let again = acc.drain(1, 1 << 20, 0, leader, None).pop().unwrap();
        assert_eq!(again.encoded(), &sent);
        assert_eq!(acc.ratios.estimation("t"), ratio, "learned from once only");
    }
}
