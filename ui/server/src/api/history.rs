//! Recorded builds: list, inspect, explain, compare, logs, the waterfall,
//! the replayed DAG, and the result's layers.

use super::{Shared, blocking};
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use strata_history::explain::BuildView;
use strata_history::{BuildRecord, HistoryDb, Inspection};
use strata_solver::{Event, LogStream};
use strata_ui_model::{DagModel, LayoutOptions, layout, waterfall as waterfall_of};

fn open(state: &crate::AppState) -> Result<HistoryDb, ApiError> {
    Ok(state.engine.history()?)
}

fn resolve(db: &HistoryDb, id: &str) -> Result<BuildRecord, ApiError> {
    db.resolve(id)
        .map_err(|e| ApiError::not_found(format!("{e:#}")))
}

pub async fn list(State(state): Shared) -> ApiResult<Value> {
    let builds = blocking(move || {
        let records = open(&state)?.list()?;
        Ok(records
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "started": r.started,
                    "status": r.status.as_str(),
                    "duration_ms": r.duration_ms(),
                    "steps_total": r.steps_total,
                    "steps_cached": r.steps_cached,
                    "cached_share": r.cached_share(),
                    "context": r.request.context,
                    "dockerfile": r.request.dockerfile,
                    "target": r.request.target,
                    "pinned": r.pinned,
                    "error": r.error.as_ref().map(|e| &e.message),
                })
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(Value::Array(builds)))
}

pub async fn inspect(State(state): Shared, Path(id): Path<String>) -> ApiResult<Value> {
    blocking(move || {
        let db = open(&state)?;
        let record = resolve(&db, &id)?;
        let events = db.events_without_logs(&record.id)?;
        let inspection = Inspection::new(&record, &events);
        Ok(Json(json!({ "record": record, "inspection": inspection })))
    })
    .await
}

pub async fn explain(State(state): Shared, Path(id): Path<String>) -> ApiResult<Value> {
    blocking(move || {
        let db = open(&state)?;
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
        Ok(Json(json!({
            "build": record.id,
            "previous": earlier.map(|e| e.id),
            "steps": explanations,
        })))
    })
    .await
}

#[derive(Deserialize)]
pub struct CompareQuery {
    base: String,
    other: String,
}

pub async fn compare(State(state): Shared, Query(query): Query<CompareQuery>) -> ApiResult<Value> {
    blocking(move || {
        let db = open(&state)?;
        let base = resolve(&db, &query.base)?;
        let other = resolve(&db, &query.other)?;
        let comparison = strata_history::compare(
            &base,
            &db.events_without_logs(&base.id)?,
            &other,
            &db.events_without_logs(&other.id)?,
        );
        Ok(Json(
            serde_json::to_value(comparison).map_err(anyhow::Error::from)?,
        ))
    })
    .await
}

pub async fn waterfall(State(state): Shared, Path(id): Path<String>) -> ApiResult<Value> {
    blocking(move || {
        let db = open(&state)?;
        let record = resolve(&db, &id)?;
        let events = db.events_without_logs(&record.id)?;
        Ok(Json(
            serde_json::to_value(waterfall_of(&events)).map_err(anyhow::Error::from)?,
        ))
    })
    .await
}

/// The DAG of a recorded build, replayed from its events, in the same
/// shape as the live snapshot frame.
pub async fn model(State(state): Shared, Path(id): Path<String>) -> ApiResult<Value> {
    blocking(move || {
        let db = open(&state)?;
        let record = resolve(&db, &id)?;
        let mut model = DagModel::default();
        for event in db.events_without_logs(&record.id)? {
            model.apply(&event);
        }
        let placed = layout(&model, &LayoutOptions::default(), None);
        Ok(Json(json!({
            "type": "snapshot",
            "running": false,
            "model": model,
            "layout": placed,
            "counts": model.counts(),
        })))
    })
    .await
}

#[derive(Deserialize)]
pub struct LogQuery {
    vertex: Option<String>,
}

/// Log chunks of a build, optionally of one step, in order.
pub async fn logs(
    State(state): Shared,
    Path(id): Path<String>,
    Query(query): Query<LogQuery>,
) -> ApiResult<Value> {
    blocking(move || {
        let db = open(&state)?;
        let record = resolve(&db, &id)?;
        let chunks: Vec<Value> = db
            .events(&record.id)?
            .into_iter()
            .filter_map(|stamped| match stamped.event {
                Event::Log {
                    vertex,
                    stream,
                    data,
                } if query.vertex.as_deref().is_none_or(|v| v == vertex.as_str()) => Some(json!({
                    "vertex": vertex,
                    "stderr": stream == LogStream::Stderr,
                    "data": data,
                })),
                _ => None,
            })
            .collect();
        Ok(Json(Value::Array(chunks)))
    })
    .await
}

/// The result snapshot's chain, base first, with each snapshot's own size
/// and its compressed layer blob when one was exported.
pub async fn layers(State(state): Shared, Path(id): Path<String>) -> ApiResult<Value> {
    blocking(move || {
        let db = open(&state)?;
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
        let store = state.engine.store();
        let mut layers = Vec::new();
        loop {
            let info = store.snapshot(&next)?;
            let blob = store.layer_of(&info.id)?;
            layers.push(json!({
                "snapshot": info.id,
                "kind": format!("{:?}", info.kind),
                "size": info.size,
                "created": info.created,
                "blob": blob.as_ref().map(|b| b.blob.to_string()),
                "compressed_size": blob.as_ref().map(|b| b.size),
            }));
            match info.parent {
                Some(parent) => next = parent,
                None => break,
            }
        }
        layers.reverse();
        Ok(Json(Value::Array(layers)))
    })
    .await
}
