//! The extra mounts of an exec: bind mounts of other results, persistent
//! cache directories, tmpfs, secret files and forwarded ssh agents.
//!
//! Everything set up here lives in guards that undo it when dropped, so a
//! failed exec leaves no mount, lock or proxy behind.

use crate::runc::{BindMount, TmpfsMount};
use crate::worker::{ReadOnlyView, input_result, new_mount_point};
use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use nix::mount::{MsFlags, mount};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_llb::{CacheSharing, ExecOp, Mount, MountKind};
use strata_solver::ResultRef;
use strata_store::Store;

/// Maximum number of instances of one `sharing=private` cache id. Each
/// concurrent user of a busy id takes one more, and past this an exec fails.
const MAX_PRIVATE_INSTANCES: usize = 256;

/// A secret's bytes, kept out of `Debug` output so it cannot reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(pub Vec<u8>);

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretValue({} bytes)", self.0.len())
    }
}

/// Secret values and ssh agent sockets of one build, by id. Only the ids
/// appear in the graph, and the values stay in this session.
#[derive(Clone, Debug, Default)]
pub struct ExecSession {
    pub secrets: BTreeMap<String, SecretValue>,
    /// Agent sockets on the host, forwarded through a proxy socket.
    pub ssh: BTreeMap<String, PathBuf>,
}

/// The mounts of one exec and the guards that keep them alive.
#[derive(Default)]
pub(crate) struct PreparedMounts {
    pub binds: Vec<BindMount>,
    pub tmpfs: Vec<TmpfsMount>,
    /// `NAME=value` entries of secrets exposed as environment variables.
    pub env: Vec<String>,
    guards: Vec<Guard>,
}

/// Something an exec's mount needs until the exec ends.
#[expect(
    dead_code,
    reason = "the values are held only for their `Drop` implementations"
)]
enum Guard {
    View(ReadOnlyView),
    Scratch(ScratchOverlay),
    Cache(Flock<std::fs::File>),
    Secrets(SecretDir),
    Ssh(crate::ssh::AgentProxy),
}

/// Inputs to setting up the mounts of one exec.
pub(crate) struct MountContext {
    pub store: Arc<Store>,
    pub mounts_dir: PathBuf,
    pub inputs: Vec<ResultRef>,
    pub session: Arc<ExecSession>,
    /// The runtime that runs ssh agent proxies.
    pub runtime: tokio::runtime::Handle,
}

/// Sets up every mount of `exec` except the root. It blocks on mounts,
/// copies and cache locks, so call it off the async scheduler.
pub(crate) fn prepare_mounts(cx: &MountContext, exec: &ExecOp) -> Result<PreparedMounts> {
    let mut prepared = PreparedMounts {
        env: secret_env(exec, &cx.session)?,
        ..PreparedMounts::default()
    };
    let mut secrets = Vec::new();
    for mount in exec.mounts.iter().filter(|mount| mount.dest != "/") {
        match &mount.kind {
            MountKind::Bind => bind_input(cx, mount, &mut prepared)?,
            MountKind::Cache { id, sharing } => cache(cx, mount, id, *sharing, &mut prepared)?,
            MountKind::Tmpfs { size } => prepared.tmpfs.push(TmpfsMount {
                dest: mount.dest.clone(),
                size: *size,
                readonly: mount.readonly,
            }),
            MountKind::Secret { id, optional, .. } => match cx.session.secrets.get(id) {
                Some(value) => secrets.push((mount, value)),
                None if *optional => {}
                None => bail!(
                    "Secret `{id}` is required by the mount at `{}` but was not provided: pass \
                     `--secret id={id},src=FILE`",
                    mount.dest
                ),
            },
            MountKind::Ssh {
                id,
                optional,
                uid,
                gid,
                mode,
            } => {
                let Some(agent) = cx.session.ssh.get(id) else {
                    if *optional {
                        continue;
                    }
                    bail!(
                        "SSH agent `{id}` is required by the mount at `{}` but was not provided: \
                         pass `--ssh {}`",
                        mount.dest,
                        if id == "default" {
                            "default".to_string()
                        } else {
                            format!("{id}=SOCKET")
                        }
                    );
                };
                let dir = new_mount_point(&cx.mounts_dir)?;
                let owner = (*uid, *gid, *mode);
                let proxy = crate::ssh::AgentProxy::start(&cx.runtime, agent, &dir, owner)?;
                prepared.binds.push(BindMount {
                    source: proxy.socket().to_path_buf(),
                    dest: mount.dest.clone(),
                    readonly: false,
                });
                prepared.guards.push(Guard::Ssh(proxy));
            }
        }
    }
    if !secrets.is_empty() {
        let dir = SecretDir::create(&new_mount_point(&cx.mounts_dir)?, &secrets)?;
        for (index, (mount, _)) in secrets.iter().enumerate() {
            prepared.binds.push(BindMount {
                source: dir.path.join(index.to_string()),
                dest: mount.dest.clone(),
                readonly: true,
            });
        }
        prepared.guards.push(Guard::Secrets(dir));
    }
    Ok(prepared)
}

