//! What is being decided: which agent wants to use which capability on which resource, and in
//! what context.
//!
//! The JSON form (camelCase) is what `opena2a policy check --agent/--context` reads:
//! agent `{"id", "name"?, "type"?, "trustScore", "tags"?, "owner"?, "capabilities"?}` and context
//! `{"time"?, "riskLevel"?, "clientAddress"?, "mcpServer"?}`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};

use cedar_policy::{Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::capability::{Capability, GrantSet};
use crate::error::{Error, Result};

/// Longest accepted resource string, agent id, name, owner, tag or MCP server name.
pub const MAX_FIELD_LEN: usize = 4096;
/// Most tags an agent may carry in a request.
pub const MAX_TAGS: usize = 256;

/// The principal: an agent and the attributes policies may read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Agent {
    /// The agent id (`Agent::"<id>"` in Cedar).
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// e.g. `ai_agent`, `mcp_server` (free text; policies compare it as a string).
    #[serde(default, rename = "type")]
    pub agent_type: String,
    /// 0–100, rounded down by the caller.
    pub trust_score: u8,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Owner (user id or e-mail) as the caller records it.
    #[serde(default)]
    pub owner: String,
    /// The agent's capability grants. When present, the engine checks them first (no grant →
    /// deny). `None` means the caller checked grants itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
}

/// Risk level of a request, as the caller classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
    Critical,
}

impl RiskLevel {
    /// `low`, `medium`, `high`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
            RiskLevel::Critical => "critical",
        }
    }

    /// 0 (low) to 3 (critical): `context.riskRank` in Cedar.
    pub fn rank(self) -> i64 {
        self as i64
    }
}

/// The request context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestContext {
    /// When the action is requested (`context.time`, a Cedar `datetime` truncated to the second).
    pub time: DateTime<Utc>,
    pub risk_level: RiskLevel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_server: Option<String>,
}

/// One decision request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub agent: Agent,
    pub capability: Capability,
    /// The resource acted on. Empty when the caller named none (aim-sdk's `resource` is
    /// optional): Cedar then sees `Resource::""`, which a policy can test for.
    pub resource: String,
    pub context: RequestContext,
}

fn check_len(what: &str, s: &str) -> Result<()> {
    if s.len() > MAX_FIELD_LEN {
        return Err(Error::Request(format!(
            "{what} is longer than {MAX_FIELD_LEN} bytes"
        )));
    }
    Ok(())
}

impl Request {
    /// Checks every field (trust score 0–100, non-empty agent id, sizes, well-formed grants).
    pub fn validate(&self) -> Result<()> {
        let a = &self.agent;
        if a.id.is_empty() {
            return Err(Error::Request("agent id is empty".into()));
        }
        if a.trust_score > 100 {
            return Err(Error::Request(format!(
                "trustScore {} is outside 0-100",
                a.trust_score
            )));
        }
        if a.tags.len() > MAX_TAGS {
            return Err(Error::Request(format!("more than {MAX_TAGS} tags")));
        }
        check_len("agent id", &a.id)?;
        check_len("agent name", &a.name)?;
        check_len("agent type", &a.agent_type)?;
        check_len("owner", &a.owner)?;
        check_len("resource", &self.resource)?;
        for t in &a.tags {
            check_len("tag", t)?;
        }
        if let Some(m) = &self.context.mcp_server {
            check_len("mcpServer", m)?;
        }
        if let Some(caps) = &a.capabilities {
            GrantSet::parse(caps)?;
        }
        Ok(())
    }

    /// The agent's grants, when the request carries them.
    pub fn grants(&self) -> Result<Option<GrantSet>> {
        self.agent
            .capabilities
            .as_ref()
            .map(GrantSet::parse)
            .transpose()
    }
}

