//! The strict parser of scenario files (`CONTRACT.md`, "Scenario files").
//!
//! Every key is known, every value typed and in range, every name it refers to (a topic, a
//! partition, a broker, a client, a group, a Kafka config, a check) exists. The first problem
//! found is reported as one line, `FILE:LINE: what is wrong`, pointing at the offending key or
//! value, or at the `[[fault]]` / `[[client]]` header it belongs to. No input makes it panic.
//!
//! It reads the document into a tree that keeps the position of every key and value (`tree`),
//! then walks it section by section into the model, in the order the sections depend on each
//! other: the cluster, the topics (which need the broker count), the clients (which need the
//! topics), the faults (which need all of them).

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use super::configs::{self, Scope};
use super::model::*;
use tree::{Key, Kind, Node};

/// Why a scenario file was refused: one line, `FILE:LINE: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// Reads and parses a scenario file. A missing or unreadable file is an error naming it.
pub fn parse_file(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let refuse = |line, message: String| ScenarioError {
        file: file.clone(),
        line,
        message,
    };
    let bytes = std::fs::read(path)
        .map_err(|e| refuse(None, format!("cannot read the scenario file: {e}")))?;
    match String::from_utf8(bytes) {
        Ok(text) => parse_str(&file, &text),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..valid]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            Err(refuse(Some(line), "the file is not UTF-8 text".into()))
        }
    }
}

/// Parses the text of a scenario file; `file` names it in errors.
pub fn parse_str(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let lines = Lines::new(text);
    let refuse = |fail: Fail| ScenarioError {
        file: file.to_string(),
        line: fail.pos.map(|p| lines.line(p)),
        message: fail.message,
    };
    let root = tree::parse(text).map_err(|e| refuse(toml_fail(&e, &lines)))?;
    scenario(&root, &lines).map_err(refuse)
}

/// A problem at a byte offset of the text.
#[derive(Debug)]
struct Fail {
    pos: Option<usize>,
    message: String,
}

type Res<T> = Result<T, Fail>;

fn fail<T>(pos: Option<usize>, message: impl Into<String>) -> Res<T> {
    Err(Fail {
        pos,
        message: message.into(),
    })
}

/// The `toml` crate's error, on one line, with the column it points at.
fn toml_fail(e: &toml::de::Error, lines: &Lines) -> Fail {
    let pos = e.span().map(|s| s.start);
    let mut message: String = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if message.is_empty() {
        message = "unexpected end of a value".into();
    }
    let column = pos
        .map(|p| format!(" (column {})", lines.column(p)))
        .unwrap_or_default();
    Fail {
        pos,
        message: format!("invalid TOML: {message}{column}"),
    }
}

/// Byte offsets to line and column numbers.
struct Lines<'t> {
    text: &'t str,
    /// Offsets of the line starts after the first.
    starts: Vec<usize>,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Self {
        let starts = text.match_indices('\n').map(|(i, _)| i + 1).collect();
        Lines { text, starts }
    }

    /// 1-based line of a byte offset.
    fn line(&self, pos: usize) -> usize {
        self.starts.partition_point(|&s| s <= pos) + 1
    }

    /// 1-based column (in characters) of a byte offset.
    fn column(&self, pos: usize) -> usize {
        let line_start = match self.line(pos) {
            1 => 0,
            n => self.starts[n - 2],
        };
        let end = pos.min(self.text.len());
        self.text
            .get(line_start..end)
            .map_or(1, |s| s.chars().count() + 1)
    }

    fn line_of(&self, node: &Node) -> usize {
        node.pos().map_or(0, |p| self.line(p))
    }
}

// ---------------------------------------------------------------------------------------------
// Tables and values.

/// User text in a message: quoted and escaped (so a message stays one line), and cut if long.
fn q(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("{:?}…", cut)
    } else {
        format!("{s:?}")
    }
}

/// A value as messages name it: `the integer 60`.
fn found(node: &Node) -> String {
    match &node.kind {
        Kind::Str(s) => format!("the string {}", q(s)),
        Kind::Int(v) => format!("the integer {v}"),
        Kind::Float(v) => format!("the number {v}"),
        Kind::Bool(v) => format!("the boolean {v}"),
        Kind::Datetime(v) => format!("the date-time {v}"),
        Kind::Array(_) => "an array".into(),
        Kind::Table(_) => "a table".into(),
    }
}

const TOP_LEVEL: &str = "the top level";

/// A table of the document, with the name messages give it (`[cluster]`, `[[fault]] #2`).
struct Table<'a> {
    name: String,
    pos: Option<usize>,
    entries: &'a [(Key, Node)],
}

impl<'a> Table<'a> {
    fn of(node: &'a Node, name: impl Into<String>) -> Res<Self> {
        let name = name.into();
        match &node.kind {
            Kind::Table(entries) => Ok(Table {
                name,
                pos: node.pos(),
                entries,
            }),
            _ => fail(
                node.pos(),
                format!("{name} must be a table, found {}", found(node)),
            ),
        }
    }

    /// Refuses any key not in `allowed`. A key of `elsewhere` is known but does not belong here,
    /// for the reason `why` (e.g. "does not apply to action \"crash\"").
    fn allow(&self, allowed: &[&str], elsewhere: &[&str], why: &str) -> Res<()> {
        let Some((key, _)) = self
            .entries
            .iter()
            .find(|(k, _)| !allowed.contains(&k.name.as_str()))
        else {
            return Ok(());
        };
        let place = if self.name == TOP_LEVEL {
            "at the top level".to_string()
        } else {
            format!("in {}", self.name)
        };
        let list = allowed.join(", ");
        let message = if elsewhere.contains(&key.name.as_str()) {
            format!("key {} {why} {place} (allowed here: {list})", q(&key.name))
        } else {
            let hint = configs::closest(&key.name, allowed.iter().copied())
                .map(|near| format!("did you mean {}? ", q(near)))
                .unwrap_or_default();
            format!(
                "unknown key {} {place} ({hint}allowed: {list})",
                q(&key.name)
            )
        };
        fail(key.pos(), message)
    }

    /// Names the table by the string under `key`, if it has one: `[[topic]] "orders"`.
    fn name_by(&mut self, key: &str, header: &str) {
        if let Some(Kind::Str(name)) = self.get(key).map(|n| &n.kind) {
            self.name = format!("{header} {}", q(name));
        }
    }

    fn entry(&self, key: &str) -> Option<&'a (Key, Node)> {
        self.entries.iter().find(|(k, _)| k.name == key)
    }

    fn get(&self, key: &str) -> Option<&'a Node> {
        self.entry(key).map(|(_, v)| v)
    }

    fn req(&self, key: &str) -> Res<&'a Node> {
        match self.get(key) {
            Some(v) => Ok(v),
            None if self.name == TOP_LEVEL => {
                fail(None, format!("missing the required top-level key `{key}`"))
            }
            None => fail(
                self.pos,
                format!("{} is missing the required key `{key}`", self.name),
            ),
        }
    }

    /// How messages name one of its keys: "`brokers` in [cluster]".
    fn what(&self, key: &str) -> String {
        if self.name == TOP_LEVEL {
            format!("`{key}`")
        } else {
            format!("`{key}` in {}", self.name)
        }
    }

    fn opt<T>(&self, key: &str, read: impl FnOnce(&'a Node, &str) -> Res<T>) -> Res<Option<T>> {
        self.get(key)
            .map(|node| read(node, &self.what(key)))
            .transpose()
    }
}

fn string<'a>(node: &'a Node, what: &str) -> Res<&'a str> {
    match &node.kind {
        Kind::Str(s) => Ok(s),
        _ => fail(
            node.pos(),
            format!("{what} must be a string, found {}", found(node)),
        ),
    }
}

fn boolean(node: &Node, what: &str) -> Res<bool> {
    match node.kind {
        Kind::Bool(b) => Ok(b),
        _ => fail(
            node.pos(),
            format!("{what} must be true or false, found {}", found(node)),
        ),
    }
}

fn int_in(node: &Node, what: &str, min: i64, max: i64) -> Res<i64> {
    let Kind::Int(v) = node.kind else {
        return fail(
            node.pos(),
            format!("{what} must be an integer, found {}", found(node)),
        );
    };
    if v < min || v > max {
        let range = if max == i64::MAX {
            format!("at least {min}")
        } else {
            format!("between {min} and {max}")
        };
        return fail(node.pos(), format!("{what} must be {range}, found {v}"));
    }
    Ok(v)
}

fn u32_in(node: &Node, what: &str, min: u32, max: u32) -> Res<u32> {
    // The range keeps the value within u32.
    int_in(node, what, min.into(), max.into()).map(|v| v as u32)
}

fn array<'a>(node: &'a Node, what: &str) -> Res<&'a [Node]> {
    match &node.kind {
        Kind::Array(items) => Ok(items),
        _ => fail(
            node.pos(),
            format!("{what} must be an array, found {}", found(node)),
        ),
    }
}

fn strings<'a>(node: &'a Node, what: &str) -> Res<Vec<(&'a str, &'a Node)>> {
    array(node, what)?
        .iter()
        .map(|item| string(item, &format!("each item of {what}")).map(|s| (s, item)))
        .collect()
}

