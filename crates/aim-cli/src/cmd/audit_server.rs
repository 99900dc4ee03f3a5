//! `opena2a audit verify|checkpoint --server URL`: the AIM server's verifiable audit log, checked
//! offline by this client (`docs/server-audit.md`).
//!
//! `verify` trusts nothing the server computes: it fetches a signed checkpoint, downloads every
//! entry page by page, recomputes each entry hash, the chain links and the RFC 9162 Merkle root
//! with `aim_core::audit`, and compares the root with the checkpoint's. With `--checkpoint FILE`
//! (a checkpoint saved earlier) it also requires the same log key and verifies an RFC 9162
//! consistency proof from the saved tree to the current one, and recomputes the saved root from
//! the downloaded entries: a server that rewrote or truncated history since is caught.
//!
//! Credentials: `--token` / `AIM_TOKEN` (access token) or `AIM_API_KEY` (API key, sent as
//! `X-API-Key`). Plain HTTP client for now (`reqwest`); the `aim-client` crate will replace it.

use std::path::PathBuf;

use aim_core::audit::checkpoint::Checkpoint;
use aim_core::audit::merkle::{self, Frontier, Hash};
use aim_core::audit::{ChainVerifier, Entry, ProblemKind};
use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};

use crate::ctx::{self, Ctx, Outcome};

/// Where and as whom to connect.
pub struct Remote {
    pub server: String,
    pub token: Option<String>,
}

struct Client {
    base: String,
    http: reqwest::Client,
    auth: (&'static str, String),
}

impl Client {
    fn new(r: &Remote) -> anyhow::Result<Client> {
        let auth = match r.token.clone().or_else(|| std::env::var("AIM_TOKEN").ok()) {
            Some(t) if !t.is_empty() => ("authorization", format!("Bearer {t}")),
            _ => match std::env::var("AIM_API_KEY") {
                Ok(k) if !k.is_empty() => ("x-api-key", k),
                _ => bail!("no credentials: pass --token, or set AIM_TOKEN or AIM_API_KEY"),
            },
        };
        Ok(Client {
            base: r.server.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            auth,
        })
    }

