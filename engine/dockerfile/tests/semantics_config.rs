//! Semantics cases whose result shows in the image config or the LLB,
//! from `tests/cases/semantics` (each test names its case id).

mod common;

use common::*;
use strata_llb::Op;

fn exec_args(dockerfile: &str, options: &convert_options::Options) -> Vec<Vec<String>> {
    let conversion = convert_with(dockerfile, options, &FixedResolver::default()).unwrap();
    execs(&conversion)
        .into_iter()
        .map(|(args, _)| args)
        .collect()
}

mod convert_options {
    pub type Options = strata_dockerfile::convert::ConvertOptions;
}

#[test]
fn sem_001_global_arg_in_from() {
    let resolver = FixedResolver::default();
    convert_with(
        &case_dockerfile("SEM-001"),
        &options_with_args(&[("tag", "latest")]),
        &resolver,
    )
    .unwrap();
    assert_eq!(*resolver.requests.lock().unwrap(), ["busybox:latest"]);
    let error = convert_text(&case_dockerfile("SEM-001")).unwrap_err();
    assert!(error.message.contains("nosuchtag"), "{error}");
}

#[test]
fn sem_002_multi_args_and_redeclaration() {
    let resolver = FixedResolver::default();
    let conversion = convert_with(&case_dockerfile("SEM-002"), &options(), &resolver).unwrap();
    assert_eq!(*resolver.requests.lock().unwrap(), ["busybox"]);
    let (_, env) = &execs(&conversion)[0];
    assert!(env.contains(&"a1=foo bar".to_string()), "{env:?}");
    assert!(env.contains(&"a3=box-foo".to_string()), "{env:?}");
    assert!(env.contains(&"a4=123 456".to_string()), "{env:?}");
}

#[test]
fn sem_003_stage_default_uses_inherited_arg() {
    let conversion = convert_text(&case_dockerfile("SEM-003")).unwrap();
    let (_, env) = &execs(&conversion)[0];
    assert!(env.contains(&"a3=bar-box-foo".to_string()), "{env:?}");
}

#[test]
fn sem_004_required_global_arg() {
    let error = convert_text(&case_dockerfile("SEM-004")).unwrap_err();
    assert!(error.message.contains("FOO: custom error"), "{error}");
    assert_eq!(error.lines.map(|l| l.0), Some(1));
    let resolver = FixedResolver::default();
    assert!(
        convert_with(
            &case_dockerfile("SEM-004"),
            &options_with_args(&[("FOO", "bar")]),
            &resolver
        )
        .is_ok()
    );
}

#[test]
fn sem_006_arg_scope_starts_at_declaration() {
    let conversion = convert_with(
        &case_dockerfile("SEM-006"),
        &options_with_args(&[("username", "what_user")]),
        &FixedResolver::default(),
    )
    .unwrap();
    assert_eq!(
        conversion.image_config.config.user.as_deref(),
        Some("what_user")
    );
    let history: Vec<_> = conversion
        .image_config
        .history
        .iter()
        .filter_map(|h| h.created_by.clone())
        .collect();
    assert!(
        history.contains(&"USER some_user".to_string()),
        "{history:?}"
    );
}

#[test]
fn sem_007_env_overrides_arg() {
    let conversion = convert_with(
        &case_dockerfile("SEM-007"),
        &options_with_args(&[("CONT_IMG_VER", "v2.0.1")]),
        &FixedResolver::default(),
    )
    .unwrap();
    assert_eq!(env_map(&conversion)["CONT_IMG_VER"], "v1.0.0");
    let (_, env) = &execs(&conversion)[0];
    assert!(env.contains(&"CONT_IMG_VER=v1.0.0".to_string()));
    assert!(!env.contains(&"CONT_IMG_VER=v2.0.1".to_string()));
}

#[test]
fn sem_008_env_default_from_arg() {
    let conversion = convert_text(&case_dockerfile("SEM-008")).unwrap();
    assert_eq!(env_map(&conversion)["CONT_IMG_VER"], "v1.0.0");
    let conversion = convert_with(
        &case_dockerfile("SEM-008"),
        &options_with_args(&[("CONT_IMG_VER", "v2.0.1")]),
        &FixedResolver::default(),
    )
    .unwrap();
    assert_eq!(env_map(&conversion)["CONT_IMG_VER"], "v2.0.1");
    assert_eq!(
        env_map(&conversion).len(),
        2,
        "only PATH and the ENV are stored"
    );
}

