//! The monitor's storage on SQLite and PostgreSQL (`AIM_TEST_POSTGRES_URL`; skipped loudly when
//! unset): the cursor compare-and-swap (a stale page writes nothing), forward-only lifecycles with
//! their audit records, delivery leases that two workers cannot share, the delivery log, tenant
//! scoping, and the sealed route secret listed for key rotation.

use aim_store::*;
use serde_json::json;
use uuid::Uuid;

const NOW: i64 = 1_780_000_000_000;

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
    s.create_org_with_admin(&org, &admin, &rec(org.id, "org.created"))
        .await
        .unwrap();
    org.id
}

fn rec(org: Uuid, event: &str) -> AuditRecord {
    AuditRecord {
        org_id: Some(org),
        at: NOW,
        event_type: event.into(),
        actor: "system".into(),
        subject: None,
        payload: json!({}),
        client_addr: None,
    }
}

fn route(org: Uuid) -> AlertRouteRow {
    AlertRouteRow {
        id: Uuid::now_v7(),
        org_id: org,
        name: "hook".into(),
        min_severity: "medium".into(),
        enabled: true,
        channel: "webhook".into(),
        target: "https://hooks.example/aim".into(),
        secret: Some(vec![1, 2, 3]),
        created_at: NOW,
        updated_at: NOW,
    }
}

/// A batch moving the cursor `from → to` with one anomaly, one incident, one alert and its
/// delivery over `route_id`.
fn batch(org: Uuid, from: i64, to: i64, route_id: Uuid) -> MonitorBatch {
    let alert = Uuid::now_v7();
    MonitorBatch {
        org_id: org,
        from_seq: from,
        to_seq: to,
        now: NOW,
        states: vec![AgentMonitorState {
            org_id: org,
            agent_id: "aim_a".into(),
            observations: 21,
            baseline: "{}".into(),
            correlator: "{}".into(),
            updated_at: NOW,
        }],
        anomalies: vec![AnomalyRow {
            id: Uuid::now_v7(),
            org_id: org,
            agent_id: "aim_a".into(),
            detector: "denial_burst".into(),
            severity: "high".into(),
            weight: 2.0,
            at: NOW,
            statistic: 5.0,
            baseline: 0.0,
            threshold: 5.0,
            message: "5 denied actions".into(),
            event_seq: from,
        }],
        incidents: vec![IncidentRow {
            id: Uuid::now_v7(),
            org_id: org,
            agent_id: "aim_a".into(),
            rule: "denial_burst_from_new_origin".into(),
            severity: "high".into(),
            state: "open".into(),
            first_at: NOW,
            last_at: NOW,
            members: "[\"anomaly:1\"]".into(),
            summary: "s".into(),
            updated_at: NOW,
            updated_by: None,
        }],
        alerts: vec![AlertRow {
            id: alert,
            org_id: org,
            severity: "high".into(),
            kind: "incident.denial_burst_from_new_origin".into(),
            title: "t".into(),
            agent_id: Some("aim_a".into()),
            details: "{}".into(),
            state: "open".into(),
            created_at: NOW,
            updated_at: NOW,
            updated_by: None,
        }],
        deliveries: vec![DeliveryRow {
            id: Uuid::now_v7(),
            org_id: org,
            alert_id: alert,
            route_id,
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: NOW,
            lease_until: 0,
            last_error: None,
            last_http_status: None,
            updated_at: NOW,
        }],
        audits: vec![rec(org, "monitor.alert.raised")],
    }
}

