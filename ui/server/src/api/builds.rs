//! Starting and canceling builds, and the event WebSocket.

use super::Shared;
use crate::error::{ApiError, ApiResult};
use crate::settings::{self, ProjectSettings};
use axum::Json;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use strata_engine::{BuildRequest, DockerfileSource};
use tokio::sync::broadcast::error::RecvError;

#[derive(Deserialize)]
pub struct StartRequest {
    /// Absolute path of the project folder, used as the build context.
    project: PathBuf,
    #[serde(default)]
    dockerfile: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    build_args: BTreeMap<String, String>,
    #[serde(default)]
    no_cache: bool,
}

pub async fn start(State(state): Shared, Json(body): Json<StartRequest>) -> ApiResult<Value> {
    let project = body.project.canonicalize().map_err(|e| {
        ApiError::not_found(format!(
            "Cannot open project folder `{}`: {e}",
            body.project.display()
        ))
    })?;
    let mut request = BuildRequest::new(&project);
    if let Some(dockerfile) = &body.dockerfile {
        let path = project.join(dockerfile);
        if !path.starts_with(&project) || dockerfile.split('/').any(|part| part == "..") {
            return Err(ApiError::bad_request(format!(
                "Dockerfile `{dockerfile}` is outside the project folder: give a path inside it"
            )));
        }
        request.dockerfile = DockerfileSource::Path(path);
    }
    request.target = body.target.clone().filter(|t| !t.is_empty());
    request.build_args = body.build_args.clone();
    request.no_cache = body.no_cache;

    let remembered = ProjectSettings {
        dockerfile: body.dockerfile.clone(),
        target: request.target.clone(),
        build_args: body.build_args.clone(),
        no_cache: body.no_cache,
    };
    let root = state.engine.store().root().to_path_buf();
    let key = project.display().to_string();
    super::blocking(move || Ok(settings::save(&root, &key, &remembered)?)).await?;

    match state.live.start(state.engine.clone(), request).await {
        Some(build_id) => Ok(Json(json!({ "build_id": build_id }))),
        None => Err(ApiError::conflict(
            "A build is already running: cancel it or wait for it to finish",
        )),
    }
}

pub async fn cancel(State(state): Shared) -> ApiResult<Value> {
    if state.live.cancel() {
        Ok(Json(json!({ "canceled": true })))
    } else {
        Err(ApiError::conflict("No build is running"))
    }
}

/// Upgrades to the event WebSocket: a snapshot frame, then every frame of
/// the live build.
pub async fn events(State(state): Shared, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| stream(socket, state))
}

async fn stream(mut socket: WebSocket, state: std::sync::Arc<crate::AppState>) {
    let (snapshot, mut frames) = state.live.subscribe();
    if socket.send(Message::Text(snapshot.into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let text = match frame {
                    Ok(frame) => frame.to_string(),
                    // The client fell behind: resynchronise from the model.
                    Err(RecvError::Lagged(_)) => state.live.snapshot(),
                    Err(RecvError::Closed) => return,
                };
                if socket.send(Message::Text(text.into())).await.is_err() {
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
