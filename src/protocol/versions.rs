//! The API versions this broker serves and its clients speak. Versions that address topics by
//! id (KIP-516: Produce 13, Fetch 13+) are not served yet; names are.

use kafka_protocol::messages::ApiKey;

/// (api, min, max) the broker advertises in `ApiVersions`.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    // The group coordinator (the classic protocol; OffsetCommit 9 and OffsetFetch 9 carry
    // KIP-848's member epochs, FindCoordinator 5+ transactions' and share groups' errors).
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    // Idempotence and transactions (KIP-98; InitProducerId 3+ lets a producer bump its epoch,
    // KIP-360).
    (ApiKey::InitProducerId, 0, 5),
    // Transactions (KIP-98): the coordinator's APIs (AddPartitionsToTxn 4+ batches
    // transactions for brokers, KIP-890; EndTxn 5 answers the epoch of transaction version 2),
    // and the markers coordinators write through partition leaders.
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::WriteTxnMarkers, 0, 1),
    (ApiKey::TxnOffsetCommit, 0, 4),
];

/// (api, min, max) a KRaft controller serves on its listener (`controller.listener.names`): the
/// quorum's own APIs (KIP-595: `Vote`, `BeginQuorumEpoch`, `EndQuorumEpoch`, and `Fetch` of
/// `__cluster_metadata`, by voters and by brokers as observers), the brokers' lifecycle
/// (KIP-631: `BrokerRegistration`, `BrokerHeartbeat`), ISR changes (`AlterPartition`), the
/// admin requests brokers forward (KIP-590), and `ApiVersions`.
pub const CONTROLLER_SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Vote, 0, 2),
    (ApiKey::BeginQuorumEpoch, 0, 1),
    (ApiKey::EndQuorumEpoch, 0, 1),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::FetchSnapshot, 0, 1),
    (ApiKey::BrokerRegistration, 0, 4),
    (ApiKey::BrokerHeartbeat, 0, 1),
    (ApiKey::AlterPartition, 2, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::AllocateProducerIds, 0, 0),
    (ApiKey::ApiVersions, 0, 3),
];

/// The version a client of the controller listener uses for `api`: the newest it serves.
pub fn controller_version(api: ApiKey) -> i16 {
    CONTROLLER_SUPPORTED
        .iter()
        .find(|(key, _, _)| *key == api)
        .map(|(_, _, max)| *max)
        .unwrap_or(0)
}

/// The version our own clients use for each API: the newest we serve.
pub fn client_version(api: ApiKey) -> i16 {
    SUPPORTED
        .iter()
        .find(|(key, _, _)| *key == api)
        .map(|(_, _, max)| *max)
        .unwrap_or(0)
}

pub fn is_supported(api: ApiKey, version: i16) -> bool {
    is_supported_in(SUPPORTED, api, version)
}

/// Whether `table` (`SUPPORTED`, `CONTROLLER_SUPPORTED`) lists `version` of `api`.
pub fn is_supported_in(table: &[(ApiKey, i16, i16)], api: ApiKey, version: i16) -> bool {
    table
        .iter()
        .any(|(key, min, max)| *key == api && (*min..=*max).contains(&version))
}

/// The `ApiVersions` answer of a listener serving `table`.
pub fn api_versions_response(
    table: &[(ApiKey, i16, i16)],
) -> kafka_protocol::messages::ApiVersionsResponse {
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    kafka_protocol::messages::ApiVersionsResponse::default().with_api_keys(
        table
            .iter()
            .map(|&(api, min, max)| {
                ApiVersion::default()
                    .with_api_key(api as i16)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect(),
    )
}
