//! The store under `$STRATA_ROOT`: content-addressed blobs, overlayfs
//! snapshots, the metadata database (cache records, images) and layer
//! diffs.
//!
//! Layout (version in `VERSION`):
//! ```text
//! $STRATA_ROOT/
//!   VERSION            layout version, "1"
//!   metadata.db        SQLite in WAL mode
//!   content/sha256/    blobs by hex digest, written to tmp/ then renamed
//!   content/gc.lock    held shared while installing a blob, exclusive
//!                      while garbage collection deletes blobs
//!   snapshots/<id>/fs  a snapshot's own files (an overlay upper dir)
//!   snapshots/<id>/work  overlayfs work dir while the snapshot is active
//!   tmp/               partial writes, named `<pid>-<random>`; those of dead
//!                      processes are removed on open
//! ```
//! The store never starts processes and never mounts: it hands out
//! directories, and the worker mounts them.
//!
//! Several processes may open one root at once. SQLite's WAL mode and busy
//! timeout serialise their metadata writes, and every file a process writes
//! is named after its pid, so [`Store::open`] removes only what dead
//! processes left behind.

mod cache;
mod content;
mod db;
pub mod filter;
pub mod gc;
mod image;
pub mod layer;
mod lease;
mod recover;
mod snapshot;
mod usage;

pub use content::BlobWriter;
pub use gc::{KeepReason, PruneOptions, PruneReport};
pub use image::LAYER_MEDIA_TYPE_GZIP;
pub use layer::{LayerStats, apply_layer, decompress_layer};
pub use lease::Lease;
pub use usage::{CacheRecord, kind_type_name};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use strata_llb::Digest;
use strata_llb::image::ImageConfig;

pub type Result<T, E = anyhow::Error> = std::result::Result<T, E>;

/// What produced a snapshot, for `du` and garbage collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SnapshotKind {
    /// Unpacked from an image layer.
    Layer,
    /// The output of an exec or file op.
    Regular,
    /// A mirror of a build context.
    SourceLocal,
    /// A `RUN --mount=type=cache` directory.
    CacheMount,
}

/// A committed snapshot.
#[derive(Clone, Debug)]
pub struct SnapshotInfo {
    pub id: String,
    pub parent: Option<String>,
    pub kind: SnapshotKind,
    pub created: chrono::DateTime<chrono::Utc>,
    /// Bytes of the snapshot's own files, not its parents'.
    pub size: u64,
}

/// A snapshot being written. Mount `lowers` (top first) with `upper` and
/// `work` as an overlay, or use `upper` directly when `lowers` is empty.
/// Dropping it without [`Store::commit`] leaves it for [`Store::abort`] or
/// for recovery on the next open.
#[derive(Debug)]
pub struct ActiveSnapshot {
    pub id: String,
    pub parent: Option<String>,
    pub kind: SnapshotKind,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub lowers: Vec<PathBuf>,
}

/// One layer of an image: its compressed blob and the snapshot holding its
/// unpacked files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRecord {
    /// Digest of the compressed blob in the content store.
    pub blob: Digest,
    /// Digest of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    pub media_type: String,
    pub size: u64,
}

/// An image in the local store.
#[derive(Clone, Debug)]
pub struct ImageRecord {
    /// Normalised name, such as `docker.io/library/busybox:latest`.
    pub name: String,
    /// Digest of the image manifest blob.
    pub manifest: Digest,
    pub config: ImageConfig,
    pub layers: Vec<LayerRecord>,
    /// The snapshot whose chain holds every layer, or `None` for no layers.
    pub snapshot: Option<String>,
    pub created: chrono::DateTime<chrono::Utc>,
}

/// The layout version this build reads and writes, stored in `VERSION`.
pub const LAYOUT_VERSION: u32 = 1;

pub struct Store {
    root: PathBuf,
    db: Mutex<rusqlite::Connection>,
}

impl Store {
    /// Opens or creates the store at `root`, removing what a killed process
    /// left half-written.
    pub fn open(root: &Path) -> Result<Arc<Store>> {
        for dir in ["content/sha256", "snapshots", "tmp"] {
            let path = root.join(dir);
            std::fs::create_dir_all(&path)
                .map_err(|e| anyhow::anyhow!("Failed to create `{}`: {e}", path.display()))?;
        }
        db::check_layout_version(root)?;
        let conn = db::open(&root.join("metadata.db"))?;
        let store = Store {
            root: root.to_path_buf(),
            db: Mutex::new(conn),
        };
        store.recover()?;
        Ok(Arc::new(store))
    }

    /// `$STRATA_ROOT`, else `/var/lib/strata` for root, else the user's
    /// data directory.
    pub fn default_root() -> PathBuf {
        if let Some(root) = std::env::var_os("STRATA_ROOT").filter(|v| !v.is_empty()) {
            return PathBuf::from(root);
        }
        if nix::unistd::geteuid().is_root() {
            return PathBuf::from("/var/lib/strata");
        }
        match directories::ProjectDirs::from("", "", "strata") {
            Some(dirs) => dirs.data_dir().to_path_buf(),
            // No home directory: fall back to a per-user path under /var/tmp.
            None => PathBuf::from(format!("/var/tmp/strata-{}", nix::unistd::geteuid())),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Locks the metadata connection. A panic while holding it leaves no
    /// half-done transaction (SQLite rolls back on drop), so a poisoned lock
    /// is safe to reuse.
    pub(crate) fn db(&self) -> MutexGuard<'_, rusqlite::Connection> {
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
}

/// Milliseconds since the Unix epoch, the unit of every time column.
pub(crate) fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(crate) fn from_millis(millis: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

/// Returns whether process `pid` still exists. `EPERM` means it exists but
/// belongs to another user.
///
/// NOTE: pids are compared in this process's pid namespace. Two processes
/// in different pid namespaces sharing one root can remove each other's
/// temp files and active snapshots.
pub(crate) fn pid_alive(pid: i64) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}
