//! Action verification over real HTTP: refusals first (forged and replayed requests, malformed
//! bodies, inactive agents), then grants, Cedar policies, enforcement modes, trust thresholds,
//! rate limits, approvals with separation of duties and deadlines, outcome reports, and the
//! decisions' presence in the verifiable log.

use std::time::Duration;

use aim_core::keys::KeyPair;
use aim_server::testkit::TestServer;
use aim_store::PolicyLanguageName;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::agents::{active_agent_with, fresh_nonce, key, signed, signed_raw};
use crate::common::{Cred, Ctx};

fn verify_path(id: &str) -> String {
    format!("/api/v1/agents/{id}/actions/verify")
}

async fn ask(ctx: &Ctx, k: &KeyPair, id: &str, cap: &str, resource: &str) -> (StatusCode, Value) {
    ask_with(
        ctx,
        k,
        id,
        json!({ "capability": cap, "resource": resource }),
    )
    .await
}

async fn ask_with(ctx: &Ctx, k: &KeyPair, id: &str, body: Value) -> (StatusCode, Value) {
    signed(ctx, k, id, Method::POST, &verify_path(id), Some(&body)).await
}

/// Saves a policy version straight through the store (the policy routes are tested in
/// policies.rs) and applies the invalidation log as a replica would.
async fn save_policy(ctx: &Ctx, cedar: &str) {
    let state = &ctx.ts.server.state;
    let admin = state
        .store
        .find_user_by_email(aim_server::testkit::ADMIN_EMAIL)
        .await
        .unwrap()
        .unwrap();
    let bundle = aim_policy::validate(cedar, aim_policy::PolicyLanguage::Cedar).expect("valid");
    let audit = state.audit(
        Some(admin.org_id),
        "policy.updated",
        format!("user:{}", admin.id),
        Some(format!("org:{}", admin.org_id)),
        json!({}),
        None,
    );
    state
        .store
        .insert_policy_version(
            admin.org_id,
            PolicyLanguageName::Cedar,
            cedar,
            bundle.version(),
            &format!("user:{}", admin.id),
            state.now_ms(),
            &audit,
        )
        .await
        .unwrap();
    state
        .authz
        .sync(&*state.store, state.now_ms())
        .await
        .unwrap();
}

async fn set_mode(ctx: &Ctx, mode: &str) {
    let state = &ctx.ts.server.state;
    let admin = state
        .store
        .find_user_by_email(aim_server::testkit::ADMIN_EMAIL)
        .await
        .unwrap()
        .unwrap();
    let audit = state.audit(
        Some(admin.org_id),
        "org.enforcement_mode_changed",
        format!("user:{}", admin.id),
        None,
        json!({ "to": mode }),
        None,
    );
    state
        .store
        .set_enforcement_mode(admin.org_id, mode, &audit)
        .await
        .unwrap()
        .unwrap();
    state
        .authz
        .sync(&*state.store, state.now_ms())
        .await
        .unwrap();
}

