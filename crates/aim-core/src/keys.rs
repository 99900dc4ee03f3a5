//! Ed25519 keys, their encodings, self-certifying agent ids, and sign/verify.
//!
//! Invariants:
//! - Verification always uses `verify_strict` (rejects small-order keys and non-canonical
//!   signatures), so one message has exactly one valid signature encoding per key.
//! - An agent id is `aim_` followed by the lowercase RFC 4648 base32 (no padding) of the first
//!   20 bytes (160 bits) of `SHA-256("aim-agent-id/v1" || public_key)`. Anyone holding the public key
//!   can recompute it ([`agent_id_for`]); the alphabet `a-z2-7` plus `aim_` is URL-safe and survives
//!   lower-casing.
//! - JSON objects are signed over their RFC 8785 canonical bytes ([`crate::canonical::jcs`]), never
//!   over whatever a serializer happened to produce.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::{DecodePublicKey, EncodePublicKey};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// Length of an Ed25519 public key in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;
/// Prefix of every agent id.
pub const AGENT_ID_PREFIX: &str = "aim_";
/// Domain separator hashed in front of the public key when deriving an agent id.
const AGENT_ID_DOMAIN: &[u8] = b"aim-agent-id/v1";
/// Number of hash bytes kept in an agent id (160 bits).
const AGENT_ID_HASH_BYTES: usize = 20;

/// Decodes base64 in any of the common alphabets (standard or URL-safe, padded or not).
pub fn decode_base64(what: &'static str, text: &str) -> Result<Vec<u8>> {
    let t = text.trim();
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        if let Ok(v) = engine.decode(t) {
            return Ok(v);
        }
    }
    Err(Error::invalid(what, "not valid base64"))
}

/// Standard base64 with padding: the form AIM prints for keys and signatures.
pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The agent id derived from a raw 32-byte Ed25519 public key.
pub fn agent_id_for(public_key: &[u8; PUBLIC_KEY_LEN]) -> String {
    let mut h = Sha256::new();
    h.update(AGENT_ID_DOMAIN);
    h.update(public_key);
    let digest = h.finalize();
    let b32 = data_encoding::BASE32_NOPAD.encode(&digest[..AGENT_ID_HASH_BYTES]);
    format!("{AGENT_ID_PREFIX}{}", b32.to_ascii_lowercase())
}

