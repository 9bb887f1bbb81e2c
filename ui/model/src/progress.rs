//! Progress of long tasks: per node (a context transfer) and per build
//! (image pulls per layer, the context transfer, export per layer), folded
//! from `Progress`, `LayerProgress`, `ContextTransfer` and `Phase` events.

use crate::dag::{DagModel, NodeState};
use serde::Serialize;
use std::collections::HashMap;
use strata_llb::Digest;
use strata_solver::events::LayerStatus;

/// Id of the context transfer task, as the engine sends it.
pub const CONTEXT_TASK: &str = "transfer";

/// One long task and how far it got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProgressItem {
    /// The task id: `transfer`, `compressing layer …`, or a layer digest
    /// followed by ` download` or ` extract`.
    pub id: String,
    /// Text the UIs show before the amount.
    pub label: String,
    pub current: u64,
    /// `None` while the size is unknown, such as a layer still compressing.
    pub total: Option<u64>,
    /// `B` for bytes (the engine's `bytes` is normalized to `B`).
    pub unit: String,
    /// Set once the task ended, with or without a known total.
    pub done: bool,
}

impl ProgressItem {
    /// Returns the share done from 0 to 1, or `None` without a total. A
    /// total of 0 counts as done.
    pub fn fraction(&self) -> Option<f64> {
        let total = self.total?;
        if total == 0 {
            return Some(1.0);
        }
        Some((self.current as f64 / total as f64).min(1.0))
    }

    /// Copies the amounts of `update`; a finished item stays finished.
    fn merge(&mut self, update: &ProgressItem) {
        self.label = update.label.clone();
        self.current = update.current;
        self.total = update.total;
        self.unit = update.unit.clone();
        self.done = self.done || update.done;
    }
}

/// Kind of data a build-level transfer moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// One layer of an image pull: its download or its unpacking.
    Pull,
    /// The build context copied into the store's context mirror.
    Context,
    /// One layer compressed by an export.
    Export,
    /// A vertex-less task of any other phase.
    Other,
}

/// A transfer of the build, as the transfers strip shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transfer {
    /// Unique within the build: the phase id or vertex digest, a slash,
    /// then the task id.
    pub key: String,
    pub kind: TransferKind,
    /// Id of the `Phase` it belongs to (`pull-busybox:latest`,
    /// `export-0`); `None` for a context transfer.
    pub phase: Option<String>,
    /// The phase's display name, such as `exporting to type=image`.
    pub phase_name: Option<String>,
    /// The vertex of a context transfer.
    pub vertex: Option<String>,
    #[serde(flatten)]
    pub item: ProgressItem,
}

/// Phases seen so far: their names, and the one vertex-less progress
/// belongs to.
#[derive(Clone, Debug, Default)]
pub(crate) struct Phases {
    names: HashMap<String, String>,
    /// The phase that started last and has not finished.
    open: Option<String>,
}

/// The node and transfers one event changed, for callers that forward
/// changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Index of the node the event changed.
    pub node: Option<usize>,
    /// Whether the node change is only to its progress items, which a
    /// forwarder may throttle.
    pub progress_only: bool,
    /// Indexes into [`DagModel::transfers`] of the transfers it changed.
    pub transfers: Vec<usize>,
}

impl DagModel {
    /// Folds a `Progress` event into its node (when it has a vertex) and
    /// into the build's transfers (a context transfer, or any vertex-less
    /// task, which belongs to the open phase).
    pub(crate) fn apply_progress(
        &mut self,
        vertex: Option<&Digest>,
        id: &str,
        current: u64,
        total: Option<u64>,
        unit: &str,
    ) -> Change {
        let unit = if unit == "bytes" { "B" } else { unit };
        let done = total.is_some_and(|total| current >= total);
        let mut change = Change::default();
        match vertex {
            Some(vertex) => {
                let vertex = vertex.to_string();
                let label = match id {
                    CONTEXT_TASK => "context".to_string(),
                    _ => id.to_string(),
                };
                let item = ProgressItem {
                    id: id.to_string(),
                    label,
                    current,
                    total,
                    unit: unit.to_string(),
                    done,
                };
                change.node = self.update(&vertex, |node| upsert(&mut node.progress, &item));
                change.progress_only = change.node.is_some();
                if id == CONTEXT_TASK {
                    let transfer = Transfer {
                        key: format!("{vertex}/{id}"),
                        kind: TransferKind::Context,
                        phase: None,
                        phase_name: None,
                        vertex: Some(vertex),
                        item,
                    };
                    change.transfers.push(self.upsert_transfer(transfer));
                }
            }
            None => {
                let phase = self.phases.open.clone().unwrap_or_else(|| id.to_string());
                let kind = if phase.starts_with("export") {
                    TransferKind::Export
                } else {
                    TransferKind::Other
                };
                let item = ProgressItem {
                    id: id.to_string(),
                    label: id.to_string(),
                    current,
                    total,
                    unit: unit.to_string(),
                    done,
                };
                change
                    .transfers
                    .push(self.phase_transfer(kind, phase, item));
            }
        }
        change
    }

