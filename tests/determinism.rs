//! One seed, one digest: a seed's run gives the same trace digest whether it is the first run in
//! its process or comes after many others (state that outlived a madsim runtime, statics or
//! caches, would make it depend on what ran before: madsim issue #174). `samsa sweep` runs each
//! seed in a process of its own besides (`tests/sweep.rs` compares a sweep under `--jobs 1`
//! and `--jobs 2` with each seed run alone).
//!
//! `SAMSA_DETERMINISM_RUNS` runs come in between (20 by default; the acceptance ran 500).

use samsa::runner;

mod common;
use common::{scenario, seeds};

#[test]
fn a_seed_gives_the_same_digest_first_and_after_hundreds_of_runs_in_one_process() {
    let s = scenario("quickstart-kill");
    let first = runner::run(&s, 7).journal.digest();
    let between = seeds("SAMSA_DETERMINISM_RUNS", 20);
    for seed in 1000..1000 + between {
        runner::run(&s, seed);
    }
    let last = runner::run(&s, 7).journal.digest();
    assert_eq!(
        first, last,
        "seed 7 drifted after {between} other runs in the process"
    );
    // And the digest is the seed's: another seed's differs.
    assert_ne!(first, runner::run(&s, 8).journal.digest());
}
