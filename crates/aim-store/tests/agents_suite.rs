//! The agent storage contract, run on SQLite and on PostgreSQL (`AIM_TEST_POSTGRES_URL`; skipped
//! loudly when unset). Negative cases first.

use aim_store::*;
use uuid::Uuid;

const NOW: i64 = 1_780_000_000_000;

fn audit(org: Uuid, ev: &str) -> AuditRecord {
    AuditRecord {
        org_id: Some(org),
        at: NOW,
        event_type: ev.into(),
        actor: "system".into(),
        subject: None,
        payload: serde_json::json!({}),
        client_addr: None,
    }
}

async fn org_with_admin(s: &dyn Store, name: &str) -> (Uuid, Uuid) {
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
    s.create_org_with_admin(&org, &admin, &audit(org.id, "org.created"))
        .await
        .unwrap();
    (org.id, admin.id)
}

fn new_agent(org: Uuid, owner: Uuid, name: &str, key: u8) -> NewAgent {
    NewAgent {
        id: format!("aim_{name}_{key}"),
        org_id: org,
        name: name.into(),
        owner_id: owner,
        capabilities: Capabilities(vec!["files:read".into()]),
        public_key: vec![key; 32],
        created_at: NOW,
        key_proven: false,
        pending_requests: Vec::new(),
    }
}

async fn events(s: &dyn Store, org: Uuid) -> Vec<String> {
    s.list_audit(
        org,
        PageRequest {
            after: None,
            limit: 500,
        },
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.event_type)
    .collect()
}

async fn registration_conflicts_and_isolation(s: &dyn Store) {
    let (a, admin_a) = org_with_admin(s, "a").await;
    let (b, admin_b) = org_with_admin(s, "b").await;
    let x = s
        .create_agent(
            &new_agent(a, admin_a, "x", 1),
            &audit(a, "agent.registered"),
        )
        .await
        .unwrap();
    assert_eq!(x.status, AgentStatus::Pending);
    assert_eq!(x.key_version, 1);
    assert_eq!(x.capabilities.0, vec!["files:read".to_string()]);
    // Same id/key; same name in the same org: conflicts, and no audit row is left behind.
    let mut dup_key = new_agent(a, admin_a, "other", 1);
    dup_key.id = "aim_fresh".into();
    for bad in [new_agent(a, admin_a, "x", 1), dup_key, {
        let mut n = new_agent(a, admin_a, "x", 2);
        n.id = "aim_x_2".into();
        n
    }] {
        let e = s.create_agent(&bad, &audit(a, "agent.registered")).await;
        assert!(matches!(e, Err(Error::Conflict { .. })), "{e:?}");
    }
    assert_eq!(
        events(s, a)
            .await
            .iter()
            .filter(|e| *e == "agent.registered")
            .count(),
        1
    );
    // Same name in another organization is fine.
    s.create_agent(
        &new_agent(b, admin_b, "x", 3),
        &audit(b, "agent.registered"),
    )
    .await
    .unwrap();
    assert!(s.get_agent(b, &x.id).await.unwrap().is_none(), "org-scoped");
    assert_eq!(s.find_agent(&x.id).await.unwrap().unwrap().org_id, a);
    // Keyset pagination.
    for i in 10..15 {
        s.create_agent(
            &new_agent(a, admin_a, &format!("p{i}"), i),
            &audit(a, "agent.registered"),
        )
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.list_agents(a, after.as_deref(), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|p| p.id.clone());
        seen.extend(page.into_iter().map(|p| p.id));
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    // Deleting the owner orphans the agent (managers still manage it).
    s.delete_user(a, admin_a, &audit(a, "user.deleted"))
        .await
        .unwrap();
    assert_eq!(s.get_agent(a, &x.id).await.unwrap().unwrap().owner_id, None);
}

async fn transitions_and_revocation_is_final(s: &dyn Store) {
    use AgentStatus::*;
    let (a, admin) = org_with_admin(s, "t").await;
    let (b, _) = org_with_admin(s, "u").await;
    let x = s
        .create_agent(&new_agent(a, admin, "x", 1), &audit(a, "agent.registered"))
        .await
        .unwrap();
    let t = |from: &'static [AgentStatus], to| {
        let id = x.id.clone();
        async move {
            s.transition_agent(a, &id, from, to, NOW + 1, &audit(a, "agent.transition"))
                .await
                .unwrap()
        }
    };
    assert_eq!(
        t(&[Active], Suspended).await,
        Transition::NotAllowed(Pending)
    );
    assert_eq!(
        s.transition_agent(b, &x.id, &[Pending], Revoked, NOW, &audit(b, "x"))
            .await
            .unwrap(),
        Transition::NotFound,
        "another organization cannot touch it"
    );
    let Transition::Done(r) = t(&[Pending, Active, Suspended], Revoked).await else {
        panic!("revoke")
    };
    assert_eq!((r.status, r.revoked_at), (Revoked, Some(NOW + 1)));
    // Even a caller listing `revoked` as a source cannot leave it.
    assert_eq!(t(&[Revoked], Active).await, Transition::NotAllowed(Revoked));
    assert!(
        s.transition_agent(a, &x.id, &[], Active, NOW, &audit(a, "x"))
            .await
            .is_err()
    );
    assert_eq!(
        events(s, a)
            .await
            .iter()
            .filter(|e| *e == "agent.transition")
            .count(),
        1
    );
}