/// A probability in [0, 1).
fn probability(node: &Node, what: &str) -> Res<f64> {
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

fn duration_ms_of(node: &Node, what: &str, signed: bool) -> Res<i64> {
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
fn ms_at_least(node: &Node, what: &str, min_ms: u64) -> Res<u64> {
    let ms = duration_ms_of(node, what, false)?.unsigned_abs();
    if ms < min_ms {
        return fail(
            node.pos(),
            format!("{what} must be at least {}", show_ms(min_ms)),
        );
    }
    Ok(ms)
}

fn positive_ms(node: &Node, what: &str) -> Res<u64> {
    ms_at_least(node, what, 1)
}

fn range_us(node: &Node, what: &str) -> Res<RangeUs> {
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

fn rate_per_s(node: &Node, what: &str) -> Res<f64> {
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

fn show_ms(ms: u64) -> String {
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
fn parse_duration_us(text: &str, signed: bool) -> Result<i64, String> {
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
fn parse_range_us(text: &str) -> Result<RangeUs, String> {
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
fn parse_rate(text: &str) -> Result<f64, String> {
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
    Ok(per_s)
}

// ---------------------------------------------------------------------------------------------
// The sections.

const TOP_KEYS: &[&str] = &[
    "name", "summary", "duration", "seed", "recovery", "cluster", "protocol", "network", "disk",
    "topic", "client", "fault", "expect",
];

/// No more nodes than this of one kind, nor members in one consumer: a bound, not a Kafka limit.
const MAX_NODES: u32 = 1_000;
/// No more partitions than this per topic.
const MAX_PARTITIONS: u32 = 10_000;

fn scenario(root: &Node, lines: &Lines) -> Res<Scenario> {
    let mut top = Table::of(root, TOP_LEVEL)?;
    top.pos = None;
    top.allow(TOP_KEYS, &[], "")?;
    let name = scenario_name(top.req("name")?)?;
    let summary = top.opt("summary", string)?.unwrap_or_default().to_string();
    let duration_ms = positive_ms(top.req("duration")?, &top.what("duration"))?;
    let seed = top
        .opt("seed", |n, w| int_in(n, w, 0, i64::MAX))?
        .map_or(1, |s| s as u64);
    let recovery_ms = top.opt("recovery", positive_ms)?;
    let cluster = cluster(top.get("cluster"))?;
    let protocol = protocol(top.get("protocol"))?;
    let network = network(top.get("network"))?;
    let disk = disk(top.get("disk"))?;
    let topics = topics(top.get("topic"), &cluster)?;
    let clients = clients(top.get("client"), &topics, duration_ms, lines)?;
    let names = Names {
        brokers: cluster.brokers,
        controllers: cluster.controllers,
        topics: &topics,
        clients: &clients,
    };
    let faults = faults(top.get("fault"), &names, duration_ms, lines)?;
    let expect = expect(top.get("expect"))?;
    Ok(Scenario {
        name,
        summary,
        duration_ms,
        seed,
        recovery_ms,
        cluster,
        protocol,
        network,
        disk,
        topics,
        clients,
        faults,
        expect,
    })
}

/// The scenario's name names its reports' folder: lowercase letters, digits, `-` and `_`.
fn scenario_name(node: &Node) -> Res<String> {
    let name = string(node, "`name`")?;
    let ok = (1..=100).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        return fail(
            node.pos(),
            format!("`name` must be a slug (lowercase letters, digits, '-' and '_', like \"leader-failover\"), found {}", q(name)),
        );
    }
    Ok(name.to_string())
}

fn cluster(node: Option<&Node>) -> Res<ClusterSpec> {
    let Some(node) = node else {
        return Ok(ClusterSpec {
            brokers: 1,
            controllers: 0,
            config: Configs::new(),
        });
    };
    let t = Table::of(node, "[cluster]")?;
    t.allow(&["brokers", "controllers", "config"], &[], "")?;
    Ok(ClusterSpec {
        brokers: t
            .opt("brokers", |n, w| u32_in(n, w, 1, MAX_NODES))?
            .unwrap_or(1),
        controllers: t
            .opt("controllers", |n, w| u32_in(n, w, 0, MAX_NODES))?
            .unwrap_or(0),
        config: t
            .opt("config", |n, _| {
                kafka_configs(n, &[Scope::Broker], "[cluster.config]")
            })?
            .unwrap_or_default(),
    })
}

fn protocol(node: Option<&Node>) -> Res<ProtocolSpec> {
    let mut spec = ProtocolSpec::default();
    let Some(node) = node else {
        return Ok(spec);
    };
    let t = Table::of(node, "[protocol]")?;
    t.allow(
        &[
            "truncation",
            "eligible-leader-replicas",
            "broker-epoch-check",
            "transaction-version",
            "check-quorum",
            "offset-commit-fencing",
        ],
        &[],
        "",
    )?;
    if let Some(n) = t.get("truncation") {
        spec.truncation = match string(n, &t.what("truncation"))? {
            "leader-epoch" => Truncation::LeaderEpoch,
            "high-watermark" => Truncation::HighWatermark,
            other => {
                let message = format!(
                    "{} must be \"leader-epoch\" or \"high-watermark\", found {}",
                    t.what("truncation"),
                    q(other)
                );
                return fail(n.pos(), message);
            }
        };
    }
    let flag = |key: &str, value: &mut bool| -> Res<()> {
        if let Some(b) = t.opt(key, boolean)? {
            *value = b;
        }
        Ok(())
    };
    flag(
        "eligible-leader-replicas",
        &mut spec.eligible_leader_replicas,
    )?;
    flag("broker-epoch-check", &mut spec.broker_epoch_check)?;
    flag("check-quorum", &mut spec.check_quorum)?;
    flag("offset-commit-fencing", &mut spec.offset_commit_fencing)?;
    if let Some(v) = t.opt("transaction-version", |n, w| int_in(n, w, 1, 2))? {
        spec.transaction_version = v as u8;
    }
    Ok(spec)
}

fn network(node: Option<&Node>) -> Res<NetworkSpec> {
    let mut spec = NetworkSpec {
        latency_us: RangeUs {
            lo: 1_000,
            hi: 5_000,
        },
        loss: 0.0,
    };
    if let Some(node) = node {
        let t = Table::of(node, "[network]")?;
        t.allow(&["latency", "loss"], &[], "")?;
        spec.latency_us = t.opt("latency", range_us)?.unwrap_or(spec.latency_us);
        spec.loss = t.opt("loss", probability)?.unwrap_or(spec.loss);
    }
    Ok(spec)
}

fn disk(node: Option<&Node>) -> Res<DiskSpec> {
    let mut spec = DiskSpec {
        latency_us: RangeUs { lo: 100, hi: 2_000 },
        writeback_ms: 30_000,
    };
    if let Some(node) = node {
        let t = Table::of(node, "[disk]")?;
        t.allow(&["latency", "writeback"], &[], "")?;
        spec.latency_us = t.opt("latency", range_us)?.unwrap_or(spec.latency_us);
        spec.writeback_ms = t
            .opt("writeback", |n, w| ms_at_least(n, w, 0))?
            .unwrap_or(spec.writeback_ms);
    }
    Ok(spec)
}

/// `[[key]]`: an array of tables.
fn array_of_tables<'a>(node: Option<&'a Node>, key: &str) -> Res<&'a [Node]> {
    let Some(node) = node else {
        return Ok(&[]);
    };
    match &node.kind {
        Kind::Array(items) => Ok(items),
        Kind::Table(_) => fail(
            node.pos(),
            format!("`{key}` must be an array of tables: write [[{key}]], not [{key}]"),
        ),
        _ => fail(
            node.pos(),
            format!(
                "`{key}` must be an array of tables ([[{key}]]), found {}",
                found(node)
            ),
        ),
    }
}

// Kafka configs ---------------------------------------------------------------------------------

/// A table of Kafka configs by their names. Dotted keys written bare (`min.insync.replicas = 2`)
/// are TOML sub-tables; they are joined back into the config's name.
fn kafka_configs(node: &Node, scopes: &[Scope], name: &str) -> Res<Configs> {
    let t = Table::of(node, name)?;
    let mut flat = Vec::new();
    flatten(t.entries, "", &mut flat);
    let mut out = Configs::new();
    for (config, key, value) in flat {
        let Some(def) = scopes.iter().find_map(|&s| configs::lookup(s, &config)) else {
            let kind = scopes
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(" or ");
            let hint = configs::unknown_hint(scopes[0], &config);
            return fail(
                key.pos(),
                format!("unknown {kind} config {} in {name}{hint}", q(&config)),
            );
        };
        let what = format!("config {} in {name}", q(&config));
        let raw = config_value(value, def, &what)?;
        let checked = configs::check(def, raw).map_err(|m| Fail {
            pos: value.pos(),
            message: format!("{what}: {m}"),
        })?;
        if out.insert(config.clone(), checked).is_some() {
            return fail(key.pos(), format!("{what} is set twice"));
        }
    }
    Ok(out)
}

fn flatten<'a>(
    entries: &'a [(Key, Node)],
    prefix: &str,
    out: &mut Vec<(String, &'a Key, &'a Node)>,
) {
    for (key, value) in entries {
        let name = format!("{prefix}{}", key.name);
        match &value.kind {
            Kind::Table(inner) => flatten(inner, &format!("{name}."), out),
            _ => out.push((name, key, value)),
        }
    }
}

fn config_value(node: &Node, def: &configs::ConfigDef, what: &str) -> Res<ConfigValue> {
    let wrong = || {
        let message = format!(
            "{what}: expected {}, found {}",
            configs::type_phrase(def.ty),
            found(node)
        );
        fail(node.pos(), message)
    };
    match &node.kind {
        Kind::Str(s) => Ok(ConfigValue::Str(s.clone())),
        Kind::Int(v) => Ok(ConfigValue::Int(*v)),
        Kind::Float(v) => Ok(ConfigValue::Float(*v)),
        Kind::Bool(v) => Ok(ConfigValue::Bool(*v)),
        // Kafka's LIST, written as a TOML array.
        Kind::Array(items) if matches!(def.ty, configs::ConfigType::ListOf(_)) => {
            let items: Vec<&str> = items
                .iter()
                .map(|i| string(i, &format!("each item of {what}")))
                .collect::<Res<_>>()?;
            Ok(ConfigValue::Str(items.join(",")))
        }
        _ => wrong(),
    }
}

// Topics ------------------------------------------------------------------------------------------

fn topics(node: Option<&Node>, cluster: &ClusterSpec) -> Res<Vec<TopicSpec>> {
    let mut out: Vec<TopicSpec> = Vec::new();
    for (i, node) in array_of_tables(node, "topic")?.iter().enumerate() {
        let topic = topic(node, i + 1, cluster)?;
        if out.iter().any(|t| t.name == topic.name) {
            let at = Table::of(node, "")?.get("name").and_then(Node::pos);
            return fail(at, format!("topic {} is declared twice", q(&topic.name)));
        }
        out.push(topic);
    }
    Ok(out)
}

fn topic(node: &Node, index: usize, cluster: &ClusterSpec) -> Res<TopicSpec> {
    let mut t = Table::of(node, format!("[[topic]] #{index}"))?;
    t.name_by("name", "[[topic]]");
    t.allow(
        &[
            "name",
            "partitions",
            "replication-factor",
            "config",
            "assignment",
        ],
        &[],
        "",
    )?;
    let name_node = t.req("name")?;
    let name = string(name_node, &t.what("name"))?.to_string();
    check_topic_name(&name).map_err(|m| Fail {
        pos: name_node.pos(),
        message: m,
    })?;
    // As in Kafka's CreateTopics without counts: the broker's defaults.
    let default_partitions =
        configs::get_i64(&cluster.config, "num.partitions", Scope::Broker).unwrap_or(1);
    let default_rf =
        configs::get_i64(&cluster.config, "default.replication.factor", Scope::Broker).unwrap_or(1);
    let partitions = t.opt("partitions", |n, w| u32_in(n, w, 1, MAX_PARTITIONS))?;
    let partitions =
        partitions.unwrap_or(default_partitions.clamp(1, MAX_PARTITIONS.into()) as u32);
    let rf = t.opt("replication-factor", |n, w| u32_in(n, w, 1, MAX_NODES))?;
    let replication_factor = rf.unwrap_or(default_rf.clamp(1, MAX_NODES.into()) as u32);
    if replication_factor > cluster.brokers {
        let at = t.get("replication-factor").and_then(Node::pos).or(t.pos);
        let brokers = plural(cluster.brokers, "broker");
        let message = format!("topic {name} has replication-factor {replication_factor} but the cluster has {brokers}");
        return fail(at, message);
    }
    let config_name = format!("the config of topic {}", q(&name));
    let config = t
        .opt("config", |n, _| {
            kafka_configs(n, &[Scope::Topic], &config_name)
        })?
        .unwrap_or_default();
    let assignment = t.opt("assignment", |n, w| {
        assignment(n, w, partitions, replication_factor, cluster.brokers)
    })?;
    Ok(TopicSpec {
        name,
        partitions,
        replication_factor,
        config,
        assignment,
    })
}

fn plural(n: u32, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Kafka's rule for topic names (`Topic.validate`), and its internal topics kept out.
fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("{} is not a legal topic name", q(name)));
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name {} is longer than Kafka's 249 characters",
            q(name)
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("topic name {} has the character {c:?}: Kafka allows only a-z, A-Z, 0-9, '.', '_' and '-'", q(name)));
    }
    if name == "__consumer_offsets" || name == "__transaction_state" {
        return Err(format!("{} is one of Kafka's internal topics", q(name)));
    }
    Ok(())
}

