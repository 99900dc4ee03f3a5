//! ATP (Agent Trust Protocol v1.0.0-rc1): trust proofs, signed tree heads, transparency-log
//! inclusion and consistency proofs, revocation lists and discovery documents.
//!
//! Every document is strict-parsed first ([`super::strict_json`]); a document that is not strict
//! JSON or lacks a required member is `PARSE_ERROR`.
//!
//! Trust proofs ([`verify_trust_proof`], ATP §4.4), first failure decides:
//! 1. validity: `now >= expiresAt` or `now < issuedAt` → `EXPIRED`;
//! 2. `issuerDid` trusted → else `UNTRUSTED_ISSUER`;
//! 3. signatures over `did|trustLevel|trustScore(%.6f)|verdict|issuedAt|expiresAt|issuerDid`
//!    under keys of the issuer only ([`super::signatures::verify_signature_set`]) →
//!    `SIGNATURE_INVALID`;
//! 4. semantics: window `expiresAt - issuedAt` positive and at most 24 hours (§10.2),
//!    `trustScore` in [0, 1] → else `SEMANTIC_INVALID`.
//!
//! Signed tree heads ([`verify_sth`], §5.6): the Ed25519 signature of the `signedBy` key covers
//! the raw 32 root-hash bytes (literal reading of §5.6: tree size and timestamp are *not*
//! signed). The key's authority must be a trusted issuer. Inclusion and consistency proofs
//! (§5.4, §5.5) first verify their tree heads, then recompute roots with the one RFC 9162
//! implementation shared with the audit log ([`crate::audit::merkle`]) → `PROOF_INVALID`.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::signatures::{
    Algorithm, KeyEntry, KeyMaterial, SignatureEntry, SignaturePolicy, SignatureReport,
    controller_of, decode_signature_value, verify_signature_set,
};
use super::{Category, Rejection, parse_timestamp, strict_json};
use crate::audit::merkle;

/// Maximum validity window of a trust proof (ATP §10.2).
pub const MAX_PROOF_WINDOW: Duration = Duration::hours(24);
/// Prefix of hash strings in ATP documents.
pub const HASH_PREFIX: &str = "SHA256:";

/// What the verifier knows.
#[derive(Debug, Clone, Copy)]
pub struct VerifyContext<'a> {
    pub now: DateTime<Utc>,
    pub trusted_issuers: &'a [String],
    pub keys: &'a [KeyEntry],
    pub policy: SignaturePolicy,
}

impl VerifyContext<'_> {
    fn trusts(&self, did: &str) -> bool {
        self.trusted_issuers.iter().any(|t| t == did)
    }
}

type Obj = Map<String, Value>;

fn strict_object(bytes: &[u8], what: &str) -> Result<Obj, Rejection> {
    match strict_json::parse(bytes) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(Rejection::parse(format!("{what} is not a JSON object"))),
        Err(e) => Err(Rejection::parse(format!("{what} is not strict JSON: {e}"))),
    }
}

fn req_str<'a>(o: &'a Obj, k: &str) -> Result<&'a str, Rejection> {
    match o.get(k) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Rejection::parse(format!("{k} is not a string"))),
        None => Err(Rejection::parse(format!("{k} is missing"))),
    }
}

fn req_nonempty<'a>(o: &'a Obj, k: &str) -> Result<&'a str, Rejection> {
    let s = req_str(o, k)?;
    if s.is_empty() {
        return Err(Rejection::parse(format!("{k} is empty")));
    }
    Ok(s)
}

fn req_u64(o: &Obj, k: &str) -> Result<u64, Rejection> {
    match o.get(k) {
        Some(v) => v
            .as_u64()
            .ok_or_else(|| Rejection::parse(format!("{k} is not a non-negative integer"))),
        None => Err(Rejection::parse(format!("{k} is missing"))),
    }
}

fn req_obj<'a>(o: &'a Obj, k: &str) -> Result<&'a Obj, Rejection> {
    match o.get(k) {
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(Rejection::parse(format!("{k} is not an object"))),
        None => Err(Rejection::parse(format!("{k} is missing"))),
    }
}

fn req_time(o: &Obj, k: &str) -> Result<DateTime<Utc>, Rejection> {
    parse_timestamp(req_str(o, k)?).map_err(|e| Rejection::parse(format!("{k}: {e}")))
}

