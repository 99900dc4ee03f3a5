//! Engine behaviour, negative cases first.

use aim_policy::{
    Agent, Capability, Effect, EnforcementMode, Engine, Error, ObligationKind, PolicyLanguage,
    ReasonCode, Request, RequestContext, RiskLevel,
};
use chrono::{TimeZone, Utc};

fn agent(trust: u8) -> Agent {
    Agent {
        id: "agent-1".into(),
        name: "billing-bot".into(),
        agent_type: "ai_agent".into(),
        trust_score: trust,
        tags: vec!["prod".into()],
        owner: "alice@example.com".into(),
        capabilities: None,
    }
}

fn req(cap: &str, trust: u8) -> Request {
    Request {
        agent: agent(trust),
        capability: Capability::parse(cap).unwrap(),
        resource: "db/customers".into(),
        context: RequestContext {
            time: Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap(),
            risk_level: RiskLevel::Medium,
            client_address: Some("10.1.2.3".parse().unwrap()),
            mcp_server: None,
        },
    }
}

fn cedar(text: &str) -> Engine {
    Engine::compile(text, PolicyLanguage::Cedar, EnforcementMode::Strict).unwrap()
}

fn yaml(text: &str) -> Engine {
    Engine::compile(
        text,
        PolicyLanguage::GovernanceYaml,
        EnforcementMode::Strict,
    )
    .unwrap()
}

fn codes(d: &aim_policy::Decision) -> Vec<ReasonCode> {
    d.reasons.iter().map(|r| r.code).collect()
}

// ---- refused policies --------------------------------------------------------------------

#[test]
fn invalid_cedar_is_refused_with_cedars_message() {
    let e = Engine::compile(
        "permit(principal, action, resource) when { principal.trustScore >>= 3 };",
        PolicyLanguage::Cedar,
        EnforcementMode::Strict,
    )
    .unwrap_err();
    assert!(matches!(e, Error::PolicySyntax(_)), "{e:?}");
    assert!(e.to_string().contains("unexpected token"), "{e}");
    assert!(e.to_string().contains("line 1 column 66"), "{e}");

    let e = aim_policy::validate("permit(principal, action resource);", PolicyLanguage::Cedar)
        .unwrap_err();
    assert!(matches!(e, Error::PolicySyntax(_)), "{e:?}");
}

#[test]
fn unknown_attribute_is_refused_by_validation() {
    let e = aim_policy::validate(
        "permit(principal, action, resource) when { principal.trust_score > 50 };",
        PolicyLanguage::Cedar,
    )
    .unwrap_err();
    let Error::PolicyValidation(msg) = &e else {
        panic!("expected a validation error, got {e:?}")
    };
    assert!(msg.contains("trust_score"), "{msg}");

    // Wrong type: trustScore is a Long.
    let e = aim_policy::validate(
        r#"permit(principal, action, resource) when { principal.trustScore == "high" };"#,
        PolicyLanguage::Cedar,
    )
    .unwrap_err();
    assert!(matches!(e, Error::PolicyValidation(_)), "{e:?}");

    // Optional attribute read without `has`.
    let e = aim_policy::validate(
        r#"permit(principal, action, resource) when { context.mcpServer == "x" };"#,
        PolicyLanguage::Cedar,
    )
    .unwrap_err();
    assert!(matches!(e, Error::PolicyValidation(_)), "{e:?}");

    // Unknown entity type.
    let e = aim_policy::validate(
        r#"permit(principal == User::"alice", action, resource);"#,
        PolicyLanguage::Cedar,
    )
    .unwrap_err();
    assert!(matches!(e, Error::PolicyValidation(_)), "{e:?}");
}

#[test]
fn non_capability_actions_and_misused_annotations_are_refused() {
    for bad in [
        r#"permit(principal, action == Action::"view", resource);"#,
        r#"permit(principal, action == Action::"Files:Read", resource);"#,
        r#"@effect("require_approval") forbid(principal, action, resource);"#,
        r#"@effect("maybe") permit(principal, action, resource);"#,
        r#"@approvers("bob") permit(principal, action, resource);"#,
        r#"@id("a") permit(principal, action, resource); @id("a") forbid(principal, action, resource);"#,
        r#"permit(principal == ?principal, action, resource);"#,
    ] {
        let e = aim_policy::validate(bad, PolicyLanguage::Cedar).unwrap_err();
        assert!(matches!(e, Error::PolicySyntax(_)), "{bad}: {e:?}");
    }
}