#[test]
fn sem_009_valueless_arg_not_in_run_env() {
    let conversion = convert_with(
        &case_dockerfile("SEM-009"),
        &options(),
        &FixedResolver::default(),
    )
    .unwrap();
    let (_, env) = &execs(&conversion)[0];
    assert!(env.contains(&"BAR=".to_string()), "{env:?}");
    assert!(!env.iter().any(|e| e.starts_with("FOO=")), "{env:?}");
}

#[test]
fn sem_012_platform_args() {
    let mut options = options_with_args(&[("TARGETOS", "freebsd")]);
    options.platform = strata_llb::Platform::parse("darwin/ppc64le").unwrap();
    let conversion = convert_with(
        &case_dockerfile("SEM-012"),
        &options,
        &FixedResolver::default(),
    )
    .unwrap();
    let (_, env) = &execs(&conversion)[0];
    assert!(
        env.contains(&"TARGETPLATFORM=darwin/ppc64le".to_string()),
        "{env:?}"
    );
    assert!(env.contains(&"TARGETOS=freebsd".to_string()), "{env:?}");
    let exec = conversion
        .definition
        .vertices
        .values()
        .find(|v| matches!(v.op, Op::Exec(_)))
        .unwrap();
    assert_eq!(
        exec.platform,
        Some(strata_llb::Platform::host()),
        "the build stage runs on the build platform"
    );
}

#[test]
fn sem_014_platform_args_need_redeclaration() {
    let conversion = convert_text(&case_dockerfile("SEM-014")).unwrap();
    let envs: Vec<_> = execs(&conversion).into_iter().map(|(_, env)| env).collect();
    let with = envs
        .iter()
        .filter(|env| env.contains(&"TARGETPLATFORM=linux/amd64".to_string()))
        .count();
    assert_eq!(envs.len(), 2);
    assert_eq!(
        with, 1,
        "only the RUN after `ARG TARGETPLATFORM` sees it: {envs:?}"
    );
}

#[test]
fn sem_015_env_uses_previous_values() {
    let env = env_map(&convert_text(&case_dockerfile("SEM-015")).unwrap());
    assert_eq!(env["abc"], "bye");
    assert_eq!(env["def"], "hello");
    assert_eq!(env["ghi"], "bye");
}

#[test]
fn sem_016_legacy_env_form() {
    let env = env_map(&convert_text(&case_dockerfile("SEM-016")).unwrap());
    assert_eq!(env["ONE"], "TWO= THREE=world");
    assert!(!env.contains_key("TWO"));
    assert!(!env.contains_key("THREE"));
}

#[test]
fn sem_017_env_quoting() {
    let env = env_map(&convert_text(&case_dockerfile("SEM-017")).unwrap());
    assert_eq!(env["MY_NAME"], "John Doe");
    assert_eq!(env["MY_DOG"], "Rex The Dog");
    assert_eq!(env["MY_CAT"], "fluffy");
}

#[test]
fn sem_018_quotes_control_expansion() {
    let env = env_map(&convert_text(&case_dockerfile("SEM-018")).unwrap());
    for key in ["bar", "env1", "env2", "env3", "env4"] {
        assert_eq!(env[key], "zzz", "{key}");
    }
    for key in ["abc1", "abc2", "abc3", "abc4"] {
        assert_eq!(env[key], "$foo", "{key}");
    }
}

#[test]
fn sem_019_escaped_dollar_in_volume() {
    let volumes = |line: &str| {
        let text = format!("FROM scratch\nENV FOO bar\nVOLUME {line}\n");
        let conversion = convert_text(&text).unwrap();
        conversion
            .image_config
            .config
            .volumes
            .unwrap()
            .into_keys()
            .collect::<Vec<_>>()
    };
    assert_eq!(volumes("${FOO}"), ["bar"]);
    assert_eq!(volumes("\\${FOO}"), ["${FOO}"]);
    assert_eq!(volumes("\\\\\\\\\\\\\\${FOO}"), ["\\\\\\${FOO}"]);
}

#[test]
fn sem_024_copy_from_variable_rejected() {
    let error = convert_text(&case_dockerfile("SEM-024")).unwrap_err();
    assert!(
        error.message.contains("ariable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround"),
        "{error}"
    );
}

#[test]
fn sem_025_escape_directive() {
    let env = env_map(&convert_text(&case_dockerfile("SEM-025")).unwrap());
    assert_eq!(env["A"], "x\\y");
    assert_eq!(env["B"], "xy");
    let control = env_map(&convert_text("FROM busybox\nENV A=x\\y B=x`y\n").unwrap());
    assert_eq!(control["A"], "xy");
    assert_eq!(control["B"], "x`y");
}

