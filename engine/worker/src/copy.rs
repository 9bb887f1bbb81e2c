//! The copy action, with BuildKit's `FileActionCopy` semantics.

use crate::archive;
use crate::fileop::{mkdir_all, set_metadata};
use crate::mode::ModeChange;
use crate::paths::{PathFilter, expand_wildcard, has_wildcard, parents_base, resolve_in_root};
use crate::reuse::PendingLink;
use crate::user::resolve_owner;
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::ffi::CString;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use strata_llb::CopyAction;

/// Smallest file that a copy links through a placeholder rather than
/// copies. Below it a byte copy was faster: `bench/copy_reuse.sh` measured
/// 10,000 files of 4 KiB at 4.1 s copied against 11.5 s linked, and 200
/// files of 1 MiB at 1.1 s against 0.9 s (2 shared cores, ext4). A
/// placeholder is a new inode, and `perf` put most of a 10,000-file COPY
/// in ext4's inode allocation. Direct links (see `crate::reuse`) create
/// no inode and apply to files of any size.
// NOTE: the threshold is an estimate between those two points.
const MIN_LINKED_BYTES: u64 = 64 * 1024;

/// Options shared by every entry of one copy.
struct CopyContext<'a> {
    dest_root: &'a Path,
    owner: Option<(u32, u32)>,
    mode: Option<ModeChange>,
    timestamp: Option<i64>,
    filter: PathFilter,
    /// Copy a source directory's contents: the destination directory itself
    /// takes the defaults of a new directory, never the source's metadata.
    contents_only: bool,
    /// Mode of directories the copy creates above its targets.
    parent_mode: u32,
    /// Destination of the first copy of each `(device, inode)` with more
    /// than one link, so hardlinks stay hardlinks within one copy.
    hardlinks: HashMap<(u64, u64), PathBuf>,
    /// Placeholders to hardlink later, set when the source allows it and
    /// the copy changes no owner, mode or time.
    links: Option<&'a mut Vec<PendingLink>>,
    /// Whether files may be listed in `links` without a placeholder,
    /// because nothing else in the op writes to the paths this copy writes.
    direct_links: bool,
}

/// Copies `action.src` from `source_root` (an empty filesystem when `None`)
/// to `action.dest` in `dest_root`. With `links`, regular files whose
/// metadata the copy keeps become placeholders listed there, for
/// [`crate::reuse::link_placeholders`] to replace with hardlinks. With
/// `direct_links` as well, the caller promises that no other action of
/// the op writes to `dest_root`, and a file whose path is still free is
/// listed without a placeholder, so the copy creates no inode for it.
pub(crate) fn copy(
    dest_root: &Path,
    action: &CopyAction,
    source_root: Option<&Path>,
    links: Option<&mut Vec<PendingLink>>,
    direct_links: bool,
) -> Result<()> {
    let mode = match (action.mode, &action.mode_text) {
        (Some(mode), _) => Some(ModeChange::Absolute(mode & 0o7777)),
        (None, Some(text)) => Some(ModeChange::parse(text)?),
        (None, None) => None,
    };
    let owner = action
        .owner
        .as_ref()
        .map(|owner| resolve_owner(dest_root, owner))
        .transpose()?;
    // BuildKit gives directories a copy creates the `--chmod` mode.
    let parent_mode = match mode {
        Some(ModeChange::Absolute(bits)) => bits,
        _ => 0o755,
    };
    let keeps_metadata = owner.is_none() && mode.is_none() && action.timestamp.is_none();
    let mut cx = CopyContext {
        dest_root,
        owner,
        mode,
        timestamp: action.timestamp,
        filter: PathFilter::new(&action.include_patterns, &action.exclude_patterns)?,
        contents_only: action.dir_contents_only,
        parent_mode,
        hardlinks: HashMap::new(),
        links: links.filter(|_| keeps_metadata),
        direct_links: false,
    };

    let sources = match source_root {
        Some(root) if action.allow_wildcard && has_wildcard(&action.src) => {
            expand_wildcard(root, &action.src)?
        }
        Some(_) => vec![action.src.clone()],
        None => Vec::new(),
    };
    if sources.is_empty() {
        if action.allow_empty_wildcard {
            return Ok(());
        }
        bail!(
            "Failed to copy \"{}\": not found in the source filesystem",
            action.src
        );
    }

    let dest_is_dir = action.dest.ends_with('/') || action.dest.ends_with("/.");
    let dest = resolve_in_root(dest_root, &action.dest, true)?;
    if action.create_dest_path || dest_is_dir {
        let parent = if dest_is_dir {
            dest.as_path()
        } else {
            dest.parent().unwrap_or(dest_root)
        };
        mkdir_all(parent, cx.parent_mode, cx.owner, cx.timestamp)
            .with_context(|| format!("Failed to create the destination \"{}\"", action.dest))?;
    }

    let source_root = source_root.expect("sources are empty without a source root");
    // Two wildcard matches may write the same path, and a placeholder
    // shows the later one that the path is taken.
    cx.direct_links = direct_links && sources.len() == 1;
    for source in &sources {
        copy_source(&mut cx, action, source_root, source, &dest)?;
    }
    Ok(())
}

