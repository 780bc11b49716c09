//! KRaft's messages on Kafka's wire: `Vote`, `BeginQuorumEpoch`, `EndQuorumEpoch` and `Fetch` of
//! the `__cluster_metadata` partition (KIP-595), with the log's entries carried as v2 record
//! batches whose partition leader epoch is the entry's epoch.

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData,
};
use kafka_protocol::messages::{
    begin_quorum_epoch_request, begin_quorum_epoch_response, end_quorum_epoch_request,
    end_quorum_epoch_response, fetch_response, fetch_snapshot_request, fetch_snapshot_response,
    vote_request, vote_response, ApiKey, BeginQuorumEpochRequest, BeginQuorumEpochResponse,
    BrokerId, EndQuorumEpochRequest, EndQuorumEpochResponse, FetchRequest, FetchResponse,
    FetchSnapshotRequest, FetchSnapshotResponse, RequestKind, ResponseKind, TopicName, VoteRequest,
    VoteResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::core::FETCH_SNAPSHOT_MAX_BYTES;
use super::messages::{Entry, FetchBody, LogPosition, Message, NodeId, SnapshotBody, SnapshotId};
use crate::storage::batch::{self, BatchSpec, Record};

pub const METADATA_TOPIC: &str = "__cluster_metadata";
pub const CLUSTER_ID: &str = "samsa";

/// The versions the controllers speak to each other.
pub const VOTE_VERSION: i16 = 0;
pub const BEGIN_QUORUM_EPOCH_VERSION: i16 = 0;
pub const END_QUORUM_EPOCH_VERSION: i16 = 0;
pub const FETCH_VERSION: i16 = 12;
pub const FETCH_SNAPSHOT_VERSION: i16 = 0;

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str(METADATA_TOPIC))
}

fn cluster_id() -> Option<StrBytes> {
    Some(StrBytes::from_static_str(CLUSTER_ID))
}

/// A request-shaped message (`VoteRequest`, `BeginQuorumEpoch`, `EndQuorumEpoch`,
/// `FetchRequest`) as the Kafka request `from` sends; `None` for responses.
pub fn to_request(from: NodeId, message: &Message) -> Option<(ApiKey, i16, RequestKind)> {
    Some(match message {
        Message::VoteRequest { epoch, last } => {
            let partition = vote_request::PartitionData::default()
                .with_partition_index(0)
                .with_replica_epoch(*epoch)
                .with_replica_id(BrokerId(from))
                .with_last_offset_epoch(last.last_epoch)
                .with_last_offset(last.end_offset);
            let request = VoteRequest::default()
                .with_cluster_id(cluster_id())
                .with_topics(vec![vote_request::TopicData::default()
                    .with_topic_name(topic())
                    .with_partitions(vec![partition])]);
            (ApiKey::Vote, VOTE_VERSION, RequestKind::Vote(request))
        }
        Message::BeginQuorumEpoch { epoch } => {
            let partition = begin_quorum_epoch_request::PartitionData::default()
                .with_partition_index(0)
                .with_leader_id(BrokerId(from))
                .with_leader_epoch(*epoch);
            let request = BeginQuorumEpochRequest::default()
                .with_cluster_id(cluster_id())
                .with_topics(vec![begin_quorum_epoch_request::TopicData::default()
                    .with_topic_name(topic())
                    .with_partitions(vec![partition])]);
            (
                ApiKey::BeginQuorumEpoch,
                BEGIN_QUORUM_EPOCH_VERSION,
                RequestKind::BeginQuorumEpoch(request),
            )
        }
        Message::EndQuorumEpoch { epoch, successors } => {
            let partition = end_quorum_epoch_request::PartitionData::default()
                .with_partition_index(0)
                .with_leader_id(BrokerId(from))
                .with_leader_epoch(*epoch)
                .with_preferred_successors(successors.clone());
            let request = EndQuorumEpochRequest::default()
                .with_cluster_id(cluster_id())
                .with_topics(vec![end_quorum_epoch_request::TopicData::default()
                    .with_topic_name(topic())
                    .with_partitions(vec![partition])]);
            (
                ApiKey::EndQuorumEpoch,
                END_QUORUM_EPOCH_VERSION,
                RequestKind::EndQuorumEpoch(request),
            )
        }
        Message::FetchRequest {
            epoch,
            fetch_offset,
            last_fetched_epoch,
        } => {
            let partition = FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(*epoch)
                .with_fetch_offset(*fetch_offset)
                .with_last_fetched_epoch(*last_fetched_epoch)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(8 * 1024 * 1024);
            let request = FetchRequest::default()
                .with_cluster_id(cluster_id())
                .with_replica_id(BrokerId(from))
                .with_max_wait_ms(0)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(topic())
                    .with_partitions(vec![partition])]);
            (ApiKey::Fetch, FETCH_VERSION, RequestKind::Fetch(request))
        }
        Message::FetchSnapshotRequest {
            epoch,
            snapshot,
            position,
        } => {
            let partition = fetch_snapshot_request::PartitionSnapshot::default()
                .with_partition(0)
                .with_current_leader_epoch(*epoch)
                .with_snapshot_id(
                    fetch_snapshot_request::SnapshotId::default()
                        .with_end_offset(snapshot.end_offset)
                        .with_epoch(snapshot.epoch),
                )
                .with_position(*position);
            let request = FetchSnapshotRequest::default()
                .with_cluster_id(cluster_id())
                .with_replica_id(BrokerId(from))
                .with_max_bytes(FETCH_SNAPSHOT_MAX_BYTES as i32)
                .with_topics(vec![fetch_snapshot_request::TopicSnapshot::default()
                    .with_name(topic())
                    .with_partitions(vec![partition])]);
            (
                ApiKey::FetchSnapshot,
                FETCH_SNAPSHOT_VERSION,
                RequestKind::FetchSnapshot(request),
            )
        }
        Message::VoteResponse { .. }
        | Message::FetchResponse { .. }
        | Message::FetchSnapshotResponse { .. } => return None,
    })
}

