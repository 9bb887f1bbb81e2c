//! The record kept for one build.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use strata_llb::SourceLocation;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildStatus {
    Running,
    Succeeded,
    Failed,
    Canceled,
    /// The process ended before the build finished.
    Interrupted,
}

impl BuildStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Running => "running",
            BuildStatus::Succeeded => "succeeded",
            BuildStatus::Failed => "failed",
            BuildStatus::Canceled => "canceled",
            BuildStatus::Interrupted => "interrupted",
        }
    }
}

/// What was asked for. Secret ids are kept, their values never are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSummary {
    pub context: String,
    pub dockerfile: String,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub outputs: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub no_cache: bool,
}

impl RequestSummary {
    /// Identifies "the same build" for explanations: the same Dockerfile,
    /// context and target.
    pub fn project_key(&self) -> String {
        format!(
            "{}\0{}\0{}",
            self.context,
            self.dockerfile,
            self.target.as_deref().unwrap_or("")
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedError {
    pub message: String,
    #[serde(default)]
    pub step: Option<String>,
    #[serde(default)]
    pub location: Option<SourceLocation>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    pub id: String,
    pub started: DateTime<Utc>,
    #[serde(default)]
    pub finished: Option<DateTime<Utc>>,
    pub status: BuildStatus,
    pub request: RequestSummary,
    /// The LLB definition as JSON.
    #[serde(default)]
    pub definition: Option<serde_json::Value>,
    #[serde(default)]
    pub steps_total: u32,
    #[serde(default)]
    pub steps_cached: u32,
    #[serde(default)]
    pub error: Option<RecordedError>,
    #[serde(default)]
    pub pinned: bool,
    /// Every build-context file the build transferred, path to content
    /// digest (`dir` for directories, `link:TARGET` for symlinks), so a
    /// later build can name the files that changed.
    #[serde(default)]
    pub context_files: Arc<BTreeMap<String, String>>,
    /// Key of `context_files` in the history's shared table of context
    /// file lists. The database stores the list there once for every
    /// record with the same files, and the record itself without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_files_key: Option<String>,
    /// Result summary: image config digest, export destinations.
    #[serde(default)]
    pub result: Option<serde_json::Value>,
}

impl BuildRecord {
    pub fn new(id: impl Into<String>, request: RequestSummary) -> BuildRecord {
        BuildRecord {
            id: id.into(),
            started: Utc::now(),
            finished: None,
            status: BuildStatus::Running,
            request,
            definition: None,
            steps_total: 0,
            steps_cached: 0,
            error: None,
            pinned: false,
            context_files: Arc::default(),
            context_files_key: None,
            result: None,
        }
    }

    /// Share of steps that came from the cache, from 0 to 1.
    pub fn cached_share(&self) -> f64 {
        if self.steps_total == 0 {
            0.0
        } else {
            f64::from(self.steps_cached) / f64::from(self.steps_total)
        }
    }

    pub fn duration_ms(&self) -> Option<i64> {
        self.finished
            .map(|finished| (finished - self.started).num_milliseconds())
    }
}
