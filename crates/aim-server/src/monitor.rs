//! The security monitor (seed Layer 4, "Event-Driven Monitoring"; `docs/monitoring.md`): tails
//! every organization's audit log, feeds each agent's events to its anomaly baseline
//! ([`aim_core::anomaly`]) and correlator ([`aim_core::correlation`]), and stores what they find
//! — anomalies, incidents, alerts and the alerts' pending deliveries — with one audit record per
//! finding.
//!
//! Invariants:
//! - The audit log is the only input: everything the monitor knows about an agent is an audit
//!   entry that committed, read in sequence order. It never analyses an entry twice and never
//!   skips one: each page's results commit in one transaction with a compare-and-swap of the
//!   organization's cursor ([`aim_store::MonitorStore::commit_monitor_batch`]); a replica that
//!   loses the race discards its results.
//! - The monitor's own records (`monitor.*`) map to no detector event, so analysing them is a
//!   no-op that only moves the cursor.
//! - Detector state per agent is bounded (see the core modules); a page touches at most
//!   [`PAGE`] entries.
//! - A page's rows come from the audit verifier when it holds them (verified, read once for
//!   both: [`AppState::take_verified_rows`]), else from the store; either way the same rows.
//! - Incidents the humans resolved are never extended: the stored correlator's copy is marked
//!   resolved when loaded, so a new match opens a new incident.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use aim_core::anomaly::{self, Baseline};
use aim_core::correlation::{Correlator, IncidentState, Outcome, SecurityEvent, SecurityEventKind};
use aim_store::{
    AgentMonitorState, AlertRouteRow, AlertRow, AnomalyRow, AuditRecord, AuditRow, DeliveryRow,
    IncidentRow, MonitorBacklog, MonitorBatch,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::Error;
use crate::state::AppState;

/// Audit entries analysed per page (one transaction each). A page's fixed cost — loading and
/// storing the detector state of every agent it touches (up to 128 recent events each, as
/// JSON) — dominated the monitor's CPU at 500 entries under load (docs/BENCHMARKS.md); a page
/// of 2,000 entries holds ~2 MB of rows while it is analysed.
pub const PAGE: u32 = 2000;
/// Organizations looked at per round.
pub const ORGS_PER_ROUND: u32 = 100;
/// The audit actor of the monitor's records.
pub const ACTOR: &str = "system";

/// What the monitor keeps per agent besides the baseline.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CorrelationState {
    correlator: Correlator,
    /// The stored incident id of each entry of `correlator.incidents` (same order).
    incident_ids: Vec<Uuid>,
}

/// The network origin the detectors compare: the /24 of an IPv4 address, the /48 of an IPv6
/// address (one client's addresses usually share them), or the text as is.
pub fn origin_of(addr: &str) -> String {
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        Err(_) => addr.to_string(),
    }
}

/// The payload members [`events_of`] reads.
///
/// Invariant: [`PayloadFields::of`] yields exactly what looking the members up in the payload
/// parsed as a [`Value`] yields (a member that is absent, `null` or of another type is `None`;
/// text that is not a JSON object yields nothing). The typed parse borrows strings from the
/// payload text and skips every other member without building it; any payload it does not
/// take as is (a member of another type, a string with escapes, a duplicate member, not an
/// object) is read through [`Value`] instead.
#[derive(Debug, Default, PartialEq, Deserialize)]
struct PayloadFields<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed")]
    capability: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    status: Option<Cow<'a, str>>,
    #[serde(rename = "serverName", default, borrow, deserialize_with = "borrowed")]
    server_name: Option<Cow<'a, str>>,
    #[serde(rename = "serverId", default, borrow, deserialize_with = "borrowed")]
    server_id: Option<Cow<'a, str>>,
    /// Present and not `null`.
    #[serde(default, deserialize_with = "present")]
    drift: bool,
    #[serde(default)]
    previous: Option<f64>,
    #[serde(default)]
    new: Option<f64>,
}

/// A string borrowed from the payload text (one with escapes is an error: the caller then reads
/// the payload through [`Value`]).
fn borrowed<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(Option::<&'de str>::deserialize(d)?.map(Cow::Borrowed))
}

/// `true` for any value but `null` (absent members take the `default`, `false`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<serde::de::IgnoredAny>::deserialize(d)?.is_some())
}

