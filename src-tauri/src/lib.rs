//! The Strata workbench desktop app: a Tauri shell that adapts the
//! engine's API to commands and channels for the web UI in `ui/web`. It
//! holds no build logic; every handler in [`commands`] calls the engine,
//! the store or the build history.

pub mod commands;
pub mod dto;
pub mod error;
mod history;
mod ipc;
mod live;
pub mod project;

pub use commands::Workbench;
pub use error::{CommandError, ErrorCode};
pub use ipc::run;
pub use live::FrameSink;
