//! Login, refresh, logout, password change, TOTP.

use std::net::SocketAddr;

use aim_store::{NewRefreshToken, RefreshOutcome, Session, User};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{Caller, Via, authenticate};
use crate::error::{ApiError, Error};
use crate::password;
use crate::rbac::Action;
use crate::routes::ApiJson;
use crate::secrets::{
    new_recovery_code, new_refresh_token, normalize_recovery_code, random_bytes, sha256,
};
use crate::state::AppState;
use crate::totp;

/// Number of recovery codes issued when TOTP is enabled.
pub const RECOVERY_CODES: usize = 10;
const MAX_EMAIL: usize = 254;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: SecretString,
    totp_code: Option<SecretString>,
    recovery_code: Option<SecretString>,
}

fn addr(c: &ConnectInfo<SocketAddr>) -> Option<String> {
    Some(c.0.ip().to_string())
}

/// `POST /api/v1/auth/login`.
pub async fn login(
    State(state): State<AppState>,
    conn: ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, Error> {
    let client = addr(&conn);
    let email = req.email.trim().to_lowercase();
    let pw = req.password.expose_secret();
    if email.len() > MAX_EMAIL || pw.chars().count() > password::MAX_LEN {
        return Err(ApiError::invalid_credentials().into());
    }
    let user = state.store.find_user_by_email(&email).await?;
    let now = state.now_ms();
    // Always one Argon2id verification, whether or not the account exists (no timing oracle).
    let ok = state
        .hasher
        .verify(pw, user.as_ref().map(|u| u.password_hash.as_str()))
        .await?;
    let Some(user) = user else {
        let a = state.audit(
            None,
            "auth.login.failed",
            "anonymous".into(),
            None,
            json!({ "reason": "unknown_email" }),
            client,
        );
        state.store.append_audit(&a).await?;
        return Err(ApiError::invalid_credentials().into());
    };
    let subject = Some(format!("user:{}", user.id));
    let reject = |reason: &str| {
        state.audit(
            Some(user.org_id),
            "auth.login.failed",
            "anonymous".into(),
            subject.clone(),
            json!({ "reason": reason }),
            client.clone(),
        )
    };
    if user.locked_until.is_some_and(|t| t > now) {
        state.store.append_audit(&reject("locked")).await?;
        return Err(ApiError::invalid_credentials().into());
    }
    if !user.active {
        state.store.append_audit(&reject("deactivated")).await?;
        return Err(ApiError::invalid_credentials().into());
    }
    if !ok {
        state
            .store
            .record_login_failure(user.id, now, state.lockout(), &reject("bad_password"))
            .await?;
        return Err(ApiError::invalid_credentials().into());
    }
    if user.totp_enabled {
        match second_factor(
            &state,
            &user,
            req.totp_code.as_ref(),
            req.recovery_code.as_ref(),
        )
        .await?
        {
            SecondFactor::Missing => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "totp_required",
                    "a TOTP code (totpCode) or recovery code (recoveryCode) is required",
                )
                .into());
            }
            SecondFactor::Rejected => {
                state
                    .store
                    .record_login_failure(
                        user.id,
                        now,
                        state.lockout(),
                        &reject("bad_second_factor"),
                    )
                    .await?;
                return Err(ApiError::invalid_credentials().into());
            }
            SecondFactor::Accepted => {}
        }
    }
    let session = Session {
        id: Uuid::now_v7(),
        org_id: user.org_id,
        user_id: user.id,
        created_at: now,
        revoked_at: None,
        revoked_reason: None,
    };
    let refresh = new_refresh_token();
    let row = refresh_row(&state, session.id, &refresh, now);
    let audit = state.audit(
        Some(user.org_id),
        "auth.login.succeeded",
        format!("user:{}", user.id),
        Some(format!("session:{}", session.id)),
        json!({}),
        client,
    );
    state.store.create_session(&session, &row, &audit).await?;
    let (access, expires_in) = state.jwt.issue(user.id, user.org_id, session.id).await?;
    let p = state.store.principal_for_user(user.id).await?;
    let enroll = p.is_some_and(|p| {
        p.org_require_2fa_admins && user.role == aim_store::Role::Admin && !user.totp_enabled
    });
    Ok(Json(json!({
        "accessToken": access,
        "refreshToken": &*refresh,
        "tokenType": "Bearer",
        "expiresIn": expires_in,
        "passwordChangeRequired": user.must_change_password,
        "totpEnrollmentRequired": enroll,
    }))
    .into_response())
}

