//! Pulls an image into the local store. The manifest comes through an
//! index when the tag names several platforms. Layer blobs are downloaded
//! in parallel and verified, then each layer is unpacked once into a
//! `Layer` snapshot that every image with the same chain reuses.

use crate::client::RegistryClient;
use crate::manifest::{self, Parsed, RemoteDescriptor};
use crate::progress::{LayerStatus, ProgressFn, Throttle, no_progress};
use crate::reference::Reference;
use crate::state::RegistryState;
use anyhow::{Context, Result, bail};
use futures::StreamExt;
use sha2::{Digest as _, Sha256};
use std::io::Read;
use std::sync::Arc;
use strata_llb::image::ImageConfig;
use strata_llb::{Digest, Platform};
use strata_store::{ImageRecord, LayerRecord, SnapshotKind, Store};

/// Blob downloads running at once per pull.
const PARALLEL_DOWNLOADS: usize = 4;

/// The outcome of a pull.
#[derive(Debug)]
pub struct Pulled {
    pub image: ImageRecord,
    /// The digest the reference pointed at (an index or a manifest).
    pub tag_digest: Digest,
    /// Layer blobs that were downloaded; the others were in the store.
    pub downloaded: Vec<Digest>,
}

/// Pulls `reference` for `platform` and records it in the store as `name`.
pub async fn pull_image(
    store: &Arc<Store>,
    client: &RegistryClient,
    reference: &Reference,
    name: &str,
    platform: &Platform,
) -> Result<Pulled> {
    pull_image_reporting(store, client, reference, name, platform, &no_progress()).await
}

/// Like [`pull_image`], sending each layer's download and unpacking
/// progress to `progress`. Layers the store already has unpacked send
/// nothing.
pub async fn pull_image_reporting(
    store: &Arc<Store>,
    client: &RegistryClient,
    reference: &Reference,
    name: &str,
    platform: &Platform,
    progress: &ProgressFn,
) -> Result<Pulled> {
    let (registry, repository) = (&reference.registry, &reference.repository);
    let top = client
        .get_manifest(registry, repository, reference.manifest_ref())
        .await?;
    let tag_digest = top.digest.clone();
    let (manifest_bytes, manifest_digest, config, layers) = match manifest::parse(
        &top.bytes,
        &top.media_type,
        name,
    )? {
        Parsed::Image { config, layers } => (top.bytes, top.digest, config, layers),
        Parsed::Index(entries) => {
            let Some(entry) = manifest::select_platform(&entries, platform) else {
                bail!(
                    "Image `{name}` has no manifest for platform `{}`: it provides {}; pass one of them with `--platform`",
                    platform_name(platform),
                    manifest::platform_list(&entries)
                );
            };
            let chosen = client
                .get_manifest(registry, repository, entry.digest.as_str())
                .await?;
            let Parsed::Image { config, layers } =
                manifest::parse(&chosen.bytes, &chosen.media_type, name)?
            else {
                bail!("Image `{name}` has an index nested in its index, which is not supported");
            };
            (chosen.bytes, chosen.digest, config, layers)
        }
    };

    let config_bytes = match store.has_blob(&config.digest) {
        true => store.read_blob(&config.digest)?,
        false => {
            client
                .get_blob_bytes(registry, repository, &config.digest)
                .await?
        }
    };
    let image_config: ImageConfig = serde_json::from_slice(&config_bytes)
        .with_context(|| format!("Invalid image config `{}` of `{name}`", config.digest))?;
    let records = layer_records(&layers, &image_config, name)?;
    store.write_blob(&mut config_bytes.as_slice())?;
    store.write_blob(&mut manifest_bytes.as_slice())?;

    let state = RegistryState::new(store.root());
    let downloaded = download_layers(store, client, reference, &layers, &state, progress).await?;
    let mut blobs: Vec<Digest> = layers.iter().map(|l| l.digest.clone()).collect();
    blobs.push(config.digest.clone());
    state.add_blob_sources(&blobs, &reference.repository_name())?;

    let snapshot = {
        let (store, records, progress) = (store.clone(), records.clone(), progress.clone());
        tokio::task::spawn_blocking(move || unpack_chain_reporting(&store, &records, &progress))
            .await??
    };

    let image = ImageRecord {
        name: name.to_string(),
        manifest: manifest_digest,
        config: image_config,
        layers: records,
        snapshot,
        created: chrono::Utc::now(),
    };
    store.put_image(&image)?;
    Ok(Pulled {
        image,
        tag_digest,
        downloaded,
    })
}

