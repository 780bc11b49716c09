//! Helpers shared by the integration tests that run whole scenarios.
#![allow(dead_code)] // each test file uses its own subset

use samsa::runner::RunOutput;
use samsa::scenario::{parse_file, Scenario};
use samsa_sim::history::TraceEvent;

/// A shipped scenario, `scenarios/<name>.toml`.
pub fn scenario(name: &str) -> Scenario {
    let path = format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    parse_file(std::path::Path::new(&path)).unwrap_or_else(|e| panic!("{e}"))
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
