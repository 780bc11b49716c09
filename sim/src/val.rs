//! `Val`: a compact JSON value for what the journal keeps in memory (an operation's value, an
//! event's detail). A run of ten simulated minutes records millions of entries; as
//! `serde_json::Value` each small object is a `BTreeMap` leaf of some 600 bytes plus a heap
//! string per key, which made the journal most of a run's memory. Here an object is one boxed
//! slice of (key, value) pairs, its keys interned (a run uses a few dozen distinct keys), and
//! strings are boxed slices.
//!
//! `Val` reads like `serde_json::Value` where the checkers and the report read it (`v["key"]`,
//! `get`, `as_str`, `as_i64`, `as_array`, …) and serializes to exactly the same JSON text: object
//! keys in byte order (serde_json's `Map` is a `BTreeMap` without `preserve_order`), integers as
//! integers, so the trace digest is the same as when the journal held `Value`s.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A JSON value, compact.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Val {
    #[default]
    Null,
    Bool(bool),
    /// Every integer that fits an `i64` (serde_json's `PosInt` and `NegInt`).
    Int(i64),
    /// A non-negative integer above `i64::MAX`.
    UInt(u64),
    Float(f64),
    Str(Box<str>),
    Array(Box<[Val]>),
    /// Keys sorted and unique.
    Object(Box<[(Key, Val)]>),
}

/// An object key: a literal, or interned (one allocation per distinct key for the process).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(&'static str);

impl Key {
    pub fn new(name: &str) -> Key {
        static KEYS: Mutex<Option<HashMap<String, &'static str>>> = Mutex::new(None);
        let mut keys = KEYS.lock().unwrap_or_else(|p| p.into_inner());
        let keys = keys.get_or_insert_with(HashMap::new);
        if let Some(&key) = keys.get(name) {
            return Key(key);
        }
        // Bounded: keys are the field names the cluster writes, not data.
        let key: &'static str = Box::leak(name.to_string().into_boxed_str());
        keys.insert(name.to_string(), key);
        Key(key)
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

static NULL: Val = Val::Null;

impl Val {
    /// An object from (key, value) pairs in any order; a repeated key keeps its last value, as
    /// serde_json's `json!` does.
    pub fn object<'a>(pairs: impl IntoIterator<Item = (&'a str, Val)>) -> Val {
        Val::from_entries(pairs.into_iter().map(|(k, v)| (Key::new(k), v)).collect())
    }

    /// `object` with keys known at compile time (what `val!` builds): nothing to intern.
    pub fn object_static(pairs: impl IntoIterator<Item = (&'static str, Val)>) -> Val {
        Val::from_entries(pairs.into_iter().map(|(k, v)| (Key(k), v)).collect())
    }

    fn from_entries(mut entries: Vec<(Key, Val)>) -> Val {
        // Stable: among equal keys the later one stays last, and dedup keeps the last.
        entries.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let mut unique: Vec<(Key, Val)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match unique.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => unique.push((k, v)),
            }
        }
        Val::Object(unique.into_boxed_slice())
    }

    /// This object with `key` set to `value` (added, or replaced); anything else is returned
    /// as it is.
    pub fn with(self, key: &'static str, value: Val) -> Val {
        match self {
            Val::Object(entries) => {
                let mut entries = entries.into_vec();
                entries.push((Key(key), value));
                Val::from_entries(entries)
            }
            other => other,
        }
    }

    pub fn array(items: impl IntoIterator<Item = Val>) -> Val {
        Val::Array(items.into_iter().collect())
    }

    pub fn get(&self, key: &str) -> Option<&Val> {
        match self {
            Val::Object(entries) => entries
                .binary_search_by(|(k, _)| k.as_str().cmp(key))
                .ok()
                .map(|i| &entries[i].1),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Val::Int(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Val::Int(n) if n >= 0 => Some(n as u64),
            Val::UInt(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Val::Int(n) => Some(n as f64),
            Val::UInt(n) => Some(n as f64),
            Val::Float(x) => Some(x),
            _ => None,
        }
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Val::Object(_))
    }

    pub fn is_array(&self) -> bool {
        matches!(self, Val::Array(_))
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Val::Str(_))
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Val::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Val]> {
        match self {
            Val::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The object's entries, in key order.
    pub fn as_object(&self) -> Option<&[(Key, Val)]> {
        match self {
            Val::Object(entries) => Some(entries),
            _ => None,
        }
    }

    /// The same value as a `serde_json::Value` (for code that builds on serde_json).
    pub fn to_value(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(*b),
            Val::Int(n) => Value::from(*n),
            Val::UInt(n) => Value::from(*n),
            Val::Float(x) => Value::from(*x),
            Val::Str(s) => Value::String(s.to_string()),
            Val::Array(items) => Value::Array(items.iter().map(Val::to_value).collect()),
            Val::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

impl std::ops::Index<&str> for Val {
    type Output = Val;

    /// Like `serde_json::Value`: `Null` for a missing key or a value that is not an object.
    fn index(&self, key: &str) -> &Val {
        self.get(key).unwrap_or(&NULL)
    }
}

impl std::ops::Index<usize> for Val {
    type Output = Val;

    fn index(&self, i: usize) -> &Val {
        self.as_array().and_then(|a| a.get(i)).unwrap_or(&NULL)
    }
}

impl From<Value> for Val {
    fn from(value: Value) -> Val {
        match value {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Val::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Val::UInt(u)
                } else {
                    Val::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => Val::Str(s.into_boxed_str()),
            Value::Array(items) => Val::Array(items.into_iter().map(Val::from).collect()),
            // A serde_json `Map` iterates in key order with unique keys: already our layout.
            Value::Object(map) => Val::Object(
                map.into_iter()
                    .map(|(k, v)| (Key::new(&k), Val::from(v)))
                    .collect(),
            ),
        }
    }
}

impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::Str(s.into())
    }
}

impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::Str(s.into_boxed_str())
    }
}

