//! `[[fault]]`: the action, when it fires (`at` or `when`), and what it acts on.

use super::admin::admin_keys;
use super::condition::parse_condition;
use super::table::{array, array_of_tables, found, q, string, strings, Table};
use super::targets::Names;
use super::tree::{Kind, Node};
use super::values::{duration_ms_of, ms_at_least, positive_ms, probability, show_ms};
use super::{fail, Fail, Lines, Res};
use crate::scenario::configs;
use crate::scenario::model::{Action, FaultSpec, Target, Trigger};

const FAULT_KEYS: &[&str] = &[
    "at",
    "when",
    "after",
    "action",
    "target",
    "groups",
    "from",
    "to",
    "for",
    "rate",
    "by",
    "factor",
    "api",
    "file",
    "topic",
    "partitions",
    "replication-factor",
    "assignment",
    "config",
    "partition",
    "replicas",
    "election",
    "group",
];
const FAULT_COMMON: &[&str] = &["at", "when", "after", "action"];

/// The keys an action takes beyond the common ones: those it needs, and those it may have.
fn action_keys(action: Action) -> (&'static [&'static str], &'static [&'static str]) {
    match action {
        Action::Kill
        | Action::Crash
        | Action::Pause
        | Action::Isolate
        | Action::DiskFull
        | Action::ControlledShutdown => (&["target"], &["for"]),
        Action::Restart | Action::Resume | Action::Wipe => (&["target"], &[]),
        Action::Partition => (&["groups"], &["for"]),
        Action::Heal => (&[], &[]),
        Action::ClogLink => (&["from", "to"], &["for"]),
        Action::Loss => (&["rate"], &["for"]),
        Action::SlowDisk => (&["target", "factor"], &["for"]),
        Action::Corrupt => (&["target"], &["file"]),
        Action::ClockSkew => (&["target", "by"], &["for"]),
        Action::Delay => (&["target", "api", "by"], &["for"]),
        Action::CreateTopic => (
            &["topic"],
            &["partitions", "replication-factor", "assignment", "config"],
        ),
        Action::DeleteTopic => (&["topic"], &[]),
        Action::CreatePartitions => (&["topic", "partitions"], &[]),
        Action::Reassign => (&["partition", "replicas"], &[]),
        Action::ElectLeaders => (&["election"], &["partition"]),
        Action::DescribeGroup => (&["group"], &[]),
    }
}

pub(super) fn faults(
    node: Option<&Node>,
    names: &Names,
    duration_ms: u64,
    lines: &Lines,
) -> Res<Vec<FaultSpec>> {
    array_of_tables(node, "fault")?
        .iter()
        .enumerate()
        .map(|(i, node)| fault(node, i + 1, names, duration_ms, lines))
        .collect()
}

fn fault(
    node: &Node,
    index: usize,
    names: &Names,
    duration_ms: u64,
    lines: &Lines,
) -> Res<FaultSpec> {
    let mut t = Table::of(node, format!("[[fault]] #{index}"))?;
    let action = fault_action(&t)?;
    t.name = format!("[[fault]] #{index} ({action})");
    allow_action_keys(&t, action)?;
    let trigger = trigger(&t, names, duration_ms)?;
    let target = t.opt("target", |n, w| fault_target(n, w, names, action))?;
    let (from, to) = (
        t.opt("from", |n, w| target_at(n, w, names))?,
        t.opt("to", |n, w| target_at(n, w, names))?,
    );
    if from.is_some() && from == to {
        return fail(
            t.get("to").and_then(Node::pos),
            format!("{} is the same node as `from`", t.what("to")),
        );
    }
    let by_ms = t.opt("by", |n, w| fault_by_ms(n, w, action))?;
    let admin = admin_keys(&t, action, names)?;
    Ok(FaultSpec {
        trigger,
        after_ms: t.opt("after", |n, w| ms_at_least(n, w, 0))?.unwrap_or(0),
        action,
        target,
        groups: t
            .opt("groups", |n, w| partition_groups(n, w, names))?
            .unwrap_or_default(),
        from,
        to,
        for_ms: t.opt("for", positive_ms)?,
        rate: t.opt("rate", probability)?,
        by_ms,
        factor: t.opt("factor", slowdown)?,
        api: t.opt("api", api_name)?,
        file: t.opt("file", file_pattern)?,
        topic: admin.topic,
        partitions: admin.partitions,
        replication_factor: admin.replication_factor,
        assignment: admin.assignment,
        config: admin.config,
        partition: admin.partition,
        replicas: admin.replicas,
        election: admin.election,
        group: t.opt("group", |n, w| described_group(n, w, names))?,
        line: lines.line_of(node),
    })
}

