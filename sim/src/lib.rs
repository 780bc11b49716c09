//! Samsa's simulated world: the simulated disk, network and process faults, the history
//! recorder, the checkers and report rendering. It knows nothing of brokers: the cluster in the
//! `samsa` crate reaches it through narrow interfaces.

pub mod check;
pub mod digest;
pub mod disk;
pub mod history;
pub mod json_text;
pub mod narrate;
pub mod report;
pub mod report_html;
pub mod story;
pub mod val;
