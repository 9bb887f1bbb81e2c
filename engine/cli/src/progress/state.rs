//! The build as the renderers see it: one step per vertex or phase, with
//! its state, times and every log line, rebuilt from the event stream.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use strata_llb::{Digest, SourceLocation};
use strata_solver::events::{
    Event, ExplainedStep, LayerStatus, LogStream, StampedEvent, TransferStats,
};

use super::summary::{FAILURE_LOG_LINES, FailedVertex, RenderSummary};

/// The error text the solver sends for a vertex stopped because another
/// one failed or the build was cancelled.
const CANCELED_ERROR: &str = "canceled";

/// One complete line of a step's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Time from the step's start to the chunk that began the line.
    pub offset: Duration,
    pub stream: LogStream,
    pub text: String,
}

/// Identity of a step: a graph vertex, or a phase outside the graph such
/// as exporting.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum StepKey {
    Vertex(Digest),
    Phase(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StepState {
    Queued,
    Running,
    Cached,
    Done,
    Failed,
    Canceled,
}

impl StepState {
    pub(crate) fn is_finished(self) -> bool {
        !matches!(self, StepState::Queued | StepState::Running)
    }
}

/// Progress of one long task inside a step, such as a transfer.
#[derive(Clone, Debug)]
pub(crate) struct TaskProgress {
    pub id: String,
    /// Text printed before the amount; `None` prints the id and a colon.
    pub label: Option<String>,
    pub current: u64,
    pub total: Option<u64>,
    pub unit: String,
    /// Set by a final status, for tasks whose end is more than reaching
    /// the total, such as a download that still has to be verified.
    pub done: bool,
    /// Whether the tty view draws a bar for this task.
    pub bar: bool,
    pub started: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

impl TaskProgress {
    pub(crate) fn is_complete(&self) -> bool {
        if self.bar {
            return self.done;
        }
        self.total.is_some_and(|total| self.current >= total)
    }

    pub(crate) fn elapsed(&self) -> Duration {
        between(self.started, self.updated)
    }
}

/// A line still waiting for its newline, and the time its first chunk came.
#[derive(Clone, Debug)]
struct PartialLine {
    text: String,
    time: DateTime<Utc>,
}

/// A vertex or phase as the renderers track it.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub name: String,
    pub location: Option<SourceLocation>,
    pub state: StepState,
    /// Number in order of first start, from 1, as in `#3`.
    pub number: Option<usize>,
    pub started: Option<DateTime<Utc>>,
    pub duration: Option<Duration>,
    pub error: Option<String>,
    pub logs: Vec<LogLine>,
    partial: [Option<PartialLine>; 2],
    pub tasks: Vec<TaskProgress>,
}

impl Step {
    fn new(name: String) -> Step {
        Step {
            name,
            location: None,
            state: StepState::Queued,
            number: None,
            started: None,
            duration: None,
            error: None,
            logs: Vec::new(),
            partial: [None, None],
            tasks: Vec::new(),
        }
    }

    /// Returns the text of the unfinished last lines, stdout first.
    pub(crate) fn partial_lines(&self) -> impl Iterator<Item = &str> {
        self.partial.iter().flatten().map(|line| line.text.as_str())
    }

    fn append_log(&mut self, stream: LogStream, data: &str, time: DateTime<Utc>) {
        let slot = stream_slot(stream);
        for piece in data.split_inclusive('\n') {
            match piece.strip_suffix('\n') {
                Some(end) => {
                    let (mut text, began) = match self.partial[slot].take() {
                        Some(partial) => (partial.text, partial.time),
                        None => (String::new(), time),
                    };
                    text.push_str(end);
                    self.push_line(stream, text, began);
                }
                None => {
                    let partial = self.partial[slot].get_or_insert_with(|| PartialLine {
                        text: String::new(),
                        time,
                    });
                    partial.text.push_str(piece);
                }
            }
        }
    }

    /// Ends unfinished lines, because no more output comes once a step ends.
    fn flush_partial(&mut self) {
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            if let Some(partial) = self.partial[stream_slot(stream)].take() {
                self.push_line(stream, partial.text, partial.time);
            }
        }
    }

    fn push_line(&mut self, stream: LogStream, mut text: String, began: DateTime<Utc>) {
        // Programs that print CRLF line ends leave a `\r` the terminal would
        // render as a return to column 0.
        if text.ends_with('\r') {
            text.pop();
        }
        let offset = self
            .started
            .map(|started| between(started, began))
            .unwrap_or_default();
        self.logs.push(LogLine {
            offset,
            stream,
            text,
        });
    }

    fn finish(&mut self, state: StepState, duration: Option<Duration>) {
        self.flush_partial();
        self.state = state;
        self.duration = duration;
    }
}

