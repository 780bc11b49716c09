//! `samsa sweep`: one scenario over a range of seeds, each seed in a process of its own (`samsa
//! run --seed N`), `--jobs` of them at a time. A process per seed means no state outlives a
//! seed's runtime (madsim issue #174): a seed's digest is the same run alone, in a sweep, first
//! or last, under any `--jobs`. `--shard I/N` keeps the seeds whose position in the range is
//! I-1 modulo N, so a batch scheduler or a CI matrix can split one sweep across machines.
//!
//! It shows a progress bar on a terminal (plain lines otherwise), writes `sweep.json`, lists
//! every failing seed with the command that reproduces it, and exits 1 if any seed failed.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::json;

/// What one seed's run said.
#[derive(Clone, Debug)]
struct SeedResult {
    seed: u64,
    /// `pass`, `fail`, or `error` (the run could not be made: exit 2, a crash of the process).
    outcome: String,
    digest: Option<String>,
    /// The `violations:` line of the run's summary.
    violations: String,
    problems: Vec<String>,
}

/// `A..B` (B included, as the contract writes `--seeds 1..2000`).
pub fn parse_seeds(text: &str) -> Result<(u64, u64), String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("--seeds {text}: expected A..B, like 1..2000"))?;
    let parse = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("--seeds {text}: {s:?} is not a seed (a whole number)"))
    };
    let (a, b) = (parse(a)?, parse(b)?);
    if a > b {
        return Err(format!(
            "--seeds {text}: the range is empty ({a} is above {b})"
        ));
    }
    Ok((a, b))
}

/// `I/N` with 1 <= I <= N.
pub fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--shard {text}: expected I/N with 1 <= I <= N, like 2/4");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let i: u64 = i.trim().parse().map_err(|_| bad())?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || i == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

/// The seeds of `a..=b` in shard `i` of `n`.
pub fn shard_seeds(a: u64, b: u64, shard: Option<(u64, u64)>) -> Vec<u64> {
    (a..=b)
        .filter(|seed| shard.is_none_or(|(i, n)| (seed - a) % n == i - 1))
        .collect()
}

