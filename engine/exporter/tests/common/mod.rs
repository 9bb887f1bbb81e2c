//! Helpers shared by the integration tests: building overlay-style trees
//! and reading back the tars the exporters write.

#![allow(dead_code)]

use flate2::read::GzDecoder;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// One tar entry, reduced to what the tests compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: Option<String>,
    pub data: Vec<u8>,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// Reads every entry of a tar, decompressing gzip when `gzip` is set.
pub fn read_tar(bytes: &[u8], gzip: bool) -> Vec<Entry> {
    let reader: Box<dyn Read + '_> = if gzip {
        Box::new(GzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let mut archive = tar::Archive::new(reader);
    let mut entries = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut xattrs = Vec::new();
        if let Some(extensions) = entry.pax_extensions().unwrap() {
            for ext in extensions {
                let ext = ext.unwrap();
                if let Some(name) = ext.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
        let header = entry.header().clone();
        let link = entry
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        entries.push(Entry {
            path: entry
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string(),
            kind: header.entry_type(),
            mode: header.mode().unwrap(),
            uid: header.uid().unwrap(),
            gid: header.gid().unwrap(),
            mtime: header.mtime().unwrap(),
            link,
            data,
            xattrs,
        });
    }
    entries
}

pub fn find<'a>(entries: &'a [Entry], path: &str) -> &'a Entry {
    entries
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("no entry `{path}` in {:?}", paths(entries)))
}

pub fn paths(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.path.as_str()).collect()
}

pub fn write(path: &Path, data: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Creates an overlayfs whiteout (a 0/0 character device) at `path`.
pub fn whiteout(path: &Path) {
    use nix::sys::stat::{Mode, SFlag, mknod};
    mknod(path, SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
}

pub fn set_opaque(dir: &Path) {
    xattr::set(dir, "trusted.overlay.opaque", b"y").unwrap();
}

pub fn set_mtime(path: &Path, seconds: i64) {
    let time = filetime::FileTime::from_unix_time(seconds, 0);
    filetime::set_symlink_file_times(path, time, time).unwrap();
}

/// Runs a command and panics with its output when it fails.
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
