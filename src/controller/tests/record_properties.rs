//! Round trips of every record, and decoding that never panics on garbage.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use crate::controller::records::*;
use crate::controller::uuid::Uuid;

fn uuid() -> impl Strategy<Value = Uuid> {
    (any::<u64>(), any::<u64>()).prop_map(|(m, l)| Uuid::from_parts(m, l))
}

fn ids() -> impl Strategy<Value = Vec<i32>> {
    vec(-1..2000i32, 0..6)
}

fn name() -> impl Strategy<Value = String> {
    "\\PC{0,24}"
}

fn register_broker() -> impl Strategy<Value = RegisterBrokerRecord> {
    let endpoint =
        (name(), name(), any::<u16>(), any::<i16>()).prop_map(|(n, h, p, s)| BrokerEndpoint {
            name: n,
            host: h,
            port: p,
            security_protocol: s,
        });
    let feature = (name(), any::<i16>(), any::<i16>()).prop_map(|(n, min, max)| BrokerFeature {
        name: n,
        min_supported_version: min,
        max_supported_version: max,
    });
    (
        (any::<i32>(), any::<bool>(), uuid(), any::<i64>()),
        (vec(endpoint, 0..3), vec(feature, 0..3), option::of(name())),
        (any::<bool>(), any::<bool>(), vec(uuid(), 0..3)),
    )
        .prop_map(
            |((id, zk, inc, epoch), (endpoints, features, rack), (f, cs, dirs))| {
                RegisterBrokerRecord {
                    broker_id: id,
                    is_migrating_zk_broker: zk,
                    incarnation_id: inc,
                    broker_epoch: epoch,
                    endpoints,
                    features,
                    rack,
                    fenced: f,
                    in_controlled_shutdown: cs,
                    log_dirs: dirs,
                }
            },
        )
}

fn partition() -> impl Strategy<Value = PartitionRecord> {
    (
        (any::<i32>(), uuid(), ids(), ids(), ids(), ids()),
        (any::<i32>(), any::<i8>(), any::<i32>(), any::<i32>()),
        (vec(uuid(), 0..4), option::of(ids()), option::of(ids())),
    )
        .prop_map(
            |((p, t, r, isr, rm, add), (l, lrs, le, pe), (dirs, elr, lke))| PartitionRecord {
                partition_id: p,
                topic_id: t,
                replicas: r,
                isr,
                removing_replicas: rm,
                adding_replicas: add,
                leader: l,
                leader_recovery_state: lrs,
                leader_epoch: le,
                partition_epoch: pe,
                directories: dirs,
                eligible_leader_replicas: elr,
                last_known_elr: lke,
            },
        )
}

fn partition_change() -> impl Strategy<Value = PartitionChangeRecord> {
    // -2 and -1 are the "no change" defaults of Leader and LeaderRecoveryState: `None` here.
    let leader = option::of(prop_oneof![-1..5000i32, Just(i32::MAX)]);
    let recovery = option::of(any::<i8>().prop_filter("-1 is no change", |v| *v != -1));
    (
        (any::<i32>(), uuid(), option::of(ids()), leader),
        (
            option::of(ids()),
            option::of(ids()),
            option::of(ids()),
            recovery,
        ),
        (
            option::of(ids()),
            option::of(ids()),
            option::of(vec(uuid(), 0..3)),
        ),
    )
        .prop_map(
            |((p, t, isr, leader), (r, rm, add, lrs), (elr, lke, dirs))| PartitionChangeRecord {
                partition_id: p,
                topic_id: t,
                isr,
                leader,
                replicas: r,
                removing_replicas: rm,
                adding_replicas: add,
                leader_recovery_state: lrs,
                eligible_leader_replicas: elr,
                last_known_elr: lke,
                directories: dirs,
            },
        )
}

fn record() -> impl Strategy<Value = MetadataRecord> {
    prop_oneof![
        register_broker().prop_map(MetadataRecord::RegisterBroker),
        (name(), uuid())
            .prop_map(|(name, topic_id)| MetadataRecord::Topic(TopicRecord { name, topic_id })),
        partition().prop_map(MetadataRecord::Partition),
        (any::<i8>(), name(), name(), option::of(name())).prop_map(|(t, rn, n, v)| {
            MetadataRecord::Config(ConfigRecord {
                resource_type: t,
                resource_name: rn,
                name: n,
                value: v,
            })
        }),
        partition_change().prop_map(MetadataRecord::PartitionChange),
        (any::<i32>(), any::<i64>())
            .prop_map(|(id, epoch)| MetadataRecord::FenceBroker(FenceBrokerRecord { id, epoch })),
        (any::<i32>(), any::<i64>()).prop_map(|(id, epoch)| {
            MetadataRecord::UnfenceBroker(UnfenceBrokerRecord { id, epoch })
        }),
        uuid().prop_map(|topic_id| MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id })),
        (
            any::<i32>(),
            any::<i64>(),
            any::<i8>(),
            any::<i8>(),
            vec(uuid(), 0..3)
        )
            .prop_map(|(id, epoch, f, cs, dirs)| {
                MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
                    broker_id: id,
                    broker_epoch: epoch,
                    fenced: f,
                    in_controlled_shutdown: cs,
                    log_dirs: dirs,
                })
            }),
        Just(MetadataRecord::NoOp),
    ]
}

proptest! {
    #[test]
    fn every_record_round_trips(record in record()) {
        let bytes = record.encode();
        let decoded = MetadataRecord::decode(&bytes);
        prop_assert_eq!(&decoded, &Ok(record));
        // And the bytes are a fixed point: decoding then encoding gives them back.
        prop_assert_eq!(decoded.unwrap().encode(), bytes);
    }

    #[test]
    fn every_strict_prefix_is_refused(record in record(), cut in any::<prop::sample::Index>()) {
        let bytes = record.encode();
        let cut = cut.index(bytes.len());
        prop_assert!(MetadataRecord::decode(&bytes[..cut]).is_err());
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        let _ = MetadataRecord::decode(&bytes);
    }

    #[test]
    fn random_bodies_behind_a_valid_header_never_panic(
        which in 0usize..10,
        body in vec(any::<u8>(), 0..256),
    ) {
        let headers: [[u8; 2]; 10] =
            [[0, 3], [2, 0], [3, 2], [4, 0], [5, 2], [7, 0], [8, 0], [9, 0], [17, 2], [20, 0]];
        let mut bytes = vec![0x01];
        bytes.extend_from_slice(&headers[which]);
        bytes.extend_from_slice(&body);
        let _ = MetadataRecord::decode(&bytes);
    }

    #[test]
    fn mutated_records_never_panic(
        record in record(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = record.encode().to_vec();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let _ = MetadataRecord::decode(&bytes);
    }
}
