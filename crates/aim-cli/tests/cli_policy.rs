//! `opena2a policy check|validate|schema` end to end, over real files. Negative cases first.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        Dir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::cargo_bin("opena2a")
            .unwrap()
            .env("OPENA2A_HOME", self.dir.path().join("home"))
            .args(args)
            .output()
            .unwrap()
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const AGENT: &str = r#"{"id":"agent-1","name":"bot","type":"ai_agent","trustScore":80,"tags":["prod"],"owner":"alice"}"#;

const CEDAR: &str = r#"
@id("db") permit(principal, action in Action::"db:*", resource) when { principal.trustScore >= 50 };
@id("no-drop") forbid(principal, action == Action::"db:drop", resource);
@id("refunds") @effect("require_approval") @approvers("role:manager")
permit(principal, action == Action::"payments:refund", resource);
"#;

fn check(d: &Dir, policy: &Path, cap: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "policy",
        "check",
        "--policy",
        policy.to_str().unwrap(),
        "--agent",
        AGENT,
        "--capability",
        cap,
        "--resource",
        "db/customers",
    ];
    args.extend_from_slice(extra);
    d.run(&args)
}

#[test]
fn invalid_inputs_exit_2_with_one_line_error() {
    let d = Dir::new();
    let good = d.file("p.cedar", CEDAR);
    let bad_cedar = d.file("bad.cedar", "permit(principal, action resource);");
    let unknown_attr = d.file(
        "attr.cedar",
        "permit(principal, action, resource) when { principal.age > 3 };",
    );
    let bad_yaml = d.file(
        "bad.yaml",
        "policies:\n  - {name: a, capability: files:read, action: perhaps}\n",
    );
    let txt = d.file("p.txt", CEDAR);
    for (policy, cap, agent, ctx, needle) in [
        (&bad_cedar, "db:read", AGENT, "{}", "invalid Cedar policy"),
        (&unknown_attr, "db:read", AGENT, "{}", "age"),
        (
            &bad_yaml,
            "db:read",
            AGENT,
            "{}",
            "unknown variant `perhaps`",
        ),
        (&txt, "db:read", AGENT, "{}", "unknown policy format"),
        (&good, "DB:read", AGENT, "{}", "invalid capability"),
        (&good, "db:*", AGENT, "{}", "only allowed in a grant"),
        (
            &good,
            "db:read",
            r#"{"id":"a","trustScore":101}"#,
            "{}",
            "trustScore",
        ),
        (&good, "db:read", r#"{"id":"a"}"#, "{}", "trustScore"),
        (
            &good,
            "db:read",
            r#"{"id":"a","trustScore":5,"x":1}"#,
            "{}",
            "unknown field",
        ),
        (
            &good,
            "db:read",
            AGENT,
            r#"{"riskLevel":"extreme"}"#,
            "extreme",
        ),
        (
            &good,
            "db:read",
            AGENT,
            r#"{"clientAddress":"300.1.1.1"}"#,
            "context",
        ),
        (&good, "db:read", AGENT, r#"{"nope":1}"#, "unknown field"),
    ] {
        let out = d.run(&[
            "policy",
            "check",
            "--policy",
            policy.to_str().unwrap(),
            "--agent",
            agent,
            "--capability",
            cap,
            "--resource",
            "r",
            "--context",
            ctx,
        ]);
        assert_eq!(code(&out), 2, "{cap} {agent} {ctx}: {}", stderr(&out));
        assert!(stdout(&out).is_empty());
        let err = stderr(&out);
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{needle}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    let missing = d.dir.path().join("missing.cedar");
    let out = check(&d, &missing, "db:read", &[]);
    assert_eq!(code(&out), 2);
    let out = check(&d, &good, "db:read", &["--mode", "lenient"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn deny_exits_1_and_names_the_policy() {
    let d = Dir::new();
    let p = d.file("p.cedar", CEDAR);
    let out = check(&d, &p, "db:drop", &["--json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["effect"], "deny");
    assert_eq!(v["matchedPolicies"], serde_json::json!(["no-drop"]));
    assert_eq!(v["reasons"][0]["code"], "FORBIDDEN_BY_POLICY");

    // No permit for files:read.
    let out = check(&d, &p, "files:read", &[]);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).starts_with("DENY files:read"),
        "{}",
        stdout(&out)
    );

    // Grants in the agent: no grant → deny even though a policy permits.
    let out = d.run(&[
        "--json",
        "policy",
        "check",
        "--policy",
        p.to_str().unwrap(),
        "--agent",
        r#"{"id":"a","trustScore":90,"capabilities":["files:*"]}"#,
        "--capability",
        "db:read",
        "--resource",
        "r",
    ]);
    assert_eq!(code(&out), 1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reasons"][0]["code"], "NO_GRANT");
}

#[test]
fn allow_approval_and_monitoring() {
    let d = Dir::new();
    let p = d.file("p.cedar", CEDAR);
    let out = check(&d, &p, "db:read", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ALLOW db:read on db/customers"));

    let out = check(&d, &p, "payments:refund", &["--json"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["effect"], "require_approval");
    assert_eq!(v["approvers"], serde_json::json!(["role:manager"]));

    let out = check(&d, &p, "db:drop", &["--mode", "monitoring", "--json"]);
    assert_eq!(code(&out), 0);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["effect"], "allow");
    assert_eq!(v["policyEffect"], "deny");
    assert_eq!(v["alert"], true);
    let out = check(&d, &p, "db:drop", &["--mode", "monitoring"]);
    assert!(stdout(&out).contains("ALERT"), "{}", stdout(&out));
}

#[test]
fn yaml_policies_agent_file_and_context() {
    let d = Dir::new();
    let p = d.file(
        "gov.yaml",
        "policies:\n  - {name: files, capability: \"example.com/files:*\", action: allow}\n  - {name: burst, capability: \"example.com/files:*\", action: rate_limit, limit: 5, period: 30s}\n",
    );
    let agent = d.file("agent.json", AGENT);
    let run = |cap: &str| {
        d.run(&[
            "--json", "policy", "check", "--policy", p.to_str().unwrap(),
            "--agent-file", agent.to_str().unwrap(), "--capability", cap, "--resource", "x",
            "--context", r#"{"time":"2026-11-26T10:00:00Z","riskLevel":"high","clientAddress":"10.0.0.1","mcpServer":"fs"}"#,
        ])
    };
    let out = run("example.com/files:write");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["obligations"][0]["type"], "rate_limit");
    assert_eq!(v["obligations"][0]["limit"], 5);
    assert_eq!(v["obligations"][0]["periodSeconds"], 30);
    let out = run("files:write");
    assert_eq!(
        code(&out),
        1,
        "a domain-less capability is not the domain's"
    );
}

#[test]
fn validate_reports_valid_and_invalid() {
    let d = Dir::new();
    let bad = d.file(
        "bad.cedar",
        "permit(principal, action, resource) when { resource.owner == \"x\" };",
    );
    let out = d.run(&["policy", "validate", bad.to_str().unwrap()]);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).starts_with("INVALID"), "{}", stdout(&out));
    assert!(stdout(&out).contains("owner"), "{}", stdout(&out));

    let good = d.file("p.cedar", CEDAR);
    let out = d.run(&["--json", "policy", "validate", good.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["format"], "cedar");
    assert_eq!(
        v["policies"],
        serde_json::json!(["db", "no-drop", "refunds"])
    );
    assert!(v["version"].as_str().unwrap().starts_with("sha256:"));

    let y = d.file(
        "p.yml",
        "policies:\n  - {name: n, capability: \"db:*\", action: deny}\n",
    );
    let out = d.run(&["--json", "policy", "validate", y.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["cedar"].as_str().unwrap().contains("forbid"), "{v}");

    let out = d.run(&["policy", "schema"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("entity Agent"));
}
