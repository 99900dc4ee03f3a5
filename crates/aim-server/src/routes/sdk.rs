//! The aim-sdk 2.0.3 wire format (docs/COMPATIBILITY.md; the client's traffic is in
//! docs/sdk-wire.md). One engine, two wire formats: every route here authenticates the SDK's way
//! ([`crate::sdk_auth`]) and then calls the same decision path, store operations and audit
//! records as the native routes.
//!
//! Invariants:
//! - A server-generated private key exists only in this request's memory and its 201 answer: it is
//!   never stored, logged or audited (the audit record names `keyOrigin: server_generated`). An
//!   organization can turn the path off (`sdk.serverGeneratedKeys: false`); then only a
//!   client-supplied `publicKey` is accepted.
//! - Declaring a capability never grants it: `capabilities/register` and `capabilities` create a
//!   pending capability request. Only registration by a manager/admin API key in an organization
//!   whose `sdk.declaredCapabilities` is `grant` grants at registration (as AIM does), audited.
//! - A verification is decided by [`crate::routes::actions::decide_and_record`]; a denial is 403
//!   with the same body (the SDK reads 403 as a denial), a rate limit 429 with `Retry-After`.

use aim_core::identity::validate_name;
use aim_core::keys::{KeyPair, PublicKey, encode_base64};
use aim_core::pyjson::sdk_verification_message;
use aim_store::{
    ActionDecision, ActionResult, ActionStatus, Agent, CapabilityRequest, DecisionOp,
    DeclaredCapabilities, McpServerRow, RequestFilter, RequestStatus,
};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::auth::{Caller, authenticate_limited, client_addr};
use crate::error::{ApiError, Error};
use crate::rbac::Action;
use crate::routes::actions::{ActionAsk, Decision, decide_and_record, with_retry_after};
use crate::routes::agents::{Registration, create_registered, declared_grants, parse_public_key};
use crate::routes::capabilities::{MAX_REASON, parse_grant};
use crate::sdk_auth::{BodySignature, SdkCaller, body_signed, poll_signed};
use crate::state::{AppState, ms_to_rfc3339};

/// Header carrying the API key on the registration route.
pub const H_REGISTRATION_KEY: &str = "x-aim-api-key";
/// Longest free-text field kept from a registration profile.
const MAX_PROFILE_TEXT: usize = 1000;
/// Longest outcome detail kept from a result report.
const MAX_DETAIL: usize = 2000;

fn bad(msg: impl Into<String>) -> Error {
    ApiError::bad_request(msg).into()
}

fn body_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Error> {
    Ok(super::request_json(body)?)
}

fn short(field: &str, v: &Option<String>) -> Result<(), Error> {
    match v {
        Some(s) if s.chars().count() > MAX_PROFILE_TEXT => Err(bad(format!(
            "{field} must be at most {MAX_PROFILE_TEXT} characters"
        ))),
        _ => Ok(()),
    }
}

// ----- registration -------------------------------------------------------------------------

/// The registration body of aim-sdk 2.0.3 (API-key mode). Unknown fields are ignored: this is
/// another project's client, and a field this server does not use must not fail a registration.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterBody {
    name: String,
    display_name: Option<String>,
    description: Option<String>,
    agent_type: Option<String>,
    version: Option<String>,
    community_intelligence_opt_in: Option<bool>,
    metadata: Option<Map<String, Value>>,
    repository_url: Option<String>,
    documentation_url: Option<String>,
    organization_domain: Option<String>,
    talks_to: Option<Vec<String>>,
    capabilities: Option<Vec<String>>,
    tag_ids: Option<Vec<String>>,
    /// A client-generated key (base64 of 32 bytes): no private key is generated or returned, and
    /// the agent proves possession by the AIP challenge like a natively registered one.
    public_key: Option<String>,
}

/// The credential of the registration route: `X-AIM-API-Key` (what the SDK sends), else the
/// usual `X-API-Key` / `Authorization: Bearer`.
async fn registration_caller(
    state: &AppState,
    parts: &axum::http::request::Parts,
) -> Result<Caller, Error> {
    let mut headers: HeaderMap = parts.headers.clone();
    if let Some(v) = parts.headers.get(H_REGISTRATION_KEY).cloned() {
        headers.remove(header::AUTHORIZATION);
        headers.insert("x-api-key", v);
    }
    authenticate_limited(state, &headers, client_addr(parts)).await
}

