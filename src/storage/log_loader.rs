//! Opening a partition log: Kafka's `LogLoader`, for a broker that did not shut down cleanly
//! (Samsa's brokers never do: they are killed or crash).
//!
//! 1. A cleaned segment whose swap was interrupted is put in place (`<base>.log.swap` replaces
//!    `<base>.log`, its indexes are rebuilt), as Kafka's `LogLoader` completes `.swap` files.
//!    Stray files go: indexes without their `.log` (a crash while deleting a segment), the
//!    `.cleaned` files of an interrupted cleaning, and temporary files of an interrupted
//!    checkpoint write.
//! 2. The recovery point comes from the log directory's `recovery-point-offset-checkpoint`
//!    (missing or unreadable: 0, everything is re-validated, as Kafka's `LogManager` resets it).
//! 3. A segment wholly below the recovery point was fsynced with its indexes: they are kept
//!    after Kafka's sanity check and a walk of the batch headers after the last index entry; a
//!    missing or failing index is rebuilt from the log, never trusted.
//! 4. The segment holding the recovery point and every later one are re-validated batch by
//!    batch (CRC-32C, lengths, offsets contiguous); their indexes are rebuilt, and the log is
//!    truncated at the first torn or corrupt batch, later segments deleted. The leader epoch
//!    cache is rebuilt from these batches (a missing, unreadable or empty
//!    `leader-epoch-checkpoint` makes the whole log re-validated, to rebuild it all).
//! 5. The log start offset is the larger of its checkpoint and the first segment's base; a log
//!    ending below its checkpointed start is emptied and starts there (Kafka's
//!    `deleteSegmentsIfLogStartGreaterThanLogEnd`). The epoch cache is cut to the log.
//!
//! Nothing is fsynced here and the recovery point stays at most the checkpoint's, as in Kafka: a
//! crash during or soon after recovery recovers the same segments again. A checkpoint above the
//! recovered log end is rewritten down to it.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use serde::{Deserialize, Serialize};

use crate::storage::checkpoint::{self, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT};
use crate::storage::leader_epoch::{LeaderEpochFileCache, LEADER_EPOCH_CHECKPOINT};
use crate::storage::log::{parse_partition_dir, Log, LogConfig};
use crate::storage::producer_state::ProducerStateManager;
use crate::storage::segment::{
    index_file_name, log_file_name, time_index_file_name, LogSegment, SegmentRecovery,
    CLEANED_SUFFIX, SWAP_SUFFIX,
};
use crate::storage::txn_index::txn_index_file_name;

/// Kafka's `LogFileUtils.DELETED_FILE_SUFFIX` (Samsa deletes at once and never writes one).
const DELETED_SUFFIX: &str = ".deleted";
use crate::world::Disk;

/// What `Log::open` found and did; part of a run's record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryReport {
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    /// The recovery point read from `recovery-point-offset-checkpoint` (0 if none).
    pub recovery_point_checkpoint: i64,
    /// Bytes cut from segments, in all.
    pub truncated_bytes: u64,
    /// Why, and where, the log was cut.
    pub reason: Option<String>,
    /// Batches re-validated.
    pub batches: usize,
    /// Each segment found, oldest first.
    pub segments: Vec<SegmentRecovery>,
    /// Base offsets of the segments deleted: after a cut in an earlier one, or all of them when
    /// the log ended below its checkpointed start offset.
    pub segments_deleted: Vec<i64>,
    /// Stray files removed: indexes without a segment, temporary files.
    pub files_deleted: Vec<String>,
    /// Base offsets of the cleaned segments whose interrupted swap was completed (the segments
    /// they replaced are in `segments_deleted`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub swaps_completed: Vec<i64>,
    /// Checkpoint files that could not be read (and were treated as absent).
    pub problems: Vec<String>,
    /// The leader epoch cache was rebuilt from the batches, its checkpoint being unusable.
    pub leader_epochs_rebuilt: bool,
}

/// The files of a partition directory.
#[derive(Default)]
struct DirListing {
    /// Base offsets of the `.log` files.
    segments: Vec<i64>,
    /// Index files whose `.log` is missing, and temporary files.
    strays: Vec<String>,
    /// Base offsets of the `.log.swap` files: cleaned segments to put in place.
    swaps: Vec<i64>,
}

