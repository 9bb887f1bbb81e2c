//! The summary a renderer returns when the event stream ends, and the
//! failure block printed from it.

use std::fmt::Write as _;
use std::time::Duration;

use strata_llb::SourceLocation;

use super::state::LogLine;

/// Number of the failed vertex's last log lines the summary keeps.
pub const FAILURE_LOG_LINES: usize = 20;

/// Counts of the build's vertices by outcome, and the first failure.
/// Phases such as exporting are not vertices and are not counted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RenderSummary {
    /// Vertices the build queued, whether or not they started.
    pub total: usize,
    /// Vertices whose result came from the cache.
    pub cached: usize,
    /// Vertices that ran and completed.
    pub ran: usize,
    pub failed: usize,
    /// Vertices stopped because another one failed or the build was cancelled.
    pub canceled: usize,
    /// The first vertex that failed with an error of its own.
    pub failure: Option<FailedVertex>,
    /// Warnings in the order sent, with the line they point at.
    pub warnings: Vec<String>,
    /// Outcome from the build's finish event, or `None` when the stream
    /// ended without one.
    pub success: Option<bool>,
    pub duration: Option<Duration>,
}

/// The vertex that failed the build.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FailedVertex {
    /// Display name, such as `[build 3/4] RUN make`.
    pub name: String,
    pub error: String,
    pub location: Option<SourceLocation>,
    /// Its last [`FAILURE_LOG_LINES`] lines of output, oldest first.
    pub last_logs: Vec<LogLine>,
}

/// Renders the block Docker prints for a failed step: its name and last log
/// lines between dashes, then, when `source` is the text of the file the
/// step came from, the lines around the failing instruction. The final
/// `ERROR: ...` line is left to the caller, which owns the error. Returns
/// an empty string when no vertex failed.
pub fn render_failure(summary: &RenderSummary, source: Option<&str>) -> String {
    let Some(failure) = &summary.failure else {
        return String::new();
    };

    let mut block = String::new();
    block.push_str("------\n");
    let _ = writeln!(block, " > {}:", failure.name);
    for line in &failure.last_logs {
        let _ = writeln!(block, "{:.3} {}", line.offset.as_secs_f64(), line.text);
    }
    block.push_str("------\n");

    if let (Some(location), Some(source)) = (&failure.location, source) {
        block.push_str(&render_source_excerpt(location, source));
    }
    block
}

/// Renders `file:line` and the lines of `source` around `location`, the
/// located lines marked with `>>>`. Returns an empty string when the
/// location is outside the file.
fn render_source_excerpt(location: &SourceLocation, source: &str) -> String {
    let lines: Vec<&str> = source.lines().collect();
    let (first, last) = (
        location.start_line,
        location.end_line.max(location.start_line),
    );
    if first == 0 || first > lines.len() {
        return String::new();
    }
    let last = last.min(lines.len());
    let (from, to) = context_range(first, last, lines.len());

    let mut excerpt = String::new();
    if first == last {
        let _ = writeln!(excerpt, "{}:{}", location.file, first);
    } else {
        let _ = writeln!(excerpt, "{}:{}-{}", location.file, first, last);
    }
    excerpt.push_str("--------------------\n");
    for number in from..=to {
        let marker = if (first..=last).contains(&number) {
            ">>>"
        } else {
            "   "
        };
        let text = lines[number - 1];
        let _ = writeln!(excerpt, " {number:>3} | {marker} {text}");
    }
    excerpt.push_str("--------------------\n");
    excerpt
}

/// Widens `first..=last` by a few lines of context, taken alternately
/// before and after so that the located lines stay near the middle. A
/// single line gets four lines of context, a range two.
fn context_range(first: usize, last: usize, line_count: usize) -> (usize, usize) {
    let mut budget = if first == last { 4 } else { 2 };
    let (mut from, mut to) = (first, last);
    while budget > 0 && (from > 1 || to < line_count) {
        if from > 1 {
            from -= 1;
            budget -= 1;
        }
        if budget > 0 && to < line_count {
            to += 1;
            budget -= 1;
        }
    }
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_solver::events::LogStream;

    fn summary_with(
        name: &str,
        location: Option<SourceLocation>,
        log_count: usize,
    ) -> RenderSummary {
        let last_logs = (0..log_count)
            .map(|i| LogLine {
                offset: Duration::from_millis(100 * i as u64),
                stream: LogStream::Stderr,
                text: format!("line {i}"),
            })
            .collect();
        let failure = FailedVertex {
            name: name.into(),
            error: "exit code: 1".into(),
            location,
            last_logs,
        };
        RenderSummary {
            failure: Some(failure),
            ..RenderSummary::default()
        }
    }

    fn location(start_line: usize, end_line: usize) -> SourceLocation {
        SourceLocation {
            file: "Dockerfile".into(),
            start_line,
            end_line,
        }
    }

    #[test]
    fn failure_block_without_failure_is_empty() {
        assert_eq!(render_failure(&RenderSummary::default(), None), "");
    }

    #[test]
    fn failure_block_lists_logs_with_offsets() {
        let summary = summary_with("[build 2/3] RUN false", None, 2);
        let expected = "------\n > [build 2/3] RUN false:\n0.000 line 0\n0.100 line 1\n------\n";
        assert_eq!(render_failure(&summary, None), expected);
    }

    #[test]
    fn failure_block_marks_source_line() {
        let summary = summary_with("[2/2] RUN false", Some(location(2, 2)), 0);
        let source = "FROM alpine\nRUN false\n";
        let expected = "------\n > [2/2] RUN false:\n------\nDockerfile:2\n\
                        --------------------\n   1 |     FROM alpine\n   2 | >>> RUN false\n\
                        --------------------\n";
        assert_eq!(render_failure(&summary, Some(source)), expected);
    }

    #[test]
    fn failure_block_skips_location_past_end() {
        let summary = summary_with("[2/2] RUN false", Some(location(9, 9)), 0);
        let block = render_failure(&summary, Some("FROM alpine\n"));
        assert!(!block.contains("Dockerfile"), "{block}");
    }

    #[test]
    fn context_range_centres_single_line() {
        assert_eq!(context_range(5, 5, 10), (3, 7));
        assert_eq!(context_range(1, 1, 10), (1, 5));
        assert_eq!(context_range(10, 10, 10), (6, 10));
        assert_eq!(context_range(2, 2, 2), (1, 2));
    }

    #[test]
    fn context_range_widens_range_by_two() {
        assert_eq!(context_range(4, 6, 10), (3, 7));
    }
}
