//! The verifiable audit log over HTTP: bad parameters, tampering detected by `/verify`, signed
//! checkpoints and RFC 9162 proofs checked with `aim_core` alone, tenant isolation, security events
//! in the chain, concurrent writers.

use std::time::Duration;

use aim_core::audit::checkpoint::Checkpoint;
use aim_core::audit::merkle::{self, Hash};
use aim_core::audit::{ChainVerifier, Entry};
use aim_server::testkit::ADMIN_EMAIL;
use aim_store::testing::execute_for_org;
use aim_store::{AuditRecord, NewUser, Organization, Role};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Cred, Ctx, STRONG};

fn hex32(v: &Value) -> Hash {
    hex::decode(v.as_str().expect("hex string"))
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

fn db_url(ctx: &Ctx) -> String {
    ctx.ts
        .server
        .state
        .config
        .database_url
        .clone()
        .expect("test db url")
}

async fn org_id(ctx: &Ctx, token: &str) -> Uuid {
    let (_, v) = ctx.get("/api/v1/org", Cred::Bearer(token)).await;
    v["id"].as_str().unwrap().parse().unwrap()
}

/// Every entry of the caller's organization, in chain order (pages of 7 to exercise paging).
async fn all_entries(ctx: &Ctx, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut from = 0u64;
    loop {
        let (s, v) = ctx
            .get(
                &format!("/api/v1/audit/entries?fromSeq={from}&limit=7"),
                Cred::Bearer(token),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        out.extend(v["items"].as_array().unwrap().iter().cloned());
        match v["nextFromSeq"].as_u64() {
            Some(n) => from = n,
            None => break,
        }
    }
    out
}

fn entry(v: &Value) -> Entry {
    let mut m = serde_json::Map::new();
    for k in [
        "seq",
        "time",
        "eventType",
        "actor",
        "subject",
        "details",
        "prevHash",
        "hash",
    ] {
        m.insert(k.into(), v[k].clone());
    }
    serde_json::from_value(Value::Object(m)).expect("entry members")
}

async fn verify(ctx: &Ctx, token: &str) -> Value {
    let (s, v) = ctx.get("/api/v1/audit/verify", Cred::Bearer(token)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// Some security events: failed logins, a key created and revoked.
async fn some_events(ctx: &Ctx, admin: &str) {
    for _ in 0..2 {
        let (s, _) = ctx.login(ADMIN_EMAIL, "wrong-password-here").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, k) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(admin),
            json!({ "name": "k" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = ctx
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/api-keys/{}", k["id"].as_str().unwrap()),
            Cred::Bearer(admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

async fn bad_parameters_are_400(ctx: Ctx) {
    let admin = ctx.admin().await;
    let size = verify(&ctx, &admin).await["entries"].as_u64().unwrap();
    for path in [
        "/api/v1/audit/proof/inclusion",
        "/api/v1/audit/proof/inclusion?index=0",
        "/api/v1/audit/proof/inclusion?index=x&treeSize=1",
        "/api/v1/audit/proof/inclusion?index=-1&treeSize=1",
        "/api/v1/audit/proof/inclusion?index=1&treeSize=1",
        "/api/v1/audit/proof/inclusion?index=0&treeSize=18446744073709551615",
        "/api/v1/audit/proof/inclusion?index=0&treeSize=18446744073709551616",
        "/api/v1/audit/proof/inclusion?index=0&treeSize=1&extra=1",
        "/api/v1/audit/proof/consistency?from=2&to=1",
        "/api/v1/audit/proof/consistency?from=0",
        "/api/v1/audit/proof/consistency?from=0&to=99999",
        "/api/v1/audit/entries?limit=0",
        "/api/v1/audit/entries?limit=1001",
        "/api/v1/audit/entries?fromSeq=-1",
        "/api/v1/audit/entries?after=not-a-uuid",
    ] {
        let (s, v) = ctx.get(path, Cred::Bearer(&admin)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_eq!(v["error"], "bad_request", "{path}");
    }
    let past = format!(
        "/api/v1/audit/proof/inclusion?index=0&treeSize={}",
        size + 1
    );
    assert_eq!(
        ctx.get(&past, Cred::Bearer(&admin)).await.0,
        StatusCode::BAD_REQUEST
    );
    ctx.stop().await;
}

async fn tampering_each_kind(ctx: Ctx) {
    let admin = ctx.admin().await;
    some_events(&ctx, &admin).await;
    some_events(&ctx, &admin).await;
    let org = org_id(&ctx, &admin).await;
    let url = db_url(&ctx);
    assert_eq!(verify(&ctx, &admin).await["ok"], true);
    let kind = |v: &Value| {
        (
            v["problem"]["kind"].as_str().unwrap_or("").to_string(),
            v["problem"]["seq"].as_u64(),
        )
    };

    // 1. Hash column edited: HASH_MISMATCH at that entry. Undo by swapping the bytes back.
    execute_for_org(
        &url,
        "UPDATE audit_entries SET hash = prev_hash WHERE org_id = $1 AND seq = 3",
        org,
    )
    .await
    .unwrap();
    let v = verify(&ctx, &admin).await;
    assert_eq!(v["ok"], false);
    assert_eq!(kind(&v), ("HASH_MISMATCH".into(), Some(3)), "{v}");
    // Restore from the successor's prevHash.
    execute_for_org(&url, "UPDATE audit_entries SET hash = (SELECT prev_hash FROM audit_entries WHERE org_id = $1 AND seq = 4) WHERE org_id = $1 AND seq = 3", org).await.unwrap();
    assert_eq!(verify(&ctx, &admin).await["ok"], true);

    // 2. Rows reordered (sequence numbers of 4 and 5 swapped).
    execute_for_org(
        &url,
        "UPDATE audit_entries SET seq = -5 WHERE org_id = $1 AND seq = 5",
        org,
    )
    .await
    .unwrap();
    execute_for_org(
        &url,
        "UPDATE audit_entries SET seq = 5 WHERE org_id = $1 AND seq = 4",
        org,
    )
    .await
    .unwrap();
    execute_for_org(
        &url,
        "UPDATE audit_entries SET seq = 4 WHERE org_id = $1 AND seq = -5",
        org,
    )
    .await
    .unwrap();
    let v = verify(&ctx, &admin).await;
    assert_eq!(v["ok"], false);
    assert_eq!(kind(&v).1, Some(4), "{v}");
    execute_for_org(
        &url,
        "UPDATE audit_entries SET seq = -5 WHERE org_id = $1 AND seq = 5",
        org,
    )
    .await
    .unwrap();
    execute_for_org(
        &url,
        "UPDATE audit_entries SET seq = 5 WHERE org_id = $1 AND seq = 4",
        org,
    )
    .await
    .unwrap();
    execute_for_org(
        &url,
        "UPDATE audit_entries SET seq = 4 WHERE org_id = $1 AND seq = -5",
        org,
    )
    .await
    .unwrap();
    assert_eq!(verify(&ctx, &admin).await["ok"], true);

    // 3. Payload edited: HASH_MISMATCH.
    execute_for_org(
        &url,
        "UPDATE audit_entries SET payload = '{\"forged\":true}' WHERE org_id = $1 AND seq = 2",
        org,
    )
    .await
    .unwrap();
    let v = verify(&ctx, &admin).await;
    assert_eq!(kind(&v), ("HASH_MISMATCH".into(), Some(2)), "{v}");

    ctx.stop().await;
}

async fn truncation_is_detected(ctx: Ctx) {
    let admin = ctx.admin().await;
    some_events(&ctx, &admin).await;
    let org = org_id(&ctx, &admin).await;
    let url = db_url(&ctx);
    let size = verify(&ctx, &admin).await["entries"].as_u64().unwrap();
    let n = execute_for_org(&url, "DELETE FROM audit_entries WHERE org_id = $1 AND seq = (SELECT MAX(seq) FROM audit_entries WHERE org_id = $1)", org).await.unwrap();
    assert_eq!(n, 1);
    let v = verify(&ctx, &admin).await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["problem"]["kind"], "TRUNCATED", "{v}");
    assert_eq!(v["entries"].as_u64().unwrap(), size - 1);
    // A row deleted in the middle: SEQUENCE_GAP where it was.
    execute_for_org(
        &url,
        "DELETE FROM audit_entries WHERE org_id = $1 AND seq = 1",
        org,
    )
    .await
    .unwrap();
    let v = verify(&ctx, &admin).await;
    assert_eq!(v["problem"]["kind"], "SEQUENCE_GAP", "{v}");
    assert_eq!(v["problem"]["seq"], 1, "{v}");
    ctx.stop().await;
}

async fn checkpoints_and_proofs_verify_with_aim_core(ctx: Ctx) {
    let admin = ctx.admin().await;
    some_events(&ctx, &admin).await;
    let org = org_id(&ctx, &admin).await;
    let (s, cp1) = ctx
        .get("/api/v1/audit/checkpoint", Cred::Bearer(&admin))
        .await;
    assert_eq!(s, StatusCode::OK);
    let cp1: Checkpoint = serde_json::from_value(cp1).unwrap();
    let key = ctx.ts.server.state.org_signing_key(org).await.unwrap();
    cp1.verify(Some(&key.public))
        .expect("signed by the org log key");
    assert_eq!(cp1.key_id, key.key_id);

    // Tampered checkpoint fields do not verify.
    let mut forged = cp1.clone();
    forged.tree_size += 1;
    assert!(forged.verify(Some(&key.public)).is_err());

    some_events(&ctx, &admin).await;
    let entries = all_entries(&ctx, &admin).await;
    let mut v = ChainVerifier::new().strict(true).keep_leaves(true);
    for e in &entries {
        v.push_entry(&entry(e)).expect("each served entry verifies");
    }
    let leaves = v.finish().leaves;
    let (_, cp2) = ctx
        .get("/api/v1/audit/checkpoint", Cred::Bearer(&admin))
        .await;
    let cp2: Checkpoint = serde_json::from_value(cp2).unwrap();
    cp2.verify(Some(&key.public)).unwrap();
    assert_eq!(cp2.tree_size, leaves.len() as u64);
    assert_eq!(cp2.root().unwrap(), merkle::root(&leaves));
    assert_eq!(
        cp1.root().unwrap(),
        merkle::root(&leaves[..cp1.tree_size as usize])
    );

    for i in 0..cp2.tree_size {
        let (s, p) = ctx
            .get(
                &format!(
                    "/api/v1/audit/proof/inclusion?index={i}&treeSize={}",
                    cp2.tree_size
                ),
                Cred::Bearer(&admin),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(p["leafIndex"], i);
        let path: Vec<Hash> = p["auditPath"]
            .as_array()
            .unwrap()
            .iter()
            .map(hex32)
            .collect();
        let leaf = hex32(&p["leafHash"]);
        assert_eq!(leaf, leaves[i as usize]);
        assert!(merkle::verify_inclusion(
            &leaf,
            i,
            cp2.tree_size,
            &path,
            &cp2.root().unwrap()
        ));
        // A wrong leaf does not verify with the same path.
        assert!(!merkle::verify_inclusion(
            &[7; 32],
            i,
            cp2.tree_size,
            &path,
            &cp2.root().unwrap()
        ));
    }
    let (s, c) = ctx
        .get(
            &format!(
                "/api/v1/audit/proof/consistency?from={}&to={}",
                cp1.tree_size, cp2.tree_size
            ),
            Cred::Bearer(&admin),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c["fromSize"], cp1.tree_size);
    let proof: Vec<Hash> = c["proof"].as_array().unwrap().iter().map(hex32).collect();
    assert!(merkle::verify_consistency(
        cp1.tree_size,
        cp2.tree_size,
        &cp1.root().unwrap(),
        &cp2.root().unwrap(),
        &proof
    ));

    // The background checkpointer signs a due chain (interval elapsed) without being asked.
    some_events(&ctx, &admin).await;
    ctx.ts.clock.advance(Duration::from_secs(61));
    let head = ctx.ts.server.state.store.audit_head(org).await.unwrap();
    let mut signed = false;
    for _ in 0..50 {
        let latest = ctx
            .ts
            .server
            .state
            .store
            .latest_checkpoint(org)
            .await
            .unwrap()
            .unwrap();
        if latest.tree_size as u64 >= head.size {
            signed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(signed, "checkpointer did not sign within 5 s");
    ctx.stop().await;
}

async fn other_orgs_entries_are_never_visible(ctx: Ctx) {
    let admin = ctx.admin().await;
    some_events(&ctx, &admin).await;
    let st = &ctx.ts.server.state;
    let now = st.now_ms();
    let org_b = Organization {
        id: Uuid::now_v7(),
        name: "b".into(),
        require_2fa_admins: false,
        created_at: now,
        enforcement_mode: "strict".into(),
    };
    let admin_b = NewUser {
        id: Uuid::now_v7(),
        org_id: org_b.id,
        email: "admin@b.test".into(),
        password_hash: st.hasher.hash(STRONG).await.unwrap(),
        role: Role::Admin,
        must_change_password: false,
        created_by: None,
        created_at: now,
    };
    let rec = AuditRecord {
        org_id: Some(org_b.id),
        at: now,
        event_type: "org.created".into(),
        actor: "system".into(),
        subject: None,
        payload: json!({}),
        client_addr: None,
    };
    st.store
        .create_org_with_admin(&org_b, &admin_b, &rec)
        .await
        .unwrap();
    let b = ctx.tokens("admin@b.test", STRONG).await.0;
    let a_entries = all_entries(&ctx, &admin).await;
    let b_entries = all_entries(&ctx, &b).await;
    let b_org = org_b.id.to_string();
    assert!(
        b_entries
            .iter()
            .all(|e| e["details"]["orgId"] == b_org.as_str())
    );
    assert!(
        a_entries
            .iter()
            .all(|e| e["details"]["orgId"] != b_org.as_str())
    );
    assert_eq!(b_entries.len(), 2, "org.created + B's login");
    assert_eq!(
        b_entries[0]["seq"], 0,
        "each organization has its own chain from 0"
    );
    let vb = verify(&ctx, &b).await;
    assert_eq!(vb["ok"], true);
    assert_eq!(vb["entries"], 2);
    // Proofs beyond B's own log are refused, not answered from A's.
    let path = format!(
        "/api/v1/audit/proof/inclusion?index=3&treeSize={}",
        a_entries.len()
    );
    assert_eq!(
        ctx.get(&path, Cred::Bearer(&b)).await.0,
        StatusCode::BAD_REQUEST
    );
    // Checkpoints are signed by different keys.
    let (_, ca) = ctx
        .get("/api/v1/audit/checkpoint", Cred::Bearer(&admin))
        .await;
    let (_, cb) = ctx.get("/api/v1/audit/checkpoint", Cred::Bearer(&b)).await;
    assert_ne!(ca["publicKey"], cb["publicKey"]);
    ctx.stop().await;
}

async fn security_events_land_in_the_chain(ctx: Ctx) {
    let admin = ctx.admin().await;
    let user = ctx.user(&admin, "u@t.test", "viewer").await;
    for _ in 0..5 {
        ctx.login("u@t.test", "definitely-wrong-1").await;
    }
    let (s, _) = ctx
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/users/{user}"),
            Cred::Bearer(&admin),
            Some(json!({ "role": "manager" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    some_events(&ctx, &admin).await;
    // Settings change, twice, through an admin API key (a session would be restricted to TOTP
    // enrollment while 2FA is required and it has none).
    let (_, k) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&admin),
            json!({ "name": "a", "role": "admin" }),
        )
        .await;
    let key = k["key"].as_str().unwrap().to_string();
    for on in [true, false] {
        let (s, v) = ctx
            .call(
                reqwest::Method::PATCH,
                "/api/v1/org",
                Cred::XApiKey(&key),
                Some(json!({ "require2faForAdmins": on })),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let entries = all_entries(&ctx, &admin).await;
    let types: Vec<&str> = entries
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    for ev in [
        "server.bootstrapped",
        "auth.login.succeeded",
        "auth.login.failed",
        "auth.account.locked",
        "user.created",
        "user.role_changed",
        "api_key.created",
        "api_key.revoked",
        "org.settings_changed",
    ] {
        assert!(
            types.contains(&ev),
            "{ev} missing from the chain: {types:?}"
        );
    }
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"], i as u64, "gapless");
        assert_eq!(e["hash"].as_str().unwrap().len(), 64);
    }
    assert_eq!(verify(&ctx, &admin).await["ok"], true);
    ctx.stop().await;
}

async fn concurrent_requests_keep_one_chain(ctx: Ctx) {
    let admin = ctx.admin().await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let http = ctx.http.clone();
        let url = ctx.ts.url("/api/v1/api-keys");
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(admin)
                .json(&json!({ "name": format!("k{i}") }))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    let v = verify(&ctx, &admin).await;
    assert_eq!(v["ok"], true, "{v}");
    let created = all_entries(&ctx, &admin)
        .await
        .iter()
        .filter(|e| e["eventType"] == "api_key.created")
        .count();
    assert_eq!(created, 24);
    ctx.stop().await;
}

/// Two server instances (replicas) on one database, writers on both: one linear chain.
async fn two_replicas_keep_one_chain(ctx: Ctx) {
    let admin = ctx.admin().await;
    let cfg = (*ctx.ts.server.state.config).clone();
    let replica = aim_server::start(cfg, ctx.ts.clock.clone())
        .await
        .expect("second replica");
    let bases = [ctx.ts.base.clone(), format!("http://{}", replica.addr)];
    let mut tasks = Vec::new();
    for i in 0..24 {
        let http = ctx.http.clone();
        let url = format!("{}/api/v1/api-keys", bases[i % 2]);
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(admin)
                .json(&json!({ "name": format!("r{i}") }))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    let v = verify(&ctx, &admin).await;
    assert_eq!(v["ok"], true, "{v}");
    let entries = all_entries(&ctx, &admin).await;
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["eventType"] == "api_key.created")
            .count(),
        24
    );
    // Both replicas serve the same checkpoint key (one org key, stored once).
    let (_, a) = ctx
        .get("/api/v1/audit/checkpoint", Cred::Bearer(&admin))
        .await;
    let b: Value = ctx
        .http
        .get(format!("{}/api/v1/audit/checkpoint", bases[1]))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a["publicKey"], b["publicKey"]);
    let _ = replica.shutdown().await;
    ctx.stop().await;
}

/// A state on the test server's store with a verifier (and verified-rows tail) of its own; the
/// server's background tasks keep using theirs.
fn own_verifier(ctx: &Ctx) -> aim_server::AppState {
    ctx.ts.server.state.with_parts(|p| {
        p.chains = std::sync::Arc::new(aim_server::audit_log::ChainStates::default());
    })
}

/// `n` audit records at `at` about other subjects (no detector event maps to them).
pub(crate) fn noise(org: Uuid, at: i64, n: usize) -> Vec<AuditRecord> {
    (0..n)
        .map(|i| AuditRecord {
            org_id: Some(org),
            at,
            event_type: "test.noise".into(),
            actor: "system".into(),
            subject: Some(format!("user:{i}")),
            payload: json!({"i": i}),
            client_addr: None,
        })
        .collect()
}

/// The monitor's backlog of `org` from `next_seq` to `head_size`.
fn backlog(org: Uuid, next_seq: u64, head_size: u64) -> aim_store::MonitorBacklog {
    aim_store::MonitorBacklog {
        org_id: org,
        next_seq: next_seq as i64,
        head_size: head_size as i64,
    }
}

/// SQL built at run time, for `execute_for_org` (which takes `&'static str`).
fn leak(sql: String) -> &'static str {
    Box::leak(sql.into_boxed_str())
}

/// The security monitor analyses the rows verification read (each entry is read from the store
/// once for both), never rows that failed verification, and reads the store itself when the
/// rows are not held.
async fn monitor_takes_the_rows_verification_read(ctx: Ctx) {
    let admin = ctx.admin().await;
    let org = org_id(&ctx, &admin).await;
    let shared = &ctx.ts.server.state;
    let st = own_verifier(&ctx);
    assert!(st.verify_chain(org).await.unwrap().is_some());
    let h0 = st.store.audit_head(org).await.unwrap().size;
    shared
        .store
        .append_audits(&noise(org, 1, 300))
        .await
        .unwrap();
    let h1 = st.store.audit_head(org).await.unwrap().size;
    assert_eq!(h1, h0 + 300);
    let read = st.chains.rows_read();
    aim_server::monitor::analyse_page(&st, backlog(org, h0, h1))
        .await
        .unwrap();
    assert_eq!(
        st.chains.rows_read() - read,
        300,
        "verification read each entry once"
    );
    assert_eq!(
        st.chains.rows_handed(),
        300,
        "the monitor took them all from verification"
    );
    // The same page again (as after losing it to another replica): the rows were handed out
    // once, so the monitor reads the store and verification reads nothing more.
    aim_server::monitor::analyse_page(&st, backlog(org, h0, h1))
        .await
        .unwrap();
    assert_eq!(st.chains.rows_read() - read, 300);
    assert_eq!(st.chains.rows_handed(), 300);

    // A row edited before verification saw it: verification stops before it, so the monitor
    // gets none of the rows from it on from verification.
    shared
        .store
        .append_audits(&noise(org, 1, 10))
        .await
        .unwrap();
    let h2 = st.store.audit_head(org).await.unwrap().size;
    execute_for_org(
        &db_url(&ctx),
        leak(format!(
            "UPDATE audit_entries SET payload = '{{\"forged\":true}}' WHERE org_id = $1 AND seq = {}",
            h1 + 4
        )),
        org,
    )
    .await
    .unwrap();
    aim_server::monitor::analyse_page(&st, backlog(org, h1, h2))
        .await
        .unwrap();
    assert_eq!(
        st.chains.rows_handed(),
        304,
        "only the 4 rows before the edit"
    );
    assert_eq!(st.chain_intact(org), Some(false));
    ctx.stop().await;
}

/// An entry deleted below the verification target while later entries exist: verification
/// reports the chain broken and returns (it does not wait for the missing entry).
async fn verification_stops_at_a_missing_entry(ctx: Ctx) {
    let admin = ctx.admin().await;
    let org = org_id(&ctx, &admin).await;
    let shared = &ctx.ts.server.state;
    let st = own_verifier(&ctx);
    assert!(st.verify_chain(org).await.unwrap().is_some());
    let h0 = st.store.audit_head(org).await.unwrap().size;
    shared.store.append_audits(&noise(org, 1, 2)).await.unwrap();
    execute_for_org(
        &db_url(&ctx),
        leak(format!(
            "DELETE FROM audit_entries WHERE org_id = $1 AND seq = {h0}"
        )),
        org,
    )
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(10), st.verify_ahead(org, h0, h0 + 1))
        .await
        .expect("verification returned")
        .unwrap();
    assert_eq!(st.chain_intact(org), Some(false));
    assert!(st.take_verified_rows(org, h0, 10, i64::MAX).is_empty());
    ctx.stop().await;
}

/// Verification failing with an error (here an unreadable chain head) does not stop the security
/// monitor: it analyses the page from the store.
async fn monitor_reads_the_store_when_verification_fails(ctx: Ctx) {
    let admin = ctx.admin().await;
    let org = org_id(&ctx, &admin).await;
    let shared = &ctx.ts.server.state;
    let st = own_verifier(&ctx);
    let h0 = st.store.audit_head(org).await.unwrap().size;
    shared
        .store
        .append_audits(&noise(org, 1, 20))
        .await
        .unwrap();
    let h1 = st.store.audit_head(org).await.unwrap().size;
    execute_for_org(
        &db_url(&ctx),
        "UPDATE audit_heads SET frontier = substr(frontier, 1, 5) WHERE org_id = $1",
        org,
    )
    .await
    .unwrap();
    assert!(
        st.store.audit_head(org).await.is_err(),
        "the head is unreadable"
    );
    aim_server::monitor::analyse_page(&st, backlog(org, h0, h1))
        .await
        .expect("the monitor analysed the page from the store");
    assert_eq!(st.chains.rows_handed(), 0);
    ctx.stop().await;
}

crate::backends!(
    two_replicas_keep_one_chain,
    bad_parameters_are_400,
    tampering_each_kind,
    truncation_is_detected,
    checkpoints_and_proofs_verify_with_aim_core,
    other_orgs_entries_are_never_visible,
    security_events_land_in_the_chain,
    concurrent_requests_keep_one_chain,
    monitor_takes_the_rows_verification_read,
    verification_stops_at_a_missing_entry,
    monitor_reads_the_store_when_verification_fails,
);