/// True when `id` is syntactically an agent id (prefix, 32 chars of lowercase base32).
pub fn is_agent_id(id: &str) -> bool {
    id.strip_prefix(AGENT_ID_PREFIX).is_some_and(|rest| {
        rest.len() == 32
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
    })
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl PublicKey {
    /// From the 32 raw bytes. Rejects encodings that are not valid curve points.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let arr: &[u8; PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| {
            Error::invalid(
                "public key",
                format!("expected {PUBLIC_KEY_LEN} bytes, got {}", bytes.len()),
            )
        })?;
        VerifyingKey::from_bytes(arr)
            .map(PublicKey)
            .map_err(|_| Error::invalid("public key", "not a valid Ed25519 point"))
    }

    /// From base64 (any common alphabet) of the 32 raw bytes.
    pub fn from_base64(text: &str) -> Result<Self> {
        Self::from_bytes(&decode_base64("public key", text)?)
    }

    /// From a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) document.
    pub fn from_pem(pem: &str) -> Result<Self> {
        VerifyingKey::from_public_key_pem(pem.trim())
            .map(PublicKey)
            .map_err(|e| Error::invalid("PEM public key", e))
    }

    /// Accepts what a user is likely to paste or point at: a SubjectPublicKeyInfo PEM, or base64
    /// (or 64 hex digits) of the raw 32 bytes.
    pub fn parse_any(text: &str) -> Result<Self> {
        let t = text.trim();
        if t.starts_with("-----BEGIN") {
            return Self::from_pem(t);
        }
        if t.len() == 2 * PUBLIC_KEY_LEN && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            let bytes = hex::decode(t).map_err(|e| Error::invalid("public key", e))?;
            return Self::from_bytes(&bytes);
        }
        Self::from_base64(t)
    }

    /// The 32 raw bytes.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.0.to_bytes()
    }

    /// Standard padded base64 of the raw bytes.
    pub fn to_base64(&self) -> String {
        encode_base64(&self.to_bytes())
    }

    /// PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`), readable by `openssl pkey -pubin`.
    pub fn to_pem(&self) -> Result<String> {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| Error::Crypto(format!("PEM encoding failed: {e}")))
    }

    /// The self-certifying agent id of this key.
    pub fn agent_id(&self) -> String {
        agent_id_for(&self.to_bytes())
    }

    /// `did:key` form of this key (multicodec `0xed01` + key, base58btc, `z` prefix).
    pub fn did_key(&self) -> String {
        let mut buf = Vec::with_capacity(2 + PUBLIC_KEY_LEN);
        buf.extend_from_slice(&[0xed, 0x01]);
        buf.extend_from_slice(&self.to_bytes());
        format!("did:key:z{}", bs58::encode(buf).into_string())
    }

    /// Parses a `did:key` holding an Ed25519 key.
    pub fn from_did_key(did: &str) -> Result<Self> {
        let rest = did
            .strip_prefix("did:key:z")
            .ok_or_else(|| Error::invalid("did:key", "must start with did:key:z"))?;
        let raw = bs58::decode(rest)
            .into_vec()
            .map_err(|e| Error::invalid("did:key", e))?;
        match raw.split_first_chunk::<2>() {
            Some(([0xed, 0x01], key)) => Self::from_bytes(key),
            _ => Err(Error::invalid("did:key", "not an Ed25519 (0xed01) key")),
        }
    }

    /// Verifies `signature` over `message` (strict RFC 8032 verification).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(signature) else {
            return false;
        };
        self.0.verify_strict(message, &sig).is_ok()
    }

    /// Verifies a signature over the RFC 8785 canonical bytes of `value`.
    pub fn verify_json<T: Serialize>(&self, value: &T, signature: &[u8]) -> Result<bool> {
        Ok(self.verify(&crate::canonical::jcs(value)?, signature))
    }

    /// The underlying dalek key.
    pub fn as_dalek(&self) -> &VerifyingKey {
        &self.0
    }
}

impl From<VerifyingKey> for PublicKey {
    fn from(v: VerifyingKey) -> Self {
        PublicKey(v)
    }
}

/// An Ed25519 key pair. The secret is zeroized on drop and never printed by `Debug`.
pub struct KeyPair(SigningKey);

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair(public={})", self.public().to_base64())
    }
}

