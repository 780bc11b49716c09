//! Kafka's `TransactionIndex`: per segment, `<base>.txnindex` lists the transactions aborted by a
//! marker in that segment, so that a `read_committed` fetch can be told which producers' records
//! to drop (KIP-98). Each entry is Kafka's `AbortedTxn`, 34 bytes, big-endian:
//!
//! ```text
//! version i16 (0) | producerId i64 | firstOffset i64 | lastOffset i64 | lastStableOffset i64
//! ```
//!
//! `lastOffset` is the marker's offset, `lastStableOffset` the log's LSO once the abort is
//! complete. As in Kafka the file is created at the first entry, and its entries are kept in
//! memory (as Kafka maps the other indexes).

use std::io;

use crate::world::Disk;

/// Bytes of one entry (Kafka's `AbortedTxn.TOTAL_SIZE`).
pub const ABORTED_TXN_LEN: usize = 34;
/// Kafka's `AbortedTxn.CURRENT_VERSION`.
const CURRENT_VERSION: i16 = 0;

pub fn txn_index_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.txnindex")
}

/// An aborted transaction: what a fetch answers in `AbortedTransactions` (producer id and first
/// offset), and where it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The abort marker's offset.
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub fn to_bytes(&self) -> [u8; ABORTED_TXN_LEN] {
        let mut out = [0; ABORTED_TXN_LEN];
        out[..2].copy_from_slice(&CURRENT_VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// One entry; a version above Kafka's current one is refused, as Kafka does.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let i64_at = |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8"));
        if bytes.len() < ABORTED_TXN_LEN {
            return Err(format!("an entry of {} bytes", bytes.len()));
        }
        let version = i16::from_be_bytes([bytes[0], bytes[1]]);
        if !(0..=CURRENT_VERSION).contains(&version) {
            return Err(format!("unexpected aborted transaction version {version}"));
        }
        Ok(AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

#[derive(Debug)]
pub struct TransactionIndex {
    path: String,
    base_offset: i64,
    entries: Vec<AbortedTxn>,
    /// Written since its last fsync.
    dirty: bool,
}

impl TransactionIndex {
    pub fn new(dir: &str, base_offset: i64) -> Self {
        TransactionIndex {
            path: format!("{dir}/{}", txn_index_file_name(base_offset)),
            base_offset,
            entries: Vec::new(),
            dirty: false,
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// Reads the file, if any, and checks it as Kafka's `sanityCheck` does (whole entries, every
    /// last offset at or above the segment's base), and that last offsets increase and stay
    /// below `next_offset`. `Ok(Err(why))`: the file cannot be trusted and must be rebuilt.
    pub async fn load(&mut self, disk: &Disk, next_offset: i64) -> io::Result<Result<(), String>> {
        self.entries.clear();
        self.dirty = false;
        if !disk.exists(&self.path) {
            return Ok(Ok(()));
        }
        let bytes = disk.read_all(&self.path).await?;
        if bytes.len() % ABORTED_TXN_LEN != 0 {
            return Ok(Err(format!(
                "{}: {} bytes is not a whole number of entries",
                self.path,
                bytes.len()
            )));
        }
        let mut previous = None;
        for chunk in bytes.chunks(ABORTED_TXN_LEN) {
            let txn = match AbortedTxn::parse(chunk) {
                Ok(txn) => txn,
                Err(why) => return Ok(Err(format!("{}: {why}", self.path))),
            };
            let in_range = txn.last_offset >= self.base_offset && txn.last_offset < next_offset;
            if !in_range || previous.is_some_and(|p| p >= txn.last_offset) {
                self.entries.clear();
                return Ok(Err(format!(
                    "{}: entry {txn:?} is out of order or outside [{}, {next_offset})",
                    self.path, self.base_offset
                )));
            }
            previous = Some(txn.last_offset);
            self.entries.push(txn);
        }
        Ok(Ok(()))
    }

    /// Adds an entry; last offsets must increase (Kafka's `append`).
    pub async fn append(&mut self, disk: &Disk, txn: AbortedTxn) -> io::Result<()> {
        if let Some(last) = self.entries.last() {
            assert!(
                txn.last_offset > last.last_offset,
                "{}: aborted transaction at {} after one at {}",
                self.path,
                txn.last_offset,
                last.last_offset
            );
        }
        if !disk.exists(&self.path) {
            disk.create(&self.path).await?;
        }
        let position = disk.append(&self.path, &txn.to_bytes()).await?;
        assert_eq!(
            position,
            (self.entries.len() * ABORTED_TXN_LEN) as u64,
            "{}: the file and its entries disagree",
            self.path
        );
        self.entries.push(txn);
        self.dirty = true;
        Ok(())
    }

    /// Removes the entries whose marker is at or above `offset` (Kafka's `truncateTo`).
    pub async fn truncate_to(&mut self, disk: &Disk, offset: i64) -> io::Result<()> {
        let keep = self.entries.partition_point(|t| t.last_offset < offset);
        if keep < self.entries.len() {
            disk.truncate(&self.path, (keep * ABORTED_TXN_LEN) as u64)
                .await?;
            self.entries.truncate(keep);
            self.dirty = true;
        }
        Ok(())
    }

    /// Removes every entry (Kafka's `reset`), before a rebuild.
    pub async fn reset(&mut self, disk: &Disk) -> io::Result<()> {
        self.entries.clear();
        if disk.exists(&self.path) && disk.len(&self.path)? > 0 {
            disk.truncate(&self.path, 0).await?;
            self.dirty = true;
        }
        Ok(())
    }

    pub async fn flush(&mut self, disk: &Disk) -> io::Result<()> {
        if self.dirty && disk.exists(&self.path) {
            disk.fsync(&self.path).await?;
        }
        self.dirty = false;
        Ok(())
    }

    pub async fn delete(&self, disk: &Disk) -> io::Result<()> {
        if disk.exists(&self.path) {
            disk.remove(&self.path).await?;
        }
        Ok(())
    }

    /// The entries overlapping the fetch range `[fetch_offset, upper_bound_offset)`, and whether
    /// the search is complete (an entry's LSO reached the upper bound, so no later segment can
    /// hold more; Kafka's `collectAbortedTxns`).
    pub fn collect(&self, fetch_offset: i64, upper_bound_offset: i64) -> (Vec<AbortedTxn>, bool) {
        let mut found = Vec::new();
        for txn in &self.entries {
            if txn.last_offset >= fetch_offset && txn.first_offset < upper_bound_offset {
                found.push(*txn);
            }
            if txn.last_stable_offset >= upper_bound_offset {
                return (found, true);
            }
        }
        (found, false)
    }
}
