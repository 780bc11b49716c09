//! Byte fixtures written by hand, field by field, from the JSON schemas
//! (`metadata/src/main/resources/common/metadata/<Name>.json`) and `AbstractApiMessageSerde`'s
//! framing, so that a reader can check each byte against the schema.

use crate::controller::records::*;
use crate::controller::uuid::Uuid;

/// A topic id whose bytes are easy to spot: 01 23 45 67 89 ab cd ef fe dc ba 98 76 54 32 10.
const TOPIC_ID: Uuid = Uuid::from_parts(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
const TOPIC_ID_BYTES: [u8; 16] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
];

fn dir(n: u8) -> (Uuid, [u8; 16]) {
    let mut bytes = [0u8; 16];
    bytes[0] = 0xd0;
    bytes[15] = n;
    let uuid = Uuid::from_parts(0xd000_0000_0000_0000, u64::from(n));
    (uuid, bytes)
}

fn assert_fixture(record: MetadataRecord, expected: &[u8]) {
    let encoded = record.encode();
    assert_eq!(
        encoded.as_ref(),
        expected,
        "\nencoded:  {encoded:02x?}\nexpected: {expected:02x?}"
    );
    assert_eq!(MetadataRecord::decode(expected), Ok(record));
}

#[test]
fn topic_record_v0() {
    let record = MetadataRecord::Topic(TopicRecord {
        name: "foo".to_owned(),
        topic_id: TOPIC_ID,
    });
    let expected = [
        &[0x01][..],               // frame version 1 (unsigned varint)
        &[0x02],                   // record type: TopicRecord's apiKey 2
        &[0x00],                   // version 0
        &[0x04, b'f', b'o', b'o'], // Name: compact string, length 3 + 1
        &TOPIC_ID_BYTES,           // TopicId: uuid, msb then lsb
        &[0x00],                   // no tagged fields
    ]
    .concat();
    assert_fixture(record, &expected);
}

#[test]
fn partition_record_v2() {
    let (dir1, dir1_bytes) = dir(1);
    let (dir2, dir2_bytes) = dir(2);
    let record = MetadataRecord::Partition(PartitionRecord {
        partition_id: 1,
        topic_id: TOPIC_ID,
        replicas: vec![1, 2],
        isr: vec![2],
        removing_replicas: vec![],
        adding_replicas: vec![],
        leader: 2,
        leader_recovery_state: 1,
        leader_epoch: 5,
        partition_epoch: 7,
        directories: vec![dir1, dir2],
        eligible_leader_replicas: Some(vec![1]),
        last_known_elr: None,
    });
    let expected = [
        &[0x01][..],                     // frame version 1
        &[0x03],                         // PartitionRecord, apiKey 3
        &[0x02],                         // version 2
        &[0, 0, 0, 1],                   // PartitionId: int32 1
        &TOPIC_ID_BYTES,                 // TopicId
        &[0x03, 0, 0, 0, 1, 0, 0, 0, 2], // Replicas: compact array of 2 (length + 1 = 3): 1, 2
        &[0x02, 0, 0, 0, 2],             // Isr: [2]
        &[0x01],                         // RemovingReplicas: empty (not nullable in v2)
        &[0x01],                         // AddingReplicas: empty
        &[0, 0, 0, 2],                   // Leader: 2
        // LeaderRecoveryState is tagged (tag 0): not here.
        &[0, 0, 0, 5], // LeaderEpoch: 5
        &[0, 0, 0, 7], // PartitionEpoch: 7
        &[0x03],       // Directories (v1+): compact array of 2 uuids
        &dir1_bytes,
        &dir2_bytes,
        &[0x02],             // two tagged fields, ascending tags:
        &[0x00, 0x01, 0x01], //   tag 0 LeaderRecoveryState, size 1, value 1 (RECOVERING)
        &[0x01, 0x05, 0x02, 0, 0, 0, 1], // tag 1 EligibleLeaderReplicas, size 5, [1]
                             // tag 2 LastKnownElr is null, its default: not written.
    ]
    .concat();
    assert_fixture(record, &expected);
}

