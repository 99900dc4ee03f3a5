//! One module per top-level subcommand.

pub mod agent;
pub mod api_key;
pub mod audit;
pub mod audit_server;
pub mod conformance;
pub mod credential;
pub mod identity;
pub mod login;
pub mod mcp;
pub mod mcp_server;
pub mod org;
pub mod peer;
pub mod policy;
pub mod server;
pub mod user;
