//! Dirty-path syncs against full walks, on real directories.

use super::{ContextSource, Entry, SyncRequest, index};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use strata_dockerfile::dockerignore::DockerIgnore;
use strata_llb::Digest;
use strata_store::Store;

struct Fixture {
    _store_dir: tempfile::TempDir,
    context: tempfile::TempDir,
    source: ContextSource,
    mirror: PathBuf,
    ignore: DockerIgnore,
}

impl Fixture {
    fn new(ignore: &str) -> Fixture {
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let context = tempfile::tempdir().unwrap();
        let dir = fs::canonicalize(context.path()).unwrap();
        let key = Digest::of_bytes(dir.as_os_str().as_encoded_bytes());
        let (_, mirror) = store.context_snapshot(key.hex()).unwrap();
        Fixture {
            _store_dir: store_dir,
            context,
            source: ContextSource::new(store),
            mirror,
            ignore: DockerIgnore::parse(ignore).unwrap(),
        }
    }

    fn dir(&self) -> &Path {
        self.context.path()
    }

    /// Returns a request to sync the whole context by walking it.
    fn whole_context(&self) -> SyncRequest<'_> {
        SyncRequest {
            dir: self.dir(),
            ignore: &self.ignore,
            follow_paths: &[],
            dirty: None,
            monitor: None,
        }
    }

    fn index_path(&self) -> PathBuf {
        index::path_of(&self.mirror)
    }

    /// Syncs and returns the stats and the index the sync wrote.
    fn sync(
        &self,
        follow: &[String],
        dirty: Option<&BTreeSet<String>>,
    ) -> (super::TransferStats, BTreeMap<String, Entry>) {
        let request = SyncRequest {
            dir: self.dir(),
            ignore: &self.ignore,
            follow_paths: follow,
            dirty,
            monitor: None,
        };
        let lease = self.source.sync(&request).unwrap();
        let stats = lease.stats.clone();
        drop(lease);
        (stats, index::read(&self.mirror).entries)
    }
}

fn write(dir: &Path, path: &str, content: &str) {
    let full = dir.join(path);
    fs::create_dir_all(full.parent().unwrap()).unwrap();
    fs::write(full, content).unwrap();
}

/// Every path under `dir` (files, links, directories), relative.
fn existing(dir: &Path, want_dirs: bool) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_dir() == want_dirs)
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Applies one random edit and returns the paths an inotify watcher
/// reports for it. A new directory is reported without its children,
/// as happens when files are created before the watch on it is added.
fn random_edit(dir: &Path, rng: &mut StdRng, serial: u32) -> Vec<String> {
    let files = existing(dir, false);
    let dirs = existing(dir, true);
    let parent = dirs.choose(rng).cloned().unwrap_or_default();
    let fresh = if parent.is_empty() {
        format!("new{serial}")
    } else {
        format!("{parent}/new{serial}")
    };
    match rng.random_range(0..9) {
        0 | 1 if !files.is_empty() => {
            let file = files.choose(rng).unwrap();
            let path = dir.join(file);
            if path.symlink_metadata().unwrap().is_symlink() {
                fs::remove_file(&path).unwrap();
            }
            fs::write(&path, format!("edit {serial}")).unwrap();
            vec![file.clone()]
        }
        2 => {
            write(dir, &fresh, "created");
            vec![fresh]
        }
        3 if !files.is_empty() => {
            let file = files.choose(rng).unwrap();
            fs::remove_file(dir.join(file)).unwrap();
            vec![file.clone()]
        }
        4 => {
            write(dir, &format!("{fresh}/a"), "a");
            write(dir, &format!("{fresh}/deep/b"), "b");
            vec![fresh]
        }
        5 if !dirs.is_empty() => {
            let victim = dirs.choose(rng).unwrap();
            fs::remove_dir_all(dir.join(victim)).unwrap();
            vec![victim.clone()]
        }
        6 if !files.is_empty() => {
            let file = files.choose(rng).unwrap();
            fs::rename(dir.join(file), dir.join(&fresh)).unwrap();
            vec![file.clone(), fresh]
        }
        7 if !files.is_empty() => {
            let file = files.choose(rng).unwrap();
            let path = dir.join(file);
            if !path.symlink_metadata().unwrap().is_symlink() {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            }
            vec![file.clone()]
        }
        8 if !dirs.is_empty() => {
            let from = dirs.choose(rng).unwrap();
            if fresh.starts_with(&format!("{from}/")) {
                return Vec::new();
            }
            fs::rename(dir.join(from), dir.join(&fresh)).unwrap();
            vec![from.clone(), fresh]
        }
        _ => {
            std::os::unix::fs::symlink("target", dir.join(&fresh)).unwrap();
            vec![fresh]
        }
    }
}

