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

use crate::storage::index_file::{IndexEntry, IndexFile};
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

/// An entry as stored: (timestamp, relative offset).
type Entry = (i64, u32);

impl IndexEntry for Entry {
    const BYTES: usize = ENTRY_BYTES;

    fn relative_offset(&self) -> u32 {
        self.1
    }

    fn encode(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.0.to_be_bytes());
        out[8..12].copy_from_slice(&self.1.to_be_bytes());
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeIndex {
    /// (timestamp, relative offset): timestamps strictly increase, offsets never decrease.
    file: IndexFile<Entry>,
}

impl TimeIndex {
    /// An empty index; full at `max_index_bytes / 12` entries (at least one).
    pub fn new(base_offset: i64, max_index_bytes: u64) -> Self {
        TimeIndex {
            file: IndexFile::new(base_offset, max_index_bytes),
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
        let file = IndexFile::parse(
            base_offset,
            max_index_bytes,
            bytes,
            "time index ",
            |i, chunk, last| {
                let timestamp = i64::from_be_bytes(chunk[0..8].try_into().expect("8 bytes"));
                let relative = i32::from_be_bytes(chunk[8..12].try_into().expect("4 bytes"));
                if relative < 0 || timestamp <= NO_TIMESTAMP {
                    return Err(CorruptIndex(format!(
                        "time index entry {i} (timestamp {timestamp}, relative offset {relative}) \
                         is negative"
                    )));
                }
                if let Some(&(last_timestamp, last_relative)) = last {
                    if timestamp <= last_timestamp || (relative as u32) < last_relative {
                        return Err(CorruptIndex(format!(
                            "time index entry {i} (timestamp {timestamp}, offset {}) does not \
                             follow (timestamp {last_timestamp}, offset {})",
                            base_offset + i64::from(relative),
                            base_offset + i64::from(last_relative)
                        )));
                    }
                }
                Ok((timestamp, relative as u32))
            },
        )?;
        Ok(TimeIndex { file })
    }

    pub fn len(&self) -> usize {
        self.file.len()
    }

    pub fn is_empty(&self) -> bool {
        self.file.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }

    pub fn size_bytes(&self) -> u64 {
        self.file.size_bytes()
    }

    pub fn entry(&self, i: usize) -> TimestampOffset {
        let (timestamp, relative) = self.file.entries()[i];
        TimestampOffset {
            timestamp,
            offset: self.file.base_offset() + i64::from(relative),
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = TimestampOffset> + '_ {
        (0..self.len()).map(|i| self.entry(i))
    }

    /// The last entry, or (no timestamp, base offset) when empty (Kafka's `lastEntry`).
    pub fn last_entry(&self) -> TimestampOffset {
        match self.len() {
            0 => TimestampOffset {
                timestamp: NO_TIMESTAMP,
                offset: self.file.base_offset(),
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
        let relative = offset - self.file.base_offset();
        assert!(
            (0..=i64::from(i32::MAX)).contains(&relative),
            "offset {offset} overflows the time index"
        );
        Some(self.file.push((timestamp, relative as u32)))
    }

    /// The largest entry whose timestamp is strictly below `target`, or (no timestamp, base
    /// offset) if there is none: every record at or below its offset is older than `target`, so
    /// the first record at or after `target` lies after it. Kafka's `lookup` takes the largest
    /// entry at or below `target`, which with equal timestamps may skip an earlier record of
    /// exactly `target`; strictly below keeps `ListOffsets` exact.
    pub fn lookup_below(&self, target: i64) -> TimestampOffset {
        match self.file.entries().partition_point(|&(ts, _)| ts < target) {
            0 => TimestampOffset {
                timestamp: NO_TIMESTAMP,
                offset: self.file.base_offset(),
            },
            n => self.entry(n - 1),
        }
    }

    /// Removes every entry whose offset is at or above `offset` (Kafka's `truncateTo`); returns
    /// the file's new length.
    pub fn truncate_to(&mut self, offset: i64) -> u64 {
        self.file.truncate_to(offset)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.file.to_bytes()
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
