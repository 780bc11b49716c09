//! The story of a violation: the record it is about and the chain of events that produced it,
//! read from the history and the trace alone (this crate knows nothing of brokers: it reads the
//! events' kinds and fields as the trace spells them).
//!
//! A checker says *what* is wrong ("write p1-2 was acknowledged at offset 2, but the final log
//! holds p1-28 there"); a story says *how it came to be*: who sent the record, which leader
//! appended it in which epoch, which replicas fetched it, which one truncated it and why, which
//! election made a replica without it leader. `report.md` prints one story per check and
//! partition; `samsa explain` prints them at the end of its narrative.

mod offsets;
mod others;
mod parse;
mod trace;

use crate::check::Violation;
use crate::history::{Op, TraceEvent};

/// Where a step was read: the line of `history.jsonl` or `trace.jsonl` (0-based), or the
/// violation itself (the final state it compares against).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    History(usize),
    Trace(usize),
    Violation,
}

/// One link of the chain.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub at_ms: u64,
    pub text: String,
    pub source: Source,
}

/// The record a violation is about, as far as the violation and the history name it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Subject {
    pub partition: Option<String>,
    pub offset: Option<i64>,
    pub value: Option<String>,
    pub key: Option<String>,
    /// The client process that wrote it (or, for a group's or a reader's violation, acted).
    pub process: Option<String>,
}

/// The story of one violation.
#[derive(Clone, Debug, PartialEq)]
pub struct Story {
    pub check: String,
    /// One sentence naming the record and what went wrong with it.
    pub headline: String,
    pub subject: Subject,
    /// In time order.
    pub steps: Vec<Step>,
    /// The step that did the damage (a truncation, an election, a second append, …), when the
    /// story can tell which.
    pub cause: Option<usize>,
}

impl Story {
    /// The step that did the damage.
    pub fn cause_step(&self) -> Option<&Step> {
        self.cause.and_then(|i| self.steps.get(i))
    }
}

/// At most this many steps are told; the rest are counted in the last one.
const MAX_STEPS: usize = 40;

/// The story of `v`, from the run's history and trace.
pub fn chain(v: &Violation, history: &[Op], trace: &[TraceEvent]) -> Story {
    let run = Run { history, trace };
    let told = match v.check.as_str() {
        "lost-write" => offsets::lost_write(v, &run),
        "divergence" => offsets::divergence(v, &run),
        "inconsistent-read" => offsets::inconsistent_read(v, &run),
        "duplicate" => offsets::duplicate(v, &run),
        "hw-regression" => others::hw_regression(v, &run),
        "offset-regression" => others::offset_regression(v, &run),
        "group-skip" => others::group_skip(v, &run),
        "aborted-read" | "uncommitted-read" => others::transactional_read(v, &run),
        "unavailable" => others::unavailable(v, &run),
        _ => None,
    };
    let mut story = told.unwrap_or_else(|| others::fallback(v, &run));
    finish(&mut story);
    story
}

/// A controller's `partition-state` event as a sentence ("the controller made broker-3 leader
/// of orders-0 in epoch 2 (ISR [3])").
pub fn election_sentence(event: &TraceEvent) -> String {
    trace::election_text(event)
}

/// Why a replica truncated (a `truncate` event's reason), as a sentence.
pub fn truncation_sentence(event: &TraceEvent) -> String {
    trace::truncation_reason(event)
}

/// The run a story is read from.
pub(crate) struct Run<'a> {
    pub history: &'a [Op],
    pub trace: &'a [TraceEvent],
}

/// Puts the steps in time order (stable: the order they were found in breaks ties), keeps the
/// cause pointing at its step, and caps the length around the cause.
fn finish(story: &mut Story) {
    let cause = story.cause.and_then(|i| story.steps.get(i).cloned());
    story.steps.sort_by_key(|s| s.at_ms);
    story.steps.dedup();
    if story.steps.len() > MAX_STEPS {
        let keep_from = cause
            .as_ref()
            .and_then(|c| story.steps.iter().position(|s| s == c))
            .map_or(0, |i| i.saturating_sub(MAX_STEPS / 2))
            .min(story.steps.len() - MAX_STEPS);
        let dropped = story.steps.len() - MAX_STEPS;
        story.steps = story.steps.split_off(keep_from);
        story.steps.truncate(MAX_STEPS);
        // Said on the last step, unless that is the cause (which is found again by its text).
        let last_is_cause = cause.as_ref() == story.steps.last();
        if let (Some(last), false) = (story.steps.last_mut(), last_is_cause) {
            last.text
                .push_str(&format!(" (and {dropped} more steps, left out)"));
        }
    }
    story.cause = cause.and_then(|c| story.steps.iter().position(|s| s == &c));
}

#[cfg(test)]
mod tests;
