//! Trust evidence from counters (docs/TRUST.md "Server evidence"): the history route's refusals,
//! the score moving with events and the history recording it, evidence read from the counters
//! (not the chain), the decision path's cache, and a tampered chain zeroing the audit factor.
//! Negative cases first.
//!
//! Action decisions and outcome reports are written the way the action-verification route
//! writes them: one `commit_decisions` item with the decision row and its
//! `agent.action.verified` / `agent.action.result` audit record.

use std::sync::Arc;
use std::time::Duration;

use aim_core::aip;
use aim_core::clock::Clock;
use aim_server::AppState;
use aim_store::testing::execute_for_org;
use aim_store::{
    ActionDecision, ActionResult, ActionStatus, Agent, AuditRecord, DecisionOp, DecisionOutcome,
    DecisionWrite,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::agents::{active_agent, key};
use crate::common::{Cred, Ctx, STRONG};
use crate::credentials::other_org_admin;

const DAY_MS: i64 = 86_400_000;

fn state(ctx: &Ctx) -> &AppState {
    &ctx.ts.server.state
}

fn db_url(ctx: &Ctx) -> String {
    state(ctx).config.database_url.clone().expect("test db url")
}

async fn org_id(ctx: &Ctx, token: &str) -> Uuid {
    let (_, v) = ctx.get("/api/v1/org", Cred::Bearer(token)).await;
    v["id"].as_str().unwrap().parse().unwrap()
}

async fn agent(ctx: &Ctx, org: Uuid, id: &str) -> Agent {
    state(ctx).store.get_agent(org, id).await.unwrap().unwrap()
}

async fn trust(ctx: &Ctx, token: &str, id: &str) -> Value {
    let (s, v) = ctx
        .get(&format!("/api/v1/agents/{id}/trust"), Cred::Bearer(token))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn factor(v: &Value, name: &str) -> Value {
    v["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["factor"] == name)
        .unwrap_or_else(|| panic!("{name}"))
        .clone()
}

async fn history(ctx: &Ctx, token: &str, id: &str, query: &str) -> Value {
    let (s, v) = ctx
        .get(
            &format!("/api/v1/agents/{id}/trust/history{query}"),
            Cred::Bearer(token),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn rec(org: Uuid, at: i64, ev: &str, agent: &str, payload: Value) -> AuditRecord {
    AuditRecord {
        org_id: Some(org),
        at,
        event_type: ev.into(),
        actor: format!("agent:{agent}"),
        subject: Some(format!("agent:{agent}")),
        payload,
        client_addr: None,
    }
}

/// Records an action decision like the action-verification route: the row and its
/// `agent.action.verified` record in one item. Returns the decision id.
async fn decide(ctx: &Ctx, org: Uuid, agent: &str, status: ActionStatus, codes: &[&str]) -> Uuid {
    let st = state(ctx);
    let now = st.now_ms();
    let id = Uuid::now_v7();
    let row = ActionDecision {
        capability: "files:read".into(),
        resource: "/tmp/x".into(),
        policy_version: "v0".into(),
        ..aim_store::testing::decision_row(id, org, agent, status, now)
    };
    let out = st
        .store
        .commit_decisions(&[DecisionWrite {
            nonce: None,
            audit: rec(
                org,
                now,
                "agent.action.verified",
                agent,
                json!({ "actionId": id, "status": status.as_str(), "reasonCodes": codes }),
            ),
            replay_audit: None,
            op: DecisionOp::InsertAction(Box::new(row)),
            prepared: None,
        }])
        .await
        .unwrap();
    assert_eq!(out, vec![DecisionOutcome::Committed]);
    id
}

/// Reports an outcome like the result route. Returns whether it committed.
async fn report(ctx: &Ctx, org: Uuid, agent: &str, action: Uuid, ok: bool) -> DecisionOutcome {
    let st = state(ctx);
    let now = st.now_ms();
    let result = if ok {
        ActionResult::Success
    } else {
        ActionResult::Failure
    };
    st.store
        .commit_decisions(&[DecisionWrite {
            nonce: None,
            audit: rec(
                org,
                now,
                "agent.action.result",
                agent,
                json!({ "actionId": action, "result": result.as_str() }),
            ),
            replay_audit: None,
            op: DecisionOp::ActionResult {
                org_id: org,
                action_id: action,
                agent_id: agent.into(),
                result,
                detail: None,
                at: now,
            },
            prepared: None,
        }])
        .await
        .unwrap()[0]
}

async fn fail_challenge(ctx: &Ctx, token: &str, id: &str) {
    let (s, c) = ctx
        .post(
            &format!("/api/v1/agents/{id}/challenge"),
            Cred::Bearer(token),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let c: aip::Challenge = serde_json::from_value(c).unwrap();
    let forged = aip::respond(&c, &key(9_999), "k", ctx.ts.clock.now());
    let (s, _) = ctx
        .post(
            &format!("/api/v1/agents/{id}/verify"),
            Cred::Bearer(token),
            serde_json::to_value(&forged).unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// Waits for the start-up verification of the chain (done by the checkpointer task).
async fn chain_verified(ctx: &Ctx, org: Uuid) -> bool {
    for _ in 0..100 {
        if let Some(ok) = state(ctx).chain_intact(org) {
            return ok;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the chain was not verified within 5 s");
}

/// No credential, malformed parameters, another organization: refused, never a 500.
async fn history_refusals(ctx: Ctx) {
    let admin = ctx.admin().await;
    let id = active_agent(&ctx, &admin, "h", &key(800)).await;
    let path = format!("/api/v1/agents/{id}/trust/history");
    let (s, _) = ctx.get(&path, Cred::None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    for q in [
        "?limit=0",
        "?limit=501",
        "?limit=x",
        "?limit=-1",
        "?before=not-a-uuid",
        "?after=0194d0c1-0000-7000-8000-000000000000",
    ] {
        let (s, v) = ctx.get(&format!("{path}{q}"), Cred::Bearer(&admin)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
    }
    let (s, _) = ctx
        .get(
            "/api/v1/agents/not-an-id/trust/history",
            Cred::Bearer(&admin),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let other = other_org_admin(&ctx).await;
    let (s, _) = ctx.get(&path, Cred::Bearer(&other)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another organization's agent");
    // Every role of the organization reads it (same RBAC as /trust).
    ctx.user(&admin, "viewer@test.local", "viewer").await;
    let viewer = ctx.tokens("viewer@test.local", STRONG).await.0;
    let v = history(&ctx, &viewer, &id, "").await;
    assert!(v["items"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(v["nextBefore"], Value::Null);
    ctx.stop().await;
}

/// Failed proofs, decisions with violations, outcome reports and overdue outcome reports move
/// the factors by the documented formulas, and every change lands in the history with its
/// previous/new/delta/reason/actor.
async fn trust_follows_events_and_history_records_it(ctx: Ctx) {
    let mut admin = ctx.admin().await;
    let org = org_id(&ctx, &admin).await;
    let (_, me) = ctx.get("/api/v1/auth/me", Cred::Bearer(&admin)).await;
    let admin_actor = format!("user:{}", me["id"].as_str().unwrap_or_default());
    let id = active_agent(&ctx, &admin, "moving", &key(810)).await;

    let v0 = trust(&ctx, &admin, &id).await;
    let s0 = v0["score"].as_f64().unwrap();
    assert_eq!(factor(&v0, "identity_verification")["value"], 1.0);
    assert_eq!(factor(&v0, "capability_compliance")["included"], false);
    assert_eq!(factor(&v0, "error_rate")["included"], false);
    let h = history(&ctx, &admin, &id, "").await;
    let items = h["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{h}");
    assert_eq!(items[0]["previous"], Value::Null);
    assert_eq!(items[0]["reason"], "first computation");
    // The same score again is no change.
    trust(&ctx, &admin, &id).await;
    assert_eq!(
        history(&ctx, &admin, &id, "").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A failed challenge: identity (1 + 1) / (1 + 1 + 1).
    fail_challenge(&ctx, &admin, &id).await;
    let v1 = trust(&ctx, &admin, &id).await;
    let idv = factor(&v1, "identity_verification")["value"]
        .as_f64()
        .unwrap();
    assert!((idv - 2.0 / 3.0).abs() < 1e-12, "{idv}");
    let s1 = v1["score"].as_f64().unwrap();
    assert!(s1 < s0);
    let h = history(&ctx, &admin, &id, "").await;
    let newest = &h["items"][0];
    assert_eq!(newest["reason"], "identity_verification 1.00→0.67", "{h}");
    assert!((newest["previous"].as_f64().unwrap() - s0).abs() < 1e-9);
    assert!((newest["new"].as_f64().unwrap() - s1).abs() < 1e-9);
    assert!((newest["delta"].as_f64().unwrap() - (s1 - s0)).abs() < 1e-9);
    assert_eq!(newest["actor"], admin_actor.as_str());
    assert_eq!(newest["level"], v1["level"]);

    // Decisions: approved, denied for a missing grant (violation), rate-limited (not one):
    // compliance (1 − 1/3)².
    let approved = decide(&ctx, org, &id, ActionStatus::Approved, &[]).await;
    decide(&ctx, org, &id, ActionStatus::Denied, &["NO_GRANT"]).await;
    decide(&ctx, org, &id, ActionStatus::Denied, &["RATE_LIMITED"]).await;
    let v2 = trust(&ctx, &admin, &id).await;
    let cc = factor(&v2, "capability_compliance");
    assert_eq!(cc["included"], true, "{cc}");
    assert!(
        (cc["value"].as_f64().unwrap() - 4.0 / 9.0).abs() < 1e-12,
        "{cc}"
    );
    // The agent acted just now: activity part 0.5 · 0.5^0 on top of age ~0.
    let aa = factor(&v2, "age_and_activity")["value"].as_f64().unwrap();
    assert!((aa - 0.5).abs() < 1e-3, "{aa}");
    let h = history(&ctx, &admin, &id, "").await;
    let reason = h["items"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("capability_compliance n/a→0.44") && reason.contains("age_and_activity"),
        "{reason}"
    );

    // The approval ends and its grace period (1 h) passes without a report: one record is
    // missing — audit completeness (2 lifecycle + 0 of 1 outcome) = 2/3.
    ctx.ts.clock.advance(Duration::from_secs(2 * 3600));
    admin = ctx.admin().await; // the access token expired
    let v3 = trust(&ctx, &admin, &id).await;
    let ac = factor(&v3, "audit_completeness")["value"].as_f64().unwrap();
    assert!((ac - 2.0 / 3.0).abs() < 1e-12, "{ac}");
    // Reported (a failure): present again, and error rate 1 − 1/1 = 0. A second report of the
    // same decision conflicts and counts nothing.
    assert_eq!(
        report(&ctx, org, &id, approved, false).await,
        DecisionOutcome::Committed
    );
    assert_eq!(
        report(&ctx, org, &id, approved, true).await,
        DecisionOutcome::Conflict
    );
    let v4 = trust(&ctx, &admin, &id).await;
    assert_eq!(factor(&v4, "audit_completeness")["value"], 1.0);
    assert_eq!(factor(&v4, "error_rate")["value"], 0.0, "{v4}");
    // A success reported for another approval: 1 − 1/2.
    let second = decide(&ctx, org, &id, ActionStatus::Approved, &[]).await;
    report(&ctx, org, &id, second, true).await;
    let v5 = trust(&ctx, &admin, &id).await;
    assert_eq!(factor(&v5, "error_rate")["value"], 0.5);
    let h = history(&ctx, &admin, &id, "").await;
    assert!(
        h["items"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("error_rate 0.00→0.50"),
        "{h}"
    );
    // Outcomes leave the 7-day window, decisions the 30-day one.
    ctx.ts
        .clock
        .advance(Duration::from_millis(8 * DAY_MS as u64));
    admin = ctx.admin().await;
    let v6 = trust(&ctx, &admin, &id).await;
    assert_eq!(factor(&v6, "error_rate")["included"], false);
    assert_eq!(factor(&v6, "capability_compliance")["included"], true);
    ctx.ts
        .clock
        .advance(Duration::from_millis(23 * DAY_MS as u64));
    admin = ctx.admin().await;
    let v7 = trust(&ctx, &admin, &id).await;
    assert_eq!(factor(&v7, "capability_compliance")["included"], false);

    // Paging, newest first.
    let all = history(&ctx, &admin, &id, "?limit=500").await;
    let all = all["items"].as_array().unwrap().clone();
    assert!(all.len() >= 6, "{all:?}");
    let mut seen = Vec::new();
    let mut q = "?limit=2".to_string();
    loop {
        let page = history(&ctx, &admin, &id, &q).await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].clone()),
        );
        match page["nextBefore"].as_str() {
            Some(b) => q = format!("?limit=2&before={b}"),
            None => break,
        }
    }
    let ids: Vec<Value> = all.iter().map(|i| i["id"].clone()).collect();
    assert_eq!(seen, ids);
    // Each change is in the audit log too.
    let n = state(&ctx)
        .store
        .list_audit(
            org,
            aim_store::PageRequest {
                after: None,
                limit: 1000,
            },
        )
        .await
        .unwrap()
        .iter()
        .filter(|r| r.event_type == "trust.score_changed")
        .count();
    assert_eq!(n, all.len());
    ctx.stop().await;
}

/// The evidence comes from the counters, not from a pass over the chain: a counter row written
/// behind the audit log's back moves the score, and computing trust reads no audit row.
async fn evidence_reads_counters_not_the_chain(ctx: Ctx) {
    let admin = ctx.admin().await;
    let org = org_id(&ctx, &admin).await;
    let id = active_agent(&ctx, &admin, "counted", &key(820)).await;
    assert!(chain_verified(&ctx, org).await);
    // A longer chain: many events about other subjects.
    let st = state(&ctx);
    let now = st.now_ms();
    let noise = crate::audit::noise(org, now, 3000);
    st.store.append_audits(&noise).await.unwrap();
    // The checkpointer verifies and signs the due chain; wait until it is done, so that no
    // verification runs while trust is computed below.
    let size = st.store.audit_head(org).await.unwrap().size;
    let mut signed = false;
    for _ in 0..200 {
        if st.store.audit_head(org).await.unwrap().checkpoint_size == size {
            signed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(signed, "checkpointer did not sign within 10 s");
    assert_eq!(st.chain_intact(org), Some(true));
    let read_before = st.chains.rows_read();
    for _ in 0..5 {
        trust(&ctx, &admin, &id).await;
    }
    assert_eq!(
        st.chains.rows_read(),
        read_before,
        "trust read no audit row"
    );
    // Three failed proofs that exist only in the counter table.
    let day = now.div_euclid(DAY_MS);
    let sql: &'static str = Box::leak(
        format!(
            "INSERT INTO agent_activity (agent_id, day, org_id, key_proof_failures) VALUES ('{id}', {day}, $1, 3) \
             ON CONFLICT (agent_id, day) DO UPDATE SET key_proof_failures = agent_activity.key_proof_failures + 3"
        )
        .into_boxed_str(),
    );
    assert_eq!(execute_for_org(&db_url(&ctx), sql, org).await.unwrap(), 1);
    let v = trust(&ctx, &admin, &id).await;
    let idv = factor(&v, "identity_verification")["value"]
        .as_f64()
        .unwrap();
    assert!(
        (idv - 2.0 / 5.0).abs() < 1e-12,
        "(1 + 1) / (1 + 1 + 3): {idv}"
    );
    ctx.stop().await;
}

/// The decision path reuses a score for `trust_cache_ttl_secs` (30 s), recomputes after it or
/// at once when the agent's status changed, and records changes with actor `system`.
async fn decision_score_is_cached(ctx: Ctx) {
    let admin = ctx.admin().await;
    let org = org_id(&ctx, &admin).await;
    let id = active_agent(&ctx, &admin, "cached", &key(830)).await;
    let st = state(&ctx);
    let a = agent(&ctx, org, &id).await;
    let s0 = aim_server::trust::decision_score(st, &a)
        .await
        .unwrap()
        .unwrap();
    fail_challenge(&ctx, &admin, &id).await;
    fail_challenge(&ctx, &admin, &id).await;
    let again = aim_server::trust::decision_score(st, &a).await.unwrap();
    assert_eq!(again, Some(s0), "cached inside the TTL");
    ctx.ts.clock.advance(Duration::from_secs(29));
    assert_eq!(
        aim_server::trust::decision_score(st, &a).await.unwrap(),
        Some(s0)
    );
    ctx.ts.clock.advance(Duration::from_secs(2));
    let s1 = aim_server::trust::decision_score(st, &a)
        .await
        .unwrap()
        .unwrap();
    assert!(s1 < s0, "{s1} < {s0}");
    let h = history(&ctx, &admin, &id, "").await;
    assert_eq!(h["items"][0]["actor"], "system", "{h}");
    assert!(
        h["items"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("identity_verification 1.00→0.50"),
        "{h}"
    );
    // Suspension is seen at once (identity 0), without waiting for the TTL.
    let (s, _) = ctx
        .post(
            &format!("/api/v1/agents/{id}/suspend"),
            Cred::Bearer(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let suspended = agent(&ctx, org, &id).await;
    let s2 = aim_server::trust::decision_score(st, &suspended)
        .await
        .unwrap()
        .unwrap();
    assert!(s2 < s1, "{s2} < {s1}");
    assert!(!st.trust_cache.is_empty());
    st.trust_cache.invalidate(&id);
    assert!(st.trust_cache.is_empty());
    ctx.stop().await;
}

/// Concurrent decisions of an agent whose score is not cached compute it once (single flight):
/// the others wait for that result instead of each reading the evidence.
async fn concurrent_misses_recompute_once(ctx: Ctx) {
    let admin = ctx.admin().await;
    let org = org_id(&ctx, &admin).await;
    let id = active_agent(&ctx, &admin, "stampede", &key(831)).await;
    let st = state(&ctx);
    let a = agent(&ctx, org, &id).await;
    st.trust_cache.invalidate(&id);
    let before = st
        .trust_cache
        .recomputed
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (st, a) = (st.clone(), a.clone());
        set.spawn(async move { aim_server::trust::decision_score(&st, &a).await.unwrap() });
    }
    let scores = set.join_all().await;
    assert_eq!(scores.len(), 16);
    assert!(scores[0].is_some());
    assert!(
        scores.iter().all(|s| *s == scores[0]),
        "every waiter gets the same score: {scores:?}"
    );
    let after = st
        .trust_cache
        .recomputed
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(after - before, 1, "16 concurrent misses, one recomputation");
    // After the TTL the next miss recomputes again.
    ctx.ts.clock.advance(Duration::from_secs(31));
    aim_server::trust::decision_score(st, &a).await.unwrap();
    assert_eq!(
        st.trust_cache
            .recomputed
            .load(std::sync::atomic::Ordering::Relaxed)
            - after,
        1
    );
    ctx.stop().await;
}

/// A modified audit row: the next verification finds it, no checkpoint is signed over it, and
/// the audit factor of the organization's agents is 0. A process start (fresh verifier state)
/// finds an edit of an already verified row too.
async fn tampered_chain_zeroes_the_audit_factor(ctx: Ctx) {
    let admin = ctx.admin().await;
    let org = org_id(&ctx, &admin).await;
    let id = active_agent(&ctx, &admin, "tamper", &key(840)).await;
    assert!(chain_verified(&ctx, org).await);
    let (s, v) = ctx
        .get("/api/v1/audit/checkpoint", Cred::Bearer(&admin))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let v = trust(&ctx, &admin, &id).await;
    assert_eq!(factor(&v, "audit_completeness")["value"], 1.0);

    // An already verified row edited: a fresh verifier (what a process start runs) finds it.
    let url = db_url(&ctx);
    execute_for_org(
        &url,
        "UPDATE audit_entries SET payload = '{\"forged\":true}' WHERE org_id = $1 AND seq = 1",
        org,
    )
    .await
    .unwrap();
    let restarted = state(&ctx).with_parts(|p| {
        p.chains = Arc::new(aim_server::audit_log::ChainStates::default());
    });
    assert_eq!(
        restarted.chain_intact(org),
        None,
        "unknown before verification"
    );
    restarted.verify_all_chains().await.unwrap();
    assert_eq!(restarted.chain_intact(org), Some(false));

    // A new row edited before the running verifier saw it: the next verification (here the
    // on-demand checkpoint) refuses to sign, and the audit factor drops to 0.
    fail_challenge(&ctx, &admin, &id).await;
    execute_for_org(
        &url,
        "UPDATE audit_entries SET payload = '{\"forged\":true}' WHERE org_id = $1 \
         AND seq = (SELECT MAX(seq) FROM audit_entries WHERE org_id = $1)",
        org,
    )
    .await
    .unwrap();
    let (s, v) = ctx
        .get("/api/v1/audit/checkpoint", Cred::Bearer(&admin))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"], "audit_chain_broken");
    assert_eq!(state(&ctx).chain_intact(org), Some(false));
    let v = trust(&ctx, &admin, &id).await;
    let ac = factor(&v, "audit_completeness");
    assert_eq!(ac["value"], 0.0, "{ac}");
    ctx.stop().await;
}

crate::backends!(
    history_refusals,
    trust_follows_events_and_history_records_it,
    evidence_reads_counters_not_the_chain,
    decision_score_is_cached,
    concurrent_misses_recompute_once,
    tampered_chain_zeroes_the_audit_factor,
);
