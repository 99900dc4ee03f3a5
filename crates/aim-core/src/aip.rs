//! AIP §5.1 challenge-response (proof of key possession), as pinned by the AIP conformance suite.
//!
//! Wire shapes:
//! - challenge `{challenge, agentDid, nonce, issuedAt, expiresAt, issuerDid}`
//! - response `{agentDid, challenge, nonce, issuedAt, expiresAt, signature, publicKey, keyId,
//!   signedAt, algorithm}`
//!
//! The agent signs the UTF-8 bytes of `challenge|agentDid|nonce|issuedAt|expiresAt` (the five
//! fields exactly as they appear on the wire, joined by `|`). Binary values (challenge 32 bytes,
//! nonce 16 bytes, signature, public key) are base64 *without* padding, standard alphabet.
//!
//! Invariants of [`verify_response`]:
//! - checks run in a fixed order — echo/shape, signature, bound key, expiry, nonce replay,
//!   issuer — and the first failure decides the [`RejectCode`];
//! - the signature is checked over bytes rebuilt from the *challenge* the verifier issued, never
//!   from the response's echo of it;
//! - it never mutates state: recording a nonce as used is the caller's job after acceptance (see
//!   [`ChallengeLedger`]), so a verification that fails cannot burn a nonce.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::clock::{parse_rfc3339, rfc3339};
use crate::keys::{KeyPair, PublicKey, decode_base64};
use crate::{Error, Result, fsio};

/// Challenge size in bytes.
pub const CHALLENGE_BYTES: usize = 32;
/// Nonce size in bytes.
pub const NONCE_BYTES: usize = 16;
/// Lifetime of a challenge.
pub const CHALLENGE_TTL_SECS: i64 = 300;

/// A challenge issued by a verifier (IdP or peer) to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Challenge {
    pub challenge: String,
    pub agent_did: String,
    pub nonce: String,
    pub issued_at: String,
    pub expires_at: String,
    pub issuer_did: String,
}

/// An agent's signed answer to a [`Challenge`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub agent_did: String,
    pub challenge: String,
    pub nonce: String,
    pub issued_at: String,
    pub expires_at: String,
    pub signature: String,
    pub public_key: String,
    pub key_id: String,
    pub signed_at: String,
    pub algorithm: String,
}

/// Why a response was rejected. Serialized as the AIP reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectCode {
    /// The response is not a well-formed answer to this challenge.
    Malformed,
    /// The signature does not verify under the response's public key.
    SignatureInvalid,
    /// The response's public key is not the key bound to the agent DID.
    UntrustedKey,
    /// The challenge has expired.
    ChallengeExpired,
    /// The nonce was already consumed.
    NonceReplay,
    /// The challenge was not issued by a trusted issuer.
    UntrustedIssuer,
}

impl RejectCode {
    /// The wire string, e.g. `SIGNATURE_INVALID`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::Malformed => "MALFORMED",
            RejectCode::SignatureInvalid => "SIGNATURE_INVALID",
            RejectCode::UntrustedKey => "UNTRUSTED_KEY",
            RejectCode::ChallengeExpired => "CHALLENGE_EXPIRED",
            RejectCode::NonceReplay => "NONCE_REPLAY",
            RejectCode::UntrustedIssuer => "UNTRUSTED_ISSUER",
        }
    }
}

impl std::fmt::Display for RejectCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejection: the code and a human reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub code: RejectCode,
    pub reason: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.reason)
    }
}

fn reject(code: RejectCode, reason: impl Into<String>) -> Rejection {
    Rejection {
        code,
        reason: reason.into(),
    }
}

/// What the verifier knows when it checks a response.
pub struct VerifyContext<'a> {
    /// The verifier's clock reading.
    pub now: DateTime<Utc>,
    /// Issuer DIDs whose challenges this verifier accepts.
    pub trusted_issuers: &'a [String],
    /// The key bound to the challenge's `agentDid` (pinned peer, registered agent), if any.
    pub bound_key: Option<PublicKey>,
    /// Whether a nonce was already consumed.
    pub nonce_seen: &'a dyn Fn(&str) -> bool,
}