enum SecondFactor {
    Missing,
    Rejected,
    Accepted,
}

async fn second_factor(
    state: &AppState,
    user: &User,
    code: Option<&SecretString>,
    recovery: Option<&SecretString>,
) -> Result<SecondFactor, Error> {
    if let Some(code) = code {
        let Some(sealed) = &user.totp_secret else {
            return Ok(SecondFactor::Rejected);
        };
        let secret = state.ring.open(&format!("totp:{}", user.id), sealed)?;
        let now = state.clock.now().timestamp();
        let Some(step) = totp::matching_step(&secret, code.expose_secret(), now)? else {
            return Ok(SecondFactor::Rejected);
        };
        // At most once: the step must be newer than every step used before.
        return Ok(if state.store.consume_totp_step(user.id, step).await? {
            SecondFactor::Accepted
        } else {
            SecondFactor::Rejected
        });
    }
    if let Some(rc) = recovery {
        let norm = normalize_recovery_code(rc.expose_secret());
        let used = state
            .store
            .consume_recovery_code(user.id, &sha256(norm.as_bytes()), state.now_ms())
            .await?;
        if used {
            let a = state.audit(
                Some(user.org_id),
                "auth.recovery_code.used",
                format!("user:{}", user.id),
                None,
                json!({}),
                None,
            );
            state.store.append_audit(&a).await?;
        }
        return Ok(if used {
            SecondFactor::Accepted
        } else {
            SecondFactor::Rejected
        });
    }
    Ok(SecondFactor::Missing)
}