#[test]
fn partition_record_defaults_write_no_tagged_fields() {
    let record = MetadataRecord::Partition(PartitionRecord {
        partition_id: 0,
        topic_id: TOPIC_ID,
        replicas: vec![3],
        isr: vec![3],
        removing_replicas: vec![],
        adding_replicas: vec![],
        leader: 3,
        leader_recovery_state: 0,
        leader_epoch: 0,
        partition_epoch: 0,
        directories: vec![Uuid::ZERO],
        eligible_leader_replicas: None,
        last_known_elr: None,
    });
    let encoded = record.encode();
    assert_eq!(encoded.last(), Some(&0x00), "tagged-field count 0");
    assert_eq!(
        encoded.len(),
        3 + 4 + 16 + 5 + 5 + 1 + 1 + 4 + 4 + 4 + 17 + 1
    );
}

#[test]
fn partition_change_record_v2() {
    let record = MetadataRecord::PartitionChange(PartitionChangeRecord {
        partition_id: 4,
        topic_id: TOPIC_ID,
        isr: Some(vec![2]),
        leader: Some(2),
        leader_recovery_state: Some(1),
        ..PartitionChangeRecord::default()
    });
    let expected = [
        &[0x01, 0x05, 0x02][..], // frame 1, PartitionChangeRecord (5), version 2
        &[0, 0, 0, 4],           // PartitionId: 4
        &TOPIC_ID_BYTES,         // TopicId
        &[0x03],                 // three tagged fields:
        &[0x00, 0x05, 0x02, 0, 0, 0, 2], //   tag 0 Isr, size 5, [2]
        &[0x01, 0x04, 0, 0, 0, 2], //   tag 1 Leader, size 4, 2
        &[0x05, 0x01, 0x01],     //   tag 5 LeaderRecoveryState, size 1, 1
    ]
    .concat();
    assert_fixture(record, &expected);
}

#[test]
fn partition_change_no_leader_is_minus_one_and_no_change_is_absent() {
    let offline = MetadataRecord::PartitionChange(PartitionChangeRecord {
        partition_id: 0,
        topic_id: TOPIC_ID,
        leader: Some(-1),
        ..PartitionChangeRecord::default()
    });
    let encoded = offline.encode();
    assert_eq!(
        &encoded[3 + 4 + 16..],
        &[0x01, 0x01, 0x04, 0xff, 0xff, 0xff, 0xff]
    );
    // A Leader tag holding -2 (the default) reads as "no change".
    let mut explicit_default = encoded.to_vec();
    let n = explicit_default.len();
    explicit_default[n - 4..].copy_from_slice(&(-2i32).to_be_bytes());
    let MetadataRecord::PartitionChange(decoded) =
        MetadataRecord::decode(&explicit_default).unwrap()
    else {
        panic!("not a PartitionChangeRecord");
    };
    assert_eq!(decoded.leader, None);
}

#[test]
fn register_broker_record_v3() {
    let (log_dir, log_dir_bytes) = dir(9);
    let record = MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id: 1,
        is_migrating_zk_broker: false,
        incarnation_id: TOPIC_ID,
        broker_epoch: 10,
        endpoints: vec![BrokerEndpoint {
            name: "PLAINTEXT".to_owned(),
            host: "h".to_owned(),
            port: 9092,
            security_protocol: 0,
        }],
        features: vec![BrokerFeature {
            name: "metadata.version".to_owned(),
            min_supported_version: 1,
            max_supported_version: 25,
        }],
        rack: None,
        fenced: true,
        in_controlled_shutdown: false,
        log_dirs: vec![log_dir],
    });
    let expected = [
        &[0x01, 0x00, 0x03][..],    // frame 1, RegisterBrokerRecord (0), version 3
        &[0, 0, 0, 1],              // BrokerId: 1
        &[0x00],                    // IsMigratingZkBroker (v2+): false
        &TOPIC_ID_BYTES,            // IncarnationId
        &[0, 0, 0, 0, 0, 0, 0, 10], // BrokerEpoch: int64 10
        &[0x02],                    // EndPoints: 1 entry
        &[0x0a],
        b"PLAINTEXT",  //   Name: length 9 + 1
        &[0x02, b'h'], //   Host
        &[0x23, 0x84], //   Port: uint16 9092
        &[0x00, 0x00], //   SecurityProtocol: int16 0 (PLAINTEXT)
        &[0x00],       //   the entry's own tagged fields: none
        &[0x02],       // Features: 1 entry
        &[0x11],
        b"metadata.version", // Name: length 16 + 1
        &[0x00, 0x01],       //   MinSupportedVersion: 1
        &[0x00, 0x19],       //   MaxSupportedVersion: 25
        &[0x00],             //   tagged fields: none
        &[0x00],             // Rack: null
        &[0x01],             // Fenced: true
        &[0x00],             // InControlledShutdown (v1+): false
        &[0x01],             // one tagged field:
        &[0x00, 0x11, 0x02], //   tag 0 LogDirs, size 17, array of 1
        &log_dir_bytes,
    ]
    .concat();
    assert_fixture(record, &expected);
}