/// The entity types of every request, parsed once (Cedar's parser showed up at ~3 % of the
/// server's CPU when they were parsed per decision).
fn entity_type(ty: &'static str) -> Result<EntityTypeName> {
    static TYPES: OnceLock<Vec<(&'static str, EntityTypeName)>> = OnceLock::new();
    let types = TYPES.get_or_init(|| {
        ["Agent", "Action", "Resource"]
            .into_iter()
            .filter_map(|t| t.parse().ok().map(|n| (t, n)))
            .collect()
    });
    match types.iter().find(|(t, _)| *t == ty) {
        Some((_, n)) => Ok(n.clone()),
        None => ty
            .parse()
            .map_err(|e| Error::Internal(format!("entity type {ty}: {e}"))),
    }
}

fn uid(ty: &'static str, id: &str) -> Result<EntityUid> {
    Ok(EntityUid::from_type_name_and_id(
        entity_type(ty)?,
        EntityId::new(id),
    ))
}

/// `context.time` as a Cedar `datetime`, truncated to the second.
///
/// Cedar's constructor parses the extension's name on every call (as costly as the rest of the
/// request), so the value of the current second is kept: every decision within one second shares
/// it. Invariant: the cached expression is exactly `datetime("<that second>Z")`.
fn datetime_value(t: &DateTime<Utc>) -> RestrictedExpression {
    static LAST: Mutex<Option<(i64, RestrictedExpression)>> = Mutex::new(None);
    let secs = t.timestamp();
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((at, v)) = &*last
        && *at == secs
    {
        return v.clone();
    }
    let v = RestrictedExpression::new_datetime(t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    *last = Some((secs, v.clone()));
    v
}

/// Most client addresses [`ip_value`] keeps (the map is emptied when full).
const IP_CACHE_MAX: usize = 4096;

/// `context.clientAddress` as a Cedar `ip` value, kept per address for the same reason as
/// [`datetime_value`]; bounded by [`IP_CACHE_MAX`] entries.
fn ip_value(ip: IpAddr) -> RestrictedExpression {
    static CACHE: OnceLock<Mutex<HashMap<IpAddr, RestrictedExpression>>> = OnceLock::new();
    let mut map = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(v) = map.get(&ip) {
        return v.clone();
    }
    if map.len() >= IP_CACHE_MAX {
        map.clear();
    }
    let v = RestrictedExpression::new_ip(ip.to_string());
    map.insert(ip, v.clone());
    v
}

fn s(v: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(v.to_string())
}

/// The Cedar request and entities for `req` (assumes [`Request::validate`] passed).
pub(crate) fn to_cedar(req: &Request) -> Result<(cedar_policy::Request, cedar_policy::Entities)> {
    let a = &req.agent;
    let principal = uid("Agent", &a.id)?;
    let action = uid("Action", &req.capability.to_string())?;
    let group = uid("Action", &req.capability.namespace_grant().to_string())?;
    let resource = uid("Resource", &req.resource)?;

    let agent_attrs: HashMap<String, RestrictedExpression> = HashMap::from([
        ("name".to_string(), s(&a.name)),
        ("agentType".to_string(), s(&a.agent_type)),
        (
            "trustScore".to_string(),
            RestrictedExpression::new_long(i64::from(a.trust_score)),
        ),
        (
            "tags".to_string(),
            RestrictedExpression::new_set(a.tags.iter().map(|t| s(t))),
        ),
        ("owner".to_string(), s(&a.owner)),
    ]);
    let internal = |e: &dyn std::fmt::Display| Error::Internal(e.to_string());
    let entities = [
        Entity::new(principal.clone(), agent_attrs, Default::default())
            .map_err(|e| internal(&e))?,
        Entity::new(
            resource.clone(),
            HashMap::from([("id".to_string(), s(&req.resource))]),
            Default::default(),
        )
        .map_err(|e| internal(&e))?,
        Entity::new_no_attrs(action.clone(), [group.clone()].into()),
        Entity::new_no_attrs(group, Default::default()),
    ];
    let entities =
        cedar_policy::Entities::from_entities(entities, None).map_err(|e| internal(&e))?;

    let c = &req.context;
    let mut pairs = vec![
        ("time".to_string(), datetime_value(&c.time)),
        ("riskLevel".to_string(), s(c.risk_level.as_str())),
        (
            "riskRank".to_string(),
            RestrictedExpression::new_long(c.risk_level.rank()),
        ),
    ];
    if let Some(ip) = c.client_address {
        pairs.push(("clientAddress".to_string(), ip_value(ip)));
    }
    if let Some(m) = &c.mcp_server {
        pairs.push(("mcpServer".to_string(), s(m)));
    }
    let context = cedar_policy::Context::from_pairs(pairs)
        .map_err(|e| Error::Request(format!("context: {e}")))?;
    let request = cedar_policy::Request::new(principal, action, resource, context, None)
        .map_err(|e| internal(&e))?;
    Ok((request, entities))
}
