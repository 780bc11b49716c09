//! The cleaner's tests: scenarios against hand-computed logs, and a model of compaction.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use proptest::prelude::*;

use super::*;
use crate::storage::batch::{Compression, TimestampType};

const T0: i64 = 1_700_000_000_000;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const PRODUCER_ID: i64 = 7;

/// A record to write: key and value, `None` for null.
type Kv = (Option<String>, Option<String>);

fn kv(key: &str, value: &str) -> Kv {
    (Some(key.to_owned()), Some(value.to_owned()))
}

fn tombstone(key: &str) -> Kv {
    (Some(key.to_owned()), None)
}

fn keyless(value: &str) -> Kv {
    (None, Some(value.to_owned()))
}

/// A producer's batch of consecutive offsets from `base`, written at T0 + `base` seconds, one
/// millisecond apart.
fn batch_at(base: i64, records: &[Kv]) -> Vec<u8> {
    let spec = BatchSpec {
        base_offset: base,
        partition_leader_epoch: 3,
        base_timestamp: T0 + base * 1000,
        producer_id: PRODUCER_ID,
        producer_epoch: 1,
        base_sequence: base as i32,
        transactional: false,
        control: false,
        compression: Compression::None,
    };
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            offset_delta: i as i32,
            timestamp_delta: i as i64,
            key: key.clone().map(Bytes::from),
            value: value.clone().map(Bytes::from),
            headers: vec![("h".to_owned(), Some(Bytes::from_static(b"v")))],
        })
        .collect();
    batch::encode_batch(&spec, &records).to_vec()
}

/// A partition log in memory: segments and their bytes, the last one active.
#[derive(Clone, Debug)]
struct Log {
    segments: Vec<SegmentInfo>,
    bytes: Vec<Vec<u8>>,
}

/// Segments of batches of consecutive offsets from 0, then an empty active segment.
fn log_of(segments: &[Vec<Vec<Kv>>]) -> Log {
    let mut log = Log {
        segments: vec![],
        bytes: vec![],
    };
    let mut next_offset = 0;
    for batches in segments {
        let base_offset = next_offset;
        let bytes: Vec<u8> = batches
            .iter()
            .flat_map(|records| {
                let batch = batch_at(next_offset, records);
                next_offset += records.len() as i64;
                batch
            })
            .collect();
        log.push(base_offset, next_offset, bytes);
    }
    log.push(next_offset, next_offset, vec![]);
    log
}

impl Log {
    fn push(&mut self, base_offset: i64, next_offset: i64, bytes: Vec<u8>) {
        if let Some(last) = self.segments.last_mut() {
            last.is_active = false;
        }
        let largest_timestamp_ms = batch::batches(&bytes)
            .map(|(_, h)| h.max_timestamp)
            .max()
            .unwrap_or(-1);
        self.segments.push(SegmentInfo {
            base_offset,
            next_offset,
            size_bytes: bytes.len() as u64,
            largest_timestamp_ms,
            is_active: true,
        });
        self.bytes.push(bytes);
    }

    fn end_offset(&self) -> i64 {
        self.segments.last().unwrap().base_offset
    }

    /// One round over the whole log below the active segment, all of it dirty.
    fn clean(&self, now_ms: i64) -> (Log, Vec<CleanedSegment>) {
        self.clean_with(now_ms, &BTreeMap::new())
    }

    fn clean_with(
        &self,
        now_ms: i64,
        active_producers: &BTreeMap<i64, i64>,
    ) -> (Log, Vec<CleanedSegment>) {
        let count = self.segments.len();
        let dirty: Vec<&[u8]> = self.bytes[..count - 1].iter().map(Vec::as_slice).collect();
        let offset_map = build_offset_map(&dirty).unwrap();
        let config = CleanerConfig::default();
        let round = CleaningRound {
            now_ms,
            end_offset: self.end_offset(),
            offset_map: &offset_map,
            active_producers,
            config: &config,
        };
        let mut cleaned_log = self.clone();
        let mut results = vec![];
        for i in 0..count - 1 {
            let cleaned = clean_segment(&self.segments[i], &self.bytes[i], &round).unwrap();
            check_batches(&cleaned.bytes);
            cleaned_log.segments[i].size_bytes = cleaned.bytes.len() as u64;
            cleaned_log.segments[i].largest_timestamp_ms = cleaned.largest_timestamp_ms;
            cleaned_log.bytes[i] = cleaned.bytes.clone();
            results.push(cleaned);
        }
        (cleaned_log, results)
    }

