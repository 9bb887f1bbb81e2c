//! The plain renderer: the line-by-line log `docker build --progress=plain`
//! prints, one `#N` block per vertex, every log line kept.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use strata_solver::events::{Event, StampedEvent};

use super::format::{sanitize, task_amount, task_label};
use super::state::{
    BuildState, StepKey, StepState, between, format_explanations, format_transfer, format_warning,
    layer_task_id,
};
use super::summary::RenderSummary;

/// The shortest time between two printed updates of a running task, so a
/// transfer that reports every chunk does not flood the log.
const TASK_PRINT_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) struct PlainRenderer<W: Write> {
    state: BuildState,
    out: W,
    /// The step whose block the last printed line belongs to.
    current: Option<StepKey>,
    printed_any: bool,
    /// When each task's progress was last printed, by step and task id.
    task_printed: HashMap<(StepKey, String), DateTime<Utc>>,
}

impl<W: Write> PlainRenderer<W> {
    pub(crate) fn new(out: W) -> PlainRenderer<W> {
        PlainRenderer {
            state: BuildState::default(),
            out,
            current: None,
            printed_any: false,
            task_printed: HashMap::new(),
        }
    }

    pub(crate) fn handle(&mut self, stamped: &StampedEvent) {
        let logs_before = self
            .step_key(&stamped.event)
            .map(|key| self.log_count(&key));
        // A phase may end under a new name that states its outcome, such
        // as whether a cache mount was seeded.
        let renamed = match &stamped.event {
            Event::Phase {
                id,
                name,
                duration_ms: Some(_),
            } => self
                .state
                .step(&StepKey::Phase(id.clone()))
                .is_some_and(|step| step.name != *name)
                .then(|| name.clone()),
            _ => None,
        };
        let Some(key) = self.state.apply(stamped) else {
            return;
        };
        if let Some(name) = renamed {
            self.print_line(&key, &name);
        }
        // Finishing a step also ends its unfinished lines, so any event can
        // bring new complete lines.
        let logs_before = logs_before.unwrap_or(0);
        if self.log_count(&key) > logs_before {
            self.print_logs(&key, logs_before);
        }

        match &stamped.event {
            Event::VertexStarted { .. } => self.enter(&key),
            Event::VertexCached { .. } => self.print_line(&key, "CACHED"),
            Event::ContextTransfer { stats, .. } => self.print_line(&key, &format_transfer(stats)),
            Event::VertexCompleted { .. }
            | Event::Phase {
                duration_ms: Some(_),
                ..
            } => self.print_done(&key),
            Event::VertexFailed { error, .. } => {
                let canceled = self
                    .state
                    .step(&key)
                    .is_some_and(|s| s.state == StepState::Canceled);
                if canceled {
                    self.print_line(&key, "CANCELED");
                } else {
                    self.print_line(&key, &format!("ERROR: {error}"));
                }
            }
            Event::Progress { id, .. } => self.print_task(&key, id, stamped.time),
            Event::LayerProgress { layer, status, .. } => {
                let id = layer_task_id(layer, *status);
                self.print_task(&key, &id, stamped.time)
            }
            Event::Phase {
                duration_ms: None, ..
            } => self.enter(&key),
            _ => {}
        }
        let _ = self.out.flush();
    }

    /// Prints the warnings, which BuildKit keeps for the end of the log,
    /// and returns the summary.
    pub(crate) fn finish(mut self) -> RenderSummary {
        if !self.state.warnings.is_empty() && self.printed_any {
            let _ = writeln!(self.out);
        }
        for warning in &self.state.warnings {
            let _ = writeln!(self.out, "WARN: {}", format_warning(warning));
        }
        for line in format_explanations(&self.state.explanations) {
            let _ = writeln!(self.out, "{line}");
        }
        let _ = self.out.flush();
        self.state.summary()
    }

    /// Returns the step an event is about, before it is applied, so that
    /// the step's log count can be read beforehand. Progress and phase
    /// events are left out because they never carry log lines.
    fn step_key(&self, event: &Event) -> Option<StepKey> {
        match event {
            Event::VertexCompleted { vertex, .. }
            | Event::VertexFailed { vertex, .. }
            | Event::VertexCached { vertex, .. }
            | Event::Log { vertex, .. } => Some(StepKey::Vertex(vertex.clone())),
            _ => None,
        }
    }

