//! Unpacks OCI layer tars into overlay upper dirs.
//!
//! A layer tar is untrusted input. Entry names and hard link targets may
//! not contain `..`, and a leading `/` is dropped. Parent directories are
//! resolved one component at a time with every symlink followed as if
//! `dest` were `/`, so a symlink in the layer can never lead a write out
//! of `dest`. The last component is never followed: whatever an entry
//! replaces is removed first, and files are created with `O_NOFOLLOW`.
//!
//! Whiteouts become overlayfs whiteouts: `.wh.NAME` a character device 0/0
//! named `NAME`, and `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on
//! its directory.

use crate::Result;
use anyhow::{Context, anyhow, bail};
use filetime::FileTime;
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tar::EntryType;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Symlinks followed while resolving one path, as Linux's `MAXSYMLINKS`.
const MAX_SYMLINKS: usize = 40;

/// Entry counts from one [`apply_layer`] run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// `.wh.NAME` entries turned into whiteout devices.
    pub whiteouts: u64,
    /// `.wh..wh..opq` entries turned into opaque directories.
    pub opaque_dirs: u64,
    /// Character and block devices, which a layer may not create.
    pub skipped_devices: u64,
    /// Entries of other types (such as PAX global headers) that were ignored.
    pub skipped_other: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
}

/// Wraps `reader` in a gzip or zstd decoder when its first bytes are that
/// format's magic number, and returns it as is otherwise.
pub fn decompress_layer<'a>(reader: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    let mut reader = BufReader::with_capacity(128 * 1024, reader);
    let head = reader.fill_buf().context("Failed to read a layer")?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(reader)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(reader)?))
    } else {
        Ok(Box::new(reader))
    }
}

