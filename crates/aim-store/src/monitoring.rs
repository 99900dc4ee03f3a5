//! Security monitoring state (seed Layer 4): the monitor's cursor over each organization's audit
//! log, per-agent detector state (anomaly baseline and correlator), anomalies, incidents, alerts,
//! alert routes and the webhook/email delivery queue with its attempt log. The
//! [`MonitorStore`] contract is implemented once for both backends in `monitoring_sql.rs`.
//!
//! Invariants every implementation keeps:
//! - The monitor reads the audit log in sequence order and commits what it derived from a page
//!   ([`MonitorBatch`]) in ONE transaction that also moves the organization's cursor with a
//!   compare-and-swap (`next_seq` must still be the value the page was read from). Two replicas
//!   racing over the same page cannot both commit: the loser gets `false` and writes nothing, so
//!   every audit entry is analysed exactly once.
//! - Anomalies are append-only. Incidents and alerts change state only forward
//!   (`open → acknowledged → resolved`, or `open → resolved`), each change with its audit record.
//! - A delivery is `pending` until an attempt succeeds (`delivered`) or the attempts are used up
//!   (`dead`); a worker leases a due delivery (`lease_until`) with a conditional update, so two
//!   replicas never send the same attempt twice. Every attempt is a row of the delivery log.
//! - Route secrets (webhook HMAC keys) are stored sealed by the server
//!   ([`crate::SealedColumn::AlertRouteSecret`]); the store never sees them in clear.

use uuid::Uuid;

use crate::actions::Change;
use crate::{AuditRecord, Result};

/// Incident / alert lifecycle states, as stored.
pub const LIFECYCLE_STATES: &[&str] = &["open", "acknowledged", "resolved"];

/// An organization whose audit log has entries the monitor has not analysed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorBacklog {
    pub org_id: Uuid,
    /// The first sequence number not analysed yet.
    pub next_seq: i64,
    /// The audit log's size now (entries `next_seq..head_size` are waiting).
    pub head_size: i64,
}

/// The detector state of one agent (JSON documents of `aim_core::anomaly::Baseline` and
/// `aim_core::correlation::Correlator`, kept opaque here).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AgentMonitorState {
    pub org_id: Uuid,
    pub agent_id: String,
    /// The baseline's observation count (duplicated from the JSON for the trust evidence).
    pub observations: i64,
    pub baseline: String,
    pub correlator: String,
    pub updated_at: i64,
}

/// One detected anomaly, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AnomalyRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub agent_id: String,
    pub detector: String,
    pub severity: String,
    /// The severity's weight in the trust score (low 0.5, medium 1, high 2, critical 4).
    pub weight: f64,
    pub at: i64,
    pub statistic: f64,
    pub baseline: f64,
    pub threshold: f64,
    pub message: String,
    /// Sequence number of the audit entry that triggered it.
    pub event_seq: i64,
}

/// A correlated incident.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct IncidentRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub agent_id: String,
    pub rule: String,
    pub severity: String,
    pub state: String,
    pub first_at: i64,
    pub last_at: i64,
    /// JSON array of member event references (`audit:<seq>`), oldest first.
    pub members: String,
    pub summary: String,
    pub updated_at: i64,
    pub updated_by: Option<String>,
}

/// An alert raised for humans.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AlertRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub severity: String,
    /// `anomaly.<detector>` or `incident.<rule>`.
    pub kind: String,
    pub title: String,
    pub agent_id: Option<String>,
    /// JSON object (no secrets).
    pub details: String,
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub updated_by: Option<String>,
}

/// Where an organization's alerts go.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AlertRouteRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub min_severity: String,
    pub enabled: bool,
    /// `webhook` or `email`.
    pub channel: String,
    /// The webhook URL, or the email recipients as a JSON array.
    pub target: String,
    /// Sealed HMAC secret of a webhook route.
    pub secret: Option<Vec<u8>>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One alert's delivery over one route.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub alert_id: Uuid,
    pub route_id: Uuid,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_until: i64,
    pub last_error: Option<String>,
    pub last_http_status: Option<i64>,
    pub updated_at: i64,
}

/// One delivery attempt (the delivery log).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DeliveryAttemptRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub delivery_id: Uuid,
    pub attempt: i64,
    pub at: i64,
    pub ok: bool,
    pub http_status: Option<i64>,
    pub error: Option<String>,
}

/// Everything the monitor derived from one page of an organization's audit log.
#[derive(Debug, Clone, Default)]
pub struct MonitorBatch {
    pub org_id: Uuid,
    /// The cursor the page was read from (compare-and-swap).
    pub from_seq: i64,
    /// The cursor after the page.
    pub to_seq: i64,
    pub now: i64,
    /// Upserted by (org, agent).
    pub states: Vec<AgentMonitorState>,
    pub anomalies: Vec<AnomalyRow>,
    /// Inserted, or updated (members, last_at, summary) when the id exists.
    pub incidents: Vec<IncidentRow>,
    pub alerts: Vec<AlertRow>,
    pub deliveries: Vec<DeliveryRow>,
    pub audits: Vec<AuditRecord>,
}

