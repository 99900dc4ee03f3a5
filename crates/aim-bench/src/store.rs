//! `aim-bench store`: the decision writer's ceiling, without HTTP, signatures or a client.
//!
//! Opens a store (a fresh SQLite file by default, or `--database-url`), creates one
//! organization, then commits batches of `--batch` decisions — each a nonce claim, a decision
//! row and an `agent.action.verified` audit entry shaped like the server's — from one task, as
//! the server's group-commit writer does, for `--duration` seconds. The items are built and
//! canonicalized (the server does that on its request threads) outside the timed commits.
//! Prints decisions/s over the commit time, µs per batch and per decision, and the raw
//! single-core Ed25519 verify rate measured in the same run: the writer alone must commit well
//! above half that rate for the end-to-end target of `aim-bench verify` to be reachable.

use std::time::{Duration, Instant};

use aim_store::{
    ActionStatus, AuditRecord, DecisionOp, DecisionOutcome, DecisionWrite, NewUser, NonceClaim,
    Organization, Role,
};
use clap::Args;
use uuid::Uuid;

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Store URL (`sqlite://PATH` or `postgres://...`); default a fresh SQLite file in a
    /// temporary directory, removed afterwards.
    #[arg(long)]
    database_url: Option<String>,
    /// Decisions per committed batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Agents the decisions are spread over (round robin).
    #[arg(long, default_value_t = 16)]
    agents: usize,
    /// Seconds of committing.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Share of denied decisions (as `aim-bench verify --deny-ratio`).
    #[arg(long, default_value_t = 0.2)]
    deny_ratio: f64,
}

/// Decision `i` of the run: agent `i mod agents`, a fresh random nonce, a row and its audit
/// record as the server writes them, canonicalized.
fn item(org: Uuid, agents: &[String], i: u64, deny_ratio: f64, now_ms: i64) -> DecisionWrite {
    use rand::Rng as _;
    let agent = &agents[(i % agents.len() as u64) as usize];
    let mut nonce = [0u8; 16];
    rand::rng().fill_bytes(&mut nonce);
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let denied = crate::verify::asks_ungranted(i, deny_ratio);
    let (status, cap, reason) = if denied {
        (
            ActionStatus::Denied,
            "admin:delete",
            "capability admin:delete is not granted to the agent",
        )
    } else {
        (ActionStatus::Approved, "files:read", "allowed by policy")
    };
    let id = Uuid::now_v7();
    let mut row = aim_store::testing::decision_row(id, org, agent, status, now_ms);
    row.capability = cap.into();
    row.resource = "file:///tmp/report.txt".into();
    row.context = r#"{"riskLevel":"low"}"#.into();
    row.reason = reason.into();
    row.policy_version = "1".into();
    let record = |event: &str, payload: serde_json::Value| AuditRecord {
        org_id: Some(org),
        at: now_ms,
        event_type: event.into(),
        actor: format!("agent:{agent}"),
        subject: Some(format!("agent:{agent}")),
        payload,
        client_addr: Some("127.0.0.1".into()),
    };
    let mut w = DecisionWrite {
        nonce: Some(NonceClaim {
            signed_at: now_ms / 1000,
            org_id: org,
            agent_id: agent.clone(),
            nonce,
            expires_at: now_ms + 300_000,
        }),
        audit: record(
            "agent.action.verified",
            serde_json::json!({
                "actionId": id,
                "capability": cap,
                "resource": "file:///tmp/report.txt",
                "riskLevel": "low",
                "status": status.as_str(),
                "reasonCodes": if denied { vec!["NO_GRANT"] } else { vec![] },
                "matchedPolicies": [],
                "policyVersion": 1,
                "enforcementMode": "strict",
                "alert": false,
                "trustScore": 72.5,
                "wire": "native",
            }),
        ),
        replay_audit: Some(record(
            "agent.request.replayed",
            serde_json::json!({"method": "POST"}),
        )),
        op: DecisionOp::InsertAction(Box::new(row)),
        prepared: None,
    };
    // Canonicalizing cannot fail for these JSON values; a failure would surface at commit.
    let _ = w.prepare();
    w
}

