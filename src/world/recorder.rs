//! Where the cluster reports what it did (trace events) and the clients what they saw (history
//! operations). Under simulation the run's journal records both; a real deployment logs them.

use std::sync::Arc;

use serde_json::Value;

use samsa_sim::history::OpType;
use samsa_sim::val::Val;

pub trait Recorder: Send + Sync {
    /// A cluster event: `kind` is a short name (`append`, `recovered`, `crash`), `detail` its facts.
    fn event(&self, node: &str, kind: &str, detail: Value);
    /// A client operation: invoke, then ok, fail or info.
    fn op(&self, process: &str, kind: OpType, f: &str, value: Value);
    /// `event` with the detail already compact (`samsa_sim::val!`): what the frequent events
    /// (appends, high watermarks) use, sparing a `serde_json::Value` per event.
    fn event_val(&self, node: &str, kind: &str, detail: Val) {
        self.event(node, kind, detail.to_value())
    }
    /// `op` with the value already compact.
    fn op_val(&self, process: &str, kind: OpType, f: &str, value: Val) {
        self.op(process, kind, f, value.to_value())
    }
}

/// A recorder that keeps nothing (tests, and a real broker until it has a log of its own).
pub struct NullRecorder;

impl Recorder for NullRecorder {
    fn event(&self, _node: &str, _kind: &str, _detail: Value) {}
    fn op(&self, _process: &str, _kind: OpType, _f: &str, _value: Value) {}
    fn event_val(&self, _node: &str, _kind: &str, _detail: Val) {}
    fn op_val(&self, _process: &str, _kind: OpType, _f: &str, _value: Val) {}
}

pub type SharedRecorder = Arc<dyn Recorder>;