    async fn get(&self, path_and_query: &str) -> anyhow::Result<Value> {
        let url = format!("{}{}", self.base, path_and_query);
        let resp = self
            .http
            .get(&url)
            .header(self.auth.0, &self.auth.1)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .with_context(|| format!("{url}: answer is not JSON"))?;
        if !status.is_success() {
            bail!(
                "{url}: HTTP {status}: {}",
                body["message"].as_str().unwrap_or("")
            );
        }
        Ok(body)
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `opena2a audit checkpoint --server URL [--out FILE]`.
pub fn checkpoint(ctx: &Ctx, remote: &Remote, out: Option<PathBuf>) -> anyhow::Result<Outcome> {
    let client = Client::new(remote)?;
    let cp: Checkpoint = runtime()?.block_on(async {
        let v = client.get("/api/v1/audit/checkpoint").await?;
        serde_json::from_value(v).context("the server's checkpoint has an unexpected shape")
    })?;
    cp.verify(None)
        .map_err(|e| anyhow!("the server's checkpoint does not verify: {e}"))?;
    let text = serde_json::to_string_pretty(&cp)? + "\n";
    ctx::write_output(out.as_deref(), &text, aim_core::fsio::PUBLIC_FILE_MODE)?;
    if let Some(p) = &out
        && !ctx.json
    {
        eprintln!(
            "Wrote the server's checkpoint of {} entries (key {}) to {}; keep it where the server cannot change it.",
            cp.tree_size,
            cp.key_id,
            p.display()
        );
    }
    Ok(Outcome::Success)
}

/// A negative verdict.
struct Broken {
    seq: Option<u64>,
    kind: ProblemKind,
    message: String,
}

fn broken(seq: Option<u64>, kind: ProblemKind, message: impl Into<String>) -> Broken {
    Broken {
        seq,
        kind,
        message: message.into(),
    }
}

fn parse_entry(v: &Value) -> Result<Entry, String> {
    let obj = v.as_object().ok_or("entry is not an object")?;
    let mut e = serde_json::Map::new();
    for k in [
        "seq",
        "time",
        "eventType",
        "actor",
        "subject",
        "details",
        "prevHash",
        "hash",
    ] {
        e.insert(
            k.to_string(),
            obj.get(k).cloned().ok_or(format!("entry has no {k}"))?,
        );
    }
    serde_json::from_value(Value::Object(e)).map_err(|err| format!("not an audit entry: {err}"))
}

struct Report {
    entries: u64,
    root: Hash,
    checkpoint: Checkpoint,
}

async fn verify_remote(
    client: &Client,
    saved: Option<&Checkpoint>,
) -> anyhow::Result<Result<Report, Broken>> {
    let cp: Checkpoint = serde_json::from_value(client.get("/api/v1/audit/checkpoint").await?)
        .context("the server's checkpoint has an unexpected shape")?;
    let trusted = match saved {
        Some(s) => Some(
            s.verifying_key()
                .map_err(|e| anyhow!("saved checkpoint: {e}"))?,
        ),
        None => None,
    };
    if let Some(s) = saved {
        s.verify(None)
            .map_err(|e| anyhow!("the saved checkpoint does not verify: {e}"))?;
    }
    if let Err(e) = cp.verify(trusted.as_ref()) {
        return Ok(Err(broken(
            None,
            ProblemKind::CheckpointInvalid,
            format!(
                "the server's checkpoint does not verify against the saved checkpoint's log key: {e}"
            ),
        )));
    }
    let cp_root = cp.root().map_err(|e| anyhow!("{e}"))?;
    // Consistency proof first: cheap, and it is the server's own statement.
    if let Some(s) = saved {
        if s.tree_size > cp.tree_size {
            return Ok(Err(broken(
                Some(cp.tree_size),
                ProblemKind::Truncated,
                format!(
                    "the saved checkpoint covers {} entries but the server now signs only {}",
                    s.tree_size, cp.tree_size
                ),
            )));
        }
        let v = client
            .get(&format!(
                "/api/v1/audit/proof/consistency?from={}&to={}",
                s.tree_size, cp.tree_size
            ))
            .await?;
        let proof: Vec<Hash> = v["proof"]
            .as_array()
            .ok_or_else(|| anyhow!("consistency proof has no proof array"))?
            .iter()
            .map(|h| {
                h.as_str()
                    .and_then(|h| hex::decode(h).ok())
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| anyhow!("consistency proof element is not 32-byte hex"))
            })
            .collect::<anyhow::Result<_>>()?;
        let old_root = s.root().map_err(|e| anyhow!("{e}"))?;
        if !merkle::verify_consistency(s.tree_size, cp.tree_size, &old_root, &cp_root, &proof) {
            return Ok(Err(broken(
                None,
                ProblemKind::HistoryRewritten,
                format!(
                    "no valid consistency proof from the saved checkpoint ({} entries) to the current one ({}): the server rewrote history",
                    s.tree_size, cp.tree_size
                ),
            )));
        }
    }
    // Download everything and recompute.
    let mut verifier = ChainVerifier::new().strict(true);
    let mut frontier = Frontier::new();
    let watch: Vec<u64> = [Some(cp.tree_size), saved.map(|s| s.tree_size)]
        .into_iter()
        .flatten()
        .collect();
    let mut roots_at: Vec<(u64, Hash)> = watch
        .iter()
        .filter(|&&s| s == 0)
        .map(|&s| (s, merkle::EMPTY_ROOT))
        .collect();
    let mut from = 0u64;
    'pages: loop {
        let page = client
            .get(&format!("/api/v1/audit/entries?fromSeq={from}&limit=1000"))
            .await?;
        let items = page["items"]
            .as_array()
            .ok_or_else(|| anyhow!("entries page has no items"))?;
        for item in items {
            let pushed = match parse_entry(item) {
                Ok(e) => verifier.push_entry(&e).map(|_| e),
                Err(reason) => verifier
                    .push_digest(Err(reason), false)
                    .map(|_| unreachable!()),
            };
            let Ok(e) = pushed else { break 'pages };
            frontier.push(e.leaf_hash().map_err(|err| anyhow!("{err}"))?);
            if watch.contains(&frontier.size()) {
                roots_at.push((frontier.size(), frontier.root()));
            }
        }
        match page["nextFromSeq"].as_u64() {
            Some(n) if n > from => from = n,
            _ => break,
        }
    }
    if let Some(p) = verifier.problem() {
        return Ok(Err(broken(p.seq, p.kind, p.message.clone())));
    }
    let root_at = |size: u64| roots_at.iter().find(|(s, _)| *s == size).map(|(_, r)| *r);
    if frontier.size() < cp.tree_size {
        return Ok(Err(broken(
            Some(frontier.size()),
            ProblemKind::Truncated,
            format!(
                "the server signed {} entries but served {}",
                cp.tree_size,
                frontier.size()
            ),
        )));
    }
    if root_at(cp.tree_size) != Some(cp_root) {
        return Ok(Err(broken(
            None,
            ProblemKind::HistoryRewritten,
            format!(
                "the first {} entries served do not hash to the root the server signed",
                cp.tree_size
            ),
        )));
    }
    if let Some(s) = saved {
        let old_root = s.root().map_err(|e| anyhow!("{e}"))?;
        if root_at(s.tree_size) != Some(old_root) {
            return Ok(Err(broken(
                None,
                ProblemKind::HistoryRewritten,
                format!(
                    "the first {} entries served do not hash to the saved checkpoint's root",
                    s.tree_size
                ),
            )));
        }
    }
    Ok(Ok(Report {
        entries: frontier.size(),
        root: frontier.root(),
        checkpoint: cp,
    }))
}

/// `opena2a audit verify --server URL [--checkpoint FILE]`.
pub fn verify(ctx: &Ctx, remote: &Remote, saved: Option<PathBuf>) -> anyhow::Result<Outcome> {
    let saved: Option<Checkpoint> = match &saved {
        Some(p) => Some(ctx::read_json_file("audit checkpoint", p)?),
        None => None,
    };
    let client = Client::new(remote)?;
    let verdict = runtime()?.block_on(verify_remote(&client, saved.as_ref()))?;
    match verdict {
        Ok(r) => {
            if ctx.json {
                ctx.print_json(&json!({
                    "ok": true,
                    "entries": r.entries,
                    "rootHash": hex::encode(r.root),
                    "checkpoint": r.checkpoint,
                    "consistentWithSaved": saved.is_some(),
                }));
            } else {
                println!(
                    "OK: {} entries downloaded and recomputed, chain intact, Merkle root {}; checkpoint of {} entries signed by {} ({}){}",
                    r.entries,
                    hex::encode(r.root),
                    r.checkpoint.tree_size,
                    r.checkpoint.key_id,
                    r.checkpoint.public_key,
                    if saved.is_some() {
                        "; consistent with the saved checkpoint"
                    } else {
                        ""
                    }
                );
            }
            Ok(Outcome::Success)
        }
        Err(b) => {
            let kind = serde_json::to_value(b.kind)?;
            if ctx.json {
                ctx.print_json(&json!({
                    "ok": false,
                    "problem": { "seq": b.seq, "kind": kind, "message": b.message },
                }));
            } else {
                let at = b.seq.map(|s| format!(" at entry {s}")).unwrap_or_default();
                println!(
                    "BROKEN{at}: {}: {}",
                    kind.as_str().unwrap_or("?"),
                    b.message
                );
            }
            Ok(Outcome::Negative)
        }
    }
}
