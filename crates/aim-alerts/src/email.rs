//! Alert email over SMTP (lettre).
//!
//! Security modes: `tls` (implicit TLS, usually port 465), `starttls` (upgrade required, usually
//! 587 — the connection fails rather than sending in clear if the server does not offer it) and
//! `none` (clear text; for a relay on loopback only — documented as such). An extra CA
//! certificate (PEM) can be trusted for relays with a private CA. TLS uses rustls.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::Alert;
use crate::error::{Error, Result};

/// Transport security towards the SMTP relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    None,
    StartTls,
    Tls,
}

/// SMTP relay settings.
#[derive(Clone, Serialize, Deserialize)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    /// Never logged (`Debug` hides it).
    pub password: Option<String>,
    /// `Name <address>` or a bare address.
    pub from: String,
    /// Extra trusted CA certificate, PEM.
    pub ca_cert_pem: Option<String>,
    pub timeout_secs: u64,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .finish()
    }
}

/// Parses a recipient (`addr@domain` or `Name <addr@domain>`) the way [`Mailer::send_alert`]
/// will, so routes can be validated when they are saved.
pub fn parse_recipient(addr: &str) -> Result<Mailbox> {
    addr.parse()
        .map_err(|e| Error::Config(format!("recipient {addr:?}: {e}")))
}

/// A configured sender.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// Validates the settings and builds the transport (no connection is made yet).
    pub fn new(cfg: &SmtpConfig) -> Result<Mailer> {
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| Error::Config(format!("from address {:?}: {e}", cfg.from)))?;
        let tls_params = || -> Result<TlsParameters> {
            let mut b = TlsParameters::builder(cfg.host.clone());
            if let Some(pem) = &cfg.ca_cert_pem {
                let cert = Certificate::from_pem(pem.as_bytes())
                    .map_err(|e| Error::Config(format!("CA certificate: {e}")))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls()
                .map_err(|e| Error::Config(format!("TLS parameters: {e}")))
        };
        let tls = match cfg.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::StartTls => Tls::Required(tls_params()?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_params()?),
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(cfg.timeout_secs.max(1))));
        match (&cfg.username, &cfg.password) {
            (Some(u), Some(p)) => b = b.credentials(Credentials::new(u.clone(), p.clone())),
            (None, None) => {}
            _ => {
                return Err(Error::Config(
                    "SMTP username and password must be given together".into(),
                ));
            }
        }
        Ok(Mailer {
            transport: b.build(),
            from,
        })
    }

    /// Sends `alert` to every recipient (one message, all in To).
    pub async fn send_alert(&self, to: &[String], alert: &Alert) -> Result<()> {
        if to.is_empty() {
            return Err(Error::Config("no recipients".into()));
        }
        let mut m = Message::builder().from(self.from.clone()).subject(format!(
            "[AIM {}] {}",
            alert.severity.as_str().to_uppercase(),
            alert.title
        ));
        for r in to {
            m = m.to(parse_recipient(r)?);
        }
        let msg = m
            .body(render_text(alert))
            .map_err(|e| Error::Config(format!("message: {e}")))?;
        self.transport
            .send(msg)
            .await
            .map_err(|e| Error::Delivery(format!("SMTP: {e}")))?;
        Ok(())
    }
}

/// The plain-text body of an alert email.
pub fn render_text(a: &Alert) -> String {
    let details = serde_json::to_string_pretty(&a.details).unwrap_or_default();
    format!(
        "Severity: {}\nKind: {}\nOrganization: {}\nAgent: {}\nTime: {}\nAlert id: {}\n\n{}\n\nDetails:\n{}\n",
        a.severity.as_str(),
        a.kind,
        a.organization_id,
        a.agent_id.as_deref().unwrap_or("-"),
        a.created_at,
        a.id,
        a.title,
        details
    )
}
