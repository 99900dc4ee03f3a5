//! The crate's single error enum.
//!
//! Every variant is a *client* mistake (a malformed capability, a policy that does not parse or
//! does not validate, bad YAML, a malformed request) except [`Error::Internal`]. The server maps
//! the client variants to HTTP 400 carrying [`std::fmt::Display`] of the error, which includes
//! Cedar's own message.

/// Errors of `aim-policy`.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// A capability or grant string does not follow the grammar (see [`crate::capability`]).
    #[error("invalid capability {input:?}: {reason}")]
    Capability { input: String, reason: String },
    /// Cedar policy text that does not parse, or uses a construct AIM refuses (templates,
    /// duplicate ids, a misplaced AIM annotation, an action that is not a capability).
    #[error("invalid Cedar policy: {0}")]
    PolicySyntax(String),
    /// Cedar policy text that parses but does not validate against the AIM schema (for example
    /// a policy reading an attribute the schema does not declare). Carries Cedar's messages.
    #[error("policy does not validate against the AIM schema: {0}")]
    PolicyValidation(String),
    /// AIP governance YAML that is malformed or uses an unknown field or action.
    #[error("invalid governance YAML: {0}")]
    Governance(String),
    /// A decision request with a malformed field (trust score out of range, bad address…).
    #[error("invalid request: {0}")]
    Request(String),
    /// A bug in this crate (the built-in schema failed to build). Never caused by input.
    #[error("internal policy engine error: {0}")]
    Internal(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
