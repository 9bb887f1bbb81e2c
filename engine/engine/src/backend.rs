//! The solver's [`Backend`] for one build: images and the build context
//! from the source crate, execution from the worker, cache records from
//! the store.

use anyhow::{Context, bail};
use async_trait::async_trait;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use strata_dockerfile::dockerignore::DockerIgnore;
use strata_llb::{Digest, SourceOp, Vertex};
use strata_solver::{Backend, Event, ResultRef, Selector, SourceResult, VertexContext};
use strata_source::context::{ContextLease, ContextSource, SyncRequest};
use strata_source::load_image;
use strata_store::{Lease, Store};
use strata_worker::Worker;

/// A named local directory the build may read (`local://NAME`).
pub(crate) struct LocalDir {
    pub name: String,
    pub dir: PathBuf,
    pub ignore: DockerIgnore,
}

pub(crate) struct BuildBackend {
    pub store: Arc<Store>,
    pub worker: Arc<Worker>,
    pub locals: Vec<LocalDir>,
    /// Context mirrors stay locked until the build ends.
    pub leases: Mutex<Vec<ContextLease>>,
    /// Keeps every snapshot the build reads or produces from garbage
    /// collection. It must outlive the context locks above.
    pub lease: Arc<Lease>,
}

impl BuildBackend {
    fn lease_result(&self, loaded: &SourceResult) -> anyhow::Result<()> {
        if let Some(snapshot) = &loaded.result.snapshot {
            self.lease.add(snapshot)?;
        }
        Ok(())
    }

    fn load_local(
        &self,
        name: &str,
        op: &SourceOp,
        cx: &VertexContext,
    ) -> anyhow::Result<SourceResult> {
        let Some(local) = self.locals.iter().find(|l| l.name == name) else {
            bail!("The build reads local source `{name}`, but no directory was given for it");
        };
        let follow_paths: Vec<String> = match op.attrs.get(SourceOp::LOCAL_FOLLOW_PATHS) {
            Some(json) => serde_json::from_str(json).with_context(|| {
                format!(
                    "Invalid `{}` attribute `{json}`",
                    SourceOp::LOCAL_FOLLOW_PATHS
                )
            })?,
            None => Vec::new(),
        };
        let request = SyncRequest {
            dir: &local.dir,
            ignore: &local.ignore,
            follow_paths: &follow_paths,
        };
        let lease = ContextSource::new(self.store.clone()).sync(&request)?;
        self.store.update_context_size(&lease.snapshot)?;
        self.lease.add(&lease.snapshot)?;
        let stats = &lease.stats;
        cx.events.emit(Event::Progress {
            vertex: Some(cx.vertex.clone()),
            id: "transfer".into(),
            current: stats.copied_bytes,
            total: None,
            unit: "bytes".into(),
        });
        cx.events.emit(Event::ContextTransfer {
            vertex: cx.vertex.clone(),
            stats: stats.clone(),
        });
        let result = SourceResult {
            key: lease.checksum.clone(),
            result: ResultRef::snapshot(lease.snapshot.clone()),
        };
        self.leases.lock().expect("lease list lock").push(lease);
        Ok(result)
    }
}

#[async_trait]
impl Backend for BuildBackend {
    async fn load_source(&self, op: &SourceOp, cx: &VertexContext) -> anyhow::Result<SourceResult> {
        match op.scheme() {
            ("docker-image", reference) => {
                let loaded = load_image(&self.store, reference)?;
                if let Some(snapshot) = &loaded.result.snapshot {
                    self.lease.add(snapshot)?;
                }
                Ok(loaded)
            }
            ("local", name) => {
                // The sync is disk-bound; keep it off the scheduler's threads.
                tokio::task::block_in_place(|| self.load_local(name, op, cx))
            }
            ("http" | "https", _) => {
                let loaded = strata_source::http::load_http(&self.store, op).await?;
                self.lease_result(&loaded)?;
                Ok(loaded)
            }
            ("git", _) => {
                let loaded =
                    tokio::task::block_in_place(|| strata_source::git::load_git(&self.store, op))?;
                self.lease_result(&loaded)?;
                Ok(loaded)
            }
            (scheme, _) => bail!(
                "Source `{}` is not supported: Strata reads `docker-image://`, `local://`, `http(s)://` and `git://` sources",
                if scheme.is_empty() {
                    op.identifier.as_str()
                } else {
                    scheme
                }
            ),
        }
    }

    async fn checksum(&self, input: &ResultRef, selector: &Selector) -> anyhow::Result<Digest> {
        self.worker.checksum(input, selector).await
    }

    async fn cache_lookup(&self, key: &Digest) -> anyhow::Result<Option<ResultRef>> {
        Ok(self
            .lease
            .cache_get(key)?
            .map(|snapshot| ResultRef { snapshot }))
    }

    async fn cache_save(&self, key: &Digest, result: &ResultRef) -> anyhow::Result<()> {
        self.store.cache_put(key, result.snapshot.as_deref())
    }

    async fn execute(
        &self,
        vertex: &Vertex,
        inputs: &[ResultRef],
        cx: &VertexContext,
    ) -> anyhow::Result<ResultRef> {
        let result = self.worker.execute(vertex, inputs, cx).await?;
        if let Some(snapshot) = &result.snapshot {
            self.lease.add(snapshot)?;
        }
        Ok(result)
    }
}
