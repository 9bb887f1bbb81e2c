//! Cache export and import: a local layout directory and a registry on
//! 127.0.0.1, read by a second store.

mod common;
mod registry_support;

use common::{TestStore, assert_success, context, count_events};
use registry_support::TestRegistry;

const LINEAR: &str = "FROM busybox\nRUN echo a > /a\nRUN echo b > /b\n";

/// Builds with rawjson progress and extra environment-free flags.
fn build(store: &TestStore, dir: &std::path::Path, flags: &[&str]) -> Vec<serde_json::Value> {
    let (out, events) = store.build_events(dir, flags);
    assert_success(&out);
    events
}

fn warnings(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "warning")
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

/// Asserts that every step with a cache key was cached, none ran.
fn assert_all_cached(events: &[serde_json::Value]) {
    let keyed = count_events(events, "cache_key");
    assert!(keyed >= 2, "expected cache keys, got {keyed}");
    assert_eq!(count_events(events, "vertex_cached"), keyed, "{events:#?}");
    let ran = common::vertex_names_with(events, "vertex_completed");
    assert!(
        ran.iter().all(|name| !name.contains("RUN")),
        "steps ran: {ran:?}"
    );
}

/// Returns the layer digests of a manifest or cache manifest.
fn layer_digests(manifest: &serde_json::Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

fn has_blob(store: &TestStore, digest: &str) -> bool {
    let hex = digest.strip_prefix("sha256:").unwrap();
    store.root().join("content/sha256").join(hex).exists()
}

#[test]
fn local_cache_round_trip() {
    let cache = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={},mode=max", cache.path().display());
    let ctx = context(&[("Dockerfile", LINEAR)]);
    let first = TestStore::new();
    build(&first, ctx.path(), &["--cache-to", &dest]);
    assert!(cache.path().join("index.json").exists());
    assert!(cache.path().join("oci-layout").exists());

    let second = TestStore::new();
    let src = format!("type=local,src={}", cache.path().display());
    let events = build(&second, ctx.path(), &["--cache-from", &src]);
    assert_all_cached(&events);
    assert!(count_events(&events, "cache_imported") >= 2);
    assert!(warnings(&events).is_empty(), "{:?}", warnings(&events));

    // On the store that exported it, the local cache serves every step first; the
    // import still matched, so it is not reported as unused.
    let events = build(&first, ctx.path(), &["--cache-from", &src]);
    assert_all_cached(&events);
    assert!(warnings(&events).is_empty(), "{:?}", warnings(&events));
}

#[test]
fn registry_cache_fetches_only_used_layers() {
    let registry = TestRegistry::plain();
    let reference = format!("{}/cache/app:build", registry.host);
    let ctx = context(&[("Dockerfile", LINEAR)]);
    let first = TestStore::new();
    let to = format!("type=registry,ref={reference},mode=max,registry.insecure=true");
    build(&first, ctx.path(), &["--cache-to", &to]);

    let cache_manifest = registry.raw_manifest("cache/app:build");
    assert_eq!(
        cache_manifest["config"]["mediaType"],
        "application/vnd.strata.cache.config.v1+json"
    );
    let cache_layers = layer_digests(&cache_manifest);
    assert_eq!(cache_layers.len(), 3, "busybox and two RUN layers");

    let second = TestStore::new();
    let from = format!("type=registry,ref={reference}");
    let image = format!("{}/cache/app:v1", registry.host);
    let output = format!("type=image,name={image},push=true");
    let events = build(
        &second,
        ctx.path(),
        &[
            "--cache-from",
            &from,
            "--allow-insecure-registry",
            &registry.host,
            "--output",
            &output,
        ],
    );
    assert_all_cached(&events);

    // The second store fetched exactly the layers of the final image that
    // it lacked: busybox was imported locally, so only the two RUN layers.
    let final_layers = layer_digests(&registry.raw_manifest("cache/app:v1"));
    for digest in &cache_layers {
        let in_final = final_layers.contains(digest);
        assert_eq!(has_blob(&second, digest), in_final, "blob {digest}");
    }
    let partial = second.root().join("registry/partial");
    let leftovers = std::fs::read_dir(&partial).map_or(0, |d| d.count());
    assert_eq!(
        leftovers,
        0,
        "partial downloads left in {}",
        partial.display()
    );
}

#[test]
fn min_mode_exports_final_chain_only() {
    let cache = tempfile::tempdir().unwrap();
    let dockerfile = "FROM busybox AS tool\nRUN echo t > /t\nFROM busybox\nRUN echo a > /a\n";
    let ctx = context(&[("Dockerfile", dockerfile)]);
    let store = TestStore::new();
    let dest = format!("type=local,dest={}", cache.path().display());
    build(
        &store,
        ctx.path(),
        &["--target", "tool", "--cache-to", &dest],
    );
    let tool_records = records(cache.path());
    build(&store, ctx.path(), &["--cache-to", &dest]);
    let final_records = records(cache.path());
    assert_eq!(tool_records, 1);
    assert_eq!(
        final_records, 1,
        "the `tool` stage is not in the final chain"
    );
}

/// Counts the records of the cache config in a layout directory.
fn records(dir: &std::path::Path) -> usize {
    let read = |digest: &str| -> serde_json::Value {
        let path = dir
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap());
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest = read(index["manifests"][0]["digest"].as_str().unwrap());
    let config = read(manifest["config"]["digest"].as_str().unwrap());
    config["records"].as_array().unwrap().len()
}

#[test]
fn missing_and_unrelated_caches_warn() {
    let ctx = context(&[("Dockerfile", LINEAR)]);
    let store = TestStore::new();
    let missing = tempfile::tempdir().unwrap();
    let src = format!("type=local,src={}", missing.path().display());
    let events = build(&store, ctx.path(), &["--cache-from", &src]);
    let text = warnings(&events).join("\n");
    assert!(text.contains("not found: building without it"), "{text}");

    let other = tempfile::tempdir().unwrap();
    let other_ctx = context(&[("Dockerfile", "FROM busybox\nRUN echo other > /o\n")]);
    let dest = format!("type=local,dest={},mode=max", other.path().display());
    build(&store, other_ctx.path(), &["--cache-to", &dest]);
    let fresh = TestStore::new();
    let src = format!("type=local,src={}", other.path().display());
    let changed = context(&[("Dockerfile", "FROM busybox\nRUN echo changed > /c\n")]);
    let events = build(&fresh, changed.path(), &["--cache-from", &src]);
    let text = warnings(&events).join("\n");
    assert!(text.contains("None of the 1 records of cache"), "{text}");
}

#[test]
fn cache_flags_reject_bad_values() {
    let ctx = context(&[("Dockerfile", LINEAR)]);
    let store = TestStore::new();
    for (flag, value, needle) in [
        ("--cache-to", "type=local", "type `local` needs `dest=...`"),
        ("--cache-to", "type=local,dest=/x,mode=all", "mode `all`"),
        ("--cache-from", "type=ftp,src=x", "unknown type `ftp`"),
        (
            "--cache-to",
            "type=inline",
            "the build has no output to embed the cache in",
        ),
    ] {
        let out = store.build(ctx.path(), &[flag, value]);
        assert!(!out.status.success(), "`{flag} {value}` was accepted");
        let text = common::stderr(&out);
        assert!(text.contains(needle), "`{flag} {value}`: {text}");
    }
}
