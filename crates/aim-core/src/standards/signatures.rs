//! Keys, signature entries and the one rule set for a list of signatures over one message.
//!
//! Used by ATX credentials and ATP trust proofs alike. Invariants of [`verify_signature_set`]:
//! - a signature is checked only against a configured key with the *same* `keyId` and the same
//!   algorithm, and only if the caller's eligibility test accepts that key's controlling
//!   authority (the DID before `#` in the key id); a verifier never "tries every configured key";
//! - every declared signature must verify: one invalid, unknown-key or unsupported-algorithm
//!   entry rejects the whole set, so a forged entry cannot ride a valid one;
//! - at least one Ed25519 signature verifies (the classical leg is always required), and if any
//!   ML-DSA-65 signature is present at least one verifies (hybrid rule);
//! - the number of *distinct* Ed25519 public keys that verified must reach
//!   [`SignaturePolicy::min_distinct_signers`] (threshold cosignature); repeating one key's
//!   signature does not count twice;
//! - Ed25519 uses `verify_strict`; ML-DSA-65 is FIPS 204 `ML-DSA.Verify` with an empty context
//!   string, raw 1952-byte public keys and raw 3309-byte signatures (no container framing).

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ml_dsa::{MlDsa65, Signature as MlDsaSignature, VerifyingKey as MlDsaVerifyingKey};
use serde::{Deserialize, Serialize};

use super::decode_hex_exact;

/// Ed25519 public key length.
pub const ED25519_PUBLIC_KEY_LEN: usize = 32;
/// Ed25519 signature length.
pub const ED25519_SIGNATURE_LEN: usize = 64;
/// ML-DSA-65 encoded public key length (FIPS 204 Table 2).
pub const ML_DSA_65_PUBLIC_KEY_LEN: usize = 1952;
/// ML-DSA-65 encoded signature length (FIPS 204 Table 2).
pub const ML_DSA_65_SIGNATURE_LEN: usize = 3309;

/// A signature algorithm named in the standards' `algorithm` members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Ed25519,
    MlDsa65,
}

impl Algorithm {
    /// Parses the wire name (`Ed25519`, `ML-DSA-65`); exact spelling only.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "Ed25519" => Some(Algorithm::Ed25519),
            "ML-DSA-65" => Some(Algorithm::MlDsa65),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "Ed25519",
            Algorithm::MlDsa65 => "ML-DSA-65",
        }
    }
}

/// Public key material of one algorithm.
#[derive(Clone)]
pub enum KeyMaterial {
    Ed25519(ed25519_dalek::VerifyingKey),
    MlDsa65(Box<MlDsaVerifyingKey<MlDsa65>>),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyMaterial::Ed25519(k) => write!(f, "Ed25519({})", hex::encode(k.as_bytes())),
            KeyMaterial::MlDsa65(_) => f.write_str("ML-DSA-65(..)"),
        }
    }
}

impl KeyMaterial {
    /// Decodes raw public key bytes for `algorithm`. Ed25519 keys must be valid curve points.
    pub fn from_bytes(algorithm: Algorithm, bytes: &[u8]) -> Result<Self, String> {
        match algorithm {
            Algorithm::Ed25519 => {
                let arr: [u8; ED25519_PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| {
                    format!(
                        "Ed25519 public key is {} bytes, expected {ED25519_PUBLIC_KEY_LEN}",
                        bytes.len()
                    )
                })?;
                ed25519_dalek::VerifyingKey::from_bytes(&arr)
                    .map(KeyMaterial::Ed25519)
                    .map_err(|e| format!("Ed25519 public key is not a valid point: {e}"))
            }
            Algorithm::MlDsa65 => {
                let enc =
                    ml_dsa::EncodedVerifyingKey::<MlDsa65>::try_from(bytes).map_err(|_| {
                        format!(
                            "ML-DSA-65 public key is {} bytes, expected {ML_DSA_65_PUBLIC_KEY_LEN}",
                            bytes.len()
                        )
                    })?;
                Ok(KeyMaterial::MlDsa65(Box::new(MlDsaVerifyingKey::decode(
                    &enc,
                ))))
            }
        }
    }

    /// Decodes a hex public key for `algorithm`.
    pub fn from_hex(algorithm: Algorithm, text: &str) -> Result<Self, String> {
        let len = match algorithm {
            Algorithm::Ed25519 => ED25519_PUBLIC_KEY_LEN,
            Algorithm::MlDsa65 => ML_DSA_65_PUBLIC_KEY_LEN,
        };
        Self::from_bytes(algorithm, &decode_hex_exact("publicKeyHex", text, len)?)
    }

