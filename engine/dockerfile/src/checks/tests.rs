use super::*;
use crate::convert::ResolvedImage;
use async_trait::async_trait;
use strata_llb::Platform;
use strata_llb::image::ImageConfig;

/// Resolves every reference to a linux/amd64 image whose environment sets
/// `PATH`, except `arm-image`, which is linux/arm64.
struct StubResolver;

#[async_trait]
impl ImageResolver for StubResolver {
    async fn resolve(
        &self,
        reference: &str,
        _platform: &Platform,
    ) -> Result<ResolvedImage, String> {
        let mut config = ImageConfig {
            os: "linux".into(),
            architecture: if reference == "arm-image" {
                "arm64"
            } else {
                "amd64"
            }
            .into(),
            ..ImageConfig::default()
        };
        config.config.env = Some(vec!["PATH=/usr/bin:/bin".into()]);
        Ok(ResolvedImage {
            name: format!("docker.io/library/{reference}"),
            digest: strata_llb::Digest::of_bytes(reference.as_bytes()),
            config,
        })
    }
}

fn options() -> ConvertOptions {
    ConvertOptions {
        platform: Platform::parse("linux/amd64").unwrap(),
        ..ConvertOptions::default()
    }
}

async fn lint_with(text: &str, options: &ConvertOptions) -> Vec<(Rule, String, usize)> {
    let ast = crate::parser::parse(text).expect("test Dockerfile parses");
    let report = run(&ast, options, &StubResolver).await.expect("checks run");
    report
        .warnings
        .into_iter()
        .map(|w| (w.rule, w.message, w.lines.map_or(0, |(start, _)| start)))
        .collect()
}

async fn lint(text: &str) -> Vec<(Rule, String, usize)> {
    lint_with(text, &options()).await
}

/// Returns the warnings of `rule` only.
async fn lint_rule(rule: Rule, text: &str) -> Vec<(String, usize)> {
    lint(text)
        .await
        .into_iter()
        .filter(|(r, _, _)| *r == rule)
        .map(|(_, message, line)| (message, line))
        .collect()
}

fn one(message: &str, line: usize) -> Vec<(String, usize)> {
    vec![(message.to_string(), line)]
}

#[tokio::test]
async fn clean_file_has_no_warnings() {
    let text = "FROM busybox AS build\nWORKDIR /src\nARG VERSION=1\nENV V=$VERSION\nCOPY . .\n\nFROM build\nCMD [\"sh\"]\n";
    assert_eq!(lint(text).await, vec![]);
}

#[tokio::test]
async fn stage_name_casing() {
    let warnings = lint_rule(Rule::StageNameCasing, "FROM busybox AS Build\n").await;
    assert_eq!(warnings, one("Stage name 'Build' should be lowercase", 1));
    assert_eq!(
        lint_rule(Rule::StageNameCasing, "FROM busybox AS build\n").await,
        vec![]
    );
}

#[tokio::test]
async fn from_as_casing() {
    let warnings = lint_rule(Rule::FromAsCasing, "FROM busybox as build\n").await;
    assert_eq!(
        warnings,
        one("'as' and 'FROM' keywords' casing do not match", 1)
    );
    let warnings = lint_rule(Rule::FromAsCasing, "from busybox AS build\n").await;
    assert_eq!(
        warnings,
        one("'AS' and 'from' keywords' casing do not match", 1)
    );
    assert_eq!(
        lint_rule(Rule::FromAsCasing, "from busybox as build\n").await,
        vec![]
    );
}

#[tokio::test]
async fn no_empty_continuation() {
    let warnings = lint_rule(
        Rule::NoEmptyContinuation,
        "FROM busybox\nRUN echo \\\n\n  hi\n",
    )
    .await;
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0]
            .0
            .starts_with("Empty continuation line found in: RUN echo")
    );
    let clean = "FROM busybox\nRUN echo \\\n# comment\n  hi\n";
    assert_eq!(lint_rule(Rule::NoEmptyContinuation, clean).await, vec![]);
}

