//! Scheduling and cache keys.
//!
//! Every vertex the target needs becomes one tokio task that waits for its
//! inputs, computes its cache key, and either reuses a cached result or has
//! the backend run it. A semaphore bounds how many run at once.
//!
//! Cache key of a vertex (sha256 over canonical JSON of):
//! - `op`: the digest of the vertex with its inputs removed, so the key
//!   does not depend on how the inputs were computed, only on what they are;
//! - `inputs`: for each input in order, its output index and either its own
//!   cache key or, when the op is a file op that copies from that input, the
//!   content checksums of exactly the paths it copies (so editing an
//!   unrelated file of the build context does not invalidate a `COPY src/`).
//!
//! A source's key is the digest of the op and the identity the backend
//! reports for its content (manifest digest, context checksum).

use crate::backend::{Backend, ResultRef, Selector, VertexContext};
use crate::events::{Event, EventSink, KeyInput, PathChecksum};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use strata_llb::{Definition, Digest, FileAction, Input, Op, OpMetadata, Vertex};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct SolveOptions {
    /// Maximum number of vertices running at once.
    pub max_parallel: usize,
    /// Skip cache lookups for every vertex (results are still saved).
    pub no_cache: bool,
}

/// Steps allowed to run at once per CPU by default. Build steps spend much
/// of their time waiting (on package downloads, on `sleep`, on disk), so
/// bounding them by the core count alone leaves cores idle; CPU-bound steps
/// beyond the core count share the cores through the kernel's scheduler.
/// BuildKit sets no bound at all unless configured.
pub const DEFAULT_STEPS_PER_CPU: usize = 4;

/// Returns the default bound on steps running at once: [`DEFAULT_STEPS_PER_CPU`]
/// times the number of CPUs.
pub fn default_max_parallel() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * DEFAULT_STEPS_PER_CPU
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            max_parallel: default_max_parallel(),
            no_cache: false,
        }
    }
}

/// A failed build step.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SolveError {
    #[error("{name}: {message}")]
    Vertex {
        vertex: Digest,
        name: String,
        metadata: Box<OpMetadata>,
        message: String,
    },
    #[error("Build canceled")]
    Canceled,
    #[error("Invalid definition: {0}")]
    Definition(String),
    /// A shared execution failed; the message is already complete.
    #[error("{0}")]
    Execution(String),
}

#[derive(Clone, Debug)]
struct Outcome {
    key: Digest,
    result: ResultRef,
}

type VertexFuture = Shared<BoxFuture<'static, Result<Outcome, SolveError>>>;

/// Solves definitions against one backend. Concurrent solves on the same
/// solver share executions of vertices with equal cache keys.
pub struct Solver {
    backend: Arc<dyn Backend>,
    options: SolveOptions,
    limit: Arc<Semaphore>,
    in_flight: Arc<Mutex<HashMap<Digest, VertexFuture>>>,
}

impl Solver {
    pub fn new(backend: Arc<dyn Backend>, options: SolveOptions) -> Solver {
        let limit = Arc::new(Semaphore::new(options.max_parallel.max(1)));
        Solver {
            backend,
            options,
            limit,
            in_flight: Arc::default(),
        }
    }

