//! MCP servers known to an organization, agents' attestations of them and connection patterns:
//! the [`McpStore`] contract, implemented once for both backends in `mcp_sql.rs`. Attestations are
//! written by the signed-request writer ([`crate::DecisionOp::McpAttestation`]).
//!
//! Invariants every implementation keeps:
//! - A server name is unique in its organization; every query is scoped by `org_id`.
//! - An attestation row, its day's usage count and (when it differs from the pin) the server's
//!   drift mark are written in ONE transaction with the agent's nonce claim and audit record.
//! - Pinning replaces the pinned manifest and clears the drift mark, with its audit record.

use uuid::Uuid;

use crate::{AuditRecord, Result};

/// A registered MCP server.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct McpServerRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    /// The server's Ed25519 public key (32 bytes), when it signs its manifests.
    pub public_key: Option<Vec<u8>>,
    /// `sha256:<hex>` surface hash of the pinned manifest.
    pub pinned_hash: Option<String>,
    /// The pinned canonical manifest (JSON).
    pub pinned_manifest: Option<String>,
    /// Whether the pinned manifest carried a valid signature by `public_key`.
    pub pinned_signed: bool,
    pub pinned_at: Option<i64>,
    pub pinned_by: Option<String>,
    /// Newest attestation that differed from the pin (cleared by the next pin).
    pub drift_at: Option<i64>,
    pub drift_hash: Option<String>,
    /// `low`, `medium` or `high` (the diff's highest change).
    pub drift_severity: Option<String>,
    pub created_at: i64,
    pub created_by: String,
}

/// An attestation to insert (with the request that carries it).
#[derive(Debug, Clone, PartialEq)]
pub struct NewMcpAttestation {
    pub id: Uuid,
    pub org_id: Uuid,
    pub server_id: Uuid,
    pub agent_id: String,
    pub manifest_hash: String,
    /// JSON array of capability class names.
    pub capabilities: String,
    /// `None` when the server has no pin yet.
    pub matches_pin: Option<bool>,
    /// Set when the manifest differs from the pin: the diff's highest severity.
    pub drift_severity: Option<String>,
    pub at: i64,
}

/// The newest attestation of one agent for a server, with that agent's newest recorded trust
/// score (`trust_history`), for the confidence computation.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AttesterRow {
    pub agent_id: String,
    pub manifest_hash: String,
    pub matches_pin: Option<bool>,
    pub at: i64,
    pub trust_score: Option<f64>,
}

/// An agent's use of a server, summed over the days asked for.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConnectionRow {
    pub server_id: Uuid,
    pub server_name: String,
    pub uses: i64,
    pub days: i64,
    pub first_at: i64,
    pub last_at: i64,
}

/// Storage of MCP servers. Required by [`crate::Store`].
#[async_trait::async_trait]
pub trait McpStore: Send + Sync {
    /// Inserts a server; [`crate::Error::Conflict`] when the name is taken in the organization.
    async fn create_mcp_server(&self, s: &McpServerRow, audit: &AuditRecord) -> Result<()>;
    async fn get_mcp_server(&self, org_id: Uuid, id: Uuid) -> Result<Option<McpServerRow>>;
    async fn get_mcp_server_by_name(
        &self,
        org_id: Uuid,
        name: &str,
    ) -> Result<Option<McpServerRow>>;
    /// The organization's servers by name (at most 1000).
    async fn list_mcp_servers(&self, org_id: Uuid) -> Result<Vec<McpServerRow>>;
    /// Pins `manifest` (hash, JSON, whether signed) and clears the drift mark. `false`: no such
    /// server.
    #[allow(clippy::too_many_arguments)]
    async fn pin_mcp_server(
        &self,
        org_id: Uuid,
        id: Uuid,
        hash: &str,
        manifest: &str,
        signed: bool,
        by: &str,
        at: i64,
        audit: &AuditRecord,
    ) -> Result<bool>;
    /// The newest attestation per agent since `since`, with the agents' newest trust scores.
    async fn mcp_attesters(
        &self,
        org_id: Uuid,
        server_id: Uuid,
        since: i64,
    ) -> Result<Vec<AttesterRow>>;
    /// The agent's use of each server on days `>= since_day`.
    async fn mcp_connections(
        &self,
        org_id: Uuid,
        agent_id: &str,
        since_day: i64,
    ) -> Result<Vec<ConnectionRow>>;
}