#[tokio::test]
async fn consistent_instruction_casing() {
    let text = "FROM busybox\nRUN true\nrun true\nEntryPoint [\"sh\"]\n";
    let warnings = lint_rule(Rule::ConsistentInstructionCasing, text).await;
    assert_eq!(
        warnings,
        vec![
            (
                "Command 'run' should match the case of the command majority (uppercase)".into(),
                3
            ),
            (
                "Command 'EntryPoint' should be consistently cased".into(),
                4
            ),
        ]
    );
    let lower = "from busybox\nrun true\n";
    assert_eq!(
        lint_rule(Rule::ConsistentInstructionCasing, lower).await,
        vec![]
    );
}

#[tokio::test]
async fn duplicate_stage_name() {
    let text = "FROM busybox AS build\nFROM busybox AS build\n";
    let warnings = lint_rule(Rule::DuplicateStageName, text).await;
    assert_eq!(
        warnings,
        one(
            "Duplicate stage name 'build', stage names should be unique",
            2
        )
    );
    let unique = "FROM busybox AS build\nFROM busybox AS test\n";
    assert_eq!(lint_rule(Rule::DuplicateStageName, unique).await, vec![]);
}

#[tokio::test]
async fn reserved_stage_name() {
    let warnings = lint_rule(Rule::ReservedStageName, "FROM busybox AS scratch\n").await;
    assert_eq!(
        warnings,
        one(
            "'scratch' is reserved and should not be used as a stage name",
            1
        )
    );
    let warnings = lint_rule(Rule::ReservedStageName, "FROM busybox AS context\n").await;
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        lint_rule(Rule::ReservedStageName, "FROM busybox AS base\n").await,
        vec![]
    );
}

#[tokio::test]
async fn json_args_recommended() {
    let warnings = lint_rule(Rule::JsonArgsRecommended, "FROM busybox\nCMD sh -c true\n").await;
    let message =
        "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals";
    assert_eq!(warnings, one(message, 2));
    let warnings = lint_rule(Rule::JsonArgsRecommended, "FROM busybox\nENTRYPOINT top\n").await;
    assert_eq!(warnings.len(), 1);
    let json = "FROM busybox\nCMD [\"sh\"]\n";
    assert_eq!(lint_rule(Rule::JsonArgsRecommended, json).await, vec![]);
    let shell = "FROM busybox\nSHELL [\"/bin/sh\", \"-c\"]\nCMD echo hi\n";
    assert_eq!(lint_rule(Rule::JsonArgsRecommended, shell).await, vec![]);
}

#[tokio::test]
async fn maintainer_deprecated() {
    let warnings = lint_rule(Rule::MaintainerDeprecated, "FROM busybox\nMAINTAINER me\n").await;
    assert_eq!(
        warnings,
        one(
            "Maintainer instruction is deprecated in favor of using label",
            2
        )
    );
    let label = "FROM busybox\nLABEL org.opencontainers.image.authors=me\n";
    assert_eq!(lint_rule(Rule::MaintainerDeprecated, label).await, vec![]);
}

#[tokio::test]
async fn undefined_arg_in_from() {
    let text = "ARG VERSION=1\nFROM busybox:$VERSON\n";
    let warnings = lint_rule(Rule::UndefinedArgInFrom, text).await;
    assert_eq!(
        warnings,
        one(
            "FROM argument 'VERSON' is not declared (did you mean VERSION?)",
            2
        )
    );
    let declared = "ARG VERSION=1\nFROM busybox:$VERSION\nFROM --platform=$BUILDPLATFORM busybox\n";
    assert_eq!(lint_rule(Rule::UndefinedArgInFrom, declared).await, vec![]);
}

#[tokio::test]
async fn workdir_relative_path() {
    let warnings = lint_rule(Rule::WorkdirRelativePath, "FROM busybox\nWORKDIR app\n").await;
    let message = "Relative workdir 'app' can have unexpected results if the base image changes";
    assert_eq!(warnings, one(message, 2));
    let absolute = "FROM busybox AS base\nWORKDIR /app\nWORKDIR src\nFROM base\nWORKDIR lib\n";
    assert_eq!(lint_rule(Rule::WorkdirRelativePath, absolute).await, vec![]);
}

