//! Dockerfile features beyond plain COPY and RUN, run as the real binary
//! against a private store: `COPY --link`, `ADD` of URLs and git
//! repositories, named contexts, proxy build args, `--no-cache-filter`
//! and a Dockerfile's own `.dockerignore`. Remote files come from servers
//! the tests start on 127.0.0.1.

mod common;

use common::{TestStore, assert_success, context, stderr, vertex_names_with};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command};

/// Serves `body` with `headers` to every request on 127.0.0.1 and
/// returns the base URL.
fn serve(body: &'static [u8], headers: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn sha256(data: &[u8]) -> String {
    let output = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(data)?;
            child.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}

/// Builds to a local directory and returns it.
fn build_local(store: &TestStore, ctx: &Path, extra: &[&str]) -> tempfile::TempDir {
    let out = tempfile::tempdir_in("/var/tmp").unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    let mut args = vec!["-o", dest.as_str()];
    args.extend_from_slice(extra);
    assert_success(&store.build(ctx, &args));
    out
}

#[test]
fn dockerfile_dockerignore_overrides_context_ignore() {
    let store = TestStore::new();
    let ctx = context(&[
        ("foo", "foo"),
        ("bar", "bar"),
        (".dockerignore", "foo\n"),
        (
            "Dockerfile",
            "FROM busybox\nCOPY . .\nRUN [ -f foo ] && [ ! -f bar ]\n",
        ),
        ("Dockerfile.dockerignore", "bar\n"),
        (
            "Dockerfile2",
            "FROM busybox\nCOPY . .\nRUN [ ! -f foo ] && [ -f bar ]\n",
        ),
        ("Dockerfile2.dockerignore", "foo\n"),
    ]);
    assert_success(&store.build(ctx.path(), &[]));
    let second = ctx.path().join("Dockerfile2");
    assert_success(&store.build(ctx.path(), &["-f", second.to_str().unwrap()]));
}

/// Returns the digest of the image's last layer from a docker tarball.
fn last_layer(tarball: &Path) -> String {
    let mut archive = tar::Archive::new(std::fs::File::open(tarball).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == "manifest.json" {
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
            let layers = manifest[0]["Layers"].as_array().unwrap();
            return layers.last().unwrap().as_str().unwrap().to_string();
        }
    }
    panic!("no manifest.json in {}", tarball.display());
}

#[test]
fn copy_link_keeps_its_layer_when_the_base_changes() {
    let store = TestStore::new();
    let base = context(&[("Dockerfile", "FROM busybox\nRUN echo one > /base\n")]);
    assert_success(&store.build(base.path(), &["-t", "linkbase:latest"]));
    let ctx = context(&[
        ("Dockerfile", "FROM linkbase\nCOPY --link app.txt /app/\n"),
        ("app.txt", "hello"),
    ]);
    let out = tempfile::tempdir_in("/var/tmp").unwrap();
    let tarball = |n: &str| out.path().join(n);
    let dest = |n: &str| format!("type=docker,dest={}", tarball(n).display());
    assert_success(&store.build(ctx.path(), &["-o", &dest("a.tar")]));

    std::fs::write(
        base.path().join("Dockerfile"),
        "FROM busybox\nRUN echo two > /base\n",
    )
    .unwrap();
    assert_success(&store.build(base.path(), &["-t", "linkbase:latest"]));
    let (output, events) = store.build_events(ctx.path(), &["-o", &dest("b.tar")]);
    assert_success(&output);
    let ran = vertex_names_with(&events, "vertex_completed");
    let cached = vertex_names_with(&events, "vertex_cached");
    assert!(
        cached.iter().any(|n| n.contains("COPY --link")),
        "the linked copy should come from the cache: ran {ran:?}, cached {cached:?}"
    );
    assert_eq!(last_layer(&tarball("a.tar")), last_layer(&tarball("b.tar")));

    // The merged result holds the base's files and the copied file.
    let local = context(&[
        (
            "Dockerfile",
            "FROM linkbase\nCOPY --link app.txt /app/\nRUN cat /base /app/app.txt > /out\n",
        ),
        ("app.txt", "hello"),
    ]);
    let dir = build_local(&store, local.path(), &[]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out")).unwrap(),
        "two\nhello"
    );
}

