//! Agents over real HTTP: registration, lifecycle and ownership, AIP challenge-response (every
//! reason code), signed requests (wrong key, other agent's key, replay, stale/future timestamps,
//! tampering, status, malformed headers), key rotation with its grace period, DID documents, and a
//! nonce replayed across two replicas sharing one PostgreSQL database. Negative cases first.

use std::time::Duration;

use aim_core::aip::{self, Challenge};
use aim_core::keys::{KeyPair, agent_id_for, encode_base64};
use aim_core::request_signing::{rotation_proof_input, sign_request};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Cred, Ctx};

/// A deterministic key per label.
pub fn key(label: u64) -> KeyPair {
    let mut seed = [42u8; 32];
    seed[..8].copy_from_slice(&label.to_le_bytes());
    KeyPair::from_seed(&seed)
}

pub fn id_of(k: &KeyPair) -> String {
    agent_id_for(&k.public().to_bytes())
}

pub fn fresh_nonce() -> String {
    use rand::Rng as _;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    encode_base64(&bytes)
}

pub async fn register(ctx: &Ctx, token: &str, name: &str, k: &KeyPair) -> Value {
    register_with(ctx, token, name, k, &["files:read"]).await
}

/// Registers an agent declaring `caps`.
pub async fn register_with(
    ctx: &Ctx,
    token: &str,
    name: &str,
    k: &KeyPair,
    caps: &[&str],
) -> Value {
    let (s, v) = ctx
        .post(
            "/api/v1/agents",
            Cred::Bearer(token),
            json!({ "name": name, "publicKey": encode_base64(&k.public().to_bytes()), "capabilities": caps }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

pub async fn challenge(ctx: &Ctx, token: &str, id: &str) -> Challenge {
    let (s, v) = ctx
        .post(
            &format!("/api/v1/agents/{id}/challenge"),
            Cred::Bearer(token),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    serde_json::from_value(v).unwrap()
}

pub async fn verify(ctx: &Ctx, token: &str, id: &str, resp: &aip::Response) -> (StatusCode, Value) {
    ctx.post(
        &format!("/api/v1/agents/{id}/verify"),
        Cred::Bearer(token),
        serde_json::to_value(resp).unwrap(),
    )
    .await
}

/// Registers and activates (challenge passed) an agent; returns its id.
pub async fn active_agent(ctx: &Ctx, token: &str, name: &str, k: &KeyPair) -> String {
    active_agent_with(ctx, token, name, k, &["files:read"]).await
}

/// Registers an agent declaring `caps` and activates it; returns its id.
pub async fn active_agent_with(
    ctx: &Ctx,
    token: &str,
    name: &str,
    k: &KeyPair,
    caps: &[&str],
) -> String {
    let id = register_with(ctx, token, name, k, caps).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = challenge(ctx, token, &id).await;
    let r = aip::respond(&c, k, "k", ctx.ts.clock.now_utc());
    let (s, v) = verify(ctx, token, &id, &r).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["agent"]["status"], "active");
    id
}

/// Sends a signed request. `tamper` may change the request after signing.
#[allow(clippy::too_many_arguments)]
pub async fn signed_raw(
    ctx: &Ctx,
    base: &str,
    signer: &KeyPair,
    agent_id: &str,
    method: Method,
    signed_path: &str,
    sent_path: &str,
    signed_body: &[u8],
    sent_body: &[u8],
    ts: i64,
    nonce: &str,
) -> (StatusCode, Value) {
    let headers = sign_request(
        signer,
        agent_id,
        method.as_str(),
        signed_path,
        ts,
        nonce,
        signed_body,
    )
    .unwrap();
    let mut rb = ctx
        .http
        .request(method, format!("{base}{sent_path}"))
        .body(sent_body.to_vec());
    for (n, v) in headers {
        rb = rb.header(n, v);
    }
    let resp = rb.send().await.unwrap();
    let s = resp.status();
    let v = resp.json::<Value>().await.unwrap_or(Value::Null);
    assert_ne!(s, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    (s, v)
}

/// A correctly signed request (fresh nonce, server clock) with a JSON body (none for GET).
pub async fn signed(
    ctx: &Ctx,
    k: &KeyPair,
    id: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let ts = ctx.ts.clock.now_secs();
    signed_raw(
        ctx,
        &ctx.ts.base,
        k,
        id,
        method,
        path,
        path,
        &bytes,
        &bytes,
        ts,
        &fresh_nonce(),
    )
    .await
}

async fn heartbeat(ctx: &Ctx, k: &KeyPair, id: &str) -> (StatusCode, Value) {
    let path = format!("/api/v1/agents/{id}/heartbeat");
    let ts = ctx.ts.clock.now_secs();
    signed_raw(
        ctx,
        &ctx.ts.base,
        k,
        id,
        Method::POST,
        &path,
        &path,
        b"{}",
        b"{}",
        ts,
        &fresh_nonce(),
    )
    .await
}

trait NowUtc {
    fn now_utc(&self) -> chrono::DateTime<chrono::Utc>;
}
impl NowUtc for aim_server::testkit::ManualClock {
    fn now_utc(&self) -> chrono::DateTime<chrono::Utc> {
        aim_core::clock::Clock::now(self)
    }
}

async fn registration_is_validated(ctx: Ctx) {
    let admin = ctx.admin().await;
    let k = key(1);
    let pk = encode_base64(&k.public().to_bytes());
    for (body, why) in [
        (json!({ "name": "a", "publicKey": "%%%" }), "not base64"),
        (
            json!({ "name": "a", "publicKey": encode_base64(&[1u8; 31]) }),
            "31 bytes",
        ),
        (
            json!({ "name": "a", "publicKey": format!("{pk}AAAA") }),
            "36 bytes",
        ),
        (json!({ "name": "bad name!", "publicKey": pk }), "name"),
        (json!({ "name": "", "publicKey": pk }), "empty name"),
        (
            json!({ "name": "a", "publicKey": pk, "capabilities": ["nocolon"] }),
            "capability",
        ),
        (
            json!({ "name": "a", "publicKey": pk, "privateKey": "x" }),
            "unknown field",
        ),
        (json!({ "name": "a" }), "missing key"),
    ] {
        let (s, v) = ctx.post("/api/v1/agents", Cred::Bearer(&admin), body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{why}: {v}");
    }
    // U+0000 in a query string (PostgreSQL text cannot hold it): 400, not a failed query.
    for path in ["/api/v1/agents/aim_a%00b", "/api/v1/agents?after=aim_a%00b"] {
        let (s, v) = ctx.get(path, Cred::Bearer(&admin)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
    }
    let (s, _) = ctx
        .post(
            "/api/v1/agents",
            Cred::None,
            json!({ "name": "a", "publicKey": pk }),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    ctx.user(&admin, "viewer@a.test", "viewer").await;
    let viewer = ctx.tokens("viewer@a.test", crate::common::STRONG).await.0;
    let (s, _) = ctx
        .post(
            "/api/v1/agents",
            Cred::Bearer(&viewer),
            json!({ "name": "a", "publicKey": pk }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let v = register(&ctx, &admin, "agent-1", &k).await;
    assert_eq!(v["id"], id_of(&k));
    assert_eq!(v["status"], "pending");
    assert_eq!(v["publicKey"], pk);
    assert!(
        v["did"]
            .as_str()
            .unwrap()
            .starts_with("did:web:127.0.0.1%3A")
    );
    assert!(
        v["did"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":agents:{}", id_of(&k)))
    );
    assert!(v.get("privateKey").is_none());
    // Same key again (any name) and same name again (any key): 409.
    let (s, _) = ctx
        .post(
            "/api/v1/agents",
            Cred::Bearer(&admin),
            json!({ "name": "other", "publicKey": pk }),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = ctx
        .post(
            "/api/v1/agents",
            Cred::Bearer(&admin),
            json!({ "name": "agent-1", "publicKey": encode_base64(&key(2).public().to_bytes()) }),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, v) = ctx.get("/api/v1/agents", Cred::Bearer(&viewer)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (s, _) = ctx
        .get("/api/v1/agents/not-an-id", Cred::Bearer(&admin))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = ctx
        .get(
            &format!("/api/v1/agents/{}", id_of(&key(3))),
            Cred::Bearer(&admin),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Recorded.
    let (_, audit) = ctx.get("/api/v1/audit/entries", Cred::Bearer(&admin)).await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["eventType"] == "agent.registered"),
        "{audit}"
    );
    ctx.stop().await;
}

async fn challenge_response_reason_codes(ctx: Ctx) {
    let admin = ctx.admin().await;
    let k = key(10);
    let id = register(&ctx, &admin, "aip", &k).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let now = ctx.ts.clock.now_utc();
    let code = |v: &Value| v["code"].as_str().unwrap_or_default().to_string();

    // Wrong key, presented as the agent's: SIGNATURE_INVALID.
    let c = challenge(&ctx, &admin, &id).await;
    assert_eq!(c.agent_did, format!("{}:agents:{id}", c.issuer_did));
    let mut r = aip::respond(&c, &key(11), "k", now);
    r.public_key = aip::respond(&c, &k, "k", now).public_key;
    let (s, v) = verify(&ctx, &admin, &id, &r).await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "SIGNATURE_INVALID"),
        "{v}"
    );
    // Another key, honestly presented: UNTRUSTED_KEY.
    let r = aip::respond(&c, &key(11), "k", now);
    let (s, v) = verify(&ctx, &admin, &id, &r).await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "UNTRUSTED_KEY"),
        "{v}"
    );
    // Tampered echo: MALFORMED (400).
    let mut r = aip::respond(&c, &k, "k", now);
    r.expires_at = "2099-01-01T00:00:00Z".into();
    let (s, v) = verify(&ctx, &admin, &id, &r).await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::BAD_REQUEST, "MALFORMED"),
        "{v}"
    );
    // A challenge this server never issued: UNTRUSTED_ISSUER.
    let forged = aip::issue_challenge(&c.agent_did, &c.issuer_did, now, &mut rand::rng());
    let (s, v) = verify(&ctx, &admin, &id, &aip::respond(&forged, &k, "k", now)).await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "UNTRUSTED_ISSUER"),
        "{v}"
    );
    // Expired: CHALLENGE_EXPIRED.
    let old = challenge(&ctx, &admin, &id).await;
    ctx.ts.clock.advance(Duration::from_secs(301));
    let (s, v) = verify(&ctx, &admin, &id, &aip::respond(&old, &k, "k", now)).await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "CHALLENGE_EXPIRED"),
        "{v}"
    );
    let (_, a) = ctx
        .get(&format!("/api/v1/agents/{id}"), Cred::Bearer(&admin))
        .await;
    assert_eq!(a["status"], "pending", "failures change nothing");

    // Success, then the same response again: NONCE_REPLAY.
    let c = challenge(&ctx, &admin, &id).await;
    let good = aip::respond(&c, &k, "k", ctx.ts.clock.now_utc());
    let (s, v) = verify(&ctx, &admin, &id, &good).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["verified"], true);
    assert_eq!(v["agent"]["status"], "active");
    assert!(v["agent"]["verifiedAt"].is_string());
    let (s, v) = verify(&ctx, &admin, &id, &good).await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "NONCE_REPLAY"),
        "{v}"
    );
    // A challenge of agent A cannot be answered on agent B's route.
    let k2 = key(12);
    let id2 = register(&ctx, &admin, "aip-2", &k2).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = challenge(&ctx, &admin, &id).await;
    let (s, v) = verify(
        &ctx,
        &admin,
        &id2,
        &aip::respond(&c, &k, "k", ctx.ts.clock.now_utc()),
    )
    .await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "UNTRUSTED_ISSUER"),
        "{v}"
    );

    let (_, audit) = ctx
        .get("/api/v1/audit/entries?limit=500", Cred::Bearer(&admin))
        .await;
    let events: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["eventType"].as_str())
        .collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == "agent.challenge.failed")
            .count(),
        7,
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == "agent.challenge.passed")
            .count(),
        1
    );
    ctx.stop().await;
}

