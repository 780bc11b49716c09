//! The journal's JSON text, written straight into a byte buffer: the same bytes as
//! `serde_json::to_writer` (compact; strings escaped as serde_json escapes them: `"`, `\`, and
//! control characters, `\u00XX` in lower-case hex), without serde's generic machinery. Every
//! entry of a run is written once for the digest and once more for the files, so this is one
//! of the simulator's own costs per message.

use crate::history::{Op, OpType, TraceEvent};
use crate::val::Val;

/// Appends one history operation, as `serde_json::to_writer(out, op)` would.
pub fn write_op(out: &mut Vec<u8>, op: &Op) {
    out.extend_from_slice(b"{\"process\":");
    write_str(out, &op.process);
    out.extend_from_slice(b",\"type\":");
    out.extend_from_slice(match op.kind {
        OpType::Invoke => b"\"invoke\"",
        OpType::Ok => b"\"ok\"",
        OpType::Fail => b"\"fail\"",
        OpType::Info => b"\"info\"",
    });
    out.extend_from_slice(b",\"f\":");
    write_str(out, &op.f);
    out.extend_from_slice(b",\"value\":");
    write_val(out, &op.value);
    out.extend_from_slice(b",\"at_ms\":");
    write_u64(out, op.at_ms);
    out.push(b'}');
}

/// Appends one trace event, as `serde_json::to_writer(out, event)` would (a null detail is
/// left out).
pub fn write_event(out: &mut Vec<u8>, event: &TraceEvent) {
    out.extend_from_slice(b"{\"at_ms\":");
    write_u64(out, event.at_ms);
    out.extend_from_slice(b",\"node\":");
    write_str(out, &event.node);
    out.extend_from_slice(b",\"kind\":");
    write_str(out, &event.kind);
    if !event.detail.is_null() {
        out.extend_from_slice(b",\"detail\":");
        write_val(out, &event.detail);
    }
    out.push(b'}');
}

pub fn write_val(out: &mut Vec<u8>, value: &Val) {
    match value {
        Val::Null => out.extend_from_slice(b"null"),
        Val::Bool(true) => out.extend_from_slice(b"true"),
        Val::Bool(false) => out.extend_from_slice(b"false"),
        Val::Int(n) if *n < 0 => {
            out.push(b'-');
            write_u64(out, n.unsigned_abs());
        }
        Val::Int(n) => write_u64(out, *n as u64),
        Val::UInt(n) => write_u64(out, *n),
        // Rare: serde_json's own float formatting (ryu, `null` when not finite).
        Val::Float(x) => serde_json::to_writer(&mut *out, x).expect("a float serializes"),
        Val::Str(s) => write_str(out, s),
        Val::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_val(out, item);
            }
            out.push(b']');
        }
        Val::Object(entries) => {
            out.push(b'{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key.as_str());
                out.push(b':');
                write_val(out, item);
            }
            out.push(b'}');
        }
    }
}

fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\x08' => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\x0c' => b"\\f",
            b'\r' => b"\\r",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run_start..i]);
        run_start = i + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(byte >> 4) as usize]);
            out.push(HEX[(byte & 0xf) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same_as_serde_json(value: serde_json::Value) {
        let val = Val::from(value);
        let mut ours = Vec::new();
        write_val(&mut ours, &val);
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string(&val).unwrap()
        );
    }

    #[test]
    fn values_as_serde_json_writes_them() {
        let every_ascii: String = (0u8..128).map(char::from).collect();
        same_as_serde_json(json!(every_ascii));
        same_as_serde_json(json!("héllo \u{2028} 🦀 \"q\" \\ /"));
        same_as_serde_json(json!({
            "b": [1, -1, 0, i64::MIN, i64::MAX, u64::MAX, 1.5, -0.25, 1e300, null, true, false],
            "a": {"nested": {"deeper": []}, "empty": {}},
            "s": "",
        }));
    }

    #[test]
    fn ops_and_events_as_serde_json_writes_them() {
        for kind in [OpType::Invoke, OpType::Ok, OpType::Fail, OpType::Info] {
            let op = Op {
                process: "p\"1".into(),
                kind,
                f: "send".into(),
                value: Val::from(json!({"value": "p1-3", "key": null, "offset": 7})),
                at_ms: 1234,
            };
            let mut ours = Vec::new();
            write_op(&mut ours, &op);
            assert_eq!(ours, serde_json::to_vec(&op).unwrap());
        }
        for detail in [
            Val::Null,
            Val::from(json!({"partition": "orders-0", "hw": 3})),
        ] {
            let event = TraceEvent {
                at_ms: 0,
                node: "broker-1".into(),
                kind: "hw".into(),
                detail,
            };
            let mut ours = Vec::new();
            write_event(&mut ours, &event);
            assert_eq!(ours, serde_json::to_vec(&event).unwrap());
        }
    }
}
