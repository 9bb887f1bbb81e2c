pub mod build;
pub mod cache;
pub mod check;
pub mod debug;
pub mod history;
pub mod image;
pub mod ui;
pub mod view;
pub mod watch;

use std::path::PathBuf;
use strata_engine::{Engine, EngineOptions, MonitorConfig};

/// Environment variable that turns on the context monitor (`1`, `true`,
/// `on` or `yes`; `0`, `false`, `off` or `no`, the default, turn it off).
pub const CONTEXT_MONITOR_ENV: &str = "STRATA_CONTEXT_MONITOR";

pub fn open_engine(root: Option<PathBuf>, max_parallel: Option<usize>) -> anyhow::Result<Engine> {
    Engine::open(EngineOptions {
        root,
        max_parallel,
        context_monitor: context_monitor()?,
    })
}

/// Returns how to start this program as a context monitor, when the environment
/// turns the monitor on.
fn context_monitor() -> anyhow::Result<Option<MonitorConfig>> {
    let Some(value) = std::env::var_os(CONTEXT_MONITOR_ENV) else {
        return Ok(None);
    };
    match value.to_string_lossy().trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "off" | "no" => return Ok(None),
        "1" | "true" | "on" | "yes" => {}
        other => anyhow::bail!(
            "Invalid `{CONTEXT_MONITOR_ENV}` value `{other}`: set it to `1` to start a context monitor, or unset it"
        ),
    }
    let program = std::env::current_exe().map_err(|e| {
        anyhow::anyhow!("Failed to find the strata program for the context monitor: {e}")
    })?;
    Ok(Some(MonitorConfig {
        program,
        args: vec!["context-monitor".into()],
    }))
}

/// `strata context-monitor CONTEXT SOCKET`: started by builds, not by hand.
pub fn serve_context_monitor(args: ContextMonitorArgs) -> anyhow::Result<std::process::ExitCode> {
    strata_engine::monitor::serve(
        &args.context,
        &args.socket,
        strata_engine::monitor::IDLE_EXIT,
    )?;
    Ok(std::process::ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct ContextMonitorArgs {
    context: PathBuf,
    socket: PathBuf,
}
