//! Capability grants and requests over real HTTP: grant/revoke by managers only, with the grant
//! grammar and URL-encoded grants; other organizations' agents are 404; revoked agents are frozen;
//! agent-signed requests (reason required, duplicates, replays, already-granted); separation of
//! duties on approval; registration by a member creates requests instead of grants. Every change
//! is in the audit log (which still verifies) and invalidates the agent in the caches.

use aim_store::{AuditRecord, CacheKind, NewUser, Organization, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::agents::{
    active_agent_with, fresh_nonce, futures_join_all, key, register_with, signed, signed_raw,
};
use crate::common::{Cred, Ctx, STRONG};
use crate::policies::{audit_events, audit_ok};

fn caps_path(id: &str) -> String {
    format!("/api/v1/agents/{id}/capabilities")
}

fn req_path(id: &str) -> String {
    format!("/api/v1/agents/{id}/capability-requests")
}

async fn delete(ctx: &Ctx, token: &str, path: &str) -> (StatusCode, Value) {
    ctx.call(Method::DELETE, path, Cred::Bearer(token), None)
        .await
}

async fn grants(ctx: &Ctx, token: &str, id: &str) -> Value {
    let (s, v) = ctx.get(&caps_path(id), Cred::Bearer(token)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// Cache invalidations written for one agent so far.
async fn agent_invalidations(ctx: &Ctx, id: &str) -> usize {
    ctx.ts
        .server
        .state
        .store
        .cache_events_since(0)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == CacheKind::Agent && e.key == id)
        .count()
}

/// A second organization with its admin; returns the admin's access token.
async fn other_org(ctx: &Ctx) -> String {
    let st = &ctx.ts.server.state;
    let now = st.now_ms();
    let org = Organization {
        id: Uuid::now_v7(),
        name: "other".into(),
        require_2fa_admins: false,
        created_at: now,
        enforcement_mode: "strict".into(),
    };
    let admin = NewUser {
        id: Uuid::now_v7(),
        org_id: org.id,
        email: "admin@other-caps.test".into(),
        password_hash: st.hasher.hash(STRONG).await.unwrap(),
        role: Role::Admin,
        must_change_password: false,
        created_by: None,
        created_at: now,
    };
    let audit = AuditRecord {
        org_id: Some(org.id),
        at: now,
        event_type: "org.created".into(),
        actor: "system".into(),
        subject: None,
        payload: json!({}),
        client_addr: None,
    };
    st.store
        .create_org_with_admin(&org, &admin, &audit)
        .await
        .unwrap();
    ctx.tokens("admin@other-caps.test", STRONG).await.0
}

async fn grants_follow_rbac_grammar_and_status(ctx: Ctx) {
    let admin = ctx.admin().await;
    for (email, role) in [
        ("viewer@c.test", "viewer"),
        ("member@c.test", "member"),
        ("manager@c.test", "manager"),
    ] {
        ctx.user(&admin, email, role).await;
    }
    let viewer = ctx.tokens("viewer@c.test", STRONG).await.0;
    let member = ctx.tokens("member@c.test", STRONG).await.0;
    let manager = ctx.tokens("manager@c.test", STRONG).await.0;
    let k = key(7001);
    let id = active_agent_with(&ctx, &admin, "granted", &k, &["files:read"]).await;
    let other = other_org(&ctx).await;

    // Reading: every role of the org; another org's admin gets 404.
    let v = grants(&ctx, &viewer, &id).await;
    assert_eq!(v["grants"], json!(["files:read"]));
    assert_eq!(v["pendingRequests"], json!([]));
    let (s, _) = ctx.get(&caps_path(&id), Cred::Bearer(&other)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = ctx.get(&caps_path(&id), Cred::None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = ctx.get(&caps_path("nope"), Cred::Bearer(&viewer)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Granting: managers and admins only; the grammar is aim_policy's.
    for t in [&viewer, &member] {
        let (s, _) = ctx
            .post(
                &caps_path(&id),
                Cred::Bearer(t),
                json!({ "capability": "db:*" }),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, _) = ctx
        .post(
            &caps_path(&id),
            Cred::Bearer(&other),
            json!({ "capability": "db:*" }),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for bad in [
        json!({ "capability": "Files:Read" }),
        json!({ "capability": "*" }),
        json!({ "capability": "*:*" }),
        json!({ "capability": "files" }),
        json!({ "capability": "files:read:x" }),
        json!({ "capability": "" }),
        json!({ "capability": 3 }),
        json!({ "capability": "files:read", "extra": true }),
        json!({}),
    ] {
        let (s, v) = ctx
            .post(&caps_path(&id), Cred::Bearer(&manager), bad.clone())
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (_, v) = ctx
        .post(
            &caps_path(&id),
            Cred::Bearer(&manager),
            json!({ "capability": "Files:Read" }),
        )
        .await;
    assert_eq!(v["error"], "invalid_capability");

    let before = agent_invalidations(&ctx, &id).await;
    let (s, v) = ctx
        .post(
            &caps_path(&id),
            Cred::Bearer(&manager),
            json!({ "capability": "db:*" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["changed"], true);
    assert_eq!(v["grants"], json!(["files:read", "db:*"]));
    assert_eq!(agent_invalidations(&ctx, &id).await, before + 1);
    // Idempotent: same grant again changes and records nothing.
    let (s, v) = ctx
        .post(
            &caps_path(&id),
            Cred::Bearer(&admin),
            json!({ "capability": "db:*" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["changed"], false);
    assert_eq!(agent_invalidations(&ctx, &id).await, before + 1);
    let (s, v) = ctx
        .post(
            &caps_path(&id),
            Cred::Bearer(&manager),
            json!({ "capability": "example.com/tickets:write" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The agent row shows the same set.
    let (_, a) = ctx
        .get(&format!("/api/v1/agents/{id}"), Cred::Bearer(&viewer))
        .await;
    assert_eq!(
        a["capabilities"],
        json!(["files:read", "db:*", "example.com/tickets:write"])
    );

    // Revoking: URL-encoded grant in the path; managers and admins only.
    let db = format!("{}/db%3A%2A", caps_path(&id));
    let dom = format!("{}/example.com%2Ftickets%3Awrite", caps_path(&id));
    for t in [&viewer, &member] {
        let (s, _) = delete(&ctx, t, &db).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, _) = delete(&ctx, &other, &db).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = delete(&ctx, &manager, &format!("{}/Files%3ARead", caps_path(&id))).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_capability"))
    );
    let (s, v) = delete(&ctx, &manager, &db).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["grants"],
        json!(["files:read", "example.com/tickets:write"])
    );
    let (s, v) = delete(&ctx, &manager, &db).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_granted"))
    );
    let (s, v) = delete(&ctx, &admin, &dom).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        grants(&ctx, &viewer, &id).await["grants"],
        json!(["files:read"])
    );

    // A revoked agent's grants are frozen.
    let (s, _) = ctx
        .post(
            &format!("/api/v1/agents/{id}/revoke"),
            Cred::Bearer(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = ctx
        .post(
            &caps_path(&id),
            Cred::Bearer(&manager),
            json!({ "capability": "mail:send" }),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::CONFLICT, Some("agent_revoked"))
    );
    let (s, v) = delete(&ctx, &manager, &format!("{}/files%3Aread", caps_path(&id))).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::CONFLICT, Some("agent_revoked"))
    );
    assert_eq!(
        grants(&ctx, &viewer, &id).await["grants"],
        json!(["files:read"])
    );

    // Recorded, about the agent.
    let events = audit_events(&ctx, &admin).await;
    let of = |t: &str| -> Vec<Value> {
        events
            .iter()
            .filter(|(e, _)| e == t)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let granted = of("capability.granted");
    assert_eq!(granted.len(), 2, "{granted:?}");
    assert_eq!(granted[0]["payload"]["capability"], "db:*");
    assert_eq!(granted[0]["subject"], format!("agent:{id}"));
    let revoked = of("capability.revoked");
    assert_eq!(revoked.len(), 2, "{revoked:?}");
    assert_eq!(
        revoked[1]["payload"]["capability"],
        "example.com/tickets:write"
    );
    audit_ok(&ctx, &admin).await;
    ctx.stop().await;
}

async fn agent_requests_and_separation_of_duties(ctx: Ctx) {
    let admin = ctx.admin().await;
    ctx.user(&admin, "manager@r.test", "manager").await;
    ctx.user(&admin, "member@r.test", "member").await;
    let manager = ctx.tokens("manager@r.test", STRONG).await.0;
    let member = ctx.tokens("member@r.test", STRONG).await.0;
    let k = key(7101);
    // The admin owns the agent.
    let id = active_agent_with(&ctx, &admin, "asker", &k, &["files:read"]).await;
    let ask = |capability: &str, reason: Option<&str>| {
        let mut body = json!({ "capability": capability });
        if let Some(r) = reason {
            body["reason"] = json!(r);
        }
        body
    };

    // Refused before anything is recorded.
    let (s, v) = ctx
        .post(
            &req_path(&id),
            Cred::Bearer(&admin),
            ask("tickets:write", Some("x")),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("signature_required"))
    );
    let long = "r".repeat(1001);
    for (body, why) in [
        (ask("tickets:write", None), "no reason"),
        (ask("tickets:write", Some("   ")), "blank reason"),
        (
            ask("tickets:write", Some("a\u{0}b")),
            "U+0000 in the reason",
        ),
        (ask("tickets:write", Some(long.as_str())), "reason too long"),
        (ask("Tickets:Write", Some("x")), "bad grammar"),
        (ask("*", Some("x")), "grant everything"),
        (json!({ "reason": "x" }), "no capability"),
        (
            json!({ "capability": "a:b", "reason": "x", "extra": 1 }),
            "unknown field",
        ),
    ] {
        let (s, v) = signed(&ctx, &k, &id, Method::POST, &req_path(&id), Some(&body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{why}: {v}");
    }
    {
        let (s, v) = signed(
            &ctx,
            &k,
            &id,
            Method::POST,
            &req_path(&id),
            Some(&ask("files:read", Some("again"))),
        )
        .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("already_granted")),
            "{v}"
        );
        // Covered by a wildcard grant.
        let (s, _) = ctx
            .post(
                &caps_path(&id),
                Cred::Bearer(&admin),
                json!({ "capability": "db:*" }),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = signed(
            &ctx,
            &k,
            &id,
            Method::POST,
            &req_path(&id),
            Some(&ask("db:query", Some("covered"))),
        )
        .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("already_granted")),
            "{v}"
        );
    }

    // Accepted, pending.
    let (s, v) = signed(
        &ctx,
        &k,
        &id,
        Method::POST,
        &req_path(&id),
        Some(&ask("tickets:write", Some("triage incoming tickets"))),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "pending");
    let r1 = v["id"].as_str().unwrap().to_string();
    // The same capability again (fresh nonce): already pending.
    let (s, v) = signed(
        &ctx,
        &k,
        &id,
        Method::POST,
        &req_path(&id),
        Some(&ask("tickets:write", Some("please"))),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::CONFLICT, Some("request_pending")),
        "{v}"
    );
    // A replayed request (same nonce) is refused as a replay.
    let body = serde_json::to_vec(&ask("mail:send", Some("notify owners"))).unwrap();
    let nonce = fresh_nonce();
    let rp = req_path(&id);
    let send = || {
        signed_raw(
            &ctx,
            &ctx.ts.base,
            &k,
            &id,
            Method::POST,
            &rp,
            &rp,
            &body,
            &body,
            ctx.ts.clock.now_secs(),
            &nonce,
        )
    };
    let (s, v) = send().await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let r2 = v["id"].as_str().unwrap().to_string();
    let (s, v) = send().await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("replayed_request")),
        "{v}"
    );

    // The queue.
    let v = grants(&ctx, &member, &id).await;
    assert_eq!(v["grants"], json!(["files:read", "db:*"]));
    let pending: Vec<&str> = v["pendingRequests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["capability"].as_str().unwrap())
        .collect();
    assert_eq!(pending, vec!["mail:send", "tickets:write"]);
    let (s, _) = ctx
        .get("/api/v1/capability-requests", Cred::Bearer(&member))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = ctx
        .get(
            &format!("/api/v1/capability-requests?status=pending&agentId={id}"),
            Cred::Bearer(&manager),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    for bad in ["?status=maybe", "?limit=x", "?before=nope", "?nope=1"] {
        let (s, v) = ctx
            .get(
                &format!("/api/v1/capability-requests{bad}"),
                Cred::Bearer(&manager),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (s, v) = ctx
        .get(
            &format!("/api/v1/capability-requests/{r1}"),
            Cred::Bearer(&manager),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["requestedBy"], format!("agent:{id}"));
    assert_eq!(v["reason"], "triage incoming tickets");
    let approve = |r: &str| format!("/api/v1/capability-requests/{r}/approve");
    let deny = |r: &str| format!("/api/v1/capability-requests/{r}/deny");

    // Deciding: managers and admins, never the agent's owner.
    let (s, _) = ctx
        .post(&approve(&r1), Cred::Bearer(&member), json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = ctx
        .post(&approve(&r1), Cred::Bearer(&admin), json!({}))
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("separation_of_duties")),
        "{v}"
    );
    for (path, status) in [
        (approve(&Uuid::now_v7().to_string()), StatusCode::NOT_FOUND),
        (approve("nope"), StatusCode::BAD_REQUEST),
        (deny(&Uuid::now_v7().to_string()), StatusCode::NOT_FOUND),
    ] {
        let (s, v) = ctx.post(&path, Cred::Bearer(&manager), json!({})).await;
        assert_eq!(s, status, "{path}: {v}");
    }
    let (s, _) = ctx
        .post(
            &approve(&r1),
            Cred::Bearer(&manager),
            json!({ "note": "n".repeat(1001) }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = ctx
        .post(&approve(&r1), Cred::Bearer(&manager), json!({ "nope": 1 }))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let before = agent_invalidations(&ctx, &id).await;
    let (s, v) = ctx
        .post(
            &approve(&r1),
            Cred::Bearer(&manager),
            json!({ "note": "ok for triage" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "approved");
    assert_eq!(v["note"], "ok for triage");
    assert_eq!(v["grants"], json!(["files:read", "db:*", "tickets:write"]));
    assert_eq!(agent_invalidations(&ctx, &id).await, before + 1);
    let v = grants(&ctx, &member, &id).await;
    assert_eq!(v["grants"], json!(["files:read", "db:*", "tickets:write"]));
    assert_eq!(v["pendingRequests"].as_array().unwrap().len(), 1);
    // Decided once.
    for path in [approve(&r1), deny(&r1)] {
        let (s, v) = ctx.post(&path, Cred::Bearer(&admin), json!({})).await;
        assert_eq!(
            s,
            if path.ends_with("approve") {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::CONFLICT
            },
            "{v}"
        );
        let (s, v) = ctx.post(&path, Cred::Bearer(&manager), json!({})).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("not_pending")),
            "{v}"
        );
    }
    // Now held: asking again is already_granted.
    let (s, v) = signed(
        &ctx,
        &k,
        &id,
        Method::POST,
        &req_path(&id),
        Some(&ask("tickets:write", Some("again"))),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::CONFLICT, Some("already_granted")),
        "{v}"
    );

    // Denying (an empty body is fine).
    let resp = ctx
        .http
        .post(ctx.ts.url(&deny(&r2)))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "denied");
    let v = grants(&ctx, &member, &id).await;
    assert_eq!(v["grants"], json!(["files:read", "db:*", "tickets:write"]));
    assert_eq!(v["pendingRequests"], json!([]));
    // After a denial the agent may ask again.
    let (s, v) = signed(
        &ctx,
        &k,
        &id,
        Method::POST,
        &req_path(&id),
        Some(&ask("mail:send", Some("second try"))),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, v) = ctx
        .get(
            "/api/v1/capability-requests?status=denied",
            Cred::Bearer(&manager),
        )
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert_eq!(v["items"][0]["id"], r2.as_str());

    // Recorded.
    let events = audit_events(&ctx, &admin).await;
    let count = |t: &str| events.iter().filter(|(e, _)| e == t).count();
    assert_eq!(count("capability.requested"), 3);
    assert_eq!(count("capability.request.approved"), 1);
    assert_eq!(count("capability.request.denied"), 1);
    assert_eq!(count("agent.request.replayed"), 1);
    let approved = &events
        .iter()
        .find(|(e, _)| e == "capability.request.approved")
        .unwrap()
        .1;
    assert_eq!(approved["subject"], format!("agent:{id}"));
    assert_eq!(approved["payload"]["capability"], "tickets:write");
    let requested = &events
        .iter()
        .find(|(e, _)| e == "capability.requested")
        .unwrap()
        .1;
    assert_eq!(requested["actor"], format!("agent:{id}"));
    audit_ok(&ctx, &admin).await;
    ctx.stop().await;
}

async fn registration_grants_only_for_managers(ctx: Ctx) {
    let admin = ctx.admin().await;
    let member_id = ctx.user(&admin, "member@g.test", "member").await;
    ctx.user(&admin, "manager@g.test", "manager").await;
    let member = ctx.tokens("member@g.test", STRONG).await.0;
    let manager = ctx.tokens("manager@g.test", STRONG).await.0;

    // A manager's declared capabilities are granted.
    let v = register_with(&ctx, &manager, "by-manager", &key(7201), &["files:read"]).await;
    assert_eq!(v["capabilities"], json!(["files:read"]));
    assert_eq!(v["pendingCapabilities"], json!([]));

    // A member's become pending requests (the member is owner and requester).
    let v = register_with(
        &ctx,
        &member,
        "by-member",
        &key(7202),
        &["files:read", "db:*", "files:read"],
    )
    .await;
    assert_eq!(v["capabilities"], json!([]));
    assert_eq!(v["pendingCapabilities"], json!(["files:read", "db:*"]));
    let id = v["id"].as_str().unwrap().to_string();
    let q = grants(&ctx, &member, &id).await;
    assert_eq!(q["grants"], json!([]));
    let reqs = q["pendingRequests"].as_array().unwrap().clone();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(r["requestedBy"], format!("user:{member_id}"));
        assert_eq!(r["reason"], "declared at registration");
        assert_eq!(r["status"], "pending");
    }
    // Promoted to manager, the member still cannot approve for its own agent.
    let (s, _) = ctx
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{member_id}"),
            Cred::Bearer(&admin),
            Some(json!({ "role": "manager" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let r0 = reqs[0]["id"].as_str().unwrap();
    let (s, v) = ctx
        .post(
            &format!("/api/v1/capability-requests/{r0}/approve"),
            Cred::Bearer(&member),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("separation_of_duties")),
        "{v}"
    );
    let (s, v) = ctx
        .post(
            &format!("/api/v1/capability-requests/{r0}/approve"),
            Cred::Bearer(&manager),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        grants(&ctx, &admin, &id).await["grants"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // An admin's API key with the member role registers like a member: requests, and the admin
    // (requester and owner) cannot approve them.
    let (s, k) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&admin),
            json!({ "name": "member-key", "role": "member" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let api_key = k["key"].as_str().unwrap().to_string();
    let (s, v) = ctx
        .post(
            "/api/v1/agents",
            Cred::XApiKey(&api_key),
            json!({ "name": "by-key", "publicKey": aim_core::keys::encode_base64(&key(7203).public().to_bytes()), "capabilities": ["mail:send"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["capabilities"], json!([]));
    assert_eq!(v["pendingCapabilities"], json!(["mail:send"]));
    let kid = v["id"].as_str().unwrap().to_string();
    let r = grants(&ctx, &admin, &kid).await["pendingRequests"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = ctx
        .post(
            &format!("/api/v1/capability-requests/{r}/approve"),
            Cred::Bearer(&admin),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("separation_of_duties")),
        "{v}"
    );
    // A grammar error at registration is a 400 and registers nothing.
    let (s, _) = ctx
        .post(
            "/api/v1/agents",
            Cred::Bearer(&member),
            json!({ "name": "bad", "publicKey": aim_core::keys::encode_base64(&key(7204).public().to_bytes()), "capabilities": ["Files:*"] }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let events = audit_events(&ctx, &admin).await;
    let reg = events
        .iter()
        .find(|(e, v)| e == "agent.registered" && v["subject"] == format!("agent:{id}"))
        .unwrap();
    assert_eq!(reg.1["payload"]["capabilities"], json!([]));
    assert_eq!(
        reg.1["payload"]["pendingCapabilities"],
        json!(["files:read", "db:*"])
    );
    audit_ok(&ctx, &admin).await;
    ctx.stop().await;
}

/// Concurrent read-modify-writes of one agent's grant set lose nothing.
async fn concurrent_grants_are_not_lost(ctx: Ctx) {
    let admin = ctx.admin().await;
    let id = active_agent_with(&ctx, &admin, "busy", &key(7301), &[]).await;
    let path = caps_path(&id);
    let caps: Vec<String> = (0..16).map(|i| format!("ns{i}:read")).collect();
    let results = futures_join_all(
        caps.iter()
            .map(|c| ctx.post(&path, Cred::Bearer(&admin), json!({ "capability": c }))),
    )
    .await;
    for (s, v) in &results {
        assert_eq!(*s, StatusCode::OK, "{v}");
        assert_eq!(v["changed"], true);
    }
    let held = grants(&ctx, &admin, &id).await["grants"].clone();
    let mut held: Vec<String> = serde_json::from_value(held).unwrap();
    held.sort();
    let mut want = caps.clone();
    want.sort();
    assert_eq!(held, want);
    let events = audit_events(&ctx, &admin).await;
    assert_eq!(
        events
            .iter()
            .filter(|(e, _)| e == "capability.granted")
            .count(),
        16
    );
    audit_ok(&ctx, &admin).await;
    ctx.stop().await;
}

crate::backends!(
    grants_follow_rbac_grammar_and_status,
    concurrent_grants_are_not_lost,
    agent_requests_and_separation_of_duties,
    registration_grants_only_for_managers
);
