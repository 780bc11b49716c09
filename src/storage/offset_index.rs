//! Kafka's offset index (`OffsetIndex`): the `<base>.index` file beside each segment, a sparse
//! map from offsets to the byte position of the batch holding them.
//!
//! Each entry is 8 bytes, big-endian: the offset relative to the segment's base offset (4 bytes)
//! and the position of a batch in the `.log` file (4 bytes). The entry's offset is the last offset
//! of the batch at that position (Kafka's `LogSegment.recover` indexes `batch.lastOffset()`), so
//! a lookup gives a position at or before the batch holding the target, and a reader scans batch
//! headers forward from there.
//!
//! On disk the file holds exactly its entries: Samsa does not preallocate index files. Kafka
//! preallocates the active segment's index to `segment.index.bytes` and trims it to the entries
//! at roll and close; an existing file is read as `size / 8` entries either way, so Kafka's tools
//! read Samsa's files, and a crash never leaves a zero-filled tail behind (Kafka's would be caught
//! by recovery). The index is full, and the segment rolls, at `segment.index.bytes / 8` entries,
//! as in Kafka.
//!
//! The index is pure state: the segment writes the bytes `append` returns and truncates the file
//! to the length `truncate_to` returns.

use std::fmt;

use crate::storage::index_file::{IndexEntry, IndexFile};

/// Bytes per entry (Kafka's `OffsetIndex.ENTRY_SIZE`).
pub const ENTRY_BYTES: usize = 8;

/// Why an index file was not trusted: Kafka's `CorruptIndexException`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorruptIndex(pub String);

impl fmt::Display for CorruptIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt index: {}", self.0)
    }
}

impl std::error::Error for CorruptIndex {}

/// An absolute offset and a position in the segment file (Kafka's `OffsetPosition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetPosition {
    pub offset: i64,
    pub position: u64,
}

/// An entry as stored: (relative offset, position).
type Entry = (u32, u32);

impl IndexEntry for Entry {
    const BYTES: usize = ENTRY_BYTES;

    fn relative_offset(&self) -> u32 {
        self.0
    }

    fn encode(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.0.to_be_bytes());
        out[4..8].copy_from_slice(&self.1.to_be_bytes());
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetIndex {
    /// (relative offset, position), both strictly increasing.
    file: IndexFile<Entry>,
}

impl OffsetIndex {
    /// An empty index; full at `max_index_bytes / 8` entries (at least one).
    pub fn new(base_offset: i64, max_index_bytes: u64) -> Self {
        OffsetIndex {
            file: IndexFile::new(base_offset, max_index_bytes),
        }
    }

    /// Reads an index file, with Kafka's sanity check (`OffsetIndex.sanityCheck`): a whole
    /// number of entries, and offsets not below the base. Samsa also requires offsets and
    /// positions to increase, which every index it writes satisfies.
    pub fn parse(
        base_offset: i64,
        max_index_bytes: u64,
        bytes: &[u8],
    ) -> Result<Self, CorruptIndex> {
        let file = IndexFile::parse(base_offset, max_index_bytes, bytes, "", |i, chunk, last| {
            let relative = i32::from_be_bytes(chunk[0..4].try_into().expect("4 bytes"));
            let position = i32::from_be_bytes(chunk[4..8].try_into().expect("4 bytes"));
            if relative < 0 || position < 0 {
                return Err(CorruptIndex(format!(
                    "entry {i} (relative offset {relative}, position {position}) is negative"
                )));
            }
            if let Some(&(last_relative, last_position)) = last {
                if relative as u32 <= last_relative || position as u32 <= last_position {
                    return Err(CorruptIndex(format!(
                        "entry {i} (offset {}, position {position}) does not follow entry {} \
                         (offset {}, position {last_position})",
                        base_offset + i64::from(relative),
                        i - 1,
                        base_offset + i64::from(last_relative)
                    )));
                }
            }
            Ok((relative as u32, position as u32))
        })?;
        Ok(OffsetIndex { file })
    }

