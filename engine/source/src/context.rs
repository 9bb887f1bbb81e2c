//! The build context mirror.
//!
//! Each context directory has one mirror in the store (a `SourceLocal`
//! snapshot whose id is derived from the context's path) and an index of
//! what was copied. A sync walks only the followed paths, skips what
//! `.dockerignore` excludes, and copies and hashes only files whose
//! metadata differs from the index. Unlike other snapshots the mirror is
//! updated in place, so a sync holds an exclusive lock on it for as long as
//! the build reads it (the returned [`ContextLease`]).
//!
//! With a set of dirty paths from a file watcher, a sync stats only those
//! paths and their parent directories and keeps every other entry of the
//! index. The index records the sync's scope (followed roots and ignore
//! patterns), and a dirty sync whose scope differs walks everything.

mod index;
mod mirror;
#[cfg(test)]
mod tests;
mod walk;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::Path;
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
    /// sha256 of the bytes of a file. Fields are never skipped when
    /// serialized, because the binary index is not self-describing.
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
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
    pub files: Arc<BTreeMap<String, String>>,
    index: BTreeMap<String, Entry>,
    /// Copy checksums computed from this index, kept in a file beside it.
    memo: index::ChecksumMemo,
    _lock: nix::fcntl::Flock<File>,
}

/// Saves new copy checksums while the mirror is still locked.
impl Drop for ContextLease {
    fn drop(&mut self) {
        self.memo.save();
    }
}

impl ContextLease {
    /// Computes, from the index and without reading any file, the checksum
    /// `strata_worker::checksum` computes for a copy of the plain path
    /// `path`, in the same record format (see `engine/worker/src/checksum.rs`),
    /// so unchanged files are never hashed again for cache keys. Returns
    /// `None` when the path goes through a symlink (a copy follows it), is
    /// missing, or leaves the context; the caller then reads the mirror.
    pub fn path_checksum(&self, path: &str) -> Option<Digest> {
        let mut parts = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => return None,
                other => parts.push(other),
            }
        }
        let relative = parts.join("/");
        for end in 1..=parts.len() {
            if self.index.get(&parts[..end].join("/"))?.kind == EntryKind::Symlink {
                return None;
            }
        }
        if let Some(known) = self.memo.get(&relative) {
            return Some(known);
        }
        let root = self.index.get_key_value(&relative)?;

        // The worker hashes a directory, then its children by name, each
        // in the same way: the order of paths compared by components. The
        // index sorts `/` above some name bytes (`a.txt` before `a/b`), so
        // the subtree is sorted again, which is quick as it is nearly sorted.
        let prefix = format!("{relative}/");
        let mut subtree: Vec<(&String, &Entry)> = match relative.as_str() {
            "" => self.index.iter().collect(),
            _ => std::iter::once(root)
                .chain(
                    self.index
                        .range(prefix.clone()..)
                        .take_while(|(key, _)| key.starts_with(&prefix)),
                )
                .collect(),
        };
        subtree.sort_by(|(a, _), (b, _)| by_components(a, b));

        let zero = hex::encode([0u8; 32]);
        let mut hasher = Sha256::new();
        let mut record = String::new();
        for (current, entry) in subtree {
            let link_digest;
            let (kind, size, content) = match entry.kind {
                EntryKind::File => ("file", entry.size, entry.digest.as_deref()?),
                EntryKind::Dir => ("dir", 0, zero.as_str()),
                EntryKind::Symlink => {
                    let link = entry.link.as_deref().unwrap_or_default();
                    link_digest = hex::encode(Sha256::digest(link.as_bytes()));
                    ("symlink", 0, link_digest.as_str())
                }
            };
            hasher.update(b"/");
            hasher.update(current.as_bytes());
            record.clear();
            let _ = writeln!(
                record,
                "\0{kind}\0{:o}\0{}\0{}\0{size}\0{content}",
                entry.mode, entry.uid, entry.gid
            );
            hasher.update(record.as_bytes());
        }
        let digest = Digest::from_sha256(hasher.finalize().into());
        self.memo.insert(relative, digest.clone());
        Some(digest)
    }
}

/// Returns the monitor's changed paths when they cover every change since
/// the sync that wrote the index with `token`.
fn trusted_changes<'a>(
    changes: &'a crate::monitor::Changes,
    token: Option<&str>,
) -> Option<&'a BTreeSet<String>> {
    let reason = match (&changes.lost, &changes.token) {
        (Some(lost), _) => lost.as_str(),
        (None, Some(acknowledged)) if Some(acknowledged.as_str()) == token => {
            return Some(&changes.paths);
        }
        (None, _) => "the monitor has not seen the sync that wrote the index",
    };
    tracing::debug!("walking the whole context: {reason}");
    None
}

