//! End-to-end builds with the real binary, runc and overlayfs.

mod common;

use common::*;

const MULTI_STAGE: &str = r#"FROM busybox AS build
WORKDIR /src
COPY greeting.txt .
RUN cat greeting.txt > /out.txt && echo built >> /out.txt

FROM busybox AS broken
RUN echo "this stage is not needed" && exit 1

FROM busybox
COPY --from=build /out.txt /result.txt
CMD ["cat", "/result.txt"]
"#;

#[test]
fn multi_stage_build_exports_local() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", MULTI_STAGE), ("greeting.txt", "hello\n")]);
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    let output = store.build(ctx.path(), &["--output", &dest]);
    assert_success(&output);
    let result = std::fs::read_to_string(out.path().join("result.txt")).unwrap();
    assert_eq!(result, "hello\nbuilt\n");
    assert!(
        !stderr(&output).contains("this stage is not needed"),
        "the unused stage ran"
    );
}

#[test]
fn second_build_is_fully_cached() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", MULTI_STAGE), ("greeting.txt", "hello\n")]);
    let (first, _) = store.build_events(ctx.path(), &[]);
    assert_success(&first);
    let (second, events) = store.build_events(ctx.path(), &[]);
    assert_success(&second);
    let ran: Vec<String> = vertex_names_with(&events, "vertex_completed")
        .into_iter()
        .filter(|name| !name.contains("FROM") && !name.contains("load build context"))
        .collect();
    assert!(ran.is_empty(), "steps ran again: {ran:?}");
    assert!(count_events(&events, "vertex_cached") >= 4);
}

#[test]
fn unrelated_context_change_keeps_copy_cached() {
    let store = TestStore::new();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY app/ /app/\nRUN ls /app > /listing\n",
        ),
        ("app/main.txt", "one"),
        ("notes.txt", "a"),
    ]);
    assert_success(&store.build(ctx.path(), &[]));
    std::fs::write(ctx.path().join("notes.txt"), "b").unwrap();
    let (output, events) = store.build_events(ctx.path(), &[]);
    assert_success(&output);
    let cached = vertex_names_with(&events, "vertex_cached");
    assert!(
        cached.iter().any(|n| n.contains("COPY app/")),
        "COPY re-ran: cached were {cached:?}"
    );

    std::fs::write(ctx.path().join("app/main.txt"), "two").unwrap();
    let (output, events) = store.build_events(ctx.path(), &[]);
    assert_success(&output);
    let cached = vertex_names_with(&events, "vertex_cached");
    assert!(
        !cached.iter().any(|n| n.contains("COPY app/")),
        "COPY stayed cached after its file changed"
    );
}

#[test]
fn target_builds_only_needed_stages() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", MULTI_STAGE), ("greeting.txt", "hi\n")]);
    let output = store.build(ctx.path(), &["--target", "build"]);
    assert_success(&output);
    let log = stderr(&output);
    assert!(
        log.contains("[build"),
        "no step of the build stage ran:\n{log}"
    );
    assert!(
        !log.contains("stage-2"),
        "the final stage ran for --target build:\n{log}"
    );
}

#[test]
fn failing_run_reports_exit_code() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo about to fail && exit 3\n",
    )]);
    let output = store.build(ctx.path(), &[]);
    assert!(!output.status.success());
    let log = stderr(&output);
    assert!(log.contains("exit code: 3"), "{log}");
    assert!(
        log.contains("about to fail"),
        "the last log lines are missing:\n{log}"
    );
}

#[test]
fn unknown_target_is_an_error() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", MULTI_STAGE), ("greeting.txt", "hi\n")]);
    let output = store.build(ctx.path(), &["--target", "nosuch"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("nosuch"), "{}", stderr(&output));
}

#[test]
fn parse_error_names_line() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN [\"echo\", 1]\n")]);
    let output = store.build(ctx.path(), &[]);
    assert!(!output.status.success());
    let log = stderr(&output);
    assert!(log.contains("Dockerfile") && log.contains('2'), "{log}");
}

