//! Images as sources: resolution for the Dockerfile frontend and loading
//! for the solver, both from the local image store.

use anyhow::{Context, bail};
use async_trait::async_trait;
use std::sync::Arc;
use strata_dockerfile::convert::{ImageResolver, ResolvedImage, normalize_reference};
use strata_llb::Platform;
use strata_solver::{ResultRef, SourceResult};
use strata_store::Store;

/// Resolves `FROM` references against the local image store.
pub struct StoreImageResolver {
    pub store: Arc<Store>,
}

#[async_trait]
impl ImageResolver for StoreImageResolver {
    async fn resolve(
        &self,
        reference: &str,
        _platform: &Platform,
    ) -> Result<ResolvedImage, String> {
        let name = normalize_reference(reference).map_err(|e| e.to_string())?;
        let image = self.store.image(&name).map_err(|e| format!("{e:#}"))?;
        let Some(image) = image else {
            return Err(format!(
                "Image `{name}` is not in the local store: import a root filesystem with \
                 `strata image import ROOTFS.tar --tag {reference}` or run `installer/setup.sh`, \
                 which builds `busybox:latest` and `debian:bookworm`"
            ));
        };
        Ok(ResolvedImage {
            name: image.name,
            digest: image.manifest,
            config: image.config,
        })
    }
}

/// Loads `docker-image://NAME[@DIGEST]` from the local store. The key is
/// the manifest digest, so a re-imported image with new content gets new
/// cache keys downstream.
pub fn load_image(store: &Store, reference: &str) -> anyhow::Result<SourceResult> {
    let (name, pinned) = match reference.rsplit_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    let name = normalize_reference(name).map_err(|e| anyhow::anyhow!("{e}"))?;
    let image = store
        .image(&name)
        .with_context(|| format!("Failed to read image `{name}` from the store"))?
        .with_context(|| format!("Image `{name}` is not in the local store"))?;
    if let Some(pinned) = pinned {
        if image.manifest.as_str() != pinned {
            bail!(
                "Image `{name}` changed while the build was starting: expected manifest \
                 `{pinned}`, the store has `{}`; run the build again",
                image.manifest
            );
        }
    }
    let result = ResultRef {
        snapshot: image.snapshot.clone(),
    };
    Ok(SourceResult {
        key: image.manifest,
        result,
    })
}
