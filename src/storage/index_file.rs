//! What Kafka's offset and time indexes share (Kafka's `AbstractIndex`): a segment's base
//! offset, fixed-size big-endian entries each holding an offset relative to that base, a capacity
//! of `max_index_bytes / entry size` entries, and a file that holds exactly its entries (see
//! `offset_index` for why nothing is preallocated). Each index keeps what differs: the entry's
//! fields, its checks and its lookups.

use crate::storage::offset_index::CorruptIndex;

/// One fixed-size entry of an index file.
pub(super) trait IndexEntry: Copy {
    /// Bytes per entry on disk (Kafka's `entrySize`).
    const BYTES: usize;

    /// The entry's offset relative to the segment's base offset.
    fn relative_offset(&self) -> u32;

    /// Writes the entry's `BYTES` bytes, big-endian, into `out`.
    fn encode(&self, out: &mut [u8]);
}

/// The entries of one index file, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct IndexFile<E> {
    base_offset: i64,
    max_entries: usize,
    entries: Vec<E>,
}

impl<E: IndexEntry> IndexFile<E> {
    /// An empty index; full at `max_index_bytes / E::BYTES` entries (at least one).
    pub(super) fn new(base_offset: i64, max_index_bytes: u64) -> Self {
        IndexFile {
            base_offset,
            max_entries: ((max_index_bytes as usize) / E::BYTES).max(1),
            entries: Vec::new(),
        }
    }

    /// Reads a file of whole entries (the size half of Kafka's `sanityCheck`; `what` prefixes the
    /// error). `decode` turns entry `i` into an entry given the one before it, or refuses it.
    pub(super) fn parse(
        base_offset: i64,
        max_index_bytes: u64,
        bytes: &[u8],
        what: &str,
        mut decode: impl FnMut(usize, &[u8], Option<&E>) -> Result<E, CorruptIndex>,
    ) -> Result<Self, CorruptIndex> {
        if !bytes.len().is_multiple_of(E::BYTES) {
            return Err(CorruptIndex(format!(
                "{what}size {} is not a multiple of {}",
                bytes.len(),
                E::BYTES
            )));
        }
        let mut index = IndexFile::new(base_offset, max_index_bytes);
        for (i, chunk) in bytes.chunks_exact(E::BYTES).enumerate() {
            let entry = decode(i, chunk, index.entries.last())?;
            index.entries.push(entry);
        }
        Ok(index)
    }

    pub(super) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    #[cfg(test)]
    pub(super) fn max_entries(&self) -> usize {
        self.max_entries
    }

    pub(super) fn entries(&self) -> &[E] {
        &self.entries
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    /// The file's length: the entries, nothing preallocated.
    pub(super) fn size_bytes(&self) -> u64 {
        (self.entries.len() * E::BYTES) as u64
    }

    /// Adds an entry (the caller has checked it follows the last) and returns its bytes, for the
    /// segment to append to the file.
    pub(super) fn push<const N: usize>(&mut self, entry: E) -> [u8; N] {
        assert_eq!(N, E::BYTES, "an index entry is {} bytes", E::BYTES);
        self.entries.push(entry);
        let mut bytes = [0; N];
        entry.encode(&mut bytes);
        bytes
    }

    /// Keeps the leading entries for which `keep` holds (entries are sorted so that it holds for
    /// a prefix); returns the file's new length.
    pub(super) fn truncate_while(&mut self, keep: impl FnMut(&E) -> bool) -> u64 {
        let kept = self.entries.partition_point(keep);
        self.entries.truncate(kept);
        self.size_bytes()
    }

    /// Removes every entry whose offset is at or above `offset` (Kafka's `truncateTo`); returns
    /// the file's new length.
    pub(super) fn truncate_to(&mut self, offset: i64) -> u64 {
        let base_offset = self.base_offset;
        self.truncate_while(|e| base_offset + i64::from(e.relative_offset()) < offset)
    }

    /// The whole file.
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = vec![0; self.entries.len() * E::BYTES];
        for (entry, out) in self.entries.iter().zip(bytes.chunks_exact_mut(E::BYTES)) {
            entry.encode(out);
        }
        bytes
    }
}
