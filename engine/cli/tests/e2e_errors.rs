//! Errors a user meets first: each names the file, line, path or value and
//! the build exits non-zero without touching anything outside the context.

mod common;

use common::*;

#[test]
fn syntax_error_names_file_and_line() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo ok\nCOPY [\"a\", 1] /b\n",
    )]);
    let output = store.build(ctx.path(), &[]);
    assert!(!output.status.success());
    let log = stderr(&output);
    assert!(log.contains("Dockerfile"), "{log}");
    assert!(
        log.contains(":3") || log.contains("line 3") || log.contains("3 │"),
        "{log}"
    );
}

#[test]
fn copy_of_missing_path_names_it() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM busybox\nCOPY missing.txt /\n")]);
    let output = store.build(ctx.path(), &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("missing.txt"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn copy_from_parent_directory_stays_in_context() {
    let store = TestStore::new();
    let outside = tempfile::Builder::new()
        .prefix("strata-outside-")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::write(outside.path().join("secret.txt"), "outside the context").unwrap();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nCOPY ../secret.txt /copied.txt\n",
    )]);
    let out = tempfile::tempdir().unwrap();
    let spec = format!("type=local,dest={}", out.path().display());
    let output = store.build(ctx.path(), &["--output", &spec]);
    let copied = std::fs::read_to_string(out.path().join("copied.txt")).unwrap_or_default();
    assert!(
        !copied.contains("outside the context"),
        "a file outside the context was copied"
    );
    assert!(
        !output.status.success(),
        "COPY ../secret.txt should fail: nothing by that name is in the context"
    );
}

#[test]
fn symlink_out_of_context_is_not_followed_to_the_host() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM busybox\nCOPY link /copied\n")]);
    std::os::unix::fs::symlink("/etc/hostname", ctx.path().join("link")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let spec = format!("type=local,dest={}", out.path().display());
    let output = store.build(ctx.path(), &["--output", &spec]);
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let copied = std::fs::read_to_string(out.path().join("copied")).unwrap_or_default();
    assert!(
        host.is_empty() || copied != host,
        "the host's /etc/hostname leaked into the image"
    );
    assert!(
        !output.status.success() || copied.is_empty(),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unknown_from_stage_lists_stages() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox AS builder\nRUN true\nFROM busybox\nCOPY --from=biulder /x /x\n",
    )]);
    let output = store.build(ctx.path(), &[]);
    assert!(!output.status.success());
    let log = stderr(&output);
    assert!(log.contains("biulder"), "{log}");
}

#[test]
fn unknown_target_lists_stages() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox AS builder\nFROM busybox AS final\n",
    )]);
    let output = store.build(ctx.path(), &["--target", "nope"]);
    assert!(!output.status.success());
    let log = stderr(&output);
    assert!(
        log.contains("nope") && log.contains("builder") && log.contains("final"),
        "{log}"
    );

    let unnamed = context(&[("Dockerfile", "FROM busybox\n")]);
    let output = store.build(unnamed.path(), &["--target", "nope"]);
    assert!(!output.status.success());
    let log = stderr(&output);
    assert!(log.contains("no stage is named"), "{log}");
}

#[test]
fn failing_run_shows_command_code_and_last_lines() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN for i in 1 2 3; do echo line$i; done; exit 7\n",
    )]);
    let output = store.build(ctx.path(), &[]);
    assert!(!output.status.success());
    let log = stderr(&output);
    assert!(log.contains("exit code: 7"), "{log}");
    assert!(log.contains("line3"), "{log}");
    assert!(log.contains("for i in 1 2 3"), "{log}");
}

#[test]
fn a_good_build_follows_a_failed_one() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN exit 1\n")]);
    assert!(!store.build(ctx.path(), &[]).status.success());
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN echo fine > /ok\n",
    )
    .unwrap();
    assert_success(&store.build(ctx.path(), &[]));
}

#[test]
fn foreign_platform_with_run_is_rejected() {
    let store = TestStore::new();
    let foreign = if std::env::consts::ARCH == "aarch64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN echo native only\n")]);
    let output = store.build(ctx.path(), &["--platform", foreign]);
    assert!(!output.status.success());
    let log = stderr(&output);
    assert!(log.contains(foreign), "{log}");
    assert!(log.contains("--platform"), "{log}");
}
