//! `[[topic]]`: a topic's name, partitions, replication factor, configs and assignment.

use super::sections::kafka_configs;
use super::table::{array, array_of_tables, plural, q, string, u32_in, Table};
use super::tree::Node;
use super::{fail, Fail, Res, MAX_NODES, MAX_PARTITIONS};
use crate::scenario::configs::{self, Scope};
use crate::scenario::model::{ClusterSpec, TopicSpec};

pub(super) fn topics(node: Option<&Node>, cluster: &ClusterSpec) -> Res<Vec<TopicSpec>> {
    let mut out: Vec<TopicSpec> = Vec::new();
    for (i, node) in array_of_tables(node, "topic")?.iter().enumerate() {
        let topic = topic(node, i + 1, cluster)?;
        if out.iter().any(|t| t.name == topic.name) {
            let at = Table::of(node, "")?.get("name").and_then(Node::pos);
            return fail(at, format!("topic {} is declared twice", q(&topic.name)));
        }
        out.push(topic);
    }
    Ok(out)
}

fn topic(node: &Node, index: usize, cluster: &ClusterSpec) -> Res<TopicSpec> {
    let mut t = Table::of(node, format!("[[topic]] #{index}"))?;
    t.name_by("name", "[[topic]]");
    t.allow(
        &[
            "name",
            "partitions",
            "replication-factor",
            "config",
            "assignment",
        ],
        &[],
        "",
    )?;
    let name_node = t.req("name")?;
    let name = string(name_node, &t.what("name"))?.to_string();
    check_topic_name(&name).map_err(|m| Fail {
        pos: name_node.pos(),
        message: m,
    })?;
    // As in Kafka's CreateTopics without counts: the broker's defaults.
    let default_partitions =
        configs::get_i64(&cluster.config, "num.partitions", Scope::Broker).unwrap_or(1);
    let default_rf =
        configs::get_i64(&cluster.config, "default.replication.factor", Scope::Broker).unwrap_or(1);
    let partitions = t.opt("partitions", |n, w| u32_in(n, w, 1, MAX_PARTITIONS))?;
    let partitions =
        partitions.unwrap_or(default_partitions.clamp(1, MAX_PARTITIONS.into()) as u32);
    let rf = t.opt("replication-factor", |n, w| u32_in(n, w, 1, MAX_NODES))?;
    let replication_factor = rf.unwrap_or(default_rf.clamp(1, MAX_NODES.into()) as u32);
    if replication_factor > cluster.brokers {
        let at = t.get("replication-factor").and_then(Node::pos).or(t.pos);
        let brokers = plural(cluster.brokers, "broker");
        let message = format!("topic {name} has replication-factor {replication_factor} but the cluster has {brokers}");
        return fail(at, message);
    }
    let config_name = format!("the config of topic {}", q(&name));
    let config = t
        .opt("config", |n, _| {
            kafka_configs(n, &[Scope::Topic], &config_name)
        })?
        .unwrap_or_default();
    let assignment = t.opt("assignment", |n, w| {
        assignment(n, w, partitions, replication_factor, cluster.brokers)
    })?;
    Ok(TopicSpec {
        name,
        partitions,
        replication_factor,
        config,
        assignment,
    })
}

/// Kafka's rule for topic names (`Topic.validate`), and its internal topics kept out.
pub(super) fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("{} is not a legal topic name", q(name)));
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name {} is longer than Kafka's 249 characters",
            q(name)
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("topic name {} has the character {c:?}: Kafka allows only a-z, A-Z, 0-9, '.', '_' and '-'", q(name)));
    }
    if name == "__consumer_offsets" || name == "__transaction_state" {
        return Err(format!("{} is one of Kafka's internal topics", q(name)));
    }
    Ok(())
}

pub(super) fn assignment(
    node: &Node,
    what: &str,
    partitions: u32,
    rf: u32,
    brokers: u32,
) -> Res<Vec<Vec<u32>>> {
    let rows = array(node, what)?;
    if rows.len() != partitions as usize {
        let message = format!(
            "{what} must have one list per partition: {}, found {}",
            partitions,
            rows.len()
        );
        return fail(node.pos(), message);
    }
    let mut out = Vec::with_capacity(rows.len());
    for (p, row) in rows.iter().enumerate() {
        let row_what = format!("partition {p} of {what}");
        let replicas = array(row, &row_what)?;
        if replicas.len() != rf as usize {
            return fail(
                row.pos(),
                format!(
                    "{row_what} must list {rf} replicas (the replication-factor), found {}",
                    replicas.len()
                ),
            );
        }
        let mut ids = Vec::with_capacity(replicas.len());
        for replica in replicas {
            let id = u32_in(replica, &format!("each broker of {row_what}"), 1, brokers)?;
            if ids.contains(&id) {
                return fail(replica.pos(), format!("{row_what} lists broker {id} twice"));
            }
            ids.push(id);
        }
        out.push(ids);
    }
    Ok(out)
}
