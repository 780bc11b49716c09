//! `samsa explore`: random fault schedules layered onto a scenario (`samsa::explore` draws them),
//! each case written as a scenario file and run as a process of its own (`samsa run FILE --seed
//! S`, as `samsa sweep` runs seeds: no madsim state outlives a case), `--jobs` at a time. The
//! first failing case is shrunk with proptest's runner to a minimal schedule, written as a
//! scenario file that `samsa run` reproduces.
//!
//! Case K of master seed M runs with seed M * 1000000 + K, so the seed names its case.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

use samsa::explore::{self, Fault, Header, Kind, Space};
use samsa::scenario::Scenario;
use serde_json::json;

/// `samsa explore`'s switches.
pub struct ExploreOptions {
    pub cases: u64,
    pub seed: u64,
    pub jobs: Option<usize>,
    pub out: Option<PathBuf>,
    pub faults: Option<String>,
    pub max_shrink_iters: u32,
}

/// Case numbers stay below this, so a run's seed (`M * 1000000 + K`) names its case.
const CASES_MAX: u64 = 999_999;
const SEED_STRIDE: u64 = 1_000_000;

/// A schedule shrinking has tried: its faults, described, and whether buggify was on.
type TriedSchedule = (Vec<String>, bool);

/// The run seed of case `case` of master seed `master`.
pub fn run_seed(master: u64, case: u64) -> u64 {
    master * SEED_STRIDE + case
}

/// What one run of a schedule said.
#[derive(Clone, Debug)]
struct Verdict {
    /// `pass`, `fail` (exit 1: the outcome was not the scenario's expectation), `crash` (the
    /// process died).
    outcome: String,
    /// What failed, most telling first (`severity`): each unexpected check, `missing CHECK` for
    /// an expected one not found, or `process-crash`.
    signature: Vec<String>,
    /// The run's `violations:` line.
    violations: String,
}

impl Verdict {
    fn failed(&self) -> bool {
        self.outcome != "pass"
    }
}

/// Why explore stopped without a verdict: its own bug (a generated scenario refused), or the
/// world's (the executable could not start).
struct Broken(String);

/// The base scenario, its text, and where the cases go.
struct Explore<'a> {
    exe: PathBuf,
    file: &'a Path,
    text: String,
    base: Scenario,
    space: Space,
    master: u64,
    dir: PathBuf,
}

pub fn explore(file: &Path, options: ExploreOptions) -> ExitCode {
    let bad = |message: String| {
        eprintln!("samsa explore: {message}");
        ExitCode::from(2)
    };
    let ExploreOptions {
        cases,
        seed: master,
        jobs,
        out,
        faults,
        max_shrink_iters,
    } = options;
    if !(1..=CASES_MAX).contains(&cases) {
        return bad(format!("--cases {cases}: must be 1 to {CASES_MAX}"));
    }
    if master > (i64::MAX as u64 - CASES_MAX) / SEED_STRIDE {
        return bad(format!("--seed {master}: at most 9223372036853"));
    }
    let (kinds, buggify) = match faults.as_deref().map(explore::parse_kinds) {
        None => (Kind::DEFAULT.to_vec(), true),
        Some(Ok(kinds)) => kinds,
        Some(Err(e)) => return bad(e),
    };
    let base = match crate::commands::load(file) {
        Ok(base) => base,
        Err(code) => return code,
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => return bad(format!("{}: {e}", file.display())),
    };
    let space = match Space::of(&base, &kinds) {
        Ok(space) => Space { buggify, ..space },
        Err(e) => return bad(format!("{}: {e}", file.display())),
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return bad(format!("cannot find the samsa executable: {e}")),
    };
    let dir = out.unwrap_or_else(|| {
        PathBuf::from("reports")
            .join(&base.name)
            .join(format!("explore-seed-{master}"))
    });
    if let Err(e) = std::fs::create_dir_all(dir.join("cases")) {
        return bad(format!("{}: {e}", dir.display()));
    }
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let ex = Explore {
        exe,
        file,
        text,
        base,
        space,
        master,
        dir,
    };
    let kind_names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    println!(
        "exploring {} with {cases} cases of random faults ({}), master seed {master}, {jobs} jobs",
        ex.file.display(),
        kind_names.join(", ")
    );
    match ex.search_and_shrink(cases, jobs, max_shrink_iters) {
        Ok(code) => code,
        Err(Broken(why)) => {
            eprintln!("samsa explore: {why}");
            ExitCode::from(2)
        }
    }
}

