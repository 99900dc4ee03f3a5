//! Login, lockout, tokens, refresh rotation, logout, password change, malformed input.

use std::time::Duration;

use aim_server::jwt::Claims;
use aim_server::testkit::{ADMIN_EMAIL, ADMIN_PASSWORD};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Cred, Ctx, STRONG};

async fn wrong_password_and_unknown_email_look_the_same(ctx: Ctx) {
    let (s1, v1) = ctx.login(ADMIN_EMAIL, "Wrong-password-123").await;
    let (s2, v2) = ctx.login("nobody@test.local", "Wrong-password-123").await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(v1, v2, "no user enumeration through the answer");
    assert_eq!(v1["error"], "invalid_credentials");
    let (s, v) = ctx.login(&ADMIN_EMAIL.to_uppercase(), ADMIN_PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "emails are case-insensitive: {v}");
    assert_eq!(v["tokenType"], "Bearer");
    assert_eq!(v["expiresIn"], 900);
    assert_eq!(v["passwordChangeRequired"], false);
    ctx.stop().await;
}

async fn lockout_after_five_failures_then_unlock_after_30_minutes(ctx: Ctx) {
    for _ in 0..5 {
        assert_eq!(
            ctx.login(ADMIN_EMAIL, "Wrong-password-123").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (s, v) = ctx.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "locked even with the right password"
    );
    assert_eq!(
        v["error"], "invalid_credentials",
        "same answer as a wrong password"
    );
    ctx.ts.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(
        ctx.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    ctx.ts.clock.advance(Duration::from_secs(2 * 60));
    let (access, _) = ctx.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (_, audit) = ctx
        .get("/api/v1/audit/entries?limit=500", Cred::Bearer(&access))
        .await;
    let events: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"auth.account.locked"), "{events:?}");
    assert!(events.iter().filter(|e| **e == "auth.login.failed").count() >= 6);
    ctx.stop().await;
}