/// The exact bytes the agent signs: `challenge|agentDid|nonce|issuedAt|expiresAt`.
pub fn signing_input(c: &Challenge) -> String {
    format!(
        "{}|{}|{}|{}|{}",
        c.challenge, c.agent_did, c.nonce, c.issued_at, c.expires_at
    )
}

/// Issues a fresh challenge: 32 random bytes, 16-byte nonce, 5-minute expiry.
pub fn issue_challenge<R: CryptoRng + ?Sized>(
    agent_did: &str,
    issuer_did: &str,
    now: DateTime<Utc>,
    rng: &mut R,
) -> Challenge {
    let mut challenge = [0u8; CHALLENGE_BYTES];
    let mut nonce = [0u8; NONCE_BYTES];
    rng.fill_bytes(&mut challenge);
    rng.fill_bytes(&mut nonce);
    Challenge {
        challenge: STANDARD_NO_PAD.encode(challenge),
        agent_did: agent_did.to_string(),
        nonce: STANDARD_NO_PAD.encode(nonce),
        issued_at: rfc3339(now),
        expires_at: rfc3339(now + Duration::seconds(CHALLENGE_TTL_SECS)),
        issuer_did: issuer_did.to_string(),
    }
}

/// Signs a challenge with the agent's key, producing the response.
pub fn respond(challenge: &Challenge, key: &KeyPair, key_id: &str, now: DateTime<Utc>) -> Response {
    let sig = key.sign(signing_input(challenge).as_bytes());
    Response {
        agent_did: challenge.agent_did.clone(),
        challenge: challenge.challenge.clone(),
        nonce: challenge.nonce.clone(),
        issued_at: challenge.issued_at.clone(),
        expires_at: challenge.expires_at.clone(),
        signature: STANDARD_NO_PAD.encode(sig),
        public_key: STANDARD_NO_PAD.encode(key.public().to_bytes()),
        key_id: key_id.to_string(),
        signed_at: rfc3339(now),
        algorithm: "Ed25519".into(),
    }
}

/// Verifies `response` against the `challenge` this verifier issued. See the module invariants
/// for the order of checks.
pub fn verify_response(
    challenge: &Challenge,
    response: &Response,
    ctx: &VerifyContext<'_>,
) -> std::result::Result<(), Rejection> {
    use RejectCode::*;
    // 1. Shape: the response must answer exactly this challenge.
    for (field, ours, theirs) in [
        ("challenge", &challenge.challenge, &response.challenge),
        ("agentDid", &challenge.agent_did, &response.agent_did),
        ("nonce", &challenge.nonce, &response.nonce),
        ("issuedAt", &challenge.issued_at, &response.issued_at),
        ("expiresAt", &challenge.expires_at, &response.expires_at),
    ] {
        if ours != theirs {
            return Err(reject(
                Malformed,
                format!("response {field} {theirs:?} does not echo the challenge's {ours:?}"),
            ));
        }
    }
    if response.algorithm != "Ed25519" {
        return Err(reject(
            Malformed,
            format!(
                "algorithm {:?} is not supported (Ed25519 only)",
                response.algorithm
            ),
        ));
    }
    let expires = parse_rfc3339(&challenge.expires_at)
        .map_err(|e| reject(Malformed, format!("challenge expiresAt: {e}")))?;
    parse_rfc3339(&challenge.issued_at)
        .map_err(|e| reject(Malformed, format!("challenge issuedAt: {e}")))?;
    let presented = decode_base64("public key", &response.public_key)
        .and_then(|b| PublicKey::from_bytes(&b))
        .map_err(|e| reject(Malformed, format!("response publicKey: {e}")))?;
    let sig = decode_base64("signature", &response.signature)
        .map_err(|e| reject(Malformed, format!("response signature: {e}")))?;

    // 2. Signature over the challenge's signing input, under the presented key.
    if !presented.verify(signing_input(challenge).as_bytes(), &sig) {
        return Err(reject(
            SignatureInvalid,
            "signature does not verify over challenge|agentDid|nonce|issuedAt|expiresAt with the presented publicKey",
        ));
    }
    // 3. The presented key must be the one bound to the DID.
    match ctx.bound_key {
        Some(bound) if bound == presented => {}
        Some(_) => {
            return Err(reject(
                UntrustedKey,
                format!(
                    "publicKey does not match the key bound to {}",
                    challenge.agent_did
                ),
            ));
        }
        None => {
            return Err(reject(
                UntrustedKey,
                format!(
                    "no key is bound to {}; publicKey does not match any trusted key",
                    challenge.agent_did
                ),
            ));
        }
    }
    // 4. Expiry.
    if ctx.now >= expires {
        return Err(reject(
            ChallengeExpired,
            format!(
                "challenge expiresAt {} is not after the verifier clock {}",
                challenge.expires_at,
                rfc3339(ctx.now)
            ),
        ));
    }
    // 5. Replay.
    if (ctx.nonce_seen)(&challenge.nonce) {
        return Err(reject(
            NonceReplay,
            format!("nonce {} was already used", challenge.nonce),
        ));
    }
    // 6. Issuer.
    if !ctx
        .trusted_issuers
        .iter()
        .any(|i| i == &challenge.issuer_did)
    {
        return Err(reject(
            UntrustedIssuer,
            format!(
                "challenge issuerDid {} is not a trusted issuer",
                challenge.issuer_did
            ),
        ));
    }
    Ok(())
}

