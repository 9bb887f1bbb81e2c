//! Recognising `[n]<<[-]WORD` here-document openers in RUN, COPY and ADD.

use crate::ast::Heredoc;

/// Parses one already-split word such as `<<EOF`, `3<<-'END'` or `<< EOF`.
/// Returns `Ok(None)` when the word does not open a here-document and an
/// error when its delimiter is malformed (an unterminated quote).
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, String> {
    let Some(opener) = Opener::parse(word) else {
        return Ok(None);
    };
    opener.build_heredoc(opener.rest)
}

/// Lists the here-documents a shell-form instruction line opens, in order.
/// A line the shell lexer cannot split (an unterminated quote) opens none,
/// as in BuildKit.
pub fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let Ok(words) = shell_words(line, true, true) else {
        return Ok(Vec::new());
    };

    let mut heredocs = Vec::new();
    let mut words = words.iter().peekable();
    while let Some(word) = words.next() {
        let Some(opener) = Opener::parse(word) else {
            continue;
        };
        // `<< EOF` and `<<- EOF` were split into two words by the lexer: the
        // next word is the delimiter, taken whole (`<< -EOF` names `-EOF`).
        let rest = if opener.rest.is_empty() {
            match words.next() {
                Some(next) => next.as_str(),
                None => continue,
            }
        } else {
            opener.rest
        };
        if let Some(heredoc) = opener.build_heredoc(rest)? {
            heredocs.push(heredoc);
        }
    }
    Ok(heredocs)
}

/// The parts of `^(\d*)<<(-?)([^<]*)$`.
struct Opener<'a> {
    file_descriptor: u32,
    chomp: bool,
    rest: &'a str,
}

impl<'a> Opener<'a> {
    fn parse(word: &'a str) -> Option<Self> {
        let digits = word.bytes().take_while(u8::is_ascii_digit).count();
        let after = word[digits..].strip_prefix("<<")?;
        let (chomp, rest) = match after.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, after),
        };
        if rest.contains('<') {
            return None;
        }
        Some(Opener {
            // An fd too large for a u32 is ignored, as BuildKit ignores the
            // ParseUint error.
            file_descriptor: word[..digits].parse().unwrap_or(0),
            chomp,
            rest,
        })
    }

    /// Builds the heredoc for delimiter text `rest`. Expansion is off when
    /// any part of the delimiter was quoted, which shows as a different
    /// number of quote characters with and without quote removal.
    fn build_heredoc(&self, rest: &str) -> Result<Option<Heredoc>, String> {
        if rest.is_empty() {
            return Ok(None);
        }
        let unterminated =
            |_| format!("Unterminated quote in heredoc delimiter `{rest}`; close the quote");
        let words = shell_words(rest, false, false).map_err(unterminated)?;
        let [name] = words.as_slice() else {
            return Ok(None);
        };
        let raw = shell_words(rest, true, false).map_err(unterminated)?;
        let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
        let expand = raw.len() == 1 && quotes(name) == quotes(&raw[0]);

        Ok(Some(Heredoc {
            name: name.clone(),
            content: String::new(),
            file_descriptor: self.file_descriptor,
            expand,
            chomp: self.chomp,
        }))
    }
}

/// Splits `text` into shell words without expanding variables. With
/// `raw_quotes` the quote characters stay in the words; with `raw_escapes`
/// the backslashes do.
fn shell_words(text: &str, raw_quotes: bool, raw_escapes: bool) -> Result<Vec<String>, ()> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();

    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                push_raw(&mut word, c, raw_quotes);
                loop {
                    match chars.next() {
                        None => return Err(()),
                        Some('\'') => break,
                        Some(inner) => word.push(inner),
                    }
                }
                push_raw(&mut word, c, raw_quotes);
            }
            '"' => {
                in_word = true;
                push_raw(&mut word, c, raw_quotes);
                read_double_quoted(&mut chars, &mut word, raw_escapes)?;
                push_raw(&mut word, c, raw_quotes);
            }
            '\\' => {
                in_word = true;
                // A backslash at the end of the text is dropped.
                if let Some(escaped) = chars.next() {
                    push_raw(&mut word, '\\', raw_escapes);
                    word.push(escaped);
                }
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }

    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Reads up to the closing `"`. Inside double quotes a backslash escapes
/// only `"`, `$`, and itself.
fn read_double_quoted(
    chars: &mut std::str::Chars<'_>,
    word: &mut String,
    raw_escapes: bool,
) -> Result<(), ()> {
    loop {
        match chars.next() {
            None => return Err(()),
            Some('"') => return Ok(()),
            Some('\\') => {
                let mut lookahead = chars.clone();
                match lookahead.next() {
                    Some(next @ ('"' | '$' | '\\')) => {
                        *chars = lookahead;
                        push_raw(word, '\\', raw_escapes);
                        word.push(next);
                    }
                    _ => word.push('\\'),
                }
            }
            Some(inner) => word.push(inner),
        }
    }
}

fn push_raw(word: &mut String, c: char, keep: bool) {
    if keep {
        word.push(c);
    }
}
