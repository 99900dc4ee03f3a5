//! Signed checkpoints: an Ed25519 signature by a log key over `(tree size, Merkle root, time,
//! key id)`. A checkpoint kept outside the log (or published) makes truncation and rewritten
//! history detectable; see [`crate::audit::file::AuditFile::verify`].
//!
//! # Signed bytes
//!
//! The signature covers exactly [`Checkpoint::signed_bytes`]: five lines, each ended by `\n`,
//! UTF-8, no trailing data:
//!
//! ```text
//! AIM-AUDIT-CHECKPOINT-V1
//! <treeSize in decimal, no leading zeros>
//! <rootHash, 64 lowercase hex>
//! <timestamp, RFC 3339 as in the JSON>
//! <keyId>
//! ```
//!
//! The first line is a domain-separation tag and version, so a checkpoint signature can never be
//! mistaken for a signature of anything else made with the same key. No field may contain a
//! control character ([`Checkpoint::verify`] rejects it), so the line structure is unambiguous.
//! The public key is not signed: it is the key the signature is checked with, and callers that
//! care which key signed pass it as `trusted`.

use chrono::{DateTime, Utc};
use data_encoding::BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::chain::parse_hex32;
use super::merkle::Hash;
use crate::clock::{parse_rfc3339, rfc3339_millis};
use crate::{Error, Result};

/// Domain-separation tag and version: the first line of the signed bytes.
pub const SIGNED_TAG: &str = "AIM-AUDIT-CHECKPOINT-V1";

/// A signed statement "the log had `tree_size` entries with Merkle root `root_hash`".
///
/// JSON: `{"treeSize","rootHash","timestamp","keyId","publicKey","signature"}`; `rootHash`
/// lowercase hex, `publicKey` (32 raw bytes) and `signature` (64 raw bytes) standard base64 with
/// padding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checkpoint {
    pub tree_size: u64,
    pub root_hash: String,
    pub timestamp: String,
    pub key_id: String,
    pub public_key: String,
    pub signature: String,
}

impl Checkpoint {
    /// Signs a checkpoint for a tree of `tree_size` leaves with root `root`.
    ///
    /// `key_id` must not contain control characters (e.g. `\n`); if it does, the result is a
    /// checkpoint that [`verify`](Self::verify) rejects.
    pub fn sign(
        key: &SigningKey,
        key_id: &str,
        tree_size: u64,
        root: &Hash,
        time: DateTime<Utc>,
    ) -> Self {
        let mut cp = Checkpoint {
            tree_size,
            root_hash: hex::encode(root),
            timestamp: rfc3339_millis(time),
            key_id: key_id.to_string(),
            public_key: BASE64.encode(key.verifying_key().as_bytes()),
            signature: String::new(),
        };
        let sig = key.sign(&cp.signed_bytes());
        cp.signature = BASE64.encode(&sig.to_bytes());
        cp
    }

    /// The exact bytes the signature covers (see the [module docs](self)).
    pub fn signed_bytes(&self) -> Vec<u8> {
        format!(
            "{SIGNED_TAG}\n{}\n{}\n{}\n{}\n",
            self.tree_size, self.root_hash, self.timestamp, self.key_id
        )
        .into_bytes()
    }

    /// The root hash as bytes. Errors unless `rootHash` is 64 lowercase hex.
    pub fn root(&self) -> Result<Hash> {
        parse_hex32(&self.root_hash).ok_or_else(|| {
            Error::invalid(
                "checkpoint",
                format!("rootHash {:?} is not 64 lowercase hex", self.root_hash),
            )
        })
    }

    /// The embedded public key.
    pub fn verifying_key(&self) -> Result<VerifyingKey> {
        let raw: [u8; 32] = decode_b64(&self.public_key, "publicKey")?
            .try_into()
            .map_err(|v: Vec<u8>| {
                Error::invalid(
                    "checkpoint",
                    format!("publicKey is {} bytes, expected 32", v.len()),
                )
            })?;
        VerifyingKey::from_bytes(&raw).map_err(|e| {
            Error::invalid(
                "checkpoint",
                format!("publicKey is not an Ed25519 key: {e}"),
            )
        })
    }

    /// Checks that the checkpoint is well formed (root hex, RFC 3339 timestamp, no control
    /// characters, canonical base64), that the signature verifies (RFC 8032 strict verification)
    /// with the embedded public key, and, if `trusted` is given, that the embedded key is that
    /// key.
    ///
    /// This says nothing about a log: compare `tree_size`/`root_hash` with one through
    /// [`crate::audit::file::AuditFile::verify`] or
    /// [`crate::audit::chain::ChainSummary::check_checkpoint`].
    pub fn verify(&self, trusted: Option<&VerifyingKey>) -> Result<()> {
        self.root()?;
        parse_rfc3339(&self.timestamp)?;
        for (name, v) in [("timestamp", &self.timestamp), ("keyId", &self.key_id)] {
            if v.chars().any(char::is_control) {
                return Err(Error::invalid(
                    "checkpoint",
                    format!("{name} contains a control character"),
                ));
            }
        }
        let vk = self.verifying_key()?;
        if let Some(t) = trusted
            && t.as_bytes() != vk.as_bytes()
        {
            return Err(Error::invalid(
                "checkpoint",
                format!(
                    "signed by key {} (keyId {:?}), which is not the trusted key {}",
                    self.public_key,
                    self.key_id,
                    BASE64.encode(t.as_bytes())
                ),
            ));
        }
        let sig: [u8; 64] = decode_b64(&self.signature, "signature")?
            .try_into()
            .map_err(|v: Vec<u8>| {
                Error::invalid(
                    "checkpoint",
                    format!("signature is {} bytes, expected 64", v.len()),
                )
            })?;
        vk.verify_strict(&self.signed_bytes(), &Signature::from_bytes(&sig))
            .map_err(|_| {
                Error::invalid(
                    "checkpoint",
                    "the signature does not verify with the embedded public key (the checkpoint was altered or forged)",
                )
            })
    }
}

/// Strict standard base64 with padding; rejects non-canonical encodings so each value has one
/// spelling.
fn decode_b64(s: &str, what: &str) -> Result<Vec<u8>> {
    let v = BASE64
        .decode(s.as_bytes())
        .map_err(|e| Error::invalid("checkpoint", format!("{what} is not base64: {e}")))?;
    if BASE64.encode(&v) != s {
        return Err(Error::invalid(
            "checkpoint",
            format!("{what} is not canonical base64"),
        ));
    }
    Ok(v)
}
