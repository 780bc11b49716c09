//! The final state of the cluster, read off the brokers' disks after the run: for each
//! partition of the committed metadata, every replica's log (each broker whose disk holds a
//! directory of it, of the current topic), and the committed log: its last leader's records.
//! The run stops without letting the cluster settle, so the leader's tail its followers have not
//! fetched yet counts too (an `acks=1` write acknowledged in the last milliseconds is not lost;
//! it is what the partition holds once its ISR catches up).
//!
//! A high watermark lives in memory (and in the `replication-offset-checkpoint` now and then),
//! so it is taken from the trace: the last one each replica reported, clamped to the log its disk
//! holds (a crash may have cut the log below it). The partition's high watermark is its last
//! leader's.
//!
//! Each record carries its batch's producer id and epoch, if it has them; a record of a
//! transactional batch, what became of its transaction as the log shows it: the next control
//! marker of its producer id decides (KIP-98: a COMMIT or ABORT marker closes every record of
//! the producer id before it that no earlier marker closed), and a record no marker follows yet
//! is `open`. The markers themselves are listed apart: they are not records a consumer reads.

use std::collections::BTreeMap;

use samsa_sim::check::{
    FinalMarker, FinalPartition, FinalRecord, FinalReplica, FinalState, MetadataLogStart,
    SnapshotPoint, TxnStatus,
};

use super::recorder::{PartitionFigures, ReplicaFigures};
use crate::raft::driver::METADATA_LOG_DIR;
use crate::raft::snapshot;
use crate::storage::batch::{BatchHeader, DecodedRecord};
use crate::storage::{batch, checkpoint};

/// The file naming the topic id a partition directory belongs to (Kafka's
/// `PartitionMetadataFile`, which the broker writes as it claims a directory).
const PARTITION_METADATA: &str = "partition.metadata";

/// `partitions`: the committed metadata's partitions at the end, by name (`orders-0`);
/// `replicas`: the last offsets each replica reported, by partition name then broker id;
/// `disks`: every node's files, by node (`broker-1`).
pub fn read(
    partitions: &BTreeMap<String, PartitionFigures>,
    replicas: &BTreeMap<String, BTreeMap<i32, ReplicaFigures>>,
    disks: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
) -> FinalState {
    let mut state = FinalState::default();
    for (name, meta) in partitions {
        let Some((topic, index)) = name.rsplit_once('-') else {
            continue;
        };
        let Ok(index) = index.parse::<i32>() else {
            continue;
        };
        let reported = replicas.get(name);
        let mut logs = BTreeMap::new();
        for (node, files) in disks {
            let Some(broker) = node
                .strip_prefix("broker-")
                .and_then(|id| id.parse::<i32>().ok())
            else {
                continue;
            };
            if let Some(log) = read_log(files, topic, index, &meta.topic_id) {
                let hw = reported
                    .and_then(|r| r.get(&broker))
                    .map_or(0, |figures| figures.hw);
                logs.insert(broker, (log, hw));
            }
        }
        let partition = meta
            .last_leader
            .and_then(|leader| logs.get(&leader))
            .map(|(log, hw)| log.committed(*hw))
            .unwrap_or_default();
        state.partitions.insert(name.clone(), partition);
        if !logs.is_empty() {
            let finals = logs
                .into_iter()
                .map(|(broker, (log, hw))| (broker, log.into_replica(hw)))
                .collect();
            state.replicas.insert(name.clone(), finals);
        }
    }
    state
}

/// One replica's log as recovery would read it.
struct ReplicaLog {
    log_start_offset: i64,
    log_end_offset: i64,
    records: Vec<FinalRecord>,
    markers: Vec<FinalMarker>,
}

impl ReplicaLog {
    /// The committed log, if this replica led last: all its records, with `hw` (its last
    /// reported high watermark) clamped to its log end, and never below its log start.
    fn committed(&self, hw: i64) -> FinalPartition {
        let high_watermark = hw.min(self.log_end_offset).max(self.log_start_offset);
        FinalPartition {
            log_start_offset: self.log_start_offset,
            high_watermark,
            committed: self.records.clone(),
            markers: self.markers.clone(),
        }
    }

