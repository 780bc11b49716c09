//! Stories of the violations that are not about one offset's record: a high watermark going
//! back, a group's committed offset going back or past unprocessed records, transactional reads
//! and a partition nobody could read, and the fallback for every other check.

use std::collections::BTreeMap;

use crate::check::Violation;
use crate::history::OpType;
use crate::report::notable;

use super::trace::{
    described, election_text, int, is_fault, is_new_leadership, op_step, partition_of, send_text,
    sends_of, step, truncation_reason,
};
use super::{parse, Run, Source, Step, Story, Subject};

/// How many of the partition's events before a violation the fallback tells.
const FALLBACK_EVENTS: usize = 15;

/// The leadership changes, truncations, recoveries that cut a log, and faults of `partition`
/// between trace indexes `from` and `to`, as steps.
fn partition_events(run: &Run, partition: &str, from: usize, to: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut last_state = run.trace[..from.min(run.trace.len())]
        .iter()
        .rev()
        .find(|e| e.kind == "partition-state" && partition_of(e) == Some(partition));
    for i in from..to.min(run.trace.len()) {
        let e = &run.trace[i];
        if is_fault(e) {
            steps.push(described(run, i));
            continue;
        }
        if partition_of(e) != Some(partition) {
            continue;
        }
        match e.kind.as_str() {
            "partition-state" if is_new_leadership(last_state, e) => {
                last_state = Some(e);
                steps.push(step(run, i, election_text(e)));
            }
            "truncate" => {
                let text = format!(
                    "{} truncated its log of {partition} from {} to {}: {}",
                    e.node,
                    e.detail["from"],
                    e.detail["to"],
                    truncation_reason(e)
                );
                steps.push(step(run, i, text));
            }
            "recovered" if int(e, "truncated_bytes").unwrap_or(0) > 0 => {
                steps.push(described(run, i));
            }
            _ => {}
        }
    }
    steps
}

/// The first trace index at or after `at_ms`.
fn index_at(run: &Run, at_ms: u64) -> usize {
    run.trace.partition_point(|e| e.at_ms < at_ms)
}

pub(super) fn hw_regression(v: &Violation, run: &Run) -> Option<Story> {
    let partition = v.partition.clone()?;
    let (node, hw, hw2, node2, at) = parse::hw_regression(&v.detail)?;
    let is_hw = |e: &crate::history::TraceEvent, who: &str, value: i64| {
        e.kind == "hw"
            && e.node == who
            && partition_of(e) == Some(partition.as_str())
            && int(e, "hw") == Some(value)
    };
    let high = (index_at(run, at)..run.trace.len()).find(|&i| is_hw(&run.trace[i], &node2, hw2))?;
    let low =
        (index_at(run, v.at_ms)..run.trace.len()).find(|&i| is_hw(&run.trace[i], &node, hw))?;
    let mut steps = vec![step(
        run,
        high,
        format!(
            "{node2}, leading {partition}, served high watermark {hw2}: clients may read below it"
        ),
    )];
    steps.extend(partition_events(run, &partition, high + 1, low));
    // The election that made the low leader: the last leadership step naming it.
    let elected = steps
        .iter()
        .rposition(|s| s.text.contains(&format!("made {node} leader")));
    steps.push(step(
        run,
        low,
        format!("{node}, now leading {partition}, served high watermark {hw}, below {hw2}: what clients saw as committed went back"),
    ));
    Some(Story {
        check: v.check.clone(),
        headline: format!(
            "the high watermark of {partition} went back from {hw2} ({node2}) to {hw} ({node})"
        ),
        subject: Subject {
            partition: Some(partition),
            offset: Some(hw),
            ..Subject::default()
        },
        cause: elected.or(Some(steps.len() - 1)),
        steps,
    })
}

/// The `offset-commit` event of `group` for `partition` at `at_ms` with `offset`.
fn commit_event(run: &Run, group: &str, partition: &str, at_ms: u64, offset: i64) -> Option<usize> {
    (index_at(run, at_ms)..run.trace.len())
        .take_while(|&i| run.trace[i].at_ms == at_ms)
        .find(|&i| {
            let e = &run.trace[i];
            e.kind == "offset-commit"
                && e.detail["group"].as_str() == Some(group)
                && partition_of(e) == Some(partition)
                && int(e, "offset") == Some(offset)
        })
}

