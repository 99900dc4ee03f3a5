//! The JSONL audit log on disk: append/reopen/verify, checkpoints, truncation, rewritten
//! history, tampered checkpoints, crash leftovers, concurrent appends.

use std::io::Write;
use std::path::{Path, PathBuf};

use aim_core::audit::chain::{Entry, NewEntry, ProblemKind};
use aim_core::audit::checkpoint::Checkpoint;
use aim_core::audit::file::{AuditFile, VerifyOptions, VerifyReport};
use aim_core::audit::merkle;
use aim_core::clock::FixedClock;
use chrono::{TimeZone, Utc};
use ed25519_dalek::SigningKey;
use serde_json::json;

fn clock() -> FixedClock {
    FixedClock(
        Utc.with_ymd_and_hms(2026, 5, 28, 12, 0, 0)
            .single()
            .unwrap(),
    )
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn ev(i: u64) -> NewEntry {
    NewEntry {
        event_type: "action.executed".into(),
        actor: Some("agent-1".into()),
        subject: Some(format!("tool-{i}")),
        details: json!({"i": i}),
    }
}

fn log_with(dir: &Path, n: u64) -> (AuditFile, Vec<Entry>) {
    let log = AuditFile::open(dir.join("aim-core").join("audit.jsonl")).unwrap();
    let entries = (0..n)
        .map(|i| log.append(ev(i), &clock()).unwrap())
        .collect();
    (log, entries)
}

fn verify(log: &AuditFile, cp: Option<&Checkpoint>) -> VerifyReport {
    let mut last = (0, 0);
    let r = log.verify(cp, &mut |d, t| last = (d, t)).unwrap();
    assert_eq!(last.0, last.1, "progress ends at the total");
    // Single-threaded and strict verification reach the same verdict.
    for opts in [
        VerifyOptions {
            threads: 1,
            ..Default::default()
        },
        VerifyOptions {
            threads: 1,
            strict: true,
            ..Default::default()
        },
    ] {
        let other = log.verify_with(&opts, cp, &mut |_, _| {}).unwrap();
        assert_eq!(other, r);
    }
    r
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut s = lines.join("\n");
    s.push('\n');
    std::fs::write(path, s).unwrap();
}

#[test]
fn append_reopen_verify() {
    let dir = tempfile::tempdir().unwrap();
    let missing = AuditFile::open(dir.path().join("none.jsonl")).unwrap();
    let r = verify(&missing, None);
    assert!(r.ok && r.entries == 0 && r.head_hash.is_none());
    assert_eq!(r.root_hash, hex::encode(merkle::EMPTY_ROOT));
    assert!(missing.tail(3).unwrap().is_empty());

    let (log, entries) = log_with(dir.path(), 5);
    assert_eq!(
        entries[0].prev_hash,
        aim_core::audit::chain::GENESIS_PREV_HASH
    );
    let again = AuditFile::open(log.path()).unwrap();
    let e5 = again.append(ev(5), &clock()).unwrap();
    assert_eq!((e5.seq, &e5.prev_hash), (5, &entries[4].hash));
    let r = verify(&again, None);
    assert!(r.ok, "{r:?}");
    assert_eq!(r.entries, 6);
    assert_eq!(r.head_hash.as_deref(), Some(e5.hash.as_str()));
    let all: Vec<Entry> = again.entries().unwrap().map(|e| e.unwrap()).collect();
    let leaves: Vec<_> = all.iter().map(|e| e.leaf_hash().unwrap()).collect();
    assert_eq!(r.root_hash, hex::encode(merkle::root(&leaves)));
    assert_eq!(&all[..5], &entries[..]);
    assert_eq!(again.tail(2).unwrap(), all[4..].to_vec());
    assert_eq!(again.tail(100).unwrap(), all);
    // Lines are the canonical form, one per line.
    assert_eq!(
        lines(log.path())[2].as_bytes(),
        all[2].canonical_line().unwrap()
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(log.path()), 0o600);
        assert_eq!(mode(log.path().parent().unwrap()), 0o700);
    }
    assert!(
        AuditFile::open(dir.path()).is_err(),
        "a directory is not a log"
    );
}

