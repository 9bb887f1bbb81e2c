//! The cache routes: disk usage, prune and pinning over the store's garbage
//! collector, with the same options and JSON shapes as `strata du`,
//! `strata prune` and `strata cache pin|unpin`.

use super::{Shared, blocking};
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use strata_store::filter::{parse_duration, parse_filter, parse_free_space};
use strata_store::gc::parse_size;
use strata_store::{CacheRecord, PruneOptions};

/// `GET /api/cache/du`: every record with the totals.
pub async fn usage(State(state): Shared) -> ApiResult<Value> {
    let store = state.engine.store().clone();
    blocking(move || {
        let records = store.disk_usage()?;
        let total: u64 = records.iter().map(|r| r.size).sum();
        // The same figure `strata du` prints: what `prune --all` would free.
        let reclaimable = store
            .prune(&PruneOptions {
                all: true,
                dry_run: true,
                ..PruneOptions::default()
            })?
            .reclaimed;
        Ok(Json(json!({
            "records": records,
            "total": total,
            "reclaimable": reclaimable,
        })))
    })
    .await
}

/// The body of `POST /api/cache/prune`; the texts use the CLI's syntax.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PruneRequest {
    dry_run: bool,
    all: bool,
    filters: Vec<String>,
    keep_duration: Option<String>,
    keep_storage: Option<String>,
    min_free_space: Option<String>,
}

impl PruneRequest {
    fn options(&self) -> Result<PruneOptions, ApiError> {
        let invalid = |field: &str, error: anyhow::Error| {
            ApiError::bad_request(format!("Invalid `{field}`: {error:#}"))
        };
        let filters = self
            .filters
            .iter()
            .map(|text| parse_filter(text).map_err(|e| invalid("filters", e)))
            .collect::<Result<_, _>>()?;
        Ok(PruneOptions {
            all: self.all,
            filters,
            keep_duration: self
                .keep_duration
                .as_deref()
                .map(|text| parse_duration(text).map_err(|e| invalid("keep_duration", e)))
                .transpose()?,
            keep_storage: self
                .keep_storage
                .as_deref()
                .map(|text| parse_size(text).map_err(|e| invalid("keep_storage", e)))
                .transpose()?,
            min_free_space: self
                .min_free_space
                .as_deref()
                .map(|text| parse_free_space(text).map_err(|e| invalid("min_free_space", e)))
                .transpose()?,
            dry_run: self.dry_run,
        })
    }
}

/// `POST /api/cache/prune`: what was (or on a dry run would be) deleted,
/// and why each other record is kept.
pub async fn prune(State(state): Shared, Json(request): Json<PruneRequest>) -> ApiResult<Value> {
    let options = request.options()?;
    let store = state.engine.store().clone();
    blocking(move || {
        let report = store.prune(&options)?;
        if !options.dry_run {
            tracing::info!(
                deleted = report.deleted.len(),
                reclaimed = report.reclaimed,
                "workbench pruned the build cache"
            );
        }
        Ok(Json(json!({
            "dry_run": options.dry_run,
            "deleted": report.deleted,
            "kept": report.kept,
            "reclaimed": report.reclaimed,
            "blobs_deleted": report.blobs_deleted,
            "blob_bytes": report.blob_bytes,
        })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    /// Record id or a unique prefix of it.
    id: String,
    pinned: bool,
}

/// `POST /api/cache/pin {id, pinned}`: pins or unpins one record and
/// returns it as `du` lists it.
pub async fn pin(State(state): Shared, Json(request): Json<PinRequest>) -> ApiResult<Value> {
    if request.id.is_empty() || !request.id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(format!(
            "Invalid record id `{}`: expected hex digits from `/api/cache/du`",
            request.id
        )));
    }
    let store = state.engine.store().clone();
    blocking(move || {
        let prefix = request.id.to_ascii_lowercase();
        let id = resolve(&store.disk_usage()?, &prefix)?;
        store.set_pinned(&id, request.pinned)?;
        let record = store
            .disk_usage()?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| ApiError::not_found(format!("Cache record `{id}` was deleted")))?;
        Ok(Json(json!({ "record": record })))
    })
    .await
}

/// Finds the one record whose id starts with `prefix`, so an unknown or
/// ambiguous id becomes a 404 or 400 instead of a 500.
fn resolve(records: &[CacheRecord], prefix: &str) -> Result<String, ApiError> {
    let matches: Vec<&CacheRecord> = records
        .iter()
        .filter(|r| r.id.starts_with(prefix))
        .collect();
    match matches.as_slice() {
        [record] => Ok(record.id.clone()),
        [] => Err(ApiError::not_found(format!(
            "No cache record `{prefix}`: list record ids with `/api/cache/du`"
        ))),
        _ => Err(ApiError::bad_request(format!(
            "Record id `{prefix}` is ambiguous: give more digits"
        ))),
    }
}
