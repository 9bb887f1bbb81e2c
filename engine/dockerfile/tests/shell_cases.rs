//! BuildKit's variable-expansion fixtures (`envVarTest`, `wordsTest`) and
//! the `matches.tsv` table, run line by line, plus the `used` and `unset`
//! sets of [`Expansion`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use strata_dockerfile::shell::{Env, Expansion, Lexer, ShellErrorKind};

fn fixture(name: &str) -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/cases/parser/shell-expansion")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("Failed to read `{}`: {err}", path.display()));
    (path, text)
}

/// Panics with every failure, so one run shows all broken lines.
fn report(path: &Path, checked: usize, failures: Vec<String>) {
    assert!(checked > 0, "No cases found in `{}`", path.display());
    assert!(
        failures.is_empty(),
        "{} of {checked} cases in `{}` failed:\n{}",
        failures.len(),
        path.display(),
        failures.join("\n")
    );
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| name.to_string()).collect()
}

#[test]
fn env_var_fixture() {
    let (path, text) = fixture("envVarTest");
    let env_list: Vec<String> = ["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]
        .iter()
        .map(|entry| entry.to_string())
        .collect();
    let env_map: BTreeMap<String, String> = env_list
        .iter()
        .map(|entry| {
            let (key, value) = entry.split_once('=').unwrap();
            (key.to_string(), value.to_string())
        })
        .collect();
    let lexer = Lexer::new('\\');
    let mut failures = Vec::new();
    let mut checked = 0;

    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim().split('|').collect();
        assert_eq!(fields.len(), 3, "line {number} needs 3 fields: {line:?}");
        let (platform, input, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        assert!(
            matches!(platform, "A" | "U" | "W"),
            "line {number} has platform {platform:?}: {line:?}"
        );
        // Windows compares variable names without case, and Strata builds
        // Linux images only.
        if platform == "W" {
            continue;
        }
        checked += 1;

        let envs: [(&str, &dyn Env); 2] = [("list", &env_list), ("map", &env_map)];
        for (kind, env) in envs {
            let outcome = lexer
                .process_word(input, env)
                .map(|expansion| expansion.value);
            let ok = match (&outcome, expected) {
                (Err(_), "error") => true,
                (Ok(value), expected) => value == expected && expected != "error",
                (Err(_), _) => false,
            };
            if !ok {
                failures.push(format!(
                    "line {number} ({kind} env) {line:?}: expected {expected:?}, got {outcome:?}"
                ));
            }
        }
    }
    report(&path, checked, failures);
}

#[test]
fn words_fixture() {
    let (path, text) = fixture("wordsTest");
    let lexer = Lexer::new('\\');
    let mut env: Vec<String> = Vec::new();
    let mut failures = Vec::new();
    let mut checked = 0;

    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.starts_with('#') {
            continue;
        }
        if let Some(assignment) = line.strip_prefix("ENV ") {
            env.push(assignment.trim_start_matches(' ').to_string());
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(
            fields.len(),
            2,
            "line {number} needs exactly one `|`: {line:?}"
        );
        let input = fields[0].trim();
        // Trailing spaces of the expected words are significant.
        let expected: Vec<&str> = fields[1].trim_start_matches(' ').split(',').collect();
        checked += 1;

        let map: HashMap<String, String> = env
            .iter()
            .map(|entry| {
                let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
                (key.to_string(), value.to_string())
            })
            .collect();
        let envs: [(&str, &dyn Env); 2] = [("list", &env), ("map", &map)];
        for (kind, env) in envs {
            let words = lexer
                .process_words(input, env)
                .unwrap_or_else(|_| vec!["error".to_string()]);
            if words != expected {
                failures.push(format!(
                    "line {number} ({kind} env) {line:?}: expected {expected:?}, got {words:?}"
                ));
            }
        }
    }
    report(&path, checked, failures);
}

/// One row of `matches.tsv`.
struct MatchCase<'a> {
    number: usize,
    line: &'a str,
    input: &'a str,
    env: BTreeMap<String, String>,
    expected: &'a str,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

fn parse_match_case(number: usize, line: &str) -> MatchCase<'_> {
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(
        fields.len(),
        5,
        "line {number} needs 5 tab-separated fields: {line:?}"
    );
    let names = |field: &str| -> BTreeSet<String> {
        match field {
            "-" => BTreeSet::new(),
            list => list.split(',').map(str::to_string).collect(),
        }
    };
    let env = match fields[1] {
        "-" => BTreeMap::new(),
        list => list
            .split(';')
            .map(|entry| {
                let (key, value) = entry.split_once('=').unwrap();
                (key.to_string(), value.to_string())
            })
            .collect(),
    };
    MatchCase {
        number,
        line,
        input: fields[0],
        env,
        expected: fields[2],
        matched: names(fields[3]),
        unmatched: names(fields[4]),
    }
}

