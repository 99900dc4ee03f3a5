//! Action verification ("verify every action before execution"), human approvals, and outcome
//! reports. See docs/agents.md, "Action verification".
//!
//! Order of the decision (each step can only make it stricter, except the enforcement mode, which
//! relaxes a *policy* deny and nothing else):
//! 1. the signed request (signature, window, agent active — [`SignedRequest`]);
//! 2. the body (capability grammar, resource, context) — malformed → 400, nothing recorded;
//! 3. the per-agent-and-capability rate limit → `denied` + 429 (`RATE_LIMITED`);
//! 4. grants, then the organization's Cedar policies, then the enforcement mode
//!    ([`aim_policy::Engine::evaluate`]); an uncompilable policy set → `denied`;
//! 5. the trust threshold of the risk level (`TRUST_TOO_LOW`; not relaxed by monitoring);
//! 6. governance `rate_limit` obligations (`RATE_LIMITED`, 429).
//!
//! Invariants: the decision row, the nonce claim and the audit record are one transaction (the
//! group-committed write); the answer is sent only after it is durable; a pending decision can only
//! be approved before its deadline by a manager/admin who is not the agent's owner (and who is one
//! of the policy's approvers when it names any).

use aim_policy::{
    Capability, EnforcementMode, Grant, ObligationKind, Request as PolicyRequest, RequestContext,
    RiskLevel,
};
use aim_store::{
    ActionDecision, ActionFilter, ActionResult, ActionStatus, Agent, Change, DecisionOp,
    JsonStrings,
};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::agent_auth::{Committed, SignedRequest};
use crate::auth::Caller;
use crate::error::{ApiError, Error};
use crate::rbac::Action;
use crate::routes::{ApiQuery, parse_id};
use crate::state::{AppState, ms_to_rfc3339};

/// Largest accepted `context` object (serialized).
const MAX_CONTEXT: usize = 16 * 1024;
/// Longest resource string.
const MAX_RESOURCE: usize = 2048;
/// Longest outcome detail.
const MAX_DETAIL: usize = 2000;

/// Action words by risk level; a capability's action is classified by its highest-risk word
/// (split on `_`, `-`, `.`); an action with no known word is medium.
const RISK_WORDS: &[(RiskLevel, &[&str])] = &[
    (
        RiskLevel::Critical,
        &[
            "admin",
            "sudo",
            "root",
            "transfer",
            "payment",
            "pay",
            "impersonate",
            "grant",
        ],
    ),
    (
        RiskLevel::High,
        &[
            "delete", "drop", "exec", "execute", "run", "deploy", "shell", "kill", "destroy",
            "purge", "truncate", "secret", "secrets",
        ],
    ),
    (
        RiskLevel::Medium,
        &[
            "write", "create", "update", "send", "post", "put", "modify", "upload", "publish",
            "call", "invoke", "insert",
        ],
    ),
    (
        RiskLevel::Low,
        &[
            "read", "list", "get", "search", "query", "view", "describe", "fetch", "select",
        ],
    ),
];

/// The server's risk classification of a capability (see `RISK_WORDS`).
pub fn classify(cap: &Capability) -> RiskLevel {
    cap.action()
        .split(['_', '-', '.'])
        .filter_map(|w| {
            RISK_WORDS
                .iter()
                .find(|(_, ws)| ws.contains(&w))
                .map(|(l, _)| *l)
        })
        .max()
        .unwrap_or(RiskLevel::Medium)
}

