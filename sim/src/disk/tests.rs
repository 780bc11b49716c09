//! Unit tests of the disk model; `model` checks it against a model of the rules.

use super::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

mod model;

const WRITEBACK_MS: u64 = 1_000;

fn disk() -> SimDisk {
    SimDisk::new(DiskConfig {
        latency_us: (100, 200),
        writeback_ms: WRITEBACK_MS,
        sector_bytes: 512,
    })
}

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// `len` bytes that differ from their neighbours and from other seeds' bytes.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn read(d: &SimDisk, path: &str) -> Vec<u8> {
    d.read_at(path, 0, usize::MAX).unwrap()
}

fn with_file(path: &str) -> SimDisk {
    let mut d = disk();
    d.create(path).unwrap();
    d
}

#[test]
fn fsync_then_crash_keeps() {
    let mut d = with_file("t-0/a.log");
    d.append("t-0/a.log", b"hello", 0).unwrap();
    d.fsync("t-0/a.log").unwrap();
    let report = d.crash(10, &mut rng(1));
    assert_eq!(read(&d, "t-0/a.log"), b"hello");
    assert_eq!(report, CrashReport::default());
}

#[test]
fn no_fsync_then_crash_loses() {
    let mut d = with_file("t-0/a.log");
    d.append("t-0/a.log", b"hello", 0).unwrap();
    d.fsync("t-0/a.log").unwrap();
    assert_eq!(d.append("t-0/a.log", b" world", 5).unwrap(), 5);
    assert_eq!(
        read(&d, "t-0/a.log"),
        b"hello world",
        "the page cache serves reads"
    );
    let report = d.crash(10, &mut rng(1));
    assert_eq!(read(&d, "t-0/a.log"), b"hello");
    let loss = FileLoss {
        path: "t-0/a.log".into(),
        lost_ops: 1,
        lost_bytes: 6,
        len_before: 11,
        len_after: 5,
        torn: None,
    };
    assert_eq!(report.files, vec![loss]);
    assert_eq!(report.lost_bytes(), 6);
}

#[test]
fn written_back_after_writeback_ms_survives_a_crash() {
    let mut d = with_file("f");
    d.append("f", &bytes(100, 1), 0).unwrap();
    d.append("f", &bytes(100, 2), 500).unwrap();
    assert_eq!(d.durable("f", WRITEBACK_MS - 1).unwrap(), b"");
    assert_eq!(d.durable("f", WRITEBACK_MS).unwrap(), bytes(100, 1));
    assert_eq!(d.dirty_bytes(WRITEBACK_MS - 1), 200);
    assert_eq!(d.dirty_bytes(WRITEBACK_MS), 100);
    let report = d.crash(WRITEBACK_MS, &mut rng(1));
    assert_eq!(read(&d, "f"), bytes(100, 1));
    assert_eq!(report.lost_bytes(), 100);
    assert_eq!(d.dirty_bytes(WRITEBACK_MS), 0);
}

#[test]
fn write_back_tick_promotes_idle_files() {
    let mut d = with_file("f");
    d.append("f", b"abc", 0).unwrap();
    d.write_back(WRITEBACK_MS);
    assert!(
        d.files["f"].pending.is_empty(),
        "promoted, so memory stays bounded"
    );
    assert!(d.crash(0, &mut rng(1)).files.is_empty());
    assert_eq!(read(&d, "f"), b"abc");
}

