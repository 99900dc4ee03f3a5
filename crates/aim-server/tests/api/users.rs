//! Users: create/invite, roles, deactivate, delete, tenant isolation.

use aim_server::testkit::ADMIN_EMAIL;
use aim_store::{AuditRecord, NewUser, Organization, Role};
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::common::{Cred, Ctx, STRONG};

async fn invalid_user_requests_are_refused(ctx: Ctx) {
    let admin = ctx.admin().await;
    let mk = |email: &str, role: &str, pw: Option<&str>| json!({ "email": email, "role": role, "password": pw });
    for (body, code) in [
        (
            mk("not-an-email", "member", Some(STRONG)),
            StatusCode::BAD_REQUEST,
        ),
        (
            mk("a@test.local", "superuser", Some(STRONG)),
            StatusCode::BAD_REQUEST,
        ),
        (
            mk("a@test.local", "member", Some("short")),
            StatusCode::BAD_REQUEST,
        ),
        (
            mk(ADMIN_EMAIL, "member", Some(STRONG)),
            StatusCode::CONFLICT,
        ),
    ] {
        let (s, v) = ctx
            .post("/api/v1/users", Cred::Bearer(&admin), body.clone())
            .await;
        assert_eq!(s, code, "{body}: {v}");
    }
    let (_, me) = ctx.get("/api/v1/auth/me", Cred::Bearer(&admin)).await;
    let my_id = me["id"].as_str().unwrap();
    let (s, _) = ctx
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{my_id}"),
            Cred::Bearer(&admin),
            Some(json!({ "role": "viewer" })),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "no self-demotion");
    let (s, _) = ctx
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{my_id}"),
            Cred::Bearer(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "no self-deletion");
    let (s, _) = ctx
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{}", Uuid::now_v7()),
            Cred::Bearer(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    ctx.stop().await;
}

