//! The session token and the `Origin` check applied to every API request.

use crate::AppState;
use crate::error::response;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use std::sync::Arc;
use strata_ui_backend::ApiError;

/// 32 random bytes, hex-encoded.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Rejects requests from another origin (403) and requests without the
/// token (401). A request without `Origin` (curl, the Tauri shell) passes
/// the origin check; browsers always send it on WebSocket upgrades and
/// cross-origin fetches.
pub async fn check(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get("origin") {
        let origin = origin.to_str().unwrap_or("");
        if !state
            .allowed_origins
            .iter()
            .any(|allowed| allowed == origin)
        {
            let message = format!(
                "Requests from origin `{origin}` are not allowed: open the workbench at `{}`",
                state.origin
            );
            return response(&ApiError::new(403, "forbidden_origin", message));
        }
    }
    if !has_token(&request, &state.token) {
        return response(&ApiError::new(
            401,
            "missing_token",
            "Missing or wrong token: open the address `strata ui` printed, which ends in `?token=...`",
        ));
    }
    next.run(request).await
}

fn has_token(request: &Request, token: &str) -> bool {
    let header = request
        .headers()
        .get("x-strata-token")
        .and_then(|value| value.to_str().ok());
    if header.is_some_and(|value| constant_time_eq(value, token)) {
        return true;
    }
    let query = request.uri().query().unwrap_or("");
    query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("token="))
        .any(|value| constant_time_eq(value, token))
}

/// Compares without an early exit, so response times do not reveal how
/// much of a guessed token was right.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