#[test]
fn torn_write_keeps_only_a_sector_aligned_prefix() {
    let head = bytes(100, 1);
    let write = bytes(2_000, 7); // [100, 2100): boundaries 512, 1024, 1536, 2048 inside
    let (mut untorn, mut kept_seen) = (0, std::collections::BTreeSet::new());
    for seed in 0..64 {
        let mut d = with_file("f");
        d.append("f", &head, 0).unwrap();
        d.fsync("f").unwrap();
        d.append("f", &write, 0).unwrap();
        let report = d.crash(0, &mut rng(seed));
        let after = read(&d, "f");
        assert_eq!(after[..100], head[..]);
        let loss = &report.files[0];
        match &loss.torn {
            None => {
                untorn += 1;
                assert_eq!(after.len(), 100);
                assert_eq!(loss.lost_bytes, 2_000);
            }
            Some(torn) => {
                assert_eq!((torn.offset, torn.len), (100, 2_000));
                assert_eq!((torn.offset + torn.kept_bytes) % 512, 0);
                assert!(0 < torn.kept_bytes && torn.kept_bytes < 2_000);
                assert_eq!(after[100..], write[..torn.kept_bytes as usize]);
                assert_eq!(loss.lost_bytes, 2_000 - torn.kept_bytes);
                kept_seen.insert(torn.kept_bytes);
            }
        }
    }
    assert!(untorn > 0, "a lost write tears only half the time");
    assert_eq!(
        kept_seen.into_iter().collect::<Vec<_>>(),
        vec![412, 924, 1436, 1948]
    );
}

#[test]
fn only_the_oldest_lost_write_tears() {
    for seed in 0..32 {
        let mut d = with_file("f");
        d.append("f", &bytes(1_000, 1), 0).unwrap();
        d.append("f", &bytes(1_000, 2), 0).unwrap();
        let report = d.crash(0, &mut rng(seed));
        let after = read(&d, "f");
        assert!(after.is_empty() || after.len() == 512, "{}", after.len());
        assert_eq!(after[..], bytes(1_000, 1)[..after.len()]);
        assert_eq!(report.files[0].lost_ops, 2);
    }
}

#[test]
fn a_write_within_one_sector_never_tears() {
    for seed in 0..32 {
        let mut d = with_file("f");
        d.append("f", &bytes(512, 1), 0).unwrap();
        let report = d.crash(0, &mut rng(seed));
        assert_eq!(report.files[0].torn, None);
        assert_eq!(read(&d, "f"), b"");
    }
}

#[test]
fn corrupt_flips_bits_of_one_byte_visible_and_durable() {
    for seed in 0..16 {
        let mut d = with_file("f");
        let original = bytes(3_000, 5);
        d.append("f", &original, 0).unwrap();
        d.fsync("f").unwrap();
        let c = d.corrupt("f", &mut rng(seed)).unwrap();
        assert_ne!(c.xor_mask, 0);
        let diff = |now: &[u8]| -> Vec<usize> {
            (0..original.len())
                .filter(|&i| now[i] != original[i])
                .collect()
        };
        let now = read(&d, "f");
        assert_eq!(diff(&now), vec![c.offset as usize]);
        assert_eq!(
            now[c.offset as usize] ^ original[c.offset as usize],
            c.xor_mask
        );
        d.crash(0, &mut rng(seed));
        assert_eq!(
            read(&d, "f"),
            now,
            "the medium is corrupt, not only the cache"
        );
    }
}

#[test]
fn corrupt_at_reaches_pending_writes() {
    let mut d = with_file("f");
    d.append("f", &bytes(600, 1), 0).unwrap();
    d.fsync("f").unwrap();
    d.truncate("f", 100, 0).unwrap();
    d.write_at("f", 300, &bytes(200, 2), 0).unwrap(); // zeros in [100, 300)
    d.corrupt_at("f", 50, 0x01).unwrap(); // durable byte
    d.corrupt_at("f", 150, 0x80).unwrap(); // a zero of the gap
    d.corrupt_at("f", 400, 0xff).unwrap(); // pending data
    d.assert_consistent();
    let expected = read(&d, "f");
    assert_eq!(expected[150], 0x80);
    assert_eq!(expected[400], bytes(200, 2)[100] ^ 0xff);
    d.fsync("f").unwrap();
    d.crash(0, &mut rng(1));
    assert_eq!(read(&d, "f"), expected);
}

#[test]
fn corrupt_rejects_what_it_cannot_corrupt() {
    let mut d = with_file("f");
    let kind = |r: io::Result<Corruption>| r.unwrap_err().kind();
    assert_eq!(
        kind(d.corrupt("f", &mut rng(1))),
        io::ErrorKind::InvalidInput
    );
    d.append("f", b"x", 0).unwrap();
    assert_eq!(kind(d.corrupt_at("f", 1, 1)), io::ErrorKind::InvalidInput);
    assert_eq!(kind(d.corrupt_at("f", 0, 0)), io::ErrorKind::InvalidInput);
    assert_eq!(kind(d.corrupt("g", &mut rng(1))), io::ErrorKind::NotFound);
}

