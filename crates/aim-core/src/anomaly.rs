//! Statistical anomaly detection per agent (seed Layer 4, "anomaly detection").
//!
//! A [`Baseline`] is the learned behaviour of one agent; [`Baseline::observe`] feeds it one
//! event and returns the anomalies that event triggers. The detectors (specified in
//! `docs/TRUST.md`, "Anomaly detection"):
//!
//! - **rate**: hourly action counts per capability, EWMA mean and variance per capability and per
//!   hour-of-day slot; the running count of the current hour firing above
//!   `mean + 3·sd` (and at least [`RATE_MIN_COUNT`]) is an anomaly;
//! - **first use** of a capability or of an MCP server once the baseline is established;
//! - **bursts** of denials (≥ [`DENIAL_BURST`] in [`BURST_WINDOW_MS`]) and of signature failures
//!   (≥ [`SIGNATURE_BURST`] in the same window), each at most once per agent per window;
//! - **unusual origin**: a request origin not seen before, once established.
//!
//! Every [`Anomaly`] carries the statistic that fired, the baseline it was compared with and the
//! threshold, so a human can check the arithmetic.
//!
//! Invariants: memory per agent is bounded (capabilities, servers and origins are capped at
//! [`MAX_TRACKED`] each, burst windows hold at most the threshold's number of times); the
//! baseline is plain data (serde) so the server stores it with the agent and replicas share it;
//! a detector never fires while the agent has fewer than [`MIN_OBSERVATIONS`] observations,
//! except the bursts, which need no history.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Observations before the learned detectors may fire (same number the trust score's
/// Behavioral Consistency factor requires).
pub const MIN_OBSERVATIONS: u64 = crate::trust::MIN_BASELINE_OBSERVATIONS;
/// EWMA smoothing factor for hourly counts.
pub const EWMA_ALPHA: f64 = 0.1;
/// Standard deviations above the mean that make a rate anomalous.
pub const RATE_SIGMAS: f64 = 3.0;
/// Smallest hourly count that can be a rate anomaly (quiet agents are not flagged for 2 calls).
pub const RATE_MIN_COUNT: u64 = 10;
/// Hour-of-day slots need this many closed hours before they are used instead of the
/// capability-wide statistics.
pub const SLOT_MIN_SAMPLES: u64 = 7;
/// Burst detectors' sliding window.
pub const BURST_WINDOW_MS: i64 = 5 * 60 * 1000;
/// Denials in the window that make a burst.
pub const DENIAL_BURST: usize = 5;
/// Signature failures in the window that make a burst.
pub const SIGNATURE_BURST: usize = 3;
/// Most capabilities / MCP servers / origins remembered per agent.
pub const MAX_TRACKED: usize = 256;

const HOUR_MS: i64 = 3_600_000;

/// What happened, as far as the detectors care.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// An action decision for `capability`.
    Action { capability: String, denied: bool },
    /// A request or challenge response whose signature did not verify.
    SignatureFailure,
    /// The agent used (attested to) an MCP server.
    McpUse { server: String },
    /// Any other authenticated request (counts as an observation, feeds the origin detector).
    Request,
}

/// One event about an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at_ms: i64,
    /// Network origin (e.g. the client address, or its /24 — the caller decides the grain).
    pub origin: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Severity of an anomaly (weights in the trust score: 0.5, 1, 2, 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// The weight used by the trust score's Behavioral Consistency factor.
    pub fn weight(self) -> f64 {
        match self {
            Severity::Low => 0.5,
            Severity::Medium => 1.0,
            Severity::High => 2.0,
            Severity::Critical => 4.0,
        }
    }
}

/// Which detector fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    ActionRate,
    NewCapability,
    NewMcpServer,
    DenialBurst,
    SignatureFailureBurst,
    UnusualOrigin,
}

/// A finding, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Anomaly {
    pub detector: Detector,
    pub severity: Severity,
    pub at_ms: i64,
    /// The observed statistic (a count, or 1 for a first use).
    pub statistic: f64,
    /// What it was compared with (an EWMA mean, a count of known items).
    pub baseline: f64,
    /// The value the statistic had to reach.
    pub threshold: f64,
    pub message: String,
}

