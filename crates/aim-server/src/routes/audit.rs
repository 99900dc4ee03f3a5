//! The organization's verifiable audit log: entries, server-side verification, signed
//! checkpoints and RFC 9162 proofs (`docs/server-audit.md`).
//!
//! Every handler authorizes before it parses its query string, so a caller without the role
//! always gets 403 (never a 400 that would reveal the route's parameters). Bad parameters are 400,
//! never 500.

use aim_core::audit::{ChainVerifier, ProblemKind};
use aim_store::{AuditRow, audit_chain};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::Uri;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, Error};
use crate::rbac::Action;
use crate::state::{AppState, ms_to_rfc3339};

/// Page size used by `/verify` when it reads the chain.
const VERIFY_PAGE: u32 = 1000;

fn query<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    Query::<T>::try_from_uri(uri)
        .map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {}", e.body_text())))
}

/// `?fromSeq=&limit=` (chain order, the default) or the legacy `?after=<id>&limit=` (id order).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EntriesQuery {
    after: Option<Uuid>,
    from_seq: Option<u64>,
    limit: Option<u32>,
}

/// One row as the API shows it: the eight members of its `aim_core::audit::Entry` (`seq`, `time`,
/// `eventType`, `actor`, `subject`, `details`, `prevHash`, `hash` — what a verifier hashes) plus
/// the row id and, for convenience, the `at`, `payload` and `clientAddr` columns.
fn entry_json(r: &AuditRow) -> Value {
    let payload = serde_json::from_str::<Value>(&r.payload).unwrap_or(Value::Null);
    json!({
        "id": r.id,
        "seq": r.seq,
        "time": ms_to_rfc3339(r.at),
        "eventType": r.event_type,
        "actor": r.actor,
        "subject": r.subject,
        "details": audit_chain::details(r.org_id, &payload, r.client_addr.as_deref()),
        "prevHash": r.prev_hash.as_ref().map(hex::encode),
        "hash": r.hash.as_ref().map(hex::encode),
        "at": ms_to_rfc3339(r.at),
        "payload": payload,
        "clientAddr": r.client_addr,
    })
}

/// `GET /api/v1/audit/entries` (managers, admins).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::AuditRead)?;
    let q: EntriesQuery = query(&uri)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1000").into());
    }
    if let Some(after) = q.after {
        if q.from_seq.is_some() {
            return Err(ApiError::bad_request("use either after or fromSeq").into());
        }
        let page = aim_store::PageRequest {
            after: Some(after),
            limit,
        };
        let rows = state.store.list_audit(caller.org_id(), page).await?;
        let next = (rows.len() >= page.clamped_limit() as usize)
            .then(|| rows.last().map(|r| r.id))
            .flatten();
        let items: Vec<Value> = rows.iter().map(entry_json).collect();
        return Ok(Json(
            json!({ "items": items, "nextAfter": next, "nextFromSeq": null }),
        ));
    }
    let from = q.from_seq.unwrap_or(0);
    let rows = state
        .store
        .list_audit_chain(caller.org_id(), from, limit)
        .await?;
    let full = rows.len() >= limit as usize;
    let next_seq = full
        .then(|| rows.last().and_then(|r| r.seq).map(|s| s + 1))
        .flatten();
    let next_after = full.then(|| rows.last().map(|r| r.id)).flatten();
    let items: Vec<Value> = rows.iter().map(entry_json).collect();
    Ok(Json(
        json!({ "items": items, "nextFromSeq": next_seq, "nextAfter": next_after }),
    ))
}

fn problem_json(seq: Option<u64>, kind: ProblemKind, message: String) -> Value {
    json!({ "seq": seq, "kind": kind, "message": message })
}

