//! The proptest strategies that draw a case, and the runner that shrinks a failing one.
//!
//! A case is a swarm (Groce et al., "Swarm Testing", ISSTA 2012: a random non-empty subset of the
//! enabled fault kinds, a weight for each, a cap on how many faults, and their time scales) and
//! the faults drawn from it. The swarm is drawn with `prop_ind_flat_map2`, so shrinking never re-draws it: it
//! shrinks the faults only, and their strategies shrink toward fewer faults (a `vec`), earlier
//! times, shorter `for`s, the first targets of their lists and milder rates (integer ranges).
//!
//! Case K of master seed M draws from its own ChaCha stream, seeded with M and K: it is the same
//! case whatever ran before or beside it, and the runner that shrinks it, seeded alike, starts
//! from the very same draw.

use std::cell::RefCell;

use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::strategy::Union;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use super::fault::{Fault, What};
use super::space::{Kind, Space, MAX_FAULTS, MAX_FOR_MS, STEP_MS};
use crate::scenario::Target;

/// The swarm of one case: which kinds it draws from, with what weight, at most how many, and
/// its time scales: the faults fire within a burst (`start_ms`, `span_ms`) and last at most
/// `max_for_ms`. Faults that interact (a follower restarting just before the leader dies) are
/// close in time: a burst of a few seconds brings them together far more often than the whole
/// window would, and another case's burst is the whole window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swarm {
    pub kinds: Vec<(Kind, u32)>,
    pub max_faults: usize,
    pub start_ms: u64,
    pub span_ms: u64,
    pub max_for_ms: u64,
    /// The cluster's fault points are on in this case (`buggify = true`).
    pub buggify: bool,
}

/// The share of swarms with the cluster's fault points on: enough that their combinations with
/// every fault kind get their turn, few enough that most cases show the faults alone.
const BUGGIFY_SHARE: f64 = 0.25;

/// The bursts' lengths and the longest `for`s a swarm picks from (each at most the window).
const SPANS_MS: [u64; 4] = [2_000, 5_000, 10_000, u64::MAX];
const MAX_FORS_MS: [u64; 4] = [1_000, 3_000, 10_000, MAX_FOR_MS];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub swarm: Swarm,
    pub faults: Vec<Fault>,
}

/// The stream case `case` of master seed `master` draws from.
pub fn case_rng(master: u64, case: u64) -> TestRng {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&master.to_le_bytes());
    seed[8..16].copy_from_slice(&case.to_le_bytes());
    seed[16..].copy_from_slice(b"samsa-explore-v1");
    TestRng::from_seed(RngAlgorithm::ChaCha, &seed)
}

/// A runner of one case: no persistence files, no forking, the shrink cap given.
fn case_runner(master: u64, case: u64, max_shrink_iters: u32) -> TestRunner {
    let config = Config {
        cases: 1,
        max_shrink_iters,
        max_shrink_time: 0,
        failure_persistence: None,
        fork: false,
        timeout: 0,
        verbose: 0,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, case_rng(master, case))
}

pub fn case_strategy(space: &Space) -> impl Strategy<Value = (Swarm, Vec<Fault>)> {
    let space = space.clone();
    swarm_strategy(&space).prop_ind_flat_map2(move |swarm| faults_strategy(&space, &swarm))
}

fn swarm_strategy(space: &Space) -> impl Strategy<Value = Swarm> {
    let n = space.kinds.len();
    let window_ms = space.window_ms;
    let steps = move |ms: u64| ms.min(window_ms) / STEP_MS;
    let spans: Vec<u64> = SPANS_MS.iter().map(|&ms| steps(ms)).collect();
    let fors: Vec<u64> = MAX_FORS_MS.iter().map(|&ms| steps(ms).max(1)).collect();
    (
        subsequence(space.kinds.clone(), 1..=n),
        prop::collection::vec(1u32..=4, n),
        1..=MAX_FAULTS,
        select(spans),
        0.0..1.0,
        select(fors),
        prop::bool::weighted(if space.buggify { BUGGIFY_SHARE } else { 0.0 }),
    )
        .prop_map(
            move |(kinds, weights, max_faults, span, start, max_for, buggify)| {
                let start_steps = ((steps(window_ms) - span) as f64 * start) as u64;
                Swarm {
                    kinds: kinds.into_iter().zip(weights).collect(),
                    max_faults,
                    start_ms: start_steps * STEP_MS,
                    span_ms: span * STEP_MS,
                    max_for_ms: max_for * STEP_MS,
                    buggify,
                }
            },
        )
}

