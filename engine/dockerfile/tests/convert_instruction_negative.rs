//! Instructions the parser accepts but the typed layer rejects, from
//! `tests/cases/parser/instruction-negative`.

use strata_dockerfile::{instructions, parser};

/// Strips the `ERROR:` prefix and the parenthesised notes of an
/// `expected` file, leaving the text the message must contain.
fn expected_text(raw: &str) -> String {
    let text = raw.trim();
    let text = text.split_once(':').map_or(text, |(_, rest)| rest).trim();
    let text = text.split("   (").next().unwrap().trim();
    text.to_string()
}

#[test]
fn instruction_negative_cases_fail() {
    let root = format!(
        "{}/../../tests/cases/parser/instruction-negative",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut checked = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let expected = expected_text(&std::fs::read_to_string(dir.join("expected")).unwrap());
        let ast = parser::parse(&dockerfile).unwrap_or_else(|e| panic!("{dir:?} must parse: {e}"));
        let errors: Vec<String> = ast
            .children
            .iter()
            .filter_map(|node| instructions::parse(node).err())
            .map(|e| e.message)
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "{dir:?}: expected one rejected instruction, got {errors:?}"
        );
        // Messages start with a capital letter here, so compare without case.
        assert!(
            errors[0].to_lowercase().contains(&expected.to_lowercase()),
            "{dir:?}: `{}` does not contain `{expected}`",
            errors[0]
        );
        checked += 1;
    }
    assert_eq!(checked, 13);
}

fn parse_one(text: &str) -> Result<instructions::Instruction, instructions::InstructionError> {
    let ast = parser::parse(text).unwrap();
    instructions::parse(&ast.children[0])
}

#[test]
fn unknown_instruction_suggests_keyword() {
    let error = parse_one("FNTRYPOINT [\"/bin/sh\"]").unwrap_err();
    assert!(
        error
            .message
            .to_lowercase()
            .contains("unknown instruction: fntrypoint"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("did you mean ENTRYPOINT?"),
        "{}",
        error.message
    );
}

#[test]
fn unknown_flag_lists_valid_flags() {
    let error = parse_one("COPY --frm=build a b").unwrap_err();
    assert!(error.message.contains("`--frm`"), "{}", error.message);
    assert!(
        error.message.contains("`--from`, `--chown`"),
        "{}",
        error.message
    );
    let error = parse_one("USER --x=1 root").unwrap_err();
    assert!(
        error.message.contains("USER takes no flags"),
        "{}",
        error.message
    );
}

#[test]
fn healthcheck_errors_match_docker() {
    let cases = [
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
    for (text, expected) in cases {
        let error = parse_one(text).unwrap_err();
        assert!(
            error.message.contains(expected),
            "`{text}` gave `{}`",
            error.message
        );
    }
    assert!(parse_one("HEALTHCHECK --interval=0ms CMD true").is_ok());
    assert!(parse_one("HEALTHCHECK --interval=1ms CMD true").is_ok());
}

#[test]
fn env_blank_name_is_rejected() {
    let error = parse_one("ENV =arg2").unwrap_err();
    assert!(
        error.message.contains("ENV names can not be blank"),
        "{}",
        error.message
    );
}

#[test]
fn copy_flags_are_typed() {
    let instructions::Instruction::Copy(copy) = parse_one(
        "COPY --from=build --chown=1:2 --chmod=755 --link --exclude=*.md --exclude=x a b /dst/",
    )
    .unwrap() else {
        panic!("not a COPY");
    };
    assert_eq!(copy.from.as_deref(), Some("build"));
    assert_eq!(copy.chown.as_deref(), Some("1:2"));
    assert_eq!(copy.chmod.as_deref(), Some("755"));
    assert!(copy.link);
    assert_eq!(copy.excludes, ["*.md", "x"]);
    assert_eq!(copy.sources.len(), 2);
    assert_eq!(copy.dest, "/dst/");
}
