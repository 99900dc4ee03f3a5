//! The one error type of `aim-core`.
//!
//! Every variant carries enough context to tell the user what was wrong and, where it helps, what
//! to do. Verdicts (an invalid signature, a broken audit chain, a rejected challenge response) are
//! *not* errors: they are returned as values so callers can report them with exit code 1 rather
//! than 2.

use std::path::PathBuf;

/// Result alias used throughout `aim-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `aim-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file or directory holding secret material is accessible to group or others.
    #[error(
        "{path} is accessible by group or others (mode {mode:o}); refusing to use it. Run `chmod {wanted:o} {path}`"
    )]
    InsecurePermissions {
        path: PathBuf,
        mode: u32,
        wanted: u32,
    },

    /// Input that does not have the expected shape (bad base64, wrong key length, bad JSON...).
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },

    /// A named or identified object does not exist.
    #[error("{what} not found: {name}")]
    NotFound { what: &'static str, name: String },

    /// An object with the same name or id already exists.
    #[error("{what} already exists: {name}")]
    AlreadyExists { what: &'static str, name: String },

    /// A name matches several objects; the caller must use the id.
    #[error("{what} name {name:?} is ambiguous ({count} matches); use the id instead")]
    Ambiguous {
        what: &'static str,
        name: String,
        count: usize,
    },

    /// The operation is not allowed in the object's current state (e.g. signing with a revoked identity).
    #[error("{0}")]
    State(String),

    /// Decryption of data at rest failed: wrong passphrase or key file, or the file was modified.
    #[error("cannot decrypt {path}: wrong passphrase or key file, or the file was tampered with")]
    Decrypt { path: PathBuf },

    /// A cryptographic primitive failed in a way that is not a verdict (e.g. RNG or KDF failure).
    #[error("cryptographic failure: {0}")]
    Crypto(String),
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Error::Invalid {
            what,
            reason: reason.to_string(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