#[test]
fn yaml_with_unknown_action_or_field_is_refused() {
    let cases = [
        "policies:\n  - {name: a, capability: files:read, action: maybe}\n",
        "policies:\n  - {name: a, capability: files:read, action: allow, when: x}\n",
        "policies:\n  - {name: a, capability: files:read, action: allow}\nextra: 1\n",
        "policies:\n  - {name: a, capability: FILES:read, action: allow}\n",
        "policies:\n  - {name: a, capability: files:read, action: allow, limit: 3}\n",
        "policies:\n  - {name: a, capability: files:read, action: deny, approvers: [bob]}\n",
        "policies:\n  - {name: a, capability: files:read, action: rate_limit, limit: 3}\n",
        "policies:\n  - {name: a, capability: files:read, action: rate_limit, limit: 0, period: 1m}\n",
        "policies:\n  - {name: a, capability: files:read, action: rate_limit, limit: 5, period: 1w}\n",
        "policies:\n  - {name: a, capability: files:read, action: rate_limit, limit: 5, period: 0}\n",
        "policies:\n  - {name: a, capability: files:read, action: require_approval, approvers: ['x\"y']}\n",
        "policies:\n  - {name: 'a\"b', capability: files:read, action: allow}\n",
        "policies:\n  - {name: a, capability: files:read, action: allow}\n  - {name: a, capability: db:*, action: deny}\n",
        "policies:\n  - {capability: files:read, action: allow}\n",
        "not yaml: [",
        "",
    ];
    for y in cases {
        let e = Engine::compile(y, PolicyLanguage::GovernanceYaml, EnforcementMode::Strict)
            .unwrap_err();
        assert!(matches!(e, Error::Governance(_)), "{y:?}: {e:?}");
    }
}

// ---- decisions ---------------------------------------------------------------------------

#[test]
fn an_unnamed_resource_is_the_empty_resource_id() {
    let e = cedar(
        r#"permit(principal, action == Action::"db:read", resource);
forbid(principal, action, resource == Resource::"") when { context.riskLevel == "high" };"#,
    );
    let mut r = req("db:read", 50);
    r.resource = String::new();
    assert_eq!(e.evaluate(&r).unwrap().effect, Effect::Allow);
    r.context.risk_level = RiskLevel::High;
    assert_eq!(e.evaluate(&r).unwrap().effect, Effect::Deny);
}

