//! Wire types of the server's HTTP API (JSON keys are camelCase; times are RFC 3339 strings).
//!
//! Unknown fields are ignored when reading answers, so a newer server that adds fields does not
//! break an older client. Request bodies carry exactly the documented fields (the server refuses
//! unknown ones).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user's role, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only.
    Viewer,
    /// Manages what it owns.
    Member,
    /// Every resource of its organization.
    Manager,
    /// Also users and organization settings.
    Admin,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "member" => Ok(Role::Member),
            "manager" => Ok(Role::Manager),
            "admin" => Ok(Role::Admin),
            _ => Err(format!(
                "unknown role {s:?} (expected viewer, member, manager or admin)"
            )),
        }
    }
}

/// Answer of `POST /api/v1/auth/login` and `POST /api/v1/auth/refresh`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    /// JWT access token (short-lived).
    pub access_token: String,
    /// Opaque single-use refresh token.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The password is a one-time password: everything but `me`, `change-password` and `logout`
    /// answers 403 `password_change_required` until it is changed. (Absent on refresh answers.)
    #[serde(default)]
    pub password_change_required: bool,
    /// An admin of an organization requiring 2FA must enroll TOTP first.
    #[serde(default)]
    pub totp_enrollment_required: bool,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens are credentials: never printed.
        f.debug_struct("TokenPair")
            .field("expires_in", &self.expires_in)
            .field("password_change_required", &self.password_change_required)
            .finish_non_exhaustive()
    }
}

/// `GET /api/v1/auth/me`.
#[derive(Debug, Clone, Deserialize, Serialize)]
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

/// A user as the API shows it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub org_id: Uuid,
    pub email: String,
    pub role: Role,
    pub active: bool,
    pub totp_enabled: bool,
    pub password_change_required: bool,
    pub created_at: String,
}

/// `POST /api/v1/users` answer: the user, plus the one-time password when none was given.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedUser {
    #[serde(flatten)]
    pub user: User,
    /// Shown once; must be changed at first login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_time_password: Option<String>,
}

/// An API key as lists show it (never the secret).
#[derive(Debug, Clone, Deserialize, Serialize)]
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

/// `POST /api/v1/api-keys` and `POST /api/v1/api-keys/{id}/rotate` answers: the key plus its
/// secret, shown this once.
#[derive(Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyWithSecret {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The full `aim_live_…` secret.
    pub key: String,
}

impl std::fmt::Debug for ApiKeyWithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyWithSecret")
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

/// One page of a keyset-paginated list: pass `next_after` as `after` for the next page.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_after: Option<Uuid>,
}

/// The caller's organization.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    pub id: Uuid,
    pub name: String,
    pub require2fa_for_admins: bool,
    pub created_at: String,
}

/// `POST /api/v1/users` body.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewUser {
    pub email: String,
    pub role: Role,
    /// Without it the server generates a one-time password (invitation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `PATCH /api/v1/users/{id}` body.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// `POST /api/v1/api-keys` body.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewApiKey {
    pub name: String,
    /// Defaults to `viewer` on the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// RFC 3339, in the future.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `POST /api/v1/auth/totp/enroll` answer.
#[derive(Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TotpEnrollment {
    /// Base32 secret.
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

impl std::fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrollment").finish_non_exhaustive()
    }
}

/// `POST /api/v1/auth/totp/confirm` answer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TotpConfirmed {
    pub enabled: bool,
    /// Shown once.
    pub recovery_codes: Vec<String>,
}
