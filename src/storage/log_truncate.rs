//! Removing data from a partition log: from the end (a follower truncating to its leader's log,
//! KIP-101), entirely (a follower out of the leader's range), and from the start (`DeleteRecords`
//! moving the log start offset, retention deleting whole segments).

use std::io;

use crate::storage::log::{Log, LogError};
use crate::storage::log_error::invalid_input;
use crate::storage::segment::LogSegment;

impl Log {
    /// Removes every batch containing an offset at or above `offset`, as Kafka's `truncateTo`:
    /// later segments are deleted and the one containing `offset` is cut at a batch boundary, so
    /// if `offset` falls inside a batch that whole batch goes and the log end offset ends up
    /// below `offset`. Below the first segment, the log is emptied and starts at `offset`. A
    /// no-op at or above the log end offset. Not fsynced (nor in Kafka): a crash may bring the
    /// truncated batches of the last segment back, and recovery keeps them if they are valid.
    pub async fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        if offset < 0 {
            return Err(invalid_input(format!(
                "truncation to a negative offset {offset}"
            )));
        }
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        let first = *self.segments.keys().next().expect("a log has a segment");
        if offset < first {
            let now_ms = self.clock_ms;
            return Ok(self.truncate_fully_and_start_at(offset, now_ms).await?);
        }
        let doomed: Vec<i64> = self.segments.range(offset + 1..).map(|(&b, _)| b).collect();
        for base in doomed.into_iter().rev() {
            let segment = self.segments.remove(&base).expect("listed");
            segment.delete(&self.disk).await?;
        }
        let (disk, now_ms) = (self.disk.clone(), self.clock_ms);
        self.active_mut().truncate_to(&disk, offset, now_ms).await?;
        let log_end_offset = self.log_end_offset();
        if self.recovery_point > log_end_offset {
            // As Kafka's `LogManager.truncateTo`: the checkpoint must not claim what is gone, or
            // a later restart would count batches appended here since as flushed.
            self.recovery_point = log_end_offset;
            self.write_recovery_point().await?;
        }
        if self.log_start_offset > log_end_offset {
            self.log_start_offset = log_end_offset;
            self.write_log_start_offset().await?;
        }
        if self.epochs.truncate_from_end(log_end_offset) {
            self.write_epochs().await?;
        }
        // Kafka's `rebuildProducerState` after `truncateTo`: snapshots above the new end go,
        // and the state is reloaded and replayed (a transaction whose marker was cut is open
        // again).
        self.rebuild_producer_state(&std::collections::BTreeSet::new())
            .await?;
        Ok(())
    }

    /// Deletes every segment and starts an empty log at `offset` (Kafka's
    /// `truncateFullyAndStartAt`, for a follower whose log is entirely out of the leader's
    /// range). The log start offset is checkpointed first and segments go newest first, so a
    /// crash midway leaves a shorter log that recovery accepts.
    pub async fn truncate_fully_and_start_at(
        &mut self,
        offset: i64,
        now_ms: i64,
    ) -> io::Result<()> {
        if offset < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a log cannot start at a negative offset {offset}"),
            ));
        }
        self.tick(now_ms);
        self.log_start_offset = offset;
        self.write_log_start_offset().await?;
        while let Some((_, segment)) = self.segments.pop_last() {
            segment.delete(&self.disk).await?;
        }
        let segment =
            LogSegment::create(&self.disk, &self.dir, offset, &self.config, now_ms).await?;
        self.segments.insert(offset, segment);
        self.recovery_point = offset;
        self.write_recovery_point().await?;
        let (disk, dir) = (self.disk.clone(), self.dir.clone());
        self.producer_state
            .truncate_fully_and_start_at(&disk, &dir, offset)
            .await?;
        if self.epochs.clear() {
            self.write_epochs().await?;
        }
        Ok(())
    }

    /// Moves the log start offset up to `offset` (Kafka's `maybeIncrementLogStartOffset`, for
    /// `DeleteRecords`): reads below it fail, its segments stay until retention deletes them.
    /// Returns whether it moved.
    pub async fn advance_log_start_offset(&mut self, offset: i64) -> Result<bool, LogError> {
        let log_end_offset = self.log_end_offset();
        if offset > log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(false);
        }
        self.log_start_offset = offset;
        if self.epochs.truncate_from_start(offset) {
            self.write_epochs().await?;
        }
        self.producer_state.on_log_start_offset_incremented(offset);
        self.write_log_start_offset().await?;
        Ok(true)
    }

    /// Deletes the segments that lie wholly below `offset`, oldest first, never the active one
    /// (retention's deletion); the log start offset moves up to the first remaining segment.
    /// Returns the deleted base offsets.
    pub async fn delete_segments_below(&mut self, offset: i64) -> io::Result<Vec<i64>> {
        let mut deleted = Vec::new();
        loop {
            let mut bases = self.segments.keys();
            let (Some(&first), Some(&second)) = (bases.next(), bases.next()) else {
                break;
            };
            if second > offset {
                break;
            }
            self.delete_first_segment(first).await?;
            deleted.push(first);
        }
        Ok(deleted)
    }

    /// Deletes the oldest segment, which must be `base_offset` and not the active one.
    pub async fn delete_segment(&mut self, base_offset: i64) -> io::Result<()> {
        let first = *self.segments.keys().next().expect("a log has a segment");
        if base_offset != first || self.segments.len() == 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: only the oldest inactive segment can be deleted, not {base_offset}",
                    self.dir
                ),
            ));
        }
        self.delete_first_segment(first).await
    }

    async fn delete_first_segment(&mut self, base_offset: i64) -> io::Result<()> {
        let segment = self
            .segments
            .remove(&base_offset)
            .expect("the first segment");
        segment.delete(&self.disk).await?;
        let (disk, dir) = (self.disk.clone(), self.dir.clone());
        self.producer_state
            .delete_snapshot_at(&disk, &dir, base_offset)
            .await?;
        let first = *self
            .segments
            .keys()
            .next()
            .expect("the active segment stays");
        if first > self.log_start_offset {
            self.log_start_offset = first;
            if self.epochs.truncate_from_start(first) {
                self.write_epochs().await?;
            }
            self.producer_state.on_log_start_offset_incremented(first);
        }
        self.recovery_point = self.recovery_point.max(first);
        Ok(())
    }
}
