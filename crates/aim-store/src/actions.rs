//! Action decisions, capability requests, organization policy versions and the cache-invalidation
//! log: the rows, and the [`ActionStore`] contract (implemented once for both backends in
//! `actions_sql.rs`).
//!
//! Invariants every implementation keeps:
//! - A decision row is inserted only by [`crate::AgentStore::commit_decisions`], in the same
//!   transaction as the request's nonce claim and audit record (one durable write per decision).
//! - A `pending` decision leaves `pending` exactly once: approved or denied by a human (one
//!   conditional `UPDATE … WHERE status = 'pending' AND expires_at > now`), or `expired` by the
//!   sweeper after its deadline. Approval after the deadline is impossible.
//! - An outcome (`success`/`failure`) is reported at most once, and only for an `approved`
//!   decision of the same agent.
//! - At most one `pending` capability request per agent and capability (unique partial index).
//! - Policy versions are append-only; the highest version is in force.
//! - Every change that a server cache may hold (agent rows and grants, the organization's policy
//!   set and enforcement mode) writes a [`CacheEvent`] in its transaction: replicas poll
//!   [`ActionStore::cache_events_since`] and evict (see `cache_event_of`).

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::{AuditRecord, Result};

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// The stored (and wire) name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = crate::Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($s => Ok($name::$v),)+
                    other => Err(crate::Error::Corrupt(format!(
                        concat!("unknown ", stringify!($name), " {:?}"), other
                    ))),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = crate::Error;
            fn try_from(s: String) -> Result<Self> {
                s.parse()
            }
        }
    };
}

string_enum!(
    /// What happens to the capabilities an agent declares when it registers through the aim-sdk
    /// compatibility route (`POST /api/v1/public/agents/register`).
    DeclaredCapabilities {
        /// Granted at once when the registering API key may grant (managers, admins), as AIM does.
        Grant = "grant",
        /// Always sent to the capability-request queue for a manager's approval.
        Request = "request",
    }
);

/// An organization's settings of the aim-sdk compatibility routes. Invariant: an organization
/// without a stored row has [`SdkSettings::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdkSettings {
    /// Whether `POST /api/v1/public/agents/register` may generate an agent's key pair on the
    /// server and return the private key once (aim-sdk 2.0.3 API-key mode needs it). When false,
    /// only client-generated keys are accepted.
    pub server_generated_keys: bool,
    pub declared_capabilities: DeclaredCapabilities,
}

impl Default for SdkSettings {
    fn default() -> Self {
        SdkSettings {
            server_generated_keys: true,
            declared_capabilities: DeclaredCapabilities::Grant,
        }
    }
}

string_enum!(
    /// Status of an action decision.
    ActionStatus {
        /// The agent may act (until `expires_at`).
        Approved = "approved",
        /// The agent must not act.
        Denied = "denied",
        /// Waiting for a human until `expires_at`.
        Pending = "pending",
        /// Nobody decided before the deadline: the agent must not act.
        Expired = "expired",
    }
);

string_enum!(
    /// Reported outcome of an approved action.
    ActionResult {
        Success = "success",
        Failure = "failure",
    }
);

string_enum!(
    /// Status of a capability request.
    RequestStatus {
        Pending = "pending",
        Approved = "approved",
        Denied = "denied",
    }
);

string_enum!(
    /// Language of a stored policy version.
    PolicyLanguageName {
        Cedar = "cedar",
        GovernanceYaml = "governance_yaml",
    }
);

/// A JSON array of strings in a TEXT column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonStrings(pub Vec<String>);

impl JsonStrings {
    /// The stored JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".into())
    }
}

impl TryFrom<String> for JsonStrings {
    type Error = crate::Error;
    fn try_from(s: String) -> Result<Self> {
        serde_json::from_str(&s)
            .map(JsonStrings)
            .map_err(|e| crate::Error::Corrupt(format!("JSON string list: {e}")))
    }
}

/// A stored action decision.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActionDecision {
    pub id: Uuid,
    pub org_id: Uuid,
    pub agent_id: String,
    pub capability: String,
    pub resource: String,
    /// The request's `context` object as JSON text.
    pub context: String,
    /// `low`, `medium`, `high` or `critical`.
    pub risk_level: String,
    #[sqlx(try_from = "String")]
    pub status: ActionStatus,
    pub reason: String,
    #[sqlx(try_from = "String")]
    pub matched_policies: JsonStrings,
    /// Who may approve a pending decision (from the policy's `@approvers`; empty = any manager or
    /// admin other than the agent's owner).
    #[sqlx(try_from = "String")]
    pub approvers: JsonStrings,
    pub policy_version: String,
    pub created_at: i64,
    /// Approval deadline of a pending decision; end of validity of an approved one.
    pub expires_at: i64,
    /// The user who approved or denied a pending decision.
    pub decided_by: Option<Uuid>,
    pub decided_at: Option<i64>,
    pub result: Option<String>,
    pub result_at: Option<i64>,
    pub result_detail: Option<String>,
}

