//! Stories of one offset of one partition: what became of the record a leader appended there
//! (`lost-write`, `divergence`, `inconsistent-read`), and of a record appended twice
//! (`duplicate`).

use std::collections::BTreeMap;

use crate::check::Violation;
use crate::history::OpType;
use crate::val::Val;

use super::trace::{
    acked_at, broker, covers, described, epoch_of, int, is_fault, is_new_leadership, op_step,
    partition_of, send_text, sends_of, step, truncation_reason,
};
use super::{parse, Run, Source, Step, Story, Subject};

/// What a walk over the trace found happening to one record at one offset.
#[derive(Default)]
struct Walk {
    steps: Vec<Step>,
    /// Replicas that lost the record: (node, step).
    removed: Vec<(String, usize)>,
    /// Elections of a leader that did not hold it: (leader, step).
    elected_without: Vec<(String, usize)>,
    /// The step where a leader wrote another record at the offset.
    overwrite: Option<usize>,
    /// The step after which nothing more bears on the record.
    last_significant: usize,
}

impl Walk {
    fn push(&mut self, step: Step, significant: bool) -> usize {
        self.steps.push(step);
        let i = self.steps.len() - 1;
        if significant {
            self.last_significant = i;
        }
        i
    }
}

/// Follows the record that trace event `append` (a leader's `append`) wrote at `offset` of
/// `partition` until another record replaces it there, or until trace index `until`: who
/// fetched it, when it was committed, who truncated it and why, which elections passed it by.
fn walk(run: &Run, partition: &str, offset: i64, append: usize, until: usize) -> Walk {
    let mut w = Walk::default();
    let first = &run.trace[append];
    let value = acked_at(run, partition, offset, first.at_ms);
    let epoch = epoch_of(run, &first.node, partition, append);
    w.push(
        step(
            run,
            append,
            format!(
                "{}, leader of {partition}{}, appended {} at offset {offset} (offsets {} to {} in \
                 that append)",
                first.node,
                epoch.map(|e| format!(" in epoch {e}")).unwrap_or_default(),
                value.as_deref().unwrap_or("the record"),
                first.detail["first"],
                first.detail["last"]
            ),
        ),
        true,
    );
    let mut holders: BTreeMap<String, bool> = BTreeMap::from([(first.node.clone(), true)]);
    let mut learned: BTreeMap<String, bool> = BTreeMap::new();
    let mut last_state = run.trace[..append]
        .iter()
        .rev()
        .find(|e| e.kind == "partition-state" && partition_of(e) == Some(partition));
    for i in append + 1..until.min(run.trace.len()) {
        let e = &run.trace[i];
        if is_fault(e) {
            w.push(described(run, i), false);
            continue;
        }
        if partition_of(e) != Some(partition) {
            continue;
        }
        let held = holders.get(&e.node).copied().unwrap_or(false);
        match e.kind.as_str() {
            "replica-append" if covers(e, offset) && !held => {
                holders.insert(e.node.clone(), true);
                let text = format!(
                    "{} fetched it from its leader (its log end now {})",
                    e.node, e.detail["leo"]
                );
                w.push(step(run, i, text), false);
            }
            "hw" if held
                && int(e, "hw").is_some_and(|hw| hw > offset)
                && !learned.contains_key(&e.node) =>
            {
                learned.insert(e.node.clone(), true);
                let text = if e.detail["role"] == "leader" {
                    format!(
                        "{}'s high watermark passed offset {offset} (now {}): the record is \
                         committed",
                        e.node, e.detail["hw"]
                    )
                } else {
                    format!(
                        "{} learned from its leader that offset {offset} is committed (its high \
                         watermark now {})",
                        e.node, e.detail["hw"]
                    )
                };
                w.push(step(run, i, text), false);
            }
            "truncate" if held && int(e, "to").is_some_and(|to| to <= offset) => {
                holders.insert(e.node.clone(), false);
                let text = format!(
                    "{} truncated its log of {partition} from {} to {}, dropping offset {offset}: \
                     {}",
                    e.node,
                    e.detail["from"],
                    e.detail["to"],
                    truncation_reason(e)
                );
                let s = w.push(step(run, i, text), true);
                w.removed.push((e.node.clone(), s));
            }
            "recovered" if held && int(e, "leo").is_some_and(|leo| leo <= offset) => {
                holders.insert(e.node.clone(), false);
                let text = format!(
                    "{} reopened {partition} at log end offset {}: the record had not reached its \
                     disk before the crash",
                    e.node, e.detail["leo"]
                );
                let s = w.push(step(run, i, text), true);
                w.removed.push((e.node.clone(), s));
            }
            "partition-state" if is_new_leadership(last_state, e) => {
                last_state = Some(e);
                let Some(leader) = int(e, "leader").filter(|&l| l >= 0).map(broker) else {
                    let text = super::trace::election_text(e);
                    w.push(step(run, i, text), true);
                    continue;
                };
                let holds = holders.get(&leader).copied().unwrap_or(false);
                let text = format!(
                    "{}: {leader} {} the record",
                    super::trace::election_text(e),
                    if holds { "holds" } else { "does NOT hold" }
                );
                let s = w.push(step(run, i, text), true);
                if !holds {
                    w.elected_without.push((leader, s));
                }
            }
            "append" if covers(e, offset) => {
                let other = acked_at(run, partition, offset, e.at_ms);
                let epoch = epoch_of(run, &e.node, partition, i);
                let text = format!(
                    "{}, leader{}, wrote {} at offset {offset}",
                    e.node,
                    epoch.map(|e| format!(" in epoch {e}")).unwrap_or_default(),
                    other
                        .map(|o| format!("another record ({o})"))
                        .unwrap_or_else(|| "another record".to_string())
                );
                w.overwrite = Some(w.push(step(run, i, text), true));
                break;
            }
            _ => {}
        }
    }
    w.steps.truncate(w.last_significant + 1);
    w
}

