//! Data-driven parser tests over `tests/cases/parser` at the repository
//! root. Each test walks its case folders and reports every failing folder
//! by name.

use std::fs;
use std::path::{Path, PathBuf};

use strata_dockerfile::ast::Ast;
use strata_dockerfile::parser::{
    detect_directive, detect_syntax, heredocs_from_line, parse, parse_directives, parse_heredoc,
};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases/parser")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()))
}

/// Lists the sub-folders of `dir`, sorted by name.
fn case_folders(dir: &Path) -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list `{}`: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    folders
}

fn name_of(folder: &Path) -> String {
    folder.file_name().unwrap().to_string_lossy().into_owned()
}

fn parse_case(folder: &Path) -> Result<Ast, String> {
    parse(&read(&folder.join("Dockerfile"))).map_err(|e| e.to_string())
}

/// Fails the test with one line per failing case.
fn assert_no_failures(kind: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} {kind} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn positive_cases_dump_exactly() {
    let folders = case_folders(&cases_dir().join("positive"));
    assert!(folders.len() >= 20, "expected the positive fixtures");

    let mut failures = Vec::new();
    for folder in &folders {
        let name = name_of(folder);
        let expected = read(&folder.join("expected"));
        match parse_case(folder) {
            Err(error) => failures.push(format!("{name}: parse failed: {error}")),
            Ok(ast) => {
                let dump = ast.dump() + "\n";
                if dump != expected {
                    failures.push(format!("{name}:\n--- got\n{dump}--- expected\n{expected}"));
                }
            }
        }
    }
    assert_no_failures("positive", &failures);
}

/// Returns the key phrase of a negative case's `expected` file: the text
/// after `PARSE ERROR expected:`, unquoted, up to the parenthesised source.
fn expected_phrase(expected: &str) -> String {
    let text = expected
        .trim()
        .strip_prefix("PARSE ERROR expected:")
        .expect("negative `expected` starts with `PARSE ERROR expected:`")
        .trim();
    let text = text.split(" (").next().unwrap();
    normalise(text)
}

/// Lowercases and drops quotes and backticks, so `Only one `escape` parser`
/// and `only one escape parser` compare equal.
fn normalise(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .filter(|c| !matches!(c, '`' | '"' | '\''))
        .collect()
}

#[test]
fn negative_cases_fail_with_their_error() {
    let mut failures = Vec::new();
    for folder in case_folders(&cases_dir().join("negative")) {
        let name = name_of(&folder);
        let phrase = expected_phrase(&read(&folder.join("expected")));
        // The first three words identify the error; the rest of our message
        // is worded for the user.
        let key: Vec<&str> = phrase.split_whitespace().take(3).collect();
        let key = key.join(" ");
        match parse_case(&folder) {
            Ok(ast) => failures.push(format!("{name}: parsed, dump:\n{}", ast.dump())),
            Err(error) if !normalise(&error).contains(&key) => {
                failures.push(format!("{name}: error `{error}` does not mention `{key}`"))
            }
            Err(error) if !error.starts_with("Dockerfile:") => failures.push(format!(
                "{name}: error `{error}` has no `Dockerfile:LINE:` prefix"
            )),
            Err(_) => {}
        }
    }
    assert_no_failures("negative", &failures);
}