#[test]
fn a_full_disk_rejects_writes_but_serves_reads_truncates_and_removes() {
    let mut d = with_file("a");
    d.create("b").unwrap();
    d.append("a", b"abc", 0).unwrap();
    d.set_full(true);
    let full = |r: io::Result<()>| {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert!(e.to_string().contains("No space left on device"), "{e}");
    };
    full(d.append("a", b"d", 0).map(|_| ()));
    full(d.write_at("a", 0, b"z", 0));
    full(d.create("c"));
    full(d.truncate("a", 10, 0));
    d.create("a").unwrap(); // exists: nothing to allocate
    assert_eq!(read(&d, "a"), b"abc");
    d.truncate("a", 1, 0).unwrap();
    d.remove("b").unwrap();
    d.rename("a", "b").unwrap();
    d.set_full(false);
    assert_eq!(d.append("b", b"d", 0).unwrap(), 1);
    assert_eq!(read(&d, "b"), b"ad");
}

#[test]
fn rename_keeps_pending_writes_and_replaces_at_once() {
    for fsync_before_rename in [false, true] {
        let mut d = with_file("p/x");
        d.append("p/x", b"old", 0).unwrap();
        d.fsync("p/x").unwrap();
        d.create("p/x.tmp").unwrap();
        d.append("p/x.tmp", b"new", 0).unwrap();
        if fsync_before_rename {
            d.fsync("p/x.tmp").unwrap();
        }
        d.rename("p/x.tmp", "p/x").unwrap();
        assert_eq!(read(&d, "p/x"), b"new");
        assert!(!d.exists("p/x.tmp"));
        d.crash(0, &mut rng(1));
        assert_eq!(d.list("p/"), vec!["p/x"]);
        let want: &[u8] = if fsync_before_rename { b"new" } else { b"" };
        assert_eq!(
            read(&d, "p/x"),
            want,
            "fsync before rename: {fsync_before_rename}"
        );
    }
}

#[test]
fn metadata_is_durable_at_once() {
    let mut d = with_file("a");
    d.create("b").unwrap();
    d.fsync("b").unwrap();
    d.remove("b").unwrap();
    d.crash(0, &mut rng(1));
    assert!(d.exists("a"));
    assert!(!d.exists("b"));
    assert_eq!(d.len("a").unwrap(), 0);
}

#[test]
fn write_at_past_the_end_zero_fills_and_reads_are_short_at_eof() {
    let mut d = with_file("f");
    d.write_at("f", 5, b"ab", 0).unwrap();
    assert_eq!(read(&d, "f"), b"\0\0\0\0\0ab");
    d.write_at("f", 6, b"XYZ", 0).unwrap();
    assert_eq!(read(&d, "f"), b"\0\0\0\0\0aXYZ");
    assert_eq!(d.read_at("f", 7, 10).unwrap(), b"YZ");
    assert_eq!(d.read_at("f", 9, 10).unwrap(), b"");
    assert_eq!(d.read_at("f", 100, 10).unwrap(), b"");
    d.write_at("f", 20, b"", 0).unwrap();
    assert_eq!(d.len("f").unwrap(), 9, "an empty write does not extend");
    d.truncate("f", 11, 0).unwrap();
    assert_eq!(read(&d, "f"), b"\0\0\0\0\0aXYZ\0\0");
    d.fsync("f").unwrap();
    d.crash(0, &mut rng(1));
    assert_eq!(read(&d, "f"), b"\0\0\0\0\0aXYZ\0\0");
}

#[test]
fn a_missing_file_is_not_found_by_name() {
    let mut d = disk();
    let p = "orders-0/00000000000000000000.log";
    let errors = [
        d.len(p).unwrap_err(),
        d.read_at(p, 0, 1).unwrap_err(),
        d.write_at(p, 0, b"x", 0).unwrap_err(),
        d.append(p, b"x", 0).unwrap_err(),
        d.truncate(p, 0, 0).unwrap_err(),
        d.fsync(p).unwrap_err(),
        d.remove(p).unwrap_err(),
        d.rename(p, "other").unwrap_err(),
    ];
    for e in errors {
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains(p), "{e}");
    }
    assert!(!d.exists(p));
}

