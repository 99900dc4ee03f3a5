//! Confidence in an MCP server from independent agents' attestations (docs/MCP.md, "Server:
//! confidence"), and the MCP evidence of an agent's trust score.
//!
//! Invariants:
//! - A server without a pinned manifest has confidence 0: nobody said what it should look like
//!   (zero trust by default).
//! - Only each agent's newest attestation of the last [`WINDOW_DAYS`] days counts, and only when it
//!   matches the pin; its weight is the agent's newest recorded trust score (0–1; 0 when it has
//!   none) times a recency factor that halves every [`HALF_LIFE_DAYS`] days.
//! - Independent attesters combine as `1 − Π(1 − wᵢ)`: more agreeing agents raise confidence,
//!   never above 1. A pin signed by the server's registered key counts as one more attester of
//!   weight [`SIGNED_PIN_WEIGHT`].
//! - An unresolved drift (an attestation that differed from the pin, newer than the pin) multiplies
//!   the result by [`DRIFT_FACTOR`].

use aim_core::trust::McpUse;
use aim_store::{AttesterRow, McpServerRow};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::Error;
use crate::state::AppState;

/// Attestations older than this do not count.
pub const WINDOW_DAYS: i64 = 90;
/// An attestation's weight halves every this many days.
pub const HALF_LIFE_DAYS: f64 = 30.0;
/// Weight of the server's own valid signature on its pinned manifest.
pub const SIGNED_PIN_WEIGHT: f64 = 0.5;
/// Multiplier while a drift is unresolved.
pub const DRIFT_FACTOR: f64 = 0.25;

const DAY_MS: i64 = aim_store::activity::DAY_MS;

/// The confidence computation, with its inputs (for the API answer).
#[derive(Debug, Clone, PartialEq)]
pub struct Confidence {
    pub value: f64,
    pub attesters: usize,
    pub matching: usize,
    pub drifted: bool,
}

/// Pure: confidence from the server row and its attesters at `now_ms`.
pub fn confidence(server: &McpServerRow, attesters: &[AttesterRow], now_ms: i64) -> Confidence {
    let drifted = server.drift_at.is_some();
    if server.pinned_hash.is_none() {
        return Confidence {
            value: 0.0,
            attesters: attesters.len(),
            matching: 0,
            drifted,
        };
    }
    let mut miss = 1.0;
    let mut matching = 0;
    for a in attesters {
        if a.matches_pin != Some(true) || Some(&a.manifest_hash) != server.pinned_hash.as_ref() {
            continue;
        }
        matching += 1;
        let trust = a.trust_score.unwrap_or(0.0).clamp(0.0, 100.0) / 100.0;
        let age_days = ((now_ms - a.at).max(0) as f64) / DAY_MS as f64;
        let w = trust * 0.5f64.powf(age_days / HALF_LIFE_DAYS);
        miss *= 1.0 - w.clamp(0.0, 1.0);
    }
    if server.pinned_signed {
        miss *= 1.0 - SIGNED_PIN_WEIGHT;
    }
    let mut value = 1.0 - miss;
    if drifted {
        value *= DRIFT_FACTOR;
    }
    Confidence {
        value: value.clamp(0.0, 1.0),
        attesters: attesters.len(),
        matching,
        drifted,
    }
}

/// The server's confidence now.
pub async fn server_confidence(state: &AppState, s: &McpServerRow) -> Result<Confidence, Error> {
    let now = state.now_ms();
    let attesters = state
        .store
        .mcp_attesters(s.org_id, s.id, now - WINDOW_DAYS * DAY_MS)
        .await?;
    Ok(confidence(s, &attesters, now))
}

/// The MCP servers `agent_id` used in the last 30 days with their confidence (trust evidence).
pub async fn agent_mcp_use(
    state: &AppState,
    org_id: Uuid,
    agent_id: &str,
    now_ms: i64,
) -> Result<Vec<McpUse>, Error> {
    let since_day = (now_ms - 30 * DAY_MS).div_euclid(DAY_MS) + 1;
    let mut out = Vec::new();
    for c in state
        .store
        .mcp_connections(org_id, agent_id, since_day)
        .await?
    {
        let Some(s) = state.store.get_mcp_server(org_id, c.server_id).await? else {
            continue;
        };
        out.push(McpUse {
            confidence: server_confidence(state, &s).await?.value,
            uses: u64::try_from(c.uses).unwrap_or(0),
        });
    }
    Ok(out)
}