/// The index of the last leader `append` covering `offset` of `partition` at or before `at_ms`.
fn append_before(run: &Run, partition: &str, offset: i64, at_ms: u64) -> Option<usize> {
    run.trace
        .iter()
        .enumerate()
        .take_while(|(_, e)| e.at_ms <= at_ms)
        .filter(|(_, e)| {
            e.kind == "append" && partition_of(e) == Some(partition) && covers(e, offset)
        })
        .map(|(i, _)| i)
        .last()
}

/// The sends of `value` as steps (the invoke and how it ended), and who sent it with which key.
fn send_steps(run: &Run, value: &str) -> (Vec<Step>, Subject) {
    let mut steps = Vec::new();
    let mut subject = Subject {
        value: Some(value.to_string()),
        ..Subject::default()
    };
    for (i, op) in sends_of(run, value) {
        subject.process.get_or_insert_with(|| op.process.clone());
        if let Some(key) = op.value.get("key").and_then(Val::as_str) {
            subject.key.get_or_insert_with(|| key.to_string());
        }
        steps.push(op_step(run, i, send_text(op)));
    }
    (steps, subject)
}

/// The step at which `value` was acknowledged (its `ok`), if it was.
fn ack_ms(run: &Run, value: &str) -> Option<u64> {
    sends_of(run, value)
        .find(|(_, op)| op.kind == OpType::Ok)
        .map(|(_, op)| op.at_ms)
}

/// Which step did the damage to a record a walk followed: the loss of it by the replica that
/// was then elected without it; else that election; else the last loss; else the overwrite.
fn cause_of(w: &Walk) -> Option<usize> {
    if let Some((leader, elected)) = w.elected_without.first() {
        let lost = w
            .removed
            .iter()
            .filter(|(node, s)| node == leader && s < elected)
            .map(|&(_, s)| s)
            .next_back();
        return Some(lost.unwrap_or(*elected));
    }
    w.removed.last().map(|&(_, s)| s).or(w.overwrite)
}

/// Says on the acknowledgement which replicas held the record then (what `acks` waited for):
/// the nodes the steps before it say appended or fetched it.
fn note_holders_at_ack(steps: &mut [Step], acked_ms: u64) {
    let mut holders: Vec<&str> = steps
        .iter()
        .filter(|s| s.at_ms <= acked_ms)
        .filter(|s| s.text.contains(", appended ") || s.text.contains(" fetched it "))
        .filter_map(|s| s.text.split([',', ' ']).next())
        .collect();
    holders.sort_unstable();
    holders.dedup();
    let note = format!(" (held then by {})", holders.join(", "));
    if holders.is_empty() {
        return;
    }
    if let Some(ack) = steps.iter_mut().find(|s| {
        s.at_ms == acked_ms && s.text.contains(" saw ") && s.text.contains(" acknowledged")
    }) {
        ack.text.push_str(&note);
    }
}

/// Joins the steps of the sends with the walk's, keeping the cause's index right.
fn assemble(mut before: Vec<Step>, w: Walk, cause: Option<usize>) -> (Vec<Step>, Option<usize>) {
    let offset = before.len();
    before.extend(w.steps);
    (before, cause.map(|c| c + offset))
}