/// A segment file's base offset: its name without the suffix, 20 digits.
fn base_offset_of(name: &str, suffix: &str) -> Option<i64> {
    let stem = name.strip_suffix(suffix)?;
    let offset: i64 = stem.parse().ok()?;
    (stem.len() == 20 && offset >= 0).then_some(offset)
}

fn list_dir(disk: &Disk, dir: &str) -> io::Result<DirListing> {
    let prefix = format!("{dir}/");
    let files: BTreeSet<String> = disk.list(&prefix).into_iter().collect();
    let mut listing = DirListing::default();
    for path in &files {
        let name = &path[prefix.len()..];
        if let Some(base) = name
            .strip_suffix(SWAP_SUFFIX)
            .and_then(|log| base_offset_of(log, ".log"))
        {
            listing.swaps.push(base);
        } else if name.ends_with(CLEANED_SUFFIX)
            || name.ends_with(SWAP_SUFFIX)
            || name.ends_with(DELETED_SUFFIX)
        {
            // An interrupted cleaning, an index swap (rebuilt instead), or Kafka's deleted file.
            listing.strays.push(path.clone());
        } else if name.ends_with(".log") {
            let base = base_offset_of(name, ".log").ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{path}: not a segment file name"),
                )
            })?;
            listing.segments.push(base);
        } else if name.ends_with(".tmp") {
            listing.strays.push(path.clone());
        } else if let Some(base) = base_offset_of(name, ".index")
            .or_else(|| base_offset_of(name, ".timeindex"))
            .or_else(|| base_offset_of(name, ".txnindex"))
        {
            let log = format!("{prefix}{}", log_file_name(base));
            let swap = format!("{log}{SWAP_SUFFIX}");
            if !files.contains(&log) && !files.contains(&swap) {
                listing.strays.push(path.clone());
            }
        }
    }
    listing.segments.sort_unstable();
    Ok(listing)
}

/// An offset from a checkpoint file: 0 when absent; unreadable is noted and counts as absent.
async fn read_checkpoint(disk: &Disk, path: &str, log: &Log, report: &mut RecoveryReport) -> i64 {
    match checkpoint::read_offset(disk, path, &log.topic, log.partition).await {
        Ok(offset) => offset.unwrap_or(0).max(0),
        Err(why) => {
            report.problems.push(why);
            0
        }
    }
}

