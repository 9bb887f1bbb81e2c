//! The solver's [`Backend`] for one build: images and the build context
//! from the source crate, execution from the worker, cache records from
//! the store.

use crate::cache::CacheImports;
use anyhow::{Context, bail};
use async_trait::async_trait;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use strata_dockerfile::dockerignore::DockerIgnore;
use strata_llb::{Digest, SourceOp, Vertex};
use strata_solver::{Backend, Event, EventSink, ResultRef, Selector, SourceResult, VertexContext};
use strata_source::context::{ContextLease, ContextSource, SyncRequest};
use strata_source::load_image;
use strata_source::watch::{ContextChanges, PendingChanges};
use strata_store::{Lease, Store};
use strata_worker::{ExecSession, Worker};

/// A named local directory the build may read (`local://NAME`).
pub(crate) struct LocalDir {
    pub name: String,
    pub dir: PathBuf,
    pub ignore: DockerIgnore,
    /// Changes a watcher recorded since the last sync; `None` walks the
    /// whole directory.
    pub changes: Option<ContextChanges>,
}

pub(crate) struct BuildBackend {
    pub store: Arc<Store>,
    pub worker: Arc<Worker>,
    pub locals: Vec<LocalDir>,
    /// Context mirrors stay locked until the build ends.
    pub leases: Mutex<Vec<ContextLease>>,
    /// Caches from `--cache-from`, consulted after the local cache.
    pub imports: Option<Arc<CacheImports>>,
    pub events: EventSink,
    /// Every cache key looked up or saved, in order, for `--cache-to`.
    pub keys: Mutex<Vec<Digest>>,
    /// Keeps every snapshot the build reads or produces from garbage
    /// collection. It must outlive the context locks above.
    pub lease: Arc<Lease>,
    /// Secrets and ssh agents the build's execs may mount.
    pub session: Arc<ExecSession>,
    /// Asked for changed paths when a local directory has no watcher.
    pub context_monitor: Option<strata_source::context::MonitorConfig>,
}

impl BuildBackend {
    fn record_key(&self, key: &Digest) {
        let mut keys = self.keys.lock().expect("key list lock");
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }

    fn lease_result(&self, loaded: &SourceResult) -> anyhow::Result<()> {
        if let Some(snapshot) = &loaded.result.snapshot {
            self.lease.add(snapshot)?;
        }
        Ok(())
    }

    /// Returns the stored download of an HTTP source, leased so GC keeps it
    /// during the conditional request.
    fn previous_download(
        &self,
        op: &SourceOp,
    ) -> anyhow::Result<Option<strata_source::http::Previous>> {
        let url = op.identifier.as_str();
        let Some(validators) = strata_source::http::previous_validators(&self.store, url) else {
            return Ok(None);
        };
        Ok(match self.lease.cache_get(&validators.key)? {
            Some(Some(snapshot)) => Some(strata_source::http::Previous {
                validators,
                snapshot,
            }),
            _ => None,
        })
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
        let pending = local.changes.as_ref().map(ContextChanges::take);
        let dirty = match &pending {
            Some(PendingChanges::Paths(paths)) => Some(paths),
            Some(PendingChanges::FullWalk(reason)) => {
                tracing::info!(local = name, "walking the whole directory: {reason}");
                None
            }
            None => None,
        };
        let request = SyncRequest {
            dir: &local.dir,
            ignore: &local.ignore,
            follow_paths: &follow_paths,
            dirty,
            monitor: match local.changes {
                Some(_) => None,
                None => self.context_monitor.as_ref(),
            },
        };
        let lease = match ContextSource::new(self.store.clone()).sync(&request) {
            Ok(lease) => lease,
            Err(error) => {
                // The mirror may be half updated: read the same paths again.
                if let (Some(changes), Some(pending)) = (&local.changes, pending) {
                    changes.restore(pending);
                }
                return Err(error);
            }
        };
        // Measuring the mirror stats every file, so skip it when the sync
        // copied and removed nothing and the recorded size still holds.
        if lease.stats.changed_total > 0 || lease.stats.removed > 0 {
            self.store.update_context_size(&lease.snapshot)?;
        }
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
                let previous = self.previous_download(op)?;
                let loaded = strata_source::http::load_http(&self.store, op, previous).await?;
                self.lease_result(&loaded)?;
                // Recorded under the source key, so the next build finds
                // the file again and GC treats it as a cache record.
                self.store
                    .cache_put(&loaded.key, loaded.result.snapshot.as_deref())?;
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
        // A plain path copied from a context mirror is hashed from the
        // mirror's index, so unchanged files are not read again.
        let wildcard = selector.allow_wildcard && selector.path.contains(['*', '?', '[']);
        let filtered =
            !selector.include_patterns.is_empty() || !selector.exclude_patterns.is_empty();
        if let (Some(snapshot), false, false) = (&input.snapshot, wildcard, filtered) {
            let leases = self.leases.lock().expect("lease list lock");
            let from_index = leases
                .iter()
                .find(|lease| &lease.snapshot == snapshot)
                .and_then(|lease| lease.path_checksum(&selector.path));
            if let Some(checksum) = from_index {
                return Ok(checksum);
            }
        }
        self.worker.checksum(input, selector).await
    }

    async fn cache_lookup(&self, key: &Digest) -> anyhow::Result<Option<ResultRef>> {
        self.record_key(key);
        if let Some(snapshot) = self.lease.cache_get(key)? {
            if let Some(imports) = &self.imports {
                imports.note_local_hit(key);
            }
            return Ok(Some(ResultRef { snapshot }));
        }
        let Some(imports) = &self.imports else {
            return Ok(None);
        };
        match imports.lookup(&self.store, key).await {
            Ok(Some((source, snapshot))) => {
                if let Some(id) = &snapshot {
                    self.lease.add(id)?;
                }
                self.store.cache_put(key, snapshot.as_deref())?;
                self.events.emit(Event::CacheImported {
                    key: key.clone(),
                    source,
                });
                Ok(Some(ResultRef { snapshot }))
            }
            Ok(None) => Ok(None),
            // A broken import costs a rebuild of the step, not the build.
            Err(error) => {
                self.events.emit(Event::Warning {
                    message: format!("{error:#}; running the step instead"),
                    location: None,
                });
                Ok(None)
            }
        }
    }

    async fn cache_save(&self, key: &Digest, result: &ResultRef) -> anyhow::Result<()> {
        self.record_key(key);
        self.store.cache_put(key, result.snapshot.as_deref())
    }

    async fn execute(
        &self,
        vertex: &Vertex,
        inputs: &[ResultRef],
        cx: &VertexContext,
    ) -> anyhow::Result<ResultRef> {
        let result = self
            .worker
            .execute_in_session(vertex, inputs, cx, &self.session)
            .await?;
        if let Some(snapshot) = &result.snapshot {
            self.lease.add(snapshot)?;
        }
        Ok(result)
    }
}
