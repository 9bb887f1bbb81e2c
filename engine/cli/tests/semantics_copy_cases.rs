//! The COPY, ADD, heredoc, ONBUILD and cache cases of `tests/cases/semantics`
//! run as real builds. Each test names its case id, and the case's
//! `expected.md` describes BuildKit's result. A case Strata does not match yet asserts
//! today's output under a `FIXME` that states BuildKit's behaviour.

mod common;
mod semantics_support;

use common::*;
use semantics_support::*;

#[test]
fn sem_038_copy_heredocs() {
    // Debian's static busybox has no `adduser` applet, so the variant writes
    // the user database entries `adduser -D user` would add.
    let add_user = "RUN echo 'user:x:1001:1001::/home/user:/bin/sh' >> /etc/passwd \
        && echo 'user:x:1001:' >> /etc/group";
    let variant = case_dockerfile("SEM-038").replace("RUN adduser -D user", add_user);
    let run = run_variant("SEM-038", &variant, &[]);
    run.assert_success();
    run.assert_file("single", "single file\n");
    run.assert_file("double/EOF", "first file\n");
    run.assert_file("double/EOF2", "second file\n");
    run.assert_file("perms", "0777\n0644\nuser:user\n");
}

#[test]
fn sem_039_heredoc_backslashes() {
    let run = run_case("SEM-039", &[]);
    run.assert_success();
    run.assert_file("quotefile", "\"quotes in file\"\n");
    run.assert_file("slashfile1", "\n");
    run.assert_file("slashfile2", "\\\n");
    run.assert_file("slashfile3", "$\n");
    run.assert_file("rawslashfile1", "\\\n");
    run.assert_file("rawslashfile2", "\\\\\n");
    run.assert_file("rawslashfile3", "\\$\n");
}

#[test]
fn sem_042_run_heredoc_shebang() {
    // Debian's static busybox installs `awk` as `/usr/bin/awk`, where the
    // upstream busybox image has `/bin/awk`.
    let variant = case_dockerfile("SEM-042").replace("#!/bin/awk", "#!/usr/bin/awk");
    let run = run_variant("SEM-042", &variant, &[]);
    run.assert_success();
    run.assert_file("out1", "hello\nworld\n");
    run.assert_file("out2", "hello\nworld\n");
}

#[test]
fn sem_043_run_several_heredocs() {
    let run = run_case("SEM-043", &[]);
    run.assert_success();
    run.assert_file("out1", "hello world\n");
    run.assert_file("out2", "HELLO WORLD\n");
    run.assert_file("fd3", "hello world\n");
    run.assert_file("fd4", "HELLO WORLD\n");
}

#[test]
fn sem_044_heredoc_tab_stripping() {
    let run = run_case("SEM-044", &[]);
    run.assert_success();
    run.assert_file("foo-copy", "\tfoo\n");
    run.assert_file("bar-copy", "bar\n");
    for name in ["foo-run", "foo2-run", "foo3-run"] {
        run.assert_file(name, "\n\tfoo\n");
    }
    for name in ["bar-run", "bar2-run", "bar3-run"] {
        run.assert_file(name, "\nbar\n");
    }
}

#[test]
fn sem_052_empty_destination_is_workdir() {
    run_case("SEM-052", &[]).assert_success();
    let link = "FROM busybox\nENV empty=\"\"\nWORKDIR /var/www\nCOPY --link testfile $empty\n\
        RUN [ \"$(cat /var/www/testfile)\" == \"contents0\" ]\n";
    run_variant("SEM-052", link, &[]).assert_success();
    let dot = "FROM busybox\nWORKDIR /var/www\nCOPY --link testfile .\n\
        RUN [ \"$(cat /var/www/testfile)\" == \"contents0\" ]\n";
    run_variant("SEM-052", dot, &[]).assert_success();
}

#[test]
fn sem_054_empty_wildcard_with_other_source() {
    let run = run_case("SEM-054", &[]);
    run.assert_success();
    run.assert_file("foo", "contents0");
}