    /// (offset, key, value) of every record, as strings.
    fn records(&self) -> Vec<(i64, Option<String>, Option<String>)> {
        let text = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
        self.bytes
            .iter()
            .flat_map(|bytes| check_batches(bytes))
            .map(|r| (r.offset, text(r.key), text(r.value)))
            .collect()
    }

    fn headers(&self) -> Vec<BatchHeader> {
        self.bytes
            .iter()
            .flat_map(|bytes| batch::batches(bytes).map(|(_, h)| h).collect::<Vec<_>>())
            .collect()
    }
}

/// Every batch is whole and valid, and kafka-protocol's decoder reads what ours reads.
fn check_batches(bytes: &[u8]) -> Vec<DecodedRecord> {
    let mut ours = vec![];
    let mut theirs = Bytes::copy_from_slice(bytes);
    let mut iter = batch::batches(bytes);
    for (position, header) in iter.by_ref() {
        let (_, records) = batch::decode_records(&bytes[position..]).unwrap();
        let set = RecordBatchDecoder::decode(&mut theirs).expect("kafka-protocol reads the batch");
        assert_eq!(set.records.len(), records.len());
        for (their, our) in set.records.iter().zip(&records) {
            assert_eq!(
                (their.offset, &their.key, &their.value),
                (our.offset, &our.key, &our.value)
            );
            assert_eq!(their.delete_horizon, header.has_delete_horizon());
            if header.timestamp_type() == TimestampType::CreateTime {
                assert_eq!(their.timestamp, our.timestamp);
            }
        }
        ours.extend(records);
    }
    assert_eq!(iter.stopped_at(), None);
    assert!(theirs.is_empty());
    ours
}

fn rec(offset: i64, key: &str, value: Option<&str>) -> (i64, Option<String>, Option<String>) {
    (offset, Some(key.to_owned()), value.map(str::to_owned))
}

#[test]
fn compaction_keeps_the_latest_value_per_key_at_its_original_offset() {
    let log = log_of(&[
        vec![vec![kv("k1", "a"), kv("k2", "b"), kv("k3", "c")]],
        vec![vec![kv("k1", "d"), kv("k4", "e")], vec![kv("k3", "f")]],
    ]);
    let (cleaned, stats) = log.clean(T0 + 60_000);
    assert_eq!(
        cleaned.records(),
        vec![
            rec(1, "k2", Some("b")),
            rec(3, "k1", Some("d")),
            rec(4, "k4", Some("e")),
            rec(5, "k3", Some("f")),
        ]
    );
    assert_eq!((stats[0].kept_records, stats[0].removed_records), (1, 2));
    assert_eq!((stats[1].kept_records, stats[1].removed_records), (3, 0));
    // Untouched batches are copied byte for byte.
    assert_eq!(cleaned.bytes[1], log.bytes[1]);
}

#[test]
fn a_partly_cleaned_batch_keeps_its_header_offsets_and_producer_fields() {
    let log = log_of(&[
        vec![vec![kv("k1", "a"), kv("k2", "b"), kv("k3", "c")]],
        vec![vec![kv("k1", "d"), kv("k3", "e")]],
    ]);
    let (cleaned, _) = log.clean(T0 + 60_000);
    let before = log.headers()[0];
    let after = cleaned.headers()[0];
    assert_eq!(after.records_count, 1);
    assert_eq!(
        (
            after.base_offset,
            after.last_offset_delta,
            after.base_sequence
        ),
        (
            before.base_offset,
            before.last_offset_delta,
            before.base_sequence
        ),
        "lastOffsetDelta survives so the producer's last sequence does"
    );
    assert_eq!(
        (
            after.producer_id,
            after.producer_epoch,
            after.partition_leader_epoch
        ),
        (
            before.producer_id,
            before.producer_epoch,
            before.partition_leader_epoch
        )
    );
    assert!(!after.has_delete_horizon());
    // The surviving record keeps its timestamp; the batch's timestamps are its own now.
    let survivor = &check_batches(&cleaned.bytes[0])[0];
    assert_eq!((survivor.offset, survivor.timestamp), (1, T0 + 1));
    assert_eq!(
        (after.base_timestamp, after.max_timestamp),
        (T0 + 1, T0 + 1)
    );
}