fn final_step(run: &Run, text: String) -> Step {
    Step {
        at_ms: run.trace.last().map_or(0, |e| e.at_ms),
        text,
        source: Source::Violation,
    }
}

pub(super) fn lost_write(v: &Violation, run: &Run) -> Option<Story> {
    let (value, partition, offset) = parse::lost_write(&v.detail)?;
    let acked = ack_ms(run, &value).unwrap_or(v.at_ms);
    let (sends, mut subject) = send_steps(run, &value);
    subject.partition = Some(partition.clone());
    subject.offset = Some(offset);
    let append = append_before(run, &partition, offset, acked)?;
    let w = walk(run, &partition, offset, append, run.trace.len());
    let cause = cause_of(&w);
    let (mut steps, cause) = assemble(sends, w, cause);
    note_holders_at_ack(&mut steps, acked);
    let end = parse::between(&v.detail, "but ", "").unwrap_or("it is not there");
    steps.push(final_step(run, format!("At the end of the run, {end}")));
    Some(Story {
        check: v.check.clone(),
        headline: format!(
            "{} wrote {value} to {partition}; it was acknowledged at offset {offset}, and lost",
            subject.process.as_deref().unwrap_or("a producer")
        ),
        subject,
        steps,
        cause,
    })
}

pub(super) fn inconsistent_read(v: &Violation, run: &Run) -> Option<Story> {
    let reader = v.detail.split(' ').next()?.to_string();
    let value = parse::between(&v.detail, " read ", " at offset ")?.to_string();
    let offset = parse::number(&v.detail, " at offset ", " of ")?;
    let partition = v.partition.clone()?;
    let acked = ack_ms(run, &value).unwrap_or(v.at_ms);
    let (sends, mut subject) = send_steps(run, &value);
    subject.partition = Some(partition.clone());
    subject.offset = Some(offset);
    let append = append_before(run, &partition, offset, acked.max(v.at_ms))?;
    let w = walk(run, &partition, offset, append, run.trace.len());
    let cause = cause_of(&w);
    let (mut steps, cause) = assemble(sends, w, cause);
    steps.push(Step {
        at_ms: v.at_ms,
        text: format!("{reader} read {value} at offset {offset} of {partition}"),
        source: Source::Violation,
    });
    let end = parse::between(&v.detail, "but ", "").unwrap_or("the final log differs");
    steps.push(final_step(run, format!("At the end of the run, {end}")));
    Some(Story {
        check: v.check.clone(),
        headline: format!("{reader} read {value} at offset {offset} of {partition}, which the final log does not hold there"),
        subject,
        steps,
        cause,
    })
}

pub(super) fn divergence(v: &Violation, run: &Run) -> Option<Story> {
    let partition = v.partition.clone()?;
    if let Some((node, from, to, hw)) = parse::divergent_truncation(&v.detail) {
        return divergent_truncation(v, run, &partition, (&node, from, to, hw));
    }
    let (node, value, offset, other) = parse::divergent_replica(&v.detail)?;
    let acked = ack_ms(run, &value).unwrap_or(v.at_ms);
    let (sends, mut subject) = send_steps(run, &value);
    subject.partition = Some(partition.clone());
    subject.offset = Some(offset);
    let append = append_before(run, &partition, offset, acked)?;
    let w = walk(run, &partition, offset, append, run.trace.len());
    let after = w.overwrite.map_or(append, |s| match w.steps[s].source {
        Source::Trace(i) => i,
        _ => append,
    });
    let mut cause = w.overwrite.or_else(|| cause_of(&w));
    let (mut steps, shifted) = assemble(sends, w, cause);
    cause = shifted;
    // The holder's own truncations after the other record was written: each kept the record.
    for (i, e) in run.trace.iter().enumerate().skip(after + 1) {
        let kept = e.node == node
            && partition_of(e) == Some(partition.as_str())
            && matches!(e.kind.as_str(), "truncate" | "recovered")
            && int(e, if e.kind == "truncate" { "to" } else { "leo" })
                .is_some_and(|to| to > offset);
        if kept {
            let text = format!(
                "{node} {} {partition} at {} and kept {value} at offset {offset}, where the leader \
                 holds {other} (its high watermark was {}){}",
                if e.kind == "truncate" { "truncated" } else { "reopened" },
                e.detail[if e.kind == "truncate" { "to" } else { "leo" }],
                e.detail["hw"],
                if e.kind == "truncate" {
                    format!(": {}", truncation_reason(e))
                } else {
                    String::new()
                }
            );
            steps.push(step(run, i, text));
            cause = Some(steps.len() - 1);
        }
    }
    steps.push(final_step(
        run,
        format!("At the end of the run, {}", v.detail),
    ));
    Some(Story {
        check: v.check.clone(),
        headline: format!(
            "{node} holds {value} at offset {offset} of {partition}, where the leader holds {other}: the replicas diverged"
        ),
        subject,
        steps,
        cause,
    })
}

