//! Shell patterns of `${VAR#pat}`, `${VAR%pat}` and `${VAR/pat/repl}`.
//!
//! A pattern is translated into a regular expression, as BuildKit does: `*`
//! matches any string, `?` any one character, and `\*`, `\?`, `\\` match
//! those characters. Bracket expressions (`[a-z]`) are not supported, so
//! `[` and `]` match themselves.

use regex::Regex;

/// The byte order mark. Go's `text/scanner`, which BuildKit reads words and
/// patterns with, drops it when it is the first character.
pub(super) const BYTE_ORDER_MARK: char = '\u{feff}';

/// Translates `pattern` into a regular expression. `greedy` makes `*`
/// match the longest string instead of the shortest, and `anchored` makes
/// the expression match only at the start of the value.
fn pattern_to_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<Regex, String> {
    let mut chars = pattern
        .strip_prefix(BYTE_ORDER_MARK)
        .unwrap_or(pattern)
        .chars()
        .peekable();
    let mut expression = String::with_capacity(pattern.len() + 4);
    if anchored {
        expression.push('^');
    }
    let star = if greedy { ".*" } else { ".*?" };

    while let Some(ch) = chars.next() {
        match ch {
            '*' => expression.push_str(star),
            '?' => expression.push('.'),
            '\\' => {
                // `\}` and `\/` keep the closing brace or slash of `${…}`
                // from ending the pattern. The backslash is not part of it.
                if matches!(chars.peek(), Some('}' | '/')) {
                    continue;
                }
                match chars.next() {
                    Some(escaped @ ('*' | '?' | '\\')) => {
                        expression.push('\\');
                        expression.push(escaped);
                    }
                    Some(other) => {
                        return Err(format!(
                            "invalid escape `\\{other}`: only `\\*`, `\\?` and `\\\\` may be escaped"
                        ));
                    }
                    None => return Err("the pattern ends with a lone `\\`".to_string()),
                }
            }
            '[' | ']' | '{' | '}' | '.' | '+' | '(' | ')' | '|' | '^' | '$' => {
                expression.push('\\');
                expression.push(ch);
            }
            _ => expression.push(ch),
        }
    }

    Regex::new(&expression).map_err(|err| err.to_string())
}

/// Removes the shortest (or, when `greedy`, the longest) prefix of `value`
/// that matches `pattern`. A value that does not match is returned whole.
pub(super) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let regex = pattern_to_regex(pattern, greedy, true)?;
    Ok(match regex.find(value) {
        Some(found) => value[found.end()..].to_string(),
        None => value.to_string(),
    })
}

/// Removes the shortest (or longest) suffix of `value` that matches
/// `pattern`. A regular expression cannot search for the shortest match
/// that ends the string, so both are reversed and the prefix is trimmed.
pub(super) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let reversed_value: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed_value, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverses a pattern but keeps each `\x` escape in order, so `a\*c`
/// becomes `c\*a`. A trailing lone `\` moves to the front.
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens: Vec<&[char]> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let len = if chars[i] == '\\' && i + 1 < chars.len() {
            2
        } else {
            1
        };
        tokens.push(&chars[i..i + len]);
        i += len;
    }
    tokens.iter().rev().flat_map(|token| token.iter()).collect()
}

/// Replaces the first match of `pattern` in `value` with `replacement`,
/// taken literally.
pub(super) fn replace_first(
    pattern: &str,
    value: &str,
    replacement: &str,
) -> Result<String, String> {
    let regex = pattern_to_regex(pattern, true, false)?;
    Ok(match regex.find(value) {
        Some(found) => format!(
            "{}{replacement}{}",
            &value[..found.start()],
            &value[found.end()..]
        ),
        None => value.to_string(),
    })
}

