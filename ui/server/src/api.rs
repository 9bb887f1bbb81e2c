//! The JSON API routes. Every route here sits behind the token and origin
//! check; see `docs/workbench.md` for the request and response shapes.

mod builds;
mod cache;
mod history;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

type Shared = State<Arc<AppState>>;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/status", get(status))
        .route("/api/demos", get(demos))
        .route("/api/projects/open", post(open_project))
        .route("/api/builds", post(builds::start))
        .route("/api/builds/cancel", post(builds::cancel))
        .route("/api/events", get(builds::events))
        .route("/api/history", get(history::list))
        .route("/api/history/compare", get(history::compare))
        .route("/api/history/{id}", get(history::inspect))
        .route("/api/history/{id}/explain", get(history::explain))
        .route("/api/history/{id}/waterfall", get(history::waterfall))
        .route("/api/history/{id}/model", get(history::model))
        .route("/api/history/{id}/logs", get(history::logs))
        .route("/api/history/{id}/layers", get(history::layers))
        .route("/api/cache/du", get(cache::usage))
        .route("/api/cache/prune", post(cache::prune))
        .route("/api/cache/pin", post(cache::pin))
}

/// Runs blocking store or history work off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("A worker thread failed: {e}")))?
}

async fn status(State(state): Shared) -> ApiResult<Value> {
    let engine = state.engine.clone();
    let store_bytes = blocking(move || {
        let snapshots = engine.store().snapshots()?;
        Ok(snapshots.iter().map(|s| s.size).sum::<u64>())
    })
    .await?;
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "worker": "runc on overlayfs",
        "store_root": state.engine.store().root(),
        "store_bytes": store_bytes,
        "running_build": state.live.running_build(),
        // Features other commands add; the UI hides their views while false.
        "features": { "cache": true, "watch": false },
    })))
}

async fn demos(State(state): Shared) -> ApiResult<Value> {
    let Some(dir) = state.options.demos.clone() else {
        return Ok(Json(json!([])));
    };
    let mut demos = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.join("Dockerfile").is_file() {
                continue;
            }
            let readme = std::fs::read_to_string(path.join("README.md")).unwrap_or_default();
            let summary = readme
                .lines()
                .find(|line| !line.trim().is_empty() && !line.starts_with('#'))
                .unwrap_or("")
                .to_string();
            demos.push(json!({
                "name": entry.file_name().to_string_lossy(),
                "path": path,
                "summary": summary,
            }));
        }
    }
    demos.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(Json(Value::Array(demos)))
}

#[derive(Deserialize)]
struct OpenRequest {
    path: PathBuf,
}

async fn open_project(State(state): Shared, Json(request): Json<OpenRequest>) -> ApiResult<Value> {
    if !request.path.is_absolute() {
        return Err(ApiError::bad_request(format!(
            "Folder path `{}` is not absolute: give the full path",
            request.path.display()
        )));
    }
    let root = state.engine.store().root().to_path_buf();
    let (project, settings) = blocking(move || {
        let path = request.path.canonicalize().map_err(|e| {
            ApiError::not_found(format!(
                "Cannot open folder `{}`: {e}",
                request.path.display()
            ))
        })?;
        let project = crate::project::open(&path)?;
        let settings = crate::settings::load(&root)?
            .remove(&project.path)
            .unwrap_or_default();
        Ok((project, settings))
    })
    .await?;
    Ok(Json(json!({ "project": project, "settings": settings })))
}
