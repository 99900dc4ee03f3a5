//! The aim-sdk 2.0.3 wire format (docs/COMPATIBILITY.md), spoken byte for byte as the Python
//! client speaks it (docs/sdk-wire.md): refusals first — no or wrong credential, wrong key, key of
//! another agent, tampered body, replay, stale timestamp, unknown agent, turned-off key
//! generation — then registration, decisions, polling, outcome reports, capability declarations
//! (never a grant), capability requests and MCP registrations, each in the organization's log.
//! The unmodified SDK itself runs against the server in tests/compat/aim_sdk/.

use aim_core::keys::{KeyPair, decode_base64, encode_base64};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Cred, Ctx};

/// A registered SDK agent: id and the key pair rebuilt from the returned private key.
struct SdkAgent {
    id: String,
    key: KeyPair,
}

async fn api_key(ctx: &Ctx, admin: &str, role: &str) -> String {
    let (s, v) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(admin),
            json!({ "name": format!("sdk-{role}"), "role": role }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["key"].as_str().unwrap().to_string()
}

/// `POST /api/v1/public/agents/register` the way the SDK sends it (`X-AIM-API-Key`, body in
/// insertion order); returns status, body and the `Cache-Control` header.
async fn register_raw(ctx: &Ctx, key: Option<&str>, body: Value) -> (StatusCode, Value, String) {
    let mut rb = ctx
        .http
        .post(ctx.ts.url("/api/v1/public/agents/register"))
        .json(&body);
    if let Some(k) = key {
        rb = rb.header("X-AIM-API-Key", k);
    }
    let resp = rb.send().await.unwrap();
    let s = resp.status();
    let cc = resp
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let v = resp.json::<Value>().await.unwrap_or(Value::Null);
    assert_ne!(s, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    (s, v, cc)
}

/// `PATCH /api/v1/org` with `body` (the `sdk` settings).
async fn patch_sdk(ctx: &Ctx, cred: Cred<'_>, body: Value) -> (StatusCode, Value) {
    ctx.call(Method::PATCH, "/api/v1/org", cred, Some(body))
        .await
}

fn sdk_body(name: &str, caps: &[&str]) -> Value {
    let mut b = json!({
        "name": name, "displayName": name,
        "description": format!("Agent {name} registered via AIM SDK"),
        "agentType": "ai_agent", "version": "1.0.0", "communityIntelligenceOptIn": false,
    });
    if !caps.is_empty() {
        b["capabilities"] = json!(caps);
    }
    b
}

async fn register(ctx: &Ctx, key: &str, name: &str, caps: &[&str]) -> SdkAgent {
    let (s, v, _) = register_raw(ctx, Some(key), sdk_body(name, caps)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let seed = decode_base64("privateKey", v["privateKey"].as_str().unwrap()).unwrap();
    let key = KeyPair::from_seed(&seed.try_into().unwrap());
    SdkAgent {
        id: v["agentId"].as_str().unwrap().to_string(),
        key,
    }
}

/// The SDK's verification timestamp (`datetime.utcnow().isoformat() + "Z"`) at the test clock,
/// with a distinct microsecond part per call so that two asks differ.
fn iso_now(ctx: &Ctx, micros: u32) -> String {
    let t = chrono::DateTime::from_timestamp(ctx.ts.clock.now_secs(), micros * 1000).unwrap();
    t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A verification request as aim-sdk 2.0.3 builds it. `context_wire` is the context as sent (the
/// SDK's insertion order); `message` is the exact string it signs (Python's sorted `json.dumps`).
struct Ask<'a> {
    agent_id: &'a str,
    capability: &'a str,
    resource: Option<&'a str>,
    context_wire: &'a str,
    timestamp: String,
}

impl Ask<'_> {
    /// The body bytes, field order as the SDK sends them.
    fn body(&self, signature: &str, public_key: &str) -> String {
        format!(
            r#"{{"agentId": {}, "capability": {}, "resource": {}, "context": {}, "timestamp": {}, "signature": {}, "publicKey": {}}}"#,
            json!(self.agent_id),
            json!(self.capability),
            json!(self.resource),
            self.context_wire,
            json!(self.timestamp),
            json!(signature),
            json!(public_key),
        )
    }
}

/// Python's `json.dumps(d, sort_keys=True, separators=(', ', ': '))` for a context whose sorted
/// form is `context_sorted` (computed by CPython, not by the server's code).
fn python_message(a: &Ask<'_>, context_sorted: &str) -> String {
    format!(
        r#"{{"action_type": {}, "agent_id": {}, "context": {}, "resource": {}, "timestamp": {}}}"#,
        json!(a.capability),
        json!(a.agent_id),
        context_sorted,
        json!(a.resource),
        json!(a.timestamp)
    )
}

async fn post_verification(ctx: &Ctx, body: String) -> (StatusCode, Value, Option<String>) {
    let resp = ctx
        .http
        .post(ctx.ts.url("/api/v1/sdk-api/verifications"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let s = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let v = resp.json::<Value>().await.unwrap_or(Value::Null);
    assert_ne!(s, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    (s, v, retry)
}

/// Signs and sends a verification with an empty context.
async fn ask(ctx: &Ctx, a: &SdkAgent, cap: &str, micros: u32) -> (StatusCode, Value) {
    let q = Ask {
        agent_id: &a.id,
        capability: cap,
        resource: Some("users"),
        context_wire: "{}",
        timestamp: iso_now(ctx, micros),
    };
    let sig = encode_base64(&a.key.sign(python_message(&q, "{}").as_bytes()));
    let (s, v, _) = post_verification(ctx, q.body(&sig, &a.key.public().to_base64())).await;
    (s, v)
}

/// Headers of the SDK's signed-request scheme over `METHOD\nPATH\nTS[\nBODY]`.
fn signed_headers(
    k: &KeyPair,
    id: &str,
    method: &str,
    path: &str,
    ts: i64,
    body: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut msg = format!("{method}\n{path}\n{ts}");
    if let Some(b) = body {
        msg.push('\n');
        msg.push_str(b);
    }
    vec![
        ("X-Agent-ID", id.to_string()),
        ("X-Signature", encode_base64(&k.sign(msg.as_bytes()))),
        ("X-Timestamp", ts.to_string()),
        ("X-Public-Key", k.public().to_base64()),
    ]
}

async fn send(
    ctx: &Ctx,
    method: Method,
    path: &str,
    headers: &[(&'static str, String)],
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut rb = ctx.http.request(method, ctx.ts.url(path));
    for (n, v) in headers {
        rb = rb.header(*n, v);
    }
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = rb.send().await.unwrap();
    let s = resp.status();
    let v = resp.json::<Value>().await.unwrap_or(Value::Null);
    assert_ne!(s, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    (s, v)
}

/// A signed SDK call (body = Python's `json.dumps(data, sort_keys=True)`, the bytes it signs).
async fn sdk_call(
    ctx: &Ctx,
    a: &SdkAgent,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let h = signed_headers(
        &a.key,
        &a.id,
        method.as_str(),
        path,
        ctx.ts.clock.now_secs(),
        body,
    );
    send(ctx, method, path, &h, body).await
}

async fn audit_events(ctx: &Ctx, admin: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut from = 0u64;
    loop {
        let (s, v) = ctx
            .get(
                &format!("/api/v1/audit/entries?limit=1000&fromSeq={from}"),
                Cred::Bearer(admin),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        out.extend(v["items"].as_array().cloned().unwrap_or_default());
        match v["nextFromSeq"].as_u64() {
            Some(n) => from = n,
            None => break,
        }
    }
    out
}

fn events_of<'a>(all: &'a [Value], ty: &str) -> Vec<&'a Value> {
    all.iter().filter(|e| e["eventType"] == ty).collect()
}

async fn registration_keys_and_settings(ctx: Ctx) {
    let admin = ctx.admin().await;
    let admin_key = api_key(&ctx, &admin, "admin").await;
    let member_key = api_key(&ctx, &admin, "member").await;
    let viewer_key = api_key(&ctx, &admin, "viewer").await;

    // No credential, a wrong key, a viewer's key: refused, nothing created.
    let body = sdk_body("reg-a", &["db:read"]);
    assert_eq!(
        register_raw(&ctx, None, body.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, v, _) = register_raw(&ctx, Some("aim_live_not-a-real-key"), body.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(
        register_raw(&ctx, Some(&viewer_key), body.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    // Malformed: bad name, bad capability, not JSON.
    let (s, v, _) = register_raw(&ctx, Some(&admin_key), sdk_body("bad name!", &[])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v, _) = register_raw(&ctx, Some(&admin_key), sdk_body("reg-a", &["NOT A CAP"])).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_capability"))
    );

    // An admin's key: the key pair is generated here, the private key returned once.
    let (s, v, cache) = register_raw(&ctx, Some(&admin_key), body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(cache, "no-store");
    let id = v["agentId"].as_str().unwrap().to_string();
    assert_eq!(v["id"], v["agentId"]);
    assert_eq!(v["status"], "active");
    assert_eq!(v["version"], "1.0.0");
    assert!(
        v["trustScore"].is_number() || v["trustScore"].is_null(),
        "{v}"
    );
    assert_eq!(v["capabilities"], json!(["db:read"]));
    let private = v["privateKey"].as_str().unwrap().to_string();
    let seed = decode_base64("privateKey", &private).unwrap();
    assert_eq!(seed.len(), 32);
    let kp = KeyPair::from_seed(&seed.clone().try_into().unwrap());
    // The SDK compares the strings: padded standard base64, 44 characters.
    assert_eq!(v["publicKey"].as_str().unwrap(), kp.public().to_base64());
    assert_eq!(v["publicKey"].as_str().unwrap().len(), 44);
    assert_eq!(id, kp.public().agent_id());
    assert!(
        v["aimUrl"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{v}"
    );
    // Same name again: a clear 409 the SDK can show.
    let (s, v, _) = register_raw(&ctx, Some(&admin_key), body.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["error"].is_string());

    // The SDK's restart check: GET /api/v1/agents/{id} with X-API-Key must not be 404.
    let (s, v) = ctx
        .get(&format!("/api/v1/agents/{id}"), Cred::XApiKey(&admin_key))
        .await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("active")));
    // The OAuth-mode lookup by name or id.
    let (s, v) = ctx
        .get("/api/v1/sdk-api/agents/reg-a", Cred::Bearer(&admin))
        .await;
    assert_eq!(
        (s, v["id"].as_str()),
        (StatusCode::OK, Some(id.as_str())),
        "{v}"
    );
    let (s, _) = ctx
        .get("/api/v1/sdk-api/agents/nobody", Cred::Bearer(&admin))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A member's key registers, but declared capabilities wait for a manager.
    let (s, v, _) =
        register_raw(&ctx, Some(&member_key), sdk_body("reg-m", &["files:write"])).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["capabilities"], json!([]));
    assert_eq!(v["pendingCapabilities"], json!(["files:write"]));

    // Settings: a member cannot change them; an admin sends declarations to the queue.
    let (s, _) = patch_sdk(
        &ctx,
        Cred::XApiKey(&member_key),
        json!({"sdk": {"serverGeneratedKeys": false}}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = patch_sdk(
        &ctx,
        Cred::Bearer(&admin),
        json!({"sdk": {"declaredCapabilities": "maybe"}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = patch_sdk(
        &ctx,
        Cred::Bearer(&admin),
        json!({"sdk": {"declaredCapabilities": "request"}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["sdk"],
        json!({"serverGeneratedKeys": true, "declaredCapabilities": "request"})
    );
    let (s, v, _) = register_raw(&ctx, Some(&admin_key), sdk_body("reg-q", &["db:read"])).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["capabilities"].clone(), v["pendingCapabilities"].clone()),
        (json!([]), json!(["db:read"]))
    );

    // Key generation off: only a client-generated key is accepted (pending until AIP proof).
    let (s, _) = patch_sdk(
        &ctx,
        Cred::Bearer(&admin),
        json!({"sdk": {"serverGeneratedKeys": false}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v, _) = register_raw(&ctx, Some(&admin_key), sdk_body("reg-off", &[])).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (
            StatusCode::FORBIDDEN,
            Some("server_generated_keys_disabled")
        ),
        "{v}"
    );
    let own = KeyPair::from_seed(&[9u8; 32]);
    let mut b = sdk_body("reg-own", &[]);
    b["publicKey"] = json!(own.public().to_base64());
    let (s, v, _) = register_raw(&ctx, Some(&admin_key), b).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "pending");
    assert!(v.get("privateKey").is_none(), "{v}");

    // The log: registrations via the SDK, the settings changes — and never a private key.
    let all = audit_events(&ctx, &admin).await;
    let regs = events_of(&all, "agent.registered");
    assert_eq!(regs.len(), 4, "reg-a, reg-m, reg-q, reg-own");
    assert!(regs.iter().all(|e| e["payload"]["via"] == "aim-sdk"));
    assert_eq!(
        regs.iter()
            .filter(|e| e["payload"]["keyOrigin"] == "server_generated")
            .count(),
        3
    );
    assert_eq!(events_of(&all, "org.sdk_settings_changed").len(), 2);
    let text = serde_json::to_string(&all).unwrap();
    assert!(
        !text.contains(&private),
        "a private key reached the audit log"
    );
    ctx.stop().await;
}

async fn verifications_replay_and_polling(ctx: Ctx) {
    let admin = ctx.admin().await;
    let manager = ctx.user_token(&admin, "mgr@sdk.test", "manager").await;
    let key = api_key(&ctx, &admin, "admin").await;
    let a = register(&ctx, &key, "ver-a", &["db:read", "payments:refund"]).await;
    let b = register(&ctx, &key, "ver-b", &["db:read"]).await;

    // A context with unicode, nested objects, floats in Python's spelling, booleans and null:
    // sent in insertion order, signed sorted — the bytes CPython produces.
    let wire = r#"{"z": "\u00e9\ud83d\ude00\u007f/", "n": {"b": 1.5e-05, "a": [1, true, null]}, "f": 1e+16, "q": "\"\\\n"}"#;
    let sorted = r#"{"f": 1e+16, "n": {"a": [1, true, null], "b": 1.5e-05}, "q": "\"\\\n", "z": "\u00e9\ud83d\ude00\u007f/"}"#;
    let q = Ask {
        agent_id: &a.id,
        capability: "db:read",
        resource: None,
        context_wire: wire,
        timestamp: iso_now(&ctx, 1),
    };
    let msg = python_message(&q, sorted);
    let good_sig = encode_base64(&a.key.sign(msg.as_bytes()));
    let pk_a = a.key.public().to_base64();

    // Refusals first. Signed by another agent's key, with that key claimed: 401.
    let forged = encode_base64(&b.key.sign(msg.as_bytes()));
    let (s, v, _) = post_verification(&ctx, q.body(&forged, &b.key.public().to_base64())).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    // The right key claimed, a wrong signature: 401.
    let (s, _, _) = post_verification(&ctx, q.body(&forged, &pk_a)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A tampered request (capability changed after signing): 401.
    let tampered = Ask {
        capability: "db:drop",
        ..Ask {
            timestamp: q.timestamp.clone(),
            ..q
        }
    };
    let (s, _, _) = post_verification(&ctx, tampered.body(&good_sig, &pk_a)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let q = Ask {
        agent_id: &a.id,
        capability: "db:read",
        resource: None,
        context_wire: wire,
        timestamp: iso_now(&ctx, 1),
    };
    // No signature (an API-key-only client): 401, an API key cannot act as an agent.
    let no_sig = format!(
        r#"{{"agentId": "{}", "capability": "db:read", "resource": null, "context": {{}}, "timestamp": "{}"}}"#,
        a.id, q.timestamp
    );
    let (s, v, _) = post_verification(&ctx, no_sig).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("signature_required"))
    );
    // Unknown agent: 401.
    let ghost = KeyPair::from_seed(&[7u8; 32]);
    let gq = Ask {
        agent_id: &ghost.public().agent_id(),
        capability: "db:read",
        resource: None,
        context_wire: "{}",
        timestamp: iso_now(&ctx, 2),
    };
    let gs = encode_base64(&ghost.sign(python_message(&gq, "{}").as_bytes()));
    let (s, _, _) = post_verification(&ctx, gq.body(&gs, &ghost.public().to_base64())).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Stale timestamp (10 minutes old, window 5): 401.
    let old = chrono::DateTime::from_timestamp(ctx.ts.clock.now_secs() - 600, 0)
        .unwrap()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let oq = Ask {
        timestamp: old,
        ..Ask {
            agent_id: &a.id,
            capability: "db:read",
            resource: None,
            context_wire: "{}",
            timestamp: String::new(),
        }
    };
    let os = encode_base64(&a.key.sign(python_message(&oq, "{}").as_bytes()));
    let (s, v, _) = post_verification(&ctx, oq.body(&os, &pk_a)).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("timestamp_out_of_window"))
    );
    // Malformed: context not an object, timestamp not a date.
    let bad_ctx = format!(
        r#"{{"agentId": "{}", "capability": "db:read", "resource": null, "context": [1], "timestamp": "{}", "signature": "{good_sig}", "publicKey": "{pk_a}"}}"#,
        a.id, q.timestamp
    );
    assert_eq!(
        post_verification(&ctx, bad_ctx).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post_verification(&ctx, "{not json".into()).await.0,
        StatusCode::BAD_REQUEST
    );

    // The genuine request: approved, once.
    let (s, v, _) = post_verification(&ctx, q.body(&good_sig, &pk_a)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["enforcementMode"].as_str()),
        (Some("approved"), Some("strict"))
    );
    let approved_id = v["id"].as_str().unwrap().to_string();
    let (s, v, _) = post_verification(&ctx, q.body(&good_sig, &pk_a)).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("replayed_request")),
        "{v}"
    );

    // Not granted: a denial is 403 with the decision body the SDK reads.
    let (s, v) = ask(&ctx, &a, "db:delete", 3).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["status"], "denied");
    assert!(v["denialReason"].as_str().unwrap().len() > 5, "{v}");
    assert!(v["id"].is_string() && v["enforcementMode"] == "strict");
    let denied_id = v["id"].as_str().unwrap().to_string();

    // Outcome reports: the SDK sends them without credentials.
    let result = |id: &str| format!("/api/v1/sdk-api/verifications/{id}/result");
    let report = json!({"result": "success", "result_summary": "ok", "error_message": null,
                        "timestamp": "2026-11-26T11:32:42.421684+00:00"});
    let (s, _) = ctx.post(&result("None"), Cred::None, report.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = ctx
        .post(&result(&denied_id), Cred::None, report.clone())
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a denied action has no outcome: {v}"
    );
    let (s, v) = ctx
        .post(
            &result(&approved_id),
            Cred::None,
            json!({"result": "maybe"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = ctx
        .post(&result(&approved_id), Cred::None, report.clone())
        .await;
    assert_eq!(
        (s, v["recorded"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{v}"
    );
    let (s, _) = ctx
        .post(&result(&approved_id), Cred::None, report.clone())
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "reported once");
    let (s, v) = ctx
        .get(
            &format!("/api/v1/actions/{approved_id}"),
            Cred::Bearer(&admin),
        )
        .await;
    assert_eq!((s, v["result"].as_str()), (StatusCode::OK, Some("success")));

    // Approval required by policy: pending, polled with the X-AIM-* signature, approved by a
    // manager who does not own the agent.
    let (s, v) = ctx
        .call(Method::PUT, "/api/v1/policies", Cred::Bearer(&admin), Some(json!({
            "language": "cedar",
            "source": "@id(\"reads\") permit(principal, action == Action::\"db:read\", resource);\n\
                       @id(\"refunds\") @effect(\"require_approval\")\n\
                       permit(principal, action == Action::\"payments:refund\", resource);"
        })))
        .await;
    assert!(s.is_success(), "{s} {v}");
    let (s, v) = ask(&ctx, &a, "payments:refund", 4).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("pending")),
        "{v}"
    );
    let pid = v["id"].as_str().unwrap().to_string();
    let poll = |signer: &KeyPair, agent: &str, vid: &str, ts: i64| {
        let path = format!("/api/v1/sdk-api/verifications/{vid}");
        let msg = format!(
            "GET\n{}\n{}\n{ts}",
            path.to_lowercase(),
            agent.to_lowercase()
        );
        let h = vec![
            ("X-AIM-Agent-ID", agent.to_string()),
            ("X-AIM-Timestamp", ts.to_string()),
            (
                "X-AIM-Signature",
                encode_base64(&signer.sign(msg.as_bytes())),
            ),
        ];
        (path, h)
    };
    let now = ctx.ts.clock.now_secs();
    // Another agent's key, and another agent polling a decision it does not own: refused.
    let (p, h) = poll(&b.key, &a.id, &pid, now);
    assert_eq!(
        send(&ctx, Method::GET, &p, &h, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (p, h) = poll(&b.key, &b.id, &pid, now);
    assert_eq!(
        send(&ctx, Method::GET, &p, &h, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (p, h) = poll(&a.key, &a.id, &pid, now);
    let (s, v) = send(&ctx, Method::GET, &p, &h, None).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("pending")),
        "{v}"
    );
    // The same poll again is a replay: refused, as a conflict (the SDK keeps polling).
    let (s, v) = send(&ctx, Method::GET, &p, &h, None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::CONFLICT, Some("replayed_request"))
    );
    let (s, v) = ctx
        .post(
            &format!("/api/v1/actions/{pid}/approve"),
            Cred::Bearer(&manager),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The SDK upper-cases nothing, but ids are compared lower-case: poll with the upper-case id.
    let (p, h) = poll(&a.key, &a.id, &pid.to_uppercase(), now + 2);
    let (s, v) = send(&ctx, Method::GET, &p, &h, None).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("approved")),
        "{v}"
    );
    assert!(
        v["approvedBy"].as_str().unwrap().starts_with("user:"),
        "{v}"
    );

    // An expired approval request reads as denied, not as pending forever.
    let (_, v) = ask(&ctx, &a, "payments:refund", 5).await;
    let late = v["id"].as_str().unwrap().to_string();
    ctx.ts.clock.advance(std::time::Duration::from_secs(
        ctx.ts.server.state.config.decisions.approval_timeout_secs + 1,
    ));
    let (p, h) = poll(&a.key, &a.id, &late, ctx.ts.clock.now_secs());
    let (s, v) = send(&ctx, Method::GET, &p, &h, None).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("denied")),
        "{v}"
    );

    // Everything is in the organization's log, attributed to the SDK wire, and the log verifies.
    let all = audit_events(&ctx, &admin).await;
    let decided = events_of(&all, "agent.action.verified");
    assert!(decided.iter().all(|e| e["payload"]["wire"] == "aim-sdk"));
    let statuses: Vec<&str> = decided
        .iter()
        .filter_map(|e| e["payload"]["status"].as_str())
        .collect();
    for st in ["approved", "denied", "pending"] {
        assert!(statuses.contains(&st), "{st} in {statuses:?}");
    }
    let results = events_of(&all, "agent.action.result");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["payload"]["authenticated"], false);
    assert!(!events_of(&all, "agent.request.replayed").is_empty());
    let (s, v) = ctx.get("/api/v1/audit/verify", Cred::Bearer(&admin)).await;
    assert_eq!((s, v["ok"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    ctx.stop().await;
}

async fn declarations_requests_and_mcp(ctx: Ctx) {
    let admin = ctx.admin().await;
    let manager = ctx.user_token(&admin, "mgr2@sdk.test", "manager").await;
    let key = api_key(&ctx, &admin, "admin").await;
    let a = register(&ctx, &key, "decl-a", &["db:read"]).await;
    let b = register(&ctx, &key, "decl-b", &[]).await;
    let reg = format!("/api/v1/sdk-api/agents/{}/capabilities/register", a.id);
    let body = r#"{"capabilityType": "db:write", "description": "Auto-registered by @perform_action decorator for f", "riskLevel": "medium"}"#;

    // Refusals: no credential; a wrong public key; another agent's id in the header; a tampered
    // body; a stale timestamp; a replay.
    let (s, _) = send(&ctx, Method::POST, &reg, &[], Some(body)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let now = ctx.ts.clock.now_secs();
    let mut h = signed_headers(&a.key, &a.id, "POST", &reg, now, Some(body));
    h[3].1 = b.key.public().to_base64();
    assert_eq!(
        send(&ctx, Method::POST, &reg, &h, Some(body)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let h = signed_headers(&b.key, &b.id, "POST", &reg, now, Some(body));
    assert_eq!(
        send(&ctx, Method::POST, &reg, &h, Some(body)).await.0,
        StatusCode::FORBIDDEN
    );
    let h = signed_headers(&a.key, &a.id, "POST", &reg, now, Some(body));
    let forged = body.replace("db:write", "db:admin");
    assert_eq!(
        send(&ctx, Method::POST, &reg, &h, Some(&forged)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let h_old = signed_headers(&a.key, &a.id, "POST", &reg, now - 900, Some(body));
    assert_eq!(
        send(&ctx, Method::POST, &reg, &h_old, Some(body)).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Declaring is not privilege: a pending request, never a grant; the same again names it.
    let (s, v) = send(&ctx, Method::POST, &reg, &h, Some(body)).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::CREATED, Some("pending")),
        "{v}"
    );
    let req_id = v["requestId"].as_str().unwrap().to_string();
    // The same bytes again (the SDK signs no nonce: a repeat in the same second): refused, as a
    // conflict the SDK reads as "already exists" — nothing is created twice.
    let (s, v) = send(&ctx, Method::POST, &reg, &h, Some(body)).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::CONFLICT, Some("replayed_request")),
        "{v}"
    );
    ctx.ts.clock.advance(std::time::Duration::from_secs(1));
    let (s, v) = sdk_call(&ctx, &a, Method::POST, &reg, Some(body)).await;
    assert_eq!(
        (s, v["requestId"].as_str()),
        (StatusCode::OK, Some(req_id.as_str())),
        "{v}"
    );
    let (_, v) = ctx
        .get(
            &format!("/api/v1/agents/{}/capabilities", a.id),
            Cred::Bearer(&admin),
        )
        .await;
    assert_eq!(
        v["grants"],
        json!(["db:read"]),
        "declaring granted nothing: {v}"
    );
    // Already granted: says so.
    let granted = r#"{"capabilityType": "db:read", "description": "x", "riskLevel": "low"}"#;
    ctx.ts.clock.advance(std::time::Duration::from_secs(1));
    let (s, v) = sdk_call(&ctx, &a, Method::POST, &reg, Some(granted)).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("granted")),
        "{v}"
    );

    // An explicit request (reason required), then 409 while pending; listed for the agent.
    let rq = format!("/api/v1/sdk-api/agents/{}/capability-requests", a.id);
    let (s, _) = sdk_call(
        &ctx,
        &a,
        Method::POST,
        &rq,
        Some(r#"{"capabilityType": "files:write"}"#),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let rbody = r#"{"capabilityType": "files:write", "reason": "needs to write nightly reports"}"#;
    ctx.ts.clock.advance(std::time::Duration::from_secs(1));
    let (s, v) = sdk_call(&ctx, &a, Method::POST, &rq, Some(rbody)).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::CREATED, Some("pending")),
        "{v}"
    );
    let files_req = v["id"].as_str().unwrap().to_string();
    ctx.ts.clock.advance(std::time::Duration::from_secs(1));
    let (s, _) = sdk_call(&ctx, &a, Method::POST, &rq, Some(rbody)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, v) = sdk_call(&ctx, &a, Method::GET, &rq, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["requests"].as_array().unwrap().len(), 2, "{v}");
    // The admin owns the agent: separation of duties; another manager approves.
    let approve = format!("/api/v1/capability-requests/{files_req}/approve");
    assert_eq!(
        ctx.post(&approve, Cred::Bearer(&admin), json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, v) = ctx.post(&approve, Cred::Bearer(&manager), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = ask(&ctx, &a, "files:write", 9).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("approved")),
        "{v}"
    );

    // An API key (no agent key) may file a request for an agent its user manages — not a
    // viewer's key, not a member who does not own the agent.
    let viewer = api_key(&ctx, &admin, "viewer").await;
    let member = ctx.user_token(&admin, "mem@sdk.test", "member").await;
    for (who, cred) in [
        ("viewer", Cred::XApiKey(&viewer)),
        ("member", Cred::Bearer(&member)),
    ] {
        let (s, v) = ctx
            .post(
                &format!("/api/v1/sdk-api/agents/{}/capability-requests", b.id),
                cred,
                json!({"capabilityType": "mail:send", "reason": "sends the weekly digest"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{who}: {v}");
    }
    let (s, v) = ctx
        .post(
            &format!("/api/v1/sdk-api/agents/{}/capability-requests", b.id),
            Cred::XApiKey(&key),
            json!({"capabilityType": "mail:send", "reason": "sends the weekly digest"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        v["requestedBy"].as_str().unwrap().starts_with("user:"),
        "{v}"
    );

    // MCP servers: registered unpinned by the agent; the same name again is 409 with its id.
    let mcp = format!("/api/v1/sdk-api/agents/{}/mcp-servers", a.id);
    let mbody = format!(
        r#"{{"capabilities": ["read_file"], "description": "MCP server 'files x' registered via SDK", "name": "files x", "registeredByAgent": "{}", "url": "stdio://npx/-y/@mcp/fs", "verificationMethod": "agent_attestation", "version": "1.0.0"}}"#,
        a.id
    );
    ctx.ts.clock.advance(std::time::Duration::from_secs(1));
    let (s, v) = sdk_call(&ctx, &a, Method::POST, &mcp, Some(&mbody)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let mcp_id = v["id"].as_str().unwrap().to_string();
    ctx.ts.clock.advance(std::time::Duration::from_secs(1));
    let (s, v) = sdk_call(&ctx, &a, Method::POST, &mcp, Some(&mbody)).await;
    assert_eq!(
        (s, v["existingId"].as_str()),
        (StatusCode::CONFLICT, Some(mcp_id.as_str())),
        "{v}"
    );
    let (s, _) = sdk_call(
        &ctx,
        &a,
        Method::POST,
        &mcp,
        Some(r#"{"mcp_server_ids": ["x"]}"#),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = sdk_call(&ctx, &a, Method::GET, &mcp, None).await;
    assert_eq!(
        (s, v["mcpServers"][0]["name"].as_str()),
        (StatusCode::OK, Some("files x"))
    );
    // By name: the SDK signs the unencoded query, `requests` sends it percent-encoded.
    let now = ctx.ts.clock.now_secs() + 1;
    let signed_path = format!("{mcp}/by-name?name=files x");
    let h = signed_headers(&a.key, &a.id, "GET", &signed_path, now, None);
    let (s, v) = send(
        &ctx,
        Method::GET,
        &format!("{mcp}/by-name?name=files%20x"),
        &h,
        None,
    )
    .await;
    assert_eq!(
        (s, v["hasCachedCapabilities"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{v}"
    );
    let (_, v) = ctx.get("/api/v1/mcp-servers", Cred::Bearer(&admin)).await;
    assert_eq!(v["servers"][0]["name"], "files x", "{v}");

    let all = audit_events(&ctx, &admin).await;
    assert_eq!(events_of(&all, "capability.requested").len(), 3);
    assert_eq!(events_of(&all, "mcp_server.registered").len(), 1);
    let (s, v) = ctx.get("/api/v1/audit/verify", Cred::Bearer(&admin)).await;
    assert_eq!((s, v["ok"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    ctx.stop().await;
}

crate::backends!(
    registration_keys_and_settings,
    verifications_replay_and_polling,
    declarations_requests_and_mcp,
);
