//! Request handlers: one function per API, each turning a request into a response.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest,
    ListOffsetsResponse, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse,
    RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse,
};

use super::partition::{AppendError, Committed, FetchError, FollowerFetch};
use super::{Broker, PartitionHandle};
use crate::coordinator::group::{wire, GroupRequest};
use crate::coordinator::txn;
use crate::protocol::versions::SUPPORTED;
use crate::scenario::TopicPartition;
use crate::world::buggify::Point;

/// Kafka's sentinel timestamps in `ListOffsets`.
const EARLIEST_TIMESTAMP: i64 = -2;
const LATEST_TIMESTAMP: i64 = -1;

fn code(error: ResponseError) -> i16 {
    error.code()
}

/// A failed partition of a produce.
fn failed(error: ResponseError) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_error_code(code(error))
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
}

/// A produce's partition after its append: answered, or waiting for `acks=all`.
/// What the connection does with a request's outcome.
pub(super) enum Reply {
    Send(Box<ResponseKind>),
    /// Nothing to send (`acks=0`).
    Nothing,
    /// Close the connection, answering nothing.
    Close,
}

enum Appended {
    Done(PartitionProduceResponse),
    Waiting {
        handle: PartitionHandle,
        last_offset: i64,
        epoch: i32,
        response: PartitionProduceResponse,
    },
}

/// The aborted transactions a `read_committed` fetch from `offset` must be told of: those
/// ending at or after it and starting below the last stable offset (Kafka's
/// `collectAbortedTransactions`).
fn aborted_transactions(
    partition: &super::Partition,
    offset: i64,
) -> Vec<kafka_protocol::messages::fetch_response::AbortedTransaction> {
    partition
        .aborted_transactions(offset, partition.last_stable_offset())
        .into_iter()
        .map(|t| {
            kafka_protocol::messages::fetch_response::AbortedTransaction::default()
                .with_producer_id(t.producer_id.into())
                .with_first_offset(t.first_offset)
        })
        .collect()
}

fn topic_partition(topic: &TopicName, partition: i32) -> Option<TopicPartition> {
    u32::try_from(partition)
        .ok()
        .map(|partition| TopicPartition {
            topic: topic.0.to_string(),
            partition,
        })
}

impl Broker {
    /// Answers one request; `None` when Kafka sends no response (`Produce` with `acks=0`).
    pub(super) async fn handle(
        self: &Arc<Self>,
        api: ApiKey,
        version: i16,
        client_id: &str,
        request: RequestKind,
    ) -> Reply {
        match request {
            RequestKind::OffsetForLeaderEpoch(req) => Reply::Send(Box::new(
                ResponseKind::OffsetForLeaderEpoch(self.offset_for_leader_epoch(req).await),
            )),
            RequestKind::FindCoordinator(req) => Reply::Send(Box::new(
                ResponseKind::FindCoordinator(self.find_coordinator(version, req)),
            )),
            RequestKind::ListGroups(req) => {
                let cx = group_context(version, client_id);
                let requests = wire::from_request(&cx, &RequestKind::ListGroups(req))
                    .expect("ListGroups is a group API");
                let Some(GroupRequest::ListGroups(request)) = requests.into_iter().next() else {
                    unreachable!("one ListGroups")
                };
                let response = self.list_groups(request).await;
                let kind = wire::to_response(version, vec![(String::new(), response)])
                    .expect("one ListGroups response");
                Reply::Send(Box::new(kind))
            }
            RequestKind::JoinGroup(_)
            | RequestKind::SyncGroup(_)
            | RequestKind::Heartbeat(_)
            | RequestKind::LeaveGroup(_)
            | RequestKind::OffsetCommit(_)
            | RequestKind::OffsetFetch(_)
            | RequestKind::TxnOffsetCommit(_)
            | RequestKind::DescribeGroups(_) => {
                let cx = group_context(version, client_id);
                let requests = wire::from_request(&cx, &request).expect("a group coordinator API");
                let mut responses = Vec::with_capacity(requests.len());
                for request in requests {
                    let group = group_of(&request);
                    responses.push((group, self.group_call(request).await));
                }
                match wire::to_response(version, responses) {
                    Some(kind) => Reply::Send(Box::new(kind)),
                    None => {
                        self.protocol_error(&format!("{api:?}: no response to make"));
                        Reply::Close
                    }
                }
            }
            RequestKind::ApiVersions(_) => {
                Reply::Send(Box::new(ResponseKind::ApiVersions(api_versions())))
            }
            RequestKind::Metadata(req) => Reply::Send(Box::new(ResponseKind::Metadata(
                self.metadata_response(req),
            ))),
            RequestKind::Produce(req) => self.produce(req, client_id).await,
            RequestKind::Fetch(req) => {
                Reply::Send(Box::new(ResponseKind::Fetch(self.fetch(req).await)))
            }
            RequestKind::ListOffsets(req) => Reply::Send(Box::new(ResponseKind::ListOffsets(
                self.list_offsets(req).await,
            ))),
            RequestKind::WriteTxnMarkers(req) => Reply::Send(Box::new(
                ResponseKind::WriteTxnMarkers(self.write_txn_markers(req).await),
            )),
            RequestKind::InitProducerId(req) if req.transactional_id.is_none() => {
                Reply::Send(Box::new(ResponseKind::InitProducerId(
                    self.init_producer_id(req).await,
                )))
            }
            RequestKind::InitProducerId(_)
            | RequestKind::AddPartitionsToTxn(_)
            | RequestKind::AddOffsetsToTxn(_)
            | RequestKind::EndTxn(_) => {
                let Some(requests) = crate::coordinator::txn::wire::from_request(version, &request)
                else {
                    self.protocol_error(&format!("{api:?}: not a transaction request"));
                    return Reply::Close;
                };
                let mut responses = Vec::with_capacity(requests.len());
                for request in requests {
                    responses.push(self.txn_call(request).await);
                }
                match crate::coordinator::txn::wire::to_response(version, responses) {
                    Some(kind) => Reply::Send(Box::new(kind)),
                    None => {
                        self.protocol_error(&format!("{api:?}: no response to make"));
                        Reply::Close
                    }
                }
            }
            other => {
                // decode_request only lets through the APIs of `versions::SUPPORTED`.
                self.protocol_error(&format!("{api:?} is advertised but not handled: {other:?}"));
                Reply::Nothing
            }
        }
    }

