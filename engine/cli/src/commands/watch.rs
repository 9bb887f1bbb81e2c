//! `strata watch`: build, then rebuild on every settled context change.

use super::build::{BuildArgs, print_build_error};
use super::open_engine;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use strata_cli::progress::{ProgressMode, spawn_renderer};
use strata_engine::{ChangeBatch, WatchSession};
use strata_solver::{Event, EventSink, ExplainedStep, StampedEvent, TransferStats};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Changed paths printed per rebuild before the rest are counted.
const SHOWN_PATHS: usize = 10;

/// Exit status after Ctrl-C stopped a running build (128 + SIGINT), as
/// shells and `docker build` report it.
const INTERRUPTED: u8 = 130;

#[derive(Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub build: BuildArgs,
}

/// Builds, then rebuilds after every change until Ctrl-C. Exits 0 when
/// stopped while waiting, 130 when stopped during a build.
pub async fn run(root: Option<PathBuf>, args: WatchArgs) -> anyhow::Result<ExitCode> {
    let args = args.build;
    let mode: ProgressMode = args.progress.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let request = args.request()?;
    let engine = open_engine(root, args.max_parallel)?;
    let mut session = engine.watch(request)?;

    let interrupt = CancellationToken::new();
    let on_interrupt = interrupt.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });

    let context = session.request().context.display().to_string();
    loop {
        let report = build_once(&session, mode, &interrupt).await?;
        if interrupt.is_cancelled() {
            eprintln!("watch: interrupted during the build; stopped");
            return Ok(ExitCode::from(INTERRUPTED));
        }
        print_report(&report);
        eprintln!("watch: waiting for changes in `{context}` (Ctrl-C to stop)");
        let Some(batch) = session.wait_for_change(&interrupt).await else {
            eprintln!("watch: stopped");
            return Ok(ExitCode::SUCCESS);
        };
        print_changes(&batch);
    }
}

/// The events of one build that the watch summary prints.
#[derive(Default)]
struct BuildReport {
    succeeded: bool,
    transfers: Vec<TransferStats>,
    explanations: Vec<ExplainedStep>,
}

async fn build_once(
    session: &WatchSession<'_>,
    mode: ProgressMode,
    interrupt: &CancellationToken,
) -> anyhow::Result<BuildReport> {
    let (events, receiver) = EventSink::channel();
    let (forward, forwarded) = mpsc::unbounded_channel();
    let collector = tokio::spawn(collect(receiver, forward));
    let renderer = spawn_renderer(mode, forwarded, Box::new(std::io::stderr()));

    let outcome = session.build(&events, &interrupt.child_token()).await;
    drop(events);
    let mut report = collector
        .await
        .context("The event collector stopped unexpectedly")?;
    let summary = renderer
        .await
        .context("The progress renderer stopped unexpectedly")?;
    report.succeeded = outcome.is_ok();
    if let Err(error) = outcome {
        print_build_error(session.request(), &summary, error);
    }
    Ok(report)
}

/// Passes every event on to the renderer, keeping the transfer and
/// explanation events for the summary.
async fn collect(
    mut receiver: mpsc::UnboundedReceiver<StampedEvent>,
    forward: mpsc::UnboundedSender<StampedEvent>,
) -> BuildReport {
    let mut report = BuildReport::default();
    while let Some(stamped) = receiver.recv().await {
        match &stamped.event {
            Event::ContextTransfer { stats, .. } => report.transfers.push(stats.clone()),
            Event::Explanations { steps } => report.explanations = steps.clone(),
            _ => {}
        }
        let _ = forward.send(stamped);
    }
    report
}

fn print_changes(batch: &ChangeBatch) {
    if let Some(reason) = &batch.rescan {
        eprintln!("watch: rebuilding after a full rescan: {reason}");
    }
    if !batch.paths.is_empty() {
        eprintln!(
            "watch: changed: {}",
            list_paths(batch.paths.iter(), batch.paths.len())
        );
    }
}

fn print_report(report: &BuildReport) {
    for stats in &report.transfers {
        let walk = if stats.full_walk {
            "walked the whole context"
        } else {
            "checked only the changed paths"
        };
        eprintln!(
            "watch: transferred {} ({}), removed {}; {walk} ({} entries)",
            plural(stats.copied_files, "file"),
            format_bytes(stats.copied_bytes),
            stats.removed,
            stats.walked,
        );
        if stats.changed_total > 0 {
            let paths = list_paths(stats.changed_paths.iter(), stats.changed_total as usize);
            eprintln!("watch: transferred paths: {paths}");
        }
    }
    for step in &report.explanations {
        if step.reasons.is_empty() {
            eprintln!("watch: ran {}", step.step);
        } else {
            eprintln!("watch: ran {}: {}", step.step, step.reasons.join("; "));
        }
    }
    if report.succeeded {
        eprintln!("watch: build succeeded");
    } else {
        eprintln!("watch: build failed; fix the error and save to rebuild");
    }
}

/// Lists up to [`SHOWN_PATHS`] paths and counts the rest of `total`.
fn list_paths<'a>(paths: impl Iterator<Item = &'a String>, total: usize) -> String {
    let shown: Vec<&str> = paths.take(SHOWN_PATHS).map(String::as_str).collect();
    let mut text = shown.join(", ");
    if total > shown.len() {
        text.push_str(&format!(" and {} more", total - shown.len()));
    }
    text
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn format_bytes(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}
