//! The storage contract.

use uuid::Uuid;

use crate::Result;
use crate::model::*;

/// Everything the server persists. Implemented by [`crate::sqlite::SqliteStore`] and
/// [`crate::postgres::PgStore`]; both pass the same test suite (`tests/store_suite.rs`).
///
/// Agent storage is the [`crate::AgentStore`] supertrait; decisions and policies are
/// [`crate::ActionStore`], grants and capability requests [`crate::CapabilityStore`].
///
/// Methods that take an `org_id` never touch rows of another organization. Methods that take an
/// [`AuditRecord`] write it in the same transaction as the change.
#[async_trait::async_trait]
pub trait Store:
    crate::agents::AgentStore
    + crate::actions::ActionStore
    + crate::activity::TrustStore
    + crate::capabilities::CapabilityStore
    + crate::monitoring::MonitorStore
    + crate::mcp::McpStore
    + Send
    + Sync
    + 'static
{
    /// Backend name (`sqlite` or `postgres`).
    fn backend(&self) -> &'static str;

    /// True when [`crate::AgentStore::commit_decisions`] may run its transaction on the calling
    /// thread (blocking it for the batch): callers then give it a thread of its own.
    fn commits_block_caller(&self) -> bool {
        false
    }

    /// Cheap round trip to the database (readiness probe).
    async fn ping(&self) -> Result<()>;

    /// Closes the pool (waits for in-flight queries).
    async fn close(&self);

    // ----- organizations -------------------------------------------------------------------

    /// Creates the first organization and its admin, exactly once per database. Returns `None`
    /// (and changes nothing) when the server was already bootstrapped — even if several
    /// replicas race.
    async fn bootstrap(
        &self,
        org: &Organization,
        admin: &NewUser,
        audit: &AuditRecord,
    ) -> Result<Option<()>>;

    /// Creates an organization with its first admin (multi-tenant provisioning).
    async fn create_org_with_admin(
        &self,
        org: &Organization,
        admin: &NewUser,
        audit: &AuditRecord,
    ) -> Result<()>;

    async fn get_org(&self, id: Uuid) -> Result<Option<Organization>>;

    /// Changes the "2FA required for admins" setting.
    async fn set_org_require_2fa_admins(
        &self,
        id: Uuid,
        value: bool,
        audit: &AuditRecord,
    ) -> Result<Option<Organization>>;

    // ----- users ---------------------------------------------------------------------------

    /// Fails with [`crate::Error::Conflict`] when the email is taken (in any organization).
    async fn create_user(&self, user: &NewUser, audit: &AuditRecord) -> Result<User>;

    async fn get_user(&self, org_id: Uuid, id: Uuid) -> Result<Option<User>>;

    /// Lookup for login (emails are unique server-wide).
    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>>;

    /// The user named by an access token, with its organization's settings, provided `session_id`
    /// is a live session of that user. One query.
    async fn principal_for_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
    ) -> Result<Option<Principal>>;

    /// The user owning an API key with its organization's settings. One query.
    async fn principal_for_user(&self, user_id: Uuid) -> Result<Option<Principal>>;

    async fn list_users(&self, org_id: Uuid, page: PageRequest) -> Result<Vec<User>>;

    /// Number of active admins of an organization (to refuse removing the last one).
    async fn count_active_admins(&self, org_id: Uuid) -> Result<i64>;

    async fn set_user_role(
        &self,
        org_id: Uuid,
        id: Uuid,
        role: Role,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<Option<User>>;

    /// Activates or deactivates a user; deactivation revokes all its sessions.
    async fn set_user_active(
        &self,
        org_id: Uuid,
        id: Uuid,
        active: bool,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<Option<User>>;

    /// Deletes a user with its sessions, refresh tokens, API keys and recovery codes.
    async fn delete_user(&self, org_id: Uuid, id: Uuid, audit: &AuditRecord) -> Result<bool>;

    /// Replaces the password hash, clears `must_change_password`, and revokes every session of the
    /// user except `keep_session` (if any).
    async fn set_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        keep_session: Option<Uuid>,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<()>;

    /// Counts a failed login atomically and locks the account when the policy says so.
    async fn record_login_failure(
        &self,
        user_id: Uuid,
        now: i64,
        policy: LockoutPolicy,
        audit: &AuditRecord,
    ) -> Result<FailureOutcome>;

    /// Records an audit event that changes nothing else (e.g. a failed login for an unknown email).
    async fn append_audit(&self, audit: &AuditRecord) -> Result<()>;

    // ----- sessions and refresh tokens -----------------------------------------------------

    /// Successful login: resets the failure counter, creates the session and its first refresh
    /// token.
    async fn create_session(
        &self,
        session: &Session,
        token: &NewRefreshToken,
        audit: &AuditRecord,
    ) -> Result<()>;

    /// Presents a refresh token (by digest). A live token is retired and `next` stored in its
    /// session; a token already used revokes the whole session (theft).
    async fn rotate_refresh_token(
        &self,
        token_hash: &[u8],
        next: &NewRefreshToken,
        now: i64,
        audit_reuse: &AuditRecord,
    ) -> Result<RefreshOutcome>;

    /// Revokes a session (logout). Returns whether it was live.
    async fn revoke_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        now: i64,
        reason: &str,
        audit: &AuditRecord,
    ) -> Result<bool>;

    /// The session a refresh token belongs to, if the token is known (for logout by token).
    async fn session_for_refresh_token(&self, token_hash: &[u8]) -> Result<Option<Session>>;

    // ----- TOTP ----------------------------------------------------------------------------

    /// Stores a pending (unconfirmed) TOTP secret.
    async fn set_totp_pending(&self, user_id: Uuid, sealed: &[u8], now: i64) -> Result<()>;

    /// Moves the pending secret to active, stores recovery code digests, and records `step` as
    /// used. Fails (returns false) if the pending secret changed meanwhile.
    async fn enable_totp(
        &self,
        user_id: Uuid,
        expected_pending: &[u8],
        step: i64,
        recovery_hashes: &[Vec<u8>],
        now: i64,
        audit: &AuditRecord,
    ) -> Result<bool>;

    async fn disable_totp(&self, user_id: Uuid, now: i64, audit: &AuditRecord) -> Result<()>;

    /// Marks TOTP `step` as used if it is newer than any step used before. Returns false on replay.
    async fn consume_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool>;

    /// Consumes a recovery code (by digest). Returns false if unknown or already used.
    async fn consume_recovery_code(
        &self,
        user_id: Uuid,
        code_hash: &[u8],
        now: i64,
    ) -> Result<bool>;

    async fn remaining_recovery_codes(&self, user_id: Uuid) -> Result<i64>;

    // ----- API keys ------------------------------------------------------------------------

    async fn create_api_key(&self, key: &NewApiKey, audit: &AuditRecord) -> Result<ApiKey>;

    /// The key with this digest, whatever its state (the caller checks expiry/revocation).
    async fn find_api_key_by_hash(&self, key_hash: &[u8]) -> Result<Option<ApiKey>>;

    /// Usage tracking: last use time, count, client address.
    async fn touch_api_key(&self, id: Uuid, now: i64, client_addr: Option<&str>) -> Result<()>;

    async fn get_api_key(&self, org_id: Uuid, id: Uuid) -> Result<Option<ApiKey>>;

    /// Keys of an organization, optionally only those of one owner.
    async fn list_api_keys(
        &self,
        org_id: Uuid,
        owner: Option<Uuid>,
        page: PageRequest,
    ) -> Result<Vec<ApiKey>>;

    async fn revoke_api_key(
        &self,
        org_id: Uuid,
        id: Uuid,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<bool>;

    /// Replaces the secret of a live key (same id, name, role and expiry); the old secret stops
    /// working at once.
    async fn rotate_api_key(
        &self,
        org_id: Uuid,
        id: Uuid,
        new_prefix: &str,
        new_hash: &[u8],
        now: i64,
        audit: &AuditRecord,
    ) -> Result<Option<ApiKey>>;

    // ----- JWT signing keys ----------------------------------------------------------------

    /// All signing keys created after `since` (ms), newest first.
    async fn list_jwt_keys(&self, since: i64) -> Result<Vec<JwtKey>>;

    async fn insert_jwt_key(&self, key: &JwtKey, audit: &AuditRecord) -> Result<()>;

    // ----- audit ---------------------------------------------------------------------------

    async fn list_audit(&self, org_id: Uuid, page: PageRequest) -> Result<Vec<AuditRow>>;

    // ----- verifiable audit log (docs/server-audit.md) -------------------------------------

    /// Appends a batch of records in one transaction (group commit); each lands in its
    /// organization's chain in batch order.
    async fn append_audits(&self, audits: &[AuditRecord]) -> Result<()>;

    /// The chain head of an organization (size 0 when it has no entry). Use
    /// [`crate::audit_chain::SYSTEM_CHAIN`] for events without an organization.
    async fn audit_head(&self, org_id: Uuid) -> Result<AuditHead>;

    /// Entries of an organization's chain with `seq >= from_seq`, in `seq` order (1..=1000).
    async fn list_audit_chain(
        &self,
        org_id: Uuid,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditRow>>;

    /// Merkle root of the first `size` entries. [`crate::Error::Invalid`] beyond the log.
    async fn audit_root(&self, org_id: Uuid, size: u64) -> Result<[u8; 32]>;

    /// RFC 9162 inclusion proof of entry `index` in the tree of `tree_size` entries.
    async fn audit_inclusion(
        &self,
        org_id: Uuid,
        index: u64,
        tree_size: u64,
    ) -> Result<InclusionProofRow>;

    /// RFC 9162 consistency proof from `from` to `to` entries.
    async fn audit_consistency(&self, org_id: Uuid, from: u64, to: u64) -> Result<Vec<[u8; 32]>>;

    async fn get_org_key(&self, org_id: Uuid) -> Result<Option<OrgKeyRow>>;

    /// Stores the organization's log key unless one exists; returns the stored key (the first
    /// writer wins when replicas race).
    async fn insert_org_key(&self, key: &OrgKeyRow) -> Result<OrgKeyRow>;

    /// Stores a signed checkpoint (idempotent per size) and records it on the chain head.
    async fn insert_checkpoint(&self, cp: &StoredCheckpoint) -> Result<()>;

    async fn latest_checkpoint(&self, org_id: Uuid) -> Result<Option<StoredCheckpoint>>;

    /// Chains with entries not covered by a checkpoint, and either `min_new` such entries or a
    /// newest checkpoint signed at or before `signed_before` (ms).
    async fn audit_chains_due(&self, min_new: u64, signed_before: i64) -> Result<Vec<Uuid>>;

    // ----- operations: pool statistics, master-key rotation ---------------------------------

    /// Connection pool statistics (for `/metrics`).
    fn pool_stats(&self) -> PoolStats;

    /// A page of non-null sealed values of `column`, in row order, strictly after `after` (from
    /// the start when `None`). Used to re-encrypt every sealed value after a key rotation.
    async fn list_sealed(
        &self,
        column: SealedColumn,
        after: Option<&SealedRow>,
        limit: u32,
    ) -> Result<Vec<SealedValue>>;

    /// Replaces a sealed value only if it still equals `old` (compare-and-swap, so a value the
    /// server changed meanwhile is not overwritten). Returns whether the row was updated.
    async fn replace_sealed(
        &self,
        column: SealedColumn,
        row: &SealedRow,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool>;
}
