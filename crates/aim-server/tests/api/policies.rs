//! The organization's policy set over real HTTP: the built-in default (version 0), refused
//! policies (Cedar syntax, schema validation, YAML, size) store nothing and carry the compiler's
//! message, versions increase and stay readable, the dry run stores nothing, only admins save,
//! and the enforcement mode (strict by default) changes only through an audited PATCH. Every
//! change is in the audit log, whose verification stays ok, and invalidates the org's caches.

use aim_policy::PolicyLanguage;
use aim_store::CacheKind;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Cred, Ctx, STRONG};

const V1: &str =
    "@id(\"files-ok\")\npermit(principal, action == Action::\"files:read\", resource);\n";
const YAML: &str = "policies:\n  - {name: allow-files, capability: files:read, action: allow}\n  - {name: no-db, capability: \"db:*\", action: deny}\n";

async fn put(ctx: &Ctx, token: &str, body: Value) -> (StatusCode, Value) {
    ctx.call(
        Method::PUT,
        "/api/v1/policies",
        Cred::Bearer(token),
        Some(body),
    )
    .await
}

/// `(event type, payload)` of the org's audit entries, in chain order.
pub async fn audit_events(ctx: &Ctx, token: &str) -> Vec<(String, Value)> {
    let (s, v) = ctx
        .get("/api/v1/audit/entries?limit=1000", Cred::Bearer(token))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["eventType"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

/// The org's audit log verifies.
pub async fn audit_ok(ctx: &Ctx, token: &str) {
    let (s, v) = ctx.get("/api/v1/audit/verify", Cred::Bearer(token)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["ok"], true, "{v}");
}

async fn me(ctx: &Ctx, token: &str) -> Value {
    let (s, v) = ctx.get("/api/v1/auth/me", Cred::Bearer(token)).await;
    assert_eq!(s, StatusCode::OK);
    v
}

async fn org_cache_events(ctx: &Ctx, org: &str) -> usize {
    ctx.ts
        .server
        .state
        .store
        .cache_events_since(0)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == CacheKind::Org && e.key == org)
        .count()
}

async fn policy_versions_are_validated_and_append_only(ctx: Ctx) {
    let admin = ctx.admin().await;
    for (email, role) in [
        ("viewer@p.test", "viewer"),
        ("member@p.test", "member"),
        ("manager@p.test", "manager"),
    ] {
        ctx.user(&admin, email, role).await;
    }
    let viewer = ctx.tokens("viewer@p.test", STRONG).await.0;
    let member = ctx.tokens("member@p.test", STRONG).await.0;
    let manager = ctx.tokens("manager@p.test", STRONG).await.0;
    let good = json!({ "language": "cedar", "source": V1 });

    // Who may read, validate, save.
    for t in [&viewer, &member] {
        for path in ["/api/v1/policies", "/api/v1/policies/versions"] {
            let (s, _) = ctx.get(path, Cred::Bearer(t)).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
        }
        let (s, _) = ctx
            .post("/api/v1/policies/validate", Cred::Bearer(t), good.clone())
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    for t in [&viewer, &member, &manager] {
        let (s, v) = put(&ctx, t, good.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    }
    let (s, _) = ctx
        .call(
            Method::PUT,
            "/api/v1/policies",
            Cred::None,
            Some(good.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Never saved: the default, version 0.
    let (s, v) = ctx.get("/api/v1/policies", Cred::Bearer(&manager)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["version"], 0);
    assert_eq!(v["default"], true);
    assert_eq!(v["language"], "cedar");
    assert_eq!(v["source"], aim_server::authz::DEFAULT_POLICY);
    assert_eq!(v["policies"], json!(["default-permit-granted"]));
    let default_digest =
        aim_policy::validate(aim_server::authz::DEFAULT_POLICY, PolicyLanguage::Cedar)
            .unwrap()
            .version()
            .to_string();
    assert_eq!(v["digest"], default_digest);

    // Refused: Cedar syntax, schema validation, YAML; the message is the compiler's.
    let org = me(&ctx, &admin).await["orgId"]
        .as_str()
        .unwrap()
        .to_string();
    let events_before = org_cache_events(&ctx, &org).await;
    for (language, source, lang) in [
        (
            "cedar",
            "permit(principal, action, resource) when { principal.trustScore >>= 3 };",
            PolicyLanguage::Cedar,
        ),
        (
            "cedar",
            "permit(principal, action, resource) when { principal.noSuchAttribute == 1 };",
            PolicyLanguage::Cedar,
        ),
        (
            "governance_yaml",
            "policies:\n  - {name: a, capability: files:read, action: maybe}\n",
            PolicyLanguage::GovernanceYaml,
        ),
    ] {
        let expected = aim_policy::validate(source, lang).unwrap_err().to_string();
        let body = json!({ "language": language, "source": source });
        let (s, v) = put(&ctx, &admin, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{source}: {v}");
        assert_eq!(v["error"], "invalid_policy");
        assert_eq!(v["message"], expected);
        let (s, v) = ctx
            .post("/api/v1/policies/validate", Cred::Bearer(&manager), body)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["message"], expected);
    }
    assert!(
        aim_policy::validate(
            "permit(principal, action, resource) when { principal.trustScore >>= 3 };",
            PolicyLanguage::Cedar
        )
        .unwrap_err()
        .to_string()
        .contains("unexpected token")
    );
    // Malformed bodies: 400, never 500.
    for body in [
        json!({ "language": "rego", "source": V1 }),
        json!({ "language": "cedar" }),
        json!({ "source": V1 }),
        json!({ "language": "cedar", "source": V1, "extra": 1 }),
        json!({ "language": "cedar", "source": 5 }),
    ] {
        let (s, v) = put(&ctx, &admin, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
    }
    // Too large: refused by the size check (the route accepts bodies above the API default).
    let huge = format!("// {}\n{V1}", "x".repeat(300 * 1024));
    let (s, v) = put(&ctx, &admin, json!({ "language": "cedar", "source": huge })).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"], "policy_too_large");
    // A source above the API's default body limit but under the policy limit is accepted.
    let big = format!("// {}\n{V1}", "x".repeat(100 * 1024));
    let (s, v) = ctx
        .post(
            "/api/v1/policies/validate",
            Cred::Bearer(&manager),
            json!({ "language": "cedar", "source": big }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // The dry run stores nothing.
    let (s, v) = ctx
        .post(
            "/api/v1/policies/validate",
            Cred::Bearer(&manager),
            json!({ "language": "governance_yaml", "source": YAML }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["valid"], true);
    assert_eq!(v["policies"].as_array().unwrap().len(), 2, "{v}");
    // Nothing was stored by any of the above.
    let (_, v) = ctx
        .get("/api/v1/policies/versions", Cred::Bearer(&admin))
        .await;
    assert_eq!(v["items"], json!([]), "{v}");
    let (_, v) = ctx.get("/api/v1/policies", Cred::Bearer(&admin)).await;
    assert_eq!(v["version"], 0);
    assert_eq!(org_cache_events(&ctx, &org).await, events_before);

    // Saved: version 1 (Cedar), version 2 (YAML).
    let admin_id = me(&ctx, &admin).await["id"].as_str().unwrap().to_string();
    let (s, v1) = put(&ctx, &admin, good.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v1}");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["default"], false);
    assert_eq!(v1["policies"], json!(["files-ok"]));
    assert_eq!(v1["createdBy"], format!("user:{admin_id}"));
    let d1 = aim_policy::validate(V1, PolicyLanguage::Cedar)
        .unwrap()
        .version()
        .to_string();
    assert_eq!(v1["digest"], d1);
    assert_eq!(org_cache_events(&ctx, &org).await, events_before + 1);
    let (s, v2) = put(
        &ctx,
        &admin,
        json!({ "language": "governance_yaml", "source": YAML }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v2}");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["language"], "governance_yaml");

    // In force: the highest; the old one stays readable.
    let (_, cur) = ctx.get("/api/v1/policies", Cred::Bearer(&manager)).await;
    assert_eq!(cur["version"], 2);
    assert_eq!(cur["source"], YAML);
    assert_eq!(cur["default"], false);
    let (s, old) = ctx
        .get("/api/v1/policies/versions/1", Cred::Bearer(&manager))
        .await;
    assert_eq!(s, StatusCode::OK, "{old}");
    assert_eq!(old["source"], V1);
    assert_eq!(old["digest"], d1);
    assert_eq!(old["policies"], json!(["files-ok"]));
    for (path, status) in [
        ("/api/v1/policies/versions/3", StatusCode::NOT_FOUND),
        ("/api/v1/policies/versions/0", StatusCode::BAD_REQUEST),
        ("/api/v1/policies/versions/abc", StatusCode::BAD_REQUEST),
        ("/api/v1/policies/versions?limit=x", StatusCode::BAD_REQUEST),
        ("/api/v1/policies/versions?nope=1", StatusCode::BAD_REQUEST),
    ] {
        let (s, v) = ctx.get(path, Cred::Bearer(&manager)).await;
        assert_eq!(s, status, "{path}: {v}");
    }
    let (_, list) = ctx
        .get("/api/v1/policies/versions", Cred::Bearer(&manager))
        .await;
    let versions: Vec<i64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![2, 1]);
    let (_, page) = ctx
        .get("/api/v1/policies/versions?limit=1", Cred::Bearer(&manager))
        .await;
    assert_eq!(page["items"][0]["version"], 2);
    assert_eq!(page["nextBefore"], 2);
    let (_, page) = ctx
        .get(
            "/api/v1/policies/versions?limit=1&before=2",
            Cred::Bearer(&manager),
        )
        .await;
    assert_eq!(page["items"][0]["version"], 1);

    // Recorded: two saves, nothing for the refusals.
    let events = audit_events(&ctx, &admin).await;
    let saves: Vec<&Value> = events
        .iter()
        .filter(|(t, _)| t == "policy.updated")
        .map(|(_, e)| e)
        .collect();
    assert_eq!(saves.len(), 2);
    assert_eq!(saves[0]["payload"]["version"], 1);
    assert_eq!(saves[0]["payload"]["digest"], d1);
    assert_eq!(saves[0]["payload"]["policies"], json!(["files-ok"]));
    assert_eq!(saves[0]["actor"], format!("user:{admin_id}"));
    assert_eq!(saves[1]["payload"]["language"], "governance_yaml");
    audit_ok(&ctx, &admin).await;
    ctx.stop().await;
}

async fn enforcement_mode_changes_are_audited(ctx: Ctx) {
    let admin = ctx.admin().await;
    ctx.user(&admin, "manager@e.test", "manager").await;
    let manager = ctx.tokens("manager@e.test", STRONG).await.0;
    // New organizations are strict.
    let (s, v) = ctx.get("/api/v1/org", Cred::Bearer(&manager)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["enforcementMode"], "strict");
    let org = v["id"].as_str().unwrap().to_string();
    let stored = ctx
        .ts
        .server
        .state
        .store
        .get_org(org.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.enforcement_mode, "strict");

    let patch = |token: &str, body: Value| {
        let token = token.to_string();
        let ctx = &ctx;
        async move {
            ctx.call(
                Method::PATCH,
                "/api/v1/org",
                Cred::Bearer(&token),
                Some(body),
            )
            .await
        }
    };
    let (s, _) = patch(&manager, json!({ "enforcementMode": "monitoring" })).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for bad in [
        json!({ "enforcementMode": "permissive" }),
        json!({ "enforcementMode": "STRICT" }),
        json!({ "enforcementMode": 1 }),
        json!({ "enforcement_mode": "monitoring" }),
    ] {
        let (s, v) = patch(&admin, bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (_, v) = ctx.get("/api/v1/org", Cred::Bearer(&admin)).await;
    assert_eq!(v["enforcementMode"], "strict");

    let before = org_cache_events(&ctx, &org).await;
    let (s, v) = patch(&admin, json!({ "enforcementMode": "monitoring" })).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["enforcementMode"], "monitoring");
    assert_eq!(org_cache_events(&ctx, &org).await, before + 1);
    // Unchanged: nothing written.
    let (s, _) = patch(&admin, json!({ "enforcementMode": "monitoring" })).await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = ctx.get("/api/v1/org", Cred::Bearer(&manager)).await;
    assert_eq!(v["enforcementMode"], "monitoring");
    let (s, v) = patch(&admin, json!({ "enforcementMode": "strict" })).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["enforcementMode"], "strict");

    let changes: Vec<Value> = audit_events(&ctx, &admin)
        .await
        .into_iter()
        .filter(|(t, _)| t == "org.enforcement_mode_changed")
        .map(|(_, e)| e)
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(
        changes[0]["payload"],
        json!({ "from": "strict", "to": "monitoring" })
    );
    assert_eq!(
        changes[1]["payload"],
        json!({ "from": "monitoring", "to": "strict" })
    );
    audit_ok(&ctx, &admin).await;
    ctx.stop().await;
}

crate::backends!(
    policy_versions_are_validated_and_append_only,
    enforcement_mode_changes_are_audited
);
