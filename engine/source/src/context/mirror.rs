//! Writing the mirror: copies changed files, removes what the context no
//! longer has, and sets owners and modes.
//!
//! Invariant: a file in the mirror is never changed in place. A changed
//! file is written to a new temporary file and renamed over the old one
//! (see [`copy_file`]), so its inode is new, and owners and modes are set
//! only on that new inode. Snapshots that hardlink mirror files (COPY
//! reuses unchanged bytes that way) therefore never see a later edit.
//! Temporary files live beside the mirror (`fs.tmp/`), never inside it, so
//! a killed sync cannot leave a partial file that a build would copy, and
//! no context file name can collide with a temporary one.

use super::{Entry, EntryKind};
use anyhow::{Context, Result};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use strata_solver::TransferStats;

/// Writes one sync's changes into the mirror. Before its first change it
/// creates a marker file, which [`MirrorWriter::finish`] removes once the
/// index is written. A marker found at the start of a sync means an earlier
/// sync was interrupted, and only then does [`MirrorWriter::apply`] check
/// that each unchanged entry still exists in the mirror.
pub(super) struct MirrorWriter<'a> {
    source: &'a Path,
    mirror: &'a Path,
    marker: &'a Path,
    /// The directory files are written to before they are renamed into the
    /// mirror.
    temp_dir: PathBuf,
    /// Whether the marker may exist, from an interrupted sync or this one.
    marked: bool,
    /// Whether to check that reused entries exist in the mirror.
    verify: bool,
    changed: bool,
}

impl<'a> MirrorWriter<'a> {
    pub(super) fn new(
        source: &'a Path,
        mirror: &'a Path,
        marker: &'a Path,
        interrupted: bool,
    ) -> MirrorWriter<'a> {
        let temp_dir = mirror.with_extension("tmp");
        if interrupted {
            // Partial files of the interrupted sync.
            if let Err(error) = fs::remove_dir_all(&temp_dir) {
                if error.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("failed to remove `{}`: {error}", temp_dir.display());
                }
            }
        }
        MirrorWriter {
            source,
            mirror,
            marker,
            temp_dir,
            marked: interrupted,
            verify: interrupted,
            changed: false,
        }
    }

    /// Whether [`MirrorWriter::apply`] changed the mirror.
    pub(super) fn changed(&self) -> bool {
        self.changed
    }

    /// Removes the marker; call it after the index is written.
    pub(super) fn finish(self) -> Result<()> {
        if !self.marked {
            return Ok(());
        }
        match fs::remove_file(self.marker) {
            Ok(()) => Ok(()),
            // An index from before markers were used verifies without one.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error).with_context(|| {
                format!(
                    "Failed to remove the sync marker `{}`",
                    self.marker.display()
                )
            }),
        }
    }

    fn mark(&mut self) -> Result<()> {
        self.changed = true;
        if !self.marked {
            File::create(self.marker).with_context(|| {
                format!(
                    "Failed to create the sync marker `{}`",
                    self.marker.display()
                )
            })?;
            self.marked = true;
        }
        Ok(())
    }

    /// Makes the mirror match `walked`, copying only changed entries, and
    /// returns the new index with every file's digest.
    pub(super) fn apply(
        &mut self,
        old: &BTreeMap<String, Entry>,
        walked: BTreeMap<String, Entry>,
        stats: &mut TransferStats,
    ) -> Result<BTreeMap<String, Entry>> {
        let mirror = self.mirror;
        // Both maps are sorted by path, so one pass over each pairs an old
        // entry with the walked entry of the same path.
        let mut to_remove = Vec::new();
        let mut walked_iter = walked.iter().peekable();
        for (path, entry) in old {
            while walked_iter.next_if(|(next, _)| *next < path).is_some() {}
            let new = walked_iter
                .peek()
                .filter(|(next, _)| *next == path)
                .map(|(_, e)| *e);
            if new.is_none_or(|new| new.kind != entry.kind) && !path.is_empty() {
                to_remove.push((path, new.is_none_or(|new| new.kind == EntryKind::Dir)));
            }
        }
        // Remove what is gone or changed kind, deepest first.
        for (path, record) in to_remove.into_iter().rev() {
            self.mark()?;
            remove_entry(&mirror.join(path))?;
            stats.removed += 1;
            // A path that changed kind is recorded once, by the copy below.
            if record {
                stats.record_changed(path);
            }
        }

        let mut index = Vec::with_capacity(walked.len());
        let mut old_iter = old.iter().peekable();
        for (path, mut entry) in walked {
            while old_iter
                .next_if(|(previous, _)| **previous < path)
                .is_some()
            {}
            let previous = old_iter.peek().filter(|(previous, _)| **previous == path);
            let mirrored = |path: &str| mirror_matches(&mirror.join(path), &entry);
            let reusable = previous
                .map(|(_, previous)| *previous)
                .filter(|previous| previous.unchanged(&entry))
                .filter(|_| !self.verify || mirrored(&path));
            if let Some(previous) = reusable {
                entry.digest = previous.digest.clone();
                index.push((path, entry));
                continue;
            }
            self.mark()?;
            match self.write_entry(&path, &mut entry, stats) {
                Ok(()) => index.push((path, entry)),
                // A file deleted after the walk listed it is left out, as
                // if the walk had not listed it.
                Err(error) if self.vanished(&path) => {
                    tracing::debug!("`{path}` left the context during the sync: {error:#}");
                    remove_entry(&mirror.join(&path))?;
                }
                Err(error) => return Err(error),
            }
        }
        let index: BTreeMap<String, Entry> = index.into_iter().collect();
        if self.verify {
            remove_strays(mirror, &index)?;
        }
        Ok(index)
    }

    fn vanished(&self, path: &str) -> bool {
        fs::symlink_metadata(self.source.join(path))
            .is_err_and(|error| error.kind() == std::io::ErrorKind::NotFound)
    }

    /// Creates or replaces one entry in the mirror and sets its owner and
    /// mode; a file's digest goes into `entry`.
    fn write_entry(&self, path: &str, entry: &mut Entry, stats: &mut TransferStats) -> Result<()> {
        let target = if path.is_empty() {
            self.mirror.to_path_buf()
        } else {
            self.mirror.join(path)
        };
        match entry.kind {
            EntryKind::Dir => {
                fs::create_dir_all(&target)?;
            }
            EntryKind::Symlink => {
                let _ = fs::remove_file(&target);
                symlink(entry.link.as_deref().unwrap_or_default(), &target)?;
                stats.record_changed(path);
            }
            EntryKind::File => {
                let source = self.source.join(path);
                let digest = copy_file(&source, &target, &self.temp_dir).with_context(|| {
                    format!("Failed to transfer `{path}` from the build context")
                })?;
                entry.digest = Some(digest);
                stats.copied_files += 1;
                stats.copied_bytes += entry.size;
                stats.record_changed(path);
            }
        }
        set_attributes(&target, entry)?;
        if entry.kind != EntryKind::Dir {
            // COPY keeps a file's modification time, as BuildKit does, so
            // the mirror keeps the context's. A directory's would change
            // again as its children are written.
            let secs = entry.mtime_ns.div_euclid(1_000_000_000) as i64;
            let nanos = entry.mtime_ns.rem_euclid(1_000_000_000) as u32;
            let time = filetime::FileTime::from_unix_time(secs, nanos);
            filetime::set_symlink_file_times(&target, time, time).with_context(|| {
                format!(
                    "Failed to set the modification time of `{}`",
                    target.display()
                )
            })?;
        }
        Ok(())
    }
}

