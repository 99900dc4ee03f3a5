//! Security event correlation: rules over sliding windows that join events into incidents.
//!
//! The [`Correlator`] keeps, per agent, the recent security events it needs and applies the
//! rules of `docs/TRUST.md` ("Event correlation") to every new event:
//!
//! | rule | pattern | severity |
//! |---|---|---|
//! | [`Rule::CompromisedKeySuspected`] | ≥ 3 signature failures, then a success from an origin not among the failures' and not seen before, within 10 min | critical |
//! | [`Rule::DriftThenDenials`] | MCP capability drift, then ≥ 3 denials within 30 min | high |
//! | [`Rule::TrustCollapse`] | the trust score falls by ≥ 20 points within 60 min | high |
//! | [`Rule::ProbingAfterDenial`] | a capability request within 2 min after a denial of the same capability | medium |
//! | [`Rule::DenialBurstFromNewOrigin`] | an unusual-origin anomaly and a denial-burst anomaly (either order) within 15 min | high |
//!
//! An incident groups member event ids; while an incident of the same rule for the same agent is
//! open (not resolved) and its last member is within the rule's window, new matches join it
//! instead of opening another. The correlator is plain data (serde) so the server persists it.
//!
//! Invariants: per-agent memory is bounded (at most [`MAX_EVENTS`] recent events); events older
//! than the longest window are dropped; rules only look backwards from the new event.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::anomaly::Severity;

const MINUTE: i64 = 60_000;
/// Recent events kept per agent.
pub const MAX_EVENTS: usize = 128;
/// The longest rule window; older events are dropped.
pub const HORIZON_MS: i64 = 60 * MINUTE;

/// A security-relevant event about one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SecurityEventKind {
    SignatureFailure,
    /// A request whose signature verified.
    SignatureSuccess,
    Denial {
        capability: String,
    },
    CapabilityRequested {
        capability: String,
    },
    McpDrift {
        server: String,
    },
    /// A trust score change (points of 100).
    TrustChanged {
        from: f64,
        to: f64,
    },
    /// An anomaly the detectors of [`crate::anomaly`] found (the detector's snake_case name,
    /// e.g. `denial_burst`, `unusual_origin`).
    Anomaly {
        detector: String,
    },
}

/// One event; `id` is the caller's reference (e.g. the audit entry's sequence number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityEvent {
    pub id: String,
    pub agent: String,
    pub at_ms: i64,
    pub origin: Option<String>,
    #[serde(flatten)]
    pub kind: SecurityEventKind,
}

/// The correlation rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    CompromisedKeySuspected,
    DriftThenDenials,
    TrustCollapse,
    ProbingAfterDenial,
    DenialBurstFromNewOrigin,
}

impl Rule {
    pub fn severity(self) -> Severity {
        match self {
            Rule::CompromisedKeySuspected => Severity::Critical,
            Rule::DriftThenDenials | Rule::TrustCollapse | Rule::DenialBurstFromNewOrigin => {
                Severity::High
            }
            Rule::ProbingAfterDenial => Severity::Medium,
        }
    }

    /// The rule's window.
    pub fn window_ms(self) -> i64 {
        match self {
            Rule::CompromisedKeySuspected => 10 * MINUTE,
            Rule::DriftThenDenials => 30 * MINUTE,
            Rule::TrustCollapse => 60 * MINUTE,
            Rule::ProbingAfterDenial => 2 * MINUTE,
            Rule::DenialBurstFromNewOrigin => 15 * MINUTE,
        }
    }
}

/// Incident lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentState {
    Open,
    Acknowledged,
    Resolved,
}

/// An incident: a rule match with its member events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    pub rule: Rule,
    pub severity: Severity,
    pub agent: String,
    pub state: IncidentState,
    pub first_at_ms: i64,
    pub last_at_ms: i64,
    /// Ids of the member events, oldest first, without duplicates.
    pub members: Vec<String>,
    pub summary: String,
}

/// What [`Correlator::observe`] did with an incident.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A new incident (index into [`Correlator::incidents`]).
    Opened(usize),
    /// New members joined an existing unresolved incident.
    Extended(usize),
}

/// Per-agent recent events and the incidents found so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Correlator {
    recent: BTreeMap<String, VecDeque<SecurityEvent>>,
    /// Origins each agent succeeded from (bounded).
    known_origins: BTreeMap<String, VecDeque<String>>,
    pub incidents: Vec<Incident>,
}