/// Public view of a server with its confidence.
pub fn server_json(s: &McpServerRow, c: &Confidence) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "publicKey": s.public_key.as_ref().map(|k| aim_core::keys::encode_base64(k)),
        "pinnedHash": s.pinned_hash,
        "pinnedSigned": s.pinned_signed,
        "pinnedAt": s.pinned_at.map(crate::state::ms_to_rfc3339),
        "pinnedBy": s.pinned_by,
        "drift": s.drift_at.map(|at| json!({
            "at": crate::state::ms_to_rfc3339(at), "manifestHash": s.drift_hash,
            "severity": s.drift_severity,
        })),
        "confidence": c.value,
        "attesters": c.attesters,
        "matchingAttesters": c.matching,
        "createdAt": crate::state::ms_to_rfc3339(s.created_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn server(pinned: bool, signed: bool, drift: bool) -> McpServerRow {
        McpServerRow {
            id: Uuid::nil(),
            org_id: Uuid::nil(),
            name: "fs".into(),
            public_key: None,
            pinned_hash: pinned.then(|| "sha256:aa".to_string()),
            pinned_manifest: None,
            pinned_signed: signed,
            pinned_at: Some(NOW),
            pinned_by: None,
            drift_at: drift.then_some(NOW),
            drift_hash: None,
            drift_severity: None,
            created_at: NOW,
            created_by: "user:x".into(),
        }
    }

    fn att(hash: &str, trust: Option<f64>, age_days: i64) -> AttesterRow {
        AttesterRow {
            agent_id: format!("aim_{hash}{age_days}"),
            manifest_hash: hash.into(),
            matches_pin: Some(hash == "sha256:aa"),
            at: NOW - age_days * DAY_MS,
            trust_score: trust,
        }
    }

    #[test]
    fn hand_computed_values() {
        // No pin: 0 whatever the attestations.
        let c = confidence(
            &server(false, false, false),
            &[att("sha256:aa", Some(90.0), 0)],
            NOW,
        );
        assert_eq!(c.value, 0.0);
        // One fresh agent with trust 80: 0.8.
        let c = confidence(
            &server(true, false, false),
            &[att("sha256:aa", Some(80.0), 0)],
            NOW,
        );
        assert!((c.value - 0.8).abs() < 1e-12);
        // Two agents 80 and 50, the second 30 days old (weight 0.25): 1 − 0.2·0.75 = 0.85.
        let two = [
            att("sha256:aa", Some(80.0), 0),
            att("sha256:aa", Some(50.0), 30),
        ];
        let c = confidence(&server(true, false, false), &two, NOW);
        assert!((c.value - 0.85).abs() < 1e-12, "{c:?}");
        assert_eq!(c.matching, 2);
        // A signed pin adds 0.5: 1 − 0.15·0.5 = 0.925.
        let c = confidence(&server(true, true, false), &two, NOW);
        assert!((c.value - 0.925).abs() < 1e-12);
        // Unresolved drift: × 0.25.
        let c = confidence(&server(true, false, true), &two, NOW);
        assert!((c.value - 0.2125).abs() < 1e-12);
        // A mismatching or unscored attester adds nothing.
        let c = confidence(
            &server(true, false, false),
            &[att("sha256:bb", Some(99.0), 0), att("sha256:aa", None, 0)],
            NOW,
        );
        assert_eq!(c.value, 0.0);
        assert_eq!(c.matching, 1);
    }

    #[test]
    fn more_agreeing_attesters_never_lower_it_and_it_stays_in_range() {
        let mut atts = Vec::new();
        let mut last = 0.0;
        for i in 0..50 {
            atts.push(att("sha256:aa", Some(f64::from(i * 2)), i64::from(i)));
            let c = confidence(&server(true, false, false), &atts, NOW).value;
            assert!(c >= last && (0.0..=1.0).contains(&c));
            last = c;
        }
    }
}