async fn malformed_requests_are_400_not_500(ctx: Ctx) {
    for (ct, body) in [
        (Some("application/json"), "{"),
        (Some("application/json"), "[]"),
        (
            Some("application/json"),
            "{\"email\": 5, \"password\": \"x\"}",
        ),
        (
            Some("application/json"),
            "{\"email\": \"a@b\", \"password\": \"x\", \"extra\": 1}",
        ),
        (
            Some("text/plain"),
            "{\"email\": \"a@b\", \"password\": \"x\"}",
        ),
        (None, ""),
    ] {
        let (s, v) = ctx.post_raw("/api/v1/auth/login", ct, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body:?}: {v}");
        assert_eq!(v["error"], "bad_request");
    }
    let admin = ctx.admin().await;
    let (s, _) = ctx
        .get("/api/v1/users/not-a-uuid", Cred::Bearer(&admin))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = ctx
        .get("/api/v1/users?limit=abc", Cred::Bearer(&admin))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = ctx.get("/api/v1/nothing-here", Cred::Bearer(&admin)).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, _) = ctx
        .call(
            reqwest::Method::PUT,
            "/api/v1/org",
            Cred::Bearer(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let big = "x".repeat(100 * 1024);
    let (s, _) = ctx
        .post(
            "/api/v1/auth/login",
            Cred::None,
            json!({ "email": big, "password": "x" }),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _) = ctx.get("/api/v1/auth/me", Cred::Bearer("")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    ctx.stop().await;
}

async fn replayed_refresh_token_revokes_the_family(ctx: Ctx) {
    let (a1, r1) = ctx.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (s, v) = ctx
        .post(
            "/api/v1/auth/refresh",
            Cred::None,
            json!({ "refreshToken": r1 }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (a2, r2) = (
        v["accessToken"].as_str().unwrap().to_string(),
        v["refreshToken"].as_str().unwrap().to_string(),
    );
    assert_ne!(r1, r2);
    assert_eq!(
        ctx.get("/api/v1/auth/me", Cred::Bearer(&a2)).await.0,
        StatusCode::OK
    );
    // Replay of the retired token: theft. 401 and the family dies.
    let (s, _) = ctx
        .post(
            "/api/v1/auth/refresh",
            Cred::None,
            json!({ "refreshToken": r1 }),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = ctx
        .post(
            "/api/v1/auth/refresh",
            Cred::None,
            json!({ "refreshToken": r2 }),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "the newest token of the family is revoked too"
    );
    assert_eq!(
        ctx.get("/api/v1/auth/me", Cred::Bearer(&a2)).await.0,
        StatusCode::UNAUTHORIZED,
        "and its access tokens"
    );
    assert_eq!(
        ctx.get("/api/v1/auth/me", Cred::Bearer(&a1)).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Other sessions are unaffected.
    let (a3, _) = ctx.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        ctx.get("/api/v1/auth/me", Cred::Bearer(&a3)).await.0,
        StatusCode::OK
    );
    let (s, _) = ctx
        .post(
            "/api/v1/auth/refresh",
            Cred::None,
            json!({ "refreshToken": "garbage" }),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    ctx.stop().await;
}

async fn logout_revokes_the_session(ctx: Ctx) {
    let (a, r) = ctx.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        ctx.post("/api/v1/auth/logout", Cred::Bearer(&a), json!({}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        ctx.get("/api/v1/auth/me", Cred::Bearer(&a)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ctx.post(
            "/api/v1/auth/refresh",
            Cred::None,
            json!({ "refreshToken": r })
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    // Logout by refresh token.
    let (a, r) = ctx.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        ctx.post(
            "/api/v1/auth/logout",
            Cred::None,
            json!({ "refreshToken": r })
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        ctx.get("/api/v1/auth/me", Cred::Bearer(&a)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ctx.post(
            "/api/v1/auth/logout",
            Cred::None,
            json!({ "refreshToken": "nope" })
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    ctx.stop().await;
}

fn b64(v: &Value) -> String {
    B64.encode(serde_json::to_vec(v).unwrap())
}

async fn forged_and_misaddressed_tokens_are_rejected(ctx: Ctx) {
    let (good, _) = ctx.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        ctx.get("/api/v1/auth/me", Cred::Bearer(&good)).await.0,
        StatusCode::OK,
        "positive control"
    );
    let parts: Vec<&str> = good.split('.').collect();
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    let payload: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    let claims: Claims = serde_json::from_value(payload.clone()).unwrap();
    let kid = header["kid"].as_str().unwrap();

    let mut forged = Vec::new();
    // alg: none, with and without a signature.
    forged.push(format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT", "kid": kid })),
        parts[1]
    ));
    forged.push(format!(
        "{}.{}.{}",
        b64(&json!({ "alg": "none", "kid": kid })),
        parts[1],
        parts[2]
    ));
    // Algorithm confusion: HS256 keyed with the published public key.
    let (_, jwks) = ctx.get("/api/v1/auth/jwks", Cred::None).await;
    let x = B64.decode(jwks["keys"][0]["x"].as_str().unwrap()).unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = Some(kid.to_string());
    forged.push(
        jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_secret(&x)).unwrap(),
    );
    // Payload changed under a genuine signature (another user id).
    let mut p2 = payload.clone();
    p2["sub"] = json!(Uuid::now_v7());
    forged.push(format!("{}.{}.{}", parts[0], b64(&p2), parts[2]));
    // Unknown kid, garbage, truncated.
    forged.push(format!(
        "{}.{}.{}",
        b64(&json!({ "alg": "EdDSA", "kid": "nope" })),
        parts[1],
        parts[2]
    ));
    forged.push("not.a.jwt".into());
    forged.push(format!("{}.{}", parts[0], parts[1]));
    for t in &forged {
        let (s, v) = ctx.get("/api/v1/auth/me", Cred::Bearer(t)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{t}: {v}");
    }
    // Genuinely signed, but expired / not yet valid / wrong audience / wrong issuer.
    let now = ctx.ts.clock.now_secs();
    let jwt = &ctx.ts.server.state.jwt;
    let variants = [
        Claims {
            exp: now - 60,
            iat: now - 1000,
            nbf: now - 1000,
            ..claims.clone()
        },
        Claims {
            nbf: now + 600,
            iat: now,
            exp: now + 1200,
            ..claims.clone()
        },
        Claims {
            aud: "someone-else".into(),
            ..claims.clone()
        },
        Claims {
            iss: "evil".into(),
            ..claims.clone()
        },
        Claims {
            org: Uuid::now_v7(),
            ..claims.clone()
        },
    ];
    for c in &variants {
        let t = jwt.sign(c).await.unwrap();
        assert_eq!(
            ctx.get("/api/v1/auth/me", Cred::Bearer(&t)).await.0,
            StatusCode::UNAUTHORIZED,
            "{c:?}"
        );
    }
    let t = jwt.sign(&claims).await.unwrap();
    assert_eq!(
        ctx.get("/api/v1/auth/me", Cred::Bearer(&t)).await.0,
        StatusCode::OK,
        "re-signed genuine claims pass"
    );
    ctx.stop().await;
}

async fn access_token_expires_after_15_minutes(ctx: Ctx) {
    let (a, r) = ctx.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    ctx.ts.clock.advance(Duration::from_secs(14 * 60));
    assert_eq!(
        ctx.get("/api/v1/auth/me", Cred::Bearer(&a)).await.0,
        StatusCode::OK
    );
    ctx.ts.clock.advance(Duration::from_secs(2 * 60));
    assert_eq!(
        ctx.get("/api/v1/auth/me", Cred::Bearer(&a)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = ctx
        .post(
            "/api/v1/auth/refresh",
            Cred::None,
            json!({ "refreshToken": r }),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the refresh token outlives the access token: {v}"
    );
    ctx.ts.clock.advance(Duration::from_secs(31 * 86_400));
    let (s, _) = ctx
        .post(
            "/api/v1/auth/refresh",
            Cred::None,
            json!({ "refreshToken": v["refreshToken"] }),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "refresh tokens expire too");
    ctx.stop().await;
}

async fn signing_key_rotation_keeps_sessions(ctx: Ctx) {
    let (old, _) = ctx.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let jwt = &ctx.ts.server.state.jwt;
    let new_kid = jwt.rotate_now().await.unwrap();
    assert_eq!(
        ctx.get("/api/v1/auth/me", Cred::Bearer(&old)).await.0,
        StatusCode::OK,
        "old key still verifies"
    );
    let (fresh, _) = ctx.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let header: Value =
        serde_json::from_slice(&B64.decode(fresh.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(
        header["kid"],
        new_kid.as_str(),
        "new tokens use the new key"
    );
    assert_eq!(header["alg"], "EdDSA");
    let (_, jwks) = ctx.get("/api/v1/auth/jwks", Cred::None).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    ctx.stop().await;
}

async fn one_time_password_must_be_changed_first(ctx: Ctx) {
    let admin = ctx.admin().await;
    let (s, v) = ctx
        .post(
            "/api/v1/users",
            Cred::Bearer(&admin),
            json!({ "email": "new@test.local", "role": "member" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let otp = v["oneTimePassword"].as_str().unwrap().to_string();
    let (s, v) = ctx.login("new@test.local", &otp).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["passwordChangeRequired"], true);
    let a = v["accessToken"].as_str().unwrap().to_string();
    let (s, v) = ctx.get("/api/v1/org", Cred::Bearer(&a)).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("password_change_required"))
    );
    assert_eq!(
        ctx.get("/api/v1/auth/me", Cred::Bearer(&a)).await.0,
        StatusCode::OK
    );
    let change = |cur: &str, new: &str| json!({ "currentPassword": cur, "newPassword": new });
    let (s, v) = ctx
        .post(
            "/api/v1/auth/change-password",
            Cred::Bearer(&a),
            change("Wrong-password-1", STRONG),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_current_password"))
    );
    for weak in [
        "short",
        "password1234",
        "new@test.local!!",
        "aaaaaaaaaaaaaaa",
    ] {
        let (s, v) = ctx
            .post(
                "/api/v1/auth/change-password",
                Cred::Bearer(&a),
                change(&otp, weak),
            )
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("weak_password")),
            "{weak}"
        );
    }
    let (other, _) = ctx.tokens("new@test.local", &otp).await;
    let (s, _) = ctx
        .post(
            "/api/v1/auth/change-password",
            Cred::Bearer(&a),
            change(&otp, STRONG),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        ctx.get("/api/v1/org", Cred::Bearer(&a)).await.0,
        StatusCode::OK,
        "the current session goes on"
    );
    assert_eq!(
        ctx.get("/api/v1/auth/me", Cred::Bearer(&other)).await.0,
        StatusCode::UNAUTHORIZED,
        "other sessions end"
    );
    assert_eq!(
        ctx.login("new@test.local", &otp).await.0,
        StatusCode::UNAUTHORIZED
    );
    ctx.tokens("new@test.local", STRONG).await;
    ctx.stop().await;
}

async fn health_and_ready(ctx: Ctx) {
    let (s, v) = ctx.get("/health", Cred::None).await;
    assert_eq!((s, v), (StatusCode::OK, json!({ "status": "healthy" })));
    let (s, v) = ctx.get("/ready", Cred::None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ready");
    ctx.stop().await;
}

crate::backends!(
    wrong_password_and_unknown_email_look_the_same,
    lockout_after_five_failures_then_unlock_after_30_minutes,
    malformed_requests_are_400_not_500,
    replayed_refresh_token_revokes_the_family,
    logout_revokes_the_session,
    forged_and_misaddressed_tokens_are_rejected,
    access_token_expires_after_15_minutes,
    signing_key_rotation_keeps_sessions,
    one_time_password_must_be_changed_first,
    health_and_ready,
);
