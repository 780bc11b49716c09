//! Kafka's `ProducerStateManager`, `ProducerStateEntry` and `ProducerAppendInfo`: what a
//! partition log knows of each idempotent or transactional producer (KIP-98), to refuse zombies
//! and out-of-order batches, to answer retried batches with their original offsets, and to know
//! which transactions are still open (the last stable offset).
//!
//! - Per producer id: its epoch, the metadata of its last 5 batches (Kafka's
//!   `NUM_BATCHES_TO_RETAIN`, the producer's `max.in.flight.requests.per.connection` bound), the
//!   coordinator epoch of its last marker, and the first offset of its open transaction.
//! - A client's batch is checked as `ProducerAppendInfo` does (epoch, then sequence); markers
//!   from the coordinator check epochs only; a follower's batches are taken as they are.
//! - Open transactions, and completed ones whose marker is not yet below the high watermark,
//!   give the first unstable offset.
//! - Snapshots: `<offset, 20 digits>.snapshot` in Kafka's version 1 format (below), taken at
//!   each roll with the new segment's base offset, and at the end of a rebuild.
//!
//! ```text
//! version i16 (1) | crc u32 (CRC-32C of everything after it) | entries: count i32, then each
//!   producerId i64 | epoch i16 | lastSequence i32 | lastOffset i64 | offsetDelta i32 |
//!   timestamp i64 | coordinatorEpoch i32 | currentTxnFirstOffset i64 (-1: none)
//! ```
//!
//! A snapshot keeps only each producer's last batch, as Kafka's does; batches replayed after it
//! rebuild the rest.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::io;

use crate::storage::batch::{NO_PRODUCER_EPOCH, NO_SEQUENCE};
use crate::storage::control_record::EndTxnMarker;
use crate::world::Disk;

/// Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`.
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
const SNAPSHOT_VERSION: i16 = 1;
const CRC_OFFSET: usize = 2;
const ENTRIES_OFFSET: usize = 6;
/// Bytes of one snapshot entry.
pub const SNAPSHOT_ENTRY_LEN: usize = 46;
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";

/// Kafka's `LogFileUtils.producerSnapshotFile` name.
pub fn snapshot_file_name(offset: i64) -> String {
    format!("{offset:020}{SNAPSHOT_SUFFIX}")
}

/// `seq + increment`, wrapping past `i32::MAX` to 0 (Kafka's `DefaultRecordBatch.incrementSequence`).
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// The inverse of `increment_sequence` (Kafka's `decrementSequence`).
pub fn decrement_sequence(sequence: i32, decrement: i32) -> i32 {
    if sequence < decrement {
        i32::MAX - (decrement - sequence) + 1
    } else {
        sequence - decrement
    }
}

/// Where a batch comes from, which says how much is checked (Kafka's `AppendOrigin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer: epoch and sequence are checked.
    Client,
    /// A transaction coordinator's marker: epochs are checked.
    Coordinator,
    /// A follower copying its leader, or a rebuild: nothing is refused.
    Replication,
}

/// Why a producer's batch or a marker is refused, by Kafka's exception and error code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProducerError {
    /// An epoch below the producer's (a zombie); INVALID_PRODUCER_EPOCH (47), which Kafka
    /// answers a produce with since 2.7 (PRODUCER_FENCED is the coordinator's to say).
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
    },
    /// A sequence that does not follow the last one, or a new epoch not starting at 0;
    /// OUT_OF_ORDER_SEQUENCE_NUMBER (45).
    OutOfOrderSequence {
        producer_id: i64,
        epoch: i16,
        first_sequence: i32,
        last_sequence: i32,
    },
    /// A non-transactional batch while the producer's transaction is open; INVALID_TXN_STATE (48).
    InvalidTxnState { producer_id: i64 },
    /// A marker from an older coordinator; TRANSACTION_COORDINATOR_FENCED (52).
    TransactionCoordinatorFenced {
        producer_id: i64,
        coordinator_epoch: i32,
        current_coordinator_epoch: i32,
    },
}

