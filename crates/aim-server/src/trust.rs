//! Server evidence for the trust score of an agent (`docs/TRUST.md`, "Server evidence"), the
//! cached score of the decision path, and the trust history.
//!
//! [`evidence`] builds an [`aim_core::trust::Evidence`] from the agent row, ONE store statement
//! over the agent's activity counters and action decisions
//! ([`aim_store::TrustStore::activity_evidence`]) and the in-memory result of the incremental
//! chain verification ([`AppState::chain_intact`]). Its cost does not depend on the length of
//! the audit chain. Invariants:
//! - counters are written in the transaction of the audit records they count
//!   ([`aim_store::activity_of`]), so the evidence never counts an event that did not commit;
//! - the lifecycle entries an agent row implies (registration, first verification, revocation)
//!   are present by construction (each is written in the transaction of its change), so they are
//!   due and present; outcome reports of approved actions are due once the approval ended
//!   [`RESULT_GRACE_MS`] ago;
//! - a chain that failed verification sets `audit_chain_intact = Some(false)` (audit factor 0);
//! - the behaviour baseline (its observation count) and the anomaly weight of the last 7 days come
//!   from the security monitor ([`crate::monitor`], one more indexed statement), which trails the
//!   audit log by at most one monitor interval;
//! - MCP use comes from the agent's connection counts of the last 30 days and each server's
//!   confidence ([`crate::mcp_attestation`]).
//!
//! [`decision_score`] reuses a score for `trust_cache_ttl_secs` (bounded map, [`CACHE_MAX`]
//! entries). Every recomputation ([`decision_score`] on a miss, [`report`] always) appends a
//! history entry when the published score moved by at least [`HISTORY_MIN_DELTA`] points, the
//! level changed, or the agent has no entry yet.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use aim_core::trust::{Evidence, FactorKind, SubjectState, TrustLevel, TrustReport};
use aim_store::{ActivityWindows, Agent, AgentStatus, TrustChange};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::error::Error;
use crate::state::{AppState, ms_to_rfc3339};

/// An approved action is due its outcome report this long after its approval ended.
pub const RESULT_GRACE_MS: i64 = 3_600_000;
/// Most agents whose decision score is cached at once (about 100 bytes each).
pub const CACHE_MAX: usize = 100_000;
/// Smallest move of the published score (points) that is a history entry.
pub const HISTORY_MIN_DELTA: f64 = 0.1;

fn subject_state(s: AgentStatus) -> SubjectState {
    match s {
        AgentStatus::Pending => SubjectState::Pending,
        AgentStatus::Active => SubjectState::Active,
        AgentStatus::Suspended => SubjectState::Suspended,
        AgentStatus::Revoked => SubjectState::Revoked,
    }
}

