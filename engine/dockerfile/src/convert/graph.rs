//! The vertices of a conversion before their digests are known.
//!
//! Copies from the build context read one `local://` source whose
//! `local.followpaths` attribute lists every path any copy reads, so that
//! source (and every vertex downstream of it) can only be digested once all
//! stages are converted. Vertices are kept in creation order, which is a
//! topological order because a vertex only reads vertices made before it.

use std::collections::{BTreeMap, BTreeSet};
use strata_llb::{Definition, Input, Op, OpMetadata, Platform, SourceOp, Vertex};

/// A filesystem state: an empty one or output 0 of a pending vertex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Scratch,
    Vertex(usize),
}

/// Where a pending vertex reads an input from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PendingInput {
    Vertex(usize),
    Context,
}

struct Pending {
    op: Op,
    inputs: Vec<PendingInput>,
    metadata: OpMetadata,
    platform: Option<Platform>,
}

#[derive(Default)]
pub(crate) struct Graph {
    vertices: Vec<Pending>,
    context_paths: BTreeSet<String>,
}

impl Graph {
    pub(crate) fn add(
        &mut self,
        op: Op,
        inputs: Vec<PendingInput>,
        metadata: OpMetadata,
        platform: Option<Platform>,
    ) -> State {
        self.vertices.push(Pending {
            op,
            inputs,
            metadata,
            platform,
        });
        State::Vertex(self.vertices.len() - 1)
    }

    /// Records a context path a copy reads, relative to the context root.
    pub(crate) fn read_context_path(&mut self, path: &str) {
        let trimmed = path.trim_start_matches('/');
        self.context_paths.insert(if trimmed.is_empty() {
            ".".into()
        } else {
            trimmed.into()
        });
    }

    /// Digests every vertex and returns the definition with `target` as
    /// its output.
    pub(crate) fn finish(
        self,
        target: State,
        context_name: &str,
        excludes: &[String],
        ignore_cache: bool,
    ) -> Definition {
        let mut definition = Definition::default();
        let context = self
            .vertices
            .iter()
            .any(|v| v.inputs.contains(&PendingInput::Context));
        let context_input = context.then(|| {
            let vertex = Vertex {
                op: Op::Source(context_source(context_name, &self.context_paths, excludes)),
                inputs: Vec::new(),
                platform: None,
            };
            let metadata = OpMetadata {
                description: "[internal] load build context".into(),
                ignore_cache,
                ..Default::default()
            };
            definition.add(vertex, metadata, 0)
        });

        let mut digested: Vec<Input> = Vec::with_capacity(self.vertices.len());
        for pending in self.vertices {
            let inputs = pending
                .inputs
                .iter()
                .map(|input| match input {
                    PendingInput::Vertex(i) => digested[*i].clone(),
                    PendingInput::Context => context_input.clone().expect("context source exists"),
                })
                .collect();
            let vertex = Vertex {
                op: pending.op,
                inputs,
                platform: pending.platform,
            };
            let metadata = OpMetadata {
                ignore_cache: ignore_cache || pending.metadata.ignore_cache,
                ..pending.metadata
            };
            digested.push(definition.add(vertex, metadata, 0));
        }
        definition.target = match target {
            State::Scratch => None,
            State::Vertex(i) => Some(digested[i].clone()),
        };
        definition
    }
}

/// Builds the `local://` source with the paths to transfer and the
/// `.dockerignore` patterns.
fn context_source(name: &str, paths: &BTreeSet<String>, excludes: &[String]) -> SourceOp {
    let mut attrs = BTreeMap::new();
    // A path below another listed path adds nothing, and `.` means the
    // whole context, so the list is reduced to its top-most entries.
    let top: Vec<&String> = if paths.contains(".") {
        Vec::new()
    } else {
        paths
            .iter()
            .filter(|p| {
                !paths
                    .iter()
                    .any(|other| other != *p && p.starts_with(&format!("{other}/")))
            })
            .collect()
    };
    if !top.is_empty() {
        attrs.insert(
            SourceOp::LOCAL_FOLLOW_PATHS.into(),
            serde_json::to_string(&top).unwrap(),
        );
    }
    if !excludes.is_empty() {
        attrs.insert(
            SourceOp::LOCAL_EXCLUDE_PATTERNS.into(),
            serde_json::to_string(excludes).unwrap(),
        );
    }
    attrs.insert(SourceOp::LOCAL_SHARED_KEY.into(), name.into());
    SourceOp {
        identifier: format!("local://{name}"),
        attrs,
    }
}