impl Explore<'_> {
    fn search_and_shrink(
        &self,
        cases: u64,
        jobs: usize,
        max_shrink_iters: u32,
    ) -> Result<ExitCode, Broken> {
        let started = Instant::now();
        let (results, first) = self.search(cases, jobs)?;
        let cases_run = results.len() as u64;
        let mut report = json!({
            "scenario": self.base.name,
            "file": self.file.display().to_string(),
            "master_seed": self.master,
            "cases": cases,
            "cases_run": cases_run,
            "kinds": self.space.kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "buggify": self.space.buggify,
            "max_shrink_iters": max_shrink_iters,
        });
        let Some((case, verdict)) = first else {
            println!("no failure in {cases_run} cases ({:.1} s)", secs(started));
            report["wall_s"] = json!(secs(started));
            self.write_json(&report)?;
            return Ok(ExitCode::SUCCESS);
        };
        let drawn = explore::generate(&self.space, self.master, case);
        let seed = run_seed(self.master, case);
        println!(
            "case {case} failed ({}): {} faults; {case} cases needed",
            verdict.signature.join(", "),
            drawn.faults.len()
        );
        for fault in &drawn.faults {
            println!("  {}", fault.describe());
        }
        report["first_failure"] = json!({
            "case": case,
            "cases_needed": case,
            "run_seed": seed,
            "file": self.case_path(case).display().to_string(),
            "violation": verdict.signature.first(),
            "signature": verdict.signature,
            "violations": verdict.violations,
            "swarm": {
                "kinds": drawn.swarm.kinds.iter().map(|(k, w)| json!({"kind": k.name(), "weight": w})).collect::<Vec<_>>(),
                "max_faults": drawn.swarm.max_faults,
                "start_ms": drawn.swarm.start_ms,
                "span_ms": drawn.swarm.span_ms,
                "max_for_ms": drawn.swarm.max_for_ms,
                "buggify": drawn.swarm.buggify,
            },
            "faults": describe(&drawn.faults),
        });

        let (shrunk, runs) = self.shrink(case, &drawn, &verdict, max_shrink_iters)?;
        let minimal = self.write_minimal(case, &drawn.faults, &shrunk)?;
        let reproduce = format!("samsa run {} --seed {seed}", minimal.display());
        let check_dir = self.dir.join("minimal-run");
        let again = self.run_file(&minimal, seed, Some(&check_dir))?;
        let reproduced = again.signature.first() == verdict.signature.first();
        println!(
            "shrunk from {} faults to {} in {} steps ({runs} runs; the others were schedules tried before){}:",
            drawn.faults.len(),
            shrunk.faults.len(),
            shrunk.steps,
            if shrunk.capped {
                format!(" (stopped at the cap, --max-shrink-iters {max_shrink_iters})")
            } else {
                String::new()
            }
        );
        for fault in &shrunk.faults {
            println!("  {}", fault.describe());
        }
        println!("minimal: {}", minimal.display());
        if reproduced {
            println!("reproduce: {reproduce}");
        } else {
            println!(
                "warning: the minimal file, run again, gave {} ({}) instead of {}",
                again.outcome,
                again.signature.join(", "),
                verdict.signature.join(", ")
            );
        }
        report["shrink"] = json!({
            "faults_before": drawn.faults.len(),
            "faults_after": shrunk.faults.len(),
            "steps": shrunk.steps,
            "runs": runs,
            "capped": shrunk.capped,
            "reason": shrunk.reason,
            "faults": describe(&shrunk.faults),
            "buggify": shrunk.buggify,
        });
        report["minimal"] = json!({
            "file": minimal.display().to_string(),
            "run_seed": seed,
            "reproduce": reproduce,
            "reproduced": reproduced,
            "violations": again.violations,
            "report": check_dir.join("report.md").display().to_string(),
        });
        report["wall_s"] = json!(secs(started));
        self.write_json(&report)?;
        Ok(ExitCode::from(1))
    }

    /// Runs cases 1..=cases, `jobs` at a time, in order, until one fails: the cases after it are
    /// not started, those before it (already started) finish, so the first failure is the same
    /// under any `--jobs`.
    fn search(
        &self,
        cases: u64,
        jobs: usize,
    ) -> Result<(Vec<(u64, Verdict)>, FirstFailure), Broken> {
        let next = AtomicU64::new(1);
        let first_failed = AtomicU64::new(u64::MAX);
        let (tx, rx) = mpsc::channel::<(u64, Result<Verdict, Broken>)>();
        let bar = progress_bar(cases);
        let mut results = Vec::new();
        let mut broken = None;
        std::thread::scope(|scope| {
            for _ in 0..jobs.min(cases as usize) {
                let tx = tx.clone();
                let (next, first_failed) = (&next, &first_failed);
                scope.spawn(move || loop {
                    let case = next.fetch_add(1, Ordering::SeqCst);
                    if case > cases || case > first_failed.load(Ordering::SeqCst) {
                        return;
                    }
                    let verdict = self.run_case(case);
                    if !matches!(&verdict, Ok(v) if !v.failed()) {
                        first_failed.fetch_min(case, Ordering::SeqCst);
                    }
                    if tx.send((case, verdict)).is_err() {
                        return;
                    }
                });
            }
            drop(tx);
            for (case, verdict) in rx {
                match verdict {
                    Ok(verdict) => {
                        let line = format!(
                            "case {case}/{cases} (seed {}): {}{}",
                            run_seed(self.master, case),
                            verdict.outcome,
                            if verdict.failed() {
                                format!(" ({})", verdict.signature.join(", "))
                            } else {
                                String::new()
                            }
                        );
                        match &bar {
                            Some(bar) => {
                                bar.inc(1);
                                if verdict.failed() {
                                    bar.println(line);
                                }
                            }
                            None => println!("{line}"),
                        }
                        results.push((case, verdict));
                    }
                    Err(why) => {
                        broken.get_or_insert((case, why));
                    }
                }
            }
        });
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        results.sort_by_key(|(case, _)| *case);
        let first = results.iter().find(|(_, v)| v.failed()).cloned();
        if let Some((case, Broken(why))) = broken {
            // A refused case stops explore only if it came before any failure.
            if first.as_ref().is_none_or(|(failed, _)| case < *failed) {
                return Err(Broken(why));
            }
        }
        Ok((results, first))
    }

    fn case_path(&self, case: u64) -> PathBuf {
        self.dir.join("cases").join(format!("case-{case}.toml"))
    }

    /// Draws case `case`, writes its file, and runs it.
    fn run_case(&self, case: u64) -> Result<Verdict, Broken> {
        let drawn = explore::generate(&self.space, self.master, case);
        let seed = run_seed(self.master, case);
        let header = Header {
            comment: vec![
                format!(
                    "Case {case} of `samsa explore {} --seed {}`: {} random faults added to the scenario's own.",
                    self.file.display(),
                    self.master,
                    drawn.faults.len()
                ),
                format!("Reproduce: samsa run {} --seed {seed}", self.case_path(case).display()),
            ],
            name: None,
            seed: Some(seed),
            buggify: drawn.swarm.buggify,
        };
        let path = self.case_path(case);
        self.write_schedule(&path, &drawn.faults, &header)?;
        self.run_file(&path, seed, None)
    }

    /// Writes a schedule's scenario file, having checked that it parses: a generated scenario
    /// the parser refuses is explore's own bug.
    fn write_schedule(&self, path: &Path, faults: &[Fault], header: &Header) -> Result<(), Broken> {
        let text = explore::render_case(&self.text, &self.base, faults, header)
            .map_err(|e| Broken(format!("{}: cannot add faults: {e}", self.file.display())))?;
        if let Err(e) = samsa::scenario::parse_str(&path.display().to_string(), &text) {
            return Err(Broken(format!(
                "a bug of explore: the scenario it generated is refused: {e}"
            )));
        }
        std::fs::write(path, text).map_err(|e| Broken(format!("{}: {e}", path.display())))
    }

    /// `samsa run FILE --seed S` in a process of its own; with no `out`, no run folder.
    fn run_file(&self, path: &Path, seed: u64, out: Option<&Path>) -> Result<Verdict, Broken> {
        let mut command = Command::new(&self.exe);
        command
            .arg("run")
            .arg(path)
            .arg("--seed")
            .arg(seed.to_string());
        match out {
            Some(dir) => command.arg("--out").arg(dir),
            None => command.arg("--no-folder"),
        };
        let output = command
            .output()
            .map_err(|e| Broken(format!("cannot start {}: {e}", self.exe.display())))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let mut verdict = Verdict {
            outcome: "pass".into(),
            signature: Vec::new(),
            violations: String::new(),
        };
        for line in stdout.lines() {
            if let Some(v) = line.strip_prefix("violations: ") {
                verdict.violations = v.trim().to_string();
            } else if let Some(problem) = line.strip_prefix("problem: ") {
                verdict.signature.push(problem_check(problem));
            }
        }
        verdict.signature.sort_by_key(|check| severity(check));
        match output.status.code() {
            Some(0) => {}
            Some(1) => {
                verdict.outcome = "fail".into();
                if verdict.signature.is_empty() {
                    verdict.signature.push("fail".into());
                }
            }
            Some(2) => {
                let why = stderr.lines().next().unwrap_or("no message");
                return Err(Broken(format!(
                    "a bug of explore: `samsa run {} --seed {seed}` refused the scenario it generated: {why}",
                    path.display()
                )));
            }
            _ => {
                // The simulator itself died (a panic outside the cluster, a signal): a failure
                // too, and the same one whatever its last words.
                verdict.outcome = "crash".into();
                let last = stderr.lines().last().unwrap_or("no message");
                verdict.signature = vec!["process-crash".into()];
                verdict.violations = format!("the process ended ({}): {last}", output.status);
            }
        }
        Ok(verdict)
    }

    /// Shrinks the failing case: a schedule fails the same way when its run finds the first
    /// check the case found (`Verdict::signature`).
    fn shrink(
        &self,
        case: u64,
        drawn: &explore::Case,
        verdict: &Verdict,
        max_shrink_iters: u32,
    ) -> Result<(explore::Shrunk, u64), Broken> {
        let seed = run_seed(self.master, case);
        let wanted = verdict.signature[0].clone();
        let shrink_dir = self.dir.join("shrink");
        std::fs::create_dir_all(&shrink_dir)
            .map_err(|e| Broken(format!("{}: {e}", shrink_dir.display())))?;
        println!(
            "shrinking case {case} (at most {max_shrink_iters} steps; a step that fails otherwise than with {wanted} counts as passing)"
        );
        // A schedule tried twice is run once; the case itself has run already.
        let seen: Mutex<BTreeMap<TriedSchedule, Option<String>>> = Mutex::new(BTreeMap::new());
        seen.lock().expect("lock").insert(
            (describe(&drawn.faults), drawn.swarm.buggify),
            Some(wanted.clone()),
        );
        let broken: Mutex<Option<Broken>> = Mutex::new(None);
        let step = AtomicU64::new(0);
        let fails = |faults: &[Fault], buggify: bool| -> Option<String> {
            let key = (describe(faults), buggify);
            if let Some(known) = seen.lock().expect("lock").get(&key) {
                return known.clone();
            }
            if broken.lock().expect("lock").is_some() {
                return None;
            }
            let n = step.fetch_add(1, Ordering::SeqCst) + 1;
            let path = shrink_dir.join(format!("step-{n}.toml"));
            let header = Header {
                comment: vec![format!(
                    "Shrink step {n} of case {case} of `samsa explore {} --seed {}`.",
                    self.file.display(),
                    self.master
                )],
                name: None,
                seed: Some(seed),
                buggify,
            };
            let result = self
                .write_schedule(&path, faults, &header)
                .and_then(|()| self.run_file(&path, seed, None));
            let answer = match result {
                Ok(v) if v.signature.contains(&wanted) => Some(wanted.clone()),
                Ok(_) => None,
                Err(e) => {
                    *broken.lock().expect("lock") = Some(e);
                    None
                }
            };
            println!(
                "shrink step {n}: {} faults{}: {}",
                faults.len(),
                if buggify { ", buggify" } else { "" },
                if answer.is_some() {
                    "fails the same way"
                } else {
                    "passes"
                }
            );
            seen.lock().expect("lock").insert(key, answer.clone());
            answer
        };
        let shrunk = explore::shrink(&self.space, self.master, case, max_shrink_iters, fails)
            .map_err(|e| Broken(format!("shrinking case {case}: {e}")))?;
        if let Some(e) = broken.into_inner().expect("lock") {
            return Err(e);
        }
        Ok((shrunk, step.into_inner()))
    }

    fn write_minimal(
        &self,
        case: u64,
        before: &[Fault],
        shrunk: &explore::Shrunk,
    ) -> Result<PathBuf, Broken> {
        let seed = run_seed(self.master, case);
        let name = format!("{}-minimal", self.base.name);
        let path = self.dir.join(format!("{name}.toml"));
        let header = Header {
            comment: vec![
                format!(
                    "Found by `samsa explore {} --seed {}`: case {case} ({case} cases needed), run seed {seed}.",
                    self.file.display(),
                    self.master
                ),
                format!(
                    "Shrunk from {} faults to {} in {} steps{}; it fails with {}.",
                    before.len(),
                    shrunk.faults.len(),
                    shrunk.steps,
                    if shrunk.capped { " (stopped at the cap)" } else { "" },
                    shrunk.reason
                ),
                format!("Reproduce: samsa run {} --seed {seed}", path.display()),
            ],
            name: Some(name),
            seed: Some(seed),
            buggify: shrunk.buggify,
        };
        self.write_schedule(&path, &shrunk.faults, &header)?;
        Ok(path)
    }

    fn write_json(&self, report: &serde_json::Value) -> Result<(), Broken> {
        let path = self.dir.join("explore.json");
        let text = serde_json::to_string_pretty(report).expect("JSON");
        std::fs::write(&path, text + "\n")
            .map_err(|e| Broken(format!("{}: {e}", path.display())))?;
        println!("summary: {}", path.display());
        Ok(())
    }
}