/// The URL the SDK should keep using: the configured public URL, else the scheme and `Host` the
/// request came through (never the listen address, which may be `0.0.0.0`).
fn aim_url(state: &AppState, parts: &axum::http::request::Parts) -> Option<String> {
    if let Some(u) = &state.config.public_url {
        return Some(u.trim_end_matches('/').to_string());
    }
    let host = parts.headers.get(header::HOST)?.to_str().ok()?;
    let ops = &state.config.ops;
    let tls = ops.tls_self_signed || (ops.tls_cert.is_some() && ops.tls_key.is_some());
    let scheme = if tls { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

/// `POST /api/v1/public/agents/register` (API key with `agents.create`) → 201 with the agent and,
/// when the server generated the key pair, its private key (shown once).
pub async fn register(State(state): State<AppState>, req: Request) -> Result<Response, Error> {
    let (parts, body) = req.into_parts();
    let caller = registration_caller(&state, &parts).await?;
    caller.authorize(Action::SdkAgentsRegister)?;
    let body = Bytes::from_request(Request::from_parts(parts.clone(), body), &state)
        .await
        .map_err(|rej| ApiError::new(rej.status(), "bad_request", rej.body_text()))?;
    let b: RegisterBody = body_json(&body)?;
    validate_name(&b.name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    for (f, v) in [
        ("displayName", &b.display_name),
        ("description", &b.description),
        ("agentType", &b.agent_type),
        ("version", &b.version),
        ("repositoryUrl", &b.repository_url),
        ("documentationUrl", &b.documentation_url),
        ("organizationDomain", &b.organization_domain),
    ] {
        short(f, v)?;
    }
    let caps = declared_grants(b.capabilities.as_deref().unwrap_or_default())?;
    let org_id = caller.org_id();
    let settings = state.store.get_sdk_settings(org_id).await?;
    // The key: the client's, or generated here (kept in memory for this answer only).
    let (public, generated) = match &b.public_key {
        Some(pk) => (parse_public_key(pk)?, None),
        None if settings.server_generated_keys => {
            let kp = KeyPair::generate(&mut rand::rng());
            (kp.public(), Some(kp))
        }
        None => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "server_generated_keys_disabled",
                "this organization accepts only client-generated keys: send publicKey (base64 of \
                 the 32-byte Ed25519 public key) or register with `opena2a agent register`",
            )
            .into());
        }
    };
    let grant_now =
        settings.declared_capabilities == DeclaredCapabilities::Grant && caller.manages_all();
    let key_origin = if generated.is_some() {
        "server_generated"
    } else {
        "client"
    };
    let extra = Map::from_iter([
        ("via".to_string(), json!("aim-sdk")),
        ("keyOrigin".to_string(), json!(key_origin)),
        (
            "profile".to_string(),
            json!({
                "displayName": b.display_name,
                "description": b.description,
                "agentType": b.agent_type,
                "version": b.version,
                "communityIntelligenceOptIn": b.community_intelligence_opt_in,
                "talksTo": b.talks_to,
                "tagIds": b.tag_ids,
                "repositoryUrl": b.repository_url,
                "documentationUrl": b.documentation_url,
                "organizationDomain": b.organization_domain,
                "metadata": b.metadata,
            }),
        ),
    ]);
    let (agent, pending) = create_registered(
        &state,
        &caller,
        Registration {
            name: &b.name,
            key: public,
            declared: caps,
            grant_now,
            key_proven: generated.is_some(),
            extra,
        },
    )
    .await?;
    let score = crate::trust::decision_score(&state, &agent).await?;
    let mut out = crate::routes::agents::agent_json(&state, &agent);
    out["agentId"] = json!(agent.id);
    out["displayName"] = json!(b.display_name.as_deref().unwrap_or(&b.name));
    out["description"] = json!(b.description);
    out["agentType"] = json!(b.agent_type.as_deref().unwrap_or("ai_agent"));
    out["version"] = json!(b.version.as_deref().unwrap_or("1.0.0"));
    out["trustScore"] = json!(score);
    out["pendingCapabilities"] = json!(pending);
    out["keyOrigin"] = json!(key_origin);
    if let Some(u) = aim_url(&state, &parts) {
        out["aimUrl"] = json!(u);
    }
    if let Some(kp) = &generated {
        out["privateKey"] = json!(encode_base64(&kp.seed()[..]));
    }
    let mut resp = (StatusCode::CREATED, Json(out)).into_response();
    // The body holds a private key: no cache may keep it.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// `GET /api/v1/sdk-api/agents/{identifier}` (every role): an agent by id or by name, in the
/// shape the SDK's OAuth mode reads (`{agent, id, status, trustScore}`).
pub async fn get_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(identifier): Path<String>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::SdkAgentsRead)?;
    let org = caller.org_id();
    let agent = if aim_core::keys::is_agent_id(&identifier) {
        state.store.get_agent(org, &identifier).await?
    } else {
        state.store.get_agent_by_name(org, &identifier).await?
    }
    .ok_or_else(|| ApiError::not_found("agent"))?;
    let score = crate::trust::decision_score(&state, &agent).await?;
    let mut a = crate::routes::agents::agent_json(&state, &agent);
    a["trustScore"] = json!(score);
    Ok(Json(json!({
        "id": agent.id,
        "name": agent.name,
        "status": agent.status,
        "trustScore": score,
        "agent": a,
    })))
}