/// Parses `SHA256:<64 hex>` into 32 bytes.
pub fn parse_hash(what: &str, s: &str) -> Result<merkle::Hash, Rejection> {
    let hex_part = s
        .strip_prefix(HASH_PREFIX)
        .ok_or_else(|| Rejection::parse(format!("{what} does not start with {HASH_PREFIX}")))?;
    let bytes = super::decode_hex_exact(what, hex_part, 32).map_err(Rejection::parse)?;
    let mut h = [0u8; 32];
    h.copy_from_slice(&bytes);
    Ok(h)
}

fn signatures(o: &Obj) -> Result<Vec<SignatureEntry>, Rejection> {
    let arr = match o.get("signatures") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(Rejection::parse("signatures is not an array")),
        None => return Err(Rejection::parse("signatures is missing")),
    };
    arr.iter()
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
        .collect()
}

/// A trust proof that passed every step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedTrustProof {
    pub did: String,
    pub trust_level: u64,
    pub trust_score: f64,
    pub verdict: String,
    pub issuer_did: String,
    pub signatures: SignatureReport,
}

/// The trust-proof signed string (ATP §4.3). Errors if a field contains `|`.
pub fn trust_proof_signing_input(o: &Obj) -> Result<String, Rejection> {
    let did = req_nonempty(o, "did")?;
    let verdict = req_str(o, "verdict")?;
    let issued = req_str(o, "issuedAt")?;
    let expires = req_str(o, "expiresAt")?;
    let issuer = req_nonempty(o, "issuerDid")?;
    if let Some(f) = [did, verdict, issued, expires, issuer]
        .iter()
        .find(|f| f.contains('|'))
    {
        return Err(Rejection::parse(format!(
            "signed field {f:?} contains '|', which makes the signed string ambiguous"
        )));
    }
    let level = req_u64(o, "trustLevel")?;
    let score = trust_score(o)?;
    Ok(format!(
        "{did}|{level}|{score:.6}|{verdict}|{issued}|{expires}|{issuer}"
    ))
}

fn trust_score(o: &Obj) -> Result<f64, Rejection> {
    match o.get("trustScore") {
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|s| s.is_finite())
            .ok_or_else(|| Rejection::parse("trustScore is not a finite number")),
        Some(_) => Err(Rejection::parse("trustScore is not a number")),
        None => Err(Rejection::parse("trustScore is missing")),
    }
}

/// Verifies one trust proof (see the module docs for the steps).
pub fn verify_trust_proof(
    bytes: &[u8],
    ctx: &VerifyContext<'_>,
) -> Result<VerifiedTrustProof, Rejection> {
    let o = strict_object(bytes, "trust proof")?;
    let signed = trust_proof_signing_input(&o)?;
    let issued = req_time(&o, "issuedAt")?;
    let expires = req_time(&o, "expiresAt")?;
    let sigs = signatures(&o)?;
    if let Some(v) = o.get("transparencyLogIndex")
        && !v.is_null()
        && v.as_u64().is_none()
    {
        return Err(Rejection::parse(
            "transparencyLogIndex is not a non-negative integer",
        ));
    }
    let issuer = req_str(&o, "issuerDid")?;
    // 1. Validity.
    if ctx.now >= expires {
        return Err(Rejection::new(
            Category::Expired,
            format!(
                "trust proof expired at {} (verifier clock {})",
                req_str(&o, "expiresAt")?,
                crate::clock::rfc3339(ctx.now)
            ),
        ));
    }
    if ctx.now < issued {
        return Err(Rejection::new(
            Category::Expired,
            "trust proof is not yet valid: issuedAt is after the verifier clock",
        ));
    }
    // 2. Issuer.
    if !ctx.trusts(issuer) {
        return Err(Rejection::new(
            Category::UntrustedIssuer,
            format!("issuer {issuer} is not a trusted issuer"),
        ));
    }
    // 3. Signatures, by keys of the issuer only.
    let report = verify_signature_set(
        signed.as_bytes(),
        &sigs,
        ctx.keys,
        &|authority| authority == issuer,
        ctx.policy,
    )
    .map_err(|r| Rejection::new(Category::SignatureInvalid, r))?;
    // 4. Semantics.
    let window = expires - issued;
    if window <= Duration::zero() || window > MAX_PROOF_WINDOW {
        return Err(Rejection::new(
            Category::SemanticInvalid,
            format!(
                "validity window of {}s is outside (0, {}s] (ATP §10.2)",
                window.num_seconds(),
                MAX_PROOF_WINDOW.num_seconds()
            ),
        ));
    }
    let score = trust_score(&o)?;
    if !(0.0..=1.0).contains(&score) {
        return Err(Rejection::new(
            Category::SemanticInvalid,
            format!("trustScore {score} is outside [0, 1]"),
        ));
    }
    Ok(VerifiedTrustProof {
        did: req_str(&o, "did")?.to_owned(),
        trust_level: req_u64(&o, "trustLevel")?,
        trust_score: score,
        verdict: req_str(&o, "verdict")?.to_owned(),
        issuer_did: issuer.to_owned(),
        signatures: report,
    })
}

