//! Signed manifests: an MCP server (or its operator) with an Ed25519 identity signs its
//! capability manifest.
//!
//! Document (`format` = [`SIGNED_FORMAT`]): `manifest`, `manifestHash` (surface hash),
//! `structuralHash`, `capabilities` (classes), `signer` (`id`, `did`, `didKey`, `publicKey`
//! base64, `keyId`), `signedAt` (RFC 3339), `signature` (base64 Ed25519).
//!
//! Invariant: the signature covers the RFC 8785 (JCS) bytes of the whole document without its
//! `signature` member. [`verify`] recomputes both hashes and the capability list from the
//! manifest, checks that `signer.didKey` and (for agent ids) `signer.id` derive from
//! `signer.publicKey`, verifies the signature strictly, and — when the caller pins an expected
//! key — that the signer key is that key. Any mismatch is a rejection with a reason.

use serde::{Deserialize, Serialize};

use aim_core::keys::{KeyPair, PublicKey, decode_base64, encode_base64};

use crate::manifest::Manifest;
use crate::{Error, Result};

/// `format` of a signed manifest.
pub const SIGNED_FORMAT: &str = "opena2a-mcp-signed-manifest";

/// Who signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signer {
    pub id: String,
    pub did: String,
    pub did_key: String,
    pub public_key: String,
    pub key_id: String,
}

/// A signed manifest document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedManifest {
    pub format: String,
    pub version: u32,
    pub manifest: Manifest,
    pub manifest_hash: String,
    pub structural_hash: String,
    pub capabilities: Vec<String>,
    pub signer: Signer,
    pub signed_at: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signature: String,
}

impl SignedManifest {
    /// The bytes the signature covers.
    pub fn signing_bytes(&self) -> Result<Vec<u8>> {
        let mut unsigned = self.clone();
        unsigned.signature = String::new();
        Ok(aim_core::canonical::jcs(&unsigned)?)
    }
}

fn capability_names(m: &Manifest) -> Vec<String> {
    m.capabilities()
        .into_iter()
        .map(|c| c.as_str().to_string())
        .collect()
}

/// Signs `manifest` with `key`; `signer_id`/`signer_did`/`key_id` name the identity.
pub fn sign(
    manifest: &Manifest,
    key: &KeyPair,
    signer_id: &str,
    signer_did: &str,
    key_id: &str,
    signed_at: chrono::DateTime<chrono::Utc>,
) -> Result<SignedManifest> {
    manifest.check_format()?;
    let pk = key.public();
    let mut doc = SignedManifest {
        format: SIGNED_FORMAT.into(),
        version: 1,
        manifest: manifest.clone(),
        manifest_hash: manifest.surface_hash()?,
        structural_hash: manifest.structural_hash()?,
        capabilities: capability_names(manifest),
        signer: Signer {
            id: signer_id.into(),
            did: signer_did.into(),
            did_key: pk.did_key(),
            public_key: pk.to_base64(),
            key_id: key_id.into(),
        },
        signed_at: signed_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        signature: String::new(),
    };
    doc.signature = encode_base64(&key.sign(&doc.signing_bytes()?));
    Ok(doc)
}

/// Outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub valid: bool,
    /// Why it was rejected (empty when valid).
    pub reasons: Vec<String>,
    pub signer_id: String,
    pub manifest_hash: String,
}

