//! The bundled `hello` demo, built end to end: Debian builder stage with
//! apt-get and gcc, an unused failing stage, a BusyBox final stage; loaded
//! into a real Docker Engine and run. Needs the Debian mirror for apt-get.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Returns the Debian rootfs tarball that `installer/setup.sh` caches,
/// building it (about a minute) when it is missing.
fn debian_rootfs() -> PathBuf {
    let cache = std::env::var_os("STRATA_CACHE_DIR")
        .map_or_else(|| PathBuf::from("/var/cache/strata"), PathBuf::from);
    let tarball = cache.join("debian-bookworm-rootfs.tar");
    if !tarball.exists() {
        let setup = repo_root().join("installer/setup.sh");
        let status = Command::new("bash")
            .arg(setup)
            .args(["--no-packages", "--no-build", "--no-import"])
            .env("STRATA_CACHE_DIR", &cache)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "installer/setup.sh failed to build the Debian rootfs"
        );
    }
    tarball
}

fn copy_demo(dest: &Path) {
    let source = repo_root().join("assets/demos/hello");
    for name in ["Dockerfile", ".dockerignore", "hello.c", "README.md"] {
        std::fs::copy(source.join(name), dest.join(name)).unwrap();
    }
}

fn ran_steps(events: &[serde_json::Value]) -> Vec<String> {
    vertex_names_with(events, "vertex_completed")
        .into_iter()
        .filter(|name| !name.contains("] FROM ") && !name.starts_with("[internal]"))
        .collect()
}

#[test]
fn hello_demo_builds_loads_and_rebuilds_precisely() {
    let store = TestStore::new();
    let debian = debian_rootfs();
    assert_success(&store.strata(&[
        "image",
        "import",
        debian.to_str().unwrap(),
        "--tag",
        "debian:bookworm",
        "--change",
        r#"CMD ["bash"]"#,
        "--change",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ]));
    let ctx = tempfile::Builder::new()
        .prefix("strata-demo-")
        .tempdir_in("/var/tmp")
        .unwrap();
    copy_demo(ctx.path());

    // First build, exported for docker load.
    let tarball = store.root().join("hello.tar");
    let name = format!("strata-e2e/hello:{}", std::process::id());
    let spec = format!("type=docker,dest={},name={name}", tarball.display());
    let (output, events) = store.build_events(ctx.path(), &["--output", &spec]);
    assert_success(&output);
    let log = stderr(&output);
    assert!(
        !log.contains("this stage is not needed"),
        "the unused stage ran"
    );
    let queued = vertex_names_with(&events, "vertex_queued");
    assert!(
        !queued.iter().any(|n| n.contains("broken")),
        "the unused stage was scheduled: {queued:?}"
    );

    if let Some(host) = docker_host() {
        assert_success(&docker(&host, &["load", "-i", tarball.to_str().unwrap()]));
        let run = docker(&host, &["run", "--rm", "--network", "none", &name]);
        assert_success(&run);
        assert!(
            String::from_utf8_lossy(&run.stdout).starts_with("Hello, Strata!"),
            "{:?}",
            run
        );
        let _ = docker(&host, &["image", "rm", "-f", &name]);
    } else {
        eprintln!("note: no private dockerd; the load-and-run half of this test did not run");
    }

    // An identical build runs nothing.
    let (output, events) = store.build_events(ctx.path(), &[]);
    assert_success(&output);
    assert_eq!(ran_steps(&events), Vec::<String>::new());

    // A file that `.dockerignore` excludes, and a touched but unchanged
    // source, re-run nothing.
    std::fs::write(ctx.path().join("notes.txt"), "not part of the build").unwrap();
    let source = ctx.path().join("hello.c");
    let bytes = std::fs::read(&source).unwrap();
    std::fs::write(&source, &bytes).unwrap();
    let (output, events) = store.build_events(ctx.path(), &[]);
    assert_success(&output);
    assert_eq!(ran_steps(&events), Vec::<String>::new());

    // Editing the C source re-runs the copy, the compile and what follows,
    // but not apt-get.
    let edited = String::from_utf8(bytes)
        .unwrap()
        .replace("Hello, %s!", "Hello again, %s!");
    std::fs::write(&source, edited).unwrap();
    let (output, events) = store.build_events(ctx.path(), &[]);
    assert_success(&output);
    let ran = ran_steps(&events);
    assert_eq!(
        ran.len(),
        3,
        "expected COPY, RUN gcc and COPY --from to run: {ran:?}"
    );
    assert!(ran.iter().any(|n| n.contains("COPY hello.c")), "{ran:?}");
    assert!(ran.iter().any(|n| n.contains("RUN gcc")), "{ran:?}");
    assert!(
        ran.iter().any(|n| n.contains("COPY --from=build")),
        "{ran:?}"
    );
}