/// Copies one source path (one wildcard match) to the destination.
fn copy_source(
    cx: &mut CopyContext<'_>,
    action: &CopyAction,
    source_root: &Path,
    source: &str,
    dest: &Path,
) -> Result<()> {
    let source_path = resolve_in_root(source_root, source, action.follow_symlink)?;
    let Ok(source_metadata) = source_path.symlink_metadata() else {
        bail!("Failed to copy \"{source}\": not found in the source filesystem");
    };
    let source_is_dir = source_metadata.is_dir();
    // The name as written, not the name a followed symlink resolves to.
    let base_name = Path::new(source).file_name().map(PathBuf::from);

    let mut target = dest.to_path_buf();
    if action.parents {
        let base = parents_base(&action.src);
        let kept = source.strip_prefix(base.as_str()).unwrap_or(source);
        target = dest.join(kept.trim_start_matches('/'));
    } else {
        let dest_exists_as_dir = dest.metadata().map(|m| m.is_dir());
        let join = match dest_exists_as_dir {
            Ok(true) => !(source_is_dir && action.dir_contents_only),
            Ok(false) => false,
            Err(_) => false,
        };
        if let (true, Some(name)) = (join, &base_name) {
            target = dest.join(name);
        }
    }

    let parent = if action.dir_contents_only && source_is_dir && dest.metadata().is_err() {
        target.clone()
    } else {
        target.parent().unwrap_or(cx.dest_root).to_path_buf()
    };
    mkdir_all(&parent, cx.parent_mode, cx.owner, cx.timestamp)
        .with_context(|| format!("Failed to create the destination \"{}\"", action.dest))?;

    if action.attempt_unpack && source_metadata.is_file() && archive::is_archive(&source_path)? {
        mkdir_all(dest, cx.parent_mode, cx.owner, cx.timestamp)?;
        return archive::unpack(&source_path, dest, cx.owner)
            .with_context(|| format!("Failed to unpack \"{source}\" to \"{}\"", action.dest));
    }

    copy_entry(cx, &source_path, &target, "")
        .with_context(|| format!("Failed to copy \"{source}\" to \"{}\"", action.dest))?;
    Ok(())
}

/// Copies the entry at `source` to `target`. `relative` is its path under
/// the copied source, matched against the include and exclude patterns.
fn copy_entry(
    cx: &mut CopyContext<'_>,
    source: &Path,
    target: &Path,
    relative: &str,
) -> Result<bool> {
    let metadata = source.symlink_metadata()?;
    let file_type = metadata.file_type();
    let included = relative.is_empty() || cx.filter.includes(relative);

    if file_type.is_dir() {
        if !relative.is_empty() && !cx.filter.may_contain_included(relative) {
            return Ok(false);
        }
        return copy_dir(cx, source, target, relative, &metadata, included);
    }
    if !included {
        return Ok(false);
    }

    let target = target.to_path_buf();
    let key = (metadata.dev(), metadata.ino());
    if metadata.nlink() > 1
        && !file_type.is_dir()
        && let Some(first) = cx.hardlinks.get(&key)
    {
        remove_non_dir(&target)?;
        std::fs::hard_link(first, &target)?;
        return Ok(true);
    }

    if file_type.is_file() {
        if copy_file(cx, source, &target, &metadata)? == Written::Deferred {
            // Nothing exists at `target` to link further names to yet.
            return Ok(true);
        }
    } else {
        remove_non_dir(&target)?;
        if file_type.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(source)?, &target)?;
        } else {
            make_node(&target, &metadata)?;
        }
        finish_entry(cx, source, &target, &metadata)?;
    }
    if metadata.nlink() > 1 {
        cx.hardlinks.insert(key, target);
    }
    Ok(true)
}

/// Outcome of [`copy_file`] for one file.
#[derive(PartialEq, Eq)]
enum Written {
    /// The file, or its placeholder, exists at the target.
    Created,
    /// The file is only listed for a direct link after the unmount.
    Deferred,
}

