//! End-to-end tests of `strata history` against real builds.

mod common;

use common::*;
use std::process::Output;

const TWO_STEPS: &str = "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt\n";

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a `history` subcommand that must succeed and returns its stdout.
fn history(store: &TestStore, args: &[&str]) -> String {
    let mut full = vec!["history"];
    full.extend_from_slice(args);
    let output = store.strata(&full);
    assert_success(&output);
    stdout(&output)
}

/// Runs a `history` subcommand that must fail and returns its stderr.
fn history_error(store: &TestStore, args: &[&str]) -> String {
    let mut full = vec!["history"];
    full.extend_from_slice(args);
    let output = store.strata(&full);
    assert!(
        !output.status.success(),
        "`strata history {}` succeeded:\n{}",
        args.join(" "),
        stdout(&output)
    );
    stderr(&output)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("invalid JSON ({e}):\n{text}"))
}

/// Ids from `history ls`, newest first.
fn ids(store: &TestStore) -> Vec<String> {
    json(&history(store, &["ls", "--format", "json"]))
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["id"].as_str().unwrap().to_string())
        .collect()
}

/// Creates a store with two builds of the same context, the second fully
/// cached.
fn store_with_rebuild() -> (TestStore, tempfile::TempDir) {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", TWO_STEPS), ("a.txt", "one\n")]);
    assert_success(&store.build(ctx.path(), &[]));
    assert_success(&store.build(ctx.path(), &[]));
    (store, ctx)
}

#[test]
fn ls_shows_both_builds_and_offsets_resolve() {
    let (store, _ctx) = store_with_rebuild();
    let ids = ids(&store);
    assert_eq!(ids.len(), 2);

    let table = history(&store, &["ls"]);
    assert!(table.starts_with("ID"), "{table}");
    for id in &ids {
        assert!(table.contains(id.as_str()), "{id} missing from:\n{table}");
    }
    assert!(table.contains("2/2"), "{table}");

    let older = json(&history(&store, &["inspect", "^1", "--format", "json"]));
    assert_eq!(older["id"], ids[1].as_str());
    let prefix = &ids[0][..ids[0].len() - 2];
    let newest = json(&history(&store, &["inspect", prefix, "--format", "json"]));
    assert_eq!(newest["id"], ids[0].as_str());
    let limited = json(&history(
        &store,
        &["ls", "--limit", "1", "--format", "json"],
    ));
    assert_eq!(limited.as_array().unwrap().len(), 1);
}

#[test]
fn inspect_shows_cached_share_and_critical_path() {
    let (store, _ctx) = store_with_rebuild();
    let newest = json(&history(&store, &["inspect", "^0", "--format", "json"]));
    assert_eq!(newest["steps"]["total"], 2);
    assert_eq!(newest["steps"]["cached"], 2);
    assert_eq!(newest["steps"]["cached_share"], 1.0);
    assert!(!newest["critical_path"].as_array().unwrap().is_empty());
    let first = json(&history(&store, &["inspect", "^1", "--format", "json"]));
    assert_eq!(first["steps"]["cached_share"], 0.0);

    let text = history(&store, &["inspect", "^0"]);
    assert!(text.contains("2/2 done, 2 cached (100%)"), "{text}");
    assert!(text.contains("Critical path:"), "{text}");
    assert!(text.contains("CACHE LOOKUP"), "{text}");
    assert!(text.contains("RUN cat /a.txt"), "{text}");
}

#[test]
fn inspect_failed_build_names_step_and_line() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo fine\nRUN echo broken && exit 3\n",
    )]);
    assert!(!store.build(ctx.path(), &[]).status.success());
    let ok = context(&[("Dockerfile", "FROM busybox\nRUN echo fine\n")]);
    assert_success(&store.build(ok.path(), &[]));

    let text = history(&store, &["inspect", "^1"]);
    assert!(text.contains("Status:     failed"), "{text}");
    assert!(text.contains("step:     [3/3] RUN echo broken"), "{text}");
    assert!(text.contains("location: Dockerfile:3"), "{text}");

    let failed = json(&history(
        &store,
        &["ls", "--filter", "status=failed", "--format", "json"],
    ));
    let failed = failed.as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["status"], "failed");
    let error = history_error(&store, &["ls", "--filter", "status=broken"]);
    assert!(error.contains("`broken`"), "{error}");
}

