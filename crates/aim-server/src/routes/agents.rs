//! Agents: registration (public key only), lifecycle, AIP challenge-response, key rotation, DID
//! documents, and the first agent-authenticated route (heartbeat). See `docs/agents.md`.

use aim_core::aip::{self, Challenge, RejectCode, Rejection, VerifyContext};
use aim_core::identity::validate_name;
use aim_core::keys::{PublicKey, agent_id_for, decode_base64, encode_base64, is_agent_id};
use aim_core::request_signing::rotation_proof_input;
use aim_store::{
    Agent, AgentStatus, Capabilities, CapabilityRequest, NewAgent, RequestStatus, StoredChallenge,
    Transition,
};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::agent_auth::{SignedRequest, SigningKey};
use crate::auth::Caller;
use crate::did;
use crate::error::{ApiError, Error};
use crate::rbac::Action;
use crate::routes::{ApiJson, ApiQuery};
use crate::state::{AppState, ms_to_rfc3339};

/// Public view of an agent.
pub fn agent_json(state: &AppState, a: &Agent) -> Value {
    let now = state.now_ms();
    json!({
        "id": a.id,
        "did": did::agent_did(&state.public_url(), &a.id),
        "name": a.name,
        "status": a.status,
        "publicKey": encode_base64(&a.public_key),
        "keyVersion": a.key_version,
        "previousKeyValidUntil": a.grace_key(now).and(a.previous_key_valid_until).map(ms_to_rfc3339),
        "capabilities": a.capabilities.0,
        "ownerId": a.owner_id,
        "createdAt": ms_to_rfc3339(a.created_at),
        "updatedAt": ms_to_rfc3339(a.updated_at),
        "verifiedAt": a.verified_at.map(ms_to_rfc3339),
        "revokedAt": a.revoked_at.map(ms_to_rfc3339),
    })
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if is_agent_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request("id is not an agent id (aim_…)"))
    }
}

/// Loads an agent of the caller's organization (404 otherwise).
pub(crate) async fn load(state: &AppState, caller: &Caller, id: &str) -> Result<Agent, Error> {
    check_id(id)?;
    Ok(state
        .store
        .get_agent(caller.org_id(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?)
}

/// Ownership rule: managers and admins manage every agent of the organization, members only the
/// agents they registered.
pub(crate) fn check_manages(caller: &Caller, agent: &Agent) -> Result<(), ApiError> {
    if caller.manages_all() || agent.owner_id == Some(caller.user.id) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "members manage only the agents they registered",
        ))
    }
}

/// Parses an optional JSON body (empty body → `T::default()`).
pub(crate) fn optional_json<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    super::request_json(body)
}

/// Most capabilities an agent may declare at registration.
pub const MAX_DECLARED: usize = 100;

/// A registration's `publicKey`: base64 of the 32 raw Ed25519 public-key bytes (400 otherwise).
pub(crate) fn parse_public_key(text: &str) -> Result<PublicKey, ApiError> {
    let key = decode_base64("public key", text)
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| {
            ApiError::bad_request("publicKey must be base64 of the 32 raw Ed25519 public-key bytes")
        })?;
    PublicKey::from_bytes(&key).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Declared capabilities as grants (grammar of `aim_policy::Grant`, 400 `invalid_capability`),
/// deduplicated, at most [`MAX_DECLARED`].
pub(crate) fn declared_grants(declared: &[String]) -> Result<Vec<String>, ApiError> {
    if declared.len() > MAX_DECLARED {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_DECLARED} capabilities"
        )));
    }
    let mut caps: Vec<String> = Vec::with_capacity(declared.len());
    for c in declared {
        let g = crate::routes::capabilities::parse_grant(c)?.to_string();
        if !caps.contains(&g) {
            caps.push(g);
        }
    }
    Ok(caps)
}

/// An agent registration, as both wire formats (native, aim-sdk) make it.
pub(crate) struct Registration<'a> {
    pub name: &'a str,
    pub key: PublicKey,
    /// Declared capabilities, already parsed by [`declared_grants`].
    pub declared: Vec<String>,
    /// Grant the declared capabilities now; otherwise each becomes a pending capability request
    /// by the caller's user (reason [`crate::routes::capabilities::REGISTRATION_REASON`]).
    pub grant_now: bool,
    /// See [`NewAgent::key_proven`].
    pub key_proven: bool,
    /// Added to the `agent.registered` payload.
    pub extra: serde_json::Map<String, Value>,
}

