//! The low-level build graph (LLB): content-addressed ops and the
//! definitions that connect them.
//!
//! A [`Definition`] is a DAG of [`Vertex`] values keyed by their [`Digest`].
//! Each vertex holds one [`Op`] and references the outputs of earlier
//! vertices through [`Input`]. The digest of a vertex is the sha256 of its
//! canonical JSON encoding (see [`Vertex::digest`]), so two identical steps
//! anywhere in a graph, or in two graphs, share one digest.
//!
//! This crate depends on nothing else of Strata's.

mod digest;
mod dot;
pub mod image;
mod op;

pub use digest::{Digest, DigestError};
pub use dot::to_dot;
pub use op::*;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A reference to output `index` of the vertex with digest `digest`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Input {
    pub digest: Digest,
    #[serde(default)]
    pub index: u32,
}

/// Information about a vertex that does not change what it computes, so it
/// is left out of the digest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpMetadata {
    /// Human-readable name shown in progress, such as `[build 2/4] RUN make`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Run the op even when its cache key is known.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_cache: bool,
    /// Stage name the op belongs to, for grouping in UIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Source location in the frontend's input (for example a Dockerfile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<SourceLocation>,
}

/// A range of lines in a frontend's source file, 1-based and inclusive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceLocation {
    pub file: String,
    pub start_line: usize,
    pub end_line: usize,
}

/// One node of the graph: an op, the outputs it reads, and its metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vertex {
    pub op: Op,
    #[serde(default)]
    pub inputs: Vec<Input>,
    #[serde(default)]
    pub platform: Option<Platform>,
}

impl Vertex {
    /// Computes the vertex's digest: sha256 over its canonical JSON encoding.
    ///
    /// The encoding is deterministic because every map in an op is a
    /// `BTreeMap` and struct fields serialize in declaration order.
    pub fn digest(&self) -> Digest {
        let bytes = serde_json::to_vec(self).expect("LLB vertices always serialize");
        Digest::of_bytes(&bytes)
    }

    /// Returns a copy of the op with its inputs removed, which is what the
    /// solver hashes into a cache key alongside the inputs' own keys.
    pub fn without_inputs(&self) -> Vertex {
        Vertex {
            op: self.op.clone(),
            inputs: Vec::new(),
            platform: self.platform.clone(),
        }
    }
}

/// An OCI platform such as `linux/amd64` or `linux/arm64/v8`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// Returns the platform this process runs on, in OCI's naming.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            other => other,
        };
        let variant = (architecture == "arm64").then(|| "v8".to_string());
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant,
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(text: &str) -> Option<Platform> {
        let mut parts = text.split('/');
        let os = parts.next().filter(|s| !s.is_empty())?;
        let architecture = parts.next().filter(|s| !s.is_empty())?;
        let variant = parts.next().map(str::to_string);
        if parts.next().is_some() {
            return None;
        }
        Some(Platform {
            os: os.into(),
            architecture: architecture.into(),
            variant,
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// A complete build graph: every vertex by digest, per-vertex metadata and
/// the output the build is asked for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    pub vertices: BTreeMap<Digest, Vertex>,
    #[serde(default)]
    pub metadata: BTreeMap<Digest, OpMetadata>,
    /// The requested output; `None` means an empty filesystem (`scratch`).
    pub target: Option<Input>,
}

#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    #[error("Vertex `{vertex}` reads input `{input}`, which is not in the definition")]
    MissingInput { vertex: Digest, input: Digest },
    #[error("Vertex stored under `{stored}` has digest `{actual}`")]
    DigestMismatch { stored: Digest, actual: Digest },
    #[error("The definition's target `{0}` is not in the definition")]
    MissingTarget(Digest),
    #[error("Invalid LLB definition JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl Definition {
    /// Adds a vertex, returning a reference to its output `index`.
    pub fn add(&mut self, vertex: Vertex, metadata: OpMetadata, index: u32) -> Input {
        let digest = vertex.digest();
        self.vertices.entry(digest.clone()).or_insert(vertex);
        let entry = self.metadata.entry(digest.clone()).or_default();
        if entry.description.is_empty() {
            *entry = metadata;
        }
        Input { digest, index }
    }

    /// Checks that every digest matches its vertex and every input exists.
    pub fn validate(&self) -> Result<(), DefinitionError> {
        for (stored, vertex) in &self.vertices {
            let actual = vertex.digest();
            if &actual != stored {
                return Err(DefinitionError::DigestMismatch {
                    stored: stored.clone(),
                    actual,
                });
            }
            for input in &vertex.inputs {
                if !self.vertices.contains_key(&input.digest) {
                    return Err(DefinitionError::MissingInput {
                        vertex: stored.clone(),
                        input: input.digest.clone(),
                    });
                }
            }
        }
        if let Some(target) = &self.target {
            if !self.vertices.contains_key(&target.digest) {
                return Err(DefinitionError::MissingTarget(target.digest.clone()));
            }
        }
        Ok(())
    }

    /// Returns the digests reachable from `target`, inputs before users.
    pub fn reachable(&self, target: &Digest) -> Vec<Digest> {
        let mut order = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![(target.clone(), false)];
        while let Some((digest, expanded)) = stack.pop() {
            if expanded {
                order.push(digest);
                continue;
            }
            if !seen.insert(digest.clone()) {
                continue;
            }
            stack.push((digest.clone(), true));
            if let Some(vertex) = self.vertices.get(&digest) {
                for input in vertex.inputs.iter().rev() {
                    if !seen.contains(&input.digest) {
                        stack.push((input.digest.clone(), false));
                    }
                }
            }
        }
        order
    }

    /// Serializes the definition as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("LLB definitions always serialize")
    }

    /// Parses and validates a definition written by [`Definition::to_json`].
    pub fn from_json(text: &str) -> Result<Definition, DefinitionError> {
        let definition: Definition = serde_json::from_str(text)?;
        definition.validate()?;
        Ok(definition)
    }
}

#[cfg(test)]
mod tests;
