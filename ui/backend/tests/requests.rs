//! The API through `Backend::request` and `Backend::subscribe`, as both
//! transports call them, against a real engine on a private store. The
//! builds use `FROM scratch` and `COPY`, which need no base image and no
//! container runtime.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_engine::{Engine, EngineOptions};
use strata_ui_backend::{ApiError, Backend};

struct Fixture {
    _store: tempfile::TempDir,
    backend: Backend,
}

impl Fixture {
    async fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.backend.request("GET", path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, ApiError> {
        self.backend.request("POST", path, Some(body)).await
    }
}

fn fixture(demos: Option<PathBuf>) -> Fixture {
    let store = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions {
        root: Some(store.path().to_path_buf()),
        max_parallel: Some(2),
        context_monitor: None,
    })
    .unwrap();
    Fixture {
        _store: store,
        backend: Backend::new(Arc::new(engine), demos),
    }
}

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// The messages of every frame up to and including the `idle` one.
struct Frames(Vec<Value>);

impl Frames {
    /// Returns the final state of every node, by name.
    fn node_states(&self) -> Vec<(String, String)> {
        let mut states: Vec<(String, String)> = Vec::new();
        for message in self.0.iter().filter(|m| m["type"] == "node") {
            let name = message["node"]["name"].as_str().unwrap().to_string();
            let state = message["node"]["state"].as_str().unwrap().to_string();
            match states.iter_mut().find(|(n, _)| *n == name) {
                Some(entry) => entry.1 = state,
                None => states.push((name, state)),
            }
        }
        states
    }

    fn finished_event(&self) -> Value {
        self.0
            .iter()
            .find(|m| m["type"] == "event" && m["event"]["type"] == "build_finished")
            .map(|m| m["event"].clone())
            .expect("a build_finished event")
    }
}

/// Builds `dir` and collects the frames a subscriber receives until the
/// build's `idle` message.
async fn build(f: &Fixture, dir: &Path) -> (String, Frames) {
    build_with(f, json!({ "project": dir })).await
}

/// Starts a build with the request `body` and collects its frames as
/// [`build`] does.
async fn build_with(f: &Fixture, body: Value) -> (String, Frames) {
    let mut subscription = f.backend.subscribe();
    let snapshot: Value = serde_json::from_str(&subscription.next().await).unwrap();
    assert_eq!(snapshot[0]["type"], "snapshot");

    let started = f.post("/api/builds", body).await.unwrap();
    let build_id = started["build_id"].as_str().unwrap().to_string();
    let mut messages = Vec::new();
    loop {
        let frame: Value = serde_json::from_str(&subscription.next().await).unwrap();
        let frame = frame.as_array().unwrap().clone();
        let idle = frame.iter().any(|m| m["type"] == "idle");
        messages.extend(frame);
        if idle {
            return (build_id, Frames(messages));
        }
    }
}

