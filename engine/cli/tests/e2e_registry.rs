//! Pull and push against a private registry on 127.0.0.1, plain and with
//! TLS plus htpasswd auth.

mod common;
mod registry_support;

use common::{TestStore, assert_success, context, stderr};
use registry_support::{PASSWORD, TestRegistry, USER};

const APP: &str = "FROM busybox\nRUN echo pushed > /hello\n";

/// Builds [`APP`] in `store` and pushes it as `image` (`repo:tag`).
fn push(
    store: &TestStore,
    registry: &TestRegistry,
    image: &str,
    extra: &[&str],
) -> std::process::Output {
    let ctx = context(&[("Dockerfile", APP)]);
    let output = format!("type=image,name={}/{image},push=true", registry.host);
    let mut args = vec!["--output", output.as_str()];
    if !registry.tls {
        args.extend(["--allow-insecure-registry", registry.host.as_str()]);
    }
    args.extend_from_slice(extra);
    store.build(ctx.path(), &args)
}

#[test]
fn push_then_pull_plain_http() {
    let registry = TestRegistry::plain();
    let first = TestStore::new();
    assert_success(&push(&first, &registry, "team/app:v1", &[]));

    let manifest = registry.raw_manifest("team/app:v1");
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );

    // A second store has busybox but not the app: it pulls it.
    let second = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM {}/team/app:v1\nRUN cat /hello > /copy\n",
            registry.host
        ),
    )]);
    let out = second.build(ctx.path(), &["--allow-insecure-registry", &registry.host]);
    assert_success(&out);
    let images = String::from_utf8_lossy(&second.strata(&["image", "ls"]).stdout).into_owned();
    assert!(
        images.contains("team/app"),
        "pulled image missing from `image ls`:\n{images}"
    );
}

#[test]
fn fresh_tag_needs_no_registry() {
    let mut registry = TestRegistry::plain();
    let store = TestStore::new();
    assert_success(&push(&store, &registry, "ttl/app:v1", &[]));
    let puller = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {}/ttl/app:v1\nRUN true\n", registry.host),
    )]);
    let host = registry.host.clone();
    let insecure = ["--allow-insecure-registry", host.as_str()];
    assert_success(&puller.build(ctx.path(), &insecure));

    // Inside the freshness window the build does not contact the registry.
    registry.stop();
    let again = puller.build(ctx.path(), &insecure);
    assert_success(&again);

    // Past it, a failed check falls back to the local copy.
    let stale = puller
        .command()
        .env("STRATA_RESOLVE_TTL", "0")
        .args([
            "build",
            "--progress",
            "plain",
            "--allow-insecure-registry",
            &registry.host,
        ])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&stale);
}

