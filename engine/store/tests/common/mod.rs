//! Helpers shared by the store's integration tests.

#![allow(dead_code)]

use std::path::Path;
use tar::{EntryType, Header};

/// Returns a temp dir under /var/tmp, which is a real disk filesystem that
/// supports the `trusted.*` xattrs overlayfs uses (tmpfs may not).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("strata-store-test-")
        .tempdir_in("/var/tmp")
        .unwrap()
}

/// Builds a tar in memory, writing entry names as given, including names
/// the `tar` crate's own path checks would reject.
#[derive(Default)]
pub struct TarBuilder {
    builder: Option<tar::Builder<Vec<u8>>>,
}

impl TarBuilder {
    pub fn new() -> Self {
        TarBuilder {
            builder: Some(tar::Builder::new(Vec::new())),
        }
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, EntryType::Directory, None, b"", 0o755)
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, EntryType::Regular, None, data, 0o644)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, EntryType::Symlink, Some(target), b"", 0o777)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, EntryType::Link, Some(target), b"", 0o644)
    }

    pub fn entry(
        &mut self,
        name: &str,
        kind: EntryType,
        link: Option<&str>,
        data: &[u8],
        mode: u32,
    ) -> &mut Self {
        let mut header = Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        let raw = header.as_old_mut();
        raw.name = [0; 100];
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            raw.linkname = [0; 100];
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_cksum();
        self.builder
            .as_mut()
            .unwrap()
            .append(&header, data)
            .unwrap();
        self
    }

    pub fn finish(&mut self) -> Vec<u8> {
        self.builder.take().unwrap().into_inner().unwrap()
    }
}

/// Lists every path under `dir`, relative to it, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut paths: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            e.unwrap()
                .path()
                .strip_prefix(dir)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    paths.sort();
    paths
}
