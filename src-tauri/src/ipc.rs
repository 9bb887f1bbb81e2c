//! The Tauri app: two commands that carry the workbench API over IPC, and
//! window setup. `api_request` passes a method, a path and a JSON body to
//! the shared [`Backend`], as `ui/server` does for HTTP requests, and
//! rejects with the same `{code, message}` body. `api_subscribe` sends the
//! event frames of `GET /api/events` on a `tauri::ipc::Channel`.

use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use strata_engine::{Engine, EngineOptions};
use strata_ui_backend::{ApiError, Backend};
use tauri::async_runtime::JoinHandle;
use tauri::ipc::{Channel, InvokeResponseBody};
use tauri::{Manager, State};

/// Environment variable naming the folder of example projects; the
/// bundled `demos` resource folder is used when it is unset.
const DEMOS_ENV: &str = "STRATA_DEMOS";

/// The backend, or why the engine could not be opened, which every
/// request then returns.
struct AppState {
    backend: Result<Arc<Backend>, ApiError>,
    /// The task that forwards frames to the page's channel. The app has
    /// one window, so a new subscription (after a page reload) replaces
    /// the previous one.
    forwarder: Mutex<Option<JoinHandle<()>>>,
}

impl AppState {
    fn backend(&self) -> Result<Arc<Backend>, ApiError> {
        self.backend.clone()
    }
}

#[tauri::command]
async fn api_request(
    state: State<'_, AppState>,
    method: String,
    path: String,
    body: Option<Value>,
) -> Result<Value, ApiError> {
    state.backend()?.request(&method, &path, body).await
}

#[tauri::command]
fn api_subscribe(state: State<'_, AppState>, channel: Channel) -> Result<(), ApiError> {
    let mut frames = state.backend()?.subscribe();
    let task = tauri::async_runtime::spawn(async move {
        loop {
            let frame = frames.next().await;
            if let Err(error) = channel.send(InvokeResponseBody::Json(frame)) {
                tracing::warn!("stopped sending build frames to the page: {error}");
                return;
            }
        }
    });
    let previous = state
        .forwarder
        .lock()
        .expect("forwarder lock")
        .replace(task);
    if let Some(previous) = previous {
        previous.abort();
    }
    Ok(())
}

/// Opens the engine on `$STRATA_ROOT` (or the default store) and runs the
/// app until its last window closes.
pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let result = tauri::Builder::default()
        .setup(|app| {
            let demos = std::env::var_os(DEMOS_ENV)
                .map(PathBuf::from)
                .or_else(|| app.path().resource_dir().ok().map(|d| d.join("demos")))
                .filter(|dir| dir.is_dir());
            let backend = open_backend(None, demos);
            if let Err(error) = &backend {
                tracing::error!("failed to open the Strata engine: {}", error.message);
            }
            app.manage(AppState {
                backend,
                forwarder: Mutex::new(None),
            });
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![api_request, api_subscribe])
        .run(tauri::generate_context!());
    if let Err(error) = result {
        tracing::error!("the workbench failed: {error}");
        std::process::exit(1);
    }
}

/// Opens the engine on `root`, or on `$STRATA_ROOT` or the default store
/// when `None`. A failure becomes the error every request returns, so the
/// page can show it instead of a blank window.
pub fn open_backend(
    root: Option<PathBuf>,
    demos: Option<PathBuf>,
) -> Result<Arc<Backend>, ApiError> {
    let options = EngineOptions {
        root,
        max_parallel: None,
        context_monitor: None,
    };
    let engine = Engine::open(options).map_err(|e| {
        ApiError::new(
            500,
            "environment",
            format!(
                "{e:#}: run the workbench as root, or set `STRATA_ROOT` to a store you can write"
            ),
        )
    })?;
    Ok(Arc::new(Backend::new(Arc::new(engine), demos)))
}
