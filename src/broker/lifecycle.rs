//! The broker's lifecycle with the active controller (KIP-631's `BrokerLifecycleManager`):
//! register with a fresh incarnation id, then heartbeat every `broker.heartbeat.interval.ms`
//! with how far the metadata log has been replayed. The controller registers the broker fenced
//! and unfences it once its heartbeat shows it has replayed its own registration; it fences it
//! again when heartbeats stop for `broker.session.timeout.ms`. A heartbeat refused for a stale
//! epoch (the controller holds a newer registration) or an unknown broker registers again.
//!
//! Trace events (node `broker-<id>`): `registered` `{epoch}`, `fenced` / `unfenced` (as the
//! heartbeat answers report the broker's state changing).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::broker_registration_request::Listener;
use kafka_protocol::messages::{
    BrokerHeartbeatRequest, BrokerId, BrokerRegistrationRequest, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tokio::sync::Notify;

use super::Broker;
use crate::controller::Uuid;
use crate::world::derive_seed;

/// Kafka's error codes the lifecycle acts on.
const NOT_CONTROLLER: i16 = 41;
const STALE_BROKER_EPOCH: i16 = 77;
const BROKER_ID_NOT_REGISTERED: i16 = 102;
/// Between two attempts that failed (Kafka's lifecycle manager backs off from 100 ms).
const RETRY_BACKOFF_MS: u64 = 100;
/// The cluster id every node of a run shares.
pub const CLUSTER_ID: &str = "samsa";

/// What the broker knows of its own registration.
pub(super) struct Lifecycle {
    /// The epoch of the current registration; -1 before the first one.
    broker_epoch: AtomicI64,
    fenced: Mutex<bool>,
    /// The last metadata offset the broker has replayed (inclusive); -1 for none.
    metadata_offset: AtomicI64,
    /// Woken when the replayed offset moves, so a fenced broker reports catching up at once.
    progress: Notify,
}

impl Lifecycle {
    pub(super) fn new() -> Self {
        Lifecycle {
            broker_epoch: AtomicI64::new(-1),
            fenced: Mutex::new(true),
            metadata_offset: AtomicI64::new(-1),
            progress: Notify::new(),
        }
    }

    /// The broker's current epoch, once registered (`AlterPartition` quotes it).
    pub(super) fn broker_epoch(&self) -> Option<i64> {
        let epoch = self.broker_epoch.load(Ordering::Relaxed);
        (epoch >= 0).then_some(epoch)
    }

    /// The metadata loader has replayed through `offset`.
    pub(super) fn replayed(&self, offset: i64) {
        self.metadata_offset.store(offset, Ordering::Relaxed);
        self.progress.notify_one();
    }
}

/// Registers and heartbeats until a controlled shutdown is granted; returning means the broker
/// may stop.
pub(super) async fn run(broker: Arc<Broker>) {
    let ctx = &broker.ctx;
    let start_ms = ctx.clock.elapsed_ms();
    // A fresh incarnation per process start, as Kafka draws one at startup.
    let mut rng =
        ChaCha8Rng::seed_from_u64(derive_seed(ctx.seed, &format!("incarnation/{start_ms}")));
    let incarnation = Uuid::random(&mut rng);
    let log_dir = Uuid::random(&mut rng);
    loop {
        let epoch = register(&broker, incarnation, log_dir).await;
        broker
            .lifecycle
            .broker_epoch
            .store(epoch, Ordering::Relaxed);
        broker.event("registered", json!({ "broker": ctx.id, "epoch": epoch }));
        if heartbeat(&broker, epoch).await == Heartbeats::ShutDown {
            return;
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Heartbeats {
    /// The controller no longer knows this registration: register again.
    Stale,
    /// The controller granted the controlled shutdown.
    ShutDown,
}

/// Registers until a controller accepts; the broker epoch it was given.
async fn register(broker: &Broker, incarnation: Uuid, log_dir: Uuid) -> i64 {
    let ctx = &broker.ctx;
    let listener = Listener::default()
        .with_name(StrBytes::from_static_str("PLAINTEXT"))
        .with_host(StrBytes::from_string(ctx.listen.ip().to_string()))
        .with_port(ctx.listen.port())
        .with_security_protocol(0);
    let request = BrokerRegistrationRequest::default()
        .with_broker_id(BrokerId(ctx.id))
        .with_cluster_id(StrBytes::from_static_str(CLUSTER_ID))
        .with_incarnation_id(incarnation.into())
        .with_listeners(vec![listener])
        .with_log_dirs(vec![log_dir.into()])
        .with_previous_broker_epoch(broker.lifecycle.broker_epoch.load(Ordering::Relaxed));
    loop {
        let sent = broker
            .controllers
            .send(RequestKind::BrokerRegistration(request.clone()))
            .await;
        if let Ok(ResponseKind::BrokerRegistration(response)) = sent {
            if response.error_code == 0 {
                return response.broker_epoch;
            }
            if response.error_code == NOT_CONTROLLER {
                broker.controllers.rotate();
            }
        }
        sleep_ms(RETRY_BACKOFF_MS).await;
    }
}

/// Heartbeats every interval (and at once when a fenced broker's replay moves, or a shutdown
/// is asked for) until the controller no longer knows this registration or lets the broker
/// shut down. A broker asked to shut down says so in each heartbeat (`want_shut_down`): the
/// controller moves its leaderships away and answers `should_shut_down` once it leads nothing.
async fn heartbeat(broker: &Broker, epoch: i64) -> Heartbeats {
    let ctx = &broker.ctx;
    let lifecycle = &broker.lifecycle;
    loop {
        let offset = lifecycle.metadata_offset.load(Ordering::Relaxed);
        let shutting_down = ctx.shutdown.is_requested();
        let request = BrokerHeartbeatRequest::default()
            .with_broker_id(BrokerId(ctx.id))
            .with_broker_epoch(epoch)
            .with_current_metadata_offset(offset)
            .with_want_shut_down(shutting_down);
        let sent = broker
            .controllers
            .send(RequestKind::BrokerHeartbeat(request))
            .await;
        let mut wait_ms = ctx.heartbeat_interval_ms;
        match sent {
            Ok(ResponseKind::BrokerHeartbeat(response)) => match response.error_code {
                0 if shutting_down && response.should_shut_down => return Heartbeats::ShutDown,
                0 => note_fencing(broker, response.is_fenced),
                STALE_BROKER_EPOCH | BROKER_ID_NOT_REGISTERED => return Heartbeats::Stale,
                NOT_CONTROLLER => {
                    broker.controllers.rotate();
                    wait_ms = RETRY_BACKOFF_MS;
                }
                _ => wait_ms = RETRY_BACKOFF_MS,
            },
            _ => wait_ms = RETRY_BACKOFF_MS,
        }
        let fenced = *lifecycle.fenced.lock().expect("fenced lock");
        if fenced {
            // Report catching up as soon as the replay moves, not a whole interval later.
            let _ = tokio::time::timeout(
                Duration::from_millis(wait_ms),
                lifecycle.progress.notified(),
            )
            .await;
        } else {
            sleep_ms(wait_ms).await;
        }
    }
}

fn note_fencing(broker: &Broker, fenced: bool) {
    let mut current = broker.lifecycle.fenced.lock().expect("fenced lock");
    if *current != fenced {
        *current = fenced;
        let kind = if fenced { "fenced" } else { "unfenced" };
        broker.event(kind, json!({ "broker": broker.ctx.id }));
    }
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
