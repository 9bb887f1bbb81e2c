//! One `.dockerignore` pattern compiled the way `moby/patternmatcher`
//! compiles it: Go `filepath.Match` syntax plus `**`, turned into an exact,
//! prefix, suffix or regex match.

use regex::Regex;

/// The test a compiled pattern applies to a path.
#[derive(Clone, Debug)]
enum Matcher {
    /// The pattern has no wildcard: the path must equal it.
    Exact(String),
    /// `dir/**`: the path must start with `dir/`.
    Prefix(String),
    /// `**` followed by literal text: the path must end with that text.
    Suffix(String),
    Regex(Regex),
}

#[derive(Clone, Debug)]
pub(super) struct Pattern {
    matcher: Matcher,
}

impl Pattern {
    /// Compiles a cleaned pattern (without its `!`). Rejects what Go's
    /// `filepath.Match` rejects, and character class ranges whose ends are
    /// reversed, which Go's regexp rejects when the pattern is first used.
    pub(super) fn compile(pattern: &str) -> Result<Pattern, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut regex = String::from("^");
        let mut kind = Kind::Exact;
        let mut at = 0;
        let mut token = 0;

        while at < chars.len() {
            let c = chars[at];
            at += 1;
            match c {
                '*' if chars.get(at) == Some(&'*') => {
                    at += 1;
                    // `**/` is treated as `**`.
                    if chars.get(at) == Some(&'/') {
                        at += 1;
                    }
                    if at == chars.len() {
                        if kind == Kind::Exact {
                            kind = Kind::Prefix;
                        } else {
                            regex.push_str(".*");
                            kind = Kind::Regex;
                        }
                    } else {
                        regex.push_str("(.*/)?");
                        kind = Kind::Regex;
                    }
                    if token == 0 {
                        kind = Kind::Suffix;
                    }
                }
                '*' => {
                    regex.push_str("[^/]*");
                    kind = Kind::Regex;
                }
                '?' => {
                    regex.push_str("[^/]");
                    kind = Kind::Regex;
                }
                '\\' => {
                    let Some(&escaped) = chars.get(at) else {
                        return Err("the pattern ends with an unescaped `\\`".to_string());
                    };
                    at += 1;
                    regex.push_str(&regex::escape(&escaped.to_string()));
                    kind = Kind::Regex;
                }
                '[' => {
                    let (class, next) = parse_class(&chars, at)?;
                    regex.push_str(&class);
                    at = next;
                    kind = Kind::Regex;
                }
                ']' => {
                    regex.push_str("\\]");
                    kind = Kind::Regex;
                }
                c => regex.push_str(&regex::escape(&c.to_string())),
            }
            token += 1;
        }

        let matcher = match kind {
            Kind::Exact => Matcher::Exact(pattern.to_string()),
            Kind::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].to_string()),
            Kind::Suffix => {
                let suffix = &pattern[2..];
                Matcher::Suffix(suffix.strip_prefix('/').unwrap_or(suffix).to_string())
            }
            Kind::Regex => {
                regex.push('$');
                Matcher::Regex(Regex::new(&regex).map_err(|e| e.to_string())?)
            }
        };
        Ok(Pattern { matcher })
    }

    pub(super) fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact(exact) => path == exact,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => path.ends_with(suffix.as_str()),
            Matcher::Regex(regex) => regex.is_match(path),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

/// Parses a character class whose `[` is just before `at`, with Go
/// `filepath.Match` rules. A class is an optional `^` and one or more
/// characters or `lo-hi` ranges. Inside it `\` escapes the next character,
/// and an unescaped `-` or `]` may not start an item. Returns the class as a
/// regex and the index after its `]`.
fn parse_class(chars: &[char], mut at: usize) -> Result<(String, usize), String> {
    let mut class = String::from("[");
    if chars.get(at) == Some(&'^') {
        class.push('^');
        at += 1;
    }

    let mut ranges = 0;
    loop {
        if chars.get(at) == Some(&']') && ranges > 0 {
            class.push(']');
            return Ok((class, at + 1));
        }
        let (lo, next) = class_char(chars, at)?;
        at = next;
        let mut hi = lo;
        if chars.get(at) == Some(&'-') {
            (hi, at) = class_char(chars, at + 1)?;
        }
        if lo > hi {
            return Err(format!("the character class range `{lo}-{hi}` is reversed"));
        }
        class.push_str(&regex::escape(&lo.to_string()));
        if hi != lo {
            class.push('-');
            class.push_str(&regex::escape(&hi.to_string()));
        }
        ranges += 1;
    }
}

/// Reads one class character (Go's `getEsc`). Like Go, it fails when the
/// pattern ends right after the character, because the class is then
/// unterminated.
fn class_char(chars: &[char], mut at: usize) -> Result<(char, usize), String> {
    let unterminated = || "a character class is empty or not closed with `]`".to_string();
    match chars.get(at) {
        None => return Err(unterminated()),
        Some('-') | Some(']') => {
            return Err("a character class item starts with an unescaped `-` or `]`".to_string());
        }
        Some('\\') => at += 1,
        Some(_) => {}
    }
    let c = *chars.get(at).ok_or_else(unterminated)?;
    if at + 1 >= chars.len() {
        return Err(unterminated());
    }
    Ok((c, at + 1))
}

/// Cleans a slash-separated path lexically, like Go's `path.Clean`: repeated
/// slashes, `.` elements and `..` after a name are removed, a trailing
/// slash is dropped, and an empty result becomes `.`.
pub(super) fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                // `..` at the root stays at the root.
                _ if rooted => {}
                _ => parts.push(".."),
            },
            name => parts.push(name),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Returns the parent of a slash-separated path like Go's `filepath.Dir`:
/// everything before the last slash, cleaned.
pub(super) fn parent(path: &str) -> String {
    match path.rfind('/') {
        Some(at) => clean(&path[..=at]),
        None => ".".to_string(),
    }
}
