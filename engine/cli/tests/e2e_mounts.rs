//! End-to-end `RUN --mount`, `--network` and `--security` builds with the
//! real binary, runc and overlayfs.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const SECRET: &str = "s3cr3t-value-7f2a9c41";

/// Builds with a local output and returns the output directory.
fn build_local(store: &TestStore, ctx: &Path, extra: &[&str]) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    let mut args = vec!["--output", dest.as_str()];
    args.extend_from_slice(extra);
    let output = store.build(ctx, &args);
    assert_success(&output);
    out
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("reading `{name}` from the output: {e}"))
}

/// Returns every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Searches every file under `dir` for `needle`, decompressing gzip blobs.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|path| {
            let bytes = std::fs::read(path).unwrap_or_default();
            if contains(&bytes, needle) {
                return true;
            }
            let unzipped = Command::new("gzip").arg("-dc").arg(path).output().unwrap();
            unzipped.status.success() && contains(&unzipped.stdout, needle)
        })
        .collect()
}

#[test]
fn cache_mount_survives_between_builds() {
    let store = TestStore::new();
    let first = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=cache,target=/var/cache/app echo kept > /var/cache/app/note\n",
    )]);
    let out = build_local(&store, first.path(), &[]);
    assert!(
        !out.path().join("var/cache/app").exists(),
        "the cache mount's directory leaked into the first result"
    );

    let second = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=cache,target=/var/cache/app cat /var/cache/app/note > /seen\n",
    )]);
    let out = build_local(&store, second.path(), &[]);
    assert_eq!(read(out.path(), "seen"), "kept\n");
    assert!(!out.path().join("var/cache/app/note").exists());
}

#[test]
fn cache_mount_id_and_owner() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=cache,id=shared-id,target=/a,uid=1234,gid=99,mode=0750 \
         stat -c '%u:%g:%a' /a > /owner && echo one > /a/file\n\
         RUN --mount=type=cache,id=shared-id,target=/b cat /b/file > /through-id\n",
    )]);
    let out = build_local(&store, ctx.path(), &[]);
    assert_eq!(read(out.path(), "owner"), "1234:99:750\n");
    assert_eq!(read(out.path(), "through-id"), "one\n");
}

/// Two stages that use one cache id at the same time; each fails when it
/// finds the other's marker.
fn overlapping_users(sharing: &str) -> String {
    let step = |name: &str| {
        format!(
            "FROM busybox AS {name}\n\
             RUN --mount=type=cache,id=c,target=/c,sharing={sharing} \
             sh -c 'if [ -e /c/busy ]; then echo overlap; exit 1; fi; touch /c/busy; sleep 1; \
             rm /c/busy; echo {name} > /done'\n"
        )
    };
    format!(
        "{}{}FROM busybox\nCOPY --from=one /done /one\nCOPY --from=two /done /two\n",
        step("one"),
        step("two")
    )
}

#[test]
fn cache_mount_locked_and_private_isolate_users() {
    for sharing in ["locked", "private"] {
        let store = TestStore::new();
        let ctx = context(&[("Dockerfile", &overlapping_users(sharing))]);
        let out = build_local(&store, ctx.path(), &[]);
        assert_eq!(read(out.path(), "one"), "one\n", "sharing={sharing}");
        assert_eq!(read(out.path(), "two"), "two\n", "sharing={sharing}");
    }
}

#[test]
fn bind_mount_from_stage_and_context() {
    let store = TestStore::new();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox AS data\nRUN echo payload > /data.txt\n\
             FROM busybox\n\
             RUN --mount=type=bind,from=data,target=/mnt cat /mnt/data.txt > /copied\n\
             RUN --mount=type=bind,source=src,target=/ctx,rw \
             sh -c 'touch /ctx/written && ls /ctx > /listing'\n\
             RUN --mount=target=/ro sh -c 'touch /ro/x 2>/dev/null && echo writable > /ro-state || echo readonly > /ro-state'\n",
        ),
        ("src/a.txt", "a"),
    ]);
    let out = build_local(&store, ctx.path(), &[]);
    assert_eq!(read(out.path(), "copied"), "payload\n");
    assert_eq!(read(out.path(), "listing"), "a.txt\nwritten\n");
    assert_eq!(read(out.path(), "ro-state"), "readonly\n");
    assert!(
        !ctx.path().join("src/written").exists(),
        "a rw bind wrote to the context"
    );
    assert!(
        !out.path().join("ctx").exists(),
        "the bind mount point leaked"
    );
    assert!(
        !out.path().join("mnt").exists(),
        "the bind mount point leaked"
    );
}

