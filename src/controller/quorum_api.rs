//! The `QuorumController`'s requests and responses: one variant per API, with Kafka's field
//! names, free of the wire (`wire` maps `kafka-protocol`'s messages onto them and back).

use std::collections::BTreeMap;

use super::election::Election;
use super::uuid::Uuid;

/// `CreateTopicsRequest`'s `CreatableTopic`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// -1 for `num.partitions`.
    pub num_partitions: i32,
    /// -1 for `default.replication.factor`.
    pub replication_factor: i16,
    /// Partition id → replicas; then both counts must be -1.
    pub assignment: Option<BTreeMap<i32, Vec<i32>>>,
    pub configs: BTreeMap<String, String>,
}

/// `CreatePartitionsRequest`'s `CreatePartitionsTopic`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatePartitionsTopic {
    pub name: String,
    /// The new total partition count.
    pub count: i32,
    /// The replicas of each new partition, in partition order.
    pub assignment: Option<Vec<Vec<i32>>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterPartitionTopic {
    pub topic_id: Uuid,
    pub partitions: Vec<AlterPartitionData>,
}

/// `AlterPartitionRequest`'s `PartitionData` (v3: the new ISR with broker epochs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterPartitionData {
    pub partition_index: i32,
    pub leader_epoch: i32,
    /// (broker id, broker epoch); epoch -1 means not given (not checked).
    pub new_isr: Vec<(i32, i64)>,
    pub leader_recovery_state: i8,
    pub partition_epoch: i32,
}

/// One partition of `AlterPartitionReassignmentsRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionReassignment {
    pub topic: String,
    pub partition: i32,
    /// `None` cancels the ongoing reassignment.
    pub replicas: Option<Vec<i32>>,
}

/// One request to the controller, per API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControllerRequest {
    RegisterBroker {
        broker_id: i32,
        incarnation_id: Uuid,
        host: String,
        port: u16,
        log_dir: Uuid,
    },
    BrokerHeartbeat {
        broker_id: i32,
        broker_epoch: i64,
        current_metadata_offset: i64,
        want_fence: bool,
        want_shutdown: bool,
    },
    CreateTopics {
        topics: Vec<NewTopic>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    CreatePartitions {
        topics: Vec<CreatePartitionsTopic>,
        validate_only: bool,
    },
    AlterPartition {
        broker_id: i32,
        broker_epoch: i64,
        topics: Vec<AlterPartitionTopic>,
    },
    /// `election`: `Preferred` or `Unclean` (Kafka's `ElectionType`); `partitions: None` means
    /// every partition.
    ElectLeaders {
        election: Election,
        partitions: Option<Vec<(String, i32)>>,
    },
    AlterPartitionReassignments {
        reassignments: Vec<PartitionReassignment>,
    },
    /// A broker asks for a block of producer ids (KIP-730).
    AllocateProducerIds {
        broker_id: i32,
        broker_epoch: i64,
    },
}

/// `CreateTopicsResponse`'s `CreatableTopicResult`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatableTopicResult {
    pub name: String,
    pub error_code: i16,
    pub error_message: Option<String>,
    /// `Uuid::ZERO` on error.
    pub topic_id: Uuid,
    /// -1 on error.
    pub num_partitions: i32,
    /// -1 on error.
    pub replication_factor: i16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletableTopicResult {
    pub name: String,
    /// `Uuid::ZERO` when unknown.
    pub topic_id: Uuid,
    pub error_code: i16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatePartitionsTopicResult {
    pub name: String,
    pub error_code: i16,
    pub error_message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterPartitionTopicResult {
    pub topic_id: Uuid,
    pub partitions: Vec<AlterPartitionResult>,
}

/// The partition's state after the change (or the error, with the other fields zero).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterPartitionResult {
    pub partition_index: i32,
    pub error_code: i16,
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub partition_epoch: i32,
    pub leader_recovery_state: i8,
}

/// A per-partition result of `ElectLeaders` and `AlterPartitionReassignments`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionResult {
    pub topic: String,
    pub partition: i32,
    pub error_code: i16,
    pub error_message: Option<String>,
}