/// The sender and message a controller request carries; `None` if it is not one of KRaft's or
/// names another topic.
pub fn from_request(request: &RequestKind) -> Option<(NodeId, Message)> {
    match request {
        RequestKind::Vote(r) => {
            let p = r.topics.first()?.partitions.first()?;
            let last = LogPosition {
                last_epoch: p.last_offset_epoch,
                end_offset: p.last_offset,
            };
            Some((
                p.replica_id.0,
                Message::VoteRequest {
                    epoch: p.replica_epoch,
                    last,
                },
            ))
        }
        RequestKind::BeginQuorumEpoch(r) => {
            let p = r.topics.first()?.partitions.first()?;
            Some((
                p.leader_id.0,
                Message::BeginQuorumEpoch {
                    epoch: p.leader_epoch,
                },
            ))
        }
        RequestKind::EndQuorumEpoch(r) => {
            let p = r.topics.first()?.partitions.first()?;
            let successors = p.preferred_successors.clone();
            Some((
                p.leader_id.0,
                Message::EndQuorumEpoch {
                    epoch: p.leader_epoch,
                    successors,
                },
            ))
        }
        RequestKind::Fetch(r) => {
            let t = r
                .topics
                .first()
                .filter(|t| t.topic.0.as_str() == METADATA_TOPIC)?;
            let p = t.partitions.first()?;
            let message = Message::FetchRequest {
                epoch: p.current_leader_epoch,
                fetch_offset: p.fetch_offset,
                last_fetched_epoch: p.last_fetched_epoch,
            };
            Some((r.replica_id.0, message))
        }
        RequestKind::FetchSnapshot(r) => {
            let t = r
                .topics
                .first()
                .filter(|t| t.name.0.as_str() == METADATA_TOPIC)?;
            let p = t.partitions.first()?;
            let message = Message::FetchSnapshotRequest {
                epoch: p.current_leader_epoch,
                snapshot: SnapshotId {
                    end_offset: p.snapshot_id.end_offset,
                    epoch: p.snapshot_id.epoch,
                },
                position: p.position,
            };
            Some((r.replica_id.0, message))
        }
        _ => None,
    }
}