    pub fn base_offset(&self) -> i64 {
        self.file.base_offset()
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

    /// The file's length: the entries, nothing preallocated.
    pub fn size_bytes(&self) -> u64 {
        self.file.size_bytes()
    }

    pub fn entry(&self, i: usize) -> OffsetPosition {
        let (relative, position) = self.file.entries()[i];
        OffsetPosition {
            offset: self.base_offset() + i64::from(relative),
            position: u64::from(position),
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = OffsetPosition> + '_ {
        (0..self.len()).map(|i| self.entry(i))
    }

    /// The last entry, or (base offset, 0) when empty (Kafka's `lastEntry`).
    pub fn last_entry(&self) -> OffsetPosition {
        match self.len() {
            0 => OffsetPosition {
                offset: self.base_offset(),
                position: 0,
            },
            n => self.entry(n - 1),
        }
    }

    /// Whether `offset` fits the 4-byte relative offset (Kafka's `canAppendOffset` without the
    /// full check, which the segment's roll decision makes separately).
    pub fn can_represent(&self, offset: i64) -> bool {
        (0..=i64::from(i32::MAX)).contains(&(offset - self.base_offset()))
    }

    /// Adds an entry and returns its bytes, for the segment to append to the file. Offsets and
    /// positions must increase and the index must not be full.
    pub fn append(&mut self, offset: i64, position: u64) -> [u8; ENTRY_BYTES] {
        assert!(!self.is_full(), "append to a full offset index");
        assert!(
            self.can_represent(offset),
            "offset {offset} overflows the index"
        );
        let position = u32::try_from(position).expect("segment positions fit 4 bytes");
        assert!(
            position <= i32::MAX as u32,
            "position {position} overflows the index"
        );
        let relative = (offset - self.base_offset()) as u32;
        if let Some(&(last_relative, last_position)) = self.file.entries().last() {
            assert!(
                relative > last_relative && position > last_position,
                "offset index entries must increase: ({offset}, {position}) after ({}, {last_position})",
                self.base_offset() + i64::from(last_relative)
            );
        }
        self.file.push((relative, position))
    }

    /// The largest entry whose offset is at or below `target`, or (base offset, 0) if there is
    /// none (Kafka's `lookup`): a binary search.
    pub fn lookup(&self, target: i64) -> OffsetPosition {
        let base_offset = self.base_offset();
        let below = self
            .file
            .entries()
            .partition_point(|&(relative, _)| base_offset + i64::from(relative) <= target);
        match below {
            0 => OffsetPosition {
                offset: base_offset,
                position: 0,
            },
            n => self.entry(n - 1),
        }
    }

    /// Removes every entry whose offset is at or above `offset` (Kafka's `truncateTo`); returns
    /// the file's new length.
    pub fn truncate_to(&mut self, offset: i64) -> u64 {
        self.file.truncate_to(offset)
    }

    /// Removes every entry whose position is at or past `position` (only an index that passed
    /// the sanity check while wrong has any after a truncation by offset); returns the file's
    /// new length.
    pub fn truncate_to_position(&mut self, position: u64) -> u64 {
        self.file.truncate_while(|&(_, p)| u64::from(p) < position)
    }

    /// The whole file.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.file.to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(entries: &[(i64, u64)]) -> OffsetIndex {
        let mut index = OffsetIndex::new(100, 1024);
        for &(offset, position) in entries {
            index.append(offset, position);
        }
        index
    }

    #[test]
    fn entries_are_kafkas_eight_bytes() {
        let mut index = OffsetIndex::new(100, 1024);
        assert_eq!(index.append(103, 4096), [0, 0, 0, 3, 0, 0, 0x10, 0]);
        assert_eq!(index.size_bytes(), 8);
        assert_eq!(index.to_bytes(), vec![0, 0, 0, 3, 0, 0, 0x10, 0]);
    }

    #[test]
    fn lookup_is_the_largest_entry_at_or_below() {
        let index = index(&[(104, 500), (110, 1000), (111, 1500)]);
        let at = |target| {
            let e = index.lookup(target);
            (e.offset, e.position)
        };
        assert_eq!(at(99), (100, 0));
        assert_eq!(at(103), (100, 0));
        assert_eq!(at(104), (104, 500));
        assert_eq!(at(109), (104, 500));
        assert_eq!(at(110), (110, 1000));
        assert_eq!(at(i64::MAX), (111, 1500));
        assert_eq!(OffsetIndex::new(7, 8).lookup(50).offset, 7);
    }

    #[test]
    fn truncate_to_drops_entries_at_and_above() {
        let mut index = index(&[(104, 500), (110, 1000), (111, 1500)]);
        assert_eq!(index.truncate_to(200), 24);
        assert_eq!(index.truncate_to(110), 8);
        assert_eq!(index.last_entry().offset, 104);
        assert_eq!(index.truncate_to(0), 0);
        assert!(index.is_empty());
    }

    #[test]
    fn truncate_to_position_drops_entries_at_and_past_it() {
        let mut index = index(&[(104, 500), (110, 1000), (111, 1500)]);
        assert_eq!(index.truncate_to_position(1500), 16);
        assert_eq!(index.truncate_to_position(1), 0);
    }

    #[test]
    fn full_at_the_configured_size() {
        let mut index = OffsetIndex::new(0, 20); // 2 entries of 8 bytes
        index.append(1, 10);
        assert!(!index.is_full());
        index.append(2, 20);
        assert!(index.is_full());
        assert!(OffsetIndex::new(0, 0).file.max_entries() >= 1);
    }

    #[test]
    fn parse_reads_back_what_was_written() {
        let written = index(&[(104, 500), (110, 1000)]);
        let read = OffsetIndex::parse(100, 1024, &written.to_bytes()).unwrap();
        assert_eq!(read, written);
        assert!(OffsetIndex::parse(100, 1024, &[]).unwrap().is_empty());
    }

    #[test]
    fn parse_refuses_what_the_sanity_check_refuses() {
        let bytes = index(&[(104, 500), (110, 1000)]).to_bytes();
        let e = OffsetIndex::parse(100, 1024, &bytes[..12]).unwrap_err();
        assert!(e.to_string().contains("not a multiple of 8"), "{e}");

        let mut swapped = bytes[8..].to_vec();
        swapped.extend_from_slice(&bytes[..8]);
        let e = OffsetIndex::parse(100, 1024, &swapped).unwrap_err();
        assert!(e.to_string().contains("does not follow"), "{e}");

        let zeros = [0u8; 16]; // a preallocated tail: the same entry twice
        assert!(OffsetIndex::parse(100, 1024, &zeros).is_err());

        let mut negative = bytes.clone();
        negative[0] = 0x80;
        assert!(OffsetIndex::parse(100, 1024, &negative).is_err());
    }

    #[test]
    #[should_panic(expected = "must increase")]
    fn appends_must_increase() {
        index(&[(110, 1000), (110, 1500)]);
    }
}