/// A warning from the frontend or the solver, with where it points.
#[derive(Clone, Debug)]
pub(crate) struct Warning {
    pub message: String,
    pub location: Option<SourceLocation>,
}

#[derive(Clone, Debug)]
pub(crate) struct Finished {
    pub success: bool,
    pub duration: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct BuildState {
    steps: HashMap<StepKey, Step>,
    /// Every step in the order it was first seen.
    order: Vec<StepKey>,
    /// Steps in the order they started; a step's number is its place here.
    started_order: Vec<StepKey>,
    /// The phase that started last and has not finished, which vertex-less
    /// progress belongs to.
    open_phase: Option<String>,
    first_failure: Option<StepKey>,
    pub build_started: Option<DateTime<Utc>>,
    pub first_time: Option<DateTime<Utc>>,
    pub last_time: Option<DateTime<Utc>>,
    pub warnings: Vec<Warning>,
    /// Why each step that ran missed the cache.
    pub explanations: Vec<ExplainedStep>,
    pub finished: Option<Finished>,
}

impl BuildState {
    /// Applies one event and returns the step it changed, if any.
    pub(crate) fn apply(&mut self, stamped: &StampedEvent) -> Option<StepKey> {
        let time = stamped.time;
        self.first_time.get_or_insert(time);
        self.last_time = Some(time);
        match &stamped.event {
            Event::BuildStarted { .. } => {
                self.build_started = Some(time);
                None
            }
            Event::VertexQueued {
                vertex,
                name,
                location,
                ..
            } => {
                let key = StepKey::Vertex(vertex.clone());
                let step = self.step_mut(&key);
                step.name = name.clone();
                step.location = location.clone();
                Some(key)
            }
            Event::VertexStarted { vertex } => {
                let key = StepKey::Vertex(vertex.clone());
                self.start(&key, time);
                Some(key)
            }
            Event::VertexCached { vertex, .. } => {
                let key = StepKey::Vertex(vertex.clone());
                self.start(&key, time);
                self.step_mut(&key).finish(StepState::Cached, None);
                Some(key)
            }
            Event::VertexCompleted {
                vertex,
                duration_ms,
                ..
            } => {
                let key = StepKey::Vertex(vertex.clone());
                self.start(&key, time);
                let duration = Duration::from_millis(*duration_ms);
                self.step_mut(&key).finish(StepState::Done, Some(duration));
                Some(key)
            }
            Event::VertexFailed {
                vertex,
                error,
                duration_ms,
            } => {
                let key = StepKey::Vertex(vertex.clone());
                self.fail(&key, error, Duration::from_millis(*duration_ms), time);
                Some(key)
            }
            Event::Log {
                vertex,
                stream,
                data,
            } => {
                let key = StepKey::Vertex(vertex.clone());
                self.start(&key, time);
                self.step_mut(&key).append_log(*stream, data, time);
                Some(key)
            }
            Event::Progress {
                vertex,
                id,
                current,
                total,
                unit,
            } => {
                let key = match (vertex, &self.open_phase) {
                    (Some(vertex), _) => StepKey::Vertex(vertex.clone()),
                    (None, Some(phase)) => StepKey::Phase(phase.clone()),
                    (None, None) => StepKey::Phase(id.clone()),
                };
                self.start(&key, time);
                let update = TaskProgress {
                    id: id.clone(),
                    label: None,
                    current: *current,
                    total: *total,
                    unit: unit.clone(),
                    done: false,
                    bar: false,
                    started: time,
                    updated: time,
                };
                self.step_mut(&key).update_task(update);
                Some(key)
            }
            Event::LayerProgress {
                phase,
                layer,
                status,
                current,
                total,
            } => {
                let key = StepKey::Phase(phase.clone());
                self.start(&key, time);
                self.step_mut(&key)
                    .update_task(layer_task(layer, *status, *current, *total, time));
                Some(key)
            }
            Event::Warning { message, location } => {
                let warning = Warning {
                    message: message.clone(),
                    location: location.clone(),
                };
                self.warnings.push(warning);
                None
            }
            Event::Phase {
                id,
                name,
                duration_ms,
            } => Some(self.apply_phase(id, name, *duration_ms, time)),
            Event::CacheKey { .. } => None,
            Event::CacheImported { .. } => None,
            Event::ContextTransfer { vertex, .. } => {
                let key = StepKey::Vertex(vertex.clone());
                self.start(&key, time);
                Some(key)
            }
            Event::Explanations { steps } => {
                self.explanations = steps.clone();
                None
            }
            Event::BuildFinished {
                success,
                duration_ms,
                ..
            } => {
                let duration = Duration::from_millis(*duration_ms);
                self.finished = Some(Finished {
                    success: *success,
                    duration,
                });
                None
            }
        }
    }

