//! One suite, two backends: every test below runs on SQLite (temp file) and on PostgreSQL
//! (a fresh database on `AIM_TEST_POSTGRES_URL`; skipped loudly when unset).

use std::sync::Arc;

use aim_store::testing::TestDb;
use aim_store::*;
use uuid::Uuid;

const NOW: i64 = 1_780_000_000_000;

fn audit(org: Option<Uuid>, ev: &str) -> AuditRecord {
    AuditRecord {
        org_id: org,
        at: NOW,
        event_type: ev.into(),
        actor: "system".into(),
        subject: None,
        payload: serde_json::json!({}),
        client_addr: None,
    }
}

fn org(name: &str) -> Organization {
    Organization {
        id: Uuid::now_v7(),
        name: name.into(),
        require_2fa_admins: false,
        created_at: NOW,
        enforcement_mode: "strict".into(),
    }
}

fn new_user(org: Uuid, email: &str, role: Role) -> NewUser {
    NewUser {
        id: Uuid::now_v7(),
        org_id: org,
        email: email.into(),
        password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
        role,
        must_change_password: false,
        created_by: None,
        created_at: NOW,
    }
}

/// Two organizations with one admin each.
async fn two_orgs(s: &dyn Store) -> (Organization, NewUser, Organization, NewUser) {
    let (a, b) = (org("a"), org("b"));
    let (aa, ba) = (
        new_user(a.id, "admin@a.test", Role::Admin),
        new_user(b.id, "admin@b.test", Role::Admin),
    );
    s.create_org_with_admin(&a, &aa, &audit(Some(a.id), "org.created"))
        .await
        .unwrap();
    s.create_org_with_admin(&b, &ba, &audit(Some(b.id), "org.created"))
        .await
        .unwrap();
    (a, aa, b, ba)
}

fn refresh(session: Uuid, hash: u8, expires_at: i64) -> NewRefreshToken {
    NewRefreshToken {
        id: Uuid::now_v7(),
        session_id: session,
        token_hash: vec![hash; 32],
        created_at: NOW,
        expires_at,
    }
}

fn api_key(org: Uuid, owner: Uuid, hash: u8) -> NewApiKey {
    NewApiKey {
        id: Uuid::now_v7(),
        org_id: org,
        owner_id: owner,
        name: format!("key-{hash}"),
        prefix: "aim_live_abcdefgh".into(),
        key_hash: vec![hash; 32],
        role: Role::Member,
        created_at: NOW,
        expires_at: None,
    }
}

// ----- the suite ------------------------------------------------------------------------------

async fn bootstrap_happens_once(s: &dyn Store) {
    let o1 = org("first");
    let a1 = new_user(o1.id, "root@first.test", Role::Admin);
    assert_eq!(
        s.bootstrap(&o1, &a1, &audit(Some(o1.id), "bootstrap"))
            .await
            .unwrap(),
        Some(())
    );
    let o2 = org("second");
    let a2 = new_user(o2.id, "root@second.test", Role::Admin);
    assert_eq!(
        s.bootstrap(&o2, &a2, &audit(Some(o2.id), "bootstrap"))
            .await
            .unwrap(),
        None
    );
    assert!(
        s.get_org(o2.id).await.unwrap().is_none(),
        "second bootstrap must change nothing"
    );
    assert!(
        s.find_user_by_email("root@second.test")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.find_user_by_email("root@first.test")
            .await
            .unwrap()
            .is_some()
    );
}

