//! Incremental context transfer and `strata watch`, end to end.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const FILES: usize = 10_000;

/// Writes `FILES` small files in 100 directories of 100.
fn write_large_context(dir: &Path) {
    for index in 0..FILES {
        let path = dir.join(format!("files/d{:02}/f{index:05}.txt", index / 100));
        if index % 100 == 0 {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        }
        std::fs::write(path, format!("file {index}\n")).unwrap();
    }
}

fn events_of(events: &[serde_json::Value], kind: &str) -> Vec<serde_json::Value> {
    events
        .iter()
        .filter(|e| e["type"] == kind)
        .cloned()
        .collect()
}

/// Returns the reasons the `explanations` event gives for the step named like
/// `needle`.
fn reasons_for(events: &[serde_json::Value], needle: &str) -> Vec<String> {
    let explanations = events_of(events, "explanations");
    assert_eq!(explanations.len(), 1, "one explanations event per build");
    let steps = explanations[0]["steps"].as_array().unwrap();
    let step = steps
        .iter()
        .find(|s| s["step"].as_str().unwrap().contains(needle))
        .unwrap_or_else(|| panic!("no explanation for `{needle}` in {steps:?}"));
    step["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn one_changed_file_of_ten_thousand() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nCOPY . /app\nRUN ls -R /app/files | wc -l > /count\n",
    )]);
    write_large_context(ctx.path());
    let (first, events) = store.build_events(ctx.path(), &[]);
    assert_success(&first);
    let transfer = &events_of(&events, "context_transfer")[0]["stats"];
    assert_eq!(transfer["copied_files"], FILES as u64 + 1);

    let changed = "files/d42/f04242.txt";
    std::fs::write(ctx.path().join(changed), "changed\n").unwrap();
    let (second, events) = store.build_events(ctx.path(), &[]);
    assert_success(&second);

    let transfers = events_of(&events, "context_transfer");
    assert_eq!(transfers.len(), 1);
    let stats = &transfers[0]["stats"];
    assert_eq!(stats["copied_files"], 1, "stats: {stats}");
    assert_eq!(stats["copied_bytes"], 8, "stats: {stats}");
    assert_eq!(stats["removed"], 0, "stats: {stats}");
    assert_eq!(stats["changed_paths"], serde_json::json!([changed]));

    let copy_reasons = reasons_for(&events, "COPY . /app");
    assert!(
        copy_reasons.iter().any(|r| r.contains(changed)),
        "COPY reasons do not name `{changed}`: {copy_reasons:?}"
    );
    let run_reasons = reasons_for(&events, "RUN ls");
    assert!(
        run_reasons.iter().any(|r| r.contains(changed)),
        "RUN reasons do not name `{changed}`: {run_reasons:?}"
    );
}