    fn apply_phase(
        &mut self,
        id: &str,
        name: &str,
        duration_ms: Option<u64>,
        time: DateTime<Utc>,
    ) -> StepKey {
        let key = StepKey::Phase(id.to_string());
        self.step_mut(&key).name = name.to_string();
        self.start(&key, time);
        match duration_ms {
            Some(ms) => {
                self.step_mut(&key)
                    .finish(StepState::Done, Some(Duration::from_millis(ms)));
                if self.open_phase.as_deref() == Some(id) {
                    self.open_phase = None;
                }
            }
            None => self.open_phase = Some(id.to_string()),
        }
        key
    }

    fn fail(&mut self, key: &StepKey, error: &str, duration: Duration, time: DateTime<Utc>) {
        self.start(key, time);
        let canceled = error == CANCELED_ERROR;
        let step = self.step_mut(key);
        step.error = Some(error.to_string());
        let state = if canceled {
            StepState::Canceled
        } else {
            StepState::Failed
        };
        step.finish(state, Some(duration));
        if !canceled && self.first_failure.is_none() {
            self.first_failure = Some(key.clone());
        }
    }

    /// Marks a step running unless it has started already. Events about a
    /// step that never started (a log before its start event) start it.
    fn start(&mut self, key: &StepKey, time: DateTime<Utc>) {
        let number = self.started_order.len() + 1;
        let step = self.step_mut(key);
        if step.number.is_some() {
            return;
        }
        step.number = Some(number);
        step.started = Some(time);
        step.state = StepState::Running;
        self.started_order.push(key.clone());
    }

    fn step_mut(&mut self, key: &StepKey) -> &mut Step {
        if !self.steps.contains_key(key) {
            let name = match key {
                StepKey::Vertex(digest) => digest.short().to_string(),
                StepKey::Phase(id) => id.clone(),
            };
            self.steps.insert(key.clone(), Step::new(name));
            self.order.push(key.clone());
        }
        self.steps.get_mut(key).expect("step inserted above")
    }

    pub(crate) fn step(&self, key: &StepKey) -> Option<&Step> {
        self.steps.get(key)
    }

    /// Returns the steps that have started, in start order.
    pub(crate) fn started_steps(&self) -> impl Iterator<Item = &Step> {
        self.started_order.iter().map(|key| &self.steps[key])
    }

    /// Returns every step, started or not, in the order first seen.
    pub(crate) fn all_steps(&self) -> impl Iterator<Item = &Step> {
        self.order.iter().map(|key| &self.steps[key])
    }

    /// Returns the time the build started: its start event, or else the
    /// first event seen.
    pub(crate) fn start_time(&self) -> Option<DateTime<Utc>> {
        self.build_started.or(self.first_time)
    }