fn commit_text(run: &Run, i: usize) -> String {
    let d = &run.trace[i].detail;
    format!(
        "{} committed offset {} of {} for group {} (member {}, generation {})",
        run.trace[i].node,
        d["offset"],
        d["partition"].as_str().unwrap_or("?"),
        d["group"].as_str().unwrap_or("?"),
        d["member"].as_str().unwrap_or("none"),
        d["generation"]
    )
}

/// The group's members' assignments and the faults between two moments, as steps.
fn group_events(run: &Run, group: &str, from_ms: u64, to_ms: u64) -> Vec<Step> {
    let mut steps = Vec::new();
    for (i, op) in run.history.iter().enumerate() {
        let in_window = op.at_ms > from_ms && op.at_ms < to_ms;
        if in_window
            && op.kind == OpType::Ok
            && op.f == "assign"
            && op.value["group"].as_str() == Some(group)
        {
            let text = format!(
                "{} joined generation {} of {group} and was assigned {}",
                op.process, op.value["generation"], op.value["partitions"]
            );
            steps.push(op_step(run, i, text));
        }
    }
    for (i, e) in run.trace.iter().enumerate() {
        if is_fault(e) && e.at_ms > from_ms && e.at_ms < to_ms {
            steps.push(described(run, i));
        }
    }
    steps
}

pub(super) fn offset_regression(v: &Violation, run: &Run) -> Option<Story> {
    let partition = v.partition.clone()?;
    let (group, from, at, to) = parse::offset_regression(&v.detail)?;
    let before = commit_event(run, &group, &partition, at, from)?;
    let after = commit_event(run, &group, &partition, v.at_ms, to)?;
    let mut steps = vec![step(run, before, commit_text(run, before))];
    let first_commit = (0..before).find(|&i| {
        let e = &run.trace[i];
        e.kind == "offset-commit"
            && e.detail["group"].as_str() == Some(group.as_str())
            && partition_of(e) == Some(partition.as_str())
    });
    let since = first_commit.map_or(0, |i| run.trace[i].at_ms);
    steps.extend(group_events(run, &group, since, v.at_ms));
    steps.push(step(
        run,
        after,
        format!(
            "{}, below {from}: the coordinator accepted a commit from an older generation",
            commit_text(run, after)
        ),
    ));
    let member = run.trace[after].detail["member"]
        .as_str()
        .map(str::to_string);
    Some(Story {
        check: v.check.clone(),
        headline: format!(
            "group {group}'s committed offset of {partition} went back from {from} to {to}: the next owner will process again what was done"
        ),
        subject: Subject {
            partition: Some(partition),
            offset: Some(to),
            process: member,
            ..Subject::default()
        },
        cause: Some(steps.len() - 1),
        steps,
    })
}

/// The polls (history index, op) that returned the record at `offset` of `partition`.
fn polls_of(run: &Run, partition: &str, offset: i64) -> Vec<usize> {
    run.history
        .iter()
        .enumerate()
        .filter(|(_, op)| op.f == "poll" && op.kind == OpType::Ok)
        .filter(|(_, op)| {
            op.value["records"].as_array().is_some_and(|records| {
                records.iter().any(|r| {
                    r["partition"].as_str() == Some(partition)
                        && r["offset"].as_i64() == Some(offset)
                })
            })
        })
        .map(|(i, _)| i)
        .collect()
}

pub(super) fn group_skip(v: &Violation, run: &Run) -> Option<Story> {
    let partition = v.partition.clone()?;
    let (group, committed, first, value) = parse::group_skip(&v.detail)?;
    let mut steps = Vec::new();
    let polls = polls_of(run, &partition, first);
    for &i in &polls {
        let op = &run.history[i];
        let text = format!(
            "{} polled {value} (offset {first} of {partition})",
            op.process
        );
        steps.push(op_step(run, i, text));
    }
    // The first commit of the group past the record: from then on nobody would read it again.
    let past = run.trace.iter().position(|e| {
        e.kind == "offset-commit"
            && e.detail["group"].as_str() == Some(group.as_str())
            && partition_of(e) == Some(partition.as_str())
            && int(e, "offset").is_some_and(|o| o > first)
    })?;
    let from_ms = polls
        .first()
        .map_or(0, |&i| run.history[i].at_ms)
        .min(run.trace[past].at_ms);
    steps.push(step(
        run,
        past,
        format!(
            "{}: past offset {first}, before {value} was processed",
            commit_text(run, past)
        ),
    ));
    let cause = steps.len() - 1;
    steps.extend(group_events(run, &group, from_ms, v.at_ms));
    steps.push(Step {
        at_ms: v.at_ms,
        text: format!(
            "group {group} committed offset {committed} of {partition}, and no member ever processed {value}"
        ),
        source: Source::Violation,
    });
    let process = polls.first().map(|&i| run.history[i].process.clone());
    Some(Story {
        check: v.check.clone(),
        headline: format!(
            "group {group} committed past {value} (offset {first} of {partition}) that no member processed"
        ),
        subject: Subject {
            partition: Some(partition),
            offset: Some(first),
            value: Some(value),
            process,
            ..Subject::default()
        },
        cause: Some(cause),
        steps,
    })
}

