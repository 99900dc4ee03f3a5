//! End-to-end tests of `opena2a conformance run` and `opena2a credential verify` with the real
//! binary over the vendored fixture suites in `conformance/`.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn repo_conformance() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance")
}

fn opena2a() -> Command {
    let mut c = Command::cargo_bin("opena2a").expect("binary");
    c.env("OPENA2A_HOME", std::env::temp_dir());
    c
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The first fixture (sorted) in `dir` whose expected verdict is `verdict`.
fn fixture_with(dir: &Path, verdict: &str) -> PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .find(|p| read_json(p)["expected"]["verifyResult"] == verdict)
        .expect("fixture")
}

#[test]
fn every_vendored_fixture_matches() {
    let out = opena2a()
        .args(["conformance", "run"])
        .arg(repo_conformance())
        .assert()
        .success()
        .stdout(predicate::str::contains(" 0 failed, 0 errors"));
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(!text.contains("FAIL"), "{text}");
}

#[test]
fn json_report_counts_every_suite() {
    let out = opena2a()
        .args(["--json", "conformance", "run"])
        .arg(repo_conformance())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for suite in ["aip", "atx", "atp"] {
        let c = &v["suites"][suite];
        assert!(c["fixtures"].as_u64().unwrap() > 0, "{suite}");
        assert_eq!(c["mismatched"], 0, "{suite}");
    }
    assert!(
        v["skipped"].as_u64().unwrap() > 0,
        "vectors/schemas are skipped by content"
    );
}

#[test]
fn a_flipped_expectation_fails_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("atx");
    copy_dir(&repo_conformance().join("atx"), &suite);
    let target = fixture_with(&suite.join("fixtures"), "ACCEPT");
    let mut v = read_json(&target);
    v["expected"] = serde_json::json!({"verifyResult": "REJECT", "rejectCategory": "EXPIRED"});
    std::fs::write(&target, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    opena2a()
        .args(["conformance", "run"])
        .arg(&suite)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAIL"))
        .stdout(predicate::str::contains("1 failed"));
}

#[test]
fn a_wrong_category_fails_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("atx");
    copy_dir(&repo_conformance().join("atx"), &suite);
    let target = fixture_with(&suite.join("fixtures"), "REJECT");
    let mut v = read_json(&target);
    let other = if v["expected"]["rejectCategory"] == "REVOKED" {
        "EXPIRED"
    } else {
        "REVOKED"
    };
    v["expected"]["rejectCategory"] = other.into();
    std::fs::write(&target, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    opena2a()
        .args(["conformance", "run"])
        .arg(&suite)
        .assert()
        .code(1);
}

#[test]
fn a_flipped_composition_number_fails_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("aip");
    copy_dir(&repo_conformance().join("aip"), &suite);
    let target = fixture_with(&suite.join("fixtures"), "MEASURED");
    let mut v = read_json(&target);
    let s = v["expected"]["composition"]["score"].as_f64().unwrap();
    v["expected"]["composition"]["score"] = (s + 0.001).into();
    std::fs::write(&target, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    opena2a()
        .args(["conformance", "run"])
        .arg(&suite)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("score: expected"));
}

#[test]
fn malformed_fixtures_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let no_payload = tmp.path().join("a.json");
    std::fs::write(
        &no_payload,
        br#"{"fixtureType":"trustProof","expected":{"verifyResult":"ACCEPT"},"verifierState":{}}"#,
    )
    .unwrap();
    opena2a()
        .args(["conformance", "run"])
        .arg(&no_payload)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has no trustProof member"));

    let broken = tmp.path().join("b.json");
    std::fs::write(&broken, b"{\"expected\": {\"verifyResult\": ").unwrap();
    opena2a()
        .args(["conformance", "run"])
        .arg(&broken)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not valid JSON"));

    let bad_verdict = tmp.path().join("c.json");
    std::fs::write(
        &bad_verdict,
        br#"{"atx":{},"expected":{"verifyResult":"MAYBE"}}"#,
    )
    .unwrap();
    opena2a()
        .args(["conformance", "run"])
        .arg(&bad_verdict)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("MAYBE"));

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    opena2a()
        .args(["conformance", "run"])
        .arg(&empty)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no fixtures found"));
}

/// Extracts a fixture's credential and verifier state into files a user would have.
fn credential_files(dir: &Path, verdict: &str) -> (PathBuf, PathBuf, Value) {
    let fx = read_json(&fixture_with(
        &repo_conformance().join("atx/fixtures"),
        verdict,
    ));
    let cred = dir.join("cred.json");
    let keys = dir.join("keys.json");
    std::fs::write(&cred, serde_json::to_vec_pretty(&fx["atx"]).unwrap()).unwrap();
    std::fs::write(&keys, serde_json::to_vec(&fx["verifierState"]).unwrap()).unwrap();
    (cred, keys, fx["verifierState"].clone())
}

#[test]
fn credential_verify_accepts_and_rejects() {
    let tmp = tempfile::tempdir().unwrap();
    let (cred, keys, state) = credential_files(tmp.path(), "ACCEPT");
    let clock = state["clockRfc3339"].as_str().unwrap();
    let mut cmd = opena2a();
    cmd.args(["credential", "verify"])
        .arg(&cred)
        .arg("--keys")
        .arg(&keys);
    cmd.args(["--at", clock]);
    for t in state["trustedIssuers"].as_array().unwrap() {
        cmd.args(["--trusted-issuer", t.as_str().unwrap()]);
    }
    cmd.assert()
        .success()
        .stdout(predicate::str::starts_with("ACCEPT"));

    // Without a trusted issuer the same credential is rejected with exit 1.
    opena2a()
        .args(["credential", "verify"])
        .arg(&cred)
        .arg("--keys")
        .arg(&keys)
        .args(["--at", clock])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("REJECT[UNTRUSTED_ISSUER]"));

    // Tampered trust level: the v1.0 and v1.1 signed forms both cover it.
    let mut v = read_json(&cred);
    v["trustLevel"] = 0.into();
    std::fs::write(&cred, serde_json::to_vec(&v).unwrap()).unwrap();
    let mut cmd = opena2a();
    cmd.args(["--json", "credential", "verify"])
        .arg(&cred)
        .arg("--keys")
        .arg(&keys);
    cmd.args(["--at", clock]);
    for t in state["trustedIssuers"].as_array().unwrap() {
        cmd.args(["--trusted-issuer", t.as_str().unwrap()]);
    }
    let out = cmd.assert().code(1).get_output().stdout.clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["rejectCategory"], "SIGNATURE_INVALID");

    // A missing file is an input error.
    opena2a()
        .args(["credential", "verify", "/nonexistent/cred.json"])
        .assert()
        .code(2);
}
