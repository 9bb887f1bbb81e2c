//! Running one semantics case from `tests/cases/semantics/cases/<ID>` as a
//! real build: the case's context is copied to a temporary directory, the
//! Dockerfile is passed with `-f`, and the final stage is exported both as a
//! local directory and as an OCI tarball whose image config is read back.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use crate::common::*;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The case directory of `id`.
pub fn case_dir(id: &str) -> PathBuf {
    repo_root().join("tests/cases/semantics/cases").join(id)
}

/// The case's Dockerfile text.
pub fn case_dockerfile(id: &str) -> String {
    let path = case_dir(id).join("Dockerfile");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading `{}`: {e}", path.display()))
}

/// One build of a case: its output, the exported root and the image config.
pub struct CaseRun {
    pub output: Output,
    pub root: tempfile::TempDir,
    /// The whole OCI image config (`config`, `history`, `rootfs`, ...), or
    /// `Null` when the build failed.
    pub image: serde_json::Value,
}

impl CaseRun {
    pub fn succeeded(&self) -> bool {
        self.output.status.success()
    }

    pub fn assert_success(&self) {
        assert_success(&self.output);
    }

    /// Asserts that the build failed and that its error output contains `needle`.
    pub fn assert_failure(&self, needle: &str) {
        let text = stderr(&self.output);
        assert!(
            !self.output.status.success(),
            "build succeeded but should fail with `{needle}`\n{text}"
        );
        assert!(
            text.contains(needle),
            "error output lacks `{needle}`:\n{text}"
        );
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// The exported file `name`, read as text.
    pub fn file(&self, name: &str) -> String {
        let path = self.path(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "exported file `{name}` unreadable: {e}\nexported: {:?}\n{}",
                self.listing(),
                stderr(&self.output)
            )
        })
    }

    pub fn assert_file(&self, name: &str, expected: &str) {
        assert_eq!(self.file(name), expected, "contents of exported `{name}`");
    }

    pub fn exists(&self, name: &str) -> bool {
        self.path(name).symlink_metadata().is_ok()
    }

    /// `uid:gid` of the exported entry `name` (not following symlinks).
    pub fn owner(&self, name: &str) -> String {
        let meta = self.path(name).symlink_metadata().unwrap();
        format!("{}:{}", meta.uid(), meta.gid())
    }

    pub fn link_target(&self, name: &str) -> String {
        std::fs::read_link(self.path(name))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    /// Every exported path relative to the root, sorted, directories with a
    /// trailing `/`.
    pub fn listing(&self) -> Vec<String> {
        let mut paths = Vec::new();
        collect(self.root.path(), self.root.path(), &mut paths);
        paths.sort();
        paths
    }

    /// The `config` object of the image config.
    pub fn config(&self) -> &serde_json::Value {
        &self.image["config"]
    }

    /// `Config.Env` as a map.
    pub fn env(&self) -> BTreeMap<String, String> {
        self.config()["Env"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|entry| {
                let (key, value) = entry.as_str().unwrap().split_once('=').unwrap();
                (key.to_string(), value.to_string())
            })
            .collect()
    }
}

fn collect(base: &Path, dir: &Path, paths: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let relative = path
            .strip_prefix(base)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if entry.file_type().unwrap().is_dir() {
            paths.push(format!("{relative}/"));
            collect(base, &path, paths);
        } else {
            paths.push(relative);
        }
    }
}

/// Copies the case's `context/` (if any) to a new temporary directory.
pub fn case_context(id: &str) -> tempfile::TempDir {
    let dir = context(&[]);
    let source = case_dir(id).join("context");
    if source.exists() {
        copy_tree(&source, dir.path());
    }
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else if kind.is_dir() {
            std::fs::create_dir(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            // The case files may be checked out read-only, and a context file
            // must stay writable so tests can change it between builds.
            set_mode(&target, 0o644);
        }
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Builds `dockerfile` over `ctx` in `store`, exporting the result.
pub fn build_in(store: &TestStore, ctx: &Path, dockerfile: &str, extra: &[&str]) -> CaseRun {
    let work = tempfile::Builder::new()
        .prefix("strata-case-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let dockerfile_path = work.path().join("Dockerfile");
    std::fs::write(&dockerfile_path, dockerfile).unwrap();
    let root = tempfile::Builder::new()
        .prefix("strata-out-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let oci = work.path().join("image.tar");
    let local_spec = format!("type=local,dest={}", root.path().display());
    let oci_spec = format!("type=oci,dest={}", oci.display());

    let mut args = vec![
        "-f",
        dockerfile_path.to_str().unwrap(),
        "--output",
        &local_spec,
        "--output",
        &oci_spec,
    ];
    args.extend_from_slice(extra);
    let output = store.build(ctx, &args);
    let image = if output.status.success() {
        read_oci_config(&oci)
    } else {
        serde_json::Value::Null
    };
    CaseRun {
        output,
        root,
        image,
    }
}

/// Builds case `id` with its own context in a new store.
pub fn run_case(id: &str, extra: &[&str]) -> CaseRun {
    let store = TestStore::new();
    let ctx = case_context(id);
    build_in(&store, ctx.path(), &case_dockerfile(id), extra)
}

/// Builds `dockerfile` (a variant of a case) with case `id`'s context.
pub fn run_variant(id: &str, dockerfile: &str, extra: &[&str]) -> CaseRun {
    let store = TestStore::new();
    let ctx = case_context(id);
    build_in(&store, ctx.path(), dockerfile, extra)
}

/// Splits a two-build case at the line starting with `marker`: the text
/// before it and the text from it on.
pub fn split_builds(dockerfile: &str, marker: &str) -> (String, String) {
    let index = dockerfile
        .find(marker)
        .unwrap_or_else(|| panic!("case Dockerfile lacks the `{marker}` line"));
    (
        dockerfile[..index].to_string(),
        dockerfile[index..].to_string(),
    )
}

/// Reads the image config from an OCI layout tarball.
pub fn read_oci_config(tarball: &Path) -> serde_json::Value {
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(std::fs::File::open(tarball).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        files.insert(name.trim_start_matches("./").to_string(), bytes);
    }
    let blob = |digest: &serde_json::Value| -> serde_json::Value {
        let digest = digest.as_str().unwrap();
        let path = format!("blobs/{}", digest.replacen(':', "/", 1));
        serde_json::from_slice(&files[&path]).unwrap()
    };
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let manifest = blob(&index["manifests"][0]["digest"]);
    blob(&manifest["config"]["digest"])
}
