//! The automatic garbage collection that runs after each build.

use crate::Engine;
use anyhow::anyhow;
use strata_store::gc::{default_keep_storage, default_policies, parse_size};

/// Environment variable that sets the storage limit of the automatic
/// collection (a size such as `20GB`), or turns it off with `off`.
pub const KEEP_STORAGE_ENV: &str = "STRATA_GC_KEEP_STORAGE";

/// The automatic collection's storage limit, from the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AutoGc {
    Off,
    /// Bytes to keep; `None` is 10% of the store's filesystem, capped at
    /// 20 GB.
    KeepStorage(Option<u64>),
}

impl AutoGc {
    pub(crate) fn from_env() -> anyhow::Result<AutoGc> {
        let Some(value) = std::env::var_os(KEEP_STORAGE_ENV) else {
            return Ok(AutoGc::KeepStorage(None));
        };
        let value = value.to_string_lossy();
        if value.trim().eq_ignore_ascii_case("off") {
            return Ok(AutoGc::Off);
        }
        let bytes = parse_size(&value)
            .map_err(|e| anyhow!("Invalid `{KEEP_STORAGE_ENV}`: {e:#}; or set it to `off`"))?;
        Ok(AutoGc::KeepStorage(Some(bytes)))
    }
}

impl Engine {
    /// Runs the default policy list. Errors are logged, never returned,
    /// since the build they follow already finished.
    pub(crate) async fn collect_garbage(&self) {
        let AutoGc::KeepStorage(keep) = self.auto_gc else {
            return;
        };
        let store = self.store.clone();
        let collected = tokio::task::spawn_blocking(move || {
            let keep = match keep {
                Some(bytes) => bytes,
                None => default_keep_storage(store.root())?,
            };
            store.gc(&default_policies(keep))
        })
        .await;
        match collected {
            Ok(Ok(report)) if !report.deleted.is_empty() || report.blobs_deleted > 0 => {
                tracing::info!(
                    records = report.deleted.len(),
                    bytes = report.reclaimed,
                    blobs = report.blobs_deleted,
                    "garbage collection deleted unused cache"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!("garbage collection failed: {error:#}"),
            Err(error) => tracing::warn!("garbage collection panicked: {error}"),
        }
    }
}
