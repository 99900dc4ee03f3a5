//! Per-agent activity counters (trust evidence kept incrementally) and the trust history: the
//! pure event → counter mapping, the rows, and the [`TrustStore`] contract (implemented once for
//! both backends in `activity_sql.rs`).
//!
//! Invariants every implementation keeps:
//! - Counters are written only by the audit append (`append_audits_on`), in the transaction of
//!   the records they count: a counter moves if and only if its audit record commits. The batch
//!   is aggregated per (agent, day) and upserted in ascending (agent, day) order before the
//!   chain head lock, which stays the transaction's last write.
//! - [`activity_of`] is a pure function of one record; `docs/TRUST.md` ("Server evidence") lists
//!   the same mapping.
//! - Reading an agent's evidence ([`TrustStore::activity_evidence`]) is one statement over the
//!   agent's counter rows of the last 90 days and its action decisions of the last 30 days (both
//!   index range scans): it never reads the audit chain.
//! - Trust history rows are append-only and each is written with its `trust.score_changed` audit
//!   record in one transaction.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::{AuditRecord, Result};

/// One day in milliseconds (the counters' bucket).
pub const DAY_MS: i64 = 86_400_000;

/// Deny reason codes that make a decision a violation (a missing grant, a policy deny). Rate
/// limits (`RATE_LIMITED`) and trust thresholds (`TRUST_TOO_LOW`) are not violations.
pub const VIOLATION_CODES: &[&str] = &["NO_GRANT", "FORBIDDEN_BY_POLICY", "NO_MATCHING_PERMIT"];

/// Successful proofs of key possession.
pub const PROOF_EVENTS: &[&str] = &["agent.challenge.passed", "agent.key.rotated"];

/// Records whose actor is an agent but that are not the agent acting now: a replayed request
/// carries the agent's old signature, whoever resent it.
pub const NOT_ACTIVITY: &[&str] = &["agent.request.replayed"];

/// What one audit record adds to one agent's counters of one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityDelta {
    pub org_id: Uuid,
    pub agent_id: String,
    /// UTC day: `at.div_euclid(DAY_MS)`.
    pub day: i64,
    pub decisions: i64,
    pub violations: i64,
    pub results_ok: i64,
    pub results_failed: i64,
    pub key_proofs: i64,
    pub key_proof_failures: i64,
    /// Passed AIP challenges (the server's own attestation of the agent).
    pub challenges_passed: i64,
    pub last_key_proof_at: Option<i64>,
    pub last_activity_at: Option<i64>,
}

