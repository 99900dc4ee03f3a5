//! Property tests of the audit chain and Merkle proofs: every single tampering is detected at the
//! right place, proofs verify and fail when tampered, canonical bytes are stable.

use aim_core::audit::chain::{ChainVerifier, Entry, NewEntry, Problem, ProblemKind};
use aim_core::audit::merkle::{self, Hash};
use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 28, 0, 0, 0).single().unwrap()
}

fn arb_new() -> impl Strategy<Value = NewEntry> {
    (
        "[a-z]{1,8}\\.[a-z]{1,8}",
        proptest::option::of("[a-zA-Z0-9:_-]{1,20}"),
        proptest::option::of("[ -~é]{0,12}"),
        proptest::collection::btree_map(
            "[a-z]{1,5}",
            prop_oneof![
                any::<i32>().prop_map(Value::from),
                "[ -~]{0,6}".prop_map(Value::from),
                any::<bool>().prop_map(Value::from),
            ],
            0..4,
        ),
    )
        .prop_map(|(event_type, actor, subject, details)| NewEntry {
            event_type,
            actor,
            subject,
            details: Value::Object(details.into_iter().collect()),
        })
}

fn build(news: Vec<NewEntry>) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for (i, n) in news.into_iter().enumerate() {
        let e = Entry::seal(
            out.last(),
            n,
            t0() + chrono::Duration::milliseconds(i as i64),
        )
        .unwrap();
        out.push(e);
    }
    out
}

fn lines(entries: &[Entry]) -> Vec<Vec<u8>> {
    entries
        .iter()
        .map(|e| e.canonical_line().unwrap())
        .collect()
}

/// Verifies lines; the first problem, or `None` and the number of entries.
fn verify(lines: &[Vec<u8>]) -> Result<u64, Problem> {
    let mut v = ChainVerifier::new();
    for l in lines {
        v.push_line(l)?;
    }
    Ok(v.size())
}

/// Changes field `which` of `e` to a different value (without re-hashing).
fn modify(e: &mut Entry, which: usize) {
    match which {
        0 => e.seq += 1,
        1 => e.time.push('x'),
        2 => e.event_type.push('x'),
        3 => e.actor = Some(format!("{}x", e.actor.clone().unwrap_or_default())),
        4 => {
            e.subject = match &e.subject {
                Some(_) => None,
                None => Some("forged".into()),
            }
        }
        5 => e.details = json!({"forged": e.details.clone()}),
        6 => e.prev_hash = flip(&e.prev_hash),
        _ => e.hash = flip(&e.hash),
    }
}