/// Returns `NAME=value` for each secret the exec exposes as a variable.
fn secret_env(exec: &ExecOp, session: &ExecSession) -> Result<Vec<String>> {
    let mut env = Vec::new();
    for secret in &exec.secret_env {
        match session.secrets.get(&secret.id) {
            Some(value) => {
                let text = String::from_utf8(value.0.clone()).with_context(|| {
                    format!(
                        "Secret `{}` is not valid UTF-8, so it cannot be the variable `{}`: \
                         mount it as a file instead",
                        secret.id, secret.name
                    )
                })?;
                env.push(format!("{}={text}", secret.name));
            }
            None if secret.optional => {}
            None => bail!(
                "Secret `{}` is required for the variable `{}` but was not provided: pass \
                 `--secret id={},src=FILE`",
                secret.id,
                secret.name,
                secret.id
            ),
        }
    }
    Ok(env)
}

/// Mounts another result (or the context) at the mount's destination.
/// A writable bind gets a throwaway overlay, so its writes are discarded.
fn bind_input(cx: &MountContext, mount: &Mount, prepared: &mut PreparedMounts) -> Result<()> {
    let input = input_result(&cx.inputs, mount.input)?;
    let root = if mount.readonly {
        let view = ReadOnlyView::mount(&cx.store, &input, &new_mount_point(&cx.mounts_dir)?)?;
        let root = view.path().to_path_buf();
        prepared.guards.push(Guard::View(view));
        root
    } else {
        let scratch = ScratchOverlay::mount(cx, &input)?;
        let root = scratch.merged.clone();
        prepared.guards.push(Guard::Scratch(scratch));
        root
    };
    let source = crate::paths::resolve_in_root(&root, &mount.selector, true)?;
    if !source.exists() {
        bail!(
            "Mount source `{}` for `{}` was not found: check the mount's `source`",
            mount.selector,
            mount.dest
        );
    }
    prepared.binds.push(BindMount {
        source,
        dest: mount.dest.clone(),
        readonly: mount.readonly,
    });
    Ok(())
}

/// Locks the cache directory for `id`, fills a new one from the mount's
/// input, and bind-mounts it.
fn cache(
    cx: &MountContext,
    mount: &Mount,
    id: &str,
    sharing: CacheSharing,
    prepared: &mut PreparedMounts,
) -> Result<()> {
    let shared = sharing == CacheSharing::Shared;
    let (files, lock) = match sharing {
        CacheSharing::Shared | CacheSharing::Locked => {
            let (_, files) = cx.store.cache_mount_snapshot(&cache_key(id, 0))?;
            let arg = if shared {
                FlockArg::LockShared
            } else {
                FlockArg::LockExclusive
            };
            let file = open_lock(&lock_path(&files))?;
            let lock = Flock::lock(file, arg)
                .map_err(|(_, errno)| errno)
                .with_context(|| format!("Failed to lock cache mount `{id}`"))?;
            (files, lock)
        }
        CacheSharing::Private => private_instance(&cx.store, id)?,
    };
    initialize_cache(cx, mount, &files, &lock, shared)?;
    prepared.binds.push(BindMount {
        source: files,
        dest: mount.dest.clone(),
        readonly: mount.readonly,
    });
    prepared.guards.push(Guard::Cache(lock));
    Ok(())
}

/// Takes the first instance of `id` no other exec holds, as BuildKit
/// gives a concurrent `sharing=private` user a directory of its own.
fn private_instance(store: &Store, id: &str) -> Result<(PathBuf, Flock<std::fs::File>)> {
    for instance in 0..MAX_PRIVATE_INSTANCES {
        let (_, files) = store.cache_mount_snapshot(&cache_key(id, instance))?;
        let file = open_lock(&lock_path(&files))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok((files, lock)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => continue,
            Err((_, errno)) => {
                return Err(errno).with_context(|| format!("Failed to lock cache mount `{id}`"));
            }
        }
    }
    bail!(
        "Cache mount `{id}` has {MAX_PRIVATE_INSTANCES} private instances in use: wait for \
         other builds or use `sharing=shared`"
    )
}

