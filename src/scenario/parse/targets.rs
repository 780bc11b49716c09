//! Fault targets as `CONTRACT.md` writes them (`broker-2`, `leader(orders-0)`, a client's id),
//! resolved against what the scenario declares.

use std::collections::BTreeSet;

use super::known::{KnownTopic, KnownTopics};
use super::table::{plural, q};
use crate::scenario::model::{ClientSpec, Target, TopicPartition};

/// What a fault's references resolve against.
pub(super) struct Names<'a> {
    pub(super) brokers: u32,
    pub(super) controllers: u32,
    pub(super) topics: &'a KnownTopics,
    pub(super) clients: &'a [ClientSpec],
}

/// The N of `broker-N`: digits only, as written by `Display for Target`.
fn node_id(n: &str) -> Result<u32, ()> {
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || n.starts_with('0') {
        return Err(());
    }
    n.parse().map_err(|_| ())
}

impl Names<'_> {
    pub(super) fn topic(&self, name: &str) -> Result<&KnownTopic, String> {
        self.topics.get(name)
    }

    pub(super) fn group_declared(&self, group: &str) -> Result<(), String> {
        if self
            .clients
            .iter()
            .any(|c| c.group.as_deref() == Some(group))
        {
            return Ok(());
        }
        let groups: BTreeSet<&str> = self
            .clients
            .iter()
            .filter_map(|c| c.group.as_deref())
            .collect();
        let known = if groups.is_empty() {
            "no client has one".into()
        } else {
            format!(
                "declared: {}",
                groups.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        Err(format!("unknown group {} ({known})", q(group)))
    }

    /// `TOPIC-P`, split at the last '-' (topic names may hold '-').
    pub(super) fn partition(&self, text: &str) -> Result<TopicPartition, String> {
        let Some((topic, p)) = text.rsplit_once('-') else {
            return Err(format!(
                "expected TOPIC-PARTITION like \"orders-0\", found {}",
                q(text)
            ));
        };
        let spec = self.topic(topic)?;
        let partition: u32 = p.parse().map_err(|_| {
            format!(
                "expected TOPIC-PARTITION like \"orders-0\", found {}",
                q(text)
            )
        })?;
        if let Some(count) = spec.partitions.filter(|&count| partition >= count) {
            let last = count - 1;
            return Err(format!(
                "unknown partition {}: topic {topic} has {} ({topic}-0 to {topic}-{last})",
                q(text),
                plural(count, "partition")
            ));
        }
        Ok(TopicPartition {
            topic: topic.to_string(),
            partition,
        })
    }

    pub(super) fn broker(&self, text: &str, n: &str) -> Result<u32, String> {
        match node_id(n) {
            Ok(id) if (1..=self.brokers).contains(&id) => Ok(id),
            _ => Err(format!(
                "unknown target {}: the cluster has {} (broker-1 to broker-{})",
                q(text),
                plural(self.brokers, "broker"),
                self.brokers
            )),
        }
    }

    fn needs_controllers(&self, text: &str) -> Result<(), String> {
        if self.controllers == 0 {
            return Err(format!(
                "unknown target {}: the cluster has no controllers ([cluster] controllers)",
                q(text)
            ));
        }
        Ok(())
    }

    /// A target as `CONTRACT.md` writes them.
    pub(super) fn target(&self, text: &str) -> Result<Target, String> {
        let inner = |prefix: &str| {
            text.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(')'))
                .map(str::trim)
        };
        if text == "broker-*" {
            return Ok(Target::AllBrokers);
        }
        if text == "controller-*" || text == "controller-leader" {
            self.needs_controllers(text)?;
            return Ok(if text == "controller-*" {
                Target::AllControllers
            } else {
                Target::ControllerLeader
            });
        }
        if let Some(n) = text.strip_prefix("broker-") {
            return self.broker(text, n).map(Target::Broker);
        }
        if let Some(n) = text.strip_prefix("controller-") {
            self.needs_controllers(text)?;
            return match node_id(n) {
                Ok(id) if (1..=self.controllers).contains(&id) => Ok(Target::Controller(id)),
                _ => Err(format!(
                    "unknown target {}: the cluster has {} (controller-1 to controller-{})",
                    q(text),
                    plural(self.controllers, "controller"),
                    self.controllers
                )),
            };
        }
        if let Some(tp) = inner("leader(") {
            return self.partition(tp).map(Target::Leader);
        }
        if let Some(tp) = inner("follower(") {
            let tp = self.partition(tp)?;
            let rf = self.topic(&tp.topic)?.replication_factor;
            if rf.is_some_and(|rf| rf < 2) {
                return Err(format!(
                    "target {}: topic {} has replication-factor 1, so no followers",
                    q(text),
                    tp.topic
                ));
            }
            return Ok(Target::Follower(tp));
        }
        if let Some(group) = inner("coordinator(") {
            self.group_declared(group)?;
            return Ok(Target::Coordinator(group.to_string()));
        }
        if self.clients.iter().any(|c| c.id == text) {
            return Ok(Target::Client(text.to_string()));
        }
        // A member of a group consumer, `<id>-N`.
        let member = self.clients.iter().any(|c| {
            c.group.is_some()
                && text
                    .strip_prefix(&format!("{}-", c.id))
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| (1..=c.members).contains(&n))
        });
        if member {
            return Ok(Target::Client(text.to_string()));
        }
        Err(format!(
            "unknown target {} (targets: broker-N, controller-N, broker-*, controller-*, leader(TOPIC-P), \
             follower(TOPIC-P), controller-leader, coordinator(GROUP), a client's id, or a group member's (ID-N))",
            q(text)
        ))
    }
}
