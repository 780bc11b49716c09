//! The segmented partition log against a plain model (a list of batches), under random
//! appends, reads, lookups by time, truncations, flushes, log start offset moves, segment
//! deletions, kills and machine crashes on `samsa-sim`'s page-cache disk.
//!
//! What must hold after every step:
//! - reads return exactly the model's batches (whole, from one segment, within `max_bytes`);
//! - an offset lookup through the offset index finds the batch a scan of the file finds, and
//!   no lookup ever falls back to a scan (no index is wrong);
//! - a lookup by time returns the first record at or after it, as a scan of the model does;
//! - the leader epoch cache is what the batches' epochs say.
//!
//! After a crash the log is a prefix of what was written at some point since the last crash
//! (truncations are not fsynced, so a crash may bring truncated batches back), holding at least
//! everything below the recovery point the log claimed.
#![cfg(madsim)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use rand::SeedableRng;

use samsa::storage::batch::{self, encode_batch, BatchSpec, Record};
use samsa::storage::leader_epoch::{EpochEntry, LeaderEpochFileCache};
use samsa::storage::log::{Log, LogConfig, LogError};
use samsa::world::sim_disk::SimDiskBackend;
use samsa::world::Disk;
use samsa_sim::disk::{DiskConfig, SimDisk};

const DIR: &str = "orders-0";

#[derive(Clone, Debug)]
enum Op {
    Append {
        records: u8,
        value_len: usize,
        timestamp: i64,
        new_epoch: bool,
    },
    Read {
        at: u16,
        max_bytes: usize,
    },
    LookupTime {
        target: i64,
    },
    Truncate {
        at: u16,
    },
    Flush,
    Advance {
        ms: u64,
    },
    Kill,
    Crash {
        seed: u64,
    },
    AdvanceStart {
        at: u16,
    },
    DeleteSegmentsBelow {
        at: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1u8..5, 1usize..50, 0i64..5_000, proptest::bool::weighted(0.2)).prop_map(
            |(records, value_len, timestamp, new_epoch)| Op::Append { records, value_len, timestamp, new_epoch }
        ),
        3 => (any::<u16>(), 1usize..1_500).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        2 => (-1i64..5_100).prop_map(|target| Op::LookupTime { target }),
        1 => any::<u16>().prop_map(|at| Op::Truncate { at }),
        1 => Just(Op::Flush),
        1 => (0u64..20_000).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Kill),
        2 => any::<u64>().prop_map(|seed| Op::Crash { seed }),
        1 => any::<u16>().prop_map(|at| Op::AdvanceStart { at }),
        1 => any::<u16>().prop_map(|at| Op::DeleteSegmentsBelow { at }),
    ]
}

fn config() -> impl Strategy<Value = LogConfig> {
    (400u64..2_000, 0u64..500, 24u64..200, 1_000i64..20_000).prop_map(
        |(segment_bytes, index_interval_bytes, segment_index_bytes, segment_ms)| LogConfig {
            segment_bytes,
            index_interval_bytes,
            segment_index_bytes,
            segment_ms,
            recovery_point_checkpoint_interval_ms: 0,
            ..LogConfig::default()
        },
    )
}

/// A batch as the model knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Batch {
    base: i64,
    epoch: i32,
    size: usize,
    /// (timestamp, value) of each record.
    records: Vec<(i64, String)>,
}

impl Batch {
    fn last(&self) -> i64 {
        self.base + self.records.len() as i64 - 1
    }

    fn from_bytes(bytes: &[u8]) -> Batch {
        let (header, records) = batch::decode_records(bytes).unwrap();
        Batch {
            base: header.base_offset,
            epoch: header.partition_leader_epoch,
            size: header.size_in_bytes(),
            records: records
                .into_iter()
                .map(|r| {
                    (
                        r.timestamp,
                        String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                    )
                })
                .collect(),
        }
    }
}

fn all_batches(bytes: &[u8]) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut iter = batch::batches(bytes);
    for (position, header) in iter.by_ref() {
        out.push(Batch::from_bytes(
            &bytes[position..position + header.size_in_bytes()],
        ));
    }
    assert!(
        iter.stopped_at().is_none(),
        "a read returned an invalid batch"
    );
    out
}

