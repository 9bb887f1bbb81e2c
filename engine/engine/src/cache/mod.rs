//! Cache export (`--cache-to`) and import (`--cache-from`).
//!
//! An export writes one record per cache key of the build, linking it to
//! the layer chain of its result. An import reads only the records. The
//! layers of a record are fetched when a step's key hits it and unpacked
//! into the local store, which then caches the key itself.

pub mod format;
mod import;
pub mod inline;
mod layout;
pub mod mounts;
pub mod spec;

pub use import::CacheImports;
pub use spec::{CacheExport, CacheImport, CacheLocation, CacheMode};

use anyhow::{Context, Result, bail};
use format::{CACHE_FORMAT_VERSION, CacheConfig};
use std::collections::HashSet;
use std::sync::Arc;
use strata_llb::Digest;
use strata_registry::{Reference, RegistryClient, RegistryState};
use strata_store::Store;

/// Collects the records an export writes: every key for `max`, and for
/// `min` the keys whose result is in the final result's chain.
pub fn collect_records(
    store: &Store,
    keys: &[Digest],
    mode: CacheMode,
    final_snapshot: Option<&str>,
) -> Result<CacheConfig> {
    let mut final_chain = HashSet::new();
    let mut next = final_snapshot.map(str::to_string);
    while let Some(id) = next {
        next = store.snapshot(&id)?.parent;
        final_chain.insert(id);
    }

    let mut config = CacheConfig {
        version: CACHE_FORMAT_VERSION,
        ..CacheConfig::default()
    };
    for key in keys {
        let Some(snapshot) = store.cache_get(key)? else {
            continue;
        };
        let keep = match (mode, &snapshot) {
            (CacheMode::Max, _) => true,
            (CacheMode::Min, Some(id)) => final_chain.contains(id),
            (CacheMode::Min, None) => false,
        };
        if keep {
            let layers = strata_exporter::image_layers(store, snapshot.as_deref())
                .with_context(|| format!("Failed to compress the layers of cache key `{key}`"))?;
            config.add(key.clone(), &layers);
        }
    }
    Ok(config)
}

/// Writes `config` and its layers to the location of `spec`.
pub async fn export(
    store: &Arc<Store>,
    client: &RegistryClient,
    spec: &CacheExport,
    config: &CacheConfig,
) -> Result<()> {
    let (config_json, manifest_json) = config.to_manifest()?;
    match &spec.location {
        CacheLocation::Local(dir) => {
            let (store, dir) = (store.clone(), dir.clone());
            let config = config.clone();
            tokio::task::spawn_blocking(move || {
                layout::write(&store, &dir, &config, &config_json, &manifest_json)
            })
            .await?
        }
        CacheLocation::Registry(name) => {
            push(store, client, name, config, &config_json, &manifest_json).await
        }
        CacheLocation::Inline => bail!(
            "Inline cache is written into the image config by the outputs, not exported on its own: this is a bug in Strata"
        ),
    }
}

async fn push(
    store: &Arc<Store>,
    client: &RegistryClient,
    name: &str,
    config: &CacheConfig,
    config_json: &[u8],
    manifest_json: &[u8],
) -> Result<()> {
    let reference = Reference::parse_normalized(name).map_err(anyhow::Error::msg)?;
    let (registry, repository) = (&reference.registry, &reference.repository);
    let (config_digest, _) = store.write_blob(&mut &config_json[..])?;
    let mut blobs: Vec<Digest> = config.layers.iter().map(|l| l.blob.clone()).collect();
    blobs.push(config_digest);
    for blob in &blobs {
        if client.blob_exists(registry, repository, blob).await? {
            continue;
        }
        client
            .upload_blob(registry, repository, blob, &store.blob_path(blob), None)
            .await
            .with_context(|| format!("Failed to push cache blob `{blob}` to `{name}`"))?;
    }
    let tag = reference.tag.as_deref().unwrap_or("latest");
    client
        .put_manifest(
            registry,
            repository,
            tag,
            strata_exporter::image::MANIFEST_MEDIA_TYPE,
            manifest_json,
        )
        .await?;
    RegistryState::new(store.root()).add_blob_sources(&blobs, &reference.repository_name())?;
    Ok(())
}
