//! A compiled, validated policy set: one per organization (or per local policy file).
//!
//! Compilation (done once, when a policy is saved or loaded) parses the Cedar text, names every
//! policy, checks AIM's annotations, builds the schema for the actions the policies name and
//! validates in Cedar's strict mode. Anything invalid is an [`Error`] carrying Cedar's message;
//! nothing is half-loaded.
//!
//! # Conventions on Cedar text
//! - `@id("name")` names a policy; the name is what decisions report in `matchedPolicies`. Without
//!   it Cedar's positional id (`policy0`, `policy1`, …) is used. Names must be unique.
//! - `@effect("require_approval")` on a `permit` turns an allow into "a human must approve".
//!   It is refused on a `forbid` and any other value is refused.
//! - `@approvers("a,b")` (only next to `@effect("require_approval")`) lists who may approve.
//! - Templates (`?principal`) are refused: AIM stores whole policies.
//! - Actions are capabilities: `Action::"files:read"`; `Action::"files:*"` is the group of every
//!   `files:` action, so `action in Action::"files:*"` matches `files:read`.

use std::collections::BTreeMap;

use cedar_policy::{Effect as CedarEffect, Policy, PolicyId, PolicySet, ValidationMode, Validator};
use sha2::{Digest, Sha256};

use crate::capability::Grant;
use crate::error::{Error, Result};
use crate::schema::{self, ActionIds};

/// Annotation naming a policy.
pub const ANNOTATION_ID: &str = "id";
/// Annotation marking a permit as "requires approval".
pub const ANNOTATION_EFFECT: &str = "effect";
/// The only accepted value of [`ANNOTATION_EFFECT`].
pub const EFFECT_REQUIRE_APPROVAL: &str = "require_approval";
/// Annotation listing approvers (comma-separated) of a require-approval permit.
pub const ANNOTATION_APPROVERS: &str = "approvers";

/// Where a policy set came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    Cedar,
    GovernanceYaml,
}

/// An obligation rule from governance YAML: applies to every request whose capability the
/// selector covers. The server enforces it (rate limit) or acts on it (audit, notify).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObligationRule {
    pub policy: String,
    /// `None` = every capability (`capability: "*"` in YAML).
    pub selector: Option<Grant>,
    pub kind: ObligationKind,
}

/// What an obligation asks for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ObligationKind {
    /// At most `limit` decisions per `period_seconds`, counted per agent and capability.
    #[serde(rename_all = "camelCase")]
    RateLimit { limit: u64, period_seconds: u64 },
    /// Record the decision in the audit log with full context (the server records every
    /// decision anyway; this marks it for compliance reports).
    Audit,
    /// Send an alert to the organization's alert channels.
    Notify,
}

/// A compiled and validated policy set. Cheap to share (`Arc` it) and to evaluate repeatedly.
#[derive(Debug, Clone)]
pub struct PolicyBundle {
    pub(crate) set: PolicySet,
    pub(crate) approvals: BTreeMap<String, Vec<String>>,
    pub(crate) obligations: Vec<ObligationRule>,
    version: String,
    format: SourceFormat,
    names: Vec<String>,
    warnings: Vec<String>,
}

/// The content hash of a policy source: `sha256:` + lowercase hex of its exact bytes.
pub fn version_of(source: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(source.as_bytes())))
}

impl PolicyBundle {
    /// Compiles and validates Cedar policy text.
    pub fn from_cedar(text: &str) -> Result<Self> {
        let parsed: PolicySet = text.parse().map_err(|e: cedar_policy::ParseErrors| {
            Error::PolicySyntax(format!("{}{}", location(text, &e), full_message(&e)))
        })?;
        if parsed.templates().next().is_some() {
            return Err(Error::PolicySyntax(
                "policy templates (?principal / ?resource) are not supported".into(),
            ));
        }
        let policies: Vec<Policy> = parsed.policies().cloned().collect();
        let mut b = Self::build(policies, SourceFormat::Cedar, text)?;
        b.names.sort();
        Ok(b)
    }

