//! The commands that do not build: `debug parse`, `dump-llb`, `image`.

mod common;

use common::*;

#[test]
fn debug_parse_prints_dump() {
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox AS b\nRUN echo hi\nCOPY --from=b a /b\n",
    )]);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "debug",
            "parse",
            ctx.path().join("Dockerfile").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "(from \"busybox\" \"AS\" \"b\")\n(run \"echo hi\")\n(copy [\"--from=b\"] \"a\" \"/b\")\n"
    );
}

#[test]
fn debug_parse_reports_error_line() {
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN [\"a\", 1]\n")]);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "debug",
            "parse",
            ctx.path().join("Dockerfile").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains('2'), "{}", stderr(&output));
}

#[test]
fn dump_llb_formats() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN echo hi\n")]);
    let json = store.strata(&["dump-llb", "--format", "json", ctx.path().to_str().unwrap()]);
    assert_success(&json);
    let definition: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(definition["vertices"].as_object().unwrap().len(), 2);
    let dot = store.strata(&["dump-llb", "--format", "dot", ctx.path().to_str().unwrap()]);
    assert_success(&dot);
    assert!(String::from_utf8_lossy(&dot.stdout).starts_with("digraph"));
}

#[test]
fn image_import_rejects_bad_change() {
    let store = TestStore::new();
    let rootfs = busybox_rootfs();
    let output = store.strata(&[
        "image",
        "import",
        rootfs.to_str().unwrap(),
        "--tag",
        "x",
        "--change",
        "RUN true",
    ]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("RUN"), "{}", stderr(&output));
}

#[test]
fn image_import_missing_file() {
    let store = TestStore::new();
    let output = store.strata(&["image", "import", "/nonexistent.tar", "--tag", "x"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("/nonexistent.tar"),
        "{}",
        stderr(&output)
    );
}
