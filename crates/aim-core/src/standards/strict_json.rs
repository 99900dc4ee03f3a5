//! A strict JSON reader for signed documents.
//!
//! RFC 8259 §4 leaves the meaning of duplicate object members open, and real parsers disagree
//! (first wins, last wins, Go's `encoding/json` folds member names case-insensitively onto struct
//! fields). A signed document whose bytes mean different things to different conforming parsers
//! is a smuggling vector, so this reader refuses them outright.
//!
//! Invariants of [`parse`]:
//! - the input is one complete JSON text (RFC 8259) in UTF-8; trailing non-whitespace, invalid
//!   UTF-8, invalid escapes and lone UTF-16 surrogates are errors (serde_json's tokenizer);
//! - no object, at any depth, has two members whose names are equal, or equal after case folding
//!   ([`fold_key`]); the error names the offending member;
//! - numbers are kept as serde_json numbers: integers that fit `i64`/`u64` exactly, anything else
//!   as an IEEE-754 double (the JSON number model RFC 8785 canonicalizes); a number that
//!   overflows a double is an error, never infinity;
//! - nesting deeper than serde_json's recursion limit (128) is an error, not a stack overflow;
//! - member order is preserved (serde_json `preserve_order`), which matters only for display:
//!   every signed form in this crate is canonicalized (RFC 8785) or built field by field.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a document was refused. `Display` is one sentence for a reject reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrictJsonError(pub String);

impl fmt::Display for StrictJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StrictJsonError {}

/// Parses `bytes` as one strict JSON document (see the module invariants).
pub fn parse(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed {
        path: String::new(),
    }
    .deserialize(&mut de)
    .map_err(|e| StrictJsonError(e.to_string()))?;
    de.end()
        .map_err(|e| StrictJsonError(format!("trailing data after the JSON value: {e}")))?;
    Ok(value)
}

/// The name under which two member names collide: each character mapped to the smallest
/// representative of its simple case-fold orbit, approximated as `lower(upper(c))` when both
/// mappings are single characters (so `K`, `k` and KELVIN SIGN U+212A meet at `k`, `ſ` and `S`
/// at `s`, `ς`/`σ`/`Σ` at `σ`). This folds at least as much as Go's `encoding/json` field
/// matching (it also folds a few pairs such as dotless `ı`/`I` that Go keeps apart), so every
/// pair Go would merge is refused here; refusing slightly more is the safe direction.
pub fn fold_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        out.push(fold_char(c));
    }
    out
}

fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let upper = single(c.to_uppercase()).unwrap_or(c);
    single(upper.to_lowercase()).unwrap_or(upper)
}

fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
    let first = it.next()?;
    if it.next().is_some() {
        None
    } else {
        Some(first)
    }
}

/// Deserializes one value, refusing duplicate or fold-colliding member names. `path` is the
/// JSON-pointer-like location used in error messages.
struct StrictSeed {
    path: String,
}

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor { path: self.path })
    }
}

struct StrictVisitor {
    path: String,
}

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("number at {} is not finite", self.display_path())))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictSeed {
            path: format!("{}/{}", self.path, out.len()),
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        // folded name -> the first spelling seen, for the error message
        let mut seen: HashMap<String, String> = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let folded = fold_key(&key);
            if let Some(first) = seen.get(&folded) {
                let what = if *first == key {
                    format!("duplicate member {key:?}")
                } else {
                    format!("duplicate member {key:?} (case-folds onto {first:?})")
                };
                return Err(de::Error::custom(format!(
                    "{what} in object at {}",
                    self.display_path()
                )));
            }
            seen.insert(folded, key.clone());
            let value = map.next_value_seed(StrictSeed {
                path: format!("{}/{}", self.path, key),
            })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

impl StrictVisitor {
    fn display_path(&self) -> &str {
        if self.path.is_empty() {
            "/"
        } else {
            &self.path
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        match parse(s.as_bytes()) {
            Ok(v) => panic!("{s} parsed as {v}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn accepts_ordinary_documents_and_keeps_order() {
        let v = parse(br#" {"b": [1, -2, 3.5, true, null, "x"], "a": {"c": {}}} "#).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(v["b"][1], Value::from(-2));
    }

    #[test]
    fn refuses_exact_duplicates_at_top_level() {
        assert!(err(r#"{"a":1,"a":1}"#).contains("duplicate member \"a\""));
    }

    #[test]
    fn refuses_nested_duplicates_and_names_the_path() {
        let e = err(r#"{"x":{"y":[{"ok":1},{"c":1,"c":2}]}}"#);
        assert!(e.contains("duplicate member \"c\""), "{e}");
        assert!(e.contains("/x/y/1"), "{e}");
    }

    #[test]
    fn refuses_case_folded_duplicates() {
        let e = err(r#"{"TRUSTLEVEL":9,"trustLevel":4}"#);
        assert!(e.contains("case-folds onto \"TRUSTLEVEL\""), "{e}");
        // Unicode folds Go's encoding/json also applies: KELVIN SIGN and LONG S.
        err("{\"kid\":1,\"\u{212A}id\":2}");
        err("{\"sig\":1,\"\u{17F}ig\":2}");
        err("{\"\u{3C3}\":1,\"\u{3A3}\":2}");
        // Escaped spellings are compared after unescaping.
        err(r#"{"ab":1,"\u0061b":2}"#);
    }

    #[test]
    fn distinct_names_are_fine() {
        parse(r#"{"a":1,"b":2,"ab":3,"a b":4,"ß":5,"ss":6}"#.as_bytes()).unwrap();
    }

    #[test]
    fn numbers() {
        let v = parse(br#"[18446744073709551615, -9223372036854775808, 1e300, 1.5]"#).unwrap();
        assert_eq!(v[0].as_u64(), Some(u64::MAX));
        assert_eq!(v[1].as_i64(), Some(i64::MIN));
        assert_eq!(v[2].as_f64(), Some(1e300));
        // Beyond u64: kept as a double (RFC 8785 number model), not an error.
        assert!(parse(b"123456789012345678901234567890").unwrap().is_f64());
        // Overflowing a double is an error, never infinity.
        err("1e400");
        err("-1e400");
        // Not JSON numbers.
        err("01");
        err("NaN");
        err("+1");
        err(".5");
    }

    #[test]
    fn refuses_bad_text() {
        assert!(parse(b"{\"a\":\"\xff\"}").is_err(), "invalid UTF-8");
        assert!(parse(b"\"\xc3\"").is_err(), "truncated UTF-8");
        err(r#""\x41""#);
        err(r#""\uZZZZ""#);
        err(r#""\ud800""#); // lone high surrogate
        err(r#""\udc00x""#); // lone low surrogate
        err("\"tab\there\""); // raw control character
        err(r#"{"a":1} x"#);
        err(r#"{"a":1,}"#);
        err("");
        err(r#"{"a":1"#);
        assert_eq!(
            parse(br#""\ud83d\ude00""#).unwrap(),
            Value::from("\u{1F600}")
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        err(&deep);
    }

    #[test]
    fn fold_key_examples() {
        assert_eq!(fold_key("TrustLevel"), "trustlevel");
        assert_eq!(fold_key("\u{212A}"), "k");
        assert_eq!(fold_key("\u{17F}"), "s");
        assert_eq!(fold_key("\u{3C2}"), fold_key("\u{3A3}"));
        assert_eq!(fold_key("ß"), "ß");
    }
}
