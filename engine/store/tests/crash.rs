//! Kills a process writing to the store with SIGKILL at random points and
//! checks that the next open finds every committed record and nothing
//! half-written.
//!
//! The writer is this test binary run again with `CHILD_ROOT` set: the
//! `crash_writer_child` test then loops over store writes and logs each
//! one after the store call returns.

mod common;

use rand::Rng;
use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use strata_llb::Digest;
use strata_llb::image::ImageConfig;
use strata_store::{SnapshotKind, Store};

const CHILD_ROOT: &str = "STRATA_STORE_CRASH_ROOT";
const CHILD_LOG: &str = "STRATA_STORE_CRASH_LOG";
const ROUNDS: usize = 8;

/// The writer half; it returns at once unless the parent test started it.
#[test]
fn crash_writer_child() {
    let (Some(root), Some(log)) = (std::env::var_os(CHILD_ROOT), std::env::var_os(CHILD_LOG))
    else {
        return;
    };
    write_until_killed(Path::new(&root), Path::new(&log));
}

#[test]
fn killed_writer_leaves_usable_store() {
    let dir = common::tempdir();
    let root = dir.path().join("root");
    let log = dir.path().join("log");
    fs::write(&log, "").unwrap();
    let mut rng = rand::rng();
    for round in 0..ROUNDS {
        let lines_before = read_log(&log).len();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_writer_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ROOT, &root)
            .env(CHILD_LOG, &log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the child to get past opening the store, then kill it at
        // a random point of its write loop.
        let started = Instant::now();
        while read_log(&log).len() == lines_before {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "round {round}: child made no progress"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..300)));
        child.kill().unwrap();
        child.wait().unwrap();
        check_store(&root, &log);
    }

    let kinds: HashSet<String> = read_log(&log)
        .iter()
        .map(|line| line.split(' ').next().unwrap().to_string())
        .collect();
    for kind in ["blob", "snapshot", "cache", "image"] {
        assert!(
            kinds.contains(kind),
            "the writer never finished a `{kind}` write"
        );
    }
}

fn write_until_killed(root: &Path, log: &Path) {
    let store = Store::open(root).unwrap();
    let mut log = fs::OpenOptions::new().append(true).open(log).unwrap();
    let pid = std::process::id();
    let mut parent: Option<String> = None;
    let tar_path = root.join(format!("rootfs-{pid}.tar"));
    for i in 0u64.. {
        let data = format!("blob {pid} {i}\n").repeat(4096);
        let (digest, _) = store.write_blob(&mut data.as_bytes()).unwrap();
        writeln!(log, "blob {digest}").unwrap();

        // Chains stay short so `lowers` stays cheap.
        let base = if i % 8 == 0 { None } else { parent.as_deref() };
        let active = store.prepare(base, SnapshotKind::Regular).unwrap();
        fs::write(active.upper.join("id"), &active.id).unwrap();
        fs::write(active.upper.join("payload"), data.as_bytes()).unwrap();
        if i % 5 == 4 {
            store.abort(active).unwrap();
            continue;
        }
        let id = store.commit(active).unwrap();
        writeln!(log, "snapshot {id}").unwrap();

        let key = Digest::of_bytes(format!("key {pid} {i}").as_bytes());
        store.cache_put(&key, Some(&id)).unwrap();
        writeln!(log, "cache {key} {id}").unwrap();
        parent = Some(id);

        if i % 4 == 3 {
            let name = format!("localhost/crash:{pid}-{i}");
            let tar = common::TarBuilder::new()
                .file("id", name.as_bytes())
                .finish();
            fs::write(&tar_path, tar).unwrap();
            store
                .import_rootfs(&tar_path, &name, ImageConfig::default())
                .unwrap();
            writeln!(log, "image {name}").unwrap();
        }
    }
}

/// Returns the complete lines of the log; a line cut by the kill is left out.
fn read_log(log: &Path) -> Vec<String> {
    let text = fs::read_to_string(log).unwrap();
    let complete = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
    complete.lines().map(str::to_string).collect()
}

fn check_store(root: &Path, log: &Path) {
    let store = Store::open(root).unwrap();
    for line in read_log(log) {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields[..] {
            ["blob", digest] => store.verify_blob(&digest.parse().unwrap()).unwrap(),
            ["snapshot", id] => check_snapshot(&store, id),
            ["cache", key, id] => {
                assert_eq!(
                    store.cache_get(&key.parse().unwrap()).unwrap(),
                    Some(Some(id.to_string()))
                );
            }
            ["image", name] => {
                let image = store
                    .image(name)
                    .unwrap()
                    .unwrap_or_else(|| panic!("image `{name}` lost"));
                store.verify_blob(&image.manifest).unwrap();
                let lowers = store.lowers(image.snapshot.as_deref().unwrap()).unwrap();
                assert!(
                    lowers[0].join("id").is_file(),
                    "image `{name}` has no files"
                );
            }
            _ => panic!("unexpected log line `{line}`"),
        }
    }
    check_nothing_half_written(&store, root);
}

/// Regular snapshots hold their own id in `id`; layer snapshots of
/// imported images hold the image name there.
fn check_snapshot(store: &Store, id: &str) {
    let lowers = store.lowers(id).unwrap();
    let content = fs::read_to_string(lowers[0].join("id")).unwrap();
    match store.snapshot(id).unwrap().kind {
        SnapshotKind::Layer => assert!(content.starts_with("localhost/crash:"), "{content}"),
        _ => assert_eq!(content, id),
    }
    for lower in &lowers {
        assert!(lower.is_dir(), "missing lower `{}`", lower.display());
    }
}

/// Checks that every blob hashes to its name, no temp file or active
/// snapshot of the dead child remains, every snapshot dir has a committed
/// record, and every cache record points at a committed snapshot.
fn check_nothing_half_written(store: &Store, root: &Path) {
    for entry in fs::read_dir(root.join("content/sha256")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        store
            .verify_blob(&format!("sha256:{name}").parse().unwrap())
            .unwrap();
    }
    let leftovers: Vec<PathBuf> = fs::read_dir(root.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");

    let db = rusqlite::Connection::open(root.join("metadata.db")).unwrap();
    let active: i64 = db
        .query_row(
            "SELECT count(*) FROM snapshots WHERE state = 'active'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(active, 0, "active snapshots of a dead process remain");
    let committed: HashSet<String> = store
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    for entry in fs::read_dir(root.join("snapshots")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            committed.contains(&name),
            "snapshot dir `{name}` has no committed record"
        );
    }
    for id in &committed {
        check_snapshot(store, id);
    }
    let dangling: i64 = db
        .query_row(
            "SELECT count(*) FROM cache_records WHERE snapshot IS NOT NULL
             AND snapshot NOT IN (SELECT id FROM snapshots WHERE state = 'committed')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dangling, 0, "cache records point at missing snapshots");
}