fn codes(v: &Value) -> Vec<String> {
    v["reasonCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

async fn decisions(ctx: &Ctx, token: &str) -> Vec<Value> {
    let (s, v) = ctx.get("/api/v1/actions", Cred::Bearer(token)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["actions"].as_array().unwrap().clone()
}

async fn refusals_come_first(ctx: Ctx) {
    let admin = ctx.admin().await;
    let k = key(500);
    let id = active_agent_with(&ctx, &admin, "a1", &k, &["files:read"]).await;
    let path = verify_path(&id);
    let body = serde_json::to_vec(&json!({"capability": "files:read", "resource": "f"})).unwrap();
    let now = ctx.ts.clock.now_secs();

    // Signed by another key.
    let (s, v) = signed_raw(
        &ctx,
        &ctx.ts.base,
        &key(501),
        &id,
        Method::POST,
        &path,
        &path,
        &body,
        &body,
        now,
        &fresh_nonce(),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_signature"))
    );
    // Body changed after signing.
    let other = serde_json::to_vec(&json!({"capability": "files:write", "resource": "f"})).unwrap();
    let (s, _) = signed_raw(
        &ctx,
        &ctx.ts.base,
        &k,
        &id,
        Method::POST,
        &path,
        &path,
        &body,
        &other,
        now,
        &fresh_nonce(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Stale timestamp.
    let (s, v) = signed_raw(
        &ctx,
        &ctx.ts.base,
        &k,
        &id,
        Method::POST,
        &path,
        &path,
        &body,
        &body,
        now - 301,
        &fresh_nonce(),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("timestamp_out_of_window"))
    );
    // Replay: the first is decided, the same signed request again is refused.
    let nonce = fresh_nonce();
    let (s, v) = signed_raw(
        &ctx,
        &ctx.ts.base,
        &k,
        &id,
        Method::POST,
        &path,
        &path,
        &body,
        &body,
        now,
        &nonce,
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("approved")),
        "{v}"
    );
    let (s, v) = signed_raw(
        &ctx,
        &ctx.ts.base,
        &k,
        &id,
        Method::POST,
        &path,
        &path,
        &body,
        &body,
        now,
        &nonce,
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("replayed_request"))
    );

    // Malformed bodies: 400, and no decision recorded for them.
    let before = decisions(&ctx, &admin).await.len();
    for bad in [
        json!({"capability": "files", "resource": "f"}),
        json!({"capability": "files:*", "resource": "f"}),
        json!({"capability": "files:read", "resource": ""}),
        json!({"capability": "files:read", "resource": "f", "context": {"riskLevel": "tiny"}}),
        json!({"capability": "files:read", "resource": "f", "context": {"riskLevel": 3}}),
        json!({"capability": "files:read", "resource": "f", "context": {"blob": "x".repeat(20_000)}}),
        json!({"capability": "files:read"}),
        json!({"capability": "files:read", "resource": "f", "extra": 1}),
        json!([1, 2]),
        // U+0000 cannot be stored in PostgreSQL text: refused for the one request, instead of
        // failing the whole batch of other agents' decisions it would have been written with.
        json!({"capability": "files:read", "resource": "f\u{0}g"}),
        json!({"capability": "files:read", "resource": "f", "context": {"k\u{0}": 1}}),
    ] {
        let (s, v) = ask_with(&ctx, &k, &id, bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} → {v}");
    }
    assert_eq!(decisions(&ctx, &admin).await.len(), before);

    // Another agent's id in the path.
    let k2 = key(502);
    let id2 = active_agent_with(&ctx, &admin, "a2", &k2, &["files:read"]).await;
    let p2 = verify_path(&id2);
    let (s, _) = signed_raw(
        &ctx,
        &ctx.ts.base,
        &k,
        &id,
        Method::POST,
        &p2,
        &p2,
        &body,
        &body,
        now,
        &fresh_nonce(),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Suspended, then revoked: refused at once after the change (the cache is invalidated).
    let (s, _) = ctx
        .post(
            &format!("/api/v1/agents/{id}/suspend"),
            Cred::Bearer(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = ask(&ctx, &k, &id, "files:read", "f").await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("agent_suspended"))
    );
    let (s, _) = ctx
        .post(
            &format!("/api/v1/agents/{id}/revoke"),
            Cred::Bearer(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = ask(&ctx, &k, &id, "files:read", "f").await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("agent_revoked"))
    );
    ctx.stop().await;
}

async fn grants_and_the_default_policy(ctx: Ctx) {
    let admin = ctx.admin().await;
    let k = key(510);
    let id = active_agent_with(&ctx, &admin, "g", &k, &["files:read", "db:*"]).await;

    let (s, v) = ask(&ctx, &k, &id, "files:read", "file:///etc/motd").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "approved");
    assert_eq!(v["matchedPolicies"], json!(["default-permit-granted"]));
    assert_eq!(v["policyVersion"], 0);
    assert_eq!(v["enforcementMode"], "strict");
    assert_eq!(v["riskLevel"], "low");
    assert!(codes(&v).contains(&"PERMITTED".to_string()));

    // Not granted → denied, whatever the policies say.
    let (s, v) = ask(&ctx, &k, &id, "files:write", "file:///etc/motd").await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("denied")));
    assert_eq!(codes(&v), vec!["NO_GRANT"]);
    // A namespace grant covers every action of the namespace.
    let (_, v) = ask(&ctx, &k, &id, "db:select", "db/users").await;
    assert_eq!(v["status"], "approved");
    // Domain-qualified capabilities are other capabilities.
    let (_, v) = ask(&ctx, &k, &id, "example.com/db:select", "db/users").await;
    assert_eq!(v["status"], "denied");

    // Each decision is stored, listed, readable, and in the verifiable log.
    let list = decisions(&ctx, &admin).await;
    assert_eq!(list.len(), 4);
    let first = list.last().unwrap();
    let (s, one) = ctx
        .get(
            &format!("/api/v1/actions/{}", first["id"].as_str().unwrap()),
            Cred::Bearer(&admin),
        )
        .await;
    assert_eq!(
        (s, &one["capability"]),
        (StatusCode::OK, &json!("files:read"))
    );
    let (s, v) = ctx
        .get("/api/v1/actions?status=denied", Cred::Bearer(&admin))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["actions"].as_array().unwrap().len(), 2);
    let (s, _) = ctx
        .get("/api/v1/actions?status=maybe", Cred::Bearer(&admin))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, log) = ctx
        .get("/api/v1/audit/entries?limit=500", Cred::Bearer(&admin))
        .await;
    let recorded: Vec<&Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["eventType"] == "agent.action.verified")
        .collect();
    assert_eq!(recorded.len(), 4, "{log}");
    assert!(
        recorded
            .iter()
            .any(|e| e["payload"]["actionId"] == first["id"])
    );
    let (s, v) = ctx.get("/api/v1/audit/verify", Cred::Bearer(&admin)).await;
    assert_eq!((s, &v["ok"]), (StatusCode::OK, &json!(true)), "{v}");
    ctx.stop().await;
}

