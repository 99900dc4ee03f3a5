//! Property tests of the trust score: range, and direction (more bad evidence never raises it).

use aim_core::trust::{DAY_MS, Evidence, FactorKind, McpUse, SubjectState, factor_value, score};
use proptest::prelude::*;

const NOW: i64 = 1_800_000_000_000;

fn evidence() -> impl Strategy<Value = Evidence> {
    (
        (
            0i64..400,
            prop::option::of(0i64..400),
            0u64..50,
            0u64..50,
            0u64..20,
        ),
        (0u64..200, 0u64..200, 0u64..100, 0.0f64..20.0),
        (
            prop::collection::vec((0.0f64..=1.0, 0u64..10), 0..4),
            0u64..50,
            0u64..50,
        ),
        (
            0u64..20,
            0u64..20,
            prop::option::of(any::<bool>()),
            prop::option::of(0i64..400),
        ),
        prop::sample::select(vec![
            SubjectState::Pending,
            SubjectState::Active,
            SubjectState::Suspended,
            SubjectState::Revoked,
        ]),
    )
        .prop_map(|(a, b, c, d, state)| {
            let mut e = Evidence::new(NOW, state, NOW - a.0 * DAY_MS);
            e.last_key_proof_ms = a.1.map(|d| NOW - d * DAY_MS);
            e.key_proofs_30d = a.2;
            e.key_proof_failures_30d = a.3;
            e.attesters_90d = a.4;
            e.decisions_30d = b.0;
            e.violations_30d = b.1.min(b.0);
            e.baseline_observations = b.2;
            e.anomaly_severity_7d = b.3;
            e.mcp_servers_30d =
                c.0.into_iter()
                    .map(|(confidence, uses)| McpUse { confidence, uses })
                    .collect();
            e.results_ok_7d = c.1;
            e.results_failed_7d = c.2;
            e.records_due = d.0;
            e.records_present = d.1.min(d.0);
            e.audit_chain_intact = d.2;
            e.last_activity_ms = d.3.map(|x| NOW - x * DAY_MS);
            e
        })
}

/// `b` is not above `a` (an unscored result is not comparable and passes).
fn not_raised(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => b <= a + 1e-9,
        _ => true,
    }
}

proptest! {
    #[test]
    fn values_and_score_stay_in_range(e in evidence()) {
        for k in FactorKind::ALL {
            if let Some(v) = factor_value(k, &e).value {
                prop_assert!((0.0..=1.0).contains(&v), "{k:?} = {v}");
            }
        }
        let r = score(&e);
        if let Some(s) = r.score {
            prop_assert!((0.0..=100.0).contains(&s));
            let sum: f64 = r.factors.iter().map(|f| f.contribution).sum();
            prop_assert!((sum - s).abs() < 1e-6, "contributions {sum} != score {s}");
        }
        prop_assert!((0.0..=1.0).contains(&r.confidence));
    }

    #[test]
    fn more_violations_never_raise(e in evidence(), extra in 1u64..20) {
        let mut worse = e.clone();
        worse.violations_30d = (e.violations_30d + extra).min(e.decisions_30d);
        prop_assert!(not_raised(score(&e).score, score(&worse).score));
    }

    #[test]
    fn more_failures_never_raise(e in evidence(), extra in 1u64..20) {
        let mut worse = e.clone();
        worse.key_proof_failures_30d += extra;
        prop_assert!(not_raised(score(&e).score, score(&worse).score));
        let mut worse = e.clone();
        worse.results_failed_7d += extra;
        // Adding failures either lowers the error-rate value or includes the factor at 0, which
        // lowers both the renormalised score and the ceiling.
        prop_assert!(not_raised(score(&e).score, score(&worse).score));
    }

    #[test]
    fn more_anomalies_never_raise(e in evidence(), extra in 0.1f64..10.0) {
        let mut worse = e.clone();
        worse.anomaly_severity_7d += extra;
        prop_assert!(not_raised(score(&e).score, score(&worse).score));
    }

    #[test]
    fn a_broken_chain_never_raises(e in evidence()) {
        let mut worse = e.clone();
        worse.audit_chain_intact = Some(false);
        let before = score(&e);
        let after = score(&worse);
        // Exclusion → included at 0 can only lower the ceiling; a value → 0 lowers the sum.
        prop_assert!(not_raised(before.score, after.score));
    }

    #[test]
    fn revocation_is_final(e in evidence()) {
        let mut r = e.clone();
        r.state = SubjectState::Revoked;
        prop_assert_eq!(score(&r).score, Some(0.0));
    }
}
