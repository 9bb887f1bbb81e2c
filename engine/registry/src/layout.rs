//! Images read from an OCI image layout directory, for `oci-layout://`
//! build contexts. Blobs are copied into the store with their digests
//! checked, then the layers are unpacked as for a pulled image, so a layout
//! and a registry holding the same image share every layer snapshot.

use crate::manifest::{self, Parsed, RemoteDescriptor};
use crate::pull::{layer_records, unpack_chain};
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use strata_llb::image::ImageConfig;
use strata_llb::{Digest, Platform};
use strata_store::{ImageRecord, Store};

/// The annotation that gives an index entry its tag.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The image of a layout to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutSelector {
    /// The only image of the index.
    Only,
    /// The index entry whose `ref.name` annotation is this tag.
    Tag(String),
    /// The manifest or index with this digest.
    Digest(Digest),
}

#[derive(Deserialize)]
struct IndexEntry {
    #[serde(flatten)]
    descriptor: RemoteDescriptor,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<IndexEntry>,
}

/// Reads one image of the layout at `dir` into the store as `name`.
pub fn import_layout(
    store: &Store,
    dir: &Path,
    selector: &LayoutSelector,
    platform: &Platform,
    name: &str,
) -> Result<ImageRecord> {
    let shown = dir.display();
    if !dir.join("oci-layout").is_file() {
        bail!(
            "`{shown}` is not an OCI image layout: it has no `oci-layout` file; \
             unpack an OCI archive with `tar -xf FILE -C DIR` first"
        );
    }
    let index_path = dir.join("index.json");
    let index: Index = serde_json::from_slice(
        &std::fs::read(&index_path)
            .with_context(|| format!("Failed to read `{}`", index_path.display()))?,
    )
    .with_context(|| format!("Invalid `{}`: not an OCI index", index_path.display()))?;
    let top = choose(&index.manifests, selector, &shown.to_string())?;

    let bytes = read_verified(dir, &top.digest)?;
    let (manifest_bytes, manifest_digest, config, layers) = match manifest::parse(
        &bytes,
        &top.media_type,
        name,
    )? {
        Parsed::Image { config, layers } => (bytes, top.digest.clone(), config, layers),
        Parsed::Index(entries) => {
            let Some(entry) = manifest::select_platform(&entries, platform) else {
                bail!(
                    "The image in `{shown}` has no manifest for platform `{}/{}`: it provides {}",
                    platform.os,
                    platform.architecture,
                    manifest::platform_list(&entries)
                );
            };
            let chosen = read_verified(dir, &entry.digest)?;
            let Parsed::Image { config, layers } =
                manifest::parse(&chosen, &entry.media_type, name)?
            else {
                bail!(
                    "The image in `{shown}` has an index nested in its index, which is not supported"
                );
            };
            (chosen, entry.digest.clone(), config, layers)
        }
    };

    let config_bytes = read_verified(dir, &config.digest)?;
    let image_config: ImageConfig = serde_json::from_slice(&config_bytes)
        .with_context(|| format!("Invalid image config `{}` in `{shown}`", config.digest))?;
    let records = layer_records(&layers, &image_config, name)?;
    for layer in &layers {
        if !store.has_blob(&layer.digest) {
            copy_blob(store, dir, &layer.digest)?;
        }
    }
    store.write_blob(&mut config_bytes.as_slice())?;
    store.write_blob(&mut manifest_bytes.as_slice())?;
    let snapshot = unpack_chain(store, &records)?;
    let image = ImageRecord {
        name: name.to_string(),
        manifest: manifest_digest,
        config: image_config,
        layers: records,
        snapshot,
        created: chrono::Utc::now(),
    };
    store.put_image(&image)?;
    Ok(image)
}

fn choose<'a>(
    entries: &'a [IndexEntry],
    selector: &LayoutSelector,
    shown: &str,
) -> Result<&'a RemoteDescriptor> {
    let tags = || {
        let tags: Vec<String> = entries
            .iter()
            .filter_map(|e| e.annotations.get(REF_NAME))
            .map(|tag| format!("`{tag}`"))
            .collect();
        if tags.is_empty() {
            "no tags".to_string()
        } else {
            format!("tags {}", tags.join(", "))
        }
    };
    let found = match selector {
        LayoutSelector::Only => match entries {
            [only] => Some(only),
            [] => bail!("The OCI layout `{shown}` contains no image"),
            _ => bail!(
                "The OCI layout `{shown}` contains {} images: pick one with `oci-layout://DIR:TAG` \
                 or `oci-layout://DIR@sha256:...` (it has {})",
                entries.len(),
                tags()
            ),
        },
        // A full reference such as `docker.io/library/app:v1` in the
        // annotation also matches its tag.
        LayoutSelector::Tag(tag) => entries.iter().find(|e| {
            e.annotations
                .get(REF_NAME)
                .is_some_and(|name| name == tag || name.ends_with(&format!(":{tag}")))
        }),
        LayoutSelector::Digest(digest) => entries.iter().find(|e| e.descriptor.digest == *digest),
    };
    match (found, selector) {
        (Some(entry), _) => Ok(&entry.descriptor),
        (None, LayoutSelector::Tag(tag)) => {
            bail!(
                "The OCI layout `{shown}` has no image tagged `{tag}`; it has {}",
                tags()
            )
        }
        (None, _) => bail!(
            "The OCI layout `{shown}` has no image `{}` in its index",
            match selector {
                LayoutSelector::Digest(digest) => digest.to_string(),
                _ => String::new(),
            }
        ),
    }
}

fn blob_path(dir: &Path, digest: &Digest) -> std::path::PathBuf {
    dir.join("blobs/sha256").join(digest.hex())
}

/// Reads a small blob (a manifest, an index or a config) and checks its
/// digest.
fn read_verified(dir: &Path, digest: &Digest) -> Result<Vec<u8>> {
    let path = blob_path(dir, digest);
    let bytes = std::fs::read(&path)
        .with_context(|| format!("Failed to read blob `{}`", path.display()))?;
    let actual = Digest::of_bytes(&bytes);
    if actual != *digest {
        bail!(
            "Blob `{}` is corrupt: its content has digest `{actual}`; export the layout again",
            path.display()
        );
    }
    Ok(bytes)
}

/// Copies a layer blob into the store, rejecting it when its content does
/// not match its name.
fn copy_blob(store: &Store, dir: &Path, digest: &Digest) -> Result<()> {
    let path = blob_path(dir, digest);
    let mut file = std::fs::File::open(&path)
        .with_context(|| format!("Failed to read blob `{}`", path.display()))?;
    let (actual, _) = store.write_blob(&mut file)?;
    if actual != *digest {
        // The store keeps blobs under their real digest; this one is
        // unreferenced and goes with the next GC.
        bail!(
            "Blob `{}` is corrupt: its content has digest `{actual}`; export the layout again",
            path.display()
        );
    }
    Ok(())
}
