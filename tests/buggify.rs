//! Fault points inside the brokers (`buggify = true`, FoundationDB's BUGGIFY): each run switches
//! some of them on from its seed; the cluster must still keep every guarantee, and the run must
//! still replay bit for bit.

use std::collections::BTreeSet;

use samsa::output::judge;
use samsa::runner;
use samsa::scenario::Scenario;
use samsa::world::buggify::{active_points, Point};

mod common;
use common::{events, scenario, seeds};

fn with_buggify(name: &str) -> Scenario {
    let mut s = scenario(name);
    s.buggify = true;
    s
}

/// The fault points that fired in a run, by name.
fn fired(output: &runner::RunOutput) -> BTreeSet<String> {
    events(output, "buggify")
        .filter_map(|e| {
            e.detail
                .get("point")
                .and_then(|p| p.as_str())
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn the_cluster_keeps_its_guarantees_under_its_own_fault_points() {
    let mut seen = BTreeSet::new();
    for name in ["leader-failover", "txn-abort-visibility"] {
        let s = with_buggify(name);
        for seed in 1..=seeds("SAMSA_SEEDS", 3) {
            let output = runner::run(&s, seed);
            let problems = judge(&output.violations, &s.expect.violations, &s.expect.allow);
            assert!(problems.is_empty(), "{name} seed {seed}: {problems:?}");
            let active: BTreeSet<String> = active_points(seed)
                .into_iter()
                .map(|p| p.name().to_string())
                .collect();
            let fired = fired(&output);
            assert!(
                fired.is_subset(&active),
                "{name} seed {seed}: {fired:?} fired, {active:?} on"
            );
            seen.extend(fired);
        }
    }
    // Across these runs the request-path points all had their turn.
    for point in [
        Point::SlowHandler,
        Point::RetriableError,
        Point::DroppedResponse,
    ] {
        assert!(
            seen.contains(point.name()),
            "{} never fired: {seen:?}",
            point.name()
        );
    }
}

#[test]
fn a_run_with_fault_points_replays_bit_for_bit_and_without_them_has_none() {
    let s = with_buggify("leader-failover");
    let first = runner::run(&s, 2);
    let again = runner::run(&s, 2);
    assert!(!fired(&first).is_empty());
    assert_eq!(first.journal.digest(), again.journal.digest());
    let plain = runner::run(&scenario("leader-failover"), 2);
    assert!(fired(&plain).is_empty());
}
