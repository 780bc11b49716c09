//! The story of each violation (`samsa_sim::story`): for every catalogue scenario that expects
//! an anomaly, run on seed 1, the report names the record the violation is about and the event
//! that caused it, and both are checked against the run's own history and trace.

use samsa::runner::{self, RunOutput};
use samsa_sim::check::Violation;
use samsa_sim::history::OpType;
use samsa_sim::report::{first_story, markdown, seconds, ReportInput};
use samsa_sim::story::{chain, Source, Story};

mod common;

/// The catalogue's variants: each expects its anomaly.
const VARIANTS: [&str; 9] = [
    "acks-1-failover",
    "auto-commit-skip",
    "duplicates-without-idempotence",
    "hanging-transaction",
    "kip-101-data-loss",
    "kip-101-divergence",
    "min-insync-1-loss",
    "unclean-election",
    "zombie-commit-unfenced",
];

fn report(name: &str, output: &RunOutput) -> String {
    let s = common::scenario(name);
    markdown(&input(&s, output))
}

/// The named record is the run's: a write named by value and offset was acknowledged there.
fn check_subject(name: &str, v: &Violation, story: &Story, output: &RunOutput) {
    let s = &story.subject;
    assert_eq!(s.partition, v.partition, "{name}: {story:#?}");
    if v.check == "lost-write" {
        let (value, offset) = (s.value.as_deref().unwrap(), s.offset.unwrap());
        let acked = output.journal.history.iter().any(|op| {
            op.f == "send"
                && op.kind == OpType::Ok
                && op.value["value"].as_str() == Some(value)
                && op.value["offset"].as_i64() == Some(offset)
                && op.value["partition"].as_str() == s.partition.as_deref()
        });
        assert!(acked, "{name}: {value} at {offset} was never acknowledged");
    }
    if let Some(value) = &s.value {
        assert!(v.detail.contains(value.as_str()) || story.headline.contains(value.as_str()));
    }
}

/// The cause is an entry of the run, at the time the story says, and tells of it.
fn check_cause(name: &str, story: &Story, output: &RunOutput) {
    let cause = story
        .cause_step()
        .unwrap_or_else(|| panic!("{name}: {} has no cause: {story:#?}", story.check));
    match cause.source {
        Source::Trace(i) => {
            let event = &output.journal.trace[i];
            assert_eq!(event.at_ms, cause.at_ms, "{name}: {cause:?} vs {event:?}");
            let who = event.detail["node"].as_str().unwrap_or(&event.node);
            let leader = event.detail["leader"]
                .as_i64()
                .map(|l| format!("broker-{l}"));
            assert!(
                cause.text.contains(who) || leader.is_some_and(|l| cause.text.contains(&l)),
                "{name}: {cause:?} does not name {event:?}"
            );
        }
        Source::History(i) => {
            let op = &output.journal.history[i];
            assert_eq!(op.at_ms, cause.at_ms, "{name}: {cause:?} vs {op:?}");
            assert!(cause.text.contains(&op.process), "{name}: {cause:?}");
        }
        Source::Violation => {}
    }
}

#[test]
fn every_catalogue_anomaly_is_told_with_its_record_and_its_cause() {
    for name in VARIANTS {
        let scenario = common::scenario(name);
        let output = runner::run(&scenario, 1);
        let report = report(name, &output);
        let input = input(&scenario, &output);
        for check in &scenario.expect.violations {
            let first = output
                .violations
                .iter()
                .find(|v| &v.check == check)
                .unwrap_or_else(|| panic!("{name}: no {check} on seed 1"));
            // The group the report tells one story of: this check on this partition.
            let group: Vec<&Violation> = output
                .violations
                .iter()
                .filter(|v| &v.check == check && v.partition == first.partition)
                .collect();
            let story = first_story(&group, &input);
            let v = group
                .iter()
                .find(|v| v.at_ms == group.iter().map(|v| v.at_ms).min().unwrap())
                .unwrap();
            check_subject(name, v, &story, &output);
            check_cause(name, &story, &output);
            assert!(story.steps.len() >= 2, "{name}: {story:#?}");
            let times: Vec<u64> = story.steps.iter().map(|s| s.at_ms).collect();
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "{name}: {times:?}");
            // The report tells it: the headline, and the cause in bold at its time.
            let cause = story.cause_step().unwrap();
            assert!(report.contains(&story.headline), "{name}: {report}");
            let line = format!(
                "- {} — **{}** ← the cause",
                seconds(cause.at_ms),
                cause.text
            );
            assert!(report.contains(&line), "{name}: no {line:?} in {report}");
        }
    }
}

fn input<'a>(s: &'a samsa::scenario::Scenario, output: &'a RunOutput) -> ReportInput<'a> {
    ReportInput {
        scenario: &s.name,
        summary: &s.summary,
        seed: 1,
        outcome: "pass",
        digest: output.journal.digest(),
        sim_ms: output.sim_ms,
        reproduce: "",
        expected: &s.expect.violations,
        allowed: &s.expect.allow,
        violations: &output.violations,
        history: &output.journal.history,
        trace: &output.journal.trace,
        final_state: &output.final_state,
    }
}

#[test]
fn kip_101_names_the_truncation_to_the_high_watermark() {
    let output = runner::run(&common::scenario("kip-101-data-loss"), 1);
    let v = output
        .violations
        .iter()
        .filter(|v| v.check == "lost-write")
        .min_by_key(|v| (v.at_ms, v.detail.len(), v.detail.clone()))
        .unwrap();
    let story = chain(v, &output.journal.history, &output.journal.trace);
    let cause = story.cause_step().unwrap();
    let Source::Trace(i) = cause.source else {
        panic!("{cause:?}")
    };
    let event = &output.journal.trace[i];
    assert_eq!(event.kind, "truncate");
    assert_eq!(event.detail["reason"].as_str(), Some("high-watermark"));
    assert!(cause.text.contains("before KIP-101"), "{}", cause.text);
    assert!(story
        .steps
        .iter()
        .any(|s| s.text.contains("does NOT hold the record")));
}
