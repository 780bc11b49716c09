//! `eos-violation`: in a consume-transform-produce pipeline, an input whose output is missing or
//! doubled.
//!
//! The guarantee is KIP-98's exactly-once processing ("Transactional Guarantees"; KIP-129 for
//! Kafka Streams; Kafka documentation, *Design*, "Message Delivery Semantics": "the consumer's
//! position is stored as a message in a topic, so we can write the offset to Kafka in the same
//! transaction as the output topics receiving the processed data"): a pipeline that reads with
//! `read_committed`, writes its outputs and commits its input offsets with
//! `sendOffsetsToTransaction` in one transaction has, for every input record below the group's
//! committed offset, exactly one committed output, and none for the records above it (those
//! are not processed yet as far as the group knows: whoever takes over produces their outputs).
//! Jepsen's Bufstream analysis (Kingsbury 2024, <https://jepsen.io/analyses/bufstream-0.1.0>)
//! shows how a delayed commit or abort message tears such a transaction (what KIP-890's epoch
//! bump per transaction closes).
//!
//! Read from the history, the trace and the final state. Each `pipeline` operation (type `ok`)
//! names its group, input topics, output topic and the prefix its outputs carry (`<process>:`;
//! an output's value is the prefix and its input's value). A group may run several pipeline
//! processes (its members): an input's outputs are counted over every prefix of the group, as a
//! partition moves between members and each writes with its own prefix.
//!
//! Per input partition (every partition of the final state of an input topic), the group's
//! final committed offset is that of its last `offset-commit` event (`offset_commit`;
//! transactional ones appear as their commit marker materializes them), or the log start if
//! none. The input records are those of the partition's final log that a `read_committed`
//! consumer would read (outside a transaction or in a committed one); the outputs, the records
//! of the output topic's final logs likewise committed. Then:
//!
//! - an input below the committed offset with no committed output is *missing*, unless an output
//!   of it is in a transaction still `open` in the final log: the run may end between the
//!   markers of one transaction (KIP-98: the coordinator writes them one partition at a time),
//!   so the output partition's COMMIT marker may still be on its way;
//! - an input below the committed offset with two or more committed outputs is *doubled*;
//! - an input at or above the committed offset with a committed output was processed without
//!   its offset committed (*ahead*), unless that output is of its process's last transaction in
//!   the history (`txn` operations list the values sent in them): for the same reason, the
//!   offsets' marker on `__consumer_offsets` may still be on its way when the run ends.
//!
//! And an output whose input is in the input topics only in aborted transactions processed what
//! a `read_committed` consumer never returns (*of an aborted input*). Outputs of inputs the
//! final logs no longer hold (retention, compaction) are not judged.
//!
//! One violation per input partition and kind (missing, doubled, ahead), at the time of the
//! group's last commit of the partition (the pipeline's start if none), naming the first few
//! inputs; one per output partition with outputs of aborted inputs.

use std::collections::{BTreeMap, BTreeSet};

use super::offset_commit::commits;
use super::txn_view::topic_of;
use super::{FinalRecord, FinalState, TxnStatus, Violation};
use crate::history::{Op, OpType, TraceEvent};
use crate::val::Val;

const CHECK: &str = "eos-violation";

/// The inputs listed in a violation before abbreviating.
const SHOWN: usize = 5;

/// Every pipeline process of one group.
#[derive(Debug, Default)]
struct Group<'a> {
    inputs: BTreeSet<&'a str>,
    outputs: BTreeSet<&'a str>,
    prefixes: BTreeSet<&'a str>,
    started_ms: u64,
}

/// The `pipeline` operations, by group.
fn groups(history: &[Op]) -> BTreeMap<&str, Group<'_>> {
    let mut groups: BTreeMap<&str, Group> = BTreeMap::new();
    for op in history
        .iter()
        .filter(|op| op.f == "pipeline" && op.kind == OpType::Ok)
    {
        let v = &op.value;
        let (Some(group), Some(output), Some(prefix)) = (
            v.get("group").and_then(Val::as_str),
            v.get("output").and_then(Val::as_str),
            v.get("prefix").and_then(Val::as_str),
        ) else {
            continue;
        };
        let entry = groups.entry(group).or_insert_with(|| Group {
            started_ms: op.at_ms,
            ..Group::default()
        });
        let inputs = v.get("input").and_then(Val::as_array).unwrap_or_default();
        entry.inputs.extend(inputs.iter().filter_map(Val::as_str));
        entry.outputs.insert(output);
        entry.prefixes.insert(prefix);
    }
    groups
}

