//! The HTTP side of the API: every `/api/*` request goes to the shared
//! [`strata_ui_backend::Backend`], and `/api/events` upgrades to the event
//! WebSocket. Both sit behind the token and origin check.

use crate::AppState;
use crate::error::response;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::Value;
use std::sync::Arc;
use strata_ui_backend::ApiError;

type Shared = State<Arc<AppState>>;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/events", get(events))
        .route("/api/{*rest}", any(forward))
}

/// Passes the method, path, query and JSON body to the backend.
async fn forward(State(state): Shared, method: Method, uri: Uri, body: Bytes) -> Response {
    let body = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(body) => Some(body),
            Err(error) => {
                let message = format!("Invalid JSON body for `{}`: {error}", uri.path());
                return response(&ApiError::bad_request(message));
            }
        }
    };
    let target = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or(uri.path());
    match state.backend.request(method.as_str(), target, body).await {
        Ok(value) => axum::Json(value).into_response(),
        Err(error) => response(&error),
    }
}

/// Upgrades to the event WebSocket: a snapshot frame, then every frame of
/// the live build.
async fn events(State(state): Shared, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| stream(socket, state))
}

async fn stream(mut socket: WebSocket, state: Arc<AppState>) {
    let mut frames = state.backend.subscribe();
    loop {
        tokio::select! {
            frame = frames.next() => {
                if socket.send(Message::Text(frame.into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
