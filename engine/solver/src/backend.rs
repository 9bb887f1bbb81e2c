//! The contract between the solver and whatever computes results: the
//! solver schedules and keys vertices, the backend loads, runs and stores.

use crate::events::{Event, EventSink, LogStream};
use async_trait::async_trait;
use strata_llb::{Digest, SourceOp, Vertex};
use tokio_util::sync::CancellationToken;

/// A computed filesystem: a committed snapshot in the store, or `None` for
/// an empty filesystem (`scratch`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResultRef {
    pub snapshot: Option<String>,
}

impl ResultRef {
    pub const EMPTY: ResultRef = ResultRef { snapshot: None };

    pub fn snapshot(id: impl Into<String>) -> ResultRef {
        ResultRef {
            snapshot: Some(id.into()),
        }
    }
}

/// A loaded source: the key that identifies its content (an image's
/// manifest digest, a context's content checksum) and the result.
#[derive(Clone, Debug)]
pub struct SourceResult {
    pub key: Digest,
    pub result: ResultRef,
}

/// What a copy reads from one input, for content-based cache keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    /// Path or wildcard pattern inside the input.
    pub path: String,
    pub allow_wildcard: bool,
    pub follow_symlink: bool,
    pub include_patterns: Vec<String>,
    pub exclude_patterns: Vec<String>,
}

/// The running vertex as a backend sees it: where to send logs, and the
/// token that is cancelled when the build stops.
#[derive(Clone, Debug)]
pub struct VertexContext {
    pub vertex: Digest,
    pub description: String,
    pub events: EventSink,
    pub cancel: CancellationToken,
}

impl VertexContext {
    pub fn log(&self, stream: LogStream, data: &[u8]) {
        self.events.emit(Event::Log {
            vertex: self.vertex.clone(),
            stream,
            data: String::from_utf8_lossy(data).into_owned(),
        });
    }
}

#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Loads a source op (an image from the store, a build context) and
    /// returns its content identity and result.
    async fn load_source(&self, op: &SourceOp, cx: &VertexContext) -> anyhow::Result<SourceResult>;

    /// Returns a checksum of exactly the content `selector` reads from
    /// `input`: paths, modes, owners, sizes and bytes, but not mtimes.
    async fn checksum(&self, input: &ResultRef, selector: &Selector) -> anyhow::Result<Digest>;

    /// Looks up a cached result; a hit must refer to a result that exists.
    async fn cache_lookup(&self, key: &Digest) -> anyhow::Result<Option<ResultRef>>;

    /// Records `result` as the value of `key`.
    async fn cache_save(&self, key: &Digest, result: &ResultRef) -> anyhow::Result<()>;

    /// Runs an exec, file or merge op on its inputs' results.
    async fn execute(
        &self,
        vertex: &Vertex,
        inputs: &[ResultRef],
        cx: &VertexContext,
    ) -> anyhow::Result<ResultRef>;
}
