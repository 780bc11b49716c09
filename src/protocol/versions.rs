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
];

/// The version our own clients use for each API: the newest we serve.
pub fn client_version(api: ApiKey) -> i16 {
    SUPPORTED
        .iter()
        .find(|(key, _, _)| *key == api)
        .map(|(_, _, max)| *max)
        .unwrap_or(0)
}

pub fn is_supported(api: ApiKey, version: i16) -> bool {
    SUPPORTED
        .iter()
        .any(|(key, min, max)| *key == api && (*min..=*max).contains(&version))
}
