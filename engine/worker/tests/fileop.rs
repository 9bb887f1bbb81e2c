//! File actions against temporary directories.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use strata_llb::{ChownOpt, CopyAction, FileAction, UserOpt};
use strata_worker::apply_file_actions;

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

/// A destination root with `/etc/passwd` and `/etc/group`, and a source
/// root with a small tree.
fn roots() -> (tempfile::TempDir, tempfile::TempDir) {
    let dest = tempfile::tempdir().unwrap();
    write(
        &dest.path().join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    );
    write(
        &dest.path().join("etc/group"),
        "root:x:0:\napp:x:1000:\nstaff:x:50:\n",
    );
    let source = tempfile::tempdir().unwrap();
    write(&source.path().join("a.txt"), "alpha");
    write(&source.path().join("b.txt"), "bravo");
    write(&source.path().join("dir/c.txt"), "charlie");
    write(&source.path().join("dir/sub/d.log"), "delta");
    (dest, source)
}

fn copy_action(src: &str, dest: &str) -> CopyAction {
    CopyAction::new(Some(0), src, dest)
}

fn apply(dest: &Path, source: &Path, actions: Vec<FileAction>) -> anyhow::Result<()> {
    apply_file_actions(dest, &actions, &[Some(source.to_path_buf())])
}

#[test]
fn mkdir_mkfile_rm() {
    let (dest, source) = roots();
    let actions = vec![
        FileAction::Mkdir {
            path: "/x/y/z".into(),
            mode: 0o750,
            make_parents: true,
            owner: None,
            timestamp: Some(1_000_000),
        },
        FileAction::Mkfile {
            path: "/x/y/z/f".into(),
            mode: 0o640,
            data: b"hi".to_vec(),
            owner: Some(ChownOpt {
                user: UserOpt::Name("app".into()),
                group: None,
            }),
            timestamp: None,
        },
        FileAction::Mkfile {
            path: "/x/gone".into(),
            mode: 0o644,
            data: vec![],
            owner: None,
            timestamp: None,
        },
        FileAction::Rm {
            path: "/x/gone".into(),
            allow_not_found: false,
            allow_wildcard: false,
        },
        FileAction::Rm {
            path: "/x/nothing".into(),
            allow_not_found: true,
            allow_wildcard: false,
        },
    ];
    apply(dest.path(), source.path(), actions).unwrap();
    let dir = fs::metadata(dest.path().join("x/y/z")).unwrap();
    assert_eq!(dir.permissions().mode() & 0o7777, 0o750);
    let parent = fs::metadata(dest.path().join("x/y")).unwrap();
    assert_eq!(parent.mtime(), 1_000_000);
    let file = fs::metadata(dest.path().join("x/y/z/f")).unwrap();
    assert_eq!((file.uid(), file.gid()), (1000, 1000));
    assert_eq!(file.permissions().mode() & 0o7777, 0o640);
    assert!(!dest.path().join("x/gone").exists());

    let error = apply(
        dest.path(),
        source.path(),
        vec![FileAction::Rm {
            path: "/x/nothing".into(),
            allow_not_found: false,
            allow_wildcard: false,
        }],
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("\"/x/nothing\": not found"),
        "{error}"
    );
    let error = apply(
        dest.path(),
        source.path(),
        vec![FileAction::Mkdir {
            path: "/x".into(),
            mode: 0o755,
            make_parents: false,
            owner: None,
            timestamp: None,
        }],
    )
    .unwrap_err();
    assert!(error.to_string().contains("file exists"), "{error}");
}

#[test]
fn copy_file_into_dir_and_rename() {
    let (dest, source) = roots();
    let mut into_dir = copy_action("/a.txt", "/out/");
    into_dir.create_dest_path = true;
    let mut renamed = copy_action("/b.txt", "/renamed.txt");
    renamed.create_dest_path = true;
    apply(
        dest.path(),
        source.path(),
        vec![FileAction::Copy(into_dir), FileAction::Copy(renamed)],
    )
    .unwrap();
    assert_eq!(read(&dest.path().join("out/a.txt")), "alpha");
    assert_eq!(read(&dest.path().join("renamed.txt")), "bravo");
}

#[test]
fn copy_dir_contents_or_dir() {
    let (dest, source) = roots();
    let mut contents = copy_action("/dir", "/app");
    contents.dir_contents_only = true;
    contents.create_dest_path = true;
    apply(dest.path(), source.path(), vec![FileAction::Copy(contents)]).unwrap();
    assert_eq!(read(&dest.path().join("app/c.txt")), "charlie");
    assert_eq!(read(&dest.path().join("app/sub/d.log")), "delta");

    let whole = copy_action("/dir", "/app");
    apply(dest.path(), source.path(), vec![FileAction::Copy(whole)]).unwrap();
    assert_eq!(read(&dest.path().join("app/dir/c.txt")), "charlie");
}