fn flip(h: &str) -> String {
    let mut b = h.as_bytes().to_vec();
    b[10] = if b[10] == b'a' { b'b' } else { b'a' };
    String::from_utf8(b).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn intact_log_verifies_with_the_merkle_root(news in proptest::collection::vec(arb_new(), 0..12)) {
        let entries = build(news);
        let ls = lines(&entries);
        let mut v = ChainVerifier::new();
        for l in &ls {
            v.push_line(l).unwrap();
        }
        let s = v.finish();
        prop_assert_eq!(s.size, entries.len() as u64);
        let leaves: Vec<Hash> = entries.iter().map(|e| e.leaf_hash().unwrap()).collect();
        prop_assert_eq!(s.root, merkle::root(&leaves));
        prop_assert_eq!(s.head_hash, entries.last().map(|e| e.hash.clone()));
        // Value-based verification (the server's path) agrees.
        let mut v = ChainVerifier::new();
        for e in &entries {
            v.push_entry(e).unwrap();
        }
        prop_assert_eq!(v.finish().root, merkle::root(&leaves));
    }

    #[test]
    fn modified_field_is_named(news in proptest::collection::vec(arb_new(), 1..10), k in any::<prop::sample::Index>(), which in 0usize..8) {
        let mut entries = build(news);
        let k = k.index(entries.len());
        modify(&mut entries[k], which);
        let p = verify(&lines(&entries)).unwrap_err();
        prop_assert_eq!(p.line, Some(k as u64 + 1));
        prop_assert_eq!(p.seq, Some(k as u64));
        prop_assert_eq!(p.kind, ProblemKind::HashMismatch);
    }

    #[test]
    fn modified_and_rehashed_entry_is_caught_at_its_successor(news in proptest::collection::vec(arb_new(), 2..10), k in any::<prop::sample::Index>()) {
        let mut entries = build(news);
        let k = k.index(entries.len() - 1);
        entries[k].details = json!({"forged": true});
        entries[k].hash = entries[k].expected_hash().unwrap();
        let p = verify(&lines(&entries)).unwrap_err();
        prop_assert_eq!(p.line, Some(k as u64 + 2));
        prop_assert_eq!(p.kind, ProblemKind::PrevHashMismatch);
    }

    #[test]
    fn deleted_entry_is_named(news in proptest::collection::vec(arb_new(), 2..10), k in any::<prop::sample::Index>()) {
        let entries = build(news);
        let n = entries.len();
        let k = k.index(n);
        let mut ls = lines(&entries);
        ls.remove(k);
        if k == n - 1 {
            // Deleting the last entry leaves a valid, shorter chain: only a checkpoint shows it.
            prop_assert_eq!(verify(&ls), Ok(n as u64 - 1));
        } else {
            let p = verify(&ls).unwrap_err();
            prop_assert_eq!(p.line, Some(k as u64 + 1));
            prop_assert_eq!(p.seq, Some(k as u64));
            prop_assert_eq!(p.kind, ProblemKind::SequenceGap);
        }
    }

    /// A forged entry that is valid on its own (right seq, prevHash, hash) can only be detected at
    /// the entry after it; the message names the forged line too.
    #[test]
    fn inserted_entry_is_named(news in proptest::collection::vec(arb_new(), 1..10), k in any::<prop::sample::Index>(), forged in arb_new()) {
        let entries = build(news);
        let k = k.index(entries.len());
        let prev = if k == 0 { None } else { Some(&entries[k - 1]) };
        let fake = Entry::seal(prev, forged, t0()).unwrap();
        let mut ls = lines(&entries);
        ls.insert(k, fake.canonical_line().unwrap());
        let p = verify(&ls).unwrap_err();
        prop_assert_eq!(p.line, Some(k as u64 + 2));
        prop_assert_eq!(p.kind, ProblemKind::SequenceOutOfOrder);
        let named = format!("line {}", k + 1);
        prop_assert!(p.message.contains(&named), "{}", p.message);
    }

    #[test]
    fn swapped_entries_are_named(news in proptest::collection::vec(arb_new(), 2..10), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let entries = build(news);
        let (i, j) = (a.index(entries.len()), b.index(entries.len()));
        prop_assume!(i != j);
        let (i, j) = (i.min(j), i.max(j));
        let mut ls = lines(&entries);
        ls.swap(i, j);
        let p = verify(&ls).unwrap_err();
        prop_assert_eq!(p.line, Some(i as u64 + 1));
        prop_assert_eq!(p.seq, Some(i as u64));
        prop_assert_eq!(p.kind, ProblemKind::SequenceGap);
    }

    #[test]
    fn inclusion_proofs(n in 1u64..300, i in any::<prop::sample::Index>(), t in any::<prop::sample::Index>()) {
        let leaves: Vec<Hash> = (0..n).map(|x| merkle::leaf_hash(&x.to_le_bytes())).collect();
        let root = merkle::root(&leaves);
        let m = i.index(n as usize) as u64;
        let path = merkle::inclusion_proof(&leaves, m).unwrap();
        let leaf = leaves[m as usize];
        prop_assert!(merkle::verify_inclusion(&leaf, m, n, &path, &root));
        if !path.is_empty() {
            let mut bad = path.clone();
            bad[t.index(path.len())][7] ^= 0x20;
            prop_assert!(!merkle::verify_inclusion(&leaf, m, n, &bad, &root));
            prop_assert!(!merkle::verify_inclusion(&leaf, (m + 1) % n, n, &path, &root));
            prop_assert!(!merkle::verify_inclusion(&leaves[((m + 1) % n) as usize], m, n, &path, &root));
        }
        let mut more = leaves.clone();
        more.push(merkle::leaf_hash(b"next"));
        prop_assert!(!merkle::verify_inclusion(&leaf, m, n + 1, &path, &merkle::root(&more)));
        let mut forged = leaf;
        forged[0] ^= 1;
        prop_assert!(!merkle::verify_inclusion(&forged, m, n, &path, &root));
        prop_assert!(!merkle::verify_inclusion(&leaf, m, n, &path[..path.len().saturating_sub(1)], &root) || path.is_empty());
    }

    #[test]
    fn consistency_proofs(n in 1u64..300, m in any::<prop::sample::Index>(), t in any::<prop::sample::Index>()) {
        let leaves: Vec<Hash> = (0..n).map(|x| merkle::leaf_hash(&x.to_be_bytes())).collect();
        let m = m.index(n as usize + 1) as u64;
        let old = merkle::root(&leaves[..m as usize]);
        let new = merkle::root(&leaves);
        let proof = merkle::consistency_proof(&leaves, m).unwrap();
        prop_assert!(merkle::verify_consistency(m, n, &old, &new, &proof));
        if !proof.is_empty() {
            let mut bad = proof.clone();
            bad[t.index(proof.len())][0] ^= 0x01;
            prop_assert!(!merkle::verify_consistency(m, n, &old, &new, &bad));
            prop_assert!(!merkle::verify_consistency(m, n, &old, &new, &proof[1..]));
        }
        if m > 0 && m < n {
            // A rewritten old tree (one leaf changed) is not a prefix of the new one.
            let mut other = leaves[..m as usize].to_vec();
            other[0][0] ^= 1;
            prop_assert!(!merkle::verify_consistency(m, n, &merkle::root(&other), &new, &proof));
            let mut changed = leaves.clone();
            changed[(m - 1) as usize][5] ^= 1;
            prop_assert!(!merkle::verify_consistency(m, n, &old, &merkle::root(&changed), &proof));
            let old_minus = merkle::root(&leaves[..(m - 1) as usize]);
            prop_assert!(!merkle::verify_consistency(m - 1, n, &old_minus, &new, &proof));
        }
    }

    /// Same entry → same canonical bytes and hash, whatever key order or formatting it went
    /// through.
    #[test]
    fn canonical_bytes_are_stable(news in proptest::collection::vec(arb_new(), 1..4)) {
        for e in build(news) {
            let line = e.canonical_line().unwrap();
            let pretty = serde_json::to_string_pretty(&e).unwrap();
            let back: Entry = serde_json::from_str(&pretty).unwrap();
            prop_assert_eq!(&back.canonical_line().unwrap(), &line);
            // Reverse the key order (serde_json keeps insertion order with `preserve_order`).
            let v: Value = serde_json::from_str(&pretty).unwrap();
            let reversed: serde_json::Map<String, Value> =
                v.as_object().unwrap().iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect();
            let text = serde_json::to_string(&Value::Object(reversed)).unwrap();
            prop_assert!(!text.starts_with(r#"{"actor""#), "key order not reversed");
            let back: Entry = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&back.canonical_line().unwrap(), &line);
            prop_assert_eq!(back.expected_hash().unwrap(), e.hash.clone());
            // Only the canonical text is a valid log line.
            prop_assert!(Entry::from_line(&line).is_ok());
            prop_assert!(Entry::from_line(text.as_bytes()).is_err());
        }
    }
}
