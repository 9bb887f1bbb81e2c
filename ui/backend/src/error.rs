//! The API's error: `{code, message}` plus the HTTP status that `ui/server`
//! answers with. The desktop app rejects its IPC call with the same body.

use serde::Serialize;

/// An error as the API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// HTTP status code; not part of the JSON body.
    #[serde(skip)]
    pub status: u16,
    /// Stable, machine-readable kind, such as `not_found` or `bad_request`.
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "not_found", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(405, "method_not_allowed", message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(409, "conflict", message)
    }

    pub fn internal(error: anyhow::Error) -> ApiError {
        tracing::warn!("workbench request failed: {error:#}");
        ApiError::new(500, "internal", format!("{error:#}"))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> ApiError {
        ApiError::internal(error)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
