//! Byte fixtures written by hand, field by field, from Kafka's schemas
//! (`transaction-coordinator/src/main/resources/common/message/TransactionLogKey.json` and
//! `TransactionLogValue.json`): the key is the int16 record type 0 and an int16-length string;
//! the value an int16 version, then the fields, big-endian. Version 1 is flexible: compact
//! strings and arrays (unsigned varint length + 1, 0 for null) and a tagged-field section (count,
//! then tag, size, bytes) closing every struct.

use super::support::*;
use crate::coordinator::txn::records::DecodeError;
use crate::coordinator::txn::TransactionState::*;
use crate::coordinator::txn::*;

fn assert_fixture(record: TxnRecord, key: &[u8], value: Option<&[u8]>) {
    assert_eq!(record.encode_key().as_ref(), key, "key");
    assert_eq!(record.encode_value().as_deref(), value, "value");
    assert_eq!(TxnRecord::decode(key, value), Ok(record));
}

const KEY_T1: [u8; 6] = [
    0x00, 0x00, // record type 0: TRANSACTION_LOG
    0x00, 0x02, b't', b'1', // transactionalId: "t1"
];

#[test]
fn a_prepare_commit_value_v1_with_its_tagged_fields() {
    let mut v = value(PrepareCommit, 1);
    v.transaction_partitions = Some(vec![("orders".to_owned(), vec![0, 1])]);
    v.transaction_last_update_timestamp_ms = 2_000;
    v.transaction_start_timestamp_ms = 1_000;
    let bytes = [
        &[0x00, 0x01][..],                           // value version 1
        &[0, 0, 0, 0, 0, 0, 0x03, 0xe8],             // ProducerId: 1000
        &[0x00, 0x01],                               // ProducerEpoch: 1
        &[0x00, 0x00, 0xea, 0x60],                   // TransactionTimeoutMs: 60000
        &[0x02],                                     // TransactionStatus: PrepareCommit
        &[0x02],                                     // TransactionPartitions: compact, 1 element
        &[0x07, b'o', b'r', b'd', b'e', b'r', b's'], // Topic: compact "orders"
        &[0x03, 0, 0, 0, 0, 0, 0, 0, 1],             // PartitionIds: compact [0, 1]
        &[0x00],                                     // PartitionsSchema's tagged fields: none
        &[0, 0, 0, 0, 0, 0, 0x07, 0xd0],             // TransactionLastUpdateTimestampMs: 2000
        &[0, 0, 0, 0, 0, 0, 0x03, 0xe8],             // TransactionStartTimestampMs: 1000
        &[0x02],                                     // two tagged fields
        &[0x00, 0x08, 0, 0, 0, 0, 0, 0, 0x03, 0xe8], // tag 0 PreviousProducerId: 1000
        &[0x02, 0x02, 0x00, 0x02],                   // tag 2 ClientTransactionVersion: 2
    ]
    .concat();
    assert_fixture(record(v), &KEY_T1, Some(&bytes));
}

#[test]
fn an_empty_value_has_null_partitions_and_no_default_tagged_field() {
    let mut v = value(Empty, 0);
    v.previous_producer_id = -1;
    v.client_transaction_version = 0;
    let bytes = [
        &[0x00, 0x01][..],
        &[0, 0, 0, 0, 0, 0, 0x03, 0xe8],
        &[0x00, 0x00],
        &[0x00, 0x00, 0xea, 0x60],
        &[0x00],                                           // Empty
        &[0x00],                                           // TransactionPartitions: null
        &[0, 0, 0, 0, 0, 0, 0, 0],                         // last update 0
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // start -1
        &[0x00],                                           // no tagged field
    ]
    .concat();
    assert_fixture(record(v), &KEY_T1, Some(&bytes));
}