async fn email_is_unique_across_orgs_and_conflict_writes_no_audit(s: &dyn Store) {
    let (_, _, b, _) = two_orgs(s).await;
    let before = s
        .list_audit(
            b.id,
            PageRequest {
                after: None,
                limit: 500,
            },
        )
        .await
        .unwrap()
        .len();
    let dup = new_user(b.id, "admin@a.test", Role::Member);
    let err = s
        .create_user(&dup, &audit(Some(b.id), "user.created"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    let after = s
        .list_audit(
            b.id,
            PageRequest {
                after: None,
                limit: 500,
            },
        )
        .await
        .unwrap()
        .len();
    assert_eq!(
        before, after,
        "the audit row must roll back with the failed change"
    );
    assert!(s.get_user(b.id, dup.id).await.unwrap().is_none());
}

async fn tenants_are_isolated(s: &dyn Store) {
    let (a, aa, b, ba) = two_orgs(s).await;
    let ka = s
        .create_api_key(&api_key(a.id, aa.id, 1), &audit(Some(a.id), "k"))
        .await
        .unwrap();
    // Reads scoped by org.
    assert!(s.get_user(b.id, aa.id).await.unwrap().is_none());
    assert!(s.get_api_key(b.id, ka.id).await.unwrap().is_none());
    let users_b = s
        .list_users(
            b.id,
            PageRequest {
                after: None,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        users_b.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![ba.id]
    );
    assert!(
        s.list_api_keys(
            b.id,
            None,
            PageRequest {
                after: None,
                limit: 100
            }
        )
        .await
        .unwrap()
        .is_empty()
    );
    // Writes scoped by org.
    let au = audit(Some(b.id), "x");
    assert!(
        s.set_user_role(b.id, aa.id, Role::Viewer, NOW, &au)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.set_user_active(b.id, aa.id, false, NOW, &au)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!s.delete_user(b.id, aa.id, &au).await.unwrap());
    assert!(!s.revoke_api_key(b.id, ka.id, NOW, &au).await.unwrap());
    assert!(
        s.rotate_api_key(b.id, ka.id, "p", &[9; 32], NOW, &au)
            .await
            .unwrap()
            .is_none()
    );
    let still = s.get_user(a.id, aa.id).await.unwrap().unwrap();
    assert_eq!((still.role, still.active), (Role::Admin, true));
    assert!(
        s.get_api_key(a.id, ka.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    // Audit lists are scoped too.
    assert!(
        s.list_audit(
            b.id,
            PageRequest {
                after: None,
                limit: 500
            }
        )
        .await
        .unwrap()
        .iter()
        .all(|r| r.org_id == Some(b.id))
    );
}

async fn lockout_after_five_failures_in_window(s: &dyn Store) {
    let (a, aa, _, _) = two_orgs(s).await;
    let policy = LockoutPolicy {
        max_failures: 5,
        window_ms: 15 * 60_000,
        lock_ms: 30 * 60_000,
    };
    let au = audit(Some(a.id), "auth.login.failed");
    for i in 0..4 {
        let o = s
            .record_login_failure(aa.id, NOW + i * 1000, policy, &au)
            .await
            .unwrap();
        assert_eq!(o.locked_until, None, "failure {i} must not lock");
    }
    let o = s
        .record_login_failure(aa.id, NOW + 5000, policy, &au)
        .await
        .unwrap();
    assert_eq!(o.locked_until, Some(NOW + 5000 + policy.lock_ms));
    let u = s.get_user(a.id, aa.id).await.unwrap().unwrap();
    assert_eq!(u.locked_until, Some(NOW + 5000 + policy.lock_ms));
    assert_eq!(u.failed_logins, 0, "counter restarts after a lock");
    // Failures spread beyond the window never lock.
    let o2 = org("c");
    let cu = new_user(o2.id, "slow@c.test", Role::Member);
    s.create_org_with_admin(&o2, &cu, &audit(Some(o2.id), "org"))
        .await
        .unwrap();
    for i in 0..10 {
        let o = s
            .record_login_failure(cu.id, NOW + i * 16 * 60_000, policy, &au)
            .await
            .unwrap();
        assert_eq!(o.locked_until, None);
    }
    let events = s
        .list_audit(
            o2.id,
            PageRequest {
                after: None,
                limit: 500,
            },
        )
        .await
        .unwrap();
    assert!(events.iter().all(|e| e.event_type != "auth.account.locked"));
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_family(s: &dyn Store) {
    let (a, aa, _, _) = two_orgs(s).await;
    let session = Session {
        id: Uuid::now_v7(),
        org_id: a.id,
        user_id: aa.id,
        created_at: NOW,
        revoked_at: None,
        revoked_reason: None,
    };
    let au = audit(Some(a.id), "auth.refresh.reused");
    s.create_session(
        &session,
        &refresh(session.id, 1, NOW + 1000),
        &audit(Some(a.id), "login"),
    )
    .await
    .unwrap();
    assert!(
        s.principal_for_session(aa.id, session.id)
            .await
            .unwrap()
            .is_some()
    );
    // Unknown token.
    assert_eq!(
        s.rotate_refresh_token(&[7; 32], &refresh(Uuid::nil(), 8, NOW + 1000), NOW, &au)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    // Live token rotates.
    let out = s
        .rotate_refresh_token(&[1; 32], &refresh(Uuid::nil(), 2, NOW + 1000), NOW, &au)
        .await
        .unwrap();
    assert!(
        matches!(out, RefreshOutcome::Rotated { ref session } if session.revoked_at.is_none()),
        "{out:?}"
    );
    // Replaying the retired token revokes the family.
    let out = s
        .rotate_refresh_token(&[1; 32], &refresh(Uuid::nil(), 3, NOW + 1000), NOW, &au)
        .await
        .unwrap();
    assert!(
        matches!(out, RefreshOutcome::Reused { ref session } if session.revoked_at.is_some()),
        "{out:?}"
    );
    // ... so the newest token is dead too, and so is the session.
    assert_eq!(
        s.rotate_refresh_token(&[2; 32], &refresh(Uuid::nil(), 4, NOW + 1000), NOW, &au)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    assert!(
        s.principal_for_session(aa.id, session.id)
            .await
            .unwrap()
            .is_none()
    );
    let events = s
        .list_audit(
            a.id,
            PageRequest {
                after: None,
                limit: 500,
            },
        )
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.event_type == "auth.refresh.reused"));
}

async fn expired_refresh_token_is_invalid(s: &dyn Store) {
    let (a, aa, _, _) = two_orgs(s).await;
    let session = Session {
        id: Uuid::now_v7(),
        org_id: a.id,
        user_id: aa.id,
        created_at: NOW,
        revoked_at: None,
        revoked_reason: None,
    };
    s.create_session(
        &session,
        &refresh(session.id, 1, NOW + 10),
        &audit(Some(a.id), "login"),
    )
    .await
    .unwrap();
    let au = audit(Some(a.id), "auth.refresh.reused");
    assert_eq!(
        s.rotate_refresh_token(
            &[1; 32],
            &refresh(Uuid::nil(), 2, NOW + 1000),
            NOW + 10,
            &au
        )
        .await
        .unwrap(),
        RefreshOutcome::Invalid
    );
}

async fn logout_and_password_change_revoke_sessions(s: &dyn Store) {
    let (a, aa, _, _) = two_orgs(s).await;
    let mk = |h: u8| Session {
        id: Uuid::now_v7(),
        org_id: a.id,
        user_id: aa.id,
        created_at: NOW + i64::from(h),
        revoked_at: None,
        revoked_reason: None,
    };
    let (s1, s2, s3) = (mk(1), mk(2), mk(3));
    for (sess, h) in [(&s1, 1u8), (&s2, 2), (&s3, 3)] {
        s.create_session(
            sess,
            &refresh(sess.id, h, NOW + 1000),
            &audit(Some(a.id), "login"),
        )
        .await
        .unwrap();
    }
    let au = audit(Some(a.id), "auth.logout");
    assert!(
        s.revoke_session(aa.id, s1.id, NOW, "logout", &au)
            .await
            .unwrap()
    );
    assert!(
        !s.revoke_session(aa.id, s1.id, NOW, "logout", &au)
            .await
            .unwrap(),
        "second logout is a no-op"
    );
    assert!(
        s.principal_for_session(aa.id, s1.id)
            .await
            .unwrap()
            .is_none()
    );
    s.set_password(
        aa.id,
        "$argon2id$new",
        Some(s2.id),
        NOW,
        &audit(Some(a.id), "pw"),
    )
    .await
    .unwrap();
    assert!(
        s.principal_for_session(aa.id, s2.id)
            .await
            .unwrap()
            .is_some(),
        "the current session survives"
    );
    assert!(
        s.principal_for_session(aa.id, s3.id)
            .await
            .unwrap()
            .is_none(),
        "other sessions end"
    );
    // A session id of another user is not accepted.
    let ba = new_user(a.id, "other@a.test", Role::Member);
    s.create_user(&ba, &audit(Some(a.id), "u")).await.unwrap();
    assert!(
        s.principal_for_session(ba.id, s2.id)
            .await
            .unwrap()
            .is_none()
    );
}

async fn deactivation_revokes_sessions(s: &dyn Store) {
    let (a, aa, _, _) = two_orgs(s).await;
    let m = new_user(a.id, "m@a.test", Role::Member);
    s.create_user(&m, &audit(Some(a.id), "u")).await.unwrap();
    let sess = Session {
        id: Uuid::now_v7(),
        org_id: a.id,
        user_id: m.id,
        created_at: NOW,
        revoked_at: None,
        revoked_reason: None,
    };
    s.create_session(
        &sess,
        &refresh(sess.id, 5, NOW + 1000),
        &audit(Some(a.id), "login"),
    )
    .await
    .unwrap();
    let u = s
        .set_user_active(
            a.id,
            m.id,
            false,
            NOW,
            &audit(Some(a.id), "user.deactivated"),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(!u.active);
    assert!(
        s.principal_for_session(m.id, sess.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(s.count_active_admins(a.id).await.unwrap(), 1);
    let _ = aa;
}

async fn delete_user_cascades(s: &dyn Store) {
    let (a, _, _, _) = two_orgs(s).await;
    let m = new_user(a.id, "gone@a.test", Role::Member);
    s.create_user(&m, &audit(Some(a.id), "u")).await.unwrap();
    let k = s
        .create_api_key(&api_key(a.id, m.id, 3), &audit(Some(a.id), "k"))
        .await
        .unwrap();
    assert!(
        s.delete_user(a.id, m.id, &audit(Some(a.id), "user.deleted"))
            .await
            .unwrap()
    );
    assert!(s.get_user(a.id, m.id).await.unwrap().is_none());
    assert!(
        s.get_api_key(a.id, k.id).await.unwrap().is_none(),
        "keys go with their owner"
    );
    assert!(s.find_api_key_by_hash(&[3; 32]).await.unwrap().is_none());
}

async fn totp_steps_and_recovery_codes_are_single_use(s: &dyn Store) {
    let (a, aa, _, _) = two_orgs(s).await;
    s.set_totp_pending(aa.id, b"sealed-1", NOW).await.unwrap();
    let au = audit(Some(a.id), "auth.totp.enabled");
    assert!(
        !s.enable_totp(aa.id, b"other", 100, &[], NOW, &au)
            .await
            .unwrap(),
        "pending secret must match"
    );
    assert!(
        s.enable_totp(
            aa.id,
            b"sealed-1",
            100,
            &[vec![1; 32], vec![2; 32]],
            NOW,
            &au
        )
        .await
        .unwrap()
    );
    let u = s.get_user(a.id, aa.id).await.unwrap().unwrap();
    assert!(u.totp_enabled);
    assert_eq!(u.totp_secret.as_deref(), Some(&b"sealed-1"[..]));
    assert!(u.totp_pending_secret.is_none());
    assert!(
        !s.consume_totp_step(aa.id, 100).await.unwrap(),
        "the confirming step is used"
    );
    assert!(
        !s.consume_totp_step(aa.id, 99).await.unwrap(),
        "older steps are refused"
    );
    assert!(s.consume_totp_step(aa.id, 101).await.unwrap());
    assert!(
        !s.consume_totp_step(aa.id, 101).await.unwrap(),
        "replay refused"
    );
    assert_eq!(s.remaining_recovery_codes(aa.id).await.unwrap(), 2);
    assert!(s.consume_recovery_code(aa.id, &[1; 32], NOW).await.unwrap());
    assert!(!s.consume_recovery_code(aa.id, &[1; 32], NOW).await.unwrap());
    assert!(!s.consume_recovery_code(aa.id, &[9; 32], NOW).await.unwrap());
    assert_eq!(s.remaining_recovery_codes(aa.id).await.unwrap(), 1);
    s.disable_totp(aa.id, NOW, &audit(Some(a.id), "auth.totp.disabled"))
        .await
        .unwrap();
    let u = s.get_user(a.id, aa.id).await.unwrap().unwrap();
    assert!(!u.totp_enabled && u.totp_secret.is_none());
    assert_eq!(s.remaining_recovery_codes(aa.id).await.unwrap(), 0);
}

async fn api_key_lifecycle(s: &dyn Store) {
    let (a, aa, _, _) = two_orgs(s).await;
    let k = s
        .create_api_key(
            &api_key(a.id, aa.id, 1),
            &audit(Some(a.id), "api_key.created"),
        )
        .await
        .unwrap();
    assert_eq!(k.use_count, 0);
    let found = s.find_api_key_by_hash(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(found.id, k.id);
    s.touch_api_key(k.id, NOW + 5, Some("127.0.0.1"))
        .await
        .unwrap();
    s.touch_api_key(k.id, NOW + 6, Some("127.0.0.2"))
        .await
        .unwrap();
    let k2 = s.get_api_key(a.id, k.id).await.unwrap().unwrap();
    assert_eq!(
        (
            k2.use_count,
            k2.last_used_at,
            k2.last_client_addr.as_deref()
        ),
        (2, Some(NOW + 6), Some("127.0.0.2"))
    );
    let au = audit(Some(a.id), "api_key.rotated");
    let r = s
        .rotate_api_key(a.id, k.id, "aim_live_zzzzzzzz", &[2; 32], NOW, &au)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.id, r.prefix.as_str()), (k.id, "aim_live_zzzzzzzz"));
    assert!(
        s.find_api_key_by_hash(&[1; 32]).await.unwrap().is_none(),
        "old secret is gone"
    );
    assert!(
        s.revoke_api_key(a.id, k.id, NOW, &audit(Some(a.id), "api_key.revoked"))
            .await
            .unwrap()
    );
    assert!(
        !s.revoke_api_key(a.id, k.id, NOW, &audit(Some(a.id), "api_key.revoked"))
            .await
            .unwrap()
    );
    assert!(
        s.rotate_api_key(a.id, k.id, "p", &[3; 32], NOW, &au)
            .await
            .unwrap()
            .is_none(),
        "revoked keys cannot rotate"
    );
    assert!(
        s.find_api_key_by_hash(&[2; 32])
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    let dup = NewApiKey {
        id: Uuid::now_v7(),
        ..api_key(a.id, aa.id, 2)
    };
    assert!(matches!(
        s.create_api_key(&dup, &audit(Some(a.id), "k")).await,
        Err(Error::Conflict { .. })
    ));
}

async fn keyset_pagination_walks_every_row_once(s: &dyn Store) {
    let (a, aa, _, _) = two_orgs(s).await;
    let mut ids = vec![aa.id];
    for i in 0..23 {
        let u = new_user(a.id, &format!("u{i}@a.test"), Role::Viewer);
        ids.push(u.id);
        s.create_user(&u, &audit(Some(a.id), "user.created"))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .list_users(a.id, PageRequest { after, limit: 10 })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        after = page.last().map(|u| u.id);
        seen.extend(page.into_iter().map(|u| u.id));
    }
    ids.sort();
    assert_eq!(seen, ids, "every user exactly once, in id order");
}

async fn org_setting_and_principal(s: &dyn Store) {
    let (a, aa, _, _) = two_orgs(s).await;
    let p = s.principal_for_user(aa.id).await.unwrap().unwrap();
    assert!(!p.org_require_2fa_admins);
    let o = s
        .set_org_require_2fa_admins(a.id, true, &audit(Some(a.id), "org.settings.changed"))
        .await
        .unwrap()
        .unwrap();
    assert!(o.require_2fa_admins);
    assert!(
        s.principal_for_user(aa.id)
            .await
            .unwrap()
            .unwrap()
            .org_require_2fa_admins
    );
    assert!(
        s.set_org_require_2fa_admins(Uuid::now_v7(), true, &audit(None, "x"))
            .await
            .unwrap()
            .is_none()
    );
}

async fn jwt_keys_newest_first(s: &dyn Store) {
    for (i, kid) in ["k1", "k2", "k3"].iter().enumerate() {
        let k = JwtKey {
            kid: (*kid).into(),
            algorithm: "EdDSA".into(),
            private_sealed: vec![1],
            public_key: vec![2],
            created_at: NOW + i as i64,
        };
        s.insert_jwt_key(&k, &audit(None, "jwt_key.created"))
            .await
            .unwrap();
    }
    let keys = s.list_jwt_keys(NOW + 1).await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        vec!["k3", "k2"]
    );
    s.ping().await.unwrap();
}

async fn sealed_values_page_and_compare_and_swap(s: &dyn Store) {
    let (_, aa, _, bb) = two_orgs(s).await;
    s.set_totp_pending(aa.id, b"pending-a", NOW).await.unwrap();
    s.set_totp_pending(bb.id, b"pending-b", NOW).await.unwrap();
    for kid in ["ka", "kb", "kc"] {
        let k = JwtKey {
            kid: kid.into(),
            algorithm: "EdDSA".into(),
            private_sealed: kid.as_bytes().to_vec(),
            public_key: vec![2],
            created_at: NOW,
        };
        s.insert_jwt_key(&k, &audit(None, "jwt_key.created"))
            .await
            .unwrap();
    }
    assert!(
        s.list_sealed(SealedColumn::UserTotpSecret, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Paging by one walks every row once, in order.
    let mut seen = Vec::new();
    let mut after: Option<SealedRow> = None;
    loop {
        let page = s
            .list_sealed(SealedColumn::JwtPrivateKey, after.as_ref(), 1)
            .await
            .unwrap();
        let Some(v) = page.last() else { break };
        after = Some(v.row.clone());
        seen.push(v.sealed.clone());
    }
    assert_eq!(seen, vec![b"ka".to_vec(), b"kb".to_vec(), b"kc".to_vec()]);
    let pending = s
        .list_sealed(SealedColumn::UserTotpPendingSecret, None, 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 2);
    let row = SealedRow::User(aa.id);
    let col = SealedColumn::UserTotpPendingSecret;
    // A stale `old` value does not overwrite; the right one does; wrong row kinds are errors.
    assert!(!s.replace_sealed(col, &row, b"stale", b"new").await.unwrap());
    assert!(
        s.replace_sealed(col, &row, b"pending-a", b"new")
            .await
            .unwrap()
    );
    assert!(
        !s.replace_sealed(col, &row, b"pending-a", b"newer")
            .await
            .unwrap()
    );
    assert!(
        s.replace_sealed(col, &SealedRow::JwtKey("ka".into()), b"x", b"y")
            .await
            .is_err()
    );
    let after = s.list_sealed(col, None, 10).await.unwrap();
    let a = after.iter().find(|v| v.row == row).unwrap();
    assert_eq!(a.sealed, b"new");
    let b = after
        .iter()
        .find(|v| v.row == SealedRow::User(bb.id))
        .unwrap();
    assert_eq!(b.sealed, b"pending-b", "other rows untouched");
    let stats = s.pool_stats();
    assert!(stats.max >= 1 && stats.idle <= stats.size);
}

// ----- the two backends -----------------------------------------------------------------------

async fn open_sqlite() -> (TestDb, Arc<dyn Store>) {
    let db = TestDb::sqlite().unwrap();
    let store = aim_store::connect(&db.url, 4).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    (db, store)
}

async fn open_postgres(test: &str) -> Option<(TestDb, Arc<dyn Store>)> {
    let db = TestDb::postgres(test).await?;
    let store = aim_store::connect(&db.url, 4).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    Some((db, store))
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (_db, store) = super::open_sqlite().await;
                    super::$name(&*store).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some((_db, store)) = super::open_postgres(stringify!($name)).await else { return };
                    super::$name(&*store).await;
                    store.close().await;
                }
            )*
        }
    };
}

suite!(
    bootstrap_happens_once,
    email_is_unique_across_orgs_and_conflict_writes_no_audit,
    tenants_are_isolated,
    lockout_after_five_failures_in_window,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    expired_refresh_token_is_invalid,
    logout_and_password_change_revoke_sessions,
    deactivation_revokes_sessions,
    delete_user_cascades,
    totp_steps_and_recovery_codes_are_single_use,
    api_key_lifecycle,
    keyset_pagination_walks_every_row_once,
    org_setting_and_principal,
    jwt_keys_newest_first,
    sealed_values_page_and_compare_and_swap,
);

// ----- SQLite WAL checkpoints -----------------------------------------------------------------

/// The background task copies committed pages into the database file without the writer doing
/// it: with the writer's own checkpoint far away (`WAL_BACKSTOP_PAGES`), the main file grows
/// only if that task runs. An explicit checkpoint afterwards finds nothing left to copy.
#[tokio::test]
async fn sqlite_wal_is_checkpointed_in_the_background() {
    use aim_store::sqlite::{SqliteStore, WAL_CHECKPOINT_EVERY};
    let db = TestDb::sqlite().unwrap();
    let store = SqliteStore::connect(&db.url, 2).await.unwrap();
    let path = std::path::PathBuf::from(db.url.trim_start_matches("sqlite://"));
    tokio::time::sleep(WAL_CHECKPOINT_EVERY * 3).await;
    let before = std::fs::metadata(&path).unwrap().len();
    let big = "x".repeat(2000);
    for i in 0..500 {
        let mut rec = audit(None, "test.filler");
        rec.payload = serde_json::json!({ "i": i, "filler": big });
        store.append_audit(&rec).await.unwrap();
    }
    let mut grown = false;
    for _ in 0..50 {
        tokio::time::sleep(WAL_CHECKPOINT_EVERY).await;
        if std::fs::metadata(&path).unwrap().len() > before + 500 * 2000 {
            grown = true;
            break;
        }
    }
    assert!(grown, "committed pages never reached the database file");
    let (log, copied) = store.checkpoint_wal().await.unwrap();
    assert_eq!(log, copied, "an idle WAL is fully checkpointed");
    store.close().await;
}
