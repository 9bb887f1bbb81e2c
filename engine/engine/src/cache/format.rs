//! The cache format: an OCI image manifest whose config (media type
//! [`CACHE_CONFIG_MEDIA_TYPE`]) links the solver's cache keys to layer
//! chains, and whose layers are every blob those chains name. See
//! `docs/cache-format.md`.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use strata_exporter::image::{Descriptor, MANIFEST_MEDIA_TYPE, Manifest};
use strata_llb::Digest;
use strata_store::LayerRecord;

pub const CACHE_CONFIG_MEDIA_TYPE: &str = "application/vnd.strata.cache.config.v1+json";
/// The format version this build writes and reads.
pub const CACHE_FORMAT_VERSION: u32 = 1;

/// The cache config document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheConfig {
    pub version: u32,
    /// Layers in the order of the manifest's `layers`.
    pub layers: Vec<CacheLayer>,
    pub records: Vec<CacheRecord>,
    /// Cache mount contents, written only with `cache-mounts=true`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<CacheMountRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheLayer {
    pub blob: Digest,
    pub diff_id: Digest,
    pub media_type: String,
    pub size: u64,
}

/// One cache key and its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheRecord {
    pub key: Digest,
    /// Indexes into `layers`, bottom first; empty for an empty result.
    pub chain: Vec<usize>,
}

/// The contents of one `RUN --mount=type=cache` directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheMountRecord {
    /// The mount's `id` (its target path when the Dockerfile gives none).
    pub id: String,
    /// Index into `layers` of the tar of the directory's contents.
    pub layer: usize,
    /// Owner and permission bits of the directory itself, which the layer
    /// tar does not contain.
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl CacheConfig {
    /// Adds a record for `key` whose result is the layer chain `layers`,
    /// sharing layer entries by blob digest.
    pub fn add(&mut self, key: Digest, layers: &[LayerRecord]) {
        let chain = layers.iter().map(|layer| self.add_layer(layer)).collect();
        if !self.records.iter().any(|r| r.key == key) {
            self.records.push(CacheRecord { key, chain });
        }
    }

    /// Returns the index of `layer` in `layers`, adding it when missing.
    pub fn add_layer(&mut self, layer: &LayerRecord) -> usize {
        if let Some(index) = self.layers.iter().position(|l| l.blob == layer.blob) {
            return index;
        }
        self.layers.push(CacheLayer {
            blob: layer.blob.clone(),
            diff_id: layer.diff_id.clone(),
            media_type: layer.media_type.clone(),
            size: layer.size,
        });
        self.layers.len() - 1
    }

    /// Returns the layer records of `record`'s chain.
    pub fn chain(&self, record: &CacheRecord) -> Vec<LayerRecord> {
        record.chain.iter().map(|&i| self.layer(i)).collect()
    }

    /// Returns entry `index` of `layers` as a store layer record.
    pub fn layer(&self, index: usize) -> LayerRecord {
        let layer = &self.layers[index];
        LayerRecord {
            blob: layer.blob.clone(),
            diff_id: layer.diff_id.clone(),
            media_type: layer.media_type.clone(),
            size: layer.size,
        }
    }

    /// Parses a cache config, checking its version and indexes.
    pub fn parse(bytes: &[u8], source: &str) -> Result<CacheConfig> {
        let config: CacheConfig = serde_json::from_slice(bytes)
            .map_err(|e| anyhow::anyhow!("Invalid cache config in `{source}`: {e}"))?;
        if config.version != CACHE_FORMAT_VERSION {
            bail!(
                "Cache `{source}` has format version {}, this build reads version {CACHE_FORMAT_VERSION}: export the cache again",
                config.version
            );
        }
        config.check_indexes(source)?;
        Ok(config)
    }

    /// Rejects records and mounts that name a layer past the end of `layers`.
    pub fn check_indexes(&self, source: &str) -> Result<()> {
        let count = self.layers.len();
        if let Some(bad) = self
            .records
            .iter()
            .find(|r| r.chain.iter().any(|&i| i >= count))
        {
            bail!(
                "Invalid cache config in `{source}`: record `{}` names a layer past the {count} listed",
                bad.key
            );
        }
        if let Some(bad) = self.mounts.iter().find(|m| m.layer >= count) {
            bail!(
                "Invalid cache config in `{source}`: cache mount `{}` names a layer past the {count} listed",
                bad.id
            );
        }
        Ok(())
    }

    /// Serialises the config and the manifest that points at it.
    pub fn to_manifest(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        let config_json = serde_json::to_vec(self)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: MANIFEST_MEDIA_TYPE.to_string(),
            config: Descriptor::new(
                CACHE_CONFIG_MEDIA_TYPE,
                Digest::of_bytes(&config_json),
                config_json.len() as u64,
            ),
            layers: self
                .layers
                .iter()
                .map(|l| Descriptor::new(&l.media_type, l.blob.clone(), l.size))
                .collect(),
        };
        Ok((config_json, serde_json::to_vec(&manifest)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(n: u8) -> LayerRecord {
        LayerRecord {
            blob: Digest::of_bytes(&[n]),
            diff_id: Digest::of_bytes(&[n, n]),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            size: u64::from(n),
        }
    }

    #[test]
    fn records_share_layers() {
        let mut config = CacheConfig {
            version: CACHE_FORMAT_VERSION,
            ..CacheConfig::default()
        };
        config.add(Digest::of_bytes(b"k1"), &[layer(1), layer(2)]);
        config.add(Digest::of_bytes(b"k2"), &[layer(1), layer(2), layer(3)]);
        config.add(Digest::of_bytes(b"k3"), &[]);
        assert_eq!(config.layers.len(), 3);
        assert_eq!(config.records[1].chain, vec![0, 1, 2]);
        assert_eq!(config.chain(&config.records[1])[2], layer(3));
        assert!(config.records[2].chain.is_empty());

        let (config_json, manifest_json) = config.to_manifest().unwrap();
        let parsed = CacheConfig::parse(&config_json, "test").unwrap();
        assert_eq!(parsed, config);
        let manifest: Manifest = serde_json::from_slice(&manifest_json).unwrap();
        assert_eq!(manifest.config.media_type, CACHE_CONFIG_MEDIA_TYPE);
        assert_eq!(manifest.layers.len(), 3);
    }

    #[test]
    fn parse_rejects_bad_index_and_version() {
        let bad = format!(
            r#"{{"version":1,"layers":[],"records":[{{"key":"{}","chain":[0]}}]}}"#,
            Digest::of_bytes(b"k")
        );
        let error = CacheConfig::parse(bad.as_bytes(), "dir").unwrap_err();
        assert!(error.to_string().contains("past the 0 listed"), "{error}");
        let error =
            CacheConfig::parse(br#"{"version":9,"layers":[],"records":[]}"#, "dir").unwrap_err();
        assert!(error.to_string().contains("format version 9"), "{error}");
    }
}
