//! Parser behaviours the upstream fixtures do not cover: error locations,
//! diagnostics, ONBUILD, flags, directives and limits.

use miette::Diagnostic;
use strata_dockerfile::parser::{MAX_LINE_BYTES, parse};

fn dump(text: &str) -> String {
    parse(text)
        .unwrap_or_else(|e| panic!("`{text}` fails: {e}"))
        .dump()
}

fn error(text: &str) -> strata_dockerfile::parser::ParseError {
    match parse(text) {
        Ok(ast) => panic!("`{text}` parses:\n{}", ast.dump()),
        Err(error) => error,
    }
}

#[test]
fn error_display_has_line_prefix() {
    let error = error("FROM scratch\nRUN <<EOF\necho hi\n");
    assert_eq!(error.line(), 2);
    assert!(
        error
            .to_string()
            .starts_with("Dockerfile:2: Unterminated heredoc `EOF`"),
        "{error}"
    );
}

#[test]
fn error_underlines_offending_line() {
    let text = "FROM scratch\nCMD [\"a\", 1]\n";
    let error = error(text);
    let labels: Vec<_> = error.labels().expect("error has a label").collect();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].offset(), text.find("CMD").unwrap());
    assert_eq!(labels[0].len(), "CMD [\"a\", 1]".len());
    assert!(error.source_code().is_some());
}

#[test]
fn invalid_escape_points_at_value() {
    let error = error("# escape=x\nFROM scratch\n");
    assert_eq!(error.line(), 1);
    assert_eq!(error.column(), Some(10));
    assert!(error.message().contains("`x`"), "{error}");
}

#[test]
fn duplicate_directive_names_second_line() {
    let error = error("# syntax=a\n# escape=`\n# syntax=b\nFROM scratch\n");
    assert_eq!(error.line(), 3);
    assert!(error.message().contains("`syntax`"), "{error}");
}

#[test]
fn directives_are_recorded() {
    let ast =
        parse("# syntax=docker/dockerfile:1 // opts\n# CHECK = skip=all\n# escape=`\nFROM a\n")
            .unwrap();
    let directives = &ast.directives;
    assert_eq!(directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(directives.check.as_deref(), Some("skip=all"));
    assert_eq!(directives.escape, '`');
    let lines: Vec<(&str, usize)> = directives
        .lines
        .iter()
        .map(|(n, l)| (n.as_str(), *l))
        .collect();
    assert_eq!(lines, [("syntax", 1), ("check", 2), ("escape", 3)]);
}

#[test]
fn directive_after_comment_is_a_comment() {
    let ast = parse("# a comment\n# escape=`\nFROM a\nRUN echo \\\n  hi\n").unwrap();
    assert_eq!(ast.directives.escape, '\\');
    assert_eq!(ast.dump(), "(from \"a\")\n(run \"echo   hi\")");
}

#[test]
fn default_escape_is_backslash() {
    assert_eq!(parse("FROM a\n").unwrap().directives.escape, '\\');
}

#[test]
fn byte_order_mark_is_stripped() {
    let ast = parse("\u{feff}# escape=`\nFROM a\n").unwrap();
    assert_eq!(ast.directives.escape, '`');
    assert_eq!(ast.dump(), "(from \"a\")");
}

#[test]
fn onbuild_nests_trigger() {
    let ast = parse("ONBUILD RUN [\"echo\",\"test\"]\nONBUILD COPY --from=a x y\n").unwrap();
    assert_eq!(
        ast.dump(),
        "(onbuild (run \"echo\" \"test\"))\n(onbuild (copy [\"--from=a\"] \"x\" \"y\"))"
    );
    let trigger = ast.children[0].next.as_deref().unwrap();
    assert!(trigger.json);
    assert_eq!(trigger.start_line, 1);
}

#[test]
fn onbuild_run_heredoc_is_read() {
    let ast = parse("ONBUILD RUN <<EOF\necho hi\nEOF\nFROM a\n").unwrap();
    assert_eq!(ast.children.len(), 2);
    assert_eq!(ast.children[0].heredocs[0].content, "echo hi\n");
    assert_eq!(ast.children[0].end_line, 3);
}

#[test]
fn flags_end_at_double_dash() {
    assert_eq!(
        dump("COPY --doit=true -- foo /tmp/\n"),
        "(copy [\"--doit=true\"] \"foo\" \"/tmp/\")"
    );
    assert_eq!(
        dump("COPY --a=\"x y\" --b=c\\ d e f\n"),
        "(copy [\"--a=x y\" \"--b=c d\"] \"e\" \"f\")"
    );
}

#[test]
fn env_forms() {
    assert_eq!(
        dump("ENV name=\"value value1\" a=b\n"),
        "(env \"name\" \"\\\"value value1\\\"\" \"=\" \"a\" \"b\" \"=\")"
    );
    assert_eq!(dump("LABEL a  b c\n"), "(label \"a\" \"b c\" \"\")");
    assert!(error("ENV a=b c\n").message().contains("`c`"));
}

#[test]
fn unknown_instruction_keeps_empty_argument() {
    assert_eq!(dump("FOO bar baz\n"), "(foo \"\")");
}

#[test]
fn heredoc_lines_are_counted() {
    let ast = parse("FROM a\nRUN <<A <<B\none\nA\ntwo\nB\nRUN ls\n").unwrap();
    assert_eq!(
        (ast.children[1].start_line, ast.children[1].end_line),
        (2, 6)
    );
    assert_eq!(ast.children[2].start_line, 7);
    assert_eq!(ast.children[1].original, "RUN <<A <<B");
}

#[test]
fn crlf_lines_are_accepted() {
    let ast = parse("FROM a\r\nRUN echo \\\r\n  hi\r\n").unwrap();
    assert_eq!(ast.dump(), "(from \"a\")\n(run \"echo   hi\")");
}

#[test]
fn line_length_limit() {
    let longest = format!(
        "FROM a\nLABEL x={}\n",
        "a".repeat(MAX_LINE_BYTES - "LABEL x=".len())
    );
    assert!(parse(&longest).is_ok());

    let too_long = format!("FROM a\nLABEL x={}\n", "a".repeat(MAX_LINE_BYTES));
    let error = error(&too_long);
    assert_eq!(error.line(), 2);
    assert!(error.message().contains("65535"), "{error}");
}

#[test]
fn empty_file_is_an_error() {
    assert!(error("").message().contains("no instructions"));
    assert!(error("\n# only\n\n").message().contains("no instructions"));
}

#[test]
fn go_quoting_of_control_characters() {
    let ast = parse("CMD [\"\\u0007\\u000b\\u007f\\u00a0é\\u200b\"]\n").unwrap();
    assert_eq!(ast.dump(), "(cmd \"\\a\\v\\x7f\\u00a0é\\u200b\")");
}

#[test]
fn miette_renders_offending_line() {
    let error = error("FROM a\nENV PATH\n").with_file_name("app.Dockerfile");
    let mut rendered = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .render_report(&mut rendered, &error)
        .unwrap();
    assert!(rendered.contains("app.Dockerfile:2:1"), "{rendered}");
    assert!(rendered.contains("ENV PATH"), "{rendered}");
    assert!(
        rendered.contains("ENV must have two arguments"),
        "{rendered}"
    );
}
