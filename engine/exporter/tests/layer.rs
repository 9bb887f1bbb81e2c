//! `write_layer` against trees made the way overlayfs makes them, and
//! against a real overlay mount.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use strata_exporter::layer::{LayerOptions, write_layer, write_layer_with};
use strata_llb::Digest;
use tar::EntryType;

/// Builds an upper dir with every kind of entry a layer can hold.
fn sample_upper(root: &Path) {
    write(&root.join("etc/hostname"), "box\n", 0o644);
    write(&root.join("bin/tool"), "#!/bin/sh\n", 0o4755);
    fs::hard_link(root.join("bin/tool"), root.join("bin/tool-link")).unwrap();
    symlink("tool", root.join("bin/alias")).unwrap();
    whiteout(&root.join("etc/removed"));
    fs::create_dir_all(root.join("var/cache")).unwrap();
    set_opaque(&root.join("var/cache"));
    write(&root.join("var/cache/new"), "fresh", 0o600);
    xattr::set(root.join("etc/hostname"), "user.origin", b"test").unwrap();
    nix::unistd::chown(
        &root.join("etc/hostname"),
        Some(1000.into()),
        Some(1001.into()),
    )
    .unwrap();
    for path in [
        "etc/hostname",
        "bin/tool",
        "var/cache/new",
        "etc",
        "bin",
        "var/cache",
        "var",
    ] {
        set_mtime(&root.join(path), 1_600_000_000);
    }
}

fn layer_bytes(dir: &Path, options: &LayerOptions) -> (Vec<u8>, strata_exporter::LayerDigests) {
    let mut out = Vec::new();
    let digests = write_layer_with(dir, &mut out, options).unwrap();
    (out, digests)
}

#[test]
fn layer_converts_whiteouts_and_opaque_dirs() {
    let dir = tempfile::tempdir().unwrap();
    sample_upper(dir.path());
    let (bytes, _) = layer_bytes(dir.path(), &LayerOptions::default());
    let entries = read_tar(&bytes, true);

    let whiteout = find(&entries, "etc/.wh.removed");
    assert_eq!(whiteout.kind, EntryType::Regular);
    assert!(whiteout.data.is_empty());
    assert!(!paths(&entries).contains(&"etc/removed"));

    let order = paths(&entries);
    let cache = order.iter().position(|p| *p == "var/cache").unwrap();
    assert_eq!(order[cache + 1], "var/cache/.wh..wh..opq");
    assert_eq!(order[cache + 2], "var/cache/new");
    assert!(
        find(&entries, "var/cache").xattrs.is_empty(),
        "overlay xattrs must not leak"
    );
}

#[test]
fn layer_keeps_links_owners_and_xattrs() {
    let dir = tempfile::tempdir().unwrap();
    sample_upper(dir.path());
    let (bytes, _) = layer_bytes(dir.path(), &LayerOptions::default());
    let entries = read_tar(&bytes, true);

    let tool = find(&entries, "bin/tool");
    assert_eq!(tool.kind, EntryType::Regular);
    assert_eq!(tool.mode, 0o4755);
    assert_eq!(tool.data, b"#!/bin/sh\n");
    let link = find(&entries, "bin/tool-link");
    assert_eq!(link.kind, EntryType::Link);
    assert_eq!(link.link.as_deref(), Some("bin/tool"));

    let alias = find(&entries, "bin/alias");
    assert_eq!(alias.kind, EntryType::Symlink);
    assert_eq!(alias.link.as_deref(), Some("tool"));

    let hostname = find(&entries, "etc/hostname");
    assert_eq!((hostname.uid, hostname.gid), (1000, 1001));
    assert_eq!(hostname.mtime, 1_600_000_000);
    assert_eq!(
        hostname.xattrs,
        vec![("user.origin".to_string(), b"test".to_vec())]
    );
}

#[test]
fn layer_entries_are_sorted() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["zeta", "alpha", "mid/b", "mid/a", "beta"] {
        write(&dir.path().join(name), name, 0o644);
    }
    let (bytes, _) = layer_bytes(dir.path(), &LayerOptions::default());
    let entries = read_tar(&bytes, true);
    assert_eq!(
        paths(&entries),
        ["alpha", "beta", "mid", "mid/a", "mid/b", "zeta"]
    );
}

#[test]
fn layer_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    sample_upper(dir.path());
    let (first_bytes, first) = layer_bytes(dir.path(), &LayerOptions::default());
    let (second_bytes, second) = layer_bytes(dir.path(), &LayerOptions::default());
    assert_eq!(first, second);
    assert_eq!(first_bytes, second_bytes);

    // The digests cover the bytes written, compressed and uncompressed.
    assert_eq!(first.blob, Digest::of_bytes(&first_bytes));
    assert_eq!(first.size, first_bytes.len() as u64);
    let mut tar = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&first_bytes[..]),
        &mut tar,
    )
    .unwrap();
    assert_eq!(first.diff_id, Digest::of_bytes(&tar));
    assert_eq!(first.uncompressed_size, tar.len() as u64);
}

#[test]
fn layer_clamps_mtimes() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("new"), "n", 0o644);
    write(&dir.path().join("old"), "o", 0o644);
    set_mtime(&dir.path().join("new"), 2_000_000_000);
    set_mtime(&dir.path().join("old"), 1_000);
    let options = LayerOptions {
        source_date_epoch: Some(1_700_000_000),
        ..LayerOptions::default()
    };
    let (bytes, _) = layer_bytes(dir.path(), &options);
    let entries = read_tar(&bytes, true);
    assert_eq!(find(&entries, "new").mtime, 1_700_000_000);
    assert_eq!(find(&entries, "old").mtime, 1_000);
}

#[test]
fn layer_of_missing_dir_fails() {
    let error = write_layer(Path::new("/nonexistent/strata"), Vec::new()).unwrap_err();
    assert!(
        format!("{error:#}").contains("/nonexistent/strata"),
        "{error:#}"
    );
}

#[test]
fn layer_of_real_overlay_upper() {
    let dir = tempfile::tempdir().unwrap();
    let (lower, upper, work, merged) = (
        dir.path().join("lower"),
        dir.path().join("upper"),
        dir.path().join("work"),
        dir.path().join("merged"),
    );
    write(&lower.join("keep"), "k", 0o644);
    write(&lower.join("gone"), "g", 0o644);
    write(&lower.join("dir/old"), "o", 0o644);
    for path in [&upper, &work, &merged] {
        fs::create_dir_all(path).unwrap();
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    run(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(&merged));

    // The kernel writes a whiteout for the removed file and marks the
    // recreated directory opaque.
    fs::remove_file(merged.join("gone")).unwrap();
    fs::remove_dir_all(merged.join("dir")).unwrap();
    fs::create_dir(merged.join("dir")).unwrap();
    write(&merged.join("dir/new"), "n", 0o644);
    run(Command::new("umount").arg(&merged));

    let (bytes, _) = layer_bytes(&upper, &LayerOptions::default());
    let entries = read_tar(&bytes, true);
    // Entries sort by their name in the upper dir, so `.wh.gone` sorts as `gone`.
    assert_eq!(
        paths(&entries),
        ["dir", "dir/.wh..wh..opq", "dir/new", ".wh.gone"]
    );
}