// ----- verifications ------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VerificationBody {
    agent_id: String,
    capability: String,
    resource: Option<String>,
    /// Kept as received: the signed message re-serializes it the way Python does, number tokens
    /// verbatim.
    context: Option<Box<RawValue>>,
    timestamp: String,
    signature: Option<String>,
    public_key: Option<String>,
}

/// The SDK's ISO timestamp (`2026-11-26T11:32:42.377813Z`, no offset but `Z`; an RFC 3339 offset
/// is accepted too) → Unix milliseconds.
fn sdk_timestamp_ms(ts: &str) -> Result<i64, Error> {
    let t = ts.trim();
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp_millis())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(t.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
                .map(|d| d.and_utc().timestamp_millis())
        })
        .map_err(|_| bad(format!("timestamp {t:?}: expected ISO 8601 UTC (…Z)")))
}

/// The aim-sdk answer for a decision: `{id, status, enforcementMode, denialReason?, …}`.
fn decision_json(d: &Decision) -> Value {
    let mut v = json!({
        "id": d.id,
        "agentId": d.agent_id,
        "capability": d.capability,
        "resource": if d.resource.is_empty() { Value::Null } else { json!(d.resource) },
        "status": d.status.as_str(),
        "enforcementMode": d.mode,
        "reason": d.reason,
        "reasonCodes": d.codes,
        "matchedPolicies": d.matched,
        "riskLevel": d.risk.as_str(),
        "trustScore": d.score,
        "alert": d.alert,
        "expiresAt": ms_to_rfc3339(d.expires_at),
    });
    if d.status == ActionStatus::Denied {
        v["denialReason"] = json!(d.reason);
    }
    v
}

