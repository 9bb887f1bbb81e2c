//! Content checksums of what a copy reads, for content-based cache keys.
//!
//! The digest is sha256 over one record per entry, in sorted path order:
//! `path NUL type NUL mode NUL uid NUL gid NUL size NUL content LF`, where
//! `path` is relative to the input's root, `mode` holds the permission and
//! set-id bits in octal, and `content` is the sha256 of a file's bytes or a
//! symlink's target. Times are left out, so touching a file keeps its key.

use crate::paths::{PathFilter, expand_wildcard, has_wildcard, path_bytes, resolve_in_root};
use anyhow::{Context, Result, bail};
use sha2::{Digest as _, Sha256};
use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use strata_llb::Digest;
use strata_solver::Selector;

/// Computes the checksum of the paths `selector` reads from `root`. A
/// wildcard that matches nothing hashes as empty, because a copy accepts it
/// next to other sources; a missing plain path is an error.
pub fn checksum(root: &Path, selector: &Selector) -> Result<Digest> {
    let sources = if selector.allow_wildcard && has_wildcard(&selector.path) {
        expand_wildcard(root, &selector.path)?
    } else {
        vec![selector.path.clone()]
    };
    let filter = PathFilter::new(&selector.include_patterns, &selector.exclude_patterns)?;

    let mut hasher = Sha256::new();
    let mut matched = false;
    for source in &sources {
        let path = resolve_in_root(root, source, selector.follow_symlink)?;
        if path.symlink_metadata().is_err() {
            continue;
        }
        matched = true;
        hash_tree(&mut hasher, root, &path, "", &filter)
            .with_context(|| format!("Failed to compute the checksum of \"{source}\""))?;
    }
    let wildcard = selector.allow_wildcard && has_wildcard(&selector.path);
    if !matched && !wildcard {
        bail!(
            "Failed to compute the checksum of \"{}\": not found",
            selector.path
        );
    }
    Ok(Digest::from_sha256(hasher.finalize().into()))
}

/// Hashes `path` and, for a directory, every entry below it that the
/// filter selects. `relative` is the path under the selected source.
fn hash_tree(
    hasher: &mut Sha256,
    root: &Path,
    path: &Path,
    relative: &str,
    filter: &PathFilter,
) -> Result<()> {
    let metadata = path.symlink_metadata()?;
    let included = relative.is_empty() || filter.includes(relative);
    if metadata.is_dir() && !relative.is_empty() && !filter.may_contain_included(relative) {
        return Ok(());
    }
    if included {
        hash_entry(hasher, root, path, &metadata)?;
    }
    if metadata.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let child = if relative.is_empty() {
                name.to_string_lossy().into_owned()
            } else {
                format!("{relative}/{}", name.to_string_lossy())
            };
            hash_tree(hasher, root, &path.join(&name), &child, filter)?;
        }
    }
    Ok(())
}

fn hash_entry(hasher: &mut Sha256, root: &Path, path: &Path, metadata: &Metadata) -> Result<()> {
    let file_type = metadata.file_type();
    let (kind, content) = if file_type.is_symlink() {
        (
            "symlink",
            Sha256::digest(path_bytes(&std::fs::read_link(path)?)).into(),
        )
    } else if file_type.is_file() {
        ("file", hash_file(path)?)
    } else if file_type.is_dir() {
        ("dir", [0u8; 32])
    } else if file_type.is_char_device() || file_type.is_block_device() {
        (
            "device",
            Sha256::digest(metadata.rdev().to_le_bytes()).into(),
        )
    } else {
        ("other", [0u8; 32])
    };

    let relative = path.strip_prefix(root).unwrap_or(path);
    hasher.update(b"/");
    hasher.update(path_bytes(relative));
    let record = format!(
        "\0{kind}\0{:o}\0{}\0{}\0{}\0{}\n",
        metadata.mode() & 0o7777,
        metadata.uid(),
        metadata.gid(),
        if file_type.is_file() {
            metadata.len()
        } else {
            0
        },
        hex::encode(content)
    );
    hasher.update(record.as_bytes());
    Ok(())
}

/// Hashes a file's bytes in fixed-size chunks, so large files never sit in
/// memory whole.
fn hash_file(path: &Path) -> Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().into())
}
