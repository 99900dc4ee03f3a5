//! The 8-factor trust score (seed "Trust Score: 8-Factor Algorithm"), computed from evidence.
//!
//! `docs/TRUST.md` is the specification; this module implements exactly that document. Every
//! factor is a pure function of [`Evidence`] — counts and times taken from recorded events — and
//! the factors are combined with the AIP §6.1 composition rules
//! ([`crate::standards::trust_composition::compose`]): a factor without data is excluded and
//! its weight redistributed, capped by the neutral-imputed ceiling, and an agent whose included
//! weight is below one half is reported unscored.
//!
//! Invariants (property-tested):
//! - every factor value and the published score lie in `[0, 1]` (`[0, 100]` as points);
//! - more violations, failures, anomalies or errors never raise a factor or the score;
//! - a revoked agent scores 0; a suspended agent's identity factor is 0;
//! - the per-factor contributions sum to the published score.

use serde::Serialize;

use crate::standards::trust_composition::{Composition, Factor, ScoreStatus, compose};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// A factor of the score, with the seed's weight (points of 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorKind {
    IdentityVerification,
    AttestationCount,
    CapabilityCompliance,
    BehavioralConsistency,
    McpServerTrust,
    ErrorRate,
    AuditCompleteness,
    AgeAndActivity,
}

impl FactorKind {
    /// All factors in the seed's order.
    pub const ALL: [FactorKind; 8] = [
        FactorKind::IdentityVerification,
        FactorKind::AttestationCount,
        FactorKind::CapabilityCompliance,
        FactorKind::BehavioralConsistency,
        FactorKind::McpServerTrust,
        FactorKind::ErrorRate,
        FactorKind::AuditCompleteness,
        FactorKind::AgeAndActivity,
    ];

    /// The seed's weight in points (the eight weights sum to 100).
    pub fn weight(self) -> u32 {
        match self {
            FactorKind::IdentityVerification => 20,
            FactorKind::AttestationCount => 15,
            FactorKind::CapabilityCompliance => 15,
            FactorKind::BehavioralConsistency => 12,
            FactorKind::McpServerTrust => 12,
            FactorKind::ErrorRate => 10,
            FactorKind::AuditCompleteness => 8,
            FactorKind::AgeAndActivity => 8,
        }
    }

    /// Stable machine name (`identity_verification`, …).
    pub fn key(self) -> &'static str {
        match self {
            FactorKind::IdentityVerification => "identity_verification",
            FactorKind::AttestationCount => "attestation_count",
            FactorKind::CapabilityCompliance => "capability_compliance",
            FactorKind::BehavioralConsistency => "behavioral_consistency",
            FactorKind::McpServerTrust => "mcp_server_trust",
            FactorKind::ErrorRate => "error_rate",
            FactorKind::AuditCompleteness => "audit_completeness",
            FactorKind::AgeAndActivity => "age_and_activity",
        }
    }

    /// Human name as the seed writes it.
    pub fn label(self) -> &'static str {
        match self {
            FactorKind::IdentityVerification => "Identity Verification",
            FactorKind::AttestationCount => "Attestation Count",
            FactorKind::CapabilityCompliance => "Capability Compliance",
            FactorKind::BehavioralConsistency => "Behavioral Consistency",
            FactorKind::McpServerTrust => "MCP Server Trust",
            FactorKind::ErrorRate => "Error Rate",
            FactorKind::AuditCompleteness => "Audit Completeness",
            FactorKind::AgeAndActivity => "Age and Activity",
        }
    }
}

/// Lifecycle state of the scored identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectState {
    Pending,
    Active,
    Suspended,
    Revoked,
}

/// How an MCP server the agent used is trusted, and how much the agent used it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct McpUse {
    /// The server's attestation confidence in `[0, 1]`; 0 for a server nobody attested.
    pub confidence: f64,
    /// Uses by this agent inside the window (≥ 1 to count).
    pub uses: u64,
}