/// EWMA mean and variance of hourly counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ewma {
    pub mean: f64,
    pub var: f64,
    /// Closed hours folded in.
    pub samples: u64,
}

impl Ewma {
    /// Folds one closed hour's count in (the first sample initialises the mean).
    pub fn update(&mut self, x: f64) {
        if self.samples == 0 {
            self.mean = x;
            self.var = 0.0;
        } else {
            let d = x - self.mean;
            self.mean += EWMA_ALPHA * d;
            self.var = (1.0 - EWMA_ALPHA) * (self.var + EWMA_ALPHA * d * d);
        }
        self.samples += 1;
    }

    /// `mean + 3·sd`, never below [`RATE_MIN_COUNT`].
    pub fn threshold(&self) -> f64 {
        (self.mean + RATE_SIGMAS * self.var.max(0.0).sqrt()).max(RATE_MIN_COUNT as f64)
    }
}

/// Per-capability rate state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CapabilityRate {
    /// Start of the hour being counted (ms, multiple of an hour).
    pub hour_start: i64,
    pub count: u64,
    /// Whether the current hour already fired (one anomaly per capability per hour).
    pub fired: bool,
    pub all_hours: Ewma,
    /// One EWMA per hour of day (UTC), index 0..24.
    pub slots: Vec<Ewma>,
    pub last_seen_ms: i64,
}

/// The learned behaviour of one agent. Plain data: store it, load it, keep observing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub observations: u64,
    pub capabilities: BTreeMap<String, CapabilityRate>,
    /// MCP server → last use (ms).
    pub mcp_servers: BTreeMap<String, i64>,
    /// Origin → last seen (ms).
    pub origins: BTreeMap<String, i64>,
    pub recent_denials: VecDeque<i64>,
    pub recent_signature_failures: VecDeque<i64>,
    /// When the last denial burst fired (ms): another one fires only [`BURST_WINDOW_MS`] later.
    #[serde(default)]
    pub denial_burst_at: Option<i64>,
    /// When the last signature-failure burst fired (ms), same rule.
    #[serde(default)]
    pub signature_burst_at: Option<i64>,
}

/// Whether a burst detector that last fired at `last` may fire again at `at` (at most one
/// burst anomaly per detector and agent per [`BURST_WINDOW_MS`]: a sustained burst is one
/// finding every window, not one per few events).
/// A last firing more than a window in the future (a clock that jumped back) does not silence
/// the detector.
fn burst_cooled(last: Option<i64>, at: i64) -> bool {
    last.is_none_or(|t| at - t >= BURST_WINDOW_MS || t - at > BURST_WINDOW_MS)
}

fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

fn slot_of(hour_start: i64) -> usize {
    (hour_start.div_euclid(HOUR_MS).rem_euclid(24)) as usize
}

/// Remembers `key` with its time, evicting the least recently seen when full.
fn remember(map: &mut BTreeMap<String, i64>, key: &str, at: i64) {
    if !map.contains_key(key)
        && map.len() >= MAX_TRACKED
        && let Some(oldest) = map.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
    let t = map.entry(key.to_string()).or_insert(at);
    *t = (*t).max(at);
}

/// Pushes `at` into a burst window and answers whether the window now holds `limit` times.
fn burst(window: &mut VecDeque<i64>, at: i64, limit: usize) -> bool {
    window.push_back(at);
    while let Some(&front) = window.front() {
        if front <= at - BURST_WINDOW_MS || window.len() > limit {
            window.pop_front();
        } else {
            break;
        }
    }
    window.len() >= limit
}

impl Baseline {
    /// Whether the learned detectors may fire.
    pub fn established(&self) -> bool {
        self.observations >= MIN_OBSERVATIONS
    }