fn parse_risk(s: &str) -> Result<RiskLevel, ApiError> {
    match s {
        "low" => Ok(RiskLevel::Low),
        "medium" => Ok(RiskLevel::Medium),
        "high" => Ok(RiskLevel::High),
        "critical" => Ok(RiskLevel::Critical),
        other => Err(ApiError::bad_request(format!(
            "context.riskLevel {other:?}: expected low, medium, high or critical"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VerifyBody {
    capability: String,
    resource: String,
    #[serde(default)]
    context: Map<String, Value>,
}

/// A decision as computed, before it is stored.
struct Outcome {
    status: ActionStatus,
    codes: Vec<String>,
    reason: String,
    matched: Vec<String>,
    approvers: Vec<String>,
    alert: bool,
    rate_limited: Option<u64>,
    obligations: Vec<Value>,
}

impl Outcome {
    fn deny(code: &str, reason: String) -> Outcome {
        Outcome {
            status: ActionStatus::Denied,
            codes: vec![code.into()],
            reason,
            matched: Vec::new(),
            approvers: Vec::new(),
            alert: false,
            rate_limited: None,
            obligations: Vec::new(),
        }
    }
}

/// Wire form of a stored decision at `now`.
pub fn action_json(a: &ActionDecision, now: i64) -> Value {
    json!({
        "id": a.id,
        "agentId": a.agent_id,
        "capability": a.capability,
        "resource": a.resource,
        "context": serde_json::from_str::<Value>(&a.context).unwrap_or(Value::Null),
        "riskLevel": a.risk_level,
        "status": a.status_at(now).as_str(),
        "reason": a.reason,
        "matchedPolicies": a.matched_policies.0,
        "approvers": a.approvers.0,
        "policyVersion": a.policy_version,
        "createdAt": ms_to_rfc3339(a.created_at),
        "expiresAt": ms_to_rfc3339(a.expires_at),
        "decidedBy": a.decided_by,
        "decidedAt": a.decided_at.map(ms_to_rfc3339),
        "result": a.result,
        "resultAt": a.result_at.map(ms_to_rfc3339),
    })
}

/// A validated action request (step 2): what the agent asks to do.
pub struct ActionAsk {
    pub capability: Capability,
    /// Trimmed; may be empty only on the aim-sdk route, whose `resource` is optional.
    pub resource: String,
    pub context: Map<String, Value>,
    /// `context` serialized (at most `MAX_CONTEXT` bytes), as stored with the decision.
    pub context_text: String,
}

impl ActionAsk {
    /// Validates the parts of a request (400 on any malformed part; nothing is recorded).
    pub fn parse(
        capability: &str,
        resource: &str,
        resource_required: bool,
        context: Map<String, Value>,
    ) -> Result<ActionAsk, ApiError> {
        let capability = Capability::parse(capability.trim())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let resource = resource.trim().to_string();
        if (resource_required && resource.is_empty()) || resource.len() > MAX_RESOURCE {
            return Err(ApiError::bad_request(format!(
                "resource must be {} to {MAX_RESOURCE} bytes",
                u8::from(resource_required)
            )));
        }
        let context_text = serde_json::to_string(&context)
            .map_err(|e| ApiError::bad_request(format!("context: {e}")))?;
        if context_text.len() > MAX_CONTEXT {
            return Err(ApiError::bad_request(format!(
                "context is larger than {MAX_CONTEXT} bytes"
            )));
        }
        Ok(ActionAsk {
            capability,
            resource,
            context,
            context_text,
        })
    }
}

/// A decision as recorded: what both wire formats answer from.
pub struct Decision {
    pub id: Uuid,
    pub agent_id: String,
    pub capability: String,
    pub resource: String,
    pub status: ActionStatus,
    pub reason: String,
    pub codes: Vec<String>,
    pub matched: Vec<String>,
    pub approvers: Vec<String>,
    pub obligations: Vec<Value>,
    pub policy_version: i64,
    /// `strict` or `monitoring`.
    pub mode: &'static str,
    pub alert: bool,
    pub risk: RiskLevel,
    pub score: Option<f64>,
    pub threshold: u32,
    pub expires_at: i64,
    /// Seconds to wait when the decision is a rate-limit denial (answered 429).
    pub rate_limited: Option<u64>,
}

/// The native answer body of `POST /api/v1/agents/{id}/actions/verify`, serialized straight
/// from the [`Decision`] (no intermediate JSON tree on the hot path). Members in this order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NativeAnswer<'a> {
    id: Uuid,
    agent_id: &'a str,
    capability: &'a str,
    resource: &'a str,
    status: &'static str,
    reason: &'a str,
    reason_codes: &'a [String],
    matched_policies: &'a [String],
    approvers: &'a [String],
    obligations: &'a [Value],
    policy_version: i64,
    enforcement_mode: &'static str,
    alert: bool,
    risk_level: &'static str,
    trust_score: Option<f64>,
    trust_threshold: u32,
    expires_at: String,
}

impl Decision {
    /// The native answer body of `POST /api/v1/agents/{id}/actions/verify`.
    pub fn native(&self) -> NativeAnswer<'_> {
        NativeAnswer {
            id: self.id,
            agent_id: &self.agent_id,
            capability: &self.capability,
            resource: &self.resource,
            status: self.status.as_str(),
            reason: &self.reason,
            reason_codes: &self.codes,
            matched_policies: &self.matched,
            approvers: &self.approvers,
            obligations: &self.obligations,
            policy_version: self.policy_version,
            enforcement_mode: self.mode,
            alert: self.alert,
            risk_level: self.risk.as_str(),
            trust_score: self.score,
            trust_threshold: self.threshold,
            expires_at: ms_to_rfc3339(self.expires_at),
        }
    }
}

/// Adds `Retry-After` to a rate-limited answer.
pub fn with_retry_after(status: StatusCode, body: impl Serialize, wait: Option<u64>) -> Response {
    let mut resp = (status, Json(body)).into_response();
    if let Some(wait) = wait
        && let Ok(v) = HeaderValue::from_str(&wait.max(1).to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// `POST /api/v1/agents/{id}/actions/verify` (agent-signed).
pub async fn verify(
    State(state): State<AppState>,
    signed: SignedRequest,
) -> Result<Response, Error> {
    let body: VerifyBody = signed.json()?;
    let ask = ActionAsk::parse(&body.capability, &body.resource, true, body.context)?;
    let d = decide_and_record(&state, signed, ask, "native").await?;
    Ok(match d.rate_limited {
        Some(wait) => with_retry_after(StatusCode::TOO_MANY_REQUESTS, d.native(), Some(wait)),
        None => Json(d.native()).into_response(),
    })
}

/// Steps 3–6 of the module documentation for an authenticated request, then the one durable
/// write (decision row, nonce claim, `agent.action.verified` record). `wire` (`native` or
/// `aim-sdk`) is recorded in the audit payload. The single decision path of both wire formats.
pub async fn decide_and_record(
    state: &AppState,
    signed: SignedRequest,
    ask: ActionAsk,
    wire: &str,
) -> Result<Decision, Error> {
    let ActionAsk {
        capability: cap,
        resource,
        context,
        context_text,
    } = ask;
    let declared = match context.get("riskLevel") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_risk(s)?),
        Some(_) => return Err(ApiError::bad_request("context.riskLevel must be a string").into()),
    };
    let mcp_server = match context.get("mcpServer") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::bad_request("context.mcpServer must be a string").into()),
    };
    // The agent may raise the risk level it declares, never lower it below the server's.
    let risk = declared.map_or(classify(&cap), |d| d.max(classify(&cap)));

    let now = state.now_ms();
    let agent = &signed.agent;
    let org = state.authz.org(&*state.store, agent.org_id).await?;
    let score = crate::trust::decision_score(state, agent).await?;
    let threshold = state.config.decisions.trust_thresholds[risk.rank() as usize];
    let cap_text = cap.to_string();

    let outcome = if let Err(wait) = state
        .authz
        .action_limiter
        .check(&(agent.id.clone(), cap_text.clone()))
    {
        let mut o = Outcome::deny(
            "RATE_LIMITED",
            format!("rate limit of {cap_text} for this agent exceeded"),
        );
        o.rate_limited = Some(wait.secs());
        o
    } else {
        decide(
            state, &org, agent, &cap, &resource, risk, mcp_server, &signed, score, threshold, now,
        )
    };

    let cfg = &state.config.decisions;
    let secs = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
    let expires_at = match outcome.status {
        ActionStatus::Approved => now.saturating_add(secs(cfg.approval_validity_secs)),
        ActionStatus::Pending => now.saturating_add(secs(cfg.approval_timeout_secs)),
        _ => now,
    };
    let id = Uuid::now_v7();
    let row = ActionDecision {
        id,
        org_id: agent.org_id,
        agent_id: agent.id.clone(),
        capability: cap_text.clone(),
        resource: resource.clone(),
        context: context_text,
        risk_level: risk.as_str().into(),
        status: outcome.status,
        reason: outcome.reason.clone(),
        matched_policies: JsonStrings(outcome.matched.clone()),
        approvers: JsonStrings(outcome.approvers.clone()),
        policy_version: org.version.to_string(),
        created_at: now,
        expires_at,
        decided_by: None,
        decided_at: None,
        result: None,
        result_at: None,
        result_detail: None,
    };
    let mode = match org.mode {
        EnforcementMode::Strict => "strict",
        EnforcementMode::Monitoring => "monitoring",
    };
    let payload = json!({
        "actionId": id,
        "capability": cap_text,
        "resource": resource,
        "riskLevel": risk.as_str(),
        "status": outcome.status.as_str(),
        "reasonCodes": outcome.codes,
        "matchedPolicies": outcome.matched,
        "policyVersion": org.version,
        "enforcementMode": mode,
        "alert": outcome.alert,
        "trustScore": score,
        "wire": wire,
    });
    if outcome.alert {
        tracing::warn!(agent = %agent.id, capability = %cap_text, "monitoring mode allowed a policy denial");
    }
    let agent_id = agent.id.clone();
    match signed
        .commit_op(
            state,
            "agent.action.verified",
            payload,
            DecisionOp::InsertAction(Box::new(row)),
        )
        .await?
    {
        Committed::Applied(_) => {}
        Committed::Conflict(_) => {
            return Err(Error::Unavailable(
                "decision insert reported a conflict".into(),
            ));
        }
    }
    Ok(Decision {
        id,
        agent_id,
        capability: cap_text,
        resource,
        status: outcome.status,
        reason: outcome.reason,
        codes: outcome.codes,
        matched: outcome.matched,
        approvers: outcome.approvers,
        obligations: outcome.obligations,
        policy_version: org.version,
        mode,
        alert: outcome.alert,
        risk,
        score,
        threshold,
        expires_at,
        rate_limited: outcome.rate_limited,
    })
}

/// Steps 4–6 of the module documentation.
#[allow(clippy::too_many_arguments)]
fn decide(
    state: &AppState,
    org: &crate::authz::OrgAuthz,
    agent: &Agent,
    cap: &Capability,
    resource: &str,
    risk: RiskLevel,
    mcp_server: Option<String>,
    signed: &SignedRequest,
    score: Option<f64>,
    threshold: u32,
    now: i64,
) -> Outcome {
    let engine = match &org.engine {
        Ok(e) => e,
        Err(msg) => {
            return Outcome::deny(
                "POLICY_UNAVAILABLE",
                format!("the organization's policy set cannot be evaluated ({msg}); denied"),
            );
        }
    };
    // Grants that no longer parse (stored by an older grammar) grant nothing.
    let grants: Vec<String> = agent
        .capabilities
        .0
        .iter()
        .filter(|g| Grant::parse(g).is_ok())
        .cloned()
        .collect();
    let req = PolicyRequest {
        agent: aim_policy::Agent {
            id: agent.id.clone(),
            name: agent.name.clone(),
            agent_type: "ai_agent".into(),
            trust_score: score.map_or(0, |s| s.clamp(0.0, 100.0).floor() as u8),
            tags: Vec::new(),
            owner: agent.owner_id.map(|o| o.to_string()).unwrap_or_default(),
            capabilities: Some(grants),
        },
        capability: cap.clone(),
        resource: resource.to_string(),
        context: RequestContext {
            time: chrono::DateTime::from_timestamp_millis(now).unwrap_or_default(),
            risk_level: risk,
            client_address: signed.client_addr.as_deref().and_then(|a| a.parse().ok()),
            mcp_server,
        },
    };
    let d = match engine.evaluate(&req) {
        Ok(d) => d,
        Err(e) => {
            return Outcome::deny(
                "EVALUATION_ERROR",
                format!("the request could not be evaluated ({e}); denied"),
            );
        }
    };
    let mut o = Outcome {
        status: match d.effect {
            aim_policy::Effect::Allow => ActionStatus::Approved,
            aim_policy::Effect::Deny => ActionStatus::Denied,
            aim_policy::Effect::RequireApproval => ActionStatus::Pending,
        },
        codes: d
            .reasons
            .iter()
            .filter_map(|r| serde_json::to_value(r.code).ok())
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        reason: d.summary(),
        matched: d.matched_policies.clone(),
        approvers: d.approvers.clone(),
        alert: d.alert,
        rate_limited: None,
        obligations: d
            .obligations
            .iter()
            .filter_map(|ob| serde_json::to_value(ob).ok())
            .collect(),
    };
    if o.status == ActionStatus::Denied {
        return o;
    }
    let effective = score.unwrap_or(0.0);
    if effective < f64::from(threshold) {
        o.status = ActionStatus::Denied;
        o.codes.push("TRUST_TOO_LOW".into());
        o.reason = format!(
            "trust score {} is below the {} threshold {threshold} of {} risk",
            score.map_or("unscored".to_string(), |s| format!("{s:.2}")),
            risk.as_str(),
            risk.as_str()
        );
        return o;
    }
    for ob in &d.obligations {
        if let ObligationKind::RateLimit {
            limit,
            period_seconds,
        } = ob.kind
            && let Err(wait) = state.authz.check_obligation(
                limit,
                period_seconds,
                (ob.policy.clone(), agent.id.clone(), cap.to_string()),
            )
        {
            o.status = ActionStatus::Denied;
            o.codes.push("RATE_LIMITED".into());
            o.reason = format!(
                "policy {} allows {limit} per {period_seconds} s for this agent and capability",
                ob.policy
            );
            o.rate_limited = Some(wait.secs());
            return o;
        }
    }
    o
}

/// Decision `id` of `agent` (404 `what` when there is none or it is another agent's).
pub(crate) async fn own_action(
    state: &AppState,
    agent: &Agent,
    id: Uuid,
    what: &str,
) -> Result<ActionDecision, Error> {
    Ok(state
        .store
        .get_action(agent.org_id, id)
        .await?
        .filter(|a| a.agent_id == agent.id)
        .ok_or_else(|| ApiError::not_found(what))?)
}

/// `GET /api/v1/agents/{id}/actions/{action_id}` (agent-signed): the agent polls a decision.
pub async fn agent_get(
    State(state): State<AppState>,
    Path((_, action_id)): Path<(String, String)>,
    signed: SignedRequest,
) -> Result<Json<Value>, Error> {
    let action_id = parse_id(&action_id)?;
    let agent = signed.agent.clone();
    let a = own_action(&state, &agent, action_id, "action").await?;
    signed
        .commit(
            &state,
            "agent.request.action_status",
            json!({ "actionId": action_id }),
        )
        .await?;
    Ok(Json(action_json(&a, state.now_ms())))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResultBody {
    result: String,
    #[serde(default)]
    detail: Option<String>,
}

/// `POST /api/v1/agents/{id}/actions/{action_id}/result` (agent-signed): outcome of an approved
/// action, once.
pub async fn report_result(
    State(state): State<AppState>,
    Path((_, action_id)): Path<(String, String)>,
    signed: SignedRequest,
) -> Result<Json<Value>, Error> {
    let action_id = parse_id(&action_id)?;
    let body: ResultBody = signed.json()?;
    let result: ActionResult = body.result.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "result {:?}: expected success or failure",
            body.result
        ))
    })?;
    if body.detail.as_ref().is_some_and(|d| d.len() > MAX_DETAIL) {
        return Err(
            ApiError::bad_request(format!("detail is longer than {MAX_DETAIL} bytes")).into(),
        );
    }
    let agent = signed.agent.clone();
    let a = own_action(&state, &agent, action_id, "action").await?;
    if a.status != ActionStatus::Approved {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_approved",
            format!(
                "the decision is {}; only an approved action has an outcome",
                a.status_at(state.now_ms())
            ),
        )
        .into());
    }
    if a.result.is_some() {
        return Err(already_reported());
    }
    let now = state.now_ms();
    let op = DecisionOp::ActionResult {
        org_id: agent.org_id,
        action_id,
        agent_id: agent.id.clone(),
        result,
        detail: body.detail.clone(),
        at: now,
    };
    let payload = json!({
        "actionId": action_id,
        "capability": a.capability,
        "result": result.as_str(),
    });
    match signed
        .commit_op(&state, "agent.action.result", payload, op)
        .await?
    {
        Committed::Applied(_) => {}
        Committed::Conflict(_) => return Err(already_reported()),
    }
    let a = state
        .store
        .get_action(agent.org_id, action_id)
        .await?
        .ok_or_else(|| ApiError::not_found("action"))?;
    Ok(Json(action_json(&a, now)))
}

