//! Maps a method and a path to its handler. The table is the one in
//! `docs/workbench.md`; `/api/events` is not here because each transport
//! streams frames its own way from [`crate::Backend::subscribe`].

mod builds;
mod cache;
mod history;
mod projects;

use crate::Backend;
use crate::error::{ApiError, ApiResult};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One API route, with the values taken from its path.
enum Route {
    Status,
    Demos,
    OpenProject,
    StartBuild,
    CancelBuild,
    History,
    Compare,
    Inspect(String),
    Explain(String),
    Waterfall(String),
    Model(String),
    Logs(String),
    Layers(String),
    CacheUsage,
    Prune,
    Pin,
}

impl Route {
    /// Finds the route and the method it accepts.
    fn find(segments: &[&str]) -> Option<(Route, &'static str)> {
        let route = match segments {
            ["api", "status"] => (Route::Status, "GET"),
            ["api", "demos"] => (Route::Demos, "GET"),
            ["api", "projects", "open"] => (Route::OpenProject, "POST"),
            ["api", "builds"] => (Route::StartBuild, "POST"),
            ["api", "builds", "cancel"] => (Route::CancelBuild, "POST"),
            ["api", "history"] => (Route::History, "GET"),
            ["api", "history", "compare"] => (Route::Compare, "GET"),
            ["api", "history", id] => (Route::Inspect(id.to_string()), "GET"),
            ["api", "history", id, "explain"] => (Route::Explain(id.to_string()), "GET"),
            ["api", "history", id, "waterfall"] => (Route::Waterfall(id.to_string()), "GET"),
            ["api", "history", id, "model"] => (Route::Model(id.to_string()), "GET"),
            ["api", "history", id, "logs"] => (Route::Logs(id.to_string()), "GET"),
            ["api", "history", id, "layers"] => (Route::Layers(id.to_string()), "GET"),
            ["api", "cache", "du"] => (Route::CacheUsage, "GET"),
            ["api", "cache", "prune"] => (Route::Prune, "POST"),
            ["api", "cache", "pin"] => (Route::Pin, "POST"),
            _ => return None,
        };
        Some(route)
    }
}

pub(crate) async fn dispatch(
    backend: &Backend,
    method: &str,
    target: &str,
    body: Option<Value>,
) -> ApiResult<Value> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segments = path
        .trim_start_matches('/')
        .split('/')
        .map(|segment| decode(segment, target))
        .collect::<ApiResult<Vec<String>>>()?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let Some((route, allowed)) = Route::find(&segments) else {
        return Err(ApiError::not_found(format!(
            "No API route `{path}`: see the API table in `docs/workbench.md`"
        )));
    };
    if !method.eq_ignore_ascii_case(allowed) {
        return Err(ApiError::method_not_allowed(format!(
            "`{path}` accepts `{allowed}`, not `{method}`"
        )));
    }

    let request = Request {
        target,
        query,
        body,
    };
    match route {
        Route::Status => projects::status(backend).await,
        Route::Demos => projects::demos(backend).await,
        Route::OpenProject => projects::open(backend, request.body()?).await,
        Route::StartBuild => builds::start(backend, request.body()?).await,
        Route::CancelBuild => builds::cancel(backend),
        Route::History => history::list(backend).await,
        Route::Compare => history::compare(backend, request.query()?).await,
        Route::Inspect(id) => history::inspect(backend, id).await,
        Route::Explain(id) => history::explain(backend, id).await,
        Route::Waterfall(id) => history::waterfall(backend, id).await,
        Route::Model(id) => history::model(backend, id).await,
        Route::Logs(id) => history::logs(backend, id, request.query()?).await,
        Route::Layers(id) => history::layers(backend, id).await,
        Route::CacheUsage => cache::usage(backend).await,
        Route::Prune => cache::prune(backend, request.body()?).await,
        Route::Pin => cache::pin(backend, request.body()?).await,
    }
}

/// The parts of a request a handler may read.
struct Request<'a> {
    target: &'a str,
    query: &'a str,
    body: Option<Value>,
}

impl Request<'_> {
    /// Reads the JSON body; a missing body reads as `{}`.
    fn body<T: DeserializeOwned>(self) -> ApiResult<T> {
        let body = match self.body {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(body) => body,
        };
        serde_json::from_value(body).map_err(|e| {
            ApiError::bad_request(format!("Invalid request body for `{}`: {e}", self.target))
        })
    }

    fn query<T: DeserializeOwned>(&self) -> ApiResult<T> {
        serde_urlencoded::from_str(self.query)
            .map_err(|e| ApiError::bad_request(format!("Invalid query in `{}`: {e}", self.target)))
    }
}

fn decode(segment: &str, target: &str) -> ApiResult<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| {
            ApiError::bad_request(format!(
                "Invalid path `{target}`: a segment is not UTF-8 after percent-decoding"
            ))
        })
}

/// Runs blocking store or history work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("A worker thread failed: {e}")))?
}

/// Serializes a response body.
fn to_json(value: impl serde::Serialize) -> ApiResult<Value> {
    serde_json::to_value(value).map_err(|e| ApiError::internal(e.into()))
}