#[test]
fn next_producer_id_and_epoch_are_tags_1_and_3_and_unknown_tags_are_skipped() {
    let mut v = value(PrepareAbort, 32_767);
    v.previous_producer_id = -1;
    v.next_producer_id = 1_001;
    v.next_producer_epoch = 0;
    v.client_transaction_version = 0;
    let head = [
        &[0x00, 0x01][..],
        &[0, 0, 0, 0, 0, 0, 0x03, 0xe8],
        &[0x7f, 0xff],
        &[0x00, 0x00, 0xea, 0x60],
        &[0x03],
        &[0x01], // no partition
        &[0, 0, 0, 0, 0, 0, 0, 0],
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    ]
    .concat();
    let tags = [
        &[0x02][..],
        &[0x01, 0x08, 0, 0, 0, 0, 0, 0, 0x03, 0xe9], // tag 1 NextProducerId: 1001
        &[0x03, 0x02, 0x00, 0x00],                   // tag 3 NextProducerEpoch: 0
    ]
    .concat();
    v.transaction_partitions = Some(vec![]);
    assert_fixture(
        record(v.clone()),
        &KEY_T1,
        Some(&[&head[..], &tags].concat()),
    );
    // A writer of a later schema added tag 9: it is skipped.
    let tags_with_unknown = [
        &[0x03][..],
        &[0x01, 0x08, 0, 0, 0, 0, 0, 0, 0x03, 0xe9],
        &[0x03, 0x02, 0x00, 0x00],
        &[0x09, 0x01, 0xaa],
    ]
    .concat();
    let bytes = [&head[..], &tags_with_unknown].concat();
    assert_eq!(TxnRecord::decode(&KEY_T1, Some(&bytes)), Ok(record(v)));
}

#[test]
fn a_value_v0_is_read() {
    let bytes = [
        &[0x00, 0x00][..],               // value version 0: not flexible
        &[0, 0, 0, 0, 0, 0, 0x03, 0xe8], // ProducerId
        &[0x00, 0x02],                   // ProducerEpoch
        &[0x00, 0x00, 0xea, 0x60],       // TransactionTimeoutMs
        &[0x01],                         // Ongoing
        &[0, 0, 0, 1],                   // TransactionPartitions: int32 count 1
        &[0x00, 0x01, b'o'],             // Topic: "o"
        &[0, 0, 0, 1, 0, 0, 0, 7],       // PartitionIds: [7]
        &[0, 0, 0, 0, 0, 0, 0x07, 0xd0], // last update 2000
        &[0, 0, 0, 0, 0, 0, 0x03, 0xe8], // start 1000
    ]
    .concat();
    let mut v = value(Ongoing, 2);
    v.previous_producer_id = -1;
    v.client_transaction_version = 0;
    v.transaction_partitions = Some(vec![("o".to_owned(), vec![7])]);
    v.transaction_last_update_timestamp_ms = 2_000;
    v.transaction_start_timestamp_ms = 1_000;
    assert_eq!(TxnRecord::decode(&KEY_T1, Some(&bytes)), Ok(record(v)));
}

#[test]
fn a_tombstone_has_no_value_and_bad_bytes_are_errors() {
    let tombstone = TxnRecord {
        transactional_id: TXN.to_owned(),
        value: None,
    };
    assert_fixture(tombstone, &KEY_T1, None);
    assert_eq!(
        TxnRecord::decode(&[0x00, 0x01, 0x00, 0x00], None),
        Err(DecodeError::UnknownKeyType(1)),
        "a group coordinator record"
    );
    assert_eq!(
        TxnRecord::decode(&KEY_T1, Some(&[0x00, 0x02])),
        Err(DecodeError::UnknownValueVersion(2))
    );
    let good = record(value(Empty, 0)).encode_value().unwrap();
    for n in 2..good.len() {
        assert!(
            TxnRecord::decode(&KEY_T1, Some(&good[..n])).is_err(),
            "{n} bytes"
        );
    }
    let mut bad_status = good.to_vec();
    bad_status[16] = 9;
    assert_eq!(
        TxnRecord::decode(&KEY_T1, Some(&bad_status)),
        Err(DecodeError::UnknownTransactionStatus(9))
    );
}

#[test]
fn the_partition_of_a_transactional_id_is_javas_string_hash() {
    // "t1".hashCode() = 116 * 31 + 49 = 3645.
    assert_eq!(partition_for(TXN, 50), TXN_PARTITION);
    assert_eq!(partition_for(GROUP, 50), GROUP_PARTITION);
    assert_eq!(partition_for("t2", 50), 46);
}
