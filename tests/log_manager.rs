//! The broker's log manager end to end: retention by time and by size, compaction, and crashes
//! in the middle of both (Kafka's `LogManager` and `LogCleaner`, issue 4 items 6–8).
#![cfg(madsim)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use samsa::broker::log_manager::{self, CLEANER_OFFSET_CHECKPOINT};
use samsa::runner::{self, RunOutput};
use samsa::scenario::parse_str;
use samsa::storage::batch::{self, encode_batch, BatchSpec, Record};
use samsa::storage::checkpoint::OffsetCheckpoint;
use samsa::storage::cleaner::CleanerConfig;
use samsa::storage::log::{Log, LogConfig};
use samsa::storage::retention::{CleanupPolicy, RetentionConfig};
use samsa::world::clock::SIM_EPOCH_MS;
use samsa::world::sim_disk::SimDiskBackend;
use samsa::world::{Disk, DiskBackend, DiskOp};
use samsa_sim::check::{self, FinalPartition, FinalRecord, FinalState};
use samsa_sim::disk::{DiskConfig, SimDisk};
use samsa_sim::history::{OpType, TraceEvent};
use samsa_sim::val::Val;

fn run(text: &str, seed: u64) -> RunOutput {
    let scenario = parse_str("log-manager.toml", text).unwrap_or_else(|e| panic!("{e}"));
    runner::run(&scenario, seed)
}

fn events<'a>(output: &'a RunOutput, kind: &str, partition: &str) -> Vec<&'a TraceEvent> {
    output
        .journal
        .trace
        .iter()
        .filter(|e| e.kind == kind && e.detail["partition"] == partition)
        .collect()
}

fn int(value: &Val) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("not an integer: {value}"))
}

/// The base offsets of a partition's segments on a broker's final disk, with each file's bytes.
fn segment_files<'a>(output: &'a RunOutput, partition: &str) -> BTreeMap<i64, &'a [u8]> {
    let prefix = format!("{partition}/");
    output.disks["broker-1"]
        .iter()
        .filter_map(|(path, bytes)| {
            let name = path.strip_prefix(&prefix)?.strip_suffix(".log")?;
            Some((name.parse().ok()?, bytes.as_slice()))
        })
        .collect()
}

/// Every record of a partition on the final disk: offset → (key, value).
fn records(output: &RunOutput, partition: &str) -> BTreeMap<i64, (String, String)> {
    let mut found = BTreeMap::new();
    for bytes in segment_files(output, partition).values() {
        let mut iter = batch::batches(bytes);
        for (position, header) in iter.by_ref() {
            let end = position + header.size_in_bytes();
            let (_, decoded) = batch::decode_records(&bytes[position..end]).unwrap();
            for r in decoded {
                let text =
                    |b: Option<Bytes>| String::from_utf8(b.unwrap_or_default().to_vec()).unwrap();
                found.insert(r.offset, (text(r.key), text(r.value)));
            }
        }
        assert!(iter.stopped_at().is_none(), "a torn segment in {partition}");
    }
    found
}

fn offset_checkpoint(output: &RunOutput, file: &str, partition: &str) -> Option<i64> {
    let bytes = output.disks["broker-1"].get(file)?;
    let text = std::str::from_utf8(bytes).unwrap();
    let (topic, index) = partition.rsplit_once('-').unwrap();
    OffsetCheckpoint::parse(text)
        .unwrap()
        .get(topic, index.parse().unwrap())
}

const BROKER: &str = r#"summary = "log manager test"
[cluster]
brokers = 1
[cluster.config]
"log.retention.check.interval.ms" = 2000
"log.cleaner.backoff.ms" = 1000
"#;

