//! Byte fixtures written by hand, field by field, from Kafka's schemas
//! (`group-coordinator/src/main/resources/common/message/{OffsetCommitKey, OffsetCommitValue,
//! GroupMetadataKey, GroupMetadataValue}.json`): an int16 version, then the fields, big-endian;
//! strings as int16 length + UTF-8 (-1 null), bytes as int32 length, arrays as int32 count.

use bytes::Bytes;

use crate::coordinator::group::records::DecodeError;
use crate::coordinator::group::*;

fn assert_fixture(record: CoordinatorRecord, key: &[u8], value: Option<&[u8]>) {
    assert_eq!(record.encode_key().as_ref(), key, "key");
    assert_eq!(record.encode_value().as_deref(), value, "value");
    assert_eq!(CoordinatorRecord::decode(key, value), Ok(record));
}

#[test]
fn offset_commit_key_v1_and_value_v3() {
    let record = CoordinatorRecord::OffsetCommit {
        group: "g1".to_owned(),
        topic: "t".to_owned(),
        partition: 2,
        value: Some(OffsetCommitValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".to_owned(),
            commit_timestamp_ms: 1_000,
        }),
    };
    let key = [
        &[0x00, 0x01][..],         // key version 1: OffsetCommitKey
        &[0x00, 0x02, b'g', b'1'], // group: "g1"
        &[0x00, 0x01, b't'],       // topic: "t"
        &[0, 0, 0, 2],             // partition: int32 2
    ]
    .concat();
    let value = [
        &[0x00, 0x03][..],               // value version 3
        &[0, 0, 0, 0, 0, 0, 0, 42],      // offset: int64 42
        &[0, 0, 0, 3],                   // leaderEpoch: int32 3 (v3+)
        &[0x00, 0x01, b'm'],             // metadata: "m"
        &[0, 0, 0, 0, 0, 0, 0x03, 0xe8], // commitTimestamp: int64 1000
    ]
    .concat();
    assert_fixture(record, &key, Some(&value));
}

#[test]
fn an_offset_tombstone_has_no_value() {
    let record = CoordinatorRecord::OffsetCommit {
        group: "g1".to_owned(),
        topic: "t".to_owned(),
        partition: 0,
        value: None,
    };
    let key = [
        0x00, 0x01, 0x00, 0x02, b'g', b'1', 0x00, 0x01, b't', 0, 0, 0, 0,
    ];
    assert_fixture(record, &key, None);
}

#[test]
fn group_metadata_key_v2_and_value_v3() {
    let record = CoordinatorRecord::GroupMetadata {
        group: "g1".to_owned(),
        value: Some(GroupMetadataValue {
            protocol_type: "consumer".to_owned(),
            generation: 1,
            protocol: Some("range".to_owned()),
            leader: Some("m1".to_owned()),
            current_state_timestamp_ms: 6_000,
            members: vec![MemberMetadata {
                member_id: "m1".to_owned(),
                group_instance_id: None,
                client_id: "c1".to_owned(),
                client_host: "/h".to_owned(),
                rebalance_timeout_ms: 30_000,
                session_timeout_ms: 10_000,
                subscription: Bytes::from_static(&[1, 2]),
                assignment: Bytes::from_static(&[3]),
            }],
        }),
    };
    let key = [0x00, 0x02, 0x00, 0x02, b'g', b'1']; // key version 2: GroupMetadataKey; "g1"
    let value = [
        &[0x00, 0x03][..], // value version 3
        &[0x00, 0x08],
        b"consumer",   // protocolType
        &[0, 0, 0, 1], // generation: int32 1
        &[0x00, 0x05],
        b"range", // protocol (nullable): "range"
        &[0x00, 0x02],
        b"m1",                           // leader (nullable): "m1"
        &[0, 0, 0, 0, 0, 0, 0x17, 0x70], // currentStateTimestamp: int64 6000 (v2+)
        &[0, 0, 0, 1],                   // members: array of 1
        &[0x00, 0x02],
        b"m1",         //   memberId
        &[0xff, 0xff], //   groupInstanceId: null (v3+)
        &[0x00, 0x02],
        b"c1", //   clientId
        &[0x00, 0x02],
        b"/h",               //   clientHost
        &[0, 0, 0x75, 0x30], //   rebalanceTimeout: 30000 (v1+)
        &[0, 0, 0x27, 0x10], //   sessionTimeout: 10000
        &[0, 0, 0, 2, 1, 2], //   subscription: bytes [1, 2]
        &[0, 0, 0, 1, 3],    //   assignment: bytes [3]
    ]
    .concat();
    assert_fixture(record, &key, Some(&value));
}

