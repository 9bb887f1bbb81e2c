//! Listing the context: a full walk of the followed paths, or a dirty walk
//! that re-reads only the paths a watcher reported and keeps the rest of
//! the previous index.

use super::{Entry, EntryKind};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use strata_dockerfile::dockerignore::DockerIgnore;
use strata_solver::TransferStats;

/// Lists the entries to mirror under every followed root.
pub(super) fn walk_full(
    dir: &Path,
    roots: &[String],
    ignore: &DockerIgnore,
    stats: &mut TransferStats,
) -> Result<BTreeMap<String, Entry>> {
    let mut entries = BTreeMap::new();
    let mut roots = roots.to_vec();
    // Symlinks met in the walk add their targets as further roots, because
    // a copy follows a linked source to its target.
    let mut next = 0;
    while next < roots.len() {
        let root = roots[next].clone();
        next += 1;
        if fs::symlink_metadata(join(dir, &root)).is_err() {
            // A missing followed path is reported by the copy that reads it.
            continue;
        }
        add_parents(dir, &root, &mut entries)?;
        walk_subtree(dir, &root, ignore, &mut entries, stats)?;
        for target in uncovered_link_targets(&entries, &roots) {
            roots.push(target);
        }
    }
    Ok(entries)
}

/// Targets of symlinks in `entries` that no root's walk reaches.
pub(super) fn uncovered_link_targets(
    entries: &BTreeMap<String, Entry>,
    roots: &[String],
) -> Vec<String> {
    let mut targets: Vec<String> = entries
        .iter()
        .filter_map(|(path, entry)| link_target_root(path, Path::new(entry.link.as_deref()?)))
        .filter(|target| !roots.iter().any(|root| covers(root, target)))
        .collect();
    targets.sort();
    targets.dedup();
    targets
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

/// Why a dirty walk cannot stand in for a full walk.
pub(super) struct NeedsFullWalk(pub String);

/// Updates `previous` (a full walk's result under the same roots and
/// ignore patterns) for the paths in `dirty`: each dirty path's subtree is
/// dropped and walked again, and its parent directories are stat'ed again
/// because adding or removing a child changes their modification time.
/// The result equals what [`walk_full`] would return now, provided every
/// change since `previous` is under some dirty path.
pub(super) fn walk_dirty(
    dir: &Path,
    roots: &[String],
    ignore: &DockerIgnore,
    previous: &BTreeMap<String, Entry>,
    dirty: &BTreeSet<String>,
    stats: &mut TransferStats,
) -> Result<std::result::Result<BTreeMap<String, Entry>, NeedsFullWalk>> {
    for root in roots {
        if fs::symlink_metadata(join(dir, root)).is_err() {
            return Ok(Err(NeedsFullWalk(format!(
                "followed path `{root}` is missing"
            ))));
        }
    }
    let mut targets: Vec<(String, &String)> = Vec::new();
    for path in dirty {
        let path = normalize(path);
        if let Some(root) = roots.iter().find(|r| is_strict_ancestor(&path, r)) {
            return Ok(Err(NeedsFullWalk(format!(
                "`{path}` contains the followed path `{root}`"
            ))));
        }
        if let Some(root) = roots.iter().find(|r| is_within(&path, r)) {
            // A write through one name of a file with several hard links
            // reports only that name; the others changed too.
            let metadata = fs::symlink_metadata(join(dir, &path));
            if metadata.is_ok_and(|m| m.is_file() && m.nlink() > 1) {
                return Ok(Err(NeedsFullWalk(format!(
                    "`{path}` has other hard links, whose changes are not reported"
                ))));
            }
            targets.push((path, root));
        }
    }

    let mut entries = previous.clone();
    for (path, _) in &targets {
        remove_subtree(&mut entries, path);
    }
    for (path, root) in &targets {
        add_parents(dir, root, &mut entries)?;
        if !visible(dir, root, path, ignore) {
            continue;
        }
        restat_parents(dir, root, path, ignore, &mut entries, stats)?;
        walk_subtree(dir, path, ignore, &mut entries, stats)?;
    }
    if let Some(target) = uncovered_link_targets(&entries, roots).first() {
        return Ok(Err(NeedsFullWalk(format!(
            "a symlink points to `{target}`, outside the followed paths"
        ))));
    }
    Ok(Ok(entries))
}

/// Walks `start` (relative to `dir`) and what is below it, skipping what
/// `.dockerignore` excludes and directories no exception can re-include.
fn walk_subtree(
    dir: &Path,
    start: &str,
    ignore: &DockerIgnore,
    entries: &mut BTreeMap<String, Entry>,
    stats: &mut TransferStats,
) -> Result<()> {
    let start_path = join(dir, start);
    let Ok(start_metadata) = fs::symlink_metadata(&start_path) else {
        return Ok(());
    };
    stats.walked += 1;
    if !start.is_empty() && ignore.is_excluded(start) {
        stats.ignored += 1;
        if !start_metadata.is_dir() || !ignore.may_include_under(start) {
            return Ok(());
        }
    } else {
        let link = start_metadata
            .is_symlink()
            .then(|| fs::read_link(&start_path))
            .transpose()?;
        if !start.is_empty() && !entries.contains_key(parent_of(start).unwrap_or_default()) {
            add_parents(dir, start, entries)?;
        }
        entries.insert(start.to_string(), entry_of(&start_metadata, link)?);
    }
    if start_metadata.is_dir() {
        walk_directory(dir, &start_path, start, ignore, entries, stats)?;
    }
    Ok(())
}

/// Lists the children of the directory `path` (`relative` in the context)
/// and then walks its subdirectories. Large directories are stat'ed on
/// several threads, since a no-op sync spends most of its time in `statx`.
fn walk_directory(
    dir: &Path,
    path: &Path,
    relative: &str,
    ignore: &DockerIgnore,
    entries: &mut BTreeMap<String, Entry>,
    stats: &mut TransferStats,
) -> Result<()> {
    let read_error = |error: std::io::Error| {
        anyhow::Error::new(error).context(format!(
            "Failed to read the build context directory `{}`",
            path.display()
        ))
    };
    let listing = match fs::read_dir(path) {
        Ok(listing) => listing,
        // A directory deleted while the walk runs is picked up by the next sync.
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(read_error(error)),
    };
    let mut children = Vec::new();
    for child in listing {
        match child {
            Ok(child) => children.push(child),
            Err(error) if error.kind() == ErrorKind::NotFound => {}
            Err(error) => return Err(read_error(error)),
        }
    }
    let children: Vec<(String, fs::DirEntry)> = children
        .into_iter()
        .map(|child| {
            let name = child.file_name();
            let child_relative = match relative {
                "" => name.to_string_lossy().into_owned(),
                _ => format!("{relative}/{}", name.to_string_lossy()),
            };
            (child_relative, child)
        })
        .collect();

    // Excluded entries are not stat'ed; an excluded directory is still
    // entered when an exception may re-include something below it.
    let mut subdirectories = Vec::new();
    let mut listed = Vec::with_capacity(children.len());
    for (child_relative, child) in children {
        stats.walked += 1;
        if ignore.is_excluded(&child_relative) {
            stats.ignored += 1;
            let is_dir = child.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && ignore.may_include_under(&child_relative) {
                subdirectories.push(child_relative);
            }
            continue;
        }
        // The index and the cache keys name files by UTF-8 paths, so a
        // name that is not UTF-8 would come out renamed; refuse it.
        if child.file_name().to_str().is_none() {
            anyhow::bail!(
                "Build context file `{}` has a name that is not valid UTF-8 (shown with U+FFFD); rename it or exclude it in `.dockerignore`",
                child.path().display()
            );
        }
        listed.push((child_relative, child));
    }
    if !listed.is_empty() && !entries.contains_key(relative) {
        // An entry re-included by a `!` exception under an excluded
        // directory still needs its parent directories in the mirror.
        add_parents(dir, &listed[0].0, entries)?;
    }
    let metadata = stat_all(&listed);
    for ((child_relative, child), metadata) in listed.into_iter().zip(metadata) {
        let metadata = match metadata {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == ErrorKind::NotFound => continue,
            Err(error) => {
                return Err(error).with_context(|| {
                    format!(
                        "Failed to read `{}` in the build context",
                        child.path().display()
                    )
                });
            }
        };
        let link = metadata
            .is_symlink()
            .then(|| fs::read_link(child.path()))
            .transpose()?;
        if metadata.is_dir() {
            subdirectories.push(child_relative.clone());
        }
        entries.insert(child_relative, entry_of(&metadata, link)?);
    }
    for child_relative in subdirectories {
        walk_directory(
            dir,
            &dir.join(&child_relative),
            &child_relative,
            ignore,
            entries,
            stats,
        )?;
    }
    Ok(())
}

/// Returns the metadata of every entry, without following symlinks, in order.
/// `DirEntry::metadata` stats relative to the open directory, which skips
/// the path lookup a full path would cost.
fn stat_all(children: &[(String, fs::DirEntry)]) -> Vec<std::io::Result<fs::Metadata>> {
    const PER_THREAD: usize = 512;
    let stat = |part: &[(String, fs::DirEntry)]| -> Vec<std::io::Result<fs::Metadata>> {
        part.iter().map(|(_, child)| child.metadata()).collect()
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(children.len() / PER_THREAD)
        .min(8);
    if threads < 2 {
        return stat(children);
    }
    let chunk = children.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let rest: Vec<_> = children
            .chunks(chunk)
            .skip(1)
            .map(|part| scope.spawn(move || stat(part)))
            .collect();
        let mut all = stat(&children[..chunk]);
        for handle in rest {
            all.extend(handle.join().expect("a stat thread panicked"));
        }
        all
    })
}

