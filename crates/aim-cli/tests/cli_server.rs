//! End-to-end tests of the admin commands (`login`, `logout`, `user`, `api-key`) against the real
//! server started in-process on an ephemeral port (SQLite). The binary runs as a child process,
//! exactly as a user runs it. Negative cases first.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use aim_server::testkit::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer};
use serde_json::Value;

/// A password that passes the server's policy.
const STRONG: &str = "g7#kP2m!qZ9w-xy";
const STRONG2: &str = "Vq4$zR8n!Lw2-pk";

/// One CLI data root talking to one test server.
struct Cli {
    _dir: tempfile::TempDir,
    home: PathBuf,
    server: String,
}

impl Cli {
    fn new(ts: &TestServer) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("opena2a");
        Cli {
            _dir: dir,
            home,
            server: ts.base.clone(),
        }
    }

    fn session_path(&self) -> PathBuf {
        self.home.join("aim-cli").join("session.json")
    }

    fn session(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.session_path()).unwrap()).unwrap()
    }

    /// Runs `opena2a ARGS` with `env` (and nothing inherited that could change the outcome),
    /// feeding `stdin`. Runs on the blocking pool so the in-process server keeps serving.
    async fn run(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_opena2a"));
        c.args(args).env("OPENA2A_HOME", &self.home);
        for v in [
            "AIM_API_KEY",
            "AIM_PASSWORD",
            "AIM_NEW_PASSWORD",
            "AIM_SERVER",
            "AIM_CA_CERT",
            "AIM_TOTP_CODE",
        ] {
            c.env_remove(v);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        let input = stdin.map(str::to_string);
        c.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        tokio::task::spawn_blocking(move || {
            let mut child = c.spawn().unwrap();
            if let Some(i) = input {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(i.as_bytes()).unwrap();
            }
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }

    async fn ok_json(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.run(&a, env, None).await;
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", stdout(&out)))
    }

    async fn login(&self, email: &str, password: &str) -> Output {
        self.run(
            &[
                "--json",
                "login",
                "--server",
                &self.server,
                "--email",
                email,
            ],
            &[("AIM_PASSWORD", password)],
            None,
        )
        .await
    }

    async fn login_ok(&self, email: &str, password: &str) -> Value {
        let out = self.login(email, password).await;
        assert_eq!(code(&out), 0, "login {email}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

async fn server() -> TestServer {
    TestServer::sqlite().await.expect("test server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused_with_the_servers_code_and_no_session() {
    let ts = server().await;
    let cli = Cli::new(&ts);
    let out = cli.login(ADMIN_EMAIL, "wrong-password-123").await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid_credentials"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).starts_with("error:"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    assert!(!cli.session_path().exists());
    // Unknown email: the same answer (no user enumeration through the CLI either).
    let out = cli.login("nobody@test.local", "wrong-password-123").await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("invalid_credentials"));
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_without_a_password_source_or_server_is_a_usage_error() {
    let ts = server().await;
    let cli = Cli::new(&ts);
    // No terminal, no AIM_PASSWORD, no --password-stdin.
    let out = cli
        .run(
            &["login", "--server", &cli.server, "--email", ADMIN_EMAIL],
            &[],
            None,
        )
        .await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("AIM_PASSWORD"), "{}", stderr(&out));
    let out = cli
        .run(
            &["login", "--email", ADMIN_EMAIL],
            &[("AIM_PASSWORD", ADMIN_PASSWORD)],
            None,
        )
        .await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--server"), "{}", stderr(&out));
    // Not a URL.
    let out = cli
        .run(
            &["login", "--server", "ftp://x", "--email", ADMIN_EMAIL],
            &[("AIM_PASSWORD", ADMIN_PASSWORD)],
            None,
        )
        .await;
    assert_eq!(code(&out), 2);
    // Commands without a session say how to log in.
    let out = cli.run(&["user", "list"], &[], None).await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("opena2a login"), "{}", stderr(&out));
    // Plain HTTP to a non-loopback address: warned about before the password is sent.
    let out = cli
        .run(
            &[
                "login",
                "--server",
                "http://0.0.0.0:1",
                "--email",
                ADMIN_EMAIL,
            ],
            &[("AIM_PASSWORD", ADMIN_PASSWORD)],
            None,
        )
        .await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("not HTTPS"), "{}", stderr(&out));
    // Unreachable server: a clear transport error, not a panic (and no warning on loopback).
    let out = cli
        .run(
            &[
                "login",
                "--server",
                "http://127.0.0.1:1",
                "--email",
                ADMIN_EMAIL,
            ],
            &[("AIM_PASSWORD", ADMIN_PASSWORD)],
            None,
        )
        .await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("not HTTPS"), "{}", stderr(&out));
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_file_is_private_and_refused_when_readable_by_others() {
    let ts = server().await;
    let cli = Cli::new(&ts);
    // --password-stdin path.
    let out = cli
        .run(
            &[
                "--json",
                "login",
                "--server",
                &cli.server,
                "--email",
                ADMIN_EMAIL,
                "--password-stdin",
            ],
            &[],
            Some(&format!("{ADMIN_PASSWORD}\n")),
        )
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["role"], "admin");
    assert_eq!(v["passwordChangeRequired"], false);
    let path = cli.session_path();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let s = cli.session();
    assert_eq!(s["server"], ts.base.as_str());
    assert!(s["refreshToken"].as_str().unwrap().len() >= 43);
    // The password itself is never stored.
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains(ADMIN_PASSWORD)
    );

    let users = cli.ok_json(&["user", "list"], &[]).await;
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["email"] == ADMIN_EMAIL)
    );

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = cli.run(&["user", "list"], &[], None).await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("session.json"), "{}", stderr(&out));
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_totp() {
    let ts = server().await;
    // Enable TOTP for the admin through the client library.
    let client = aim_client::Client::builder(ts.base.clone())
        .build()
        .unwrap();
    client
        .login(ADMIN_EMAIL, &ADMIN_PASSWORD.to_string().into(), None)
        .await
        .unwrap();
    let e = client.totp_enroll().await.unwrap();
    let secret = data_encoding::BASE32_NOPAD
        .decode(e.secret.as_bytes())
        .unwrap();
    let code_now = aim_server::totp::code_at(&secret, ts.clock.now_secs()).unwrap();
    let confirmed = client.totp_confirm(&code_now).await.unwrap();
    assert_eq!(confirmed.recovery_codes.len(), 10);

    let cli = Cli::new(&ts);
    // Without a code: the server's totp_required, with how to give one.
    let out = cli.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("totp_required"), "{}", stderr(&out));
    assert!(stderr(&out).contains("--totp-code"), "{}", stderr(&out));
    // The code already used at confirmation: replay refused.
    let out = cli
        .run(
            &[
                "login",
                "--server",
                &cli.server,
                "--email",
                ADMIN_EMAIL,
                "--totp-code",
                &code_now,
            ],
            &[("AIM_PASSWORD", ADMIN_PASSWORD)],
            None,
        )
        .await;
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("invalid_credentials"),
        "{}",
        stderr(&out)
    );
    assert!(!cli.session_path().exists());
    // A fresh code (next 30 s step), given through AIM_TOTP_CODE.
    ts.clock.advance(Duration::from_secs(30));
    let next = aim_server::totp::code_at(&secret, ts.clock.now_secs()).unwrap();
    let out = cli
        .run(
            &[
                "--json",
                "login",
                "--server",
                &cli.server,
                "--email",
                ADMIN_EMAIL,
            ],
            &[("AIM_PASSWORD", ADMIN_PASSWORD), ("AIM_TOTP_CODE", &next)],
            None,
        )
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let me = cli.ok_json(&["user", "me"], &[]).await;
    assert_eq!(me["totpEnabled"], true);
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_access_token_is_refreshed_transparently_and_saved() {
    let ts = server().await;
    let cli = Cli::new(&ts);
    cli.login_ok(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let before = cli.session();
    // The server's clock passes the 15-minute access-token lifetime.
    ts.clock.advance(Duration::from_secs(16 * 60));
    let keys = cli.ok_json(&["api-key", "list"], &[]).await;
    assert!(keys.as_array().unwrap().is_empty());
    let after = cli.session();
    assert_ne!(before["refreshToken"], after["refreshToken"]);
    assert_ne!(before["accessToken"], after["accessToken"]);
    assert_eq!(mode(&cli.session_path()), 0o600);
    // The saved (newest) pair keeps working.
    cli.ok_json(&["user", "me"], &[]).await;
    // The retired refresh token is dead: presenting it is taken for theft and ends the session…
    let http = reqwest::Client::new();
    let r = http
        .post(ts.url("/api/v1/auth/refresh"))
        .json(&serde_json::json!({ "refreshToken": before["refreshToken"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // …so the CLI now reports the session as ended, with what to do.
    ts.clock.advance(Duration::from_secs(16 * 60));
    let out = cli.run(&["user", "me"], &[], None).await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("opena2a login"), "{}", stderr(&out));
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_cannot_create_users_and_sees_the_servers_code() {
    let ts = server().await;
    let admin = Cli::new(&ts);
    admin.login_ok(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let out = admin
        .run(
            &[
                "--json",
                "user",
                "create",
                "--email",
                "m@test.local",
                "--role",
                "member",
                "--password-stdin",
            ],
            &[],
            Some(&format!("{STRONG}\n")),
        )
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["role"], "member");
    assert!(created.get("oneTimePassword").is_none());

    let member = Cli::new(&ts);
    member.login_ok("m@test.local", STRONG).await;
    let out = member
        .run(
            &[
                "user",
                "create",
                "--email",
                "x@test.local",
                "--role",
                "viewer",
            ],
            &[],
            None,
        )
        .await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("403 forbidden"), "{}", stderr(&out));
    let out = member.run(&["user", "list"], &[], None).await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("forbidden"));
    let out = member
        .run(&["api-key", "create", "--name", "k"], &[], None)
        .await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("forbidden"));
    // Bad role value: a usage error before anything is sent.
    let out = admin
        .run(&["user", "set-role", "m@test.local", "emperor"], &[], None)
        .await;
    assert_eq!(code(&out), 2);

    // The admin manages the member by email.
    let v = admin
        .ok_json(&["user", "set-role", "m@test.local", "manager"], &[])
        .await;
    assert_eq!(v["role"], "manager");
    let v = admin
        .ok_json(&["user", "deactivate", "m@test.local"], &[])
        .await;
    assert_eq!(v["active"], false);
    // Deactivation ends the member's access at once.
    let out = member.run(&["user", "list"], &[], None).await;
    assert_eq!(code(&out), 2);
    let v = admin
        .ok_json(&["user", "delete", "m@test.local"], &[])
        .await;
    assert_eq!(v["deleted"], true);
    let out = admin
        .run(&["user", "delete", "m@test.local"], &[], None)
        .await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no user"), "{}", stderr(&out));
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_revoked_and_rotated_are_refused_and_aim_api_key_works() {
    let ts = server().await;
    let admin = Cli::new(&ts);
    admin.login_ok(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let created = admin
        .ok_json(
            &["api-key", "create", "--name", "ci", "--role", "manager"],
            &[],
        )
        .await;
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("aim_live_"));
    // Lists never show the secret.
    let listed = admin.ok_json(&["api-key", "list"], &[]).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&key));

    // AIM_API_KEY in a data root without any session: --server (here via AIM_SERVER) is needed.
    let bot = Cli::new(&ts);
    let out = bot
        .run(&["user", "list"], &[("AIM_API_KEY", &key)], None)
        .await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--server"), "{}", stderr(&out));
    let env = [
        ("AIM_API_KEY", key.as_str()),
        ("AIM_SERVER", ts.base.as_str()),
    ];
    let users = bot.ok_json(&["user", "list"], &env).await;
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["email"] == ADMIN_EMAIL)
    );
    // API keys cannot do account self-service.
    let out = bot.run(&["user", "change-password"], &env, None).await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("login session"), "{}", stderr(&out));
    // Usage is tracked.
    let shown = admin.ok_json(&["api-key", "show", &id], &[]).await;
    assert!(shown["useCount"].as_i64().unwrap() >= 1);

    // Rotation: the old secret dies at once, the new one works.
    let rotated = admin.ok_json(&["api-key", "rotate", &id], &[]).await;
    let new_key = rotated["key"].as_str().unwrap().to_string();
    assert_ne!(new_key, key);
    let out = bot.run(&["api-key", "list"], &env, None).await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    let env2 = [
        ("AIM_API_KEY", new_key.as_str()),
        ("AIM_SERVER", ts.base.as_str()),
    ];
    bot.ok_json(&["api-key", "list"], &env2).await;

    // Revocation: refused from then on.
    let v = admin.ok_json(&["api-key", "revoke", &id], &[]).await;
    assert_eq!(v["revoked"], true);
    let out = bot.run(&["api-key", "list"], &env2, None).await;
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("401 unauthorized"),
        "{}",
        stderr(&out)
    );
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_password_leads_to_change_password() {
    let ts = server().await;
    let admin = Cli::new(&ts);
    admin.login_ok(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let created = admin
        .ok_json(
            &[
                "user",
                "create",
                "--email",
                "new@test.local",
                "--role",
                "member",
            ],
            &[],
        )
        .await;
    let otp = created["oneTimePassword"].as_str().unwrap().to_string();

    let user = Cli::new(&ts);
    let out = user.login("new@test.local", &otp).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("opena2a user change-password"),
        "{}",
        stderr(&out)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["passwordChangeRequired"], true);
    // Everything else is refused, with the way out in the message.
    let out = user.run(&["api-key", "list"], &[], None).await;
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("password_change_required"), "{err}");
    assert!(err.contains("opena2a user change-password"), "{err}");
    // Wrong current password.
    let out = user
        .run(
            &["user", "change-password"],
            &[
                ("AIM_PASSWORD", "not-the-otp-at-all"),
                ("AIM_NEW_PASSWORD", STRONG2),
            ],
            None,
        )
        .await;
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("invalid_current_password"),
        "{}",
        stderr(&out)
    );
    // A weak new password.
    let out = user
        .run(
            &["user", "change-password", "--password-stdin"],
            &[],
            Some(&format!("{otp}\npassword\n")),
        )
        .await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("weak_password"), "{}", stderr(&out));
    // The real change.
    let v = user
        .ok_json(
            &["user", "change-password"],
            &[("AIM_PASSWORD", &otp), ("AIM_NEW_PASSWORD", STRONG2)],
        )
        .await;
    assert_eq!(v["passwordChanged"], true);
    user.ok_json(&["api-key", "list"], &[]).await;
    let v = user.login_ok("new@test.local", STRONG2).await;
    assert_eq!(v["passwordChangeRequired"], false);
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_on_the_server_and_locally() {
    let ts = server().await;
    let cli = Cli::new(&ts);
    cli.login_ok(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let s = cli.session();
    let v = cli.ok_json(&["logout"], &[]).await;
    assert_eq!(v["loggedOut"], true);
    assert!(!cli.session_path().exists());
    // The server revoked it: the old tokens are dead.
    let http = reqwest::Client::new();
    let r = http
        .get(ts.url("/api/v1/auth/me"))
        .bearer_auth(s["accessToken"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(ts.url("/api/v1/auth/refresh"))
        .json(&serde_json::json!({ "refreshToken": s["refreshToken"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let out = cli.run(&["user", "list"], &[], None).await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("not logged in"));
    // Logging out twice is fine.
    let v = cli.ok_json(&["logout"], &[]).await;
    assert_eq!(v["loggedOut"], false);
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_settings_require_2fa_for_admins() {
    let ts = server().await;
    let admin = Cli::new(&ts);
    admin.login_ok(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // A member may read but not change the settings.
    admin
        .run(
            &[
                "user",
                "create",
                "--email",
                "m@test.local",
                "--role",
                "member",
                "--password-stdin",
            ],
            &[],
            Some(&format!("{STRONG}\n")),
        )
        .await;
    let member = Cli::new(&ts);
    member.login_ok("m@test.local", STRONG).await;
    let org = member.ok_json(&["org", "show"], &[]).await;
    assert_eq!(org["require2faForAdmins"], false);
    let out = member
        .run(
            &["org", "set", "--require-2fa-for-admins", "true"],
            &[],
            None,
        )
        .await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("forbidden"), "{}", stderr(&out));

    let org = admin
        .ok_json(&["org", "set", "--require-2fa-for-admins", "true"], &[])
        .await;
    assert_eq!(org["require2faForAdmins"], true);
    // The admin has no TOTP: a new login is restricted until enrollment, and says so.
    let out = admin.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("2FA"), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["totpEnrollmentRequired"], true);
    let out = admin.run(&["user", "list"], &[], None).await;
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("totp_enrollment_required"),
        "{}",
        stderr(&out)
    );
    ts.stop().await;
}
