//! The fixture-driven conformance runner behind `opena2a conformance run`.
//!
//! It walks the given paths, recognises fixtures *by content* — a JSON object whose `expected`
//! member carries a `verifyResult` — and decides each with the same verification functions the
//! CLI and server use ([`super::atx`], [`super::atp`], [`super::trust_composition`],
//! [`crate::aip`]). Nothing in here knows a fixture's name or expected verdict.
//!
//! Invariants:
//! - the payload under test (`atx`, `trustProof`, `challengeResponse`, ...) is handed to its
//!   verifier as the *raw bytes* found in the fixture file, so the strict-JSON rules (duplicate
//!   members) apply to exactly what the fixture carries;
//! - the rest of the fixture (the verifier state and the expectation) is read strictly too; a
//!   broken wrapper is a fixture error, never a verdict;
//! - keys come from `verifierState`; a key `path` is resolved against the fixture's directory and
//!   its ancestors (relative paths without `..` only) and must agree with any inline
//!   `publicKeyHex`; `keypairRefs` are cross-checked the same way (and against their seeds);
//! - a fixture matches when the verdict (and, for REJECT, the category if one is given) agrees,
//!   and every expected composition number agrees at four decimals. `reasonContains` is reported
//!   as a note, not a failure: reason wording is not part of the standards.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::{MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::signatures::{Algorithm, KeyEntry, KeyMaterial, SignaturePolicy};
use super::trust_composition::{self, Factor, ScoreStatus};
use super::{Category, Rejection, atp, atx, parse_timestamp, strict_json};
use crate::aip;
use crate::keys::{KeyPair, PublicKey};

/// How far up from a fixture's directory key paths are searched.
const KEY_PATH_SEARCH_DEPTH: usize = 4;

/// Why a fixture could not be decided (exit 2 material, not a verdict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureError(pub String);

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FixtureError {}

fn ferr(msg: impl Into<String>) -> FixtureError {
    FixtureError(msg.into())
}

/// The verdict side of a fixture or of our decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// `ACCEPT`, `REJECT`, `MEASURED` or `UNSCORED`.
    pub result: String,
    /// The reject category, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.category {
            Some(c) => write!(f, "{}[{c}]", self.result),
            None => f.write_str(&self.result),
        }
    }
}

/// One decided fixture.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FixtureOutcome {
    pub path: String,
    /// The fixture's `name` member (or the file name).
    pub name: String,
    /// Suite inferred from the fixture type: `aip`, `atx` or `atp`.
    pub suite: String,
    pub fixture_type: String,
    pub expected: Verdict,
    pub observed: Verdict,
    /// Our reason sentence (rejections) or a short summary (acceptances).
    pub reason: String,
    pub matched: bool,
    /// Mismatch details and informational notes (e.g. `reasonContains` not found).
    pub notes: Vec<String>,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum FileResult {
    /// A fixture, decided.
    Decided(FixtureOutcome),
    /// Not a fixture (schema, key vector, manifest, ...).
    Skipped { path: String, why: String },
    /// A fixture (or unreadable candidate) that could not be decided.
    Error { path: String, error: String },
}

/// Per-suite and total counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub fixtures: usize,
    pub matched: usize,
    pub mismatched: usize,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub results: Vec<FileResult>,
    pub suites: BTreeMap<String, Counts>,
    pub total: Counts,
    pub errors: usize,
    pub skipped: usize,
}

impl Report {
    /// True when at least one fixture ran, all matched, and nothing errored.
    pub fn all_matched(&self) -> bool {
        self.errors == 0 && self.total.fixtures > 0 && self.total.mismatched == 0
    }
}