#[test]
fn missing_base_image_explains_import() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM nosuchimage:1\n")]);
    let output = store.build(ctx.path(), &[]);
    assert!(!output.status.success());
    let log = stderr(&output);
    assert!(log.contains("docker.io/library/nosuchimage:1"), "{log}");
    assert!(log.contains("strata image import"), "{log}");
}

#[test]
fn missing_context_is_an_error() {
    let store = TestStore::new();
    let output = store.build(std::path::Path::new("/nonexistent/context"), &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("/nonexistent/context"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn independent_stages_overlap_in_time() {
    let store = TestStore::new();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox AS a\nRUN sleep 1 && echo a > /a\nFROM busybox AS b\nRUN sleep 1 && echo b > /b\n\
         FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
    )]);
    let (output, events) = store.build_events(ctx.path(), &["--max-parallel", "4"]);
    assert_success(&output);
    let names: std::collections::HashMap<&str, &str> = events
        .iter()
        .filter(|e| e["type"] == "vertex_queued")
        .map(|e| (e["vertex"].as_str().unwrap(), e["name"].as_str().unwrap()))
        .collect();
    let time_of = |kind: &str, needle: &str| {
        let event = events
            .iter()
            .find(|e| {
                e["type"] == kind
                    && names
                        .get(e["vertex"].as_str().unwrap_or(""))
                        .is_some_and(|n| n.contains(needle))
            })
            .unwrap_or_else(|| panic!("no {kind} event for {needle}"));
        chrono::DateTime::parse_from_rfc3339(event["time"].as_str().unwrap()).unwrap()
    };
    let (a_start, a_end) = (
        time_of("vertex_started", "[a 2/2]"),
        time_of("vertex_completed", "[a 2/2]"),
    );
    let (b_start, b_end) = (
        time_of("vertex_started", "[b 2/2]"),
        time_of("vertex_completed", "[b 2/2]"),
    );
    assert!(
        a_start < b_end && b_start < a_end,
        "the two RUN steps did not overlap: a {a_start}..{a_end}, b {b_start}..{b_end}"
    );
}

/// Lists the files a `COPY . /c/` saw, by building and exporting.
fn copied_files(store: &TestStore, ctx: &std::path::Path) -> Vec<String> {
    let out = tempfile::tempdir().unwrap();
    let spec = format!("type=local,dest={}", out.path().display());
    assert_success(&store.build(ctx, &["--output", &spec]));
    let root = out.path().join("c");
    let mut files: Vec<String> = walkdir(&root)
        .into_iter()
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    files.sort();
    files
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walkdir(&path))
        } else {
            files.push(path)
        }
    }
    files
}

#[test]
fn dockerignore_exceptions_survive_rebuilds() {
    let store = TestStore::new();
    let ctx = context(&[
        ("Dockerfile", "FROM busybox\nCOPY . /c/\n"),
        ("keep/a", ""),
        ("keep/sub/b", ""),
        ("drop/c", ""),
    ]);
    let all = ["Dockerfile", "drop/c", "keep/a", "keep/sub/b"];
    assert_eq!(copied_files(&store, ctx.path()), all);

    std::fs::write(ctx.path().join(".dockerignore"), "keep/**\n!keep/sub/b\n").unwrap();
    assert_eq!(
        copied_files(&store, ctx.path()),
        [".dockerignore", "Dockerfile", "drop/c", "keep/sub/b"]
    );

    std::fs::write(ctx.path().join(".dockerignore"), "drop\n!drop/c\n").unwrap();
    assert_eq!(
        copied_files(&store, ctx.path()),
        [
            ".dockerignore",
            "Dockerfile",
            "drop/c",
            "keep/a",
            "keep/sub/b"
        ]
    );

    std::fs::remove_file(ctx.path().join(".dockerignore")).unwrap();
    assert_eq!(copied_files(&store, ctx.path()), all);
}
