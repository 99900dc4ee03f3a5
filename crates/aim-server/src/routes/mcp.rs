//! MCP servers on the AIM server (docs/MCP.md, "Server"): registration with the server's own key,
//! pins (plain or signed manifests), agents' signed attestations with drift detection, the
//! confidence score and connection patterns.
//!
//! Invariants:
//! - A signed manifest is accepted only when `aim_mcp::signed::verify` passes under the server's
//!   registered key (400 `invalid_signed_manifest` with the reasons otherwise; nothing stored).
//! - An attestation's manifest hash is computed here from the manifest the agent sent, never
//!   taken from the client; its comparison with the pin and the drift report are computed here too.
//! - The attestation row, the day's use count, the drift mark, the nonce and the
//!   `agent.mcp.attested` audit record commit in one transaction (the signed-request writer).

use aim_core::keys::PublicKey;
use aim_mcp::manifest::Manifest;
use aim_mcp::signed::SignedManifest;
use aim_store::{DecisionOp, McpServerRow, NewMcpAttestation};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::agent_auth::{Committed, SignedRequest};
use crate::auth::Caller;
use crate::error::{ApiError, Error};
use crate::mcp_attestation::{server_confidence, server_json};
use crate::rbac::Action;
use crate::routes::agents::load;
use crate::routes::{ApiJson, parse_id};
use crate::state::AppState;
use crate::state::ms_to_rfc3339;

/// Longest server name.
pub const MAX_NAME: usize = 200;
/// Most drift changes carried in an audit record (the count is always complete).
pub const MAX_CHANGES_AUDITED: usize = 20;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerBody {
    name: Option<String>,
    /// Base64 of the server's 32-byte Ed25519 public key.
    public_key: Option<String>,
    /// A manifest signed by that key (`opena2a mcp sign-manifest`): pinned at once.
    signed_manifest: Option<SignedManifest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PinBody {
    manifest: Option<Manifest>,
    signed_manifest: Option<SignedManifest>,
}

fn invalid(code: &'static str, msg: impl Into<String>) -> Error {
    ApiError::new(StatusCode::BAD_REQUEST, code, msg).into()
}

/// The manifest to pin, its hash and whether it carries a valid signature by `key`.
fn pin_of(
    manifest: Option<Manifest>,
    signed: Option<SignedManifest>,
    key: Option<&PublicKey>,
) -> Result<(Manifest, String, bool), Error> {
    match (manifest, signed) {
        (Some(m), None) => {
            m.check_format()
                .map_err(|e| invalid("invalid_manifest", e.to_string()))?;
            let h = m
                .surface_hash()
                .map_err(|e| invalid("invalid_manifest", e.to_string()))?;
            Ok((m, h, false))
        }
        (None, Some(doc)) => {
            let Some(key) = key else {
                return Err(invalid(
                    "invalid_signed_manifest",
                    "a signed manifest needs the server's registered publicKey",
                ));
            };
            let v = aim_mcp::signed::verify(&doc, Some(key))
                .map_err(|e| invalid("invalid_signed_manifest", e.to_string()))?;
            if !v.valid {
                return Err(invalid("invalid_signed_manifest", v.reasons.join("; ")));
            }
            Ok((doc.manifest, doc.manifest_hash, true))
        }
        _ => Err(ApiError::bad_request("give exactly one of manifest and signedManifest").into()),
    }
}

fn manifest_text(m: &Manifest) -> Result<String, Error> {
    serde_json::to_string(m).map_err(|e| Error::Io(e.to_string()))
}

/// A server name: trimmed, 1 to [`MAX_NAME`] characters, no control characters (400 otherwise).
pub(crate) fn server_name(raw: Option<&str>) -> Result<String, ApiError> {
    let name = raw.unwrap_or("").trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "name: 1 to {MAX_NAME} printable characters"
        )));
    }
    Ok(name)
}

/// A new registry row with no pin and no drift.
pub(crate) fn unpinned_row(
    org_id: Uuid,
    name: String,
    key: Option<&PublicKey>,
    now: i64,
    created_by: String,
) -> McpServerRow {
    McpServerRow {
        id: Uuid::now_v7(),
        org_id,
        name,
        public_key: key.map(|k| k.to_bytes().to_vec()),
        pinned_hash: None,
        pinned_manifest: None,
        pinned_signed: false,
        pinned_at: None,
        pinned_by: None,
        drift_at: None,
        drift_hash: None,
        drift_severity: None,
        created_at: now,
        created_by,
    }
}