/// Everything the score is computed from. Each field is a count or time taken from recorded
/// events inside the window the field names (windows end at `now_ms`); `docs/TRUST.md` says which
/// events feed which field on the server and in standalone mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// Evaluation time, Unix ms.
    pub now_ms: i64,
    pub state: SubjectState,
    /// Creation time of the identity, Unix ms.
    pub created_at_ms: i64,

    /// Last successful proof of possession of the current key (challenge-response, rotation
    /// proof, or a local key self-check).
    pub last_key_proof_ms: Option<i64>,
    /// Successful proofs of possession in the last 30 days.
    pub key_proofs_30d: u64,
    /// Failed proofs (rejected challenge responses, bad request signatures) in the last 30 days.
    pub key_proof_failures_30d: u64,

    /// Distinct independent parties that attested to this identity in the last 90 days.
    pub attesters_90d: u64,

    /// Action decisions about this agent in the last 30 days (approved, denied, pending).
    pub decisions_30d: u64,
    /// Of those, denials for a missing grant or a policy deny (rate limits are not violations).
    pub violations_30d: u64,

    /// Observations the behaviour baseline was built from (all time).
    pub baseline_observations: u64,
    /// Sum of anomaly severities (low 0.5, medium 1, high 2, critical 4) in the last 7 days.
    pub anomaly_severity_7d: f64,

    /// MCP servers used in the last 30 days.
    pub mcp_servers_30d: Vec<McpUse>,

    /// Reported action outcomes in the last 7 days.
    pub results_ok_7d: u64,
    pub results_failed_7d: u64,

    /// Records that should exist in the window (30 days on the server: approved actions older
    /// than the reporting grace period need an outcome, lifecycle changes need their audit
    /// entry; standalone: the identity's lifecycle entries since creation).
    pub records_due: u64,
    /// Of those, how many exist.
    pub records_present: u64,
    /// Whether the audit chain holding them verifies (`None` when not checked).
    pub audit_chain_intact: Option<bool>,

    /// Last event in which the identity acted.
    pub last_activity_ms: Option<i64>,
}

impl Evidence {
    /// Evidence of an identity that exists and has done nothing yet.
    pub fn new(now_ms: i64, state: SubjectState, created_at_ms: i64) -> Evidence {
        Evidence {
            now_ms,
            state,
            created_at_ms,
            last_key_proof_ms: None,
            key_proofs_30d: 0,
            key_proof_failures_30d: 0,
            attesters_90d: 0,
            decisions_30d: 0,
            violations_30d: 0,
            baseline_observations: 0,
            anomaly_severity_7d: 0.0,
            mcp_servers_30d: Vec::new(),
            results_ok_7d: 0,
            results_failed_7d: 0,
            records_due: 0,
            records_present: 0,
            audit_chain_intact: None,
            last_activity_ms: None,
        }
    }
}

/// Observations needed before the behaviour baseline counts (below: factor excluded).
pub const MIN_BASELINE_OBSERVATIONS: u64 = 20;
/// Saturation scale of the attestation curve `1 − e^(−n/3)`.
pub const ATTESTATION_SCALE: f64 = 3.0;
/// Scale of the anomaly curve `e^(−s/3)`.
pub const ANOMALY_SCALE: f64 = 3.0;
/// Identity proofs are fully fresh for 30 days, then decay linearly to half at 90 days.
pub const PROOF_FRESH_DAYS: f64 = 30.0;
pub const PROOF_STALE_DAYS: f64 = 90.0;
/// Age reaches full value at 30 days; activity halves every 7 idle days.
pub const AGE_FULL_DAYS: f64 = 30.0;
pub const ACTIVITY_HALF_LIFE_DAYS: f64 = 7.0;

/// A factor's value (or exclusion) with the reason in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FactorValue {
    pub value: Option<f64>,
    pub explanation: String,
}

fn days(ms: i64) -> f64 {
    (ms.max(0) as f64) / DAY_MS as f64
}

