//! The wire mapping: `kafka-protocol`'s requests to the coordinator's and its responses back
//! (encodable at the versions they are for), the markers out and their results in.

use bytes::BytesMut;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{
    self as wire, ProducerId, RequestKind, ResponseKind, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::support::*;
use crate::coordinator::txn::error_code::*;
use crate::coordinator::txn::wire::{
    from_request, marker_results, to_response, write_txn_markers_request,
};
use crate::coordinator::txn::*;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn encode(response: &ResponseKind, version: i16) -> usize {
    let mut buf = BytesMut::new();
    match response {
        ResponseKind::InitProducerId(r) => r.encode(&mut buf, version),
        ResponseKind::AddPartitionsToTxn(r) => r.encode(&mut buf, version),
        ResponseKind::AddOffsetsToTxn(r) => r.encode(&mut buf, version),
        ResponseKind::EndTxn(r) => r.encode(&mut buf, version),
        other => panic!("not a transaction response: {other:?}"),
    }
    .unwrap_or_else(|e| panic!("v{version}: {e}"));
    buf.len()
}

fn wire_topic(name: &str, partitions: Vec<i32>) -> AddPartitionsToTxnTopic {
    AddPartitionsToTxnTopic::default()
        .with_name(TopicName(s(name)))
        .with_partitions(partitions)
}

#[test]
fn add_partitions_v3_is_one_transaction_and_v4_a_batch() {
    let v3 = wire::AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(s(TXN)))
        .with_v3_and_below_producer_id(ProducerId(PID))
        .with_v3_and_below_producer_epoch(0)
        .with_v3_and_below_topics(vec![wire_topic("orders", vec![0, 1])]);
    let mapped = from_request(3, &RequestKind::AddPartitionsToTxn(v3));
    assert_eq!(
        mapped,
        Some(vec![add(PID, 0, &[("orders", 0), ("orders", 1)])])
    );

    let transaction = |id: &str, verify_only| {
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(s(id)))
            .with_producer_id(ProducerId(PID))
            .with_producer_epoch(3)
            .with_verify_only(verify_only)
            .with_topics(vec![wire_topic("orders", vec![2])])
    };
    let v4 = wire::AddPartitionsToTxnRequest::default()
        .with_transactions(vec![transaction(TXN, true), transaction("t2", false)]);
    let mapped = from_request(4, &RequestKind::AddPartitionsToTxn(v4)).unwrap();
    let mut verify = add_request(PID, 3, &[("orders", 2)]);
    verify.verify_only = true;
    let mut other = add_request(PID, 3, &[("orders", 2)]);
    other.transactional_id = "t2".to_owned();
    assert_eq!(
        mapped,
        vec![
            TxnRequest::AddPartitionsToTxn(verify.clone()),
            TxnRequest::AddPartitionsToTxn(other.clone())
        ]
    );

    // The answers go back by transaction (v4+) or by topic (v0-3).
    let results = vec![
        TxnResponse::AddPartitionsToTxn(AddPartitionsToTxnResult::all(&verify, NONE)),
        TxnResponse::AddPartitionsToTxn(AddPartitionsToTxnResult::all(&other, PRODUCER_FENCED)),
    ];
    let Some(ResponseKind::AddPartitionsToTxn(r)) = to_response(5, results) else {
        panic!()
    };
    assert_eq!(r.results_by_transaction.len(), 2);
    let fenced = &r.results_by_transaction[1].topic_results[0].results_by_partition[0];
    assert_eq!(fenced.partition_error_code, PRODUCER_FENCED);
    encode(&ResponseKind::AddPartitionsToTxn(r), 5);
}

#[test]
fn old_clients_get_invalid_producer_epoch_for_producer_fenced() {
    let fenced = |version| {
        let response = to_response(version, vec![end_response(PRODUCER_FENCED, -1, -1)]).unwrap();
        encode(&response, version);
        let ResponseKind::EndTxn(r) = response else {
            panic!()
        };
        r.error_code
    };
    assert_eq!(fenced(1), INVALID_PRODUCER_EPOCH);
    assert_eq!(fenced(2), PRODUCER_FENCED);
    let response = to_response(0, vec![added(PRODUCER_FENCED, &[("orders", 0)])]).unwrap();
    encode(&response, 0);
    let ResponseKind::AddPartitionsToTxn(r) = response else {
        panic!()
    };
    let partition = &r.results_by_topic_v3_and_below[0].results_by_partition[0];
    assert_eq!(partition.partition_error_code, INVALID_PRODUCER_EPOCH);
    let init = |version| {
        let response = to_response(version, vec![init_response(PRODUCER_FENCED, -1, -1)]);
        let Some(ResponseKind::InitProducerId(r)) = response else {
            panic!()
        };
        r.error_code
    };
    assert_eq!(
        (init(3), init(4)),
        (INVALID_PRODUCER_EPOCH, PRODUCER_FENCED)
    );
}