    fn metadata_response(&self, req: MetadataRequest) -> MetadataResponse {
        let image = self.metadata();
        let auto_create = req.allow_auto_topic_creation && self.ctx.auto_create_topics;
        let brokers = image
            .brokers
            .iter()
            .map(|(&id, addr)| {
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(id))
                    .with_host(StrBytes::from_string(addr.ip().to_string()))
                    .with_port(addr.port() as i32)
            })
            .collect();
        let wanted: Option<Vec<String>> = req.topics.map(|topics| {
            topics
                .into_iter()
                .filter_map(|t| t.name.map(|n| n.0.to_string()))
                .collect()
        });
        let names: Vec<String> = wanted.unwrap_or_else(|| image.topics.keys().cloned().collect());
        let topics = names
            .into_iter()
            .map(|name| {
                let topic = MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(name.clone()))));
                match image.topics.get(&name) {
                    // Kafka's `AutoTopicCreationManager`: ask the controller, and tell the client
                    // the leader is not there yet, so it asks again.
                    None if auto_create && self.auto_create(&name) => {
                        topic.with_error_code(code(ResponseError::LeaderNotAvailable))
                    }
                    None => topic.with_error_code(code(ResponseError::UnknownTopicOrPartition)),
                    Some(partitions) => topic.with_partitions(
                        partitions
                            .iter()
                            .enumerate()
                            .map(|(index, meta)| {
                                MetadataResponsePartition::default()
                                    .with_partition_index(index as i32)
                                    .with_leader_id(BrokerId(meta.leader))
                                    .with_leader_epoch(meta.leader_epoch)
                                    .with_replica_nodes(
                                        meta.replicas.iter().map(|&b| BrokerId(b)).collect(),
                                    )
                                    .with_isr_nodes(meta.isr.iter().map(|&b| BrokerId(b)).collect())
                            })
                            .collect(),
                    ),
                }
            })
            .collect();
        MetadataResponse::default()
            .with_brokers(brokers)
            .with_cluster_id(Some(StrBytes::from_static_str("samsa")))
            .with_controller_id(BrokerId(-1))
            .with_topics(topics)
    }

    /// `Produce`: each partition's batch is appended as leader; with `acks=all` the answer waits
    /// (Kafka's produce purgatory) until the high watermark passes every appended batch, the
    /// leadership is lost, or the request's `timeout_ms` runs out (`REQUEST_TIMED_OUT`).
    async fn produce(self: &Arc<Self>, req: ProduceRequest, client_id: &str) -> Reply {
        let acks = req.acks;
        let transactional_id = req.transactional_id.as_ref().map(|t| t.0.to_string());
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(req.timeout_ms.max(0) as u64);
        let mut topics = Vec::new();
        for topic in req.topic_data {
            let mut partitions = Vec::new();
            for data in topic.partition_data {
                let appended = self
                    .produce_partition(
                        &topic.name,
                        data.index,
                        acks,
                        data.records,
                        (client_id, transactional_id.as_deref()),
                    )
                    .await;
                partitions.push((data.index, appended));
            }
            topics.push((topic.name, partitions));
        }
        if acks == 0 {
            // No answer; but an error closes the connection, so the producer finds out and
            // refreshes its metadata (KafkaApis.handleProduceRequest: "the client will find out
            // about the error when it reconnects").
            let failed = topics
                .iter()
                .flat_map(|(_, partitions)| partitions)
                .any(|(_, appended)| matches!(appended, Appended::Done(r) if r.error_code != 0));
            return if failed { Reply::Close } else { Reply::Nothing };
        }
        let mut responses = Vec::new();
        for (name, partitions) in topics {
            let mut partition_responses = Vec::new();
            for (index, appended) in partitions {
                let response = match appended {
                    Appended::Done(response) => response,
                    Appended::Waiting {
                        handle,
                        last_offset,
                        epoch,
                        response,
                    } => loop {
                        let (progress, done) = {
                            let partition = handle.lock().await;
                            (
                                partition.listen(),
                                partition.acks_all_done(last_offset, epoch),
                            )
                        };
                        match done {
                            Some(Ok(())) => break response,
                            Some(Err(AppendError::NotEnoughReplicas)) => {
                                break failed(ResponseError::NotEnoughReplicasAfterAppend)
                            }
                            Some(Err(_)) => break failed(ResponseError::NotLeaderOrFollower),
                            None => {}
                        }
                        if tokio::time::Instant::now() >= deadline {
                            break failed(ResponseError::RequestTimedOut);
                        }
                        tokio::select! {
                            biased;
                            _ = progress => {}
                            _ = tokio::time::sleep_until(deadline) => {}
                        }
                    },
                };
                partition_responses.push(response.with_index(index));
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_partition_responses(partition_responses),
            );
        }
        Reply::Send(Box::new(ResponseKind::Produce(
            ProduceResponse::default().with_responses(responses),
        )))
    }

    async fn produce_partition(
        self: &Arc<Self>,
        topic: &TopicName,
        index: i32,
        acks: i16,
        records: Option<Bytes>,
        (client_id, transactional_id): (&str, Option<&str>),
    ) -> Appended {
        if !matches!(acks, -1..=1) {
            return Appended::Done(failed(ResponseError::InvalidRequiredAcks));
        }
        let Some(tp) = topic_partition(topic, index) else {
            return Appended::Done(failed(ResponseError::UnknownTopicOrPartition));
        };
        let Some(handle) = self.partition(&tp) else {
            let known = self.metadata().partition(&tp).is_some();
            return Appended::Done(failed(if known {
                ResponseError::NotLeaderOrFollower
            } else {
                ResponseError::UnknownTopicOrPartition
            }));
        };
        let Some(records) = records else {
            return Appended::Done(failed(ResponseError::CorruptMessage));
        };
        let buggify = &self.ctx.buggify;
        if buggify.fires(Point::RetriableError, 0, 0).is_some() {
            return Appended::Done(failed(ResponseError::NotLeaderOrFollower));
        }
        let mut batch = records.to_vec();
        if let Err(code) = self
            .verify_transaction(&handle, &tp, &batch, transactional_id)
            .await
        {
            return Appended::Done(
                PartitionProduceResponse::default()
                    .with_error_code(code)
                    .with_base_offset(-1)
                    .with_log_append_time_ms(-1),
            );
        }
        let mut partition = handle.lock().await;
        let error = match partition
            .append_as_leader(&mut batch, acks, client_id)
            .await
        {
            Ok(info) => {
                let response = PartitionProduceResponse::default()
                    .with_base_offset(info.first_offset)
                    .with_log_append_time_ms(info.log_append_time_ms)
                    .with_log_start_offset(partition.log_start_offset());
                if acks != -1 {
                    return Appended::Done(response);
                }
                let epoch = partition.leader_epoch();
                drop(partition);
                return Appended::Waiting {
                    handle,
                    last_offset: info.last_offset,
                    epoch,
                    response,
                };
            }
            Err(AppendError::NotLeader) => ResponseError::NotLeaderOrFollower,
            Err(AppendError::NotEnoughReplicas) => ResponseError::NotEnoughReplicas,
            Err(AppendError::Corrupt(_)) => ResponseError::CorruptMessage,
            Err(AppendError::RecordListTooLarge) => ResponseError::RecordListTooLarge,
            Err(AppendError::Storage(_)) => ResponseError::KafkaStorageError,
            Err(e) => {
                ResponseError::try_from_code(e.code()).unwrap_or(ResponseError::UnknownServerError)
            }
        };
        Appended::Done(failed(error))
    }

    /// `Fetch`, by a consumer (committed data only, below the HW) or by a follower (replica id
    /// set: everything up to the log end, with its position recorded). With less than
    /// `min_bytes` to return it waits up to `max_wait_ms` for more (Kafka's fetch purgatory),
    /// woken by every change of the partitions it reads (append, high watermark, role).
    async fn fetch(self: &Arc<Self>, req: FetchRequest) -> FetchResponse {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
        let min_bytes = req.min_bytes.max(1) as usize;
        let mut first = true;
        let mut listeners = Vec::new();
        loop {
            listeners.clear();
            let (response, bytes, complete) = self.fetch_once(&req, first, &mut listeners).await;
            first = false;
            if complete || bytes >= min_bytes || tokio::time::Instant::now() >= deadline {
                return response;
            }
            tokio::select! {
                biased;
                _ = super::any_woken(&mut listeners) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// One read of every partition of the fetch: the response, the bytes in it, and whether it
    /// must go at once (an error or a divergence to tell).
    /// A follower's position is recorded on the `first` read only: looking again while the fetch
    /// waits must not make the leader act again (an ISR proposal refused would be made anew).
    /// Each partition read leaves a wake-up for its next change in `listeners`, registered
    /// under the partition's lock, so no change after the read is missed.
    async fn fetch_once(
        self: &Arc<Self>,
        req: &FetchRequest,
        first: bool,
        listeners: &mut Vec<super::Listener>,
    ) -> (FetchResponse, usize, bool) {
        let replica = req.replica_id.0;
        let image = self.metadata();
        let mut total = 0usize;
        let mut complete = false;
        let mut responses = Vec::new();
        for topic in &req.topics {
            let mut partitions = Vec::new();
            for fp in &topic.partitions {
                let mut data = PartitionData::default()
                    .with_partition_index(fp.partition)
                    .with_high_watermark(-1)
                    .with_last_stable_offset(-1)
                    .with_log_start_offset(-1);
                let max =
                    (fp.partition_max_bytes.max(1) as usize).min(req.max_bytes.max(1) as usize);
                let handle =
                    topic_partition(&topic.topic, fp.partition).and_then(|tp| self.partition(&tp));
                match handle {
                    None => data.error_code = code(ResponseError::NotLeaderOrFollower),
                    Some(handle) if replica >= 0 => {
                        let mut partition = handle.lock().await;
                        listeners.push(partition.listen());
                        let broker_epoch = image.isr_eligible_epoch(replica);
                        let read = partition
                            .read_for_follower(
                                &FollowerFetch {
                                    replica,
                                    broker_epoch,
                                    fetch_offset: fp.fetch_offset,
                                    current_leader_epoch: fp.current_leader_epoch,
                                    last_fetched_epoch: fp.last_fetched_epoch,
                                },
                                max,
                                first,
                            )
                            .await;
                        data.log_start_offset = partition.log_start_offset();
                        data.last_stable_offset = partition.last_stable_offset();
                        data.high_watermark = partition.high_watermark();
                        drop(partition);
                        match read {
                            Ok(read) => {
                                if let Some((epoch, end_offset)) = read.diverging {
                                    data.diverging_epoch.epoch = epoch;
                                    data.diverging_epoch.end_offset = end_offset;
                                    complete = true;
                                }
                                if let Some(proposal) = read.proposal {
                                    super::isr::send_proposal(self, handle.clone(), proposal);
                                }
                                total += read.records.len();
                                data.records = Some(read.records);
                            }
                            Err(e) => {
                                complete = true;
                                data.error_code = code(match e {
                                    FetchError::NotLeader => ResponseError::NotLeaderOrFollower,
                                    FetchError::FencedLeaderEpoch => {
                                        ResponseError::FencedLeaderEpoch
                                    }
                                    FetchError::UnknownLeaderEpoch => {
                                        ResponseError::UnknownLeaderEpoch
                                    }
                                    FetchError::OffsetOutOfRange => ResponseError::OffsetOutOfRange,
                                    FetchError::Storage => ResponseError::KafkaStorageError,
                                });
                            }
                        }
                    }
                    Some(handle) => {
                        let partition = handle.lock().await;
                        listeners.push(partition.listen());
                        data.high_watermark = partition.high_watermark();
                        data.last_stable_offset = partition.last_stable_offset();
                        data.log_start_offset = partition.log_start_offset();
                        let epoch = fp.current_leader_epoch;
                        if !partition.is_leader() {
                            data.error_code = code(ResponseError::NotLeaderOrFollower);
                        } else if epoch >= 0 && epoch < partition.leader_epoch() {
                            data.error_code = code(ResponseError::FencedLeaderEpoch);
                        } else if epoch > partition.leader_epoch() {
                            data.error_code = code(ResponseError::UnknownLeaderEpoch);
                        } else {
                            let committed_only = req.isolation_level == 1;
                            match partition
                                .read_committed(fp.fetch_offset, max, committed_only)
                                .await
                            {
                                Ok(Committed::Records(bytes)) => {
                                    if committed_only {
                                        data.aborted_transactions =
                                            Some(aborted_transactions(&partition, fp.fetch_offset));
                                    }
                                    total += bytes.len();
                                    data.records = Some(bytes);
                                }
                                Ok(Committed::OffsetOutOfRange) => {
                                    data.error_code = code(ResponseError::OffsetOutOfRange)
                                }
                                Err(_) => data.error_code = code(ResponseError::KafkaStorageError),
                            }
                        }
                        complete |= data.error_code != 0;
                    }
                }
                partitions.push(data);
            }
            responses.push(
                FetchableTopicResponse::default()
                    .with_topic(topic.topic.clone())
                    .with_partitions(partitions),
            );
        }
        (
            FetchResponse::default().with_responses(responses),
            total,
            complete,
        )
    }

    async fn list_offsets(&self, req: ListOffsetsRequest) -> ListOffsetsResponse {
        let mut topics = Vec::new();
        for topic in req.topics {
            let mut partitions = Vec::new();
            for lp in topic.partitions {
                let mut response = ListOffsetsPartitionResponse::default()
                    .with_partition_index(lp.partition_index)
                    .with_timestamp(-1)
                    .with_offset(-1);
                match topic_partition(&topic.name, lp.partition_index)
                    .and_then(|tp| self.partition(&tp))
                {
                    None => response.error_code = code(ResponseError::NotLeaderOrFollower),
                    Some(partition) => {
                        let partition = partition.lock().await;
                        response.leader_epoch = partition.leader_epoch();
                        match lp.timestamp {
                            _ if !partition.is_leader() => {
                                response.error_code = code(ResponseError::NotLeaderOrFollower)
                            }
                            EARLIEST_TIMESTAMP => response.offset = partition.log_start_offset(),
                            // A follower asks where the leader's log ends.
                            LATEST_TIMESTAMP if req.replica_id.0 >= 0 => {
                                response.offset = partition.log_end_offset()
                            }
                            // KIP-207: a new leader that does not know the committed offset yet
                            // says so, rather than answer one below an earlier leader's.
                            _ if !partition.high_watermark_established() => {
                                response.error_code = code(ResponseError::OffsetNotAvailable)
                            }
                            LATEST_TIMESTAMP => response.offset = partition.high_watermark(),
                            timestamp if timestamp >= 0 => {
                                match partition.offset_for_timestamp(timestamp).await {
                                    Ok(Some(found)) => {
                                        response.offset = found.offset;
                                        response.timestamp = found.timestamp;
                                        response.leader_epoch = found.leader_epoch.unwrap_or(-1);
                                    }
                                    // No record that new: offset and timestamp -1, as Kafka.
                                    Ok(None) => response.leader_epoch = -1,
                                    Err(_) => {
                                        response.error_code = code(ResponseError::KafkaStorageError)
                                    }
                                }
                            }
                            // -3 (max timestamp, KIP-734) and other sentinels.
                            _ => response.error_code = code(ResponseError::UnsupportedVersion),
                        }
                    }
                }
                partitions.push(response);
            }
            topics.push(
                ListOffsetsTopicResponse::default()
                    .with_name(topic.name)
                    .with_partitions(partitions),
            );
        }
        ListOffsetsResponse::default().with_topics(topics)
    }
}

fn api_versions() -> ApiVersionsResponse {
    crate::protocol::versions::api_versions_response(SUPPORTED)
}

impl Broker {
    /// Asks the controller to create `topic` with the cluster's defaults (`num.partitions`,
    /// `default.replication.factor`), once while it is pending; false for a name Kafka would
    /// refuse, which the client is told is unknown.
    fn auto_create(&self, topic: &str) -> bool {
        use kafka_protocol::messages::create_topics_request::CreatableTopic;
        if !crate::controller::is_valid_topic_name(topic) {
            return false;
        }
        self.request_topic_creation(
            CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        );
        true
    }

    /// Asks the controller to create `topic`, once while it is pending.
    fn request_topic_creation(
        &self,
        topic: kafka_protocol::messages::create_topics_request::CreatableTopic,
    ) {
        use kafka_protocol::messages::CreateTopicsRequest;
        let name = topic.name.0.to_string();
        let first = self
            .auto_creating
            .lock()
            .expect("auto-creating lock")
            .insert(name.clone());
        if !first {
            return;
        }
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(30_000);
        self.event("auto-create", serde_json::json!({ "topic": name }));
        let channel = self.controllers.clone();
        let pending = self.auto_creating.clone();
        tokio::spawn(async move {
            let sent = channel.send(RequestKind::CreateTopics(request)).await;
            let code = match &sent {
                Ok(ResponseKind::CreateTopics(r)) => r.topics.first().map(|t| t.error_code),
                _ => None,
            };
            if code == Some(41) {
                channel.rotate_from(channel.active()); // NOT_CONTROLLER
            }
            // Created (0) or there already (36, TOPIC_ALREADY_EXISTS): the metadata will
            // show it. Anything else: a later request asks again.
            if !matches!(code, Some(0) | Some(36)) {
                pending.lock().expect("auto-creating lock").remove(&name);
            }
        });
    }
}

fn group_context(version: i16, client_id: &str) -> wire::RequestContext {
    wire::RequestContext {
        api_version: version,
        client_id: client_id.to_string(),
        // The connection's peer is not passed down; Kafka shows `/` and the address.
        client_host: "/".to_string(),
    }
}

fn group_of(request: &GroupRequest) -> String {
    super::group_coordinator::group_id(request).to_string()
}

/// `FindCoordinator`'s key types (`CoordinatorType`).
const GROUP_KEY_TYPE: i8 = 0;
/// `FindCoordinator` key type of a transactional id.
const TRANSACTION_KEY_TYPE: i8 = 1;

impl Broker {
    /// `FindCoordinator`: a group's coordinator is the leader of its `__consumer_offsets`
    /// partition (`partitionFor`), as this broker's metadata says. Until the topic exists it is
    /// created (`offsets.topic.num.partitions`, `offsets.topic.replication.factor`, compacted)
    /// and the answer is COORDINATOR_NOT_AVAILABLE, so the client asks again.
    fn find_coordinator(
        &self,
        version: i16,
        req: FindCoordinatorRequest,
    ) -> FindCoordinatorResponse {
        let keys: Vec<String> = if version >= 4 {
            req.coordinator_keys.iter().map(|k| k.to_string()).collect()
        } else {
            vec![req.key.to_string()]
        };
        let coordinators: Vec<Coordinator> = keys
            .into_iter()
            .map(|key| {
                let found = Coordinator::default()
                    .with_key(StrBytes::from_string(key.clone()))
                    .with_node_id(BrokerId(-1))
                    .with_host(StrBytes::from_static_str(""))
                    .with_port(-1);
                let located = match req.key_type {
                    GROUP_KEY_TYPE => self.group_coordinator_of(&key),
                    TRANSACTION_KEY_TYPE => self.txn_coordinator_of(&key),
                    _ => Err(ResponseError::InvalidRequest),
                };
                match located {
                    Ok((id, addr)) => found
                        .with_node_id(BrokerId(id))
                        .with_host(StrBytes::from_string(addr.ip().to_string()))
                        .with_port(addr.port() as i32),
                    Err(e) => found.with_error_code(code(e)),
                }
            })
            .collect();
        if version >= 4 {
            return FindCoordinatorResponse::default().with_coordinators(coordinators);
        }
        let one = coordinators.into_iter().next().unwrap_or_default();
        FindCoordinatorResponse::default()
            .with_error_code(one.error_code)
            .with_node_id(one.node_id)
            .with_host(one.host)
            .with_port(one.port)
    }

    /// The broker leading `group`'s `__consumer_offsets` partition, with its address.
    fn group_coordinator_of(
        &self,
        group: &str,
    ) -> Result<(i32, std::net::SocketAddr), ResponseError> {
        let groups = &self.ctx.groups;
        let index =
            crate::coordinator::group::partition_for(group, groups.offsets_topic_partitions);
        self.coordinator_at(super::OFFSETS_TOPIC, index, || {
            self.create_internal_topic(
                super::OFFSETS_TOPIC,
                groups.offsets_topic_partitions,
                groups.offsets_topic_replication_factor,
                &[
                    ("cleanup.policy", "compact".into()),
                    ("compression.type", "producer".into()),
                    (
                        "segment.bytes",
                        groups.offsets_topic_segment_bytes.to_string(),
                    ),
                ],
            )
        })
    }

    /// The broker leading `transactional_id`'s `__transaction_state` partition, with its
    /// address. The topic is compacted, never compressed, with `transaction.state.log.*`
    /// (Kafka's `TransactionLog` topic configs).
    fn txn_coordinator_of(
        &self,
        transactional_id: &str,
    ) -> Result<(i32, std::net::SocketAddr), ResponseError> {
        let txn = &self.ctx.txn;
        let partitions = txn.coordinator.transaction_state_num_partitions;
        let index = crate::coordinator::txn::partition_for(transactional_id, partitions);
        self.coordinator_at(super::TRANSACTION_STATE_TOPIC, index, || {
            self.create_internal_topic(
                super::TRANSACTION_STATE_TOPIC,
                partitions,
                txn.replication_factor,
                &[
                    ("cleanup.policy", "compact".into()),
                    ("compression.type", "uncompressed".into()),
                    ("min.insync.replicas", txn.min_isr.to_string()),
                    ("segment.bytes", txn.segment_bytes.to_string()),
                ],
            )
        })
    }

    /// The leader of partition `index` of a coordinator's internal `topic`, with its address;
    /// the topic is created (`create`) on first use, as Kafka does.
    fn coordinator_at(
        &self,
        topic: &str,
        index: i32,
        create: impl FnOnce(),
    ) -> Result<(i32, std::net::SocketAddr), ResponseError> {
        let image = self.metadata();
        let Some(partitions) = image.topics.get(topic) else {
            create();
            return Err(ResponseError::CoordinatorNotAvailable);
        };
        let leader = partitions
            .get(index as usize)
            .map_or(-1, |meta| meta.leader);
        image
            .brokers
            .get(&leader)
            .map(|addr| (leader, *addr))
            .ok_or(ResponseError::CoordinatorNotAvailable)
    }

    /// Asks the controller for a coordinator's internal topic with its configs.
    fn create_internal_topic(
        &self,
        name: &'static str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(&str, String)],
    ) {
        use kafka_protocol::messages::create_topics_request::{
            CreatableTopic, CreatableTopicConfig,
        };
        let topic = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(name)))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
                    .iter()
                    .map(|(name, value)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(name.to_string()))
                            .with_value(Some(StrBytes::from_string(value.clone())))
                    })
                    .collect(),
            );
        self.request_topic_creation(topic);
    }
}

