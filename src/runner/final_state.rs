//! The final state of the cluster, read off the brokers' disks after the run: for each
//! partition, the leader's log below its high watermark. With the leader alone in the ISR (until
//! replication exists) the high watermark is the leader's log end offset.

use std::collections::BTreeMap;

use samsa_sim::check::{FinalPartition, FinalRecord, FinalState};

use crate::metadata::MetadataImage;
use crate::storage::batch;

pub fn read(
    metadata: &MetadataImage,
    disks: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
) -> FinalState {
    let mut state = FinalState::default();
    for (tp, meta) in metadata.partitions() {
        let name = tp.to_string();
        let files = disks.get(&format!("broker-{}", meta.leader));
        let records = files
            .map(|files| read_partition(files, &name))
            .unwrap_or_default();
        let high_watermark = records
            .last()
            .map(|r: &FinalRecord| r.offset + 1)
            .unwrap_or(0);
        state.partitions.insert(
            name,
            FinalPartition {
                log_start_offset: records.first().map(|r| r.offset).unwrap_or(0),
                high_watermark,
                committed: records,
            },
        );
    }
    state
}

/// Every valid record of a partition's segments, in offset order, stopping at the first invalid
/// batch as recovery would.
fn read_partition(files: &BTreeMap<String, Vec<u8>>, partition: &str) -> Vec<FinalRecord> {
    let prefix = format!("{partition}/");
    let mut records = Vec::new();
    for (path, bytes) in files.range(prefix.clone()..) {
        if !path.starts_with(&prefix) {
            break;
        }
        if !path.ends_with(".log") {
            continue;
        }
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
            rest = &rest[size..];
        }
    }
    records
}

/// Each controller's metadata log (`__cluster_metadata-0`) off its disk, as the epoch of each
/// entry by offset (one record per batch, the batch's partition leader epoch its entry's epoch),
/// up to the first invalid batch, as recovery would read it.
pub fn read_metadata_logs(disks: &BTreeMap<String, BTreeMap<String, Vec<u8>>>) -> BTreeMap<String, Vec<i32>> {
    let mut logs = BTreeMap::new();
    for (node, files) in disks.iter().filter(|(node, _)| node.starts_with("controller-")) {
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
