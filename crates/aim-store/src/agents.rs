//! Agents: the rows, the [`AgentStore`] contract, and the hot-path batch write.
//!
//! Invariants every implementation keeps:
//! - An agent's `id` is the self-certifying `aim_…` id of its inception key (computed by the
//!   caller with `aim_core::keys::agent_id_for`); it never changes, also across key rotations. It is
//!   unique server-wide, the name is unique per organization.
//! - Only public keys are stored. The current key is `public_key`; after a rotation the previous
//!   key stays usable for signed requests until `previous_key_valid_until`, and every key ever held
//!   is kept in `agent_keys`.
//! - `revoked` is final: no transition leaves it.
//! - An AIP challenge is accepted at most once (one conditional `UPDATE ... WHERE used_at IS
//!   NULL`), on every replica.
//! - A signed-request nonce is claimed by an `INSERT` into `agent_nonces` whose primary key is
//!   `(signed_at, org_id, agent_id, nonce)`: a replay (the same signed timestamp and nonce of the
//!   same agent) is a key conflict, also across replicas. The signed timestamp leads the key so
//!   that claims and pruning stay on contiguous pages.
//! - Every change takes an [`AuditRecord`] written in the same transaction.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::audit_chain::{ChainRecord, PreparedAudit};
use crate::{AuditRecord, Result};

/// Lifecycle state of an agent.
///
/// ```text
/// pending --(AIP challenge passed)--> active <--(suspend / activate)--> suspended
///    \                                  |                                 |
///     `---------------(revoke)----------+--------------(revoke)-----------'--> revoked (final)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    /// Registered, possession of the key not yet proven.
    Pending,
    /// Proved possession of its key; may make signed requests.
    Active,
    /// Temporarily refused; a manager may reactivate it.
    Suspended,
    /// Permanently refused.
    Revoked,
}

impl AgentStatus {
    /// The stored (and wire) name.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Pending => "pending",
            AgentStatus::Active => "active",
            AgentStatus::Suspended => "suspended",
            AgentStatus::Revoked => "revoked",
        }
    }
}

impl fmt::Display for AgentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AgentStatus {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(AgentStatus::Pending),
            "active" => Ok(AgentStatus::Active),
            "suspended" => Ok(AgentStatus::Suspended),
            "revoked" => Ok(AgentStatus::Revoked),
            other => Err(crate::Error::Corrupt(format!(
                "unknown agent status {other:?}"
            ))),
        }
    }
}

impl TryFrom<String> for AgentStatus {
    type Error = crate::Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// Declared capabilities, stored as a JSON array of strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities(pub Vec<String>);

impl Capabilities {
    /// The stored JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".into())
    }
}

impl TryFrom<String> for Capabilities {
    type Error = crate::Error;
    fn try_from(s: String) -> Result<Self> {
        serde_json::from_str(&s)
            .map(Capabilities)
            .map_err(|e| crate::Error::Corrupt(format!("agent capabilities: {e}")))
    }
}

/// A registered agent.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Agent {
    /// Self-certifying id (`aim_…`) of the inception key.
    pub id: String,
    pub org_id: Uuid,
    pub name: String,
    /// The user who registered it; `None` once that user was deleted (managers still manage it).
    pub owner_id: Option<Uuid>,
    #[sqlx(try_from = "String")]
    pub status: AgentStatus,
    #[sqlx(try_from = "String")]
    pub capabilities: Capabilities,
    /// Current raw 32-byte Ed25519 public key.
    pub public_key: Vec<u8>,
    /// 1 for the inception key, +1 per rotation.
    pub key_version: i64,
    /// The key before the last rotation, valid until `previous_key_valid_until`.
    pub previous_key: Option<Vec<u8>>,
    pub previous_key_valid_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the agent first passed an AIP challenge.
    pub verified_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl Agent {
    /// The previous key if its grace period has not ended at `now`.
    pub fn grace_key(&self, now: i64) -> Option<&[u8]> {
        match (&self.previous_key, self.previous_key_valid_until) {
            (Some(k), Some(until)) if now < until => Some(k),
            _ => None,
        }
    }
}

/// What is needed to register an agent.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub id: String,
    pub org_id: Uuid,
    pub name: String,
    pub owner_id: Uuid,
    pub capabilities: Capabilities,
    pub public_key: Vec<u8>,
    pub created_at: i64,
    /// Whether possession of the key is already established, so the agent starts `active`
    /// (`verified_at = created_at`) instead of `pending`. Only for a key pair the server itself
    /// generated (aim-sdk registration); a client-supplied key must pass the AIP challenge.
    pub key_proven: bool,
    /// Capability requests created with the agent, in the same transaction (declared
    /// capabilities a member registered: they wait for a manager's approval). Each must name
    /// this agent and be `pending`.
    pub pending_requests: Vec<crate::actions::CapabilityRequest>,
}

/// One key of an agent's history.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AgentKey {
    pub agent_id: String,
    pub version: i64,
    pub public_key: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    /// End of the grace period of a retired key.
    pub valid_until: Option<i64>,
}