#[test]
fn checkpoint_detects_truncation_and_rewritten_history() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = log_with(dir.path(), 5);
    let k = key(7);
    let cp = log.checkpoint(&k, "log-key-1", &clock()).unwrap();
    assert_eq!(cp.tree_size, 5);
    cp.verify(Some(&k.verifying_key())).unwrap();

    for i in 5..9 {
        log.append(ev(i), &clock()).unwrap();
    }
    let r = verify(&log, Some(&cp));
    assert!(r.ok, "{r:?}");
    let c = r.consistency.clone().unwrap();
    assert_eq!((c.old_size, c.new_size), (5, 9));
    assert!(c.verify());
    assert_eq!(log.consistency_proof(5).unwrap(), c);

    // Truncation: drop the last 6 lines -> valid chain of 3, but the checkpoint covers 5.
    let all = lines(log.path());
    write_lines(log.path(), &all[..3]);
    assert!(
        verify(&log, None).ok,
        "trailing deletion is invisible without a checkpoint"
    );
    let r = verify(&log, Some(&cp));
    let p = r.problem.unwrap();
    assert_eq!(
        (p.kind, p.seq, r.entries),
        (ProblemKind::Truncated, Some(3), 3)
    );

    // Rewritten history: a completely valid chain with different content, longer than the
    // checkpoint.
    std::fs::remove_file(log.path()).unwrap();
    for i in 0..7 {
        log.append(ev(100 + i), &clock()).unwrap();
    }
    assert!(verify(&log, None).ok);
    let r = verify(&log, Some(&cp));
    assert_eq!(r.problem.unwrap().kind, ProblemKind::HistoryRewritten);

    // Same size, one entry changed and everything after it re-chained.
    std::fs::remove_file(log.path()).unwrap();
    for i in 0..5 {
        log.append(if i == 3 { ev(33) } else { ev(i) }, &clock())
            .unwrap();
    }
    let r = verify(&log, Some(&cp));
    assert!(!r.ok);
    assert_eq!(r.problem.unwrap().kind, ProblemKind::HistoryRewritten);
}

#[test]
fn tampered_checkpoint_and_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = log_with(dir.path(), 4);
    let k = key(1);
    let cp = log.checkpoint(&k, "k1", &clock()).unwrap();
    assert!(verify(&log, Some(&cp)).ok);

    let mut tampered = Vec::new();
    let mut c = cp.clone();
    c.tree_size = 3;
    tampered.push(c);
    let mut c = cp.clone();
    c.root_hash = hex::encode([0u8; 32]);
    tampered.push(c);
    let mut c = cp.clone();
    c.timestamp = "2026-05-28T12:00:01.000Z".into();
    tampered.push(c);
    let mut c = cp.clone();
    c.key_id = "k2".into();
    tampered.push(c);
    let mut c = cp.clone();
    c.signature = Checkpoint::sign(&k, "k1", 4, &[1u8; 32], clock().0).signature;
    tampered.push(c);
    let mut c = cp.clone();
    c.public_key = Checkpoint::sign(&key(2), "k1", 4, &[0; 32], clock().0).public_key;
    tampered.push(c);
    let mut c = cp.clone();
    c.root_hash = cp.root_hash.to_uppercase();
    tampered.push(c);
    for c in &tampered {
        assert!(c.verify(None).is_err(), "{c:?}");
        let r = verify(&log, Some(c));
        assert_eq!(
            r.problem.unwrap().kind,
            ProblemKind::CheckpointInvalid,
            "{c:?}"
        );
    }

    // A checkpoint re-signed by another key is valid on its own but not from the trusted key.
    let other = log.checkpoint(&key(9), "k1", &clock()).unwrap();
    other.verify(None).unwrap();
    assert!(other.verify(Some(&k.verifying_key())).is_err());
    let opts = VerifyOptions {
        trusted_key: Some(k.verifying_key()),
        ..Default::default()
    };
    let r = log
        .verify_with(&opts, Some(&other), &mut |_, _| {})
        .unwrap();
    assert_eq!(r.problem.unwrap().kind, ProblemKind::CheckpointInvalid);
    assert!(
        log.verify_with(&opts, Some(&cp), &mut |_, _| {})
            .unwrap()
            .ok
    );

    // JSON shape.
    let v = serde_json::to_value(&cp).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "treeSize",
            "rootHash",
            "timestamp",
            "keyId",
            "publicKey",
            "signature"
        ]
    );
    let back: Checkpoint = serde_json::from_value(v).unwrap();
    assert_eq!(back, cp);
}

#[test]
fn incomplete_trailing_line() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = log_with(dir.path(), 3);
    let len = std::fs::metadata(log.path()).unwrap().len();
    let next = Entry::seal(log.tail(1).unwrap().last(), ev(3), clock().0).unwrap();
    let partial = &next.canonical_line().unwrap()[..40];
    std::fs::OpenOptions::new()
        .append(true)
        .open(log.path())
        .unwrap()
        .write_all(partial)
        .unwrap();

    let r = verify(&log, None);
    let p = r.problem.clone().unwrap();
    assert_eq!(
        (p.kind, p.line, p.seq, r.entries),
        (ProblemKind::Malformed, Some(4), Some(3), 3)
    );
    assert!(
        p.message.contains(&format!("byte offset {len}")),
        "{}",
        p.message
    );

    let err = log.append(ev(3), &clock()).unwrap_err().to_string();
    assert!(err.contains(&format!("byte offset {len}")), "{err}");
    assert!(log.tail(1).is_err());
    let items: Vec<_> = log.entries().unwrap().collect();
    assert_eq!(items.len(), 4);
    assert!(items[3].is_err());

    assert_eq!(log.discard_incomplete_tail().unwrap(), Some(len));
    assert_eq!(log.discard_incomplete_tail().unwrap(), None);
    log.append(ev(3), &clock()).unwrap();
    assert!(verify(&log, None).ok);
}

