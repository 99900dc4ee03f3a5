//! Authorization state of the decision path, cached in memory: agent rows (status, keys, grants),
//! each organization's compiled policy set with its enforcement mode, and the rate limiters of
//! actions.
//!
//! Invariants:
//! - A cached value is only ever a copy of what the store holds; every change of an agent row or
//!   of an organization's policies/settings writes a `cache_events` row in its own transaction
//!   (`aim_store::cache_event_of`). [`Authz::sync`] applies the recent events (a 30 s look-back,
//!   applied idempotently, so a read that raced with a change is evicted again on the next pass).
//! - Every replica runs [`Authz::sync`] every `cache_sync_interval_ms`, and the request that made
//!   a change runs it before answering ([`sync_after_change`]), so the replica that made a change
//!   never serves the old value after answering, and other replicas serve it at most one interval
//!   longer. Agent rows are also re-read after `agent_cache_ttl_secs` whatever happens.
//! - A signature that does not verify against a cached row is retried once against a fresh read
//!   (a key rotated on another replica is accepted at once).
//! - A policy set is compiled once per (organization, version) and shared behind an `Arc`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use aim_policy::{EnforcementMode, Engine, PolicyLanguage};
use aim_store::{Agent, CacheEvent, CacheKind, PolicyLanguageName, Store};
use axum::http::Method;
use uuid::Uuid;

use crate::config::DecisionConfig;
use crate::error::Error;
use crate::ratelimit::{KeyedLimiter, RetryAfter};
use crate::state::AppState;

/// The policy set of an organization that never saved one (reported as version 0): every
/// capability the agent holds a grant for is permitted. Zero trust still holds, because a request
/// without a covering grant is denied before policies are evaluated (`NO_GRANT`); administrators
/// narrow it by saving their own set.
pub const DEFAULT_POLICY: &str = r#"@id("default-permit-granted")
permit(principal, action, resource);
"#;

/// How far back each sync re-reads the invalidation log (covers commit delays and clock skew
/// between replicas).
const LOOKBACK_MS: i64 = 30_000;

/// An organization's decision inputs, immutable once built.
#[derive(Debug)]
pub struct OrgAuthz {
    /// The compiled policy set in force, or why it could not be compiled (then every decision
    /// is denied: fail closed).
    pub engine: Result<Engine, String>,
    /// Stored version in force (0 = the default policy).
    pub version: i64,
    pub mode: EnforcementMode,
}

/// A limiter of one governance `rate_limit` quota, keyed by (policy, agent, capability).
type ObligationLimiter = KeyedLimiter<(String, String, String)>;

#[derive(Debug, Clone)]
struct CachedAgent {
    agent: Arc<Agent>,
    at: Instant,
}

/// The caches and limiters of the decision path (one per process).
#[derive(Debug)]
pub struct Authz {
    agents: RwLock<HashMap<String, CachedAgent>>,
    orgs: RwLock<HashMap<Uuid, Arc<OrgAuthz>>>,
    agent_ttl: Duration,
    capacity: usize,
    /// Clock time (ms) of the start of the last completed sync.
    last_sync: Mutex<Option<i64>>,
    /// Verifications per (agent, capability).
    pub action_limiter: KeyedLimiter<(String, String)>,
    /// Limiters of governance `rate_limit` obligations, one per (limit, period), keyed by
    /// (policy, agent, capability).
    obligation_limiters: Mutex<HashMap<(u64, u64), Arc<ObligationLimiter>>>,
    /// Audited signature failures per agent ([`SIGNATURE_FAILURE_AUDITS_PER_MINUTE`]): beyond
    /// it failures are still refused but not recorded, so nobody can flood the log.
    pub signature_failure_audits: KeyedLimiter<String>,
}

/// Signature failures recorded per agent per minute (enough for every burst detector).
pub const SIGNATURE_FAILURE_AUDITS_PER_MINUTE: u32 = 30;

impl Authz {
    pub fn new(cfg: &DecisionConfig) -> Authz {
        Authz {
            agents: RwLock::new(HashMap::new()),
            orgs: RwLock::new(HashMap::new()),
            agent_ttl: Duration::from_secs(cfg.agent_cache_ttl_secs),
            capacity: cfg.agent_cache_capacity.max(1) as usize,
            last_sync: Mutex::new(None),
            action_limiter: KeyedLimiter::per_minute(cfg.rate_limit_agent_action_per_minute),
            obligation_limiters: Mutex::new(HashMap::new()),
            signature_failure_audits: KeyedLimiter::per_minute(SIGNATURE_FAILURE_AUDITS_PER_MINUTE),
        }
    }

