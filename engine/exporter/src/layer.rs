//! OCI layer tars of overlayfs upper directories.
//!
//! An upper dir records deletions the overlayfs way (a 0/0 character device
//! for a removed path, `trusted.overlay.opaque=y` for a directory that hides
//! its lower contents). A layer tar records them the OCI way (`.wh.NAME` and
//! `.wh..wh..opq`), so this module converts one into the other while it
//! writes the tar.
//!
//! NOTE: upper dirs written with the overlayfs `redirect_dir` or `metacopy`
//! features (renamed directories, metadata-only copy-ups) are not
//! supported, so snapshots must be mounted without them.

use crate::gzip::ParallelGzEncoder;
use crate::output::Compression as LayerCompression;
use anyhow::{Context, Result, bail};
use flate2::Compression;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use strata_llb::Digest;
use tar::{EntryType, Header};

/// The xattr overlayfs sets on a directory that hides its lower contents.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Prefix of a whiteout entry in an OCI layer.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the entry that marks its directory opaque in an OCI layer.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// Digests and sizes of one written layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerDigests {
    /// sha256 of the uncompressed tar, the config's `rootfs.diff_ids` entry.
    pub diff_id: Digest,
    /// sha256 of the compressed stream, the manifest's layer digest.
    pub blob: Digest,
    /// Bytes of the compressed stream.
    pub size: u64,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
}

/// Settings shared by every tar this module writes.
#[derive(Clone, Debug, Default)]
pub struct LayerOptions {
    /// Clamp every entry's mtime to at most this many seconds since the
    /// epoch, as `SOURCE_DATE_EPOCH` requests for reproducible builds.
    pub source_date_epoch: Option<i64>,
    /// Compression of new layers; gzip by default.
    pub compression: LayerCompression,
    /// Compression level; `None` takes the algorithm's default.
    pub compression_level: Option<i32>,
    /// Recompress stored layers whose compression differs from `compression`.
    pub force_compression: bool,
    /// Clamp mtimes in every layer, base image layers included, to
    /// `source_date_epoch`.
    pub rewrite_timestamp: bool,
    /// Threads compressing one layer; `None` reads
    /// `STRATA_COMPRESSION_THREADS` and otherwise takes the CPU count. The
    /// compressed bytes are the same for every thread count.
    pub compression_threads: Option<usize>,
}

impl LayerOptions {
    /// Reads `SOURCE_DATE_EPOCH` from the environment.
    pub fn from_env() -> Result<LayerOptions> {
        let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(text) if !text.is_empty() => Some(parse_epoch(&text)?),
            _ => None,
        };
        Ok(LayerOptions {
            source_date_epoch,
            ..LayerOptions::default()
        })
    }

    /// Returns whether layers written with these options are the store's
    /// default (gzip at the default level, mtimes as they are), the only
    /// ones recorded as a snapshot's layer.
    pub fn is_default_encoding(&self) -> bool {
        self.compression == LayerCompression::Gzip
            && self.compression_level.is_none()
            && self.source_date_epoch.is_none()
    }
}

/// Parses a `SOURCE_DATE_EPOCH` value.
pub fn parse_epoch(text: &str) -> Result<i64> {
    text.trim().parse::<i64>().with_context(|| {
        format!("Invalid `SOURCE_DATE_EPOCH` value `{text}`: expected whole seconds since 1970")
    })
}

/// Writes the gzip-compressed OCI layer tar of `diff_dir` to `out`.
pub fn write_layer(diff_dir: &Path, out: impl Write) -> Result<LayerDigests> {
    write_layer_with(diff_dir, out, &LayerOptions::default())
}

