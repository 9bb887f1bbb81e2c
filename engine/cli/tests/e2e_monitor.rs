//! The context monitor (`STRATA_CONTEXT_MONITOR=1`): one-shot builds read
//! only the context paths that changed, and still build exactly what a
//! full walk would.

mod common;

use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// Builds with the monitor on, exports the result to a new directory, and
/// returns the context transfer's statistics and that directory.
fn monitored_build(store: &TestStore, context: &Path) -> (serde_json::Value, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let out_path = out.path();
    let mut args = vec!["build", "--progress", "rawjson", "-o"];
    let output_spec = format!("type=local,dest={}", out_path.display());
    args.push(&output_spec);
    args.push(context.to_str().unwrap());
    let output = store
        .command()
        .env("STRATA_CONTEXT_MONITOR", "1")
        .args(&args)
        .output()
        .unwrap();
    assert_success(&output);
    let transfers: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["type"] == "context_transfer")
        .collect();
    assert_eq!(transfers.len(), 1, "one context transfer per build");
    (transfers[0]["stats"].clone(), out)
}

/// Returns the pids of running monitors of the store at `root`.
fn monitors_of(root: &Path) -> Vec<String> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("context-monitor") && cmdline.contains(root.to_str().unwrap()) {
            pids.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    pids
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn monitored_builds_read_only_changed_paths() {
    let store = TestStore::new();
    let ctx = context(&[
        ("Dockerfile", "FROM busybox\nCOPY . /app\n"),
        ("keep.txt", "keep\n"),
        ("src/main.c", "v1\n"),
    ]);
    let (first, _) = monitored_build(&store, ctx.path());
    assert_eq!(first["full_walk"], true, "the first build walks: {first}");
    assert_eq!(monitors_of(store.root()).len(), 1, "no monitor was started");

    let (second, _) = monitored_build(&store, ctx.path());
    assert_eq!(second["full_walk"], false, "{second}");
    assert_eq!(second["walked"], 0, "a no-op build stat'ed files: {second}");

    // Changes made just before a build are seen by it.
    std::fs::write(ctx.path().join("src/main.c"), "v2\n").unwrap();
    std::fs::create_dir_all(ctx.path().join("new/deep")).unwrap();
    std::fs::write(ctx.path().join("new/deep/file"), "new\n").unwrap();
    std::fs::remove_file(ctx.path().join("keep.txt")).unwrap();
    let (third, out) = monitored_build(&store, ctx.path());
    assert_eq!(third["full_walk"], false, "{third}");
    assert_eq!(third["copied_files"], 2, "{third}");
    assert_eq!(third["removed"], 1, "{third}");
    assert_eq!(read(&out.path().join("app/src/main.c")), "v2\n");
    assert_eq!(read(&out.path().join("app/new/deep/file")), "new\n");
    assert!(!out.path().join("app/keep.txt").exists());

    // A build without the monitor that changes the mirror makes the
    // monitor's report stale, so the next monitored build walks.
    std::fs::write(ctx.path().join("src/main.c"), "v3\n").unwrap();
    assert_success(&store.build(ctx.path(), &[]));
    std::fs::write(ctx.path().join("later.txt"), "later\n").unwrap();
    let (fourth, out) = monitored_build(&store, ctx.path());
    assert_eq!(
        fourth["full_walk"], true,
        "a stale answer was trusted: {fourth}"
    );
    assert_eq!(read(&out.path().join("app/src/main.c")), "v3\n");
    assert_eq!(read(&out.path().join("app/later.txt")), "later\n");

    let (fifth, _) = monitored_build(&store, ctx.path());
    assert_eq!(fifth["full_walk"], false, "{fifth}");
    assert_eq!(fifth["walked"], 0, "{fifth}");
}

#[test]
fn symlinked_directory_keeps_its_target_watched() {
    let store = TestStore::new();
    let ctx = context(&[
        ("Dockerfile", "FROM busybox\nCOPY . /app\n"),
        ("sub/f", "v1\n"),
    ]);
    std::os::unix::fs::symlink("sub", ctx.path().join("a_link")).unwrap();
    monitored_build(&store, ctx.path());
    std::fs::write(ctx.path().join("sub/f"), "v2\n").unwrap();
    let (_, out) = monitored_build(&store, ctx.path());
    assert_eq!(read(&out.path().join("app/sub/f")), "v2\n");
    std::fs::remove_file(ctx.path().join("a_link")).unwrap();
    monitored_build(&store, ctx.path());
    std::fs::write(ctx.path().join("sub/f"), "v3\n").unwrap();
    let (_, out) = monitored_build(&store, ctx.path());
    assert_eq!(read(&out.path().join("app/sub/f")), "v3\n");
}

#[test]
fn replaced_context_directory_is_walked() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM busybox\nCOPY . /app\n"), ("f", "v1\n")]);
    monitored_build(&store, ctx.path());
    // Replace the directory itself: the old watch follows the old one.
    let old = ctx.path().with_extension("old");
    std::fs::rename(ctx.path(), &old).unwrap();
    std::fs::create_dir(ctx.path()).unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM busybox\nCOPY . /app\n").unwrap();
    std::fs::write(ctx.path().join("f"), "v2\n").unwrap();
    std::fs::write(old.join("f"), "old edit\n").unwrap();
    let (stats, out) = monitored_build(&store, ctx.path());
    assert_eq!(stats["full_walk"], true, "{stats}");
    assert_eq!(read(&out.path().join("app/f")), "v2\n");
    std::fs::write(ctx.path().join("f"), "v3\n").unwrap();
    let (_, out) = monitored_build(&store, ctx.path());
    assert_eq!(read(&out.path().join("app/f")), "v3\n");
    std::fs::remove_dir_all(&old).unwrap();
}

#[test]
fn monitor_keeps_no_inherited_descriptor() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM busybox\nCOPY . /app\n")]);
    // A pipe the build inherits without close-on-exec, as a shell's `3>&1`
    // gives it: the reader sees end of file only when every holder exits.
    let (reader, writer) = nix::unistd::pipe().unwrap();
    let inherit = nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty());
    nix::fcntl::fcntl(&writer, inherit).unwrap();
    let status = store
        .command()
        .env("STRATA_CONTEXT_MONITOR", "1")
        .args(["build", "--progress", "quiet", ctx.path().to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    drop(writer);
    assert_eq!(monitors_of(store.root()).len(), 1, "no monitor was started");
    let mut file = std::fs::File::from(reader);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut file, &mut rest);
        let _ = sender.send(());
    });
    assert!(
        receiver.recv_timeout(Duration::from_secs(5)).is_ok(),
        "the monitor keeps the pipe the build inherited open"
    );
}

#[test]
fn monitor_exits_when_context_is_removed() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM busybox\nCOPY . /app\n")]);
    monitored_build(&store, ctx.path());
    assert_eq!(monitors_of(store.root()).len(), 1, "no monitor was started");
    drop(ctx);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !monitors_of(store.root()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the monitor outlived its context"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn invalid_monitor_setting_is_rejected() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM busybox\n")]);
    let output = store
        .command()
        .env("STRATA_CONTEXT_MONITOR", "sometimes")
        .args(["build", ctx.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains("STRATA_CONTEXT_MONITOR") && text.contains("sometimes"),
        "{text}"
    );
    assert!(monitors_of(store.root()).is_empty());
}
