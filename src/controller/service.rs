//! The controller process's state machine on top of the raft log (Kafka's `QuorumController`
//! as a `RaftClient.Listener`): every controller replays the committed records into its
//! committed image; the one that leads also runs the `QuorumController` over its whole log
//! (committed or not: a leader's log all commits under it), answers requests with new records,
//! and traces what the quorum commits.
//!
//! Trace events (node `controller-N`, by the active controller, as each record commits):
//! `broker-registered` `{broker, epoch}`, `broker-fenced` / `broker-unfenced` /
//! `broker-controlled-shutdown` `{broker, epoch}`, `topic-created` `{topic, topic_id}`,
//! `partition-state` `{partition, topic_id, replicas, isr, elr, last_known_elr, leader,
//! leader_epoch, partition_epoch, adding, removing, recovering, unclean, offset}` (a partition
//! created or changed; `elr` its eligible leader replicas and `last_known_elr` its last known
//! leader, KIP-966, both empty without ELR; `unclean` when the change elected a leader from
//! outside the ISR and ELR), `topic-removed` `{topic, topic_id}`,
//! `config` `{resource, name, value}`. A leader change may repeat the last few (the new leader
//! traces what commits under it); `partition_epoch` orders them.
//!
//! A committed record that does not decode or replay is a controller bug: the controller
//! panics, and the run reports the panic with its seed.

use bytes::Bytes;
use kafka_protocol::messages::{RequestKind, ResponseKind};
use serde_json::json;

use super::image::{LeaderRecoveryState, MetadataImage};
use super::quorum::{QuorumController, QuorumControllerConfig};
use super::records::MetadataRecord;
use super::wire;
use crate::raft::driver::StateMachine;
use crate::raft::{Entry, Epoch};
use crate::world::SharedRecorder;

pub struct ControllerService {
    name: String,
    recorder: SharedRecorder,
    /// The replay of the committed log.
    committed: MetadataImage,
    controller: QuorumController,
    leading: bool,
}

impl ControllerService {
    pub fn new(
        name: String,
        recorder: SharedRecorder,
        config: QuorumControllerConfig,
        seed: u64,
    ) -> Self {
        ControllerService {
            name,
            recorder,
            committed: MetadataImage::default(),
            controller: QuorumController::new(config, seed),
            leading: false,
        }
    }

    fn event(&self, kind: &str, detail: serde_json::Value) {
        self.recorder.event(&self.name, kind, detail);
    }

    /// The metadata record of an entry; a leader's start-of-epoch entry (a control record in
    /// Kafka) is a `NoOp` to the image.
    fn decode(&self, offset: i64, entry: &Entry) -> MetadataRecord {
        if entry.is_control() {
            return MetadataRecord::NoOp;
        }
        MetadataRecord::decode(&entry.data).unwrap_or_else(|e| {
            panic!(
                "{}: metadata record {offset} does not decode: {e}",
                self.name
            )
        })
    }

    /// What a committed record means for a person reading the trace.
    /// `removed`: the name of the topic a `RemoveTopicRecord` removed.
    fn trace_committed(&self, offset: i64, record: &MetadataRecord, removed: Option<String>) {
        match record {
            MetadataRecord::RegisterBroker(r) => self.event(
                "broker-registered",
                json!({ "broker": r.broker_id, "epoch": r.broker_epoch, "offset": offset }),
            ),
            MetadataRecord::BrokerRegistrationChange(r) => {
                let kind = match (r.fenced, r.in_controlled_shutdown) {
                    (1, _) => "broker-fenced",
                    (-1, _) => "broker-unfenced",
                    (_, 1) => "broker-controlled-shutdown",
                    _ => return,
                };
                self.event(
                    kind,
                    json!({ "broker": r.broker_id, "epoch": r.broker_epoch, "offset": offset }),
                );
            }
            MetadataRecord::FenceBroker(r) => self.event(
                "broker-fenced",
                json!({ "broker": r.id, "epoch": r.epoch, "offset": offset }),
            ),
            MetadataRecord::UnfenceBroker(r) => self.event(
                "broker-unfenced",
                json!({ "broker": r.id, "epoch": r.epoch, "offset": offset }),
            ),
            MetadataRecord::Topic(r) => self.event(
                "topic-created",
                json!({ "topic": r.name, "topic_id": r.topic_id.to_string(), "offset": offset }),
            ),
            MetadataRecord::Partition(r) => {
                self.trace_partition(offset, r.topic_id, r.partition_id, false)
            }
            MetadataRecord::PartitionChange(r) => {
                let unclean = r.leader_recovery_state
                    == Some(LeaderRecoveryState::Recovering as i8)
                    && r.leader.is_some();
                self.trace_partition(offset, r.topic_id, r.partition_id, unclean)
            }
            MetadataRecord::RemoveTopic(r) => self.event(
                "topic-removed",
                json!({ "topic": removed, "topic_id": r.topic_id.to_string(), "offset": offset }),
            ),
            MetadataRecord::Config(r) => self.event(
                "config",
                json!({
                    "resource": r.resource_name,
                    "name": r.name,
                    "value": r.value,
                    "offset": offset,
                }),
            ),
            MetadataRecord::ProducerIds(r) => self.event(
                "producer-ids",
                json!({
                    "broker": r.broker_id,
                    "next_producer_id": r.next_producer_id,
                    "offset": offset,
                }),
            ),
            MetadataRecord::NoOp => {}
        }
    }

