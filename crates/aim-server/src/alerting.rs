//! Alert delivery (`docs/monitoring.md`, "Alerts"): the worker that sends due deliveries over
//! webhooks (`X-AIM-Signature`, [`aim_alerts::signature`]) and email (SMTP, [`aim_alerts::email`]),
//! retries with exponential backoff and full jitter, and dead-letters after
//! `alert_max_attempts`.
//!
//! Invariants:
//! - A delivery is sent only while leased by this replica ([`aim_store::MonitorStore::lease_deliveries`]),
//!   so replicas never send the same attempt twice; a crash mid-attempt lets the lease lapse and
//!   the attempt is retried (receivers de-duplicate on `X-AIM-Delivery`, the delivery id).
//! - Every attempt is a row of the delivery log, written with the delivery's new state; the end
//!   of a delivery (delivered or dead-lettered) is also an audit record.
//! - Webhook secrets are opened from their sealed form only for the attempt and never logged or
//!   returned by the API.

use std::sync::OnceLock;
use std::time::Duration;

use aim_alerts::retry::RetryPolicy;
use aim_alerts::webhook::{WebhookTarget, attempt_once};
use aim_store::{
    AlertRouteRow, AlertRow, AttemptOutcome, AuditRecord, DeliveryAttemptRow, DeliveryRow,
    SealedRow,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::Error;
use crate::state::{AppState, ms_to_rfc3339};

/// Deliveries leased per round.
pub const BATCH: u32 = 50;
/// How long a lease lasts (longer than one attempt's timeouts).
pub const LEASE_MS: i64 = 120_000;

/// The webhook client: never follows redirects (a redirect is a failed attempt), and unless
/// `allow_private` reaches public addresses only (`aim_alerts::destination`).
fn client(allow_private: bool) -> &'static reqwest::Client {
    static PUBLIC: OnceLock<reqwest::Client> = OnceLock::new();
    static ANY: OnceLock<reqwest::Client> = OnceLock::new();
    let cell = if allow_private { &ANY } else { &PUBLIC };
    cell.get_or_init(|| aim_alerts::destination::client(allow_private))
}

/// The wire form of an alert (webhook body; email subject and text).
pub fn wire_alert(a: &AlertRow) -> aim_alerts::Alert {
    aim_alerts::Alert {
        id: a.id.to_string(),
        organization_id: a.org_id.to_string(),
        severity: crate::monitor::parse_severity(&a.severity).unwrap_or(aim_alerts::Severity::Low),
        kind: a.kind.clone(),
        title: a.title.clone(),
        agent_id: a.agent_id.clone(),
        created_at: ms_to_rfc3339(a.created_at),
        details: serde_json::from_str(&a.details).unwrap_or(Value::Null),
    }
}

/// The context a route's secret is sealed under.
pub fn secret_context(route_id: Uuid) -> String {
    SealedRow::AlertRoute(route_id).context()
}

/// The result of one attempt: HTTP status (webhooks) or the error.
pub struct Sent {
    pub ok: bool,
    pub http_status: Option<i64>,
    pub error: Option<String>,
}

/// Sends `alert` over `route` once (`delivery_id` goes in `X-AIM-Delivery`).
pub async fn send_once(
    state: &AppState,
    route: &AlertRouteRow,
    alert: &aim_alerts::Alert,
    delivery_id: Uuid,
) -> Sent {
    let fail = |e: String| Sent {
        ok: false,
        http_status: None,
        error: Some(e),
    };
    match route.channel.as_str() {
        "webhook" => {
            let Some(sealed) = &route.secret else {
                return fail("the route has no secret".into());
            };
            let secret = match state.ring.open(&secret_context(route.id), sealed) {
                Ok(s) => s,
                Err(e) => return fail(format!("cannot open the route secret: {e}")),
            };
            let allow_private = state.config.monitor.webhook_allow_private;
            if !allow_private {
                // A route saved while private targets were allowed is refused now.
                let checked = reqwest::Url::parse(&route.target)
                    .map_err(|e| e.to_string())
                    .and_then(|u| aim_alerts::destination::check_host(&u));
                if let Err(why) = checked {
                    return fail(format!("refused: {why}"));
                }
            }
            let target = WebhookTarget {
                url: route.target.clone(),
                secret: secret.to_vec(),
            };
            let body = match serde_json::to_vec(alert) {
                Ok(b) => b,
                Err(e) => return fail(e.to_string()),
            };
            match attempt_once(
                client(allow_private),
                &target,
                &delivery_id.to_string(),
                &alert.kind,
                &body,
                state.now_ms() / 1000,
                Duration::from_secs(state.config.monitor.webhook_timeout_secs),
            )
            .await
            {
                Ok(status) => Sent {
                    ok: true,
                    http_status: Some(i64::from(status)),
                    error: None,
                },
                Err(aim_alerts::Error::Status(s)) => Sent {
                    ok: false,
                    http_status: Some(i64::from(s)),
                    error: Some(format!("HTTP {s}")),
                },
                Err(e) => fail(e.to_string()),
            }
        }
        "email" => {
            let Some(mailer) = &state.mailer else {
                return fail("no SMTP relay is configured (smtp_host)".into());
            };
            let to: Vec<String> = match serde_json::from_str(&route.target) {
                Ok(t) => t,
                Err(e) => return fail(format!("stored recipients: {e}")),
            };
            match mailer.send_alert(&to, alert).await {
                Ok(()) => Sent {
                    ok: true,
                    http_status: None,
                    error: None,
                },
                Err(e) => fail(e.to_string()),
            }
        }
        other => fail(format!("unknown channel {other}")),
    }
}