#[test]
fn sem_057_chown_existing_and_new_dirs() {
    let store = TestStore::new();
    let ctx = case_context("SEM-057");
    let dockerfile = case_dockerfile("SEM-057");
    let run = build_in(&store, ctx.path(), &dockerfile, &["--target", "copy_from"]);
    run.assert_success();
    let expected = [
        ("file", "100:200"),
        ("dir", "0:0"),
        ("dir/subdir", "101:201"),
        ("dir/subdir/nestedfile", "102:202"),
        ("existingdir", "500:600"),
        ("existingdir/existingsubdir", "501:601"),
        ("existingdir/existingfile", "501:601"),
        ("existingdir/subdir", "101:201"),
        ("existingdir/subdir/nestedfile", "102:202"),
    ];
    for (path, owner) in expected {
        assert_eq!(run.owner(path), owner, "copy_from {path}");
    }

    let run = build_in(
        &store,
        ctx.path(),
        &dockerfile,
        &["--target", "copy_from_chowned"],
    );
    run.assert_success();
    let expected = [
        ("file", "300:400"),
        ("dir", "300:400"),
        ("dir/subdir", "300:400"),
        ("dir/subdir/nestedfile", "300:400"),
        ("existingdir", "500:600"),
        ("existingdir/existingsubdir", "501:601"),
        ("existingdir/existingfile", "501:601"),
        ("existingdir/subdir", "300:400"),
        ("existingdir/subdir/nestedfile", "300:400"),
    ];
    for (path, owner) in expected {
        assert_eq!(run.owner(path), owner, "copy_from_chowned {path}");
    }
}

#[test]
fn sem_058_copy_chmod() {
    let store = TestStore::new();
    let ctx = case_context("SEM-058");
    set_mode(&ctx.path().join("foo"), 0o600);
    set_mode(&ctx.path().join("bar"), 0o700);
    let run = build_in(
        &store,
        ctx.path(),
        &case_dockerfile("SEM-058"),
        &["--build-arg", "mode=755"],
    );
    run.assert_success();
    let expected = [
        ("fooperm", "0644\n"),
        ("barperm", "0777\n"),
        ("foobisperm", "0000\n"),
        ("parentperm", "0777\n"),
        ("subparentperm", "0770\n"),
        ("footerperm", "0755\n"),
    ];
    for (name, mode) in expected {
        run.assert_file(name, mode);
    }
}

#[test]
fn sem_060_context_symlinks() {
    let run = run_case("SEM-060", &[]);
    run.assert_success();
    run.assert_file("foo", "bar-contents");
    run.assert_file("alllinks/l0", "subfile-contents");
    run.assert_file("alllinks/lfile", "lfile-contents");
    run.assert_file("alllinks/l1", "baz-contents");
}

#[test]
fn sem_061_copy_from_follows_symlinks() {
    let run = run_case("SEM-061", &[]);
    run.assert_success();
    run.assert_file("foo", "data");
    run.assert_file("bar", "data");
}

#[test]
fn sem_062_copy_twice_overwrites() {
    let run = run_case("SEM-062", &[]);
    run.assert_success();
    run.assert_file("sub/dir1/dir2/foo", "foo-contents");
    run.assert_file("dest/foo.go", "foo.go-contents");
}

#[test]
fn sem_063_literal_unicode_names() {
    let run = run_case("SEM-063", &[]);
    run.assert_success();
    run.assert_file("test-äöü.txt", "foo");
    run.assert_file("test-%C3%A4%C3%B6%C3%BC.txt", "bar");
    run.assert_file("test+aou.txt", "baz");
}

#[test]
fn sem_064_missing_source() {
    let run = run_case("SEM-064", &[]);
    run.assert_failure("\"/main.c\": not found");
}

#[test]
fn sem_065_copy_rejects_url() {
    let run = run_case("SEM-065", &[]);
    run.assert_failure("source can't be a URL for COPY");
}

#[test]
fn sem_066_socket_becomes_regular_file() {
    let store = TestStore::new();
    let ctx = case_context("SEM-066");
    let _socket = std::os::unix::net::UnixListener::bind(ctx.path().join("socket.sock")).unwrap();
    let run = build_in(&store, ctx.path(), &case_dockerfile("SEM-066"), &[]);
    run.assert_success();
    let meta = run.path("socket.sock").symlink_metadata().unwrap();
    assert!(meta.file_type().is_file(), "{:?}", meta.file_type());
}

