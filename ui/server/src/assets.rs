//! The web UI's files: embedded from `ui/web/dist` at compile time (read
//! from disk in debug builds), or served from `--assets DIR`.

use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

#[derive(rust_embed::Embed)]
#[folder = "../web/dist"]
#[allow_missing = true]
struct Embedded;

/// How to produce the files when they are missing.
pub const BUILD_HINT: &str = "The web UI is not built: run `npm --prefix ui/web ci && npm --prefix ui/web run build`, then rebuild `strata`";

pub fn available(state: &AppState) -> bool {
    load(state, "index.html").is_some()
}

fn load(state: &AppState, path: &str) -> Option<Vec<u8>> {
    match &state.options.assets {
        Some(dir) => {
            if path.split('/').any(|part| part == "..") {
                return None;
            }
            std::fs::read(dir.join(path)).ok()
        }
        None => Embedded::get(path).map(|file| file.data.into_owned()),
    }
}

/// Serves a file, or `index.html` for paths without an extension so the
/// UI's own routes work on reload.
pub async fn serve(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let (path, bytes) = match load(&state, path) {
        Some(bytes) => (path, bytes),
        None if !path.contains('.') => match load(&state, "index.html") {
            Some(bytes) => ("index.html", bytes),
            None => return missing(),
        },
        None if path == "index.html" => return missing(),
        None => return (StatusCode::NOT_FOUND, "Not found").into_response(),
    };
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    Response::builder()
        .header(header::CONTENT_TYPE, mime.as_ref())
        .header("x-content-type-options", "nosniff")
        .body(Body::from(bytes))
        .expect("static response headers are valid")
}

fn missing() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, BUILD_HINT).into_response()
}
