//! The run's admin client: on a node of its own, it talks to the controllers directly (KIP-919's
//! `bootstrap.controllers`), as `kafka-topics.sh --bootstrap-controller` does. It creates the
//! scenario's `[[topic]]`s at the start (retrying while the quorum elects its first leader and
//! the brokers register), before any client starts, and performs the script's admin steps.
//!
//! Every request is a history operation of process `cluster-admin` (`invoke`, then `ok` or `fail` with
//! Kafka's error name), so tests and reports see what the cluster answered.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteTopicsRequest, ElectLeadersRequest, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use samsa_sim::history::OpType;
use serde_json::json;

use crate::protocol::controller_channel::ControllerChannel;
use crate::scenario::{Action, Configs, Election, FaultSpec, TopicSpec};
use crate::world::SharedRecorder;

/// The admin client's node.
pub const ADMIN_NODE: &str = "cluster-admin";
/// Between two attempts of a request that failed or found the cluster not ready.
const RETRY_BACKOFF_MS: u64 = 100;
/// The process name of the admin's operations in the history.
const PROCESS: &str = ADMIN_NODE;

pub fn admin_ip() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 3, 1))
}

pub struct Admin {
    pub channel: ControllerChannel,
    pub recorder: SharedRecorder,
    /// The brokers' listeners, and the admin node's clock: for describing groups, which brokers
    /// answer (the group coordinators), not controllers.
    pub bootstrap: Vec<std::net::SocketAddr>,
    pub clock: crate::world::Clock,
}

/// Kafka's name of an error code (`INVALID_REPLICATION_FACTOR`), for the history.
pub fn error_name(code: i16) -> String {
    if code == 0 {
        return "NONE".into();
    }
    match ResponseError::try_from_code(code) {
        Some(error) => format!("{error:?}"),
        None => format!("error {code}"),
    }
}

/// `CreateTopics` for one topic as a scenario writes it.
pub fn creatable_topic(
    name: &str,
    partitions: Option<u32>,
    replication_factor: Option<u32>,
    assignment: Option<&[Vec<u32>]>,
    config: &Configs,
) -> CreatableTopic {
    let mut topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.to_string())))
        .with_num_partitions(partitions.map_or(-1, |p| p as i32))
        .with_replication_factor(replication_factor.map_or(-1, |r| r as i16))
        .with_configs(
            config
                .iter()
                .map(|(key, value)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(key.clone()))
                        .with_value(Some(StrBytes::from_string(value.to_string())))
                })
                .collect(),
        );
    if let Some(assignment) = assignment {
        // A manual assignment leaves partitions and replication factor to it (-1 both).
        topic.num_partitions = -1;
        topic.replication_factor = -1;
        topic.assignments = assignment
            .iter()
            .enumerate()
            .map(|(index, replicas)| {
                CreatableReplicaAssignment::default()
                    .with_partition_index(index as i32)
                    .with_broker_ids(replicas.iter().map(|&b| BrokerId(b as i32)).collect())
            })
            .collect();
    }
    topic
}

impl Admin {
    fn op(&self, kind: OpType, f: &str, value: serde_json::Value) {
        self.recorder.op(PROCESS, kind, f, value);
    }

