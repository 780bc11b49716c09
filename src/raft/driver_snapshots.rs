//! The driver's snapshots (KIP-630): recovering them at a start, writing one of the state
//! machine's image when enough was committed (Kafka's `SnapshotGenerator`, by
//! `metadata.log.max.record.bytes.between.snapshots` and `metadata.log.max.snapshot.interval.ms`),
//! deleting the log below an older snapshot by retention (`KafkaMetadataLog`'s cleaning, by
//! `metadata.max.retention.bytes` and `metadata.max.retention.ms`), and both sides of
//! `FetchSnapshot`.
//!
//! Simplified from Kafka: a controller's `LastContainedLogTimestamp` is the time its entry below
//! the end offset was applied (Kafka's is the batch's append time); a snapshot is written in one
//! step of the driver's loop rather than by a background writer.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use bytes::Bytes;
use serde_json::json;

use super::{Controller, ControllerContext, METADATA_LOG_DIR};
use crate::raft::core::FETCH_SNAPSHOT_MAX_BYTES;
use crate::raft::messages::{Entry, Message, SnapshotBody, SnapshotId};
use crate::raft::snapshot;
use crate::storage::log::Log;

/// What a start found on the disk.
pub(super) struct Recovered {
    /// The whole snapshots kept, oldest first.
    pub ids: BTreeSet<SnapshotId>,
    /// The log's entries from its (possibly moved) start offset.
    pub entries: Vec<Entry>,
    /// The latest snapshot and its records, to load into the state machine.
    pub latest: Option<(SnapshotId, Vec<Bytes>)>,
    /// Each snapshot's `LastContainedLogTimestamp`, for retention by time.
    pub times: BTreeMap<SnapshotId, i64>,
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// Kafka's `recoverSnapshots` and `truncateToLatestSnapshot`: partial files and snapshots
/// below the log start go, a snapshot that does not decode goes (with an event), and a log
/// that does not continue the latest snapshot (a follower that crashed after fetching one,
/// before its log was emptied) restarts empty at its end offset. A log that starts past 0 with
/// no snapshot holding the state below it cannot be restored: the controller stops.
pub(super) async fn recover(
    ctx: &ControllerContext,
    log: &mut Log,
    mut entries: Vec<Entry>,
) -> io::Result<Recovered> {
    let disk = &ctx.disk;
    let dir = METADATA_LOG_DIR;
    let mut times = BTreeMap::new();
    let mut latest = None;
    for id in snapshot::recover(disk, dir).await?.into_iter().rev() {
        if id.end_offset < log.log_start_offset() {
            snapshot::delete(disk, dir, id).await?;
            continue;
        }
        match snapshot::decode(&snapshot::read(disk, dir, id).await?) {
            Ok(decoded) => {
                times.insert(id, decoded.last_contained_ms);
                latest.get_or_insert((id, decoded.records));
            }
            Err(error) => {
                let detail =
                    json!({ "end_offset": id.end_offset, "epoch": id.epoch, "error": error });
                ctx.event("raft-snapshot-invalid", detail);
                snapshot::delete(disk, dir, id).await?;
            }
        }
    }
    let start = log.log_start_offset();
    let Some((id, _)) = &latest else {
        if start > 0 {
            return Err(invalid(format!(
                "{dir}: the log starts at {start} and no snapshot holds the state below it"
            )));
        }
        return Ok(Recovered {
            ids: BTreeSet::new(),
            entries,
            latest,
            times,
        });
    };
    let id = *id;
    let end = start + entries.len() as i64;
    let epoch_at = |offset: i64| {
        usize::try_from(offset - start)
            .ok()
            .and_then(|i| entries.get(i))
            .map(|e| e.epoch)
    };
    let continues = id.end_offset <= end
        && (id.end_offset == start || epoch_at(id.end_offset - 1) == Some(id.epoch));
    let at_start = times.keys().any(|s| s.end_offset == start);
    if !continues {
        log.truncate_fully_and_start_at(id.end_offset, ctx.clock.now_ms())
            .await?;
        entries.clear();
    } else if start > 0 && !at_start {
        // The snapshot at the log start did not decode: the log starts at the latest one.
        log.advance_log_start_offset(id.end_offset).await?;
        entries.drain(..(id.end_offset - start) as usize);
    }
    if log.log_start_offset() == id.end_offset {
        for older in times
            .keys()
            .copied()
            .filter(|s| *s < id)
            .collect::<Vec<_>>()
        {
            snapshot::delete(disk, dir, older).await?;
            times.remove(&older);
        }
    }
    Ok(Recovered {
        ids: times.keys().copied().collect(),
        entries,
        latest,
        times,
    })
}

/// When the next snapshot is due.
pub(super) struct SnapshotState {
    /// Bytes of committed batches applied since the last snapshot (Kafka's
    /// `SnapshotGenerator` counts the batches' `sizeInBytes`).
    bytes_since: u64,
    last_snapshot_ms: u64,
    /// When the last applied entry was applied, on the node's clock.
    last_applied_ms: i64,
    times: BTreeMap<SnapshotId, i64>,
}

/// A one-record batch's size in the log beyond its value: the batch header (61 bytes) and the
/// record's own framing.
const BATCH_OVERHEAD_BYTES: u64 = 61 + 8;

impl SnapshotState {
    pub(super) fn new(now_ms: u64, times: BTreeMap<SnapshotId, i64>) -> Self {
        SnapshotState {
            bytes_since: 0,
            last_snapshot_ms: now_ms,
            last_applied_ms: 0,
            times,
        }
    }

