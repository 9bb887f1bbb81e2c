//! Images as sources: resolution for the Dockerfile frontend and loading
//! for the solver. Resolution pulls from a registry when the local store
//! lacks the image or the tag's last check is older than the freshness
//! window. Loading reads only the local store, where resolution put it.

use anyhow::{Context, bail};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_dockerfile::convert::{ImageResolver, ResolvedImage, normalize_reference};
use strata_llb::Platform;
use strata_registry::{
    LayerProgress, ProgressFn, Reference, RegistryClient, RegistryState, pull_image_reporting,
};
use strata_solver::events::{Event, EventSink, LayerStatus};
use strata_solver::{ResultRef, SourceResult};
use strata_store::{ImageRecord, Store};

/// Resolves `FROM` references against the local image store, pulling
/// from a registry when needed.
pub struct StoreImageResolver {
    pub store: Arc<Store>,
    /// Client for pulls; `None` resolves from the local store only.
    pub registry: Option<Arc<RegistryClient>>,
    /// How long a pulled tag is used without asking the registry again.
    pub resolve_ttl: Duration,
    /// Receives a `Phase` per pull and the progress of its layers.
    pub events: EventSink,
}

/// The action resolution takes for an image name.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Use the local image as it is.
    Local,
    /// Ask the registry whether the tag still points at `tag_digest`.
    Revalidate {
        tag_digest: String,
    },
    Pull,
}

/// Decides from the local image and the resolve record. Images that were
/// imported or built here have no record and never go to the network;
/// neither do digest references the store already has.
fn plan(
    local: Option<&ImageRecord>,
    record: Option<&strata_registry::ResolvedTag>,
    ttl: Duration,
    by_digest: bool,
) -> Plan {
    let Some(local) = local else {
        return Plan::Pull;
    };
    match record {
        _ if by_digest => Plan::Local,
        None => Plan::Local,
        Some(record) if record.manifest != local.manifest => Plan::Local,
        Some(record) if record.is_fresh(ttl) => Plan::Local,
        Some(record) => Plan::Revalidate {
            tag_digest: record.tag_digest.clone(),
        },
    }
}

impl StoreImageResolver {
    /// Returns the local image for `name`, pulling or revalidating it as
    /// [`plan`] decides.
    async fn local_or_pull(&self, name: &str, platform: &Platform) -> anyhow::Result<ImageRecord> {
        let local = self.store.image(name)?;
        let state = RegistryState::new(self.store.root());
        let reference = Reference::parse_normalized(name).map_err(anyhow::Error::msg)?;
        let decision = plan(
            local.as_ref(),
            state.resolved(name).as_ref(),
            self.resolve_ttl,
            reference.digest.is_some(),
        );
        let Some(client) = &self.registry else {
            return local.with_context(|| not_found_message(name));
        };
        match (decision, local) {
            (Plan::Local, Some(local)) => Ok(local),
            (Plan::Revalidate { tag_digest }, Some(local)) => {
                let current = client
                    .head_manifest(
                        &reference.registry,
                        &reference.repository,
                        reference.manifest_ref(),
                    )
                    .await;
                match current {
                    Ok(Some(current)) if current == tag_digest => {
                        state.set_resolved(name, &tag_digest, &local.manifest)?;
                        Ok(local)
                    }
                    Ok(_) => self.pull(client, &reference, name, platform, &state).await,
                    Err(error) => {
                        tracing::warn!(
                            image = name,
                            "using the local copy, the registry check failed: {error:#}"
                        );
                        Ok(local)
                    }
                }
            }
            _ => self.pull(client, &reference, name, platform, &state).await,
        }
    }