/// Copies a regular file, or lists it for a later hardlink, and sets its
/// metadata through the open file. A copy of many small files spends most
/// of its time in path lookups through the overlay mount and in ext4's
/// inode allocation, so this looks up `target` once and, for a direct
/// link, allocates no inode.
fn copy_file(
    cx: &mut CopyContext<'_>,
    source: &Path,
    target: &Path,
    metadata: &Metadata,
) -> Result<Written> {
    if cx.direct_links && cx.links.is_some() {
        match target.symlink_metadata() {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let links = cx.links.as_deref_mut().expect("checked above");
                links.push(PendingLink {
                    placeholder: target.to_path_buf(),
                    source: source.to_path_buf(),
                    direct: true,
                });
                return Ok(Written::Deferred);
            }
            Ok(existing) if existing.is_dir() => bail!(
                "Cannot overwrite directory `{}` with a non-directory",
                target.display()
            ),
            // A file of a lower layer: replace it through the mount below.
            _ => {}
        }
    }
    let mut writer = match create_new(target) {
        Ok(writer) => writer,
        // Replace what the destination has there, unless it is a directory.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            remove_non_dir(target)?;
            create_new(target)?
        }
        Err(error) => return Err(error.into()),
    };
    match cx.links.as_deref_mut() {
        // An empty placeholder: its bytes arrive as a hardlink.
        Some(links) if metadata.len() >= MIN_LINKED_BYTES => links.push(PendingLink {
            placeholder: target.to_path_buf(),
            source: source.to_path_buf(),
            direct: false,
        }),
        _ => {
            let mut reader = std::fs::File::open(source)?;
            std::io::copy(&mut reader, &mut writer)?;
        }
    }
    set_file_metadata(cx, &writer, source, target, metadata)?;
    Ok(Written::Created)
}

/// Sets the owner, mode, xattrs and times of a copied file through its
/// open `writer`, as [`finish_entry`] does by path.
fn set_file_metadata(
    cx: &CopyContext<'_>,
    writer: &std::fs::File,
    source: &Path,
    target: &Path,
    metadata: &Metadata,
) -> Result<()> {
    let owner = cx.owner.unwrap_or((metadata.uid(), metadata.gid()));
    let source_mode = metadata.mode() & 0o7777;
    let mode = match &cx.mode {
        Some(change) => change.apply(source_mode, false),
        None => source_mode,
    };
    // Owner before mode, because a chown clears set-id bits.
    std::os::unix::fs::fchown(writer, Some(owner.0), Some(owner.1))
        .with_context(|| format!("Failed to change the owner of `{}`", target.display()))?;
    writer
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("Failed to change the mode of `{}`", target.display()))?;
    copy_xattrs(source, target)?;
    let (atime, mtime) = match cx.timestamp {
        Some(seconds) => {
            let time = filetime::FileTime::from_unix_time(seconds, 0);
            (time, time)
        }
        None => (
            filetime::FileTime::from_last_access_time(metadata),
            filetime::FileTime::from_last_modification_time(metadata),
        ),
    };
    filetime::set_file_handle_times(writer, Some(atime), Some(mtime))
        .with_context(|| format!("Failed to set the times of `{}`", target.display()))?;
    Ok(())
}

fn create_new(target: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(target)
}

fn copy_dir(
    cx: &mut CopyContext<'_>,
    source: &Path,
    target: &Path,
    relative: &str,
    metadata: &Metadata,
    included: bool,
) -> Result<bool> {
    let mut target = target.to_path_buf();
    let mut created = false;
    match target.symlink_metadata() {
        Ok(existing) if existing.is_dir() => {}
        Ok(existing) if existing.file_type().is_symlink() => {
            // Merge into the directory the link names, resolved inside the
            // destination root so an absolute link cannot reach the host.
            let inside = target.strip_prefix(cx.dest_root).unwrap_or(&target);
            let resolved = resolve_in_root(cx.dest_root, &inside.to_string_lossy(), true)?;
            if resolved.metadata().is_ok_and(|m| m.is_dir()) {
                target = resolved;
            } else {
                std::fs::remove_file(&target)?;
                std::fs::create_dir(&target)?;
                created = true;
            }
        }
        Ok(_) => {
            std::fs::remove_file(&target)?;
            std::fs::create_dir(&target)?;
            created = true;
        }
        Err(_) => {
            std::fs::create_dir(&target)?;
            created = true;
        }
    }

    let mut names: Vec<_> = std::fs::read_dir(source)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    let mut copied_any = false;
    for name in names {
        let child_relative = if relative.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{relative}/{}", name.to_string_lossy())
        };
        copied_any |= copy_entry(
            cx,
            &source.join(&name),
            &target.join(&name),
            &child_relative,
        )?;
    }

    if !included && !copied_any && created {
        std::fs::remove_dir(&target)?;
        return Ok(false);
    }
    if relative.is_empty() && cx.contents_only {
        // Only the contents are copied: an existing destination stays as it
        // is, and a new one is owned by `--chown` or root.
        if created {
            let owner = cx.owner.unwrap_or((0, 0));
            set_metadata(&target, Some(cx.parent_mode), Some(owner), cx.timestamp)?;
        }
        return Ok(true);
    }
    finish_entry(cx, source, &target, metadata)?;
    Ok(true)
}

