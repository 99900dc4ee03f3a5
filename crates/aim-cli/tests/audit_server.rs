//! `opena2a audit verify|checkpoint --server`: the real server (SQLite and PostgreSQL), the real
//! binary. Negative cases: a tampered row, a rewritten history after a saved checkpoint, missing
//! credentials.

use std::process::Output;

use aim_server::testkit::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer};
use aim_store::AuditRecord;
use aim_store::testing::execute_for_org;
use assert_cmd::Command;
use serde_json::{Value, json};
use uuid::Uuid;

/// Runs the binary off the async runtime's threads.
async fn opena2a(args: Vec<String>, envs: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let home = tempfile::tempdir().unwrap();
        let mut c = Command::cargo_bin("opena2a").unwrap();
        c.env_clear()
            .env("OPENA2A_HOME", home.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in envs {
            c.env(k, v);
        }
        c.args(args).output().unwrap()
    })
    .await
    .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn scenario(ts: TestServer) {
    let http = reqwest::Client::new();
    let login: Value = http
        .post(ts.url("/api/v1/auth/login"))
        .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["accessToken"].as_str().unwrap().to_string();
    for i in 0..5 {
        let s = http
            .post(ts.url("/api/v1/api-keys"))
            .bearer_auth(&token)
            .json(&json!({ "name": format!("k{i}") }))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s, 201);
    }
    let org: Value = http
        .get(ts.url("/api/v1/org"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org: Uuid = org["id"].as_str().unwrap().parse().unwrap();
    let url = ts.server.state.config.database_url.clone().unwrap();
    let server = ts.base.clone();
    let env = || vec![("AIM_TOKEN", token.clone())];
    let dir = tempfile::tempdir().unwrap();
    let cp = dir.path().join("cp.json");

    // No credentials: an error (exit 2), not a verdict.
    let o = opena2a(
        vec![
            "audit".into(),
            "verify".into(),
            "--server".into(),
            server.clone(),
        ],
        vec![],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // Save a checkpoint, verify against it: intact.
    let o = opena2a(
        vec![
            "audit".into(),
            "checkpoint".into(),
            "--server".into(),
            server.clone(),
            "--out".into(),
            cp.display().to_string(),
        ],
        env(),
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&cp).unwrap()).unwrap();
    assert!(saved["treeSize"].as_u64().unwrap() >= 6);
    let verify = || {
        vec![
            "--json".to_string(),
            "audit".into(),
            "verify".into(),
            "--server".into(),
            server.clone(),
            "--checkpoint".into(),
            cp.display().to_string(),
        ]
    };
    let o = opena2a(verify(), env()).await;
    assert!(o.status.success(), "{}", text(&o));
    // An API key works too.
    let key: Value = http
        .post(ts.url("/api/v1/api-keys"))
        .bearer_auth(&token)
        .json(&json!({ "name": "auditor", "role": "manager" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let o = opena2a(
        vec![
            "audit".into(),
            "verify".into(),
            "--server".into(),
            server.clone(),
        ],
        vec![("AIM_API_KEY", key["key"].as_str().unwrap().to_string())],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));

    // A tampered row: exit 1, names the entry.
    execute_for_org(
        &url,
        "UPDATE audit_entries SET subject = 'user:forged' WHERE org_id = $1 AND seq = 3",
        org,
    )
    .await
    .unwrap();
    let o = opena2a(verify(), env()).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["problem"]["kind"], "HASH_MISMATCH", "{r}");
    assert_eq!(r["problem"]["seq"], 3, "{r}");

    // History rewritten after the checkpoint: the whole log replaced by a self-consistent one
    // (entries, Merkle nodes, head recomputed by the server's own code).
    for sql in [
        "DELETE FROM audit_entries WHERE org_id = $1",
        "DELETE FROM audit_nodes WHERE org_id = $1",
        "DELETE FROM audit_heads WHERE org_id = $1",
        "DELETE FROM audit_checkpoints WHERE org_id = $1",
    ] {
        execute_for_org(&url, sql, org).await.unwrap();
    }
    let forged: Vec<AuditRecord> = (0..12)
        .map(|i| AuditRecord {
            org_id: Some(org),
            at: 1_780_000_000_000 + i,
            event_type: "auth.login.succeeded".into(),
            actor: "user:nobody".into(),
            subject: None,
            payload: json!({}),
            client_addr: None,
        })
        .collect();
    ts.server.state.store.append_audits(&forged).await.unwrap();
    let unsaved = |server: &str| {
        vec![
            "audit".to_string(),
            "verify".into(),
            "--server".into(),
            server.to_string(),
        ]
    };
    // The running server remembers the tree it verified: the new head does not extend it, so it
    // refuses to sign a checkpoint over the rewritten log (an error, exit 2, naming the refusal).
    let o = opena2a(unsaved(&server), env()).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("409"), "{}", text(&o));
    // A restarted server has no such memory: the forged log is self-consistent, so verification
    // without a saved checkpoint passes — only the checkpoint kept outside the server catches it.
    let ts = ts.restart().await.unwrap();
    let server = ts.base.clone();
    let o = opena2a(unsaved(&server), env()).await;
    assert!(
        o.status.success(),
        "self-consistent without a checkpoint: {}",
        text(&o)
    );
    let verify = || {
        vec![
            "--json".to_string(),
            "audit".into(),
            "verify".into(),
            "--server".into(),
            server.clone(),
            "--checkpoint".into(),
            cp.display().to_string(),
        ]
    };
    let o = opena2a(verify(), env()).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["problem"]["kind"], "HISTORY_REWRITTEN", "{r}");
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_log_verification_sqlite() {
    scenario(TestServer::sqlite().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_log_verification_postgres() {
    let Some(ts) = TestServer::postgres("server_log_verification").await else {
        return;
    };
    scenario(ts.unwrap()).await;
}