/// A parsed signed tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTreeHead {
    pub tree_size: u64,
    pub timestamp: DateTime<Utc>,
    pub root_hash: merkle::Hash,
    pub signed_by: String,
    pub signature: Vec<u8>,
}

/// Reads `{treeSize, timestamp, rootHash, signedBy, signature}`.
pub fn parse_sth(o: &Obj) -> Result<SignedTreeHead, Rejection> {
    Ok(SignedTreeHead {
        tree_size: req_u64(o, "treeSize")?,
        timestamp: req_time(o, "timestamp")?,
        root_hash: parse_hash("rootHash", req_str(o, "rootHash")?)?,
        signed_by: req_nonempty(o, "signedBy")?.to_owned(),
        signature: decode_signature_value(req_str(o, "signature")?)
            .ok_or_else(|| Rejection::parse("STH signature is not base64"))?,
    })
}

/// Verifies an STH's signature: the `signedBy` key's authority must be trusted, and the
/// Ed25519 signature must cover the raw root-hash bytes.
pub fn verify_sth(sth: &SignedTreeHead, ctx: &VerifyContext<'_>) -> Result<(), Rejection> {
    let authority = controller_of(&sth.signed_by);
    if !ctx.trusts(authority) {
        return Err(Rejection::new(
            Category::UntrustedIssuer,
            format!("tree head signer {authority} is not a trusted issuer"),
        ));
    }
    let key = ctx
        .keys
        .iter()
        .find(|k| k.key_id == sth.signed_by && k.key.algorithm() == Algorithm::Ed25519)
        .ok_or_else(|| {
            Rejection::new(
                Category::SignatureInvalid,
                format!(
                    "no Ed25519 key {} is configured; the tree head signature cannot be verified",
                    sth.signed_by
                ),
            )
        })?;
    if !key.key.verify(&sth.root_hash, &sth.signature) {
        return Err(Rejection::new(
            Category::SignatureInvalid,
            "tree head signature did not verify over the root hash",
        ));
    }
    Ok(())
}

/// Verifies a standalone signed tree head document.
pub fn verify_sth_document(
    bytes: &[u8],
    ctx: &VerifyContext<'_>,
) -> Result<SignedTreeHead, Rejection> {
    let o = strict_object(bytes, "signed tree head")?;
    let sth = parse_sth(&o)?;
    verify_sth(&sth, ctx)?;
    Ok(sth)
}

fn hash_list(o: &Obj, k: &str) -> Result<Vec<merkle::Hash>, Rejection> {
    match o.get(k) {
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let s = v
                    .as_str()
                    .ok_or_else(|| Rejection::parse(format!("{k}[{i}] is not a string")))?;
                parse_hash(&format!("{k}[{i}]"), s)
            })
            .collect(),
        Some(_) => Err(Rejection::parse(format!("{k} is not an array"))),
        None => Err(Rejection::parse(format!("{k} is missing"))),
    }
}

