//! The build context mirror.
//!
//! Each context directory has one mirror in the store (a `SourceLocal`
//! snapshot whose id is derived from the context's path) and an index of
//! what was copied. A sync walks only the followed paths, skips what
//! `.dockerignore` excludes, and copies and hashes only files whose
//! metadata differs from the index. Unlike other snapshots the mirror is
//! updated in place, so a sync holds an exclusive lock on it for as long as
//! the build reads it (the returned [`ContextLease`]).

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use strata_dockerfile::dockerignore::DockerIgnore;
use strata_llb::Digest;
use strata_store::Store;

pub use strata_solver::TransferStats;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// What the index remembers of one context entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    kind: EntryKind,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime_ns: i128,
    inode: u64,
    device: u64,
    /// sha256 of the bytes of a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    link: Option<String>,
}

impl Entry {
    /// Whether the file can be reused without reading it.
    fn unchanged(&self, other: &Entry) -> bool {
        self.kind == other.kind
            && self.mode == other.mode
            && self.uid == other.uid
            && self.gid == other.gid
            && self.size == other.size
            && self.mtime_ns == other.mtime_ns
            && self.inode == other.inode
            && self.device == other.device
            && self.link == other.link
    }
}

/// The result of a sync: the mirror's snapshot id and content checksum,
/// and the lock that keeps it stable while a build reads it.
pub struct ContextLease {
    pub snapshot: String,
    pub checksum: Digest,
    pub stats: TransferStats,
    /// Every mirrored path with its content digest (`dir` for
    /// directories, `link:TARGET` for symlinks), for build records.
    pub files: BTreeMap<String, String>,
    _lock: nix::fcntl::Flock<File>,
}

pub struct ContextSource {
    store: Arc<Store>,
}

/// What to transfer from a context directory.
pub struct SyncRequest<'a> {
    pub dir: &'a Path,
    pub ignore: &'a DockerIgnore,
    /// Paths that the build can read, relative to the context root; empty
    /// means the whole context.
    pub follow_paths: &'a [String],
}

impl ContextSource {
    pub fn new(store: Arc<Store>) -> ContextSource {
        ContextSource { store }
    }

    /// Brings the mirror of `request.dir` up to date.
    pub fn sync(&self, request: &SyncRequest<'_>) -> Result<ContextLease> {
        let started = Instant::now();
        let dir = fs::canonicalize(request.dir).with_context(|| {
            format!(
                "Build context `{}` is not a readable directory",
                request.dir.display()
            )
        })?;
        let key = Digest::of_bytes(dir.as_os_str().as_encoded_bytes());
        let (snapshot, mirror) = self.store.context_snapshot(key.hex())?;
        let lock_path = mirror.with_extension("lock");
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| {
                anyhow::anyhow!("Failed to lock `{}`: {errno}", lock_path.display())
            })?;

        let index_path = mirror.with_extension("index.json");
        let old: BTreeMap<String, Entry> = match fs::read(&index_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Err(_) => BTreeMap::new(),
        };
        let mut stats = TransferStats::default();
        let walked = walk(&dir, request, &mut stats)?;
        let index = apply(&dir, &mirror, &old, walked, &mut stats)?;

        let encoded = serde_json::to_vec(&index)?;
        let temp = index_path.with_extension("tmp");
        fs::write(&temp, &encoded)?;
        fs::rename(&temp, &index_path)?;
        stats.duration_ms = started.elapsed().as_millis() as u64;
        let files = index
            .iter()
            .map(|(path, entry)| {
                let value = match entry.kind {
                    EntryKind::File => entry.digest.clone().unwrap_or_default(),
                    EntryKind::Dir => "dir".to_string(),
                    EntryKind::Symlink => {
                        format!("link:{}", entry.link.as_deref().unwrap_or_default())
                    }
                };
                (path.clone(), value)
            })
            .collect();
        Ok(ContextLease {
            snapshot,
            checksum: checksum(&index),
            stats,
            files,
            _lock: lock,
        })
    }
}

