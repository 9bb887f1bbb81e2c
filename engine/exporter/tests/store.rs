//! Store-level exports: layer caching, round trips through the store's
//! `apply_layer`, and every output type.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::process::Command;
use std::sync::Arc;
use strata_exporter::{ExportProgress, OutputSpec, export, image_layers, store_image, write_layer};
use strata_llb::image::{ContainerConfig, ImageConfig};
use strata_store::{LayerRecord, SnapshotKind, Store, apply_layer, decompress_layer};

fn open_store() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("root")).unwrap();
    (dir, store)
}

/// Commits a base snapshot and a child that deletes, replaces and adds
/// files, and returns (base, child).
fn two_snapshots(store: &Store) -> (String, String) {
    let base = store.prepare(None, SnapshotKind::Regular).unwrap();
    write(&base.upper.join("etc/motd"), "hello", 0o644);
    write(&base.upper.join("etc/old"), "old", 0o644);
    write(&base.upper.join("cache/a"), "a", 0o644);
    let base_id = store.commit(base).unwrap();

    let child = store
        .prepare(Some(&base_id), SnapshotKind::Regular)
        .unwrap();
    fs::create_dir_all(child.upper.join("etc")).unwrap();
    whiteout(&child.upper.join("etc/old"));
    fs::create_dir_all(child.upper.join("cache")).unwrap();
    set_opaque(&child.upper.join("cache"));
    write(&child.upper.join("cache/b"), "b", 0o644);
    write(&child.upper.join("app/run"), "run", 0o755);
    let child_id = store.commit(child).unwrap();
    (base_id, child_id)
}

fn config() -> ImageConfig {
    ImageConfig {
        config: ContainerConfig {
            cmd: Some(vec!["/app/run".into()]),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn whiteout_round_trip_through_apply_layer() {
    let (dir, store) = open_store();
    let (_, child) = two_snapshots(&store);
    let upper = store.lowers(&child).unwrap().remove(0);

    let mut blob = Vec::new();
    let first = write_layer(&upper, &mut blob).unwrap();
    let unpacked = dir.path().join("unpacked");
    fs::create_dir(&unpacked).unwrap();
    let stats = apply_layer(decompress_layer(&blob[..]).unwrap(), &unpacked).unwrap();
    assert_eq!(stats.whiteouts, 1);
    assert_eq!(stats.opaque_dirs, 1);

    let whiteout = fs::symlink_metadata(unpacked.join("etc/old")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &whiteout.file_type()
    ));
    let opaque = xattr::get(unpacked.join("cache"), "trusted.overlay.opaque").unwrap();
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    assert_eq!(fs::read_to_string(unpacked.join("cache/b")).unwrap(), "b");

    // Unpacking and packing again gives the same tar.
    let second = write_layer(&unpacked, Vec::new()).unwrap();
    assert_eq!(second.diff_id, first.diff_id);
}

#[test]
fn image_layers_are_cached() {
    let (_dir, store) = open_store();
    let (base, child) = two_snapshots(&store);

    let layers = image_layers(&store, Some(&child)).unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(store.layer_of(&base).unwrap().as_ref(), Some(&layers[0]));
    assert_eq!(store.layer_of(&child).unwrap().as_ref(), Some(&layers[1]));
    for layer in &layers {
        store.verify_blob(&layer.blob).unwrap();
        assert_eq!(
            fs::metadata(store.blob_path(&layer.blob)).unwrap().len(),
            layer.size
        );
    }
    assert_eq!(image_layers(&store, Some(&child)).unwrap(), layers);
    assert!(image_layers(&store, None).unwrap().is_empty());
}

#[test]
fn image_layers_keep_existing_records() {
    let (_dir, store) = open_store();
    let (base, child) = two_snapshots(&store);

    // A record such as an image pull leaves; it must be used as is.
    let (blob, size) = store.write_blob(&mut &b"imported layer blob"[..]).unwrap();
    let imported = LayerRecord {
        blob,
        diff_id: strata_llb::Digest::of_bytes(b"imported diff"),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        size,
    };
    store.set_layer(&base, &imported).unwrap();

    let mut events = Vec::new();
    let layers =
        strata_exporter::image_layers_with(&store, Some(&child), &Default::default(), &mut |e| {
            events.push(e)
        })
        .unwrap();
    assert_eq!(layers[0], imported);
    // The new layer reports its compressed bytes, ending at its full size.
    let written: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            ExportProgress::LayerWritten { snapshot, bytes } if *snapshot == child => Some(*bytes),
            _ => None,
        })
        .collect();
    assert_eq!(written.last(), Some(&layers[1].size), "{events:?}");
    let started: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ExportProgress::LayerStarted { snapshot } => Some(snapshot.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(started, vec![child]);
}

#[test]
fn export_oci_and_docker_archives() {
    let (dir, store) = open_store();
    let (_, child) = two_snapshots(&store);

    let oci = dir.path().join("image.oci.tar");
    let spec = OutputSpec::parse(&format!("type=oci,dest={},name=app:1", oci.display())).unwrap();
    let mut events = Vec::new();
    let report = export(&store, Some(&child), &config(), &spec, &mut |e| {
        events.push(e)
    })
    .unwrap();
    assert_eq!(report.layers, 2);
    assert_eq!(report.bytes, fs::metadata(&oci).unwrap().len());
    assert_eq!(
        events.last(),
        Some(&ExportProgress::Written {
            bytes: report.bytes
        })
    );

    let target = format!("oci-archive:{}", oci.display());
    let inspect: Value =
        serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &target]))).unwrap();
    assert_eq!(
        inspect["Digest"],
        report.manifest.as_ref().unwrap().to_string()
    );
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);

    let docker = dir.path().join("image.tar");
    let spec = OutputSpec::parse(&format!("type=docker,dest={}", docker.display())).unwrap();
    let docker_report = export(&store, Some(&child), &config(), &spec, &mut |_| {}).unwrap();
    let entries = read_tar(&fs::read(&docker).unwrap(), false);
    let manifest: Value = serde_json::from_slice(&find(&entries, "manifest.json").data).unwrap();
    assert_eq!(manifest[0]["Layers"].as_array().unwrap().len(), 2);
    let config_hex = docker_report.config.unwrap().hex().to_string();
    assert_eq!(manifest[0]["Config"], format!("blobs/sha256/{config_hex}"));
}

