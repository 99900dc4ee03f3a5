//! Webhook delivery: signed JSON POSTs, retried with backoff, ending delivered or dead-lettered.
//!
//! Each attempt is re-signed with its own timestamp (so a receiver's replay tolerance applies
//! to every attempt) and carries `X-AIM-Delivery` (stable across attempts, for receiver-side
//! de-duplication) and `X-AIM-Event` (the alert kind). Any 2xx answer is success; anything else,
//! a timeout or a connection failure is a failed attempt. Every attempt is reported to the
//! [`DeliveryLog`] before the next one starts.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::retry::RetryPolicy;
use crate::signature;

/// Where a webhook goes.
#[derive(Clone)]
pub struct WebhookTarget {
    pub url: String,
    /// HMAC key (never logged; `Debug` hides it).
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// State of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Delivered,
    /// Failed; another attempt is scheduled after `next_delay`.
    Retrying,
    /// Failed for the last time.
    DeadLettered,
}

/// One attempt, as recorded in the delivery log.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// 1-based.
    pub attempt: u32,
    /// Unix seconds when it was sent (the signed timestamp).
    pub sent_at: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub state: DeliveryState,
    /// Wait before the next attempt (when retrying).
    pub next_delay_ms: Option<u64>,
}

/// Receives every attempt (the server persists them: the delivery log).
#[async_trait::async_trait]
pub trait DeliveryLog: Send + Sync {
    async fn record(&self, delivery_id: &str, attempt: &Attempt);
}

/// Time source in Unix seconds (injected so tests can move the clock).
pub type Clock = dyn Fn() -> i64 + Send + Sync;

/// Sends one signed POST. `Ok(status)` for 2xx.
pub async fn attempt_once(
    client: &reqwest::Client,
    target: &WebhookTarget,
    delivery_id: &str,
    event: &str,
    body: &[u8],
    now_secs: i64,
    timeout: Duration,
) -> Result<u16> {
    let sig = signature::sign(&target.secret, now_secs, body);
    let resp = client
        .post(&target.url)
        .timeout(timeout)
        .header("content-type", "application/json")
        .header(signature::HEADER, sig)
        .header("X-AIM-Delivery", delivery_id)
        .header("X-AIM-Event", event)
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| Error::Delivery(describe(&e)))?;
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        Ok(status)
    } else {
        Err(Error::Status(status))
    }
}

/// A reqwest error without the URL's query string (it may carry a token).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_request() {
        "request error"
    } else {
        "error"
    };
    let mut msg = kind.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// Delivers with retries until delivered or dead-lettered; returns the final state.
#[allow(clippy::too_many_arguments)]
pub async fn deliver(
    client: &reqwest::Client,
    target: &WebhookTarget,
    delivery_id: &str,
    event: &str,
    body: &[u8],
    policy: RetryPolicy,
    timeout: Duration,
    clock: &Clock,
    log: &dyn DeliveryLog,
) -> DeliveryState {
    let mut n = 1u32;
    loop {
        let sent_at = clock();
        let started = Instant::now();
        let result = attempt_once(client, target, delivery_id, event, body, sent_at, timeout).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let (status, error) = match &result {
            Ok(s) => (Some(*s), None),
            Err(Error::Status(s)) => (Some(*s), Some(format!("HTTP {s}"))),
            Err(e) => (None, Some(e.to_string())),
        };
        let next = if result.is_ok() {
            None
        } else {
            policy.delay_after(n, &mut rand::rng())
        };
        let state = match (&result, next) {
            (Ok(_), _) => DeliveryState::Delivered,
            (Err(_), Some(_)) => DeliveryState::Retrying,
            (Err(_), None) => DeliveryState::DeadLettered,
        };
        log.record(
            delivery_id,
            &Attempt {
                attempt: n,
                sent_at,
                status,
                error,
                duration_ms,
                state,
                next_delay_ms: next.map(|d| d.as_millis() as u64),
            },
        )
        .await;
        match next {
            Some(d) if state == DeliveryState::Retrying => {
                tokio::time::sleep(d).await;
                n += 1;
            }
            _ => return state,
        }
    }
}
