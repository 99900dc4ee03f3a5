//! Server evidence for the trust score of an agent (`docs/TRUST.md`, "Server evidence").
//!
//! [`evidence`] builds an [`aim_core::trust::Evidence`] from the agent row and one pass over the
//! organization's audit chain (which it also verifies). Invariants:
//! - only entries whose `subject` is `agent:<id>` (or whose `actor` is the agent) are counted;
//! - a chain that does not verify sets `audit_chain_intact = Some(false)` (the audit factor is 0);
//! - decisions, behaviour baseline, anomalies, MCP use and action outcomes have no server source
//!   yet and keep the "no data" values of [`Evidence::new`], so their factors are excluded.

use aim_core::audit::ChainVerifier;
use aim_core::trust::{DAY_MS, Evidence, SubjectState, TrustReport};
use aim_store::{Agent, AgentStatus, audit_chain};
use serde_json::{Value, json};

use crate::error::Error;
use crate::state::{AppState, ms_to_rfc3339};

/// Rows read per page of the audit chain.
const PAGE: u32 = 1000;

/// Successful proofs of key possession: a passed AIP challenge, a completed key rotation.
const PROOF_EVENTS: &[&str] = &["agent.challenge.passed", "agent.key.rotated"];
/// Failed proofs recorded by the server: rejected AIP challenge responses.
const FAILURE_EVENTS: &[&str] = &["agent.challenge.failed"];

fn subject_state(s: AgentStatus) -> SubjectState {
    match s {
        AgentStatus::Pending => SubjectState::Pending,
        AgentStatus::Active => SubjectState::Active,
        AgentStatus::Suspended => SubjectState::Suspended,
        AgentStatus::Revoked => SubjectState::Revoked,
    }
}

/// The audit events the agent row says must exist: its registration, its first verification
/// (when `verified_at` is set) and its revocation (when `revoked_at` is set).
fn due_events(agent: &Agent) -> Vec<&'static str> {
    let mut due = vec!["agent.registered"];
    if agent.verified_at.is_some() {
        due.push("agent.challenge.passed");
    }
    if agent.revoked_at.is_some() {
        due.push("agent.revoked");
    }
    due
}

/// Builds the evidence for `agent` at `now_ms` from what the store records.
pub async fn evidence(state: &AppState, agent: &Agent, now_ms: i64) -> Result<Evidence, Error> {
    let mut e = Evidence::new(now_ms, subject_state(agent.status), agent.created_at);
    let subject = format!("agent:{}", agent.id);
    let due = due_events(agent);
    let mut present = vec![false; due.len()];
    let mut verifier = ChainVerifier::new().strict(true);
    let mut broken = false;
    let mut from = 0u64;
    'pages: loop {
        let rows = state
            .store
            .list_audit_chain(agent.org_id, from, PAGE)
            .await?;
        let n = rows.len();
        for r in &rows {
            let pushed = match audit_chain::entry_of_row(r) {
                Ok(entry) => verifier.push_entry(&entry),
                Err(reason) => verifier.push_digest(Err(reason), false),
            };
            if pushed.is_err() {
                broken = true;
                break 'pages;
            }
            from = r.seq.map_or(from, |s| s as u64 + 1);
            let about = r.subject.as_deref() == Some(subject.as_str());
            if !about && r.actor != subject {
                continue;
            }
            let age = now_ms - r.at;
            if about {
                for (i, d) in due.iter().enumerate() {
                    if r.event_type == *d {
                        present[i] = true;
                    }
                }
                if PROOF_EVENTS.contains(&r.event_type.as_str()) {
                    e.last_key_proof_ms = Some(e.last_key_proof_ms.map_or(r.at, |t| t.max(r.at)));
                    if age <= 30 * DAY_MS {
                        e.key_proofs_30d += 1;
                    }
                }
                if FAILURE_EVENTS.contains(&r.event_type.as_str()) && age <= 30 * DAY_MS {
                    e.key_proof_failures_30d += 1;
                }
                if r.event_type == "agent.challenge.passed" && age <= 90 * DAY_MS {
                    // The server's own verification is the one attester it knows today.
                    e.attesters_90d = 1;
                }
            }
            if r.actor == subject {
                e.last_activity_ms = Some(e.last_activity_ms.map_or(r.at, |t| t.max(r.at)));
            }
        }
        if n < PAGE as usize {
            break;
        }
    }
    let intact = !broken
        && verifier.problem().is_none()
        && verifier.finish().size == state.store.audit_head(agent.org_id).await?.size;
    e.audit_chain_intact = Some(intact);
    e.records_due = due.len() as u64;
    e.records_present = present.iter().filter(|p| **p).count() as u64;
    Ok(e)
}

/// The trust report of `agent` now, with the evidence it was computed from.
pub async fn report(state: &AppState, agent: &Agent) -> Result<(Evidence, TrustReport), Error> {
    let now = state.now_ms();
    let e = evidence(state, agent, now).await?;
    let r = aim_core::trust::score(&e);
    Ok((e, r))
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
