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
use strata_engine::{Engine, EngineOptions};

pub fn open_engine(root: Option<PathBuf>, max_parallel: Option<usize>) -> anyhow::Result<Engine> {
    Engine::open(EngineOptions { root, max_parallel })
}
