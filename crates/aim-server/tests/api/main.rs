//! Integration tests: the real server on an ephemeral port, over real HTTP, on SQLite and on
//! PostgreSQL (`AIM_TEST_POSTGRES_URL`; skipped loudly when unset). Negative cases first.

mod common;

mod actions;
mod agents;
mod api_keys;
mod audit;
mod auth;
mod capabilities;
mod credentials;
mod mcp;
mod monitoring;
mod openapi;
mod ops;
mod policies;
mod rbac;
mod sdk;
mod totp;
mod trust;
mod users;
