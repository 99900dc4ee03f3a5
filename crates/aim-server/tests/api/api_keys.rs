//! API keys: shown once, hashed, both headers, usage, expiry, revoke, rotate, role ceiling.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Cred, Ctx, STRONG};

async fn expired_revoked_rotated_and_malformed_keys_are_refused(ctx: Ctx) {
    let admin = ctx.admin().await;
    for k in [
        "aim_live_",
        "aim_live_short",
        "aim_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "Bearer",
        "aim_live_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    ] {
        assert_eq!(
            ctx.get("/api/v1/org", Cred::XApiKey(k)).await.0,
            StatusCode::UNAUTHORIZED,
            "{k}"
        );
        assert_eq!(
            ctx.get("/api/v1/org", Cred::Bearer(k)).await.0,
            StatusCode::UNAUTHORIZED,
            "{k}"
        );
    }
    // Bad expiry values.
    let (s, _) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&admin),
            json!({ "name": "k", "expiresAt": "tomorrow" }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&admin),
            json!({ "name": "k", "expiresAt": "2001-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&admin),
            json!({ "name": "" }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Expiry honoured.
    let soon = chrono::DateTime::from_timestamp(ctx.ts.clock.now_secs() + 60, 0)
        .unwrap()
        .to_rfc3339();
    let (s, v) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&admin),
            json!({ "name": "short-lived", "expiresAt": soon }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    assert_eq!(
        ctx.get("/api/v1/org", Cred::XApiKey(&key)).await.0,
        StatusCode::OK
    );
    ctx.ts.clock.advance(Duration::from_secs(61));
    assert_eq!(
        ctx.get("/api/v1/org", Cred::XApiKey(&key)).await.0,
        StatusCode::UNAUTHORIZED,
        "expired"
    );
    // Revocation.
    let admin = ctx.admin().await;
    let (_, v) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&admin),
            json!({ "name": "to-revoke" }),
        )
        .await;
    let (id, key) = (
        v["id"].as_str().unwrap().to_string(),
        v["key"].as_str().unwrap().to_string(),
    );
    assert_eq!(
        ctx.get("/api/v1/org", Cred::Bearer(&key)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        ctx.call(
            reqwest::Method::DELETE,
            &format!("/api/v1/api-keys/{id}"),
            Cred::Bearer(&admin),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        ctx.get("/api/v1/org", Cred::Bearer(&key)).await.0,
        StatusCode::UNAUTHORIZED,
        "revoked"
    );
    let (s, _) = ctx
        .post(
            &format!("/api/v1/api-keys/{id}/rotate"),
            Cred::Bearer(&admin),
            json!({}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "revoked keys cannot be rotated back to life"
    );
    // Rotation.
    let (_, v) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&admin),
            json!({ "name": "to-rotate" }),
        )
        .await;
    let (id, old) = (
        v["id"].as_str().unwrap().to_string(),
        v["key"].as_str().unwrap().to_string(),
    );
    let (s, v) = ctx
        .post(
            &format!("/api/v1/api-keys/{id}/rotate"),
            Cred::Bearer(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let new = v["key"].as_str().unwrap().to_string();
    assert_ne!(old, new);
    assert_eq!(
        ctx.get("/api/v1/org", Cred::Bearer(&old)).await.0,
        StatusCode::UNAUTHORIZED,
        "old secret dead"
    );
    assert_eq!(
        ctx.get("/api/v1/org", Cred::Bearer(&new)).await.0,
        StatusCode::OK
    );
    ctx.stop().await;
}

async fn key_role_never_exceeds_its_owner(ctx: Ctx) {
    let admin = ctx.admin().await;
    ctx.user(&admin, "mgr@test.local", "manager").await;
    let adm2 = ctx.user(&admin, "adm2@test.local", "admin").await;
    let (mgr, _) = ctx.tokens("mgr@test.local", STRONG).await;
    let (s, v) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&mgr),
            json!({ "name": "k", "role": "admin" }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&mgr),
            json!({ "name": "k", "role": "manager" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Default role is viewer (least privilege).
    let (_, v) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&mgr),
            json!({ "name": "k2" }),
        )
        .await;
    assert_eq!(v["role"], "viewer");
    let viewer_key = v["key"].as_str().unwrap().to_string();
    assert_eq!(
        ctx.get("/api/v1/users", Cred::Bearer(&viewer_key)).await.0,
        StatusCode::FORBIDDEN
    );
    // An admin key follows its owner's demotion.
    let (a2, _) = ctx.tokens("adm2@test.local", STRONG).await;
    let (_, v) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&a2),
            json!({ "name": "adm", "role": "admin" }),
        )
        .await;
    let adm_key = v["key"].as_str().unwrap().to_string();
    assert_eq!(
        ctx.get("/api/v1/users", Cred::XApiKey(&adm_key)).await.0,
        StatusCode::OK
    );
    let (s, _) = ctx
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/users/{adm2}"),
            Cred::Bearer(&admin),
            Some(json!({ "role": "viewer" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        ctx.get("/api/v1/users", Cred::XApiKey(&adm_key)).await.0,
        StatusCode::FORBIDDEN,
        "demoted with its owner"
    );
    // Keys cannot do account self-service.
    let (s, v) = ctx.get("/api/v1/auth/me", Cred::XApiKey(&adm_key)).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("session_required"))
    );
    ctx.stop().await;
}

async fn key_is_shown_once_and_usage_is_tracked(ctx: Ctx) {
    let admin = ctx.admin().await;
    let (s, v) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&admin),
            json!({ "name": "ci", "role": "manager" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let key = v["key"].as_str().unwrap().to_string();
    let id = v["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("aim_live_") && key.len() == 52, "{key}");
    assert_eq!(v["prefix"].as_str().unwrap(), &key[..17]);
    assert!(v.get("expiresAt").is_some());
    let (_, list) = ctx.get("/api/v1/api-keys", Cred::Bearer(&admin)).await;
    assert!(!list.to_string().contains(&key), "lists never show the key");
    let (_, one) = ctx
        .get(&format!("/api/v1/api-keys/{id}"), Cred::Bearer(&admin))
        .await;
    assert!(one.get("key").is_none());
    assert_eq!(one["useCount"], 0);
    assert_eq!(
        ctx.get("/api/v1/org", Cred::Bearer(&key)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        ctx.get("/api/v1/org", Cred::XApiKey(&key)).await.0,
        StatusCode::OK
    );
    let (_, one) = ctx
        .get(&format!("/api/v1/api-keys/{id}"), Cred::Bearer(&admin))
        .await;
    assert_eq!(one["useCount"], 2);
    assert_eq!(one["lastClientAddr"], "127.0.0.1");
    assert!(one["lastUsedAt"].is_string());
    ctx.stop().await;
}

crate::backends!(
    expired_revoked_rotated_and_malformed_keys_are_refused,
    key_role_never_exceeds_its_owner,
    key_is_shown_once_and_usage_is_tracked,
);