fn seed_tree(dir: &Path) {
    for path in [
        "Dockerfile",
        "src/main.c",
        "src/lib/util.c",
        "src/lib/util.h",
        "docs/readme.md",
        "logs/run.log",
        "build/skip-me.o",
        "build/keep.txt",
        "assets/a.png",
        "assets/b.png",
    ] {
        write(dir, path, path);
    }
}

/// Random edits, each followed by a dirty sync and a full sync: the full
/// sync must find nothing to do and the same index.
fn check_random_edits(seed: u64, follow: &[String]) {
    let fixture = Fixture::new("logs\nbuild/*\n!build/keep.txt\n");
    seed_tree(fixture.dir());
    fixture.sync(follow, None);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut serial = 0;
    for round in 0..25 {
        let mut dirty = BTreeSet::new();
        for _ in 0..rng.random_range(1..4) {
            serial += 1;
            dirty.extend(random_edit(fixture.dir(), &mut rng, serial));
        }
        let (dirty_stats, dirty_index) = fixture.sync(follow, Some(&dirty));
        let (full_stats, full_index) = fixture.sync(follow, None);
        assert_eq!(
            dirty_index, full_index,
            "seed {seed}, round {round}: dirty sync of {dirty:?} differs from a full walk"
        );
        assert!(
            !dirty_stats.full_walk || dirty_stats.walked > 0,
            "seed {seed}, round {round}: {dirty_stats:?}"
        );
        assert_eq!(
            full_stats.copied_files, 0,
            "seed {seed}, round {round}: full sync copied after a dirty sync of {dirty:?}"
        );
        assert_eq!(
            full_stats.removed, 0,
            "seed {seed}, round {round}: full sync removed after a dirty sync of {dirty:?}"
        );
    }
}

#[test]
fn dirty_sync_equals_full_walk() {
    for seed in 0..12 {
        check_random_edits(seed, &[]);
    }
}

#[test]
fn dirty_sync_equals_full_walk_with_follow_paths() {
    let follow = vec!["src".to_string(), "build".to_string(), "Dockerfile".into()];
    for seed in 100..108 {
        check_random_edits(seed, &follow);
    }
}

#[test]
fn dirty_sync_reads_only_dirty_paths() {
    let fixture = Fixture::new("");
    for index in 0..200 {
        write(fixture.dir(), &format!("files/f{index}"), "x");
    }
    fixture.sync(&[], None);
    write(fixture.dir(), "files/f7", "changed");
    let dirty = BTreeSet::from(["files/f7".to_string()]);
    let (stats, _) = fixture.sync(&[], Some(&dirty));
    assert!(!stats.full_walk);
    assert_eq!(stats.copied_files, 1);
    assert_eq!(stats.changed_paths, vec!["files/f7"]);
    assert!(stats.walked < 10, "walked {} entries", stats.walked);
}

#[test]
fn dirty_sync_walks_all_when_scope_changes() {
    let fixture = Fixture::new("");
    write(fixture.dir(), "a/one", "1");
    write(fixture.dir(), "b/two", "2");
    fixture.sync(&["a".into()], None);
    let dirty = BTreeSet::from(["a/one".to_string()]);
    let (stats, index) = fixture.sync(&["a".into(), "b".into()], Some(&dirty));
    assert!(stats.full_walk, "a changed scope must walk everything");
    assert!(index.contains_key("b/two"));
}

#[test]
fn dirty_sync_ignores_paths_outside_follow_roots() {
    let fixture = Fixture::new("");
    write(fixture.dir(), "a/one", "1");
    write(fixture.dir(), "b/two", "2");
    fixture.sync(&["a".into()], None);
    write(fixture.dir(), "b/two", "changed");
    let dirty = BTreeSet::from(["b/two".to_string()]);
    let (stats, index) = fixture.sync(&["a".into()], Some(&dirty));
    assert!(!stats.full_walk);
    assert_eq!(stats.copied_files, 0);
    assert!(!index.contains_key("b/two"));
}