    fn into_replica(self, hw: i64) -> FinalReplica {
        FinalReplica {
            high_watermark: hw.min(self.log_end_offset),
            log_end_offset: self.log_end_offset,
            records: self.records,
            markers: self.markers,
        }
    }
}

/// A replica's log of `topic`-`partition` as recovery would read it: every valid batch of its
/// segments in offset order, up to the first invalid one; `None` if the disk holds no directory
/// of it, or one of another topic of that name (`topic_id`) that a deletion left behind. The log
/// end is where the last batch ends (or the last segment's base, if it is empty); the log start
/// offset is the larger of the first segment's base and the `log-start-offset-checkpoint` entry
/// (retention writes it), so that records deleted by retention are told apart from records
/// lost, and an emptied log still has its place.
fn read_log(
    files: &BTreeMap<String, Vec<u8>>,
    topic: &str,
    partition: i32,
    topic_id: &str,
) -> Option<ReplicaLog> {
    let prefix = format!("{topic}-{partition}/");
    let mut in_dir = files
        .range(prefix.clone()..)
        .take_while(|(path, _)| path.starts_with(&prefix))
        .peekable();
    in_dir.peek()?;
    if !of_topic(
        files.get(&format!("{prefix}{PARTITION_METADATA}")),
        topic_id,
    ) {
        return None;
    }
    let mut contents = LogContents::default();
    let (mut first_base, mut end) = (None, 0);
    for (path, bytes) in in_dir.filter(|(path, _)| path.ends_with(".log")) {
        let base: Option<i64> = path[prefix.len()..].trim_end_matches(".log").parse().ok();
        first_base = first_base.or(base);
        end = end.max(base.unwrap_or(0));
        let mut rest = &bytes[..];
        while let Ok(header) = batch::validate(rest) {
            let size = header.size_in_bytes();
            let Ok((_, decoded)) = batch::decode_records(&rest[..size]) else {
                break;
            };
            contents.push_batch(&header, decoded);
            end = end.max(header.next_offset());
            rest = &rest[size..];
        }
    }
    let checkpointed = files
        .get(checkpoint::LOG_START_OFFSET_CHECKPOINT)
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .and_then(|text| checkpoint::OffsetCheckpoint::parse(text).ok())
        .and_then(|c| c.get(topic, partition))
        .unwrap_or(0);
    let log_start_offset = first_base.unwrap_or(0).max(checkpointed);
    Some(ReplicaLog {
        log_start_offset,
        log_end_offset: end.max(log_start_offset),
        records: contents.records,
        markers: contents.markers,
    })
}

/// A log's records and transaction markers, read batch by batch in offset order.
#[derive(Default)]
struct LogContents {
    records: Vec<FinalRecord>,
    markers: Vec<FinalMarker>,
    /// The records of each producer id's transaction that no marker has closed yet, by index.
    open: BTreeMap<i64, Vec<usize>>,
}

/// The control record types of a marker's key (Kafka's `ControlRecordType`).
const CONTROL_TYPE_ABORT: i16 = 0;
const CONTROL_TYPE_COMMIT: i16 = 1;

impl LogContents {
    fn push_batch(&mut self, header: &BatchHeader, decoded: Vec<DecodedRecord>) {
        let producer_id = header.producer_id;
        if header.is_control() {
            for record in decoded {
                let Some(commit) = record.key.as_deref().and_then(marker_commits) else {
                    continue;
                };
                self.markers.push(FinalMarker {
                    offset: record.offset,
                    producer_id,
                    epoch: header.producer_epoch,
                    commit,
                });
                let status = if commit {
                    TxnStatus::Committed
                } else {
                    TxnStatus::Aborted
                };
                for index in self.open.remove(&producer_id).unwrap_or_default() {
                    self.records[index].txn = Some(status);
                }
            }
            return;
        }
        let has_producer = producer_id >= 0;
        let transactional = header.is_transactional() && has_producer;
        for record in decoded {
            if transactional {
                self.open
                    .entry(producer_id)
                    .or_default()
                    .push(self.records.len());
            }
            self.records.push(FinalRecord {
                offset: record.offset,
                value: record
                    .value
                    .map(|v| String::from_utf8_lossy(&v).into_owned()),
                producer_id: has_producer.then_some(producer_id),
                epoch: has_producer.then_some(header.producer_epoch),
                txn: transactional.then_some(TxnStatus::Open),
            });
        }
    }
}