/// Unpacks the uncompressed layer tar `reader` into `dest`, an existing
/// directory, turning whiteout entries into overlayfs whiteouts.
pub fn apply_layer(reader: impl Read, dest: &Path) -> Result<LayerStats> {
    let root = dest
        .canonicalize()
        .with_context(|| format!("Failed to open layer destination `{}`", dest.display()))?;
    let mut unpacker = Unpacker {
        root,
        stats: LayerStats::default(),
        dir_times: Vec::new(),
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().context("Failed to read the layer tar")? {
        let mut entry = entry.context("Failed to read the layer tar")?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        unpacker
            .apply_entry(&mut entry)
            .with_context(|| format!("Failed to unpack layer entry `{name}`"))?;
    }
    // Creating entries updates their directory's mtime, so directory times
    // are set once every entry is in place.
    for (path, mtime) in unpacker.dir_times.iter().rev() {
        filetime::set_symlink_file_times(path, *mtime, *mtime)
            .with_context(|| format!("Failed to set the times of `{}`", path.display()))?;
    }
    Ok(unpacker.stats)
}

struct Unpacker {
    root: PathBuf,
    stats: LayerStats,
    dir_times: Vec<(PathBuf, FileTime)>,
}

impl Unpacker {
    fn apply_entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let kind = entry.header().entry_type();
        let components = entry_components(&entry.path_bytes())?;
        let Some((name, parents)) = components.split_last() else {
            // The layer's root directory itself, `./`.
            if kind.is_dir() {
                let root = self.root.clone();
                return self.apply_metadata(entry, &root);
            }
            bail!("Entry names the layer root but is not a directory");
        };

        let name_text = name.to_string_lossy();
        if name_text == OPAQUE_MARKER {
            let dir = self.resolve_dir(parents, true)?;
            xattr::set(&dir, OPAQUE_XATTR, b"y")
                .with_context(|| format!("Failed to mark `{}` opaque", dir.display()))?;
            self.stats.opaque_dirs += 1;
            return Ok(());
        }
        if let Some(hidden) = name_text.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.starts_with(WHITEOUT_PREFIX) {
                // Other `.wh..wh.` names are aufs bookkeeping, not files.
                self.stats.skipped_other += 1;
                return Ok(());
            }
            if matches!(hidden, "" | "." | "..") {
                bail!("Invalid whiteout: it hides `{hidden}`");
            }
            let target = self.resolve_dir(parents, true)?.join(hidden);
            remove_existing(&target)?;
            make_whiteout(&target)?;
            self.stats.whiteouts += 1;
            return Ok(());
        }

        let path = self.resolve_dir(parents, true)?.join(name);
        match kind {
            EntryType::Directory => self.make_dir(&path)?,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                remove_existing(&path)?;
                self.write_file(entry, &path)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| anyhow!("Symlink has no target"))?;
                remove_existing(&path)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)?;
                self.stats.symlinks += 1;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| anyhow!("Hard link has no target"))?;
                let target = self.resolve_link_target(&target)?;
                remove_existing(&path)?;
                fs::hard_link(&target, &path)?;
                self.stats.hardlinks += 1;
                // A hard link shares the target's inode and metadata.
                return Ok(());
            }
            EntryType::Fifo => {
                remove_existing(&path)?;
                nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
            }
            EntryType::Char | EntryType::Block => {
                self.stats.skipped_devices += 1;
                return Ok(());
            }
            _ => {
                self.stats.skipped_other += 1;
                return Ok(());
            }
        }
        self.apply_metadata(entry, &path)
    }

    fn make_dir(&mut self, path: &Path) -> Result<()> {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                remove_existing(path)?;
                fs::create_dir(path)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(path)?,
            Err(e) => return Err(e.into()),
        }
        self.stats.dirs += 1;
        Ok(())
    }

    fn write_file<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, path: &Path) -> Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        self.stats.bytes += io::copy(entry, &mut file)?;
        self.stats.files += 1;
        Ok(())
    }

    /// Sets owner, mode, xattrs and mtime from the entry's header, in that
    /// order, because `chown` clears setuid bits and file capabilities.
    fn apply_metadata<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
    ) -> Result<()> {
        let header = entry.header();
        let is_symlink = header.entry_type().is_symlink();
        let (uid, gid, mode) = (header.uid()?, header.gid()?, header.mode()?);
        let mtime = FileTime::from_unix_time(header.mtime()? as i64, 0);
        let uid = u32::try_from(uid).map_err(|_| anyhow!("Invalid uid `{uid}`"))?;
        let gid = u32::try_from(gid).map_err(|_| anyhow!("Invalid gid `{gid}`"))?;
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
        if !is_symlink {
            fs::set_permissions(path, Permissions::from_mode(mode & 0o7777))?;
        }
        for (key, value) in pax_xattrs(entry)? {
            if let Err(e) = xattr::set(path, &key, &value) {
                // Linux allows only trusted.* and security.* on symlinks.
                if !is_symlink {
                    return Err(anyhow!("Failed to set xattr `{key}`: {e}"));
                }
            }
        }
        if entry.header().entry_type().is_dir() {
            self.dir_times.push((path.to_path_buf(), mtime));
        } else {
            filetime::set_symlink_file_times(path, mtime, mtime)?;
        }
        Ok(())
    }

    /// Resolves `components` below the root to a real directory path,
    /// following symlinks as if the root were `/` and creating missing
    /// directories when `create` is set.
    fn resolve_dir(&self, components: &[OsString], create: bool) -> Result<PathBuf> {
        let mut resolved = self.root.clone();
        let mut depth = 0usize;
        let mut pending: VecDeque<OsString> = components.iter().cloned().collect();
        let mut links = 0;
        while let Some(component) = pending.pop_front() {
            if component == ".." {
                // Only symlink targets contain `..`; it stops at the root.
                if depth > 0 {
                    resolved.pop();
                    depth -= 1;
                }
                continue;
            }
            if component.is_empty() || component == "." {
                continue;
            }
            let next = resolved.join(&component);
            match fs::symlink_metadata(&next) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        bail!(
                            "Too many levels of symlinks below `{}`",
                            self.root.display()
                        );
                    }
                    let target = fs::read_link(&next)?;
                    let target = target.as_os_str().as_bytes();
                    if target.starts_with(b"/") {
                        resolved = self.root.clone();
                        depth = 0;
                    }
                    for part in target.split(|b| *b == b'/').rev() {
                        pending.push_front(OsStr::from_bytes(part).to_os_string());
                    }
                    continue;
                }
                Ok(_) => bail!("`{}` is not a directory", next.display()),
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    fs::create_dir(&next)?;
                    fs::set_permissions(&next, Permissions::from_mode(0o755))?;
                }
                Err(e) => return Err(anyhow!("Failed to resolve `{}`: {e}", next.display())),
            }
            resolved = next;
            depth += 1;
        }
        Ok(resolved)
    }

    /// Resolves a hard link target, which must be an existing non-directory
    /// entry of this layer.
    fn resolve_link_target(&self, target: &[u8]) -> Result<PathBuf> {
        let components =
            entry_components(target).map_err(|e| anyhow!("Invalid hard link target: {e}"))?;
        let Some((name, parents)) = components.split_last() else {
            bail!("Hard link target is the layer root");
        };
        let path = self.resolve_dir(parents, false)?.join(name);
        let meta = fs::symlink_metadata(&path).map_err(|_| {
            anyhow!(
                "Hard link target `{}` is not in this layer",
                String::from_utf8_lossy(target)
            )
        })?;
        if meta.is_dir() {
            bail!(
                "Hard link target `{}` is a directory",
                String::from_utf8_lossy(target)
            );
        }
        Ok(path)
    }
}

/// Splits an entry name into its components, dropping a leading `/` and
/// `.` components and rejecting `..`.
fn entry_components(name: &[u8]) -> Result<Vec<OsString>> {
    let mut components = Vec::new();
    for part in name.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => bail!(
                "Entry name `{}` contains `..`: the layer is invalid or hostile",
                String::from_utf8_lossy(name)
            ),
            _ => components.push(OsStr::from_bytes(part).to_os_string()),
        }
    }
    Ok(components)
}

/// Removes what is at `path` without following a symlink there.
fn remove_existing(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path)?,
        Ok(_) => fs::remove_file(path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn make_whiteout(path: &Path) -> Result<()> {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    mknod(path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
        .with_context(|| format!("Failed to create whiteout `{}`", path.display()))
}

/// Returns the `SCHILY.xattr.*` PAX records of an entry.
fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Vec<(String, Vec<u8>)>> {
    let Some(extensions) = entry.pax_extensions()? else {
        return Ok(Vec::new());
    };
    let mut xattrs = Vec::new();
    for extension in extensions {
        let extension = extension?;
        if let Ok(key) = extension.key()
            && let Some(name) = key.strip_prefix("SCHILY.xattr.")
        {
            xattrs.push((name.to_string(), extension.value_bytes().to_vec()));
        }
    }
    Ok(xattrs)
}
