//! `strata view`: open a recorded build in the native window, and the
//! window that `strata build --ui` shows beside a running build.

use super::open_engine;
use anyhow::{Context, bail};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread::JoinHandle;
use strata_solver::StampedEvent;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

#[derive(Args)]
pub struct ViewArgs {
    /// Build id, unique id prefix, or `^N` (`^0` is the newest build)
    #[arg(default_value = "^0")]
    pub reference: String,
}

pub fn run(root: Option<PathBuf>, args: ViewArgs) -> anyhow::Result<ExitCode> {
    check_display("strata view")?;
    let history = open_engine(root, None)?.history()?;
    let record = history.resolve(&args.reference)?;
    let events = history
        .events(&record.id)
        .with_context(|| format!("Failed to read the events of build `{}`", record.id))?;
    if events.is_empty() {
        bail!(
            "Build `{}` has no recorded events to show; it may have been imported without them",
            record.id
        );
    }
    let title = format!("{} ({})", short_id(&record.id), record.request.context);
    strata_ui_native::run_recorded(&title, events).map_err(window_error)?;
    Ok(ExitCode::SUCCESS)
}

/// Rejects a window command when no X display is named, before any work
/// starts, so the failure names the cause. The window speaks X11 only, so
/// a Wayland session needs XWayland, which sets `DISPLAY`.
pub fn check_display(command: &str) -> anyhow::Result<()> {
    if std::env::var_os("DISPLAY").is_some_and(|value| !value.is_empty()) {
        return Ok(());
    }
    bail!(
        "`{command}` opens a window but `DISPLAY` is not set; run it in a graphical session (or under `xvfb-run`)"
    )
}

fn window_error(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "Failed to open the build window: {error}; check that `DISPLAY` names a running X server with OpenGL"
    )
}

fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// The window `strata build --ui` opens, running on its own thread while
/// the build keeps the async runtime.
pub struct BuildWindow {
    /// The window's outcome; eframe's error is not `Send`, so it crosses
    /// threads as text.
    thread: JoinHandle<Result<(), String>>,
}

/// Opens the live window for a build titled `title` and passes `events` on
/// to it. Returns the receiver that now gets every event too, for the
/// terminal progress, and the window to wait for.
pub fn open_build_window(
    title: String,
    mut events: UnboundedReceiver<StampedEvent>,
) -> anyhow::Result<(UnboundedReceiver<StampedEvent>, BuildWindow)> {
    let (live, feed) = strata_ui_native::live_channel();
    let (forward, forwarded) = unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            // Once the window is closed the build goes on with terminal
            // progress only, so a failed send is not an error.
            live.send(event.clone());
            let _ = forward.send(event);
        }
    });
    let thread = std::thread::Builder::new()
        .name("strata-window".into())
        .spawn(move || strata_ui_native::run_live(&title, feed).map_err(|error| error.to_string()))
        .context("Failed to start the build window's thread")?;
    Ok((forwarded, BuildWindow { thread }))
}

impl BuildWindow {
    /// Waits until the user closes the window or presses Ctrl-C. A window
    /// that could not open is reported as a warning, because the build
    /// itself has run.
    pub async fn wait(self) {
        if !self.thread.is_finished() {
            eprintln!("The build has finished; close its window or press Ctrl-C to exit");
        }
        // Polling, rather than joining on a blocking task, leaves nothing
        // for the runtime to wait for when Ctrl-C returns early: the
        // window's thread ends with the process.
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        while !self.thread.is_finished() {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                _ = &mut interrupted => return,
            }
        }
        match self.thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("warning: {}", window_error(error)),
            Err(_) => eprintln!("warning: The build window stopped unexpectedly"),
        }
    }
}