fn faults_strategy(space: &Space, swarm: &Swarm) -> BoxedStrategy<Vec<Fault>> {
    let what = Union::new_weighted(
        swarm
            .kinds
            .iter()
            .map(|&(kind, weight)| (kind.base_weight() * weight, what_strategy(space, kind)))
            .collect(),
    );
    let window_ms = space.window_ms;
    let start_ms = swarm.start_ms;
    let times = (0..swarm.span_ms / STEP_MS, 1..=swarm.max_for_ms / STEP_MS);
    let fault = (times, what).prop_map(move |((at, for_), what)| {
        let at_ms = start_ms + at * STEP_MS;
        // Undone before the window closes: the rest of the run is the cluster's to heal.
        let for_ms = (for_ * STEP_MS).min(window_ms - at_ms);
        let for_ms = (!matches!(what, What::Corrupt(_))).then_some(for_ms);
        Fault {
            at_ms,
            what,
            for_ms,
        }
    });
    prop::collection::vec(fault, 1..=swarm.max_faults).boxed()
}

/// A target among `named` (`broker-2`, …), or one chosen by its role (`leader(T-P)`,
/// `follower(T-P)`), twice as often: where a fault lands matters more than which broker it is.
fn target(space: &Space, named: Vec<Target>) -> BoxedStrategy<Target> {
    let roles = space.role_targets();
    if roles.is_empty() {
        return select(named).boxed();
    }
    Union::new_weighted(vec![(1, select(named).boxed()), (2, select(roles).boxed())]).boxed()
}

fn what_strategy(space: &Space, kind: Kind) -> BoxedStrategy<What> {
    let brokers = target(space, space.brokers());
    let nodes = target(space, space.static_nodes());
    match kind {
        Kind::Crash => nodes.prop_map(What::Crash).boxed(),
        Kind::Kill => nodes.prop_map(What::Kill).boxed(),
        Kind::Pause => target(space, space.processes())
            .prop_map(What::Pause)
            .boxed(),
        Kind::Partition => partition_strategy(space, nodes),
        Kind::Clog => {
            let mut targets = space.static_nodes();
            targets.extend(space.role_targets());
            let n = targets.len();
            // From one target to another: an offset from it, so never the same one.
            (0..n, 1..n)
                .prop_map(move |(i, offset)| What::Clog {
                    from: targets[i].clone(),
                    to: targets[(i + offset) % n].clone(),
                })
                .boxed()
        }
        Kind::Loss => (1u32..=30).prop_map(What::Loss).boxed(),
        Kind::SlowDisk => (brokers, 2u32..=50)
            .prop_map(|(target, factor)| What::SlowDisk { target, factor })
            .boxed(),
        Kind::DiskFull => brokers.prop_map(What::DiskFull).boxed(),
        Kind::Corrupt => brokers.prop_map(What::Corrupt).boxed(),
        Kind::ClockSkew => (target(space, space.processes()), 1i64..=600, any::<bool>())
            .prop_map(|(target, steps, behind)| What::ClockSkew {
                target,
                by_ms: if behind { -steps } else { steps } * STEP_MS as i64,
            })
            .boxed(),
    }
}

/// A target cut off from everyone (`isolate`), or the nodes split in two (`partition`).
fn partition_strategy(space: &Space, nodes: BoxedStrategy<Target>) -> BoxedStrategy<What> {
    let isolate = nodes.prop_map(What::Isolate);
    let named = space.static_nodes();
    if named.len() < 2 {
        return isolate.boxed();
    }
    let all = named.clone();
    let split = subsequence(named.clone(), 1..named.len()).prop_map(move |side| {
        let rest: Vec<Target> = all.iter().filter(|n| !side.contains(n)).cloned().collect();
        What::Partition(vec![side, rest])
    });
    prop_oneof![isolate, split].boxed()
}