#[tokio::test]
async fn undefined_var() {
    let text = "FROM busybox\nENV PATH=$PAHT:/app/bin\nCOPY $foo /x\n";
    let warnings = lint_rule(Rule::UndefinedVar, text).await;
    assert_eq!(
        warnings,
        vec![
            (
                "Usage of undefined variable '$PAHT' (did you mean $PATH?)".into(),
                2
            ),
            ("Usage of undefined variable '$foo'".into(), 3),
        ]
    );
    let defined =
        "FROM busybox\nARG foo\nENV PATH=$PATH:/app\nCOPY $foo /x\nRUN echo $undefined_in_shell\n";
    assert_eq!(lint_rule(Rule::UndefinedVar, defined).await, vec![]);
}

#[tokio::test]
async fn undefined_var_inherits_stage_env() {
    let text = "FROM scratch AS base\nENV A=1\nFROM base\nWORKDIR /$A\nWORKDIR /$B\n";
    let warnings = lint_rule(Rule::UndefinedVar, text).await;
    assert_eq!(warnings, one("Usage of undefined variable '$B'", 5));
}

#[tokio::test]
async fn multiple_instructions_disallowed() {
    let text = "FROM busybox\nCMD [\"a\"]\nCMD [\"b\"]\n";
    let warnings = lint_rule(Rule::MultipleInstructionsDisallowed, text).await;
    let message = "Multiple CMD instructions should not be used in the same stage because only the last one will be used";
    assert_eq!(warnings, one(message, 2));
    let separate = "FROM busybox\nCMD [\"a\"]\nFROM busybox\nCMD [\"b\"]\n";
    assert_eq!(
        lint_rule(Rule::MultipleInstructionsDisallowed, separate).await,
        vec![]
    );
}

#[tokio::test]
async fn legacy_key_value_format() {
    let warnings = lint_rule(Rule::LegacyKeyValueFormat, "FROM busybox\nENV A b\n").await;
    let message = "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format";
    assert_eq!(warnings, one(message, 2));
    let modern = "FROM busybox\nENV A=b C=d\nLABEL a=b\n";
    assert_eq!(lint_rule(Rule::LegacyKeyValueFormat, modern).await, vec![]);
}

#[tokio::test]
async fn invalid_default_arg_in_from() {
    let text = "ARG TAG\nFROM busybox:${TAG}\n";
    let warnings = lint_rule(Rule::InvalidDefaultArgInFrom, text).await;
    let message =
        "Default value for ARG busybox:${TAG} results in empty or invalid base image name";
    assert_eq!(warnings, one(message, 2));
    for good in [
        "ARG TAG=latest\nFROM busybox:${TAG}\n",
        "ARG VARIANT\nFROM busybox:stable${VARIANT}\n",
        "ARG TAG\nFROM busybox:${TAG:-1.36}\n",
    ] {
        assert_eq!(
            lint_rule(Rule::InvalidDefaultArgInFrom, good).await,
            vec![],
            "{good}"
        );
    }
}

#[tokio::test]
async fn invalid_default_arg_ignores_build_args() {
    let mut options = options();
    options.build_args.insert("TAG".into(), "1.36".into());
    let warnings = lint_with("ARG TAG\nFROM busybox:${TAG}\n", &options).await;
    assert!(
        warnings
            .iter()
            .any(|(r, _, _)| *r == Rule::InvalidDefaultArgInFrom)
    );
}

#[tokio::test]
async fn from_platform_flag_const_disallowed() {
    let text = "FROM --platform=linux/amd64 busybox AS base\n";
    let warnings = lint_rule(Rule::FromPlatformFlagConstDisallowed, text).await;
    let message = "FROM --platform flag should not use constant value \"linux/amd64\"";
    assert_eq!(warnings, one(message, 1));
    for good in [
        "FROM --platform=$BUILDPLATFORM busybox\n",
        "FROM --platform=linux/amd64 busybox AS build_amd64\n",
    ] {
        assert_eq!(
            lint_rule(Rule::FromPlatformFlagConstDisallowed, good).await,
            vec![]
        );
    }
}

