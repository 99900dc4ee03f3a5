//! Signed agent requests: the [`SignedRequest`] extractor.
//!
//! The format (canonical string and headers) is defined once in
//! [`aim_core::request_signing`]. The extractor checks, in this order, and answers:
//! 1. all four headers present — else 401 `signature_required`;
//! 2. headers well formed (agent id syntax, integer timestamp, nonce alphabet/length, base64 of a
//!    64-byte signature) — else 400 `bad_request`;
//! 3. the agent id in the path (if the route has `{id}`) equals `X-AIM-Agent-Id` — else 403
//!    `agent_mismatch`;
//! 4. timestamp within ±`signed_request_window_secs` of the server clock — else 401
//!    `timestamp_out_of_window`;
//! 5. the agent exists — else 401 `unauthorized`;
//! 6. the signature verifies under the current key, or under the previous key while its rotation
//!    grace period lasts — else 401 `invalid_signature`;
//! 7. the agent is `active` — else 403 `agent_pending` / `agent_suspended` / `agent_revoked`.
//!
//! The nonce is NOT claimed by the extractor: the handler decides, then calls
//! [`SignedRequest::commit`] with the audit record of what it did. `commit` claims the nonce and
//! writes the record in one group-committed transaction ([`crate::decision_writer`]) and answers
//! 401 `replayed_request` when the nonce was already used (same or another replica). Only a
//! committed request yields an [`AgentCaller`], so a handler cannot act for an agent without
//! having claimed its nonce.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use aim_core::keys::{PublicKey, decode_base64, is_agent_id};
use aim_core::request_signing::{
    HEADER_AGENT_ID, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, canonical_request,
    valid_nonce,
};
use aim_store::{
    Agent, AgentStatus, AuditRecord, DecisionOp, DecisionOutcome, DecisionWrite, NonceClaim,
};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::auth::client_addr;
use crate::error::{ApiError, Error};
use crate::state::AppState;

/// Most agent keys [`agent_key`] keeps decompressed (the map is emptied when full).
const AGENT_KEY_CACHE_MAX: usize = 4096;

/// The agent public key encoded by `bytes`, decompressed at most once per key while it stays in
/// a bounded cache. Decompressing and validating the curve point costs about a tenth of a
/// verification (5.9 µs next to 58 µs on the reference machine, `cargo bench -p aim-core --bench
/// signature_verify`, docs/BENCHMARKS.md), and the same keys sign request after request.
///
/// Invariant: the cache maps exact 32-byte encodings to the key [`PublicKey::from_bytes`] makes
/// of them, so using it decides exactly what parsing every time would; encodings that are not
/// keys are refused and never kept. It holds no authorization state: which key an agent may use
/// still comes from its row on every request.
pub(crate) fn agent_key(bytes: &[u8]) -> Option<PublicKey> {
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], PublicKey>>> = OnceLock::new();
    let encoded: [u8; 32] = bytes.try_into().ok()?;
    let cache = CACHE.get_or_init(Default::default);
    if let Some(k) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&encoded)
    {
        return Some(*k);
    }
    let key = PublicKey::from_bytes(&encoded).ok()?;
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= AGENT_KEY_CACHE_MAX {
        map.clear();
    }
    map.insert(encoded, key);
    Some(key)
}

/// Outcome of [`SignedRequest::commit_op`].
#[derive(Debug)]
pub enum Committed {
    /// Nonce claimed, op applied, audit record durable.
    Applied(AgentCaller),
    /// Nonce claimed, the op's precondition was false: nothing else written.
    Conflict(AgentCaller),
}

/// Which key signed the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningKey {
    Current,
    /// The previous key, inside its rotation grace period.
    Previous,
}

/// A request whose signature, freshness window and agent status were checked, but whose nonce is
/// not yet claimed.
#[derive(Debug)]
pub struct SignedRequest {
    pub agent: Agent,
    pub key: SigningKey,
    pub method: String,
    pub path_and_query: String,
    pub timestamp: i64,
    pub nonce: String,
    pub body: Bytes,
    pub client_addr: Option<String>,
}

