//! ATX agent trust credentials (atx-spec core.md): verification of v1.0 and v1.1, and issuance
//! of v1.1.
//!
//! Verification ([`verify_credential`]) runs these steps in order; the first failure decides the
//! [`Category`]:
//! 1. strict parse of the credential bytes ([`super::strict_json`]): duplicate or case-folded
//!    duplicate member names at any depth → `PARSE_ERROR`;
//! 2. `atcVersion` must be `"1.0"` or `"1.1"` → else `UNSUPPORTED_VERSION`;
//! 3. shape: required members with the right types, RFC 3339 timestamps, `trustLevel` an integer
//!    0–4, `trustScore` a number 0–100, no `|` inside a v1.0 signed field (it would make the
//!    pipe-joined form ambiguous) → `PARSE_ERROR`;
//! 4. validity against the verifier clock (`now >= expiresAt`, `now < issuedAt`, or an empty
//!    window) → `EXPIRED`;
//! 5. revocation: the credential's `revoked` flag, or its `agentId` / `agentDid` / `id` on the
//!    verifier's CRL → `REVOKED`;
//! 6. `issuerDid` must be a trusted issuer → `UNTRUSTED_ISSUER`;
//! 7. signatures ([`super::signatures::verify_signature_set`]) over the version's signed bytes,
//!    with eligible authorities = the issuer, plus (v1.1 only, where the chain is signed) every
//!    `issuerChain` member that is itself a trusted issuer → `SIGNATURE_INVALID`.
//!
//! Signed bytes:
//! - v1.0 ([`signing_input_v1_0`]): `agentId|agentDid|version|contentHash|buildAttestation|
//!   issuerDid|trustLevel|trustScore(%.6f)|issuedAt|expiresAt|1.0`, timestamps exactly as on the
//!   wire, the last field the literal `1.0`;
//! - v1.1 ([`tbs_v1_1`]): RFC 8785 JCS of the explicit projection of core.md §1.3a.2 — canonical
//!   empties (`""`, `null`, `[]`, zero-valued six-member `scanSummary`), `trustScore` as the
//!   `%.6f` string, `declaredPurpose` present-based (absent or `{}` omitted, anything else
//!   verbatim).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::signatures::{
    KeyEntry, SignatureEntry, SignaturePolicy, SignatureReport, controller_of, verify_signature_set,
};
use super::{Category, Rejection, parse_timestamp, strict_json};
use crate::canonical::jcs;
use crate::clock::rfc3339;
use crate::keys::{KeyPair, encode_base64};
use crate::{Error, Result};

/// The ATX versions this implementation verifies.
pub const SUPPORTED_VERSIONS: [&str; 2] = ["1.0", "1.1"];

/// One entry of a certificate revocation list. At least one identifier is present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrlEntry {
    pub agent_id: Option<String>,
    pub agent_did: Option<String>,
    pub credential_id: Option<String>,
    pub reason: Option<String>,
}

/// A certificate revocation list as the verifier holds it (its authenticity is the caller's
/// concern: it comes from the verifier's own configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Crl {
    pub entries: Vec<CrlEntry>,
}

impl Crl {
    /// Reads `{entries: [{agentId?, agentDid?, credentialId?, reason?, revokedAt?}, ...]}`.
    /// An entry without any identifier, or with a malformed `revokedAt`, is an error: skipping
    /// it would keep a revoked agent trusted.
    pub fn from_value(v: &Value) -> std::result::Result<Self, String> {
        let entries = v
            .get("entries")
            .and_then(Value::as_array)
            .ok_or("CRL has no entries array")?;
        let mut out = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let s = |k: &str| -> std::result::Result<Option<String>, String> {
                match e.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(_) => Err(format!("CRL entry {i} {k} is not a string")),
                }
            };
            let entry = CrlEntry {
                agent_id: s("agentId")?,
                agent_did: s("agentDid")?,
                credential_id: s("credentialId")?,
                reason: s("reason")?,
            };
            if let Some(at) = s("revokedAt")? {
                parse_timestamp(&at).map_err(|e| format!("CRL entry {i} revokedAt: {e}"))?;
            }
            if entry.agent_id.is_none()
                && entry.agent_did.is_none()
                && entry.credential_id.is_none()
            {
                return Err(format!(
                    "CRL entry {i} names no agentId, agentDid or credentialId"
                ));
            }
            out.push(entry);
        }
        Ok(Crl { entries: out })
    }

    fn find(&self, c: &Credential) -> Option<&CrlEntry> {
        self.entries.iter().find(|e| {
            e.agent_id.as_deref() == Some(c.agent_id.as_str())
                || e.agent_did.as_deref() == Some(c.agent_did.as_str())
                || (e.credential_id.is_some() && e.credential_id == c.id)
        })
    }
}