#[test]
fn retention_by_time_deletes_only_segments_older_than_retention_ms_never_the_active_one() {
    let retention_ms = 15_000;
    let output = run(
        &format!(
            r#"name = "by-time"
duration = "70s"
{BROKER}
[[topic]]
name = "t"
partitions = 1
replication-factor = 1
config = {{ "segment.ms" = 4000, "retention.ms" = {retention_ms} }}

[[client]]
type = "producer"
id = "p"
topic = "t"
rate = "50/s"
config = {{ "acks" = "1" }}
"#
        ),
        1,
    );
    assert_eq!(output.violations, vec![]);
    let retention = events(&output, "retention", "t-0");
    let rolls = events(&output, "roll", "t-0");
    assert!(
        retention.len() >= 5,
        "{} retention checks deleted",
        retention.len()
    );
    // Nothing before Kafka's initial delay of 30 s.
    assert!(retention[0].at_ms >= log_manager::INITIAL_TASK_DELAY_MS);
    let mut deleted = 0;
    for event in &retention {
        let now_ms = SIM_EPOCH_MS as i64 + event.at_ms as i64;
        // The active segment at that moment: the last one rolled before it.
        let active = rolls
            .iter()
            .filter(|r| r.at_ms <= event.at_ms)
            .map(|r| int(&r.detail["base"]))
            .max()
            .unwrap_or(0);
        assert!(event.detail["rolled"].is_null(), "{event:?}");
        for segment in event.detail["deleted"].as_array().unwrap() {
            assert_eq!(segment["reason"], "retention.ms");
            let age_ms = now_ms - int(&segment["largest_timestamp"]);
            assert!(age_ms > retention_ms, "deleted at age {age_ms}: {event:?}");
            assert!(int(&segment["base"]) < active, "deleted the active segment");
            deleted += 1;
        }
        assert!(int(&event.detail["log_start_offset"]) <= active);
    }
    // What is left starts where the last deletion said, and the checkpoint agrees.
    let segments = segment_files(&output, "t-0");
    let log_start_offset = int(&retention.last().unwrap().detail["log_start_offset"]);
    assert_eq!(*segments.keys().next().unwrap(), log_start_offset);
    assert_eq!(
        offset_checkpoint(&output, "log-start-offset-checkpoint", "t-0"),
        Some(log_start_offset)
    );
    assert_eq!(segments.len() + deleted, rolls.len() + 1);
    let records = records(&output, "t-0");
    assert_eq!(*records.keys().next().unwrap(), log_start_offset);
    // And what is left is young: at the end, no segment is older than retention.ms by more than
    // the time to the next check (2 s) and the time a check takes.
    let end_ms = SIM_EPOCH_MS as i64 + 70_000;
    for (base, bytes) in segments {
        let largest = batch::batches(bytes)
            .map(|(_, h)| h.max_timestamp)
            .max()
            .unwrap_or(end_ms);
        let age_ms = end_ms - largest;
        assert!(
            age_ms < retention_ms + 2_500,
            "segment {base} is {age_ms} ms old"
        );
    }
}

#[test]
fn retention_by_size_keeps_the_log_within_retention_bytes_plus_one_segment() {
    let (segment_bytes, retention_bytes) = (8_000, 24_000);
    let output = run(
        &format!(
            r#"name = "by-size"
duration = "60s"
{BROKER}
[[topic]]
name = "s"
partitions = 1
replication-factor = 1
config = {{ "internal.segment.bytes" = {segment_bytes}, "retention.bytes" = {retention_bytes} }}

[[client]]
type = "producer"
id = "p"
topic = "s"
rate = "100/s"
config = {{ "acks" = "1" }}
"#
        ),
        2,
    );
    assert_eq!(output.violations, vec![]);
    let retention = events(&output, "retention", "s-0");
    assert!(
        retention.len() >= 10,
        "{} retention checks deleted",
        retention.len()
    );
    for event in &retention {
        let left = event.detail["bytes_left"].as_u64().unwrap();
        // Kafka deletes while what remains stays at or above retention.bytes: never below it,
        // and never more than one segment above it.
        assert!(left >= retention_bytes, "{event:?}");
        assert!(left < retention_bytes + segment_bytes, "{event:?}");
        for segment in event.detail["deleted"].as_array().unwrap() {
            assert_eq!(segment["reason"], "retention.bytes");
        }
    }
    // At the end: at most one check interval of growth (2 s at 100/s, under 80 bytes each)
    // beyond the bound.
    let size: usize = segment_files(&output, "s-0")
        .values()
        .map(|b| b.len())
        .sum();
    assert!(
        (size as u64) < retention_bytes + segment_bytes + 200 * 80,
        "{size} bytes left"
    );
}

