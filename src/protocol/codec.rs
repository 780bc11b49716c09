//! Request and response encoding. Every decode error is a `ProtocolError`, never a panic: a
//! malformed frame closes the connection that sent it.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtocolError {}

fn err(what: &str, e: impl std::fmt::Display) -> ProtocolError {
    ProtocolError(format!("{what}: {e}"))
}

pub fn encode_request(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    request: &RequestKind,
) -> Result<Bytes, ProtocolError> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, api.request_header_version(version))
        .map_err(|e| err("encoding a request header", e))?;
    request
        .encode(&mut buf, version)
        .map_err(|e| err("encoding a request", e))?;
    Ok(buf.freeze())
}

/// Decodes a request frame against the broker's APIs (`versions::SUPPORTED`).
pub fn decode_request(frame: Bytes) -> Result<(RequestHeader, RequestKind), ProtocolError> {
    decode_request_with(frame, super::versions::SUPPORTED)
}

/// Decodes a request frame against a table of (api, min, max) versions: a listener's own
/// (`versions::CONTROLLER_SUPPORTED` for a controller). An API or version outside it is an error.
pub fn decode_request_with(
    mut frame: Bytes,
    supported: &[(ApiKey, i16, i16)],
) -> Result<(RequestHeader, RequestKind), ProtocolError> {
    if frame.len() < 4 {
        return Err(ProtocolError(format!(
            "request frame of {} bytes is shorter than a request header",
            frame.len()
        )));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(key).map_err(|_| ProtocolError(format!("unknown API key {key}")))?;
    if !super::versions::is_supported_in(supported, api, version) {
        return Err(ProtocolError(format!(
            "{api:?} version {version} is not supported"
        )));
    }
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .map_err(|e| err("decoding a request header", e))?;
    let request = RequestKind::decode(api, &mut frame, version)
        .map_err(|e| err(&format!("decoding {api:?}"), e))?;
    Ok((header, request))
}

pub fn encode_response(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<Bytes, ProtocolError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, api.response_header_version(version))
        .map_err(|e| err("encoding a response header", e))?;
    response
        .encode(&mut buf, version)
        .map_err(|e| err("encoding a response", e))?;
    Ok(buf.freeze())
}

/// The correlation id of a response frame, read before knowing which request it answers.
pub fn response_correlation_id(frame: &[u8]) -> Result<i32, ProtocolError> {
    if frame.len() < 4 {
        return Err(ProtocolError(
            "response frame shorter than its header".into(),
        ));
    }
    Ok(i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]))
}

pub fn decode_response(
    api: ApiKey,
    version: i16,
    mut frame: Bytes,
) -> Result<ResponseKind, ProtocolError> {
    ResponseHeader::decode(&mut frame, api.response_header_version(version))
        .map_err(|e| err("decoding a response header", e))?;
    ResponseKind::decode(api, &mut frame, version)
        .map_err(|e| err(&format!("decoding {api:?} response"), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::MetadataRequest;

    #[test]
    fn request_round_trip() {
        let req = RequestKind::Metadata(MetadataRequest::default());
        let frame = encode_request(ApiKey::Metadata, 12, 7, "c1", &req).unwrap();
        let (header, decoded) = decode_request(frame).unwrap();
        assert_eq!(header.correlation_id, 7);
        assert_eq!(header.request_api_key, ApiKey::Metadata as i16);
        assert!(matches!(decoded, RequestKind::Metadata(_)));
    }

    #[test]
    fn a_listener_decodes_only_its_own_apis() {
        use crate::protocol::versions::CONTROLLER_SUPPORTED;
        use kafka_protocol::messages::VoteRequest;
        let vote = RequestKind::Vote(VoteRequest::default());
        let frame = encode_request(ApiKey::Vote, 0, 3, "controller-1", &vote).unwrap();
        assert!(
            decode_request(frame.clone()).is_err(),
            "brokers do not serve Vote"
        );
        let (header, decoded) = decode_request_with(frame, CONTROLLER_SUPPORTED).unwrap();
        assert_eq!(header.correlation_id, 3);
        assert!(matches!(decoded, RequestKind::Vote(_)));
        let metadata = RequestKind::Metadata(MetadataRequest::default());
        let frame = encode_request(ApiKey::Metadata, 12, 4, "c1", &metadata).unwrap();
        assert!(decode_request_with(frame, CONTROLLER_SUPPORTED).is_err());
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        let req = RequestKind::Metadata(MetadataRequest::default());
        let frame = encode_request(ApiKey::Metadata, 12, 7, "c1", &req).unwrap();
        for cut in 0..frame.len() {
            let _ = decode_request(frame.slice(..cut));
        }
        assert!(decode_request(Bytes::from_static(&[0x7f, 0x7f, 0, 1, 0, 0, 0, 0])).is_err());
        assert!(decode_request(Bytes::from_static(&[0, 3, 0x7f, 0x7f, 0, 0, 0, 0])).is_err());
        let mut rng_bytes = frame.to_vec();
        for i in 4..rng_bytes.len() {
            rng_bytes[i] ^= 0xa5;
            let _ = decode_request(Bytes::from(rng_bytes.clone()));
        }
    }
}
