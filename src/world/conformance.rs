//! The behaviour every `DiskBackend` must share, checked through the trait alone (as openraft's
//! `testing/log/suite.rs` checks every log store): the simulated disk is only a faithful model
//! if the real file system passes the same suite. Crash, tear and corruption are the simulated
//! disk's own and are tested in `samsa-sim`; latency differs by design and is not compared.

use std::io;

use super::disk::DiskBackend;

/// Runs the suite against an empty backend; panics, naming the broken rule, on any difference.
pub fn run_conformance(backend: &dyn DiskBackend) {
    assert!(backend.list("").is_empty(), "the suite needs an empty disk");
    create_exists_len(backend);
    append_returns_positions(backend);
    read_at_is_short_at_eof(backend);
    write_at_overwrites_and_zero_fills(backend);
    truncate_shrinks_and_extends(backend);
    fsync_keeps_content(backend);
    remove_forgets(backend);
    rename_replaces_atomically(backend);
    list_filters_by_prefix_sorted(backend);
    missing_files_are_not_found_by_name(backend);
    paths_stay_relative(backend);
    for path in backend.list("") {
        backend.remove(&path).expect("cleanup");
    }
    assert!(backend.list("").is_empty(), "cleanup");
}

fn read_all(backend: &dyn DiskBackend, path: &str) -> Vec<u8> {
    let len = backend.len(path).expect("len");
    let data = backend.read_at(path, 0, len as usize).expect("read_at");
    assert_eq!(data.len() as u64, len, "{path}: read_all reads len bytes");
    data
}

fn create_exists_len(backend: &dyn DiskBackend) {
    let path = "c-0/00000000000000000000.log";
    assert!(!backend.exists(path), "exists before create");
    backend.create(path).expect("create in a new directory");
    assert!(backend.exists(path), "exists after create");
    assert_eq!(backend.len(path).expect("len"), 0, "a new file is empty");
    backend.append(path, b"kept").expect("append");
    backend.create(path).expect("create of an existing file");
    assert_eq!(
        read_all(backend, path),
        b"kept",
        "create keeps an existing file's content"
    );
}

fn append_returns_positions(backend: &dyn DiskBackend) {
    let path = "a-0/00000000000000000000.log";
    backend.create(path).expect("create");
    assert_eq!(backend.append(path, b"hello").expect("append"), 0);
    assert_eq!(backend.append(path, b" ").expect("append"), 5);
    assert_eq!(backend.append(path, b"world").expect("append"), 6);
    assert_eq!(backend.append(path, b"").expect("empty append"), 11);
    assert_eq!(backend.len(path).expect("len"), 11);
    assert_eq!(read_all(backend, path), b"hello world");
}

fn read_at_is_short_at_eof(backend: &dyn DiskBackend) {
    let path = "r-0/file";
    backend.create(path).expect("create");
    backend.append(path, b"0123456789").expect("append");
    let read = |offset, len| backend.read_at(path, offset, len).expect("read_at");
    assert_eq!(read(2, 3), b"234", "a read inside the file");
    assert_eq!(read(7, 10), b"789", "a read across the end is short");
    assert_eq!(read(10, 4), b"", "a read at the end is empty");
    assert_eq!(read(50, 4), b"", "a read past the end is empty");
    assert_eq!(read(0, 0), b"", "a read of nothing");
}

fn write_at_overwrites_and_zero_fills(backend: &dyn DiskBackend) {
    let path = "w-0/file";
    backend.create(path).expect("create");
    backend.append(path, b"abcdef").expect("append");
    backend.write_at(path, 2, b"XY").expect("overwrite");
    assert_eq!(
        read_all(backend, path),
        b"abXYef",
        "an overwrite keeps the length"
    );
    backend
        .write_at(path, 5, b"123")
        .expect("overwrite across the end");
    assert_eq!(read_all(backend, path), b"abXYe123");
    backend
        .write_at(path, 10, b"Z")
        .expect("write past the end");
    assert_eq!(
        read_all(backend, path),
        b"abXYe123\0\0Z",
        "the gap reads as zeros"
    );
    backend.write_at(path, 40, b"").expect("empty write");
    assert_eq!(
        backend.len(path).expect("len"),
        11,
        "an empty write does not extend"
    );
}

fn truncate_shrinks_and_extends(backend: &dyn DiskBackend) {
    let path = "t-0/file";
    backend.create(path).expect("create");
    backend.append(path, b"abcdef").expect("append");
    backend.truncate(path, 3).expect("shrink");
    assert_eq!(read_all(backend, path), b"abc");
    assert_eq!(
        backend.append(path, b"d").expect("append"),
        3,
        "appends after the cut"
    );
    backend.truncate(path, 6).expect("extend");
    assert_eq!(
        read_all(backend, path),
        b"abcd\0\0",
        "an extension reads as zeros"
    );
    backend.truncate(path, 0).expect("empty");
    assert_eq!(backend.len(path).expect("len"), 0);
}