#[test]
fn tmpfs_mount_is_not_in_result() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=tmpfs,target=/scratch,size=1m \
         sh -c 'grep \" /scratch \" /proc/mounts > /mounts; echo x > /scratch/f'\n",
    )]);
    let out = build_local(&store, ctx.path(), &[]);
    let mounts = read(out.path(), "mounts");
    assert!(mounts.starts_with("tmpfs /scratch tmpfs"), "{mounts}");
    assert!(mounts.contains("size=1024k"), "{mounts}");
    assert!(!out.path().join("scratch").exists());
}

#[test]
fn secret_reaches_run_but_no_record() {
    let store = TestStore::new();
    // The steps write digests of what they saw, never the value itself.
    let dockerfile = "FROM busybox\n\
         RUN --mount=type=secret,id=token,mode=0440,uid=7 \
         sh -c 'sha256sum /run/secrets/token | cut -c1-64 > /file-sha; stat -c %a:%u /run/secrets/token > /file-owner'\n\
         RUN --mount=type=secret,id=token,env=TOKEN \
         sh -c 'printf %s \"$TOKEN\" | sha256sum | cut -c1-64 > /env-sha'\n";
    let ctx = context(&[("Dockerfile", dockerfile)]);
    let secret_file = ctx.path().join("..").join(format!(
        "{}-secret",
        ctx.path().file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&secret_file, SECRET).unwrap();
    let secret = format!("id=token,src={}", secret_file.display());
    let tar = tempfile::tempdir().unwrap();
    let tar_path = tar.path().join("image.tar");
    let docker_dest = format!("type=docker,dest={}", tar_path.display());
    let local = tempfile::tempdir().unwrap();
    let local_dest = format!("type=local,dest={}", local.path().display());

    let expected = Command::new("sha256sum")
        .arg(&secret_file)
        .output()
        .unwrap();
    let expected = format!("{}\n", &String::from_utf8_lossy(&expected.stdout)[..64]);
    let mut command = store.command();
    command.args([
        "build",
        "--progress",
        "rawjson",
        "--secret",
        &secret,
        "--output",
        &docker_dest,
        "--output",
        &local_dest,
    ]);
    let output = command.arg(ctx.path()).output().unwrap();
    std::fs::remove_file(&secret_file).unwrap();
    assert_success(&output);
    assert_eq!(read(local.path(), "file-sha"), expected);
    assert_eq!(read(local.path(), "file-owner"), "440:7\n");
    assert_eq!(read(local.path(), "env-sha"), expected);

    assert!(
        !stderr(&output).contains(SECRET),
        "the secret is in the events"
    );
    let unpacked = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&tar_path)
        .arg("-C")
        .arg(unpacked.path())
        .status()
        .unwrap();
    assert!(status.success());
    let in_image = files_containing(unpacked.path(), SECRET);
    assert!(
        in_image.is_empty(),
        "the secret is in the image: {in_image:?}"
    );
    assert!(files_containing(local.path(), SECRET).is_empty());
    assert!(
        !local.path().join("run/secrets").exists(),
        "the secret mount point leaked"
    );

    let dump = store.strata(&["dump-llb", ctx.path().to_str().unwrap()]);
    assert_success(&dump);
    assert!(
        !contains(&dump.stdout, SECRET),
        "the secret is in the definition"
    );
    assert!(
        contains(&dump.stdout, "\"token\""),
        "the definition lacks the secret id"
    );

    let databases: Vec<PathBuf> = files_under(store.root())
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("metadata.db")
        })
        .collect();
    assert!(!databases.is_empty());
    for database in &databases {
        let bytes = std::fs::read(database).unwrap();
        assert!(
            !contains(&bytes, SECRET),
            "the secret is in `{}`",
            database.display()
        );
    }
    let history = databases
        .iter()
        .any(|db| contains(&std::fs::read(db).unwrap(), "\"token\""));
    assert!(history, "the history record lacks the secret id");
}

#[test]
fn missing_required_secret_names_flag() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=secret,id=npmrc,required cat /run/secrets/npmrc\n",
    )]);
    let output = store.build(ctx.path(), &[]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("Secret `npmrc`"), "{text}");
    assert!(text.contains("--secret id=npmrc"), "{text}");

    let optional = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=secret,id=npmrc sh -c 'test ! -e /run/secrets/npmrc'\n",
    )]);
    assert_success(&store.build(optional.path(), &[]));
}

