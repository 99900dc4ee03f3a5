//! Agent trust reports and ATX credentials (`docs/credentials.md`).
//!
//! - `GET /api/v1/agents/{id}/trust`: the agent's trust score computed now from server evidence
//!   ([`crate::trust`]).
//! - `GET /api/v1/agents/{id}/trust/history?before=&limit=`: the agent's trust changes, newest
//!   first (keyset on the entry id).
//! - `GET /api/v1/agents/{id}/credential`: a fresh ATX v1.1 credential (RFC 8785 JCS signed
//!   bytes) for an ACTIVE, verified, scored agent, signed with the organization's log key.
//!
//! Invariant: a credential is returned only after its `credential.issued` entry (credential id
//! and SHA-256 of the returned bytes) was committed to the organization's audit chain; if that
//! append fails the request fails and no credential leaves the server.

use aim_core::keys::KeyPair;
use aim_core::standards::atx::{CredentialClaims, IssuerKeys, ScanSummary, issue_credential};
use aim_core::trust::TrustLevel;
use aim_store::{Agent, AgentStatus};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::Caller;
use crate::did;
use crate::error::{ApiError, Error};
use crate::rbac::Action;
use crate::routes::ApiQuery;
use crate::routes::agents::{check_manages, load};
use crate::state::{AppState, ms_to_rfc3339};
use crate::trust;

/// The issuer DID of an organization: the provider DID + `:orgs:<org id>`.
pub fn org_issuer_did(public_url: &str, org_id: Uuid) -> String {
    format!("{}:orgs:{org_id}", did::provider_did(public_url))
}

/// The ATX `trustLevel` (0–4) of a published band; `None` for unscored.
pub fn atx_level(level: TrustLevel) -> Option<u8> {
    match level {
        TrustLevel::Unscored => None,
        TrustLevel::Untrusted => Some(0),
        TrustLevel::Low => Some(1),
        TrustLevel::Medium => Some(2),
        TrustLevel::High => Some(3),
        TrustLevel::VeryHigh => Some(4),
    }
}

/// `GET /api/v1/agents/{id}/trust` → `{agentId, score, level, confidence, factors, computedAt}`.
pub async fn get_trust(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::AgentsTrust)?;
    let agent = load(&state, &caller, &id).await?;
    let (e, r) = trust::report(&state, &agent, &caller.actor()).await?;
    Ok(Json(trust::report_json(&agent.id, &r, e.now_ms)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    before: Option<Uuid>,
    limit: Option<u32>,
}

/// `GET /api/v1/agents/{id}/trust/history?before=&limit=` → `{items, nextBefore}`: trust
/// changes newest first; pass `nextBefore` as `before` for the next page. `limit` 1..=500
/// (default 100).
pub async fn get_trust_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::AgentsTrustHistory)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 500").into());
    }
    let agent = load(&state, &caller, &id).await?;
    let rows = state
        .store
        .list_trust_history(agent.org_id, &agent.id, q.before, limit)
        .await?;
    let next = (rows.len() >= limit as usize)
        .then(|| rows.last().map(|c| c.id))
        .flatten();
    let items: Vec<Value> = rows.iter().map(trust::change_json).collect();
    Ok(Json(json!({ "items": items, "nextBefore": next })))
}

fn conflict(code: &'static str, message: String) -> Error {
    ApiError::new(StatusCode::CONFLICT, code, message).into()
}

fn utc(ms: i64) -> Result<DateTime<Utc>, Error> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| Error::Crypto("clock out of range".into()))
}

/// `GET /api/v1/agents/{id}/credential` → the ATX v1.1 credential JSON.
pub async fn get_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    caller.authorize(Action::AgentsCredential)?;
    let agent: Agent = load(&state, &caller, &id).await?;
    check_manages(&caller, &agent)?;
    if agent.status != AgentStatus::Active {
        return Err(conflict(
            "agent_not_active",
            format!(
                "a credential is issued only for an active agent; this agent is {}",
                agent.status
            ),
        ));
    }
    if agent.verified_at.is_none() {
        return Err(conflict(
            "agent_not_verified",
            "the agent has never passed an AIP challenge".into(),
        ));
    }
    let (e, report) = trust::report(&state, &agent, &caller.actor()).await?;
    let (Some(score), Some(level)) = (report.score, atx_level(report.level)) else {
        return Err(conflict(
            "trust_unscored",
            format!(
                "the agent's trust is unscored (evidence covers {:.0}% of the factor weight); \
                 no credential is issued without a score",
                report.confidence * 100.0
            ),
        ));
    };
    let org = state
        .store
        .get_org(agent.org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    let key = state.org_signing_key(agent.org_id).await?;
    let public_url = state.public_url();
    let issuer = org_issuer_did(&public_url, agent.org_id);
    let key_id = format!("{issuer}#{}", key.key_id);
    let signer = KeyPair::from_seed(&key.signing.to_bytes());
    let issued_at = utc(e.now_ms)?;
    let ttl_ms = i64::try_from(state.config.credential_ttl_secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000);
    let expires_at = utc(e.now_ms.saturating_add(ttl_ms))?;
    let credential_id = Uuid::new_v4().to_string();
    let claims = CredentialClaims {
        id: credential_id.clone(),
        agent_id: agent.id.clone(),
        agent_did: did::agent_did(&public_url, &agent.id),
        publisher: org.name.clone(),
        publisher_did: Some(issuer.clone()),
        version: agent.key_version.to_string(),
        content_hash: hex::encode(Sha256::digest(&agent.public_key)),
        build_attestation: None,
        capabilities: agent.capabilities.0.clone(),
        behavioral_profile: None,
        scan_summary: ScanSummary::default(),
        declared_purpose: None,
        trust_score: score,
        trust_level: level,
        issued_at,
        expires_at,
        issuer_did: issuer.clone(),
        issuer_chain: Vec::new(),
        transparency_log_index: None,
    };
    let keys = IssuerKeys {
        ed25519: &signer,
        ed25519_key_id: &key_id,
        ml_dsa_65: None,
    };
    let credential =
        issue_credential(&claims, &keys).map_err(|err| Error::Crypto(err.to_string()))?;
    let bytes = serde_json::to_vec(&credential).map_err(|err| Error::Crypto(err.to_string()))?;
    let audit = state.audit(
        Some(agent.org_id),
        "credential.issued",
        caller.actor(),
        Some(format!("agent:{}", agent.id)),
        json!({
            "credentialId": credential_id,
            "sha256": hex::encode(Sha256::digest(&bytes)),
            "format": "atx-1.1",
            "issuerDid": issuer,
            "keyId": key_id,
            "trustScore": score,
            "trustLevel": level,
            "issuedAt": ms_to_rfc3339(e.now_ms),
            "expiresAt": ms_to_rfc3339(expires_at.timestamp_millis()),
        }),
        caller.client_addr.clone(),
    );
    state.store.append_audit(&audit).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}
