//! Capability grants and the capability-request queue (docs/agents.md, "Capabilities").
//!
//! Invariants:
//! - An agent's grant set is `agents.capabilities` (grammar of `aim_policy::Grant`); the action
//!   verification path reads it as is. It changes only through the store's grant methods, in one
//!   transaction with an audit record whose subject is `agent:<id>` (which makes the audit
//!   append invalidate the agent in every replica's cache).
//! - Only managers and admins grant, revoke, approve and deny. Separation of duties: a request
//!   cannot be approved by the agent's owner nor by the user who requested it (403
//!   `separation_of_duties`), also through that user's API keys.
//! - A revoked agent's grants never change (409 `agent_revoked`).
//! - Idempotence: granting a capability the agent already holds (same string) answers 200 with
//!   `changed: false` and writes nothing; revoking one it does not hold answers 404
//!   `not_granted`.

use aim_policy::{Capability, Grant, GrantSet};
use aim_store::{
    CapabilityRequest, DecisionOp, GrantChange, RequestDecision, RequestFilter, RequestStatus,
};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::agent_auth::{Committed, SignedRequest};
use crate::auth::Caller;
use crate::error::{ApiError, Error};
use crate::rbac::Action;
use crate::routes::agents::{load, optional_json};
use crate::routes::{ApiJson, ApiQuery, parse_id};
use crate::state::{AppState, ms_to_rfc3339};

/// Longest accepted request reason or decision note, in characters.
pub const MAX_REASON: usize = 1000;

/// Reason recorded on the requests created when a member registers an agent declaring
/// capabilities.
pub const REGISTRATION_REASON: &str = "declared at registration";

/// Parses a grant (`[domain/]namespace:action` or `namespace:*`), 400 `invalid_capability`.
pub fn parse_grant(s: &str) -> Result<Grant, ApiError> {
    Grant::parse(s).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_capability",
            format!("{e} (expected [domain/]namespace:action or namespace:*)"),
        )
    })
}

/// Whether `wanted` is already covered by `grants`: the same grant, or (for a capability) a
/// grant matching it such as `namespace:*`. Unreadable stored grants cover nothing.
pub(crate) fn covered(grants: &[String], wanted: &Grant) -> bool {
    let text = wanted.to_string();
    if grants.contains(&text) {
        return true;
    }
    if wanted.is_wildcard() {
        return false;
    }
    let Ok(cap) = Capability::parse(&text) else {
        return false;
    };
    let mut set = GrantSet::new();
    for g in grants.iter().filter_map(|g| Grant::parse(g).ok()) {
        set.insert(g);
    }
    set.is_granted(&cap)
}

fn revoked() -> Error {
    ApiError::new(
        StatusCode::CONFLICT,
        "agent_revoked",
        "the agent is revoked: its capabilities cannot change",
    )
    .into()
}

/// Public view of a capability request.
pub fn request_json(r: &CapabilityRequest) -> Value {
    json!({
        "id": r.id,
        "agentId": r.agent_id,
        "capability": r.capability,
        "reason": r.reason,
        "status": r.status,
        "requestedBy": r.requested_by,
        "createdAt": ms_to_rfc3339(r.created_at),
        "decidedBy": r.decided_by,
        "decidedAt": r.decided_at.map(ms_to_rfc3339),
        "note": r.note,
    })
}

async fn pending_of(
    state: &AppState,
    org_id: Uuid,
    agent_id: &str,
) -> Result<Vec<CapabilityRequest>, Error> {
    Ok(state
        .store
        .list_capability_requests(
            org_id,
            &RequestFilter {
                agent_id: Some(agent_id.to_string()),
                status: Some(RequestStatus::Pending),
                before: None,
                limit: 500,
            },
        )
        .await?)
}

