//! A run's folder (`CONTRACT.md`, "A run's folder"): `summary.json`, `history.jsonl`,
//! `trace.jsonl`, `report.md`, `report.html`, and with `--keep-disks` every broker's final disk.

use std::collections::BTreeMap;
use std::path::Path;

use samsa_sim::check::Violation;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub seed: u64,
    pub trace_digest: String,
    pub outcome: String,
    pub sim_ms: u64,
    pub wall_ms: u64,
    pub events: usize,
    pub messages: u64,
    pub violations: Vec<Violation>,
    pub expected: Vec<String>,
    pub stats: BTreeMap<String, u64>,
}

/// Whether what was found matches the expectation: every expected check found, and nothing
/// found outside `expected` and `allow`. Returns the reasons it does not.
pub fn judge(found: &[Violation], expected: &[String], allowed: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for name in expected {
        if !found.iter().any(|v| &v.check == name) {
            problems.push(format!("expected `{name}` was not found"));
        }
    }
    let mut unexpected: BTreeMap<&str, usize> = BTreeMap::new();
    for v in found {
        if !expected.contains(&v.check) && !allowed.contains(&v.check) {
            *unexpected.entry(v.check.as_str()).or_default() += 1;
        }
    }
    for (name, count) in unexpected {
        problems.push(format!("unexpected `{name}` found {count} time(s)"));
    }
    problems
}

/// The two renderings of a run's story, for a person.
pub struct Reports {
    pub markdown: String,
    pub html: String,
}

pub fn write_folder(
    dir: &Path,
    summary: &Summary,
    history_jsonl: &str,
    trace_jsonl: &str,
    reports: &Reports,
    disks: Option<&BTreeMap<String, BTreeMap<String, Vec<u8>>>>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(summary).expect("the summary serializes");
    std::fs::write(dir.join("summary.json"), json + "\n")?;
    std::fs::write(dir.join("history.jsonl"), history_jsonl)?;
    std::fs::write(dir.join("trace.jsonl"), trace_jsonl)?;
    std::fs::write(dir.join("report.md"), &reports.markdown)?;
    std::fs::write(dir.join("report.html"), &reports.html)?;
    let disks_dir = dir.join("disks");
    if disks_dir.exists() {
        std::fs::remove_dir_all(&disks_dir)?;
    }
    if let Some(disks) = disks {
        for (node, files) in disks {
            for (path, bytes) in files {
                let target = disks_dir.join(node).join(path);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(target, bytes)?;
            }
        }
    }
    Ok(())
}
