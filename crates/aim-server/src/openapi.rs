//! The OpenAPI 3.1 document of the HTTP API, served at `GET /api/v1/openapi.json`.
//!
//! The route handlers build their JSON with `serde_json::json!`, so the schemas here are
//! description types: they mirror the wire shapes (camelCase keys, RFC 3339 times, UUID ids) and
//! are never used to (de)serialize requests. The operations are declared on placeholder functions
//! with `#[utoipa::path]`.
//!
//! Invariant (tested by `tests/api/openapi.rs`): the set of `(method, path)` pairs in the
//! document equals the set of routes the router serves — a route added without documentation, or
//! documentation left behind by a removed route, fails the test suite.

#![allow(dead_code)] // Placeholder operation functions exist only for their attributes.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::security::{
    ApiKey as ApiKeyScheme, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
};
use utoipa::{Modify, OpenApi, ToSchema};
use uuid::Uuid;

/// Name of the bearer (JWT access token, or API key as bearer) security scheme.
pub const BEARER: &str = "bearerAuth";
/// Name of the `X-API-Key` header security scheme.
pub const API_KEY: &str = "apiKeyHeader";

// ----- schemas -----

/// Every error answer: `{"error": code, "message": text}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine code, e.g. `bad_request`, `unauthorized`, `invalid_credentials`,
    /// `totp_required`, `forbidden`, `password_change_required`, `totp_enrollment_required`,
    /// `session_required`, `not_found`, `conflict`, `weak_password`, `payload_too_large`.
    #[schema(example = "invalid_credentials")]
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
}

/// A user's role, lowest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Member,
    Manager,
    Admin,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "healthy")]
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// `ready` or `unavailable`.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub store: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// 6-digit RFC 6238 code, required when the account has TOTP enabled.
    pub totp_code: Option<String>,
    /// One-time recovery code (`xxxxx-xxxxx`), instead of `totpCode`.
    pub recovery_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    /// EdDSA JWT.
    pub access_token: String,
    /// Opaque, single-use.
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds.
    pub expires_in: u64,
    pub password_change_required: bool,
    pub totp_enrollment_required: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    pub expires_in: u64,
}

/// Only needed when no credential header is sent.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogoutRequest {
    pub refresh_token: Option<String>,
}