/// `divergence` found in the trace: a replica truncated records it held as committed.
fn divergent_truncation(
    v: &Violation,
    run: &Run,
    partition: &str,
    (node, from, to, hw): (&str, i64, i64, i64),
) -> Option<Story> {
    let cut = run.trace.iter().position(|e| {
        e.at_ms == v.at_ms
            && e.kind == "truncate"
            && e.node == node
            && partition_of(e) == Some(partition)
            && int(e, "to") == Some(to)
    })?;
    // The record it held at `to`: the last its fetches copied, from the leader's append.
    let fetched = run.trace[..cut].iter().rposition(|e| {
        e.node == node
            && partition_of(e) == Some(partition)
            && matches!(e.kind.as_str(), "replica-append" | "append")
            && covers(e, to)
    })?;
    let append = run.trace[..=fetched]
        .iter()
        .rposition(|e| e.kind == "append" && partition_of(e) == Some(partition) && covers(e, to))?;
    let w = walk(run, partition, to, append, cut + 1);
    let cause = w.steps.iter().position(|s| s.source == Source::Trace(cut));
    let value = acked_at(run, partition, to, run.trace[append].at_ms);
    let (sends, mut subject) = match &value {
        Some(value) => send_steps(run, value),
        None => (Vec::new(), Subject::default()),
    };
    subject.partition = Some(partition.to_string());
    subject.offset = Some(to);
    let (steps, cause) = assemble(sends, w, cause);
    Some(Story {
        check: v.check.clone(),
        headline: format!(
            "{node} truncated {partition} from {from} to {to}, below its high watermark {hw}: it \
             gave up records it held as committed (the first, at offset {to}, {})",
            value.as_deref().unwrap_or("a record")
        ),
        subject,
        steps,
        cause,
    })
}

pub(super) fn duplicate(v: &Violation, run: &Run) -> Option<Story> {
    let (value, places) = parse::duplicate(&v.detail)?;
    let (mut steps, mut subject) = send_steps(run, &value);
    subject.partition = places.first().map(|(p, _)| p.clone());
    subject.offset = places.first().map(|&(_, o)| o);
    let first_ms = steps.first().map_or(0, |s| s.at_ms);
    let mut appends = Vec::new();
    for (partition, offset) in &places {
        let Some(i) = append_before(run, partition, *offset, u64::MAX) else {
            continue;
        };
        let e = &run.trace[i];
        let pid = if e.detail.get("pid").is_some() {
            format!(", producer id {}", e.detail["pid"])
        } else {
            ": no producer id on the batch (idempotence off), so nothing tells the leader it is a retry".to_string()
        };
        let epoch = epoch_of(run, &e.node, partition, i);
        let text = format!(
            "{}, leader of {partition}{}, appended {value} at offset {offset} (offsets {} to {} in that append{pid})",
            e.node,
            epoch.map(|e| format!(" in epoch {e}")).unwrap_or_default(),
            e.detail["first"],
            e.detail["last"]
        );
        appends.push((i, step(run, i, text)));
    }
    appends.sort_by_key(|(i, _)| *i);
    let last = appends.last().map_or(0, |(i, _)| *i);
    let lo = appends.first().map_or(0, |(i, _)| *i);
    // What happened between the appends: faults and leadership changes.
    let mut last_state = None;
    for (i, e) in run.trace.iter().enumerate().take(last).skip(lo) {
        if e.at_ms < first_ms {
            continue;
        }
        let leadership = e.kind == "partition-state"
            && partition_of(e) == subject.partition.as_deref()
            && is_new_leadership(last_state, e);
        if leadership {
            last_state = Some(e);
        }
        if leadership {
            steps.push(step(run, i, super::trace::election_text(e)));
        } else if is_fault(e) {
            steps.push(described(run, i));
        }
    }
    let cause_text = appends.get(1).map(|(_, s)| s.clone());
    steps.extend(appends.into_iter().map(|(_, s)| s));
    let cause = cause_text.and_then(|c| steps.iter().position(|s| *s == c));
    Some(Story {
        check: v.check.clone(),
        headline: format!(
            "{value}, written by {}, is in the final log {} times: the producer retried a request \
             whose first attempt had been appended",
            subject.process.as_deref().unwrap_or("a producer"),
            places.len()
        ),
        subject,
        steps,
        cause,
    })
}
