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
