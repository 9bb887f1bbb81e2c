//! Registry metadata of a store, under `$STRATA_ROOT/registry/`:
//!
//! - `resolved.json`: per image name, the digest its tag pointed at, the
//!   platform manifest pulled and when the tag was last checked, so that
//!   builds inside the freshness window (`STRATA_RESOLVE_TTL`) make no
//!   network round trip;
//! - `blob-sources.json`: per blob digest, the repositories it was pulled
//!   from or pushed to, so that a push can ask for a cross-repository mount;
//! - `partial/`: downloads in progress, named by digest, resumed with `Range`.
//!
//! The JSON files are caches: each update rewrites the file through a temp
//! file and a rename, and concurrent writers may drop each other's newest
//! entry, which only costs a network round trip later.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use strata_llb::Digest;

/// Default freshness of a resolved tag: 15 minutes.
pub const DEFAULT_RESOLVE_TTL: Duration = Duration::from_secs(15 * 60);

/// One resolved tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedTag {
    /// The digest the tag pointed at: an index or a manifest.
    pub tag_digest: String,
    /// The platform manifest that was pulled.
    pub manifest: Digest,
    /// Seconds since the epoch of the last check against the registry.
    pub checked: u64,
}

impl ResolvedTag {
    pub fn is_fresh(&self, ttl: Duration) -> bool {
        now_secs().saturating_sub(self.checked) < ttl.as_secs()
    }
}

/// Reads `STRATA_RESOLVE_TTL`: seconds, or a number with `s`, `m` or `h`.
pub fn resolve_ttl_from_env() -> Result<Duration> {
    match std::env::var("STRATA_RESOLVE_TTL") {
        Ok(text) if !text.trim().is_empty() => parse_duration(&text),
        _ => Ok(DEFAULT_RESOLVE_TTL),
    }
}

fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => 0,
    };
    let value: u64 = number.parse().unwrap_or(u64::MAX);
    if scale == 0 || value == u64::MAX {
        anyhow::bail!(
            "Invalid `STRATA_RESOLVE_TTL` value `{text}`: expected seconds, or a number with `s`, `m` or `h`, such as `15m`"
        );
    }
    Ok(Duration::from_secs(value * scale))
}

/// The registry folder of one store.
pub struct RegistryState {
    dir: PathBuf,
}

impl RegistryState {
    pub fn new(store_root: &Path) -> RegistryState {
        RegistryState {
            dir: store_root.join("registry"),
        }
    }

    /// Returns the file a download of `digest` is written to until verified.
    pub fn partial_path(&self, digest: &Digest) -> Result<PathBuf> {
        let dir = self.dir.join("partial");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("Failed to create `{}`", dir.display()))?;
        Ok(dir.join(digest.hex()))
    }

    pub fn resolved(&self, name: &str) -> Option<ResolvedTag> {
        let map: BTreeMap<String, ResolvedTag> = self.read("resolved.json");
        map.get(name).cloned()
    }

    pub fn set_resolved(&self, name: &str, tag_digest: &str, manifest: &Digest) -> Result<()> {
        let mut map: BTreeMap<String, ResolvedTag> = self.read("resolved.json");
        map.insert(
            name.to_string(),
            ResolvedTag {
                tag_digest: tag_digest.to_string(),
                manifest: manifest.clone(),
                checked: now_secs(),
            },
        );
        self.write("resolved.json", &map)
    }

    /// Returns the repositories (`registry/repository`) known to hold `blob`.
    pub fn blob_sources(&self, blob: &Digest) -> Vec<String> {
        let map: BTreeMap<String, Vec<String>> = self.read("blob-sources.json");
        map.get(blob.as_str()).cloned().unwrap_or_default()
    }

    pub fn add_blob_sources(&self, blobs: &[Digest], repository: &str) -> Result<()> {
        let mut map: BTreeMap<String, Vec<String>> = self.read("blob-sources.json");
        for blob in blobs {
            let sources = map.entry(blob.to_string()).or_default();
            if !sources.iter().any(|s| s == repository) {
                sources.push(repository.to_string());
            }
        }
        self.write("blob-sources.json", &map)
    }

    /// Reads a cache file; a missing or unreadable one is empty.
    fn read<T: serde::de::DeserializeOwned + Default>(&self, name: &str) -> T {
        let path = self.dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(path = %path.display(), "ignoring unreadable registry cache: {error}");
                T::default()
            }),
            Err(_) => T::default(),
        }
    }

    fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("Failed to create `{}`", self.dir.display()))?;
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)
            .with_context(|| format!("Failed to write `{}`", tmp.display()))?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("Failed to replace `{}`", path.display()))?;
        Ok(())
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        let error = parse_duration("soon").unwrap_err();
        assert!(error.to_string().contains("`soon`"), "{error}");
    }

    #[test]
    fn state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let state = RegistryState::new(dir.path());
        let digest = Digest::of_bytes(b"m");
        assert_eq!(state.resolved("a"), None);
        state.set_resolved("a", "sha256:00", &digest).unwrap();
        let entry = state.resolved("a").unwrap();
        assert_eq!(entry.manifest, digest);
        assert!(entry.is_fresh(DEFAULT_RESOLVE_TTL));
        assert!(!entry.is_fresh(Duration::ZERO));

        state.add_blob_sources(&[digest.clone()], "r/x").unwrap();
        state.add_blob_sources(&[digest.clone()], "r/x").unwrap();
        assert_eq!(state.blob_sources(&digest), vec!["r/x".to_string()]);
    }
}
