//! Alert email against a real SMTP server: aiosmtpd (PyPI) started by the test in plain,
//! STARTTLS and implicit-TLS modes, writing received mail to a Maildir we then read.
//!
//! Needs `.cache/test-venv` from `scripts/test-deps.sh` (or `AIM_TEST_PYTHON` pointing at a
//! Python with aiosmtpd) and `openssl` for the test certificate. Without them the tests print
//! SKIPPED — unless `AIM_REQUIRE_TEST_DEPS=1` (set by `.ci/run`), where they fail instead.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aim_alerts::email::{Mailer, SmtpConfig, SmtpSecurity};
use aim_alerts::{Alert, Severity};

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
        "SKIPPED: SMTP email tests — no Python with aiosmtpd (run scripts/test-deps.sh or set AIM_TEST_PYTHON)"
    );
    None
}

struct Smtp {
    child: Child,
    port: u16,
    maildir: tempfile::TempDir,
    _certs: tempfile::TempDir,
    ca_pem: String,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts aiosmtpd; `mode` is "plain", "starttls" or "smtps".
fn start(py: &Path, mode: &str) -> Smtp {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        // an end-entity certificate that is its own trust anchor (rustls refuses CA certs as
        // server certificates)
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is required");
    assert!(st.success());
    let maildir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(py);
    cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")]);
    match mode {
        "starttls" => {
            cmd.arg("--tlscert").arg(&cert).arg("--tlskey").arg(&key);
        }
        "smtps" => {
            cmd.arg("--smtpscert")
                .arg(&cert)
                .arg("--smtpskey")
                .arg(&key);
        }
        _ => {}
    }
    cmd.args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir.path().join("mail"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn().expect("start aiosmtpd");
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "aiosmtpd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ca_pem = std::fs::read_to_string(&cert).unwrap();
    Smtp {
        child,
        port,
        maildir,
        _certs: certs,
        ca_pem,
    }
}

impl Smtp {
    fn received(&self) -> Vec<String> {
        let new = self.maildir.path().join("mail/new");
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(new) {
            for e in rd.flatten() {
                out.push(std::fs::read_to_string(e.path()).unwrap());
            }
        }
        out
    }
}

fn config(port: u16, security: SmtpSecurity, ca: Option<String>) -> SmtpConfig {
    SmtpConfig {
        host: "localhost".into(),
        port,
        security,
        username: None,
        password: None,
        from: "AIM Alerts <aim@localhost>".into(),
        ca_cert_pem: ca,
        timeout_secs: 10,
    }
}

fn alert() -> Alert {
    Alert {
        id: "al_42".into(),
        organization_id: "org_1".into(),
        severity: Severity::Critical,
        kind: "incident.compromised_key_suspected".into(),
        title: "Signature failures then success from a new origin".into(),
        agent_id: Some("aim_abc".into()),
        created_at: "2026-11-26T03:00:00.000Z".into(),
        details: serde_json::json!({"members": ["1", "2", "3"]}),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_starttls_and_implicit_tls_deliver_the_alert() {
    let Some(py) = python() else { return };
    for (mode, security) in [
        ("plain", SmtpSecurity::None),
        ("starttls", SmtpSecurity::StartTls),
        ("smtps", SmtpSecurity::Tls),
    ] {
        let smtp = start(&py, mode);
        let ca = (mode != "plain").then(|| smtp.ca_pem.clone());
        let m = Mailer::new(&config(smtp.port, security, ca)).unwrap();
        m.send_alert(&["secops@example.com".into()], &alert())
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let mails = smtp.received();
        assert_eq!(mails.len(), 1, "{mode}");
        let mail = &mails[0];
        assert!(
            mail.contains("Subject: [AIM CRITICAL] Signature failures"),
            "{mail}"
        );
        assert!(mail.contains("To: secops@example.com"), "{mail}");
        assert!(
            mail.contains("incident.compromised_key_suspected"),
            "{mail}"
        );
        assert!(mail.contains("al_42"), "{mail}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_required_but_not_offered_sends_nothing() {
    let Some(py) = python() else { return };
    let smtp = start(&py, "plain");
    let m = Mailer::new(&config(smtp.port, SmtpSecurity::StartTls, None)).unwrap();
    let err = m
        .send_alert(&["secops@example.com".into()], &alert())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SMTP"), "{err}");
    assert!(smtp.received().is_empty(), "no clear-text fallback");
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_certificate_is_refused() {
    let Some(py) = python() else { return };
    let smtp = start(&py, "smtps");
    // No extra CA: the self-signed certificate is not trusted.
    let m = Mailer::new(&config(smtp.port, SmtpSecurity::Tls, None)).unwrap();
    assert!(
        m.send_alert(&["secops@example.com".into()], &alert())
            .await
            .is_err()
    );
    assert!(smtp.received().is_empty());
}

#[test]
fn bad_settings_are_config_errors() {
    let mut c = config(25, SmtpSecurity::None, None);
    c.from = "not an address".into();
    assert!(Mailer::new(&c).is_err());
    let mut c = config(25, SmtpSecurity::Tls, Some("-----BEGIN garbage".into()));
    c.from = "aim@localhost".into();
    assert!(Mailer::new(&c).is_err());
    let mut c = config(25, SmtpSecurity::None, None);
    c.username = Some("u".into());
    assert!(Mailer::new(&c).is_err(), "username without password");
}