    fn log_count(&self, key: &StepKey) -> usize {
        self.state.step(key).map_or(0, |step| step.logs.len())
    }

    /// Makes `key` the current block, closing the previous one: a step that
    /// is still running gets `#N ...`, then a blank line separates the
    /// blocks and the step's header opens the new one.
    fn enter(&mut self, key: &StepKey) {
        if self.current.as_ref() == Some(key) {
            return;
        }
        let previous = self.current.take();
        let unfinished = previous
            .as_ref()
            .and_then(|previous| self.state.step(previous));
        if let Some(step) = unfinished.filter(|step| !step.state.is_finished()) {
            let _ = writeln!(self.out, "#{} ...", step.number.unwrap_or(0));
        }
        if self.printed_any {
            let _ = writeln!(self.out);
        }
        if let Some(step) = self.state.step(key) {
            let _ = writeln!(self.out, "#{} {}", step.number.unwrap_or(0), step.name);
        }
        self.printed_any = true;
        self.current = Some(key.clone());
    }

    fn print_line(&mut self, key: &StepKey, text: &str) {
        self.enter(key);
        let number = self
            .state
            .step(key)
            .and_then(|step| step.number)
            .unwrap_or(0);
        let _ = writeln!(self.out, "#{number} {text}");
    }

    fn print_logs(&mut self, key: &StepKey, from: usize) {
        self.enter(key);
        let Some(step) = self.state.step(key) else {
            return;
        };
        let number = step.number.unwrap_or(0);
        // Escape sequences and control bytes from a step would drive the
        // reader's terminal; the history keeps the raw bytes.
        for line in &step.logs[from..] {
            let _ = writeln!(
                self.out,
                "#{number} {:.3} {}",
                line.offset.as_secs_f64(),
                sanitize(&line.text)
            );
        }
    }

    fn print_done(&mut self, key: &StepKey) {
        let duration = self
            .state
            .step(key)
            .and_then(|step| step.duration)
            .unwrap_or_default();
        self.print_line(key, &format!("DONE {:.1}s", duration.as_secs_f64()));
    }

    /// Prints a task's progress when it completes or when a second has
    /// passed since it was last printed.
    fn print_task(&mut self, key: &StepKey, id: &str, time: DateTime<Utc>) {
        let Some(task) = self
            .state
            .step(key)
            .and_then(|s| s.tasks.iter().find(|t| t.id == id))
        else {
            return;
        };
        let printed_key = (key.clone(), id.to_string());
        let due = match self.task_printed.get(&printed_key) {
            Some(last) => task.is_complete() || between(*last, time) >= TASK_PRINT_INTERVAL,
            None => true,
        };
        if !due {
            return;
        }
        let mut text = format!(
            "{} {} {:.1}s",
            task_label(task),
            task_amount(task),
            task.elapsed().as_secs_f64()
        );
        if task.is_complete() {
            text.push_str(" done");
        }
        self.task_printed.insert(printed_key, time);
        self.print_line(key, &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(id: &str, name: &str, duration_ms: Option<u64>) -> StampedEvent {
        StampedEvent {
            v: strata_solver::events::EVENT_FORMAT_VERSION,
            time: Utc::now(),
            event: Event::Phase {
                id: id.into(),
                name: name.into(),
                duration_ms,
            },
        }
    }

    #[test]
    fn renamed_phase_prints_outcome() {
        let mut renderer = PlainRenderer::new(Vec::new());
        renderer.handle(&phase("mount-pkgs", "importing cache mount `pkgs`", None));
        renderer.handle(&phase("mount-pkgs", "seeded cache mount `pkgs`", Some(5)));
        let text = String::from_utf8(renderer.out.clone()).unwrap();
        assert!(text.contains("seeded cache mount `pkgs`"), "{text}");
        assert!(text.contains("DONE"), "{text}");
    }
}