/// Writes the compressed OCI layer tar of `diff_dir` to `out`, hashing
/// the tar and the compressed stream in the same pass.
pub fn write_layer_with(
    diff_dir: &Path,
    out: impl Write,
    options: &LayerOptions,
) -> Result<LayerDigests> {
    let compressed = HashingWriter::new(out);
    let encoder = Encoder::new(compressed, options)?;
    let mut builder = tar::Builder::new(HashingWriter::new(encoder));
    append_tree(&mut builder, diff_dir, TreeKind::OverlayUpper, options)?;

    let tar_out = builder
        .into_inner()
        .context("Failed to finish the layer tar")?;
    let (encoder, diff_id, uncompressed_size) = tar_out.finish();
    let compressed = encoder.finish()?;
    let (mut out, blob, size) = compressed.finish();
    out.flush().context("Failed to flush the layer")?;

    Ok(LayerDigests {
        diff_id,
        blob,
        size,
        uncompressed_size,
    })
}

/// Returns the threads to compress one layer with: `requested`, else
/// `STRATA_COMPRESSION_THREADS`, else the CPU count.
pub fn compression_threads(requested: Option<usize>) -> Result<usize> {
    if let Some(threads) = requested {
        return Ok(threads.max(1));
    }
    match std::env::var("STRATA_COMPRESSION_THREADS") {
        Ok(text) if !text.trim().is_empty() => match text.trim().parse::<usize>() {
            Ok(threads) if threads >= 1 => Ok(threads),
            _ => bail!(
                "Invalid `STRATA_COMPRESSION_THREADS` value `{text}`: expected a whole number of threads, 1 or more"
            ),
        },
        _ => Ok(num_cpus::get().max(1)),
    }
}

/// The compressor of one layer. Both formats give equal bytes for equal
/// input and level, whatever the thread count. gzip is written in blocks
/// of a fixed size (see [`crate::gzip`]) with no name and mtime 0 in the
/// header. zstd always runs in its multithreaded mode, whose frames depend
/// on the level and job size but not on the number of workers.
enum Encoder<W: Write> {
    Gzip(ParallelGzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Plain(W),
}

impl<W: Write> Encoder<W> {
    fn new(out: W, options: &LayerOptions) -> Result<Encoder<W>> {
        let threads = compression_threads(options.compression_threads)?;
        Ok(match options.compression {
            LayerCompression::Gzip => {
                let level = options
                    .compression_level
                    .map_or(Compression::default(), |l| {
                        Compression::new(l.clamp(0, 9) as u32)
                    });
                Encoder::Gzip(ParallelGzEncoder::new(out, level, threads))
            }
            LayerCompression::Zstd => {
                let level = options.compression_level.unwrap_or(3);
                let mut encoder = zstd::stream::write::Encoder::new(out, level)
                    .context("Failed to start the zstd stream")?;
                encoder.include_checksum(true)?;
                // Worker counts of 1 or more give the same frames (the
                // parallel_compression test checks it). 0 workers is zstd's
                // single-threaded code path, so one thread still means one
                // worker.
                encoder
                    .multithread(threads as u32)
                    .context("Failed to start the zstd worker threads")?;
                Encoder::Zstd(encoder)
            }
            LayerCompression::Uncompressed => Encoder::Plain(out),
        })
    }

    fn finish(self) -> Result<W> {
        Ok(match self {
            Encoder::Gzip(gzip) => gzip.finish().context("Failed to finish the gzip stream")?,
            Encoder::Zstd(zstd) => zstd.finish().context("Failed to finish the zstd stream")?,
            Encoder::Plain(out) => out,
        })
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(gzip) => gzip.write(buf),
            Encoder::Zstd(zstd) => zstd.write(buf),
            Encoder::Plain(out) => out.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(gzip) => gzip.flush(),
            Encoder::Zstd(zstd) => zstd.flush(),
            Encoder::Plain(out) => out.flush(),
        }
    }
}

/// Writes an uncompressed tar of a plain directory tree, such as a
/// materialised root filesystem. Character devices 0/0 stay devices here.
pub fn write_rootfs_tar(dir: &Path, out: impl Write, options: &LayerOptions) -> Result<()> {
    let mut builder = tar::Builder::new(out);
    append_tree(&mut builder, dir, TreeKind::Plain, options)?;
    builder
        .into_inner()
        .context("Failed to finish the root filesystem tar")?
        .flush()?;
    Ok(())
}