pub async fn run(args: StoreArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    anyhow::ensure!(args.agents > 0, "--agents must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.deny_ratio),
        "--deny-ratio must be within 0..=1"
    );
    let (_tmp, url) = match &args.database_url {
        Some(u) => (None, u.clone()),
        None => {
            let db = aim_store::testing::TestDb::sqlite()?;
            let url = db.url.clone();
            (Some(db), url)
        }
    };
    let store = aim_store::connect(&url, 4).await?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let org = Organization {
        id: Uuid::now_v7(),
        name: "store-bench".into(),
        require_2fa_admins: false,
        created_at: now_ms,
        enforcement_mode: "strict".into(),
    };
    let admin = NewUser {
        id: Uuid::now_v7(),
        org_id: org.id,
        email: format!("bench-{}@localhost", org.id.simple()),
        password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
        role: Role::Admin,
        must_change_password: false,
        created_by: None,
        created_at: now_ms,
    };
    let created = AuditRecord {
        org_id: Some(org.id),
        at: now_ms,
        event_type: "org.created".into(),
        actor: "system".into(),
        subject: None,
        payload: serde_json::json!({}),
        client_addr: None,
    };
    store.create_org_with_admin(&org, &admin, &created).await?;
    let agents: Vec<String> = (0..args.agents)
        .map(|_| format!("aim_{}", Uuid::new_v4().simple()))
        .collect();
    let backend = if url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    println!(
        "aim-bench store: {backend}, batches of {}, {} agents, {} s, deny ratio {}",
        args.batch, args.agents, args.duration, args.deny_ratio
    );
    let raw_before = crate::verify::raw_verify_rate(2.0);

    let limit = Duration::from_secs_f64(args.duration);
    let (mut committed, mut batches, mut i) = (0u64, 0u64, 0u64);
    let mut in_commits = Duration::ZERO;
    let mut batch_us: Vec<u64> = Vec::new();
    let wall = Instant::now();
    while wall.elapsed() < limit {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let items: Vec<DecisionWrite> = (0..args.batch)
            .map(|k| item(org.id, &agents, i + k as u64, args.deny_ratio, now_ms))
            .collect();
        i += args.batch as u64;
        let t = Instant::now();
        let out = store.commit_decisions(&items).await?;
        let took = t.elapsed();
        in_commits += took;
        batch_us.push(took.as_micros() as u64);
        batches += 1;
        let fresh = out
            .iter()
            .filter(|o| **o == DecisionOutcome::Committed)
            .count();
        anyhow::ensure!(
            fresh == items.len(),
            "a batch of fresh nonces committed {fresh} of {} decisions",
            items.len()
        );
        committed += fresh as u64;
    }
    let raw_after = crate::verify::raw_verify_rate(2.0);
    store.close().await;

    batch_us.sort_unstable();
    let pct = |q: f64| {
        let n = batch_us.len();
        batch_us[((q * n as f64).ceil() as usize).clamp(1, n) - 1]
    };
    let secs = in_commits.as_secs_f64();
    let rate = committed as f64 / secs;
    let raw = (raw_before + raw_after) / 2.0;
    println!("| decisions | batches | decisions/s | µs/decision | p50 µs/batch | p99 µs/batch |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {committed} | {batches} | {rate:.0} | {:.1} | {} | {} |",
        1e6 * secs / committed as f64,
        pct(0.50),
        pct(0.99)
    );
    println!(
        "raw ed25519-dalek verify_strict, 1 thread: before {raw_before:.0}/s, after {raw_after:.0}/s"
    );
    println!(
        "ratio committed decisions/s ÷ raw verifies/s: {:.3} (the writer alone; the end-to-end target is 0.5)",
        rate / raw
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_fresh_canonicalized_and_split_like_the_verify_load() {
        let org = Uuid::now_v7();
        let agents = vec!["aim_a".to_string(), "aim_b".to_string()];
        let items: Vec<DecisionWrite> = (0..10)
            .map(|i| item(org, &agents, i, 0.2, 1_767_225_600_000))
            .collect();
        let denied = items
            .iter()
            .filter(|w| matches!(&w.op, DecisionOp::InsertAction(a) if a.status == ActionStatus::Denied))
            .count();
        assert_eq!(denied, 2);
        let nonces: std::collections::HashSet<_> = items
            .iter()
            .map(|w| w.nonce.as_ref().expect("a nonce claim").nonce.clone())
            .collect();
        assert_eq!(nonces.len(), 10, "every decision claims its own nonce");
        assert!(items.iter().all(|w| w.prepared.is_some()));
        assert_eq!(items[1].nonce.as_ref().unwrap().agent_id, "aim_b");
        assert_eq!(items[0].nonce.as_ref().unwrap().signed_at, 1_767_225_600);
    }
}