impl ProducerError {
    /// Kafka's error code.
    pub fn code(&self) -> i16 {
        match self {
            ProducerError::InvalidProducerEpoch { .. } => 47,
            ProducerError::OutOfOrderSequence { .. } => 45,
            ProducerError::InvalidTxnState { .. } => 48,
            ProducerError::TransactionCoordinatorFenced { .. } => 52,
        }
    }
}

impl fmt::Display for ProducerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProducerError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current_epoch,
            } => write!(
                f,
                "producer {producer_id}: epoch {epoch} is below the last seen {current_epoch}"
            ),
            ProducerError::OutOfOrderSequence {
                producer_id,
                epoch,
                first_sequence,
                last_sequence,
            } => write!(
                f,
                "producer {producer_id} epoch {epoch}: sequence {first_sequence} does not \
                 follow {last_sequence}"
            ),
            ProducerError::InvalidTxnState { producer_id } => write!(
                f,
                "producer {producer_id}: a non-transactional batch inside its transaction"
            ),
            ProducerError::TransactionCoordinatorFenced {
                producer_id,
                coordinator_epoch,
                current_coordinator_epoch,
            } => write!(
                f,
                "producer {producer_id}: marker of coordinator epoch {coordinator_epoch}, \
                 below {current_coordinator_epoch}"
            ),
        }
    }
}

impl std::error::Error for ProducerError {}

/// One appended batch of a producer (Kafka's `BatchMetadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMetadata {
    pub last_seq: i32,
    pub last_offset: i64,
    /// lastOffset - firstOffset, which is also lastSeq - firstSeq.
    pub offset_delta: i32,
    pub timestamp: i64,
}

impl BatchMetadata {
    pub fn first_seq(&self) -> i32 {
        decrement_sequence(self.last_seq, self.offset_delta)
    }

    pub fn first_offset(&self) -> i64 {
        self.last_offset - i64::from(self.offset_delta)
    }
}

/// What the log knows of one producer id (Kafka's `ProducerStateEntry`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerStateEntry {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The coordinator epoch of the last marker (-1: none yet).
    pub coordinator_epoch: i32,
    pub last_timestamp: i64,
    /// The first offset of its open transaction.
    pub current_txn_first_offset: Option<i64>,
    /// Its last batches of the current epoch, oldest first, at most `NUM_BATCHES_TO_RETAIN`.
    batches: VecDeque<BatchMetadata>,
}

impl ProducerStateEntry {
    pub fn empty(producer_id: i64) -> Self {
        ProducerStateEntry {
            producer_id,
            producer_epoch: NO_PRODUCER_EPOCH,
            coordinator_epoch: -1,
            last_timestamp: -1,
            current_txn_first_offset: None,
            batches: VecDeque::new(),
        }
    }

    pub fn batches(&self) -> impl Iterator<Item = &BatchMetadata> {
        self.batches.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    pub fn first_seq(&self) -> i32 {
        self.batches
            .front()
            .map_or(NO_SEQUENCE, BatchMetadata::first_seq)
    }

    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    /// The offset of its last data record, -1 if none.
    pub fn last_data_offset(&self) -> i64 {
        self.batches.back().map_or(-1, |b| b.last_offset)
    }

    fn last_offset_delta(&self) -> i32 {
        self.batches.back().map_or(0, |b| b.offset_delta)
    }

    /// The retained batch with exactly this sequence range in this epoch (Kafka's
    /// `findDuplicateBatch`).
    pub fn find_duplicate(
        &self,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> Option<BatchMetadata> {
        if epoch != self.producer_epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq() == first_seq && b.last_seq == last_seq)
            .copied()
    }

    /// A new epoch forgets the old epoch's batches.
    fn maybe_update_epoch(&mut self, epoch: i16) {
        if self.producer_epoch != epoch {
            self.batches.clear();
            self.producer_epoch = epoch;
        }
    }

    fn add_batch_metadata(&mut self, batch: BatchMetadata) {
        if self.batches.len() == NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
    }

    fn add_batch(&mut self, epoch: i16, batch: BatchMetadata) {
        self.maybe_update_epoch(epoch);
        self.add_batch_metadata(batch);
        self.last_timestamp = batch.timestamp;
    }

    /// Takes what an append made of this producer (Kafka's `update(ProducerStateEntry)`).
    fn update(&mut self, next: ProducerStateEntry) {
        self.maybe_update_epoch(next.producer_epoch);
        for batch in next.batches {
            self.add_batch_metadata(batch);
        }
        self.coordinator_epoch = next.coordinator_epoch;
        self.current_txn_first_offset = next.current_txn_first_offset;
        self.last_timestamp = next.last_timestamp;
    }
}

/// A transaction that ended: its first data offset and its marker's offset (Kafka's
/// `CompletedTxn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub is_aborted: bool,
}

