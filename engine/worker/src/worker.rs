//! The store glue: runs exec and file ops on snapshots from the store.

use crate::checksum::checksum;
use crate::fileop::apply_file_actions;
use crate::mount::OverlayMount;
use crate::runc::{BindMount, ExecRequest, RuncExecutor};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use strata_llb::{Digest, ExecOp, FileAction, FileOp, MountKind, Op, Vertex};
use strata_solver::{ResultRef, Selector, VertexContext};
use strata_store::{ActiveSnapshot, SnapshotKind, Store};

static MOUNT_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Where the worker finds runc and keeps its own state.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub runc: PathBuf,
    /// Directory for runc's state, bundles and mount points.
    pub state_dir: PathBuf,
}

impl WorkerConfig {
    /// Uses `runc` from `PATH` and `worker/` under the store's root.
    pub fn for_store(store: &Store) -> WorkerConfig {
        WorkerConfig {
            runc: PathBuf::from("runc"),
            state_dir: store.root().join("worker"),
        }
    }
}

/// Computes exec and file ops, storing each result as a snapshot.
pub struct Worker {
    store: Arc<Store>,
    executor: RuncExecutor,
    mounts_dir: PathBuf,
}

impl Worker {
    pub fn new(store: Arc<Store>, config: WorkerConfig) -> Worker {
        let executor = RuncExecutor {
            runc: config.runc,
            state_root: config.state_dir.join("runc"),
        };
        Worker {
            store,
            executor,
            mounts_dir: config.state_dir.join("mounts"),
        }
    }

    /// Runs an exec or file op on its inputs' results.
    pub async fn execute(
        &self,
        vertex: &Vertex,
        inputs: &[ResultRef],
        cx: &VertexContext,
    ) -> Result<ResultRef> {
        match &vertex.op {
            Op::Exec(exec) => self.execute_exec(exec, inputs, cx).await,
            Op::File(file) => self.execute_file(file, inputs).await,
            Op::Merge(merge) => {
                let store = self.store.clone();
                let inputs = merge
                    .inputs
                    .iter()
                    .map(|index| input_result(inputs, Some(*index)))
                    .collect::<Result<Vec<_>>>()?;
                tokio::task::spawn_blocking(move || crate::merge::merge(&store, &inputs)).await?
            }
            Op::Source(_) => bail!("Source ops are loaded by the source loader, not the worker"),
        }
    }

    /// Returns the checksum of what `selector` reads from `input`.
    pub async fn checksum(&self, input: &ResultRef, selector: &Selector) -> Result<Digest> {
        let store = self.store.clone();
        let input = input.clone();
        let selector = selector.clone();
        let target = self.new_mount_point()?;
        tokio::task::spawn_blocking(move || {
            let view = ReadOnlyView::mount(&store, &input, &target)?;
            let result = checksum(view.path(), &selector);
            drop(view);
            let _ = std::fs::remove_dir(&target);
            result
        })
        .await?
    }

    async fn execute_exec(
        &self,
        exec: &ExecOp,
        inputs: &[ResultRef],
        cx: &VertexContext,
    ) -> Result<ResultRef> {
        let root_mount = exec
            .mounts
            .iter()
            .find(|mount| mount.dest == "/")
            .context("The exec has no root mount: add a mount at `/`")?;
        let mut extra_views = Vec::new();
        let mut binds = Vec::new();
        for mount in exec.mounts.iter().filter(|mount| mount.dest != "/") {
            if mount.kind != MountKind::Bind || !mount.readonly {
                // TODO: writable bind, cache, tmpfs, secret and ssh mounts.
                bail!(
                    "Mount at `{}` is not supported yet: only read-only bind mounts are",
                    mount.dest
                );
            }
            let input = input_result(inputs, mount.input)?;
            let target = self.new_mount_point()?;
            let view = ReadOnlyView::mount(&self.store, &input, &target)?;
            let source = crate::paths::resolve_in_root(view.path(), &mount.selector, true)?;
            binds.push(BindMount {
                source,
                dest: mount.dest.clone(),
                readonly: true,
            });
            extra_views.push(view);
        }

        let root_input = input_result(inputs, root_mount.input)?;
        let target = self.new_mount_point()?;
        let active = self
            .store
            .prepare(root_input.snapshot.as_deref(), SnapshotKind::Regular)?;
        let mounted = mount_active(&active, &target);
        let overlay = match mounted {
            Ok(overlay) => overlay,
            Err(error) => return Err(self.abort(active, &target, error)),
        };

        let request = ExecRequest {
            rootfs: &target,
            meta: &exec.meta,
            net: exec.network,
            security: exec.security,
            binds: &binds,
        };
        let mut logs = |stream, data: &[u8]| cx.log(stream, data);
        let result = self.executor.run(request, &mut logs, &cx.cancel).await;
        drop(extra_views);

        let unmounted = overlay.unmount();
        match result.and(unmounted) {
            Ok(()) => self.commit(active, &target).await,
            Err(error) => Err(self.abort(active, &target, error)),
        }
    }