#[test]
fn plain_http_needs_opt_in() {
    let registry = TestRegistry::plain();
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", APP)]);
    let output = format!("type=image,name={}/a/b:v1,push=true", registry.host);
    let out = store.build(ctx.path(), &["--output", &output]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains("--allow-insecure-registry"), "{text}");

    // The failed push still stored `a/b:v1` locally, so pull another name.
    let pull = context(&[(
        "Dockerfile",
        &format!("FROM {}/never/pushed:v1\n", registry.host),
    )]);
    let out = store.build(pull.path(), &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("registry.insecure=true"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn insecure_only_for_loopback() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM busybox\n")]);
    let out = store.build(ctx.path(), &["--allow-insecure-registry", "192.0.2.1:5000"]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains("`192.0.2.1:5000`"), "{text}");
    assert!(
        text.contains("only for registries on this machine"),
        "{text}"
    );
}

#[test]
fn tls_and_login() {
    let registry = TestRegistry::tls_auth();
    let store = TestStore::new();
    let certs = registry.certs_dir();
    let login = registry.docker_config(USER, PASSWORD);
    let wrong = registry.docker_config(USER, "wrong");
    let ctx = context(&[("Dockerfile", APP)]);
    let output = format!("type=image,name={}/secure/app:v1,push=true", registry.host);
    let build = |config: Option<&std::path::Path>| {
        let mut command = store.command();
        command.env("STRATA_REGISTRY_CERTS_DIR", &certs);
        match config {
            Some(dir) => command.env("DOCKER_CONFIG", dir),
            None => command.env("DOCKER_CONFIG", registry.dir.path().join("none")),
        };
        command
            .args(["build", "--progress", "plain", "--output", &output])
            .arg(ctx.path())
            .output()
            .unwrap()
    };

    let anonymous = build(None);
    assert!(!anonymous.status.success());
    assert!(
        stderr(&anonymous).contains("requires a login"),
        "{}",
        stderr(&anonymous)
    );

    let rejected = build(Some(&wrong));
    assert!(!rejected.status.success());
    assert!(
        stderr(&rejected).contains("rejected the credentials"),
        "{}",
        stderr(&rejected)
    );
    assert!(
        !stderr(&rejected).contains("wrong"),
        "the password leaked into the output"
    );

    assert_success(&build(Some(&login)));
    assert_eq!(
        registry.raw_manifest("secure/app:v1")["layers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Without the CA the certificate is not trusted.
    let untrusted = store
        .command()
        .env("DOCKER_CONFIG", &login)
        .env(
            "STRATA_REGISTRY_CERTS_DIR",
            registry.dir.path().join("none"),
        )
        .args(["build", "--progress", "plain", "--output", &output])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(!untrusted.status.success());
    assert!(
        stderr(&untrusted).contains("Failed to reach registry"),
        "{}",
        stderr(&untrusted)
    );
}

/// Returns the final name of the push phase: `pushing NAME: counts`.
fn push_summary(events: &[serde_json::Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "phase" && !e["duration_ms"].is_null())
        .filter_map(|e| e["name"].as_str())
        .find(|name| name.starts_with("pushing "))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn push_mounts_and_skips_known_blobs() {
    let registry = TestRegistry::plain();
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", APP)]);
    // A fixed SOURCE_DATE_EPOCH gives every build the same config blob.
    let push_events = |image: &str| {
        let output = format!("type=image,name={}/{image},push=true", registry.host);
        let out = store
            .command()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["build", "--progress", "rawjson", "--output", &output])
            .args(["--allow-insecure-registry", &registry.host])
            .arg(ctx.path())
            .output()
            .unwrap();
        assert_success(&out);
        let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        push_summary(&events)
    };

    let first = push_events("one/app:v1");
    assert!(
        first.ends_with("3 blobs uploaded, 0 mounted, 0 already present"),
        "{first}"
    );
    let again = push_events("one/app:v2");
    assert!(
        again.ends_with("0 blobs uploaded, 0 mounted, 3 already present"),
        "{again}"
    );
    let other = push_events("two/app:v1");
    assert!(
        other.ends_with("0 blobs uploaded, 3 mounted, 0 already present"),
        "{other}"
    );
    assert_eq!(
        registry.raw_manifest("two/app:v1"),
        registry.raw_manifest("one/app:v1")
    );
}

#[test]
fn pushed_image_runs_in_docker() {
    let Some(host) = common::docker_host() else {
        eprintln!("note: skipping, the private dockerd is not available");
        return;
    };
    let registry = TestRegistry::plain();
    let store = TestStore::new();
    assert_success(&push(&store, &registry, "run/app:v1", &[]));
    let image = format!("{}/run/app:v1", registry.host);
    let pulled = common::docker(&host, &["pull", &image]);
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let ran = common::docker(&host, &["run", "--rm", &image, "cat", "/hello"]);
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ran.stdout).trim(), "pushed");
}

/// Pushes [`APP`] as `image` from a fresh store and returns that store.
fn pushed(registry: &TestRegistry, image: &str) -> TestStore {
    let store = TestStore::new();
    assert_success(&push(&store, registry, image, &[]));
    store
}

/// Builds `FROM image` in `store` against the plain registry.
fn build_from(store: &TestStore, registry: &TestRegistry, image: &str) -> std::process::Output {
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {}/{image}\nRUN cat /hello\n", registry.host),
    )]);
    store.build(ctx.path(), &["--allow-insecure-registry", &registry.host])
}