/// An AIP challenge as issued (the exact JSON sent to the agent is in `body`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredChallenge {
    pub nonce: String,
    pub org_id: Uuid,
    pub agent_id: String,
    pub body: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// Result of a status change.
// Returned once per request and matched at once: boxing the agent would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Changed; the agent as it is now.
    Done(Agent),
    /// No agent with this id in the organization.
    NotFound,
    /// The agent is in a state the transition does not start from.
    NotAllowed(AgentStatus),
}

/// A signed-request nonce to claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceClaim {
    /// The request's signed timestamp (Unix seconds, as signed).
    pub signed_at: i64,
    pub org_id: Uuid,
    pub agent_id: String,
    pub nonce: String,
    /// When the row may be pruned: the request timestamp plus the acceptance window (after that the
    /// timestamp check alone refuses the request).
    pub expires_at: i64,
}

/// One item of a [`AgentStore::commit_decisions`] batch.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionWrite {
    /// The request nonce to claim, if the item records a signed request.
    pub nonce: Option<NonceClaim>,
    /// Written when the item commits (its nonce was fresh).
    pub audit: AuditRecord,
    /// Written instead of `audit` when the nonce was already used (a replay is a security event).
    pub replay_audit: Option<AuditRecord>,
    /// The change the request makes, in the same transaction (after its nonce was claimed).
    pub op: DecisionOp,
    /// `audit` prepared for its chain off the writer's serial path ([`DecisionWrite::prepare`]);
    /// `None`: the store prepares it. Invariant: made from `audit` as it is committed (a stale
    /// one would store an entry whose hash does not verify).
    pub prepared: Option<PreparedAudit>,
}

/// A batch's nonce claims, for the stores whose writers may run side by side (replicas on
/// PostgreSQL): `(fresh, claims)`, where `fresh[i]` is false for an item repeating an earlier
/// item's nonce (a replay of its first occurrence) and `claims` lists the first occurrences in
/// key order `(signed_at, org, agent, nonce)`. Claimed in that order, two writers given the same
/// keys in opposite orders — replays of each other's requests — wait for each other instead of
/// deadlocking (a transaction inserting a key another holds uncommitted waits for it).
pub(crate) fn claims_in_key_order(items: &[DecisionWrite]) -> (Vec<bool>, Vec<usize>) {
    let mut fresh = vec![true; items.len()];
    let mut first = std::collections::BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(c) = &item.nonce {
            let key = (c.signed_at, c.org_id, c.agent_id.as_str(), c.nonce.as_str());
            match first.entry(key) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(i);
                }
                std::collections::btree_map::Entry::Occupied(_) => fresh[i] = false,
            }
        }
    }
    (fresh, first.into_values().collect())
}

/// The fresh outcome-report items of a batch, in `(org, decision)` order and, for one decision,
/// in item order: applied in this order, two writers (replicas) reporting on the same decisions
/// lock their rows in one order, and the earlier of two reports in a batch applies.
pub(crate) fn reports_in_key_order(items: &[DecisionWrite], fresh: &[bool]) -> Vec<usize> {
    let mut reports: Vec<(Uuid, Uuid, usize)> = items
        .iter()
        .zip(fresh)
        .enumerate()
        .filter_map(|(i, (item, f))| match &item.op {
            DecisionOp::ActionResult {
                org_id, action_id, ..
            } if *f => Some((*org_id, *action_id, i)),
            _ => None,
        })
        .collect();
    reports.sort_unstable();
    reports.into_iter().map(|(_, _, i)| i).collect()
}

impl DecisionWrite {
    /// Canonicalizes `audit` now (on the caller's thread), so that the batch's writer only chains
    /// it. Call after the last change to `audit`.
    pub fn prepare(&mut self) -> Result<()> {
        self.prepared = Some(PreparedAudit::of(&self.audit)?);
        Ok(())
    }

    /// The record this item appends when its nonce was fresh, with its prepared body.
    pub(crate) fn chain_record(&self) -> ChainRecord<'_> {
        ChainRecord {
            rec: &self.audit,
            prepared: self.prepared.as_ref(),
        }
    }
}

/// The row change of a signed request, applied by [`AgentStore::commit_decisions`] only when the
/// item's nonce was fresh.
#[derive(Debug, Clone, PartialEq)]
pub enum DecisionOp {
    /// Nothing but the audit record.
    None,
    /// Insert an action decision.
    InsertAction(Box<crate::actions::NewAction>),
    /// Record the outcome of an approved decision of this agent not yet reported; otherwise
    /// [`DecisionOutcome::Conflict`].
    ActionResult {
        org_id: Uuid,
        action_id: Uuid,
        agent_id: String,
        result: crate::actions::ActionResult,
        detail: Option<String>,
        at: i64,
    },
    /// Insert a pending capability request; [`DecisionOutcome::Conflict`] when one is already
    /// pending for this agent and capability.
    CapabilityRequest(Box<crate::actions::CapabilityRequest>),
    /// Insert an MCP attestation, count the day's use and mark the server drifted when the
    /// attested manifest differs from its pin; [`DecisionOutcome::Conflict`] when the server is
    /// not in the organization.
    McpAttestation(Box<crate::mcp::NewMcpAttestation>),
    /// Register an MCP server (unpinned, as an agent declares it); [`DecisionOutcome::Conflict`]
    /// when the organization already has a server of that name.
    CreateMcpServer(Box<crate::mcp::McpServerRow>),
}