impl Broker {
    /// `OffsetForLeaderEpoch` (KIP-101, and KIP-320 for consumers): for each partition led
    /// here, the largest epoch at or below the one asked for, and the offset where it ended
    /// (the log end for the latest epoch), after checking the asker's view of the leader epoch.
    async fn offset_for_leader_epoch(
        &self,
        req: kafka_protocol::messages::OffsetForLeaderEpochRequest,
    ) -> kafka_protocol::messages::OffsetForLeaderEpochResponse {
        use kafka_protocol::messages::offset_for_leader_epoch_response::{
            EpochEndOffset, OffsetForLeaderTopicResult,
        };
        let mut topics = Vec::new();
        for topic in req.topics {
            let mut partitions = Vec::new();
            for p in topic.partitions {
                let mut answer = EpochEndOffset::default()
                    .with_partition(p.partition)
                    .with_leader_epoch(-1)
                    .with_end_offset(-1);
                let handle =
                    topic_partition(&topic.topic, p.partition).and_then(|tp| self.partition(&tp));
                match handle {
                    None => answer.error_code = code(ResponseError::NotLeaderOrFollower),
                    Some(handle) => {
                        let partition = handle.lock().await;
                        let current = p.current_leader_epoch;
                        if !partition.is_leader() {
                            answer.error_code = code(ResponseError::NotLeaderOrFollower);
                        } else if current >= 0 && current < partition.leader_epoch() {
                            answer.error_code = code(ResponseError::FencedLeaderEpoch);
                        } else if current > partition.leader_epoch() {
                            answer.error_code = code(ResponseError::UnknownLeaderEpoch);
                        } else {
                            let (epoch, end_offset) =
                                partition.end_offset_for_epoch(p.leader_epoch);
                            answer.leader_epoch = epoch;
                            answer.end_offset = end_offset;
                        }
                    }
                }
                partitions.push(answer);
            }
            topics.push(
                OffsetForLeaderTopicResult::default()
                    .with_topic(topic.topic)
                    .with_partitions(partitions),
            );
        }
        kafka_protocol::messages::OffsetForLeaderEpochResponse::default().with_topics(topics)
    }
}