    async fn execute_file(&self, file: &FileOp, inputs: &[ResultRef]) -> Result<ResultRef> {
        let base = match file.base {
            Some(index) => input_result(inputs, Some(index))?,
            None => ResultRef::EMPTY,
        };
        let store = self.store.clone();
        let actions = file.actions.clone();
        let inputs = inputs.to_vec();
        let mounts_dir = self.mounts_dir.clone();
        let target = self.new_mount_point()?;

        let active = self
            .store
            .prepare(base.snapshot.as_deref(), SnapshotKind::Regular)?;
        let (active, result) = tokio::task::spawn_blocking(move || {
            let result =
                apply_on_snapshot(&store, &active, &target, &actions, &inputs, &mounts_dir);
            (active, result.map(|()| target))
        })
        .await?;
        match result {
            Ok(target) => self.commit(active, &target).await,
            Err(error) => {
                let error = error.context("File op failed");
                Err(match self.store.abort(active) {
                    Ok(()) => error,
                    Err(abort_error) => {
                        error.context(format!("aborting also failed: {abort_error:#}"))
                    }
                })
            }
        }
    }

    async fn commit(&self, active: ActiveSnapshot, target: &Path) -> Result<ResultRef> {
        let _ = std::fs::remove_dir(target);
        let store = self.store.clone();
        let id = tokio::task::spawn_blocking(move || store.commit(active)).await??;
        Ok(ResultRef::snapshot(id))
    }

    /// Deletes an active snapshot after `error`, keeping `error` as the
    /// cause.
    fn abort(&self, active: ActiveSnapshot, target: &Path, error: anyhow::Error) -> anyhow::Error {
        let _ = std::fs::remove_dir(target);
        match self.store.abort(active) {
            Ok(()) => error,
            Err(abort_error) => {
                tracing::warn!("failed to abort a snapshot: {abort_error:#}");
                error
            }
        }
    }

    fn new_mount_point(&self) -> Result<PathBuf> {
        new_mount_point(&self.mounts_dir)
    }
}

fn new_mount_point(mounts_dir: &Path) -> Result<PathBuf> {
    let serial = MOUNT_COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = mounts_dir.join(format!("{}-{serial}", std::process::id()));
    std::fs::create_dir_all(&path)
        .with_context(|| format!("Failed to create mount point `{}`", path.display()))?;
    Ok(path)
}

fn input_result(inputs: &[ResultRef], index: Option<u32>) -> Result<ResultRef> {
    match index {
        None => Ok(ResultRef::EMPTY),
        Some(index) => inputs.get(index as usize).cloned().with_context(|| {
            format!(
                "The op reads input {index}, but it has {} inputs",
                inputs.len()
            )
        }),
    }
}

fn mount_active(active: &ActiveSnapshot, target: &Path) -> Result<OverlayMount> {
    OverlayMount::mount(&active.lowers, Some((&active.upper, &active.work)), target)
}

/// Mounts the snapshot, mounts the inputs that copies read, applies the
/// actions and unmounts everything.
fn apply_on_snapshot(
    store: &Store,
    active: &ActiveSnapshot,
    target: &Path,
    actions: &[FileAction],
    inputs: &[ResultRef],
    mounts_dir: &Path,
) -> Result<()> {
    let overlay = mount_active(active, target)?;
    let mut views = Vec::new();
    let mut roots: Vec<Option<PathBuf>> = vec![None; inputs.len()];
    for (index, input) in inputs.iter().enumerate() {
        let read = actions.iter().any(|action| {
            matches!(action, FileAction::Copy(copy) if copy.src_input == Some(index as u32))
        });
        if !read {
            continue;
        }
        let view_target = new_mount_point(mounts_dir)?;
        let view = ReadOnlyView::mount(store, input, &view_target)?;
        roots[index] = Some(view.path().to_path_buf());
        views.push(view);
    }
    let result = apply_file_actions(target, actions, &roots);
    drop(views);
    overlay.unmount()?;
    result
}

/// A read-only view of a result at a mount point, or an empty directory
/// for an empty result; removed when dropped.
struct ReadOnlyView {
    path: PathBuf,
    mount: Option<OverlayMount>,
}

impl ReadOnlyView {
    fn mount(store: &Store, result: &ResultRef, target: &Path) -> Result<ReadOnlyView> {
        let mount = match &result.snapshot {
            Some(id) => Some(OverlayMount::mount(&store.lowers(id)?, None, target)?),
            None => None,
        };
        Ok(ReadOnlyView {
            path: target.to_path_buf(),
            mount,
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ReadOnlyView {
    fn drop(&mut self) {
        drop(self.mount.take());
        let _ = std::fs::remove_dir(&self.path);
    }
}
