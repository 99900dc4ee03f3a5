//! Capability grants (the `agents.capabilities` column) and the capability-request queue: the
//! [`CapabilityStore`] contract, implemented once for both backends in `capabilities_sql.rs`.
//!
//! Invariants every implementation keeps:
//! - `agents.capabilities` is the agent's grant set (a JSON array of distinct grant strings, in
//!   the order they were granted). It changes only through [`CapabilityStore::grant_capability`],
//!   [`CapabilityStore::revoke_capability`], an approved request
//!   ([`CapabilityStore::decide_capability_request`]) or registration, each in ONE transaction with
//!   its audit record (whose `agent:<id>` subject makes the audit append write the agent's cache
//!   invalidation, see [`crate::cache_event_of`]).
//! - Read-modify-write of the grant set is serialized per agent: the transaction first writes the
//!   agent row (a row lock on PostgreSQL, the database write lock on SQLite) and only then reads
//!   the set it changes, so two concurrent grants cannot lose one another.
//! - A revoked agent's grants never change (revoked is final).
//! - A request leaves `pending` exactly once (conditional `UPDATE … WHERE status = 'pending'`);
//!   approving it adds its capability to the agent's grants in the same transaction.
//! - Grant strings are stored as given: the caller validates the grammar (`aim_policy::Grant`).

use uuid::Uuid;

use crate::actions::{CapabilityRequest, RequestStatus};
use crate::agents::Agent;
use crate::{AuditRecord, Result};

/// Result of [`CapabilityStore::grant_capability`] / [`CapabilityStore::revoke_capability`].
// Returned once per request and matched at once.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantChange {
    /// The grant set changed (audit record written); the agent as it is now.
    Changed(Agent),
    /// Nothing to do (already granted / not granted); nothing written. The agent as it is.
    Unchanged(Agent),
    /// No such agent in the organization.
    NotFound,
    /// The agent is revoked: its grants are frozen.
    AgentRevoked,
}

/// Result of [`CapabilityStore::decide_capability_request`].
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestDecision {
    /// Decided (and, when approved, granted); the request and the agent as they are now.
    Done(CapabilityRequest, Agent),
    /// No such request in the organization.
    NotFound,
    /// The request is no longer pending; the request as it is.
    NotPending(CapabilityRequest),
    /// Approval refused because the agent is revoked (nothing written).
    AgentRevoked,
}

/// Filter of [`CapabilityStore::list_capability_requests`].
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub agent_id: Option<String>,
    pub status: Option<RequestStatus>,
    /// Keyset cursor: requests with `id < before` (newest first; ids are UUIDv7).
    pub before: Option<Uuid>,
    pub limit: u32,
}

/// Storage of grants and capability requests. Required by [`crate::Store`].
#[async_trait::async_trait]
pub trait CapabilityStore: Send + Sync {
    /// Adds `grant` to the agent's grant set (no-op when the exact string is already there).
    async fn grant_capability(
        &self,
        org_id: Uuid,
        agent_id: &str,
        grant: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<GrantChange>;

    /// Removes `grant` from the agent's grant set (no-op when absent).
    async fn revoke_capability(
        &self,
        org_id: Uuid,
        agent_id: &str,
        grant: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<GrantChange>;

    async fn get_capability_request(
        &self,
        org_id: Uuid,
        id: Uuid,
    ) -> Result<Option<CapabilityRequest>>;

    /// Newest first; `limit` clamped to 1..=500.
    async fn list_capability_requests(
        &self,
        org_id: Uuid,
        f: &RequestFilter,
    ) -> Result<Vec<CapabilityRequest>>;

    /// Approves (`approve`, adding the capability to the agent's grants) or denies a pending
    /// request, with `note`, recorded by `audit`, all in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn decide_capability_request(
        &self,
        org_id: Uuid,
        id: Uuid,
        approve: bool,
        by: Uuid,
        note: Option<&str>,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<RequestDecision>;
}
