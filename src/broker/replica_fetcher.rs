//! Followers pull (Kafka's `ReplicaFetcherThread`): one fetcher per leader broker fetches every
//! partition this broker follows there, in one `Fetch` request (replica id, fetch offset, last
//! fetched epoch, current leader epoch), long-polled by the leader up to
//! `replica.fetch.wait.max.ms`. Each partition's answer is records to append (with the leader's
//! high watermark), a diverging epoch to truncate to (KIP-279's repeated search: the next fetch
//! asks again from where the truncation left the log), or an error: out of range (the leader's
//! log starts above or ends below ours: `ListOffsets` tells where), or a leadership change (the
//! partition backs off `replica.fetch.backoff.ms` until the metadata catches up).
//!
//! Fetch v12 is the newest that names topics rather than ids; it carries no broker epoch (v15's
//! `ReplicaState`), so the leader quotes the one its metadata image holds (see `isr`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, ListOffsetsRequest, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use crate::protocol::connection::Connection;
use crate::scenario::TopicPartition;

const FETCH_VERSION: i16 = 12;
const LIST_OFFSETS_VERSION: i16 = 8;

/// Starts a fetcher for every leader of a followed partition that has none yet. A fetcher never
/// stops: with nothing to fetch it waits for the next image.
pub(super) fn ensure_running(broker: &Arc<Broker>) {
    let leaders: BTreeSet<i32> = broker
        .followed
        .lock()
        .expect("followed lock")
        .values()
        .copied()
        .collect();
    let mut running = broker.fetchers.lock().expect("fetchers lock");
    for leader in leaders {
        if running.insert(leader) {
            tokio::spawn(run(broker.clone(), leader));
        }
    }
}

/// What a fetch asked for one partition, to tell a stale answer.
struct Asked {
    fetch_offset: i64,
    leader_epoch: i32,
}