async fn lifecycle_follows_rbac_and_ownership(ctx: Ctx) {
    let admin = ctx.admin().await;
    for (e, r) in [
        ("m1@a.test", "member"),
        ("m2@a.test", "member"),
        ("mg@a.test", "manager"),
        ("v@a.test", "viewer"),
    ] {
        ctx.user(&admin, e, r).await;
    }
    let mut toks = Vec::new();
    for e in ["m1@a.test", "m2@a.test", "mg@a.test", "v@a.test"] {
        toks.push(ctx.tokens(e, crate::common::STRONG).await.0);
    }
    let (m1, m2, mg, v) = (&toks[0], &toks[1], &toks[2], &toks[3]);
    let k = key(20);
    let id = active_agent(&ctx, m1, "owned-by-m1", &k).await;
    let p = |op: &str| format!("/api/v1/agents/{id}/{op}");
    // Not the owner, viewer, no credentials.
    assert_eq!(
        ctx.post(&p("suspend"), Cred::Bearer(m2), json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ctx.post(&p("suspend"), Cred::Bearer(v), json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ctx.post(&p("challenge"), Cred::Bearer(m2), json!({}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ctx.post(&p("revoke"), Cred::None, json!({})).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ctx.get(&format!("/api/v1/agents/{id}"), Cred::Bearer(v))
            .await
            .0,
        StatusCode::OK
    );
    // Owner suspends (with a reason); the suspended agent is refused; owner may not reinstate.
    let (s, a) = ctx
        .post(
            &p("suspend"),
            Cred::Bearer(m1),
            json!({ "reason": "incident 42" }),
        )
        .await;
    assert_eq!(
        (s, a["status"].as_str()),
        (StatusCode::OK, Some("suspended"))
    );
    assert_eq!(
        ctx.post(&p("suspend"), Cred::Bearer(m1), json!({})).await.0,
        StatusCode::CONFLICT
    );
    let (s, e) = heartbeat(&ctx, &k, &id).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("agent_suspended"))
    );
    assert_eq!(
        ctx.post(&p("activate"), Cred::Bearer(m1), json!({}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // Empty body accepted too; manager reinstates.
    let (s, a) = ctx
        .call(Method::POST, &p("activate"), Cred::Bearer(mg), None)
        .await;
    assert_eq!(
        (s, a["status"].as_str()),
        (StatusCode::OK, Some("active")),
        "{a}"
    );
    assert_eq!(heartbeat(&ctx, &k, &id).await.0, StatusCode::OK);
    // Revoke is final.
    let (s, a) = ctx.post(&p("revoke"), Cred::Bearer(m1), json!({})).await;
    assert_eq!((s, a["status"].as_str()), (StatusCode::OK, Some("revoked")));
    assert!(a["revokedAt"].is_string());
    for op in ["activate", "suspend", "revoke", "challenge"] {
        assert_eq!(
            ctx.post(&p(op), Cred::Bearer(&admin), json!({})).await.0,
            StatusCode::CONFLICT,
            "{op}"
        );
    }
    let (s, e) = heartbeat(&ctx, &k, &id).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("agent_revoked"))
    );
    assert_eq!(
        ctx.get(&format!("/agents/{id}/did.json"), Cred::None)
            .await
            .0,
        StatusCode::GONE
    );
    // A pending agent cannot be "activated" around the challenge, and cannot sign.
    let k2 = key(21);
    let id2 = register(&ctx, mg, "pending-one", &k2).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        ctx.post(
            &format!("/api/v1/agents/{id2}/activate"),
            Cred::Bearer(&admin),
            json!({})
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    let (s, e) = heartbeat(&ctx, &k2, &id2).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("agent_pending"))
    );
    let (_, audit) = ctx
        .get("/api/v1/audit/entries?limit=500", Cred::Bearer(&admin))
        .await;
    let events: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["eventType"].as_str())
        .collect();
    for ev in [
        "agent.suspended",
        "agent.activated",
        "agent.revoked",
        "agent.heartbeat",
    ] {
        assert!(events.contains(&ev), "{ev} missing: {events:?}");
    }
    ctx.stop().await;
}

async fn signed_requests_refuse_every_forgery(ctx: Ctx) {
    let admin = ctx.admin().await;
    let (ka, kb) = (key(30), key(31));
    let a = active_agent(&ctx, &admin, "a", &ka).await;
    let b = active_agent(&ctx, &admin, "b", &kb).await;
    let base = ctx.ts.base.clone();
    let path = format!("/api/v1/agents/{a}/heartbeat");
    let now = ctx.ts.clock.now_secs();
    let err = |v: &Value| v["error"].as_str().unwrap_or_default().to_string();
    let call = |signer: &'static KeyPair,
                id: String,
                sp: String,
                pp: String,
                sb: &'static [u8],
                pb: &'static [u8],
                ts: i64,
                nonce: String| {
        let ctx = &ctx;
        let base = base.clone();
        async move {
            signed_raw(
                ctx,
                &base,
                signer,
                &id,
                Method::POST,
                &sp,
                &pp,
                sb,
                pb,
                ts,
                &nonce,
            )
            .await
        }
    };
    let ka: &'static KeyPair = Box::leak(Box::new(ka));
    let kb: &'static KeyPair = Box::leak(Box::new(kb));
    let stranger: &'static KeyPair = Box::leak(Box::new(key(39)));

    // Wrong key; another agent's key with our id.
    let (s, v) = call(
        stranger,
        a.clone(),
        path.clone(),
        path.clone(),
        b"{}",
        b"{}",
        now,
        fresh_nonce(),
    )
    .await;
    assert_eq!(
        (s, err(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_signature")
    );
    let (s, v) = call(
        kb,
        a.clone(),
        path.clone(),
        path.clone(),
        b"{}",
        b"{}",
        now,
        fresh_nonce(),
    )
    .await;
    assert_eq!(
        (s, err(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_signature")
    );
    // Agent B, correctly signed, on agent A's route.
    let (s, v) = call(
        kb,
        b.clone(),
        path.clone(),
        path.clone(),
        b"{}",
        b"{}",
        now,
        fresh_nonce(),
    )
    .await;
    assert_eq!(
        (s, err(&v).as_str()),
        (StatusCode::FORBIDDEN, "agent_mismatch")
    );
    // Tampered body, path (query added), query changed.
    let (s, v) = call(
        ka,
        a.clone(),
        path.clone(),
        path.clone(),
        b"{}",
        b"{\"x\":1}",
        now,
        fresh_nonce(),
    )
    .await;
    assert_eq!(
        (s, err(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_signature")
    );
    let (s, v) = call(
        ka,
        a.clone(),
        path.clone(),
        format!("{path}?x=1"),
        b"{}",
        b"{}",
        now,
        fresh_nonce(),
    )
    .await;
    assert_eq!(
        (s, err(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_signature")
    );
    let (s, v) = call(
        ka,
        a.clone(),
        format!("{path}?x=1"),
        format!("{path}?x=2"),
        b"{}",
        b"{}",
        now,
        fresh_nonce(),
    )
    .await;
    assert_eq!(
        (s, err(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_signature")
    );
    // Old and future timestamps (window ±300 s).
    let (s, v) = call(
        ka,
        a.clone(),
        path.clone(),
        path.clone(),
        b"{}",
        b"{}",
        now - 301,
        fresh_nonce(),
    )
    .await;
    assert_eq!(
        (s, err(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "timestamp_out_of_window")
    );
    let (s, v) = call(
        ka,
        a.clone(),
        path.clone(),
        path.clone(),
        b"{}",
        b"{}",
        now + 301,
        fresh_nonce(),
    )
    .await;
    assert_eq!(
        (s, err(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "timestamp_out_of_window")
    );
    let (s, _) = call(
        ka,
        a.clone(),
        path.clone(),
        path.clone(),
        b"{}",
        b"{}",
        i64::MAX / 10,
        fresh_nonce(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Unknown (well-formed) agent id.
    let ghost = id_of(&key(38));
    let gp = format!("/api/v1/agents/{ghost}/heartbeat");
    let (s, _) = call(
        stranger,
        ghost.clone(),
        gp.clone(),
        gp,
        b"",
        b"",
        now,
        fresh_nonce(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Accepted once; the same signed timestamp and nonce again (inside the window) is a replay,
    // also re-signed over another body. The replay key is (timestamp, nonce): the same nonce
    // under a new timestamp is a new request only the agent's key can sign, accepted once too.
    let n = fresh_nonce();
    let (s, v) = call(
        ka,
        a.clone(),
        path.clone(),
        path.clone(),
        b"{}",
        b"{}",
        now,
        n.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], a);
    assert_eq!(v["signedWith"], "current");
    let (s, v) = call(
        ka,
        a.clone(),
        path.clone(),
        path.clone(),
        b"{}",
        b"{}",
        now,
        n.clone(),
    )
    .await;
    assert_eq!(
        (s, err(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "replayed_request")
    );
    let (s, v) = call(
        ka,
        a.clone(),
        path.clone(),
        path.clone(),
        b"",
        b"",
        now,
        n.clone(),
    )
    .await;
    assert_eq!(
        (s, err(&v).as_str()),
        (StatusCode::UNAUTHORIZED, "replayed_request")
    );
    for expect in [StatusCode::OK, StatusCode::UNAUTHORIZED] {
        let (s, v) = call(
            ka,
            a.clone(),
            path.clone(),
            path.clone(),
            b"",
            b"",
            now + 5,
            n.clone(),
        )
        .await;
        assert_eq!(s, expect, "{v}");
    }
    // The same nonce is fine for another agent (the cache is per agent).
    let pb = format!("/api/v1/agents/{b}/heartbeat");
    let (s, _) = call(kb, b.clone(), pb.clone(), pb, b"", b"", now, n.clone()).await;
    assert_eq!(s, StatusCode::OK);

    // Malformed or missing headers: 400/401, never 500.
    let good = sign_request(ka, &a, "POST", &path, now, &fresh_nonce(), b"").unwrap();
    for (drop, replace, expect) in [
        (Some("x-aim-signature"), None, 401),
        (Some("x-aim-agent-id"), None, 401),
        (Some("x-aim-nonce"), None, 401),
        (Some("x-aim-timestamp"), None, 401),
        (None, Some(("x-aim-timestamp", "yesterday")), 400),
        (None, Some(("x-aim-timestamp", "1.5")), 400),
        (None, Some(("x-aim-nonce", "short")), 400),
        (
            None,
            Some(("x-aim-nonce", "has spaces in it, sixteen+")),
            400,
        ),
        (None, Some(("x-aim-signature", "%%%")), 400),
        (None, Some(("x-aim-signature", "AAAA")), 400),
        (None, Some(("x-aim-agent-id", "agent-one")), 400),
    ] {
        let mut rb = ctx.http.post(format!("{base}{path}"));
        for (n, v) in &good {
            if Some(*n) == drop {
                continue;
            }
            match replace {
                Some((rn, rv)) if rn == *n => rb = rb.header(*n, rv),
                _ => rb = rb.header(*n, v),
            }
        }
        let resp = rb.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), expect, "{drop:?} {replace:?}");
    }
    // A user credential is not an agent signature.
    assert_eq!(
        ctx.post(&path, Cred::Bearer(&admin), json!({})).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Every accepted request and every replay is recorded.
    let (_, audit) = ctx
        .get("/api/v1/audit/entries?limit=500", Cred::Bearer(&admin))
        .await;
    let events: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["eventType"].as_str())
        .collect();
    // Accepted: the first request, the same nonce under a new timestamp, agent b's; replayed:
    // the first twice (same body, other body), the new-timestamp one once.
    assert_eq!(
        events.iter().filter(|e| **e == "agent.heartbeat").count(),
        3,
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == "agent.request.replayed")
            .count(),
        3,
        "{events:?}"
    );
    ctx.stop().await;
}

async fn rotate(
    ctx: &Ctx,
    signer: &KeyPair,
    id: &str,
    current: &KeyPair,
    new: &KeyPair,
    prover: &KeyPair,
) -> (StatusCode, Value) {
    let path = format!("/api/v1/agents/{id}/rotate-key");
    let nonce = fresh_nonce();
    let input = rotation_proof_input(
        id,
        &current.public().to_bytes(),
        &new.public().to_bytes(),
        &nonce,
    );
    let body = serde_json::to_vec(&json!({
        "newPublicKey": encode_base64(&new.public().to_bytes()),
        "proof": encode_base64(&prover.sign(input.as_bytes())),
    }))
    .unwrap();
    let ts = ctx.ts.clock.now_secs();
    signed_raw(
        ctx,
        &ctx.ts.base,
        signer,
        id,
        Method::POST,
        &path,
        &path,
        &body,
        &body,
        ts,
        &nonce,
    )
    .await
}

async fn key_rotation_with_grace_period(ctx: Ctx) {
    let admin = ctx.admin().await;
    let (k1, k2, k3) = (key(40), key(41), key(42));
    let id = active_agent(&ctx, &admin, "rotating", &k1).await;
    // Proof by a key other than the new one; request signed by a stranger.
    let (s, v) = rotate(&ctx, &k1, &id, &k1, &k2, &k3).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_proof")),
        "{v}"
    );
    let (s, _) = rotate(&ctx, &k3, &id, &k1, &k2, &k2).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // New key = current key.
    let (s, _) = rotate(&ctx, &k1, &id, &k1, &k1, &k1).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Good rotation.
    let (s, v) = rotate(&ctx, &k1, &id, &k1, &k2, &k2).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], id, "the id stays");
    assert_eq!(v["keyVersion"], 2);
    assert_eq!(v["publicKey"], encode_base64(&k2.public().to_bytes()));
    assert!(v["previousKeyValidUntil"].is_string());
    // New key works; old key works during the grace period but cannot rotate again.
    let (s, v) = heartbeat(&ctx, &k2, &id).await;
    assert_eq!(
        (s, v["signedWith"].as_str()),
        (StatusCode::OK, Some("current"))
    );
    let (s, v) = heartbeat(&ctx, &k1, &id).await;
    assert_eq!(
        (s, v["signedWith"].as_str()),
        (StatusCode::OK, Some("previous"))
    );
    let (s, v) = rotate(&ctx, &k1, &id, &k1, &k3, &k3).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("current_key_required"))
    );
    let (_, doc) = ctx.get(&format!("/agents/{id}/did.json"), Cred::None).await;
    assert_eq!(
        doc["verificationMethod"].as_array().unwrap().len(),
        2,
        "{doc}"
    );
    let (_, a) = ctx
        .get(&format!("/api/v1/agents/{id}"), Cred::Bearer(&admin))
        .await;
    assert_eq!(a["keyHistory"].as_array().unwrap().len(), 2, "{a}");
    assert!(a["keyHistory"][0]["retiredAt"].is_string());
    // After 7 days the old key is refused.
    ctx.ts.clock.advance(Duration::from_secs(7 * 86_400 + 1));
    let admin = ctx.admin().await;
    let (s, v) = heartbeat(&ctx, &k1, &id).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_signature"))
    );
    assert_eq!(heartbeat(&ctx, &k2, &id).await.0, StatusCode::OK);
    let (_, doc) = ctx.get(&format!("/agents/{id}/did.json"), Cred::None).await;
    assert_eq!(doc["verificationMethod"].as_array().unwrap().len(), 1);
    // A new AIP challenge must be answered with the new key.
    let c = challenge(&ctx, &admin, &id).await;
    let (s, v) = verify(
        &ctx,
        &admin,
        &id,
        &aip::respond(&c, &k1, "k", ctx.ts.clock.now_utc()),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("UNTRUSTED_KEY"))
    );
    let (_, audit) = ctx
        .get("/api/v1/audit/entries?limit=500", Cred::Bearer(&admin))
        .await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["eventType"] == "agent.key.rotated")
    );
    ctx.stop().await;
}

async fn did_documents_and_provider_metadata(ctx: Ctx) {
    let admin = ctx.admin().await;
    let k = key(50);
    let v = register(&ctx, &admin, "did-agent", &k).await;
    let id = v["id"].as_str().unwrap();
    let (s, doc) = ctx.get(&format!("/agents/{id}/did.json"), Cred::None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["id"], v["did"]);
    let vm = &doc["verificationMethod"][0];
    assert_eq!(vm["type"], "Ed25519VerificationKey2020");
    assert_eq!(vm["controller"], v["did"]);
    assert_eq!(
        format!("did:key:{}", vm["publicKeyMultibase"].as_str().unwrap()),
        k.public().did_key()
    );
    assert_eq!(doc["authentication"][0], vm["id"]);
    assert_eq!(
        ctx.get(&format!("/agents/{}/did.json", id_of(&key(51))), Cred::None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ctx.get("/agents/nope/did.json", Cred::None).await.0,
        StatusCode::BAD_REQUEST
    );
    let (s, w) = ctx.get("/.well-known/aip", Cred::None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["did"]
            .as_str()
            .unwrap()
            .starts_with(w["issuerDid"].as_str().unwrap())
    );
    assert_eq!(w["signedRequests"]["timestampWindowSeconds"], 300);
    assert_eq!(w["reasonCodes"].as_array().unwrap().len(), 6);
    ctx.stop().await;
}

crate::backends!(
    registration_is_validated,
    challenge_response_reason_codes,
    lifecycle_follows_rbac_and_ownership,
    signed_requests_refuse_every_forgery,
    key_rotation_with_grace_period,
    did_documents_and_provider_metadata,
    concurrent_requests_are_group_committed,
);

/// Two replicas on ONE PostgreSQL database: a nonce accepted by replica 1 is refused by replica 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonce_replayed_on_another_replica_is_refused() {
    let Some(ts) = aim_server::testkit::TestServer::postgres("nonce_replica").await else {
        return;
    };
    let ctx = Ctx::new(ts.expect("server"));
    let st = &ctx.ts.server.state;
    let home2 = tempfile::tempdir().unwrap();
    let mut cfg = aim_server::Config::for_home(home2.path()).unwrap();
    cfg.database_url = st.config.database_url.clone();
    cfg.database_max_connections = 5;
    cfg.master_key_file = st.config.master_key_file.clone();
    cfg.bootstrap_admin_email = aim_server::testkit::ADMIN_EMAIL.into();
    cfg.bootstrap_admin_password = Some(aim_server::testkit::ADMIN_PASSWORD.to_string().into());
    let replica2 = aim_server::start(cfg, ctx.ts.clock.clone()).await.unwrap();
    let base2 = format!("http://{}", replica2.addr);

    let admin = ctx.admin().await;
    let k = key(60);
    let id = active_agent(&ctx, &admin, "replicated", &k).await;
    let path = format!("/api/v1/agents/{id}/heartbeat");
    let now = ctx.ts.clock.now_secs();
    let n = fresh_nonce();
    let (s, v) = signed_raw(
        &ctx,
        &ctx.ts.base,
        &k,
        &id,
        Method::POST,
        &path,
        &path,
        b"",
        b"",
        now,
        &n,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = signed_raw(
        &ctx,
        &base2,
        &k,
        &id,
        Method::POST,
        &path,
        &path,
        b"",
        b"",
        now,
        &n,
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("replayed_request")),
        "{v}"
    );
    // And the other way round.
    let n = fresh_nonce();
    assert_eq!(
        signed_raw(
            &ctx,
            &base2,
            &k,
            &id,
            Method::POST,
            &path,
            &path,
            b"",
            b"",
            now,
            &n
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        signed_raw(
            &ctx,
            &ctx.ts.base,
            &k,
            &id,
            Method::POST,
            &path,
            &path,
            b"",
            b"",
            now,
            &n
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    let _ = replica2.shutdown().await;
    ctx.stop().await;
}

/// Concurrent signed requests share group commits and every one is answered correctly: N distinct
/// nonces all pass, then the same N again all fail.
async fn concurrent_requests_are_group_committed(ctx: Ctx) {
    let admin = ctx.admin().await;
    let k = key(70);
    let id = active_agent(&ctx, &admin, "busy", &k).await;
    let path = format!("/api/v1/agents/{id}/heartbeat");
    let now = ctx.ts.clock.now_secs();
    let nonces: Vec<String> = (0..64).map(|_| fresh_nonce()).collect();
    for expect in [StatusCode::OK, StatusCode::UNAUTHORIZED] {
        let futs = nonces.iter().map(|n| {
            signed_raw(
                &ctx,
                &ctx.ts.base,
                &k,
                &id,
                Method::POST,
                &path,
                &path,
                b"",
                b"",
                now,
                n,
            )
        });
        let results = futures_join_all(futs).await;
        assert!(results.iter().all(|(s, _)| *s == expect), "{expect}");
    }
    ctx.stop().await;
}

pub async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(f);
    }
    // Poll them concurrently on this task.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = set.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}