/// Whether a full walk reaches `path`: every directory from `root` down to
/// its parent exists, is a real directory and is not skipped as excluded.
fn visible(dir: &Path, root: &str, path: &str, ignore: &DockerIgnore) -> bool {
    for ancestor in ancestors_within(root, path) {
        let Ok(metadata) = fs::symlink_metadata(join(dir, &ancestor)) else {
            return false;
        };
        if !metadata.is_dir() {
            return false;
        }
        if !ancestor.is_empty()
            && ignore.is_excluded(&ancestor)
            && !ignore.may_include_under(&ancestor)
        {
            return false;
        }
    }
    true
}

/// Stats the directories from `root` down to the parent of `path` again,
/// keeping those a full walk would list.
fn restat_parents(
    dir: &Path,
    root: &str,
    path: &str,
    ignore: &DockerIgnore,
    entries: &mut BTreeMap<String, Entry>,
    stats: &mut TransferStats,
) -> Result<()> {
    for ancestor in ancestors_within(root, path) {
        stats.walked += 1;
        if !ancestor.is_empty() && ignore.is_excluded(&ancestor) {
            stats.ignored += 1;
            continue;
        }
        let metadata = fs::symlink_metadata(join(dir, &ancestor))?;
        entries.insert(ancestor, entry_of(&metadata, None)?);
    }
    Ok(())
}

