//! Checks the dependency direction between the engine's crates, read from
//! `cargo metadata`, so a shortcut across layers fails the build.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// For each crate, the Strata crates it may depend on.
const ALLOWED: &[(&str, &[&str])] = &[
    ("strata-llb", &[]),
    ("strata-dockerfile", &["strata-llb"]),
    ("strata-solver", &["strata-llb"]),
    ("strata-store", &["strata-llb"]),
    (
        "strata-worker",
        &["strata-llb", "strata-store", "strata-solver"],
    ),
    (
        "strata-source",
        &[
            "strata-llb",
            "strata-store",
            "strata-solver",
            "strata-dockerfile",
        ],
    ),
    ("strata-exporter", &["strata-llb", "strata-store"]),
    ("strata-history", &["strata-llb", "strata-solver"]),
    ("strata-ui-model", &["strata-llb", "strata-solver", "strata-history"]),
    (
        "strata-engine",
        &[
            "strata-llb",
            "strata-dockerfile",
            "strata-solver",
            "strata-store",
            "strata-worker",
            "strata-source",
            "strata-exporter",
            "strata-history",
        ],
    ),
];

fn workspace_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut graph = BTreeMap::new();
    for package in metadata["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap().to_string();
        let dependencies = package["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().unwrap().to_string())
            .filter(|d| d.starts_with("strata-"))
            .collect();
        graph.insert(name, dependencies);
    }
    graph
}

#[test]
fn crates_depend_only_downward() {
    let graph = workspace_dependencies();
    for (name, allowed) in ALLOWED {
        let actual = graph
            .get(*name)
            .unwrap_or_else(|| panic!("crate `{name}` is missing from the workspace"));
        let allowed: BTreeSet<String> = allowed.iter().map(|s| s.to_string()).collect();
        let extra: Vec<_> = actual.difference(&allowed).collect();
        assert!(
            extra.is_empty(),
            "`{name}` depends on {extra:?}, which its layer must not use"
        );
    }
}

#[test]
fn front_ends_use_only_the_engine_api() {
    let graph = workspace_dependencies();
    let cli = &graph["strata-cli"];
    for forbidden in ["strata-worker", "strata-source"] {
        assert!(
            !cli.contains(forbidden),
            "the CLI depends on `{forbidden}`; go through `strata-engine`"
        );
    }
}
