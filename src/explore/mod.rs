//! `samsa explore`'s generator: random fault schedules layered onto a scenario, drawn from
//! proptest strategies (with swarm testing), written as ordinary scenario files, and shrunk with
//! proptest's runner when one fails. The command that runs the cases is `src/explore_command.rs` of the
//! binary; this half runs nothing, so its tests need no simulator.

mod fault;
mod render;
mod space;
mod strategy;

pub use fault::{show_ms, Fault, What};
pub use render::{render_case, Header};
pub use space::{parse_kinds, Kind, Space, BUGGIFY, MAX_FAULTS, MAX_FOR_MS, STEP_MS};
pub use strategy::{case_rng, case_strategy, generate, shrink, Case, Shrunk, Swarm};
