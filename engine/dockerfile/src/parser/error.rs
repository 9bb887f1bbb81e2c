//! The error [`parse`](super::parse) returns, with the offending line as a
//! source span so `miette` can underline it.

use miette::{NamedSource, SourceSpan};

/// A Dockerfile that cannot be parsed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("Dockerfile:{line}: {message}")]
pub struct ParseError {
    message: String,
    line: usize,
    column: Option<usize>,
    // Shared to keep `Result<_, ParseError>` small.
    #[source_code]
    source_code: std::sync::Arc<NamedSource<String>>,
    #[label("here")]
    span: SourceSpan,
}

impl ParseError {
    /// Creates an error about 1-based `line` of `text`, underlining the whole
    /// line. A `line` past the end of the text underlines nothing.
    pub(crate) fn new(text: &str, line: usize, message: impl Into<String>) -> Self {
        let span = line_span(text, line);
        ParseError {
            message: message.into(),
            line,
            column: None,
            source_code: std::sync::Arc::new(NamedSource::new("Dockerfile", text.to_string())),
            span,
        }
    }

    /// Narrows the underline to `len` bytes from 1-based byte `column`.
    pub(crate) fn at_column(mut self, column: usize, len: usize) -> Self {
        let start = self.span.offset() + column.saturating_sub(1);
        self.column = Some(column);
        self.span = SourceSpan::new(start.into(), len);
        self
    }

    /// Changes the file name shown above the rendered source, for a
    /// Dockerfile that is not called `Dockerfile`.
    pub fn with_file_name(mut self, name: &str) -> Self {
        let text = self.source_code.inner().clone();
        self.source_code = std::sync::Arc::new(NamedSource::new(name, text));
        self
    }

    /// Returns the message without the `Dockerfile:LINE:` prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Returns the 1-based line the error is about.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Returns the 1-based byte column, when the error points inside the line.
    pub fn column(&self) -> Option<usize> {
        self.column
    }
}

/// Returns the byte range of 1-based `line` in `text`, newline excluded.
fn line_span(text: &str, line: usize) -> SourceSpan {
    let mut offset = 0;
    for (index, physical) in text.split_inclusive('\n').enumerate() {
        if index + 1 == line {
            let content = physical.trim_end_matches(['\n', '\r']);
            return SourceSpan::new(offset.into(), content.len());
        }
        offset += physical.len();
    }
    SourceSpan::new(text.len().into(), 0)
}