#[test]
fn logs_keep_every_line_of_long_output() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN i=1; while [ $i -le 5000 ]; do echo log-line-$i; i=$((i+1)); done\n",
    )]);
    assert_success(&store.build(ctx.path(), &[]));

    for args in [
        vec!["logs", "^0"],
        vec!["logs", "^0", "--step", "RUN i=1"],
        vec!["logs", "^0", "--step", "2"],
    ] {
        let text = history(&store, &args);
        // Log lines read `#N SECONDS TEXT`; the step's header also
        // contains `log-line-`, inside its command.
        let lines: Vec<&str> = text
            .lines()
            .filter_map(|line| line.splitn(3, ' ').nth(2)?.strip_prefix("log-line-"))
            .collect();
        assert_eq!(lines.len(), 5000, "{args:?} printed {} lines", lines.len());
        for (index, number) in lines.iter().enumerate() {
            assert_eq!(*number, (index + 1).to_string(), "{args:?}");
        }
    }
    let only = history(&store, &["logs", "^0", "--step", "2"]);
    assert!(only.lines().all(|line| line.starts_with("#2")), "{only}");
    let error = history_error(&store, &["logs", "^0", "--step", "COPY"]);
    assert!(error.contains("`COPY`"), "{error}");
}

#[test]
fn trace_has_one_span_per_started_step() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", TWO_STEPS), ("a.txt", "one\n")]);
    let (output, events) = store.build_events(ctx.path(), &[]);
    assert_success(&output);
    let started: std::collections::HashSet<&str> = events
        .iter()
        .filter(|e| e["type"] == "vertex_started")
        .map(|e| e["vertex"].as_str().unwrap())
        .collect();

    let file = tempfile::tempdir().unwrap();
    let path = file.path().join("trace.json");
    history(
        &store,
        &[
            "trace",
            "^0",
            "--format",
            "chrome",
            "-o",
            path.to_str().unwrap(),
        ],
    );
    let trace = json(&std::fs::read_to_string(&path).unwrap());
    let events = trace["traceEvents"].as_array().unwrap();
    let spans: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(spans.len(), started.len());
    for span in &spans {
        assert!(span["name"].is_string(), "{span}");
        assert!(span["ts"].as_i64().unwrap() >= 0, "{span}");
        assert!(span["dur"].as_i64().unwrap() >= 0, "{span}");
        assert_eq!(span["pid"], 1);
        let tid = &span["tid"];
        let named = events
            .iter()
            .any(|e| e["ph"] == "M" && e["name"] == "thread_name" && &e["tid"] == tid);
        assert!(named, "lane {tid} has no thread_name");
    }
    let to_stdout = json(&history(&store, &["trace", "^0"]));
    assert_eq!(to_stdout, trace);
}

#[test]
fn explain_names_changed_file() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", TWO_STEPS), ("a.txt", "one\n")]);
    assert_success(&store.build(ctx.path(), &[]));
    std::fs::write(ctx.path().join("a.txt"), "two\n").unwrap();
    assert_success(&store.build(ctx.path(), &[]));

    let text = history(&store, &["explain", "^0"]);
    assert!(text.contains("COPY a.txt /a.txt"), "{text}");
    assert!(text.contains("modified a.txt"), "{text}");
    let first = history(&store, &["explain", "^1"]);
    assert!(first.contains("no earlier build"), "{first}");
    let data = json(&history(&store, &["explain", "^0", "--format", "json"]));
    assert_eq!(data["steps"][0]["reasons"][0]["reason"], "files_changed");
}

