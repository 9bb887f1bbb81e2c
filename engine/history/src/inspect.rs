//! The summary `strata history inspect` prints: the request, outcome, step
//! counts, error, critical path and export results of one build.

use crate::record::{BuildRecord, BuildStatus, RecordedError, RequestSummary};
use crate::steps::{Step, StepState, critical_path, steps_from_events};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashSet;
use strata_llb::{Digest, SourceLocation};
use strata_solver::{Event, StampedEvent};

/// Counts over the steps that compute a cache key, which is every step but
/// sources (images and the build context).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct StepCounts {
    pub total: usize,
    /// Steps that finished, from the cache or by running.
    pub done: usize,
    pub cached: usize,
    /// `cached / total`, from 0 to 1.
    pub cached_share: f64,
}

impl StepCounts {
    pub fn from_events(events: &[StampedEvent]) -> StepCounts {
        let keyed: HashSet<&Digest> = events
            .iter()
            .filter_map(|stamped| match &stamped.event {
                Event::CacheKey { vertex, .. } => Some(vertex),
                _ => None,
            })
            .collect();
        let steps = steps_from_events(events);
        let keyed_steps = || steps.iter().filter(|s| keyed.contains(&s.vertex));
        let done = keyed_steps()
            .filter(|s| matches!(s.state, StepState::Cached | StepState::Done))
            .count();
        let cached = keyed_steps()
            .filter(|s| s.state == StepState::Cached)
            .count();
        let cached_share = if keyed.is_empty() {
            0.0
        } else {
            cached as f64 / keyed.len() as f64
        };
        StepCounts {
            total: keyed.len(),
            done,
            cached,
            cached_share,
        }
    }
}

/// One step of the critical path with where its time went.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PathStep {
    pub name: String,
    pub vertex: Digest,
    pub state: StepState,
    pub location: Option<SourceLocation>,
    pub queued_ms: i64,
    pub cache_lookup_ms: i64,
    pub run_ms: i64,
}

impl PathStep {
    fn new(step: &Step) -> PathStep {
        PathStep {
            name: step.name.clone(),
            vertex: step.vertex.clone(),
            state: step.state,
            location: step.location.clone(),
            queued_ms: step.queued_ms(),
            cache_lookup_ms: step.cache_lookup_ms(),
            run_ms: step.run_ms(),
        }
    }
}

/// An export or tag phase; `duration_ms` is `None` when it never finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExportResult {
    pub name: String,
    pub duration_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Inspection {
    pub id: String,
    pub status: BuildStatus,
    pub started: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub pinned: bool,
    pub request: RequestSummary,
    pub steps: StepCounts,
    pub error: Option<RecordedError>,
    pub critical_path: Vec<PathStep>,
    pub exports: Vec<ExportResult>,
    /// The result summary the engine recorded, such as the result snapshot.
    pub result: Option<serde_json::Value>,
}

impl Inspection {
    pub fn new(record: &BuildRecord, events: &[StampedEvent]) -> Inspection {
        let steps = steps_from_events(events);
        Inspection {
            id: record.id.clone(),
            status: record.status,
            started: record.started,
            finished: record.finished,
            duration_ms: record.duration_ms(),
            pinned: record.pinned,
            request: record.request.clone(),
            steps: StepCounts::from_events(events),
            error: record.error.clone(),
            critical_path: critical_path(&steps)
                .into_iter()
                .map(PathStep::new)
                .collect(),
            exports: export_results(events),
            result: record.result.clone(),
        }
    }
}

/// Collects the phases after the solve (exports and tags) in the order they
/// started, each with its final duration.
fn export_results(events: &[StampedEvent]) -> Vec<ExportResult> {
    let mut results: Vec<(String, ExportResult)> = Vec::new();
    for stamped in events {
        let Event::Phase {
            id,
            name,
            duration_ms,
        } = &stamped.event
        else {
            continue;
        };
        match results.iter_mut().find(|(known, _)| known == id) {
            Some((_, result)) => result.duration_ms = *duration_ms,
            None => results.push((
                id.clone(),
                ExportResult {
                    name: name.clone(),
                    duration_ms: *duration_ms,
                },
            )),
        }
    }
    results.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests;
