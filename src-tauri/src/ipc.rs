//! The Tauri app: one `#[tauri::command]` per [`Workbench`] handler, build
//! progress over a `tauri::ipc::Channel`, and window setup.

use crate::commands::Workbench;
use crate::dto::{
    Canceled, Demo, HistoryEntry, Layer, LogChunk, OpenRequest, PruneRequest, StartRequest,
    Started, Status,
};
use crate::error::{CommandError, CommandResult};
use crate::live::FrameSink;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use strata_engine::{Engine, EngineOptions};
use tauri::ipc::Channel;
use tauri::{Manager, State};

/// Environment variable naming the folder of example projects; the
/// bundled `demos` resource folder is used when it is unset.
const DEMOS_ENV: &str = "STRATA_DEMOS";

/// The workbench, or why the engine could not be opened, which every
/// command then returns.
struct AppState(Result<Arc<Workbench>, CommandError>);

impl AppState {
    fn get(&self) -> CommandResult<Arc<Workbench>> {
        self.0.clone()
    }
}

#[tauri::command]
async fn status(state: State<'_, AppState>) -> CommandResult<Status> {
    state.get()?.status().await
}

#[tauri::command]
async fn demos(state: State<'_, AppState>) -> CommandResult<Vec<Demo>> {
    state.get()?.demos().await
}

#[tauri::command]
async fn open_project(state: State<'_, AppState>, request: OpenRequest) -> CommandResult<Value> {
    state.get()?.open_project(request).await
}

#[tauri::command]
async fn start_build(
    state: State<'_, AppState>,
    request: StartRequest,
    events: Channel<Value>,
) -> CommandResult<Started> {
    let frames: FrameSink = Arc::new(move |frame| {
        if let Err(error) = events.send(frame) {
            tracing::warn!("failed to send a build frame to the page: {error}");
        }
    });
    state.get()?.start_build(request, frames).await
}

#[tauri::command]
fn cancel_build(state: State<'_, AppState>) -> CommandResult<Canceled> {
    state.get()?.cancel_build()
}

#[tauri::command]
fn live_snapshot(state: State<'_, AppState>) -> CommandResult<Value> {
    Ok(state.get()?.live_snapshot())
}

#[tauri::command]
async fn history(state: State<'_, AppState>) -> CommandResult<Vec<HistoryEntry>> {
    state.get()?.history().await
}

#[tauri::command]
async fn history_inspect(state: State<'_, AppState>, id: String) -> CommandResult<Value> {
    state.get()?.history_inspect(id).await
}

#[tauri::command]
async fn history_explain(state: State<'_, AppState>, id: String) -> CommandResult<Value> {
    state.get()?.history_explain(id).await
}

#[tauri::command]
async fn history_logs(
    state: State<'_, AppState>,
    id: String,
    vertex: Option<String>,
) -> CommandResult<Vec<LogChunk>> {
    state.get()?.history_logs(id, vertex).await
}

#[tauri::command]
async fn history_layers(state: State<'_, AppState>, id: String) -> CommandResult<Vec<Layer>> {
    state.get()?.history_layers(id).await
}

#[tauri::command]
async fn cache_du(state: State<'_, AppState>) -> CommandResult<Value> {
    state.get()?.cache_du().await
}

#[tauri::command]
async fn cache_prune(state: State<'_, AppState>, request: PruneRequest) -> CommandResult<Value> {
    state.get()?.cache_prune(request).await
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
            let workbench = open_workbench(demos);
            if let Err(error) = &workbench {
                tracing::error!("failed to open the Strata engine: {}", error.message);
            }
            app.manage(AppState(workbench));
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            status,
            demos,
            open_project,
            start_build,
            cancel_build,
            live_snapshot,
            history,
            history_inspect,
            history_explain,
            history_logs,
            history_layers,
            cache_du,
            cache_prune,
        ])
        .run(tauri::generate_context!());
    if let Err(error) = result {
        tracing::error!("the workbench failed: {error}");
        std::process::exit(1);
    }
}

fn open_workbench(demos: Option<PathBuf>) -> CommandResult<Arc<Workbench>> {
    let options = EngineOptions {
        root: None,
        max_parallel: None,
    };
    let engine = Engine::open(options).map_err(|e| {
        CommandError::environment(format!(
            "{e:#}: run the workbench as root, or set `STRATA_ROOT` to a store you can write"
        ))
    })?;
    Ok(Arc::new(Workbench::new(Arc::new(engine), demos)))
}
