//! Imported caches: records read at the start of a build, layers fetched
//! only when a step's key hits a record.

use super::format::{CacheConfig, CacheMountRecord};
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
use strata_worker::CacheMountDir;

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

    /// Counts `key` as matched in every imported cache that has it, for a
    /// step the local cache served first, so no cache is reported unused
    /// when its records did match.
    pub fn note_local_hit(&self, key: &Digest) {
        for cache in &self.caches {
            if cache.config.records.iter().any(|r| r.key == *key) {
                cache.hits.fetch_add(1, Ordering::Relaxed);
            }
        }
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

    /// Seeds each cache mount in `ids` that this store has not filled yet
    /// from the first imported cache that contains it. A mount that exists
    /// in this store is never overwritten, and a progress phase reports it.
    ///
    /// NOTE: seeding happens before the build runs, so a mount is seeded
    /// even when every step that uses it turns out to be cached.
    pub async fn seed_mounts(&self, store: &Arc<Store>, ids: &[String], events: &EventSink) {
        for id in ids {
            let found = self.caches.iter().find_map(|cache| {
                let record = cache.config.mounts.iter().find(|m| m.id == *id)?;
                Some((cache, record))
            });
            let Some((cache, record)) = found else {
                continue;
            };
            let started = std::time::Instant::now();
            let phase = format!("cache-mount-{id}");
            events.emit(Event::Phase {
                id: phase.clone(),
                name: format!("importing cache mount `{id}` from `{}`", cache.name),
                duration_ms: None,
            });
            let name = match self.seed_mount(store, cache, record).await {
                Ok(true) => format!("seeded cache mount `{id}` from `{}`", cache.name),
                Ok(false) => format!(
                    "cache mount `{id}` already exists in this store: kept it, not seeded from `{}`",
                    cache.name
                ),
                Err(error) => {
                    events.emit(Event::Warning {
                        message: format!(
                            "Failed to seed cache mount `{id}` from `{}`, starting it empty: {error:#}",
                            cache.name
                        ),
                        location: None,
                    });
                    format!("cache mount `{id}` not seeded")
                }
            };
            events.emit(Event::Phase {
                id: phase,
                name,
                duration_ms: Some(started.elapsed().as_millis() as u64),
            });
        }
    }

    /// Seeds one cache mount; returns false when it exists already.
    async fn seed_mount(
        &self,
        store: &Arc<Store>,
        cache: &Imported,
        record: &CacheMountRecord,
    ) -> Result<bool> {
        let exists = tokio::task::block_in_place(|| -> Result<bool> {
            let dir = CacheMountDir::open(store, &record.id, false, false)?;
            Ok(dir.is_some_and(|dir| dir.is_initialized()))
        })?;
        if exists {
            return Ok(false);
        }
        let layer = cache.config.layer(record.layer);
        if !store.has_blob(&layer.blob) {
            self.fetch(store, cache, &layer).await?;
        }
        tokio::task::block_in_place(|| -> Result<bool> {
            let dir = CacheMountDir::open(store, &record.id, true, true)?
                .expect("`create` always returns a directory");
            // An exec may have filled it since the check above.
            if dir.is_initialized() {
                return Ok(false);
            }
            super::mounts::seed_mount(store, &dir, record, &layer)?;
            Ok(true)
        })
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

/// Config media types of an image whose config may hold an inline cache.
const IMAGE_CONFIG_MEDIA_TYPES: &[&str] = &[
    strata_exporter::image::CONFIG_MEDIA_TYPE,
    "application/vnd.docker.container.image.v1+json",
];

/// Reads a cache manifest and its config from a registry, or an image and
/// the inline cache in its config. Returns `None` when the reference does
/// not exist.
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
    let is_cache = manifest.config.media_type == super::format::CACHE_CONFIG_MEDIA_TYPE;
    if !is_cache && !IMAGE_CONFIG_MEDIA_TYPES.contains(&manifest.config.media_type.as_str()) {
        anyhow::bail!(
            "`{name}` is neither a Strata cache nor an image: its config has media type `{}`",
            manifest.config.media_type
        );
    }
    let config_bytes = client
        .get_blob_bytes(registry, repository, &manifest.config.digest)
        .await?;
    let config = match is_cache {
        true => CacheConfig::parse(&config_bytes, name)?,
        false => super::inline::from_image(&manifest, &config_bytes, name)?,
    };
    Ok(Some((config, BlobSource::Registry(reference))))
}