    fn trace_partition(
        &self,
        offset: i64,
        topic_id: super::Uuid,
        partition_id: i32,
        unclean: bool,
    ) {
        let Some(topic) = self.committed.topics.get(&topic_id) else {
            return;
        };
        let Some(p) = topic.partitions.get(&partition_id) else {
            return;
        };
        self.event(
            "partition-state",
            json!({
                "partition": format!("{}-{partition_id}", topic.name),
                "topic_id": topic_id.to_string(),
                "replicas": p.replicas,
                "isr": p.isr,
                "elr": p.elr,
                "last_known_elr": p.last_known_elr,
                "leader": p.leader,
                "leader_epoch": p.leader_epoch,
                "partition_epoch": p.partition_epoch,
                "adding": p.adding_replicas,
                "removing": p.removing_replicas,
                "recovering": p.leader_recovery_state == LeaderRecoveryState::Recovering,
                "unclean": unclean,
                "offset": offset,
            }),
        );
    }
}

impl StateMachine for ControllerService {
    fn handle_commit(&mut self, _now_ms: u64, offset: i64, entry: &Entry) {
        let record = self.decode(offset, entry);
        let removed = match &record {
            MetadataRecord::RemoveTopic(r) => self
                .committed
                .topics
                .get(&r.topic_id)
                .map(|t| t.name.clone()),
            _ => None,
        };
        if let Err(e) = self.committed.replay(&record) {
            panic!(
                "{}: committed metadata record {offset} ({record:?}) does not replay: {e}",
                self.name
            );
        }
        if self.leading {
            self.trace_committed(offset, &record, removed);
        }
    }

    fn handle_leader_change(
        &mut self,
        now_ms: u64,
        leading: bool,
        _epoch: Epoch,
        first_offset: i64,
        uncommitted: &[Entry],
    ) {
        self.leading = leading;
        if !leading {
            self.controller.deactivate();
            return;
        }
        // Kafka's controller claims leadership over the log as it stands: the committed image
        // plus the records above the high watermark, which this leader will commit.
        let mut image = self.committed.clone();
        for (i, entry) in uncommitted.iter().enumerate() {
            let offset = first_offset + i as i64;
            let record = self.decode(offset, entry);
            if let Err(e) = image.replay(&record) {
                panic!(
                    "{}: metadata record {offset} ({record:?}) in the new leader's log does not replay: {e}",
                    self.name
                );
            }
        }
        self.controller.activate(now_ms, image);
    }

    fn handle_request(
        &mut self,
        now_ms: u64,
        next_offset: i64,
        request: RequestKind,
    ) -> Option<(Vec<Bytes>, ResponseKind)> {
        let request = wire::from_request(request)?;
        let (records, response) = self.controller.handle(now_ms, next_offset, request);
        let records = records.iter().map(MetadataRecord::encode).collect();
        Some((records, wire::to_response(response)))
    }

    fn tick(&mut self, now_ms: u64, next_offset: i64) -> Vec<Bytes> {
        self.controller
            .tick(now_ms, next_offset)
            .iter()
            .map(MetadataRecord::encode)
            .collect()
    }

    fn snapshot(&self) -> Option<Vec<Bytes>> {
        Some(
            self.committed
                .records()
                .iter()
                .map(MetadataRecord::encode)
                .collect(),
        )
    }

    /// The committed image becomes the snapshot's; a controller loads one only while it does
    /// not lead (at its start, or as a follower behind the leader's log start).
    fn load_snapshot(&mut self, _now_ms: u64, end_offset: i64, records: &[Bytes]) {
        let mut image = MetadataImage::default();
        for (i, value) in records.iter().enumerate() {
            let record = MetadataRecord::decode(value).unwrap_or_else(|e| {
                panic!(
                    "{}: record {i} of the snapshot at {end_offset} does not decode: {e}",
                    self.name
                )
            });
            image.replay(&record).unwrap_or_else(|e| {
                panic!(
                    "{}: record {i} of the snapshot at {end_offset} ({record:?}) does not replay: {e}",
                    self.name
                )
            });
        }
        assert!(!self.leading, "{}: the leader loads no snapshot", self.name);
        self.committed = image;
    }
}

impl ControllerService {
    /// The replay of the committed log (or of the snapshot it started from).
    pub fn committed_image(&self) -> &MetadataImage {
        &self.committed
    }
}
