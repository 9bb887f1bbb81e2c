//! The command handlers against a real engine on a private store, without
//! a window. The builds use `FROM scratch` and `COPY`, which need no base
//! image and no container runtime.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use strata_engine::{Engine, EngineOptions};
use strata_workbench::dto::{OpenRequest, PruneRequest, StartRequest};
use strata_workbench::{CommandError, ErrorCode, FrameSink, Workbench};
use tokio::sync::Notify;

struct Fixture {
    _store: tempfile::TempDir,
    workbench: Workbench,
}

fn fixture(demos: Option<PathBuf>) -> Fixture {
    let store = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions {
        root: Some(store.path().to_path_buf()),
        max_parallel: Some(2),
    })
    .unwrap();
    Fixture {
        _store: store,
        workbench: Workbench::new(Arc::new(engine), demos),
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

/// Collects frames and wakes the test on the final `idle` message.
#[derive(Clone, Default)]
struct Frames {
    messages: Arc<Mutex<Vec<Value>>>,
    idle: Arc<Notify>,
}

impl Frames {
    fn sink(&self) -> FrameSink {
        let frames = self.clone();
        Arc::new(move |frame: Value| {
            let messages = frame.as_array().cloned().unwrap_or_default();
            let idle = messages.iter().any(|m| m["type"] == "idle");
            frames.messages.lock().unwrap().extend(messages);
            if idle {
                frames.idle.notify_one();
            }
        })
    }

    /// Returns the final state of every node, by name.
    fn node_states(&self) -> Vec<(String, String)> {
        let mut states: Vec<(String, String)> = Vec::new();
        for message in self.messages.lock().unwrap().iter() {
            if message["type"] != "node" {
                continue;
            }
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
        let messages = self.messages.lock().unwrap();
        messages
            .iter()
            .find(|m| m["type"] == "event" && m["event"]["type"] == "build_finished")
            .map(|m| m["event"].clone())
            .expect("a build_finished event")
    }
}

async fn build(workbench: &Workbench, request: StartRequest) -> (String, Frames) {
    let frames = Frames::default();
    let idle = frames.idle.clone();
    let waiting = idle.notified();
    let started = workbench.start_build(request, frames.sink()).await.unwrap();
    waiting.await;
    (started.build_id, frames)
}

fn start_request(dir: &Path) -> StartRequest {
    StartRequest {
        project: dir.to_path_buf(),
        ..StartRequest::default()
    }
}

#[test]
fn error_serializes_code_and_message() {
    let error = CommandError::user_input("Folder path `x` is not absolute");
    let json = serde_json::to_value(&error).unwrap();
    assert_eq!(json["code"], "user_input");
    assert_eq!(json["message"], "Folder path `x` is not absolute");
    let json = serde_json::to_value(CommandError::environment("disk full")).unwrap();
    assert_eq!(json["code"], "environment");
    let json = serde_json::to_value(CommandError::internal("bug")).unwrap();
    assert_eq!(json["code"], "internal");
}

#[tokio::test]
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
        .workbench
        .open_project(OpenRequest {
            path: dir.path().to_path_buf(),
        })
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
}

#[tokio::test]
async fn open_project_rejects_bad_paths() {
    let f = fixture(None);
    let relative = f
        .workbench
        .open_project(OpenRequest {
            path: "relative/folder".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(relative.code, ErrorCode::UserInput);
    assert!(
        relative.message.contains("`relative/folder`"),
        "{}",
        relative.message
    );

    let missing = f
        .workbench
        .open_project(OpenRequest {
            path: "/nonexistent/strata-project".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::UserInput);
    assert!(missing.message.contains("/nonexistent/strata-project"));

    let dir = project(&[("file", "x")]);
    let file = f
        .workbench
        .open_project(OpenRequest {
            path: dir.path().join("file"),
        })
        .await
        .unwrap_err();
    assert_eq!(file.code, ErrorCode::UserInput);
    assert!(file.message.contains("is not a folder"), "{}", file.message);
}

#[tokio::test]
async fn open_project_reports_parse_error() {
    let f = fixture(None);
    let dir = project(&[("Dockerfile", "FROM scratch\nCOPY\n")]);
    let opened = f
        .workbench
        .open_project(OpenRequest {
            path: dir.path().to_path_buf(),
        })
        .await
        .unwrap();
    let file = &opened["project"]["dockerfiles"][0];
    let reported = !file["error"].is_null() || !file["warnings"].as_array().unwrap().is_empty();
    assert!(reported, "{file}");
}

#[tokio::test]
async fn start_build_rejects_bad_requests() {
    let f = fixture(None);
    let dir = project(&[("Dockerfile", "FROM scratch\n")]);
    let cases = [
        (
            StartRequest {
                dockerfile: Some("../Dockerfile".into()),
                ..start_request(dir.path())
            },
            "outside the project folder",
        ),
        (
            StartRequest {
                dockerfile: Some("/etc/Dockerfile".into()),
                ..start_request(dir.path())
            },
            "outside the project folder",
        ),
        (
            StartRequest {
                build_args: [("A B".to_string(), "1".to_string())].into(),
                ..start_request(dir.path())
            },
            "Invalid build argument name `A B`",
        ),
        (
            start_request(Path::new("/nonexistent/strata-project")),
            "/nonexistent/strata-project",
        ),
    ];
    for (request, expected) in cases {
        let frames = Frames::default();
        let error = f
            .workbench
            .start_build(request, frames.sink())
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::UserInput, "{}", error.message);
        assert!(error.message.contains(expected), "{}", error.message);
        assert!(frames.messages.lock().unwrap().is_empty());
    }
    assert_eq!(f.workbench.status().await.unwrap().running_build, None);
}

#[tokio::test]
async fn build_sends_nodes_and_records_history() {
    let f = fixture(None);
    let dir = project(&[
        ("Dockerfile", "FROM scratch\nCOPY a /a\nCOPY b /b\n"),
        ("a", "a\n"),
        ("b", "b\n"),
    ]);
    let (build_id, frames) = build(&f.workbench, start_request(dir.path())).await;

    let finished = frames.finished_event();
    assert_eq!(finished["success"], true, "{finished}");
    let states = frames.node_states();
    let copies: Vec<&(String, String)> =
        states.iter().filter(|(n, _)| n.contains("COPY")).collect();
    assert_eq!(copies.len(), 2, "{states:?}");
    for (name, state) in &copies {
        assert_eq!(state, "done", "{name}");
    }
    let snapshot = f.workbench.live_snapshot();
    assert_eq!(snapshot[0]["running"], false);

    let history = f.workbench.history().await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].id, build_id);
    assert_eq!(history[0].status, "succeeded");

    let inspected = f.workbench.history_inspect(build_id.clone()).await.unwrap();
    assert_eq!(inspected["record"]["id"], build_id);
    let explained = f.workbench.history_explain(build_id.clone()).await.unwrap();
    assert_eq!(explained["build"], build_id);
    assert_eq!(explained["previous"], Value::Null);
    let layers = f.workbench.history_layers(build_id.clone()).await.unwrap();
    assert!(!layers.is_empty());
    let logs = f.workbench.history_logs(build_id, None).await.unwrap();
    assert!(logs.iter().all(|chunk| !chunk.vertex.is_empty()));
}

#[tokio::test]
async fn rebuild_reports_cached_nodes() {
    let f = fixture(None);
    let dir = project(&[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a\n")]);
    build(&f.workbench, start_request(dir.path())).await;
    let (_, frames) = build(&f.workbench, start_request(dir.path())).await;
    let states = frames.node_states();
    let copy = states
        .iter()
        .find(|(n, _)| n.contains("COPY"))
        .expect("a COPY node");
    assert_eq!(copy.1, "cached", "{states:?}");
}

#[tokio::test]
async fn failed_build_reports_error_in_frames() {
    let f = fixture(None);
    let dir = project(&[("Dockerfile", "FROM scratch\nCOPY missing /missing\n")]);
    let (build_id, frames) = build(&f.workbench, start_request(dir.path())).await;
    let finished = frames.finished_event();
    assert_eq!(finished["success"], false);
    assert!(
        finished["error"].as_str().unwrap().contains("missing"),
        "{finished}"
    );
    let history = f.workbench.history().await.unwrap();
    assert_eq!(history[0].status, "failed");

    let layers = f.workbench.history_layers(build_id).await.unwrap_err();
    assert_eq!(layers.code, ErrorCode::UserInput);
    assert!(
        layers.message.contains("no result image"),
        "{}",
        layers.message
    );
}

#[tokio::test]
async fn cancel_without_build_is_rejected() {
    let f = fixture(None);
    let error = f.workbench.cancel_build().unwrap_err();
    assert_eq!(error.code, ErrorCode::UserInput);
    assert_eq!(error.message, "No build is running");
}

#[tokio::test]
async fn history_unknown_id_is_user_input() {
    let f = fixture(None);
    let error = f
        .workbench
        .history_inspect("feedface".into())
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::UserInput);
    assert!(error.message.contains("feedface"), "{}", error.message);
}

#[tokio::test]
async fn demos_lists_folders_with_dockerfiles() {
    let demos = project(&[
        ("zeta/Dockerfile", "FROM scratch\n"),
        ("zeta/README.md", "# zeta\n\nLast demo.\n"),
        ("alpha/Dockerfile", "FROM scratch\n"),
        ("notes/README.md", "# no Dockerfile here\n"),
    ]);
    let f = fixture(Some(demos.path().to_path_buf()));
    let listed = f.workbench.demos().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["alpha", "zeta"]);
    assert_eq!(listed[1].summary, "Last demo.");
    assert_eq!(listed[0].summary, "");

    let none = fixture(None);
    assert!(none.workbench.demos().await.unwrap().is_empty());
}

#[tokio::test]
async fn cache_du_and_prune_dry_run() {
    let f = fixture(None);
    let dir = project(&[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a\n")]);
    build(&f.workbench, start_request(dir.path())).await;
    let records = f.workbench.cache_du().await.unwrap();
    let count = records.as_array().unwrap().len();
    assert!(count > 0);

    let report = f
        .workbench
        .cache_prune(PruneRequest {
            all: true,
            dry_run: true,
        })
        .await
        .unwrap();
    assert!(report["deleted"].is_array());
    let after = f.workbench.cache_du().await.unwrap();
    assert_eq!(
        after.as_array().unwrap().len(),
        count,
        "a dry run deletes nothing"
    );
}

#[tokio::test]
async fn status_reports_store() {
    let f = fixture(None);
    let status = f.workbench.status().await.unwrap();
    assert_eq!(status.worker, "runc on overlayfs");
    assert!(status.store_root.is_dir());
    assert_eq!(status.running_build, None);
}
