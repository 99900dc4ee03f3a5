//! OpenA2A standards: ATX agent credentials, ATP trust proofs and transparency proofs, AIP trust
//! score composition, and the fixture-driven conformance runner.
//!
//! - [`strict_json`]: the strict JSON reader every signed document goes through first.
//! - [`signatures`]: keys, signature entries, and the one rule set for signature lists
//!   (key-to-authority binding, every declared signature verifies, hybrid Ed25519 + ML-DSA-65,
//!   threshold of distinct signers).
//! - [`atx`]: ATX v1.0 / v1.1 credential verification and issuance.
//! - [`atp`]: ATP trust proofs, signed tree heads, inclusion / consistency proofs, revocation
//!   lists and discovery documents.
//! - [`trust_composition`]: AIP §6.1 composition of factor scores (exclusion, redistribution,
//!   neutral-imputed ceiling, unscored state).
//! - [`conformance`]: reads fixture files and decides each with the modules above.
//!
//! Verdicts are values ([`Rejection`]), not [`crate::Error`]s: a rejected credential is a normal
//! outcome of verification.

pub mod atp;
pub mod atx;
pub mod conformance;
pub mod signatures;
pub mod strict_json;
pub mod trust_composition;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Why a standards document was rejected. The wire strings are the fixture suites' categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    /// Not a well-formed document (strict JSON, missing or mistyped members, bad timestamps).
    ParseError,
    /// The document declares a version this implementation does not verify.
    UnsupportedVersion,
    /// The validity window has ended (or not yet begun).
    Expired,
    /// The subject was revoked (credential flag or revocation list).
    Revoked,
    /// The issuer is not one the verifier trusts.
    UntrustedIssuer,
    /// A declared signature does not verify, or no eligible key signed.
    SignatureInvalid,
    /// Well-formed and signed, but violates a semantic rule (e.g. an over-long validity window).
    SemanticInvalid,
    /// A Merkle inclusion or consistency proof does not reproduce the signed root.
    ProofInvalid,
}

impl Category {
    /// The wire string, e.g. `SIGNATURE_INVALID`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::ParseError => "PARSE_ERROR",
            Category::UnsupportedVersion => "UNSUPPORTED_VERSION",
            Category::Expired => "EXPIRED",
            Category::Revoked => "REVOKED",
            Category::UntrustedIssuer => "UNTRUSTED_ISSUER",
            Category::SignatureInvalid => "SIGNATURE_INVALID",
            Category::SemanticInvalid => "SEMANTIC_INVALID",
            Category::ProofInvalid => "PROOF_INVALID",
        }
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A negative verdict: the category and one human sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub category: Category,
    pub reason: String,
}

impl Rejection {
    /// Builds a rejection.
    pub fn new(category: Category, reason: impl Into<String>) -> Self {
        Rejection {
            category,
            reason: reason.into(),
        }
    }

    /// Shorthand for a [`Category::ParseError`].
    pub fn parse(reason: impl Into<String>) -> Self {
        Self::new(Category::ParseError, reason)
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.category, self.reason)
    }
}

/// Parses a strict RFC 3339 timestamp: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, upper-case
/// `T` and `Z` only. RFC 3339 §5.6 lets applications accept a space or lower-case letters; the
/// signed forms here do not, so such a string is an error rather than a second spelling of the
/// same instant.
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, String> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    let shape_ok = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && {
            let mut i = 19;
            if b.get(i) == Some(&b'.') {
                i += 1;
                let start = i;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                i > start && tz_ok(&b[i..])
            } else {
                tz_ok(&b[i..])
            }
        };
    if !shape_ok {
        return Err(format!(
            "{s:?} is not an RFC 3339 timestamp (YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM))"
        ));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not a valid RFC 3339 timestamp: {e}"))
}

fn tz_ok(rest: &[u8]) -> bool {
    match rest {
        [b'Z'] => true,
        [sign, h1, h2, b':', m1, m2] => {
            (*sign == b'+' || *sign == b'-') && [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit())
        }
        _ => false,
    }
}

/// Decodes lower- or upper-case hex of exactly `len` bytes.
pub(crate) fn decode_hex_exact(what: &str, text: &str, len: usize) -> Result<Vec<u8>, String> {
    let bytes = hex::decode(text).map_err(|e| format!("{what} is not hex: {e}"))?;
    if bytes.len() != len {
        return Err(format!("{what} is {} bytes, expected {len}", bytes.len()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert!(parse_timestamp("2026-05-24T00:00:00Z").is_ok());
        assert!(parse_timestamp("2026-05-24T00:00:00.123Z").is_ok());
        assert!(parse_timestamp("2026-05-24T02:00:00+02:00").is_ok());
        assert_eq!(
            parse_timestamp("2026-05-24T02:00:00+02:00").unwrap(),
            parse_timestamp("2026-05-24T00:00:00Z").unwrap()
        );
        for bad in [
            "2026-03-22 15:00:00",
            "2026-03-22 15:00:00Z",
            "2026-03-22t15:00:00Z",
            "2026-03-22T15:00:00z",
            "2026-03-22T15:00:00",
            "2026-03-22T15:00:00.Z",
            "2026-13-22T15:00:00Z",
            "2026-02-30T15:00:00Z",
            "2026-03-22T15:00:00+0200",
            "",
            "2026-03-22T15:00:00Z ",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad:?} accepted");
        }
    }
}