fn clamp01(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

/// Computes one factor from the evidence (formulas in `docs/TRUST.md`).
pub fn factor_value(kind: FactorKind, e: &Evidence) -> FactorValue {
    match kind {
        FactorKind::IdentityVerification => {
            if matches!(e.state, SubjectState::Suspended | SubjectState::Revoked) {
                return FactorValue {
                    value: Some(0.0),
                    explanation: format!("identity is {:?}", e.state).to_lowercase(),
                };
            }
            let Some(at) = e.last_key_proof_ms else {
                return FactorValue {
                    value: Some(0.0),
                    explanation: "key possession never proven".into(),
                };
            };
            let age = days(e.now_ms - at);
            let freshness = if age <= PROOF_FRESH_DAYS {
                1.0
            } else if age >= PROOF_STALE_DAYS {
                0.5
            } else {
                1.0 - 0.5 * (age - PROOF_FRESH_DAYS) / (PROOF_STALE_DAYS - PROOF_FRESH_DAYS)
            };
            let ok = e.key_proofs_30d as f64;
            let bad = e.key_proof_failures_30d as f64;
            let reliability = (ok + 1.0) / (ok + 1.0 + bad);
            FactorValue {
                value: Some(clamp01(freshness * reliability)),
                explanation: format!(
                    "last proof {age:.1} d ago (freshness {freshness:.2}); {} ok / {} failed proofs in 30 d",
                    e.key_proofs_30d, e.key_proof_failures_30d
                ),
            }
        }
        FactorKind::AttestationCount => {
            let n = e.attesters_90d as f64;
            FactorValue {
                value: Some(clamp01(1.0 - (-n / ATTESTATION_SCALE).exp())),
                explanation: format!("{} distinct attesters in 90 d", e.attesters_90d),
            }
        }
        FactorKind::CapabilityCompliance => {
            if e.decisions_30d == 0 {
                return FactorValue {
                    value: None,
                    explanation: "no action decisions in 30 d".into(),
                };
            }
            let v = e.violations_30d.min(e.decisions_30d) as f64;
            let share = 1.0 - v / e.decisions_30d as f64;
            FactorValue {
                value: Some(clamp01(share * share)),
                explanation: format!(
                    "{} of {} decisions in 30 d were violations",
                    e.violations_30d.min(e.decisions_30d),
                    e.decisions_30d
                ),
            }
        }
        FactorKind::BehavioralConsistency => {
            if e.baseline_observations < MIN_BASELINE_OBSERVATIONS {
                return FactorValue {
                    value: None,
                    explanation: format!(
                        "baseline not established ({} of {} observations)",
                        e.baseline_observations, MIN_BASELINE_OBSERVATIONS
                    ),
                };
            }
            let s = if e.anomaly_severity_7d.is_finite() {
                e.anomaly_severity_7d.max(0.0)
            } else {
                f64::INFINITY
            };
            FactorValue {
                value: Some(clamp01((-s / ANOMALY_SCALE).exp())),
                explanation: format!("anomaly severity {s:.1} in 7 d"),
            }
        }
        FactorKind::McpServerTrust => {
            let used: Vec<&McpUse> = e.mcp_servers_30d.iter().filter(|m| m.uses > 0).collect();
            if used.is_empty() {
                return FactorValue {
                    value: None,
                    explanation: "no MCP server used in 30 d".into(),
                };
            }
            let total: f64 = used.iter().map(|m| m.uses as f64).sum();
            let weighted: f64 = used
                .iter()
                .map(|m| m.uses as f64 * clamp01(m.confidence))
                .sum();
            FactorValue {
                value: Some(clamp01(weighted / total)),
                explanation: format!(
                    "{} MCP servers, use-weighted confidence over {} uses",
                    used.len(),
                    total
                ),
            }
        }
        FactorKind::ErrorRate => {
            let total = e.results_ok_7d + e.results_failed_7d;
            if total == 0 {
                return FactorValue {
                    value: None,
                    explanation: "no reported action outcomes in 7 d".into(),
                };
            }
            FactorValue {
                value: Some(clamp01(1.0 - e.results_failed_7d as f64 / total as f64)),
                explanation: format!(
                    "{} of {} reported outcomes in 7 d failed",
                    e.results_failed_7d, total
                ),
            }
        }
        FactorKind::AuditCompleteness => {
            if e.audit_chain_intact == Some(false) {
                return FactorValue {
                    value: Some(0.0),
                    explanation: "the audit chain does not verify".into(),
                };
            }
            if e.records_due == 0 {
                return FactorValue {
                    value: None,
                    explanation: "no records due in the window".into(),
                };
            }
            let present = e.records_present.min(e.records_due);
            FactorValue {
                value: Some(clamp01(present as f64 / e.records_due as f64)),
                explanation: format!(
                    "{present} of {} due records present{}",
                    e.records_due,
                    if e.audit_chain_intact == Some(true) {
                        ", chain intact"
                    } else {
                        ""
                    }
                ),
            }
        }
        FactorKind::AgeAndActivity => {
            let age = days(e.now_ms - e.created_at_ms);
            let age_part = clamp01(age / AGE_FULL_DAYS);
            let (activity, idle) = match e.last_activity_ms {
                None => (0.0, None),
                Some(t) => {
                    let idle = days(e.now_ms - t);
                    (0.5f64.powf(idle / ACTIVITY_HALF_LIFE_DAYS), Some(idle))
                }
            };
            FactorValue {
                value: Some(clamp01(0.5 * age_part + 0.5 * activity)),
                explanation: match idle {
                    Some(i) => format!("age {age:.1} d, last active {i:.1} d ago"),
                    None => format!("age {age:.1} d, never active"),
                },
            }
        }
    }
}

/// Trust bands over the published score (points of 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustLevel {
    /// Too little evidence to publish a number.
    Unscored,
    /// `[0, 30)`.
    Untrusted,
    /// `[30, 50)`.
    Low,
    /// `[50, 70)`.
    Medium,
    /// `[70, 85)`.
    High,
    /// `[85, 100]`.
    VeryHigh,
}

