//! `report.md`: the story of a run for a person — the faults, what each client saw, the final
//! state of each partition, and each violation with the events that led to it.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::check::{FinalState, Violation};
use crate::history::{Op, OpType, TraceEvent};
use crate::story::{chain, Story};

pub struct ReportInput<'a> {
    pub scenario: &'a str,
    pub summary: &'a str,
    pub seed: u64,
    pub outcome: &'a str,
    pub digest: u64,
    pub sim_ms: u64,
    pub reproduce: &'a str,
    pub expected: &'a [String],
    pub allowed: &'a [String],
    pub violations: &'a [Violation],
    pub history: &'a [Op],
    pub trace: &'a [TraceEvent],
    pub final_state: &'a FinalState,
}

/// How many violations of one check are listed one by one before the rest are counted.
const LISTED_PER_CHECK: usize = 40;

pub fn seconds(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

pub fn markdown(r: &ReportInput) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {} — seed {}\n", r.scenario, r.seed);
    let _ = writeln!(out, "{}\n", r.summary);
    let _ = writeln!(
        out,
        "**Outcome: {}** · {} simulated · trace digest `{:016x}`\n",
        r.outcome,
        seconds(r.sim_ms),
        r.digest
    );
    let _ = writeln!(out, "Reproduce: `{}`\n", r.reproduce);
    expectations(&mut out, r);
    timeline(&mut out, r.trace);
    clients(&mut out, r.history);
    partitions(&mut out, r);
    violations(&mut out, r);
    out
}

fn expectations(out: &mut String, r: &ReportInput) {
    let found: BTreeMap<&str, usize> = r.violations.iter().fold(BTreeMap::new(), |mut m, v| {
        *m.entry(v.check.as_str()).or_default() += 1;
        m
    });
    let _ = writeln!(out, "## Expected and found\n");
    let _ = writeln!(out, "| check | expected | found |\n| --- | --- | --- |");
    let mut names: Vec<&str> = found.keys().copied().collect();
    names.extend(r.expected.iter().map(String::as_str));
    names.extend(r.allowed.iter().map(String::as_str));
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        let _ = writeln!(out, "| (none) | no violation | none |");
    }
    for name in names {
        let expectation = expectation(r, name);
        let _ = writeln!(
            out,
            "| `{name}` | {expectation} | {} |",
            found.get(name).copied().unwrap_or(0)
        );
    }
    out.push('\n');
}

/// What the scenario says of a check: "must be found", "allowed" or "must not be found".
pub fn expectation(r: &ReportInput, check: &str) -> &'static str {
    if r.expected.iter().any(|e| e == check) {
        "must be found"
    } else if r.allowed.iter().any(|e| e == check) {
        "allowed"
    } else {
        "must not be found"
    }
}

/// The events a person follows: faults, recoveries that cut a log, brokers stopping.
pub fn notable(event: &TraceEvent) -> bool {
    match event.kind.as_str() {
        "recovered" => event.detail["truncated_bytes"].as_u64().unwrap_or(0) > 0 || event.at_ms > 0,
        // A transaction's every step is chatty; its aborts and fencing are the story.
        "txn-state" => event.detail["to"].as_str().is_some_and(|to| {
            !matches!(to, "Empty" | "Ongoing" | "PrepareCommit" | "CompleteCommit")
        }),
        "append"
        | "replica-append"
        | "txn-marker"
        | "hw"
        | "listening"
        | "raft-hw"
        | "raft-restored"
        | "raft-propose-dropped" => false,
        _ => true,
    }
}

