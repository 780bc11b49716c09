//! `report.html` opened in headless Chromium: the KIP-101 data-loss run's page renders one SVG
//! timeline per partition of the run and highlights its violation. Chromium is installed by
//! `.ci/install-chromium` (from Debian's package registry) when it is missing, so a plain
//! `cargo test` works on a fresh machine; the screenshot is left in
//! `target/tmp/report-html/kip-101-data-loss.png` to look at.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium, installed by the project's own script if it is not there yet.
fn chromium() -> &'static str {
    if !Path::new(CHROMIUM).exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/install-chromium");
        let status = Command::new(&script)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            status.success() && Path::new(CHROMIUM).exists(),
            "{} could not install {CHROMIUM} (it needs root or sudo, and apt)",
            script.display()
        );
    }
    CHROMIUM
}

/// Runs headless Chromium on `page` with `args` added, in a profile of its own, and returns its
/// standard output. Every background service that would reach the network is off.
fn headless(page: &Path, profile: &Path, args: &[&str]) -> String {
    let _ = std::fs::remove_dir_all(profile);
    let url = format!("file://{}", page.display());
    let output = Command::new("timeout")
        .arg("120")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(&url)
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The partitions the run's controller decided about, from its trace.
fn partitions_of(trace_jsonl: &str) -> BTreeSet<String> {
    trace_jsonl
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["kind"] == "partition-state")
        .filter_map(|e| e["detail"]["partition"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn the_kip_101_report_renders_a_timeline_per_partition_and_its_violation_in_chromium() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-html");
    let run = dir.join("kip-101-data-loss");
    let out = common::samsa(&[
        "run",
        "scenarios/catalogue/kip-101-data-loss.toml",
        "--seed",
        "1",
        "--quiet",
        "--out",
        run.to_str().expect("a UTF-8 path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let page = run.join("report.html");
    assert!(run.join("report.md").exists() && page.exists());
    let partitions = partitions_of(&std::fs::read_to_string(run.join("trace.jsonl")).unwrap());
    assert!(!partitions.is_empty(), "the run traced its partitions");

    let dom = headless(&page, &dir.join("profile-dom"), &["--dump-dom"]);
    assert!(
        dom.contains("</html>"),
        "Chromium loaded the page: {dom:.200}"
    );
    assert_eq!(
        dom.matches(r#"<svg class="timeline""#).count(),
        partitions.len(),
        "one timeline per partition of {partitions:?}"
    );
    for p in &partitions {
        assert!(dom.contains(&format!(r#"data-partition="{p}""#)), "{p}");
    }
    assert!(dom.contains(r#"<article class="violation" data-check="lost-write""#));
    assert!(
        dom.contains(r#"<g class="violation-mark">"#),
        "the loss is marked on its timeline"
    );
    assert!(
        dom.contains(r#"<circle class="lost""#),
        "the lost writes are drawn"
    );

    let png = dir.join("kip-101-data-loss.png");
    let _ = std::fs::remove_file(&png);
    headless(
        &page,
        &dir.join("profile-png"),
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1400,2000",
        ],
    );
    let bytes = std::fs::read(&png).expect("Chromium wrote the screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "a PNG with something drawn"
    );
}