    pub(super) fn applied(&mut self, now_ms: i64, entry: &Entry) {
        self.bytes_since += entry.data.len() as u64 + BATCH_OVERHEAD_BYTES;
        self.last_applied_ms = now_ms;
    }

    fn reset(&mut self, now_ms: u64) {
        self.bytes_since = 0;
        self.last_snapshot_ms = now_ms;
    }
}

impl Controller {
    fn snapshot_event(&self, id: SnapshotId, source: &str, records: usize) {
        let detail = json!({
            "end_offset": id.end_offset,
            "epoch": id.epoch,
            "source": source,
            "records": records,
        });
        self.ctx.event("raft-snapshot", detail);
    }

    /// The state machine takes a snapshot's state; the log below its end is applied.
    pub(super) fn load_snapshot(&mut self, id: SnapshotId, records: &[Bytes], source: &str) {
        let now_ms = self.now_ms();
        if let Some(machine) = self.machine.as_mut() {
            machine.load_snapshot(now_ms, id.end_offset, records);
        }
        self.applied = id.end_offset;
        self.snapshots.reset(now_ms);
        self.snapshot_event(id, source, records.len());
    }

    /// Writes a snapshot of the applied state when one is due, then applies retention.
    pub(super) async fn maybe_snapshot(&mut self) -> io::Result<()> {
        let config = self.ctx.metadata_log;
        let now_ms = self.now_ms();
        let state = &self.snapshots;
        let newest = self.core.latest_snapshot().map_or(0, |s| s.end_offset);
        let by_time = config.max_snapshot_interval_ms > 0
            && now_ms >= state.last_snapshot_ms + config.max_snapshot_interval_ms
            && state.bytes_since > 0;
        let due = state.bytes_since >= config.max_bytes_between_snapshots || by_time;
        if !due || self.applied <= newest {
            return Ok(());
        }
        let Some(records) = self.machine.as_ref().and_then(|m| m.snapshot()) else {
            return Ok(());
        };
        let epoch = self
            .core
            .epoch_at(self.applied - 1)
            .expect("the applied log ends at an entry or a snapshot");
        let id = SnapshotId {
            end_offset: self.applied,
            epoch,
        };
        let last_contained_ms = self.snapshots.last_applied_ms;
        let bytes = snapshot::encode(id, last_contained_ms, &records);
        snapshot::write(&self.ctx.disk, METADATA_LOG_DIR, id, &bytes).await?;
        self.core.snapshot_written(id);
        self.snapshots.times.insert(id, last_contained_ms);
        self.snapshots.reset(now_ms);
        self.snapshot_event(id, "generated", records.len());
        self.clean().await
    }

