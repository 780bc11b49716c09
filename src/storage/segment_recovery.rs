//! Loading a segment when its log is opened (Kafka's `LogSegment.sanityCheck`, `readNextOffset`
//! and `recover`): a segment below the recovery point keeps its indexes if they pass the checks;
//! any other is re-validated batch by batch and its indexes rebuilt.

use std::io;

use serde::{Deserialize, Serialize};

use crate::storage::batch::{self, BATCH_HEADER_LEN};
use crate::storage::leader_epoch::LeaderEpochFileCache;
use crate::storage::log::LogConfig;
use crate::storage::offset_index::OffsetIndex;
use crate::storage::segment::{write_file, LogSegment};
use crate::storage::time_index::{TimeIndex, TimestampOffset};
use crate::world::Disk;

/// What recovery did to one segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecovery {
    pub base_offset: i64,
    /// Re-validated batch by batch (at or above the recovery point, or its indexes not trusted).
    pub validated: bool,
    pub indexes_rebuilt: bool,
    /// Why the indexes were not trusted (missing, failed the sanity check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_problem: Option<String>,
    /// Valid batches found (when validated).
    pub batches: usize,
    pub truncated_bytes: u64,
    /// Why, and at which byte, the segment was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl LogSegment {
    /// Loads a segment below the recovery point with the indexes on disk, after Kafka's sanity
    /// check and a walk of the batch headers after the last index entry (Kafka's
    /// `readNextOffset`), which must end exactly at the file's end and at `successor_base`.
    /// `Ok(Err(why))`: the indexes are not to be trusted, the segment must be recovered.
    pub async fn load_trusted(
        disk: &Disk,
        dir: &str,
        base_offset: i64,
        successor_base: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> io::Result<Result<Self, String>> {
        let mut segment = LogSegment::empty(dir, base_offset, config, now_ms);
        for path in [&segment.index_path, &segment.time_index_path] {
            if !disk.exists(path) {
                return Ok(Err(format!("{path} is missing")));
            }
        }
        segment.size_bytes = disk.len(&segment.log_path)?;
        let max_bytes = config.segment_index_bytes;
        let offsets = disk.read_all(&segment.index_path).await?;
        let times = disk.read_all(&segment.time_index_path).await?;
        segment.offset_index = match OffsetIndex::parse(base_offset, max_bytes, &offsets) {
            Ok(index) => index,
            Err(e) => return Ok(Err(format!("{}: {e}", segment.index_path))),
        };
        segment.time_index = match TimeIndex::parse(base_offset, max_bytes, &times) {
            Ok(index) => index,
            Err(e) => return Ok(Err(format!("{}: {e}", segment.time_index_path))),
        };
        if let Err(why) = segment.check_indexes_fit(successor_base) {
            return Ok(Err(why));
        }
        segment.load_tail(disk, successor_base).await
    }

    fn check_indexes_fit(&self, successor_base: i64) -> Result<(), String> {
        let last = self.offset_index.last_entry();
        if last.offset >= successor_base || (last.position > 0 && last.position >= self.size_bytes)
        {
            return Err(format!(
                "{}: last entry (offset {}, position {}) is outside the segment (next segment at \
                 {successor_base}, {} bytes)",
                self.index_path, last.offset, last.position, self.size_bytes
            ));
        }
        let last = self.time_index.last_entry();
        if last.offset >= successor_base {
            return Err(format!(
                "{}: last entry (offset {}) is at or past the next segment's base {successor_base}",
                self.time_index_path, last.offset
            ));
        }
        Ok(())
    }

    /// Walks the batches after the last offset index entry: the segment's end, its largest
    /// timestamp (Kafka's `readLargestTimestamp`) and the first batch's timestamp.
    async fn load_tail(
        mut self,
        disk: &Disk,
        successor_base: i64,
    ) -> io::Result<Result<Self, String>> {
        let entry = self.offset_index.last_entry();
        let tail = disk
            .read_at(
                &self.log_path,
                entry.position,
                (self.size_bytes - entry.position) as usize,
            )
            .await?;
        let mut iter = batch::batches(&tail);
        let mut next = None;
        self.max_timestamp = self.time_index.last_entry();
        for (_, header) in iter.by_ref() {
            // Offsets increase, with gaps where the cleaner removed batches; the batch at the
            // last index entry holds its offset.
            let fits = match next {
                None => {
                    header.base_offset >= self.base_offset
                        && (entry.position == 0 || header.base_offset <= entry.offset)
                }
                Some(next) => header.base_offset >= next,
            };
            if !fits {
                return Ok(Err(format!(
                    "{}: batch at offset {} does not follow the index",
                    self.log_path, header.base_offset
                )));
            }
            if header.max_timestamp > self.max_timestamp.timestamp {
                self.max_timestamp = TimestampOffset {
                    timestamp: header.max_timestamp,
                    offset: header.last_offset(),
                };
            }
            next = Some(header.next_offset());
        }
        if let Some((position, e)) = iter.stopped_at() {
            let at = entry.position + position as u64;
            return Ok(Err(format!("{} at byte {at}: {e}", self.log_path)));
        }
        self.next_offset = next.unwrap_or(self.base_offset);
        if self.next_offset > successor_base {
            return Ok(Err(format!(
                "{} ends at offset {}, the next segment starts at {successor_base}",
                self.log_path, self.next_offset
            )));
        }
        self.bytes_since_last_index_entry = self.size_bytes - entry.position;
        if self.size_bytes > 0 {
            let first = disk.read_at(&self.log_path, 0, BATCH_HEADER_LEN).await?;
            self.rolling_based_timestamp =
                batch::parse_header(&first).ok().map(|h| h.max_timestamp);
        }
        Ok(Ok(self))
    }

    /// Kafka's `LogSegment.recover`: validates every batch (CRC-32C, framing, offsets increasing
    /// from the base offset: contiguous, except where the log cleaner removed batches),
    /// truncates the file after the valid prefix, rebuilds both indexes and assigns the batches'
    /// leader epochs to `epochs`.
    pub async fn recover(
        disk: &Disk,
        dir: &str,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
        epochs: &mut LeaderEpochFileCache,
    ) -> io::Result<(Self, SegmentRecovery)> {
        let mut segment = LogSegment::empty(dir, base_offset, config, now_ms);
        let bytes = disk.read_all(&segment.log_path).await?;
        let mut iter = batch::batches(&bytes);
        let mut stop = None;
        let mut batches = 0;
        for (position, header) in iter.by_ref() {
            if header.base_offset < segment.next_offset {
                let why = format!(
                    "batch at byte {position} has base offset {}, expected at least {}",
                    header.base_offset, segment.next_offset
                );
                stop = Some((position, why));
                break;
            }
            if !segment.offset_index.can_represent(header.last_offset()) {
                let why = format!("batch at byte {position} overflows the segment's offsets");
                stop = Some((position, why));
                break;
            }
            segment.index_batch(&header, position as u64);
            epochs.assign(header.partition_leader_epoch, header.base_offset);
            batches += 1;
        }
        let stop = stop.or_else(|| {
            iter.stopped_at()
                .map(|(position, error)| (position, format!("at byte {position}: {error}")))
        });
        let truncated_bytes = bytes.len() as u64 - segment.size_bytes;
        if let Some((position, _)) = &stop {
            assert_eq!(
                *position as u64, segment.size_bytes,
                "recovery stops after the valid prefix"
            );
            disk.truncate(&segment.log_path, segment.size_bytes).await?;
        }
        // As Kafka's recover: the largest timestamp goes into the time index.
        let max = segment.max_timestamp;
        segment
            .time_index
            .maybe_append(max.timestamp, max.offset, true);
        write_file(disk, &segment.index_path, &segment.offset_index.to_bytes()).await?;
        write_file(
            disk,
            &segment.time_index_path,
            &segment.time_index.to_bytes(),
        )
        .await?;
        let report = SegmentRecovery {
            base_offset,
            validated: true,
            indexes_rebuilt: true,
            index_problem: None,
            batches,
            truncated_bytes,
            reason: stop.map(|(_, why)| why),
        };
        Ok((segment, report))
    }
}