#[test]
fn tombstones_survive_until_the_delete_horizon_then_vanish() {
    let log = log_of(&[
        vec![
            vec![kv("k1", "a"), kv("k2", "b")],
            vec![tombstone("k1"), tombstone("k3")],
        ],
        vec![vec![kv("k3", "back"), kv("k2", "c")], vec![kv("k4", "d")]],
    ]);
    let first_cleaning = T0 + 60_000;
    let (once, _) = log.clean(first_cleaning);
    // k3's tombstone is superseded at once; k1's is the latest and stays, stamped (KIP-534).
    let expected_with_tombstone = vec![
        rec(2, "k1", None),
        rec(4, "k3", Some("back")),
        rec(5, "k2", Some("c")),
        rec(6, "k4", Some("d")),
    ];
    assert_eq!(once.records(), expected_with_tombstone);
    let horizon = first_cleaning + DAY_MS;
    let stamped = once.headers()[0];
    assert!(stamped.has_delete_horizon());
    assert_eq!(stamped.base_timestamp, horizon);
    assert_eq!(check_batches(&once.bytes[0])[0].timestamp, T0 + 2_000);

    // Later rounds before the horizon leave the stamped batch as it is.
    let (twice, _) = once.clean(horizon - 1);
    assert_eq!(twice.records(), expected_with_tombstone);
    assert_eq!(twice.bytes, once.bytes);

    let (after, stats) = twice.clean(horizon);
    assert_eq!(after.records(), expected_with_tombstone[1..].to_vec());
    assert_eq!((stats[0].removed_records, stats[0].removed_batches), (1, 1));
    assert!(after.bytes[0].is_empty());
}

#[test]
fn the_last_batch_of_the_round_stays_as_an_empty_header() {
    let log = log_of(&[vec![
        vec![kv("k1", "a")],
        vec![tombstone("k2"), keyless("v")],
    ]]);
    let (once, _) = log.clean(T0);
    assert_eq!(
        once.records(),
        vec![rec(0, "k1", Some("a")), rec(1, "k2", None)]
    );
    let (after, stats) = once.clean(T0 + DAY_MS);
    assert_eq!(after.records(), vec![rec(0, "k1", Some("a"))]);
    assert_eq!((stats[0].removed_batches, stats[0].keyless_records), (0, 0));
    let (before, empty) = (once.headers()[1], after.headers()[1]);
    assert_eq!(empty.size_in_bytes(), BATCH_HEADER_LEN);
    assert_eq!((empty.records_count, empty.attributes), (0, 0));
    assert_eq!(
        empty.next_offset(),
        after.end_offset(),
        "the log's last offset is kept"
    );
    assert_eq!(
        (
            empty.base_offset,
            empty.last_offset_delta,
            empty.producer_id,
            empty.base_sequence
        ),
        (
            before.base_offset,
            before.last_offset_delta,
            before.producer_id,
            before.base_sequence
        )
    );
    assert_eq!(
        (empty.base_timestamp, empty.max_timestamp),
        (NO_TIMESTAMP, before.max_timestamp)
    );
}

#[test]
fn an_active_producers_last_batch_stays_as_an_empty_header() {
    let log = log_of(&[vec![
        vec![kv("k1", "a")],
        vec![kv("k1", "b")],
        vec![kv("k2", "c")],
    ]]);
    let (plain, _) = log.clean(T0);
    assert_eq!(plain.headers().len(), 2);
    let producers = BTreeMap::from([(PRODUCER_ID, 0)]);
    let (kept, stats) = log.clean_with(T0, &producers);
    assert_eq!(kept.records(), plain.records());
    let headers = kept.headers();
    assert_eq!((headers.len(), headers[0].records_count), (3, 0));
    assert_eq!(stats[0].removed_batches, 0);
}

#[test]
fn keyless_records_are_removed_and_counted_as_kafka_does() {
    let log = log_of(&[vec![
        vec![keyless("x"), kv("k1", "a"), keyless("y")],
        vec![kv("k2", "b")],
    ]]);
    let (cleaned, stats) = log.clean(T0);
    assert_eq!(
        cleaned.records(),
        vec![rec(1, "k1", Some("a")), rec(3, "k2", Some("b"))]
    );
    assert_eq!((stats[0].removed_records, stats[0].keyless_records), (2, 2));
}