#[test]
fn add_url_verifies_checksum_and_keeps_last_modified() {
    let store = TestStore::new();
    static BODY: &[u8] = b"remote file\n";
    let url = serve(BODY, "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n");
    let dockerfile = format!(
        "FROM busybox\nADD --checksum={} {url}/files/data.txt /got/\n\
         RUN stat -c '%Y %a' /got/data.txt > /meta\n",
        sha256(BODY)
    );
    let ctx = context(&[("Dockerfile", &dockerfile)]);
    let dir = build_local(&store, ctx.path(), &[]);
    assert_eq!(
        std::fs::read(dir.path().join("got/data.txt")).unwrap(),
        BODY
    );
    let meta = std::fs::read_to_string(dir.path().join("meta")).unwrap();
    assert_eq!(meta.trim(), "1445412480 600");

    let wrong = format!(
        "FROM busybox\nADD --checksum=sha256:{} {url}/data.txt /\n",
        "0".repeat(64)
    );
    let ctx = context(&[("Dockerfile", &wrong)]);
    let output = store.build(ctx.path(), &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("Checksum mismatch"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn add_url_names_file_from_content_disposition_and_never_unpacks() {
    let store = TestStore::new();
    let mut tarball = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(1);
    header.set_mode(0o644);
    header.set_cksum();
    tarball
        .append_data(&mut header, "inner", &b"x"[..])
        .unwrap();
    let bytes: &'static [u8] = Box::leak(tarball.into_inner().unwrap().into_boxed_slice());
    let url = serve(
        bytes,
        "Content-Disposition: attachment; filename=\"pack.tar\"\r\n",
    );
    let ctx = context(&[("Dockerfile", &format!("FROM busybox\nADD {url}/ /dl/\n"))]);
    let dir = build_local(&store, ctx.path(), &[]);
    assert_eq!(
        std::fs::read(dir.path().join("dl/pack.tar")).unwrap(),
        bytes
    );
    assert!(!dir.path().join("dl/inner").exists());
}

/// A file served with an `ETag`, and `304 Not Modified` for a request
/// carrying the current tag, counting full and empty responses.
#[derive(Default)]
struct Versioned {
    body: Vec<u8>,
    etag: String,
    full: usize,
    not_modified: usize,
}

fn serve_versioned(state: std::sync::Arc<std::sync::Mutex<Versioned>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let read = stream.read(&mut request).unwrap_or(0);
            let request = String::from_utf8_lossy(&request[..read]).to_ascii_lowercase();
            let mut state = state.lock().unwrap();
            let tag = format!("if-none-match: {}", state.etag.to_ascii_lowercase());
            let reply = if request.contains(&tag) {
                state.not_modified += 1;
                b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n".to_vec()
            } else {
                state.full += 1;
                let mut reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: {}\r\nConnection: close\r\n\r\n",
                    state.body.len(),
                    state.etag
                )
                .into_bytes();
                reply.extend_from_slice(&state.body);
                reply
            };
            let _ = stream.write_all(&reply);
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[test]
fn add_url_not_modified_reuses_file() {
    let store = TestStore::new();
    let state = std::sync::Arc::new(std::sync::Mutex::new(Versioned {
        body: b"first\n".to_vec(),
        etag: "\"v1\"".into(),
        ..Versioned::default()
    }));
    let url = serve_versioned(state.clone());
    let dockerfile =
        format!("FROM busybox\nADD {url}/data.txt /got/\nRUN cat /got/data.txt > /copy\n");
    let ctx = context(&[("Dockerfile", &dockerfile)]);
    build_local(&store, ctx.path(), &[]);

    // Unchanged on the server: one conditional request, nothing re-run.
    let (output, events) = store.build_events(ctx.path(), &[]);
    assert_success(&output);
    let ran: Vec<String> = vertex_names_with(&events, "vertex_completed")
        .into_iter()
        .filter(|name| name.contains("RUN"))
        .collect();
    assert!(ran.is_empty(), "steps ran again: {ran:?}");
    let cached = vertex_names_with(&events, "vertex_cached");
    assert!(cached.iter().any(|name| name.contains("ADD")), "{cached:?}");
    {
        let state = state.lock().unwrap();
        assert_eq!((state.full, state.not_modified), (1, 1));
    }

    // Changed on the server: downloaded again and the RUN re-runs.
    {
        let mut state = state.lock().unwrap();
        state.body = b"second\n".to_vec();
        state.etag = "\"v2\"".into();
    }
    let dir = build_local(&store, ctx.path(), &[]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("copy")).unwrap(),
        "second\n"
    );
    assert_eq!(state.lock().unwrap().full, 2);
}

#[test]
fn add_url_checksum_skips_request() {
    let store = TestStore::new();
    let state = std::sync::Arc::new(std::sync::Mutex::new(Versioned {
        body: b"pinned\n".to_vec(),
        etag: "\"p\"".into(),
        ..Versioned::default()
    }));
    let url = serve_versioned(state.clone());
    let dockerfile = format!(
        "FROM busybox\nADD --checksum={} {url}/pinned.txt /\n",
        sha256(b"pinned\n")
    );
    let ctx = context(&[("Dockerfile", &dockerfile)]);
    build_local(&store, ctx.path(), &[]);
    let dir = build_local(&store, ctx.path(), &[]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pinned.txt")).unwrap(),
        "pinned\n"
    );
    let state = state.lock().unwrap();
    assert_eq!((state.full, state.not_modified), (1, 0));
}

#[test]
fn add_unreachable_url_names_it() {
    let store = TestStore::new();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/gone.txt");
    let ctx = context(&[("Dockerfile", &format!("FROM busybox\nADD {url} /\n"))]);
    let output = store.build(ctx.path(), &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(&format!("`{url}`")),
        "{}",
        stderr(&output)
    );
}

/// A git daemon serving `base` on 127.0.0.1, killed on drop.
struct GitDaemon {
    child: Child,
    port: u16,
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?} failed");
}

fn git_daemon(base: &Path) -> GitDaemon {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // `git daemon` runs `git-daemon` as a child that killing `git` would
    // leave behind, so the daemon binary is started directly.
    let exec_path = Command::new("git").arg("--exec-path").output().unwrap();
    let exec_path = String::from_utf8(exec_path.stdout).unwrap();
    let child = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
        .args(["--export-all", "--reuseaddr", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    GitDaemon { child, port }
}

#[test]
fn add_git_repository_at_ref_and_subdir() {
    let repos = tempfile::tempdir_in("/var/tmp").unwrap();
    let work = repos.path().join("work");
    std::fs::create_dir_all(work.join("sub")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("sub/file"), "v1").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "one"]);
    git(&work, &["tag", "v1"]);
    std::fs::write(work.join("sub/file"), "v2").unwrap();
    git(&work, &["commit", "-qam", "two"]);
    let bare = repos.path().join("repo.git");
    git(
        repos.path(),
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    let daemon = git_daemon(repos.path());
    let remote = format!("git://127.0.0.1:{}/repo.git", daemon.port);

    let store = TestStore::new();
    let dockerfile = format!(
        "FROM busybox\nADD {remote}#v1:sub /old/\nADD {remote}#main /new/\n\
         ADD --keep-git-dir=true {remote} /kept/\n"
    );
    let ctx = context(&[("Dockerfile", &dockerfile)]);
    let dir = build_local(&store, ctx.path(), &[]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("old/file")).unwrap(),
        "v1"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new/sub/file")).unwrap(),
        "v2"
    );
    assert!(!dir.path().join("new/.git").exists());
    assert!(dir.path().join("kept/.git").is_dir());

    let bad = format!("FROM busybox\nADD {remote}#nosuchref /x/\n");
    let ctx = context(&[("Dockerfile", &bad)]);
    let output = store.build(ctx.path(), &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("`nosuchref`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn named_contexts_replace_stages_and_images() {
    let store = TestStore::new();
    let extra = context(&[("note.txt", "from named dir")]);
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox AS src\nRUN echo stage > /note.txt\n\
         FROM base\nCOPY --from=src note.txt /note.txt\n",
    )]);
    let src = format!("src={}", extra.path().display());
    let dir = build_local(
        &store,
        ctx.path(),
        &[
            "--build-context",
            &src,
            "--build-context",
            "base=docker-image://busybox:latest",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("note.txt")).unwrap(),
        "from named dir"
    );
    assert!(dir.path().join("bin/busybox").exists());

    for (value, needle) in [
        ("nonsense", "`nonsense`"),
        ("x=/no/such/dir", "`/no/such/dir`"),
        ("x=git://example.invalid/r", "`git://`"),
    ] {
        let output = store.build(ctx.path(), &["--build-context", value]);
        assert!(!output.status.success(), "{value} was accepted");
        assert!(stderr(&output).contains(needle), "{}", stderr(&output));
    }
}