    /// Feeds one event; returns the anomalies it triggers. Events should arrive in time order;
    /// a late event is still counted but never rewinds an hour that was already closed.
    pub fn observe(&mut self, e: &Event) -> Vec<Anomaly> {
        let mut out = Vec::new();
        let established = self.established();

        if let Some(origin) = &e.origin {
            if established && !self.origins.contains_key(origin) {
                out.push(Anomaly {
                    detector: Detector::UnusualOrigin,
                    severity: Severity::Medium,
                    at_ms: e.at_ms,
                    statistic: 1.0,
                    baseline: self.origins.len() as f64,
                    threshold: 1.0,
                    message: format!(
                        "request from origin {origin} never seen before ({} known origins)",
                        self.origins.len()
                    ),
                });
            }
            remember(&mut self.origins, origin, e.at_ms);
        }

        match &e.kind {
            EventKind::Action { capability, denied } => {
                if let Some(a) = self.observe_rate(capability, e.at_ms, established) {
                    out.push(a);
                }
                if *denied
                    && burst(&mut self.recent_denials, e.at_ms, DENIAL_BURST)
                    && burst_cooled(self.denial_burst_at, e.at_ms)
                {
                    self.denial_burst_at = Some(e.at_ms);
                    out.push(Anomaly {
                        detector: Detector::DenialBurst,
                        severity: Severity::High,
                        at_ms: e.at_ms,
                        statistic: self.recent_denials.len() as f64,
                        baseline: 0.0,
                        threshold: DENIAL_BURST as f64,
                        message: format!(
                            "{} denied actions within {} minutes",
                            self.recent_denials.len(),
                            BURST_WINDOW_MS / 60_000
                        ),
                    });
                    self.recent_denials.clear();
                }
            }
            EventKind::SignatureFailure => {
                if burst(
                    &mut self.recent_signature_failures,
                    e.at_ms,
                    SIGNATURE_BURST,
                ) && burst_cooled(self.signature_burst_at, e.at_ms)
                {
                    self.signature_burst_at = Some(e.at_ms);
                    out.push(Anomaly {
                        detector: Detector::SignatureFailureBurst,
                        severity: Severity::High,
                        at_ms: e.at_ms,
                        statistic: self.recent_signature_failures.len() as f64,
                        baseline: 0.0,
                        threshold: SIGNATURE_BURST as f64,
                        message: format!(
                            "{} signature failures within {} minutes",
                            self.recent_signature_failures.len(),
                            BURST_WINDOW_MS / 60_000
                        ),
                    });
                    self.recent_signature_failures.clear();
                }
            }
            EventKind::McpUse { server } => {
                if established && !self.mcp_servers.contains_key(server) {
                    out.push(Anomaly {
                        detector: Detector::NewMcpServer,
                        severity: Severity::Low,
                        at_ms: e.at_ms,
                        statistic: 1.0,
                        baseline: self.mcp_servers.len() as f64,
                        threshold: 1.0,
                        message: format!(
                            "first use of MCP server {server} ({} known)",
                            self.mcp_servers.len()
                        ),
                    });
                }
                remember(&mut self.mcp_servers, server, e.at_ms);
            }
            EventKind::Request => {}
        }
        self.observations += 1;
        out
    }