/// A transaction the log tracks (Kafka's `TxnMetadata`): open while `last_offset` is `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnMetadata {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: Option<i64>,
}

/// One producer's batches of one append, checked against its state before they are written
/// (Kafka's `ProducerAppendInfo`). Nothing changes until `ProducerStateManager::update`.
#[derive(Clone, Debug)]
pub struct ProducerAppendInfo {
    producer_id: i64,
    origin: AppendOrigin,
    /// The state before this append.
    current: ProducerStateEntry,
    /// The state after it; its batches are only this append's.
    updated: ProducerStateEntry,
    started: Vec<TxnMetadata>,
}

impl ProducerAppendInfo {
    fn new(producer_id: i64, current: Option<&ProducerStateEntry>, origin: AppendOrigin) -> Self {
        let current = current
            .cloned()
            .unwrap_or_else(|| ProducerStateEntry::empty(producer_id));
        let mut updated = current.clone();
        updated.batches.clear();
        ProducerAppendInfo {
            producer_id,
            origin,
            current,
            updated,
            started: Vec::new(),
        }
    }

    pub fn producer_id(&self) -> i64 {
        self.producer_id
    }

    fn check_producer_epoch(&self, epoch: i16) -> Result<(), ProducerError> {
        let current_epoch = self.updated.producer_epoch;
        if epoch < current_epoch && self.origin != AppendOrigin::Replication {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id: self.producer_id,
                epoch,
                current_epoch,
            });
        }
        Ok(())
    }

    /// Kafka's `checkSequence`: a new epoch starts at 0 (unless the producer has no state at
    /// all); within an epoch, the batch follows the last one. A producer whose state is gone
    /// (retention, a new leader without its history) may continue at any sequence (KIP-360).
    fn check_sequence(&self, epoch: i16, first_seq: i32) -> Result<(), ProducerError> {
        let out_of_order = |last_sequence| ProducerError::OutOfOrderSequence {
            producer_id: self.producer_id,
            epoch,
            first_sequence: first_seq,
            last_sequence,
        };
        if epoch != self.updated.producer_epoch {
            if first_seq != 0 && self.updated.producer_epoch != NO_PRODUCER_EPOCH {
                return Err(out_of_order(NO_SEQUENCE));
            }
            return Ok(());
        }
        let last_seq = if !self.updated.is_empty() {
            self.updated.last_seq()
        } else if epoch == self.current.producer_epoch {
            self.current.last_seq()
        } else {
            NO_SEQUENCE
        };
        let in_sequence = i64::from(first_seq) == i64::from(last_seq) + 1
            || (first_seq == 0 && last_seq == i32::MAX);
        if self.current.producer_epoch != NO_PRODUCER_EPOCH && !in_sequence {
            return Err(out_of_order(last_seq));
        }
        Ok(())
    }

    /// A data batch at `first_offset..=last_offset` (Kafka's `appendDataBatch`).
    #[allow(clippy::too_many_arguments)]
    pub fn append_data_batch(
        &mut self,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
        last_timestamp: i64,
        first_offset: i64,
        last_offset: i64,
        is_transactional: bool,
    ) -> Result<(), ProducerError> {
        self.check_producer_epoch(epoch)?;
        if self.origin == AppendOrigin::Client {
            self.check_sequence(epoch, first_seq)?;
        }
        match (self.updated.current_txn_first_offset, is_transactional) {
            // Kafka refuses this even from a leader's log; a follower takes what its leader
            // wrote.
            (Some(_), false) if self.origin != AppendOrigin::Replication => {
                return Err(ProducerError::InvalidTxnState {
                    producer_id: self.producer_id,
                });
            }
            (None, true) => {
                self.updated.current_txn_first_offset = Some(first_offset);
                self.started.push(TxnMetadata {
                    producer_id: self.producer_id,
                    first_offset,
                    last_offset: None,
                });
            }
            _ => {}
        }
        let batch = BatchMetadata {
            last_seq,
            last_offset,
            offset_delta: (last_offset - first_offset) as i32,
            timestamp: last_timestamp,
        };
        self.updated.add_batch(epoch, batch);
        Ok(())
    }

    /// A marker at `offset` (Kafka's `appendEndTxnMarker`, transaction version 0/1: the marker
    /// carries the producer's epoch or a newer one). Returns the transaction it ends, if it had
    /// data here.
    pub fn append_end_txn_marker(
        &mut self,
        marker: EndTxnMarker,
        epoch: i16,
        offset: i64,
        timestamp: i64,
    ) -> Result<Option<CompletedTxn>, ProducerError> {
        self.check_producer_epoch(epoch)?;
        let current = self.updated.coordinator_epoch;
        if current > marker.coordinator_epoch && self.origin != AppendOrigin::Replication {
            return Err(ProducerError::TransactionCoordinatorFenced {
                producer_id: self.producer_id,
                coordinator_epoch: marker.coordinator_epoch,
                current_coordinator_epoch: current,
            });
        }
        let completed = self
            .updated
            .current_txn_first_offset
            .map(|first_offset| CompletedTxn {
                producer_id: self.producer_id,
                first_offset,
                last_offset: offset,
                is_aborted: !marker.commit,
            });
        self.updated.maybe_update_epoch(epoch);
        self.updated.coordinator_epoch = marker.coordinator_epoch;
        self.updated.current_txn_first_offset = None;
        self.updated.last_timestamp = timestamp;
        Ok(completed)
    }
}