#[test]
fn compaction_leaves_exactly_one_value_per_key_below_the_cleaned_point() {
    let output = run(
        &format!(
            r#"name = "compacted"
duration = "40s"
{BROKER}
[[topic]]
name = "users"
partitions = 1
replication-factor = 1
config = {{ "cleanup.policy" = "compact", "segment.ms" = 3000, "min.cleanable.dirty.ratio" = 0.1 }}

[[client]]
type = "producer"
id = "u"
topic = "users"
rate = "200/s"
keys = "random"
config = {{ "acks" = "1" }}
"#
        ),
        3,
    );
    assert_eq!(output.violations, vec![]);
    let cleaned = events(&output, "cleaned", "users-0");
    assert!(cleaned.len() >= 5, "{} cleanings", cleaned.len());
    let cleaned_to = int(&cleaned.last().unwrap().detail["to"]);
    assert_eq!(
        offset_checkpoint(&output, CLEANER_OFFSET_CHECKPOINT, "users-0"),
        Some(cleaned_to)
    );
    // What every acknowledged write put where: offset → (key, value).
    let mut keys = BTreeMap::new();
    let mut acked = BTreeMap::new();
    for op in &output.journal.history {
        let value = op.value["value"].as_str().unwrap_or_default().to_string();
        match op.kind {
            OpType::Invoke => {
                keys.insert(value, op.value["key"].as_str().unwrap().to_string());
            }
            OpType::Ok => {
                acked.insert(int(&op.value["offset"]), (keys[&value].clone(), value));
            }
            _ => {}
        }
    }
    let records = records(&output, "users-0");
    let below: Vec<_> = records.range(..cleaned_to).collect();
    // One record per key below the cleaned point, and it is the key's last write there.
    let mut latest = BTreeMap::new();
    for (&offset, (key, _)) in acked.range(..cleaned_to) {
        latest.insert(key.clone(), offset);
    }
    let distinct: BTreeSet<&String> = below.iter().map(|(_, (key, _))| key).collect();
    assert_eq!(
        distinct.len(),
        below.len(),
        "a key twice below {cleaned_to}"
    );
    assert_eq!(below.len(), latest.len());
    for (offset, record) in &below {
        assert_eq!(Some(*record), acked.get(offset), "offset {offset} moved");
        assert_eq!(
            latest[&record.0], **offset,
            "{record:?} is not its key's last"
        );
    }
    // Above it, nothing was touched.
    for (offset, record) in acked.range(cleaned_to..) {
        assert_eq!(records.get(offset), Some(record), "offset {offset}");
    }
    // The checks tell compaction from loss even when they know the log starts at 0 (the final
    // state's own reader starts the log at the first record it finds).
    let state = FinalState {
        partitions: BTreeMap::from([(
            "users-0".to_string(),
            FinalPartition {
                log_start_offset: 0,
                high_watermark: records.keys().last().unwrap() + 1,
                committed: records
                    .iter()
                    .map(|(&offset, (_, value))| FinalRecord {
                        offset,
                        value: Some(value.clone()),
                        ..FinalRecord::default()
                    })
                    .collect(),
                ..FinalPartition::default()
            },
        )]),
        ..FinalState::default()
    };
    let history = &output.journal.history;
    assert_eq!(check::lost_write::check(history, &state), vec![]);
    assert_eq!(check::inconsistent_read::check(history, &state), vec![]);
}