/// `POST /api/v1/sdk-api/verifications` (body signature; no other credential): the agent asks to
/// act. 200 approved/pending, 403 denied, 429 rate-limited (`Retry-After`), 401 bad signature,
/// unknown agent, stale timestamp or replay.
pub async fn verify(State(state): State<AppState>, req: Request) -> Result<Response, Error> {
    let (parts, body) = req.into_parts();
    let body = Bytes::from_request(Request::from_parts(parts.clone(), body), &state)
        .await
        .map_err(|rej| ApiError::new(rej.status(), "bad_request", rej.body_text()))?;
    let b: VerificationBody = body_json(&body)?;
    let (Some(signature), Some(public_key)) = (b.signature.as_deref(), b.public_key.as_deref())
    else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "signature_required",
            "a verification must be signed by the agent (signature and publicKey); an API key \
             cannot act as an agent",
        )
        .into());
    };
    let empty = RawValue::from_string("{}".into()).map_err(|e| Error::Io(e.to_string()))?;
    let context_raw: &RawValue = b.context.as_deref().unwrap_or(&empty);
    let context: Map<String, Value> = serde_json::from_str(context_raw.get())
        .map_err(|_| bad("context must be a JSON object"))?;
    let message = sdk_verification_message(
        &b.capability,
        &b.agent_id,
        context_raw,
        b.resource.as_deref(),
        &b.timestamp,
    )
    .map_err(|e| bad(format!("context: {e}")))?;
    let timestamp_ms = sdk_timestamp_ms(&b.timestamp)?;
    let signed = body_signed(
        &state,
        &parts,
        body.clone(),
        BodySignature {
            agent_id: &b.agent_id,
            public_key,
            signature,
            message: &message,
            timestamp_ms,
        },
    )
    .await?;
    let ask = ActionAsk::parse(
        &b.capability,
        b.resource.as_deref().unwrap_or(""),
        false,
        context,
    )?;
    let d = decide_and_record(&state, signed, ask, "aim-sdk").await?;
    let v = decision_json(&d);
    Ok(match (d.rate_limited, d.status) {
        (Some(wait), _) => with_retry_after(StatusCode::TOO_MANY_REQUESTS, v, Some(wait)),
        (None, ActionStatus::Denied) => (StatusCode::FORBIDDEN, Json(v)).into_response(),
        (None, _) => Json(v).into_response(),
    })
}

/// The aim-sdk view of a stored decision at `now`: an expired approval request reads as
/// `denied` (the SDK would otherwise poll until its own timeout).
fn stored_json(a: &ActionDecision, mode: &str, now: i64) -> Value {
    let status = a.status_at(now);
    let (wire, denial) = match status {
        ActionStatus::Expired => ("denied", Some("the approval request timed out".to_string())),
        ActionStatus::Denied => (
            "denied",
            Some(match a.decided_by {
                Some(u) => format!("denied by user:{u}"),
                None => a.reason.clone(),
            }),
        ),
        s => (s.as_str(), None),
    };
    json!({
        "id": a.id,
        "agentId": a.agent_id,
        "capability": a.capability,
        "status": wire,
        "enforcementMode": mode,
        "reason": a.reason,
        "denialReason": denial,
        "approvedBy": if status == ActionStatus::Approved {
            a.decided_by.map(|u| json!(format!("user:{u}"))).unwrap_or(json!("policy"))
        } else {
            Value::Null
        },
        "expiresAt": ms_to_rfc3339(a.expires_at),
    })
}

/// `GET /api/v1/sdk-api/verifications/{id}` (`X-AIM-*` poll signature): the decision's state.
pub async fn poll(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<Value>, Error> {
    let (parts, _) = req.into_parts();
    let signed = poll_signed(&state, &parts, &id).await?;
    let action_id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("verification"))?;
    let agent = signed.agent.clone();
    let a = crate::routes::actions::own_action(&state, &agent, action_id, "verification").await?;
    signed
        .commit(
            &state,
            "agent.request.action_status",
            json!({ "actionId": action_id, "wire": "aim-sdk" }),
        )
        .await
        .map_err(crate::sdk_auth::replay_as_conflict)?;
    let org = state.authz.org(&*state.store, agent.org_id).await?;
    let mode = match org.mode {
        aim_policy::EnforcementMode::Strict => "strict",
        aim_policy::EnforcementMode::Monitoring => "monitoring",
    };
    Ok(Json(stored_json(&a, mode, state.now_ms())))
}

/// The two outcome-report bodies the SDK sends: `{result: success|failure, result_summary,
/// error_message, timestamp}` (`perform_action`) or `{success: bool, …}` (MCP integration).
#[derive(Deserialize)]
struct ResultBody {
    result: Option<String>,
    success: Option<bool>,
    result_summary: Option<String>,
    error_message: Option<String>,
}

