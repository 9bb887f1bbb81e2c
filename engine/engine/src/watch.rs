//! Watch mode: build, wait for a settled change of the context, rebuild.
//!
//! The watcher starts before the first build, so a change made while a
//! build runs triggers the next one. Each build's context sync reads only
//! the paths the watcher recorded since the previous sync.

use crate::{BuildError, BuildRequest, BuildResult, DockerfileSource, Engine};
use std::path::PathBuf;
use strata_exporter::output::Dest;
use strata_solver::EventSink;
use strata_source::watch::{ChangeBatch, ContextWatcher, WatchOptions};
use tokio_util::sync::CancellationToken;

/// A watched build: one request, rebuilt on every settled change.
pub struct WatchSession<'e> {
    engine: &'e Engine,
    request: BuildRequest,
    watcher: ContextWatcher,
}

impl Engine {
    /// Starts watching the context of `request` (and its Dockerfile when
    /// that lies outside the context). Changes to the store and to local
    /// outputs inside the context never trigger a rebuild, because the
    /// build itself writes them.
    pub fn watch(&self, mut request: BuildRequest) -> Result<WatchSession<'_>, BuildError> {
        let mut options = WatchOptions::default();
        if let DockerfileSource::Path(path) = &request.dockerfile {
            let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            options.extra_files.push(path);
        }
        options
            .ignored_dirs
            .push(canonical(self.store.root().to_path_buf()));
        for output in &request.outputs {
            if let Some(Dest::Path(path)) = &output.dest {
                options.ignored_dirs.push(canonical(path.clone()));
            }
        }
        let watcher =
            ContextWatcher::start(&request.context, options).map_err(BuildError::Environment)?;
        request.context_changes = Some(watcher.changes());
        Ok(WatchSession {
            engine: self,
            request,
            watcher,
        })
    }
}

impl WatchSession<'_> {
    pub fn request(&self) -> &BuildRequest {
        &self.request
    }

    /// Runs one build of the watched request.
    pub async fn build(
        &self,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<BuildResult, BuildError> {
        self.engine.build(&self.request, events, cancel).await
    }

    /// Waits for the next settled batch of changes that can affect the
    /// build; `None` when `cancel` fires or the watcher stops.
    pub async fn wait_for_change(&mut self, cancel: &CancellationToken) -> Option<ChangeBatch> {
        tokio::select! {
            batch = self.watcher.next_batch() => batch,
            () = cancel.cancelled() => None,
        }
    }
}

/// Canonicalises a path that may not exist yet through its parent.
fn canonical(path: PathBuf) -> PathBuf {
    if let Ok(path) = std::fs::canonicalize(&path) {
        return path;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|p| p.join(name))
            .unwrap_or(path),
        _ => path,
    }
}