    pub(crate) fn summary(&self) -> RenderSummary {
        let mut summary = RenderSummary::default();
        let vertices = self
            .order
            .iter()
            .filter(|key| matches!(key, StepKey::Vertex(_)));
        for key in vertices {
            summary.total += 1;
            match self.steps[key].state {
                StepState::Cached => summary.cached += 1,
                StepState::Done => summary.ran += 1,
                StepState::Failed => summary.failed += 1,
                StepState::Canceled => summary.canceled += 1,
                StepState::Queued | StepState::Running => {}
            }
        }
        summary.failure = self
            .first_failure
            .as_ref()
            .map(|key| failed_vertex(&self.steps[key]));
        summary.success = self.finished.as_ref().map(|finished| finished.success);
        summary.duration = self.finished.as_ref().map(|finished| finished.duration);
        summary.warnings = self.warnings.iter().map(format_warning).collect();
        summary
    }
}

impl Step {
    fn update_task(&mut self, update: TaskProgress) {
        match self.tasks.iter_mut().find(|task| task.id == update.id) {
            Some(task) => {
                task.current = update.current;
                task.total = update.total;
                task.unit = update.unit;
                task.done = update.done;
                task.updated = update.updated;
            }
            None => self.tasks.push(update),
        }
    }
}

/// Builds the task update of a layer event: the download of the blob,
/// labelled with its short digest as `docker pull` shows it, or its
/// unpacking.
fn layer_task(
    layer: &Digest,
    status: LayerStatus,
    current: u64,
    total: u64,
    time: DateTime<Utc>,
) -> TaskProgress {
    let short = short_digest(layer);
    let label = match status {
        LayerStatus::Downloading | LayerStatus::Verified => short,
        LayerStatus::Extracting | LayerStatus::Extracted => format!("extracting {short}"),
    };
    TaskProgress {
        id: layer_task_id(layer, status),
        label: Some(label),
        current,
        total: Some(total),
        unit: "B".into(),
        done: status.is_final(),
        bar: true,
        started: time,
        updated: time,
    }
}

/// Returns the id of the task a layer update belongs to, one for the
/// download and one for the unpacking.
pub(crate) fn layer_task_id(layer: &Digest, status: LayerStatus) -> String {
    match status {
        LayerStatus::Downloading | LayerStatus::Verified => format!("{layer} download"),
        LayerStatus::Extracting | LayerStatus::Extracted => format!("{layer} extract"),
    }
}

/// Returns `sha256:` and the first 12 hex digits of a digest.
fn short_digest(digest: &Digest) -> String {
    let text = digest.as_str();
    let end = text
        .find(':')
        .map_or(12, |colon| colon + 13)
        .min(text.len());
    text[..end].to_string()
}

fn failed_vertex(step: &Step) -> FailedVertex {
    let skip = step.logs.len().saturating_sub(FAILURE_LOG_LINES);
    FailedVertex {
        name: step.name.clone(),
        error: step.error.clone().unwrap_or_default(),
        location: step.location.clone(),
        last_logs: step.logs[skip..].to_vec(),
    }
}

/// Formats a warning as BuildKit prints it, with the line it points at.
/// Formats the cache-miss summary printed at the end of a build: one line
/// per step that ran, with its reasons.
pub(crate) fn format_explanations(explanations: &[ExplainedStep]) -> Vec<String> {
    if explanations.is_empty() {
        return Vec::new();
    }
    let mut lines = vec!["Why steps ran:".to_string()];
    for explained in explanations {
        lines.push(format!(
            " => {}: {}",
            explained.step,
            explained.reasons.join("; ")
        ));
    }
    lines
}

/// Describes a context sync in the words of a progress line.
pub(crate) fn format_transfer(stats: &TransferStats) -> String {
    // A sync that read only the paths a watcher or monitor reported is
    // labelled as such, because it did not look at the other files.
    let read = match stats.full_walk {
        true => format!("{} of {} files changed", stats.copied_files, stats.walked),
        false => format!(
            "{} of {} reported paths changed",
            stats.copied_files, stats.walked
        ),
    };
    format!(
        "transferred context: {read} ({}), {} removed, {} ignored, {:.1}s",
        super::format::human_size(stats.copied_bytes),
        stats.removed,
        stats.ignored,
        stats.duration_ms as f64 / 1000.0
    )
}

pub(crate) fn format_warning(warning: &Warning) -> String {
    match &warning.location {
        Some(location) => format!("{} (line {})", warning.message, location.start_line),
        None => warning.message.clone(),
    }
}

fn stream_slot(stream: LogStream) -> usize {
    match stream {
        LogStream::Stdout => 0,
        LogStream::Stderr => 1,
    }
}

/// Returns the time from `earlier` to `later`, zero if the clock that
/// stamped them went backwards.
pub(crate) fn between(earlier: DateTime<Utc>, later: DateTime<Utc>) -> Duration {
    (later - earlier).to_std().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use strata_solver::events::EVENT_FORMAT_VERSION;

    fn at(ms: i64, event: Event) -> StampedEvent {
        let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let time = start + chrono::Duration::milliseconds(ms);
        StampedEvent {
            v: EVENT_FORMAT_VERSION,
            time,
            event,
        }
    }

    fn vertex() -> Digest {
        Digest::of_bytes(b"vertex")
    }

    fn log(stream: LogStream, data: &str) -> Event {
        Event::Log {
            vertex: vertex(),
            stream,
            data: data.into(),
        }
    }

    fn texts(state: &BuildState) -> Vec<&str> {
        let step = state.step(&StepKey::Vertex(vertex())).unwrap();
        step.logs.iter().map(|line| line.text.as_str()).collect()
    }

    #[test]
    fn transfer_line_says_whether_the_sync_walked() {
        let mut stats = TransferStats {
            walked: 10_003,
            copied_files: 1,
            copied_bytes: 2048,
            duration_ms: 100,
            ..TransferStats::default()
        };
        assert_eq!(
            format_transfer(&stats),
            "transferred context: 1 of 10003 files changed (2.048kB), 0 removed, 0 ignored, 0.1s"
        );
        stats.full_walk = false;
        stats.walked = 3;
        assert_eq!(
            format_transfer(&stats),
            "transferred context: 1 of 3 reported paths changed (2.048kB), 0 removed, 0 ignored, 0.1s"
        );
    }

    #[test]
    fn log_lines_join_across_chunks() {
        let mut state = BuildState::default();
        state.apply(&at(0, Event::VertexStarted { vertex: vertex() }));
        state.apply(&at(100, log(LogStream::Stdout, "one\ntw")));
        state.apply(&at(200, log(LogStream::Stderr, "err")));
        state.apply(&at(300, log(LogStream::Stdout, "o\r\n")));
        assert_eq!(texts(&state), ["one", "two"]);

        let step = state.step(&StepKey::Vertex(vertex())).unwrap();
        assert_eq!(step.logs[1].offset, Duration::from_millis(100));
        assert_eq!(step.partial_lines().collect::<Vec<_>>(), ["err"]);
    }

    #[test]
    fn finish_flushes_partial_lines() {
        let mut state = BuildState::default();
        state.apply(&at(0, Event::VertexStarted { vertex: vertex() }));
        state.apply(&at(100, log(LogStream::Stderr, "no newline")));
        let failed = Event::VertexFailed {
            vertex: vertex(),
            error: "exit code: 1".into(),
            duration_ms: 150,
        };
        state.apply(&at(150, failed));
        assert_eq!(texts(&state), ["no newline"]);

        let summary = state.summary();
        assert_eq!(summary.failed, 1);
        assert_eq!(summary.failure.unwrap().last_logs.len(), 1);
    }

    #[test]
    fn canceled_vertex_is_not_the_failure() {
        let mut state = BuildState::default();
        state.apply(&at(0, Event::VertexStarted { vertex: vertex() }));
        let canceled = Event::VertexFailed {
            vertex: vertex(),
            error: CANCELED_ERROR.into(),
            duration_ms: 5,
        };
        state.apply(&at(5, canceled));
        let summary = state.summary();
        assert_eq!(summary.canceled, 1);
        assert_eq!(summary.failed, 0);
        assert_eq!(summary.failure, None);
    }

    #[test]
    fn vertexless_progress_joins_open_phase() {
        let mut state = BuildState::default();
        let phase = Event::Phase {
            id: "export".into(),
            name: "exporting".into(),
            duration_ms: None,
        };
        state.apply(&at(0, phase));
        let progress = Event::Progress {
            vertex: None,
            id: "exporting layers".into(),
            current: 1,
            total: Some(2),
            unit: "layers".into(),
        };
        let key = state.apply(&at(10, progress));
        assert_eq!(key, Some(StepKey::Phase("export".into())));
        assert_eq!(state.all_steps().count(), 1);
    }

    #[test]
    fn layer_progress_joins_its_phase() {
        let mut state = BuildState::default();
        let phase = Event::Phase {
            id: "pull-app".into(),
            name: "pulling app".into(),
            duration_ms: None,
        };
        state.apply(&at(0, phase));
        let layer = Digest::of_bytes(b"layer");
        let update = |status, current| Event::LayerProgress {
            phase: "pull-app".into(),
            layer: layer.clone(),
            status,
            current,
            total: 100,
        };
        state.apply(&at(10, update(LayerStatus::Downloading, 0)));
        let key = state.apply(&at(20, update(LayerStatus::Downloading, 100)));
        assert_eq!(key, Some(StepKey::Phase("pull-app".into())));

        let step = state.step(&StepKey::Phase("pull-app".into())).unwrap();
        let task = &step.tasks[0];
        assert_eq!(task.label.as_deref(), Some(&layer.as_str()[..19]));
        assert!(!task.is_complete(), "every byte is in but not yet verified");

        state.apply(&at(30, update(LayerStatus::Verified, 100)));
        state.apply(&at(40, update(LayerStatus::Extracting, 50)));
        let step = state.step(&StepKey::Phase("pull-app".into())).unwrap();
        assert_eq!(step.tasks.len(), 2, "one download and one extract task");
        assert!(step.tasks[0].is_complete(), "verified ends the download");
        assert!(!step.tasks[1].is_complete(), "extraction is half done");
    }
}
