//! Log retention as a pure core: which segments Kafka's `UnifiedLog.deleteOldSegments` would
//! delete, and the log start offset after they are gone. No I/O: the caller describes its
//! segments with `SegmentInfo` and performs the deletions.
//!
//! The rules (Kafka 3.x/4.x, `UnifiedLog.deleteOldSegments`, `deletableSegments`,
//! `deleteSegments`):
//!
//! - Three passes, in this order, each deleting a prefix of what the previous one left:
//!   log-start-offset breach (always, whatever `cleanup.policy`), then `retention.bytes`, then
//!   `retention.ms` (both only when `cleanup.policy` contains `delete`).
//! - Each pass walks from the oldest segment and stops at the first segment its predicate
//!   rejects: a young segment shields every older-looking segment behind it.
//! - A segment is deletable only when the high watermark is at or above its upper bound (the
//!   next segment's base offset, or the log end offset for the last one), so the log start
//!   offset never passes the high watermark.
//! - The last segment is never deleted while empty. It *is* deletable when it holds data, all of
//!   it below the high watermark (HW = LEO) and expired: Kafka then rolls a new empty active
//!   segment first ("we must always have at least one segment"). See `segments_to_delete`.
//!
//! The caller (the broker's retention task, every `log.retention.check.interval.ms`, Kafka's
//! default 300000) passes every segment of the partition, oldest first.

/// One segment of a partition log, as retention and the cleaner need to see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The first offset the segment may hold (its file name).
    pub base_offset: i64,
    /// One past the last offset in the segment; for the active segment, the log end offset.
    pub next_offset: i64,
    /// The segment file's size (Kafka's `LogSegment.size`).
    pub size_bytes: u64,
    /// Kafka's `LogSegment.largestTimestamp`: the largest batch maxTimestamp appended so far, or,
    /// when the segment holds no timestamp, the file's last-modified time.
    pub largest_timestamp_ms: i64,
    /// The segment appends go to: the last one.
    pub is_active: bool,
}

/// Kafka's `cleanup.policy`: a list of `delete` and `compact`; both may be set, or neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    /// Kafka's default, `delete`.
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };
    pub const COMPACT: CleanupPolicy = CleanupPolicy {
        delete: false,
        compact: true,
    };
}

/// The topic configs retention reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionConfig {
    /// `retention.ms`; -1 (any negative value) means unlimited. Kafka's default: 7 days.
    pub retention_ms: i64,
    /// `retention.bytes`, for the whole partition; -1 (any negative value) means unlimited.
    pub retention_bytes: i64,
    pub cleanup_policy: CleanupPolicy,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::DELETE,
        }
    }
}

/// Why a segment goes: Kafka's `SegmentDeletionReason`s, for the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// Wholly below the log start offset (moved by DeleteRecords, KIP-107).
    LogStartOffsetBreach,
    /// The partition is larger than `retention.bytes`.
    RetentionSizeBreach,
    /// Its largest timestamp is more than `retention.ms` old.
    RetentionMsBreach,
}

/// The segments Kafka would delete now, oldest first, with the rule that took each.
///
/// `segments`: every segment of the partition, oldest first, the last one active.
/// `high_watermark`: the partition's HW; `log_start_offset`: its current log start offset.
///
/// If the result contains the active segment, it contains every segment: the caller must then,
/// as Kafka's `deleteSegments` does, roll a new empty active segment at the log end offset
/// before deleting. Afterwards it sets the log start offset to `new_log_start_offset`.
pub fn segments_to_delete(
    segments: &[SegmentInfo],
    config: &RetentionConfig,
    now_ms: i64,
    high_watermark: i64,
    log_start_offset: i64,
) -> Vec<(i64, Reason)> {
    check_segments(segments);
    let mut walk = Walk {
        segments,
        high_watermark,
        first: 0,
        deleted: Vec::new(),
    };
    // Kafka's `deleteLogStartOffsetBreachedSegments`: the next segment starts at or below it.
    walk.delete_prefix(Reason::LogStartOffsetBreach, |_, next| {
        next.is_some_and(|n| n.base_offset <= log_start_offset)
    });
    if !config.cleanup_policy.delete {
        return walk.deleted;
    }
    // `deleteRetentionSizeBreachedSegments`: the size counts every remaining segment, the
    // active one included; delete while what remains stays at or above retention.bytes.
    let size: u64 = segments[walk.first..].iter().map(|s| s.size_bytes).sum();
    if let Ok(limit) = u64::try_from(config.retention_bytes) {
        if size >= limit {
            let mut excess = size - limit;
            walk.delete_prefix(Reason::RetentionSizeBreach, |segment, _| {
                let fits = segment.size_bytes <= excess;
                if fits {
                    excess -= segment.size_bytes;
                }
                fits
            });
        }
    }
    // `deleteRetentionMsBreachedSegments`: strictly older than retention.ms; a timestamp in the
    // future makes a segment (and so everything behind it) ineligible.
    if config.retention_ms >= 0 {
        walk.delete_prefix(Reason::RetentionMsBreach, |segment, _| {
            now_ms.saturating_sub(segment.largest_timestamp_ms) > config.retention_ms
        });
    }
    walk.deleted
}