/// Writes one layer per directory into the writers `open` returns, on up
/// to one thread per CPU, and returns the digests in input order.
///
/// NOTE: each layer also compresses on `compression_threads` threads, so
/// several large layers at once can start up to CPUs squared threads.
pub fn write_layers<W, F>(
    diff_dirs: &[PathBuf],
    options: &LayerOptions,
    open: F,
) -> Vec<Result<LayerDigests>>
where
    W: Write,
    F: Fn(usize) -> Result<W> + Sync,
{
    let indexes: Vec<usize> = (0..diff_dirs.len()).collect();
    map_parallel(&indexes, |&index| {
        let out = open(index)?;
        write_layer_with(&diff_dirs[index], out, options)
    })
}

/// Runs `f` over `items` on up to one thread per CPU and returns the
/// results in input order.
pub(crate) fn map_parallel<I, T, F>(items: &[I], f: F) -> Vec<Result<T>>
where
    I: Sync,
    T: Send,
    F: Fn(&I) -> Result<T> + Sync,
{
    let threads = num_cpus::get().clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<T>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());

    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    let result = f(item);
                    results.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(result);
                }
            });
        }
    });

    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results
        .into_iter()
        .map(|r| r.expect("every index is processed once"))
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TreeKind {
    /// An overlayfs upper dir: convert whiteouts and opaque markers.
    OverlayUpper,
    /// A complete tree: write every entry as it is.
    Plain,
}

/// Appends every entry under `root` (not `root` itself), parents before
/// children and siblings sorted by name.
fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    kind: TreeKind,
    options: &LayerOptions,
) -> Result<()> {
    let root_meta = std::fs::symlink_metadata(root)
        .with_context(|| format!("Failed to read layer directory `{}`", root.display()))?;
    if !root_meta.is_dir() {
        bail!("Layer source `{}` is not a directory", root.display());
    }

    // Paths already written, by (device, inode), for files with several links.
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let walker = walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name();
    for entry in walker {
        let entry = entry.with_context(|| format!("Failed to walk `{}`", root.display()))?;
        let relative = entry
            .path()
            .strip_prefix(root)
            .expect("walkdir yields paths under root");
        let meta = entry
            .metadata()
            .with_context(|| format!("Failed to stat `{}`", entry.path().display()))?;
        append_entry(
            builder,
            entry.path(),
            relative,
            &meta,
            kind,
            options,
            &mut links,
        )
        .with_context(|| format!("Failed to add `{}` to the tar", entry.path().display()))?;
    }
    Ok(())
}

