//! Rows and values exchanged with the store.
//!
//! Times are Unix milliseconds (UTC) in an `i64` on both backends: one unambiguous, index-friendly
//! representation that compares the same way in SQLite and PostgreSQL. Ids are UUIDv7 (time
//! ordered), stored as 16-byte BLOB (SQLite) or `uuid` (PostgreSQL).

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// A user's role inside its organization. Ordered: `Viewer < Member < Manager < Admin`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only access to the organization's resources.
    Viewer,
    /// Manages only the resources it owns.
    Member,
    /// Manages every resource of the organization.
    Manager,
    /// Everything, including users and organization settings.
    Admin,
}

impl Role {
    /// All roles, lowest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Member, Role::Manager, Role::Admin];

    /// The stored (and wire) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "member" => Ok(Role::Member),
            "manager" => Ok(Role::Manager),
            "admin" => Ok(Role::Admin),
            other => Err(crate::Error::Corrupt(format!("unknown role {other:?}"))),
        }
    }
}

impl TryFrom<String> for Role {
    type Error = crate::Error;
    fn try_from(s: String) -> crate::Result<Self> {
        s.parse()
    }
}

/// An organization (tenant).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    /// Organization setting: administrators must have TOTP enabled before using the API.
    pub require_2fa_admins: bool,
    pub created_at: i64,
    /// `strict` (a deny is a deny; the default of new organizations) or `monitoring` (a policy
    /// deny is allowed and alerted). Checked by the database.
    pub enforcement_mode: String,
}

/// A human user. Emails are unique across the whole server (login takes no organization) and
/// stored lower-cased.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub org_id: Uuid,
    pub email: String,
    /// Argon2id PHC string. Never serialized, never logged.
    pub password_hash: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    /// `false` once deactivated: no login, no token, no API key of this user works.
    pub active: bool,
    /// Set for generated one-time passwords: every route except password change answers 403.
    pub must_change_password: bool,
    /// Failed logins counted in the current window (see the lockout policy in docs/server.md).
    pub failed_logins: i64,
    pub failed_window_start: Option<i64>,
    pub locked_until: Option<i64>,
    pub totp_enabled: bool,
    /// Sealed (encrypted) TOTP secret, active once `totp_enabled`.
    pub totp_secret: Option<Vec<u8>>,
    /// Sealed TOTP secret awaiting confirmation.
    pub totp_pending_secret: Option<Vec<u8>>,
    /// Highest TOTP time step already accepted (a code is accepted at most once).
    pub totp_last_step: Option<i64>,
    pub created_by: Option<Uuid>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("active", &self.active)
            .field("totp_enabled", &self.totp_enabled)
            .finish_non_exhaustive()
    }
}

/// What is needed to create a user.
#[derive(Clone)]
pub struct NewUser {
    pub id: Uuid,
    pub org_id: Uuid,
    /// Lower-cased by the caller.
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub must_change_password: bool,
    pub created_by: Option<Uuid>,
    pub created_at: i64,
}

/// A user together with the organization settings needed to authorize a request, loaded in one
/// query.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub org_require_2fa_admins: bool,
}

/// A login session: one family of refresh tokens. Revoking it ends every token of the family and
/// every access token that names it (`sid` claim).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

/// A refresh token as stored: only its SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    pub id: Uuid,
    pub session_id: Uuid,
    pub token_hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Result of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was live; it is now retired and the new one is stored in the same session.
    Rotated { session: Session },
    /// The token had already been used: treated as theft, the whole session was revoked.
    Reused { session: Session },
    /// Unknown, expired, or its session was revoked.
    Invalid,
}

/// An API key as stored: only the SHA-256 digest of the secret.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKey {
    pub id: Uuid,
    pub org_id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    /// First characters of the key (`aim_live_` + 8), shown in lists to recognise a key.
    pub prefix: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub use_count: i64,
    pub last_client_addr: Option<String>,
}

/// What is needed to create an API key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: Uuid,
    pub org_id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub key_hash: Vec<u8>,
    pub role: Role,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// A JWT signing key. `private_sealed` is encrypted by the server before it reaches the store.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JwtKey {
    pub kid: String,
    pub algorithm: String,
    pub private_sealed: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: i64,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// One security event, written in the same transaction as the change it records.
///
/// Never put a secret (password, token, key, TOTP secret or code) in any field.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub org_id: Option<Uuid>,
    pub at: i64,
    /// Dotted event name, e.g. `auth.login.succeeded`, `api_key.created`.
    pub event_type: String,
    /// Who did it: `user:<uuid>`, `api_key:<uuid>`, `system`, `anonymous`.
    pub actor: String,
    /// What it was done to, e.g. `user:<uuid>`.
    pub subject: Option<String>,
    /// Extra non-secret context.
    pub payload: serde_json::Value,
    pub client_addr: Option<String>,
}