/// `GET /api/v1/audit/verify` (managers, admins): reads the whole chain in `seq` order and
/// recomputes every entry hash from the row's columns, the links, the Merkle root; then compares
/// with the chain head (truncation), the stored Merkle subtrees the proofs are served from, and
/// the newest signed checkpoint. Reports the first problem.
pub async fn verify(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, Error> {
    caller.authorize(Action::AuditVerify)?;
    let org = caller.org_id();
    let head = state.store.audit_head(org).await?;
    let latest = state.store.latest_checkpoint(org).await?;
    let cp: Option<aim_core::audit::Checkpoint> = latest
        .as_ref()
        .and_then(|c| serde_json::from_str(&c.body).ok());
    let mut v = ChainVerifier::new().strict(true);
    if let Some(cp) = &cp {
        v = v.remember_root_at(cp.tree_size);
    }
    let mut from = 0u64;
    'pages: loop {
        let rows = state.store.list_audit_chain(org, from, VERIFY_PAGE).await?;
        let n = rows.len();
        for r in &rows {
            let pushed = v.push_digest(audit_chain::digest_of_row(r), false);
            if pushed.is_err() {
                break 'pages;
            }
            from = r.seq.map_or(from, |s| s as u64 + 1);
        }
        if n < VERIFY_PAGE as usize {
            break;
        }
    }
    let mut problem = v
        .problem()
        .map(|p| problem_json(p.seq, p.kind, p.message.clone()));
    let summary = v.finish();
    if problem.is_none() && summary.size != head.size {
        problem = Some(problem_json(
            Some(summary.size),
            ProblemKind::Truncated,
            format!(
                "the chain head records {} entries but {} were found: entries from seq {} were removed",
                head.size, summary.size, summary.size
            ),
        ));
    }
    if problem.is_none() && summary.root != head.root {
        problem = Some(problem_json(
            None,
            ProblemKind::HistoryRewritten,
            "the entries do not hash to the root kept in the chain head".into(),
        ));
    }
    if problem.is_none() && summary.size > 0 {
        let stored = state.store.audit_root(org, summary.size).await?;
        if stored != summary.root {
            problem = Some(problem_json(
                None,
                ProblemKind::HistoryRewritten,
                "the stored Merkle subtrees (which proofs are built from) do not match the entries"
                    .into(),
            ));
        }
    }
    let mut checkpoint = Value::Null;
    if let Some(cp) = &cp {
        let key = state.org_signing_key(org).await?;
        let sig_ok = cp.verify(Some(&key.public)).is_ok();
        let root_ok = cp
            .root()
            .ok()
            .is_some_and(|r| summary.check_checkpoint(cp.tree_size, &r).is_ok());
        checkpoint =
            json!({ "treeSize": cp.tree_size, "signatureValid": sig_ok, "matchesLog": root_ok });
        if problem.is_none() && !sig_ok {
            problem = Some(problem_json(
                None,
                ProblemKind::CheckpointInvalid,
                "the newest stored checkpoint is not signed by the organization's log key".into(),
            ));
        }
        if problem.is_none() && !root_ok {
            problem = Some(problem_json(
                Some(cp.tree_size.min(summary.size)),
                ProblemKind::HistoryRewritten,
                format!(
                    "the first {} entries do not have the root of the newest signed checkpoint",
                    cp.tree_size
                ),
            ));
        }
    }
    Ok(Json(json!({
        "ok": problem.is_none(),
        "entries": summary.size,
        "headSize": head.size,
        "headHash": summary.head_hash,
        "rootHash": hex::encode(summary.root),
        "checkpoint": checkpoint,
        "problem": problem,
    })))
}

/// `GET /api/v1/audit/checkpoint` (managers, admins): a checkpoint covering the whole log now.
pub async fn checkpoint(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::AuditCheckpoint)?;
    let cp = state.audit_checkpoint(caller.org_id()).await?;
    Ok(Json(serde_json::to_value(cp).unwrap_or(Value::Null)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct InclusionQuery {
    index: u64,
    tree_size: u64,
}

/// `GET /api/v1/audit/proof/inclusion?index=&treeSize=` (managers, admins).
pub async fn inclusion(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::AuditProofInclusion)?;
    let q: InclusionQuery = query(&uri)?;
    if q.index >= q.tree_size {
        return Err(ApiError::bad_request("index must be smaller than treeSize").into());
    }
    let p = state
        .store
        .audit_inclusion(caller.org_id(), q.index, q.tree_size)
        .await?;
    Ok(Json(json!({
        "leafIndex": q.index,
        "treeSize": q.tree_size,
        "leafHash": hex::encode(p.leaf_hash),
        "auditPath": p.audit_path.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    from: u64,
    to: u64,
}

/// `GET /api/v1/audit/proof/consistency?from=&to=` (managers, admins).
pub async fn consistency(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::AuditProofConsistency)?;
    let q: ConsistencyQuery = query(&uri)?;
    if q.from > q.to {
        return Err(ApiError::bad_request("from must not be larger than to").into());
    }
    let proof = state
        .store
        .audit_consistency(caller.org_id(), q.from, q.to)
        .await?;
    Ok(Json(json!({
        "fromSize": q.from,
        "toSize": q.to,
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}
