//! The three agent-signature schemes of aim-sdk 2.0.3 (docs/sdk-wire.md §2.2, §2.4, §3), checked
//! with the same key rules, status rules, freshness window and nonce store as the native scheme
//! ([`crate::agent_auth`]):
//!
//! - **body signature** (`POST /api/v1/sdk-api/verifications`): Ed25519 over Python's sorted
//!   `json.dumps` of `{action_type, agent_id, context, resource, timestamp}`
//!   ([`aim_core::pyjson::sdk_verification_message`]); the body's `publicKey` must be the agent's
//!   registered key (current, or previous within its grace period) — never trusted by itself;
//! - **signed headers** (`X-Agent-ID`, `X-Signature`, `X-Timestamp`, `X-Public-Key`) over
//!   `METHOD\nPATH?QUERY\nUNIX_TS[\nBODY]`, the body as the raw bytes received;
//! - **poll headers** (`X-AIM-Agent-ID`, `X-AIM-Timestamp`, `X-AIM-Signature`) over
//!   `GET\nPATH\nAGENT_ID\nUNIX_TS`, ids lower-cased as the SDK does.
//!
//! Invariants: none of these schemes carries a nonce, so the replay nonce of a request is derived
//! from what was signed — `sdk-` + base64url(SHA-256(signed bytes)) — and claimed in the store like
//! a native nonce (shared by replicas, expiring with the window). An identical signed request is
//! therefore accepted once. Every failure answers 401 (403 for a non-active agent), never 500.

use aim_core::keys::{decode_base64, is_agent_id};
use aim_store::Agent;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::agent_auth::{SignedRequest, SigningKey, authenticate_agent};
use crate::auth::{Caller, authenticate_limited, client_addr};
use crate::error::{ApiError, Error};
use crate::state::AppState;

/// Headers of the signed-header scheme.
pub const H_AGENT_ID: &str = "x-agent-id";
pub const H_SIGNATURE: &str = "x-signature";
pub const H_TIMESTAMP: &str = "x-timestamp";
pub const H_PUBLIC_KEY: &str = "x-public-key";
/// Headers of the polling scheme.
pub const H_POLL_AGENT_ID: &str = "x-aim-agent-id";
pub const H_POLL_TIMESTAMP: &str = "x-aim-timestamp";
pub const H_POLL_SIGNATURE: &str = "x-aim-signature";

/// The replay nonce of a request signed without one: derived from the signed bytes.
pub fn derived_nonce(signed: &[u8]) -> String {
    let digest = Sha256::digest(signed);
    format!(
        "sdk-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

fn unauthorized(code: &'static str, msg: impl Into<String>) -> Error {
    ApiError::new(StatusCode::UNAUTHORIZED, code, msg).into()
}

fn text<'a>(h: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Error> {
    match h.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| unauthorized("unauthorized", format!("{name} is not valid text"))),
    }
}

/// Checks that `ts_ms` is inside the signed-request window (401 `timestamp_out_of_window`).
pub fn check_window(state: &AppState, ts_ms: i64, what: &str) -> Result<(), Error> {
    let window = i64::try_from(state.config.signed_request_window_secs).unwrap_or(3600);
    if (ts_ms - state.now_ms()).abs() > window.saturating_mul(1000) {
        return Err(unauthorized(
            "timestamp_out_of_window",
            format!("{what} must be within {window} seconds of the server clock"),
        ));
    }
    Ok(())
}

fn unix_secs(ts: &str, what: &str) -> Result<i64, Error> {
    ts.parse::<i64>()
        .ok()
        .filter(|t| t.checked_mul(1000).is_some())
        .ok_or_else(|| unauthorized("unauthorized", format!("{what} must be Unix seconds")))
}

fn signature_bytes(s: &str, what: &str) -> Result<Vec<u8>, Error> {
    decode_base64("signature", s)
        .ok()
        .filter(|b| b.len() == 64)
        .ok_or_else(|| {
            unauthorized(
                "invalid_signature",
                format!("{what} must be base64 of a 64-byte Ed25519 signature"),
            )
        })
}

fn agent_id_of(s: &str, what: &str) -> Result<String, Error> {
    let id = s.trim().to_ascii_lowercase();
    if is_agent_id(&id) {
        Ok(id)
    } else {
        Err(unauthorized(
            "unauthorized",
            format!("{what} is not an agent id"),
        ))
    }
}

