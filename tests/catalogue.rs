//! The catalogue (`scenarios/catalogue/`): Kafka's classic anomalies, each a pair of scenarios,
//! the historical variant expecting its anomaly and the fix expecting none. Every scenario of it
//! runs on `SAMSA_CATALOGUE_SEEDS` seeds (1 by default; the acceptance sweep runs 200) and must
//! give its expected outcome; the README's table and the files must agree.

use std::collections::BTreeSet;

use samsa::output::judge;
use samsa::runner;
use samsa::scenario::parse_file;

mod common;
use common::seeds;

fn catalogue() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/catalogue")
}

/// The scenario names of the catalogue's files.
fn files() -> BTreeSet<String> {
    std::fs::read_dir(catalogue())
        .expect("scenarios/catalogue")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// The README table's pairs: (variant, fix), each a `name` in backquotes in its column.
fn pairs() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(catalogue().join("README.md")).expect("README.md");
    let name = |cell: &str| cell.split('`').nth(1).map(str::to_string);
    readme
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| anomaly") && !l.starts_with("| ---"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').collect();
            let pair = (name(cells[2]), name(cells[3]));
            match pair {
                (Some(v), Some(f)) => (v, f),
                _ => panic!("a README row without two scenario names: {l}"),
            }
        })
        .collect()
}

#[test]
fn every_entry_is_a_variant_expecting_its_anomaly_and_a_fix_expecting_none() {
    let pairs = pairs();
    assert!(pairs.len() >= 9, "{pairs:?}");
    let named: BTreeSet<String> = pairs
        .iter()
        .flat_map(|(v, f)| [v.clone(), f.clone()])
        .collect();
    assert_eq!(
        named,
        files(),
        "the README's table and the catalogue's files differ"
    );
    for (variant, fix) in &pairs {
        let load = |name: &str| {
            parse_file(&catalogue().join(format!("{name}.toml"))).unwrap_or_else(|e| panic!("{e}"))
        };
        assert!(
            !load(variant).expect.violations.is_empty(),
            "{variant} expects no anomaly"
        );
        assert!(
            load(fix).expect.violations.is_empty(),
            "{fix} expects an anomaly"
        );
    }
}

#[test]
fn every_catalogue_scenario_gives_its_expected_outcome() {
    let n = seeds("SAMSA_CATALOGUE_SEEDS", 1);
    for name in files() {
        let s = common::scenario(&name);
        for seed in 1..=n {
            let output = runner::run(&s, seed);
            let problems = judge(&output.violations, &s.expect.violations, &s.expect.allow);
            assert!(
                problems.is_empty(),
                "{name} seed {seed}: {problems:?}; reproduce: cargo run --release -- run scenarios/catalogue/{name}.toml --seed {seed}"
            );
        }
    }
}
