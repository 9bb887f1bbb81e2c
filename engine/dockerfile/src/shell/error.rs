//! Errors raised while expanding a Dockerfile word.

/// A word that could not be expanded, with the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Failed to expand `{word}`: {kind}")]
pub struct ShellError {
    /// The word as written, before expansion.
    pub word: String,
    pub kind: ShellErrorKind,
}

/// The reason a word could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShellErrorKind {
    #[error("unterminated single quote: add the closing `'`")]
    UnterminatedSingleQuote,

    #[error("unterminated double quote: add the closing `\"`")]
    UnterminatedDoubleQuote,

    /// The word ended inside a `${…}` that was never closed.
    #[error("missing `}}` after `${{{name}`: close the substitution")]
    MissingBrace { name: String },

    /// `${}`, `${{…}` and `${:…}`: the braces hold no variable name.
    #[error("bad substitution `${{{rest}`: put a variable name after `${{`")]
    BadSubstitution { rest: String },

    /// A `${VAR:?message}` or `${VAR?message}` whose variable is unset (or
    /// empty, for the `:?` form). `message` is the text the Dockerfile gave,
    /// expanded, or a default that says which condition failed. Worded as
    /// Docker words it (`FOO: message`), so scripts that match it work.
    #[error("{name}: {message}")]
    Required { name: String, message: String },

    /// An operator after the name that is not one of `-`, `+`, `?`, `#`,
    /// `%`, `/`, or these after `:`. Assignment (`${VAR=word}`) is here too,
    /// because a Dockerfile cannot assign variables while expanding.
    #[error(
        "unsupported modifier `{modifier}` after `${{{name}`: use one of \
         `:-` `-` `:+` `+` `:?` `?` `#` `##` `%` `%%` `/` `//`"
    )]
    UnsupportedModifier { name: String, modifier: String },

    /// A `${VAR/pattern` with no `/` to end the pattern.
    #[error(
        "missing `/` after the pattern in `${{{name}/…`: write `${{{name}/pattern/replacement}}`"
    )]
    MissingPatternSeparator { name: String },

    /// A pattern of `#`, `%` or `/` that is not a valid shell pattern.
    #[error("invalid pattern `{pattern}` in `${{{name}…}}`: {reason}")]
    InvalidPattern {
        name: String,
        pattern: String,
        reason: String,
    },
}
