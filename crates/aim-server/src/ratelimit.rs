//! Rate limiting (GCRA via `governor`): per client address, per authenticated credential, and a
//! stricter per-address quota for login attempts.
//!
//! Invariants:
//! - A rejected request is answered `429 rate_limited` with `Retry-After` (whole seconds, at least
//!   1) and the API error body; it never reaches a handler, the store or the password hasher.
//! - The address is the one [`crate::client_ip`] resolved (forwarded headers only from trusted
//!   proxies), so a client cannot dodge its quota by writing `X-Forwarded-For`.
//! - Credential quotas are keyed by what the credential *proved* (the user behind a session, or
//!   the API key id), checked only after authentication succeeded: an unauthenticated client
//!   cannot spend someone else's quota by sending their user id.
//! - Memory is bounded: a background task calls [`KeyedLimiter::retain_recent`] every minute,
//!   which drops every key whose bucket is full again (an idle client costs nothing).
//! - Quotas are per server process (replicas each apply the full quota).
//!
//! [`KeyedLimiter`] is the reusable building block: other parts (per-agent, per-capability limits)
//! create their own `KeyedLimiter<TheirKey>` and call [`KeyedLimiter::check`].

use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::config::OpsConfig;
use crate::error::ApiError;
use crate::state::AppState;

/// The route whose attempts get the stricter login quota.
pub const LOGIN_ROUTE: &str = "/api/v1/auth/login";

/// A refusal: wait this long before retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds for the `Retry-After` header, rounded up, at least 1.
    pub fn secs(&self) -> u64 {
        let d = self.0;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }

    /// The `429` answer.
    pub fn to_api_error(self) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; retry in {} s", self.secs()),
        );
        e.retry_after = Some(self.secs());
        e
    }
}

/// A keyed GCRA limiter: each key may make `per_minute` requests per minute, in bursts of up to
/// `per_minute`. A quota of 0 disables the limiter (every check passes, nothing is stored).
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    inner: Option<DefaultKeyedRateLimiter<K>>,
    clock: DefaultClock,
}

impl<K: Hash + Eq + Clone> std::fmt::Debug for KeyedLimiter<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedLimiter")
            .field("enabled", &self.inner.is_some())
            .field("keys", &self.len())
            .finish()
    }
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// `per_minute` requests per minute per key (burst of the same size); 0 = unlimited.
    pub fn per_minute(per_minute: u32) -> Self {
        Self::with_quota(NonZeroU32::new(per_minute).map(Quota::per_minute))
    }

    /// An explicit `governor` quota; `None` = unlimited.
    pub fn with_quota(quota: Option<Quota>) -> Self {
        KeyedLimiter {
            inner: quota.map(RateLimiter::keyed),
            clock: DefaultClock::default(),
        }
    }

    /// Spends one request of `key`'s quota, or says how long to wait.
    pub fn check(&self, key: &K) -> Result<(), RetryAfter> {
        match &self.inner {
            None => Ok(()),
            Some(l) => l
                .check_key(key)
                .map_err(|not_until| RetryAfter(not_until.wait_time_from(self.clock.now()))),
        }
    }

    /// Forgets keys whose quota is fully replenished (bounds memory).
    pub fn retain_recent(&self) {
        if let Some(l) = &self.inner {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Keys currently tracked.
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |l| l.len())
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a credential quota is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKey {
    /// A human, whatever session or token it uses.
    User(Uuid),
    /// One API key.
    ApiKey(Uuid),
}

/// The server's limiters.
#[derive(Debug)]
pub struct RateLimits {
    pub by_address: KeyedLimiter<IpAddr>,
    pub login_by_address: KeyedLimiter<IpAddr>,
    pub by_credential: KeyedLimiter<CredentialKey>,
}

impl RateLimits {
    pub fn new(cfg: &OpsConfig) -> RateLimits {
        RateLimits {
            by_address: KeyedLimiter::per_minute(cfg.rate_limit_address_per_minute),
            login_by_address: KeyedLimiter::per_minute(cfg.rate_limit_login_per_minute),
            by_credential: KeyedLimiter::per_minute(cfg.rate_limit_credential_per_minute),
        }
    }

    /// Drops idle keys from every limiter.
    pub fn retain_recent(&self) {
        self.by_address.retain_recent();
        self.login_by_address.retain_recent();
        self.by_credential.retain_recent();
    }
}

/// The per-address quota on every route, plus the login quota on the login route: `Some`
/// refusal (429) when `req`'s client address is over either.
pub fn by_address(state: &AppState, req: &Request) -> Option<Response> {
    let ConnectInfo(addr) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied()?;
    let ip = addr.ip();
    let is_login = req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|m| m.as_str() == LOGIN_ROUTE);
    let verdict = state.limits.by_address.check(&ip).and_then(|()| {
        if is_login {
            state.limits.login_by_address.check(&ip)
        } else {
            Ok(())
        }
    });
    verdict.err().map(|wait| {
        let scope = if is_login { "login" } else { "address" };
        state.metrics.rate_limited(scope);
        tracing::info!(client = %ip, scope, "rate limited");
        wait.to_api_error().into_response()
    })
}

/// Spends one request of an authenticated caller's credential quota.
pub fn check_credential(state: &AppState, key: CredentialKey) -> Result<(), ApiError> {
    state.limits.by_credential.check(&key).map_err(|wait| {
        state.metrics.rate_limited("credential");
        wait.to_api_error()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_is_enforced_per_key_and_zero_disables() {
        let l = KeyedLimiter::<u8>::per_minute(3);
        for _ in 0..3 {
            assert!(l.check(&1).is_ok());
        }
        let wait = l.check(&1).unwrap_err();
        assert!(wait.secs() >= 1 && wait.secs() <= 20, "{}", wait.secs());
        assert!(l.check(&2).is_ok(), "another key has its own quota");
        assert_eq!(l.len(), 2);

        let off = KeyedLimiter::<u8>::per_minute(0);
        for _ in 0..10_000 {
            assert!(off.check(&1).is_ok());
        }
        assert_eq!(off.len(), 0);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).secs(), 1);
        assert_eq!(RetryAfter(Duration::from_millis(1500)).secs(), 2);
        assert_eq!(RetryAfter(Duration::ZERO).secs(), 1);
        let e = RetryAfter(Duration::from_secs(7)).to_api_error();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after, Some(7));
    }

    #[test]
    fn retain_recent_forgets_replenished_keys() {
        let l = KeyedLimiter::<u32>::with_quota(Some(Quota::per_second(
            NonZeroU32::new(1000).unwrap(),
        )));
        for k in 0..100 {
            assert!(l.check(&k).is_ok());
        }
        assert_eq!(l.len(), 100);
        std::thread::sleep(Duration::from_millis(20));
        l.retain_recent();
        assert_eq!(l.len(), 0, "idle keys are dropped");
    }
}