impl ActivityDelta {
    fn empty(org_id: Uuid, agent_id: &str, at: i64) -> ActivityDelta {
        ActivityDelta {
            org_id,
            agent_id: agent_id.to_string(),
            day: at.div_euclid(DAY_MS),
            decisions: 0,
            violations: 0,
            results_ok: 0,
            results_failed: 0,
            key_proofs: 0,
            key_proof_failures: 0,
            challenges_passed: 0,
            last_key_proof_at: None,
            last_activity_at: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.decisions == 0
            && self.violations == 0
            && self.results_ok == 0
            && self.results_failed == 0
            && self.key_proofs == 0
            && self.key_proof_failures == 0
            && self.challenges_passed == 0
            && self.last_key_proof_at.is_none()
            && self.last_activity_at.is_none()
    }

    /// Adds `o` (same agent and day) into `self`.
    fn merge(&mut self, o: &ActivityDelta) {
        self.decisions += o.decisions;
        self.violations += o.violations;
        self.results_ok += o.results_ok;
        self.results_failed += o.results_failed;
        self.key_proofs += o.key_proofs;
        self.key_proof_failures += o.key_proof_failures;
        self.challenges_passed += o.challenges_passed;
        self.last_key_proof_at = max_opt(self.last_key_proof_at, o.last_key_proof_at);
        self.last_activity_at = max_opt(self.last_activity_at, o.last_activity_at);
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Whether an `agent.action.verified` payload is a violation: status `denied` with at least one
/// of [`VIOLATION_CODES`] among its `reasonCodes`.
fn is_violation(payload: &serde_json::Value) -> bool {
    payload.get("status").and_then(|s| s.as_str()) == Some("denied")
        && payload
            .get("reasonCodes")
            .and_then(|c| c.as_array())
            .is_some_and(|codes| {
                codes
                    .iter()
                    .filter_map(|c| c.as_str())
                    .any(|c| VIOLATION_CODES.contains(&c))
            })
}

/// The counter changes one audit record implies (at most two: one for the agent it is about,
/// one for the agent that acted when that is another agent). Records without an organization or
/// naming no agent imply none.
///
/// About `agent:<id>` (the `subject`): `agent.challenge.passed` → a key proof and a passed
/// challenge; `agent.key.rotated` → a key proof; `agent.registered` with
/// `keyOrigin: server_generated` → a key proof (the server issued the key pair to the agent, so
/// possession at that moment is certain; there is no challenge and no attester);
/// `agent.challenge.failed` → a key proof failure;
/// `agent.request.signature_failed` → a key proof failure too;
/// `agent.action.verified` → a decision, and a violation when [`is_violation`]; `agent.action.result`
/// → `results_ok` (`result: success`) or `results_failed` (`result: failure`).
/// By `agent:<id>` (the `actor`): `last_activity_at`, except for [`NOT_ACTIVITY`] events.
pub fn activity_of(rec: &AuditRecord) -> Vec<ActivityDelta> {
    let Some(org_id) = rec.org_id else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let subject = rec
        .subject
        .as_deref()
        .and_then(|s| s.strip_prefix("agent:"));
    let actor = rec
        .actor
        .strip_prefix("agent:")
        .filter(|_| !NOT_ACTIVITY.contains(&rec.event_type.as_str()));
    if let Some(agent) = subject {
        let mut d = ActivityDelta::empty(org_id, agent, rec.at);
        match rec.event_type.as_str() {
            "agent.challenge.passed" => {
                d.key_proofs = 1;
                d.challenges_passed = 1;
                d.last_key_proof_at = Some(rec.at);
            }
            "agent.registered"
                if rec.payload.get("keyOrigin").and_then(|k| k.as_str())
                    == Some("server_generated") =>
            {
                d.key_proofs = 1;
                d.last_key_proof_at = Some(rec.at);
            }
            "agent.key.rotated" => {
                d.key_proofs = 1;
                d.last_key_proof_at = Some(rec.at);
            }
            "agent.challenge.failed" | "agent.request.signature_failed" => d.key_proof_failures = 1,
            "agent.action.verified" => {
                d.decisions = 1;
                d.violations = i64::from(is_violation(&rec.payload));
            }
            "agent.action.result" => match rec.payload.get("result").and_then(|r| r.as_str()) {
                Some("success") => d.results_ok = 1,
                Some("failure") => d.results_failed = 1,
                _ => {}
            },
            _ => {}
        }
        if actor == Some(agent) {
            d.last_activity_at = Some(rec.at);
        }
        if !d.is_empty() {
            out.push(d);
        }
    }
    if let Some(a) = actor
        && subject != Some(a)
    {
        let mut d = ActivityDelta::empty(org_id, a, rec.at);
        d.last_activity_at = Some(rec.at);
        out.push(d);
    }
    out
}

/// The deltas of a batch, merged per (agent, day) and sorted by (agent, day) — the order the
/// upsert locks rows in, so concurrent batches cannot deadlock on them.
pub fn aggregate_activity<'a>(
    recs: impl IntoIterator<Item = &'a AuditRecord>,
) -> Vec<ActivityDelta> {
    let mut by: BTreeMap<(String, i64), ActivityDelta> = BTreeMap::new();
    for d in recs.into_iter().flat_map(activity_of) {
        match by.get_mut(&(d.agent_id.clone(), d.day)) {
            Some(acc) => acc.merge(&d),
            None => {
                by.insert((d.agent_id.clone(), d.day), d);
            }
        }
    }
    by.into_values().collect()
}

/// Windows of [`TrustStore::activity_evidence`], as the first UTC day each one includes and
/// the action-decision time bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityWindows {
    /// First day of the 7-day window (outcomes).
    pub day_7: i64,
    /// First day of the 30-day window (proofs, failures, decisions, violations).
    pub day_30: i64,
    /// First day of the 90-day window (attestations); the oldest counter row read.
    pub day_90: i64,
    /// Approved decisions created at or after this time (Unix ms) …
    pub due_from: i64,
    /// … whose approval ended at or before this time are due an outcome report (at most the
    /// newest [`DUE_SAMPLE`] of them are looked at).
    pub due_expired_by: i64,
}

/// The outcome-report evidence looks at the agent's newest due approvals only, at most this
/// many: its cost is then bounded whatever the agent's volume (one index range of the
/// `(org_id, agent_id, status, created_at)` index), and the audit-completeness factor
/// describes the agent's recent behaviour.
pub const DUE_SAMPLE: i64 = 1000;

impl ActivityWindows {
    /// The windows ending at `now_ms`: each N-day window is the current UTC day and the N − 1
    /// days before it. Outcomes are due for approvals created in the last 30 days that ended
    /// `grace_ms` ago or earlier.
    pub fn at(now_ms: i64, grace_ms: i64) -> ActivityWindows {
        let today = now_ms.div_euclid(DAY_MS);
        ActivityWindows {
            day_7: today - 6,
            day_30: today - 29,
            day_90: today - 89,
            due_from: now_ms.saturating_sub(30 * DAY_MS),
            due_expired_by: now_ms.saturating_sub(grace_ms),
        }
    }
}

/// An agent's counters summed over the windows, plus its due outcome reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct ActivityEvidence {
    pub key_proofs_30d: i64,
    pub key_proof_failures_30d: i64,
    pub challenges_passed_90d: i64,
    pub decisions_30d: i64,
    pub violations_30d: i64,
    pub results_ok_7d: i64,
    pub results_failed_7d: i64,
    /// Newest key proof ever recorded.
    pub last_key_proof_at: Option<i64>,
    /// Newest event in which the agent acted.
    pub last_activity_at: Option<i64>,
    /// Approved decisions due an outcome report ([`ActivityWindows`]), at most [`DUE_SAMPLE`].
    pub results_due: i64,
    /// Of those, the ones with a report.
    pub results_present: i64,
}