/// An agent whose request is authenticated AND whose nonce is claimed (its record is durable).
#[derive(Debug)]
pub struct AgentCaller {
    pub agent: Agent,
    pub key: SigningKey,
    pub nonce: String,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match h.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| ApiError::bad_request(format!("{name} is not valid text"))),
    }
}

fn refuse(status: StatusCode, code: &'static str, msg: &str) -> Error {
    ApiError::new(status, code, msg).into()
}

impl SignedRequest {
    /// The body as JSON (400 when it is not the expected shape).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let bytes: &[u8] = if self.body.is_empty() {
            b"{}"
        } else {
            &self.body
        };
        crate::routes::request_json(bytes)
    }

    /// The audit actor string of the agent.
    pub fn actor(&self) -> String {
        format!("agent:{}", self.agent.id)
    }

    /// Claims the nonce and records `event_type` with `payload` in one group-committed write; a
    /// replay answers 401 `replayed_request` (and is itself recorded).
    pub async fn commit(
        self,
        state: &AppState,
        event_type: &str,
        payload: serde_json::Value,
    ) -> Result<AgentCaller, Error> {
        match self
            .commit_op(state, event_type, payload, DecisionOp::None)
            .await?
        {
            Committed::Applied(c) | Committed::Conflict(c) => Ok(c),
        }
    }

    /// Like [`SignedRequest::commit`], and applies `op` in the same transaction (only when the
    /// nonce was fresh). [`Committed::Conflict`] when the op's precondition did not hold: the nonce
    /// is used, nothing else was written.
    pub async fn commit_op(
        self,
        state: &AppState,
        event_type: &str,
        payload: serde_json::Value,
        op: DecisionOp,
    ) -> Result<Committed, Error> {
        let window_ms = i64::try_from(state.config.signed_request_window_secs)
            .unwrap_or(3600)
            .saturating_mul(1000);
        let org = Some(self.agent.org_id);
        let subject = Some(format!("agent:{}", self.agent.id));
        let mut payload = payload;
        if let Some(obj) = payload.as_object_mut() {
            obj.insert("method".into(), self.method.clone().into());
            obj.insert("path".into(), self.path_and_query.clone().into());
            obj.insert("nonce".into(), self.nonce.clone().into());
            obj.insert(
                "key".into(),
                match self.key {
                    SigningKey::Current => "current",
                    SigningKey::Previous => "previous",
                }
                .into(),
            );
        }
        let audit = state.audit(
            org,
            event_type,
            self.actor(),
            subject.clone(),
            payload,
            self.client_addr.clone(),
        );
        // Built field by field: `..audit.clone()` would copy the whole payload to drop it.
        let replay_audit = AuditRecord {
            org_id: audit.org_id,
            at: audit.at,
            event_type: "agent.request.replayed".into(),
            actor: audit.actor.clone(),
            subject: audit.subject.clone(),
            payload: serde_json::json!({
                "method": self.method, "path": self.path_and_query, "nonce": self.nonce
            }),
            client_addr: audit.client_addr.clone(),
        };
        let item = DecisionWrite {
            nonce: Some(NonceClaim {
                signed_at: self.timestamp,
                org_id: self.agent.org_id,
                agent_id: self.agent.id.clone(),
                nonce: self.nonce.clone(),
                expires_at: self
                    .timestamp
                    .saturating_mul(1000)
                    .saturating_add(window_ms),
            }),
            audit,
            replay_audit: Some(replay_audit),
            op,
            prepared: None,
        };
        let caller = |s: Self| AgentCaller {
            agent: s.agent,
            key: s.key,
            nonce: s.nonce,
        };
        match state.writer.commit(item).await? {
            DecisionOutcome::Committed => Ok(Committed::Applied(caller(self))),
            DecisionOutcome::Conflict => Ok(Committed::Conflict(caller(self))),
            DecisionOutcome::Replayed => Err(refuse(
                StatusCode::UNAUTHORIZED,
                "replayed_request",
                "this nonce was already used by the agent; sign every request with a fresh nonce",
            )),
        }
    }
}

