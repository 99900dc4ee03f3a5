//! Trust evidence counters and history on SQLite and PostgreSQL (`AIM_TEST_POSTGRES_URL`;
//! skipped loudly when unset): counters move in the transaction of their audit records and roll
//! back with them; windows; tenant scoping; the history's keyset paging.

use aim_store::*;
use serde_json::json;
use uuid::Uuid;

const NOW: i64 = 1_780_000_000_000;
const DAY: i64 = 86_400_000;

async fn org(s: &dyn Store, name: &str) -> Uuid {
    let org = Organization {
        id: Uuid::now_v7(),
        name: name.into(),
        require_2fa_admins: false,
        created_at: NOW,
        enforcement_mode: "strict".into(),
    };
    let admin = NewUser {
        id: Uuid::now_v7(),
        org_id: org.id,
        email: format!("admin@{name}.test"),
        password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
        role: Role::Admin,
        must_change_password: false,
        created_by: None,
        created_at: NOW,
    };
    let rec = AuditRecord {
        org_id: Some(org.id),
        at: NOW,
        event_type: "org.created".into(),
        actor: "system".into(),
        subject: None,
        payload: json!({}),
        client_addr: None,
    };
    s.create_org_with_admin(&org, &admin, &rec).await.unwrap();
    org.id
}

fn ev(org: Uuid, at: i64, event: &str, actor: &str, agent: &str) -> AuditRecord {
    AuditRecord {
        org_id: Some(org),
        at,
        event_type: event.into(),
        actor: actor.into(),
        subject: Some(format!("agent:{agent}")),
        payload: json!({}),
        client_addr: None,
    }
}

fn windows() -> ActivityWindows {
    ActivityWindows::at(NOW, 3_600_000)
}

async fn counters_commit_and_roll_back_with_their_events(s: &dyn Store) {
    let a = org(s, "a").await;
    let b = org(s, "b").await;
    let empty = s.activity_evidence(a, "aim_x", &windows()).await.unwrap();
    assert_eq!(empty, ActivityEvidence::default());

    // A batch whose last record cannot be appended: nothing of it is counted.
    let bad = AuditRecord {
        at: i64::MAX,
        ..ev(a, NOW, "agent.challenge.failed", "user:u", "aim_x")
    };
    assert!(
        s.append_audits(&[ev(a, NOW, "agent.challenge.failed", "user:u", "aim_x"), bad])
            .await
            .is_err()
    );
    assert_eq!(
        s.activity_evidence(a, "aim_x", &windows()).await.unwrap(),
        ActivityEvidence::default(),
        "rolled back with the audit records"
    );

    // Committed: counted, per agent, in the windows.
    s.append_audits(&[
        ev(a, NOW - 5, "agent.challenge.passed", "user:u", "aim_x"),
        ev(a, NOW, "agent.challenge.failed", "user:u", "aim_x"),
        ev(
            a,
            NOW - 10 * DAY,
            "agent.challenge.failed",
            "user:u",
            "aim_x",
        ),
        ev(
            a,
            NOW - 40 * DAY,
            "agent.challenge.failed",
            "user:u",
            "aim_x",
        ),
        ev(
            a,
            NOW - 60 * DAY,
            "agent.challenge.passed",
            "user:u",
            "aim_x",
        ),
        ev(a, NOW - 3, "agent.heartbeat", "agent:aim_x", "aim_x"),
        ev(a, NOW, "agent.challenge.failed", "user:u", "aim_y"),
    ])
    .await
    .unwrap();
    let e = s.activity_evidence(a, "aim_x", &windows()).await.unwrap();
    assert_eq!(e.key_proofs_30d, 1);
    assert_eq!(
        e.key_proof_failures_30d, 2,
        "the 40-day-old failure is outside"
    );
    assert_eq!(e.challenges_passed_90d, 2);
    assert_eq!(e.last_key_proof_at, Some(NOW - 5));
    assert_eq!(e.last_activity_at, Some(NOW - 3));
    // A second transaction adds to the same day's row; an older proof does not move the newest.
    s.append_audit(&ev(a, NOW - 7, "agent.key.rotated", "agent:aim_x", "aim_x"))
        .await
        .unwrap();
    let e = s.activity_evidence(a, "aim_x", &windows()).await.unwrap();
    assert_eq!(e.key_proofs_30d, 2);
    assert_eq!(e.last_key_proof_at, Some(NOW - 5));
    assert_eq!(e.last_activity_at, Some(NOW - 3));
    // Another agent, another organization: their own rows only.
    let y = s.activity_evidence(a, "aim_y", &windows()).await.unwrap();
    assert_eq!((y.key_proof_failures_30d, y.key_proofs_30d), (1, 0));
    assert_eq!(
        s.activity_evidence(b, "aim_x", &windows()).await.unwrap(),
        ActivityEvidence::default()
    );
    // Proofs older than every window still give the newest proof time.
    let later = ActivityWindows::at(NOW + 200 * DAY, 3_600_000);
    let old = s.activity_evidence(a, "aim_x", &later).await.unwrap();
    assert_eq!(old.key_proofs_30d, 0);
    assert_eq!(old.last_key_proof_at, Some(NOW - 5));
    assert_eq!(old.last_activity_at, Some(NOW - 3));
}

