//! The `offset-commit` events the group coordinator traces, one per partition of an
//! `OffsetCommit` whose record is committed (replicated below the high watermark of
//! `__consumer_offsets`) and answered: what `offset-regression` and `group-skip` read as a
//! group's committed offsets, in trace order.

use crate::history::TraceEvent;
use crate::val::Val;

/// One partition's committed offset, as the coordinator committed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Commit<'a> {
    pub at_ms: u64,
    /// The coordinator (`broker-N`).
    pub node: &'a str,
    pub group: &'a str,
    pub partition: &'a str,
    /// The next record to read, as Kafka commits it.
    pub offset: i64,
    /// -1 for a commit that came without one (a consumer outside the group protocol).
    pub generation: i64,
    /// Empty for a commit that came without one.
    pub member: &'a str,
}

impl Commit<'_> {
    /// Who committed, for a violation's detail: `member c-1-…, generation 3`.
    pub(crate) fn by(&self) -> String {
        if self.member.is_empty() {
            format!("no member, generation {}", self.generation)
        } else {
            format!("member {}, generation {}", self.member, self.generation)
        }
    }
}

/// Every `offset-commit` event of the trace that names a group, a partition and an offset, in
/// trace order.
pub(crate) fn commits(trace: &[TraceEvent]) -> impl Iterator<Item = Commit<'_>> {
    trace
        .iter()
        .filter(|e| e.kind == "offset-commit")
        .filter_map(|e| {
            let d = &e.detail;
            Some(Commit {
                at_ms: e.at_ms,
                node: &e.node,
                group: d.get("group")?.as_str()?,
                partition: d.get("partition")?.as_str()?,
                offset: d.get("offset")?.as_i64()?,
                generation: d.get("generation").and_then(Val::as_i64).unwrap_or(-1),
                member: d.get("member").and_then(Val::as_str).unwrap_or(""),
            })
        })
}