impl TrustLevel {
    /// The band of a score in points; `None` is [`TrustLevel::Unscored`].
    pub fn of(points: Option<f64>) -> TrustLevel {
        match points {
            None => TrustLevel::Unscored,
            Some(p) if p < 30.0 => TrustLevel::Untrusted,
            Some(p) if p < 50.0 => TrustLevel::Low,
            Some(p) if p < 70.0 => TrustLevel::Medium,
            Some(p) if p < 85.0 => TrustLevel::High,
            Some(_) => TrustLevel::VeryHigh,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TrustLevel::Unscored => "unscored",
            TrustLevel::Untrusted => "untrusted",
            TrustLevel::Low => "low",
            TrustLevel::Medium => "medium",
            TrustLevel::High => "high",
            TrustLevel::VeryHigh => "very_high",
        }
    }
}

/// One factor in a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FactorReport {
    pub factor: FactorKind,
    pub name: &'static str,
    /// Seed weight, points of 100.
    pub weight: u32,
    /// Value in `[0, 1]`; `None` when excluded for lack of data.
    pub value: Option<f64>,
    pub included: bool,
    /// Points this factor adds to the published score (0 when excluded or unscored). The
    /// contributions sum to the score.
    pub contribution: f64,
    pub explanation: String,
}

/// A computed trust score.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustReport {
    /// Published score in points `[0, 100]`, `None` when unscored.
    pub score: Option<f64>,
    pub level: TrustLevel,
    /// Fraction of the total weight backed by data (`[0, 1]`).
    pub confidence: f64,
    pub factors: Vec<FactorReport>,
    pub composition: Composition,
}