#[test]
fn control_batches_are_kept_verbatim_and_not_mapped() {
    let mut log = log_of(&[vec![vec![kv("k1", "a")]], vec![vec![kv("k1", "b")]]]);
    // A commit marker at offset 1 (control key: version 0, type 1), its key equal to nothing.
    let marker = batch::encode_batch(
        &BatchSpec {
            base_offset: 1,
            transactional: true,
            control: true,
            producer_id: PRODUCER_ID,
            ..BatchSpec::default()
        },
        &[Record {
            offset_delta: 0,
            timestamp_delta: 0,
            key: Some(Bytes::from_static(&[0, 0, 0, 1])),
            value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
            headers: vec![],
        }],
    );
    let mut second = marker.to_vec();
    second.extend(batch_at(2, &[kv("k1", "c")]));
    log.bytes[1] = second;
    log.segments[1].next_offset = 3;
    log.segments[1].size_bytes = log.bytes[1].len() as u64;
    log.segments[2].base_offset = 3;
    log.segments[2].next_offset = 3;
    let (cleaned, _) = log.clean(T0);
    assert!(cleaned.bytes[0].is_empty());
    assert_eq!(&cleaned.bytes[1][..marker.len()], &marker[..]);
    assert_eq!(cleaned.records().len(), 2);
}

#[test]
fn log_append_time_batches_keep_their_timestamp_type_and_max_timestamp() {
    let mut log = log_of(&[vec![
        vec![kv("k1", "a"), tombstone("k2")],
        vec![kv("k1", "b")],
    ]]);
    let appended_at = T0 + 5_000;
    let first = log.headers()[0].size_in_bytes();
    batch::set_max_timestamp_log_append_time(&mut log.bytes[0][..first], appended_at);
    let (cleaned, _) = log.clean(T0 + 9_000);
    let header = cleaned.headers()[0];
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(header.max_timestamp, appended_at);
    assert_eq!(header.base_timestamp, T0 + 9_000 + DAY_MS);
    let records = check_batches(&cleaned.bytes[0][..header.size_in_bytes()]);
    assert_eq!((records[0].offset, records[0].timestamp), (1, appended_at));
}

#[test]
#[should_panic(expected = "never touches the active segment")]
fn the_active_segment_is_refused() {
    let log = log_of(&[vec![vec![kv("k1", "a")]]]);
    let (map, producers, config) = (BTreeMap::new(), BTreeMap::new(), CleanerConfig::default());
    let round = CleaningRound {
        now_ms: T0,
        end_offset: 1,
        offset_map: &map,
        active_producers: &producers,
        config: &config,
    };
    let _ = clean_segment(&log.segments[1], &log.bytes[1], &round);
}

fn undecompressable<T>(result: &Result<T, BatchError>) -> bool {
    let why = "gzip records do not decompress";
    matches!(result, Err(BatchError::Corrupt(e)) if e.contains(why))
}

#[test]
fn corrupt_segments_are_errors_not_guesses() {
    let log = log_of(&[vec![vec![kv("k1", "a")]]]);
    // Marked gzip, its CRC valid, but its records are no gzip stream.
    let mut gzip = log.bytes[0].clone();
    gzip[ATTRIBUTES_AT + 1] |= 1;
    reseal(&mut gzip);
    assert!(undecompressable(&build_offset_map(&[&gzip])));
    let (map, producers, config) = (BTreeMap::new(), BTreeMap::new(), CleanerConfig::default());
    let round = CleaningRound {
        now_ms: T0,
        end_offset: 1,
        offset_map: &map,
        active_producers: &producers,
        config: &config,
    };
    assert!(undecompressable(&clean_segment(
        &log.segments[0],
        &gzip,
        &round
    )));
    let mut flipped = log.bytes[0].clone();
    flipped[40] ^= 1;
    assert!(matches!(
        clean_segment(&log.segments[0], &flipped, &round),
        Err(BatchError::CrcMismatch { .. })
    ));
}

/// The same log with every batch's records compressed with `codec`.
fn compressed(log: &Log, codec: Compression) -> Log {
    let mut out = log.clone();
    for (i, bytes) in log.bytes.iter().enumerate() {
        out.bytes[i] = batch::batches(bytes)
            .flat_map(|(position, header)| {
                let one = &bytes[position..position + header.size_in_bytes()];
                batch::recompress(one, codec).unwrap()
            })
            .collect();
        out.segments[i].size_bytes = out.bytes[i].len() as u64;
    }
    out
}

