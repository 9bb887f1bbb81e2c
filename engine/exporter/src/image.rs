//! The image config and manifest documents, serialised once so that every
//! digest covers the exact bytes written.
//!
//! The manifest and index types are defined here rather than taken from
//! `oci-spec` because its annotation maps are `HashMap`s, whose key order
//! changes from run to run and would make the digests unstable.

use anyhow::{Context, Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use strata_llb::image::{History, ImageConfig};
use strata_llb::{Digest, Platform};

pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_GZIP_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Annotation with the image's reference in an OCI index.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// Annotation with the image's full name, as containerd and Docker 25+ read it.
pub const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";

/// Comment of the history entries added for layers that had none.
const BASE_LAYER_COMMENT: &str = "strata.exporter.image.v0";

/// An OCI content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            annotations: BTreeMap::new(),
            platform: None,
        }
    }
}

/// An OCI image manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// An OCI image index, the `index.json` of an image layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

/// One compressed layer and the file its blob is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
    pub path: PathBuf,
}

/// A finished image: the serialised config and manifest and the layers they
/// name.
#[derive(Clone, Debug)]
pub struct ImageBlobs {
    pub config: ImageConfig,
    pub config_json: Vec<u8>,
    pub config_digest: Digest,
    pub manifest_json: Vec<u8>,
    pub manifest_digest: Digest,
    pub layers: Vec<LayerBlob>,
}

impl ImageBlobs {
    /// Returns the manifest's descriptor, with `annotations` attached.
    pub fn manifest_descriptor(&self, annotations: BTreeMap<String, String>) -> Descriptor {
        let mut descriptor = Descriptor::new(
            MANIFEST_MEDIA_TYPE,
            self.manifest_digest.clone(),
            self.manifest_json.len() as u64,
        );
        descriptor.annotations = annotations;
        descriptor
    }
}

/// Top-level keys of an image config beyond the fields of [`ImageConfig`],
/// such as Strata's inline cache. A base image's extra keys are never
/// carried over, because [`ImageConfig`] drops unknown keys when parsed.
pub type ConfigExtras = BTreeMap<String, serde_json::Value>;

/// Builds the config and manifest of an image with `layers` (bottom first)
/// on top of `base`, created at `created`.
pub fn build_image(
    base: &ImageConfig,
    layers: Vec<LayerBlob>,
    created: DateTime<Utc>,
) -> Result<ImageBlobs> {
    build_image_with_extras(base, &ConfigExtras::new(), layers, created)
}

/// Like [`build_image`], adding `extras` to the config after its own keys.
pub fn build_image_with_extras(
    base: &ImageConfig,
    extras: &ConfigExtras,
    layers: Vec<LayerBlob>,
    created: DateTime<Utc>,
) -> Result<ImageBlobs> {
    let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let config = build_config(base, &diff_ids, created)?;
    let config_json =
        serialize_config(&config, extras).context("Failed to serialise the config")?;
    let config_digest = Digest::of_bytes(&config_json);

    let manifest = Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.to_string(),
        config: Descriptor::new(
            CONFIG_MEDIA_TYPE,
            config_digest.clone(),
            config_json.len() as u64,
        ),
        layers: layers
            .iter()
            .map(|l| Descriptor::new(&l.media_type, l.digest.clone(), l.size))
            .collect(),
    };
    let manifest_json =
        serde_json::to_vec(&manifest).context("Failed to serialise the manifest")?;
    let manifest_digest = Digest::of_bytes(&manifest_json);

    Ok(ImageBlobs {
        config,
        config_json,
        config_digest,
        manifest_json,
        manifest_digest,
        layers,
    })
}

/// Serialises `config` with `extras` appended. Without extras the bytes
/// equal plain serialisation, so existing image digests do not change.
fn serialize_config(config: &ImageConfig, extras: &ConfigExtras) -> serde_json::Result<Vec<u8>> {
    #[derive(Serialize)]
    struct WithExtras<'a> {
        #[serde(flatten)]
        config: &'a ImageConfig,
        #[serde(flatten)]
        extras: &'a ConfigExtras,
    }
    if extras.is_empty() {
        return serde_json::to_vec(config);
    }
    serde_json::to_vec(&WithExtras { config, extras })
}

/// Fills in `rootfs.diff_ids`, `created`, the platform if unset, and one
/// non-empty history entry per layer.
pub fn build_config(
    base: &ImageConfig,
    diff_ids: &[Digest],
    created: DateTime<Utc>,
) -> Result<ImageConfig> {
    let mut config = base.clone();
    let created_text = created.to_rfc3339_opts(SecondsFormat::Secs, true);
    config.created = Some(created_text.clone());
    config.rootfs.kind = "layers".to_string();
    config.rootfs.diff_ids = diff_ids.iter().map(Digest::to_string).collect();

    if config.os.is_empty() || config.architecture.is_empty() {
        let host = Platform::host();
        if config.os.is_empty() {
            config.os = host.os;
        }
        if config.architecture.is_empty() {
            config.architecture = host.architecture;
            config.variant = config.variant.or(host.variant);
        }
    }

    config.history = normalize_history(&base.history, diff_ids.len(), &created_text)?;
    Ok(config)
}

