//! The single pass over one word.

use std::collections::BTreeSet;

use super::pattern::{self, BYTE_ORDER_MARK};
use super::{Env, Lexer, ShellErrorKind, is_go_digit, is_go_letter, is_go_space};

type Result<T> = std::result::Result<T, ShellErrorKind>;

/// The state of one expansion: the characters, a cursor, and the names
/// looked up so far.
pub(super) struct Processor<'a> {
    lexer: &'a Lexer,
    env: &'a dyn Env,
    chars: Vec<char>,
    position: usize,
    /// Whether escape characters are copied into the result. Patterns set
    /// it so that `\*` reaches the pattern translation intact.
    raw_escapes: bool,
    used: BTreeSet<String>,
    unset: BTreeSet<String>,
}

impl<'a> Processor<'a> {
    pub(super) fn new(lexer: &'a Lexer, word: &str, env: &'a dyn Env) -> Processor<'a> {
        let word = word.strip_prefix(BYTE_ORDER_MARK).unwrap_or(word);
        Processor {
            lexer,
            env,
            chars: word.chars().collect(),
            position: 0,
            raw_escapes: lexer.raw_escapes,
            used: BTreeSet::new(),
            unset: BTreeSet::new(),
        }
    }

    /// Expands the whole word. Returns it as one string and split on
    /// unquoted whitespace.
    pub(super) fn process(&mut self) -> Result<(String, Vec<String>)> {
        self.process_until(None, self.lexer.raw_escapes)
    }

    /// Returns every name looked up, and those that were not set.
    pub(super) fn into_lookups(self) -> (BTreeSet<String>, BTreeSet<String>) {
        (self.used, self.unset)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.position).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.position += 1;
        }
        ch
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        self.used.insert(name.to_string());
        let value = self.env.get(name);
        if value.is_none() {
            self.unset.insert(name.to_string());
        }
        value
    }

    /// Expands up to and including `stop`, or to the end of the word when
    /// `stop` is `None`. Running out of characters before `stop` is an error.
    fn process_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>)> {
        let outer_raw_escapes = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.process_until_inner(stop);
        self.raw_escapes = outer_raw_escapes;
        result
    }

    fn process_until_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = WordSplitter::default();
        let process_quotes = !self.lexer.skip_process_quotes;

        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let value = self.process_dollar()?;
                    // Whitespace from a variable splits words like typed
                    // whitespace does.
                    words.add_str(&value);
                    result.push_str(&value);
                }
                '\'' if process_quotes => {
                    let value = self.process_single_quote()?;
                    words.add_raw_str(&value);
                    result.push_str(&value);
                }
                '"' if process_quotes => {
                    let value = self.process_double_quote()?;
                    words.add_raw_str(&value);
                    result.push_str(&value);
                }
                _ => {
                    self.next();
                    if ch != self.lexer.escape {
                        words.add_char(ch);
                        result.push(ch);
                        continue;
                    }
                    if self.raw_escapes {
                        words.add_raw_char(ch);
                        result.push(ch);
                    }
                    // An escape at the end of the word escapes nothing and
                    // is dropped.
                    let Some(escaped) = self.next() else {
                        break;
                    };
                    words.add_raw_char(escaped);
                    result.push(escaped);
                }
            }
        }

        match stop {
            Some(stop) => Err(self.unterminated(stop)),
            None => Ok((result, words.finish())),
        }
    }

    /// Returns the error for a word that ended before `stop`. Callers
    /// replace it with an error that names the variable.
    fn unterminated(&self, stop: char) -> ShellErrorKind {
        match stop {
            '/' => ShellErrorKind::MissingPatternSeparator {
                name: String::new(),
            },
            _ => ShellErrorKind::MissingBrace {
                name: String::new(),
            },
        }
    }

    fn process_single_quote(&mut self) -> Result<String> {
        let mut result = String::new();
        let quote = self.next();
        if self.lexer.raw_quotes {
            result.extend(quote);
        }
        loop {
            match self.next() {
                None => return Err(ShellErrorKind::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String> {
        let mut result = String::new();
        let quote = self.next();
        if self.lexer.raw_quotes {
            result.extend(quote);
        }
        loop {
            match self.peek() {
                None => return Err(ShellErrorKind::UnterminatedDoubleQuote),
                Some('"') => {
                    self.next();
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(ch) => {
                    self.next();
                    if ch != self.lexer.escape {
                        result.push(ch);
                        continue;
                    }
                    if self.raw_escapes {
                        result.push(ch);
                    }
                    // Only `"`, `$` and the escape character itself can be
                    // escaped here. Before anything else the escape is kept.
                    match self.peek() {
                        // The loop reports the missing closing quote.
                        None => {}
                        Some(next) if next == '"' || next == '$' || next == self.lexer.escape => {
                            self.next();
                            result.push(next);
                        }
                        Some(_) => result.push(ch),
                    }
                }
            }
        }
    }

    /// Expands the `$…` at the cursor.
    fn process_dollar(&mut self) -> Result<String> {
        self.next();

        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }

        self.next();
        match self.peek() {
            None => {
                return Err(ShellErrorKind::MissingBrace {
                    name: String::new(),
                });
            }
            Some('{' | '}' | ':') => {
                let rest = self.chars[self.position..].iter().collect();
                return Err(ShellErrorKind::BadSubstitution { rest });
            }
            Some(_) => {}
        }

        let name = self.process_name();
        match self.next() {
            None => Err(ShellErrorKind::MissingBrace { name }),
            Some('}') => Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => {
                let operator = self.next();
                self.process_modifier(name, operator, true)
            }
            Some(operator @ ('+' | '-' | '?' | '#' | '%')) => {
                self.process_modifier(name, Some(operator), false)
            }
            Some('/') => self.process_substitution(name),
            Some(other) => Err(ShellErrorKind::UnsupportedModifier {
                name,
                modifier: other.to_string(),
            }),
        }
    }

    /// Expands `${name<op>word}` with the cursor after `<op>`. With
    /// `null_is_unset` (the `:` forms) an empty value counts as unset.
    fn process_modifier(
        &mut self,
        name: String,
        operator: Option<char>,
        null_is_unset: bool,
    ) -> Result<String> {
        let is_pattern = matches!(operator, Some('#' | '%'));
        let modifier = match (null_is_unset, operator) {
            (true, Some(op)) => format!(":{op}"),
            (true, None) => ":".to_string(),
            (false, op) => op.map(String::from).unwrap_or_default(),
        };
        // BuildKit rejects `${VAR:#…}` and `${VAR:%…}` before reading the
        // pattern, so no name in it is looked up.
        if null_is_unset && is_pattern {
            return Err(ShellErrorKind::UnsupportedModifier { name, modifier });
        }

        let (word, _) = self.process_until(Some('}'), is_pattern).map_err(|err| {
            if self.peek().is_none() {
                ShellErrorKind::MissingBrace { name: name.clone() }
            } else {
                err
            }
        })?;

        // The operand is expanded before the variable is looked up, so its
        // names are recorded even when the operand is not used.
        let value = self.lookup(&name);
        let Some(value) = value else {
            if self.lexer.skip_unset_env {
                return Ok(format!("${{{name}{modifier}{word}}}"));
            }
            return self.apply_modifier(name, operator, modifier, None, word);
        };
        let value = if null_is_unset && value.is_empty() {
            Found::Empty
        } else {
            Found::Value(value)
        };
        self.apply_modifier(name, operator, modifier, Some(value), word)
    }

    fn apply_modifier(
        &self,
        name: String,
        operator: Option<char>,
        modifier: String,
        value: Option<Found>,
        word: String,
    ) -> Result<String> {
        match (operator, value) {
            (Some('-'), Some(Found::Value(value))) => Ok(value),
            (Some('-'), _) => Ok(word),
            (Some('+'), Some(Found::Value(_))) => Ok(word),
            (Some('+'), _) => Ok(String::new()),
            (Some('?'), Some(Found::Value(value))) => Ok(value),
            (Some('?'), value) => {
                let message = if !word.is_empty() {
                    word
                } else if value.is_none() {
                    "is not allowed to be unset".to_string()
                } else {
                    "is not allowed to be empty".to_string()
                };
                Err(ShellErrorKind::Required { name, message })
            }
            (Some(op @ ('#' | '%')), value) => {
                let value = match value {
                    Some(Found::Value(value)) => value,
                    _ => String::new(),
                };
                trim(name, op, &word, &value)
            }
            _ => Err(ShellErrorKind::UnsupportedModifier { name, modifier }),
        }
    }

    /// Expands `${name/pattern/replacement}` or `${name//…}` with the cursor
    /// after the first `/`.
    fn process_substitution(&mut self, name: String) -> Result<String> {
        let replace_all = self.peek() == Some('/');
        if replace_all {
            self.next();
        }

        let (pattern, _) = self.process_until(Some('/'), true).map_err(|err| {
            if self.peek().is_none() {
                ShellErrorKind::MissingPatternSeparator { name: name.clone() }
            } else {
                err
            }
        })?;
        let (replacement, _) = self.process_until(Some('}'), true).map_err(|err| {
            if self.peek().is_none() {
                ShellErrorKind::MissingBrace { name: name.clone() }
            } else {
                err
            }
        })?;

        let Some(value) = self.lookup(&name) else {
            if self.lexer.skip_unset_env {
                // NOTE: BuildKit writes a single `/` here for `//` as well.
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return substitute(name, &pattern, "", &replacement, replace_all);
        };
        substitute(name, &pattern, &value, &replacement, replace_all)
    }

    /// Reads a variable name: letters, digits and `_` not starting with a
    /// digit, a run of digits (a positional parameter), or one special
    /// parameter character.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_go_digit(ch) {
                while let Some(digit) = self.peek().filter(|c| is_go_digit(*c)) {
                    self.next();
                    name.push(digit);
                }
                return name;
            }
            if name.is_empty() && is_special_parameter(ch) {
                self.next();
                return ch.to_string();
            }
            if !is_go_letter(ch) && !is_go_digit(ch) && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }
}

/// The value of a set variable. `Empty` is an empty value that a `:` form
/// treats like an unset variable.
enum Found {
    Value(String),
    Empty,
}

/// POSIX special parameters. Positional parameters are digits, read apart.
fn is_special_parameter(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// Applies `${name#word}`, `##`, `%` or `%%`. A doubled operator is read
/// from the expanded word, so a variable that expands to `#x` in
/// `${name#$var}` makes the match greedy.
fn trim(name: String, operator: char, word: &str, value: &str) -> Result<String> {
    let (pattern, greedy) = match word.strip_prefix(operator) {
        Some(pattern) => (pattern, true),
        None => (word, false),
    };
    let trimmed = if operator == '%' {
        pattern::trim_suffix(pattern, value, greedy)
    } else {
        pattern::trim_prefix(pattern, value, greedy)
    };
    trimmed.map_err(|reason| ShellErrorKind::InvalidPattern {
        name,
        pattern: pattern.to_string(),
        reason,
    })
}

fn substitute(
    name: String,
    pattern: &str,
    value: &str,
    replacement: &str,
    replace_all: bool,
) -> Result<String> {
    let replaced = if replace_all {
        pattern::replace_all(pattern, value, replacement)
    } else {
        pattern::replace_first(pattern, value, replacement)
    };
    replaced.map_err(|reason| ShellErrorKind::InvalidPattern {
        name,
        pattern: pattern.to_string(),
        reason,
    })
}

/// Splits the expanded text into words as it is produced.
#[derive(Default)]
struct WordSplitter {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl WordSplitter {
    /// Adds an unquoted character: whitespace ends the current word.
    fn add_char(&mut self, ch: char) {
        if !is_go_space(ch) {
            self.add_raw_char(ch);
        } else if self.in_word && !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
            self.in_word = false;
        }
    }

    /// Adds a quoted or escaped character, which never splits.
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_str(&mut self, text: &str) {
        for ch in text.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_str(&mut self, text: &str) {
        self.word.push_str(text);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}