pub fn describe(event: &TraceEvent) -> String {
    let d = &event.detail;
    let node = d["node"].as_str().unwrap_or(&event.node);
    match event.kind.as_str() {
        "crash" => {
            let mut text = format!("{node} crashed (machine failure)");
            let files = d["disk"]["files"].as_array().unwrap_or_default();
            let lost: Vec<String> = files
                .iter()
                .filter(|f| f["lost_bytes"].as_u64().unwrap_or(0) > 0)
                .map(|f| {
                    let torn = if f["torn"].is_object() {
                        ", the last write torn"
                    } else {
                        ""
                    };
                    format!(
                        "{} lost {} bytes{}",
                        f["path"].as_str().unwrap_or("?"),
                        f["lost_bytes"],
                        torn
                    )
                })
                .collect();
            if lost.is_empty() {
                text.push_str("; its disk lost nothing (all was fsynced or written back)");
            } else {
                let _ = write!(
                    text,
                    "; not yet fsynced nor written back: {}",
                    lost.join("; ")
                );
            }
            text
        }
        "kill" => format!("{node} was killed (the process died; the page cache survives)"),
        "restart" => format!("{node} restarted"),
        "wipe" => format!("{node} came back with an empty disk"),
        "pause" => format!("{node} paused"),
        "resume" => format!("{node} resumed"),
        "recovered" => {
            let cut = d["truncated_bytes"].as_u64().unwrap_or(0);
            let mut text = format!(
                "{} opened {} at log end offset {}",
                event.node,
                d["partition"].as_str().unwrap_or("?"),
                d["leo"]
            );
            if cut > 0 {
                let _ = write!(
                    text,
                    ", cutting {cut} bytes: {}",
                    d["reason"].as_str().unwrap_or("invalid tail")
                );
            }
            text
        }
        "txn-state" => format!(
            "{}'s transaction (producer {}, epoch {}) goes from {} to {}",
            d["transactional_id"].as_str().unwrap_or("?"),
            d["pid"],
            d["epoch"],
            d["from"].as_str().unwrap_or("?"),
            d["to"].as_str().unwrap_or("?")
        ),
        "shut-down" => format!("{} shut down cleanly", event.node),
        "stopped" => format!(
            "{} stopped: {}",
            event.node,
            d["error"].as_str().unwrap_or("?")
        ),
        "raft-role" => {
            let role = d["role"].as_str().unwrap_or("?");
            let epoch = &d["epoch"];
            match (role, d["leader"].as_i64()) {
                ("follower", Some(leader)) => {
                    format!("{} follows node {leader} in epoch {epoch}", event.node)
                }
                _ => format!("{} is {role} in epoch {epoch}", event.node),
            }
        }
        "raft-truncate" => format!("{} cut its metadata log to offset {}", event.node, d["to"]),
        "broker-registered" => format!(
            "broker {} registered (broker epoch {}), fenced until it catches up",
            d["broker"], d["epoch"]
        ),
        "broker-fenced" => format!(
            "broker {} fenced: out of every ISR, its leaderships moved",
            d["broker"]
        ),
        "broker-unfenced" => format!("broker {} unfenced", d["broker"]),
        "topic-created" => format!("topic {} created", d["topic"].as_str().unwrap_or("?")),
        "topic-removed" => format!("topic {} deleted", d["topic"].as_str().unwrap_or("?")),
        "partition-state" => {
            let unclean = if d["unclean"] == true {
                " (UNCLEAN: elected from outside the ISR)"
            } else {
                ""
            };
            format!(
                "{}: leader {} in epoch {}, ISR {}, replicas {}{unclean}",
                d["partition"].as_str().unwrap_or("?"),
                d["leader"],
                d["leader_epoch"],
                d["isr"],
                d["replicas"]
            )
        }
        "partition-role" => format!(
            "{} is {} of {} in leader epoch {}",
            event.node,
            d["role"].as_str().unwrap_or("?"),
            d["partition"].as_str().unwrap_or("?"),
            d["leader_epoch"]
        ),
        "replica-append" => format!(
            "{} fetched offsets {} to {} of {} from its leader (log end {}, high watermark {})",
            event.node,
            d["first"],
            d["last"],
            d["partition"].as_str().unwrap_or("?"),
            d["leo"],
            d["hw"]
        ),
        "hw" => format!(
            "{}'s high watermark of {} is {} ({} in leader epoch {}, log end {})",
            event.node,
            d["partition"].as_str().unwrap_or("?"),
            d["hw"],
            d["role"].as_str().unwrap_or("?"),
            d["leader_epoch"],
            d["leo"]
        ),
        "truncate" => format!(
            "{} cut its log of {} from offset {} to {} ({}; its high watermark was {})",
            event.node,
            d["partition"].as_str().unwrap_or("?"),
            d["from"],
            d["to"],
            d["reason"].as_str().unwrap_or("?"),
            d["hw"]
        ),
        "isr-proposed" => format!(
            "{} proposes ISR {} for {} (was {}: {})",
            event.node,
            d["isr"],
            d["partition"].as_str().unwrap_or("?"),
            d["from"],
            d["reason"].as_str().unwrap_or("?")
        ),
        "isr-refused" => format!(
            "the controller refused {}'s ISR change for {} (error code {})",
            event.node,
            d["partition"].as_str().unwrap_or("?"),
            d["error"]
        ),
        "partition-removed" => format!(
            "{} deleted its replica of {}",
            event.node,
            d["partition"].as_str().unwrap_or("?")
        ),
        "auto-create" => format!(
            "{} asks the controller to create topic {}",
            event.node,
            d["topic"].as_str().unwrap_or("?")
        ),
        "partition" => format!("the network splits into {}", d["groups"]),
        "isolate" => format!("{node} is cut off from every other node"),
        "heal" => "the network heals".to_string(),
        "healed" => format!(
            "every fault is undone; writes must resume within {}",
            seconds(d["recovery_ms"].as_u64().unwrap_or(0))
        ),
        "clog-link" => format!(
            "the network drops what {} sends to {}",
            d["from"].as_str().unwrap_or("?"),
            d["to"].as_str().unwrap_or("?")
        ),
        "controlled-shutdown" => format!(
            "{node} stops cleanly (controlled shutdown): the controller moves its leaderships away first"
        ),
        "loss" => format!("the network loses {} of its packets", d["rate"]),
        "delay" => format!(
            "{node}'s {} requests are held for {}",
            d["api"].as_str().unwrap_or("?"),
            seconds(d["by_ms"].as_u64().unwrap_or(0))
        ),
        "undelay" => format!(
            "{node}'s {} requests go out at once again",
            d["api"].as_str().unwrap_or("?")
        ),
        "slow-disk" => format!("{node}'s disk slows down {} times", d["factor"]),
        "disk-full" if d["full"] == false => format!("{node}'s disk has room again"),
        "disk-full" => format!("{node}'s disk is full"),
        "clock-skew" => format!("{node}'s clock is skewed by {} ms", d["skew_ms"]),
        "corrupt" => format!("bytes of a file on {node}'s disk are flipped"),
        "faults-not-fired" => format!(
            "the run ended before the faults at lines {} of the scenario fired (a `when` that never held?)",
            d["lines"]
        ),
        _ => format!(
            "{} {} {}",
            event.node,
            event.kind,
            if d.is_null() {
                String::new()
            } else {
                d.to_string()
            }
        ),
    }
}

