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
    /// `strict` (default of new organizations) or `monitoring`.
    #[serde(rename = "enforcementMode")]
    pub enforcement_mode: String,
    pub sdk: SdkSettings,
    /// RFC 3339.
    pub created_at: String,
}

/// aim-sdk compatibility settings of the organization (docs/COMPATIBILITY.md).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SdkSettings {
    /// Whether aim-sdk registration may generate the agent's key pair on the server (default
    /// true). Audited as `org.sdk_settings_changed`.
    pub server_generated_keys: bool,
    /// `grant` (default: a manager/admin key's declared capabilities are granted) or `request`
    /// (always the approval queue).
    pub declared_capabilities: String,
}

#[derive(Serialize, ToSchema)]
pub struct UpdateOrg {
    #[serde(rename = "require2faForAdmins")]
    pub require_2fa_for_admins: Option<bool>,
    /// `strict` or `monitoring` (audited as `org.enforcement_mode_changed`).
    #[serde(rename = "enforcementMode")]
    pub enforcement_mode: Option<String>,
    /// Each field optional.
    pub sdk: Option<SdkSettings>,
}

/// A policy source to save or validate.
#[derive(Serialize, ToSchema)]
pub struct PolicySourceBody {
    /// `cedar` or `governance_yaml`.
    pub language: String,
    /// At most 256 KiB.
    pub source: String,
}

/// A capability to grant.
#[derive(Serialize, ToSchema)]
pub struct GrantBody {
    /// `[domain/]namespace:action` or `namespace:*`.
    pub capability: String,
}

/// An agent's request for a capability.
#[derive(Serialize, ToSchema)]
pub struct CapabilityRequestBody {
    pub capability: String,
    /// Why the agent needs it (1 to 1000 characters).
    pub reason: String,
}

/// An alert route (creation: `name` and `channel` required; update: every field optional).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertRouteBody {
    pub name: Option<String>,
    /// `webhook` or `email`.
    pub channel: Option<String>,
    /// `low`, `medium` (default), `high` or `critical`: alerts of this severity or higher.
    pub min_severity: Option<String>,
    pub enabled: Option<bool>,
    /// Webhook URL (`https://`, or `http://` with `alert_webhook_allow_http`); public addresses
    /// only unless `alert_webhook_allow_private`.
    pub url: Option<String>,
    /// Email recipients (1-20).
    pub to: Option<Vec<String>>,
    /// Webhook HMAC secret, 32-512 characters; generated when absent at creation.
    pub secret: Option<String>,
}

/// Registration of an MCP server.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct McpServerBody {
    /// Unique in the organization, 1-200 characters.
    pub name: String,
    /// Base64 of the server's 32-byte Ed25519 public key.
    pub public_key: Option<String>,
    /// A manifest signed by that key (`opena2a mcp sign-manifest`), pinned at once.
    pub signed_manifest: Option<serde_json::Value>,
}

/// A new pin: exactly one of the two.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct McpPinBody {
    /// A canonical manifest (`opena2a mcp scan --json`).
    pub manifest: Option<serde_json::Value>,
    /// A manifest signed by the server's registered key.
    pub signed_manifest: Option<serde_json::Value>,
}

/// An agent's attestation of an MCP server.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct McpAttestationBody {
    /// The server's id, or
    pub server_id: Option<Uuid>,
    /// its name in the organization (exactly one of the two).
    pub server_name: Option<String>,
    /// The canonical manifest the agent saw; the server hashes it and compares with the pin.
    pub manifest: serde_json::Value,
}

/// An optional note on a decision.
#[derive(Serialize, ToSchema)]
pub struct DecisionNote {
    /// At most 1000 characters.
    pub note: Option<String>,
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

// ----- schemas: verifiable audit log -----

/// A signed checkpoint (docs/server-audit.md gives the exact signed bytes).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditCheckpoint {
    pub tree_size: u64,
    /// Lowercase hex RFC 9162 root.
    pub root_hash: String,
    /// RFC 3339.
    pub timestamp: String,
    pub key_id: String,
    /// Base64 of the organization log key (Ed25519, 32 bytes).
    pub public_key: String,
    /// Base64 Ed25519 signature.
    pub signature: String,
}

/// Server-side recomputation of the chain.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditVerification {
    pub ok: bool,
    pub entries: u64,
    pub head_size: u64,
    pub root_hash: String,
    pub checkpoint: Option<AuditCheckpoint>,
    /// The first problem found (kind, seq, message), if any.
    #[schema(value_type = Option<Object>)]
    pub problem: Option<serde_json::Value>,
}

/// RFC 9162 inclusion proof.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub leaf_hash: String,
    pub audit_path: Vec<String>,
}

/// RFC 9162 consistency proof.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProof {
    pub from_size: u64,
    pub to_size: u64,
    pub proof: Vec<String>,
}

// ----- schemas: agents -----

/// Agent lifecycle state.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    Pending,
    Active,
    Suspended,
    Revoked,
}

