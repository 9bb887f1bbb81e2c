//! The parse tree: one [`Node`] per instruction, as BuildKit's parser
//! builds it, before any variable is expanded.

use serde::Serialize;

/// One instruction as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The keyword lowercased (`from`, `run`, ...).
    pub keyword: String,
    /// Leading `--flag` words with quotes removed, such as `--from=build`.
    pub flags: Vec<String>,
    /// Argument nodes split as the dump format describes per instruction.
    pub args: Vec<String>,
    /// The instruction ONBUILD wraps.
    pub next: Option<Box<Node>>,
    /// Whether the arguments were written in JSON (exec) form.
    pub json: bool,
    /// The instruction's text after continuation lines were joined, keyword
    /// included.
    pub original: String,
    /// 1-based, inclusive line range, heredoc bodies included.
    pub start_line: usize,
    pub end_line: usize,
    pub heredocs: Vec<Heredoc>,
}

/// A here-document attached to a RUN, COPY or ADD.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    pub name: String,
    /// The raw body, terminator line excluded.
    pub content: String,
    /// File descriptor for `n<<EOF`; 0 when not given.
    pub file_descriptor: u32,
    /// False when any part of the delimiter word was quoted.
    pub expand: bool,
    /// True for `<<-`: leading tabs are stripped from the body.
    pub chomp: bool,
}

/// Parser directives found at the top of the file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Directives {
    pub syntax: Option<String>,
    /// The escape character, `\` unless `# escape=` set it.
    pub escape: char,
    pub check: Option<String>,
    /// Line of each directive, for diagnostics.
    pub lines: Vec<(String, usize)>,
}

/// A problem that does not stop parsing, such as an empty continuation
/// line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParseWarning {
    /// One line, such as `Empty continuation line found in: RUN a b`.
    pub message: String,
    /// A follow-up sentence: the consequence or the fix.
    pub detail: String,
    pub line: usize,
}

/// The result of parsing a whole Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ast {
    pub directives: Directives,
    pub children: Vec<Node>,
    pub warnings: Vec<ParseWarning>,
}
