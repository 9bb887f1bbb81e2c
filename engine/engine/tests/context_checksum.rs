//! The context index computes the same copy checksums as reading the
//! mirror does, so cache keys of COPY from the context can skip hashing
//! files again.

use std::os::unix::fs::{PermissionsExt, symlink};
use strata_dockerfile::dockerignore::DockerIgnore;
use strata_solver::Selector;
use strata_source::context::{ContextSource, SyncRequest};

fn selector(path: &str) -> Selector {
    Selector {
        path: path.into(),
        allow_wildcard: true,
        follow_symlink: true,
        include_patterns: Vec::new(),
        exclude_patterns: Vec::new(),
    }
}

#[test]
fn index_checksum_matches_mirror_checksum() {
    let root = tempfile::Builder::new()
        .prefix("strata-ck-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let store = strata_store::Store::open(&root.path().join("store")).unwrap();
    let context = root.path().join("ctx");
    for (path, content) in [
        ("a.txt", "a"),
        ("dir/b", "bb"),
        ("dir/sub/c", "ccc"),
        ("dir-x/d", "d"),
        ("dir.y", "e"),
    ] {
        let file = context.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, content).unwrap();
    }
    std::fs::set_permissions(
        context.join("dir/b"),
        std::fs::Permissions::from_mode(0o751),
    )
    .unwrap();
    symlink("sub/c", context.join("dir/link")).unwrap();
    symlink("dir", context.join("dirlink")).unwrap();

    let ignore = DockerIgnore::parse("").unwrap();
    let request = SyncRequest {
        dir: &context,
        ignore: &ignore,
        follow_paths: &[],
        dirty: None,
        monitor: None,
    };
    let lease = ContextSource::new(store.clone()).sync(&request).unwrap();
    let mirror = store.lowers(&lease.snapshot).unwrap()[0].clone();

    for path in [
        ".",
        "/",
        "a.txt",
        "dir",
        "dir/",
        "./dir/sub",
        "dir/sub/c",
        "dir-x",
        "dir.y",
    ] {
        let from_index = lease
            .path_checksum(path)
            .unwrap_or_else(|| panic!("no index checksum for {path}"));
        let from_files = strata_worker::checksum(&mirror, &selector(path)).unwrap();
        assert_eq!(from_index, from_files, "checksums differ for `{path}`");
    }
    // A copy follows a symlinked source, which the index cannot; and a
    // missing path is left to the mirror's error.
    assert!(lease.path_checksum("dirlink").is_none());
    assert!(lease.path_checksum("dir/link").is_none());
    assert!(lease.path_checksum("dirlink/b").is_none());
    assert!(lease.path_checksum("missing").is_none());
    assert!(lease.path_checksum("../etc").is_none());
    let first = lease.path_checksum("dir").unwrap();
    drop(lease);

    // The next sync of the unchanged context reads the checksums
    // saved beside the index; after an edit they no longer apply.
    let snapshot_dir = mirror.parent().unwrap().to_path_buf();
    let memo = std::fs::read_dir(&snapshot_dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".checksums"))
        .expect("no saved copy checksums");
    assert!(
        String::from_utf8_lossy(&std::fs::read(memo.path()).unwrap()).contains(&first.to_string())
    );
    let lease = ContextSource::new(store.clone()).sync(&request).unwrap();
    assert_eq!(lease.path_checksum("dir").unwrap(), first);
    drop(lease);
    std::fs::write(context.join("dir/sub/c"), "changed").unwrap();
    let lease = ContextSource::new(store.clone()).sync(&request).unwrap();
    let changed = lease.path_checksum("dir").unwrap();
    assert_ne!(changed, first, "a saved checksum outlived an edit");
    assert_eq!(
        changed,
        strata_worker::checksum(&mirror, &selector("dir")).unwrap()
    );
}
