//! The consumer protocol's subscription and assignment, as members exchange them through
//! JoinGroup and SyncGroup.

use super::*;

/// `ConsumerProtocolSubscription` v2 (topics, owned partitions, generation), with its version
/// in front as the consumer protocol writes it.
pub(super) fn encode_subscription(
    topics: &[String],
    owned: &[TopicPartition],
    generation: i32,
) -> Bytes {
    const VERSION: i16 = 2;
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in owned {
        by_topic
            .entry(&tp.topic)
            .or_default()
            .push(tp.partition as i32);
    }
    let subscription = ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| str_bytes(t)).collect())
        .with_owned_partitions(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    OwnedTopic::default()
                        .with_topic(topic_name(t))
                        .with_partitions(ps)
                })
                .collect(),
        )
        .with_generation_id(generation);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&VERSION.to_be_bytes());
    subscription
        .encode(&mut buf, VERSION)
        .expect("a subscription encodes");
    buf.freeze()
}

pub(super) fn decode_subscription(
    member_id: &StrBytes,
    instance: Option<&StrBytes>,
    metadata: &Bytes,
) -> MemberSubscription {
    let mut subscription = MemberSubscription::new(member_id.as_str(), &[]);
    subscription.group_instance_id = instance.map(|s| s.to_string());
    let mut buf = metadata.clone();
    if buf.len() < 2 {
        return subscription;
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]).clamp(0, 3);
    let _ = bytes::Buf::get_i16(&mut buf);
    if let Ok(decoded) = ConsumerProtocolSubscription::decode(&mut buf, version) {
        subscription.topics = decoded.topics.iter().map(|t| t.to_string()).collect();
        subscription.owned = decoded
            .owned_partitions
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| TopicPartition {
                    topic: t.topic.0.to_string(),
                    partition: *p as u32,
                })
            })
            .collect();
        subscription.generation = decoded.generation_id;
    }
    subscription
}

/// `ConsumerProtocolAssignment` v2, versioned.
pub(super) fn encode_assignment(partitions: &[TopicPartition]) -> Bytes {
    const VERSION: i16 = 2;
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic
            .entry(&tp.topic)
            .or_default()
            .push(tp.partition as i32);
    }
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        by_topic
            .into_iter()
            .map(|(t, ps)| {
                AssignedTopic::default()
                    .with_topic(topic_name(t))
                    .with_partitions(ps)
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&VERSION.to_be_bytes());
    assignment
        .encode(&mut buf, VERSION)
        .expect("an assignment encodes");
    buf.freeze()
}

pub(crate) fn decode_assignment(bytes: &Bytes) -> Vec<TopicPartition> {
    let mut buf = bytes.clone();
    if buf.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]).clamp(0, 3);
    let _ = bytes::Buf::get_i16(&mut buf);
    let Ok(decoded) = ConsumerProtocolAssignment::decode(&mut buf, version) else {
        return Vec::new();
    };
    decoded
        .assigned_partitions
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| TopicPartition {
                topic: t.topic.0.to_string(),
                partition: *p as u32,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, partition: u32) -> TopicPartition {
        TopicPartition {
            topic: topic.to_string(),
            partition,
        }
    }

    #[test]
    fn subscriptions_and_assignments_round_trip_through_the_consumer_protocol() {
        let owned = vec![tp("orders", 0), tp("orders", 2)];
        let bytes = encode_subscription(&["orders".to_string()], &owned, 7);
        assert_eq!(&bytes[..2], &2i16.to_be_bytes());
        let decoded = decode_subscription(&str_bytes("m-1"), None, &bytes);
        assert_eq!(decoded.member_id, "m-1");
        assert_eq!(decoded.topics.iter().collect::<Vec<_>>(), vec!["orders"]);
        assert_eq!(decoded.owned, owned);
        assert_eq!(decoded.generation, 7);
        let assigned = vec![tp("a", 1), tp("b", 0), tp("b", 3)];
        assert_eq!(decode_assignment(&encode_assignment(&assigned)), assigned);
        assert!(decode_assignment(&Bytes::from_static(&[0])).is_empty());
    }
}