#[test]
fn a_kill_or_a_crash_during_retention_and_cleaning_loses_no_acknowledged_write() {
    // Every write is fsynced before it is acknowledged (flush.messages = 1), so a crash may
    // lose none; retention and the cleaner run every second, so the faults land among them.
    // The faults are spaced so that each lands on a broker that has registered again.
    let output = run(
        r#"name = "crashes"
duration = "145s"
summary = "log manager test"
[cluster]
brokers = 1
[cluster.config]
"log.retention.check.interval.ms" = 1000
"log.cleaner.backoff.ms" = 1000

[[topic]]
name = "users"
partitions = 1
replication-factor = 1
config = { "cleanup.policy" = "compact,delete", "segment.ms" = 2000, "retention.ms" = 30000, "min.cleanable.dirty.ratio" = 0.01, "flush.messages" = 1 }

[[topic]]
name = "s"
partitions = 1
replication-factor = 1
config = { "internal.segment.bytes" = 4000, "retention.bytes" = 12000, "flush.messages" = 1 }

[[client]]
type = "producer"
id = "u"
topic = "users"
rate = "200/s"
keys = "random"
config = { "acks" = "1", "request.timeout.ms" = 1000 }

[[client]]
type = "producer"
id = "p"
topic = "s"
rate = "100/s"
config = { "acks" = "1", "request.timeout.ms" = 1000 }

[[fault]]
at = "40300ms"
action = "kill"
target = "broker-1"
for = "1s"

[[fault]]
at = "55s"
action = "crash"
target = "broker-1"
for = "1s"

[[fault]]
at = "95500ms"
action = "crash"
target = "broker-1"
for = "1s"
"#,
        4,
    );
    assert_eq!(output.violations, vec![]);
    assert_eq!(events(&output, "recovered", "users-0").len(), 4);
    // Retention ran before each fault and again 30 s after the last restart; the cleaner ran
    // around every fault. (The compacted topic's retention.ms deletes nothing: its cleaned
    // segments are merged into one whose largest timestamp is its latest record's, as Kafka's.)
    // A restarted broker opens its logs once its old session is over and it has registered
    // again (Kafka's DUPLICATE_BROKER_REGISTRATION until then): the last `recovered`.
    let last_recovered = events(&output, "recovered", "users-0")
        .last()
        .map(|e| e.at_ms)
        .expect("recovered");
    assert!(last_recovered > 95_500, "{last_recovered}");
    let restarted_ms = last_recovered + log_manager::INITIAL_TASK_DELAY_MS;
    let windows = [(30_000, 40_300), (85_000, 95_500), (restarted_ms, 145_000)];
    let retention = events(&output, "retention", "s-0");
    let cleaned = events(&output, "cleaned", "users-0");
    for (from, to) in windows {
        let within = |e: &&TraceEvent| (from..to).contains(&e.at_ms);
        assert!(retention.iter().any(within), "retention in {from}..{to}");
        assert!(cleaned.iter().any(within), "cleaning in {from}..{to}");
    }
    let acked = output
        .journal
        .history
        .iter()
        .filter(|op| op.kind == OpType::Ok && op.at_ms > last_recovered)
        .count();
    assert!(acked > 1000, "writes resumed after the faults: {acked}");
}

// ---------------------------------------------------------------------------------------------
// Crash points: the log is stopped at every disk operation of a cleaning (or a retention
// deletion), the machine crashes, and the log reopens with every key's latest value.

/// A simulated disk that stops working after a budget of mutating operations, as a process
/// that dies at that point: the operation that exhausts it fails, and every later one.
struct Stopping {
    inner: SimDiskBackend,
    budget: Arc<AtomicI64>,
}

impl Stopping {
    fn spend(&self) -> std::io::Result<()> {
        if self.budget.fetch_sub(1, Ordering::Relaxed) <= 0 {
            return Err(std::io::Error::other("stopped"));
        }
        Ok(())
    }
}

impl DiskBackend for Stopping {
    fn latency(&self, op: DiskOp) -> std::time::Duration {
        self.inner.latency(op)
    }
    fn create(&self, path: &str) -> std::io::Result<()> {
        self.spend()?;
        self.inner.create(path)
    }
    fn exists(&self, path: &str) -> bool {
        self.inner.exists(path)
    }
    fn list(&self, prefix: &str) -> Vec<String> {
        self.inner.list(prefix)
    }
    fn len(&self, path: &str) -> std::io::Result<u64> {
        self.inner.len(path)
    }
    fn read_at(&self, path: &str, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        self.inner.read_at(path, offset, len)
    }
    fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.spend()?;
        self.inner.write_at(path, offset, data)
    }
    fn append(&self, path: &str, data: &[u8]) -> std::io::Result<u64> {
        self.spend()?;
        self.inner.append(path, data)
    }
    fn truncate(&self, path: &str, len: u64) -> std::io::Result<()> {
        self.spend()?;
        self.inner.truncate(path, len)
    }
    fn fsync(&self, path: &str) -> std::io::Result<()> {
        self.spend()?;
        self.inner.fsync(path)
    }
    fn remove(&self, path: &str) -> std::io::Result<()> {
        self.spend()?;
        self.inner.remove(path)
    }
    fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        self.spend()?;
        self.inner.rename(from, to)
    }
}