#[test]
fn compressed_batches_are_cleaned_and_recompressed_with_their_own_codec() {
    let plain = log_of(&[
        vec![
            vec![kv("k1", "a"), kv("k2", "b"), kv("k3", "c")],
            vec![kv("k5", "x")],
        ],
        vec![
            vec![kv("k1", "d"), tombstone("k3")],
            vec![kv("k4", "e")],
            vec![kv("k5", "y")],
        ],
    ]);
    let now = T0 + 60_000;
    let (expected, expected_stats) = plain.clean(now);
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let log = compressed(&plain, codec);
        assert!(log.headers().iter().all(|h| h.compression() == Ok(codec)));
        let (cleaned, stats) = log.clean(now);
        assert_eq!(cleaned.records(), expected.records(), "{codec:?}");
        for (ours, plain) in stats.iter().zip(&expected_stats) {
            assert_eq!(
                (
                    ours.kept_records,
                    ours.removed_records,
                    ours.removed_batches
                ),
                (
                    plain.kept_records,
                    plain.removed_records,
                    plain.removed_batches
                )
            );
        }
        let headers = cleaned.headers();
        // k2 alone stays of the first batch: rewritten, compressed as it was.
        assert_eq!(
            (headers[0].records_count, headers[0].compression()),
            (1, Ok(codec))
        );
        // k1's new value and k3's tombstone: kept whole but stamped with a delete horizon, so
        // rewritten too, still compressed.
        assert!(headers[1].has_delete_horizon());
        assert_eq!(headers[1].compression(), Ok(codec));
        // A batch every record of which stays is copied byte for byte.
        let untouched = batch::batches(&log.bytes[1]).nth(1).unwrap();
        let size = untouched.1.size_in_bytes();
        assert!(cleaned.bytes[1]
            .windows(size)
            .any(|w| w == &log.bytes[1][untouched.0..untouched.0 + size]));
        // k5's old batch, emptied, goes (it is not the round's last batch).
        assert_eq!(headers.len(), 4);
    }
}

#[test]
fn an_emptied_compressed_batch_kept_for_its_offsets_is_a_bare_uncompressed_header() {
    let log = compressed(
        &log_of(&[vec![vec![kv("k1", "a")], vec![kv("k1", "b")]]]),
        Compression::Zstd,
    );
    let mut with_old_last = log.clone();
    // Make the first batch the round's last one, as a segment of its own.
    let first = batch::batches(&log.bytes[0]).next().unwrap().1;
    with_old_last.bytes[0] = log.bytes[0][..first.size_in_bytes()].to_vec();
    with_old_last.segments[0].next_offset = 1;
    with_old_last.segments[0].size_bytes = first.size_in_bytes() as u64;
    let config = CleanerConfig::default();
    let map = BTreeMap::from([(Bytes::from_static(b"k1"), 1)]);
    let producers = BTreeMap::new();
    let round = CleaningRound {
        now_ms: T0 + 60_000,
        end_offset: 1,
        offset_map: &map,
        active_producers: &producers,
        config: &config,
    };
    let cleaned =
        clean_segment(&with_old_last.segments[0], &with_old_last.bytes[0], &round).unwrap();
    let header = batch::validate(&cleaned.bytes).unwrap();
    assert_eq!(header.records_count, 0);
    assert_eq!(header.compression(), Ok(Compression::None));
    assert_eq!(cleaned.bytes.len(), BATCH_HEADER_LEN);
}

#[test]
fn the_dirty_ratio_gates_cleaning() {
    let config = CleanerConfig::default();
    assert_eq!(dirty_ratio(0, 0), 0.0);
    assert!(!should_clean(0, 0, &config), "an empty log");
    assert_eq!(dirty_ratio(300, 100), 0.25);
    assert!(!should_clean(100, 100, &config), "strictly above the ratio");
    assert!(should_clean(99, 101, &config));
    assert!(should_clean(0, 1, &config));
    let eager = CleanerConfig {
        min_cleanable_dirty_ratio: 0.0,
        ..config
    };
    assert!(should_clean(1_000, 1, &eager) && !should_clean(1_000, 0, &eager));
}

