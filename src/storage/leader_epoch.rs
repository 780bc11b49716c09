//! Kafka's leader epoch cache (`LeaderEpochFileCache`, KIP-101, KIP-279): for each leader epoch
//! that wrote to the log, the first offset it wrote. A follower asks the leader where its epoch
//! ended (`OffsetsForLeaderEpoch`) and truncates there, instead of to its high watermark, which
//! is what lost acknowledged writes before KIP-101.
//!
//! The cache lives in the partition directory as `leader-epoch-checkpoint`, in the checkpoint
//! frame (see `checkpoint`) with `<epoch> <startOffset>` lines. The log writes it, atomically and
//! fsynced, whenever it changes: on the append of a batch with a new epoch, as Kafka's `assign`
//! does, before the batch is written, so the file never misses an epoch the log holds; and on
//! truncation (Kafka flushes those in the background; a stale file is repaired on load, here as
//! there, by truncating the cache to the recovered log).
//!
//! This type is pure state; `Log` does the file I/O with `to_text` and `parse`.

use crate::storage::checkpoint::{self, CheckpointError};

pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
/// Kafka's `UNDEFINED_EPOCH` and `UNDEFINED_EPOCH_OFFSET`.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// An epoch and the first offset written in it (Kafka's `EpochEntry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// Epochs and start offsets, both strictly increasing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderEpochFileCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochFileCache {
    /// Reads a checkpoint's text, assigning each entry in turn as Kafka's constructor does (so
    /// entries that break monotonicity are dropped by later ones).
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let mut cache = LeaderEpochFileCache::default();
        for line in checkpoint::parse_entries(text)? {
            let f = checkpoint::fields(line, 2)?;
            let malformed = || CheckpointError(format!("malformed line {line:?}"));
            let epoch: i32 = f[0].parse().map_err(|_| malformed())?;
            let start_offset: i64 = f[1].parse().map_err(|_| malformed())?;
            if epoch < 0 || start_offset < 0 {
                return Err(malformed());
            }
            cache.assign(epoch, start_offset);
        }
        Ok(cache)
    }

    pub fn to_text(&self) -> String {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{} {}", e.epoch, e.start_offset))
            .collect();
        checkpoint::format_entries(&lines)
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn latest_entry(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset` (Kafka's `assign`). Nothing changes if the
    /// epoch is the latest one and starts no later; otherwise every entry whose epoch or start
    /// offset is not below the new one is removed first, keeping both increasing. Negative
    /// epochs (a batch from before KIP-101) are not recorded. Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        if let Some(latest) = self.latest_entry() {
            if latest.epoch == epoch && latest.start_offset <= start_offset {
                return false;
            }
        }
        while let Some(last) = self.entries.last() {
            if last.epoch >= epoch || last.start_offset >= start_offset {
                self.entries.pop();
            } else {
                break;
            }
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// The largest epoch at or below `requested` and the offset where it ended: the start of the
    /// next epoch, or `log_end_offset` for the latest (Kafka's `endOffsetFor`, KIP-101/KIP-279).
    /// A requested epoch below every known one gets its own epoch and the first known start
    /// offset; an undefined or unknown-and-above one gets (-1, -1).
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let higher = self.entries.partition_point(|e| e.epoch <= requested);
        let Some(next) = self.entries.get(higher) else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        match higher.checked_sub(1).map(|i| self.entries[i]) {
            None => (requested, next.start_offset),
            Some(floor) => (floor.epoch, next.start_offset),
        }
    }

    /// The epoch of the batch holding `offset`, if the cache covers it (Kafka's `epochForOffset`).
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let at_or_below = self.entries.partition_point(|e| e.start_offset <= offset);
        at_or_below.checked_sub(1).map(|i| self.entries[i].epoch)
    }

    /// Removes every entry starting at or after `end_offset` (Kafka's `truncateFromEnd`).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// Removes the entries starting at or before `start_offset`, then puts back the last of them
    /// as starting at `start_offset` (Kafka's `truncateFromStart`: the epoch in force at the new
    /// log start offset is kept).
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let removed = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        let Some(last_removed) = removed.checked_sub(1).map(|i| self.entries[i]) else {
            return false;
        };
        if removed == 1 && last_removed.start_offset == start_offset {
            return false;
        }
        self.entries.drain(..removed);
        self.entries.insert(
            0,
            EpochEntry {
                epoch: last_removed.epoch,
                start_offset,
            },
        );
        true
    }

    pub fn clear(&mut self) -> bool {
        let changed = !self.entries.is_empty();
        self.entries.clear();
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochFileCache {
        let mut cache = LeaderEpochFileCache::default();
        for &(epoch, start) in entries {
            assert!(cache.assign(epoch, start));
        }
        cache
    }

    fn pairs(cache: &LeaderEpochFileCache) -> Vec<(i32, i64)> {
        cache
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn the_checkpoint_is_kafkas_text() {
        let c = cache(&[(0, 0), (2, 100), (5, 250)]);
        assert_eq!(c.to_text(), "0\n3\n0 0\n2 100\n5 250\n");
        assert_eq!(LeaderEpochFileCache::parse(&c.to_text()).unwrap(), c);
        assert!(LeaderEpochFileCache::parse("").unwrap().is_empty());
        for bad in ["0\n1\n1\n", "0\n1\n1 x\n", "0\n1\n-3 5\n", "0\n2\n1 5\n"] {
            assert!(LeaderEpochFileCache::parse(bad).is_err(), "{bad:?}");
        }
        // Non-monotonic entries are dropped by the later ones, as Kafka's constructor does.
        let c = LeaderEpochFileCache::parse("0\n3\n1 0\n3 50\n2 40\n").unwrap();
        assert_eq!(pairs(&c), vec![(1, 0), (2, 40)]);
    }

    #[test]
    fn assign_records_only_new_epochs() {
        let mut c = cache(&[(1, 0)]);
        assert!(!c.assign(1, 10), "same epoch, later offset: no change");
        assert!(!c.assign(-1, 10), "no epoch");
        assert!(c.assign(3, 10));
        assert!(c.assign(3, 7), "same epoch, earlier offset: moved back");
        assert_eq!(pairs(&c), vec![(1, 0), (3, 7)]);
        // A lower epoch truncates the entries that conflict with it (Kafka warns and does so).
        assert!(c.assign(2, 20));
        assert_eq!(pairs(&c), vec![(1, 0), (2, 20)]);
        assert!(c.assign(4, 0));
        assert_eq!(pairs(&c), vec![(4, 0)]);
    }

    #[test]
    fn end_offset_for_follows_kip_101() {
        let c = cache(&[(1, 0), (2, 100), (4, 250)]);
        let leo = 300;
        assert_eq!(
            c.end_offset_for(4, leo),
            (4, 300),
            "the latest epoch ends at the LEO"
        );
        assert_eq!(c.end_offset_for(1, leo), (1, 100));
        assert_eq!(c.end_offset_for(2, leo), (2, 250));
        assert_eq!(
            c.end_offset_for(3, leo),
            (2, 250),
            "an unknown epoch: the one below it"
        );
        assert_eq!(
            c.end_offset_for(0, leo),
            (0, 0),
            "below every epoch: the first start"
        );
        assert_eq!(c.end_offset_for(5, leo), (-1, -1));
        assert_eq!(c.end_offset_for(UNDEFINED_EPOCH, leo), (-1, -1));
        assert_eq!(
            LeaderEpochFileCache::default().end_offset_for(0, 9),
            (-1, -1)
        );
    }

    #[test]
    fn epoch_for_offset() {
        let c = cache(&[(1, 10), (2, 100)]);
        assert_eq!(c.epoch_for_offset(5), None);
        assert_eq!(c.epoch_for_offset(10), Some(1));
        assert_eq!(c.epoch_for_offset(99), Some(1));
        assert_eq!(c.epoch_for_offset(1000), Some(2));
    }

    #[test]
    fn truncations() {
        let mut c = cache(&[(1, 0), (2, 100), (4, 250)]);
        assert!(!c.truncate_from_end(251));
        assert!(c.truncate_from_end(250));
        assert_eq!(pairs(&c), vec![(1, 0), (2, 100)]);

        let mut c = cache(&[(1, 0), (2, 100), (4, 250)]);
        assert!(!c.truncate_from_start(0));
        assert!(c.truncate_from_start(120));
        assert_eq!(pairs(&c), vec![(2, 120), (4, 250)]);
        assert!(c.truncate_from_start(250));
        assert_eq!(pairs(&c), vec![(4, 250)]);
        assert!(!c.truncate_from_start(250));
        assert!(!c.truncate_from_start(10));
        assert!(c.clear());
        assert!(!c.clear());
    }
}
