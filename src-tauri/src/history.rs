//! Recorded builds: list, inspect, explain, logs and the result's layers,
//! in the shapes of `ui/server`'s `/api/history` routes.

use crate::commands::{Workbench, blocking};
use crate::dto::{HistoryEntry, Layer, LogChunk};
use crate::error::{CommandError, CommandResult};
use serde_json::{Value, json};
use std::sync::Arc;
use strata_engine::Engine;
use strata_history::explain::BuildView;
use strata_history::{BuildRecord, HistoryDb, Inspection};
use strata_solver::{Event, LogStream};

fn resolve(db: &HistoryDb, id: &str) -> CommandResult<BuildRecord> {
    db.resolve(id)
        .map_err(|e| CommandError::user_input(format!("{e:#}")))
}

impl Workbench {
    /// Lists recorded builds, newest first.
    pub async fn history(&self) -> CommandResult<Vec<HistoryEntry>> {
        let engine = self.engine.clone();
        blocking(move || {
            let records = engine.history()?.list()?;
            Ok(records.iter().map(history_entry).collect())
        })
        .await
    }

    /// Returns a record with its step counts and timings.
    pub async fn history_inspect(&self, id: String) -> CommandResult<Value> {
        let engine = self.engine.clone();
        blocking(move || {
            let db = engine.history()?;
            let record = resolve(&db, &id)?;
            let events = db.events_without_logs(&record.id)?;
            let inspection = Inspection::new(&record, &events);
            Ok(json!({ "record": record, "inspection": inspection }))
        })
        .await
    }

    /// Explains why each step of a build ran, against the previous build
    /// of the same project.
    pub async fn history_explain(&self, id: String) -> CommandResult<Value> {
        let engine = self.engine.clone();
        blocking(move || {
            let db = engine.history()?;
            let record = resolve(&db, &id)?;
            let events = db.events_without_logs(&record.id)?;
            let earlier = db.previous(&record)?;
            let earlier_events = match &earlier {
                Some(earlier) => db.events_without_logs(&earlier.id)?,
                None => Vec::new(),
            };
            let current = BuildView::new(&record, &events);
            let previous = earlier.as_ref().map(|e| BuildView::new(e, &earlier_events));
            let steps = strata_history::explain::explain(&current, previous.as_ref());
            Ok(json!({
                "build": record.id,
                "previous": earlier.map(|e| e.id),
                "steps": steps,
            }))
        })
        .await
    }

    /// Returns a build's log chunks in order, of one step when `vertex` is
    /// given.
    pub async fn history_logs(
        &self,
        id: String,
        vertex: Option<String>,
    ) -> CommandResult<Vec<LogChunk>> {
        let engine = self.engine.clone();
        blocking(move || {
            let db = engine.history()?;
            let record = resolve(&db, &id)?;
            let chunks = db
                .events(&record.id)?
                .into_iter()
                .filter_map(|stamped| match stamped.event {
                    Event::Log {
                        vertex: from,
                        stream,
                        data,
                    } if vertex.as_deref().is_none_or(|v| v == from.as_str()) => Some(LogChunk {
                        vertex: from.to_string(),
                        stderr: stream == LogStream::Stderr,
                        data,
                    }),
                    _ => None,
                })
                .collect();
            Ok(chunks)
        })
        .await
    }

    /// Lists the snapshot chain of a build's result, base first.
    pub async fn history_layers(&self, id: String) -> CommandResult<Vec<Layer>> {
        let engine = self.engine.clone();
        blocking(move || {
            let db = engine.history()?;
            let record = resolve(&db, &id)?;
            result_layers(&engine, &record)
        })
        .await
    }
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

fn result_layers(engine: &Arc<Engine>, record: &BuildRecord) -> CommandResult<Vec<Layer>> {
    let snapshot = record
        .result
        .as_ref()
        .and_then(|r| r.get("snapshot"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let Some(mut next) = snapshot else {
        return Err(CommandError::user_input(format!(
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
    Ok(layers)
}