#[test]
fn sem_030_entrypoint_resets_inherited_cmd() {
    let mut resolver = FixedResolver::default();
    let mut base = busybox_config();
    base.config.cmd = Some(vec!["test".into()]);
    resolver.images.insert("base".into(), base);
    let text = "FROM base\nSHELL [\"ls\"]\nENTRYPOINT my entrypoint\n";
    let conversion = convert_with(text, &options(), &resolver).unwrap();
    assert_eq!(conversion.image_config.config.cmd, None);
    assert_eq!(
        conversion.image_config.config.entrypoint,
        Some(vec!["ls".into(), "my entrypoint".into()])
    );
}

#[test]
fn sem_031_default_shell_and_path_on_scratch() {
    let conversion = convert_text(&case_dockerfile("SEM-031")).unwrap();
    let config = &conversion.image_config.config;
    assert_eq!(
        config.entrypoint,
        Some(vec!["/bin/sh".into(), "-c".into(), "foo bar".into()])
    );
    assert_eq!(
        config.env,
        Some(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        ])
    );
    let layers = conversion
        .image_config
        .history
        .iter()
        .filter(|h| !h.empty_layer)
        .count();
    assert_eq!(layers, 1);
}

#[test]
fn sem_032_invalid_json_is_shell_form() {
    let conversion = convert_text(&case_dockerfile("SEM-032")).unwrap();
    assert_eq!(
        conversion.image_config.config.entrypoint,
        Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            "[]random string".into()
        ])
    );
    let args = exec_args(
        "FROM busybox\nRUN [\"echo\", \"hello\"]this is invalid\n",
        &options(),
    );
    assert_eq!(args[0][..2], ["/bin/sh", "-c"]);
    assert!(args[0][2].contains("this is invalid"));
}

#[test]
fn sem_034_entrypoint_does_not_affect_run() {
    let args = exec_args(
        "FROM busybox\nENTRYPOINT [\"/nosuchcmd\"]\nRUN [\"ls\"]\n",
        &options(),
    );
    assert_eq!(args, [vec!["ls".to_string()]]);
}

#[test]
fn sem_035_exec_entrypoint_shell_cmd() {
    let conversion = convert_text(&case_dockerfile("SEM-035")).unwrap();
    let config = &conversion.image_config.config;
    assert_eq!(config.entrypoint, Some(vec!["/bin/echo".into()]));
    assert_eq!(
        config.cmd,
        Some(vec!["/bin/sh".into(), "-c".into(), "echo test".into()])
    );
}

#[test]
fn sem_037_unknown_instruction_suggestion() {
    let error = convert_text(&case_dockerfile("SEM-037")).unwrap_err();
    assert!(
        error
            .message
            .to_lowercase()
            .contains("unknown instruction: fntrypoint"),
        "{error}"
    );
    assert!(
        error.message.contains("did you mean ENTRYPOINT?"),
        "{error}"
    );
    assert_eq!(
        error.to_string().split(':').take(2).collect::<Vec<_>>(),
        ["Dockerfile", "2"]
    );
}

#[test]
fn sem_065_copy_rejects_url() {
    let error = convert_text(&case_dockerfile("SEM-065")).unwrap_err();
    assert_eq!(error.message, "source can't be a URL for COPY");
    let add = case_dockerfile("SEM-065").replace("COPY", "ADD");
    assert!(convert_text(&add).is_ok());
}