/// `action`, by its name in `CONTRACT.md`.
fn fault_action(t: &Table) -> Res<Action> {
    let action_node = t.req("action")?;
    let action_name = string(action_node, &t.what("action"))?;
    let Some(action) = Action::from_name(action_name) else {
        let all: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        let hint = configs::closest(action_name, all.iter().copied())
            .map(|a| format!("did you mean {}? ", q(a)))
            .unwrap_or_default();
        let message = format!(
            "unknown action {} in {} ({hint}actions: {})",
            q(action_name),
            t.name,
            all.join(", ")
        );
        return fail(action_node.pos(), message);
    };
    Ok(action)
}

/// Refuses the keys the action does not take, and requires those it needs.
fn allow_action_keys(t: &Table, action: Action) -> Res<()> {
    let (needs, may) = action_keys(action);
    let allowed: Vec<&str> = FAULT_COMMON
        .iter()
        .chain(needs)
        .chain(may)
        .copied()
        .collect();
    t.allow(
        &allowed,
        FAULT_KEYS,
        &format!("does not apply to action {}", q(action.name())),
    )?;
    for key in needs {
        t.req(key)?;
    }
    Ok(())
}

/// `by`: how long a delay, or how far a clock skews (the one that may be negative); never zero.
fn fault_by_ms(node: &Node, what: &str, action: Action) -> Res<i64> {
    let by = duration_ms_of(node, what, action == Action::ClockSkew)?;
    if by == 0 {
        return fail(node.pos(), format!("{what} must not be zero"));
    }
    Ok(by)
}

/// `file`: which of the node's files to corrupt.
fn file_pattern(node: &Node, what: &str) -> Res<String> {
    let file = string(node, what)?;
    if file.is_empty() {
        return fail(node.pos(), format!("{what} must not be empty"));
    }
    Ok(file.to_string())
}

fn trigger(t: &Table, names: &Names, duration_ms: u64) -> Res<Trigger> {
    match (t.get("at"), t.get("when")) {
        (Some(_), Some(when)) => fail(
            when.pos(),
            format!("{} has both `at` and `when`: give exactly one", t.name),
        ),
        (None, None) => fail(
            t.pos,
            format!("{} needs `at` (a time) or `when` (a condition)", t.name),
        ),
        (Some(at), None) => {
            let ms = ms_at_least(at, &t.what("at"), 0)?;
            if ms >= duration_ms {
                let message = format!(
                    "{} is {}, when the scenario has ended ({})",
                    t.what("at"),
                    show_ms(ms),
                    show_ms(duration_ms)
                );
                return fail(at.pos(), message);
            }
            Ok(Trigger::At(ms))
        }
        (None, Some(when)) => {
            let what = t.what("when");
            let text = string(when, &what)?;
            let condition = parse_condition(text, names).map_err(|m| Fail {
                pos: when.pos(),
                message: format!("{what}: {m}"),
            })?;
            Ok(Trigger::When(condition))
        }
    }
}

fn target_at(node: &Node, what: &str, names: &Names) -> Res<Target> {
    let text = string(node, what)?;
    names.target(text).map_err(|m| Fail {
        pos: node.pos(),
        message: format!("{what}: {m}"),
    })
}