/// An agent (docs/agents.md).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    /// Self-certifying `aim_…` id derived from the registration key.
    pub id: String,
    /// `did:web` of the agent.
    pub did: String,
    pub name: String,
    pub status: AgentStatus,
    /// Base64 of the current raw Ed25519 public key.
    pub public_key: String,
    pub key_version: u32,
    /// End of the previous key's grace period after a rotation (RFC 3339), while it lasts.
    pub previous_key_valid_until: Option<String>,
    pub capabilities: Vec<String>,
    pub owner_id: Option<Uuid>,
    pub created_at: String,
    pub updated_at: String,
    pub verified_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentPage {
    pub items: Vec<Agent>,
    pub next_after: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterAgentRequest {
    pub name: String,
    /// Base64 of the 32 raw public key bytes (generated on the agent's machine).
    pub public_key: String,
    pub capabilities: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct LifecycleRequest {
    pub reason: Option<String>,
}

/// AIP challenge (draft-fane-opena2a-aip §6.1 shape).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AipChallenge {
    pub challenge: String,
    pub agent_did: String,
    pub nonce: String,
    pub issued_at: String,
    pub expires_at: String,
    pub issuer_did: String,
}

/// Verdict of an AIP response: `{verified: true, agent}` or
/// `{verified: false, error: "challenge_rejected", code, message}`.
#[derive(Serialize, ToSchema)]
pub struct AipVerdict {
    pub verified: bool,
    pub agent: Option<Agent>,
    /// AIP reason code when rejected (SIGNATURE_INVALID, UNTRUSTED_KEY, CHALLENGE_EXPIRED,
    /// NONCE_REPLAY, UNTRUSTED_ISSUER, MALFORMED).
    pub code: Option<String>,
    pub message: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotateKeyRequest {
    /// Base64 of the new raw public key.
    pub new_public_key: String,
    /// Base64 signature by the new key over the rotation statement (docs/agents.md).
    pub proof: String,
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

const AGENT_SIG: &str = "agentSignature";

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    responses(
        (status = 200, description = "Recomputed chain and Merkle root (managers, admins)", body = AuditVerification),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low", body = ErrorBody)))]
fn audit_verify() {}

#[utoipa::path(get, path = "/api/v1/audit/checkpoint", tag = "audit", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    responses(
        (status = 200, description = "Signed checkpoint covering the whole log", body = AuditCheckpoint),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low", body = ErrorBody)))]
fn audit_checkpoint() {}

#[utoipa::path(get, path = "/api/v1/audit/proof/inclusion", tag = "audit", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("index" = u64, Query, description = "Leaf index (= seq)"), ("treeSize" = u64, Query, description = "Tree size, > index")),
    responses(
        (status = 200, description = "RFC 9162 inclusion proof", body = InclusionProof),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low", body = ErrorBody)))]
fn audit_inclusion() {}

#[utoipa::path(get, path = "/api/v1/audit/proof/consistency", tag = "audit", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("from" = u64, Query, description = "Old size"), ("to" = u64, Query, description = "New size, ≥ from")),
    responses(
        (status = 200, description = "RFC 9162 consistency proof", body = ConsistencyProof),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low", body = ErrorBody)))]
fn audit_consistency() {}

#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("after" = Option<String>, Query, description = "Agent id to continue after"), ("limit" = Option<u32>, Query, description = "Page size")),
    responses(
        (status = 200, description = "Agents of the organization", body = AgentPage),
        (status = 401, description = "No or bad credential", body = ErrorBody)))]
fn list_agents() {}

#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    request_body = RegisterAgentRequest,
    responses(
        (status = 201, description = "Registered, status pending until it answers a challenge", body = Agent),
        (status = 400, description = "Bad name, key or capability", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low", body = ErrorBody),
        (status = 409, description = "Key or name already registered", body = ErrorBody)))]
fn register_agent() {}

#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "agents", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The agent with its key history", body = Agent),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 404, description = "No such agent in the organization", body = ErrorBody)))]
fn get_agent() {}

#[utoipa::path(post, path = "/api/v1/agents/{id}/suspend", tag = "agents", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Agent id")), request_body = LifecycleRequest,
    responses(
        (status = 200, description = "active → suspended", body = Agent),
        (status = 403, description = "Not allowed for this role or owner", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "Not in a state that can be suspended", body = ErrorBody)))]
fn suspend_agent() {}

#[utoipa::path(post, path = "/api/v1/agents/{id}/activate", tag = "agents", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Agent id")), request_body = LifecycleRequest,
    responses(
        (status = 200, description = "suspended → active (managers, admins)", body = Agent),
        (status = 403, description = "Role too low", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "Not suspended", body = ErrorBody)))]
fn activate_agent() {}

#[utoipa::path(post, path = "/api/v1/agents/{id}/revoke", tag = "agents", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Agent id")), request_body = LifecycleRequest,
    responses(
        (status = 200, description = "→ revoked (final)", body = Agent),
        (status = 403, description = "Not allowed for this role or owner", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "Already revoked", body = ErrorBody)))]
fn revoke_agent() {}

#[utoipa::path(post, path = "/api/v1/agents/{id}/challenge", tag = "agents", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "A single-use AIP challenge", body = AipChallenge),
        (status = 403, description = "Not allowed for this role or owner", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "Revoked agent", body = ErrorBody)))]
fn challenge_agent() {}

#[utoipa::path(post, path = "/api/v1/agents/{id}/verify", tag = "agents", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Agent id")),
    request_body(content = Object, description = "The agent's signed AIP response"),
    responses(
        (status = 200, description = "Verified; a pending agent becomes active", body = AipVerdict),
        (status = 400, description = "Malformed response", body = ErrorBody),
        (status = 401, description = "Rejected with an AIP reason code", body = AipVerdict),
        (status = 404, description = "No such agent", body = ErrorBody)))]
fn verify_agent() {}

#[utoipa::path(post, path = "/api/v1/agents/{id}/heartbeat", tag = "agents", security(("agentSignature" = [])),
    params(("id" = String, Path, description = "Agent id (must equal X-AIM-Agent-Id)")),
    responses(
        (status = 200, description = "The signed request verified; the agent as the server sees it", body = Agent),
        (status = 400, description = "Malformed signing headers", body = ErrorBody),
        (status = 401, description = "Bad signature, unknown or inactive agent, stale timestamp, replayed nonce", body = ErrorBody)))]
