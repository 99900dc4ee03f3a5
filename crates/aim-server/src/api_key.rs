//! API key format: `aim_live_` + base64url(32 random bytes) (52 characters in all).
//!
//! Only the SHA-256 digest of the whole key is stored; the key is shown once, at creation or
//! rotation. Lists show the first 17 characters (`aim_live_` + 8) as the key's prefix.

use zeroize::Zeroizing;

use crate::secrets::{b64url, random_bytes, sha256};

/// Every key starts with this.
pub const PREFIX: &str = "aim_live_";
const BODY_LEN: usize = 43;
const SHOWN: usize = 8;

/// A freshly generated key: the secret (shown once), its list prefix and its digest.
pub struct NewKey {
    pub key: Zeroizing<String>,
    pub prefix: String,
    pub hash: Vec<u8>,
}

/// Generates a key.
pub fn generate() -> NewKey {
    let key = Zeroizing::new(format!("{PREFIX}{}", b64url(&random_bytes::<32>()[..])));
    let prefix = key[..PREFIX.len() + SHOWN].to_string();
    let hash = sha256(key.as_bytes());
    NewKey { key, prefix, hash }
}

/// The digest to look a presented key up by, or `None` when it cannot be a key (wrong length or
/// alphabet) — refused without touching the store.
pub fn digest(presented: &str) -> Option<Vec<u8>> {
    let body = presented.strip_prefix(PREFIX)?;
    let ok = body.len() == BODY_LEN
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| sha256(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_differ() {
        let (a, b) = (generate(), generate());
        assert_ne!(*a.key, *b.key);
        assert_eq!(a.key.len(), 52);
        assert!(a.key.starts_with(&a.prefix) && a.prefix.len() == 17);
        assert_eq!(digest(&a.key), Some(a.hash.clone()));
        assert_eq!(digest("aim_live_short"), None);
        assert_eq!(digest(&a.key.replace("aim_live_", "aim_test_")), None);
        let mut bad = a.key.to_string();
        bad.pop();
        bad.push('!');
        assert_eq!(digest(&bad), None);
    }
}
