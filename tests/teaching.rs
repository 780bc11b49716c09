//! The teaching reports committed under `reports/teaching/<scenario>/` are what the code
//! produces today: every catalogue scenario is run on seed 1 and its report compared with the
//! committed one. When the code changes what a report says, this fails with the command that
//! regenerates them (`scripts/regenerate-teaching-reports`); read the diff and commit it.
//!
//! A report holds no wall-clock figure (the trace digest and the simulated time are the seed's),
//! so the comparison is exact.

use std::path::{Path, PathBuf};

mod common;

/// The report files compared. `report.html` joins this list once runs write it.
const COMPARED: [&str; 2] = ["report.md", "report.html"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn catalogue() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("scenarios/catalogue"))
        .expect("scenarios/catalogue")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The first line where two texts differ, for the failure message.
fn first_difference(committed: &str, produced: &str) -> String {
    let pairs = committed.lines().zip(produced.lines()).enumerate();
    for (i, (a, b)) in pairs {
        if a != b {
            return format!("line {}:\n  committed: {a}\n  produced:  {b}", i + 1);
        }
    }
    format!(
        "one is longer: committed {} lines, produced {}",
        committed.lines().count(),
        produced.lines().count()
    )
}

fn check(name: &str, out: &Path) -> Vec<String> {
    let file = format!("scenarios/catalogue/{name}.toml");
    let out_arg = out.to_string_lossy().into_owned();
    let run = common::samsa(&["run", &file, "--seed", "1", "--out", &out_arg, "--quiet"]);
    assert!(matches!(run.status.code(), Some(0 | 1)), "{file}: {run:?}");
    let mut stale = Vec::new();
    for report in COMPARED {
        let committed_path = root().join("reports/teaching").join(name).join(report);
        let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
        let produced = std::fs::read_to_string(out.join(report))
            .unwrap_or_else(|e| panic!("{file}: no {report}: {e}"));
        if committed != produced {
            stale.push(format!(
                "reports/teaching/{name}/{report}: {}",
                first_difference(&committed, &produced)
            ));
        }
    }
    stale
}

#[test]
fn every_teaching_report_is_what_the_code_produces() {
    let tmp = std::env::temp_dir().join(format!("samsa-teaching-{}", std::process::id()));
    let mut stale = Vec::new();
    for name in catalogue() {
        stale.extend(check(&name, &tmp.join(&name)));
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        stale.is_empty(),
        "stale teaching reports (regenerate with scripts/regenerate-teaching-reports, then read \
         the diff and commit it):\n{}",
        stale.join("\n")
    );
}

#[test]
fn only_catalogue_scenarios_have_teaching_reports() {
    let dir = root().join("reports/teaching");
    let names = catalogue();
    for entry in std::fs::read_dir(&dir).expect("reports/teaching") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(names.contains(&name), "{} has no scenario", path.display());
        }
    }
}