impl ActionDecision {
    /// The status as seen at `now`: a pending decision past its deadline is `expired` even before
    /// the sweeper writes it.
    pub fn status_at(&self, now: i64) -> ActionStatus {
        if self.status == ActionStatus::Pending && now >= self.expires_at {
            ActionStatus::Expired
        } else {
            self.status
        }
    }
}

/// A decision to insert with its request (see [`DecisionOp::InsertAction`]).
pub type NewAction = ActionDecision;

/// A stored capability request.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CapabilityRequest {
    pub id: Uuid,
    pub org_id: Uuid,
    pub agent_id: String,
    pub capability: String,
    pub reason: String,
    #[sqlx(try_from = "String")]
    pub status: RequestStatus,
    /// Actor string of the requester (`agent:<id>` or `user:<uuid>`).
    pub requested_by: String,
    pub created_at: i64,
    pub decided_by: Option<Uuid>,
    pub decided_at: Option<i64>,
    pub note: Option<String>,
}

/// One stored version of an organization's policy set.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PolicyVersion {
    pub org_id: Uuid,
    /// 1, 2, … (append-only).
    pub version: i64,
    #[sqlx(try_from = "String")]
    pub language: PolicyLanguageName,
    pub source: String,
    /// Content hash of the compiled set (`aim_policy` version string).
    pub digest: String,
    pub created_by: String,
    pub created_at: i64,
}

/// What a cached value depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheKind {
    /// An agent row (status, keys, grants); key = agent id.
    Agent,
    /// An organization's policy set and settings; key = org id.
    Org,
}

impl CacheKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheKind::Agent => "agent",
            CacheKind::Org => "org",
        }
    }
}

/// One row of the invalidation log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEvent {
    pub org_id: Uuid,
    pub kind: CacheKind,
    pub key: String,
    pub at: i64,
}

/// Audit event types that name an agent as subject but change nothing a cache holds (the hot
/// path's records: writing an invalidation for each would cost a row per decision).
const NON_INVALIDATING: &[&str] = &[
    "agent.action.",
    "agent.heartbeat",
    "agent.request.",
    "agent.challenge.issued",
    "agent.challenge.failed",
    "credential.",
    "capability.requested",
    "capability.request.denied",
    "trust.",
    "monitor.",
];

/// The invalidation a change recorded by `rec` implies, if any. Conservative by construction:
/// every event about an agent invalidates that agent unless it is in the short list of hot-path
/// events above, and every `org.*`/`policy.*` event invalidates the organization.
pub fn cache_event_of(rec: &AuditRecord) -> Option<CacheEvent> {
    let org_id = rec.org_id?;
    let ev = rec.event_type.as_str();
    if ev.starts_with("org.") || ev.starts_with("policy.") {
        return Some(CacheEvent {
            org_id,
            kind: CacheKind::Org,
            key: org_id.to_string(),
            at: rec.at,
        });
    }
    let agent = rec.subject.as_deref()?.strip_prefix("agent:")?;
    if NON_INVALIDATING.iter().any(|p| {
        if p.ends_with('.') {
            ev.starts_with(p)
        } else {
            ev == *p
        }
    }) {
        return None;
    }
    Some(CacheEvent {
        org_id,
        kind: CacheKind::Agent,
        key: agent.to_string(),
        at: rec.at,
    })
}

/// Filter of [`ActionStore::list_actions`].
#[derive(Debug, Clone, Default)]
pub struct ActionFilter {
    pub agent_id: Option<String>,
    pub status: Option<ActionStatus>,
    /// Keyset cursor: decisions with `id < before` (newest first).
    pub before: Option<Uuid>,
    pub limit: u32,
}

/// Result of a conditional change.
// Returned once per request and matched at once.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// Done; the row as it is now.
    Done(T),
    /// No such row in the organization.
    NotFound,
    /// The row is in a state the change does not start from; the row as it is.
    NotAllowed(T),
}