/// Verifies `signature` over any of `messages` under a key of agent `id`, optionally pinned to the
/// key the client says it used (`claimed_key`, which must then be one of the agent's keys).
#[allow(clippy::too_many_arguments)]
async fn verify_agent(
    state: &AppState,
    id: &str,
    method: &str,
    path: &str,
    addr: Option<String>,
    claimed_key: Option<&[u8]>,
    messages: &[&[u8]],
    signature: &[u8],
) -> Result<(Agent, SigningKey), Error> {
    authenticate_agent(state, id, method, path, addr, |key: &[u8]| {
        claimed_key.is_none_or(|c| c == key)
            && crate::agent_auth::agent_key(key)
                .is_some_and(|k| messages.iter().any(|m| k.verify(m, signature)))
    })
    .await
}

/// The parts of a `POST /api/v1/sdk-api/verifications` body that authenticate it.
pub struct BodySignature<'a> {
    pub agent_id: &'a str,
    pub public_key: &'a str,
    pub signature: &'a str,
    /// The exact message (see [`aim_core::pyjson::sdk_verification_message`]).
    pub message: &'a str,
    /// The body's `timestamp`, already parsed to Unix milliseconds.
    pub timestamp_ms: i64,
}

/// Authenticates a verification request by its body signature and turns it into a
/// [`SignedRequest`] (nonce derived from the message) for the shared decision path.
pub async fn body_signed(
    state: &AppState,
    parts: &Parts,
    body: Bytes,
    b: BodySignature<'_>,
) -> Result<SignedRequest, Error> {
    let id = agent_id_of(b.agent_id, "agentId")?;
    check_window(state, b.timestamp_ms, "timestamp")?;
    let key = decode_base64("publicKey", b.public_key)
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| unauthorized("invalid_signature", "publicKey must be base64 of 32 bytes"))?;
    let signature = signature_bytes(b.signature, "signature")?;
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let addr = client_addr(parts);
    let (agent, which) = verify_agent(
        state,
        &id,
        &method,
        &path,
        addr.clone(),
        Some(&key),
        &[b.message.as_bytes()],
        &signature,
    )
    .await?;
    Ok(SignedRequest {
        agent,
        key: which,
        method,
        path_and_query: path,
        timestamp: b.timestamp_ms.div_euclid(1000),
        nonce: derived_nonce(b.message.as_bytes()),
        body,
        client_addr: addr,
    })
}

/// Authenticates a status poll (`GET /api/v1/sdk-api/verifications/{id}`) by the `X-AIM-*`
/// headers; `verification_id` is the path segment as received.
pub async fn poll_signed(
    state: &AppState,
    parts: &Parts,
    verification_id: &str,
) -> Result<SignedRequest, Error> {
    let h = &parts.headers;
    let (Some(agent), Some(ts), Some(sig)) = (
        text(h, H_POLL_AGENT_ID)?,
        text(h, H_POLL_TIMESTAMP)?,
        text(h, H_POLL_SIGNATURE)?,
    ) else {
        return Err(unauthorized(
            "signature_required",
            "polling needs X-AIM-Agent-ID, X-AIM-Timestamp and X-AIM-Signature",
        ));
    };
    let id = agent_id_of(agent, "X-AIM-Agent-ID")?;
    let secs = unix_secs(ts, "X-AIM-Timestamp")?;
    check_window(state, secs * 1000, "X-AIM-Timestamp")?;
    let signature = signature_bytes(sig, "X-AIM-Signature")?;
    let path = format!(
        "/api/v1/sdk-api/verifications/{}",
        verification_id.to_lowercase()
    );
    let message = format!("GET\n{path}\n{id}\n{secs}");
    let addr = client_addr(parts);
    let (agent, key) = verify_agent(
        state,
        &id,
        "GET",
        &path,
        addr.clone(),
        None,
        &[message.as_bytes()],
        &signature,
    )
    .await?;
    Ok(SignedRequest {
        agent,
        key,
        method: "GET".into(),
        path_and_query: path,
        timestamp: secs,
        nonce: derived_nonce(message.as_bytes()),
        body: Bytes::new(),
        client_addr: addr,
    })
}