    /// Solves the definition's target and returns its result. Only vertices
    /// reachable from the target run.
    pub async fn solve(
        &self,
        definition: &Definition,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<ResultRef, SolveError> {
        definition
            .validate()
            .map_err(|e| SolveError::Definition(e.to_string()))?;
        let Some(target) = &definition.target else {
            return Ok(ResultRef::EMPTY);
        };
        let order = definition.reachable(&target.digest);
        for digest in &order {
            let vertex = &definition.vertices[digest];
            let metadata = definition.metadata.get(digest).cloned().unwrap_or_default();
            events.emit(Event::VertexQueued {
                vertex: digest.clone(),
                name: display_name(&metadata, vertex),
                stage: metadata.stage.clone(),
                location: metadata.location.clone(),
                inputs: vertex.inputs.iter().map(|i| i.digest.clone()).collect(),
            });
        }

        // A failure anywhere stops the rest of this build.
        let build_cancel = cancel.child_token();
        let mut futures: HashMap<Digest, VertexFuture> = HashMap::new();
        for digest in &order {
            let vertex = definition.vertices[digest].clone();
            let metadata = definition.metadata.get(digest).cloned().unwrap_or_default();
            let inputs: Vec<VertexFuture> = vertex
                .inputs
                .iter()
                .map(|input| futures[&input.digest].clone())
                .collect();
            let task = VertexTask {
                digest: digest.clone(),
                vertex,
                metadata,
                inputs,
                backend: self.backend.clone(),
                limit: self.limit.clone(),
                in_flight: self.in_flight.clone(),
                no_cache: self.options.no_cache,
                events: events.clone(),
                cancel: build_cancel.clone(),
            };
            let handle = tokio::spawn(task.run());
            let shared = async move {
                handle.await.unwrap_or_else(|panic| {
                    Err(SolveError::Definition(format!(
                        "internal error: a build task panicked: {panic}"
                    )))
                })
            }
            .boxed()
            .shared();
            futures.insert(digest.clone(), shared);
        }

        let result = futures[&target.digest].clone().await;
        // Let every started task settle so none outlives the solve.
        let all: Vec<_> = futures.values().cloned().collect();
        futures::future::join_all(all).await;
        result.map(|outcome| outcome.result)
    }
}

fn display_name(metadata: &OpMetadata, vertex: &Vertex) -> String {
    if !metadata.description.is_empty() {
        return metadata.description.clone();
    }
    match &vertex.op {
        Op::Source(source) => source.identifier.clone(),
        Op::Exec(exec) => exec.meta.args.join(" "),
        other => other.kind().to_string(),
    }
}

struct VertexTask {
    digest: Digest,
    vertex: Vertex,
    metadata: OpMetadata,
    inputs: Vec<VertexFuture>,
    backend: Arc<dyn Backend>,
    limit: Arc<Semaphore>,
    in_flight: Arc<Mutex<HashMap<Digest, VertexFuture>>>,
    no_cache: bool,
    events: EventSink,
    cancel: CancellationToken,
}

impl VertexTask {
    async fn run(self) -> Result<Outcome, SolveError> {
        let mut inputs = Vec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            // An input that failed already reported itself; this vertex
            // just does not run.
            inputs.push(input.clone().await?);
        }
        if self.cancel.is_cancelled() {
            return Err(SolveError::Canceled);
        }

        let started = Instant::now();
        self.events.emit(Event::VertexStarted {
            vertex: self.digest.clone(),
        });
        let cx = VertexContext {
            vertex: self.digest.clone(),
            description: display_name(&self.metadata, &self.vertex),
            events: self.events.clone(),
            cancel: self.cancel.clone(),
        };
        match self.compute(&inputs, &cx, started).await {
            Ok(outcome) => Ok(outcome),
            Err(error) => {
                let message = format!("{error:#}");
                let canceled = self.cancel.is_cancelled();
                self.cancel.cancel();
                let duration_ms = started.elapsed().as_millis() as u64;
                if canceled {
                    self.events.emit(Event::VertexFailed {
                        vertex: self.digest.clone(),
                        error: "canceled".into(),
                        duration_ms,
                    });
                    return Err(SolveError::Canceled);
                }
                self.events.emit(Event::VertexFailed {
                    vertex: self.digest.clone(),
                    error: message.clone(),
                    duration_ms,
                });
                Err(SolveError::Vertex {
                    vertex: self.digest.clone(),
                    name: cx.description.clone(),
                    metadata: Box::new(self.metadata.clone()),
                    message,
                })
            }
        }
    }

    async fn compute(
        &self,
        inputs: &[Outcome],
        cx: &VertexContext,
        started: Instant,
    ) -> anyhow::Result<Outcome> {
        if let Op::Source(source) = &self.vertex.op {
            let _permit = self.limit.acquire().await?;
            let loaded = self.backend.load_source(source, cx).await?;
            let key = digest_json(&json!({ "op": self.digest, "content": loaded.key }));
            self.complete(Some(&key), started);
            return Ok(Outcome {
                key,
                result: loaded.result,
            });
        }

        let key = self.cache_key(inputs).await?;
        if !self.no_cache && !self.metadata.ignore_cache {
            if let Some(result) = self.backend.cache_lookup(&key).await? {
                self.events.emit(Event::VertexCached {
                    vertex: self.digest.clone(),
                    key: key.clone(),
                });
                return Ok(Outcome { key, result });
            }
        }

        let shared = self.shared_execution(&key, inputs, cx);
        let outcome = shared.await.map_err(|e| anyhow::anyhow!(e.to_string()))?;
        self.complete(Some(&outcome.key), started);
        Ok(outcome)
    }