/// The transactions of `partition` still open at trace index `until`: producer id → the
/// trace index of the append that opened it.
fn open_transactions(run: &Run, partition: &str, until: usize) -> BTreeMap<i64, usize> {
    let mut open = BTreeMap::new();
    for (i, e) in run.trace.iter().enumerate().take(until) {
        if partition_of(e) != Some(partition) {
            continue;
        }
        let Some(pid) = int(e, "pid") else { continue };
        match e.kind.as_str() {
            "append" if e.detail["txn"] == true => {
                open.entry(pid).or_insert(i);
            }
            "txn-marker" => {
                open.remove(&pid);
            }
            _ => {}
        }
    }
    open
}

/// The last transaction marker of `pid` on `partition` before trace index `before`.
fn last_marker(run: &Run, partition: &str, pid: i64, before: usize) -> Option<usize> {
    run.trace[..before].iter().rposition(|e| {
        e.kind == "txn-marker" && partition_of(e) == Some(partition) && int(e, "pid") == Some(pid)
    })
}

fn marker_text(run: &Run, i: usize) -> String {
    let e = &run.trace[i];
    format!(
        "{} wrote the {} marker of producer {}'s transaction at offset {}",
        e.node,
        if e.detail["commit"] == true {
            "COMMIT"
        } else {
            "ABORT"
        },
        e.detail["pid"],
        e.detail["offset"]
    )
}

fn txn_append_text(run: &Run, i: usize) -> String {
    let e = &run.trace[i];
    format!(
        "{} appended offsets {} to {} of {} in a transaction of producer {} ({})",
        e.node,
        e.detail["first"],
        e.detail["last"],
        partition_of(e).unwrap_or("?"),
        e.detail["pid"],
        e.detail["client"].as_str().unwrap_or("?")
    )
}

pub(super) fn transactional_read(v: &Violation, run: &Run) -> Option<Story> {
    let partition = v.partition.clone()?;
    let reader = v.detail.split(' ').next()?.to_string();
    let reads = parse::reads(&v.detail);
    let &(offset, ref value) = reads.first()?;
    let mut steps: Vec<Step> = sends_of(run, value)
        .map(|(i, op)| op_step(run, i, send_text(op)))
        .collect();
    let at = index_at(run, v.at_ms + 1);
    let append = run.trace[..at].iter().rposition(|e| {
        e.kind == "append"
            && partition_of(e) == Some(partition.as_str())
            && super::trace::covers(e, offset)
    });
    if let Some(a) = append {
        steps.push(step(run, a, txn_append_text(run, a)));
        if let Some(pid) = int(&run.trace[a], "pid") {
            let marker = (a..at).find(|&i| {
                let e = &run.trace[i];
                e.kind == "txn-marker"
                    && partition_of(e) == Some(partition.as_str())
                    && int(e, "pid") == Some(pid)
            });
            match marker {
                Some(m) => steps.push(step(run, m, marker_text(run, m))),
                None => steps.push(Step {
                    at_ms: v.at_ms,
                    text: format!("no marker of producer {pid} followed before the read: its transaction was still open"),
                    source: Source::Violation,
                }),
            }
        }
    }
    steps.push(Step {
        at_ms: v.at_ms,
        text: format!("{reader} (read_committed) read {value} at offset {offset} of {partition}"),
        source: Source::Violation,
    });
    Some(Story {
        check: v.check.clone(),
        headline: format!(
            "{reader} read {value} at offset {offset} of {partition}, which read_committed must not return"
        ),
        subject: Subject {
            partition: Some(partition),
            offset: Some(offset),
            value: Some(value.clone()),
            process: Some(reader),
            ..Subject::default()
        },
        cause: Some(steps.len() - 1),
        steps,
    })
}

