//! `samsa explain`: the narrative of a run as it goes, short enough to follow, and the same run
//! (the same trace digest) as `samsa run`.

mod common;
use common::samsa;

const KIP_101: &str = "scenarios/catalogue/kip-101-data-loss.toml";

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn digest(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix("trace-digest: "))
}

#[test]
fn kip_101_is_told_in_under_sixty_lines_with_its_key_sentences() {
    let output = samsa(&["explain", KIP_101]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = stdout(&output);
    let lines = text.lines().count();
    assert!(lines < 60, "{lines} lines:\n{text}");
    for sentence in [
        "the cluster is up",
        "the network drops what broker-1 sends to broker-3",
        "broker-1 stops cleanly (controlled shutdown)",
        "the controller made broker-2 leader of orders-0 in epoch 1 (ISR [2,3])",
        "broker-2 was killed",
        "broker-3 truncated orders-0 from offset 27 to 2: before KIP-101 a follower truncates to \
         its own high watermark when its leader changes, and its high watermark was 2",
        "the controller made broker-3 leader of orders-0 in epoch 2 (ISR [3])",
        "… meanwhile: orders-0 log end 27, high watermark 27; p1: 27 acknowledged",
        "lost-write on orders-0: 25 found",
        "p1 wrote p1-2 to orders-0; it was acknowledged at offset 2, and lost.",
        "CAUSE: broker-3 truncated its log of orders-0 from 27 to 2, dropping offset 2",
        "broker-3 does NOT hold the record",
        "outcome: pass",
    ] {
        assert!(text.contains(sentence), "no {sentence:?} in:\n{text}");
    }
    // Told in time order: the truncation before the election that it made fatal.
    let at = |s: &str| text.find(s).unwrap();
    assert!(at("broker-3 truncated orders-0") < at("made broker-3 leader"));
}

#[test]
fn explaining_a_run_does_not_change_it() {
    let explained = stdout(&samsa(&["explain", KIP_101, "--seed", "3"]));
    let run = stdout(&samsa(&[
        "run",
        KIP_101,
        "--seed",
        "3",
        "--quiet",
        "--no-folder",
    ]));
    assert!(digest(&explained).is_some(), "{explained}");
    assert_eq!(digest(&explained), digest(&run));
}

#[test]
fn bad_flags_and_files_give_one_line_and_exit_2() {
    for args in [
        vec!["explain", KIP_101, "--seed", "x"],
        vec!["explain", KIP_101, "--bogus"],
        vec!["explain"],
        vec!["explain", "scenarios/no-such-file.toml"],
    ] {
        let output = samsa(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

/// The classic anomalies moved to `scenarios/catalogue/`; their old paths still run them.
#[test]
fn an_anomaly_named_by_its_old_path_is_found_in_the_catalogue() {
    let output = samsa(&["explain", "scenarios/kip-101-data-loss.toml"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is in the catalogue"), "{stderr}");
    assert_eq!(
        digest(&stdout(&output)),
        digest(&stdout(&samsa(&["explain", KIP_101])))
    );
    // A file that is nowhere is still bad input.
    assert_eq!(
        samsa(&["run", "scenarios/no-such-scenario.toml"])
            .status
            .code(),
        Some(2)
    );
}
