//! The command handlers: plain async functions over [`Workbench`], so they
//! run in tests without a window. `ipc.rs` exposes them to the page.

use crate::dto::{
    Canceled, Demo, Features, OpenRequest, PruneRequest, StartRequest, Started, Status,
};
use crate::error::{CommandError, CommandResult};
use crate::live::{FrameSink, LiveBuild};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use strata_engine::{BuildRequest, DockerfileSource, Engine};
use strata_store::gc::PruneOptions;

/// The engine and the live build behind every command.
pub struct Workbench {
    pub(crate) engine: Arc<Engine>,
    /// Folder of example projects, each a subfolder with a Dockerfile.
    demos: Option<PathBuf>,
    live: Arc<LiveBuild>,
}

/// Runs blocking store or history work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> CommandResult<T> + Send + 'static,
) -> CommandResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| CommandError::internal(format!("A worker thread failed: {e}")))?
}

impl Workbench {
    pub fn new(engine: Arc<Engine>, demos: Option<PathBuf>) -> Workbench {
        Workbench {
            engine,
            demos,
            live: Arc::new(LiveBuild::default()),
        }
    }

    pub async fn status(&self) -> CommandResult<Status> {
        let engine = self.engine.clone();
        let store_bytes = blocking(move || {
            let snapshots = engine.store().snapshots()?;
            Ok(snapshots.iter().map(|s| s.size).sum::<u64>())
        })
        .await?;
        Ok(Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            worker: "runc on overlayfs".to_string(),
            store_root: self.engine.store().root().to_path_buf(),
            store_bytes,
            running_build: self.live.running_build(),
            features: Features {
                cache: true,
                watch: false,
            },
        })
    }

    /// Lists the example projects, sorted by name.
    pub async fn demos(&self) -> CommandResult<Vec<Demo>> {
        let Some(dir) = self.demos.clone() else {
            return Ok(Vec::new());
        };
        blocking(move || {
            let mut demos = Vec::new();
            let entries = std::fs::read_dir(&dir).map_err(|e| {
                CommandError::environment(format!(
                    "Cannot read the demo folder `{}`: {e}",
                    dir.display()
                ))
            })?;
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
        .await
    }

    /// Reads a project folder: `{ "project": ... }`.
    pub async fn open_project(&self, request: OpenRequest) -> CommandResult<Value> {
        let project = blocking(move || crate::project::open(&request.path)).await?;
        Ok(json!({ "project": project }))
    }

    /// Starts a build; its progress arrives in `frames` (see `live.rs`).
    pub async fn start_build(
        &self,
        request: StartRequest,
        frames: FrameSink,
    ) -> CommandResult<Started> {
        let request = build_request(&request)?;
        match self.live.start(self.engine.clone(), request, frames).await {
            Some(build_id) => Ok(Started { build_id }),
            None => Err(CommandError::user_input(
                "A build is already running: cancel it or wait for it to finish",
            )),
        }
    }

    pub fn cancel_build(&self) -> CommandResult<Canceled> {
        if self.live.cancel() {
            Ok(Canceled { canceled: true })
        } else {
            Err(CommandError::user_input("No build is running"))
        }
    }

    /// Returns the live build's state as one `snapshot` frame, for a page
    /// that reloads during a build.
    pub fn live_snapshot(&self) -> Value {
        self.live.snapshot()
    }

    /// Lists every cache record, as `strata du` does.
    pub async fn cache_du(&self) -> CommandResult<Value> {
        let engine = self.engine.clone();
        blocking(move || {
            let records = engine.store().disk_usage()?;
            Ok(serde_json::to_value(records).map_err(anyhow::Error::from)?)
        })
        .await
    }

    /// Deletes unused cache records, as `strata prune` does.
    pub async fn cache_prune(&self, request: PruneRequest) -> CommandResult<Value> {
        let engine = self.engine.clone();
        blocking(move || {
            let options = PruneOptions {
                all: request.all,
                dry_run: request.dry_run,
                ..PruneOptions::default()
            };
            let report = engine.store().prune(&options)?;
            Ok(serde_json::to_value(report).map_err(anyhow::Error::from)?)
        })
        .await
    }
}

/// Checks the UI's parameters and turns them into an engine request.
pub(crate) fn build_request(body: &StartRequest) -> CommandResult<BuildRequest> {
    let project = body.project.canonicalize().map_err(|e| {
        CommandError::user_input(format!(
            "Cannot open project folder `{}`: {e}",
            body.project.display()
        ))
    })?;
    let mut request = BuildRequest::new(&project);
    if let Some(dockerfile) = body.dockerfile.as_deref().filter(|d| !d.is_empty()) {
        let relative = std::path::Path::new(dockerfile);
        let escapes = relative.is_absolute()
            || relative
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir));
        if escapes {
            return Err(CommandError::user_input(format!(
                "Dockerfile `{dockerfile}` is outside the project folder: give a path inside it"
            )));
        }
        request.dockerfile = DockerfileSource::Path(project.join(relative));
    }
    for name in body.build_args.keys() {
        if name.is_empty() || name.contains('=') || name.chars().any(char::is_whitespace) {
            return Err(CommandError::user_input(format!(
                "Invalid build argument name `{name}`: use letters, digits and `_`"
            )));
        }
    }
    request.target = body.target.clone().filter(|t| !t.is_empty());
    request.build_args = body.build_args.clone();
    request.no_cache = body.no_cache;
    Ok(request)
}