/// Steps 5–7 of the module documentation, shared by every agent-signature scheme (the native
/// headers and the aim-sdk ones): loads agent `id`, finds which of its keys `verifies` accepts
/// (current, else the previous one inside its grace period; the cached row is reloaded once in
/// case another replica rotated the key), and requires the agent to be `active`. A failure is
/// recorded as `agent.request.signature_failed` (rate-limited per agent) and answers 401
/// `invalid_signature`; an unknown agent answers 401 `unauthorized`.
pub(crate) async fn authenticate_agent(
    state: &AppState,
    id: &str,
    method: &str,
    path: &str,
    addr: Option<String>,
    verifies: impl Fn(&[u8]) -> bool,
) -> Result<(Agent, SigningKey), Error> {
    let now = state.now_ms();
    let which = |agent: &Agent| {
        if verifies(&agent.public_key) {
            Some(SigningKey::Current)
        } else if agent.grace_key(now).is_some_and(&verifies) {
            Some(SigningKey::Previous)
        } else {
            None
        }
    };
    let mut agent = state
        .authz
        .agent(&*state.store, id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let mut key = which(&agent);
    if key.is_none() {
        // The cached row may predate a key rotation made on another replica.
        agent = state
            .authz
            .reload_agent(&*state.store, id)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        key = which(&agent);
    }
    let Some(key) = key else {
        // Recorded for the monitor (signature-failure bursts, compromised-key correlation),
        // at most SIGNATURE_FAILURE_AUDITS_PER_MINUTE per agent.
        if state
            .authz
            .signature_failure_audits
            .check(&id.to_string())
            .is_ok()
        {
            let rec = state.audit(
                Some(agent.org_id),
                "agent.request.signature_failed",
                "unauthenticated".into(),
                Some(format!("agent:{id}")),
                serde_json::json!({ "method": method, "path": path }),
                addr,
            );
            if let Err(e) = state.store.append_audit(&rec).await {
                tracing::warn!(agent = %id, error = %e, "recording a signature failure failed");
            }
        }
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "the signature does not verify under the agent's key (see docs/agents.md for the signed string)",
        ));
    };
    let agent = Agent::clone(&agent);
    match agent.status {
        AgentStatus::Active => Ok((agent, key)),
        AgentStatus::Pending => Err(refuse(
            StatusCode::FORBIDDEN,
            "agent_pending",
            "the agent has not proved possession of its key yet (AIP challenge)",
        )),
        AgentStatus::Suspended => Err(refuse(
            StatusCode::FORBIDDEN,
            "agent_suspended",
            "the agent is suspended",
        )),
        AgentStatus::Revoked => Err(refuse(
            StatusCode::FORBIDDEN,
            "agent_revoked",
            "the agent is revoked",
        )),
    }
}