/// `POST /api/v1/mcp-servers {name, publicKey?, signedManifest?}` (managers, admins) → 201.
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<ServerBody>,
) -> Result<(StatusCode, Json<Value>), Error> {
    caller.authorize(Action::McpServersCreate)?;
    let name = server_name(b.name.as_deref())?;
    let key = b
        .public_key
        .as_deref()
        .map(PublicKey::from_base64)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("publicKey: {e}")))?;
    let now = state.now_ms();
    let mut row = unpinned_row(caller.org_id(), name, key.as_ref(), now, caller.actor());
    if let Some(doc) = b.signed_manifest {
        let (m, h, signed) = pin_of(None, Some(doc), key.as_ref())?;
        row.pinned_manifest = Some(manifest_text(&m)?);
        row.pinned_hash = Some(h);
        row.pinned_signed = signed;
        row.pinned_at = Some(now);
        row.pinned_by = Some(caller.actor());
    }
    let audit = state.audit(
        Some(caller.org_id()),
        "mcp_server.registered",
        caller.actor(),
        Some(format!("mcp_server:{}", row.id)),
        json!({ "name": row.name, "hasKey": row.public_key.is_some(), "pinnedHash": row.pinned_hash }),
        caller.client_addr.clone(),
    );
    match state.store.create_mcp_server(&row, &audit).await {
        Ok(()) => {}
        Err(aim_store::Error::Conflict { .. }) => {
            return Err(ApiError::conflict("an MCP server with this name exists").into());
        }
        Err(e) => return Err(e.into()),
    }
    let c = server_confidence(&state, &row).await?;
    Ok((StatusCode::CREATED, Json(server_json(&row, &c))))
}

/// `GET /api/v1/mcp-servers` (every role).
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, Error> {
    caller.authorize(Action::McpServersList)?;
    let mut out = Vec::new();
    for s in state.store.list_mcp_servers(caller.org_id()).await? {
        let c = server_confidence(&state, &s).await?;
        out.push(server_json(&s, &c));
    }
    Ok(Json(json!({ "servers": out })))
}

async fn load_server(state: &AppState, caller: &Caller, id: &str) -> Result<McpServerRow, Error> {
    let id = parse_id(id)?;
    state
        .store
        .get_mcp_server(caller.org_id(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("MCP server").into())
}

/// `GET /api/v1/mcp-servers/{id}` (every role): with the pinned manifest.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::McpServersRead)?;
    let s = load_server(&state, &caller, &id).await?;
    let c = server_confidence(&state, &s).await?;
    let mut v = server_json(&s, &c);
    v["pinnedManifest"] = s
        .pinned_manifest
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or(Value::Null);
    Ok(Json(v))
}

