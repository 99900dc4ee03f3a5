//! RFC 8785 bytes of an action decision's audit payload (the shape the server writes for every
//! decision): the one-pass writer (`jcs_value_string`) against the general canonicalizer.

use aim_core::canonical::{jcs_string, jcs_value_string};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

fn bench(c: &mut Criterion) {
    let payload = json!({
        "actionId": "019af0b2-6a4e-7c3d-9f00-5b2c8d1e4a77",
        "capability": "files:read",
        "resource": "file:///tmp/aim-bench/17",
        "riskLevel": "low",
        "status": "approved",
        "reasonCodes": ["PERMITTED"],
        "matchedPolicies": ["default-permit-granted"],
        "policyVersion": 3,
        "enforcementMode": "strict",
        "alert": false,
        "trustScore": 0.6125,
        "wire": "native",
        "method": "POST",
        "path": "/api/v1/agents/aim_7Qk2m9xWcR4vT1yB0042/actions/verify",
        "nonce": "q3F0bW9yZS1yYW5kb20tYnl0ZXM",
        "key": "current",
    });
    assert_eq!(
        jcs_value_string(&payload).unwrap(),
        jcs_string(&payload).unwrap()
    );
    let mut g = c.benchmark_group("canonical");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decision_payload_one_pass", |b| {
        b.iter(|| jcs_value_string(std::hint::black_box(&payload)).unwrap())
    });
    g.bench_function("decision_payload_canonicalizer", |b| {
        b.iter(|| jcs_string(std::hint::black_box(&payload)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
