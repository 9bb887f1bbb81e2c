//! The status bar, the demo list and opening a project folder.

use super::{blocking, to_json};
use crate::Backend;
use crate::dto::{Demo, Features, OpenRequest, Status};
use crate::error::{ApiError, ApiResult};
use serde_json::{Value, json};

pub async fn status(backend: &Backend) -> ApiResult<Value> {
    let engine = backend.engine.clone();
    let store_bytes = blocking(move || {
        let snapshots = engine.store().snapshots()?;
        Ok(snapshots.iter().map(|s| s.size).sum::<u64>())
    })
    .await?;
    to_json(Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        worker: "runc on overlayfs".to_string(),
        store_root: backend.engine.store().root().to_path_buf(),
        store_bytes,
        running_build: backend.live.running_build(),
        // Features other commands add; the UI hides their views while false.
        features: Features {
            cache: true,
            watch: false,
        },
    })
}

/// Lists the demo folder's subfolders that contain a Dockerfile, by name.
pub async fn demos(backend: &Backend) -> ApiResult<Value> {
    let Some(dir) = backend.demos.clone() else {
        return Ok(json!([]));
    };
    let demos = blocking(move || {
        let mut demos = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!("cannot read the demo folder `{}`: {error}", dir.display());
                return Ok(demos);
            }
        };
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
            demos.push(Demo {
                name: entry.file_name().to_string_lossy().into_owned(),
                path,
                summary,
            });
        }
        demos.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(demos)
    })
    .await?;
    to_json(demos)
}

/// Reads a project folder and the settings it was last built with.
pub async fn open(backend: &Backend, request: OpenRequest) -> ApiResult<Value> {
    if !request.path.is_absolute() {
        return Err(ApiError::bad_request(format!(
            "Folder path `{}` is not absolute: give the full path",
            request.path.display()
        )));
    }
    let root = backend.engine.store().root().to_path_buf();
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
    Ok(json!({ "project": project, "settings": settings }))
}
