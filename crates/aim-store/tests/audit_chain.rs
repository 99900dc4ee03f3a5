//! The per-organization audit chain on both backends: concurrency (two pools = two replicas on one
//! database), group commit, stored-subtree proofs against `aim_core::audit::merkle`, fail-closed
//! appends, bad proof parameters.

use std::sync::Arc;

use aim_core::audit::merkle;
use aim_store::audit_chain::{SYSTEM_CHAIN, entry_of_row};
use aim_store::testing::TestDb;
use aim_store::*;
use uuid::Uuid;

const NOW: i64 = 1_780_000_000_000;

fn rec(org: Option<Uuid>, n: u64) -> AuditRecord {
    AuditRecord {
        org_id: org,
        at: NOW + n as i64,
        event_type: "test.event".into(),
        actor: format!("user:{n}"),
        subject: Some(format!("thing:{n}")),
        payload: serde_json::json!({ "n": n, "text": "é\u{1}\"" }),
        client_addr: Some("10.0.0.1".into()),
    }
}

/// The whole chain verified against its head (see [`aim_store::testing::verify_chain`]).
async fn verify_chain(s: &dyn Store, org: Uuid) -> Vec<merkle::Hash> {
    aim_store::testing::verify_chain(s, org).await
}

async fn concurrent_appends_keep_one_chain(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let org = Uuid::now_v7();
    let other = Uuid::now_v7();
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        // Half the writers on each pool (two replicas sharing one database).
        let s = if t % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            for i in 0..20u64 {
                let n = t * 1000 + i;
                if i % 5 == 4 {
                    // A group commit spanning two chains.
                    s.append_audits(&[
                        rec(Some(org), n),
                        rec(Some(other), n),
                        rec(Some(org), n + 500),
                    ])
                    .await
                    .unwrap();
                } else {
                    s.append_audit(&rec(Some(org), n)).await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // 8 writers × (16 singles + 4 batches of 2 for `org`)
    assert_eq!(verify_chain(&*a, org).await.len(), 8 * (16 + 8));
    assert_eq!(verify_chain(&*b, other).await.len(), 8 * 4);
}

async fn system_events_have_their_own_chain(a: Arc<dyn Store>, _b: Arc<dyn Store>) {
    a.append_audit(&rec(None, 1)).await.unwrap();
    a.append_audit(&rec(None, 2)).await.unwrap();
    let leaves = verify_chain(&*a, SYSTEM_CHAIN).await;
    assert_eq!(leaves.len(), 2);
    let rows = a.list_audit_chain(SYSTEM_CHAIN, 0, 10).await.unwrap();
    assert_eq!(
        entry_of_row(&rows[0]).unwrap().details["orgId"],
        serde_json::Value::Null
    );
}

async fn failed_append_rolls_back_the_change(a: Arc<dyn Store>, _b: Arc<dyn Store>) {
    let org = Organization {
        id: Uuid::now_v7(),
        name: "o".into(),
        require_2fa_admins: false,
        created_at: NOW,
        enforcement_mode: "strict".into(),
    };
    let admin = NewUser {
        id: Uuid::now_v7(),
        org_id: org.id,
        email: "a@o.test".into(),
        password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
        role: Role::Admin,
        must_change_password: false,
        created_by: None,
        created_at: NOW,
    };
    // A time no entry can carry: the append fails, so the whole change must not happen.
    let bad = AuditRecord {
        at: i64::MAX,
        ..rec(Some(org.id), 0)
    };
    assert!(a.create_org_with_admin(&org, &admin, &bad).await.is_err());
    assert!(a.get_org(org.id).await.unwrap().is_none(), "fail closed");
    assert_eq!(a.audit_head(org.id).await.unwrap().size, 0);
    a.create_org_with_admin(&org, &admin, &rec(Some(org.id), 0))
        .await
        .unwrap();
    assert_eq!(verify_chain(&*a, org.id).await.len(), 1);
}

async fn stored_proofs_match_aim_core(a: Arc<dyn Store>, _b: Arc<dyn Store>) {
    let org = Uuid::now_v7();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    let total = 300u64;
    let mut done = 0;
    while done < total {
        let k = (1 + rnd(17)).min(total - done);
        let batch: Vec<AuditRecord> = (done..done + k).map(|n| rec(Some(org), n)).collect();
        a.append_audits(&batch).await.unwrap();
        done += k;
    }
    let leaves = verify_chain(&*a, org).await;
    assert_eq!(leaves.len() as u64, total);
    for _ in 0..60 {
        let n = 1 + rnd(total);
        let m = rnd(n + 1);
        let idx = rnd(n);
        let prefix = &leaves[..n as usize];
        let root = merkle::root(prefix);
        assert_eq!(a.audit_root(org, n).await.unwrap(), root);
        let p = a.audit_inclusion(org, idx, n).await.unwrap();
        assert_eq!(p.leaf_hash, leaves[idx as usize]);
        assert_eq!(p.audit_path, merkle::inclusion_proof(prefix, idx).unwrap());
        assert!(merkle::verify_inclusion(
            &p.leaf_hash,
            idx,
            n,
            &p.audit_path,
            &root
        ));
        let c = a.audit_consistency(org, m, n).await.unwrap();
        assert_eq!(c, merkle::consistency_proof(prefix, m).unwrap());
        let old = merkle::root(&leaves[..m as usize]);
        assert!(merkle::verify_consistency(m, n, &old, &root, &c));
    }
    // Bad parameters are `Invalid` (400 at the API), never a panic or a database error.
    for r in [
        a.audit_inclusion(org, 5, 5).await.map(|_| ()),
        a.audit_inclusion(org, 0, total + 1).await.map(|_| ()),
        a.audit_inclusion(org, u64::MAX - 1, u64::MAX)
            .await
            .map(|_| ()),
        a.audit_consistency(org, 3, 2).await.map(|_| ()),
        a.audit_consistency(org, 1, total + 1).await.map(|_| ()),
        a.audit_root(org, total + 1).await.map(|_| ()),
    ] {
        assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
    }
    // Another organization sees an empty log.
    assert!(matches!(
        a.audit_root(Uuid::now_v7(), 1).await,
        Err(Error::Invalid(_))
    ));
}

async fn open(url: &str) -> Arc<dyn Store> {
    aim_store::connect(url, 4).await.unwrap()
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = aim_store::testing::TestDb::sqlite().unwrap();
                    let (a, b) = (super::open(&db.url).await, super::open(&db.url).await);
                    super::$name(a.clone(), b.clone()).await;
                    a.close().await;
                    b.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = aim_store::testing::TestDb::postgres(stringify!($name)).await else { return };
                    let (a, b) = (super::open(&db.url).await, super::open(&db.url).await);
                    super::$name(a.clone(), b.clone()).await;
                    a.close().await;
                    b.close().await;
                }
            )*
        }
    };
}

