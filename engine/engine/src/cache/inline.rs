//! Inline cache: the records of an exported image's own layers, stored in
//! its config under [`INLINE_CACHE_KEY`], so that the image itself can be
//! a `--cache-from` source. See `docs/cache-format.md`.

use super::format::{CACHE_FORMAT_VERSION, CacheConfig, CacheLayer, CacheRecord};
use super::spec::{CacheExport, CacheLocation};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use strata_exporter::image::Manifest;
use strata_exporter::{ConfigExtras, OutputKind, OutputSpec};
use strata_llb::Digest;
use strata_store::Store;

/// The image config key that contains the inline cache. BuildKit uses
/// `moby.buildkit.cache.v0` for its own, incompatible, format.
pub const INLINE_CACHE_KEY: &str = "strata.cache.v1";

/// The inline cache document. Each record's `chain` indexes the image's
/// own layers (the manifest's `layers` and the config's `rootfs.diff_ids`),
/// so it needs no layer list of its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineCache {
    pub version: u32,
    pub records: Vec<CacheRecord>,
}

impl InlineCache {
    /// Returns the config extras that embed this cache.
    pub fn config_extras(&self) -> Result<ConfigExtras> {
        let value = serde_json::to_value(self).context("Failed to serialise the inline cache")?;
        Ok(ConfigExtras::from([(INLINE_CACHE_KEY.to_string(), value)]))
    }
}

/// Rejects `--cache-to type=inline` when no output of the build has an
/// image config to hold it: `local` and `tar` outputs, or no output or
/// tag at all.
pub fn check_outputs(
    cache_to: &[CacheExport],
    outputs: &[OutputSpec],
    tags: &[String],
) -> Result<(), String> {
    if !cache_to.iter().any(|c| c.location == CacheLocation::Inline) {
        return Ok(());
    }
    let without_config = outputs
        .iter()
        .find(|o| matches!(o.kind, OutputKind::Local | OutputKind::Tar));
    if let Some(output) = without_config {
        return Err(format!(
            "Invalid `--cache-to` value `type=inline`: output `{output}` has no image config to \
             hold the cache; use `--output type=image,name=REF,push=true`, `type=docker` or \
             `type=oci`, or export the cache with `type=registry,ref=REF` or `type=local,dest=DIR`"
        ));
    }
    if outputs.is_empty() && tags.is_empty() {
        return Err(
            "Invalid `--cache-to` value `type=inline`: the build has no output to embed the \
             cache in; add `--output type=image,name=REF,push=true` or `-t NAME`"
                .to_string(),
        );
    }
    Ok(())
}

/// Collects the inline records of a build: the keys whose result is a
/// snapshot of the final result's chain, each with the image layers up to
/// that snapshot.
pub fn collect(
    store: &Store,
    keys: &[Digest],
    final_snapshot: Option<&str>,
) -> Result<InlineCache> {
    let mut chain = Vec::new();
    let mut next = final_snapshot.map(str::to_string);
    while let Some(id) = next {
        next = store.snapshot(&id)?.parent;
        chain.push(id);
    }
    chain.reverse();
    let position: HashMap<&str, usize> = chain
        .iter()
        .enumerate()
        .map(|(index, id)| (id.as_str(), index))
        .collect();

    let mut records: Vec<CacheRecord> = Vec::new();
    for key in keys {
        let Some(Some(snapshot)) = store.cache_get(key)? else {
            continue;
        };
        let Some(&top) = position.get(snapshot.as_str()) else {
            continue;
        };
        if !records.iter().any(|r| r.key == *key) {
            records.push(CacheRecord {
                key: key.clone(),
                chain: (0..=top).collect(),
            });
        }
    }
    Ok(InlineCache {
        version: CACHE_FORMAT_VERSION,
        records,
    })
}

