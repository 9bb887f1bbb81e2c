//! The tty renderer: a live view redrawn in place, one line per step that
//! has started, with the last log lines of running steps below them.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use strata_solver::events::StampedEvent;

use super::format::{align, bar, sanitize, task_amount, task_label, truncate};
use super::state::{BuildState, Step, StepState, between, format_explanations, format_warning};
use super::summary::RenderSummary;

/// The shortest time between two frames: at most ten redraws a second.
pub(crate) const FRAME_INTERVAL: Duration = Duration::from_millis(100);

/// Number of a running step's last log lines the live view shows.
const LOG_TAIL_LINES: usize = 6;
/// Cells in the bar of a task with a known total, such as a layer download.
const TASK_BAR_WIDTH: usize = 20;

const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const BLUE: &str = "\x1b[34m";
const RESET: &str = "\x1b[0m";

/// Terminal size and colour use of a tty renderer.
#[derive(Clone, Copy, Debug)]
pub struct TtyOptions {
    /// Columns each line is fitted to.
    pub width: usize,
    /// Rows a live frame may take. The final frame takes as many as it needs.
    pub height: usize,
    pub color: bool,
}

/// Kind of a frame line, which decides the lines dropped first when a live
/// frame is taller than the terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineKind {
    Header,
    Running,
    Finished,
    Detail,
}

pub(crate) struct TtyRenderer<W: Write> {
    state: BuildState,
    out: W,
    options: TtyOptions,
    /// Lines the last frame drew, which the next one moves up over.
    drawn_lines: usize,
    /// Event time of the last frame, for the redraw limit.
    last_frame: Option<DateTime<Utc>>,
}

impl<W: Write> TtyRenderer<W> {
    pub(crate) fn new(out: W, options: TtyOptions) -> TtyRenderer<W> {
        TtyRenderer {
            state: BuildState::default(),
            out,
            options,
            drawn_lines: 0,
            last_frame: None,
        }
    }

    /// Applies an event, redrawing when a frame is due by the event's time.
    pub(crate) fn handle(&mut self, stamped: &StampedEvent) {
        self.state.apply(stamped);
        if self.frame_due(stamped.time) {
            self.draw(stamped.time, false);
        }
    }

    /// Redraws with the clock at `now`, so running steps' times advance
    /// while no events arrive.
    pub(crate) fn tick(&mut self, now: DateTime<Utc>) {
        if self.frame_due(now) {
            self.draw(now, false);
        }
    }

    pub(crate) fn last_event_time(&self) -> Option<DateTime<Utc>> {
        self.state.last_time
    }

    /// Draws the final frame with every step, then the warnings, and
    /// returns the summary.
    pub(crate) fn finish(mut self) -> RenderSummary {
        let end = self.end_time();
        self.draw(end, true);
        for warning in &self.state.warnings {
            let _ = writeln!(self.out, "WARN: {}", format_warning(warning));
        }
        for line in format_explanations(&self.state.explanations) {
            let _ = writeln!(self.out, "{line}");
        }
        let _ = self.out.flush();
        self.state.summary()
    }

    fn frame_due(&self, now: DateTime<Utc>) -> bool {
        self.last_frame
            .is_none_or(|last| between(last, now) >= FRAME_INTERVAL)
    }

    /// Returns when the build ended: its start plus the duration its finish
    /// event reports, or else the last event's time.
    fn end_time(&self) -> DateTime<Utc> {
        let finished = self.state.finished.as_ref();
        let from_finish = finished
            .zip(self.state.start_time())
            .and_then(|(finished, start)| {
                chrono::Duration::from_std(finished.duration)
                    .ok()
                    .map(|duration| start + duration)
            });
        from_finish.or(self.state.last_time).unwrap_or_default()
    }

    fn draw(&mut self, now: DateTime<Utc>, last: bool) {
        let mut lines = self.frame(now, last);
        if !last {
            fit_height(&mut lines, self.options.height.max(2) - 1);
        }

        let mut text = String::new();
        if self.drawn_lines > 0 {
            text.push_str(&format!("\x1b[{}A", self.drawn_lines));
        }
        for (line, _) in &lines {
            text.push_str("\r\x1b[2K");
            text.push_str(line);
            text.push('\n');
        }
        // Clears what is left of a taller previous frame.
        text.push_str("\x1b[J");
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();

        self.drawn_lines = lines.len();
        self.last_frame = Some(now);
    }