#[test]
fn end_txn_v5_carries_the_new_epoch() {
    let request = wire::EndTxnRequest::default()
        .with_transactional_id(TransactionalId(s(TXN)))
        .with_producer_id(ProducerId(PID))
        .with_producer_epoch(4)
        .with_committed(true);
    assert_eq!(
        from_request(5, &RequestKind::EndTxn(request)),
        Some(vec![end(PID, 4, true)])
    );
    let response = to_response(5, vec![end_response(NONE, PID, 5)]).unwrap();
    encode(&response, 5);
    let ResponseKind::EndTxn(r) = response else {
        panic!()
    };
    assert_eq!(
        (r.error_code, r.producer_id.0, r.producer_epoch),
        (NONE, PID, 5)
    );
}

#[test]
fn init_producer_id_without_transactional_id_is_the_brokers() {
    let request = wire::InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(-1);
    assert_eq!(
        from_request(5, &RequestKind::InitProducerId(request.clone())),
        None
    );
    let request = request
        .with_transactional_id(Some(TransactionalId(s(TXN))))
        .with_transaction_timeout_ms(TIMEOUT_MS)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    assert_eq!(
        from_request(5, &RequestKind::InitProducerId(request)),
        Some(vec![init(-1, -1)])
    );
    let offsets = wire::AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(s(TXN)))
        .with_producer_id(ProducerId(PID))
        .with_group_id(wire::GroupId(s(GROUP)));
    assert_eq!(
        from_request(3, &RequestKind::AddOffsetsToTxn(offsets)),
        Some(vec![add_offsets(PID, 0)])
    );
}

#[test]
fn markers_go_out_per_producer_and_their_results_come_back_per_partition() {
    let marker = TxnMarker {
        transactional_id: TXN.to_owned(),
        producer_id: PID,
        producer_epoch: 2,
        committed: true,
        coordinator_epoch: EPOCH,
        transaction_version: 2,
        partitions: vec![tp("a", 0), tp("b", 1), tp("b", 0)],
    };
    let request = write_txn_markers_request(std::slice::from_ref(&marker));
    let m = &request.markers[0];
    assert_eq!(
        (
            m.producer_id.0,
            m.producer_epoch,
            m.transaction_result,
            m.coordinator_epoch
        ),
        (PID, 2, true, EPOCH)
    );
    let topics: Vec<(String, Vec<i32>)> = m
        .topics
        .iter()
        .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
        .collect();
    assert_eq!(
        topics,
        vec![("a".to_owned(), vec![0]), ("b".to_owned(), vec![1, 0])]
    );
    let mut buf = BytesMut::new();
    request.encode(&mut buf, 1).unwrap();

    let partition = |p, e| {
        WritableTxnMarkerPartitionResult::default()
            .with_partition_index(p)
            .with_error_code(e)
    };
    let response = wire::WriteTxnMarkersResponse::default().with_markers(vec![
        WritableTxnMarkerResult::default()
            .with_producer_id(ProducerId(PID))
            .with_topics(vec![
                WritableTxnMarkerTopicResult::default()
                    .with_name(TopicName(s("a")))
                    .with_partitions(vec![partition(0, NONE)]),
                WritableTxnMarkerTopicResult::default()
                    .with_name(TopicName(s("b")))
                    .with_partitions(vec![partition(1, NOT_LEADER_OR_FOLLOWER)]),
            ]),
    ]);
    assert_eq!(
        marker_results(std::slice::from_ref(&marker), &response),
        vec![
            MarkerResult::of(&marker, &tp("a", 0), MarkerOutcome::Written),
            MarkerResult::of(
                &marker,
                &tp("b", 1),
                MarkerOutcome::Failed(NOT_LEADER_OR_FOLLOWER)
            ),
            MarkerResult::of(
                &marker,
                &tp("b", 0),
                MarkerOutcome::Failed(UNKNOWN_SERVER_ERROR)
            ),
        ]
    );
}
