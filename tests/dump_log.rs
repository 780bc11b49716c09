//! `samsa dump-log` prints a broker's files as Kafka's `kafka-dump-log.sh` does, line for line.
//!
//! The fixtures are built by hand: batches with the storage encoder, index entries byte by
//! byte. What a corrupt file does, decided as Kafka's tool decides it:
//! - a torn tail (fewer bytes than the batch declares) is "Found N invalid bytes at the end of
//!   …", exit 0;
//! - a batch whose CRC fails is printed with `isvalid: false` and the dump goes on, exit 0;
//! - a header no writer produces (record size below the minimum, magic other than 2) stops the
//!   dump: Kafka throws `CorruptRecordException`, Samsa exits 2 with one line naming the file
//!   and the position, after what it printed before;
//! - a file that cannot be read as what its name says (unknown type, no base offset in the
//!   name, an index that is not whole entries, a checkpoint that does not parse) exits 2 with
//!   one line naming the file.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use proptest::prelude::*;
use samsa::dump::{dump_path, DumpOptions};
use samsa::storage::batch::{encode_batch, parse_header, BatchSpec, Compression, Record};

const T0: i64 = 1_700_000_000_000;

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("samsa-dump-log-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn record(delta: i32, ts_delta: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Record {
    Record {
        offset_delta: delta,
        timestamp_delta: ts_delta,
        key: key.map(Bytes::copy_from_slice),
        value: value.map(Bytes::copy_from_slice),
        headers: Vec::new(),
    }
}

/// Three batches from `base`: two plain records (one with a header, one without a key), one
/// transactional record of producer 7, and its COMMIT marker.
fn fixture_batches(base: i64) -> Vec<Bytes> {
    let mut first = record(0, 0, Some(b"k1"), Some(b"hello"));
    first.headers = vec![("h1".to_string(), Some(Bytes::from_static(b"x")))];
    let plain = BatchSpec {
        base_offset: base,
        partition_leader_epoch: 0,
        base_timestamp: T0,
        ..BatchSpec::default()
    };
    let txn = BatchSpec {
        base_offset: base + 2,
        partition_leader_epoch: 1,
        base_timestamp: T0 + 10,
        producer_id: 7,
        producer_epoch: 0,
        base_sequence: 10,
        transactional: true,
        control: false,
        compression: Compression::None,
    };
    let marker = BatchSpec {
        base_offset: base + 3,
        base_timestamp: T0 + 20,
        base_sequence: -1,
        control: true,
        ..txn
    };
    // Control key: version 0, type 1 (COMMIT); value: version 0, coordinatorEpoch 2.
    let commit = record(0, 0, Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0, 2]));
    vec![
        encode_batch(&plain, &[first, record(1, 5, None, Some(b"world"))]),
        encode_batch(&txn, &[record(0, 0, Some(b"k2"), Some(b"v"))]),
        encode_batch(&marker, &[commit]),
    ]
}

fn concat(batches: &[Bytes]) -> Vec<u8> {
    batches.iter().flat_map(|b| b.iter().copied()).collect()
}

fn crc(batch: &[u8]) -> u32 {
    parse_header(batch).unwrap().crc
}

fn segment_name(base: i64) -> String {
    format!("{base:020}.log")
}

