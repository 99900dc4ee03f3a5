//! The one error type of `aim-client`.

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error body `{"error": code, "message": …}` (or at least a
    /// non-success status). `code` is the API's stable machine code (`invalid_credentials`,
    /// `forbidden`, `password_change_required`, …).
    #[error("server refused ({status} {code}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The API's machine-readable code (`"http_<status>"` when the body had none).
        code: String,
        /// The API's human message.
        message: String,
    },

    /// The server could not be reached, or the connection failed (TLS, DNS, timeout…).
    #[error("cannot reach the server at {url}: {detail}")]
    Transport {
        /// The URL that was being called.
        url: String,
        /// What went wrong.
        detail: String,
    },

    /// The client was configured wrongly (bad base URL, unreadable or invalid CA file…).
    #[error("client configuration: {0}")]
    Config(String),

    /// A success answer did not have the documented shape.
    #[error("unexpected answer from {url}: {detail}")]
    Decode {
        /// The URL that was called.
        url: String,
        /// What did not parse.
        detail: String,
    },

    /// The call needs credentials (a session or an API key) and the client has none.
    #[error("not logged in: run `opena2a login --server URL` or set AIM_API_KEY")]
    NotAuthenticated,
}

impl Error {
    /// The API's error code, when the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;