fn agent_heartbeat() {}

#[utoipa::path(post, path = "/api/v1/agents/{id}/rotate-key", tag = "agents", security(("agentSignature" = [])),
    params(("id" = String, Path, description = "Agent id")), request_body = RotateKeyRequest,
    responses(
        (status = 200, description = "Rotated; the old key stays valid for the grace period", body = Agent),
        (status = 400, description = "Bad key or proof", body = ErrorBody),
        (status = 401, description = "Request not signed by the current key", body = ErrorBody)))]
fn agent_rotate_key() {}

#[utoipa::path(get, path = "/agents/{id}/did.json", tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "did:web DID document", content_type = "application/json"),
        (status = 404, description = "No such agent", body = ErrorBody)))]
fn agent_did_document() {}

#[utoipa::path(get, path = "/.well-known/aip", tag = "agents",
    responses((status = 200, description = "AIP provider metadata", content_type = "application/json")))]
fn well_known_aip() {}

#[utoipa::path(get, path = "/api/v1/agents/{id}/trust", tag = "agents", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "Trust report {agentId, score, level, confidence, factors, computedAt} (docs/TRUST.md)", content_type = "application/json"),
        (status = 400, description = "Malformed agent id", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 404, description = "No such agent in the organization", body = ErrorBody)))]
fn agent_trust() {}

#[utoipa::path(get, path = "/api/v1/agents/{id}/trust/history", tag = "agents", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Agent id"),
        ("before" = Option<String>, Query, description = "Entries older than this entry id (the previous page's nextBefore)"),
        ("limit" = Option<u32>, Query, description = "1 to 500 (default 100)")),
    responses(
        (status = 200, description = "Trust changes newest first {items: [{id, agentId, at, previous, new, delta, level, reason, actor}], nextBefore} (docs/TRUST.md)", content_type = "application/json"),
        (status = 400, description = "Malformed agent id, before or limit", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 404, description = "No such agent in the organization", body = ErrorBody)))]
fn agent_trust_history() {}

#[utoipa::path(get, path = "/api/v1/agents/{id}/credential", tag = "agents", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "ATX v1.1 credential signed by the organization key (docs/credentials.md)", content_type = "application/json"),
        (status = 400, description = "Malformed agent id", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low, or a member asking for another's agent", body = ErrorBody),
        (status = 404, description = "No such agent in the organization", body = ErrorBody),
        (status = 409, description = "Agent not active, never verified, or trust unscored", body = ErrorBody)))]
fn agent_credential() {}

#[utoipa::path(post, path = "/api/v1/agents/{id}/actions/verify", tag = "actions", security(("agentSignature" = [])),
    params(("id" = String, Path, description = "Agent id (must equal X-AIM-Agent-Id)")),
    request_body(content = Object, description = "{capability, resource, context?: {riskLevel?, mcpServer?, …}}"),
    responses(
        (status = 200, description = "The decision {id, status: approved|denied|pending, reason, reasonCodes, matchedPolicies, approvers, obligations, policyVersion, enforcementMode, alert, riskLevel, trustScore, trustThreshold, expiresAt}; a denial is a 200 too", content_type = "application/json"),
        (status = 400, description = "Malformed capability, resource, context or signing headers", body = ErrorBody),
        (status = 401, description = "Bad signature, unknown agent, stale timestamp, replayed nonce", body = ErrorBody),
        (status = 403, description = "Agent pending, suspended or revoked, or id mismatch", body = ErrorBody),
        (status = 429, description = "Rate limited (recorded as a denial; Retry-After)", content_type = "application/json")))]
fn verify_action() {}

#[utoipa::path(get, path = "/api/v1/agents/{id}/actions/{action_id}", tag = "actions", security(("agentSignature" = [])),
    params(("id" = String, Path, description = "Agent id"), ("action_id" = String, Path, description = "Decision id")),
    responses(
        (status = 200, description = "The decision as it is now (a pending one past its deadline reads expired)", content_type = "application/json"),
        (status = 401, description = "Bad signature or replay", body = ErrorBody),
        (status = 404, description = "No such decision of this agent", body = ErrorBody)))]
fn agent_get_action() {}

#[utoipa::path(post, path = "/api/v1/agents/{id}/actions/{action_id}/result", tag = "actions", security(("agentSignature" = [])),
    params(("id" = String, Path, description = "Agent id"), ("action_id" = String, Path, description = "Decision id")),
    request_body(content = Object, description = "{result: success|failure, detail?}"),
    responses(
        (status = 200, description = "Recorded; the decision with its result", content_type = "application/json"),
        (status = 400, description = "Malformed result", body = ErrorBody),
        (status = 404, description = "No such decision of this agent", body = ErrorBody),
        (status = 409, description = "Not approved, or already reported", body = ErrorBody)))]
fn report_action_result() {}

#[utoipa::path(get, path = "/api/v1/actions", tag = "actions", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("status" = Option<String>, Query, description = "approved|denied|pending|expired"),
        ("agentId" = Option<String>, Query, description = "Only this agent's decisions"),
        ("before" = Option<String>, Query, description = "Keyset cursor (the `next` of the previous page)"),
        ("limit" = Option<u32>, Query, description = "1-500, default 100")),
    responses(
        (status = 200, description = "{actions: [...], next} newest first", content_type = "application/json"),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody)))]
fn list_actions() {}

#[utoipa::path(get, path = "/api/v1/actions/{id}", tag = "actions", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Decision id")),
    responses(
        (status = 200, description = "The decision", content_type = "application/json"),
        (status = 404, description = "No such decision in the organization", body = ErrorBody)))]
