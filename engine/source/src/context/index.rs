//! The index file beside each context mirror: every mirrored entry with
//! the metadata a sync compares, the scope it was walked with, and the
//! mirror's checksum.
//!
//! A no-op sync reads the whole index, so it is stored in a compact binary
//! encoding (postcard) behind a magic line with a format version, not as
//! JSON, which took longer to parse than the walk took to stat the context.
//! An index in the earlier JSON format is still read once, so an upgrade
//! copies nothing again.

use super::Entry;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The first bytes of an index file; the last byte is the format version.
const MAGIC: &[u8] = b"strata context index\n\x02";

/// The index: every mirrored entry and the scope it was walked with.
#[derive(Default, Serialize, Deserialize)]
pub(super) struct IndexFile {
    /// Digest of the followed roots and ignore patterns; a dirty sync is
    /// only valid on an index walked with the same scope.
    pub(super) scope: String,
    #[serde(deserialize_with = "sorted_entries")]
    pub(super) entries: BTreeMap<String, Entry>,
    /// Whether the sync that wrote the index used a marker file for
    /// interrupted syncs; an older index without it gets every entry checked.
    #[serde(default)]
    pub(super) marked: bool,
    /// The checksum of `entries` (see `super::checksum`), so a sync that
    /// changed nothing does not compute it again.
    #[serde(default)]
    pub(super) checksum: Option<String>,
    /// Unique per write of the index, so the context monitor can tell
    /// whether the index it acknowledged is still the current one.
    #[serde(default)]
    pub(super) token: Option<String>,
}

/// Reads a map written in path order as a list of pairs and builds the
/// map in one pass, instead of inserting (and comparing) each path. The
/// binary encoding of a map and of a list of pairs is the same.
fn sorted_entries<'de, D>(deserializer: D) -> std::result::Result<BTreeMap<String, Entry>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let pairs: Vec<(String, Entry)> = Vec::deserialize(deserializer)?;
    Ok(pairs.into_iter().collect())
}

/// Where the index of the mirror at `mirror` lives.
pub(super) fn path_of(mirror: &Path) -> PathBuf {
    mirror.with_extension("index")
}

/// Where the JSON index of earlier versions lived.
fn json_path_of(mirror: &Path) -> PathBuf {
    mirror.with_extension("index.json")
}

/// Reads the index of the mirror at `mirror`, or an empty one (everything
/// is copied again) when it is missing or unreadable.
pub(super) fn read(mirror: &Path) -> IndexFile {
    if let Ok(bytes) = fs::read(path_of(mirror)) {
        match decode(&bytes) {
            Some(index) => return index,
            None => tracing::warn!(
                "ignoring the unreadable context index `{}`; the context is copied again",
                path_of(mirror).display()
            ),
        }
    }
    read_json(&json_path_of(mirror))
}

fn decode(bytes: &[u8]) -> Option<IndexFile> {
    postcard::from_bytes(bytes.strip_prefix(MAGIC)?).ok()
}

/// Reads an index in the JSON format of earlier versions.
fn read_json(path: &Path) -> IndexFile {
    #[derive(Deserialize)]
    struct JsonIndex {
        scope: String,
        entries: BTreeMap<String, Entry>,
        #[serde(default)]
        marked: bool,
    }
    let Ok(bytes) = fs::read(path) else {
        return IndexFile::default();
    };
    if let Ok(index) = serde_json::from_slice::<JsonIndex>(&bytes) {
        return IndexFile {
            scope: index.scope,
            entries: index.entries,
            marked: index.marked,
            checksum: None,
            token: None,
        };
    }
    // The first format was the bare entry map; keep its entries so files
    // are not copied again, with an empty scope so no dirty sync trusts it.
    IndexFile {
        scope: String::new(),
        entries: serde_json::from_slice(&bytes).unwrap_or_default(),
        marked: false,
        checksum: None,
        token: None,
    }
}

/// Replaces the index of the mirror at `mirror` atomically, and removes an
/// index in the earlier format.
pub(super) fn write(mirror: &Path, index: &IndexFile) -> Result<()> {
    let path = path_of(mirror);
    let bytes =
        postcard::to_extend(index, MAGIC.to_vec()).context("Failed to encode the context index")?;
    let temp = path.with_extension("index.tmp");
    fs::write(&temp, &bytes)
        .and_then(|()| fs::rename(&temp, &path))
        .with_context(|| format!("Failed to write the context index `{}`", path.display()))?;
    match fs::remove_file(json_path_of(mirror)) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => tracing::warn!(
            "failed to remove the old context index `{}`: {error}",
            json_path_of(mirror).display()
        ),
        _ => {}
    }
    Ok(())
}
