//! Signed checkpoints (tree heads) of an audit log.
//!
//! A checkpoint commits to the first `treeSize` entries through their Merkle root. Kept somewhere
//! the log's writer cannot change, it makes truncation and rewritten history detectable.
//!
//! Signed bytes (UTF-8, each line ending in `\n`):
//!
//! ```text
//! aim-audit-checkpoint/v1
//! <treeSize in decimal>
//! <rootHash, 64 lowercase hex>
//! <timestamp, RFC 3339>
//! <keyId>
//! ```
//!
//! The first line separates this signature domain from every other thing the same key signs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::merkle::{self, Hash};
use crate::clock::{parse_rfc3339, rfc3339_millis};
use crate::keys::{PublicKey, decode_base64};
use crate::{Error, Result};

/// First line of the signed bytes.
pub const CHECKPOINT_DOMAIN: &str = "aim-audit-checkpoint/v1";

/// A signed tree head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checkpoint {
    pub tree_size: u64,
    /// Lowercase hex Merkle root of the first `tree_size` entries.
    pub root_hash: String,
    pub timestamp: String,
    pub key_id: String,
    /// Base64 of the signer's raw Ed25519 public key.
    pub public_key: String,
    /// Base64 Ed25519 signature over [`Checkpoint::signed_bytes`].
    pub signature: String,
}

impl Checkpoint {
    /// Signs a checkpoint of a tree of `tree_size` leaves with root `root`.
    pub fn sign(
        key: &ed25519_dalek::SigningKey,
        key_id: &str,
        tree_size: u64,
        root: &Hash,
        time: DateTime<Utc>,
    ) -> Self {
        use ed25519_dalek::Signer as _;
        let mut cp = Checkpoint {
            tree_size,
            root_hash: merkle::to_hex(root),
            timestamp: rfc3339_millis(time),
            key_id: key_id.to_string(),
            public_key: STANDARD.encode(key.verifying_key().to_bytes()),
            signature: String::new(),
        };
        cp.signature = STANDARD.encode(key.sign(&cp.signed_bytes()).to_bytes());
        cp
    }

    /// The exact bytes the signature covers (see the module docs).
    pub fn signed_bytes(&self) -> Vec<u8> {
        format!(
            "{CHECKPOINT_DOMAIN}\n{}\n{}\n{}\n{}\n",
            self.tree_size, self.root_hash, self.timestamp, self.key_id
        )
        .into_bytes()
    }

    /// The root as bytes.
    pub fn root(&self) -> Result<Hash> {
        if self.root_hash.len() != 64 || self.root_hash.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(Error::invalid(
                "checkpoint",
                "rootHash must be 64 lowercase hex digits",
            ));
        }
        merkle::from_hex(&self.root_hash)
    }

    /// Verifies the signature with the embedded key and, when given, that the key is `trusted`.
    pub fn verify(&self, trusted: Option<&ed25519_dalek::VerifyingKey>) -> Result<()> {
        self.root()?;
        parse_rfc3339(&self.timestamp)?;
        let key = PublicKey::from_base64(&self.public_key)?;
        if let Some(t) = trusted
            && key.as_dalek() != t
        {
            return Err(Error::State(format!(
                "checkpoint is signed by {}, not by the trusted log key",
                self.public_key
            )));
        }
        let sig = decode_base64("checkpoint signature", &self.signature)?;
        if !key.verify(&self.signed_bytes(), &sig) {
            return Err(Error::State("checkpoint signature does not verify".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[b; 32])
    }

    #[test]
    fn signed_bytes_are_the_documented_text() {
        let t = parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let cp = Checkpoint::sign(&key(1), "log-1", 3, &[0xab; 32], t);
        assert_eq!(
            String::from_utf8(cp.signed_bytes()).unwrap(),
            format!(
                "aim-audit-checkpoint/v1\n3\n{}\n2026-01-01T00:00:00.000Z\nlog-1\n",
                "ab".repeat(32)
            )
        );
        cp.verify(None).unwrap();
        cp.verify(Some(&key(1).verifying_key())).unwrap();
    }

    #[test]
    fn tampering_or_wrong_key_fails() {
        let t = parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let cp = Checkpoint::sign(&key(1), "log-1", 3, &[0xab; 32], t);
        assert!(cp.verify(Some(&key(2).verifying_key())).is_err());
        for f in [
            |c: &mut Checkpoint| c.tree_size += 1,
            |c: &mut Checkpoint| c.root_hash = "cd".repeat(32),
            |c: &mut Checkpoint| c.timestamp = "2026-01-01T00:00:01.000Z".into(),
            |c: &mut Checkpoint| c.key_id = "other".into(),
            |c: &mut Checkpoint| c.root_hash = "AB".repeat(32),
            |c: &mut Checkpoint| c.signature = "!!".into(),
        ] {
            let mut bad = cp.clone();
            f(&mut bad);
            assert!(bad.verify(None).is_err(), "{bad:?}");
        }
        // a checkpoint re-signed by another key verifies on its own, but not against the trusted key
        let forged = Checkpoint::sign(&key(2), "log-1", 3, &[0xcd; 32], t);
        assert!(forged.verify(None).is_ok());
        assert!(forged.verify(Some(&key(1).verifying_key())).is_err());
    }
}