/// Copies the mount's input into a cache directory that was never used.
/// A shared user upgrades to an exclusive lock for the copy and returns
/// to a shared one afterwards.
fn initialize_cache(
    cx: &MountContext,
    mount: &Mount,
    files: &Path,
    lock: &Flock<std::fs::File>,
    shared: bool,
) -> Result<()> {
    let marker = files.with_file_name("initialized");
    if marker.exists() {
        return Ok(());
    }
    if !shared {
        return fill_cache(cx, mount, files, &marker);
    }
    // NOTE: flock upgrades are not atomic: the shared lock is dropped
    // before the exclusive one is taken, so the marker is checked again.
    lock.relock(FlockArg::LockExclusive)
        .context("Failed to lock the cache mount for initialisation")?;
    let filled = fill_cache(cx, mount, files, &marker);
    let relocked = lock
        .relock(FlockArg::LockShared)
        .context("Failed to share the cache mount's lock");
    filled.and(relocked)
}

fn fill_cache(cx: &MountContext, mount: &Mount, files: &Path, marker: &Path) -> Result<()> {
    if marker.exists() {
        return Ok(());
    }
    if mount.input.is_some() {
        let input = input_result(&cx.inputs, mount.input)?;
        let view = ReadOnlyView::mount(&cx.store, &input, &new_mount_point(&cx.mounts_dir)?)?;
        let source = crate::paths::resolve_in_root(view.path(), &mount.selector, true)?;
        let mut copy = strata_llb::CopyAction::new(Some(0), mount.selector.clone(), "/");
        copy.dir_contents_only = true;
        copy.follow_symlink = true;
        crate::copy::copy(files, &copy, Some(view.path()), None)
            .with_context(|| format!("Failed to fill cache mount `{}`", mount.dest))?;
        // The copy fills the directory; its own owner and mode come from
        // the source directory, as a cache's `uid`, `gid` and `mode` set.
        let metadata = std::fs::metadata(&source)?;
        use std::os::unix::fs::MetadataExt;
        nix::unistd::chown(
            files,
            Some(nix::unistd::Uid::from_raw(metadata.uid())),
            Some(nix::unistd::Gid::from_raw(metadata.gid())),
        )?;
        std::fs::set_permissions(
            files,
            std::fs::Permissions::from_mode(metadata.mode() & 0o7777),
        )?;
    }
    std::fs::write(marker, b"")
        .with_context(|| format!("Failed to write `{}`", marker.display()))?;
    Ok(())
}

/// Returns the store key of instance `instance` of cache id `id`.
fn cache_key(id: &str, instance: usize) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"exec.cachemount\0");
    hasher.update(id.as_bytes());
    hasher.update(instance.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

fn lock_path(files: &Path) -> PathBuf {
    files.with_file_name("lock")
}

fn open_lock(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("Failed to open the lock file `{}`", path.display()))
}

/// A writable overlay on a result whose changes go to a temporary upper
/// directory that is deleted afterwards.
pub(crate) struct ScratchOverlay {
    merged: PathBuf,
    scratch: PathBuf,
    mount: Option<crate::OverlayMount>,
}

impl ScratchOverlay {
    fn mount(cx: &MountContext, input: &ResultRef) -> Result<ScratchOverlay> {
        let scratch = new_mount_point(&cx.mounts_dir)?;
        let merged = scratch.join("merged");
        let (upper, work) = (scratch.join("upper"), scratch.join("work"));
        for dir in [&merged, &upper, &work] {
            std::fs::create_dir(dir)
                .with_context(|| format!("Failed to create `{}`", dir.display()))?;
        }
        let mut overlay = ScratchOverlay {
            merged: merged.clone(),
            scratch,
            mount: None,
        };
        let lowers = match &input.snapshot {
            Some(id) => cx.store.lowers(id)?,
            None => Vec::new(),
        };
        overlay.mount = Some(crate::OverlayMount::mount(
            &lowers,
            Some((&upper, &work)),
            &merged,
        )?);
        Ok(overlay)
    }
}

