//! Operations: TLS 1.3 only, plain-HTTP refusal, rate limits (address, login, credential,
//! trusted proxies), `/metrics` access and content, `/ready`, master-key rotation, and no secrets
//! in the logs.

use std::sync::Arc;
use std::time::Duration;

use aim_server::Config;
use aim_server::testkit::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer};
use aim_store::testing::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Cred, Ctx};

async fn sqlite_with(tweak: impl FnOnce(&mut Config)) -> Ctx {
    let db = TestDb::sqlite().expect("db");
    Ctx::new(TestServer::start(db, tweak).await.expect("server"))
}

// ----- TLS -------------------------------------------------------------------------------------

fn tls_client(
    ts: &TestServer,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::TlsConnector {
    let (cert, _) = aim_server::tls::self_signed_paths(&ts.server.state.config.home);
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

async fn tls_get(
    ts: &TestServer,
    versions: &[&'static rustls::SupportedProtocolVersion],
    path: &str,
) -> std::io::Result<String> {
    let tcp = tokio::net::TcpStream::connect(ts.server.addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tls_client(ts, versions).connect(name, tcp).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes()).await?;
    let mut out = String::new();
    tls.read_to_string(&mut out).await?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_only_client_is_refused_and_tls13_works() {
    let ctx = sqlite_with(|c| c.ops.tls_self_signed = true).await;
    assert!(ctx.ts.base.starts_with("https://"));
    let err = tls_get(&ctx.ts, &[&rustls::version::TLS12], "/health").await;
    assert!(
        err.is_err(),
        "a TLS 1.2-only client must fail the handshake: {err:?}"
    );

    // Plain HTTP on the TLS port is not answered as HTTP.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/health", ctx.ts.server.addr))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != StatusCode::OK);

    let ok = tls_get(&ctx.ts, &[&rustls::version::TLS13], "/health")
        .await
        .expect("TLS 1.3");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("healthy"), "{ok}");

    // The certificate is reused (pinnable) and its key is private.
    let (cert, key) = aim_server::tls::self_signed_paths(&ctx.ts.server.state.config.home);
    let pem = std::fs::read(&cert).unwrap();
    let again = aim_server::tls::ensure_self_signed(&ctx.ts.server.state.config.home).unwrap();
    assert_eq!(again.0, cert);
    assert_eq!(std::fs::read(&cert).unwrap(), pem, "not regenerated");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_non_loopback_is_refused_unless_insecure_http() {
    let db = TestDb::sqlite().unwrap();
    let err = TestServer::start(db, |c| c.listen = "0.0.0.0:0".parse().unwrap())
        .await
        .err()
        .expect("must refuse");
    let msg = err.to_string();
    assert!(
        msg.contains("refusing to listen on 0.0.0.0:0 without TLS"),
        "{msg}"
    );
    assert!(
        msg.contains("--insecure-http") && msg.contains("--tls-cert"),
        "{msg}"
    );

    // Missing or broken certificate files are configuration errors, not panics.
    let db = TestDb::sqlite().unwrap();
    let err = TestServer::start(db, |c| {
        c.ops.tls_cert = Some("/nonexistent/cert.pem".into());
        c.ops.tls_key = Some("/nonexistent/key.pem".into());
    })
    .await
    .err()
    .expect("bad cert");
    assert!(err.to_string().contains("TLS certificate"), "{err}");

    let db = TestDb::sqlite().unwrap();
    let ts = TestServer::start(db, |c| {
        c.listen = "0.0.0.0:0".parse().unwrap();
        c.ops.insecure_http = true;
    })
    .await
    .expect("--insecure-http allows it");
    ts.stop().await;
    let db = TestDb::sqlite().unwrap();
    let ts = TestServer::start(db, |c| {
        c.listen = "0.0.0.0:0".parse().unwrap();
        c.ops.tls_self_signed = true;
    })
    .await
    .expect("TLS allows it");
    ts.stop().await;
}

// ----- rate limits -----------------------------------------------------------------------------

async fn assert_429(resp: reqwest::Response) {
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let ra: u64 = resp
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&ra), "{ra}");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "rate_limited", "{v}");
    assert!(v["message"].as_str().unwrap().contains("retry"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_address_quota_answers_429_with_retry_after() {
    let ctx = sqlite_with(|c| c.ops.rate_limit_address_per_minute = 5).await;
    for _ in 0..5 {
        let (s, _) = ctx.get("/health", Cred::None).await;
        assert_eq!(s, StatusCode::OK);
    }
    let resp = ctx
        .http
        .get(ctx.ts.url("/api/v1/org"))
        .send()
        .await
        .unwrap();
    assert_429(resp).await;
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_quota_is_stricter_than_other_routes() {
    let ctx = sqlite_with(|c| {
        c.ops.rate_limit_address_per_minute = 100;
        c.ops.rate_limit_login_per_minute = 2;
    })
    .await;
    for _ in 0..2 {
        let (s, _) = ctx.login(ADMIN_EMAIL, "wrong-password-1").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // Even the right password is not checked once the quota is spent.
    let resp = ctx
        .http
        .post(ctx.ts.url("/api/v1/auth/login"))
        .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_429(resp).await;
    let (s, _) = ctx.get("/health", Cred::None).await;
    assert_eq!(s, StatusCode::OK, "other routes keep their own quota");
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_credential_quota_is_per_user_and_per_api_key() {
    let ctx = sqlite_with(|c| c.ops.rate_limit_credential_per_minute = 4).await;
    let admin = ctx.admin().await;
    let (s, k) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&admin),
            json!({ "name": "ci" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let key = k["key"].as_str().unwrap().to_string();
    // 1 request spent by the key creation; 3 more pass.
    for _ in 0..3 {
        let (s, _) = ctx.get("/api/v1/auth/me", Cred::Bearer(&admin)).await;
        assert_eq!(s, StatusCode::OK);
    }
    let resp = ctx
        .http
        .get(ctx.ts.url("/api/v1/auth/me"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_429(resp).await;
    // A new session of the same user shares the user's quota.
    let (again, _) = ctx.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (s, _) = ctx.get("/api/v1/auth/me", Cred::Bearer(&again)).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // The API key has its own quota.
    let (s, v) = ctx.get("/api/v1/org", Cred::XApiKey(&key)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Failed authentication does not spend anyone's credential quota.
    for _ in 0..10 {
        let (s, _) = ctx.get("/api/v1/org", Cred::Bearer("not-a-token")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    ctx.stop().await;
}

async fn login_from(ctx: &Ctx, forwarded: (&str, &str)) -> StatusCode {
    ctx.http
        .post(ctx.ts.url("/api/v1/auth/login"))
        .header(forwarded.0, forwarded.1)
        .json(&json!({ "email": ADMIN_EMAIL, "password": "wrong-password-2" }))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_from_untrusted_peers_are_ignored() {
    let ctx = sqlite_with(|c| c.ops.rate_limit_login_per_minute = 1).await;
    assert_eq!(
        login_from(&ctx, ("x-forwarded-for", "198.51.100.1")).await,
        StatusCode::UNAUTHORIZED
    );
    // A client cannot claim to be someone else to get a fresh quota.
    assert_eq!(
        login_from(&ctx, ("x-forwarded-for", "198.51.100.2")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from(&ctx, ("forwarded", "for=198.51.100.3")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_from_trusted_proxies_name_the_client() {
    let ctx = sqlite_with(|c| {
        c.ops.rate_limit_login_per_minute = 1;
        c.ops.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    assert_eq!(
        login_from(&ctx, ("x-forwarded-for", "198.51.100.1")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from(&ctx, ("x-forwarded-for", "198.51.100.2")).await,
        StatusCode::UNAUTHORIZED,
        "another client behind the proxy has its own quota"
    );
    assert_eq!(
        login_from(&ctx, ("forwarded", "for=\"198.51.100.1:5555\"")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The forged leftmost hop is not believed: the proxy-appended one is the client.
    assert_eq!(
        login_from(&ctx, ("x-forwarded-for", "203.0.113.50, 198.51.100.2")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The audit log records the resolved client address.
    let admin = ctx.admin().await;
    let (s, v) = ctx.get("/api/v1/audit/entries", Cred::Bearer(&admin)).await;
    assert_eq!(s, StatusCode::OK);
    let text = v.to_string();
    assert!(
        text.contains("198.51.100.1") && text.contains("198.51.100.2"),
        "{text}"
    );
    ctx.stop().await;
}

// ----- metrics and readiness -------------------------------------------------------------------

async fn metrics_with(ctx: &Ctx, token: Option<&str>) -> (StatusCode, String) {
    let mut rb = ctx.http.get(ctx.ts.url("/metrics"));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_when_one_is_configured() {
    let ctx = sqlite_with(|c| c.ops.metrics_token = Some("m3trics-t0ken".to_string().into())).await;
    assert_eq!(metrics_with(&ctx, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        metrics_with(&ctx, Some("wrong")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        metrics_with(&ctx, Some("m3trics-t0ken-longer")).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, body) = metrics_with(&ctx, Some("m3trics-t0ken")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("aim_http_requests_total"), "{body}");
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_routes_auth_failures_rate_limits_and_pool() {
    let ctx = sqlite_with(|c| c.ops.rate_limit_login_per_minute = 2).await;
    let admin = ctx.admin().await;
    let _ = ctx.get("/health", Cred::None).await;
    let _ = ctx
        .get(
            "/api/v1/users/0191c1c4-1111-7000-8000-000000000000",
            Cred::Bearer(&admin),
        )
        .await;
    let _ = ctx.login(ADMIN_EMAIL, "wrong-password-3").await;
    let _ = ctx.login(ADMIN_EMAIL, "wrong-password-4").await;
    let _ = ctx
        .get("/no/such/route/with-secret-looking-path", Cred::None)
        .await;
    // One record through the group-commit writer (what every signed agent request does).
    let record = aim_store::AuditRecord {
        org_id: None,
        at: 1_780_000_000_000,
        event_type: "test.metrics".into(),
        actor: "system".into(),
        subject: None,
        payload: serde_json::json!({}),
        client_addr: None,
    };
    assert!(
        ctx.ts
            .server
            .state
            .writer
            .commit_record(record, aim_store::DecisionOp::None)
            .await
            .unwrap()
    );
    let (s, body) = metrics_with(&ctx, None).await;
    assert_eq!(s, StatusCode::OK, "loopback may read without a token");
    for needle in [
        "aim_decision_batch_size_count 1",
        "aim_decision_batch_size_sum 1.0",
        "aim_decision_commit_seconds_count 1",
        "aim_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1",
        "aim_http_requests_total{method=\"POST\",route=\"/api/v1/auth/login\",status=\"200\"} 1",
        "aim_http_requests_total{method=\"POST\",route=\"/api/v1/auth/login\",status=\"401\"} 1",
        "aim_http_requests_total{method=\"POST\",route=\"/api/v1/auth/login\",status=\"429\"} 1",
        "aim_http_requests_total{method=\"GET\",route=\"/api/v1/users/{id}\",status=\"404\"} 1",
        "aim_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
        "aim_http_request_duration_seconds_bucket{",
        "aim_auth_failures_total{route=\"/api/v1/auth/login\"} 1",
        "aim_rate_limited_total{scope=\"login\"} 1",
        "aim_db_pool_max_connections 5",
        "aim_db_pool_connections ",
    ] {
        assert!(body.contains(needle), "missing {needle:?} in\n{body}");
    }
    // Nothing per-user: no emails, ids, tokens or raw paths.
    for leak in [
        ADMIN_EMAIL,
        admin.as_str(),
        "0191c1c4",
        "with-secret-looking-path",
        "127.0.0.1",
    ] {
        assert!(!body.contains(leak), "metrics leak {leak:?}");
    }
    ctx.stop().await;
}

async fn ready_checks_the_store(ctx: Ctx) {
    let (s, v) = ctx.get("/ready", Cred::None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "ready");
    ctx.ts.server.state.store.close().await;
    let (s, v) = ctx.get("/ready", Cred::None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["status"], "unavailable");
    let (s, _) = ctx.get("/health", Cred::None).await;
    assert_eq!(s, StatusCode::OK, "liveness does not depend on the store");
}

// ----- master-key rotation ---------------------------------------------------------------------

fn totp_code(secret_b32: &str, t: i64) -> String {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .unwrap();
    aim_server::totp::code_at(&secret, t).unwrap()
}

async fn login_totp(ctx: &Ctx, secret: &str) -> StatusCode {
    ctx.ts.clock.advance(Duration::from_secs(31));
    let code = totp_code(secret, ctx.ts.clock.now_secs());
    ctx.post(
        "/api/v1/auth/login",
        Cred::None,
        json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totpCode": code }),
    )
    .await
    .0
}

async fn enroll_totp(ctx: &Ctx, token: &str) -> (String, Vec<String>) {
    let (s, e) = ctx
        .post("/api/v1/auth/totp/enroll", Cred::Bearer(token), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let secret = e["secret"].as_str().unwrap().to_string();
    let code = totp_code(&secret, ctx.ts.clock.now_secs());
    let (s, c) = ctx
        .post(
            "/api/v1/auth/totp/confirm",
            Cred::Bearer(token),
            json!({ "code": code }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let codes = c["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    (secret, codes)
}

async fn sealed_versions(ctx: &Ctx) -> Vec<(String, u32)> {
    let store = &ctx.ts.server.state.store;
    let mut out = Vec::new();
    for col in aim_store::SealedColumn::ALL {
        for v in store.list_sealed(col, None, 1000).await.unwrap() {
            out.push((
                col.name().to_string(),
                aim_server::keyring::sealed_version(&v.sealed).unwrap(),
            ));
        }
    }
    out
}

async fn rotate_key_reencrypts_every_sealed_value(ctx: Ctx) {
    let admin = ctx.admin().await;
    let (secret, _) = enroll_totp(&ctx, &admin).await;
    // A second user with a pending (unconfirmed) enrolment: another sealed column.
    ctx.user(&admin, "pending@test.local", "member").await;
    let (member, _) = ctx
        .tokens("pending@test.local", crate::common::STRONG)
        .await;
    let (s, _) = ctx
        .post("/api/v1/auth/totp/enroll", Cred::Bearer(&member), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(login_totp(&ctx, &secret).await, StatusCode::OK);

    let before = sealed_versions(&ctx).await;
    assert!(
        before.len() >= 3,
        "TOTP, pending TOTP and JWT key rows: {before:?}"
    );
    assert!(before.iter().all(|(_, v)| *v == 1));

    let config = (*ctx.ts.server.state.config).clone();
    let store = ctx.ts.server.state.store.clone();

    // Negative first: with AIM_MASTER_KEY the file cannot be rotated; retiring needs a clean pass.
    let mut env_cfg = config.clone();
    env_cfg.master_key = Some(base64_key().into());
    let err = aim_server::key_rotation::rotate(store.as_ref(), &env_cfg, Default::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AIM_MASTER_KEY"), "{err}");

    let opts = aim_server::key_rotation::RotateOptions {
        batch: 1,
        ..Default::default()
    };
    let r = aim_server::key_rotation::rotate(store.as_ref(), &config, opts)
        .await
        .unwrap();
    assert!(r.added);
    assert_eq!(r.version, 2);
    assert_eq!(r.resealed as usize, before.len(), "{r:?}");
    assert_eq!(r.remaining_old, 0);
    let after = sealed_versions(&ctx).await;
    assert!(after.iter().all(|(_, v)| *v == 2), "{after:?}");

    // The running server opens v2 values (it reloads the key file) and keeps signing.
    assert_eq!(login_totp(&ctx, &secret).await, StatusCode::OK);
    let (s, _) = ctx.get("/api/v1/auth/me", Cred::Bearer(&admin)).await;
    assert_eq!(s, StatusCode::OK);

    // Retire v1: only v2 remains in the file, and a fresh ring opens everything.
    let opts = aim_server::key_rotation::RotateOptions {
        reseal_only: true,
        retire_old: true,
        ..Default::default()
    };
    let r = aim_server::key_rotation::rotate(store.as_ref(), &config, opts)
        .await
        .unwrap();
    assert_eq!(r.retired, vec![1]);
    assert_eq!(r.resealed, 0);
    let ring = aim_server::keyring::KeyRing::load(None, &config.master_key_file).unwrap();
    assert_eq!(ring.versions(), vec![2]);
    for col in aim_store::SealedColumn::ALL {
        for v in store.list_sealed(col, None, 1000).await.unwrap() {
            ring.open(&v.row.context(), &v.sealed)
                .expect("opens with v2 only");
        }
    }
    assert_eq!(login_totp(&ctx, &secret).await, StatusCode::OK);
    // Wrong TOTP still refused after rotation.
    let (s, _) = ctx
        .post(
            "/api/v1/auth/login",
            Cred::None,
            json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totpCode": "000000" }),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    ctx.stop().await;
}

fn base64_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([9u8; 32])
}

crate::backends!(
    ready_checks_the_store,
    rotate_key_reencrypts_every_sealed_value
);

// ----- no secrets in logs ----------------------------------------------------------------------

#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_contain_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_writer(move || writer.clone())
        .finish();
    // Global: the server logs from its own tasks. (nextest runs each test in its own process.)
    let _ = tracing::subscriber::set_global_default(subscriber);

    let ctx = sqlite_with(|c| c.log_format = aim_server::config::LogFormat::Json).await;
    let mut secrets: Vec<String> = vec![ADMIN_PASSWORD.into(), crate::common::STRONG.into()];
    let (s, _) = ctx.login(ADMIN_EMAIL, "Wr0ng-but-secret-pw!").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    secrets.push("Wr0ng-but-secret-pw!".into());
    let (access, refresh) = ctx.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    secrets.extend([access.clone(), refresh.clone()]);
    let (s, r) = ctx
        .post(
            "/api/v1/auth/refresh",
            Cred::None,
            json!({ "refreshToken": refresh }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let access2 = r["accessToken"].as_str().unwrap().to_string();
    secrets.extend([
        access2.clone(),
        r["refreshToken"].as_str().unwrap().to_string(),
    ]);
    // Replaying the retired refresh token (theft path) logs too.
    let (s, _) = ctx
        .post(
            "/api/v1/auth/refresh",
            Cred::None,
            json!({ "refreshToken": refresh }),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (access3, _) = ctx.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    secrets.push(access3.clone());
    let (s, k) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&access3),
            json!({ "name": "log-test" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let key = k["key"].as_str().unwrap().to_string();
    secrets.push(key.clone());
    let (s, _) = ctx.get("/api/v1/org", Cred::XApiKey(&key)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = ctx.get("/api/v1/org", Cred::Bearer(&key)).await;
    assert_eq!(s, StatusCode::OK);
    let bad_key = format!("{}x", &key[..key.len() - 1]);
    let (s, _) = ctx.get("/api/v1/org", Cred::XApiKey(&bad_key)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    secrets.push(bad_key);
    let (secret, recovery) = enroll_totp(&ctx, &access3).await;
    secrets.push(secret.clone());
    secrets.extend(recovery.iter().cloned());
    assert_eq!(login_totp(&ctx, &secret).await, StatusCode::OK);
    let (s, _) = ctx
        .post(
            "/api/v1/auth/login",
            Cred::None,
            json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "recoveryCode": recovery[0] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    ctx.stop().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.lines().count() > 10, "logs were captured:\n{logs}");
    assert!(
        logs.lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "JSON lines"
    );
    for s in &secrets {
        assert!(!s.is_empty());
        assert!(!logs.contains(s.as_str()), "secret {s:?} found in the logs");
    }
    // Also no JWT or API-key shaped value at all, and no base32 of the TOTP secret's prefix.
    assert!(!logs.contains("aim_live_"), "an API key prefix leaked");
    assert!(!logs.contains("eyJ"), "a JWT leaked");
}