fn segments_for_range() -> Vec<SegmentInfo> {
    // [0,10) [10,20) [20,30) of 100 bytes, newest records at T0+10, +20, +30; active [30,35).
    (0..4)
        .map(|i| SegmentInfo {
            base_offset: 10 * i,
            next_offset: if i == 3 { 35 } else { 10 * i + 10 },
            size_bytes: if i == 3 { 50 } else { 100 },
            largest_timestamp_ms: T0 + 10 * (i + 1),
            is_active: i == 3,
        })
        .collect()
}

#[test]
fn the_cleanable_range_stops_at_the_active_segment_the_lso_and_the_compaction_lag() {
    let segments = segments_for_range();
    let config = CleanerConfig::default();
    let range = |checkpoint, lso, now, config: &CleanerConfig| {
        let r = cleanable_range(&segments, checkpoint, 0, lso, now, config);
        (
            r.first_dirty_offset,
            r.first_uncleanable_offset,
            r.clean_bytes,
            r.cleanable_bytes,
        )
    };
    assert_eq!(range(None, 35, T0, &config), (0, 30, 0, 300));
    assert_eq!(range(Some(10), 35, T0, &config), (10, 30, 100, 200));
    // The LSO inside a segment: the round ends at that segment's base.
    assert_eq!(range(Some(10), 25, T0, &config), (10, 20, 100, 100));
    // A checkpoint outside the log starts over from the log start.
    assert_eq!(range(Some(36), 35, T0, &config), (0, 30, 0, 300));
    // Nothing dirty: nothing to clean.
    assert_eq!(range(Some(30), 35, T0, &config), (30, 30, 300, 0));
    let lagged = CleanerConfig {
        min_compaction_lag_ms: 1_000,
        ..config
    };
    // Records newer than T0+20 are inside the lag: the segment holding T0+30 stays dirty.
    assert_eq!(range(None, 35, T0 + 1_020, &lagged), (0, 20, 0, 200));
    assert_eq!(range(None, 35, T0 + 1_030, &lagged), (0, 30, 0, 300));
}

/// A log of up to 4 segments of up to 3 batches of up to 4 records: keys from a small set so
/// they repeat, some keyless, some tombstones.
fn arb_log() -> impl Strategy<Value = Vec<Vec<Vec<Kv>>>> {
    let key = proptest::option::weighted(0.9, 0..5u8).prop_map(|k| k.map(|k| format!("k{k}")));
    let value = proptest::option::weighted(0.75, 0..100u8).prop_map(|v| v.map(|v| format!("v{v}")));
    let record = (key, value);
    let batch = proptest::collection::vec(record, 1..5);
    let segment = proptest::collection::vec(batch, 1..4);
    proptest::collection::vec(segment, 1..5)
}

/// The model: each key's latest record, tombstones optionally dropped; keyless records never.
fn latest_per_key(
    log: &[Vec<Vec<Kv>>],
    with_tombstones: bool,
) -> Vec<(i64, Option<String>, Option<String>)> {
    let mut latest = BTreeMap::new();
    let records = log.iter().flatten().flatten();
    for (offset, (key, value)) in records.enumerate() {
        if let Some(key) = key {
            latest.insert(key.clone(), (offset as i64, value.clone()));
        }
    }
    let mut expected: Vec<_> = latest
        .into_iter()
        .filter(|(_, (_, value))| with_tombstones || value.is_some())
        .map(|(key, (offset, value))| (offset, Some(key), value))
        .collect();
    expected.sort();
    expected
}

proptest! {
    #[test]
    fn compaction_matches_the_latest_value_per_key_model(spec in arb_log()) {
        let log = log_of(&spec);
        let now = T0 + 3_600_000;
        let (once, _) = log.clean(now);
        prop_assert_eq!(once.records(), latest_per_key(&spec, true));
        // The round's last batch survives, so the log's last offset does.
        let last = once.headers().last().map(|h| h.next_offset());
        prop_assert_eq!(last, Some(log.end_offset()));
        // Cleaning is idempotent until a horizon passes.
        let (twice, _) = once.clean(now + DAY_MS - 1);
        prop_assert_eq!(&twice.bytes, &once.bytes);
        let (after, _) = twice.clean(now + DAY_MS);
        prop_assert_eq!(after.records(), latest_per_key(&spec, false));
        for header in after.headers() {
            prop_assert!(header.records_count > 0 || header.next_offset() == log.end_offset());
        }
    }
}
