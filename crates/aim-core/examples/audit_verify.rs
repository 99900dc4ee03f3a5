//! Verifies an audit log through the library and prints throughput.
//!
//! Usage: `audit_verify PATH [--threads N] [--strict]` (threads: 0 = all cores, the default).
//! Prints one line: `entries=<n> seconds=<s> entries_per_sec=<r> ok=<bool>`. Exit 0 if the log
//! verifies, 1 if not, 2 on usage or I/O errors.

use std::process::ExitCode;
use std::time::Instant;

use aim_core::audit::file::{AuditFile, VerifyOptions};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let mut opts = VerifyOptions::default();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--strict" => opts.strict = true,
            "--threads" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => opts.threads = n,
                None => {
                    eprintln!("--threads needs a number");
                    return ExitCode::from(2);
                }
            },
            _ => path = Some(a),
        }
    }
    let Some(path) = path else {
        eprintln!("usage: audit_verify PATH [--threads N] [--strict]");
        return ExitCode::from(2);
    };
    let log = match AuditFile::open(&path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("audit_verify: {e}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    let report = match log.verify_with(&opts, None, &mut |_, _| {}) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("audit_verify: {e}");
            return ExitCode::from(2);
        }
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "entries={} seconds={secs:.3} entries_per_sec={:.0} ok={}",
        report.entries,
        report.entries as f64 / secs,
        report.ok
    );
    if let Some(p) = &report.problem {
        eprintln!("{p}");
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