/// Computes the score from the evidence.
pub fn score(e: &Evidence) -> TrustReport {
    let values: Vec<(FactorKind, FactorValue)> = FactorKind::ALL
        .iter()
        .map(|&k| (k, factor_value(k, e)))
        .collect();
    let inputs: Vec<Factor> = values
        .iter()
        .map(|(k, v)| Factor {
            factor: k.key().into(),
            weight: f64::from(k.weight()),
            score: v.value,
            confidence: if v.value.is_some() { 1.0 } else { 0.0 },
        })
        .collect();
    // Inputs are in range by construction (values are clamped, weights are positive
    // constants), so composition cannot fail; an error would be a bug, reported as unscored.
    let composition = compose(&inputs).unwrap_or(Composition {
        score_status: ScoreStatus::Unscored,
        score: None,
        included_weight: 0.0,
        unscored_reason: Some("composition_error".into()),
        weighted_sum: 0.0,
        renormalised: 0.0,
        ceiling: 0.0,
    });
    let mut published = composition.score;
    if e.state == SubjectState::Revoked {
        published = Some(0.0);
    }
    let total: f64 = FactorKind::ALL.iter().map(|k| f64::from(k.weight())).sum();
    let factors = values
        .into_iter()
        .map(|(k, v)| {
            let share = match (published, v.value) {
                (Some(p), Some(x)) if composition.weighted_sum > 0.0 => {
                    p * (f64::from(k.weight()) / total * x) / composition.weighted_sum
                }
                _ => 0.0,
            };
            FactorReport {
                factor: k,
                name: k.label(),
                weight: k.weight(),
                value: v.value,
                included: v.value.is_some(),
                contribution: share * 100.0,
                explanation: v.explanation,
            }
        })
        .collect();
    let points = published.map(|p| p * 100.0);
    TrustReport {
        score: points,
        level: TrustLevel::of(points),
        confidence: composition.included_weight,
        factors,
        composition,
    }
}

/// Standalone mode: evidence from the local identity store and audit log (`docs/TRUST.md`,
/// "Standalone evidence").
pub mod standalone {
    use super::{DAY_MS, Evidence, SubjectState};
    use crate::audit::chain::Entry;
    use crate::identity::{Identity, Status};

