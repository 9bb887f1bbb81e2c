//! BuildKit's `Node.Dump` text form of a parse tree: one s-expression per
//! instruction, arguments quoted like Go's `strconv.Quote`.

use std::fmt::Write;

use crate::ast::{Ast, Node};

impl Ast {
    /// Renders every instruction as `(keyword ["--flag"] "arg" ...)`, one per
    /// line. Heredoc bodies are not shown.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for child in &self.children {
            out.push('(');
            out.push_str(&child.dump());
            out.push_str(")\n");
        }
        out.trim().to_string()
    }
}

impl Node {
    /// Renders this instruction without the surrounding parentheses, as in
    /// `run ["--mount=type=cache,target=/x"] "make"`.
    pub fn dump(&self) -> String {
        let mut out = self.keyword.to_lowercase();
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            write!(out, " [{}]", flags.join(" ")).expect("writing to a String cannot fail");
        }
        if let Some(trigger) = &self.next {
            write!(out, " ({})", trigger.dump()).expect("writing to a String cannot fail");
        }
        for arg in &self.args {
            out.push(' ');
            out.push_str(&go_quote(arg));
        }
        out.trim().to_string()
    }
}

/// Quotes `s` the way Go's `strconv.Quote` does: printable characters stay,
/// `\a \b \f \n \r \t \v \\ \"` use short escapes, other control bytes use
/// `\xNN`, and other non-printable characters use `\uNNNN` or `\UNNNNNNNN`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                write!(out, "\\x{:02x}", c as u32).expect("writing to a String cannot fail")
            }
            c if (c as u32) < 0x10000 => {
                write!(out, "\\u{:04x}", c as u32).expect("writing to a String cannot fail")
            }
            c => write!(out, "\\U{:08x}", c as u32).expect("writing to a String cannot fail"),
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `unicode.IsPrint`: letters, marks, numbers, punctuation,
/// symbols and the ASCII space.
///
/// NOTE: Rust's standard library has no general-category table, so
/// unassigned code points count as printable here while Go escapes them.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let code = c as u32;
    let is_format = matches!(
        code,
        0xad | 0x600..=0x605
            | 0x61c
            | 0x6dd
            | 0x70f
            | 0x890..=0x891
            | 0x8e2
            | 0x180e
            | 0x200b..=0x200f
            | 0x202a..=0x202e
            | 0x2060..=0x2064
            | 0x2066..=0x206f
            | 0xfeff
            | 0xfff9..=0xfffb
            | 0x110bd
            | 0x110cd
            | 0x13430..=0x1343f
            | 0x1bca0..=0x1bca3
            | 0x1d173..=0x1d17a
            | 0xe0001
            | 0xe0020..=0xe007f
    );
    let is_private_or_special =
        matches!(code, 0xe000..=0xf8ff | 0xf0000..=0x10ffff | 0xfffe..=0xffff);
    !is_format && !is_private_or_special
}
