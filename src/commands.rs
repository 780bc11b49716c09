//! The `samsa` commands that run the simulator.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use samsa::output::{judge, write_folder, Reports, Summary};
use samsa::runner;
use samsa::scenario::{parse_file, Scenario};
use samsa_sim::history::OpType;
use samsa_sim::report::{markdown, seconds, ReportInput};
use samsa_sim::report_html::html;

fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(2)
}

/// Reads a scenario; exit code 2 (with its line said) if it is bad.
/// The scenario file to read: `file`, or, when `scenarios/NAME.toml` does not exist but the
/// catalogue holds `scenarios/catalogue/NAME.toml` (the classic anomalies moved there), that one,
/// said on stderr. Older commands (`samsa explain scenarios/kip-101-data-loss.toml`) keep working.
pub fn scenario_path(file: PathBuf) -> PathBuf {
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
        return file;
    };
    let moved = dir.join("catalogue").join(name);
    if file.exists() || !dir.ends_with("scenarios") || !moved.exists() {
        return file;
    }
    eprintln!(
        "samsa: {} is in the catalogue: running {}",
        file.display(),
        moved.display()
    );
    moved
}

pub fn load(file: &Path) -> Result<Scenario, ExitCode> {
    parse_file(file).map_err(bad_input)
}

/// `samsa run`'s switches.
pub struct RunOptions {
    pub check_determinism: bool,
    pub keep_disks: bool,
    pub quiet: bool,
    /// Write no run folder (each seed of a sweep).
    pub no_folder: bool,
}