impl FromRequest<AppState> for SignedRequest {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let h = &parts.headers;
        let (Some(id), Some(ts), Some(nonce), Some(sig)) = (
            header(h, HEADER_AGENT_ID)?,
            header(h, HEADER_TIMESTAMP)?,
            header(h, HEADER_NONCE)?,
            header(h, HEADER_SIGNATURE)?,
        ) else {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "signature_required",
                "agent requests need X-AIM-Agent-Id, X-AIM-Timestamp, X-AIM-Nonce and X-AIM-Signature",
            ));
        };
        if !is_agent_id(id) {
            return Err(ApiError::bad_request("X-AIM-Agent-Id is not an agent id (aim_…)").into());
        }
        let timestamp: i64 = ts.parse().map_err(|_| {
            ApiError::bad_request("X-AIM-Timestamp must be Unix seconds (an integer)")
        })?;
        if !valid_nonce(nonce) {
            return Err(ApiError::bad_request(
                "X-AIM-Nonce must be 16 to 128 characters of the base64/base64url alphabet",
            )
            .into());
        }
        let signature = decode_base64("signature", sig)
            .ok()
            .filter(|s| s.len() == 64)
            .ok_or_else(|| {
                ApiError::bad_request("X-AIM-Signature must be base64 of a 64-byte signature")
            })?;
        let (id, nonce) = (id.to_string(), nonce.to_string());
        if let Ok(params) = RawPathParams::from_request_parts(&mut parts, state).await
            && let Some((_, path_id)) = params.iter().find(|(k, _)| *k == "id")
            && path_id != id
        {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "agent_mismatch",
                "X-AIM-Agent-Id does not name the agent of this route",
            ));
        }
        let now = state.now_ms();
        let window = i64::try_from(state.config.signed_request_window_secs).unwrap_or(3600);
        if timestamp
            .checked_mul(1000)
            .is_none_or(|t| (t - now).abs() > window * 1000)
        {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "timestamp_out_of_window",
                &format!("X-AIM-Timestamp must be within {window} seconds of the server clock"),
            ));
        }
        let method = parts.method.as_str().to_string();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string());
        let addr = client_addr(&parts);
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rej| ApiError::new(rej.status(), "bad_request", rej.body_text()))?;
        let text = canonical_request(&id, &method, &path_and_query, timestamp, &nonce, &body)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let verifies =
            |key: &[u8]| agent_key(key).is_some_and(|k| k.verify(text.as_bytes(), &signature));
        let (agent, key) =
            authenticate_agent(state, &id, &method, &path_and_query, addr.clone(), verifies)
                .await?;
        Ok(SignedRequest {
            agent,
            key,
            method,
            path_and_query,
            timestamp,
            nonce,
            body,
            client_addr: addr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aim_core::keys::KeyPair;

    #[test]
    fn cached_agent_keys_decide_exactly_like_parsing_each_time() {
        let pair = KeyPair::from_seed(&[3; 32]);
        let other = KeyPair::from_seed(&[4; 32]);
        let bytes = pair.public().to_bytes();
        let sig = pair.sign(b"request");
        for _ in 0..2 {
            // First call decompresses, the second comes from the cache: same answers.
            let k = agent_key(&bytes).expect("a valid key");
            assert_eq!(k, PublicKey::from_bytes(&bytes).unwrap());
            assert!(k.verify(b"request", &sig));
            assert!(!k.verify(b"another request", &sig));
            assert!(!k.verify(b"request", &other.sign(b"request")));
        }
        // Wrong lengths and encodings that are not keys are refused, every time.
        assert!(agent_key(&bytes[..31]).is_none());
        assert!(agent_key(&[bytes.as_slice(), &[0]].concat()).is_none());
        let refused: Vec<[u8; 32]> = (0..=255u8)
            .map(|b| [b; 32])
            .filter(|e| PublicKey::from_bytes(e).is_err())
            .collect();
        assert!(!refused.is_empty(), "some sample encodings are not points");
        for e in &refused {
            assert!(agent_key(e).is_none());
            assert!(agent_key(e).is_none(), "a refusal is not cached as a key");
        }
    }

    #[test]
    fn the_agent_key_cache_stays_bounded_and_correct_past_its_size() {
        let keys: Vec<KeyPair> = (0..AGENT_KEY_CACHE_MAX as u32 + 10)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..4].copy_from_slice(&i.to_le_bytes());
                seed[31] = 0xa5;
                KeyPair::from_seed(&seed)
            })
            .collect();
        for k in &keys {
            assert_eq!(agent_key(&k.public().to_bytes()), Some(k.public()));
        }
        let first = &keys[0];
        let sig = first.sign(b"m");
        assert!(agent_key(&first.public().to_bytes()).is_some_and(|k| k.verify(b"m", &sig)));
    }
}