/// The leader epoch cache from its checkpoint, `None` if it is missing or unreadable.
async fn read_epochs(
    disk: &Disk,
    dir: &str,
    report: &mut RecoveryReport,
) -> Option<LeaderEpochFileCache> {
    let path = format!("{dir}/{LEADER_EPOCH_CHECKPOINT}");
    match checkpoint::read(disk, &path).await {
        Ok(Some(text)) => match LeaderEpochFileCache::parse(&text) {
            Ok(cache) => Some(cache),
            Err(e) => {
                report.problems.push(format!("{path}: {e}"));
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            report.problems.push(format!("{path}: {e}"));
            None
        }
    }
}

pub(crate) async fn load(
    disk: Disk,
    dir: &str,
    config: LogConfig,
    now_ms: i64,
) -> io::Result<(Log, RecoveryReport)> {
    let (topic, partition) = parse_partition_dir(dir).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{dir}: not a <topic>-<partition> directory"),
        )
    })?;
    let root = dir
        .rsplit_once('/')
        .map(|(r, _)| format!("{r}/"))
        .unwrap_or_default();
    let mut log = Log {
        disk: disk.clone(),
        dir: dir.to_owned(),
        root,
        topic,
        partition,
        config,
        segments: BTreeMap::new(),
        log_start_offset: 0,
        recovery_point: 0,
        epochs: LeaderEpochFileCache::default(),
        clock_ms: now_ms,
        last_flush_ms: now_ms,
        last_checkpoint_ms: i64::MIN,
        producer_state: ProducerStateManager::default(),
    };
    let mut report = RecoveryReport::default();
    let mut listing = list_dir(&disk, dir)?;
    if !listing.swaps.is_empty() {
        for &base in &listing.swaps {
            let covered = complete_swap(&disk, dir, base).await?;
            report.segments_deleted.extend(covered);
            report.swaps_completed.push(base);
        }
        listing = list_dir(&disk, dir)?;
    }
    for path in listing.strays {
        disk.remove(&path).await?;
        report.files_deleted.push(path);
    }
    let rp_path = format!("{}{RECOVERY_POINT_CHECKPOINT}", log.root);
    let lso_path = format!("{}{LOG_START_OFFSET_CHECKPOINT}", log.root);
    let recovery_point = read_checkpoint(&disk, &rp_path, &log, &mut report).await;
    let start_checkpoint = read_checkpoint(&disk, &lso_path, &log, &mut report).await;
    report.recovery_point_checkpoint = recovery_point;

    let loaded_epochs = read_epochs(&disk, dir, &mut report).await;
    let epochs_usable = loaded_epochs.as_ref().is_some_and(|c| !c.is_empty());
    log.epochs = loaded_epochs.clone().unwrap_or_default();
    report.leader_epochs_rebuilt = !epochs_usable && !listing.segments.is_empty();
    // Below this, segments are trusted; the epoch cache is rebuilt from here on.
    let trusted_below = if epochs_usable {
        recovery_point
    } else {
        i64::MIN
    };
    load_segments(
        &mut log,
        &listing.segments,
        trusted_below,
        now_ms,
        &mut report,
    )
    .await?;

    if log.segments.is_empty() {
        let segment = LogSegment::create(&disk, dir, start_checkpoint, &log.config, now_ms).await?;
        log.segments.insert(start_checkpoint, segment);
    }
    if log.log_end_offset() < start_checkpoint {
        // Kafka's deleteSegmentsIfLogStartGreaterThanLogEnd.
        while let Some((base, segment)) = log.segments.pop_last() {
            segment.delete(&disk).await?;
            report.segments_deleted.push(base);
        }
        let segment = LogSegment::create(&disk, dir, start_checkpoint, &log.config, now_ms).await?;
        log.segments.insert(start_checkpoint, segment);
        log.epochs.clear();
    }
    let first = *log.segments.keys().next().expect("a segment exists");
    log.log_start_offset = start_checkpoint.max(first);
    log.recovery_point = recovery_point.min(log.log_end_offset());
    if log.recovery_point < recovery_point {
        // The checkpoint claims more than the log holds now; batches appended from here on
        // must not count as flushed after the next restart.
        log.write_recovery_point().await?;
    }
    log.epochs.truncate_from_end(log.log_end_offset());
    log.epochs.truncate_from_start(log.log_start_offset);
    if loaded_epochs.as_ref() != Some(&log.epochs) {
        log.write_epochs().await?;
    }
    load_producer_state(&mut log, &mut report).await?;
    report.log_start_offset = log.log_start_offset;
    report.log_end_offset = log.log_end_offset();
    Ok((log, report))
}

/// Step 6: the transaction indexes and the producer state. A re-validated segment's
/// transaction index is rebuilt (Kafka's `LogSegment.recover` resets it), as is one that fails
/// its sanity check; the others are read. The producer state is reloaded from the latest usable
/// snapshot and the batches after it replayed (Kafka's `rebuildProducerState`), from at or
/// below the first segment to reindex so that its aborted transactions are indexed again.
async fn load_producer_state(log: &mut Log, report: &mut RecoveryReport) -> io::Result<()> {
    let disk = log.disk.clone();
    log.producer_state = ProducerStateManager::with_snapshots_of(&disk, &log.dir);
    let validated: BTreeSet<i64> = report
        .segments
        .iter()
        .filter(|s| s.validated)
        .map(|s| s.base_offset)
        .collect();
    let mut reindex = BTreeSet::new();
    for (&base, segment) in log.segments.iter_mut() {
        if !validated.contains(&base) {
            let next_offset = segment.next_offset();
            match segment.txn_index.load(&disk, next_offset).await? {
                Ok(()) => continue,
                Err(why) => report.problems.push(why),
            }
        }
        segment.txn_index.reset(&disk).await?;
        reindex.insert(base);
    }
    let problems = log.rebuild_producer_state(&reindex).await?;
    report.problems.extend(problems);
    Ok(())
}