struct Model {
    batches: Vec<Batch>,
    /// The log end offset.
    end: i64,
    log_start: i64,
    epoch: i32,
    /// Below this, everything was fsynced (as the log's recovery point claimed).
    durable_end: i64,
    /// Every state since the last crash: a crash must leave a prefix of one of them.
    history: Vec<Vec<Batch>>,
    next_value: u64,
}

impl Model {
    fn log_end(&self) -> i64 {
        self.end
    }

    fn expected_epochs(&self) -> Vec<EpochEntry> {
        let mut cache = LeaderEpochFileCache::default();
        for b in &self.batches {
            cache.assign(b.epoch, b.base);
        }
        cache.truncate_from_start(self.log_start);
        cache.entries().to_vec()
    }

    fn remember(&mut self) {
        self.history.push(self.batches.clone());
    }
}

struct World {
    sim: Arc<Mutex<SimDisk>>,
    disk: Disk,
    clock: Arc<AtomicU64>,
    config: LogConfig,
}

impl World {
    fn now(&self) -> i64 {
        self.clock.load(Ordering::Relaxed) as i64
    }

    async fn open(&self) -> Log {
        Log::open(self.disk.clone(), DIR, self.config, self.now())
            .await
            .unwrap()
            .0
    }

    /// The batches of every segment file, read off the disk.
    fn on_disk(&self, log: &Log) -> Vec<Batch> {
        let sim = self.sim.lock().unwrap();
        let mut out = Vec::new();
        for s in log.segments() {
            let path = format!("{DIR}/{:020}.log", s.base_offset);
            out.extend(all_batches(&sim.read_at(&path, 0, usize::MAX).unwrap()));
        }
        out
    }
}

fn batch_bytes(model: &mut Model, records: u8, value_len: usize, timestamp: i64) -> Vec<u8> {
    let records: Vec<Record> = (0..records as i32)
        .map(|i| {
            model.next_value += 1;
            let value = format!("{}-{}", model.next_value, "v".repeat(value_len));
            Record {
                offset_delta: i,
                timestamp_delta: i64::from((i * 7919) % 13) - 6, // not monotonic
                key: None,
                value: Some(value.into()),
                headers: vec![],
            }
        })
        .collect();
    let spec = BatchSpec {
        base_timestamp: timestamp,
        ..BatchSpec::default()
    };
    encode_batch(&spec, &records).to_vec()
}

/// Maps a random number onto an offset around the log: [start - 1, end + 1].
fn around(model: &Model, at: u16) -> i64 {
    let (lo, hi) = (model.log_start - 1, model.log_end() + 1);
    lo + i64::from(at) % (hi - lo + 1)
}

async fn check_read(
    log: &Log,
    model: &Model,
    at: i64,
    max_bytes: usize,
) -> Result<(), TestCaseError> {
    let result = log.read(at, max_bytes).await;
    if at < model.log_start || at > model.log_end() {
        prop_assert!(
            matches!(result, Err(LogError::OffsetOutOfRange { .. })),
            "read {at}: {result:?}"
        );
        return Ok(());
    }
    let read = result.unwrap();
    let got = all_batches(&read.records);
    let bases: Vec<i64> = log.segments().iter().map(|s| s.base_offset).collect();
    let mut expected = Vec::new();
    if let Some(first) = model.batches.iter().position(|b| b.last() >= at) {
        let segment_end = bases
            .iter()
            .copied()
            .find(|&b| b > model.batches[first].base)
            .unwrap_or(i64::MAX);
        let mut total = 0;
        for b in &model.batches[first..] {
            if b.base >= segment_end || (!expected.is_empty() && total + b.size > max_bytes) {
                break;
            }
            total += b.size;
            expected.push(b.clone());
        }
    }
    prop_assert_eq!(got, expected, "read at {} max {}", at, max_bytes);
    Ok(())
}

/// A lookup by time against a scan of the model.
async fn check_lookup(log: &Log, model: &Model, target: i64) -> Result<(), TestCaseError> {
    let expected = model
        .batches
        .iter()
        .flat_map(|b| {
            b.records
                .iter()
                .enumerate()
                .map(move |(i, r)| (b.base + i as i64, r.0))
        })
        .find(|&(offset, ts)| offset >= model.log_start && ts >= target);
    let found = log.fetch_offset_by_timestamp(target).await.unwrap();
    let found = found.map(|f| (f.offset, f.timestamp));
    prop_assert_eq!(found, expected, "lookup {}", target);
    Ok(())
}