    /// Builds evidence for `identity` at `now_ms`.
    ///
    /// `self_check_ok`: whether the local key self-check passed (private key opens and matches the
    /// public key, the id recomputes) — a proof of possession made now. `entries`: the local
    /// audit log; `chain_intact`: whether it verified.
    pub fn evidence(
        identity: &Identity,
        self_check_ok: bool,
        self_check_failures: u64,
        entries: impl IntoIterator<Item = Entry>,
        chain_intact: bool,
        now_ms: i64,
    ) -> Evidence {
        let created = crate::clock::parse_rfc3339(&identity.created_at)
            .map(|t| t.timestamp_millis())
            .unwrap_or(now_ms);
        let state = match identity.status {
            Status::Active => SubjectState::Active,
            Status::Revoked => SubjectState::Revoked,
        };
        let mut e = Evidence::new(now_ms, state, created);
        let id = identity.id.as_str();
        let since_30d = now_ms - 30 * DAY_MS;
        let since_90d = now_ms - 90 * DAY_MS;
        let (mut created_seen, mut rotations_seen, mut revoked_seen) = (0u64, 0u64, 0u64);
        let mut attesters = std::collections::BTreeSet::new();
        let mut proofs = 0u64;
        let mut failures = self_check_failures;
        for entry in entries {
            let Ok(t) = crate::clock::parse_rfc3339(&entry.time).map(|t| t.timestamp_millis())
            else {
                continue;
            };
            let actor = entry.actor.as_deref() == Some(id);
            let subject = entry.subject.as_deref() == Some(id);
            if actor {
                e.last_activity_ms = Some(e.last_activity_ms.map_or(t, |l| l.max(t)));
            }
            match entry.event_type.as_str() {
                "identity.created" if actor && subject => created_seen += 1,
                "identity.rotated" if actor && subject => rotations_seen += 1,
                "identity.revoked" if actor && subject => revoked_seen += 1,
                "challenge.answered" if actor && t >= since_30d => proofs += 1,
                "challenge.verified" if subject && t >= since_90d => {
                    attesters.insert("this data root".to_string());
                }
                "challenge.rejected" if subject && t >= since_30d => failures += 1,
                _ => {}
            }
        }
        if self_check_ok && state == SubjectState::Active {
            e.last_key_proof_ms = Some(now_ms);
            proofs += 1;
        }
        e.key_proofs_30d = proofs;
        e.key_proof_failures_30d = failures;
        e.attesters_90d = attesters.len() as u64;
        let rotations = identity.key_history.len().saturating_sub(1) as u64;
        let revoked = u64::from(state == SubjectState::Revoked);
        e.records_due = 1 + rotations + revoked;
        e.records_present =
            created_seen.min(1) + rotations_seen.min(rotations) + revoked_seen.min(revoked);
        e.audit_chain_intact = Some(chain_intact);
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn active() -> Evidence {
        Evidence::new(NOW, SubjectState::Active, NOW - 10 * DAY_MS)
    }

    fn v(kind: FactorKind, e: &Evidence) -> Option<f64> {
        factor_value(kind, e).value
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn weights_are_the_seeds_and_sum_to_100() {
        let w: Vec<u32> = FactorKind::ALL.iter().map(|k| k.weight()).collect();
        assert_eq!(w, [20, 15, 15, 12, 12, 10, 8, 8]);
        assert_eq!(w.iter().sum::<u32>(), 100);
    }

    #[test]
    fn identity_verification_by_hand() {
        let mut e = active();
        assert_eq!(v(FactorKind::IdentityVerification, &e), Some(0.0));
        e.last_key_proof_ms = Some(NOW - 5 * DAY_MS);
        e.key_proofs_30d = 3;
        assert_eq!(v(FactorKind::IdentityVerification, &e), Some(1.0));
        // 3 ok, 1 failure: (3+1)/(3+1+1) = 0.8
        e.key_proof_failures_30d = 1;
        assert!(close(v(FactorKind::IdentityVerification, &e).unwrap(), 0.8));
        // 60 days old proof: freshness 1 - 0.5*30/60 = 0.75; times 0.8 = 0.6
        e.last_key_proof_ms = Some(NOW - 60 * DAY_MS);
        assert!(close(v(FactorKind::IdentityVerification, &e).unwrap(), 0.6));
        // 200 days: floor 0.5 * 0.8
        e.last_key_proof_ms = Some(NOW - 200 * DAY_MS);
        assert!(close(v(FactorKind::IdentityVerification, &e).unwrap(), 0.4));
        e.state = SubjectState::Suspended;
        assert_eq!(v(FactorKind::IdentityVerification, &e), Some(0.0));
    }

    #[test]
    fn attestation_curve_by_hand() {
        let mut e = active();
        assert_eq!(v(FactorKind::AttestationCount, &e), Some(0.0));
        e.attesters_90d = 3;
        assert!(close(
            v(FactorKind::AttestationCount, &e).unwrap(),
            1.0 - (-1.0f64).exp()
        ));
    }

    #[test]
    fn compliance_excluded_without_decisions_and_squared_share() {
        let mut e = active();
        assert_eq!(v(FactorKind::CapabilityCompliance, &e), None);
        e.decisions_30d = 10;
        e.violations_30d = 2;
        assert!(close(
            v(FactorKind::CapabilityCompliance, &e).unwrap(),
            0.64
        ));
        e.violations_30d = 50; // more than decisions: clamped, never negative
        assert_eq!(v(FactorKind::CapabilityCompliance, &e), Some(0.0));
    }

    #[test]
    fn behaviour_needs_a_baseline() {
        let mut e = active();
        e.baseline_observations = 19;
        e.anomaly_severity_7d = 1.0;
        assert_eq!(v(FactorKind::BehavioralConsistency, &e), None);
        e.baseline_observations = 20;
        assert!(close(
            v(FactorKind::BehavioralConsistency, &e).unwrap(),
            (-1.0f64 / 3.0).exp()
        ));
        e.anomaly_severity_7d = f64::NAN;
        assert_eq!(v(FactorKind::BehavioralConsistency, &e), Some(0.0));
    }

    #[test]
    fn mcp_is_use_weighted() {
        let mut e = active();
        assert_eq!(v(FactorKind::McpServerTrust, &e), None);
        e.mcp_servers_30d = vec![
            McpUse {
                confidence: 1.0,
                uses: 3,
            },
            McpUse {
                confidence: 0.0,
                uses: 1,
            },
            McpUse {
                confidence: 0.2,
                uses: 0,
            },
        ];
        assert!(close(v(FactorKind::McpServerTrust, &e).unwrap(), 0.75));
    }

    #[test]
    fn error_rate_and_audit_completeness_by_hand() {
        let mut e = active();
        assert_eq!(v(FactorKind::ErrorRate, &e), None);
        e.results_ok_7d = 9;
        e.results_failed_7d = 1;
        assert!(close(v(FactorKind::ErrorRate, &e).unwrap(), 0.9));

        assert_eq!(v(FactorKind::AuditCompleteness, &e), None);
        e.records_due = 4;
        e.records_present = 3;
        assert!(close(v(FactorKind::AuditCompleteness, &e).unwrap(), 0.75));
        e.audit_chain_intact = Some(false);
        assert_eq!(v(FactorKind::AuditCompleteness, &e), Some(0.0));
    }

    #[test]
    fn age_and_activity_decay() {
        let mut e = Evidence::new(NOW, SubjectState::Active, NOW - 15 * DAY_MS);
        // age 15/30 = 0.5, never active: 0.25
        assert!(close(v(FactorKind::AgeAndActivity, &e).unwrap(), 0.25));
        e.last_activity_ms = Some(NOW - 7 * DAY_MS);
        // 0.5*0.5 + 0.5*0.5 = 0.5
        assert!(close(v(FactorKind::AgeAndActivity, &e).unwrap(), 0.5));
        e.last_activity_ms = Some(NOW);
        assert!(close(v(FactorKind::AgeAndActivity, &e).unwrap(), 0.75));
    }

    #[test]
    fn fresh_identity_is_unscored() {
        let mut e = Evidence::new(NOW, SubjectState::Active, NOW);
        e.last_key_proof_ms = Some(NOW);
        let r = score(&e);
        assert_eq!(r.level, TrustLevel::Unscored);
        assert_eq!(r.score, None);
        assert!(close(r.confidence, 0.43));
        assert!(r.factors.iter().all(|f| f.contribution == 0.0));
    }

    #[test]
    fn worked_example_by_hand() {
        // identity 1.0, attestation 0, audit 1.0, age&activity 0.5 (new, just active): the
        // standalone case of docs/TRUST.md.
        let mut e = Evidence::new(NOW, SubjectState::Active, NOW);
        e.last_key_proof_ms = Some(NOW);
        e.records_due = 1;
        e.records_present = 1;
        e.audit_chain_intact = Some(true);
        e.last_activity_ms = Some(NOW);
        let r = score(&e);
        // weighted sum 0.20 + 0.08 + 0.04 = 0.32, included 0.51,
        // renormalised 0.6275, ceiling 0.32 + 0.49*0.5 = 0.565 → 56.5
        assert!(close(r.confidence, 0.51));
        assert!(close(r.score.unwrap(), 56.5));
        assert_eq!(r.level, TrustLevel::Medium);
        let sum: f64 = r.factors.iter().map(|f| f.contribution).sum();
        assert!(close(sum, 56.5));
    }

    #[test]
    fn revoked_scores_zero() {
        let mut e = active();
        e.state = SubjectState::Revoked;
        e.last_key_proof_ms = Some(NOW);
        e.attesters_90d = 10;
        e.records_due = 1;
        e.records_present = 1;
        e.last_activity_ms = Some(NOW);
        let r = score(&e);
        assert_eq!(r.score, Some(0.0));
        assert_eq!(r.level, TrustLevel::Untrusted);
    }
}
