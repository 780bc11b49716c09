//! One file as the page cache holds it: the visible content, the durable content, and the
//! ordered pending changes that lead from one to the other.

use std::collections::VecDeque;

use rand::Rng;

use super::{FileLoss, TornWrite};

/// A change not yet durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Change {
    /// Bytes written at an offset no greater than the file's length at that time: the zeros
    /// of a gap are recorded as data, so every visible byte belongs to either the durable
    /// content or a pending write (which keeps `corrupt_at` and tearing exact).
    Write { offset: u64, data: Vec<u8> },
    /// A shrinking truncate (an extending one is a write of zeros).
    Shrink { len: u64 },
}

impl Change {
    pub(super) fn apply(&self, content: &mut Vec<u8>) {
        match self {
            Change::Write { offset, data } => {
                let start = to_usize(*offset);
                assert!(
                    start <= content.len(),
                    "a pending write starts within the file"
                );
                let end = start + data.len();
                if content.len() < end {
                    content.resize(end, 0);
                }
                content[start..end].copy_from_slice(data);
            }
            Change::Shrink { len } => {
                assert!(to_usize(*len) <= content.len(), "a pending shrink shrinks");
                content.truncate(to_usize(*len));
            }
        }
    }

    pub(super) fn data_len(&self) -> u64 {
        match self {
            Change::Write { data, .. } => data.len() as u64,
            Change::Shrink { .. } => 0,
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Pending {
    pub(super) at_ms: u64,
    pub(super) change: Change,
}

#[derive(Clone, Debug, Default)]
pub(super) struct File {
    pub(super) visible: Vec<u8>,
    pub(super) durable: Vec<u8>,
    /// Oldest first. Invariant: applying these to `durable` gives `visible`.
    pub(super) pending: VecDeque<Pending>,
}

impl File {
    pub(super) fn record(&mut self, change: Change, now_ms: u64, writeback_ms: u64) {
        self.write_back(now_ms, writeback_ms);
        change.apply(&mut self.visible);
        self.pending.push_back(Pending {
            at_ms: now_ms,
            change,
        });
    }

    /// Makes durable the pending changes the kernel has written back by `now_ms`, in order.
    pub(super) fn write_back(&mut self, now_ms: u64, writeback_ms: u64) {
        while let Some(front) = self.pending.front() {
            if front.at_ms.saturating_add(writeback_ms) > now_ms {
                break;
            }
            let front = self.pending.pop_front().expect("front exists");
            front.change.apply(&mut self.durable);
        }
        if self.pending.is_empty() {
            debug_assert_eq!(
                self.durable, self.visible,
                "written back content is visible"
            );
        }
    }

    pub(super) fn fsync(&mut self) {
        while let Some(p) = self.pending.pop_front() {
            p.change.apply(&mut self.durable);
        }
        assert_eq!(
            self.durable.len(),
            self.visible.len(),
            "fsync reaches visible"
        );
        debug_assert_eq!(self.durable, self.visible, "fsync reaches visible");
    }

    /// Drops the pending changes, keeping a torn prefix of the oldest with probability 1/2.
    pub(super) fn crash<R: Rng + ?Sized>(
        &mut self,
        sector_bytes: u64,
        rng: &mut R,
    ) -> Option<FileLoss> {
        let oldest = self.pending.pop_front()?;
        let lost_ops = 1 + self.pending.len() as u64;
        let len_before = self.visible.len() as u64;
        let mut lost_bytes: u64 = self.pending.iter().map(|p| p.change.data_len()).sum();
        lost_bytes += oldest.change.data_len();
        let torn = match &oldest.change {
            Change::Write { offset, data } => tear(*offset, data, sector_bytes, rng),
            Change::Shrink { .. } => None,
        };
        if let (Some(torn), Change::Write { offset, data }) = (&torn, &oldest.change) {
            let kept = data[..to_usize(torn.kept_bytes)].to_vec();
            Change::Write {
                offset: *offset,
                data: kept,
            }
            .apply(&mut self.durable);
            lost_bytes -= torn.kept_bytes;
        }
        self.pending.clear();
        self.visible = self.durable.clone();
        Some(FileLoss {
            path: String::new(),
            lost_ops,
            lost_bytes,
            len_before,
            len_after: self.visible.len() as u64,
            torn,
        })
    }

    /// Media corruption: the byte changes in every layer that holds it, so that what the
    /// process reads now and what a crash leaves both show it.
    pub(super) fn corrupt_at(&mut self, offset: u64, xor_mask: u8) {
        let at = to_usize(offset);
        self.visible[at] ^= xor_mask;
        if let Some(b) = self.durable.get_mut(at) {
            *b ^= xor_mask;
        }
        for p in self.pending.iter_mut() {
            if let Change::Write {
                offset: start,
                data,
            } = &mut p.change
            {
                if let Some(b) = offset
                    .checked_sub(*start)
                    .and_then(|i| data.get_mut(to_usize(i)))
                {
                    *b ^= xor_mask;
                }
            }
        }
    }

    /// The durable content after the write-back due by `now_ms`, without changing the file.
    pub(super) fn durable_at(&self, now_ms: u64, writeback_ms: u64) -> Vec<u8> {
        let mut content = self.durable.clone();
        for p in self.expired(now_ms, writeback_ms) {
            p.change.apply(&mut content);
        }
        content
    }

    pub(super) fn expired(&self, now_ms: u64, writeback_ms: u64) -> impl Iterator<Item = &Pending> {
        self.pending
            .iter()
            .take_while(move |p| p.at_ms.saturating_add(writeback_ms) <= now_ms)
    }
}

/// With probability 1/2, the surviving prefix of a write `[offset, offset + len)`: up to a
/// sector boundary strictly inside it. A write within one sector cannot tear.
fn tear<R: Rng + ?Sized>(
    offset: u64,
    data: &[u8],
    sector_bytes: u64,
    rng: &mut R,
) -> Option<TornWrite> {
    let len = data.len() as u64;
    if len == 0 {
        return None;
    }
    let first = (offset / sector_bytes + 1) * sector_bytes;
    let last = (offset + len - 1) / sector_bytes * sector_bytes;
    if first > last || !rng.gen_bool(0.5) {
        return None;
    }
    let boundary = first + rng.gen_range(0..=(last - first) / sector_bytes) * sector_bytes;
    Some(TornWrite {
        offset,
        len,
        kept_bytes: boundary - offset,
    })
}

pub(super) fn to_usize(n: u64) -> usize {
    usize::try_from(n).expect("a simulated file fits in memory")
}
