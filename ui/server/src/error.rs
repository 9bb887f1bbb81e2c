//! Turns the backend's [`ApiError`] into an HTTP response: its status and
//! the JSON body `{code, message}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use strata_ui_backend::ApiError;

pub fn response(error: &ApiError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(error)).into_response()
}