    /// The algorithm of this key.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            KeyMaterial::Ed25519(_) => Algorithm::Ed25519,
            KeyMaterial::MlDsa65(_) => Algorithm::MlDsa65,
        }
    }

    /// Raw encoded public key bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            KeyMaterial::Ed25519(k) => k.as_bytes().to_vec(),
            KeyMaterial::MlDsa65(k) => k.encode().to_vec(),
        }
    }

    /// Verifies a raw signature over `message`. Never panics on malformed signatures.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            KeyMaterial::Ed25519(k) => {
                let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
                    return false;
                };
                k.verify_strict(message, &sig).is_ok()
            }
            KeyMaterial::MlDsa65(k) => {
                let Ok(sig) = MlDsaSignature::<MlDsa65>::try_from(signature) else {
                    return false;
                };
                k.verify_with_context(message, b"", &sig)
            }
        }
    }
}

/// A key the verifier knows: its DID-URL key id and material.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub key_id: String,
    pub key: KeyMaterial,
}

impl KeyEntry {
    /// The authority controlling this key: the DID part of the key id (before `#`). A key id
    /// without a fragment is its own controller.
    pub fn controller(&self) -> &str {
        controller_of(&self.key_id)
    }
}

/// The DID part of a DID URL (everything before the first `#`).
pub fn controller_of(key_id: &str) -> &str {
    key_id.split_once('#').map_or(key_id, |(did, _)| did)
}

/// One entry of a `signatures[]` member: `{keyId, algorithm, value}` with a base64 value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureEntry {
    pub key_id: String,
    pub algorithm: String,
    pub value: String,
}

/// Decodes a signature value: standard base64 alphabet, padded or not.
pub fn decode_signature_value(text: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(text)
        .ok()
        .or_else(|| STANDARD_NO_PAD.decode(text).ok())
}

/// Requirements on a signature set beyond "every declared signature verifies".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignaturePolicy {
    /// Minimum number of distinct Ed25519 keys whose signatures verified (threshold
    /// cosignature). Values below 1 are treated as 1.
    pub min_distinct_signers: usize,
}

impl Default for SignaturePolicy {
    fn default() -> Self {
        SignaturePolicy {
            min_distinct_signers: 1,
        }
    }
}

/// What a successful [`verify_signature_set`] established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureReport {
    /// Key ids whose signatures verified, in document order (deduplicated).
    pub verified_key_ids: Vec<String>,
    /// Number of distinct Ed25519 keys that verified.
    pub distinct_ed25519_signers: usize,
    /// Whether an ML-DSA-65 signature was present (and therefore verified).
    pub post_quantum: bool,
}

/// Applies the module's rule set to `signatures` over `message`. `keys` is what the verifier
/// knows; `eligible(authority_did)` says whether keys controlled by that authority may sign this
/// document. The error is a reason sentence (the caller's category is SIGNATURE_INVALID).
pub fn verify_signature_set(
    message: &[u8],
    signatures: &[SignatureEntry],
    keys: &[KeyEntry],
    eligible: &dyn Fn(&str) -> bool,
    policy: SignaturePolicy,
) -> Result<SignatureReport, String> {
    if signatures.is_empty() {
        return Err("no signature is present".into());
    }
    let mut verified_key_ids: Vec<String> = Vec::new();
    let mut ed_keys: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut ml_valid = 0usize;
    let mut ml_present = false;
    for (i, sig) in signatures.iter().enumerate() {
        let alg = Algorithm::parse(&sig.algorithm).ok_or_else(|| {
            format!(
                "signature {i} uses unsupported algorithm {:?}; every declared signature must verify",
                sig.algorithm
            )
        })?;
        if alg == Algorithm::MlDsa65 {
            ml_present = true;
        }
        let authority = controller_of(&sig.key_id);
        if !eligible(authority) {
            return Err(format!(
                "signature {i} was made by key {:?} of {authority:?}, which is not an eligible signing authority for this document (neither the issuer nor a trusted authority in its signed chain)",
                sig.key_id
            ));
        }
        let entry = keys
            .iter()
            .find(|k| k.key_id == sig.key_id && k.key.algorithm() == alg)
            .ok_or_else(|| {
                format!(
                    "signature {i}: no {} key {:?} is configured, so the signature cannot be verified",
                    alg.as_str(),
                    sig.key_id
                )
            })?;
        let raw = decode_signature_value(&sig.value)
            .ok_or_else(|| format!("signature {i} value is not base64"))?;
        if !entry.key.verify(message, &raw) {
            return Err(format!(
                "signature {i} ({} by {}) did not verify over the signed bytes",
                alg.as_str(),
                sig.key_id
            ));
        }
        match &entry.key {
            KeyMaterial::Ed25519(k) => {
                ed_keys.insert(k.as_bytes().to_vec());
            }
            KeyMaterial::MlDsa65(_) => ml_valid += 1,
        }
        if !verified_key_ids.contains(&sig.key_id) {
            verified_key_ids.push(sig.key_id.clone());
        }
    }
    if ed_keys.is_empty() {
        return Err("no Ed25519 signature verified; the classical signature is required".into());
    }
    if ml_present && ml_valid == 0 {
        return Err("an ML-DSA-65 signature is declared but none verified".into());
    }
    let need = policy.min_distinct_signers.max(1);
    if ed_keys.len() < need {
        return Err(format!(
            "only {} distinct signer(s) verified; the signature threshold is {need}",
            ed_keys.len()
        ));
    }
    Ok(SignatureReport {
        verified_key_ids,
        distinct_ed25519_signers: ed_keys.len(),
        post_quantum: ml_present,
    })
}