both!(
    concurrent_appends_keep_one_chain,
    system_events_have_their_own_chain,
    failed_append_rolls_back_the_change,
    stored_proofs_match_aim_core,
);

#[allow(dead_code)]
fn _uses(_: TestDb) {}

/// Measurement (run with `--run-ignored only`): proof latency at a small and a large log size on
/// SQLite, to show it does not grow with the log (O(log n) rows). Prints the figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_proof_latency_by_size() {
    let db = TestDb::sqlite().unwrap();
    let s = open(&db.url).await;
    let org = Uuid::now_v7();
    let total = 200_000u64;
    let t = std::time::Instant::now();
    for start in (0..total).step_by(2000) {
        let batch: Vec<AuditRecord> = (start..start + 2000).map(|n| rec(Some(org), n)).collect();
        s.append_audits(&batch).await.unwrap();
    }
    let append = t.elapsed();
    for size in [1_000u64, total] {
        let t = std::time::Instant::now();
        for i in 0..200u64 {
            let idx = (i * 7919) % size;
            s.audit_inclusion(org, idx, size).await.unwrap();
            s.audit_consistency(org, idx, size).await.unwrap();
        }
        println!(
            "size {size}: {:?} per inclusion+consistency pair",
            t.elapsed() / 200
        );
    }
    println!(
        "appended {total} entries in batches of 2000 in {append:?} ({:.0}/s, debug build)",
        total as f64 / append.as_secs_f64()
    );
    s.close().await;
}