fn get_action() {}

#[utoipa::path(post, path = "/api/v1/actions/{id}/approve", tag = "actions", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Decision id")),
    request_body(content = Object, description = "{note?}"),
    responses(
        (status = 200, description = "Approved; usable until expiresAt", content_type = "application/json"),
        (status = 403, description = "Role too low, the agent's owner (separation of duties), or not a listed approver", body = ErrorBody),
        (status = 404, description = "No such decision", body = ErrorBody),
        (status = 409, description = "Not pending, or the approval deadline passed", body = ErrorBody)))]
fn approve_action() {}

#[utoipa::path(post, path = "/api/v1/actions/{id}/deny", tag = "actions", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Decision id")),
    request_body(content = Object, description = "{note?}"),
    responses(
        (status = 200, description = "Denied", content_type = "application/json"),
        (status = 403, description = "Role too low, the agent's owner, or not a listed approver", body = ErrorBody),
        (status = 404, description = "No such decision", body = ErrorBody),
        (status = 409, description = "Not pending, or the deadline passed", body = ErrorBody)))]
fn deny_action() {}

#[utoipa::path(get, path = "/metrics", tag = "operations", security((), ("bearerAuth" = [])),
    responses(
        (status = 200, description = "Prometheus text format (loopback peers, or the AIM_METRICS_TOKEN bearer)", content_type = "text/plain"),
        (status = 404, description = "Not allowed for this peer")))]
fn metrics() {}

// ----- governance: policies, grants, capability requests -----

#[utoipa::path(get, path = "/api/v1/policies", tag = "governance", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    responses(
        (status = 200, description = "The set in force {version, language, source, digest, policies, warnings, createdBy, createdAt, default}; version 0 = the built-in default", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody)))]
fn get_policies() {}

#[utoipa::path(put, path = "/api/v1/policies", tag = "governance", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    request_body = PolicySourceBody,
    responses(
        (status = 201, description = "Stored as the next version, now in force", content_type = "application/json"),
        (status = 400, description = "`invalid_policy` with Cedar's/the YAML parser's message; malformed body", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 409, description = "`policy_conflict`: saved concurrently, retry", body = ErrorBody),
        (status = 413, description = "`policy_too_large` (source over 256 KiB)", body = ErrorBody)))]
fn put_policies() {}

#[utoipa::path(post, path = "/api/v1/policies/validate", tag = "governance", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    request_body = PolicySourceBody,
    responses(
        (status = 200, description = "Dry run: {valid: true, digest, policies, warnings}; nothing stored", content_type = "application/json"),
        (status = 400, description = "`invalid_policy` with the compiler's message", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody),
        (status = 413, description = "`policy_too_large`", body = ErrorBody)))]
fn validate_policies() {}

#[utoipa::path(get, path = "/api/v1/policies/versions", tag = "governance", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(
        ("before" = Option<i64>, Query, description = "Versions below this one"),
        ("limit" = Option<u32>, Query, description = "1..500, default 50")),
    responses(
        (status = 200, description = "{items: [{version, language, digest, createdBy, createdAt}], nextBefore}, newest first", content_type = "application/json"),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody)))]
fn list_policy_versions() {}

#[utoipa::path(get, path = "/api/v1/policies/versions/{version}", tag = "governance", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("version" = i64, Path, description = "Version number (1, 2, …)")),
    responses(
        (status = 200, description = "The stored version with its source", content_type = "application/json"),
        (status = 400, description = "Not a positive integer", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody),
        (status = 404, description = "No such version", body = ErrorBody)))]
fn get_policy_version() {}

#[utoipa::path(get, path = "/api/v1/agents/{id}/capabilities", tag = "governance", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "{agentId, grants, pendingRequests}", content_type = "application/json"),
        (status = 400, description = "Malformed agent id", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 404, description = "No such agent in the organization", body = ErrorBody)))]
fn list_agent_capabilities() {}

#[utoipa::path(post, path = "/api/v1/agents/{id}/capabilities", tag = "governance", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Agent id")), request_body = GrantBody,
    responses(
        (status = 200, description = "{agentId, grants, changed}; `changed: false` when already held (nothing recorded)", content_type = "application/json"),
        (status = 400, description = "`invalid_capability`; malformed body", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody),
        (status = 404, description = "No such agent in the organization", body = ErrorBody),
        (status = 409, description = "`agent_revoked`", body = ErrorBody)))]
fn grant_agent_capability() {}

#[utoipa::path(delete, path = "/api/v1/agents/{id}/capabilities/{capability}", tag = "governance", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Agent id"), ("capability" = String, Path, description = "The grant, URL-encoded")),
    responses(
        (status = 200, description = "{agentId, grants, changed: true}", content_type = "application/json"),
        (status = 400, description = "`invalid_capability`", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody),
        (status = 404, description = "No such agent, or `not_granted`", body = ErrorBody),
        (status = 409, description = "`agent_revoked`", body = ErrorBody)))]
fn revoke_agent_capability() {}

#[utoipa::path(post, path = "/api/v1/agents/{id}/capability-requests", tag = "governance", security(("agentSignature" = [])),
    params(("id" = String, Path, description = "Agent id (must equal X-AIM-Agent-Id)")), request_body = CapabilityRequestBody,
    responses(
        (status = 201, description = "{id, status: \"pending\", capability}", content_type = "application/json"),
        (status = 400, description = "`invalid_capability`, missing or too long reason, malformed headers", body = ErrorBody),
        (status = 401, description = "Bad signature, stale timestamp, `replayed_request`", body = ErrorBody),
        (status = 403, description = "Agent not active, `agent_mismatch`", body = ErrorBody),
        (status = 409, description = "`already_granted` or `request_pending`", body = ErrorBody)))]
