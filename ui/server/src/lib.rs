//! The workbench server behind `strata ui`: the web UI's assets, a JSON API
//! over the engine (projects, builds, history, logs, layers, cache) and one
//! WebSocket that streams build events with the view model's updates.
//!
//! Every request must carry the token printed at start (`?token=` or the
//! `x-strata-token` header) and, when the browser sends an `Origin`, come
//! from the server's own origin, so other pages open in the same browser
//! cannot drive the engine.

mod api;
mod assets;
mod auth;
mod error;

pub use strata_ui_backend::ApiError;

use anyhow::Context;
use axum::Router;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use strata_engine::Engine;
use strata_ui_backend::Backend;
use tokio::net::TcpListener;

/// Settings for [`Server::bind`].
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Address to listen on; the CLI defaults to `127.0.0.1:0` (any free port).
    pub listen: SocketAddr,
    /// Serve the web UI from this directory instead of the embedded copy.
    pub assets: Option<PathBuf>,
    /// Folder whose subfolders are offered as demos.
    pub demos: Option<PathBuf>,
    /// Fixed token instead of a random one, for scripts and tests.
    pub token: Option<String>,
}

/// State shared by every request.
pub struct AppState {
    pub backend: Backend,
    pub token: String,
    /// `http://HOST:PORT` as the browser sees it, for the `Origin` check.
    pub origin: String,
    /// Origins allowed to call the API: `origin`, and `http://localhost:PORT`
    /// when bound to a loopback address.
    pub allowed_origins: Vec<String>,
    pub options: ServerOptions,
}

/// A bound, not yet serving, workbench server.
pub struct Server {
    listener: TcpListener,
    state: Arc<AppState>,
}

impl Server {
    /// Binds the listening socket and creates the session token.
    pub async fn bind(engine: Arc<Engine>, options: ServerOptions) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("Failed to listen on `{}`", options.listen))?;
        let address = listener.local_addr()?;
        let token = options.token.clone().unwrap_or_else(auth::random_token);
        let mut allowed_origins = vec![format!("http://{address}")];
        if address.ip().is_loopback() {
            allowed_origins.push(format!("http://localhost:{}", address.port()));
        }
        let state = Arc::new(AppState {
            backend: Backend::new(engine, options.demos.clone()),
            token,
            origin: format!("http://{address}"),
            allowed_origins,
            options,
        });
        Ok(Server { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The address to open in a browser, token included.
    pub fn url(&self) -> String {
        format!("{}/?token={}", self.state.origin, self.state.token)
    }

    /// Whether the web UI's built files are available.
    pub fn has_assets(&self) -> bool {
        assets::available(&self.state)
    }

    /// Serves requests until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let app = router(self.state);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("The workbench server stopped with an error")
    }
}

fn router(state: Arc<AppState>) -> Router {
    let protected = api::routes()
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::check,
        ))
        .with_state(state.clone());
    Router::new()
        .merge(protected)
        .fallback(assets::serve)
        .with_state(state)
}
