//! What is being decided: which agent wants to use which capability on which resource, and in
//! what context.
//!
//! The JSON form (camelCase) is what `opena2a policy check --agent/--context` reads:
//! agent `{"id", "name"?, "type"?, "trustScore", "tags"?, "owner"?, "capabilities"?}` and context
//! `{"time"?, "riskLevel"?, "clientAddress"?, "mcpServer"?}`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Most `(agent, capability)` entity sets a [`CedarCache`] keeps (emptied when full; an entry
/// is ~2 KB).
const PRINCIPALS_MAX: usize = 1024;
/// Most entity sets all caches of the process keep together (each organization's engine has its
/// own cache): a cache that would go beyond it empties itself first, and stops caching while the
/// others hold the whole budget.
const PRINCIPALS_TOTAL_MAX: usize = 8192;
/// Entity sets held by every [`CedarCache`] of the process.
static PRINCIPALS_HELD: AtomicUsize = AtomicUsize::new(0);
/// Most contexts a [`CedarCache`] keeps for the current second (emptied when full).
const CONTEXTS_MAX: usize = 1024;

/// The policy-visible attributes of an agent (everything [`to_cedar`] puts in its entity).
fn same_principal(a: &Agent, b: &Agent) -> bool {
    a.id == b.id
        && a.name == b.name
        && a.agent_type == b.agent_type
        && a.trust_score == b.trust_score
        && a.tags == b.tags
        && a.owner == b.owner
}

/// What a context is built from, truncated to the second like `context.time`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ContextKey {
    risk: RiskLevel,
    client_address: Option<IpAddr>,
    mcp_server: Option<String>,
}

/// Cedar values kept between decisions of one [`crate::Engine`]: building the entities and the
/// context cost ~4× Cedar's evaluation of a small policy set (`aim-bench verify` profile).
///
/// Invariants: a cached entity set is used only for the same agent id AND capability AND
/// identical policy-visible agent attributes ([`same_principal`]: name, type, trust score, tags,
/// owner), so a changed attribute (a new trust score, say) rebuilds it; the resource entity is
/// built for every request and added to a copy. A cached context is used only within the same
/// second for the same risk level, client address and MCP server. Both maps are bounded, and the
/// entity sets of all caches of the process together by [`PRINCIPALS_TOTAL_MAX`].
#[derive(Default)]
pub(crate) struct CedarCache {
    principals: Mutex<HashMap<(String, Capability), (Agent, cedar_policy::Entities)>>,
    contexts: Mutex<(i64, HashMap<ContextKey, cedar_policy::Context>)>,
}

impl CedarCache {
    /// The Cedar request and entities for `req` (assumes [`Request::validate`] passed); the
    /// same values as [`to_cedar`], from the cache when it holds them.
    pub(crate) fn to_cedar(
        &self,
        req: &Request,
    ) -> Result<(cedar_policy::Request, cedar_policy::Entities)> {
        let a = &req.agent;
        let key = (a.id.clone(), req.capability.clone());
        let cached = {
            let map = self.principals.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&key)
                .filter(|(seen, _)| same_principal(seen, a))
                .map(|(_, e)| e.clone())
        };
        let principal = match cached {
            Some(e) => e,
            None => {
                let e = principal_entities(a, &req.capability)?;
                let mut map = self.principals.lock().unwrap_or_else(|p| p.into_inner());
                if map.len() >= PRINCIPALS_MAX
                    || PRINCIPALS_HELD.load(Ordering::Relaxed) >= PRINCIPALS_TOTAL_MAX
                {
                    PRINCIPALS_HELD.fetch_sub(map.len(), Ordering::Relaxed);
                    map.clear();
                }
                // Reserve a place in the process budget first, so it is never exceeded.
                let reserved = PRINCIPALS_HELD
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                        (held < PRINCIPALS_TOTAL_MAX).then_some(held + 1)
                    })
                    .is_ok();
                if reserved {
                    let mut seen = a.clone();
                    seen.capabilities = None;
                    if map.insert(key, (seen, e.clone())).is_some() {
                        PRINCIPALS_HELD.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                e
            }
        };
        assemble(req, principal, self.context(&req.context)?)
    }

    /// Entity sets held by all caches of the process (bounded by [`PRINCIPALS_TOTAL_MAX`]).
    #[cfg(test)]
    fn held_in_process() -> usize {
        PRINCIPALS_HELD.load(Ordering::Relaxed)
    }

    fn context(&self, c: &RequestContext) -> Result<cedar_policy::Context> {
        let second = c.time.timestamp();
        let key = ContextKey {
            risk: c.risk_level,
            client_address: c.client_address,
            mcp_server: c.mcp_server.clone(),
        };
        {
            let guard = self.contexts.lock().unwrap_or_else(|p| p.into_inner());
            if guard.0 == second
                && let Some(ctx) = guard.1.get(&key)
            {
                return Ok(ctx.clone());
            }
        }
        let ctx = context_of(c)?;
        let mut guard = self.contexts.lock().unwrap_or_else(|p| p.into_inner());
        if guard.0 != second || guard.1.len() >= CONTEXTS_MAX {
            *guard = (second, HashMap::new());
        }
        guard.1.insert(key, ctx.clone());
        Ok(ctx)
    }
}