/// The response to a KRaft request. `answer` is what the core replied (a `VoteResponse` or a
/// `FetchResponse`); `BeginQuorumEpoch` and `EndQuorumEpoch` are acknowledged as they are.
pub fn to_response(api: ApiKey, answer: Option<&Message>) -> ResponseKind {
    match (api, answer) {
        (
            ApiKey::Vote,
            Some(Message::VoteResponse {
                epoch,
                granted,
                leader,
            }),
        ) => {
            let partition = vote_response::PartitionData::default()
                .with_partition_index(0)
                .with_leader_id(BrokerId(leader.unwrap_or(-1)))
                .with_leader_epoch(*epoch)
                .with_vote_granted(*granted);
            ResponseKind::Vote(VoteResponse::default().with_topics(
                vec![vote_response::TopicData::default()
                .with_topic_name(topic())
                .with_partitions(vec![partition])],
            ))
        }
        (
            ApiKey::Fetch,
            Some(Message::FetchResponse {
                epoch,
                leader,
                body,
            }),
        ) => ResponseKind::Fetch(fetch_response(*epoch, *leader, body)),
        (
            ApiKey::FetchSnapshot,
            Some(Message::FetchSnapshotResponse {
                epoch,
                leader,
                body,
            }),
        ) => ResponseKind::FetchSnapshot(fetch_snapshot_response(*epoch, *leader, body)),
        (ApiKey::BeginQuorumEpoch, _) => {
            ResponseKind::BeginQuorumEpoch(BeginQuorumEpochResponse::default().with_topics(
                vec![begin_quorum_epoch_response::TopicData::default()
                .with_topic_name(topic())
                .with_partitions(vec![begin_quorum_epoch_response::PartitionData::default()])],
            ))
        }
        (ApiKey::EndQuorumEpoch, _) => {
            ResponseKind::EndQuorumEpoch(EndQuorumEpochResponse::default().with_topics(
                vec![end_quorum_epoch_response::TopicData::default()
                .with_topic_name(topic())
                .with_partitions(vec![end_quorum_epoch_response::PartitionData::default()])],
            ))
        }
        // A request the core did not answer: Kafka's generic refusal, in the shape of its API.
        (ApiKey::Fetch, _) => {
            let data = PartitionData::default()
                .with_partition_index(0)
                .with_error_code(ResponseError::UnknownServerError.code());
            ResponseKind::Fetch(FetchResponse::default().with_responses(
                vec![FetchableTopicResponse::default()
                .with_topic(topic())
                .with_partitions(vec![data])],
            ))
        }
        (ApiKey::FetchSnapshot, _) => ResponseKind::FetchSnapshot(
            FetchSnapshotResponse::default()
                .with_error_code(ResponseError::UnknownServerError.code()),
        ),
        _ => ResponseKind::Vote(
            VoteResponse::default().with_error_code(ResponseError::UnknownServerError.code()),
        ),
    }
}

fn fetch_snapshot_response(
    epoch: i32,
    leader: Option<NodeId>,
    body: &SnapshotBody,
) -> FetchSnapshotResponse {
    let mut data = fetch_snapshot_response::PartitionSnapshot::default()
        .with_index(0)
        .with_current_leader(
            fetch_snapshot_response::LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(leader.unwrap_or(-1)))
                .with_leader_epoch(epoch),
        );
    match body {
        SnapshotBody::Fenced => data.error_code = ResponseError::FencedLeaderEpoch.code(),
        SnapshotBody::NotFound => data.error_code = ResponseError::SnapshotNotFound.code(),
        SnapshotBody::Chunk {
            snapshot,
            size,
            position,
            bytes,
        } => {
            data.snapshot_id = fetch_snapshot_response::SnapshotId::default()
                .with_end_offset(snapshot.end_offset)
                .with_epoch(snapshot.epoch);
            data.size = *size;
            data.position = *position;
            data.unaligned_records = bytes.clone();
        }
    }
    FetchSnapshotResponse::default().with_topics(vec![
        fetch_snapshot_response::TopicSnapshot::default()
            .with_name(topic())
            .with_partitions(vec![data]),
    ])
}

fn fetch_response(epoch: i32, leader: Option<NodeId>, body: &FetchBody) -> FetchResponse {
    let mut data = PartitionData::default()
        .with_partition_index(0)
        .with_current_leader(
            LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(leader.unwrap_or(-1)))
                .with_leader_epoch(epoch),
        );
    match body {
        FetchBody::Fenced => data.error_code = ResponseError::FencedLeaderEpoch.code(),
        FetchBody::Diverging { epoch, end_offset } => {
            data.diverging_epoch = EpochEndOffset::default()
                .with_epoch(*epoch)
                .with_end_offset(*end_offset);
        }
        FetchBody::Records {
            from_offset,
            entries,
            high_watermark,
        } => {
            data.high_watermark = *high_watermark;
            data.records = Some(encode_entries(*from_offset, entries));
        }
        FetchBody::Snapshot { snapshot } => {
            data.snapshot_id = fetch_response::SnapshotId::default()
                .with_end_offset(snapshot.end_offset)
                .with_epoch(snapshot.epoch);
        }
    }
    FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(topic())
        .with_partitions(vec![data])])
}

