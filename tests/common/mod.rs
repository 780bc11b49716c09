//! Helpers shared by the integration tests that run whole scenarios.
#![allow(dead_code)] // each test file uses its own subset

use samsa::runner::RunOutput;
use samsa::scenario::{parse_file, Scenario};
use samsa_sim::history::TraceEvent;

/// A shipped scenario, `scenarios/<name>.toml` or, for the anomalies of the catalogue,
/// `scenarios/catalogue/<name>.toml`.
pub fn scenario(name: &str) -> Scenario {
    let root = format!("{}/scenarios", env!("CARGO_MANIFEST_DIR"));
    let path = [
        format!("{root}/{name}.toml"),
        format!("{root}/catalogue/{name}.toml"),
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .unwrap_or_else(|| panic!("no scenario {name} in {root} nor its catalogue"));
    parse_file(std::path::Path::new(&path)).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the `samsa` binary with `args` from the repository's root.
pub fn samsa(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_samsa"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("samsa runs")
}

/// How many seeds a sweep runs: the environment variable `var`, else `default`.
pub fn seeds(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The run's trace events of one kind, in order.
pub fn events<'a>(
    output: &'a RunOutput,
    kind: &'a str,
) -> impl Iterator<Item = &'a TraceEvent> + 'a {
    output.journal.trace.iter().filter(move |e| e.kind == kind)
}