/// A JSON Web Key Set (RFC 7517) of Ed25519 (`OKP`) public keys.
#[derive(Serialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[derive(Serialize, ToSchema)]
pub struct Jwk {
    #[schema(example = "OKP")]
    pub kty: String,
    #[schema(example = "Ed25519")]
    pub crv: String,
    /// base64url public key.
    pub x: String,
    pub kid: String,
    #[schema(example = "EdDSA")]
    pub alg: String,
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    pub use_: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub id: Uuid,
    pub org_id: Uuid,
    pub email: String,
    pub role: Role,
    pub totp_enabled: bool,
    pub password_change_required: bool,
    pub totp_enrollment_required: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotpEnrollment {
    /// Base32 secret.
    pub secret: String,
    /// `otpauth://totp/…`.
    pub otpauth_uri: String,
    /// QR code of the URI, as an SVG document.
    pub qr_svg: String,
}

#[derive(Serialize, ToSchema)]
pub struct TotpCodeRequest {
    pub code: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotpConfirmed {
    pub enabled: bool,
    /// Ten codes, shown once.
    pub recovery_codes: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TotpDisableRequest {
    pub password: String,
    pub code: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    pub id: Uuid,
    pub name: String,
    #[serde(rename = "require2faForAdmins")]
    pub require_2fa_for_admins: bool,
    /// RFC 3339.
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct UpdateOrg {
    #[serde(rename = "require2faForAdmins")]
    pub require_2fa_for_admins: Option<bool>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub org_id: Uuid,
    pub email: String,
    pub role: Role,
    pub active: bool,
    pub totp_enabled: bool,
    pub password_change_required: bool,
    /// RFC 3339.
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserPage {
    pub items: Vec<User>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_after: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct CreateUser {
    pub email: String,
    pub role: Role,
    /// Without it, a one-time password is generated (invitation).
    pub password: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedUser {
    pub id: Uuid,
    pub org_id: Uuid,
    pub email: String,
    pub role: Role,
    pub active: bool,
    pub totp_enabled: bool,
    pub password_change_required: bool,
    pub created_at: String,
    /// Present (once) when no password was given.
    pub one_time_password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UpdateUser {
    pub role: Option<Role>,
    pub active: Option<bool>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// `aim_live_` + 8 characters.
    pub prefix: String,
    pub role: Role,
    pub owner_id: Uuid,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
    pub use_count: i64,
    pub last_client_addr: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyPage {
    pub items: Vec<ApiKey>,
    pub next_after: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateApiKey {
    /// 1 to 100 printable characters.
    pub name: String,
    /// Default `viewer`; never above the creator's role.
    pub role: Option<Role>,
    /// RFC 3339, in the future.
    pub expires_at: Option<String>,
}

/// A key with its secret, shown once (creation and rotation).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyWithSecret {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub role: Role,
    pub owner_id: Uuid,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
    pub use_count: i64,
    pub last_client_addr: Option<String>,
    /// `aim_live_` + base64url(32 bytes).
    pub key: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: Uuid,
    pub at: String,
    pub event_type: String,
    pub actor: String,
    pub subject: Option<String>,
    /// Event-specific details.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub client_addr: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_after: Option<Uuid>,
}

// ----- operations (placeholders carrying the annotations) -----

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process answers", body = Health)))]
fn health() {}

#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "The store answers", body = Ready),
        (status = 503, description = "The store does not answer", body = Ready)))]
fn ready() {}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
fn openapi_json() {}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in (check the restriction flags)", body = LoginResponse),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "`invalid_credentials` (same answer for unknown email, wrong password, locked or deactivated account) or `totp_required`", body = ErrorBody)))]
fn login() {}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New pair; the presented token is retired", body = TokenPair),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Unknown, expired or reused token (reuse revokes the session)", body = ErrorBody)))]
fn refresh() {}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body(content = LogoutRequest, description = "Only when no credential header is sent"),
    security((), ("bearerAuth" = [])),
    responses(
        (status = 204, description = "The session is revoked"),
        (status = 400, description = "Neither a credential nor a refresh token", body = ErrorBody),
        (status = 401, description = "Unknown token", body = ErrorBody),
        (status = 403, description = "An API key has no session", body = ErrorBody)))]
fn logout() {}

#[utoipa::path(get, path = "/api/v1/auth/jwks", tag = "auth",
    responses((status = 200, description = "Public keys verifying access tokens", body = Jwks)))]
fn jwks() {}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "`session_required` (API keys)", body = ErrorBody)))]
fn me() {}

#[utoipa::path(post, path = "/api/v1/auth/change-password", tag = "auth", security(("bearerAuth" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; every other session is ended"),
        (status = 400, description = "`invalid_current_password`, `weak_password`, malformed body", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "`session_required` (API keys)", body = ErrorBody)))]
fn change_password() {}

#[utoipa::path(post, path = "/api/v1/auth/totp/enroll", tag = "totp", security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "A pending secret", body = TotpEnrollment),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "`session_required`", body = ErrorBody),
        (status = 409, description = "TOTP already enabled", body = ErrorBody)))]
fn totp_enroll() {}

#[utoipa::path(post, path = "/api/v1/auth/totp/confirm", tag = "totp", security(("bearerAuth" = [])),
    request_body = TotpCodeRequest,
    responses(
        (status = 200, description = "Enabled; recovery codes shown once", body = TotpConfirmed),
        (status = 400, description = "`invalid_totp_code` or malformed body", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "`session_required`", body = ErrorBody),
        (status = 409, description = "No enrollment in progress", body = ErrorBody)))]
fn totp_confirm() {}

#[utoipa::path(post, path = "/api/v1/auth/totp/disable", tag = "totp", security(("bearerAuth" = [])),
    request_body = TotpDisableRequest,
    responses(
        (status = 204, description = "Disabled"),
        (status = 400, description = "Wrong password or code, malformed body", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Admins of an organization requiring 2FA; `session_required`", body = ErrorBody),
        (status = 409, description = "TOTP not enabled", body = ErrorBody)))]
fn totp_disable() {}

#[utoipa::path(get, path = "/api/v1/org", tag = "org", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    responses(
        (status = 200, description = "The caller's organization", body = Org),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Account restricted", body = ErrorBody)))]
fn get_org() {}

#[utoipa::path(patch, path = "/api/v1/org", tag = "org", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    request_body = UpdateOrg,
    responses(
        (status = 200, description = "Updated (admins)", body = Org),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody)))]