/// Storage of decisions, capability requests, policies and the invalidation log.
#[async_trait::async_trait]
pub trait ActionStore: Send + Sync {
    async fn get_action(&self, org_id: Uuid, id: Uuid) -> Result<Option<ActionDecision>>;

    /// A decision by id alone (ids are UUIDv7, unique across organizations). Only for a caller
    /// that proves no organization (aim-sdk outcome reports); every other read names the org.
    async fn find_action(&self, id: Uuid) -> Result<Option<ActionDecision>>;

    /// Newest first; `limit` clamped to 1..=500.
    async fn list_actions(&self, org_id: Uuid, f: &ActionFilter) -> Result<Vec<ActionDecision>>;

    /// Approves (`approve`) or denies a pending decision whose deadline has not passed at `now`.
    /// An approval stays usable until `approved_until`.
    #[allow(clippy::too_many_arguments)]
    async fn decide_action(
        &self,
        org_id: Uuid,
        id: Uuid,
        approve: bool,
        by: Uuid,
        now: i64,
        approved_until: i64,
        audit: &AuditRecord,
    ) -> Result<Change<ActionDecision>>;

    /// Marks pending decisions whose deadline passed at `now` as `expired` (at most `limit`),
    /// each with an `agent.action.expired` audit record. Returns them.
    async fn expire_actions(&self, now: i64, limit: u32) -> Result<Vec<ActionDecision>>;

    /// Sets the organization's enforcement mode (`strict`/`monitoring`).
    async fn set_enforcement_mode(
        &self,
        org_id: Uuid,
        mode: &str,
        audit: &AuditRecord,
    ) -> Result<Option<crate::Organization>>;

    /// The organization's aim-sdk settings ([`SdkSettings::default`] when none were stored).
    async fn get_sdk_settings(&self, org_id: Uuid) -> Result<SdkSettings>;

    /// Stores the organization's aim-sdk settings with their audit record (one transaction).
    async fn set_sdk_settings(
        &self,
        org_id: Uuid,
        settings: &SdkSettings,
        audit: &AuditRecord,
    ) -> Result<()>;

    /// Stores a new policy version (the current highest + 1) with its audit record. Fails with
    /// [`crate::Error::Conflict`] when a concurrent save took the same version (retry).
    #[allow(clippy::too_many_arguments)]
    async fn insert_policy_version(
        &self,
        org_id: Uuid,
        language: PolicyLanguageName,
        source: &str,
        digest: &str,
        created_by: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<PolicyVersion>;

    /// The version in force (the highest), if the organization ever saved one.
    async fn current_policy(&self, org_id: Uuid) -> Result<Option<PolicyVersion>>;

    async fn get_policy_version(&self, org_id: Uuid, version: i64)
    -> Result<Option<PolicyVersion>>;

    /// Versions newest first, those below `before` if given, at most `limit` (1..=500).
    async fn list_policy_versions(
        &self,
        org_id: Uuid,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<PolicyVersion>>;

    /// Invalidation events written at or after `since` (Unix ms), oldest first, at most 10,000.
    async fn cache_events_since(&self, since: i64) -> Result<Vec<CacheEvent>>;

    /// Deletes invalidation events older than `before`. Returns the number deleted.
    async fn prune_cache_events(&self, before: i64) -> Result<u64>;
}

#[cfg(test)]
mod cache_event_tests {
    use super::*;

    fn rec(event_type: &str, subject: Option<&str>) -> AuditRecord {
        AuditRecord {
            org_id: Some(Uuid::nil()),
            at: 1,
            event_type: event_type.into(),
            actor: "test".into(),
            subject: subject.map(str::to_string),
            payload: serde_json::json!({}),
            client_addr: None,
        }
    }

    #[test]
    fn hot_path_records_invalidate_nothing_and_changes_invalidate() {
        for ev in [
            "agent.action.verified",
            "agent.heartbeat",
            "agent.request.replayed",
        ] {
            assert_eq!(cache_event_of(&rec(ev, Some("agent:aim_a"))), None, "{ev}");
        }
        for ev in [
            "agent.suspended",
            "agent.key_rotated",
            "capability.granted",
            "agent.heartbeats_disabled",
        ] {
            let e = cache_event_of(&rec(ev, Some("agent:aim_a"))).expect(ev);
            assert_eq!(
                (e.kind, e.key.as_str()),
                (CacheKind::Agent, "aim_a"),
                "{ev}"
            );
        }
        let e = cache_event_of(&rec("policy.updated", None)).unwrap();
        assert_eq!(e.kind, CacheKind::Org);
    }
}
