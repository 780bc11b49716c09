//! Random operations against a model that knows only the rules: a crash keeps what
//! was fsynced or is older than the write-back delay, and may keep whole sectors of
//! the oldest write after that.

use super::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

const LOG: &str = "t-0/00000000000000000000.log";
const SCRATCH: &str = "t-0/leader-epoch-checkpoint";

#[derive(Clone, Debug)]
enum Op {
    Append { log: bool, len: usize, seed: u8 },
    WriteAt { offset: u64, len: usize, seed: u8 },
    Truncate { len: u64 },
    Fsync { log: bool },
    Advance { ms: u64 },
    Crash { seed: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 1usize..1_500, any::<u8>())
            .prop_map(|(log, len, seed)| Op::Append { log, len, seed }),
        2 => (0u64..3_000, 1usize..1_500, any::<u8>())
            .prop_map(|(offset, len, seed)| Op::WriteAt { offset, len, seed }),
        1 => (0u64..3_000).prop_map(|len| Op::Truncate { len }),
        2 => any::<bool>().prop_map(|log| Op::Fsync { log }),
        2 => (0u64..800).prop_map(|ms| Op::Advance { ms }),
        1 => any::<u64>().prop_map(|seed| Op::Crash { seed }),
    ]
}

/// A change since the last durable point: when, the whole content after it, and the
/// region it wrote (`None` for a shrink).
struct ModelOp {
    at_ms: u64,
    after: Vec<u8>,
    wrote: Option<(usize, usize)>,
}

/// One file: its durable content and the changes since.
#[derive(Default)]
struct FileModel {
    durable: Vec<u8>,
    current: Vec<u8>,
    ops: Vec<ModelOp>,
}

impl FileModel {
    fn write_at(&mut self, offset: usize, data: &[u8], now_ms: u64) {
        let start = offset.min(self.current.len());
        if self.current.len() < offset + data.len() {
            self.current.resize(offset + data.len(), 0);
        }
        self.current[offset..offset + data.len()].copy_from_slice(data);
        self.ops.push(ModelOp {
            at_ms: now_ms,
            after: self.current.clone(),
            wrote: Some((start, offset + data.len())),
        });
    }

    fn truncate(&mut self, len: usize, now_ms: u64) {
        if len > self.current.len() {
            let zeros = vec![0; len - self.current.len()];
            self.write_at(self.current.len(), &zeros, now_ms);
        } else if len < self.current.len() {
            self.current.truncate(len);
            self.ops.push(ModelOp {
                at_ms: now_ms,
                after: self.current.clone(),
                wrote: None,
            });
        }
    }

    fn fsync(&mut self) {
        self.durable = self.current.clone();
        self.ops.clear();
    }

    /// Writes older than the write-back delay are durable; they are a prefix.
    fn written_back(&self, now_ms: u64) -> usize {
        self.ops
            .iter()
            .take_while(|op| op.at_ms + WRITEBACK_MS <= now_ms)
            .count()
    }

    fn state(&self, k: usize) -> &[u8] {
        if k == 0 {
            &self.durable
        } else {
            &self.ops[k - 1].after
        }
    }

    /// Every content a crash at `now_ms` may leave.
    fn allowed_after_crash(&self, now_ms: u64) -> Vec<Vec<u8>> {
        let k = self.written_back(now_ms);
        let base = self.state(k).to_vec();
        let mut allowed = vec![base.clone()];
        if let Some(ModelOp {
            after,
            wrote: Some((start, end)),
            ..
        }) = self.ops.get(k)
        {
            let (start, end) = (*start, *end);
            let boundaries = (start + 1..end).filter(|b| b % 512 == 0);
            for b in boundaries {
                let mut torn = base.clone();
                torn.resize(torn.len().max(b), 0);
                torn[start..b].copy_from_slice(&after[start..b]);
                allowed.push(torn);
            }
        }
        allowed
    }

    fn crash_to(&mut self, content: Vec<u8>) {
        self.durable = content.clone();
        self.current = content;
        self.ops.clear();
    }
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    bytes(len, seed)
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut d = disk();
    d.create(LOG).unwrap();
    d.create(SCRATCH).unwrap();
    let (mut log, mut scratch) = (FileModel::default(), FileModel::default());
    let mut log_fsynced_len = 0;
    let mut now_ms = 0;
    for op in ops {
        match op {
            Op::Append {
                log: true,
                len,
                seed,
            } => {
                let at = d.append(LOG, &data(len, seed), now_ms).unwrap();
                prop_assert_eq!(at, log.current.len() as u64);
                log.write_at(log.current.len(), &data(len, seed), now_ms);
            }
            Op::Append {
                log: false,
                len,
                seed,
            } => {
                let at = d.append(SCRATCH, &data(len, seed), now_ms).unwrap();
                prop_assert_eq!(at, scratch.current.len() as u64);
                scratch.write_at(scratch.current.len(), &data(len, seed), now_ms);
            }
            Op::WriteAt { offset, len, seed } => {
                d.write_at(SCRATCH, offset, &data(len, seed), now_ms)
                    .unwrap();
                scratch.write_at(offset as usize, &data(len, seed), now_ms);
            }
            Op::Truncate { len } => {
                d.truncate(SCRATCH, len, now_ms).unwrap();
                scratch.truncate(len as usize, now_ms);
            }
            Op::Fsync { log: true } => {
                d.fsync(LOG).unwrap();
                log.fsync();
                log_fsynced_len = log.current.len();
            }
            Op::Fsync { log: false } => {
                d.fsync(SCRATCH).unwrap();
                scratch.fsync();
            }
            Op::Advance { ms } => now_ms += ms,
            Op::Crash { seed } => {
                let written = log.current.clone();
                let written_back = log.state(log.written_back(now_ms)).len();
                let allowed_log = log.allowed_after_crash(now_ms);
                let allowed_scratch = scratch.allowed_after_crash(now_ms);
                d.crash(now_ms, &mut rng(seed));
                let (after_log, after_scratch) = (read(&d, LOG), read(&d, SCRATCH));
                // The guarantee a log relies on, stated without the model.
                prop_assert!(
                    written.starts_with(&after_log),
                    "a prefix of what was written"
                );
                prop_assert!(after_log.len() >= log_fsynced_len, "keeps what was fsynced");
                prop_assert!(
                    after_log.len() >= written_back,
                    "keeps what was written back"
                );
                // And the model's exact answer.
                prop_assert!(allowed_log.contains(&after_log));
                prop_assert!(
                    allowed_scratch.contains(&after_scratch),
                    "scratch after crash: {} bytes, allowed lengths {:?}",
                    after_scratch.len(),
                    allowed_scratch.iter().map(Vec::len).collect::<Vec<_>>()
                );
                log_fsynced_len = after_log.len();
                log.crash_to(after_log);
                scratch.crash_to(after_scratch);
            }
        }
        d.assert_consistent();
        prop_assert_eq!(read(&d, LOG), log.current.clone());
        prop_assert_eq!(read(&d, SCRATCH), scratch.current.clone());
        let k = scratch.written_back(now_ms);
        prop_assert_eq!(
            d.durable(SCRATCH, now_ms).unwrap(),
            scratch.state(k).to_vec()
        );
    }
    Ok(())
}

proptest! {
    // A fixed seed: `cargo test -p samsa-sim disk` reproduces any failure, and no
    // regression file is written.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x5a_5a),
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_crash_keeps_a_prefix_holding_everything_fsynced(ops in vec(op(), 1..80)) {
        run(ops)?;
    }
}