/// Collects candidate files under `paths`: every `.json` file below a directory (recursively,
/// sorted), and every path given explicitly as a file.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FixtureError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| ferr(format!("{}: {e}", p.display())))?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), FixtureError> {
    let rd = std::fs::read_dir(dir).map_err(|e| ferr(format!("{}: {e}", dir.display())))?;
    for entry in rd {
        let entry = entry.map_err(|e| ferr(format!("{}: {e}", dir.display())))?;
        let path = entry.path();
        let ft = entry
            .file_type()
            .map_err(|e| ferr(format!("{}: {e}", path.display())))?;
        if ft.is_dir() {
            walk(&path, out)?;
        } else if ft.is_file() && path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs every fixture under `paths`.
pub fn run(paths: &[PathBuf]) -> Result<Report, FixtureError> {
    let files = collect_files(paths)?;
    let mut results = Vec::with_capacity(files.len());
    for f in &files {
        results.push(run_file(f));
    }
    let mut suites: BTreeMap<String, Counts> = BTreeMap::new();
    let mut total = Counts::default();
    let (mut errors, mut skipped) = (0, 0);
    for r in &results {
        match r {
            FileResult::Decided(o) => {
                let c = suites.entry(o.suite.clone()).or_default();
                for c in [c, &mut total] {
                    c.fixtures += 1;
                    if o.matched {
                        c.matched += 1;
                    } else {
                        c.mismatched += 1;
                    }
                }
            }
            FileResult::Skipped { .. } => skipped += 1,
            FileResult::Error { .. } => errors += 1,
        }
    }
    Ok(Report {
        results,
        suites,
        total,
        errors,
        skipped,
    })
}

/// Reads and decides one file.
pub fn run_file(path: &Path) -> FileResult {
    let shown = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            return FileResult::Error {
                path: shown,
                error: format!("cannot read: {e}"),
            };
        }
    };
    match decide_bytes(path, &bytes) {
        Ok(Some(o)) => FileResult::Decided(o),
        Ok(None) => FileResult::Skipped {
            path: shown,
            why: "not a fixture (no expected.verifyResult)".into(),
        },
        Err(e) => FileResult::Error {
            path: shown,
            error: e.0,
        },
    }
}

/// The top-level members of a JSON object as raw slices, refusing duplicate names.
struct RawMembers(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for RawMembers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMembers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawMembers, A::Error> {
                let mut out: Vec<(String, Box<RawValue>)> = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    if out.iter().any(|(n, _)| *n == k) {
                        return Err(serde::de::Error::custom(format!(
                            "duplicate top-level member {k:?}"
                        )));
                    }
                    let v: Box<RawValue> = m.next_value()?;
                    out.push((k, v));
                }
                Ok(RawMembers(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl RawMembers {
    fn raw(&self, name: &str) -> Option<&RawValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| &**v)
    }

    /// A wrapper member, strictly parsed.
    fn strict(&self, name: &str) -> Result<Option<Value>, FixtureError> {
        self.raw(name)
            .map(|r| {
                strict_json::parse(r.get().as_bytes())
                    .map_err(|e| ferr(format!("fixture member {name}: {e}")))
            })
            .transpose()
    }
}

/// The payload member and suite of each fixture type.
fn payload_of(fixture_type: &str) -> Option<(&'static str, &'static str)> {
    Some(match fixture_type {
        "atx-credential" => ("atx", "atx"),
        "challengeResponse" => ("challengeResponse", "aip"),
        "trustScoreComposition" => ("trustScoreComposition", "aip"),
        "trustProof" => ("trustProof", "atp"),
        "sth" => ("signedTreeHead", "atp"),
        "inclusionProof" => ("inclusionProof", "atp"),
        "consistencyProof" => ("consistencyProof", "atp"),
        "revocationList" => ("revocationList", "atp"),
        "discovery" => ("discoveryResponse", "atp"),
        _ => return None,
    })
}

/// Decides one fixture file's bytes; `Ok(None)` when the document is not a fixture.
pub fn decide_bytes(path: &Path, bytes: &[u8]) -> Result<Option<FixtureOutcome>, FixtureError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let members = match <RawMembers as serde::Deserialize>::deserialize(&mut de) {
        Ok(m) => m,
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            // Valid JSON that is not an object (or has duplicate top-level members).
            if e.to_string().contains("duplicate top-level member") {
                return Err(ferr(format!("malformed fixture: {e}")));
            }
            return Ok(None);
        }
        Err(e) => return Err(ferr(format!("not valid JSON: {e}"))),
    };
    de.end()
        .map_err(|e| ferr(format!("not valid JSON: trailing data: {e}")))?;
    let Some(expected) = members.strict("expected")? else {
        return Ok(None);
    };
    let Some(result) = expected.get("verifyResult") else {
        return Ok(None);
    };
    let result = result
        .as_str()
        .ok_or_else(|| ferr("expected.verifyResult is not a string"))?
        .to_owned();
    if !["ACCEPT", "REJECT", "MEASURED", "UNSCORED"].contains(&result.as_str()) {
        return Err(ferr(format!(
            "expected.verifyResult {result:?} is not ACCEPT, REJECT, MEASURED or UNSCORED"
        )));
    }
    let category = opt_string(&expected, "rejectCategory", "expected")?;
    if category.is_some() && result != "REJECT" {
        return Err(ferr(
            "expected.rejectCategory is given for a non-REJECT verdict",
        ));
    }
    let reason_contains = opt_string(&expected, "reasonContains", "expected")?;
    let expected_verdict = Verdict { result, category };

    let fixture_type = match members.strict("fixtureType")? {
        Some(Value::String(t)) => t,
        Some(_) => return Err(ferr("fixtureType is not a string")),
        None if members.raw("atx").is_some() => "atx-credential".to_owned(),
        None => {
            return Err(ferr(
                "fixture has no fixtureType and no recognisable payload member",
            ));
        }
    };
    let (payload_name, suite) = payload_of(&fixture_type)
        .ok_or_else(|| ferr(format!("unsupported fixtureType {fixture_type:?}")))?;
    let payload = members
        .raw(payload_name)
        .ok_or_else(|| {
            ferr(format!(
                "{fixture_type} fixture has no {payload_name} member"
            ))
        })?
        .get()
        .as_bytes();
    let name = match members.strict("name")? {
        Some(Value::String(n)) => n,
        _ => path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let base = path.parent().unwrap_or(Path::new("."));
    if let Some(refs) = members.strict("keypairRefs")? {
        check_keypair_refs(&refs, base)?;
    }
    let state = members.strict("verifierState")?.unwrap_or(Value::Null);

    let mut notes = Vec::new();
    let (observed, reason) = match fixture_type.as_str() {
        "trustScoreComposition" => {
            let (v, r, n) = decide_composition(payload, &expected)?;
            notes.extend(n);
            (v, r)
        }
        "challengeResponse" => decide_challenge(payload, &state)?,
        _ => {
            let vs = VerifierState::read(&state, base, fixture_type == "atx-credential")?;
            decide_signed(&fixture_type, payload, &vs)?
        }
    };
    let mut matched = observed.result == expected_verdict.result
        && (expected_verdict.category.is_none() || observed.category == expected_verdict.category);
    if !notes.is_empty() {
        matched = false;
    }
    if observed.result != expected_verdict.result || !matched && notes.is_empty() {
        notes.push(format!("expected {expected_verdict}, observed {observed}"));
    }
    if let Some(rc) = reason_contains
        && observed.result == "REJECT"
        && !reason.to_lowercase().contains(&rc.to_lowercase())
    {
        notes.push(format!("note: reason does not contain {rc:?}"));
    }
    Ok(Some(FixtureOutcome {
        path: path.display().to_string(),
        name,
        suite: suite.to_owned(),
        fixture_type,
        expected: expected_verdict,
        observed,
        reason,
        matched,
        notes,
    }))
}

