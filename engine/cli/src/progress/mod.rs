//! Build progress for the terminal: renderers that read the solver's event
//! stream and print it as `docker build --progress` does.
//!
//! Every renderer takes times from the events, never from the clock, so the
//! same events always print the same text. The one exception is the live
//! tty view, which advances the running steps' times between events. When
//! the stream ends, a renderer returns a [`RenderSummary`]; the caller
//! prints [`render_failure`] from it when the build failed.

mod format;
mod plain;
mod rawjson;
mod state;
mod summary;
mod tty;

use std::fmt;
use std::io::{IsTerminal, Write};
use std::str::FromStr;

use strata_solver::events::StampedEvent;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use state::LogLine;
pub use summary::{FAILURE_LOG_LINES, FailedVertex, RenderSummary, render_failure};
pub use tty::TtyOptions;

use plain::PlainRenderer;
use rawjson::RawJsonRenderer;
use state::BuildState;
use tty::{FRAME_INTERVAL, TtyRenderer};

/// Terminal size used when stderr's cannot be read.
const FALLBACK_SIZE: (usize, usize) = (80, 24);

/// Output style of build progress, as in `docker build --progress`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// `tty` when stderr is a terminal, else `plain`.
    #[default]
    Auto,
    Tty,
    Plain,
    RawJson,
    /// Nothing is printed; the summary is still returned.
    Quiet,
}

const MODE_NAMES: [(&str, ProgressMode); 5] = [
    ("auto", ProgressMode::Auto),
    ("tty", ProgressMode::Tty),
    ("plain", ProgressMode::Plain),
    ("rawjson", ProgressMode::RawJson),
    ("quiet", ProgressMode::Quiet),
];

#[derive(Debug, thiserror::Error)]
#[error("Invalid progress mode `{0}`: use one of `auto`, `tty`, `plain`, `rawjson` or `quiet`")]
pub struct ProgressModeError(pub String);

impl FromStr for ProgressMode {
    type Err = ProgressModeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        MODE_NAMES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, mode)| *mode)
            .ok_or_else(|| ProgressModeError(text.to_string()))
    }
}

impl fmt::Display for ProgressMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = MODE_NAMES
            .iter()
            .find(|(_, mode)| mode == self)
            .map_or("auto", |(name, _)| name);
        f.write_str(name)
    }
}

impl ProgressMode {
    /// Resolves `Auto` to `Tty` when stderr is a terminal that can move
    /// the cursor, else to `Plain`. Other modes are returned as they are.
    pub fn resolve(self) -> ProgressMode {
        if self != ProgressMode::Auto {
            return self;
        }
        let dumb = std::env::var_os("TERM").is_some_and(|term| term == "dumb");
        if std::io::stderr().is_terminal() && !dumb {
            ProgressMode::Tty
        } else {
            ProgressMode::Plain
        }
    }
}

impl TtyOptions {
    /// Reads stderr's terminal size, and leaves colour off when `NO_COLOR`
    /// is set.
    pub fn from_stderr() -> TtyOptions {
        let (width, height) = terminal_size::terminal_size_of(std::io::stderr())
            .map(|(width, height)| (width.0 as usize, height.0 as usize))
            .unwrap_or(FALLBACK_SIZE);
        let color = std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
        TtyOptions {
            width,
            height,
            color,
        }
    }
}

/// Renders `events` to `out` until every sender is dropped, and returns
/// what the build did. `Auto` is resolved against stderr, and a tty
/// renderer fits its lines to stderr's terminal.
pub fn spawn_renderer(
    mode: ProgressMode,
    events: UnboundedReceiver<StampedEvent>,
    out: Box<dyn Write + Send>,
) -> JoinHandle<RenderSummary> {
    match mode.resolve() {
        ProgressMode::Tty => spawn_tty_renderer(events, out, TtyOptions::from_stderr()),
        ProgressMode::Plain => tokio::spawn(async move {
            let mut renderer = PlainRenderer::new(out);
            let mut events = events;
            while let Some(event) = events.recv().await {
                renderer.handle(&event);
            }
            renderer.finish()
        }),
        ProgressMode::RawJson => tokio::spawn(async move {
            let mut renderer = RawJsonRenderer::new(out);
            let mut events = events;
            while let Some(event) = events.recv().await {
                renderer.handle(&event);
            }
            renderer.finish()
        }),
        // `resolve` never returns `Auto`.
        ProgressMode::Quiet | ProgressMode::Auto => tokio::spawn(async move {
            let mut state = BuildState::default();
            let mut events = events;
            while let Some(event) = events.recv().await {
                state.apply(&event);
            }
            state.summary()
        }),
    }
}

/// Renders `events` as a live view fitted to `options`, for callers that
/// know the terminal, such as tests.
pub fn spawn_tty_renderer(
    mut events: UnboundedReceiver<StampedEvent>,
    out: Box<dyn Write + Send>,
    options: TtyOptions,
) -> JoinHandle<RenderSummary> {
    tokio::spawn(async move {
        let mut renderer = TtyRenderer::new(out, options);
        let mut ticks = tokio::time::interval(FRAME_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last_received = Instant::now();
        loop {
            // Events go first, so queued events are drawn from their own
            // times and a tick only fires when the stream is idle.
            tokio::select! {
                biased;
                event = events.recv() => match event {
                    Some(event) => {
                        renderer.handle(&event);
                        last_received = Instant::now();
                    }
                    None => break,
                },
                _ = ticks.tick() => {
                    // The live clock: the last event's time plus the wall
                    // time since it arrived.
                    let idle = chrono::Duration::from_std(last_received.elapsed()).unwrap_or_default();
                    if let Some(time) = renderer.last_event_time() {
                        renderer.tick(time + idle);
                    }
                }
            }
        }
        renderer.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_parses_docker_names() {
        assert_eq!("auto".parse::<ProgressMode>().unwrap(), ProgressMode::Auto);
        assert_eq!("tty".parse::<ProgressMode>().unwrap(), ProgressMode::Tty);
        assert_eq!(
            "plain".parse::<ProgressMode>().unwrap(),
            ProgressMode::Plain
        );
        assert_eq!(
            "rawjson".parse::<ProgressMode>().unwrap(),
            ProgressMode::RawJson
        );
        assert_eq!(
            "quiet".parse::<ProgressMode>().unwrap(),
            ProgressMode::Quiet
        );
    }

    #[test]
    fn mode_rejects_unknown_name() {
        let error = "json".parse::<ProgressMode>().unwrap_err().to_string();
        assert_eq!(
            error,
            "Invalid progress mode `json`: use one of `auto`, `tty`, `plain`, `rawjson` or `quiet`"
        );
    }

    #[test]
    fn mode_display_round_trips() {
        for (name, mode) in MODE_NAMES {
            assert_eq!(mode.to_string(), name);
        }
    }

    #[test]
    fn resolve_keeps_explicit_modes() {
        assert_eq!(ProgressMode::Plain.resolve(), ProgressMode::Plain);
        assert_eq!(ProgressMode::Tty.resolve(), ProgressMode::Tty);
        assert_ne!(ProgressMode::Auto.resolve(), ProgressMode::Auto);
    }
}