fn fsync_keeps_content(backend: &dyn DiskBackend) {
    let path = "f-0/file";
    backend.create(path).expect("create");
    backend.fsync(path).expect("fsync of an empty file");
    backend.append(path, b"durable").expect("append");
    backend.fsync(path).expect("fsync");
    assert_eq!(read_all(backend, path), b"durable");
}

fn remove_forgets(backend: &dyn DiskBackend) {
    let path = "d-0/file";
    backend.create(path).expect("create");
    backend.append(path, b"x").expect("append");
    backend.remove(path).expect("remove");
    assert!(!backend.exists(path), "gone after remove");
    assert!(backend.list("d-0/").is_empty(), "not listed after remove");
    backend.create(path).expect("create again");
    assert_eq!(
        backend.len(path).expect("len"),
        0,
        "a new file, not the old one"
    );
}

fn rename_replaces_atomically(backend: &dyn DiskBackend) {
    let (tmp, target) = (
        "n-0/leader-epoch-checkpoint.tmp",
        "n-0/leader-epoch-checkpoint",
    );
    backend.create(target).expect("create");
    backend.append(target, b"0\n1\n0 0\n").expect("append");
    backend.create(tmp).expect("create");
    backend.append(tmp, b"0\n2\n0 0\n3 17\n").expect("append");
    backend.fsync(tmp).expect("fsync");
    backend
        .rename(tmp, target)
        .expect("rename over an existing file");
    assert!(!backend.exists(tmp), "the source is gone");
    assert_eq!(
        read_all(backend, target),
        b"0\n2\n0 0\n3 17\n",
        "the target is replaced"
    );
    backend
        .rename(target, "n-1/moved")
        .expect("rename into a new directory");
    assert_eq!(read_all(backend, "n-1/moved"), b"0\n2\n0 0\n3 17\n");
    assert!(!backend.exists(target));
    backend
        .rename("n-1/moved", "n-1/moved")
        .expect("rename onto itself");
    assert!(
        backend.exists("n-1/moved"),
        "renaming onto itself keeps the file"
    );
}

fn list_filters_by_prefix_sorted(backend: &dyn DiskBackend) {
    for path in [
        "l-1/b.log",
        "l-0/b.index",
        "l-1/a.log",
        "l-0/a.log",
        "l-0/sub/z",
        "l-00",
    ] {
        backend.create(path).expect("create");
    }
    assert_eq!(
        backend.list("l-"),
        [
            "l-0/a.log",
            "l-0/b.index",
            "l-0/sub/z",
            "l-00",
            "l-1/a.log",
            "l-1/b.log"
        ],
        "every file below, sorted, directories implicit"
    );
    assert_eq!(
        backend.list("l-0/"),
        ["l-0/a.log", "l-0/b.index", "l-0/sub/z"]
    );
    assert_eq!(
        backend.list("l-0/a"),
        ["l-0/a.log"],
        "a prefix need not be a directory"
    );
    assert!(backend.list("l-2").is_empty());
    let all = backend.list("");
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "list(\"\") is sorted");
}

fn missing_files_are_not_found_by_name(backend: &dyn DiskBackend) {
    let path = "m-0/00000000000000000042.log";
    let check = |what: &str, e: io::Error| {
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{what}: {e}");
        assert!(
            e.to_string().contains(path),
            "{what}: the error names the path: {e}"
        );
    };
    assert!(!backend.exists(path));
    check("len", backend.len(path).unwrap_err());
    check("read_at", backend.read_at(path, 0, 1).unwrap_err());
    check("write_at", backend.write_at(path, 0, b"x").unwrap_err());
    check("append", backend.append(path, b"x").unwrap_err());
    check("truncate", backend.truncate(path, 0).unwrap_err());
    check("fsync", backend.fsync(path).unwrap_err());
    check("remove", backend.remove(path).unwrap_err());
    check("rename", backend.rename(path, "m-0/other").unwrap_err());
    assert!(!backend.exists(path), "no error created the file");
    assert!(
        !backend.exists("m-0/other"),
        "a failed rename created nothing"
    );
}

fn paths_stay_relative(backend: &dyn DiskBackend) {
    for bad in [
        "",
        "/etc/passwd",
        "../escape",
        "p-0/../../escape",
        "p-0//x",
        "p-0/./x",
    ] {
        let e = backend.create(bad).unwrap_err();
        assert_eq!(
            e.kind(),
            io::ErrorKind::InvalidInput,
            "create({bad:?}): {e}"
        );
        assert!(!backend.exists(bad), "{bad:?}");
    }
    backend.create("p-0/x").expect("create");
    let e = backend.rename("p-0/x", "../escape").unwrap_err();
    assert_eq!(
        e.kind(),
        io::ErrorKind::InvalidInput,
        "rename to {:?}: {e}",
        "../escape"
    );
    assert!(backend.exists("p-0/x"), "a refused rename keeps the file");
}
