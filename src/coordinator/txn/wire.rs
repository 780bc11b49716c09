//! The transaction coordinator's requests, responses and markers on Kafka's wire:
//! `kafka-protocol`'s messages to the coordinator's own types and back.
//!
//! KIP-588: clients before InitProducerId v4, AddPartitionsToTxn v2, AddOffsetsToTxn v2 and
//! EndTxn v2 do not know PRODUCER_FENCED; they are answered INVALID_PRODUCER_EPOCH instead, as
//! Kafka's `KafkaApis` does.

use std::collections::BTreeMap;

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult as WireResult,
    AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    self as wire, ProducerId, RequestKind, ResponseKind, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::{
    error_code, AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, AddPartitionsToTxnResult,
    EndTxnRequest, InitProducerIdRequest, MarkerOutcome, MarkerResult, TopicPartition, TxnMarker,
    TxnRequest, TxnResponse,
};

fn string(s: &StrBytes) -> String {
    s.as_str().to_owned()
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// KIP-588: PRODUCER_FENCED for clients that know it, INVALID_PRODUCER_EPOCH for older ones.
fn fenced_for(api_version: i16, first_knowing: i16, error: i16) -> i16 {
    if error == error_code::PRODUCER_FENCED && api_version < first_knowing {
        error_code::INVALID_PRODUCER_EPOCH
    } else {
        error
    }
}

/// The coordinator's requests for one wire request (an AddPartitionsToTxn v4+ batches
/// transactions: one request each); `None` for an API the coordinator does not serve, and for an
/// InitProducerId without transactional id (the broker answers that one itself).
pub fn from_request(api_version: i16, request: &RequestKind) -> Option<Vec<TxnRequest>> {
    Some(match request {
        RequestKind::InitProducerId(r) => {
            let transactional_id = r.transactional_id.as_ref()?;
            vec![TxnRequest::InitProducerId(InitProducerIdRequest {
                transactional_id: string(transactional_id),
                transaction_timeout_ms: r.transaction_timeout_ms,
                producer_id: r.producer_id.0,
                producer_epoch: r.producer_epoch,
            })]
        }
        RequestKind::AddPartitionsToTxn(r) => add_partitions(api_version, r),
        RequestKind::AddOffsetsToTxn(r) => {
            vec![TxnRequest::AddOffsetsToTxn(AddOffsetsToTxnRequest {
                transactional_id: string(&r.transactional_id),
                producer_id: r.producer_id.0,
                producer_epoch: r.producer_epoch,
                group_id: string(&r.group_id),
            })]
        }
        RequestKind::EndTxn(r) => vec![TxnRequest::EndTxn(EndTxnRequest {
            transactional_id: string(&r.transactional_id),
            producer_id: r.producer_id.0,
            producer_epoch: r.producer_epoch,
            committed: r.committed,
        })],
        _ => return None,
    })
}

fn topics(
    topics: &[wire::add_partitions_to_txn_request::AddPartitionsToTxnTopic],
) -> Vec<(String, Vec<i32>)> {
    topics
        .iter()
        .map(|t| (string(&t.name), t.partitions.clone()))
        .collect()
}

/// v0-3: one client transaction in the body; v4+: a batch from partition leaders.
fn add_partitions(api_version: i16, r: &wire::AddPartitionsToTxnRequest) -> Vec<TxnRequest> {
    if api_version < 4 {
        return vec![TxnRequest::AddPartitionsToTxn(AddPartitionsToTxnRequest {
            transactional_id: string(&r.v3_and_below_transactional_id),
            producer_id: r.v3_and_below_producer_id.0,
            producer_epoch: r.v3_and_below_producer_epoch,
            verify_only: false,
            topics: topics(&r.v3_and_below_topics),
        })];
    }
    r.transactions
        .iter()
        .map(|t| {
            TxnRequest::AddPartitionsToTxn(AddPartitionsToTxnRequest {
                transactional_id: string(&t.transactional_id),
                producer_id: t.producer_id.0,
                producer_epoch: t.producer_epoch,
                verify_only: t.verify_only,
                topics: topics(&t.topics),
            })
        })
        .collect()
}

/// The wire response for the coordinator's responses to one wire request (several only for an
/// AddPartitionsToTxn v4+, in its transactions' order). `None` if they do not make one response.
pub fn to_response(api_version: i16, responses: Vec<TxnResponse>) -> Option<ResponseKind> {
    let all_adds = responses
        .iter()
        .all(|r| matches!(r, TxnResponse::AddPartitionsToTxn(_)));
    if all_adds && !responses.is_empty() {
        let results = responses
            .into_iter()
            .map(|r| match r {
                TxnResponse::AddPartitionsToTxn(result) => result,
                _ => unreachable!("all AddPartitionsToTxn"),
            })
            .collect();
        return Some(ResponseKind::AddPartitionsToTxn(add_partitions_response(
            api_version,
            results,
        )));
    }
    let [response] = <[_; 1]>::try_from(responses).ok()?;
    Some(match response {
        TxnResponse::InitProducerId(r) => ResponseKind::InitProducerId(
            wire::InitProducerIdResponse::default()
                .with_error_code(fenced_for(api_version, 4, r.error_code))
                .with_producer_id(ProducerId(r.producer_id))
                .with_producer_epoch(r.producer_epoch),
        ),
        TxnResponse::AddOffsetsToTxn(error) => ResponseKind::AddOffsetsToTxn(
            wire::AddOffsetsToTxnResponse::default().with_error_code(fenced_for(
                api_version,
                2,
                error,
            )),
        ),
        TxnResponse::EndTxn(r) => ResponseKind::EndTxn(
            wire::EndTxnResponse::default()
                .with_error_code(fenced_for(api_version, 2, r.error_code))
                .with_producer_id(ProducerId(r.producer_id))
                .with_producer_epoch(r.producer_epoch),
        ),
        TxnResponse::AddPartitionsToTxn(_) => unreachable!("handled above"),
    })
}

fn topic_results(
    api_version: i16,
    result: AddPartitionsToTxnResult,
) -> Vec<AddPartitionsToTxnTopicResult> {
    result
        .topic_results
        .into_iter()
        .map(|(topic, partitions)| {
            let results = partitions
                .into_iter()
                .map(|(p, e)| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p)
                        .with_partition_error_code(fenced_for(api_version, 2, e))
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(TopicName(str_bytes(&topic)))
                .with_results_by_partition(results)
        })
        .collect()
}

/// v0-3: the one transaction's results by topic; v4+: results by transaction.
fn add_partitions_response(
    api_version: i16,
    results: Vec<AddPartitionsToTxnResult>,
) -> wire::AddPartitionsToTxnResponse {
    if api_version < 4 {
        let topics = results
            .into_iter()
            .next()
            .map(|r| topic_results(api_version, r))
            .unwrap_or_default();
        return wire::AddPartitionsToTxnResponse::default()
            .with_results_by_topic_v3_and_below(topics);
    }
    let results = results
        .into_iter()
        .map(|r| {
            let id = TransactionalId(str_bytes(&r.transactional_id));
            WireResult::default()
                .with_transactional_id(id)
                .with_topic_results(topic_results(api_version, r))
        })
        .collect();
    wire::AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

/// The WriteTxnMarkers request for markers going to one broker (the driver groups the
/// partitions of each marker by their leader): one `WritableTxnMarker` each.
pub fn write_txn_markers_request(markers: &[TxnMarker]) -> wire::WriteTxnMarkersRequest {
    let markers = markers
        .iter()
        .map(|m| {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for tp in &m.partitions {
                by_topic.entry(&tp.topic).or_default().push(tp.partition);
            }
            let topics = by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    WritableTxnMarkerTopic::default()
                        .with_name(TopicName(str_bytes(topic)))
                        .with_partition_indexes(partitions)
                })
                .collect();
            WritableTxnMarker::default()
                .with_producer_id(ProducerId(m.producer_id))
                .with_producer_epoch(m.producer_epoch)
                .with_transaction_result(m.committed)
                .with_topics(topics)
                .with_coordinator_epoch(m.coordinator_epoch)
        })
        .collect();
    wire::WriteTxnMarkersRequest::default().with_markers(markers)
}

/// The outcome of every partition of the `sent` markers, read from the WriteTxnMarkers
/// response; a partition the response does not mention failed (UNKNOWN_SERVER_ERROR: retried).
pub fn marker_results(
    sent: &[TxnMarker],
    response: &wire::WriteTxnMarkersResponse,
) -> Vec<MarkerResult> {
    let mut errors: BTreeMap<(i64, TopicPartition), i16> = BTreeMap::new();
    for marker in &response.markers {
        for topic in &marker.topics {
            for p in &topic.partitions {
                let tp = TopicPartition::new(topic.name.0.as_str(), p.partition_index);
                errors.insert((marker.producer_id.0, tp), p.error_code);
            }
        }
    }
    sent.iter()
        .flat_map(|m| {
            let errors = &errors;
            m.partitions.iter().map(move |tp| {
                let error = errors
                    .get(&(m.producer_id, tp.clone()))
                    .copied()
                    .unwrap_or(error_code::UNKNOWN_SERVER_ERROR);
                let outcome = if error == error_code::NONE {
                    MarkerOutcome::Written
                } else {
                    MarkerOutcome::Failed(error)
                };
                MarkerResult::of(m, tp, outcome)
            })
        })
        .collect()
}