/// The most events the timeline lists one by one: a long busy run (600 s of a group committing
/// after every poll) would otherwise write a report of tens of megabytes.
const TIMELINE_MAX: usize = 2_000;

fn timeline(out: &mut String, trace: &[TraceEvent]) {
    let _ = writeln!(out, "## Timeline\n");
    let mut events: Vec<&TraceEvent> = trace.iter().filter(|e| notable(e)).collect();
    if events.is_empty() {
        let _ = writeln!(out, "Nothing happened but the workload.");
    }
    // Too many to read: the offset commits (a group's members commit after every poll) are
    // counted instead, then the rest cut at the cap.
    let mut commits = 0;
    if events.len() > TIMELINE_MAX {
        let before = events.len();
        events.retain(|e| e.kind != "offset-commit");
        commits = before - events.len();
    }
    for event in events.iter().take(TIMELINE_MAX) {
        let _ = writeln!(out, "- {} — {}", seconds(event.at_ms), describe(event));
    }
    if events.len() > TIMELINE_MAX {
        let _ = writeln!(
            out,
            "- … and {} more events (all in trace.jsonl)",
            events.len() - TIMELINE_MAX
        );
    }
    if commits > 0 {
        let _ = writeln!(
            out,
            "- {commits} offset commits, not listed one by one (all in trace.jsonl)"
        );
    }
    out.push('\n');
}

