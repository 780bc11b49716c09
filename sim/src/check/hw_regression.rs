//! `hw-regression`: a partition's high watermark, as seen by clients, went backwards.
//!
//! The high watermark is the offset below which records are committed (Kafka documentation,
//! *Design*, "Replication"): consumers read only below it, `ListOffsets` answers `latest` with
//! it, and a committed record is never truncated. A high watermark that goes backwards tells
//! clients that committed records are not committed any more: a consumer that read up to the
//! old one has read records the partition no longer promises. KIP-101 ("Alter Replication
//! Protocol to use Leader Epoch rather than High Watermark for Truncation") describes how
//! truncating by the high watermark lost or diverged committed records; this checker watches
//! the high watermark itself.
//!
//! Clients are served by the leader, so the high watermarks that count are those of `hw` events
//! with role `leader`. A newly elected leader does not know the committed offset at once: its
//! own high watermark may lag the previous leader's until its followers fetch in its epoch, and
//! until the high watermark reaches the start offset of its leader epoch (`epoch_start`, the log
//! end offset it became leader at) Kafka does not serve it: KIP-207 ("Offsets returned by
//! ListOffsetsResponse should be monotonically increasing even during a partition leader
//! change") answers `ListOffsets` with `OFFSET_NOT_AVAILABLE` until then. So a leader's high
//! watermark counts once `hw >= epoch_start`: it is *established*. (An event without
//! `epoch_start` counts as established.)
//!
//! Per partition, the highest established high watermark seen so far is kept; an established one
//! below it is a regression. One violation per (partition, leader epoch), at the first
//! regression in that epoch, naming the broker, its epoch, the new high watermark and the
//! earlier one with who served it and when; the highest is kept, not lowered, so a leader that
//! stays behind is not reported again and again.
//!
//! **A deleted topic.** A topic deleted and re-created under the same name starts again from
//! offset 0, which is no regression. On a committed `topic-removed` (controllers trace each
//! metadata record as it commits, and a controller that becomes leader may trace old ones
//! again: a record at or below the highest metadata offset seen is not news), each of the
//! topic's partitions forgets its highest high watermark, and the brokers that held a replica
//! of it are ignored for that partition until they trace `partition-removed` (a broker learns
//! of the deletion only as it replays the metadata, and may serve the old topic until then).

use std::collections::{BTreeMap, BTreeSet};

use super::Violation;
use crate::history::TraceEvent;

const CHECK: &str = "hw-regression";

/// The events controllers trace as a metadata record commits, each with its `offset`.
const METADATA_EVENTS: [&str; 8] = [
    "broker-registered",
    "broker-fenced",
    "broker-unfenced",
    "broker-controlled-shutdown",
    "topic-created",
    "topic-removed",
    "partition-state",
    "config",
];

/// The highest established high watermark of a partition, and who served it when.
#[derive(Clone, Copy)]
struct Served<'a> {
    hw: i64,
    node: &'a str,
    leader_epoch: i64,
    at_ms: u64,
}

/// What the checker knows of one partition name.
#[derive(Default)]
struct PartitionHistory<'a> {
    highest: Option<Served<'a>>,
    /// Leader epochs whose regression is already reported.
    reported: BTreeSet<i64>,
    /// Brokers that traced an event of this partition since they last removed it.
    holders: BTreeSet<i64>,
    /// Brokers still holding a replica of a deleted topic of this name.
    stale: BTreeSet<i64>,
}

pub fn check(trace: &[TraceEvent]) -> Vec<Violation> {
    let mut partitions: BTreeMap<&str, PartitionHistory> = BTreeMap::new();
    let mut metadata_offset: Option<i64> = None;
    let mut found = Vec::new();
    for event in trace {
        let detail = &event.detail;
        if event.kind == "topic-removed" {
            let (Some(topic), Some(offset)) = (detail["topic"].as_str(), detail["offset"].as_i64())
            else {
                continue;
            };
            if metadata_offset.is_some_and(|seen| offset <= seen) {
                continue;
            }
            metadata_offset = Some(offset);
            for (_, history) in partitions
                .iter_mut()
                .filter(|(name, _)| name.rsplit_once('-').is_some_and(|(t, _)| t == topic))
            {
                let holders = std::mem::take(&mut history.holders);
                history.stale.extend(holders);
                history.highest = None;
                history.reported.clear();
            }
            continue;
        }
        if METADATA_EVENTS.contains(&event.kind.as_str()) {
            // Other committed metadata: news, or an old record traced again.
            if let Some(offset) = detail["offset"].as_i64() {
                metadata_offset = Some(metadata_offset.map_or(offset, |seen| seen.max(offset)));
            }
            continue;
        }
        let (Some(name), Some(broker)) = (detail["partition"].as_str(), detail["broker"].as_i64())
        else {
            continue;
        };
        let history = partitions.entry(name).or_default();
        if event.kind == "partition-removed" {
            history.stale.remove(&broker);
            history.holders.remove(&broker);
            continue;
        }
        if history.stale.contains(&broker) {
            continue;
        }
        history.holders.insert(broker);
        if event.kind == "hw" {
            if let Some(violation) = leader_hw(event, name, history) {
                found.push(violation);
            }
        }
    }
    found
}