    /// Folds a `LayerProgress` event: one transfer for the layer's download
    /// and one for its unpacking, each done at its final status.
    pub(crate) fn apply_layer_progress(
        &mut self,
        phase: &str,
        layer: &Digest,
        status: LayerStatus,
        current: u64,
        total: u64,
    ) -> Change {
        let short = layer.short();
        let (id, label) = match status {
            LayerStatus::Downloading | LayerStatus::Verified => {
                (format!("{layer} download"), short.to_string())
            }
            LayerStatus::Extracting | LayerStatus::Extracted => {
                (format!("{layer} extract"), format!("extracting {short}"))
            }
        };
        let item = ProgressItem {
            id,
            label,
            current,
            total: Some(total),
            unit: "B".into(),
            done: status.is_final(),
        };
        let index = self.phase_transfer(TransferKind::Pull, phase.to_string(), item);
        Change {
            transfers: vec![index],
            ..Change::default()
        }
    }

    /// Records a `Phase` event. A finished phase marks its transfers done,
    /// because the last update of a task may have come before its total
    /// was known.
    pub(crate) fn apply_phase(&mut self, id: &str, name: &str, duration_ms: Option<u64>) -> Change {
        self.phases.names.insert(id.to_string(), name.to_string());
        let mut change = Change::default();
        if duration_ms.is_none() {
            self.phases.open = Some(id.to_string());
            return change;
        }
        if self.phases.open.as_deref() == Some(id) {
            self.phases.open = None;
        }
        for (index, transfer) in self.transfers.iter_mut().enumerate() {
            if transfer.phase.as_deref() == Some(id) {
                transfer.phase_name = Some(name.to_string());
                if !transfer.item.done {
                    transfer.item.done = true;
                    change.transfers.push(index);
                }
            }
        }
        change
    }

    /// Marks the progress of a vertex done once the vertex finished
    /// without failing, and returns the transfers that changed. A failed
    /// vertex keeps its items as they were, so a bar never reads complete
    /// for a transfer that stopped.
    pub(crate) fn finish_vertex_progress(&mut self, index: usize) -> Vec<usize> {
        let node = &mut self.nodes[index];
        if !matches!(node.state, NodeState::Done | NodeState::Cached) {
            return Vec::new();
        }
        for item in &mut node.progress {
            item.done = true;
        }
        let vertex = node.id.clone();
        self.finish_transfers(|transfer| transfer.vertex.as_deref() == Some(vertex.as_str()))
    }

    /// Marks the context transfer of `vertex` done: the engine sends its
    /// counters once the sync ended.
    pub(crate) fn apply_context_transfer(&mut self, vertex: &Digest) -> Change {
        let vertex = vertex.to_string();
        let node = self.update(&vertex, |node| {
            for item in &mut node.progress {
                if item.id == CONTEXT_TASK {
                    item.done = true;
                }
            }
        });
        Change {
            node,
            progress_only: node.is_some(),
            transfers: self.finish_transfers(|transfer| {
                transfer.kind == TransferKind::Context
                    && transfer.vertex.as_deref() == Some(vertex.as_str())
            }),
        }
    }

    fn finish_transfers(&mut self, matches: impl Fn(&Transfer) -> bool) -> Vec<usize> {
        let mut changed = Vec::new();
        for (index, transfer) in self.transfers.iter_mut().enumerate() {
            if matches(transfer) && !transfer.item.done {
                transfer.item.done = true;
                changed.push(index);
            }
        }
        changed
    }

    fn phase_transfer(&mut self, kind: TransferKind, phase: String, item: ProgressItem) -> usize {
        let transfer = Transfer {
            key: format!("{phase}/{}", item.id),
            kind,
            phase_name: self.phases.names.get(&phase).cloned(),
            phase: Some(phase),
            vertex: None,
            item,
        };
        self.upsert_transfer(transfer)
    }

    fn upsert_transfer(&mut self, transfer: Transfer) -> usize {
        if let Some(&index) = self.transfer_index.get(&transfer.key) {
            self.transfers[index].item.merge(&transfer.item);
            return index;
        }
        self.transfer_index
            .insert(transfer.key.clone(), self.transfers.len());
        self.transfers.push(transfer);
        self.transfers.len() - 1
    }

    pub fn transfer(&self, key: &str) -> Option<&Transfer> {
        self.transfer_index.get(key).map(|&i| &self.transfers[i])
    }
}

fn upsert(items: &mut Vec<ProgressItem>, update: &ProgressItem) {
    match items.iter_mut().find(|item| item.id == update.id) {
        Some(item) => item.merge(update),
        None => items.push(update.clone()),
    }
}

#[cfg(test)]
#[path = "progress/tests.rs"]
mod tests;
