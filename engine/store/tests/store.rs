//! The content store, snapshots, cache records, images and the on-disk
//! layout version.

mod common;

use common::{TarBuilder, tempdir};
use std::fs;
use std::io::Write;
use strata_llb::Digest;
use strata_llb::image::ImageConfig;
use strata_store::{ImageRecord, LayerRecord, SnapshotKind, Store};

fn key(text: &str) -> Digest {
    Digest::of_bytes(text.as_bytes())
}

#[test]
fn blob_roundtrip_and_dedup() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let (digest, size) = store.write_blob(&mut &b"hello"[..]).unwrap();
    assert_eq!(digest, Digest::of_bytes(b"hello"));
    assert_eq!(size, 5);
    assert!(store.has_blob(&digest));
    assert_eq!(store.read_blob(&digest).unwrap(), b"hello");
    store.verify_blob(&digest).unwrap();

    let (again, _) = store.write_blob(&mut &b"hello"[..]).unwrap();
    assert_eq!(again, digest);
    assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    assert_eq!(
        fs::read_dir(dir.path().join("content/sha256"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn blob_writer_streams_and_cleans_up() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let mut writer = store.blob_writer().unwrap();
    writer.write_all(b"part one, ").unwrap();
    writer.write_all(b"part two").unwrap();
    let (digest, size) = writer.commit().unwrap();
    assert_eq!(digest, Digest::of_bytes(b"part one, part two"));
    assert_eq!(size, 18);

    let mut dropped = store.blob_writer().unwrap();
    dropped.write_all(b"never committed").unwrap();
    drop(dropped);
    assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);

    let mut wrong = store.blob_writer().unwrap();
    wrong.write_all(b"data").unwrap();
    assert!(wrong.commit_verified(&Digest::of_bytes(b"other")).is_err());
    assert!(!store.has_blob(&Digest::of_bytes(b"data")));
}

#[test]
fn verify_blob_detects_corruption() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let (digest, _) = store.write_blob(&mut &b"good"[..]).unwrap();
    fs::write(store.blob_path(&digest), "bad").unwrap();
    let error = store.verify_blob(&digest).unwrap_err().to_string();
    assert!(error.contains("is corrupt"), "{error}");
    let missing = store.read_blob(&key("missing")).unwrap_err().to_string();
    assert!(missing.contains("not found"), "{missing}");
}

#[test]
fn newer_layout_is_rejected() {
    let dir = tempdir();
    drop(Store::open(dir.path()).unwrap());
    assert_eq!(
        fs::read_to_string(dir.path().join("VERSION"))
            .unwrap()
            .trim(),
        "1"
    );
    fs::write(dir.path().join("VERSION"), "2\n").unwrap();
    let error = Store::open(dir.path()).err().unwrap().to_string();
    assert!(error.contains("layout version `2`"), "{error}");
}

#[test]
fn newer_schema_is_rejected() {
    let dir = tempdir();
    drop(Store::open(dir.path()).unwrap());
    let db = rusqlite::Connection::open(dir.path().join("metadata.db")).unwrap();
    db.execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    drop(db);
    let error = format!("{:#}", Store::open(dir.path()).err().unwrap());
    assert!(error.contains("schema version `99`"), "{error}");
}

#[test]
fn snapshot_chain_lowers() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let base = store.prepare(None, SnapshotKind::Layer).unwrap();
    assert!(base.lowers.is_empty());
    assert!(base.upper.is_dir());
    assert!(base.work.is_dir());
    fs::write(base.upper.join("a"), "12345").unwrap();
    let base_id = store.commit(base).unwrap();

    let child = store
        .prepare(Some(&base_id), SnapshotKind::Regular)
        .unwrap();
    assert_eq!(
        child.lowers,
        vec![dir.path().join("snapshots").join(&base_id).join("fs")]
    );
    let child_upper = child.upper.clone();
    let child_id = store.commit(child).unwrap();
    assert_eq!(
        store.lowers(&child_id).unwrap(),
        vec![child_upper, store.lowers(&base_id).unwrap()[0].clone()]
    );

    let info = store.snapshot(&base_id).unwrap();
    assert_eq!(info.size, 5);
    assert_eq!(info.kind, SnapshotKind::Layer);
    assert_eq!(
        store.snapshot(&child_id).unwrap().parent.as_deref(),
        Some(base_id.as_str())
    );
    assert!(
        !dir.path()
            .join("snapshots")
            .join(&base_id)
            .join("work")
            .exists()
    );
    assert_eq!(store.snapshots().unwrap().len(), 2);
}

