//! Canonical byte forms: the exact bytes that get hashed or signed.
//!
//! Invariant: nothing in AIM signs or hashes "whatever serde produced". JSON objects are reduced to
//! RFC 8785 (JSON Canonicalization Scheme) bytes by [`jcs`]; other signed strings have their own
//! documented builders next to the protocol that uses them (e.g. [`crate::aip`]).

use serde::Serialize;

use crate::{Error, Result};

/// RFC 8785 canonical bytes of any serializable value (object keys sorted by UTF-16 code units,
/// ECMAScript number formatting, minimal string escaping, no whitespace).
pub fn jcs<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json_canonicalizer::to_vec(value)
        .map_err(|e| Error::invalid("JSON for canonicalization", e))
}

/// [`jcs`] as a `String` (JCS output is always UTF-8).
pub fn jcs_string<T: Serialize>(value: &T) -> Result<String> {
    serde_json_canonicalizer::to_string(value)
        .map_err(|e| Error::invalid("JSON for canonicalization", e))
}

/// Largest integer magnitude an IEEE double holds exactly (2^53): JCS writes numbers as doubles,
/// so integers up to it print as their digits.
const EXACT_INT: u64 = 1 << 53;

/// [`jcs_string`] of a JSON value, written in one pass when the value allows it: every object
/// key ASCII (byte order is then UTF-16 order), every integer within ±2^53 (its digits are its
/// ECMAScript form), every float finite (formatted by `ryu-js`, ECMAScript's algorithm).
/// Anything else goes through [`jcs_string`]. Invariant: the output is byte-identical to
/// [`jcs_string`] for every value (property test `fast_jcs_matches_the_canonicalizer`).
pub fn jcs_value_string(value: &serde_json::Value) -> Result<String> {
    let mut out = Vec::with_capacity(256);
    if write_jcs(value, &mut out)? {
        String::from_utf8(out).map_err(|e| Error::invalid("JSON for canonicalization", e))
    } else {
        jcs_string(value)
    }
}

/// Appends `v`'s JCS form to `out`; `Ok(false)` when `v` needs the general path.
fn write_jcs(v: &serde_json::Value, out: &mut Vec<u8>) -> Result<bool> {
    use serde_json::Value;
    let escaped = |s: &str, out: &mut Vec<u8>| {
        // serde_json escapes exactly what RFC 8785 §3.2.2.2 escapes, in the same forms.
        serde_json::to_writer(out, s).map_err(|e| Error::invalid("JSON for canonicalization", e))
    };
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                if i.unsigned_abs() > EXACT_INT {
                    return Ok(false);
                }
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                if u > EXACT_INT {
                    return Ok(false);
                }
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() => {
                        out.extend_from_slice(ryu_js::Buffer::new().format_finite(f).as_bytes())
                    }
                    _ => return Ok(false),
                }
            }
        }
        Value::String(s) => escaped(s, out)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if !write_jcs(item, out)? {
                    return Ok(false);
                }
            }
            out.push(b']');
        }
        Value::Object(map) => {
            if !map.keys().all(|k| k.is_ascii()) {
                return Ok(false);
            }
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                escaped(k, out)?;
                out.push(b':');
                if !write_jcs(item, out)? {
                    return Ok(false);
                }
            }
            out.push(b'}');
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The fixed edges of the fast path agree with the canonicalizer (the property test in
    /// `tests/keys_props.rs` covers random values).
    #[test]
    fn fast_path_edges_match_the_canonicalizer() {
        let exact = 1u64 << 53;
        for v in [
            json!({"b": 1, "a": [true, null, "x\u{1f}\u{7f}\u{2028}\"\\/"], "A": {}}),
            json!([
                exact,
                exact + 1,
                -(exact as i64),
                -(exact as i64) - 1,
                u64::MAX,
                i64::MIN
            ]),
            json!([
                -0.0,
                1e21,
                1e-7,
                123e-20,
                0.1,
                1.5,
                100.0,
                f64::MAX,
                f64::MIN_POSITIVE
            ]),
            json!({"\u{e000}": 1, "\u{1f600}": 2, "é": 3, "z": 4}),
            json!({"trustScore": 0.6125, "status": "approved", "reasonCodes": ["PERMITTED"]}),
        ] {
            assert_eq!(
                jcs_value_string(&v).unwrap(),
                jcs_string(&v).unwrap(),
                "{v}"
            );
        }
        // The values the server writes take the fast path (no fallback needed).
        let mut out = Vec::new();
        assert!(write_jcs(&json!({"a": 0.25, "b": [1, "x"], "c": null}), &mut out).unwrap());
        assert_eq!(out, br#"{"a":0.25,"b":[1,"x"],"c":null}"#);
        assert!(!write_jcs(&json!({"é": 1}), &mut Vec::new()).unwrap());
        assert!(!write_jcs(&json!(exact + 1), &mut Vec::new()).unwrap());
    }
}
