//! Parser directives: `# syntax=`, `# escape=` and `# check=` comments at
//! the very top of a Dockerfile.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

pub(crate) const SYNTAX: &str = "syntax";
pub(crate) const ESCAPE: &str = "escape";
pub(crate) const CHECK: &str = "check";

/// Directive names BuildKit recognises. Any other `# key=value` line ends the
/// directive block.
const KNOWN: [&str; 3] = [SYNTAX, ESCAPE, CHECK];

// `\s` in Go's RE2 is ASCII-only, so the class is spelled out.
static HASH_DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| directive_regex("#"));
static SLASH_DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| directive_regex("//"));

fn directive_regex(comment: &str) -> Regex {
    let pattern = format!(
        r"^{comment}[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$"
    );
    Regex::new(&pattern).expect("directive regex is valid")
}

/// One directive found at the top of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// The name, lowercased.
    pub name: String,
    /// The value as written, trimmed (`dockerfile:1 // opts`).
    pub value: String,
    /// The 1-based line of the directive.
    pub line: usize,
}

/// A line-by-line directive reader with BuildKit's rules: the block ends at
/// the first line that is not a known `key=value` comment, and a repeated
/// directive is an error.
pub(crate) struct DirectiveParser {
    regex: &'static Regex,
    line: usize,
    done: bool,
    seen: HashSet<String>,
}

impl DirectiveParser {
    pub(crate) fn new() -> Self {
        DirectiveParser::with_regex(&HASH_DIRECTIVE, 0)
    }

    fn with_regex(regex: &'static Regex, line: usize) -> Self {
        DirectiveParser {
            regex,
            line,
            done: false,
            seen: HashSet::new(),
        }
    }

    /// Reads the next physical line (newline already trimmed). Returns the
    /// directive it holds, or an error naming a repeated directive.
    pub(crate) fn parse_line(&mut self, line: &str) -> Result<Option<Directive>, String> {
        self.line += 1;
        if self.done {
            return Ok(None);
        }
        let Some(captures) = self.regex.captures(line) else {
            self.done = true;
            return Ok(None);
        };
        let name = captures[1].to_ascii_lowercase();
        if !KNOWN.contains(&name.as_str()) {
            self.done = true;
            return Ok(None);
        }
        if !self.seen.insert(name.clone()) {
            return Err(format!(
                "Only one `{name}` parser directive can be used; delete the repeated `# {name}=` line"
            ));
        }
        Ok(Some(Directive {
            name,
            value: captures[2].to_string(),
            line: self.line,
        }))
    }

    fn parse_all(mut self, text: &str) -> Vec<Directive> {
        let mut found = Vec::new();
        for line in text.lines() {
            if self.done {
                break;
            }
            match self.parse_line(line) {
                Ok(Some(directive)) => found.push(directive),
                Ok(None) => {}
                Err(_) => break,
            }
        }
        found
    }
}

/// Lists the `#` directives at the top of `text`, in order, stopping at the
/// first line that is not one, or at a repeated directive.
pub fn parse_directives(text: &str) -> Vec<Directive> {
    DirectiveParser::new().parse_all(strip_bom(text))
}

/// A directive found by [`detect_directive`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectedDirective {
    /// The value up to its first space (`dockerfile:1` in
    /// `# syntax=dockerfile:1 // opts`).
    pub value: String,
    /// The whole value as written.
    pub cmdline: String,
    /// The 1-based line, or 0 for the JSON document form.
    pub line: usize,
}

/// Looks for directive `key` the way BuildKit's frontend selection does: a
/// leading `#!` line is skipped, then `# key=` comments are tried, then
/// `// key=` comments, then a whole-file JSON object with a string `key`.
pub fn detect_directive(key: &str, text: &str) -> Option<DetectedDirective> {
    let text = strip_bom(text);
    let (text, skipped) = match text.split_once('\n') {
        Some((first, rest)) if first.starts_with("#!") => (rest, 1),
        None if text.starts_with("#!") => ("", 1),
        _ => (text, 0),
    };

    for regex in [&*HASH_DIRECTIVE, &*SLASH_DIRECTIVE] {
        let found = DirectiveParser::with_regex(regex, skipped).parse_all(text);
        if let Some(directive) = found.into_iter().find(|d| d.name == key) {
            let value = directive.value.split(' ').next().unwrap_or("").to_string();
            return Some(DetectedDirective {
                value,
                cmdline: directive.value,
                line: directive.line,
            });
        }
    }

    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    let value = object.get(key)?.as_str()?.to_string();
    Some(DetectedDirective {
        value: value.clone(),
        cmdline: value,
        line: skipped,
    })
}

/// Returns the frontend image named by a `syntax` directive, if any.
pub fn detect_syntax(text: &str) -> Option<DetectedDirective> {
    detect_directive(SYNTAX, text)
}

pub(crate) fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}