impl Broker {
    /// `InitProducerId` without a transactional id (an idempotent producer): any broker answers
    /// with a fresh producer id at epoch 0, as Kafka's `TransactionCoordinator` does for a null
    /// transactional id, whatever producer id and epoch the request quotes (KIP-360).
    async fn init_producer_id(&self, _req: InitProducerIdRequest) -> InitProducerIdResponse {
        let response = InitProducerIdResponse::default();
        match self.next_producer_id().await {
            Ok(id) => response.with_producer_id(id.into()).with_producer_epoch(0),
            Err(error) => response
                .with_error_code(error)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1),
        }
    }
}

impl Broker {
    /// KIP-890 (transaction version 2): before the first transactional batch of a producer in
    /// a partition, the leader asks the transaction coordinator whether the partition is in
    /// that producer's ongoing transaction (`AddPartitionsToTxn` verify-only). A produce that
    /// arrives late, after its transaction ended, is refused instead of opening a transaction
    /// nobody will end. Version 1 appends without asking.
    async fn verify_transaction(
        self: &Arc<Self>,
        handle: &PartitionHandle,
        tp: &TopicPartition,
        batch: &[u8],
        transactional_id: Option<&str>,
    ) -> Result<(), i16> {
        if self.ctx.txn.coordinator.transaction_version < 2 {
            return Ok(());
        }
        let Ok(header) = crate::storage::batch::parse_header(batch) else {
            return Ok(()); // the append refuses it
        };
        if !header.is_transactional() || header.producer_id < 0 {
            return Ok(());
        }
        let ongoing = handle
            .lock()
            .await
            .producer_state(header.producer_id)
            .is_some_and(|e| {
                e.current_txn_first_offset.is_some() && e.producer_epoch == header.producer_epoch
            });
        if ongoing {
            return Ok(());
        }
        let Some(transactional_id) = transactional_id else {
            return Err(code(ResponseError::InvalidRequest));
        };
        let request = txn::AddPartitionsToTxnRequest {
            transactional_id: transactional_id.to_string(),
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            verify_only: true,
            topics: vec![(tp.topic.clone(), vec![tp.partition as i32])],
        };
        match self.verify_at_coordinator(request).await {
            Some(result) => {
                let refused = result
                    .topic_results
                    .iter()
                    .flat_map(|(_, ps)| ps.iter().map(|(_, c)| *c))
                    .any(|c| c != 0);
                // Not in an open transaction of that producer: Kafka answers
                // INVALID_TXN_STATE (abortable for the producer).
                if refused {
                    Err(code(ResponseError::InvalidTxnState))
                } else {
                    Ok(())
                }
            }
            None => Err(code(ResponseError::NotEnoughReplicas)),
        }
    }