/// Where each output value is in the final logs of `topics`, with its record.
fn outputs<'a>(
    state: &'a FinalState,
    topics: &BTreeSet<&str>,
) -> BTreeMap<&'a str, Vec<(&'a str, &'a FinalRecord)>> {
    let mut found: BTreeMap<&str, Vec<(&str, &FinalRecord)>> = BTreeMap::new();
    for (partition, log) in &state.partitions {
        if !topics.contains(topic_of(partition)) {
            continue;
        }
        for record in &log.committed {
            if let Some(value) = record.value.as_deref() {
                found
                    .entry(value)
                    .or_default()
                    .push((partition.as_str(), record));
            }
        }
    }
    found
}

/// The values the history's `txn` completions list: all of them, and those of each process's
/// last transaction (its last `txn` invoke, whatever its completion).
fn transactions(history: &[Op]) -> (BTreeSet<&str>, BTreeSet<&str>) {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    let mut values_by_txn: BTreeMap<(&str, usize), Vec<&str>> = BTreeMap::new();
    for op in history.iter().filter(|op| op.f == "txn") {
        let process = op.process.as_str();
        if op.kind == OpType::Invoke {
            *count.entry(process).or_default() += 1;
            continue;
        }
        let index = count.get(process).copied().unwrap_or(0);
        let values = op.value.get("values").and_then(Val::as_array);
        values_by_txn
            .entry((process, index))
            .or_default()
            .extend(values.into_iter().flatten().filter_map(Val::as_str));
    }
    let mut listed = BTreeSet::new();
    let mut last = BTreeSet::new();
    for ((process, index), values) in values_by_txn {
        if count.get(process) == Some(&index) {
            last.extend(values.iter().copied());
        }
        listed.extend(values);
    }
    (listed, last)
}

/// Whether a committed output may be ahead of its offsets only because the run ended while
/// its transaction's markers were on their way: the history lists it in its process's last
/// transaction; or, listed in none, it is of the last transaction of its producer id in its
/// partition (a producer's next transaction waits for every marker of the one before:
/// `CONCURRENT_TRANSACTIONS`).
fn maybe_in_flight(
    state: &FinalState,
    (listed, last): &(BTreeSet<&str>, BTreeSet<&str>),
    (partition, record): (&str, &FinalRecord),
) -> bool {
    let Some(value) = record.value.as_deref() else {
        return false;
    };
    if last.contains(value) {
        return true;
    }
    if listed.contains(value) || record.txn.is_none() {
        return false;
    }
    let (Some(log), Some(pid)) = (state.partitions.get(partition), record.producer_id) else {
        return false;
    };
    let Some(marker) = log
        .markers
        .iter()
        .find(|m| m.producer_id == pid && m.offset > record.offset)
    else {
        return false;
    };
    !log.committed
        .iter()
        .any(|r| r.producer_id == Some(pid) && r.offset > marker.offset)
}

/// One input's committed outputs, and whether an output of it is still open.
struct Processed<'a> {
    committed: Vec<(&'a str, &'a FinalRecord)>,
    open: bool,
}

fn processed<'a>(
    value: &str,
    prefixes: &BTreeSet<&str>,
    outputs: &BTreeMap<&'a str, Vec<(&'a str, &'a FinalRecord)>>,
) -> Processed<'a> {
    let mut out = Processed {
        committed: Vec::new(),
        open: false,
    };
    for prefix in prefixes {
        for &(partition, record) in outputs
            .get(format!("{prefix}{value}").as_str())
            .into_iter()
            .flatten()
        {
            if record.is_committed_data() {
                out.committed.push((partition, record));
            } else if record.txn == Some(TxnStatus::Open) {
                out.open = true;
            }
        }
    }
    out
}