#[test]
fn old_index_format_is_read_without_scope() {
    let fixture = Fixture::new("");
    write(fixture.dir(), "a", "1");
    let (_, entries) = fixture.sync(&[], None);
    fs::remove_file(fixture.index_path()).unwrap();
    let json = fixture.mirror.with_extension("index.json");
    fs::write(&json, serde_json::to_vec(&entries).unwrap()).unwrap();
    let dirty = BTreeSet::from(["a".to_string()]);
    let (stats, index) = fixture.sync(&[], Some(&dirty));
    assert!(
        stats.full_walk,
        "an index without a scope must not be trusted"
    );
    assert_eq!(stats.copied_files, 0, "old entries were dropped");
    assert_eq!(index, entries);
    assert!(!json.exists(), "the JSON index was left beside the new one");
}

#[test]
fn json_index_with_scope_is_reused() {
    let fixture = Fixture::new("");
    write(fixture.dir(), "a", "1");
    write(fixture.dir(), "d/b", "2");
    let (_, entries) = fixture.sync(&[], None);
    let old = index::read(&fixture.mirror);
    fs::remove_file(fixture.index_path()).unwrap();
    let json = serde_json::json!({ "scope": old.scope, "entries": entries, "marked": true });
    let json_path = fixture.mirror.with_extension("index.json");
    fs::write(&json_path, serde_json::to_vec(&json).unwrap()).unwrap();
    let dirty = BTreeSet::from(["a".to_string()]);
    let (stats, index) = fixture.sync(&[], Some(&dirty));
    assert!(!stats.full_walk, "the JSON index's scope was not kept");
    assert_eq!(stats.copied_files, 0);
    assert_eq!(index, entries);
    assert!(fixture.index_path().exists());
    assert!(!json_path.exists());
}

#[test]
fn unreadable_index_copies_everything_again() {
    let fixture = Fixture::new("");
    write(fixture.dir(), "a", "1");
    let (_, entries) = fixture.sync(&[], None);
    let mut bytes = fs::read(fixture.index_path()).unwrap();
    bytes.truncate(bytes.len() / 2);
    fs::write(fixture.index_path(), &bytes).unwrap();
    let (stats, index) = fixture.sync(&[], None);
    assert_eq!(stats.copied_files, 1);
    assert_eq!(index, entries);
}

#[test]
fn stored_checksum_matches_a_fresh_one() {
    let fixture = Fixture::new("");
    write(fixture.dir(), "a", "1");
    write(fixture.dir(), "d/b", "2");
    let request = fixture.whole_context();
    // Each lease is dropped at once: it holds the mirror's lock.
    let sync = || {
        let lease = fixture.source.sync(&request).unwrap();
        (lease.checksum.clone(), super::checksum(&lease.index))
    };
    let (first, _) = sync();
    // The second sync changes nothing and takes the checksum from the index.
    let (second, fresh) = sync();
    assert_eq!(second, first);
    assert_eq!(second, fresh);
    write(fixture.dir(), "d/b", "3");
    let (third, fresh) = sync();
    assert_ne!(third, first);
    assert_eq!(third, fresh);
}

#[test]
fn unchanged_sync_keeps_index_file() {
    let fixture = Fixture::new("");
    write(fixture.dir(), "a", "1");
    fixture.sync(&[], None);
    let before = fs::metadata(fixture.index_path()).unwrap();
    let (stats, _) = fixture.sync(&[], None);
    let after = fs::metadata(fixture.index_path()).unwrap();
    assert_eq!(stats.copied_files, 0);
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&before),
        std::os::unix::fs::MetadataExt::ino(&after),
        "a sync that changed nothing rewrote the index"
    );
    let marker = fixture.mirror.with_extension("syncing");
    assert!(!marker.exists());
}

#[test]
fn interrupted_sync_checks_mirror_files() {
    let fixture = Fixture::new("");
    write(fixture.dir(), "a", "1");
    write(fixture.dir(), "b", "2");
    fixture.sync(&[], None);
    let mirror = fixture.mirror.clone();
    let marker = mirror.with_extension("syncing");
    // A sync killed after removing a mirror file but before writing the
    // index leaves its marker and an index that still lists the file.
    fs::remove_file(mirror.join("a")).unwrap();
    fs::write(&marker, "").unwrap();
    let (stats, _) = fixture.sync(&[], None);
    assert_eq!(stats.copied_files, 1);
    assert_eq!(fs::read_to_string(mirror.join("a")).unwrap(), "1");
    assert!(!marker.exists());
}

