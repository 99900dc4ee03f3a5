//! Verifies an audit log through the library and prints entries/s: `audit_verify PATH`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: audit_verify PATH");
        std::process::exit(2);
    };
    let log = aim_core::audit::file::AuditFile::open(path)?;
    let t = std::time::Instant::now();
    let r = log.verify(None, &mut |_, _| {})?;
    let secs = t.elapsed().as_secs_f64();
    println!("ok={} entries={} seconds={secs:.3} entries_per_s={:.0}", r.ok, r.entries, r.entries as f64 / secs);
    Ok(())
}