/// Removes a file or link at `target` so a new entry can be created there
/// without following an old symlink out of the root.
fn remove_non_dir(target: &Path) -> Result<()> {
    match target.symlink_metadata() {
        Ok(existing) if existing.is_dir() => {
            bail!(
                "Cannot overwrite directory `{}` with a non-directory",
                target.display()
            )
        }
        Ok(_) => Ok(std::fs::remove_file(target)?),
        Err(_) => Ok(()),
    }
}

fn make_node(target: &Path, metadata: &Metadata) -> Result<()> {
    use nix::sys::stat::{Mode, SFlag, mknod};
    let kind = SFlag::from_bits_truncate(metadata.mode() & libc::S_IFMT);
    let permissions = Mode::from_bits_truncate(metadata.mode() & 0o7777);
    let file_type = metadata.file_type();
    if !(file_type.is_fifo()
        || file_type.is_socket()
        || file_type.is_char_device()
        || file_type.is_block_device())
    {
        bail!("Unsupported file type at `{}`", target.display());
    }
    mknod(target, kind, permissions, metadata.rdev())
        .with_context(|| format!("Failed to create device node `{}`", target.display()))
}

/// Copies xattrs, then applies owner, mode and times.
fn finish_entry(
    cx: &CopyContext<'_>,
    source: &Path,
    target: &Path,
    metadata: &Metadata,
) -> Result<()> {
    let owner = cx.owner.unwrap_or((metadata.uid(), metadata.gid()));
    let source_mode = metadata.mode() & 0o7777;
    let mode = match &cx.mode {
        Some(change) => change.apply(source_mode, metadata.is_dir()),
        None => source_mode,
    };
    let timestamp = cx.timestamp;
    set_metadata(target, Some(mode), Some(owner), None)?;
    copy_xattrs(source, target)?;
    match timestamp {
        Some(_) => set_metadata(target, None, None, timestamp),
        None => {
            let atime = filetime::FileTime::from_last_access_time(metadata);
            let mtime = filetime::FileTime::from_last_modification_time(metadata);
            Ok(filetime::set_symlink_file_times(target, atime, mtime)?)
        }
    }
}

/// Copies extended attributes without following symlinks. Attributes the
/// target filesystem rejects (such as `security.*` without privileges) are
/// skipped with a debug log, because a copy must not fail on them.
fn copy_xattrs(source: &Path, target: &Path) -> Result<()> {
    let source_c = CString::new(source.as_os_str().as_bytes())?;
    let target_c = CString::new(target.as_os_str().as_bytes())?;
    // SAFETY: with a null buffer and size 0 the call only returns the list's length.
    let size = unsafe { libc::llistxattr(source_c.as_ptr(), std::ptr::null_mut(), 0) };
    if size <= 0 {
        return Ok(());
    }
    let mut names = vec![0u8; size as usize];
    // SAFETY: `names` has room for `size` bytes.
    let size =
        unsafe { libc::llistxattr(source_c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if size <= 0 {
        return Ok(());
    }
    names.truncate(size as usize);
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name_c = CString::new(name)?;
        let mut value = vec![0u8; 65536];
        // SAFETY: `value` has room for `value.len()` bytes.
        let length = unsafe {
            libc::lgetxattr(
                source_c.as_ptr(),
                name_c.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if length < 0 {
            continue;
        }
        // SAFETY: the first `length` bytes of `value` are initialised.
        let result = unsafe {
            libc::lsetxattr(
                target_c.as_ptr(),
                name_c.as_ptr(),
                value.as_ptr().cast(),
                length as usize,
                0,
            )
        };
        if result != 0 {
            tracing::debug!(
                target = %target.display(),
                name = %String::from_utf8_lossy(name),
                "skipped an xattr: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}
