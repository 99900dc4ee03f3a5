//! `aim-alerts`: getting security alerts to humans (seed Layer 4, "webhook/email alerts").
//!
//! - [`signature`]: the `X-AIM-Signature` HMAC-SHA256 header over timestamp and body, and its
//!   verification (what a webhook receiver runs).
//! - [`retry`]: exponential backoff with full jitter, bounded attempts.
//! - [`webhook`]: one delivery attempt, and the retrying delivery that ends delivered or
//!   dead-lettered, reporting every attempt to a [`webhook::DeliveryLog`].
//! - [`email`]: SMTP delivery through lettre (plain, STARTTLS or implicit TLS).
//! - [`routing`]: which channels an alert of a given severity goes to.
//!
//! The crate holds no storage: the server persists alerts, routes and the delivery log and
//! passes secrets in already decrypted.

pub mod destination;
pub mod email;
pub mod error;
pub mod retry;
pub mod routing;
pub mod signature;
pub mod webhook;

pub use error::{Error, Result};

use serde::{Deserialize, Serialize};

/// Alert severity, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// An alert as delivered (webhook JSON body; email subject and text are derived from it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub id: String,
    pub organization_id: String,
    pub severity: Severity,
    /// Machine kind, e.g. `anomaly.denial_burst`, `incident.compromised_key_suspected`.
    pub kind: String,
    pub title: String,
    /// The agent concerned, if any.
    pub agent_id: Option<String>,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Non-secret details (statistics, member events…).
    pub details: serde_json::Value,
}