#[tokio::test]
async fn copy_ignored_file_is_experimental() {
    let mut options = options();
    options.excludes = vec!["secret.txt".into()];
    let text = "FROM busybox\nCOPY secret.txt /\nCOPY other.txt /\n";
    let warnings = lint_with(text, &options).await;
    assert!(warnings.iter().all(|(r, _, _)| *r != Rule::CopyIgnoredFile));

    let text = format!("# check=experimental=CopyIgnoredFile\n{text}");
    let warnings = lint_with(&text, &options).await;
    let copy: Vec<_> = warnings
        .iter()
        .filter(|(r, _, _)| *r == Rule::CopyIgnoredFile)
        .collect();
    assert_eq!(copy.len(), 1);
    assert_eq!(
        copy[0].1,
        "Attempting to Copy file \"secret.txt\" that is excluded by .dockerignore"
    );
    assert_eq!(copy[0].2, 3);
}

#[tokio::test]
async fn invalid_base_image_platform() {
    let warnings = lint_rule(Rule::InvalidBaseImagePlatform, "FROM arm-image\n").await;
    let message = "Base image docker.io/library/arm-image was pulled with platform \"linux/arm64\", expected \"linux/amd64\" for current build";
    assert_eq!(warnings, one(message, 1));
    assert_eq!(
        lint_rule(Rule::InvalidBaseImagePlatform, "FROM busybox\n").await,
        vec![]
    );
}

#[tokio::test]
async fn secrets_used_in_arg_or_env() {
    let text = "FROM busybox\nARG AWS_SECRET_ACCESS_KEY\nENV API_TOKEN=x\n";
    let warnings = lint_rule(Rule::SecretsUsedInArgOrEnv, text).await;
    assert_eq!(
        warnings,
        vec![
            (
                "Do not use ARG or ENV instructions for sensitive data (ARG \"AWS_SECRET_ACCESS_KEY\")".into(),
                2
            ),
            (
                "Do not use ARG or ENV instructions for sensitive data (ENV \"API_TOKEN\")".into(),
                3
            ),
        ]
    );
    let clean = "FROM busybox\nARG PUBLIC_KEY\nENV KEYBOARD=us\n";
    assert_eq!(lint_rule(Rule::SecretsUsedInArgOrEnv, clean).await, vec![]);
}

#[tokio::test]
async fn expose_proto_casing() {
    let warnings = lint_rule(Rule::ExposeProtoCasing, "FROM busybox\nEXPOSE 80/TcP\n").await;
    assert_eq!(
        warnings,
        one(
            "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase",
            2
        )
    );
    let lower = "FROM busybox\nEXPOSE 80/tcp 53/udp 8080\n";
    assert_eq!(lint_rule(Rule::ExposeProtoCasing, lower).await, vec![]);
}

#[tokio::test]
async fn expose_invalid_format() {
    let warnings = lint_rule(
        Rule::ExposeInvalidFormat,
        "FROM busybox\nEXPOSE 127.0.0.1:80:80\n",
    )
    .await;
    let message = "EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:80:80'";
    assert_eq!(warnings, one(message, 2));
    assert_eq!(
        lint_rule(Rule::ExposeInvalidFormat, "FROM busybox\nEXPOSE 80\n").await,
        vec![]
    );
}

#[tokio::test]
async fn check_directive_skips_rules() {
    let text = "# check=skip=StageNameCasing,FromAsCasing\nFROM busybox as Build\nMAINTAINER me\n";
    let rules: Vec<Rule> = lint(text).await.into_iter().map(|(r, _, _)| r).collect();
    assert_eq!(rules, vec![Rule::MaintainerDeprecated]);

    let text = "# check=skip=all\nFROM busybox as Build\nMAINTAINER me\n";
    assert_eq!(lint(text).await, vec![]);
}

#[tokio::test]
async fn check_directive_accepts_spaces() {
    let text = "# check=skip=StageNameCasing, FromAsCasing\nFROM busybox as Build\n";
    assert_eq!(lint(text).await, vec![]);
}