/// A stored audit row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditRow {
    pub id: Uuid,
    pub org_id: Option<Uuid>,
    pub at: i64,
    pub event_type: String,
    pub actor: String,
    pub subject: Option<String>,
    /// JSON text.
    pub payload: String,
    pub client_addr: Option<String>,
    /// Position in the organization's chain (`None` only for rows written before the chain).
    pub seq: Option<i64>,
    /// 32 bytes: `hash` of the previous entry (zeros for seq 0).
    pub prev_hash: Option<Vec<u8>>,
    /// 32 bytes: SHA-256 of the canonical entry (see [`crate::audit_chain`]).
    pub hash: Option<Vec<u8>>,
}

/// Result of recording a failed login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    /// Set when this failure locked the account (until this time).
    pub locked_until: Option<i64>,
}

/// Parameters of the lockout policy, applied atomically by the store.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Failures allowed inside `window_ms` before locking.
    pub max_failures: i64,
    pub window_ms: i64,
    pub lock_ms: i64,
}

/// A page request: rows with `id > after`, at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub after: Option<Uuid>,
    pub limit: u32,
}

impl PageRequest {
    /// Largest page any list returns.
    pub const MAX_LIMIT: u32 = 500;

    /// Cursor as bound to the query (`Uuid::nil()` sorts first).
    pub fn cursor(&self) -> Uuid {
        self.after.unwrap_or(Uuid::nil())
    }

    /// The limit, clamped to `1..=MAX_LIMIT`.
    pub fn clamped_limit(&self) -> i64 {
        i64::from(self.limit.clamp(1, Self::MAX_LIMIT))
    }
}

/// The head of an organization's audit chain: size, last entry hash and Merkle root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub org_id: Uuid,
    pub size: u64,
    /// Lowercase hex `hash` of the last entry (64 zeros when empty).
    pub head_hash: [u8; 32],
    /// RFC 9162 root of all `size` entries.
    pub root: [u8; 32],
    /// Size and time (ms) of the newest signed checkpoint (0 when none).
    pub checkpoint_size: u64,
    pub checkpoint_at: i64,
}

/// An organization's audit log signing key (Ed25519). The private half is sealed by the server.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrgKeyRow {
    pub org_id: Uuid,
    pub key_id: String,
    /// 32 raw bytes.
    pub public_key: Vec<u8>,
    pub private_sealed: Vec<u8>,
    pub created_at: i64,
}

/// A signed checkpoint as stored: the JSON document exactly as served.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredCheckpoint {
    pub org_id: Uuid,
    pub tree_size: i64,
    pub created_at: i64,
    pub body: String,
}

/// An RFC 9162 inclusion proof read from the stored subtrees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProofRow {
    pub leaf_hash: [u8; 32],
    pub audit_path: Vec<[u8; 32]>,
}

/// Connection pool statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Open connections (idle + in use).
    pub size: u32,
    /// Idle connections.
    pub idle: u32,
    /// Configured maximum.
    pub max: u32,
}

/// A column holding values sealed by the server's key ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealedColumn {
    /// `users.totp_secret` (context `totp:<user id>`).
    UserTotpSecret,
    /// `users.totp_pending_secret` (context `totp:<user id>`).
    UserTotpPendingSecret,
    /// `jwt_keys.private_sealed` (context `jwt_key:<kid>`).
    JwtPrivateKey,
    /// `alert_routes.secret` (context `alert_route:<route id>`).
    AlertRouteSecret,
}

impl SealedColumn {
    /// Every sealed column. A new sealed column must be added here so key rotation covers it.
    pub const ALL: [SealedColumn; 4] = [
        SealedColumn::UserTotpSecret,
        SealedColumn::UserTotpPendingSecret,
        SealedColumn::JwtPrivateKey,
        SealedColumn::AlertRouteSecret,
    ];

    /// `table.column`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            SealedColumn::UserTotpSecret => "users.totp_secret",
            SealedColumn::UserTotpPendingSecret => "users.totp_pending_secret",
            SealedColumn::JwtPrivateKey => "jwt_keys.private_sealed",
            SealedColumn::AlertRouteSecret => "alert_routes.secret",
        }
    }
}

/// The row a sealed value lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealedRow {
    User(Uuid),
    JwtKey(String),
    AlertRoute(Uuid),
}

impl SealedRow {
    /// The sealing context (additional authenticated data) the server uses for this row.
    pub fn context(&self) -> String {
        match self {
            SealedRow::User(id) => format!("totp:{id}"),
            SealedRow::JwtKey(kid) => format!("jwt_key:{kid}"),
            SealedRow::AlertRoute(id) => format!("alert_route:{id}"),
        }
    }
}

/// One sealed value.
#[derive(Debug, Clone)]
pub struct SealedValue {
    pub column: SealedColumn,
    pub row: SealedRow,
    pub sealed: Vec<u8>,
}
