//! A layered (Sugiyama-style) layout of the build graph: layers by longest
//! path from the sources, crossing reduction by barycenter sweeps, then
//! coordinates on a grid. Inputs are always drawn above the steps that
//! read them, so every edge points down.
//!
//! The layout is stable across rebuilds: given the previous layout, nodes
//! keep their relative order by name (a step's digest changes when it is
//! edited, its name rarely does).

use crate::dag::DagModel;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct LayoutOptions {
    pub node_width: f64,
    pub node_height: f64,
    pub horizontal_gap: f64,
    pub vertical_gap: f64,
    /// Barycenter sweeps (each sweep goes down, then up).
    pub sweeps: usize,
}

impl Default for LayoutOptions {
    fn default() -> Self {
        LayoutOptions {
            node_width: 220.0,
            node_height: 44.0,
            horizontal_gap: 30.0,
            vertical_gap: 50.0,
            sweeps: 4,
        }
    }
}

/// A placed node; `x` and `y` are the top-left corner.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeBox {
    pub id: String,
    pub name: String,
    pub layer: usize,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// An edge as a polyline from the bottom of `from` to the top of `to`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EdgePath {
    pub from: String,
    pub to: String,
    pub points: Vec<(f64, f64)>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Layout {
    pub nodes: Vec<NodeBox>,
    pub edges: Vec<EdgePath>,
    pub width: f64,
    pub height: f64,
}

impl Layout {
    pub fn node(&self, id: &str) -> Option<&NodeBox> {
        self.nodes.iter().find(|n| n.id == id)
    }
}

/// Lays out the model's nodes, keeping the order of `previous` where the
/// same step names appear.
pub fn layout(model: &DagModel, options: &LayoutOptions, previous: Option<&Layout>) -> Layout {
    let count = model.nodes.len();
    let index: HashMap<&str, usize> = model
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let parents: Vec<Vec<usize>> = model
        .nodes
        .iter()
        .map(|n| {
            n.inputs
                .iter()
                .filter_map(|input| index.get(input.as_str()).copied())
                .collect()
        })
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (child, list) in parents.iter().enumerate() {
        for &parent in list {
            children[parent].push(child);
        }
    }

    let layers = assign_layers(&parents);
    let layer_count = layers.iter().copied().max().map_or(0, |m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); layer_count];
    for node in initial_order(model, previous) {
        rows[layers[node]].push(node);
    }
    for _ in 0..options.sweeps {
        for layer in 1..layer_count {
            reorder(&mut rows, layer, &parents);
        }
        for layer in (0..layer_count.saturating_sub(1)).rev() {
            reorder(&mut rows, layer, &children);
        }
    }
    place(model, &rows, &layers, &parents, options)
}

/// Longest path from a source: a node sits one layer below its lowest
/// input. Vertices arrive in topological order from the solver, but a
/// fixed-point loop keeps this correct for any order.
fn assign_layers(parents: &[Vec<usize>]) -> Vec<usize> {
    let mut layers = vec![0usize; parents.len()];
    let mut changed = true;
    let mut rounds = 0;
    while changed && rounds <= parents.len() {
        changed = false;
        rounds += 1;
        for (node, list) in parents.iter().enumerate() {
            let layer = list.iter().map(|&p| layers[p] + 1).max().unwrap_or(0);
            if layer > layers[node] {
                layers[node] = layer;
                changed = true;
            }
        }
    }
    layers
}

/// Nodes sorted by their x in the previous layout when it had a node of
/// the same name, else by stage and queue order.
fn initial_order(model: &DagModel, previous: Option<&Layout>) -> Vec<usize> {
    let previous_x: HashMap<&str, f64> = previous
        .map(|p| p.nodes.iter().map(|n| (n.name.as_str(), n.x)).collect())
        .unwrap_or_default();
    let stages = model.stages();
    let stage_rank: HashMap<String, usize> = stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), i))
        .collect();
    let mut order: Vec<usize> = (0..model.nodes.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| {
            let node = &model.nodes[i];
            let stage = node.stage.clone().unwrap_or_else(|| "[internal]".into());
            (
                previous_x
                    .get(node.name.as_str())
                    .copied()
                    .unwrap_or(f64::MAX),
                stage_rank[&stage],
                i,
            )
        };
        key(a)
            .partial_cmp(&key(b))
            .expect("positions are finite or MAX")
    });
    order
}

/// Sorts one layer by the mean position of each node's neighbours (inputs
/// on a downward sweep, users on an upward one) within their own layers;
/// nodes without neighbours keep their place.
fn reorder(rows: &mut [Vec<usize>], layer: usize, neighbours: &[Vec<usize>]) {
    let positions: HashMap<usize, usize> = rows
        .iter()
        .flat_map(|row| row.iter().enumerate().map(|(p, &n)| (n, p)))
        .collect();
    let row = &mut rows[layer];
    let mut keyed: Vec<(f64, usize, usize)> = row
        .iter()
        .enumerate()
        .map(|(current, &node)| {
            let linked: Vec<usize> = neighbours[node]
                .iter()
                .filter_map(|n| positions.get(n).copied())
                .collect();
            let barycenter = if linked.is_empty() {
                current as f64
            } else {
                linked.iter().sum::<usize>() as f64 / linked.len() as f64
            };
            (barycenter, current, node)
        })
        .collect();
    keyed.sort_by(|a, b| {
        (a.0, a.1)
            .partial_cmp(&(b.0, b.1))
            .expect("barycenters are finite")
    });
    *row = keyed.into_iter().map(|(_, _, node)| node).collect();
}

fn place(
    model: &DagModel,
    rows: &[Vec<usize>],
    layers: &[usize],
    parents: &[Vec<usize>],
    options: &LayoutOptions,
) -> Layout {
    let widest = rows.iter().map(Vec::len).max().unwrap_or(0) as f64;
    let step_x = options.node_width + options.horizontal_gap;
    let step_y = options.node_height + options.vertical_gap;
    let width = (widest * step_x - options.horizontal_gap).max(0.0);
    let mut boxes: Vec<Option<NodeBox>> = vec![None; model.nodes.len()];
    for (layer, row) in rows.iter().enumerate() {
        // Centre each layer under the widest one.
        let offset = (width - (row.len() as f64 * step_x - options.horizontal_gap)) / 2.0;
        for (position, &node) in row.iter().enumerate() {
            boxes[node] = Some(NodeBox {
                id: model.nodes[node].id.clone(),
                name: model.nodes[node].name.clone(),
                layer: layers[node],
                x: offset + position as f64 * step_x,
                y: layer as f64 * step_y,
                width: options.node_width,
                height: options.node_height,
            });
        }
    }
    let boxes: Vec<NodeBox> = boxes
        .into_iter()
        .map(|b| b.expect("every node is in a layer"))
        .collect();
    let mut edges = Vec::new();
    for (child, list) in parents.iter().enumerate() {
        for &parent in list {
            let (from, to) = (&boxes[parent], &boxes[child]);
            edges.push(EdgePath {
                from: from.id.clone(),
                to: to.id.clone(),
                points: vec![
                    (from.x + from.width / 2.0, from.y + from.height),
                    (to.x + to.width / 2.0, to.y),
                ],
            });
        }
    }
    let height = (rows.len() as f64 * step_y - options.vertical_gap).max(0.0);
    Layout {
        nodes: boxes,
        edges,
        width,
        height,
    }
}

#[cfg(test)]
mod tests;