fn request_capability() {}

#[utoipa::path(get, path = "/api/v1/capability-requests", tag = "governance", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(
        ("status" = Option<String>, Query, description = "pending, approved or denied"),
        ("agentId" = Option<String>, Query, description = "One agent's requests"),
        ("before" = Option<Uuid>, Query, description = "Keyset cursor (nextBefore)"),
        ("limit" = Option<u32>, Query, description = "1..500, default 100")),
    responses(
        (status = 200, description = "{items, nextBefore}, newest first", content_type = "application/json"),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody)))]
fn list_capability_requests() {}

#[utoipa::path(get, path = "/api/v1/capability-requests/{id}", tag = "governance", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request", content_type = "application/json"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody),
        (status = 404, description = "No such request in the organization", body = ErrorBody)))]
fn get_capability_request() {}

#[utoipa::path(post, path = "/api/v1/capability-requests/{id}/approve", tag = "governance", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Request id")), request_body = DecisionNote,
    responses(
        (status = 200, description = "Approved and granted: the request plus the agent's `grants`", content_type = "application/json"),
        (status = 400, description = "Malformed id or body", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low; `separation_of_duties` (the agent's owner or the requester)", body = ErrorBody),
        (status = 404, description = "No such request in the organization", body = ErrorBody),
        (status = 409, description = "`not_pending`, `agent_revoked`", body = ErrorBody)))]
fn approve_capability_request() {}

#[utoipa::path(post, path = "/api/v1/capability-requests/{id}/deny", tag = "governance", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Request id")), request_body = DecisionNote,
    responses(
        (status = 200, description = "Denied: the request", content_type = "application/json"),
        (status = 400, description = "Malformed id or body", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody),
        (status = 404, description = "No such request in the organization", body = ErrorBody),
        (status = 409, description = "`not_pending`", body = ErrorBody)))]
fn deny_capability_request() {}

#[utoipa::path(get, path = "/api/v1/anomalies", tag = "monitoring", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("agentId" = Option<String>, Query, description = "Only this agent"), ("before" = Option<Uuid>, Query, description = "Keyset cursor (the previous page's `next`)"), ("limit" = Option<u32>, Query, description = "1-500, default 100")),
    responses(
        (status = 200, description = "{anomalies: [{id, agentId, detector, severity, weight, at, statistic, baseline, threshold, message, eventSeq}], next}, newest first", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 400, description = "Malformed id, query or body", body = ErrorBody)))]
fn list_anomalies() {}

#[utoipa::path(get, path = "/api/v1/incidents", tag = "monitoring", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("state" = Option<String>, Query, description = "open, acknowledged or resolved"), ("agentId" = Option<String>, Query, description = "Only this agent"), ("before" = Option<Uuid>, Query, description = "Keyset cursor (the previous page's `next`)"), ("limit" = Option<u32>, Query, description = "1-500, default 100")),
    responses(
        (status = 200, description = "{incidents: [{id, agentId, rule, severity, state, firstAt, lastAt, members, summary, updatedAt, updatedBy}], next}", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 400, description = "Malformed id, query or body", body = ErrorBody)))]
fn list_incidents() {}

#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "monitoring", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Id")),
    responses(
        (status = 200, description = "The incident", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 400, description = "Malformed id, query or body", body = ErrorBody),
        (status = 404, description = "No such incident in the organization", body = ErrorBody)))]
fn get_incident() {}

#[utoipa::path(post, path = "/api/v1/incidents/{id}/acknowledge", tag = "monitoring", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Id")), request_body = DecisionNote,
    responses(
        (status = 200, description = "The incident, acknowledged (audited)", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody),
        (status = 400, description = "Malformed id, query or body", body = ErrorBody),
        (status = 404, description = "No such incident in the organization", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (states only go forward)", body = ErrorBody)))]
fn acknowledge_incident() {}

#[utoipa::path(post, path = "/api/v1/incidents/{id}/resolve", tag = "monitoring", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Id")), request_body = DecisionNote,
    responses(
        (status = 200, description = "The incident, resolved (audited)", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody),
        (status = 400, description = "Malformed id, query or body", body = ErrorBody),
        (status = 404, description = "No such incident in the organization", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (states only go forward)", body = ErrorBody)))]
fn resolve_incident() {}

#[utoipa::path(get, path = "/api/v1/alerts", tag = "monitoring", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("state" = Option<String>, Query, description = "open, acknowledged or resolved"), ("agentId" = Option<String>, Query, description = "Only this agent"), ("before" = Option<Uuid>, Query, description = "Keyset cursor (the previous page's `next`)"), ("limit" = Option<u32>, Query, description = "1-500, default 100")),
    responses(
        (status = 200, description = "{alerts: [{id, severity, kind, title, agentId, details, state, createdAt, updatedAt, updatedBy}], next}", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 400, description = "Malformed id, query or body", body = ErrorBody)))]
fn list_alerts() {}

#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "monitoring", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Id")),
    responses(
        (status = 200, description = "The alert with `deliveries: [{id, routeId, status, attempts, nextAttemptAt, lastError, lastHttpStatus, log}]`", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 400, description = "Malformed id, query or body", body = ErrorBody),
        (status = 404, description = "No such alert in the organization", body = ErrorBody)))]
fn get_alert() {}