async fn deactivation_and_deletion_cut_every_credential(ctx: Ctx) {
    let admin = ctx.admin().await;
    let id = ctx.user(&admin, "mgr@test.local", "manager").await;
    let (tok, refresh) = ctx.tokens("mgr@test.local", STRONG).await;
    let (_, v) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&tok),
            json!({ "name": "k" }),
        )
        .await;
    let key = v["key"].as_str().unwrap().to_string();
    let path = format!("/api/v1/users/{id}");
    let (s, v) = ctx
        .call(
            Method::PATCH,
            &path,
            Cred::Bearer(&admin),
            Some(json!({ "active": false })),
        )
        .await;
    assert_eq!((s, v["active"].as_bool()), (StatusCode::OK, Some(false)));
    assert_eq!(
        ctx.get("/api/v1/auth/me", Cred::Bearer(&tok)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ctx.get("/api/v1/org", Cred::Bearer(&key)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ctx.post(
            "/api/v1/auth/refresh",
            Cred::None,
            json!({ "refreshToken": refresh })
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = ctx.login("mgr@test.local", STRONG).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
    );
    // Reactivation restores login (not the revoked sessions).
    ctx.call(
        Method::PATCH,
        &path,
        Cred::Bearer(&admin),
        Some(json!({ "active": true })),
    )
    .await;
    assert_eq!(
        ctx.get("/api/v1/org", Cred::Bearer(&key)).await.0,
        StatusCode::OK
    );
    ctx.tokens("mgr@test.local", STRONG).await;
    assert_eq!(
        ctx.call(Method::DELETE, &path, Cred::Bearer(&admin), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        ctx.get("/api/v1/org", Cred::Bearer(&key)).await.0,
        StatusCode::UNAUTHORIZED,
        "keys go with the user"
    );
    assert_eq!(
        ctx.login("mgr@test.local", STRONG).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ctx.get(&path, Cred::Bearer(&admin)).await.0,
        StatusCode::NOT_FOUND
    );
    ctx.stop().await;
}

async fn organizations_see_nothing_of_each_other(ctx: Ctx) {
    let admin_a = ctx.admin().await;
    let member_a = ctx.user(&admin_a, "member@a.test", "member").await;
    let (_, k) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&admin_a),
            json!({ "name": "a-key" }),
        )
        .await;
    let key_a = k["id"].as_str().unwrap().to_string();
    // Second tenant, provisioned through the store.
    let st = &ctx.ts.server.state;
    let now = st.now_ms();
    let org_b = Organization {
        id: Uuid::now_v7(),
        name: "b".into(),
        require_2fa_admins: false,
        created_at: now,
        enforcement_mode: "strict".into(),
    };
    let hash = st.hasher.hash(STRONG).await.unwrap();
    let admin_b = NewUser {
        id: Uuid::now_v7(),
        org_id: org_b.id,
        email: "admin@b.test".into(),
        password_hash: hash,
        role: Role::Admin,
        must_change_password: false,
        created_by: None,
        created_at: now,
    };
    let audit = AuditRecord {
        org_id: Some(org_b.id),
        at: now,
        event_type: "org.created".into(),
        actor: "system".into(),
        subject: None,
        payload: json!({}),
        client_addr: None,
    };
    st.store
        .create_org_with_admin(&org_b, &admin_b, &audit)
        .await
        .unwrap();
    let (b, _) = ctx.tokens("admin@b.test", STRONG).await;
    for path in [
        format!("/api/v1/users/{member_a}"),
        format!("/api/v1/api-keys/{key_a}"),
    ] {
        assert_eq!(
            ctx.get(&path, Cred::Bearer(&b)).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        ctx.call(
            Method::PATCH,
            &format!("/api/v1/users/{member_a}"),
            Cred::Bearer(&b),
            Some(json!({ "role": "admin" }))
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ctx.call(
            Method::DELETE,
            &format!("/api/v1/users/{member_a}"),
            Cred::Bearer(&b),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ctx.call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{key_a}"),
            Cred::Bearer(&b),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ctx.post(
            &format!("/api/v1/api-keys/{key_a}/rotate"),
            Cred::Bearer(&b),
            json!({})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    for path in [
        "/api/v1/users",
        "/api/v1/api-keys",
        "/api/v1/audit/entries",
        "/api/v1/org",
    ] {
        let (s, v) = ctx.get(path, Cred::Bearer(&b)).await;
        assert_eq!(s, StatusCode::OK);
        let text = v.to_string();
        assert!(
            !text.contains(&member_a) && !text.contains(&key_a) && !text.contains("test.local"),
            "{path} leaks org A: {text}"
        );
    }
    let (_, users) = ctx.get("/api/v1/users", Cred::Bearer(&admin_a)).await;
    assert!(!users.to_string().contains("admin@b.test"));
    ctx.stop().await;
}

async fn bootstrap_without_password_requires_a_change(ctx: Ctx) {
    // The test server bootstraps with a configured password: no change required.
    let (_, v) = ctx
        .login(ADMIN_EMAIL, aim_server::testkit::ADMIN_PASSWORD)
        .await;
    assert_eq!(v["passwordChangeRequired"], false);
    ctx.stop().await;
    // Without a configured password the admin gets a one-time password it must change.
    let db = aim_store::testing::TestDb::sqlite().unwrap();
    let ts = aim_server::testkit::TestServer::start(db, |c| c.bootstrap_admin_password = None)
        .await
        .unwrap();
    let u = ts
        .server
        .state
        .store
        .find_user_by_email(ADMIN_EMAIL)
        .await
        .unwrap()
        .unwrap();
    assert!(u.must_change_password);
    assert!(u.password_hash.starts_with("$argon2id$"));
    ts.stop().await;
}

crate::backends!(
    invalid_user_requests_are_refused,
    deactivation_and_deletion_cut_every_credential,
    organizations_see_nothing_of_each_other,
    bootstrap_without_password_requires_a_change,
);