fn append_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &Path,
    relative: &Path,
    meta: &Metadata,
    kind: TreeKind,
    options: &LayerOptions,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    let file_type = meta.file_type();
    let mut header = base_header(meta, options);

    // Overlayfs may hard-link whiteouts to one shared device node, so
    // whiteouts are checked before hard links.
    if kind == TreeKind::OverlayUpper && is_whiteout(meta) {
        let name = relative.file_name().expect("entries below root have names");
        let mut whiteout_name = std::ffi::OsString::from(WHITEOUT_PREFIX);
        whiteout_name.push(name);
        header.set_entry_type(EntryType::Regular);
        header.set_size(0);
        builder.append_data(
            &mut header,
            relative.with_file_name(whiteout_name),
            io::empty(),
        )?;
        return Ok(());
    }

    if !file_type.is_dir() && meta.nlink() > 1 {
        let key = (meta.dev(), meta.ino());
        if let Some(target) = links.get(&key) {
            header.set_entry_type(EntryType::Link);
            header.set_size(0);
            builder.append_link(&mut header, relative, target)?;
            return Ok(());
        }
        links.insert(key, relative.to_path_buf());
    }

    let xattrs = read_xattrs(path)?;
    if !xattrs.is_empty() {
        let records = xattrs
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_slice()));
        builder.append_pax_extensions(records)?;
    }

    if file_type.is_dir() {
        header.set_entry_type(EntryType::Directory);
        builder.append_data(&mut header, relative, io::empty())?;
        if kind == TreeKind::OverlayUpper && is_opaque(path)? {
            let mut marker = base_header(meta, options);
            marker.set_entry_type(EntryType::Regular);
            marker.set_mode(0o644);
            builder.append_data(&mut marker, relative.join(OPAQUE_WHITEOUT), io::empty())?;
        }
    } else if file_type.is_file() {
        header.set_entry_type(EntryType::Regular);
        header.set_size(meta.len());
        let file = File::open(path)?;
        builder.append_data(&mut header, relative, file)?;
    } else if file_type.is_symlink() {
        let target = std::fs::read_link(path)?;
        header.set_entry_type(EntryType::Symlink);
        builder.append_link(&mut header, relative, target)?;
    } else if file_type.is_char_device() || file_type.is_block_device() {
        let entry_type = if file_type.is_char_device() {
            EntryType::Char
        } else {
            EntryType::Block
        };
        header.set_entry_type(entry_type);
        header.set_device_major(nix::sys::stat::major(meta.rdev()) as u32)?;
        header.set_device_minor(nix::sys::stat::minor(meta.rdev()) as u32)?;
        builder.append_data(&mut header, relative, io::empty())?;
    } else if file_type.is_fifo() {
        header.set_entry_type(EntryType::Fifo);
        builder.append_data(&mut header, relative, io::empty())?;
    } else {
        // Sockets belong to a running process and have no tar form.
        tracing::debug!(path = %path.display(), "skipping socket");
    }
    Ok(())
}

/// Builds a header with the entry's owner, permission bits and mtime.
fn base_header(meta: &Metadata, options: &LayerOptions) -> Header {
    let mut header = Header::new_gnu();
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(meta.uid().into());
    header.set_gid(meta.gid().into());
    let mut mtime = meta.mtime();
    if let Some(epoch) = options.source_date_epoch {
        mtime = mtime.min(epoch);
    }
    header.set_mtime(mtime.max(0) as u64);
    header.set_size(0);
    header
}

/// Reports whether an entry is an overlayfs whiteout, a 0/0 character device.
pub(crate) fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Reports whether a directory carries the overlayfs opaque marker.
pub(crate) fn is_opaque(path: &Path) -> Result<bool> {
    let value = xattr::get(path, OPAQUE_XATTR).with_context(|| {
        format!(
            "Failed to read xattr `{OPAQUE_XATTR}` of `{}`",
            path.display()
        )
    })?;
    Ok(value.as_deref() == Some(b"y"))
}

/// Returns the entry's xattrs as PAX records (`SCHILY.xattr.NAME`), sorted
/// by name, without overlayfs' private ones.
fn read_xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut records = Vec::new();
    for (name, value) in copyable_xattrs(path)? {
        records.push((format!("SCHILY.xattr.{name}"), value));
    }
    Ok(records)
}

/// Returns an entry's xattrs, sorted by name, except overlayfs' private
/// ones (`trusted.overlay.*`, and `user.overlay.*` that the `userxattr`
/// mount option uses). Symlinks are read themselves, not followed.
pub(crate) fn copyable_xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("Failed to list xattrs of `{}`", path.display()));
        }
    };

    let mut xattrs = Vec::new();
    for name in names {
        let Some(name) = name.to_str().map(str::to_string) else {
            bail!("Xattr name {name:?} of `{}` is not UTF-8", path.display());
        };
        if name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") {
            continue;
        }
        if let Some(value) = xattr::get(path, &name)? {
            xattrs.push((name, value));
        }
    }
    xattrs.sort();
    Ok(xattrs)
}

/// A writer that hashes and counts what passes through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Returns the inner writer, the digest and the byte count.
    pub(crate) fn finish(self) -> (W, Digest, u64) {
        let digest = Digest::from_sha256(self.hasher.finalize().into());
        (self.inner, digest, self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
