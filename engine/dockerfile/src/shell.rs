//! Variable expansion of Dockerfile words, as BuildKit's
//! `frontend/dockerfile/shell` package does it.
//!
//! A word goes through one left-to-right pass that removes quotes, applies
//! the escape character and expands `$VAR` and `${VAR…}`:
//!
//! - `'…'` keeps every character literally, escapes and `$` included.
//! - `"…"` expands variables. The escape character only escapes `"`, `$`
//!   and itself there, and stays literal before anything else.
//! - Outside quotes the escape character makes the next character literal,
//!   and a trailing one is dropped.
//! - `$` not followed by a name, `{` or a special parameter stays literal.
//!   `$1`…`$999` and the special parameters `$@ $* $# $? $- $$ $! $0` are
//!   looked up like any name, so they expand to nothing unless the
//!   environment sets them.
//! - `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`, `${VAR:?w}`,
//!   `${VAR?w}`, `${VAR#p}`, `${VAR##p}`, `${VAR%p}`, `${VAR%%p}`,
//!   `${VAR/p/r}` and `${VAR//p/r}` behave as in POSIX sh, except that
//!   quotes inside a pattern are removed before the pattern is used, so a
//!   quoted `*` is still a wildcard. Assignment (`${VAR=w}`, `${VAR:=w}`),
//!   length (`${#VAR}`) and `${VAR:#p}`, `${VAR:%p}` are errors.
//!
//! Unlike a shell, the result is never split on whitespace by
//! [`Lexer::process_word`]. [`Lexer::process_words`] splits on unquoted
//! whitespace, including whitespace that an unquoted variable expands to.

mod env;
mod error;
mod pattern;
mod word;

use std::collections::BTreeSet;

use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

pub use env::Env;
pub use error::{ShellError, ShellErrorKind};

/// The expander for one Dockerfile, configured with its escape character.
#[derive(Clone, Debug)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_process_quotes: bool,
    skip_unset_env: bool,
}

/// The result of expanding one word.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The word with quotes removed, escapes applied and variables expanded.
    pub value: String,
    /// Every variable name the word looked up, whether set or not. Names
    /// inside a `${…}` operand that was not needed are included, because the
    /// operand is expanded before the variable is checked.
    pub used: BTreeSet<String>,
    /// The names in `used` that the environment did not set.
    pub unset: BTreeSet<String>,
}

impl Expansion {
    /// Returns the names in `used` that the environment set.
    pub fn matched(&self) -> BTreeSet<String> {
        self.used.difference(&self.unset).cloned().collect()
    }
}

impl Lexer {
    /// Creates an expander for `escape`, which is `\` unless the Dockerfile
    /// has an `# escape=` directive (usually `` ` `` on Windows). The other
    /// character is then ordinary text.
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// Keeps quote characters in the result while still giving them their
    /// meaning.
    pub fn raw_quotes(mut self, enabled: bool) -> Lexer {
        self.raw_quotes = enabled;
        self
    }

    /// Keeps escape characters in the result while still giving them their
    /// meaning.
    pub fn raw_escapes(mut self, enabled: bool) -> Lexer {
        self.raw_escapes = enabled;
        self
    }

    /// Treats quotes as ordinary characters, for heredoc bodies, where quotes
    /// belong to the script rather than to the Dockerfile.
    pub fn skip_process_quotes(mut self, enabled: bool) -> Lexer {
        self.skip_process_quotes = enabled;
        self
    }

    /// Leaves references to unset variables as written (`$X`, `${X}`,
    /// `${X:-w}` with `w` expanded) instead of expanding them.
    pub fn skip_unset_env(mut self, enabled: bool) -> Lexer {
        self.skip_unset_env = enabled;
        self
    }

    /// Returns the escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expands `word` as one word: quotes removed, escapes applied, variables
    /// expanded. Whitespace, quoted or not, is kept.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<Expansion, ShellError> {
        let (expansion, _) = self.process(word, env)?;
        Ok(expansion)
    }

    /// Expands `word` and splits the result into words on unquoted
    /// whitespace, including whitespace from unquoted variables. Quoted
    /// empty strings (`""`) produce no word.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ShellError> {
        let (_, words) = self.process(word, env)?;
        Ok(words)
    }

    /// Expands `word` and returns both the single word and its split.
    pub fn process(
        &self,
        word: &str,
        env: &dyn Env,
    ) -> Result<(Expansion, Vec<String>), ShellError> {
        let mut processor = word::Processor::new(self, word, env);
        match processor.process() {
            Ok((value, words)) => {
                let (used, unset) = processor.into_lookups();
                Ok((Expansion { value, used, unset }, words))
            }
            Err(kind) => Err(ShellError {
                word: word.to_string(),
                kind,
            }),
        }
    }
}

impl Default for Lexer {
    fn default() -> Lexer {
        Lexer::new('\\')
    }
}

// Name characters and whitespace follow Go's `unicode.IsLetter`,
// `unicode.IsDigit` and `unicode.IsSpace`, which BuildKit uses. Rust's
// `char::is_alphabetic` and `char::is_numeric` accept more characters
// (letter numbers such as `Ⅻ`, and digits such as `²`).

fn is_go_letter(ch: char) -> bool {
    ch.general_category_group() == GeneralCategoryGroup::Letter
}

fn is_go_digit(ch: char) -> bool {
    ch.general_category() == GeneralCategory::DecimalNumber
}

fn is_go_space(ch: char) -> bool {
    // Go's list for Latin-1 and the Unicode White_Space property, which
    // Rust's `char::is_whitespace` implements, contain the same characters.
    ch.is_whitespace()
}