#[tokio::test]
async fn check_build_arg_replaces_directive() {
    let mut options = options();
    options
        .build_args
        .insert(CHECK_BUILD_ARG.into(), "skip=MaintainerDeprecated".into());
    let text = "# check=skip=all\nFROM busybox\nMAINTAINER me\nEXPOSE 80/TCP\n";
    let rules: Vec<Rule> = lint_with(text, &options)
        .await
        .into_iter()
        .map(|(r, _, _)| r)
        .collect();
    assert_eq!(rules, vec![Rule::ExposeProtoCasing]);
}

#[tokio::test]
async fn check_error_fails_conversion() {
    let text = "# check=error=true\nFROM busybox AS Build\n";
    let ast = crate::parser::parse(text).unwrap();
    let error = crate::convert::convert(&ast, &options(), &StubResolver)
        .await
        .expect_err("error=true turns the warning into an error");
    assert!(
        error
            .message
            .starts_with("Lint violation found for rules: StageNameCasing")
    );
    assert!(
        error
            .message
            .contains("Stage name 'Build' should be lowercase (line 2)")
    );

    let report = crate::convert::check(&ast, &options(), &StubResolver)
        .await
        .unwrap();
    assert_eq!(report.warnings.len(), 1);
    assert!(report.config.error);
}

#[tokio::test]
async fn check_warnings_join_conversion() {
    let ast = crate::parser::parse("FROM busybox AS Build\n").unwrap();
    let conversion = crate::convert::convert(&ast, &options(), &StubResolver)
        .await
        .unwrap();
    let warning = &conversion.warnings[0];
    assert_eq!(warning.rule.as_deref(), Some("StageNameCasing"));
    assert_eq!(
        warning.url.as_deref(),
        Some("https://docs.docker.com/go/dockerfile/rule/stage-name-casing/")
    );
    assert_eq!(warning.line, Some(1));
    assert_eq!(
        warning.to_string(),
        "StageNameCasing: Stage name 'Build' should be lowercase"
    );
}

#[test]
fn invalid_check_options_are_rejected() {
    for bad in ["skip", "error=maybe", "unknown=1"] {
        assert!(CheckConfig::parse(bad).is_err(), "{bad}");
    }
    let config = CheckConfig::parse("skip=A, B;error=true").unwrap();
    assert!(config.skip.contains("A"));
    assert!(config.skip.contains("B"));
    assert!(config.error);
}

#[tokio::test]
async fn invalid_check_directive_names_line() {
    let ast = crate::parser::parse("# check=error=maybe\nFROM busybox\n").unwrap();
    let error = run(&ast, &options(), &StubResolver).await.unwrap_err();
    assert_eq!(error.lines, Some((1, 1)));
    assert!(error.message.contains("`error=maybe`"), "{}", error.message);
}

#[test]
fn rule_urls_follow_docs_slugs() {
    assert_eq!(
        Rule::JsonArgsRecommended.url(),
        "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"
    );
    assert_eq!(
        Rule::FromPlatformFlagConstDisallowed.url(),
        "https://docs.docker.com/go/dockerfile/rule/from-platform-flag-const-disallowed/"
    );
    for rule in Rule::ALL {
        assert_eq!(Rule::from_name(rule.name()), Some(rule));
    }
}

const OUTLINE_DOCKERFILE: &str = "# syntax=docker/dockerfile:1
# check=skip=all

# Version of busybox to start from
ARG BUSYBOX_VERSION=latest
ARG UNUSED=1

# base prepares the tools
FROM busybox:${BUSYBOX_VERSION} AS base
# MODE selects the build flavour
ARG MODE=release
RUN --mount=type=secret,id=token,required=true --mount=type=ssh true

FROM base AS build
RUN --mount=type=secret,target=/run/secrets/npmrc true

# the final image
FROM busybox AS release
COPY --from=build /x /x
";

#[test]
fn targets_list_descriptions() {
    let ast = crate::parser::parse(OUTLINE_DOCKERFILE).unwrap();
    let targets = outline::targets(&ast, OUTLINE_DOCKERFILE);
    let summary: Vec<(&str, &str, bool)> = targets
        .iter()
        .map(|t| (t.name.as_str(), t.description.as_str(), t.default))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("base", "prepares the tools", false),
            ("build", "", false),
            ("release", "the final image", true),
        ]
    );
}