#[test]
fn pull_resumes_partial_download() {
    let registry = TestRegistry::plain();
    let source = pushed(&registry, "resume/app:v1");
    let manifest = registry.raw_manifest("resume/app:v1");
    let top = manifest["layers"][1]["digest"].as_str().unwrap();
    let hex = top.strip_prefix("sha256:").unwrap();
    let blob = std::fs::read(source.root().join("content/sha256").join(hex)).unwrap();

    // Half of the blob, as an interrupted download leaves it.
    let store = TestStore::new();
    let partial_dir = store.root().join("registry/partial");
    std::fs::create_dir_all(&partial_dir).unwrap();
    std::fs::write(partial_dir.join(hex), &blob[..blob.len() / 2]).unwrap();
    assert_success(&build_from(&store, &registry, "resume/app:v1"));
    assert!(
        !partial_dir.join(hex).exists(),
        "the partial file was not removed"
    );
    assert_eq!(
        std::fs::read(store.root().join("content/sha256").join(hex)).unwrap(),
        blob
    );
}

#[test]
fn corrupt_partial_download_is_discarded() {
    let registry = TestRegistry::plain();
    let source = pushed(&registry, "corrupt/app:v1");
    let manifest = registry.raw_manifest("corrupt/app:v1");
    let top = manifest["layers"][1]["digest"].as_str().unwrap();
    let hex = top.strip_prefix("sha256:").unwrap();
    let size = std::fs::metadata(source.root().join("content/sha256").join(hex))
        .unwrap()
        .len();

    let store = TestStore::new();
    let partial_dir = store.root().join("registry/partial");
    std::fs::create_dir_all(&partial_dir).unwrap();
    std::fs::write(partial_dir.join(hex), vec![b'x'; (size / 2) as usize]).unwrap();
    let failed = build_from(&store, &registry, "corrupt/app:v1");
    assert!(!failed.status.success());
    let text = stderr(&failed);
    assert!(text.contains("the registry sent corrupt data"), "{text}");
    assert!(
        !partial_dir.join(hex).exists(),
        "the corrupt partial file was kept"
    );
    assert!(!store.root().join("content/sha256").join(hex).exists());

    // The next build downloads the blob again from the start.
    assert_success(&build_from(&store, &registry, "corrupt/app:v1"));
}

#[test]
fn pull_docker_media_types() {
    let registry = TestRegistry::plain();
    pushed(&registry, "formats/app:oci");
    let copied = registry.skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--src-tls-verify=false",
        "--format",
        "v2s2",
        &format!("docker://{}/formats/app:oci", registry.host),
        &format!("docker://{}/formats/app:docker", registry.host),
    ]);
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let manifest = registry.raw_manifest("formats/app:docker");
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let store = TestStore::new();
    assert_success(&build_from(&store, &registry, "formats/app:docker"));
}

#[test]
fn credential_helper_logs_in() {
    let registry = TestRegistry::tls_auth();
    let bin = registry.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-strata-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = {host} ] || exit 1\necho '{{\"ServerURL\":\"{host}\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n",
            host = registry.host
        ),
    )
    .unwrap();
    let mode = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755);
    std::fs::set_permissions(&helper, mode).unwrap();
    let config = registry.dir.path().join("helper-config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"strata-test"}}}}"#, registry.host),
    )
    .unwrap();

    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", APP)]);
    let output = format!("type=image,name={}/helper/app:v1,push=true", registry.host);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = store
        .command()
        .env("PATH", path)
        .env("DOCKER_CONFIG", &config)
        .env("STRATA_REGISTRY_CERTS_DIR", registry.certs_dir())
        .args(["build", "--progress", "plain", "--output", &output])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(
        registry.raw_manifest("helper/app:v1")["layers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
