//! Node states of one build, updated event by event.

use crate::progress::{Change, Phases, ProgressItem, Transfer};
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
    /// Long tasks of the step, such as the context transfer, in the order
    /// they started.
    pub progress: Vec<ProgressItem>,
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
    /// Pulls per layer, context transfers and export per layer, in the
    /// order they started.
    pub transfers: Vec<Transfer>,
    #[serde(skip)]
    pub(crate) transfer_index: HashMap<String, usize>,
    #[serde(skip)]
    pub(crate) phases: Phases,
    /// Increases with every change, so a UI can skip redraws.
    pub version: u64,
}

impl DagModel {
    /// Applies one event; returns the index of the node it changed.
    pub fn apply(&mut self, stamped: &StampedEvent) -> Option<usize> {
        self.apply_change(stamped).node
    }

    /// Applies one event; returns the node and the transfers it changed.
    pub fn apply_change(&mut self, stamped: &StampedEvent) -> Change {
        let change = match &stamped.event {
            Event::Progress {
                vertex,
                id,
                current,
                total,
                unit,
            } => self.apply_progress(vertex.as_ref(), id, *current, *total, unit),
            Event::LayerProgress {
                phase,
                layer,
                status,
                current,
                total,
            } => self.apply_layer_progress(phase, layer, *status, *current, *total),
            Event::ContextTransfer { vertex, .. } => self.apply_context_transfer(vertex),
            Event::Phase {
                id,
                name,
                duration_ms,
            } => self.apply_phase(id, name, *duration_ms),
            _ => {
                let node = self.apply_node_event(stamped);
                let transfers = match node {
                    Some(index) => self.finish_vertex_progress(index),
                    None => Vec::new(),
                };
                Change {
                    node,
                    progress_only: false,
                    transfers,
                }
            }
        };
        self.version += 1;
        change
    }

    /// Applies an event about a node or the whole build; returns the index
    /// of the node it changed.
    fn apply_node_event(&mut self, stamped: &StampedEvent) -> Option<usize> {
        let offset = self.offset_ms(stamped.time);
        match &stamped.event {
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
                    progress: Vec::new(),
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
        }
    }

    fn offset_ms(&self, time: DateTime<Utc>) -> u64 {
        self.started.map_or(0, |started| {
            (time - started).num_milliseconds().max(0) as u64
        })
    }

    pub(crate) fn update(&mut self, id: &str, change: impl FnOnce(&mut Node)) -> Option<usize> {
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