/// The caller of an `/api/v1/sdk-api/agents/{id}/…` route: the agent itself (signed headers), or
/// a user / API key of the agent's organization with the `agents.create` right that manages the
/// agent (`X-API-Key` or `Authorization: Bearer`, what an aim-sdk client without keys sends).
pub enum SdkCaller {
    Agent(SignedRequest),
    User {
        caller: Caller,
        agent: Agent,
        body: Bytes,
    },
}

impl SdkCaller {
    /// The agent the route acts for.
    pub fn agent(&self) -> &Agent {
        match self {
            SdkCaller::Agent(s) => &s.agent,
            SdkCaller::User { agent, .. } => agent,
        }
    }

    /// The raw body.
    pub fn body(&self) -> &Bytes {
        match self {
            SdkCaller::Agent(s) => &s.body,
            SdkCaller::User { body, .. } => body,
        }
    }

    /// The audit actor (and `requestedBy`) of what this caller does.
    pub fn actor(&self) -> String {
        match self {
            SdkCaller::Agent(s) => s.actor(),
            SdkCaller::User { caller, .. } => caller.actor(),
        }
    }

    /// The body as JSON (400 when it is not the expected shape; an empty body reads as `{}`).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        let b = self.body();
        let bytes: &[u8] = if b.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            b
        };
        crate::routes::request_json(bytes)
    }

    /// Records `event_type` and applies `op` in one transaction (claiming the agent's derived
    /// nonce when the agent signed). `Ok(false)`: the op's precondition did not hold, nothing but
    /// the nonce was written.
    pub async fn commit_op(
        self,
        state: &AppState,
        event_type: &str,
        payload: serde_json::Value,
        op: aim_store::DecisionOp,
    ) -> Result<bool, Error> {
        match self {
            SdkCaller::Agent(s) => Ok(matches!(
                s.commit_op(state, event_type, payload, op)
                    .await
                    .map_err(replay_as_conflict)?,
                crate::agent_auth::Committed::Applied(_)
            )),
            SdkCaller::User { caller, agent, .. } => {
                let audit = state.audit(
                    Some(agent.org_id),
                    event_type,
                    caller.actor(),
                    Some(format!("agent:{}", agent.id)),
                    payload,
                    caller.client_addr.clone(),
                );
                state.writer.commit_record(audit, op).await
            }
        }
    }
}

impl SdkCaller {
    /// Records a read (`event_type`) for an agent caller, claiming its derived nonce; a user
    /// caller's reads are not recorded (as natively).
    pub async fn record(
        self,
        state: &AppState,
        event_type: &str,
        payload: serde_json::Value,
    ) -> Result<(), Error> {
        if let SdkCaller::Agent(s) = self {
            s.commit(state, event_type, payload)
                .await
                .map_err(replay_as_conflict)?;
        }
        Ok(())
    }
}

/// The signed-header scheme has no nonce and a timestamp in whole seconds, so the same call made
/// twice in one second is byte for byte a replay (likewise a status poll). It is still refused (it
/// does nothing), but as 409 `replayed_request`: every route of these schemes is idempotent, and
/// the SDK reads 409 as "already exists" (or keeps polling) where a 401 would read as bad
/// credentials. Verifications are not idempotent: their replays stay 401.
pub fn replay_as_conflict(e: Error) -> Error {
    match e {
        Error::Api(a) if a.code == "replayed_request" => ApiError::new(
            StatusCode::CONFLICT,
            "replayed_request",
            "an identical signed request was already accepted this second (aim-sdk signs no \
             nonce); nothing was done again",
        )
        .into(),
        other => other,
    }
}

/// Percent-decodes a path and query for comparison with what the SDK signed (it signs the
/// unencoded endpoint; `requests` encodes spaces and non-ASCII in the URL it sends).
fn decoded(path_and_query: &str) -> Option<String> {
    let d = percent_encoding::percent_decode_str(path_and_query)
        .decode_utf8()
        .ok()?;
    (d != path_and_query).then(|| d.into_owned())
}