/// Verifies `{logIndex, leafHash, auditPath[], signedTreeHead}`: the tree head's signature, then
/// the RFC 9162 §2.1.3.2 recomputation of its root from the leaf hash and audit path.
pub fn verify_inclusion_proof(bytes: &[u8], ctx: &VerifyContext<'_>) -> Result<(), Rejection> {
    let o = strict_object(bytes, "inclusion proof")?;
    let index = req_u64(&o, "logIndex")?;
    let leaf = parse_hash("leafHash", req_str(&o, "leafHash")?)?;
    let path = hash_list(&o, "auditPath")?;
    let sth = parse_sth(req_obj(&o, "signedTreeHead")?)?;
    verify_sth(&sth, ctx)?;
    if !merkle::verify_inclusion(&leaf, index, sth.tree_size, &path, &sth.root_hash) {
        return Err(Rejection::new(
            Category::ProofInvalid,
            format!(
                "audit path for leaf {index} does not reproduce the signed root of tree size {}",
                sth.tree_size
            ),
        ));
    }
    Ok(())
}

/// Verifies `{fromSize, toSize, consistencyPath[], fromSignedTreeHead, toSignedTreeHead}`: both
/// tree heads' signatures, that the sizes agree with them, then RFC 9162 §2.1.4.2.
pub fn verify_consistency_proof(bytes: &[u8], ctx: &VerifyContext<'_>) -> Result<(), Rejection> {
    let o = strict_object(bytes, "consistency proof")?;
    let from = req_u64(&o, "fromSize")?;
    let to = req_u64(&o, "toSize")?;
    let path = hash_list(&o, "consistencyPath")?;
    let old = parse_sth(req_obj(&o, "fromSignedTreeHead")?)?;
    let new = parse_sth(req_obj(&o, "toSignedTreeHead")?)?;
    verify_sth(&old, ctx)?;
    verify_sth(&new, ctx)?;
    if old.tree_size != from || new.tree_size != to {
        return Err(Rejection::new(
            Category::ProofInvalid,
            format!(
                "proof sizes {from}->{to} do not match the tree heads' sizes {}->{}",
                old.tree_size, new.tree_size
            ),
        ));
    }
    if !merkle::verify_consistency(from, to, &old.root_hash, &new.root_hash, &path) {
        return Err(Rejection::new(
            Category::ProofInvalid,
            format!("consistency path does not reproduce both signed roots ({from} -> {to})"),
        ));
    }
    Ok(())
}

/// One parsed revocation (§8.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    pub agent_did: String,
    pub revoked_at: String,
    pub reason: String,
    pub transparency_log_index: u64,
    pub revoked_by_key_id: String,
}

/// Parses a §8.1 revocation response `{revocations: [...], nextSince}`. Structural only (the
/// body is unsigned by design); any malformed entry, notably an unparseable `revokedAt`, rejects
/// the whole list instead of being skipped — skipping would keep a revoked agent trusted.
pub fn parse_revocation_list(bytes: &[u8]) -> Result<Vec<Revocation>, Rejection> {
    let o = strict_object(bytes, "revocation list")?;
    let arr = match o.get("revocations") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(Rejection::parse("revocations is not an array")),
        None => return Err(Rejection::parse("revocations is missing")),
    };
    let mut out = Vec::with_capacity(arr.len());
    for (i, e) in arr.iter().enumerate() {
        let e = e
            .as_object()
            .ok_or_else(|| Rejection::parse(format!("revocations[{i}] is not an object")))?;
        let ctx = |r: Rejection| Rejection::parse(format!("revocations[{i}].{}", r.reason));
        let revoked_at = req_str(e, "revokedAt").map_err(ctx)?;
        parse_timestamp(revoked_at)
            .map_err(|m| Rejection::parse(format!("revocations[{i}].revokedAt: {m}")))?;
        out.push(Revocation {
            agent_did: req_nonempty(e, "agentDid").map_err(ctx)?.to_owned(),
            revoked_at: revoked_at.to_owned(),
            reason: req_str(e, "reason").map_err(ctx)?.to_owned(),
            transparency_log_index: req_u64(e, "transparencyLogIndex").map_err(ctx)?,
            revoked_by_key_id: req_nonempty(e, "revokedByKeyId").map_err(ctx)?.to_owned(),
        });
    }
    match o.get("nextSince") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            parse_timestamp(s).map_err(|m| Rejection::parse(format!("nextSince: {m}")))?;
        }
        Some(_) => return Err(Rejection::parse("nextSince is not a string")),
    }
    Ok(out)
}

/// The endpoints a §7.1 discovery document must name.
pub const REQUIRED_ENDPOINTS: [&str; 2] = ["trustProof", "trustVerify"];