#[derive(Default)]
struct ClientTally {
    sends: [usize; 3],
    polls: usize,
    records_read: usize,
}

fn clients(out: &mut String, history: &[Op]) {
    let mut tally: BTreeMap<&str, ClientTally> = BTreeMap::new();
    for op in history {
        let t = tally.entry(op.process.as_str()).or_default();
        match (op.f.as_str(), op.kind) {
            ("send", OpType::Ok) => t.sends[0] += 1,
            ("send", OpType::Fail) => t.sends[1] += 1,
            ("send", OpType::Info) => t.sends[2] += 1,
            ("poll", OpType::Ok) => {
                t.polls += 1;
                t.records_read += op.value["records"].as_array().map_or(0, <[_]>::len);
            }
            _ => {}
        }
    }
    let _ = writeln!(out, "## Clients\n");
    let _ = writeln!(out, "| client | sends ok | failed | unknown (info) | polls | records read |\n| --- | --- | --- | --- | --- | --- |");
    for (process, t) in tally {
        let _ = writeln!(
            out,
            "| {process} | {} | {} | {} | {} | {} |",
            t.sends[0], t.sends[1], t.sends[2], t.polls, t.records_read
        );
    }
    out.push('\n');
}

fn partitions(out: &mut String, r: &ReportInput) {
    let mut acked: BTreeMap<&str, usize> = BTreeMap::new();
    for op in r
        .history
        .iter()
        .filter(|op| op.f == "send" && op.kind == OpType::Ok)
    {
        if let Some(p) = op.value["partition"].as_str() {
            *acked.entry(p).or_default() += 1;
        }
    }
    let _ = writeln!(out, "## Partitions at the end\n");
    let _ = writeln!(out, "| partition | log start | high watermark | records | writes acknowledged |\n| --- | --- | --- | --- | --- |");
    for (name, p) in &r.final_state.partitions {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} |",
            p.log_start_offset,
            p.high_watermark,
            p.committed.len(),
            acked.get(name.as_str()).copied().unwrap_or(0)
        );
    }
    out.push('\n');
}

fn violations(out: &mut String, r: &ReportInput) {
    let _ = writeln!(out, "## Violations\n");
    if r.violations.is_empty() {
        let _ = writeln!(out, "None.");
        return;
    }
    let by_check = by_check_and_partition(r.violations);
    for ((check, partition), list) in by_check {
        let where_ = partition.map(|p| format!(" on {p}")).unwrap_or_default();
        let _ = writeln!(out, "### `{check}`{where_}: {} found\n", list.len());
        for v in list.iter().take(LISTED_PER_CHECK) {
            let _ = writeln!(out, "- {} — {}", seconds(v.at_ms), v.detail);
        }
        if list.len() > LISTED_PER_CHECK {
            let _ = writeln!(
                out,
                "- … and {} more (all in summary.json)",
                list.len() - LISTED_PER_CHECK
            );
        }
        out.push('\n');
        story_section(out, &first_story(&list, r));
        out.push('\n');
    }
}

/// Whether an event bears on a partition's violations: faults do, and events of that partition.
pub(crate) fn concerns(event: &TraceEvent, partition: Option<&str>) -> bool {
    match (
        event
            .detail
            .get("partition")
            .and_then(crate::val::Val::as_str),
        partition,
    ) {
        (Some(p), Some(q)) => p == q,
        _ => true,
    }
}

/// A run's violations by check and partition, in the order the reports list them.
pub fn by_check_and_partition(
    violations: &[Violation],
) -> BTreeMap<(&str, Option<&str>), Vec<&Violation>> {
    let mut groups: BTreeMap<(&str, Option<&str>), Vec<&Violation>> = BTreeMap::new();
    for v in violations {
        groups
            .entry((v.check.as_str(), v.partition.as_deref()))
            .or_default()
            .push(v);
    }
    groups
}

