//! `apply_layer` against crafted tars: whiteouts, and every way a hostile
//! layer could try to write outside its destination.

mod common;

use common::{TarBuilder, tempdir, tree};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use strata_store::{apply_layer, decompress_layer};
use tar::EntryType;

/// A destination dir and a sibling `outside` dir that no layer may touch.
struct Fixture {
    _base: tempfile::TempDir,
    dest: PathBuf,
    outside: PathBuf,
}

fn fixture() -> Fixture {
    let base = tempdir();
    let dest = base.path().join("dest");
    let outside = base.path().join("outside");
    fs::create_dir(&dest).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("target"), "original").unwrap();
    Fixture {
        dest,
        outside,
        _base: base,
    }
}

fn assert_outside_untouched(fx: &Fixture) {
    assert_eq!(tree(&fx.outside), vec!["target".to_string()]);
    assert_eq!(
        fs::read_to_string(fx.outside.join("target")).unwrap(),
        "original"
    );
}

#[test]
fn layer_unpacks_files_dirs_links() {
    let fx = fixture();
    let tar = TarBuilder::new()
        .dir("etc/")
        .file("etc/hosts", b"127.0.0.1 localhost\n")
        .symlink("etc/link", "/etc/hosts")
        .hardlink("etc/hard", "etc/hosts")
        .file("./usr/bin/tool", b"#!/bin/sh\n")
        .finish();
    let stats = apply_layer(tar.as_slice(), &fx.dest).unwrap();
    assert_eq!(stats.files, 2);
    assert_eq!(stats.dirs, 1);
    assert_eq!(stats.symlinks, 1);
    assert_eq!(stats.hardlinks, 1);
    assert_eq!(
        fs::read_to_string(fx.dest.join("etc/hosts")).unwrap(),
        "127.0.0.1 localhost\n"
    );
    assert_eq!(
        fs::read_link(fx.dest.join("etc/link")).unwrap(),
        Path::new("/etc/hosts")
    );
    let hosts = fs::metadata(fx.dest.join("etc/hosts")).unwrap();
    assert_eq!(
        fs::metadata(fx.dest.join("etc/hard")).unwrap().ino(),
        hosts.ino()
    );
    assert_eq!(hosts.mode() & 0o7777, 0o644);
    assert_eq!(hosts.mtime(), 1_700_000_000);
    assert_eq!(
        fs::metadata(fx.dest.join("etc")).unwrap().mtime(),
        1_700_000_000
    );
    assert!(fx.dest.join("usr/bin").is_dir());
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let fx = fixture();
    let tar = TarBuilder::new()
        .file(".wh.gone", b"")
        .dir("dir/")
        .file("dir/.wh..wh..opq", b"")
        .file("dir/new", b"new")
        .finish();
    let stats = apply_layer(tar.as_slice(), &fx.dest).unwrap();
    assert_eq!(stats.whiteouts, 1);
    assert_eq!(stats.opaque_dirs, 1);
    let gone = fs::symlink_metadata(fx.dest.join("gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    let opaque = xattr::get(fx.dest.join("dir"), "trusted.overlay.opaque").unwrap();
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    assert!(!fx.dest.join(".wh.gone").exists());
    assert!(!fx.dest.join("dir/.wh..wh..opq").exists());
}

/// Mounts the unpacked layer over a lower dir with real overlayfs and
/// checks that the whiteout and the opaque dir hide the lower files.
#[test]
fn whiteouts_hide_lower_files_in_overlay() {
    let base = tempdir();
    let (lower, upper, work, merged) = (
        base.path().join("lower"),
        base.path().join("upper"),
        base.path().join("work"),
        base.path().join("merged"),
    );
    for dir in [&lower, &upper, &work, &merged] {
        fs::create_dir(dir).unwrap();
    }
    fs::write(lower.join("gone"), "old").unwrap();
    fs::write(lower.join("kept"), "kept").unwrap();
    fs::create_dir(lower.join("dir")).unwrap();
    fs::write(lower.join("dir/old"), "old").unwrap();
    let tar = TarBuilder::new()
        .file(".wh.gone", b"")
        .dir("dir/")
        .file("dir/.wh..wh..opq", b"")
        .file("dir/new", b"new")
        .finish();
    apply_layer(tar.as_slice(), &upper).unwrap();

    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(options.as_str()),
    )
    .expect("mount overlayfs (the tests run as root)");
    let seen = tree(&merged);
    nix::mount::umount(&merged).unwrap();
    assert_eq!(seen, vec!["dir", "dir/new", "kept"]);
}

#[test]
fn dotdot_entry_is_rejected() {
    let fx = fixture();
    let tar = TarBuilder::new().file("../outside/pwned", b"x").finish();
    let error = apply_layer(tar.as_slice(), &fx.dest).unwrap_err();
    assert!(format!("{error:#}").contains("contains `..`"), "{error:#}");
    assert_outside_untouched(&fx);
}

#[test]
fn absolute_entry_stays_inside() {
    let fx = fixture();
    let absolute = format!("{}/pwned", fx.outside.display());
    let tar = TarBuilder::new().file(&absolute, b"x").finish();
    apply_layer(tar.as_slice(), &fx.dest).unwrap();
    assert_outside_untouched(&fx);
    assert!(fx.dest.join(absolute.trim_start_matches('/')).is_file());
}

#[test]
fn relative_symlink_parent_stays_inside() {
    let fx = fixture();
    let tar = TarBuilder::new()
        .symlink("escape", "../../../../../outside")
        .file("escape/pwned", b"x")
        .finish();
    apply_layer(tar.as_slice(), &fx.dest).unwrap();
    assert_outside_untouched(&fx);
    assert!(fx.dest.join("outside/pwned").is_file());
}

#[test]
fn absolute_symlink_parent_stays_inside() {
    let fx = fixture();
    let tar = TarBuilder::new()
        .symlink("escape", &fx.outside.display().to_string())
        .file("escape/pwned", b"x")
        .finish();
    apply_layer(tar.as_slice(), &fx.dest).unwrap();
    assert_outside_untouched(&fx);
    let inside = fx
        .dest
        .join(fx.outside.strip_prefix("/").unwrap())
        .join("pwned");
    assert!(inside.is_file());
}

#[test]
fn file_replaces_symlink_not_target() {
    let fx = fixture();
    let target = fx.outside.join("target").display().to_string();
    let tar = TarBuilder::new()
        .symlink("link", &target)
        .file("link", b"overwritten")
        .symlink("dirlink", &fx.outside.display().to_string())
        .dir("dirlink/")
        .finish();
    apply_layer(tar.as_slice(), &fx.dest).unwrap();
    assert_outside_untouched(&fx);
    assert_eq!(
        fs::read_to_string(fx.dest.join("link")).unwrap(),
        "overwritten"
    );
    assert!(
        fs::symlink_metadata(fx.dest.join("dirlink"))
            .unwrap()
            .is_dir()
    );
}

#[test]
fn hardlink_out_of_root_is_rejected() {
    for target in ["../outside/target", "/etc/passwd", "escape/target"] {
        let fx = fixture();
        let tar = TarBuilder::new()
            .symlink("escape", &fx.outside.display().to_string())
            .hardlink("stolen", target)
            .finish();
        let error = apply_layer(tar.as_slice(), &fx.dest).unwrap_err();
        assert!(
            format!("{error:#}").contains("stolen"),
            "{target}: {error:#}"
        );
        assert!(!fx.dest.join("stolen").exists(), "{target}");
        assert_eq!(
            fs::metadata(fx.outside.join("target")).unwrap().nlink(),
            1,
            "{target}"
        );
        assert_outside_untouched(&fx);
    }
}

#[test]
fn device_nodes_are_skipped() {
    let fx = fixture();
    let tar = TarBuilder::new()
        .entry("dev/null", EntryType::Char, None, b"", 0o666)
        .entry("dev/sda", EntryType::Block, None, b"", 0o660)
        .entry("pipe", EntryType::Fifo, None, b"", 0o644)
        .finish();
    let stats = apply_layer(tar.as_slice(), &fx.dest).unwrap();
    assert_eq!(stats.skipped_devices, 2);
    assert!(!fx.dest.join("dev/null").exists());
    assert!(!fx.dest.join("dev/sda").exists());
    assert!(
        fs::symlink_metadata(fx.dest.join("pipe"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[test]
fn symlink_loop_is_rejected() {
    let fx = fixture();
    let tar = TarBuilder::new()
        .symlink("a", "b")
        .symlink("b", "a")
        .file("a/x", b"x")
        .finish();
    let error = apply_layer(tar.as_slice(), &fx.dest).unwrap_err();
    assert!(
        format!("{error:#}").contains("Too many levels of symlinks"),
        "{error:#}"
    );
}

#[test]
fn file_as_parent_is_rejected() {
    let fx = fixture();
    let tar = TarBuilder::new().file("f", b"x").file("f/x", b"y").finish();
    let error = apply_layer(tar.as_slice(), &fx.dest).unwrap_err();
    assert!(
        format!("{error:#}").contains("is not a directory"),
        "{error:#}"
    );
}

#[test]
fn whiteout_of_parent_is_rejected() {
    let fx = fixture();
    fs::write(fx.dest.join("keep"), "x").unwrap();
    let tar = TarBuilder::new().file(".wh.", b"").finish();
    assert!(apply_layer(tar.as_slice(), &fx.dest).is_err());
    assert!(fx.dest.join("keep").is_file());
}

#[test]
fn compressed_layers_are_sniffed() {
    let tar = TarBuilder::new().file("hello", b"world").finish();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&tar).unwrap();
    let gzip = gzip.finish().unwrap();
    let zstd = zstd::encode_all(tar.as_slice(), 3).unwrap();
    for (format, bytes) in [("plain", tar.clone()), ("gzip", gzip), ("zstd", zstd)] {
        let fx = fixture();
        let reader = decompress_layer(bytes.as_slice()).unwrap();
        apply_layer(reader, &fx.dest).unwrap();
        assert_eq!(
            fs::read_to_string(fx.dest.join("hello")).unwrap(),
            "world",
            "{format}"
        );
    }
}
