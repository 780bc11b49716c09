//! The run's recorder: every trace event and history operation goes into the journal, stamped
//! with the run's simulated time, and the figures that `when` conditions read are kept current.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use samsa_sim::history::{Journal, Op, OpType, TraceEvent};
use serde_json::Value;
use tokio::sync::Notify;

use crate::world::{Clock, Recorder};

/// One replica's offsets as last reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaFigures {
    pub leo: i64,
    pub hw: i64,
}

/// The figures of the cluster that conditions compare.
#[derive(Debug, Default)]
pub struct Figures {
    /// Writes acknowledged, per producer.
    pub acked: BTreeMap<String, i64>,
    /// Per partition name, per broker id.
    pub replicas: BTreeMap<String, BTreeMap<i32, ReplicaFigures>>,
    /// Each controller's last reported (epoch, role).
    pub controller_roles: BTreeMap<String, (i64, String)>,
}

pub struct RunRecorder {
    pub journal: Mutex<Journal>,
    pub figures: Mutex<Figures>,
    /// Woken after every recorded entry, so `when` conditions are re-evaluated at once.
    pub changed: Notify,
    clock: Clock,
}

impl RunRecorder {
    pub fn new(clock: Clock) -> Arc<Self> {
        Arc::new(RunRecorder {
            journal: Mutex::new(Journal::new()),
            figures: Mutex::new(Figures::default()),
            changed: Notify::new(),
            clock,
        })
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.elapsed_ms()
    }

    fn update_figures(&self, node: &str, kind: &str, detail: &Value) {
        if kind == "raft-role" {
            let role = detail["role"].as_str().unwrap_or("unknown").to_string();
            let epoch = detail["epoch"].as_i64().unwrap_or(0);
            let mut figures = self.figures.lock().expect("figures lock");
            figures
                .controller_roles
                .insert(node.to_string(), (epoch, role));
            return;
        }
        if !matches!(kind, "append" | "recovered" | "hw" | "truncate") {
            return;
        }
        let (Some(partition), Some(broker)) =
            (detail["partition"].as_str(), detail["broker"].as_i64())
        else {
            return;
        };
        let mut figures = self.figures.lock().expect("figures lock");
        let replica = figures
            .replicas
            .entry(partition.to_string())
            .or_default()
            .entry(broker as i32)
            .or_default();
        if let Some(leo) = detail["leo"].as_i64() {
            replica.leo = leo;
        }
        if let Some(hw) = detail["hw"].as_i64() {
            replica.hw = hw;
        }
    }
}

impl Recorder for RunRecorder {
    fn event(&self, node: &str, kind: &str, detail: Value) {
        self.update_figures(node, kind, &detail);
        let event = TraceEvent {
            at_ms: self.now_ms(),
            node: node.to_string(),
            kind: kind.to_string(),
            detail,
        };
        self.journal.lock().expect("journal lock").event(event);
        self.changed.notify_waiters();
    }

    fn op(&self, process: &str, kind: OpType, f: &str, value: Value) {
        if kind == OpType::Ok && f == "send" {
            *self
                .figures
                .lock()
                .expect("figures lock")
                .acked
                .entry(process.to_string())
                .or_default() += 1;
        }
        let op = Op {
            process: process.to_string(),
            kind,
            f: f.to_string(),
            value,
            at_ms: self.now_ms(),
        };
        self.journal.lock().expect("journal lock").op(op);
        self.changed.notify_waiters();
    }
}