pub(crate) fn already_reported() -> Error {
    ApiError::new(
        StatusCode::CONFLICT,
        "already_reported",
        "the outcome of this action was already reported",
    )
    .into()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    agent_id: Option<String>,
    before: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/v1/actions?status=&agentId=&before=&limit=` (every role): newest first.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::ActionsList)?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.parse::<ActionStatus>().map_err(|_| {
                ApiError::bad_request(format!(
                    "status {s:?}: expected approved, denied, pending or expired"
                ))
            })
        })
        .transpose()?;
    let before = q.before.as_deref().map(parse_id).transpose()?;
    let limit = q.limit.unwrap_or(100);
    let rows = state
        .store
        .list_actions(
            caller.org_id(),
            &ActionFilter {
                agent_id: q.agent_id,
                status,
                before,
                limit,
            },
        )
        .await?;
    let now = state.now_ms();
    let next = if rows.len() == limit.clamp(1, 500) as usize {
        rows.last().map(|a| a.id)
    } else {
        None
    };
    Ok(Json(json!({
        "actions": rows.iter().map(|a| action_json(a, now)).collect::<Vec<_>>(),
        "next": next,
    })))
}

/// `GET /api/v1/actions/{id}` (every role).
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::ActionsRead)?;
    let id = parse_id(&id)?;
    let a = state
        .store
        .get_action(caller.org_id(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("action"))?;
    Ok(Json(action_json(&a, state.now_ms())))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecideBody {
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/v1/actions/{id}/approve`.
pub async fn approve(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Error> {
    decide_pending(state, caller, id, body, true).await
}

/// `POST /api/v1/actions/{id}/deny`.
pub async fn deny(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Error> {
    decide_pending(state, caller, id, body, false).await
}

/// Whether `caller` is named by an `@approvers` entry: `role:<role>` (or a bare role name), the
/// e-mail address, or `user:<uuid>`.
fn is_listed_approver(caller: &Caller, approvers: &[String]) -> bool {
    approvers.is_empty()
        || approvers.iter().any(|a| {
            let a = a.trim();
            let role = a.strip_prefix("role:").unwrap_or(a);
            role.eq_ignore_ascii_case(caller.role.as_str())
                || a.eq_ignore_ascii_case(&caller.user.email)
                || a == format!("user:{}", caller.user.id)
        })
}

async fn decide_pending(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
    approve: bool,
) -> Result<Json<Value>, Error> {
    caller.authorize(if approve {
        Action::ActionsApprove
    } else {
        Action::ActionsDeny
    })?;
    let id = parse_id(&id)?;
    // The body is optional: empty, or `{note?}`.
    let note = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        super::request_json::<DecideBody>(&body)?.note
    };
    if note.as_ref().is_some_and(|n| n.len() > MAX_DETAIL) {
        return Err(
            ApiError::bad_request(format!("note is longer than {MAX_DETAIL} bytes")).into(),
        );
    }
    let org = caller.org_id();
    let a = state
        .store
        .get_action(org, id)
        .await?
        .ok_or_else(|| ApiError::not_found("action"))?;
    let agent = state
        .store
        .get_agent(org, &a.agent_id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    if agent.owner_id == Some(caller.user.id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "separation_of_duties",
            "the owner of an agent cannot decide its pending actions; another manager or admin must",
        )
        .into());
    }
    if !is_listed_approver(&caller, &a.approvers.0) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_an_approver",
            format!(
                "this action may only be decided by: {}",
                a.approvers.0.join(", ")
            ),
        )
        .into());
    }
    let now = state.now_ms();
    let validity = i64::try_from(
        state
            .config
            .decisions
            .approval_validity_secs
            .saturating_mul(1000),
    )
    .unwrap_or(i64::MAX);
    let audit = state.audit(
        Some(org),
        if approve {
            "agent.action.approved"
        } else {
            "agent.action.denied"
        },
        caller.actor(),
        Some(format!("agent:{}", a.agent_id)),
        json!({ "actionId": id, "capability": a.capability, "resource": a.resource, "note": note }),
        caller.client_addr.clone(),
    );
    match state
        .store
        .decide_action(
            org,
            id,
            approve,
            caller.user.id,
            now,
            now.saturating_add(validity),
            &audit,
        )
        .await?
    {
        Change::Done(a) => Ok(Json(action_json(&a, now))),
        Change::NotFound => Err(ApiError::not_found("action").into()),
        Change::NotAllowed(a) => {
            let status = a.status_at(now);
            Err(ApiError::new(
                StatusCode::CONFLICT,
                if status == ActionStatus::Expired {
                    "approval_expired"
                } else {
                    "not_pending"
                },
                format!("the action is {status}; only a pending action can be decided"),
            )
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn risk(c: &str) -> RiskLevel {
        classify(&Capability::parse(c).unwrap())
    }

    #[test]
    fn risk_classification_takes_the_riskiest_word() {
        assert_eq!(risk("files:read"), RiskLevel::Low);
        assert_eq!(risk("files:read_file"), RiskLevel::Low); // "file" carries no risk word
        assert_eq!(risk("db:select"), RiskLevel::Low);
        assert_eq!(risk("db:delete"), RiskLevel::High);
        assert_eq!(risk("files:read_delete"), RiskLevel::High);
        assert_eq!(risk("bank:transfer"), RiskLevel::Critical);
        assert_eq!(risk("mail:send"), RiskLevel::Medium);
        assert_eq!(risk("x:frobnicate"), RiskLevel::Medium);
    }
}
