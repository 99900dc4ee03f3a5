//! Writes a valid N-entry audit log quickly (one buffered write stream, no per-entry fsync), for
//! benchmarks and manual testing.
//!
//! Usage: `cargo run --release -p aim-core --example audit_gen -- PATH N`
//!
//! Entries look like real CLI entries (~280 bytes): an agent id, an MCP tool subject and a small
//! `details` object. Refuses to overwrite an existing file.

use std::io::Write;
use std::process::ExitCode;

use aim_core::audit::chain::{Entry, NewEntry};
use chrono::{TimeZone, Utc};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok()))
    else {
        eprintln!("usage: audit_gen PATH N");
        return ExitCode::from(2);
    };
    match generate(path, n) {
        Ok(bytes) => {
            println!("wrote {n} entries ({bytes} bytes) to {path}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("audit_gen: {e}");
            ExitCode::from(2)
        }
    }
}

fn generate(path: &str, n: u64) -> Result<u64, Box<dyn std::error::Error>> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let t0 = Utc
        .with_ymd_and_hms(2026, 5, 28, 0, 0, 0)
        .single()
        .ok_or("bad start time")?;
    let events = [
        "action.executed",
        "capability.checked",
        "trust.updated",
        "mcp.attested",
    ];
    let tools = ["read_file", "write_file", "search", "list_directory"];
    let mut prev: Option<Entry> = None;
    let mut bytes = 0u64;
    for i in 0..n {
        let k = (i % 4) as usize;
        let entry = Entry::seal(
            prev.as_ref(),
            NewEntry {
                event_type: events[k].to_string(),
                actor: Some(format!("aim:7Qk2m9xWcR4vT1yB{:04}", i % 10_000)),
                subject: Some(format!("mcp:fs/{}", tools[k])),
                details: serde_json::json!({"decision": "allow", "req": i}),
            },
            t0 + chrono::Duration::milliseconds(i as i64),
        )?;
        let line = entry.canonical_line()?;
        w.write_all(&line)?;
        w.write_all(b"\n")?;
        bytes += line.len() as u64 + 1;
        prev = Some(entry);
    }
    w.flush()?;
    w.get_ref().sync_all()?;
    Ok(bytes)
}