/// Takes a `hw` event of `partition`: the regression it shows, if it is one to report.
fn leader_hw<'a>(
    event: &'a TraceEvent,
    partition: &str,
    history: &mut PartitionHistory<'a>,
) -> Option<Violation> {
    let detail = &event.detail;
    if detail["role"].as_str() != Some("leader") {
        return None;
    }
    let hw = detail["hw"].as_i64()?;
    let leader_epoch = detail["leader_epoch"].as_i64().unwrap_or(-1);
    let epoch_start = detail["epoch_start"].as_i64().unwrap_or(-1);
    if hw < epoch_start {
        return None; // not established: Kafka does not serve it (KIP-207)
    }
    let served = Served {
        hw,
        node: &event.node,
        leader_epoch,
        at_ms: event.at_ms,
    };
    let Some(highest) = history.highest else {
        history.highest = Some(served);
        return None;
    };
    if hw >= highest.hw {
        if hw > highest.hw {
            history.highest = Some(served);
        }
        return None;
    }
    if !history.reported.insert(leader_epoch) {
        return None;
    }
    Some(Violation {
        check: CHECK.to_string(),
        at_ms: event.at_ms,
        detail: format!(
            "{} leading {partition} in leader epoch {leader_epoch} served high watermark {hw} \
             (its epoch starts at offset {epoch_start}), below the high watermark {} that {} \
             served in leader epoch {} at {} ms",
            event.node, highest.hw, highest.node, highest.leader_epoch, highest.at_ms
        ),
        partition: Some(partition.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixtures::{event, hw, summary};

    #[test]
    fn an_established_leader_below_an_earlier_high_watermark_fires_once_per_epoch() {
        let trace = [
            hw(10, 1, "orders-0", "leader", 5, 1, 0),
            hw(20, 1, "orders-0", "leader", 8, 1, 0),
            // broker-2 leads epoch 2 from offset 6 (it missed 6 and 7): established at 6 < 8.
            hw(30, 2, "orders-0", "leader", 6, 2, 6),
            // Still behind in the same epoch: not reported again.
            hw(40, 2, "orders-0", "leader", 7, 2, 6),
            // A third epoch behind again: reported again.
            hw(50, 3, "orders-0", "leader", 7, 3, 7),
            // Another partition is judged on its own.
            hw(60, 1, "orders-1", "leader", 3, 1, 0),
            hw(70, 2, "orders-1", "leader", 2, 2, 0),
        ];
        let found = check(&trace);
        assert_eq!(
            summary(&found),
            vec![
                (30, Some("orders-0")),
                (50, Some("orders-0")),
                (70, Some("orders-1")),
            ]
        );
        assert!(found.iter().all(|v| v.check == "hw-regression"));
        assert_eq!(
            found[0].detail,
            "broker-2 leading orders-0 in leader epoch 2 served high watermark 6 (its epoch \
             starts at offset 6), below the high watermark 8 that broker-1 served in leader \
             epoch 1 at 20 ms"
        );
    }

    #[test]
    fn a_new_leader_catching_up_and_followers_do_not_fire() {
        let trace = [
            hw(10, 1, "orders-0", "leader", 8, 1, 0),
            // broker-2 became leader at log end 10: its hw 4, 6 and 9 are not served yet.
            hw(20, 2, "orders-0", "leader", 4, 2, 10),
            hw(25, 2, "orders-0", "leader", 9, 2, 10),
            // A follower's high watermark lags the leader's: not what clients see.
            hw(30, 3, "orders-0", "follower", 2, 2, -1),
            // Established at its epoch start, and above: fine.
            hw(40, 2, "orders-0", "leader", 10, 2, 10),
            hw(50, 2, "orders-0", "leader", 10, 2, 10),
            hw(60, 2, "orders-0", "leader", 12, 2, 10),
        ];
        assert_eq!(check(&trace), vec![]);
    }

    #[test]
    fn a_re_created_topic_starts_over() {
        let trace = [
            hw(10, 1, "events-0", "leader", 8, 1, 0),
            hw(11, 2, "events-1", "leader", 3, 1, 0),
            event(
                20,
                "controller-1",
                "topic-removed",
                serde_json::json!({"topic": "events", "topic_id": "a", "offset": 40}),
            ),
            // broker-1 has not replayed the deletion yet: it still serves the old topic.
            hw(21, 1, "events-0", "leader", 9, 1, 0),
            event(
                22,
                "broker-1",
                "partition-removed",
                serde_json::json!({"partition": "events-0", "broker": 1, "stray": false}),
            ),
            // The re-created topic, on broker-1 and broker-3.
            hw(30, 3, "events-0", "leader", 0, 0, 0),
            hw(31, 1, "events-0", "leader", 2, 1, 0),
            // A new controller leader traces the same deletion again: not news.
            event(
                35,
                "controller-2",
                "topic-removed",
                serde_json::json!({"topic": "events", "topic_id": "a", "offset": 40}),
            ),
            hw(40, 1, "events-0", "leader", 1, 2, 0),
        ];
        // The only regression is the re-created topic's own, from 2 to 1.
        let found = check(&trace);
        assert_eq!(summary(&found), vec![(40, Some("events-0"))]);
        assert!(found[0].detail.contains("below the high watermark 2"));
    }
}