#[test]
fn interrupted_sync_restores_attributes_and_drops_strays() {
    let fixture = Fixture::new("");
    write(fixture.dir(), "a", "1");
    fixture.sync(&[], None);
    let mirror = fixture.mirror.clone();
    // A killed sync that had already replaced `a` with a chmod'ed copy and
    // created a directory the context no longer has, before the index.
    fs::set_permissions(mirror.join("a"), fs::Permissions::from_mode(0o744)).unwrap();
    fs::create_dir_all(mirror.join("gone/deep")).unwrap();
    fs::write(mirror.join("gone/deep/f"), "x").unwrap();
    fs::write(mirror.with_extension("syncing"), "").unwrap();
    let (stats, index) = fixture.sync(&[], None);
    assert_eq!(stats.copied_files, 1, "the changed copy was kept");
    let mode = fs::metadata(mirror.join("a")).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, index["a"].mode);
    assert!(!mirror.join("gone").exists(), "a stray directory was kept");
}

#[test]
fn dirty_write_through_a_hard_link_walks_everything() {
    let fixture = Fixture::new("");
    write(fixture.dir(), "a", "1");
    fs::hard_link(fixture.dir().join("a"), fixture.dir().join("b")).unwrap();
    fixture.sync(&[], None);
    // Writing through `b` changes `a` too, but a watcher reports only `b`.
    fs::write(fixture.dir().join("b"), "2").unwrap();
    let dirty = BTreeSet::from(["b".to_string()]);
    let (stats, _) = fixture.sync(&[], Some(&dirty));
    assert!(stats.full_walk, "a linked file's other names were trusted");
    assert_eq!(fs::read_to_string(fixture.mirror.join("a")).unwrap(), "2");
}

#[test]
fn temp_names_never_collide_with_context_files() {
    let fixture = Fixture::new("");
    write(fixture.dir(), ".strata-tmp-foo", "keep me");
    write(fixture.dir(), "foo", "foo v1");
    fixture.sync(&[], None);
    let mirror = fixture.mirror.clone();
    assert_eq!(
        fs::read_to_string(mirror.join(".strata-tmp-foo")).unwrap(),
        "keep me"
    );
    assert_eq!(fs::read_to_string(mirror.join("foo")).unwrap(), "foo v1");
    // Nothing but the context's own files is ever inside the mirror.
    let mut files = existing(&mirror, false);
    files.sort();
    assert_eq!(files, [".strata-tmp-foo", "foo"]);
}

#[test]
fn interrupted_sync_leaves_no_partial_file() {
    let fixture = Fixture::new("");
    write(fixture.dir(), "a", "1");
    fixture.sync(&[], None);
    let mirror = fixture.mirror.clone();
    // A sync killed in the middle of a copy leaves its marker and a
    // partial temporary file beside the mirror.
    let temp = mirror.with_extension("tmp");
    fs::create_dir_all(&temp).unwrap();
    fs::write(temp.join("partial"), "half").unwrap();
    fs::write(mirror.with_extension("syncing"), "").unwrap();
    fixture.sync(&[], None);
    assert!(!temp.join("partial").exists());
    assert_eq!(existing(&mirror, false), ["a"]);
}

#[test]
fn mirror_keeps_file_mtimes() {
    let fixture = Fixture::new("");
    write(fixture.dir(), "old", "x");
    let time = filetime::FileTime::from_unix_time(1_577_934_245, 0);
    filetime::set_file_mtime(fixture.dir().join("old"), time).unwrap();
    fixture.sync(&[], None);
    let mirror = fixture.mirror.clone();
    let metadata = fs::metadata(mirror.join("old")).unwrap();
    assert_eq!(
        filetime::FileTime::from_last_modification_time(&metadata),
        time
    );
}

#[test]
fn non_utf8_names_are_refused() {
    use std::os::unix::ffi::OsStrExt;
    let fixture = Fixture::new("skip*\n");
    write(fixture.dir(), "a", "1");
    let bad = std::ffi::OsStr::from_bytes(b"bad\xff");
    fs::write(fixture.dir().join(bad), "x").unwrap();
    let request = fixture.whole_context();
    let error = format!("{:#}", fixture.source.sync(&request).err().unwrap());
    assert!(
        error.contains("not valid UTF-8") && error.contains("bad"),
        "{error}"
    );
    // An excluded one is never read, so it is no error.
    fs::remove_file(fixture.dir().join(bad)).unwrap();
    fs::write(
        fixture.dir().join(std::ffi::OsStr::from_bytes(b"skip\xff")),
        "x",
    )
    .unwrap();
    assert!(fixture.source.sync(&request).is_ok());
}