/// How many lifecycle audit entries the agent row implies: its registration, its first
/// verification (when `verified_at` is set) and its revocation (when `revoked_at` is set).
fn lifecycle_entries(agent: &Agent) -> u64 {
    1 + u64::from(agent.verified_at.is_some()) + u64::from(agent.revoked_at.is_some())
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Builds the evidence for `agent` at `now_ms` from what the store records.
pub async fn evidence(state: &AppState, agent: &Agent, now_ms: i64) -> Result<Evidence, Error> {
    let mut e = Evidence::new(now_ms, subject_state(agent.status), agent.created_at);
    let w = ActivityWindows::at(now_ms, RESULT_GRACE_MS);
    let a = state
        .store
        .activity_evidence(agent.org_id, &agent.id, &w)
        .await?;
    e.last_key_proof_ms = a.last_key_proof_at;
    e.key_proofs_30d = count(a.key_proofs_30d);
    e.key_proof_failures_30d = count(a.key_proof_failures_30d);
    // The server's own challenge verification is the one attester it knows today.
    e.attesters_90d = u64::from(a.challenges_passed_90d > 0);
    e.decisions_30d = count(a.decisions_30d);
    e.violations_30d = count(a.violations_30d).min(e.decisions_30d);
    e.results_ok_7d = count(a.results_ok_7d);
    e.results_failed_7d = count(a.results_failed_7d);
    let lifecycle = lifecycle_entries(agent);
    e.records_due = lifecycle + count(a.results_due);
    e.records_present = lifecycle + count(a.results_present).min(count(a.results_due));
    e.audit_chain_intact = state.chain_intact(agent.org_id);
    e.last_activity_ms = a.last_activity_at;
    let m = state
        .store
        .monitor_evidence(
            agent.org_id,
            &agent.id,
            now_ms - 7 * aim_store::activity::DAY_MS,
        )
        .await?;
    e.baseline_observations = count(m.baseline_observations);
    e.anomaly_severity_7d = m.anomaly_weight.max(0.0);
    e.mcp_servers_30d =
        crate::mcp_attestation::agent_mcp_use(state, agent.org_id, &agent.id, now_ms).await?;
    Ok(e)
}

/// The trust report of `agent` now, with the evidence it was computed from. Records a history
/// entry when the score changed (`actor`: who asked).
pub async fn report(
    state: &AppState,
    agent: &Agent,
    actor: &str,
) -> Result<(Evidence, TrustReport), Error> {
    let now = state.now_ms();
    let e = evidence(state, agent, now).await?;
    let r = aim_core::trust::score(&e);
    record_history(state, agent, &r, now, actor).await?;
    state.trust_cache.put(agent, r.score, now);
    Ok((e, r))
}

/// The agent's trust score for an action decision (`None` = unscored), reused for
/// `trust_cache_ttl_secs` after it was computed (recomputed at once when the agent's status
/// changed). A recomputation records a history entry when the score changed (actor `system`).
pub async fn decision_score(state: &AppState, agent: &Agent) -> Result<Option<f64>, Error> {
    let now = state.now_ms();
    let ttl_ms =
        i64::try_from(state.config.trust_cache_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    if let Some(score) = state.trust_cache.get(agent, now, ttl_ms) {
        return Ok(score);
    }
    // One recomputation per agent at a time: concurrent misses of the same agent wait for the
    // first and take its result (a burst of decisions after start or after an eviction would
    // otherwise each read the evidence).
    let _flight = state.trust_cache.flight(&agent.id).lock().await;
    if let Some(score) = state.trust_cache.get(agent, now, ttl_ms) {
        return Ok(score);
    }
    state.trust_cache.recomputed.fetch_add(1, Ordering::Relaxed);
    let e = evidence(state, agent, now).await?;
    let r = aim_core::trust::score(&e);
    record_history(state, agent, &r, now, "system").await?;
    state.trust_cache.put(agent, r.score, now);
    Ok(r.score)
}

/// One cached decision score.
struct Cached {
    score: Option<f64>,
    status: AgentStatus,
    at_ms: i64,
}

/// The decision path's score cache: agent id → score, bounded by [`CACHE_MAX`] entries. When
/// full, expired entries are dropped first, then arbitrary ones (an eighth of the map), so
/// memory stays bounded under any load.
#[derive(Default)]
pub struct TrustCache {
    map: Mutex<HashMap<String, Cached>>,
    /// Recomputation locks, striped by agent id: bounded memory, and two agents sharing a stripe
    /// only wait for each other's (rare) recomputation.
    flights: [tokio::sync::Mutex<()>; FLIGHT_STRIPES],
    /// Decision-path recomputations since start (observability and tests).
    pub recomputed: AtomicU64,
}

/// Number of recomputation locks of [`TrustCache`].
const FLIGHT_STRIPES: usize = 32;

impl TrustCache {
    fn get(&self, agent: &Agent, now: i64, ttl_ms: i64) -> Option<Option<f64>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let c = map.get(&agent.id)?;
        (c.status == agent.status && now >= c.at_ms && now - c.at_ms < ttl_ms).then_some(c.score)
    }

    fn put(&self, agent: &Agent, score: Option<f64>, now: i64) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_MAX && !map.contains_key(&agent.id) {
            // Anything older than the longest allowed TTL (1 h) is useless.
            map.retain(|_, c| now - c.at_ms < 3_600_000);
            if map.len() >= CACHE_MAX {
                let drop: Vec<String> = map.keys().take(CACHE_MAX / 8).cloned().collect();
                for k in drop {
                    map.remove(&k);
                }
            }
        }
        map.insert(
            agent.id.clone(),
            Cached {
                score,
                status: agent.status,
                at_ms: now,
            },
        );
    }

    fn flight(&self, agent_id: &str) -> &tokio::sync::Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(agent_id, &mut h);
        &self.flights[(std::hash::Hasher::finish(&h) as usize) % FLIGHT_STRIPES]
    }

    /// Forgets an agent's score (the next decision recomputes it).
    pub fn invalidate(&self, agent_id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(agent_id);
    }

    /// Number of cached scores.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn level_name(l: TrustLevel) -> String {
    serde_json::to_value(l)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `{factor key: value or null}` of a report.
