//! Pushes an image from the local store to a registry: blobs the registry
//! lacks are mounted from another repository of the same registry when
//! the store has recorded one that contains them, else uploaded; the manifest goes
//! last, so a tag never points at missing blobs.

use crate::image::Manifest;
use anyhow::{Context, Result};
use futures::StreamExt;
use std::sync::Arc;
use strata_llb::Digest;
use strata_registry::{Reference, RegistryClient, RegistryState};
use strata_store::Store;

/// Blob uploads running at once per push.
const PARALLEL_UPLOADS: usize = 4;

/// Blob counts of a push, by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Blobs uploaded in full.
    pub uploaded: Vec<Digest>,
    /// Blobs mounted from another repository.
    pub mounted: Vec<Digest>,
    /// Blobs the registry already had.
    pub skipped: Vec<Digest>,
}

/// Pushes the stored image `name` (normalised, with a tag) to the
/// registry its name starts with.
pub async fn push_image(
    store: &Arc<Store>,
    client: &RegistryClient,
    name: &str,
) -> Result<PushReport> {
    let reference = Reference::parse_normalized(name).map_err(anyhow::Error::msg)?;
    let image = store.image(name)?.with_context(|| {
        format!("Image `{name}` is not in the local store, so it cannot be pushed")
    })?;
    let manifest_bytes = store.read_blob(&image.manifest)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .with_context(|| format!("Invalid manifest `{}` of image `{name}`", image.manifest))?;

    let mut blobs: Vec<Digest> = manifest.layers.iter().map(|l| l.digest.clone()).collect();
    blobs.push(manifest.config.digest.clone());
    blobs.dedup();

    let state = RegistryState::new(store.root());
    let outcomes: Vec<Result<(Digest, BlobOutcome)>> = futures::stream::iter(blobs.clone())
        .map(|blob| {
            let (reference, state) = (&reference, &state);
            async move {
                let outcome = push_blob(store, client, reference, state, &blob).await?;
                Ok((blob, outcome))
            }
        })
        .buffer_unordered(PARALLEL_UPLOADS)
        .collect()
        .await;
    let mut report = PushReport::default();
    for outcome in outcomes {
        let (blob, outcome) = outcome?;
        match outcome {
            BlobOutcome::Uploaded => report.uploaded.push(blob),
            BlobOutcome::Mounted => report.mounted.push(blob),
            BlobOutcome::Present => report.skipped.push(blob),
        }
    }

    let tag = reference.tag.as_deref().unwrap_or("latest");
    client
        .put_manifest(
            &reference.registry,
            &reference.repository,
            tag,
            &manifest.media_type,
            &manifest_bytes,
        )
        .await?;
    state.add_blob_sources(&blobs, &reference.repository_name())?;
    Ok(report)
}

enum BlobOutcome {
    Uploaded,
    Mounted,
    Present,
}

async fn push_blob(
    store: &Store,
    client: &RegistryClient,
    reference: &Reference,
    state: &RegistryState,
    blob: &Digest,
) -> Result<BlobOutcome> {
    let (registry, repository) = (&reference.registry, &reference.repository);
    if client.blob_exists(registry, repository, blob).await? {
        return Ok(BlobOutcome::Present);
    }
    let prefix = format!("{registry}/");
    let mount_from = state
        .blob_sources(blob)
        .into_iter()
        .filter_map(|source| source.strip_prefix(&prefix).map(str::to_string))
        .find(|source| source != repository);
    let path = store.blob_path(blob);
    let mounted = client
        .upload_blob(registry, repository, blob, &path, mount_from.as_deref())
        .await
        .with_context(|| format!("Failed to push blob `{blob}` to `{registry}/{repository}`"))?;
    Ok(if mounted {
        BlobOutcome::Mounted
    } else {
        BlobOutcome::Uploaded
    })
}
