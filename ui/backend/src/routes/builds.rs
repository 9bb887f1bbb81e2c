//! Starting and canceling builds. Their progress goes out as frames, see
//! `live.rs`.

use super::blocking;
use crate::Backend;
use crate::dto::{StartRequest, Started};
use crate::error::{ApiError, ApiResult};
use crate::settings::{self, ProjectSettings};
use serde_json::{Value, json};
use std::path::{Component, Path};
use strata_engine::{BuildRequest, DockerfileSource};
use strata_exporter::{OutputKind, OutputSpec};

/// Starts a build and returns `{build_id}` once the engine assigned it,
/// after saving the parameters as the project's settings.
pub async fn start(backend: &Backend, body: StartRequest) -> ApiResult<Value> {
    let request = build_request(&body)?;
    let remembered = ProjectSettings {
        dockerfile: body.dockerfile.clone(),
        target: request.target.clone(),
        build_args: body.build_args.clone(),
        no_cache: body.no_cache,
    };
    let root = backend.engine.store().root().to_path_buf();
    let key = request.context.display().to_string();
    blocking(move || Ok(settings::save(&root, &key, &remembered)?)).await?;

    match backend.live.start(backend.engine.clone(), request).await {
        Some(build_id) => Ok(json!(Started { build_id })),
        None => Err(ApiError::conflict(
            "A build is already running: cancel it or wait for it to finish",
        )),
    }
}

pub fn cancel(backend: &Backend) -> ApiResult<Value> {
    if backend.live.cancel() {
        Ok(json!({ "canceled": true }))
    } else {
        Err(ApiError::conflict("No build is running"))
    }
}

/// Checks the UI's parameters and turns them into an engine request.
fn build_request(body: &StartRequest) -> ApiResult<BuildRequest> {
    let project = body.project.canonicalize().map_err(|e| {
        ApiError::not_found(format!(
            "Cannot open project folder `{}`: {e}",
            body.project.display()
        ))
    })?;
    let mut request = BuildRequest::new(&project);
    if let Some(dockerfile) = body.dockerfile.as_deref().filter(|d| !d.is_empty()) {
        let relative = Path::new(dockerfile);
        let escapes = relative.is_absolute()
            || relative
                .components()
                .any(|c| matches!(c, Component::ParentDir));
        if escapes {
            return Err(ApiError::bad_request(format!(
                "Dockerfile `{dockerfile}` is outside the project folder: give a path inside it"
            )));
        }
        request.dockerfile = DockerfileSource::Path(project.join(relative));
    }
    for name in body.build_args.keys() {
        if name.is_empty() || name.contains('=') || name.chars().any(char::is_whitespace) {
            return Err(ApiError::bad_request(format!(
                "Invalid build argument name `{name}`: use letters, digits and `_`"
            )));
        }
    }
    request.target = body.target.clone().filter(|t| !t.is_empty());
    request.build_args = body.build_args.clone();
    request.no_cache = body.no_cache;
    if let Some(tag) = body.tag.as_deref().filter(|t| !t.is_empty()) {
        let name = strata_exporter::normalize_name(tag)
            .map_err(|e| ApiError::bad_request(format!("{e}; give a tag such as `app:dev`")))?;
        let mut output = OutputSpec::new(OutputKind::Image, None);
        output.name = Some(name);
        request.outputs.push(output);
    }
    Ok(request)
}
