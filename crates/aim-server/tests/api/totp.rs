//! TOTP: enrollment, login with a code, replay refusal, recovery codes, "2FA required for admins".

use std::time::Duration;

use aim_server::testkit::{ADMIN_EMAIL, ADMIN_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Cred, Ctx};

fn code(secret_b32: &str, t: i64) -> String {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .unwrap();
    aim_server::totp::code_at(&secret, t).unwrap()
}

async fn login_with(ctx: &Ctx, extra: Value) -> (StatusCode, Value) {
    let mut body = json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    ctx.post("/api/v1/auth/login", Cred::None, body).await
}

async fn reused_and_wrong_codes_are_refused(ctx: Ctx) {
    let admin = ctx.admin().await;
    let (s, v) = ctx
        .post(
            "/api/v1/auth/totp/confirm",
            Cred::Bearer(&admin),
            json!({ "code": "123456" }),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "nothing to confirm yet: {v}");
    let (s, e) = ctx
        .post("/api/v1/auth/totp/enroll", Cred::Bearer(&admin), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let secret = e["secret"].as_str().unwrap().to_string();
    assert!(
        e["otpauthUri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    assert!(e["qrSvg"].as_str().unwrap().contains("<svg"));
    let t0 = ctx.ts.clock.now_secs();
    let (s, _) = ctx
        .post(
            "/api/v1/auth/totp/confirm",
            Cred::Bearer(&admin),
            json!({ "code": "000000" }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let c0 = code(&secret, t0);
    let (s, v) = ctx
        .post(
            "/api/v1/auth/totp/confirm",
            Cred::Bearer(&admin),
            json!({ "code": c0 }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let recovery: Vec<String> = v["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    // Password alone is no longer enough.
    let (s, v) = login_with(&ctx, json!({})).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("totp_required"))
    );
    // The confirming code cannot be replayed.
    let (s, _) = login_with(&ctx, json!({ "totpCode": c0 })).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = login_with(&ctx, json!({ "totpCode": "999999" })).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    ctx.ts.clock.advance(Duration::from_secs(30));
    let c1 = code(&secret, ctx.ts.clock.now_secs());
    let (s, v) = login_with(&ctx, json!({ "totpCode": c1 })).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = login_with(&ctx, json!({ "totpCode": c1 })).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a code is accepted at most once"
    );
    // Recovery codes: once each, formatting-insensitive.
    let (s, _) = login_with(&ctx, json!({ "recoveryCode": recovery[0].to_uppercase() })).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = login_with(&ctx, json!({ "recoveryCode": recovery[0] })).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Enrolling again while enabled is refused; disabling needs password + code.
    let (tok, _) = {
        let (_, v) = login_with(&ctx, json!({ "recoveryCode": recovery[1] })).await;
        (v["accessToken"].as_str().unwrap().to_string(), ())
    };
    assert_eq!(
        ctx.post("/api/v1/auth/totp/enroll", Cred::Bearer(&tok), json!({}))
            .await
            .0,
        StatusCode::CONFLICT
    );
    ctx.ts.clock.advance(Duration::from_secs(30));
    let c2 = code(&secret, ctx.ts.clock.now_secs());
    let (s, _) = ctx
        .post(
            "/api/v1/auth/totp/disable",
            Cred::Bearer(&tok),
            json!({ "password": "Wrong-password-1", "code": c2 }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = ctx
        .post(
            "/api/v1/auth/totp/disable",
            Cred::Bearer(&tok),
            json!({ "password": ADMIN_PASSWORD, "code": c2 }),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    ctx.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // The secret is stored sealed, never in clear.
    let u = ctx
        .ts
        .server
        .state
        .store
        .find_user_by_email(ADMIN_EMAIL)
        .await
        .unwrap()
        .unwrap();
    assert!(u.totp_secret.is_none());
    ctx.stop().await;
}

async fn org_can_require_2fa_for_admins(ctx: Ctx) {
    let admin = ctx.admin().await;
    ctx.user(&admin, "viewer@test.local", "viewer").await;
    let (s, v) = ctx
        .call(
            Method::PATCH,
            "/api/v1/org",
            Cred::Bearer(&admin),
            Some(json!({ "require2faForAdmins": true })),
        )
        .await;
    assert_eq!(
        (s, v["require2faForAdmins"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let (s, v) = ctx.get("/api/v1/users", Cred::Bearer(&admin)).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("totp_enrollment_required"))
    );
    let (_, v) = ctx.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(v["totpEnrollmentRequired"], true);
    // Non-admins are not affected.
    let (viewer, _) = ctx.tokens("viewer@test.local", crate::common::STRONG).await;
    assert_eq!(
        ctx.get("/api/v1/org", Cred::Bearer(&viewer)).await.0,
        StatusCode::OK
    );
    // Enrolling lifts the restriction.
    let (_, e) = ctx
        .post("/api/v1/auth/totp/enroll", Cred::Bearer(&admin), json!({}))
        .await;
    let secret = e["secret"].as_str().unwrap().to_string();
    let c = code(&secret, ctx.ts.clock.now_secs());
    assert_eq!(
        ctx.post(
            "/api/v1/auth/totp/confirm",
            Cred::Bearer(&admin),
            json!({ "code": c })
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        ctx.get("/api/v1/users", Cred::Bearer(&admin)).await.0,
        StatusCode::OK
    );
    ctx.ts.clock.advance(Duration::from_secs(30));
    let c = code(&secret, ctx.ts.clock.now_secs());
    let (s, _) = ctx
        .post(
            "/api/v1/auth/totp/disable",
            Cred::Bearer(&admin),
            json!({ "password": ADMIN_PASSWORD, "code": c }),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "admins cannot switch 2FA off while the org requires it"
    );
    let (_, audit) = ctx
        .get("/api/v1/audit/entries?limit=500", Cred::Bearer(&admin))
        .await;
    let events = audit.to_string();
    assert!(events.contains("org.settings_changed") && events.contains("auth.totp.enabled"));
    assert!(!events.contains(&secret), "no TOTP secret in the audit log");
    ctx.stop().await;
}

crate::backends!(
    reused_and_wrong_codes_are_refused,
    org_can_require_2fa_for_admins
);