/// Steps 3 and 4: each segment kept with its indexes, or re-validated; the log cut at the first
/// invalid batch or offset gap, later segments deleted.
async fn load_segments(
    log: &mut Log,
    bases: &[i64],
    trusted_below: i64,
    now_ms: i64,
    report: &mut RecoveryReport,
) -> io::Result<()> {
    let disk = log.disk.clone();
    let mut epochs_cut = false;
    for (i, &base) in bases.iter().enumerate() {
        let successor = bases.get(i + 1).copied();
        let mut index_problem = None;
        if let Some(successor) = successor.filter(|&s| s <= trusted_below) {
            match LogSegment::load_trusted(&disk, &log.dir, base, successor, &log.config, now_ms)
                .await?
            {
                Ok(segment) => {
                    report.segments.push(SegmentRecovery {
                        base_offset: base,
                        validated: false,
                        indexes_rebuilt: false,
                        index_problem: None,
                        batches: 0,
                        truncated_bytes: 0,
                        reason: None,
                    });
                    log.segments.insert(base, segment);
                    continue;
                }
                Err(why) => index_problem = Some(why),
            }
        }
        let tail = index_problem.is_none();
        if tail && !epochs_cut {
            log.epochs.truncate_from_end(base);
            epochs_cut = true;
        }
        // A segment below the recovery point only rebuilds its indexes: the cache already
        // covers its epochs, and assigning them again would cut the later ones.
        let mut scratch = LeaderEpochFileCache::default();
        let epochs = if tail { &mut log.epochs } else { &mut scratch };
        let (segment, mut recovery) =
            LogSegment::recover(&disk, &log.dir, base, &log.config, now_ms, epochs).await?;
        recovery.index_problem = index_problem;
        let mut cut = recovery.reason.clone();
        if cut.is_none() {
            // A gap before the next segment is the cleaner's (it may empty a segment's tail);
            // an overlap is not.
            if let Some(successor) = successor.filter(|&s| s < segment.next_offset()) {
                cut = Some(format!(
                    "ends at offset {}, the next segment starts at {successor}",
                    segment.next_offset()
                ));
            }
        }
        report.batches += recovery.batches;
        report.truncated_bytes += recovery.truncated_bytes;
        report.segments.push(recovery);
        log.segments.insert(base, segment);
        if let Some(why) = cut {
            report.reason = Some(format!("{}: {why}", log.segments[&base].log_path()));
            for &later in &bases[i + 1..] {
                delete_segment_files(&disk, &log.dir, later).await?;
                report.segments_deleted.push(later);
            }
            break;
        }
    }
    Ok(())
}

/// Puts a cleaned segment in place, as Kafka's `LogLoader` completes a `.swap`: it was fsynced
/// whole before it got its name, so it replaces the segment of its base offset, and every
/// segment starting within the offsets it holds (the rest of the run it was cleaned from) goes.
/// Its indexes may be the old segment's or the new one's: they are rebuilt. Returns the bases
/// of the segments deleted.
async fn complete_swap(disk: &Disk, dir: &str, base: i64) -> io::Result<Vec<i64>> {
    let log = format!("{dir}/{}", log_file_name(base));
    let swap = format!("{log}{SWAP_SUFFIX}");
    let bytes = disk.read_all(&swap).await?;
    let next_offset = crate::storage::batch::batches(&bytes)
        .last()
        .map_or(base, |(_, header)| header.next_offset());
    let prefix = format!("{dir}/");
    let mut covered = Vec::new();
    for path in disk.list(&prefix) {
        let name = &path[prefix.len()..];
        if let Some(other) = base_offset_of(name, ".log") {
            if other > base && other < next_offset {
                delete_segment_files(disk, dir, other).await?;
                covered.push(other);
            }
        }
    }
    for name in [index_file_name(base), time_index_file_name(base)] {
        let path = format!("{dir}/{name}");
        if disk.exists(&path) {
            disk.remove(&path).await?;
        }
    }
    disk.rename(&swap, &log).await?;
    Ok(covered)
}

async fn delete_segment_files(disk: &Disk, dir: &str, base: i64) -> io::Result<()> {
    for name in [
        log_file_name(base),
        index_file_name(base),
        time_index_file_name(base),
        txn_index_file_name(base),
    ] {
        let path = format!("{dir}/{name}");
        if disk.exists(&path) {
            disk.remove(&path).await?;
        }
    }
    Ok(())
}