#[test]
fn a_static_members_instance_id_and_a_group_tombstone() {
    let value = GroupMetadataValue {
        protocol_type: "consumer".to_owned(),
        generation: 0,
        protocol: None,
        leader: None,
        current_state_timestamp_ms: -1,
        members: vec![],
    };
    let encoded = CoordinatorRecord::GroupMetadata {
        group: "g".to_owned(),
        value: Some(value),
    }
    .encode_value()
    .unwrap();
    let expected = [
        &[0x00, 0x03][..],
        &[0x00, 0x08],
        b"consumer",
        &[0, 0, 0, 0], // generation 0
        &[0xff, 0xff], // protocol: null
        &[0xff, 0xff], // leader: null
        &[0xff; 8],    // currentStateTimestamp: -1
        &[0, 0, 0, 0], // no members
    ]
    .concat();
    assert_eq!(encoded.as_ref(), &expected[..]);
    let tombstone = CoordinatorRecord::GroupMetadata {
        group: "g".to_owned(),
        value: None,
    };
    assert_fixture(tombstone, &[0x00, 0x02, 0x00, 0x01, b'g'], None);

    let member = MemberMetadata {
        member_id: "i-1".to_owned(),
        group_instance_id: Some("i".to_owned()),
        client_id: String::new(),
        client_host: String::new(),
        rebalance_timeout_ms: 1,
        session_timeout_ms: 2,
        subscription: Bytes::new(),
        assignment: Bytes::new(),
    };
    let value = GroupMetadataValue {
        protocol_type: "consumer".to_owned(),
        generation: 5,
        protocol: Some("r".to_owned()),
        leader: Some("i-1".to_owned()),
        current_state_timestamp_ms: 0,
        members: vec![member],
    };
    let record = CoordinatorRecord::GroupMetadata {
        group: "g".to_owned(),
        value: Some(value),
    };
    let bytes = record.encode_value().unwrap();
    let member_bytes = [
        &[0x00, 0x03][..],
        b"i-1",
        &[0x00, 0x01],
        b"i",          // groupInstanceId: "i"
        &[0x00, 0x00], // clientId: ""
        &[0x00, 0x00], // clientHost: ""
        &[0, 0, 0, 1],
        &[0, 0, 0, 2],
        &[0, 0, 0, 0], // subscription: empty
        &[0, 0, 0, 0], // assignment: empty
    ]
    .concat();
    assert!(bytes.ends_with(&member_bytes), "{bytes:02x?}");
    assert_eq!(
        CoordinatorRecord::decode(&record.encode_key(), Some(&bytes)),
        Ok(record)
    );
}

#[test]
fn older_value_versions_are_read() {
    let key = CoordinatorRecord::OffsetCommit {
        group: "g".to_owned(),
        topic: "t".to_owned(),
        partition: 0,
        value: None,
    }
    .encode_key();
    // OffsetCommitValue v1: offset, metadata, commitTimestamp, expireTimestamp.
    let v1 = [
        &[0x00, 0x01][..],
        &[0, 0, 0, 0, 0, 0, 0, 9],
        &[0x00, 0x00],
        &[0, 0, 0, 0, 0, 0, 0, 1],
        &[0, 0, 0, 0, 0, 0, 0, 2],
    ]
    .concat();
    let CoordinatorRecord::OffsetCommit {
        value: Some(value), ..
    } = CoordinatorRecord::decode(&key, Some(&v1)).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        value,
        OffsetCommitValue {
            offset: 9,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 1
        }
    );
    // GroupMetadataValue v0: no rebalance timeout (the session timeout stands in), no state
    // timestamp, no instance id.
    let v0 = [
        &[0x00, 0x00][..],
        &[0x00, 0x01],
        b"c",
        &[0, 0, 0, 4],
        &[0x00, 0x01],
        b"r",
        &[0x00, 0x01],
        b"m",
        &[0, 0, 0, 1],
        &[0x00, 0x01],
        b"m",
        &[0x00, 0x01],
        b"x",
        &[0x00, 0x01],
        b"h",
        &[0, 0, 0, 7],
        &[0, 0, 0, 0],
        &[0, 0, 0, 0],
    ]
    .concat();
    let group_key = [0x00, 0x02, 0x00, 0x01, b'g'];
    let CoordinatorRecord::GroupMetadata {
        value: Some(value), ..
    } = CoordinatorRecord::decode(&group_key, Some(&v0)).unwrap()
    else {
        panic!()
    };
    assert_eq!(value.current_state_timestamp_ms, -1);
    assert_eq!(value.members[0].rebalance_timeout_ms, 7);
    assert_eq!(value.members[0].session_timeout_ms, 7);
    assert_eq!(value.members[0].group_instance_id, None);
}

#[test]
fn malformed_records_are_errors_not_panics() {
    assert_eq!(
        CoordinatorRecord::decode(&[0x00], None),
        Err(DecodeError::Truncated)
    );
    assert_eq!(
        CoordinatorRecord::decode(&[0x00, 0x05, 0, 0], None),
        Err(DecodeError::UnknownKeyVersion(5))
    );
    let key = [0x00, 0x02, 0x00, 0x01, b'g'];
    assert_eq!(
        CoordinatorRecord::decode(&key, Some(&[0x00, 0x09])),
        Err(DecodeError::UnknownValueVersion(9))
    );
    assert_eq!(
        CoordinatorRecord::decode(&[0x00, 0x02, 0x00, 0x01, b'g', 0], None),
        Err(DecodeError::TrailingBytes)
    );
    assert_eq!(
        CoordinatorRecord::decode(&[0x00, 0x02, 0xff, 0xfe], None),
        Err(DecodeError::NegativeLength)
    );
    assert_eq!(
        CoordinatorRecord::decode(&[0x00, 0x02, 0xff, 0xff], None),
        Err(DecodeError::NullNotAllowed)
    );
}