#[test]
fn small_records() {
    let fence = MetadataRecord::FenceBroker(FenceBrokerRecord { id: 3, epoch: 258 });
    assert_fixture(
        fence,
        &[
            0x01, 0x07, 0x00, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0x01, 0x02, 0x00,
        ],
    );
    let change = MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
        broker_id: 3,
        broker_epoch: 258,
        fenced: -1,
        in_controlled_shutdown: 0,
        log_dirs: vec![],
    });
    assert_fixture(
        change,
        &[
            0x01, 0x11, 0x02, // frame 1, BrokerRegistrationChangeRecord (17), version 2
            0, 0, 0, 3, // BrokerId
            0, 0, 0, 0, 0, 0, 0x01, 0x02, // BrokerEpoch 258
            0x01, 0x00, 0x01, 0xff, // one tagged field: tag 0 Fenced, size 1, -1 (unfence)
        ],
    );
    let config = MetadataRecord::Config(ConfigRecord {
        resource_type: 2,
        resource_name: "t".to_owned(),
        name: "k".to_owned(),
        value: None,
    });
    assert_fixture(
        config,
        &[0x01, 0x04, 0x00, 0x02, 0x02, b't', 0x02, b'k', 0x00, 0x00],
    );
}

#[test]
fn framing_errors_are_kafkas() {
    let good = MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id: TOPIC_ID }).encode();
    let mut frame_zero = good.to_vec();
    frame_zero[0] = 0;
    assert_eq!(
        MetadataRecord::decode(&frame_zero),
        Err(RecordError::UnsupportedFrameVersion(0))
    );
    let mut unknown_type = good.to_vec();
    unknown_type[1] = 12; // FeatureLevelRecord: Kafka's, not (yet) Samsa's
    assert_eq!(
        MetadataRecord::decode(&unknown_type),
        Err(RecordError::UnknownRecordType(12))
    );
    let mut old_version = good.to_vec();
    old_version[2] = 1;
    assert!(matches!(
        MetadataRecord::decode(&old_version),
        Err(RecordError::UnsupportedVersion {
            api_key: 9,
            version: 1
        })
    ));
    let mut trailing = good.to_vec();
    trailing.push(0);
    assert_eq!(
        MetadataRecord::decode(&trailing),
        Err(RecordError::TrailingBytes {
            api_key: 9,
            count: 1
        })
    );
}

#[test]
fn unknown_tagged_fields_are_skipped() {
    let topic = MetadataRecord::Topic(TopicRecord {
        name: "a".to_owned(),
        topic_id: TOPIC_ID,
    });
    let mut bytes = topic.encode().to_vec();
    let n = bytes.len();
    bytes[n - 1] = 0x01; // one tagged field
    bytes.extend_from_slice(&[0x07, 0x02, 0xaa, 0xbb]); // tag 7, size 2, two opaque bytes
    assert_eq!(MetadataRecord::decode(&bytes), Ok(topic));
}

#[test]
fn the_raft_drivers_no_op_record_is_ours() {
    let bytes = crate::raft::driver::NOOP_RECORD;
    assert_eq!(MetadataRecord::decode(bytes), Ok(MetadataRecord::NoOp));
    assert_eq!(MetadataRecord::NoOp.encode().as_ref(), bytes);
}
