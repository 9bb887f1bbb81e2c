//! End-to-end tests of `strata view` and `strata build --ui`: the checks
//! before a window opens, and a window opening on a private Xvfb display.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TWO_STEPS: &str = "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt\n";

fn without_display(store: &TestStore, args: &[&str]) -> std::process::Output {
    store
        .command()
        .args(args)
        .env_remove("DISPLAY")
        .output()
        .unwrap()
}

fn history_count(store: &TestStore) -> usize {
    let output = store.strata(&["history", "ls", "--format", "json"]);
    assert_success(&output);
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    list.as_array().map_or(0, Vec::len)
}

#[test]
fn view_without_display_fails() {
    let store = TestStore::new();
    let output = without_display(&store, &["view", "^0"]);
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(error.contains("`DISPLAY`"), "{error}");
    assert!(error.contains("`strata view`"), "{error}");
}

#[test]
fn build_ui_without_display_builds_nothing() {
    let store = TestStore::new();
    let context = context(&[("Dockerfile", TWO_STEPS), ("a.txt", "a\n")]);
    let path = context.path().to_str().unwrap();
    let output = without_display(&store, &["build", "--ui", "--progress", "plain", path]);
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(error.contains("`strata build --ui`"), "{error}");
    assert!(!error.contains("RUN cat"), "{error}");
    assert_eq!(history_count(&store), 0);
}

#[test]
fn view_unknown_build_fails() {
    let store = TestStore::new();
    let output = store
        .command()
        .args(["view", "0123456789abcdef"])
        .env("DISPLAY", ":0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(error.contains("No build `0123456789abcdef`"), "{error}");
}

/// An Xvfb server on a display number of its own, stopped on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    /// Starts a server; tests that run at once pass different `slot`s
    /// (0 or 1) so that each gets a display of its own.
    fn start(slot: u32) -> Option<Xvfb> {
        if !std::path::Path::new("/usr/bin/Xvfb").exists() {
            eprintln!("skipped: `/usr/bin/Xvfb` is missing (Debian package `xvfb`)");
            return None;
        }
        // Display numbers from 150 up, offset by the process id, stay clear
        // of a desktop's and of other test processes.
        let number = 150 + (std::process::id() % 250) * 2 + slot;
        let display = format!(":{number}");
        let child = Command::new("/usr/bin/Xvfb")
            .args([
                display.as_str(),
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let socket = format!("/tmp/.X11-unix/X{number}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::path::Path::new(&socket).exists() {
            assert!(Instant::now() < deadline, "Xvfb did not create `{socket}`");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Xvfb { child, display })
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn view_opens_window_on_xvfb() {
    let store = TestStore::new();
    let context = context(&[("Dockerfile", TWO_STEPS), ("a.txt", "a\n")]);
    assert_success(&store.build(context.path(), &[]));
    let Some(xvfb) = Xvfb::start(0) else {
        return;
    };
    let mut view = store
        .command()
        .args(["view", "^0"])
        .env("DISPLAY", &xvfb.display)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A window that fails to open makes the command exit at once, and one
    // that opened stays until it is closed. NOTE: the check waits to tell
    // the two apart, so a very slow start that fails later would pass.
    std::thread::sleep(Duration::from_secs(5));
    let exited = view.try_wait().unwrap();
    let _ = view.kill();
    let output = view.wait_with_output().unwrap();
    assert!(exited.is_none(), "strata view exited: {}", stderr(&output));
}

#[test]
fn build_ui_runs_build_beside_window() {
    let store = TestStore::new();
    let context = context(&[("Dockerfile", TWO_STEPS), ("a.txt", "a\n")]);
    let Some(xvfb) = Xvfb::start(1) else {
        return;
    };
    let path = context.path().to_str().unwrap();
    let mut build = store
        .command()
        .args(["build", "--ui", "--progress", "plain", path])
        .env("DISPLAY", &xvfb.display)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The command prints a message once the build has finished and only the open
    // window keeps it running.
    let stderr = BufReader::new(build.stderr.take().unwrap());
    let mut progress = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let waiting = line.contains("close its window or press Ctrl-C to exit");
        progress.push(line);
        if waiting {
            break;
        }
    }
    let progress = progress.join("\n");
    assert!(progress.contains("RUN cat /a.txt"), "{progress}");
    assert!(build.try_wait().unwrap().is_none(), "{progress}");

    let interrupt = Command::new("kill")
        .args(["-INT", &build.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let status = build.wait().unwrap();
    assert!(status.success(), "{status}\n{progress}");
    assert_eq!(history_count(&store), 1);
}