/// What the verifier knows.
#[derive(Debug, Clone, Copy)]
pub struct VerifyContext<'a> {
    /// The verifier clock.
    pub now: DateTime<Utc>,
    /// Issuer DIDs the verifier trusts.
    pub trusted_issuers: &'a [String],
    /// Keys the verifier can resolve, each bound to the authority named in its key id.
    pub keys: &'a [KeyEntry],
    /// Revocation list, if the verifier has one.
    pub crl: Option<&'a Crl>,
    /// Threshold and similar requirements on the signature set.
    pub policy: SignaturePolicy,
}

/// The fields of a parsed credential that verification reads.
#[derive(Debug, Clone, PartialEq)]
struct Credential {
    id: Option<String>,
    atc_version: String,
    agent_id: String,
    agent_did: String,
    issuer_did: String,
    issuer_chain: Vec<String>,
    trust_level: u64,
    trust_score: f64,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked: bool,
    signatures: Vec<SignatureEntry>,
}

/// A credential that passed every step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedCredential {
    pub id: Option<String>,
    pub atc_version: String,
    pub agent_id: String,
    pub agent_did: String,
    pub issuer_did: String,
    pub trust_level: u64,
    pub trust_score: f64,
    pub expires_at: String,
    pub signatures: SignatureReport,
}

/// Verifies the bytes of one ATX credential. See the module docs for the steps.
pub fn verify_credential(
    bytes: &[u8],
    ctx: &VerifyContext<'_>,
) -> std::result::Result<VerifiedCredential, Rejection> {
    // 1. Strict parse.
    let value = strict_json::parse(bytes)
        .map_err(|e| Rejection::parse(format!("credential is not strict JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| Rejection::parse("credential is not a JSON object"))?;
    // 2. Version gate.
    let version = match obj.get("atcVersion") {
        Some(Value::String(v)) => v.as_str(),
        Some(_) => return Err(Rejection::parse("atcVersion is not a string")),
        None => return Err(Rejection::parse("atcVersion is missing")),
    };
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(Rejection::new(
            Category::UnsupportedVersion,
            format!(
                "atcVersion {version:?} is an unsupported version (supported: {})",
                SUPPORTED_VERSIONS.join(", ")
            ),
        ));
    }
    // 3. Shape, and the signed bytes (computed now so shape errors surface before verdicts).
    let cred = read_credential(obj)?;
    let signed = match version {
        "1.0" => signing_input_v1_0(obj)?.into_bytes(),
        _ => tbs_v1_1(obj)?,
    };
    // 4. Expiry.
    if cred.expires_at <= cred.issued_at {
        return Err(Rejection::new(
            Category::Expired,
            "credential validity window is empty: expiresAt is not after issuedAt",
        ));
    }
    if ctx.now >= cred.expires_at {
        return Err(Rejection::new(
            Category::Expired,
            format!(
                "credential expired at {} (verifier clock {})",
                rfc3339(cred.expires_at),
                rfc3339(ctx.now)
            ),
        ));
    }
    if ctx.now < cred.issued_at {
        return Err(Rejection::new(
            Category::Expired,
            format!(
                "credential is not yet valid: issuedAt {} is after the verifier clock {}",
                rfc3339(cred.issued_at),
                rfc3339(ctx.now)
            ),
        ));
    }
    // 5. Revocation.
    if cred.revoked {
        return Err(Rejection::new(
            Category::Revoked,
            "credential is revoked (revoked flag is set)",
        ));
    }
    if let Some(entry) = ctx.crl.and_then(|crl| crl.find(&cred)) {
        return Err(Rejection::new(
            Category::Revoked,
            format!(
                "credential is revoked: agent is on the verifier's CRL{}",
                entry
                    .reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
        ));
    }
    // 6. Issuer trust.
    if !ctx.trusted_issuers.contains(&cred.issuer_did) {
        return Err(Rejection::new(
            Category::UntrustedIssuer,
            format!("issuer {} is untrusted by this verifier", cred.issuer_did),
        ));
    }
    // 7. Signatures, bound to eligible authorities.
    let chain_is_signed = version != "1.0";
    let eligible = |authority: &str| {
        authority == cred.issuer_did
            || (chain_is_signed
                && cred.issuer_chain.iter().any(|c| c == authority)
                && ctx.trusted_issuers.iter().any(|t| t == authority))
    };
    let report = verify_signature_set(&signed, &cred.signatures, ctx.keys, &eligible, ctx.policy)
        .map_err(|r| {
        Rejection::new(
            Category::SignatureInvalid,
            format!("signature invalid: {r}"),
        )
    })?;
    Ok(VerifiedCredential {
        id: cred.id,
        atc_version: cred.atc_version,
        agent_id: cred.agent_id,
        agent_did: cred.agent_did,
        issuer_did: cred.issuer_did,
        trust_level: cred.trust_level,
        trust_score: cred.trust_score,
        expires_at: rfc3339(cred.expires_at),
        signatures: report,
    })
}

type Fields<'a> = &'a Map<String, Value>;

fn req_str<'a>(o: Fields<'a>, k: &str) -> std::result::Result<&'a str, Rejection> {
    match o.get(k) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Rejection::parse(format!("{k} is not a string"))),
        None => Err(Rejection::parse(format!("{k} is missing"))),
    }
}

