//! Imported caches: records read at the start of a build, layers fetched
//! only when a step's key hits a record.

use super::format::CacheConfig;
use super::layout;
use super::spec::{CacheImport, CacheLocation};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use strata_exporter::image::Manifest;
use strata_llb::Digest;
use strata_registry::{Reference, RegistryClient, RegistryState, fetch_blob};
use strata_solver::{Event, EventSink};
use strata_store::{LayerRecord, Store};

enum BlobSource {
    Dir(PathBuf),
    Registry(Reference),
}

struct Imported {
    /// The `--cache-from` value, for messages and events.
    name: String,
    config: CacheConfig,
    source: BlobSource,
    hits: AtomicUsize,
}

/// Every cache a build imports.
pub struct CacheImports {
    caches: Vec<Imported>,
    client: Arc<RegistryClient>,
}

impl CacheImports {
    /// Reads the records of every import. A missing cache is a warning,
    /// because the first build that exports it has nothing to import.
    pub async fn load(
        specs: &[CacheImport],
        client: Arc<RegistryClient>,
        events: &EventSink,
    ) -> Result<CacheImports> {
        let mut caches = Vec::new();
        for spec in specs {
            let name = spec.location.to_string();
            let loaded = match &spec.location {
                CacheLocation::Local(dir) => {
                    layout::read(dir).map(|c| c.map(|c| (c, BlobSource::Dir(dir.clone()))))
                }
                CacheLocation::Registry(reference) => read_registry(&client, reference).await,
                CacheLocation::Inline => Ok(None),
            };
            match loaded {
                Ok(Some((config, source))) => caches.push(Imported {
                    name,
                    config,
                    source,
                    hits: AtomicUsize::new(0),
                }),
                Ok(None) => events.emit(Event::Warning {
                    message: format!("Cache `{name}` not found: building without it"),
                    location: None,
                }),
                Err(error) => events.emit(Event::Warning {
                    message: format!(
                        "Cache `{name}` could not be read, building without it: {error:#}"
                    ),
                    location: None,
                }),
            }
        }
        Ok(CacheImports { caches, client })
    }

    pub fn is_empty(&self) -> bool {
        self.caches.is_empty()
    }

    /// Returns the snapshot an imported record gives `key`, fetching and
    /// unpacking its layers, and the name of the cache it came from.
    pub async fn lookup(
        &self,
        store: &Arc<Store>,
        key: &Digest,
    ) -> Result<Option<(String, Option<String>)>> {
        for cache in &self.caches {
            let Some(record) = cache.config.records.iter().find(|r| r.key == *key) else {
                continue;
            };
            let chain = cache.config.chain(record);
            let snapshot = self
                .materialize(store, cache, &chain)
                .await
                .with_context(|| {
                    format!("Failed to load cache key `{key}` from `{}`", cache.name)
                })?;
            cache.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some((cache.name.clone(), snapshot)));
        }
        Ok(None)
    }

    /// Unpacks `chain`, fetching only blobs whose snapshot the store lacks.
    async fn materialize(
        &self,
        store: &Arc<Store>,
        cache: &Imported,
        chain: &[LayerRecord],
    ) -> Result<Option<String>> {
        let mut parent: Option<String> = None;
        for layer in chain {
            let found = tokio::task::block_in_place(|| {
                strata_registry::find_layer_snapshot(store, parent.as_deref(), &layer.diff_id)
            })?;
            let id = match found {
                Some(id) => id,
                None => {
                    if !store.has_blob(&layer.blob) {
                        self.fetch(store, cache, layer).await?;
                    }
                    tokio::task::block_in_place(|| {
                        strata_registry::unpack_layer(store, parent.as_deref(), layer)
                    })?
                }
            };
            parent = Some(id);
        }
        Ok(parent)
    }

    async fn fetch(&self, store: &Arc<Store>, cache: &Imported, layer: &LayerRecord) -> Result<()> {
        match &cache.source {
            BlobSource::Dir(dir) => {
                let path = layout::blob_path(dir, &layer.blob);
                tokio::task::block_in_place(|| -> Result<()> {
                    let mut file = std::fs::File::open(&path)
                        .with_context(|| format!("Failed to open `{}`", path.display()))?;
                    let mut writer = store.blob_writer()?;
                    std::io::copy(&mut file, &mut writer)?;
                    writer.commit_verified(&layer.blob)?;
                    Ok(())
                })
            }
            BlobSource::Registry(reference) => {
                let state = RegistryState::new(store.root());
                fetch_blob(
                    store,
                    &self.client,
                    reference,
                    &layer.blob,
                    layer.size,
                    &state,
                )
                .await?;
                Ok(())
            }
        }
    }

    /// Warns about imported caches none of whose records this build used.
    pub fn warn_unused(&self, events: &EventSink) {
        for cache in &self.caches {
            if cache.hits.load(Ordering::Relaxed) == 0 {
                events.emit(Event::Warning {
                    message: format!(
                        "None of the {} records of cache `{}` matched a step of this build",
                        cache.config.records.len(),
                        cache.name
                    ),
                    location: None,
                });
            }
        }
    }
}

/// Reads a cache manifest and its config from a registry; `None` when the
/// reference does not exist.
async fn read_registry(
    client: &RegistryClient,
    name: &str,
) -> Result<Option<(CacheConfig, BlobSource)>> {
    let reference = Reference::parse_normalized(name).map_err(anyhow::Error::msg)?;
    let (registry, repository) = (&reference.registry, &reference.repository);
    if client
        .head_manifest(registry, repository, reference.manifest_ref())
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let fetched = client
        .get_manifest(registry, repository, reference.manifest_ref())
        .await?;
    let manifest: Manifest = serde_json::from_slice(&fetched.bytes)
        .with_context(|| format!("Cache `{name}` is not an image manifest"))?;
    if manifest.config.media_type != super::format::CACHE_CONFIG_MEDIA_TYPE {
        anyhow::bail!(
            "`{name}` is not a Strata cache: its config has media type `{}`",
            manifest.config.media_type
        );
    }
    let config_bytes = client
        .get_blob_bytes(registry, repository, &manifest.config.digest)
        .await?;
    let config = CacheConfig::parse(&config_bytes, name)?;
    Ok(Some((config, BlobSource::Registry(reference))))
}