fn assignment(
    node: &Node,
    what: &str,
    partitions: u32,
    rf: u32,
    brokers: u32,
) -> Res<Vec<Vec<u32>>> {
    let rows = array(node, what)?;
    if rows.len() != partitions as usize {
        let message = format!(
            "{what} must have one list per partition: {}, found {}",
            partitions,
            rows.len()
        );
        return fail(node.pos(), message);
    }
    let mut out = Vec::with_capacity(rows.len());
    for (p, row) in rows.iter().enumerate() {
        let row_what = format!("partition {p} of {what}");
        let replicas = array(row, &row_what)?;
        if replicas.len() != rf as usize {
            return fail(
                row.pos(),
                format!(
                    "{row_what} must list {rf} replicas (the replication-factor), found {}",
                    replicas.len()
                ),
            );
        }
        let mut ids = Vec::with_capacity(replicas.len());
        for replica in replicas {
            let id = u32_in(replica, &format!("each broker of {row_what}"), 1, brokers)?;
            if ids.contains(&id) {
                return fail(replica.pos(), format!("{row_what} lists broker {id} twice"));
            }
            ids.push(id);
        }
        out.push(ids);
    }
    Ok(out)
}

// Clients -----------------------------------------------------------------------------------------

const CLIENT_KEYS: &[&str] = &[
    "type", "id", "topic", "topics", "group", "members", "rate", "count", "keys", "at", "config",
];

fn client_keys(kind: ClientKind) -> &'static [&'static str] {
    match kind {
        ClientKind::Producer | ClientKind::Transactional => &[
            "type", "id", "at", "config", "topic", "rate", "count", "keys",
        ],
        ClientKind::Consumer => &["type", "id", "at", "config", "topics", "group", "members"],
        ClientKind::Pipeline => &[
            "type", "id", "at", "config", "topics", "topic", "group", "members",
        ],
    }
}

fn client_kind_name(kind: ClientKind) -> &'static str {
    match kind {
        ClientKind::Producer => "producer",
        ClientKind::Consumer => "consumer",
        ClientKind::Transactional => "transactional",
        ClientKind::Pipeline => "pipeline",
    }
}

fn clients(
    node: Option<&Node>,
    topics: &[TopicSpec],
    duration_ms: u64,
    lines: &Lines,
) -> Res<Vec<ClientSpec>> {
    let mut out: Vec<ClientSpec> = Vec::new();
    for (i, node) in array_of_tables(node, "client")?.iter().enumerate() {
        let client = client(node, i + 1, topics, duration_ms, lines)?;
        let id_pos = Table::of(node, "")?.get("id").and_then(Node::pos);
        if out.iter().any(|c| c.id == client.id) {
            return fail(id_pos, format!("client id {} is used twice", q(&client.id)));
        }
        out.push(client);
    }
    // A group's members are named `<id>-1` … `<id>-N`: no client may take one of those names.
    for c in out.iter().filter(|c| c.group.is_some()) {
        if let Some(clash) = out
            .iter()
            .find(|o| (1..=c.members).any(|m| o.id == format!("{}-{m}", c.id)))
        {
            let message = format!(
                "client id {} is also the name of a member of client {}",
                q(&clash.id),
                q(&c.id)
            );
            return fail(lines_pos(lines, clash.line), message);
        }
    }
    Ok(out)
}

/// The offset of the start of a line, to point back at a line recorded earlier.
fn lines_pos(lines: &Lines, line: usize) -> Option<usize> {
    match line {
        0 => None,
        1 => Some(0),
        n => lines.starts.get(n - 2).copied(),
    }
}

fn client(
    node: &Node,
    index: usize,
    topics: &[TopicSpec],
    duration_ms: u64,
    lines: &Lines,
) -> Res<ClientSpec> {
    let mut t = Table::of(node, format!("[[client]] #{index}"))?;
    t.name_by("id", "[[client]]");
    let type_node = t.req("type")?;
    let kind = match string(type_node, &t.what("type"))? {
        "producer" => ClientKind::Producer,
        "consumer" => ClientKind::Consumer,
        "transactional" => ClientKind::Transactional,
        "pipeline" => ClientKind::Pipeline,
        other => {
            let message = format!(
                "unknown client type {} (types: producer, consumer, transactional, pipeline)",
                q(other)
            );
            return fail(type_node.pos(), message);
        }
    };
    let kind_name = client_kind_name(kind);
    t.allow(
        client_keys(kind),
        CLIENT_KEYS,
        &format!("does not apply to a {kind_name} client"),
    )?;
    let id_node = t.req("id")?;
    let id = string(id_node, &t.what("id"))?.to_string();
    check_client_id(&id).map_err(|m| Fail {
        pos: id_node.pos(),
        message: m,
    })?;
    let start_ms = t.opt("at", |n, w| ms_at_least(n, w, 0))?.unwrap_or(0);
    if start_ms >= duration_ms {
        let at = t.get("at").and_then(Node::pos);
        return fail(
            at,
            format!(
                "client {} starts at {}, when the scenario has ended ({})",
                q(&id),
                show_ms(start_ms),
                show_ms(duration_ms)
            ),
        );
    }
    let topic_of = |key: &str| -> Res<Option<String>> {
        t.opt(key, |n, w| {
            let name = string(n, w)?;
            declared_topic(topics, name).map_err(|m| Fail {
                pos: n.pos(),
                message: format!("{w}: {m}"),
            })?;
            Ok(name.to_string())
        })
    };
    let topic = topic_of("topic")?;
    let mut topics_read = Vec::new();
    if let Some(n) = t.get("topics") {
        let what = t.what("topics");
        for (name, item) in strings(n, &what)? {
            declared_topic(topics, name).map_err(|m| Fail {
                pos: item.pos(),
                message: format!("{what}: {m}"),
            })?;
            if topics_read.iter().any(|t: &String| t == name) {
                return fail(item.pos(), format!("{what} lists topic {} twice", q(name)));
            }
            topics_read.push(name.to_string());
        }
        if topics_read.is_empty() {
            return fail(n.pos(), format!("{what} must name at least one topic"));
        }
    }
    let scopes: &[Scope] = match kind {
        ClientKind::Producer | ClientKind::Transactional => &[Scope::Producer],
        ClientKind::Consumer => &[Scope::Consumer],
        ClientKind::Pipeline => &[Scope::Consumer, Scope::Producer],
    };
    let config_name = format!("the config of client {}", q(&id));
    let config = t
        .opt("config", |n, _| kafka_configs(n, scopes, &config_name))?
        .unwrap_or_default();
    let group = client_group(&t, &config)?;
    let members = t
        .opt("members", |n, w| u32_in(n, w, 1, MAX_NODES))?
        .unwrap_or(1);
    let spec = ClientSpec {
        kind,
        id,
        topic,
        topics: topics_read,
        group,
        members,
        rate_per_s: t.opt("rate", rate_per_s)?,
        count: t
            .opt("count", |n, w| int_in(n, w, 1, i64::MAX))?
            .map(|c| c as u64),
        keys: t.opt("keys", keys)?.unwrap_or(Keys::Random),
        start_ms,
        config,
        line: lines.line_of(node),
    };
    check_client(&t, &spec)?;
    Ok(spec)
}

/// Client ids name history processes and fault targets: no spaces, no brackets, and nothing a
/// node target could be mistaken for.
fn check_client_id(id: &str) -> Result<(), String> {
    let legal = !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !legal {
        return Err(format!(
            "client id {} must be 1 to 100 of a-z, A-Z, 0-9, '.', '_' and '-'",
            q(id)
        ));
    }
    let node_like = ["broker-", "controller-"].iter().any(|p| {
        id.strip_prefix(p)
            .is_some_and(|n| n == "*" || n == "leader" || n.parse::<u32>().is_ok())
    });
    if node_like {
        return Err(format!(
            "client id {} would read as a node target; choose another",
            q(id)
        ));
    }
    Ok(())
}

fn declared_topic<'t>(topics: &'t [TopicSpec], name: &str) -> Result<&'t TopicSpec, String> {
    topics.iter().find(|t| t.name == name).ok_or_else(|| {
        let known: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        let known = if known.is_empty() {
            "none are declared".to_string()
        } else {
            format!("declared: {}", known.join(", "))
        };
        format!("unknown topic {} ({known})", q(name))
    })
}

fn keys(node: &Node, what: &str) -> Res<Keys> {
    match string(node, what)? {
        "random" => Ok(Keys::Random),
        "none" => Ok(Keys::None),
        "sequential" => Ok(Keys::Sequential),
        other => fail(
            node.pos(),
            format!(
                "{what} must be \"random\", \"none\" or \"sequential\", found {}",
                q(other)
            ),
        ),
    }
}

/// The group: `group`, or the config's `group.id`; both must agree.
fn client_group(t: &Table, config: &Configs) -> Res<Option<String>> {
    let from_config = config
        .get("group.id")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let Some(n) = t.get("group") else {
        return Ok(from_config);
    };
    let group = string(n, &t.what("group"))?;
    if group.is_empty()
        || !group
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return fail(
            n.pos(),
            format!(
                "{} must be 1 or more of a-z, A-Z, 0-9, '.', '_' and '-', found {}",
                t.what("group"),
                q(group)
            ),
        );
    }
    if from_config.as_deref().is_some_and(|g| g != group) {
        return fail(
            n.pos(),
            format!(
                "{} is {} but its config's group.id says otherwise",
                t.what("group"),
                q(group)
            ),
        );
    }
    Ok(Some(group.to_string()))
}

/// What each client type needs, once its keys are read.
fn check_client(t: &Table, c: &ClientSpec) -> Res<()> {
    let name = client_kind_name(c.kind);
    let produces = matches!(
        c.kind,
        ClientKind::Producer | ClientKind::Transactional | ClientKind::Pipeline
    );
    let consumes = matches!(c.kind, ClientKind::Consumer | ClientKind::Pipeline);
    if produces && c.topic.is_none() {
        return fail(
            t.pos,
            format!("{name} {} needs a `topic` to write to", q(&c.id)),
        );
    }
    if consumes && c.topics.is_empty() {
        return fail(t.pos, format!("{name} {} needs `topics` to read", q(&c.id)));
    }
    if matches!(c.kind, ClientKind::Producer | ClientKind::Transactional)
        && c.rate_per_s.is_none()
        && c.count.is_none()
    {
        return fail(
            t.pos,
            format!(
                "{name} {} needs a `rate` (like \"200/s\"), a `count`, or both",
                q(&c.id)
            ),
        );
    }
    if c.kind == ClientKind::Pipeline && c.group.is_none() {
        return fail(
            t.pos,
            format!(
                "pipeline {} needs a `group`: its offsets commit within its transactions",
                q(&c.id)
            ),
        );
    }
    if c.kind == ClientKind::Pipeline && c.topic.as_ref().is_some_and(|out| c.topics.contains(out))
    {
        let at = t.get("topic").and_then(Node::pos);
        return fail(
            at,
            format!("pipeline {} writes to a topic it reads", q(&c.id)),
        );
    }
    if c.members > 1 && c.group.is_none() {
        let at = t.get("members").and_then(Node::pos);
        return fail(
            at,
            format!(
                "{} needs a `group` for its members to share",
                t.what("members")
            ),
        );
    }
    if c.kind == ClientKind::Producer && c.config.contains_key("transactional.id") {
        let message = format!(
            "producer {} sets transactional.id: make it type = \"transactional\"",
            q(&c.id)
        );
        return fail(t.get("config").and_then(Node::pos), message);
    }
    Ok(())
}

// Faults ------------------------------------------------------------------------------------------

const FAULT_KEYS: &[&str] = &[
    "at", "when", "after", "action", "target", "groups", "from", "to", "for", "rate", "by",
    "factor", "api", "file",
];
const FAULT_COMMON: &[&str] = &["at", "when", "after", "action"];

