//! Per-layer progress in the rawjson events and in the plain log: a
//! `FROM` image pulled from a private registry on 127.0.0.1, and the
//! layers an export compresses.

mod common;
mod registry_support;

use common::{TestStore, assert_success, context, stderr};
use registry_support::TestRegistry;
use std::collections::HashMap;

/// An image with a 6 MB layer of random bytes, which gzip cannot shrink,
/// so the download takes many chunks.
const BIG: &str = "FROM busybox\nRUN head -c 6000000 /dev/urandom > /big\n";

/// Builds [`BIG`] in a new store and pushes it as `image`; returns the
/// pushed manifest.
fn push_big(registry: &TestRegistry, image: &str) -> serde_json::Value {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", BIG)]);
    let output = format!("type=image,name={}/{image},push=true", registry.host);
    let args = [
        "--output",
        &output,
        "--allow-insecure-registry",
        &registry.host,
    ];
    assert_success(&store.build(ctx.path(), &args));
    registry.raw_manifest(image)
}

fn layer_digests(manifest: &serde_json::Value) -> Vec<(String, u64)> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap().to_string(),
                l["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn pull_sends_layer_events() {
    let registry = TestRegistry::plain();
    let manifest = push_big(&registry, "progress/big:v1");
    let layers = layer_digests(&manifest);
    assert_eq!(layers.len(), 2, "busybox and the RUN layer");

    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {}/progress/big:v1\nRUN true\n", registry.host),
    )]);
    let (output, events) =
        store.build_events(ctx.path(), &["--allow-insecure-registry", &registry.host]);
    assert_success(&output);

    let phase = format!("pull-{}/progress/big:v1", registry.host);
    let phases: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["type"] == "phase" && e["id"] == phase.as_str())
        .collect();
    assert_eq!(phases.len(), 2, "a start and an end phase for the pull");
    assert!(
        phases[1]["duration_ms"].is_u64(),
        "the second phase ends the pull"
    );

    let mut by_layer: HashMap<&str, Vec<&serde_json::Value>> = HashMap::new();
    for event in events.iter().filter(|e| e["type"] == "layer_progress") {
        assert_eq!(event["phase"], phase.as_str());
        by_layer
            .entry(event["layer"].as_str().unwrap())
            .or_default()
            .push(event);
    }
    // The store imported busybox, so its layer needs no download.
    let (base, _) = &layers[0];
    assert!(
        !by_layer.contains_key(base.as_str()),
        "busybox layer sent updates"
    );

    let (digest, size) = &layers[1];
    let updates = by_layer
        .get(digest.as_str())
        .unwrap_or_else(|| panic!("no layer_progress for `{digest}`"));
    let statuses: Vec<&str> = updates
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.first(), Some(&"downloading"), "{statuses:?}");
    assert_eq!(updates[0]["current"], 0, "the download starts at 0 bytes");
    assert_eq!(statuses.last(), Some(&"extracted"), "{statuses:?}");
    let verified = updates.iter().find(|e| e["status"] == "verified");
    let verified = verified.unwrap_or_else(|| panic!("the layer was never verified"));
    assert_eq!(verified["current"], *size, "verified at its full size");
    let verified_at = statuses.iter().position(|s| *s == "verified").unwrap();
    let extracting_at = statuses.iter().position(|s| *s == "extracting").unwrap();
    assert!(verified_at < extracting_at, "{statuses:?}");
    for update in updates {
        assert_eq!(update["total"], *size, "the total is the manifest size");
    }
    // The throttle allows about four updates a second per status; a
    // loopback download of 6 MB takes well under ten seconds.
    assert!(updates.len() < 80, "{} updates", updates.len());
}

#[test]
fn pull_progress_in_plain_log() {
    let registry = TestRegistry::plain();
    let manifest = push_big(&registry, "progress/plain:v1");
    let (big_layer, _) = layer_digests(&manifest).pop().unwrap();
    let short = &big_layer[..big_layer.find(':').unwrap() + 13];

    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {}/progress/plain:v1\nRUN true\n", registry.host),
    )]);
    let output = store.build(ctx.path(), &["--allow-insecure-registry", &registry.host]);
    assert_success(&output);
    let log = stderr(&output);

    let header = format!("pulling {}/progress/plain:v1", registry.host);
    assert!(log.contains(&header), "no pull step in:\n{log}");
    let download_done = log
        .lines()
        .any(|l| l.contains(&format!(" {short} 6.")) && l.ends_with(" done"));
    assert!(
        download_done,
        "no finished download line for `{short}` in:\n{log}"
    );
    let extract_done = log
        .lines()
        .any(|l| l.contains(&format!(" extracting {short} ")) && l.ends_with(" done"));
    assert!(
        extract_done,
        "no finished extract line for `{short}` in:\n{log}"
    );
}

#[test]
fn export_reports_layer_bytes() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", BIG)]);
    let archive = store.root().join("big.oci.tar");
    let output = format!("type=oci,dest={}", archive.display());
    let (result, events) = store.build_events(ctx.path(), &["--output", &output]);
    assert_success(&result);

    let updates: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["type"] == "progress")
        .filter(|e| e["id"].as_str().unwrap().starts_with("compressing layer "))
        .collect();
    assert!(!updates.is_empty(), "no compressing progress in {events:?}");
    let last = updates.last().unwrap();
    assert_eq!(last["unit"], "B");
    assert_eq!(
        last["total"], last["current"],
        "the last update completes the task"
    );
    // Random bytes do not compress, so the layer is at least 6 MB.
    assert!(last["current"].as_u64().unwrap() >= 6_000_000, "{last}");

    // The layer is in the store now, so a second export reuses it and
    // compresses nothing.
    let again = store.build(ctx.path(), &["--output", &output]);
    assert_success(&again);
    let log = stderr(&again);
    assert!(
        !log.contains("compressing layer"),
        "compressed again:\n{log}"
    );
}

#[test]
fn export_progress_in_plain_log() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", BIG)]);
    let archive = store.root().join("big.oci.tar");
    let output = format!("type=oci,dest={}", archive.display());
    let result = store.build(ctx.path(), &["--output", &output]);
    assert_success(&result);
    let log = stderr(&result);
    let done = log
        .lines()
        .any(|l| l.contains(" compressing layer ") && l.contains(": 6.") && l.ends_with(" done"));
    assert!(done, "no finished compressing line in:\n{log}");
}
