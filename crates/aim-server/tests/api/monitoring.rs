//! Security monitoring end to end (docs/monitoring.md): an agent behaves normally for a baseline
//! period on a simulated clock, then bursts denied actions from a new origin → anomalies, a
//! correlated incident, a webhook delivered with a valid `X-AIM-Signature`, an email received by
//! a real SMTP server (aiosmtpd), the trust score dropping — each visible through the API and in
//! the audit log. Then the lifecycle (roles, forward-only transitions, audit), a failing
//! receiver retried and dead-lettered, the test endpoint, route validation and another
//! organization seeing nothing.
//!
//! Needs aiosmtpd (`scripts/test-deps.sh`); without it the test prints SKIPPED, unless
//! `AIM_REQUIRE_TEST_DEPS=1` (CI), where it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aim_core::keys::KeyPair;
use aim_core::request_signing::sign_request;
use aim_server::testkit::TestServer;
use aim_store::testing::TestDb;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxStatus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::agents::{active_agent_with, fresh_nonce, key};
use crate::common::{Cred, Ctx};

fn python() -> Option<PathBuf> {
    let p = match std::env::var_os("AIM_TEST_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/test-venv/bin/python"),
    };
    let ok = Command::new(&p)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(p);
    }
    if std::env::var("AIM_REQUIRE_TEST_DEPS").as_deref() == Ok("1") {
        panic!("aiosmtpd is required (AIM_REQUIRE_TEST_DEPS=1): run scripts/test-deps.sh");
    }
    eprintln!(
        "SKIPPED: monitoring end-to-end test — no Python with aiosmtpd (run scripts/test-deps.sh)"
    );
    None
}

/// A plain-SMTP aiosmtpd writing to a Maildir.
struct Smtp {
    child: Child,
    port: u16,
    maildir: tempfile::TempDir,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    fn start(py: &Path) -> Smtp {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = tempfile::tempdir().unwrap();
        let child = Command::new(py)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Smtp {
            child,
            port,
            maildir,
        }
    }

    fn received(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.maildir.path().join("mail/new")) {
            for e in rd.flatten() {
                out.push(std::fs::read_to_string(e.path()).unwrap());
            }
        }
        out
    }
}

/// A webhook receiver: records every request; answers `status`.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

async fn receiver(status: u16) -> Receiver {
    let got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: HeaderMap, b: Bytes| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push((h, b));
                AxStatus::from_u16(status).unwrap()
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    Receiver {
        url: format!("http://{addr}/hook"),
        got,
    }
}

/// A signed request sent through the trusted proxy as if from `origin`.
async fn from_origin(
    ctx: &Ctx,
    k: &KeyPair,
    id: &str,
    path: &str,
    body: &Value,
    origin: &str,
) -> (StatusCode, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let headers = sign_request(
        k,
        id,
        "POST",
        path,
        ctx.ts.clock.now_secs(),
        &fresh_nonce(),
        &bytes,
    )
    .unwrap();
    let mut rb = ctx
        .http
        .request(Method::POST, ctx.ts.url(path))
        .header("X-Forwarded-For", origin)
        .body(bytes);
    for (n, v) in headers {
        rb = rb.header(n, v);
    }
    let r = rb.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Polls `path` until `ok` holds (advancing the simulated clock by `step` each round, so
/// retries scheduled on it come due), for at most 30 s of real time.
async fn until(
    ctx: &Ctx,
    token: &str,
    path: &str,
    step: Duration,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, v) = ctx.get(path, Cred::Bearer(token)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if ok(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting on {path}: {v}"
        );
        ctx.ts.clock.advance(step);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn find<'a>(v: &'a Value, key: &str, field: &str, value: &str) -> Option<&'a Value> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x[field] == value)
}

async fn start(db: TestDb, smtp_port: Option<u16>) -> Ctx {
    let ts = TestServer::start(db, |c| {
        c.ops.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        c.monitor.interval_ms = 50;
        c.monitor.webhook_allow_http = true;
        // The receivers below listen on 127.0.0.1.
        c.monitor.webhook_allow_private = true;
        c.monitor.alert_max_attempts = 2;
        c.monitor.alert_retry_base_ms = 1000;
        c.monitor.alert_retry_max_ms = 1000;
        c.monitor.smtp = smtp_port.map(|port| aim_alerts::email::SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            security: aim_alerts::email::SmtpSecurity::None,
            username: None,
            password: None,
            from: "AIM <aim@localhost>".into(),
            ca_cert_pem: None,
            timeout_secs: 10,
        });
        c.trust_cache_ttl_secs = 0;
        // The scenario spans simulated days; the humans' tokens outlive it.
        c.access_token_ttl_secs = 7 * 86_400;
    })
    .await
    .expect("server");
    Ctx::new(ts)
}