/// The log start offset once `deleted` (a result of `segments_to_delete`) is gone: the base
/// offset of the first surviving segment, or the log end offset when all were deleted (the
/// rolled segment starts there). It only moves forward (Kafka's `maybeIncrementLogStartOffset`).
pub fn new_log_start_offset(
    segments: &[SegmentInfo],
    deleted: &[(i64, Reason)],
    log_start_offset: i64,
) -> i64 {
    check_segments(segments);
    let Some(&(last_deleted, _)) = deleted.last() else {
        return log_start_offset;
    };
    assert!(
        deleted
            .iter()
            .zip(segments)
            .all(|(&(base, _), segment)| base == segment.base_offset),
        "deleted segments must be the oldest ones, in order"
    );
    let next_base = match segments.get(deleted.len()) {
        Some(survivor) => survivor.base_offset,
        None => segments.last().expect("deleted is not empty").next_offset,
    };
    debug_assert!(next_base > last_deleted);
    log_start_offset.max(next_base)
}

/// What must hold of the segment list (pair assertions with the segmented log's own).
fn check_segments(segments: &[SegmentInfo]) {
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        assert_eq!(
            segment.is_active, last,
            "exactly the last segment is active: {segments:?}"
        );
        assert!(
            segment.base_offset <= segment.next_offset,
            "segment ends before it starts: {segment:?}"
        );
        if let Some(next) = segments.get(i + 1) {
            assert!(
                segment.next_offset <= next.base_offset,
                "segments overlap or are out of order: {segment:?}, {next:?}"
            );
        }
    }
}

/// Kafka's `deletableSegments` loop, shared by the three passes.
struct Walk<'a> {
    segments: &'a [SegmentInfo],
    high_watermark: i64,
    /// The oldest segment not deleted by an earlier pass.
    first: usize,
    deleted: Vec<(i64, Reason)>,
}