fn opt_string(v: &Value, key: &str, ctx: &str) -> Result<Option<String>, FixtureError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ferr(format!("{ctx}.{key} is not a string"))),
    }
}

fn verdict_of<T>(r: Result<T, Rejection>, ok: impl FnOnce(T) -> String) -> (Verdict, String) {
    match r {
        Ok(t) => (
            Verdict {
                result: "ACCEPT".into(),
                category: None,
            },
            ok(t),
        ),
        Err(rej) => (
            Verdict {
                result: "REJECT".into(),
                category: Some(rej.category.as_str().to_owned()),
            },
            rej.reason,
        ),
    }
}

/// What `verifierState` says, for the signed-document fixture types.
struct VerifierState {
    now: DateTime<Utc>,
    trusted: Vec<String>,
    keys: Vec<KeyEntry>,
    crl: Option<atx::Crl>,
}

impl VerifierState {
    fn read(state: &Value, base: &Path, allow_crl: bool) -> Result<Self, FixtureError> {
        let clock = state
            .get("clockRfc3339")
            .and_then(Value::as_str)
            .ok_or_else(|| ferr("verifierState.clockRfc3339 is missing"))?;
        let now =
            parse_timestamp(clock).map_err(|e| ferr(format!("verifierState.clockRfc3339: {e}")))?;
        let trusted = string_list(state, "trustedIssuers")?;
        let mut keys = Vec::new();
        if let Some(list) = state.get("publicKeys") {
            let list = list
                .as_array()
                .ok_or_else(|| ferr("verifierState.publicKeys is not an array"))?;
            for (i, k) in list.iter().enumerate() {
                keys.push(
                    resolve_key(k, base)
                        .map_err(|e| ferr(format!("verifierState.publicKeys[{i}]: {e}")))?,
                );
            }
        }
        let crl = match state.get("crl") {
            Some(c) if allow_crl && !c.is_null() => {
                Some(atx::Crl::from_value(c).map_err(|e| ferr(format!("verifierState.crl: {e}")))?)
            }
            _ => None,
        };
        Ok(VerifierState {
            now,
            trusted,
            keys,
            crl,
        })
    }
}