#[test]
fn no_matching_permit_denies() {
    let e = cedar(r#"@id("read") permit(principal, action == Action::"files:read", resource);"#);
    let d = e.evaluate(&req("files:write", 90)).unwrap();
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(codes(&d), [ReasonCode::NoMatchingPermit]);
    assert!(d.matched_policies.is_empty());

    // The empty policy set denies everything.
    let d = cedar("").evaluate(&req("files:read", 100)).unwrap();
    assert_eq!(d.effect, Effect::Deny);
}

#[test]
fn deny_overrides_permit() {
    let e = cedar(
        r#"
        @id("allow-all-db") permit(principal, action in Action::"db:*", resource);
        @id("low-trust") forbid(principal, action, resource) when { principal.trustScore < 50 };
        "#,
    );
    let d = e.evaluate(&req("db:query", 49)).unwrap();
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(d.matched_policies, ["low-trust"]);
    assert_eq!(codes(&d), [ReasonCode::ForbiddenByPolicy]);

    let d = e.evaluate(&req("db:query", 50)).unwrap();
    assert_eq!(d.effect, Effect::Allow);
    assert_eq!(d.matched_policies, ["allow-all-db"]);
    assert!(d.policy_version.starts_with("sha256:"));
}

#[test]
fn evaluation_error_denies_even_when_a_permit_matches() {
    // The forbid overflows (an evaluation error); Cedar alone would skip it and allow.
    let e = cedar(
        r#"
        @id("ok") permit(principal, action, resource);
        @id("overflow") forbid(principal, action, resource)
            when { principal.trustScore * 9223372036854775807 > 0 };
        "#,
    );
    let d = e.evaluate(&req("files:read", 2)).unwrap();
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(codes(&d), [ReasonCode::EvaluationError]);
    assert!(d.errors[0].contains("overflow"), "{:?}", d.errors);

    // Monitoring does not relax fail-closed.
    let m = Engine::new(e.bundle().clone(), EnforcementMode::Monitoring);
    let d = m.evaluate(&req("files:read", 2)).unwrap();
    assert_eq!(d.effect, Effect::Deny);
    assert!(!d.alert);
}

#[test]
fn missing_grant_denies_before_policies_and_is_not_relaxed_by_monitoring() {
    let bundle = aim_policy::validate(
        "permit(principal, action, resource);",
        PolicyLanguage::Cedar,
    )
    .unwrap();
    for mode in [EnforcementMode::Strict, EnforcementMode::Monitoring] {
        let e = Engine::new(bundle.clone(), mode);
        let mut r = req("files:write", 100);
        r.agent.capabilities = Some(vec!["files:read".into(), "db:*".into()]);
        let d = e.evaluate(&r).unwrap();
        assert_eq!(d.effect, Effect::Deny, "{mode:?}");
        assert_eq!(codes(&d), [ReasonCode::NoGrant]);

        r.agent.capabilities = Some(vec![]);
        assert_eq!(e.evaluate(&r).unwrap().effect, Effect::Deny);

        // Wildcard grant covers the namespace.
        r.capability = Capability::parse("db:drop").unwrap();
        r.agent.capabilities = Some(vec!["db:*".into()]);
        assert_eq!(e.evaluate(&r).unwrap().effect, Effect::Allow);
        // …but not the same namespace under a domain.
        r.capability = Capability::parse("example.com/db:drop").unwrap();
        assert_eq!(e.evaluate(&r).unwrap().effect, Effect::Deny);
    }
}

#[test]
fn malformed_requests_are_errors_not_decisions() {
    let e = cedar("permit(principal, action, resource);");
    let mut r = req("files:read", 101);
    assert!(matches!(e.evaluate(&r), Err(Error::Request(_))));
    r.agent.trust_score = 10;
    r.resource = "x".repeat(5000);
    assert!(matches!(e.evaluate(&r), Err(Error::Request(_))));
    r.resource = "x".into();
    r.agent.capabilities = Some(vec!["NOT A GRANT".into()]);
    assert!(matches!(e.evaluate(&r), Err(Error::Capability { .. })));
    r.agent.capabilities = None;
    r.agent.id.clear();
    assert!(matches!(e.evaluate(&r), Err(Error::Request(_))));
}

#[test]
fn monitoring_turns_policy_deny_into_alerted_allow() {
    let bundle = aim_policy::validate(
        r#"@id("no-prod-writes") forbid(principal, action == Action::"db:write", resource)
             when { principal.tags.contains("prod") };
           @id("all") permit(principal, action, resource);"#,
        PolicyLanguage::Cedar,
    )
    .unwrap();
    let strict = Engine::new(bundle.clone(), EnforcementMode::Strict);
    let mon = Engine::new(bundle, EnforcementMode::Monitoring);
    let d = strict.evaluate(&req("db:write", 80)).unwrap();
    assert_eq!((d.effect, d.alert), (Effect::Deny, false));
    let d = mon.evaluate(&req("db:write", 80)).unwrap();
    assert_eq!(d.effect, Effect::Allow);
    assert_eq!(d.policy_effect, Effect::Deny);
    assert!(d.alert);
    assert_eq!(d.matched_policies, ["no-prod-writes"]);
    assert_eq!(
        codes(&d),
        [
            ReasonCode::ForbiddenByPolicy,
            ReasonCode::MonitoringOverride
        ]
    );
    // A plain allow raises no alert in monitoring.
    let d = mon.evaluate(&req("db:read", 80)).unwrap();
    assert_eq!((d.effect, d.alert), (Effect::Allow, false));
}

#[test]
fn require_approval_annotation_wins_over_plain_permit() {
    let e = cedar(
        r#"
        @id("read") permit(principal, action in Action::"payments:*", resource);
        @id("refunds-need-a-human") @effect("require_approval") @approvers("role:manager, bob")
        permit(principal, action == Action::"payments:refund", resource)
            when { context.riskRank >= 1 };
        "#,
    );
    let d = e.evaluate(&req("payments:refund", 90)).unwrap();
    assert_eq!(d.effect, Effect::RequireApproval);
    assert_eq!(d.approvers, ["bob", "role:manager"]);
    assert_eq!(d.matched_policies, ["read", "refunds-need-a-human"]);
    let mut low = req("payments:refund", 90);
    low.context.risk_level = RiskLevel::Low;
    assert_eq!(e.evaluate(&low).unwrap().effect, Effect::Allow);
    assert_eq!(
        e.evaluate(&req("payments:view", 90)).unwrap().effect,
        Effect::Allow
    );
}

#[test]
fn context_attributes_are_usable() {
    let e = cedar(
        r#"
        permit(principal, action, resource)
          when { context has clientAddress && context.clientAddress.isInRange(ip("10.0.0.0/8"))
                 && context.time < datetime("2027-01-01")
                 && context.riskLevel == "medium"
                 && resource.id like "db/*"
                 && principal.agentType == "ai_agent"
                 && principal.owner == "alice@example.com"
                 && principal.name == "billing-bot"
                 && principal == Agent::"agent-1" };
        forbid(principal, action, resource)
          when { context has mcpServer && context.mcpServer == "evil-mcp" };
        "#,
    );
    let mut r = req("files:read", 10);
    assert_eq!(e.evaluate(&r).unwrap().effect, Effect::Allow);
    r.context.client_address = Some("192.168.1.1".parse().unwrap());
    assert_eq!(e.evaluate(&r).unwrap().effect, Effect::Deny);
    r.context.client_address = None;
    assert_eq!(e.evaluate(&r).unwrap().effect, Effect::Deny);
    let mut r = req("files:read", 10);
    r.context.mcp_server = Some("evil-mcp".into());
    assert_eq!(e.evaluate(&r).unwrap().effect, Effect::Deny);
    let mut r = req("files:read", 10);
    r.context.time = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 1).unwrap();
    assert_eq!(e.evaluate(&r).unwrap().effect, Effect::Deny);
}

