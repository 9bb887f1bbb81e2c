//! Inline cache in image configs and exported cache mounts, through a
//! registry on 127.0.0.1 and local layout directories, read by fresh stores.

mod common;
mod registry_support;

use common::{TestStore, assert_success, context, count_events};
use registry_support::TestRegistry;
use std::path::Path;

const LINEAR: &str = "FROM busybox\nRUN echo a > /a\nRUN echo b > /b\n";
const INLINE_KEY: &str = "strata.cache.v1";

/// Writes into cache mount `pkgs` with an owner and mode of its own.
const WRITE_MOUNT: &str = "FROM busybox\n\
     RUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs,uid=1234,gid=99,mode=0750 \
     echo kept > /var/cache/pkgs/note\n";

/// Reads cache mount `pkgs` at another target, recording what it finds.
const READ_MOUNT: &str = "FROM busybox\n\
     RUN --mount=type=cache,id=pkgs,target=/c \
     sh -c 'cat /c/note > /seen || echo missing > /seen; stat -c %u:%g:%a /c > /owner'\n";

fn build(store: &TestStore, dir: &Path, flags: &[&str]) -> Vec<serde_json::Value> {
    let (out, events) = store.build_events(dir, flags);
    assert_success(&out);
    events
}

fn warnings(events: &[serde_json::Value]) -> Vec<String> {
    texts(events, "warning", "message")
}

fn phases(events: &[serde_json::Value]) -> Vec<String> {
    texts(events, "phase", "name")
}

fn texts(events: &[serde_json::Value], kind: &str, field: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == kind)
        .filter_map(|e| e[field].as_str().map(str::to_string))
        .collect()
}

fn ran_steps(events: &[serde_json::Value]) -> Vec<String> {
    common::vertex_names_with(events, "vertex_completed")
        .into_iter()
        .filter(|name| name.contains("RUN"))
        .collect()
}

fn has_blob(store: &TestStore, digest: &str) -> bool {
    let hex = digest.strip_prefix("sha256:").unwrap();
    store.root().join("content/sha256").join(hex).exists()
}

fn layer_digests(manifest: &serde_json::Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Returns the image config of `repository:tag` in `registry`.
fn registry_config(registry: &TestRegistry, image: &str) -> serde_json::Value {
    let reference = format!("docker://{}/{image}", registry.host);
    let output = registry.skopeo(&["inspect", "--config", "--raw", &reference]);
    assert!(output.status.success(), "skopeo inspect --config failed");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Returns the cache config of the layout in `dir`.
fn layout_cache_config(dir: &Path) -> serde_json::Value {
    let read = |digest: &str| -> serde_json::Value {
        let path = dir
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap());
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest = read(index["manifests"][0]["digest"].as_str().unwrap());
    read(manifest["config"]["digest"].as_str().unwrap())
}

#[test]
fn inline_round_trip_through_registry() {
    let registry = TestRegistry::plain();
    let image = format!("{}/app/inline:v1", registry.host);
    let output = format!("type=image,name={image},push=true,registry.insecure=true");
    let ctx = context(&[("Dockerfile", LINEAR)]);
    let first = TestStore::new();
    let events = build(
        &first,
        ctx.path(),
        &["--output", &output, "--cache-to", "type=inline"],
    );
    let text = phases(&events).join("\n");
    assert!(text.contains("2 records in the image config"), "{text}");

    let config = registry_config(&registry, "app/inline:v1");
    let records = config[INLINE_KEY]["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "one record per RUN layer");
    assert_eq!(records[1]["chain"], serde_json::json!([0, 1, 2]));
    let layers = layer_digests(&registry.raw_manifest("app/inline:v1"));
    assert_eq!(layers.len(), 3, "busybox and two RUN layers");

    // The long spelling: every step hits the image's inline records.
    let second = TestStore::new();
    let from = format!("type=registry,ref={image}");
    let flags = [
        "--cache-from",
        &from,
        "--allow-insecure-registry",
        &registry.host,
    ];
    let events = build(&second, ctx.path(), &flags);
    assert_eq!(count_events(&events, "cache_key"), 2);
    assert_eq!(count_events(&events, "vertex_cached"), 2, "{events:#?}");
    assert_eq!(count_events(&events, "cache_imported"), 2);
    assert!(ran_steps(&events).is_empty(), "{:?}", ran_steps(&events));
    assert!(warnings(&events).is_empty(), "{:?}", warnings(&events));
    assert!(has_blob(&second, &layers[1]));
    assert!(has_blob(&second, &layers[2]));

    // BuildKit's bare spelling, on a build whose last step changed: only
    // the layer of the shared step is fetched.
    let changed = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo a > /a\nRUN echo c > /c\n",
    )]);
    let third = TestStore::new();
    let flags = [
        "--cache-from",
        &image,
        "--allow-insecure-registry",
        &registry.host,
    ];
    let events = build(&third, changed.path(), &flags);
    assert_eq!(count_events(&events, "cache_imported"), 1);
    let ran = ran_steps(&events);
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert!(ran[0].ends_with("RUN echo c > /c"), "{ran:?}");
    assert!(has_blob(&third, &layers[1]), "the shared RUN layer");
    assert!(
        !has_blob(&third, &layers[2]),
        "the unused RUN layer was fetched"
    );
}

