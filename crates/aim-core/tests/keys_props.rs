//! Property tests of signatures and canonical bytes.

use aim_core::canonical::{jcs, jcs_string, jcs_value_string};
use aim_core::keys::{KeyPair, PublicKey, agent_id_for, is_agent_id};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1.0e15f64..1.0e15).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z0-9_é€]{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Leaves at the edges of JCS's number and string rules: integers around ±2^53 and beyond, floats
/// of every magnitude (exponent forms, negative zero), control characters, DEL, line separators.
fn edge_leaf() -> impl Strategy<Value = Value> {
    let exact = 1i64 << 53;
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (exact - 3..exact + 3).prop_map(Value::from),
        (-exact - 3..-exact + 3).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just(-0.0f64),
            Just(1e21),
            Just(1e-7),
            Just(123e-20),
            Just(0.1)
        ]
        .prop_map(Value::from),
        "[\\x00-\\x20\\x7f\\u{2028}\\u{2029}\"\\\\/aé€😀]{0,8}".prop_map(Value::String),
    ]
}

/// Values for the fast-path comparison: mostly ASCII keys (the fast path), sometimes keys
/// outside ASCII and the BMP (the general path), with insertion order scrambled.
fn edge_value() -> impl Strategy<Value = Value> {
    edge_leaf().prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-zA-Z0-9_\\x00-\\x1f\"]{0,5}", inner.clone()), 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
            prop::collection::vec(("[a-z\u{e000}\u{ffff}😀é]{0,3}", inner), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Rebuilds every object with its members in reverse insertion order.
fn reorder(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .rev()
                .map(|(k, v)| (k.clone(), reorder(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(reorder).collect()),
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn signatures_verify_only_for_the_signed_message_and_key(seed in any::<[u8; 32]>(), msg in prop::collection::vec(any::<u8>(), 0..256), flip in any::<prop::sample::Index>()) {
        let kp = KeyPair::from_seed(&seed);
        let sig = kp.sign(&msg);
        prop_assert!(kp.public().verify(&msg, &sig));
        // any single bit flip of the signature is rejected
        let mut bad = sig;
        let i = flip.index(64 * 8);
        bad[i / 8] ^= 1 << (i % 8);
        prop_assert!(!kp.public().verify(&msg, &bad));
        // any change of the message is rejected
        let mut other = msg.clone();
        other.push(0);
        prop_assert!(!kp.public().verify(&other, &sig));
    }

    #[test]
    fn agent_ids_are_well_formed_and_recomputable(seed in any::<[u8; 32]>()) {
        let pk = KeyPair::from_seed(&seed).public();
        let id = pk.agent_id();
        prop_assert!(is_agent_id(&id));
        prop_assert_eq!(&id, &agent_id_for(&PublicKey::from_base64(&pk.to_base64()).unwrap().to_bytes()));
    }

    #[test]
    fn fast_jcs_matches_the_canonicalizer(v in edge_value()) {
        prop_assert_eq!(jcs_value_string(&v).unwrap(), jcs_string(&v).unwrap());
        prop_assert_eq!(jcs_value_string(&reorder(&v)).unwrap(), jcs_string(&v).unwrap());
    }

    #[test]
    fn canonical_bytes_are_stable_under_member_order_and_round_trips(v in json_value()) {
        let a = jcs(&v).unwrap();
        prop_assert_eq!(&a, &jcs(&reorder(&v)).unwrap());
        let reparsed: Value = serde_json::from_slice(&a).unwrap();
        prop_assert_eq!(&a, &jcs(&reparsed).unwrap());
        // JCS output never contains insignificant whitespace outside strings
        prop_assert!(!String::from_utf8(a).unwrap().starts_with(' '));
    }
}