#[test]
fn outline_lists_args_secrets_and_ssh() {
    let ast = crate::parser::parse(OUTLINE_DOCKERFILE).unwrap();
    let outline = outline::outline(&ast, OUTLINE_DOCKERFILE, None).unwrap();
    assert_eq!(outline.name, "release");
    let args: Vec<(&str, Option<&str>, &str)> = outline
        .args
        .iter()
        .map(|a| (a.name.as_str(), a.value.as_deref(), a.description.as_str()))
        .collect();
    assert_eq!(
        args,
        vec![
            (
                "BUSYBOX_VERSION",
                Some("latest"),
                "Version of busybox to start from"
            ),
            ("MODE", Some("release"), "selects the build flavour"),
        ]
    );
    let secrets: Vec<(&str, bool)> = outline
        .secrets
        .iter()
        .map(|s| (s.name.as_str(), s.required))
        .collect();
    assert_eq!(secrets, vec![("token", true), ("npmrc", false)]);
    let ssh: Vec<&str> = outline.ssh.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(ssh, vec!["default"]);
}

#[test]
fn outline_of_unknown_target_suggests_name() {
    let ast = crate::parser::parse(OUTLINE_DOCKERFILE).unwrap();
    let error = outline::outline(&ast, OUTLINE_DOCKERFILE, Some("biuld")).unwrap_err();
    assert_eq!(
        error,
        "Target stage `biuld` could not be found; did you mean `build`?"
    );
}

/// Renders a diagnostic the way the CLI prints it, without colours.
fn render(diagnostic: diagnostic::ConvertDiagnostic) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    let mut out = String::new();
    handler.render_report(&mut out, &diagnostic).unwrap();
    out
}

async fn convert_error(text: &str, options: &ConvertOptions) -> String {
    let ast = crate::parser::parse(text).unwrap();
    let error = crate::convert::convert(&ast, options, &StubResolver)
        .await
        .expect_err("the Dockerfile is invalid");
    render(error.to_diagnostic(text))
}

#[tokio::test]
async fn diagnostic_unknown_flag() {
    let text = "FROM busybox\nCOPY --form=build /a /b\n";
    insta::assert_snapshot!(convert_error(text, &options()).await);
}

#[tokio::test]
async fn diagnostic_unknown_target() {
    let mut options = options();
    options.target = Some("biuld".into());
    let text = "FROM busybox AS build\nRUN true\n";
    insta::assert_snapshot!(convert_error(text, &options).await);
}

#[tokio::test]
async fn diagnostic_unknown_instruction() {
    let text = "FROM busybox\nRUNN echo hi\n";
    insta::assert_snapshot!(convert_error(text, &options()).await);
}

#[tokio::test]
async fn diagnostic_copy_from_typo() {
    struct Missing;
    #[async_trait]
    impl ImageResolver for Missing {
        async fn resolve(
            &self,
            reference: &str,
            platform: &Platform,
        ) -> Result<ResolvedImage, String> {
            if reference == "busybox" {
                return StubResolver.resolve(reference, platform).await;
            }
            Err(format!("Image `{reference}` is not in the local store"))
        }
    }
    let text = "FROM busybox AS build\nRUN true\nFROM busybox\nCOPY --from=biuld /a /b\n";
    let ast = crate::parser::parse(text).unwrap();
    let error = crate::convert::convert(&ast, &options(), &Missing)
        .await
        .expect_err("biuld is not an image");
    insta::assert_snapshot!(render(error.to_diagnostic(text)));
}

#[tokio::test]
async fn check_report_rendering() {
    let text = "FROM busybox as build\nRUN true\nMAINTAINER me\n";
    let ast = crate::parser::parse(text).unwrap();
    let report = crate::convert::check(&ast, &options(), &StubResolver)
        .await
        .unwrap();
    insta::assert_snapshot!(diagnostic::render_check_report(&report, "Dockerfile", text));
}
