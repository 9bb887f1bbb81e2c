//! Content checksums: mtime is ignored, mode, owner and bytes are not.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use strata_solver::Selector;
use strata_worker::checksum;

fn selector(path: &str) -> Selector {
    Selector {
        path: path.into(),
        allow_wildcard: true,
        follow_symlink: false,
        include_patterns: Vec::new(),
        exclude_patterns: Vec::new(),
    }
}

fn tree() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("src/sub")).unwrap();
    fs::write(root.path().join("src/a.txt"), "alpha").unwrap();
    fs::write(root.path().join("src/sub/b.txt"), "bravo").unwrap();
    root
}

#[test]
fn checksum_ignores_mtime() {
    let root = tree();
    let before = checksum(root.path(), &selector("/src")).unwrap();
    filetime::set_file_mtime(
        root.path().join("src/a.txt"),
        filetime::FileTime::from_unix_time(5, 0),
    )
    .unwrap();
    assert_eq!(checksum(root.path(), &selector("/src")).unwrap(), before);
}

#[test]
fn checksum_sees_mode_owner_bytes() {
    let root = tree();
    let path = root.path().join("src/sub/b.txt");
    let original = checksum(root.path(), &selector("/src")).unwrap();

    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let after_mode = checksum(root.path(), &selector("/src")).unwrap();
    assert_ne!(after_mode, original);

    std::os::unix::fs::lchown(&path, Some(1234), Some(1234)).unwrap();
    let after_owner = checksum(root.path(), &selector("/src")).unwrap();
    assert_ne!(after_owner, after_mode);

    fs::write(&path, "brav0").unwrap();
    let after_bytes = checksum(root.path(), &selector("/src")).unwrap();
    assert_ne!(after_bytes, after_owner);
}

#[test]
fn checksum_wildcards_and_patterns() {
    let root = tree();
    fs::write(root.path().join("src/c.log"), "log").unwrap();
    let all = checksum(root.path(), &selector("/src/*")).unwrap();
    let mut without_logs = selector("/src");
    without_logs.exclude_patterns = vec!["*.log".into()];
    let filtered = checksum(root.path(), &without_logs).unwrap();
    fs::write(root.path().join("src/c.log"), "changed").unwrap();
    assert_ne!(checksum(root.path(), &selector("/src/*")).unwrap(), all);
    assert_eq!(checksum(root.path(), &without_logs).unwrap(), filtered);
}

#[test]
fn checksum_missing_path_is_error() {
    let root = tree();
    let error = checksum(root.path(), &selector("/missing.txt")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Failed to compute the checksum of \"/missing.txt\": not found"
    );
}

#[test]
fn checksum_unmatched_wildcard_is_empty() {
    let root = tree();
    let none = checksum(root.path(), &selector("/*.none")).unwrap();
    assert_eq!(checksum(root.path(), &selector("/*.other")).unwrap(), none);
}