/// The producer state of one partition log (Kafka's `ProducerStateManager`), and its snapshot
/// files.
#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: BTreeMap<i64, ProducerStateEntry>,
    /// Open transactions by first offset.
    ongoing_txns: BTreeMap<i64, TxnMetadata>,
    /// Completed transactions whose marker is not yet below the high watermark.
    unreplicated_txns: BTreeMap<i64, TxnMetadata>,
    /// Offsets of the snapshot files in the log directory.
    snapshots: BTreeSet<i64>,
    /// The offset up to which (exclusive) the state covers the log.
    last_map_offset: i64,
    /// The offset of the last snapshot taken or loaded.
    last_snap_offset: i64,
}

impl ProducerStateManager {
    /// Forgets every producer (a planted bug: a leader that lost its producer state). Open
    /// transactions are kept, so the last stable offset stays right.
    pub fn forget_producers(&mut self) {
        self.producers.clear();
    }

    pub fn last_entry(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    pub fn producers(&self) -> &BTreeMap<i64, ProducerStateEntry> {
        &self.producers
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty() && self.unreplicated_txns.is_empty()
    }

    pub fn map_end_offset(&self) -> i64 {
        self.last_map_offset
    }

    pub fn update_map_end_offset(&mut self, offset: i64) {
        self.last_map_offset = offset;
    }

    pub fn snapshot_offsets(&self) -> impl Iterator<Item = i64> + '_ {
        self.snapshots.iter().copied()
    }

    pub fn latest_snapshot_offset(&self) -> Option<i64> {
        self.snapshots.last().copied()
    }

    pub fn prepare_update(&self, producer_id: i64, origin: AppendOrigin) -> ProducerAppendInfo {
        ProducerAppendInfo::new(producer_id, self.producers.get(&producer_id), origin)
    }