/// Pairs the manifest's layers with the config's diff ids, checking that
/// the two lists agree.
pub(crate) fn layer_records(
    layers: &[RemoteDescriptor],
    config: &ImageConfig,
    name: &str,
) -> Result<Vec<LayerRecord>> {
    if config.rootfs.diff_ids.len() != layers.len() {
        bail!(
            "Image `{name}` is inconsistent: its manifest lists {} layers but its config {} diff ids",
            layers.len(),
            config.rootfs.diff_ids.len()
        );
    }
    layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .map(|(layer, diff_id)| {
            Ok(LayerRecord {
                blob: layer.digest.clone(),
                diff_id: diff_id.parse().with_context(|| {
                    format!("Invalid diff id `{diff_id}` in the config of `{name}`")
                })?,
                media_type: layer.media_type.clone(),
                size: layer.size,
            })
        })
        .collect()
}

fn platform_name(platform: &Platform) -> String {
    match &platform.variant {
        Some(v) => format!("{}/{}/{v}", platform.os, platform.architecture),
        None => format!("{}/{}", platform.os, platform.architecture),
    }
}

/// Downloads the layers the store lacks, a few at a time, and returns
/// their digests.
async fn download_layers(
    store: &Arc<Store>,
    client: &RegistryClient,
    reference: &Reference,
    layers: &[RemoteDescriptor],
    state: &RegistryState,
    progress: &ProgressFn,
) -> Result<Vec<Digest>> {
    let mut missing: Vec<(Digest, u64)> = Vec::new();
    for layer in layers {
        if !store.has_blob(&layer.digest) && !missing.iter().any(|(d, _)| *d == layer.digest) {
            missing.push((layer.digest.clone(), layer.size));
        }
    }
    let results: Vec<Result<Digest>> = futures::stream::iter(missing)
        .map(|(digest, size)| async move {
            fetch_blob_reporting(store, client, reference, &digest, size, state, progress).await
        })
        .buffer_unordered(PARALLEL_DOWNLOADS)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Downloads blob `digest` of `reference`'s repository into the store,
/// through a partial file that a later call resumes.
pub async fn fetch_blob(
    store: &Arc<Store>,
    client: &RegistryClient,
    reference: &Reference,
    digest: &Digest,
    expected_size: u64,
    state: &RegistryState,
) -> Result<Digest> {
    fetch_blob_reporting(
        store,
        client,
        reference,
        digest,
        expected_size,
        state,
        &no_progress(),
    )
    .await
}

/// Like [`fetch_blob`], sending `Downloading` updates and a `Verified`
/// one to `progress`.
pub async fn fetch_blob_reporting(
    store: &Arc<Store>,
    client: &RegistryClient,
    reference: &Reference,
    digest: &Digest,
    expected_size: u64,
    state: &RegistryState,
    progress: &ProgressFn,
) -> Result<Digest> {
    let partial = state.partial_path(digest)?;
    let mut throttle = Throttle::new(progress, digest, LayerStatus::Downloading, expected_size);
    let size = client
        .download_blob_reporting(
            &reference.registry,
            &reference.repository,
            digest,
            &partial,
            &mut |bytes| throttle.update(bytes),
        )
        .await?;
    if size != expected_size {
        let _ = std::fs::remove_file(&partial);
        bail!(
            "Blob `{digest}` of `{reference}` is {size} bytes, but its manifest lists {expected_size}: the registry sent corrupt data"
        );
    }
    let (store, digest) = (store.clone(), digest.clone());
    tokio::task::spawn_blocking(move || -> Result<Digest> {
        let mut file = std::fs::File::open(&partial)?;
        let mut writer = store.blob_writer()?;
        std::io::copy(&mut file, &mut writer)?;
        writer.commit_verified(&digest)?;
        std::fs::remove_file(&partial)?;
        throttle.finish(LayerStatus::Verified);
        Ok(digest)
    })
    .await?
}

/// Finds or unpacks a `Layer` snapshot per layer, each the parent of the
/// next, and returns the top one.
pub fn unpack_chain(store: &Store, layers: &[LayerRecord]) -> Result<Option<String>> {
    unpack_chain_reporting(store, layers, &no_progress())
}

/// Like [`unpack_chain`], sending `Extracting` and `Extracted` updates
/// for each layer it unpacks to `progress`.
pub fn unpack_chain_reporting(
    store: &Store,
    layers: &[LayerRecord],
    progress: &ProgressFn,
) -> Result<Option<String>> {
    let mut parent: Option<String> = None;
    for layer in layers {
        let id = match find_layer_snapshot(store, parent.as_deref(), &layer.diff_id)? {
            Some(id) => id,
            None => {
                let mut throttle =
                    Throttle::new(progress, &layer.blob, LayerStatus::Extracting, layer.size);
                let id = unpack_layer_reporting(store, parent.as_deref(), layer, &mut |bytes| {
                    throttle.update(bytes)
                })?;
                throttle.finish(LayerStatus::Extracted);
                id
            }
        };
        parent = Some(id);
    }
    Ok(parent)
}

/// Returns a committed `Layer` snapshot on top of `parent` whose layer has
/// `diff_id`, whichever compression its blob used.
pub fn find_layer_snapshot(
    store: &Store,
    parent: Option<&str>,
    diff_id: &Digest,
) -> Result<Option<String>> {
    for info in store.snapshots()? {
        if info.kind != SnapshotKind::Layer || info.parent.as_deref() != parent {
            continue;
        }
        if store
            .layer_of(&info.id)?
            .is_some_and(|layer| layer.diff_id == *diff_id)
        {
            return Ok(Some(info.id));
        }
    }
    Ok(None)
}

/// Unpacks one layer blob (a hostile tar) and checks that its
/// uncompressed bytes hash to the config's diff id.
pub fn unpack_layer(store: &Store, parent: Option<&str>, layer: &LayerRecord) -> Result<String> {
    unpack_layer_reporting(store, parent, layer, &mut |_| {})
}

/// Like [`unpack_layer`], calling `report` with the compressed bytes read
/// so far.
pub fn unpack_layer_reporting(
    store: &Store,
    parent: Option<&str>,
    layer: &LayerRecord,
    report: &mut dyn FnMut(u64),
) -> Result<String> {
    let active = store.prepare(parent, SnapshotKind::Layer)?;
    let unpacked = (|| -> Result<Digest> {
        let blob = CountingReader {
            inner: store.open_blob(&layer.blob)?,
            bytes: 0,
            report,
        };
        let mut reader = HashingReader {
            inner: strata_store::decompress_layer(std::io::BufReader::new(blob))?,
            hasher: Sha256::new(),
        };
        strata_store::apply_layer(&mut reader, &active.upper)?;
        // The tar reader stops at the end-of-archive blocks; hash the padding too.
        std::io::copy(&mut reader, &mut std::io::sink())?;
        Ok(Digest::from_sha256(reader.hasher.finalize().into()))
    })();
    let diff_id = match unpacked {
        Ok(diff_id) => diff_id,
        Err(error) => {
            let _ = store.abort(active);
            return Err(error.context(format!("Failed to unpack layer `{}`", layer.blob)));
        }
    };
    if diff_id != layer.diff_id {
        let _ = store.abort(active);
        bail!(
            "Layer `{}` unpacks to `{diff_id}`, but the image config lists `{}`: the image is corrupt",
            layer.blob,
            layer.diff_id
        );
    }
    let id = store.commit(active)?;
    store.set_layer(&id, layer)?;
    Ok(id)
}

/// A reader that reports how many bytes passed through it.
struct CountingReader<'a, R> {
    inner: R,
    bytes: u64,
    report: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.bytes += read as u64;
        (self.report)(self.bytes);
        Ok(read)
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        Ok(read)
    }
}