#[test]
fn copy_wildcards() {
    let (dest, source) = roots();
    let mut action = copy_action("/*.txt", "/w/");
    action.allow_wildcard = true;
    action.create_dest_path = true;
    apply(dest.path(), source.path(), vec![FileAction::Copy(action)]).unwrap();
    assert_eq!(read(&dest.path().join("w/a.txt")), "alpha");
    assert_eq!(read(&dest.path().join("w/b.txt")), "bravo");

    let mut none = copy_action("/*.none", "/w/");
    none.allow_wildcard = true;
    assert!(
        apply(
            dest.path(),
            source.path(),
            vec![FileAction::Copy(none.clone())]
        )
        .is_err()
    );
    none.allow_empty_wildcard = true;
    apply(dest.path(), source.path(), vec![FileAction::Copy(none)]).unwrap();
}

#[test]
fn copy_missing_source_names_path() {
    let (dest, source) = roots();
    let error = apply(
        dest.path(),
        source.path(),
        vec![FileAction::Copy(copy_action("/missing.txt", "/"))],
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Failed to copy \"/missing.txt\": not found in the source filesystem"
    );
}

#[test]
fn copy_owner_and_modes() {
    let (dest, source) = roots();
    let mut owned = copy_action("/a.txt", "/owned.txt");
    owned.owner = Some(ChownOpt {
        user: UserOpt::Name("app".into()),
        group: Some(UserOpt::Name("staff".into())),
    });
    owned.mode = Some(0o600);
    let mut symbolic = copy_action("/b.txt", "/sym.txt");
    symbolic.mode_text = Some("u+x,g-r".into());
    fs::set_permissions(
        source.path().join("b.txt"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    apply(
        dest.path(),
        source.path(),
        vec![FileAction::Copy(owned), FileAction::Copy(symbolic)],
    )
    .unwrap();
    let owned = fs::metadata(dest.path().join("owned.txt")).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (1000, 50));
    assert_eq!(owned.permissions().mode() & 0o7777, 0o600);
    let symbolic = fs::metadata(dest.path().join("sym.txt")).unwrap();
    assert_eq!(symbolic.permissions().mode() & 0o7777, 0o704);

    let mut ghost = copy_action("/a.txt", "/g.txt");
    ghost.owner = Some(ChownOpt {
        user: UserOpt::Name("ghost".into()),
        group: None,
    });
    let error = apply(dest.path(), source.path(), vec![FileAction::Copy(ghost)]).unwrap_err();
    assert!(error.to_string().contains("`ghost`"), "{error}");
}

#[test]
fn copy_include_exclude() {
    let (dest, source) = roots();
    let mut action = copy_action("/", "/ctx");
    action.dir_contents_only = true;
    action.create_dest_path = true;
    action.exclude_patterns = vec!["**/*.log".into(), "b.txt".into()];
    apply(dest.path(), source.path(), vec![FileAction::Copy(action)]).unwrap();
    assert!(dest.path().join("ctx/a.txt").exists());
    assert!(!dest.path().join("ctx/b.txt").exists());
    assert!(dest.path().join("ctx/dir/c.txt").exists());
    assert!(!dest.path().join("ctx/dir/sub/d.log").exists());

    let mut action = copy_action("/", "/inc");
    action.dir_contents_only = true;
    action.create_dest_path = true;
    action.include_patterns = vec!["dir/sub".into()];
    apply(dest.path(), source.path(), vec![FileAction::Copy(action)]).unwrap();
    assert!(dest.path().join("inc/dir/sub/d.log").exists());
    assert!(!dest.path().join("inc/a.txt").exists());
    assert!(!dest.path().join("inc/dir/c.txt").exists());
}

#[test]
fn copy_keeps_hardlinks_symlinks_and_times() {
    let (dest, source) = roots();
    fs::hard_link(
        source.path().join("a.txt"),
        source.path().join("dir/a-link.txt"),
    )
    .unwrap();
    symlink("c.txt", source.path().join("dir/c-link")).unwrap();
    filetime::set_file_mtime(
        source.path().join("dir/c.txt"),
        filetime::FileTime::from_unix_time(12345, 0),
    )
    .unwrap();
    let mut action = copy_action("/", "/copy");
    action.dir_contents_only = true;
    action.create_dest_path = true;
    apply(dest.path(), source.path(), vec![FileAction::Copy(action)]).unwrap();

    let original = fs::metadata(dest.path().join("copy/a.txt")).unwrap();
    let link = fs::metadata(dest.path().join("copy/dir/a-link.txt")).unwrap();
    assert_eq!(original.ino(), link.ino());
    assert_eq!(
        fs::read_link(dest.path().join("copy/dir/c-link")).unwrap(),
        Path::new("c.txt")
    );
    assert_eq!(
        fs::metadata(dest.path().join("copy/dir/c.txt"))
            .unwrap()
            .mtime(),
        12345
    );

    let mut stamped = copy_action("/b.txt", "/stamped.txt");
    stamped.timestamp = Some(99);
    apply(dest.path(), source.path(), vec![FileAction::Copy(stamped)]).unwrap();
    assert_eq!(
        fs::metadata(dest.path().join("stamped.txt"))
            .unwrap()
            .mtime(),
        99
    );
}

#[test]
fn follow_symlink_option() {
    let (dest, source) = roots();
    symlink("/a.txt", source.path().join("link")).unwrap();
    apply(
        dest.path(),
        source.path(),
        vec![FileAction::Copy(copy_action("/link", "/kept"))],
    )
    .unwrap();
    assert!(
        fs::symlink_metadata(dest.path().join("kept"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let mut follow = copy_action("/link", "/followed");
    follow.follow_symlink = true;
    apply(dest.path(), source.path(), vec![FileAction::Copy(follow)]).unwrap();
    assert_eq!(read(&dest.path().join("followed")), "alpha");
}

#[test]
fn symlink_escapes_stay_inside() {
    let (dest, source) = roots();
    let outside = tempfile::tempdir().unwrap();
    // Links in the destination that point at absolute host paths.
    symlink(outside.path(), dest.path().join("escape")).unwrap();
    symlink("../../../../..", dest.path().join("up")).unwrap();
    let actions = vec![
        FileAction::Mkdir {
            path: "/escape".into(),
            mode: 0o755,
            make_parents: true,
            owner: None,
            timestamp: None,
        },
        FileAction::Mkfile {
            path: "/escape/pwned".into(),
            mode: 0o644,
            data: b"x".to_vec(),
            owner: None,
            timestamp: None,
        },
        FileAction::Mkdir {
            path: "/up/tmp/pwned-dir".into(),
            mode: 0o755,
            make_parents: true,
            owner: None,
            timestamp: None,
        },
        FileAction::Copy(copy_action("/a.txt", "/escape/copied")),
    ];
    apply(dest.path(), source.path(), actions).unwrap();
    assert!(!outside.path().join("pwned").exists());
    assert!(!outside.path().join("copied").exists());
    let inside = dest.path().join(outside.path().strip_prefix("/").unwrap());
    assert_eq!(read(&inside.join("pwned")), "x");
    assert_eq!(read(&inside.join("copied")), "alpha");
    assert!(dest.path().join("tmp/pwned-dir").is_dir());

    // A source link to `/etc/passwd` reads the source root's file.
    write(&source.path().join("etc/passwd"), "source passwd");
    symlink("/etc/passwd", source.path().join("pw")).unwrap();
    let mut follow = copy_action("/pw", "/pw-copy");
    follow.follow_symlink = true;
    apply(dest.path(), source.path(), vec![FileAction::Copy(follow)]).unwrap();
    assert_eq!(read(&dest.path().join("pw-copy")), "source passwd");

    // Rm of a link removes the link, not its target.
    fs::write(outside.path().join("keep"), "keep").unwrap();
    symlink(outside.path().join("keep"), dest.path().join("keep-link")).unwrap();
    apply(
        dest.path(),
        source.path(),
        vec![FileAction::Rm {
            path: "/keep-link".into(),
            allow_not_found: false,
            allow_wildcard: false,
        }],
    )
    .unwrap();
    assert!(outside.path().join("keep").exists());
}

#[test]
fn attempt_unpack_archives() {
    let (dest, source) = roots();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o640);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1);
    header.set_cksum();
    builder
        .append_data(&mut header, "inner/file.txt", &b"hello"[..])
        .unwrap();
    let tar_bytes = builder.into_inner().unwrap();
    fs::write(source.path().join("plain.tar"), &tar_bytes).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar_bytes).unwrap();
    fs::write(source.path().join("z.tar.gz"), gz.finish().unwrap()).unwrap();
    fs::write(
        source.path().join("z.tar.zst"),
        zstd::encode_all(&tar_bytes[..], 3).unwrap(),
    )
    .unwrap();

    for name in ["plain.tar", "z.tar.gz", "z.tar.zst"] {
        let mut action = copy_action(&format!("/{name}"), &format!("/{name}-out/"));
        action.attempt_unpack = true;
        action.create_dest_path = true;
        apply(dest.path(), source.path(), vec![FileAction::Copy(action)]).unwrap();
        assert_eq!(
            read(&dest.path().join(format!("{name}-out/inner/file.txt"))),
            "hello",
            "{name}"
        );
    }

    let mut not_archive = copy_action("/a.txt", "/na/");
    not_archive.attempt_unpack = true;
    apply(
        dest.path(),
        source.path(),
        vec![FileAction::Copy(not_archive)],
    )
    .unwrap();
    assert_eq!(read(&dest.path().join("na/a.txt")), "alpha");
}