/// Optional string: absent or `null` → `""` (canonical empty).
fn opt_str<'a>(o: Fields<'a>, k: &str) -> std::result::Result<&'a str, Rejection> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Rejection::parse(format!("{k} is not a string"))),
    }
}

/// Optional array of strings: absent or `null` → empty.
fn str_array(o: Fields<'_>, k: &str) -> std::result::Result<Vec<String>, Rejection> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Rejection::parse(format!("{k} has a non-string element")))
            })
            .collect(),
        Some(_) => Err(Rejection::parse(format!("{k} is not an array"))),
    }
}

fn trust_level(o: Fields<'_>) -> std::result::Result<u64, Rejection> {
    match o.get("trustLevel") {
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|l| *l <= 4)
            .ok_or_else(|| Rejection::parse("trustLevel is not an integer from 0 to 4")),
        Some(_) => Err(Rejection::parse("trustLevel is not a number")),
        None => Err(Rejection::parse("trustLevel is missing")),
    }
}

fn trust_score(o: Fields<'_>) -> std::result::Result<f64, Rejection> {
    match o.get("trustScore") {
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|s| s.is_finite() && (0.0..=100.0).contains(s))
            .ok_or_else(|| Rejection::parse("trustScore is not a number from 0 to 100")),
        Some(_) => Err(Rejection::parse("trustScore is not a number")),
        None => Err(Rejection::parse("trustScore is missing")),
    }
}

fn timestamp(o: Fields<'_>, k: &str) -> std::result::Result<DateTime<Utc>, Rejection> {
    parse_timestamp(req_str(o, k)?).map_err(|e| Rejection::parse(format!("{k}: {e}")))
}

fn read_credential(o: Fields<'_>) -> std::result::Result<Credential, Rejection> {
    let signatures = match o.get("signatures") {
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let so = s
                    .as_object()
                    .ok_or_else(|| Rejection::parse(format!("signatures[{i}] is not an object")))?;
                Ok(SignatureEntry {
                    key_id: req_str(so, "keyId")?.to_owned(),
                    algorithm: req_str(so, "algorithm")?.to_owned(),
                    value: req_str(so, "value")?.to_owned(),
                })
            })
            .collect::<std::result::Result<Vec<_>, Rejection>>()?,
        Some(_) => return Err(Rejection::parse("signatures is not an array")),
        None => return Err(Rejection::parse("signatures is missing")),
    };
    let revoked = match o.get("revoked") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Rejection::parse("revoked is not a boolean")),
    };
    let id = match o.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(Rejection::parse("id is not a string")),
    };
    Ok(Credential {
        id,
        atc_version: req_str(o, "atcVersion")?.to_owned(),
        agent_id: req_str(o, "agentId")?.to_owned(),
        agent_did: req_str(o, "agentDid")?.to_owned(),
        issuer_did: req_str(o, "issuerDid")?.to_owned(),
        issuer_chain: str_array(o, "issuerChain")?,
        trust_level: trust_level(o)?,
        trust_score: trust_score(o)?,
        issued_at: timestamp(o, "issuedAt")?,
        expires_at: timestamp(o, "expiresAt")?,
        revoked,
        signatures,
    })
}