/// The keys an action takes beyond the common ones; all but `for` and `file` are required.
fn action_keys(action: Action) -> &'static [&'static str] {
    match action {
        Action::Kill | Action::Crash | Action::Pause | Action::Isolate | Action::DiskFull => {
            &["target", "for"]
        }
        Action::Restart | Action::Resume | Action::Wipe => &["target"],
        Action::Partition => &["groups", "for"],
        Action::Heal => &[],
        Action::ClogLink => &["from", "to", "for"],
        Action::Loss => &["rate", "for"],
        Action::SlowDisk => &["target", "factor", "for"],
        Action::Corrupt => &["target", "file"],
        Action::ClockSkew => &["target", "by", "for"],
        Action::Delay => &["target", "api", "by", "for"],
    }
}

/// What a fault's references resolve against.
struct Names<'a> {
    brokers: u32,
    controllers: u32,
    topics: &'a [TopicSpec],
    clients: &'a [ClientSpec],
}

fn faults(
    node: Option<&Node>,
    names: &Names,
    duration_ms: u64,
    lines: &Lines,
) -> Res<Vec<FaultSpec>> {
    array_of_tables(node, "fault")?
        .iter()
        .enumerate()
        .map(|(i, node)| fault(node, i + 1, names, duration_ms, lines))
        .collect()
}

fn fault(
    node: &Node,
    index: usize,
    names: &Names,
    duration_ms: u64,
    lines: &Lines,
) -> Res<FaultSpec> {
    let mut t = Table::of(node, format!("[[fault]] #{index}"))?;
    let action_node = t.req("action")?;
    let action_name = string(action_node, &t.what("action"))?;
    let Some(action) = Action::from_name(action_name) else {
        let all: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        let hint = configs::closest(action_name, all.iter().copied())
            .map(|a| format!("did you mean {}? ", q(a)))
            .unwrap_or_default();
        let message = format!(
            "unknown action {} in {} ({hint}actions: {})",
            q(action_name),
            t.name,
            all.join(", ")
        );
        return fail(action_node.pos(), message);
    };
    t.name = format!("[[fault]] #{index} ({action})");
    let takes = action_keys(action);
    let allowed: Vec<&str> = FAULT_COMMON.iter().chain(takes).copied().collect();
    t.allow(
        &allowed,
        FAULT_KEYS,
        &format!("does not apply to action {}", q(action.name())),
    )?;
    for key in takes.iter().filter(|k| !matches!(**k, "for" | "file")) {
        t.req(key)?;
    }
    let trigger = trigger(&t, names, duration_ms)?;
    let target = t.opt("target", |n, w| fault_target(n, w, names, action))?;
    let (from, to) = (
        t.opt("from", |n, w| target_at(n, w, names))?,
        t.opt("to", |n, w| target_at(n, w, names))?,
    );
    if from.is_some() && from == to {
        return fail(
            t.get("to").and_then(Node::pos),
            format!("{} is the same node as `from`", t.what("to")),
        );
    }
    let by_ms = t.opt("by", |n, w| {
        let by = duration_ms_of(n, w, action == Action::ClockSkew)?;
        if by == 0 {
            return fail(n.pos(), format!("{w} must not be zero"));
        }
        Ok(by)
    })?;
    Ok(FaultSpec {
        trigger,
        after_ms: t.opt("after", |n, w| ms_at_least(n, w, 0))?.unwrap_or(0),
        action,
        target,
        groups: t
            .opt("groups", |n, w| partition_groups(n, w, names))?
            .unwrap_or_default(),
        from,
        to,
        for_ms: t.opt("for", positive_ms)?,
        rate: t.opt("rate", probability)?,
        by_ms,
        factor: t.opt("factor", slowdown)?,
        api: t.opt("api", api_name)?,
        file: t.opt("file", |n, w| {
            let file = string(n, w)?;
            if file.is_empty() {
                return fail(n.pos(), format!("{w} must not be empty"));
            }
            Ok(file.to_string())
        })?,
        line: lines.line_of(node),
    })
}

fn trigger(t: &Table, names: &Names, duration_ms: u64) -> Res<Trigger> {
    match (t.get("at"), t.get("when")) {
        (Some(_), Some(when)) => fail(
            when.pos(),
            format!("{} has both `at` and `when`: give exactly one", t.name),
        ),
        (None, None) => fail(
            t.pos,
            format!("{} needs `at` (a time) or `when` (a condition)", t.name),
        ),
        (Some(at), None) => {
            let ms = ms_at_least(at, &t.what("at"), 0)?;
            if ms >= duration_ms {
                let message = format!(
                    "{} is {}, when the scenario has ended ({})",
                    t.what("at"),
                    show_ms(ms),
                    show_ms(duration_ms)
                );
                return fail(at.pos(), message);
            }
            Ok(Trigger::At(ms))
        }
        (None, Some(when)) => {
            let what = t.what("when");
            let text = string(when, &what)?;
            let condition = parse_condition(text, names).map_err(|m| Fail {
                pos: when.pos(),
                message: format!("{what}: {m}"),
            })?;
            Ok(Trigger::When(condition))
        }
    }
}

fn target_at(node: &Node, what: &str, names: &Names) -> Res<Target> {
    let text = string(node, what)?;
    names.target(text).map_err(|m| Fail {
        pos: node.pos(),
        message: format!("{what}: {m}"),
    })
}

fn fault_target(node: &Node, what: &str, names: &Names, action: Action) -> Res<Target> {
    let target = target_at(node, what, names)?;
    let on_disk = matches!(
        action,
        Action::Wipe | Action::SlowDisk | Action::DiskFull | Action::Corrupt
    );
    if on_disk {
        if let Target::Client(id) = &target {
            return fail(
                node.pos(),
                format!(
                    "{what}: {} acts on a disk, and client {} has none",
                    q(action.name()),
                    q(id)
                ),
            );
        }
    }
    Ok(target)
}

fn partition_groups(node: &Node, what: &str, names: &Names) -> Res<Vec<Vec<Target>>> {
    let sides = array(node, what)?;
    if sides.len() < 2 {
        return fail(node.pos(), format!("{what} must list at least two groups, like [[\"broker-1\"], [\"broker-2\", \"broker-3\"]]"));
    }
    let mut out: Vec<Vec<Target>> = Vec::with_capacity(sides.len());
    for side in sides {
        let members = strings(side, &format!("each group of {what}"))?;
        if members.is_empty() {
            return fail(side.pos(), format!("{what} has an empty group"));
        }
        let mut group = Vec::with_capacity(members.len());
        for (text, item) in members {
            let target = target_at(item, what, names)?;
            let overlaps = |t: &Target| overlap(t, &target);
            if out.iter().flatten().chain(group.iter()).any(overlaps) {
                return fail(item.pos(), format!("{what} puts {} in two groups", q(text)));
            }
            group.push(target);
        }
        out.push(group);
    }
    Ok(out)
}

/// Two targets that certainly name a common node (the dynamic ones are resolved only when the
/// fault fires).
fn overlap(a: &Target, b: &Target) -> bool {
    match (a, b) {
        (Target::AllBrokers, Target::Broker(_) | Target::AllBrokers)
        | (Target::Broker(_), Target::AllBrokers)
        | (
            Target::AllControllers,
            Target::Controller(_) | Target::AllControllers | Target::ControllerLeader,
        )
        | (Target::Controller(_) | Target::ControllerLeader, Target::AllControllers) => true,
        _ => a == b,
    }
}

fn slowdown(node: &Node, what: &str) -> Res<f64> {
    let factor = match node.kind {
        Kind::Int(v) => v as f64,
        Kind::Float(v) => v,
        _ => {
            return fail(
                node.pos(),
                format!("{what} must be a number above 1, found {}", found(node)),
            )
        }
    };
    if !(factor.is_finite() && factor > 1.0 && factor <= 1e6) {
        return fail(
            node.pos(),
            format!("{what} must be above 1 (a slowdown) and at most 1000000, found {factor}"),
        );
    }
    Ok(factor)
}

/// A Kafka API by its name in the protocol (`Produce`, `EndTxn`, `AlterPartition`, …).
fn api_name(node: &Node, what: &str) -> Res<String> {
    let name = string(node, what)?;
    let apis: Vec<String> = kafka_protocol::messages::ApiKey::iter()
        .map(|k| format!("{k:?}"))
        .collect();
    if apis.iter().any(|a| a == name) {
        return Ok(name.to_string());
    }
    let hint = configs::closest(name, apis.iter().map(String::as_str))
        .map(|a| format!("did you mean {}? ", q(a)))
        .unwrap_or_default();
    fail(node.pos(), format!("{what}: unknown Kafka API {} ({hint}e.g. Produce, Fetch, EndTxn, AddPartitionsToTxn, AlterPartition)", q(name)))
}

/// The N of `broker-N`: digits only, as written by `Display for Target`.
fn node_id(n: &str) -> Result<u32, ()> {
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || n.starts_with('0') {
        return Err(());
    }
    n.parse().map_err(|_| ())
}

impl Names<'_> {
    fn topic(&self, name: &str) -> Result<&TopicSpec, String> {
        declared_topic(self.topics, name)
    }

    fn group_declared(&self, group: &str) -> Result<(), String> {
        if self
            .clients
            .iter()
            .any(|c| c.group.as_deref() == Some(group))
        {
            return Ok(());
        }
        let groups: BTreeSet<&str> = self
            .clients
            .iter()
            .filter_map(|c| c.group.as_deref())
            .collect();
        let known = if groups.is_empty() {
            "no client has one".into()
        } else {
            format!(
                "declared: {}",
                groups.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        Err(format!("unknown group {} ({known})", q(group)))
    }

    /// `TOPIC-P`, split at the last '-' (topic names may hold '-').
    fn partition(&self, text: &str) -> Result<TopicPartition, String> {
        let Some((topic, p)) = text.rsplit_once('-') else {
            return Err(format!(
                "expected TOPIC-PARTITION like \"orders-0\", found {}",
                q(text)
            ));
        };
        let spec = self.topic(topic)?;
        let partition: u32 = p.parse().map_err(|_| {
            format!(
                "expected TOPIC-PARTITION like \"orders-0\", found {}",
                q(text)
            )
        })?;
        if partition >= spec.partitions {
            let last = spec.partitions - 1;
            return Err(format!(
                "unknown partition {}: topic {topic} has {} ({topic}-0 to {topic}-{last})",
                q(text),
                plural(spec.partitions, "partition")
            ));
        }
        Ok(TopicPartition {
            topic: topic.to_string(),
            partition,
        })
    }

    fn broker(&self, text: &str, n: &str) -> Result<u32, String> {
        match node_id(n) {
            Ok(id) if (1..=self.brokers).contains(&id) => Ok(id),
            _ => Err(format!(
                "unknown target {}: the cluster has {} (broker-1 to broker-{})",
                q(text),
                plural(self.brokers, "broker"),
                self.brokers
            )),
        }
    }

    fn needs_controllers(&self, text: &str) -> Result<(), String> {
        if self.controllers == 0 {
            return Err(format!(
                "unknown target {}: the cluster has no controllers ([cluster] controllers)",
                q(text)
            ));
        }
        Ok(())
    }

    /// A target as `CONTRACT.md` writes them.
    fn target(&self, text: &str) -> Result<Target, String> {
        let inner = |prefix: &str| {
            text.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(')'))
                .map(str::trim)
        };
        if text == "broker-*" {
            return Ok(Target::AllBrokers);
        }
        if text == "controller-*" || text == "controller-leader" {
            self.needs_controllers(text)?;
            return Ok(if text == "controller-*" {
                Target::AllControllers
            } else {
                Target::ControllerLeader
            });
        }
        if let Some(n) = text.strip_prefix("broker-") {
            return self.broker(text, n).map(Target::Broker);
        }
        if let Some(n) = text.strip_prefix("controller-") {
            self.needs_controllers(text)?;
            return match node_id(n) {
                Ok(id) if (1..=self.controllers).contains(&id) => Ok(Target::Controller(id)),
                _ => Err(format!(
                    "unknown target {}: the cluster has {} (controller-1 to controller-{})",
                    q(text),
                    plural(self.controllers, "controller"),
                    self.controllers
                )),
            };
        }
        if let Some(tp) = inner("leader(") {
            return self.partition(tp).map(Target::Leader);
        }
        if let Some(tp) = inner("follower(") {
            let tp = self.partition(tp)?;
            if self.topic(&tp.topic)?.replication_factor < 2 {
                return Err(format!(
                    "target {}: topic {} has replication-factor 1, so no followers",
                    q(text),
                    tp.topic
                ));
            }
            return Ok(Target::Follower(tp));
        }
        if let Some(group) = inner("coordinator(") {
            self.group_declared(group)?;
            return Ok(Target::Coordinator(group.to_string()));
        }
        if self.clients.iter().any(|c| c.id == text) {
            return Ok(Target::Client(text.to_string()));
        }
        Err(format!(
            "unknown target {} (targets: broker-N, controller-N, broker-*, controller-*, leader(TOPIC-P), \
             follower(TOPIC-P), controller-leader, coordinator(GROUP), or a client's id)",
            q(text)
        ))
    }
}