/// The offset index's answer against a scan of the segment file.
async fn check_position(
    world: &World,
    log: &Log,
    model: &Model,
    at: i64,
) -> Result<(), TestCaseError> {
    if at < model.log_start || at >= model.log_end() {
        return Ok(());
    }
    let (base, position) = log.position_of(at).await.unwrap().unwrap();
    let path = format!("{DIR}/{base:020}.log");
    let bytes = world
        .sim
        .lock()
        .unwrap()
        .read_at(&path, 0, usize::MAX)
        .unwrap();
    let scanned = batch::batches(&bytes)
        .find(|(_, h)| h.last_offset() >= at)
        .map(|(p, _)| p as u64);
    prop_assert_eq!(Some(position), scanned, "position of {}", at);
    Ok(())
}

fn check_state(log: &Log, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(log.log_end_offset(), model.log_end());
    prop_assert_eq!(log.log_start_offset(), model.log_start);
    // An entry starting at the log end describes no record (after the log start offset moved
    // to the end, Kafka's cache keeps one, and a reopen drops it): compare the rest.
    let end = model.log_end();
    let epochs: Vec<EpochEntry> = log
        .leader_epochs()
        .iter()
        .copied()
        .filter(|e| e.start_offset < end)
        .collect();
    let mut expected = model.expected_epochs();
    expected.retain(|e| e.start_offset < end);
    prop_assert_eq!(epochs, expected);
    prop_assert_eq!(log.index_misses(), 0, "an index pointed to the wrong place");
    let segments = log.segments();
    prop_assert!(segments.last().unwrap().is_active);
    for pair in segments.windows(2) {
        prop_assert_eq!(
            pair[0].next_offset,
            pair[1].base_offset,
            "segments are contiguous"
        );
        prop_assert!(pair[0].size_bytes <= log.config().segment_bytes);
    }
    Ok(())
}

/// After a kill or a crash: what is on disk is what the model allows; the model becomes it.
fn after_restart(
    world: &World,
    log: &Log,
    model: &mut Model,
    crashed: bool,
) -> Result<(), TestCaseError> {
    let recovered = world.on_disk(log);
    let end = log.log_end_offset();
    prop_assert_eq!(recovered.last().map_or(end, |b| b.last() + 1), end);
    if crashed {
        // Segments deleted from the front stay deleted (a removal is durable at once), while
        // the truncation of the active segment may be undone: compare from the first segment.
        let first = log.segments()[0].base_offset;
        let is_prefix = |h: &Vec<Batch>| {
            let kept: Vec<&Batch> = h.iter().filter(|b| b.base >= first).collect();
            kept.len() >= recovered.len() && kept.iter().zip(&recovered).all(|(a, b)| *a == b)
        };
        prop_assert!(
            model.history.iter().any(is_prefix),
            "the recovered log is not a prefix of anything written: {:?}",
            recovered
                .iter()
                .map(|b| (b.base, b.records.len()))
                .collect::<Vec<_>>()
        );
        // A log that now ends below its start offset was emptied and starts there (Kafka's
        // deleteSegmentsIfLogStartGreaterThanLogEnd): then nothing durable was at or above it.
        prop_assert!(
            end >= model.durable_end,
            "lost fsynced data: end {} < {}",
            end,
            model.durable_end
        );
        // What a crash leaves is durable, and the only state a next crash can start from.
        model.durable_end = end;
        model.history = vec![recovered.clone()];
    } else {
        // The page cache survives a kill: nothing is lost, and every earlier state may still be
        // what a crash leaves.
        prop_assert_eq!(&recovered, &model.batches, "a kill loses nothing");
    }
    model.end = end;
    model.batches = recovered;
    model.epoch = model.epoch.max(model.batches.last().map_or(0, |b| b.epoch));
    Ok(())
}

