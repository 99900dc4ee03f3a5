//! Trust reports and ATX credentials over real HTTP (docs/credentials.md, docs/TRUST.md).
//! Negative cases first: unauthenticated, malformed id, another organization, roles and
//! ownership, pending/suspended/revoked agents; then a credential that verifies with
//! `aim_core::standards::atx` and is rejected when tampered, expired, or checked against the wrong
//! issuer; the `credential.issued` audit entry; the trust numbers computed by hand.

use std::time::Duration;

use aim_core::aip;
use aim_core::clock::Clock;
use aim_core::keys::{KeyPair, encode_base64};
use aim_core::standards::Category;
use aim_core::standards::atx::{VerifyContext, verify_credential};
use aim_core::standards::signatures::{Algorithm, KeyEntry, KeyMaterial, SignaturePolicy};
use aim_server::testkit::ADMIN_EMAIL;
use aim_store::{AuditRecord, NewUser, Organization, Role};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::agents::key;
use crate::common::{Cred, Ctx, STRONG};

async fn register(ctx: &Ctx, token: &str, name: &str, k: &KeyPair) -> String {
    let (s, v) = ctx
        .post(
            "/api/v1/agents",
            Cred::Bearer(token),
            json!({ "name": name, "publicKey": encode_base64(&k.public().to_bytes()),
                    "capabilities": ["files:read", "tickets:write"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// Registers an agent and passes an AIP challenge (→ active, verified).
async fn active(ctx: &Ctx, token: &str, name: &str, k: &KeyPair) -> String {
    let id = register(ctx, token, name, k).await;
    let (s, c) = ctx
        .post(
            &format!("/api/v1/agents/{id}/challenge"),
            Cred::Bearer(token),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let c: aip::Challenge = serde_json::from_value(c).unwrap();
    let r = aip::respond(&c, k, "k", ctx.ts.clock.now());
    let (s, v) = ctx
        .post(
            &format!("/api/v1/agents/{id}/verify"),
            Cred::Bearer(token),
            serde_json::to_value(&r).unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    id
}

async fn credential(ctx: &Ctx, token: &str, id: &str) -> (StatusCode, Value) {
    ctx.get(
        &format!("/api/v1/agents/{id}/credential"),
        Cred::Bearer(token),
    )
    .await
}

async fn admin_org(ctx: &Ctx) -> Uuid {
    ctx.ts
        .server
        .state
        .store
        .find_user_by_email(ADMIN_EMAIL)
        .await
        .unwrap()
        .unwrap()
        .org_id
}

/// The verifier's view of an organization: its issuer DID and its key.
async fn issuer(ctx: &Ctx, org: Uuid) -> (String, KeyEntry) {
    let st = &ctx.ts.server.state;
    let did = aim_server::routes::credentials::org_issuer_did(&st.public_url(), org);
    let k = st.org_signing_key(org).await.unwrap();
    let entry = KeyEntry {
        key_id: format!("{did}#{}", k.key_id),
        key: KeyMaterial::from_hex(Algorithm::Ed25519, &hex::encode(k.public.as_bytes())).unwrap(),
    };
    (did, entry)
}

fn check(
    cred: &Value,
    trusted: &str,
    key: &KeyEntry,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<aim_core::standards::atx::VerifiedCredential, Category> {
    let trusted = vec![trusted.to_string()];
    let keys = vec![key.clone()];
    let ctx = VerifyContext {
        now,
        trusted_issuers: &trusted,
        keys: &keys,
        crl: None,
        policy: SignaturePolicy {
            min_distinct_signers: 1,
        },
    };
    verify_credential(&serde_json::to_vec(cred).unwrap(), &ctx).map_err(|r| r.category)
}

pub async fn other_org_admin(ctx: &Ctx) -> String {
    let st = &ctx.ts.server.state;
    let now = st.now_ms();
    let org = Organization {
        id: Uuid::now_v7(),
        name: "other".into(),
        require_2fa_admins: false,
        created_at: now,
        enforcement_mode: "strict".into(),
    };
    let admin = NewUser {
        id: Uuid::now_v7(),
        org_id: org.id,
        email: "admin@other.test".into(),
        password_hash: st.hasher.hash(STRONG).await.unwrap(),
        role: Role::Admin,
        must_change_password: false,
        created_by: None,
        created_at: now,
    };
    let rec = AuditRecord {
        org_id: Some(org.id),
        at: now,
        event_type: "org.created".into(),
        actor: "system".into(),
        subject: None,
        payload: json!({}),
        client_addr: None,
    };
    st.store
        .create_org_with_admin(&org, &admin, &rec)
        .await
        .unwrap();
    ctx.tokens("admin@other.test", STRONG).await.0
}

/// Every refusal: no credential, malformed id, another organization, viewer, a member asking for
/// another's agent, and pending / suspended / revoked agents (409, never a credential).
async fn credential_refusals(ctx: Ctx) {
    let admin = ctx.admin().await;
    let id = active(&ctx, &admin, "worker", &key(500)).await;
    let path = format!("/api/v1/agents/{id}/credential");
    let trust = format!("/api/v1/agents/{id}/trust");
    for p in [&path, &trust] {
        let (s, _) = ctx.get(p, Cred::None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{p}");
    }
    for p in [
        "/api/v1/agents/not-an-id/credential",
        "/api/v1/agents/not-an-id/trust",
    ] {
        let (s, v) = ctx.get(p, Cred::Bearer(&admin)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{p}: {v}");
    }
    // Another organization's admin sees neither the agent's trust nor a credential.
    let other = other_org_admin(&ctx).await;
    for p in [&path, &trust] {
        let (s, v) = ctx.get(p, Cred::Bearer(&other)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}: {v}");
    }
    // Roles and ownership.
    ctx.user(&admin, "viewer@test.local", "viewer").await;
    ctx.user(&admin, "member@test.local", "member").await;
    let viewer = ctx.tokens("viewer@test.local", STRONG).await.0;
    let member = ctx.tokens("member@test.local", STRONG).await.0;
    let (s, _) = credential(&ctx, &viewer, &id).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = credential(&ctx, &member, &id).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "members only for their own agents"
    );
    let (s, _) = ctx.get(&trust, Cred::Bearer(&viewer)).await;
    assert_eq!(s, StatusCode::OK, "every role reads trust");
    // A member's own agent: allowed.
    let own = active(&ctx, &member, "members-own", &key(501)).await;
    let (s, v) = credential(&ctx, &member, &own).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Pending.
    let pending = register(&ctx, &admin, "pending", &key(502)).await;
    let (s, v) = credential(&ctx, &admin, &pending).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"], "agent_not_active");
    // Suspended, then reactivated (issued again), then revoked.
    for (op, expect) in [
        ("suspend", StatusCode::CONFLICT),
        ("activate", StatusCode::OK),
        ("revoke", StatusCode::CONFLICT),
    ] {
        let (s, v) = ctx
            .post(
                &format!("/api/v1/agents/{id}/{op}"),
                Cred::Bearer(&admin),
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{op}: {v}");
        let (s, v) = credential(&ctx, &admin, &id).await;
        assert_eq!(s, expect, "after {op}: {v}");
    }
    // No refusal left a credential.issued entry: only the two successful issuances did.
    let issued = issued_entries(&ctx, &admin).await;
    assert_eq!(issued.len(), 2, "{issued:?}");
    ctx.stop().await;
}

async fn issued_entries(ctx: &Ctx, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut from = 0u64;
    loop {
        let (s, v) = ctx
            .get(
                &format!("/api/v1/audit/entries?fromSeq={from}&limit=100"),
                Cred::Bearer(token),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        out.extend(
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["eventType"] == "credential.issued")
                .cloned(),
        );
        match v["nextFromSeq"].as_u64() {
            Some(n) => from = n,
            None => break,
        }
    }
    out
}

/// The issued credential verifies with the org key and issuer; a tampered copy, the wrong
/// trusted issuer, another organization's key and the verifier clock past `expiresAt` are all
/// rejected; the issuance is in the audit log with the hash of the bytes returned.
async fn credential_verifies_and_is_logged(ctx: Ctx) {
    let admin = ctx.admin().await;
    let k = key(510);
    let id = active(&ctx, &admin, "issuer-test", &k).await;
    let resp = ctx
        .http
        .get(ctx.ts.url(&format!("/api/v1/agents/{id}/credential")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.bytes().await.unwrap();
    let cred: Value = serde_json::from_slice(&bytes).unwrap();
    let org = admin_org(&ctx).await;
    let (did, key_entry) = issuer(&ctx, org).await;
    let now = ctx.ts.clock.now();

    // Wrong trusted issuer.
    assert_eq!(
        check(&cred, "did:web:elsewhere.example", &key_entry, now).unwrap_err(),
        Category::UntrustedIssuer
    );
    // Tampered: a raised trust score, an extra capability, another agent id.
    for (field, value) in [
        ("trustScore", json!(99.0)),
        (
            "capabilities",
            json!(["files:read", "tickets:write", "admin:*"]),
        ),
        ("agentId", json!("aim_forged")),
    ] {
        let mut t = cred.clone();
        t[field] = value;
        assert_eq!(
            check(&t, &did, &key_entry, now).unwrap_err(),
            Category::SignatureInvalid,
            "tampered {field}"
        );
    }
    // Another organization's key under this issuer's key id.
    let stranger = KeyPair::from_seed(&[9u8; 32]);
    let wrong_key = KeyEntry {
        key_id: key_entry.key_id.clone(),
        key: KeyMaterial::from_hex(
            Algorithm::Ed25519,
            &hex::encode(stranger.public().to_bytes()),
        )
        .unwrap(),
    };
    assert_eq!(
        check(&cred, &did, &wrong_key, now).unwrap_err(),
        Category::SignatureInvalid
    );
    // Expired: the server clock moves past the default 24 h validity.
    ctx.ts.clock.advance(Duration::from_secs(86_400));
    assert_eq!(
        check(&cred, &did, &key_entry, ctx.ts.clock.now()).unwrap_err(),
        Category::Expired
    );
    // The access token expired with the clock move.
    let admin = ctx.admin().await;

    // Accepted, with what the credential says.
    let ok = check(&cred, &did, &key_entry, now).expect("verifies");
    assert_eq!(ok.agent_id, id);
    assert_eq!(ok.issuer_did, did);
    assert_eq!(ok.atc_version, "1.1");
    assert_eq!(
        cred["agentDid"],
        format!("{}:agents:{id}", {
            aim_server::did::provider_did(&ctx.ts.server.state.public_url())
        })
    );
    assert_eq!(cred["capabilities"], json!(["files:read", "tickets:write"]));
    assert_eq!(
        cred["contentHash"],
        hex::encode(Sha256::digest(k.public().to_bytes()))
    );
    let issued = chrono::DateTime::parse_from_rfc3339(cred["issuedAt"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(cred["expiresAt"].as_str().unwrap()).unwrap();
    assert_eq!((expires - issued).num_seconds(), 86_400);
    assert_eq!(cred["trustLevel"], 2, "a freshly verified agent is medium");

    // The issuance is in the log with the hash of the exact bytes.
    let entries = issued_entries(&ctx, &admin).await;
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e["subject"], format!("agent:{id}"));
    let details = e["details"].to_string();
    assert!(
        details.contains(&hex::encode(Sha256::digest(&bytes))),
        "{details}"
    );
    assert!(details.contains(cred["id"].as_str().unwrap()), "{details}");
    // And the chain still verifies.
    let (s, v) = ctx.get("/api/v1/audit/verify", Cred::Bearer(&admin)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["ok"], true, "{v}");
    ctx.stop().await;
}

/// A configured `credential_ttl_secs` sets the validity window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_ttl_is_configurable() {
    let db = aim_store::testing::TestDb::sqlite().unwrap();
    let ts = aim_server::testkit::TestServer::start(db, |c| c.credential_ttl_secs = 600)
        .await
        .unwrap();
    let ctx = Ctx::new(ts);
    let admin = ctx.admin().await;
    let id = active(&ctx, &admin, "short-lived", &key(520)).await;
    let (s, cred) = credential(&ctx, &admin, &id).await;
    assert_eq!(s, StatusCode::OK, "{cred}");
    let issued = chrono::DateTime::parse_from_rfc3339(cred["issuedAt"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(cred["expiresAt"].as_str().unwrap()).unwrap();
    assert_eq!((expires - issued).num_seconds(), 600);
    ctx.stop().await;
}

/// The trust endpoint of a freshly verified agent, computed by hand (docs/TRUST.md):
/// identity 1 (proof now, 1 ok / 0 failed), attestation 1 − e^(−1/3) (the server's own
/// verification), audit completeness 1 (registration + verification present, chain intact),
/// age and activity ≈ 0 (age 0, never active); the other four excluded. Included weight 0.51;
/// weighted sum 0.20 + 0.15·(1 − e^(−1/3)) + 0.08; the ceiling sum + 0.49·0.5 is below the
/// renormalised sum / 0.51, so the score is the ceiling. A failed challenge then lowers the
/// identity factor to (1 + 1) / (1 + 1 + 1) = 2/3 (1 ok / 1 failed proof), and suspension sets it to 0.
async fn trust_numbers_match_the_formula(ctx: Ctx) {
    let admin = ctx.admin().await;
    let k = key(530);
    let id = active(&ctx, &admin, "scored", &k).await;
    let trust = format!("/api/v1/agents/{id}/trust");
    let (s, v) = ctx.get(&trust, Cred::Bearer(&admin)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let a = 1.0 - (-1.0f64 / 3.0).exp();
    let weighted = 0.20 + 0.15 * a + 0.08;
    let expected = 100.0 * (weighted + 0.49 * 0.5).min(weighted / 0.51);
    let score = v["score"].as_f64().unwrap();
    assert!((score - expected).abs() < 1e-4, "{score} vs {expected}");
    assert_eq!(v["level"], "medium");
    assert!((v["confidence"].as_f64().unwrap() - 0.51).abs() < 1e-9);
    assert_eq!(v["agentId"], id);
    let factors = v["factors"].as_array().unwrap();
    assert_eq!(factors.len(), 8);
    let f = |name: &str| {
        factors
            .iter()
            .find(|f| f["factor"] == name)
            .unwrap_or_else(|| panic!("{name}"))
            .clone()
    };
    assert_eq!(f("identity_verification")["value"], 1.0);
    assert!((f("attestation_count")["value"].as_f64().unwrap() - a).abs() < 1e-12);
    assert_eq!(f("audit_completeness")["value"], 1.0);
    for excluded in [
        "capability_compliance",
        "behavioral_consistency",
        "mcp_server_trust",
        "error_rate",
    ] {
        assert_eq!(f(excluded)["included"], false, "{excluded}");
        assert_eq!(f(excluded)["contribution"], 0.0, "{excluded}");
    }
    let sum: f64 = factors
        .iter()
        .map(|f| f["contribution"].as_f64().unwrap())
        .sum();
    assert!((sum - score).abs() < 1e-9, "contributions sum to the score");

    // A rejected challenge response counts as a failed proof.
    let (s, c) = ctx
        .post(
            &format!("/api/v1/agents/{id}/challenge"),
            Cred::Bearer(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let c: aip::Challenge = serde_json::from_value(c).unwrap();
    let forged = aip::respond(&c, &key(531), "k", ctx.ts.clock.now());
    let (s, _) = ctx
        .post(
            &format!("/api/v1/agents/{id}/verify"),
            Cred::Bearer(&admin),
            serde_json::to_value(&forged).unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, v) = ctx.get(&trust, Cred::Bearer(&admin)).await;
    let factors = v["factors"].as_array().unwrap();
    let idv = factors
        .iter()
        .find(|f| f["factor"] == "identity_verification")
        .unwrap();
    assert!(
        (idv["value"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12,
        "{idv}"
    );
    assert!(v["score"].as_f64().unwrap() < score);

    // Suspended: identity 0.
    let (s, _) = ctx
        .post(
            &format!("/api/v1/agents/{id}/suspend"),
            Cred::Bearer(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = ctx.get(&trust, Cred::Bearer(&admin)).await;
    let idv = v["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["factor"] == "identity_verification")
        .unwrap()
        .clone();
    assert_eq!(idv["value"], 0.0);
    ctx.stop().await;
}

crate::backends!(
    credential_refusals,
    credential_verifies_and_is_logged,
    trust_numbers_match_the_formula,
);