/// One story per check and partition, in the order the report lists them: (check, partition,
/// how many violations, the story of the first).
pub fn stories(r: &ReportInput) -> Vec<(String, Option<String>, usize, Story)> {
    let by_check = by_check_and_partition(r.violations);
    by_check
        .into_iter()
        .map(|((check, partition), list)| {
            let story = first_story(&list, r);
            (
                check.to_string(),
                partition.map(str::to_string),
                list.len(),
                story,
            )
        })
        .collect()
}

/// The story of a group's first violation: the earliest, and of those the lowest offset.
pub fn first_story(list: &[&Violation], r: &ReportInput) -> Story {
    /// Stories computed to choose among violations found at the same moment.
    const CANDIDATES: usize = 40;
    let first_ms = list.iter().map(|v| v.at_ms).min().unwrap_or(0);
    list.iter()
        .filter(|v| v.at_ms == first_ms)
        .take(CANDIDATES)
        .map(|v| chain(v, r.history, r.trace))
        .min_by_key(|s| s.subject.offset.unwrap_or(i64::MAX))
        .unwrap_or_else(|| Story {
            check: String::new(),
            headline: String::new(),
            subject: Default::default(),
            steps: Vec::new(),
            cause: None,
        })
}

/// A story in markdown: its headline, the record, then each step, the cause in bold.
pub fn story_section(out: &mut String, story: &Story) {
    if story.steps.is_empty() {
        return;
    }
    let _ = writeln!(out, "**How it happened** — {}.\n", story.headline);
    let s = &story.subject;
    let mut named = Vec::new();
    if let Some(value) = &s.value {
        named.push(format!("value `{value}`"));
    }
    if let Some(key) = &s.key {
        named.push(format!("key `{key}`"));
    }
    if let (Some(p), Some(o)) = (&s.partition, s.offset) {
        named.push(format!("{p} offset {o}"));
    }
    if let Some(process) = &s.process {
        named.push(format!("by {process}"));
    }
    if !named.is_empty() {
        let _ = writeln!(out, "The record: {}.\n", named.join(", "));
    }
    for (i, step) in story.steps.iter().enumerate() {
        if story.cause == Some(i) {
            let _ = writeln!(
                out,
                "- {} — **{}** ← the cause",
                seconds(step.at_ms),
                step.text
            );
        } else {
            let _ = writeln!(out, "- {} — {}", seconds(step.at_ms), step.text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at_ms: u64, node: &str, kind: &str, detail: serde_json::Value) -> TraceEvent {
        TraceEvent {
            at_ms,
            node: node.to_string(),
            kind: kind.to_string(),
            detail: serde_json::from_value(detail).expect("a detail"),
        }
    }

    fn report(trace: &[TraceEvent]) -> String {
        markdown(&ReportInput {
            scenario: "planted",
            summary: "",
            seed: 1,
            outcome: "pass",
            digest: 0,
            sim_ms: 600_000,
            reproduce: "",
            expected: &[],
            allowed: &[],
            violations: &[],
            history: &[],
            trace,
            final_state: &FinalState::default(),
        })
    }

    /// A long run of a group committing after every poll: the commits are counted, the faults
    /// still listed, and the report stays small.
    #[test]
    fn a_busy_timeline_counts_its_offset_commits_instead_of_listing_them() {
        let commit = |at_ms| {
            let detail = serde_json::json!({"group": "g1", "partition": "events-0", "offset": at_ms, "generation": 1, "member": "c-1"});
            event(at_ms, "broker-2", "offset-commit", detail)
        };
        let mut trace: Vec<TraceEvent> = (0..50_000).map(commit).collect();
        trace.insert(
            25_000,
            event(
                25_000,
                "world",
                "kill",
                serde_json::json!({"node": "broker-1"}),
            ),
        );
        let text = report(&trace);
        assert!(text.contains("broker-1 was killed"), "the fault is listed");
        assert!(text.contains("50000 offset commits, not listed one by one"));
        assert!(text.len() < 100_000, "{} bytes", text.len());

        // A short run lists every commit.
        let text = report(&trace[..100]);
        assert_eq!(text.matches("offset-commit").count(), 100, "{text}");
    }
}
