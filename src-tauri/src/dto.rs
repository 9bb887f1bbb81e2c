//! Requests and responses of the commands, in the JSON shapes of the
//! workbench's HTTP API (`ui/server`), so the web UI reads both the same
//! way. Field names are snake_case in both.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `status`: what the status bar shows.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub version: String,
    pub worker: String,
    pub store_root: PathBuf,
    pub store_bytes: u64,
    pub running_build: Option<String>,
    pub features: Features,
}

/// Views the UI may show; it hides a view whose feature is false.
#[derive(Clone, Debug, Serialize)]
pub struct Features {
    pub cache: bool,
    pub watch: bool,
}

/// `demos`: one bundled example project.
#[derive(Clone, Debug, Serialize)]
pub struct Demo {
    pub name: String,
    pub path: PathBuf,
    /// The first paragraph line of its README.
    pub summary: String,
}

/// `open_project`.
#[derive(Clone, Debug, Deserialize)]
pub struct OpenRequest {
    /// Absolute path of the project folder.
    pub path: PathBuf,
}

/// `start_build`: the build parameters the UI collects.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct StartRequest {
    /// Absolute path of the project folder, used as the build context.
    pub project: PathBuf,
    /// Dockerfile path relative to the project folder; `Dockerfile` when
    /// absent.
    #[serde(default)]
    pub dockerfile: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    #[serde(default)]
    pub no_cache: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Started {
    pub build_id: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Canceled {
    pub canceled: bool,
}

/// `history`: one recorded build.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryEntry {
    pub id: String,
    pub started: chrono::DateTime<chrono::Utc>,
    pub status: String,
    pub duration_ms: Option<i64>,
    pub steps_total: u32,
    pub steps_cached: u32,
    pub cached_share: f64,
    pub context: String,
    pub dockerfile: String,
    pub target: Option<String>,
    pub pinned: bool,
    pub error: Option<String>,
}

/// `history_logs`: one chunk of a step's output.
#[derive(Clone, Debug, Serialize)]
pub struct LogChunk {
    pub vertex: String,
    pub stderr: bool,
    pub data: String,
}

/// `history_layers`: one snapshot of a result's chain, base first.
#[derive(Clone, Debug, Serialize)]
pub struct Layer {
    pub snapshot: String,
    pub kind: String,
    /// Bytes of this snapshot's own files.
    pub size: u64,
    pub created: chrono::DateTime<chrono::Utc>,
    /// Digest of the compressed layer blob, once an export wrote one.
    pub blob: Option<String>,
    pub compressed_size: Option<u64>,
}

/// `cache_prune`: what a prune deletes; `dry_run` only reports it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PruneRequest {
    #[serde(default)]
    pub all: bool,
    #[serde(default)]
    pub dry_run: bool,
}
