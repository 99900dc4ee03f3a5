//! Decisions per second of a compiled engine (the hot path of action verification): a 40-policy
//! Cedar set (scope matches, attribute conditions, an IP range, a forbid) and the equivalent
//! governance YAML, evaluated for one request. Compilation is measured separately.

use aim_policy::{
    Agent, Capability, EnforcementMode, Engine, PolicyLanguage, Request, RequestContext, RiskLevel,
};
use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn cedar_policies() -> String {
    let mut s = String::new();
    for i in 0..36 {
        s.push_str(&format!(
            "@id(\"ns{i}-read\") permit(principal, action in Action::\"ns{i}:*\", resource) \
             when {{ principal.trustScore >= 40 && resource.id like \"db/*\" }};\n"
        ));
    }
    s.push_str(
        r#"
@id("low-trust-high-risk") forbid(principal, action, resource)
  when { context.riskRank >= 2 && principal.trustScore < 70 };
@id("office-only") forbid(principal, action in Action::"payments:*", resource)
  unless { context has clientAddress && context.clientAddress.isInRange(ip("10.0.0.0/8")) };
@id("payments") permit(principal, action in Action::"payments:*", resource)
  when { principal.tags.contains("finance") };
@id("refunds") @effect("require_approval") permit(principal, action == Action::"payments:refund", resource);
"#,
    );
    s
}

fn request() -> Request {
    Request {
        agent: Agent {
            id: "aim:7Qk2m9xWcR4vT1yB0042".into(),
            name: "billing-bot".into(),
            agent_type: "ai_agent".into(),
            trust_score: 82,
            tags: vec!["finance".into(), "prod".into()],
            owner: "alice@example.com".into(),
            capabilities: Some(vec!["payments:*".into(), "ns3:*".into()]),
        },
        capability: Capability::parse("payments:charge").expect("capability"),
        resource: "db/customers".into(),
        context: RequestContext {
            time: Utc
                .with_ymd_and_hms(2026, 11, 26, 10, 0, 0)
                .single()
                .expect("time"),
            risk_level: RiskLevel::Medium,
            client_address: Some("10.1.2.3".parse().expect("ip")),
            mcp_server: Some("postgres-mcp".into()),
        },
    }
}

fn bench(c: &mut Criterion) {
    let text = cedar_policies();
    let engine =
        Engine::compile(&text, PolicyLanguage::Cedar, EnforcementMode::Strict).expect("compile");
    let req = request();
    assert_eq!(
        engine.evaluate(&req).expect("decide").effect,
        aim_policy::Effect::Allow
    );
    let mut g = c.benchmark_group("policy");
    g.throughput(Throughput::Elements(1));
    g.bench_function("evaluate_cedar_40_policies", |b| {
        b.iter(|| engine.evaluate(std::hint::black_box(&req)).expect("decide"))
    });
    // The engine keeps each agent's entities between decisions; the resource entity is built
    // for every request. Here every request names another resource (no two alike in a row).
    let varied: Vec<Request> = (0..4096)
        .map(|i| {
            let mut r = request();
            r.resource = format!("db/customers/{i}");
            r
        })
        .collect();
    let mut i = 0usize;
    g.bench_function("evaluate_cedar_40_policies_new_resource_each", |b| {
        b.iter(|| {
            i = (i + 1) % varied.len();
            engine
                .evaluate(std::hint::black_box(&varied[i]))
                .expect("decide")
        })
    });
    let yaml = "policies:\n  - {name: pay, capability: \"payments:*\", action: allow}\n  - {name: burst, capability: \"payments:*\", action: rate_limit, limit: 10, period: 1m}\n  - {name: no-drop, capability: db:drop, action: deny}\n";
    let y = Engine::compile(
        yaml,
        PolicyLanguage::GovernanceYaml,
        EnforcementMode::Strict,
    )
    .expect("compile yaml");
    g.bench_function("evaluate_governance_yaml", |b| {
        b.iter(|| y.evaluate(std::hint::black_box(&req)).expect("decide"))
    });
    g.bench_function("compile_cedar_40_policies", |b| {
        b.iter(|| {
            Engine::compile(
                std::hint::black_box(&text),
                PolicyLanguage::Cedar,
                EnforcementMode::Strict,
            )
            .expect("compile")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
