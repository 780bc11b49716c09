//! The run's recorder: every trace event and history operation goes into the journal, stamped
//! with the run's simulated time, and the figures that `when` conditions read are kept current.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use samsa_sim::history::{Journal, Op, OpType, TraceEvent};
use samsa_sim::val::Val;
use serde_json::Value;
use tokio::sync::Notify;

use crate::world::{Clock, Recorder};

/// One replica's offsets as last reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaFigures {
    pub leo: i64,
    pub hw: i64,
}

/// One partition's state as the active controller last committed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionFigures {
    pub topic_id: String,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// -1 when offline.
    pub leader: i32,
    pub leader_epoch: i64,
    pub partition_epoch: i64,
    /// The last broker that led it (the final state reads its log).
    pub last_leader: Option<i32>,
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
    /// Every partition of the committed metadata, by name (`orders-0`).
    pub partitions: BTreeMap<String, PartitionFigures>,
    /// Partitions whose topic was deleted, with when the last broker holding one dropped it.
    pub deleted: BTreeMap<String, u64>,
    /// The brokers the committed metadata has registered and unfenced.
    pub unfenced: std::collections::BTreeSet<i64>,
    /// The highest metadata offset whose event the figures took.
    pub metadata_offset: Option<i64>,
    /// Each group's committed offset per partition, as its coordinator last committed it.
    pub committed: BTreeMap<(String, String), i64>,
}

impl Figures {
    /// A committed `partition-state` event (controllers trace each partition's state as its
    /// change commits, in log order).
    fn partition_committed(&mut self, detail: &Val) {
        let Some(name) = detail["partition"].as_str() else {
            return;
        };
        let ints = |key: &str| -> Vec<i32> {
            detail[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_i64())
                        .map(|v| v as i32)
                        .collect()
                })
                .unwrap_or_default()
        };
        let topic_id = detail["topic_id"].as_str().unwrap_or_default().to_string();
        let previous = self.partitions.get(name).filter(|p| p.topic_id == topic_id);
        let leader = detail["leader"].as_i64().unwrap_or(-1) as i32;
        let last_leader = if leader >= 0 {
            Some(leader)
        } else {
            previous.and_then(|p| p.last_leader)
        };
        self.partitions.insert(
            name.to_string(),
            PartitionFigures {
                topic_id,
                replicas: ints("replicas"),
                isr: ints("isr"),
                leader,
                leader_epoch: detail["leader_epoch"].as_i64().unwrap_or(0),
                partition_epoch: detail["partition_epoch"].as_i64().unwrap_or(0),
                last_leader,
            },
        );
    }

    /// Whether a controller's event of the committed metadata at `offset` is news: a
    /// controller that becomes leader may trace again records an earlier leader traced (a
    /// restarted one, all of them), and the figures must not go back in time.
    fn is_new_metadata(&mut self, detail: &Val) -> bool {
        let Some(offset) = detail["offset"].as_i64() else {
            return false;
        };
        if self.metadata_offset.is_some_and(|seen| offset <= seen) {
            return false;
        }
        self.metadata_offset = Some(offset);
        true
    }

    /// A committed `topic-removed` event: its partitions are gone.
    fn topic_removed(&mut self, detail: &Val, now_ms: u64) {
        let Some(topic_id) = detail["topic_id"].as_str() else {
            return;
        };
        let gone: Vec<String> = self
            .partitions
            .iter()
            .filter(|(_, p)| p.topic_id == topic_id)
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            self.partitions.remove(&name);
            self.deleted.insert(name, now_ms);
        }
    }
}

pub struct RunRecorder {
    pub journal: Mutex<Journal>,
    pub figures: Mutex<Figures>,
    /// Woken after every recorded entry, so `when` conditions are re-evaluated at once.
    pub changed: Notify,
    clock: Clock,
    /// Set when the run's time is up: what tasks still do in that last instant (madsim may
    /// poll them after the run's own task returns, or not) is not part of the run.
    closed: std::sync::atomic::AtomicBool,
}

impl RunRecorder {
    pub fn new(clock: Clock) -> Arc<Self> {
        Arc::new(RunRecorder {
            journal: Mutex::new(Journal::new()),
            figures: Mutex::new(Figures::default()),
            changed: Notify::new(),
            clock,
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The run is over: nothing more is recorded.
    pub fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.elapsed_ms()
    }

    fn update_figures(&self, node: &str, kind: &str, detail: &Val) {
        let metadata_event = matches!(
            kind,
            "broker-registered"
                | "broker-fenced"
                | "broker-unfenced"
                | "broker-controlled-shutdown"
                | "topic-created"
                | "topic-removed"
                | "partition-state"
                | "config"
        );
        if metadata_event
            && !self
                .figures
                .lock()
                .expect("figures lock")
                .is_new_metadata(detail)
        {
            return;
        }
        if matches!(
            kind,
            "broker-registered" | "broker-fenced" | "broker-unfenced"
        ) {
            let mut figures = self.figures.lock().expect("figures lock");
            let broker = detail["broker"].as_i64().unwrap_or(-1);
            if kind == "broker-unfenced" {
                figures.unfenced.insert(broker);
            } else {
                figures.unfenced.remove(&broker);
            }
            return;
        }
        if kind == "partition-removed" {
            // A broker dropped its replica of a deleted topic: until then it could still
            // acknowledge writes to it (deletion reaches brokers as they replay the metadata).
            let mut figures = self.figures.lock().expect("figures lock");
            let name = detail["partition"].as_str().unwrap_or_default();
            if !figures.partitions.contains_key(name) {
                if let Some(deleted_ms) = figures.deleted.get_mut(name) {
                    *deleted_ms = self.clock.elapsed_ms();
                }
            }
            return;
        }
        if kind == "partition-state" || kind == "topic-removed" {
            let mut figures = self.figures.lock().expect("figures lock");
            if kind == "partition-state" {
                figures.partition_committed(detail);
            } else {
                figures.topic_removed(detail, self.now_ms());
            }
            return;
        }
        if kind == "offset-commit" {
            let (Some(group), Some(partition), Some(offset)) = (
                detail["group"].as_str(),
                detail["partition"].as_str(),
                detail["offset"].as_i64(),
            ) else {
                return;
            };
            let mut figures = self.figures.lock().expect("figures lock");
            figures
                .committed
                .insert((group.to_string(), partition.to_string()), offset);
            return;
        }
        if kind == "raft-role" {
            let role = detail["role"].as_str().unwrap_or("unknown").to_string();
            let epoch = detail["epoch"].as_i64().unwrap_or(0);
            let mut figures = self.figures.lock().expect("figures lock");
            figures
                .controller_roles
                .insert(node.to_string(), (epoch, role));
            return;
        }
        if !matches!(
            kind,
            "append" | "replica-append" | "recovered" | "hw" | "truncate"
        ) {
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
        self.event_val(node, kind, Val::from(detail));
    }

    fn op(&self, process: &str, kind: OpType, f: &str, value: Value) {
        self.op_val(process, kind, f, Val::from(value));
    }

    fn event_val(&self, node: &str, kind: &str, detail: Val) {
        if self.is_closed() {
            return;
        }
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

    fn op_val(&self, process: &str, kind: OpType, f: &str, value: Val) {
        if self.is_closed() {
            return;
        }
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