#[test]
fn compare_reports_cache_flip() {
    let (store, _ctx) = store_with_rebuild();
    let text = history(&store, &["compare", "^1", "^0"]);
    assert!(text.contains("Cache flips:"), "{text}");
    assert!(
        text.contains("ran → cached: [3/3] RUN cat /a.txt"),
        "{text}"
    );
    assert!(text.contains("Duration:"), "{text}");

    let data = json(&history(
        &store,
        &["compare", "^1", "^0", "--format", "json"],
    ));
    let flips = data["cache_flips"].as_array().unwrap();
    assert_eq!(flips.len(), 2);
    assert_eq!(flips[0]["before"], "done");
    assert_eq!(flips[0]["after"], "cached");
    assert!(data["added"].as_array().unwrap().is_empty());
    assert!(data["removed"].as_array().unwrap().is_empty());
    let timing = data["timing"].as_array().unwrap();
    let differences: Vec<i64> = timing
        .iter()
        .map(|t| t["difference_ms"].as_i64().unwrap().abs())
        .collect();
    assert!(
        differences.windows(2).all(|w| w[0] >= w[1]),
        "{differences:?}"
    );
}

#[test]
fn export_import_round_trips_to_second_store() {
    let (store, _ctx) = store_with_rebuild();
    let id = ids(&store)[1].clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("build.json.gz");
    history(&store, &["export", &id, "-o", file.to_str().unwrap()]);

    let other = TestStore::new();
    let imported = history(&other, &["import", file.to_str().unwrap()]);
    assert_eq!(imported.trim(), id);
    assert_eq!(
        history(&other, &["logs", &id]),
        history(&store, &["logs", &id])
    );
    assert_eq!(
        history(&other, &["inspect", &id, "--format", "json"]),
        history(&store, &["inspect", &id, "--format", "json"])
    );

    let again = history_error(&other, &["import", file.to_str().unwrap()]);
    assert!(again.contains("already in the history"), "{again}");
    let garbage = dir.path().join("garbage.gz");
    std::fs::write(&garbage, "not a record").unwrap();
    let error = history_error(&other, &["import", garbage.to_str().unwrap()]);
    assert!(error.contains("garbage.gz"), "{error}");
    assert!(error.contains("strata history export"), "{error}");
    assert_eq!(ids(&other), [id]);
}

#[test]
fn bad_references_name_the_reference() {
    let (store, _ctx) = store_with_rebuild();
    for reference in ["nosuchbuild", "^7", "^x"] {
        let error = history_error(&store, &["inspect", reference]);
        assert!(error.contains(&format!("`{reference}`")), "{error}");
        assert!(error.contains("strata history ls"), "{error}");
    }
    let error = history_error(&store, &["rm", "^0", "nosuchbuild"]);
    assert!(error.contains("`nosuchbuild`"), "{error}");
    assert_eq!(ids(&store).len(), 2, "a failed rm deleted records");
}

#[test]
fn rm_pin_and_unpin() {
    let (store, _ctx) = store_with_rebuild();
    let ids_before = ids(&store);
    history(&store, &["pin", "^1"]);
    let listed = json(&history(&store, &["ls", "--format", "json"]));
    assert_eq!(listed[1]["pinned"], true);
    assert!(history(&store, &["ls"]).contains("(pinned)"));
    let pinned = json(&history(
        &store,
        &["ls", "--filter", "pinned=true", "--format", "json"],
    ));
    assert_eq!(pinned.as_array().unwrap().len(), 1);
    history(&store, &["unpin", "^1"]);
    let listed = json(&history(&store, &["ls", "--format", "json"]));
    assert_eq!(listed[1]["pinned"], false);

    let removed = history(&store, &["rm", "^0"]);
    assert_eq!(removed.trim(), ids_before[0]);
    assert_eq!(ids(&store), [ids_before[1].clone()]);
}
