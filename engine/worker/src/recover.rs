//! Clean-up of what a killed strata process left running: containers
//! still executing a step, and mounts of snapshots it had in use.
//!
//! Container ids (`strata-PID-N`) and mount points (`PID-N`) carry the pid
//! of the process that made them, so leftovers are those whose process is
//! gone. A reused pid only delays the clean-up until that process exits.

use std::path::Path;
use std::process::{Command, Stdio};

/// Removes containers and mounts owned by dead strata processes.
pub(crate) fn remove_leftovers(runc: &Path, runc_root: &Path, mounts_dir: &Path) {
    for id in leftover_containers(runc_root) {
        tracing::info!(container = %id, "removing a container left by a killed build");
        for args in [&["kill", &id, "KILL"][..], &["delete", "--force", &id][..]] {
            let _ = Command::new(runc)
                .arg("--root")
                .arg(runc_root)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(runc_root.join("bundles").join(&id));
    }
    unmount_leftovers(mounts_dir);
}

/// Returns whether the pid that prefixes `name` (after `prefix`) is dead.
fn owner_is_dead(name: &str, prefix: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Containers are found by reading runc's state directory (one
/// subdirectory per container id, as `runc list` reads it) rather than by
/// running `runc list`, which would add a process start to every build.
fn leftover_containers(runc_root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for dir in [runc_root.to_path_buf(), runc_root.join("bundles")] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            ids.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
    }
    ids.sort();
    ids.dedup();
    ids.retain(|id| owner_is_dead(id, "strata-"));
    ids
}

/// Detaches every mount under a dead process's mount points, deepest
/// first, then removes the empty directories.
fn unmount_leftovers(mounts_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(mounts_dir) else {
        return;
    };
    let leftovers: Vec<std::path::PathBuf> = entries
        .flatten()
        .filter(|e| owner_is_dead(&e.file_name().to_string_lossy(), ""))
        .map(|e| e.path())
        .collect();
    if leftovers.is_empty() {
        return;
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut targets: Vec<&str> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|target| {
            leftovers
                .iter()
                .any(|dir| Path::new(target).starts_with(dir))
        })
        .collect();
    targets.sort_by_key(|target| std::cmp::Reverse(target.len()));
    for target in targets {
        tracing::info!(mount = %target, "unmounting a mount left by a killed build");
        let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
    }
    for dir in leftovers {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod tests {
    use super::owner_is_dead;

    #[test]
    fn live_and_dead_owners() {
        assert!(!owner_is_dead(
            &format!("strata-{}-3", std::process::id()),
            "strata-"
        ));
        assert!(owner_is_dead("strata-4000000-1", "strata-"));
        assert!(owner_is_dead("4000000-7", ""));
        assert!(!owner_is_dead("unrelated", "strata-"));
    }
}