// Conditions --------------------------------------------------------------------------------------

/// A cursor over a `when` condition, for messages that name the character where it went wrong.
struct Cursor<'s> {
    text: &'s str,
    at: usize,
}

impl<'s> Cursor<'s> {
    fn skip_space(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.text[self.at..].starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn word(&mut self, allowed: impl Fn(char) -> bool) -> (&'s str, usize) {
        self.skip_space();
        let start = self.at;
        let rest = &self.text[start..];
        let len = rest.find(|c: char| !allowed(c)).unwrap_or(rest.len());
        self.at += len;
        (&rest[..len], self.column_of(start))
    }

    /// 1-based position, in characters.
    fn column_of(&self, byte: usize) -> usize {
        self.text[..byte].chars().count() + 1
    }

    fn expected<T>(&mut self, what: &str) -> Result<T, String> {
        self.skip_space();
        let found = match self.text[self.at..].chars().next() {
            Some(c) => format!("{c:?}"),
            None => "the end".into(),
        };
        Err(format!(
            "expected {what} at character {} of {}, found {found}",
            self.column_of(self.at),
            q(self.text)
        ))
    }
}

const FIGURES: &str =
    "acked(CLIENT), hw(TOPIC-P[, broker-N]), leo(TOPIC-P[, broker-N]), epoch(TOPIC-P), \
                       isr-size(TOPIC-P), leader(TOPIC-P), committed(GROUP, TOPIC-P)";

/// `FIGURE(args) OP NUMBER`, e.g. `hw(orders-0, broker-2) >= 10`.
fn parse_condition(text: &str, names: &Names) -> Result<Condition, String> {
    let mut c = Cursor { text, at: 0 };
    let (figure, figure_col) = c.word(|ch| ch.is_ascii_alphanumeric() || ch == '-');
    if figure.is_empty() {
        return c.expected(&format!("a figure ({FIGURES})"));
    }
    if !matches!(
        figure,
        "acked" | "hw" | "leo" | "epoch" | "isr-size" | "leader" | "committed"
    ) {
        return Err(format!(
            "unknown figure {} at character {figure_col} of {} (figures: {FIGURES})",
            q(figure),
            q(text)
        ));
    }
    if !c.eat("(") {
        return c.expected("'('");
    }
    let mut args = Vec::new();
    loop {
        let (arg, col) =
            c.word(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-' | '*'));
        if arg.is_empty() {
            return c.expected("an argument");
        }
        args.push((arg, col));
        if c.eat(")") {
            break;
        }
        if !c.eat(",") {
            return c.expected("',' or ')'");
        }
    }
    let cmp = [
        (">=", Cmp::Ge),
        ("<=", Cmp::Le),
        ("==", Cmp::Eq),
        ("!=", Cmp::Ne),
        (">", Cmp::Gt),
        ("<", Cmp::Lt),
    ]
    .into_iter()
    .find(|(token, _)| c.eat(token))
    .map(|(_, cmp)| cmp);
    let Some(cmp) = cmp else {
        return c.expected("a comparison (>=, >, <=, <, ==, !=)");
    };
    let (number, number_col) = c.word(|ch| ch.is_ascii_digit() || ch == '-');
    let Ok(value) = number.parse::<i64>() else {
        return if number.is_empty() {
            c.expected("a whole number")
        } else {
            Err(format!(
                "expected a whole number at character {number_col} of {}, found {}",
                q(text),
                q(number)
            ))
        };
    };
    c.skip_space();
    if c.at < text.len() {
        return c.expected("the end of the condition");
    }
    let figure = figure_of(figure, &args, text, names)?;
    Ok(Condition {
        figure,
        cmp,
        value,
        text: text.trim().to_string(),
    })
}

fn figure_of(
    figure: &str,
    args: &[(&str, usize)],
    text: &str,
    names: &Names,
) -> Result<Figure, String> {
    let at = |i: usize, m: String| format!("{m} (character {} of {})", args[i].1, q(text));
    let arity = |lo: usize, hi: usize, shape: &str| -> Result<(), String> {
        if (lo..=hi).contains(&args.len()) {
            Ok(())
        } else {
            Err(format!(
                "{figure} takes {shape}, found {} in {}",
                plural(args.len() as u32, "argument"),
                q(text)
            ))
        }
    };
    let tp = |i: usize| names.partition(args[i].0).map_err(|m| at(i, m));
    let replica = |i: usize| -> Result<Option<u32>, String> {
        let Some(&(arg, _)) = args.get(i) else {
            return Ok(None);
        };
        match arg.strip_prefix("broker-") {
            Some(n) => names.broker(arg, n).map(Some).map_err(|m| at(i, m)),
            None => Err(at(i, format!("expected broker-N, found {}", q(arg)))),
        }
    };
    match figure {
        "acked" => {
            arity(1, 1, "one argument, a producer's id")?;
            let id = args[0].0;
            match names.clients.iter().find(|c| c.id == id) {
                Some(c) if c.topic.is_some() => Ok(Figure::Acked(id.to_string())),
                Some(_) => Err(at(
                    0,
                    format!("client {} writes nothing to acknowledge", q(id)),
                )),
                None => Err(at(0, format!("unknown client {}", q(id)))),
            }
        }
        "hw" | "leo" => {
            arity(1, 2, "TOPIC-P and optionally broker-N")?;
            let (tp, replica) = (tp(0)?, replica(1)?);
            Ok(if figure == "hw" {
                Figure::Hw(tp, replica)
            } else {
                Figure::Leo(tp, replica)
            })
        }
        "epoch" | "isr-size" | "leader" => {
            arity(1, 1, "one argument, TOPIC-P")?;
            let tp = tp(0)?;
            Ok(match figure {
                "epoch" => Figure::Epoch(tp),
                "isr-size" => Figure::IsrSize(tp),
                _ => Figure::Leader(tp),
            })
        }
        _ => {
            arity(2, 2, "GROUP and TOPIC-P")?;
            names.group_declared(args[0].0).map_err(|m| at(0, m))?;
            Ok(Figure::Committed(args[0].0.to_string(), tp(1)?))
        }
    }
}

// Expect ------------------------------------------------------------------------------------------

fn expect(node: Option<&Node>) -> Res<Expect> {
    let Some(node) = node else {
        return Ok(Expect::default());
    };
    let t = Table::of(node, "[expect]")?;
    t.allow(&["violations", "allow"], &[], "")?;
    let violations = t.opt("violations", check_names)?.unwrap_or_default();
    let allow = t.opt("allow", check_names)?.unwrap_or_default();
    if let Some(both) = allow.iter().find(|name| violations.contains(name)) {
        let at = t.get("allow").and_then(Node::pos);
        return fail(
            at,
            format!(
                "check {} is in both `violations` and `allow` of [expect]",
                q(both)
            ),
        );
    }
    Ok(Expect { violations, allow })
}

fn check_names(node: &Node, what: &str) -> Res<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (name, item) in strings(node, what)? {
        if !CHECK_NAMES.contains(&name) {
            let hint = configs::closest(name, CHECK_NAMES.iter().copied())
                .map(|c| format!("did you mean {}? ", q(c)))
                .unwrap_or_default();
            return fail(
                item.pos(),
                format!(
                    "{what}: unknown check {} ({hint}checks: {})",
                    q(name),
                    CHECK_NAMES.join(", ")
                ),
            );
        }
        if out.iter().any(|n| n == name) {
            return fail(item.pos(), format!("{what} lists {} twice", q(name)));
        }
        out.push(name.to_string());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The document as a tree of positioned values.

mod tree {
    //! A TOML document as a tree whose every key and value knows where it was written.
    //!
    //! `toml::Spanned<T>` refuses the implicit tables that dotted keys create (`a.b = 1` gives
    //! `a` no span), so this tree speaks the same protocol itself (the names `serde_spanned` 0.6,
    //! which `toml` 0.8 uses, hands spans under) and accepts a value with or without one.

    use std::fmt;
    use std::ops::Range;

    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

    const SPANNED: &str = "$__serde_spanned_private_Spanned";
    const START: &str = "$__serde_spanned_private_start";
    const END: &str = "$__serde_spanned_private_end";
    const VALUE: &str = "$__serde_spanned_private_value";
    const FIELDS: &[&str] = &[START, END, VALUE];
    /// How `toml` hands over a date-time: a one-entry map under this key.
    const DATETIME: &str = "$__toml_private_datetime";

    /// A key of a table and the bytes where it was written, when known.
    #[derive(Clone, Debug)]
    pub struct Key {
        pub name: String,
        pub span: Option<Range<usize>>,
    }

    /// A value and the bytes where it was written, when known.
    #[derive(Clone, Debug)]
    pub struct Node {
        pub span: Option<Range<usize>>,
        pub kind: Kind,
    }

    #[derive(Clone, Debug)]
    pub enum Kind {
        Str(String),
        Int(i64),
        Float(f64),
        Bool(bool),
        Datetime(String),
        Array(Vec<Node>),
        /// Entries in the order written.
        Table(Vec<(Key, Node)>),
    }

    impl Key {
        pub fn pos(&self) -> Option<usize> {
            self.span.as_ref().map(|s| s.start)
        }
    }

    impl Node {
        pub fn pos(&self) -> Option<usize> {
            self.span.as_ref().map(|s| s.start)
        }
    }

    pub fn parse(text: &str) -> Result<Node, toml::de::Error> {
        toml::from_str::<Node>(text)
    }

    impl<'de> Deserialize<'de> for Key {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_struct(SPANNED, FIELDS, KeyVisitor)
        }
    }

    struct KeyVisitor;

    impl<'de> Visitor<'de> for KeyVisitor {
        type Value = Key;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a key")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
            Ok(Key {
                name: v.to_string(),
                span: None,
            })
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
            let first = map.next_key::<String>()?.unwrap_or_default();
            let (span, name) = spanned_rest::<A, String>(&mut map, &first)?;
            Ok(Key {
                name,
                span: Some(span),
            })
        }
    }

    /// Reads the rest of a spanned value (`start`, `end`, `value`) once its first key is read.
    fn spanned_rest<'de, A, T>(map: &mut A, first: &str) -> Result<(Range<usize>, T), A::Error>
    where
        A: MapAccess<'de>,
        T: Deserialize<'de>,
    {
        expect_key::<A>(first, START)?;
        let start: usize = map.next_value()?;
        expect_key::<A>(&map.next_key::<String>()?.unwrap_or_default(), END)?;
        let end: usize = map.next_value()?;
        expect_key::<A>(&map.next_key::<String>()?.unwrap_or_default(), VALUE)?;
        let value: T = map.next_value()?;
        Ok((start..end, value))
    }

    fn expect_key<'de, A: MapAccess<'de>>(got: &str, want: &str) -> Result<(), A::Error> {
        if got == want {
            Ok(())
        } else {
            Err(de::Error::custom(format!(
                "unexpected key {got:?} in a spanned value"
            )))
        }
    }

    impl<'de> Deserialize<'de> for Node {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_struct(SPANNED, FIELDS, NodeVisitor)
        }
    }