/// Replaces every match of `pattern` in `value`. As in Go's
/// `Regexp.ReplaceAllString`, which BuildKit calls here, `$0` and `${0}` in
/// `replacement` insert the matched text, `$$` inserts `$`, and other group
/// references insert nothing, because the expression has no groups.
pub(super) fn replace_all(pattern: &str, value: &str, replacement: &str) -> Result<String, String> {
    let regex = pattern_to_regex(pattern, true, false)?;
    let mut output = String::with_capacity(value.len());
    let mut search_from = 0;
    let mut last_match_end = 0;

    while search_from <= value.len() {
        let Some(found) = regex.find_at(value, search_from) else {
            break;
        };
        output.push_str(&value[last_match_end..found.start()]);
        // An empty match right after another match is not replaced, so a
        // pattern such as `*` replaces `abc` once and not twice.
        if found.end() > last_match_end || found.start() == 0 {
            expand_template(&mut output, replacement, found.as_str());
        }
        last_match_end = found.end();

        // Step past the match, and at least one character past an empty one.
        let width = value[search_from..]
            .chars()
            .next()
            .map_or(1, char::len_utf8);
        search_from = if search_from + width > found.end() {
            search_from + width
        } else {
            found.end()
        };
    }
    output.push_str(&value[last_match_end..]);
    Ok(output)
}

/// Appends `template` to `output`, expanding `$name`, `${name}` and `$$` the
/// way Go's `Regexp.Expand` does for an expression without groups.
fn expand_template(output: &mut String, template: &str, matched: &str) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        output.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];

        if let Some(after) = rest.strip_prefix('$') {
            output.push('$');
            rest = after;
            continue;
        }
        match parse_group_reference(rest) {
            Some((name, after)) => {
                if name == "0" {
                    output.push_str(matched);
                }
                rest = after;
            }
            // Not a reference, so the `$` is literal text.
            None => output.push('$'),
        }
    }
    output.push_str(rest);
}

/// Splits `$name` or `${name}` (with the `$` already removed) into the name
/// and the text after it. A name is letters, digits and `_`.
fn parse_group_reference(text: &str) -> Option<(&str, &str)> {
    let (braced, body) = match text.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let name_len: usize = body
        .chars()
        .take_while(|c| super::is_go_letter(*c) || super::is_go_digit(*c) || *c == '_')
        .map(char::len_utf8)
        .sum();
    if name_len == 0 {
        return None;
    }
    let (name, after) = body.split_at(name_len);
    if braced {
        let after = after.strip_prefix('}')?;
        return Some((name, after));
    }
    Some((name, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_translation() {
        let cases = [
            ("*", "^.*"),
            ("?", "^."),
            ("\\*", "^\\*"),
            (
                "(()[]{\\}^$.\\*\\?|\\\\",
                "^\\(\\(\\)\\[\\]\\{\\}\\^\\$\\.\\*\\?\\|\\\\",
            ),
        ];
        for (pattern, expected) in cases {
            let regex = pattern_to_regex(pattern, true, true).unwrap();
            assert_eq!(regex.as_str(), expected, "pattern {pattern:?}");
        }
    }

    #[test]
    fn regex_translation_rejects_escapes() {
        for pattern in ["\\", "\\x", "\\\\\\"] {
            assert!(
                pattern_to_regex(pattern, true, true).is_err(),
                "pattern {pattern:?}"
            );
        }
    }

    #[test]
    fn pattern_reversal() {
        let cases = [
            ("a\\*c", "c\\*a"),
            ("\\\\\\ab", "b\\a\\\\"),
            ("ab\\", "\\ba"),
            ("👽\\🚀🖖", "🖖\\🚀👽"),
            ("\\\\b", "b\\\\"),
        ];
        for (pattern, expected) in cases {
            assert_eq!(reverse_pattern(pattern), expected, "pattern {pattern:?}");
        }
    }

    #[test]
    fn replace_all_empty_matches() {
        assert_eq!(replace_all("", "abc", "-").unwrap(), "-a-b-c-");
        assert_eq!(replace_all("*", "abc", "-").unwrap(), "-");
        assert_eq!(replace_all("b*", "abc", "-").unwrap(), "a-");
    }

    #[test]
    fn template_expansion() {
        let cases = [
            ("<$0>", "<x>"),
            ("<${0}>", "<x>"),
            ("$$", "$"),
            ("$1", ""),
            ("$00", ""),
            ("$name.", "."),
            ("${0", "${0"),
            ("$.", "$."),
            ("$", "$"),
            ("${a-b}", "${a-b}"),
        ];
        for (template, expected) in cases {
            let mut output = String::new();
            expand_template(&mut output, template, "x");
            assert_eq!(output, expected, "template {template:?}");
        }
    }
}