/// One change of an agent's published trust score.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TrustChange {
    /// UUIDv7 (the keyset cursor of the history).
    pub id: Uuid,
    pub org_id: Uuid,
    pub agent_id: String,
    pub at: i64,
    /// `None` = unscored (or no earlier entry).
    pub previous_score: Option<f64>,
    pub new_score: Option<f64>,
    /// `new − previous` when both are scores.
    pub delta: Option<f64>,
    /// The level of the new score.
    pub level: String,
    /// The factors that changed, e.g. `error_rate 1.00→0.50`.
    pub reason: String,
    pub actor: String,
    /// JSON object {factor key: value or null} the new score was computed from.
    pub factors: String,
}

/// Storage of trust evidence and history.
#[async_trait::async_trait]
pub trait TrustStore: Send + Sync {
    /// The agent's evidence counters in the windows `w` (zeros when it has none). One statement.
    async fn activity_evidence(
        &self,
        org_id: Uuid,
        agent_id: &str,
        w: &ActivityWindows,
    ) -> Result<ActivityEvidence>;

    /// The newest history entry of the agent.
    async fn last_trust_change(&self, org_id: Uuid, agent_id: &str) -> Result<Option<TrustChange>>;

    /// Appends a history entry with its audit record, in one transaction.
    async fn insert_trust_change(&self, c: &TrustChange, audit: &AuditRecord) -> Result<()>;

