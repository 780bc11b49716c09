//! `samsa sweep`, through the binary: each seed's digest does not depend on the sweep (alone,
//! or among others under `--jobs 1` or `--jobs 2`), a failing seed is listed with the command
//! that reproduces it, and bad flags are one line and exit 2.

use std::path::{Path, PathBuf};

mod common;
use common::samsa;

fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// (seed, outcome, digest) of a sweep's `sweep.json`.
fn results(dir: &Path) -> Vec<(u64, String, String)> {
    let text = std::fs::read_to_string(dir.join("sweep.json")).expect("sweep.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    json["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["seed"].as_u64().expect("seed"),
                r["outcome"].as_str().expect("outcome").to_string(),
                r["trace_digest"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_seeds_digest_is_the_same_alone_and_in_a_sweep_under_any_jobs() {
    let file = "scenarios/quickstart-kill.toml";
    let mut sweeps = Vec::new();
    for jobs in ["1", "2"] {
        let dir = out_dir(&format!("sweep-jobs-{jobs}"));
        let out = samsa(&[
            "sweep",
            file,
            "--seeds",
            "1..4",
            "--jobs",
            jobs,
            "--out",
            dir.to_str().expect("utf-8"),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("passed: 4, failed: 0"), "{stdout}");
        sweeps.push(results(&dir));
    }
    assert_eq!(sweeps[0], sweeps[1]);
    assert_eq!(sweeps[0].len(), 4);
    for (seed, outcome, digest) in &sweeps[0] {
        assert_eq!(outcome, "pass");
        let dir = out_dir(&format!("alone-{seed}"));
        let alone = samsa(&[
            "run",
            file,
            "--seed",
            &seed.to_string(),
            "--quiet",
            "--out",
            dir.to_str().expect("utf-8"),
        ]);
        let stdout = String::from_utf8_lossy(&alone.stdout);
        assert!(
            stdout.contains(&format!("trace-digest: {digest}")),
            "seed {seed}: {stdout}"
        );
    }
    // A shard holds its part of the range, with the same digests.
    let dir = out_dir("sweep-shard");
    let out = samsa(&[
        "sweep",
        file,
        "--seeds",
        "1..4",
        "--shard",
        "2/2",
        "--out",
        dir.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success());
    let shard: Vec<_> = sweeps[0]
        .iter()
        .filter(|(seed, _, _)| seed % 2 == 0)
        .cloned()
        .collect();
    assert_eq!(results(&dir), shard);
}

#[test]
fn a_failing_seed_is_listed_with_its_reproduce_command_and_the_sweep_exits_1() {
    // quickstart-kill loses nothing, so expecting a lost write fails every seed.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart-kill.toml"),
    )
    .expect("scenario")
    .replace("violations = []", "violations = [\"lost-write\"]");
    let dir = out_dir("sweep-failing");
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("expects-a-loss.toml");
    std::fs::write(&file, text).expect("write");
    let out = samsa(&[
        "sweep",
        file.to_str().expect("utf-8"),
        "--seeds",
        "1..2",
        "--out",
        dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("passed: 0, failed: 2"), "{stdout}");
    assert!(
        stdout.contains("reproduce: cargo run --release -- run") && stdout.contains("--seed 2"),
        "{stdout}"
    );
    assert!(results(&dir)
        .iter()
        .all(|(_, outcome, _)| outcome == "fail"));
}

#[test]
fn bad_sweep_flags_are_one_line_and_exit_2() {
    for args in [
        vec!["--seeds", "5..2"],
        vec!["--seeds", "1-5"],
        vec!["--seeds", "1..3", "--shard", "0/2"],
        vec!["--seeds", "1..3", "--shard", "3/2"],
    ] {
        let mut all = vec!["sweep", "scenarios/quickstart-kill.toml"];
        all.extend(args.iter());
        let out = samsa(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("samsa sweep: --"), "{stderr}");
    }
    let out = samsa(&["sweep", "scenarios/no-such-file.toml", "--seeds", "1..2"]);
    assert_eq!(out.status.code(), Some(2));
}
