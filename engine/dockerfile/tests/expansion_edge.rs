//! Corner cases of BuildKit's word expansion that the upstream fixtures do
//! not cover. Each expected value follows from BuildKit's
//! `frontend/dockerfile/shell/lex.go`, including where it differs from a
//! POSIX shell.

use std::collections::BTreeMap;

use strata_dockerfile::shell::{Lexer, ShellErrorKind};

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// Expands each `(word, expected)` with `lexer` and reports every mismatch.
fn check(lexer: &Lexer, variables: &[(&str, &str)], cases: &[(&str, &str)]) {
    let variables = env(variables);
    let mut failures = Vec::new();
    for (word, expected) in cases {
        match lexer.process_word(word, &variables) {
            Ok(expansion) if expansion.value == *expected => {}
            outcome => failures.push(format!("{word:?}: expected {expected:?}, got {outcome:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn error_kind(lexer: &Lexer, variables: &[(&str, &str)], word: &str) -> ShellErrorKind {
    match lexer.process_word(word, &env(variables)) {
        Ok(expansion) => panic!("{word:?}: expected an error, got {expansion:?}"),
        Err(err) => {
            assert_eq!(err.word, word);
            err.kind
        }
    }
}

fn words(lexer: &Lexer, variables: &[(&str, &str)], word: &str) -> Vec<String> {
    lexer
        .process_words(word, &env(variables))
        .unwrap_or_else(|err| panic!("{word:?} failed: {err}"))
}

#[test]
fn backtick_escape_makes_backslash_ordinary() {
    let lexer = Lexer::new('`');
    check(
        &lexer,
        &[("A", "1")],
        &[
            (r"C:\path\to", r"C:\path\to"),
            ("a`$A", "a$A"),
            ("a\\$A", "a\\1"),
            ("\"a`\"b\"", "a\"b"),
            // Inside double quotes the escape only escapes `"`, `$` and
            // itself, so before other characters it is kept.
            ("\"a`x\"", "a`x"),
            ("\"a``\"", "a`"),
            ("\"a\\\"", "a\\"),
            ("a`", "a"),
            ("``", "`"),
            ("'a`b'", "a`b"),
        ],
    );
}

#[test]
fn backslash_escape_rules() {
    let lexer = Lexer::new('\\');
    check(
        &lexer,
        &[("A", "1")],
        &[
            ("abc\\", "abc"),
            ("\"a\\b\"", "a\\b"),
            ("\"\\\\\"", "\\"),
            ("\"\\$A\"", "$A"),
            ("\\\\$A", "\\1"),
            ("a\\`b", "a`b"),
        ],
    );
}

#[test]
fn dollar_without_name_is_literal() {
    let lexer = Lexer::new('\\');
    check(
        &lexer,
        &[("a", "1")],
        &[
            ("$", "$"),
            ("$ x", "$ x"),
            ("$'a'", "$a"),
            ("$\"a\"", "$a"),
            ("a$/b", "a$/b"),
            ("${a}$", "1$"),
        ],
    );
}

#[test]
fn names_use_go_letter_and_digit_classes() {
    let lexer = Lexer::new('\\');
    check(
        &lexer,
        &[("é", "e"), ("변수", "v"), ("٣", "three")],
        &[
            ("$é!", "e!"),
            ("$변수", "v"),
            // `²` is a number but not a decimal digit, and `Ⅻ` is a letter
            // number, not a letter, so neither starts a name.
            ("$²", "$²"),
            ("$Ⅻ", "$Ⅻ"),
            // An Arabic-Indic digit is a decimal digit: a positional
            // parameter name.
            ("$٣", "three"),
        ],
    );
}

#[test]
fn positional_parameters_read_all_digits() {
    let lexer = Lexer::new('\\');
    check(
        &lexer,
        &[("1", "one"), ("10", "ten")],
        &[
            ("$1", "one"),
            ("$10", "ten"),
            ("$1x", "onex"),
            ("${1}0", "one0"),
        ],
    );
    let kind = error_kind(&lexer, &[], "${1abc}");
    assert_eq!(
        kind,
        ShellErrorKind::UnsupportedModifier {
            name: "1".to_string(),
            modifier: "a".to_string()
        }
    );
}

#[test]
fn special_parameters_are_names() {
    let lexer = Lexer::new('\\');
    check(
        &lexer,
        &[("?", "0"), ("$", "42")],
        &[
            ("$?", "0"),
            ("$$", "42"),
            ("$#x", "x"),
            ("${##}", ""),
            ("$$$", "42$"),
        ],
    );
    let expansion = lexer.process_word("$@$*", &env(&[])).unwrap();
    assert_eq!(expansion.unset.len(), 2);
    assert!(expansion.unset.contains("@"));
    assert!(expansion.unset.contains("*"));
}

#[test]
fn length_and_assignment_are_rejected() {
    let lexer = Lexer::new('\\');
    let cases = [
        ("${#A}", "#", "A"),
        ("${A=x}", "A", "="),
        ("${A:=x}", "A", ":="),
        ("${A::-x}", "A", "::"),
        ("${A:#x}", "A", ":#"),
        ("${A:%x}", "A", ":%"),
        ("${A!}", "A", "!"),
        ("${A:/x/y}", "A", ":/"),
    ];
    for (word, name, modifier) in cases {
        let kind = error_kind(&lexer, &[("A", "abc")], word);
        assert_eq!(
            kind,
            ShellErrorKind::UnsupportedModifier {
                name: name.to_string(),
                modifier: modifier.to_string()
            },
            "word {word:?}"
        );
    }
}

#[test]
fn pattern_operator_doubles_from_expansion() {
    // The doubled operator is read after expansion, so a variable can make
    // the match greedy.
    let lexer = Lexer::new('\\');
    check(
        &lexer,
        &[("A", "aXbXc"), ("P", "#*X"), ("S", "%X*")],
        &[
            ("${A#*X}", "bXc"),
            ("${A#$P}", "c"),
            ("${A%X*}", "aXb"),
            ("${A%$S}", "a"),
        ],
    );
}

#[test]
fn quotes_in_patterns_are_removed() {
    // Unlike a shell, a quoted `*` is still a wildcard.
    let lexer = Lexer::new('\\');
    check(
        &lexer,
        &[("A", "abc")],
        &[
            ("${A#'*'}", "abc"),
            ("${A##'*'}", ""),
            ("${A#\"a\"}", "bc"),
            ("${A:-'}'}", "abc"),
            ("${B:-'}'}", "}"),
            ("${B:-\"$A}\"}", "abc}"),
        ],
    );
}

#[test]
fn pattern_escapes() {
    let lexer = Lexer::new('\\');
    check(
        &lexer,
        &[("A", "a}b"), ("D", "$x"), ("S", "a*b*")],
        &[
            ("${A#a\\}}", "b"),
            ("${D#$}", "x"),
            ("${S#a\\*}", "b*"),
            ("${S%\\*}", "a*b"),
            ("${S%%\\**}", "a"),
            ("${S#a?}", "b*"),
            // `[` and `]` are literal: there are no bracket expressions.
            ("${A#[a]}", "a}b"),
        ],
    );

    // `\$` reaches the pattern as written, and only `\*`, `\?`, `\\`, `\}`
    // and `\/` are valid there.
    for word in ["${D#\\$}", "${A#\\x}", "${A#$P}", "${A/\\x/y}"] {
        let kind = error_kind(&lexer, &[("A", "a"), ("D", "$x"), ("P", "\\d")], word);
        assert!(
            matches!(kind, ShellErrorKind::InvalidPattern { .. }),
            "{word:?} gave {kind:?}"
        );
    }
}

#[test]
fn unterminated_pattern_escape_is_missing_brace() {
    let lexer = Lexer::new('\\');
    let kind = error_kind(&lexer, &[("A", "a")], "${A#a\\}");
    assert_eq!(
        kind,
        ShellErrorKind::MissingBrace {
            name: "A".to_string()
        }
    );
}

#[test]
fn substitution_replacements() {
    let lexer = Lexer::new('\\');
    check(
        &lexer,
        &[
            ("A", "axbx"),
            ("R", "[$0]"),
            ("D", "$$"),
            ("E", ""),
            ("S", "/a/b"),
        ],
        &[
            // Only replace-all expands `$0` (the match) and `$$` in the
            // replacement, as Go's `Regexp.ReplaceAllString` does.
            ("${A/x/$R}", "a[$0]bx"),
            ("${A//x/$R}", "a[x]b[x]"),
            ("${A//x/$D}", "a$b$"),
            ("${A/x/$D}", "a$$bx"),
            // An empty pattern matches between every character.
            ("${A//$E/-}", "-a-x-b-x-"),
            ("${A/$E/-}", "-axbx"),
            ("${A//*/-}", "-"),
            ("${A//b*/-}", "ax-"),
            ("${A/x*/-}", "a-"),
            ("${A/?/-}", "-xbx"),
            // The escape before `/` or `}` stays in the replacement.
            ("${S//\\//-}", "-a-b"),
            ("${S/a/\\}x}", "/\\}x/b"),
            ("${S/a/\\-}", "/\\-/b"),
            ("${U//a/b}", ""),
        ],
    );
}

#[test]
fn substitution_errors() {
    let lexer = Lexer::new('\\');
    let kind = error_kind(&lexer, &[("A", "a")], "${A/x");
    assert_eq!(
        kind,
        ShellErrorKind::MissingPatternSeparator {
            name: "A".to_string()
        }
    );
    let kind = error_kind(&lexer, &[("A", "a")], "${A/x/y");
    assert_eq!(
        kind,
        ShellErrorKind::MissingBrace {
            name: "A".to_string()
        }
    );
}

#[test]
fn nested_operands() {
    let lexer = Lexer::new('\\');
    check(
        &lexer,
        &[("A", "x"), ("E", "")],
        &[
            ("${U:-${V:-${W:-deep}}}", "deep"),
            ("${A:+$A$A}", "xx"),
            ("${E-unset}", ""),
            ("${E:-empty}", "empty"),
            ("${E+set}", "set"),
            ("${E:+set}", ""),
            ("${E?}", ""),
            ("${U:-a}${U-b}", "ab"),
        ],
    );
}

#[test]
fn unused_operand_still_fails() {
    // The operand is expanded before the variable is checked, so an error
    // inside it fails the word even when the variable is set.
    let lexer = Lexer::new('\\');
    let kind = error_kind(&lexer, &[("A", "x")], "${A:-${U:?needed}}");
    assert_eq!(
        kind,
        ShellErrorKind::Required {
            name: "U".to_string(),
            message: "needed".to_string()
        }
    );
}

#[test]
fn quote_error_inside_braces_is_missing_brace() {
    let lexer = Lexer::new('\\');
    let kind = error_kind(&lexer, &[], "${A:-'x}");
    assert_eq!(
        kind,
        ShellErrorKind::MissingBrace {
            name: "A".to_string()
        }
    );
    let kind = error_kind(&lexer, &[], "'abc");
    assert_eq!(kind, ShellErrorKind::UnterminatedSingleQuote);
    let kind = error_kind(&lexer, &[], "\"abc\\\"");
    assert_eq!(kind, ShellErrorKind::UnterminatedDoubleQuote);
}

#[test]
fn bad_substitution_errors() {
    let lexer = Lexer::new('\\');
    for word in ["${}", "a${{A}}", "${:-x}"] {
        let kind = error_kind(&lexer, &[], word);
        assert!(
            matches!(kind, ShellErrorKind::BadSubstitution { .. }),
            "{word:?} gave {kind:?}"
        );
    }
    let kind = error_kind(&lexer, &[], "${");
    assert!(
        matches!(kind, ShellErrorKind::MissingBrace { .. }),
        "{kind:?}"
    );
}

#[test]
fn error_message_names_word_and_variable() {
    let lexer = Lexer::new('\\');
    let err = lexer
        .process_word("x${TAG:?set TAG to a version}", &env(&[]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Failed to expand `x${TAG:?set TAG to a version}`: TAG: set TAG to a version"
    );
    let err = lexer.process_word("${A=1}", &env(&[])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Failed to expand `${A=1}`: unsupported modifier `=`")
    );
}

#[test]
fn variable_operands_split_into_words() {
    // The result of `${…}` is split like an unquoted variable, even when the
    // operand was quoted.
    let lexer = Lexer::new('\\');
    assert_eq!(words(&lexer, &[], "${A:-\"x y\"}"), ["x", "y"]);
    assert_eq!(words(&lexer, &[], "\"${A:-x y}\""), ["x y"]);
    assert_eq!(words(&lexer, &[("A", "  a  b  ")], "$A"), ["a", "b"]);
    assert_eq!(
        words(&lexer, &[("A", "  a  b  ")], "<$A>"),
        ["<", "a", "b", ">"]
    );
}

#[test]
fn empty_quotes_produce_no_word() {
    let lexer = Lexer::new('\\');
    assert_eq!(words(&lexer, &[], "a\"\"b"), ["ab"]);
    assert_eq!(words(&lexer, &[], "\"\" a"), ["a"]);
    assert!(words(&lexer, &[], "''").is_empty());
    assert!(words(&lexer, &[], "   ").is_empty());
    assert_eq!(words(&lexer, &[], "'' '' x"), ["x"]);
}

#[test]
fn unicode_whitespace_splits_words() {
    let lexer = Lexer::new('\\');
    assert_eq!(words(&lexer, &[], "a\tb\nc"), ["a", "b", "c"]);
    assert_eq!(words(&lexer, &[], "a\u{a0}b\u{3000}c"), ["a", "b", "c"]);
    assert_eq!(words(&lexer, &[], "a\\\u{a0}b"), ["a\u{a0}b"]);
}

#[test]
fn leading_byte_order_mark_dropped() {
    let lexer = Lexer::new('\\');
    check(
        &lexer,
        &[("A", "abc")],
        &[
            ("\u{feff}x", "x"),
            ("x\u{feff}", "x\u{feff}"),
            // Go's scanner drops the mark at the start of a pattern too.
            ("${A#\u{feff}a}", "bc"),
        ],
    );
}

#[test]
fn skip_unset_env_keeps_references() {
    let lexer = Lexer::new('\\').skip_unset_env(true);
    check(
        &lexer,
        &[("A", "1")],
        &[
            ("$A $X", "1 $X"),
            ("${X}", "${X}"),
            ("${X:-a$Y$A}", "${X:-a$Y1}"),
            ("${X-a}", "${X-a}"),
            // BuildKit writes one `/` for replace-all as well.
            ("${X//a/b}", "${X/a/b}"),
            ("${A//1/2}", "2"),
        ],
    );
}

#[test]
fn skip_process_quotes_for_heredocs() {
    let lexer = Lexer::new('\\').skip_process_quotes(true);
    check(
        &lexer,
        &[("A", "1")],
        &[
            ("echo '$A' \"$A\"", "echo '1' \"1\""),
            ("echo \\$A \\\"x\\\"", "echo $A \"x\""),
            ("it's", "it's"),
        ],
    );
}

#[test]
fn raw_quotes_and_escapes() {
    let variables = &[("A", "1")];
    check(
        &Lexer::new('\\').raw_quotes(true),
        variables,
        &[("'a'\"$A\"", "'a'\"1\""), ("a\\ b", "a b")],
    );
    check(
        &Lexer::new('\\').raw_escapes(true),
        variables,
        &[("a\\ b", "a\\ b"), ("\\$A", "\\$A"), ("\"\\$A\"", "\\$A")],
    );
}

#[test]
fn env_list_forms() {
    let lexer = Lexer::new('\\');
    let list: Vec<String> = vec!["A=1".to_string(), "A=2".to_string(), "B".to_string()];
    let expansion = lexer.process_word("$A-${B-unset}-$C", &list).unwrap();
    assert_eq!(expansion.value, "2--");
    assert!(expansion.unset.contains("C"));
    assert!(!expansion.unset.contains("B"));

    let slice: &[String] = &list;
    assert_eq!(lexer.process_word("$A", &slice).unwrap().value, "2");

    let map: std::collections::HashMap<String, String> =
        [("A".to_string(), "h".to_string())].into_iter().collect();
    assert_eq!(lexer.process_word("$A", &map).unwrap().value, "h");
}
