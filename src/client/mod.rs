//! Samsa's own Kafka clients, speaking the wire protocol to the brokers and recording what they
//! saw as a Jepsen-style history.

pub mod assignor;
pub mod cluster;
pub mod consumer;
pub mod group_admin;
pub mod group_consumer;
pub mod partitioner;
pub mod producer;
pub mod serde;
pub mod transactional;

use std::net::SocketAddr;

use crate::world::{Clock, SharedRecorder};

/// What every client gets from the world.
#[derive(Clone)]
pub struct ClientContext {
    /// The client's id (`p1`), used as the history's process and Kafka's `client.id`.
    pub id: String,
    pub bootstrap: Vec<SocketAddr>,
    pub clock: Clock,
    pub recorder: SharedRecorder,
    /// Seed of the client's own random stream (keys, jitter).
    pub seed: u64,
    /// Requests held on their way out (the `delay` fault); empty outside one.
    pub delays: crate::protocol::RequestDelays,
}

/// Kafka's `retry.backoff.ms` default.
pub const RETRY_BACKOFF_MS: u64 = 100;

/// Sleeps until `at_ms` on the run's time line (no-op if already past).
pub async fn sleep_until_ms(clock: &Clock, at_ms: u64) {
    let now = clock.elapsed_ms();
    if at_ms > now {
        tokio::time::sleep(std::time::Duration::from_millis(at_ms - now)).await;
    }
}