/// Case `case` of master seed `master`: the first draw of its runner, as `shrink` will draw it.
pub fn generate(space: &Space, master: u64, case: u64) -> Case {
    let drawn = RefCell::new(None);
    let mut runner = case_runner(master, case, 0);
    let _ = runner.run(&case_strategy(space), |(swarm, faults)| {
        drawn.borrow_mut().get_or_insert(Case { swarm, faults });
        Ok(())
    });
    drawn
        .into_inner()
        .expect("a runner of one case draws one case")
}

/// What shrinking found.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest schedule that still failed the same way.
    pub faults: Vec<Fault>,
    /// Why it failed, as the predicate said.
    pub reason: String,
    /// Schedules tried after the first (each a run, unless the predicate remembers it), at most
    /// the cap.
    pub steps: u32,
    /// The cap stopped shrinking before it ran out of simpler schedules.
    pub capped: bool,
    /// The cluster's fault points are still needed (on in the case, and the schedule passes
    /// without them).
    pub buggify: bool,
}

/// Shrinks case `case` of master seed `master`: `fails` runs a schedule and says why it failed
/// when it failed the same way as the case (`None` otherwise: a schedule that fails differently
/// counts as passing). At most `max_shrink_iters` schedules are tried. An error when the case
/// itself does not fail.
///
/// First proptest's runner shrinks it, from the same draw, with three quarters of the steps:
/// its `vec` tree removes each fault once, then shrinks those left (earlier, shorter, simpler).
/// A fault that was needed only in its first shape is removable after that, so then each fault
/// is tried away again, until none can go or the steps run out. Last, a case with the cluster's
/// fault points on is tried with them off. `fails` takes the schedule and the switch.
pub fn shrink(
    space: &Space,
    master: u64,
    case: u64,
    max_shrink_iters: u32,
    fails_with: impl Fn(&[Fault], bool) -> Option<String>,
) -> Result<Shrunk, String> {
    let buggify = generate(space, master, case).swarm.buggify;
    let fails = |faults: &[Fault]| fails_with(faults, buggify);
    let fails_without_buggify = |faults: &[Fault]| fails_with(faults, false);
    let last_failure: RefCell<Option<(Vec<Fault>, String)>> = RefCell::new(None);
    let tries = RefCell::new(0u32);
    let proptest_iters = max_shrink_iters - max_shrink_iters / 4;
    let mut runner = case_runner(master, case, proptest_iters);
    let result = runner.run(&case_strategy(space), |(_, faults)| {
        *tries.borrow_mut() += 1;
        match fails(&faults) {
            Some(reason) => {
                *last_failure.borrow_mut() = Some((faults, reason.clone()));
                Err(TestCaseError::fail(reason))
            }
            None => Ok(()),
        }
    });
    let mut steps = tries.into_inner().saturating_sub(1);
    let (mut faults, mut reason) = match (result, last_failure.into_inner()) {
        (Err(TestError::Fail(..)), Some(failure)) => failure,
        (Err(TestError::Abort(why)), _) => return Err(format!("proptest gave up: {why}")),
        _ => {
            return Err(format!(
                "case {case} of master seed {master} did not fail when run again"
            ))
        }
    };
    let mut capped = steps >= proptest_iters;
    let mut i = 0;
    while i < faults.len() && faults.len() > 1 {
        if steps >= max_shrink_iters {
            capped = true;
            break;
        }
        let mut fewer = faults.clone();
        fewer.remove(i);
        steps += 1;
        match fails(&fewer) {
            Some(why) => {
                (faults, reason) = (fewer, why);
                i = 0;
            }
            None => i += 1,
        }
    }
    let mut needs_buggify = buggify;
    if buggify && steps < max_shrink_iters {
        steps += 1;
        if let Some(why) = fails_without_buggify(&faults) {
            (reason, needs_buggify) = (why, false);
        }
    } else if buggify {
        capped = true;
    }
    Ok(Shrunk {
        faults,
        reason,
        steps,
        capped,
        buggify: needs_buggify,
    })
}
