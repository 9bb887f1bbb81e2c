//! Hardlinking unchanged context files into a COPY's snapshot.
//!
//! A COPY from the build-context mirror with no owner, mode or timestamp
//! change creates an empty placeholder through the overlay mount (so
//! whiteouts, parent directories and metadata come out exactly as for a
//! byte copy) and records it. Once the overlay is unmounted, each
//! placeholder in the upper directory is replaced by a hardlink to the
//! mirror file, because link(2) cannot cross the mount.
//!
//! A lone copy (see `copy::copy`) skips the placeholder for a path the
//! mount does not have and only lists the file. Before the unmount,
//! [`copy_up_parents`] makes sure each parent directory is in the upper
//! directory, and the link is made there afterwards. Creating
//! 10,000 placeholders of small files cost more in ext4 inode allocation
//! than copying their bytes.
//!
//! This is safe because the context sync never changes a mirror file in
//! place: it writes a changed file under a temporary name and renames it
//! over the old one, so a snapshot keeps the inode it linked (see the
//! `context::mirror` module of `strata-source`). Snapshots are never
//! written after commit, and overlayfs never writes to lower layers.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A placeholder to replace with a hardlink to `source`.
#[derive(Debug)]
pub(crate) struct PendingLink {
    /// The placeholder's path under the mounted root.
    pub placeholder: PathBuf,
    /// The mirror file, outside any mount.
    pub source: PathBuf,
    /// Whether no placeholder was created: nothing exists at the path.
    pub direct: bool,
}

/// Makes sure the parent directory of every direct link exists in `upper`
/// while `mount_root` is still mounted. A directory only the lower layers
/// have is copied up by setting its times to their current values through
/// the mount, which changes nothing else.
pub(crate) fn copy_up_parents(
    upper: &Path,
    mount_root: &Path,
    links: &[PendingLink],
) -> Result<()> {
    let mut checked: std::collections::HashSet<&Path> = std::collections::HashSet::new();
    for link in links.iter().filter(|link| link.direct) {
        let parent = link.placeholder.parent().unwrap_or(mount_root);
        if !checked.insert(parent) {
            continue;
        }
        let relative = parent
            .strip_prefix(mount_root)
            .context("A copied path lies outside the mounted root")?;
        if upper.join(relative).is_dir() {
            continue;
        }
        let metadata = std::fs::symlink_metadata(parent)?;
        filetime::set_symlink_file_times(
            parent,
            filetime::FileTime::from_last_access_time(&metadata),
            filetime::FileTime::from_last_modification_time(&metadata),
        )
        .with_context(|| format!("Failed to copy up `{}`", parent.display()))?;
        if !upper.join(relative).is_dir() {
            bail!(
                "Directory `{}` is not in the snapshot's upper directory after a copy-up",
                relative.display()
            );
        }
    }
    Ok(())
}

/// Replaces each placeholder under `upper` (the snapshot's directory, no
/// longer mounted at `mount_root`) with a hardlink to its source, in
/// order, so the last copy to a path wins as it did through the mount,
/// then
/// restores the times of the directories the renames touched. Returns
/// how many files were linked; a placeholder that cannot be linked gets
/// the bytes copied instead.
pub(crate) fn link_placeholders(
    upper: &Path,
    mount_root: &Path,
    links: &[PendingLink],
) -> Result<usize> {
    let mut parents: BTreeMap<PathBuf, (filetime::FileTime, filetime::FileTime)> = BTreeMap::new();
    let mut linked = 0;
    for link in links {
        let relative = link
            .placeholder
            .strip_prefix(mount_root)
            .context("A placeholder lies outside the mounted root")?;
        let target = upper.join(relative);
        // A later copy in the same op may have put a directory or link
        // there; only an empty regular file is still a placeholder.
        let still_placeholder = link.direct
            || std::fs::symlink_metadata(&target)
                .is_ok_and(|metadata| metadata.is_file() && metadata.len() == 0);
        if !still_placeholder {
            continue;
        }
        let parent = target.parent().unwrap_or(upper).to_path_buf();
        if !parents.contains_key(&parent) {
            let metadata = std::fs::symlink_metadata(&parent)?;
            parents.insert(
                parent.clone(),
                (
                    filetime::FileTime::from_last_access_time(&metadata),
                    filetime::FileTime::from_last_modification_time(&metadata),
                ),
            );
        }
        let done = if link.direct {
            link_new(&link.source, &target)?
        } else {
            replace_with_link(&link.source, &target)?
        };
        if done {
            linked += 1;
        }
    }
    for (dir, (atime, mtime)) in parents {
        filetime::set_symlink_file_times(&dir, atime, mtime)
            .with_context(|| format!("Failed to restore the times of `{}`", dir.display()))?;
    }
    Ok(linked)
}

/// Replaces the placeholder `target` with a hardlink to `source`, or with
/// a byte copy carrying the placeholder's owner, mode and times when
/// linking fails, as it does across filesystems.
///
/// The placeholder is unlinked and then linked, not replaced by rename,
/// because nothing reads the snapshot before commit, so the replacement
/// need not be atomic.
fn replace_with_link(source: &Path, target: &Path) -> Result<bool> {
    let placeholder = std::fs::symlink_metadata(target)?;
    std::fs::remove_file(target)
        .with_context(|| format!("Failed to remove the placeholder `{}`", target.display()))?;
    let error = match std::fs::hard_link(source, target) {
        Ok(()) => return Ok(true),
        Err(error) => error,
    };
    tracing::debug!(
        source = %source.display(),
        "hardlink failed, copying instead: {error}"
    );
    let mut reader = std::fs::File::open(source)?;
    let mut writer = std::fs::File::create_new(target)?;
    std::io::copy(&mut reader, &mut writer)?;
    drop(writer);
    std::os::unix::fs::lchown(target, Some(placeholder.uid()), Some(placeholder.gid()))?;
    std::fs::set_permissions(target, placeholder.permissions())?;
    filetime::set_file_times(
        target,
        filetime::FileTime::from_last_access_time(&placeholder),
        filetime::FileTime::from_last_modification_time(&placeholder),
    )?;
    Ok(false)
}

/// Links `source` at the free path `target`, or copies its bytes, owner,
/// mode and times when linking fails, as a copy keeping metadata would.
fn link_new(source: &Path, target: &Path) -> Result<bool> {
    let error = match std::fs::hard_link(source, target) {
        Ok(()) => return Ok(true),
        Err(error) => error,
    };
    tracing::debug!(
        source = %source.display(),
        "hardlink failed, copying instead: {error}"
    );
    let metadata = std::fs::symlink_metadata(source)?;
    let mut reader = std::fs::File::open(source)?;
    let mut writer = std::fs::File::create_new(target)
        .with_context(|| format!("Failed to create `{}`", target.display()))?;
    std::io::copy(&mut reader, &mut writer)?;
    std::os::unix::fs::fchown(&writer, Some(metadata.uid()), Some(metadata.gid()))?;
    writer.set_permissions(metadata.permissions())?;
    filetime::set_file_handle_times(
        &writer,
        Some(filetime::FileTime::from_last_access_time(&metadata)),
        Some(filetime::FileTime::from_last_modification_time(&metadata)),
    )?;
    Ok(false)
}