pub fn sweep(
    file: &Path,
    seeds: &str,
    jobs: Option<usize>,
    shard: Option<&str>,
    out: Option<PathBuf>,
) -> ExitCode {
    let fail = |message: String| {
        eprintln!("samsa sweep: {message}");
        ExitCode::from(2)
    };
    let (a, b) = match parse_seeds(seeds) {
        Ok(range) => range,
        Err(e) => return fail(e),
    };
    let shard = match shard.map(parse_shard).transpose() {
        Ok(shard) => shard,
        Err(e) => return fail(e),
    };
    // The scenario is read once here, so a bad file is one line and exit 2, not one per seed.
    let scenario = match samsa::scenario::parse_file(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return fail(format!("cannot find the samsa executable: {e}")),
    };
    let seeds = shard_seeds(a, b, shard);
    let dir = out.unwrap_or_else(|| {
        PathBuf::from("reports")
            .join(&scenario.name)
            .join(format!("sweep-{a}..{b}"))
    });
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return fail(format!("{}: {e}", dir.display()));
    }

    let started = Instant::now();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(seeds.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} seeds  {msg}  {elapsed_precise} (eta {eta})",
            )
            .expect("a valid template"),
        );
        bar
    });
    let queue = Mutex::new(seeds.clone().into_iter());
    let (tx, rx) = mpsc::channel::<SeedResult>();
    let mut results = Vec::with_capacity(seeds.len());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(seeds.len().max(1)) {
            let tx = tx.clone();
            let queue = &queue;
            let exe = &exe;
            scope.spawn(move || loop {
                let Some(seed) = queue.lock().expect("queue lock").next() else {
                    return;
                };
                if tx.send(run_seed(exe, file, seed)).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let mut failed = 0;
        for result in rx {
            if result.outcome != "pass" {
                failed += 1;
            }
            match &bar {
                Some(bar) => {
                    bar.inc(1);
                    bar.set_message(format!("{failed} failed"));
                    if result.outcome != "pass" {
                        bar.println(failure_line(file, &result));
                    }
                }
                None => println!(
                    "seed {}: {} {}",
                    result.seed,
                    result.outcome,
                    result.digest.as_deref().unwrap_or("-")
                ),
            }
            results.push(result);
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    results.sort_by_key(|r| r.seed);
    let wall_s = started.elapsed().as_secs_f64();
    let failed: Vec<&SeedResult> = results.iter().filter(|r| r.outcome != "pass").collect();
    let per_minute = results.len() as f64 / wall_s.max(1e-3) * 60.0;

    let summary = json!({
        "scenario": scenario.name,
        "file": file.display().to_string(),
        "seeds": { "from": a, "to": b },
        "shard": shard.map(|(i, n)| format!("{i}/{n}")),
        "jobs": jobs,
        "runs": results.len(),
        "passed": results.len() - failed.len(),
        "failed": failed.len(),
        "wall_s": wall_s,
        "seeds_per_minute": per_minute,
        "results": results.iter().map(|r| json!({
            "seed": r.seed,
            "outcome": r.outcome,
            "trace_digest": r.digest,
            "violations": r.violations,
            "problems": r.problems,
        })).collect::<Vec<_>>(),
    });
    let path = dir.join("sweep.json");
    let text = serde_json::to_string_pretty(&summary).expect("JSON");
    if let Err(e) = std::fs::write(&path, text + "\n") {
        return fail(format!("{}: {e}", path.display()));
    }
    println!(
        "scenario: {} · {} seeds ({a}..{b}{}) · {jobs} jobs · {:.1} s · {:.0} seeds per minute",
        scenario.name,
        results.len(),
        shard.map_or(String::new(), |(i, n)| format!(", shard {i}/{n}")),
        wall_s,
        per_minute
    );
    println!(
        "passed: {}, failed: {}",
        results.len() - failed.len(),
        failed.len()
    );
    for result in &failed {
        println!("{}", failure_line(file, result));
    }
    println!("summary: {}", path.display());
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn failure_line(file: &Path, result: &SeedResult) -> String {
    let mut why = result.violations.clone();
    for problem in &result.problems {
        why.push_str("; ");
        why.push_str(problem);
    }
    format!(
        "FAILED seed {} ({}): reproduce: cargo run --release -- run {} --seed {}",
        result.seed,
        why,
        file.display(),
        result.seed
    )
}

/// One seed in a process of its own; nothing written but what it prints.
fn run_seed(exe: &Path, file: &Path, seed: u64) -> SeedResult {
    let output = Command::new(exe)
        .arg("run")
        .arg(file)
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--no-folder")
        .output();
    let mut result = SeedResult {
        seed,
        outcome: "error".into(),
        digest: None,
        violations: String::new(),
        problems: Vec::new(),
    };
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            result.problems.push(format!("could not start: {e}"));
            return result;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in stdout.lines() {
        if let Some(d) = line.strip_prefix("trace-digest: ") {
            result.digest = Some(d.trim().to_string());
        } else if let Some(o) = line.strip_prefix("outcome: ") {
            result.outcome = o.trim().to_string();
        } else if let Some(v) = line.strip_prefix("violations: ") {
            result.violations = v.trim().to_string();
        } else if let Some(p) = line.strip_prefix("problem: ") {
            result.problems.push(p.trim().to_string());
        }
    }
    if !output.status.success() && output.status.code() != Some(1) {
        result.outcome = "error".into();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("the run crashed");
        result.problems.push(last.to_string());
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_shards_are_read_and_split_as_documented() {
        assert_eq!(parse_seeds("1..2000"), Ok((1, 2000)));
        assert_eq!(parse_seeds("7..7"), Ok((7, 7)));
        assert!(parse_seeds("5..2").unwrap_err().contains("empty"));
        assert!(parse_seeds("1-5").unwrap_err().contains("A..B"));
        assert!(parse_seeds("1..x").unwrap_err().contains("not a seed"));
        assert_eq!(parse_shard("2/4"), Ok((2, 4)));
        for bad in ["0/4", "5/4", "1/0", "x/2", "3"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
        assert_eq!(shard_seeds(1, 10, Some((2, 4))), vec![2, 6, 10]);
        assert_eq!(shard_seeds(3, 5, None), vec![3, 4, 5]);
        // The shards of a range partition it.
        let mut all: Vec<u64> = (1..=3)
            .flat_map(|i| shard_seeds(10, 30, Some((i, 3))))
            .collect();
        all.sort();
        assert_eq!(all, (10..=30).collect::<Vec<_>>());
    }
}