type FirstFailure = Option<(u64, Verdict)>;

/// The check a `problem:` line of `samsa run` names: `unexpected `lost-write` found 3 time(s)`
/// is `lost-write`, `expected `divergence` was not found` is `missing divergence`.
fn problem_check(problem: &str) -> String {
    let name = problem.split('`').nth(1);
    match name {
        Some(name) if problem.starts_with("unexpected") => name.to_string(),
        Some(name) if problem.starts_with("expected") => format!("missing {name}"),
        _ => problem.to_string(),
    }
}

/// How telling a check is: a panic first (what follows it is its consequence), then the others
/// in the order of `CONTRACT.md`'s table, which lists the worst first (a lost write before the
/// high-watermark regression that usually comes with it); an expected check not found after
/// every unexpected one.
fn severity(check: &str) -> usize {
    let names = samsa::scenario::CHECK_NAMES;
    let rank = |name: &str| match name {
        "panic" => 0,
        _ => 1 + names.iter().position(|n| *n == name).unwrap_or(names.len()),
    };
    match check.strip_prefix("missing ") {
        None => rank(check),
        Some(name) => names.len() + 2 + rank(name),
    }
}

fn describe(faults: &[Fault]) -> Vec<String> {
    faults.iter().map(Fault::describe).collect()
}

fn secs(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}

fn progress_bar(cases: u64) -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(cases);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} cases  {elapsed_precise} (eta {eta})",
            )
            .expect("a valid template"),
        );
        bar
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_problems_are_read_as_checks_most_telling_first() {
        assert_eq!(
            problem_check("unexpected `lost-write` found 3 time(s)"),
            "lost-write"
        );
        assert_eq!(
            problem_check("expected `divergence` was not found"),
            "missing divergence"
        );
        let mut found = vec![
            "missing divergence".to_string(),
            "hw-regression".into(),
            "lost-write".into(),
            "panic".into(),
            "inconsistent-read".into(),
        ];
        found.sort_by_key(|c| severity(c));
        assert_eq!(
            found,
            [
                "panic",
                "lost-write",
                "inconsistent-read",
                "hw-regression",
                "missing divergence"
            ]
        );
        assert_eq!(run_seed(3, 20), 3_000_020);
    }
}
