//! The topics a scenario may name: those declared in `[[topic]]`, those an admin step creates or
//! grows, and those a client creates by using them (Kafka's `auto.create.topics.enable`).
//!
//! Clients are read before the script, so the script's admin steps are looked at first, leniently:
//! a step that does not read is skipped here and refused, with its line, when the script is read.

use super::table::{array_of_tables, q, Table};
use super::topics::check_topic_name;
use super::tree::{Kind, Node};
use super::MAX_PARTITIONS;
use crate::scenario::configs::{self, Scope};
use crate::scenario::model::{ClusterSpec, TopicSpec};

/// Where a topic comes from, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Declared,
    Step,
    Client,
}

/// One topic and the bounds a reference to it is checked against.
#[derive(Clone, Debug)]
pub(super) struct KnownTopic {
    pub(super) name: String,
    /// The most partitions it has anywhere in the script; `None` when the count is left to the
    /// broker at run time, and references are then not checked.
    pub(super) partitions: Option<u32>,
    /// The most replicas a partition of it has anywhere in the script; `None`: not checked.
    pub(super) replication_factor: Option<u32>,
    origin: Origin,
}

pub(super) struct KnownTopics {
    topics: Vec<KnownTopic>,
    /// `auto.create.topics.enable` in `[cluster.config]`: a client may name a topic nobody
    /// created, and the broker creates it with `num.partitions` when it is first asked for it.
    auto_create: bool,
}

/// Two bounds on one topic: the larger, and unchecked if either is.
fn widest(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    Some(a?.max(b?))
}

impl KnownTopics {
    /// The declared topics, then those the script's `create-topic` steps create, then what its
    /// `create-partitions` and `reassign` steps grow.
    pub(super) fn new(
        declared: &[TopicSpec],
        faults: Option<&Node>,
        cluster: &ClusterSpec,
    ) -> Self {
        let mut known = KnownTopics {
            topics: declared
                .iter()
                .map(|t| KnownTopic {
                    name: t.name.clone(),
                    partitions: Some(t.partitions),
                    replication_factor: Some(t.replication_factor),
                    origin: Origin::Declared,
                })
                .collect(),
            auto_create: configs::get_bool(
                &cluster.config,
                "auto.create.topics.enable",
                Scope::Broker,
            )
            .unwrap_or(true),
        };
        let steps: Vec<Table> = array_of_tables(faults, "fault")
            .unwrap_or(&[])
            .iter()
            .filter_map(|node| Table::of(node, "").ok())
            .collect();
        for step in &steps {
            if text(step, "action") == Some("create-topic") {
                known.created(step);
            }
        }
        for step in &steps {
            match text(step, "action") {
                Some("create-partitions") => known.grown(step),
                Some("reassign") => known.reassigned(step),
                _ => {}
            }
        }
        known
    }

    fn created(&mut self, step: &Table) {
        let Some(name) = text(step, "topic").filter(|n| check_topic_name(n).is_ok()) else {
            return;
        };
        let rows = match step.get("assignment").map(|n| &n.kind) {
            Some(Kind::Array(rows)) => Some(rows),
            _ => None,
        };
        let partitions = count(step, "partitions")
            .or_else(|| rows.and_then(|r| u32::try_from(r.len()).ok()))
            .filter(|&p| (1..=MAX_PARTITIONS).contains(&p));
        let row_len = |row: &Node| match &row.kind {
            Kind::Array(replicas) => u32::try_from(replicas.len()).ok(),
            _ => None,
        };
        let replication_factor = count(step, "replication-factor")
            .or_else(|| rows.and_then(|r| r.first()).and_then(row_len));
        match self.topics.iter_mut().find(|t| t.name == name) {
            Some(t) => {
                t.partitions = widest(t.partitions, partitions);
                t.replication_factor = widest(t.replication_factor, replication_factor);
            }
            None => self.topics.push(KnownTopic {
                name: name.to_string(),
                partitions,
                replication_factor,
                origin: Origin::Step,
            }),
        }
    }

    /// `create-partitions`: the topic has the new total from then on.
    fn grown(&mut self, step: &Table) {
        let Some(t) = text(step, "topic").and_then(|n| self.find_mut(n)) else {
            return;
        };
        if let Some(p) = count(step, "partitions").filter(|&p| p <= MAX_PARTITIONS) {
            t.partitions = t.partitions.map(|old| old.max(p));
        }
    }

    /// `reassign`: a partition may get more replicas than the topic was created with.
    fn reassigned(&mut self, step: &Table) {
        let Some((topic, _)) = text(step, "partition").and_then(|p| p.rsplit_once('-')) else {
            return;
        };
        let Some(t) = self.find_mut(topic) else {
            return;
        };
        if let Some(Kind::Array(replicas)) = step.get("replicas").map(|n| &n.kind) {
            let n = u32::try_from(replicas.len()).unwrap_or(u32::MAX);
            t.replication_factor = t.replication_factor.map(|old| old.max(n));
        }
    }

    fn find_mut(&mut self, name: &str) -> Option<&mut KnownTopic> {
        self.topics.iter_mut().find(|t| t.name == name)
    }

    /// A topic the scenario names: declared, created by a step, or used by a client.
    pub(super) fn get(&self, name: &str) -> Result<&KnownTopic, String> {
        self.topics
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| format!("unknown topic {} ({})", q(name), self.listing()))
    }

    /// A topic a client writes or reads: known, or created by the broker on first use when
    /// `auto.create.topics.enable` allows (its partitions are then the broker's business).
    pub(super) fn for_client(&mut self, name: &str) -> Result<(), String> {
        if self.get(name).is_ok() {
            return Ok(());
        }
        if !self.auto_create {
            return Err(format!(
                "unknown topic {} ({}; auto.create.topics.enable is false in [cluster.config], so no client creates it)",
                q(name),
                self.listing()
            ));
        }
        check_topic_name(name)?;
        self.topics.push(KnownTopic {
            name: name.to_string(),
            partitions: None,
            replication_factor: None,
            origin: Origin::Client,
        });
        Ok(())
    }

    /// The known topics by origin: "declared: a, b; created by a step: c".
    fn listing(&self) -> String {
        let parts: Vec<String> = [
            (Origin::Declared, "declared"),
            (Origin::Step, "created by a step"),
            (Origin::Client, "created by a client"),
        ]
        .into_iter()
        .filter_map(|(origin, label)| {
            let names: Vec<&str> = self
                .topics
                .iter()
                .filter(|t| t.origin == origin)
                .map(|t| t.name.as_str())
                .collect();
            (!names.is_empty()).then(|| format!("{label}: {}", names.join(", ")))
        })
        .collect();
        if parts.is_empty() {
            "none are declared".to_string()
        } else {
            parts.join("; ")
        }
    }
}

fn text<'a>(step: &Table<'a>, key: &str) -> Option<&'a str> {
    match step.get(key).map(|n| &n.kind) {
        Some(Kind::Str(s)) => Some(s),
        _ => None,
    }
}

/// A positive count, or nothing if it is not one (the script's reading refuses it).
fn count(step: &Table, key: &str) -> Option<u32> {
    match step.get(key).map(|n| &n.kind) {
        Some(Kind::Int(v)) => u32::try_from(*v).ok().filter(|&v| v >= 1),
        _ => None,
    }
}