#[test]
fn active_snapshot_is_not_usable() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let active = store.prepare(None, SnapshotKind::Regular).unwrap();
    let id = active.id.clone();
    assert!(
        store
            .lowers(&id)
            .unwrap_err()
            .to_string()
            .contains("still active")
    );
    assert!(store.snapshot(&id).is_err());
    assert!(store.cache_put(&key("k"), Some(&id)).is_err());
    store.abort(active).unwrap();
    assert!(!dir.path().join("snapshots").join(&id).exists());
    assert!(
        store
            .lowers(&id)
            .unwrap_err()
            .to_string()
            .contains("not found")
    );
}

#[test]
fn cache_records_count_uses() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let snapshot = store.prepare(None, SnapshotKind::Regular).unwrap();
    let id = store.commit(snapshot).unwrap();
    assert_eq!(store.cache_get(&key("a")).unwrap(), None);
    store.cache_put(&key("a"), Some(&id)).unwrap();
    store.cache_put(&key("empty"), None).unwrap();
    assert_eq!(store.cache_get(&key("a")).unwrap(), Some(Some(id.clone())));
    assert_eq!(store.cache_get(&key("a")).unwrap(), Some(Some(id)));
    assert_eq!(store.cache_get(&key("empty")).unwrap(), Some(None));

    let db = rusqlite::Connection::open(dir.path().join("metadata.db")).unwrap();
    let count: i64 = db
        .query_row(
            "SELECT use_count FROM cache_records WHERE key = ?1",
            [key("a").as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count, 2);
}

#[test]
fn import_rootfs_reuses_blob_and_snapshot() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let tar_path = dir.path().join("rootfs.tar");
    let tar = TarBuilder::new()
        .dir("bin/")
        .file("bin/sh", b"#!shell")
        .finish();
    fs::write(&tar_path, &tar).unwrap();
    let config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..Default::default()
    };

    let first = store
        .import_rootfs(&tar_path, "docker.io/library/test:1", config.clone())
        .unwrap();
    assert_eq!(first.layers.len(), 1);
    assert_eq!(first.layers[0].diff_id, Digest::of_bytes(&tar));
    assert_eq!(
        first.config.rootfs.diff_ids,
        vec![Digest::of_bytes(&tar).to_string()]
    );
    store.verify_blob(&first.layers[0].blob).unwrap();
    let snapshot = first.snapshot.clone().unwrap();
    let lowers = store.lowers(&snapshot).unwrap();
    assert_eq!(fs::read(lowers[0].join("bin/sh")).unwrap(), b"#!shell");
    assert_eq!(
        store.layer_of(&snapshot).unwrap().as_ref(),
        Some(&first.layers[0])
    );

    let manifest: serde_json::Value =
        serde_json::from_slice(&store.read_blob(&first.manifest).unwrap()).unwrap();
    assert_eq!(
        manifest["layers"][0]["digest"],
        first.layers[0].blob.as_str()
    );
    let config_digest: Digest = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let stored: ImageConfig =
        serde_json::from_slice(&store.read_blob(&config_digest).unwrap()).unwrap();
    assert_eq!(stored, first.config);

    let second = store
        .import_rootfs(&tar_path, "docker.io/library/test:2", config)
        .unwrap();
    assert_eq!(second.layers, first.layers);
    assert_eq!(second.snapshot, first.snapshot);
    assert_eq!(second.manifest, first.manifest);
    assert_eq!(store.snapshots().unwrap().len(), 1);
    let names: Vec<String> = store
        .images()
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(
        names,
        ["docker.io/library/test:1", "docker.io/library/test:2"]
    );
}