impl std::fmt::Debug for CedarCache {
    /// Sizes only: an engine's `Debug` must not dump every cached agent.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let principals = self.principals.lock().map_or(0, |m| m.len());
        let contexts = self.contexts.lock().map_or(0, |c| c.1.len());
        f.debug_struct("CedarCache")
            .field("principals", &principals)
            .field("contexts", &contexts)
            .finish()
    }
}

impl Drop for CedarCache {
    /// Returns this cache's entries to the process budget (the engine is being replaced).
    fn drop(&mut self) {
        let held = self.principals.get_mut().map_or(0, |m| m.len());
        PRINCIPALS_HELD.fetch_sub(held, Ordering::Relaxed);
    }
}

fn internal(e: &dyn std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// The principal's entity, the action's and its namespace group's.
fn principal_entities(a: &Agent, capability: &Capability) -> Result<cedar_policy::Entities> {
    let principal = uid("Agent", &a.id)?;
    let action = uid("Action", &capability.to_string())?;
    let group = uid("Action", &capability.namespace_grant().to_string())?;
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
    let entities = [
        Entity::new(principal, agent_attrs, Default::default()).map_err(|e| internal(&e))?,
        Entity::new_no_attrs(action, [group.clone()].into()),
        Entity::new_no_attrs(group, Default::default()),
    ];
    cedar_policy::Entities::from_entities(entities, None).map_err(|e| internal(&e))
}

/// The Cedar request and entities of `req` from its principal's entities
/// ([`principal_entities`]) and its context ([`context_of`]): the resource's entity
/// (`Resource::"<resource>"` with its `id`) is added to them.
fn assemble(
    req: &Request,
    principal: cedar_policy::Entities,
    context: cedar_policy::Context,
) -> Result<(cedar_policy::Request, cedar_policy::Entities)> {
    let resource = uid("Resource", &req.resource)?;
    let resource_entity = Entity::new(
        resource.clone(),
        HashMap::from([("id".to_string(), s(&req.resource))]),
        Default::default(),
    )
    .map_err(|e| internal(&e))?;
    let entities = principal
        .add_entities([resource_entity], None)
        .map_err(|e| internal(&e))?;
    let request = cedar_policy::Request::new(
        uid("Agent", &req.agent.id)?,
        uid("Action", &req.capability.to_string())?,
        resource,
        context,
        None,
    )
    .map_err(|e| internal(&e))?;
    Ok((request, entities))
}

fn context_of(c: &RequestContext) -> Result<cedar_policy::Context> {
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
    cedar_policy::Context::from_pairs(pairs).map_err(|e| Error::Request(format!("context: {e}")))
}

/// The Cedar request and entities for `req` (assumes [`Request::validate`] passed), built from
/// nothing: the reference [`CedarCache::to_cedar`] must agree with.
#[cfg(test)]
pub(crate) fn to_cedar(req: &Request) -> Result<(cedar_policy::Request, cedar_policy::Entities)> {
    assemble(
        req,
        principal_entities(&req.agent, &req.capability)?,
        context_of(&req.context)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn request(n: u32) -> Request {
        Request {
            agent: Agent {
                id: format!("agent-{}", n % 3),
                name: "bot".into(),
                agent_type: "ai_agent".into(),
                trust_score: (n % 7) as u8 * 10,
                tags: (0..n % 3).map(|t| format!("t{t}")).collect(),
                owner: "alice@example.com".into(),
                capabilities: None,
            },
            capability: Capability::parse(if n.is_multiple_of(2) {
                "files:read"
            } else {
                "db:query"
            })
            .unwrap(),
            resource: format!("res-{}", n % 5),
            context: RequestContext {
                time: Utc.with_ymd_and_hms(2026, 12, 7, 1, 0, 0).unwrap()
                    + chrono::Duration::milliseconds(i64::from(n) * 370),
                risk_level: [RiskLevel::Low, RiskLevel::High][(n % 2) as usize],
                client_address: (!n.is_multiple_of(4))
                    .then(|| format!("10.0.0.{}", n % 4).parse().unwrap()),
                mcp_server: n.is_multiple_of(5).then(|| "pg-mcp".to_string()),
            },
        }
    }

    /// Whatever the cache holds, it answers exactly what building from nothing answers.
    #[test]
    fn the_cache_agrees_with_building_from_nothing() {
        let cache = CedarCache::default();
        for n in 0..400 {
            let r = request(n);
            let (want_req, want_entities) = to_cedar(&r).unwrap();
            let (got_req, got_entities) = cache.to_cedar(&r).unwrap();
            // (`Entities`' `==` compares entity ids only; `deep_eq` compares attributes and
            // ancestors too.)
            assert!(
                got_entities.deep_eq(&want_entities),
                "entities of request {n}"
            );
            assert_eq!(got_req.principal(), want_req.principal(), "{n}");
            assert_eq!(got_req.action(), want_req.action(), "{n}");
            assert_eq!(got_req.resource(), want_req.resource(), "{n}");
            assert_eq!(
                got_req.context(),
                want_req.context(),
                "context of request {n}"
            );
        }
        // It was used: the principals of 3 agents x 2 capabilities at most 7 x 3 attribute sets.
        let held = cache.principals.lock().unwrap().len();
        assert!((1..=6).contains(&held), "{held}");
    }

    /// Both maps stay bounded.
    #[test]
    fn the_cache_is_bounded() {
        assert_eq!(
            format!("{:?}", CedarCache::default()),
            "CedarCache { principals: 0, contexts: 0 }"
        );
        let cache = CedarCache::default();
        for n in 0..(PRINCIPALS_MAX as u32 + 10) {
            let mut r = request(0);
            r.agent.id = format!("agent-{n}");
            r.context.client_address =
                Some(std::net::IpAddr::from([10, 0, (n >> 8) as u8, n as u8]));
            cache.to_cedar(&r).unwrap();
        }
        assert!(cache.principals.lock().unwrap().len() <= PRINCIPALS_MAX);
        assert!(cache.contexts.lock().unwrap().1.len() <= CONTEXTS_MAX);
        // Many engines' caches together stay within the process budget.
        let caches: Vec<CedarCache> = (0..12).map(|_| CedarCache::default()).collect();
        for (c, cache) in caches.iter().enumerate() {
            for n in 0..PRINCIPALS_MAX as u32 {
                let mut r = request(0);
                r.agent.id = format!("org{c}-agent-{n}");
                cache.to_cedar(&r).unwrap();
            }
        }
        assert!(CedarCache::held_in_process() <= PRINCIPALS_TOTAL_MAX);
        let held: usize = caches
            .iter()
            .map(|c| c.principals.lock().unwrap().len())
            .sum();
        assert!(held <= PRINCIPALS_TOTAL_MAX, "{held}");
        assert!(held > 0);
    }
}