fn string_list(v: &Value, key: &str) -> Result<Vec<String>, FixtureError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ferr(format!("{key} has a non-string element")))
            })
            .collect(),
        Some(_) => Err(ferr(format!("{key} is not an array"))),
    }
}

/// Resolves a relative key-vector path against `base` and its ancestors.
fn find_vector(base: &Path, rel: &str) -> Result<Option<PathBuf>, FixtureError> {
    let p = Path::new(rel);
    if p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(ferr(format!(
            "key path {rel:?} must be relative without '..'"
        )));
    }
    let mut dir = Some(base);
    for _ in 0..KEY_PATH_SEARCH_DEPTH {
        let Some(d) = dir else { break };
        let candidate = d.join(p);
        if candidate.is_file() {
            return Ok(Some(candidate));
        }
        dir = d.parent();
    }
    Ok(None)
}

fn read_vector(path: &Path) -> Result<Value, FixtureError> {
    let bytes = std::fs::read(path).map_err(|e| ferr(format!("{}: {e}", path.display())))?;
    strict_json::parse(&bytes).map_err(|e| ferr(format!("{}: {e}", path.display())))
}

/// A `{keyId, algorithm, publicKeyHex?, path?}` entry → key material.
fn resolve_key(k: &Value, base: &Path) -> Result<KeyEntry, FixtureError> {
    let key_id = k
        .get("keyId")
        .and_then(Value::as_str)
        .ok_or_else(|| ferr("keyId is missing"))?;
    let alg_name = k
        .get("algorithm")
        .and_then(Value::as_str)
        .ok_or_else(|| ferr("algorithm is missing"))?;
    let alg = Algorithm::parse(alg_name)
        .ok_or_else(|| ferr(format!("unsupported algorithm {alg_name:?}")))?;
    let inline = k.get("publicKeyHex").and_then(Value::as_str);
    let from_file = match k.get("path").and_then(Value::as_str) {
        Some(rel) => match find_vector(base, rel)? {
            Some(p) => Some(
                read_vector(&p)?
                    .get("publicKeyHex")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| ferr(format!("{} has no publicKeyHex", p.display())))?,
            ),
            None => None,
        },
        None => None,
    };
    let hex_key = match (inline, from_file.as_deref()) {
        (Some(a), Some(b)) if !a.eq_ignore_ascii_case(b) => {
            return Err(ferr(format!(
                "inline publicKeyHex of {key_id} differs from its key file"
            )));
        }
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => {
            return Err(ferr(format!(
                "no publicKeyHex and no resolvable path for {key_id}"
            )));
        }
    };
    let key = KeyMaterial::from_hex(alg, hex_key).map_err(ferr)?;
    Ok(KeyEntry {
        key_id: key_id.to_owned(),
        key,
    })
}

/// Cross-checks `keypairRefs` against their key files (public key, and seed derivation).
fn check_keypair_refs(refs: &Value, base: &Path) -> Result<(), FixtureError> {
    let list = refs
        .as_array()
        .ok_or_else(|| ferr("keypairRefs is not an array"))?;
    for (i, r) in list.iter().enumerate() {
        let e = |m: String| ferr(format!("keypairRefs[{i}]: {m}"));
        let Some(rel) = r.get("path").and_then(Value::as_str) else {
            continue;
        };
        let Some(file) = find_vector(base, rel)? else {
            continue;
        };
        let v = read_vector(&file)?;
        let file_pk = v
            .get("publicKeyHex")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(pk) = r.get("publicKeyHex").and_then(Value::as_str)
            && !pk.eq_ignore_ascii_case(file_pk)
        {
            return Err(e(format!("publicKeyHex differs from {}", file.display())));
        }
        let alg = v
            .get("algorithm")
            .and_then(Value::as_str)
            .and_then(Algorithm::parse);
        if let (Some(seed_hex), Some(alg)) = (v.get("seedHex").and_then(Value::as_str), alg) {
            let seed: [u8; 32] = hex::decode(seed_hex)
                .ok()
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| e(format!("{} seedHex is not 32 bytes of hex", file.display())))?;
            let derived = match alg {
                Algorithm::Ed25519 => hex::encode(KeyPair::from_seed(&seed).public().to_bytes()),
                Algorithm::MlDsa65 => {
                    let sk = super::signatures::ml_dsa_65_from_seed(&seed);
                    hex::encode(ml_dsa::signature::Keypair::verifying_key(&sk).encode())
                }
            };
            if !derived.eq_ignore_ascii_case(file_pk) {
                return Err(e(format!(
                    "{} publicKeyHex does not derive from its seed",
                    file.display()
                )));
            }
        }
    }
    Ok(())
}

