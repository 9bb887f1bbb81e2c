//! The Dockerfile line parser: turns Dockerfile text into an [`Ast`] with
//! BuildKit's rules for directives, comments, line continuations, argument
//! splitting and here-documents. It does no I/O and expands no variables.

mod directives;
mod error;
mod heredoc;
mod line_parsers;

pub use directives::{
    DetectedDirective, Directive, detect_directive, detect_syntax, parse_directives,
};
pub use error::ParseError;
pub use heredoc::{heredocs_from_line, parse_heredoc};

use crate::ast::{Ast, Directives, Node, ParseWarning};
use directives::DirectiveParser;

/// The maximum length of a physical line, in bytes without the newline. The
/// limit is BuildKit's, which comes from Go's `bufio.Scanner` buffer.
pub const MAX_LINE_BYTES: usize = 65535;

const EMPTY_CONTINUATION_DETAIL: &str =
    "Empty continuation lines will become errors in a future release";

/// Parses a whole Dockerfile.
///
/// Fails on a malformed or repeated parser directive, a JSON array with a
/// non-string element, a missing ENV or LABEL value, an unterminated
/// here-document, a line longer than [`MAX_LINE_BYTES`], or a file without
/// instructions.
pub fn parse(text: &str) -> Result<Ast, ParseError> {
    Parser::new(directives::strip_bom(text)).run()
}

