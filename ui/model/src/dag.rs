//! Node states of one build, updated event by event.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use strata_llb::SourceLocation;
use strata_solver::{Event, StampedEvent};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    Queued,
    Running,
    Cached,
    Done,
    Failed,
    Canceled,
}

impl NodeState {
    pub fn is_finished(self) -> bool {
        !matches!(self, NodeState::Queued | NodeState::Running)
    }
}

/// One step of the build as the UIs draw it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Node {
    /// The vertex digest.
    pub id: String,
    pub name: String,
    pub stage: Option<String>,
    pub location: Option<SourceLocation>,
    /// Digests of the vertices this one reads.
    pub inputs: Vec<String>,
    pub state: NodeState,
    /// Milliseconds from the build's start.
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    pub cache_key: Option<String>,
    pub error: Option<String>,
    /// Why the step missed the cache, once the build has finished.
    pub reasons: Vec<String>,
    pub log_bytes: u64,
}

impl Node {
    pub fn duration_ms(&self) -> Option<u64> {
        Some(self.finished_ms?.saturating_sub(self.started_ms?))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
}

/// Nodes of one stage, in the order they were queued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub name: String,
    pub nodes: Vec<String>,
}

/// Counts by state, for headers and status bars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: usize,
    pub running: usize,
    pub cached: usize,
    pub done: usize,
    pub failed: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct DagModel {
    pub build_id: Option<String>,
    pub nodes: Vec<Node>,
    #[serde(skip)]
    index: HashMap<String, usize>,
    #[serde(skip)]
    started: Option<DateTime<Utc>>,
    /// `Some(success)` once the build finished.
    pub finished: Option<bool>,
    pub duration_ms: Option<u64>,
    /// Increases with every change, so a UI can skip redraws.
    pub version: u64,
}

impl DagModel {
    /// Applies one event; returns the index of the node it changed.
    pub fn apply(&mut self, stamped: &StampedEvent) -> Option<usize> {
        let offset = self.offset_ms(stamped.time);
        let changed = match &stamped.event {
            Event::BuildStarted { build_id } => {
                *self = DagModel {
                    build_id: Some(build_id.clone()),
                    started: Some(stamped.time),
                    ..DagModel::default()
                };
                None
            }
            Event::VertexQueued {
                vertex,
                name,
                stage,
                location,
                inputs,
            } => {
                let id = vertex.to_string();
                if self.index.contains_key(&id) {
                    return None;
                }
                self.index.insert(id.clone(), self.nodes.len());
                self.nodes.push(Node {
                    id,
                    name: name.clone(),
                    stage: stage.clone(),
                    location: location.clone(),
                    inputs: inputs.iter().map(|d| d.to_string()).collect(),
                    state: NodeState::Queued,
                    started_ms: None,
                    finished_ms: None,
                    cache_key: None,
                    error: None,
                    reasons: Vec::new(),
                    log_bytes: 0,
                });
                Some(self.nodes.len() - 1)
            }
            Event::VertexStarted { vertex } => self.update(vertex.as_str(), |node| {
                node.state = NodeState::Running;
                node.started_ms = Some(offset);
            }),
            Event::CacheKey { vertex, key, .. } => self.update(vertex.as_str(), |node| {
                node.cache_key = Some(key.to_string())
            }),
            Event::VertexCached { vertex, key } => self.update(vertex.as_str(), |node| {
                node.state = NodeState::Cached;
                node.cache_key = Some(key.to_string());
                node.started_ms.get_or_insert(offset);
                node.finished_ms = Some(offset);
            }),
            Event::VertexCompleted { vertex, .. } => self.update(vertex.as_str(), |node| {
                node.state = NodeState::Done;
                node.started_ms.get_or_insert(offset);
                node.finished_ms = Some(offset);
            }),
            Event::VertexFailed { vertex, error, .. } => self.update(vertex.as_str(), |node| {
                node.state = if error == "canceled" {
                    NodeState::Canceled
                } else {
                    NodeState::Failed
                };
                node.error = Some(error.clone());
                node.finished_ms = Some(offset);
            }),
            Event::Log { vertex, data, .. } => {
                self.update(vertex.as_str(), |node| node.log_bytes += data.len() as u64)
            }
            Event::Explanations { steps } => {
                for step in steps {
                    self.update(step.vertex.as_str(), |node| {
                        node.reasons = step.reasons.clone()
                    });
                }
                None
            }
            Event::BuildFinished {
                success,
                duration_ms,
                ..
            } => {
                self.finished = Some(*success);
                self.duration_ms = Some(*duration_ms);
                None
            }
            _ => None,
        };
        self.version += 1;
        changed
    }

    fn offset_ms(&self, time: DateTime<Utc>) -> u64 {
        self.started.map_or(0, |started| {
            (time - started).num_milliseconds().max(0) as u64
        })
    }

    fn update(&mut self, id: &str, change: impl FnOnce(&mut Node)) -> Option<usize> {
        let index = *self.index.get(id)?;
        change(&mut self.nodes[index]);
        Some(index)
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.index.get(id).map(|&i| &self.nodes[i])
    }

    /// Edges between nodes of this build, input to user.
    pub fn edges(&self) -> Vec<Edge> {
        self.nodes
            .iter()
            .flat_map(|node| {
                node.inputs
                    .iter()
                    .filter(|input| self.index.contains_key(*input))
                    .map(|input| Edge {
                        from: input.clone(),
                        to: node.id.clone(),
                    })
            })
            .collect()
    }

    /// Nodes grouped by stage, stages in order of their first node; nodes
    /// without a stage (the build context) form the `[internal]` group.
    pub fn stages(&self) -> Vec<Stage> {
        let mut stages: Vec<Stage> = Vec::new();
        for node in &self.nodes {
            let name = node.stage.clone().unwrap_or_else(|| "[internal]".into());
            match stages.iter_mut().find(|s| s.name == name) {
                Some(stage) => stage.nodes.push(node.id.clone()),
                None => stages.push(Stage {
                    name,
                    nodes: vec![node.id.clone()],
                }),
            }
        }
        stages
    }

    pub fn counts(&self) -> Counts {
        let mut counts = Counts {
            total: self.nodes.len(),
            ..Counts::default()
        };
        for node in &self.nodes {
            match node.state {
                NodeState::Running => counts.running += 1,
                NodeState::Cached => counts.cached += 1,
                NodeState::Done => counts.done += 1,
                NodeState::Failed => counts.failed += 1,
                NodeState::Queued | NodeState::Canceled => {}
            }
        }
        counts
    }

    /// The node that started last among those still running, for "follow
    /// the running step".
    pub fn latest_running(&self) -> Option<&Node> {
        self.nodes
            .iter()
            .filter(|n| n.state == NodeState::Running)
            .max_by_key(|n| n.started_ms)
    }
}