/// The v1.0 signed string (core.md §1.3a.1). Errors if a field contains `|`, which would let two
/// different credentials share one signed string.
pub fn signing_input_v1_0(o: &Map<String, Value>) -> std::result::Result<String, Rejection> {
    let fields = [
        req_str(o, "agentId")?,
        req_str(o, "agentDid")?,
        req_str(o, "version")?,
        req_str(o, "contentHash")?,
        opt_str(o, "buildAttestation")?,
        req_str(o, "issuerDid")?,
        req_str(o, "issuedAt")?,
        req_str(o, "expiresAt")?,
    ];
    if let Some(f) = fields.iter().find(|f| f.contains('|')) {
        return Err(Rejection::parse(format!(
            "signed field {f:?} contains '|', which makes the v1.0 signed string ambiguous"
        )));
    }
    let [
        agent_id,
        agent_did,
        version,
        content_hash,
        build,
        issuer,
        issued,
        expires,
    ] = fields;
    Ok(format!(
        "{agent_id}|{agent_did}|{version}|{content_hash}|{build}|{issuer}|{}|{:.6}|{issued}|{expires}|1.0",
        trust_level(o)?,
        trust_score(o)?,
    ))
}

/// The six `scanSummary` members, zero-valued when absent.
fn scan_summary(o: Fields<'_>) -> std::result::Result<Value, Rejection> {
    let empty = Map::new();
    let s = match o.get("scanSummary") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return Err(Rejection::parse("scanSummary is not an object")),
    };
    let int = |k: &str| -> std::result::Result<u64, Rejection> {
        match s.get(k) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => v.as_u64().ok_or_else(|| {
                Rejection::parse(format!("scanSummary.{k} is not a non-negative integer"))
            }),
        }
    };
    Ok(json!({
        "hma": opt_str(s, "hma")?,
        "criticalFindings": int("criticalFindings")?,
        "highFindings": int("highFindings")?,
        "secretless": opt_str(s, "secretless")?,
        "cryptoServe": opt_str(s, "cryptoServe")?,
        "oasbLevel": opt_str(s, "oasbLevel")?,
    }))
}

/// The v1.1 to-be-signed projection (core.md §1.3a.2), before canonicalization.
pub fn tbs_projection_v1_1(o: &Map<String, Value>) -> std::result::Result<Value, Rejection> {
    let behavioral = match o.get("behavioralProfile") {
        None => Value::Null,
        Some(v @ (Value::Null | Value::Object(_))) => v.clone(),
        Some(_) => return Err(Rejection::parse("behavioralProfile is not an object")),
    };
    let mut tbs = json!({
        "atcVersion": req_str(o, "atcVersion")?,
        "agentId": req_str(o, "agentId")?,
        "agentDid": req_str(o, "agentDid")?,
        "publisher": opt_str(o, "publisher")?,
        "publisherDid": opt_str(o, "publisherDid")?,
        "version": req_str(o, "version")?,
        "contentHash": req_str(o, "contentHash")?,
        "buildAttestation": opt_str(o, "buildAttestation")?,
        "capabilities": str_array(o, "capabilities")?,
        "behavioralProfile": behavioral,
        "scanSummary": scan_summary(o)?,
        "trustScore": format!("{:.6}", trust_score(o)?),
        "trustLevel": trust_level(o)?,
        "issuedAt": req_str(o, "issuedAt")?,
        "expiresAt": req_str(o, "expiresAt")?,
        "issuerDid": req_str(o, "issuerDid")?,
        "issuerChain": str_array(o, "issuerChain")?,
    });
    // declaredPurpose is presence-based: absent or the empty object (however it was spelled on
    // the wire — emptiness is decided after parsing) is omitted; any other value, including
    // null, arrays and strings, enters the TBS verbatim.
    match o.get("declaredPurpose") {
        None => {}
        Some(Value::Object(m)) if m.is_empty() => {}
        Some(v) => {
            if let Value::Object(t) = &mut tbs {
                t.insert("declaredPurpose".into(), v.clone());
            }
        }
    }
    Ok(tbs)
}

