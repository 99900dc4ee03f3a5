//! The bytes Python's `json.dumps(obj, sort_keys=True, separators=(', ', ': '))` produces (with
//! its default `ensure_ascii=True`), rebuilt from JSON text: what the published Python aim-sdk
//! 2.0.3 signs in its action verifications (docs/sdk-wire.md §2.2). A compatible server cannot
//! verify those signatures over the bytes it received: the SDK sends the body in insertion order
//! but signs a different, sorted dict.
//!
//! Invariants:
//! - Object keys are sorted by code point at every depth (Rust `String` order is UTF-8 byte order,
//!   which is code-point order, as Python's `sorted` on `str`); a repeated key keeps its last value
//!   (as `json.loads`).
//! - Number tokens are copied verbatim from the input text: the SDK's body was written by the same
//!   Python serializer, so its tokens already have Python's form (`1e-05`, `1e+16`, integers of any
//!   size); re-formatting through `f64` would not reproduce them.
//! - Strings are re-escaped the Python way: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, every other
//!   character below U+0020 and every character from U+007F up as lowercase `\uXXXX` (UTF-16
//!   surrogate pairs above the BMP); `/` is not escaped.
//! - Nesting deeper than [`MAX_DEPTH`] is refused, so hostile input cannot exhaust the stack.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::value::RawValue;

use crate::{Error, Result};

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;

fn bad(e: impl std::fmt::Display) -> Error {
    Error::invalid("JSON for the aim-sdk signature", e)
}

/// Appends `s` as a Python `ensure_ascii` JSON string literal.
pub fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) >= 0x7f => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04x}", u);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_value(text: &str, out: &mut String, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    let t = text.trim();
    match t.as_bytes().first() {
        Some(b'{') => {
            let map: BTreeMap<String, Box<RawValue>> = serde_json::from_str(t).map_err(bad)?;
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(k, out);
                out.push_str(": ");
                write_value(v.get(), out, depth + 1)?;
            }
            out.push('}');
        }
        Some(b'[') => {
            let items: Vec<Box<RawValue>> = serde_json::from_str(t).map_err(bad)?;
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(v.get(), out, depth + 1)?;
            }
            out.push(']');
        }
        Some(b'"') => {
            let s: String = serde_json::from_str(t).map_err(bad)?;
            write_str(&s, out);
        }
        Some(_) => {
            // A number, true, false or null: validated, then copied as written.
            let v: serde_json::Value = serde_json::from_str(t).map_err(bad)?;
            if v.is_object() || v.is_array() || v.is_string() {
                return Err(bad("unexpected value"));
            }
            out.push_str(t);
        }
        None => return Err(bad("empty value")),
    }
    Ok(())
}

/// `json.dumps(value, sort_keys=True, separators=(', ', ': '))` of the JSON text `raw`.
pub fn dumps_sorted(raw: &RawValue) -> Result<String> {
    let mut out = String::with_capacity(raw.get().len() + 16);
    write_value(raw.get(), &mut out, 0)?;
    Ok(out)
}

/// The message aim-sdk 2.0.3 signs for `POST /api/v1/sdk-api/verifications`: the sorted dict
/// `{action_type, agent_id, context, resource, timestamp}` (docs/sdk-wire.md §2.2).
pub fn sdk_verification_message(
    capability: &str,
    agent_id: &str,
    context: &RawValue,
    resource: Option<&str>,
    timestamp: &str,
) -> Result<String> {
    let mut out = String::with_capacity(128 + context.get().len());
    out.push_str("{\"action_type\": ");
    write_str(capability, &mut out);
    out.push_str(", \"agent_id\": ");
    write_str(agent_id, &mut out);
    out.push_str(", \"context\": ");
    write_value(context.get(), &mut out, 1)?;
    out.push_str(", \"resource\": ");
    match resource {
        Some(r) => write_str(r, &mut out),
        None => out.push_str("null"),
    }
    out.push_str(", \"timestamp\": ");
    write_str(timestamp, &mut out);
    out.push('}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    // Expected strings below were produced by CPython 3.11's json.dumps on the same data.

    #[test]
    fn the_captured_sdk_message() {
        let m = sdk_verification_message(
            "db:read",
            "6F1C2B3A-0000-4000-8000-00000000ABCD",
            &raw(r#"{"b": 1, "a": "\u00e9"}"#),
            Some("users_table"),
            "2026-11-26T11:32:42.377813Z",
        )
        .unwrap();
        assert_eq!(
            m,
            r#"{"action_type": "db:read", "agent_id": "6F1C2B3A-0000-4000-8000-00000000ABCD", "context": {"a": "\u00e9", "b": 1}, "resource": "users_table", "timestamp": "2026-11-26T11:32:42.377813Z"}"#
        );
    }

    #[test]
    fn nested_sorting_numbers_escapes_and_empties_match_python() {
        // The body as the SDK sends it (insertion order, Python escapes and number forms).
        let body = r#"{"z": {"y": [3, {"b": true, "a": null}], "x": 1e-05}, "\u00e9": "\ud83d\ude00\u007f/\"\\\n\t\u0001", "big": 12345678901234567890, "f": 1e+16, "g": 0.1, "e": {}, "l": []}"#;
        let m = sdk_verification_message(
            "db:read",
            "aim_abc",
            &raw(body),
            None,
            "2026-11-26T11:32:42Z",
        )
        .unwrap();
        assert_eq!(
            m,
            r#"{"action_type": "db:read", "agent_id": "aim_abc", "context": {"big": 12345678901234567890, "e": {}, "f": 1e+16, "g": 0.1, "l": [], "z": {"x": 1e-05, "y": [3, {"a": null, "b": true}]}, "\u00e9": "\ud83d\ude00\u007f/\"\\\n\t\u0001"}, "resource": null, "timestamp": "2026-11-26T11:32:42Z"}"#
        );
    }

    #[test]
    fn strings_are_escaped_the_python_way() {
        let mut s = String::new();
        write_str("é😀\u{7f}/\u{8}\u{c}\r\u{1f} ~", &mut s);
        assert_eq!(s, r#""\u00e9\ud83d\ude00\u007f/\b\f\r\u001f ~""#);
    }

    #[test]
    fn repeated_keys_keep_the_last_and_whitespace_does_not_matter() {
        let out = dumps_sorted(&raw("{ \"a\" : 1 ,\n \"a\": 2 }")).unwrap();
        assert_eq!(out, r#"{"a": 2}"#);
    }

    #[test]
    fn malformed_or_too_deep_input_is_refused() {
        assert!(RawValue::from_string("{\"a\": }".into()).is_err());
        let deep = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH + 2),
            "]".repeat(MAX_DEPTH + 2)
        );
        assert!(dumps_sorted(&raw(&deep)).is_err());
        let ok = format!("{}1{}", "[".repeat(10), "]".repeat(10));
        assert_eq!(dumps_sorted(&raw(&ok)).unwrap(), ok);
    }
}