#[test]
fn sem_080_workdir_creates_directory() {
    let conversion = convert_text(&case_dockerfile("SEM-080")).unwrap();
    assert_eq!(
        conversion.image_config.config.working_dir.as_deref(),
        Some("/")
    );
    let mkdirs: Vec<_> = conversion
        .definition
        .vertices
        .values()
        .filter_map(|v| match &v.op {
            Op::File(file) => Some(file.actions.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(mkdirs.len(), 1);
    assert!(
        matches!(&mkdirs[0], strata_llb::FileAction::Mkdir { path, make_parents: true, .. } if path == "/foo")
    );
}

#[test]
fn sem_083_copy_from_stage_reads_root() {
    let conversion = convert_text(&case_dockerfile("SEM-083")).unwrap();
    let copies: Vec<_> = conversion
        .definition
        .vertices
        .values()
        .filter_map(|v| match &v.op {
            Op::File(file) => Some(file.actions.clone()),
            _ => None,
        })
        .flatten()
        .filter_map(|a| match a {
            strata_llb::FileAction::Copy(copy) => Some((copy.src, copy.dest)),
            _ => None,
        })
        .collect();
    assert!(
        copies.contains(&("/Dockerfile".into(), "/".into())),
        "{copies:?}"
    );
}

#[test]
fn sem_086_copy_from_index_and_target_case() {
    assert!(convert_text(&case_dockerfile("SEM-086")).is_ok());
    let mut options = options();
    options.target = Some("Foo".into());
    assert!(
        convert_with(
            &case_dockerfile("SEM-086"),
            &options,
            &FixedResolver::default()
        )
        .is_ok()
    );
    options.target = Some("nosuch".into());
    let error = convert_with(
        &case_dockerfile("SEM-086"),
        &options,
        &FixedResolver::default(),
    )
    .unwrap_err();
    assert!(error.message.contains("`nosuch`"), "{error}");
    assert!(error.message.contains("`foo`"), "{error}");
}

#[test]
fn sem_088_out_of_order_and_circular_stages() {
    let error = convert_text(&case_dockerfile("SEM-088")).unwrap_err();
    assert!(error.message.contains("annot copy from stage"), "{error}");
    assert!(
        error
            .message
            .contains("needs to be defined before current stage"),
        "{error}"
    );
    let error = convert_text("FROM busybox AS stage0\nCOPY --from=stage0 f1 /sub/\n").unwrap_err();
    assert!(
        error
            .message
            .contains("ircular dependency detected on stage: stage0"),
        "{error}"
    );
    let cycle = "FROM busybox AS stage0\nCOPY --from=stage2 f1 /sub/\nFROM busybox AS stage1\nCOPY --from=stage0 f2 /sub/\nFROM busybox AS stage2\nCOPY --from=stage1 f2 /sub/\n";
    let error = convert_text(cycle).unwrap_err();
    assert!(
        error
            .message
            .contains("ircular dependency detected on stage: stage0"),
        "{error}"
    );
}

#[test]
fn sem_090_only_args_has_no_stages() {
    let error = convert_text(&case_dockerfile("SEM-090")).unwrap_err();
    assert!(
        error
            .message
            .to_lowercase()
            .contains("dockerfile contains no stages to build"),
        "{error}"
    );
}

#[test]
fn sem_095_labels() {
    let conversion = convert_text(&case_dockerfile("SEM-095")).unwrap();
    let labels = conversion.image_config.config.labels.unwrap();
    let expected = [
        ("com.example.vendor", "ACME Incorporated"),
        ("com.example.label-with-value", "foo"),
        ("version", "1.0"),
        (
            "description",
            "This text illustrates that label-values can span multiple lines.",
        ),
        ("multi.label1", "value1"),
        ("multi.label2", "value2"),
        ("other", "value3"),
    ];
    assert_eq!(labels.len(), expected.len());
    for (key, value) in expected {
        assert_eq!(labels[key], value, "{key}");
    }
}

#[test]
fn sem_098_healthcheck() {
    let conversion = convert_text(&case_dockerfile("SEM-098")).unwrap();
    let health = conversion.image_config.config.healthcheck.unwrap();
    assert_eq!(
        health.test,
        Some(vec![
            "CMD-SHELL".into(),
            "curl -f http://localhost/ || exit 1".into()
        ])
    );
    assert_eq!(health.interval, Some(300_000_000_000));
    assert_eq!(health.timeout, Some(3_000_000_000));
    assert_eq!(health.start_period, None);
    assert_eq!(health.retries, None);
    let last =
        convert_text("FROM scratch\nHEALTHCHECK --timeout=3s CMD [\"foo\"]\nHEALTHCHECK NONE\n")
            .unwrap();
    assert_eq!(
        last.image_config.config.healthcheck.unwrap().test,
        Some(vec!["NONE".into()])
    );
}

#[test]
fn sem_099_stopsignal_volume_maintainer() {
    let conversion = convert_text(&case_dockerfile("SEM-099")).unwrap();
    let config = &conversion.image_config;
    assert_eq!(config.config.stop_signal.as_deref(), Some("SIGKILL"));
    let volumes: Vec<_> = config.config.volumes.clone().unwrap().into_keys().collect();
    assert_eq!(volumes, ["/a", "/b", "/data", "/quux", "/var/log"]);
    assert_eq!(config.author.as_deref(), Some("someone@example.com"));
    assert!(convert_text("FROM scratch\nSTOPSIGNAL 9\n").is_ok());
    assert!(convert_text("FROM scratch\nSTOPSIGNAL SIGNOPE\n").is_err());
}