    fn observe_rate(&mut self, capability: &str, at: i64, established: bool) -> Option<Anomaly> {
        let known = self.capabilities.contains_key(capability);
        if !known && self.capabilities.len() >= MAX_TRACKED {
            let oldest = self
                .capabilities
                .iter()
                .min_by_key(|(_, r)| r.last_seen_ms)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.capabilities.remove(&k);
            }
        }
        let hour = hour_of(at);
        let rate = self
            .capabilities
            .entry(capability.to_string())
            .or_insert_with(|| CapabilityRate {
                hour_start: hour,
                slots: vec![Ewma::default(); 24],
                ..CapabilityRate::default()
            });
        rate.last_seen_ms = rate.last_seen_ms.max(at);
        if !known && established {
            rate.count = 1;
            return Some(Anomaly {
                detector: Detector::NewCapability,
                severity: Severity::Low,
                at_ms: at,
                statistic: 1.0,
                baseline: 0.0,
                threshold: 1.0,
                message: format!("first use of capability {capability}"),
            });
        }
        if hour > rate.hour_start {
            // Close the counted hour and every silent hour since (each a zero count), capped
            // at one day of zeros so a long pause cannot loop for long.
            let closed = rate.count as f64;
            rate.all_hours.update(closed);
            let s = slot_of(rate.hour_start);
            rate.slots[s].update(closed);
            let gap = ((hour - rate.hour_start) / HOUR_MS - 1).clamp(0, 24);
            for i in 1..=gap {
                let h = rate.hour_start + i * HOUR_MS;
                rate.all_hours.update(0.0);
                rate.slots[slot_of(h)].update(0.0);
            }
            rate.hour_start = hour;
            rate.count = 0;
            rate.fired = false;
        }
        rate.count += 1;
        if !established || rate.fired || rate.all_hours.samples == 0 {
            return None;
        }
        let slot = &rate.slots[slot_of(rate.hour_start)];
        let (stats, which) = if slot.samples >= SLOT_MIN_SAMPLES {
            (slot, "this hour of day")
        } else {
            (&rate.all_hours, "all hours")
        };
        let threshold = stats.threshold();
        let count = rate.count as f64;
        if count > threshold {
            rate.fired = true;
            return Some(Anomaly {
                detector: Detector::ActionRate,
                severity: Severity::Medium,
                at_ms: at,
                statistic: count,
                baseline: stats.mean,
                threshold,
                message: format!(
                    "{capability}: {count} actions this hour, baseline {:.1}/h ({which}), threshold {threshold:.1}",
                    stats.mean
                ),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000 / HOUR_MS * HOUR_MS;

    fn action(at: i64, cap: &str, denied: bool, origin: &str) -> Event {
        Event {
            at_ms: at,
            origin: Some(origin.into()),
            kind: EventKind::Action {
                capability: cap.into(),
                denied,
            },
        }
    }

    fn warm(b: &mut Baseline, hours: i64, per_hour: i64) {
        for h in 0..hours {
            for i in 0..per_hour {
                let a = b.observe(&action(
                    T0 + h * HOUR_MS + i * 60_000,
                    "db:read",
                    false,
                    "10.0.0.0/24",
                ));
                assert!(a.is_empty(), "steady behaviour must not fire: {a:?}");
            }
        }
    }

    #[test]
    fn ewma_by_hand() {
        let mut e = Ewma::default();
        e.update(4.0);
        assert_eq!((e.mean, e.var), (4.0, 0.0));
        e.update(14.0);
        // d = 10, mean = 4 + 1 = 5, var = 0.9 * (0 + 0.1*100) = 9
        assert!((e.mean - 5.0).abs() < 1e-12);
        assert!((e.var - 9.0).abs() < 1e-12);
        // threshold = 5 + 3*3 = 14
        assert!((e.threshold() - 14.0).abs() < 1e-12);
    }

    #[test]
    fn nothing_fires_before_the_baseline_is_established() {
        let mut b = Baseline::default();
        for i in 0..(MIN_OBSERVATIONS as i64 - 1) {
            let cap = format!("ns:act{i}");
            let a = b.observe(&action(T0 + i, &cap, false, &format!("origin{i}")));
            assert!(a.is_empty());
        }
    }

    #[test]
    fn rate_spike_fires_once_per_hour_with_its_numbers() {
        let mut b = Baseline::default();
        warm(&mut b, 30, 5);
        // Hour 30: 5 per hour baseline (var 0) → threshold max(5, 10) = 10; the 11th fires.
        let h = T0 + 30 * HOUR_MS;
        let mut fired = Vec::new();
        for i in 0..40 {
            fired.extend(b.observe(&action(h + i * 1000, "db:read", false, "10.0.0.0/24")));
        }
        assert_eq!(fired.len(), 1, "{fired:?}");
        let a = &fired[0];
        assert_eq!(a.detector, Detector::ActionRate);
        assert_eq!(a.statistic, 11.0);
        assert!((a.baseline - 5.0).abs() < 1e-9);
        assert!((a.threshold - 10.0).abs() < 1e-9);
    }

    #[test]
    fn first_use_of_capability_server_and_origin() {
        let mut b = Baseline::default();
        warm(&mut b, 5, 5);
        let t = T0 + 5 * HOUR_MS;
        let a = b.observe(&action(t, "files:write", false, "10.0.0.0/24"));
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].detector, Detector::NewCapability);
        // second use is known
        assert!(
            b.observe(&action(t + 1, "files:write", false, "10.0.0.0/24"))
                .is_empty()
        );
        let a = b.observe(&action(t + 2, "db:read", false, "203.0.113.0/24"));
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].detector, Detector::UnusualOrigin);
        assert_eq!(a[0].baseline, 1.0);
        let mcp = Event {
            at_ms: t + 3,
            origin: None,
            kind: EventKind::McpUse {
                server: "github".into(),
            },
        };
        assert_eq!(b.observe(&mcp)[0].detector, Detector::NewMcpServer);
        assert!(b.observe(&mcp).is_empty());
    }

    #[test]
    fn denial_burst_needs_five_inside_the_window() {
        let mut b = Baseline::default();
        // 4 denials, then the 5th 6 minutes after the first: window holds 4 → no burst.
        for i in 0..4 {
            assert!(
                b.observe(&action(T0 + i * 1000, "x:y", true, "o"))
                    .iter()
                    .all(|a| a.detector != Detector::DenialBurst)
            );
        }
        let late = b.observe(&action(T0 + 6 * 60_000, "x:y", true, "o"));
        assert!(late.iter().all(|a| a.detector != Detector::DenialBurst));
        let mut burst_seen = false;
        for i in 1..5 {
            let a = b.observe(&action(T0 + 6 * 60_000 + i * 1000, "x:y", true, "o"));
            burst_seen |= a.iter().any(|a| a.detector == Detector::DenialBurst);
        }
        assert!(burst_seen);
    }

    /// A sustained stream of denials is one burst finding per window, not one per five denials.
    #[test]
    fn sustained_denials_fire_once_per_window() {
        let mut b = Baseline::default();
        let mut fired = Vec::new();
        for i in 0..600 {
            let at = T0 + i * 1000;
            if b.observe(&action(at, "x:y", true, "o"))
                .iter()
                .any(|a| a.detector == Detector::DenialBurst)
            {
                fired.push(i);
            }
        }
        assert_eq!(
            fired,
            [4, 304],
            "first at the 5th denial, then once per 5-minute window"
        );
        // The state round-trips through its stored form (old stored states lack the new fields).
        let stored = serde_json::to_value(&b).unwrap();
        let back: Baseline = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(back, b);
        let mut old = stored;
        old.as_object_mut().unwrap().remove("denial_burst_at");
        old.as_object_mut().unwrap().remove("signature_burst_at");
        let old: Baseline = serde_json::from_value(old).unwrap();
        assert_eq!(old.denial_burst_at, None);
        // A last firing far in the future (clock jumped back) does not silence the detector.
        let mut c = Baseline {
            denial_burst_at: Some(T0 + 3_600_000),
            ..Baseline::default()
        };
        let n = (0..5)
            .filter(|i| {
                c.observe(&action(T0 + i * 1000, "x:y", true, "o"))
                    .iter()
                    .any(|a| a.detector == Detector::DenialBurst)
            })
            .count();
        assert_eq!(n, 1);
    }

    #[test]
    fn signature_failure_burst() {
        let mut b = Baseline::default();
        let f = |t| Event {
            at_ms: t,
            origin: None,
            kind: EventKind::SignatureFailure,
        };
        assert!(b.observe(&f(T0)).is_empty());
        assert!(b.observe(&f(T0 + 1000)).is_empty());
        let a = b.observe(&f(T0 + 2000));
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].severity, Severity::High);
        assert_eq!(a[0].statistic, 3.0);
        // Three more inside the window: no second finding until the window passed.
        for i in 3..6 {
            assert!(b.observe(&f(T0 + i * 1000)).is_empty());
        }
        assert_eq!(b.observe(&f(T0 + 2000 + BURST_WINDOW_MS)).len(), 1);
    }

    #[test]
    fn memory_is_bounded() {
        let mut b = Baseline::default();
        for i in 0..(MAX_TRACKED as i64 * 3) {
            b.observe(&action(T0 + i, &format!("ns:a{i}"), true, &format!("o{i}")));
        }
        assert!(b.capabilities.len() <= MAX_TRACKED);
        assert!(b.origins.len() <= MAX_TRACKED);
        assert!(b.recent_denials.len() <= DENIAL_BURST);
        // round-trips as data
        let json = serde_json::to_string(&b).unwrap();
        let back: Baseline = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
    }
}