impl From<bool> for Val {
    fn from(b: bool) -> Val {
        Val::Bool(b)
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Val {
            fn from(n: $t) -> Val {
                Val::Int(n as i64)
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for Val {
    fn from(n: u64) -> Val {
        match i64::try_from(n) {
            Ok(i) => Val::Int(i),
            Err(_) => Val::UInt(n),
        }
    }
}

impl From<usize> for Val {
    fn from(n: usize) -> Val {
        Val::from(n as u64)
    }
}

impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Null, Into::into)
    }
}

impl PartialEq<str> for Val {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl PartialEq<&str> for Val {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl PartialEq<i64> for Val {
    fn eq(&self, other: &i64) -> bool {
        self.as_i64() == Some(*other)
    }
}

impl PartialEq<bool> for Val {
    fn eq(&self, other: &bool) -> bool {
        self.as_bool() == Some(*other)
    }
}

/// Compact JSON, as `serde_json::Value` displays.
impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl Serialize for Val {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Val::Null => serializer.serialize_unit(),
            Val::Bool(b) => serializer.serialize_bool(*b),
            // serde_json's `Value` writes a non-negative integer as u64, a negative one as
            // i64: the same digits either way.
            Val::Int(n) if *n >= 0 => serializer.serialize_u64(*n as u64),
            Val::Int(n) => serializer.serialize_i64(*n),
            Val::UInt(n) => serializer.serialize_u64(*n),
            Val::Float(x) => serializer.serialize_f64(*x),
            Val::Str(s) => serializer.serialize_str(s),
            Val::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items.iter() {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Val::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries.iter() {
                    map.serialize_entry(k.as_str(), v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Val {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Val, D::Error> {
        Value::deserialize(deserializer).map(Val::from)
    }
}

/// Builds a `Val` object with `json!`'s syntax: `val!({"key": expr, …})`, each `expr` anything
/// `Into<Val>` (`Val::Null`, `Val::array(…)` and a nested `val!` for the other shapes).
#[macro_export]
macro_rules! val {
    ({ $($key:literal : $value:expr),* $(,)? }) => {
        $crate::val::Val::object_static([ $( ($key, $crate::val::Val::from($value)) ),* ])
    };
}

impl From<&Val> for Val {
    fn from(v: &Val) -> Val {
        v.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same_text(value: Value) {
        let text = serde_json::to_string(&value).unwrap();
        let val = Val::from(value.clone());
        assert_eq!(serde_json::to_string(&val).unwrap(), text);
        assert_eq!(val.to_value(), value);
        let back: Val = serde_json::from_str(&text).unwrap();
        assert_eq!(back, val);
    }

    #[test]
    fn serializes_as_serde_json_does() {
        same_text(json!(null));
        same_text(json!({}));
        same_text(
            json!({"b": 1, "a": -2, "c": u64::MAX, "d": 1.5, "e": "x\"y\n", "f": [1, null, true]}),
        );
        same_text(json!({"nested": {"z": [], "a": {"k": "v"}}, "aa": false}));
        same_text(json!([{"partition": "orders-0", "offset": 3, "value": "p1-3"}]));
    }

    #[test]
    fn the_macro_builds_what_json_builds() {
        let key: Option<String> = None;
        let built = val!({"value": "p1-3", "key": key, "partition": Val::Null, "n": 7u64, "list": Val::array([1.into(), 2.into()])});
        let expected =
            json!({"value": "p1-3", "key": null, "partition": null, "n": 7, "list": [1, 2]});
        assert_eq!(
            serde_json::to_string(&built).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        assert_eq!(built["value"], "p1-3");
        assert!(built["key"].is_null());
        assert!(built["missing"].is_null());
        assert_eq!(built["n"].as_i64(), Some(7));
        assert_eq!(built["list"].as_array().map(<[Val]>::len), Some(2));
        assert_eq!(built.to_string(), serde_json::to_string(&expected).unwrap());
    }
}
