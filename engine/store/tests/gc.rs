//! Disk usage, prune, leases, pinning and the recovery of an interrupted
//! collection, against a real store on disk.

mod common;

use common::tempdir;
use std::sync::Arc;
use std::time::Duration;
use strata_llb::Digest;
use strata_llb::image::ImageConfig;
use strata_store::filter::{parse_duration, parse_filter, parse_free_space};
use strata_store::gc::{FreeSpace, parse_size};
use strata_store::{KeepReason, PruneOptions, SnapshotKind, Store};

/// Commits a snapshot holding `size` bytes and ends this process's claim
/// on it, as a finished build would.
fn snapshot(store: &Arc<Store>, parent: Option<&str>, size: usize) -> String {
    let active = store.prepare(parent, SnapshotKind::Regular).unwrap();
    std::fs::write(active.upper.join("data"), vec![b'x'; size]).unwrap();
    let id = store.commit(active).unwrap();
    let lease = store.lease(None).unwrap();
    lease.add(&id).unwrap();
    lease.release().unwrap();
    id
}

fn ids(records: &[strata_store::CacheRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

fn prune_all() -> PruneOptions {
    PruneOptions {
        all: true,
        ..PruneOptions::default()
    }
}

#[test]
fn prune_deletes_chain_children_first() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let parent = snapshot(&store, None, 10);
    let child = snapshot(&store, Some(&parent), 20);
    store
        .cache_put(&Digest::of_bytes(b"k"), Some(&child))
        .unwrap();

    let report = store.prune(&prune_all()).unwrap();
    assert_eq!(ids(&report.deleted), vec![child.as_str(), parent.as_str()]);
    assert_eq!(report.reclaimed, 30);
    assert!(store.disk_usage().unwrap().is_empty());
    assert!(!dir.path().join("snapshots").join(&child).exists());
    assert!(!dir.path().join("snapshots").join(&parent).exists());
    assert_eq!(store.cache_get(&Digest::of_bytes(b"k")).unwrap(), None);
}

#[test]
fn lease_keeps_snapshot_and_parents() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let parent = snapshot(&store, None, 10);
    let child = snapshot(&store, Some(&parent), 10);
    let lease = store.lease(Some("build-1")).unwrap();
    lease.add(&child).unwrap();

    let report = store.prune(&prune_all()).unwrap();
    assert!(report.deleted.is_empty());
    let kept: Vec<_> = report.kept.iter().map(|k| k.kept.clone()).collect();
    assert!(matches!(kept[0], KeepReason::ParentOf(ref id) if *id == child));
    assert!(matches!(kept[1], KeepReason::InUse(_)));

    let usage = store.disk_usage().unwrap();
    assert_eq!(usage[1].builds, vec!["build-1".to_string()]);
    assert!(usage[0].shared);
    assert!(!usage[1].shared);

    lease.release().unwrap();
    assert_eq!(store.prune(&prune_all()).unwrap().deleted.len(), 2);
}

#[test]
fn claimed_snapshot_is_in_use() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let active = store.prepare(None, SnapshotKind::Regular).unwrap();
    let id = store.commit(active).unwrap();

    let report = store.prune(&prune_all()).unwrap();
    assert!(report.deleted.is_empty());
    assert!(matches!(report.kept[0].kept, KeepReason::InUse(_)));
    assert!(store.snapshot(&id).is_ok());
}

#[test]
fn active_child_keeps_parent() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let parent = snapshot(&store, None, 1);
    let active = store.prepare(Some(&parent), SnapshotKind::Regular).unwrap();

    assert!(store.prune(&prune_all()).unwrap().deleted.is_empty());
    store.abort(active).unwrap();
    assert_eq!(store.prune(&prune_all()).unwrap().deleted.len(), 1);
}

#[test]
fn pinned_record_survives_prune_all() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let parent = snapshot(&store, None, 1);
    let child = snapshot(&store, Some(&parent), 1);
    let full = store.set_pinned(&child[..8], true).unwrap();
    assert_eq!(full, child);

    let report = store.prune(&prune_all()).unwrap();
    assert!(report.deleted.is_empty());
    assert_eq!(report.kept[1].kept, KeepReason::Pinned);
    assert!(report.kept[1].kept.to_string().contains("pinned"));

    store.set_pinned(&child, false).unwrap();
    assert_eq!(store.prune(&prune_all()).unwrap().deleted.len(), 2);
}

#[test]
fn pin_rejects_unknown_and_invalid_ids() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let error = store.set_pinned("abcdef", true).unwrap_err().to_string();
    assert!(error.contains("No cache record `abcdef`"), "{error}");
    let error = store.set_pinned("xyz!", true).unwrap_err().to_string();
    assert!(error.contains("Invalid record id `xyz!`"), "{error}");
}