const DIR: &str = "users-0";
const KEYS: u32 = 20;
const WRITES: u32 = 400;

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 2_000,
        index_interval_bytes: 200,
        ..LogConfig::default()
    }
}

/// A disk (with no write-back: what is not fsynced is lost in a crash) holding a log of
/// `WRITES` keyed records, one per batch, over many segments, all flushed.
fn written_disk() -> Arc<Mutex<SimDisk>> {
    let sim = Arc::new(Mutex::new(SimDisk::new(DiskConfig {
        latency_us: (0, 0),
        writeback_ms: u64::MAX / 2,
        sector_bytes: 512,
    })));
    block_on(async {
        let (mut log, _) = Log::open(disk_of(&sim), DIR, small_segments(), 0)
            .await
            .unwrap();
        for i in 0..WRITES {
            let record = Record {
                offset_delta: 0,
                timestamp_delta: 0,
                key: Some(Bytes::from(format!("k{}", (i * 7 + i / 3) % KEYS))),
                value: Some(Bytes::from(format!("v{i}"))),
                headers: vec![],
            };
            let spec = BatchSpec {
                base_timestamp: 1_000 + i64::from(i),
                ..BatchSpec::default()
            };
            let mut bytes = encode_batch(&spec, &[record]).to_vec();
            log.append(&mut bytes, 0, 1_000 + i64::from(i))
                .await
                .unwrap();
        }
        // Roll, so that every record is in a segment the cleaner may clean.
        log.roll(2_000).await.unwrap();
        assert!(log.segments().len() > 10);
    });
    sim
}

/// A disk over `sim` that stops after the budget left in the returned counter (unlimited at
/// first).
fn disk(sim: &Arc<Mutex<SimDisk>>) -> (Disk, Arc<AtomicI64>) {
    let budget = Arc::new(AtomicI64::new(i64::MAX));
    let inner = SimDiskBackend::new(sim.clone(), 7, Arc::new(|| 0));
    let backend = Stopping {
        inner,
        budget: budget.clone(),
    };
    (Disk::new(Arc::new(backend)), budget)
}

fn disk_of(sim: &Arc<Mutex<SimDisk>>) -> Disk {
    disk(sim).0
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default()).block_on(future)
}

/// The log's records: offset → value.
async fn read_log(log: &Log) -> BTreeMap<i64, String> {
    log.read_all_records()
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            )
        })
        .collect()
}

/// Runs `work` on the written log, stopping it at its `budget`-th mutating disk operation,
/// crashes the machine and reopens the log: its records, whether `work` finished within the
/// budget, and the files left.
fn crash_after(
    budget: i64,
    config: LogConfig,
    work: impl AsyncFnOnce(&mut Log) -> bool,
) -> (BTreeMap<i64, String>, bool, Vec<String>) {
    let sim = written_disk();
    block_on(async {
        let (disk, left) = disk(&sim);
        let (mut log, _) = Log::open(disk, DIR, config, 2_000).await.unwrap();
        left.store(budget, Ordering::Relaxed);
        let finished = work(&mut log).await;
        drop(log);
        let mut rng = ChaCha8Rng::seed_from_u64(budget as u64);
        sim.lock().unwrap().crash(10_000, &mut rng);
        let (log, _) = Log::open(disk_of(&sim), DIR, config, 20_000).await.unwrap();
        let files = sim.lock().unwrap().list(&format!("{DIR}/"));
        (read_log(&log).await, finished, files)
    })
}

