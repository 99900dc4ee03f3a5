//! `opena2a credential`: verify ATX agent credentials.
//!
//! Exit codes: 0 the credential verified, 1 it was rejected (the category and reason are
//! printed), 2 the inputs could not be read (missing file, malformed key list or CRL).

use std::path::PathBuf;

use aim_core::clock::{Clock, SystemClock};
use aim_core::standards::atx::{self, Crl};
use aim_core::standards::signatures::{Algorithm, KeyEntry, KeyMaterial, SignaturePolicy};
use aim_core::standards::{parse_timestamp, strict_json};
use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

use crate::ctx::{Ctx, Outcome};

#[derive(Debug, clap::Subcommand)]
pub enum CredentialCmd {
    /// Verify an ATX v1.0 / v1.1 credential file (strict parse, version, expiry, revocation,
    /// trusted issuer, signatures incl. hybrid ML-DSA-65).
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The credential JSON file.
    file: PathBuf,
    /// A trusted issuer DID (repeatable). Without one, every credential is UNTRUSTED_ISSUER.
    #[arg(long = "trusted-issuer", value_name = "DID")]
    trusted_issuers: Vec<String>,
    /// An issuer public key as KEYID=HEX (repeatable); the algorithm follows from the length
    /// (32 bytes Ed25519, 1952 bytes ML-DSA-65). KEYID is a DID URL (`did:...#key-1`).
    #[arg(long = "key", value_name = "KEYID=HEX")]
    keys: Vec<String>,
    /// A JSON file of keys: `[{keyId, algorithm, publicKeyHex}]`, or an object with such a
    /// `publicKeys` array (a fixture's verifierState works).
    #[arg(long = "keys", value_name = "FILE")]
    keys_file: Option<PathBuf>,
    /// A revocation list JSON file `{entries: [{agentId | agentDid | credentialId, ...}]}`.
    #[arg(long, value_name = "FILE")]
    crl: Option<PathBuf>,
    /// Verify as of this RFC 3339 time instead of now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// Require at least N distinct Ed25519 signers (threshold cosignature).
    #[arg(long, value_name = "N", default_value_t = 1)]
    threshold: usize,
}

pub fn run(ctx: &Ctx, cmd: CredentialCmd) -> anyhow::Result<Outcome> {
    match cmd {
        CredentialCmd::Verify(args) => verify(ctx, args),
    }
}

fn read_strict(path: &PathBuf, what: &str) -> anyhow::Result<Value> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    strict_json::parse(&bytes)
        .map_err(|e| anyhow!("{what} {} is not valid JSON: {e}", path.display()))
}

fn key_from_flag(spec: &str) -> anyhow::Result<KeyEntry> {
    let (kid, hex_key) = spec
        .rsplit_once('=')
        .ok_or_else(|| anyhow!("--key {spec:?} is not KEYID=HEX"))?;
    let alg = match hex_key.len() / 2 {
        32 => Algorithm::Ed25519,
        1952 => Algorithm::MlDsa65,
        n => bail!("--key {kid}: a {n}-byte key is neither Ed25519 (32) nor ML-DSA-65 (1952)"),
    };
    let key = KeyMaterial::from_hex(alg, hex_key).map_err(|e| anyhow!("--key {kid}: {e}"))?;
    Ok(KeyEntry {
        key_id: kid.to_owned(),
        key,
    })
}

fn keys_from_file(path: &PathBuf) -> anyhow::Result<Vec<KeyEntry>> {
    let v = read_strict(path, "key file")?;
    let list = match &v {
        Value::Array(a) => a,
        Value::Object(o) => o
            .get("publicKeys")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("key file {} has no publicKeys array", path.display()))?,
        _ => bail!(
            "key file {} is neither an array nor an object",
            path.display()
        ),
    };
    list.iter()
        .enumerate()
        .map(|(i, k)| {
            let field = |n: &str| {
                k.get(n)
                    .and_then(Value::as_str)
                    .ok_or_else(|| anyhow!("key file entry {i}: {n} is missing"))
            };
            let alg_name = field("algorithm")?;
            let alg = Algorithm::parse(alg_name)
                .ok_or_else(|| anyhow!("key file entry {i}: unsupported algorithm {alg_name:?}"))?;
            let key = KeyMaterial::from_hex(alg, field("publicKeyHex")?)
                .map_err(|e| anyhow!("key file entry {i}: {e}"))?;
            Ok(KeyEntry {
                key_id: field("keyId")?.to_owned(),
                key,
            })
        })
        .collect()
}

fn verify(ctx: &Ctx, args: VerifyArgs) -> anyhow::Result<Outcome> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read credential {}", args.file.display()))?;
    let mut keys = Vec::new();
    for k in &args.keys {
        keys.push(key_from_flag(k)?);
    }
    if let Some(f) = &args.keys_file {
        keys.extend(keys_from_file(f)?);
    }
    let crl = match &args.crl {
        Some(p) => Some(
            Crl::from_value(&read_strict(p, "CRL")?)
                .map_err(|e| anyhow!("CRL {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let now = match &args.at {
        Some(t) => parse_timestamp(t).map_err(|e| anyhow!("--at: {e}"))?,
        None => SystemClock.now(),
    };
    if args.threshold == 0 {
        bail!("--threshold must be at least 1");
    }
    let vctx = atx::VerifyContext {
        now,
        trusted_issuers: &args.trusted_issuers,
        keys: &keys,
        crl: crl.as_ref(),
        policy: SignaturePolicy {
            min_distinct_signers: args.threshold,
        },
    };
    match atx::verify_credential(&bytes, &vctx) {
        Ok(c) => {
            if ctx.json {
                ctx.print_json(&json!({"verifyResult": "ACCEPT", "credential": c}));
            } else {
                println!(
                    "ACCEPT: ATX {} credential {} for {} ({}), issued by {}, trust level {}, score {}, expires {}",
                    c.atc_version,
                    c.id.as_deref().unwrap_or("(no id)"),
                    c.agent_id,
                    c.agent_did,
                    c.issuer_did,
                    c.trust_level,
                    c.trust_score,
                    c.expires_at
                );
                println!(
                    "  signed by {}{}",
                    c.signatures.verified_key_ids.join(", "),
                    if c.signatures.post_quantum {
                        " (hybrid Ed25519 + ML-DSA-65)"
                    } else {
                        ""
                    }
                );
            }
            Ok(Outcome::Success)
        }
        Err(r) => {
            if ctx.json {
                ctx.print_json(&json!({
                    "verifyResult": "REJECT",
                    "rejectCategory": r.category,
                    "reason": r.reason,
                }));
            } else {
                println!("REJECT[{}]: {}", r.category, r.reason);
            }
            Ok(Outcome::Negative)
        }
    }
}
