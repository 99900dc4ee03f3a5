//! One module per top-level subcommand.

pub mod agent;
pub mod audit;
pub mod audit_server;
pub mod conformance;
pub mod credential;
pub mod identity;
pub mod peer;
pub mod server;