impl Walk<'_> {
    fn delete_prefix(
        &mut self,
        reason: Reason,
        mut predicate: impl FnMut(&SegmentInfo, Option<&SegmentInfo>) -> bool,
    ) {
        while let Some(segment) = self.segments.get(self.first) {
            let next = self.segments.get(self.first + 1);
            let is_last_and_empty = next.is_none() && segment.size_bytes == 0;
            let upper_bound = next.map_or(segment.next_offset, |n| n.base_offset);
            // As Kafka: the HW check first, so the predicate (which may count bytes) only sees
            // segments that could go.
            let deletable = self.high_watermark >= upper_bound
                && predicate(segment, next)
                && !is_last_and_empty;
            if !deletable {
                return;
            }
            self.deleted.push((segment.base_offset, reason));
            self.first += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_700_000_000_000;
    const HOUR: i64 = 60 * 60 * 1000;

    /// A log of segments of 10 offsets each, given as (size, age of the newest record); the
    /// last one is active and may be shorter.
    fn log(segments: &[(u64, i64)]) -> Vec<SegmentInfo> {
        let count = segments.len();
        segments
            .iter()
            .enumerate()
            .map(|(i, &(size_bytes, age_ms))| SegmentInfo {
                base_offset: 10 * i as i64,
                next_offset: 10 * i as i64 + if size_bytes == 0 { 0 } else { 10 },
                size_bytes,
                largest_timestamp_ms: NOW - age_ms,
                is_active: i + 1 == count,
            })
            .collect()
    }

    fn log_end(segments: &[SegmentInfo]) -> i64 {
        segments.last().unwrap().next_offset
    }

    fn by_time(retention_ms: i64) -> RetentionConfig {
        RetentionConfig {
            retention_ms,
            ..RetentionConfig::default()
        }
    }

    fn by_size(retention_bytes: i64) -> RetentionConfig {
        RetentionConfig {
            retention_ms: -1,
            retention_bytes,
            ..RetentionConfig::default()
        }
    }

    use Reason::*;

    #[test]
    fn time_retention_takes_expired_segments_from_the_oldest_and_stops_at_the_first_young_one() {
        // The third segment is old again, but the young second one shields it (Kafka's walk).
        let segments = log(&[(100, 50 * HOUR), (100, 2 * HOUR), (100, 50 * HOUR), (10, 0)]);
        let deleted = segments_to_delete(&segments, &by_time(24 * HOUR), NOW, 40, 0);
        assert_eq!(deleted, vec![(0, RetentionMsBreach)]);
        assert_eq!(new_log_start_offset(&segments, &deleted, 0), 10);
    }

    #[test]
    fn time_retention_is_strictly_older_than_retention_ms_and_ignores_future_timestamps() {
        let segments = log(&[(100, 24 * HOUR), (100, 50 * HOUR), (10, 0)]);
        assert_eq!(
            segments_to_delete(&segments, &by_time(24 * HOUR), NOW, 30, 0),
            vec![]
        );
        let segments = log(&[
            (100, 24 * HOUR + 1),
            (100, -HOUR),
            (100, 50 * HOUR),
            (10, 0),
        ]);
        assert_eq!(
            segments_to_delete(&segments, &by_time(24 * HOUR), NOW, 40, 0),
            vec![(0, RetentionMsBreach)]
        );
    }

    #[test]
    fn size_retention_deletes_while_what_remains_stays_at_or_above_retention_bytes() {
        // 350 bytes in all, the active segment counted.
        let segments = log(&[(100, 0), (100, 0), (100, 0), (50, 0)]);
        let at = |limit| segments_to_delete(&segments, &by_size(limit), NOW, 40, 0);
        assert_eq!(at(200), vec![(0, RetentionSizeBreach)]); // 250 left; 150 would be too few
        assert_eq!(
            at(150),
            vec![(0, RetentionSizeBreach), (10, RetentionSizeBreach)]
        );
        assert_eq!(at(350), vec![]);
        assert_eq!(at(351), vec![]);
        assert_eq!(at(-1), vec![]);
        assert_eq!(
            at(0).len(),
            4,
            "retention.bytes=0 empties the log (after a roll)"
        );
    }

    #[test]
    fn size_runs_before_time_so_time_continues_where_size_stopped() {
        // Young, old, young. Size takes the first; time then sees the old second one. With
        // time first (Kafka 2.x) the young first segment would have shielded it.
        let segments = log(&[(100, HOUR), (100, 50 * HOUR), (100, HOUR), (100, 0)]);
        let config = RetentionConfig {
            retention_ms: 24 * HOUR,
            retention_bytes: 300,
            cleanup_policy: CleanupPolicy::DELETE,
        };
        assert_eq!(
            segments_to_delete(&segments, &config, NOW, 40, 0),
            vec![(0, RetentionSizeBreach), (10, RetentionMsBreach)]
        );
    }

    #[test]
    fn only_segments_wholly_below_the_high_watermark_go() {
        let segments = log(&[(100, 50 * HOUR), (100, 50 * HOUR), (10, 50 * HOUR)]);
        let at = |hw| segments_to_delete(&segments, &by_time(HOUR), NOW, hw, 0);
        assert_eq!(at(9), vec![]);
        assert_eq!(at(10), vec![(0, RetentionMsBreach)]);
        assert_eq!(at(19), vec![(0, RetentionMsBreach)]);
        assert_eq!(
            at(20),
            vec![(0, RetentionMsBreach), (10, RetentionMsBreach)]
        );
    }

    #[test]
    fn the_active_segment_goes_only_with_data_all_below_the_high_watermark() {
        let segments = log(&[(100, 50 * HOUR), (10, 50 * HOUR)]);
        let leo = log_end(&segments);
        let all = segments_to_delete(&segments, &by_time(HOUR), NOW, leo, 0);
        // Kafka rolls a new active segment at the log end offset, then deletes both.
        assert_eq!(all, vec![(0, RetentionMsBreach), (10, RetentionMsBreach)]);
        assert_eq!(new_log_start_offset(&segments, &all, 0), leo);
        assert_eq!(
            segments_to_delete(&segments, &by_time(HOUR), NOW, leo - 1, 0),
            vec![(0, RetentionMsBreach)]
        );
        // An empty active segment is never deleted, however old its timestamp.
        let segments = log(&[(100, 50 * HOUR), (0, 50 * HOUR)]);
        assert_eq!(
            segments_to_delete(&segments, &by_time(HOUR), NOW, 10, 0),
            vec![(0, RetentionMsBreach)]
        );
    }

    #[test]
    fn a_moved_log_start_offset_deletes_segments_below_it_whatever_the_policy() {
        let segments = log(&[(100, 0), (100, 0), (100, 0), (10, 0)]);
        for policy in [
            CleanupPolicy::DELETE,
            CleanupPolicy::COMPACT,
            CleanupPolicy {
                delete: false,
                compact: false,
            },
        ] {
            let config = RetentionConfig {
                cleanup_policy: policy,
                ..RetentionConfig::default()
            };
            let deleted = segments_to_delete(&segments, &config, NOW, 40, 25);
            assert_eq!(
                deleted,
                vec![(0, LogStartOffsetBreach), (10, LogStartOffsetBreach)]
            );
            assert_eq!(new_log_start_offset(&segments, &deleted, 25), 25);
        }
    }

    #[test]
    fn without_the_delete_policy_time_and_size_do_nothing() {
        let segments = log(&[(100, 50 * HOUR), (100, 50 * HOUR), (10, 0)]);
        let config = RetentionConfig {
            retention_ms: HOUR,
            retention_bytes: 0,
            cleanup_policy: CleanupPolicy::COMPACT,
        };
        assert_eq!(segments_to_delete(&segments, &config, NOW, 30, 0), vec![]);
    }

    #[test]
    fn size_is_measured_after_the_log_start_offset_pass() {
        // 310 bytes; the log-start pass removes 100, leaving 210 against a limit of 200.
        let segments = log(&[(100, 0), (100, 0), (100, 0), (10, 0)]);
        assert_eq!(
            segments_to_delete(&segments, &by_size(200), NOW, 40, 10),
            vec![(0, LogStartOffsetBreach)]
        );
    }

    #[test]
    #[should_panic(expected = "exactly the last segment is active")]
    fn the_segment_list_must_end_with_the_active_segment() {
        let mut segments = log(&[(100, 0), (10, 0)]);
        segments[1].is_active = false;
        segments_to_delete(&segments, &by_time(HOUR), NOW, 20, 0);
    }

    fn arb_case() -> impl Strategy<Value = (Vec<SegmentInfo>, RetentionConfig, i64, i64)> {
        let segments = proptest::collection::vec((0u64..200, -HOUR..100 * HOUR), 1..8);
        let config = (
            -1i64..100 * HOUR,
            -1i64..1_000,
            any::<bool>(),
            any::<bool>(),
        );
        (segments, config, 0.0..=1.0f64, 0.0..=1.0f64).prop_map(
            |(segments, (retention_ms, retention_bytes, delete, compact), hw, lso)| {
                let segments = log(&segments);
                let leo = log_end(&segments);
                let config = RetentionConfig {
                    retention_ms,
                    retention_bytes,
                    cleanup_policy: CleanupPolicy { delete, compact },
                };
                let scaled = |f: f64| (f * leo as f64) as i64;
                (segments, config, scaled(hw), scaled(lso).min(scaled(hw)))
            },
        )
    }

    proptest! {
        #[test]
        fn deletions_obey_kafkas_invariants((segments, config, hw, lso) in arb_case()) {
            let deleted = segments_to_delete(&segments, &config, NOW, hw, lso);
            // An oldest prefix, in pass order.
            for (&(base, _), segment) in deleted.iter().zip(&segments) {
                prop_assert_eq!(base, segment.base_offset);
            }
            prop_assert!(deleted.windows(2).all(|w| w[0].1 <= w[1].1));
            let upper = |i: usize| segments.get(i + 1).map_or(segments[i].next_offset, |n| n.base_offset);
            for i in 0..deleted.len() {
                prop_assert!(upper(i) <= hw, "segment {} crosses the HW {}", i, hw);
            }
            let survivors = &segments[deleted.len()..];
            if survivors.is_empty() {
                prop_assert!(segments.last().unwrap().size_bytes > 0);
            }
            if !config.cleanup_policy.delete {
                prop_assert!(deleted.iter().all(|&(_, r)| r == LogStartOffsetBreach));
            }
            let expired = |s: &SegmentInfo| config.retention_ms >= 0 && NOW - s.largest_timestamp_ms > config.retention_ms;
            for (i, &(_, reason)) in deleted.iter().enumerate() {
                match reason {
                    LogStartOffsetBreach => prop_assert!(upper(i) <= lso),
                    RetentionMsBreach => prop_assert!(expired(&segments[i])),
                    RetentionSizeBreach => {
                        let after_size_pass: u64 = segments.iter().enumerate()
                            .filter(|&(j, _)| j > i)
                            .map(|(_, s)| s.size_bytes).sum();
                        prop_assert!(after_size_pass as i64 >= config.retention_bytes);
                    }
                }
            }
            // Maximal: the first survivor, were it deletable at all, breaks the last rule run.
            let first = deleted.len();
            if let Some(survivor) = survivors.first() {
                let could_go = upper(first) <= hw && !(survivors.len() == 1 && survivor.size_bytes == 0);
                if could_go {
                    prop_assert!(upper(first) > lso || segments.get(first + 1).is_none());
                    if config.cleanup_policy.delete {
                        prop_assert!(!expired(survivor));
                    }
                }
            }
            let start = new_log_start_offset(&segments, &deleted, lso);
            prop_assert!(start >= lso && start <= hw.max(lso));
        }
    }
}