    /// Asks the transaction coordinator of the request's transactional id: this broker's own
    /// shard, or another broker's over the wire (AddPartitionsToTxn v4, the brokers' form).
    async fn verify_at_coordinator(
        self: &Arc<Self>,
        request: txn::AddPartitionsToTxnRequest,
    ) -> Option<txn::AddPartitionsToTxnResult> {
        use kafka_protocol::messages::add_partitions_to_txn_request::{
            AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
        };
        let (leader, addr) = self.txn_coordinator_of(&request.transactional_id).ok()?;
        if leader == self.ctx.id {
            return match self
                .txn_call(txn::TxnRequest::AddPartitionsToTxn(request))
                .await
            {
                txn::TxnResponse::AddPartitionsToTxn(r) => Some(r),
                _ => None,
            };
        }
        let transaction = AddPartitionsToTxnTransaction::default()
            .with_transactional_id(kafka_protocol::messages::TransactionalId(
                StrBytes::from_string(request.transactional_id.clone()),
            ))
            .with_producer_id(request.producer_id.into())
            .with_producer_epoch(request.producer_epoch)
            .with_verify_only(true)
            .with_topics(
                request
                    .topics
                    .iter()
                    .map(|(t, ps)| {
                        AddPartitionsToTxnTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.clone())))
                            .with_partitions(ps.clone())
                    })
                    .collect(),
            );
        let wire = kafka_protocol::messages::AddPartitionsToTxnRequest::default()
            .with_transactions(vec![transaction]);
        let conn = crate::protocol::Connection::connect_with(
            addr,
            &self.ctx.name,
            self.ctx.delays.clone(),
        )
        .await
        .ok()?;
        let sent = conn
            .send(
                ApiKey::AddPartitionsToTxn,
                4,
                &RequestKind::AddPartitionsToTxn(wire),
                Duration::from_millis(self.ctx.replication.socket_timeout_ms),
            )
            .await;
        conn.close();
        let ResponseKind::AddPartitionsToTxn(response) = sent.ok()? else {
            return None;
        };
        let result = response.results_by_transaction.first()?;
        Some(txn::AddPartitionsToTxnResult {
            transactional_id: result.transactional_id.0.to_string(),
            topic_results: result
                .topic_results
                .iter()
                .map(|t| {
                    (
                        t.name.0.to_string(),
                        t.results_by_partition
                            .iter()
                            .map(|p| (p.partition_index, p.partition_error_code))
                            .collect(),
                    )
                })
                .collect(),
        })
    }
}