    /// Returns the execution of this key already running in this process,
    /// or starts one.
    fn shared_execution(
        &self,
        key: &Digest,
        inputs: &[Outcome],
        cx: &VertexContext,
    ) -> VertexFuture {
        let mut in_flight = self.in_flight.lock().expect("in-flight map lock");
        if let Some(existing) = in_flight.get(key) {
            return existing.clone();
        }
        let backend = self.backend.clone();
        let limit = self.limit.clone();
        let vertex = self.vertex.clone();
        let results: Vec<ResultRef> = inputs.iter().map(|o| o.result.clone()).collect();
        let cx = cx.clone();
        let key_owned = key.clone();
        let registry = self.in_flight.clone();
        let future = async move {
            let outcome = async {
                let _permit = limit.acquire().await.map_err(|e| e.to_string())?;
                let result = backend
                    .execute(&vertex, &results, &cx)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                backend
                    .cache_save(&key_owned, &result)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                Ok::<_, String>(result)
            }
            .await;
            registry
                .lock()
                .expect("in-flight map lock")
                .remove(&key_owned);
            outcome
                .map(|result| Outcome {
                    key: key_owned,
                    result,
                })
                .map_err(SolveError::Execution)
        }
        .boxed()
        .shared();
        in_flight.insert(key.clone(), future.clone());
        future
    }

    async fn cache_key(&self, inputs: &[Outcome]) -> anyhow::Result<Digest> {
        let selectors = copy_selectors(&self.vertex);
        let mut keyed_inputs = Vec::with_capacity(inputs.len());
        for (index, (input, outcome)) in self.vertex.inputs.iter().zip(inputs).enumerate() {
            keyed_inputs.push(
                self.input_key(index as u32, input, outcome, &selectors)
                    .await?,
            );
        }
        let op = self.vertex.without_inputs().digest();
        let key = digest_json(&json!({ "op": op, "inputs": keyed_inputs }));
        self.events.emit(Event::CacheKey {
            vertex: self.digest.clone(),
            key: key.clone(),
            op,
            inputs: keyed_inputs,
        });
        Ok(key)
    }

    async fn input_key(
        &self,
        index: u32,
        input: &Input,
        outcome: &Outcome,
        selectors: &[(u32, Selector)],
    ) -> anyhow::Result<KeyInput> {
        let read_by_copy: Vec<&Selector> = selectors
            .iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, s)| s)
            .collect();
        let used_otherwise = match &self.vertex.op {
            Op::File(file) => file.base == Some(index),
            _ => true,
        };
        let mut content = Vec::new();
        for selector in &read_by_copy {
            let checksum = self.backend.checksum(&outcome.result, selector).await?;
            content.push(PathChecksum {
                path: selector.path.clone(),
                checksum,
            });
        }
        let key = (used_otherwise || read_by_copy.is_empty()).then(|| outcome.key.clone());
        Ok(KeyInput {
            index: input.index,
            key,
            content,
        })
    }

    fn complete(&self, key: Option<&Digest>, started: Instant) {
        self.events.emit(Event::VertexCompleted {
            vertex: self.digest.clone(),
            key: key.cloned(),
            duration_ms: started.elapsed().as_millis() as u64,
        });
    }
}

/// Lists, per input index, what the vertex's copy actions read from it.
fn copy_selectors(vertex: &Vertex) -> Vec<(u32, Selector)> {
    let Op::File(file) = &vertex.op else {
        return Vec::new();
    };
    file.actions
        .iter()
        .filter_map(|action| match action {
            FileAction::Copy(copy) => copy.src_input.map(|input| {
                let selector = Selector {
                    path: copy.src.clone(),
                    allow_wildcard: copy.allow_wildcard,
                    follow_symlink: copy.follow_symlink,
                    include_patterns: copy.include_patterns.clone(),
                    exclude_patterns: copy.exclude_patterns.clone(),
                };
                (input, selector)
            }),
            _ => None,
        })
        .collect()
}

fn digest_json(value: &serde_json::Value) -> Digest {
    Digest::of_bytes(&serde_json::to_vec(value).expect("JSON values always serialize"))
}

#[cfg(test)]
mod tests;