/// The local verifier's memory of challenges, persisted in one JSON file
/// (`aim-core/aip-challenges.json`): which nonces it issued and which were consumed, each kept
/// until its challenge expires. Callers hold the data-root lock while they check and record.
///
/// Requiring that a challenge was issued here defeats pre-play: a response the agent signed for a
/// challenge someone else made up (with our issuer DID) is not accepted.
#[derive(Debug)]
pub struct ChallengeLedger {
    path: PathBuf,
    /// nonce → expiry of challenges issued by this verifier.
    issued: BTreeMap<String, DateTime<Utc>>,
    /// nonce → expiry of consumed nonces.
    used: BTreeMap<String, DateTime<Utc>>,
}

#[derive(Serialize, Deserialize, Default)]
struct LedgerFile {
    version: u32,
    issued: BTreeMap<String, String>,
    used: BTreeMap<String, String>,
}

impl ChallengeLedger {
    /// Loads the ledger (a missing file is empty), dropping entries expired at `now`.
    pub fn load(path: &Path, now: DateTime<Utc>) -> Result<Self> {
        let file: LedgerFile = if path.exists() {
            let text = fsio::read_text(path, 64 * 1024 * 1024)?;
            serde_json::from_str(&text).map_err(|e| {
                Error::invalid("challenge ledger", format!("{}: {e}", path.display()))
            })?
        } else {
            LedgerFile::default()
        };
        let live = |m: BTreeMap<String, String>| -> Result<BTreeMap<String, DateTime<Utc>>> {
            let mut out = BTreeMap::new();
            for (n, exp) in m {
                let exp = parse_rfc3339(&exp)?;
                if exp > now {
                    out.insert(n, exp);
                }
            }
            Ok(out)
        };
        Ok(ChallengeLedger {
            path: path.to_path_buf(),
            issued: live(file.issued)?,
            used: live(file.used)?,
        })
    }

    /// Whether this verifier issued a (still unexpired) challenge with `nonce`.
    pub fn was_issued(&self, nonce: &str) -> bool {
        self.issued.contains_key(nonce)
    }

    /// Whether `nonce` was consumed and has not yet expired.
    pub fn was_used(&self, nonce: &str) -> bool {
        self.used.contains_key(nonce)
    }

    /// Records a challenge this verifier issued and saves the ledger.
    pub fn record_issued(&mut self, c: &Challenge) -> Result<()> {
        self.issued
            .insert(c.nonce.clone(), parse_rfc3339(&c.expires_at)?);
        self.save()
    }

    /// Records `nonce` as consumed until `expires_at` and saves the ledger.
    pub fn record_used(&mut self, nonce: &str, expires_at: DateTime<Utc>) -> Result<()> {
        self.used.insert(nonce.to_string(), expires_at);
        self.save()
    }

