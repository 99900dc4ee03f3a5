//! The decision engine: grants, then Cedar, then the enforcement mode.
//!
//! Order of evaluation (each step can only make the answer stricter, except the last):
//! 1. the request is checked ([`Request::validate`]); a malformed request is an `Err`
//!    (the server answers 400), never a decision;
//! 2. if the request carries the agent's grants and none covers the capability → deny
//!    (`NO_GRANT`);
//! 3. Cedar evaluates the policy set. Any evaluation error in any policy → deny
//!    (`EVALUATION_ERROR`), even though Cedar itself would just skip the erroring policy: a
//!    forbid that cannot be evaluated must not turn into an allow (fail closed);
//! 4. a satisfied forbid → deny (`FORBIDDEN_BY_POLICY`); no satisfied permit → deny
//!    (`NO_MATCHING_PERMIT`); otherwise allow, or require approval when any satisfied permit is
//!    marked `@effect("require_approval")` (the stricter of two matching permits wins);
//! 5. in monitoring mode a deny from step 4 becomes an allow with `alert: true` and a
//!    `MONITORING_OVERRIDE` reason. Steps 2 and 3 are never relaxed.
//!
//! Obligations of governance rules covering the capability are attached to every decision.
//!
//! An [`Engine`]'s policies are immutable (it only caches Cedar values between requests): compile
//! once, share behind an `Arc`, evaluate from any thread.
//! Replacing the policies means building a new engine (the server swaps it on policy change).

use std::collections::BTreeSet;

use cedar_policy::{Authorizer, Decision as CedarDecision};

use crate::decision::{Decision, Effect, EnforcementMode, Obligation, Reason, ReasonCode};
use crate::error::Result;
use crate::policy::PolicyBundle;
use crate::request::{self, Request};

/// Which language a policy source is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyLanguage {
    Cedar,
    GovernanceYaml,
}

impl PolicyLanguage {
    /// From a file name: `.cedar` → Cedar, `.yaml`/`.yml` → governance YAML.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "cedar" => Some(Self::Cedar),
            "yaml" | "yml" => Some(Self::GovernanceYaml),
            _ => None,
        }
    }
}

/// A compiled policy set plus an enforcement mode.
#[derive(Debug)]
pub struct Engine {
    bundle: PolicyBundle,
    mode: EnforcementMode,
    authorizer: Authorizer,
    /// Entities and contexts of recent requests (see [`request::CedarCache`] for when they are
    /// reused); dropped with the engine when the policies change.
    cache: request::CedarCache,
}

impl Engine {
    /// An engine over an already compiled bundle.
    pub fn new(bundle: PolicyBundle, mode: EnforcementMode) -> Self {
        Engine {
            bundle,
            mode,
            authorizer: Authorizer::new(),
            cache: request::CedarCache::default(),
        }
    }

    /// Compiles `source` in `language` (see [`PolicyBundle::from_cedar`],
    /// [`crate::governance::compile`]).
    pub fn compile(source: &str, language: PolicyLanguage, mode: EnforcementMode) -> Result<Self> {
        let bundle = match language {
            PolicyLanguage::Cedar => PolicyBundle::from_cedar(source)?,
            PolicyLanguage::GovernanceYaml => crate::governance::compile(source)?,
        };
        Ok(Self::new(bundle, mode))
    }

    /// The compiled policies.
    pub fn bundle(&self) -> &PolicyBundle {
        &self.bundle
    }

    /// The enforcement mode.
    pub fn mode(&self) -> EnforcementMode {
        self.mode
    }

    /// Decides `req`. `Err` only for a malformed request; every evaluation problem is a deny.
    pub fn evaluate(&self, req: &Request) -> Result<Decision> {
        req.validate()?;
        let cap = req.capability.to_string();
        let obligations: Vec<Obligation> = self
            .bundle
            .obligations
            .iter()
            .filter(|r| {
                r.selector
                    .as_ref()
                    .is_none_or(|g| g.matches(&req.capability))
            })
            .map(|r| Obligation {
                policy: r.policy.clone(),
                kind: r.kind.clone(),
            })
            .collect();
        let mut d = Decision {
            effect: Effect::Deny,
            policy_effect: Effect::Deny,
            mode: self.mode,
            alert: false,
            matched_policies: Vec::new(),
            reasons: Vec::new(),
            errors: Vec::new(),
            obligations,
            approvers: Vec::new(),
            policy_version: self.bundle.version().to_string(),
        };

        if let Some(grants) = req.grants()?
            && !grants.is_granted(&req.capability)
        {
            d.reasons.push(Reason {
                code: ReasonCode::NoGrant,
                message: format!("capability {cap} is not granted to agent {}", req.agent.id),
            });
            return Ok(d);
        }

        let (cedar_req, entities) = self.cache.to_cedar(req)?;
        let resp = self
            .authorizer
            .is_authorized(&cedar_req, &self.bundle.set, &entities);
        let diag = resp.diagnostics();
        let errors: Vec<String> = diag.errors().map(|e| e.to_string()).collect();
        if !errors.is_empty() {
            d.errors = errors;
            d.reasons.push(Reason {
                code: ReasonCode::EvaluationError,
                message: "a policy could not be evaluated; denied (fail closed)".into(),
            });
            return Ok(d);
        }
        let matched: BTreeSet<String> = diag.reason().map(|id| id.to_string()).collect();
        d.matched_policies = matched.iter().cloned().collect();
        match resp.decision() {
            CedarDecision::Allow => {
                let approval: Vec<&String> = matched
                    .iter()
                    .filter(|id| self.bundle.approvals.contains_key(*id))
                    .collect();
                if approval.is_empty() {
                    d.policy_effect = Effect::Allow;
                    d.reasons.push(Reason {
                        code: ReasonCode::Permitted,
                        message: format!("{cap} permitted by {}", d.matched_policies.join(", ")),
                    });
                } else {
                    d.policy_effect = Effect::RequireApproval;
                    let mut approvers = BTreeSet::new();
                    for id in &approval {
                        approvers.extend(self.bundle.approvals[*id].iter().cloned());
                    }
                    d.approvers = approvers.into_iter().collect();
                    d.reasons.push(Reason {
                        code: ReasonCode::ApprovalRequired,
                        message: format!(
                            "{cap} requires approval ({})",
                            approval
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                }
                d.effect = d.policy_effect;
            }
            CedarDecision::Deny => {
                if matched.is_empty() {
                    d.reasons.push(Reason {
                        code: ReasonCode::NoMatchingPermit,
                        message: format!("no policy permits {cap}"),
                    });
                } else {
                    d.reasons.push(Reason {
                        code: ReasonCode::ForbiddenByPolicy,
                        message: format!("{cap} forbidden by {}", d.matched_policies.join(", ")),
                    });
                }
                if self.mode == EnforcementMode::Monitoring {
                    d.effect = Effect::Allow;
                    d.alert = true;
                    d.reasons.push(Reason {
                        code: ReasonCode::MonitoringOverride,
                        message: "monitoring mode: policy denial allowed and alerted".into(),
                    });
                }
            }
        }
        Ok(d)
    }
}

/// Compiles policy text without building an engine (the server's "validate on save").
pub fn validate(source: &str, language: PolicyLanguage) -> Result<PolicyBundle> {
    match language {
        PolicyLanguage::Cedar => PolicyBundle::from_cedar(source),
        PolicyLanguage::GovernanceYaml => crate::governance::compile(source),
    }
}