async fn run(broker: Arc<Broker>, leader: i32) {
    let config = broker.ctx.replication.clone();
    let backoff = Duration::from_millis(config.fetch_backoff_ms);
    let mut connection: Option<Connection> = None;
    // Partitions that failed, and until when they wait.
    let mut delayed: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    loop {
        let next_image = broker.image_version.listen();
        let now_ms = broker.ctx.clock.now_ms();
        delayed.retain(|_, until| *until > now_ms);
        let followed: Vec<TopicPartition> = broker
            .followed
            .lock()
            .expect("followed lock")
            .iter()
            .filter(|(tp, l)| **l == leader && !delayed.contains_key(*tp))
            .map(|(tp, _)| tp.clone())
            .collect();
        let mut asked = BTreeMap::new();
        let mut topics: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
        for tp in followed {
            let Some(handle) = broker.partition(&tp) else {
                continue;
            };
            let partition = handle.lock().await;
            if partition.is_leader() || partition.leader() != leader {
                continue;
            }
            let position = partition.fetch_position();
            topics.entry(tp.topic.clone()).or_default().push(
                FetchPartition::default()
                    .with_partition(tp.partition as i32)
                    .with_fetch_offset(position.fetch_offset)
                    .with_current_leader_epoch(position.current_leader_epoch)
                    .with_last_fetched_epoch(position.last_fetched_epoch)
                    .with_log_start_offset(position.log_start_offset)
                    .with_partition_max_bytes(config.fetch_max_bytes),
            );
            asked.insert(
                tp,
                Asked {
                    fetch_offset: position.fetch_offset,
                    leader_epoch: position.current_leader_epoch,
                },
            );
        }
        let address = broker.metadata().brokers.get(&leader).copied();
        let (Some(address), false) = (address, asked.is_empty()) else {
            // Nothing to fetch here (or no address yet): wait for the next image, or for a
            // delayed partition's turn.
            let wait = delayed.values().min().map_or(backoff * 10, |until| {
                Duration::from_millis((until - now_ms).max(1) as u64)
            });
            tokio::select! {
                biased;
                _ = next_image => {}
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        };
        if connection.as_ref().is_none_or(Connection::is_closed) {
            match Connection::connect_with(address, &broker.ctx.name, broker.ctx.delays.clone())
                .await
            {
                Ok(c) => connection = Some(c),
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            }
        }
        let conn = connection.as_ref().expect("connected above");
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(broker.ctx.id))
            .with_max_wait_ms(config.fetch_wait_max_ms)
            .with_min_bytes(config.fetch_min_bytes)
            .with_max_bytes(config.fetch_response_max_bytes)
            .with_session_epoch(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        FetchTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(topic)))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let timeout = Duration::from_millis(
            config.socket_timeout_ms + config.fetch_wait_max_ms.max(0) as u64,
        );
        let response = conn
            .send(
                ApiKey::Fetch,
                FETCH_VERSION,
                &RequestKind::Fetch(request),
                timeout,
            )
            .await;
        let Ok(ResponseKind::Fetch(response)) = response else {
            connection = None;
            tokio::time::sleep(backoff).await;
            continue;
        };
        let mut out_of_range = Vec::new();
        for topic in response.responses {
            for data in topic.partitions {
                let Ok(index) = u32::try_from(data.partition_index) else {
                    continue;
                };
                let tp = TopicPartition {
                    topic: topic.topic.0.to_string(),
                    partition: index,
                };
                let Some(ask) = asked.get(&tp) else {
                    continue;
                };
                let Some(handle) = broker.partition(&tp) else {
                    continue;
                };
                let mut partition = handle.lock().await;
                let stale = partition.is_leader()
                    || partition.leader() != leader
                    || partition.leader_epoch() != ask.leader_epoch
                    || partition.log_end_offset() != ask.fetch_offset;
                if stale {
                    continue;
                }
                let result = if data.error_code == 0 {
                    let diverging = &data.diverging_epoch;
                    if diverging.epoch >= 0 || diverging.end_offset >= 0 {
                        partition
                            .truncate_diverging(
                                data.high_watermark,
                                diverging.epoch,
                                diverging.end_offset,
                            )
                            .await
                    } else {
                        let records = data.records.unwrap_or_default();
                        partition
                            .append_as_follower(
                                &records,
                                data.high_watermark,
                                data.log_start_offset,
                            )
                            .await
                    }
                } else if data.error_code == ResponseError::OffsetOutOfRange.code() {
                    out_of_range.push(tp.clone());
                    Ok(())
                } else {
                    delayed.insert(tp.clone(), now_ms + config.fetch_backoff_ms as i64);
                    Ok(())
                };
                if result.is_err() {
                    // The disk failed: Kafka takes the log directory offline; this broker stops
                    // following the partition until it restarts.
                    delayed.insert(tp.clone(), i64::MAX);
                }
            }
        }
        for tp in out_of_range {
            reset_out_of_range(&broker, conn, &tp).await;
        }
    }
}

/// Asks the leader where its log starts and ends (`ListOffsets` as a replica: the latest offset
/// is the log end, not the high watermark), then moves our log into that range.
async fn reset_out_of_range(broker: &Broker, conn: &Connection, tp: &TopicPartition) {
    let timeout = Duration::from_millis(broker.ctx.replication.socket_timeout_ms);
    let mut offsets = [0i64; 2];
    for (slot, timestamp) in offsets.iter_mut().zip([-2i64, -1]) {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(broker.ctx.id))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(tp.topic.clone())))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(tp.partition as i32)
                    .with_timestamp(timestamp)])]);
        let answer = conn
            .send(
                ApiKey::ListOffsets,
                LIST_OFFSETS_VERSION,
                &RequestKind::ListOffsets(request),
                timeout,
            )
            .await;
        let Ok(ResponseKind::ListOffsets(answer)) = answer else {
            return;
        };
        let found = answer
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .filter(|p| p.error_code == 0)
            .map(|p| p.offset);
        let Some(offset) = found else {
            return;
        };
        *slot = offset;
    }
    let Some(handle) = broker.partition(tp) else {
        return;
    };
    let mut partition = handle.lock().await;
    if !partition.is_leader() {
        let _ = partition.reset_out_of_range(offsets[0], offsets[1]).await;
    }
}