async fn step(
    world: &World,
    log: &mut Log,
    model: &mut Model,
    op: Op,
) -> Result<(), TestCaseError> {
    match op {
        Op::Append {
            records,
            value_len,
            timestamp,
            new_epoch,
        } => {
            model.epoch += i32::from(new_epoch);
            let mut bytes = batch_bytes(model, records, value_len, timestamp);
            let info = log
                .append(&mut bytes, model.epoch, world.now())
                .await
                .unwrap();
            prop_assert_eq!(info.first_offset, model.log_end());
            model.batches.push(Batch::from_bytes(&bytes));
            model.end = info.log_end_offset;
            prop_assert_eq!(model.end, model.batches.last().unwrap().last() + 1);
            model.remember();
        }
        Op::Read { at, max_bytes } => {
            let at = around(model, at);
            check_read(log, model, at, max_bytes).await?;
            check_position(world, log, model, at).await?;
        }
        Op::LookupTime { target } => check_lookup(log, model, target).await?,
        Op::Truncate { at } => {
            let at = around(model, at).max(model.log_start);
            log.truncate_to(at).await.unwrap();
            if let Some(cut) = model.batches.iter().position(|b| b.last() >= at) {
                model.end = model.batches[cut].base;
                model.batches.truncate(cut);
            }
            prop_assert_eq!(log.log_end_offset(), model.end);
            model.log_start = model.log_start.min(model.log_end());
            model.durable_end = model.durable_end.min(model.log_end());
            model.remember();
        }
        Op::Flush => {
            log.flush().await.unwrap();
            prop_assert_eq!(log.recovery_point(), log.log_end_offset());
        }
        Op::Advance { ms } => {
            world.clock.fetch_add(ms, Ordering::Relaxed);
            world
                .sim
                .lock()
                .unwrap()
                .write_back(world.clock.load(Ordering::Relaxed));
        }
        Op::Kill => {
            *log = world.open().await;
            after_restart(world, log, model, false)?;
        }
        Op::Crash { seed } => {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            world
                .sim
                .lock()
                .unwrap()
                .crash(world.clock.load(Ordering::Relaxed), &mut rng);
            *log = world.open().await;
            after_restart(world, log, model, true)?;
        }
        Op::AdvanceStart { at } => {
            let at = around(model, at);
            let result = log.advance_log_start_offset(at).await;
            if at > model.log_end() {
                prop_assert!(result.is_err());
            } else {
                prop_assert_eq!(result.unwrap(), at > model.log_start);
                model.log_start = model.log_start.max(at);
            }
        }
        Op::DeleteSegmentsBelow { at } => {
            let at = around(model, at);
            let segments = log.segments();
            let expected: Vec<i64> = segments
                .windows(2)
                .take_while(|w| w[1].base_offset <= at)
                .map(|w| w[0].base_offset)
                .collect();
            let deleted = log.delete_segments_below(at).await.unwrap();
            prop_assert_eq!(&deleted, &expected);
            let first = log.segments()[0].base_offset;
            model.batches.retain(|b| b.base >= first);
            model.log_start = model.log_start.max(first);
            model.remember();
        }
    }
    model.durable_end = model.durable_end.max(log.recovery_point());
    check_state(log, model)
}

fn run(config: LogConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let sim = Arc::new(Mutex::new(SimDisk::new(DiskConfig::default())));
    let clock = Arc::new(AtomicU64::new(0));
    let disk_clock = clock.clone();
    let backend = SimDiskBackend::new(
        sim.clone(),
        7,
        Arc::new(move || disk_clock.load(Ordering::Relaxed)),
    );
    let world = World {
        sim,
        disk: Disk::new(Arc::new(backend)),
        clock,
        config,
    };
    madsim::runtime::Runtime::new().block_on(async move {
        let mut log = world.open().await;
        let mut model = Model {
            batches: Vec::new(),
            end: 0,
            log_start: 0,
            epoch: 0,
            durable_end: 0,
            history: vec![Vec::new()],
            next_value: 0,
        };
        for op in ops {
            step(&world, &mut log, &mut model, op).await?;
        }
        // Finally every offset's and every timestamp's lookup, and the whole log.
        for at in model.log_start..model.log_end() {
            check_position(&world, &log, &model, at).await?;
        }
        let timestamps = model
            .batches
            .iter()
            .flat_map(|b| b.records.iter().map(|r| r.0));
        for ts in timestamps.collect::<std::collections::BTreeSet<i64>>() {
            check_lookup(&log, &model, ts).await?;
            check_lookup(&log, &model, ts + 1).await?;
        }
        check_read(&log, &model, model.log_start, usize::MAX).await
    })
}

proptest! {
    // A fixed seed: `cargo test --test storage_model` reproduces any failure.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x5a5a_0004),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_log_matches_the_model(config in config(), ops in vec(op(), 1..120)) {
        run(config, ops)?;
    }
}
