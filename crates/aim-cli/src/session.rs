//! The saved login session of the admin commands, and how they reach the server.
//!
//! `$OPENA2A_HOME/aim-cli/session.json` holds the server URL, the pinned CA file (if any), the
//! email and the current token pair. Invariants:
//! - the file is mode 0600 in a 0700 directory, written atomically (temp + fsync + rename), and
//!   refused (like an ssh key) when group or others can read it;
//! - it always holds the newest refresh token: every rotation done by `aim-client` is saved
//!   before the command goes on (a stale refresh token, presented again, would be taken by the
//!   server for theft and end the session).
//!
//! `AIM_API_KEY` (an `aim_live_…` key) replaces the session for every command but `login`,
//! `logout` and `user change-password` (API keys cannot use account self-service routes).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aim_client::{Client, Credential, Session};
use anyhow::{Context, bail};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::ctx::Ctx;

/// Environment variable holding an API key used instead of the session.
pub const API_KEY_ENV: &str = "AIM_API_KEY";

/// Where to reach the server (shared by every admin command).
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// Server URL, e.g. https://aim.example.com:8080 (default: the saved session's).
    #[arg(long, env = "AIM_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// PEM CA certificate to trust (pin) for HTTPS, e.g. the self-signed certificate the server
    /// wrote under its data root (default: the saved session's, else the system trust store).
    #[arg(long, env = "AIM_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// `session.json`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionFile {
    pub server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    pub email: String,
    #[serde(flatten)]
    pub session: Session,
}

/// `$OPENA2A_HOME/aim-cli/session.json`.
pub fn path(ctx: &Ctx) -> PathBuf {
    ctx.home.join("aim-cli").join("session.json")
}

/// Writes the session file (0600, atomic).
pub fn save(path: &Path, f: &SessionFile) -> anyhow::Result<()> {
    let dir = path.parent().context("session path has no directory")?;
    aim_core::fsio::ensure_private_dir(dir)?;
    let bytes = serde_json::to_vec_pretty(f)?;
    aim_core::fsio::atomic_write(path, &bytes, aim_core::fsio::SECRET_FILE_MODE)?;
    Ok(())
}

/// Reads the session file, or `None` when there is none.
pub fn load(path: &Path) -> anyhow::Result<Option<SessionFile>> {
    if !path.exists() {
        return Ok(None);
    }
    aim_core::fsio::check_private(path)?;
    let text = aim_core::fsio::read_text(path, 64 * 1024)?;
    let f = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a valid session file (run `opena2a login` again)",
            path.display()
        )
    })?;
    Ok(Some(f))
}

/// Removes the session file (no error when absent).
pub fn remove(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::anyhow!("cannot remove {}: {e}", path.display())),
    }
}

/// A client for a login: no credential yet; every new session is saved at once.
pub fn client_for_login(
    ctx: &Ctx,
    server: &str,
    ca_cert: Option<&Path>,
    email: &str,
) -> anyhow::Result<Client> {
    let file = path(ctx);
    let server_s = server.trim_end_matches('/').to_string();
    let ca = ca_cert.map(Path::to_path_buf);
    let email = email.to_string();
    let mut b =
        Client::builder(server_s.clone()).on_session_change(saver(file, move |s| SessionFile {
            server: server_s.clone(),
            ca_cert: ca.clone(),
            email: email.clone(),
            session: s.clone(),
        }));
    if let Some(ca) = ca_cert {
        b = b.ca_cert_file(ca);
    }
    Ok(b.build()?)
}

fn saver(
    file: PathBuf,
    make: impl Fn(&Session) -> SessionFile + Send + Sync + 'static,
) -> aim_client::SessionListener {
    Arc::new(move |s: &Session| {
        if let Err(e) = save(&file, &make(s)) {
            // The command goes on with the new tokens; the next one will need a new login.
            eprintln!(
                "warning: cannot save the session to {}: {e:#}",
                file.display()
            );
        }
    })
}

/// How a command is authenticated.
pub enum Auth {
    /// `AIM_API_KEY`.
    ApiKey,
    /// The saved session.
    Session,
}

/// A client for an admin command: `AIM_API_KEY` when set, else the saved session (with
/// rotations saved back to the file).
pub fn connect(ctx: &Ctx, remote: &RemoteArgs) -> anyhow::Result<(Client, Auth)> {
    let file = path(ctx);
    let saved = load(&file)?;
    if let Some(key) = std::env::var(API_KEY_ENV).ok().filter(|k| !k.is_empty()) {
        let server = remote
            .server
            .clone()
            .or_else(|| saved.as_ref().map(|s| s.server.clone()))
            .with_context(|| {
                format!("{API_KEY_ENV} is set but no server is known: pass --server URL or set AIM_SERVER")
            })?;
        // The saved CA belongs to the saved server only.
        let ca = remote.ca_cert.clone().or_else(|| {
            saved
                .as_ref()
                .filter(|s| s.server == server.trim_end_matches('/'))
                .and_then(|s| s.ca_cert.clone())
        });
        let mut b = Client::builder(server).credential(Credential::ApiKey(SecretString::from(key)));
        if let Some(ca) = ca {
            b = b.ca_cert_file(ca);
        }
        return Ok((b.build()?, Auth::ApiKey));
    }
    let Some(saved) = saved else {
        bail!("not logged in: run `opena2a login --server URL` (or set {API_KEY_ENV})");
    };
    if let Some(s) = &remote.server
        && s.trim_end_matches('/') != saved.server
    {
        bail!(
            "the saved session is for {}, not {s}: run `opena2a login --server {s}`",
            saved.server
        );
    }
    let ca = remote.ca_cert.clone().or_else(|| saved.ca_cert.clone());
    let template = saved.clone();
    let mut b = Client::builder(saved.server.clone())
        .credential(Credential::Session(saved.session.clone()))
        .on_session_change(saver(file, move |s| SessionFile {
            session: s.clone(),
            ..template.clone()
        }));
    if let Some(ca) = ca {
        b = b.ca_cert_file(ca);
    }
    Ok((b.build()?, Auth::Session))
}

/// A single-threaded runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Turns a client error into the CLI's one-sentence error, with a hint for the codes a user can
/// act on.
pub fn explain(e: aim_client::Error) -> anyhow::Error {
    let hint = match e.code() {
        Some("password_change_required") => {
            Some("your password is a one-time password: run `opena2a user change-password`")
        }
        Some("totp_enrollment_required") => Some(
            "this organization requires 2FA for admins: enroll TOTP first (POST /api/v1/auth/totp/enroll)",
        ),
        Some("session_expired") => Some("run `opena2a login` again"),
        Some("session_required") => {
            Some("this needs a login session, not an API key: unset AIM_API_KEY and log in")
        }
        _ => None,
    };
    match hint {
        Some(h) => anyhow::anyhow!("{e} — {h}"),
        None => anyhow::Error::new(e),
    }
}