impl FromRequest<AppState> for SdkCaller {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let path_id = axum::extract::RawPathParams::from_request_parts(&mut parts, state)
            .await
            .ok()
            .and_then(|p| {
                p.iter()
                    .find(|(k, _)| *k == "id")
                    .map(|(_, v)| v.to_string())
            })
            .unwrap_or_default();
        let addr = client_addr(&parts);
        let h = &parts.headers;
        let signed = h.contains_key(H_SIGNATURE) || h.contains_key(H_AGENT_ID);
        if !signed {
            let caller = authenticate_limited(state, h, addr).await?;
            // Acting for an agent is a writer's right (viewers never own agents); beyond that the
            // user must manage this agent (its owner, or a manager/admin).
            caller.authorize(crate::rbac::Action::AgentsCreate)?;
            let agent = crate::routes::agents::load(state, &caller, &path_id).await?;
            crate::routes::agents::check_manages(&caller, &agent)?;
            let body = read_body(parts, body, state).await?;
            return Ok(SdkCaller::User {
                caller,
                agent,
                body,
            });
        }
        let (Some(id), Some(sig), Some(ts), Some(pk)) = (
            text(h, H_AGENT_ID)?,
            text(h, H_SIGNATURE)?,
            text(h, H_TIMESTAMP)?,
            text(h, H_PUBLIC_KEY)?,
        ) else {
            return Err(unauthorized(
                "signature_required",
                "signed aim-sdk requests need X-Agent-ID, X-Signature, X-Timestamp and X-Public-Key",
            ));
        };
        let id = agent_id_of(id, "X-Agent-ID")?;
        if path_id != id {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "agent_mismatch",
                "X-Agent-ID does not name the agent of this route",
            )
            .into());
        }
        let secs = unix_secs(ts, "X-Timestamp")?;
        check_window(state, secs * 1000, "X-Timestamp")?;
        let signature = signature_bytes(sig, "X-Signature")?;
        let key = decode_base64("X-Public-Key", pk)
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or_else(|| {
                unauthorized(
                    "invalid_signature",
                    "X-Public-Key must be base64 of 32 bytes",
                )
            })?;
        let method = parts.method.as_str().to_string();
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string());
        let body = read_body(parts, body, state).await?;
        // The message with the raw body; without a body line when none was sent, and for `{}`
        // (the SDK omits the line for an empty dict but still sends `{}`); each for the path as
        // received and as the SDK wrote it before `requests` percent-encoded it.
        let mut messages: Vec<Vec<u8>> = Vec::with_capacity(4);
        let paths: Vec<String> = std::iter::once(pq.clone()).chain(decoded(&pq)).collect();
        for p in &paths {
            let head = format!("{method}\n{p}\n{secs}");
            if body.is_empty() || body.as_ref() == b"{}" {
                messages.push(head.clone().into_bytes());
            }
            if !body.is_empty() {
                let mut m = head.into_bytes();
                m.push(b'\n');
                m.extend_from_slice(&body);
                messages.push(m);
            }
        }
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let (agent, which) = verify_agent(
            state,
            &id,
            &method,
            &pq,
            addr.clone(),
            Some(&key),
            &refs,
            &signature,
        )
        .await?;
        // The nonce covers everything signed, whichever variant verified.
        let mut all = format!("{method}\n{pq}\n{secs}\n").into_bytes();
        all.extend_from_slice(&body);
        Ok(SdkCaller::Agent(SignedRequest {
            agent,
            key: which,
            method,
            path_and_query: pq,
            timestamp: secs,
            nonce: derived_nonce(&all),
            body,
            client_addr: addr,
        }))
    }
}

async fn read_body(parts: Parts, body: axum::body::Body, state: &AppState) -> Result<Bytes, Error> {
    Bytes::from_request(Request::from_parts(parts, body), state)
        .await
        .map_err(|rej| ApiError::new(rej.status(), "bad_request", rej.body_text()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_nonces_differ_per_message_and_fit_the_nonce_column() {
        let a = derived_nonce(b"GET\n/x\n1");
        let b = derived_nonce(b"GET\n/x\n2");
        assert_ne!(a, b);
        assert_eq!(a, derived_nonce(b"GET\n/x\n1"));
        assert!(a.starts_with("sdk-") && a.len() == 4 + 43, "{a}");
    }

    #[test]
    fn decoding_reverses_what_requests_encodes() {
        assert_eq!(
            decoded("/a/by-name?name=my%20server").as_deref(),
            Some("/a/by-name?name=my server")
        );
        assert_eq!(decoded("/a/by-name?name=fs"), None);
        assert_eq!(
            decoded("/a?x=%FF"),
            None,
            "not UTF-8: only the raw form is tried"
        );
    }
}
