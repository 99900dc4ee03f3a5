//! One module per top-level subcommand.

pub mod audit;
pub mod conformance;
pub mod credential;
pub mod identity;
pub mod peer;
pub mod policy;
pub mod server;
