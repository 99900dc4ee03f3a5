//! The crate's single error enum. Verdicts (a bad signature, drift) are values, not errors.

/// Errors of the MCP library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Input (a config, a manifest, a server answer) is malformed.
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    /// The MCP server did not answer in time.
    #[error("timed out after {0:?} waiting for the MCP server ({1})")]
    Timeout(std::time::Duration, String),
    /// The MCP server could not be started or the connection failed.
    #[error("MCP transport error: {0}")]
    Transport(String),
    /// The MCP server answered a request with a JSON-RPC error.
    #[error("MCP server returned error {code} for {method}: {message}")]
    Rpc {
        method: String,
        code: i64,
        message: String,
    },
    /// Something the caller asked for does not exist (a pin, a server name).
    #[error("{0}")]
    NotFound(String),
    /// An error from aim-core (keys, canonical JSON, files).
    #[error(transparent)]
    Core(#[from] aim_core::Error),
}

impl Error {
    pub(crate) fn invalid(what: &'static str, detail: impl std::fmt::Display) -> Self {
        Error::Invalid {
            what,
            detail: detail.to_string(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
