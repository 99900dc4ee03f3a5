//! The one error type of `aim-server`, and its mapping to HTTP answers.
//!
//! Client mistakes map to 4xx with a stable `error` code; only server faults map to 500, and their
//! details go to the log, never to the client.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Everything that can go wrong in the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot be used.
    #[error("configuration: {0}")]
    Config(String),

    /// A file or socket operation failed at start-up.
    #[error("{0}")]
    Io(String),

    /// The store failed.
    #[error(transparent)]
    Store(#[from] aim_store::Error),

    /// A cryptographic operation failed (not a verdict).
    #[error("cryptographic failure: {0}")]
    Crypto(String),

    /// A client-visible refusal (4xx).
    #[error("{}: {}", .0.code, .0.message)]
    Api(ApiError),

    /// A server component cannot serve the request now (e.g. the decision writer failed to
    /// commit); answered 503 without details.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// A refusal answered to the client: HTTP status, stable machine code, human message.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After`, when relevant.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing, invalid or expired credentials",
        )
    }
    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "invalid email or password, or the account is temporarily locked",
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            axum::Json(json!({ "error": self.code, "message": self.message })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert("retry-after", v);
        }
        resp
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::Api(e) => e.into_response(),
            Error::Store(aim_store::Error::Conflict { what }) => {
                ApiError::conflict(format!("{what} already exists")).into_response()
            }
            Error::Store(aim_store::Error::Invalid(message)) => {
                ApiError::bad_request(message).into_response()
            }
            Error::Unavailable(msg) => {
                tracing::error!(error = %msg, "service unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the server cannot record this request now; retry later",
                )
                .into_response()
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal server error",
                )
                .into_response()
            }
        }
    }
}