/// `GET /api/v1/agents/{id}/capabilities` (every role, like the agent):
/// `{agentId, grants, pendingRequests}`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::AgentCapabilitiesRead)?;
    let agent = load(&state, &caller, &id).await?;
    let pending = pending_of(&state, caller.org_id(), &id).await?;
    Ok(Json(json!({
        "agentId": agent.id,
        "grants": agent.capabilities.0,
        "pendingRequests": pending.iter().map(request_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    capability: String,
}

/// `POST /api/v1/agents/{id}/capabilities {capability}` (managers, admins) → 200
/// `{agentId, grants, changed}`; `changed: false` when the exact grant was already held.
pub async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<GrantBody>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::AgentCapabilitiesGrant)?;
    let g = parse_grant(&req.capability)?.to_string();
    load(&state, &caller, &id).await?;
    let audit = state.audit(
        Some(caller.org_id()),
        "capability.granted",
        caller.actor(),
        Some(format!("agent:{id}")),
        json!({ "capability": g }),
        caller.client_addr.clone(),
    );
    let (agent, changed) = match state
        .store
        .grant_capability(caller.org_id(), &id, &g, state.now_ms(), &audit)
        .await?
    {
        GrantChange::Changed(a) => (a, true),
        GrantChange::Unchanged(a) => (a, false),
        GrantChange::NotFound => return Err(ApiError::not_found("agent").into()),
        GrantChange::AgentRevoked => return Err(revoked()),
    };
    Ok(Json(json!({
        "agentId": agent.id,
        "grants": agent.capabilities.0,
        "changed": changed,
    })))
}

/// `DELETE /api/v1/agents/{id}/capabilities/{capability}` (managers, admins; the capability
/// URL-encoded) → 200 `{agentId, grants, changed: true}`; 404 `not_granted` when not held.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, capability)): Path<(String, String)>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::AgentCapabilitiesRevoke)?;
    let g = parse_grant(&capability)?.to_string();
    load(&state, &caller, &id).await?;
    let audit = state.audit(
        Some(caller.org_id()),
        "capability.revoked",
        caller.actor(),
        Some(format!("agent:{id}")),
        json!({ "capability": g }),
        caller.client_addr.clone(),
    );
    match state
        .store
        .revoke_capability(caller.org_id(), &id, &g, state.now_ms(), &audit)
        .await?
    {
        GrantChange::Changed(a) => Ok(Json(json!({
            "agentId": a.id,
            "grants": a.capabilities.0,
            "changed": true,
        }))),
        GrantChange::Unchanged(_) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_granted",
            format!("the agent does not hold {g}"),
        )
        .into()),
        GrantChange::NotFound => Err(ApiError::not_found("agent").into()),
        GrantChange::AgentRevoked => Err(revoked()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    capability: String,
    reason: Option<String>,
}

fn check_text(field: &str, s: &str) -> Result<(), ApiError> {
    if s.chars().count() > MAX_REASON {
        return Err(ApiError::bad_request(format!(
            "{field} must be at most {MAX_REASON} characters"
        )));
    }
    Ok(())
}

/// `POST /api/v1/agents/{id}/capability-requests {capability, reason}` (signed by the agent) →
/// 201 `{id, status: "pending", capability}`. 409 `already_granted` when a held grant covers it,
/// 409 `request_pending` when the same capability already waits.
pub async fn request(
    State(state): State<AppState>,
    signed: SignedRequest,
) -> Result<(StatusCode, Json<Value>), Error> {
    let req: RequestBody = signed.json()?;
    let g = parse_grant(&req.capability)?;
    let reason = req.reason.as_deref().map(str::trim).unwrap_or("");
    if reason.is_empty() {
        return Err(ApiError::bad_request("reason is required (why the agent needs it)").into());
    }
    check_text("reason", reason)?;
    if covered(&signed.agent.capabilities.0, &g) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_granted",
            format!("the agent already holds a grant covering {g}"),
        )
        .into());
    }
    let agent = &signed.agent;
    let row = CapabilityRequest {
        id: Uuid::now_v7(),
        org_id: agent.org_id,
        agent_id: agent.id.clone(),
        capability: g.to_string(),
        reason: reason.to_string(),
        status: RequestStatus::Pending,
        requested_by: format!("agent:{}", agent.id),
        created_at: state.now_ms(),
        decided_by: None,
        decided_at: None,
        note: None,
    };
    let (id, capability) = (row.id, row.capability.clone());
    let payload = json!({ "requestId": id, "capability": capability, "reason": row.reason });
    match signed
        .commit_op(
            &state,
            "capability.requested",
            payload,
            DecisionOp::CapabilityRequest(Box::new(row)),
        )
        .await?
    {
        Committed::Applied(_) => Ok((
            StatusCode::CREATED,
            Json(json!({ "id": id, "status": "pending", "capability": capability })),
        )),
        Committed::Conflict(_) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "request_pending",
            format!("a request for {capability} is already pending"),
        )
        .into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestsQuery {
    status: Option<RequestStatus>,
    agent_id: Option<String>,
    before: Option<Uuid>,
    limit: Option<u32>,
}