async fn history_pages_newest_first(s: &dyn Store) {
    let a = org(s, "h").await;
    assert!(s.last_trust_change(a, "aim_x").await.unwrap().is_none());
    let mut ids = Vec::new();
    for i in 0..5 {
        let c = TrustChange {
            id: Uuid::now_v7(),
            org_id: a,
            agent_id: "aim_x".into(),
            at: NOW + i,
            previous_score: (i > 0).then(|| 50.0 + (i - 1) as f64),
            new_score: Some(50.0 + i as f64),
            delta: (i > 0).then_some(1.0),
            level: "medium".into(),
            reason: format!("r{i}"),
            actor: "system".into(),
            factors: "{}".into(),
        };
        s.insert_trust_change(&c, &ev(a, NOW, "trust.score_changed", "system", "aim_x"))
            .await
            .unwrap();
        ids.push(c.id);
    }
    assert_eq!(
        s.last_trust_change(a, "aim_x").await.unwrap().unwrap().id,
        ids[4]
    );
    let p1 = s.list_trust_history(a, "aim_x", None, 2).await.unwrap();
    assert_eq!(
        p1.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![ids[4], ids[3]]
    );
    let p2 = s
        .list_trust_history(a, "aim_x", Some(ids[3]), 500)
        .await
        .unwrap();
    assert_eq!(
        p2.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1], ids[0]]
    );
    assert_eq!(p2[2].previous_score, None);
    // Scoped by organization and agent.
    let other = org(s, "h2").await;
    assert!(
        s.list_trust_history(other, "aim_x", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.list_trust_history(a, "aim_y", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The audit chains exist for both organizations.
    let orgs = s.list_audit_chain_orgs(None, 1000).await.unwrap();
    assert!(orgs.contains(&a) && orgs.contains(&other));
    let after = s
        .list_audit_chain_orgs(Some(a.max(other)), 1000)
        .await
        .unwrap();
    assert!(!after.contains(&a) && !after.contains(&other));
}

/// A `status` decision of `agent` created at `at` (its approval ending a minute later) and,
/// when `reported`, the agent's success report a second after it.
fn decision(
    org: Uuid,
    agent: &str,
    status: ActionStatus,
    at: i64,
    reported: bool,
) -> Vec<DecisionWrite> {
    let id = Uuid::now_v7();
    let mut out = vec![DecisionWrite {
        nonce: None,
        audit: ev(org, at, "test.decision", "system", agent),
        replay_audit: None,
        op: DecisionOp::InsertAction(Box::new(aim_store::testing::decision_row(
            id, org, agent, status, at,
        ))),
        prepared: None,
    }];
    if reported {
        out.push(DecisionWrite {
            nonce: None,
            audit: ev(org, at + 1_000, "test.result", "system", agent),
            replay_audit: None,
            op: DecisionOp::ActionResult {
                org_id: org,
                action_id: id,
                agent_id: agent.into(),
                result: ActionResult::Success,
                detail: None,
                at: at + 1_000,
            },
            prepared: None,
        });
    }
    out
}

async fn outcome_evidence_reads_the_newest_due_approvals(s: &dyn Store) {
    use ActionStatus::*;
    let a = org(s, "due").await;
    let items: Vec<DecisionWrite> = [
        decision(a, "aim_x", Approved, NOW - 2 * DAY, true),
        decision(a, "aim_x", Approved, NOW - 2 * DAY + 1, true),
        decision(a, "aim_x", Approved, NOW - 2 * DAY + 2, false),
        decision(a, "aim_x", Denied, NOW - 2 * DAY + 3, false),
        // Ended 9 minutes ago: inside the one-hour grace, not due yet.
        decision(a, "aim_x", Approved, NOW - 600_000, false),
        // Older than the 30-day window.
        decision(a, "aim_x", Approved, NOW - 40 * DAY, false),
        // Another agent's.
        decision(a, "aim_y", Approved, NOW - 2 * DAY, false),
    ]
    .concat();
    let out = s.commit_decisions(&items).await.unwrap();
    assert!(
        out.iter().all(|o| *o == DecisionOutcome::Committed),
        "{out:?}"
    );
    let e = s.activity_evidence(a, "aim_x", &windows()).await.unwrap();
    assert_eq!((e.results_due, e.results_present), (3, 2));
    let y = s.activity_evidence(a, "aim_y", &windows()).await.unwrap();
    assert_eq!((y.results_due, y.results_present), (1, 0));

    // A busy agent: only the newest DUE_SAMPLE due approvals are read, so the two old reports
    // fall out of the sample and its cost stays bounded.
    let newer: Vec<DecisionWrite> = (0..DUE_SAMPLE + 5)
        .flat_map(|i| decision(a, "aim_x", Approved, NOW - DAY + i, false))
        .collect();
    for chunk in newer.chunks(250) {
        s.commit_decisions(chunk).await.unwrap();
    }
    let e = s.activity_evidence(a, "aim_x", &windows()).await.unwrap();
    assert_eq!((e.results_due, e.results_present), (DUE_SAMPLE, 0));
}

// ----- the two backends -----------------------------------------------------------------------

aim_store::store_suite!(
    counters_commit_and_roll_back_with_their_events,
    history_pages_newest_first,
    outcome_evidence_reads_the_newest_due_approvals,
);
