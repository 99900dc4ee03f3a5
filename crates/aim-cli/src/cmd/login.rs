//! `opena2a login` / `opena2a logout`: a session with an AIM server, saved for the admin commands.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use secrecy::SecretString;
use serde_json::json;

use crate::ctx::{Ctx, Outcome};
use crate::session::{self, RemoteArgs, explain};

/// Environment variable holding the password for non-interactive login.
pub const PASSWORD_ENV: &str = "AIM_PASSWORD";
/// Environment variable holding the new password for non-interactive `user change-password`.
pub const NEW_PASSWORD_ENV: &str = "AIM_NEW_PASSWORD";

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Account email (prompted for on a terminal when absent).
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,
    /// Read the password from the first line of stdin (else $AIM_PASSWORD, else a prompt).
    #[arg(long)]
    pub password_stdin: bool,
    /// TOTP code (else $AIM_TOTP_CODE; prompted for on a terminal when the server asks).
    #[arg(
        long,
        env = "AIM_TOTP_CODE",
        value_name = "CODE",
        hide_env_values = true
    )]
    pub totp_code: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {}

fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Reads one line of stdin (without its line ending).
pub fn stdin_line(what: &str) -> anyhow::Result<SecretString> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("cannot read the {what} from stdin"))?;
    let trimmed = line.trim_end_matches(['\r', '\n']).to_string();
    if trimmed.is_empty() {
        bail!("no {what} on stdin");
    }
    Ok(SecretString::from(trimmed))
}

/// A secret from `env`, else a no-echo prompt on a terminal, else an error naming both ways.
pub fn secret_from_env_or_prompt(env: &str, prompt: &str) -> anyhow::Result<SecretString> {
    if let Some(v) = std::env::var(env).ok().filter(|v| !v.is_empty()) {
        return Ok(SecretString::from(v));
    }
    if interactive() {
        let v = rpassword::prompt_password(prompt).context("cannot read from the terminal")?;
        if v.is_empty() {
            bail!("empty input");
        }
        return Ok(SecretString::from(v));
    }
    bail!("no terminal to prompt on: set {env} (or use --password-stdin)")
}

/// A new password: `AIM_NEW_PASSWORD`, else typed twice on a terminal.
pub fn new_password() -> anyhow::Result<SecretString> {
    if let Some(v) = std::env::var(NEW_PASSWORD_ENV)
        .ok()
        .filter(|v| !v.is_empty())
    {
        return Ok(SecretString::from(v));
    }
    if !interactive() {
        bail!("no terminal to prompt on: set {NEW_PASSWORD_ENV}");
    }
    let a =
        rpassword::prompt_password("New password: ").context("cannot read from the terminal")?;
    let b = rpassword::prompt_password("New password again: ")
        .context("cannot read from the terminal")?;
    if a != b {
        bail!("the two passwords differ");
    }
    Ok(SecretString::from(a))
}

