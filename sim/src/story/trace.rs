//! Reading the trace generically: which events touch a partition or an offset, who led it in
//! which epoch, and the sentences a story tells of them.

use crate::history::{Op, OpType, TraceEvent};
use crate::report::describe;
use crate::val::Val;

use super::{Run, Source, Step};

/// The fault events the world records (the scenario's `[[fault]]`s firing and being undone).
pub(crate) fn is_fault(event: &TraceEvent) -> bool {
    event.node == "world" && !matches!(event.kind.as_str(), "topics-created" | "faults-not-fired")
}

pub(crate) fn partition_of(event: &TraceEvent) -> Option<&str> {
    event.detail.get("partition").and_then(Val::as_str)
}

pub(crate) fn int(event: &TraceEvent, key: &str) -> Option<i64> {
    event.detail.get(key).and_then(Val::as_i64)
}

/// Whether a leader's `append` or a follower's `replica-append` wrote `offset`.
pub(crate) fn covers(event: &TraceEvent, offset: i64) -> bool {
    matches!(int(event, "first"), Some(first) if first <= offset)
        && matches!(int(event, "last"), Some(last) if offset <= last)
}

/// The node an event names as a broker: `broker-N` for a `broker`, `leader`, … id.
pub(crate) fn broker(id: i64) -> String {
    format!("broker-{id}")
}

/// The leader epoch `node` last took a role in for `partition`, before trace index `before`.
pub(crate) fn epoch_of(run: &Run, node: &str, partition: &str, before: usize) -> Option<i64> {
    run.trace[..before.min(run.trace.len())]
        .iter()
        .rev()
        .find(|e| {
            e.kind == "partition-role" && e.node == node && partition_of(e) == Some(partition)
        })
        .and_then(|e| int(e, "leader_epoch"))
}

/// A step told of trace event `i`.
pub(crate) fn step(run: &Run, i: usize, text: String) -> Step {
    Step {
        at_ms: run.trace[i].at_ms,
        text,
        source: Source::Trace(i),
    }
}

/// A step told of trace event `i` in the report's words.
pub(crate) fn described(run: &Run, i: usize) -> Step {
    step(run, i, describe(&run.trace[i]))
}

/// A step told of history entry `i`.
pub(crate) fn op_step(run: &Run, i: usize, text: String) -> Step {
    Step {
        at_ms: run.history[i].at_ms,
        text,
        source: Source::History(i),
    }
}

/// The history entries of `send`s of `value`, in order: (index, op).
pub(crate) fn sends_of<'a>(run: &'a Run, value: &'a str) -> impl Iterator<Item = (usize, &'a Op)> {
    run.history.iter().enumerate().filter(move |(_, op)| {
        op.f == "send" && op.value.get("value").and_then(Val::as_str) == Some(value)
    })
}

/// The acknowledged value at `offset` of `partition` whose acknowledgement came first at or
/// after `from_ms`: which write a leader's append at that moment was.
pub(crate) fn acked_at(run: &Run, partition: &str, offset: i64, from_ms: u64) -> Option<String> {
    run.history
        .iter()
        .filter(|op| op.f == "send" && op.kind == OpType::Ok && op.at_ms >= from_ms)
        .find(|op| {
            op.value.get("partition").and_then(Val::as_str) == Some(partition)
                && op.value.get("offset").and_then(Val::as_i64) == Some(offset)
        })
        .and_then(|op| op.value.get("value").and_then(Val::as_str))
        .map(str::to_string)
}

/// A `send` as a sentence: "p1 sent p1-2 (key k559)", "… acknowledged at offset 2 of orders-0".
pub(crate) fn send_text(op: &Op) -> String {
    let value = op.value["value"].as_str().unwrap_or("?");
    match op.kind {
        OpType::Invoke => {
            let key = op.value["key"]
                .as_str()
                .map(|k| format!(" (key {k})"))
                .unwrap_or_default();
            format!("{} sent {value}{key}", op.process)
        }
        OpType::Ok => format!(
            "{} saw {value} acknowledged at offset {} of {}",
            op.process,
            op.value["offset"],
            op.value["partition"].as_str().unwrap_or("?")
        ),
        OpType::Fail => format!("{}'s send of {value} failed: {}", op.process, op.value),
        OpType::Info => format!(
            "{}'s send of {value} ended unknown (a timeout: it may or may not have been written)",
            op.process
        ),
    }
}

/// Why a replica truncated, in words a reader of KIP-101 recognises.
pub(crate) fn truncation_reason(event: &TraceEvent) -> String {
    let hw = &event.detail["hw"];
    match event.detail["reason"].as_str().unwrap_or("?") {
        "high-watermark" => format!(
            "before KIP-101 a follower truncates to its own high watermark when its leader \
             changes, and its high watermark was {hw}"
        ),
        "diverging-epoch" => format!(
            "the leader answered that its log for leader epoch {} ends there (KIP-101/KIP-279); \
             its own high watermark was {hw}",
            event.detail["leader_epoch"]
        ),
        "leader-end-offset" => format!(
            "its fetch was past the leader's log end (OFFSET_OUT_OF_RANGE), so it cut its log \
             to the leader's end; its own high watermark was {hw}"
        ),
        "offset-out-of-range" => format!(
            "its log ended below the start of the leader's, so it started over at the leader's \
             log start; its own high watermark was {hw}"
        ),
        other => format!("{other}; its high watermark was {hw}"),
    }
}

/// A controller's `partition-state` as a sentence: "the controller made broker-3 leader of
/// orders-0 in epoch 2 (ISR [3])".
pub(crate) fn election_text(event: &TraceEvent) -> String {
    let d = &event.detail;
    let unclean = if d["unclean"] == true {
        ", an UNCLEAN election from outside the ISR"
    } else {
        ""
    };
    let leader = match d["leader"].as_i64() {
        Some(id) if id >= 0 => broker(id),
        _ => "no broker".to_string(),
    };
    format!(
        "the controller made {leader} leader of {} in epoch {} (ISR {}{unclean})",
        d["partition"].as_str().unwrap_or("?"),
        d["leader_epoch"],
        d["isr"]
    )
}

/// The index of the last `partition-state` of `partition` at or before trace index `before`,
/// and the one before it that had another leader or epoch: whether an event is a new election.
pub(crate) fn is_new_leadership(prev: Option<&TraceEvent>, event: &TraceEvent) -> bool {
    prev.is_none_or(|p| {
        p.detail["leader"] != event.detail["leader"]
            || p.detail["leader_epoch"] != event.detail["leader_epoch"]
    })
}