async fn policies_and_enforcement_modes(ctx: Ctx) {
    let admin = ctx.admin().await;
    let k = key(520);
    let id = active_agent_with(&ctx, &admin, "p", &k, &["db:*"]).await;
    save_policy(
        &ctx,
        r#"@id("db-any") permit(principal, action in Action::"db:*", resource);
@id("no-prod") forbid(principal, action, resource) when { resource.id like "prod/*" };"#,
    )
    .await;
    let (_, v) = ask(&ctx, &k, &id, "db:select", "dev/users").await;
    assert_eq!(v["status"], "approved", "{v}");
    assert_eq!(v["matchedPolicies"], json!(["db-any"]));
    assert_eq!(v["policyVersion"], 1);
    let (_, v) = ask(&ctx, &k, &id, "db:select", "prod/users").await;
    assert_eq!(v["status"], "denied");
    assert_eq!(codes(&v), vec!["FORBIDDEN_BY_POLICY"]);
    assert_eq!(v["matchedPolicies"], json!(["no-prod"]));

    // Monitoring: the policy denial is allowed AND flagged, never silently.
    set_mode(&ctx, "monitoring").await;
    let (_, v) = ask(&ctx, &k, &id, "db:select", "prod/users").await;
    assert_eq!(v["status"], "approved", "{v}");
    assert_eq!(v["alert"], true);
    assert!(codes(&v).contains(&"MONITORING_OVERRIDE".to_string()));
    // ... but a missing grant is still a denial.
    let (_, v) = ask(&ctx, &k, &id, "files:read", "dev/x").await;
    assert_eq!(
        (v["status"].as_str(), v["alert"].as_bool()),
        (Some("denied"), Some(false))
    );
    let (_, log) = ctx
        .get("/api/v1/audit/entries?limit=500", Cred::Bearer(&admin))
        .await;
    assert!(
        log["items"].as_array().unwrap().iter().any(|e| {
            e["eventType"] == "agent.action.verified" && e["payload"]["alert"] == true
        })
    );
    set_mode(&ctx, "strict").await;
    let (_, v) = ask(&ctx, &k, &id, "db:select", "prod/users").await;
    assert_eq!(v["status"], "denied");
    ctx.stop().await;
}

