//! Helpers shared by the worker's integration tests.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Busybox from Debian's `busybox-static`, a static binary that runs in an
/// otherwise empty rootfs.
pub const BUSYBOX: &str = "/bin/busybox";

/// Builds a minimal rootfs in `root`: busybox with its applets linked into
/// `/bin`, and `/etc/passwd` and `/etc/group` with `root`, `nobody` and
/// `app` (uid and gid 1000, also in group `staff`, gid 50).
pub fn build_busybox_rootfs(root: &Path) {
    for dir in ["bin", "etc", "tmp", "root", "home/app"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
    // Link the applets ourselves: `busybox --install -s` links to the
    // running binary's host path, and executing the fresh copy can fail
    // with `ETXTBSY` while another test thread forks.
    let output = Command::new(BUSYBOX).arg("--list").output().unwrap();
    assert!(output.status.success(), "busybox --list failed");
    for applet in String::from_utf8(output.stdout).unwrap().lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
         app:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nstaff:x:50:app\nnogroup:x:65534:\napp:x:1000:\n",
    )
    .unwrap();
}

/// Skips a test (returning early) unless it runs as root with runc
/// installed, because mounts and containers need both.
#[macro_export]
macro_rules! require_root {
    () => {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// Path of the runc binary.
pub fn runc_path() -> PathBuf {
    for candidate in ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("runc not found: install it (Debian package `runc`)");
}
