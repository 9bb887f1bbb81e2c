//! Cache in an OCI image layout directory: `oci-layout`, `index.json`
//! naming the cache manifest, and `blobs/sha256/`.

use super::format::CacheConfig;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use strata_exporter::image::{Descriptor, INDEX_MEDIA_TYPE, Index, MANIFEST_MEDIA_TYPE};
use strata_llb::Digest;
use strata_store::Store;

pub fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(digest.hex())
}

/// Writes the layout, copying layers the directory lacks from the store.
pub fn write(
    store: &Store,
    dir: &Path,
    config: &CacheConfig,
    config_json: &[u8],
    manifest_json: &[u8],
) -> Result<()> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)
        .with_context(|| format!("Failed to create cache directory `{}`", blobs.display()))?;
    for layer in &config.layers {
        let target = blob_path(dir, &layer.blob);
        if !target.exists() {
            copy_atomic(&store.blob_path(&layer.blob), &target)?;
        }
    }
    write_atomic(&blob_path(dir, &Digest::of_bytes(config_json)), config_json)?;
    let manifest_digest = Digest::of_bytes(manifest_json);
    write_atomic(&blob_path(dir, &manifest_digest), manifest_json)?;

    let index = Index {
        schema_version: 2,
        media_type: INDEX_MEDIA_TYPE.to_string(),
        manifests: vec![Descriptor::new(
            MANIFEST_MEDIA_TYPE,
            manifest_digest,
            manifest_json.len() as u64,
        )],
    };
    write_atomic(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    write_atomic(&dir.join("index.json"), &serde_json::to_vec(&index)?)?;
    Ok(())
}

/// Reads the cache config of a layout; `None` when `dir` has no index.
pub fn read(dir: &Path) -> Result<Option<CacheConfig>> {
    let index_path = dir.join("index.json");
    let index_bytes = match std::fs::read(&index_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => bail!("Failed to read `{}`: {e}", index_path.display()),
    };
    let source = dir.display().to_string();
    let index: Index = serde_json::from_slice(&index_bytes)
        .with_context(|| format!("Invalid `{}`", index_path.display()))?;
    let Some(entry) = index.manifests.first() else {
        bail!("Cache `{source}` has an empty `index.json`: export the cache again");
    };
    let manifest_bytes = read_verified(dir, &entry.digest)?;
    let manifest: strata_exporter::image::Manifest = serde_json::from_slice(&manifest_bytes)
        .with_context(|| format!("Invalid cache manifest `{}` in `{source}`", entry.digest))?;
    let config_bytes = read_verified(dir, &manifest.config.digest)?;
    CacheConfig::parse(&config_bytes, &source).map(Some)
}

fn read_verified(dir: &Path, digest: &Digest) -> Result<Vec<u8>> {
    let path = blob_path(dir, digest);
    let bytes =
        std::fs::read(&path).with_context(|| format!("Failed to read `{}`", path.display()))?;
    if Digest::of_bytes(&bytes) != *digest {
        bail!(
            "Cache blob `{}` is corrupt: export the cache again",
            path.display()
        );
    }
    Ok(bytes)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("Failed to write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("Failed to write `{}`", path.display()))
}

fn copy_atomic(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_extension(format!("tmp{}", std::process::id()));
    std::fs::copy(from, &tmp)
        .with_context(|| format!("Failed to copy `{}` to `{}`", from.display(), tmp.display()))?;
    std::fs::rename(&tmp, to).with_context(|| format!("Failed to write `{}`", to.display()))
}
