//! Writes a valid audit log of N entries, for benchmarks: `audit_gen PATH N`.
//! Entries look like the CLI's (about 300 bytes each: ids, a key id, a hash and a signature).

use std::io::{BufWriter, Write};

use aim_core::audit::chain::{Entry, NewEntry};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(n)) = (args.next(), args.next()) else {
        eprintln!("usage: audit_gen PATH N");
        std::process::exit(2);
    };
    let n: u64 = n.parse()?;
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")?.to_utc();
    let mut prev: Option<Entry> = None;
    for i in 0..n {
        let e = Entry::seal(
            prev.as_ref(),
            NewEntry {
                event_type: "signature.created".into(),
                actor: Some("aim_7xq4kz2m3n5p6r7s8t9uvw2xyzab3cde".into()),
                subject: None,
                details: json!({"keyId": "aim_7xq4kz2m3n5p6r7s8t9uvw2xyzab3cde#key-1", "bytes": i % 4096,
                                "sha256": format!("{:064x}", i)}),
            },
            t0 + chrono::Duration::milliseconds(i as i64),
        )?;
        out.write_all(e.to_line()?.as_bytes())?;
        out.write_all(b"\n")?;
        prev = Some(e);
    }
    out.flush()?;
    Ok(())
}
