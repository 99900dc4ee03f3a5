//! `aim-client`: a typed async client for the AIM server's HTTP API.
//!
//! - [`client`]: [`Client`] (built with [`Client::builder`]) with auth (login with optional TOTP
//!   code, refresh, logout, me, change-password, TOTP enrollment), users, API keys and the
//!   organization. A session's refresh token is rotated automatically when the access token has
//!   expired (ahead of time by the client's clock, and after a 401 by the server's), and the new
//!   pair is handed to a listener so it can be persisted at once.
//! - [`model`]: the wire types.
//! - [`error`]: the one error enum; [`Error::Api`] carries the server's `code`, `message` and
//!   HTTP status.
//!
//! TLS is rustls (reqwest's `rustls` feature, aws-lc-rs provider). [`ClientBuilder::ca_cert_file`] pins a PEM CA file
//! (for a server with a self-signed certificate); otherwise the platform trust store is used.

pub mod client;
pub mod error;
pub mod model;

pub use client::{Client, ClientBuilder, Credential, Session, SessionListener};
pub use error::{Error, Result};
pub use model::*;
