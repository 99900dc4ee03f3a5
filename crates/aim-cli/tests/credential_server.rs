//! `opena2a credential verify` on a credential issued by the real server
//! (`GET /api/v1/agents/{id}/credential`, docs/credentials.md), SQLite and PostgreSQL. Negative
//! cases first: wrong trusted issuer, no key, a tampered copy, verification after expiry.

use std::process::Output;

use aim_core::aip;
use aim_core::clock::Clock;
use aim_core::keys::{KeyPair, encode_base64};
use aim_server::testkit::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer};
use assert_cmd::Command;
use serde_json::{Value, json};

/// Runs the binary off the async runtime's threads.
async fn opena2a(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let home = tempfile::tempdir().unwrap();
        let mut c = Command::cargo_bin("opena2a").unwrap();
        c.env_clear()
            .env("OPENA2A_HOME", home.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default());
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

async fn post(
    http: &reqwest::Client,
    ts: &TestServer,
    token: &str,
    path: &str,
    body: Value,
) -> Value {
    let r = http
        .post(ts.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
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
    let k = KeyPair::from_seed(&[77u8; 32]);
    let agent = post(
        &http,
        &ts,
        &token,
        "/api/v1/agents",
        json!({ "name": "cli-cred", "publicKey": encode_base64(&k.public().to_bytes()) }),
    )
    .await;
    let id = agent["id"].as_str().unwrap().to_string();
    let c = post(
        &http,
        &ts,
        &token,
        &format!("/api/v1/agents/{id}/challenge"),
        json!({}),
    )
    .await;
    let c: aip::Challenge = serde_json::from_value(c).unwrap();
    let resp = aip::respond(&c, &k, "k", ts.clock.now());
    post(
        &http,
        &ts,
        &token,
        &format!("/api/v1/agents/{id}/verify"),
        serde_json::to_value(&resp).unwrap(),
    )
    .await;
    let r = http
        .get(ts.url(&format!("/api/v1/agents/{id}/credential")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    let cred: Value = serde_json::from_slice(&bytes).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cred.json");
    std::fs::write(&file, &bytes).unwrap();
    let issuer = cred["issuerDid"].as_str().unwrap().to_string();
    let key_id = cred["signatures"][0]["keyId"].as_str().unwrap().to_string();
    let org_key = ts
        .server
        .state
        .org_signing_key(
            ts.server
                .state
                .store
                .find_user_by_email(ADMIN_EMAIL)
                .await
                .unwrap()
                .unwrap()
                .org_id,
        )
        .await
        .unwrap();
    let key_flag = format!("{key_id}={}", hex::encode(org_key.public.as_bytes()));
    let f = file.display().to_string();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec!["credential".into(), "verify".into()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };

    // Wrong trusted issuer.
    let o = opena2a(args(&[
        &f,
        "--trusted-issuer",
        "did:web:other.example",
        "--key",
        &key_flag,
    ]))
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("UNTRUSTED_ISSUER"), "{}", text(&o));
    // Trusted issuer, but no key to check the signature with.
    let o = opena2a(args(&[&f, "--trusted-issuer", &issuer])).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // Tampered copy.
    let mut t = cred.clone();
    t["trustScore"] = json!(100.0);
    let tf = dir.path().join("tampered.json");
    std::fs::write(&tf, serde_json::to_vec(&t).unwrap()).unwrap();
    let o = opena2a(args(&[
        &tf.display().to_string(),
        "--trusted-issuer",
        &issuer,
        "--key",
        &key_flag,
    ]))
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("SIGNATURE_INVALID"), "{}", text(&o));
    // After expiry.
    let after = chrono::DateTime::parse_from_rfc3339(cred["expiresAt"].as_str().unwrap())
        .unwrap()
        .to_rfc3339();
    let o = opena2a(args(&[
        &f,
        "--trusted-issuer",
        &issuer,
        "--key",
        &key_flag,
        "--at",
        &after,
    ]))
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("EXPIRED"), "{}", text(&o));
    // Accepted.
    let o = opena2a(args(&[&f, "--trusted-issuer", &issuer, "--key", &key_flag])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_credential_verifies_with_the_cli_sqlite() {
    scenario(TestServer::sqlite().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_credential_verifies_with_the_cli_postgres() {
    let Some(ts) = TestServer::postgres("server_credential_verifies_with_the_cli").await else {
        return;
    };
    scenario(ts.unwrap()).await;
}