    impl<'de> Deserialize<'de> for Kind {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(KindVisitor)
        }
    }

    /// A value that may come wrapped in its span.
    struct NodeVisitor;

    /// A bare value.
    struct KindVisitor;

    macro_rules! visit_scalars_and_arrays {
        ($wrap:expr) => {
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok($wrap(Kind::Bool(v)))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok($wrap(Kind::Int(v)))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                match i64::try_from(v) {
                    Ok(v) => Ok($wrap(Kind::Int(v))),
                    Err(_) => Err(E::custom(format!("the integer {v} is too large"))),
                }
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok($wrap(Kind::Float(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok($wrap(Kind::Str(v.to_string())))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok($wrap(Kind::Array(items)))
            }
        };
    }

    fn bare(kind: Kind) -> Node {
        Node { span: None, kind }
    }

    impl<'de> Visitor<'de> for NodeVisitor {
        type Value = Node;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a TOML value")
        }

        visit_scalars_and_arrays!(bare);

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
            match map.next_key::<Key>()? {
                Some(first) if first.name == START => {
                    let (span, kind) = spanned_rest::<A, Kind>(&mut map, &first.name)?;
                    Ok(Node {
                        span: Some(span),
                        kind,
                    })
                }
                first => Ok(bare(map_rest(first, &mut map)?)),
            }
        }
    }

    impl<'de> Visitor<'de> for KindVisitor {
        type Value = Kind;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a TOML value")
        }

        visit_scalars_and_arrays!(std::convert::identity);

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
            let first = map.next_key::<Key>()?;
            map_rest(first, &mut map)
        }
    }

    /// A table, or a date-time, whose first key is read.
    fn map_rest<'de, A: MapAccess<'de>>(first: Option<Key>, map: &mut A) -> Result<Kind, A::Error> {
        let Some(first) = first else {
            return Ok(Kind::Table(Vec::new()));
        };
        if first.name == DATETIME {
            let text: String = map.next_value()?;
            return Ok(Kind::Datetime(text));
        }
        let mut entries = Vec::new();
        let mut key = Some(first);
        while let Some(k) = key {
            let mut value: Node = map.next_value()?;
            if value.span.is_none() {
                // An implicit table (`a.b = 1` makes `a`): point at its key.
                value.span = k.span.clone();
            }
            entries.push((k, value));
            key = map.next_key::<Key>()?;
        }
        Ok(Kind::Table(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The example of `CONTRACT.md`, "Scenario files".
    const EXAMPLE: &str = r#"name = "leader-failover"
summary = "The leader of orders-0 crashes under acks=all load; no acknowledged write is lost."
duration = "60s"                      # simulated time
seed = 1                              # default seed; --seed overrides

[cluster]
brokers = 3
controllers = 3                       # KRaft quorum voters, on nodes of their own

[cluster.config]                      # broker configs, by their Kafka names
"min.insync.replicas" = 2
"unclean.leader.election.enable" = false
"replica.lag.time.max.ms" = 10000

[protocol]                            # historical variants, for teaching; the default is today's Kafka
truncation = "leader-epoch"           # or "high-watermark": the follower truncates to its HW on restart (before KIP-101)

[network]
latency = "1ms..5ms"
loss = 0.0

[disk]
latency = "100us..2ms"
writeback = "30s"                     # the OS writes dirty pages back after this long (Linux's dirty_expire)

[[topic]]
name = "orders"
partitions = 3
replication-factor = 3
config = { "retention.ms" = 604800000 }
# assignment = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]   # optional: replicas per partition, preferred leader first

[[client]]
type = "producer"                     # producer | consumer | transactional | pipeline
id = "p1"
topic = "orders"
rate = "200/s"
keys = "random"                       # random | none | sequential
config = { "acks" = "all", "enable.idempotence" = true }

[[client]]
type = "consumer"
id = "c"
group = "g1"
members = 2
topics = ["orders"]
config = { "isolation.level" = "read_committed", "enable.auto.commit" = false }

[[fault]]
at = "10s"
action = "crash"
target = "leader(orders-0)"

[[fault]]
at = "25s"
action = "partition"
groups = [["broker-1"], ["broker-2", "broker-3", "controller-*"]]
for = "10s"

[expect]
violations = []                       # e.g. ["lost-write"]: each of these must be found
allow = []                            # these may be found; anything found outside both lists fails the run
"#;

    /// A small valid scenario that the bad inputs below extend.
    const BASE: &str = r#"name = "base"
duration = "60s"

[cluster]
brokers = 3
controllers = 1

[[topic]]
name = "my-orders"
partitions = 2
replication-factor = 3

[[client]]
type = "producer"
id = "p1"
topic = "my-orders"
rate = "100/s"

[[client]]
type = "consumer"
id = "c1"
group = "g1"
topics = ["my-orders"]
"#;

    fn tp(topic: &str, partition: u32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// 1-based line of the first line of `text` that holds `needle`.
    fn line_of(text: &str, needle: &str) -> usize {
        text.lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in text"))
            + 1
    }

    /// Parses `text`, expects an error on the line holding `needle`, whose message holds every phrase.
    fn refused(text: &str, needle: &str, phrases: &[&str]) -> ScenarioError {
        let e = match parse_str("bad.toml", text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        };
        assert_eq!(e.line, Some(line_of(text, needle)), "line of {e}");
        for phrase in phrases {
            assert!(e.message.contains(phrase), "{phrase:?} not in {e}");
        }
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("bad.toml:{}: ", line_of(text, needle))),
            "{shown}"
        );
        assert!(!shown.contains('\n'), "{shown}");
        e
    }

    fn with(extra: &str) -> String {
        format!("{BASE}\n{extra}")
    }

    #[test]
    fn the_contract_example_round_trips() {
        let s = parse_str("leader-failover.toml", EXAMPLE).unwrap();
        assert_eq!(s.name, "leader-failover");
        assert!(s.summary.starts_with("The leader of orders-0 crashes"));
        assert_eq!((s.duration_ms, s.seed, s.recovery_ms), (60_000, 1, None));
        assert_eq!((s.cluster.brokers, s.cluster.controllers), (3, 3));
        let cfg = &s.cluster.config;
        assert_eq!(cfg.len(), 3);
        assert_eq!(cfg["min.insync.replicas"], ConfigValue::Int(2));
        assert_eq!(
            cfg["unclean.leader.election.enable"],
            ConfigValue::Bool(false)
        );
        assert_eq!(cfg["replica.lag.time.max.ms"], ConfigValue::Int(10_000));
        assert_eq!(s.protocol.truncation, Truncation::LeaderEpoch);
        assert!(s.protocol.eligible_leader_replicas && s.protocol.check_quorum);
        assert_eq!(
            s.network.latency_us,
            RangeUs {
                lo: 1_000,
                hi: 5_000
            }
        );
        assert_eq!(s.network.loss, 0.0);
        assert_eq!(s.disk.latency_us, RangeUs { lo: 100, hi: 2_000 });
        assert_eq!(s.disk.writeback_ms, 30_000);

        assert_eq!(s.topics.len(), 1);
        let t = &s.topics[0];
        assert_eq!(
            (t.name.as_str(), t.partitions, t.replication_factor),
            ("orders", 3, 3)
        );
        assert_eq!(t.config["retention.ms"], ConfigValue::Int(604_800_000));
        assert_eq!(t.assignment, None);

        assert_eq!(s.clients.len(), 2);
        let p = &s.clients[0];
        assert_eq!(
            (p.kind, p.id.as_str(), p.topic.as_deref()),
            (ClientKind::Producer, "p1", Some("orders"))
        );
        assert_eq!(
            (p.rate_per_s, p.count, p.keys, p.start_ms),
            (Some(200.0), None, Keys::Random, 0)
        );
        assert_eq!(p.config["acks"], ConfigValue::Str("all".into()));
        assert_eq!(p.config["enable.idempotence"], ConfigValue::Bool(true));
        assert_eq!(p.line, line_of(EXAMPLE, "id = \"p1\"") - 2);
        let c = &s.clients[1];
        assert_eq!(
            (c.kind, c.id.as_str(), c.group.as_deref(), c.members),
            (ClientKind::Consumer, "c", Some("g1"), 2)
        );
        assert_eq!(c.topics, vec!["orders".to_string()]);
        assert_eq!(
            c.config["isolation.level"],
            ConfigValue::Str("read_committed".into())
        );
        assert_eq!(c.config["enable.auto.commit"], ConfigValue::Bool(false));

        assert_eq!(s.faults.len(), 2);
        let crash = &s.faults[0];
        assert_eq!(
            (crash.trigger.clone(), crash.action, crash.after_ms),
            (Trigger::At(10_000), Action::Crash, 0)
        );
        assert_eq!(crash.target, Some(Target::Leader(tp("orders", 0))));
        assert_eq!(crash.line, line_of(EXAMPLE, "at = \"10s\"") - 1);
        let split = &s.faults[1];
        assert_eq!(
            (split.trigger.clone(), split.action, split.for_ms),
            (Trigger::At(25_000), Action::Partition, Some(10_000))
        );
        assert_eq!(
            split.groups,
            vec![
                vec![Target::Broker(1)],
                vec![Target::Broker(2), Target::Broker(3), Target::AllControllers]
            ]
        );
        assert!(s.expect.violations.is_empty() && s.expect.allow.is_empty());
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let s = parse_str("t.toml", "name = \"tiny\"\nduration = \"1s\"\n").unwrap();
        assert_eq!(
            (s.seed, s.cluster.brokers, s.cluster.controllers),
            (1, 1, 0)
        );
        assert_eq!(
            s.network.latency_us,
            RangeUs {
                lo: 1_000,
                hi: 5_000
            }
        );
        assert_eq!(s.disk.latency_us, RangeUs { lo: 100, hi: 2_000 });
        assert_eq!(s.disk.writeback_ms, 30_000);
        assert_eq!(
            s.protocol.transaction_version,
            ProtocolSpec::default().transaction_version
        );
        assert!(s.topics.is_empty() && s.clients.is_empty() && s.faults.is_empty());
    }

    #[test]
    fn every_feature_reads_into_the_model() {
        let text = with(
            r#"
[protocol]
truncation = "high-watermark"
eligible-leader-replicas = false
transaction-version = 1

[[topic]]
name = "out"
replication-factor = 2
assignment = [[1, 2]]
config = { cleanup.policy = ["compact", "delete"], min.insync.replicas = 2 }

[[client]]
type = "pipeline"
id = "pipe"
group = "g2"
topics = ["my-orders"]
topic = "out"
config = { "isolation.level" = "read_committed", "transactional.id" = "pipe-tx" }

[[client]]
type = "transactional"
id = "tx"
topic = "out"
count = 50
keys = "sequential"
at = "2.5s"

[[fault]]
when = "hw(my-orders-1, broker-2) >= 10"
after = "100ms"
action = "clock-skew"
target = "broker-2"
by = "-5s"

[[fault]]
when = " committed( g1 , my-orders-0 )!=-1"
action = "delay"
target = "pipe"
api = "EndTxn"
by = "2s"
for = "1m"

[[fault]]
at = "1.5s"
action = "clog-link"
from = "controller-leader"
to = "coordinator(g2)"

[[fault]]
at = "2s"
action = "slow-disk"
target = "follower(out-0)"
factor = 10

[[fault]]
at = "3s"
action = "loss"
rate = 0.2
for = "500ms"

[[fault]]
at = "4s"
action = "heal"

[[fault]]
when = "acked(tx) > 3"
action = "corrupt"
target = "broker-*"
file = "out-0/*.log"

[expect]
violations = ["lost-write"]
allow = ["duplicate", "unavailable"]
"#,
        );
        let s = parse_str("t.toml", &text).unwrap();
        assert_eq!(s.protocol.truncation, Truncation::HighWatermark);
        assert!(!s.protocol.eligible_leader_replicas);
        assert_eq!(s.protocol.transaction_version, 1);
        let out = &s.topics[1];
        assert_eq!((out.partitions, out.replication_factor), (1, 2));
        assert_eq!(out.assignment, Some(vec![vec![1, 2]]));
        assert_eq!(
            out.config["cleanup.policy"],
            ConfigValue::Str("compact,delete".into())
        );
        assert_eq!(out.config["min.insync.replicas"], ConfigValue::Int(2));
        let pipe = &s.clients[2];
        assert_eq!(
            (pipe.kind, pipe.topic.as_deref(), pipe.group.as_deref()),
            (ClientKind::Pipeline, Some("out"), Some("g2"))
        );
        let tx = &s.clients[3];
        assert_eq!(
            (tx.count, tx.keys, tx.start_ms, tx.rate_per_s),
            (Some(50), Keys::Sequential, 2_500, None)
        );

        let f = &s.faults;
        let Trigger::When(c) = &f[0].trigger else {
            panic!("{:?}", f[0].trigger)
        };
        assert_eq!(
            (c.figure.clone(), c.cmp, c.value),
            (Figure::Hw(tp("my-orders", 1), Some(2)), Cmp::Ge, 10)
        );
        assert_eq!(
            (f[0].after_ms, f[0].by_ms, f[0].target.clone()),
            (100, Some(-5_000), Some(Target::Broker(2)))
        );
        let Trigger::When(c) = &f[1].trigger else {
            panic!()
        };
        assert_eq!(
            (c.figure.clone(), c.cmp, c.value),
            (
                Figure::Committed("g1".into(), tp("my-orders", 0)),
                Cmp::Ne,
                -1
            )
        );
        assert_eq!(c.text, "committed( g1 , my-orders-0 )!=-1");
        assert_eq!(
            (f[1].api.as_deref(), f[1].by_ms, f[1].for_ms),
            (Some("EndTxn"), Some(2_000), Some(60_000))
        );
        assert_eq!(f[1].target, Some(Target::Client("pipe".into())));
        assert_eq!(
            (f[2].from.clone(), f[2].to.clone()),
            (
                Some(Target::ControllerLeader),
                Some(Target::Coordinator("g2".into()))
            )
        );
        assert_eq!(
            (f[3].target.clone(), f[3].factor),
            (Some(Target::Follower(tp("out", 0))), Some(10.0))
        );
        assert_eq!((f[4].rate, f[4].for_ms), (Some(0.2), Some(500)));
        assert_eq!(f[5].action, Action::Heal);
        let Trigger::When(c) = &f[6].trigger else {
            panic!()
        };
        assert_eq!(c.figure, Figure::Acked("tx".into()));
        assert_eq!(
            (f[6].target.clone(), f[6].file.as_deref()),
            (Some(Target::AllBrokers), Some("out-0/*.log"))
        );
        assert_eq!(s.expect.violations, vec!["lost-write".to_string()]);
        assert_eq!(
            s.expect.allow,
            vec!["duplicate".to_string(), "unavailable".to_string()]
        );
    }

    #[test]
    fn durations_ranges_and_rates() {
        assert_eq!(parse_duration_us("60s", false), Ok(60_000_000));
        assert_eq!(parse_duration_us("100us", false), Ok(100));
        assert_eq!(parse_duration_us("2ms", false), Ok(2_000));
        assert_eq!(parse_duration_us("1.5s", false), Ok(1_500_000));
        assert_eq!(parse_duration_us("10m", false), Ok(600_000_000));
        assert_eq!(parse_duration_us("1h", false), Ok(3_600_000_000));
        assert_eq!(parse_duration_us("-5s", true), Ok(-5_000_000));
        assert!(parse_duration_us("-5s", false)
            .unwrap_err()
            .contains("negative"));
        assert!(parse_duration_us("60", false)
            .unwrap_err()
            .contains("needs a unit"));
        assert!(parse_duration_us("5 parsecs", false)
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration_us("1.0000001ms", false)
            .unwrap_err()
            .contains("finer"));
        assert!(parse_duration_us("99999999999999999999h", false)
            .unwrap_err()
            .contains("too large"));
        assert!(parse_duration_us("1..2s", false).is_err());
        assert_eq!(
            parse_range_us("1ms..5ms"),
            Ok(RangeUs {
                lo: 1_000,
                hi: 5_000
            })
        );
        assert_eq!(
            parse_range_us("3ms"),
            Ok(RangeUs {
                lo: 3_000,
                hi: 3_000
            })
        );
        assert!(parse_range_us("5ms..1ms")
            .unwrap_err()
            .contains("downwards"));
        assert_eq!(parse_rate("200/s"), Ok(200.0));
        assert_eq!(parse_rate("2/ms"), Ok(2_000.0));
        assert_eq!(parse_rate("30/m"), Ok(0.5));
        assert!(parse_rate("0/s").unwrap_err().contains("positive"));
        assert!(parse_rate("-3/s").unwrap_err().contains("positive"));
        assert!(parse_rate("NaN/s").is_err());
        assert!(parse_rate("200").is_err());
    }

    #[test]
    fn unknown_top_level_key() {
        let text = with("colour = \"blue\"");
        let text = text.replace(
            "duration = \"60s\"\n",
            "duration = \"60s\"\ncolour = \"blue\"\n",
        );
        refused(
            &text,
            "colour",
            &[
                "unknown key \"colour\" at the top level",
                "allowed: name, summary",
            ],
        );
        refused(
            "name = \"x\"\nduraton = \"1s\"\n",
            "duraton",
            &["did you mean \"duration\"?"],
        );
    }

    #[test]
    fn unknown_key_in_cluster() {
        let text = BASE.replace("brokers = 3", "brokers = 3\nbrokerz = 4");
        refused(
            &text,
            "brokerz",
            &[
                "unknown key \"brokerz\" in [cluster]",
                "allowed: brokers, controllers, config",
            ],
        );
    }

    #[test]
    fn unknown_key_in_a_fault() {
        let text = with("[[fault]]\nat = \"1s\"\naction = \"crash\"\ntarget = \"broker-1\"\nduration = \"2s\"\n");
        refused(
            &text,
            "duration = \"2s\"",
            &[
                "unknown key \"duration\" in [[fault]] #1 (crash)",
                "allowed: at, when, after, action, target, for",
            ],
        );
        let text =
            with("[[fault]]\nat = \"1s\"\naction = \"crash\"\ntarget = \"broker-1\"\nfactor = 2\n");
        refused(
            &text,
            "factor = 2",
            &["key \"factor\" does not apply to action \"crash\""],
        );
    }

    #[test]
    fn missing_required_keys() {
        let e = parse_str("bad.toml", "name = \"x\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad.toml: missing the required top-level key `duration`"
        );
        let text = with("[[fault]]\nat = \"1s\"\naction = \"crash\"\n");
        refused(
            &text,
            "[[fault]]",
            &["[[fault]] #1 (crash) is missing the required key `target`"],
        );
    }

    #[test]
    fn bad_duration() {
        let text = BASE.replace("duration = \"60s\"", "duration = \"60 fortnights\"");
        refused(
            &text,
            "fortnights",
            &["`duration`", "unknown unit \"fortnights\""],
        );
        let text = BASE.replace("duration = \"60s\"", "duration = 60");
        refused(
            &text,
            "duration = 60",
            &["`duration` needs a unit", "\"60s\""],
        );
        let text = with("[disk]\nlatency = \"5ms..1ms\"\n");
        refused(&text, "5ms..1ms", &["`latency` in [disk]", "downwards"]);
    }

    #[test]
    fn unknown_fault_action() {
        let text = with("[[fault]]\nat = \"1s\"\naction = \"explode\"\ntarget = \"broker-1\"\n");
        refused(
            &text,
            "explode",
            &[
                "unknown action \"explode\" in [[fault]] #1",
                "actions: kill, crash",
            ],
        );
        let text = with("[[fault]]\nat = \"1s\"\naction = \"clog_link\"\n");
        refused(&text, "clog_link", &["did you mean \"clog-link\"?"]);
    }

    #[test]
    fn unknown_target() {
        let fault = |target: &str| {
            with(&format!(
                "[[fault]]\nat = \"1s\"\naction = \"kill\"\ntarget = \"{target}\"\n"
            ))
        };
        refused(
            &fault("broker-4"),
            "broker-4",
            &["unknown target \"broker-4\"", "the cluster has 3 brokers"],
        );
        refused(
            &fault("controller-2"),
            "controller-2",
            &["unknown target \"controller-2\"", "1 controller"],
        );
        refused(
            &fault("leader(my-orders-2)"),
            "leader(",
            &["unknown partition \"my-orders-2\"", "has 2 partitions"],
        );
        refused(
            &fault("leader(orders-0)"),
            "leader(",
            &["unknown topic \"orders\"", "declared: my-orders"],
        );
        refused(
            &fault("coordinator(g9)"),
            "coordinator",
            &["unknown group \"g9\""],
        );
        refused(
            &fault("zeus"),
            "zeus",
            &["unknown target \"zeus\"", "broker-N"],
        );
        let text = with("[[fault]]\nat = \"1s\"\naction = \"wipe\"\ntarget = \"p1\"\n");
        refused(
            &text,
            "target = \"p1\"",
            &["acts on a disk", "client \"p1\" has none"],
        );
    }

    #[test]
    fn producer_without_topic() {
        let text = BASE.replace("topic = \"my-orders\"\n", "");
        refused(&text, "[[client]]", &["producer \"p1\" needs a `topic`"]);
        let text = BASE.replace("topic = \"my-orders\"\nrate", "topic = \"nope\"\nrate");
        refused(&text, "\"nope\"", &["unknown topic \"nope\""]);
        let text = BASE.replace("rate = \"100/s\"\n", "");
        refused(&text, "[[client]]", &["needs a `rate`", "`count`"]);
    }

    #[test]
    fn negative_rate() {
        let text = BASE.replace("\"100/s\"", "\"-100/s\"");
        refused(
            &text,
            "-100/s",
            &["`rate` in [[client]] \"p1\"", "must be positive"],
        );
        let text = BASE.replace("\"100/s\"", "100");
        refused(&text, "rate = 100", &["needs a unit", "200/s"]);
        let text = with("[network]\nloss = 1.5\n");
        refused(&text, "loss", &["`loss` in [network] must be in [0, 1)"]);
    }

    #[test]
    fn malformed_toml() {
        let text = BASE.replace("brokers = 3", "brokers = = 3");
        let e = refused(&text, "brokers", &["invalid TOML", "column"]);
        assert!(!e.message.contains('\n'));
        refused(
            "name = \"x\"\nname = \"y\"\n",
            "name = \"y\"",
            &["invalid TOML", "duplicate key"],
        );
        refused("name = \"x\"\n[cluster\n", "[cluster", &["invalid TOML"]);
        refused(
            "name = \"x\"\nduration = 1979-05-27T07:32:00Z\n",
            "1979",
            &["the date-time"],
        );
    }

    #[test]
    fn missing_file() {
        let path = Path::new("/nonexistent/samsa/scenario.toml");
        let e = parse_file(path).unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.line),
            ("/nonexistent/samsa/scenario.toml", None)
        );
        assert!(
            e.to_string()
                .starts_with("/nonexistent/samsa/scenario.toml: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn when_that_does_not_parse() {
        let fault = |when: &str| {
            with(&format!(
                "[[fault]]\nwhen = \"{when}\"\naction = \"kill\"\ntarget = \"broker-1\"\n"
            ))
        };
        refused(
            &fault("hw(my-orders-0 >= 3"),
            "when",
            &["expected ',' or ')' at character 16", "found '>'"],
        );
        refused(
            &fault("hw(my-orders-0) => 3"),
            "when",
            &["expected a comparison", "character 17"],
        );
        refused(
            &fault("hw(my-orders-0) >= ten"),
            "when",
            &["expected a whole number at character 20"],
        );
        refused(
            &fault("hw(my-orders-0) >= 3 and more"),
            "when",
            &["expected the end of the condition at character 22"],
        );
        refused(
            &fault("lag(my-orders-0) >= 3"),
            "when",
            &["unknown figure \"lag\" at character 1"],
        );
        refused(
            &fault("hw(my-orders-0, broker-7) >= 3"),
            "when",
            &["unknown target \"broker-7\"", "character 17"],
        );
        refused(
            &fault("acked(c1) >= 3"),
            "when",
            &["client \"c1\" writes nothing"],
        );
        refused(
            &fault("epoch(my-orders-0, broker-1) >= 3"),
            "when",
            &["epoch takes one argument"],
        );
        refused(&fault(""), "when", &["expected a figure", "character 1"]);
    }

    #[test]
    fn topic_with_more_replicas_than_brokers() {
        let text = BASE.replace("brokers = 3", "brokers = 1");
        refused(
            &text,
            "replication-factor = 3",
            &["topic my-orders has replication-factor 3 but the cluster has 1 broker"],
        );
        let text = with("[[topic]]\nname = \"t\"\nreplication-factor = 2\nassignment = [[1, 1]]\n");
        refused(&text, "assignment", &["lists broker 1 twice"]);
        let text = with("[[topic]]\nname = \"t\"\nassignment = [[4]]\n");
        refused(&text, "assignment", &["between 1 and 3, found 4"]);
        let text = with("[[topic]]\nname = \"bad/name\"\n");
        refused(&text, "bad/name", &["Kafka allows only"]);
    }

    #[test]
    fn unknown_kafka_config() {
        let text = BASE.replace(
            "brokers = 3",
            "brokers = 3\nconfig = { \"min.insync.replica\" = 2 }",
        );
        refused(
            &text,
            "min.insync.replica\"",
            &[
                "unknown broker config \"min.insync.replica\"",
                "did you mean \"min.insync.replicas\"?",
            ],
        );
        let text = with("[cluster.config]\nretention.ms = 5\n");
        let text = text.replace("[cluster]\nbrokers = 3\ncontrollers = 1\n", "");
        refused(
            &text,
            "retention.ms",
            &["is a topic config", "log.retention.ms"],
        );
        let text = BASE.replace(
            "rate = \"100/s\"",
            "rate = \"100/s\"\nconfig = { \"isolation.level\" = \"read_committed\" }",
        );
        refused(
            &text,
            "isolation.level",
            &["unknown producer config", "is a consumer config"],
        );
    }

    #[test]
    fn config_value_of_the_wrong_type() {
        let text = BASE.replace(
            "brokers = 3",
            "brokers = 3\nconfig = { \"min.insync.replicas\" = \"2\" }",
        );
        refused(
            &text,
            "min.insync.replicas",
            &[
                "config \"min.insync.replicas\" in [cluster.config]",
                "expected an integer, found the string \"2\"",
            ],
        );
        let text = BASE.replace(
            "rate = \"100/s\"",
            "rate = \"100/s\"\nconfig = { acks = \"most\" }",
        );
        refused(
            &text,
            "acks",
            &["must be one of \"all\", \"-1\", \"0\", \"1\""],
        );
        let text = BASE.replace(
            "rate = \"100/s\"",
            "rate = \"100/s\"\nconfig = { acks = -1, \"enable.idempotence\" = 1 }",
        );
        refused(
            &text,
            "acks",
            &[
                "\"enable.idempotence\"",
                "expected true or false, found the integer 1",
            ],
        );
        let text = BASE.replace(
            "brokers = 3",
            "brokers = 3\nconfig = { \"min.insync.replicas\" = 0 }",
        );
        refused(
            &text,
            "min.insync.replicas",
            &["must be at least 1, found 0"],
        );
    }

    #[test]
    fn at_and_when_both_given() {
        let text = with("[[fault]]\nat = \"1s\"\nwhen = \"hw(my-orders-0) >= 1\"\naction = \"kill\"\ntarget = \"broker-1\"\n");
        refused(&text, "when =", &["has both `at` and `when`"]);
        let text = with("[[fault]]\naction = \"kill\"\ntarget = \"broker-1\"\n");
        refused(
            &text,
            "[[fault]]",
            &["needs `at` (a time) or `when` (a condition)"],
        );
        let text = with("[[fault]]\nat = \"61s\"\naction = \"heal\"\n");
        refused(&text, "61s", &["when the scenario has ended"]);
    }

    #[test]
    fn expect_with_an_unknown_check() {
        let text = with("[expect]\nviolations = [\"lost-write\", \"lost-writes\"]\n");
        refused(
            &text,
            "lost-writes",
            &[
                "unknown check \"lost-writes\"",
                "checks: lost-write, duplicate",
            ],
        );
        let text = with("[expect]\nviolations = [\"duplicate\"]\nallow = [\"duplicate\"]\n");
        refused(&text, "allow", &["in both `violations` and `allow`"]);
    }

    #[test]
    fn clients_are_checked() {
        let text = with(
            "[[client]]\ntype = \"consumer\"\nid = \"p1\" # again\ntopics = [\"my-orders\"]\n",
        );
        refused(&text, "# again", &["client id \"p1\" is used twice"]);
        let text = with("[[client]]\ntype = \"consumer\"\nid = \"c2\"\ntopics = [\"my-orders\"]\nrate = \"1/s\"\n");
        refused(
            &text,
            "rate = \"1/s\"",
            &["key \"rate\" does not apply to a consumer client"],
        );
        let text = with(
            "[[client]]\ntype = \"consumer\"\nid = \"c2\"\ntopics = [\"my-orders\"]\nmembers = 2\n",
        );
        refused(&text, "members", &["needs a `group`"]);
        let text = with("[[client]]\ntype = \"poller\"\nid = \"c2\"\n");
        refused(&text, "poller", &["unknown client type \"poller\""]);
        let text =
            with("[[client]]\ntype = \"consumer\"\nid = \"broker-1\"\ntopics = [\"my-orders\"]\n");
        refused(&text, "broker-1", &["would read as a node target"]);
    }

    #[test]
    fn unknown_keys_in_other_tables() {
        refused(
            &with("[expect]\nviolation = []\n"),
            "violation",
            &["in [expect]", "did you mean \"violations\"?"],
        );
        refused(
            &with("[protocol]\ntruncate = \"x\"\n"),
            "truncate",
            &["in [protocol]"],
        );
        refused(
            &BASE.replace("partitions = 2", "partitions = 2\nretention = 1"),
            "retention",
            &["in [[topic]] \"my-orders\""],
        );
        refused(
            &BASE.replace("name = \"my-orders\"", "name = \"my-orders\"\n[topic.x]"),
            "[topic.x]",
            &["unknown key \"x\" in [[topic]] \"my-orders\""],
        );
        refused(
            &with("[topic] # single\nname = \"x\"\n"),
            "# single",
            &["invalid TOML"],
        );
        refused(
            "name = \"x\"\nduration = \"1s\"\n[topic]\nname = \"t\"\n",
            "[topic]",
            &["write [[topic]]"],
        );
    }

    #[test]
    fn the_scenario_library_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.retain(|p| p.extension().is_some_and(|x| x == "toml"));
        files.sort();
        for file in files {
            parse_file(&file).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn not_utf8_is_an_error_with_a_line() {
        let dir = std::env::temp_dir().join(format!("samsa-parse-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("latin1.toml");
        std::fs::write(&path, b"name = \"x\"\nsummary = \"caf\xe9\"\n").unwrap();
        let e = parse_file(&path).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("UTF-8"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Bits of scenario syntax that random edits splice in.
    const SPLICES: &[&str] = &[
        "\"",
        "[",
        "]",
        "[[",
        "]]",
        "=",
        "\n",
        "-",
        "0",
        "..",
        "/s",
        "broker-9",
        "leader(",
        ")",
        "#",
        "{",
        "}",
        ",",
        "1e400",
        "-1",
        "9999999999999999999",
        "\"\"",
        "[[fault]]\n",
        "when = \"hw(",
        ">=",
        "µ",
        "é",
        "\\u0000",
        "'",
        "a.b.c = 1\n",
        "1979-05-27",
        "inf",
        "nan",
        "[cluster.config]\n",
        "at = \"1s\"\n",
        "action = \"kill\"\n",
        "target = \"p1\"\n",
    ];

    fn mutate(mut text: String, edits: &[(usize, u8, usize)]) -> String {
        for &(at, op, pick) in edits {
            let mut at = at % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let splice = SPLICES[pick % SPLICES.len()];
            match op % 4 {
                0 => {
                    let end = text[at..]
                        .char_indices()
                        .nth(pick % 8)
                        .map_or(text.len(), |(i, _)| at + i);
                    text.replace_range(at..end, "");
                }
                1 => text.insert_str(at, splice),
                2 => {
                    let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
                    text.replace_range(at..end, splice);
                }
                _ => {
                    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
                    let line = text[line_start..line_end].to_string();
                    text.insert_str(line_end, &line);
                }
            }
        }
        text
    }

    fn never_panics(text: &str) -> Result<(), TestCaseError> {
        if let Err(e) = parse_str("fuzz.toml", text) {
            prop_assert!(!e.to_string().contains('\n'), "two lines: {}", e);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            never_panics(&String::from_utf8_lossy(&bytes))?;
        }

        #[test]
        fn random_text_never_panics(text in "\\PC{0,300}") {
            never_panics(&text)?;
        }

        #[test]
        fn mutated_scenarios_never_panic(
            which in 0..2usize,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<usize>()), 1..6),
        ) {
            let base = [EXAMPLE, BASE][which].to_string();
            never_panics(&mutate(base, &edits))?;
        }
    }
}