    /// Takes a checked append (Kafka's `update`).
    pub fn update(&mut self, info: ProducerAppendInfo) {
        assert!(info.producer_id >= 0, "producer state of no producer id");
        match self.producers.get_mut(&info.producer_id) {
            Some(entry) => entry.update(info.updated),
            None => {
                self.producers.insert(info.producer_id, info.updated);
            }
        }
        for txn in info.started {
            self.ongoing_txns.insert(txn.first_offset, txn);
        }
    }

    /// The LSO to record with an aborted transaction: the first offset of the next open
    /// transaction of another producer, else just past the marker (Kafka's `lastStableOffset`).
    pub fn last_stable_offset(&self, completed: &CompletedTxn) -> i64 {
        self.ongoing_txns
            .values()
            .find(|t| t.producer_id != completed.producer_id)
            .map_or(completed.last_offset + 1, |t| t.first_offset)
    }

    /// The transaction is decided; it stays unstable until the high watermark passes its marker.
    pub fn complete_txn(&mut self, completed: &CompletedTxn) {
        let Some(mut txn) = self.ongoing_txns.remove(&completed.first_offset) else {
            panic!("completing transaction {completed:?}, which was not started");
        };
        txn.last_offset = Some(completed.last_offset);
        self.unreplicated_txns.insert(completed.first_offset, txn);
    }

    /// The first offset of an open transaction or of a completed one whose marker is at or
    /// above the high watermark (Kafka's `firstUnstableOffset`).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let undecided = self.ongoing_txns.keys().next();
        let unreplicated = self.unreplicated_txns.keys().next();
        undecided.into_iter().chain(unreplicated).min().copied()
    }

    /// The first offset of an open transaction (Kafka's `firstUndecidedOffset`).
    pub fn first_undecided_offset(&self) -> Option<i64> {
        self.ongoing_txns.keys().next().copied()
    }

    pub fn on_high_watermark_updated(&mut self, high_watermark: i64) {
        self.remove_unreplicated_below(high_watermark);
    }

    pub fn on_log_start_offset_incremented(&mut self, log_start_offset: i64) {
        self.remove_unreplicated_below(log_start_offset);
        self.last_map_offset = self.last_map_offset.max(log_start_offset);
        self.last_snap_offset = self.latest_snapshot_offset().unwrap_or(log_start_offset);
    }

    fn remove_unreplicated_below(&mut self, offset: i64) {
        self.unreplicated_txns
            .retain(|_, t| t.last_offset.is_none_or(|last| last >= offset));
    }

    fn clear(&mut self) {
        self.producers.clear();
        self.ongoing_txns.clear();
        self.unreplicated_txns.clear();
    }

    fn load_entry(&mut self, entry: ProducerStateEntry) {
        if let Some(first_offset) = entry.current_txn_first_offset {
            self.ongoing_txns.insert(
                first_offset,
                TxnMetadata {
                    producer_id: entry.producer_id,
                    first_offset,
                    last_offset: None,
                },
            );
        }
        self.producers.insert(entry.producer_id, entry);
    }
}

/// The snapshot files.
impl ProducerStateManager {
    /// A manager that knows the snapshot files of `dir`, and nothing else yet.
    pub(crate) fn with_snapshots_of(disk: &Disk, dir: &str) -> Self {
        let prefix = format!("{dir}/");
        let snapshots = disk
            .list(&prefix)
            .iter()
            .filter_map(|path| {
                let stem = path[prefix.len()..].strip_suffix(SNAPSHOT_SUFFIX)?;
                let offset: i64 = stem.parse().ok()?;
                (stem.len() == 20 && offset >= 0).then_some(offset)
            })
            .collect();
        ProducerStateManager {
            snapshots,
            ..ProducerStateManager::default()
        }
    }

    /// Writes (and fsyncs) a snapshot at the map end offset, unless the last one is there
    /// already (Kafka's `takeSnapshot`).
    pub async fn take_snapshot(&mut self, disk: &Disk, dir: &str) -> io::Result<()> {
        if self.last_map_offset <= self.last_snap_offset {
            return Ok(());
        }
        let path = format!("{dir}/{}", snapshot_file_name(self.last_map_offset));
        let bytes = encode_snapshot(self.producers.values());
        crate::storage::segment::write_file(disk, &path, &bytes).await?;
        disk.fsync(&path).await?;
        self.snapshots.insert(self.last_map_offset);
        self.last_snap_offset = self.last_map_offset;
        Ok(())
    }

