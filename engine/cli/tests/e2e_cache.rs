//! `strata du`, `strata prune`, `strata cache pin|unpin` and the automatic
//! garbage collection, run as the real binary against a private store,
//! including builds and prunes racing on one store.

mod common;

use common::{TestStore, assert_success, context, stderr};
use serde_json::Value;
use std::collections::HashSet;
use std::process::Output;

const DOCKERFILE: &str = "FROM busybox\nCOPY a /a\nRUN cat /a > /b\n";

fn json(output: &Output) -> Value {
    assert_success(output);
    serde_json::from_slice(&output.stdout).unwrap()
}

fn du(store: &TestStore) -> Vec<Value> {
    let value = json(&store.strata(&["du", "--format", "json"]));
    value["records"].as_array().unwrap().clone()
}

fn types(records: &[Value]) -> Vec<String> {
    let mut types: Vec<String> = records
        .iter()
        .map(|r| r["type"].as_str().unwrap().to_string())
        .collect();
    types.sort();
    types
}

/// Fails unless every record's parent is itself a record.
fn assert_chains_complete(records: &[Value]) {
    let ids: HashSet<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for record in records {
        if let Some(parent) = record["parent"].as_str() {
            assert!(ids.contains(parent), "record {record} lost its parent");
        }
    }
}

#[test]
fn du_lists_build_records() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", DOCKERFILE), ("a", "hello")]);
    assert_success(&store.build(ctx.path(), &[]));

    let records = du(&store);
    assert_eq!(
        types(&records),
        vec!["layer", "regular", "regular", "source.local"]
    );
    let layer = records.iter().find(|r| r["type"] == "layer").unwrap();
    assert_eq!(layer["shared"], true);
    assert_eq!(layer["images"][0], "docker.io/library/busybox:latest");
    let mirror = records
        .iter()
        .find(|r| r["type"] == "source.local")
        .unwrap();
    // The mirror holds only what the build reads: `a`, not the Dockerfile.
    assert_eq!(mirror["size"], 5);
    assert_eq!(mirror["in_use"], Value::Null);
    assert_eq!(mirror["builds"].as_array().unwrap().len(), 1);

    let filtered = json(&store.strata(&["du", "--format", "json", "--filter", "type==regular"]));
    assert_eq!(filtered["records"].as_array().unwrap().len(), 2);

    let table = store.strata(&["du"]);
    assert_success(&table);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("source.local"), "{text}");
    assert!(text.contains("Reclaimable:"), "{text}");
}

#[test]
fn prune_keeps_image_and_rebuild_works() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", DOCKERFILE), ("a", "hello")]);
    assert_success(&store.build(ctx.path(), &[]));

    let dry = json(&store.strata(&["prune", "--dry-run", "--format", "json"]));
    assert_eq!(dry["deleted"].as_array().unwrap().len(), 3);
    assert_eq!(dry["kept"][0]["kept"]["reason"], "used_by_image");
    assert_eq!(du(&store).len(), 4, "a dry run deletes nothing");

    let pruned = json(&store.strata(&["prune", "--format", "json"]));
    assert_eq!(pruned["deleted"].as_array().unwrap().len(), 3);
    assert_eq!(types(&du(&store)), vec!["layer"]);

    let (output, events) = store.build_events(ctx.path(), &[]);
    assert_success(&output);
    let ran = common::vertex_names_with(&events, "vertex_completed");
    assert!(ran.iter().any(|name| name.contains("RUN cat")), "{ran:?}");
}

#[test]
fn pinned_record_survives_prune_all() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", DOCKERFILE), ("a", "hello")]);
    assert_success(&store.build(ctx.path(), &[]));
    let regular = json(&store.strata(&["du", "--format", "json", "--filter", "type==regular"]));
    let top = regular["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["shared"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    assert_success(&store.strata(&["cache", "pin", &top[..10]]));
    let dry = store.strata(&["prune", "--all", "--dry-run"]);
    assert_success(&dry);
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(text.contains("pinned"), "{text}");
    assert!(text.contains("parent of kept record"), "{text}");

    assert_success(&store.strata(&["prune", "--all"]));
    let left = du(&store);
    assert_eq!(types(&left), vec!["layer", "regular", "regular"]);
    assert_chains_complete(&left);

    assert_success(&store.strata(&["cache", "unpin", &top]));
    assert_success(&store.strata(&["prune", "--all"]));
    assert_eq!(types(&du(&store)), vec!["layer"]);
}