/// Checks one row and returns what went wrong.
fn check_match_case(lexer: &Lexer, case: &MatchCase) -> Option<String> {
    let prefix = format!("line {} {:?}", case.number, case.line);
    let outcome = lexer.process_word(case.input, &case.env);

    if let Some(rest) = case.expected.strip_prefix("ERROR") {
        let err = match outcome {
            Ok(expansion) => {
                return Some(format!("{prefix}: expected an error, got {expansion:?}"));
            }
            Err(err) => err,
        };
        let needle = rest
            .trim()
            .strip_prefix("containing \"")
            .and_then(|rest| rest.strip_suffix('"'));
        if let Some(needle) = needle
            && !err.to_string().contains(needle)
        {
            return Some(format!(
                "{prefix}: error `{err}` does not contain {needle:?}"
            ));
        }
        return None;
    }

    let expected = case
        .expected
        .strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'))
        .unwrap_or_else(|| panic!("{prefix}: expected field is neither <…> nor ERROR"));
    let expansion = match outcome {
        Ok(expansion) => expansion,
        Err(err) => {
            return Some(format!(
                "{prefix}: expected {expected:?}, got error `{err}`"
            ));
        }
    };
    if expansion.value != expected {
        return Some(format!(
            "{prefix}: expected {expected:?}, got {:?}",
            expansion.value
        ));
    }
    // The rows taken from BuildKit's required-variable test (`${VAR?msg}`,
    // `${VAR:?msg}`) list no names because that test does not check them.
    // `required_variable_sets` below checks them instead.
    if case.input.starts_with("${VAR") {
        return None;
    }
    if expansion.matched() != case.matched || expansion.unset != case.unmatched {
        return Some(format!(
            "{prefix}: expected matched {:?} and unmatched {:?}, got {:?} and {:?}",
            case.matched,
            case.unmatched,
            expansion.matched(),
            expansion.unset
        ));
    }
    None
}

#[test]
fn matches_fixture() {
    let (path, text) = fixture("matches.tsv");
    let lexer = Lexer::new('\\');
    let mut failures = Vec::new();
    let mut checked = 0;

    let rows = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.starts_with('#') && !line.trim().is_empty())
        .skip(1);
    for (index, line) in rows {
        let case = parse_match_case(index + 1, line);
        checked += 1;
        failures.extend(check_match_case(&lexer, &case));
    }
    report(&path, checked, failures);
}

fn expand(word: &str, env: &[(&str, &str)]) -> Expansion {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    Lexer::new('\\')
        .process_word(word, &env)
        .unwrap_or_else(|err| panic!("{word:?} failed: {err}"))
}

#[test]
fn sets_record_set_and_unset_names() {
    let expansion = expand("$A ${B} ${C:-x}", &[("A", "1"), ("B", "")]);
    assert_eq!(expansion.value, "1  x");
    assert_eq!(expansion.used, set(&["A", "B", "C"]));
    assert_eq!(expansion.unset, set(&["C"]));
    assert_eq!(expansion.matched(), set(&["A", "B"]));
}

#[test]
fn sets_include_unused_operands() {
    // The default is expanded even though `A` is set, as in BuildKit.
    let expansion = expand("${A:-$B}", &[("A", "1")]);
    assert_eq!(expansion.value, "1");
    assert_eq!(expansion.used, set(&["A", "B"]));
    assert_eq!(expansion.unset, set(&["B"]));
}

#[test]
fn sets_skip_single_quoted_names() {
    let expansion = expand("'$A' \"$B\" \\$C", &[]);
    assert_eq!(expansion.value, "$A  $C");
    assert_eq!(expansion.used, set(&["B"]));
    assert_eq!(expansion.unset, set(&["B"]));
}

#[test]
fn sets_record_special_parameters() {
    let expansion = expand("$1$@${#}", &[]);
    assert_eq!(expansion.value, "");
    assert_eq!(expansion.unset, set(&["1", "@", "#"]));
}

#[test]
fn sets_record_pattern_names() {
    let expansion = expand("${A#$P}${A/$Q/$R}", &[("A", "xy"), ("P", "x")]);
    assert_eq!(expansion.value, "yxy");
    assert_eq!(expansion.used, set(&["A", "P", "Q", "R"]));
    assert_eq!(expansion.unset, set(&["Q", "R"]));
}

#[test]
fn sets_empty_without_variables() {
    let expansion = expand("plain 'text' $ $. \\$X", &[]);
    assert_eq!(expansion.value, "plain text $ $. $X");
    assert!(expansion.used.is_empty());
    assert!(expansion.unset.is_empty());
}

#[test]
fn required_variable_sets() {
    let expansion = expand(
        "${VAR:?message here$ARG}",
        &[("VAR", "plain"), ("ARG", "x")],
    );
    assert_eq!(expansion.value, "plain");
    assert_eq!(expansion.used, set(&["VAR", "ARG"]));
    assert!(expansion.unset.is_empty());

    let expansion = expand("${VAR?message here$ARG}", &[("VAR", ""), ("ARG", "x")]);
    assert_eq!(expansion.value, "");
    assert_eq!(expansion.used, set(&["VAR", "ARG"]));
    assert!(expansion.unset.is_empty());
}

#[test]
fn required_variable_errors() {
    let lexer = Lexer::new('\\');
    let env: Vec<String> = vec!["EMPTY=".to_string()];
    let cases = [
        ("${UNSET?}", "UNSET", "is not allowed to be unset"),
        ("${UNSET:?}", "UNSET", "is not allowed to be unset"),
        ("${EMPTY:?}", "EMPTY", "is not allowed to be empty"),
        ("${EMPTY:?set EMPTY first}", "EMPTY", "set EMPTY first"),
    ];
    for (word, name, message) in cases {
        let err = lexer.process_word(word, &env).unwrap_err();
        assert_eq!(err.word, word);
        assert_eq!(
            err.kind,
            ShellErrorKind::Required {
                name: name.to_string(),
                message: message.to_string()
            },
            "word {word:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("Failed to expand `{word}`: {name}: {message}")
        );
    }
}

#[test]
fn env_list_later_entry_wins() {
    let env: Vec<String> = ["car=hat", "car=bike", "bare"]
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(Env::get(&env, "car"), Some("bike".to_string()));
    assert_eq!(Env::get(&env, "bare"), Some(String::new()));
    assert_eq!(Env::get(&env, "ca"), None);
    let pairs = vec![
        ("a".to_string(), "1".to_string()),
        ("a".to_string(), "2".to_string()),
    ];
    assert_eq!(Env::get(&pairs, "a"), Some("2".to_string()));
}