/// Outcome of one [`DecisionWrite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionOutcome {
    /// The nonce (if any) was claimed and `audit` is durable.
    Committed,
    /// The nonce was already claimed (by an earlier request, an earlier item of the same batch, or
    /// another replica); `audit` was not written (`replay_audit` was, if given).
    Replayed,
    /// The nonce was claimed but the item's [`DecisionOp`] found its precondition false (nothing
    /// changed, `audit` was not written).
    Conflict,
}

/// Storage of agents, their keys, AIP challenges and request nonces. Required by
/// [`crate::Store`], implemented once for both backends (`agents_sql.rs`).
#[async_trait::async_trait]
pub trait AgentStore: Send + Sync {
    /// Registers an agent with its inception key (version 1) in status `pending`, its declared
    /// grants (`capabilities`) and its `pending_requests`, in one transaction. Fails with
    /// [`crate::Error::Conflict`] when the id, the key or the name (in the organization) is taken.
    async fn create_agent(&self, agent: &NewAgent, audit: &AuditRecord) -> Result<Agent>;

    async fn get_agent(&self, org_id: Uuid, id: &str) -> Result<Option<Agent>>;

    /// Lookup by id alone (public DID documents, signed requests: the id names the organization).
    async fn find_agent(&self, id: &str) -> Result<Option<Agent>>;

    /// The agent named `name` in the organization (names are unique per organization).
    async fn get_agent_by_name(&self, org_id: Uuid, name: &str) -> Result<Option<Agent>>;

    /// Agents of an organization ordered by id, those with `id > after`, at most `limit` (clamped
    /// to 1..=500).
    async fn list_agents(
        &self,
        org_id: Uuid,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Agent>>;

    /// The key history, oldest first.
    async fn list_agent_keys(&self, org_id: Uuid, id: &str) -> Result<Vec<AgentKey>>;

    /// Moves the agent to `to` if its current status is one of `from` (atomically). Moving to
    /// `revoked` stamps `revoked_at`.
    async fn transition_agent(
        &self,
        org_id: Uuid,
        id: &str,
        from: &[AgentStatus],
        to: AgentStatus,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<Transition>;

    /// Replaces the current key by `new_key` if the agent is active and its current key is still
    /// `expected_current` (so two concurrent rotations cannot both win). The old key stays valid
    /// until `grace_until`. Returns `None` when the condition does not hold. Fails with
    /// [`crate::Error::Conflict`] when `new_key` is another agent's key.
    #[allow(clippy::too_many_arguments)]
    async fn rotate_agent_key(
        &self,
        org_id: Uuid,
        id: &str,
        expected_current: &[u8],
        new_key: &[u8],
        grace_until: i64,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<Option<Agent>>;

    /// Records an issued AIP challenge (no audit: issuing changes nothing; results are audited).
    async fn insert_challenge(&self, challenge: &StoredChallenge) -> Result<()>;

    async fn get_challenge(&self, nonce: &str) -> Result<Option<StoredChallenge>>;

    /// Consumes the challenge (`used_at IS NULL`, not expired at `now`) and moves a `pending`
    /// agent to `active`. Returns `None` (and changes nothing) when the challenge was already
    /// consumed or expired meanwhile.
    async fn accept_challenge(
        &self,
        org_id: Uuid,
        agent_id: &str,
        nonce: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<Option<Agent>>;

    /// The hot-path batch: ONE transaction claims every item's nonce and appends the audit
    /// records. A conflicting nonce makes only that item [`DecisionOutcome::Replayed`]; the others
    /// still commit. Outcomes are in input order. An error means nothing was written.
    async fn commit_decisions(&self, items: &[DecisionWrite]) -> Result<Vec<DecisionOutcome>>;

    /// [`AgentStore::commit_decisions`], calling `committing` once every row lock of the batch
    /// is taken and only its commit is left (the caller may then start the next batch: whatever
    /// it locks, it waits for this batch's commit and no longer). Dropped uncalled if the batch
    /// fails before that point. Batches that cannot overlap (SQLite, the generic path) call it
    /// after the whole batch.
    async fn commit_decisions_then(
        &self,
        items: &[DecisionWrite],
        committing: Box<dyn FnOnce() + Send>,
    ) -> Result<Vec<DecisionOutcome>>;

    /// Deletes nonces signed before `signed_before` (Unix seconds) that expired at `now` (Unix
    /// ms), and challenges expired more than a day before `now`. Returns the number of rows
    /// deleted. The caller passes `signed_before` = its clock minus its window, so the delete is
    /// one leading range of the key; a row claimed by a replica with a longer window survives
    /// until its own `expires_at`.
    async fn prune_agent_nonces(&self, now: i64, signed_before: i64) -> Result<u64>;
}