#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "monitoring", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Id")), request_body = DecisionNote,
    responses(
        (status = 200, description = "The alert, acknowledged (audited)", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody),
        (status = 400, description = "Malformed id, query or body", body = ErrorBody),
        (status = 404, description = "No such alert in the organization", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (states only go forward)", body = ErrorBody)))]
fn acknowledge_alert() {}

#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", tag = "monitoring", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Id")), request_body = DecisionNote,
    responses(
        (status = 200, description = "The alert, resolved (audited)", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody),
        (status = 400, description = "Malformed id, query or body", body = ErrorBody),
        (status = 404, description = "No such alert in the organization", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (states only go forward)", body = ErrorBody)))]
fn resolve_alert() {}

#[utoipa::path(get, path = "/api/v1/alert-routes", tag = "monitoring", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    responses(
        (status = 200, description = "{routes: [{id, name, minSeverity, enabled, channel, target, hasSecret, createdAt, updatedAt}]} (secrets never shown)", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody)))]
fn list_alert_routes() {}

#[utoipa::path(post, path = "/api/v1/alert-routes", tag = "monitoring", security(("bearerAuth" = []), ("apiKeyHeader" = [])), request_body = AlertRouteBody,
    responses(
        (status = 201, description = "The route; a webhook route carries its `secret` in this answer only", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (admins)", body = ErrorBody),
        (status = 400, description = "`invalid_webhook_url`; bad name, severity, recipients or secret", body = ErrorBody),
        (status = 409, description = "`smtp_not_configured` (email route without an SMTP relay)", body = ErrorBody)))]
fn create_alert_route() {}

#[utoipa::path(get, path = "/api/v1/alert-routes/{id}", tag = "monitoring", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Id")),
    responses(
        (status = 200, description = "The route (no secret)", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody),
        (status = 400, description = "Malformed id, query or body", body = ErrorBody),
        (status = 404, description = "No such route in the organization", body = ErrorBody)))]
fn get_alert_route() {}

#[utoipa::path(patch, path = "/api/v1/alert-routes/{id}", tag = "monitoring", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Id")), request_body = AlertRouteBody,
    responses(
        (status = 200, description = "The route as changed (the channel cannot change)", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (admins)", body = ErrorBody),
        (status = 400, description = "Malformed id, query or body", body = ErrorBody),
        (status = 404, description = "No such route in the organization", body = ErrorBody)))]
fn update_alert_route() {}

#[utoipa::path(delete, path = "/api/v1/alert-routes/{id}", tag = "monitoring", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Id")),
    responses(
        (status = 204, description = "Deleted with its pending deliveries"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (admins)", body = ErrorBody),
        (status = 400, description = "Malformed id, query or body", body = ErrorBody),
        (status = 404, description = "No such route in the organization", body = ErrorBody)))]
fn delete_alert_route() {}

#[utoipa::path(post, path = "/api/v1/alert-routes/{id}/test", tag = "monitoring", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Id")),
    responses(
        (status = 200, description = "{delivered, httpStatus, error}: one test alert sent now", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (admins)", body = ErrorBody),
        (status = 400, description = "Malformed id, query or body", body = ErrorBody),
        (status = 404, description = "No such route in the organization", body = ErrorBody)))]
fn test_alert_route() {}

#[utoipa::path(get, path = "/api/v1/mcp-servers", tag = "mcp", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    responses(
        (status = 200, description = "{servers: [{id, name, publicKey, pinnedHash, pinnedSigned, pinnedAt, pinnedBy, drift, confidence, attesters, matchingAttesters, createdAt}]}", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody)))]
fn list_mcp_servers() {}

#[utoipa::path(post, path = "/api/v1/mcp-servers", tag = "mcp", security(("bearerAuth" = []), ("apiKeyHeader" = [])), request_body = McpServerBody,
    responses(
        (status = 201, description = "The server; a valid signed manifest is pinned at once", content_type = "application/json"),
        (status = 400, description = "Bad name or key; `invalid_signed_manifest` (with the reasons)", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody),
        (status = 409, description = "The name is taken in the organization", body = ErrorBody)))]
fn register_mcp_server() {}

#[utoipa::path(get, path = "/api/v1/mcp-servers/{id}", tag = "mcp", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Server id")),
    responses(
        (status = 200, description = "The server with its confidence and `pinnedManifest`", content_type = "application/json"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 404, description = "No such server in the organization", body = ErrorBody)))]
fn get_mcp_server() {}

#[utoipa::path(put, path = "/api/v1/mcp-servers/{id}/pin", tag = "mcp", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = Uuid, Path, description = "Server id")), request_body = McpPinBody,
    responses(
        (status = 200, description = "The server with the new pin (drift cleared)", content_type = "application/json"),
        (status = 400, description = "`invalid_manifest`, `invalid_signed_manifest`, or not exactly one of the two", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role too low (managers, admins)", body = ErrorBody),
        (status = 404, description = "No such server in the organization", body = ErrorBody)))]
fn pin_mcp_server() {}

#[utoipa::path(post, path = "/api/v1/agents/{id}/mcp-attestations", tag = "mcp",
    params(("id" = String, Path, description = "Agent id (the signer)")), request_body = McpAttestationBody,
    responses(
        (status = 201, description = "{id, serverId, manifestHash, capabilities, matchesPin, drift, at}", content_type = "application/json"),
        (status = 400, description = "`invalid_manifest`; malformed body", body = ErrorBody),
        (status = 401, description = "Signature missing or invalid, or `replayed_request` (docs/agents.md)", body = ErrorBody),
        (status = 404, description = "No such MCP server in the agent's organization", body = ErrorBody)))]
fn attest_mcp_server() {}

#[utoipa::path(get, path = "/api/v1/agents/{id}/mcp-connections", tag = "mcp", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "{agentId, connections: [{serverId, serverName, uses, activeDays, firstUse, lastUse}]} over 30 days", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 404, description = "No such agent in the organization", body = ErrorBody)))]
fn agent_mcp_connections() {}

