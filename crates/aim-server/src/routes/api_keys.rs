//! API keys: create (shown once), list (prefix only), read, revoke, rotate.

use aim_store::{ApiKey, NewApiKey, Role};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::api_key;
use crate::auth::Caller;
use crate::error::{ApiError, Error};
use crate::rbac::Action;
use crate::routes::{ApiJson, ApiQuery, PageQuery, page_json, parse_id};
use crate::state::{AppState, ms_to_rfc3339};

/// Public view of a key: never the secret nor its digest.
pub fn key_json(k: &ApiKey) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "role": k.role,
        "ownerId": k.owner_id,
        "createdAt": ms_to_rfc3339(k.created_at),
        "expiresAt": k.expires_at.map(ms_to_rfc3339),
        "revokedAt": k.revoked_at.map(ms_to_rfc3339),
        "lastUsedAt": k.last_used_at.map(ms_to_rfc3339),
        "useCount": k.use_count,
        "lastClientAddr": k.last_client_addr,
    })
}

/// `GET /api/v1/api-keys`: managers and admins see every key of the organization; members and
/// viewers their own.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::ApiKeysList)?;
    let owner = (!caller.manages_all()).then_some(caller.user.id);
    let page = q.page();
    let keys = state
        .store
        .list_api_keys(caller.org_id(), owner, page)
        .await?;
    let last = keys.last().map(|k| k.id);
    Ok(Json(page_json(
        keys.iter().map(key_json).collect(),
        last,
        page.clamped_limit() as usize,
    )))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKey {
    name: String,
    /// Defaults to `viewer` (least privilege); never above the caller's role.
    role: Option<Role>,
    /// RFC 3339; must be in the future.
    expires_at: Option<String>,
}

/// `POST /api/v1/api-keys {name, role?, expiresAt?}` → 201 `{id, key, prefix, expiresAt, ...}`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<Value>), Error> {
    caller.authorize(Action::ApiKeysCreate)?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request("name must be 1 to 100 printable characters").into());
    }
    let role = req.role.unwrap_or(Role::Viewer);
    if role > caller.role {
        return Err(ApiError::forbidden(format!(
            "a key cannot carry a higher role than its creator ({})",
            caller.role
        ))
        .into());
    }
    let now = state.now_ms();
    let expires_at = match &req.expires_at {
        None => None,
        Some(s) => {
            let t = aim_core::clock::parse_rfc3339(s)
                .map_err(|_| ApiError::bad_request("expiresAt must be an RFC 3339 time"))?;
            let ms = t.timestamp_millis();
            if ms <= now {
                return Err(ApiError::bad_request("expiresAt must be in the future").into());
            }
            Some(ms)
        }
    };
    let generated = api_key::generate();
    let new = NewApiKey {
        id: Uuid::now_v7(),
        org_id: caller.org_id(),
        owner_id: caller.user.id,
        name: name.to_string(),
        prefix: generated.prefix.clone(),
        key_hash: generated.hash.clone(),
        role,
        created_at: now,
        expires_at,
    };
    let a = state.audit(
        Some(caller.org_id()),
        "api_key.created",
        caller.actor(),
        Some(format!("api_key:{}", new.id)),
        json!({ "role": role, "prefix": new.prefix }),
        caller.client_addr.clone(),
    );
    let key = state.store.create_api_key(&new, &a).await?;
    let mut body = key_json(&key);
    body["key"] = json!(&*generated.key);
    Ok((StatusCode::CREATED, Json(body)))
}

async fn owned_key(state: &AppState, caller: &Caller, id: &str) -> Result<ApiKey, Error> {
    let id = parse_id(id)?;
    let key = state
        .store
        .get_api_key(caller.org_id(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    caller.check_owns(&key)?;
    Ok(key)
}

/// `GET /api/v1/api-keys/{id}`.
pub async fn get_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::ApiKeysRead)?;
    Ok(Json(key_json(&owned_key(&state, &caller, &id).await?)))
}

/// `DELETE /api/v1/api-keys/{id}` → 204 (revocation is permanent).
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    caller.authorize(Action::ApiKeysRevoke)?;
    let key = owned_key(&state, &caller, &id).await?;
    let a = state.audit(
        Some(caller.org_id()),
        "api_key.revoked",
        caller.actor(),
        Some(format!("api_key:{}", key.id)),
        json!({ "prefix": key.prefix }),
        caller.client_addr.clone(),
    );
    state
        .store
        .revoke_api_key(caller.org_id(), key.id, state.now_ms(), &a)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/api-keys/{id}/rotate` → 200 with the new `key` (shown once); the old secret
/// stops working at once.
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::ApiKeysRotate)?;
    let key = owned_key(&state, &caller, &id).await?;
    let generated = api_key::generate();
    let a = state.audit(
        Some(caller.org_id()),
        "api_key.rotated",
        caller.actor(),
        Some(format!("api_key:{}", key.id)),
        json!({ "prefix": generated.prefix }),
        caller.client_addr.clone(),
    );
    let rotated = state
        .store
        .rotate_api_key(
            caller.org_id(),
            key.id,
            &generated.prefix,
            &generated.hash,
            state.now_ms(),
            &a,
        )
        .await?
        .ok_or_else(|| ApiError::conflict("revoked or expired keys cannot be rotated"))?;
    let mut body = key_json(&rotated);
    body["key"] = json!(&*generated.key);
    Ok(Json(body))
}
