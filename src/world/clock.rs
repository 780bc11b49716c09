//! The cluster's clock. Under madsim, `tokio::time` is simulated time; a node's clock may be
//! skewed (the `clock-skew` fault) without touching the simulator's own notion of time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Milliseconds since the Unix epoch at which every simulated run starts (2026-01-01T00:00:00Z),
/// so record timestamps look like Kafka's.
pub const SIM_EPOCH_MS: u64 = 1_767_225_600_000;

#[derive(Clone, Debug)]
pub struct Clock {
    origin: tokio::time::Instant,
    base_ms: u64,
    skew_ms: Arc<AtomicI64>,
}

impl Clock {
    /// A clock that reads `base_ms` now. Must be called inside the runtime.
    pub fn starting_at(base_ms: u64) -> Self {
        Clock {
            origin: tokio::time::Instant::now(),
            base_ms,
            skew_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// The same origin with its own skew: one per node.
    pub fn for_node(&self) -> Self {
        Clock {
            origin: self.origin,
            base_ms: self.base_ms,
            skew_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Milliseconds since the origin, unskewed: the run's time line (`at_ms` in histories).
    pub fn elapsed_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// Wall-clock milliseconds as this node believes them (skew included).
    pub fn now_ms(&self) -> i64 {
        (self.base_ms + self.elapsed_ms()) as i64 + self.skew_ms.load(Ordering::Relaxed)
    }

    pub fn set_skew_ms(&self, skew_ms: i64) {
        self.skew_ms.store(skew_ms, Ordering::Relaxed);
    }
}