#[test]
fn image_put_get_remove() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let (manifest, _) = store.write_blob(&mut &b"{}"[..]).unwrap();
    let layer = LayerRecord {
        blob: key("blob"),
        diff_id: key("diff"),
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        size: 3,
    };
    let record = ImageRecord {
        name: "example.com/app:latest".into(),
        manifest,
        config: ImageConfig {
            os: "linux".into(),
            ..Default::default()
        },
        layers: vec![layer.clone()],
        snapshot: None,
        created: chrono::DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
    };
    store.put_image(&record).unwrap();
    let read = store.image("example.com/app:latest").unwrap().unwrap();
    assert_eq!(read.layers, vec![layer]);
    assert_eq!(read.config, record.config);
    assert_eq!(read.created, record.created);
    store.put_image(&record).unwrap();
    assert_eq!(store.images().unwrap().len(), 1);
    assert!(store.remove_image("example.com/app:latest").unwrap());
    assert!(!store.remove_image("example.com/app:latest").unwrap());
    assert!(store.image("example.com/app:latest").unwrap().is_none());
}

#[test]
fn open_removes_leftovers_of_dead_processes() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let live = store.prepare(None, SnapshotKind::Regular).unwrap();
    let dead = store.prepare(None, SnapshotKind::Regular).unwrap();
    let committed = store.prepare(None, SnapshotKind::Regular).unwrap();
    let committed = store.commit(committed).unwrap();
    store.cache_put(&key("kept"), Some(&committed)).unwrap();
    drop(store);

    // Pid 0x7fffffff never exists: pid_max is at most 2^22.
    let db = rusqlite::Connection::open(dir.path().join("metadata.db")).unwrap();
    db.execute(
        "UPDATE snapshots SET owner_pid = 2147483647 WHERE id = ?1",
        [&dead.id],
    )
    .unwrap();
    drop(db);
    fs::write(dir.path().join("tmp/2147483647-00"), "partial").unwrap();
    fs::write(
        dir.path().join(format!("tmp/{}-00", std::process::id())),
        "mine",
    )
    .unwrap();
    fs::create_dir_all(dir.path().join("snapshots/orphan/fs")).unwrap();

    let store = Store::open(dir.path()).unwrap();
    assert!(live.upper.is_dir());
    assert!(!dir.path().join("snapshots").join(&dead.id).exists());
    assert!(!dir.path().join("snapshots/orphan").exists());
    assert!(!dir.path().join("tmp/2147483647-00").exists());
    assert!(
        dir.path()
            .join(format!("tmp/{}-00", std::process::id()))
            .exists()
    );
    assert_eq!(
        store.cache_get(&key("kept")).unwrap(),
        Some(Some(committed.clone()))
    );
    store.commit(live).unwrap();

    // A committed snapshot whose files vanished takes its cache records along.
    drop(store);
    fs::remove_dir_all(dir.path().join("snapshots").join(&committed)).unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(store.snapshot(&committed).is_err());
    assert_eq!(store.cache_get(&key("kept")).unwrap(), None);
}

/// Two opens of one root stand in for two processes: each has its own
/// SQLite connection, so their writes contend through WAL and the busy
/// timeout rather than through the store's mutex.
#[test]
fn two_opens_write_concurrently() {
    let dir = tempdir();
    let stores = [
        Store::open(dir.path()).unwrap(),
        Store::open(dir.path()).unwrap(),
    ];
    std::thread::scope(|scope| {
        for (n, store) in stores.iter().enumerate() {
            scope.spawn(move || {
                for i in 0..40 {
                    let active = store.prepare(None, SnapshotKind::Regular).unwrap();
                    let id = store.commit(active).unwrap();
                    store
                        .cache_put(&key(&format!("{n} {i}")), Some(&id))
                        .unwrap();
                    store
                        .write_blob(&mut format!("{n} {i}").as_bytes())
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(stores[0].snapshots().unwrap().len(), 80);
    for n in 0..2 {
        for i in 0..40 {
            assert!(
                stores[1]
                    .cache_get(&key(&format!("{n} {i}")))
                    .unwrap()
                    .is_some(),
                "{n} {i}"
            );
        }
    }
}