async fn trust_thresholds_by_risk(ctx: Ctx) {
    let admin = ctx.admin().await;
    let k = key(530);
    let id = active_agent_with(&ctx, &admin, "t", &k, &["bank:*"]).await;
    // A freshly verified agent scores 56.75 (docs/TRUST.md): enough for high risk (50), not for
    // critical (75).
    let (_, v) = ask(&ctx, &k, &id, "bank:read", "acct/1").await;
    assert_eq!(
        (v["status"].as_str(), v["riskLevel"].as_str()),
        (Some("approved"), Some("low")),
        "{v}"
    );
    let (_, v) = ask(&ctx, &k, &id, "bank:delete", "acct/1").await;
    assert_eq!(
        (v["status"].as_str(), v["riskLevel"].as_str()),
        (Some("approved"), Some("high")),
        "{v}"
    );
    let (_, v) = ask(&ctx, &k, &id, "bank:transfer", "acct/1").await;
    assert_eq!(v["status"], "denied", "{v}");
    assert_eq!(v["riskLevel"], "critical");
    assert!(codes(&v).contains(&"TRUST_TOO_LOW".to_string()), "{v}");
    assert_eq!(v["trustThreshold"], 75);
    // The agent may declare a higher risk than the server's, never a lower one.
    let (_, v) = ask_with(
        &ctx,
        &k,
        &id,
        json!({"capability": "bank:read", "resource": "a",
        "context": {"riskLevel": "critical"}}),
    )
    .await;
    assert_eq!(
        (v["status"].as_str(), v["riskLevel"].as_str()),
        (Some("denied"), Some("critical"))
    );
    let (_, v) = ask_with(
        &ctx,
        &k,
        &id,
        json!({"capability": "bank:transfer", "resource": "a",
        "context": {"riskLevel": "low"}}),
    )
    .await;
    assert_eq!(
        (v["status"].as_str(), v["riskLevel"].as_str()),
        (Some("denied"), Some("critical"))
    );
    ctx.stop().await;
}