    /// Creates the scenario's topics, each until the cluster accepts it (or says it exists).
    pub async fn create_scenario_topics(&self, topics: &[TopicSpec]) {
        for spec in topics {
            let topic = creatable_topic(
                &spec.name,
                Some(spec.partitions),
                Some(spec.replication_factor),
                spec.assignment.as_deref(),
                &spec.config,
            );
            loop {
                let code = self.create_topics(topic.clone()).await;
                let ready = matches!(code, Some(0) | Some(36)); // NONE, TOPIC_ALREADY_EXISTS
                if ready {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
            }
        }
    }

    async fn create_topics(&self, topic: CreatableTopic) -> Option<i16> {
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(30_000);
        let code = match self.channel.send(RequestKind::CreateTopics(request)).await {
            Ok(ResponseKind::CreateTopics(response)) => {
                response.topics.first().map(|t| t.error_code)
            }
            _ => None,
        };
        if code == Some(41) {
            self.channel.rotate(); // NOT_CONTROLLER
        }
        code
    }

    /// `ok` for no error, `fail` for an error Kafka names, `info` when nobody answered (the
    /// request may or may not have taken effect).
    pub fn record_outcome(&self, f: &str, mut value: serde_json::Value, code: Option<i16>) {
        match code {
            Some(0) => self.op(OpType::Ok, f, value),
            Some(code) => {
                value["error"] = json!(error_name(code));
                self.op(OpType::Fail, f, value)
            }
            None => self.op(OpType::Info, f, value),
        }
    }
}

impl Admin {
    /// `kafka-consumer-groups.sh --describe --group GROUP`, recorded as a `describe-group`
    /// operation: the group's state and members, and per partition the committed offset, the
    /// log end and the lag.
    async fn describe_group(&self, group: &str) {
        use crate::client::cluster::ClusterView;
        use crate::client::group_admin;
        let value = json!({ "group": group });
        self.op(OpType::Invoke, "describe-group", value.clone());
        let ctx = crate::client::ClientContext {
            id: PROCESS.to_string(),
            bootstrap: self.bootstrap.clone(),
            clock: self.clock.clone(),
            recorder: self.recorder.clone(),
            seed: 0,
            delays: Default::default(),
        };
        let mut view = ClusterView::new(ctx);
        let timeout = Duration::from_millis(30_000);
        let mut outcome = Err("no broker answered".to_string());
        for _ in 0..STEP_ATTEMPTS {
            if view.refresh(&[]).await.is_ok() {
                outcome = group_admin::describe_group(&mut view, group, timeout).await;
                if outcome.is_ok() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
        }
        match outcome {
            Ok(d) => {
                let tp = |tp: &crate::scenario::TopicPartition| tp.to_string();
                let members: Vec<serde_json::Value> = d
                    .members
                    .iter()
                    .map(|m| {
                        json!({
                            "member": m.member_id,
                            "instance": m.group_instance_id,
                            "client": m.client_id,
                            "host": m.host,
                            "partitions": m.partitions.iter().map(tp).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                let partitions: Vec<serde_json::Value> = d
                    .partitions
                    .iter()
                    .map(|p| {
                        json!({
                            "partition": tp(&p.partition),
                            "committed": p.committed,
                            "log_end": p.log_end,
                            "lag": p.lag,
                            "owner": p.owner,
                        })
                    })
                    .collect();
                self.op(
                    OpType::Ok,
                    "describe-group",
                    json!({
                        "group": group,
                        "state": d.state,
                        "protocol": d.protocol,
                        "coordinator": d.coordinator,
                        "members": members,
                        "partitions": partitions,
                    }),
                );
            }
            Err(e) => self.op(
                OpType::Fail,
                "describe-group",
                json!({ "group": group, "error": e }),
            ),
        }
    }
}

/// Attempts of one admin step while no controller answers or the one asked is not active
/// (Kafka's admin client retries these until `default.api.timeout.ms`).
const STEP_ATTEMPTS: usize = 20;

impl Admin {
    /// Performs the script's admin steps in the order they fire.
    pub async fn perform_steps(&self, mut steps: tokio::sync::mpsc::UnboundedReceiver<FaultSpec>) {
        while let Some(step) = steps.recv().await {
            self.perform(&step).await;
        }
    }

    async fn perform(&self, step: &FaultSpec) {
        if step.action == Action::DescribeGroup {
            return self
                .describe_group(step.group.as_deref().unwrap_or_default())
                .await;
        }
        let topic = step.topic.clone().unwrap_or_default();
        let (f, value, request) = match step.action {
            Action::CreateTopic => {
                let creatable = creatable_topic(
                    &topic,
                    step.partitions,
                    step.replication_factor,
                    step.assignment.as_deref(),
                    &step.config,
                );
                let request = CreateTopicsRequest::default()
                    .with_topics(vec![creatable])
                    .with_timeout_ms(30_000);
                let value = json!({ "topic": topic, "partitions": step.partitions, "replication_factor": step.replication_factor });
                ("create-topic", value, RequestKind::CreateTopics(request))
            }
            Action::DeleteTopic => {
                // v6 names topics in `topics` (by name or id); `topic_names` is v1-5.
                let request = DeleteTopicsRequest::default()
                    .with_topics(vec![DeleteTopicState::default()
                        .with_name(Some(TopicName(StrBytes::from_string(topic.clone()))))])
                    .with_timeout_ms(30_000);
                (
                    "delete-topic",
                    json!({ "topic": topic }),
                    RequestKind::DeleteTopics(request),
                )
            }
            Action::CreatePartitions => {
                let count = step.partitions.unwrap_or(0) as i32;
                let request = CreatePartitionsRequest::default()
                    .with_topics(vec![CreatePartitionsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.clone())))
                        .with_count(count)
                        .with_assignments(None)])
                    .with_timeout_ms(30_000);
                let value = json!({ "topic": topic, "count": count });
                (
                    "create-partitions",
                    value,
                    RequestKind::CreatePartitions(request),
                )
            }
            Action::Reassign => {
                let Some(tp) = step.partition.as_ref() else {
                    return;
                };
                let replicas: Vec<BrokerId> =
                    step.replicas.iter().map(|&b| BrokerId(b as i32)).collect();
                let request = AlterPartitionReassignmentsRequest::default()
                    .with_topics(vec![ReassignableTopic::default()
                        .with_name(TopicName(StrBytes::from_string(tp.topic.clone())))
                        .with_partitions(vec![ReassignablePartition::default()
                            .with_partition_index(tp.partition as i32)
                            .with_replicas(Some(replicas))])])
                    .with_timeout_ms(30_000);
                let value = json!({ "partition": tp.to_string(), "replicas": step.replicas });
                (
                    "reassign",
                    value,
                    RequestKind::AlterPartitionReassignments(request),
                )
            }
            Action::ElectLeaders => {
                let election_type = match step.election {
                    Some(Election::Unclean) => 1,
                    _ => 0,
                };
                let partitions = step.partition.as_ref().map(|tp| {
                    vec![TopicPartitions::default()
                        .with_topic(TopicName(StrBytes::from_string(tp.topic.clone())))
                        .with_partitions(vec![tp.partition as i32])]
                });
                let request = ElectLeadersRequest::default()
                    .with_election_type(election_type)
                    .with_topic_partitions(partitions)
                    .with_timeout_ms(30_000);
                let value = json!({
                    "partition": step.partition.as_ref().map(|tp| tp.to_string()),
                    "election": if election_type == 1 { "unclean" } else { "preferred" },
                });
                ("elect-leaders", value, RequestKind::ElectLeaders(request))
            }
            _ => return,
        };
        self.op(OpType::Invoke, f, value.clone());
        let mut code = None;
        for _ in 0..STEP_ATTEMPTS {
            code = match self.channel.send(request.clone()).await {
                Ok(response) => Some(first_error(&response)),
                Err(_) => None,
            };
            if code == Some(41) {
                self.channel.rotate(); // NOT_CONTROLLER
            }
            if !matches!(code, None | Some(41)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
        }
        self.record_outcome(f, value, code);
    }
}

/// The first error a response carries (top level, then per topic or partition), or 0.
fn first_error(response: &ResponseKind) -> i16 {
    let first = |codes: Vec<i16>| codes.into_iter().find(|&c| c != 0).unwrap_or(0);
    match response {
        ResponseKind::CreateTopics(r) => first(r.topics.iter().map(|t| t.error_code).collect()),
        ResponseKind::DeleteTopics(r) => first(r.responses.iter().map(|t| t.error_code).collect()),
        ResponseKind::CreatePartitions(r) => {
            first(r.results.iter().map(|t| t.error_code).collect())
        }
        ResponseKind::AlterPartitionReassignments(r) => {
            let mut codes = vec![r.error_code];
            codes.extend(
                r.responses
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
            );
            first(codes)
        }
        ResponseKind::ElectLeaders(r) => {
            let mut codes = vec![r.error_code];
            codes.extend(
                r.replica_election_results
                    .iter()
                    .flat_map(|t| t.partition_result.iter().map(|p| p.error_code)),
            );
            first(codes)
        }
        _ => -1,
    }
}

/// The controllers' listeners by node id.
pub type Voters = BTreeMap<i32, std::net::SocketAddr>;
