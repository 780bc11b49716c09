//! What the HTML report draws, derived from the trace and the history alone: each partition's
//! replicas with their log end offset (LEO) and high watermark (HW) over time, its leader epochs
//! and ISR, the acknowledged offsets, and when each node was down. Generic: any event whose detail
//! names a `partition` and carries a `leo` or `hw` is a point of that replica's series.

use std::collections::BTreeMap;

use crate::check::FinalState;
use crate::history::{Op, OpType, TraceEvent};
use crate::val::Val;

/// A value that holds from `at_ms` until the next point.
pub type Step = (u64, i64);

#[derive(Debug, Default)]
pub struct ReplicaView {
    pub leo: Vec<Step>,
    pub hw: Vec<Step>,
}

/// A leader epoch, from the moment the controller decided it until the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Epoch {
    pub start_ms: u64,
    pub epoch: i64,
    /// The leader's broker id; -1 for none.
    pub leader: i64,
    pub unclean: bool,
}

#[derive(Debug, Default)]
pub struct PartitionView {
    /// Each replica's series, by node name.
    pub replicas: BTreeMap<String, ReplicaView>,
    /// The replica ids the controller assigned (the last assignment seen).
    pub assigned: Vec<i64>,
    pub epochs: Vec<Epoch>,
    /// The ISR from each moment it changed.
    pub isr: Vec<(u64, Vec<i64>)>,
    /// The end of the acknowledged prefix: one past the highest offset acknowledged so far.
    pub acked_end: Vec<Step>,
    /// Acknowledged writes (when, offset) that the final log does not hold at their offset.
    pub lost: Vec<Step>,
    /// Each replica cutting its log: any event of the partition that names a `from` and a `to`
    /// offset.
    pub cuts: Vec<Cut>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cut {
    pub at_ms: u64,
    pub node: String,
    pub from: i64,
    pub to: i64,
    pub reason: String,
}

/// Why a node was not serving for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absence {
    Down,
    Paused,
}

#[derive(Debug, Default)]
pub struct Model<'a> {
    pub partitions: BTreeMap<String, PartitionView>,
    /// The node that traces each broker id (from events that carry both `partition` and `broker`).
    pub node_of_id: BTreeMap<i64, String>,
    /// Every node that traced something, and the spans it was down or paused.
    pub nodes: BTreeMap<String, Vec<(u64, u64, Absence)>>,
    /// Faults and other world events, drawn as vertical marks.
    pub marks: Vec<&'a TraceEvent>,
    /// The KRaft quorum's leaders: (since, node, epoch).
    pub quorum_leaders: Vec<(u64, String, i64)>,
    pub end_ms: u64,
}

impl Model<'_> {
    /// The name a broker id is drawn with.
    pub fn node_name(&self, id: i64) -> String {
        self.node_of_id
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    }
}

pub fn build<'a>(
    trace: &'a [TraceEvent],
    history: &[Op],
    final_state: &FinalState,
    sim_ms: u64,
) -> Model<'a> {
    let last_event = trace.iter().map(|e| e.at_ms).max().unwrap_or(0);
    let mut model = Model {
        end_ms: sim_ms.max(last_event).max(1),
        ..Model::default()
    };
    for event in trace {
        if event.node != "world" {
            model.nodes.entry(event.node.clone()).or_default();
        }
        if let Some(partition) = event.detail.get("partition").and_then(Val::as_str) {
            partition_event(&mut model, partition, event);
        }
        node_event(&mut model, event);
    }
    close_absences(&mut model);
    acknowledgements(&mut model, history, final_state);
    for name in final_state.partitions.keys() {
        model.partitions.entry(name.clone()).or_default();
    }
    model
}

fn partition_event(model: &mut Model, partition: &str, event: &TraceEvent) {
    let d = &event.detail;
    let view = model.partitions.entry(partition.to_string()).or_default();
    if event.kind == "partition-state" {
        controller_decision(view, event);
        return;
    }
    if event.node == "world" {
        return;
    }
    if let (Some(from), Some(to)) = (d["from"].as_i64(), d["to"].as_i64()) {
        view.cuts.push(Cut {
            at_ms: event.at_ms,
            node: event.node.clone(),
            from,
            to,
            reason: d["reason"].as_str().unwrap_or(&event.kind).to_string(),
        });
    }
    let (leo, hw) = (d["leo"].as_i64(), d["hw"].as_i64());
    if leo.is_none() && hw.is_none() {
        return;
    }
    if let Some(id) = d["broker"].as_i64() {
        model
            .node_of_id
            .entry(id)
            .or_insert_with(|| event.node.clone());
    }
    let replica = view.replicas.entry(event.node.clone()).or_default();
    if let Some(leo) = leo {
        push_step(&mut replica.leo, event.at_ms, leo);
    }
    if let Some(hw) = hw {
        push_step(&mut replica.hw, event.at_ms, hw);
    }
}

