//! Signed agent requests: the canonical bytes an agent signs for every call to the AIM server, and
//! the headers that carry the signature.
//!
//! The signed string (UTF-8, lines joined by a single `\n`, no trailing newline):
//!
//! ```text
//! AIM-REQUEST-V1
//! <agent id>
//! <METHOD, upper case>
//! <path with query, exactly as sent on the request line, e.g. /api/v1/agents/aim_x/heartbeat?a=1>
//! <timestamp: Unix seconds, decimal>
//! <nonce>
//! <lowercase hex SHA-256 of the body bytes (of the empty string when there is no body)>
//! ```
//!
//! Headers: `X-AIM-Agent-Id`, `X-AIM-Timestamp`, `X-AIM-Nonce`, `X-AIM-Signature` (standard base64
//! with padding of the 64-byte Ed25519 signature).
//!
//! Invariants:
//! - every element that decides what the request does (agent, method, path, query, body) and the
//!   two freshness elements (timestamp, nonce) are covered; changing any one byte of them breaks
//!   the signature;
//! - no element can contain `\n` (methods and paths are checked by [`canonical_request`]; the
//!   timestamp is a number; nonces are restricted to [`valid_nonce`]), so the lines are unambiguous.

use sha2::{Digest, Sha256};

use crate::keys::{KeyPair, encode_base64};
use crate::{Error, Result};

/// First line of the signed string (the format version).
pub const VERSION_LINE: &str = "AIM-REQUEST-V1";
/// Header carrying the agent id.
pub const HEADER_AGENT_ID: &str = "x-aim-agent-id";
/// Header carrying the Unix-seconds timestamp.
pub const HEADER_TIMESTAMP: &str = "x-aim-timestamp";
/// Header carrying the nonce.
pub const HEADER_NONCE: &str = "x-aim-nonce";
/// Header carrying the signature.
pub const HEADER_SIGNATURE: &str = "x-aim-signature";
/// Shortest accepted nonce (characters).
pub const NONCE_MIN: usize = 16;
/// Longest accepted nonce (characters).
pub const NONCE_MAX: usize = 128;

/// Whether `nonce` has the accepted shape: 16 to 128 characters of the base64 / base64url
/// alphabets (`A-Z a-z 0-9 + / - _ =`).
pub fn valid_nonce(nonce: &str) -> bool {
    (NONCE_MIN..=NONCE_MAX).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'='))
}

/// Lowercase hex SHA-256 of `body`.
pub fn body_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The exact string an agent signs (see the module documentation).
pub fn canonical_request(
    agent_id: &str,
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> Result<String> {
    let bad = |s: &str| s.is_empty() || s.bytes().any(|b| b.is_ascii_control() || b == b' ');
    if bad(agent_id) || bad(method) || bad(path_and_query) || !path_and_query.starts_with('/') {
        return Err(Error::invalid(
            "signed request",
            "agent id, method and path must be non-empty, without spaces or control characters, and the path must start with /",
        ));
    }
    if !valid_nonce(nonce) {
        return Err(Error::invalid(
            "signed request",
            "nonce must be 16 to 128 characters of the base64/base64url alphabet",
        ));
    }
    Ok(format!(
        "{VERSION_LINE}\n{agent_id}\n{}\n{path_and_query}\n{timestamp}\n{nonce}\n{}",
        method.to_ascii_uppercase(),
        body_hash(body)
    ))
}

/// The four headers of a signed request, as `(name, value)` pairs.
pub fn sign_request(
    key: &KeyPair,
    agent_id: &str,
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> Result<[(&'static str, String); 4]> {
    let text = canonical_request(agent_id, method, path_and_query, timestamp, nonce, body)?;
    let sig = key.sign(text.as_bytes());
    Ok([
        (HEADER_AGENT_ID, agent_id.to_string()),
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (HEADER_NONCE, nonce.to_string()),
        (HEADER_SIGNATURE, encode_base64(&sig)),
    ])
}

/// The message a NEW key signs to prove possession during a key rotation:
/// `aim-key-rotation/v1|<agent id>|<current key base64>|<new key base64>|<request nonce>`
/// (standard base64 with padding of the raw 32-byte keys). Binding the request nonce makes the
/// proof single-use; the rotation request itself is signed with the current key.
pub fn rotation_proof_input(agent_id: &str, current: &[u8], new: &[u8], nonce: &str) -> String {
    format!(
        "aim-key-rotation/v1|{agent_id}|{}|{}|{nonce}",
        encode_base64(current),
        encode_base64(new)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_string_is_pinned() {
        let s = canonical_request(
            "aim_abc",
            "post",
            "/api/v1/agents/aim_abc/heartbeat?x=1",
            1_767_225_600,
            "AAAAAAAAAAAAAAAAAAAAAA",
            b"{}",
        )
        .unwrap();
        assert_eq!(
            s,
            "AIM-REQUEST-V1\naim_abc\nPOST\n/api/v1/agents/aim_abc/heartbeat?x=1\n1767225600\nAAAAAAAAAAAAAAAAAAAAAA\n44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn line_breaking_inputs_are_refused() {
        for (m, p, n) in [
            ("GET", "/a\nb", "AAAAAAAAAAAAAAAAAAAAAA"),
            ("GE T", "/a", "AAAAAAAAAAAAAAAAAAAAAA"),
            ("GET", "a", "AAAAAAAAAAAAAAAAAAAAAA"),
            ("GET", "/a", "short"),
            ("GET", "/a", "AAAAAAAAAAAAAAAA\nAAAAAA"),
        ] {
            assert!(
                canonical_request("aim_x", m, p, 0, n, b"").is_err(),
                "{m} {p} {n}"
            );
        }
    }

    #[test]
    fn signature_covers_every_element() {
        let key = KeyPair::from_seed(&[9; 32]);
        let n = "BBBBBBBBBBBBBBBBBBBBBB";
        let base = canonical_request("aim_x", "POST", "/p?q=1", 10, n, b"body").unwrap();
        let sig = key.sign(base.as_bytes());
        for other in [
            canonical_request("aim_y", "POST", "/p?q=1", 10, n, b"body"),
            canonical_request("aim_x", "PUT", "/p?q=1", 10, n, b"body"),
            canonical_request("aim_x", "POST", "/p?q=2", 10, n, b"body"),
            canonical_request("aim_x", "POST", "/p?q=1", 11, n, b"body"),
            canonical_request(
                "aim_x",
                "POST",
                "/p?q=1",
                10,
                "CCCCCCCCCCCCCCCCCCCCCC",
                b"body",
            ),
            canonical_request("aim_x", "POST", "/p?q=1", 10, n, b"bodY"),
        ] {
            assert!(!key.public().verify(other.unwrap().as_bytes(), &sig));
        }
        assert!(key.public().verify(base.as_bytes(), &sig));
    }
}
