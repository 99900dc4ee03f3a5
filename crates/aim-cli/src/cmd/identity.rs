//! `opena2a identity …`: local agent identities (seed layout, see docs/FORMATS.md).

use std::path::PathBuf;

use aim_core::aip::{self, Challenge, ChallengeLedger, Response, VerifyContext};
use aim_core::identity::{Identity, Status};
use aim_core::keys::{PublicKey, decode_base64, encode_base64};
use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::ctx::{self, Ctx, Outcome};

#[derive(Debug, Subcommand)]
pub enum IdentityCmd {
    /// Create an identity with a fresh Ed25519 key pair, stored locally.
    Create {
        /// Unique local name (A-Z a-z 0-9 . _ -, at most 64).
        #[arg(long)]
        name: String,
        /// Declared capability (namespace:action); repeatable.
        #[arg(long = "capability", value_name = "CAP")]
        capabilities: Vec<String>,
    },
    /// List identities.
    List,
    /// Show one identity.
    Show { id_or_name: String },
    /// Sign data with an identity's private key; prints the base64 signature.
    Sign {
        #[command(flatten)]
        who: Who,
        #[command(flatten)]
        input: Input,
        /// Also record the signature in the audit log.
        #[arg(long)]
        audit: bool,
    },
    /// Verify an Ed25519 signature; prints VALID (exit 0) or INVALID (exit 1).
    Verify {
        /// Public key: base64 of the 32 raw bytes, or a file (PEM or base64).
        #[arg(long, value_name = "BASE64|PATH")]
        public_key: String,
        /// Base64 signature.
        #[arg(long)]
        signature: String,
        #[command(flatten)]
        input: Input,
    },
    /// Rotate to a new key; the old key endorses the new one and is retired.
    Rotate { id_or_name: String },
    /// Revoke an identity (final); its private key is destroyed.
    Revoke {
        id_or_name: String,
        /// Why (recorded in identity.json and the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Verify an identity end to end: key files, id derivation, permissions, audit chain.
    Trust { id_or_name: String },
    /// Export the private key (explicit request only).
    Export {
        id_or_name: String,
        /// PKCS#8 PEM, readable by OpenSSL (the only format).
        #[arg(long, required = true)]
        pkcs8: bool,
        /// Write to this file (mode 0600) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Issue an AIP challenge to a pinned peer (prints the challenge JSON).
    Challenge {
        /// The pinned peer's name.
        #[arg(long)]
        peer: String,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Answer a challenge addressed to one of your identities (prints the response JSON).
    Respond {
        /// Your identity's name or id.
        #[arg(long)]
        name: String,
        #[arg(long, value_name = "FILE")]
        challenge: PathBuf,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Check a peer's response to a challenge you issued: exit 0 accepted, 1 rejected.
    CheckResponse {
        #[arg(long, value_name = "FILE")]
        challenge: PathBuf,
        #[arg(long, value_name = "FILE")]
        response: PathBuf,
    },
}

/// Which identity: `--name NAME` or `--id ID`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Who {
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    id: Option<String>,
}

/// What bytes: `--data TEXT` or `--file PATH` (`-` for stdin).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Input {
    /// The UTF-8 bytes of TEXT.
    #[arg(long, value_name = "TEXT")]
    data: Option<String>,
    /// The raw bytes of a file (`-` for stdin).
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
}

impl Input {
    fn read(&self) -> anyhow::Result<Vec<u8>> {
        ctx::read_input(self.data.as_deref(), self.file.as_deref())
    }
}

pub fn run(ctx: &Ctx, cmd: IdentityCmd) -> anyhow::Result<Outcome> {
    let store = ctx.store();
    match cmd {
        IdentityCmd::Create { name, capabilities } => {
            let keyring = ctx.keyring();
            let id = store.create(&name, &capabilities, &keyring, ctx::now(), &mut rand::rng())?;
            let path = store.dir_of(&id.id);
            ctx.record(
                "identity.created",
                Some(&id.id),
                Some(&id.id),
                json!({"name": id.name, "publicKey": id.public_key, "keyId": id.current_key_id(),
                       "capabilities": id.capabilities, "sealedWith": if keyring.uses_passphrase() {"passphrase"} else {"keyfile"}}),
            )?;
            if ctx.json {
                ctx.print_json(&json!({
                    "agentId": id.id, "did": id.did, "name": id.name, "publicKey": id.public_key,
                    "keyId": id.current_key_id(), "path": path, "capabilities": id.capabilities,
                    "createdAt": id.created_at,
                }));
            } else {
                println!("Created identity {}", id.name);
                println!("  agent id:   {}", id.id);
                println!("  did:        {}", id.did);
                println!("  public key: {}", id.public_key);
                println!("  path:       {}", path.display());
            }
            Ok(Outcome::Success)
        }
        IdentityCmd::List => {
            let (all, broken) = store.list()?;
            for (p, e) in &broken {
                eprintln!("warning: skipping {}: {e}", p.display());
            }
            if ctx.json {
                ctx.print_json(&json!(all.iter().map(summary).collect::<Vec<_>>()));
            } else if all.is_empty() {
                println!("No identities. Create one with: opena2a identity create --name NAME");
            } else {
                println!("{:<24} {:<38} {:<8} CREATED", "NAME", "AGENT ID", "STATUS");
                for i in &all {
                    println!(
                        "{:<24} {:<38} {:<8} {}",
                        i.name,
                        i.id,
                        status(i),
                        i.created_at
                    );
                }
            }
            Ok(Outcome::Success)
        }
        IdentityCmd::Show { id_or_name } => {
            let id = store.find(&id_or_name)?;
            if ctx.json {
                let mut v = serde_json::to_value(&id)?;
                v["agentId"] = json!(id.id);
                v["path"] = json!(store.dir_of(&id.id));
                ctx.print_json(&v);
            } else {
                println!("name:         {}", id.name);
                println!("agent id:     {}", id.id);
                println!("did:          {}", id.did);
                println!("status:       {}", status(&id));
                println!("public key:   {}", id.public_key);
                println!("created:      {}", id.created_at);
                println!(
                    "capabilities: {}",
                    if id.capabilities.is_empty() {
                        "-".into()
                    } else {
                        id.capabilities.join(", ")
                    }
                );
                println!("keys:");
                for k in &id.key_history {
                    println!(
                        "  {}  {:?}  {}  since {}",
                        k.key_id, k.status, k.public_key, k.created_at
                    );
                }
                println!("path:         {}", store.dir_of(&id.id).display());
            }
            Ok(Outcome::Success)
        }
        IdentityCmd::Sign { who, input, audit } => {
            let key = who.name.or(who.id).unwrap_or_default();
            let id = store.find(&key)?;
            let data = input.read()?;
            let kp = store.load_keypair(&id, &ctx.keyring())?;
            let sig = encode_base64(&kp.sign(&data));
            if audit {
                ctx.record(
                    "signature.created",
                    Some(&id.id),
                    None,
                    json!({"keyId": id.current_key_id(), "sha256": hex::encode(Sha256::digest(&data)),
                           "bytes": data.len(), "signature": sig}),
                )?;
            }
            if ctx.json {
                ctx.print_json(
                    &json!({"signature": sig, "publicKey": id.public_key, "agentId": id.id,
                                       "keyId": id.current_key_id(), "algorithm": "Ed25519"}),
                );
            } else {
                println!("{sig}");
            }
            Ok(Outcome::Success)
        }
        IdentityCmd::Verify {
            public_key,
            signature,
            input,
        } => {
            let pk = read_public_key(&public_key)?;
            let sig = decode_base64("signature", &signature)?;
            let data = input.read()?;
            let valid = pk.verify(&data, &sig);
            if ctx.json {
                ctx.print_json(
                    &json!({"valid": valid, "publicKey": pk.to_base64(), "agentId": pk.agent_id()}),
                );
            } else {
                println!("{}", if valid { "VALID" } else { "INVALID" });
            }
            Ok(if valid {
                Outcome::Success
            } else {
                Outcome::Negative
            })
        }
        IdentityCmd::Rotate { id_or_name } => {
            let before = store.find(&id_or_name)?;
            let id = store.rotate(&id_or_name, &ctx.keyring(), ctx::now(), &mut rand::rng())?;
            ctx.record(
                "identity.rotated",
                Some(&id.id),
                Some(&id.id),
                json!({"previousKey": before.public_key, "newKey": id.public_key, "keyId": id.current_key_id()}),
            )?;
            if ctx.json {
                ctx.print_json(&json!({"agentId": id.id, "name": id.name, "publicKey": id.public_key,
                                       "previousPublicKey": before.public_key, "keyId": id.current_key_id()}));
            } else {
                println!("Rotated {} ({})", id.name, id.id);
                println!("  new key: {} ({})", id.public_key, id.current_key_id());
                println!("  retired: {}", before.public_key);
            }
            Ok(Outcome::Success)
        }
        IdentityCmd::Revoke { id_or_name, reason } => {
            let id = store.revoke(&id_or_name, reason.as_deref(), ctx::now())?;
            ctx.record(
                "identity.revoked",
                Some(&id.id),
                Some(&id.id),
                json!({"reason": reason, "publicKey": id.public_key}),
            )?;
            if ctx.json {
                ctx.print_json(&json!({"agentId": id.id, "name": id.name, "status": "revoked", "revokedAt": id.revoked_at}));
            } else {
                println!(
                    "Revoked {} ({}); its private key was destroyed.",
                    id.name, id.id
                );
            }
            Ok(Outcome::Success)
        }
        IdentityCmd::Trust { id_or_name } => trust(ctx, &id_or_name),
        IdentityCmd::Export {
            id_or_name,
            pkcs8: _,
            out,
        } => {
            let id = store.find(&id_or_name)?;
            let pem = store.export_pkcs8(&id, &ctx.keyring())?;
            ctx.record("identity.exported", Some(&id.id), Some(&id.id),
                json!({"format": "pkcs8", "keyId": id.current_key_id(), "to": out.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "stdout".into())}))?;
            ctx::write_output(out.as_deref(), &pem, aim_core::fsio::SECRET_FILE_MODE)?;
            if let Some(p) = out {
                eprintln!(
                    "Wrote the PKCS#8 private key of {} to {} (mode 0600). Keep it secret.",
                    id.name,
                    p.display()
                );
            }
            Ok(Outcome::Success)
        }
        IdentityCmd::Challenge { peer, out } => {
            let peer = aim_core::peer::PeerStore::new(store.core_dir()).get(&peer)?;
            let issuer = issuer_did(ctx)?;
            let now = ctx::now();
            let c = aip::issue_challenge(&peer.did, &issuer, now, &mut rand::rng());
            {
                let _lock = store.lock()?;
                ChallengeLedger::load(&ledger_path(ctx), now)?.record_issued(&c)?;
            }
            ctx.record("challenge.issued", None, Some(&peer.agent_id),
                json!({"peer": peer.name, "agentDid": c.agent_did, "nonce": c.nonce, "expiresAt": c.expires_at}))?;
            ctx::write_output(
                out.as_deref(),
                &(serde_json::to_string_pretty(&c)? + "\n"),
                aim_core::fsio::PUBLIC_FILE_MODE,
            )?;
            Ok(Outcome::Success)
        }
        IdentityCmd::Respond {
            name,
            challenge,
            out,
        } => {
            let id = store.find(&name)?;
            let c: Challenge = ctx::read_json_file("AIP challenge", &challenge)?;
            if c.agent_did != id.did {
                anyhow::bail!(
                    "the challenge is addressed to {}, not to {} ({}); refusing to sign it",
                    c.agent_did,
                    id.name,
                    id.did
                );
            }
            let kp = store.load_keypair(&id, &ctx.keyring())?;
            let r = aip::respond(&c, &kp, &id.current_key_id(), ctx::now());
            ctx.record(
                "challenge.answered",
                Some(&id.id),
                None,
                json!({"issuerDid": c.issuer_did, "nonce": c.nonce, "keyId": r.key_id}),
            )?;
            ctx::write_output(
                out.as_deref(),
                &(serde_json::to_string_pretty(&r)? + "\n"),
                aim_core::fsio::PUBLIC_FILE_MODE,
            )?;
            Ok(Outcome::Success)
        }
        IdentityCmd::CheckResponse {
            challenge,
            response,
        } => {
            let c: Challenge = ctx::read_json_file("AIP challenge", &challenge)?;
            let r: Response = ctx::read_json_file("AIP response", &response)?;
            check_response(ctx, &c, &r)
        }
    }
}

fn check_response(ctx: &Ctx, c: &Challenge, r: &Response) -> anyhow::Result<Outcome> {
    let store = ctx.store();
    let peers = aim_core::peer::PeerStore::new(store.core_dir());
    let peer = peers.by_did(&c.agent_did)?;
    let bound_key = match &peer {
        Some(p) => Some(p.key()?),
        None => None,
    };
    let issuer = issuer_did(ctx)?;
    let now = ctx::now();
    let _lock = store.lock()?;
    let mut ledger = ChallengeLedger::load(&ledger_path(ctx), now)?;
    let trusted = [issuer];
    let seen = |n: &str| ledger.was_used(n);
    let vctx = VerifyContext {
        now,
        trusted_issuers: &trusted,
        bound_key,
        nonce_seen: &seen,
    };
    let mut verdict = aip::verify_response(c, r, &vctx);
    if verdict.is_ok() && !ledger.was_issued(&c.nonce) {
        verdict = Err(aip::Rejection {
            code: aip::RejectCode::UntrustedIssuer,
            reason: "this challenge was not issued by this data root (or its record expired)"
                .into(),
        });
    }
    let subject = peer.as_ref().map(|p| p.agent_id.clone());
    match &verdict {
        Ok(()) => {
            let exp = aim_core::clock::parse_rfc3339(&c.expires_at)?;
            ledger.record_used(&c.nonce, exp)?;
            ctx.record(
                "challenge.verified",
                None,
                subject.as_deref(),
                json!({"agentDid": c.agent_did, "nonce": c.nonce, "keyId": r.key_id}),
            )?;
        }
        Err(rej) => {
            ctx.record("challenge.rejected", None, subject.as_deref(),
                json!({"agentDid": c.agent_did, "nonce": c.nonce, "code": rej.code, "reason": rej.reason}))?;
        }
    }
    if ctx.json {
        match &verdict {
            Ok(()) => ctx.print_json(&json!({"accepted": true, "agentDid": c.agent_did, "peer": peer.map(|p| p.name)})),
            Err(rej) => ctx.print_json(&json!({"accepted": false, "code": rej.code, "reason": rej.reason, "agentDid": c.agent_did})),
        }
    } else {
        match &verdict {
            Ok(()) => println!(
                "ACCEPTED: {} proved possession of its pinned key",
                peer.map(|p| p.name).unwrap_or_default()
            ),
            Err(rej) => println!("REJECTED {}: {}", rej.code, rej.reason),
        }
    }
    Ok(if verdict.is_ok() {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}

fn ledger_path(ctx: &Ctx) -> PathBuf {
    ctx.store().core_dir().join("aip-challenges.json")
}

/// The issuer DID of this data root: the `did:key` of its node key.
fn issuer_did(ctx: &Ctx) -> anyhow::Result<String> {
    Ok(ctx
        .store()
        .node_key(&ctx.keyring(), &mut rand::rng())?
        .public()
        .did_key())
}

/// Public key from `--public-key`: an existing file (PEM or base64 text), else the text itself.
pub fn read_public_key(arg: &str) -> anyhow::Result<PublicKey> {
    let p = std::path::Path::new(arg);
    if p.is_file() {
        let text = aim_core::fsio::read_text(p, 64 * 1024)?;
        return PublicKey::parse_any(&text)
            .with_context(|| format!("reading the public key in {arg}"));
    }
    PublicKey::parse_any(arg)
        .context("--public-key is neither an existing file nor a base64 public key")
}

fn status(i: &Identity) -> &'static str {
    match i.status {
        Status::Active => "active",
        Status::Revoked => "revoked",
    }
}

fn summary(i: &Identity) -> serde_json::Value {
    json!({"agentId": i.id, "name": i.name, "did": i.did, "publicKey": i.public_key,
           "status": status(i), "createdAt": i.created_at, "capabilities": i.capabilities})
}

fn trust(ctx: &Ctx, id_or_name: &str) -> anyhow::Result<Outcome> {
    let store = ctx.store();
    let id = store.find(id_or_name)?;
    let mut checks = store.check(&id, &ctx.keyring());
    let key_checks_ok = checks.iter().all(|c| c.ok);
    let key_check_failures = checks.iter().filter(|c| !c.ok).count() as u64;
    let audit = ctx.audit_file()?;
    let report = audit.verify(None, &mut |_, _| {})?;
    checks.push(aim_core::identity::CheckItem {
        check: "audit-chain",
        ok: report.ok,
        detail: match &report.problem {
            None => format!("{} entries, chain intact", report.entries),
            Some(p) => p.message.clone(),
        },
    });
    let ok = checks.iter().all(|c| c.ok) && id.status == Status::Active;
    // Entries that do not parse are skipped here; the chain check above already failed on them.
    let entries = audit.entries()?.filter_map(Result::ok);
    let evidence = aim_core::trust::standalone::evidence(
        &id,
        key_checks_ok,
        key_check_failures,
        entries,
        report.ok,
        ctx::now().timestamp_millis(),
    );
    let score = aim_core::trust::score(&evidence);
    if ctx.json {
        ctx.print_json(&json!({"agentId": id.id, "name": id.name, "status": status(&id), "verified": ok,
            "checks": checks, "score": score.score, "level": score.level, "confidence": score.confidence,
            "factors": score.factors, "composition": score.composition, "evidence": evidence}));
    } else {
        println!("{} ({}) — {}", id.name, id.id, status(&id));
        for c in &checks {
            println!(
                "  [{}] {:<16} {}",
                if c.ok { " ok " } else { "FAIL" },
                c.check,
                c.detail
            );
        }
        println!("{}", if ok { "VERIFIED" } else { "NOT VERIFIED" });
        println!();
        print!("{}", render_trust(&score));
    }
    Ok(if ok {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}

/// The trust breakdown as text: one 20-character bar per factor, then the score and level.
pub fn render_trust(r: &aim_core::trust::TrustReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for f in &r.factors {
        let (bar, value) = match f.value {
            Some(v) => {
                let filled = (v * 20.0).round().clamp(0.0, 20.0) as usize;
                (
                    format!("{}{}", "█".repeat(filled), "░".repeat(20 - filled)),
                    format!("{:>5.1}%", v * 100.0),
                )
            }
            None => ("·".repeat(20), "  n/a ".to_string()),
        };
        let _ = writeln!(
            out,
            "  {:<23} {:>2}  {bar} {value}  +{:>5.2}  {}",
            f.name, f.weight, f.contribution, f.explanation
        );
    }
    let _ = match r.score {
        Some(s) => writeln!(
            out,
            "Trust score: {s:.1} / 100 — {} (confidence {:.2})",
            r.level.as_str(),
            r.confidence
        ),
        None => writeln!(
            out,
            "Trust score: unscored — too little evidence ({:.0}% of the weight has data, 50% needed)",
            r.confidence * 100.0
        ),
    };
    out
}
