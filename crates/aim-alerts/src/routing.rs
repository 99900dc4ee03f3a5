//! Severity routing: an organization's routes say which channel receives alerts from which
//! severity up. A disabled route receives nothing; an alert may go to several channels.

use serde::{Deserialize, Serialize};

use crate::Severity;

/// A delivery channel (secrets are referenced, not embedded: the server resolves them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Channel {
    Webhook { url: String },
    Email { to: Vec<String> },
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub id: String,
    /// Alerts of this severity or higher take the route.
    pub min_severity: Severity,
    pub enabled: bool,
    pub channel: Channel,
}

/// The routes an alert of `severity` takes, in the given order.
pub fn select(routes: &[Route], severity: Severity) -> Vec<&Route> {
    routes
        .iter()
        .filter(|r| r.enabled && severity >= r.min_severity)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(id: &str, min: Severity, enabled: bool) -> Route {
        Route {
            id: id.into(),
            min_severity: min,
            enabled,
            channel: Channel::Webhook {
                url: format!("https://hooks.example/{id}"),
            },
        }
    }

    #[test]
    fn severity_threshold_and_disabled_routes() {
        let rs = vec![
            route("all", Severity::Low, true),
            route("pager", Severity::Critical, true),
            route("high", Severity::High, true),
            route("off", Severity::Low, false),
        ];
        let ids = |s| {
            select(&rs, s)
                .iter()
                .map(|r| r.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(Severity::Low), ["all"]);
        assert_eq!(ids(Severity::High), ["all", "high"]);
        assert_eq!(ids(Severity::Critical), ["all", "pager", "high"]);
    }
}
