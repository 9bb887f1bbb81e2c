//! The cache routes: disk usage, prune and pinning over the store's garbage
//! collector, with the same options and JSON shapes as `strata du`,
//! `strata prune` and `strata cache pin|unpin`.

use super::blocking;
use crate::Backend;
use crate::dto::{PinRequest, PruneRequest};
use crate::error::{ApiError, ApiResult};
use serde_json::{Value, json};
use strata_store::filter::{parse_duration, parse_filter, parse_free_space};
use strata_store::gc::parse_size;
use strata_store::{CacheRecord, PruneOptions};

/// `GET /api/cache/du`: every record with the totals.
pub async fn usage(backend: &Backend) -> ApiResult<Value> {
    let store = backend.engine.store().clone();
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
        Ok(json!({
            "records": records,
            "total": total,
            "reclaimable": reclaimable,
        }))
    })
    .await
}

/// Parses the request's texts into prune options, naming the invalid field.
fn options(request: &PruneRequest) -> Result<PruneOptions, ApiError> {
    let invalid = |field: &str, error: anyhow::Error| {
        ApiError::bad_request(format!("Invalid `{field}`: {error:#}"))
    };
    let filters = request
        .filters
        .iter()
        .map(|text| parse_filter(text).map_err(|e| invalid("filters", e)))
        .collect::<Result<_, _>>()?;
    Ok(PruneOptions {
        all: request.all,
        filters,
        keep_duration: request
            .keep_duration
            .as_deref()
            .map(|text| parse_duration(text).map_err(|e| invalid("keep_duration", e)))
            .transpose()?,
        keep_storage: request
            .keep_storage
            .as_deref()
            .map(|text| parse_size(text).map_err(|e| invalid("keep_storage", e)))
            .transpose()?,
        min_free_space: request
            .min_free_space
            .as_deref()
            .map(|text| parse_free_space(text).map_err(|e| invalid("min_free_space", e)))
            .transpose()?,
        dry_run: request.dry_run,
    })
}

/// `POST /api/cache/prune`: what was (or on a dry run would be) deleted,
/// and why each other record is kept.
pub async fn prune(backend: &Backend, request: PruneRequest) -> ApiResult<Value> {
    let options = options(&request)?;
    let store = backend.engine.store().clone();
    blocking(move || {
        let report = store.prune(&options)?;
        if !options.dry_run {
            tracing::info!(
                deleted = report.deleted.len(),
                reclaimed = report.reclaimed,
                "workbench pruned the build cache"
            );
        }
        Ok(json!({
            "dry_run": options.dry_run,
            "deleted": report.deleted,
            "kept": report.kept,
            "reclaimed": report.reclaimed,
            "blobs_deleted": report.blobs_deleted,
            "blob_bytes": report.blob_bytes,
        }))
    })
    .await
}

/// `POST /api/cache/pin {id, pinned}`: pins or unpins one record and
/// returns it as `du` lists it.
pub async fn pin(backend: &Backend, request: PinRequest) -> ApiResult<Value> {
    if request.id.is_empty() || !request.id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(format!(
            "Invalid record id `{}`: expected hex digits from `/api/cache/du`",
            request.id
        )));
    }
    let store = backend.engine.store().clone();
    blocking(move || {
        let prefix = request.id.to_ascii_lowercase();
        let id = resolve(&store.disk_usage()?, &prefix)?;
        store.set_pinned(&id, request.pinned)?;
        let record = store
            .disk_usage()?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| ApiError::not_found(format!("Cache record `{id}` was deleted")))?;
        Ok(json!({ "record": record }))
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