// ----- aim-sdk 2.0.3 compatibility (docs/COMPATIBILITY.md) -----

#[utoipa::path(post, path = "/api/v1/public/agents/register", tag = "aim-sdk", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    description = "aim-sdk registration. Credential: `X-AIM-API-Key` (or `X-API-Key`/Bearer). Body `{name, displayName?, description?, agentType?, version?, capabilities?, talksTo?, metadata?, tagIds?, publicKey?}` (unknown fields ignored). Without `publicKey` the server generates the key pair and returns `privateKey` once (`Cache-Control: no-store`), unless the organization turned this off.",
    responses(
        (status = 201, description = "{id, agentId, name, publicKey, privateKey?, status, trustScore, aimUrl, capabilities, pendingCapabilities, keyOrigin}", content_type = "application/json"),
        (status = 400, description = "Malformed body, name or capability", body = ErrorBody),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 403, description = "Role may not register agents, or `server_generated_keys_disabled`", body = ErrorBody),
        (status = 409, description = "Name or key already registered", body = ErrorBody)))]
fn sdk_register() {}

#[utoipa::path(get, path = "/api/v1/sdk-api/agents/{id}", tag = "aim-sdk", security(("bearerAuth" = []), ("apiKeyHeader" = [])),
    params(("id" = String, Path, description = "Agent id or agent name")),
    responses(
        (status = 200, description = "{id, name, status, trustScore, agent}", content_type = "application/json"),
        (status = 401, description = "No or bad credential", body = ErrorBody),
        (status = 404, description = "No such agent in the organization", body = ErrorBody)))]
fn sdk_get_agent() {}

#[utoipa::path(post, path = "/api/v1/sdk-api/verifications", tag = "aim-sdk",
    description = "Action verification signed in the body: `{agentId, capability, resource, context, timestamp, signature, publicKey}`; the signature covers Python's sorted json.dumps of {action_type, agent_id, context, resource, timestamp}. Same decision path as /api/v1/agents/{id}/actions/verify.",
    responses(
        (status = 200, description = "{id, status: approved|pending, enforcementMode, reason, expiresAt, …}", content_type = "application/json"),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Bad or missing signature, unknown agent, stale timestamp, `replayed_request`", body = ErrorBody),
        (status = 403, description = "Denied: {id, status: denied, denialReason, enforcementMode, …} (or the agent is not active)", content_type = "application/json"),
        (status = 429, description = "Rate limited (`Retry-After`), same body", content_type = "application/json")))]
fn sdk_verify() {}

#[utoipa::path(get, path = "/api/v1/sdk-api/verifications/{id}", tag = "aim-sdk",
    description = "Poll a decision. `X-AIM-Agent-ID`, `X-AIM-Timestamp`, `X-AIM-Signature` over `GET\\nPATH\\nAGENT_ID\\nTS` (ids lower-cased).",
    params(("id" = String, Path, description = "Decision id")),
    responses(
        (status = 200, description = "{id, status: approved|denied|pending, approvedBy, denialReason, enforcementMode, expiresAt}", content_type = "application/json"),
        (status = 401, description = "Bad or missing signature, stale timestamp, replay", body = ErrorBody),
        (status = 404, description = "No such decision of this agent", body = ErrorBody)))]
fn sdk_poll() {}

#[utoipa::path(post, path = "/api/v1/sdk-api/verifications/{id}/result", tag = "aim-sdk",
    description = "Outcome of an approved action, once, before the approval expires. aim-sdk sends it without a credential (recorded `authenticated: false`); with `X-API-Key` the key's user must manage the agent. Body `{result: success|failure, result_summary?, error_message?}` or `{success: bool, …}`.",
    params(("id" = String, Path, description = "Decision id")),
    responses(
        (status = 200, description = "{id, result, recorded: true}", content_type = "application/json"),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 404, description = "No such decision", body = ErrorBody),
        (status = 409, description = "`not_reportable` or `already_reported`", body = ErrorBody)))]
fn sdk_report_result() {}

#[utoipa::path(get, path = "/api/v1/sdk-api/agents/{id}/capabilities", tag = "aim-sdk",
    description = "The agent's grants. Agent-signed (`X-Agent-ID`, `X-Signature`, `X-Timestamp`, `X-Public-Key` over `METHOD\\nPATH?QUERY\\nTS[\\nBODY]`) or `X-API-Key` of a user who manages the agent.",
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "{agentId, capabilities: [{capabilityType, status}]}", content_type = "application/json"),
        (status = 401, description = "Bad or missing credential", body = ErrorBody)))]
fn sdk_list_capabilities() {}

#[utoipa::path(post, path = "/api/v1/sdk-api/agents/{id}/capabilities", tag = "aim-sdk",
    description = "The agent declares a capability (`{capabilityType}`): never a grant — a pending capability request. Same as …/capabilities/register.",
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "{status: granted} (already held) or {status: pending, requestId} (already pending)", content_type = "application/json"),
        (status = 201, description = "{status: pending, requestId}", content_type = "application/json"),
        (status = 400, description = "Malformed body or capability", body = ErrorBody),
        (status = 401, description = "Bad or missing credential", body = ErrorBody)))]
fn sdk_report_capability() {}

#[utoipa::path(post, path = "/api/v1/sdk-api/agents/{id}/capabilities/register", tag = "aim-sdk",
    description = "What `@perform_action` sends on first use: `{capabilityType, description, riskLevel}`. Never a grant — a pending capability request.",
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "{status: granted} (already held) or {status: pending, requestId} (already pending)", content_type = "application/json"),
        (status = 201, description = "{status: pending, requestId}", content_type = "application/json"),
        (status = 400, description = "Malformed body or capability", body = ErrorBody),
        (status = 401, description = "Bad or missing credential", body = ErrorBody)))]