struct Parser<'a> {
    text: &'a str,
    lines: Vec<&'a str>,
    /// Number of physical lines consumed, which is also the 1-based number
    /// of the last line read.
    line_number: usize,
    directive_parser: DirectiveParser,
    directives: Directives,
    children: Vec<Node>,
    warnings: Vec<ParseWarning>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            text,
            lines: text.split_inclusive('\n').collect(),
            line_number: 0,
            directive_parser: DirectiveParser::new(),
            directives: Directives {
                escape: '\\',
                ..Directives::default()
            },
            children: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn error(&self, line: usize, message: impl Into<String>) -> ParseError {
        ParseError::new(self.text, line, message)
    }

    /// Returns the next physical line, newline included.
    fn next_line(&mut self) -> Result<Option<&'a str>, ParseError> {
        let Some(&line) = self.lines.get(self.line_number) else {
            return Ok(None);
        };
        self.line_number += 1;
        if line.strip_suffix('\n').unwrap_or(line).len() > MAX_LINE_BYTES {
            return Err(self.error(
                self.line_number,
                format!(
                    "Dockerfile line greater than max allowed size of {MAX_LINE_BYTES} bytes; \
                     split it with line continuations"
                ),
            ));
        }
        Ok(Some(line))
    }

    fn run(mut self) -> Result<Ast, ParseError> {
        while let Some(first) = self.next_line()? {
            let start_line = self.line_number;
            let token = self.process_line(first, true)?;
            let (mut line, mut complete) = self.trim_continuation(token);
            if complete && line.is_empty() {
                continue;
            }

            let mut has_empty_line = false;
            while !complete {
                let Some(next) = self.next_line()? else { break };
                let token = self.process_line(next, false)?;
                if is_comment(next) {
                    continue;
                }
                if token.trim_start().is_empty() {
                    has_empty_line = true;
                    continue;
                }
                let (continued, end) = self.trim_continuation(token);
                line.push_str(&continued);
                complete = end;
            }

            if has_empty_line {
                self.warnings.push(ParseWarning {
                    message: format!("Empty continuation line found in: {line}"),
                    detail: EMPTY_CONTINUATION_DETAIL.to_string(),
                    line: self.line_number,
                });
            }

            let node = self.build_node(&line, start_line)?;
            self.children.push(node);
        }

        if self.children.is_empty() {
            return Err(self.error(
                self.line_number.max(1),
                "File with no instructions; add at least a FROM instruction",
            ));
        }
        Ok(Ast {
            directives: self.directives,
            children: self.children,
            warnings: self.warnings,
        })
    }

    /// Trims the newline (and, for the first line of an instruction, leading
    /// whitespace), feeds the line to the directive parser, and returns it,
    /// or an empty string for a comment.
    fn process_line(&mut self, raw: &'a str, strip_left: bool) -> Result<&'a str, ParseError> {
        let mut token = trim_newline(raw);
        if strip_left {
            token = token.trim_start();
        }
        let found = self
            .directive_parser
            .parse_line(token)
            .map_err(|message| self.error(self.line_number, message))?;
        if let Some(directive) = found {
            self.apply_directive(directive)?;
        }
        Ok(if is_comment(token) { "" } else { token })
    }

    fn apply_directive(&mut self, directive: Directive) -> Result<(), ParseError> {
        let value = directive.value.split(' ').next().unwrap_or("").to_string();
        match directive.name.as_str() {
            directives::ESCAPE => {
                self.directives.escape = match directive.value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        let mut error = self.error(
                            self.line_number,
                            format!(
                                "Invalid escape token `{other}` does not match ` or \\; \
                                 write `# escape=\\` or `# escape=``"
                            ),
                        );
                        let raw = self.lines[self.line_number - 1];
                        if let Some(at) = raw.rfind(other) {
                            error = error.at_column(at + 1, other.len());
                        }
                        return Err(error);
                    }
                };
            }
            directives::SYNTAX => self.directives.syntax = Some(value),
            // Check options may contain spaces (`skip=A, B`), so keep them all.
            directives::CHECK => self.directives.check = Some(directive.value.clone()),
            _ => {}
        }
        self.directives
            .lines
            .push((directive.name, self.line_number));
        Ok(())
    }

    /// Removes a trailing escape character that continues the line. Returns
    /// the text and whether the instruction ends on this line.
    ///
    /// Like BuildKit's `([^E])E[ \t]*$|^E[ \t]*$`, an escape preceded by
    /// another escape does not continue the line.
    fn trim_continuation(&self, token: &'a str) -> (String, bool) {
        let escape = self.directives.escape;
        let trimmed = token.trim_end_matches([' ', '\t']);
        let Some(before) = trimmed.strip_suffix(escape) else {
            return (token.to_string(), true);
        };
        if before.ends_with(escape) {
            return (token.to_string(), true);
        }
        (before.to_string(), false)
    }

    fn build_node(&mut self, line: &str, start_line: usize) -> Result<Node, ParseError> {
        let escape = self.directives.escape;
        let mut node = line_parsers::node_from_line(line, escape)
            .map_err(|message| self.error(start_line, message))?;

        if can_contain_heredoc(&node) && line.contains("<<") {
            let heredocs =
                heredocs_from_line(line).map_err(|message| self.error(start_line, message))?;
            for mut heredoc in heredocs {
                if !self.read_heredoc_body(&mut heredoc)? {
                    return Err(self.error(
                        start_line,
                        format!(
                            "Unterminated heredoc `{name}`; end it with a line that contains \
                             only `{name}`",
                            name = heredoc.name
                        ),
                    ));
                }
                node.heredocs.push(heredoc);
            }
        }

        set_lines(&mut node, start_line, self.line_number);
        Ok(node)
    }

    /// Appends lines to the heredoc's content up to its terminator line.
    /// Returns false when the file ends first.
    fn read_heredoc_body(&mut self, heredoc: &mut crate::ast::Heredoc) -> Result<bool, ParseError> {
        while let Some(raw) = self.next_line()? {
            let mut candidate = trim_newline(raw);
            if heredoc.chomp {
                candidate = candidate.trim_start_matches('\t');
            }
            if candidate == heredoc.name {
                return Ok(true);
            }
            heredoc.content.push_str(raw);
        }
        Ok(false)
    }
}

fn set_lines(node: &mut Node, start_line: usize, end_line: usize) {
    node.start_line = start_line;
    node.end_line = end_line;
    if let Some(next) = node.next.as_deref_mut() {
        set_lines(next, start_line, end_line);
    }
}

/// RUN, COPY and ADD in shell form, also as an ONBUILD trigger, can carry
/// here-documents.
fn can_contain_heredoc(node: &Node) -> bool {
    let node = match (&node.keyword[..], &node.next) {
        ("onbuild", Some(trigger)) => trigger,
        _ => node,
    };
    matches!(&node.keyword[..], "run" | "copy" | "add") && !node.json
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    trim_newline(line).trim_start().starts_with('#')
}