    /// The agent row, from the cache when fresh.
    pub async fn agent(&self, store: &dyn Store, id: &str) -> Result<Option<Arc<Agent>>, Error> {
        if let Some(c) = self.agents.read().ok().and_then(|m| m.get(id).cloned())
            && c.at.elapsed() < self.agent_ttl
        {
            return Ok(Some(c.agent));
        }
        self.reload_agent(store, id).await
    }

    /// Reads the agent row from the store and caches it.
    pub async fn reload_agent(
        &self,
        store: &dyn Store,
        id: &str,
    ) -> Result<Option<Arc<Agent>>, Error> {
        let Some(agent) = store.find_agent(id).await? else {
            self.evict_agent(id);
            return Ok(None);
        };
        let agent = Arc::new(agent);
        if let Ok(mut m) = self.agents.write() {
            if m.len() >= self.capacity {
                // Bounded memory: drop the expired entries, and if that is not enough, a tenth of
                // the rest (any; they are re-read on demand).
                let ttl = self.agent_ttl;
                m.retain(|_, c| c.at.elapsed() < ttl);
                if m.len() >= self.capacity {
                    let drop: Vec<String> =
                        m.keys().take(self.capacity / 10 + 1).cloned().collect();
                    for k in drop {
                        m.remove(&k);
                    }
                }
            }
            m.insert(
                id.to_string(),
                CachedAgent {
                    agent: agent.clone(),
                    at: Instant::now(),
                },
            );
        }
        Ok(Some(agent))
    }

    /// The organization's compiled policies and mode, built once per change.
    pub async fn org(&self, store: &dyn Store, org_id: Uuid) -> Result<Arc<OrgAuthz>, Error> {
        if let Some(o) = self.orgs.read().ok().and_then(|m| m.get(&org_id).cloned()) {
            return Ok(o);
        }
        let org = store
            .get_org(org_id)
            .await?
            .ok_or_else(|| Error::Unavailable(format!("organization {org_id} vanished")))?;
        let mode: EnforcementMode = org.enforcement_mode.parse().unwrap_or_else(|e| {
            tracing::error!(org = %org_id, error = %e, "stored enforcement mode unreadable; strict");
            EnforcementMode::Strict
        });
        let (version, source, language) = match store.current_policy(org_id).await? {
            Some(p) => (
                p.version,
                p.source,
                match p.language {
                    PolicyLanguageName::Cedar => PolicyLanguage::Cedar,
                    PolicyLanguageName::GovernanceYaml => PolicyLanguage::GovernanceYaml,
                },
            ),
            None => (0, DEFAULT_POLICY.to_string(), PolicyLanguage::Cedar),
        };
        let engine = Engine::compile(&source, language, mode).map_err(|e| {
            tracing::error!(org = %org_id, version, error = %e, "stored policy set does not compile; every decision is denied");
            e.to_string()
        });
        let built = Arc::new(OrgAuthz {
            engine,
            version,
            mode,
        });
        if let Ok(mut m) = self.orgs.write() {
            m.insert(org_id, built.clone());
        }
        Ok(built)
    }

    pub fn evict_agent(&self, id: &str) {
        if let Ok(mut m) = self.agents.write() {
            m.remove(id);
        }
    }

    pub fn evict_org(&self, org_id: Uuid) {
        if let Ok(mut m) = self.orgs.write() {
            m.remove(&org_id);
        }
    }

    fn apply(&self, events: &[CacheEvent]) {
        for e in events {
            match e.kind {
                CacheKind::Agent => self.evict_agent(&e.key),
                CacheKind::Org => self.evict_org(e.org_id),
            }
        }
    }

    /// Applies the invalidation events of the last sync interval plus the look-back.
    pub async fn sync(&self, store: &dyn Store, now_ms: i64) -> Result<usize, Error> {
        let last = self.last_sync.lock().ok().and_then(|g| *g);
        let since = last.map_or(now_ms, |t| t.min(now_ms)) - LOOKBACK_MS;
        let events = store.cache_events_since(since).await?;
        self.apply(&events);
        if let Ok(mut g) = self.last_sync.lock() {
            *g = Some(now_ms);
        }
        Ok(events.len())
    }

