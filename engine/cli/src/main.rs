//! `strata`: build container images from Dockerfiles.

mod commands;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Build container images from Dockerfiles"
)]
struct Cli {
    /// Store directory (default: `/var/lib/strata` as root, else the user's data directory)
    #[arg(long, global = true, env = "STRATA_ROOT")]
    root: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an image from a Dockerfile and a context directory
    Build(commands::build::BuildArgs),
    /// Build, then rebuild on every change of the context until Ctrl-C
    Watch(commands::watch::WatchArgs),
    /// Print the LLB definition a Dockerfile converts to, without building
    DumpLlb(commands::build::DumpLlbArgs),
    /// Manage images in the local store
    #[command(subcommand)]
    Image(commands::image::ImageCommand),
    /// Show the disk usage of the build cache
    Du(commands::cache::DuArgs),
    /// Delete unused build cache
    Prune(commands::cache::PruneArgs),
    /// Pin or unpin build cache records
    #[command(subcommand)]
    Cache(commands::cache::CacheCommand),
    /// Inspect how Strata reads its inputs
    #[command(subcommand)]
    Debug(commands::debug::DebugCommand),
    /// List, inspect, trace, explain and compare recorded builds
    #[command(subcommand)]
    History(commands::history::HistoryCommand),
    /// Serve the workbench web UI on this machine
    Ui(commands::ui::UiArgs),
    /// Open a recorded build in a window: step graph, waterfall and logs
    View(commands::view::ViewArgs),
    /// Watch a build context for builds (started by `strata build` when
    /// `STRATA_CONTEXT_MONITOR=1`)
    #[command(hide = true)]
    ContextMonitor(commands::ContextMonitorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Wrapped diagnostics split values and paths across lines, which makes
    // them hard to search for and to copy.
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
    }));
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("STRATA_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: Failed to start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let root = cli.root;
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Build(args) => commands::build::run(root, args).await,
            Command::Watch(args) => commands::watch::run(root, args).await,
            Command::DumpLlb(args) => commands::build::dump_llb(root, args).await,
            Command::Image(command) => commands::image::run(root, command),
            Command::Debug(command) => commands::debug::run(command),
            Command::History(command) => commands::history::run(root, command).await,
            Command::Du(args) => commands::cache::du(root, args),
            Command::Prune(args) => commands::cache::prune(root, args),
            Command::Cache(command) => commands::cache::run(root, command),
            Command::Ui(args) => commands::ui::run(root, args).await,
            Command::View(args) => commands::view::run(root, args),
            Command::ContextMonitor(args) => commands::serve_context_monitor(args),
        }
    });
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