impl<'a> PayloadFields<'a> {
    fn of(text: &'a str) -> PayloadFields<'a> {
        // A derived struct also accepts a JSON array (its members in field order): only an
        // object takes the typed parse.
        if !text.trim_start().starts_with('{') {
            return Self::of_value(text);
        }
        serde_json::from_str(text).unwrap_or_else(|_| Self::of_value(text))
    }

    /// The members as the generic parse sees them (the reference of the type's invariant).
    fn of_value(text: &str) -> PayloadFields<'a> {
        let payload: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let text = |k: &str| {
            payload
                .get(k)
                .and_then(|v| v.as_str())
                .map(|s| Cow::Owned(s.to_string()))
        };
        PayloadFields {
            capability: text("capability"),
            status: text("status"),
            server_name: text("serverName"),
            server_id: text("serverId"),
            drift: payload.get("drift").is_some_and(|d| !d.is_null()),
            previous: payload.get("previous").and_then(|v| v.as_f64()),
            new: payload.get("new").and_then(|v| v.as_f64()),
        }
    }
}

/// The detector events one audit entry means for one agent: the agent, the anomaly event, the
/// correlation event. Entries about no agent mean nothing. `origin` is the entry's client
/// address as [`origin_of`] makes it (the caller computes it once per entry).
pub fn events_of(
    row: &AuditRow,
    origin: Option<&str>,
) -> Option<(String, Option<anomaly::Event>, Option<SecurityEventKind>)> {
    let ev = row.event_type.as_str();
    if ev.starts_with("monitor.") || ev == "agent.request.replayed" {
        return None;
    }
    let payload = PayloadFields::of(&row.payload);
    let owned = |v: &Option<Cow<'_, str>>| v.as_deref().map(str::to_string);
    let subject = row
        .subject
        .as_deref()
        .and_then(|s| s.strip_prefix("agent:"))
        .map(str::to_string);
    let actor = row.actor.strip_prefix("agent:").map(str::to_string);
    let event = |kind| anomaly::Event {
        at_ms: row.at,
        origin: origin.map(str::to_string),
        kind,
    };
    match ev {
        "agent.action.verified" => {
            let agent = subject?;
            let capability = owned(&payload.capability)?;
            let denied = payload.status.as_deref() == Some("denied");
            let sec = denied.then(|| SecurityEventKind::Denial {
                capability: capability.clone(),
            });
            Some((
                agent,
                Some(event(anomaly::EventKind::Action { capability, denied })),
                sec.or(Some(SecurityEventKind::SignatureSuccess)),
            ))
        }
        "agent.challenge.failed" | "agent.request.signature_failed" => Some((
            subject?,
            Some(anomaly::Event {
                at_ms: row.at,
                origin: None,
                kind: anomaly::EventKind::SignatureFailure,
            }),
            Some(SecurityEventKind::SignatureFailure),
        )),
        "agent.mcp.attested" => {
            let agent = subject?;
            let server = owned(&payload.server_name).or_else(|| owned(&payload.server_id))?;
            let drifted = payload.drift;
            Some((
                agent,
                Some(event(anomaly::EventKind::McpUse {
                    server: server.clone(),
                })),
                Some(if drifted {
                    SecurityEventKind::McpDrift { server }
                } else {
                    SecurityEventKind::SignatureSuccess
                }),
            ))
        }
        "trust.score_changed" => {
            let agent = subject?;
            match (payload.previous, payload.new) {
                (Some(from), Some(to)) => Some((
                    agent,
                    None,
                    Some(SecurityEventKind::TrustChanged { from, to }),
                )),
                _ => None,
            }
        }
        "capability.requested" if actor.is_some() => {
            let agent = actor?;
            let capability = owned(&payload.capability)?;
            Some((
                agent,
                Some(event(anomaly::EventKind::Request)),
                Some(SecurityEventKind::CapabilityRequested { capability }),
            ))
        }
        _ => {
            // Any other request the agent made and signed.
            let agent = actor?;
            Some((
                agent,
                Some(event(anomaly::EventKind::Request)),
                Some(SecurityEventKind::SignatureSuccess),
            ))
        }
    }
}

