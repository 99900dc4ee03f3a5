//! `opena2a server`: the plain-HTTP refusal and `server rotate-key` end to end (SQLite).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use assert_cmd::Command;

fn opena2a(home: &Path) -> Command {
    let mut c = Command::cargo_bin("opena2a").unwrap();
    c.env("OPENA2A_HOME", home)
        .env_remove("AIM_MASTER_KEY")
        .env_remove("AIM_DATABASE_URL")
        .env("AIM_LOG_LEVEL", "warn");
    c
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn plain_http_on_a_public_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = opena2a(dir.path())
        .args(["server", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without TLS"),
        "{err}"
    );
    let out = opena2a(dir.path())
        .args(["server", "--tls-cert", "/x.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "--tls-cert needs --tls-key");
}

#[test]
fn rotate_key_adds_reencrypts_and_retires() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    // Negative first: no key file yet.
    let out = opena2a(home)
        .args(["server", "rotate-key"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("start the server once"),
        "{}",
        stderr(&out)
    );
    // With the key in the environment, the file form cannot be rotated.
    let key = "v1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let out = opena2a(home)
        .env("AIM_MASTER_KEY", key)
        .args(["server", "rotate-key"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--reseal-only"), "{}", stderr(&out));

    let file = home.join("aim-server").join("master.key");
    std::fs::write(&file, format!("{key}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = opena2a(home)
        .args(["server", "rotate-key"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("added master key version v2"), "{text}");
    let keys = std::fs::read_to_string(&file).unwrap();
    assert!(keys.contains("v1:") && keys.contains("v2:"), "{keys}");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let out = opena2a(home)
        .args(["server", "rotate-key", "--reseal-only", "--retire-old"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("retired v1"));
    let keys = std::fs::read_to_string(&file).unwrap();
    assert!(!keys.contains("v1:") && keys.contains("v2:"), "{keys}");
}
