//! What the fault schedule does to a disk: a machine crash, a replaced disk, media corruption,
//! a full disk and a slow one.

use std::io;

use rand::Rng;

use super::{not_found, Corruption, CrashReport, FileLoss, SimDisk};

impl SimDisk {
    /// A machine crash: every file's visible content becomes its durable content (with the
    /// writes the kernel had written back by `now_ms`). A process kill needs no method: the
    /// page cache belongs to the kernel and survives it.
    pub fn crash<R: Rng + ?Sized>(&mut self, now_ms: u64, rng: &mut R) -> CrashReport {
        let mut report = CrashReport::default();
        let (writeback_ms, sector_bytes) = (self.config.writeback_ms, self.config.sector_bytes);
        for (path, file) in self.files.iter_mut() {
            file.write_back(now_ms, writeback_ms);
            if let Some(loss) = file.crash(sector_bytes, rng) {
                report.files.push(FileLoss {
                    path: path.clone(),
                    ..loss
                });
            }
        }
        report
    }

    /// The disk is replaced: every file is gone. The `full` and `slow` faults are the fault
    /// schedule's to lift, so they stay.
    pub fn wipe(&mut self) {
        self.files.clear();
    }

    /// Flips bits of one random byte of `path` (media corruption: visible and durable).
    pub fn corrupt<R: Rng + ?Sized>(&mut self, path: &str, rng: &mut R) -> io::Result<Corruption> {
        let len = self.len(path)?;
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path}: empty, nothing to corrupt"),
            ));
        }
        let offset = rng.gen_range(0..len);
        let xor_mask = rng.gen_range(1..=u8::MAX);
        self.corrupt_at(path, offset, xor_mask)
    }

    /// `path[offset] ^= xor_mask` in every layer of the file.
    pub fn corrupt_at(&mut self, path: &str, offset: u64, xor_mask: u8) -> io::Result<Corruption> {
        let file = self.files.get_mut(path).ok_or_else(|| not_found(path))?;
        if offset >= file.visible.len() as u64 || xor_mask == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path}: cannot corrupt offset {offset} with mask {xor_mask:#04x}"),
            ));
        }
        file.corrupt_at(offset, xor_mask);
        Ok(Corruption {
            path: path.to_string(),
            offset,
            xor_mask,
        })
    }

    /// While full, writes, extending truncates and the creation of new files fail with
    /// `StorageFull`; reads, shrinking truncates, removes and renames still work.
    pub fn set_full(&mut self, full: bool) {
        self.full = full;
    }

    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Multiplies every latency (a failing or overloaded device).
    pub fn set_slow(&mut self, factor: f64) {
        assert!(factor.is_finite() && factor >= 0.0, "slow factor {factor}");
        self.slow_factor = factor;
    }
}