/// Runs `samsa dump-log ARGS`: exit code, stdout, stderr.
fn samsa(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_samsa"))
        .arg("dump-log")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

fn dump_ok(args: &[&str]) -> String {
    let (code, stdout, stderr) = samsa(args);
    assert_eq!(code, 0, "dump-log {args:?}: stderr {stderr}");
    assert_eq!(stderr, "", "dump-log {args:?}");
    stdout
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The batch lines of the fixture at base offset `base`, as Kafka prints them.
fn fixture_batch_lines(base: i64, batches: &[Bytes]) -> [String; 3] {
    let (a, b, c) = (base, base + 2, base + 3);
    [
        format!(
            "baseOffset: {a} lastOffset: {} count: 2 baseSequence: -1 lastSequence: -1 producerId: -1 \
             producerEpoch: -1 partitionLeaderEpoch: 0 isTransactional: false isControl: false \
             deleteHorizonMs: OptionalLong.empty position: 0 CreateTime: 1700000000005 size: 92 \
             magic: 2 compresscodec: none crc: {} isvalid: true",
            a + 1,
            crc(&batches[0])
        ),
        format!(
            "baseOffset: {b} lastOffset: {b} count: 1 baseSequence: 10 lastSequence: 10 producerId: 7 \
             producerEpoch: 0 partitionLeaderEpoch: 1 isTransactional: true isControl: false \
             deleteHorizonMs: OptionalLong.empty position: 92 CreateTime: 1700000000010 size: 71 \
             magic: 2 compresscodec: none crc: {} isvalid: true",
            crc(&batches[1])
        ),
        format!(
            "baseOffset: {c} lastOffset: {c} count: 1 baseSequence: -1 lastSequence: -1 producerId: 7 \
             producerEpoch: 0 partitionLeaderEpoch: 1 isTransactional: true isControl: true \
             deleteHorizonMs: OptionalLong.empty position: 163 CreateTime: 1700000000020 size: 78 \
             magic: 2 compresscodec: none crc: {} isvalid: true",
            crc(&batches[2])
        ),
    ]
}

fn lines(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn a_segment_prints_kafka_batch_lines() {
    let dir = scratch("segment");
    let batches = fixture_batches(0);
    let path = dir.join(segment_name(0));
    std::fs::write(&path, concat(&batches)).unwrap();
    let [a, b, c] = fixture_batch_lines(0, &batches);
    let dumping = format!("Dumping {}", s(&path));
    assert_eq!(
        dump_ok(&[s(&path)]),
        lines(&[&dumping, "Log starting offset: 0", &a, &b, &c])
    );
}

#[test]
fn print_data_log_adds_kafka_record_lines() {
    let dir = scratch("data-log");
    let batches = fixture_batches(0);
    let path = dir.join(segment_name(0));
    std::fs::write(&path, concat(&batches)).unwrap();
    let [a, b, c] = fixture_batch_lines(0, &batches);
    let dumping = format!("Dumping {}", s(&path));
    assert_eq!(
        dump_ok(&[s(&path), "--print-data-log"]),
        lines(&[
            &dumping,
            "Log starting offset: 0",
            &a,
            "| offset: 0 CreateTime: 1700000000000 keySize: 2 valueSize: 5 sequence: -1 \
             headerKeys: [h1] key: k1 payload: hello",
            "| offset: 1 CreateTime: 1700000000005 keySize: -1 valueSize: 5 sequence: -1 \
             headerKeys: [] payload: world",
            &b,
            "| offset: 2 CreateTime: 1700000000010 keySize: 2 valueSize: 1 sequence: 10 \
             headerKeys: [] key: k2 payload: v",
            &c,
            "| offset: 3 CreateTime: 1700000000020 keySize: 4 valueSize: 6 sequence: -1 \
             headerKeys: [] endTxnMarker: COMMIT coordinatorEpoch: 2",
        ])
    );
}

#[test]
fn compressed_batches_print_their_codec_and_their_records() {
    let dir = scratch("compressed");
    let records = [
        record(0, 0, Some(b"k1"), Some(b"hello")),
        record(1, 5, None, Some(b"world")),
    ];
    let mut segment = Vec::new();
    let mut expected = vec![];
    for (i, codec) in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ]
    .into_iter()
    .enumerate()
    {
        let base = 2 * i as i64;
        let spec = BatchSpec {
            base_offset: base,
            partition_leader_epoch: 0,
            base_timestamp: T0,
            compression: codec,
            ..BatchSpec::default()
        };
        let batch = encode_batch(&spec, &records);
        let header = parse_header(&batch).unwrap();
        expected.push(format!(
            "baseOffset: {base} lastOffset: {} count: 2 baseSequence: -1 lastSequence: -1 \
             producerId: -1 producerEpoch: -1 partitionLeaderEpoch: 0 isTransactional: false \
             isControl: false deleteHorizonMs: OptionalLong.empty position: {} \
             CreateTime: 1700000000005 size: {} magic: 2 compresscodec: {} crc: {} isvalid: true",
            base + 1,
            segment.len(),
            batch.len(),
            codec.name(),
            header.crc
        ));
        expected.push(format!(
            "| offset: {base} CreateTime: 1700000000000 keySize: 2 valueSize: 5 sequence: -1 \
             headerKeys: [] key: k1 payload: hello"
        ));
        expected.push(format!(
            "| offset: {} CreateTime: 1700000000005 keySize: -1 valueSize: 5 sequence: -1 \
             headerKeys: [] payload: world",
            base + 1
        ));
        segment.extend_from_slice(&batch);
    }
    let path = dir.join(segment_name(0));
    std::fs::write(&path, &segment).unwrap();
    let dumping = format!("Dumping {}", s(&path));
    let mut want = vec![dumping.as_str(), "Log starting offset: 0"];
    want.extend(expected.iter().map(String::as_str));
    assert_eq!(dump_ok(&[s(&path), "--print-data-log"]), lines(&want));
}

#[test]
fn offset_gaps_are_reported_as_non_consecutive() {
    let dir = scratch("gaps");
    let spec = |base_offset| BatchSpec {
        base_offset,
        base_timestamp: T0,
        ..BatchSpec::default()
    };
    let mut log = encode_batch(&spec(100), &[record(0, 0, None, Some(b"a"))]).to_vec();
    log.extend_from_slice(&encode_batch(&spec(105), &[record(0, 0, None, Some(b"b"))]));
    let path = dir.join(segment_name(100));
    std::fs::write(&path, &log).unwrap();
    let stdout = dump_ok(&[s(&path), "--print-data-log"]);
    // Kafka starts counting from -1 and would also report "-1 is followed by 100".
    let tail = format!(
        "Non-consecutive offsets in {}\n  100 is followed by 105\n",
        s(&path)
    );
    assert!(stdout.ends_with(&tail), "{stdout}");
    assert!(stdout.contains("| offset: 105 "), "{stdout}");
}

#[test]
fn a_torn_tail_is_found_invalid_bytes_and_exit_0() {
    let dir = scratch("torn");
    let batches = fixture_batches(0);
    let [a, b, c] = fixture_batch_lines(0, &batches);
    // 50 bytes: shorter than a header. 80 bytes: a header that declares 92.
    for torn in [50usize, 80] {
        let path = dir.join(segment_name(0));
        let mut log = concat(&batches);
        log.extend_from_slice(&batches[0][..torn]);
        std::fs::write(&path, &log).unwrap();
        let dumping = format!("Dumping {}", s(&path));
        let found = format!("Found {torn} invalid bytes at the end of 00000000000000000000.log");
        assert_eq!(
            dump_ok(&[s(&path)]),
            lines(&[&dumping, "Log starting offset: 0", &a, &b, &c, &found])
        );
    }
}

#[test]
fn a_corrupt_byte_under_the_crc_prints_isvalid_false_and_goes_on() {
    let dir = scratch("crc");
    let batches = fixture_batches(0);
    let mut log = concat(&batches);
    log[85] ^= 0x40; // inside "world", the first batch's second record
    let path = dir.join(segment_name(0));
    std::fs::write(&path, &log).unwrap();
    let stdout = dump_ok(&[s(&path), "--print-data-log"]);
    let out: Vec<&str> = stdout.lines().collect();
    assert!(
        out[2].starts_with("baseOffset: 0 lastOffset: 1 count: 2 "),
        "{stdout}"
    );
    assert!(out[2].ends_with(" isvalid: false"), "{stdout}");
    assert!(
        out[3].starts_with("| records not decoded: CRC-32C mismatch: stored 0x"),
        "{stdout}"
    );
    // The next batches are still framed and printed, as Kafka does.
    assert!(out[4].starts_with("baseOffset: 2 ") && out[4].ends_with(" isvalid: true"));
    // The offsets of the batch that could not be decoded were not seen.
    let gap = format!("Non-consecutive offsets in {}", s(&path));
    assert_eq!(
        out[8..],
        [gap.as_str(), "  -1 is followed by 2"],
        "{stdout}"
    );
}

#[test]
fn an_impossible_batch_header_stops_the_dump_with_exit_2() {
    let dir = scratch("magic");
    let batches = fixture_batches(0);
    let [a, _, _] = fixture_batch_lines(0, &batches);
    let path = dir.join(segment_name(0));
    let dumping = format!("Dumping {}", s(&path));

    let mut log = concat(&batches);
    log[92 + 16] = 3; // the second batch's magic
    std::fs::write(&path, &log).unwrap();
    let (code, stdout, stderr) = samsa(&[s(&path)]);
    assert_eq!(code, 2);
    assert_eq!(stdout, lines(&[&dumping, "Log starting offset: 0", &a]));
    assert_eq!(
        stderr,
        format!(
            "{}: invalid magic 3 in the batch at position 92 (Samsa reads only magic 2, \
             record batch format v2)\n",
            s(&path)
        )
    );

    let mut log = concat(&batches);
    log[92 + 8..92 + 12].copy_from_slice(&0i32.to_be_bytes()); // its batchLength
    std::fs::write(&path, &log).unwrap();
    let (code, _, stderr) = samsa(&[s(&path)]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "{}: found record size 0 smaller than minimum record overhead (49) in the batch \
             at position 92\n",
            s(&path)
        )
    );
}

/// The fixture at base offset 100 with an offset index and a time index as Kafka writes them:
/// each entry holds the last offset of the batch at its position (the time index: and that
/// batch's max timestamp).
fn indexed_segment(name: &str) -> (PathBuf, Vec<Bytes>) {
    let dir = scratch(name);
    let batches = fixture_batches(100);
    std::fs::write(dir.join(segment_name(100)), concat(&batches)).unwrap();
    (dir, batches)
}

fn index_bytes(entries: &[(i32, i32)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (relative_offset, position) in entries {
        bytes.extend_from_slice(&relative_offset.to_be_bytes());
        bytes.extend_from_slice(&position.to_be_bytes());
    }
    bytes
}

fn time_index_bytes(entries: &[(i64, i32)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (timestamp, relative_offset) in entries {
        bytes.extend_from_slice(&timestamp.to_be_bytes());
        bytes.extend_from_slice(&relative_offset.to_be_bytes());
    }
    bytes
}

#[test]
fn an_offset_index_prints_absolute_offsets_and_positions() {
    let (dir, _) = indexed_segment("index");
    let path = dir.join("00000000000000000100.index");
    // Two trailing zero entries: a preallocated file's tail, where Kafka's tool stops.
    std::fs::write(
        &path,
        index_bytes(&[(1, 0), (2, 92), (3, 163), (0, 0), (0, 0)]),
    )
    .unwrap();
    let dumping = format!("Dumping {}", s(&path));
    assert_eq!(
        dump_ok(&[s(&path)]),
        lines(&[
            &dumping,
            "offset: 101 position: 0",
            "offset: 102 position: 92",
            "offset: 103 position: 163",
        ])
    );
    let passed = format!("{} passed sanity check.", s(&path));
    assert_eq!(
        dump_ok(&[s(&path), "--index-sanity-check"]),
        lines(&[&dumping, &passed])
    );

    std::fs::write(&path, []).unwrap();
    let empty = format!("{} is empty.", s(&path));
    assert_eq!(dump_ok(&[s(&path)]), lines(&[&dumping, &empty]));
}

#[test]
fn index_entries_that_miss_their_batch_are_mismatches() {
    let (dir, _) = indexed_segment("index-mismatch");
    let path = dir.join("00000000000000000100.index");
    // 101 at a batch that holds 100..=101 is fine (Samsa accepts any offset of the batch);
    // position 50 starts no batch; offset 103 is not in the batch at 92.
    std::fs::write(&path, index_bytes(&[(0, 0), (1, 50), (3, 92)])).unwrap();
    let dumping = format!("Dumping {}", s(&path));
    let mismatches = format!("Mismatches in :{}", s(&path));
    let expected_tail = [
        mismatches.as_str(),
        "  Index offset: 103, log offset: 102",
        "  Index offset: 101, log offset: -1",
    ];
    let mut expected = vec![
        dumping.as_str(),
        "offset: 100 position: 0",
        "offset: 101 position: 50",
        "offset: 103 position: 92",
    ];
    expected.extend(expected_tail);
    assert_eq!(dump_ok(&[s(&path)]), lines(&expected));

    // The sanity check prints no entries, and no "passed".
    let mut expected = vec![dumping.as_str()];
    expected.extend(expected_tail);
    assert_eq!(
        dump_ok(&[s(&path), "--index-sanity-check"]),
        lines(&expected)
    );
}

#[test]
fn the_sanity_check_refuses_entries_that_do_not_increase() {
    let (dir, _) = indexed_segment("index-order");
    let path = dir.join("00000000000000000100.index");
    std::fs::write(&path, index_bytes(&[(2, 92), (1, 0)])).unwrap();
    let dumping = format!("Dumping {}", s(&path));
    let failure = format!(
        "Corrupt index found, index file ({}) has entry 1 (offset: 101 position: 0) not above \
         entry 0 (offset: 102 position: 92).",
        s(&path)
    );
    assert_eq!(
        dump_ok(&[s(&path), "--index-sanity-check"]),
        lines(&[&dumping, &failure])
    );

    // Kafka's own check: a last offset below the base offset (a negative relative offset).
    std::fs::write(&path, index_bytes(&[(-1, 0)])).unwrap();
    let stdout = dump_ok(&[s(&path), "--index-sanity-check"]);
    assert!(
        stdout.contains(
            "has non-zero size but the last offset is 99 which is less than the base offset 100."
        ),
        "{stdout}"
    );
}

#[test]
fn a_time_index_prints_timestamps_and_checks_them_against_the_segment() {
    let (dir, _) = indexed_segment("timeindex");
    let path = dir.join("00000000000000000100.timeindex");
    std::fs::write(
        &path,
        time_index_bytes(&[(T0 + 5, 1), (T0 + 10, 2), (0, 0)]),
    )
    .unwrap();
    let dumping = format!("Dumping {}", s(&path));
    assert_eq!(
        dump_ok(&[s(&path)]),
        lines(&[
            &dumping,
            "timestamp: 1700000000005 offset: 101",
            "timestamp: 1700000000010 offset: 102",
        ])
    );
    let passed = format!("{} passed sanity check.", s(&path));
    assert_eq!(
        dump_ok(&[s(&path), "--index-sanity-check"]),
        lines(&[&dumping, &passed])
    );

    // A wrong timestamp, then one that goes backwards, then an offset past the log.
    std::fs::write(
        &path,
        time_index_bytes(&[(T0 + 6, 1), (T0 + 1, 2), (T0 + 30, 9)]),
    )
    .unwrap();
    let header = |what: &str| format!("{what} in :{}", s(&path));
    assert_eq!(
        dump_ok(&[s(&path)]),
        lines(&[
            &dumping,
            "timestamp: 1700000000006 offset: 101",
            "timestamp: 1700000000001 offset: 102",
            "timestamp: 1700000000030 offset: 109",
            &header("Found timestamp mismatch"),
            "  Index timestamp: 1700000000006, log timestamp: 1700000000005",
            "  Index timestamp: 1700000000001, log timestamp: 1700000000010",
            &header("Found out of order timestamp"),
            "  Index timestamp: 1700000000001, Previously indexed timestamp: 1700000000006",
            "The following indexed offsets are not found in the log.",
            "Indexed offset: 109, found log offset: -1",
        ])
    );
}

#[test]
fn checkpoint_files_print_their_entries() {
    let dir = scratch("checkpoints");
    let epochs = dir.join("leader-epoch-checkpoint");
    std::fs::write(&epochs, "0\n2\n0 0\n3 102\n").unwrap();
    let dumping = format!("Dumping {}", s(&epochs));
    assert_eq!(
        dump_ok(&[s(&epochs)]),
        lines(&[
            &dumping,
            "version: 0 entries: 2",
            "epoch: 0 startOffset: 0",
            "epoch: 3 startOffset: 102",
        ])
    );
    let offsets = dir.join("replication-offset-checkpoint");
    std::fs::write(&offsets, "0\n2\norders 0 104\norders 1 0\n").unwrap();
    let dumping = format!("Dumping {}", s(&offsets));
    assert_eq!(
        dump_ok(&[s(&offsets)]),
        lines(&[
            &dumping,
            "version: 0 entries: 2",
            "topic: orders partition: 0 offset: 104",
            "topic: orders partition: 1 offset: 0",
        ])
    );
    std::fs::write(&offsets, "").unwrap();
    let empty = format!("{} is empty.", s(&offsets));
    assert_eq!(dump_ok(&[s(&offsets)]), lines(&[&dumping, &empty]));
}

#[test]
fn a_directory_dumps_every_file_in_name_order_recursively() {
    let (dir, _) = indexed_segment("directory");
    let partition = dir.join("orders-0");
    std::fs::create_dir_all(&partition).unwrap();
    let log = segment_name(100);
    std::fs::rename(dir.join(&log), partition.join(&log)).unwrap();
    std::fs::write(
        partition.join("00000000000000000100.index"),
        index_bytes(&[(1, 0)]),
    )
    .unwrap();
    std::fs::write(partition.join("leader-epoch-checkpoint"), "0\n1\n0 100\n").unwrap();
    std::fs::write(partition.join("partition.metadata"), "version: 0\n").unwrap();
    std::fs::write(
        dir.join("recovery-point-offset-checkpoint"),
        "0\n1\norders 0 104\n",
    )
    .unwrap();

    let stdout = dump_ok(&[s(&dir)]);
    let heads: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("Dumping ") || l.starts_with("Ignoring "))
        .collect();
    let p = |name: &str| s(&partition.join(name)).to_string();
    let dumping = |path: String| format!("Dumping {path}");
    assert_eq!(
        heads,
        vec![
            dumping(p("00000000000000000100.index")),
            dumping(p("00000000000000000100.log")),
            dumping(p("leader-epoch-checkpoint")),
            dumping(p("partition.metadata")),
            format!("Ignoring unknown file {}", p("partition.metadata")),
            dumping(s(&dir.join("recovery-point-offset-checkpoint")).to_string()),
        ]
    );
    assert!(stdout.contains("\noffset: 101 position: 0\n"), "{stdout}");
    assert!(stdout.contains("\nepoch: 0 startOffset: 100\n"), "{stdout}");
}

/// Exit 2, nothing on stderr but one line, which names the file and says `what`.
fn expect_bad(path: &Path, flags: &[&str], what: &str) {
    let mut args = vec![s(path)];
    args.extend_from_slice(flags);
    let (code, _, stderr) = samsa(&args);
    assert_eq!(code, 2, "{path:?}: {stderr}");
    let errors: Vec<&str> = stderr.lines().collect();
    assert_eq!(errors.len(), 1, "{path:?}: {stderr}");
    assert!(errors[0].starts_with(&format!("{}: ", s(path))), "{stderr}");
    assert!(errors[0].contains(what), "{what:?} not in {stderr}");
}

#[test]
fn garbage_of_every_type_is_exit_2_with_one_line() {
    let dir = scratch("garbage");
    let file = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let zeros = file(&segment_name(0), &[0u8; 64]);
    expect_bad(
        &zeros,
        &[],
        "record size 0 smaller than minimum record overhead",
    );
    let named = file("garbage.log", b"");
    expect_bad(&named, &[], "does not start with a base offset");
    let index = file("00000000000000000000.index", &[7u8; 13]);
    expect_bad(
        &index,
        &[],
        "13 bytes which is neither positive nor a multiple of 8",
    );
    let time_index = file("00000000000000000000.timeindex", &[7u8; 13]);
    expect_bad(&time_index, &[], "neither positive nor a multiple of 12");
    let epochs = file("leader-epoch-checkpoint", b"garbage\n");
    expect_bad(
        &epochs,
        &[],
        "malformed line 1 in checkpoint file: 'garbage'",
    );
    std::fs::write(&epochs, "0\n3\n0 0\n").unwrap();
    expect_bad(
        &epochs,
        &[],
        "expected 3 entries in the checkpoint file, but found 1",
    );
    std::fs::write(&epochs, "0\n1\n0 zero\n").unwrap();
    expect_bad(&epochs, &[], "malformed line 3");
    let offsets = file("replication-offset-checkpoint", &[0xff, 0xfe, 0x00]);
    expect_bad(&offsets, &[], "not UTF-8");
    let version = file("recovery-point-offset-checkpoint", b"1\n0\n");
    expect_bad(&version, &[], "unrecognized version 1");
    std::fs::write(&version, "0\n1\norders 0\n").unwrap();
    expect_bad(&version, &[], "malformed line 3");
    let unknown = file("notes.txt", b"hello");
    expect_bad(&unknown, &[], "unknown file type");
    expect_bad(&dir.join("missing.log"), &[], "cannot read");
    // A sanity check needs the segment beside the index.
    let lonely = file("00000000000000000500.index", &index_bytes(&[(1, 0)]));
    expect_bad(
        &lonely,
        &["--index-sanity-check"],
        "cannot check the index against",
    );

    let (code, _, stderr) = samsa(&[s(&zeros), "--no-such-flag"]);
    assert_eq!((code, stderr.lines().count()), (2, 1), "{stderr}");
}

/// Every file name the dump knows, and one it does not.
const NAMES: [&str; 6] = [
    "00000000000000000000.log",
    "00000000000000000000.index",
    "00000000000000000000.timeindex",
    "leader-epoch-checkpoint",
    "replication-offset-checkpoint",
    "00000000000000000000.swap",
];

fn dump_quietly(path: &Path, print_data_log: bool, index_sanity_check: bool) {
    let opts = DumpOptions {
        print_data_log,
        index_sanity_check,
    };
    let mut out = Vec::new();
    // Ok or Err: either is fine, as long as it returns.
    let _ = dump_path(path, &opts, &mut out);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        name in proptest::sample::select(&NAMES[..]),
        print_data_log in any::<bool>(),
        index_sanity_check in any::<bool>(),
    ) {
        let dir = std::env::temp_dir()
            .join(format!("samsa-dump-log-{}-random", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        dump_quietly(&path, print_data_log, index_sanity_check);
        dump_quietly(&dir, print_data_log, index_sanity_check);
        std::fs::remove_file(&path).unwrap();
    }

    /// A valid segment and index with bytes flipped: the fields the CRC does not cover (the base
    /// offset, the leader epoch) reach the printing and the index arithmetic unchecked.
    #[test]
    fn corrupted_segments_and_indexes_never_panic(
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), 1u8..=255), 1..4),
        base_offset in prop_oneof![Just(i64::MAX), Just(i64::MIN), any::<i64>(), Just(0)],
        index in proptest::collection::vec((any::<i32>(), any::<i32>()), 0..6),
    ) {
        let dir = std::env::temp_dir()
            .join(format!("samsa-dump-log-{}-corrupted", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut log = concat(&fixture_batches(0));
        log[..8].copy_from_slice(&base_offset.to_be_bytes());
        for (at, xor) in &flips {
            let at = at.index(log.len());
            log[at] ^= xor;
        }
        std::fs::write(dir.join(segment_name(0)), &log).unwrap();
        std::fs::write(dir.join("00000000000000000000.index"), index_bytes(&index)).unwrap();
        let times: Vec<(i64, i32)> = index.iter().map(|&(a, b)| (i64::from(a) << 20, b)).collect();
        std::fs::write(dir.join("00000000000000000000.timeindex"), time_index_bytes(&times))
            .unwrap();
        for (data, sanity) in [(true, false), (false, true)] {
            dump_quietly(&dir, data, sanity);
        }
    }
}

/// The disks a run leaves behind with `--keep-disks` are what `dump-log` reads.
#[cfg(madsim)]
#[test]
fn dumps_the_disks_of_a_run_folder() {
    let out_dir = scratch("run-folder");
    let run = Command::new(env!("CARGO_BIN_EXE_samsa"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "scenarios/quickstart-kill.toml",
            "--keep-disks",
            "--quiet",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let disk = out_dir.join("disks").join("broker-1");
    let segment = disk.join("orders-0").join(segment_name(0));
    let stdout = dump_ok(&[s(&segment)]);
    let out: Vec<&str> = stdout.lines().collect();
    assert_eq!(out[0], format!("Dumping {}", s(&segment)));
    assert_eq!(out[1], "Log starting offset: 0");
    assert!(
        out[2].starts_with("baseOffset: 0 lastOffset: "),
        "{}",
        out[2]
    );
    assert!(
        out.len() > 100,
        "a 30 s run at 200/s writes thousands of batches"
    );
    // A kill keeps the page cache: every batch whole and valid, no torn tail.
    assert!(
        out[2..]
            .iter()
            .all(|l| l.starts_with("baseOffset: ") && l.ends_with(" isvalid: true")),
        "{stdout}"
    );

    // The whole disk, with whatever indexes and checkpoints the broker keeps: each index
    // passes Kafka's sanity check and matches its segment.
    let stdout = dump_ok(&[s(&disk), "--index-sanity-check"]);
    for finding in [
        "Mismatches in",
        "not found in the log",
        "timestamp mismatch",
        "Corrupt",
    ] {
        assert!(!stdout.contains(finding), "{finding}: {stdout}");
    }
}

/// A KRaft snapshot (KIP-630) is record batches: its id from the name, then the header control
/// record, the metadata records, the footer control record.
#[test]
fn a_kraft_snapshot_prints_its_id_and_batches() {
    use samsa::raft::snapshot;
    use samsa::raft::SnapshotId;
    let dir = scratch("snapshot");
    let id = SnapshotId {
        end_offset: 1234,
        epoch: 7,
    };
    let records = [Bytes::from_static(&[1, 20, 0, 0])]; // a NoOpRecord
    let bytes = snapshot::encode(id, T0, &records);
    let path = dir.join(snapshot::file_name(id));
    assert!(s(&path).ends_with("00000000000000001234-0000000007.checkpoint"));
    std::fs::write(&path, &bytes).unwrap();
    let out = dump_ok(&[s(&path), "--print-data-log"]);
    let printed: Vec<&str> = out.lines().collect();
    assert_eq!(printed[1], "Snapshot end offset: 1234, epoch: 7");
    assert!(printed[2].starts_with("baseOffset: 0 lastOffset: 0 count: 1"));
    assert!(printed[2].contains("partitionLeaderEpoch: 7 isTransactional: false isControl: true"));
    assert!(printed[3]
        .ends_with(" SnapshotHeader {\"version\":0,\"lastContainedLogTimestamp\":1700000000000}"));
    assert!(
        printed[4].contains("baseOffset: 1 lastOffset: 1")
            && printed[4].contains("isControl: false")
    );
    assert!(
        printed[6].contains("baseOffset: 2 lastOffset: 2")
            && printed[6].contains("isControl: true")
    );
    assert!(printed[7].ends_with(" SnapshotFooter {\"version\":0}"));
    assert_eq!(printed.len(), 8, "{out}");
    // Inside the metadata log's directory it is dumped too, not skipped as unknown.
    let listed = dump_ok(&[s(&dir)]);
    assert!(
        listed.contains("Snapshot end offset: 1234, epoch: 7"),
        "{listed}"
    );
}