    async fn delete_snapshot(&mut self, disk: &Disk, dir: &str, offset: i64) -> io::Result<()> {
        if self.snapshots.remove(&offset) {
            let path = format!("{dir}/{}", snapshot_file_name(offset));
            if disk.exists(&path) {
                disk.remove(&path).await?;
            }
        }
        Ok(())
    }

    /// Deletes the snapshot of a deleted segment (Kafka's `deleteProducerSnapshots`).
    pub async fn delete_snapshot_at(
        &mut self,
        disk: &Disk,
        dir: &str,
        offset: i64,
    ) -> io::Result<()> {
        self.delete_snapshot(disk, dir, offset).await
    }

    /// Kafka's `deleteSnapshotsBefore`.
    pub async fn delete_snapshots_before(
        &mut self,
        disk: &Disk,
        dir: &str,
        offset: i64,
    ) -> io::Result<()> {
        let doomed: Vec<i64> = self.snapshots.range(..offset).copied().collect();
        for snapshot in doomed {
            self.delete_snapshot(disk, dir, snapshot).await?;
        }
        Ok(())
    }

    /// Forgets everything and deletes every snapshot; the state starts at `offset` (Kafka's
    /// `truncateFullyAndStartAt`).
    pub async fn truncate_fully_and_start_at(
        &mut self,
        disk: &Disk,
        dir: &str,
        offset: i64,
    ) -> io::Result<()> {
        self.clear();
        let all: Vec<i64> = self.snapshots.iter().copied().collect();
        for snapshot in all {
            self.delete_snapshot(disk, dir, snapshot).await?;
        }
        self.last_snap_offset = 0;
        self.last_map_offset = offset;
        Ok(())
    }

    /// Kafka's `truncateAndReload`: deletes the snapshots above `log_end_offset` or at or below
    /// `log_start_offset`, and unless the state already ends at `log_end_offset`, reloads it
    /// from the latest snapshot at or below `load_at_most` (the log start if none). Returns the
    /// snapshots found corrupt (and deleted).
    pub async fn truncate_and_reload(
        &mut self,
        disk: &Disk,
        dir: &str,
        log_start_offset: i64,
        log_end_offset: i64,
        load_at_most: i64,
    ) -> io::Result<Vec<String>> {
        let out_of_range: Vec<i64> = self
            .snapshots
            .iter()
            .copied()
            .filter(|&s| s > log_end_offset || s <= log_start_offset)
            .collect();
        for snapshot in out_of_range {
            self.delete_snapshot(disk, dir, snapshot).await?;
        }
        if log_end_offset == self.last_map_offset && load_at_most >= log_end_offset {
            self.on_log_start_offset_incremented(log_start_offset);
            return Ok(Vec::new());
        }
        self.clear();
        self.load_from_snapshot(disk, dir, log_start_offset, load_at_most)
            .await
    }

    async fn load_from_snapshot(
        &mut self,
        disk: &Disk,
        dir: &str,
        log_start_offset: i64,
        at_most: i64,
    ) -> io::Result<Vec<String>> {
        let mut problems = Vec::new();
        while let Some(&offset) = self.snapshots.range(..=at_most).next_back() {
            let path = format!("{dir}/{}", snapshot_file_name(offset));
            let decoded = match disk.read_all(&path).await {
                Ok(bytes) => decode_snapshot(&bytes),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Err("missing".to_owned()),
                Err(e) => return Err(e),
            };
            match decoded {
                Ok(entries) => {
                    for entry in entries {
                        self.load_entry(entry);
                    }
                    self.last_snap_offset = offset;
                    self.last_map_offset = offset;
                    return Ok(problems);
                }
                Err(why) => {
                    problems.push(format!("{path}: {why}"));
                    self.delete_snapshot(disk, dir, offset).await?;
                }
            }
        }
        self.last_snap_offset = log_start_offset;
        self.last_map_offset = log_start_offset;
        Ok(problems)
    }
}

