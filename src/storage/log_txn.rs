//! The partition log's producer state and transactions (Kafka's `UnifiedLog` around its
//! `ProducerStateManager`): checking a producer's batch before it is written, writing
//! transaction markers, the aborted-transaction index of each segment, the first unstable
//! offset, and rebuilding the state from snapshots and batches on open and after truncation.

use std::collections::BTreeSet;
use std::io;

use crate::storage::batch::{self, BatchHeader, TimestampType};
use crate::storage::control_record::{self, EndTxnMarker};
use crate::storage::log::{AppendInfo, Log, LogError};
use crate::storage::producer_state::{
    increment_sequence, AppendOrigin, CompletedTxn, ProducerAppendInfo, ProducerStateEntry,
    ProducerStateManager,
};
use crate::storage::txn_index::AbortedTxn;

/// What the producer state says of a client's batch.
pub(crate) enum ClientBatch {
    /// A retry of an appended batch: answered with the original offsets, not written.
    Duplicate(AppendInfo),
    /// To append; the producer's checked update, if the batch has a producer id.
    Append(Option<ProducerAppendInfo>),
}

impl Log {
    /// The producer's state, if this log knows it.
    pub fn producer_state(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producer_state.last_entry(producer_id)
    }

    pub fn producer_state_manager(&self) -> &ProducerStateManager {
        &self.producer_state
    }

    /// Producer id → offset of its last data record (Kafka's `lastRecordsOfActiveProducers`,
    /// which the cleaner keeps).
    pub fn last_records_of_active_producers(&self) -> std::collections::BTreeMap<i64, i64> {
        self.producer_state
            .producers()
            .iter()
            .filter(|(_, e)| e.last_data_offset() >= 0)
            .map(|(&id, e)| (id, e.last_data_offset()))
            .collect()
    }

