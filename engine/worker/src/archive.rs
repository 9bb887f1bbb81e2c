//! Detection and extraction of tar archives for `ADD`, plain or compressed
//! with gzip, bzip2, xz or zstd.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

fn detect_compression(magic: &[u8]) -> Compression {
    if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(b"BZh") {
        Compression::Bzip2
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Opens `path` and returns a reader of its decompressed bytes.
fn open_decompressed(path: &Path) -> Result<Box<dyn Read>> {
    let mut file = BufReader::new(File::open(path)?);
    let mut magic = [0u8; 6];
    let read = read_up_to(&mut file, &mut magic)?;
    let file = BufReader::new(File::open(path)?);
    Ok(match detect_compression(&magic[..read]) {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(file)),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(file)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(file)?),
    })
}

fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Returns whether `path` is a tar archive: its (decompressed) first 512
/// bytes form a tar header with a valid checksum.
pub(crate) fn is_archive(path: &Path) -> Result<bool> {
    let mut reader = open_decompressed(path)?;
    let mut header = [0u8; 512];
    // A corrupt compressed stream is not an archive, so it is copied as is.
    let Ok(read) = read_up_to(&mut reader, &mut header) else {
        return Ok(false);
    };
    Ok(read == 512 && header_checksum_valid(&header))
}

fn header_checksum_valid(header: &[u8; 512]) -> bool {
    let field = &header[148..156];
    let text: String = field
        .iter()
        .take_while(|b| **b != 0 && **b != b' ')
        .map(|b| *b as char)
        .collect();
    let Ok(stored) = u32::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let computed: u32 = header
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum();
    stored == computed
}

/// Extracts the archive at `path` into the directory `dest`, keeping
/// modes, times and xattrs, and owners unless `owner` replaces them (`ADD
/// --chown`). Entries that would land outside `dest` (through `..` or a
/// symlink) are rejected by the `tar` crate.
pub(crate) fn unpack(path: &Path, dest: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    let mut archive = tar::Archive::new(open_decompressed(path)?);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    let entries = archive
        .entries()
        .with_context(|| format!("Failed to read `{}`", path.display()))?;
    for entry in entries {
        let mut entry = entry.with_context(|| format!("Failed to read `{}`", path.display()))?;
        let name = entry.path()?.into_owned();
        entry.unpack_in(dest).with_context(|| {
            format!(
                "Failed to extract `{}` from `{}`",
                name.display(),
                path.display()
            )
        })?;
        if let Some((uid, gid)) = owner {
            let target = dest.join(&name);
            // A chown clears set-id bits, so the entry's mode is put back.
            let metadata = target.symlink_metadata()?;
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid))?;
            if !metadata.file_type().is_symlink() {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(
                    &target,
                    std::fs::Permissions::from_mode(metadata.permissions().mode()),
                )?;
            }
        }
    }
    Ok(())
}