pub fn run(file: &Path, seed: Option<u64>, out: Option<PathBuf>, options: RunOptions) -> ExitCode {
    let RunOptions {
        check_determinism,
        keep_disks,
        quiet,
        no_folder,
    } = options;
    let scenario = match load(file) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let seed = seed.unwrap_or(scenario.seed);
    let reproduce = format!(
        "cargo run --release -- run {} --seed {seed}",
        file.display()
    );
    let started = Instant::now();
    let output = runner::run(&scenario, seed);
    let wall_ms = started.elapsed().as_millis() as u64;
    let digest = output.journal.digest();
    let mut problems = judge(
        &output.violations,
        &scenario.expect.violations,
        &scenario.expect.allow,
    );

    if check_determinism {
        match runner::check_determinism(&scenario, seed) {
            Ok(digests) => {
                if digests.iter().any(|&d| d != digest) {
                    let list: Vec<String> = digests.iter().map(|d| format!("{d:016x}")).collect();
                    problems.push(format!(
                        "nondeterminism: first run {digest:016x}, checked runs {}",
                        list.join(", ")
                    ));
                }
            }
            Err(why) => {
                // A panic inside the cluster that the first run also hit is the same found bug,
                // reproduced (the first run reports it as a `panic` violation); madsim's own
                // check panics with "non-determinism detected".
                let same_panic = output
                    .violations
                    .iter()
                    .any(|v| v.check == "panic" && v.detail.contains(why.as_str()));
                if why.contains("non-determinism") || !same_panic {
                    problems.push(format!("nondeterminism found by madsim: {why}"));
                }
            }
        }
    }

    let outcome = if problems.is_empty() { "pass" } else { "fail" };
    let history = &output.journal.history;
    let count = |f: &str, kind: OpType| {
        history
            .iter()
            .filter(|op| op.f == f && op.kind == kind)
            .count() as u64
    };
    let stats = [
        ("sends_ok", count("send", OpType::Ok)),
        ("sends_failed", count("send", OpType::Fail)),
        ("sends_unknown", count("send", OpType::Info)),
        ("polls_ok", count("poll", OpType::Ok)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let summary = Summary {
        scenario: scenario.name.clone(),
        seed,
        trace_digest: format!("{digest:016x}"),
        outcome: outcome.to_string(),
        sim_ms: output.sim_ms,
        wall_ms,
        events: output.journal.trace.len() + history.len(),
        messages: output.messages,
        violations: output.violations.clone(),
        expected: scenario.expect.violations.clone(),
        stats,
    };
    let dir = out.unwrap_or_else(|| {
        PathBuf::from("reports")
            .join(&scenario.name)
            .join(format!("seed-{seed}"))
    });
    if !no_folder {
        let input = ReportInput {
            scenario: &scenario.name,
            summary: &scenario.summary,
            seed,
            outcome,
            digest,
            sim_ms: output.sim_ms,
            reproduce: &reproduce,
            expected: &scenario.expect.violations,
            allowed: &scenario.expect.allow,
            violations: &output.violations,
            history,
            trace: &output.journal.trace,
            final_state: &output.final_state,
        };
        let reports = Reports {
            markdown: markdown(&input),
            html: html(&input),
        };
        if let Err(e) = write_folder(
            &dir,
            &summary,
            &output.journal.history_jsonl(),
            &output.journal.trace_jsonl(),
            &reports,
            keep_disks.then_some(&output.disks),
        ) {
            return bad_input(format!(
                "{}: cannot write the run folder: {e}",
                dir.display()
            ));
        }
    }

    if !quiet {
        print_summary(
            &summary,
            &problems,
            (!no_folder).then_some(dir.as_path()),
            &reproduce,
        );
    }
    println!("trace-digest: {}", summary.trace_digest);
    println!("outcome: {outcome}");
    // The run's journal and final state are freed by the process's exit, all at once: dropping
    // them value by value took a twentieth of a sweep's time per seed.
    std::mem::forget(output);
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_summary(summary: &Summary, problems: &[String], dir: Option<&Path>, reproduce: &str) {
    let wall_s = summary.wall_ms.max(1) as f64 / 1000.0;
    println!("scenario: {} (seed {})", summary.scenario, summary.seed);
    println!(
        "simulated {} in {:.2} s of wall time ({:.0}x); {} events; {} network messages ({:.0} per wall second)",
        seconds(summary.sim_ms),
        wall_s,
        summary.sim_ms as f64 / 1000.0 / wall_s,
        summary.events,
        summary.messages,
        summary.messages as f64 / wall_s
    );
    let s = &summary.stats;
    println!(
        "sends: {} acknowledged, {} failed, {} unknown; polls: {}",
        s["sends_ok"], s["sends_failed"], s["sends_unknown"], s["polls_ok"]
    );
    let mut found: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for v in &summary.violations {
        *found.entry(v.check.as_str()).or_default() += 1;
    }
    if found.is_empty() {
        println!("violations: none");
    } else {
        let list: Vec<String> = found.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        println!("violations: {}", list.join(", "));
    }
    for problem in problems {
        println!("problem: {problem}");
    }
    if let Some(dir) = dir {
        println!("report: {}", dir.join("report.md").display());
        println!("report: {}", dir.join("report.html").display());
    }
    if !problems.is_empty() {
        println!("reproduce: {reproduce}");
    }
}

/// The scenarios of `dir` and of its `catalogue/`, one line each.
pub fn list(dir: &Path) -> ExitCode {
    let tomls = |dir: &Path| -> std::io::Result<Vec<PathBuf>> {
        Ok(std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect())
    };
    let mut files = match tomls(dir) {
        Ok(files) => files,
        Err(e) => return bad_input(format!("{}: {e}", dir.display())),
    };
    files.sort();
    let mut catalogue = tomls(&dir.join("catalogue")).unwrap_or_default();
    catalogue.sort();
    files.extend(catalogue);
    let mut bad = false;
    for file in files {
        match parse_file(&file) {
            Ok(s) => println!("{:<28} {}", s.name, s.summary),
            Err(e) => {
                bad = true;
                eprintln!("{e}");
            }
        }
    }
    if bad {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// `samsa explain`: runs the scenario and narrates it as it goes, then tells each violation's
/// story. With `pause`, waits for Enter at each fault (the simulation waits with it).
pub fn explain(file: &Path, seed: Option<u64>, pause: bool) -> ExitCode {
    use samsa_sim::narrate::{story_lines, Narrator};
    use std::io::{BufRead, Write};
    use std::sync::{Arc, Mutex};

    let scenario = match load(file) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let seed = seed.unwrap_or(scenario.seed);
    println!("{} (seed {seed}): {}", scenario.name, scenario.summary);
    let narrator = Arc::new(Mutex::new(Narrator::new()));
    let shared = narrator.clone();
    let sink: samsa_sim::history::Sink = Box::new(move |entry: samsa_sim::history::Entry| {
        let lines = shared.lock().expect("narrator lock").entry(entry);
        let mut out = std::io::stdout().lock();
        for line in lines {
            let _ = writeln!(out, "{}", line.text);
            if line.fault && pause {
                let _ = write!(out, "           [Enter to go on] ");
                let _ = out.flush();
                let mut answer = String::new();
                let _ = std::io::stdin().lock().read_line(&mut answer);
            }
        }
        // Shown as it happens, even through a pipe.
        let _ = out.flush();
    });
    let output = runner::run_narrated(&scenario, seed, sink);
    for line in narrator.lock().expect("narrator lock").flush() {
        println!("{}", line.text);
    }
    println!("{:>10} the run ends", seconds(output.sim_ms));
    let problems = judge(
        &output.violations,
        &scenario.expect.violations,
        &scenario.expect.allow,
    );
    let input = ReportInput {
        scenario: &scenario.name,
        summary: &scenario.summary,
        seed,
        outcome: if problems.is_empty() { "pass" } else { "fail" },
        digest: output.journal.digest(),
        sim_ms: output.sim_ms,
        reproduce: "",
        expected: &scenario.expect.violations,
        allowed: &scenario.expect.allow,
        violations: &output.violations,
        history: &output.journal.history,
        trace: &output.journal.trace,
        final_state: &output.final_state,
    };
    let stories = samsa_sim::report::stories(&input);
    if stories.is_empty() {
        println!("\nNo violation found.");
    }
    // The first story of an expected check is told in full; the others by their cause.
    let told_in_full = stories
        .iter()
        .position(|(check, ..)| scenario.expect.violations.contains(check))
        .unwrap_or(0);
    for (i, (check, partition, count, story)) in stories.iter().enumerate() {
        let on = partition
            .as_deref()
            .map(|p| format!(" on {p}"))
            .unwrap_or_default();
        println!("\n{check}{on}: {count} found. The first:");
        for line in story_lines(story, i == told_in_full) {
            println!("{line}");
        }
    }
    for problem in &problems {
        println!("problem: {problem}");
    }
    println!("trace-digest: {:016x}", output.journal.digest());
    println!("outcome: {}", input.outcome);
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
