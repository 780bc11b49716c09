//! Durations, ranges and rates (always written with their unit), and probabilities.

use super::table::{found, q};
use super::tree::{Kind, Node};
use super::{fail, Fail, Res};
use crate::scenario::model::RangeUs;

/// A probability in [0, 1).
pub(super) fn probability(node: &Node, what: &str) -> Res<f64> {
    let v = match node.kind {
        Kind::Int(v) => v as f64,
        Kind::Float(v) => v,
        _ => {
            return fail(
                node.pos(),
                format!("{what} must be a number in [0, 1), found {}", found(node)),
            )
        }
    };
    if !(0.0..1.0).contains(&v) {
        return fail(node.pos(), format!("{what} must be in [0, 1), found {v}"));
    }
    Ok(v)
}

fn duration_us(node: &Node, what: &str, signed: bool) -> Res<i64> {
    match &node.kind {
        Kind::Str(s) => parse_duration_us(s, signed).map_err(|m| Fail {
            pos: node.pos(),
            message: format!("{what}: {m}"),
        }),
        Kind::Int(_) | Kind::Float(_) => fail(
            node.pos(),
            format!(
                "{what} needs a unit: write a string like \"60s\" (us, ms, s, m, h), found {}",
                found(node)
            ),
        ),
        _ => fail(
            node.pos(),
            format!(
                "{what} must be a duration like \"60s\", found {}",
                found(node)
            ),
        ),
    }
}

pub(super) fn duration_ms_of(node: &Node, what: &str, signed: bool) -> Res<i64> {
    let us = duration_us(node, what, signed)?;
    if us % 1_000 != 0 {
        return fail(
            node.pos(),
            format!(
                "{what} must be a whole number of milliseconds, found {}",
                found(node)
            ),
        );
    }
    Ok(us / 1_000)
}

/// A duration of at least `min_ms`, in milliseconds.
pub(super) fn ms_at_least(node: &Node, what: &str, min_ms: u64) -> Res<u64> {
    let ms = duration_ms_of(node, what, false)?.unsigned_abs();
    if ms < min_ms {
        return fail(
            node.pos(),
            format!("{what} must be at least {}", show_ms(min_ms)),
        );
    }
    Ok(ms)
}

pub(super) fn positive_ms(node: &Node, what: &str) -> Res<u64> {
    ms_at_least(node, what, 1)
}

pub(super) fn range_us(node: &Node, what: &str) -> Res<RangeUs> {
    match &node.kind {
        Kind::Str(s) => parse_range_us(s).map_err(|m| Fail {
            pos: node.pos(),
            message: format!("{what}: {m}"),
        }),
        Kind::Int(_) | Kind::Float(_) => fail(
            node.pos(),
            format!(
                "{what} needs a unit: write a string like \"1ms..5ms\" or \"2ms\", found {}",
                found(node)
            ),
        ),
        _ => fail(
            node.pos(),
            format!(
                "{what} must be a duration or a range like \"1ms..5ms\", found {}",
                found(node)
            ),
        ),
    }
}

pub(super) fn rate_per_s(node: &Node, what: &str) -> Res<f64> {
    match &node.kind {
        Kind::Str(s) => parse_rate(s).map_err(|m| Fail {
            pos: node.pos(),
            message: format!("{what}: {m}"),
        }),
        Kind::Int(_) | Kind::Float(_) => fail(
            node.pos(),
            format!(
                "{what} needs a unit: write a string like \"200/s\" (per s, ms, m or h), found {}",
                found(node)
            ),
        ),
        _ => fail(
            node.pos(),
            format!(
                "{what} must be a rate like \"200/s\", found {}",
                found(node)
            ),
        ),
    }
}

