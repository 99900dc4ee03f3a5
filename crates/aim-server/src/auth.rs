//! Who is calling: the [`Caller`] extractor (JWT access token or API key) and its authorization.
//!
//! Credentials are read from `Authorization: Bearer <token>` or `X-API-Key: <key>`. A bearer value
//! starting with `aim_live_` is an API key; anything else must be an access token. Every failure
//! answers the same 401, whatever went wrong (unknown key, bad signature, expired, revoked session,
//! deactivated user).

use std::net::SocketAddr;

use aim_store::{ApiKey, Role, User};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::http::request::Parts;
use uuid::Uuid;

use crate::api_key;
use crate::error::{ApiError, Error};
use crate::rbac::{self, Action};
use crate::state::AppState;

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A human session (access token naming session `sid`).
    Session { sid: Uuid },
    /// An API key.
    ApiKey { id: Uuid },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    /// Effective role: the user's role, or for an API key the lower of the key's role and its
    /// owner's current role (demoting a user demotes its keys).
    pub role: Role,
    pub via: Via,
    pub org_require_2fa_admins: bool,
    pub client_addr: Option<String>,
}

impl Caller {
    pub fn org_id(&self) -> Uuid {
        self.user.org_id
    }

    /// The audit `actor` string.
    pub fn actor(&self) -> String {
        match &self.via {
            Via::Session { .. } => format!("user:{}", self.user.id),
            Via::ApiKey { id } => format!("api_key:{id}"),
        }
    }

    /// Whether the caller acts on every resource of its organization (not only its own).
    pub fn manages_all(&self) -> bool {
        self.role >= Role::Manager
    }

    /// An admin who must enroll TOTP before doing anything else.
    pub fn totp_enrollment_required(&self) -> bool {
        self.org_require_2fa_admins && self.user.role == Role::Admin && !self.user.totp_enabled
    }

    /// Authorizes `action`: account restrictions first, then the permission table.
    pub fn authorize(&self, action: Action) -> Result<(), ApiError> {
        match self.via {
            Via::Session { .. } => {
                if !action.allowed_while_restricted() {
                    if self.user.must_change_password {
                        return Err(ApiError::new(
                            StatusCode::FORBIDDEN,
                            "password_change_required",
                            "change the one-time password first: POST /api/v1/auth/change-password",
                        ));
                    }
                    if self.totp_enrollment_required() {
                        return Err(ApiError::new(
                            StatusCode::FORBIDDEN,
                            "totp_enrollment_required",
                            "this organization requires 2FA for admins: enroll at POST /api/v1/auth/totp/enroll",
                        ));
                    }
                }
            }
            Via::ApiKey { .. } => {
                if action.session_only() {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "session_required",
                        "this action needs a user session, not an API key",
                    ));
                }
            }
        }
        rbac::check(action, self.role)
    }

    /// Ownership rule for API keys: managers and admins see all, others only their own. Others'
    /// keys are reported as not found.
    pub fn check_owns(&self, key: &ApiKey) -> Result<(), ApiError> {
        if self.manages_all() || key.owner_id == self.user.id {
            Ok(())
        } else {
            Err(ApiError::not_found("API key"))
        }
    }
}

/// The credential presented in the headers, if any.
pub fn presented_credential(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if let Some(v) = headers.get("x-api-key") {
        let s = v.to_str().map_err(|_| ApiError::unauthorized())?.trim();
        return Ok(Some(s.to_string()));
    }
    let Some(v) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| ApiError::unauthorized())?;
    let (scheme, token) = s.split_once(' ').ok_or_else(ApiError::unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthorized());
    }
    Ok(Some(token.trim().to_string()))
}

/// The client's address as seen on the socket.
pub fn client_addr(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// Authenticates a request from its headers.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    addr: Option<String>,
) -> Result<Caller, Error> {
    let cred = presented_credential(headers)?.ok_or_else(ApiError::unauthorized)?;
    if cred.starts_with(api_key::PREFIX) {
        return authenticate_api_key(state, &cred, addr).await;
    }
    let claims = state
        .jwt
        .verify(&cred)
        .await
        .ok_or_else(ApiError::unauthorized)?;
    let p = state
        .store
        .principal_for_session(claims.sub, claims.sid)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if !p.user.active || p.user.org_id != claims.org {
        return Err(ApiError::unauthorized().into());
    }
    Ok(Caller {
        role: p.user.role,
        user: p.user,
        via: Via::Session { sid: claims.sid },
        org_require_2fa_admins: p.org_require_2fa_admins,
        client_addr: addr,
    })
}

async fn authenticate_api_key(
    state: &AppState,
    key: &str,
    addr: Option<String>,
) -> Result<Caller, Error> {
    let hash = api_key::digest(key).ok_or_else(ApiError::unauthorized)?;
    let row = state
        .store
        .find_api_key_by_hash(&hash)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let now = state.now_ms();
    if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::unauthorized().into());
    }
    let p = state
        .store
        .principal_for_user(row.owner_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if !p.user.active || p.user.org_id != row.org_id {
        return Err(ApiError::unauthorized().into());
    }
    state
        .store
        .touch_api_key(row.id, now, addr.as_deref())
        .await?;
    Ok(Caller {
        role: row.role.min(p.user.role),
        user: p.user,
        via: Via::ApiKey { id: row.id },
        org_require_2fa_admins: p.org_require_2fa_admins,
        client_addr: addr,
    })
}

/// [`authenticate`], then the per-credential rate limit (what every user-authenticated route
/// applies, through the [`Caller`] extractor or directly).
pub async fn authenticate_limited(
    state: &AppState,
    headers: &HeaderMap,
    addr: Option<String>,
) -> Result<Caller, Error> {
    let caller = authenticate(state, headers, addr).await?;
    let key = match caller.via {
        Via::Session { .. } => crate::ratelimit::CredentialKey::User(caller.user.id),
        Via::ApiKey { id } => crate::ratelimit::CredentialKey::ApiKey(id),
    };
    crate::ratelimit::check_credential(state, key)?;
    Ok(caller)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate_limited(state, &parts.headers, client_addr(parts)).await
    }
}
