//! Kafka's wire protocol: size-prefixed frames carrying a request header and a request (or a
//! response header and a response), encoded with the `kafka-protocol` crate.
//! See <https://kafka.apache.org/protocol.html>.

pub mod codec;
pub mod connection;
pub mod controller_channel;
pub mod delays;
pub mod frame;
pub mod versions;

pub use codec::{decode_request, decode_response, encode_request, encode_response, ProtocolError};
pub use connection::{ClientError, Connection};
pub use delays::RequestDelays;