/// Checks a §7.1 `/.well-known/atp` document: required members and types (`PARSE_ERROR`), then
/// `conformanceLevel` in 1..=3, endpoint paths absolute, and every public key decodable for its
/// algorithm, with a unique key id under the authority's DID and an RFC 3339 `validFrom`
/// (`SEMANTIC_INVALID`). Returns the advertised keys.
pub fn verify_discovery(bytes: &[u8]) -> Result<Vec<KeyEntry>, Rejection> {
    let o = strict_object(bytes, "discovery document")?;
    let authority = req_nonempty(&o, "authorityDid")?;
    if !authority.starts_with("did:") {
        return Err(Rejection::new(
            Category::SemanticInvalid,
            format!("authorityDid {authority:?} is not a DID"),
        ));
    }
    req_nonempty(&o, "version")?;
    let level = req_u64(&o, "conformanceLevel")?;
    if !(1..=3).contains(&level) {
        return Err(Rejection::new(
            Category::SemanticInvalid,
            format!("conformanceLevel {level} is outside 1..=3"),
        ));
    }
    let endpoints = req_obj(&o, "endpoints")?;
    for (name, v) in endpoints {
        let p = v
            .as_str()
            .ok_or_else(|| Rejection::parse(format!("endpoints.{name} is not a string")))?;
        if !p.starts_with('/') && !p.starts_with("https://") {
            return Err(Rejection::new(
                Category::SemanticInvalid,
                format!("endpoints.{name} {p:?} is neither an absolute path nor an https URL"),
            ));
        }
    }
    for name in REQUIRED_ENDPOINTS {
        if !endpoints.contains_key(name) {
            return Err(Rejection::parse(format!("endpoints.{name} is missing")));
        }
    }
    let keys = match o.get("publicKeys") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => {
            return Err(Rejection::new(
                Category::SemanticInvalid,
                "publicKeys is empty",
            ));
        }
        Some(_) => return Err(Rejection::parse("publicKeys is not an array")),
        None => return Err(Rejection::parse("publicKeys is missing")),
    };
    let mut out: Vec<KeyEntry> = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let k = k
            .as_object()
            .ok_or_else(|| Rejection::parse(format!("publicKeys[{i}] is not an object")))?;
        let key_id = req_nonempty(k, "keyId")?;
        let alg_name = req_str(k, "algorithm")?;
        let hex_key = req_str(k, "publicKeyHex")?;
        req_nonempty(k, "status")?;
        req_time(k, "validFrom")?;
        let sem =
            |m: String| Rejection::new(Category::SemanticInvalid, format!("publicKeys[{i}]: {m}"));
        let alg = Algorithm::parse(alg_name)
            .ok_or_else(|| sem(format!("unsupported algorithm {alg_name:?}")))?;
        if controller_of(key_id) != authority || !key_id.contains('#') {
            return Err(sem(format!("keyId {key_id:?} is not a key of {authority}")));
        }
        if out
            .iter()
            .any(|e| e.key_id == key_id && e.key.algorithm() == alg)
        {
            return Err(sem(format!("keyId {key_id:?} is listed twice")));
        }
        let key = KeyMaterial::from_hex(alg, hex_key).map_err(sem)?;
        out.push(KeyEntry {
            key_id: key_id.to_owned(),
            key,
        });
    }
    for list in ["supportedMethods", "capabilities"] {
        match o.get(list) {
            None => {}
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
            Some(_) => {
                return Err(Rejection::parse(format!(
                    "{list} is not an array of strings"
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_parsing() {
        let h = "SHA256:".to_string() + &"ab".repeat(32);
        assert_eq!(parse_hash("h", &h).unwrap(), [0xab; 32]);
        assert!(parse_hash("h", &"ab".repeat(32)).is_err());
        assert!(parse_hash("h", "SHA256:abcd").is_err());
        assert!(parse_hash("h", &("SHA256:".to_string() + &"zz".repeat(32))).is_err());
    }

    fn signed_sth(kp: &crate::keys::KeyPair, size: u64, root: &merkle::Hash) -> Value {
        serde_json::json!({
            "treeSize": size,
            "timestamp": "2026-05-23T00:00:00Z",
            "rootHash": format!("{HASH_PREFIX}{}", hex::encode(root)),
            "signedBy": "did:example:log#key-1",
            "signature": crate::keys::encode_base64(&kp.sign(root)),
        })
    }

    /// Proofs built by the audit log's Merkle code verify through the ATP documents, and
    /// tampering with the path, the sizes or the signer is caught with the right category.
    #[test]
    fn inclusion_and_consistency_documents_round_trip() {
        let kp = crate::keys::KeyPair::from_seed(&[3; 32]);
        let keys = [KeyEntry {
            key_id: "did:example:log#key-1".into(),
            key: KeyMaterial::from_bytes(Algorithm::Ed25519, &kp.public().to_bytes()).unwrap(),
        }];
        let trusted = ["did:example:log".to_string()];
        let ctx = VerifyContext {
            now: parse_timestamp("2026-05-24T00:00:00Z").unwrap(),
            trusted_issuers: &trusted,
            keys: &keys,
            policy: SignaturePolicy::default(),
        };
        let leaves: Vec<merkle::Hash> = (0u8..7).map(|i| merkle::leaf_hash(&[i])).collect();
        let root7 = merkle::root(&leaves);
        let hx = |h: &merkle::Hash| format!("{HASH_PREFIX}{}", hex::encode(h));
        let path: Vec<String> = merkle::inclusion_proof(&leaves, 5)
            .unwrap()
            .iter()
            .map(hx)
            .collect();
        let mut doc = serde_json::json!({
            "logIndex": 5, "leafHash": hx(&leaves[5]), "auditPath": path,
            "signedTreeHead": signed_sth(&kp, 7, &root7),
        });
        let bytes = |v: &Value| serde_json::to_vec(v).unwrap();
        verify_inclusion_proof(&bytes(&doc), &ctx).unwrap();
        doc["logIndex"] = 4.into();
        assert_eq!(
            verify_inclusion_proof(&bytes(&doc), &ctx)
                .unwrap_err()
                .category,
            Category::ProofInvalid
        );
        doc["logIndex"] = 5.into();
        doc["signedTreeHead"]["signature"] = crate::keys::encode_base64(&kp.sign(b"other")).into();
        assert_eq!(
            verify_inclusion_proof(&bytes(&doc), &ctx)
                .unwrap_err()
                .category,
            Category::SignatureInvalid
        );

        let root3 = merkle::root(&leaves[..3]);
        let cpath: Vec<String> = merkle::consistency_proof(&leaves, 3)
            .unwrap()
            .iter()
            .map(hx)
            .collect();
        let mut doc = serde_json::json!({
            "fromSize": 3, "toSize": 7, "consistencyPath": cpath,
            "fromSignedTreeHead": signed_sth(&kp, 3, &root3),
            "toSignedTreeHead": signed_sth(&kp, 7, &root7),
        });
        verify_consistency_proof(&bytes(&doc), &ctx).unwrap();
        doc["fromSize"] = 4.into();
        assert_eq!(
            verify_consistency_proof(&bytes(&doc), &ctx)
                .unwrap_err()
                .category,
            Category::ProofInvalid
        );
        doc["fromSize"] = 3.into();
        let untrusting = VerifyContext {
            trusted_issuers: &[],
            ..ctx
        };
        assert_eq!(
            verify_consistency_proof(&bytes(&doc), &untrusting)
                .unwrap_err()
                .category,
            Category::UntrustedIssuer
        );
    }

    #[test]
    fn revocation_list_rejects_malformed_entries() {
        let ok = br#"{"revocations":[{"agentDid":"did:x:y","revokedAt":"2026-03-22T15:00:00Z","reason":"r","transparencyLogIndex":1,"revokedByKeyId":"did:x:a#k"}],"nextSince":"2026-03-22T15:00:00Z"}"#;
        assert_eq!(parse_revocation_list(ok).unwrap().len(), 1);
        let bad = String::from_utf8_lossy(ok).replace(
            "2026-03-22T15:00:00Z\",\"reason",
            "2026-03-22 15:00:00\",\"reason",
        );
        let r = parse_revocation_list(bad.as_bytes()).unwrap_err();
        assert!(r.reason.contains("revokedAt"), "{r}");
        let missing = String::from_utf8_lossy(ok).replace("\"agentDid\":\"did:x:y\",", "");
        assert!(parse_revocation_list(missing.as_bytes()).is_err());
        assert!(parse_revocation_list(br#"{"revocations":{}}"#).is_err());
    }
}