#[test]
fn secret_from_environment() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=secret,id=API_TOKEN cat /run/secrets/API_TOKEN > /copy\n",
    )]);
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    let output = store
        .command()
        .env("API_TOKEN", "from-env")
        .args(["build", "--progress", "plain", "--secret", "id=API_TOKEN"])
        .args(["--output", &dest])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(read(out.path(), "copy"), "from-env");
}

/// Copies `ssh-add` with its shared libraries and loader into `dir`, so
/// a busybox container can run it.
fn stage_ssh_add(dir: &Path) {
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy("/usr/bin/ssh-add", dir.join("ssh-add")).unwrap();
    let ldd = Command::new("ldd")
        .arg("/usr/bin/ssh-add")
        .output()
        .unwrap();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|word| word.starts_with('/'))
            .map(PathBuf::from);
        let Some(path) = path else { continue };
        if line.trim_start().starts_with("/lib64/ld-linux") || line.contains("ld-linux") {
            std::fs::copy(&path, dir.join("ld.so")).unwrap();
        } else {
            std::fs::copy(&path, lib.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// An `ssh-agent` on a private socket, killed on drop.
struct Agent {
    dir: tempfile::TempDir,
    pid: String,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let output = Command::new("ssh-agent")
            .arg("-a")
            .arg(&socket)
            .output()
            .unwrap();
        assert!(output.status.success(), "ssh-agent failed to start");
        let text = String::from_utf8_lossy(&output.stdout);
        let pid = text
            .split("SSH_AGENT_PID=")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .unwrap()
            .to_string();
        let key = dir.path().join("id_ed25519");
        let generated = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "strata-test-key",
                "-f",
            ])
            .arg(&key)
            .status()
            .unwrap();
        assert!(generated.success());
        let added = Command::new("ssh-add")
            .arg(&key)
            .env("SSH_AUTH_SOCK", &socket)
            .output()
            .unwrap();
        assert!(added.status.success(), "ssh-add failed");
        Agent { dir, pid }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(&self.pid).status();
    }
}

#[test]
fn ssh_mount_forwards_agent() {
    let agent = Agent::start();
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=ssh,id=git --mount=type=bind,source=tools,target=/tools \
         sh -c 'stat -c %a $SSH_AUTH_SOCK > /mode; \
         /tools/ld.so --library-path /tools/lib /tools/ssh-add -l > /keys'\n",
    )]);
    stage_ssh_add(&ctx.path().join("tools"));
    let ssh = format!("git={}", agent.socket().display());
    let out = build_local(&store, ctx.path(), &["--ssh", &ssh]);
    assert_eq!(read(out.path(), "mode"), "600\n");
    let keys = read(out.path(), "keys");
    assert!(keys.contains("strata-test-key"), "{keys}");
    assert!(
        !out.path().join("run/buildkit").exists(),
        "the socket mount point leaked"
    );

    let missing = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=ssh,required true\n",
    )]);
    let output = store
        .command()
        .env_remove("SSH_AUTH_SOCK")
        .args(["build", "--progress", "plain"])
        .arg(missing.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("SSH agent `default`"), "{text}");
    assert!(text.contains("--ssh default"), "{text}");
}

#[test]
fn network_none_has_only_loopback() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --network=none sh -c 'ls /sys/class/net > /links'\n",
    )]);
    let out = build_local(&store, ctx.path(), &[]);
    assert_eq!(read(out.path(), "links"), "lo\n");
}

#[test]
fn insecure_needs_allow() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --security=insecure grep CapEff /proc/self/status > /caps\n",
    )]);
    let output = store.build(ctx.path(), &[]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("--allow security.insecure"), "{text}");
    assert!(text.contains("Dockerfile:2"), "{text}");

    let out = build_local(&store, ctx.path(), &["--allow", "security.insecure"]);
    let caps = read(out.path(), "caps");
    let bits = u64::from_str_radix(caps.trim().trim_start_matches("CapEff:").trim(), 16).unwrap();
    // CAP_SYS_ADMIN (bit 21) is outside the sandbox's default set.
    assert_ne!(bits & (1 << 21), 0, "{caps}");

    let bad = store.build(ctx.path(), &["--allow", "everything"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("Invalid `--allow` value `everything`"));
}