async fn challenges_are_single_use(s: &dyn Store) {
    let (a, admin) = org_with_admin(s, "c").await;
    let x = s
        .create_agent(&new_agent(a, admin, "x", 1), &audit(a, "agent.registered"))
        .await
        .unwrap();
    let ch = |nonce: &str, expires_at| StoredChallenge {
        nonce: nonce.into(),
        org_id: a,
        agent_id: x.id.clone(),
        body: "{}".into(),
        expires_at,
        used_at: None,
    };
    s.insert_challenge(&ch("n1", NOW + 300_000)).await.unwrap();
    s.insert_challenge(&ch("n2", NOW + 300_000)).await.unwrap();
    assert!(
        s.insert_challenge(&ch("n1", NOW)).await.is_err(),
        "nonce is unique"
    );
    // Expired, wrong agent: nothing happens.
    assert!(
        s.accept_challenge(a, &x.id, "n2", NOW + 300_000, &audit(a, "passed"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.accept_challenge(a, "aim_other", "n1", NOW, &audit(a, "passed"))
            .await
            .unwrap()
            .is_none()
    );
    let got = s
        .accept_challenge(a, &x.id, "n1", NOW + 1, &audit(a, "passed"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.status, got.verified_at),
        (AgentStatus::Active, Some(NOW + 1))
    );
    assert!(
        s.accept_challenge(a, &x.id, "n1", NOW + 2, &audit(a, "passed"))
            .await
            .unwrap()
            .is_none(),
        "single use"
    );
    assert_eq!(
        s.get_challenge("n1").await.unwrap().unwrap().used_at,
        Some(NOW + 1)
    );
    assert_eq!(
        events(s, a).await.iter().filter(|e| *e == "passed").count(),
        1
    );
    // Old challenges are pruned a day after expiry.
    s.prune_agent_nonces(NOW + 300_000 + 86_400_001, 0)
        .await
        .unwrap();
    assert!(s.get_challenge("n1").await.unwrap().is_none());
}

async fn key_rotation_keeps_history_and_grace(s: &dyn Store) {
    let (a, admin) = org_with_admin(s, "r").await;
    let x = s
        .create_agent(&new_agent(a, admin, "x", 1), &audit(a, "agent.registered"))
        .await
        .unwrap();
    let y = s
        .create_agent(&new_agent(a, admin, "y", 9), &audit(a, "agent.registered"))
        .await
        .unwrap();
    let rot = |id: String, cur: u8, new: u8, now: i64| async move {
        s.rotate_agent_key(
            a,
            &id,
            &[cur; 32],
            &[new; 32],
            now + 1000,
            now,
            &audit(a, "rotated"),
        )
        .await
    };
    // Pending agents cannot rotate.
    assert!(rot(x.id.clone(), 1, 2, NOW).await.unwrap().is_none());
    s.transition_agent(
        a,
        &x.id,
        &[AgentStatus::Pending],
        AgentStatus::Active,
        NOW,
        &audit(a, "t"),
    )
    .await
    .unwrap();
    s.transition_agent(
        a,
        &y.id,
        &[AgentStatus::Pending],
        AgentStatus::Active,
        NOW,
        &audit(a, "t"),
    )
    .await
    .unwrap();
    // Stale expected key; another agent's key.
    assert!(rot(x.id.clone(), 7, 2, NOW).await.unwrap().is_none());
    assert!(matches!(
        rot(x.id.clone(), 1, 9, NOW).await,
        Err(Error::Conflict { .. })
    ));
    let r = rot(x.id.clone(), 1, 2, NOW).await.unwrap().unwrap();
    assert_eq!((r.key_version, r.public_key.clone()), (2, vec![2; 32]));
    assert_eq!(r.grace_key(NOW + 999), Some(&[1u8; 32][..]));
    assert_eq!(r.grace_key(NOW + 1000), None);
    let r = rot(x.id.clone(), 2, 3, NOW + 10).await.unwrap().unwrap();
    assert_eq!(r.previous_key, Some(vec![2; 32]));
    let hist = s.list_agent_keys(a, &x.id).await.unwrap();
    assert_eq!(hist.len(), 3);
    assert_eq!(
        hist[0].valid_until,
        Some(NOW + 10),
        "older key's grace is cut short"
    );
    assert_eq!(hist[1].valid_until, Some(NOW + 1010));
    assert_eq!(hist[2].retired_at, None);
    assert_eq!(
        events(s, a)
            .await
            .iter()
            .filter(|e| *e == "rotated")
            .count(),
        2
    );
}

fn item(org: Uuid, agent: &str, nonce: Option<&str>, ev: &str) -> DecisionWrite {
    DecisionWrite {
        nonce: nonce.map(|n| NonceClaim {
            signed_at: NOW / 1000,
            org_id: org,
            agent_id: agent.into(),
            nonce: n.into(),
            expires_at: NOW + 300_000,
        }),
        audit: audit(org, ev),
        replay_audit: Some(audit(org, "replayed")),
        op: DecisionOp::None,
        prepared: None,
    }
}

async fn batch_commit_claims_nonces_once(s: &dyn Store) {
    use DecisionOutcome::*;
    let (a, _) = org_with_admin(s, "n").await;
    assert!(s.commit_decisions(&[]).await.unwrap().is_empty());
    let out = s
        .commit_decisions(&[
            item(a, "aim_x", Some("n1"), "ok"),
            item(a, "aim_x", Some("n2"), "ok"),
            item(a, "aim_x", Some("n1"), "ok"), // replay inside the batch
            item(a, "aim_x", None, "ok"),
            item(a, "aim_y", Some("n1"), "ok"), // another agent's nonce space
        ])
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![Committed, Committed, Replayed, Committed, Committed]
    );
    let out = s
        .commit_decisions(&[
            item(a, "aim_x", Some("n2"), "ok"),
            item(a, "aim_x", Some("n3"), "ok"),
        ])
        .await
        .unwrap();
    assert_eq!(out, vec![Replayed, Committed]);
    let ev = events(s, a).await;
    assert_eq!(ev.iter().filter(|e| *e == "ok").count(), 5);
    assert_eq!(ev.iter().filter(|e| *e == "replayed").count(), 2);
    // Pruned once expired (the timestamp window refuses such requests anyway).
    assert_eq!(
        s.prune_agent_nonces(NOW + 299_999, NOW / 1000 + 1)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.prune_agent_nonces(NOW + 300_000, NOW / 1000 + 1)
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        s.commit_decisions(&[item(a, "aim_x", Some("n1"), "ok")])
            .await
            .unwrap(),
        vec![Committed]
    );
}

async fn concurrent_claims_of_one_nonce_have_one_winner(s: &dyn Store) {
    let (a, _) = org_with_admin(s, "cc").await;
    let claim = || async move {
        s.commit_decisions(&[item(a, "aim_x", Some("same"), "ok")])
            .await
            .unwrap()[0]
    };
    // Four claims in flight at once on separate pool connections.
    let (r1, r2, r3, r4) = tokio::join!(claim(), claim(), claim(), claim());
    let wins = [r1, r2, r3, r4]
        .iter()
        .filter(|o| **o == DecisionOutcome::Committed)
        .count();
    assert_eq!(wins, 1);
}

/// A signed request of `agent` with `nonce` that inserts `row` (an `agent.action.verified` record).
fn decision_item(org: Uuid, agent: &str, nonce: &str, row: ActionDecision) -> DecisionWrite {
    let mut it = item(org, agent, Some(nonce), "agent.action.verified");
    it.op = DecisionOp::InsertAction(Box::new(row));
    it
}

/// Decision rows are written in one statement per batch: only the fresh requests' rows exist,
/// a replayed request (earlier batch, or earlier in the same batch) inserts none.
async fn batched_decisions_insert_only_fresh_rows(s: &dyn Store) {
    use DecisionOutcome::*;
    let (org, admin) = org_with_admin(s, "batch").await;
    s.create_agent(
        &new_agent(org, admin, "bx", 51),
        &audit(org, "agent.registered"),
    )
    .await
    .unwrap();
    let agent = "aim_bx_51";
    let decision = |nonce: &str| {
        let id = Uuid::now_v7();
        let row = ActionDecision {
            resource: format!("r-{nonce}"),
            ..aim_store::testing::decision_row(id, org, agent, ActionStatus::Approved, NOW)
        };
        (decision_item(org, agent, nonce, row), id)
    };
    let (a, ida) = decision("d1");
    let (b, idb) = decision("d2");
    let (c, idc) = decision("d1"); // a replay of `a` inside the batch
    let out = s.commit_decisions(&[a, b, c]).await.unwrap();
    assert_eq!(out, vec![Committed, Committed, Replayed]);
    let (d, idd) = decision("d2"); // a replay of `b` in a later batch
    let (e, ide) = decision("d3");
    assert_eq!(
        s.commit_decisions(&[d, e]).await.unwrap(),
        vec![Replayed, Committed]
    );
    for (id, stored) in [
        (ida, true),
        (idb, true),
        (idc, false),
        (idd, false),
        (ide, true),
    ] {
        assert_eq!(
            s.get_action(org, id).await.unwrap().is_some(),
            stored,
            "{id}"
        );
    }
    let got = s.get_action(org, ide).await.unwrap().unwrap();
    assert_eq!(
        (got.resource.as_str(), got.status),
        ("r-d3", ActionStatus::Approved)
    );
}

/// Every kind of decision batch keeps one verifiable chain. On SQLite decisions, outcome reports
/// and plain records are committed synchronously and other ops (here a capability request) by
/// the sqlx path, so this interleaves both. An outcome is recorded once; a failed batch writes
/// nothing (its nonces stay unclaimed) and leaves the store usable.
async fn decision_batches_of_every_kind_keep_one_chain(s: &dyn Store) {
    use DecisionOutcome::*;
    let (org, admin) = org_with_admin(s, "kinds").await;
    s.create_agent(
        &new_agent(org, admin, "kx", 61),
        &audit(org, "agent.registered"),
    )
    .await
    .unwrap();
    let agent = "aim_kx_61";
    let id = Uuid::now_v7();
    let decision = |nonce: &str| {
        let row = aim_store::testing::decision_row(id, org, agent, ActionStatus::Approved, NOW);
        decision_item(org, agent, nonce, row)
    };
    assert_eq!(
        s.commit_decisions(&[decision("k1")]).await.unwrap(),
        vec![Committed]
    );
    let report = |nonce: &str, detail: &str| {
        let mut it = item(org, agent, Some(nonce), "agent.action.result");
        it.op = DecisionOp::ActionResult {
            org_id: org,
            action_id: id,
            agent_id: agent.into(),
            result: ActionResult::Success,
            detail: Some(detail.into()),
            at: NOW + 1,
        };
        it
    };
    // Some items come with their records prepared on the caller's thread (as the server's
    // writer queue does), some without: one chain either way, on both write paths.
    let prepared = |mut it: DecisionWrite| {
        it.prepare().unwrap();
        it
    };
    // Reported twice in one batch: the second finds the result already set.
    assert_eq!(
        s.commit_decisions(&[prepared(report("k2", "done")), report("k3", "again")])
            .await
            .unwrap(),
        vec![Committed, Conflict]
    );
    let got = s.get_action(org, id).await.unwrap().unwrap();
    assert_eq!(
        (got.result.as_deref(), got.result_detail.as_deref()),
        (Some("success"), Some("done"))
    );
    let mut request = item(org, agent, Some("k4"), "capability.requested");
    request.op = DecisionOp::CapabilityRequest(Box::new(CapabilityRequest {
        id: Uuid::now_v7(),
        org_id: org,
        agent_id: agent.into(),
        capability: "db:write".into(),
        reason: "needs it".into(),
        status: RequestStatus::Pending,
        requested_by: format!("agent:{agent}"),
        created_at: NOW,
        decided_by: None,
        decided_at: None,
        note: None,
    }));
    assert_eq!(
        s.commit_decisions(&[request, prepared(item(org, agent, Some("k5"), "ok"))])
            .await
            .unwrap(),
        vec![Committed, Committed]
    );
    // A decision id already stored fails the batch: nothing of it is written.
    let size = s.audit_head(org).await.unwrap().size;
    assert!(
        s.commit_decisions(&[item(org, agent, Some("k6"), "ok"), decision("k7")])
            .await
            .is_err()
    );
    assert_eq!(s.audit_head(org).await.unwrap().size, size);
    assert_eq!(
        s.commit_decisions(&[prepared(item(org, agent, Some("k6"), "ok")), decision("k1")])
            .await
            .unwrap(),
        vec![Committed, Replayed]
    );
    let leaves = aim_store::testing::verify_chain(s, org).await;
    let ev = events(s, org).await;
    assert_eq!(leaves.len(), ev.len(), "{ev:?}");
    for (event, n) in [
        ("agent.action.verified", 1),
        ("agent.action.result", 1),
        ("capability.requested", 1),
        ("ok", 2),
        ("replayed", 1),
    ] {
        assert_eq!(
            ev.iter().filter(|e| *e == event).count(),
            n,
            "{event}: {ev:?}"
        );
    }
}

/// aim-sdk registration: a server-generated key starts `active`; the org's SDK settings default
/// to (keys allowed, grant) until stored, are isolated per organization, and are audited.
async fn proven_keys_and_sdk_settings(s: &dyn Store) {
    let (org, admin) = org_with_admin(s, "sdkset").await;
    let (other, _) = org_with_admin(s, "sdkother").await;
    let mut a = new_agent(org, admin, "sdkagent", 41);
    a.key_proven = true;
    let got = s
        .create_agent(&a, &audit(org, "agent.registered"))
        .await
        .unwrap();
    assert_eq!(got.status, AgentStatus::Active);
    assert_eq!(got.verified_at, Some(NOW));
    let b = new_agent(org, admin, "plainagent", 42);
    let got = s
        .create_agent(&b, &audit(org, "agent.registered"))
        .await
        .unwrap();
    assert_eq!(got.status, AgentStatus::Pending);
    assert_eq!(got.verified_at, None);

    assert_eq!(
        s.get_sdk_settings(org).await.unwrap(),
        SdkSettings::default()
    );
    let off = SdkSettings {
        server_generated_keys: false,
        declared_capabilities: DeclaredCapabilities::Request,
    };
    s.set_sdk_settings(org, &off, &audit(org, "org.sdk_settings_changed"))
        .await
        .unwrap();
    assert_eq!(s.get_sdk_settings(org).await.unwrap(), off);
    assert_eq!(
        s.get_sdk_settings(other).await.unwrap(),
        SdkSettings::default()
    );
    // Stored again (upsert), not duplicated.
    s.set_sdk_settings(
        org,
        &SdkSettings::default(),
        &audit(org, "org.sdk_settings_changed"),
    )
    .await
    .unwrap();
    assert_eq!(
        s.get_sdk_settings(org).await.unwrap(),
        SdkSettings::default()
    );
    let evs = events(s, org).await;
    assert_eq!(
        evs.iter()
            .filter(|e| *e == "org.sdk_settings_changed")
            .count(),
        2,
        "{evs:?}"
    );
}

/// Pruning deletes the nonces signed before the cut that have expired, and nothing else: younger
/// ones and ones claimed under a longer window (another replica's setting) are still refused
/// afterwards, and a pruned one is claimable again.
async fn pruning_keeps_unexpired_nonces(s: &dyn Store) {
    use DecisionOutcome::*;
    let (a, _) = org_with_admin(s, "p").await;
    const S: i64 = NOW / 1000;
    let old = 407;
    let claim = |n: &str, signed_at: i64, window_ms: i64| DecisionWrite {
        nonce: Some(NonceClaim {
            signed_at,
            org_id: a,
            agent_id: "aim_p".into(),
            nonce: n.into(),
            expires_at: signed_at * 1000 + window_ms,
        }),
        ..item(a, "aim_p", None, "ok")
    };
    // Signed over 100 s, several nonces per second.
    let names: Vec<String> = (0..old).map(|i| format!("old{i}")).collect();
    let mut items: Vec<DecisionWrite> = names
        .iter()
        .enumerate()
        .map(|(i, n)| claim(n, S + (i as i64 % 100), 300_000))
        .collect();
    items.extend((0..3).map(|i| claim(&format!("young{i}"), S + 100 + i, 300_000)));
    items.push(claim("long", S, 600_000));
    let out = s.commit_decisions(&items).await.unwrap();
    assert!(out.iter().all(|o| *o == Committed));

    // The cut bounds the delete: nothing signed at or after it goes, expired or not.
    assert_eq!(s.prune_agent_nonces(NOW + 10_000_000, S).await.unwrap(), 0);
    // Nothing goes before it has expired.
    assert_eq!(
        s.prune_agent_nonces(NOW + 299_999, S + 100).await.unwrap(),
        0
    );
    let now = (S + 100) * 1000 + 299_999;
    assert_eq!(
        s.prune_agent_nonces(now, S + 100).await.unwrap(),
        old as u64
    );
    assert_eq!(s.prune_agent_nonces(now, S + 100).await.unwrap(), 0);
    let again = s
        .commit_decisions(&[
            claim("young0", S + 100, 300_000),
            claim("young2", S + 102, 300_000),
            claim("long", S, 600_000),
            claim("old5", S + 5, 300_000),
        ])
        .await
        .unwrap();
    assert_eq!(again, vec![Replayed, Replayed, Replayed, Committed]);
}

/// The replay key is the signed timestamp with the nonce: the same nonce under another signed
/// timestamp is another request (only the agent's key can sign one), the same pair is a replay
/// whatever else differs.
async fn nonces_are_keyed_by_signed_timestamp(s: &dyn Store) {
    use DecisionOutcome::*;
    let (a, _) = org_with_admin(s, "k").await;
    let claim = |signed_at: i64| DecisionWrite {
        nonce: Some(NonceClaim {
            signed_at,
            org_id: a,
            agent_id: "aim_k".into(),
            nonce: "n-shared".into(),
            expires_at: signed_at * 1000 + 300_000,
        }),
        ..item(a, "aim_k", None, "ok")
    };
    let t = NOW / 1000;
    let out = s
        .commit_decisions(&[claim(t), claim(t + 1), claim(t)])
        .await
        .unwrap();
    assert_eq!(out, vec![Committed, Committed, Replayed]);
    let out = s
        .commit_decisions(&[claim(t + 1), claim(t - 1)])
        .await
        .unwrap();
    assert_eq!(out, vec![Replayed, Committed]);
}

// ----- the two backends -----------------------------------------------------------------------

aim_store::store_suite!(
    registration_conflicts_and_isolation,
    transitions_and_revocation_is_final,
    challenges_are_single_use,
    key_rotation_keeps_history_and_grace,
    batch_commit_claims_nonces_once,
    pruning_keeps_unexpired_nonces,
    nonces_are_keyed_by_signed_timestamp,
    concurrent_claims_of_one_nonce_have_one_winner,
    proven_keys_and_sdk_settings,
    batched_decisions_insert_only_fresh_rows,
    decision_batches_of_every_kind_keep_one_chain,
);