/// Result of the delivery worker's attempt.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub attempt: DeliveryAttemptRow,
    /// `pending` (retry at `next_attempt_at`), `delivered` or `dead`.
    pub status: String,
    pub next_attempt_at: i64,
    /// Written with the outcome when the delivery ends (delivered / dead-lettered).
    pub audit: Option<AuditRecord>,
}

/// Filter of the monitoring lists (newest first, keyset on the UUIDv7 id).
#[derive(Debug, Clone, Default)]
pub struct MonitorFilter {
    pub agent_id: Option<String>,
    /// Lifecycle state (incidents, alerts) or delivery status.
    pub state: Option<String>,
    pub before: Option<Uuid>,
    pub limit: u32,
}

/// Trust evidence kept by the monitor for one agent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MonitorEvidence {
    pub baseline_observations: i64,
    /// Sum of anomaly weights since the window start.
    pub anomaly_weight: f64,
}

/// Storage of the monitor. Required by [`crate::Store`].
#[async_trait::async_trait]
pub trait MonitorStore: Send + Sync {
    /// Organizations whose audit log grew past the monitor's cursor (at most `limit`).
    async fn monitor_backlog(&self, limit: u32) -> Result<Vec<MonitorBacklog>>;

    /// The stored detector states of these agents (missing ones are absent).
    async fn monitor_states(
        &self,
        org_id: Uuid,
        agent_ids: &[String],
    ) -> Result<Vec<AgentMonitorState>>;

    /// Commits a batch (see the module invariants). `false`: the cursor moved meanwhile (another
    /// replica analysed the page); nothing was written.
    async fn commit_monitor_batch(&self, b: &MonitorBatch) -> Result<bool>;

    /// Baseline observations and anomaly weight since `since` of one agent.
    async fn monitor_evidence(
        &self,
        org_id: Uuid,
        agent_id: &str,
        since: i64,
    ) -> Result<MonitorEvidence>;

    async fn list_anomalies(&self, org_id: Uuid, f: &MonitorFilter) -> Result<Vec<AnomalyRow>>;

    async fn get_incident(&self, org_id: Uuid, id: Uuid) -> Result<Option<IncidentRow>>;
    async fn list_incidents(&self, org_id: Uuid, f: &MonitorFilter) -> Result<Vec<IncidentRow>>;
    /// Moves an incident to `to` when its state is one of `from`, with `audit`.
    #[allow(clippy::too_many_arguments)]
    async fn set_incident_state(
        &self,
        org_id: Uuid,
        id: Uuid,
        from: &[&str],
        to: &str,
        by: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<Change<IncidentRow>>;

    async fn get_alert(&self, org_id: Uuid, id: Uuid) -> Result<Option<AlertRow>>;
    async fn list_alerts(&self, org_id: Uuid, f: &MonitorFilter) -> Result<Vec<AlertRow>>;
    /// Moves an alert to `to` when its state is one of `from`, with `audit`.
    #[allow(clippy::too_many_arguments)]
    async fn set_alert_state(
        &self,
        org_id: Uuid,
        id: Uuid,
        from: &[&str],
        to: &str,
        by: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<Change<AlertRow>>;

    async fn create_alert_route(&self, r: &AlertRouteRow, audit: &AuditRecord) -> Result<()>;
    async fn get_alert_route(&self, org_id: Uuid, id: Uuid) -> Result<Option<AlertRouteRow>>;
    /// Every route of the organization (a handful), oldest first.
    async fn list_alert_routes(&self, org_id: Uuid) -> Result<Vec<AlertRouteRow>>;
    /// Replaces the route's mutable fields (name, severity, enabled, target, secret). `false`:
    /// no such route.
    async fn update_alert_route(&self, r: &AlertRouteRow, audit: &AuditRecord) -> Result<bool>;
    /// Deletes the route and its pending deliveries. `false`: no such route.
    async fn delete_alert_route(&self, org_id: Uuid, id: Uuid, audit: &AuditRecord)
    -> Result<bool>;

    /// Leases up to `limit` pending deliveries due at `now` (any organization) until
    /// `now + lease_ms`; returns the leased rows.
    async fn lease_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>>;
    /// Records an attempt and the delivery's new status (the lease is released).
    async fn finish_delivery_attempt(&self, d: &DeliveryRow, o: &AttemptOutcome) -> Result<()>;
    async fn list_deliveries(&self, org_id: Uuid, alert_id: Uuid) -> Result<Vec<DeliveryRow>>;
    async fn list_delivery_attempts(
        &self,
        org_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Vec<DeliveryAttemptRow>>;
}