/// `POST /api/v1/sdk-api/verifications/{id}/result`: the outcome of an approved action, once.
///
/// A fresh aim-sdk client sends this report with no credential at all. It is accepted only for
/// an approved decision, before the approval expires, once; the decision id (UUIDv7, 74 random
/// bits, only ever sent to the agent) is then the only credential, and the record says
/// `authenticated: false`. With `X-API-Key`/Bearer the caller must manage the agent.
pub async fn report_result(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<Value>, Error> {
    let (parts, body) = req.into_parts();
    let caller = if crate::auth::presented_credential(&parts.headers)?.is_some() {
        Some(authenticate_limited(&state, &parts.headers, client_addr(&parts)).await?)
    } else {
        None
    };
    let body = Bytes::from_request(Request::from_parts(parts.clone(), body), &state)
        .await
        .map_err(|rej| ApiError::new(rej.status(), "bad_request", rej.body_text()))?;
    let action_id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("verification"))?;
    let a = state
        .store
        .find_action(action_id)
        .await?
        .ok_or_else(|| ApiError::not_found("verification"))?;
    if let Some(c) = &caller {
        if c.org_id() != a.org_id {
            return Err(ApiError::not_found("verification").into());
        }
        c.authorize(Action::AgentsCreate)?;
        let agent = crate::routes::agents::load(&state, c, &a.agent_id).await?;
        crate::routes::agents::check_manages(c, &agent)?;
    }
    let b: ResultBody = body_json(&body)?;
    let result = match (b.result.as_deref(), b.success) {
        (Some("success"), _) | (None, Some(true)) => ActionResult::Success,
        (Some("failure"), _) | (None, Some(false)) => ActionResult::Failure,
        _ => {
            return Err(bad(
                "result must be \"success\" or \"failure\" (or success: true/false)",
            ));
        }
    };
    let now = state.now_ms();
    if a.status_at(now) != ActionStatus::Approved || now >= a.expires_at || a.result.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_reportable",
            "an outcome is accepted once, for an approved action, before its approval expires",
        )
        .into());
    }
    let detail = b
        .error_message
        .or(b.result_summary)
        .map(|d| d.chars().take(MAX_DETAIL).collect::<String>());
    let op = DecisionOp::ActionResult {
        org_id: a.org_id,
        action_id,
        agent_id: a.agent_id.clone(),
        result,
        detail,
        at: now,
    };
    let audit = state.audit(
        Some(a.org_id),
        "agent.action.result",
        caller
            .as_ref()
            .map_or_else(|| "unauthenticated".to_string(), Caller::actor),
        Some(format!("agent:{}", a.agent_id)),
        json!({
            "actionId": action_id,
            "capability": a.capability,
            "result": result.as_str(),
            "authenticated": caller.is_some(),
            "wire": "aim-sdk",
        }),
        client_addr(&parts),
    );
    if state.writer.commit_record(audit, op).await? {
        Ok(Json(
            json!({ "id": action_id, "result": result.as_str(), "recorded": true }),
        ))
    } else {
        Err(crate::routes::actions::already_reported())
    }
}

// ----- capabilities -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeclareBody {
    capability_type: Option<String>,
    description: Option<String>,
    risk_level: Option<String>,
    reason: Option<String>,
    metadata: Option<Value>,
}

impl DeclareBody {
    /// `capabilityType` as a grant (400 when missing or malformed).
    fn grant(&self) -> Result<aim_policy::Grant, ApiError> {
        parse_grant(
            self.capability_type
                .as_deref()
                .ok_or_else(|| ApiError::bad_request("capabilityType is required"))?,
        )
    }
}

fn sdk_request_json(r: &CapabilityRequest) -> Value {
    json!({
        "id": r.id,
        "agentId": r.agent_id,
        "capabilityType": r.capability,
        "reason": r.reason,
        "status": r.status,
        "requestedBy": r.requested_by,
        "requestedAt": ms_to_rfc3339(r.created_at),
        "decidedAt": r.decided_at.map(ms_to_rfc3339),
    })
}

impl SdkCaller {
    /// `requestedBy` of a capability request: the agent, or the user behind a session or key (so
    /// that separation of duties also binds that user's keys).
    fn requester(&self) -> String {
        match self {
            SdkCaller::Agent(s) => s.actor(),
            SdkCaller::User { caller, .. } => format!("user:{}", caller.user.id),
        }
    }
}