async fn clean(log: &mut Log) -> bool {
    let config = CleanerConfig {
        min_cleanable_dirty_ratio: 0.0,
        ..CleanerConfig::default()
    };
    let lso = log.log_end_offset();
    matches!(
        log_manager::clean_log(log, None, lso, &config, 3_000).await,
        Ok(Some(_))
    )
}

async fn delete_by_size(log: &mut Log) -> bool {
    let config = RetentionConfig {
        retention_ms: -1,
        retention_bytes: 6_000,
        cleanup_policy: CleanupPolicy::DELETE,
    };
    let hw = log.log_end_offset();
    matches!(
        log_manager::delete_old_segments(log, &config, hw, 3_000).await,
        Ok(Some(_))
    )
}

/// Cleans at every crash point; returns the log fully cleaned, checking that each crash left
/// a log between the original and it: every record at its offset with its value, and at least
/// every record the cleaning keeps (each key's latest value).
fn clean_at_every_crash_point(config: LogConfig) -> Vec<BTreeMap<i64, String>> {
    let (original, _, _) = crash_after(0, config, async |_: &mut Log| false);
    assert_eq!(original.len() as u32, WRITES);
    let (cleaned, finished, _) = crash_after(i64::MAX, config, clean);
    assert!(finished);
    assert_eq!(cleaned.len() as u32, KEYS, "one value per key: {cleaned:?}");
    let mut found_logs = vec![];
    for budget in 0.. {
        let (found, finished, files) = crash_after(budget, config, clean);
        let within = |small: &BTreeMap<i64, String>, large: &BTreeMap<i64, String>| {
            small.iter().all(|(offset, v)| large.get(offset) == Some(v))
        };
        assert!(
            within(&found, &original) && within(&cleaned, &found),
            "stopped after {budget} disk operations: {found:?}"
        );
        assert!(
            files
                .iter()
                .all(|f| !f.ends_with(".cleaned") && !f.ends_with(".swap")),
            "{files:?}"
        );
        found_logs.push(found);
        if finished {
            assert_eq!(found_logs.last(), Some(&cleaned));
            break;
        }
    }
    assert!(
        found_logs.len() > 5,
        "only {} crash points",
        found_logs.len()
    );
    found_logs
}

#[test]
fn a_crash_at_any_point_of_a_cleaning_leaves_the_old_log_or_the_cleaned_one() {
    // Segments as large as the whole log: the cleaner swaps them all in one cleaned segment,
    // which is all or nothing.
    let one_group = LogConfig {
        segment_bytes: 1 << 20,
        ..small_segments()
    };
    let logs = clean_at_every_crash_point(one_group);
    let (first, last) = (&logs[0], &logs[logs.len() - 1]);
    assert!(logs.iter().all(|log| log == first || log == last));
    assert!(
        logs.iter().filter(|log| *log == last).count() > 1,
        "a crash completed a swap"
    );
    // Small segments: each is cleaned and swapped on its own, so a crash may leave some cleaned.
    let logs = clean_at_every_crash_point(small_segments());
    let distinct: BTreeSet<_> = logs.iter().collect();
    assert!(distinct.len() > 3, "{} distinct logs", distinct.len());
}

#[test]
fn a_crash_at_any_point_of_a_retention_deletion_leaves_a_suffix_of_the_log() {
    let (original, _, _) = crash_after(0, small_segments(), async |_: &mut Log| false);
    let (retained, finished, _) = crash_after(i64::MAX, small_segments(), delete_by_size);
    assert!(finished);
    let first = *retained.keys().next().unwrap();
    assert!(first > 0);
    assert_eq!(
        retained,
        original
            .range(first..)
            .map(|(&o, v)| (o, v.clone()))
            .collect()
    );
    for budget in 0.. {
        let (found, finished, _) = crash_after(budget, small_segments(), delete_by_size);
        let start = *found.keys().next().unwrap();
        assert!(start <= first, "stopped after {budget}: deleted too much");
        let suffix: BTreeMap<i64, String> = original
            .range(start..)
            .map(|(&o, v)| (o, v.clone()))
            .collect();
        assert_eq!(found, suffix, "stopped after {budget} disk operations");
        if finished {
            assert_eq!(found, retained);
            break;
        }
    }
}