/// Whether a control record's key (version i16, type i16) is a COMMIT marker (`Some(true)`) or
/// an ABORT one (`Some(false)`); `None` for another type or a key too short.
fn marker_commits(key: &[u8]) -> Option<bool> {
    let kind = i16::from_be_bytes(key.get(2..4)?.try_into().ok()?);
    match kind {
        CONTROL_TYPE_ABORT => Some(false),
        CONTROL_TYPE_COMMIT => Some(true),
        _ => None,
    }
}

/// Whether a directory's `partition.metadata` names `topic_id` (or there is nothing to compare).
fn of_topic(metadata: Option<&Vec<u8>>, topic_id: &str) -> bool {
    let named = metadata
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("topic_id:"))
                .map(str::trim)
        });
    match named {
        Some(named) => topic_id.is_empty() || named == topic_id,
        None => true,
    }
}

/// Each controller's metadata log (`__cluster_metadata-0`) off its disk, as the epoch of each
/// entry by offset from the log's first batch (one record per batch, the batch's partition
/// leader epoch its entry's epoch), up to the first invalid batch, as recovery would read it;
/// and, for a log that does not start at 0 or has a snapshot, where it starts and its latest
/// whole snapshot. As a restart would (Kafka's `truncateToLatestSnapshot`), a log that does not
/// continue the latest snapshot counts as empty from the snapshot's end.
pub fn read_metadata_logs(
    disks: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
) -> (
    BTreeMap<String, Vec<i32>>,
    BTreeMap<String, MetadataLogStart>,
) {
    let mut logs = BTreeMap::new();
    let mut starts = BTreeMap::new();
    for (node, files) in disks
        .iter()
        .filter(|(node, _)| node.starts_with("controller-"))
    {
        let (mut start, mut epochs) = (None::<i64>, Vec::new());
        let mut snapshots = Vec::new();
        for (path, bytes) in files.range(format!("{METADATA_LOG_DIR}/")..) {
            let Some(name) = path.strip_prefix(&format!("{METADATA_LOG_DIR}/")) else {
                break;
            };
            if let Some((id, false)) = snapshot::parse_file_name(name) {
                if snapshot::decode(bytes).is_ok() {
                    snapshots.push(id);
                }
                continue;
            }
            if !path.ends_with(".log") {
                continue;
            }
            for (_, header) in batch::batches(bytes) {
                let first = *start.get_or_insert(header.base_offset);
                if header.base_offset != first + epochs.len() as i64 {
                    break;
                }
                for _ in 0..=header.last_offset_delta {
                    epochs.push(header.partition_leader_epoch);
                }
            }
        }
        let mut start = start.unwrap_or(0);
        let latest = snapshots
            .into_iter()
            .filter(|s| s.end_offset >= start)
            .max();
        if let Some(id) = latest {
            let epoch_at = |offset: i64| {
                usize::try_from(offset - start)
                    .ok()
                    .and_then(|i| epochs.get(i).copied())
            };
            let end = start + epochs.len() as i64;
            let continues = id.end_offset <= end
                && (id.end_offset == start || epoch_at(id.end_offset - 1) == Some(id.epoch));
            if !continues {
                start = id.end_offset;
                epochs.clear();
            }
        }
        if start != 0 || latest.is_some() {
            let snapshot = latest.map(|id| SnapshotPoint {
                end_offset: id.end_offset,
                epoch: id.epoch,
            });
            starts.insert(
                node.clone(),
                MetadataLogStart {
                    log_start: start,
                    snapshot,
                },
            );
        }
        logs.insert(node.clone(), epochs);
    }
    (logs, starts)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::storage::batch::{encode_batch, BatchSpec, Record};

    /// A stored batch at `base_offset` holding `values`.
    fn stored(base_offset: i64, values: &[&str]) -> Vec<u8> {
        let spec = BatchSpec {
            base_offset,
            ..BatchSpec::default()
        };
        stored_as(spec, values)
    }

    /// A stored batch of `spec` holding `values`.
    fn stored_as(spec: BatchSpec, values: &[&str]) -> Vec<u8> {
        let records: Vec<Record> = (0..)
            .zip(values)
            .map(|(delta, value)| Record {
                offset_delta: delta,
                timestamp_delta: 0,
                key: None,
                value: Some(Bytes::from(value.to_string())),
                headers: vec![],
            })
            .collect();
        encode_batch(&spec, &records).to_vec()
    }

    /// A transactional batch of producer `pid` in `epoch` at `base_offset` holding `values`.
    fn in_txn(base_offset: i64, (pid, epoch): (i64, i16), values: &[&str]) -> Vec<u8> {
        let spec = BatchSpec {
            base_offset,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: 0,
            transactional: true,
            ..BatchSpec::default()
        };
        stored_as(spec, values)
    }

    /// A control batch at `offset`: producer `pid`'s COMMIT (or ABORT) marker in `epoch`.
    fn marker(offset: i64, (pid, epoch): (i64, i16), commit: bool) -> Vec<u8> {
        let spec = BatchSpec {
            base_offset: offset,
            producer_id: pid,
            producer_epoch: epoch,
            transactional: true,
            control: true,
            ..BatchSpec::default()
        };
        let kind: i16 = if commit { 1 } else { 0 };
        let key = [0i16.to_be_bytes(), kind.to_be_bytes()].concat();
        let record = Record {
            offset_delta: 0,
            timestamp_delta: 0,
            key: Some(Bytes::from(key)),
            value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
            headers: vec![],
        };
        encode_batch(&spec, &[record]).to_vec()
    }

    /// A broker's files: a partition directory of `topic_id` with one segment of `batches`.
    fn broker_disk(topic_id: &str, batches: &[Vec<u8>]) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([
            (
                "orders-0/00000000000000000000.log".to_string(),
                batches.concat(),
            ),
            (
                format!("orders-0/{PARTITION_METADATA}"),
                format!("version: 0\ntopic_id: {topic_id}\n").into_bytes(),
            ),
        ])
    }

    fn values(records: &[FinalRecord]) -> Vec<(i64, &str)> {
        records
            .iter()
            .map(|r| (r.offset, r.value.as_deref().unwrap_or("null")))
            .collect()
    }

    #[test]
    fn reads_every_replica_and_commits_the_last_leaders_log() {
        let head = stored(0, &["a", "b", "c"]);
        let disks = BTreeMap::from([
            (
                "broker-1".to_string(),
                broker_disk("t1", &[head.clone(), stored(3, &["d", "e"])]),
            ),
            (
                "broker-2".to_string(),
                broker_disk("t1", &[head.clone(), stored(3, &["x"])]),
            ),
            // A directory a deleted topic of the same name left behind.
            (
                "broker-3".to_string(),
                broker_disk("t0", std::slice::from_ref(&head)),
            ),
            ("broker-4".to_string(), BTreeMap::new()),
            ("controller-1".to_string(), broker_disk("t1", &[head])),
        ]);
        let partitions = BTreeMap::from([(
            "orders-0".to_string(),
            PartitionFigures {
                topic_id: "t1".to_string(),
                leader: 1,
                last_leader: Some(1),
                ..PartitionFigures::default()
            },
        )]);
        let figures = |leo, hw| ReplicaFigures { leo, hw };
        // broker-2 reported a high watermark past what its disk holds (its tail was cut).
        let replicas = BTreeMap::from([(
            "orders-0".to_string(),
            BTreeMap::from([(1, figures(5, 4)), (2, figures(6, 6)), (3, figures(3, 3))]),
        )]);
        let state = read(&partitions, &replicas, &disks);

        let partition = &state.partitions["orders-0"];
        assert_eq!(
            (partition.log_start_offset, partition.high_watermark),
            (0, 4)
        );
        assert_eq!(
            values(&partition.committed),
            vec![(0, "a"), (1, "b"), (2, "c"), (3, "d"), (4, "e")]
        );
        let replicas = &state.replicas["orders-0"];
        assert_eq!(replicas.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(
            (replicas[&1].high_watermark, replicas[&1].log_end_offset),
            (4, 5)
        );
        assert_eq!(values(&replicas[&1].records).len(), 5);
        assert_eq!(
            (replicas[&2].high_watermark, replicas[&2].log_end_offset),
            (4, 4)
        );
        assert_eq!(
            values(&replicas[&2].records),
            vec![(0, "a"), (1, "b"), (2, "c"), (3, "x")]
        );
    }

    #[test]
    fn a_replica_that_never_reported_has_high_watermark_zero() {
        let disks = BTreeMap::from([(
            "broker-1".to_string(),
            broker_disk("t1", &[stored(0, &["a", "b"])]),
        )]);
        let partitions = BTreeMap::from([(
            "orders-0".to_string(),
            PartitionFigures {
                topic_id: "t1".to_string(),
                last_leader: Some(1),
                ..PartitionFigures::default()
            },
        )]);
        let state = read(&partitions, &BTreeMap::new(), &disks);
        assert_eq!(state.partitions["orders-0"].high_watermark, 0);
        assert_eq!(state.partitions["orders-0"].committed.len(), 2);
        let replica = &state.replicas["orders-0"][&1];
        assert_eq!((replica.high_watermark, replica.log_end_offset), (0, 2));
        assert_eq!(replica.records.len(), 2);
    }

    #[test]
    fn each_transactional_record_takes_the_status_of_its_producers_next_marker() {
        let idempotent = BatchSpec {
            base_offset: 2,
            producer_id: 9,
            producer_epoch: 0,
            base_sequence: 0,
            ..BatchSpec::default()
        };
        let disks = BTreeMap::from([(
            "broker-1".to_string(),
            broker_disk(
                "t1",
                &[
                    in_txn(0, (7, 1), &["t7-0", "t7-1"]),
                    stored_as(idempotent, &["i9-0"]),
                    in_txn(3, (8, 0), &["t8-0"]),
                    marker(4, (7, 1), true),
                    in_txn(5, (7, 2), &["t7-2"]),
                    marker(6, (8, 0), false),
                    stored(7, &["plain"]),
                ],
            ),
        )]);
        let partitions = BTreeMap::from([(
            "orders-0".to_string(),
            PartitionFigures {
                topic_id: "t1".to_string(),
                last_leader: Some(1),
                ..PartitionFigures::default()
            },
        )]);
        let state = read(&partitions, &BTreeMap::new(), &disks);
        let partition = &state.partitions["orders-0"];
        type Seen = (i64, Option<i64>, Option<i16>, Option<TxnStatus>);
        let seen: Vec<Seen> = partition
            .committed
            .iter()
            .map(|r| (r.offset, r.producer_id, r.epoch, r.txn))
            .collect();
        use TxnStatus::{Aborted, Committed, Open};
        assert_eq!(
            seen,
            vec![
                (0, Some(7), Some(1), Some(Committed)),
                (1, Some(7), Some(1), Some(Committed)),
                (2, Some(9), Some(0), None),
                (3, Some(8), Some(0), Some(Aborted)),
                (5, Some(7), Some(2), Some(Open)),
                (7, None, None, None),
            ]
        );
        assert_eq!(
            partition.markers,
            vec![
                FinalMarker {
                    offset: 4,
                    producer_id: 7,
                    epoch: 1,
                    commit: true
                },
                FinalMarker {
                    offset: 6,
                    producer_id: 8,
                    epoch: 0,
                    commit: false
                },
            ]
        );
        let replica = &state.replicas["orders-0"][&1];
        assert_eq!(replica.markers, partition.markers);
        assert_eq!(replica.records, partition.committed);
        // A log without producer ids serializes as before: no new keys.
        let plain = read(
            &partitions,
            &BTreeMap::new(),
            &BTreeMap::from([(
                "broker-1".to_string(),
                broker_disk("t1", &[stored(0, &["a"])]),
            )]),
        );
        let text = serde_json::to_string(&plain).unwrap();
        assert!(
            !text.contains("producer_id") && !text.contains("markers"),
            "{text}"
        );
    }
}