impl Correlator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one event (in time order per agent) and returns what changed.
    pub fn observe(&mut self, e: &SecurityEvent) -> Vec<Outcome> {
        let recent = self.recent.entry(e.agent.clone()).or_default();
        while let Some(front) = recent.front() {
            if front.at_ms < e.at_ms - HORIZON_MS || recent.len() >= MAX_EVENTS {
                recent.pop_front();
            } else {
                break;
            }
        }
        let mut matches: Vec<(Rule, Vec<String>, String)> = Vec::new();
        let within = |ev: &SecurityEvent, rule: Rule| ev.at_ms >= e.at_ms - rule.window_ms();

        match &e.kind {
            SecurityEventKind::SignatureSuccess => {
                let rule = Rule::CompromisedKeySuspected;
                let failures: Vec<&SecurityEvent> = recent
                    .iter()
                    .filter(|ev| {
                        within(ev, rule) && matches!(ev.kind, SecurityEventKind::SignatureFailure)
                    })
                    .collect();
                let known = self.known_origins.get(&e.agent);
                let new_origin = match &e.origin {
                    Some(o) => {
                        !failures.iter().any(|f| f.origin.as_ref() == Some(o))
                            && !known.is_some_and(|k| k.contains(o))
                    }
                    None => false,
                };
                if failures.len() >= 3 && new_origin {
                    let mut m: Vec<String> = failures.iter().map(|f| f.id.clone()).collect();
                    m.push(e.id.clone());
                    matches.push((
                        rule,
                        m,
                        format!(
                            "{} signature failures, then a success from new origin {}",
                            failures.len(),
                            e.origin.as_deref().unwrap_or("?")
                        ),
                    ));
                }
                if let Some(o) = &e.origin {
                    let k = self.known_origins.entry(e.agent.clone()).or_default();
                    if !k.contains(o) {
                        if k.len() >= 64 {
                            k.pop_front();
                        }
                        k.push_back(o.clone());
                    }
                }
            }
            SecurityEventKind::Denial { .. } => {
                let rule = Rule::DriftThenDenials;
                let drift = recent.iter().rev().find(|ev| {
                    within(ev, rule) && matches!(ev.kind, SecurityEventKind::McpDrift { .. })
                });
                if let Some(d) = drift {
                    let denials: Vec<&SecurityEvent> = recent
                        .iter()
                        .filter(|ev| {
                            ev.at_ms >= d.at_ms
                                && matches!(ev.kind, SecurityEventKind::Denial { .. })
                        })
                        .collect();
                    if denials.len() + 1 >= 3 {
                        let mut m = vec![d.id.clone()];
                        m.extend(denials.iter().map(|x| x.id.clone()));
                        m.push(e.id.clone());
                        matches.push((
                            rule,
                            m,
                            format!("capability drift, then {} denials", denials.len() + 1),
                        ));
                    }
                }
            }
            SecurityEventKind::CapabilityRequested { capability } => {
                let rule = Rule::ProbingAfterDenial;
                if let Some(d) = recent.iter().rev().find(|ev| {
                    within(ev, rule)
                        && matches!(&ev.kind, SecurityEventKind::Denial { capability: c } if c == capability)
                }) {
                    matches.push((
                        rule,
                        vec![d.id.clone(), e.id.clone()],
                        format!("request for {capability} right after its denial"),
                    ));
                }
            }
            SecurityEventKind::TrustChanged { to, .. } => {
                let rule = Rule::TrustCollapse;
                let peak = recent
                    .iter()
                    .filter(|ev| within(ev, rule))
                    .filter_map(|ev| match ev.kind {
                        SecurityEventKind::TrustChanged { from, .. } => Some((from, ev)),
                        _ => None,
                    })
                    .chain(match e.kind {
                        SecurityEventKind::TrustChanged { from, .. } => Some((from, e)),
                        _ => None,
                    })
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                if let Some((high, ev)) = peak
                    && high - to >= 20.0
                {
                    let mut m = vec![ev.id.clone()];
                    if ev.id != e.id {
                        m.push(e.id.clone());
                    }
                    matches.push((
                        rule,
                        m,
                        format!("trust fell from {high:.1} to {to:.1} within 60 minutes"),
                    ));
                }
            }
            SecurityEventKind::Anomaly { detector } => {
                let rule = Rule::DenialBurstFromNewOrigin;
                let partner = match detector.as_str() {
                    "denial_burst" => Some("unusual_origin"),
                    "unusual_origin" => Some("denial_burst"),
                    _ => None,
                };
                if let Some(partner) = partner
                    && let Some(p) = recent.iter().rev().find(|ev| {
                        within(ev, rule)
                            && matches!(&ev.kind, SecurityEventKind::Anomaly { detector: d } if d == partner)
                    })
                {
                    matches.push((
                        rule,
                        vec![p.id.clone(), e.id.clone()],
                        format!(
                            "a burst of denials and a request origin never seen before (within {} minutes)",
                            rule.window_ms() / MINUTE
                        ),
                    ));
                }
            }
            SecurityEventKind::SignatureFailure | SecurityEventKind::McpDrift { .. } => {}
        }
        recent.push_back(e.clone());

        let mut out = Vec::new();
        for (rule, members, summary) in matches {
            out.push(self.record(rule, &e.agent, e.at_ms, members, summary));
        }
        out
    }

    fn record(
        &mut self,
        rule: Rule,
        agent: &str,
        at: i64,
        members: Vec<String>,
        summary: String,
    ) -> Outcome {
        if let Some((i, inc)) = self.incidents.iter_mut().enumerate().rev().find(|(_, i)| {
            i.rule == rule
                && i.agent == agent
                && i.state != IncidentState::Resolved
                && i.last_at_ms >= at - rule.window_ms()
        }) {
            for m in members {
                if !inc.members.contains(&m) {
                    inc.members.push(m);
                }
            }
            inc.last_at_ms = at;
            inc.summary = summary;
            return Outcome::Extended(i);
        }
        let mut uniq: Vec<String> = Vec::new();
        for m in members {
            if !uniq.contains(&m) {
                uniq.push(m);
            }
        }
        self.incidents.push(Incident {
            rule,
            severity: rule.severity(),
            agent: agent.to_string(),
            state: IncidentState::Open,
            first_at_ms: at,
            last_at_ms: at,
            members: uniq,
            summary,
        });
        Outcome::Opened(self.incidents.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_800_000_000_000;

    fn ev(id: u32, at: i64, origin: Option<&str>, kind: SecurityEventKind) -> SecurityEvent {
        SecurityEvent {
            id: id.to_string(),
            agent: "aim_a".into(),
            at_ms: at,
            origin: origin.map(String::from),
            kind,
        }
    }

    #[test]
    fn failures_then_success_from_new_origin_is_critical() {
        let mut c = Correlator::new();
        assert!(
            c.observe(&ev(
                1,
                T,
                Some("10.0.0.1"),
                SecurityEventKind::SignatureSuccess
            ))
            .is_empty()
        );
        for i in 0..3 {
            c.observe(&ev(
                10 + i,
                T + 1000 * i as i64,
                Some("198.51.100.7"),
                SecurityEventKind::SignatureFailure,
            ));
        }
        // success from the known origin: nothing
        assert!(
            c.observe(&ev(
                20,
                T + 5000,
                Some("10.0.0.1"),
                SecurityEventKind::SignatureSuccess
            ))
            .is_empty()
        );
        let out = c.observe(&ev(
            21,
            T + 6000,
            Some("203.0.113.9"),
            SecurityEventKind::SignatureSuccess,
        ));
        assert_eq!(out, vec![Outcome::Opened(0)]);
        let inc = &c.incidents[0];
        assert_eq!(inc.rule, Rule::CompromisedKeySuspected);
        assert_eq!(inc.severity, Severity::Critical);
        assert_eq!(inc.members, ["10", "11", "12", "21"]);
    }

    #[test]
    fn two_failures_or_old_failures_do_not_correlate() {
        let mut c = Correlator::new();
        c.observe(&ev(1, T, Some("x"), SecurityEventKind::SignatureFailure));
        c.observe(&ev(
            2,
            T + 1,
            Some("x"),
            SecurityEventKind::SignatureFailure,
        ));
        assert!(
            c.observe(&ev(
                3,
                T + 2,
                Some("y"),
                SecurityEventKind::SignatureSuccess
            ))
            .is_empty()
        );
        let mut c = Correlator::new();
        for i in 0..3 {
            c.observe(&ev(
                i,
                T + i as i64,
                Some("x"),
                SecurityEventKind::SignatureFailure,
            ));
        }
        // 11 minutes later: outside the 10-minute window
        assert!(
            c.observe(&ev(
                9,
                T + 11 * MINUTE,
                Some("y"),
                SecurityEventKind::SignatureSuccess
            ))
            .is_empty()
        );
    }

    #[test]
    fn drift_then_denial_burst_and_extension() {
        let mut c = Correlator::new();
        let deny = |id, at| {
            ev(
                id,
                at,
                None,
                SecurityEventKind::Denial {
                    capability: "db:write".into(),
                },
            )
        };
        c.observe(&deny(1, T)); // before the drift: not a member
        c.observe(&ev(
            2,
            T + MINUTE,
            None,
            SecurityEventKind::McpDrift {
                server: "github".into(),
            },
        ));
        assert!(c.observe(&deny(3, T + 2 * MINUTE)).is_empty());
        assert!(c.observe(&deny(4, T + 3 * MINUTE)).is_empty());
        assert_eq!(
            c.observe(&deny(5, T + 4 * MINUTE)),
            vec![Outcome::Opened(0)]
        );
        assert_eq!(c.incidents[0].members, ["2", "3", "4", "5"]);
        assert_eq!(
            c.observe(&deny(6, T + 5 * MINUTE)),
            vec![Outcome::Extended(0)]
        );
        assert_eq!(c.incidents[0].members, ["2", "3", "4", "5", "6"]);
        // resolved incidents are not extended
        c.incidents[0].state = IncidentState::Resolved;
        assert_eq!(
            c.observe(&deny(7, T + 6 * MINUTE)),
            vec![Outcome::Opened(1)]
        );
    }

    #[test]
    fn trust_collapse_of_twenty_points_within_an_hour() {
        let mut c = Correlator::new();
        let tc = |id, at, from, to| ev(id, at, None, SecurityEventKind::TrustChanged { from, to });
        assert!(c.observe(&tc(1, T, 80.0, 70.0)).is_empty());
        assert!(c.observe(&tc(2, T + MINUTE, 70.0, 61.0)).is_empty()); // 19 below 80
        let out = c.observe(&tc(3, T + 2 * MINUTE, 61.0, 60.0));
        assert_eq!(out, vec![Outcome::Opened(0)]);
        assert_eq!(c.incidents[0].members, ["1", "3"]);
        // the same fall spread over more than an hour does not fire
        let mut c = Correlator::new();
        c.observe(&tc(1, T, 80.0, 70.0));
        assert!(c.observe(&tc(2, T + 61 * MINUTE, 70.0, 60.0)).is_empty());
    }

    #[test]
    fn capability_request_right_after_its_denial() {
        let mut c = Correlator::new();
        c.observe(&ev(
            1,
            T,
            None,
            SecurityEventKind::Denial {
                capability: "files:write".into(),
            },
        ));
        let other = ev(
            2,
            T + 1000,
            None,
            SecurityEventKind::CapabilityRequested {
                capability: "db:read".into(),
            },
        );
        assert!(c.observe(&other).is_empty());
        let same = ev(
            3,
            T + 2000,
            None,
            SecurityEventKind::CapabilityRequested {
                capability: "files:write".into(),
            },
        );
        assert_eq!(c.observe(&same), vec![Outcome::Opened(0)]);
        assert_eq!(c.incidents[0].severity, Severity::Medium);
        let late = ev(
            4,
            T + 3 * MINUTE,
            None,
            SecurityEventKind::CapabilityRequested {
                capability: "files:write".into(),
            },
        );
        assert!(c.observe(&late).is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let mut c = Correlator::new();
        for i in 0..1000u32 {
            c.observe(&ev(
                i,
                T + i as i64,
                None,
                SecurityEventKind::SignatureFailure,
            ));
        }
        assert!(c.recent["aim_a"].len() <= MAX_EVENTS);
    }

    #[test]
    fn denial_burst_with_a_new_origin_correlates_in_either_order_within_15_minutes() {
        let anomaly = |d: &str| SecurityEventKind::Anomaly {
            detector: d.to_string(),
        };
        // origin first, burst 14 minutes later: one high incident with both members
        let mut c = Correlator::new();
        assert!(
            c.observe(&ev(1, T, None, anomaly("unusual_origin")))
                .is_empty()
        );
        let out = c.observe(&ev(2, T + 14 * MINUTE, None, anomaly("denial_burst")));
        assert_eq!(out, vec![Outcome::Opened(0)]);
        assert_eq!(c.incidents[0].rule, Rule::DenialBurstFromNewOrigin);
        assert_eq!(c.incidents[0].severity, Severity::High);
        assert_eq!(c.incidents[0].members, ["1", "2"]);
        // burst first, then the origin: same rule
        let mut c = Correlator::new();
        c.observe(&ev(1, T, None, anomaly("denial_burst")));
        assert_eq!(
            c.observe(&ev(2, T + MINUTE, None, anomaly("unusual_origin"))),
            vec![Outcome::Opened(0)]
        );
        // 16 minutes apart, or two anomalies of the same kind, or other detectors: nothing
        let mut c = Correlator::new();
        c.observe(&ev(1, T, None, anomaly("unusual_origin")));
        assert!(
            c.observe(&ev(2, T + 16 * MINUTE, None, anomaly("denial_burst")))
                .is_empty()
        );
        let mut c = Correlator::new();
        c.observe(&ev(1, T, None, anomaly("denial_burst")));
        assert!(
            c.observe(&ev(2, T + 1, None, anomaly("denial_burst")))
                .is_empty()
        );
        assert!(
            c.observe(&ev(3, T + 2, None, anomaly("new_capability")))
                .is_empty()
        );
    }
}