pub fn check(history: &[Op], trace: &[TraceEvent], state: &FinalState) -> Vec<Violation> {
    let txns = transactions(history);
    let mut final_commits: BTreeMap<(&str, &str), (i64, u64)> = BTreeMap::new();
    for commit in commits(trace) {
        final_commits.insert(
            (commit.group, commit.partition),
            (commit.offset, commit.at_ms),
        );
    }
    let mut found = Vec::new();
    for (group, pipeline) in groups(history) {
        let outputs = outputs(state, &pipeline.outputs);
        for (partition, log) in &state.partitions {
            if !pipeline.inputs.contains(topic_of(partition)) {
                continue;
            }
            let (committed, at_ms) = final_commits
                .get(&(group, partition.as_str()))
                .copied()
                .unwrap_or((log.log_start_offset, pipeline.started_ms));
            let mut judged = Judged::default();
            for record in log.committed.iter().filter(|r| r.is_committed_data()) {
                let Some(value) = record.value.as_deref() else {
                    continue;
                };
                let done = processed(value, &pipeline.prefixes, &outputs);
                let input = (record.offset, value, done.committed);
                if record.offset < committed {
                    match input.2.len() {
                        0 if done.open => {}
                        0 => judged.missing.push(input),
                        1 => {}
                        _ => judged.doubled.push(input),
                    }
                } else if !input.2.is_empty()
                    && !input
                        .2
                        .iter()
                        .all(|&output| maybe_in_flight(state, &txns, output))
                {
                    judged.ahead.push(input);
                }
            }
            let context = format!("group {group} committed offset {committed} of {partition}");
            found.extend(judged.violations(&context, partition, at_ms));
        }
        found.extend(aborted_inputs(state, group, &pipeline, &outputs));
    }
    found
}

/// An input record: offset, value and its committed outputs.
type Input<'a> = (i64, &'a str, Vec<(&'a str, &'a FinalRecord)>);

#[derive(Default)]
struct Judged<'a> {
    missing: Vec<Input<'a>>,
    doubled: Vec<Input<'a>>,
    ahead: Vec<Input<'a>>,
}

impl Judged<'_> {
    fn violations(&self, context: &str, partition: &str, at_ms: u64) -> Vec<Violation> {
        let kinds = [
            (&self.missing, "below it have no committed output"),
            (
                &self.doubled,
                "below it have more than one committed output",
            ),
            (
                &self.ahead,
                "at or above it have a committed output, though their offsets are not committed",
            ),
        ];
        kinds
            .into_iter()
            .filter(|(inputs, _)| !inputs.is_empty())
            .map(|(inputs, what)| Violation {
                check: CHECK.to_string(),
                at_ms,
                detail: format!(
                    "{context}: {} input record(s) {what}: {}",
                    inputs.len(),
                    shown(inputs)
                ),
                partition: Some(partition.to_string()),
            })
            .collect()
    }
}

/// Inputs for a detail: `3 (v-3)`, or with their outputs `4 (v-4 → out-0@1, out-0@5)`.
fn shown(inputs: &[Input]) -> String {
    let mut shown: Vec<String> = inputs
        .iter()
        .take(SHOWN)
        .map(|(offset, value, outputs)| {
            if outputs.is_empty() {
                format!("{offset} ({value})")
            } else {
                let places: Vec<String> = outputs
                    .iter()
                    .map(|(p, r)| format!("{p}@{}", r.offset))
                    .collect();
                format!("{offset} ({value} → {})", places.join(", "))
            }
        })
        .collect();
    if inputs.len() > SHOWN {
        shown.push("…".to_string());
    }
    shown.join(", ")
}