#[test]
fn malformed_lines_and_broken_logs_are_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = log_with(dir.path(), 4);
    let good = lines(log.path());
    let cases: Vec<(Vec<String>, u64, ProblemKind)> = vec![
        // Blank line.
        (
            [&good[..2], &[String::new()], &good[2..]].concat(),
            3,
            ProblemKind::Malformed,
        ),
        // Non-canonical spacing.
        (
            {
                let mut l = good.clone();
                l[1] = l[1].replacen(":", ": ", 1);
                l
            },
            2,
            ProblemKind::Malformed,
        ),
        // Not JSON.
        (
            {
                let mut l = good.clone();
                l[2] = "garbage".into();
                l
            },
            3,
            ProblemKind::Malformed,
        ),
        // Edited value.
        (
            {
                let mut l = good.clone();
                l[3] = l[3].replacen("tool-3", "tool-X", 1);
                l
            },
            4,
            ProblemKind::HashMismatch,
        ),
    ];
    for (ls, line, kind) in cases {
        write_lines(log.path(), &ls);
        let r = verify(&log, None);
        let p = r.problem.unwrap();
        assert_eq!((p.line, p.kind), (Some(line), kind), "{}", p.message);
        assert_eq!(r.entries, line - 1);
        assert!(
            log.checkpoint(&key(1), "k", &clock()).is_err(),
            "no checkpoint over a broken log"
        );
        assert!(log.inclusion_proof(0).is_err());
        assert!(
            log.append(ev(9), &clock()).is_err() || line != 4,
            "head is checked before chaining"
        );
    }
}

#[test]
fn inclusion_proof_of_file_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (log, entries) = log_with(dir.path(), 11);
    for seq in [0u64, 5, 10] {
        let p = log.inclusion_proof(seq).unwrap();
        assert!(p.verify());
        assert_eq!((p.leaf_index, p.tree_size), (seq, 11));
        assert_eq!(p.entry_hash, entries[seq as usize].hash);
        assert_eq!(p.root_hash, verify(&log, None).root_hash);
        let mut bad = p.clone();
        bad.leaf_index = (seq + 1) % 11;
        assert!(!bad.verify());
        let mut bad = p.clone();
        bad.entry_hash = entries[((seq + 1) % 11) as usize].hash.clone();
        assert!(!bad.verify());
    }
    let v = serde_json::to_value(log.inclusion_proof(3).unwrap()).unwrap();
    for k in [
        "leafIndex",
        "treeSize",
        "entryHash",
        "leafHash",
        "auditPath",
        "rootHash",
    ] {
        assert!(v.get(k).is_some(), "{k}");
    }
    assert!(matches!(
        log.inclusion_proof(11),
        Err(aim_core::Error::NotFound { .. })
    ));
}

#[test]
fn concurrent_appends_stay_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("audit.jsonl");
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let path = path.clone();
            s.spawn(move || {
                let log = AuditFile::open(path).unwrap();
                for i in 0..25 {
                    log.append(ev(t * 100 + i), &clock()).unwrap();
                }
            });
        }
    });
    let log = AuditFile::open(&path).unwrap();
    let r = verify(&log, None);
    assert!(r.ok, "{r:?}");
    assert_eq!(r.entries, 100);
}

/// A log spanning several read chunks, tampered far from the start: every verification mode
/// names the same line.
#[test]
fn large_log_tamper_found_by_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut prev: Option<Entry> = None;
    let mut text = Vec::new();
    for i in 0..9000u64 {
        let mut n = ev(i);
        n.details = json!({"i": i, "pad": "x".repeat(200)});
        let e = Entry::seal(prev.as_ref(), n, clock().0).unwrap();
        text.extend_from_slice(&e.canonical_line().unwrap());
        text.push(b'\n');
        prev = Some(e);
    }
    assert!(text.len() > 3 << 20, "spans several 1 MiB chunks");
    std::fs::write(&path, &text).unwrap();
    let log = AuditFile::open(&path).unwrap();
    let r = verify(&log, None);
    assert!(r.ok && r.entries == 9000);
    for opts in [
        VerifyOptions {
            threads: 2,
            ..Default::default()
        },
        VerifyOptions {
            threads: 3,
            ..Default::default()
        },
    ] {
        assert_eq!(log.verify_with(&opts, None, &mut |_, _| {}).unwrap(), r);
    }

    let mut ls = lines(&path);
    ls[7001] = ls[7001].replacen("\"i\":7001", "\"i\":7002", 1);
    write_lines(&path, &ls);
    let r = verify(&log, None);
    let p = r.problem.unwrap();
    assert_eq!(
        (p.line, p.seq, p.kind),
        (Some(7002), Some(7001), ProblemKind::HashMismatch)
    );
    for opts in [
        VerifyOptions {
            threads: 2,
            ..Default::default()
        },
        VerifyOptions {
            threads: 3,
            ..Default::default()
        },
    ] {
        let r2 = log.verify_with(&opts, None, &mut |_, _| {}).unwrap();
        assert_eq!(r2.problem.unwrap(), p);
    }
}