fn decide_signed(
    fixture_type: &str,
    payload: &[u8],
    vs: &VerifierState,
) -> Result<(Verdict, String), FixtureError> {
    let policy = SignaturePolicy::default();
    let actx = atp::VerifyContext {
        now: vs.now,
        trusted_issuers: &vs.trusted,
        keys: &vs.keys,
        policy,
    };
    Ok(match fixture_type {
        "atx-credential" => {
            let ctx = atx::VerifyContext {
                now: vs.now,
                trusted_issuers: &vs.trusted,
                keys: &vs.keys,
                crl: vs.crl.as_ref(),
                policy,
            };
            verdict_of(atx::verify_credential(payload, &ctx), |c| {
                format!(
                    "ATX {} credential for {} verified ({} key(s){})",
                    c.atc_version,
                    c.agent_id,
                    c.signatures.verified_key_ids.len(),
                    if c.signatures.post_quantum {
                        ", hybrid"
                    } else {
                        ""
                    }
                )
            })
        }
        "trustProof" => verdict_of(atp::verify_trust_proof(payload, &actx), |p| {
            format!("trust proof for {} verified", p.did)
        }),
        "sth" => verdict_of(atp::verify_sth_document(payload, &actx), |s| {
            format!("tree head of size {} verified", s.tree_size)
        }),
        "revocationList" => verdict_of(atp::parse_revocation_list(payload), |l| {
            format!("{} revocation(s) parsed", l.len())
        }),
        "discovery" => verdict_of(atp::verify_discovery(payload), |k| {
            format!("discovery document with {} key(s)", k.len())
        }),
        "inclusionProof" => verdict_of(atp::verify_inclusion_proof(payload, &actx), |()| {
            "audit path reproduces the signed root".to_owned()
        }),
        "consistencyProof" => verdict_of(atp::verify_consistency_proof(payload, &actx), |()| {
            "consistency path reproduces both signed roots".to_owned()
        }),
        other => {
            return Err(ferr(format!(
                "fixtureType {other:?} is recognised but not supported yet"
            )));
        }
    })
}

fn decide_composition(
    payload: &[u8],
    expected: &Value,
) -> Result<(Verdict, String, Vec<String>), FixtureError> {
    let v = strict_json::parse(payload).map_err(|e| ferr(format!("trustScoreComposition: {e}")))?;
    let factors: Vec<Factor> = serde_json::from_value(
        v.get("factors")
            .cloned()
            .ok_or_else(|| ferr("trustScoreComposition.factors is missing"))?,
    )
    .map_err(|e| ferr(format!("trustScoreComposition.factors: {e}")))?;
    let c = trust_composition::compose(&factors)
        .map_err(|e| ferr(format!("trustScoreComposition: {e}")))?;
    let result = match c.score_status {
        ScoreStatus::Measured => "MEASURED",
        ScoreStatus::Unscored => "UNSCORED",
    };
    let mut notes = Vec::new();
    if let Some(exp) = expected.get("composition") {
        let status = match c.score_status {
            ScoreStatus::Measured => "measured",
            ScoreStatus::Unscored => "unscored",
        };
        if let Some(s) = exp.get("scoreStatus").and_then(Value::as_str)
            && s != status
        {
            notes.push(format!("scoreStatus: expected {s}, computed {status}"));
        }
        if let Some(s) = exp.get("score") {
            match (s.as_f64(), c.score) {
                (None, None) if s.is_null() => {}
                (Some(e), Some(o)) if same_at_4(e, o) => {}
                (e, o) => notes.push(format!("score: expected {e:?}, computed {o:?}")),
            }
        }
        if let Some(w) = exp.get("includedWeight") {
            let e = w
                .as_f64()
                .ok_or_else(|| ferr("expected.composition.includedWeight is not a number"))?;
            if !same_at_4(e, c.included_weight) {
                notes.push(format!(
                    "includedWeight: expected {e}, computed {}",
                    c.included_weight
                ));
            }
        }
        if let Some(r) = exp.get("unscoredReason") {
            let e = r.as_str();
            if e != c.unscored_reason.as_deref() {
                notes.push(format!(
                    "unscoredReason: expected {e:?}, computed {:?}",
                    c.unscored_reason
                ));
            }
        }
    }
    let reason = format!(
        "includedWeight {:.4}, score {}",
        c.included_weight,
        c.score.map_or("null".to_owned(), |s| format!("{s:.4}"))
    );
    Ok((
        Verdict {
            result: result.into(),
            category: None,
        },
        reason,
        notes,
    ))
}

