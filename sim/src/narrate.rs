//! The narrative `samsa explain` prints as a run goes: one line per event a person follows
//! (faults, elections, ISR changes, truncations, fencing), with the chatty ones (appends,
//! fetches, high-watermark moves, acknowledgements, offset commits, transaction markers)
//! coalesced into one "meanwhile" line between them.

use std::collections::BTreeMap;

use crate::history::{Entry, Op, OpType, TraceEvent};
use crate::report::{describe, seconds};
use crate::story::{Step, Story};

/// What happened quietly since the last line: per partition its leader's log end and high
/// watermark, per client its acknowledged and failed sends, and counts of the rest.
#[derive(Default)]
struct Quiet {
    /// Partition → (log end, high watermark), as its leader last traced them.
    partitions: BTreeMap<String, (i64, i64)>,
    /// Client → (sends acknowledged, sends failed or unknown, records polled).
    clients: BTreeMap<String, (u64, u64, u64)>,
    commits: u64,
    markers: u64,
}

impl Quiet {
    /// The meanwhile line; `None` when nothing worth saying happened.
    fn line(&self) -> Option<String> {
        let mut parts = Vec::new();
        for (name, (leo, hw)) in &self.partitions {
            parts.push(format!("{name} log end {leo}, high watermark {hw}"));
        }
        for (client, (ok, failed, polled)) in &self.clients {
            let mut said = Vec::new();
            if *ok > 0 {
                said.push(format!("{ok} acknowledged"));
            }
            if *failed > 0 {
                said.push(format!("{failed} failed or unknown"));
            }
            if *polled > 0 {
                said.push(format!("{polled} records polled"));
            }
            if !said.is_empty() {
                parts.push(format!("{client}: {}", said.join(", ")));
            }
        }
        if self.commits > 0 {
            parts.push(format!("{} offset commits", self.commits));
        }
        if self.markers > 0 {
            parts.push(format!("{} transaction markers", self.markers));
        }
        (!parts.is_empty()).then(|| format!("           … meanwhile: {}", parts.join("; ")))
    }
}

/// Turns journal entries into lines. Keeps what it needs to coalesce and to tell a new
/// leadership from a repeated one.
#[derive(Default)]
pub struct Narrator {
    quiet: Quiet,
    /// The cluster is up once the scenario's topics exist: what comes before is told as one line.
    started: bool,
    /// Partition → (leader, leader epoch, ISR) as last told.
    leadership: BTreeMap<String, String>,
    /// The active controller as last told.
    controller: Option<String>,
}

/// One line of the narrative, and whether it is a fault (where `--pause` stops).
pub struct Line {
    pub text: String,
    pub fault: bool,
}

impl Narrator {
    pub fn new() -> Self {
        Self::default()
    }

    /// The lines an entry adds: none for a chatty one, the meanwhile line and its own for one
    /// a person follows.
    pub fn entry(&mut self, entry: Entry) -> Vec<Line> {
        let told = match entry {
            Entry::Op(op) => {
                self.op(op);
                None
            }
            Entry::Event(event) => self.event(event),
        };
        let Some((at_ms, text, fault)) = told else {
            return Vec::new();
        };
        let mut lines = self.flush();
        lines.push(Line {
            text: format!("{:>10} {text}", seconds(at_ms)),
            fault,
        });
        lines
    }

    /// The meanwhile line, if anything happened quietly since the last.
    pub fn flush(&mut self) -> Vec<Line> {
        if !self.started {
            return Vec::new();
        }
        let text = std::mem::take(&mut self.quiet).line();
        text.map(|text| Line { text, fault: false })
            .into_iter()
            .collect()
    }

    fn op(&mut self, op: &Op) {
        let tally = self.quiet.clients.entry(op.process.clone()).or_default();
        match (op.f.as_str(), op.kind) {
            ("send", OpType::Ok) => tally.0 += 1,
            ("send", OpType::Fail | OpType::Info) => tally.1 += 1,
            ("poll", OpType::Ok) => {
                tally.2 += op.value["records"].as_array().map_or(0, <[_]>::len) as u64;
            }
            _ => {}
        }
    }