/// A running `strata watch` whose stderr lines arrive on a channel.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    fn start(store: &TestStore, context: &Path) -> Watch {
        let mut child = store
            .command()
            .args(["watch", "--progress", "plain"])
            .arg(context)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Watch {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle` and returns the lines read
    /// up to it.
    fn wait_for(&mut self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut read = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    read.push(line.clone());
                    if line.contains(needle) {
                        return read;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        panic!(
            "no line with `{needle}` within 120 s; output:\n{}",
            self.seen.join("\n")
        );
    }

    fn interrupt(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let kill = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(kill.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
                    self.seen.push(line);
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("watch did not stop within 60 s after SIGINT");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_rebuilds_after_edit_and_failure() {
    let store = TestStore::new();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY . /app\nRUN test \"$(cat /app/flag)\" = ok\n",
        ),
        ("flag", "bad"),
        ("other.txt", "unchanged"),
        (".dockerignore", "*.log\n"),
    ]);
    let mut watch = Watch::start(&store, ctx.path());
    let first = watch.wait_for("watch: waiting for changes");
    assert!(
        first.iter().any(|l| l.contains("watch: build failed")),
        "the first build should fail: {first:?}"
    );

    // An excluded file must not trigger a rebuild; the edit after it must.
    std::fs::write(ctx.path().join("debug.log"), "noise").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    std::fs::write(ctx.path().join("flag"), "ok").unwrap();
    let second = watch.wait_for("watch: waiting for changes");
    let changed: Vec<&String> = second
        .iter()
        .filter(|l| l.contains("watch: changed:"))
        .collect();
    assert_eq!(changed.len(), 1, "one rebuild expected: {second:?}");
    assert!(changed[0].ends_with("changed: flag"), "{changed:?}");
    assert!(
        second
            .iter()
            .any(|l| l.contains("transferred 1 file (2 B)") && l.contains("only the changed paths")),
        "the rebuild should transfer only `flag`: {second:?}"
    );
    assert!(
        second
            .iter()
            .any(|l| l.contains("watch: ran") && l.contains("COPY . /app") && l.contains("flag")),
        "the COPY should be explained by `flag`: {second:?}"
    );
    assert!(
        second.iter().any(|l| l.contains("watch: build succeeded")),
        "{second:?}"
    );

    let status = watch.interrupt();
    assert_eq!(status.code(), Some(0), "output:\n{}", watch.seen.join("\n"));
    assert!(watch.seen.iter().any(|l| l == "watch: stopped"));
}

#[test]
fn watch_interrupted_during_build_exits_130() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo \"now-$((6 * 7))\" && sleep 60\n",
    )]);
    let mut watch = Watch::start(&store, ctx.path());
    // Wait for the container's output, not the step name, so the
    // container runs when the signal arrives.
    watch.wait_for("now-42");
    let status = watch.interrupt();
    assert_eq!(
        status.code(),
        Some(130),
        "output:\n{}",
        watch.seen.join("\n")
    );

    // The store stays usable: the same build runs to its RUN again.
    let quick = context(&[("Dockerfile", "FROM busybox\nRUN echo fine\n")]);
    assert_success(&store.build(quick.path(), &[]));
}

/// Finds `relative` in every snapshot's files under the store.
fn snapshot_copies(store: &TestStore, relative: &str) -> Vec<std::path::PathBuf> {
    let snapshots = store.root().join("snapshots");
    std::fs::read_dir(&snapshots)
        .unwrap()
        .map(|entry| entry.unwrap().path().join("fs").join(relative))
        .filter(|path| path.symlink_metadata().is_ok())
        .collect()
}

#[test]
fn copy_hardlinks_context_files() {
    use std::os::unix::fs::MetadataExt;
    let store = TestStore::new();
    // Files of 100 KB, above the size from which a copy links.
    let first = "first\n".repeat(20_000);
    let kept = "kept\n".repeat(20_000);
    let ctx = context(&[
        ("Dockerfile", "FROM busybox\nCOPY data/ /app/\n"),
        ("data/a.txt", &first),
        ("data/b.txt", &kept),
        ("data/small.txt", "small"),
    ]);
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    assert_success(&store.build(ctx.path(), &["--output", &dest]));
    assert_eq!(
        std::fs::read_to_string(out.path().join("app/a.txt")).unwrap(),
        first
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("app/small.txt")).unwrap(),
        "small"
    );

    // The mirror's `data/b.txt` and the COPY snapshot's `app/b.txt` share
    // an inode. A lone COPY links small files too, because it needs no
    // placeholder for them.
    let mirrors = snapshot_copies(&store, "data/b.txt");
    let copies = snapshot_copies(&store, "app/b.txt");
    assert_eq!(mirrors.len(), 1, "{mirrors:?}");
    assert_eq!(copies.len(), 1, "{copies:?}");
    let mirror = mirrors[0].metadata().unwrap();
    let copy = copies[0].metadata().unwrap();
    assert_eq!(mirror.ino(), copy.ino(), "COPY did not hardlink `b.txt`");
    let small_mirror = snapshot_copies(&store, "data/small.txt")[0]
        .metadata()
        .unwrap();
    let small_copy = snapshot_copies(&store, "app/small.txt")[0]
        .metadata()
        .unwrap();
    assert_eq!(
        small_mirror.ino(),
        small_copy.ino(),
        "a lone COPY did not hardlink the small file"
    );

    // Changing a linked file gives the mirror a new inode; the old
    // snapshot keeps its bytes.
    let second = "second\n".repeat(20_000);
    std::fs::write(ctx.path().join("data/a.txt"), &second).unwrap();
    let out2 = tempfile::tempdir().unwrap();
    let dest2 = format!("type=local,dest={}", out2.path().display());
    assert_success(&store.build(ctx.path(), &["--output", &dest2]));
    assert_eq!(
        std::fs::read_to_string(out2.path().join("app/a.txt")).unwrap(),
        second
    );
    let mut contents: Vec<String> = snapshot_copies(&store, "app/a.txt")
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    contents.sort();
    assert_eq!(contents, [first, second]);
}

#[test]
fn copy_with_chmod_does_not_hardlink() {
    use std::os::unix::fs::MetadataExt;
    let store = TestStore::new();
    let ctx = context(&[
        ("Dockerfile", "FROM busybox\nCOPY --chmod=600 data/ /app/\n"),
        ("data/a.txt", &"first\n".repeat(20_000)),
    ]);
    assert_success(&store.build(ctx.path(), &[]));
    let mirror = snapshot_copies(&store, "data/a.txt")[0].metadata().unwrap();
    let copy = snapshot_copies(&store, "app/a.txt")[0].metadata().unwrap();
    assert_ne!(
        mirror.ino(),
        copy.ino(),
        "a chmod copy must not share the inode"
    );
    assert_eq!(copy.mode() & 0o7777, 0o600);
    assert_eq!(mirror.mode() & 0o7777, 0o644);
}

/// Owner, mode, size, modification time and content of every entry under
/// `root`, by relative path. Xattrs are left out: the context mirror does
/// not copy them, so neither COPY has any to compare.
fn tree_listing(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut listing = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = path.symlink_metadata().unwrap();
            let content = if meta.is_file() {
                std::fs::read(&path).unwrap()
            } else if meta.is_symlink() {
                std::fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                stack.push(path.clone());
                Vec::new()
            };
            let content = {
                use std::hash::{Hash, Hasher};
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                content.hash(&mut hasher);
                hasher.finish()
            };
            listing.push(format!(
                "{} {:o} {}:{} {} {}.{} {:x}",
                path.strip_prefix(root).unwrap().display(),
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec(),
                content,
            ));
        }
    }
    listing.sort();
    listing
}

/// Returns the `fs` directory of the one snapshot, other than those in
/// `except`, that contains `relative`.
fn snapshot_with(
    store: &TestStore,
    relative: &str,
    except: &[std::path::PathBuf],
) -> std::path::PathBuf {
    let found: Vec<_> = snapshot_copies(store, relative)
        .into_iter()
        .map(|path| {
            let mut fs = path.clone();
            for _ in Path::new(relative).components() {
                fs.pop();
            }
            fs
        })
        .filter(|fs| !except.contains(fs))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

#[test]
fn linked_copy_equals_byte_copy() {
    use std::os::unix::fs::PermissionsExt;
    let store = TestStore::new();
    let ctx = context(&[
        ("Linked.Dockerfile", "FROM busybox\nCOPY data/ /app/\n"),
        // The owner is the files' owner (root), so only the copy differs.
        (
            "Copied.Dockerfile",
            "FROM busybox\nCOPY --chown=0:0 data/ /app/\n",
        ),
        ("data/small.txt", "small"),
        ("data/empty", ""),
        ("data/run.sh", "#!/bin/sh\n"),
        ("data/sub/deeper/large.bin", &"x".repeat(100_000)),
        ("data/sub/secret", "secret"),
    ]);
    let data = ctx.path().join("data");
    std::fs::set_permissions(data.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        data.join("sub/secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::symlink("small.txt", data.join("link")).unwrap();

    let linked_file = ctx.path().join("Linked.Dockerfile");
    assert_success(&store.build(ctx.path(), &["-f", linked_file.to_str().unwrap()]));
    let linked = snapshot_with(&store, "app/small.txt", &[]);
    let copied_file = ctx.path().join("Copied.Dockerfile");
    assert_success(&store.build(ctx.path(), &["-f", copied_file.to_str().unwrap()]));
    let copied = snapshot_with(&store, "app/small.txt", &[linked.clone()]);

    use std::os::unix::fs::MetadataExt;
    let linked_ino = linked.join("app/small.txt").metadata().unwrap().ino();
    let copied_ino = copied.join("app/small.txt").metadata().unwrap().ino();
    let mirror_ino = snapshot_copies(&store, "data/small.txt")[0]
        .metadata()
        .unwrap()
        .ino();
    assert_eq!(linked_ino, mirror_ino, "the plain COPY did not link");
    assert_ne!(copied_ino, mirror_ino, "the --chown COPY linked");
    // `/app` is created by each build, so its times are the build's own.
    let without_app = |listing: Vec<String>| -> Vec<String> {
        listing
            .into_iter()
            .filter(|line| !line.starts_with("app "))
            .collect()
    };
    assert_eq!(
        without_app(tree_listing(&linked)),
        without_app(tree_listing(&copied))
    );
}

#[test]
fn linked_copy_into_base_image_directory() {
    let store = TestStore::new();
    // `/etc` exists only in the base image's layer, so the COPY's snapshot
    // has no `etc` directory until the copy puts one there.
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY data/ /etc/\nRUN cat /etc/added.conf /etc/nested/more.conf > /out\n",
        ),
        ("data/added.conf", "added\n"),
        ("data/nested/more.conf", "more\n"),
    ]);
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    assert_success(&store.build(ctx.path(), &["--output", &dest]));
    assert_eq!(
        std::fs::read_to_string(out.path().join("out")).unwrap(),
        "added\nmore\n"
    );
    assert!(
        out.path().join("etc/passwd").exists(),
        "the base image's /etc was lost"
    );
}
