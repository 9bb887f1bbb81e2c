//! A build killed with SIGKILL at any moment leaves a store that the next
//! build uses without errors.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn sigkill_during_build_leaves_usable_store() {
    let store = TestStore::new();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY . /ctx\nRUN for i in 1 2 3 4 5; do echo $i > /f$i; sleep 0.1; done\nRUN cat /f5 > /done\n",
        ),
        ("data.bin", &"x".repeat(1 << 20)),
    ]);
    // Kill at increasing delays so different phases are interrupted:
    // context transfer, container start, running, commit.
    for delay_ms in [20u64, 80, 200, 400, 700, 1000] {
        let mut child = store
            .command()
            .args([
                "build",
                "--progress",
                "plain",
                "--no-cache",
                ctx.path().to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = tempfile::tempdir().unwrap();
    let spec = format!("type=local,dest={}", out.path().display());
    let output = store.build(ctx.path(), &["--output", &spec]);
    assert_success(&output);
    assert_eq!(
        std::fs::read_to_string(out.path().join("done")).unwrap(),
        "5\n"
    );
}

/// Returns the pids of processes whose command line is exactly `text`.
fn processes_running(text: &str) -> Vec<String> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).replace('\0', " ").trim() == text {
            pids.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    pids
}

#[test]
fn next_build_removes_containers_of_killed_build() {
    let store = TestStore::new();
    // A distinctive duration so only this test's container matches.
    let sleeper = format!("sleep {}", 900_000 + std::process::id() % 1000);
    let ctx = context(&[("Dockerfile", &format!("FROM busybox\nRUN {sleeper}\n"))]);
    let mut child = store
        .command()
        .args(["build", "--progress", "plain", ctx.path().to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while processes_running(&sleeper).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the RUN step never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !processes_running(&sleeper).is_empty(),
        "the container died with the build; nothing to clean up"
    );

    let other = context(&[("Dockerfile", "FROM busybox\nRUN true\n")]);
    assert_success(&store.build(other.path(), &[]));
    assert!(
        processes_running(&sleeper).is_empty(),
        "the killed build's container is still running"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let worker_mounts = store.root().join("worker/mounts");
    assert!(
        !mounts.contains(worker_mounts.to_str().unwrap()),
        "mounts of the killed build are left"
    );
}
