//! `opena2a agent register` end to end: a real server (in this process), the real binary, a real
//! local identity. Negative cases first.

use aim_server::testkit::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer};
use assert_cmd::Command;
use serde_json::{Value, json};

async fn api_key(ts: &TestServer) -> String {
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
    let token = login["accessToken"].as_str().unwrap();
    let key: Value = http
        .post(ts.url("/api/v1/api-keys"))
        .bearer_auth(token)
        .json(&json!({ "name": "cli", "role": "member" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    key["key"].as_str().unwrap().to_string()
}

fn opena2a(home: &std::path::Path, args: &[&str], key: Option<&str>) -> std::process::Output {
    let mut c = Command::cargo_bin("opena2a").unwrap();
    c.env("OPENA2A_HOME", home)
        .env_remove("OPENA2A_PASSPHRASE")
        .env_remove("AIM_API_KEY");
    if let Some(k) = key {
        c.env("AIM_API_KEY", k);
    }
    c.args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_proves_possession_in_one_step() {
    let ts = TestServer::sqlite().await.unwrap();
    let key = api_key(&ts).await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    let base = ts.base.clone();
    let run = move |args: Vec<String>, key: Option<String>| {
        let home = home.clone();
        tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            opena2a(&home, &a, key.as_deref())
        })
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let out = run(
        s(&["--json", "identity", "create", "--name", "builder"]),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ident: Value = serde_json::from_slice(&out.stdout).unwrap();

    // No identity of that name; no API key; a wrong API key: usage/input errors (exit 2).
    let register = |name: &str, extra: &[&str]| {
        let mut a = s(&[
            "--json", "agent", "register", "--server", &base, "--name", name,
        ]);
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let out = run(register("nobody", &[]), Some(key.clone()))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = run(register("builder", &[]), None).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing API key is a usage error"
    );
    let out = run(
        register("builder", &[]),
        Some("aim_live_wrongwrongwrong".into()),
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));

    // Success: registered with the local public key and verified (active) in one step.
    let out = run(register("builder", &[]), Some(key.clone()))
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let agent: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(agent["status"], "active");
    assert_eq!(agent["publicKey"], ident["publicKey"]);
    assert_eq!(agent["name"], "builder");
    // Same key again (under another name, via --identity): the server refuses (409, exit 2).
    let out = run(
        register("builder-2", &["--identity", "builder"]),
        Some(key.clone()),
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("409"));
    ts.stop().await;
}
