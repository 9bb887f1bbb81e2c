//! The index file beside each context mirror: every mirrored entry with
//! the metadata a sync compares, the scope it was walked with, and the
//! mirror's checksum.
//!
//! A no-op sync reads the whole index, so it is stored in a compact binary
//! encoding (postcard) behind a magic line with a format version. As JSON
//! it took longer to parse than the walk took to stat the context.
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

/// Returns the path of the index of the mirror at `mirror`.
pub(super) fn path_of(mirror: &Path) -> PathBuf {
    mirror.with_extension("index")
}

/// Returns the path of the JSON index of earlier versions.
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

/// Copy checksums (`ContextLease::path_checksum`) already computed from
/// one version of the index, in a small JSON file beside it, so a build of
/// an unchanged context does not hash the index again. It is valid only
/// for the index with the same token.
#[derive(Default)]
pub(super) struct ChecksumMemo {
    path: Option<PathBuf>,
    token: Option<String>,
    known: std::sync::Mutex<BTreeMap<String, String>>,
    added: std::sync::atomic::AtomicBool,
}

#[derive(Serialize, Deserialize)]
struct MemoFile {
    token: String,
    checksums: BTreeMap<String, String>,
}

impl ChecksumMemo {
    /// Reads the memo of the mirror at `mirror` for the index with `token`.
    pub(super) fn load(mirror: &Path, token: Option<&str>) -> ChecksumMemo {
        let path = mirror.with_extension("checksums");
        let known = fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<MemoFile>(&bytes).ok())
            .filter(|file| token == Some(file.token.as_str()))
            .map(|file| file.checksums)
            .unwrap_or_default();
        ChecksumMemo {
            path: Some(path),
            token: token.map(str::to_string),
            known: std::sync::Mutex::new(known),
            added: Default::default(),
        }
    }

    pub(super) fn get(&self, path: &str) -> Option<strata_llb::Digest> {
        let known = self.known.lock().expect("checksum memo lock");
        known.get(path)?.parse().ok()
    }

    pub(super) fn insert(&self, path: String, digest: strata_llb::Digest) {
        let mut known = self.known.lock().expect("checksum memo lock");
        known.insert(path, digest.to_string());
        self.added.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Writes the memo when checksums were added; a failure only costs
    /// the next build a computation.
    pub(super) fn save(&self) {
        let (Some(path), Some(token)) = (&self.path, &self.token) else {
            return;
        };
        if !self.added.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let file = MemoFile {
            token: token.clone(),
            checksums: self.known.lock().expect("checksum memo lock").clone(),
        };
        let temp = path.with_extension("checksums.tmp");
        let written = serde_json::to_vec(&file)
            .map_err(std::io::Error::other)
            .and_then(|bytes| fs::write(&temp, bytes))
            .and_then(|()| fs::rename(&temp, path));
        if let Err(error) = written {
            tracing::debug!(
                "failed to save copy checksums to `{}`: {error}",
                path.display()
            );
        }
    }
}
