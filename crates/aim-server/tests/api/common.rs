//! Shared helpers and the backend macro.

use aim_server::testkit::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const STRONG: &str = "g7#kP2m!qZ9w-xy";

pub struct Ctx {
    pub ts: TestServer,
    pub http: reqwest::Client,
}

/// Who calls.
#[derive(Clone, Copy)]
pub enum Cred<'a> {
    None,
    Bearer(&'a str),
    XApiKey(&'a str),
}

impl Ctx {
    pub fn new(ts: TestServer) -> Ctx {
        Ctx {
            ts,
            http: reqwest::Client::new(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        cred: Cred<'_>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self.http.request(method, self.ts.url(path));
        match cred {
            Cred::None => {}
            Cred::Bearer(t) => rb = rb.bearer_auth(t),
            Cred::XApiKey(k) => rb = rb.header("x-api-key", k),
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        assert_ne!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "500 on {path}: {v}"
        );
        (status, v)
    }

    pub async fn get(&self, path: &str, cred: Cred<'_>) -> (StatusCode, Value) {
        self.call(Method::GET, path, cred, None).await
    }

    pub async fn post(&self, path: &str, cred: Cred<'_>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, cred, Some(body)).await
    }

    /// Raw body (for malformed-JSON tests).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: &'static str,
    ) -> (StatusCode, Value) {
        let mut rb = self.http.post(self.ts.url(path)).body(body);
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status();
        let v = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, v)
    }

    pub async fn login(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/api/v1/auth/login",
            Cred::None,
            json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Logs in and returns `(accessToken, refreshToken)`, panicking unless 200.
    pub async fn tokens(&self, email: &str, password: &str) -> (String, String) {
        let (s, v) = self.login(email, password).await;
        assert_eq!(s, StatusCode::OK, "login {email}: {v}");
        (
            v["accessToken"].as_str().unwrap().to_string(),
            v["refreshToken"].as_str().unwrap().to_string(),
        )
    }

    pub async fn admin(&self) -> String {
        self.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await.0
    }

    /// Creates a user with `role` and returns its access token.
    pub async fn user_token(&self, admin: &str, email: &str, role: &str) -> String {
        self.user(admin, email, role).await;
        self.tokens(email, STRONG).await.0
    }

    /// Provisions a second organization (through the store) and returns its admin's token.
    pub async fn other_org_admin(&self) -> String {
        use aim_store::{AuditRecord, NewUser, Organization, Role};
        let st = &self.ts.server.state;
        let now = st.now_ms();
        let org = Organization {
            id: uuid::Uuid::now_v7(),
            name: "other".into(),
            require_2fa_admins: false,
            created_at: now,
            enforcement_mode: "strict".into(),
        };
        let admin = NewUser {
            id: uuid::Uuid::now_v7(),
            org_id: org.id,
            email: "admin@other.test".into(),
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
        self.tokens("admin@other.test", STRONG).await.0
    }

    /// Creates a user with a known strong password; returns its id.
    pub async fn user(&self, admin: &str, email: &str, role: &str) -> String {
        let (s, v) = self
            .post(
                "/api/v1/users",
                Cred::Bearer(admin),
                json!({ "email": email, "role": role, "password": STRONG }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    pub async fn stop(self) {
        self.ts.stop().await;
    }
}

/// Generates `sqlite::name` and `postgres::name` tests for each listed `async fn name(ctx: Ctx)`.
#[macro_export]
macro_rules! backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let ts = aim_server::testkit::TestServer::sqlite().await.expect("server");
                    super::$name($crate::common::Ctx::new(ts)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(ts) = aim_server::testkit::TestServer::postgres(stringify!($name)).await else { return };
                    super::$name($crate::common::Ctx::new(ts.expect("server"))).await;
                }
            )*
        }
    };
}