/// Derives the ML-DSA-65 key pair from a 32-byte FIPS 204 seed `ξ` (the form the fixtures' seed
/// vectors and [`crate::standards::atx::issue_credential`] use).
pub fn ml_dsa_65_from_seed(seed: &[u8; 32]) -> ml_dsa::SigningKey<MlDsa65> {
    let seed = ml_dsa::Seed::from(*seed);
    ml_dsa::SigningKey::<MlDsa65>::from_seed(&seed)
}

/// Deterministic ML-DSA-65 signature (empty context) over `message`, raw encoded bytes.
pub fn ml_dsa_65_sign(key: &ml_dsa::SigningKey<MlDsa65>, message: &[u8]) -> Vec<u8> {
    use ml_dsa::signature::Signer as _;
    let sig: MlDsaSignature<MlDsa65> = key.sign(message);
    sig.encode().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer as _;

    fn ed_key(seed: u8) -> (ed25519_dalek::SigningKey, KeyEntry, String) {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let kid = format!("did:example:auth{seed}#key-1");
        let entry = KeyEntry {
            key_id: kid.clone(),
            key: KeyMaterial::Ed25519(sk.verifying_key()),
        };
        (sk, entry, kid)
    }

    fn ed_sig(sk: &ed25519_dalek::SigningKey, kid: &str, msg: &[u8]) -> SignatureEntry {
        SignatureEntry {
            key_id: kid.into(),
            algorithm: "Ed25519".into(),
            value: STANDARD.encode(sk.sign(msg).to_bytes()),
        }
    }

    fn ml_key() -> (ml_dsa::SigningKey<MlDsa65>, KeyEntry) {
        let sk = ml_dsa_65_from_seed(&[7; 32]);
        let vk = ml_dsa::signature::Keypair::verifying_key(&sk);
        let entry = KeyEntry {
            key_id: "did:example:auth1#key-1-pqc".into(),
            key: KeyMaterial::from_bytes(Algorithm::MlDsa65, &vk.encode()).unwrap(),
        };
        (sk, entry)
    }

    fn ml_sig(sk: &ml_dsa::SigningKey<MlDsa65>, msg: &[u8]) -> SignatureEntry {
        SignatureEntry {
            key_id: "did:example:auth1#key-1-pqc".into(),
            algorithm: "ML-DSA-65".into(),
            value: STANDARD.encode(ml_dsa_65_sign(sk, msg)),
        }
    }

    const ANY: &dyn Fn(&str) -> bool = &|_| true;

    #[test]
    fn ml_dsa_round_trip_and_negative() {
        let (sk, entry) = ml_key();
        let sig = ml_dsa_65_sign(&sk, b"hello");
        assert_eq!(sig.len(), ML_DSA_65_SIGNATURE_LEN);
        assert_eq!(entry.key.to_bytes().len(), ML_DSA_65_PUBLIC_KEY_LEN);
        assert!(entry.key.verify(b"hello", &sig));
        assert!(!entry.key.verify(b"hellp", &sig));
        let mut bad = sig.clone();
        bad[100] ^= 1;
        assert!(!entry.key.verify(b"hello", &bad));
        assert!(!entry.key.verify(b"hello", &sig[..3308]));
        assert!(!entry.key.verify(b"hello", &[]));
        // A wrong-length key is an error, not a panic.
        assert!(KeyMaterial::from_bytes(Algorithm::MlDsa65, &[0; 10]).is_err());
    }

    #[test]
    fn hybrid_rule() {
        let msg = b"payload";
        let (esk, eentry, ekid) = ed_key(1);
        let (msk, mentry) = ml_key();
        let keys = [eentry, mentry];
        let p = SignaturePolicy::default();
        // Both valid: accepted and reported as post-quantum.
        let both = [ed_sig(&esk, &ekid, msg), ml_sig(&msk, msg)];
        let r = verify_signature_set(msg, &both, &keys, ANY, p).unwrap();
        assert!(r.post_quantum);
        // ML-DSA tampered, Ed25519 intact: rejected.
        let mut tampered = both.clone();
        let mut raw = STANDARD.decode(&tampered[1].value).unwrap();
        raw[0] ^= 1;
        tampered[1].value = STANDARD.encode(raw);
        assert!(verify_signature_set(msg, &tampered, &keys, ANY, p).is_err());
        // ML-DSA alone: the classical leg is missing.
        let e = verify_signature_set(msg, &both[1..], &keys, ANY, p).unwrap_err();
        assert!(e.contains("Ed25519"), "{e}");
        // Ed25519 alone is fine (no ML-DSA declared).
        assert!(
            !verify_signature_set(msg, &both[..1], &keys, ANY, p)
                .unwrap()
                .post_quantum
        );
    }

    #[test]
    fn threshold_counts_distinct_keys() {
        let msg = b"payload";
        let (k1, e1, id1) = ed_key(1);
        let (k2, e2, id2) = ed_key(2);
        let (k3, e3, id3) = ed_key(3);
        let keys = [e1, e2, e3];
        let two = SignaturePolicy {
            min_distinct_signers: 2,
        };
        let s1 = ed_sig(&k1, &id1, msg);
        let s2 = ed_sig(&k2, &id2, msg);
        let s3 = ed_sig(&k3, &id3, msg);
        assert!(verify_signature_set(msg, &[s1.clone(), s2.clone()], &keys, ANY, two).is_ok());
        assert!(
            verify_signature_set(msg, &[s1.clone(), s2.clone(), s3.clone()], &keys, ANY, two)
                .is_ok()
        );
        // One signer repeated is still one signer.
        let e = verify_signature_set(msg, &[s1.clone(), s1.clone()], &keys, ANY, two).unwrap_err();
        assert!(e.contains("threshold"), "{e}");
        // A present-but-invalid cosignature rejects even when the threshold is otherwise met.
        let mut bad = s3.clone();
        bad.value = s1.value.clone();
        assert!(verify_signature_set(msg, &[s1, s2, bad], &keys, ANY, two).is_err());
    }

    #[test]
    fn keys_are_bound_to_eligible_authorities() {
        let msg = b"payload";
        let (k1, e1, id1) = ed_key(1);
        let (k2, e2, id2) = ed_key(2);
        let keys = [e1, e2];
        let only_auth1: &dyn Fn(&str) -> bool = &|a| a == "did:example:auth1";
        let p = SignaturePolicy::default();
        assert!(verify_signature_set(msg, &[ed_sig(&k1, &id1, msg)], &keys, only_auth1, p).is_ok());
        let e =
            verify_signature_set(msg, &[ed_sig(&k2, &id2, msg)], &keys, only_auth1, p).unwrap_err();
        assert!(e.contains("not an eligible"), "{e}");
        // Claiming an eligible key id while signing with another key fails verification.
        let forged = ed_sig(&k2, &id1, msg);
        assert!(verify_signature_set(msg, &[forged], &keys, only_auth1, p).is_err());
        // Unknown algorithm and unknown key id are rejections, not skips.
        let mut odd = ed_sig(&k1, &id1, msg);
        odd.algorithm = "ed25519".into();
        assert!(verify_signature_set(msg, &[odd], &keys, ANY, p).is_err());
        let unknown = ed_sig(&k1, "did:example:auth1#key-9", msg);
        assert!(verify_signature_set(msg, &[unknown], &keys, ANY, p).is_err());
        assert!(verify_signature_set(msg, &[], &keys, ANY, p).is_err());
    }
}