/// The directories from `root` (inclusive) to the parent of `path`.
fn ancestors_within(root: &str, path: &str) -> Vec<String> {
    let mut ancestors = Vec::new();
    let mut current = parent_of(path);
    while let Some(ancestor) = current {
        if !is_within(ancestor, root) {
            break;
        }
        ancestors.push(ancestor.to_string());
        current = parent_of(ancestor);
    }
    ancestors.reverse();
    ancestors
}

fn parent_of(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(path.rsplit_once('/').map_or("", |(parent, _)| parent))
}

/// Whether `path` is `root` or below it (every path is within `""`).
fn is_within(path: &str, root: &str) -> bool {
    root.is_empty()
        || path == root
        || (path.len() > root.len()
            && path.starts_with(root)
            && path.as_bytes()[root.len()] == b'/')
}

fn is_strict_ancestor(path: &str, root: &str) -> bool {
    path != root && is_within(root, path)
}

fn remove_subtree(entries: &mut BTreeMap<String, Entry>, path: &str) {
    if path.is_empty() {
        entries.clear();
        return;
    }
    entries.remove(path);
    let prefix = format!("{path}/");
    let below: Vec<String> = entries
        .range(prefix.clone()..)
        .take_while(|(key, _)| key.starts_with(&prefix))
        .map(|(key, _)| key.clone())
        .collect();
    for key in below {
        entries.remove(&key);
    }
}

/// Strips `./`, leading and trailing slashes and empty components.
fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Reduces followed paths to the directories to walk: each path up to its
/// first component with a wildcard, without duplicates or nested roots.
pub(super) fn follow_roots(follow_paths: &[String]) -> Vec<String> {
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

fn join(dir: &Path, relative: &str) -> PathBuf {
    if relative.is_empty() {
        dir.to_path_buf()
    } else {
        dir.join(relative)
    }
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

#[cfg(test)]
mod tests {
    use super::{ancestors_within, follow_roots, is_within};

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

    #[test]
    fn within_checks_components() {
        assert!(is_within("src/a", "src"));
        assert!(is_within("src", "src"));
        assert!(!is_within("srcx/a", "src"));
        assert!(is_within("anything", ""));
    }

    #[test]
    fn ancestors_stop_at_root() {
        assert_eq!(ancestors_within("", "a/b/c"), vec!["", "a", "a/b"]);
        assert_eq!(ancestors_within("a", "a/b/c"), vec!["a", "a/b"]);
        assert!(ancestors_within("a/b/c", "a/b/c").is_empty());
    }
}
