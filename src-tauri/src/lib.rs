//! The Strata workbench desktop app: a Tauri shell that carries the
//! workbench API of `strata-ui-backend` over IPC for the web UI in
//! `ui/web`. It contains no build or API logic of its own.

mod ipc;

pub use ipc::{open_backend, run};
