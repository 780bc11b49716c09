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
