//! `GET /metrics`: Prometheus text exposition (format 0.0.4) through `prometheus-client`.
//!
//! Why `prometheus-client`: it is the Prometheus project's own Rust client, its registry is a
//! value (not a process-global recorder), so several servers in one process — the integration
//! tests — keep separate counts, and it encodes the text format itself.
//!
//! What is exported (no label ever carries a user, email, key, token or address — only the
//! matched route *template*, the method and the status):
//! - `aim_http_requests_total{method,route,status}` and
//!   `aim_http_request_duration_seconds{method,route,status}` (histogram);
//! - `aim_auth_failures_total{route}`: answers 401;
//! - `aim_rate_limited_total{scope}`: 429s by `address`, `login` or `credential`;
//! - `aim_db_pool_connections`, `aim_db_pool_idle_connections`, `aim_db_pool_max_connections`;
//! - `aim_decision_batch_size` and `aim_decision_commit_seconds` (histograms): the items and the
//!   wall time of each group commit of the hot-path writer ([`crate::decision_writer`]).
//!
//! Requests that match no route are counted under `route="unmatched"`, so probing random paths
//! cannot create unbounded label values.
//!
//! Who may read it: with `AIM_METRICS_TOKEN` set, any peer presenting
//! `Authorization: Bearer <token>` (compared in constant time); without it, only peers on a
//! loopback address (the socket peer, not a forwarded address). Others get 404 as if the route did
//! not exist.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::client_ip::PeerAddr;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabel {
    scope: String,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~8 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    auth_failures: Family<RouteLabel, Counter>,
    rate_limited: Family<ScopeLabel, Counter>,
    pool_size: Gauge<i64, std::sync::atomic::AtomicI64>,
    pool_idle: Gauge<i64, std::sync::atomic::AtomicI64>,
    pool_max: Gauge<i64, std::sync::atomic::AtomicI64>,
    batch: WriterMetrics,
}

/// The group-commit writer's histograms (cheap clones sharing the registered series).
#[derive(Clone, Debug)]
pub struct WriterMetrics {
    /// Items per committed (or failed) batch.
    pub size: Histogram,
    /// Wall time of one batch's transaction, seconds.
    pub seconds: Histogram,
}

impl Default for WriterMetrics {
    fn default() -> Self {
        WriterMetrics {
            // 1 .. 4096 items
            size: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            // 50 µs .. ~1.6 s
            seconds: Histogram::new(exponential_buckets(0.00005, 2.0, 16)),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("aim");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let auth_failures = Family::<RouteLabel, Counter>::default();
        let rate_limited = Family::<ScopeLabel, Counter>::default();
        let pool_size = Gauge::default();
        let pool_idle = Gauge::default();
        let pool_max = Gauge::default();
        let batch = WriterMetrics::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, matched route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method, matched route and status",
            latency.clone(),
        );
        registry.register(
            "auth_failures",
            "Requests answered 401 (missing, invalid or expired credentials, failed logins)",
            auth_failures.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused with 429, by limiter scope",
            rate_limited.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Open database connections",
            pool_size.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle database connections",
            pool_idle.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "Configured maximum database connections",
            pool_max.clone(),
        );
        registry.register(
            "decision_batch_size",
            "Items per group commit of the decision writer",
            batch.size.clone(),
        );
        registry.register(
            "decision_commit_seconds",
            "Wall time of one group commit of the decision writer",
            batch.seconds.clone(),
        );
        Metrics {
            registry,
            batch,
            requests,
            latency,
            auth_failures,
            rate_limited,
            pool_size,
            pool_idle,
            pool_max,
        }
    }

    /// The decision writer's histograms, to hand to [`crate::decision_writer::DecisionWriter`].
    pub fn writer(&self) -> WriterMetrics {
        self.batch.clone()
    }

    /// Counts a 429.
    pub fn rate_limited(&self, scope: &str) {
        self.rate_limited
            .get_or_create(&ScopeLabel {
                scope: scope.to_string(),
            })
            .inc();
    }

    fn observe(&self, method: &str, route: &str, status: StatusCode, secs: f64) {
        let labels = RequestLabels {
            method: method.to_string(),
            route: route.to_string(),
            status: status.as_u16(),
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(secs);
        if status == StatusCode::UNAUTHORIZED {
            self.auth_failures
                .get_or_create(&RouteLabel {
                    route: route.to_string(),
                })
                .inc();
        }
    }

    /// The text exposition.
    pub fn render(&self, pool: aim_store::PoolStats) -> String {
        self.pool_size.set(i64::from(pool.size));
        self.pool_idle.set(i64::from(pool.idle));
        self.pool_max.set(i64::from(pool.max));
        let mut out = String::new();
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The matched route template, passed from the route layer out to the request layer
/// (`crate::ops_layers`).
#[derive(Clone)]
struct RouteTag(String);

/// The route template `req` matched, if any (read by the route layer).
pub fn matched_route(req: &Request) -> Option<String> {
    req.extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
}

/// Remembers on `resp` which route template answered.
pub fn tag_route(resp: &mut Response, route: Option<String>) {
    if let Some(r) = route {
        resp.extensions_mut().insert(RouteTag(r));
    }
}

/// Counts and times one answered request (`unmatched` when no route tagged it).
pub fn track(state: &AppState, method: &str, resp: &Response, start: Instant) {
    let route = resp
        .extensions()
        .get::<RouteTag>()
        .map_or("unmatched", |t| t.0.as_str());
    state
        .metrics
        .observe(method, route, resp.status(), start.elapsed().as_secs_f64());
}

/// `GET /metrics`.
pub async fn handler(State(state): State<AppState>, req: Request) -> Response {
    if !may_read(&state, &req) {
        return ApiError::not_found("route").into_response();
    }
    let body = state.metrics.render(state.store.pool_stats());
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
    );
    resp
}

fn may_read(state: &AppState, req: &Request) -> bool {
    match &state.config.ops.metrics_token {
        Some(token) => {
            let presented = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim().as_bytes().to_vec())
                .unwrap_or_default();
            let expected = token.expose_secret().as_bytes();
            presented.len() == expected.len() && bool::from(presented.ct_eq(expected))
        }
        None => req
            .extensions()
            .get::<PeerAddr>()
            .is_some_and(|p| p.0.ip().is_loopback() || is_mapped_loopback(p.0.ip())),
    }
}

fn is_mapped_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        std::net::IpAddr::V4(_) => false,
    }
}