/// Equal when rounded to four decimals (the AIP suite's stated precision).
fn same_at_4(a: f64, b: f64) -> bool {
    (a * 1e4).round() == (b * 1e4).round()
}

fn decide_challenge(payload: &[u8], state: &Value) -> Result<(Verdict, String), FixtureError> {
    let clock = state
        .get("clockRfc3339")
        .and_then(Value::as_str)
        .ok_or_else(|| ferr("verifierState.clockRfc3339 is missing"))?;
    let now =
        parse_timestamp(clock).map_err(|e| ferr(format!("verifierState.clockRfc3339: {e}")))?;
    let trusted = string_list(state, "trustedIssuers")?;
    let seen = string_list(state, "seenNonces")?;
    let mut bindings: Vec<(String, PublicKey)> = Vec::new();
    if let Some(list) = state.get("agentBindings") {
        for (i, b) in list
            .as_array()
            .ok_or_else(|| ferr("verifierState.agentBindings is not an array"))?
            .iter()
            .enumerate()
        {
            let e = |m: &str| ferr(format!("verifierState.agentBindings[{i}]: {m}"));
            let did = b
                .get("agentDid")
                .and_then(Value::as_str)
                .ok_or_else(|| e("agentDid is missing"))?;
            if b.get("algorithm").and_then(Value::as_str) != Some("Ed25519") {
                return Err(e("algorithm is not Ed25519"));
            }
            let pk = b
                .get("publicKeyHex")
                .and_then(Value::as_str)
                .ok_or_else(|| e("publicKeyHex is missing"))?;
            let bytes = super::decode_hex_exact("publicKeyHex", pk, 32).map_err(|m| e(&m))?;
            let key = PublicKey::from_bytes(&bytes).map_err(|err| e(&err.to_string()))?;
            bindings.push((did.to_owned(), key));
        }
    }
    let malformed = |reason: String| {
        Ok((
            Verdict {
                result: "REJECT".into(),
                category: Some(aip::RejectCode::Malformed.as_str().to_owned()),
            },
            reason,
        ))
    };
    let v = match strict_json::parse(payload) {
        Ok(v) => v,
        Err(e) => {
            return malformed(format!(
                "challenge-response transcript is not strict JSON: {e}"
            ));
        }
    };
    let challenge: aip::Challenge = match v.get("challenge").cloned().map(serde_json::from_value) {
        Some(Ok(c)) => c,
        Some(Err(e)) => return malformed(format!("challenge: {e}")),
        None => return malformed("challenge is missing".into()),
    };
    let response: aip::Response = match v.get("response").cloned().map(serde_json::from_value) {
        Some(Ok(r)) => r,
        Some(Err(e)) => return malformed(format!("response: {e}")),
        None => return malformed("response is missing".into()),
    };
    // The keys bound to the challenged DID; if several, the one the response presents (if any).
    let bound: Vec<&PublicKey> = bindings
        .iter()
        .filter(|(d, _)| *d == challenge.agent_did)
        .map(|(_, k)| k)
        .collect();
    let presented = PublicKey::from_base64(&response.public_key).ok();
    let bound_key = bound
        .iter()
        .find(|k| Some(**k) == presented.as_ref())
        .or(bound.first())
        .map(|k| **k);
    let nonce_seen = |n: &str| seen.iter().any(|s| s == n);
    let ctx = aip::VerifyContext {
        now,
        trusted_issuers: &trusted,
        bound_key,
        nonce_seen: &nonce_seen,
    };
    Ok(match aip::verify_response(&challenge, &response, &ctx) {
        Ok(()) => (
            Verdict {
                result: "ACCEPT".into(),
                category: None,
            },
            format!("response of {} verified", challenge.agent_did),
        ),
        Err(r) => (
            Verdict {
                result: "REJECT".into(),
                category: Some(r.code.as_str().to_owned()),
            },
            r.reason,
        ),
    })
}

/// Maps a category wire string back to [`Category`] (for callers that print it).
pub fn category_from_str(s: &str) -> Option<Category> {
    serde_json::from_value(Value::String(s.to_owned())).ok()
}