    /// The first offset of an open transaction, or of a decided one whose marker the high
    /// watermark has not passed, at least the log start offset (Kafka's
    /// `firstUnstableOffsetMetadata`). The last stable offset is the smaller of it and the high
    /// watermark.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producer_state
            .first_unstable_offset()
            .map(|offset| offset.max(self.log_start_offset))
    }

    /// The partition's high watermark moved: decided transactions below it are stable.
    pub fn on_high_watermark_updated(&mut self, high_watermark: i64) {
        self.producer_state
            .on_high_watermark_updated(high_watermark);
    }

    /// The aborted transactions overlapping `[start_offset, upper_bound_offset)`, from the
    /// transaction indexes of the segment holding `start_offset` and the following ones, until
    /// an entry's LSO reaches the upper bound (Kafka's `collectAbortedTransactions`).
    pub fn collect_aborted_transactions(
        &self,
        start_offset: i64,
        upper_bound_offset: i64,
    ) -> Vec<AbortedTxn> {
        let from = self
            .segments
            .range(..=start_offset)
            .next_back()
            .map_or(i64::MIN, |(&base, _)| base);
        let mut found = Vec::new();
        for segment in self.segments.range(from..).map(|(_, s)| s) {
            let (txns, complete) = segment.txn_index.collect(start_offset, upper_bound_offset);
            found.extend(txns);
            if complete {
                break;
            }
        }
        found
    }

    /// Writes a transaction marker as the leader (Kafka's `appendAsLeader` with origin
    /// COORDINATOR, for `WriteTxnMarkers`): a control batch of one record ending `producer_id`'s
    /// transaction. A marker of an older producer epoch, or of an older coordinator epoch than the
    /// producer's last, is refused.
    pub async fn append_control_as_leader(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.tick(now_ms);
        if producer_id < 0 {
            return Err(LogError::InvalidRecord(format!(
                "a transaction marker for producer id {producer_id}"
            )));
        }
        let marker = EndTxnMarker {
            commit,
            coordinator_epoch,
        };
        let offset = self.log_end_offset();
        let mut producer = self
            .producer_state
            .prepare_update(producer_id, AppendOrigin::Coordinator);
        let completed = producer.append_end_txn_marker(marker, producer_epoch, offset, now_ms)?;
        let mut bytes = control_record::encode_marker_batch(
            producer_id,
            producer_epoch,
            marker,
            leader_epoch,
            now_ms,
        );
        batch::set_base_offset(&mut bytes, offset);
        let log_append_time_ms = match self.config.message_timestamp_type {
            TimestampType::LogAppendTime => {
                batch::set_max_timestamp_log_append_time(&mut bytes, now_ms);
                now_ms
            }
            TimestampType::CreateTime => -1,
        };
        let header = batch::parse_header(&bytes)?;
        let rolled = self
            .append_batches(&bytes, &[header], now_ms, false)
            .await?;
        self.on_leader_appended(Some(producer), completed, header.next_offset())
            .await?;
        Ok(self.append_info(offset, offset, log_append_time_ms, rolled))
    }

    /// Kafka's `LogValidator` client checks and `analyzeAndValidateProducerState` for a
    /// producer's batch about to be appended at the log end.
    pub(crate) fn check_client_batch(
        &self,
        header: &BatchHeader,
        origin: AppendOrigin,
    ) -> Result<ClientBatch, LogError> {
        if header.is_control() {
            return Err(LogError::InvalidRecord(
                "clients are not allowed to write control records".into(),
            ));
        }
        let producer_id = header.producer_id;
        if producer_id < 0 {
            return Ok(ClientBatch::Append(None));
        }
        if header.base_sequence < 0 {
            return Err(LogError::InvalidRecord(format!(
                "invalid sequence number {} in a batch of producer {producer_id}",
                header.base_sequence
            )));
        }
        let last_seq = increment_sequence(header.base_sequence, header.last_offset_delta);
        let duplicate = (origin == AppendOrigin::Client)
            .then(|| self.producer_state.last_entry(producer_id))
            .flatten()
            .and_then(|e| e.find_duplicate(header.producer_epoch, header.base_sequence, last_seq));
        if let Some(original) = duplicate {
            let mut info =
                self.append_info(original.first_offset(), original.last_offset, -1, None);
            if self.config.message_timestamp_type == TimestampType::LogAppendTime {
                info.log_append_time_ms = original.timestamp;
            }
            info.duplicate = true;
            return Ok(ClientBatch::Duplicate(info));
        }
        let first_offset = self.log_end_offset();
        let mut producer = self.producer_state.prepare_update(producer_id, origin);
        producer.append_data_batch(
            header.producer_epoch,
            header.base_sequence,
            last_seq,
            header.max_timestamp,
            first_offset,
            first_offset + i64::from(header.last_offset_delta),
            header.is_transactional(),
        )?;
        Ok(ClientBatch::Append(Some(producer)))
    }

    /// After a leader's batch is written: the producer's state, the transaction it ended (in the
    /// transaction index if aborted), the state's end offset.
    pub(crate) async fn on_leader_appended(
        &mut self,
        producer: Option<ProducerAppendInfo>,
        completed: Option<CompletedTxn>,
        next_offset: i64,
    ) -> io::Result<()> {
        if let Some(producer) = producer {
            self.producer_state.update(producer);
        }
        if let Some(completed) = completed {
            self.complete_txn(&completed, true).await?;
        }
        self.producer_state.update_map_end_offset(next_offset);
        Ok(())
    }

    /// Kafka's `completeTxn` after `updateTxnIndex`: an abort is indexed in the segment holding
    /// its marker (if `index`), then the transaction waits for the high watermark.
    async fn complete_txn(&mut self, completed: &CompletedTxn, index: bool) -> io::Result<()> {
        if completed.is_aborted && index {
            let txn = AbortedTxn {
                producer_id: completed.producer_id,
                first_offset: completed.first_offset,
                last_offset: completed.last_offset,
                last_stable_offset: self.producer_state.last_stable_offset(completed),
            };
            let disk = self.disk.clone();
            let (_, segment) = self
                .segments
                .range_mut(..=completed.last_offset)
                .next_back()
                .expect("the marker's segment");
            segment.txn_index.append(&disk, txn).await?;
        }
        self.producer_state.complete_txn(completed);
        Ok(())
    }

    /// A follower's batches must hold readable markers: checked before anything is written.
    pub(crate) fn check_replicated_markers(
        &self,
        bytes: &[u8],
        headers: &[BatchHeader],
    ) -> Result<(), LogError> {
        let mut position = 0;
        for header in headers {
            let end = position + header.size_in_bytes();
            if header.is_control() && header.producer_id >= 0 {
                control_record::read_marker(&bytes[position..end])?;
            }
            position = end;
        }
        Ok(())
    }

    /// Applies written batches to the producer state as a replica does (Kafka's origin
    /// REPLICATION: nothing refused), indexing aborts if `index`; the state then ends after them.
    pub(crate) async fn replay_batches(
        &mut self,
        bytes: &[u8],
        headers: &[BatchHeader],
        index: bool,
    ) -> io::Result<()> {
        let mut position = 0;
        for header in headers {
            let end = position + header.size_in_bytes();
            if header.producer_id >= 0 {
                let completed = self.replay_batch(&bytes[position..end], header);
                if let Some(completed) = completed {
                    self.complete_txn(&completed, index).await?;
                }
            }
            self.producer_state
                .update_map_end_offset(header.next_offset());
            position = end;
        }
        Ok(())
    }

    fn replay_batch(&mut self, bytes: &[u8], header: &BatchHeader) -> Option<CompletedTxn> {
        let mut producer = self
            .producer_state
            .prepare_update(header.producer_id, AppendOrigin::Replication);
        let completed = if header.is_control() {
            // A marker that does not read (or a cleaned-out control batch) changes nothing.
            let marker = control_record::read_marker(bytes).ok().flatten()?;
            producer
                .append_end_txn_marker(
                    marker,
                    header.producer_epoch,
                    header.base_offset,
                    header.max_timestamp,
                )
                .expect("a replica's marker is never refused")
        } else {
            let last_seq = increment_sequence(header.base_sequence, header.last_offset_delta);
            producer
                .append_data_batch(
                    header.producer_epoch,
                    header.base_sequence,
                    last_seq,
                    header.max_timestamp,
                    header.base_offset,
                    header.last_offset(),
                    header.is_transactional(),
                )
                .expect("a replica's batch is never refused");
            None
        };
        self.producer_state.update(producer);
        completed
    }

    /// Kafka's `rebuildProducerState`: reloads the state from the latest snapshot at or below
    /// the log end (and at or below the first segment of `reindex`), replays the batches after
    /// it, and snapshots the result at the log end. The segments of `reindex` (their transaction
    /// indexes reset) get their aborted transactions indexed again on the way. Returns the
    /// snapshots found corrupt.
    pub(crate) async fn rebuild_producer_state(
        &mut self,
        reindex: &BTreeSet<i64>,
    ) -> io::Result<Vec<String>> {
        let (disk, dir) = (self.disk.clone(), self.dir.clone());
        let last_offset = self.log_end_offset();
        let log_start_offset = self.log_start_offset;
        let empty_before =
            self.producer_state.is_empty() && self.producer_state.map_end_offset() >= last_offset;
        let load_at_most = reindex.first().map_or(last_offset, |&b| b.min(last_offset));
        let problems = self
            .producer_state
            .truncate_and_reload(&disk, &dir, log_start_offset, last_offset, load_at_most)
            .await?;
        let map_end = self.producer_state.map_end_offset();
        if last_offset > map_end && (!empty_before || !reindex.is_empty()) {
            // As Kafka: snapshots at the last two segments' bases on the way.
            let to_snapshot: Vec<i64> = self.segments.keys().rev().take(2).copied().collect();
            let bases: Vec<i64> = self
                .segments
                .iter()
                .filter(|(_, s)| s.next_offset() > map_end)
                .map(|(&base, _)| base)
                .collect();
            for base in bases {
                let start = base
                    .max(self.producer_state.map_end_offset())
                    .max(log_start_offset);
                self.producer_state.update_map_end_offset(start);
                if to_snapshot.contains(&base) {
                    self.producer_state.take_snapshot(&disk, &dir).await?;
                }
                let bytes = self.segments[&base].read_all(&disk).await?;
                let headers: Vec<(usize, BatchHeader)> = batch::batches(&bytes)
                    .filter(|(_, h)| h.last_offset() >= start)
                    .collect();
                let Some(&(first, _)) = headers.first() else {
                    continue;
                };
                let headers: Vec<BatchHeader> = headers.into_iter().map(|(_, h)| h).collect();
                self.replay_batches(&bytes[first..], &headers, reindex.contains(&base))
                    .await?;
            }
        }
        self.producer_state.update_map_end_offset(last_offset);
        self.producer_state.take_snapshot(&disk, &dir).await?;
        Ok(problems)
    }

    /// Kafka's `deleteSnapshotsAfterRecoveryPointCheckpoint`: snapshots below both the
    /// checkpointed recovery point and the second-to-last segment are no longer needed.
    pub(crate) async fn delete_snapshots_after_recovery_point_checkpoint(
        &mut self,
    ) -> io::Result<()> {
        let second_to_last = self.segments.keys().rev().nth(1).copied();
        let Some(second_to_last) = second_to_last else {
            return Ok(());
        };
        let below = self.recovery_point.min(second_to_last);
        let (disk, dir) = (self.disk.clone(), self.dir.clone());
        self.producer_state
            .delete_snapshots_before(&disk, &dir, below)
            .await
    }
}