pub fn login(ctx: &Ctx, args: LoginArgs) -> anyhow::Result<Outcome> {
    let Some(server) = args.remote.server.clone() else {
        bail!("--server URL is required (or set AIM_SERVER)");
    };
    let ca = match &args.remote.ca_cert {
        Some(p) => Some(
            std::fs::canonicalize(p)
                .with_context(|| format!("cannot read CA file {}", p.display()))?,
        ),
        None => None,
    };
    let email = match args.email.clone() {
        Some(e) => e,
        None if interactive() => {
            eprint!("Email: ");
            let mut e = String::new();
            std::io::stdin().lock().read_line(&mut e)?;
            e.trim().to_string()
        }
        None => bail!("--email is required when not on a terminal"),
    };
    if email.is_empty() {
        bail!("an email is required");
    }
    let password = if args.password_stdin {
        stdin_line("password")?
    } else {
        secret_from_env_or_prompt(PASSWORD_ENV, "Password: ")?
    };
    warn_plain_http(&server);
    let client = session::client_for_login(ctx, &server, ca.as_deref(), &email)?;
    let rt = session::runtime()?;
    let pair = rt.block_on(async {
        match client
            .login(&email, &password, args.totp_code.as_deref())
            .await
        {
            Err(e) if e.code() == Some("totp_required") && interactive() => {
                let code = rpassword::prompt_password("TOTP code: ")
                    .context("cannot read from the terminal")?;
                client
                    .login(&email, &password, Some(code.trim()))
                    .await
                    .map_err(explain)
            }
            Err(e) if e.code() == Some("totp_required") => Err(anyhow::anyhow!(
                "{e} — pass --totp-code CODE or set AIM_TOTP_CODE"
            )),
            other => other.map_err(explain),
        }
    })?;
    let mut password_change_required = pair.password_change_required;
    if password_change_required {
        if interactive() && !args.password_stdin && std::env::var_os(PASSWORD_ENV).is_none() {
            eprintln!("This account has a one-time password; choose a new one now.");
            let new = new_password()?;
            rt.block_on(client.change_password(&password, &new))
                .map_err(explain)?;
            password_change_required = false;
            if !ctx.json {
                eprintln!("Password changed.");
            }
        } else {
            eprintln!(
                "warning: this account has a one-time password that must be changed before anything else works: run `opena2a user change-password`"
            );
        }
    }
    if pair.totp_enrollment_required {
        eprintln!(
            "warning: this organization requires 2FA for admins; enroll TOTP before anything else works"
        );
    }
    let me = rt.block_on(client.me()).map_err(explain)?;
    let file = session::path(ctx);
    if ctx.json {
        ctx.print_json(&json!({
            "server": client.base_url(),
            "email": me.email,
            "userId": me.id,
            "orgId": me.org_id,
            "role": me.role,
            "passwordChangeRequired": password_change_required,
            "totpEnrollmentRequired": pair.totp_enrollment_required,
            "sessionFile": file,
        }));
    } else {
        println!(
            "Logged in to {} as {} ({}). Session saved to {}.",
            client.base_url(),
            me.email,
            me.role,
            file.display()
        );
    }
    // Nothing secret was printed; make sure the password is dropped (zeroized) now.
    drop(password);
    Ok(Outcome::Success)
}

pub fn logout(ctx: &Ctx, _args: LogoutArgs) -> anyhow::Result<Outcome> {
    let file = session::path(ctx);
    let Some(saved) = session::load(&file)? else {
        if ctx.json {
            ctx.print_json(&json!({ "loggedOut": false, "reason": "not logged in" }));
        } else {
            println!("Not logged in.");
        }
        return Ok(Outcome::Success);
    };
    // The session file, not AIM_API_KEY: logout ends the saved session.
    let client = {
        let mut b = aim_client::Client::builder(saved.server.clone())
            .credential(aim_client::Credential::Session(saved.session.clone()));
        if let Some(ca) = &saved.ca_cert {
            b = b.ca_cert_file(ca);
        }
        b.build()?
    };
    let rt = session::runtime()?;
    let result = rt.block_on(client.logout());
    // The local session goes in every case: a dead or unreachable session is useless.
    session::remove(&file)?;
    match result {
        Ok(()) | Err(aim_client::Error::Api { status: 401, .. }) => {}
        Err(e) => eprintln!(
            "warning: the server did not confirm the logout ({e}); the local session was removed"
        ),
    }
    if ctx.json {
        ctx.print_json(&json!({ "loggedOut": true, "server": saved.server }));
    } else {
        println!("Logged out of {}.", saved.server);
    }
    Ok(Outcome::Success)
}

/// Plain HTTP is fine on loopback (the server's default listen address); anywhere else the
/// password and tokens would cross the network in clear.
fn warn_plain_http(server: &str) {
    let Some(rest) = server.strip_prefix("http://") else {
        return;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        eprintln!(
            "warning: {server} is not HTTPS: the password and tokens cross the network unencrypted"
        );
    }
}