/// A snapshot file's bytes, entries in producer id order.
pub fn encode_snapshot<'a>(entries: impl Iterator<Item = &'a ProducerStateEntry>) -> Vec<u8> {
    let entries: Vec<&ProducerStateEntry> = entries.collect();
    let mut buf = Vec::with_capacity(ENTRIES_OFFSET + 4 + entries.len() * SNAPSHOT_ENTRY_LEN);
    buf.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
    buf.extend_from_slice(&0u32.to_be_bytes());
    let count = i32::try_from(entries.len()).expect("producer count fits an i32");
    buf.extend_from_slice(&count.to_be_bytes());
    for entry in entries {
        buf.extend_from_slice(&entry.producer_id.to_be_bytes());
        buf.extend_from_slice(&entry.producer_epoch.to_be_bytes());
        buf.extend_from_slice(&entry.last_seq().to_be_bytes());
        buf.extend_from_slice(&entry.last_data_offset().to_be_bytes());
        buf.extend_from_slice(&entry.last_offset_delta().to_be_bytes());
        buf.extend_from_slice(&entry.last_timestamp.to_be_bytes());
        buf.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
        let txn_first = entry.current_txn_first_offset.unwrap_or(-1);
        buf.extend_from_slice(&txn_first.to_be_bytes());
    }
    let crc = crc32c::crc32c(&buf[ENTRIES_OFFSET..]);
    buf[CRC_OFFSET..ENTRIES_OFFSET].copy_from_slice(&crc.to_be_bytes());
    buf
}

/// A snapshot file's entries (Kafka's `readSnapshot`); `Err` for an unknown version, a CRC
/// mismatch or a malformed file (Kafka's `CorruptSnapshotException`).
pub fn decode_snapshot(bytes: &[u8]) -> Result<Vec<ProducerStateEntry>, String> {
    if bytes.len() < ENTRIES_OFFSET + 4 {
        return Err(format!("{} bytes, too short for a snapshot", bytes.len()));
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    if version != SNAPSHOT_VERSION {
        return Err(format!("unknown snapshot version {version}"));
    }
    let stored = u32::from_be_bytes(bytes[CRC_OFFSET..ENTRIES_OFFSET].try_into().expect("4"));
    let computed = crc32c::crc32c(&bytes[ENTRIES_OFFSET..]);
    if stored != computed {
        return Err(format!(
            "CRC-32C mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    let count = i32::from_be_bytes(bytes[6..10].try_into().expect("4"));
    let body = &bytes[10..];
    if count < 0 || body.len() != count as usize * SNAPSHOT_ENTRY_LEN {
        return Err(format!("{count} entries in {} bytes", body.len()));
    }
    let entries = body
        .chunks(SNAPSHOT_ENTRY_LEN)
        .map(|e| {
            let i16_at = |at: usize| i16::from_be_bytes(e[at..at + 2].try_into().expect("2"));
            let i32_at = |at: usize| i32::from_be_bytes(e[at..at + 4].try_into().expect("4"));
            let i64_at = |at: usize| i64::from_be_bytes(e[at..at + 8].try_into().expect("8"));
            let (last_offset, timestamp) = (i64_at(14), i64_at(26));
            let txn_first = i64_at(38);
            let mut batches = VecDeque::new();
            if last_offset >= 0 {
                batches.push_back(BatchMetadata {
                    last_seq: i32_at(10),
                    last_offset,
                    offset_delta: i32_at(22),
                    timestamp,
                });
            }
            ProducerStateEntry {
                producer_id: i64_at(0),
                producer_epoch: i16_at(8),
                coordinator_epoch: i32_at(34),
                last_timestamp: timestamp,
                current_txn_first_offset: (txn_first >= 0).then_some(txn_first),
                batches,
            }
        })
        .collect();
    Ok(entries)
}

#[cfg(test)]
#[path = "producer_state_tests.rs"]
mod tests;