#[test]
fn oci_layout_context_as_base() {
    let store = TestStore::new();
    // An OCI archive from one build, unpacked into a layout directory.
    let base = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo from-layout > /marker\n",
    )]);
    let out = tempfile::tempdir_in("/var/tmp").unwrap();
    let archive = out.path().join("base.tar");
    let dest = format!("type=oci,dest={},name=app:v1", archive.display());
    assert_success(&store.build(base.path(), &["-o", &dest]));
    let layout = out.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    let untar = Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&layout)
        .status()
        .unwrap();
    assert!(untar.success());

    let ctx = context(&[("Dockerfile", "FROM base\nRUN cat /marker > /seen\n")]);
    for suffix in ["", ":v1"] {
        let value = format!("base=oci-layout://{}{suffix}", layout.display());
        let dir = build_local(&store, ctx.path(), &["--build-context", &value]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("seen")).unwrap(),
            "from-layout\n"
        );
    }

    // The layout's image is amd64 or the host's, so another platform warns.
    let other = if cfg!(target_arch = "aarch64") {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let only_from = context(&[("Dockerfile", "FROM base\n")]);
    let value = format!("base=oci-layout://{}", layout.display());
    let output = store.build(
        only_from.path(),
        &["--build-context", &value, "--platform", other],
    );
    assert!(
        stderr(&output).contains("InvalidBaseImagePlatform"),
        "{}",
        stderr(&output)
    );

    let not_layout = format!("base=oci-layout://{}", out.path().display());
    let wrong_tag = format!("base=oci-layout://{}:v2", layout.display());
    for (value, needle) in [
        (not_layout.as_str(), "is not an OCI image layout"),
        (wrong_tag.as_str(), "no image tagged `v2`; it has tags `v1`"),
        ("base=oci-layout:///tmp@sha256:zz", "is not a sha256 digest"),
    ] {
        let output = store.build(ctx.path(), &["--build-context", value]);
        assert!(!output.status.success(), "{value} was accepted");
        assert!(stderr(&output).contains(needle), "{}", stderr(&output));
    }

    // A corrupt layer is refused rather than unpacked.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(&manifest[7..])).unwrap(),
    )
    .unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    let last = layers.last().unwrap()["digest"].as_str().unwrap();
    std::fs::write(layout.join("blobs/sha256").join(&last[7..]), b"garbage").unwrap();
    let fresh = TestStore::new();
    let value = format!("base=oci-layout://{}", layout.display());
    let output = fresh.build(ctx.path(), &["--build-context", &value]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("is corrupt"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn proxy_args_reach_run_but_not_the_cache_key_or_history() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo \"$HTTP_PROXY\" > /proxy\n",
    )]);
    let out = tempfile::tempdir_in("/var/tmp").unwrap();
    let oci = out.path().join("img.tar");
    let dest = format!("type=oci,dest={}", oci.display());
    let first = [
        "--build-arg",
        "HTTP_PROXY=http://proxy.invalid:3128",
        "-o",
        &dest,
    ];
    assert_success(&store.build(ctx.path(), &first));
    let config = common_oci_config(&oci);
    let history = config["history"].to_string();
    assert!(!history.contains("proxy.invalid"), "{history}");

    let (output, events) = store.build_events(
        ctx.path(),
        &["--build-arg", "HTTP_PROXY=http://other.invalid:3128"],
    );
    assert_success(&output);
    let ran = vertex_names_with(&events, "vertex_completed");
    assert!(
        !ran.iter().any(|n| n.contains("RUN")),
        "RUN ran again: {ran:?}"
    );

    let dir = build_local(
        &store,
        ctx.path(),
        &[
            "--no-cache",
            "--build-arg",
            "HTTP_PROXY=http://third.invalid:3128",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("proxy")).unwrap(),
        "http://third.invalid:3128\n"
    );
}

