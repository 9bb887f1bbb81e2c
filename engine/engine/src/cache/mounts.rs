//! Cache mounts (`RUN --mount=type=cache`) in an exported cache: with
//! `cache-mounts=true` each directory the build uses becomes one layer
//! blob, and an import seeds a directory that this store does not have.

use super::format::{CacheConfig, CacheMountRecord};
use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use strata_exporter::image::LAYER_GZIP_MEDIA_TYPE;
use strata_llb::{Definition, MountKind, Op};
use strata_store::{LayerRecord, Store};
use strata_worker::CacheMountDir;

/// Returns the cache mount ids of every exec in `definition`, each once.
pub fn mount_ids(definition: &Definition) -> Vec<String> {
    let mut ids = BTreeSet::new();
    for vertex in definition.vertices.values() {
        let Op::Exec(exec) = &vertex.op else {
            continue;
        };
        for mount in &exec.mounts {
            if let MountKind::Cache { id, .. } = &mount.kind {
                ids.insert(id.clone());
            }
        }
    }
    ids.into_iter().collect()
}

/// Adds to `config` the contents of each cache mount in `ids` that an exec
/// or an import has filled in this store. Returns the ids exported.
pub fn export_mounts(
    store: &Store,
    ids: &[String],
    config: &mut CacheConfig,
) -> Result<Vec<String>> {
    let mut exported = Vec::new();
    for id in ids {
        // A shared lock waits for `locked` and `private` users to finish.
        let Some(dir) = CacheMountDir::open(store, id, false, false)? else {
            continue;
        };
        if !dir.is_initialized() {
            continue;
        }
        let layer = compress_dir(store, &dir.files)
            .with_context(|| format!("Failed to export cache mount `{id}`"))?;
        let metadata = std::fs::metadata(&dir.files)
            .with_context(|| format!("Failed to read `{}`", dir.files.display()))?;
        let index = config.add_layer(&layer);
        config.mounts.push(CacheMountRecord {
            id: id.clone(),
            layer: index,
            uid: metadata.uid(),
            gid: metadata.gid(),
            mode: metadata.mode() & 0o7777,
        });
        exported.push(id.clone());
    }
    Ok(exported)
}

/// Writes the gzip layer tar of `dir` into the store's content.
fn compress_dir(store: &Store, dir: &Path) -> Result<LayerRecord> {
    let mut writer = store.blob_writer()?;
    let digests = strata_exporter::write_layer(dir, &mut writer)?;
    let (blob, size) = writer.commit()?;
    if blob != digests.blob {
        bail!(
            "Cache mount blob stored as `{blob}` but written as `{}`: this is a bug in Strata",
            digests.blob
        );
    }
    Ok(LayerRecord {
        blob,
        diff_id: digests.diff_id,
        media_type: LAYER_GZIP_MEDIA_TYPE.to_string(),
        size,
    })
}

/// Unpacks the layer of `record` into the empty directory of `dir`, sets
/// the directory's owner and mode, and marks it filled. On failure the
/// directory is emptied, so the first exec starts from nothing.
///
/// NOTE: the layer tar is applied as an image layer is, so a file whose
/// name starts with `.wh.` becomes an overlayfs whiteout.
pub fn seed_mount(
    store: &Store,
    dir: &CacheMountDir,
    record: &CacheMountRecord,
    layer: &LayerRecord,
) -> Result<()> {
    let unpacked = (|| -> Result<()> {
        let blob = store.open_blob(&layer.blob)?;
        let reader = strata_store::decompress_layer(std::io::BufReader::new(blob))?;
        strata_store::apply_layer(reader, &dir.files)?;
        std::os::unix::fs::chown(&dir.files, Some(record.uid), Some(record.gid))?;
        std::fs::set_permissions(&dir.files, std::fs::Permissions::from_mode(record.mode))?;
        dir.mark_initialized()
    })();
    if unpacked.is_err() {
        let _ = std::fs::remove_dir_all(&dir.files);
        let _ = std::fs::create_dir_all(&dir.files);
    }
    unpacked
}
