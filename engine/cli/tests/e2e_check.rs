//! `strata build --check`, `--call targets|outline` and how conversion
//! errors and check warnings reach the user, with the real binary.

mod common;

use common::*;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn check_without_warnings_exits_zero() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM busybox AS build\nCMD [\"true\"]\n")]);
    let output = store.build(ctx.path(), &["--check"]);
    assert_success(&output);
    assert!(stdout(&output).contains("Check complete, no warnings found."));
}

#[test]
fn check_with_warnings_exits_nonzero() {
    let store = TestStore::new();
    let dockerfile = "FROM busybox as Build\nMAINTAINER me\n";
    let ctx = context(&[("Dockerfile", dockerfile)]);
    let output = store.build(ctx.path(), &["--check"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("Check complete, 3 warnings have been found!"),
        "{text}"
    );
    assert!(text.contains(
        "WARNING: StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/"
    ));
    assert!(text.contains(" 2 | >>> MAINTAINER me"), "{text}");
}

#[test]
fn check_build_arg_skips_rules() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM busybox as Build\n")]);
    let skip = "BUILDKIT_DOCKERFILE_CHECK=skip=StageNameCasing,FromAsCasing";
    let output = store.build(ctx.path(), &["--check", "--build-arg", skip]);
    assert_success(&output);
}

#[test]
fn check_reports_conversion_errors() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM busybox\nCOPY --form=x a b\n")]);
    let output = store.build(ctx.path(), &["--check"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("Dockerfile:2:6: Unknown flag: `--form`; did you mean `--from`?"),
        "{text}"
    );
    assert!(text.contains("COPY --form=x a b"), "{text}");
}

#[test]
fn build_shows_check_warnings() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM busybox as build\nRUN true\n")]);
    let output = store.build(ctx.path(), &[]);
    assert_success(&output);
    let text = stderr(&output);
    assert!(
        text.contains("FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)"),
        "{text}"
    );
}

#[test]
fn check_error_directive_fails_build() {
    let store = TestStore::new();
    let dockerfile = "# check=error=true\nFROM busybox as build\nRUN true\n";
    let ctx = context(&[("Dockerfile", dockerfile)]);
    let output = store.build(ctx.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("Lint violation found for rules: FromAsCasing"),
        "{text}"
    );
}

#[test]
fn build_error_points_at_target_typo() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM busybox AS build\nRUN true\n")]);
    let output = store.build(ctx.path(), &["--target", "biuld"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("Target stage `biuld` could not be found"),
        "{text}"
    );
    assert!(text.contains("Did you mean `--target build`?"), "{text}");
}

const CALL_DOCKERFILE: &str = "# Version of busybox
ARG VERSION=latest

# build compiles the program
FROM busybox:${VERSION} AS build
RUN --mount=type=secret,id=token true

# The image to ship
FROM busybox AS release
COPY --from=build /bin/sh /sh
";

#[test]
fn call_targets_lists_stages() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", CALL_DOCKERFILE)]);
    let output = store.build(ctx.path(), &["--call", "targets"]);
    assert_success(&output);
    insta::assert_snapshot!(stdout(&output), @r"
    TARGET             DESCRIPTION
    build              compiles the program
    release (default)  The image to ship
    ");

    let output = store.build(ctx.path(), &["--call", "targets", "--format", "json"]);
    assert_success(&output);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["targets"][0]["name"], "build");
    assert_eq!(json["targets"][1]["default"], true);
}

#[test]
fn call_outline_lists_args_and_secrets() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", CALL_DOCKERFILE)]);
    let output = store.build(ctx.path(), &["--call", "outline"]);
    assert_success(&output);
    insta::assert_snapshot!(stdout(&output), @r"
    TARGET:      release
    DESCRIPTION: The image to ship

    BUILD ARG  VALUE   DESCRIPTION
    VERSION    latest  Version of busybox

    SECRET  REQUIRED
    token   false
    ");

    let output = store.build(ctx.path(), &["--call", "outline", "--format", "json"]);
    assert_success(&output);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["args"][0]["name"], "VERSION");
    assert_eq!(json["secrets"][0]["name"], "token");
}

#[test]
fn call_outline_rejects_unknown_target() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", CALL_DOCKERFILE)]);
    let output = store.build(ctx.path(), &["--call", "outline", "--target", "biuld"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("did you mean `build`?"));
}
