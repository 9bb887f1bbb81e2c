//! `materialize` compared with what the kernel's overlayfs shows for the
//! same chain of directories.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use strata_exporter::materialize;

/// Describes every entry under `root`: kind, mode, owner, content or link
/// target, and inode group for hard links.
fn describe(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        let relative = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let body = if meta.is_file() {
            let first = inodes.entry(meta.ino()).or_insert_with(|| relative.clone());
            format!(
                "file {:?} link-group={first}",
                fs::read_to_string(entry.path()).unwrap()
            )
        } else if meta.file_type().is_symlink() {
            format!(
                "symlink -> {}",
                fs::read_link(entry.path()).unwrap().display()
            )
        } else {
            "dir".to_string()
        };
        let owner = format!("{:o} {}:{}", meta.mode() & 0o7777, meta.uid(), meta.gid());
        out.insert(relative, format!("{body} {owner}"));
    }
    out
}

/// Builds three layers, bottom to top, and returns them top first.
fn chain(root: &Path) -> Vec<PathBuf> {
    let bottom = root.join("bottom");
    write(&bottom.join("etc/passwd"), "root", 0o644);
    write(&bottom.join("etc/shadow"), "secret", 0o600);
    write(&bottom.join("opt/app/old.conf"), "old", 0o644);
    write(&bottom.join("srv/data"), "d", 0o644);
    write(&bottom.join("usr/lib/x"), "x", 0o644);
    symlink("../usr/lib", bottom.join("etc/lib")).unwrap();

    let middle = root.join("middle");
    write(&middle.join("etc/passwd"), "root\nuser", 0o644);
    nix::unistd::chown(&middle.join("etc/passwd"), Some(0.into()), Some(42.into())).unwrap();
    fs::create_dir_all(middle.join("etc")).unwrap();
    whiteout(&middle.join("etc/shadow"));
    fs::create_dir_all(middle.join("opt/app")).unwrap();
    set_opaque(&middle.join("opt/app"));
    write(&middle.join("opt/app/new.conf"), "new", 0o640);
    write(&middle.join("bin/tool"), "t", 0o755);
    fs::hard_link(middle.join("bin/tool"), middle.join("bin/tool2")).unwrap();

    let top = root.join("top");
    fs::create_dir_all(&top).unwrap();
    whiteout(&top.join("srv"));
    write(&top.join("usr/lib"), "now a file", 0o644);
    write(&top.join("srv2/x"), "y", 0o644);
    vec![top, middle, bottom]
}

#[test]
fn materialize_matches_overlay_mount() {
    let dir = tempfile::tempdir().unwrap();
    let lowers = chain(dir.path());

    let merged = dir.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let lowerdir: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    let options = format!("lowerdir={}", lowerdir.join(":"));
    run(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(&merged));
    let expected = describe(&merged);
    run(Command::new("umount").arg(&merged));

    let dest = dir.path().join("out/rootfs");
    materialize(&lowers, &dest).unwrap();
    let actual = describe(&dest);
    assert_eq!(actual, expected);

    // The cases the chain is built to exercise.
    assert!(!dest.join("etc/shadow").exists());
    assert!(!dest.join("opt/app/old.conf").exists());
    assert!(!dest.join("srv").exists());
    assert!(dest.join("usr/lib").is_file());
    let tool = fs::metadata(dest.join("bin/tool")).unwrap();
    assert_eq!(
        tool.ino(),
        fs::metadata(dest.join("bin/tool2")).unwrap().ino()
    );
}

#[test]
fn materialize_into_existing_dir() {
    let dir = tempfile::tempdir().unwrap();
    let layer = dir.path().join("layer");
    write(&layer.join("a"), "a", 0o644);
    let dest = dir.path().join("dest");
    write(&dest.join("a"), "stale", 0o600);
    materialize(&[layer], &dest).unwrap();
    assert_eq!(fs::read_to_string(dest.join("a")).unwrap(), "a");
}

#[test]
fn materialize_missing_layer_fails() {
    let dir = tempfile::tempdir().unwrap();
    let error = materialize(&[dir.path().join("nope")], &dir.path().join("dest")).unwrap_err();
    assert!(format!("{error:#}").contains("does not exist"), "{error:#}");
}