/// `GET /api/v1/capability-requests?status=&agentId=&before=&limit=` (managers, admins): newest
/// first → `{items, nextBefore}`.
pub async fn list_requests(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RequestsQuery>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::CapabilityRequestsList)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let rows = state
        .store
        .list_capability_requests(
            caller.org_id(),
            &RequestFilter {
                agent_id: q.agent_id,
                status: q.status,
                before: q.before,
                limit,
            },
        )
        .await?;
    let next = if rows.len() >= limit as usize {
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Json(json!({
        "items": rows.iter().map(request_json).collect::<Vec<_>>(),
        "nextBefore": next,
    })))
}

/// `GET /api/v1/capability-requests/{id}` (managers, admins).
pub async fn get_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::CapabilityRequestsRead)?;
    let id = parse_id(&id)?;
    let r = state
        .store
        .get_capability_request(caller.org_id(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("capability request"))?;
    Ok(Json(request_json(&r)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DecideBody {
    note: Option<String>,
}

async fn decide(
    state: AppState,
    caller: Caller,
    id: String,
    body: Bytes,
    approve: bool,
) -> Result<Json<Value>, Error> {
    caller.authorize(if approve {
        Action::CapabilityRequestsApprove
    } else {
        Action::CapabilityRequestsDeny
    })?;
    let id = parse_id(&id)?;
    let req: DecideBody = optional_json(&body)?;
    if let Some(n) = &req.note {
        check_text("note", n)?;
    }
    let org = caller.org_id();
    let existing = state
        .store
        .get_capability_request(org, id)
        .await?
        .ok_or_else(|| ApiError::not_found("capability request"))?;
    if approve {
        let agent = state
            .store
            .get_agent(org, &existing.agent_id)
            .await?
            .ok_or_else(|| ApiError::not_found("agent"))?;
        let me = caller.user.id;
        if agent.owner_id == Some(me) || existing.requested_by == format!("user:{me}") {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "separation_of_duties",
                "a request cannot be approved by the agent's owner nor by its requester",
            )
            .into());
        }
    }
    let audit = state.audit(
        Some(org),
        if approve {
            "capability.request.approved"
        } else {
            "capability.request.denied"
        },
        caller.actor(),
        Some(format!("agent:{}", existing.agent_id)),
        json!({
            "requestId": id,
            "capability": existing.capability,
            "requestedBy": existing.requested_by,
            "note": req.note,
        }),
        caller.client_addr.clone(),
    );
    match state
        .store
        .decide_capability_request(
            org,
            id,
            approve,
            caller.user.id,
            req.note.as_deref(),
            state.now_ms(),
            &audit,
        )
        .await?
    {
        RequestDecision::Done(r, agent) => {
            let mut body = request_json(&r);
            body["grants"] = json!(agent.capabilities.0);
            Ok(Json(body))
        }
        RequestDecision::NotFound => Err(ApiError::not_found("capability request").into()),
        RequestDecision::NotPending(r) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_pending",
            format!("the request is already {}", r.status),
        )
        .into()),
        RequestDecision::AgentRevoked => Err(revoked()),
    }
}

/// `POST /api/v1/capability-requests/{id}/approve {note?}` (managers, admins; not the agent's
/// owner nor the requester): grants the capability → the request and the agent's `grants`.
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Error> {
    decide(state, caller, id, body, true).await
}

/// `POST /api/v1/capability-requests/{id}/deny {note?}` (managers, admins).
pub async fn deny(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Error> {
    decide(state, caller, id, body, false).await
}
