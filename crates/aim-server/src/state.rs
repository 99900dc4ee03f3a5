//! Shared application state.

use std::sync::Arc;

use aim_core::clock::Clock;
use aim_store::{AuditRecord, LockoutPolicy, Store};
use uuid::Uuid;

use crate::config::Config;
use crate::decision_writer::DecisionWriter;
use crate::jwt::JwtKeys;
use crate::keyring::KeyRing;
use crate::password::Hasher;

/// Everything a handler needs. Cloning is one reference-count increment (handlers and
/// middleware clone it per request); fields are reached through `Deref`. The server keeps no
/// state that the store does not also hold, except caches it can rebuild (JWT key set).
#[derive(Clone)]
pub struct AppState(Arc<AppStateParts>);

impl AppState {
    pub fn new(parts: AppStateParts) -> AppState {
        AppState(Arc::new(parts))
    }

    /// A new state sharing every part with this one except those `change` replaces (e.g. what a
    /// restarted process would hold afresh).
    pub fn with_parts(&self, change: impl FnOnce(&mut AppStateParts)) -> AppState {
        let mut parts = AppStateParts::clone(&self.0);
        change(&mut parts);
        AppState::new(parts)
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateParts;
    fn deref(&self) -> &AppStateParts {
        &self.0
    }
}

/// The parts of an [`AppState`] (all cheap to clone).
#[derive(Clone)]
pub struct AppStateParts {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub jwt: Arc<JwtKeys>,
    pub ring: Arc<KeyRing>,
    pub hasher: Hasher,
    pub clock: Arc<dyn Clock>,
    /// Opened organization log keys (see [`crate::audit_log`]).
    pub org_keys: Arc<crate::audit_log::OrgKeys>,
    /// Incremental verifiers of the organizations' audit chains (see [`crate::audit_log`]).
    pub chains: Arc<crate::audit_log::ChainStates>,
    /// Decision-path trust scores (see [`crate::trust::decision_score`]).
    pub trust_cache: Arc<crate::trust::TrustCache>,
    /// The group-commit writer of signed agent requests.
    pub writer: DecisionWriter,
    /// Rate limiters (per address, login, per credential).
    pub limits: Arc<crate::ratelimit::RateLimits>,
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Caches and limiters of the decision path.
    pub authz: Arc<crate::authz::Authz>,
    /// The SMTP sender of email alerts (one connection pool), when `smtp_host` is configured.
    pub mailer: Option<Arc<aim_alerts::email::Mailer>>,
}

impl AppState {
    /// Current time, Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// The lockout policy from the configuration.
    pub fn lockout(&self) -> LockoutPolicy {
        let secs = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
        LockoutPolicy {
            max_failures: i64::from(self.config.lockout_max_failures),
            window_ms: secs(self.config.lockout_window_secs),
            lock_ms: secs(self.config.lockout_duration_secs),
        }
    }

    /// The public base URL (agent DIDs derive from it).
    pub fn public_url(&self) -> String {
        self.config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.config.listen))
    }

    /// An audit record stamped now.
    pub fn audit(
        &self,
        org_id: Option<Uuid>,
        event_type: &str,
        actor: String,
        subject: Option<String>,
        payload: serde_json::Value,
        client_addr: Option<String>,
    ) -> AuditRecord {
        AuditRecord {
            org_id,
            at: self.now_ms(),
            event_type: event_type.into(),
            actor,
            subject,
            payload,
            client_addr,
        }
    }
}

/// Formats Unix milliseconds as RFC 3339 (UTC, millisecond precision).
pub fn ms_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(aim_core::clock::rfc3339_millis)
        .unwrap_or_default()
}
