//! Rendering of conversion errors and check warnings with the Dockerfile
//! source: errors as `miette` diagnostics that underline the offending
//! part, warnings in the layout of `docker build --check`.

use super::CheckReport;
use crate::convert::ConvertError;
use miette::{NamedSource, SourceSpan};

/// A conversion error with its source, for `miette` to render.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
pub struct ConvertDiagnostic {
    message: String,
    #[source_code]
    source_code: NamedSource<String>,
    #[label("here")]
    span: Option<SourceSpan>,
    #[help]
    help: Option<String>,
    /// 1-based line and byte column of the underlined part.
    pub location: Option<(usize, usize)>,
}

impl ConvertError {
    /// Attaches the Dockerfile text so the error renders with the source
    /// line and a marker under the part at fault: the first value the
    /// message quotes in backticks when the instruction contains it, or
    /// else the whole instruction.
    pub fn to_diagnostic(&self, text: &str) -> ConvertDiagnostic {
        let (span, location) = match self.lines {
            Some((start, end)) => locate(text, start, end, &self.message),
            None => (None, None),
        };
        let message = match self.lines {
            Some((start, _)) => {
                let column = location.map_or(String::new(), |(_, c)| format!(":{c}"));
                format!("{}:{start}{column}: {}", self.file, self.message)
            }
            None => format!("{}: {}", self.file, self.message),
        };
        ConvertDiagnostic {
            message,
            source_code: NamedSource::new(&self.file, text.to_string()),
            span,
            help: self.help.clone(),
            location,
        }
    }
}

/// Returns the span to underline and its 1-based line and column.
fn locate(
    text: &str,
    start: usize,
    end: usize,
    message: &str,
) -> (Option<SourceSpan>, Option<(usize, usize)>) {
    let mut offset = 0;
    let mut first: Option<(usize, usize)> = None;
    let mut range_end = 0;
    for (index, physical) in text.split_inclusive('\n').enumerate() {
        let number = index + 1;
        let content = physical.trim_end_matches(['\n', '\r']);
        if number >= start && number <= end {
            if first.is_none() {
                let indent = content.len() - content.trim_start().len();
                first = Some((offset + indent, number));
            }
            range_end = offset + content.len();
            for quoted in backticked(message) {
                if let Some(at) = content.find(quoted) {
                    let span = SourceSpan::new((offset + at).into(), quoted.len());
                    return (Some(span), Some((number, at + 1)));
                }
            }
        }
        offset += physical.len();
    }
    match first {
        Some((from, line)) => {
            let span = SourceSpan::new(from.into(), range_end.saturating_sub(from));
            let column = from - line_start(text, line) + 1;
            (Some(span), Some((line, column)))
        }
        None => (None, None),
    }
}

fn line_start(text: &str, line: usize) -> usize {
    text.split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum()
}

/// Lists the non-empty values quoted in backticks, in order.
fn backticked(message: &str) -> impl Iterator<Item = &str> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|quoted| !quoted.trim().is_empty())
}

/// Renders a check report like `docker build --check`: a summary line,
/// then per warning the rule, its documentation link, the message and the
/// source lines around it.
pub fn render_check_report(report: &CheckReport, file: &str, text: &str) -> String {
    let count = report.warnings.len();
    let mut out = match count {
        0 => "Check complete, no warnings found.\n".to_string(),
        1 => "Check complete, 1 warning has been found!\n".to_string(),
        n => format!("Check complete, {n} warnings have been found!\n"),
    };
    let lines: Vec<&str> = text.lines().collect();
    for warning in &report.warnings {
        out.push_str(&format!(
            "\nWARNING: {} - {}\n{}\n",
            warning.rule.name(),
            warning.rule.url(),
            warning.message
        ));
        let Some((start, end)) = warning.lines else {
            continue;
        };
        out.push_str(&format!("{file}:{start}\n--------------------\n"));
        let first = start.saturating_sub(3).max(1);
        let last = (end + 2).min(lines.len());
        for number in first..=last {
            let marker = if (start..=end).contains(&number) {
                ">>>"
            } else {
                "   "
            };
            let content = lines.get(number - 1).copied().unwrap_or_default();
            out.push_str(&format!(" {number:>3} | {marker} {content}\n"));
        }
        out.push_str("--------------------\n");
    }
    out
}
