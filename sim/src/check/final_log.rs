//! The final committed log of each partition, indexed for the checkers that hold the history up
//! against it (`lost-write`, `inconsistent-read`), and the key each value was sent with.
//!
//! Both checkers must tell an offset that log compaction emptied, which Kafka allows for a
//! compacted topic (Kafka documentation, *Design*, "Log Compaction": compaction keeps at least
//! the last record for each key), from one that was lost. The final state holds values, not
//! keys, so the keys come from the history's `send` invokes; values are unique per write, so a
//! value names its write and its key.

use std::collections::BTreeMap;

use crate::val::Val;

use super::{FinalPartition, FinalState};
use crate::history::{Op, OpType};

/// The key each value was sent with, from the history's `send` invokes (`None`: sent unkeyed).
pub(crate) struct SentKeys<'a>(BTreeMap<&'a str, Option<&'a str>>);

impl<'a> SentKeys<'a> {
    pub(crate) fn from_history(history: &'a [Op]) -> Self {
        let mut keys = BTreeMap::new();
        for op in history {
            if op.f == "send" && op.kind == OpType::Invoke {
                if let Some(value) = op.value.get("value").and_then(Val::as_str) {
                    keys.insert(value, op.value.get("key").and_then(Val::as_str));
                }
            }
        }
        SentKeys(keys)
    }

    /// The key `value` was sent with, if it was sent with one.
    pub(crate) fn key_of(&self, value: &str) -> Option<&'a str> {
        self.0.get(value).copied().flatten()
    }
}

/// One partition's final committed log, indexed.
pub(crate) struct FinalLog<'a> {
    pub(crate) log_start_offset: i64,
    pub(crate) high_watermark: i64,
    by_offset: BTreeMap<i64, Option<&'a str>>,
    /// Where each value is (a value may be found more than once: duplicates).
    by_value: BTreeMap<&'a str, Vec<i64>>,
    /// The last offset holding a record sent with each key.
    last_by_key: BTreeMap<&'a str, i64>,
}

impl<'a> FinalLog<'a> {
    /// Every partition's final log, by partition name.
    pub(crate) fn by_partition(
        state: &'a FinalState,
        keys: &SentKeys<'a>,
    ) -> BTreeMap<&'a str, FinalLog<'a>> {
        state
            .partitions
            .iter()
            .map(|(name, partition)| (name.as_str(), FinalLog::new(partition, keys)))
            .collect()
    }

    fn new(partition: &'a FinalPartition, keys: &SentKeys<'a>) -> Self {
        let mut log = FinalLog {
            log_start_offset: partition.log_start_offset,
            high_watermark: partition.high_watermark,
            by_offset: BTreeMap::new(),
            by_value: BTreeMap::new(),
            last_by_key: BTreeMap::new(),
        };
        for record in &partition.committed {
            let value = record.value.as_deref();
            log.by_offset.insert(record.offset, value);
            if let Some(value) = value {
                log.by_value.entry(value).or_default().push(record.offset);
                if let Some(key) = keys.key_of(value) {
                    let last = log.last_by_key.entry(key).or_insert(record.offset);
                    *last = (*last).max(record.offset);
                }
            }
        }
        log
    }

    /// The record at `offset`: `None` if there is none, `Some(None)` if it is a null record.
    pub(crate) fn at(&self, offset: i64) -> Option<Option<&'a str>> {
        self.by_offset.get(&offset).copied()
    }

    /// The offsets holding `value`, in offset order, if any does.
    pub(crate) fn offsets_of(&self, value: &str) -> Option<&[i64]> {
        self.by_value.get(value).map(Vec::as_slice)
    }

    /// Whether compaction explains that `offset`, below the high watermark, holds no record: a
    /// record sent with `key` (the key of what was written or read there) is committed later.
    pub(crate) fn compacted(&self, offset: i64, key: Option<&str>) -> bool {
        offset < self.high_watermark
            && !self.by_offset.contains_key(&offset)
            && key
                .and_then(|k| self.last_by_key.get(k))
                .is_some_and(|&last| last > offset)
    }
}
