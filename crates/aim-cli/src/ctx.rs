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
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Negative => ExitCode::from(1),
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
