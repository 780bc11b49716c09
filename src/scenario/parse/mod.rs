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
//! topics, including those the script's admin steps create), the faults (which need all of them).
//!
//! One file per concept: `table` reads tables and typed values, `values` durations, ranges and
//! rates, `sections` the single tables and Kafka configs, `topics`, `clients` and `faults` the
//! arrays of tables, `admin` the script's admin steps, `known` the topics a scenario may name,
//! `targets` and `condition` what a fault refers to and waits for.

mod admin;
mod clients;
mod condition;
mod faults;
mod known;
mod sections;
mod table;
mod targets;
#[cfg(test)]
mod tests;
mod topics;
mod tree;
mod values;

use std::fmt;
use std::path::Path;

use super::model::Scenario;
use clients::clients;
use faults::faults;
use known::KnownTopics;
use sections::{cluster, disk, expect, network, protocol};
use table::{boolean, int_in, q, string, Table, TOP_LEVEL};
use targets::Names;
use topics::topics;
use tree::Node;
use values::positive_ms;

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
// The top level.

const TOP_KEYS: &[&str] = &[
    "name", "summary", "duration", "seed", "recovery", "buggify", "cluster", "protocol", "network",
    "disk", "topic", "client", "fault", "expect",
];

/// No more nodes than this of one kind, nor members in one consumer: a bound, not a Kafka limit.
/// Nodes of one kind at most: each kind's addresses are one octet of 10.0.x.0/24.
const MAX_NODES: u32 = 250;
/// The longest simulated run a scenario may ask for.
const MAX_DURATION_MS: u64 = 24 * 3_600_000;
/// No more partitions than this per topic.
const MAX_PARTITIONS: u32 = 10_000;

fn scenario(root: &Node, lines: &Lines) -> Res<Scenario> {
    let mut top = Table::of(root, TOP_LEVEL)?;
    top.pos = None;
    top.allow(TOP_KEYS, &[], "")?;
    let name = scenario_name(top.req("name")?)?;
    let summary = top.opt("summary", string)?.unwrap_or_default().to_string();
    let duration_node = top.req("duration")?;
    let duration_ms = positive_ms(duration_node, &top.what("duration"))?;
    if duration_ms > MAX_DURATION_MS {
        return fail(
            duration_node.pos(),
            format!(
                "duration: at most 24h of simulated time, found {}",
                values::show_ms(duration_ms)
            ),
        );
    }
    let seed = top
        .opt("seed", |n, w| int_in(n, w, 0, i64::MAX))?
        .map_or(1, |s| s as u64);
    let recovery_ms = top.opt("recovery", positive_ms)?;
    let buggify = top.opt("buggify", boolean)?.unwrap_or(false);
    let cluster = cluster(top.get("cluster"))?;
    let protocol = protocol(top.get("protocol"))?;
    let network = network(top.get("network"))?;
    let disk = disk(top.get("disk"))?;
    let topics = topics(top.get("topic"), &cluster)?;
    let mut known = KnownTopics::new(&topics, top.get("fault"), &cluster);
    let clients = clients(top.get("client"), &mut known, duration_ms, lines)?;
    let names = Names {
        brokers: cluster.brokers,
        controllers: cluster.controllers,
        topics: &known,
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
        buggify,
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