/// Committed outputs of the group whose input is in its input topics only in aborted
/// transactions, one violation per output partition.
fn aborted_inputs(
    state: &FinalState,
    group: &str,
    pipeline: &Group,
    outputs: &BTreeMap<&str, Vec<(&str, &FinalRecord)>>,
) -> Vec<Violation> {
    let mut inputs: BTreeMap<&str, Vec<&FinalRecord>> = BTreeMap::new();
    for (partition, log) in &state.partitions {
        if pipeline.inputs.contains(topic_of(partition)) {
            for record in &log.committed {
                if let Some(value) = record.value.as_deref() {
                    inputs.entry(value).or_default().push(record);
                }
            }
        }
    }
    let mut by_partition: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
    for (output, places) in outputs {
        let Some(input) = pipeline
            .prefixes
            .iter()
            .find_map(|prefix| output.strip_prefix(prefix))
        else {
            continue;
        };
        let aborted = inputs
            .get(input)
            .is_some_and(|records| records.iter().all(|r| r.txn == Some(TxnStatus::Aborted)));
        if !aborted {
            continue;
        }
        for (partition, record) in places.iter().filter(|(_, r)| r.is_committed_data()) {
            by_partition
                .entry(partition)
                .or_default()
                .push((record.offset, output));
        }
    }
    by_partition
        .into_iter()
        .map(|(partition, mut outs)| {
            outs.sort_unstable();
            Violation {
                check: CHECK.to_string(),
                at_ms: pipeline.started_ms,
                detail: format!(
                    "group {group}'s pipeline committed {} output(s) to {partition} of inputs \
                     found only in aborted transactions: {}",
                    outs.len(),
                    super::txn_view::shown_reads(&outs)
                ),
                partition: Some(partition.to_string()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::check::fixtures::{
        marker, offset_commit, op, plain, record_of, state, summary, txn_partition,
    };
    use crate::check::TxnStatus::{Aborted, Committed, Open};

    const W1: (i64, i16) = (1, 0);
    const W2: (i64, i16) = (2, 0);

    /// Two members of group g, w1 and w2, each a pipeline from `in` to `out`.
    fn pipelines() -> Vec<Op> {
        ["w1", "w2"]
            .into_iter()
            .map(|w| {
                op(
                    w,
                    OpType::Ok,
                    "pipeline",
                    json!({"group": "g", "input": ["in"], "output": "out", "prefix": format!("{w}:")}),
                    5,
                )
            })
            .collect()
    }

    /// A transaction of `process` that sent `values`, completed `kind`.
    fn txn(process: &str, kind: OpType, values: &[&str], at_ms: u64) -> [Op; 2] {
        [
            op(
                process,
                OpType::Invoke,
                "txn",
                json!({"transactional_id": process}),
                at_ms,
            ),
            op(process, kind, "txn", json!({"values": values}), at_ms + 1),
        ]
    }

    /// in-0: i-0 … i-5 at offsets 0..=5, then i-x in an aborted transaction (marker at 7).
    fn input() -> crate::check::FinalPartition {
        let mut records: Vec<FinalRecord> = (0..6).map(|i| plain(i, &format!("i-{i}"))).collect();
        records.push(record_of(6, "i-x", (9, 0), Some(Aborted)));
        txn_partition(records, vec![marker(7, (9, 0), false)])
    }

    /// The group committed offset 4 of in-0 at 500 ms (after 3 at 300 ms).
    fn trace() -> Vec<TraceEvent> {
        vec![
            offset_commit(300, "g", ("in-0", 3), None),
            offset_commit(500, "g", ("in-0", 4), None),
        ]
    }

    #[test]
    fn one_committed_output_per_committed_input_is_quiet() {
        let mut history = pipelines();
        history.extend(txn("w1", OpType::Ok, &["w1:i-0", "w1:i-1"], 100));
        history.extend(txn("w1", OpType::Fail, &["w1:i-2"], 200));
        history.extend(txn("w2", OpType::Ok, &["w2:i-2", "w2:i-3"], 300));
        history.extend(txn("w2", OpType::Ok, &["w2:i-4"], 400));
        let output = txn_partition(
            vec![
                record_of(0, "w1:i-0", W1, Some(Committed)),
                record_of(1, "w1:i-1", W1, Some(Committed)),
                // w1's attempt at i-2 aborted; w2 took over the partition and did it again.
                record_of(3, "w1:i-2", W1, Some(Aborted)),
                record_of(5, "w2:i-2", W2, Some(Committed)),
                record_of(6, "w2:i-3", W2, Some(Committed)),
                // Ahead of the committed offset, but of w2's last transaction: the offsets'
                // marker may still be on its way.
                record_of(8, "w2:i-4", W2, Some(Committed)),
                // Ahead, listed in no transaction of the history, of w1's last transaction in
                // out-0.
                record_of(10, "w1:i-5", W1, Some(Committed)),
                // Unrelated records of another producer.
                plain(12, "p-0"),
            ],
            vec![
                marker(2, W1, true),
                marker(4, W1, false),
                marker(7, W2, true),
                marker(9, W2, true),
                marker(11, W1, true),
            ],
        );
        let final_state = state(vec![("in-0", input()), ("out-0", output)]);
        assert_eq!(check(&history, &trace(), &final_state), vec![]);
    }

    #[test]
    fn missing_doubled_and_early_outputs_fire() {
        let mut history = pipelines();
        history.extend(txn("w1", OpType::Ok, &["w1:i-0", "w1:i-2"], 100));
        history.extend(txn("w2", OpType::Ok, &["w2:i-2", "w2:i-5"], 200));
        history.extend(txn("w2", OpType::Ok, &["w2:i-3"], 300));
        let output = txn_partition(
            vec![
                record_of(0, "w1:i-0", W1, Some(Committed)),
                // i-1: no output at all. i-2: two committed outputs (w1's and w2's).
                record_of(1, "w1:i-2", W1, Some(Committed)),
                record_of(3, "w2:i-2", W2, Some(Committed)),
                // i-5 is above the committed offset, and its transaction was not w2's last.
                record_of(4, "w2:i-5", W2, Some(Committed)),
                record_of(6, "w2:i-3", W2, Some(Committed)),
                // The output of an aborted input.
                record_of(8, "w1:i-x", W1, Some(Committed)),
            ],
            vec![
                marker(2, W1, true),
                marker(5, W2, true),
                marker(7, W2, true),
                marker(9, W1, true),
            ],
        );
        let final_state = state(vec![("in-0", input()), ("out-0", output)]);
        let found = check(&history, &trace(), &final_state);
        assert_eq!(
            summary(&found),
            vec![
                (500, Some("in-0")),
                (500, Some("in-0")),
                (500, Some("in-0")),
                (5, Some("out-0")),
            ]
        );
        assert!(found.iter().all(|v| v.check == "eos-violation"));
        assert_eq!(
            found[0].detail,
            "group g committed offset 4 of in-0: 1 input record(s) below it have no committed \
             output: 1 (i-1)"
        );
        assert_eq!(
            found[1].detail,
            "group g committed offset 4 of in-0: 1 input record(s) below it have more than one \
             committed output: 2 (i-2 → out-0@1, out-0@3)"
        );
        assert_eq!(
            found[2].detail,
            "group g committed offset 4 of in-0: 1 input record(s) at or above it have a \
             committed output, though their offsets are not committed: 5 (i-5 → out-0@4)"
        );
        assert_eq!(
            found[3].detail,
            "group g's pipeline committed 1 output(s) to out-0 of inputs found only in aborted \
             transactions: 8 (w1:i-x)"
        );
    }

    #[test]
    fn an_output_still_open_is_not_missing_yet_and_no_commit_means_the_log_start() {
        let history = pipelines();
        let output = txn_partition(
            vec![
                record_of(0, "w1:i-0", W1, Some(Committed)),
                record_of(2, "w1:i-1", W1, Some(Open)),
            ],
            vec![marker(1, W1, true)],
        );
        let final_state = state(vec![("in-0", input()), ("out-0", output)]);
        let committed_2 = [offset_commit(300, "g", ("in-0", 2), None)];
        assert_eq!(check(&history, &committed_2, &final_state), vec![]);
        // Without any commit of the group, i-0's output is ahead of offset 0; and it is not of
        // w1's last transaction in out-0, which the open one is.
        let found = check(&history, &[], &final_state);
        assert_eq!(summary(&found), vec![(5, Some("in-0"))]);
        assert!(
            found[0].detail.starts_with(
                "group g committed offset 0 of in-0: 1 input record(s) at or above it"
            ),
            "{found:?}"
        );
    }
}
