//! Transport security: TLS 1.3 only (rustls, `ring` provider), from PEM files or a self-signed
//! certificate generated once under the data root.
//!
//! Invariants:
//! - The server configuration offers exactly one protocol version, TLS 1.3; a client that only
//!   speaks TLS 1.2 fails the handshake.
//! - Plain HTTP is allowed only on a loopback address, or when the operator says
//!   `--insecure-http` (a TLS-terminating proxy in front). [`check_plain_http_allowed`] enforces it
//!   before binding.
//! - The self-signed pair is written atomically (temporary file + rename in the same directory),
//!   key with mode 0600, and reused on later starts, so clients can pin the certificate
//!   (`$OPENA2A_HOME/aim-server/tls/self-signed.crt`).
//! - A slow or failing handshake never blocks other connections: handshakes run in their own
//!   tasks with a timeout; the listener only hands finished TLS streams to the HTTP server.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::Config;
use crate::error::Error;

/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where `--tls-self-signed` keeps its certificate and key.
pub fn self_signed_paths(home: &Path) -> (PathBuf, PathBuf) {
    let dir = home.join("aim-server").join("tls");
    (dir.join("self-signed.crt"), dir.join("self-signed.key"))
}

/// Refuses plain HTTP on a non-loopback address unless `insecure_http` is set.
pub fn check_plain_http_allowed(config: &Config) -> Result<(), Error> {
    let tls = config.ops.tls_cert.is_some() || config.ops.tls_self_signed;
    if tls || config.ops.insecure_http || config.listen.ip().is_loopback() {
        return Ok(());
    }
    Err(Error::Config(format!(
        "refusing to listen on {} without TLS: give --tls-cert FILE --tls-key FILE (or \
         --tls-self-signed), or --insecure-http if a TLS-terminating proxy is in front",
        config.listen
    )))
}

/// The rustls configuration, or `None` for plain HTTP.
pub fn server_config(config: &Config) -> Result<Option<Arc<ServerConfig>>, Error> {
    let (cert, key) = match (&config.ops.tls_cert, &config.ops.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ if config.ops.tls_self_signed => ensure_self_signed(&config.home)?,
        _ => return Ok(None),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .map_err(|e| Error::Config(format!("TLS certificate {}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Config(format!("TLS certificate {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "TLS certificate {}: no CERTIFICATE block found",
            cert.display()
        )));
    }
    let private = PrivateKeyDer::from_pem_file(&key)
        .map_err(|e| Error::Config(format!("TLS key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs.clone(), private)
        .map_err(|e| Error::Config(format!("TLS certificate/key pair: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    tracing::info!(
        cert = %cert.display(),
        sha256 = %hex::encode(Sha256::digest(certs[0].as_ref())),
        "TLS 1.3 enabled"
    );
    Ok(Some(Arc::new(cfg)))
}

/// Returns the self-signed pair, generating it on first use.
pub fn ensure_self_signed(home: &Path) -> Result<(PathBuf, PathBuf), Error> {
    let (cert, key) = self_signed_paths(home);
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let dir = cert.parent().unwrap_or(home);
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| Error::Crypto(format!("self-signed certificate: {e}")))?;
    let key_pem = zeroize::Zeroizing::new(ck.signing_key.serialize_pem());
    write_atomic(&key, key_pem.as_bytes(), true)?;
    write_atomic(&cert, ck.cert.pem().as_bytes(), false)?;
    tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate");
    Ok((cert, key))
}

fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Io(format!("cannot write {}: {e}", path.display()));
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if private { 0o600 } else { 0o644 };
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// A listener yielding finished TLS 1.3 streams.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> TlsListener {
        TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(config),
            handshakes: JoinSet::new(),
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                r = self.tcp.accept() => match r {
                    Ok((stream, peer)) => {
                        let acceptor = self.acceptor.clone();
                        self.handshakes.spawn(async move {
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => Some((tls, peer)),
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                    None
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    None
                                }
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(conn)) = done {
                        return conn;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
