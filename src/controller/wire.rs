//! The controller's requests and responses on Kafka's wire: `kafka-protocol`'s messages to the
//! `QuorumController`'s own request types and back. A request the controller does not serve
//! maps to `None` (the driver closes the connection, as Kafka does on an unexpected API).

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::alter_partition_response::{
    PartitionData as AlterPartitionResponsePartition, TopicData as AlterPartitionResponseTopic,
};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult as WireCreatePartitionsResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult as WireCreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult as WireDeletableTopicResult;
use kafka_protocol::messages::elect_leaders_response::{
    PartitionResult as WirePartitionResult, ReplicaElectionResult,
};
use kafka_protocol::messages::{
    AllocateProducerIdsResponse, AlterPartitionReassignmentsResponse, AlterPartitionResponse,
    BrokerHeartbeatResponse, BrokerId, BrokerRegistrationResponse, CreatePartitionsResponse,
    CreateTopicsResponse, DeleteTopicsResponse, ElectLeadersResponse, RequestKind, ResponseKind,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::election::Election;
use super::quorum::{
    AlterPartitionData, AlterPartitionTopic, ControllerRequest, ControllerResponse,
    CreatePartitionsTopic, NewTopic, PartitionReassignment, PartitionResult,
};

fn string(s: &StrBytes) -> String {
    s.as_str().to_string()
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

fn ids(brokers: &[BrokerId]) -> Vec<i32> {
    brokers.iter().map(|b| b.0).collect()
}

/// The controller's view of a request, or `None` for one it does not serve.
pub fn from_request(request: RequestKind) -> Option<ControllerRequest> {
    Some(match request {
        RequestKind::BrokerRegistration(r) => {
            let listener = r.listeners.first()?;
            ControllerRequest::RegisterBroker {
                broker_id: r.broker_id.0,
                incarnation_id: r.incarnation_id.into(),
                host: string(&listener.host),
                port: listener.port,
                log_dir: r.log_dirs.first().copied().unwrap_or_default().into(),
            }
        }
        RequestKind::BrokerHeartbeat(r) => ControllerRequest::BrokerHeartbeat {
            broker_id: r.broker_id.0,
            broker_epoch: r.broker_epoch,
            current_metadata_offset: r.current_metadata_offset,
            want_fence: r.want_fence,
            want_shutdown: r.want_shut_down,
        },
        RequestKind::CreateTopics(r) => ControllerRequest::CreateTopics {
            validate_only: r.validate_only,
            topics: r
                .topics
                .iter()
                .map(|t| NewTopic {
                    name: string(&t.name.0),
                    num_partitions: t.num_partitions,
                    replication_factor: t.replication_factor,
                    assignment: (!t.assignments.is_empty()).then(|| {
                        t.assignments
                            .iter()
                            .map(|a| (a.partition_index, ids(&a.broker_ids)))
                            .collect::<BTreeMap<_, _>>()
                    }),
                    configs: t
                        .configs
                        .iter()
                        .filter_map(|c| Some((string(&c.name), string(c.value.as_ref()?))))
                        .collect(),
                })
                .collect(),
        },
        RequestKind::DeleteTopics(r) => {
            let mut names: Vec<String> = r.topic_names.iter().map(|n| string(&n.0)).collect();
            names.extend(
                r.topics
                    .iter()
                    .filter_map(|t| Some(string(&t.name.as_ref()?.0))),
            );
            ControllerRequest::DeleteTopics { names }
        }
        RequestKind::CreatePartitions(r) => ControllerRequest::CreatePartitions {
            validate_only: r.validate_only,
            topics: r
                .topics
                .iter()
                .map(|t| CreatePartitionsTopic {
                    name: string(&t.name.0),
                    count: t.count,
                    assignment: t
                        .assignments
                        .as_ref()
                        .filter(|a| !a.is_empty())
                        .map(|a| a.iter().map(|p| ids(&p.broker_ids)).collect()),
                })
                .collect(),
        },
        RequestKind::AlterPartition(r) => ControllerRequest::AlterPartition {
            broker_id: r.broker_id.0,
            broker_epoch: r.broker_epoch,
            topics: r
                .topics
                .iter()
                .map(|t| AlterPartitionTopic {
                    topic_id: t.topic_id.into(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| AlterPartitionData {
                            partition_index: p.partition_index,
                            leader_epoch: p.leader_epoch,
                            new_isr: if p.new_isr_with_epochs.is_empty() {
                                p.new_isr.iter().map(|b| (b.0, -1)).collect()
                            } else {
                                p.new_isr_with_epochs
                                    .iter()
                                    .map(|b| (b.broker_id.0, b.broker_epoch))
                                    .collect()
                            },
                            leader_recovery_state: p.leader_recovery_state,
                            partition_epoch: p.partition_epoch,
                        })
                        .collect(),
                })
                .collect(),
        },
        RequestKind::ElectLeaders(r) => ControllerRequest::ElectLeaders {
            // ElectionType: 0 preferred, 1 unclean.
            election: match r.election_type {
                1 => Election::Unclean,
                _ => Election::Preferred,
            },
            partitions: r.topic_partitions.as_ref().map(|topics| {
                topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(move |&p| (string(&t.topic.0), p)))
                    .collect()
            }),
        },
        RequestKind::AlterPartitionReassignments(r) => {
            ControllerRequest::AlterPartitionReassignments {
                reassignments: r
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(move |p| PartitionReassignment {
                            topic: string(&t.name.0),
                            partition: p.partition_index,
                            replicas: p.replicas.as_ref().map(|r| ids(r)),
                        })
                    })
                    .collect(),
            }
        }
        RequestKind::AllocateProducerIds(r) => ControllerRequest::AllocateProducerIds {
            broker_id: r.broker_id.0,
            broker_epoch: r.broker_epoch,
        },
        _ => return None,
    })
}

