//! Verification throughput of the JSONL audit log (fast path, 1 thread and all threads, strict).
//! The full 1M-entry measurement against OpenSSL is `scripts/bench-audit.sh`.

use std::io::Write;

use aim_core::audit::chain::{Entry, NewEntry};
use aim_core::audit::file::{AuditFile, VerifyOptions};
use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const N: u64 = 100_000;

fn write_log(path: &std::path::Path, n: u64) {
    let t = Utc
        .with_ymd_and_hms(2026, 5, 28, 0, 0, 0)
        .single()
        .expect("valid time");
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).expect("create log"));
    let mut prev: Option<Entry> = None;
    for i in 0..n {
        let e = Entry::seal(
            prev.as_ref(),
            NewEntry {
                event_type: "action.executed".into(),
                actor: Some("aim:7Qk2m9xWcR4vT1yB0042".into()),
                subject: Some("mcp:fs/read_file".into()),
                details: serde_json::json!({"decision": "allow", "req": i}),
            },
            t + chrono::Duration::milliseconds(i as i64),
        )
        .expect("seal");
        w.write_all(&e.canonical_line().expect("line"))
            .expect("write");
        w.write_all(b"\n").expect("write");
        prev = Some(e);
    }
    w.flush().expect("flush");
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    write_log(&path, N);
    let log = AuditFile::open(&path).expect("open");
    let mut g = c.benchmark_group("audit_verify");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N));
    for (name, opts) in [
        (
            "fast_1_thread",
            VerifyOptions {
                threads: 1,
                ..Default::default()
            },
        ),
        ("fast_all_threads", VerifyOptions::default()),
        (
            "strict_1_thread",
            VerifyOptions {
                threads: 1,
                strict: true,
                ..Default::default()
            },
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let r = log
                    .verify_with(&opts, None, &mut |_, _| {})
                    .expect("verify");
                assert!(r.ok && r.entries == N);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
