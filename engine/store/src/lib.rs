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
//!   snapshots/<id>/fs  a snapshot's own files (an overlay upper dir)
//!   snapshots/<id>/work  overlayfs work dir while the snapshot is active
//!   tmp/               partial writes; emptied on open
//! ```
//! The store never starts processes and never mounts: it hands out
//! directories, and the worker mounts them.

// NOTE: skeleton; bodies are filled in by the store implementation.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_llb::Digest;
use strata_llb::image::ImageConfig;

pub type Result<T, E = anyhow::Error> = std::result::Result<T, E>;

/// What produced a snapshot, for `du` and garbage collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens or creates the store at `root`, removing what a killed process
    /// left half-written.
    pub fn open(root: &Path) -> Result<Arc<Store>> {
        Ok(Arc::new(Store { root: root.to_path_buf() }))
    }

    /// `$STRATA_ROOT`, else `/var/lib/strata` for root, else the user's
    /// data directory.
    pub fn default_root() -> PathBuf {
        todo!()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    // Content store.

    /// Writes a blob atomically and returns its digest and size.
    pub fn write_blob(&self, _data: &mut dyn std::io::Read) -> Result<(Digest, u64)> {
        todo!()
    }

    pub fn blob_path(&self, _digest: &Digest) -> PathBuf {
        todo!()
    }

    pub fn has_blob(&self, _digest: &Digest) -> bool {
        todo!()
    }

    pub fn read_blob(&self, _digest: &Digest) -> Result<Vec<u8>> {
        todo!()
    }

    // Snapshots.

    /// Starts a new snapshot on top of `parent`.
    pub fn prepare(&self, _parent: Option<&str>, _kind: SnapshotKind) -> Result<ActiveSnapshot> {
        todo!()
    }

    /// Makes an active snapshot permanent and returns its id.
    pub fn commit(&self, _active: ActiveSnapshot) -> Result<String> {
        todo!()
    }

    /// Deletes an active snapshot.
    pub fn abort(&self, _active: ActiveSnapshot) -> Result<()> {
        todo!()
    }

    /// Returns the directories of a committed snapshot's chain, its own
    /// first, for overlayfs `lowerdir`.
    pub fn lowers(&self, _id: &str) -> Result<Vec<PathBuf>> {
        todo!()
    }

    pub fn snapshot(&self, _id: &str) -> Result<SnapshotInfo> {
        todo!()
    }

    // Cache records.

    /// Looks up the result of a cache key and marks it used.
    pub fn cache_get(&self, _key: &Digest) -> Result<Option<Option<String>>> {
        todo!()
    }

    pub fn cache_put(&self, _key: &Digest, _snapshot: Option<&str>) -> Result<()> {
        todo!()
    }

    // Layers and images.

    pub fn layer_of(&self, _snapshot: &str) -> Result<Option<LayerRecord>> {
        todo!()
    }

    pub fn set_layer(&self, _snapshot: &str, _layer: &LayerRecord) -> Result<()> {
        todo!()
    }

    pub fn put_image(&self, _image: &ImageRecord) -> Result<()> {
        todo!()
    }

    pub fn image(&self, _name: &str) -> Result<Option<ImageRecord>> {
        todo!()
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        todo!()
    }

    pub fn remove_image(&self, _name: &str) -> Result<bool> {
        todo!()
    }
}