    fn frame(&self, now: DateTime<Utc>, last: bool) -> Vec<(String, LineKind)> {
        let mut lines = vec![(self.header(now, last), LineKind::Header)];
        for step in self.state.started_steps() {
            let running = !last && !step.state.is_finished();
            let kind = if running {
                LineKind::Running
            } else {
                LineKind::Finished
            };
            lines.push((self.step_line(step, now), kind));
            if running {
                self.push_details(step, &mut lines);
            }
        }
        lines
    }

    fn header(&self, now: DateTime<Utc>, last: bool) -> String {
        let elapsed = self
            .state
            .start_time()
            .map(|start| between(start, now))
            .unwrap_or_default();
        let total = self.state.all_steps().count();
        let done = self
            .state
            .all_steps()
            .filter(|step| step.state.is_finished())
            .count();
        let mut header = format!(
            "[+] Building {:.1}s ({done}/{total})",
            elapsed.as_secs_f64()
        );
        if last
            && self
                .state
                .finished
                .as_ref()
                .is_some_and(|finished| finished.success)
        {
            header.push_str(" FINISHED");
        }
        truncate(&header, self.options.width)
    }

    fn step_line(&self, step: &Step, now: DateTime<Utc>) -> String {
        let (label, color) = match step.state {
            StepState::Cached => ("CACHED ", BLUE),
            StepState::Done => ("", BLUE),
            StepState::Failed => ("ERROR ", RED),
            StepState::Canceled => ("CANCELED ", RED),
            StepState::Queued | StepState::Running => ("", ""),
        };
        let elapsed = match (step.duration, step.started) {
            (Some(duration), _) => duration,
            (None, Some(started)) if !step.state.is_finished() => between(started, now),
            _ => Duration::ZERO,
        };
        let time = format!("{:.1}s", elapsed.as_secs_f64());
        let line = align(
            &format!(" => {label}{}", sanitize(&step.name)),
            &time,
            self.options.width,
        );
        self.paint(&line, color)
    }

    /// Adds a running step's task progress and last log lines.
    fn push_details(&self, step: &Step, lines: &mut Vec<(String, LineKind)>) {
        let width = self.options.width;
        for task in &step.tasks {
            let time = format!("{:.1}s", task.elapsed().as_secs_f64());
            let mut text = format!(" => => {} ", task_label(task));
            if let (true, Some(total), false) = (task.bar, task.total, task.done) {
                text.push_str(&bar(task.current, total, TASK_BAR_WIDTH));
                text.push(' ');
            }
            text.push_str(&task_amount(task));
            lines.push((align(&text, &time, width), LineKind::Detail));
        }

        let complete = step.logs.iter().map(|line| line.text.as_str());
        let all: Vec<&str> = complete.chain(step.partial_lines()).collect();
        let skip = all.len().saturating_sub(LOG_TAIL_LINES);
        for text in &all[skip..] {
            let line = truncate(&format!(" => => # {}", sanitize(text)), width);
            lines.push((self.paint(&line, DIM), LineKind::Detail));
        }
    }

    fn paint(&self, line: &str, color: &str) -> String {
        if self.options.color && !color.is_empty() {
            format!("{color}{line}{RESET}")
        } else {
            line.to_string()
        }
    }
}

/// Drops lines until `lines` fits in `max` rows: first the oldest finished
/// steps, then the oldest log and progress lines. Running steps and the
/// header stay.
fn fit_height(lines: &mut Vec<(String, LineKind)>, max: usize) {
    for kind in [LineKind::Finished, LineKind::Detail] {
        while lines.len() > max {
            match lines.iter().position(|(_, k)| *k == kind) {
                Some(index) => lines.remove(index),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: LineKind) -> (String, LineKind) {
        (format!("{kind:?}"), kind)
    }

    #[test]
    fn fit_height_drops_finished_first() {
        let mut lines = vec![
            line(LineKind::Header),
            line(LineKind::Finished),
            line(LineKind::Running),
            line(LineKind::Detail),
        ];
        fit_height(&mut lines, 3);
        let kinds: Vec<LineKind> = lines.iter().map(|(_, kind)| *kind).collect();
        assert_eq!(
            kinds,
            [LineKind::Header, LineKind::Running, LineKind::Detail]
        );
    }

    #[test]
    fn fit_height_keeps_running_steps() {
        let mut lines = vec![
            line(LineKind::Header),
            line(LineKind::Running),
            line(LineKind::Running),
        ];
        fit_height(&mut lines, 1);
        assert_eq!(lines.len(), 3);
    }
}
