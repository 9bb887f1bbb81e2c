//! The workbench API over the Strata engine, independent of its transport:
//! projects (Dockerfiles, stages, args, remembered settings), builds with
//! their live event frames, history, logs, layers and the cache.
//!
//! Both front ends serve this one API. `ui/server` (`strata ui`) maps
//! `/api/*` HTTP requests to [`Backend::request`] and the event WebSocket
//! to [`Backend::subscribe`]; the desktop app (`src-tauri`) does the same
//! for its `api_request` and `api_subscribe` IPC commands. The paths,
//! bodies and frames are listed in `docs/workbench.md`.

pub mod dto;
mod error;
mod live;
pub mod project;
mod routes;
pub mod settings;
mod throttle;

pub use error::{ApiError, ApiResult};
pub use live::Subscription;

use live::LiveBuild;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use strata_engine::Engine;

/// The engine, the demo folder and the live build behind every request.
pub struct Backend {
    engine: Arc<Engine>,
    /// Folder whose subfolders with a Dockerfile are offered as demos.
    demos: Option<PathBuf>,
    live: Arc<LiveBuild>,
}

impl Backend {
    pub fn new(engine: Arc<Engine>, demos: Option<PathBuf>) -> Backend {
        Backend {
            engine,
            demos,
            live: Arc::new(LiveBuild::new()),
        }
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Handles one API request. `target` is the path with an optional
    /// query string, as in `/api/history/compare?base=a&other=b`, with
    /// percent-encoded segments; `body` is the JSON body of a POST, where
    /// `None` reads as `{}`.
    pub async fn request(
        &self,
        method: &str,
        target: &str,
        body: Option<Value>,
    ) -> ApiResult<Value> {
        routes::dispatch(self, method, target, body).await
    }

    /// Subscribes to the live build's frames: a snapshot frame first, then
    /// every later frame.
    pub fn subscribe(&self) -> Subscription {
        Subscription::new(self.live.clone())
    }
}
