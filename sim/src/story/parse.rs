//! Reading a violation's detail back: the checkers write one sentence each (their formats are
//! fixed by their tests), and a story needs the record it names. Every reader returns `None` on
//! a sentence it does not recognise, so an odd detail falls back to the partition's events.

/// The text between `before` and the next `after` (or the end, for an empty `after`).
pub(crate) fn between<'a>(text: &'a str, before: &str, after: &str) -> Option<&'a str> {
    let start = text.find(before)? + before.len();
    let rest = &text[start..];
    if after.is_empty() {
        return Some(rest);
    }
    rest.find(after).map(|end| &rest[..end])
}

/// An integer between two markers.
pub(crate) fn number(text: &str, before: &str, after: &str) -> Option<i64> {
    between(text, before, after)?.trim().parse().ok()
}

/// `lost-write`: "write {value} to {partition} was acknowledged at offset {offset}, …".
pub(crate) fn lost_write(detail: &str) -> Option<(String, String, i64)> {
    let value = between(detail, "write ", " to ")?;
    let partition = between(detail, &format!("write {value} to "), " was acknowledged")?;
    let offset = number(detail, "acknowledged at offset ", ",")?;
    Some((value.to_string(), partition.to_string(), offset))
}

/// `divergence` from the trace: "{node} truncated its log of {partition} from {from} to {to}
/// (…), below its high watermark {hw}: …" → (node, from, to, hw).
pub(crate) fn divergent_truncation(detail: &str) -> Option<(String, i64, i64, i64)> {
    let node = detail.split(' ').next()?;
    let from = number(detail, " from ", " to ")?;
    let to = number(detail, &format!(" from {from} to "), " (")?;
    let hw = number(detail, "below its high watermark ", ":")?;
    Some((node.to_string(), from, to, hw))
}

/// `divergence` from the final state: "{node}'s replica of {partition} holds {value} at offset
/// {offset}, where the final leader's committed log holds {other} (…)" → (node, value, offset,
/// other).
pub(crate) fn divergent_replica(detail: &str) -> Option<(String, String, i64, String)> {
    let node = between(detail, "", "'s replica of ")?;
    let value = between(detail, " holds ", " at offset ")?;
    let offset = number(detail, " at offset ", ",")?;
    let other = between(detail, "committed log holds ", " (")?;
    Some((
        node.to_string(),
        value.to_string(),
        offset,
        other.to_string(),
    ))
}

/// `duplicate`: "{value}, sent …, is in the final committed log N times: at p@o, p@o" → (value,
/// places).
pub(crate) fn duplicate(detail: &str) -> Option<(String, Vec<(String, i64)>)> {
    let value = detail.split(',').next()?;
    let places = between(detail, "times: at ", "")?
        .split(", ")
        .filter_map(|place| {
            let (partition, offset) = place.rsplit_once('@')?;
            Some((partition.to_string(), offset.trim().parse().ok()?))
        })
        .collect::<Vec<_>>();
    (!places.is_empty()).then(|| (value.to_string(), places))
}

/// `hw-regression`: "{node} leading {partition} in leader epoch {e} served high watermark {hw}
/// (…), below the high watermark {hw2} that {node2} served in leader epoch {e2} at {t} ms" →
/// (node, hw, hw2, node2, t).
pub(crate) fn hw_regression(detail: &str) -> Option<(String, i64, i64, String, u64)> {
    let node = detail.split(' ').next()?;
    let hw = number(detail, "served high watermark ", " (")?;
    let rest = between(detail, "below the high watermark ", "")?;
    let hw2 = number(rest, "", " that ")?;
    let node2 = between(rest, " that ", " served")?;
    let at = number(rest, " at ", " ms")?;
    Some((
        node.to_string(),
        hw,
        hw2,
        node2.to_string(),
        u64::try_from(at).ok()?,
    ))
}

/// `offset-regression`: "group {g}'s committed offset of {p} went back from {a} (…, at {t} ms)
/// to {b} (…), committed by …" → (group, a, t, b).
pub(crate) fn offset_regression(detail: &str) -> Option<(String, i64, u64, i64)> {
    let group = between(detail, "group ", "'s committed offset")?;
    let from = number(detail, " went back from ", " (")?;
    let at = number(detail, ", at ", " ms)")?;
    let to = number(detail, " ms) to ", " (")?;
    Some((group.to_string(), from, u64::try_from(at).ok()?, to))
}

/// `group-skip`: "group {g} committed offset {n} of {p} (…), but no member processed … at
/// {o1}, … (the first is {value})" → (group, n, o1, value).
pub(crate) fn group_skip(detail: &str) -> Option<(String, i64, i64, String)> {
    let group = between(detail, "group ", " committed offset")?;
    let committed = number(detail, " committed offset ", " of ")?;
    let first_offset = between(detail, "below it, at ", ")")?
        .split([',', ' '])
        .next()?
        .parse()
        .ok()?;
    let value = between(detail, "(the first is ", ")")?;
    Some((
        group.to_string(),
        committed,
        first_offset,
        value.to_string(),
    ))
}

/// `unavailable`, a reader's: "{reader} ({isolation}) had not read offset {o} of {p} by …" →
/// (reader, offset).
pub(crate) fn unread(detail: &str) -> Option<(String, i64)> {
    let reader = between(detail, "", " (")?;
    let offset = number(detail, "had not read offset ", " of ")?;
    Some((reader.to_string(), offset))
}

/// `unavailable`, a writer's: "{process} tried to write after every fault was healed at …".
pub(crate) fn stalled_writer(detail: &str) -> Option<String> {
    between(detail, "", " tried to write").map(str::to_string)
}

/// The reads a transactional-read violation lists: "…, at {o} ({value}), {o} ({value}), …".
pub(crate) fn reads(detail: &str) -> Vec<(i64, String)> {
    let Some(list) = between(detail, "offset, at ", ":").or_else(|| between(detail, ", at ", ""))
    else {
        return Vec::new();
    };
    list.split("), ")
        .filter_map(|item| {
            let (offset, value) = item.split_once(" (")?;
            Some((
                offset.trim().parse().ok()?,
                value.trim_end_matches(')').to_string(),
            ))
        })
        .collect()
}
