//! Every case of `tests/cases/semantics` run as a real build with the
//! `strata` binary. Each test names its case id, and the case's
//! `expected.md` describes BuildKit's result. A case Strata does not match yet asserts
//! today's output under a `FIXME` that states BuildKit's behaviour.
//!
//! Error messages: Strata capitalises the first word of its errors, so
//! BuildKit's lowercase messages are matched without regard to case.

mod common;
mod semantics_support;

use common::*;
use semantics_support::*;

/// Asserts a failed build whose error contains `needle`, ignoring case.
fn assert_failure_ci(run: &CaseRun, needle: &str) {
    let text = stderr(&run.output);
    assert!(!run.succeeded(), "build succeeded but should fail\n{text}");
    assert!(
        text.to_lowercase().contains(&needle.to_lowercase()),
        "error output lacks `{needle}`:\n{text}"
    );
}

fn env_list(run: &CaseRun) -> Vec<String> {
    run.config()["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[test]
fn sem_001_global_arg_in_from() {
    let run = run_case("SEM-001", &["--build-arg", "tag=latest"]);
    run.assert_success();
    let run = run_case("SEM-001", &[]);
    run.assert_failure("busybox:nosuchtag");
}

#[test]
fn sem_002_multi_args_and_redeclaration() {
    let run = run_case("SEM-002", &[]);
    run.assert_success();
    run.assert_file("out", "foo bar:box-foo:123 456");
}

#[test]
fn sem_003_stage_default_uses_inherited_arg() {
    let run = run_case("SEM-003", &[]);
    run.assert_success();
    run.assert_file("out", "bar-box-foo");
}

#[test]
fn sem_004_required_global_arg() {
    let run = run_case("SEM-004", &[]);
    run.assert_failure("FOO: custom error");
    run_case("SEM-004", &["--build-arg", "FOO=bar"]).assert_success();
}

#[test]
fn sem_006_arg_scope_starts_at_declaration() {
    let run = run_case("SEM-006", &["--build-arg", "username=what_user"]);
    run.assert_success();
    assert_eq!(run.config()["User"], "what_user");
    // Without the second USER, the first gives `some_user`: the fallback of
    // a variable not declared yet.
    let variant = case_dockerfile("SEM-006").replace("USER $username\n", "");
    let first = run_variant("SEM-006", &variant, &["--build-arg", "username=what_user"]);
    assert_eq!(first.config()["User"], "some_user");
}

#[test]
fn sem_007_env_overrides_arg() {
    let run = run_case("SEM-007", &["--build-arg", "CONT_IMG_VER=v2.0.1"]);
    run.assert_success();
    run.assert_file("out", "v1.0.0\n");
    assert_eq!(run.env()["CONT_IMG_VER"], "v1.0.0");
}

#[test]
fn sem_008_env_defaults_from_arg() {
    let run = run_case("SEM-008", &[]);
    run.assert_success();
    run.assert_file("out", "v1.0.0\n");
    assert_eq!(run.env()["CONT_IMG_VER"], "v1.0.0");

    let run = run_case("SEM-008", &["--build-arg", "CONT_IMG_VER=v2.0.1"]);
    run.assert_success();
    run.assert_file("out", "v2.0.1\n");
    assert_eq!(run.env()["CONT_IMG_VER"], "v2.0.1");
    assert_eq!(
        env_list(&run)
            .iter()
            .filter(|e| e.starts_with("CONT_IMG_VER="))
            .count(),
        1,
        "the ARG itself is never stored in the config"
    );
}

#[test]
fn sem_009_empty_arg_in_run_env() {
    let run = run_case("SEM-009", &[]);
    run.assert_success();
    let env = run.file("env.txt");
    assert!(env.lines().any(|l| l == "BAR="), "{env}");
    assert!(!env.contains("FOO="), "{env}");
}

#[test]
fn sem_012_platform_args_explicit() {
    let run = run_case(
        "SEM-012",
        &[
            "--platform",
            "darwin/ppc64le",
            "--build-arg",
            "TARGETOS=freebsd",
        ],
    );
    run.assert_success();
    run.assert_file("platform", "darwin/ppc64le");
    run.assert_file("os", "freebsd");
}

#[test]
fn sem_014_platform_args_need_declaration() {
    let run = run_case("SEM-014", &["--platform", "linux/amd64"]);
    run.assert_success();
    run.assert_file("before", "[]\n");
    run.assert_file("after", "[linux/amd64]\n");
}

#[test]
fn sem_015_env_substitution_uses_prior_values() {
    let run = run_case("SEM-015", &[]);
    run.assert_success();
    let env = run.env();
    assert_eq!(env["abc"], "bye");
    assert_eq!(env["def"], "hello");
    assert_eq!(env["ghi"], "bye");
}

#[test]
fn sem_016_legacy_env_form() {
    let run = run_case("SEM-016", &[]);
    run.assert_success();
    assert_eq!(env_list(&run), [DEFAULT_PATH, "ONE=TWO= THREE=world"]);
}

#[test]
fn sem_017_env_quoting() {
    let run = run_case("SEM-017", &[]);
    run.assert_success();
    let env = run.env();
    assert_eq!(env["MY_NAME"], "John Doe");
    assert_eq!(env["MY_DOG"], "Rex The Dog");
    assert_eq!(env["MY_CAT"], "fluffy");
}

#[test]
fn sem_018_quotes_control_expansion() {
    let run = run_case("SEM-018", &[]);
    run.assert_success();
    let env = run.env();
    for key in ["bar", "env1", "env2", "env3", "env4"] {
        assert_eq!(env[key], "zzz", "{key}");
    }
    for key in ["abc1", "abc2", "abc3", "abc4"] {
        assert_eq!(env[key], "$foo", "{key}");
    }
}

#[test]
fn sem_019_escaped_dollar_in_volume() {
    let base = case_dockerfile("SEM-019");
    let variants = [
        ("VOLUME ${FOO}", "bar"),
        ("VOLUME \\${FOO}", "${FOO}"),
        ("VOLUME \\\\\\\\\\\\\\${FOO}", "\\\\\\${FOO}"),
    ];
    let store = TestStore::new();
    let ctx = case_context("SEM-019");
    for (line, key) in variants {
        let dockerfile = base.replace("VOLUME ${FOO}", line);
        let run = build_in(&store, ctx.path(), &dockerfile, &[]);
        run.assert_success();
        let volumes = run.config()["Volumes"].as_object().unwrap();
        assert_eq!(volumes.keys().collect::<Vec<_>>(), [key], "{line}");
    }
}

#[test]
fn sem_020_pattern_expansion() {
    let variants: [(&[&str], &str); 3] = [
        (&[], "my_arg=def_val my_arg=def_val my_arg=d"),
        (
            &["--build-arg", "my_arg="],
            "my_arg=def_val my_arg=def_val my_arg=d",
        ),
        (
            &["--build-arg", "my_arg=override"],
            "my_arg=override my_arg=override my_arg=ov",
        ),
    ];
    let store = TestStore::new();
    let ctx = case_context("SEM-020");
    set_mode(&ctx.path().join("myscript.sh"), 0o700);
    for (args, expected) in variants {
        let run = build_in(&store, ctx.path(), &case_dockerfile("SEM-020"), args);
        run.assert_success();
        assert_eq!(run.file("out"), expected, "{args:?}");
    }
}

#[test]
fn sem_022_variables_in_copy_paths() {
    let run = run_case("SEM-022", &[]);
    run.assert_success();
    run.assert_file("foo", "test1");
    run.assert_file("bar", "test2");
    run.assert_file("fff", "test3");
    run.assert_file("ggg", "test4");
}

#[test]
fn sem_024_copy_from_rejects_variables() {
    let run = run_case("SEM-024", &[]);
    assert_failure_ci(
        &run,
        "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
    );
}

#[test]
fn sem_025_escape_directive() {
    let run = run_case("SEM-025", &[]);
    run.assert_success();
    assert_eq!(run.env()["A"], "x\\y");
    assert_eq!(run.env()["B"], "xy");
    run.assert_file("out", "hello world\n");

    let control = case_dockerfile("SEM-025")
        .replace("# escape=`\n", "")
        .replace("hello `\n", "hello \\\n");
    let run = run_variant("SEM-025", &control, &[]);
    run.assert_success();
    assert_eq!(run.env()["A"], "xy");
    assert_eq!(run.env()["B"], "x`y");
}

#[test]
fn sem_027_comments_inside_continuation() {
    let run = run_case("SEM-027", &[]);
    run.assert_success();
    run.assert_file("out", "hello world\n");
    run.assert_file("out2", "we are running some # of cool things\n");
}

#[test]
fn sem_030_entrypoint_resets_inherited_cmd() {
    let (first, second) = split_builds(&case_dockerfile("SEM-030"), "# build 2");
    let store = TestStore::new();
    let ctx = case_context("SEM-030");
    build_in(&store, ctx.path(), &first, &["-t", "base"]).assert_success();
    let run = build_in(&store, ctx.path(), &second, &[]);
    run.assert_success();
    assert!(run.config()["Cmd"].is_null(), "{}", run.config());
    assert_eq!(
        run.config()["Entrypoint"],
        serde_json::json!(["ls", "my entrypoint"])
    );
}

#[test]
fn sem_031_default_shell_and_path() {
    let run = run_case("SEM-031", &["--platform", "linux/amd64"]);
    run.assert_success();
    assert_eq!(
        run.config()["Entrypoint"],
        serde_json::json!(["/bin/sh", "-c", "foo bar"])
    );
    assert_eq!(env_list(&run), [DEFAULT_PATH]);
    assert_eq!(run.image["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
}

#[test]
fn sem_032_invalid_json_is_shell_form() {
    let run = run_case("SEM-032", &[]);
    run.assert_success();
    assert_eq!(
        run.config()["Entrypoint"],
        serde_json::json!(["/bin/sh", "-c", "[]random string"])
    );
    let variant = "FROM busybox\nRUN [\"echo\", \"hello\"]this is invalid\n";
    let run = run_variant("SEM-032", variant, &[]);
    run.assert_failure("this is invalid");
}

#[test]
fn sem_034_entrypoint_does_not_affect_run() {
    run_case("SEM-034", &[]).assert_success();
}

#[test]
fn sem_035_exec_entrypoint_with_shell_cmd() {
    let run = run_case("SEM-035", &[]);
    run.assert_success();
    assert_eq!(run.config()["Entrypoint"], serde_json::json!(["/bin/echo"]));
    assert_eq!(
        run.config()["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "echo test"])
    );
}

#[test]
fn sem_036_failing_run_names_command() {
    let run = run_case("SEM-036", &[]);
    run.assert_failure("/bin/sh -c invalidcmd");
    run.assert_failure("did not complete successfully");
}

#[test]
fn sem_037_unknown_instruction_suggestion() {
    let run = run_case("SEM-037", &[]);
    assert_failure_ci(&run, "unknown instruction: FNTRYPOINT");
    run.assert_failure("did you mean ENTRYPOINT?");
}

#[test]
fn sem_080_workdir_creates_directory() {
    let run = run_case("SEM-080", &[]);
    run.assert_success();
    assert!(run.path("foo").is_dir(), "{:?}", run.listing());
    assert_eq!(run.config()["WorkingDir"], "/");
}

#[test]
fn sem_083_copy_from_ignores_stage_workdir() {
    let run = run_case("SEM-083", &[]);
    run.assert_success();
    assert!(run.exists("Dockerfile"), "{:?}", run.listing());
}

/// The test image's user database is Debian's busybox one, without the
/// `daemon` user and `wheel` group the case expects from Alpine's, so the
/// variant adds them before the case's checks.
#[test]
fn sem_084_user_identities() {
    let setup = "FROM busybox\n\
        RUN echo 'daemon:x:1:1:daemon:/:/bin/false' >> /etc/passwd \
        && echo 'wheel:x:10:root' >> /etc/group \
        && echo 'daemon:x:1:' >> /etc/group\n";
    let variant = case_dockerfile("SEM-084").replacen("FROM busybox\n", setup, 1);
    let run = run_variant("SEM-084", &format!("{variant}USER nobody\n"), &[]);
    run.assert_success();
    assert_eq!(run.config()["User"], "nobody");
}

#[test]
fn sem_086_copy_from_index_and_target_case() {
    let store = TestStore::new();
    let ctx = context(&[("f1", "1"), ("f2", "2")]);
    let dockerfile = case_dockerfile("SEM-086");
    build_in(&store, ctx.path(), &dockerfile, &[]).assert_success();
    build_in(&store, ctx.path(), &dockerfile, &["--target", "Foo"]).assert_success();
    let run = build_in(&store, ctx.path(), &dockerfile, &["--target", "nosuch"]);
    run.assert_failure("nosuch");
}

#[test]
fn sem_088_out_of_order_and_circular_stages() {
    let run = run_case("SEM-088", &[]);
    assert_failure_ci(&run, "cannot copy from stage");
    run.assert_failure("needs to be defined before current stage");

    let circular = "FROM busybox AS stage0\nCOPY --from=stage0 f1 /sub/\n";
    let run = run_variant("SEM-088", circular, &[]);
    assert_failure_ci(&run, "circular dependency detected on stage: stage0");

    let cycle = "FROM busybox AS stage0\nCOPY --from=stage2 f1 /sub/\n\
        FROM busybox AS stage1\nCOPY --from=stage0 f2 /sub/\n\
        FROM busybox AS stage2\nCOPY --from=stage1 f2 /sub/\n";
    let run = run_variant("SEM-088", cycle, &[]);
    assert_failure_ci(&run, "circular dependency detected on stage: stage0");
}

#[test]
fn sem_090_no_stages() {
    let run = run_case("SEM-090", &[]);
    assert_failure_ci(&run, "dockerfile contains no stages to build");
}

#[test]
fn sem_095_labels() {
    let run = run_case("SEM-095", &[]);
    run.assert_success();
    assert_eq!(
        run.config()["Labels"],
        serde_json::json!({
            "com.example.vendor": "ACME Incorporated",
            "com.example.label-with-value": "foo",
            "version": "1.0",
            "description": "This text illustrates that label-values can span multiple lines.",
            "multi.label1": "value1",
            "multi.label2": "value2",
            "other": "value3",
        })
    );
}

#[test]
fn sem_098_healthcheck() {
    let run = run_case("SEM-098", &[]);
    run.assert_success();
    let health = &run.config()["Healthcheck"];
    assert_eq!(
        health["Test"],
        serde_json::json!(["CMD-SHELL", "curl -f http://localhost/ || exit 1"])
    );
    assert_eq!(health["Interval"], 300_000_000_000u64);
    assert_eq!(health["Timeout"], 3_000_000_000u64);

    let errors = [
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        (
            "HEALTHCHECK CONNECT TCP 7000",
            "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)",
        ),
        (
            "HEALTHCHECK --retries=-1 CMD true",
            "--retries cannot be negative (-1)",
        ),
    ];
    let store = TestStore::new();
    let ctx = context(&[]);
    for (line, message) in errors {
        let run = build_in(&store, ctx.path(), &format!("FROM scratch\n{line}\n"), &[]);
        assert_failure_ci(&run, message);
    }
}

#[test]
fn sem_099_stopsignal_volume_maintainer() {
    let run = run_case("SEM-099", &[]);
    run.assert_success();
    assert_eq!(run.config()["StopSignal"], "SIGKILL");
    let volumes: Vec<&String> = run.config()["Volumes"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(volumes, ["/a", "/b", "/data", "/quux", "/var/log"]);
    assert_eq!(run.image["author"], "someone@example.com");
}

/// Names of the vertices that ran (not cached) in a build with rawjson
/// progress.
fn steps_run(
    store: &TestStore,
    ctx: &std::path::Path,
    dockerfile: &str,
    extra: &[&str],
) -> Vec<String> {
    let file = ctx.join("Dockerfile.case");
    std::fs::write(&file, dockerfile).unwrap();
    let mut args = vec!["-f", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (output, events) = store.build_events(ctx, &args);
    assert_success(&output);
    vertex_names_with(&events, "vertex_completed")
}

#[test]
fn sem_101_build_arg_change_invalidates_run() {
    let store = TestStore::new();
    let ctx = context(&[]);
    let dockerfile = case_dockerfile("SEM-101");
    let ran = |value: &str| {
        let arg = format!("CONT_IMG_VER={value}");
        steps_run(&store, ctx.path(), &dockerfile, &["--build-arg", &arg])
            .iter()
            .any(|name| name.contains("RUN echo hello"))
    };
    assert!(ran("1"), "first build runs the RUN");
    assert!(ran("2"), "a changed build-arg re-runs the RUN");
    assert!(!ran("1"), "the first value hits the first build's cache");
}
