pub mod build;
pub mod debug;
pub mod image;
pub mod watch;

use std::path::PathBuf;
use strata_engine::{Engine, EngineOptions};

pub fn open_engine(root: Option<PathBuf>, max_parallel: Option<usize>) -> anyhow::Result<Engine> {
    Engine::open(EngineOptions { root, max_parallel })
}