    /// (time, text, is a fault) for an event a person follows; `None` for the rest.
    fn event(&mut self, e: &TraceEvent) -> Option<(u64, String, bool)> {
        let d = &e.detail;
        let partition = d["partition"].as_str().unwrap_or("?").to_string();
        let internal_event = matches!(
            e.kind.as_str(),
            "isr-proposed"
                | "isr-refused"
                | "truncate"
                | "recovered"
                | "topic-created"
                | "topic-removed"
        ) && (internal(&partition)
            || internal(d["topic"].as_str().unwrap_or("")));
        if internal_event {
            return None;
        }
        let text = match e.kind.as_str() {
            "topics-created" => {
                self.started = true;
                format!(
                    "the cluster is up: {} active, brokers registered, the scenario's topics created",
                    self.controller.as_deref().unwrap_or("a controller")
                )
            }
            _ if e.node == "world" => return Some((e.at_ms, describe(e), true)),
            "append" | "hw" => {
                if d["role"] != "follower" && !internal(&partition) {
                    let entry = self.quiet.partitions.entry(partition).or_default();
                    entry.0 = d["leo"].as_i64().unwrap_or(entry.0);
                    entry.1 = d["hw"].as_i64().unwrap_or(entry.1);
                }
                return None;
            }
            "offset-commit" => {
                self.quiet.commits += 1;
                return None;
            }
            "txn-marker" => {
                self.quiet.markers += 1;
                return None;
            }
            "raft-role" if d["role"] == "leader" => {
                let who = e.node.clone();
                let first = self.controller.replace(who.clone()).is_none();
                if first && !self.started {
                    return None;
                }
                format!("{who} is now the active controller (epoch {})", d["epoch"])
            }
            "partition-state" => {
                let leadership = format!("{} {}", d["leader"], d["leader_epoch"]);
                let now = format!("{leadership} {}", d["isr"]);
                let before = self.leadership.insert(partition.clone(), now.clone());
                if before.as_ref() == Some(&now) || !self.started || internal(&partition) {
                    return None;
                }
                if before.is_some_and(|b| b.starts_with(&format!("{leadership} "))) {
                    format!(
                        "the ISR of {partition} is now {} (leader broker-{} in epoch {})",
                        d["isr"], d["leader"], d["leader_epoch"]
                    )
                } else {
                    crate::story::election_sentence(e)
                }
            }
            "truncate" => format!(
                "{} truncated {partition} from offset {} to {}: {}",
                e.node,
                d["from"],
                d["to"],
                crate::story::truncation_sentence(e)
            ),
            "recovered" if self.started => {
                if d["leo"].as_i64().unwrap_or(0) == 0
                    && d["truncated_bytes"].as_u64().unwrap_or(0) == 0
                {
                    return None;
                }
                describe(e)
            }
            "broker-fenced" | "broker-unfenced" | "isr-proposed" | "isr-refused" | "stopped"
            | "shut-down" | "topic-created" | "topic-removed"
                if self.started =>
            {
                describe(e)
            }
            _ => return None,
        };
        Some((e.at_ms, text, false))
    }
}

/// A story as terminal lines: the headline, the record, each step (the cause marked).
pub fn story_lines(story: &Story, full: bool) -> Vec<String> {
    let mut lines = vec![format!("  {}.", story.headline)];
    let step_line = |s: &Step, mark: &str| format!("  {:>10} {mark}{}", seconds(s.at_ms), s.text);
    if full {
        for (i, s) in story.steps.iter().enumerate() {
            let mark = if story.cause == Some(i) {
                "CAUSE: "
            } else {
                ""
            };
            lines.push(step_line(s, mark));
        }
    } else if let Some(cause) = story.cause_step() {
        lines.push(step_line(cause, "CAUSE: "));
    }
    lines
}

/// Kafka's internal topics (`__consumer_offsets`, `__transaction_state`): their leaderships and
/// growth are the coordinators' business, not the story of the scenario's data.
fn internal(name: &str) -> bool {
    name.starts_with("__")
}