fn factor_values(r: &TrustReport) -> Map<String, Value> {
    r.factors
        .iter()
        .map(|f| (f.factor.key().to_string(), json!(f.value)))
        .collect()
}

fn fmt_value(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |x| format!("{x:.2}"))
}

/// The factors whose value differs between `before` and `after`, e.g.
/// `error_rate 1.00→0.50, capability_compliance n/a→0.81` (changes below 0.005 are listed only
/// when nothing moved more).
pub fn change_reason(before: &Map<String, Value>, after: &Map<String, Value>) -> String {
    let mut big = Vec::new();
    let mut small = Vec::new();
    for k in FactorKind::ALL {
        let key = k.key();
        let b = before.get(key).and_then(Value::as_f64);
        let a = after.get(key).and_then(Value::as_f64);
        if b == a {
            continue;
        }
        let moved = match (b, a) {
            (Some(x), Some(y)) => (x - y).abs(),
            _ => f64::INFINITY,
        };
        let text = if moved >= 0.005 {
            format!("{key} {}→{}", fmt_value(b), fmt_value(a))
        } else {
            format!(
                "{key} {:.4}→{:.4}",
                b.unwrap_or_default(),
                a.unwrap_or_default()
            )
        };
        if moved >= 0.005 {
            big.push(text);
        } else {
            small.push(text);
        }
    }
    if big.is_empty() { small } else { big }.join(", ")
}

/// Appends a history entry (with its `trust.score_changed` audit record) when `r` differs from
/// the agent's newest entry: the score moved by [`HISTORY_MIN_DELTA`] points or more, the level
/// changed (including scored ↔ unscored), or there is no entry yet.
async fn record_history(
    state: &AppState,
    agent: &Agent,
    r: &TrustReport,
    now: i64,
    actor: &str,
) -> Result<(), Error> {
    let last = state
        .store
        .last_trust_change(agent.org_id, &agent.id)
        .await?;
    let level = level_name(r.level);
    let factors = factor_values(r);
    let (previous, reason) = match &last {
        None => (None, "first computation".to_string()),
        Some(l) => {
            let moved = match (l.new_score, r.score) {
                (Some(a), Some(b)) => (a - b).abs() >= HISTORY_MIN_DELTA,
                (None, None) => false,
                _ => true,
            };
            if !moved && l.level == level {
                return Ok(());
            }
            let before: Map<String, Value> = serde_json::from_str(&l.factors).unwrap_or_default();
            (l.new_score, change_reason(&before, &factors))
        }
    };
    let delta = match (previous, r.score) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let change = TrustChange {
        id: Uuid::now_v7(),
        org_id: agent.org_id,
        agent_id: agent.id.clone(),
        at: now,
        previous_score: previous,
        new_score: r.score,
        delta,
        level: level.clone(),
        reason: reason.clone(),
        actor: actor.to_string(),
        factors: Value::Object(factors).to_string(),
    };
    let audit = state.audit(
        Some(agent.org_id),
        "trust.score_changed",
        // Never the agent itself: a trust change is not an action of the agent.
        if actor.starts_with("agent:") { "system".into() } else { actor.to_string() },
        Some(format!("agent:{}", agent.id)),
        json!({ "previous": previous, "new": r.score, "delta": delta, "level": level, "reason": reason }),
        None,
    );
    state.store.insert_trust_change(&change, &audit).await?;
    Ok(())
}

/// Wire form of a history entry.
pub fn change_json(c: &TrustChange) -> Value {
    json!({
        "id": c.id,
        "agentId": c.agent_id,
        "at": ms_to_rfc3339(c.at),
        "previous": c.previous_score,
        "new": c.new_score,
        "delta": c.delta,
        "level": c.level,
        "reason": c.reason,
        "actor": c.actor,
    })
}

/// Wire form: `{agentId, score, level, confidence, factors, computedAt}`.
pub fn report_json(agent_id: &str, r: &TrustReport, now_ms: i64) -> Value {
    let factors: Vec<Value> = r
        .factors
        .iter()
        .map(|f| {
            json!({
                "factor": f.factor,
                "name": f.name,
                "weight": f.weight,
                "value": f.value,
                "included": f.included,
                "contribution": f.contribution,
                "explanation": f.explanation,
            })
        })
        .collect();
    json!({
        "agentId": agent_id,
        "score": r.score,
        "level": r.level,
        "confidence": r.confidence,
        "factors": factors,
        "computedAt": ms_to_rfc3339(now_ms),
    })
}