    async fn pull(
        &self,
        client: &RegistryClient,
        reference: &Reference,
        name: &str,
        platform: &Platform,
        state: &RegistryState,
    ) -> anyhow::Result<ImageRecord> {
        let started = Instant::now();
        let phase = format!("pull-{name}");
        let phase_name = format!("pulling {name}");
        self.events.emit(Event::Phase {
            id: phase.clone(),
            name: phase_name.clone(),
            duration_ms: None,
        });
        let progress = layer_events(&self.events, &phase);
        let pulled = pull_image_reporting(&self.store, client, reference, name, platform, &progress)
            .await
            .with_context(|| {
                format!(
                    "Failed to pull `{name}`; to build from a local root filesystem instead, run `strata image import ROOTFS.tar --tag {name}`"
                )
            })?;
        state.set_resolved(name, pulled.tag_digest.as_str(), &pulled.image.manifest)?;
        self.events.emit(Event::Phase {
            id: phase,
            name: phase_name,
            duration_ms: Some(started.elapsed().as_millis() as u64),
        });
        Ok(pulled.image)
    }
}

/// Returns a progress receiver that sends each layer update as a
/// `LayerProgress` event of `phase`.
fn layer_events(events: &EventSink, phase: &str) -> ProgressFn {
    let (events, phase) = (events.clone(), phase.to_string());
    Arc::new(move |update: LayerProgress| {
        let status = match update.status {
            strata_registry::LayerStatus::Downloading => LayerStatus::Downloading,
            strata_registry::LayerStatus::Verified => LayerStatus::Verified,
            strata_registry::LayerStatus::Extracting => LayerStatus::Extracting,
            strata_registry::LayerStatus::Extracted => LayerStatus::Extracted,
        };
        events.emit(Event::LayerProgress {
            phase: phase.clone(),
            layer: update.layer,
            status,
            current: update.current,
            total: update.total,
        });
    })
}

fn not_found_message(name: &str) -> String {
    format!(
        "Image `{name}` is not in the local store: import a root filesystem with \
         `strata image import ROOTFS.tar --tag {name}` or run `installer/setup.sh`, \
         which builds `busybox:latest` and `debian:bookworm`"
    )
}

#[async_trait]
impl ImageResolver for StoreImageResolver {
    async fn resolve(&self, reference: &str, platform: &Platform) -> Result<ResolvedImage, String> {
        let name = normalize_reference(reference).map_err(|e| e.to_string())?;
        let image = self
            .local_or_pull(&name, platform)
            .await
            .map_err(|e| format!("{e:#}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use strata_llb::Digest;
    use strata_llb::image::ImageConfig;
    use strata_registry::ResolvedTag;

    fn image(manifest: &[u8]) -> ImageRecord {
        ImageRecord {
            name: "docker.io/library/a:latest".into(),
            manifest: Digest::of_bytes(manifest),
            config: ImageConfig::default(),
            layers: Vec::new(),
            snapshot: None,
            created: chrono::Utc::now(),
        }
    }

    fn record(manifest: &[u8], checked: u64) -> ResolvedTag {
        ResolvedTag {
            tag_digest: "sha256:11".into(),
            manifest: Digest::of_bytes(manifest),
            checked,
        }
    }

    #[test]
    fn plan_cases() {
        let ttl = Duration::from_secs(900);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let local = image(b"m");
        assert_eq!(plan(None, None, ttl, false), Plan::Pull);
        assert_eq!(plan(Some(&local), None, ttl, false), Plan::Local);
        assert_eq!(
            plan(Some(&local), Some(&record(b"m", now)), ttl, false),
            Plan::Local
        );
        assert_eq!(
            plan(Some(&local), Some(&record(b"m", now - 1000)), ttl, false),
            Plan::Revalidate {
                tag_digest: "sha256:11".into()
            }
        );
        assert_eq!(
            plan(Some(&local), Some(&record(b"m", 0)), ttl, true),
            Plan::Local
        );
        // A local build or import replaced the pulled image: keep it.
        assert_eq!(
            plan(Some(&local), Some(&record(b"other", 0)), ttl, false),
            Plan::Local
        );
    }
}