#[test]
fn invalid_values_are_rejected() {
    let store = TestStore::new();
    let cases: [(&[&str], &str); 7] = [
        (&["prune", "--keep-storage", "10XB"], "`10XB`"),
        (&["prune", "--keep-duration", "soon"], "`soon`"),
        (&["prune", "--min-free-space", "150%"], "`150%`"),
        (&["prune", "--filter", "color=red"], "`color=red`"),
        (&["du", "--format", "xml"], "`xml`"),
        (&["du", "--filter", "type==image"], "`type==image`"),
        (&["cache", "pin", "0123abcd"], "`0123abcd`"),
    ];
    for (args, expected) in cases {
        let output = store.strata(args);
        assert!(!output.status.success(), "{args:?} succeeded");
        let message = stderr(&output);
        assert!(message.contains(expected), "{args:?}: {message}");
    }
    assert_eq!(types(&du(&store)), vec!["layer"], "nothing was deleted");
}

#[test]
fn automatic_gc_honours_storage_limit() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", DOCKERFILE), ("a", "hello")]);
    assert_success(&store.build(ctx.path(), &[]));
    assert_eq!(du(&store).len(), 4, "the default limit keeps a small cache");

    let output = store
        .command()
        .env("STRATA_GC_KEEP_STORAGE", "0")
        .args(["build", "--progress", "plain", ctx.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(types(&du(&store)), vec!["layer"]);

    let output = store
        .command()
        .env("STRATA_GC_KEEP_STORAGE", "lots")
        .args(["build", "--progress", "plain", ctx.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("`STRATA_GC_KEEP_STORAGE`"),
        "{}",
        stderr(&output)
    );
}

/// Two processes build in loops while a third prunes everything it can;
/// one builder also collects garbage down to nothing after each build.
/// Every build must succeed and the store must stay consistent.
#[test]
fn builds_survive_concurrent_prune() {
    const BUILDS: usize = 8;
    let store = TestStore::new();
    let first = context(&[("Dockerfile", DOCKERFILE), ("a", "first")]);
    let second = context(&[
        (
            "Dockerfile",
            "FROM busybox\nRUN echo shared > /s\nCOPY a /a\nRUN cat /a /s > /b\n",
        ),
        ("a", "second"),
    ]);
    let done = std::sync::atomic::AtomicBool::new(false);

    std::thread::scope(|scope| {
        let builders: Vec<_> = [(first.path(), None), (second.path(), Some("0"))]
            .into_iter()
            .map(|(dir, keep)| {
                let store = &store;
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for round in 0..BUILDS {
                        // Every other round changes the context: half hits, half misses.
                        std::fs::write(dir.join("a"), format!("round {}", round / 2)).unwrap();
                        let mut command = store.command();
                        if let Some(keep) = keep {
                            command.env("STRATA_GC_KEEP_STORAGE", keep);
                        }
                        let output = command
                            .args(["build", "--progress", "plain", dir.to_str().unwrap()])
                            .output()
                            .unwrap();
                        if !output.status.success() {
                            failures.push(format!("round {round}: {}", stderr(&output)));
                        }
                    }
                    failures
                })
            })
            .collect();
        let pruner = scope.spawn(|| {
            let mut deleted = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let report = json(&store.strata(&["prune", "--all", "--format", "json"]));
                deleted += report["deleted"].as_array().unwrap().len();
            }
            deleted
        });

        let failures: Vec<String> = builders
            .into_iter()
            .flat_map(|b| b.join().unwrap())
            .collect();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let deleted = pruner.join().unwrap();
        assert!(
            failures.is_empty(),
            "builds failed:\n{}",
            failures.join("\n")
        );
        assert!(
            deleted > 0,
            "the pruner never deleted anything while builds ran"
        );
    });

    let records = du(&store);
    assert_chains_complete(&records);
    assert!(records.iter().all(|r| r["in_use"].is_null()), "{records:?}");
    assert_success(&store.build(first.path(), &[]));
    assert_success(&store.strata(&["prune", "--all"]));
    assert_eq!(types(&du(&store)), vec!["layer"]);
}
