//! CA pinning over real TLS: a TLS endpoint (tokio-rustls, test certificate) forwards to the test
//! server. Negative cases first: no pinned CA, and the wrong CA, are refused.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use aim_client::{Client, Error};
use aim_server::testkit::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer};
use reqwest::Method;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A TLS endpoint on 127.0.0.1 that forwards every connection to `upstream`.
async fn tls_front(upstream: SocketAddr) -> SocketAddr {
    let certs = CertificateDer::pem_file_iter(fixture("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    // Explicit provider: the workspace enables both rustls providers (ring for the server,
    // aws-lc-rs through reqwest), so the process-wide default cannot be inferred.
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await
                    && let Ok(mut up) = TcpStream::connect(upstream).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                }
            });
        }
    });
    addr
}

async fn health(c: &Client) -> aim_client::Result<Value> {
    c.call_json(Method::GET, "/health", None, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_ca_is_required_and_sufficient() {
    let ts = TestServer::sqlite().await.unwrap();
    let front = tls_front(ts.server.addr).await;
    let url = format!("https://127.0.0.1:{}", front.port());

    // No pinned CA: the platform trust store does not know the test CA.
    let c = Client::builder(url.clone()).build().unwrap();
    assert!(
        matches!(health(&c).await, Err(Error::Transport { .. })),
        "an unknown CA must be refused"
    );
    // Pinned to another CA: refused too.
    let c = Client::builder(url.clone())
        .ca_cert_file(fixture("other-ca.pem"))
        .build()
        .unwrap();
    let e = c
        .login(ADMIN_EMAIL, &ADMIN_PASSWORD.to_string().into(), None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e}");
    assert!(c.session().is_none());

    // Pinned to the right CA: works, including a whole login.
    let c = Client::builder(url.clone())
        .ca_cert_file(fixture("ca.pem"))
        .build()
        .unwrap();
    assert_eq!(health(&c).await.unwrap()["status"], "healthy");
    c.login(ADMIN_EMAIL, &ADMIN_PASSWORD.to_string().into(), None)
        .await
        .unwrap();
    assert_eq!(c.me().await.unwrap().email, ADMIN_EMAIL);
    ts.stop().await;
}
