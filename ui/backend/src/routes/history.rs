//! Recorded builds: list, inspect, explain, compare, logs, the waterfall,
//! the replayed DAG, and the result's layers.

use super::{blocking, to_json};
use crate::Backend;
use crate::dto::{CompareQuery, HistoryEntry, Layer, LogChunk, LogQuery};
use crate::error::{ApiError, ApiResult};
use serde_json::{Value, json};
use strata_engine::Engine;
use strata_history::explain::BuildView;
use strata_history::{BuildRecord, HistoryDb, Inspection};
use strata_solver::{Event, LogStream};
use strata_ui_model::{DagModel, LayoutOptions, layout, waterfall as waterfall_of};

fn open(engine: &Engine) -> Result<HistoryDb, ApiError> {
    Ok(engine.history()?)
}

fn resolve(db: &HistoryDb, id: &str) -> Result<BuildRecord, ApiError> {
    db.resolve(id)
        .map_err(|e| ApiError::not_found(format!("{e:#}")))
}

pub async fn list(backend: &Backend) -> ApiResult<Value> {
    let engine = backend.engine.clone();
    let builds = blocking(move || {
        let records = open(&engine)?.list()?;
        Ok(records.iter().map(history_entry).collect::<Vec<_>>())
    })
    .await?;
    to_json(builds)
}

fn history_entry(record: &BuildRecord) -> HistoryEntry {
    HistoryEntry {
        id: record.id.clone(),
        started: record.started,
        status: record.status.as_str().to_string(),
        duration_ms: record.duration_ms(),
        steps_total: record.steps_total,
        steps_cached: record.steps_cached,
        cached_share: record.cached_share(),
        context: record.request.context.clone(),
        dockerfile: record.request.dockerfile.clone(),
        target: record.request.target.clone(),
        pinned: record.pinned,
        error: record.error.as_ref().map(|e| e.message.clone()),
    }
}

pub async fn inspect(backend: &Backend, id: String) -> ApiResult<Value> {
    let engine = backend.engine.clone();
    blocking(move || {
        let db = open(&engine)?;
        let record = resolve(&db, &id)?;
        let events = db.events_without_logs(&record.id)?;
        let inspection = Inspection::new(&record, &events);
        Ok(json!({ "record": record, "inspection": inspection }))
    })
    .await
}

pub async fn explain(backend: &Backend, id: String) -> ApiResult<Value> {
    let engine = backend.engine.clone();
    blocking(move || {
        let db = open(&engine)?;
        let record = resolve(&db, &id)?;
        let events = db.events_without_logs(&record.id)?;
        let earlier = db.previous(&record)?;
        let earlier_events = match &earlier {
            Some(earlier) => db.events_without_logs(&earlier.id)?,
            None => Vec::new(),
        };
        let current = BuildView::new(&record, &events);
        let previous = earlier.as_ref().map(|e| BuildView::new(e, &earlier_events));
        let explanations = strata_history::explain::explain(&current, previous.as_ref());
        Ok(json!({
            "build": record.id,
            "previous": earlier.map(|e| e.id),
            "steps": explanations,
        }))
    })
    .await
}

pub async fn compare(backend: &Backend, query: CompareQuery) -> ApiResult<Value> {
    let engine = backend.engine.clone();
    blocking(move || {
        let db = open(&engine)?;
        let base = resolve(&db, &query.base)?;
        let other = resolve(&db, &query.other)?;
        let comparison = strata_history::compare(
            &base,
            &db.events_without_logs(&base.id)?,
            &other,
            &db.events_without_logs(&other.id)?,
        );
        to_json(comparison)
    })
    .await
}

pub async fn waterfall(backend: &Backend, id: String) -> ApiResult<Value> {
    let engine = backend.engine.clone();
    blocking(move || {
        let db = open(&engine)?;
        let record = resolve(&db, &id)?;
        let events = db.events_without_logs(&record.id)?;
        to_json(waterfall_of(&events))
    })
    .await
}

/// The DAG of a recorded build, replayed from its events, in the same
/// shape as the live snapshot frame.
pub async fn model(backend: &Backend, id: String) -> ApiResult<Value> {
    let engine = backend.engine.clone();
    blocking(move || {
        let db = open(&engine)?;
        let record = resolve(&db, &id)?;
        let mut model = DagModel::default();
        for event in db.events_without_logs(&record.id)? {
            model.apply(&event);
        }
        let placed = layout(&model, &LayoutOptions::default(), None);
        Ok(json!({
            "type": "snapshot",
            "running": false,
            "model": model,
            "layout": placed,
            "counts": model.counts(),
        }))
    })
    .await
}

/// Log chunks of a build, optionally of one step, in order.
pub async fn logs(backend: &Backend, id: String, query: LogQuery) -> ApiResult<Value> {
    let engine = backend.engine.clone();
    blocking(move || {
        let db = open(&engine)?;
        let record = resolve(&db, &id)?;
        let chunks: Vec<LogChunk> = db
            .events(&record.id)?
            .into_iter()
            .filter_map(|stamped| match stamped.event {
                Event::Log {
                    vertex,
                    stream,
                    data,
                } if query.vertex.as_deref().is_none_or(|v| v == vertex.as_str()) => {
                    Some(LogChunk {
                        vertex: vertex.to_string(),
                        stderr: stream == LogStream::Stderr,
                        data,
                    })
                }
                _ => None,
            })
            .collect();
        to_json(chunks)
    })
    .await
}

/// The result snapshot's chain, base first, with each snapshot's own size
/// and its compressed layer blob when one was exported.
pub async fn layers(backend: &Backend, id: String) -> ApiResult<Value> {
    let engine = backend.engine.clone();
    blocking(move || {
        let db = open(&engine)?;
        let record = resolve(&db, &id)?;
        let snapshot = record
            .result
            .as_ref()
            .and_then(|r| r.get("snapshot"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let Some(mut next) = snapshot else {
            return Err(ApiError::not_found(format!(
                "Build `{}` has no result image: only a successful build has layers",
                record.id
            )));
        };
        let store = engine.store();
        let mut layers = Vec::new();
        loop {
            let info = store.snapshot(&next)?;
            let blob = store.layer_of(&info.id)?;
            layers.push(Layer {
                snapshot: info.id.clone(),
                kind: format!("{:?}", info.kind),
                size: info.size,
                created: info.created,
                blob: blob.as_ref().map(|b| b.blob.to_string()),
                compressed_size: blob.as_ref().map(|b| b.size),
            });
            match info.parent {
                Some(parent) => next = parent,
                None => break,
            }
        }
        layers.reverse();
        to_json(layers)
    })
    .await
}