#[test]
fn paths_are_relative_and_not_both_file_and_directory() {
    let mut d = disk();
    for bad in ["", "/abs", "a//b", "../x", "a/./b", "a/", "a\\b"] {
        let e = d.create(bad).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
    }
    d.create("a").unwrap();
    assert_eq!(
        d.create("a/b").unwrap_err().kind(),
        io::ErrorKind::NotADirectory
    );
    d.create("c/d").unwrap();
    assert_eq!(
        d.create("c").unwrap_err().kind(),
        io::ErrorKind::IsADirectory
    );
    assert_eq!(
        d.rename("a", "c").unwrap_err().kind(),
        io::ErrorKind::IsADirectory
    );
    assert_eq!(
        d.rename("a", "../a").unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(d.list(""), vec!["a", "c/d"]);
}

#[test]
fn files_and_list_are_sorted() {
    let mut d = disk();
    for p in ["b/2", "a/1", "b/1", "ab"] {
        d.create(p).unwrap();
    }
    d.append("ab", b"x", 0).unwrap();
    let files: Vec<(&str, &[u8])> = d.files().collect();
    let empty: &[u8] = b"";
    let x: &[u8] = b"x";
    assert_eq!(
        files,
        vec![("a/1", empty), ("ab", x), ("b/1", empty), ("b/2", empty)]
    );
    assert_eq!(d.list("b/"), vec!["b/1", "b/2"]);
    assert_eq!(d.list("a"), vec!["a/1", "ab"]);
    assert!(d.list("c").is_empty());
}

#[test]
fn wipe_forgets_everything() {
    let mut d = with_file("a");
    d.append("a", b"x", 0).unwrap();
    d.fsync("a").unwrap();
    d.wipe();
    assert_eq!(d.files().count(), 0);
    assert!(!d.exists("a"));
}

#[test]
fn latency_prices_device_operations_and_scales_when_slow() {
    let mut d = disk();
    let mut r = rng(9);
    let us = |d: &SimDisk, op, r: &mut ChaCha8Rng| d.latency(op, r).as_micros() as u64;
    let sample = |d: &SimDisk, op, r: &mut ChaCha8Rng| -> (u64, u64) {
        let all: Vec<u64> = (0..500).map(|_| us(d, op, r)).collect();
        (*all.iter().min().unwrap(), *all.iter().max().unwrap())
    };
    assert_eq!(us(&d, DiskOpKind::Read, &mut r), 0);
    let (lo, hi) = sample(&d, DiskOpKind::Write, &mut r);
    assert!(100 <= lo && hi <= 200 && lo < hi, "{lo}..{hi}");
    let (lo, hi) = sample(&d, DiskOpKind::Metadata, &mut r);
    assert!(100 <= lo && hi <= 200, "{lo}..{hi}");
    let (lo, hi) = sample(&d, DiskOpKind::Fsync, &mut r);
    assert!(400 <= lo && hi <= 800 && hi > 600, "{lo}..{hi}");
    d.set_slow(3.0);
    let (lo, hi) = sample(&d, DiskOpKind::Write, &mut r);
    assert!(300 <= lo && hi <= 600 && hi > 500, "{lo}..{hi}");
    assert_eq!(us(&d, DiskOpKind::Read, &mut r), 0);
    let again = |seed| {
        (0..8)
            .map(|_| us(&d, DiskOpKind::Write, &mut rng(seed)))
            .collect::<Vec<_>>()
    };
    assert_eq!(again(4), again(4), "one seed, one stream");
}

#[test]
fn crash_report_serializes() {
    let mut d = with_file("f");
    d.append("f", &bytes(1_500, 3), 0).unwrap();
    let report = (0..)
        .map(|seed| d.clone().crash(0, &mut rng(seed)))
        .find(|r| r.files[0].torn.is_some())
        .unwrap();
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("\"kept_bytes\""), "{json}");
    let back: CrashReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}