fn usable(agent: &Agent) -> Result<(), Error> {
    if agent.status == aim_store::AgentStatus::Revoked {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "agent_revoked",
            "the agent is revoked: its capabilities cannot change",
        )
        .into());
    }
    Ok(())
}

async fn pending_request_for(
    state: &AppState,
    agent: &Agent,
    capability: &str,
) -> Result<Option<CapabilityRequest>, Error> {
    Ok(state
        .store
        .list_capability_requests(
            agent.org_id,
            &RequestFilter {
                agent_id: Some(agent.id.clone()),
                status: Some(RequestStatus::Pending),
                before: None,
                limit: 500,
            },
        )
        .await?
        .into_iter()
        .find(|r| r.capability == capability))
}

/// Creates a pending capability request (`capability.requested`), or finds the one pending.
/// `Ok((request id, created))`.
async fn file_request(
    state: &AppState,
    sdk: SdkCaller,
    capability: String,
    reason: String,
    source: &str,
) -> Result<(Uuid, bool), Error> {
    let agent = sdk.agent().clone();
    let row = CapabilityRequest {
        id: Uuid::now_v7(),
        org_id: agent.org_id,
        agent_id: agent.id.clone(),
        capability: capability.clone(),
        reason,
        status: RequestStatus::Pending,
        requested_by: sdk.requester(),
        created_at: state.now_ms(),
        decided_by: None,
        decided_at: None,
        note: None,
    };
    let id = row.id;
    let payload = json!({
        "requestId": id, "capability": capability, "reason": row.reason,
        "wire": "aim-sdk", "source": source,
    });
    if sdk
        .commit_op(
            state,
            "capability.requested",
            payload,
            DecisionOp::CapabilityRequest(Box::new(row)),
        )
        .await?
    {
        return Ok((id, true));
    }
    let existing = pending_request_for(state, &agent, &capability)
        .await?
        .ok_or_else(|| {
            Error::Unavailable("capability request conflict without a pending request".into())
        })?;
    Ok((existing.id, false))
}

/// `POST /api/v1/sdk-api/agents/{id}/capabilities/register` and `POST …/capabilities` (the
/// agent declares a capability): `{status: "granted"}` when a grant already covers it, else a
/// pending capability request `{status: "pending", requestId}` — never a grant.
pub async fn declare_capability(
    State(state): State<AppState>,
    sdk: SdkCaller,
) -> Result<(StatusCode, Json<Value>), Error> {
    let b: DeclareBody = sdk.json()?;
    let g = b.grant()?;
    usable(sdk.agent())?;
    let text = g.to_string();
    if crate::routes::capabilities::covered(&sdk.agent().capabilities.0, &g) {
        sdk.record(
            &state,
            "agent.request.capability_declared",
            json!({ "capability": text, "granted": true }),
        )
        .await?;
        return Ok((
            StatusCode::OK,
            Json(json!({ "status": "granted", "capabilityType": text,
                         "message": "the agent already holds a grant covering this capability" })),
        ));
    }
    let description = b.description.unwrap_or_default();
    let mut reason = format!(
        "declared by the agent (aim-sdk){}",
        b.risk_level
            .as_deref()
            .map(|r| format!(", risk {r}"))
            .unwrap_or_default()
    );
    if !description.trim().is_empty() {
        reason.push_str(": ");
        reason.push_str(description.trim());
    }
    let reason: String = reason.chars().take(MAX_REASON).collect();
    let (id, created) = file_request(&state, sdk, text.clone(), reason, "declared").await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(json!({
            "status": "pending",
            "requestId": id,
            "capabilityType": text,
            "message": "declaring a capability does not grant it: a manager must approve the request",
        })),
    ))
}