/// Makes the number of non-empty history entries equal the layer count.
///
/// Missing entries belong to base layers whose history was lost (an image
/// built `FROM` a bare snapshot), so they are prepended, as BuildKit does.
/// Surplus entries are marked empty from the bottom up.
fn normalize_history(history: &[History], layers: usize, created: &str) -> Result<Vec<History>> {
    let mut history = history.to_vec();
    let non_empty = history.iter().filter(|h| !h.empty_layer).count();

    if non_empty < layers {
        let missing = layers - non_empty;
        let base = History {
            created: Some(created.to_string()),
            created_by: None,
            comment: Some(BASE_LAYER_COMMENT.to_string()),
            empty_layer: false,
        };
        history.splice(0..0, std::iter::repeat_n(base, missing));
    } else if non_empty > layers {
        let mut surplus = non_empty - layers;
        for entry in history.iter_mut() {
            if surplus == 0 {
                break;
            }
            if !entry.empty_layer {
                entry.empty_layer = true;
                surplus -= 1;
            }
        }
    }

    let check = history.iter().filter(|h| !h.empty_layer).count();
    if check != layers {
        bail!("History has {check} layer entries for {layers} layers: this is a bug in Strata");
    }
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(created_by: &str, empty_layer: bool) -> History {
        History {
            created_by: Some(created_by.into()),
            empty_layer,
            ..History::default()
        }
    }

    fn layer(n: u8) -> LayerBlob {
        LayerBlob {
            digest: Digest::of_bytes(&[n]),
            diff_id: Digest::of_bytes(&[n, n]),
            size: 10 + u64::from(n),
            media_type: LAYER_GZIP_MEDIA_TYPE.into(),
            path: PathBuf::from(format!("/blobs/{n}")),
        }
    }

    #[test]
    fn history_prepends_base_layers() {
        let history = vec![entry("ENV A=1", true), entry("RUN make", false)];
        let out = normalize_history(&history, 3, "2024-01-01T00:00:00Z").unwrap();
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].comment.as_deref(), Some(BASE_LAYER_COMMENT));
        assert_eq!(out[1].comment.as_deref(), Some(BASE_LAYER_COMMENT));
        assert!(!out[0].empty_layer);
        assert_eq!(out[3].created_by.as_deref(), Some("RUN make"));
    }

    #[test]
    fn history_marks_surplus_empty() {
        let history = vec![entry("a", false), entry("b", false), entry("c", false)];
        let out = normalize_history(&history, 1, "2024-01-01T00:00:00Z").unwrap();
        assert!(out[0].empty_layer);
        assert!(out[1].empty_layer);
        assert!(!out[2].empty_layer);
    }

    #[test]
    fn manifest_digest_covers_bytes() {
        let created = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let image =
            build_image(&ImageConfig::default(), vec![layer(1), layer(2)], created).unwrap();
        assert_eq!(image.config_digest, Digest::of_bytes(&image.config_json));
        assert_eq!(
            image.manifest_digest,
            Digest::of_bytes(&image.manifest_json)
        );

        let manifest: serde_json::Value = serde_json::from_slice(&image.manifest_json).unwrap();
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        assert_eq!(manifest["config"]["size"], image.config_json.len());
        assert_eq!(manifest["layers"][1]["digest"], layer(2).digest.to_string());
        assert_eq!(manifest["layers"][1]["mediaType"], LAYER_GZIP_MEDIA_TYPE);

        let config: serde_json::Value = serde_json::from_slice(&image.config_json).unwrap();
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            layer(1).diff_id.to_string()
        );
        assert_eq!(config["history"].as_array().unwrap().len(), 2);
        assert!(!config["os"].as_str().unwrap().is_empty());
    }

    #[test]
    fn config_extras_follow_own_keys() {
        let created = DateTime::from_timestamp(0, 0).unwrap();
        let plain = build_image(&ImageConfig::default(), vec![layer(1)], created).unwrap();
        let extras = ConfigExtras::from([("x.test".to_string(), serde_json::json!({"a": 1}))]);
        let image =
            build_image_with_extras(&ImageConfig::default(), &extras, vec![layer(1)], created)
                .unwrap();
        let config: serde_json::Value = serde_json::from_slice(&image.config_json).unwrap();
        assert_eq!(config["x.test"]["a"], 1);
        let plain_text = String::from_utf8(plain.config_json).unwrap();
        let text = String::from_utf8(image.config_json).unwrap();
        let own_keys = plain_text.strip_suffix('}').unwrap();
        assert!(text.starts_with(own_keys), "{text}");
        let reparsed: ImageConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(reparsed, image.config);
    }

    #[test]
    fn build_image_is_deterministic() {
        let created = DateTime::from_timestamp(0, 0).unwrap();
        let first = build_image(&ImageConfig::default(), vec![layer(1)], created).unwrap();
        let second = build_image(&ImageConfig::default(), vec![layer(1)], created).unwrap();
        assert_eq!(first.manifest_json, second.manifest_json);
        assert_eq!(first.config_json, second.config_json);
    }
}
