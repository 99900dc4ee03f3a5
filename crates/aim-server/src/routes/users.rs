//! User management (admins; managers may read).

use aim_store::{NewUser, Role, User};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, Error};
use crate::password;
use crate::rbac::Action;
use crate::routes::{ApiJson, ApiQuery, PageQuery, page_json, parse_id};
use crate::secrets::new_one_time_password;
use crate::state::{AppState, ms_to_rfc3339};

/// Public view of a user (never the hash, TOTP secret or lockout counters).
pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "orgId": u.org_id,
        "email": u.email,
        "role": u.role,
        "active": u.active,
        "totpEnabled": u.totp_enabled,
        "passwordChangeRequired": u.must_change_password,
        "createdAt": ms_to_rfc3339(u.created_at),
    })
}

/// `GET /api/v1/users?after=&limit=`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::UsersList)?;
    let page = q.page();
    let users = state.store.list_users(caller.org_id(), page).await?;
    let last = users.last().map(|u| u.id);
    let items: Vec<Value> = users.iter().map(user_json).collect();
    Ok(Json(page_json(items, last, page.clamped_limit() as usize)))
}

/// `GET /api/v1/users/{id}`.
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::UsersRead)?;
    let id = parse_id(&id)?;
    let u = state
        .store
        .get_user(caller.org_id(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(user_json(&u)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUser {
    email: String,
    role: Role,
    /// When absent, a one-time password is generated, returned once, and must be changed at first
    /// login (invitation).
    password: Option<SecretString>,
}

fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `POST /api/v1/users {email, role, password?}` → 201.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<Value>), Error> {
    caller.authorize(Action::UsersCreate)?;
    let email = req.email.trim().to_lowercase();
    if !valid_email(&email) {
        return Err(ApiError::bad_request("email is not a valid address").into());
    }
    let (password, one_time) = match &req.password {
        Some(p) => {
            password::check_policy(p.expose_secret(), &email)?;
            (SecretString::from(p.expose_secret().to_owned()), false)
        }
        None => (
            SecretString::from(new_one_time_password().to_string()),
            true,
        ),
    };
    let hash = state.hasher.hash(password.expose_secret()).await?;
    let now = state.now_ms();
    let new = NewUser {
        id: Uuid::now_v7(),
        org_id: caller.org_id(),
        email,
        password_hash: hash,
        role: req.role,
        must_change_password: one_time,
        created_by: Some(caller.user.id),
        created_at: now,
    };
    let a = state.audit(
        Some(caller.org_id()),
        "user.created",
        caller.actor(),
        Some(format!("user:{}", new.id)),
        json!({ "role": req.role }),
        caller.client_addr.clone(),
    );
    let user = state
        .store
        .create_user(&new, &a)
        .await
        .map_err(|e| match e {
            aim_store::Error::Conflict { .. } => {
                Error::Api(ApiError::conflict("a user with this email already exists"))
            }
            other => other.into(),
        })?;
    let mut body = user_json(&user);
    if one_time {
        body["oneTimePassword"] = json!(password.expose_secret());
    }
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateUser {
    role: Option<Role>,
    active: Option<bool>,
}

/// `PATCH /api/v1/users/{id} {role?, active?}`. Admins cannot demote, deactivate or delete
/// themselves (so an organization always keeps an admin).
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateUser>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::UsersUpdate)?;
    let id = parse_id(&id)?;
    if id == caller.user.id {
        return Err(ApiError::conflict("you cannot change your own role or status").into());
    }
    let org = caller.org_id();
    let mut user = state
        .store
        .get_user(org, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let now = state.now_ms();
    if let Some(role) = req.role
        && role != user.role
    {
        let a = state.audit(
            Some(org),
            "user.role_changed",
            caller.actor(),
            Some(format!("user:{id}")),
            json!({ "from": user.role, "to": role }),
            caller.client_addr.clone(),
        );
        user = state
            .store
            .set_user_role(org, id, role, now, &a)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
    }
    if let Some(active) = req.active
        && active != user.active
    {
        let ev = if active {
            "user.activated"
        } else {
            "user.deactivated"
        };
        let a = state.audit(
            Some(org),
            ev,
            caller.actor(),
            Some(format!("user:{id}")),
            json!({}),
            caller.client_addr.clone(),
        );
        user = state
            .store
            .set_user_active(org, id, active, now, &a)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
    }
    Ok(Json(user_json(&user)))
}

/// `DELETE /api/v1/users/{id}` → 204 (sessions, API keys and recovery codes go with the user).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    caller.authorize(Action::UsersDelete)?;
    let id = parse_id(&id)?;
    if id == caller.user.id {
        return Err(ApiError::conflict("you cannot delete yourself").into());
    }
    let a = state.audit(
        Some(caller.org_id()),
        "user.deleted",
        caller.actor(),
        Some(format!("user:{id}")),
        json!({}),
        caller.client_addr.clone(),
    );
    if state.store.delete_user(caller.org_id(), id, &a).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("user").into())
    }
}