    /// Shared by Cedar text and translated YAML: names, checks annotations, validates.
    pub(crate) fn build(policies: Vec<Policy>, format: SourceFormat, source: &str) -> Result<Self> {
        let mut set = PolicySet::new();
        let mut actions = ActionIds::default();
        let mut approvals = BTreeMap::new();
        let mut names = Vec::new();
        for p in policies {
            let name = p
                .annotation(ANNOTATION_ID)
                .map(str::to_string)
                .unwrap_or_else(|| p.id().to_string());
            if name.is_empty() {
                return Err(Error::PolicySyntax("@id(\"\") is empty".into()));
            }
            let p = p.new_id(PolicyId::new(&name));
            match (p.annotation(ANNOTATION_EFFECT), p.effect()) {
                (None, _) => {
                    if p.annotation(ANNOTATION_APPROVERS).is_some() {
                        return Err(Error::PolicySyntax(format!(
                            "policy {name:?}: @approvers is only allowed with \
                             @effect(\"{EFFECT_REQUIRE_APPROVAL}\")"
                        )));
                    }
                }
                (Some(EFFECT_REQUIRE_APPROVAL), CedarEffect::Permit) => {
                    let approvers = p
                        .annotation(ANNOTATION_APPROVERS)
                        .map(|a| {
                            a.split(',')
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                    approvals.insert(name.clone(), approvers);
                }
                (Some(EFFECT_REQUIRE_APPROVAL), CedarEffect::Forbid) => {
                    return Err(Error::PolicySyntax(format!(
                        "policy {name:?}: @effect(\"{EFFECT_REQUIRE_APPROVAL}\") belongs on a \
                         permit, not a forbid"
                    )));
                }
                (Some(other), _) => {
                    return Err(Error::PolicySyntax(format!(
                        "policy {name:?}: unknown @effect({other:?}); the only AIM effect \
                         annotation is @effect(\"{EFFECT_REQUIRE_APPROVAL}\")"
                    )));
                }
            }
            let json = p
                .to_json()
                .map_err(|e| Error::PolicySyntax(format!("policy {name:?}: {e}")))?;
            collect_actions(&name, &json, &mut actions)?;
            set.add(p).map_err(|e| {
                Error::PolicySyntax(format!("policy {name:?}: {e} (names must be unique)"))
            })?;
            names.push(name);
        }
        let schema = schema::build(&actions)?;
        let result = Validator::new(schema).validate(&set, ValidationMode::Strict);
        if !result.validation_passed() {
            let msgs: Vec<String> = result.validation_errors().map(full_message).collect();
            return Err(Error::PolicyValidation(msgs.join("; ")));
        }
        let warnings = result.validation_warnings().map(full_message).collect();
        Ok(PolicyBundle {
            set,
            approvals,
            obligations: Vec::new(),
            version: version_of(source),
            format,
            names,
            warnings,
        })
    }

    /// `sha256:<hex>` of the exact source text: identical text ⇒ identical version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Cedar text or governance YAML.
    pub fn format(&self) -> SourceFormat {
        self.format
    }

    /// Policy names (ids) in the set.
    pub fn policy_names(&self) -> &[String] {
        &self.names
    }

    /// Validator warnings (the set is valid; these are hints such as an always-false policy).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The obligation rules (governance YAML only).
    pub fn obligation_rules(&self) -> &[ObligationRule] {
        &self.obligations
    }

    /// The Cedar text of the set (for YAML, the translation), policies in name order.
    pub fn cedar_text(&self) -> String {
        let mut out = String::new();
        for name in &self.names {
            if let Some(p) = self.set.policy(&PolicyId::new(name)) {
                out.push_str(&p.to_string());
                out.push_str("\n\n");
            }
        }
        out
    }
}

/// `line L column C: ` of a diagnostic's first label in `src`, or nothing.
fn location(src: &str, e: &dyn miette::Diagnostic) -> String {
    let Some(offset) = e.labels().and_then(|mut l| l.next()).map(|l| l.offset()) else {
        return String::new();
    };
    let before = &src[..src.floor_char_boundary(offset.min(src.len()))];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line} column {column}: ")
}

/// Cedar's message including its diagnostic help, on one line.
fn full_message<E: miette_like::Diag>(e: &E) -> String {
    e.message()
}

mod miette_like {
    /// Display plus the `help` text Cedar's diagnostics carry.
    pub trait Diag {
        fn message(&self) -> String;
    }
    impl<T: std::fmt::Display + miette::Diagnostic> Diag for T {
        fn message(&self) -> String {
            let mut m = self.to_string();
            if let Some(h) = self.help() {
                m.push_str(" (");
                m.push_str(&h.to_string());
                m.push(')');
            }
            if let Some(related) = self.related() {
                for r in related {
                    m.push_str("; ");
                    m.push_str(&r.to_string());
                }
            }
            m
        }
    }
}

/// Walks a policy's JSON form for every `Action` entity literal.
fn collect_actions(name: &str, v: &serde_json::Value, out: &mut ActionIds) -> Result<()> {
    match v {
        serde_json::Value::Object(m) => {
            if let (Some(serde_json::Value::String(ty)), Some(serde_json::Value::String(id))) =
                (m.get("type"), m.get("id"))
                && (ty == "Action" || ty.ends_with("::Action"))
            {
                out.add(name, id)?;
            }
            for child in m.values() {
                collect_actions(name, child, out)?;
            }
        }
        serde_json::Value::Array(a) => {
            for child in a {
                collect_actions(name, child, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}