#[test]
fn inline_cache_in_oci_archive() {
    let ctx = context(&[("Dockerfile", LINEAR)]);
    let store = TestStore::new();
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("image.tar");
    let output = format!("type=oci,dest={}", tar.display());
    build(
        &store,
        ctx.path(),
        &["--output", &output, "--cache-to", "type=inline"],
    );

    let unpacked = out.path().join("layout");
    std::fs::create_dir(&unpacked).unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(status.success());

    let read = |digest: &serde_json::Value| -> serde_json::Value {
        let hex = digest.as_str().unwrap().strip_prefix("sha256:").unwrap();
        serde_json::from_slice(&std::fs::read(unpacked.join("blobs/sha256").join(hex)).unwrap())
            .unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("index.json")).unwrap()).unwrap();
    let manifest = read(&index["manifests"][0]["digest"]);
    let config = read(&manifest["config"]["digest"]);
    assert_eq!(config[INLINE_KEY]["version"], 1);
    assert_eq!(config[INLINE_KEY]["records"].as_array().unwrap().len(), 2);
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);
}

#[test]
fn inline_rejects_outputs_without_config() {
    let ctx = context(&[("Dockerfile", LINEAR)]);
    let store = TestStore::new();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("rootfs");
    let local = format!("type=local,dest={}", dest.display());
    let cases: [(&[&str], &str); 4] = [
        (
            &["--output", &local],
            "has no image config to hold the cache",
        ),
        (&[], "the build has no output to embed the cache in"),
        (
            &["-t", "app", "--cache-to", "type=inline,mode=max"],
            "supports only `mode=min`",
        ),
        (
            &["-t", "app", "--cache-to", "type=inline,cache-mounts=true"],
            "inline cache cannot hold cache mounts",
        ),
    ];
    for (flags, needle) in cases {
        let mut args = flags.to_vec();
        if !args.contains(&"--cache-to") {
            args.extend(["--cache-to", "type=inline"]);
        }
        let output = store.build(ctx.path(), &args);
        assert!(!output.status.success(), "{args:?} was accepted");
        let text = common::stderr(&output);
        assert!(text.contains(needle), "{args:?}: {text}");
    }
    assert!(!dest.exists(), "the rejected build wrote its local output");
}

#[test]
fn cache_mount_round_trip_local() {
    let cache = tempfile::tempdir().unwrap();
    let first = TestStore::new();
    let to = format!(
        "type=local,dest={},cache-mounts=true",
        cache.path().display()
    );
    let events = build(
        &first,
        context(&[("Dockerfile", WRITE_MOUNT)]).path(),
        &["--cache-to", &to],
    );
    let text = phases(&events).join("\n");
    assert!(text.contains("cache mounts [pkgs]"), "{text}");
    let config = layout_cache_config(cache.path());
    assert_eq!(config["mounts"][0]["id"], "pkgs");
    assert_eq!(config["mounts"][0]["uid"], 1234);

    let second = TestStore::new();
    let from = format!("type=local,src={}", cache.path().display());
    let (seen, events) = read_mount(&second, &from, &[]);
    assert_eq!(seen.0, "kept\n");
    assert_eq!(seen.1, "1234:99:750\n", "owner and mode of the directory");
    let text = phases(&events).join("\n");
    assert!(text.contains("seeded cache mount `pkgs` from"), "{text}");

    // A store whose mount exists keeps its own contents.
    let third = TestStore::new();
    let local = "FROM busybox\nRUN --mount=type=cache,id=pkgs,target=/c echo local > /c/note\n";
    build(&third, context(&[("Dockerfile", local)]).path(), &[]);
    let (seen, events) = read_mount(&third, &from, &[]);
    assert_eq!(seen.0, "local\n");
    let text = phases(&events).join("\n");
    assert!(
        text.contains("already exists in this store: kept it"),
        "{text}"
    );
}