/// The serde name of a unit enum variant (`denial_burst`, `high`, …): the name stored and shown.
pub fn wire_name<T: Serialize + std::fmt::Debug>(v: T) -> String {
    serde_json::to_value(&v)
        .ok()
        .and_then(|j| j.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{v:?}"))
}

fn alert_severity(s: &str) -> aim_alerts::Severity {
    match s {
        "critical" => aim_alerts::Severity::Critical,
        "high" => aim_alerts::Severity::High,
        "medium" => aim_alerts::Severity::Medium,
        _ => aim_alerts::Severity::Low,
    }
}

/// The severity an alert route name maps to (`low`…`critical`).
pub fn parse_severity(s: &str) -> Option<aim_alerts::Severity> {
    match s {
        "low" => Some(aim_alerts::Severity::Low),
        "medium" => Some(aim_alerts::Severity::Medium),
        "high" => Some(aim_alerts::Severity::High),
        "critical" => Some(aim_alerts::Severity::Critical),
        _ => None,
    }
}

/// One agent's detectors while a page is analysed.
struct Live {
    baseline: Baseline,
    corr: CorrelationState,
    changed: bool,
}

/// Builds the alert of a finding and its deliveries over the routes it takes.
fn raise(
    b: &mut MonitorBatch,
    routes: &[AlertRouteRow],
    severity: &str,
    kind: String,
    title: String,
    agent_id: Option<&str>,
    details: Value,
) {
    let id = Uuid::now_v7();
    let sev = alert_severity(severity);
    let mut n = 0;
    for r in routes {
        let min = parse_severity(&r.min_severity).unwrap_or(aim_alerts::Severity::Critical);
        if r.enabled && sev >= min {
            b.deliveries.push(DeliveryRow {
                id: Uuid::now_v7(),
                org_id: b.org_id,
                alert_id: id,
                route_id: r.id,
                status: "pending".into(),
                attempts: 0,
                next_attempt_at: b.now,
                lease_until: 0,
                last_error: None,
                last_http_status: None,
                updated_at: b.now,
            });
            n += 1;
        }
    }
    b.audits.push(AuditRecord {
        org_id: Some(b.org_id),
        at: b.now,
        event_type: "monitor.alert.raised".into(),
        actor: ACTOR.into(),
        subject: Some(format!("alert:{id}")),
        payload: json!({ "kind": kind, "severity": severity, "agentId": agent_id, "deliveries": n }),
        client_addr: None,
    });
    b.alerts.push(AlertRow {
        id,
        org_id: b.org_id,
        severity: severity.to_string(),
        kind,
        title,
        agent_id: agent_id.map(str::to_string),
        details: details.to_string(),
        state: "open".into(),
        created_at: b.now,
        updated_at: b.now,
        updated_by: None,
    });
}

/// The drift an attestation reported: (server id, server name, severity, details).
fn drift_of(row: &AuditRow) -> Option<(String, String, String, Value)> {
    if row.event_type != "agent.mcp.attested" {
        return None;
    }
    let p: Value = serde_json::from_str(&row.payload).ok()?;
    let d = p.get("drift").filter(|d| !d.is_null())?;
    let sev = d
        .get("maxSeverity")
        .and_then(|s| s.as_str())
        .unwrap_or("low")
        .to_string();
    Some((
        p.get("serverId")?.as_str()?.to_string(),
        p.get("serverName")?.as_str()?.to_string(),
        sev,
        json!({
            "serverId": p.get("serverId"), "serverName": p.get("serverName"),
            "pinnedHash": d.get("pinnedHash"), "manifestHash": p.get("manifestHash"),
            "changeCount": d.get("changeCount"), "changes": d.get("changes"),
        }),
    ))
}

/// Analyses one page of one organization's backlog and commits the result. `Ok(false)` when
/// another replica committed that page first (nothing written).
pub async fn analyse_page(state: &AppState, backlog: MonitorBacklog) -> Result<bool, Error> {
    let org = backlog.org_id;
    let from = u64::try_from(backlog.next_seq).unwrap_or(0);
    // The page is read once for verification and analysis: verification keeps the rows it
    // verified for the monitor. The store is read when they are not held (a verifier far
    // behind or busy, rows dropped for room, a broken chain, verification failing): the
    // monitor never stops because verification did.
    if let Err(e) = state.verify_ahead(org, from, from + u64::from(PAGE)).await {
        tracing::warn!(org = %org, error = %e,
            "audit verification ahead of the monitor failed; the monitor reads the store");
    }
    let mut rows = state.take_verified_rows(org, from, PAGE, backlog.head_size);
    if rows.is_empty() {
        rows = state
            .store
            .list_audit_chain(org, from, PAGE)
            .await?
            .into_iter()
            .filter(|r| r.seq.is_some_and(|s| s < backlog.head_size))
            .collect();
    }
    let Some(last) = rows.last().and_then(|r| r.seq) else {
        return Ok(true);
    };
    let now = state.now_ms();
    let mut b = MonitorBatch {
        org_id: org,
        from_seq: backlog.next_seq,
        to_seq: last + 1,
        now,
        ..MonitorBatch::default()
    };
    let mapped: Vec<(i64, i64, Option<String>, _)> = rows
        .iter()
        .filter_map(|r| {
            let origin = r.client_addr.as_deref().map(origin_of);
            let events = events_of(r, origin.as_deref())?;
            Some((r.seq?, r.at, origin, events))
        })
        .collect();
    let mut agents: Vec<String> = mapped.iter().map(|(.., e)| e.0.clone()).collect();
    agents.sort();
    agents.dedup();
    let mut live: HashMap<String, Live> = HashMap::new();
    if !agents.is_empty() {
        for s in state.store.monitor_states(org, &agents).await? {
            let baseline = serde_json::from_str(&s.baseline).unwrap_or_default();
            let corr: CorrelationState = serde_json::from_str(&s.correlator).unwrap_or_default();
            live.insert(
                s.agent_id.clone(),
                Live {
                    baseline,
                    corr,
                    changed: false,
                },
            );
        }
        // Incidents resolved by a human are not extended: mark them so a new match opens anew.
        for l in live.values_mut() {
            for (i, id) in l.corr.incident_ids.iter().enumerate() {
                if let Some(row) = state.store.get_incident(org, *id).await?
                    && row.state == "resolved"
                    && let Some(inc) = l.corr.correlator.incidents.get_mut(i)
                {
                    inc.state = IncidentState::Resolved;
                }
            }
        }
    }
    let drifts: Vec<(&AuditRow, _)> = rows
        .iter()
        .filter_map(|r| drift_of(r).map(|d| (r, d)))
        .collect();
    let routes = if mapped.is_empty() && drifts.is_empty() {
        Vec::new()
    } else {
        state.store.list_alert_routes(org).await?
    };
    let mut incidents: BTreeMap<Uuid, IncidentRow> = BTreeMap::new();
    // Capability drift reported by an attestation: an audit entry and an alert of its severity.
    for (r, (server_id, server_name, severity, mut details)) in drifts {
        let agent = r.subject.as_deref().and_then(|s| s.strip_prefix("agent:"));
        details["eventSeq"] = json!(r.seq);
        details["agentId"] = json!(agent);
        b.audits.push(AuditRecord {
            org_id: Some(org),
            at: now,
            event_type: "monitor.mcp.drift_detected".into(),
            actor: ACTOR.into(),
            subject: Some(format!("mcp_server:{server_id}")),
            payload: details.clone(),
            client_addr: None,
        });
        raise(
            &mut b,
            &routes,
            &severity,
            "mcp.drift".into(),
            format!("MCP server {server_name} changed since it was pinned ({severity})"),
            agent,
            details,
        );
    }
    for (seq, at, origin, (agent, aev, sev)) in mapped {
        let l = live.entry(agent.clone()).or_insert_with(|| Live {
            baseline: Baseline::default(),
            corr: CorrelationState::default(),
            changed: false,
        });
        l.changed = true;
        let mut sec_events: Vec<SecurityEvent> = Vec::new();
        if let Some(sev) = sev {
            sec_events.push(SecurityEvent {
                id: format!("audit:{seq}"),
                agent: agent.clone(),
                at_ms: at,
                // The request's network even for a failed signature (the correlator compares
                // it with the failures'); the baseline only learns origins of verified requests.
                origin: origin.clone(),
                kind: sev,
            });
        }
        if let Some(aev) = aev {
            for a in l.baseline.observe(&aev) {
                let id = Uuid::now_v7();
                let detector = wire_name(a.detector);
                let severity = wire_name(a.severity);
                b.anomalies.push(AnomalyRow {
                    id,
                    org_id: org,
                    agent_id: agent.clone(),
                    detector: detector.clone(),
                    severity: severity.clone(),
                    weight: a.severity.weight(),
                    at: a.at_ms,
                    statistic: a.statistic,
                    baseline: a.baseline,
                    threshold: a.threshold,
                    message: a.message.clone(),
                    event_seq: seq,
                });
                let details = json!({
                    "anomalyId": id, "detector": detector, "statistic": a.statistic,
                    "baseline": a.baseline, "threshold": a.threshold, "eventSeq": seq,
                    "message": a.message,
                });
                b.audits.push(AuditRecord {
                    org_id: Some(org),
                    at: now,
                    event_type: "monitor.anomaly.detected".into(),
                    actor: ACTOR.into(),
                    subject: Some(format!("agent:{agent}")),
                    payload: details.clone(),
                    client_addr: None,
                });
                raise(
                    &mut b,
                    &routes,
                    &severity,
                    format!("anomaly.{detector}"),
                    format!("Agent {agent}: {}", a.message),
                    Some(&agent),
                    details,
                );
                sec_events.push(SecurityEvent {
                    id: format!("anomaly:{id}"),
                    agent: agent.clone(),
                    at_ms: a.at_ms,
                    origin: None,
                    kind: SecurityEventKind::Anomaly { detector },
                });
            }
        }
        for se in &sec_events {
            for outcome in l.corr.correlator.observe(se) {
                let (i, opened) = match outcome {
                    Outcome::Opened(i) => (i, true),
                    Outcome::Extended(i) => (i, false),
                };
                let Some(inc) = l.corr.correlator.incidents.get(i) else {
                    continue;
                };
                while l.corr.incident_ids.len() <= i {
                    l.corr.incident_ids.push(Uuid::now_v7());
                }
                let id = l.corr.incident_ids[i];
                let rule = wire_name(inc.rule);
                let severity = wire_name(inc.severity);
                let row = IncidentRow {
                    id,
                    org_id: org,
                    agent_id: agent.clone(),
                    rule: rule.clone(),
                    severity: severity.clone(),
                    state: "open".into(),
                    first_at: inc.first_at_ms,
                    last_at: inc.last_at_ms,
                    members: serde_json::to_string(&inc.members).unwrap_or_default(),
                    summary: inc.summary.clone(),
                    updated_at: now,
                    updated_by: None,
                };
                incidents.insert(id, row);
                if opened {
                    let details = json!({
                        "incidentId": id, "rule": rule, "members": inc.members,
                        "summary": inc.summary,
                    });
                    b.audits.push(AuditRecord {
                        org_id: Some(org),
                        at: now,
                        event_type: "monitor.incident.opened".into(),
                        actor: ACTOR.into(),
                        subject: Some(format!("incident:{id}")),
                        payload: json!({
                            "agentId": agent, "rule": rule, "severity": severity,
                            "members": inc.members,
                        }),
                        client_addr: None,
                    });
                    raise(
                        &mut b,
                        &routes,
                        &severity,
                        format!("incident.{rule}"),
                        format!("Agent {agent}: {}", inc.summary),
                        Some(&agent),
                        details,
                    );
                }
            }
        }
    }
    b.incidents = incidents.into_values().collect();
    for (agent, mut l) in live {
        if !l.changed {
            continue;
        }
        prune(&mut l.corr, now);
        b.states.push(AgentMonitorState {
            org_id: org,
            agent_id: agent,
            observations: i64::try_from(l.baseline.observations).unwrap_or(i64::MAX),
            baseline: serde_json::to_string(&l.baseline).unwrap_or_default(),
            correlator: serde_json::to_string(&l.corr).unwrap_or_default(),
            updated_at: now,
        });
    }
    b.states.sort_by(|x, y| x.agent_id.cmp(&y.agent_id));
    let touched: Vec<String> = b.anomalies.iter().map(|a| a.agent_id.clone()).collect();
    let committed = state.store.commit_monitor_batch(&b).await?;
    if committed {
        for a in touched {
            state.trust_cache.invalidate(&a);
        }
    }
    Ok(committed)
}

/// Drops incidents that can no longer be extended (resolved, or quiet for longer than the
/// longest rule window), keeping the id list aligned.
fn prune(c: &mut CorrelationState, now: i64) {
    let keep: Vec<bool> = c
        .correlator
        .incidents
        .iter()
        .map(|i| {
            i.state != IncidentState::Resolved
                && i.last_at_ms >= now - aim_core::correlation::HORIZON_MS
        })
        .collect();
    let mut k = keep.iter();
    c.correlator
        .incidents
        .retain(|_| *k.next().unwrap_or(&false));
    let mut k = keep.iter();
    c.incident_ids.truncate(keep.len());
    c.incident_ids.retain(|_| *k.next().unwrap_or(&false));
}

/// One monitor round: every organization with unanalysed entries, page by page, until each is
/// caught up with the backlog it had when the round looked (entries appended meanwhile wait for
/// the next round). Returns the number of pages committed.
///
/// Under a steady stream of entries, "caught up with whatever arrived meanwhile" would loop on
/// pages of a handful of entries, paying each page's fixed cost (state and evidence reads, one
/// transaction) per few entries; bounding the round lets entries accumulate into full pages
/// while keeping detection latency at about one `monitor.interval_ms`.
pub async fn run_round(state: &AppState) -> Result<usize, Error> {
    let mut pages = 0;
    loop {
        let backlog = state.store.monitor_backlog(ORGS_PER_ROUND).await?;
        if backlog.is_empty() {
            return Ok(pages);
        }
        // More than a page behind somewhere: another pass of this round is needed.
        let behind = backlog
            .iter()
            .any(|b| b.head_size - b.next_seq > i64::from(PAGE));
        let full_round = backlog.len() >= ORGS_PER_ROUND as usize;
        let mut progressed = false;
        for b in backlog {
            if analyse_page(state, b).await? {
                pages += 1;
                progressed = true;
            }
        }
        if !progressed || !(behind || full_round) || pages > 10_000 {
            return Ok(pages);
        }
    }
}

/// Starts the monitor and the alert delivery worker (every `monitor.interval_ms`).
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick =
            tokio::time::interval(Duration::from_millis(state.config.monitor.interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = run_round(&state).await {
                tracing::warn!(error = %e, "security monitor round failed; retrying next tick");
            }
            if let Err(e) = crate::alerting::deliver_due(&state).await {
                tracing::warn!(error = %e, "alert delivery round failed; retrying next tick");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_fields_read_exactly_what_the_generic_parse_reads() {
        let cases = [
            // the shapes the server writes
            r#"{"actionId":"x","capability":"files:read","status":"denied","wire":{"a":[1,2,{"b":null}]},"trustScore":0.5}"#,
            r#"{"serverName":"fs","serverId":"id-1","drift":{"tools":["a"]}}"#,
            r#"{"serverId":"id-1","drift":null}"#,
            r#"{"previous":61,"new":72.5}"#,
            r#"{"previous":18446744073709551615,"new":-3}"#,
            // escapes (owned, not borrowed), non-ASCII, members of other types
            r#"{"capability":"files:réad
","status":"appr"oved"}"#,
            r#"{"capability":7,"status":"denied"}"#,
            r#"{"capability":"a:b","status":["denied"]}"#,
            r#"{"previous":"61","new":72}"#,
            r#"{"drift":false}"#,
            r#"{"drift":0}"#,
            // duplicates (the generic parse keeps the last), not an object, not JSON, empty
            r#"{"capability":"a:b","capability":"c:d"}"#,
            r#"{"status":"denied","status":"approved"}"#,
            r#"["capability","a:b"]"#,
            r#""text""#,
            "null",
            "{",
            "",
            r#"{"previous":1e400}"#,
        ];
        for text in cases {
            assert_eq!(
                PayloadFields::of(text),
                PayloadFields::of_value(text),
                "payload {text}"
            );
        }
        // The typed parse is the one used for the server's own payloads (it borrows).
        let p = PayloadFields::of(cases[0]);
        assert!(matches!(p.capability, Some(Cow::Borrowed("files:read"))));
        assert_eq!(
            PayloadFields::of(cases[11]).capability.as_deref(),
            Some("c:d")
        );
    }

    /// [`events_of`] with the entry's origin computed as the monitor does.
    fn events(r: &AuditRow) -> Option<(String, Option<anomaly::Event>, Option<SecurityEventKind>)> {
        events_of(r, r.client_addr.as_deref().map(origin_of).as_deref())
    }

    fn row(seq: i64, ev: &str, actor: &str, subject: Option<&str>, payload: Value) -> AuditRow {
        AuditRow {
            id: Uuid::now_v7(),
            org_id: Some(Uuid::nil()),
            at: 1_800_000_000_000,
            event_type: ev.into(),
            actor: actor.into(),
            subject: subject.map(str::to_string),
            payload: payload.to_string(),
            client_addr: Some("203.0.113.77".into()),
            seq: Some(seq),
            prev_hash: None,
            hash: None,
        }
    }

    #[test]
    fn origins_are_grouped_by_network() {
        assert_eq!(origin_of("203.0.113.77"), "203.0.113.0/24");
        assert_eq!(origin_of("2001:db8:1:2::5"), "2001:db8:1::/48");
        assert_eq!(origin_of("not-an-ip"), "not-an-ip");
    }

    #[test]
    fn audit_entries_map_to_detector_events() {
        let denied = row(
            1,
            "agent.action.verified",
            "agent:aim_a",
            Some("agent:aim_a"),
            json!({"capability": "db:write", "status": "denied"}),
        );
        let (agent, a, s) = events(&denied).unwrap();
        assert_eq!(agent, "aim_a");
        assert_eq!(
            a.unwrap().kind,
            anomaly::EventKind::Action {
                capability: "db:write".into(),
                denied: true
            }
        );
        assert_eq!(
            s.unwrap(),
            SecurityEventKind::Denial {
                capability: "db:write".into()
            }
        );
        let approved = row(
            2,
            "agent.action.verified",
            "agent:aim_a",
            Some("agent:aim_a"),
            json!({"capability": "db:read", "status": "approved"}),
        );
        assert_eq!(
            events(&approved).unwrap().2.unwrap(),
            SecurityEventKind::SignatureSuccess
        );
        let failed = row(
            3,
            "agent.challenge.failed",
            "anonymous",
            Some("agent:aim_a"),
            json!({}),
        );
        assert_eq!(
            events(&failed).unwrap().2.unwrap(),
            SecurityEventKind::SignatureFailure
        );
        let trust = row(
            4,
            "trust.score_changed",
            "system",
            Some("agent:aim_a"),
            json!({"previous": 80.0, "new": 55.5}),
        );
        assert_eq!(
            events(&trust).unwrap().2.unwrap(),
            SecurityEventKind::TrustChanged {
                from: 80.0,
                to: 55.5
            }
        );
        // The monitor's own records, replays and human actions on no agent mean nothing.
        for r in [
            row(
                5,
                "monitor.anomaly.detected",
                "system",
                Some("agent:aim_a"),
                json!({}),
            ),
            row(
                6,
                "agent.request.replayed",
                "agent:aim_a",
                Some("agent:aim_a"),
                json!({}),
            ),
            row(7, "auth.login.succeeded", "user:x", None, json!({})),
        ] {
            assert!(events(&r).is_none(), "{}", r.event_type);
        }
    }

    #[test]
    fn pruning_keeps_ids_aligned_with_incidents() {
        let mut c = Correlator::new();
        let anomaly = |id: &str, at: i64, d: &str| SecurityEvent {
            id: id.into(),
            agent: "aim_a".into(),
            at_ms: at,
            origin: None,
            kind: SecurityEventKind::Anomaly { detector: d.into() },
        };
        let t = 1_800_000_000_000;
        c.observe(&anomaly("1", t, "unusual_origin"));
        c.observe(&anomaly("2", t + 1, "denial_burst"));
        // 20 minutes later a second, separate incident
        c.observe(&anomaly("3", t + 20 * 60_000, "unusual_origin"));
        c.observe(&anomaly("4", t + 20 * 60_000 + 1, "denial_burst"));
        assert_eq!(c.incidents.len(), 2);
        let ids = vec![Uuid::now_v7(), Uuid::now_v7()];
        let mut s = CorrelationState {
            correlator: c,
            incident_ids: ids.clone(),
        };
        s.correlator.incidents[1].state = IncidentState::Resolved;
        prune(&mut s, t + 21 * 60_000);
        assert_eq!(s.incident_ids, vec![ids[0]]);
        assert_eq!(s.correlator.incidents.len(), 1);
        // an hour later the quiet one goes too
        prune(&mut s, t + 3 * 3_600_000);
        assert!(s.incident_ids.is_empty() && s.correlator.incidents.is_empty());
    }
}