fn sdk_declare_capability() {}

#[utoipa::path(get, path = "/api/v1/sdk-api/agents/{id}/capability-requests", tag = "aim-sdk",
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "{requests: [{id, capabilityType, status, reason, requestedAt, …}]}", content_type = "application/json"),
        (status = 401, description = "Bad or missing credential", body = ErrorBody)))]
fn sdk_list_capability_requests() {}

#[utoipa::path(post, path = "/api/v1/sdk-api/agents/{id}/capability-requests", tag = "aim-sdk",
    description = "`{capabilityType, reason, metadata?}` → a pending request for a manager's approval.",
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 201, description = "{id, agentId, capabilityType, reason, status: pending, requestedAt}", content_type = "application/json"),
        (status = 400, description = "Malformed body, capability or missing reason", body = ErrorBody),
        (status = 401, description = "Bad or missing credential", body = ErrorBody),
        (status = 409, description = "`already_granted` or `request_pending`", body = ErrorBody)))]
fn sdk_request_capability() {}

#[utoipa::path(get, path = "/api/v1/sdk-api/agents/{id}/mcp-servers", tag = "aim-sdk",
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "{mcpServers: [{id, name, pinned, drift, createdBy, createdAt}]}", content_type = "application/json"),
        (status = 401, description = "Bad or missing credential", body = ErrorBody)))]
fn sdk_list_mcp_servers() {}

#[utoipa::path(post, path = "/api/v1/sdk-api/agents/{id}/mcp-servers", tag = "aim-sdk",
    description = "Registers an MCP server by name, unpinned (`{name, url?, description?, version?, capabilities?, public_key?}`).",
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 201, description = "{id, name, url, status: registered, …}", content_type = "application/json"),
        (status = 400, description = "Malformed body or name; `mcp_server_ids` is not supported", body = ErrorBody),
        (status = 401, description = "Bad or missing credential", body = ErrorBody),
        (status = 409, description = "{error, message, existingId}", content_type = "application/json")))]
fn sdk_register_mcp_server() {}

#[utoipa::path(get, path = "/api/v1/sdk-api/agents/{id}/mcp-servers/by-name", tag = "aim-sdk",
    params(("id" = String, Path, description = "Agent id"), ("name" = String, Query, description = "Server name")),
    responses(
        (status = 200, description = "{id, name, hasCachedCapabilities, capabilities: tool names of the pinned manifest}", content_type = "application/json"),
        (status = 401, description = "Bad or missing credential", body = ErrorBody)))]
fn sdk_mcp_by_name() {}

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
            AGENT_SIG,
            SecurityScheme::ApiKey(ApiKeyScheme::Header(ApiKeyValue::with_description(
                "X-AIM-Signature",
                "Ed25519 signature of the agent over the request (with X-AIM-Agent-Id, X-AIM-Timestamp, X-AIM-Nonce; docs/agents.md)",
            ))),
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
        audit_entries, audit_verify, audit_checkpoint, audit_inclusion, audit_consistency,
        list_agents, register_agent, get_agent, suspend_agent, activate_agent, revoke_agent,
        challenge_agent, verify_agent, agent_heartbeat, agent_rotate_key, agent_did_document,
        well_known_aip, metrics, agent_trust, agent_trust_history, agent_credential,
        verify_action, agent_get_action, report_action_result, list_actions, get_action,
        approve_action, deny_action,
        get_policies, put_policies, validate_policies, list_policy_versions, get_policy_version,
        list_agent_capabilities, grant_agent_capability, revoke_agent_capability,
        request_capability, list_capability_requests, get_capability_request,
        approve_capability_request, deny_capability_request,
        list_anomalies, list_incidents, get_incident, acknowledge_incident, resolve_incident,
        list_alerts, get_alert, acknowledge_alert, resolve_alert,
        list_alert_routes, create_alert_route, get_alert_route, update_alert_route,
        delete_alert_route, test_alert_route,
        list_mcp_servers, register_mcp_server, get_mcp_server, pin_mcp_server, attest_mcp_server,
        agent_mcp_connections,
        sdk_register, sdk_get_agent, sdk_verify, sdk_poll, sdk_report_result,
        sdk_list_capabilities, sdk_report_capability, sdk_declare_capability,
        sdk_list_capability_requests, sdk_request_capability,
        sdk_list_mcp_servers, sdk_register_mcp_server, sdk_mcp_by_name,
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Login, tokens, account self-service"),
        (name = "totp", description = "RFC 6238 second factor"),
        (name = "org", description = "The caller's organization"),
        (name = "users", description = "Users of the organization"),
        (name = "api-keys", description = "aim_live_ API keys"),
        (name = "audit", description = "The organization's verifiable log: entries, verification, checkpoints, RFC 9162 proofs"),
        (name = "agents", description = "Agent registration, lifecycle, AIP challenge-response, signed requests, DIDs"),
        (name = "actions", description = "Action verification, human approvals, outcome reports"),
        (name = "governance", description = "Policy sets and versions, capability grants, the capability-request queue"),
        (name = "mcp", description = "MCP servers: registration, pins, agents' attestations, confidence, drift, connections"),
        (name = "aim-sdk", description = "The wire format of the Python aim-sdk 2.0.3 (docs/COMPATIBILITY.md)"),
        (name = "monitoring", description = "Anomalies, correlated incidents, alerts and where they are delivered"),
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
