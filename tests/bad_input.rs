//! Bad input never panics: each kind of bad scenario (and a bad flag) gives exit code 2 and one
//! line naming the file, the line and what is wrong.

use std::path::PathBuf;
use std::process::Command;

const VALID: &str = r#"name = "bad-input-base"
summary = "a valid scenario that each case breaks in one place"
duration = "5s"

[cluster]
brokers = 1

[[topic]]
name = "orders"
partitions = 1
replication-factor = 1

[[client]]
type = "producer"
id = "p1"
topic = "orders"
rate = "10/s"

[[fault]]
at = "1s"
action = "crash"
target = "broker-1"
"#;

fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("samsa-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `samsa run FILE`, expecting exit 2 and one line naming the file and `line` (when given).
fn expect_bad(name: &str, path: &std::path::Path, line: Option<usize>, phrase: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_samsa"))
        .args(["run", path.to_str().unwrap(), "--out"])
        .arg(std::env::temp_dir().join("samsa-bad-input-out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{name}: exit code, stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{name}: panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{name}: expected one line, got: {stderr}");
    let message = lines[0];
    assert!(
        message.contains(path.to_str().unwrap()),
        "{name}: the file is not named: {message}"
    );
    if let Some(line) = line {
        assert!(
            message.contains(&format!(":{line}:")),
            "{name}: line {line} is not named: {message}"
        );
    }
    assert!(
        message.to_lowercase().contains(&phrase.to_lowercase()),
        "{name}: {phrase:?} not in: {message}"
    );
}

fn case(name: &str, from: &str, to: &str, line: Option<usize>, phrase: &str) {
    assert!(VALID.contains(from), "{name}: the base has no {from:?}");
    let path = scratch(name, &VALID.replacen(from, to, 1));
    expect_bad(name, &path, line, phrase);
}

#[test]
fn ten_kinds_of_bad_scenario_each_name_file_and_line() {
    case(
        "unknown-key",
        "duration = \"5s\"",
        "duration = \"5s\"\ncolour = \"blue\"",
        Some(4),
        "colour",
    );
    case(
        "bad-duration",
        "duration = \"5s\"",
        "duration = \"5 parsecs\"",
        Some(3),
        "duration",
    );
    case(
        "unknown-action",
        "action = \"crash\"",
        "action = \"explode\"",
        Some(21),
        "explode",
    );
    case(
        "unknown-target",
        "target = \"broker-1\"",
        "target = \"broker-7\"",
        Some(22),
        "broker-7",
    );
    case(
        "producer-without-topic",
        "topic = \"orders\"\n",
        "",
        Some(13),
        "topic",
    );
    case(
        "negative-rate",
        "rate = \"10/s\"",
        "rate = \"-10/s\"",
        Some(17),
        "rate",
    );
    case(
        "malformed-toml",
        "partitions = 1",
        "partitions = = 1",
        Some(10),
        "",
    );
    case(
        "unparsable-when",
        "at = \"1s\"",
        "when = \"acked(p1) >=< 5\"",
        Some(20),
        "when",
    );
    case(
        "too-many-replicas",
        "replication-factor = 1",
        "replication-factor = 3",
        Some(11),
        "replication",
    );
    case(
        "unknown-kafka-config",
        "brokers = 1",
        "brokers = 1\n[cluster.config]\n\"min.insync.replica\" = 2",
        Some(8),
        "min.insync.replica",
    );
}

#[test]
fn a_missing_file_is_bad_input() {
    let path = std::env::temp_dir().join("samsa-no-such-scenario.toml");
    expect_bad("missing-file", &path, None, "");
}

#[test]
fn a_bad_flag_is_one_line_and_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_samsa"))
        .args(["run", "scenarios/quickstart.toml", "--seed", "minus-one"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--seed"), "{stderr}");
}