    /// Spends one verification of a governance `rate_limit` obligation.
    pub fn check_obligation(
        &self,
        limit: u64,
        period_seconds: u64,
        key: (String, String, String),
    ) -> Result<(), RetryAfter> {
        let limiter = {
            let Ok(mut m) = self.obligation_limiters.lock() else {
                return Ok(());
            };
            m.entry((limit, period_seconds))
                .or_insert_with(|| {
                    let quota = u32::try_from(limit)
                        .ok()
                        .and_then(std::num::NonZeroU32::new)
                        .and_then(|n| {
                            governor::Quota::with_period(
                                Duration::from_secs(period_seconds.max(1)) / n.get(),
                            )
                            .map(|q| q.allow_burst(n))
                        });
                    Arc::new(KeyedLimiter::with_quota(quota))
                })
                .clone()
        };
        if limit == 0 {
            return Err(RetryAfter(Duration::from_secs(period_seconds.max(1))));
        }
        limiter.check(&key)
    }

    /// Forgets idle limiter keys (bounds memory; called by the housekeeping task).
    pub fn retain_recent(&self) {
        self.action_limiter.retain_recent();
        self.signature_failure_audits.retain_recent();
        if let Ok(m) = self.obligation_limiters.lock() {
            for l in m.values() {
                l.retain_recent();
            }
        }
    }
}

/// Whether a request may change cached state: every write except the hot-path routes (their
/// records never invalidate anything).
pub fn may_change(method: &Method, path: &str) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    !(path.ends_with("/actions/verify")
        || path.ends_with("/result")
        || path.ends_with("/heartbeat")
        || path.ends_with("/capability-requests"))
}

/// After a request that may have changed cached state (`change`, from [`may_change`] before it
/// ran) succeeded, applies the invalidation log before answering (see the module invariants).
pub async fn sync_after_change(state: &AppState, change: bool, succeeded: bool) {
    if change
        && succeeded
        && let Err(e) = state.authz.sync(&*state.store, state.now_ms()).await
    {
        // The periodic sync retries; the TTL bounds staleness anyway.
        tracing::warn!(error = %e, "cache sync after a change failed");
    }
}

/// Background task: periodic sync, expiry of pending decisions, pruning of the invalidation log and of idle limiter keys.
pub fn spawn_sync(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_millis(state.config.decisions.cache_sync_interval_ms);
        let mut ticks: u64 = 0;
        loop {
            tokio::time::sleep(every).await;
            let now = state.now_ms();
            if let Err(e) = state.authz.sync(&*state.store, now).await {
                tracing::warn!(error = %e, "cache sync failed");
            }
            // Pending decisions past their deadline become `expired` (audited).
            match state.store.expire_actions(now, 1000).await {
                Ok(expired) if !expired.is_empty() => {
                    tracing::info!(count = expired.len(), "pending action decisions expired");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "expiring pending decisions failed"),
            }
            ticks += 1;
            if ticks.is_multiple_of((60_000 / every.as_millis().max(1) as u64).max(1)) {
                state.authz.retain_recent();
                if let Err(e) = state.store.prune_cache_events(now - 10 * 60_000).await {
                    tracing::warn!(error = %e, "pruning cache events failed");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_path_writes_do_not_sync() {
        assert!(!may_change(
            &Method::POST,
            "/api/v1/agents/aim_x/actions/verify"
        ));
        assert!(!may_change(
            &Method::POST,
            "/api/v1/agents/aim_x/actions/0190/result"
        ));
        assert!(!may_change(&Method::GET, "/api/v1/agents"));
        assert!(may_change(&Method::POST, "/api/v1/agents/aim_x/suspend"));
        assert!(may_change(&Method::PUT, "/api/v1/policies"));
        assert!(may_change(
            &Method::DELETE,
            "/api/v1/agents/aim_x/capabilities/a:b"
        ));
    }

    #[test]
    fn obligation_limit_counts_per_key() {
        let a = Authz::new(&DecisionConfig::default());
        let k = || ("p".to_string(), "agent".to_string(), "db:read".to_string());
        assert!(a.check_obligation(2, 60, k()).is_ok());
        assert!(a.check_obligation(2, 60, k()).is_ok());
        assert!(a.check_obligation(2, 60, k()).is_err());
        // Another agent has its own quota.
        assert!(
            a.check_obligation(2, 60, ("p".into(), "other".into(), "db:read".into()))
                .is_ok()
        );
        assert!(a.check_obligation(0, 60, k()).is_err());
    }
}
