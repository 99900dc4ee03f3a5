//! The crate's one error type.

/// Why an alert could not be delivered or a signature did not verify.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `X-AIM-Signature` header is missing parts or is not in the documented form.
    #[error("malformed signature header: {0}")]
    MalformedSignature(String),
    /// The MAC does not match the body and timestamp.
    #[error("signature does not match")]
    BadSignature,
    /// The signed timestamp is outside the receiver's tolerance (replay defence).
    #[error("signature timestamp is {0} s away from now, outside the tolerance")]
    StaleTimestamp(i64),
    /// A configuration value is unusable (URL, address, TLS file).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Network or protocol failure of one attempt.
    #[error("delivery failed: {0}")]
    Delivery(String),
    /// The receiver answered with a non-2xx status.
    #[error("receiver answered HTTP {0}")]
    Status(u16),
}

pub type Result<T> = std::result::Result<T, Error>;