/// `POST /api/v1/sdk-api/agents/{id}/capability-requests {capabilityType, reason, metadata?}` →
/// 201 pending request; 409 when already granted or already pending.
pub async fn request_capability(
    State(state): State<AppState>,
    sdk: SdkCaller,
) -> Result<(StatusCode, Json<Value>), Error> {
    let b: DeclareBody = sdk.json()?;
    let g = b.grant()?;
    let reason = b.reason.as_deref().map(str::trim).unwrap_or("");
    if reason.is_empty() {
        return Err(bad("reason is required (why the agent needs it)"));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(bad(format!(
            "reason must be at most {MAX_REASON} characters"
        )));
    }
    usable(sdk.agent())?;
    if crate::routes::capabilities::covered(&sdk.agent().capabilities.0, &g) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_granted",
            format!("the agent already holds a grant covering {g}"),
        )
        .into());
    }
    let _ = b.metadata;
    let agent = sdk.agent().clone();
    let (id, created) =
        file_request(&state, sdk, g.to_string(), reason.to_string(), "requested").await?;
    if !created {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "request_pending",
            format!("a request for {g} is already pending ({id})"),
        )
        .into());
    }
    let r = state
        .store
        .get_capability_request(agent.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("capability request"))?;
    Ok((StatusCode::CREATED, Json(sdk_request_json(&r))))
}

/// `GET /api/v1/sdk-api/agents/{id}/capability-requests` → `{requests}` (newest first).
pub async fn list_requests(
    State(state): State<AppState>,
    sdk: SdkCaller,
) -> Result<Json<Value>, Error> {
    let agent = sdk.agent().clone();
    let rows = state
        .store
        .list_capability_requests(
            agent.org_id,
            &RequestFilter {
                agent_id: Some(agent.id.clone()),
                status: None,
                before: None,
                limit: 500,
            },
        )
        .await?;
    sdk.record(&state, "agent.request.capability_requests", json!({}))
        .await?;
    Ok(Json(json!({
        "requests": rows.iter().map(sdk_request_json).collect::<Vec<_>>(),
    })))
}

/// `GET /api/v1/sdk-api/agents/{id}/capabilities` → the grants and pending requests.
pub async fn list_capabilities(
    State(state): State<AppState>,
    sdk: SdkCaller,
) -> Result<Json<Value>, Error> {
    let agent = sdk.agent().clone();
    sdk.record(&state, "agent.request.capabilities", json!({}))
        .await?;
    Ok(Json(json!({
        "agentId": agent.id,
        "capabilities": agent.capabilities.0.iter()
            .map(|c| json!({ "capabilityType": c, "status": "granted" }))
            .collect::<Vec<_>>(),
    })))
}

// ----- MCP servers --------------------------------------------------------------------------

/// The bodies the SDK posts to `…/mcp-servers`: `secure(mcp_servers=…)` and
/// `integrations.mcp.register_mcp_server` (by name). `register_mcp`'s `{mcp_server_ids}` links
/// existing servers by id and is refused with a clear 400.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct McpBody {
    name: Option<String>,
    url: Option<String>,
    description: Option<String>,
    version: Option<String>,
    capabilities: Option<Vec<String>>,
    #[serde(alias = "public_key")]
    public_key: Option<String>,
    #[serde(alias = "mcp_server_ids")]
    mcp_server_ids: Option<Vec<String>>,
}

fn mcp_json(s: &McpServerRow) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "pinned": s.pinned_hash.is_some(),
        "drift": s.drift_at.is_some(),
        "createdBy": s.created_by,
        "createdAt": ms_to_rfc3339(s.created_at),
    })
}