impl KeyPair {
    /// A fresh key pair from a cryptographically secure RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        KeyPair(SigningKey::generate(rng))
    }

    /// From the 32-byte RFC 8032 seed ("private key").
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        KeyPair(SigningKey::from_bytes(seed))
    }

    /// From a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), e.g. one written by OpenSSL.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        SigningKey::from_pkcs8_pem(pem.trim())
            .map(KeyPair)
            .map_err(|e| Error::invalid("PKCS#8 private key", e))
    }

    /// The 32-byte seed, in a buffer that is wiped on drop.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs raw bytes.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        use ed25519_dalek::Signer as _;
        self.0.sign(message).to_bytes()
    }

    /// Signs the RFC 8785 canonical bytes of `value`.
    pub fn sign_json<T: Serialize>(&self, value: &T) -> Result<[u8; SIGNATURE_LEN]> {
        Ok(self.sign(&crate::canonical::jcs(value)?))
    }

    /// PKCS#8 **v1** PEM of the private key (RFC 8410 `PrivateKeyInfo`, no embedded public key:
    /// the v2 form is not read by OpenSSL 3.0), for explicit export only. Wiped on drop.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>> {
        let v1 = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: *self.seed(),
            public_key: None,
        };
        let pem = v1
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| Error::Crypto(format!("PKCS#8 encoding failed: {e}")));
        // `KeypairBytes` does not zeroize on drop; the seed copy above is wiped here.
        let mut v1 = v1;
        zeroize::Zeroize::zeroize(&mut v1.secret_key);
        pem
    }

    /// The underlying dalek key (for protocol modules that need it).
    pub fn as_dalek(&self) -> &SigningKey {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 §7.1 TEST 1.
    const SEED1: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUB1: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const SIG1: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    fn kp1() -> KeyPair {
        KeyPair::from_seed(&hex::decode(SEED1).unwrap().try_into().unwrap())
    }

    #[test]
    fn rfc8032_test1_signature_matches() {
        let kp = kp1();
        assert_eq!(hex::encode(kp.public().to_bytes()), PUB1);
        assert_eq!(hex::encode(kp.sign(b"")), SIG1);
        assert!(kp.public().verify(b"", &hex::decode(SIG1).unwrap()));
    }

    #[test]
    fn verify_rejects_wrong_message_key_and_garbage() {
        let kp = kp1();
        let sig = kp.sign(b"hello");
        assert!(kp.public().verify(b"hello", &sig));
        assert!(!kp.public().verify(b"hellO", &sig));
        let other = KeyPair::from_seed(&[7u8; 32]);
        assert!(!other.public().verify(b"hello", &sig));
        assert!(!kp.public().verify(b"hello", &sig[..63]));
        let mut flipped = sig;
        flipped[10] ^= 1;
        assert!(!kp.public().verify(b"hello", &flipped));
    }

    #[test]
    fn verify_strict_rejects_non_canonical_s() {
        // Add the group order L to S: a malleated signature that lax verifiers accept.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let kp = kp1();
        let mut sig = kp.sign(b"m");
        let mut carry = 0u16;
        for i in 0..32 {
            let v = sig[32 + i] as u16 + L[i] as u16 + carry;
            sig[32 + i] = v as u8;
            carry = v >> 8;
        }
        assert!(!kp.public().verify(b"m", &sig));
    }

    #[test]
    fn agent_id_is_self_certifying_and_url_safe() {
        let pk = kp1().public();
        let id = pk.agent_id();
        assert!(is_agent_id(&id), "{id}");
        assert_eq!(id.len(), 4 + 32);
        assert_eq!(id, agent_id_for(&pk.to_bytes()));
        assert_ne!(id, KeyPair::from_seed(&[1; 32]).public().agent_id());
        assert!(!is_agent_id("aim_ABC"));
        assert!(!is_agent_id(&id.to_ascii_uppercase()));
    }

    #[test]
    fn encodings_round_trip() {
        let pk = kp1().public();
        assert_eq!(PublicKey::from_base64(&pk.to_base64()).unwrap(), pk);
        assert_eq!(PublicKey::from_pem(&pk.to_pem().unwrap()).unwrap(), pk);
        assert_eq!(PublicKey::parse_any(PUB1).unwrap(), pk);
        assert_eq!(PublicKey::parse_any(&pk.to_pem().unwrap()).unwrap(), pk);
        let did = pk.did_key();
        assert!(did.starts_with("did:key:z6Mk"), "{did}");
        assert_eq!(PublicKey::from_did_key(&did).unwrap(), pk);
        let pem = kp1().to_pkcs8_pem().unwrap();
        assert_eq!(KeyPair::from_pkcs8_pem(&pem).unwrap().public(), pk);
    }

    #[test]
    fn malformed_keys_are_errors_not_panics() {
        assert!(PublicKey::from_base64("not base64!!").is_err());
        assert!(PublicKey::from_bytes(&[0u8; 31]).is_err());
        assert!(
            PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .is_err()
        );
        assert!(PublicKey::from_did_key("did:key:zzzz").is_err());
        assert!(KeyPair::from_pkcs8_pem("garbage").is_err());
    }

    #[test]
    fn json_signatures_cover_canonical_bytes() {
        let kp = kp1();
        let a: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":[true,"x"]}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{ "a":[true,"x"], "b":1.0 }"#).unwrap();
        let sig = kp.sign_json(&a).unwrap();
        assert!(kp.public().verify_json(&b, &sig).unwrap());
        let c: serde_json::Value = serde_json::from_str(r#"{"b":2,"a":[true,"x"]}"#).unwrap();
        assert!(!kp.public().verify_json(&c, &sig).unwrap());
    }
}