fn fault_target(node: &Node, what: &str, names: &Names, action: Action) -> Res<Target> {
    let target = target_at(node, what, names)?;
    let broker = matches!(
        target,
        Target::Broker(_)
            | Target::AllBrokers
            | Target::Leader(_)
            | Target::Follower(_)
            | Target::Coordinator(_)
    );
    if action == Action::ControlledShutdown && !broker {
        return fail(
            node.pos(),
            format!(
                "{what}: only a broker shuts down in a controlled way (broker-N, broker-*, \
                 leader(TOPIC-P), follower(TOPIC-P), coordinator(GROUP)), found {}",
                q(&target.to_string())
            ),
        );
    }
    let on_disk = matches!(
        action,
        Action::Wipe | Action::SlowDisk | Action::DiskFull | Action::Corrupt
    );
    if on_disk {
        if let Target::Client(id) = &target {
            return fail(
                node.pos(),
                format!(
                    "{what}: {} acts on a disk, and client {} has none",
                    q(action.name()),
                    q(id)
                ),
            );
        }
    }
    Ok(target)
}

fn partition_groups(node: &Node, what: &str, names: &Names) -> Res<Vec<Vec<Target>>> {
    let sides = array(node, what)?;
    if sides.len() < 2 {
        return fail(node.pos(), format!("{what} must list at least two groups, like [[\"broker-1\"], [\"broker-2\", \"broker-3\"]]"));
    }
    let mut out: Vec<Vec<Target>> = Vec::with_capacity(sides.len());
    for side in sides {
        let members = strings(side, &format!("each group of {what}"))?;
        if members.is_empty() {
            return fail(side.pos(), format!("{what} has an empty group"));
        }
        let mut group = Vec::with_capacity(members.len());
        for (text, item) in members {
            let target = target_at(item, what, names)?;
            let overlaps = |t: &Target| overlap(t, &target);
            if out.iter().flatten().chain(group.iter()).any(overlaps) {
                return fail(item.pos(), format!("{what} puts {} in two groups", q(text)));
            }
            group.push(target);
        }
        out.push(group);
    }
    Ok(out)
}

/// Two targets that certainly name a common node (the dynamic ones are resolved only when the
/// fault fires).
fn overlap(a: &Target, b: &Target) -> bool {
    match (a, b) {
        (Target::AllBrokers, Target::Broker(_) | Target::AllBrokers)
        | (Target::Broker(_), Target::AllBrokers)
        | (
            Target::AllControllers,
            Target::Controller(_) | Target::AllControllers | Target::ControllerLeader,
        )
        | (Target::Controller(_) | Target::ControllerLeader, Target::AllControllers) => true,
        _ => a == b,
    }
}

fn slowdown(node: &Node, what: &str) -> Res<f64> {
    let factor = match node.kind {
        Kind::Int(v) => v as f64,
        Kind::Float(v) => v,
        _ => {
            return fail(
                node.pos(),
                format!("{what} must be a number above 1, found {}", found(node)),
            )
        }
    };
    if !(factor.is_finite() && factor > 1.0 && factor <= 1e6) {
        return fail(
            node.pos(),
            format!("{what} must be above 1 (a slowdown) and at most 1000000, found {factor}"),
        );
    }
    Ok(factor)
}

/// A Kafka API by its name in the protocol (`Produce`, `EndTxn`, `AlterPartition`, …).
fn api_name(node: &Node, what: &str) -> Res<String> {
    let name = string(node, what)?;
    let apis: Vec<String> = kafka_protocol::messages::ApiKey::iter()
        .map(|k| format!("{k:?}"))
        .collect();
    if apis.iter().any(|a| a == name) {
        return Ok(name.to_string());
    }
    let hint = configs::closest(name, apis.iter().map(String::as_str))
        .map(|a| format!("did you mean {}? ", q(a)))
        .unwrap_or_default();
    fail(node.pos(), format!("{what}: unknown Kafka API {} ({hint}e.g. Produce, Fetch, EndTxn, AddPartitionsToTxn, AlterPartition)", q(name)))
}

/// `group` of a `describe-group`: a group some consumer of the scenario is in.
fn described_group(node: &Node, what: &str, names: &Names) -> Res<String> {
    let name = string(node, what)?;
    if !names
        .clients
        .iter()
        .any(|c| c.group.as_deref() == Some(name))
    {
        return fail(
            node.pos(),
            format!(
                "{what}: no consumer of this scenario is in group {}",
                q(name)
            ),
        );
    }
    Ok(name.to_string())
}