/// `PUT /api/v1/mcp-servers/{id}/pin {manifest | signedManifest}` (managers, admins): the new
/// reference; clears the drift mark.
pub async fn pin(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PinBody>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::McpServersPin)?;
    let s = load_server(&state, &caller, &id).await?;
    let key = s
        .public_key
        .as_deref()
        .and_then(|k| PublicKey::from_bytes(k).ok());
    let (m, h, signed) = pin_of(b.manifest, b.signed_manifest, key.as_ref())?;
    let now = state.now_ms();
    let audit = state.audit(
        Some(caller.org_id()),
        "mcp_server.pinned",
        caller.actor(),
        Some(format!("mcp_server:{}", s.id)),
        json!({ "name": s.name, "manifestHash": h, "signed": signed, "previousHash": s.pinned_hash }),
        caller.client_addr.clone(),
    );
    if !state
        .store
        .pin_mcp_server(
            caller.org_id(),
            s.id,
            &h,
            &manifest_text(&m)?,
            signed,
            &caller.actor(),
            now,
            &audit,
        )
        .await?
    {
        return Err(ApiError::not_found("MCP server").into());
    }
    let s = load_server(&state, &caller, &id).await?;
    let c = server_confidence(&state, &s).await?;
    Ok(Json(server_json(&s, &c)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttestBody {
    /// The server's id, or
    server_id: Option<String>,
    /// its name in the organization (exactly one of the two).
    server_name: Option<String>,
    /// The canonical manifest the agent saw (`opena2a mcp scan --json`).
    manifest: Manifest,
}

/// `POST /api/v1/agents/{id}/mcp-attestations {serverId | serverName, manifest}` (signed by the
/// agent) → 201
/// `{id, serverId, manifestHash, capabilities, matchesPin, drift}`.
pub async fn attest(
    State(state): State<AppState>,
    signed: SignedRequest,
) -> Result<(StatusCode, Json<Value>), Error> {
    let b: AttestBody = signed.json()?;
    b.manifest
        .check_format()
        .map_err(|e| invalid("invalid_manifest", e.to_string()))?;
    let hash = b
        .manifest
        .surface_hash()
        .map_err(|e| invalid("invalid_manifest", e.to_string()))?;
    let agent = &signed.agent;
    let server = match (&b.server_id, &b.server_name) {
        (Some(id), None) => {
            let id = parse_id(id)?;
            state.store.get_mcp_server(agent.org_id, id).await?
        }
        (None, Some(name)) => {
            state
                .store
                .get_mcp_server_by_name(agent.org_id, name)
                .await?
        }
        _ => {
            return Err(
                ApiError::bad_request("give exactly one of serverId and serverName").into(),
            );
        }
    };
    let Some(server) = server else {
        return Err(ApiError::not_found("MCP server").into());
    };
    let server_id = server.id;
    let capabilities: Vec<&str> = b
        .manifest
        .capabilities()
        .iter()
        .map(|c| c.as_str())
        .collect();
    let matches_pin = server.pinned_hash.as_ref().map(|p| *p == hash);
    let drift = match (matches_pin, &server.pinned_manifest) {
        (Some(false), Some(pinned)) => {
            let pinned: Manifest = serde_json::from_str(pinned)
                .map_err(|e| Error::Io(format!("stored pin of {}: {e}", server.id)))?;
            Some(
                aim_mcp::drift::diff(&pinned, &b.manifest)
                    .map_err(|e| invalid("invalid_manifest", e.to_string()))?,
            )
        }
        _ => None,
    };
    let drift_severity = drift.as_ref().map(|d| {
        d.max_severity
            .map(crate::monitor::wire_name)
            .unwrap_or_else(|| "low".to_string())
    });
    let drift_json = drift.as_ref().map(|d| {
        json!({
            "maxSeverity": drift_severity,
            "changeCount": d.changes.len(),
            "changes": d.changes.iter().take(MAX_CHANGES_AUDITED).collect::<Vec<_>>(),
            "pinnedHash": d.pinned_hash,
        })
    });
    let id = Uuid::now_v7();
    let now = state.now_ms();
    let row = NewMcpAttestation {
        id,
        org_id: agent.org_id,
        server_id,
        agent_id: agent.id.clone(),
        manifest_hash: hash.clone(),
        capabilities: serde_json::to_string(&capabilities).unwrap_or_else(|_| "[]".into()),
        matches_pin,
        drift_severity: drift_severity.clone(),
        at: now,
    };
    let payload = json!({
        "attestationId": id, "serverId": server_id, "serverName": server.name,
        "manifestHash": hash, "capabilities": capabilities, "matchesPin": matches_pin,
        "drift": drift_json,
    });
    match signed
        .commit_op(
            &state,
            "agent.mcp.attested",
            payload,
            DecisionOp::McpAttestation(Box::new(row)),
        )
        .await?
    {
        Committed::Applied(_) => Ok((
            StatusCode::CREATED,
            Json(json!({
                "id": id, "serverId": server_id, "manifestHash": hash,
                "capabilities": capabilities, "matchesPin": matches_pin, "drift": drift_json,
                "at": ms_to_rfc3339(now),
            })),
        )),
        Committed::Conflict(_) => Err(ApiError::not_found("MCP server").into()),
    }
}

/// `GET /api/v1/agents/{id}/mcp-connections` (every role): the agent's use of each MCP server
/// in the last 30 days (uses, active days, first and last use).
pub async fn connections(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::AgentMcpConnections)?;
    let agent = load(&state, &caller, &id).await?;
    let now = state.now_ms();
    let day = aim_store::activity::DAY_MS;
    let rows = state
        .store
        .mcp_connections(
            agent.org_id,
            &agent.id,
            (now - 30 * day).div_euclid(day) + 1,
        )
        .await?;
    Ok(Json(json!({
        "agentId": agent.id,
        "connections": rows.iter().map(|c| json!({
            "serverId": c.server_id, "serverName": c.server_name, "uses": c.uses,
            "activeDays": c.days, "firstUse": ms_to_rfc3339(c.first_at),
            "lastUse": ms_to_rfc3339(c.last_at),
        })).collect::<Vec<_>>(),
    })))
}