#[test]
fn line_ranges_match() {
    let folder = cases_dir().join("line-ranges");
    let expected = read(&folder.join("expected"));
    let ast = parse_case(&folder).expect("line-ranges Dockerfile parses");

    let value = |key: &str| -> usize {
        let line = expected
            .lines()
            .find(|line| line.starts_with(key))
            .unwrap_or_else(|| panic!("line-ranges: `{key}` missing from expected"));
        line.split('=').nth(1).unwrap().trim().parse().unwrap()
    };
    assert_eq!(
        ast.children.len(),
        value("children"),
        "line-ranges: child count"
    );
    assert_eq!(
        ast.children[0].start_line,
        value("root.StartLine"),
        "line-ranges: root start"
    );
    let last = ast.children.last().unwrap();
    assert_eq!(
        last.end_line,
        value("root.EndLine"),
        "line-ranges: root end"
    );

    for line in expected.lines().filter(|line| line.starts_with("child[")) {
        let index: usize = line["child[".len()..line.find(']').unwrap()]
            .parse()
            .unwrap();
        let range = line
            .split("lines ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        let (start, end) = range.split_once("..").unwrap();
        let child = &ast.children[index];
        assert_eq!(
            child.start_line,
            start.parse::<usize>().unwrap(),
            "line-ranges: {line}"
        );
        assert_eq!(
            child.end_line,
            end.parse::<usize>().unwrap(),
            "line-ranges: {line}"
        );
    }
}

/// Returns the lines of an `expected` file that are dump lines.
fn derived_dump(expected: &str) -> String {
    let lines: Vec<&str> = expected
        .lines()
        .filter(|line| line.starts_with('('))
        .collect();
    lines.join("\n")
}

#[test]
fn empty_continuation_warnings() {
    let folder = cases_dir().join("warnings/empty-continuation");
    let expected = read(&folder.join("expected"));
    let ast = parse_case(&folder).expect("empty-continuation Dockerfile parses");

    assert_eq!(
        ast.warnings.len(),
        2,
        "empty-continuation: {:?}",
        ast.warnings
    );
    for line in expected.lines() {
        let Some((key, text)) = line.split_once(" contains: ") else {
            continue;
        };
        let index: usize = key["warning[".len()..key.find(']').unwrap()]
            .parse()
            .unwrap();
        let warning = &ast.warnings[index];
        let field = if key.contains(".Detail") {
            &warning.detail
        } else {
            &warning.message
        };
        assert!(
            field.contains(text),
            "empty-continuation: {key} `{field}` lacks `{text}`"
        );
    }
    assert_eq!(
        ast.dump(),
        derived_dump(&expected),
        "empty-continuation: dump"
    );
}

#[test]
fn heredocs_are_extracted() {
    let folder = cases_dir().join("heredoc/extract-heredocs");
    let expected: serde_json::Value =
        serde_json::from_str(&read(&folder.join("expected.json"))).unwrap();
    let ast = parse_case(&folder).expect("extract-heredocs Dockerfile parses");
    let children = expected["children"].as_array().unwrap();
    assert_eq!(
        ast.children.len(),
        children.len(),
        "extract-heredocs: child count"
    );

    let mut failures = Vec::new();
    for want in children {
        let index = want["index"].as_u64().unwrap() as usize;
        let got = &ast.children[index].heredocs;
        let want_docs = want["heredocs"].as_array().cloned().unwrap_or_default();
        let got_docs: Vec<serde_json::Value> = got
            .iter()
            .map(|h| {
                serde_json::json!({
                    "name": h.name,
                    "fd": h.file_descriptor,
                    "expand": h.expand,
                    "chomp": h.chomp,
                    "content": h.content,
                })
            })
            .collect();
        if got_docs != want_docs {
            failures.push(format!(
                "extract-heredocs child {index} ({}): got {got_docs:?}, expected {want_docs:?}",
                want["instruction"]
            ));
        }
    }
    assert_no_failures("heredoc", &failures);
}

#[test]
fn json_form_has_no_heredoc() {
    let folder = cases_dir().join("heredoc/json-form-no-heredoc");
    let ast = parse_case(&folder).expect("json-form-no-heredoc Dockerfile parses");
    for child in &ast.children {
        assert!(
            child.heredocs.is_empty(),
            "json-form-no-heredoc: {}",
            child.original
        );
    }
    assert_eq!(
        ast.dump(),
        derived_dump(&read(&folder.join("expected"))),
        "json-form-no-heredoc: dump"
    );
}

/// Returns the data rows of a TSV file: comment lines and the header skipped.
fn tsv_rows(path: &Path) -> Vec<Vec<String>> {
    read(path)
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .skip(1)
        .map(|line| line.split('\t').map(str::to_string).collect())
        .collect()
}

#[test]
fn heredoc_word_rules() {
    let rows = tsv_rows(&cases_dir().join("heredoc/heredoc-word-rules.tsv"));
    let mut failures = Vec::new();
    for row in &rows {
        let (kind, input, expected) = (&row[0], &row[1], &row[2]);
        let (outcome, note) = match expected.split_once(" (") {
            Some((outcome, note)) => (outcome, note),
            None => (expected.as_str(), ""),
        };
        let failure = match kind.as_str() {
            "word" => check_heredoc_word(input, outcome, note),
            "line" => check_heredoc_line(input, outcome, note),
            other => Some(format!("unknown kind `{other}`")),
        };
        if let Some(failure) = failure {
            failures.push(format!("{kind} `{input}`: {failure}"));
        }
    }
    assert_no_failures("heredoc-word-rules", &failures);
}

fn check_heredoc_word(input: &str, outcome: &str, note: &str) -> Option<String> {
    let result = parse_heredoc(input);
    match (outcome, result) {
        ("error", Err(_)) | ("none", Ok(None)) => None,
        (outcome, Ok(Some(heredoc))) if outcome.starts_with("name=") => {
            let name = &outcome["name=".len()..];
            // Any quote in the delimiter turns expansion off; the notes only
            // mention it on some rows.
            let expand = !input.contains(['\'', '"']);
            if note.contains("no expansion") && expand {
                return Some("note says no expansion but the word has no quote".to_string());
            }
            let chomp = input.contains("<<-");
            if heredoc.name != name || heredoc.expand != expand || heredoc.chomp != chomp {
                Some(format!(
                    "got {heredoc:?}, expected name `{name}` expand {expand}"
                ))
            } else {
                None
            }
        }
        (outcome, got) => Some(format!("expected `{outcome}`, got {got:?}")),
    }
}

fn check_heredoc_line(input: &str, outcome: &str, note: &str) -> Option<String> {
    let heredocs = match heredocs_from_line(input) {
        Ok(heredocs) => heredocs,
        Err(error) => return Some(format!("error `{error}`")),
    };
    let names: Vec<&str> = heredocs.iter().map(|h| h.name.as_str()).collect();
    let expected: Vec<&str> = match outcome {
        "none" => Vec::new(),
        list => list.split(", ").collect(),
    };
    if names != expected {
        return Some(format!("got names {names:?}, expected {expected:?}"));
    }
    if let Some(fd) = note.strip_prefix("fd ") {
        let fd: u32 = fd.trim_end_matches(')').parse().unwrap();
        if heredocs[0].file_descriptor != fd {
            return Some(format!(
                "got fd {}, expected {fd}",
                heredocs[0].file_descriptor
            ));
        }
    }
    None
}

/// Returns the text between the first pair of double quotes after `key `.
fn quoted_after(text: &str, key: &str) -> Option<String> {
    let start = text.find(&format!("{key} \""))? + key.len() + 2;
    let end = text[start..].find('"')? + start;
    Some(text[start..end].to_string())
}

fn line_after(text: &str) -> Option<usize> {
    let rest = &text[text.find("line ")? + "line ".len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn directive_detection() {
    let rows = tsv_rows(&cases_dir().join("directives.tsv"));
    let mut failures = Vec::new();
    for row in &rows {
        let (function, raw_input, expected) = (&row[0], &row[1], &row[2]);
        let input = raw_input
            .replace("\\n", "\n")
            .replace("<UTF-8 BOM>", "\u{feff}");
        let failure = match function.as_str() {
            "all" => check_all_directives(&input, expected),
            "syntax" | "check" => {
                let found = if function == "syntax" {
                    detect_syntax(&input)
                } else {
                    detect_directive("check", &input)
                };
                let key = if function == "syntax" { "ref" } else { "value" };
                match (expected.starts_with("not found"), found) {
                    (true, None) => None,
                    (true, Some(found)) => Some(format!("expected nothing, got {found:?}")),
                    (false, None) => Some("found nothing".to_string()),
                    (false, Some(found)) => {
                        let value = quoted_after(expected, key);
                        let cmdline = quoted_after(expected, "cmdline");
                        let line = line_after(expected);
                        if value.is_some_and(|v| v != found.value)
                            || cmdline.is_some_and(|c| c != found.cmdline)
                            || line.is_some_and(|l| l != found.line)
                        {
                            Some(format!("got {found:?}"))
                        } else {
                            None
                        }
                    }
                }
            }
            other => Some(format!("unknown function `{other}`")),
        };
        if let Some(failure) = failure {
            failures.push(format!("{function} `{raw_input}`: {failure}"));
        }
    }
    assert_no_failures("directives", &failures);
}

fn check_all_directives(input: &str, expected: &str) -> Option<String> {
    let found = parse_directives(input);
    assert!(
        expected.starts_with("one directive:"),
        "unexpected row `{expected}`"
    );
    let (name, rest) = expected["one directive:".len()..]
        .trim()
        .split_once(" = ")?;
    let value = rest.split('"').nth(1)?;
    match found.as_slice() {
        [directive] if directive.name == name && directive.value == value => None,
        _ => Some(format!("got {found:?}, expected {name} = {value}")),
    }
}
