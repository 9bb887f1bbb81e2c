//! The content store: blobs under `content/sha256/<hex>`, written to a temp
//! file under `tmp/`, fsynced and renamed into place, so a blob path either
//! does not exist or contains the whole blob.

use crate::{Result, Store};
use anyhow::{Context, anyhow, bail};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use strata_llb::Digest;

/// Returns a fresh temp path under `tmp_dir`. The name starts with the
/// writer's pid so recovery deletes only files of dead processes.
pub(crate) fn tmp_path(tmp_dir: &Path) -> PathBuf {
    let suffix: u64 = rand::random();
    tmp_dir.join(format!("{}-{suffix:016x}", std::process::id()))
}

/// Locks `content/gc.lock` under `root`: exclusive for the blob sweep,
/// shared for a writer installing a blob.
pub(crate) fn lock_content(root: &Path, exclusive: bool) -> Result<nix::fcntl::Flock<File>> {
    let path = root.join("content/gc.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("Failed to open `{}`", path.display()))?;
    let mode = if exclusive {
        nix::fcntl::FlockArg::LockExclusive
    } else {
        nix::fcntl::FlockArg::LockShared
    };
    nix::fcntl::Flock::lock(file, mode)
        .map_err(|(_, errno)| anyhow!("Failed to lock `{}`: {errno}", path.display()))
}

/// Returns the pid that wrote temp file `name`, or `None` for a name the
/// store does not produce.
pub(crate) fn tmp_owner(name: &str) -> Option<i64> {
    name.split_once('-')?.0.parse().ok()
}

/// A blob being written. Bytes are hashed as they are written; [`commit`]
/// moves the finished file into the content store. Dropping the writer
/// without committing deletes the temp file.
///
/// [`commit`]: BlobWriter::commit
pub struct BlobWriter {
    file: Option<File>,
    tmp: PathBuf,
    content_dir: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl Store {
    /// Writes a blob atomically and returns its digest and size.
    pub fn write_blob(&self, data: &mut dyn Read) -> Result<(Digest, u64)> {
        let mut writer = self.blob_writer()?;
        io::copy(data, &mut writer).context("Failed to write a blob")?;
        writer.commit()
    }

    /// Starts a streamed blob write, for exporters that compress a layer
    /// straight into the store.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let tmp = tmp_path(&self.tmp_dir());
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("Failed to create temp file `{}`", tmp.display()))?;
        Ok(BlobWriter {
            file: Some(file),
            tmp,
            content_dir: self.root().join("content/sha256"),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root().join("content/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Reads a whole blob without checking its digest; see [`verify_blob`].
    ///
    /// [`verify_blob`]: Store::verify_blob
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        std::fs::read(&path).map_err(|e| blob_error(digest, &path, e))
    }

    /// Opens a blob for streaming reads, without checking its digest.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| blob_error(digest, &path, e))
    }

    /// Rehashes a blob and fails when its content does not match `digest`.
    pub fn verify_blob(&self, digest: &Digest) -> Result<()> {
        let mut reader = BufReader::new(self.open_blob(digest)?);
        let mut hasher = Sha256::new();
        io::copy(&mut reader, &mut hasher)
            .with_context(|| format!("Failed to read blob `{digest}`"))?;
        let actual = Digest::from_sha256(hasher.finalize().into());
        if actual != *digest {
            bail!(
                "Blob `{digest}` is corrupt: its content hashes to `{actual}`; \
                 delete `{}` and pull or import it again",
                self.blob_path(digest).display()
            );
        }
        Ok(())
    }
}

fn blob_error(digest: &Digest, path: &Path, error: io::Error) -> anyhow::Error {
    if error.kind() == io::ErrorKind::NotFound {
        anyhow!("Blob `{digest}` not found in the content store")
    } else {
        anyhow!(
            "Failed to read blob `{digest}` at `{}`: {error}",
            path.display()
        )
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob already committed"))?;
        let written = file.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.size += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Moves the blob into the content store and returns its digest and
    /// size. When the store already has the digest, the temp file is
    /// dropped without an fsync.
    pub fn commit(mut self) -> Result<(Digest, u64)> {
        let digest = Digest::from_sha256(self.hasher.clone().finalize().into());
        self.install(&digest)?;
        Ok((digest, self.size))
    }

    /// Like [`commit`](BlobWriter::commit), but fails and discards the data
    /// when it does not hash to `expected`.
    pub fn commit_verified(mut self, expected: &Digest) -> Result<u64> {
        let digest = Digest::from_sha256(self.hasher.clone().finalize().into());
        if digest != *expected {
            bail!(
                "Blob content hashes to `{digest}`, expected `{expected}`: the source sent corrupt data"
            );
        }
        self.install(&digest)?;
        Ok(self.size)
    }

    fn install(&mut self, digest: &Digest) -> Result<()> {
        let result = self.install_file(digest);
        if result.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        result
    }

    fn install_file(&mut self, digest: &Digest) -> Result<()> {
        let file = self.file.take().expect("install runs once");
        let dest = self.content_dir.join(digest.hex());
        // Garbage collection sweeps blobs under this lock, keeping those
        // modified after its cutoff, so a blob found here and touched stays.
        let root = self.content_dir.parent().and_then(Path::parent);
        let _lock = lock_content(root.unwrap_or(Path::new("/")), false)?;
        if dest.is_file() && filetime::set_file_mtime(&dest, filetime::FileTime::now()).is_ok() {
            drop(file);
            let _ = std::fs::remove_file(&self.tmp);
            return Ok(());
        }
        file.sync_all().context("Failed to fsync a blob")?;
        drop(file);
        std::fs::rename(&self.tmp, &dest).with_context(|| {
            format!(
                "Failed to move `{}` to `{}`",
                self.tmp.display(),
                dest.display()
            )
        })?;
        // The rename is durable only once the directory entry is on disk.
        File::open(&self.content_dir)
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("Failed to fsync `{}`", self.content_dir.display()))?;
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
