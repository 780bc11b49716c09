//! The script's admin steps: `create-topic`, `delete-topic`, `create-partitions`, `reassign` and
//! `elect-leaders`, what Kafka's Admin API asks of a cluster (`kafka-topics`,
//! `kafka-reassign-partitions`, `kafka-leader-election`). Which keys each step takes is checked
//! with the other actions' in `faults`; here each key is read.
//!
//! What Kafka itself refuses at run time is left for the run to show: a `replication-factor`
//! above the broker count (INVALID_REPLICATION_FACTOR), a `create-partitions` total that does not
//! grow the topic (INVALID_PARTITIONS), a `create-topic` of a topic that exists.

use super::sections::kafka_configs;
use super::table::{array, q, string, u32_in, Table};
use super::targets::Names;
use super::topics::{assignment, check_topic_name};
use super::tree::Node;
use super::{fail, Fail, Res, MAX_NODES, MAX_PARTITIONS};
use crate::scenario::configs::Scope;
use crate::scenario::model::{Action, Configs, Election, TopicPartition};

/// The keys of the admin steps, read; each is `None` (or empty) where the step does not take it.
pub(super) struct AdminKeys {
    pub(super) topic: Option<String>,
    pub(super) partitions: Option<u32>,
    pub(super) replication_factor: Option<u32>,
    pub(super) assignment: Option<Vec<Vec<u32>>>,
    pub(super) config: Configs,
    pub(super) partition: Option<TopicPartition>,
    pub(super) replicas: Vec<u32>,
    pub(super) election: Option<Election>,
}

pub(super) fn admin_keys(t: &Table, action: Action, names: &Names) -> Res<AdminKeys> {
    let topic = t.opt("topic", |n, w| step_topic(n, w, action, names))?;
    let partitions = t.opt("partitions", |n, w| u32_in(n, w, 1, MAX_PARTITIONS))?;
    let replication_factor = t.opt("replication-factor", |n, w| u32_in(n, w, 1, MAX_NODES))?;
    let assignment = t.opt("assignment", |n, w| {
        created_assignment(n, w, partitions, replication_factor, names.brokers)
    })?;
    let config_name = format!("the config of {}", t.name);
    let config = t
        .opt("config", |n, _| {
            kafka_configs(n, &[Scope::Topic], &config_name)
        })?
        .unwrap_or_default();
    Ok(AdminKeys {
        topic,
        partitions,
        replication_factor,
        assignment,
        config,
        partition: t.opt("partition", |n, w| partition_at(n, w, names))?,
        replicas: t
            .opt("replicas", |n, w| replicas(n, w, names.brokers))?
            .unwrap_or_default(),
        election: t.opt("election", election)?,
    })
}

/// `topic`: a legal name for the topic a `create-topic` makes; a known topic otherwise.
fn step_topic(node: &Node, what: &str, action: Action, names: &Names) -> Res<String> {
    let name = string(node, what)?;
    let known = if action == Action::CreateTopic {
        check_topic_name(name)
    } else {
        names.topic(name).map(|_| ())
    };
    known.map_err(|m| Fail {
        pos: node.pos(),
        message: format!("{what}: {m}"),
    })?;
    Ok(name.to_string())
}

/// `assignment` of a `create-topic`: as a `[[topic]]`'s, but the counts it leaves out are its
/// own (Kafka's CreateTopics takes an assignment instead of counts), and the replication factor
/// is not compared with the broker count beyond each replica being a broker.
fn created_assignment(
    node: &Node,
    what: &str,
    partitions: Option<u32>,
    rf: Option<u32>,
    brokers: u32,
) -> Res<Vec<Vec<u32>>> {
    let rows = array(node, what)?;
    let Some(first) = rows.first() else {
        return fail(
            node.pos(),
            format!("{what} must list the replicas of at least one partition"),
        );
    };
    let rows_count = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    if partitions.is_none() && rows_count > MAX_PARTITIONS {
        return fail(
            node.pos(),
            format!("{what} lists {rows_count} partitions, more than {MAX_PARTITIONS}"),
        );
    }
    let rf = match rf {
        Some(rf) => rf,
        None => {
            let first_what = format!("partition 0 of {what}");
            let replicas = array(first, &first_what)?.len();
            if replicas == 0 {
                return fail(
                    first.pos(),
                    format!("{first_what} must list at least one broker"),
                );
            }
            u32::try_from(replicas).unwrap_or(u32::MAX)
        }
    };
    assignment(node, what, partitions.unwrap_or(rows_count), rf, brokers)
}

/// `partition`: a known partition, `TOPIC-P`.
fn partition_at(node: &Node, what: &str, names: &Names) -> Res<TopicPartition> {
    let text = string(node, what)?;
    names.partition(text).map_err(|m| Fail {
        pos: node.pos(),
        message: format!("{what}: {m}"),
    })
}

/// `replicas`: brokers of the cluster, at least one, each once, preferred leader first.
fn replicas(node: &Node, what: &str, brokers: u32) -> Res<Vec<u32>> {
    let items = array(node, what)?;
    if items.is_empty() {
        return fail(node.pos(), format!("{what} must list at least one broker"));
    }
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        let id = u32_in(item, &format!("each broker of {what}"), 1, brokers)?;
        if ids.contains(&id) {
            return fail(item.pos(), format!("{what} lists broker {id} twice"));
        }
        ids.push(id);
    }
    Ok(ids)
}

fn election(node: &Node, what: &str) -> Res<Election> {
    match string(node, what)? {
        "preferred" => Ok(Election::Preferred),
        "unclean" => Ok(Election::Unclean),
        other => fail(
            node.pos(),
            format!(
                "{what} must be \"preferred\" or \"unclean\", found {}",
                q(other)
            ),
        ),
    }
}