async fn approvals_with_separation_of_duties(ctx: Ctx) {
    let admin = ctx.admin().await;
    let manager = ctx.user_token(&admin, "mgr@actions.test", "manager").await;
    let member = ctx.user_token(&admin, "mem@actions.test", "member").await;
    let k = key(540);
    // Registered by the admin: the admin owns it.
    let id = active_agent_with(&ctx, &admin, "ap", &k, &["payments:*"]).await;
    save_policy(
        &ctx,
        r#"@id("reads") permit(principal, action == Action::"payments:read", resource);
@id("refunds") @effect("require_approval")
permit(principal, action == Action::"payments:refund", resource);"#,
    )
    .await;
    let pending = |v: &Value| {
        assert_eq!(v["status"], "pending", "{v}");
        v["id"].as_str().unwrap().to_string()
    };

    // 1. Approved by a manager who is not the owner; the agent acts and reports once.
    let (_, v) = ask(&ctx, &k, &id, "payments:refund", "order/1").await;
    let a1 = pending(&v);
    assert!(codes(&v).contains(&"APPROVAL_REQUIRED".to_string()));
    let approve = |a: &str| format!("/api/v1/actions/{a}/approve");
    let (s, v) = ctx
        .post(&approve(&a1), Cred::Bearer(&admin), json!({}))
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("separation_of_duties"))
    );
    let (s, _) = ctx
        .post(&approve(&a1), Cred::Bearer(&member), json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let result_path = |a: &str| format!("/api/v1/agents/{id}/actions/{a}/result");
    let (s, v) = signed(
        &ctx,
        &k,
        &id,
        Method::POST,
        &result_path(&a1),
        Some(&json!({"result": "success"})),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::CONFLICT, Some("not_approved")),
        "{v}"
    );
    let (s, v) = ctx
        .post(&approve(&a1), Cred::Bearer(&manager), json!({"note": "ok"}))
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("approved")),
        "{v}"
    );
    let (s, _) = ctx
        .post(&approve(&a1), Cred::Bearer(&manager), json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "decided once");
    let poll = format!("/api/v1/agents/{id}/actions/{a1}");
    let (s, v) = signed(&ctx, &k, &id, Method::GET, &poll, None).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("approved")),
        "{v}"
    );
    for bad in [
        json!({"result": "maybe"}),
        json!({}),
        json!({"result": "success", "detail": "x".repeat(3000)}),
        json!({"result": "success", "detail": "a\u{0}b"}),
    ] {
        let (s, _) = signed(&ctx, &k, &id, Method::POST, &result_path(&a1), Some(&bad)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (s, v) = signed(
        &ctx,
        &k,
        &id,
        Method::POST,
        &result_path(&a1),
        Some(&json!({"result": "failure", "detail": "timeout"})),
    )
    .await;
    assert_eq!(
        (s, v["result"].as_str()),
        (StatusCode::OK, Some("failure")),
        "{v}"
    );
    let (s, v) = signed(
        &ctx,
        &k,
        &id,
        Method::POST,
        &result_path(&a1),
        Some(&json!({"result": "success"})),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::CONFLICT, Some("already_reported"))
    );

    // 2. Denied by the manager.
    let (_, v) = ask(&ctx, &k, &id, "payments:refund", "order/2").await;
    let a2 = pending(&v);
    let (s, v) = ctx
        .post(
            &format!("/api/v1/actions/{a2}/deny"),
            Cred::Bearer(&manager),
            json!({}),
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("denied")));
    let (s, _) = signed(
        &ctx,
        &k,
        &id,
        Method::POST,
        &result_path(&a2),
        Some(&json!({"result": "success"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // 3. Nobody decides before the deadline: expired, and approval is then refused.
    let (_, v) = ask(&ctx, &k, &id, "payments:refund", "order/3").await;
    let a3 = pending(&v);
    ctx.ts.clock.advance(Duration::from_secs(901));
    let (s, v) = signed(
        &ctx,
        &k,
        &id,
        Method::GET,
        &format!("/api/v1/agents/{id}/actions/{a3}"),
        None,
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("expired")),
        "{v}"
    );
    let (s, v) = ctx
        .post(&approve(&a3), Cred::Bearer(&manager), json!({}))
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::CONFLICT, Some("approval_expired")),
        "{v}"
    );
    let state = &ctx.ts.server.state;
    let expired = state
        .store
        .expire_actions(state.now_ms(), 100)
        .await
        .unwrap();
    assert!(expired.iter().any(|a| a.id.to_string() == a3));

    // Another agent cannot read or report on this agent's decisions.
    let k2 = key(541);
    let id2 = active_agent_with(&ctx, &admin, "ap2", &k2, &["payments:*"]).await;
    let (s, _) = signed(
        &ctx,
        &k2,
        &id2,
        Method::GET,
        &format!("/api/v1/agents/{id2}/actions/{a1}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Every step is in the log, and the log verifies.
    let (_, log) = ctx
        .get("/api/v1/audit/entries?limit=500", Cred::Bearer(&admin))
        .await;
    let events: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    for ev in [
        "agent.action.approved",
        "agent.action.denied",
        "agent.action.result",
        "agent.action.expired",
    ] {
        assert!(events.contains(&ev), "{ev} missing from {events:?}");
    }
    let (_, v) = ctx.get("/api/v1/audit/verify", Cred::Bearer(&admin)).await;
    assert_eq!(v["ok"], true, "{v}");
    ctx.stop().await;
}

async fn named_approvers_only(ctx: Ctx) {
    let admin = ctx.admin().await;
    let m1 = ctx
        .user_token(&admin, "alice@actions.test", "manager")
        .await;
    let m2 = ctx.user_token(&admin, "bob@actions.test", "manager").await;
    let k = key(545);
    let id = active_agent_with(&ctx, &admin, "na", &k, &["payments:*"]).await;
    save_policy(
        &ctx,
        r#"@id("refunds") @effect("require_approval") @approvers("bob@actions.test")
permit(principal, action == Action::"payments:refund", resource);"#,
    )
    .await;
    let (_, v) = ask(&ctx, &k, &id, "payments:refund", "order/9").await;
    assert_eq!(v["approvers"], json!(["bob@actions.test"]), "{v}");
    let a = v["id"].as_str().unwrap().to_string();
    let (s, v) = ctx
        .post(
            &format!("/api/v1/actions/{a}/approve"),
            Cred::Bearer(&m1),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_an_approver"))
    );
    let (s, _) = ctx
        .post(
            &format!("/api/v1/actions/{a}/approve"),
            Cred::Bearer(&m2),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    ctx.stop().await;
}

async fn other_orgs_see_nothing(ctx: Ctx) {
    let admin = ctx.admin().await;
    let k = key(550);
    let id = active_agent_with(&ctx, &admin, "o", &k, &["files:read"]).await;
    let (_, v) = ask(&ctx, &k, &id, "files:read", "f").await;
    let a = v["id"].as_str().unwrap().to_string();
    let other = ctx.other_org_admin().await;
    let (s, _) = ctx
        .get(&format!("/api/v1/actions/{a}"), Cred::Bearer(&other))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = ctx.get("/api/v1/actions", Cred::Bearer(&other)).await;
    assert_eq!(v["actions"], json!([]));
    ctx.stop().await;
}

crate::backends!(
    refusals_come_first,
    grants_and_the_default_policy,
    policies_and_enforcement_modes,
    trust_thresholds_by_risk,
    approvals_with_separation_of_duties,
    named_approvers_only,
    other_orgs_see_nothing,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_rate_limit_per_agent_and_capability() {
    let db = aim_store::testing::TestDb::sqlite().unwrap();
    let ts = TestServer::start(db, |c| c.decisions.rate_limit_agent_action_per_minute = 3)
        .await
        .unwrap();
    let ctx = Ctx::new(ts);
    let admin = ctx.admin().await;
    let k = key(560);
    let id = active_agent_with(&ctx, &admin, "r", &k, &["files:*"]).await;
    for _ in 0..3 {
        let (s, v) = ask(&ctx, &k, &id, "files:read", "f").await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("approved"))
        );
    }
    let resp = {
        let (s, v) = ask(&ctx, &k, &id, "files:read", "f").await;
        (s, v)
    };
    assert_eq!(resp.0, StatusCode::TOO_MANY_REQUESTS, "{}", resp.1);
    assert_eq!(resp.1["status"], "denied");
    assert_eq!(codes(&resp.1), vec!["RATE_LIMITED"]);
    // Another capability of the same agent has its own quota.
    let (s, _) = ask(&ctx, &k, &id, "files:list", "f").await;
    assert_eq!(s, StatusCode::OK);
    // The rate-limited attempt is recorded as a denial.
    let denied = ctx
        .get("/api/v1/actions?status=denied", Cred::Bearer(&admin))
        .await
        .1;
    assert_eq!(denied["actions"].as_array().unwrap().len(), 1);
    ctx.stop().await;
}

/// Two replicas on one PostgreSQL database: a suspension and a policy change made through one
/// reach the other's caches through the invalidation log (within a few sync intervals).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_the_other_replica() {
    let Some(ts) = TestServer::postgres("actions_replica").await else {
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
    let k = key(570);
    let id = active_agent_with(&ctx, &admin, "rep", &k, &["db:*"]).await;
    let path = verify_path(&id);
    let on2 = |cap: &'static str, resource: &'static str| {
        let (ctx, k, id, path, base2) = (&ctx, &k, id.clone(), path.clone(), base2.clone());
        async move {
            let body =
                serde_json::to_vec(&json!({"capability": cap, "resource": resource})).unwrap();
            let now = ctx.ts.clock.now_secs();
            signed_raw(
                ctx,
                &base2,
                k,
                &id,
                Method::POST,
                &path,
                &path,
                &body,
                &body,
                now,
                &fresh_nonce(),
            )
            .await
        }
    };
    // Replica 2 caches the agent and the default policy.
    let (s, v) = on2("db:select", "prod/t").await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("approved")),
        "{v}"
    );

    // A policy saved through replica 1 ...
    save_policy(
        &ctx,
        r#"@id("db-any") permit(principal, action in Action::"db:*", resource);
@id("no-prod") forbid(principal, action, resource) when { resource.id like "prod/*" };"#,
    )
    .await;
    let mut seen = false;
    for _ in 0..50 {
        let (_, v) = on2("db:select", "prod/t").await;
        if v["status"] == "denied" {
            assert_eq!(v["policyVersion"], 1);
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "replica 2 never applied the new policy");

    // ... and a suspension made on replica 1.
    let (s, _) = ctx
        .post(
            &format!("/api/v1/agents/{id}/suspend"),
            Cred::Bearer(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut refused = false;
    for _ in 0..50 {
        let (s, v) = on2("db:select", "dev/t").await;
        if s == StatusCode::FORBIDDEN {
            assert_eq!(v["error"], "agent_suspended");
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "replica 2 kept serving a suspended agent");
    let _ = replica2.shutdown().await;
    ctx.stop().await;
}