#[test]
fn image_keeps_layers_and_blobs() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let tar = dir.path().join("rootfs.tar");
    let data = common::TarBuilder::new().file("hello", b"hi").finish();
    std::fs::write(&tar, data).unwrap();
    let image = store
        .import_rootfs(&tar, "example.com/base:1", ImageConfig::default())
        .unwrap();

    let report = store.prune(&prune_all()).unwrap();
    assert!(report.deleted.is_empty());
    assert!(matches!(report.kept[0].kept, KeepReason::UsedByImage(_)));
    assert_eq!(report.blobs_deleted, 0);
    assert!(store.has_blob(&image.manifest));

    store.remove_image("example.com/base:1").unwrap();
    let without_all = store.prune(&PruneOptions::default()).unwrap();
    assert_eq!(without_all.kept[0].kept, KeepReason::LayerWithoutAll);

    // The blobs were written within the cutoff margin; back-date them.
    for entry in std::fs::read_dir(dir.path().join("content/sha256")).unwrap() {
        let old = filetime::FileTime::from_unix_time(1_000_000, 0);
        filetime::set_file_mtime(entry.unwrap().path(), old).unwrap();
    }
    let report = store.prune(&prune_all()).unwrap();
    assert_eq!(report.deleted.len(), 1);
    assert_eq!(report.blobs_deleted, 3);
    assert!(!store.has_blob(&image.manifest));
}

#[test]
fn keep_storage_deletes_least_used_first() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let old = snapshot(&store, None, 100);
    std::thread::sleep(Duration::from_millis(20));
    let busy = snapshot(&store, None, 100);
    let lease = store.lease(None).unwrap();
    for _ in 0..3 {
        lease.add(&busy).unwrap();
    }
    lease.release().unwrap();
    for _ in 0..3 {
        let again = store.lease(None).unwrap();
        again.add(&busy).unwrap();
    }

    let report = store
        .prune(&PruneOptions {
            all: true,
            keep_storage: Some(150),
            ..PruneOptions::default()
        })
        .unwrap();
    assert_eq!(ids(&report.deleted), vec![old.as_str()]);
    assert_eq!(report.kept[0].kept, KeepReason::UnderStorageLimit);
}

#[test]
fn keep_duration_and_filters_select() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let id = snapshot(&store, None, 1);

    let recent = PruneOptions {
        all: true,
        keep_duration: Some(Duration::from_secs(3600)),
        dry_run: true,
        ..PruneOptions::default()
    };
    let report = store.prune(&recent).unwrap();
    assert_eq!(report.kept[0].kept, KeepReason::WithinKeepDuration);

    let other_type = PruneOptions {
        all: true,
        filters: vec![parse_filter("type==source.local").unwrap()],
        ..PruneOptions::default()
    };
    let report = store.prune(&other_type).unwrap();
    assert_eq!(report.kept[0].kept, KeepReason::NotMatched);

    let dry = PruneOptions {
        all: true,
        filters: vec![parse_filter(&format!("id~={}", &id[..6])).unwrap()],
        dry_run: true,
        ..PruneOptions::default()
    };
    assert_eq!(store.prune(&dry).unwrap().deleted.len(), 1);
    assert!(store.snapshot(&id).is_ok(), "a dry run deletes nothing");
}

#[test]
fn interrupted_prune_recovers_whole_chain() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let parent = snapshot(&store, None, 1);
    let child = snapshot(&store, Some(&parent), 1);
    drop(store);

    // What a collector killed after marking its victims leaves behind.
    let db = rusqlite::Connection::open(dir.path().join("metadata.db")).unwrap();
    db.execute(
        "UPDATE snapshots SET state = 'active', owner_pid = 999999999",
        [],
    )
    .unwrap();
    drop(db);
    std::fs::remove_dir_all(dir.path().join("snapshots").join(&child)).unwrap();

    let store = Store::open(dir.path()).unwrap();
    assert!(store.disk_usage().unwrap().is_empty());
    assert!(!dir.path().join("snapshots").join(&parent).exists());
}

#[test]
fn parse_sizes_and_durations() {
    assert_eq!(parse_size("10GB").unwrap(), 10_000_000_000);
    assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
    assert_eq!(parse_size("1024").unwrap(), 1024);
    assert_eq!(parse_size("1.5kB").unwrap(), 1500);
    let error = parse_size("10XB").unwrap_err().to_string();
    assert!(error.contains("Invalid size `10XB`"), "{error}");

    assert_eq!(
        parse_duration("48h").unwrap(),
        Duration::from_secs(48 * 3600)
    );
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(
        parse_duration("7d").unwrap(),
        Duration::from_secs(7 * 86_400)
    );
    let error = parse_duration("soon").unwrap_err().to_string();
    assert!(error.contains("Invalid duration `soon`"), "{error}");
    assert!(parse_duration("30").is_err());

    assert_eq!(parse_free_space("10%").unwrap(), FreeSpace::Percent(10.0));
    assert_eq!(
        parse_free_space("1GB").unwrap(),
        FreeSpace::Bytes(1_000_000_000)
    );
    assert!(parse_free_space("120%").is_err());
}

#[test]
fn parse_filters_rejects_bad_input() {
    assert!(parse_filter("type==regular").is_ok());
    assert!(parse_filter("type!=layer").is_ok());
    assert!(parse_filter("until=24h").is_ok());
    assert!(parse_filter("inuse").is_ok());
    assert!(parse_filter("pinned=false").is_ok());
    let cases = [
        ("color=red", "unknown key `color`"),
        ("type==image", "unknown type `image`"),
        ("until=tomorrow", "Invalid duration"),
        ("inuse=maybe", "expected `true` or `false`"),
        ("type~=reg", "`~=` works with `id` only"),
    ];
    for (text, expected) in cases {
        let error = format!("{:#}", parse_filter(text).unwrap_err());
        assert!(error.contains(expected), "{text}: {error}");
        assert!(error.contains(&format!("`{text}`")), "{text}: {error}");
    }
}
