//! Kafka's time index (`TimeIndex`): the `<base>.timeindex` file beside each segment, a sparse
//! map from timestamps to offsets, for `ListOffsets` by time and for time-based retention.
//!
//! Each entry is 12 bytes, big-endian: a timestamp (8 bytes) and an offset relative to the
//! segment's base offset (4 bytes). An entry (T, O) is written alongside an offset index entry
//! when the segment's largest timestamp so far has grown: T is that largest timestamp and O the
//! last offset of the batch that carried it. So timestamps strictly increase, offsets never
//! decrease, and every record at or below O has a timestamp at or below T. A final entry is
//! added when the segment stops being active (Kafka's `onBecomeInactiveSegment`), so the last
//! entry of an inactive segment holds its largest timestamp.
//!
//! Like the offset index, the file holds exactly its entries (no preallocation; see
//! `offset_index`), and the index is pure state.

use crate::storage::offset_index::CorruptIndex;

/// Bytes per entry (Kafka's `TimeIndex.ENTRY_SIZE`).
pub const ENTRY_BYTES: usize = 12;

/// Kafka's `RecordBatch.NO_TIMESTAMP`.
pub const NO_TIMESTAMP: i64 = -1;

/// A timestamp and an absolute offset (Kafka's `TimestampOffset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeIndex {
    base_offset: i64,
    max_entries: usize,
    /// (timestamp, relative offset): timestamps strictly increase, offsets never decrease.
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    /// An empty index; full at `max_index_bytes / 12` entries (at least one).
    pub fn new(base_offset: i64, max_index_bytes: u64) -> Self {
        TimeIndex {
            base_offset,
            max_entries: ((max_index_bytes as usize) / ENTRY_BYTES).max(1),
            entries: Vec::new(),
        }
    }

    /// Reads a time index file, with Kafka's sanity check (`TimeIndex.sanityCheck`): a whole
    /// number of entries and offsets not below the base; and, as every index Samsa writes,
    /// timestamps increasing and offsets not decreasing.
    pub fn parse(
        base_offset: i64,
        max_index_bytes: u64,
        bytes: &[u8],
    ) -> Result<Self, CorruptIndex> {
        if !bytes.len().is_multiple_of(ENTRY_BYTES) {
            return Err(CorruptIndex(format!(
                "time index size {} is not a multiple of {ENTRY_BYTES}",
                bytes.len()
            )));
        }
        let mut index = TimeIndex::new(base_offset, max_index_bytes);
        for (i, chunk) in bytes.chunks_exact(ENTRY_BYTES).enumerate() {
            let timestamp = i64::from_be_bytes(chunk[0..8].try_into().expect("8 bytes"));
            let relative = i32::from_be_bytes(chunk[8..12].try_into().expect("4 bytes"));
            if relative < 0 || timestamp <= NO_TIMESTAMP {
                return Err(CorruptIndex(format!(
                    "time index entry {i} (timestamp {timestamp}, relative offset {relative}) is \
                     negative"
                )));
            }
            if let Some(&(last_timestamp, last_relative)) = index.entries.last() {
                if timestamp <= last_timestamp || (relative as u32) < last_relative {
                    return Err(CorruptIndex(format!(
                        "time index entry {i} (timestamp {timestamp}, offset {}) does not follow \
                         (timestamp {last_timestamp}, offset {})",
                        base_offset + i64::from(relative),
                        base_offset + i64::from(last_relative)
                    )));
                }
            }
            index.entries.push((timestamp, relative as u32));
        }
        Ok(index)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    pub fn size_bytes(&self) -> u64 {
        (self.entries.len() * ENTRY_BYTES) as u64
    }

    pub fn entry(&self, i: usize) -> TimestampOffset {
        let (timestamp, relative) = self.entries[i];
        TimestampOffset {
            timestamp,
            offset: self.base_offset + i64::from(relative),
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = TimestampOffset> + '_ {
        (0..self.entries.len()).map(|i| self.entry(i))
    }

    /// The last entry, or (no timestamp, base offset) when empty (Kafka's `lastEntry`).
    pub fn last_entry(&self) -> TimestampOffset {
        match self.entries.len() {
            0 => TimestampOffset {
                timestamp: NO_TIMESTAMP,
                offset: self.base_offset,
            },
            n => self.entry(n - 1),
        }
    }

    /// Adds (timestamp, offset) if the timestamp is above the last entry's (Kafka's
    /// `maybeAppend`), returning the bytes for the file. A full index takes no entry unless
    /// `skip_full_check` (the final entry of a segment that stops being active).
    pub fn maybe_append(
        &mut self,
        timestamp: i64,
        offset: i64,
        skip_full_check: bool,
    ) -> Option<[u8; ENTRY_BYTES]> {
        let last = self.last_entry();
        if timestamp <= last.timestamp || (self.is_full() && !skip_full_check) {
            return None;
        }
        assert!(
            offset >= last.offset,
            "time index offsets must not decrease: {offset} after {}",
            last.offset
        );
        let relative = offset - self.base_offset;
        assert!(
            (0..=i64::from(i32::MAX)).contains(&relative),
            "offset {offset} overflows the time index"
        );
        self.entries.push((timestamp, relative as u32));
        let mut bytes = [0; ENTRY_BYTES];
        bytes[0..8].copy_from_slice(&timestamp.to_be_bytes());
        bytes[8..12].copy_from_slice(&(relative as u32).to_be_bytes());
        Some(bytes)
    }

    /// The largest entry whose timestamp is strictly below `target`, or (no timestamp, base
    /// offset) if there is none: every record at or below its offset is older than `target`, so
    /// the first record at or after `target` lies after it. Kafka's `lookup` takes the largest
    /// entry at or below `target`, which with equal timestamps may skip an earlier record of
    /// exactly `target`; strictly below keeps `ListOffsets` exact.
    pub fn lookup_below(&self, target: i64) -> TimestampOffset {
        match self.entries.partition_point(|&(ts, _)| ts < target) {
            0 => TimestampOffset {
                timestamp: NO_TIMESTAMP,
                offset: self.base_offset,
            },
            n => self.entry(n - 1),
        }
    }

    /// Removes every entry whose offset is at or above `offset` (Kafka's `truncateTo`); returns
    /// the file's new length.
    pub fn truncate_to(&mut self, offset: i64) -> u64 {
        let keep = self
            .entries
            .partition_point(|&(_, relative)| self.base_offset + i64::from(relative) < offset);
        self.entries.truncate(keep);
        self.size_bytes()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.entries.len() * ENTRY_BYTES);
        for &(timestamp, relative) in &self.entries {
            bytes.extend_from_slice(&timestamp.to_be_bytes());
            bytes.extend_from_slice(&relative.to_be_bytes());
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_kafkas_twelve_bytes() {
        let mut index = TimeIndex::new(100, 1200);
        let bytes = index.maybe_append(0x0102, 105, false).unwrap();
        assert_eq!(bytes, [0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 5]);
        assert_eq!(index.to_bytes(), bytes.to_vec());
    }

    #[test]
    fn only_a_larger_timestamp_is_appended() {
        let mut index = TimeIndex::new(0, 1200);
        assert!(index.maybe_append(NO_TIMESTAMP, 3, false).is_none());
        assert!(index.maybe_append(10, 3, false).is_some());
        assert!(index.maybe_append(10, 5, false).is_none());
        assert!(index.maybe_append(9, 5, false).is_none());
        assert!(index.maybe_append(11, 3, false).is_some()); // same offset, newer timestamp
        assert_eq!(index.len(), 2);
        assert_eq!(
            index.last_entry(),
            TimestampOffset {
                timestamp: 11,
                offset: 3
            }
        );
    }

    #[test]
    fn a_full_index_takes_only_the_final_entry() {
        let mut index = TimeIndex::new(0, 12);
        index.maybe_append(1, 1, false).unwrap();
        assert!(index.is_full());
        assert!(index.maybe_append(2, 2, false).is_none());
        assert!(index.maybe_append(2, 2, true).is_some());
    }

    #[test]
    fn lookup_below_is_strict() {
        let mut index = TimeIndex::new(100, 1200);
        for (ts, offset) in [(10, 101), (20, 105), (30, 105), (40, 120)] {
            index.maybe_append(ts, offset, false).unwrap();
        }
        let at = |t| {
            let e = index.lookup_below(t);
            (e.timestamp, e.offset)
        };
        assert_eq!(at(5), (NO_TIMESTAMP, 100));
        assert_eq!(at(10), (NO_TIMESTAMP, 100));
        assert_eq!(at(11), (10, 101));
        assert_eq!(at(30), (20, 105));
        assert_eq!(at(i64::MAX), (40, 120));
    }

    #[test]
    fn truncate_and_parse() {
        let mut index = TimeIndex::new(100, 1200);
        for (ts, offset) in [(10, 101), (20, 105), (40, 120)] {
            index.maybe_append(ts, offset, false).unwrap();
        }
        assert_eq!(
            TimeIndex::parse(100, 1200, &index.to_bytes()).unwrap(),
            index
        );
        assert_eq!(index.truncate_to(105), 12);
        assert_eq!(index.last_entry().offset, 101);

        let bytes = {
            let mut i = TimeIndex::new(100, 1200);
            i.maybe_append(10, 101, false);
            i.maybe_append(20, 105, false);
            i.to_bytes()
        };
        assert!(TimeIndex::parse(100, 1200, &bytes[..13]).is_err());
        let mut backwards = bytes[12..].to_vec();
        backwards.extend_from_slice(&bytes[..12]);
        let e = TimeIndex::parse(100, 1200, &backwards).unwrap_err();
        assert!(e.to_string().contains("does not follow"), "{e}");
        assert!(TimeIndex::parse(100, 1200, &[0; 12]).is_ok()); // timestamp 0 is a timestamp
        assert!(TimeIndex::parse(100, 1200, &[0xff; 12]).is_err());
    }
}