pub(super) fn show_ms(ms: u64) -> String {
    if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

// ---------------------------------------------------------------------------------------------
// Durations, ranges and rates, as text.

const UNITS: &str = "us, ms, s, m or h";

/// `"60s"`, `"100us"`, `"1.5s"`, `"10m"`, `"1h"`; `"-5s"` if `signed`. In microseconds.
pub(super) fn parse_duration_us(text: &str, signed: bool) -> Result<i64, String> {
    let s = text.trim();
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if negative && !signed {
        return Err(format!("must not be negative, found {}", q(text)));
    }
    let split = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, unit) = body.split_at(split);
    let unit = unit.trim();
    if number.is_empty() {
        return Err(format!(
            "expected a number and a unit ({UNITS}) like \"60s\", found {}",
            q(text)
        ));
    }
    if unit.is_empty() {
        return Err(format!(
            "a duration needs a unit ({UNITS}), like \"{number}s\"; found {}",
            q(text)
        ));
    }
    let scale: u128 = match unit {
        "us" | "µs" => 1,
        "ms" => 1_000,
        "s" => 1_000_000,
        "m" | "min" => 60_000_000,
        "h" => 3_600_000_000,
        _ => {
            return Err(format!(
                "unknown unit {} in {} (units: {UNITS})",
                q(unit),
                q(text)
            ))
        }
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let malformed =
        whole.is_empty() || frac.contains('.') || (number.contains('.') && frac.is_empty());
    if malformed {
        return Err(format!("malformed number in {}", q(text)));
    }
    let too_large = || format!("{} is too large", q(text));
    if frac.len() > 12 {
        return Err(format!("{} has too many decimals", q(text)));
    }
    let whole: u128 = whole.parse().map_err(|_| too_large())?;
    let frac_digits: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| too_large())?
    };
    let frac_div = 10u128.pow(frac.len() as u32);
    let frac_us = frac_digits * scale;
    if !frac_us.is_multiple_of(frac_div) {
        return Err(format!("{} is finer than a microsecond", q(text)));
    }
    let total = whole
        .checked_mul(scale)
        .and_then(|w| w.checked_add(frac_us / frac_div))
        .ok_or_else(too_large)?;
    let total = i64::try_from(total).map_err(|_| too_large())?;
    Ok(if negative { -total } else { total })
}

/// `"1ms..5ms"`, or one duration for a fixed value.
pub(super) fn parse_range_us(text: &str) -> Result<RangeUs, String> {
    let Some((lo, hi)) = text.split_once("..") else {
        let v = parse_duration_us(text, false)?.unsigned_abs();
        return Ok(RangeUs { lo: v, hi: v });
    };
    let lo = parse_duration_us(lo, false)?.unsigned_abs();
    let hi = parse_duration_us(hi, false)?.unsigned_abs();
    if lo > hi {
        return Err(format!(
            "the range {} goes downwards: its low end is above its high end",
            q(text)
        ));
    }
    Ok(RangeUs { lo, hi })
}

/// `"200/s"`, `"5/ms"`, `"30/m"`, `"0.5/s"`: records per second.
pub(super) fn parse_rate(text: &str) -> Result<f64, String> {
    let Some((number, unit)) = text.split_once('/') else {
        return Err(format!(
            "a rate looks like \"200/s\" (per s, ms, m or h), found {}",
            q(text)
        ));
    };
    let number = number.trim();
    if number.starts_with('-') {
        return Err(format!("a rate must be positive, found {}", q(text)));
    }
    let well_formed = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.matches('.').count() <= 1
        && !number.starts_with('.')
        && !number.ends_with('.');
    let value: f64 = match number.parse() {
        Ok(v) if well_formed => v,
        _ => return Err(format!("malformed number in the rate {}", q(text))),
    };
    let per_s = match unit.trim() {
        "s" => value,
        "ms" => value * 1_000.0,
        "m" | "min" => value / 60.0,
        "h" => value / 3_600.0,
        other => {
            return Err(format!(
                "unknown unit {} in the rate {} (per s, ms, m or h)",
                q(other),
                q(text)
            ))
        }
    };
    if !(per_s.is_finite() && per_s > 0.0) {
        return Err(format!(
            "a rate must be positive and finite, found {}",
            q(text)
        ));
    }
    // One record an hour to 100 000 a second: beyond that a run is a memory test, not a scenario.
    if !(1.0 / 3_600.0..=100_000.0).contains(&per_s) {
        return Err(format!(
            "a rate must be between 1/h and 100000/s, found {}",
            q(text)
        ));
    }
    Ok(per_s)
}