/// Reads the inline cache of an image into the cache config that a
/// registry cache would have, with the image's layers as its layers.
pub fn from_image(manifest: &Manifest, config_bytes: &[u8], name: &str) -> Result<CacheConfig> {
    let config: serde_json::Value = serde_json::from_slice(config_bytes)
        .with_context(|| format!("Invalid image config in `{name}`"))?;
    let Some(value) = config.get(INLINE_CACHE_KEY) else {
        bail!(
            "Image `{name}` has no inline cache (no `{INLINE_CACHE_KEY}` key in its config): \
             build it with `--cache-to type=inline`"
        );
    };
    let inline: InlineCache = serde_json::from_value(value.clone())
        .with_context(|| format!("Invalid inline cache in `{name}`"))?;
    if inline.version != CACHE_FORMAT_VERSION {
        bail!(
            "Inline cache of `{name}` has format version {}, this build reads version \
             {CACHE_FORMAT_VERSION}: build the image again",
            inline.version
        );
    }
    let diff_ids: Vec<Digest> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if diff_ids.len() != manifest.layers.len() {
        bail!(
            "Image `{name}` lists {} layers but {} diff ids in its config: the image is corrupt",
            manifest.layers.len(),
            diff_ids.len()
        );
    }
    let layers = manifest
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(layer, diff_id)| CacheLayer {
            blob: layer.digest.clone(),
            diff_id,
            media_type: layer.media_type.clone(),
            size: layer.size,
        })
        .collect();
    let cache = CacheConfig {
        version: CACHE_FORMAT_VERSION,
        layers,
        records: inline.records,
        mounts: Vec::new(),
    };
    cache.check_indexes(name)?;
    // A result in an image is always the image's first layers, in order,
    // so any other chain would give a step a filesystem missing layers.
    if let Some(record) = cache
        .records
        .iter()
        .find(|r| !r.chain.iter().copied().eq(0..r.chain.len()))
    {
        bail!(
            "Inline cache of `{name}` is corrupt: record `{}` has layers {:?}, which are not \
             the image's first layers in order; build the image again",
            record.key,
            record.chain
        );
    }
    Ok(cache)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_exporter::image::{Descriptor, LAYER_GZIP_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};

    fn manifest(layers: u8) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: MANIFEST_MEDIA_TYPE.into(),
            config: Descriptor::new("application/vnd.oci.image.config.v1+json", digest(0), 1),
            layers: (1..=layers)
                .map(|n| Descriptor::new(LAYER_GZIP_MEDIA_TYPE, digest(n), u64::from(n)))
                .collect(),
        }
    }

    fn digest(n: u8) -> Digest {
        Digest::of_bytes(&[n])
    }

    fn config(diff_ids: usize, inline: serde_json::Value) -> Vec<u8> {
        let ids: Vec<String> = (0..diff_ids)
            .map(|n| Digest::of_bytes(&[n as u8, 9]).to_string())
            .collect();
        let mut config = serde_json::json!({"rootfs": {"type": "layers", "diff_ids": ids}});
        if !inline.is_null() {
            config[INLINE_CACHE_KEY] = inline;
        }
        serde_json::to_vec(&config).unwrap()
    }

    #[test]
    fn from_image_uses_image_layers() {
        let inline = serde_json::json!({
            "version": 1,
            "records": [{"key": digest(7).to_string(), "chain": [0, 1]}]
        });
        let cache = from_image(&manifest(2), &config(2, inline), "app").unwrap();
        assert_eq!(cache.layers.len(), 2);
        assert_eq!(cache.layers[1].blob, digest(2));
        assert_eq!(cache.layers[1].diff_id, Digest::of_bytes(&[1, 9]));
        assert_eq!(cache.records[0].key, digest(7));
        assert_eq!(cache.chain(&cache.records[0]).len(), 2);
    }

    #[test]
    fn from_image_rejects_bad_documents() {
        let record = |chain: serde_json::Value| {
            serde_json::json!({
                "version": 1,
                "records": [{"key": digest(7).to_string(), "chain": chain}]
            })
        };
        let cases = [
            (config(2, serde_json::Value::Null), "has no inline cache"),
            (
                config(1, record(serde_json::json!([0]))),
                "lists 2 layers but 1 diff ids",
            ),
            (
                config(2, record(serde_json::json!([0, 5]))),
                "names a layer past the 2 listed",
            ),
            (
                config(2, serde_json::json!({"version": 9, "records": []})),
                "format version 9",
            ),
            (
                config(2, record(serde_json::json!([1]))),
                "not the image's first layers in order",
            ),
        ];
        for (bytes, needle) in cases {
            let error = from_image(&manifest(2), &bytes, "app").unwrap_err();
            assert!(format!("{error:#}").contains(needle), "{needle}: {error:#}");
        }
    }
}