/// The core's message for a KRaft response; `None` for acknowledgements and malformed ones.
pub fn from_response(response: &ResponseKind) -> Option<Message> {
    match response {
        ResponseKind::Vote(r) => {
            let p = r.topics.first()?.partitions.first()?;
            Some(Message::VoteResponse {
                epoch: p.leader_epoch,
                granted: p.vote_granted && p.error_code == 0,
                leader: Some(p.leader_id.0).filter(|&l| l >= 0),
            })
        }
        ResponseKind::Fetch(r) => {
            let p = r.responses.first()?.partitions.first()?;
            let epoch = p.current_leader.leader_epoch;
            let leader = Some(p.current_leader.leader_id.0).filter(|&l| l >= 0);
            let body = if p.error_code == ResponseError::FencedLeaderEpoch.code() {
                FetchBody::Fenced
            } else if p.error_code != 0 {
                return None;
            } else if p.snapshot_id.epoch >= 0 && p.snapshot_id.end_offset >= 0 {
                FetchBody::Snapshot {
                    snapshot: SnapshotId {
                        end_offset: p.snapshot_id.end_offset,
                        epoch: p.snapshot_id.epoch,
                    },
                }
            } else if p.diverging_epoch.epoch >= 0 && p.diverging_epoch.end_offset >= 0 {
                FetchBody::Diverging {
                    epoch: p.diverging_epoch.epoch,
                    end_offset: p.diverging_epoch.end_offset,
                }
            } else {
                let (from_offset, entries) = decode_entries(p.records.as_deref().unwrap_or(&[]))?;
                FetchBody::Records {
                    from_offset,
                    entries,
                    high_watermark: p.high_watermark,
                }
            };
            Some(Message::FetchResponse {
                epoch,
                leader,
                body,
            })
        }
        ResponseKind::FetchSnapshot(r) => {
            let p = r.topics.first()?.partitions.first()?;
            let epoch = p.current_leader.leader_epoch;
            let leader = Some(p.current_leader.leader_id.0).filter(|&l| l >= 0);
            let body = if p.error_code == ResponseError::FencedLeaderEpoch.code() {
                SnapshotBody::Fenced
            } else if p.error_code == ResponseError::SnapshotNotFound.code() {
                SnapshotBody::NotFound
            } else if p.error_code != 0 || r.error_code != 0 {
                return None;
            } else {
                SnapshotBody::Chunk {
                    snapshot: SnapshotId {
                        end_offset: p.snapshot_id.end_offset,
                        epoch: p.snapshot_id.epoch,
                    },
                    size: p.size,
                    position: p.position,
                    bytes: p.unaligned_records.clone(),
                }
            };
            Some(Message::FetchSnapshotResponse {
                epoch,
                leader,
                body,
            })
        }
        _ => None,
    }
}

/// Entries as record batches: one batch per entry, offset and leader epoch as in the log.
pub fn encode_entries(from_offset: i64, entries: &[Entry]) -> Bytes {
    let mut out = BytesMut::new();
    for (i, entry) in entries.iter().enumerate() {
        let spec = BatchSpec {
            base_offset: from_offset + i as i64,
            partition_leader_epoch: entry.epoch,
            ..BatchSpec::default()
        };
        let record = Record {
            offset_delta: 0,
            timestamp_delta: 0,
            key: None,
            value: Some(entry.data.clone()),
            headers: Vec::new(),
        };
        out.extend_from_slice(&batch::encode_batch(&spec, &[record]));
    }
    out.freeze()
}