fn common_oci_config(tarball: &Path) -> serde_json::Value {
    let mut files = std::collections::BTreeMap::new();
    let mut archive = tar::Archive::new(std::fs::File::open(tarball).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        files.insert(name.trim_start_matches("./").to_string(), bytes);
    }
    let blob = |digest: &serde_json::Value| -> serde_json::Value {
        let path = format!("blobs/{}", digest.as_str().unwrap().replacen(':', "/", 1));
        serde_json::from_slice(&files[&path]).unwrap()
    };
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let manifest = blob(&index["manifests"][0]["digest"]);
    blob(&manifest["config"]["digest"])
}

#[test]
fn no_cache_filter_reruns_only_the_named_stage() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox AS one\nRUN echo one > /one\n\
         FROM busybox AS two\nRUN echo two > /two\nCOPY --from=one /one /one\n",
    )]);
    assert_success(&store.build(ctx.path(), &[]));
    let (output, events) = store.build_events(ctx.path(), &["--no-cache-filter", "two"]);
    assert_success(&output);
    let ran = vertex_names_with(&events, "vertex_completed");
    let cached = vertex_names_with(&events, "vertex_cached");
    assert!(ran.iter().any(|n| n.contains("echo two")), "ran {ran:?}");
    assert!(
        cached.iter().any(|n| n.contains("echo one")),
        "cached {cached:?}"
    );
}