#[test]
fn sem_067_context_dir_becomes_file() {
    let store = TestStore::new();
    let ctx = case_context("SEM-067");
    let dockerfile = case_dockerfile("SEM-067");
    let run = build_in(&store, ctx.path(), &dockerfile, &[]);
    run.assert_success();
    run.assert_file("bar", "contents");

    std::fs::remove_dir_all(ctx.path().join("foo")).unwrap();
    std::fs::write(ctx.path().join("foo"), "contents2").unwrap();
    let run = build_in(&store, ctx.path(), &dockerfile, &[]);
    run.assert_success();
    run.assert_file("foo", "contents2");
}

#[test]
fn sem_068_copy_parents() {
    let run = run_case("SEM-068", &[]);
    run.assert_success();
    run.assert_file("foo1/foo2/bar", "testing");
    run.assert_file("test/foo1/foo2/bar", "testing");
    run.assert_file("test/foo1/foo2/baz", "testing2");

    let store = TestStore::new();
    let ctx = context(&[
        ("x/a.txt", "xa"),
        ("y/a.txt", "ya"),
        ("y/b.txt", "yb"),
        ("src/a.txt", "a"),
        ("src/x/b.txt", "b"),
        ("src/x/y/c.txt", "c"),
        ("src/x/y/skip.md", "skip"),
    ]);
    let dockerfile = "FROM scratch\n\
        COPY ./x/a.txt ./y/a.txt /no_parents/\n\
        COPY --parents ./x/a.txt ./y/a.txt /parents/\n\
        COPY --parents ./x/./y/*.txt /pivot/\n\
        COPY --parents ./src/**/*.txt /deep/\n";
    let ctx_pivot = ctx.path().join("x/y");
    std::fs::create_dir_all(&ctx_pivot).unwrap();
    std::fs::write(ctx_pivot.join("a.txt"), "xya").unwrap();
    std::fs::write(ctx_pivot.join("b.txt"), "xyb").unwrap();
    let run = build_in(&store, ctx.path(), dockerfile, &[]);
    run.assert_success();
    run.assert_file("no_parents/a.txt", "ya");
    run.assert_file("parents/x/a.txt", "xa");
    run.assert_file("parents/y/a.txt", "ya");
    run.assert_file("pivot/y/a.txt", "xya");
    run.assert_file("pivot/y/b.txt", "xyb");
    run.assert_file("deep/src/a.txt", "a");
    run.assert_file("deep/src/x/b.txt", "b");
    run.assert_file("deep/src/x/y/c.txt", "c");
    assert!(!run.exists("deep/src/x/y/skip.md"), "{:?}", run.listing());
}

#[test]
fn sem_070_copy_exclude() {
    let run = run_case("SEM-070", &[]);
    run.assert_success();
    let under = |prefix: &str| -> Vec<String> {
        run.listing()
            .into_iter()
            .filter_map(|p| p.strip_prefix(prefix).map(str::to_string))
            .filter(|p| !p.is_empty())
            .collect()
    };
    assert_eq!(
        under("builder1/1/"),
        [
            "dir1/",
            "dir1/file-102.txt",
            "dir2/",
            "dir2/file-201.pdf",
            "dir3/",
            "dir3/file-301.mp3",
            "dir3/file-302.mpeg",
            "dir4/",
            "dir4/file-401.txt",
            "dir4/file-402.txt",
            "dir4/file-403.txt",
        ]
    );
    assert_eq!(
        run.link_target("builder1/1/dir4/file-402.txt"),
        "file-401.txt"
    );
    assert_eq!(
        run.link_target("builder1/1/dir4/file-403.txt"),
        "file-404.txt"
    );
    assert_eq!(
        under("builder2/2/"),
        [
            "dir1/",
            "dir1/file-101.png",
            "dir1/file-103.jpeg",
            "dir2/",
            "dir2/file-202.jpeg",
            "dir2/file-203.png",
            "dir3/",
            "dir3/file-301.mp3",
            "dir3/file-302.mpeg",
            "dir4/",
        ]
    );
    assert_eq!(under("builder3/3/"), ["file-302.mpeg"]);
    assert_eq!(under("builder4/4/"), ["file-302.mpeg"]);
    assert_eq!(under("builder6/6/"), Vec::<String>::new());
    assert!(run.path("builder6/6").is_dir(), "{:?}", run.listing());
}

