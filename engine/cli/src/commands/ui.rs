//! `strata ui`: serve the workbench (web UI and its API) on loopback.

use super::open_engine;
use anyhow::bail;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use strata_ui_server::{Server, ServerOptions};

#[derive(Args)]
pub struct UiArgs {
    /// Address to listen on; a port of 0 picks a free one
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Serve the web UI from this directory (such as `ui/web/dist`) instead of the copy built into `strata`
    #[arg(long, value_name = "DIR")]
    pub assets: Option<PathBuf>,
    /// Folder whose subfolders the empty state offers as demos (default: the repository's `assets/demos`)
    #[arg(long, value_name = "DIR", env = "STRATA_DEMOS")]
    pub demos: Option<PathBuf>,
    /// Use this token instead of a random one (for scripts; anyone who knows it can run builds)
    #[arg(long, env = "STRATA_UI_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Maximum number of steps running at once (default: the CPU count)
    #[arg(long)]
    pub max_parallel: Option<usize>,
}

pub async fn run(root: Option<PathBuf>, args: UiArgs) -> anyhow::Result<ExitCode> {
    if let Some(token) = &args.token {
        if token.len() < 16 || !token.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!("Invalid `--token`: use at least 16 letters or digits");
        }
    }
    if let Some(dir) = &args.assets {
        if !dir.join("index.html").is_file() {
            bail!(
                "No `index.html` in `{}`: build the web UI with `npm --prefix ui/web ci && npm --prefix ui/web run build`",
                dir.display()
            );
        }
    }
    let engine = Arc::new(open_engine(root, args.max_parallel)?);
    let demos = args.demos.or_else(|| {
        let bundled = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets/demos");
        bundled.canonicalize().ok()
    });
    let options = ServerOptions {
        listen: args.listen,
        assets: args.assets,
        demos,
        token: args.token,
    };
    let server = Server::bind(engine, options).await?;
    if !server.has_assets() {
        bail!(
            "The web UI is not built into this `strata`: run `npm --prefix ui/web ci && npm --prefix ui/web run build`, then rebuild, or pass `--assets ui/web/dist`"
        );
    }
    if !server.local_addr().ip().is_loopback() {
        eprintln!(
            "warning: listening on `{}`, which other machines may reach; the token is the only protection",
            server.local_addr()
        );
    }
    println!("Strata workbench: {}", server.url());
    eprintln!("Press Ctrl-C to stop.");
    server
        .serve(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}