/// The entries of fetched batches and the offset of the first; `None` if any batch is corrupt
/// or they are not contiguous (a response that cannot be trusted is dropped).
pub fn decode_entries(bytes: &[u8]) -> Option<(i64, Vec<Entry>)> {
    let mut entries = Vec::new();
    let mut first = None;
    let mut rest = bytes;
    while !rest.is_empty() {
        let header = batch::validate(rest).ok()?;
        let size = header.size_in_bytes();
        let (_, records) = batch::decode_records(&rest[..size]).ok()?;
        for record in records {
            let expected = first.unwrap_or(record.offset) + entries.len() as i64;
            if record.offset != expected {
                return None;
            }
            first.get_or_insert(record.offset);
            entries.push(Entry {
                epoch: header.partition_leader_epoch,
                data: record.value.unwrap_or_default(),
            });
        }
        rest = &rest[size..];
    }
    Some((first.unwrap_or(0), entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{decode_response, encode_response};
    use crate::protocol::encode_request;
    use kafka_protocol::messages::RequestHeader;
    use kafka_protocol::protocol::Decodable;

    fn round_trip_request(from: NodeId, message: Message) {
        let (api, version, request) = to_request(from, &message).expect("a request");
        let mut frame = encode_request(api, version, 1, "controller", &request).unwrap();
        RequestHeader::decode(&mut frame, api.request_header_version(version)).unwrap();
        let decoded = RequestKind::decode(api, &mut frame, version).unwrap();
        assert_eq!(from_request(&decoded), Some((from, message)));
    }

    fn round_trip_response(api: ApiKey, version: i16, message: Message) {
        let response = to_response(api, Some(&message));
        let frame = encode_response(api, version, 9, &response).unwrap();
        let decoded = decode_response(api, version, frame).unwrap();
        assert_eq!(from_response(&decoded), Some(message));
    }

    #[test]
    fn every_request_survives_the_wire() {
        let last = LogPosition {
            last_epoch: 3,
            end_offset: 17,
        };
        round_trip_request(2, Message::VoteRequest { epoch: 4, last });
        round_trip_request(1, Message::BeginQuorumEpoch { epoch: 4 });
        round_trip_request(
            1,
            Message::EndQuorumEpoch {
                epoch: 4,
                successors: vec![3, 2],
            },
        );
        round_trip_request(
            3,
            Message::FetchRequest {
                epoch: 4,
                fetch_offset: 17,
                last_fetched_epoch: 3,
            },
        );
        round_trip_request(
            3,
            Message::FetchSnapshotRequest {
                epoch: 4,
                snapshot: SnapshotId {
                    end_offset: 17,
                    epoch: 3,
                },
                position: 4096,
            },
        );
    }

    #[test]
    fn snapshot_ids_and_chunks_survive_the_wire() {
        let snapshot = SnapshotId {
            end_offset: 900,
            epoch: 2,
        };
        let message = Message::FetchResponse {
            epoch: 3,
            leader: Some(1),
            body: FetchBody::Snapshot { snapshot },
        };
        round_trip_response(ApiKey::Fetch, FETCH_VERSION, message);
        for body in [
            SnapshotBody::Chunk {
                snapshot,
                size: 10_000,
                position: 4096,
                bytes: Bytes::from_static(b"some bytes"),
            },
            SnapshotBody::NotFound,
            SnapshotBody::Fenced,
        ] {
            let message = Message::FetchSnapshotResponse {
                epoch: 3,
                leader: Some(1),
                body,
            };
            round_trip_response(ApiKey::FetchSnapshot, FETCH_SNAPSHOT_VERSION, message);
        }
    }

    #[test]
    fn every_response_survives_the_wire() {
        for leader in [None, Some(2)] {
            let message = Message::VoteResponse {
                epoch: 5,
                granted: leader.is_none(),
                leader,
            };
            round_trip_response(ApiKey::Vote, VOTE_VERSION, message);
        }
        let entries = vec![
            Entry {
                epoch: 2,
                data: Bytes::from_static(b"a"),
            },
            Entry {
                epoch: 3,
                data: Bytes::from_static(b"bc"),
            },
        ];
        let records = FetchBody::Records {
            from_offset: 7,
            entries,
            high_watermark: 8,
        };
        for body in [
            records,
            FetchBody::Diverging {
                epoch: 2,
                end_offset: 6,
            },
            FetchBody::Fenced,
        ] {
            let message = Message::FetchResponse {
                epoch: 3,
                leader: Some(1),
                body,
            };
            round_trip_response(ApiKey::Fetch, FETCH_VERSION, message);
        }
    }

    #[test]
    fn corrupt_or_gapped_batches_are_refused() {
        let entries = vec![
            Entry {
                epoch: 1,
                data: Bytes::from_static(b"x")
            };
            3
        ];
        let mut bytes = encode_entries(0, &entries).to_vec();
        assert_eq!(decode_entries(&bytes).unwrap().1.len(), 3);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(decode_entries(&bytes), None);
        let mut gapped = encode_entries(0, &entries[..1]).to_vec();
        gapped.extend_from_slice(&encode_entries(5, &entries[..1]));
        assert_eq!(decode_entries(&gapped), None);
    }
}