#[test]
fn domain_prefixed_capabilities_are_distinct_actions() {
    let e = cedar(
        r#"permit(principal, action in Action::"example.com/files:*", resource);
           permit(principal, action == Action::"files:read", resource);"#,
    );
    assert_eq!(
        e.evaluate(&req("example.com/files:write", 50))
            .unwrap()
            .effect,
        Effect::Allow
    );
    assert_eq!(
        e.evaluate(&req("other.org/files:write", 50))
            .unwrap()
            .effect,
        Effect::Deny
    );
    assert_eq!(
        e.evaluate(&req("files:write", 50)).unwrap().effect,
        Effect::Deny
    );
    assert_eq!(
        e.evaluate(&req("files:read", 50)).unwrap().effect,
        Effect::Allow
    );
    assert_eq!(
        e.evaluate(&req("example.com/files:read", 50))
            .unwrap()
            .effect,
        Effect::Allow
    );
}

#[test]
fn governance_yaml_translates_to_the_same_engine() {
    let e = yaml(
        r#"
policies:
  - name: read-files
    capability: files:read
    action: allow
  - name: all-db
    capability: "db:*"
    action: allow
  - name: no-drop
    capability: db:drop
    action: deny
  - name: refunds
    capability: payments:refund
    action: require_approval
    approvers: [alice@example.com, "role:admin"]
  - name: db-burst
    capability: "db:*"
    action: rate_limit
    limit: 100
    period: 1m
  - name: audit-all
    capability: "*"
    action: audit
  - name: tell-security
    capability: db:drop
    action: notify
"#,
    );
    assert_eq!(
        e.bundle().format(),
        aim_policy::SourceFormat::GovernanceYaml
    );
    let d = e.evaluate(&req("files:read", 10)).unwrap();
    assert_eq!(d.effect, Effect::Allow);
    assert_eq!(d.matched_policies, ["read-files"]);
    assert_eq!(d.obligations.len(), 1);
    assert_eq!(d.obligations[0].policy, "audit-all");

    let d = e.evaluate(&req("db:query", 10)).unwrap();
    assert_eq!(d.effect, Effect::Allow);
    assert_eq!(
        d.obligations[0].kind,
        ObligationKind::RateLimit {
            limit: 100,
            period_seconds: 60
        }
    );

    let d = e.evaluate(&req("db:drop", 10)).unwrap();
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(d.matched_policies, ["no-drop"]);
    let kinds: Vec<_> = d.obligations.iter().map(|o| o.policy.as_str()).collect();
    assert_eq!(kinds, ["db-burst", "audit-all", "tell-security"]);

    let d = e.evaluate(&req("payments:refund", 10)).unwrap();
    assert_eq!(d.effect, Effect::RequireApproval);
    assert_eq!(d.approvers, ["alice@example.com", "role:admin"]);

    assert_eq!(
        e.evaluate(&req("files:write", 10)).unwrap().effect,
        Effect::Deny
    );

    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["effect"], "require_approval");
    assert_eq!(json["matchedPolicies"][0], "refunds");
    assert_eq!(json["obligations"][0]["type"], "audit");
    assert_eq!(json["mode"], "strict");
}

#[test]
fn version_is_a_content_hash() {
    let a = aim_policy::validate(
        "permit(principal, action, resource);",
        PolicyLanguage::Cedar,
    )
    .unwrap();
    let b = aim_policy::validate(
        "permit(principal, action, resource);",
        PolicyLanguage::Cedar,
    )
    .unwrap();
    let c = aim_policy::validate(
        "forbid(principal, action, resource);",
        PolicyLanguage::Cedar,
    )
    .unwrap();
    assert_eq!(a.version(), b.version());
    assert_ne!(a.version(), c.version());
    assert_eq!(a.version().len(), "sha256:".len() + 64);
}