/// The response to one `ControllerRequest`, same variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControllerResponse {
    /// `broker_epoch` -1 on error.
    RegisterBroker {
        error_code: i16,
        broker_epoch: i64,
    },
    BrokerHeartbeat {
        error_code: i16,
        is_caught_up: bool,
        is_fenced: bool,
        should_shut_down: bool,
    },
    CreateTopics {
        topics: Vec<CreatableTopicResult>,
    },
    DeleteTopics {
        topics: Vec<DeletableTopicResult>,
    },
    CreatePartitions {
        topics: Vec<CreatePartitionsTopicResult>,
    },
    AlterPartition {
        error_code: i16,
        topics: Vec<AlterPartitionTopicResult>,
    },
    /// With `partitions: None`, the partitions whose election was not needed are left out.
    ElectLeaders {
        error_code: i16,
        results: Vec<PartitionResult>,
    },
    AlterPartitionReassignments {
        error_code: i16,
        results: Vec<PartitionResult>,
    },
    /// The block `[producer_id_start, producer_id_start + producer_id_len)`; -1 and 0 on error.
    AllocateProducerIds {
        error_code: i16,
        producer_id_start: i64,
        producer_id_len: i32,
    },
}

/// An error code and Kafka's message for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ApiError {
    pub(super) code: i16,
    pub(super) message: Option<String>,
}

impl ApiError {
    pub(super) fn new(code: i16, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: Some(message.into()),
        }
    }

    pub(super) fn code(code: i16) -> ApiError {
        ApiError {
            code,
            message: None,
        }
    }
}

/// The response that refuses `request` whole with `code` (e.g. `NOT_CONTROLLER`): the top-level
/// error where the API has one, else each item's.
pub fn error_response(request: &ControllerRequest, code: i16) -> ControllerResponse {
    match request {
        ControllerRequest::RegisterBroker { .. } => ControllerResponse::RegisterBroker {
            error_code: code,
            broker_epoch: -1,
        },
        ControllerRequest::BrokerHeartbeat { .. } => heartbeat_error(code),
        ControllerRequest::CreateTopics { topics, .. } => ControllerResponse::CreateTopics {
            topics: topics
                .iter()
                .map(|t| CreatableTopicResult::error(&t.name, &ApiError::code(code)))
                .collect(),
        },
        ControllerRequest::DeleteTopics { names } => ControllerResponse::DeleteTopics {
            topics: names
                .iter()
                .map(|name| DeletableTopicResult {
                    name: name.clone(),
                    topic_id: Uuid::ZERO,
                    error_code: code,
                })
                .collect(),
        },
        ControllerRequest::CreatePartitions { topics, .. } => {
            ControllerResponse::CreatePartitions {
                topics: topics
                    .iter()
                    .map(|t| CreatePartitionsTopicResult {
                        name: t.name.clone(),
                        error_code: code,
                        error_message: None,
                    })
                    .collect(),
            }
        }
        ControllerRequest::AlterPartition { .. } => ControllerResponse::AlterPartition {
            error_code: code,
            topics: Vec::new(),
        },
        ControllerRequest::ElectLeaders { .. } => ControllerResponse::ElectLeaders {
            error_code: code,
            results: Vec::new(),
        },
        ControllerRequest::AlterPartitionReassignments { .. } => {
            ControllerResponse::AlterPartitionReassignments {
                error_code: code,
                results: Vec::new(),
            }
        }
        ControllerRequest::AllocateProducerIds { .. } => ControllerResponse::AllocateProducerIds {
            error_code: code,
            producer_id_start: -1,
            producer_id_len: 0,
        },
    }
}

/// `BrokerHeartbeatResponse`'s defaults with an error: not caught up, fenced, no shutdown.
pub(super) fn heartbeat_error(code: i16) -> ControllerResponse {
    ControllerResponse::BrokerHeartbeat {
        error_code: code,
        is_caught_up: false,
        is_fenced: true,
        should_shut_down: false,
    }
}

impl CreatableTopicResult {
    pub(super) fn error(name: &str, error: &ApiError) -> CreatableTopicResult {
        CreatableTopicResult {
            name: name.to_owned(),
            error_code: error.code,
            error_message: error.message.clone(),
            topic_id: Uuid::ZERO,
            num_partitions: -1,
            replication_factor: -1,
        }
    }
}

impl PartitionResult {
    pub(super) fn new(topic: &str, partition: i32, error: ApiError) -> PartitionResult {
        PartitionResult {
            topic: topic.to_owned(),
            partition,
            error_code: error.code,
            error_message: error.message,
        }
    }
}