    /// History newest first: entries with `id < before` if given, at most `limit` (1..=500).
    async fn list_trust_history(
        &self,
        org_id: Uuid,
        agent_id: &str,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<TrustChange>>;

    /// Ids of the organizations that have an audit chain (ascending, after `after`, at most
    /// `limit` 1..=1000): what the start-up verification walks.
    async fn list_audit_chain_orgs(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<Uuid>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(
        ev: &str,
        actor: &str,
        subject: Option<&str>,
        payload: serde_json::Value,
    ) -> AuditRecord {
        AuditRecord {
            org_id: Some(Uuid::nil()),
            at: 3 * DAY_MS + 5,
            event_type: ev.into(),
            actor: actor.into(),
            subject: subject.map(str::to_string),
            payload,
            client_addr: None,
        }
    }

    fn one(r: &AuditRecord) -> ActivityDelta {
        let mut v = activity_of(r);
        assert_eq!(v.len(), 1, "{v:?}");
        v.remove(0)
    }

    #[test]
    fn records_without_org_or_agent_count_nothing() {
        let mut r = rec(
            "agent.challenge.passed",
            "user:u",
            Some("agent:a"),
            json!({}),
        );
        r.org_id = None;
        assert!(activity_of(&r).is_empty());
        let r = rec("user.created", "user:u", Some("user:v"), json!({}));
        assert!(activity_of(&r).is_empty());
        // An event about an agent that feeds no counter, by a user: nothing.
        let r = rec("agent.suspended", "user:u", Some("agent:a"), json!({}));
        assert!(activity_of(&r).is_empty());
    }

    #[test]
    fn proofs_and_failures() {
        let d = one(&rec(
            "agent.challenge.passed",
            "user:u",
            Some("agent:a"),
            json!({}),
        ));
        assert_eq!((d.key_proofs, d.challenges_passed), (1, 1));
        assert_eq!(d.last_key_proof_at, Some(3 * DAY_MS + 5));
        assert_eq!(d.day, 3);
        assert_eq!(d.agent_id, "a");
        assert_eq!(d.last_activity_at, None, "the user acted, not the agent");
        let d = one(&rec(
            "agent.key.rotated",
            "agent:a",
            Some("agent:a"),
            json!({}),
        ));
        assert_eq!((d.key_proofs, d.challenges_passed), (1, 0));
        assert_eq!(d.last_activity_at, Some(3 * DAY_MS + 5));
        let d = one(&rec(
            "agent.challenge.failed",
            "user:u",
            Some("agent:a"),
            json!({}),
        ));
        assert_eq!((d.key_proofs, d.key_proof_failures), (0, 1));
        assert_eq!(d.last_key_proof_at, None);
        // Registration with a key pair the server issued is a proof; with the client's key
        // (proved later by the AIP challenge) it is not.
        let d = one(&rec(
            "agent.registered",
            "api_key:k",
            Some("agent:a"),
            json!({"keyOrigin": "server_generated"}),
        ));
        assert_eq!((d.key_proofs, d.challenges_passed), (1, 0));
        assert_eq!(d.last_key_proof_at, Some(3 * DAY_MS + 5));
        for payload in [json!({"keyOrigin": "client"}), json!({})] {
            let r = rec("agent.registered", "user:u", Some("agent:a"), payload);
            assert!(activity_of(&r).is_empty());
        }
    }

    #[test]
    fn decisions_and_violations() {
        let v = |status: &str, codes: serde_json::Value| {
            let d = one(&rec(
                "agent.action.verified",
                "agent:a",
                Some("agent:a"),
                json!({ "status": status, "reasonCodes": codes }),
            ));
            assert_eq!(d.decisions, 1);
            d.violations
        };
        assert_eq!(v("approved", json!([])), 0);
        assert_eq!(v("pending", json!([])), 0);
        assert_eq!(v("denied", json!(["NO_GRANT"])), 1);
        assert_eq!(v("denied", json!(["FORBIDDEN_BY_POLICY"])), 1);
        assert_eq!(
            v("denied", json!(["RATE_LIMITED", "NO_MATCHING_PERMIT"])),
            1
        );
        assert_eq!(v("denied", json!(["RATE_LIMITED"])), 0);
        assert_eq!(v("denied", json!(["TRUST_TOO_LOW"])), 0);
        assert_eq!(v("denied", json!("NO_GRANT")), 0, "not an array");
        assert_eq!(v("approved", json!(["NO_GRANT"])), 0, "only denials");
    }

    #[test]
    fn results() {
        let r = |result: serde_json::Value| {
            let d = one(&rec(
                "agent.action.result",
                "agent:a",
                Some("agent:a"),
                json!({ "result": result }),
            ));
            (d.results_ok, d.results_failed)
        };
        assert_eq!(r(json!("success")), (1, 0));
        assert_eq!(r(json!("failure")), (0, 1));
        // Unknown outcomes count nothing but the activity.
        assert_eq!(r(json!("maybe")), (0, 0));
    }

    #[test]
    fn acting_agent_gets_its_own_activity() {
        let v = activity_of(&rec(
            "agent.action.verified",
            "agent:b",
            Some("agent:a"),
            json!({ "status": "approved" }),
        ));
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].agent_id.as_str(), v[0].decisions), ("a", 1));
        assert_eq!(v[0].last_activity_at, None);
        assert_eq!((v[1].agent_id.as_str(), v[1].decisions), ("b", 0));
        assert_eq!(v[1].last_activity_at, Some(3 * DAY_MS + 5));
        // A replay is not the agent acting.
        let r = rec(
            "agent.request.replayed",
            "agent:a",
            Some("agent:a"),
            json!({}),
        );
        assert!(activity_of(&r).is_empty());
        // Acting with no agent subject (e.g. a heartbeat about nothing).
        let v = activity_of(&rec("agent.heartbeat", "agent:b", None, json!({})));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].last_activity_at, Some(3 * DAY_MS + 5));
    }

    #[test]
    fn batches_aggregate_per_agent_and_day() {
        let mut late = rec(
            "agent.challenge.failed",
            "user:u",
            Some("agent:a"),
            json!({}),
        );
        late.at += DAY_MS;
        let batch = vec![
            rec(
                "agent.challenge.failed",
                "user:u",
                Some("agent:b"),
                json!({}),
            ),
            rec(
                "agent.challenge.failed",
                "user:u",
                Some("agent:a"),
                json!({}),
            ),
            rec(
                "agent.challenge.failed",
                "user:u",
                Some("agent:a"),
                json!({}),
            ),
            late,
            rec("agent.heartbeat", "agent:a", Some("agent:a"), json!({})),
        ];
        let agg = aggregate_activity(&batch);
        let keys: Vec<_> = agg.iter().map(|d| (d.agent_id.as_str(), d.day)).collect();
        assert_eq!(keys, vec![("a", 3), ("a", 4), ("b", 3)]);
        assert_eq!(agg[0].key_proof_failures, 2);
        assert_eq!(agg[0].last_activity_at, Some(3 * DAY_MS + 5));
        assert_eq!(agg[1].key_proof_failures, 1);
        assert_eq!(agg[2].key_proof_failures, 1);
    }

    #[test]
    fn windows_are_whole_utc_days() {
        let now = 100 * DAY_MS + 1;
        let w = ActivityWindows::at(now, 3_600_000);
        assert_eq!((w.day_7, w.day_30, w.day_90), (94, 71, 11));
        assert_eq!(w.due_from, now - 30 * DAY_MS);
        assert_eq!(w.due_expired_by, now - 3_600_000);
    }
}
