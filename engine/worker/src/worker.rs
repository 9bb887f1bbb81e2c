//! The store glue: runs exec and file ops on snapshots from the store.

use crate::checksum::checksum;
use crate::fileop::apply_file_actions_linking;
use crate::mount::OverlayMount;
use crate::mounts::{
    ExecSession, MountContext, missing_mount_points, prepare_mounts, remove_mount_points,
};
use crate::reuse::{copy_up_parents, link_placeholders};
use crate::runc::{ExecRequest, RuncExecutor};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use strata_llb::{Digest, ExecOp, FileAction, FileOp, Op, Vertex};
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
        crate::recover::remove_leftovers(
            &executor.runc,
            &executor.state_root,
            &config.state_dir.join("mounts"),
        );
        Worker {
            store,
            executor,
            mounts_dir: config.state_dir.join("mounts"),
        }
    }

    /// Runs an exec or file op on its inputs' results, with no secrets or
    /// ssh agents.
    pub async fn execute(
        &self,
        vertex: &Vertex,
        inputs: &[ResultRef],
        cx: &VertexContext,
    ) -> Result<ResultRef> {
        let session = Arc::new(ExecSession::default());
        self.execute_in_session(vertex, inputs, cx, &session).await
    }

    /// Runs an exec or file op, giving execs the secrets and ssh agents of
    /// `session`.
    pub async fn execute_in_session(
        &self,
        vertex: &Vertex,
        inputs: &[ResultRef],
        cx: &VertexContext,
        session: &Arc<ExecSession>,
    ) -> Result<ResultRef> {
        match &vertex.op {
            Op::Exec(exec) => self.execute_exec(exec, inputs, cx, session).await,
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
        session: &Arc<ExecSession>,
    ) -> Result<ResultRef> {
        let root_mount = exec
            .mounts
            .iter()
            .find(|mount| mount.dest == "/")
            .context("The exec has no root mount: add a mount at `/`")?;
        let mount_cx = MountContext {
            store: self.store.clone(),
            mounts_dir: self.mounts_dir.clone(),
            inputs: inputs.to_vec(),
            session: session.clone(),
            runtime: tokio::runtime::Handle::current(),
        };
        let owned_exec = exec.clone();
        let prepared =
            tokio::task::spawn_blocking(move || prepare_mounts(&mount_cx, &owned_exec)).await??;

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

        let mut meta = exec.meta.clone();
        meta.env.extend(prepared.env.iter().cloned());
        let dests: Vec<&str> = prepared
            .binds
            .iter()
            .map(|bind| bind.dest.as_str())
            .chain(prepared.tmpfs.iter().map(|tmpfs| tmpfs.dest.as_str()))
            .collect();
        let result = match missing_mount_points(&target, &dests) {
            Ok(created) => {
                let request = ExecRequest {
                    rootfs: &target,
                    meta: &meta,
                    net: exec.network,
                    security: exec.security,
                    binds: &prepared.binds,
                    tmpfs: &prepared.tmpfs,
                };
                let mut logs = |stream, data: &[u8]| cx.log(stream, data);
                let result = self.executor.run(request, &mut logs, &cx.cancel).await;
                remove_mount_points(&created);
                result
            }
            Err(error) => Err(error),
        };
        drop(prepared);

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

pub(crate) fn new_mount_point(mounts_dir: &Path) -> Result<PathBuf> {
    let serial = MOUNT_COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = mounts_dir.join(format!("{}-{serial}", std::process::id()));
    std::fs::create_dir_all(&path)
        .with_context(|| format!("Failed to create mount point `{}`", path.display()))?;
    Ok(path)
}

pub(crate) fn input_result(inputs: &[ResultRef], index: Option<u32>) -> Result<ResultRef> {
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
/// actions and unmounts everything. A context mirror is read in place,
/// not mounted, so copies from it can hardlink its files (see
/// [`crate::reuse`]).
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
    let mut linkable = vec![false; inputs.len()];
    for (index, input) in inputs.iter().enumerate() {
        let read = actions.iter().any(|action| {
            matches!(action, FileAction::Copy(copy) if copy.src_input == Some(index as u32))
        });
        if !read {
            continue;
        }
        if let Some(mirror) = context_mirror_dir(store, input)? {
            roots[index] = Some(mirror);
            linkable[index] = true;
            continue;
        }
        let view_target = new_mount_point(mounts_dir)?;
        let view = ReadOnlyView::mount(store, input, &view_target)?;
        roots[index] = Some(view.path().to_path_buf());
        views.push(view);
    }

    // Placeholders are only safe when no other kind of action can write
    // over one before it is linked.
    let only_linkable_copies = actions.iter().all(|action| {
        matches!(action, FileAction::Copy(copy)
            if !copy.attempt_unpack
                && copy.src_input.is_some_and(|i| linkable.get(i as usize) == Some(&true)))
    });
    if !only_linkable_copies {
        linkable.fill(false);
    }

    let mut links = Vec::new();
    let result = apply_file_actions_linking(target, actions, &roots, &linkable, &mut links)
        .and_then(|()| copy_up_parents(&active.upper, target, &links));
    drop(views);
    overlay.unmount()?;
    result?;

    let linked = link_placeholders(&active.upper, target, &links)?;
    tracing::debug!(linked, placeholders = links.len(), "reused context files");
    Ok(())
}

/// Returns the directory of `input` when it is a build-context mirror,
/// which has no parent layers and can be read without a mount.
fn context_mirror_dir(store: &Store, input: &ResultRef) -> Result<Option<PathBuf>> {
    let Some(id) = &input.snapshot else {
        return Ok(None);
    };
    if store.snapshot(id)?.kind != SnapshotKind::SourceLocal {
        return Ok(None);
    }
    match store.lowers(id)?.as_slice() {
        [dir] => Ok(Some(dir.clone())),
        _ => Ok(None),
    }
}

/// A read-only view of a result at a mount point, or an empty directory
/// for an empty result; removed when dropped.
pub(crate) struct ReadOnlyView {
    path: PathBuf,
    mount: Option<OverlayMount>,
}

impl ReadOnlyView {
    pub(crate) fn mount(store: &Store, result: &ResultRef, target: &Path) -> Result<ReadOnlyView> {
        let mount = match &result.snapshot {
            Some(id) => Some(OverlayMount::mount(&store.lowers(id)?, None, target)?),
            None => None,
        };
        Ok(ReadOnlyView {
            path: target.to_path_buf(),
            mount,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ReadOnlyView {
    fn drop(&mut self) {
        drop(self.mount.take());
        let _ = std::fs::remove_dir(&self.path);
    }
}