/// The v1.1 signed bytes: `JCS(TBS)`.
pub fn tbs_v1_1(o: &Map<String, Value>) -> std::result::Result<Vec<u8>, Rejection> {
    let tbs = tbs_projection_v1_1(o)?;
    jcs(&tbs).map_err(|e| Rejection::parse(format!("cannot canonicalize the TBS: {e}")))
}

/// The six-member scan summary an issuer attests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanSummary {
    pub hma: String,
    pub critical_findings: u64,
    pub high_findings: u64,
    pub secretless: String,
    pub crypto_serve: String,
    pub oasb_level: String,
}

/// What an issuer asserts about an agent in a new v1.1 credential.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialClaims {
    /// Issuance identifier (a UUID in the fixtures); not signed.
    pub id: String,
    pub agent_id: String,
    pub agent_did: String,
    pub publisher: String,
    pub publisher_did: Option<String>,
    pub version: String,
    /// Lowercase hex SHA-256 of the agent content.
    pub content_hash: String,
    pub build_attestation: Option<String>,
    pub capabilities: Vec<String>,
    pub behavioral_profile: Option<Value>,
    pub scan_summary: ScanSummary,
    /// §1.5 declared purpose; `None` (or an empty object) is omitted.
    pub declared_purpose: Option<Value>,
    /// 0–100.
    pub trust_score: f64,
    /// 0–4.
    pub trust_level: u8,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub issuer_did: String,
    /// Root first.
    pub issuer_chain: Vec<String>,
    pub transparency_log_index: Option<u64>,
}

/// The organization keys that sign a credential. Both key ids must belong to the issuer DID
/// (`<issuerDid>#...`).
pub struct IssuerKeys<'a> {
    pub ed25519: &'a KeyPair,
    pub ed25519_key_id: &'a str,
    /// Optional post-quantum leg: with it the credential is hybrid-signed.
    pub ml_dsa_65: Option<(&'a ml_dsa::SigningKey<ml_dsa::MlDsa65>, &'a str)>,
}

