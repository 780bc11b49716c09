//! What the clients saw (`history.jsonl`) and what the cluster did (`trace.jsonl`), recorded in
//! one ordered journal whose digest identifies the run.
//!
//! The history follows Jepsen's model: a client *invokes* an operation, which completes `ok`,
//! `fail` (it certainly did not happen) or `info` (unknown: a timeout is always `info`).

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::val::Val;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// One line of `history.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub process: String,
    #[serde(rename = "type")]
    pub kind: OpType,
    /// The operation: `send`, `poll`, …
    pub f: String,
    pub value: Val,
    pub at_ms: u64,
}

/// One line of `trace.jsonl`: a cluster event that matters for understanding the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    pub at_ms: u64,
    /// The node it happened on (`broker-1`, `world` for faults).
    pub node: String,
    /// What happened: `crash`, `restart`, `append`, `truncate`, `recovered`, `hw`, …
    pub kind: String,
    #[serde(default, skip_serializing_if = "Val::is_null")]
    pub detail: Val,
}

/// One entry of the journal, as a live sink sees it.
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    Op(&'a Op),
    Event(&'a TraceEvent),
}

/// Called with every entry as it is recorded (`samsa explain` narrates the run with it). It
/// runs on the simulation's thread, inside the recording, so it must not record anything; it
/// may block (simulated time does not move meanwhile). It cannot change the digest.
pub type Sink = Box<dyn FnMut(Entry) + Send>;

#[derive(Default)]
struct SinkSlot(Option<Sink>);

impl std::fmt::Debug for SinkSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(sink)"
        } else {
            "None"
        })
    }
}

/// Records history and trace in order, and digests every entry as it is recorded.
#[derive(Debug, Default)]
pub struct Journal {
    pub history: Vec<Op>,
    pub trace: Vec<TraceEvent>,
    digest: Digest,
    /// The text of the entry being digested, kept between entries to save the allocation.
    line: Vec<u8>,
    sink: SinkSlot,
}

impl Journal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends every entry recorded from now on to `sink` too.
    pub fn set_sink(&mut self, sink: Sink) {
        self.sink = SinkSlot(Some(sink));
    }

    pub fn op(&mut self, op: Op) {
        self.digest.write(b"h");
        self.line.clear();
        crate::json_text::write_op(&mut self.line, &op);
        self.digest.write(&self.line);
        if let Some(sink) = &mut self.sink.0 {
            sink(Entry::Op(&op));
        }
        self.history.push(op);
    }

    pub fn event(&mut self, event: TraceEvent) {
        self.digest.write(b"t");
        self.line.clear();
        crate::json_text::write_event(&mut self.line, &event);
        self.digest.write(&self.line);
        if let Some(sink) = &mut self.sink.0 {
            sink(Entry::Event(&event));
        }
        self.trace.push(event);
    }

    /// Mixes in anything else that must be identical between two runs of a seed.
    pub fn digest_extra(&mut self, bytes: &[u8]) {
        self.digest.write(bytes);
    }

    pub fn digest(&self) -> u64 {
        self.digest.finish()
    }

    pub fn history_jsonl(&self) -> String {
        to_jsonl(&self.history, crate::json_text::write_op)
    }

    pub fn trace_jsonl(&self) -> String {
        to_jsonl(&self.trace, crate::json_text::write_event)
    }
}

fn to_jsonl<T>(items: &[T], write: fn(&mut Vec<u8>, &T)) -> String {
    let mut out = Vec::new();
    for item in items {
        write(&mut out, item);
        out.push(b'\n');
    }
    String::from_utf8(out).expect("JSON text is UTF-8")
}

/// Reads a `history.jsonl` back (for `samsa check`).
pub fn parse_history(text: &str) -> Result<Vec<Op>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}
