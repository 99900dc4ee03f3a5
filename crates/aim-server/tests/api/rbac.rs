//! The permission table, walked: EVERY route × EVERY role, with no credentials, and with another
//! organization's admin. Expectations are written out here independently of `aim_server::rbac`;
//! the test also checks that it covers every route of that table.

use std::collections::BTreeSet;

use aim_server::testkit::ADMIN_PASSWORD;
use aim_store::{AuditRecord, NewUser, Organization, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Cred, Ctx, STRONG};

const V: usize = 0; // viewer
const MB: usize = 1; // member
const MG: usize = 2; // manager
const AD: usize = 3; // admin

struct Row {
    method: Method,
    /// Template as in the permission table; `{id}` is replaced by `target`.
    template: &'static str,
    target: Target,
    body: fn(usize) -> Option<Value>,
    /// Expected status for viewer, member, manager, admin.
    roles: [u16; 4],
    /// Expected status for another organization's admin.
    other_org: u16,
}

#[derive(Clone, Copy)]
enum Target {
    None,
    User,
    ManagerKey,
    /// The template followed by this query string.
    Query(&'static str),
    ManagerAgent,
    /// A capability request id that exists nowhere (allowed callers get 404).
    NoRequest,
    /// `{id}` replaced by this fixed value.
    Fixed(&'static str),
}

/// A well-formed decision id that names nothing.
const NO_SUCH_ACTION: &str = "01900000-0000-7000-8000-000000000000";

/// A fresh agent registration body per call (distinct key and name).
/// An aim-sdk registration (no key: the server generates one), a distinct name per caller.
fn sdk_body(n: usize) -> Option<Value> {
    Some(json!({ "name": format!("sdk-agent-{n}") }))
}

fn agent_body(n: usize) -> Option<Value> {
    let k = crate::agents::key(1_000_000 + n as u64);
    Some(json!({
        "name": format!("agent-{n}"),
        "publicKey": aim_core::keys::encode_base64(&k.public().to_bytes()),
    }))
}

/// A well-formed AIP response to a challenge that was never issued.
fn aip_body(_: usize) -> Option<Value> {
    Some(json!({
        "agentDid": "did:web:x", "challenge": "AAAA", "nonce": "BBBB", "issuedAt": "2026-01-01T00:00:00Z",
        "expiresAt": "2026-01-01T00:05:00Z", "signature": "CCCC", "publicKey": "DDDD", "keyId": "k",
        "signedAt": "2026-01-01T00:00:00Z", "algorithm": "Ed25519"
    }))
}

fn policy_body(_: usize) -> Option<Value> {
    Some(json!({ "language": "cedar", "source": aim_server::authz::DEFAULT_POLICY }))
}

fn none(_: usize) -> Option<Value> {
    None
}
fn empty(_: usize) -> Option<Value> {
    Some(json!({}))
}

fn table() -> Vec<Row> {
    use Target::*;
    let r =
        |method: Method, template, target, body: fn(usize) -> Option<Value>, roles, other_org| {
            Row {
                method,
                template,
                target,
                body,
                roles,
                other_org,
            }
        };
    vec![
        r(
            Method::GET,
            "/api/v1/auth/me",
            None,
            none,
            [200, 200, 200, 200],
            200,
        ),
        r(
            Method::GET,
            "/api/v1/org",
            None,
            none,
            [200, 200, 200, 200],
            200,
        ),
        r(
            Method::PATCH,
            "/api/v1/org",
            None,
            |_| Some(json!({ "require2faForAdmins": false })),
            [403, 403, 403, 200],
            200,
        ),
        r(
            Method::GET,
            "/api/v1/users",
            None,
            none,
            [403, 403, 200, 200],
            200,
        ),
        r(
            Method::GET,
            "/api/v1/users/{id}",
            User,
            none,
            [403, 403, 200, 200],
            404,
        ),
        r(
            Method::POST,
            "/api/v1/users",
            None,
            |i| {
                Some(
                    json!({ "email": format!("u{i}@rbac.test"), "role": "viewer", "password": STRONG }),
                )
            },
            [403, 403, 403, 201],
            201,
        ),
        r(
            Method::PATCH,
            "/api/v1/users/{id}",
            User,
            |_| Some(json!({ "role": "member" })),
            [403, 403, 403, 200],
            404,
        ),
        r(
            Method::GET,
            "/api/v1/api-keys",
            None,
            none,
            [200, 200, 200, 200],
            200,
        ),
        r(
            Method::GET,
            "/api/v1/api-keys/{id}",
            ManagerKey,
            none,
            [404, 404, 200, 200],
            404,
        ),
        r(
            Method::POST,
            "/api/v1/api-keys",
            None,
            |_| Some(json!({ "name": "k" })),
            [403, 403, 201, 201],
            201,
        ),
        r(
            Method::POST,
            "/api/v1/api-keys/{id}/rotate",
            ManagerKey,
            empty,
            [403, 404, 200, 200],
            404,
        ),
        r(
            Method::DELETE,
            "/api/v1/api-keys/{id}",
            ManagerKey,
            none,
            [403, 404, 204, 204],
            404,
        ),
        r(
            Method::GET,
            "/api/v1/audit/entries",
            None,
            none,
            [403, 403, 200, 200],
            200,
        ),
        r(
            Method::GET,
            "/api/v1/audit/verify",
            None,
            none,
            [403, 403, 200, 200],
            200,
        ),
        r(
            Method::GET,
            "/api/v1/audit/checkpoint",
            None,
            none,
            [403, 403, 200, 200],
            200,
        ),
        r(
            Method::GET,
            "/api/v1/audit/proof/inclusion",
            Query("?index=0&treeSize=1"),
            none,
            [403, 403, 200, 200],
            200,
        ),
        r(
            Method::GET,
            "/api/v1/audit/proof/consistency",
            Query("?from=0&to=1"),
            none,
            [403, 403, 200, 200],
            200,
        ),
        r(
            Method::POST,
            "/api/v1/auth/totp/enroll",
            None,
            empty,
            [200, 200, 200, 200],
            200,
        ),
        r(
            Method::POST,
            "/api/v1/auth/totp/confirm",
            None,
            |_| Some(json!({ "code": "000000" })),
            [400, 400, 400, 400],
            400,
        ),
        r(
            Method::POST,
            "/api/v1/auth/totp/disable",
            None,
            |_| Some(json!({ "password": "x", "code": "000000" })),
            [409, 409, 409, 409],
            409,
        ),
        r(
            Method::POST,
            "/api/v1/auth/change-password",
            None,
            |_| Some(json!({ "currentPassword": "Wrong-password-1", "newPassword": STRONG })),
            [400, 400, 400, 400],
            400,
        ),
        r(
            Method::GET,
            "/api/v1/agents",
            None,
            none,
            [200, 200, 200, 200],
            200,
        ),
        r(
            Method::GET,
            "/api/v1/agents/{id}",
            ManagerAgent,
            none,
            [200, 200, 200, 200],
            404,
        ),
        r(
            Method::POST,
            "/api/v1/agents",
            None,
            agent_body,
            [403, 201, 201, 201],
            201,
        ),
        r(
            Method::POST,
            "/api/v1/public/agents/register",
            None,
            sdk_body,
            [403, 201, 201, 201],
            201,
        ),
        r(
            Method::GET,
            "/api/v1/sdk-api/agents/{id}",
            ManagerAgent,
            none,
            [200, 200, 200, 200],
            404,
        ),
        // The manager's agent is pending: allowed callers reach the state machine (409).
        r(
            Method::POST,
            "/api/v1/agents/{id}/suspend",
            ManagerAgent,
            empty,
            [403, 403, 409, 409],
            404,
        ),
        r(
            Method::POST,
            "/api/v1/agents/{id}/activate",
            ManagerAgent,
            empty,
            [403, 403, 409, 409],
            404,
        ),
        r(
            Method::POST,
            "/api/v1/agents/{id}/challenge",
            ManagerAgent,
            empty,
            [403, 403, 200, 200],
            404,
        ),
        // Allowed callers get the AIP verdict (no such challenge: UNTRUSTED_ISSUER, 401).
        r(
            Method::POST,
            "/api/v1/agents/{id}/verify",
            ManagerAgent,
            aip_body,
            [403, 403, 401, 401],
            404,
        ),
        // The manager's agent is pending: every role reads its trust; allowed callers reach the
        // status check of the credential route (409), a member is not its owner (403).
        r(
            Method::GET,
            "/api/v1/agents/{id}/trust",
            ManagerAgent,
            none,
            [200, 200, 200, 200],
            404,
        ),
        r(
            Method::GET,
            "/api/v1/agents/{id}/trust/history",
            ManagerAgent,
            none,
            [200, 200, 200, 200],
            404,
        ),
        r(
            Method::GET,
            "/api/v1/agents/{id}/credential",
            ManagerAgent,
            none,
            [403, 403, 409, 409],
            404,
        ),
        // Grants on the manager's (pending) agent: the manager grants, the admin finds it held
        // (200, unchanged); the manager revokes it, the admin finds it gone (404 not_granted).
        r(
            Method::GET,
            "/api/v1/agents/{id}/capabilities",
            ManagerAgent,
            none,
            [200, 200, 200, 200],
            404,
        ),
        r(
            Method::POST,
            "/api/v1/agents/{id}/capabilities",
            ManagerAgent,
            |_| Some(json!({ "capability": "files:write" })),
            [403, 403, 200, 200],
            404,
        ),
        r(
            Method::DELETE,
            "/api/v1/agents/{id}/capabilities/{capability}",
            ManagerAgent,
            none,
            [403, 403, 200, 404],
            404,
        ),
        r(
            Method::GET,
            "/api/v1/capability-requests",
            None,
            none,
            [403, 403, 200, 200],
            200,
        ),
        r(
            Method::GET,
            "/api/v1/capability-requests/{id}",
            NoRequest,
            none,
            [403, 403, 404, 404],
            404,
        ),
        r(
            Method::POST,
            "/api/v1/capability-requests/{id}/approve",
            NoRequest,
            empty,
            [403, 403, 404, 404],
            404,
        ),
        r(
            Method::POST,
            "/api/v1/capability-requests/{id}/deny",
            NoRequest,
            empty,
            [403, 403, 404, 404],
            404,
        ),
        r(
            Method::GET,
            "/api/v1/policies",
            None,
            none,
            [403, 403, 200, 200],
            200,
        ),
        r(
            Method::POST,
            "/api/v1/policies/validate",
            None,
            policy_body,
            [403, 403, 200, 200],
            200,
        ),
        // The admin saved version 1 before the walk: this is version 2 (version 1 for the other
        // organization, whose admin cannot read version 2 below).
        r(
            Method::PUT,
            "/api/v1/policies",
            None,
            policy_body,
            [403, 403, 403, 201],
            201,
        ),
        r(
            Method::GET,
            "/api/v1/policies/versions",
            None,
            none,
            [403, 403, 200, 200],
            200,
        ),
        r(
            Method::GET,
            "/api/v1/policies/versions/{version}",
            None,
            none,
            [403, 403, 200, 200],
            404,
        ),
        // Action decisions: everyone lists and reads (no such decision: 404); managers and
        // admins reach the lookup of approve/deny (404).
        r(
            Method::GET,
            "/api/v1/actions",
            None,
            none,
            [200, 200, 200, 200],
            200,
        ),
        r(
            Method::GET,
            "/api/v1/actions/{id}",
            Fixed(NO_SUCH_ACTION),
            none,
            [404, 404, 404, 404],
            404,
        ),
        r(
            Method::POST,
            "/api/v1/actions/{id}/approve",
            Fixed(NO_SUCH_ACTION),
            empty,
            [403, 403, 404, 404],
            404,
        ),
        r(
            Method::POST,
            "/api/v1/actions/{id}/deny",
            Fixed(NO_SUCH_ACTION),
            empty,
            [403, 403, 404, 404],
            404,
        ),
        // MCP servers: everyone reads (no such server: 404); managers and admins register (an
        // empty body is a 400 once allowed) and pin (no such server: 404).
        r(
            Method::GET,
            "/api/v1/mcp-servers",
            None,
            none,
            [200, 200, 200, 200],
            200,
        ),
        r(
            Method::POST,
            "/api/v1/mcp-servers",
            None,
            empty,
            [403, 403, 400, 400],
            400,
        ),
        r(
            Method::GET,
            "/api/v1/mcp-servers/{id}",
            Fixed(NO_SUCH_ACTION),
            none,
            [404, 404, 404, 404],
            404,
        ),
        r(
            Method::PUT,
            "/api/v1/mcp-servers/{id}/pin",
            Fixed(NO_SUCH_ACTION),
            empty,
            [403, 403, 404, 404],
            404,
        ),
        r(
            Method::GET,
            "/api/v1/agents/{id}/mcp-connections",
            ManagerAgent,
            none,
            [200, 200, 200, 200],
            404,
        ),
        // Monitoring: everyone reads anomalies, incidents and alerts; managers and admins reach
        // the lifecycle lookups (404 for an id that names nothing); routes: managers read,
        // admins change (an empty creation body is a 400 once allowed).
        r(
            Method::GET,
            "/api/v1/anomalies",
            None,
            none,
            [200, 200, 200, 200],
            200,
        ),
        r(
            Method::GET,
            "/api/v1/incidents",
            None,
            none,
            [200, 200, 200, 200],
            200,
        ),
        r(
            Method::GET,
            "/api/v1/incidents/{id}",
            Fixed(NO_SUCH_ACTION),
            none,
            [404, 404, 404, 404],
            404,
        ),
        r(
            Method::POST,
            "/api/v1/incidents/{id}/acknowledge",
            Fixed(NO_SUCH_ACTION),
            empty,
            [403, 403, 404, 404],
            404,
        ),
        r(
            Method::POST,
            "/api/v1/incidents/{id}/resolve",
            Fixed(NO_SUCH_ACTION),
            empty,
            [403, 403, 404, 404],
            404,
        ),
        r(
            Method::GET,
            "/api/v1/alerts",
            None,
            none,
            [200, 200, 200, 200],
            200,
        ),
        r(
            Method::GET,
            "/api/v1/alerts/{id}",
            Fixed(NO_SUCH_ACTION),
            none,
            [404, 404, 404, 404],
            404,
        ),
        r(
            Method::POST,
            "/api/v1/alerts/{id}/acknowledge",
            Fixed(NO_SUCH_ACTION),
            empty,
            [403, 403, 404, 404],
            404,
        ),
        r(
            Method::POST,
            "/api/v1/alerts/{id}/resolve",
            Fixed(NO_SUCH_ACTION),
            empty,
            [403, 403, 404, 404],
            404,
        ),
        r(
            Method::GET,
            "/api/v1/alert-routes",
            None,
            none,
            [403, 403, 200, 200],
            200,
        ),
        r(
            Method::POST,
            "/api/v1/alert-routes",
            None,
            empty,
            [403, 403, 403, 400],
            400,
        ),
        r(
            Method::GET,
            "/api/v1/alert-routes/{id}",
            Fixed(NO_SUCH_ACTION),
            none,
            [403, 403, 404, 404],
            404,
        ),
        r(
            Method::PATCH,
            "/api/v1/alert-routes/{id}",
            Fixed(NO_SUCH_ACTION),
            empty,
            [403, 403, 403, 404],
            404,
        ),
        r(
            Method::DELETE,
            "/api/v1/alert-routes/{id}",
            Fixed(NO_SUCH_ACTION),
            none,
            [403, 403, 403, 404],
            404,
        ),
        r(
            Method::POST,
            "/api/v1/alert-routes/{id}/test",
            Fixed(NO_SUCH_ACTION),
            none,
            [403, 403, 403, 404],
            404,
        ),
        // Last of the agent rows: the manager revokes, then the admin finds it revoked.
        r(
            Method::POST,
            "/api/v1/agents/{id}/revoke",
            ManagerAgent,
            empty,
            [403, 403, 200, 409],
            404,
        ),
        r(
            Method::DELETE,
            "/api/v1/users/{id}",
            User,
            none,
            [403, 403, 403, 204],
            404,
        ),
        // Last: it ends the caller's session.
        r(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            empty,
            [204, 204, 204, 204],
            204,
        ),
    ]
}

async fn every_route_with_every_role(ctx: Ctx) {
    let admin = ctx.admin().await;
    for (email, role) in [
        ("viewer@t.test", "viewer"),
        ("member@t.test", "member"),
        ("manager@t.test", "manager"),
    ] {
        ctx.user(&admin, email, role).await;
    }
    let target = ctx.user(&admin, "target@t.test", "viewer").await;
    let mut tokens = Vec::new();
    for email in ["viewer@t.test", "member@t.test", "manager@t.test"] {
        tokens.push(ctx.tokens(email, STRONG).await.0);
    }
    tokens.push(admin.clone());
    let (_, k) = ctx
        .post(
            "/api/v1/api-keys",
            Cred::Bearer(&tokens[MG]),
            json!({ "name": "managers" }),
        )
        .await;
    let manager_key = k["id"].as_str().unwrap().to_string();
    let (s, a) = ctx
        .post(
            "/api/v1/agents",
            Cred::Bearer(&tokens[MG]),
            agent_body(999_999).unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let manager_agent = a["id"].as_str().unwrap().to_string();
    let (s, v) = ctx
        .call(
            Method::PUT,
            "/api/v1/policies",
            Cred::Bearer(&admin),
            policy_body(0),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Another organization.
    let st = &ctx.ts.server.state;
    let now = st.now_ms();
    let org_b = Organization {
        id: Uuid::now_v7(),
        name: "b".into(),
        require_2fa_admins: false,
        created_at: now,
        enforcement_mode: "strict".into(),
    };
    let hash = st.hasher.hash(STRONG).await.unwrap();
    let admin_b = NewUser {
        id: Uuid::now_v7(),
        org_id: org_b.id,
        email: "admin@other.test".into(),
        password_hash: hash,
        role: Role::Admin,
        must_change_password: false,
        created_by: None,
        created_at: now,
    };
    let audit = AuditRecord {
        org_id: Some(org_b.id),
        at: now,
        event_type: "org.created".into(),
        actor: "system".into(),
        subject: None,
        payload: json!({}),
        client_addr: None,
    };
    st.store
        .create_org_with_admin(&org_b, &admin_b, &audit)
        .await
        .unwrap();
    let other = ctx.tokens("admin@other.test", STRONG).await.0;

    // API keys of every role (owned by the admin) on the read routes: same table, except that
    // account self-service needs a session.
    let mut keys = Vec::new();
    for role in ["viewer", "member", "manager", "admin"] {
        let (_, k) = ctx
            .post(
                "/api/v1/api-keys",
                Cred::Bearer(&admin),
                json!({ "name": role, "role": role }),
            )
            .await;
        keys.push(k["key"].as_str().unwrap().to_string());
    }

    let rows = table();
    let covered: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.method.to_string(), r.template.to_string()))
        .collect();
    let declared: BTreeSet<(String, String)> = aim_server::rbac::PERMISSIONS
        .iter()
        .map(|(_, m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        covered, declared,
        "the walk must cover every route of the permission table"
    );

    let mut n = 0usize;
    let mut failures = Vec::new();
    for row in &rows {
        let path = match row.target {
            Target::None => row.template.to_string(),
            Target::User => row.template.replace("{id}", &target),
            Target::ManagerKey => row.template.replace("{id}", &manager_key),
            Target::Query(q) => format!("{}{q}", row.template),
            Target::ManagerAgent => row.template.replace("{id}", &manager_agent),
            Target::Fixed(v) => row.template.replace("{id}", v),
            Target::NoRequest => row.template.replace("{id}", &Uuid::now_v7().to_string()),
        };
        let path = path
            .replace("{capability}", "files:write")
            .replace("{version}", "2");
        // No credentials: always 401.
        n += 1;
        let (s, _) = ctx
            .call(row.method.clone(), &path, Cred::None, (row.body)(n))
            .await;
        if s != StatusCode::UNAUTHORIZED {
            failures.push(format!("{} {path} without credentials: {s}", row.method));
        }
        if row.method == Method::GET {
            for (i, key) in keys.iter().enumerate() {
                let expected = if row.template == "/api/v1/auth/me" {
                    403
                } else {
                    row.roles[i]
                };
                let (s, v) = ctx
                    .call(row.method.clone(), &path, Cred::XApiKey(key), None)
                    .await;
                if s.as_u16() != expected {
                    failures.push(format!(
                        "{} {path} as {} API key: {s} (expected {expected}) {v}",
                        row.method,
                        Role::ALL[i]
                    ));
                }
            }
        }
        n += 1;
        let (s, v) = ctx
            .call(
                row.method.clone(),
                &path,
                Cred::Bearer(&other),
                (row.body)(n),
            )
            .await;
        if s.as_u16() != row.other_org {
            failures.push(format!(
                "{} {path} as other org's admin: {s} (expected {}) {v}",
                row.method, row.other_org
            ));
        }
        for role in [V, MB, MG, AD] {
            n += 1;
            let (s, v) = ctx
                .call(
                    row.method.clone(),
                    &path,
                    Cred::Bearer(&tokens[role]),
                    (row.body)(n),
                )
                .await;
            if s.as_u16() != row.roles[role] {
                failures.push(format!(
                    "{} {path} as {}: {s} (expected {}) {v}",
                    row.method,
                    Role::ALL[role],
                    row.roles[role]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Org A's admin still works after the walk (other org's writes changed nothing here).
    ctx.tokens(aim_server::testkit::ADMIN_EMAIL, ADMIN_PASSWORD)
        .await;
    ctx.stop().await;
}

crate::backends!(every_route_with_every_role);