async fn scenario(ctx: Ctx, smtp: Smtp) {
    let admin = ctx.admin().await;
    let viewer = ctx.user_token(&admin, "viewer@m.test", "viewer").await;
    let manager = ctx.user_token(&admin, "manager@m.test", "manager").await;
    let hook = receiver(200).await;
    let broken = receiver(500).await;

    // Route validation first: nothing is stored for a bad route.
    for (body, code) in [
        (
            json!({"name": "x", "channel": "webhook", "url": "ftp://h/x"}),
            "invalid_webhook_url",
        ),
        (
            json!({"name": "x", "channel": "webhook", "url": hook.url, "secret": "short"}),
            "bad_request",
        ),
        (
            json!({"name": "x", "channel": "email", "to": ["not an address"]}),
            "bad_request",
        ),
        (
            json!({"name": "x", "channel": "pager", "url": hook.url}),
            "bad_request",
        ),
        (
            json!({"name": "x", "channel": "webhook", "url": hook.url, "minSeverity": "urgent"}),
            "bad_request",
        ),
        // U+0000 anywhere in a JSON body (PostgreSQL text cannot store it).
        (
            json!({"name": "x\u{0}", "channel": "webhook", "url": hook.url}),
            "bad_request",
        ),
    ] {
        let (s, v) = ctx
            .post("/api/v1/alert-routes", Cred::Bearer(&admin), body)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error"], code, "{v}");
    }
    let (s, v) = ctx
        .post(
            "/api/v1/alert-routes",
            Cred::Bearer(&manager),
            json!({"name": "m", "channel": "webhook", "url": hook.url}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (_, v) = ctx.get("/api/v1/alert-routes", Cred::Bearer(&admin)).await;
    assert_eq!(v["routes"].as_array().unwrap().len(), 0, "{v}");

    // Routes: webhook for medium and up (secret generated, shown once), email for high and up,
    // a broken webhook for everything.
    let (s, web) = ctx
        .post(
            "/api/v1/alert-routes",
            Cred::Bearer(&admin),
            json!({"name": "soc webhook", "channel": "webhook", "url": hook.url, "minSeverity": "medium"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{web}");
    let secret = web["secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32);
    let (s, mail) = ctx
        .post(
            "/api/v1/alert-routes",
            Cred::Bearer(&admin),
            json!({"name": "secops mail", "channel": "email", "to": ["secops@example.com"], "minSeverity": "high"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{mail}");
    let (s, bad) = ctx
        .post(
            "/api/v1/alert-routes",
            Cred::Bearer(&admin),
            json!({"name": "down", "channel": "webhook", "url": broken.url, "minSeverity": "high",
                   "secret": "a-secret-the-admin-chose-0123456789"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{bad}");
    assert!(
        bad.get("secret").is_none(),
        "a chosen secret is not echoed: {bad}"
    );
    // Secrets are never read back.
    let (_, list) = ctx
        .get("/api/v1/alert-routes", Cred::Bearer(&manager))
        .await;
    assert_eq!(list["routes"].as_array().unwrap().len(), 3);
    assert!(!list.to_string().contains(&secret));
    assert_eq!(list["routes"][0]["hasSecret"], true);

    // The test endpoint: one signed POST now; the failing receiver's status is reported.
    let (s, t) = ctx
        .post(
            &format!("/api/v1/alert-routes/{}/test", web["id"].as_str().unwrap()),
            Cred::Bearer(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["delivered"], true, "{t}");
    let (_, t) = ctx
        .post(
            &format!("/api/v1/alert-routes/{}/test", bad["id"].as_str().unwrap()),
            Cred::Bearer(&admin),
            json!({}),
        )
        .await;
    assert_eq!(t["delivered"], false, "{t}");
    assert_eq!(t["httpStatus"], 500, "{t}");
    let test_hit = hook.got.lock().unwrap().pop().expect("test alert received");
    assert_eq!(test_hit.0["x-aim-event"], "test");

    // Baseline: 24 simulated hours of normal work from the usual network.
    let k = key(7_100);
    let id = active_agent_with(&ctx, &admin, "worker", &k, &["files:read"]).await;
    let verify_path = format!("/api/v1/agents/{id}/actions/verify");
    for _ in 0..24 {
        let (s, v) = from_origin(
            &ctx,
            &k,
            &id,
            &verify_path,
            &json!({"capability": "files:read", "resource": "reports/q3.pdf"}),
            "10.20.30.40",
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "approved", "{v}");
        ctx.ts.clock.advance(Duration::from_secs(3600));
    }
    until(
        &ctx,
        &admin,
        &format!("/api/v1/agents/{id}/trust"),
        Duration::ZERO,
        |v| {
            v["factors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["factor"] == "behavioral_consistency" && f["value"].is_number())
        },
    )
    .await;
    let (_, quiet) = ctx
        .get(
            &format!("/api/v1/anomalies?agentId={id}"),
            Cred::Bearer(&viewer),
        )
        .await;
    assert_eq!(
        quiet["anomalies"].as_array().unwrap().len(),
        0,
        "normal behaviour raises nothing: {quiet}"
    );
    let (_, before) = ctx
        .get(&format!("/api/v1/agents/{id}/trust"), Cred::Bearer(&admin))
        .await;
    let score_before = before["score"].as_f64().unwrap();

    // The burst: denied actions (no grant) from a network never seen.
    for i in 0..6 {
        let (s, v) = from_origin(
            &ctx,
            &k,
            &id,
            &verify_path,
            &json!({"capability": "db:write", "resource": format!("customers/{i}")}),
            "198.51.100.23",
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "denied", "{v}");
        ctx.ts.clock.advance(Duration::from_secs(10));
    }

    // Anomalies, with the numbers behind them.
    let anomalies = until(
        &ctx,
        &viewer,
        &format!("/api/v1/anomalies?agentId={id}"),
        Duration::ZERO,
        |v| {
            find(v, "anomalies", "detector", "denial_burst").is_some()
                && find(v, "anomalies", "detector", "unusual_origin").is_some()
        },
    )
    .await;
    let burst = find(&anomalies, "anomalies", "detector", "denial_burst").unwrap();
    assert_eq!(burst["statistic"], 5.0, "{burst}");
    assert_eq!(burst["threshold"], 5.0, "{burst}");
    let origin = find(&anomalies, "anomalies", "detector", "unusual_origin").unwrap();
    assert!(
        origin["message"]
            .as_str()
            .unwrap()
            .contains("198.51.100.0/24"),
        "{origin}"
    );

    // The correlated incident.
    let incidents = until(
        &ctx,
        &viewer,
        "/api/v1/incidents?state=open",
        Duration::ZERO,
        |v| find(v, "incidents", "rule", "denial_burst_from_new_origin").is_some(),
    )
    .await;
    let incident = find(
        &incidents,
        "incidents",
        "rule",
        "denial_burst_from_new_origin",
    )
    .unwrap()
    .clone();
    assert_eq!(incident["severity"], "high");
    assert_eq!(incident["agentId"], id.as_str());
    assert_eq!(
        incident["members"].as_array().unwrap().len(),
        2,
        "{incident}"
    );
    let incident_id = incident["id"].as_str().unwrap().to_string();

    // The webhook: the incident's alert, signed with the route's secret.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (headers, body) = loop {
        let hit = hook.got.lock().unwrap().iter().find_map(|(h, b)| {
            let v: Value = serde_json::from_slice(b).ok()?;
            (v["kind"] == "incident.denial_burst_from_new_origin").then(|| (h.clone(), b.clone()))
        });
        if let Some(h) = hit {
            break h;
        }
        assert!(Instant::now() < deadline, "no incident webhook");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let sig = headers["x-aim-signature"].to_str().unwrap();
    let now = ctx.ts.clock.now_secs();
    aim_alerts::signature::verify(secret.as_bytes(), sig, &body, now, 300)
        .expect("valid signature");
    let mut forged = body.to_vec();
    forged[5] ^= 1;
    assert!(aim_alerts::signature::verify(secret.as_bytes(), sig, &forged, now, 300).is_err());
    assert!(
        aim_alerts::signature::verify(b"another-secret-of-32-characters!!", sig, &body, now, 300)
            .is_err()
    );
    let alert: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(alert["severity"], "high");
    assert_eq!(alert["agentId"], id.as_str());
    assert_eq!(alert["details"]["incidentId"], incident_id.as_str());

    // The email (high and up): received by the SMTP server.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mail_text = loop {
        if let Some(m) = smtp
            .received()
            .into_iter()
            .find(|m| m.contains("incident.denial_burst_from_new_origin"))
        {
            break m;
        }
        assert!(Instant::now() < deadline, "no alert email");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(mail_text.contains("Subject: [AIM HIGH]"), "{mail_text}");
    assert!(mail_text.contains("To: secops@example.com"), "{mail_text}");

    // The trust score dropped; Behavioral Consistency reflects the anomalies.
    let (_, after) = ctx
        .get(&format!("/api/v1/agents/{id}/trust"), Cred::Bearer(&admin))
        .await;
    let score_after = after["score"].as_f64().unwrap();
    assert!(
        score_after < score_before,
        "{score_before} -> {score_after}"
    );
    let bc = after["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["factor"] == "behavioral_consistency")
        .unwrap();
    assert!(bc["value"].as_f64().unwrap() < 1.0, "{bc}");

    // The alert list and the delivery log; the broken receiver is retried, then dead-lettered.
    let (_, alerts) = ctx.get("/api/v1/alerts", Cred::Bearer(&viewer)).await;
    let incident_alert = find(
        &alerts,
        "alerts",
        "kind",
        "incident.denial_burst_from_new_origin",
    )
    .unwrap()
    .clone();
    let alert_path = format!("/api/v1/alerts/{}", incident_alert["id"].as_str().unwrap());
    let detail = until(&ctx, &viewer, &alert_path, Duration::from_secs(2), |v| {
        v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] != "pending")
    })
    .await;
    let deliveries = detail["deliveries"].as_array().unwrap();
    assert_eq!(
        deliveries.len(),
        3,
        "webhook, email and the broken webhook: {detail}"
    );
    let dead = deliveries
        .iter()
        .find(|d| d["routeId"] == bad["id"])
        .unwrap();
    assert_eq!(dead["status"], "dead", "{dead}");
    assert_eq!(dead["attempts"], 2, "{dead}");
    assert_eq!(dead["log"].as_array().unwrap().len(), 2);
    assert_eq!(dead["log"][0]["httpStatus"], 500);
    assert!(broken.got.lock().unwrap().len() >= 3, "test + two attempts");
    for d in deliveries.iter().filter(|d| d["routeId"] != bad["id"]) {
        assert_eq!(d["status"], "delivered", "{d}");
    }
    // Medium anomalies went to the webhook only (the email route starts at high).
    let (_, all) = ctx
        .get("/api/v1/alerts?limit=500", Cred::Bearer(&viewer))
        .await;
    let origin_alert = find(&all, "alerts", "kind", "anomaly.unusual_origin").unwrap();
    let (_, od) = ctx
        .get(
            &format!("/api/v1/alerts/{}", origin_alert["id"].as_str().unwrap()),
            Cred::Bearer(&viewer),
        )
        .await;
    assert_eq!(od["deliveries"].as_array().unwrap().len(), 1, "{od}");

    // Lifecycle: viewers cannot, managers can; forward only; every change audited.
    let inc_path = format!("/api/v1/incidents/{incident_id}");
    let (s, _) = ctx
        .post(
            &format!("{inc_path}/acknowledge"),
            Cred::Bearer(&viewer),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = ctx
        .post(
            &format!("{inc_path}/acknowledge"),
            Cred::Bearer(&manager),
            json!({"note": "looking"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "acknowledged");
    let (s, v) = ctx
        .post(
            &format!("{inc_path}/acknowledge"),
            Cred::Bearer(&manager),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"], "invalid_transition");
    let (s, v) = ctx
        .post(
            &format!("{inc_path}/resolve"),
            Cred::Bearer(&manager),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "resolved");
    let (s, _) = ctx
        .post(
            &format!("{inc_path}/acknowledge"),
            Cred::Bearer(&manager),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, v) = ctx
        .post(
            &format!("{alert_path}/resolve"),
            Cred::Bearer(&admin),
            json!({"note": "rotated the key"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "resolved");
    let (s, v) = ctx
        .post(
            &format!("{alert_path}/resolve"),
            Cred::Bearer(&admin),
            json!({"bogus": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    // The audit log holds every step.
    let (_, audit) = ctx
        .get("/api/v1/audit/entries?limit=1000", Cred::Bearer(&admin))
        .await;
    let kinds: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["eventType"].as_str())
        .collect();
    for k in [
        "alert_route.created",
        "alert_route.tested",
        "monitor.anomaly.detected",
        "monitor.incident.opened",
        "monitor.alert.raised",
        "monitor.alert.delivered",
        "monitor.alert.dead_lettered",
        "incident.acknowledged",
        "incident.resolved",
        "alert.resolved",
    ] {
        assert!(kinds.contains(&k), "{k} missing from the audit log");
    }

    // Another organization sees none of it.
    let other = ctx.other_org_admin().await;
    let (_, v) = ctx.get("/api/v1/incidents", Cred::Bearer(&other)).await;
    assert_eq!(v["incidents"].as_array().unwrap().len(), 0, "{v}");
    let (s, _) = ctx.get(&inc_path, Cred::Bearer(&other)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = ctx
        .post(
            &format!("{alert_path}/acknowledge"),
            Cred::Bearer(&other),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = ctx.get("/api/v1/alert-routes", Cred::Bearer(&other)).await;
    assert_eq!(v["routes"].as_array().unwrap().len(), 0);

    // Deleting a route: gone, and 404 the second time.
    let route_path = format!("/api/v1/alert-routes/{}", bad["id"].as_str().unwrap());
    let (s, _) = ctx
        .call(Method::DELETE, &route_path, Cred::Bearer(&admin), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = ctx
        .call(Method::DELETE, &route_path, Cred::Bearer(&admin), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    drop(smtp);
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_then_burst_raises_anomalies_incident_alerts_and_drops_trust_sqlite() {
    let Some(py) = python() else { return };
    let smtp = Smtp::start(&py);
    let ctx = start(TestDb::sqlite().unwrap(), Some(smtp.port)).await;
    scenario(ctx, smtp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_then_burst_raises_anomalies_incident_alerts_and_drops_trust_postgres() {
    let Some(db) = TestDb::postgres("monitoring_e2e").await else {
        return;
    };
    let Some(py) = python() else { return };
    let smtp = Smtp::start(&py);
    let ctx = start(db, Some(smtp.port)).await;
    scenario(ctx, smtp).await;
}

/// Bad signatures on signed requests are recorded (rate-limited per agent): three of them then a
/// good request from a network the agent never used → a signature-failure burst anomaly and a
/// critical `compromised_key_suspected` incident; the failures count against Identity
/// Verification. Without a configured SMTP relay, email routes are refused.
async fn signature_failures_then_success_from_a_new_origin(ctx: Ctx) {
    let admin = ctx.admin().await;
    let (s, v) = ctx
        .post(
            "/api/v1/alert-routes",
            Cred::Bearer(&admin),
            json!({"name": "mail", "channel": "email", "to": ["secops@example.com"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"], "smtp_not_configured");

    let k = key(7_200);
    let id = active_agent_with(&ctx, &admin, "signer", &k, &["files:read"]).await;
    let path = format!("/api/v1/agents/{id}/actions/verify");
    let body = json!({"capability": "files:read", "resource": "a"});
    for _ in 0..21 {
        let (s, _) = from_origin(&ctx, &k, &id, &path, &body, "10.1.1.1").await;
        assert_eq!(s, StatusCode::OK);
        ctx.ts.clock.advance(Duration::from_secs(600));
    }
    // Three requests signed with the wrong key (through another network).
    let thief = key(7_201);
    for _ in 0..3 {
        let (s, v) = from_origin(&ctx, &thief, &id, &path, &body, "192.0.2.50").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        assert_eq!(v["error"], "invalid_signature");
    }
    // Control: another agent whose failures and success come from the same network (a
    // misconfigured client, not a thief) — no incident.
    let k2 = key(7_202);
    let id2 = active_agent_with(&ctx, &admin, "clumsy", &k2, &["files:read"]).await;
    let path2 = format!("/api/v1/agents/{id2}/actions/verify");
    for _ in 0..3 {
        let (s, _) = from_origin(&ctx, &thief, &id2, &path2, &body, "192.0.2.77").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, _) = from_origin(&ctx, &k2, &id2, &path2, &body, "192.0.2.77").await;
    assert_eq!(s, StatusCode::OK);
    // Then a good one from a third network.
    let (s, _) = from_origin(&ctx, &k, &id, &path, &body, "203.0.113.9").await;
    assert_eq!(s, StatusCode::OK);

    let incidents = until(
        &ctx,
        &admin,
        &format!("/api/v1/incidents?agentId={id}"),
        Duration::ZERO,
        |v| find(v, "incidents", "rule", "compromised_key_suspected").is_some(),
    )
    .await;
    let inc = find(&incidents, "incidents", "rule", "compromised_key_suspected").unwrap();
    // Everything before that success was analysed: the control agent has no incident.
    let (_, control) = ctx
        .get(
            &format!("/api/v1/incidents?agentId={id2}"),
            Cred::Bearer(&admin),
        )
        .await;
    assert!(
        find(&control, "incidents", "rule", "compromised_key_suspected").is_none(),
        "{control}"
    );
    assert_eq!(inc["severity"], "critical");
    assert_eq!(inc["members"].as_array().unwrap().len(), 4, "{inc}");
    let (_, anomalies) = ctx
        .get(
            &format!("/api/v1/anomalies?agentId={id}"),
            Cred::Bearer(&admin),
        )
        .await;
    let burst = find(
        &anomalies,
        "anomalies",
        "detector",
        "signature_failure_burst",
    )
    .unwrap();
    assert_eq!(burst["statistic"], 3.0, "{burst}");
    let (_, trust) = ctx
        .get(&format!("/api/v1/agents/{id}/trust"), Cred::Bearer(&admin))
        .await;
    let iv = find(&trust, "factors", "factor", "identity_verification").unwrap();
    assert!(
        iv["explanation"].as_str().unwrap().contains("3 failed"),
        "{iv}"
    );
    let (_, audit) = ctx
        .get("/api/v1/audit/entries?limit=1000", Cred::Bearer(&admin))
        .await;
    let failures: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["eventType"] == "agent.request.signature_failed")
        .collect();
    assert_eq!(failures.len(), 6);
    assert_eq!(failures[0]["clientAddr"], "192.0.2.50");
    assert_eq!(failures[0]["subject"], format!("agent:{id}"));
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_failures_then_success_from_a_new_origin_sqlite() {
    let ctx = start(TestDb::sqlite().unwrap(), None).await;
    signature_failures_then_success_from_a_new_origin(ctx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_failures_then_success_from_a_new_origin_postgres() {
    let Some(db) = TestDb::postgres("monitoring_signatures").await else {
        return;
    };
    let ctx = start(db, None).await;
    signature_failures_then_success_from_a_new_origin(ctx).await;
}

/// Webhook targets are public addresses only unless the server allows private ones: IP literals
/// in loopback, private, link-local (cloud metadata) and similar ranges are refused when the
/// route is saved; a host name is accepted there and checked when it is resolved for delivery
/// (unit-tested in `aim_alerts::destination`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_routes_to_non_public_addresses_are_refused_by_default() {
    let ts = TestServer::start(TestDb::sqlite().unwrap(), |c| {
        c.monitor.webhook_allow_http = true;
    })
    .await
    .expect("server");
    let ctx = Ctx::new(ts);
    let admin = ctx.admin().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://[::1]:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "https://10.0.0.8/hook",
        "http://2130706433/hook",
        "http://[::ffff:192.168.1.1]/hook",
    ] {
        let (s, v) = ctx
            .post(
                "/api/v1/alert-routes",
                Cred::Bearer(&admin),
                json!({"name": "x", "channel": "webhook", "url": url}),
            )
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_webhook_url")),
            "{url}: {v}"
        );
    }
    let (s, v) = ctx.get("/api/v1/alert-routes", Cred::Bearer(&admin)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["routes"].as_array().map(Vec::len), Some(0), "{v}");
    let (s, v) = ctx
        .post(
            "/api/v1/alert-routes",
            Cred::Bearer(&admin),
            json!({"name": "public", "channel": "webhook", "url": "https://hooks.example.com/aim"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    ctx.stop().await;
}
