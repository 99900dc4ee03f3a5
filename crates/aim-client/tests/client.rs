//! `aim-client` against the real server (SQLite, ephemeral port). Negative cases first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aim_client::{Client, Credential, Error, NewApiKey, Role};
use aim_server::testkit::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer};
use secrecy::SecretString;

fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

#[tokio::test]
async fn bad_configuration_is_an_error_not_a_panic() {
    for url in ["", "not a url", "ftp://example.com", "http://"] {
        let e = Client::builder(url).build().unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{url}: {e}");
    }
    let e = Client::builder("https://127.0.0.1:1")
        .ca_cert_file("/nonexistent/ca.pem")
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    let dir = tempfile_dir();
    let bogus = dir.join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let e = Client::builder("https://127.0.0.1:1")
        .ca_cert_file(&bogus)
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("aim-client-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_the_servers_status_code_and_message() {
    let ts = TestServer::sqlite().await.unwrap();
    let c = Client::builder(ts.base.clone()).build().unwrap();
    // No credential: refused locally, nothing sent.
    assert!(matches!(c.me().await, Err(Error::NotAuthenticated)));
    let e = c
        .login(ADMIN_EMAIL, &pw("wrong-password-xyz"), None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert_eq!(e.code(), Some("invalid_credentials"));
    assert!(c.session().is_none());
    // A revoked API key.
    c.login(ADMIN_EMAIL, &pw(ADMIN_PASSWORD), None)
        .await
        .unwrap();
    let k = c
        .create_api_key(&NewApiKey {
            name: "k".into(),
            role: Some(Role::Viewer),
            expires_at: None,
        })
        .await
        .unwrap();
    let bot = Client::builder(ts.base.clone())
        .credential(Credential::ApiKey(pw(&k.key)))
        .build()
        .unwrap();
    assert_eq!(
        bot.get_org().await.unwrap().id,
        c.get_org().await.unwrap().id
    );
    // A viewer key cannot create keys: the server's 403.
    let e = bot
        .create_api_key(&NewApiKey {
            name: "x".into(),
            role: None,
            expires_at: None,
        })
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(403), Some("forbidden")));
    c.revoke_api_key(k.api_key.id).await.unwrap();
    let e = bot.get_org().await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    // Unreachable server.
    let off = Client::builder("http://127.0.0.1:1").build().unwrap();
    assert!(matches!(
        off.login(ADMIN_EMAIL, &pw(ADMIN_PASSWORD), None).await,
        Err(Error::Transport { .. })
    ));
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_after_expiry_rotate_the_refresh_token_once() {
    let ts = TestServer::sqlite().await.unwrap();
    let rotations = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(Mutex::new(None));
    let (r2, l2) = (rotations.clone(), last.clone());
    let c = Arc::new(
        Client::builder(ts.base.clone())
            .on_session_change(Arc::new(move |s| {
                r2.fetch_add(1, Ordering::SeqCst);
                *l2.lock().unwrap() = Some(s.refresh_token.clone());
            }))
            .build()
            .unwrap(),
    );
    c.login(ADMIN_EMAIL, &pw(ADMIN_PASSWORD), None)
        .await
        .unwrap();
    assert_eq!(rotations.load(Ordering::SeqCst), 1);
    let first = c.session().unwrap().refresh_token;
    // The server's clock passes the access token's lifetime; 8 calls race to refresh.
    ts.clock.advance(Duration::from_secs(16 * 60));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.me().await })
        })
        .collect();
    for t in tasks {
        t.await
            .unwrap()
            .expect("every call succeeds after one refresh");
    }
    assert_eq!(rotations.load(Ordering::SeqCst), 2, "exactly one rotation");
    let now = c.session().unwrap().refresh_token;
    assert_ne!(now, first);
    assert_eq!(last.lock().unwrap().as_deref(), Some(now.as_str()));
    // Not taken for theft: the session still works, and an explicit refresh rotates again.
    c.refresh().await.unwrap();
    c.me().await.unwrap();
    // After logout the session is gone locally and on the server.
    let s = c.session().unwrap();
    c.logout().await.unwrap();
    assert!(c.session().is_none());
    let again = Client::builder(ts.base.clone())
        .credential(Credential::Session(s))
        .build()
        .unwrap();
    let e = again.me().await.unwrap_err();
    assert_eq!(e.code(), Some("session_expired"));
    ts.stop().await;
}
