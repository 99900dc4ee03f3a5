//! Shared command context: where the data root is, how to print, how to exit.

use std::path::PathBuf;
use std::process::ExitCode;

/// What a command concluded. Errors (exit 2) travel as `anyhow::Error` instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: a negative verdict (invalid signature, broken chain, rejected response).
    Negative,
    /// Exit 3: a human must approve first (`policy check` → require_approval).
    ApprovalRequired,
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Negative => ExitCode::from(1),
            Outcome::ApprovalRequired => ExitCode::from(3),
        }
    }
}

/// Per-invocation context.
#[derive(Debug)]
pub struct Ctx {
    /// The data root (`$OPENA2A_HOME`, default `~/.opena2a`).
    pub home: PathBuf,
    /// Print JSON instead of human text.
    pub json: bool,
}

impl Ctx {
    pub fn new(home: Option<PathBuf>, json: bool) -> anyhow::Result<Self> {
        let home = match home.or_else(|| std::env::var_os("OPENA2A_HOME").map(PathBuf::from)) {
            Some(h) => h,
            None => {
                let base = std::env::var_os("HOME").ok_or_else(|| {
                    anyhow::anyhow!("neither OPENA2A_HOME nor HOME is set; pass --home DIR")
                })?;
                PathBuf::from(base).join(".opena2a")
            }
        };
        Ok(Ctx { home, json })
    }

    /// Prints a JSON value on stdout (pretty, one document).
    pub fn print_json(&self, v: &serde_json::Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
        );
    }
}

/// Prints an error as one sentence on stderr and returns exit code 2.
pub fn report_error(e: &anyhow::Error) -> ExitCode {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        msg.push_str(": ");
        msg.push_str(&cause.to_string());
    }
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

impl Ctx {
    /// The identity store of this data root.
    pub fn store(&self) -> aim_core::identity::IdentityStore {
        aim_core::identity::IdentityStore::new(&self.home)
    }

    /// Key-encryption keys for this data root (passphrase from `OPENA2A_PASSPHRASE`, else the
    /// data-root key file).
    pub fn keyring(&self) -> aim_core::seal::Keyring {
        aim_core::seal::Keyring::from_env(self.store().core_dir())
    }

    /// `$OPENA2A_HOME/aim-core/audit.jsonl`.
    pub fn audit_path(&self) -> PathBuf {
        self.store().core_dir().join("audit.jsonl")
    }

    /// The local audit log.
    pub fn audit_file(&self) -> anyhow::Result<aim_core::audit::file::AuditFile> {
        Ok(aim_core::audit::file::AuditFile::open(self.audit_path())?)
    }

    /// Appends one entry to the local audit log. A failure here fails the command (exit 2): an
    /// action that cannot be recorded is reported, never silently left unaudited.
    pub fn record(
        &self,
        event_type: &str,
        actor: Option<&str>,
        subject: Option<&str>,
        details: serde_json::Value,
    ) -> anyhow::Result<()> {
        let new = aim_core::audit::chain::NewEntry {
            event_type: event_type.to_string(),
            actor: actor.map(str::to_string),
            subject: subject.map(str::to_string),
            details,
        };
        self.audit_file()?
            .append(new, &aim_core::clock::SystemClock)
            .map_err(|e| {
                anyhow::anyhow!(
                    "the action was done but could not be recorded in the audit log: {e}"
                )
            })?;
        Ok(())
    }
}

/// The current time (the CLI uses the system clock).
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use aim_core::clock::Clock;
    aim_core::clock::SystemClock.now()
}

/// Reads the bytes named by `--data TEXT` / `--file PATH` (`-` = stdin).
pub fn read_input(data: Option<&str>, file: Option<&std::path::Path>) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    match (data, file) {
        (Some(d), None) => Ok(d.as_bytes().to_vec()),
        (None, Some(p)) if p.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            Ok(buf)
        }
        (None, Some(p)) => {
            std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
        }
        _ => anyhow::bail!("give exactly one of --data or --file"),
    }
}

/// Writes `text` to `out` atomically (mode `mode`), or to stdout when `out` is `None`.
pub fn write_output(out: Option<&std::path::Path>, text: &str, mode: u32) -> anyhow::Result<()> {
    match out {
        Some(p) => Ok(aim_core::fsio::atomic_write(p, text.as_bytes(), mode)?),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// Reads and parses a small JSON file given on the command line.
pub fn read_json_file<T: serde::de::DeserializeOwned>(
    what: &str,
    path: &std::path::Path,
) -> anyhow::Result<T> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s
    } else {
        aim_core::fsio::read_text(path, 16 * 1024 * 1024)?
    };
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a valid {what}: {e}", path.display()))
}
