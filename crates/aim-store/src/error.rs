//! The one error type of `aim-store`.

/// Result alias used throughout `aim-store`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A uniqueness constraint refused the write (e.g. an email already in use).
    #[error("{what} already exists")]
    Conflict { what: &'static str },

    /// The database answered with an error or could not be reached.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),

    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// A stored value does not have the shape the code expects (e.g. an unknown role name).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),

    /// The database URL or path cannot be used.
    #[error("invalid database location: {0}")]
    Location(String),

    /// The caller asked for something that cannot exist (e.g. a proof for a tree size larger than
    /// the log). Servers map this to 400.
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return Error::Conflict { what: "record" };
        }
        Error::Database(e)
    }
}
