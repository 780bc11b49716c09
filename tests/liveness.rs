//! Liveness: once every fault is over (`recovery` in the scenario), the cluster must serve
//! writes and reads again within the recovery time, or `unavailable` says it did not.

use samsa::broker::PlantedBug;
use samsa::output::judge;
use samsa::runner;

mod common;
use common::scenario;

#[test]
fn writes_resume_once_the_follower_rejoins_the_isr() {
    let s = scenario("isr-rejoin-liveness");
    let output = runner::run(&s, 1);
    assert!(
        judge(&output.violations, &s.expect.violations, &s.expect.allow).is_empty(),
        "{:?}",
        output.violations
    );
    let healed = common::events(&output, "healed")
        .next()
        .expect("the world healed")
        .at_ms;
    // Refused while the ISR was the leader alone, acknowledged again after the heal.
    let sends = output.journal.history.iter().filter(|op| op.f == "send");
    let refused = sends
        .clone()
        .filter(|op| op.kind != samsa_sim::history::OpType::Invoke)
        .filter(|op| format!("{:?}", op.value).contains("NotEnoughReplicas"))
        .count();
    let acked_after = sends
        .filter(|op| op.kind == samsa_sim::history::OpType::Ok && op.at_ms > healed)
        .count();
    assert!(refused > 0, "no write was refused while the ISR was short");
    assert!(
        acked_after > 100,
        "only {acked_after} writes acknowledged after the heal"
    );
}

/// Planted: a leader that never takes a caught-up follower back into the ISR. With RF 2 and
/// `min.insync.replicas=2` the partition refuses every `acks=all` write for good after the
/// follower's outage: found as `unavailable`, and only that.
#[test]
fn planted_bug_a_follower_that_never_rejoins_the_isr_is_unavailable() {
    let s = scenario("isr-rejoin-liveness");
    let output = runner::run_planted(&s, 1, Some(PlantedBug::NeverRejoinIsr));
    let found: Vec<&str> = output.violations.iter().map(|v| v.check.as_str()).collect();
    assert!(found.contains(&"unavailable"), "{:?}", output.violations);
    assert!(
        found.iter().all(|c| *c == "unavailable"),
        "{:?}",
        output.violations
    );
    let detail = &output.violations[0].detail;
    assert!(detail.starts_with("p1 tried to write"), "{detail}");
}