/// Orders paths by their components, as a walk that visits a directory's
/// children by name does: `/` sorts before every byte of a name.
fn by_components(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |c: u8| if c == b'/' { 0 } else { c };
    a.bytes().map(key).cmp(b.bytes().map(key))
}

pub struct ContextSource {
    store: Arc<Store>,
}

/// What to transfer from a context directory.
#[derive(Clone, Copy)]
pub struct SyncRequest<'a> {
    pub dir: &'a Path,
    pub ignore: &'a DockerIgnore,
    /// Paths that the build can read, relative to the context root; empty
    /// means the whole context.
    pub follow_paths: &'a [String],
    /// Paths relative to the context root that changed since the previous
    /// sync, as a file watcher reports them; `None` walks every followed
    /// path. The caller must include every change: a path left out keeps
    /// its old content in the mirror.
    pub dirty: Option<&'a BTreeSet<String>>,
    /// How to start a context monitor, when a sync without `dirty` should
    /// ask one for the changed paths (see [`crate::monitor`]).
    pub monitor: Option<&'a MonitorConfig>,
}

/// The program and arguments that run [`crate::monitor::serve`]; the
/// context directory and the socket path are appended.
#[derive(Clone, Debug)]
pub struct MonitorConfig {
    pub program: std::path::PathBuf,
    pub args: Vec<String>,
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
        let lock = lock_mirror(&mirror)?;
        let roots = walk::follow_roots(request.follow_paths);
        let scope = scope_of(&roots, request.ignore);
        let mut stats = TransferStats::default();
        // A full walk needs nothing from the index, so another thread reads
        // the index meanwhile.
        let (old, full_walk) = match (request.dirty, request.monitor) {
            (None, None) => std::thread::scope(|threads| {
                let reader = threads.spawn(|| index::read(&mirror));
                let walked = walk::walk_full(&dir, &roots, request.ignore, &mut stats);
                (
                    reader.join().expect("the index reader panicked"),
                    Some(walked),
                )
            }),
            _ => (index::read(&mirror), None),
        };
        let monitored = match (request.dirty, request.monitor) {
            (None, Some(config)) => self.ask_monitor(config, &dir, key.hex()),
            _ => None,
        };
        let monitored_dirty = monitored
            .as_ref()
            .and_then(|(_, changes)| trusted_changes(changes, old.token.as_deref()));
        let request = &SyncRequest {
            dirty: request.dirty.or(monitored_dirty),
            ..*request
        };
        // A marker left by an interrupted sync means the index may list
        // files the mirror lost, so every reused entry is checked again.
        let marker = mirror.with_extension("syncing");
        let interrupted = marker.exists() || !old.marked;
        let current = !interrupted && scope == old.scope && old.token.is_some();

