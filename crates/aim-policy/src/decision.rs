//! The answer: an effect, why, which policies matched, and what the caller must also do.
//!
//! JSON (camelCase) is the wire form for the server and `opena2a policy check --json`:
//! `{effect, policyEffect, mode, alert, matchedPolicies, reasons[{code, message}], errors,
//! obligations[{type, policy, …}], approvers, policyVersion}`.

use serde::Serialize;

use crate::policy::ObligationKind;

/// The three outcomes. The server maps them to `approved`, `denied`, `pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Allow,
    Deny,
    RequireApproval,
}

impl Effect {
    /// `allow`, `deny`, `require_approval`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
            Effect::RequireApproval => "require_approval",
        }
    }
}

/// Enforcement mode of an organization (or of a local check).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnforcementMode {
    /// A deny is a deny. The default: zero trust.
    #[default]
    Strict,
    /// A *policy* deny is turned into an allow with `alert: true` and a `MONITORING_OVERRIDE`
    /// reason, never silently. A missing grant, a malformed request and an evaluation error are
    /// still denied: monitoring relaxes policies, not capability boundaries or fail-closed.
    Monitoring,
}

impl std::str::FromStr for EnforcementMode {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "strict" => Ok(Self::Strict),
            "monitoring" => Ok(Self::Monitoring),
            _ => Err(crate::Error::Request(format!(
                "enforcement mode {s:?}: expected strict or monitoring"
            ))),
        }
    }
}

/// Machine-readable reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    /// The request carried grants and none covers the capability.
    NoGrant,
    /// No permit policy matched (Cedar's default deny).
    NoMatchingPermit,
    /// A forbid policy matched.
    ForbiddenByPolicy,
    /// A policy could not be evaluated; the request is denied (fail closed).
    EvaluationError,
    /// A permit matched.
    Permitted,
    /// A permit marked `@effect("require_approval")` matched.
    ApprovalRequired,
    /// Monitoring mode turned a policy deny into an allow.
    MonitoringOverride,
}

/// One reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub code: ReasonCode,
    pub message: String,
}

/// An obligation attached to a decision, from a governance `rate_limit`/`audit`/`notify` entry
/// whose capability covers the request. Carried whatever the effect; the server enforces
/// `rate_limit` only on decisions it would otherwise allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Obligation {
    /// Name of the governance entry.
    pub policy: String,
    #[serde(flatten)]
    pub kind: ObligationKind,
}

/// The result of one evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// What the caller must do (after the enforcement mode).
    pub effect: Effect,
    /// What grants and policies said before the enforcement mode was applied.
    pub policy_effect: Effect,
    pub mode: EnforcementMode,
    /// True when the decision must raise an alert (monitoring mode let a policy deny through).
    pub alert: bool,
    /// Ids (`@id` names) of the policies that determined the decision: the satisfied forbids on
    /// a policy deny, the satisfied permits otherwise. Sorted.
    pub matched_policies: Vec<String>,
    pub reasons: Vec<Reason>,
    /// Evaluation errors (`policy id: message`); non-empty ⇒ `policyEffect` is deny.
    pub errors: Vec<String>,
    pub obligations: Vec<Obligation>,
    /// Who may approve, when `effect` is `require_approval` (empty = the server's default).
    pub approvers: Vec<String>,
    /// Version (content hash) of the policy set that decided.
    pub policy_version: String,
}

impl Decision {
    /// The first reason's message (for an API `reason` field).
    pub fn summary(&self) -> String {
        self.reasons
            .iter()
            .map(|r| r.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}