#[test]
fn cache_mount_round_trip_registry() {
    let registry = TestRegistry::plain();
    let reference = format!("{}/cache/mounts:v1", registry.host);
    let first = TestStore::new();
    let to = format!("type=registry,ref={reference},cache-mounts=true,registry.insecure=true");
    build(
        &first,
        context(&[("Dockerfile", WRITE_MOUNT)]).path(),
        &["--cache-to", &to],
    );
    let manifest = registry.raw_manifest("cache/mounts:v1");
    assert_eq!(
        layer_digests(&manifest).len(),
        3,
        "busybox, the RUN layer, the mount"
    );

    let second = TestStore::new();
    let from = format!("type=registry,ref={reference}");
    let (seen, _) = read_mount(
        &second,
        &from,
        &["--allow-insecure-registry", &registry.host],
    );
    assert_eq!(seen.0, "kept\n");
    assert_eq!(seen.1, "1234:99:750\n");
}

#[test]
fn cache_mount_not_exported_without_attribute() {
    let cache = tempfile::tempdir().unwrap();
    let first = TestStore::new();
    let to = format!("type=local,dest={}", cache.path().display());
    build(
        &first,
        context(&[("Dockerfile", WRITE_MOUNT)]).path(),
        &["--cache-to", &to],
    );
    let config = layout_cache_config(cache.path());
    assert!(config.get("mounts").is_none(), "{config}");
    assert_eq!(config["layers"].as_array().unwrap().len(), 2);

    let second = TestStore::new();
    let from = format!("type=local,src={}", cache.path().display());
    let (seen, _) = read_mount(&second, &from, &[]);
    assert_eq!(seen.0, "missing\n");
}

/// Builds [`READ_MOUNT`] with `--cache-from from` and returns the note and
/// the owner the RUN saw, and the events.
fn read_mount(
    store: &TestStore,
    from: &str,
    extra: &[&str],
) -> ((String, String), Vec<serde_json::Value>) {
    let ctx = context(&[("Dockerfile", READ_MOUNT)]);
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    let mut flags = vec!["--cache-from", from, "--output", &dest];
    flags.extend_from_slice(extra);
    let events = build(store, ctx.path(), &flags);
    let read = |name: &str| std::fs::read_to_string(out.path().join(name)).unwrap();
    ((read("seen"), read("owner")), events)
}

#[test]
fn image_without_inline_cache_warns() {
    let registry = TestRegistry::plain();
    let image = format!("{}/app/plain:v1", registry.host);
    let output = format!("type=image,name={image},push=true,registry.insecure=true");
    let ctx = context(&[("Dockerfile", LINEAR)]);
    build(&TestStore::new(), ctx.path(), &["--output", &output]);

    let second = TestStore::new();
    let flags = [
        "--cache-from",
        &image,
        "--allow-insecure-registry",
        &registry.host,
    ];
    let events = build(&second, ctx.path(), &flags);
    let text = warnings(&events).join("\n");
    assert!(
        text.contains(&format!("Image `{image}` has no inline cache")),
        "{text}"
    );
    assert!(text.contains("--cache-to type=inline"), "{text}");
    assert_eq!(ran_steps(&events).len(), 2, "both RUN steps run");
}

#[test]
fn cache_mount_seed_failure_warns() {
    let cache = tempfile::tempdir().unwrap();
    let to = format!(
        "type=local,dest={},cache-mounts=true",
        cache.path().display()
    );
    let writer = context(&[("Dockerfile", WRITE_MOUNT)]);
    build(&TestStore::new(), writer.path(), &["--cache-to", &to]);
    let config = layout_cache_config(cache.path());
    let index = config["mounts"][0]["layer"].as_u64().unwrap() as usize;
    let blob = config["layers"][index]["blob"].as_str().unwrap();
    let blob_path = cache
        .path()
        .join("blobs/sha256")
        .join(blob.strip_prefix("sha256:").unwrap());
    std::fs::write(&blob_path, b"not a gzip tar").unwrap();

    // The corrupt blob fails its digest check, and the mount starts empty.
    let store = TestStore::new();
    let from = format!("type=local,src={}", cache.path().display());
    let (seen, events) = read_mount(&store, &from, &[]);
    let text = warnings(&events).join("\n");
    assert!(text.contains("Failed to seed cache mount `pkgs`"), "{text}");
    assert!(text.contains("starting it empty"), "{text}");
    assert_eq!(seen.0, "missing\n");
}
