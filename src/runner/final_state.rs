//! The final state of the cluster, read off the brokers' disks after the run: for each
//! partition of the committed metadata, its last leader's log below its high watermark. With
//! the leader alone holding data (until replication exists) the high watermark is the leader's
//! log end offset.

use std::collections::BTreeMap;

use samsa_sim::check::{FinalPartition, FinalRecord, FinalState};

use super::recorder::PartitionFigures;
use crate::storage::{batch, checkpoint};

/// `partitions`: the committed metadata's partitions at the end, by name (`orders-0`).
pub fn read(
    partitions: &BTreeMap<String, PartitionFigures>,
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
        let partition = meta
            .last_leader
            .and_then(|leader| disks.get(&format!("broker-{leader}")))
            .map(|files| read_partition(files, topic, index))
            .unwrap_or_default();
        state.partitions.insert(name.clone(), partition);
    }
    state
}

/// A partition's log as recovery would read it: every valid batch of its segments in offset
/// order, up to the first invalid one. The high watermark is where the last batch ends (the
/// leader alone is the ISR); the log start offset is the larger of the first segment's base and
/// the `log-start-offset-checkpoint` entry (retention writes it), so that records deleted by
/// retention are told apart from records lost, and an emptied log still has its place.
fn read_partition(
    files: &BTreeMap<String, Vec<u8>>,
    topic: &str,
    partition: i32,
) -> FinalPartition {
    let prefix = format!("{topic}-{partition}/");
    let mut committed = Vec::new();
    let (mut first_base, mut end) = (None, 0);
    for (path, bytes) in files.range(prefix.clone()..) {
        if !path.starts_with(&prefix) {
            break;
        }
        if !path.ends_with(".log") {
            continue;
        }
        let base: Option<i64> = path[prefix.len()..].trim_end_matches(".log").parse().ok();
        first_base = first_base.or(base);
        end = end.max(base.unwrap_or(0));
        let mut rest = &bytes[..];
        while let Ok(header) = batch::validate(rest) {
            let size = header.size_in_bytes();
            let Ok((_, decoded)) = batch::decode_records(&rest[..size]) else {
                break;
            };
            committed.extend(decoded.into_iter().map(|r| FinalRecord {
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
    FinalPartition {
        log_start_offset,
        high_watermark: end.max(log_start_offset),
        committed,
    }
}

/// Each controller's metadata log (`__cluster_metadata-0`) off its disk, as the epoch of each
/// entry by offset (one record per batch, the batch's partition leader epoch its entry's epoch),
/// up to the first invalid batch, as recovery would read it.
pub fn read_metadata_logs(
    disks: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
) -> BTreeMap<String, Vec<i32>> {
    let mut logs = BTreeMap::new();
    for (node, files) in disks
        .iter()
        .filter(|(node, _)| node.starts_with("controller-"))
    {
        let mut epochs = Vec::new();
        for (path, bytes) in files.range("__cluster_metadata-0/".to_string()..) {
            if !path.starts_with("__cluster_metadata-0/") {
                break;
            }
            if !path.ends_with(".log") {
                continue;
            }
            for (_, header) in batch::batches(bytes) {
                if header.base_offset != epochs.len() as i64 {
                    break;
                }
                for _ in 0..=header.last_offset_delta {
                    epochs.push(header.partition_leader_epoch);
                }
            }
        }
        logs.insert(node.clone(), epochs);
    }
    logs
}