impl Drop for ScratchOverlay {
    fn drop(&mut self) {
        drop(self.mount.take());
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// A tmpfs holding one file per secret, named by index, so secret values
/// never touch a disk.
pub(crate) struct SecretDir {
    path: PathBuf,
    mounted: bool,
}

impl SecretDir {
    fn create(path: &Path, secrets: &[(&Mount, &SecretValue)]) -> Result<SecretDir> {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0700"),
        )
        .with_context(|| {
            format!(
                "Failed to mount a tmpfs for secrets at `{}`",
                path.display()
            )
        })?;
        let dir = SecretDir {
            path: path.to_path_buf(),
            mounted: true,
        };
        for (index, (mount, value)) in secrets.iter().enumerate() {
            let MountKind::Secret { uid, gid, mode, .. } = &mount.kind else {
                continue;
            };
            let file = dir.path.join(index.to_string());
            std::fs::write(&file, &value.0)?;
            nix::unistd::chown(
                &file,
                Some(nix::unistd::Uid::from_raw(*uid)),
                Some(nix::unistd::Gid::from_raw(*gid)),
            )?;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(*mode & 0o7777))?;
        }
        Ok(dir)
    }
}

impl Drop for SecretDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Paths that runc creates in the rootfs as mount points, deepest last,
/// so they can be removed after the exec and stay out of the layer, as
/// BuildKit's mount stub cleaner does.
pub(crate) fn missing_mount_points(rootfs: &Path, dests: &[&str]) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    for dest in dests {
        let mut partial = String::new();
        for part in dest.split('/').filter(|p| !p.is_empty()) {
            partial.push('/');
            partial.push_str(part);
            let host = crate::paths::resolve_in_root(rootfs, &partial, false)?;
            if std::fs::symlink_metadata(&host).is_err() && !missing.contains(&host) {
                missing.push(host);
            }
        }
    }
    Ok(missing)
}

/// Removes the mount points runc created, if they are still empty.
pub(crate) fn remove_mount_points(created: &[PathBuf]) {
    for path in created.iter().rev() {
        let Ok(metadata) = std::fs::symlink_metadata(path) else {
            continue;
        };
        let removed = if metadata.is_dir() {
            std::fs::remove_dir(path)
        } else if metadata.len() == 0 {
            std::fs::remove_file(path)
        } else {
            continue;
        };
        if let Err(error) = removed {
            tracing::debug!(path = %path.display(), "kept a mount point: {error}");
        }
    }
}

/// The directory of a `RUN --mount=type=cache` id, held under its lock,
/// for exporting and importing cache mounts. A shared lock keeps out
/// `locked` and `private` users but not `shared` ones, which hold a shared
/// lock while their command runs.
pub struct CacheMountDir {
    /// The mount's files, which an exec finds at the mount's target.
    pub files: PathBuf,
    _lock: Flock<std::fs::File>,
}

impl CacheMountDir {
    /// Locks instance 0 of cache id `id`: the directory that `shared` and
    /// `locked` users share and that the first `private` user takes. An
    /// exclusive lock waits for every exec using it. Returns `None` when
    /// `create` is false and this store has no directory for the id.
    pub fn open(
        store: &Store,
        id: &str,
        exclusive: bool,
        create: bool,
    ) -> Result<Option<CacheMountDir>> {
        let key = cache_key(id, 0);
        // The store names a mutable snapshot by the first 32 hex digits of its key.
        if !create && store.snapshot(&key[..32]).is_err() {
            return Ok(None);
        }
        let (_, files) = store.cache_mount_snapshot(&key)?;
        let arg = if exclusive {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockShared
        };
        let lock = Flock::lock(open_lock(&lock_path(&files))?, arg)
            .map_err(|(_, errno)| errno)
            .with_context(|| format!("Failed to lock cache mount `{id}`"))?;
        Ok(Some(CacheMountDir { files, _lock: lock }))
    }

    /// Returns whether an exec or an import has filled the directory.
    pub fn is_initialized(&self) -> bool {
        self.files.with_file_name("initialized").exists()
    }

    /// Marks the directory as filled, so that the first exec using it does
    /// not copy the mount's `from` source or owner into it.
    pub fn mark_initialized(&self) -> Result<()> {
        let marker = self.files.with_file_name("initialized");
        std::fs::write(&marker, b"")
            .with_context(|| format!("Failed to write `{}`", marker.display()))
    }
}