    fn save(&self) -> Result<()> {
        let dump = |m: &BTreeMap<String, DateTime<Utc>>| {
            m.iter().map(|(n, e)| (n.clone(), rfc3339(*e))).collect()
        };
        let file = LedgerFile {
            version: 1,
            issued: dump(&self.issued),
            used: dump(&self.used),
        };
        let body =
            serde_json::to_vec_pretty(&file).map_err(|e| Error::invalid("challenge ledger", e))?;
        fsio::atomic_write(&self.path, &body, fsio::SECRET_FILE_MODE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::parse_rfc3339;

    fn fixture(name: &str) -> serde_json::Value {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../conformance/aip/fixtures")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    /// The agent-bound key of the suite: RFC 8032 §7.1 TEST 2.
    fn agent_key() -> KeyPair {
        let seed = hex::decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
            .unwrap();
        KeyPair::from_seed(&seed.try_into().unwrap())
    }

    #[test]
    fn conformance_vector_reproduces_byte_for_byte() {
        let f = fixture("challenge-response-valid.json");
        let c: Challenge =
            serde_json::from_value(f["challengeResponse"]["challenge"].clone()).unwrap();
        let expected: Response =
            serde_json::from_value(f["challengeResponse"]["response"].clone()).unwrap();
        let signed_at = parse_rfc3339(&expected.signed_at).unwrap();
        let ours = respond(&c, &agent_key(), &expected.key_id, signed_at);
        assert_eq!(ours, expected);
        assert_eq!(
            serde_json::to_value(&ours).unwrap(),
            f["challengeResponse"]["response"]
        );
    }

    fn ctx_for<'a>(
        f: &serde_json::Value,
        issuers: &'a [String],
        seen: &'a dyn Fn(&str) -> bool,
    ) -> VerifyContext<'a> {
        let st = &f["verifierState"];
        let pk_hex = st["agentBindings"][0]["publicKeyHex"].as_str().unwrap();
        VerifyContext {
            now: parse_rfc3339(st["clockRfc3339"].as_str().unwrap()).unwrap(),
            trusted_issuers: issuers,
            bound_key: Some(PublicKey::parse_any(pk_hex).unwrap()),
            nonce_seen: seen,
        }
    }

    fn run_fixture(name: &str) -> std::result::Result<(), Rejection> {
        let f = fixture(name);
        let c: Challenge =
            serde_json::from_value(f["challengeResponse"]["challenge"].clone()).unwrap();
        let r: Response =
            serde_json::from_value(f["challengeResponse"]["response"].clone()).unwrap();
        let issuers: Vec<String> =
            serde_json::from_value(f["verifierState"]["trustedIssuers"].clone()).unwrap();
        let seen: Vec<String> =
            serde_json::from_value(f["verifierState"]["seenNonces"].clone()).unwrap();
        let seen_fn = move |n: &str| seen.iter().any(|s| s == n);
        verify_response(&c, &r, &ctx_for(&f, &issuers, &seen_fn))
    }

    #[test]
    fn suite_fixtures_get_their_expected_verdicts() {
        assert_eq!(run_fixture("challenge-response-valid.json"), Ok(()));
        let e = run_fixture("challenge-response-wrong-key.json").unwrap_err();
        assert_eq!(e.code, RejectCode::UntrustedKey);
        assert!(e.reason.contains("publicKey does not match"));
        let e = run_fixture("challenge-response-stale-challenge.json").unwrap_err();
        assert_eq!(e.code, RejectCode::ChallengeExpired);
        assert!(e.reason.contains("expiresAt"));
        let e = run_fixture("challenge-response-replay.json").unwrap_err();
        assert_eq!(e.code, RejectCode::NonceReplay);
        assert!(e.reason.contains("nonce"));
    }

    fn fresh() -> (Challenge, KeyPair, DateTime<Utc>) {
        let now = parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let key = KeyPair::from_seed(&[5; 32]);
        let c = issue_challenge(
            &key.public().did_key(),
            "did:key:issuer",
            now,
            &mut rand::rng(),
        );
        (c, key, now)
    }

    #[test]
    fn issued_challenges_have_the_pinned_sizes_and_ttl() {
        let (c, _, now) = fresh();
        assert_eq!(decode_base64("c", &c.challenge).unwrap().len(), 32);
        assert_eq!(decode_base64("n", &c.nonce).unwrap().len(), 16);
        assert!(!c.nonce.ends_with('='));
        assert_eq!(
            parse_rfc3339(&c.expires_at).unwrap() - now,
            Duration::seconds(300)
        );
    }

    #[test]
    fn negative_cases_each_get_their_code() {
        let (c, key, now) = fresh();
        let issuers = vec!["did:key:issuer".to_string()];
        let never = |_: &str| false;
        let ctx = VerifyContext {
            now,
            trusted_issuers: &issuers,
            bound_key: Some(key.public()),
            nonce_seen: &never,
        };
        let good = respond(&c, &key, "k", now);
        assert_eq!(verify_response(&c, &good, &ctx), Ok(()));

        let mut bad_sig = good.clone();
        bad_sig.signature = respond(&c, &KeyPair::from_seed(&[6; 32]), "k", now).signature;
        assert_eq!(
            verify_response(&c, &bad_sig, &ctx).unwrap_err().code,
            RejectCode::SignatureInvalid
        );

        let mut other_c = c.clone();
        other_c.challenge = issue_challenge("x", "y", now, &mut rand::rng()).challenge;
        let mut forged = respond(&other_c, &key, "k", now);
        forged.challenge = c.challenge.clone(); // echoes ours but signed another challenge
        assert_eq!(
            verify_response(&c, &forged, &ctx).unwrap_err().code,
            RejectCode::SignatureInvalid
        );

        let mut echo = good.clone();
        echo.nonce = "AAAAAAAAAAAAAAAAAAAAAA".into();
        assert_eq!(
            verify_response(&c, &echo, &ctx).unwrap_err().code,
            RejectCode::Malformed
        );

        let late = VerifyContext {
            now: now + Duration::seconds(300),
            ..ctx
        };
        assert_eq!(
            verify_response(&c, &good, &late).unwrap_err().code,
            RejectCode::ChallengeExpired
        );

        let seen = |n: &str| n == c.nonce;
        let replay = VerifyContext {
            nonce_seen: &seen,
            now,
            trusted_issuers: &issuers,
            bound_key: Some(key.public()),
        };
        assert_eq!(
            verify_response(&c, &good, &replay).unwrap_err().code,
            RejectCode::NonceReplay
        );

        let none: Vec<String> = vec![];
        let untrusted = VerifyContext {
            trusted_issuers: &none,
            now,
            bound_key: Some(key.public()),
            nonce_seen: &never,
        };
        assert_eq!(
            verify_response(&c, &good, &untrusted).unwrap_err().code,
            RejectCode::UntrustedIssuer
        );

        let mut garbage = good.clone();
        garbage.signature = "%%%".into();
        assert_eq!(
            verify_response(&c, &garbage, &ctx).unwrap_err().code,
            RejectCode::Malformed
        );
    }

    #[test]
    fn ledger_persists_and_forgets_expired() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("n.json");
        let now = parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let mut ledger = ChallengeLedger::load(&p, now).unwrap();
        let c = issue_challenge("a", "b", now, &mut rand::rng());
        ledger.record_issued(&c).unwrap();
        ledger
            .record_used("a", now + Duration::seconds(10))
            .unwrap();
        ledger
            .record_used("b", now + Duration::seconds(1000))
            .unwrap();
        let later = ChallengeLedger::load(&p, now + Duration::seconds(20)).unwrap();
        assert!(!later.was_used("a"));
        assert!(later.was_used("b"));
        assert!(later.was_issued(&c.nonce));
        let much_later = ChallengeLedger::load(&p, now + Duration::seconds(400)).unwrap();
        assert!(
            !much_later.was_issued(&c.nonce),
            "issued challenges are forgotten after expiry"
        );
    }
}