/// Lists the entries to mirror, parents before children.
fn walk(
    dir: &Path,
    request: &SyncRequest<'_>,
    stats: &mut TransferStats,
) -> Result<BTreeMap<String, Entry>> {
    let mut entries = BTreeMap::new();
    let mut roots = follow_roots(request.follow_paths);
    // Symlinks met in the walk add their targets as further roots, because
    // a copy follows a linked source to its target.
    let mut next = 0;
    while next < roots.len() {
        let root = roots[next].clone();
        next += 1;
        let start = if root.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(&root)
        };
        if fs::symlink_metadata(&start).is_err() {
            // A missing followed path is reported by the copy that reads it.
            continue;
        }
        add_parents(dir, &root, &mut entries)?;
        let mut walker = walkdir::WalkDir::new(&start)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter();
        while let Some(item) = walker.next() {
            let item = item
                .with_context(|| format!("Failed to read the build context `{}`", dir.display()))?;
            let relative = relative_path(dir, item.path());
            stats.walked += 1;
            if relative.is_empty() {
                entries.insert(
                    String::new(),
                    entry_of(&item.path().symlink_metadata()?, None)?,
                );
                continue;
            }
            if request.ignore.is_excluded(&relative) {
                stats.ignored += 1;
                if item.file_type().is_dir() && !request.ignore.may_include_under(&relative) {
                    walker.skip_current_dir();
                }
                continue;
            }
            let metadata = item.path().symlink_metadata()?;
            let link = metadata
                .is_symlink()
                .then(|| fs::read_link(item.path()))
                .transpose()?;
            if let Some(target) = link.as_deref().and_then(|l| link_target_root(&relative, l))
                && !roots.iter().any(|r| covers(r, &target))
            {
                roots.push(target);
            }
            entries.insert(relative, entry_of(&metadata, link)?);
        }
    }
    Ok(entries)
}

