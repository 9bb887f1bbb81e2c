//! `.dockerignore` parsing and matching with Docker's semantics
//! (`moby/patternmatcher` and its `ignorefile` reader).
//!
//! Lines are normalised (comments and blank lines dropped, whitespace
//! trimmed, paths cleaned, one leading `/` removed), and a path is excluded
//! when the last pattern that matches it or one of its parent directories
//! is not a `!` exception.

mod pattern;

use pattern::Pattern;

/// A `.dockerignore` file that cannot be used, with the offending line.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error(".dockerignore:{line}: invalid pattern `{pattern}`: {reason}")]
#[diagnostic(help("fix or remove the pattern; see Go's `filepath.Match` for the syntax"))]
pub struct IgnoreError {
    /// The 1-based line of the pattern in the file.
    pub line: usize,
    /// The pattern after normalisation, `!` included.
    pub pattern: String,
    /// The reason the pattern was rejected.
    pub reason: String,
}

/// The parsed patterns of one `.dockerignore` file.
#[derive(Clone, Debug, Default)]
pub struct DockerIgnore {
    patterns: Vec<String>,
    rules: Vec<Rule>,
}

#[derive(Clone, Debug)]
struct Rule {
    exception: bool,
    /// The cleaned pattern without its `!`.
    text: String,
    pattern: Pattern,
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<DockerIgnore, IgnoreError> {
        let mut ignore = DockerIgnore::default();
        for (index, line) in text.lines().enumerate() {
            let line = if index == 0 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            let Some(normalised) = normalise_line(line) else {
                continue;
            };
            let rule = compile_rule(&normalised).map_err(|reason| IgnoreError {
                line: index + 1,
                pattern: normalised.clone(),
                reason,
            })?;
            ignore.patterns.push(normalised);
            ignore.rules.push(rule);
        }
        Ok(ignore)
    }

    /// Returns the normalised patterns in file order, exceptions with their `!`.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Reports whether `path` (relative to the context root, slash
    /// separated) is left out of the build context. The root itself never
    /// is.
    pub fn is_excluded(&self, path: &str) -> bool {
        if path.is_empty() || path == "." || self.rules.is_empty() {
            return false;
        }
        let parent = pattern::parent(path);
        let ancestors = ancestors(&parent);

        let mut excluded = false;
        for rule in &self.rules {
            // Only a rule that can change the current state needs testing.
            if rule.exception != excluded {
                continue;
            }
            let matched = rule.pattern.matches(path)
                || ancestors
                    .iter()
                    .any(|ancestor| rule.pattern.matches(ancestor));
            if matched {
                excluded = !rule.exception;
            }
        }
        excluded
    }

    /// Reports whether anything below directory `dir` could be kept even
    /// though `dir` is excluded: false only when no exception pattern can
    /// match a path under `dir`, so a context walker may skip reading it.
    pub fn may_include_under(&self, dir: &str) -> bool {
        let dir = dir.trim_matches('/');
        let dir_parts: Vec<&str> = if dir.is_empty() || dir == "." {
            Vec::new()
        } else {
            dir.split('/').collect()
        };
        self.rules
            .iter()
            .filter(|rule| rule.exception)
            .any(|rule| could_match_below(&rule.text, &dir_parts))
    }
}

/// Normalises one raw line like `ignorefile.ReadAll`. Returns `None` for a
/// comment or a blank line.
fn normalise_line(line: &str) -> Option<String> {
    if line.starts_with('#') {
        return None;
    }
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (exception, mut text) = match line.strip_prefix('!') {
        Some(rest) => (true, rest.trim().to_string()),
        None => (false, line.to_string()),
    };
    if !text.is_empty() {
        text = pattern::clean(&text);
        if text.len() > 1 && text.starts_with('/') {
            text.remove(0);
        }
    }
    Some(if exception { format!("!{text}") } else { text })
}

fn compile_rule(normalised: &str) -> Result<Rule, String> {
    let (exception, text) = match normalised.strip_prefix('!') {
        Some("") => {
            return Err("a `!` exception needs a pattern after it, as in `!keep.txt`".to_string());
        }
        Some(rest) => (true, rest),
        None => (false, normalised),
    };
    Ok(Rule {
        exception,
        text: text.to_string(),
        pattern: Pattern::compile(text)?,
    })
}

/// Returns `a`, `a/b`, `a/b/c` for `a/b/c`, and nothing for `.`.
fn ancestors(parent: &str) -> Vec<String> {
    if parent == "." {
        return Vec::new();
    }
    let parts: Vec<&str> = parent.split('/').collect();
    (1..=parts.len()).map(|n| parts[..n].join("/")).collect()
}

/// Reports whether exception `text` could match a path strictly below the
/// directory with components `dir`.
///
/// A pattern without `**` has one segment per path component, so it can
/// only match a deeper path when it has more segments than `dir` and its
/// leading segments match `dir`'s components. A shorter pattern matches
/// `dir` and everything under it alike, so it cannot keep a child of an
/// excluded `dir`. Patterns with negated classes or escapes always give a
/// conservative true, and patterns with `**` give true once the segments
/// before the first `**` match.
fn could_match_below(text: &str, dir: &[&str]) -> bool {
    let segments: Vec<&str> = text.split('/').collect();
    // Negated classes can match `/` and escapes can hide one, so segment
    // counting does not hold for them.
    if text.contains("[^") || text.contains('\\') {
        return true;
    }
    let spanning = segments.iter().position(|segment| segment.contains("**"));
    let fixed = spanning.unwrap_or(segments.len());
    if spanning.is_none() && segments.len() <= dir.len() {
        return false;
    }
    segments
        .iter()
        .zip(dir)
        .take(fixed)
        .all(|(segment, component)| segment_matches(segment, component))
}

fn segment_matches(segment: &str, component: &str) -> bool {
    // A segment that fails to compile on its own is treated as a match so
    // the walker still reads the directory.
    Pattern::compile(segment).map_or(true, |pattern| pattern.matches(component))
}