/// Keeps only changes: a series of a ten-minute run has a point per fetch otherwise.
fn push_step(series: &mut Vec<Step>, at_ms: u64, value: i64) {
    match series.last_mut() {
        Some(last) if last.1 == value => {}
        Some(last) if last.0 == at_ms => last.1 = value,
        _ => series.push((at_ms, value)),
    }
}

/// A controller's committed partition state: the leader epoch and the ISR. With several
/// controllers each may trace the same decision; only changes are kept.
fn controller_decision(view: &mut PartitionView, event: &TraceEvent) {
    let d = &event.detail;
    let ids = |v: &Val| -> Vec<i64> {
        v.as_array()
            .unwrap_or_default()
            .iter()
            .filter_map(Val::as_i64)
            .collect()
    };
    let replicas = ids(&d["replicas"]);
    if !replicas.is_empty() {
        view.assigned = replicas;
    }
    let epoch = Epoch {
        start_ms: event.at_ms,
        epoch: d["leader_epoch"].as_i64().unwrap_or(-1),
        leader: d["leader"].as_i64().unwrap_or(-1),
        unclean: d["unclean"] == true,
    };
    let changed = view
        .epochs
        .last()
        .is_none_or(|e| (e.epoch, e.leader) != (epoch.epoch, epoch.leader));
    if changed {
        view.epochs.push(epoch);
    }
    let isr = ids(&d["isr"]);
    if view.isr.last().is_none_or(|(_, last)| *last != isr) {
        view.isr.push((event.at_ms, isr));
    }
}

/// Faults (the world's events), nodes going down and coming back, the quorum's leaders.
fn node_event<'a>(model: &mut Model<'a>, event: &'a TraceEvent) {
    let d = &event.detail;
    if event.kind == "raft-role" && d["role"].as_str() == Some("leader") {
        let epoch = d["epoch"].as_i64().unwrap_or(-1);
        model
            .quorum_leaders
            .push((event.at_ms, event.node.clone(), epoch));
    }
    if is_mark(event) {
        model.marks.push(event);
    }
    let (node, change) = match (event.node.as_str(), event.kind.as_str()) {
        ("world", kind) => match (d["node"].as_str(), kind) {
            (Some(node), "kill" | "crash") => (node, Some(Absence::Down)),
            (Some(node), "pause") => (node, Some(Absence::Paused)),
            (Some(node), "restart" | "wipe" | "resume") => (node, None),
            _ => return,
        },
        (node, "shut-down" | "stopped") => (node, Some(Absence::Down)),
        _ => return,
    };
    let spans = model.nodes.entry(node.to_string()).or_default();
    let open = spans.last().is_some_and(|s| s.1 == u64::MAX);
    match (change, open) {
        (Some(absence), false) => spans.push((event.at_ms, u64::MAX, absence)),
        (None, true) => spans.last_mut().expect("open span").1 = event.at_ms,
        _ => {}
    }
}

/// Whether an event is drawn as a vertical mark on every timeline: what the scenario did to the
/// world, and a node stopping or panicking on its own.
fn is_mark(event: &TraceEvent) -> bool {
    match (event.node.as_str(), event.kind.as_str()) {
        ("world", "topics-created" | "fault-skipped") => false,
        ("world", _) => true,
        (_, kind) => matches!(kind, "stopped" | "panic" | "shut-down"),
    }
}

fn close_absences(model: &mut Model) {
    let end = model.end_ms;
    for spans in model.nodes.values_mut() {
        for span in spans.iter_mut().filter(|s| s.1 == u64::MAX) {
            span.1 = end;
        }
    }
}

/// The acknowledged prefix of each partition, and the acknowledged writes the final log does
/// not hold at their offset (a lost write, drawn where it was acknowledged).
fn acknowledgements(model: &mut Model, history: &[Op], final_state: &FinalState) {
    // Looked up only: no iteration order reaches the page.
    let finals: BTreeMap<&str, BTreeMap<i64, Option<&str>>> = final_state
        .partitions
        .iter()
        .map(|(name, p)| {
            let at = p
                .committed
                .iter()
                .map(|r| (r.offset, r.value.as_deref()))
                .collect();
            (name.as_str(), at)
        })
        .collect();
    for op in history
        .iter()
        .filter(|o| o.kind == OpType::Ok && o.f == "send")
    {
        let (Some(partition), Some(offset)) =
            (op.value["partition"].as_str(), op.value["offset"].as_i64())
        else {
            continue;
        };
        let view = model.partitions.entry(partition.to_string()).or_default();
        let end = view.acked_end.last().map_or(0, |s| s.1);
        if offset + 1 > end {
            push_step(&mut view.acked_end, op.at_ms, offset + 1);
        }
        let Some(held) = finals.get(partition) else {
            continue;
        };
        let below_start = offset
            < final_state
                .partitions
                .get(partition)
                .map_or(0, |p| p.log_start_offset);
        if !below_start && held.get(&offset).copied().flatten() != op.value["value"].as_str() {
            view.lost.push((op.at_ms, offset));
        }
    }
}
