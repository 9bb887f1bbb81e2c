//! Step timings rebuilt from a build's events: per-step states and times,
//! the critical path, parallel lanes and Chrome trace export.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use strata_llb::{Digest, SourceLocation};
use strata_solver::{Event, StampedEvent};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Queued,
    Running,
    Cached,
    Done,
    Failed,
    Canceled,
}

/// One vertex of a build with its times.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub vertex: Digest,
    pub name: String,
    pub stage: Option<String>,
    pub location: Option<SourceLocation>,
    pub inputs: Vec<Digest>,
    pub state: StepState,
    pub key: Option<Digest>,
    pub queued: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    /// When the cache key was known (after input checksums).
    pub keyed: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

impl Step {
    /// Time from the build's start until the step could start, in ms.
    pub fn queued_ms(&self) -> i64 {
        self.started
            .map_or(0, |started| (started - self.queued).num_milliseconds())
    }

    /// Time spent computing the cache key and looking it up, in ms.
    pub fn cache_lookup_ms(&self) -> i64 {
        match (self.started, self.keyed) {
            (Some(started), Some(keyed)) => (keyed - started).num_milliseconds(),
            _ => 0,
        }
    }

    /// Time from start to finish, in ms.
    pub fn running_ms(&self) -> i64 {
        match (self.started, self.finished) {
            (Some(started), Some(finished)) => (finished - started).num_milliseconds(),
            _ => 0,
        }
    }

    /// Time from the known cache key to finish, in ms: the execution, or
    /// restoring the result for a cached step. Steps without a cache key
    /// (sources) count from their start.
    pub fn run_ms(&self) -> i64 {
        match (self.keyed.or(self.started), self.finished) {
            (Some(from), Some(finished)) => (finished - from).num_milliseconds(),
            _ => 0,
        }
    }
}

/// Rebuilds the steps of a build, in the order they were queued.
pub fn steps_from_events(events: &[StampedEvent]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut by_vertex: HashMap<Digest, usize> = HashMap::new();
    for stamped in events {
        let time = stamped.time;
        let vertex = match &stamped.event {
            Event::VertexQueued {
                vertex,
                name,
                stage,
                location,
                inputs,
            } => {
                if !by_vertex.contains_key(vertex) {
                    by_vertex.insert(vertex.clone(), steps.len());
                    steps.push(Step {
                        vertex: vertex.clone(),
                        name: name.clone(),
                        stage: stage.clone(),
                        location: location.clone(),
                        inputs: inputs.clone(),
                        state: StepState::Queued,
                        key: None,
                        queued: time,
                        started: None,
                        keyed: None,
                        finished: None,
                        error: None,
                    });
                }
                continue;
            }
            Event::VertexStarted { vertex }
            | Event::CacheKey { vertex, .. }
            | Event::VertexCached { vertex, .. }
            | Event::VertexCompleted { vertex, .. }
            | Event::VertexFailed { vertex, .. } => vertex,
            _ => continue,
        };
        let Some(step) = by_vertex.get(vertex).map(|&i| &mut steps[i]) else {
            continue;
        };
        match &stamped.event {
            Event::VertexStarted { .. } => {
                step.started = Some(time);
                step.state = StepState::Running;
            }
            Event::CacheKey { key, .. } => {
                step.keyed = Some(time);
                step.key = Some(key.clone());
            }
            Event::VertexCached { key, .. } => {
                step.keyed.get_or_insert(time);
                step.key = Some(key.clone());
                step.finished = Some(time);
                step.state = StepState::Cached;
            }
            Event::VertexCompleted { key, .. } => {
                if let Some(key) = key {
                    step.key = Some(key.clone());
                }
                step.finished = Some(time);
                step.state = StepState::Done;
            }
            Event::VertexFailed { error, .. } => {
                step.finished = Some(time);
                step.state = if error == "canceled" {
                    StepState::Canceled
                } else {
                    StepState::Failed
                };
                step.error = Some(error.clone());
            }
            _ => {}
        }
    }
    steps
}

/// Returns the chain of steps that determined the build's duration, first
/// step first: starting from the step that finished last, each link is the
/// input that finished last before it.
pub fn critical_path(steps: &[Step]) -> Vec<&Step> {
    let by_vertex: HashMap<&Digest, &Step> = steps.iter().map(|s| (&s.vertex, s)).collect();
    let Some(mut current) = steps
        .iter()
        .filter(|s| s.finished.is_some())
        .max_by_key(|s| s.finished)
    else {
        return Vec::new();
    };
    let mut path = vec![current];
    loop {
        let latest_input = current
            .inputs
            .iter()
            .filter_map(|input| by_vertex.get(input).copied())
            .filter(|s| s.finished.is_some())
            .max_by_key(|s| s.finished);
        match latest_input {
            Some(input) if !path.iter().any(|s| s.vertex == input.vertex) => {
                path.push(input);
                current = input;
            }
            _ => break,
        }
    }
    path.reverse();
    path
}

/// Assigns each started step a lane so that steps in one lane never
/// overlap; returns the lane per step index (`None` for steps that never
/// started).
pub fn lanes(steps: &[Step]) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..steps.len())
        .filter(|&i| steps[i].started.is_some())
        .collect();
    order.sort_by_key(|&i| steps[i].started);
    let mut lane_ends: Vec<DateTime<Utc>> = Vec::new();
    let mut result = vec![None; steps.len()];
    for i in order {
        let start = steps[i].started.expect("filtered to started steps");
        let end = steps[i].finished.unwrap_or(start);
        let lane = match lane_ends.iter().position(|&free| free <= start) {
            Some(lane) => {
                lane_ends[lane] = end;
                lane
            }
            None => {
                lane_ends.push(end);
                lane_ends.len() - 1
            }
        };
        result[i] = Some(lane);
    }
    result
}

/// Writes the steps in the Chrome trace event format (opened by Perfetto
/// and chrome://tracing), one thread per parallel lane.
pub fn to_chrome_trace(steps: &[Step]) -> serde_json::Value {
    let origin = steps.iter().map(|s| s.queued).min();
    let lanes = lanes(steps);
    let mut events = Vec::new();
    for (step, lane) in steps.iter().zip(&lanes) {
        let (Some(lane), Some(started), Some(origin)) = (lane, step.started, origin) else {
            continue;
        };
        let finished = step.finished.unwrap_or(started);
        events.push(serde_json::json!({
            "name": step.name,
            "cat": format!("{:?}", step.state).to_lowercase(),
            "ph": "X",
            "ts": (started - origin).num_microseconds().unwrap_or(0),
            "dur": (finished - started).num_microseconds().unwrap_or(0),
            "pid": 1,
            "tid": lane + 1,
            "args": {
                "vertex": step.vertex,
                "stage": step.stage,
                "cache_lookup_ms": step.cache_lookup_ms(),
                "error": step.error,
            },
        }));
    }
    for lane in 0..lanes.iter().flatten().max().map_or(0, |m| m + 1) {
        events.push(serde_json::json!({
            "name": "thread_name", "ph": "M", "pid": 1, "tid": lane + 1,
            "args": { "name": format!("lane {}", lane + 1) },
        }));
    }
    serde_json::json!({ "traceEvents": events, "displayTimeUnit": "ms" })
}

#[cfg(test)]
mod tests;