        let (mut index, unchanged, writer) = match (monitored_dirty, old.checksum.as_deref()) {
            // The monitor saw no event since the sync that wrote the index,
            // so the mirror is current without a single stat.
            (Some(dirty), Some(_)) if dirty.is_empty() && current => {
                stats.full_walk = false;
                (old.entries, true, None)
            }
            _ => {
                let walked = match full_walk {
                    Some(walked) => walked?,
                    None => self.list(&dir, request, &roots, &scope, &old, &mut stats)?,
                };
                let mut writer = mirror::MirrorWriter::new(&dir, &mirror, &marker, interrupted);
                let index = writer.apply(&old.entries, walked, &mut stats)?;
                // The writer changes the mirror exactly when an entry was
                // added, removed or rewritten, so an unchanged mirror keeps
                // its index.
                let unchanged = !interrupted && !writer.changed() && scope == old.scope;
                (index, unchanged, Some(writer))
            }
        };
        let checksum = match old.checksum.as_deref().filter(|_| unchanged) {
            Some(stored) => stored.parse()?,
            None => checksum(&index),
        };
        let mut token = old.token.clone();
        if !unchanged || old.checksum.is_none() || old.token.is_none() {
            let file = index::IndexFile {
                scope,
                entries: index,
                marked: true,
                checksum: Some(checksum.to_string()),
                token: Some(crate::monitor::new_token()),
            };
            index::write(&mirror, &file)?;
            index = file.entries;
            token = file.token;
        }
        if let Some(writer) = writer {
            writer.finish()?;
        }
        if let (Some((socket, changes)), Some(token)) = (&monitored, &token)
            && let Err(error) = crate::monitor::acknowledge(socket, token, changes.seq)
        {
            tracing::debug!("the context monitor did not take the sync: {error:#}");
        }
        stats.duration_ms = started.elapsed().as_millis() as u64;
        Ok(ContextLease {
            snapshot,
            checksum,
            stats,
            files: Arc::new(file_digests(&index)),
            index,
            memo: index::ChecksumMemo::load(&mirror, token.as_deref()),
            _lock: lock,
        })
    }

    /// Asks the context's monitor for the changes since the last sync,
    /// starting one when none runs. `None` when no monitor can respond.
    fn ask_monitor(
        &self,
        config: &MonitorConfig,
        dir: &Path,
        key: &str,
    ) -> Option<(std::path::PathBuf, crate::monitor::Changes)> {
        let socket = match crate::monitor::socket_path(self.store.root(), key) {
            Ok(socket) => socket,
            Err(error) => {
                tracing::debug!("not monitoring the context: {error:#}");
                return None;
            }
        };
        match crate::monitor::query(&socket) {
            Ok(changes) => return Some((socket, changes)),
            // Only a missing monitor is replaced. One that runs but does not
            // respond keeps its lock, so this build walks.
            Err(error) if !crate::monitor::is_absent(&error) => {
                tracing::warn!(
                    "the context monitor at `{}` did not answer ({error:#}); walking the whole context",
                    socket.display()
                );
                return None;
            }
            Err(error) => {
                tracing::debug!("no context monitor at `{}`: {error:#}", socket.display())
            }
        }
        if let Some(reason) = crate::watch::unreliable_filesystem(dir) {
            tracing::debug!("not monitoring the context: {reason}");
            return None;
        }
        let args: Vec<&str> = config.args.iter().map(String::as_str).collect();
        if let Err(error) = crate::monitor::spawn(&config.program, &args, dir, &socket) {
            tracing::debug!("failed to start a context monitor: {error:#}");
        }
        crate::monitor::query(&socket)
            .ok()
            .map(|changes| (socket, changes))
    }

    /// Lists the context: only the dirty paths when the request has them
    /// and the old index was walked with the same scope, else everything.
    fn list(
        &self,
        dir: &Path,
        request: &SyncRequest<'_>,
        roots: &[String],
        scope: &str,
        old: &index::IndexFile,
        stats: &mut TransferStats,
    ) -> Result<BTreeMap<String, Entry>> {
        if let Some(dirty) = request.dirty {
            let fallback = if old.scope != scope {
                "the followed paths or `.dockerignore` changed since the last sync".to_string()
            } else {
                match walk::walk_dirty(dir, roots, request.ignore, &old.entries, dirty, stats)? {
                    Ok(entries) => {
                        stats.full_walk = false;
                        return Ok(entries);
                    }
                    Err(walk::NeedsFullWalk(reason)) => reason,
                }
            };
            tracing::info!(
                context = %dir.display(),
                "walking the whole build context: {fallback}"
            );
            *stats = TransferStats::default();
        }
        walk::walk_full(dir, roots, request.ignore, stats)
    }
}

fn lock_mirror(mirror: &Path) -> Result<nix::fcntl::Flock<File>> {
    let lock_path = mirror.with_extension("lock");
    let lock_file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| anyhow::anyhow!("Failed to lock `{}`: {errno}", lock_path.display()))
}

/// Digest of what decides which entries a full walk lists.
fn scope_of(roots: &[String], ignore: &DockerIgnore) -> String {
    let mut hasher = Sha256::new();
    for root in roots {
        hasher.update(root.as_bytes());
        hasher.update(b"\0");
    }
    hasher.update(b"\n");
    for pattern in ignore.patterns() {
        hasher.update(pattern.as_bytes());
        hasher.update(b"\0");
    }
    hex::encode(hasher.finalize())
}

fn file_digests(index: &BTreeMap<String, Entry>) -> BTreeMap<String, String> {
    index
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
        .collect()
}

/// sha256 over every entry's path, kind, mode, owner, size and content
/// digest (or link target), in path order. Modification times and inode
/// numbers are left out, so a touched but unchanged file keeps the key.
fn checksum(index: &BTreeMap<String, Entry>) -> Digest {
    let mut hasher = Sha256::new();
    let mut line = String::new();
    for (path, entry) in index {
        line.clear();
        let _ = writeln!(
            line,
            "{path}\0{:?}\0{:o}\0{}\0{}\0{}\0{}\0{}",
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