/// `POST /api/v1/sdk-api/agents/{id}/mcp-servers` → 201 (registered unpinned: a declaration, not
/// an attestation) or 409 `{existingId}`.
pub async fn register_mcp(
    State(state): State<AppState>,
    sdk: SdkCaller,
) -> Result<Response, Error> {
    let b: McpBody = sdk.json()?;
    if b.mcp_server_ids.is_some() {
        return Err(bad(
            "linking MCP servers by id (mcp_server_ids) is not supported; register by name",
        ));
    }
    let name = crate::routes::mcp::server_name(b.name.as_deref())?;
    for (f, v) in [
        ("url", &b.url),
        ("description", &b.description),
        ("version", &b.version),
    ] {
        short(f, v)?;
    }
    let key = b
        .public_key
        .as_deref()
        .filter(|k| !k.trim().is_empty())
        .map(PublicKey::from_base64)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("public_key: {e}")))?;
    let agent = sdk.agent().clone();
    let row = crate::routes::mcp::unpinned_row(
        agent.org_id,
        name.clone(),
        key.as_ref(),
        state.now_ms(),
        sdk.actor(),
    );
    let declared: Vec<String> = b
        .capabilities
        .unwrap_or_default()
        .into_iter()
        .take(500)
        .collect();
    let payload = json!({
        "mcpServerId": row.id, "name": name, "url": b.url, "version": b.version,
        "description": b.description, "declaredCapabilities": declared,
        "hasKey": row.public_key.is_some(), "agentId": agent.id, "wire": "aim-sdk",
    });
    let created = row.clone();
    if sdk
        .commit_op(
            &state,
            "mcp_server.registered",
            payload,
            DecisionOp::CreateMcpServer(Box::new(row)),
        )
        .await?
    {
        let mut v = mcp_json(&created);
        v["url"] = json!(b.url);
        v["status"] = json!("registered");
        return Ok((StatusCode::CREATED, Json(v)).into_response());
    }
    let existing = state
        .store
        .get_mcp_server_by_name(agent.org_id, &name)
        .await?;
    Ok((
        StatusCode::CONFLICT,
        Json(json!({
            "error": "conflict",
            "message": "an MCP server with this name is registered in the organization",
            "existingId": existing.map(|s| s.id),
        })),
    )
        .into_response())
}

/// `GET /api/v1/sdk-api/agents/{id}/mcp-servers` → `{mcpServers}` (the organization's).
pub async fn list_mcp(State(state): State<AppState>, sdk: SdkCaller) -> Result<Json<Value>, Error> {
    let org = sdk.agent().org_id;
    sdk.record(&state, "agent.request.mcp_servers", json!({}))
        .await?;
    let rows = state.store.list_mcp_servers(org).await?;
    Ok(Json(json!({
        "mcpServers": rows.iter().map(mcp_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByName {
    name: String,
}

/// `GET /api/v1/sdk-api/agents/{id}/mcp-servers/by-name?name=` → `{hasCachedCapabilities,
/// capabilities}`: the tool names of the server's pinned manifest (a human-verified reference),
/// none when it is unknown or unpinned.
pub async fn mcp_by_name(
    State(state): State<AppState>,
    crate::routes::ApiQuery(q): crate::routes::ApiQuery<ByName>,
    sdk: SdkCaller,
) -> Result<Json<Value>, Error> {
    let org = sdk.agent().org_id;
    sdk.record(
        &state,
        "agent.request.mcp_server_lookup",
        json!({ "name": q.name }),
    )
    .await?;
    let row = state.store.get_mcp_server_by_name(org, &q.name).await?;
    let tools: Vec<String> = row
        .as_ref()
        .and_then(|s| s.pinned_manifest.as_deref())
        .and_then(|m| serde_json::from_str::<aim_mcp::manifest::Manifest>(m).ok())
        .and_then(|m| m.tools)
        .map(|ts| ts.into_iter().map(|t| t.name).collect())
        .unwrap_or_default();
    Ok(Json(json!({
        "id": row.as_ref().map(|s| s.id),
        "name": q.name,
        "hasCachedCapabilities": !tools.is_empty(),
        "capabilities": tools,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_timestamps_parse_with_and_without_fraction() {
        assert_eq!(
            sdk_timestamp_ms("2026-11-26T11:32:42.377813Z").unwrap(),
            1_795_692_762_377
        );
        assert_eq!(
            sdk_timestamp_ms("2026-11-26T11:32:42Z").unwrap(),
            1_795_692_762_000
        );
        assert_eq!(
            sdk_timestamp_ms("2026-11-26T11:32:42.5+00:00").unwrap(),
            1_795_692_762_500
        );
        assert!(sdk_timestamp_ms("yesterday").is_err());
        assert!(sdk_timestamp_ms("2026-11-26").is_err());
    }
}