#[test]
fn export_local_and_tar() {
    let (dir, store) = open_store();
    let (_, child) = two_snapshots(&store);

    let local = dir.path().join("rootfs");
    let spec = OutputSpec::parse(&format!("type=local,dest={}", local.display())).unwrap();
    export(&store, Some(&child), &config(), &spec, &mut |_| {}).unwrap();
    assert_eq!(fs::read_to_string(local.join("etc/motd")).unwrap(), "hello");
    assert!(!local.join("etc/old").exists());
    assert!(!local.join("cache/a").exists());
    assert!(local.join("cache/b").exists());

    let tar_path = dir.path().join("rootfs.tar");
    let spec = OutputSpec::parse(&format!("type=tar,dest={}", tar_path.display())).unwrap();
    let report = export(&store, Some(&child), &config(), &spec, &mut |_| {}).unwrap();
    assert_eq!(report.manifest, None);
    let entries = read_tar(&fs::read(&tar_path).unwrap(), false);
    assert_eq!(
        paths(&entries),
        ["app", "app/run", "cache", "cache/b", "etc", "etc/motd"]
    );
}

#[test]
fn store_image_records_name_and_blobs() {
    let (_dir, store) = open_store();
    let (_, child) = two_snapshots(&store);

    let record = store_image(&store, Some(&child), &config(), "app:dev").unwrap();
    assert_eq!(record.name, "docker.io/library/app:dev");
    assert_eq!(record.layers.len(), 2);
    assert!(store.has_blob(&record.manifest));
    assert_eq!(record.config.rootfs.diff_ids.len(), 2);

    let stored = store
        .image("docker.io/library/app:dev")
        .unwrap()
        .expect("image stored");
    assert_eq!(stored.manifest, record.manifest);
    assert_eq!(stored.snapshot.as_deref(), Some(child.as_str()));

    let spec = OutputSpec::parse("type=image,name=app:other").unwrap();
    let report = export(&store, Some(&child), &config(), &spec, &mut |_| {}).unwrap();
    assert!(store.has_blob(report.config.as_ref().unwrap()));
    assert!(
        store
            .image("docker.io/library/app:other")
            .unwrap()
            .is_some()
    );
}