/// Reports whether the mirror's copy at `path` still has the kind, owner, mode,
/// size and modification time `entry` records. Only checked after an
/// interrupted sync, which may have changed a file before the index.
fn mirror_matches(path: &Path, entry: &Entry) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(metadata) = fs::symlink_metadata(path) else {
        return false;
    };
    let kind_matches = match entry.kind {
        EntryKind::File => metadata.is_file() && metadata.size() == entry.size,
        EntryKind::Dir => metadata.is_dir(),
        EntryKind::Symlink => metadata.is_symlink(),
    };
    let mtime = metadata.mtime() as i128 * 1_000_000_000 + metadata.mtime_nsec() as i128;
    kind_matches
        && metadata.uid() == entry.uid
        && metadata.gid() == entry.gid
        && (entry.kind == EntryKind::Symlink || metadata.mode() & 0o7777 == entry.mode)
        && (entry.kind == EntryKind::Dir || mtime == entry.mtime_ns)
}

/// Removes what an interrupted sync left in the mirror that the index
/// does not list, such as a directory the context no longer has.
fn remove_strays(mirror: &Path, index: &BTreeMap<String, Entry>) -> Result<()> {
    let mut walker = walkdir::WalkDir::new(mirror).min_depth(1).into_iter();
    while let Some(item) = walker.next() {
        let Ok(item) = item else { continue };
        let relative = item.path().strip_prefix(mirror).unwrap_or(item.path());
        if !index.contains_key(relative.to_string_lossy().as_ref()) {
            remove_entry(item.path())?;
            if item.file_type().is_dir() {
                walker.skip_current_dir();
            }
        }
    }
    Ok(())
}

fn remove_entry(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(path)?,
        Ok(_) => fs::remove_file(path)?,
        Err(_) => {}
    }
    Ok(())
}

/// Copies a file through a new temporary file in `temp_dir` and returns
/// the sha256 of its bytes, computed while copying.
/// A socket or FIFO becomes an empty regular file, as in BuildKit, because
/// opening it would fail or block.
fn copy_file(from: &Path, to: &Path, temp_dir: &Path) -> Result<String> {
    let mut input: Box<dyn Read> = if fs::symlink_metadata(from)?.is_file() {
        Box::new(File::open(from)?)
    } else {
        Box::new(std::io::empty())
    };
    fs::create_dir_all(temp_dir)?;
    let mut output = tempfile::NamedTempFile::new_in(temp_dir)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = input.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        output.write_all(&buffer[..read])?;
    }
    if fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
        fs::remove_dir_all(to)?;
    }
    output.persist(to).map_err(|e| e.error)?;
    Ok(hex::encode(hasher.finalize()))
}

fn set_attributes(path: &Path, entry: &Entry) -> Result<()> {
    let lchown = nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(entry.uid.into()),
        Some(entry.gid.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    lchown.with_context(|| format!("Failed to set the owner of `{}`", path.display()))?;
    if entry.kind != EntryKind::Symlink {
        fs::set_permissions(path, fs::Permissions::from_mode(entry.mode))?;
    }
    Ok(())
}