fn update_org() {}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(
        ("after" = Option<Uuid>, Query, description = "Cursor: `nextAfter` of the previous page"),
        ("limit" = Option<u32>, Query, description = "1..500, default 100")),
    responses(
        (status = 200, description = "One page (managers, admins)", body = UserPage),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low", body = ErrorBody)))]
fn list_users() {}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created (admins)", body = CreatedUser),
        (status = 400, description = "Bad email, `weak_password`, malformed body", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 409, description = "Email taken", body = ErrorBody)))]
fn create_user() {}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The user (managers, admins)", body = User),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low", body = ErrorBody),
        (status = 404, description = "No such user in the organization", body = ErrorBody)))]
fn get_user() {}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    request_body = UpdateUser,
    responses(
        (status = 200, description = "Updated (admins; not yourself)", body = User),
        (status = 400, description = "Bad id or body", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Changing yourself", body = ErrorBody)))]
fn update_user() {}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 204, description = "Deleted with its sessions, keys and recovery codes"),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Deleting yourself", body = ErrorBody)))]
fn delete_user() {}

#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(
        ("after" = Option<Uuid>, Query, description = "Cursor"),
        ("limit" = Option<u32>, Query, description = "1..500, default 100")),
    responses(
        (status = 200, description = "Managers/admins: every key of the organization; others: their own", body = ApiKeyPage),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody)))]
fn list_api_keys() {}

#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created; `key` shown once (managers, admins)", body = ApiKeyWithSecret),
        (status = 400, description = "Bad name or expiry", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low, or a role above the creator's", body = ErrorBody)))]
fn create_api_key() {}

#[utoipa::path(get, path = "/api/v1/api-keys/{id}", tag = "api-keys", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Key id")),
    responses(
        (status = 200, description = "The key with usage", body = ApiKey),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 404, description = "No such key visible to the caller", body = ErrorBody)))]
fn get_api_key() {}

#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Key id")),
    responses(
        (status = 204, description = "Revoked (permanent)"),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Viewers", body = ErrorBody),
        (status = 404, description = "No such key visible to the caller", body = ErrorBody)))]
fn revoke_api_key() {}

#[utoipa::path(post, path = "/api/v1/api-keys/{id}/rotate", tag = "api-keys", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Key id")),
    responses(
        (status = 200, description = "New secret (shown once); the old one is dead", body = ApiKeyWithSecret),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Viewers", body = ErrorBody),
        (status = 404, description = "No such key visible to the caller", body = ErrorBody),
        (status = 409, description = "Revoked or expired", body = ErrorBody)))]
fn rotate_api_key() {}

#[utoipa::path(get, path = "/api/v1/audit/entries", tag = "audit", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(
        ("after" = Option<Uuid>, Query, description = "Cursor"),
        ("limit" = Option<u32>, Query, description = "1..500, default 100")),
    responses(
        (status = 200, description = "Security events of the organization (managers, admins)", body = AuditPage),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low", body = ErrorBody)))]
fn audit_entries() {}

// ----- the document -----

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT access token (EdDSA) or aim_live_ API key")
                    .build(),
            ),
        );
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKeyScheme::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "aim_live_ API key",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "AIM server API",
        description = "Agent Identity Management: users, sessions, API keys, TOTP, RBAC. Errors are always `{\"error\": code, \"message\": text}`; roles per route are in docs/server.md.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        health, ready, openapi_json,
        login, refresh, logout, jwks, me, change_password,
        totp_enroll, totp_confirm, totp_disable,
        get_org, update_org,
        list_users, create_user, get_user, update_user, delete_user,
        list_api_keys, create_api_key, get_api_key, revoke_api_key, rotate_api_key,
        audit_entries,
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Login, tokens, account self-service"),
        (name = "totp", description = "RFC 6238 second factor"),
        (name = "org", description = "The caller's organization"),
        (name = "users", description = "Users of the organization"),
        (name = "api-keys", description = "aim_live_ API keys"),
        (name = "audit", description = "Security events"),
        (name = "operations", description = "Health, readiness, this document"),
    )
)]
struct ApiDoc;

/// The OpenAPI document (built once; the version field reads the crate version).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// `GET /api/v1/openapi.json` (public: the document describes the API, not any data).
pub async fn serve() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let body = JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".to_string())
    });
    ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response()
}