#[test]
fn engine_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
    let e = std::sync::Arc::new(cedar("permit(principal, action, resource);"));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let e = e.clone();
            std::thread::spawn(move || e.evaluate(&req("files:read", 1)).unwrap().effect)
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), Effect::Allow);
    }
}

/// `context.time` (second precision) and `context.clientAddress` values are reused between
/// requests (see `request.rs`): interleaved requests with different times and addresses must
/// each be decided on their own values.
#[test]
fn time_and_address_values_follow_each_request() {
    let e = cedar(
        r#"
        permit(principal, action, resource);
        forbid(principal, action, resource) when { context.time >= datetime("2027-01-01T00:00:00Z") };
        forbid(principal, action, resource)
          when { context has clientAddress && !context.clientAddress.isInRange(ip("10.0.0.0/8")) };
        "#,
    );
    let before = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap()
        + chrono::Duration::milliseconds(999);
    let after = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
    for _ in 0..3 {
        for (time, addr, want) in [
            (before, "10.1.2.3", Effect::Allow),
            (after, "10.1.2.3", Effect::Deny),
            (before, "192.168.0.1", Effect::Deny),
            (before, "10.9.9.9", Effect::Allow),
            (after, "192.168.0.1", Effect::Deny),
        ] {
            let mut r = req("files:read", 10);
            r.context.time = time;
            r.context.client_address = Some(addr.parse().unwrap());
            assert_eq!(e.evaluate(&r).unwrap().effect, want, "{time} {addr}");
        }
    }
}

/// The engine keeps each agent's Cedar entities between decisions (`request.rs`,
/// `CedarCache`): any policy-visible change of the agent, and every other resource,
/// capability and context value, must still be decided on the request's own values.
#[test]
fn cached_entities_follow_each_agent_attribute_and_resource() {
    let e = cedar(
        r#"
        permit(principal, action, resource) when { principal.trustScore >= 50 };
        forbid(principal, action, resource) when { principal.tags.contains("quarantined") };
        forbid(principal, action, resource) when { principal.name == "renamed" };
        forbid(principal, action, resource) when { principal.owner == "mallory@example.com" };
        forbid(principal, action, resource) when { principal.agentType == "mcp_server" };
        forbid(principal, action == Action::"files:delete", resource);
        forbid(principal, action, resource) when { resource.id == "db/secrets" };
        forbid(principal, action, resource) when { context.riskRank >= 3 };
        forbid(principal, action, resource)
          when { context has mcpServer && context.mcpServer == "evil-mcp" };
        "#,
    );
    let decide = |r: &Request| e.evaluate(r).unwrap().effect;
    for _ in 0..3 {
        let base = req("files:read", 80);
        assert_eq!(decide(&base), Effect::Allow);
        type Change = Box<dyn Fn(&mut Request)>;
        let changes: Vec<(&str, Change)> = vec![
            ("trust", Box::new(|r| r.agent.trust_score = 49)),
            (
                "tags",
                Box::new(|r| r.agent.tags.push("quarantined".into())),
            ),
            ("name", Box::new(|r| r.agent.name = "renamed".into())),
            (
                "owner",
                Box::new(|r| r.agent.owner = "mallory@example.com".into()),
            ),
            (
                "type",
                Box::new(|r| r.agent.agent_type = "mcp_server".into()),
            ),
            (
                "capability",
                Box::new(|r| r.capability = Capability::parse("files:delete").unwrap()),
            ),
            ("resource", Box::new(|r| r.resource = "db/secrets".into())),
            (
                "risk",
                Box::new(|r| r.context.risk_level = RiskLevel::Critical),
            ),
            (
                "mcp",
                Box::new(|r| r.context.mcp_server = Some("evil-mcp".into())),
            ),
        ];
        for (what, change) in &changes {
            let mut r = req("files:read", 80);
            change(&mut r);
            assert_eq!(decide(&r), Effect::Deny, "{what} changed");
            // And back: the unchanged agent is still allowed (nothing stale either way).
            assert_eq!(decide(&base), Effect::Allow, "after {what}");
        }
        // Another agent with the same attributes is its own principal.
        let mut other = req("files:read", 80);
        other.agent.id = "agent-2".into();
        let d = e.evaluate(&other).unwrap();
        assert_eq!(d.effect, Effect::Allow);
    }
}