fn refresh_row(state: &AppState, session: Uuid, token: &str, now: i64) -> NewRefreshToken {
    let ttl =
        i64::try_from(state.config.refresh_token_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    NewRefreshToken {
        id: Uuid::now_v7(),
        session_id: session,
        token_hash: sha256(token.as_bytes()),
        created_at: now,
        expires_at: now.saturating_add(ttl),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: SecretString,
}

/// `POST /api/v1/auth/refresh`: single-use rotation; a replayed token revokes its whole family.
pub async fn refresh(
    State(state): State<AppState>,
    conn: ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Response, Error> {
    let now = state.now_ms();
    let presented = req.refresh_token.expose_secret();
    if presented.len() > 128 {
        return Err(ApiError::unauthorized().into());
    }
    let next = new_refresh_token();
    let row = refresh_row(&state, Uuid::nil(), &next, now);
    let reuse = state.audit(
        None,
        "auth.refresh.reused",
        "anonymous".into(),
        None,
        json!({ "action": "session revoked" }),
        addr(&conn),
    );
    match state
        .store
        .rotate_refresh_token(&sha256(presented.as_bytes()), &row, now, &reuse)
        .await?
    {
        RefreshOutcome::Rotated { session } => {
            let (access, expires_in) = state
                .jwt
                .issue(session.user_id, session.org_id, session.id)
                .await?;
            Ok(Json(json!({ "accessToken": access, "refreshToken": &*next, "tokenType": "Bearer", "expiresIn": expires_in })).into_response())
        }
        RefreshOutcome::Reused { session } => {
            tracing::warn!(session = %session.id, user = %session.user_id, "refresh token reuse: session revoked");
            Err(ApiError::unauthorized().into())
        }
        RefreshOutcome::Invalid => Err(ApiError::unauthorized().into()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LogoutRequest {
    refresh_token: Option<SecretString>,
}

/// `POST /api/v1/auth/logout`: revokes the session named by the access token, or by
/// `{refreshToken}` when no credential header is sent. 204 either way once the session is dead.
pub async fn logout(
    State(state): State<AppState>,
    conn: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Error> {
    let now = state.now_ms();
    let client = addr(&conn);
    if crate::auth::presented_credential(&headers)?.is_some() {
        let caller = authenticate(&state, &headers, client.clone()).await?;
        caller.authorize(Action::AuthLogout)?;
        let Via::Session { sid } = caller.via else {
            return Err(ApiError::forbidden("API keys have no session").into());
        };
        let a = state.audit(
            Some(caller.org_id()),
            "auth.logout",
            caller.actor(),
            Some(format!("session:{sid}")),
            json!({}),
            client,
        );
        state
            .store
            .revoke_session(caller.user.id, sid, now, "logout", &a)
            .await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    let req: LogoutRequest = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("send an access token or {\"refreshToken\": ...}"))?;
    let token = req.refresh_token.ok_or_else(ApiError::unauthorized)?;
    let session = state
        .store
        .session_for_refresh_token(&sha256(token.expose_secret().as_bytes()))
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let a = state.audit(
        Some(session.org_id),
        "auth.logout",
        format!("user:{}", session.user_id),
        Some(format!("session:{}", session.id)),
        json!({}),
        client,
    );
    state
        .store
        .revoke_session(session.user_id, session.id, now, "logout", &a)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/auth/me`.
pub async fn me(caller: Caller) -> Result<Json<Value>, Error> {
    caller.authorize(Action::AuthMe)?;
    Ok(Json(json!({
        "id": caller.user.id,
        "orgId": caller.user.org_id,
        "email": caller.user.email,
        "role": caller.user.role,
        "totpEnabled": caller.user.totp_enabled,
        "passwordChangeRequired": caller.user.must_change_password,
        "totpEnrollmentRequired": caller.totp_enrollment_required(),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePasswordRequest {
    current_password: SecretString,
    new_password: SecretString,
}

/// `POST /api/v1/auth/change-password`: keeps the current session, ends all others.
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, Error> {
    caller.authorize(Action::AuthChangePassword)?;
    let Via::Session { sid } = caller.via else {
        return Err(ApiError::forbidden("sessions only").into());
    };
    let now = state.now_ms();
    let current = req.current_password.expose_secret();
    if current.chars().count() > password::MAX_LEN
        || !state
            .hasher
            .verify(current, Some(&caller.user.password_hash))
            .await?
    {
        let a = state.audit(
            Some(caller.org_id()),
            "auth.password.change_failed",
            caller.actor(),
            None,
            json!({}),
            caller.client_addr.clone(),
        );
        state
            .store
            .record_login_failure(caller.user.id, now, state.lockout(), &a)
            .await?;
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_current_password",
            "the current password is wrong",
        )
        .into());
    }
    let new = req.new_password.expose_secret();
    password::check_policy(new, &caller.user.email)?;
    if new == current {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "weak_password",
            "the new password must differ from the current one",
        )
        .into());
    }
    let hash = state.hasher.hash(new).await?;
    let a = state.audit(
        Some(caller.org_id()),
        "auth.password.changed",
        caller.actor(),
        Some(format!("user:{}", caller.user.id)),
        json!({}),
        caller.client_addr.clone(),
    );
    state
        .store
        .set_password(caller.user.id, &hash, Some(sid), now, &a)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/auth/jwks`: public keys that verify access tokens.
pub async fn jwks(State(state): State<AppState>) -> Json<Value> {
    Json(state.jwt.jwks().await)
}

/// `POST /api/v1/auth/totp/enroll`: a new pending secret (replacing any earlier pending one).
pub async fn totp_enroll(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::TotpEnroll)?;
    if caller.user.totp_enabled {
        return Err(ApiError::conflict("TOTP is already enabled; disable it first").into());
    }
    let secret = random_bytes::<{ totp::SECRET_LEN }>();
    let sealed = state
        .ring
        .seal(&format!("totp:{}", caller.user.id), &secret[..])?;
    state
        .store
        .set_totp_pending(caller.user.id, &sealed, state.now_ms())
        .await?;
    let e = totp::enrollment(&secret[..], &state.config.totp_issuer, &caller.user.email)?;
    Ok(Json(json!({
        "secret": &*e.secret_base32,
        "otpauthUri": &*e.otpauth_uri,
        "qrSvg": e.qr_svg,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TotpCodeRequest {
    code: SecretString,
}

/// `POST /api/v1/auth/totp/confirm {code}`: enables TOTP and returns the recovery codes (once).
pub async fn totp_confirm(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<TotpCodeRequest>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::TotpConfirm)?;
    let Some(pending) = state
        .store
        .get_user(caller.org_id(), caller.user.id)
        .await?
        .and_then(|u| u.totp_pending_secret)
    else {
        return Err(ApiError::conflict(
            "no TOTP enrollment in progress: POST /api/v1/auth/totp/enroll first",
        )
        .into());
    };
    let secret = state
        .ring
        .open(&format!("totp:{}", caller.user.id), &pending)?;
    let step = totp::matching_step(
        &secret,
        req.code.expose_secret(),
        state.clock.now().timestamp(),
    )?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_totp_code",
            "the code does not match",
        )
    })?;
    let codes: Vec<_> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let hashes: Vec<Vec<u8>> = codes
        .iter()
        .map(|c| sha256(normalize_recovery_code(c).as_bytes()))
        .collect();
    let a = state.audit(
        Some(caller.org_id()),
        "auth.totp.enabled",
        caller.actor(),
        Some(format!("user:{}", caller.user.id)),
        json!({}),
        caller.client_addr.clone(),
    );
    if !state
        .store
        .enable_totp(caller.user.id, &pending, step, &hashes, state.now_ms(), &a)
        .await?
    {
        return Err(ApiError::conflict("the enrollment changed meanwhile; enroll again").into());
    }
    let shown: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    Ok(Json(json!({ "enabled": true, "recoveryCodes": shown })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TotpDisableRequest {
    password: SecretString,
    code: SecretString,
}

/// `POST /api/v1/auth/totp/disable {password, code}`: needs both factors; refused for admins
/// when the organization requires 2FA for admins.
pub async fn totp_disable(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<TotpDisableRequest>,
) -> Result<StatusCode, Error> {
    caller.authorize(Action::TotpDisable)?;
    if !caller.user.totp_enabled {
        return Err(ApiError::conflict("TOTP is not enabled").into());
    }
    if caller.org_require_2fa_admins && caller.user.role == aim_store::Role::Admin {
        return Err(ApiError::forbidden("this organization requires 2FA for admins").into());
    }
    let pw = req.password.expose_secret();
    let pw_ok = pw.chars().count() <= password::MAX_LEN
        && state
            .hasher
            .verify(pw, Some(&caller.user.password_hash))
            .await?;
    let factor = if pw_ok {
        second_factor(&state, &caller.user, Some(&req.code), None).await?
    } else {
        SecondFactor::Rejected
    };
    if !matches!(factor, SecondFactor::Accepted) {
        let a = state.audit(
            Some(caller.org_id()),
            "auth.totp.disable_failed",
            caller.actor(),
            None,
            json!({}),
            caller.client_addr.clone(),
        );
        state
            .store
            .record_login_failure(caller.user.id, state.now_ms(), state.lockout(), &a)
            .await?;
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_credentials",
            "password or code is wrong",
        )
        .into());
    }
    let a = state.audit(
        Some(caller.org_id()),
        "auth.totp.disabled",
        caller.actor(),
        Some(format!("user:{}", caller.user.id)),
        json!({}),
        caller.client_addr.clone(),
    );
    state
        .store
        .disable_totp(caller.user.id, state.now_ms(), &a)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