/// Issues an ATX v1.1 credential: builds the wire object, signs `JCS(TBS)` with the issuer's
/// Ed25519 key (and ML-DSA-65 key, if given) and returns the credential JSON.
///
/// Invariant: the result verifies with [`verify_credential`] for a verifier that trusts
/// `issuer_did` and knows the keys, between `issued_at` and `expires_at` — the signed bytes come
/// from the same [`tbs_v1_1`] the verifier uses.
pub fn issue_credential(claims: &CredentialClaims, keys: &IssuerKeys<'_>) -> Result<Value> {
    if !(claims.trust_score.is_finite() && (0.0..=100.0).contains(&claims.trust_score)) {
        return Err(Error::invalid(
            "trust score",
            "must be a number from 0 to 100",
        ));
    }
    if claims.trust_level > 4 {
        return Err(Error::invalid("trust level", "must be 0 to 4"));
    }
    if claims.expires_at <= claims.issued_at {
        return Err(Error::invalid(
            "validity",
            "expiresAt must be after issuedAt",
        ));
    }
    let mut key_ids = vec![keys.ed25519_key_id];
    if let Some((_, kid)) = keys.ml_dsa_65 {
        key_ids.push(kid);
    }
    for kid in key_ids {
        if controller_of(kid) != claims.issuer_did || !kid.contains('#') {
            return Err(Error::invalid(
                "issuer key id",
                format!("{kid:?} is not a key of issuer {}", claims.issuer_did),
            ));
        }
    }
    let mut cred = json!({
        "id": claims.id,
        "atcVersion": "1.1",
        "agentId": claims.agent_id,
        "agentDid": claims.agent_did,
        "publisher": claims.publisher,
        "publisherDid": claims.publisher_did.clone().unwrap_or_default(),
        "version": claims.version,
        "contentHash": claims.content_hash,
        "buildAttestation": claims.build_attestation.clone().unwrap_or_default(),
        "capabilities": claims.capabilities,
        "scanSummary": claims.scan_summary,
        "trustScore": claims.trust_score,
        "trustLevel": claims.trust_level,
        "issuedAt": rfc3339(claims.issued_at),
        "expiresAt": rfc3339(claims.expires_at),
        "issuerDid": claims.issuer_did,
        "issuerChain": claims.issuer_chain,
        "revoked": false,
        "createdAt": rfc3339(claims.issued_at),
    });
    let Value::Object(obj) = &mut cred else {
        return Err(Error::State("credential template is not an object".into()));
    };
    if let Some(idx) = claims.transparency_log_index {
        obj.insert("transparencyLogIndex".into(), idx.into());
    }
    if let Some(bp) = &claims.behavioral_profile {
        obj.insert("behavioralProfile".into(), bp.clone());
    }
    if let Some(dp) = &claims.declared_purpose {
        obj.insert("declaredPurpose".into(), dp.clone());
    }
    let signed = tbs_v1_1(obj).map_err(|r| Error::invalid("credential claims", r.reason))?;
    let mut sigs = vec![json!({
        "keyId": keys.ed25519_key_id,
        "algorithm": "Ed25519",
        "value": encode_base64(&keys.ed25519.sign(&signed)),
    })];
    if let Some((sk, kid)) = keys.ml_dsa_65 {
        sigs.push(json!({
            "keyId": kid,
            "algorithm": "ML-DSA-65",
            "value": encode_base64(&super::signatures::ml_dsa_65_sign(sk, &signed)),
        }));
    }
    obj.insert("signatures".into(), Value::Array(sigs));
    Ok(cred)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standards::signatures::{Algorithm, KeyMaterial, ml_dsa_65_from_seed};
    use std::path::PathBuf;

    fn suite() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/atx")
    }

    fn read_json(p: PathBuf) -> Value {
        serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
    }

    /// Every JCS vector: canonical bytes match the pinned hex, and the pinned Ed25519 and
    /// ML-DSA-65 signatures verify over our bytes.
    #[test]
    fn jcs_vectors() {
        let dir = suite().join("jcs-vectors/vectors");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let v = read_json(path.clone());
            let bytes = jcs(&v["tbs"]).unwrap();
            let exp = &v["expected"];
            assert_eq!(
                hex::encode(&bytes),
                exp["canonicalHex"].as_str().unwrap(),
                "{}",
                path.display()
            );
            assert_eq!(
                std::str::from_utf8(&bytes).unwrap(),
                exp["canonicalString"].as_str().unwrap()
            );
            use sha2::Digest as _;
            assert_eq!(
                hex::encode(sha2::Sha256::digest(&bytes)),
                exp["canonicalSha256"].as_str().unwrap()
            );
            for (leg, alg) in [
                ("ed25519", Algorithm::Ed25519),
                ("mldsa65", Algorithm::MlDsa65),
            ] {
                let key =
                    KeyMaterial::from_hex(alg, exp[leg]["publicKeyHex"].as_str().unwrap()).unwrap();
                let sig = super::super::signatures::decode_signature_value(
                    exp[leg]["signatureB64"].as_str().unwrap(),
                )
                .unwrap();
                assert!(key.verify(&bytes, &sig), "{leg} {}", path.display());
                let mut bad = bytes.clone();
                bad[1] ^= 1;
                assert!(!key.verify(&bad, &sig));
            }
            n += 1;
        }
        assert_eq!(n, 8);
    }

    /// The ML-DSA-65 seed vector's public key derives from its seed with this crate (FIPS 204
    /// KeyGen_internal agrees with the fixture generator's).
    #[test]
    fn ml_dsa_seed_vector_derives_pinned_key() {
        let v = read_json(suite().join("vectors/mldsa65-seed.json"));
        let seed: [u8; 32] = hex::decode(v["seedHex"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let sk = ml_dsa_65_from_seed(&seed);
        let vk = ml_dsa::signature::Keypair::verifying_key(&sk);
        assert_eq!(
            hex::encode(vk.encode()),
            v["publicKeyHex"].as_str().unwrap()
        );
    }

    fn now() -> DateTime<Utc> {
        parse_timestamp("2026-06-01T00:00:00Z").unwrap()
    }

    fn claims() -> CredentialClaims {
        CredentialClaims {
            id: "00000000-0000-0000-0000-00000000abcd".into(),
            agent_id: "aim_test".into(),
            agent_did: "did:opena2a:agent:aim_test".into(),
            publisher: "acme".into(),
            publisher_did: None,
            version: "1.0.0".into(),
            content_hash: "ab".repeat(32),
            build_attestation: None,
            capabilities: vec!["db:read".into()],
            behavioral_profile: None,
            scan_summary: ScanSummary::default(),
            declared_purpose: None,
            trust_score: 72.25,
            trust_level: 2,
            issued_at: parse_timestamp("2026-05-01T00:00:00Z").unwrap(),
            expires_at: parse_timestamp("2026-08-01T00:00:00Z").unwrap(),
            issuer_did: "did:opena2a:authority:acme.example".into(),
            issuer_chain: vec!["did:opena2a:authority:acme.example".into()],
            transparency_log_index: None,
        }
    }

    #[test]
    fn issued_credentials_verify_and_tampering_is_caught() {
        let org = KeyPair::from_seed(&[9; 32]);
        let pq = ml_dsa_65_from_seed(&[10; 32]);
        let pq_vk = ml_dsa::signature::Keypair::verifying_key(&pq).encode();
        let keys = IssuerKeys {
            ed25519: &org,
            ed25519_key_id: "did:opena2a:authority:acme.example#key-1",
            ml_dsa_65: Some((&pq, "did:opena2a:authority:acme.example#key-1-pqc")),
        };
        let cred = issue_credential(&claims(), &keys).unwrap();
        let known = [
            KeyEntry {
                key_id: keys.ed25519_key_id.into(),
                key: KeyMaterial::from_bytes(Algorithm::Ed25519, &org.public().to_bytes()).unwrap(),
            },
            KeyEntry {
                key_id: "did:opena2a:authority:acme.example#key-1-pqc".into(),
                key: KeyMaterial::from_bytes(Algorithm::MlDsa65, &pq_vk).unwrap(),
            },
        ];
        let trusted = ["did:opena2a:authority:acme.example".to_string()];
        let ctx = VerifyContext {
            now: now(),
            trusted_issuers: &trusted,
            keys: &known,
            crl: None,
            policy: SignaturePolicy::default(),
        };
        let bytes = serde_json::to_vec(&cred).unwrap();
        let ok = verify_credential(&bytes, &ctx).unwrap();
        assert!(ok.signatures.post_quantum);
        assert_eq!(ok.trust_level, 2);

        let reject =
            |c: &Value| verify_credential(&serde_json::to_vec(c).unwrap(), &ctx).unwrap_err();
        let mut t = cred.clone();
        t["capabilities"] = json!(["db:read", "system:exec"]);
        assert_eq!(reject(&t).category, Category::SignatureInvalid);
        let mut t = cred.clone();
        t["trustScore"] = json!(99.0);
        assert_eq!(reject(&t).category, Category::SignatureInvalid);
        let mut t = cred.clone();
        t["declaredPurpose"] = json!("anything");
        assert_eq!(reject(&t).category, Category::SignatureInvalid);
        let mut t = cred.clone();
        t["declaredPurpose"] = json!({});
        assert!(verify_credential(&serde_json::to_vec(&t).unwrap(), &ctx).is_ok());
        let mut t = cred.clone();
        t["revoked"] = json!(true);
        assert_eq!(reject(&t).category, Category::Revoked);
        let mut t = cred.clone();
        t["atcVersion"] = json!("1.2");
        assert_eq!(reject(&t).category, Category::UnsupportedVersion);
        // Dropping the ML-DSA leg from a hybrid credential is fine only because the Ed25519 leg
        // is intact; dropping the Ed25519 leg is not.
        let mut t = cred.clone();
        t["signatures"] = json!([cred["signatures"][1].clone()]);
        assert_eq!(reject(&t).category, Category::SignatureInvalid);

        let crl = Crl::from_value(&json!({"entries": [{"agentId": "aim_test"}]})).unwrap();
        let ctx_crl = VerifyContext {
            crl: Some(&crl),
            ..ctx
        };
        assert_eq!(
            verify_credential(&bytes, &ctx_crl).unwrap_err().category,
            Category::Revoked
        );
        let late = VerifyContext {
            now: parse_timestamp("2026-08-01T00:00:00Z").unwrap(),
            ..ctx
        };
        assert_eq!(
            verify_credential(&bytes, &late).unwrap_err().category,
            Category::Expired
        );
        let early = VerifyContext {
            now: parse_timestamp("2026-04-30T23:59:59Z").unwrap(),
            ..ctx
        };
        assert_eq!(
            verify_credential(&bytes, &early).unwrap_err().category,
            Category::Expired
        );
        let nobody: [String; 0] = [];
        let untrusting = VerifyContext {
            trusted_issuers: &nobody,
            ..ctx
        };
        assert_eq!(
            verify_credential(&bytes, &untrusting).unwrap_err().category,
            Category::UntrustedIssuer
        );
    }

    #[test]
    fn issue_refuses_foreign_key_ids_and_bad_claims() {
        let org = KeyPair::from_seed(&[9; 32]);
        let keys = IssuerKeys {
            ed25519: &org,
            ed25519_key_id: "did:opena2a:authority:other.example#key-1",
            ml_dsa_65: None,
        };
        assert!(issue_credential(&claims(), &keys).is_err());
        let keys = IssuerKeys {
            ed25519_key_id: "did:opena2a:authority:acme.example#key-1",
            ..keys
        };
        let mut c = claims();
        c.trust_level = 5;
        assert!(issue_credential(&c, &keys).is_err());
        let mut c = claims();
        c.trust_score = f64::NAN;
        assert!(issue_credential(&c, &keys).is_err());
    }

    #[test]
    fn pipe_in_v1_0_field_is_refused() {
        let o = json!({
            "agentId": "a|b", "agentDid": "d", "version": "1", "contentHash": "c",
            "issuerDid": "i", "issuedAt": "t", "expiresAt": "t", "trustLevel": 1, "trustScore": 1.0
        });
        let e = signing_input_v1_0(o.as_object().unwrap()).unwrap_err();
        assert_eq!(e.category, Category::ParseError);
    }

    #[test]
    fn malformed_credentials_are_parse_errors_not_panics() {
        let trusted: [String; 0] = [];
        let ctx = VerifyContext {
            now: now(),
            trusted_issuers: &trusted,
            keys: &[],
            crl: None,
            policy: SignaturePolicy::default(),
        };
        for bad in [
            &b"not json"[..],
            b"[]",
            b"{}",
            br#"{"atcVersion":1}"#,
            br#"{"atcVersion":"1.1"}"#,
            br#"{"atcVersion":"1.1","atcversion":"1.1"}"#,
            br#"{"atcVersion":"1.1","agentId":"a","agentDid":"d","version":"v","contentHash":"c","issuerDid":"i","issuedAt":"2026-01-01 00:00:00Z","expiresAt":"2027-01-01T00:00:00Z","trustLevel":1,"trustScore":1,"signatures":[]}"#,
            br#"{"atcVersion":"1.1","agentId":"a","agentDid":"d","version":"v","contentHash":"c","issuerDid":"i","issuedAt":"2026-01-01T00:00:00Z","expiresAt":"2027-01-01T00:00:00Z","trustLevel":1.5,"trustScore":1,"signatures":[]}"#,
            br#"{"atcVersion":"1.1","agentId":"a","agentDid":"d","version":"v","contentHash":"c","issuerDid":"i","issuedAt":"2026-01-01T00:00:00Z","expiresAt":"2027-01-01T00:00:00Z","trustLevel":1,"trustScore":1e400,"signatures":[]}"#,
        ] {
            let r = verify_credential(bad, &ctx).unwrap_err();
            assert_eq!(r.category, Category::ParseError, "{}", String::from_utf8_lossy(bad));
        }
    }
}