#[test]
fn sem_071_add_extracts_local_tars() {
    let store = TestStore::new();
    let ctx = case_context("SEM-071");
    let original = std::fs::read(ctx.path().join("t.tar.gz")).unwrap();
    let extracting = [
        "FROM scratch\nADD t.tar /\n",
        "FROM scratch\nADD t.tar.gz /\n",
    ];
    for dockerfile in extracting {
        let run = build_in(&store, ctx.path(), dockerfile, &[]);
        run.assert_success();
        run.assert_file("foo", "content0");
    }
    let verbatim = [
        "FROM scratch\nADD --unpack=false t.tar.gz /\n",
        "FROM scratch\nCOPY t.tar.gz /\n",
    ];
    for dockerfile in verbatim {
        let run = build_in(&store, ctx.path(), dockerfile, &[]);
        run.assert_success();
        assert!(!run.exists("foo"), "{dockerfile}");
        assert_eq!(
            std::fs::read(run.path("t.tar.gz")).unwrap(),
            original,
            "{dockerfile}"
        );
    }
}

#[test]
fn sem_073_add_chown_archive() {
    let run = run_case("SEM-073", &[]);
    run.assert_success();
    run.assert_file("out/foo", "content0");
    assert_eq!(run.owner("out/foo"), "100:200");
    assert_eq!(run.owner("out"), "100:200");
}

/// Builds the parent image of a two-build ONBUILD case as `a` (an image
/// reference must be lowercase, so the case's `A` is renamed) and then the
/// main build.
fn run_onbuild_case(id: &str) -> CaseRun {
    let (parent, main) = split_builds(&case_dockerfile(id), "# main build");
    let main = main.replace("FROM A AS", "FROM a AS");
    let store = TestStore::new();
    let ctx = case_context(id);
    build_in(&store, ctx.path(), &parent, &["-t", "a"]).assert_success();
    build_in(&store, ctx.path(), &main, &[])
}

#[test]
fn sem_092_onbuild_not_rerun_in_child_stage() {
    let run = run_onbuild_case("SEM-092");
    run.assert_success();
    for name in ["step1", "step2", "step3"] {
        assert!(run.exists(name), "{name}: {:?}", run.listing());
    }
}

#[test]
fn sem_094_onbuild_heredoc() {
    let run = run_onbuild_case("SEM-094");
    run.assert_success();
    run.assert_file("dest", "hello world\n");
    assert!(
        run.config()["OnBuild"].is_null(),
        "triggers are cleared after they run: {}",
        run.config()
    );
}

/// Builds `id`'s Dockerfile over `ctx` and returns the exported `unique`.
fn unique(store: &TestStore, ctx: &std::path::Path, id: &str) -> String {
    let run = build_in(store, ctx, &case_dockerfile(id), &[]);
    run.assert_success();
    run.file("unique")
}

#[test]
fn sem_103_wildcard_copy_cache() {
    let store = TestStore::new();
    let ctx = case_context("SEM-103");
    let first = unique(&store, ctx.path(), "SEM-103");
    std::fs::write(ctx.path().join("bar"), "bar-data-mod").unwrap();
    assert_eq!(unique(&store, ctx.path(), "SEM-103"), first, "bar changed");
    std::fs::write(ctx.path().join("foo2"), "foo2-data-mod").unwrap();
    assert_ne!(unique(&store, ctx.path(), "SEM-103"), first, "foo2 changed");
}

#[test]
fn sem_106_unreferenced_file_keeps_cache() {
    let store = TestStore::new();
    let ctx = case_context("SEM-106");
    let first = unique(&store, ctx.path(), "SEM-106");
    std::fs::write(ctx.path().join("other"), "y").unwrap();
    assert_eq!(
        unique(&store, ctx.path(), "SEM-106"),
        first,
        "other changed"
    );
    std::fs::write(ctx.path().join("foo"), "foo-data-mod").unwrap();
    assert_ne!(unique(&store, ctx.path(), "SEM-106"), first, "foo changed");
}