async fn cursor_moves_once_and_a_stale_page_writes_nothing(s: &dyn Store) {
    let a = org(s, "a").await;
    let b = org(s, "b").await;
    let r = route(a);
    s.create_alert_route(&r, &rec(a, "alert_route.created"))
        .await
        .unwrap();
    let backlog = s.monitor_backlog(100).await.unwrap();
    let mine = backlog.iter().find(|x| x.org_id == a).unwrap();
    assert_eq!(mine.next_seq, 0);
    let head = s.audit_head(a).await.unwrap().size as i64;
    assert_eq!(mine.head_size, head);

    // Two replicas analysed the same page: the first commits, the second writes nothing.
    assert!(
        s.commit_monitor_batch(&batch(a, 0, head, r.id))
            .await
            .unwrap()
    );
    let head_after = s.audit_head(a).await.unwrap().size;
    assert!(
        !s.commit_monitor_batch(&batch(a, 0, head, r.id))
            .await
            .unwrap()
    );
    assert_eq!(s.audit_head(a).await.unwrap().size, head_after, "no audit");
    let f = MonitorFilter {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(s.list_anomalies(a, &f).await.unwrap().len(), 1);
    assert_eq!(s.list_alerts(a, &f).await.unwrap().len(), 1);
    assert_eq!(s.list_incidents(a, &f).await.unwrap().len(), 1);
    // The next page starts where the cursor is; a page from a wrong cursor is refused.
    let backlog = s.monitor_backlog(100).await.unwrap();
    let mine = backlog.iter().find(|x| x.org_id == a).unwrap();
    assert_eq!(mine.next_seq, head);
    assert!(
        !s.commit_monitor_batch(&batch(a, head + 5, head + 6, r.id))
            .await
            .unwrap()
    );

    // Evidence for the trust score: observations and anomaly weight since a time.
    let e = s.monitor_evidence(a, "aim_a", NOW - 1).await.unwrap();
    assert_eq!(e.baseline_observations, 21);
    assert_eq!(e.anomaly_weight, 2.0);
    let e = s.monitor_evidence(a, "aim_a", NOW + 1).await.unwrap();
    assert_eq!(e.anomaly_weight, 0.0);
    assert_eq!(
        s.monitor_states(a, &["aim_a".into(), "aim_none".into()])
            .await
            .unwrap()
            .len(),
        1
    );

    // Tenant scoping: the other organization sees nothing of it.
    assert!(s.list_anomalies(b, &f).await.unwrap().is_empty());
    assert!(s.list_alerts(b, &f).await.unwrap().is_empty());
    assert!(s.list_alert_routes(b).await.unwrap().is_empty());
    assert!(s.get_alert_route(b, r.id).await.unwrap().is_none());
    assert_eq!(
        s.monitor_evidence(b, "aim_a", 0)
            .await
            .unwrap()
            .baseline_observations,
        0
    );
}

async fn lifecycles_go_forward_only_with_their_audit(s: &dyn Store) {
    let a = org(s, "a").await;
    let b = org(s, "b").await;
    let r = route(a);
    s.create_alert_route(&r, &rec(a, "alert_route.created"))
        .await
        .unwrap();
    let head = s.audit_head(a).await.unwrap().size as i64;
    let bt = batch(a, 0, head, r.id);
    s.commit_monitor_batch(&bt).await.unwrap();
    let inc = bt.incidents[0].id;
    let alert = bt.alerts[0].id;

    // Another organization cannot move it.
    assert_eq!(
        s.set_incident_state(
            b,
            inc,
            &["open"],
            "acknowledged",
            "user:x",
            NOW,
            &rec(b, "incident.acknowledged")
        )
        .await
        .unwrap(),
        Change::NotFound
    );
    let size = s.audit_head(a).await.unwrap().size;
    match s
        .set_incident_state(
            a,
            inc,
            &["open"],
            "acknowledged",
            "user:m",
            NOW + 1,
            &rec(a, "incident.acknowledged"),
        )
        .await
        .unwrap()
    {
        Change::Done(i) => {
            assert_eq!(i.state, "acknowledged");
            assert_eq!(i.updated_by.as_deref(), Some("user:m"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.audit_head(a).await.unwrap().size, size + 1);
    // Acknowledging again is not allowed and writes nothing.
    assert!(matches!(
        s.set_incident_state(a, inc, &["open"], "acknowledged", "user:m", NOW + 2, &rec(a, "incident.acknowledged"))
            .await
            .unwrap(),
        Change::NotAllowed(i) if i.state == "acknowledged"
    ));
    assert_eq!(s.audit_head(a).await.unwrap().size, size + 1);
    assert!(matches!(
        s.set_incident_state(a, inc, &["open", "acknowledged"], "resolved", "user:m", NOW + 3, &rec(a, "incident.resolved"))
            .await
            .unwrap(),
        Change::Done(i) if i.state == "resolved"
    ));
    // Alerts: open → resolved directly.
    assert!(matches!(
        s.set_alert_state(a, alert, &["open", "acknowledged"], "resolved", "user:m", NOW, &rec(a, "alert.resolved"))
            .await
            .unwrap(),
        Change::Done(x) if x.state == "resolved"
    ));
    assert!(matches!(
        s.set_alert_state(
            a,
            alert,
            &["open"],
            "acknowledged",
            "user:m",
            NOW,
            &rec(a, "alert.acknowledged")
        )
        .await
        .unwrap(),
        Change::NotAllowed(_)
    ));
    let f = MonitorFilter {
        state: Some("resolved".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(s.list_incidents(a, &f).await.unwrap().len(), 1);
    let f = MonitorFilter {
        state: Some("open".into()),
        limit: 10,
        ..Default::default()
    };
    assert!(s.list_incidents(a, &f).await.unwrap().is_empty());
}

async fn leases_are_exclusive_and_attempts_are_logged(s: &dyn Store) {
    let a = org(s, "a").await;
    let r = route(a);
    s.create_alert_route(&r, &rec(a, "alert_route.created"))
        .await
        .unwrap();
    let head = s.audit_head(a).await.unwrap().size as i64;
    let bt = batch(a, 0, head, r.id);
    s.commit_monitor_batch(&bt).await.unwrap();

    // Not due before its time; once leased, a second worker gets nothing until the lease lapses.
    assert!(
        s.lease_deliveries(NOW - 1, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let first = s.lease_deliveries(NOW, 60_000, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        s.lease_deliveries(NOW + 1, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = s.lease_deliveries(NOW + 60_000, 60_000, 10).await.unwrap();
    assert_eq!(again.len(), 1, "an expired lease is taken over");

    // A failed attempt: pending, due later, logged; then a success ends it.
    let d = &again[0];
    let attempt = |n: i64, ok: bool| DeliveryAttemptRow {
        id: Uuid::now_v7(),
        org_id: a,
        delivery_id: d.id,
        attempt: n,
        at: NOW + n,
        ok,
        http_status: Some(if ok { 200 } else { 503 }),
        error: (!ok).then(|| "HTTP 503".to_string()),
    };
    s.finish_delivery_attempt(
        d,
        &AttemptOutcome {
            attempt: attempt(1, false),
            status: "pending".into(),
            next_attempt_at: NOW + 120_000,
            audit: None,
        },
    )
    .await
    .unwrap();
    assert!(
        s.lease_deliveries(NOW + 119_999, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let d2 = s.lease_deliveries(NOW + 120_000, 60_000, 10).await.unwrap();
    assert_eq!(d2.len(), 1);
    assert_eq!(d2[0].attempts, 1);
    let size = s.audit_head(a).await.unwrap().size;
    s.finish_delivery_attempt(
        &d2[0],
        &AttemptOutcome {
            attempt: attempt(2, true),
            status: "delivered".into(),
            next_attempt_at: NOW + 120_000,
            audit: Some(rec(a, "monitor.alert.delivered")),
        },
    )
    .await
    .unwrap();
    assert_eq!(s.audit_head(a).await.unwrap().size, size + 1);
    assert!(
        s.lease_deliveries(NOW + 10_000_000, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let ds = s.list_deliveries(a, bt.alerts[0].id).await.unwrap();
    assert_eq!(ds[0].status, "delivered");
    let log = s.list_delivery_attempts(a, d.id).await.unwrap();
    assert_eq!(log.iter().map(|x| x.ok).collect::<Vec<_>>(), [false, true]);
    assert_eq!(log[0].http_status, Some(503));

    // Deleting the route takes its deliveries with it.
    assert!(
        s.delete_alert_route(a, r.id, &rec(a, "alert_route.deleted"))
            .await
            .unwrap()
    );
    assert!(
        s.list_deliveries(a, bt.alerts[0].id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !s.delete_alert_route(a, r.id, &rec(a, "alert_route.deleted"))
            .await
            .unwrap()
    );
}

async fn route_secrets_are_listed_for_key_rotation(s: &dyn Store) {
    let a = org(s, "a").await;
    let mut r = route(a);
    s.create_alert_route(&r, &rec(a, "alert_route.created"))
        .await
        .unwrap();
    let email = AlertRouteRow {
        id: Uuid::now_v7(),
        channel: "email".into(),
        target: "[\"x@example.com\"]".into(),
        secret: None,
        ..route(a)
    };
    s.create_alert_route(&email, &rec(a, "alert_route.created"))
        .await
        .unwrap();
    assert!(SealedColumn::ALL.contains(&SealedColumn::AlertRouteSecret));
    let listed = s
        .list_sealed(SealedColumn::AlertRouteSecret, None, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "only routes with a secret");
    assert_eq!(listed[0].row, SealedRow::AlertRoute(r.id));
    assert_eq!(listed[0].row.context(), format!("alert_route:{}", r.id));
    // Compare-and-swap: a stale value is not replaced.
    let row = SealedRow::AlertRoute(r.id);
    assert!(
        !s.replace_sealed(SealedColumn::AlertRouteSecret, &row, b"stale", b"new")
            .await
            .unwrap()
    );
    assert!(
        s.replace_sealed(SealedColumn::AlertRouteSecret, &row, &[1, 2, 3], b"new")
            .await
            .unwrap()
    );
    assert_eq!(
        s.get_alert_route(a, r.id)
            .await
            .unwrap()
            .unwrap()
            .secret
            .as_deref(),
        Some(&b"new"[..])
    );
    // An update replaces the mutable fields; an unknown route is reported.
    r.enabled = false;
    r.secret = Some(b"new".to_vec());
    assert!(
        s.update_alert_route(&r, &rec(a, "alert_route.updated"))
            .await
            .unwrap()
    );
    assert!(!s.get_alert_route(a, r.id).await.unwrap().unwrap().enabled);
    let ghost = AlertRouteRow {
        id: Uuid::now_v7(),
        ..r.clone()
    };
    assert!(
        !s.update_alert_route(&ghost, &rec(a, "alert_route.updated"))
            .await
            .unwrap()
    );
}

// ----- the two backends -----------------------------------------------------------------------

aim_store::store_suite!(
    cursor_moves_once_and_a_stale_page_writes_nothing,
    lifecycles_go_forward_only_with_their_audit,
    leases_are_exclusive_and_attempts_are_logged,
    route_secrets_are_listed_for_key_rotation,
);
