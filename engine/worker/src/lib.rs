//! The worker: runs exec ops in runc containers on overlayfs snapshots and
//! applies file ops in-process.
//!
//! This is the only crate that mounts filesystems and starts processes.
//! Every path an op names is resolved inside its root filesystem, so a
//! symlink in an image can never make the worker touch the host.

mod archive;
pub mod checksum;
mod copy;
pub mod fileop;
mod merge;
mod mode;
pub mod mount;
mod mounts;
mod paths;
mod recover;
pub mod reuse;
pub mod runc;
mod spec;
mod ssh;
pub mod user;
mod worker;

pub use checksum::checksum;
pub use fileop::apply_file_actions;
pub use mount::OverlayMount;
pub use mounts::{CacheMountDir, ExecSession, SecretValue};
pub use runc::{BindMount, ExecRequest, RuncExecutor, TmpfsMount};
pub use user::{ResolvedUser, resolve_exec_user};
pub use worker::{Worker, WorkerConfig};
