//! Fault points inside the cluster, in the style of FoundationDB's BUGGIFY: places in the
//! brokers' own code where, in a simulated run that asks for it (`buggify = true`), something
//! that real machines and networks sometimes do happens on purpose, so that the code around it
//! is exercised on every seed instead of once a year in production.
//!
//! Each point is switched on or off for the whole run, at random from the run's seed (so rare
//! combinations get their turn across seeds, as in swarm testing); a point that is on fires at
//! a few evaluations, drawn from the node's own stream. Every firing is a trace event, so a
//! report says what was done to the run. A real deployment has no fault points: `off()`.
//!
//! See <https://transactional.blog/simulation/buggify> for the technique.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::{derive_seed, SharedRecorder};

/// The fault points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Point {
    /// An fsync that takes far longer than the device's usual latency (a busy device, a
    /// journal commit behind other writers).
    SlowFsync,
    /// A request handler that stalls before it starts (a long GC pause, a saturated request
    /// thread pool): everything behind it on its connection waits too.
    SlowHandler,
    /// A partition's produce answered with a retriable error (`NOT_LEADER_OR_FOLLOWER`) without
    /// being appended, as during a leadership change the broker has not heard of yet.
    RetriableError,
    /// The connection drops halfway through writing a response: the client reads half a frame,
    /// then nothing, and must treat the request's outcome as unknown.
    DroppedResponse,
}

impl Point {
    pub const ALL: [Point; 4] = [
        Point::SlowFsync,
        Point::SlowHandler,
        Point::RetriableError,
        Point::DroppedResponse,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Point::SlowFsync => "slow-fsync",
            Point::SlowHandler => "slow-handler",
            Point::RetriableError => "retriable-error",
            Point::DroppedResponse => "dropped-response",
        }
    }

    /// The chance that an evaluation of an active point fires. The points sit on frequent
    /// paths (every request, every fsync), so their rates are low.
    fn rate(self) -> f64 {
        match self {
            Point::SlowFsync => 0.05,
            Point::SlowHandler => 0.01,
            Point::RetriableError => 0.01,
            Point::DroppedResponse => 0.002,
        }
    }
}

/// Which points are on in a run: each with probability one half, from the run's seed.
pub fn active_points(run_seed: u64) -> BTreeSet<Point> {
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(run_seed, "buggify"));
    Point::ALL
        .into_iter()
        .filter(|_| rng.gen_bool(0.5))
        .collect()
}

struct Inner {
    node: String,
    active: BTreeSet<Point>,
    rng: ChaCha8Rng,
    recorder: SharedRecorder,
}

/// One node's fault points (cheap to clone; every clone draws from the same stream).
#[derive(Clone, Default)]
pub struct Buggify(Option<Arc<Mutex<Inner>>>);

impl std::fmt::Debug for Buggify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Buggify")
    }
}

impl Buggify {
    /// No fault points (a real deployment, or a run without `buggify = true`).
    pub fn off() -> Self {
        Buggify(None)
    }

    /// `node`'s fault points in a run with `buggify = true`: the run's active points, fired
    /// from the node's own stream, each firing recorded.
    pub fn for_node(run_seed: u64, node: &str, recorder: SharedRecorder) -> Self {
        let active = active_points(run_seed);
        if active.is_empty() {
            return Buggify::off();
        }
        let rng = ChaCha8Rng::seed_from_u64(derive_seed(run_seed, &format!("buggify/{node}")));
        Buggify(Some(Arc::new(Mutex::new(Inner {
            node: node.to_string(),
            active,
            rng,
            recorder,
        }))))
    }

    /// Whether `point` fires now; if it does, a duration in `lo_ms..=hi_ms` drawn with it (for
    /// the points that delay), and the firing recorded.
    pub fn fires(&self, point: Point, lo_ms: u64, hi_ms: u64) -> Option<u64> {
        let inner = self.0.as_ref()?;
        let mut inner = inner.lock().expect("buggify lock");
        if !inner.active.contains(&point) || !inner.rng.gen_bool(point.rate()) {
            return None;
        }
        let ms = inner.rng.gen_range(lo_ms..=hi_ms.max(lo_ms));
        inner.recorder.event(
            &inner.node,
            "buggify",
            json!({ "point": point.name(), "ms": ms }),
        );
        Some(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::NullRecorder;

    #[test]
    fn a_seed_switches_points_on_and_off_and_every_point_gets_its_turn() {
        let mut seen_on = BTreeSet::new();
        let mut seen_off = BTreeSet::new();
        for seed in 1..=64 {
            let active = active_points(seed);
            assert_eq!(
                active,
                active_points(seed),
                "seed {seed} is not deterministic"
            );
            for point in Point::ALL {
                if active.contains(&point) {
                    seen_on.insert(point);
                } else {
                    seen_off.insert(point);
                }
            }
        }
        assert_eq!(seen_on.len(), 4);
        assert_eq!(seen_off.len(), 4);
    }

    #[test]
    fn an_active_point_fires_at_about_its_rate_and_an_inactive_one_never() {
        let seed = (1..)
            .find(|&s| active_points(s).contains(&Point::SlowFsync))
            .unwrap();
        let b = Buggify::for_node(seed, "broker-1", Arc::new(NullRecorder));
        let fired = (0..10_000)
            .filter(|_| b.fires(Point::SlowFsync, 10, 20).is_some())
            .count();
        assert!((300..=700).contains(&fired), "{fired} of 10000 at 5%");
        assert!(b
            .fires(Point::SlowFsync, 10, 20)
            .is_none_or(|ms| (10..=20).contains(&ms)));
        let off = (1..)
            .find(|&s| !active_points(s).contains(&Point::SlowHandler))
            .unwrap();
        let b = Buggify::for_node(off, "broker-1", Arc::new(NullRecorder));
        assert!((0..10_000).all(|_| b.fires(Point::SlowHandler, 1, 2).is_none()));
        assert!(Buggify::off().fires(Point::SlowFsync, 1, 2).is_none());
    }
}