/// Per-partition results grouped by topic, in the order they came, as wire entries: `topic`
/// makes a topic's of its name and partitions, `partition` a partition's of its index, error
/// code and message (ElectLeaders and AlterPartitionReassignments answer alike).
fn by_topic<T, P>(
    results: Vec<PartitionResult>,
    topic: impl Fn(TopicName, Vec<P>) -> T,
    partition: impl Fn(i32, i16, Option<StrBytes>) -> P,
) -> Vec<T> {
    let mut grouped: Vec<(String, Vec<P>)> = Vec::new();
    for result in results {
        let message = result.error_message.map(StrBytes::from_string);
        let entry = partition(result.partition, result.error_code, message);
        match grouped.last_mut() {
            Some((name, list)) if *name == result.topic => list.push(entry),
            _ => grouped.push((result.topic, vec![entry])),
        }
    }
    grouped
        .into_iter()
        .map(|(name, partitions)| topic(topic_name(&name), partitions))
        .collect()
}

/// The wire response of a controller response.
pub fn to_response(response: ControllerResponse) -> ResponseKind {
    match response {
        ControllerResponse::RegisterBroker {
            error_code,
            broker_epoch,
        } => ResponseKind::BrokerRegistration(
            BrokerRegistrationResponse::default()
                .with_error_code(error_code)
                .with_broker_epoch(broker_epoch),
        ),
        ControllerResponse::BrokerHeartbeat {
            error_code,
            is_caught_up,
            is_fenced,
            should_shut_down,
        } => ResponseKind::BrokerHeartbeat(
            BrokerHeartbeatResponse::default()
                .with_error_code(error_code)
                .with_is_caught_up(is_caught_up)
                .with_is_fenced(is_fenced)
                .with_should_shut_down(should_shut_down),
        ),
        ControllerResponse::CreateTopics { topics } => ResponseKind::CreateTopics(
            CreateTopicsResponse::default().with_topics(
                topics
                    .into_iter()
                    .map(|t| {
                        WireCreatableTopicResult::default()
                            .with_name(topic_name(&t.name))
                            .with_topic_id(t.topic_id.into())
                            .with_error_code(t.error_code)
                            .with_error_message(t.error_message.map(StrBytes::from_string))
                            .with_num_partitions(t.num_partitions)
                            .with_replication_factor(t.replication_factor)
                    })
                    .collect(),
            ),
        ),
        ControllerResponse::DeleteTopics { topics } => ResponseKind::DeleteTopics(
            DeleteTopicsResponse::default().with_responses(
                topics
                    .into_iter()
                    .map(|t| {
                        WireDeletableTopicResult::default()
                            .with_name(Some(topic_name(&t.name)))
                            .with_topic_id(t.topic_id.into())
                            .with_error_code(t.error_code)
                    })
                    .collect(),
            ),
        ),
        ControllerResponse::CreatePartitions { topics } => ResponseKind::CreatePartitions(
            CreatePartitionsResponse::default().with_results(
                topics
                    .into_iter()
                    .map(|t| {
                        WireCreatePartitionsResult::default()
                            .with_name(topic_name(&t.name))
                            .with_error_code(t.error_code)
                            .with_error_message(t.error_message.map(StrBytes::from_string))
                    })
                    .collect(),
            ),
        ),
        ControllerResponse::AlterPartition { error_code, topics } => ResponseKind::AlterPartition(
            AlterPartitionResponse::default()
                .with_error_code(error_code)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|t| {
                            AlterPartitionResponseTopic::default()
                                .with_topic_id(t.topic_id.into())
                                .with_partitions(
                                    t.partitions
                                        .into_iter()
                                        .map(|p| {
                                            AlterPartitionResponsePartition::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(p.error_code)
                                                .with_leader_id(BrokerId(p.leader_id))
                                                .with_leader_epoch(p.leader_epoch)
                                                .with_isr(p.isr.into_iter().map(BrokerId).collect())
                                                .with_partition_epoch(p.partition_epoch)
                                                .with_leader_recovery_state(p.leader_recovery_state)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        ),
        ControllerResponse::ElectLeaders {
            error_code,
            results,
        } => ResponseKind::ElectLeaders(
            ElectLeadersResponse::default()
                .with_error_code(error_code)
                .with_replica_election_results(by_topic(
                    results,
                    |name, partitions| {
                        ReplicaElectionResult::default()
                            .with_topic(name)
                            .with_partition_result(partitions)
                    },
                    |id, code, message| {
                        WirePartitionResult::default()
                            .with_partition_id(id)
                            .with_error_code(code)
                            .with_error_message(message)
                    },
                )),
        ),
        ControllerResponse::AlterPartitionReassignments {
            error_code,
            results,
        } => ResponseKind::AlterPartitionReassignments(
            AlterPartitionReassignmentsResponse::default()
                .with_error_code(error_code)
                .with_responses(by_topic(
                    results,
                    |name, partitions| {
                        ReassignableTopicResponse::default()
                            .with_name(name)
                            .with_partitions(partitions)
                    },
                    |index, code, message| {
                        ReassignablePartitionResponse::default()
                            .with_partition_index(index)
                            .with_error_code(code)
                            .with_error_message(message)
                    },
                )),
        ),
        ControllerResponse::AllocateProducerIds {
            error_code,
            producer_id_start,
            producer_id_len,
        } => ResponseKind::AllocateProducerIds(
            AllocateProducerIdsResponse::default()
                .with_error_code(error_code)
                .with_producer_id_start(producer_id_start.into())
                .with_producer_id_len(producer_id_len),
        ),
    }
}
