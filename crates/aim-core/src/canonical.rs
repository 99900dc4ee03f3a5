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
