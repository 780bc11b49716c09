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

use std::collections::BTreeMap;

use samsa_sim::check::{
    FinalPartition, FinalRecord, FinalReplica, FinalState, MetadataLogStart, SnapshotPoint,
};

use super::recorder::{PartitionFigures, ReplicaFigures};
use crate::raft::driver::METADATA_LOG_DIR;
use crate::raft::snapshot;
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
        }
    }

    fn into_replica(self, hw: i64) -> FinalReplica {
        FinalReplica {
            high_watermark: hw.min(self.log_end_offset),
            log_end_offset: self.log_end_offset,
            records: self.records,
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
    let mut records = Vec::new();
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
            records.extend(decoded.into_iter().map(|r| FinalRecord {
                offset: r.offset,
                value: r.value.map(|v| String::from_utf8_lossy(&v).into_owned()),
            }));
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
        records,
    })
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
        let spec = BatchSpec {
            base_offset,
            ..BatchSpec::default()
        };
        encode_batch(&spec, &records).to_vec()
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
}