    /// Kafka's cleaning of the metadata log: while the log is over `metadata.max.retention.bytes`
    /// or the oldest snapshot over `metadata.max.retention.ms`, the log start moves to the next
    /// snapshot, the segments wholly below it and the older snapshots are deleted. The latest
    /// snapshot always stays.
    async fn clean(&mut self) -> io::Result<()> {
        let config = self.ctx.metadata_log;
        let now_ms = self.ctx.clock.now_ms();
        loop {
            let mut ids = self.core.snapshots().iter().copied();
            let (Some(oldest), Some(next)) = (ids.next(), ids.next()) else {
                return Ok(());
            };
            let over_size = config.max_retention_bytes >= 0
                && self.log.size_in_bytes() as i64 > config.max_retention_bytes;
            let over_time = config.max_retention_ms >= 0
                && self
                    .snapshots
                    .times
                    .get(&oldest)
                    .is_some_and(|&t| now_ms - t > config.max_retention_ms);
            if !(over_size || over_time) || !self.core.delete_before_snapshot(next) {
                return Ok(());
            }
            self.log.advance_log_start_offset(next.end_offset).await?;
            let deleted = self.log.delete_segments_below(next.end_offset).await?;
            let older: Vec<SnapshotId> = self
                .snapshots
                .times
                .range(..next)
                .map(|(&s, _)| s)
                .collect();
            for id in older {
                snapshot::delete(&self.ctx.disk, METADATA_LOG_DIR, id).await?;
                self.snapshots.times.remove(&id);
            }
            let detail = json!({ "log_start": next.end_offset, "deleted_segments": deleted });
            self.ctx.event("raft-log-start", detail);
        }
    }

    /// The leader's answer to a `FetchSnapshot` the core accepted: bytes of the snapshot file.
    pub(super) async fn serve_snapshot(&self, id: SnapshotId, position: i64) -> Message {
        let read = snapshot::read_chunk(
            &self.ctx.disk,
            METADATA_LOG_DIR,
            id,
            position as u64,
            FETCH_SNAPSHOT_MAX_BYTES,
        )
        .await;
        let body = match read {
            Ok((size, bytes)) if position as u64 <= size => SnapshotBody::Chunk {
                snapshot: id,
                size: size as i64,
                position,
                bytes: Bytes::from(bytes),
            },
            // Deleted by retention meanwhile, or a position past its end.
            _ => SnapshotBody::NotFound,
        };
        Message::FetchSnapshotResponse {
            epoch: self.core.epoch(),
            leader: self.core.leader(),
            body,
        }
    }

    pub(super) async fn write_snapshot_chunk(
        &self,
        id: SnapshotId,
        position: i64,
        bytes: &[u8],
    ) -> io::Result<()> {
        snapshot::write_chunk(&self.ctx.disk, METADATA_LOG_DIR, id, position as u64, bytes).await
    }

    /// A follower's fetched snapshot: frozen (fsync, rename), then the log emptied at its end
    /// offset and the older snapshots deleted, then loaded. A crash between the rename and the
    /// truncation is repaired by `recover`. A fetched snapshot that does not decode stops the
    /// controller, as Kafka fails on a snapshot it cannot read.
    pub(super) async fn install_snapshot(&mut self, id: SnapshotId) -> io::Result<()> {
        let disk = self.ctx.disk.clone();
        snapshot::freeze(&disk, METADATA_LOG_DIR, id).await?;
        let decoded = snapshot::decode(&snapshot::read(&disk, METADATA_LOG_DIR, id).await?)
            .map_err(|e| invalid(format!("fetched snapshot {id:?}: {e}")))?;
        self.log
            .truncate_fully_and_start_at(id.end_offset, self.ctx.clock.now_ms())
            .await?;
        let older: Vec<SnapshotId> = self
            .snapshots
            .times
            .keys()
            .copied()
            .filter(|s| *s != id)
            .collect();
        for old in older {
            snapshot::delete(&disk, METADATA_LOG_DIR, old).await?;
        }
        self.snapshots.times = BTreeMap::from([(id, decoded.last_contained_ms)]);
        self.load_snapshot(id, &decoded.records, "fetched");
        Ok(())
    }
}
