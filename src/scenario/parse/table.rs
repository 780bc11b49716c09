//! The document's tables and their typed values, and how messages name them.

use super::tree::{Key, Kind, Node};
use super::{fail, Res};
use crate::scenario::configs;

/// User text in a message: quoted and escaped (so a message stays one line), and cut if long.
pub(super) fn q(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("{:?}…", cut)
    } else {
        format!("{s:?}")
    }
}

/// A value as messages name it: `the integer 60`.
pub(super) fn found(node: &Node) -> String {
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

pub(super) const TOP_LEVEL: &str = "the top level";

/// A table of the document, with the name messages give it (`[cluster]`, `[[fault]] #2`).
pub(super) struct Table<'a> {
    pub(super) name: String,
    pub(super) pos: Option<usize>,
    pub(super) entries: &'a [(Key, Node)],
}

impl<'a> Table<'a> {
    pub(super) fn of(node: &'a Node, name: impl Into<String>) -> Res<Self> {
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
    pub(super) fn allow(&self, allowed: &[&str], elsewhere: &[&str], why: &str) -> Res<()> {
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
    pub(super) fn name_by(&mut self, key: &str, header: &str) {
        if let Some(Kind::Str(name)) = self.get(key).map(|n| &n.kind) {
            self.name = format!("{header} {}", q(name));
        }
    }

    fn entry(&self, key: &str) -> Option<&'a (Key, Node)> {
        self.entries.iter().find(|(k, _)| k.name == key)
    }

    pub(super) fn get(&self, key: &str) -> Option<&'a Node> {
        self.entry(key).map(|(_, v)| v)
    }

    pub(super) fn req(&self, key: &str) -> Res<&'a Node> {
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
    pub(super) fn what(&self, key: &str) -> String {
        if self.name == TOP_LEVEL {
            format!("`{key}`")
        } else {
            format!("`{key}` in {}", self.name)
        }
    }

    pub(super) fn opt<T>(
        &self,
        key: &str,
        read: impl FnOnce(&'a Node, &str) -> Res<T>,
    ) -> Res<Option<T>> {
        self.get(key)
            .map(|node| read(node, &self.what(key)))
            .transpose()
    }
}

pub(super) fn string<'a>(node: &'a Node, what: &str) -> Res<&'a str> {
    match &node.kind {
        Kind::Str(s) => Ok(s),
        _ => fail(
            node.pos(),
            format!("{what} must be a string, found {}", found(node)),
        ),
    }
}

pub(super) fn boolean(node: &Node, what: &str) -> Res<bool> {
    match node.kind {
        Kind::Bool(b) => Ok(b),
        _ => fail(
            node.pos(),
            format!("{what} must be true or false, found {}", found(node)),
        ),
    }
}

pub(super) fn int_in(node: &Node, what: &str, min: i64, max: i64) -> Res<i64> {
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

pub(super) fn u32_in(node: &Node, what: &str, min: u32, max: u32) -> Res<u32> {
    // The range keeps the value within u32.
    int_in(node, what, min.into(), max.into()).map(|v| v as u32)
}

pub(super) fn array<'a>(node: &'a Node, what: &str) -> Res<&'a [Node]> {
    match &node.kind {
        Kind::Array(items) => Ok(items),
        _ => fail(
            node.pos(),
            format!("{what} must be an array, found {}", found(node)),
        ),
    }
}

pub(super) fn strings<'a>(node: &'a Node, what: &str) -> Res<Vec<(&'a str, &'a Node)>> {
    array(node, what)?
        .iter()
        .map(|item| string(item, &format!("each item of {what}")).map(|s| (s, item)))
        .collect()
}

/// `[[key]]`: an array of tables.
pub(super) fn array_of_tables<'a>(node: Option<&'a Node>, key: &str) -> Res<&'a [Node]> {
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

pub(super) fn plural(n: u32, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
