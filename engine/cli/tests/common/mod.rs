//! Helpers for end-to-end tests that run the real `strata` binary against a
//! private store with a busybox image built from Debian's static busybox.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Returns the directory that keeps slow-to-build test inputs between runs.
pub fn cache_dir() -> PathBuf {
    let dir = std::env::var_os("STRATA_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/strata-test-cache"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Returns a tar of a minimal busybox root filesystem, built once.
pub fn busybox_rootfs() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = cache_dir().join("busybox-rootfs-test-v2.tar");
        if !path.exists() {
            build_busybox_rootfs(&path);
        }
        path
    })
    .clone()
}

fn build_busybox_rootfs(path: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "`/bin/busybox` is missing: install Debian's `busybox-static` (installer/setup.sh does)"
    );
    let list = Command::new(busybox).arg("--list-full").output().unwrap();
    let applets = String::from_utf8(list.stdout).unwrap();

    let temp = path.with_extension("tmp");
    let mut builder = tar::Builder::new(std::fs::File::create(&temp).unwrap());
    let add_dir = |builder: &mut tar::Builder<std::fs::File>, name: &str, mode: u32| {
        let mut header = new_header();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(mode);
        header.set_size(0);
        header.set_mtime(0);
        builder
            .append_data(&mut header, name, std::io::empty())
            .unwrap();
    };
    for dir in [
        "bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "home", "var", "dev", "proc",
        "sys",
    ] {
        add_dir(&mut builder, dir, 0o755);
    }
    add_dir(&mut builder, "tmp", 0o1777);

    let bytes = std::fs::read(busybox).unwrap();
    let mut header = new_header();
    header.set_mode(0o755);
    header.set_size(bytes.len() as u64);
    header.set_mtime(0);
    builder
        .append_data(&mut header, "bin/busybox", bytes.as_slice())
        .unwrap();
    for applet in applets
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "bin/busybox")
    {
        let mut header = new_header();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        header.set_mtime(0);
        builder
            .append_link(&mut header, applet, "/bin/busybox")
            .unwrap();
    }
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"),
    ];
    for (name, content) in files {
        let mut header = new_header();
        header.set_mode(0o644);
        header.set_size(content.len() as u64);
        header.set_mtime(0);
        builder
            .append_data(&mut header, name, content.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// A GNU tar header owned by root with a zero mtime.
fn new_header() -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// A private store with `busybox:latest` imported.
pub struct TestStore {
    pub dir: tempfile::TempDir,
}

/// Removes the store with its mounts. A build that a test killed, or one
/// still running when its test failed, leaves overlay mounts under the
/// store that would keep the temporary directory from being deleted.
impl Drop for TestStore {
    fn drop(&mut self) {
        let root = self.dir.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|line| line.split(' ').nth(1))
            .filter(|point| point.starts_with(&root))
            .collect();
        // Deepest first, so a mount on top of another comes off before it.
        points.sort_by_key(|point| std::cmp::Reverse(point.len()));
        for point in points {
            let _ = Command::new("umount").args(["-l", point]).status();
        }
    }
}

impl TestStore {
    pub fn new() -> TestStore {
        let dir = tempfile::Builder::new()
            .prefix("strata-e2e-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let store = TestStore { dir };
        let rootfs = busybox_rootfs();
        let output = store.strata(&[
            "image",
            "import",
            rootfs.to_str().unwrap(),
            "--tag",
            "busybox:latest",
            "--change",
            r#"CMD ["sh"]"#,
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]);
        assert_success(&output);
        store
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
        command
            .env("STRATA_ROOT", self.root())
            // Registries in tests run on 127.0.0.1; nothing is pulled from elsewhere.
            .env("STRATA_REGISTRY_ALLOW", "127.0.0.1")
            .env_remove("STRATA_LOG")
            .env_remove("STRATA_CONTEXT_MONITOR");
        command
    }

    pub fn strata(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Builds `context` with plain progress and returns the output.
    pub fn build(&self, context: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["build", "--progress", "plain"];
        args.extend_from_slice(extra);
        args.push(context.to_str().unwrap());
        self.strata(&args)
    }

    /// Builds with `rawjson` progress and returns the parsed events.
    pub fn build_events(&self, context: &Path, extra: &[&str]) -> (Output, Vec<serde_json::Value>) {
        let mut args = vec!["build", "--progress", "rawjson"];
        args.extend_from_slice(extra);
        args.push(context.to_str().unwrap());
        let output = self.strata(&args);
        let events = String::from_utf8_lossy(&output.stderr)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        (output, events)
    }
}

/// Writes files into a new temporary context directory.
pub fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("strata-ctx-")
        .tempdir_in("/var/tmp")
        .unwrap();
    for (name, content) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "strata failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        stderr(output)
    );
}

/// Counts events of one type for vertices whose name contains `needle`.
pub fn count_events(events: &[serde_json::Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

/// Names of vertices that ran (completed without a cache hit).
pub fn vertex_names_with(events: &[serde_json::Value], kind: &str) -> Vec<String> {
    let names: std::collections::HashMap<String, String> = events
        .iter()
        .filter(|e| e["type"] == "vertex_queued")
        .map(|e| {
            (
                e["vertex"].as_str().unwrap().to_string(),
                e["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    events
        .iter()
        .filter(|e| e["type"] == kind)
        .filter_map(|e| names.get(e["vertex"].as_str()?).cloned())
        .collect()
}

/// The private Docker Engine started by `tests/support/dockerd.sh`, if it
/// runs; its socket path.
pub fn docker_host() -> Option<String> {
    let script = repo_root().join("tests/support/dockerd.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg("start")
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "note: the private dockerd did not start: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let env = Command::new("bash").arg(&script).arg("env").output().ok()?;
    let text = String::from_utf8_lossy(&env.stdout);
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("export DOCKER_HOST=")
            .map(|v| v.trim_matches('"').to_string())
    })
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Runs Debian's docker client against the private engine.
pub fn docker(host: &str, args: &[&str]) -> Output {
    Command::new("/usr/bin/docker")
        .arg("-H")
        .arg(host)
        .args(args)
        .output()
        .unwrap()
}
