//! Materialising a snapshot chain into a plain directory, the result an
//! overlay mount of the chain would show.

use crate::layer::{copyable_xattrs, is_opaque, is_whiteout};
use anyhow::{Context, Result, bail};
use filetime::FileTime;
use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Copies the merged view of `lowers` (top first, as
/// `strata_store::Store::lowers` returns them) into `dest`, creating it
/// when missing. Layers apply bottom up, so a whiteout removes what lower
/// layers put at its path and an opaque directory empties its lower
/// contents. Modes, owners, mtimes, xattrs, symlinks and hard links within
/// a layer are kept.
pub fn materialize(lowers: &[PathBuf], dest: &Path) -> Result<()> {
    fs::create_dir_all(dest)
        .with_context(|| format!("Failed to create destination `{}`", dest.display()))?;

    // Directory mtimes are set after all layers, because adding children
    // changes them.
    let mut dir_times: HashMap<PathBuf, FileTime> = HashMap::new();
    for layer in lowers.iter().rev() {
        apply_dir(layer, dest, &mut dir_times)
            .with_context(|| format!("Failed to apply layer `{}`", layer.display()))?;
    }
    for (path, mtime) in dir_times {
        // A later layer may have replaced the directory with another kind.
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            filetime::set_symlink_file_times(&path, mtime, mtime)?;
        }
    }
    Ok(())
}

fn apply_dir(layer: &Path, dest: &Path, dir_times: &mut HashMap<PathBuf, FileTime>) -> Result<()> {
    if !layer.is_dir() {
        bail!("Layer directory `{}` does not exist", layer.display());
    }
    // Destination paths of this layer's files, by (device, inode), to
    // recreate hard links.
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();

    for entry in walkdir::WalkDir::new(layer)
        .min_depth(1)
        .sort_by_file_name()
    {
        let entry = entry.with_context(|| format!("Failed to walk `{}`", layer.display()))?;
        let relative = entry
            .path()
            .strip_prefix(layer)
            .expect("walkdir yields paths under root");
        let target = dest.join(relative);
        let meta = entry.metadata()?;
        apply_entry(entry.path(), &target, &meta, &mut links, dir_times)
            .with_context(|| format!("Failed to copy `{}`", entry.path().display()))?;
    }
    Ok(())
}

fn apply_entry(
    source: &Path,
    target: &Path,
    meta: &Metadata,
    links: &mut HashMap<(u64, u64), PathBuf>,
    dir_times: &mut HashMap<PathBuf, FileTime>,
) -> Result<()> {
    let file_type = meta.file_type();
    if is_whiteout(meta) {
        return remove_any(target);
    }

    if file_type.is_dir() {
        let existing = fs::symlink_metadata(target).ok();
        match existing {
            Some(m) if m.is_dir() => {
                if is_opaque(source)? {
                    empty_dir(target)?;
                }
            }
            Some(_) => {
                fs::remove_file(target)?;
                fs::create_dir(target)?;
            }
            None => fs::create_dir(target)?,
        }
        copy_metadata(source, target, meta)?;
        dir_times.insert(
            target.to_path_buf(),
            FileTime::from_last_modification_time(meta),
        );
        return Ok(());
    }

    remove_any(target)?;
    if meta.nlink() > 1 {
        let key = (meta.dev(), meta.ino());
        if let Some(first) = links.get(&key) {
            fs::hard_link(first, target)?;
            return Ok(());
        }
        links.insert(key, target.to_path_buf());
    }

    if file_type.is_file() {
        fs::copy(source, target)?;
    } else if file_type.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(source)?, target)?;
    } else if file_type.is_char_device() || file_type.is_block_device() || file_type.is_fifo() {
        let kind = nix::sys::stat::SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT);
        let perm = nix::sys::stat::Mode::from_bits_truncate(meta.mode() & 0o7777);
        nix::sys::stat::mknod(target, kind, perm, meta.rdev())?;
    } else {
        // Sockets cannot be copied; a running process owns them.
        tracing::debug!(path = %source.display(), "skipping socket");
        return Ok(());
    }
    copy_metadata(source, target, meta)
}

/// Sets owner, permission bits, xattrs and, except on directories, mtime.
fn copy_metadata(source: &Path, target: &Path, meta: &Metadata) -> Result<()> {
    let is_symlink = meta.file_type().is_symlink();
    std::os::unix::fs::lchown(target, Some(meta.uid()), Some(meta.gid()))?;
    if !is_symlink {
        // chown clears setuid bits, so the mode goes after it.
        fs::set_permissions(target, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    for (name, value) in copyable_xattrs(source)? {
        xattr::set(target, &name, &value)
            .with_context(|| format!("Failed to set xattr `{name}` on `{}`", target.display()))?;
    }
    if !meta.is_dir() {
        let mtime = FileTime::from_last_modification_time(meta);
        filetime::set_symlink_file_times(target, mtime, mtime)?;
    }
    Ok(())
}

fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path)?,
        Ok(_) => fs::remove_file(path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn empty_dir(path: &Path) -> Result<()> {
    for child in fs::read_dir(path)? {
        remove_any(&child?.path())?;
    }
    Ok(())
}