#[test]
fn error_serializes_code_and_message() {
    let error = ApiError::bad_request("Folder path `x` is not absolute");
    let json = serde_json::to_value(&error).unwrap();
    assert_eq!(
        json,
        json!({"code": "bad_request", "message": "Folder path `x` is not absolute"})
    );
    assert_eq!(error.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_and_wrong_method() {
    let f = fixture(None);
    let missing = f.get("/api/nothing").await.unwrap_err();
    assert_eq!(missing.code, "not_found");
    assert!(
        missing.message.contains("`/api/nothing`"),
        "{}",
        missing.message
    );

    let wrong = f.get("/api/builds").await.unwrap_err();
    assert_eq!(wrong.status, 405);
    assert!(wrong.message.contains("`POST`"), "{}", wrong.message);

    let body = f
        .post("/api/projects/open", json!({ "folder": "/" }))
        .await
        .unwrap_err();
    assert_eq!(body.code, "bad_request");
    assert!(
        body.message.contains("/api/projects/open"),
        "{}",
        body.message
    );

    let query = f.get("/api/history/compare?base=a").await.unwrap_err();
    assert_eq!(query.code, "bad_request");
    assert!(query.message.contains("other"), "{}", query.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_project_lists_stages_and_args() {
    let f = fixture(None);
    let dir = project(&[
        (
            "Dockerfile",
            "ARG BASE=scratch\n# Collects the files.\nFROM $BASE AS files\nARG MODE=fast\nCOPY a /a\nFROM files\n",
        ),
        ("sub/Dockerfile.test", "FROM scratch\n"),
        ("node_modules/x/Dockerfile", "FROM scratch\n"),
        ("a", "a\n"),
    ]);
    let opened = f
        .post("/api/projects/open", json!({ "path": dir.path() }))
        .await
        .unwrap();
    let files = opened["project"]["dockerfiles"].as_array().unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["Dockerfile", "sub/Dockerfile.test"]);

    let main = &files[0];
    assert_eq!(main["stages"][0]["name"], "files");
    assert_eq!(main["stages"][0]["description"], "Collects the files.");
    assert_eq!(main["stages"][0]["line"], 3);
    assert_eq!(main["stages"][1]["name"], Value::Null);
    assert_eq!(main["args"][0]["name"], "BASE");
    assert_eq!(main["args"][0]["default"], "scratch");
    assert_eq!(main["args"][0]["stage"], Value::Null);
    assert_eq!(main["args"][1]["name"], "MODE");
    assert_eq!(main["args"][1]["stage"], 0);
    assert_eq!(opened["settings"]["no_cache"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_project_rejects_bad_paths() {
    let f = fixture(None);
    let open = |path: PathBuf| f.post("/api/projects/open", json!({ "path": path }));

    let relative = open("relative/folder".into()).await.unwrap_err();
    assert_eq!(relative.code, "bad_request");
    assert!(
        relative.message.contains("`relative/folder`"),
        "{}",
        relative.message
    );

    let missing = open("/nonexistent/strata-project".into())
        .await
        .unwrap_err();
    assert_eq!(missing.code, "not_found");
    assert!(missing.message.contains("/nonexistent/strata-project"));

    let dir = project(&[("file", "x")]);
    let file = open(dir.path().join("file")).await.unwrap_err();
    assert_eq!(file.code, "bad_request");
    assert!(file.message.contains("is not a folder"), "{}", file.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_project_reports_parse_error() {
    let f = fixture(None);
    let dir = project(&[("Dockerfile", "FROM scratch\nCOPY\n")]);
    let opened = f
        .post("/api/projects/open", json!({ "path": dir.path() }))
        .await
        .unwrap();
    let file = &opened["project"]["dockerfiles"][0];
    let reported = !file["error"].is_null() || !file["warnings"].as_array().unwrap().is_empty();
    assert!(reported, "{file}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_build_rejects_bad_requests() {
    let f = fixture(None);
    let dir = project(&[("Dockerfile", "FROM scratch\n")]);
    let cases = [
        (
            json!({ "project": dir.path(), "dockerfile": "../Dockerfile" }),
            "bad_request",
            "outside the project folder",
        ),
        (
            json!({ "project": dir.path(), "dockerfile": "/etc/Dockerfile" }),
            "bad_request",
            "outside the project folder",
        ),
        (
            json!({ "project": dir.path(), "build_args": { "A B": "1" } }),
            "bad_request",
            "Invalid build argument name `A B`",
        ),
        (
            json!({ "project": dir.path(), "tag": "Bad Tag" }),
            "bad_request",
            "Invalid image name `Bad Tag`",
        ),
        (
            json!({ "project": "/nonexistent/strata-project" }),
            "not_found",
            "/nonexistent/strata-project",
        ),
    ];
    for (body, code, expected) in cases {
        let error = f.post("/api/builds", body).await.unwrap_err();
        assert_eq!(error.code, code, "{}", error.message);
        assert!(error.message.contains(expected), "{}", error.message);
    }
    let status = f.get("/api/status").await.unwrap();
    assert_eq!(status["running_build"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_sends_nodes_and_records_history() {
    let f = fixture(None);
    let dir = project(&[
        ("Dockerfile", "FROM scratch\nCOPY a /a\nCOPY b /b\n"),
        ("a", "a\n"),
        ("b", "b\n"),
    ]);
    let (build_id, frames) = build(&f, dir.path()).await;

    let finished = frames.finished_event();
    assert_eq!(finished["success"], true, "{finished}");
    let states = frames.node_states();
    let copies: Vec<&(String, String)> =
        states.iter().filter(|(n, _)| n.contains("COPY")).collect();
    assert_eq!(copies.len(), 2, "{states:?}");
    for (name, state) in &copies {
        assert_eq!(state, "done", "{name}");
    }
    let mut late = f.backend.subscribe();
    let snapshot: Value = serde_json::from_str(&late.next().await).unwrap();
    assert_eq!(snapshot[0]["running"], false);

    let history = f.get("/api/history").await.unwrap();
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["id"], build_id);
    assert_eq!(history[0]["status"], "succeeded");

    let inspected = f.get(&format!("/api/history/{build_id}")).await.unwrap();
    assert_eq!(inspected["record"]["id"], build_id);
    let explained = f
        .get(&format!("/api/history/{build_id}/explain"))
        .await
        .unwrap();
    assert_eq!(explained["build"], build_id);
    assert_eq!(explained["previous"], Value::Null);
    let layers = f
        .get(&format!("/api/history/{build_id}/layers"))
        .await
        .unwrap();
    assert!(!layers.as_array().unwrap().is_empty());
    let model = f
        .get(&format!("/api/history/{build_id}/model"))
        .await
        .unwrap();
    assert_eq!(model["type"], "snapshot");
    let logs = f
        .get(&format!("/api/history/{build_id}/logs"))
        .await
        .unwrap();
    for chunk in logs.as_array().unwrap() {
        assert!(!chunk["vertex"].as_str().unwrap().is_empty());
    }
    let vertex = "no such vertex";
    let path = format!("/api/history/{build_id}/logs?vertex=no%20such%20vertex");
    let none = f.get(&path).await.unwrap();
    assert_eq!(none, json!([]), "logs of `{vertex}`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagged_build_sends_transfers() {
    let f = fixture(None);
    let dir = project(&[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a\n")]);
    let body = json!({ "project": dir.path(), "tag": "progress-test:dev" });
    let (_, frames) = build_with(&f, body).await;
    let finished = frames.finished_event();
    assert_eq!(finished["success"], true, "{finished}");

    // Progress events go out only as model changes.
    let raw = frames.0.iter().filter(|m| {
        m["type"] == "event"
            && matches!(
                m["event"]["type"].as_str(),
                Some("progress" | "layer_progress")
            )
    });
    assert_eq!(raw.count(), 0);

    let last = |kind: &str| {
        frames
            .0
            .iter()
            .rev()
            .find(|m| m["type"] == "transfer" && m["transfer"]["kind"] == kind)
            .map(|m| m["transfer"].clone())
            .unwrap_or_else(|| panic!("a `{kind}` transfer"))
    };
    let context = last("context");
    assert_eq!(context["done"], true, "{context}");
    assert_eq!(context["unit"], "B");
    let export = last("export");
    assert_eq!(export["done"], true, "{export}");
    assert_eq!(export["phase"], "export-0");
    assert!(export["total"].as_u64().unwrap() > 0, "{export}");
    assert_eq!(export["current"], export["total"]);

    let context_node = frames
        .0
        .iter()
        .rev()
        .find(|m| m["type"] == "node" && m["node"]["id"] == context["vertex"])
        .expect("a node message for the context vertex");
    assert_eq!(context_node["node"]["progress"][0]["done"], true);

    let mut late = f.backend.subscribe();
    let snapshot: Value = serde_json::from_str(&late.next().await).unwrap();
    let transfers = snapshot[0]["model"]["transfers"].as_array().unwrap();
    assert!(
        transfers.iter().any(|t| t["kind"] == "export"),
        "{transfers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_reports_cached_nodes() {
    let f = fixture(None);
    let dir = project(&[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a\n")]);
    let (first, _) = build(&f, dir.path()).await;
    let (second, frames) = build(&f, dir.path()).await;
    let states = frames.node_states();
    let copy = states
        .iter()
        .find(|(n, _)| n.contains("COPY"))
        .expect("a COPY node");
    assert_eq!(copy.1, "cached", "{states:?}");

    let path = format!("/api/history/compare?base={first}&other={second}");
    let comparison = f.get(&path).await.unwrap();
    assert!(comparison.is_object(), "{comparison}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_build_reports_error_in_frames() {
    let f = fixture(None);
    let dir = project(&[("Dockerfile", "FROM scratch\nCOPY missing /missing\n")]);
    let (build_id, frames) = build(&f, dir.path()).await;
    let finished = frames.finished_event();
    assert_eq!(finished["success"], false);
    assert!(
        finished["error"].as_str().unwrap().contains("missing"),
        "{finished}"
    );
    let history = f.get("/api/history").await.unwrap();
    assert_eq!(history[0]["status"], "failed");

    let layers = f
        .get(&format!("/api/history/{build_id}/layers"))
        .await
        .unwrap_err();
    assert_eq!(layers.code, "not_found");
    assert!(
        layers.message.contains("no result image"),
        "{}",
        layers.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_without_build_is_conflict() {
    let f = fixture(None);
    let error = f.post("/api/builds/cancel", Value::Null).await.unwrap_err();
    assert_eq!(error.code, "conflict");
    assert_eq!(error.message, "No build is running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_unknown_id_is_not_found() {
    let f = fixture(None);
    let error = f.get("/api/history/feedface").await.unwrap_err();
    assert_eq!(error.code, "not_found");
    assert!(error.message.contains("feedface"), "{}", error.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demos_lists_folders_with_dockerfiles() {
    let demos = project(&[
        ("zeta/Dockerfile", "FROM scratch\n"),
        ("zeta/README.md", "# zeta\n\nLast demo.\n"),
        ("alpha/Dockerfile", "FROM scratch\n"),
        ("notes/README.md", "# no Dockerfile here\n"),
    ]);
    let f = fixture(Some(demos.path().to_path_buf()));
    let listed = f.get("/api/demos").await.unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "zeta"]);
    assert_eq!(listed[1]["summary"], "Last demo.");
    assert_eq!(listed[0]["summary"], "");

    let none = fixture(None);
    assert_eq!(none.get("/api/demos").await.unwrap(), json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_du_and_prune_dry_run() {
    let f = fixture(None);
    let dir = project(&[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a\n")]);
    build(&f, dir.path()).await;
    let usage = f.get("/api/cache/du").await.unwrap();
    let count = usage["records"].as_array().unwrap().len();
    assert!(count > 0);

    let report = f
        .post("/api/cache/prune", json!({ "all": true, "dry_run": true }))
        .await
        .unwrap();
    assert!(report["deleted"].is_array());
    let after = f.get("/api/cache/du").await.unwrap();
    assert_eq!(
        after["records"].as_array().unwrap().len(),
        count,
        "a dry run deletes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_store() {
    let f = fixture(None);
    let status = f.get("/api/status").await.unwrap();
    assert_eq!(status["worker"], "runc on overlayfs");
    assert!(Path::new(status["store_root"].as_str().unwrap()).is_dir());
    assert_eq!(status["running_build"], Value::Null);
}