/// Creates the agent, its pending capability requests and its `agent.registered` record in one
/// transaction (409 when the key or the name is taken). Returns the agent and the capabilities
/// left pending.
pub(crate) async fn create_registered(
    state: &AppState,
    caller: &Caller,
    r: Registration<'_>,
) -> Result<(Agent, Vec<String>), Error> {
    let id = agent_id_for(&r.key.to_bytes());
    let now = state.now_ms();
    let (granted, pending) = if r.grant_now {
        (r.declared, Vec::new())
    } else {
        (Vec::new(), r.declared)
    };
    let requests = pending
        .iter()
        .map(|c| CapabilityRequest {
            id: uuid::Uuid::now_v7(),
            org_id: caller.org_id(),
            agent_id: id.clone(),
            capability: c.clone(),
            reason: crate::routes::capabilities::REGISTRATION_REASON.into(),
            status: RequestStatus::Pending,
            requested_by: format!("user:{}", caller.user.id),
            created_at: now,
            decided_by: None,
            decided_at: None,
            note: None,
        })
        .collect();
    let new = NewAgent {
        id: id.clone(),
        org_id: caller.org_id(),
        name: r.name.to_string(),
        owner_id: caller.user.id,
        capabilities: Capabilities(granted.clone()),
        public_key: r.key.to_bytes().to_vec(),
        created_at: now,
        key_proven: r.key_proven,
        pending_requests: requests,
    };
    let mut payload = serde_json::Map::from_iter([
        ("name".to_string(), json!(r.name)),
        (
            "publicKey".to_string(),
            json!(encode_base64(&new.public_key)),
        ),
        ("capabilities".to_string(), json!(granted)),
        ("pendingCapabilities".to_string(), json!(pending)),
    ]);
    payload.extend(r.extra);
    let audit = state.audit(
        Some(caller.org_id()),
        "agent.registered",
        caller.actor(),
        Some(format!("agent:{id}")),
        Value::Object(payload),
        caller.client_addr.clone(),
    );
    let agent = state.store.create_agent(&new, &audit).await.map_err(|e| match e {
        aim_store::Error::Conflict { .. } => Error::from(ApiError::conflict(
            "an agent with this public key (or this name in the organization) is already registered",
        )),
        other => other.into(),
    })?;
    Ok((agent, pending))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Register {
    name: String,
    /// Base64 of the 32 raw Ed25519 public-key bytes.
    public_key: String,
    #[serde(default)]
    capabilities: Vec<String>,
}

/// `POST /api/v1/agents {name, publicKey, capabilities?}` → 201 agent (status `pending`).
///
/// Declared capabilities (grammar of `aim_policy::Grant`) become grants when the caller is a
/// manager or an admin; a member's (or a member's API key's) become pending capability requests
/// (`requestedBy: user:<id>`, reason "declared at registration") created in the same transaction,
/// listed in `pendingCapabilities` and waiting for another manager's approval.
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<Register>,
) -> Result<(StatusCode, Json<Value>), Error> {
    caller.authorize(Action::AgentsCreate)?;
    validate_name(&req.name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let key = parse_public_key(&req.public_key)?;
    let grants = declared_grants(&req.capabilities)?;
    let (agent, pending) = create_registered(
        &state,
        &caller,
        Registration {
            name: &req.name,
            key,
            declared: grants,
            grant_now: caller.manages_all(),
            key_proven: false,
            extra: serde_json::Map::new(),
        },
    )
    .await?;
    let mut body = agent_json(&state, &agent);
    body["pendingCapabilities"] = json!(pending);
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    after: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/v1/agents?after=&limit=`: every agent of the organization (all roles read).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::AgentsList)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let agents = state
        .store
        .list_agents(caller.org_id(), q.after.as_deref(), limit)
        .await?;
    let next = if agents.len() >= limit as usize {
        agents.last().map(|a| a.id.clone())
    } else {
        None
    };
    let items: Vec<Value> = agents.iter().map(|a| agent_json(&state, a)).collect();
    Ok(Json(json!({ "items": items, "nextAfter": next })))
}

/// `GET /api/v1/agents/{id}` (with its key history).
pub async fn get_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::AgentsRead)?;
    let agent = load(&state, &caller, &id).await?;
    let keys = state.store.list_agent_keys(caller.org_id(), &id).await?;
    let mut body = agent_json(&state, &agent);
    body["keyHistory"] = keys
        .iter()
        .map(|k| {
            json!({
                "version": k.version,
                "publicKey": encode_base64(&k.public_key),
                "createdAt": ms_to_rfc3339(k.created_at),
                "retiredAt": k.retired_at.map(ms_to_rfc3339),
                "validUntil": k.valid_until.map(ms_to_rfc3339),
            })
        })
        .collect();
    Ok(Json(body))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    reason: Option<String>,
}

/// One lifecycle transition: who may do it, from which states, to which, recorded as what.
struct Move {
    action: Action,
    from: &'static [AgentStatus],
    to: AgentStatus,
    event: &'static str,
}

const SUSPEND: Move = Move {
    action: Action::AgentsSuspend,
    from: &[AgentStatus::Active],
    to: AgentStatus::Suspended,
    event: "agent.suspended",
};
const ACTIVATE: Move = Move {
    action: Action::AgentsActivate,
    from: &[AgentStatus::Suspended],
    to: AgentStatus::Active,
    event: "agent.activated",
};
const REVOKE: Move = Move {
    action: Action::AgentsRevoke,
    from: &[
        AgentStatus::Pending,
        AgentStatus::Active,
        AgentStatus::Suspended,
    ],
    to: AgentStatus::Revoked,
    event: "agent.revoked",
};

async fn transition(
    state: AppState,
    caller: Caller,
    id: String,
    body: Bytes,
    m: Move,
) -> Result<Json<Value>, Error> {
    let Move {
        action,
        from,
        to,
        event,
    } = m;
    caller.authorize(action)?;
    let req: Reason = optional_json(&body)?;
    if req.reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::bad_request("reason must be at most 500 characters").into());
    }
    let agent = load(&state, &caller, &id).await?;
    check_manages(&caller, &agent)?;
    let audit = state.audit(
        Some(caller.org_id()),
        event,
        caller.actor(),
        Some(format!("agent:{id}")),
        json!({ "from": agent.status, "to": to, "reason": req.reason }),
        caller.client_addr.clone(),
    );
    match state
        .store
        .transition_agent(caller.org_id(), &id, from, to, state.now_ms(), &audit)
        .await?
    {
        Transition::Done(a) => Ok(Json(agent_json(&state, &a))),
        Transition::NotFound => Err(ApiError::not_found("agent").into()),
        Transition::NotAllowed(current) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_transition",
            format!("an agent in status {current} cannot become {to}"),
        )
        .into()),
    }
}

/// `POST /api/v1/agents/{id}/suspend {reason?}`: active → suspended.
pub async fn suspend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Error> {
    transition(state, caller, id, body, SUSPEND).await
}

/// `POST /api/v1/agents/{id}/activate {reason?}`: suspended → active (managers and admins only;
/// a pending agent becomes active only by passing an AIP challenge).
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Error> {
    transition(state, caller, id, body, ACTIVATE).await
}

/// `POST /api/v1/agents/{id}/revoke {reason?}`: any non-revoked status → revoked (final).
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Error> {
    transition(state, caller, id, body, REVOKE).await
}

/// `POST /api/v1/agents/{id}/challenge` → the AIP challenge
/// `{challenge, agentDid, nonce, issuedAt, expiresAt, issuerDid}` (valid 300 s, single use).
pub async fn challenge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Challenge>, Error> {
    caller.authorize(Action::AgentsChallenge)?;
    let agent = load(&state, &caller, &id).await?;
    check_manages(&caller, &agent)?;
    if agent.status == AgentStatus::Revoked {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "agent_revoked",
            "the agent is revoked",
        )
        .into());
    }
    let url = state.public_url();
    let c = aip::issue_challenge(
        &did::agent_did(&url, &id),
        &did::provider_did(&url),
        state.clock.now(),
        &mut rand::rng(),
    );
    let expires_at = aim_core::clock::parse_rfc3339(&c.expires_at)
        .map_err(|e| Error::Crypto(e.to_string()))?
        .timestamp_millis();
    let body = serde_json::to_string(&c).map_err(|e| Error::Crypto(e.to_string()))?;
    state
        .store
        .insert_challenge(&StoredChallenge {
            nonce: c.nonce.clone(),
            org_id: caller.org_id(),
            agent_id: id,
            body,
            expires_at,
            used_at: None,
        })
        .await?;
    Ok(Json(c))
}

fn rejection_response(r: &Rejection) -> Response {
    let status = if r.code == RejectCode::Malformed {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::UNAUTHORIZED
    };
    (
        status,
        Json(json!({
            "verified": false,
            "error": "challenge_rejected",
            "code": r.code,
            "message": r.reason,
        })),
    )
        .into_response()
}

/// `POST /api/v1/agents/{id}/verify` with the AIP response. Checks, in order: shape, signature,
/// bound key, expiry, nonce replay, issuer (`aim_core::aip::verify_response`), then consumes the
/// challenge and moves a pending agent to active. 200 `{verified: true, agent}`; a rejection
/// answers 401 (400 for `MALFORMED`) `{verified: false, code, message}` with the AIP reason code.
/// Every result is recorded.
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(resp): ApiJson<aip::Response>,
) -> Result<Response, Error> {
    caller.authorize(Action::AgentsVerify)?;
    let agent = load(&state, &caller, &id).await?;
    check_manages(&caller, &agent)?;
    if agent.status == AgentStatus::Revoked {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "agent_revoked",
            "the agent is revoked",
        )
        .into());
    }
    let url = state.public_url();
    let issuers = vec![did::provider_did(&url)];
    let stored = state
        .store
        .get_challenge(&resp.nonce)
        .await?
        .filter(|c| c.org_id == caller.org_id() && c.agent_id == id);
    let now = state.clock.now();
    let verdict = match &stored {
        // A challenge this server never issued for this agent cannot have a trusted issuer.
        None => Err(Rejection {
            code: RejectCode::UntrustedIssuer,
            reason: "no challenge with this nonce was issued by this server for this agent".into(),
        }),
        Some(sc) => match serde_json::from_str::<Challenge>(&sc.body) {
            Err(e) => return Err(Error::Crypto(format!("stored challenge unreadable: {e}"))),
            Ok(issued) => {
                let used = sc.used_at.is_some();
                let seen = move |_: &str| used;
                let ctx = VerifyContext {
                    now,
                    trusted_issuers: &issuers,
                    bound_key: PublicKey::from_bytes(&agent.public_key).ok(),
                    nonce_seen: &seen,
                };
                aip::verify_response(&issued, &resp, &ctx)
            }
        },
    };
    let record = |event: &str, payload: Value| {
        state.audit(
            Some(caller.org_id()),
            event,
            caller.actor(),
            Some(format!("agent:{id}")),
            payload,
            caller.client_addr.clone(),
        )
    };
    let passed = match verdict {
        Err(r) => Err(r),
        Ok(()) => {
            let a = record(
                "agent.challenge.passed",
                json!({ "nonce": resp.nonce, "statusBefore": agent.status }),
            );
            state
                .store
                .accept_challenge(
                    caller.org_id(),
                    &id,
                    &resp.nonce,
                    now.timestamp_millis(),
                    &a,
                )
                .await?
                // Consumed by a concurrent request between the check and the write.
                .ok_or_else(|| Rejection {
                    code: RejectCode::NonceReplay,
                    reason: format!("nonce {} was already used", resp.nonce),
                })
        }
    };
    match passed {
        Ok(agent) => Ok(Json(json!({
            "verified": true,
            "agent": agent_json(&state, &agent),
        }))
        .into_response()),
        Err(r) => {
            let a = record(
                "agent.challenge.failed",
                json!({ "code": r.code, "reason": r.reason, "nonce": resp.nonce }),
            );
            state.store.append_audit(&a).await?;
            Ok(rejection_response(&r))
        }
    }
}

/// `POST /api/v1/agents/{id}/heartbeat` (signed agent request): proves the request pipeline end
/// to end and tells the agent what the server knows about it.
pub async fn heartbeat(
    State(state): State<AppState>,
    signed: SignedRequest,
) -> Result<Json<Value>, Error> {
    let caller = signed.commit(&state, "agent.heartbeat", json!({})).await?;
    let mut body = agent_json(&state, &caller.agent);
    body["signedWith"] = json!(match caller.key {
        SigningKey::Current => "current",
        SigningKey::Previous => "previous",
    });
    body["serverTime"] = json!(ms_to_rfc3339(state.now_ms()));
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateKey {
    /// Base64 of the new 32-byte public key.
    new_public_key: String,
    /// Base64 signature by the NEW key over
    /// `aim-key-rotation/v1|<agent id>|<current key b64>|<new key b64>|<X-AIM-Nonce>`.
    proof: String,
}

/// `POST /api/v1/agents/{id}/rotate-key {newPublicKey, proof}` (signed agent request, with the
/// CURRENT key): the request signature proves the old key, `proof` the new one. The old key stays
/// valid for signed requests during `agent_key_grace_secs`.
pub async fn rotate_key(
    State(state): State<AppState>,
    signed: SignedRequest,
) -> Result<Json<Value>, Error> {
    if signed.key != SigningKey::Current {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "current_key_required",
            "a key rotation must be signed with the current key",
        )
        .into());
    }
    let req: RotateKey = signed.json()?;
    let new_key = decode_base64("public key", &req.new_public_key)
        .ok()
        .filter(|b| b.len() == 32)
        .and_then(|b| PublicKey::from_bytes(&b).ok())
        .ok_or_else(|| {
            ApiError::bad_request("newPublicKey must be base64 of 32 raw Ed25519 public-key bytes")
        })?;
    let new_bytes = new_key.to_bytes().to_vec();
    if new_bytes == signed.agent.public_key
        || signed.agent.previous_key.as_deref() == Some(new_bytes.as_slice())
    {
        return Err(ApiError::bad_request(
            "newPublicKey must differ from the current and previous keys",
        )
        .into());
    }
    let proof = decode_base64("proof", &req.proof)
        .map_err(|_| ApiError::bad_request("proof must be base64 of a 64-byte signature"))?;
    let input = rotation_proof_input(
        &signed.agent.id,
        &signed.agent.public_key,
        &new_bytes,
        &signed.nonce,
    );
    if !new_key.verify(input.as_bytes(), &proof) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_proof",
            "proof does not verify under newPublicKey (see docs/agents.md, key rotation)",
        )
        .into());
    }
    let caller = signed
        .commit(
            &state,
            "agent.key.rotation_requested",
            json!({ "newPublicKey": req.new_public_key }),
        )
        .await?;
    let now = state.now_ms();
    let grace = i64::try_from(state.config.agent_key_grace_secs)
        .unwrap_or(i64::MAX / 2000)
        .saturating_mul(1000);
    let audit = state.audit(
        Some(caller.agent.org_id),
        "agent.key.rotated",
        format!("agent:{}", caller.agent.id),
        Some(format!("agent:{}", caller.agent.id)),
        json!({
            "oldPublicKey": encode_base64(&caller.agent.public_key),
            "newPublicKey": encode_base64(&new_bytes),
            "graceUntil": ms_to_rfc3339(now.saturating_add(grace)),
        }),
        None,
    );
    let rotated = state
        .store
        .rotate_agent_key(
            caller.agent.org_id,
            &caller.agent.id,
            &caller.agent.public_key,
            &new_bytes,
            now.saturating_add(grace),
            now,
            &audit,
        )
        .await
        .map_err(|e| match e {
            aim_store::Error::Conflict { .. } => {
                Error::from(ApiError::conflict("newPublicKey is another agent's key"))
            }
            other => other.into(),
        })?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "rotation_conflict",
                "the agent's key or status changed meanwhile; retry",
            )
        })?;
    Ok(Json(agent_json(&state, &rotated)))
}

/// `GET /agents/{id}/did.json` (public): the agent's DID document. Revoked agents answer 410.
pub async fn did_document(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    check_id(&id)?;
    let agent = state
        .store
        .find_agent(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    if agent.status == AgentStatus::Revoked {
        return Err(
            ApiError::new(StatusCode::GONE, "agent_revoked", "the agent is revoked").into(),
        );
    }
    let doc = did::agent_document(&state.public_url(), &agent, state.now_ms());
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/did+json")],
        Json(doc),
    )
        .into_response())
}

/// `GET /.well-known/aip` (public): what this provider offers and how to talk to it.
pub async fn well_known(State(state): State<AppState>) -> Json<Value> {
    let url = state.public_url();
    Json(json!({
        "issuerDid": did::provider_did(&url),
        "baseUrl": url,
        "agentDidTemplate": format!("{}:agents:{{agentId}}", did::provider_did(&url)),
        "didDocumentTemplate": format!("{url}/agents/{{agentId}}/did.json"),
        "challengeEndpoint": format!("{url}/api/v1/agents/{{agentId}}/challenge"),
        "verifyEndpoint": format!("{url}/api/v1/agents/{{agentId}}/verify"),
        "challengeTtlSeconds": aip::CHALLENGE_TTL_SECS,
        "algorithms": ["Ed25519"],
        "reasonCodes": [
            RejectCode::Malformed, RejectCode::SignatureInvalid, RejectCode::UntrustedKey,
            RejectCode::ChallengeExpired, RejectCode::NonceReplay, RejectCode::UntrustedIssuer
        ],
        "signedRequests": {
            "version": aim_core::request_signing::VERSION_LINE,
            "headers": [
                "X-AIM-Agent-Id", "X-AIM-Timestamp", "X-AIM-Nonce", "X-AIM-Signature"
            ],
            "timestampWindowSeconds": state.config.signed_request_window_secs,
        },
        "keyRotationGraceSeconds": state.config.agent_key_grace_secs,
    }))
}
