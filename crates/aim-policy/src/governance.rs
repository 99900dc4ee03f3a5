//! AIP governance YAML, translated into the same engine: Cedar policies for the decision and
//! obligation rules for what the server must do besides deciding.
//!
//! ```yaml
//! policies:
//!   - name: read-files
//!     capability: files:read          # a capability, a namespace:* grant, or "*" (every one)
//!     action: allow                   # allow | deny | require_approval | rate_limit | audit | notify
//!   - name: payments-need-a-human
//!     capability: payments:*
//!     action: require_approval
//!     approvers: [alice@example.com, role:admin]
//!   - name: db-burst
//!     capability: db:query
//!     action: rate_limit
//!     limit: 100
//!     period: 1m                      # Ns, Nm, Nh, Nd, or a number of seconds
//! ```
//!
//! Parsing is strict: an unknown field, an unknown action, a field that does not belong to the
//! action (`limit` on `allow`, `approvers` on `deny`), a duplicate or malformed name, or a
//! malformed capability is an error, never ignored.
//!
//! Translation (each entry named by `@id(name)`):
//! - `allow` → `permit(principal, <scope>, resource);`
//! - `deny` → `forbid(principal, <scope>, resource);`
//! - `require_approval` → `@effect("require_approval") @approvers("…") permit(…);`
//! - `rate_limit`, `audit`, `notify` → obligation rules only; they grant nothing, so a file made
//!   only of them denies everything.
//!
//! where `<scope>` is `action == Action::"files:read"`, `action in Action::"files:*"`, or `action`
//! for `"*"`.

use serde::Deserialize;

use crate::capability::Grant;
use crate::error::{Error, Result};
use crate::policy::{ObligationKind, ObligationRule, PolicyBundle, SourceFormat};

/// Longest period accepted for a rate limit: 366 days.
pub const MAX_PERIOD_SECONDS: u64 = 366 * 24 * 3600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    policies: Vec<Item>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    name: String,
    capability: String,
    action: Action,
    #[serde(default)]
    approvers: Option<Vec<String>>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    period: Option<Period>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Action {
    Allow,
    Deny,
    RequireApproval,
    RateLimit,
    Audit,
    Notify,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Period {
    Seconds(u64),
    Text(String),
}

fn err(name: &str, msg: impl std::fmt::Display) -> Error {
    Error::Governance(format!("policy {name:?}: {msg}"))
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" _.:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(err(
            name,
            "a name is 1-128 characters of A-Z, a-z, 0-9, space, '_', '.', ':', '-'",
        ))
    }
}

fn check_approver(name: &str, a: &str) -> Result<()> {
    let ok = !a.is_empty()
        && a.len() <= 256
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.@:+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(err(
            name,
            format!(
                "approver {a:?}: use 1-256 characters of A-Z, a-z, 0-9, '_', '.', '@', ':', '+', '-'"
            ),
        ))
    }
}

/// Parses `30s`, `5m`, `1h`, `1d` or a bare number of seconds; 1 s to [`MAX_PERIOD_SECONDS`].
fn period_seconds(name: &str, p: &Period) -> Result<u64> {
    let secs = match p {
        Period::Seconds(s) => Some(*s),
        Period::Text(t) => {
            let (num, unit) = t.split_at(t.len().saturating_sub(1));
            let mult = match unit {
                "s" => Some(1u64),
                "m" => Some(60),
                "h" => Some(3600),
                "d" => Some(86400),
                _ => None,
            };
            match (mult, num.parse::<u64>()) {
                (Some(m), Ok(n)) if num.bytes().all(|b| b.is_ascii_digit()) => n.checked_mul(m),
                _ => None,
            }
        }
    };
    match secs {
        Some(s) if (1..=MAX_PERIOD_SECONDS).contains(&s) => Ok(s),
        _ => Err(err(
            name,
            "period must be 1s to 366d, written like 30s, 5m, 1h, 1d or a number of seconds",
        )),
    }
}

/// The parser's message without its source snippet: one line, e.g. `line 2 column 47: unknown
/// variant `maybe`, expected one of allow, …`.
fn first_line(msg: &str) -> String {
    let line = msg.lines().next().unwrap_or(msg);
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// Compiles governance YAML into a validated [`PolicyBundle`].
pub fn compile(yaml: &str) -> Result<PolicyBundle> {
    let doc: Document =
        serde_saphyr::from_str(yaml).map_err(|e| Error::Governance(first_line(&e.to_string())))?;
    let mut cedar = String::new();
    let mut obligations = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for item in &doc.policies {
        let name = item.name.as_str();
        check_name(name)?;
        if !seen.insert(name.to_string()) {
            return Err(err(name, "duplicate name"));
        }
        let selector = if item.capability == "*" {
            None
        } else {
            Some(Grant::parse(&item.capability).map_err(|e| err(name, e))?)
        };
        let scope = match &selector {
            None => "action".to_string(),
            Some(g) if g.is_wildcard() => format!("action in Action::\"{g}\""),
            Some(g) => format!("action == Action::\"{g}\""),
        };
        let is_rate = item.action == Action::RateLimit;
        if item.approvers.is_some() && item.action != Action::RequireApproval {
            return Err(err(
                name,
                "approvers is only allowed with action require_approval",
            ));
        }
        if !is_rate && (item.limit.is_some() || item.period.is_some()) {
            return Err(err(
                name,
                "limit and period are only allowed with action rate_limit",
            ));
        }
        match item.action {
            Action::Allow => cedar.push_str(&format!(
                "@id(\"{name}\")\npermit(principal, {scope}, resource);\n"
            )),
            Action::Deny => cedar.push_str(&format!(
                "@id(\"{name}\")\nforbid(principal, {scope}, resource);\n"
            )),
            Action::RequireApproval => {
                let approvers = item.approvers.clone().unwrap_or_default();
                for a in &approvers {
                    check_approver(name, a)?;
                }
                let ann = if approvers.is_empty() {
                    String::new()
                } else {
                    format!("@approvers(\"{}\")\n", approvers.join(","))
                };
                cedar.push_str(&format!(
                    "@id(\"{name}\")\n@effect(\"require_approval\")\n{ann}permit(principal, {scope}, resource);\n"
                ));
            }
            Action::RateLimit => {
                let (Some(limit), Some(period)) = (item.limit, item.period.as_ref()) else {
                    return Err(err(name, "rate_limit needs both limit and period"));
                };
                if limit == 0 {
                    return Err(err(name, "limit must be at least 1"));
                }
                obligations.push(ObligationRule {
                    policy: name.to_string(),
                    selector,
                    kind: ObligationKind::RateLimit {
                        limit,
                        period_seconds: period_seconds(name, period)?,
                    },
                });
            }
            Action::Audit => obligations.push(ObligationRule {
                policy: name.to_string(),
                selector,
                kind: ObligationKind::Audit,
            }),
            Action::Notify => obligations.push(ObligationRule {
                policy: name.to_string(),
                selector,
                kind: ObligationKind::Notify,
            }),
        }
    }
    let parsed: cedar_policy::PolicySet =
        cedar.parse().map_err(|e: cedar_policy::ParseErrors| {
            Error::Internal(format!(
                "governance translation produced invalid Cedar: {e}"
            ))
        })?;
    let policies = parsed.policies().cloned().collect();
    let mut bundle = PolicyBundle::build(policies, SourceFormat::GovernanceYaml, yaml)?;
    bundle.obligations = obligations;
    Ok(bundle)
}
