//! Describing a consumer group as `kafka-consumer-groups.sh --describe` shows it: its state and
//! members with their assignments (`DescribeGroups` at the group's coordinator), and per
//! partition the committed offset (`OffsetFetch`), the log end a consumer sees (the high
//! watermark, `ListOffsets` latest) and the lag between them.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, OffsetFetchRequest,
    RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::cluster::ClusterView;
use super::consumer::{list_offsets_request, listed_offset};
use super::group_consumer::decode_assignment;
use crate::protocol::versions::client_version;
use crate::scenario::TopicPartition;

/// One member of a described group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub partitions: Vec<TopicPartition>,
}

/// One partition the group has a committed offset for, or that a member owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    pub partition: TopicPartition,
    /// `None`: nothing committed.
    pub committed: Option<i64>,
    /// The high watermark; `None` when its leader could not say.
    pub log_end: Option<i64>,
    /// `log_end - committed` when both are known.
    pub lag: Option<i64>,
    /// The member owning it now, if any.
    pub owner: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    pub group: String,
    pub state: String,
    pub protocol: String,
    pub coordinator: i32,
    pub members: Vec<MemberDescription>,
    pub partitions: Vec<PartitionLag>,
}

async fn send(
    view: &mut ClusterView,
    broker: i32,
    api: ApiKey,
    request: RequestKind,
    timeout: Duration,
) -> Result<ResponseKind, String> {
    let conn = view.connection(broker).await.map_err(|e| e.to_string())?;
    let result = conn
        .send(api, client_version(api), &request, timeout)
        .await
        .map_err(|e| e.to_string());
    if result.is_err() {
        view.disconnect(broker);
    }
    result
}

fn error(code: i16) -> String {
    kafka_protocol::error::ResponseError::try_from_code(code)
        .map_or_else(|| format!("error {code}"), |e| format!("{e:?}"))
}

/// Describes `group`. `view` must know the brokers (a refreshed metadata).
pub async fn describe_group(
    view: &mut ClusterView,
    group: &str,
    timeout: Duration,
) -> Result<GroupDescription, String> {
    let brokers = view.brokers();
    let any = *brokers.first().ok_or("no broker known")?;
    let find = RequestKind::FindCoordinator(
        FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![StrBytes::from_string(group.to_string())]),
    );
    let coordinator = match send(view, any, ApiKey::FindCoordinator, find, timeout).await? {
        ResponseKind::FindCoordinator(r) => match r.coordinators.first() {
            Some(c) if c.error_code == 0 => c.node_id.0,
            Some(c) => return Err(error(c.error_code)),
            None => return Err("no coordinator in the answer".into()),
        },
        other => return Err(format!("unexpected answer {other:?}")),
    };
    let describe = RequestKind::DescribeGroups(
        DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(StrBytes::from_string(group.to_string()))]),
    );
    let described = match send(view, coordinator, ApiKey::DescribeGroups, describe, timeout).await?
    {
        ResponseKind::DescribeGroups(r) => r
            .groups
            .into_iter()
            .next()
            .ok_or("no group in the answer")?,
        other => return Err(format!("unexpected answer {other:?}")),
    };
    if described.error_code != 0 {
        return Err(error(described.error_code));
    }
    let members: Vec<MemberDescription> = described
        .members
        .iter()
        .map(|m| MemberDescription {
            member_id: m.member_id.to_string(),
            group_instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            partitions: decode_assignment(&m.member_assignment),
        })
        .collect();
    let fetch = RequestKind::OffsetFetch(OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_topics(None),
    ]));
    let mut committed: BTreeMap<TopicPartition, Option<i64>> = BTreeMap::new();
    match send(view, coordinator, ApiKey::OffsetFetch, fetch, timeout).await? {
        ResponseKind::OffsetFetch(r) => {
            let g = r
                .groups
                .first()
                .ok_or("no group in the OffsetFetch answer")?;
            if g.error_code != 0 {
                return Err(error(g.error_code));
            }
            for t in &g.topics {
                for p in &t.partitions {
                    let tp = TopicPartition {
                        topic: t.name.0.to_string(),
                        partition: p.partition_index as u32,
                    };
                    committed.insert(tp, (p.committed_offset >= 0).then_some(p.committed_offset));
                }
            }
        }
        other => return Err(format!("unexpected answer {other:?}")),
    }
    let mut owner: BTreeMap<TopicPartition, String> = BTreeMap::new();
    for m in &members {
        for tp in &m.partitions {
            owner.insert(tp.clone(), m.member_id.clone());
            committed.entry(tp.clone()).or_insert(None);
        }
    }
    let topics: Vec<String> = committed
        .keys()
        .map(|tp| tp.topic.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let _ = view.refresh(&topics).await;
    let mut partitions = Vec::new();
    for (tp, committed) in committed {
        let log_end = high_watermark(view, &tp, timeout).await;
        partitions.push(PartitionLag {
            lag: committed.zip(log_end).map(|(c, e)| e - c),
            owner: owner.get(&tp).cloned(),
            partition: tp,
            committed,
            log_end,
        });
    }
    Ok(GroupDescription {
        group: group.to_string(),
        state: described.group_state.to_string(),
        protocol: described.protocol_data.to_string(),
        coordinator,
        members,
        partitions,
    })
}

/// A partition's high watermark, from its leader (`ListOffsets` latest).
async fn high_watermark(
    view: &mut ClusterView,
    tp: &TopicPartition,
    timeout: Duration,
) -> Option<i64> {
    let leader = view.leader(tp)?;
    let request = list_offsets_request(tp, -1);
    match send(view, leader.broker, ApiKey::ListOffsets, request, timeout).await {
        Ok(response) => listed_offset(&response),
        Err(_) => None,
    }
}