/// Verifies a signed manifest (see the module invariant). `expected_key`: the key the signer
/// must have (a registered or pinned key); `None` checks self-consistency only.
pub fn verify(doc: &SignedManifest, expected_key: Option<&PublicKey>) -> Result<Verdict> {
    let mut reasons = Vec::new();
    if doc.format != SIGNED_FORMAT || doc.version != 1 {
        reasons.push(format!("unknown format {} v{}", doc.format, doc.version));
    }
    if let Err(e) = doc.manifest.check_format() {
        reasons.push(e.to_string());
    }
    match doc.manifest.surface_hash() {
        Ok(h) if h == doc.manifest_hash => {}
        Ok(_) => {
            reasons.push("manifestHash does not match the manifest (tampered manifest)".into())
        }
        Err(e) => reasons.push(e.to_string()),
    }
    match doc.manifest.structural_hash() {
        Ok(h) if h == doc.structural_hash => {}
        _ => reasons.push("structuralHash does not match the manifest".into()),
    }
    if capability_names(&doc.manifest) != doc.capabilities {
        reasons.push("capabilities do not match the manifest".into());
    }
    let key = match PublicKey::from_base64(&doc.signer.public_key) {
        Ok(k) => Some(k),
        Err(e) => {
            reasons.push(format!("signer publicKey: {e}"));
            None
        }
    };
    if let Some(k) = &key {
        if k.did_key() != doc.signer.did_key {
            reasons.push("signer didKey does not match publicKey".into());
        }
        if aim_core::keys::is_agent_id(&doc.signer.id) && k.agent_id() != doc.signer.id {
            // A rotated identity keeps its id; only the inception key derives it. Report it
            // only when the caller has not pinned the key.
            if expected_key.is_none() {
                reasons.push("signer id is not derived from publicKey (rotated key? verify with --public-key)".into());
            }
        }
        if let Some(exp) = expected_key
            && exp.to_bytes() != k.to_bytes()
        {
            reasons.push("signed by a different key than the expected one".into());
        }
        match decode_base64("signature", &doc.signature) {
            Ok(sig) => {
                let ok = doc
                    .signing_bytes()
                    .map(|b| k.verify(&b, &sig))
                    .unwrap_or(false);
                if !ok {
                    reasons.push("signature does not verify".into());
                }
            }
            Err(e) => reasons.push(e.to_string()),
        }
    }
    Ok(Verdict {
        valid: reasons.is_empty(),
        reasons,
        signer_id: doc.signer.id.clone(),
        manifest_hash: doc.manifest_hash.clone(),
    })
}

/// Parses a signed-manifest document.
pub fn parse(text: &str) -> Result<SignedManifest> {
    serde_json::from_str(text).map_err(|e| Error::invalid("signed manifest", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest() -> Manifest {
        Manifest::from_parts(
            &json!({"name": "notes", "version": "1"}),
            None,
            Some(&[json!({"name": "read_file", "description": "Read a file", "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}}})]),
            None,
            None,
        )
        .unwrap()
    }

    fn signed(seed: u8) -> (SignedManifest, KeyPair) {
        let kp = KeyPair::from_seed(&[seed; 32]);
        let id = kp.public().agent_id();
        let did = aim_core::identity::agent_did(&id);
        let d = sign(
            &manifest(),
            &kp,
            &id,
            &did,
            &format!("{id}#key-1"),
            chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        )
        .unwrap();
        (d, kp)
    }

    #[test]
    fn wrong_expected_key_rejected() {
        let (d, _) = signed(1);
        let other = KeyPair::from_seed(&[2; 32]).public();
        let v = verify(&d, Some(&other)).unwrap();
        assert!(!v.valid);
        assert!(
            v.reasons.iter().any(|r| r.contains("different key")),
            "{v:?}"
        );
    }

    #[test]
    fn tampered_manifest_rejected() {
        let (mut d, _) = signed(1);
        d.manifest.tools.as_mut().unwrap()[0].description =
            Some("Read a file, then email it".into());
        let v = verify(&d, None).unwrap();
        assert!(!v.valid);
        assert!(v.reasons.iter().any(|r| r.contains("tampered")), "{v:?}");
        // Even with the hashes recomputed, the signature no longer covers the document.
        d.manifest_hash = d.manifest.surface_hash().unwrap();
        let v = verify(&d, None).unwrap();
        assert_eq!(v.reasons, ["signature does not verify"]);
    }

    #[test]
    fn tampered_signature_and_swapped_key_rejected() {
        let (mut d, _) = signed(1);
        let mut sig = decode_base64("signature", &d.signature).unwrap();
        sig[5] ^= 1;
        d.signature = encode_base64(&sig);
        assert!(!verify(&d, None).unwrap().valid);
        let (mut d, _) = signed(1);
        let other = KeyPair::from_seed(&[2; 32]).public();
        d.signer.public_key = other.to_base64();
        d.signer.did_key = other.did_key();
        let v = verify(&d, None).unwrap();
        assert!(!v.valid, "{v:?}");
        let (mut d, _) = signed(1);
        d.signature = "!!!".into();
        assert!(!verify(&d, None).unwrap().valid);
    }

    #[test]
    fn valid_roundtrip_through_text() {
        let (d, kp) = signed(1);
        let text = serde_json::to_string_pretty(&d).unwrap();
        let back = parse(&text).unwrap();
        let v = verify(&back, Some(&kp.public())).unwrap();
        assert!(v.valid, "{v:?}");
        assert_eq!(back.capabilities, ["read_files"]);
        assert!(parse("{\"format\": 1}").is_err());
    }
}