pub(super) fn unavailable(v: &Violation, run: &Run) -> Option<Story> {
    let partition = v.partition.clone();
    let Some((reader, offset)) = parse::unread(&v.detail) else {
        let writer = parse::stalled_writer(&v.detail)?;
        return Some(stalled_writer(v, run, writer));
    };
    let partition = partition?;
    let at = index_at(run, v.at_ms + 1);
    let open = open_transactions(run, &partition, at);
    // The transaction that holds the last stable offset: the oldest still open below `offset`.
    let (&pid, &opened) = open
        .iter()
        .filter(|(_, &i)| int(&run.trace[i], "first").is_some_and(|f| f <= offset))
        .min_by_key(|(_, &i)| int(&run.trace[i], "first"))?;
    let mut steps: Vec<Step> = run
        .trace
        .iter()
        .enumerate()
        .filter(|(i, e)| is_fault(e) && *i < at)
        .map(|(i, _)| described(run, i))
        .collect();
    if let Some(m) = last_marker(run, &partition, pid, opened) {
        steps.push(step(run, m, marker_text(run, m)));
    }
    let first = int(&run.trace[opened], "first").unwrap_or(-1);
    steps.push(step(
        run,
        opened,
        format!(
            "{}: no marker of producer {pid} follows it, so the last stable offset of {partition} stays at {first}",
            txn_append_text(run, opened)
        ),
    ));
    let cause = steps.len() - 1;
    steps.push(Step {
        at_ms: v.at_ms,
        text: format!("{reader} had still not read offset {offset} of {partition}"),
        source: Source::Violation,
    });
    let client = run.trace[opened].detail["client"]
        .as_str()
        .map(str::to_string);
    Some(Story {
        check: v.check.clone(),
        headline: format!(
            "a transaction of producer {pid} on {partition} was never ended: read_committed readers stop at offset {first}"
        ),
        subject: Subject {
            partition: Some(partition),
            offset: Some(first),
            process: client,
            ..Subject::default()
        },
        cause: Some(cause),
        steps,
    })
}

/// `unavailable` for a writer: its last acknowledged write, its failures, and the faults.
fn stalled_writer(v: &Violation, run: &Run, writer: String) -> Story {
    let mut steps: Vec<Step> = run
        .trace
        .iter()
        .enumerate()
        .filter(|(_, e)| is_fault(e) && e.at_ms <= v.at_ms)
        .map(|(i, _)| described(run, i))
        .collect();
    let mut sends = run
        .history
        .iter()
        .enumerate()
        .filter(|(_, op)| op.process == writer && op.f == "send" && op.kind != OpType::Invoke);
    let last_ok = sends.clone().rfind(|(_, op)| op.kind == OpType::Ok);
    if let Some((i, op)) = last_ok {
        steps.push(op_step(
            run,
            i,
            format!("{} (its last acknowledged write)", send_text(op)),
        ));
    }
    if let Some((i, op)) = sends.rfind(|(_, op)| op.kind != OpType::Ok) {
        steps.push(op_step(run, i, send_text(op)));
    }
    steps.push(Step {
        at_ms: v.at_ms,
        text: v.detail.clone(),
        source: Source::Violation,
    });
    Story {
        check: v.check.clone(),
        headline: format!("{writer} could not write again after the faults were healed"),
        subject: Subject {
            partition: v.partition.clone(),
            process: Some(writer),
            ..Subject::default()
        },
        cause: None,
        steps,
    }
}

/// Any other check: the violation, after the events of its partition (or the faults, for one
/// without a partition) that came before it.
pub(super) fn fallback(v: &Violation, run: &Run) -> Story {
    let at = index_at(run, v.at_ms + 1);
    let concerns = |e: &crate::history::TraceEvent| {
        is_fault(e)
            || (notable(e)
                && match (partition_of(e), v.partition.as_deref()) {
                    (Some(p), Some(q)) => p == q,
                    (None, _) => false,
                    (Some(_), None) => false,
                })
    };
    let chosen: Vec<usize> = (0..at).filter(|&i| concerns(&run.trace[i])).collect();
    let skip = chosen.len().saturating_sub(FALLBACK_EVENTS);
    let mut steps: Vec<Step> = chosen[skip..].iter().map(|&i| described(run, i)).collect();
    steps.push(Step {
        at_ms: v.at_ms,
        text: v.detail.clone(),
        source: Source::Violation,
    });
    Story {
        check: v.check.clone(),
        headline: v.detail.clone(),
        subject: Subject {
            partition: v.partition.clone(),
            ..Subject::default()
        },
        steps,
        cause: None,
    }
}