fn policy(state: &AppState) -> RetryPolicy {
    let m = &state.config.monitor;
    RetryPolicy {
        max_attempts: m.alert_max_attempts,
        base_delay: Duration::from_millis(m.alert_retry_base_ms),
        max_delay: Duration::from_millis(m.alert_retry_max_ms),
    }
}

/// Sends every due delivery this replica can lease; returns how many attempts were made.
pub async fn deliver_due(state: &AppState) -> Result<usize, Error> {
    let now = state.now_ms();
    let leased = state.store.lease_deliveries(now, LEASE_MS, BATCH).await?;
    let n = leased.len();
    for d in leased {
        attempt(state, &d).await?;
    }
    Ok(n)
}

async fn attempt(state: &AppState, d: &DeliveryRow) -> Result<(), Error> {
    let route = state.store.get_alert_route(d.org_id, d.route_id).await?;
    let alert = state.store.get_alert(d.org_id, d.alert_id).await?;
    let attempt_no = d.attempts + 1;
    let sent = match (&route, &alert) {
        (Some(r), Some(a)) if r.enabled => send_once(state, r, &wire_alert(a), d.id).await,
        (Some(_), Some(_)) => Sent {
            ok: false,
            http_status: None,
            error: Some("the route is disabled".into()),
        },
        _ => Sent {
            ok: false,
            http_status: None,
            error: Some("the route or the alert no longer exists".into()),
        },
    };
    let now = state.now_ms();
    let delay = if sent.ok {
        None
    } else {
        policy(state).delay_after(
            u32::try_from(attempt_no).unwrap_or(u32::MAX),
            &mut rand::rng(),
        )
    };
    let status = match (sent.ok, delay) {
        (true, _) => "delivered",
        (false, Some(_)) => "pending",
        (false, None) => "dead",
    };
    let next_attempt_at = match delay {
        Some(d) => now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        None => now,
    };
    if !sent.ok {
        tracing::warn!(delivery = %d.id, attempt = attempt_no, error = ?sent.error, status, "alert delivery attempt failed");
    }
    let audit = (status != "pending").then(|| AuditRecord {
        org_id: Some(d.org_id),
        at: now,
        event_type: if sent.ok {
            "monitor.alert.delivered".into()
        } else {
            "monitor.alert.dead_lettered".into()
        },
        actor: crate::monitor::ACTOR.into(),
        subject: Some(format!("alert:{}", d.alert_id)),
        payload: json!({
            "deliveryId": d.id, "routeId": d.route_id, "attempts": attempt_no,
            "httpStatus": sent.http_status, "error": sent.error,
        }),
        client_addr: None,
    });
    state
        .store
        .finish_delivery_attempt(
            d,
            &AttemptOutcome {
                attempt: DeliveryAttemptRow {
                    id: Uuid::now_v7(),
                    org_id: d.org_id,
                    delivery_id: d.id,
                    attempt: attempt_no,
                    at: now,
                    ok: sent.ok,
                    http_status: sent.http_status,
                    error: sent.error,
                },
                status: status.into(),
                next_attempt_at,
                audit,
            },
        )
        .await?;
    Ok(())
}
