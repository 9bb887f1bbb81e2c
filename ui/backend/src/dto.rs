//! Request and response bodies of the API. Field names are snake_case, as
//! the web UI's `src/types.ts` reads them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `GET /api/status`: what the status bar shows.
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

/// `GET /api/demos`: one example project.
#[derive(Clone, Debug, Serialize)]
pub struct Demo {
    pub name: String,
    pub path: PathBuf,
    /// The first paragraph line of its README.
    pub summary: String,
}

/// `POST /api/projects/open`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    /// Absolute path of the project folder.
    pub path: PathBuf,
}

/// `POST /api/builds`: the build parameters the UI collects.
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
    /// Image name to store the result under in the local store, such as
    /// `app:dev`; the export then reports progress per layer.
    #[serde(default)]
    pub tag: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Started {
    pub build_id: String,
}

/// `GET /api/history`: one recorded build.
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

/// `GET /api/history/{id}/logs`: one chunk of a step's output.
#[derive(Clone, Debug, Serialize)]
pub struct LogChunk {
    pub vertex: String,
    pub stderr: bool,
    pub data: String,
}

/// `GET /api/history/{id}/layers`: one snapshot of a result's chain.
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

/// `POST /api/cache/prune`; the texts use the CLI's syntax (`48h`, `10GB`,
/// `type==regular`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PruneRequest {
    pub dry_run: bool,
    pub all: bool,
    pub filters: Vec<String>,
    pub keep_duration: Option<String>,
    pub keep_storage: Option<String>,
    pub min_free_space: Option<String>,
}

/// `POST /api/cache/pin`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    /// Record id or a unique prefix of it.
    pub id: String,
    pub pinned: bool,
}

/// Query of `GET /api/history/compare`.
#[derive(Clone, Debug, Deserialize)]
pub struct CompareQuery {
    pub base: String,
    pub other: String,
}

/// Query of `GET /api/history/{id}/logs`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct LogQuery {
    pub vertex: Option<String>,
}