/// The context-relative path a symlink at `relative` points to, resolved
/// lexically with the context as the root, or `None` for the root itself.
fn link_target_root(relative: &str, link: &Path) -> Option<String> {
    let link = link.to_string_lossy();
    let joined = if link.starts_with('/') {
        link.into_owned()
    } else {
        let parent = relative.rsplit_once('/').map_or("", |(parent, _)| parent);
        format!("{parent}/{link}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Whether walking `root` already reaches `path`.
fn covers(root: &str, path: &str) -> bool {
    root.is_empty() || root == path || path.starts_with(&format!("{root}/"))
}

/// Reduces followed paths to the directories to walk: each path up to its
/// first component with a wildcard, without duplicates or nested roots.
fn follow_roots(follow_paths: &[String]) -> Vec<String> {
    if follow_paths.is_empty() {
        return vec![String::new()];
    }
    let mut roots: Vec<String> = follow_paths
        .iter()
        .map(|path| {
            let components: Vec<&str> = path
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .take_while(|c| !c.contains(['*', '?', '[', '\\']))
                .collect();
            components.join("/")
        })
        .collect();
    roots.sort();
    roots.dedup();
    let mut kept: Vec<String> = Vec::new();
    for root in roots {
        let nested = kept
            .iter()
            .any(|k| k.is_empty() || root.starts_with(&format!("{k}/")));
        if !nested {
            kept.push(root);
        }
    }
    kept
}

fn add_parents(dir: &Path, root: &str, entries: &mut BTreeMap<String, Entry>) -> Result<()> {
    let mut path = String::new();
    entries.insert(String::new(), entry_of(&dir.symlink_metadata()?, None)?);
    let parents: Vec<&str> = root.split('/').collect();
    for component in &parents[..parents.len().saturating_sub(1)] {
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(component);
        entries.insert(
            path.clone(),
            entry_of(&dir.join(&path).symlink_metadata()?, None)?,
        );
    }
    Ok(())
}

fn relative_path(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

fn entry_of(metadata: &fs::Metadata, link: Option<PathBuf>) -> Result<Entry> {
    let kind = if metadata.is_dir() {
        EntryKind::Dir
    } else if metadata.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::File
    };
    Ok(Entry {
        kind,
        mode: metadata.mode() & 0o7777,
        uid: metadata.uid(),
        gid: metadata.gid(),
        size: if kind == EntryKind::File {
            metadata.size()
        } else {
            0
        },
        mtime_ns: metadata.mtime() as i128 * 1_000_000_000 + metadata.mtime_nsec() as i128,
        inode: metadata.ino(),
        device: metadata.dev(),
        digest: None,
        link: link.map(|l| l.to_string_lossy().into_owned()),
    })
}

/// Makes the mirror match `walked`, copying only changed entries, and
/// returns the new index with every file's digest.
fn apply(
    source: &Path,
    mirror: &Path,
    old: &BTreeMap<String, Entry>,
    walked: BTreeMap<String, Entry>,
    stats: &mut TransferStats,
) -> Result<BTreeMap<String, Entry>> {
    // Remove what is gone or changed kind, deepest first.
    for (path, entry) in old.iter().rev() {
        let replaced = walked.get(path).is_none_or(|new| new.kind != entry.kind);
        if replaced && !path.is_empty() {
            remove_entry(&mirror.join(path))?;
            stats.removed += 1;
        }
    }

    let mut index = BTreeMap::new();
    for (path, mut entry) in walked {
        if let Some(previous) = old.get(&path).filter(|previous| previous.unchanged(&entry)) {
            entry.digest = previous.digest.clone();
            index.insert(path, entry);
            continue;
        }
        let target = if path.is_empty() {
            mirror.to_path_buf()
        } else {
            mirror.join(&path)
        };
        match entry.kind {
            EntryKind::Dir => {
                fs::create_dir_all(&target)?;
            }
            EntryKind::Symlink => {
                let _ = fs::remove_file(&target);
                symlink(entry.link.as_deref().unwrap_or_default(), &target)?;
            }
            EntryKind::File => {
                let digest = copy_file(&source.join(&path), &target).with_context(|| {
                    format!("Failed to transfer `{path}` from the build context")
                })?;
                entry.digest = Some(digest);
                stats.copied_files += 1;
                stats.copied_bytes += entry.size;
            }
        }
        set_attributes(&target, &entry)?;
        index.insert(path, entry);
    }
    Ok(index)
}

fn remove_entry(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(path)?,
        Ok(_) => fs::remove_file(path)?,
        Err(_) => {}
    }
    Ok(())
}

/// Copies a file through a temporary name and returns the sha256 of its
/// bytes, computed while copying. A socket or FIFO becomes an empty regular
/// file, as in BuildKit, because opening it would fail or block.
fn copy_file(from: &Path, to: &Path) -> Result<String> {
    let mut input: Box<dyn Read> = if fs::symlink_metadata(from)?.is_file() {
        Box::new(File::open(from)?)
    } else {
        Box::new(std::io::empty())
    };
    let temp = to.with_file_name(format!(
        ".strata-tmp-{}",
        to.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let mut output = File::create(&temp)?;
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
    drop(output);
    if fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
        fs::remove_dir_all(to)?;
    }
    fs::rename(&temp, to)?;
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

/// sha256 over every entry's path, kind, mode, owner, size and content
/// digest (or link target), in path order. Modification times and inode
/// numbers are left out, so a touched but unchanged file keeps the key.
fn checksum(index: &BTreeMap<String, Entry>) -> Digest {
    let mut hasher = Sha256::new();
    for (path, entry) in index {
        let line = format!(
            "{path}\0{:?}\0{:o}\0{}\0{}\0{}\0{}\0{}\n",
            entry.kind,
            entry.mode,
            entry.uid,
            entry.gid,
            entry.size,
            entry.digest.as_deref().unwrap_or_default(),
            entry.link.as_deref().unwrap_or_default(),
        );
        hasher.update(line.as_bytes());
    }
    Digest::from_sha256(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::follow_roots;

    #[test]
    fn follow_roots_stop_at_wildcards() {
        let paths = vec![
            "src/main.c".into(),
            "src".into(),
            "assets/*.png".into(),
            "./README".into(),
        ];
        assert_eq!(follow_roots(&paths), vec!["README", "assets", "src"]);
    }

    #[test]
    fn follow_roots_whole_context() {
        assert_eq!(follow_roots(&[".".into(), "a".into()]), vec![""]);
        assert_eq!(follow_roots(&[]), vec![""]);
    }
}
