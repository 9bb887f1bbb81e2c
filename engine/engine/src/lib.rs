//! The embedding API: one [`Engine`] per store, whose [`Engine::build`]
//! runs a Dockerfile build from parsing to export. The CLI, the workbench
//! and tests all build through it.

mod backend;
mod build;
pub mod cache;
mod contexts;
mod gc;
mod session;
mod watch;

pub use build::{
    BuildError, BuildRequest, BuildResult, DockerfileSource, read_dockerfile, read_dockerignore,
};
pub use gc::KEEP_STORAGE_ENV;
pub use session::{INSECURE_ENTITLEMENT, SecretSource, SecretSpec, SshSpec, check_entitlement};
pub use strata_source::context::MonitorConfig;
pub use strata_source::monitor;
pub use strata_source::watch::ChangeBatch;
pub use watch::WatchSession;

use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use strata_store::Store;
use strata_worker::{Worker, WorkerConfig};

/// Settings for opening an engine.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Store root; `None` picks `$STRATA_ROOT` or the default location.
    pub root: Option<PathBuf>,
    /// Maximum number of steps running at once; defaults to four per CPU
    /// (see `strata_solver::DEFAULT_STEPS_PER_CPU`).
    pub max_parallel: Option<usize>,
    /// How to start a context monitor, so one-shot builds stat only the
    /// context paths that changed since the last build (see
    /// `strata_source::monitor`); `None` walks the whole context.
    pub context_monitor: Option<MonitorConfig>,
}

/// A build engine bound to one store.
pub struct Engine {
    store: Arc<Store>,
    worker: Arc<Worker>,
    max_parallel: usize,
    auto_gc: gc::AutoGc,
    context_monitor: Option<MonitorConfig>,
}

impl Engine {
    pub fn open(options: EngineOptions) -> anyhow::Result<Engine> {
        let auto_gc = gc::AutoGc::from_env()?;
        let root = options.root.unwrap_or_else(Store::default_root);
        let store = Store::open(&root)
            .with_context(|| format!("Failed to open the store at `{}`", root.display()))?;
        let worker = Arc::new(Worker::new(store.clone(), WorkerConfig::for_store(&store)));
        let max_parallel = options
            .max_parallel
            .unwrap_or_else(strata_solver::default_max_parallel);
        Ok(Engine {
            store,
            worker,
            max_parallel,
            auto_gc,
            context_monitor: options.context_monitor,
        })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}
